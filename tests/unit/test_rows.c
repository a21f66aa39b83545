/*
 * test_rows.c - the readers of `topicflow load` (cli/rows) on in-memory files: CSV records
 * with quotes, embedded line breaks and CRLF, an empty quoted field distinct from an empty
 * unquoted one, one bad line skipped alone; JSONL with a byte order mark and blank lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rows/csv.h"
#include "rows/jsonl.h"

static FILE *memfile(const char *text)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    assert_non_null(f);
    return f;
}

static int field_is(const csv_reader *r, size_t i, const char *text)
{
    return r->len[i] == strlen(text) && memcmp(r->rec.p + r->off[i], text, r->len[i]) == 0;
}

static void test_csv_quotes_and_line_breaks(void **state)
{
    FILE *f = memfile("\xef\xbb\xbftitle,skills\r\n\"multi\nline\",\"{\"\"a b\"\",c}\"\nlast,x");
    csv_reader r;
    const char *why = NULL;
    long line = 0;

    (void)state;
    csv_reader_init(&r, f);
    assert_int_equal(csv_read(&r, &line, &why), CSV_RECORD);
    assert_int_equal(line, 1);
    assert_int_equal(r.n_fields, 2);
    assert_true(field_is(&r, 0, "title"));
    assert_true(field_is(&r, 1, "skills"));
    assert_int_equal(csv_read(&r, &line, &why), CSV_RECORD);
    assert_int_equal(line, 2);
    assert_true(field_is(&r, 0, "multi\nline"));
    assert_true(field_is(&r, 1, "{\"a b\",c}"));
    assert_int_equal(csv_read(&r, &line, &why), CSV_RECORD);
    assert_int_equal(line, 4);
    assert_true(field_is(&r, 1, "x"));
    assert_int_equal(csv_read(&r, &line, &why), CSV_EOF);
    csv_reader_free(&r);
    fclose(f);
}

/* "" is an empty string, an empty unquoted field is NULL; both point into the record, also
 * when the record holds no byte at all. */
static void test_csv_empty_fields_are_quoted_or_not(void **state)
{
    FILE *f = memfile("\"\",\n");
    csv_reader r;
    const char *why = NULL;
    long line = 0;

    (void)state;
    csv_reader_init(&r, f);
    assert_int_equal(csv_read(&r, &line, &why), CSV_RECORD);
    assert_int_equal(r.n_fields, 2);
    assert_non_null(r.rec.p);
    assert_int_equal(r.len[0], 0);
    assert_int_equal(r.quoted[0], 1);
    assert_int_equal(r.quoted[1], 0);
    csv_reader_free(&r);
    fclose(f);
}

static void test_csv_bad_line_is_skipped_alone(void **state)
{
    FILE *f = memfile("\"quote\"x,Z\na\"b,c\nok,1\n\"open");
    csv_reader r;
    const char *why = NULL;
    long line = 0;

    (void)state;
    csv_reader_init(&r, f);
    assert_int_equal(csv_read(&r, &line, &why), CSV_BAD);
    assert_string_equal(why, "text after a closing quote");
    assert_int_equal(csv_read(&r, &line, &why), CSV_BAD);
    assert_string_equal(why, "a quote inside an unquoted field");
    assert_int_equal(csv_read(&r, &line, &why), CSV_RECORD);
    assert_int_equal(line, 3);
    assert_true(field_is(&r, 0, "ok"));
    assert_int_equal(csv_read(&r, &line, &why), CSV_BAD);
    assert_string_equal(why, "unterminated quoted field");
    assert_int_equal(csv_read(&r, &line, &why), CSV_EOF);
    csv_reader_free(&r);
    fclose(f);
}

static void test_jsonl_skips_bom_and_blank_lines(void **state)
{
    FILE *f = memfile("\xef\xbb\xbf{\"title\": \"a\"}\r\n \t\r\n\nnot json\n{\"title\":\"b\"}");
    jsonl_reader r;
    tf_err why;

    (void)state;
    assert_int_equal(jsonl_reader_init(&r, f, &why), 0);
    assert_int_equal(jsonl_read(&r, &why), JSONL_OBJECT);
    assert_int_equal(r.line_no, 1);
    assert_string_equal(tf_json_get(r.obj, "title")->text, "a");
    assert_int_equal(jsonl_read(&r, &why), JSONL_BAD);
    assert_int_equal(r.line_no, 4);
    assert_int_equal(jsonl_read(&r, &why), JSONL_OBJECT);
    assert_int_equal(r.line_no, 5);
    assert_string_equal(tf_json_get(r.obj, "title")->text, "b");
    assert_int_equal(jsonl_read(&r, &why), JSONL_EOF);
    jsonl_reader_free(&r);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_quotes_and_line_breaks),
        cmocka_unit_test(test_csv_empty_fields_are_quoted_or_not),
        cmocka_unit_test(test_csv_bad_line_is_skipped_alone),
        cmocka_unit_test(test_jsonl_skips_bom_and_blank_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
