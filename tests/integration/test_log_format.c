/*
 * test_log_format.c - the daemons with --log-format json write nothing but JSON: every line
 * of their stderr, through a run with traffic, dead letters whose message ids and reasons
 * hold quotes, line breaks and invalid UTF-8, and a worker name with spaces and quotes, parses
 * as one PostgreSQL jsonb object with ts, level, prog and msg, and the odd values read back.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pipeline.h"

#define PROCESSED "select count(*) from topicflow.processed_events"
#define WORKER_NAME "json \"worker\" one"
#define ODD_ID "id \"7\"\nsecond line \xff"

/* Every line of pid's log is a JSON object with the four keys; returns the line count. *found
 * gets how many lines have needle_key = needle (as jsonb reads it). */
static int assert_log_is_json(harness *h, pid_t pid, const char *key, const char *want, int *found)
{
    FILE *f = fopen(harness_log_of(pid), "r");
    char *line = NULL, sql[256];
    size_t cap = 0;
    ssize_t len;
    int n = 0;

    assert_non_null(f);
    *found = 0;
    snprintf(sql, sizeof(sql), "select ($1::jsonb ?& array['ts', 'level', 'prog', 'msg'])::text"
                               " || ' ' || coalesce($1::jsonb->>'%s', '')", key);
    while ((len = getline(&line, &cap, f)) > 0) {
        char *v;
        assert_true(line[len - 1] == '\n');
        line[len - 1] = '\0';
        v = harness_query_text(h, sql, line); /* fails the test when the line is not JSON */
        if (strncmp(v, "true ", 5) != 0)
            fail_msg("line without ts, level, prog and msg: %s", line);
        *found += want && strcmp(v + 5, want) == 0;
        free(v);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

static void test_daemons_write_only_json_lines(void **state)
{
    static const char garbage[] = "\xc1not msgpack";
    harness h;
    pid_t producer, worker;
    int lines, found;

    harness_setup(&h, "log_json");
    producer = harness_spawn(&h, "topicflow-producer",
                             (const char *[]){"--log-format", "json", "--poll", "200ms", NULL});
    worker = pipeline_spawn_worker(&h, (const char *[]){"--log-format", "json", "--name",
                                                        WORKER_NAME, NULL});
    harness_insert_internships(&h, 50);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 50, 60), 50);
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, 1, ODD_ID);
    for (int i = 0; i < 100 && pipeline_queue_depth(&h, "topicflow.dead") < 1; i++)
        usleep(50000);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.dead"), 1);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);

    lines = assert_log_is_json(&h, producer, "msg", "stopped", &found);
    assert_true(lines >= 3);
    assert_int_equal(found, 1);
    lines = assert_log_is_json(&h, worker, "worker", WORKER_NAME, &found);
    assert_true(lines >= 3);
    assert_true(found >= 2); /* starting, connected, stopped */
    /* the message id: quotes and the line break kept, the invalid byte replaced */
    assert_log_is_json(&h, worker, "message_id", "id \"7\"\nsecond line \xef\xbf\xbd", &found);
    assert_int_equal(found, 1);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_daemons_write_only_json_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
