/*
 * test_cli_track.c - `topicflow track` attaches capture to a table of the user's: an insert
 * into it then writes an outbox event with the tracked text; the aggregate type defaults to
 * the singular of the table name; mistakes are one line and a non-zero exit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void test_tracked_table_insert_writes_an_outbox_event(void **state)
{
    harness h;
    char *out, *payload;

    harness_setup_pg(&h, "cli_track_insert");
    harness_sql(&h, "create table public.job_posts (post_id text primary key, headline text,"
                    " body text, salary int)");
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"track", "job_posts", "--id", "post_id", "--text",
                                                  "headline, body", NULL},
                                 NULL, &out, NULL), 0);
    assert_string_equal(out, "tracking public.job_posts: aggregate job_post, id column post_id,"
                             " text columns headline, body, capture outbox\n");
    free(out);
    harness_sql(&h, "insert into job_posts values ('p1', 'Data intern', 'SQL and Python', 100)");
    harness_sql(&h, "update job_posts set salary = 200"); /* untracked column: no event */
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox"
                                        " where source = 'public.job_posts'"), 1);
    payload = harness_query_text(&h, "select payload::text from topicflow.outbox"
                                     " where aggregate_type = $1 and aggregate_id = 'p1'"
                                     " and event_type = 'created'", "job_post");
    assert_non_null(payload);
    assert_string_equal(payload, "{\"body\": \"SQL and Python\", \"headline\": \"Data intern\"}");
    free(payload);
    harness_teardown(&h);
}

static void test_default_aggregate_is_the_singular_table_name(void **state)
{
    static const char *const tables[][2] = {
        {"companies", "company"}, {"addresses", "address"}, {"Boxes", "box"},
        {"status", "status"},     {"news_items", "news_item"},
    };
    harness h;

    harness_setup_pg(&h, "cli_track_singular");
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
        char sql[256], *agg;
        snprintf(sql, sizeof(sql), "create table \"%s\" (id int primary key, name text)", tables[i][0]);
        harness_sql(&h, sql);
        snprintf(sql, sizeof(sql), "\"%s\"", tables[i][0]);
        assert_int_equal(harness_run(&h, "topicflow",
                                     (const char *[]){"track", sql, "--id", "id", "--text", "name", NULL},
                                     NULL, NULL, NULL), 0);
        agg = harness_query_text(&h, "select t.aggregate_type from topicflow.tracked_tables t"
                                     " join pg_class c on c.oid = $1::regclass"
                                     " join pg_namespace n on n.oid = c.relnamespace"
                                     " where t.source = format('%I.%I', n.nspname, c.relname)", sql);
        assert_non_null(agg);
        assert_string_equal(agg, tables[i][1]);
        free(agg);
    }
    harness_teardown(&h);
}

static void test_explicit_aggregate_is_used(void **state)
{
    harness h;

    harness_setup_pg(&h, "cli_track_explicit");
    harness_sql(&h, "create table offers (id bigint primary key, txt text)");
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"track", "--aggregate", "job_offer", "offers",
                                                  "--id=id", "--text=txt", NULL},
                                 NULL, NULL, NULL), 0);
    harness_sql(&h, "insert into offers values (7, 'hello')");
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox"
                                        " where aggregate_type = 'job_offer' and aggregate_id = '7'"), 1);
    harness_teardown(&h);
}

static void test_mistakes_are_one_line_and_nonzero(void **state)
{
    harness h;
    char *err;

    harness_setup_pg(&h, "cli_track_mistakes");
    harness_sql(&h, "create table t1 (id int primary key, a text)");
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"track", "t1", "--id", "id", NULL},
                                 NULL, NULL, &err), 2);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "--text is required"));
    free(err);
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"track", "t1", "--id", "id", "--text", "nope", NULL},
                                 NULL, NULL, &err), 1);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "column \"nope\" does not exist"));
    free(err);
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"track", "missing", "--id", "id", "--text", "a", NULL},
                                 NULL, NULL, &err), 1);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "\"missing\" does not exist"));
    free(err);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.tracked_tables"
                                        " where source = 't1'"), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracked_table_insert_writes_an_outbox_event),
        cmocka_unit_test(test_default_aggregate_is_the_singular_table_name),
        cmocka_unit_test(test_explicit_aggregate_is_used),
        cmocka_unit_test(test_mistakes_are_one_line_and_nonzero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
