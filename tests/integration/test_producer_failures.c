/*
 * test_producer_failures.c - the producer killed at arbitrary instants, and several
 * producers at once: every event reaches the queue at least once and none stays unmarked.
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

static void test_sigkill_at_any_instant_loses_nothing(void **state)
{
    harness h;
    const int total = 20000;
    long long published_before;

    harness_setup(&h, "producer_sigkill");
    harness_insert_internships(&h, total);
    /* Kill it five times at different moments of its batches, restarting each time. */
    for (int round = 0; round < 5; round++) {
        pid_t p = harness_spawn(&h, "topicflow-producer", (const char *[]){"--batch", "250", NULL});
        published_before = harness_scalar(&h, "select count(*) from topicflow.outbox where published_at is not null");
        /* wait until it has made progress, then kill it at a pseudo-random offset */
        for (int i = 0; i < 400; i++) {
            if (harness_scalar(&h, "select count(*) from topicflow.outbox where published_at is not null") > published_before)
                break;
            usleep(10000);
        }
        usleep((useconds_t)(1000 + round * 7919 % 20000));
        assert_int_equal(harness_stop(p, SIGKILL), 128 + SIGKILL);
    }
    assert_true(harness_scalar(&h, UNPUBLISHED) > 0); /* the kills really interrupted it */
    {
        pid_t p = harness_spawn(&h, "topicflow-producer", NULL);
        assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 120), 0);
        assert_int_equal(harness_stop(p, SIGTERM), 0);
    }
    harness_assert_queue_has_every_event(&h);
    harness_teardown(&h);
}

static void test_two_producers_publish_every_event(void **state)
{
    harness h;
    pid_t a, b;

    harness_setup(&h, "producer_two");
    a = harness_spawn(&h, "topicflow-producer", (const char *[]){"--batch", "100", NULL});
    b = harness_spawn(&h, "topicflow-producer", (const char *[]){"--batch", "100", NULL});
    for (int i = 0; i < 10; i++)
        harness_insert_internships(&h, 500);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 120), 0);
    assert_int_equal(harness_stop(a, SIGTERM), 0);
    assert_int_equal(harness_stop(b, SIGTERM), 0);
    harness_assert_queue_has_every_event(&h);
    harness_teardown(&h);
}

static void test_retention_deletes_only_old_published_events(void **state)
{
    harness h;
    pid_t p;

    harness_setup(&h, "producer_retention");
    harness_insert_internships(&h, 50);
    p = harness_spawn(&h, "topicflow-producer", NULL);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    /* Age half of them; keep one unpublished old row, which must survive. */
    harness_sql(&h, "update topicflow.outbox set published_at = now() - interval '2 hours'"
                    " where id % 2 = 0");
    harness_sql(&h, "update topicflow.outbox set published_at = null, created_at = now() - "
                    "interval '3 hours' where id = (select min(id) from topicflow.outbox)");
    p = harness_spawn(&h, "topicflow-producer", (const char *[]){"--retention", "1h", NULL});
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.outbox where published_at < now() - interval '1 hour'",
        0, 30), 0);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    /* 25 odd ids survive (one was re-published), 24 recent even ones... plus the old unpublished */
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox where id % 2 = 1"), 25);
    assert_int_equal(harness_scalar(&h, UNPUBLISHED), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_at_any_instant_loses_nothing),
        cmocka_unit_test(test_two_producers_publish_every_event),
        cmocka_unit_test(test_retention_deletes_only_old_published_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
