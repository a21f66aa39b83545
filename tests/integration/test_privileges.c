/*
 * test_privileges.c - the roles confine (sql/006): connected as topicflow_producer, as
 * topicflow_worker and as a role with no grant at all, a table of statements each must be
 * allowed or refused with insufficient_privilege (42501). Both directions: a role that
 * cannot do its job fails here as surely as one that can forge or lose events.
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

typedef struct rule {
    const char *sql;
    int allowed;
} rule;

static void check(harness *h, const char *role, const rule *rules, size_t n)
{
    char url[600];
    PGconn *c;

    harness_role_url(h, role, url, sizeof(url));
    c = PQconnectdb(url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    for (size_t i = 0; i < n; i++) {
        PGresult *res;
        const char *state;
        int ok;
        PQclear(PQexec(c, "begin"));
        res = PQexec(c, rules[i].sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (rules[i].allowed && !ok)
            fail_msg("%s should be allowed to: %s\n  got: %s", role, rules[i].sql, PQerrorMessage(c));
        if (!rules[i].allowed && (ok || !state || strcmp(state, "42501") != 0))
            fail_msg("%s should be refused (42501): %s\n  got: %s", role, rules[i].sql,
                     ok ? "success" : PQerrorMessage(c));
        PQclear(res);
        PQclear(PQexec(c, "rollback"));
    }
    PQfinish(c);
}

static void test_roles_allow_their_job_and_nothing_that_loses_or_forges(void **state)
{
    harness h;
    static const rule producer[] = {
        {"select id, payload from topicflow.outbox where published_at is null for update skip locked", 1},
        {"update topicflow.outbox set published_at = now() where id = 1", 1},
        {"select topicflow.outbox_set_aside(1, 'test')", 1},
        {"select topicflow.outbox_delete_published(3600, 10)", 1},
        {"delete from topicflow.outbox where published_at is null", 0},
        /* capture wal: the relation mapping, never a forged replay */
        {"select source, id_column, text_columns from topicflow.tracked_tables where capture = 'wal'", 1},
        {"select topicflow.replay_current()", 0},
        /* capture wal: a change sets itself aside through the function, arguments only */
        {"select topicflow.wal_set_aside(4611686018427387905, 'public.internships', 'internship', '1',"
         " 'created', 4611686018427387905, '{\"title\": \"big\"}', 0, 'test')", 1},
        {"insert into topicflow.outbox_rejected (id, source, aggregate_type, aggregate_id, event_type,"
         " version, payload, created_at, reason) values (1, 's', 'a', '1', 'created', 1, '{}', now(), 'x')", 0},
        {"select topicflow.track('public.internships', 'id', array['title'], 'x', 'wal')", 0},
        {"update topicflow.outbox set payload = '{}' where id = 1", 0},
        {"insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type, version, payload)"
         " values ('public.internships', 'internship', '1', 'created', 9, '{}')", 0},
        {"select topicflow.emit('public.internships', 'internship', '424242', 'created', '{\"title\": \"forged\"}')", 0},
        {"select topicflow.outbox_retry(1)", 0},
        {"delete from topicflow.outbox_rejected", 0},
        {"select * from topicflow.documents", 0},
        {"select * from topicflow.term_forms", 0},
        {"insert into topicflow.processed_events values (1)", 0},
        {"insert into public.internships (title) values ('x')", 0},
    };
    static const rule worker[] = {
        {"select * from topicflow.documents for update", 1},
        {"insert into topicflow.processed_events (event_id) values (987654321)", 1},
        {"insert into topicflow.terms (term) values ('zzzz')", 1},
        {"update topicflow.terms set df = df", 1},
        {"update topicflow.documents set deleted = deleted", 1},
        {"insert into topicflow.model_deltas (worker, base_version, n_docs, df_terms, df_deltas)"
         " values ('w', 0, 0, '{}', '{}')", 1},
        {"delete from topicflow.model_deltas where id < 0", 1},
        {"delete from topicflow.model where version < 0", 1},
        {"select * from topicflow.model_epochs", 1},
        {"select pg_try_advisory_xact_lock(7340155, 1)", 1},
        {"insert into topicflow.term_form_deltas (term_ids, forms) values ('{1}', '{x}')", 1},
        {"select topicflow.fold_term_forms()", 1},
        {"insert into topicflow.term_forms (term_id, form, docs) values (1, 'x', 1)"
         " on conflict (term_id, form) do update set docs = topicflow.term_forms.docs + 1", 1},
        {"select display from topicflow.topics", 1},
        {"delete from topicflow.term_forms", 0},
        {"truncate topicflow.term_form_deltas", 0},
        {"insert into topicflow.topic_labels (topic, label) values (0, 'x')", 0},
        {"select * from topicflow.topic_labels", 0},
        {"select topicflow.document_title('public.internships', '1')", 0},
        {"delete from topicflow.processed_events", 0},
        {"update topicflow.processed_events set event_id = event_id", 0},
        {"truncate topicflow.processed_events", 0},
        {"delete from topicflow.documents", 0},
        {"delete from topicflow.terms", 0},
        {"select * from topicflow.outbox", 0},
        {"select topicflow.emit('public.internships', 'internship', '424242', 'created', '{\"title\": \"forged\"}')", 0},
        {"select topicflow.track('public.internships', 'id', array['title'], 'x')", 0},
    };
    static const rule nobody[] = {
        {"select topicflow.emit('public.internships', 'internship', '424242', 'created', '{\"title\": \"forged\"}')", 0},
        {"select topicflow.outbox_set_aside(1, 'x')", 0},
        {"select topicflow.wal_set_aside(1, 's', 'a', '1', 'created', 1, '{}', 0, 'x')", 0},
        {"select topicflow.outbox_delete_published(0, 1000)", 0},
        {"select topicflow.key_exists('public.internships', 'id', '1')", 0},
        {"select topicflow.fold_term_forms()", 0},
        {"insert into topicflow.term_form_deltas (term_ids, forms) values ('{1}', '{x}')", 0},
    };

    harness_setup_pg(&h, "privileges");
    harness_insert_internships(&h, 3);
    harness_sql(&h, "do $$ begin create role topicflow_nobody login; exception when duplicate_object then null; end $$");
    harness_sql(&h, "grant usage on schema topicflow to topicflow_nobody");
    check(&h, "topicflow_producer", producer, sizeof(producer) / sizeof(producer[0]));
    check(&h, "topicflow_worker", worker, sizeof(worker) / sizeof(worker[0]));
    check(&h, "topicflow_nobody", nobody, sizeof(nobody) / sizeof(nobody[0]));
    /* a writer still captures through the triggers: no privilege on the functions needed */
    harness_sql(&h, "do $$ begin create role topicflow_app login; exception when duplicate_object then null; end $$");
    harness_sql(&h, "grant insert, update, delete, select on public.internships to topicflow_app");
    {
        char url[600];
        PGconn *c;
        PGresult *res;
        harness_role_url(&h, "topicflow_app", url, sizeof(url));
        c = PQconnectdb(url);
        assert_int_equal(PQstatus(c), CONNECTION_OK);
        res = PQexec(c, "insert into public.internships (title) values ('written by the app')");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("app insert: %s", PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
    }
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox"), 4);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles_allow_their_job_and_nothing_that_loses_or_forges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
