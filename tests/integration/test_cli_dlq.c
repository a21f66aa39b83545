/*
 * test_cli_dlq.c - `topicflow dlq` against a real broker: dead letters from the worker
 * (published to topicflow.dlx with x-topicflow-error) and from the broker (rejected) are
 * listed with their reason; listing loses and reorders nothing; requeue moves exactly the
 * chosen letters to topicflow.nmf with a requeue count; a requeue killed midway loses
 * nothing; purge needs --yes.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "wire/event_codec.h"

/* n worker dead letters with ids first..first+n-1, then wait until they are all there. */
static void put_dead_letters(tf_broker *b, long first, long n)
{
    uint32_t before = harness_queue_count(b, TF_QUEUE_DEAD);

    harness_publish_events(b, TF_EXCHANGE_DLX, first, n, "undecodable body: truncated msgpack");
    harness_wait_queue(b, TF_QUEUE_DEAD, before + (uint32_t)n, 30);
}

/* Takes the next message of topicflow.nmf and rejects it without requeue: the broker itself
 * dead-letters it (reason "rejected"). */
static void reject_one(tf_broker *b)
{
    uint32_t before = harness_queue_count(b, TF_QUEUE_DEAD);
    amqp_envelope_t env;
    tf_err err;

    assert_int_equal(tf_broker_get(b, TF_QUEUE_NMF, 0, &env, &err), 1);
    assert_int_equal(tf_broker_nack(b, env.delivery_tag, 0, 0, &err), 0);
    amqp_destroy_envelope(&env);
    harness_wait_queue(b, TF_QUEUE_DEAD, before + 1, 30);
}

static void put_rejected(tf_broker *b, long id)
{
    harness_publish_events(b, TF_EXCHANGE_EVENTS, id, 1, NULL);
    harness_wait_queue(b, TF_QUEUE_NMF, 1, 30);
    reject_one(b);
}

/* The message ids of a `dlq list --json` answer, comma-separated, in order. */
static char *json_ids(harness *h, const char *json)
{
    return harness_query_text(h, "select coalesce(string_agg(e->>'message_id', ',' order by i), '')"
                                 " from jsonb_array_elements($1::jsonb) with ordinality t(e, i)",
                              json);
}

static char *list_json(harness *h)
{
    char *out;

    assert_int_equal(harness_run(h, "topicflow",
                                 (const char *[]){"dlq", "list", "--json", "--limit", "0", NULL},
                                 NULL, &out, NULL), 0);
    return out;
}

static char *ids_text(long first, long last, long skip)
{
    char *s = calloc(1, (size_t)(last - first + 2) * 12);

    for (long id = first; id <= last; id++) {
        if (id == skip)
            continue;
        sprintf(s + strlen(s), "%s%ld", *s ? "," : "", id);
    }
    return s;
}

static void test_list_shows_worker_and_broker_dead_letters(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *v;

    harness_setup(&h, "cli_dlq_list");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, 3);
    put_rejected(b, 4);

    out = list_json(&h);
    v = harness_query_text(&h, "select jsonb_array_length($1::jsonb)::text", out);
    assert_string_equal(v, "4");
    free(v);
    v = json_ids(&h, out);
    assert_string_equal(v, "1,2,3,4");
    free(v);
    v = harness_query_text(&h, "select $1::jsonb->0->>'reason'", out);
    assert_string_equal(v, "undecodable body: truncated msgpack");
    free(v);
    v = harness_query_text(&h, "select $1::jsonb->3->>'reason'", out);
    assert_string_equal(v, "rejected");
    free(v);
    v = harness_query_text(&h, "select string_agg(e->>'routing_key' || ' ' || (e->>'death_count'), ',')"
                               " from jsonb_array_elements($1::jsonb) e", out);
    assert_string_equal(v, "internship.created 1,internship.created 1,internship.created 1,"
                           "internship.created 1");
    free(v);
    v = harness_query_text(&h, "select $1::jsonb->3->>'preview'", out);
    assert_string_equal(v, "Data analyst intern 4");
    free(v);
    /* first_death is ISO 8601 UTC, within a minute of now. */
    v = harness_query_text(&h, "select (abs(extract(epoch from (($1::jsonb->3->>'first_death')::timestamptz"
                               " - now()))) < 60)::text", out);
    assert_string_equal(v, "true");
    free(v);
    free(out);

    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "list", NULL}, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "MESSAGE_ID"));
    assert_non_null(strstr(out, "rejected"));
    assert_non_null(strstr(out, "Data analyst intern 2"));
    assert_non_null(strstr(out, "4 dead letters"));
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "list", "--limit", "2", NULL},
                                 NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "2 of 4 dead letters shown"));
    free(out);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 4);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_listing_twice_keeps_every_letter_in_order(void **state)
{
    harness h;
    tf_broker *b;
    char *first, *second, *ids1, *ids2, *want = ids_text(1, 150, 0);
    int64_t got[200];
    size_t n;

    harness_setup(&h, "cli_dlq_order");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, 150);
    first = list_json(&h);
    second = list_json(&h);
    ids1 = json_ids(&h, first);
    ids2 = json_ids(&h, second);
    assert_string_equal(ids1, want);
    assert_string_equal(ids2, want);
    /* And the queue itself still delivers them in the original order. */
    n = harness_drain_queue(&h, TF_QUEUE_DEAD, got, 200, 1.0);
    assert_int_equal(n, 150);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(got[i], (int64_t)i + 1);
    free(first);
    free(second);
    free(ids1);
    free(ids2);
    free(want);
    tf_broker_close(b);
    harness_teardown(&h);
}

/* Takes one message from topicflow.nmf; returns its x-topicflow-requeued (-1 if absent) and
 * fills id. Checks the stale headers were dropped. */
static long long take_requeued(tf_broker *b, long *id)
{
    amqp_envelope_t env;
    const amqp_field_value_t *v;
    char mid[32];
    long long count = -1;
    tf_err err;

    assert_int_equal(tf_broker_get(b, TF_QUEUE_NMF, 0, &env, &err), 1);
    snprintf(mid, sizeof(mid), "%.*s", (int)env.message.properties.message_id.len,
             (const char *)env.message.properties.message_id.bytes);
    *id = strtol(mid, NULL, 10);
    assert_memory_equal(env.routing_key.bytes, "internship.created", env.routing_key.len);
    assert_null(tf_amqp_header(&env.message.properties, TF_HEADER_ERROR));
    assert_non_null(tf_amqp_header(&env.message.properties, TF_HEADER_SCHEMA));
    v = tf_amqp_header(&env.message.properties, "x-topicflow-requeued");
    if (v && v->kind == AMQP_FIELD_KIND_I64)
        count = (long long)v->value.i64;
    assert_int_equal(tf_broker_ack(b, env.delivery_tag, 0, &err), 0);
    amqp_destroy_envelope(&env);
    return count;
}

static void test_requeue_by_id_moves_only_that_letter(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *ids;
    long id;

    harness_setup(&h, "cli_dlq_requeue_id");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, 5);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--id", "3", NULL},
                                 NULL, &out, NULL), 0);
    assert_string_equal(out, "requeued 1 dead letter to topicflow.events\n");
    free(out);
    harness_wait_queue(b, TF_QUEUE_NMF, 1, 30);
    assert_int_equal(take_requeued(b, &id), 1);
    assert_int_equal(id, 3);
    out = list_json(&h);
    ids = json_ids(&h, out);
    assert_string_equal(ids, "1,2,4,5");
    free(ids);
    free(out);
    /* Several ids: as a list and as further arguments; an unknown id is an error. */
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"dlq", "requeue", "--id", "1,5", "2", "77", NULL},
                                 NULL, &out, NULL), 1);
    assert_string_equal(out, "requeued 3 dead letters to topicflow.events\n");
    free(out);
    harness_wait_queue(b, TF_QUEUE_NMF, 3, 30);
    out = list_json(&h);
    ids = json_ids(&h, out);
    assert_string_equal(ids, "4");
    free(ids);
    free(out);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_requeue_all_lands_on_nmf_in_order_with_a_count(void **state)
{
    harness h;
    tf_broker *b;
    char *out;
    long id;

    harness_setup(&h, "cli_dlq_requeue_all");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, 20);
    put_rejected(b, 21);
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"dlq", "requeue", "--all", "--dry-run", NULL},
                                 NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "would requeue 21 dead letters (dry run: nothing changed)"));
    free(out);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 21);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_NMF), 0);

    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all", NULL},
                                 NULL, &out, NULL), 0);
    assert_string_equal(out, "requeued 21 dead letters to topicflow.events\n");
    free(out);
    harness_wait_queue(b, TF_QUEUE_NMF, 21, 30);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 0);
    for (long want = 1; want <= 21; want++) {
        assert_int_equal(take_requeued(b, &id), 1);
        assert_int_equal(id, want);
    }
    /* Requeued, dead again, requeued again: the count goes up. */
    put_dead_letters(b, 30, 1);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all", NULL},
                                 NULL, NULL, NULL), 0);
    harness_wait_queue(b, TF_QUEUE_NMF, 1, 30);
    reject_one(b);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all", NULL},
                                 NULL, NULL, NULL), 0);
    harness_wait_queue(b, TF_QUEUE_NMF, 1, 30);
    assert_int_equal(take_requeued(b, &id), 2);
    assert_int_equal(id, 30);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_requeue_killed_midway_loses_no_letter(void **state)
{
    enum { N = 5000 };
    harness h;
    tf_broker *b;
    int64_t *got = calloc(2 * N + 10, sizeof(*got)), *want = calloc(N, sizeof(*want));
    size_t n_dead, n_nmf;
    uint32_t at_kill;
    double end;
    pid_t pid;

    harness_setup(&h, "cli_dlq_requeue_killed");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, N);
    pid = harness_spawn(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all", NULL});
    end = harness_now() + 60;
    while ((at_kill = harness_queue_count(b, TF_QUEUE_NMF)) < N / 10 && harness_now() < end)
        usleep(5000);
    assert_int_equal(harness_stop(pid, SIGKILL), 128 + SIGKILL);
    print_message("killed the requeue with %u of %d letters on topicflow.nmf\n", at_kill, N);
    tf_broker_close(b);

    n_dead = harness_drain_queue(&h, TF_QUEUE_DEAD, got, 2 * N + 10, 2.0);
    n_nmf = harness_drain_queue(&h, TF_QUEUE_NMF, got + n_dead, 2 * N + 10 - n_dead, 2.0);
    print_message("afterwards: %zu in topicflow.dead, %zu in topicflow.nmf\n", n_dead, n_nmf);
    for (int i = 0; i < N; i++)
        want[i] = i + 1;
    assert_true(n_dead + n_nmf >= N);
    assert_true(harness_covers(got, n_dead + n_nmf, want, N));
    free(got);
    free(want);
    harness_teardown(&h);
}

static void test_purge_needs_yes_and_then_empties_the_queue(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *err;

    harness_setup(&h, "cli_dlq_purge");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_dead_letters(b, 1, 7);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "purge", NULL}, NULL,
                                 &out, &err), 2);
    assert_string_equal(out, "");
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "--yes"));
    free(out);
    free(err);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 7);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "purge", "--yes", NULL},
                                 NULL, &out, NULL), 0);
    assert_string_equal(out, "purged 7 dead letters from topicflow.dead\n");
    free(out);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 0);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_missing_dead_letter_queue_is_one_line(void **state)
{
    harness h;
    char *err;

    harness_setup(&h, "cli_dlq_no_queue"); /* a vhost where nothing declared the topology */
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "list", NULL}, NULL,
                                 NULL, &err), 1);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "topicflow.dead does not exist"));
    free(err);
    harness_teardown(&h);
}

/* Dead letter 1: an event; 2: bytes that are no event; 3: an event larger than the
 * workers' default --max-message (1 MiB). */
static void put_mixed_letters(tf_broker *b)
{
    size_t big = (1 << 20) + 100, len;
    char *title = malloc(big + 1), *body;

    assert_non_null(title);
    memset(title, 'x', big);
    title[big] = '\0';
    put_dead_letters(b, 1, 1);
    harness_publish_body(b, TF_EXCHANGE_DLX, 2, "\xc1 not msgpack", 13, "undecodable body: bad byte");
    body = harness_encode_event(3, title, &len);
    harness_publish_body(b, TF_EXCHANGE_DLX, 3, body, len, "message of 1048700 bytes is over the limit");
    free(body);
    free(title);
    harness_wait_queue(b, TF_QUEUE_DEAD, 3, 30);
}

static void test_list_decodes_events_and_shows_undecodable_bytes(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *v;

    harness_setup(&h, "cli_dlq_decode");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_mixed_letters(b);
    out = list_json(&h);
    v = harness_query_text(&h, "select string_agg(coalesce(e->'event'->>'type' || ' ' || (e->'event'->>'aggregate')"
                               " || ' ' || (e->'event'->>'aggregate_id') || ' v' || (e->'event'->>'version'),"
                               " 'null'), ',' order by i) from jsonb_array_elements($1::jsonb)"
                               " with ordinality t(e, i)", out);
    assert_string_equal(v, "created internship 1 v1,null,created internship 3 v1");
    free(v);
    v = harness_query_text(&h, "select $1::jsonb->1->>'preview'", out);
    assert_string_equal(v, "raw: \\xc1 not msgpack");
    free(v);
    v = harness_query_text(&h, "select left($1::jsonb->2->>'preview', 5)", out);
    assert_string_equal(v, "xxxxx");
    free(v);
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "list", NULL}, NULL, &out, NULL), 0);
    assert_non_null(strstr(out, "created internship 1 v1 (event 1, "));
    assert_non_null(strstr(out, "undecodable (13 bytes): raw: \\xc1 not msgpack"));
    free(out);
    tf_broker_close(b);
    harness_teardown(&h);
}

static void test_requeue_keeps_letters_that_would_die_again_unless_forced(void **state)
{
    harness h;
    tf_broker *b;
    char *out, *ids;

    harness_setup(&h, "cli_dlq_doomed");
    b = harness_broker(&h);
    harness_prepare_publisher(b);
    put_mixed_letters(b);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all", NULL},
                                 NULL, &out, NULL), 0);
    assert_string_equal(out, "requeued 1 dead letter to topicflow.events\n"
                             "kept 2 dead letters that would die again (1 undecodable, 1 larger than "
                             "--max-message (1M)); --force requeues them anyway\n");
    free(out);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_NMF), 1);
    out = list_json(&h);
    ids = json_ids(&h, out);
    assert_string_equal(ids, "2,3");
    free(ids);
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--all",
                                 "--max-message", "2M", NULL}, NULL, &out, NULL), 0);
    assert_string_equal(out, "requeued 1 dead letter to topicflow.events\n"
                             "kept 1 dead letter that would die again (1 undecodable); --force "
                             "requeues them anyway\n");
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"dlq", "requeue", "--id", "2",
                                 "--force", NULL}, NULL, &out, NULL), 0);
    assert_string_equal(out, "requeued 1 dead letter to topicflow.events\n");
    free(out);
    harness_wait_queue(b, TF_QUEUE_NMF, 3, 30);
    assert_int_equal(harness_queue_count(b, TF_QUEUE_DEAD), 0);
    tf_broker_close(b);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_shows_worker_and_broker_dead_letters),
        cmocka_unit_test(test_listing_twice_keeps_every_letter_in_order),
        cmocka_unit_test(test_requeue_by_id_moves_only_that_letter),
        cmocka_unit_test(test_requeue_all_lands_on_nmf_in_order_with_a_count),
        cmocka_unit_test(test_requeue_killed_midway_loses_no_letter),
        cmocka_unit_test(test_purge_needs_yes_and_then_empties_the_queue),
        cmocka_unit_test(test_missing_dead_letter_queue_is_one_line),
        cmocka_unit_test(test_list_decodes_events_and_shows_undecodable_bytes),
        cmocka_unit_test(test_requeue_keeps_letters_that_would_die_again_unless_forced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
