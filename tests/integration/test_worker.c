/*
 * test_worker.c - topicflow-worker against real servers: the whole pipeline with two
 * workers stores every document exactly once; duplicates, reordered versions and deletes
 * keep the model's bookkeeping exact; what can never be processed is dead-lettered with
 * a reason while the worker keeps going.
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

static void assert_model_bookkeeping(harness *h)
{
    pipeline_assert_df_consistent(h);
    pipeline_assert_doc_count_consistent(h);
    pipeline_assert_statistics_consistent(h);
}

static void test_two_workers_store_every_document_exactly_once(void **state)
{
    harness h;
    pid_t producer, w1, w2;
    const int n = 3000;

    harness_setup(&h, "worker_pipeline");
    harness_insert_internships(&h, n);
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w1 = pipeline_spawn_worker(&h, NULL);
    w2 = pipeline_spawn_worker(&h, NULL);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, n, 120), n);
    /* the first model is fitted once enough documents exist, then everything re-folded */
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.documents d where not deleted and"
        " model_version >= (select max(epoch) from topicflow.model)", n, 120), n);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents"), n);
    assert_int_equal(harness_scalar(&h,
        "select count(distinct worker) from topicflow.worker_activity where events > 0"), 2);
    assert_int_equal(harness_stop(w1, SIGTERM), 0);
    assert_int_equal(harness_stop(w2, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.dead"), 0);
    assert_true(harness_scalar(&h, "select count(*) from topicflow.topics") > 0);
    assert_model_bookkeeping(&h);
    harness_teardown(&h);
}

static void test_same_event_delivered_twice_has_effect_once(void **state)
{
    harness h;
    pid_t w;

    harness_setup(&h, "worker_duplicate");
    w = pipeline_spawn_worker(&h, (const char *[]){"--min-docs", "1000000", NULL});
    pipeline_publish(&h, 1, "created", "7", 1, "Data intern", "SQL and Python for analytics");
    pipeline_publish(&h, 1, "created", "7", 1, "Data intern", "SQL and Python for analytics");
    pipeline_publish(&h, 2, "created", "8", 1, "Nurse intern", "Patient care in a clinic");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 2, 30), 2);
    usleep(300000); /* give a wrongly applied second copy time to show */
    assert_int_equal(harness_scalar(&h, PROCESSED), 2);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents"), 2);
    assert_int_equal(harness_scalar(&h, "select coalesce(sum(n_docs), 0) from topicflow.model_deltas"), 2);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    pipeline_assert_df_consistent(&h);
    harness_teardown(&h);
}

static void test_update_before_insert_keeps_newest(void **state)
{
    harness h;
    pid_t w;

    harness_setup(&h, "worker_reorder");
    /* the update (version 2) is consumed before the insert (version 1) */
    pipeline_publish(&h, 11, "updated", "42", 2, "Backend intern", "Go services and PostgreSQL");
    pipeline_publish(&h, 10, "created", "42", 1, "Frontend intern", "React and CSS");
    w = pipeline_spawn_worker(&h, (const char *[]){"--batch", "1", NULL});
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 2, 30), 2);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents where doc_id = '42' and version = 2"
        " and event_id = 11 and not deleted"), 1);
    assert_int_equal(harness_scalar(&h, "select coalesce(sum(n_docs), 0) from topicflow.model_deltas"), 1);
    pipeline_assert_df_consistent(&h);
    harness_teardown(&h);
}

static void test_delete_removes_document_and_retracts_its_contribution(void **state)
{
    harness h;
    pid_t w;
    char title[64];

    harness_setup(&h, "worker_delete");
    w = pipeline_spawn_worker(&h, (const char *[]){"--min-docs", "30", NULL});
    for (int i = 1; i <= 40; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d", i);
        snprintf(title, sizeof(title), "%s intern %d", i % 2 ? "Data" : "Legal", i);
        pipeline_publish(&h, i, "created", id, 1, title,
                         i % 2 ? "statistics python dashboards sql" : "contracts court drafting law");
    }
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 40, 30), 40);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.documents"
                                             " where model_version is null or model_version < "
                                             "(select max(epoch) from topicflow.model)", 0, 60), 0);
    pipeline_publish(&h, 41, "deleted", "7", 2, NULL, NULL);
    pipeline_publish(&h, 42, "updated", "8", 2, "Legal intern 8", "arbitration compliance");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 42, 30), 42);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents where doc_id = '7' and deleted"
        " and topics is null and term_ids = '{}'"), 1);
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.document_topics where doc_id = '7'"), 0);
    assert_true(harness_scalar(&h,
        "select count(*) from topicflow.document_topics where doc_id = '8'") > 0);
    /* the deleted document's and the old version's (x, h) left the statistics exactly */
    pipeline_assert_statistics_consistent(&h);
    pipeline_assert_df_consistent(&h);
    pipeline_assert_doc_count_consistent(&h);
    harness_teardown(&h);
}

static void test_malformed_messages_are_dead_lettered_with_a_reason(void **state)
{
    harness h;
    pid_t w;
    static const char garbage[] = "\xc1not msgpack";
    char big[4096];
    tf_broker *b;
    tf_err err;
    int reasons = 0;

    harness_setup(&h, "worker_malformed");
    w = pipeline_spawn_worker(&h, (const char *[]){"--max-message", "2k", NULL});
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, 1, "m1");
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, -1, "m2");
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, 7, "m3");
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pipeline_publish(&h, 5, "created", "5", 1, "Oversized", big);
    pipeline_publish(&h, 6, "created", "6", 1, "the and of", "");     /* only stop words */
    pipeline_publish(&h, 7, "created", "7", 1, "Valid intern", "mechanical design");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 1, 30), 1);
    for (int i = 0; i < 100 && pipeline_queue_depth(&h, "topicflow.dead") < 5; i++)
        usleep(50000);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.dead"), 5);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    b = harness_broker(&h);
    for (int i = 0; i < 5; i++) {
        amqp_envelope_t env;
        const amqp_field_value_t *why;
        assert_int_equal(tf_broker_get(b, TF_QUEUE_DEAD, 0, &env, &err), 1);
        why = tf_amqp_header(&env.message.properties, TF_HEADER_ERROR);
        assert_non_null(why);
        assert_true(why->value.bytes.len > 5);
        reasons += memmem(why->value.bytes.bytes, why->value.bytes.len, "over the limit", 14) != NULL;
        reasons += memmem(why->value.bytes.bytes, why->value.bytes.len, "no text left", 12) != NULL;
        reasons += memmem(why->value.bytes.bytes, why->value.bytes.len, "schema", 6) != NULL;
        amqp_destroy_envelope(&env);
    }
    assert_int_equal(reasons, 4); /* limit, empty text, missing and unknown schema */
    tf_broker_close(b);
    /* still running and still processing */
    pipeline_publish(&h, 8, "created", "8", 1, "Another valid intern", "civil engineering site");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 2, 30), 2);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_workers_store_every_document_exactly_once),
        cmocka_unit_test(test_same_event_delivered_twice_has_effect_once),
        cmocka_unit_test(test_update_before_insert_keeps_newest),
        cmocka_unit_test(test_delete_removes_document_and_retracts_its_contribution),
        cmocka_unit_test(test_malformed_messages_are_dead_lettered_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
