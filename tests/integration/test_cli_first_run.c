/*
 * test_cli_first_run.c - what a new user meets first: before `topicflow migrate`, every
 * command and both daemons say "schema not migrated: run topicflow migrate" (not a raw
 * "relation does not exist"); refit's refusals are one line each and say what to do (rows
 * waiting for a worker, a --k the documents cannot support); `doc` tells a table that is
 * not tracked from an id that is not there; an AMQP URL ending in '/' is explained as the
 * empty vhost it names.
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

#define NOT_MIGRATED "schema not migrated: run topicflow migrate"

/* A test database as before the first `topicflow migrate`. */
static void setup_unmigrated(harness *h, const char *name)
{
    harness_setup(h, name);
    harness_sql(h, "drop schema topicflow cascade");
    harness_sql(h, "drop table public.internships");
}

static void expect_one_line(harness *h, const char *const *args, int status, const char *want)
{
    char *out, *err;

    assert_int_equal(harness_run(h, "topicflow", args, NULL, &out, &err), status);
    if (!strstr(err, want))
        fail_msg("topicflow %s: want '%s' in: %s", args[0], want, err);
    assert_int_equal(harness_count_lines(err), 1);
    free(out);
    free(err);
}

static void test_every_command_before_migrate_says_run_migrate(void **state)
{
    static const char *const commands[][6] = {
        {"status", NULL},
        {"topics", NULL},
        {"doc", "1", NULL},
        {"refit", NULL},
        {"outbox", "list", NULL},
        {"replay", "--all", NULL},
        {"track", "internships", "--id", "id", "--text", NULL},
        {"load", "-", NULL},
    };
    harness h;

    setup_unmigrated(&h, "first_run_cli");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        const char *args[8] = {0};
        for (int a = 0; commands[i][a]; a++)
            args[a] = commands[i][a];
        if (strcmp(args[0], "track") == 0)
            args[5] = "title";
        expect_one_line(&h, args, 1, NOT_MIGRATED);
    }
    harness_teardown(&h);
}

static int wait_log(pid_t pid, const char *needle, double timeout_s)
{
    double end = harness_now() + timeout_s;

    /* the child creates its log itself: wait for the file before reading it */
    while (access(harness_log_of(pid), F_OK) != 0 || !harness_log_contains(pid, needle)) {
        if (harness_now() > end)
            return 0;
        usleep(50000);
    }
    return 1;
}

static void test_daemons_before_migrate_say_run_migrate(void **state)
{
    harness h;
    pid_t producer, worker;

    setup_unmigrated(&h, "first_run_daemons");
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){NULL});
    worker = harness_spawn(&h, "topicflow-worker", (const char *[]){NULL});
    assert_true(wait_log(producer, NOT_MIGRATED, 30));
    assert_true(wait_log(worker, NOT_MIGRATED, 30));
    assert_false(harness_log_contains(producer, "does not exist"));
    assert_false(harness_log_contains(worker, "does not exist"));
    harness_stop(producer, SIGTERM);
    harness_stop(worker, SIGTERM);
    harness_teardown(&h);
}

static void test_refit_before_any_worker_counts_the_rows_waiting(void **state)
{
    harness h;

    harness_setup_pg(&h, "first_run_refit_waiting");
    expect_one_line(&h, (const char *[]){"refit", NULL}, 1,
                    "no live documents to fit: the tracked tables hold no rows");
    harness_sql(&h, "insert into internships (title) values ('Data intern'), ('Law intern'), ('Nurse intern')");
    expect_one_line(&h, (const char *[]){"refit", NULL}, 1,
                    "no live documents to fit: the tracked tables hold 3 rows that no worker has "
                    "processed yet (is topicflow-worker running?)");
    harness_sql(&h, "delete from internships where title <> 'Data intern'");
    expect_one_line(&h, (const char *[]){"refit", "--k", "5", NULL}, 1,
                    "hold 1 row that no worker");
    harness_teardown(&h);
}

static void test_refit_k_beyond_the_documents_is_refused_before_fitting(void **state)
{
    harness h;
    char *out, *err;

    harness_setup_pg(&h, "first_run_refit_k");
    harness_sql(&h, "insert into topicflow.documents (source, doc_id, version, event_id)"
                    " select 'public.internships', g::text, 1, g from generate_series(1, 50) g");
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"refit", "--k", "1000", NULL},
                                 NULL, &out, &err), 2);
    assert_string_equal(err, "topicflow refit: --k 1000 is more topics than 50 live documents "
                             "support (at most 5: 10 documents a topic)\n");
    assert_string_equal(out, "");
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.model"), 0);
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_doc_tells_an_untracked_source_from_a_missing_id(void **state)
{
    harness h;

    harness_setup_pg(&h, "first_run_doc");
    harness_sql(&h, "insert into topicflow.documents (source, doc_id, version, deleted, event_id)"
                    " values ('public.internships', '7', 2, true, 2)");
    expect_one_line(&h, (const char *[]){"doc", "42", NULL}, 1,
                    "topicflow doc: no document 42 in public.internships (no such id, or no worker "
                    "has processed it yet)\n");
    expect_one_line(&h, (const char *[]){"doc", "7", NULL}, 1,
                    "topicflow doc: no document 7 in public.internships (deleted)\n");
    expect_one_line(&h, (const char *[]){"doc", "42", "--source", "public.postings", NULL}, 1,
                    "topicflow doc: public.postings is not a tracked table (tracked: public.internships)\n");
    harness_teardown(&h);
}

/* amqp://guest:guest@host:port/ names the vhost "" (RabbitMQ's URI spec), not "/". */
static void test_url_ending_in_a_slash_is_explained_as_the_empty_vhost(void **state)
{
    harness h;
    char url[600], *out, *err;

    harness_setup(&h, "first_run_empty_vhost");
    snprintf(url, sizeof(url), "%.*s/", (int)(strrchr(h.amqp_url, '/') - h.amqp_url), h.amqp_url);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "list", "--amqp", url, NULL},
                                 NULL, &out, &err), 1);
    assert_non_null(strstr(err, "vhost  not found (a URL ending in '/' names the empty vhost, per "
                                "RabbitMQ's URI spec; the default vhost / is written %2f, or leave "
                                "out the '/')\n"));
    assert_null(strstr(err, "RabbitMQ: RabbitMQ"));
    assert_int_equal(harness_count_lines(err), 1);
    free(out);
    free(err);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_before_migrate_says_run_migrate),
        cmocka_unit_test(test_daemons_before_migrate_say_run_migrate),
        cmocka_unit_test(test_refit_before_any_worker_counts_the_rows_waiting),
        cmocka_unit_test(test_refit_k_beyond_the_documents_is_refused_before_fitting),
        cmocka_unit_test(test_doc_tells_an_untracked_source_from_a_missing_id),
        cmocka_unit_test(test_url_ending_in_a_slash_is_explained_as_the_empty_vhost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
