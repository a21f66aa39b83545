/*
 * test_wal_restarts.c - capture wal when the servers go away: RabbitMQ killed while the
 * producer streams a backlog (the slot must not have moved past what the broker never
 * confirmed), RabbitMQ killed while the wal producer drains the outbox (a replay), and
 * PostgreSQL restarted (the producer reconnects and resumes from the slot).
 * Exact accounting: every change arrives, under the id it was first sent with, and nothing
 * else. Runs alone (it restarts the shared servers).
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
#include "wal_harness.h"

static void test_rabbitmq_killed_mid_stream_loses_nothing(void **state)
{
    harness h;
    const size_t cap = 100000;
    wal_got *g = calloc(cap, sizeof(*g));
    size_t n;
    pid_t p;

    harness_setup(&h, "wal_kill_rabbitmq");
    wal_track_internships(&h);
    for (int i = 0; i < 20; i++)
        harness_insert_internships(&h, 1000);
    p = harness_spawn(&h, "topicflow-producer", (const char *[]){"--capture", "wal", "--batch",
                                                                 "500", "--reconnect-max", "1s", NULL});
    for (int i = 0; i < 600 && wal_queue_depth(&h) == 0; i++)
        usleep(10000);
    assert_int_equal(harness_services("rabbitmq kill"), 0);
    assert_false(wal_caught_up(&h)); /* killed mid-stream */
    harness_insert_internships(&h, 1000); /* changes keep coming while it is down */
    assert_int_equal(harness_services("rabbitmq start"), 0);
    wal_wait_caught_up(&h, 180);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    n = wal_drain(&h, g, cap, 1.5);
    assert_int_equal(wal_distinct_ids(g, n), 21000);
    assert_int_equal(wal_count_type(g, n, "created"), 21000);
    wal_assert_commit_order(g, n);
    free(g);
    harness_teardown(&h);
}

/* The outbox drained by the wal producer (a replay) keeps outbox mode's rule: rows are
 * marked only once the broker confirmed them, so a broker killed mid-drain loses nothing. */
static void test_rabbitmq_killed_during_an_outbox_drain_loses_nothing(void **state)
{
    enum { DOCS = 20000 };
    harness h;
    const size_t cap = 3 * DOCS;
    wal_got *g = calloc(cap, sizeof(*g));
    size_t n;
    pid_t p;

    harness_setup(&h, "wal_kill_rabbitmq_outbox");
    wal_track_internships(&h);
    p = harness_spawn(&h, "topicflow-producer", (const char *[]){"--capture", "wal", "--batch",
                                                                 "500", "--reconnect-max", "1s", NULL});
    for (int i = 0; i < 20; i++)
        harness_insert_internships(&h, 1000);
    wal_wait_caught_up(&h, 120);
    assert_int_equal(wal_distinct_ids(g, wal_drain(&h, g, cap, 1.0)), DOCS);
    harness_sql(&h, "insert into topicflow.documents (source, doc_id, version, deleted, event_id)"
                    " select 'public.internships', id::text, 1, false, id from internships");
    harness_sql(&h, "select topicflow.replay_current()");
    assert_int_equal(harness_wait_scalar(&h, "select (count(*) > 0)::int from topicflow.outbox"
                                             " where published_at is not null", 1, 60), 1);
    assert_int_equal(harness_services("rabbitmq kill"), 0);
    assert_true(harness_scalar(&h, "select count(*) from topicflow.outbox"
                                   " where published_at is null") > 0); /* killed mid-drain */
    assert_int_equal(harness_services("rabbitmq start"), 0);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.outbox"
                                             " where published_at is null", 0, 180), 0);
    wal_wait_caught_up(&h, 60);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    n = wal_drain(&h, g, cap, 1.5);
    assert_int_equal(wal_distinct_ids(g, n), DOCS);
    for (size_t i = 0; i < n; i++)
        assert_true(g[i].id < (INT64_C(1) << 62));
    free(g);
    harness_teardown(&h);
}

static void test_postgresql_restart_resumes_from_the_slot(void **state)
{
    harness h;
    wal_got *g = calloc(10000, sizeof(*g));
    size_t n;
    pid_t p;

    harness_setup(&h, "wal_restart_pg");
    wal_track_internships(&h);
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--capture", "wal", "--reconnect-max", "1s", NULL});
    harness_insert_internships(&h, 100);
    wal_wait_caught_up(&h, 30);
    assert_int_equal(harness_services("pg stop"), 0);
    sleep(2);
    assert_int_equal(harness_services("pg start"), 0);
    harness_insert_internships(&h, 100); /* the harness reconnects; so must the producer */
    harness_sql(&h, "update internships set title = title || '!' where id % 2 = 0");
    wal_wait_caught_up(&h, 60);
    assert_true(harness_log_contains(p, "stream restarted") || harness_log_contains(p, "cannot connect"));
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    n = wal_drain(&h, g, 10000, 1.0);
    assert_int_equal(wal_distinct_ids(g, n), 300);
    assert_int_equal(wal_count_type(g, n, "updated"), 100);
    wal_assert_commit_order(g, n);
    free(g);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rabbitmq_killed_mid_stream_loses_nothing),
        cmocka_unit_test(test_rabbitmq_killed_during_an_outbox_drain_loses_nothing),
        cmocka_unit_test(test_postgresql_restart_resumes_from_the_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
