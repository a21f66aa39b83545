/*
 * test_cli_load.c - `topicflow load` against a real database: bad rows are reported with
 * their line numbers and skipped while good rows load (and the capture trigger writes their
 * events); --strict commits nothing of the failing batch; the output of `topicflow sample`
 * loads as JSONL from a pipe and as CSV, to identical rows.
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

#define COUNT_ROWS "select count(*) from internships"
#define COUNT_EVENTS "select count(*) from topicflow.outbox where event_type = 'created'"

static const char bad_csv[] =
    "title,company,skills,field\n"          /* 1: field is not a column: ignored */
    "\"Good one\",Acme,\"{sql,c++}\",x\n"    /* 2 */
    "\"Two fields\",Acme\n"                  /* 3: bad: field count */
    ",NoTitle,,x\n"                          /* 4: bad: title missing */
    "\"Bad array\",X,\"{sql\",x\n"           /* 5: bad: array */
    "\"bad utf8 \xff\",X,,x\n"               /* 6: bad: UTF-8 */
    "\"multi\nline\",Y,{a},x\n"              /* 7-8: good, spans two lines */
    "\"quote\"x,Z,,x\n"                      /* 9: bad: malformed CSV */
    "\"ok \"\"again\"\"\",Z,\"{\"\"a b\"\",c}\",x\n"; /* 10: good */

static void test_bad_csv_rows_are_reported_by_line_and_good_rows_load(void **state)
{
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_bad_csv");
    file = harness_write_file(&h, "bad.csv", bad_csv, strlen(bad_csv));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 0);
    assert_string_equal(out, "loaded 3 rows, skipped 5\n");
    assert_non_null(strstr(err, "line 3: 2 fields, the header has 4"));
    assert_non_null(strstr(err, "line 4: missing required column title"));
    assert_non_null(strstr(err, "line 5: invalid array literal"));
    assert_non_null(strstr(err, "line 6: invalid UTF-8 in column title"));
    assert_non_null(strstr(err, "line 9: malformed CSV"));
    assert_non_null(strstr(err, "ignoring 'field'"));
    assert_int_equal(harness_scalar(&h, COUNT_ROWS), 3);
    assert_int_equal(harness_scalar(&h, COUNT_EVENTS), 3);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where title = 'multi\nline'"
                                        " and skills = '{a}'"), 1);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where title = 'ok \"again\"'"
                                        " and skills = array['a b', 'c']"), 1);
    free(out);
    free(err);
    harness_teardown(&h);
}

static const char bad_jsonl[] =
    "{\"title\":\"j1\",\"skills\":[\"a\",\"b\"],\"lang\":\"en\"}\n" /* 1 */
    "{\"title\": \"j2\", \"skills\": [1]}\n"                          /* 2: bad array */
    "not json\n"                                                     /* 3: bad JSON */
    "{\"company\":\"no title\"}\n"                                   /* 4: title missing */
    "\n"                                                             /* 5: blank, ignored */
    "{\"title\":\"j3\",\"skills\":\"{x,y}\"}\n"                      /* 6: literal is fine */
    "{\"title\":\"bad \xff\"}\n"                                     /* 7: bad UTF-8 */
    "{\"title\":\"nul \\u0000\"}\n"                                  /* 8: NUL */
    "{\"title\":\"j4 \\u00e9\\ud83d\\ude00\",\"company\":null}\n";   /* 9 */

static void test_bad_jsonl_rows_are_reported_by_line_and_good_rows_load(void **state)
{
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_bad_jsonl");
    file = harness_write_file(&h, "bad.jsonl", bad_jsonl, strlen(bad_jsonl));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 0);
    assert_string_equal(out, "loaded 3 rows, skipped 5\n");
    assert_non_null(strstr(err, "line 2: invalid array in column skills"));
    assert_non_null(strstr(err, "line 3: invalid JSON"));
    assert_non_null(strstr(err, "line 4: missing required column title"));
    assert_non_null(strstr(err, "line 7: invalid JSON: at byte 15: invalid UTF-8"));
    assert_non_null(strstr(err, "line 8: a NUL byte"));
    assert_int_equal(harness_scalar(&h, COUNT_EVENTS), 3);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where"
                                        " title = 'j4 \xc3\xa9\xf0\x9f\x98\x80' and company is null"), 1);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where skills = '{x,y}'"), 1);
    free(out);
    free(err);
    harness_teardown(&h);
}

static const char strict_jsonl[] =
    "{\"title\":\"a\"}\n{\"title\":\"b\"}\n{\"title\":\"c\"}\n{\"company\":\"d\"}\n{\"title\":\"e\"}\n";

static void test_strict_aborts_and_commits_nothing_of_the_failing_batch(void **state)
{
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_strict");
    file = harness_write_file(&h, "strict.jsonl", strict_jsonl, strlen(strict_jsonl));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", "--strict", file, NULL},
                                 NULL, &out, &err), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "line 4: missing required column title"));
    assert_non_null(strstr(err, "aborted at line 4 (--strict)"));
    assert_int_equal(harness_scalar(&h, COUNT_ROWS), 0);
    assert_int_equal(harness_scalar(&h, COUNT_EVENTS), 0);
    free(out);
    free(err);
    /* With batches of 2, the batch of lines 1-2 committed before line 4 was read. */
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"load", file, "--strict", "--batch", "2", NULL},
                                 NULL, NULL, NULL), 1);
    assert_int_equal(harness_scalar(&h, COUNT_ROWS), 2);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where title in ('a', 'b')"), 2);
    harness_teardown(&h);
}

static void test_row_the_server_refuses_is_skipped_and_its_batch_retried(void **state)
{
    static const char csv[] = "title,created_at\nt1,2024-01-01\nt2,yesterdayish\nt3,2024-01-02\n";
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_server_refuses");
    file = harness_write_file(&h, "refused.csv", csv, strlen(csv));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 0);
    assert_string_equal(out, "loaded 2 rows, skipped 1\n");
    assert_non_null(strstr(err, "line 3: invalid input syntax for type timestamp"));
    assert_int_equal(harness_scalar(&h, "select count(*) from internships where title in ('t1', 't3')"), 2);
    assert_int_equal(harness_scalar(&h, COUNT_EVENTS), 2);
    free(out);
    free(err);
    harness_teardown(&h);
}

/* Runs `topicflow sample ... | topicflow load ...` through the shell; returns load's stdout. */
static char *pipeline(harness *h, const char *sample_args, const char *load_args)
{
    char cmd[2048], *out = calloc(1, 4096);
    FILE *p;
    size_t n;

    snprintf(cmd, sizeof(cmd),
             "%s/topicflow sample %s | TOPICFLOW_PG_URL='%s' %s/topicflow load %s 2>/dev/null",
             TF_BIN_DIR, sample_args, h->pg_url, TF_BIN_DIR, load_args);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(out, 1, 4095, p);
    out[n] = '\0';
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    return out;
}

static void test_sample_output_loads_from_a_pipe_and_as_csv_to_identical_rows(void **state)
{
    harness h;
    char *out, csv_path[1024], cmd[2048];

    harness_setup_pg(&h, "cli_load_sample");
    out = pipeline(&h, "--count 500 --seed 7", "-");
    assert_string_equal(out, "loaded 500 rows, skipped 0\n");
    free(out);
    snprintf(csv_path, sizeof(csv_path), "%s/%s.sample.csv", TF_TEST_LOG_DIR, h.name);
    snprintf(cmd, sizeof(cmd), "%s/topicflow sample --count 500 --seed 7 --format csv --output %s",
             TF_BIN_DIR, csv_path);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", csv_path, NULL}, NULL,
                                 &out, NULL), 0);
    assert_string_equal(out, "loaded 500 rows, skipped 0\n");
    free(out);
    assert_int_equal(harness_scalar(&h, COUNT_EVENTS), 1000);
    /* Every posting arrived twice, byte for byte, skills arrays included. */
    assert_int_equal(harness_scalar(&h, "select count(*) from (select 1 from internships"
                                        " group by title, company, location, description, skills"
                                        " having count(*) = 2) t"), 500);
    assert_int_equal(harness_scalar(&h, "select count(*) from internships"
                                        " where cardinality(skills) between 1 and 8"), 1000);
    assert_true(harness_scalar(&h, "select count(*) from internships where title ~ '[\\u0600-\\u06ff]'") > 0);
    /* Batches of 7 rows through stdin (CSV detected from the first byte). */
    out = pipeline(&h, "--count 50 --seed 9 --format csv", "--batch 7 -");
    assert_string_equal(out, "loaded 50 rows, skipped 0\n");
    free(out);
    assert_int_equal(harness_scalar(&h, COUNT_ROWS), 1050);
    harness_teardown(&h);
}

static void test_other_table_is_loaded_by_its_own_columns(void **state)
{
    static const char jsonl[] =
        "{\"ref\": \"r1\", \"n\": 3, \"meta\": {\"a\": [1, 2]}, \"tags\": [\"x\"], \"done\": true}\n"
        "{\"ref\": \"r2\", \"n\": 4.5}\n"; /* 4.5 is no integer: the server refuses line 2 */
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_other_table");
    harness_sql(&h, "create schema app");
    harness_sql(&h, "create table app.items (id serial primary key, ref text not null, n int,"
                    " meta jsonb, tags text[], done boolean default false)");
    file = harness_write_file(&h, "items.jsonl", jsonl, strlen(jsonl));
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"load", "--table", "app.items", file, NULL}, NULL,
                                 &out, &err), 0);
    assert_string_equal(out, "loaded 1 row, skipped 1\n");
    assert_non_null(strstr(err, "line 2: invalid input syntax for type integer"));
    assert_int_equal(harness_scalar(&h, "select count(*) from app.items where ref = 'r1' and n = 3"
                                        " and meta = '{\"a\": [1, 2]}' and tags = '{x}' and done"), 1);
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_clean_load_writes_nothing_on_stderr_when_it_is_no_terminal(void **state)
{
    static const char jsonl[] = "{\"title\": \"quiet\"}\n";
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_quiet");
    file = harness_write_file(&h, "quiet.jsonl", jsonl, strlen(jsonl));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 0);
    assert_string_equal(out, "loaded 1 row, skipped 0\n");
    assert_string_equal(err, "");
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_usage_errors_exit_2_with_one_line(void **state)
{
    harness h;
    char *err;

    harness_setup_pg(&h, "cli_load_usage");
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", NULL}, NULL, NULL, &err), 2);
    assert_int_equal(harness_count_lines(err), 1);
    free(err);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", "-", "--format", "xml", NULL},
                                 NULL, NULL, &err), 2);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "--format"));
    free(err);
    harness_teardown(&h);
}

static void test_every_row_skipped_is_exit_1(void **state)
{
    static const char csv[] = "title,company\n,NoTitle\n,Nor this\n";
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "cli_load_all_skipped");
    file = harness_write_file(&h, "none.csv", csv, strlen(csv));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 1);
    assert_string_equal(out, "loaded 0 rows, skipped 2\n");
    assert_non_null(strstr(err, "topicflow load: every row was skipped: nothing loaded\n"));
    free(out);
    free(err);
    harness_teardown(&h);
}

/* A row whose tracked text alone exceeds the workers' limit (default 1 MiB) loads, with a
 * warning naming its line: its event would never be processed. Untracked text does not count. */
static void test_row_larger_than_max_message_loads_with_a_warning(void **state)
{
    harness h;
    char *out, *err, *csv;
    const char *file;
    size_t big = (1 << 20) + 10, len = 0;

    harness_setup_pg(&h, "cli_load_max_message");
    csv = malloc(3 * big + 256);
    assert_non_null(csv);
    len += (size_t)sprintf(csv + len, "title,company,description\nsmall,Acme,fine\nhuge,Acme,");
    memset(csv + len, 'x', big);
    len += big;
    len += (size_t)sprintf(csv + len, "\nwide,");
    memset(csv + len, 'y', big); /* company: not a tracked column */
    len += big;
    len += (size_t)sprintf(csv + len, ",short\n");
    file = harness_write_file(&h, "big.csv", csv, len);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, &out, &err), 0);
    assert_string_equal(out, "loaded 3 rows, skipped 0\n");
    assert_string_equal(err, "topicflow load: line 3: 1048590 bytes of tracked text, more than a worker's "
                             "--max-message (1M): the row loads, but its event will be set aside or "
                             "dead-lettered, never processed\n");
    free(out);
    free(err);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", "--max-message", "2M", file, NULL},
                                 NULL, &out, &err), 0);
    assert_string_equal(err, "");
    free(out);
    free(err);
    free(csv);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_csv_rows_are_reported_by_line_and_good_rows_load),
        cmocka_unit_test(test_bad_jsonl_rows_are_reported_by_line_and_good_rows_load),
        cmocka_unit_test(test_strict_aborts_and_commits_nothing_of_the_failing_batch),
        cmocka_unit_test(test_row_the_server_refuses_is_skipped_and_its_batch_retried),
        cmocka_unit_test(test_sample_output_loads_from_a_pipe_and_as_csv_to_identical_rows),
        cmocka_unit_test(test_other_table_is_loaded_by_its_own_columns),
        cmocka_unit_test(test_clean_load_writes_nothing_on_stderr_when_it_is_no_terminal),
        cmocka_unit_test(test_usage_errors_exit_2_with_one_line),
        cmocka_unit_test(test_every_row_skipped_is_exit_1),
        cmocka_unit_test(test_row_larger_than_max_message_loads_with_a_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
