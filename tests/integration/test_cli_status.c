/*
 * test_cli_status.c - `topicflow status` against real servers: the JSON object carries the
 * counts the test arranged (outbox backlog, ready / unacknowledged / consumers of
 * topicflow.nmf, dead letters, documents, model version, workers); the text form is an
 * aligned table; an unreachable PostgreSQL or RabbitMQ is exit 1 with one line naming it,
 * an unreachable management API only an unknown queue_unacked; --check prints one line per
 * failed threshold and exits 1, nothing and 0 when all pass.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

static char *field(harness *h, const char *json, const char *key)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "select $1::jsonb->>'%s'", key);
    return harness_query_text(h, sql, json);
}

static void expect(harness *h, const char *json, const char *key, const char *want)
{
    char *v = field(h, json, key);

    if (!want) {
        assert_null(v);
        return;
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

/* status --json until queue_unacked is what the test holds (the management API samples
 * queue statistics once a second). */
static char *status_when_unacked(harness *h, const char *want)
{
    double end = harness_now() + 30;
    char *out, *v;

    for (;;) {
        assert_int_equal(harness_run(h, "topicflow", (const char *[]){"status", "--json", NULL},
                                     NULL, &out, NULL), 0);
        v = field(h, out, "queue_unacked");
        if (v && strcmp(v, want) == 0) {
            free(v);
            return out;
        }
        free(v);
        if (harness_now() > end)
            fail_msg("queue_unacked never became %s: %s", want, out);
        free(out);
        usleep(200000);
    }
}

static void test_json_reports_the_arranged_counts(void **state)
{
    harness h;
    tf_broker *b, *consumer;
    tf_err err;
    char *out, *v;

    harness_setup(&h, "cli_status_counts");
    harness_insert_internships(&h, 7); /* no producer runs: 7 unpublished events */
    harness_sql(&h, "insert into topicflow.documents (source, doc_id, version, event_id, deleted)"
                    " values ('public.internships', '1', 1, 1, false),"
                    " ('public.internships', '2', 1, 2, false), ('public.internships', '3', 2, 3, true)");
    harness_sql(&h, "insert into topicflow.model (version, epoch, kind, k, n_terms, n_docs, blob)"
                    " values (4, 1, 'refit', 2, 0, 0, ''), (5, 1, 'refresh', 2, 0, 0, '')");
    harness_sql(&h, "insert into topicflow.worker_activity (worker, started_at, last_batch_at, events)"
                    " values ('w1', now(), now(), 42), ('w2', now(), null, 0)");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    harness_publish_events(b, TF_EXCHANGE_DLX, 100, 2, "schema 9 is unknown");
    harness_publish_events(b, TF_EXCHANGE_EVENTS, 1, 3, NULL);
    harness_wait_queue(b, TF_QUEUE_NMF, 3, 30);
    /* A consumer with prefetch 3 holds all three unacknowledged; then 2 more stay ready.
     * (Not basic.get: a quorum queue counts each unsettled get as a consumer.) */
    consumer = harness_broker(&h);
    assert_int_equal(tf_broker_qos(consumer, 3, &err), 0);
    assert_int_equal(tf_broker_consume(consumer, TF_QUEUE_NMF, &err), 0);
    harness_wait_queue(b, TF_QUEUE_NMF, 0, 30);
    harness_publish_events(b, TF_EXCHANGE_EVENTS, 4, 2, NULL);
    harness_wait_queue(b, TF_QUEUE_NMF, 2, 30);

    out = status_when_unacked(&h, "3");
    expect(&h, out, "outbox_pending", "7");
    v = harness_query_text(&h, "select (($1::jsonb->>'outbox_oldest_age_s')::float8 >= 0)::text", out);
    assert_string_equal(v, "true");
    free(v);
    expect(&h, out, "queue_ready", "2");
    expect(&h, out, "queue_consumers", "1");
    expect(&h, out, "dead_letters", "2");
    expect(&h, out, "documents", "2");
    expect(&h, out, "model_version", "5");
    v = harness_query_text(&h, "select (($1::jsonb->>'model_updated_at')::timestamptz <= now())::text", out);
    assert_string_equal(v, "true");
    free(v);
    v = harness_query_text(&h, "select string_agg((w->>'name') || ':' || (w->>'events') || ':'"
                               " || coalesce(w->>'last_batch_at', 'null'), ' ' order by w->>'name')"
                               " from jsonb_array_elements($1::jsonb->'workers') w", out);
    assert_non_null(strstr(v, "w1:42:20"));
    assert_non_null(strstr(v, "w2:0:null"));
    free(v);
    free(out);

    /* The same as an aligned table. */
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"status", NULL}, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "outbox_pending        7\n"));
    assert_non_null(strstr(out, "dead_letters          2\n"));
    assert_non_null(strstr(out, "model_version         5\n"));
    assert_non_null(strstr(out, "workers               2\n"));
    free(out);
    tf_broker_close(consumer);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_empty_pipeline_reports_nulls_where_nothing_is_known(void **state)
{
    harness h;
    tf_broker *b;
    char *out;

    harness_setup(&h, "cli_status_empty");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"status", "--json", NULL}, NULL,
                                 &out, NULL), 0);
    expect(&h, out, "outbox_pending", "0");
    expect(&h, out, "outbox_oldest_age_s", NULL);
    expect(&h, out, "queue_ready", "0");
    expect(&h, out, "documents", "0");
    expect(&h, out, "model_version", NULL);
    expect(&h, out, "model_updated_at", NULL);
    free(out);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_unreachable_server_is_exit_1_with_one_line_naming_it(void **state)
{
    harness h;
    char *out, *err;

    harness_setup(&h, "cli_status_down");
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"status", "--pg", "postgresql://topicflow@127.0.0.1:1/x", NULL},
                                 NULL, &out, &err), 1);
    assert_string_equal(out, "");
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "topicflow status: PostgreSQL: "));
    free(out);
    free(err);
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"status", "--json", "--amqp",
                                                  "amqp://guest:secret@127.0.0.1:1/x", NULL},
                                 NULL, &out, &err), 1);
    assert_string_equal(out, "");
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "topicflow status: RabbitMQ: "));
    assert_null(strstr(err, "secret"));
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_unreachable_management_api_leaves_unacked_unknown(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *err;

    harness_setup(&h, "cli_status_no_mgmt");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"status", "--json", "--management-url",
                                                  "http://127.0.0.1:1", NULL},
                                 NULL, &out, &err), 0);
    expect(&h, out, "queue_unacked", NULL);
    expect(&h, out, "queue_ready", "0");
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "queue_unacked unknown: management API http://127.0.0.1:1"));
    free(out);
    free(err);
    tf_broker_close(b);
    harness_teardown(&h);
}

static int status_check(harness *h, const char *const *args, char **out)
{
    const char *argv[8] = {"status", "--check"};
    int n = 2;

    for (; args && *args && n < 7; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    return harness_run(h, "topicflow", argv, NULL, out, NULL);
}

static void test_check_fails_one_line_per_threshold_passed(void **state)
{
    harness h;
    tf_broker *b, *consumer;
    tf_err err;
    char *out;

    harness_setup(&h, "cli_status_check");
    /* Nothing declared yet: the queue has no consumer, and that is the only failure. */
    assert_int_equal(status_check(&h, NULL, &out), 1);
    assert_int_equal(harness_count_lines(out), 1);
    assert_non_null(strstr(out, "check failed: no consumer on topicflow.nmf"));
    free(out);

    /* An hour-old backlog, two dead letters, still no consumer: three lines. */
    harness_insert_internships(&h, 3);
    harness_sql(&h, "update topicflow.outbox set created_at = now() - interval '1 hour'");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    harness_publish_events(b, TF_EXCHANGE_DLX, 100, 2, "schema 9 is unknown");
    harness_wait_queue(b, TF_QUEUE_DEAD, 2, 30);
    assert_int_equal(status_check(&h, (const char *[]){"--max-outbox-age", "10m", NULL}, &out), 1);
    assert_int_equal(harness_count_lines(out), 3);
    assert_non_null(strstr(out, "check failed: outbox_oldest_age_s 36"));
    assert_non_null(strstr(out, "is over --max-outbox-age 600s\n"));
    assert_non_null(strstr(out, "check failed: dead_letters 2 is over --max-dead-letters 0\n"));
    free(out);

    /* A consumer, and thresholds above what the pipeline shows: silent, exit 0. */
    consumer = harness_broker(&h);
    assert_int_equal(tf_broker_consume(consumer, TF_QUEUE_NMF, &err), 0);
    assert_int_equal(status_check(&h, (const char *[]){"--max-outbox-age", "2h",
                                                       "--max-dead-letters", "2", NULL}, &out), 0);
    assert_string_equal(out, "");
    free(out);
    assert_int_equal(status_check(&h, (const char *[]){"--max-outbox-age", "2h", NULL}, &out), 1);
    assert_string_equal(out, "check failed: dead_letters 2 is over --max-dead-letters 0\n");
    free(out);
    tf_broker_close(consumer);
    tf_broker_close(b);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_reports_the_arranged_counts),
        cmocka_unit_test(test_empty_pipeline_reports_nulls_where_nothing_is_known),
        cmocka_unit_test(test_unreachable_server_is_exit_1_with_one_line_naming_it),
        cmocka_unit_test(test_unreachable_management_api_leaves_unacked_unknown),
        cmocka_unit_test(test_check_fails_one_line_per_threshold_passed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
