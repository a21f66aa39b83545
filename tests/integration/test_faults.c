/*
 * test_faults.c - the faults the first suite did not make, each shown on real servers:
 * a database stall longer than two heartbeats, an idle dead-letter connection, outbox rows
 * no message can be made of, a table re-tracked under a new aggregate type, two keys
 * swapped in one statement, a non-unique id column, and retention under sustained writes.
 * Each test failed on the code before its fix.
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
#define UNPUBLISHED "select count(*) from topicflow.outbox where published_at is null"

static PGconn *second_session(harness *h)
{
    PGconn *c = PQconnectdb(h->pg_url);

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);

    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
}

/* Issue 11.1: the worker waits on a table lock for 7 s, twice, with 1 s heartbeats. Before
 * the keeper thread the broker closed its connection after two missed heartbeats and every
 * unacked message came back with its delivery count raised (dead-lettered at limit 1). */
static void test_database_stall_longer_than_two_heartbeats_keeps_the_connection(void **state)
{
    harness h;
    PGconn *locker;
    pid_t w, producer;
    const char *worker_args[] = {"--heartbeat", "1", "--batch", "50", "--delivery-limit", "1", NULL};
    const char *producer_args[] = {"--delivery-limit", "1", NULL};

    harness_setup(&h, "fault_stall");
    w = pipeline_spawn_worker(&h, worker_args);
    assert_true(harness_wait_queue_exists(&h, "topicflow.nmf", 1, 30));
    producer = harness_spawn(&h, "topicflow-producer", producer_args);
    harness_insert_internships(&h, 50);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 50, 60), 50);
    locker = second_session(&h);
    for (int stall = 0; stall < 2; stall++) {
        exec_ok(locker, "begin");
        exec_ok(locker, "lock table topicflow.documents in access exclusive mode");
        harness_insert_internships(&h, 150);
        /* the worker's batch is now blocked on the lock */
        sleep(7);
        exec_ok(locker, "commit");
        assert_int_equal(harness_wait_scalar(&h, PROCESSED, 50 + 150 * (stall + 1), 60),
                         50 + 150 * (stall + 1));
    }
    PQfinish(locker);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.dead"), 0);
    assert_false(harness_log_contains(w, "reconnecting"));
    assert_false(harness_log_contains(w, "ack failed"));
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    pipeline_assert_statistics_consistent(&h);
    harness_teardown(&h);
}

/* Issue 11.2: the dead-letter connection is used only to dead-letter; idle for longer than
 * two heartbeats, it used to be dropped, so the next dead letter failed, the worker
 * reconnected and its whole inbox came back. */
static void test_idle_dead_letter_connection_survives(void **state)
{
    harness h;
    pid_t w;
    const char *worker_args[] = {"--heartbeat", "1", NULL};
    static const char garbage[] = "\xc1\xc1 not msgpack";

    harness_setup(&h, "fault_idle_dlq");
    w = pipeline_spawn_worker(&h, worker_args);
    assert_true(harness_wait_queue_exists(&h, "topicflow.nmf", 1, 30));
    pipeline_publish(&h, 1, "created", "1", 1, "Data intern", "SQL and dashboards");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 1, 30), 1);
    sleep(5); /* both connections idle for five heartbeats */
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, 1, "2");
    for (double end = harness_now() + 30; harness_now() < end && pipeline_queue_depth(&h, "topicflow.dead") < 1;)
        usleep(50000);
    sleep(1);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.dead"), 1);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 0);
    assert_false(harness_log_contains(w, "reconnecting"));
    assert_false(harness_log_contains(w, "socket error"));
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    harness_teardown(&h);
}

/* Issue 11.3: a payload that is valid JSON but not an object, and a message over
 * --max-message, used to fail their batch forever and stall every later event. */
static void test_unpublishable_rows_are_set_aside_and_block_nothing(void **state)
{
    harness h;
    pid_t producer;
    char *out = NULL, *json;
    const char *list_args[] = {"outbox", "list", "--json", NULL};

    harness_setup(&h, "fault_poison");
    harness_insert_internships(&h, 10);
    harness_sql(&h, "insert into topicflow.outbox (id, source, aggregate_type, aggregate_id, event_type,"
                    " version, payload) values (1000001, 'public.internships', 'internship', '9001',"
                    " 'created', 1, '[\"x\"]')");
    harness_sql(&h, "insert into topicflow.outbox (id, source, aggregate_type, aggregate_id, event_type,"
                    " version, payload) values (1000002, 'public.internships', 'internship', '9002',"
                    " 'created', 1, jsonb_build_object('title', repeat('big ', 400000)))");
    harness_sql(&h, "insert into public.internships (title) select 'late ' || g from generate_series(1, 10) g");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 60), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox where published_at is not null"), 20);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected"), 2);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected where id = 1000001"
                                        " and reason like 'payload is not a JSON object%'"), 1);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected where id = 1000002"
                                        " and reason like 'message of % bytes exceeds --max-message%'"), 1);
    assert_int_equal(pipeline_queue_depth(&h, "topicflow.nmf"), 20);
    /* what operators see */
    assert_int_equal(harness_run(&h, "topicflow", list_args, NULL, &out, NULL), 0);
    json = harness_query_text(&h, "select jsonb_array_length($1::jsonb)::text", out);
    assert_string_equal(json, "2");
    free(json);
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"status", "--json", NULL}, NULL, &out, NULL), 0);
    json = harness_query_text(&h, "select ($1::jsonb->>'outbox_rejected')", out);
    assert_string_equal(json, "2");
    free(json);
    free(out);
    /* discard needs --yes; retry puts the row back, where it is set aside again */
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"outbox", "discard", "1000001", NULL}, NULL, NULL, NULL), 2);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"outbox", "discard", "1000001", "--yes", NULL}, NULL, NULL, NULL), 0);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"outbox", "discard", "1000001", "--yes", NULL}, NULL, NULL, NULL), 1);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"outbox", "retry", "1000002", NULL}, NULL, NULL, NULL), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected"), 0);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.outbox_rejected where id = 1000002", 1, 30), 1);
    assert_int_equal(harness_scalar(&h, UNPUBLISHED), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

/* Issue 11.4: versions were counted per (aggregate type, id) and compared per (source,
 * id): after re-tracking under a new aggregate type every update was applied as stale. */
static void test_retracking_under_a_new_aggregate_type_keeps_updating(void **state)
{
    harness h;
    pid_t producer, w;
    const char *track[] = {"track", "public.internships", "--id", "id", "--text",
                           "title,description,skills", "--aggregate", "posting", NULL};

    harness_setup(&h, "fault_retrack");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w = pipeline_spawn_worker(&h, NULL);
    harness_insert_internships(&h, 5);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 5, 60), 5);
    assert_int_equal(harness_run(&h, "topicflow", track, NULL, NULL, NULL), 0);
    harness_sql(&h, "update public.internships set title = 'Quantum welding apprentice'"
                    " where id = (select min(id) from public.internships)");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 6, 60), 6);
    /* the update is the document's state now: newer version, its event */
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents d join topicflow.outbox o on o.id = d.event_id"
        " where d.doc_id = (select min(id)::text from public.internships)"
        " and o.aggregate_type = 'posting' and d.version = 2"), 1);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

/* Issue 11.5: swapping two keys in one statement emitted, for the second row, a delete of
 * a key the first row had just taken: a live row ended as a tombstone. */
static void test_key_swap_in_one_statement_keeps_both_documents(void **state)
{
    harness h;

    harness_setup_pg(&h, "fault_key_swap");
    harness_sql(&h, "create table public.codes (code text, body text,"
                    " constraint codes_pk primary key (code) deferrable initially deferred)");
    harness_sql(&h, "select topicflow.track('public.codes', 'code', array['body'], 'code')");
    harness_sql(&h, "insert into public.codes values ('a', 'alpha'), ('b', 'beta')");
    harness_sql(&h, "update public.codes set code = case code when 'a' then 'b' else 'a' end");
    /* the newest event of each key says it exists, with the content it has now */
    assert_int_equal(harness_scalar(&h,
        "select count(*) from (select distinct on (aggregate_id) aggregate_id, event_type, payload"
        " from topicflow.outbox where source = 'public.codes' order by aggregate_id, version desc) e"
        " join public.codes c on c.code = e.aggregate_id"
        " where e.event_type <> 'deleted' and e.payload->>'body' = c.body"), 2);
    /* a plain key change still deletes the old key */
    harness_sql(&h, "update public.codes set code = 'c' where code = 'a'");
    assert_string_equal(harness_query_text(&h,
        "select event_type from topicflow.outbox where aggregate_id = $1 order by version desc limit 1", "a"),
        "deleted");
    harness_teardown(&h);
}

static void test_track_refuses_an_id_column_that_is_not_unique(void **state)
{
    harness h;
    char *err = NULL;
    const char *track[] = {"track", "public.notes", "--id", "ref", "--text", "body", NULL};

    harness_setup_pg(&h, "fault_track_unique");
    harness_sql(&h, "create table public.notes (id int primary key, ref int, body text)");
    assert_int_equal(harness_run(&h, "topicflow", track, NULL, NULL, &err), 1);
    assert_non_null(strstr(err, "is not unique"));
    assert_int_equal(harness_count_lines(err), 1);
    free(err);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.tracked_tables where source = 'public.notes'"), 0);
    harness_sql(&h, "create unique index on public.notes (ref)");
    assert_int_equal(harness_run(&h, "topicflow", track, NULL, NULL, NULL), 0);
    harness_teardown(&h);
}

/* Issue 11.6: retention ran only when the outbox was empty, at most once a minute. Under
 * steady writes it must keep deleting what is past the retention. */
static void test_retention_runs_under_sustained_writes(void **state)
{
    harness h;
    pid_t producer;
    const char *args[] = {"--retention", "2s", NULL};
    double end;

    harness_setup(&h, "fault_retention");
    producer = harness_spawn(&h, "topicflow-producer", args);
    end = harness_now() + 14;
    while (harness_now() < end) {
        harness_sql(&h, "insert into public.internships (title) select 'steady ' || g from generate_series(1, 100) g");
        usleep(50000);
    }
    assert_true(harness_scalar(&h, "select count(*) from topicflow.outbox") > 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox"
                                        " where published_at < now() - interval '8 seconds'"), 0);
    assert_true(harness_log_contains(producer, "retention deleted published events"));
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

/* The database restored under a running worker (here: its derived tables emptied, term ids
 * starting over) and the worker's sessions cut: once reconnected it reads the vocabulary
 * and the model again, instead of writing term ids it cached from the database it knew. */
static void test_restored_database_is_read_again_after_a_reconnect(void **state)
{
    harness h;
    pid_t producer, w;

    harness_setup(&h, "fault_restore");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w = pipeline_spawn_worker(&h, NULL);
    harness_insert_internships(&h, 100);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 100, 60), 100);
    assert_true(harness_wait_scalar(&h, "select (count(*) > 0)::int from topicflow.model", 1, 60) == 1);
    harness_sql(&h, "truncate topicflow.documents, topicflow.document_versions, topicflow.terms,"
                    " topicflow.model_deltas, topicflow.model, topicflow.model_epochs,"
                    " topicflow.model_quality, topicflow.processed_events restart identity cascade");
    /* new terms first, so that the ids restart on other words than before */
    harness_sql(&h, "insert into topicflow.terms (term) select 'restored' || g from generate_series(1, 40) g");
    harness_sql(&h, "select pg_terminate_backend(pid) from pg_stat_activity"
                    " where application_name like 'topicflow-worker%'");
    harness_insert_internships(&h, 60);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 60, 60), 60);
    /* every id a document holds is a term of this database, and the word it was counted as */
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents d cross join unnest(d.term_ids) x"
        " where not exists (select 1 from topicflow.terms t where t.id = x)"
        "    or exists (select 1 from topicflow.terms t where t.id = x and t.term like 'restored%')"), 0);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_database_stall_longer_than_two_heartbeats_keeps_the_connection),
        cmocka_unit_test(test_idle_dead_letter_connection_survives),
        cmocka_unit_test(test_unpublishable_rows_are_set_aside_and_block_nothing),
        cmocka_unit_test(test_retracking_under_a_new_aggregate_type_keeps_updating),
        cmocka_unit_test(test_key_swap_in_one_statement_keeps_both_documents),
        cmocka_unit_test(test_track_refuses_an_id_column_that_is_not_unique),
        cmocka_unit_test(test_retention_runs_under_sustained_writes),
        cmocka_unit_test(test_restored_database_is_read_again_after_a_reconnect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
