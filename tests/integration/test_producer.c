/*
 * test_producer.c - topicflow-producer against real servers: every event published once
 * confirmed and marked, in id order, with the message format of docs/ARCHITECTURE.md; a transaction
 * that commits a low id late is still published; 64-bit ids, versions, replay links and
 * microsecond times arrive exactly (the producer reads them in binary); SIGTERM is a clean exit.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pg/pg.h"
#include "wire/event_codec.h"

#define UNPUBLISHED "select count(*) from topicflow.outbox where published_at is null"

static void test_events_are_published_in_id_order_and_marked(void **state)
{
    harness h;
    size_t n_want, n_got;
    int64_t *want, *got;
    pid_t producer;

    harness_setup(&h, "producer_order");
    harness_insert_internships(&h, 2000);
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--batch", "300", NULL});
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 60), 0);
    want = harness_outbox_ids(&h, &n_want);
    got = calloc(n_want + 100, sizeof(*got));
    n_got = harness_drain_queue(&h, TF_QUEUE_NMF, got, n_want + 100, 1.0);
    assert_int_equal(n_got, n_want);
    for (size_t i = 0; i < n_got; i++)
        assert_int_equal(got[i], want[i]); /* one producer: exactly once, in id order */
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    free(want);
    free(got);
    harness_teardown(&h);
}

static void test_message_has_the_documented_format(void **state)
{
    harness h;
    amqp_envelope_t env;
    const amqp_field_value_t *schema;
    tf_broker *b;
    tf_event ev;
    tf_err err;
    pid_t producer;
    char expected_id[32];

    harness_setup(&h, "producer_format");
    harness_sql(&h, "insert into internships (title, description, skills) values"
                    " ('مهندس بيانات', 'Arabic and English text', array['sql', 'c++'])");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    assert_int_equal(harness_stop(producer, SIGINT), 0);

    b = harness_broker(&h);
    assert_int_equal(tf_broker_get(b, TF_QUEUE_NMF, 0, &env, &err), 1);
    assert_true(env.message.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    assert_memory_equal(env.message.properties.content_type.bytes, TF_CONTENT_TYPE,
                        strlen(TF_CONTENT_TYPE));
    assert_int_equal(env.message.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    assert_memory_equal(env.routing_key.bytes, "internship.created", env.routing_key.len);
    assert_memory_equal(env.message.properties.type.bytes, "created", 7);
    assert_true(env.message.properties.timestamp > 1700000000);
    schema = tf_amqp_header(&env.message.properties, TF_HEADER_SCHEMA);
    assert_non_null(schema);
    assert_int_equal(schema->value.i32, TF_EVENT_SCHEMA);
    assert_int_equal(tf_event_decode(env.message.body.bytes, env.message.body.len,
                                     TF_EVENT_DEFAULT_LIMIT, &ev, &err), TF_CODEC_OK);
    snprintf(expected_id, sizeof(expected_id), "%lld", (long long)ev.id);
    assert_int_equal(env.message.properties.message_id.len, strlen(expected_id));
    assert_memory_equal(env.message.properties.message_id.bytes, expected_id, strlen(expected_id));
    assert_int_equal(ev.version, 1);
    assert_int_equal(ev.type, TF_EVENT_CREATED);
    assert_memory_equal(tf_event_field_get(&ev, "title")->ptr, "مهندس بيانات",
                        strlen("مهندس بيانات"));
    assert_memory_equal(tf_event_field_get(&ev, "skills")->ptr, "sql, c++", 8);
    tf_event_clear(&ev);
    amqp_destroy_envelope(&env);
    tf_broker_close(b);
    harness_teardown(&h);
}

/* Runs the producer until the outbox is drained, stops it, and takes the first message of
 * the queue into *env, decoded into *ev. The caller clears both and closes *b. */
static void publish_and_take_one(harness *h, tf_broker **b, amqp_envelope_t *env, tf_event *ev)
{
    tf_err err;
    pid_t producer = harness_spawn(h, "topicflow-producer", NULL);

    assert_int_equal(harness_wait_scalar(h, UNPUBLISHED, 0, 30), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    *b = harness_broker(h);
    assert_int_equal(tf_broker_get(*b, TF_QUEUE_NMF, 0, env, &err), 1);
    assert_int_equal(tf_event_decode(env->message.body.bytes, env->message.body.len,
                                     TF_EVENT_DEFAULT_LIMIT, ev, &err), TF_CODEC_OK);
}

static void test_payload_of_any_json_shape_is_published_as_text(void **state)
{
    harness h;
    amqp_envelope_t env;
    tf_broker *b;
    tf_event ev;

    harness_setup(&h, "producer_payload_shapes");
    /* Written by hand, not by the capture trigger: the producer must still lose nothing. */
    harness_sql(&h, "insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type,"
                    " version, payload) values ('public.notes', 'note', 'n1', 'created', 1,"
                    " '{\"tags\": [\"a\", null, \"b\"], \"stars\": 4, \"gone\": null,"
                    " \"quote\": \"say \\\"hi\\\" \\u00e9\"}')");
    publish_and_take_one(&h, &b, &env, &ev);
    assert_int_equal(ev.n_fields, 3); /* the null one is left out */
    assert_memory_equal(tf_event_field_get(&ev, "tags")->ptr, "a, b", 4);
    assert_memory_equal(tf_event_field_get(&ev, "stars")->ptr, "4", 1);
    assert_int_equal(tf_event_field_get(&ev, "quote")->len, strlen("say \"hi\" é"));
    assert_memory_equal(tf_event_field_get(&ev, "quote")->ptr, "say \"hi\" é", strlen("say \"hi\" é"));
    tf_event_clear(&ev);
    amqp_destroy_envelope(&env);
    tf_broker_close(b);
    harness_teardown(&h);
}

/* The producer reads rows in binary format (byte order, the 2000-01-01 epoch of timestamptz,
 * jsonb's version byte): values past 32 bits and a time to the microsecond must arrive as
 * the outbox holds them. */
static void test_wide_integers_and_exact_time_arrive_unchanged(void **state)
{
    harness h;
    amqp_envelope_t env;
    tf_broker *b;
    tf_event ev;

    harness_setup(&h, "producer_binary_values");
    harness_sql(&h, "insert into topicflow.outbox (id, source, aggregate_type, aggregate_id,"
                    " event_type, version, payload, created_at, replay_of) values (5000000001,"
                    " 'public.internships', 'internship', '42', 'updated', 4294967298,"
                    " '{\"title\": \"t\\u00e9\"}', '2024-02-29 12:34:56.789012+00', 4294967299)");
    publish_and_take_one(&h, &b, &env, &ev);
    assert_int_equal(ev.id, 5000000001LL);
    assert_int_equal(ev.version, 4294967298LL);
    assert_int_equal(ev.replay_of, 4294967299LL);
    assert_int_equal(ev.occurred_at, 1709210096789012LL);
    assert_int_equal(env.message.properties.timestamp, 1709210096);
    assert_int_equal(ev.type, TF_EVENT_UPDATED);
    assert_int_equal(ev.aggregate_id.len, 2);
    assert_memory_equal(ev.aggregate_id.ptr, "42", 2);
    assert_int_equal(tf_event_field_get(&ev, "title")->len, strlen("té"));
    assert_memory_equal(tf_event_field_get(&ev, "title")->ptr, "té", strlen("té"));
    tf_event_clear(&ev);
    amqp_destroy_envelope(&env);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_low_id_committed_after_higher_ids_is_still_published(void **state)
{
    harness h;
    tf_err err;
    PGconn *slow;
    size_t n_want, n_got;
    int64_t *want, got[64];
    pid_t producer;

    harness_setup(&h, "producer_late_commit");
    slow = tf_pg_connect(h.pg_url, "slow-writer", &err);
    assert_non_null(slow);
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--poll", "200ms", NULL});
    assert_int_equal(tf_pg_command(slow, "begin", &err), 0);
    assert_int_equal(tf_pg_command(slow, "insert into internships (title) values ('slow')", &err), 0);
    harness_insert_internships(&h, 10); /* higher ids, committed first */
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    assert_int_equal(tf_pg_command(slow, "commit", &err), 0);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    want = harness_outbox_ids(&h, &n_want);
    assert_int_equal(n_want, 11);
    n_got = harness_drain_queue(&h, TF_QUEUE_NMF, got, 64, 1.0);
    assert_int_equal(n_got, 11);
    assert_true(harness_covers(got, n_got, want, n_want));
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    free(want);
    PQfinish(slow);
    harness_teardown(&h);
}

static void test_notify_wakes_the_producer_before_the_poll_interval(void **state)
{
    harness h;
    pid_t producer;
    double t0;

    harness_setup(&h, "producer_notify");
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--poll", "30s", NULL});
    /* Let it connect and go idle: the first drain happens at start-up. */
    harness_insert_internships(&h, 1);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 30), 0);
    t0 = harness_now();
    harness_insert_internships(&h, 5);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 20), 0);
    /* With a 30 s poll, only the NOTIFY can have woken it this soon. */
    assert_true(harness_now() - t0 < 20);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

static void test_configuration_error_is_one_line_and_nonzero(void **state)
{
    char cmd[1024], line[512] = "";
    FILE *p;
    int lines = 0;

    snprintf(cmd, sizeof(cmd), "%s/topicflow-producer --batch nope 2>&1", TF_BIN_DIR);
    p = popen(cmd, "r");
    while (fgets(line, sizeof(line), p))
        lines++;
    assert_int_equal(WEXITSTATUS(pclose(p)), 2);
    assert_int_equal(lines, 1);
    assert_non_null(strstr(line, "--batch"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_events_are_published_in_id_order_and_marked),
        cmocka_unit_test(test_message_has_the_documented_format),
        cmocka_unit_test(test_payload_of_any_json_shape_is_published_as_text),
        cmocka_unit_test(test_wide_integers_and_exact_time_arrive_unchanged),
        cmocka_unit_test(test_low_id_committed_after_higher_ids_is_still_published),
        cmocka_unit_test(test_notify_wakes_the_producer_before_the_poll_interval),
        cmocka_unit_test(test_configuration_error_is_one_line_and_nonzero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
