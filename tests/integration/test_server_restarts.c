/*
 * test_server_restarts.c - the servers go away under the producer: RabbitMQ restarted while
 * events keep arriving, PostgreSQL restarted while it idles. The producer recovers by
 * itself and every event reaches the queue. Runs alone (it restarts the shared servers).
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

#define UNPUBLISHED "select count(*) from topicflow.outbox where published_at is null"

static void test_rabbitmq_restart_under_load_loses_nothing(void **state)
{
    harness h;
    pid_t p;

    harness_setup(&h, "restart_rabbitmq");
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--batch", "200", "--reconnect-max", "1s", NULL});
    for (int i = 0; i < 5; i++)
        harness_insert_internships(&h, 1000);
    assert_int_equal(harness_services("rabbitmq stop"), 0);
    for (int i = 0; i < 5; i++)
        harness_insert_internships(&h, 1000); /* events keep arriving while it is down */
    assert_true(harness_scalar(&h, UNPUBLISHED) > 0);
    assert_int_equal(harness_services("rabbitmq start"), 0);
    harness_insert_internships(&h, 1000);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 120), 0);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    harness_assert_queue_has_every_event(&h);
    harness_teardown(&h);
}

static void test_rabbitmq_killed_mid_batch_loses_nothing(void **state)
{
    harness h;
    pid_t p;

    harness_setup(&h, "kill_rabbitmq");
    harness_insert_internships(&h, 20000);
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--batch", "500", "--reconnect-max", "1s", NULL});
    harness_wait_scalar(&h, "select (count(*) > 0)::int from topicflow.outbox"
                            " where published_at is not null", 1, 30);
    assert_int_equal(harness_services("rabbitmq kill"), 0);
    assert_true(harness_scalar(&h, UNPUBLISHED) > 0);
    assert_int_equal(harness_services("rabbitmq start"), 0);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 180), 0);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    harness_assert_queue_has_every_event(&h);
    harness_teardown(&h);
}

static void test_postgresql_restart_is_recovered_by_itself(void **state)
{
    harness h;
    pid_t p;

    harness_setup(&h, "restart_pg");
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--poll", "200ms", "--reconnect-max", "1s", NULL});
    harness_insert_internships(&h, 100);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    assert_int_equal(harness_services("pg stop"), 0);
    sleep(2);
    assert_int_equal(harness_services("pg start"), 0);
    harness_insert_internships(&h, 100); /* the harness reconnects; so must the producer */
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 60), 0);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    harness_assert_queue_has_every_event(&h);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rabbitmq_restart_under_load_loses_nothing),
        cmocka_unit_test(test_rabbitmq_killed_mid_batch_loses_nothing),
        cmocka_unit_test(test_postgresql_restart_is_recovered_by_itself),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
