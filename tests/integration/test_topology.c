/*
 * test_topology.c - the one topology: programs started with different queue settings
 * agree on topicflow.nmf. Whoever creates the queue fixes its arguments and binding; the
 * others use it as it is, so a worker with defaults beside a producer with a lower delivery
 * limit and a narrower binding runs, and does not widen that binding.
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
#include "wire/event_codec.h"

static void count_return(void *ctx, const char *message_id, size_t len)
{
    (*(int *)ctx)++;
}

/* Publishes one mandatory message with routing key rk to topicflow.events; returns 1 when
 * the broker routed it to a queue, 0 when it came back unroutable. */
static int routed(harness *h, const char *rk)
{
    tf_broker *b = harness_broker(h);
    amqp_basic_properties_t props;
    uint8_t state[1] = {0};
    uint64_t tag;
    int returned = 0;
    tf_err err;

    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = amqp_cstring_bytes("probe");
    assert_int_equal(tf_broker_confirm_select(b, &err), 0);
    assert_int_equal(tf_broker_publish(b, TF_EXCHANGE_EVENTS, rk, &props, "x", 1, &tag, &err), 0);
    assert_int_equal(tf_broker_wait_confirms(b, tag, 1, state, 1, 10, count_return, &returned, &err), 0);
    tf_broker_close(b);
    return !returned;
}

static void test_worker_with_defaults_beside_producer_with_other_queue_settings(void **state)
{
    harness h;
    const char *producer_args[] = {"--delivery-limit", "3", "--binding", "internship.*", NULL};
    pid_t producer, worker;
    const int n = 200;

    harness_setup(&h, "topology_pair");
    producer = harness_spawn(&h, "topicflow-producer", producer_args);
    /* the producer creates the queue with its settings */
    assert_true(harness_wait_queue_exists(&h, TF_QUEUE_NMF, 0, 30));
    worker = pipeline_spawn_worker(&h, NULL);
    harness_insert_internships(&h, n);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.processed_events", n, 120), n);
    /* the producer's binding stands alone: the worker added no '#' */
    assert_true(routed(&h, "internship.updated"));
    assert_false(routed(&h, "invoice.created"));
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

static void test_producer_with_other_settings_after_worker_uses_the_existing_queue(void **state)
{
    harness h;
    const char *producer_args[] = {"--delivery-limit", "3", "--queue-max-length", "1000", NULL};
    pid_t producer, worker;
    const int n = 100;

    harness_setup(&h, "topology_worker_first");
    worker = pipeline_spawn_worker(&h, NULL);
    assert_true(harness_wait_queue_exists(&h, TF_QUEUE_NMF, 1, 30));
    producer = harness_spawn(&h, "topicflow-producer", producer_args);
    harness_insert_internships(&h, n);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.processed_events", n, 120), n);
    /* the worker created it with the defaults: every routing key reaches it */
    assert_true(routed(&h, "invoice.created"));
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_with_defaults_beside_producer_with_other_queue_settings),
        cmocka_unit_test(test_producer_with_other_settings_after_worker_uses_the_existing_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
