/*
 * test_capture.c - the outbox triggers and migrations, against a real PostgreSQL:
 * one event per changed row inside the writer's transaction, none for untracked changes,
 * monotonic versions, one NOTIFY per statement, generic tracking of any table; and the
 * producer's retention pass finds old published rows through the published_at index instead
 * of walking the whole outbox.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "harness.h"
#include "pg/pg.h"

static harness H;

static int group_setup(void **state)
{
    harness_setup_pg(&H, "capture");
    return 0;
}

static int group_teardown(void **state)
{
    harness_teardown(&H);
    return 0;
}

static long long events_for(const char *aggregate_id_sql)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "select count(*) from topicflow.outbox where aggregate_id = (%s)::text",
             aggregate_id_sql);
    return harness_scalar(&H, sql);
}

static void test_insert_writes_one_created_event_with_tracked_text(void **state)
{
    harness_sql(&H, "insert into internships (title, company, description, skills) values "
                    "('Backend intern', 'Acme', 'Build APIs', array['go','sql'])");
    assert_int_equal(events_for("select max(id) from internships"), 1);
    assert_int_equal(harness_scalar(&H,
        "select count(*) from topicflow.outbox o, internships i where i.title = 'Backend intern'"
        " and o.aggregate_id = i.id::text and o.event_type = 'created' and o.version = 1"
        " and o.aggregate_type = 'internship' and o.source = 'public.internships'"
        " and o.payload = '{\"title\": \"Backend intern\", \"description\": \"Build APIs\","
        " \"skills\": \"go, sql\"}'::jsonb and o.published_at is null"), 1);
}

static void test_multi_row_statement_writes_one_event_per_row(void **state)
{
    long long before = harness_scalar(&H, "select count(*) from topicflow.outbox");
    harness_sql(&H, "insert into internships (title) select 'bulk ' || g from generate_series(1, 25) g");
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.outbox") - before, 25);
}

static void test_update_of_tracked_column_bumps_version(void **state)
{
    harness_sql(&H, "insert into internships (title) values ('versioned')");
    harness_sql(&H, "update internships set description = 'd1' where title = 'versioned'");
    harness_sql(&H, "update internships set skills = array['x'] where title = 'versioned'");
    assert_int_equal(harness_scalar(&H,
        "select (string_agg(event_type || version, ',' order by id) = 'created1,updated2,updated3')"
        "::int from topicflow.outbox where aggregate_id = "
        "(select id::text from internships where title = 'versioned')"), 1);
}

static void test_update_of_untracked_columns_writes_nothing(void **state)
{
    harness_sql(&H, "insert into internships (title) values ('untracked')");
    harness_sql(&H, "update internships set company = 'Other', location = 'Cairo' where title = 'untracked'");
    harness_sql(&H, "update internships set title = title where title = 'untracked'");
    assert_int_equal(events_for("select id from internships where title = 'untracked'"), 1);
}

static void test_rolled_back_insert_leaves_no_event(void **state)
{
    long long before = harness_scalar(&H, "select count(*) from topicflow.outbox");
    harness_sql(&H, "begin");
    harness_sql(&H, "insert into internships (title) values ('never')");
    harness_sql(&H, "rollback");
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.outbox"), before);
}

static void test_delete_writes_deleted_event_with_empty_payload(void **state)
{
    harness_sql(&H, "insert into internships (title) values ('doomed')");
    harness_sql(&H, "create temp table doomed as select id from internships where title = 'doomed'");
    harness_sql(&H, "delete from internships where title = 'doomed'");
    assert_int_equal(harness_scalar(&H,
        "select count(*) from topicflow.outbox where aggregate_id = (select id::text from doomed)"
        " and event_type = 'deleted' and version = 2 and payload = '{}'"), 1);
}

static void test_truncate_of_tracked_table_is_refused(void **state)
{
    PGresult *res = PQexec(H.pg, "truncate internships");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(res), "TRUNCATE would lose"));
    PQclear(res);
}

static int count_notifications(PGconn *listener)
{
    PGnotify *n;
    int count = 0;

    /* NOTIFY is delivered at the writer's commit; one round trip later it has arrived. */
    PQclear(PQexec(listener, "select 1"));
    PQconsumeInput(listener);
    while ((n = PQnotifies(listener)) != NULL) {
        count++;
        PQfreemem(n);
    }
    return count;
}

static void test_one_notify_per_statement_and_none_without_events(void **state)
{
    tf_err err;
    PGconn *listener = tf_pg_connect(H.pg_url, "listener", &err);

    assert_non_null(listener);
    assert_int_equal(tf_pg_command(listener, "listen topicflow_outbox", &err), 0);
    harness_sql(&H, "insert into internships (title) select 'n' || g from generate_series(1, 10) g");
    assert_int_equal(count_notifications(listener), 1);
    harness_sql(&H, "update internships set company = 'quiet' where title like 'n%'");
    assert_int_equal(count_notifications(listener), 0);
    harness_sql(&H, "update internships set description = 'loud' where title like 'n%'");
    assert_int_equal(count_notifications(listener), 1);
    PQfinish(listener);
}

static void test_notify_can_be_switched_off(void **state)
{
    tf_err err;
    PGconn *listener = tf_pg_connect(H.pg_url, "listener", &err);
    long long before = harness_scalar(&H, "select count(*) from topicflow.outbox");

    assert_non_null(listener);
    assert_int_equal(tf_pg_command(listener, "listen topicflow_outbox", &err), 0);
    harness_sql(&H, "set topicflow.notify = off");
    harness_sql(&H, "insert into internships (title) values ('silent')");
    harness_sql(&H, "reset topicflow.notify");
    assert_int_equal(count_notifications(listener), 0);
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.outbox"), before + 1);
    PQfinish(listener);
}

static void test_any_table_can_be_tracked(void **state)
{
    harness_sql(&H, "create table public.reviews (code text primary key, body text, stars int)");
    harness_sql(&H, "select topicflow.track('public.reviews', 'code', array['body'], 'review')");
    harness_sql(&H, "insert into reviews values ('r1', 'great mentors', 5)");
    harness_sql(&H, "update reviews set stars = 4 where code = 'r1'");
    harness_sql(&H, "update reviews set code = 'r2' where code = 'r1'");
    assert_int_equal(harness_scalar(&H,
        "select (string_agg(aggregate_id || ':' || event_type || version, ',' order by id)"
        " = 'r1:created1,r1:deleted2,r2:created1')::int from topicflow.outbox"
        " where aggregate_type = 'review'"), 1);
}

static void test_tracking_a_missing_column_is_an_error(void **state)
{
    PGresult *res = PQexec(H.pg, "select topicflow.track('public.internships', 'id', "
                                  "array['nope'], 'internship2')");
    assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
    assert_non_null(strstr(PQresultErrorMessage(res), "column \"nope\" does not exist"));
    PQclear(res);
}

static void test_migrate_again_applies_nothing(void **state)
{
    char cmd[2048];
    FILE *p;
    char line[256] = "";
    int none_applied = 0;

    /* the summary line; the roles' passwords (dev-services' env names them) follow it */
    snprintf(cmd, sizeof(cmd), "%s/topicflow migrate --pg '%s'", TF_BIN_DIR, H.pg_url);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(line, sizeof(line), p))
        none_applied |= strstr(line, "(0 applied now)") != NULL;
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    assert_true(none_applied);
}

/* Rows of the outbox read by index and sequential scans so far (statistics flushed first:
 * each statement on c is its own transaction, and the backend flushes when idle). */
static long long outbox_rows_read(PGconn *c)
{
    PGresult *r;
    long long v = -1;

    PQclear(PQexec(c, "select pg_stat_force_next_flush()"));
    PQclear(PQexec(c, "select pg_stat_clear_snapshot()"));
    r = PQexec(c, "select coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0)"
                  " from pg_stat_user_tables where relid = 'topicflow.outbox'::regclass");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static long long call_retention(PGconn *c, const char *age_s, const char *limit)
{
    const char *params[2] = {age_s, limit};
    PGresult *r = PQexecParams(c, "select topicflow.outbox_delete_published($1, $2)", 2, NULL,
                               params, NULL, NULL, 0);
    long long n;

    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    n = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* Issue 13: the retention pass (every 5 s on the producer's main loop) walked the primary key
 * through every row when none was old enough: 200-300 ms at 100,000 rows, a stall of the
 * stream every 5 s. It must find that nothing is due by the published_at index. */
static void test_retention_reads_only_old_rows(void **state)
{
    tf_err err;
    PGconn *c = tf_pg_connect(H.pg_url, "test-capture", &err);
    long long before, read, total;

    assert_non_null(c);
    /* on c, whose statistics outbox_rows_read flushes: another session's would arrive late */
    PQclear(PQexec(c, "insert into internships (title) select 'retention ' || g from generate_series(1, 20000) g"));
    PQclear(PQexec(c, "update topicflow.outbox set published_at = clock_timestamp() where published_at is null"));
    /* as autovacuum leaves it: statistics, and the BRIN ranges summarized */
    PQclear(PQexec(c, "vacuum analyze topicflow.outbox"));
    total = harness_scalar(&H, "select count(*) from topicflow.outbox");
    assert_true(total >= 20000);
    before = outbox_rows_read(c);
    assert_int_equal(call_retention(c, "3600", "5000"), 0);
    read = outbox_rows_read(c) - before;
    /* the index names the block ranges that may hold old rows: none here, except the last
     * range, which is not summarized before it fills; the old pass read every row */
    if (read * 2 > total)
        fail_msg("the retention pass read %lld of %lld outbox rows to delete none", read, total);
    /* and what is old enough still goes, a batch at a time */
    harness_sql(&H, "update topicflow.outbox set published_at = published_at - interval '2 hours'"
                    " where id in (select id from topicflow.outbox order by id limit 7000)");
    assert_int_equal(call_retention(c, "3600", "5000"), 5000);
    assert_int_equal(call_retention(c, "3600", "5000"), 2000);
    assert_int_equal(call_retention(c, "3600", "5000"), 0);
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.outbox"), total - 7000);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_writes_one_created_event_with_tracked_text),
        cmocka_unit_test(test_multi_row_statement_writes_one_event_per_row),
        cmocka_unit_test(test_update_of_tracked_column_bumps_version),
        cmocka_unit_test(test_update_of_untracked_columns_writes_nothing),
        cmocka_unit_test(test_rolled_back_insert_leaves_no_event),
        cmocka_unit_test(test_delete_writes_deleted_event_with_empty_payload),
        cmocka_unit_test(test_truncate_of_tracked_table_is_refused),
        cmocka_unit_test(test_one_notify_per_statement_and_none_without_events),
        cmocka_unit_test(test_notify_can_be_switched_off),
        cmocka_unit_test(test_any_table_can_be_tracked),
        cmocka_unit_test(test_tracking_a_missing_column_is_an_error),
        cmocka_unit_test(test_migrate_again_applies_nothing),
        cmocka_unit_test(test_retention_reads_only_old_rows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
