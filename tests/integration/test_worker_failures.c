/*
 * test_worker_failures.c - workers killed at arbitrary instants and a PostgreSQL outage
 * under load: afterwards every event is processed exactly once (processed_events, the
 * documents and the model's statistics agree) and nothing is dead-lettered.
 * Runs alone: it stops the shared database.
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

static void assert_exactly_once(harness *h, long long n)
{
    assert_int_equal(harness_scalar(h, PROCESSED), n);
    assert_int_equal(harness_scalar(h, "select count(*) from topicflow.documents where not deleted"), n);
    assert_int_equal(pipeline_queue_depth(h, "topicflow.dead"), 0);
    pipeline_assert_df_consistent(h);
    pipeline_assert_doc_count_consistent(h);
    pipeline_assert_statistics_consistent(h);
}

static void test_worker_sigkilled_mid_batch_loses_and_doubles_nothing(void **state)
{
    harness h;
    const int n = 6000;
    pid_t producer, w;

    harness_setup(&h, "worker_sigkill");
    harness_insert_internships(&h, n);
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.outbox"
                                             " where published_at is null", 0, 60), 0);
    for (int round = 0; round < 4; round++) {
        long long before = harness_scalar(&h, PROCESSED);
        w = pipeline_spawn_worker(&h, (const char *[]){"--batch", "100", NULL});
        for (int i = 0; i < 500 && harness_scalar(&h, PROCESSED) <= before; i++)
            usleep(10000);
        usleep((useconds_t)(2000 + round * 15013 % 40000));
        assert_int_equal(harness_stop(w, SIGKILL), 128 + SIGKILL);
    }
    assert_true(harness_scalar(&h, PROCESSED) < n); /* the kills interrupted real work */
    w = pipeline_spawn_worker(&h, NULL);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, n, 120), n);
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.documents where not deleted and"
        " coalesce(model_version, 0) < (select max(epoch) from topicflow.model)", 0, 60), 0);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    assert_exactly_once(&h, n);
    harness_teardown(&h);
}

static void test_database_down_for_ten_seconds_dead_letters_nothing(void **state)
{
    harness h;
    const int n = 30000;
    long long at_outage;
    pid_t producer, w;

    harness_setup(&h, "worker_pg_outage");
    harness_insert_internships(&h, n);
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.outbox"
                                             " where published_at is null", 0, 60), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    /* A full queue, so that the outage hits the worker in the middle of its stream. */
    w = pipeline_spawn_worker(&h, (const char *[]){"--batch", "50", "--reconnect-max", "1s", NULL});
    for (int i = 0; i < 1000 && harness_scalar(&h, PROCESSED) < 1000; i++)
        usleep(5000);
    assert_int_equal(harness_services("pg stop"), 0);
    sleep(10);
    assert_int_equal(harness_services("pg start"), 0);
    at_outage = harness_scalar(&h, PROCESSED);
    assert_true(at_outage < n);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, n, 180), n);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    assert_exactly_once(&h, n);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_sigkilled_mid_batch_loses_and_doubles_nothing),
        cmocka_unit_test(test_database_down_for_ten_seconds_dead_letters_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
