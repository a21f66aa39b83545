/*
 * test_json.c - the JSON reader accepts exactly one well-formed object (strings decoded,
 * arrays of strings kept as lists, anything nested kept raw) and names the byte of every
 * error; the writer's output is always valid JSON, whatever the input bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wire/json.h"

static int setup(void **state)
{
    *state = tf_json_object_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    tf_json_object_free(*state);
    return 0;
}

static int parse(void **state, const char *text, tf_err *err)
{
    return tf_json_parse_object(*state, text, strlen(text), err);
}

static void test_flat_object_gives_each_kind(void **state)
{
    tf_json_object *o = *state;
    const tf_json_value *v;
    tf_err err;

    assert_int_equal(parse(state, " {\"title\": \"Data intern\", \"n\": -12.5e3, \"ok\": true,"
                                  " \"no\": false, \"x\": null, \"skills\": [\"sql\", null, \"c++\"]} ",
                           &err), 0);
    assert_int_equal(tf_json_count(o), 6);
    v = tf_json_get(o, "title");
    assert_int_equal(v->kind, TF_JSON_STRING);
    assert_string_equal(v->text, "Data intern");
    v = tf_json_get(o, "n");
    assert_int_equal(v->kind, TF_JSON_NUMBER);
    assert_string_equal(v->text, "-12.5e3");
    assert_int_equal(tf_json_get(o, "ok")->boolean, 1);
    assert_int_equal(tf_json_get(o, "no")->kind, TF_JSON_BOOL);
    assert_int_equal(tf_json_get(o, "no")->boolean, 0);
    assert_int_equal(tf_json_get(o, "x")->kind, TF_JSON_NULL);
    v = tf_json_get(o, "skills");
    assert_int_equal(v->kind, TF_JSON_ARRAY);
    assert_int_equal(v->n_items, 3);
    assert_string_equal(v->items[0], "sql");
    assert_null(v->items[1]);
    assert_string_equal(v->items[2], "c++");
    assert_int_equal(v->item_lens[2], 3);
    assert_null(tf_json_get(o, "missing"));
    assert_string_equal(tf_json_member_at(o, 0)->key, "title");
}

static void test_escapes_and_surrogate_pairs_are_decoded(void **state)
{
    tf_err err;
    const tf_json_value *v;

    assert_int_equal(parse(state, "{\"s\": \"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u0645\\ud83d\\ude00\"}",
                           &err), 0);
    v = tf_json_get(*state, "s");
    assert_string_equal(v->text, "a\"b\\c/d\n\t\xc3\xa9\xd9\x85\xf0\x9f\x98\x80");
}

static void test_nul_escape_is_kept_with_its_length(void **state)
{
    tf_err err;
    const tf_json_value *v;

    assert_int_equal(parse(state, "{\"s\": \"a\\u0000b\"}", &err), 0);
    v = tf_json_get(*state, "s");
    assert_int_equal(v->len, 3);
    assert_memory_equal(v->text, "a\0b", 3);
}

static void test_nested_values_are_kept_raw(void **state)
{
    tf_err err;
    const tf_json_value *v;

    assert_int_equal(parse(state, "{\"a\": {\"b\": [1, {\"c\": \"}\"}]}, \"n\": [1, 2], \"z\": 7}", &err), 0);
    v = tf_json_get(*state, "a");
    assert_int_equal(v->kind, TF_JSON_RAW);
    assert_string_equal(v->text, "{\"b\": [1, {\"c\": \"}\"}]}");
    v = tf_json_get(*state, "n");
    assert_int_equal(v->kind, TF_JSON_RAW);
    assert_string_equal(v->text, "[1, 2]");
    assert_string_equal(tf_json_get(*state, "z")->text, "7");
}

static void test_array_after_a_raw_fallback_keeps_its_items(void **state)
{
    tf_err err;
    const tf_json_value *v;

    assert_int_equal(parse(state, "{\"a\": [\"x\", 1], \"b\": [\"y\", \"z\"]}", &err), 0);
    v = tf_json_get(*state, "b");
    assert_int_equal(v->kind, TF_JSON_ARRAY);
    assert_int_equal(v->n_items, 2);
    assert_string_equal(v->items[0], "y");
    assert_string_equal(v->items[1], "z");
}

static void test_empty_object_and_empty_array(void **state)
{
    tf_err err;

    assert_int_equal(parse(state, "{}", &err), 0);
    assert_int_equal(tf_json_count(*state), 0);
    assert_int_equal(parse(state, "{\"a\":[]}", &err), 0);
    assert_int_equal(tf_json_get(*state, "a")->kind, TF_JSON_ARRAY);
    assert_int_equal(tf_json_get(*state, "a")->n_items, 0);
}

/* Found by fuzz-load: an empty array in the first object a parser saw with an array had
 * items = NULL + 0 (undefined; UBSan stops there) and NULL item arrays. */
static void test_empty_array_before_any_item_has_empty_item_arrays(void **state)
{
    const tf_json_value *v;
    tf_err err;

    assert_int_equal(parse(state, "{\"skills\": []}", &err), 0);
    v = tf_json_get(*state, "skills");
    assert_non_null(v);
    assert_int_equal(v->kind, TF_JSON_ARRAY);
    assert_int_equal(v->n_items, 0);
    assert_non_null(v->items);
    assert_non_null(v->item_lens);
}

static void test_malformed_input_is_refused_with_its_byte(void **state)
{
    static const struct { const char *text, *reason; } bad[] = {
        {"", "at byte 1: '{' expected"},
        {"[1]", "at byte 1: '{' expected"},
        {"{\"a\": 1,}", "at byte 9: key expected"},
        {"{\"a\" 1}", "at byte 6: ':' expected"},
        {"{\"a\": 01}", "at byte 8: ',' or '}' expected"},
        {"{\"a\": 1.}", "at byte 9: invalid number"},
        {"{\"a\": tru}", "at byte 7: invalid value"},
        {"{\"a\": \"x}", "at byte 10: unterminated string"},
        {"{\"a\": \"\\x\"}", "at byte 9: invalid escape in string"},
        {"{\"a\": \"\\ud800\"}", "at byte 14: unpaired surrogate in \\u escape"},
        {"{\"a\": \"\\udc00\"}", "at byte 14: unpaired surrogate in \\u escape"},
        {"{\"a\": \"tab\there\"}", "at byte 11: control character in string"},
        {"{\"a\": 1} x", "at byte 10: unexpected text after the object"},
        {"{\"a\": 1, \"a\": 2}", "at byte 16: repeated key"},
        {"{\"a\": [\"x\",]}", "at byte 12: invalid value"},
        {"{\"a\": \"\xff\"}", "at byte 8: invalid UTF-8"},
        {"{\"a\": \"\xd9\"}", "at byte 8: invalid UTF-8"},
    };
    tf_err err;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err.msg[0] = '\0';
        assert_int_equal(parse(state, bad[i].text, &err), -1);
        assert_string_equal(err.msg, bad[i].reason);
    }
}

static void test_deep_nesting_is_refused(void **state)
{
    char text[400] = "{\"a\": ";
    tf_err err;

    for (int i = 0; i < 100; i++)
        strcat(text, "[");
    assert_int_equal(parse(state, text, &err), -1);
    assert_non_null(strstr(err.msg, "nested too deeply"));
}

static void test_parser_is_reusable_after_an_error(void **state)
{
    tf_err err;

    assert_int_equal(parse(state, "{\"a\": [\"x\", \"y\"], \"b\": ", &err), -1);
    assert_int_equal(parse(state, "{\"c\": [\"z\"]}", &err), 0);
    assert_int_equal(tf_json_count(*state), 1);
    assert_string_equal(tf_json_get(*state, "c")->items[0], "z");
}

static char *written(const char *s, size_t len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    assert_int_equal(tf_json_write_string(f, s, len), 0);
    fclose(f);
    return buf;
}

static void test_writer_escapes_what_json_requires(void **state)
{
    char *out = written("q\"b\\s\n\r\t\b\f\x01\x1f\x7f\0z", 15);

    (void)state;
    assert_string_equal(out, "\"q\\\"b\\\\s\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\\u0000z\"");
    free(out);
}

static void test_writer_replaces_invalid_utf8(void **state)
{
    char *out = written("ok \xff \xd9", 6);

    (void)state;
    assert_string_equal(out, "\"ok \xef\xbf\xbd \xef\xbf\xbd\"");
    free(out);
}

static void test_written_string_reads_back_identical(void **state)
{
    const char *s = "Arabic \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \"quoted\" \\ tab\t\x02 end";
    char *out = written(s, strlen(s)), *obj;
    tf_err err;

    assert_true(asprintf(&obj, "{\"k\": %s}", out) > 0);
    assert_int_equal(parse(state, obj, &err), 0);
    assert_string_equal(tf_json_get(*state, "k")->text, s);
    free(obj);
    free(out);
}

static void test_null_cstring_is_written_as_null(void **state)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);

    (void)state;
    assert_int_equal(tf_json_write_cstring(f, NULL), 0);
    fclose(f);
    assert_string_equal(buf, "null");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flat_object_gives_each_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escapes_and_surrogate_pairs_are_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_escape_is_kept_with_its_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_values_are_kept_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_array_after_a_raw_fallback_keeps_its_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_object_and_empty_array, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_array_before_any_item_has_empty_item_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_input_is_refused_with_its_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deep_nesting_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parser_is_reusable_after_an_error, setup, teardown),
        cmocka_unit_test(test_writer_escapes_what_json_requires),
        cmocka_unit_test(test_writer_replaces_invalid_utf8),
        cmocka_unit_test_setup_teardown(test_written_string_reads_back_identical, setup, teardown),
        cmocka_unit_test(test_null_cstring_is_written_as_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
