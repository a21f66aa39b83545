/*
 * test_log.c - logfmt lines that any parser splits right: every value that holds spaces,
 * quotes, '=', backslashes, line breaks or other control characters stays one field and
 * reads back exactly as written, whatever a PostgreSQL or broker message contains; a cut
 * never splits an escape, a UTF-8 sequence or a field. --log-format json: one valid JSON
 * object per line (checked with wire/json's strict RFC 8259 reader) with the same keys and
 * values, for any bytes, control characters and invalid UTF-8 included.
 * And no password reaches a line, in any form a connection string can hold one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "base/utf8.h"
#include "wire/json.h"

#define MAX_FIELDS 16

typedef struct field {
    char key[32];
    char value[1024];
} field;

/* A strict logfmt reader: key=value pairs separated by one space; a value is bare (no
 * space, quote, '=' or control character) or quoted with \" \\ \n \r \t and \u00XX
 * escapes (decoded here) and no raw control character. Returns the field count, -1 on a
 * malformed line. */
static int parse_logfmt(const char *line, field *f, int max)
{
    int n = 0;
    const char *p = line;

    while (*p && *p != '\n') {
        size_t k = 0, v = 0;
        if (n == max)
            return -1;
        while (*p && *p != '=' && *p != ' ' && k + 1 < sizeof(f[n].key))
            f[n].key[k++] = *p++;
        f[n].key[k] = '\0';
        if (*p++ != '=' || k == 0)
            return -1;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                char c = *p;
                if ((unsigned char)c < ' ' || v + 1 >= sizeof(f[n].value))
                    return -1;
                if (c == '\\') {
                    c = *++p;
                    if (c == 'n') {
                        c = '\n';
                    } else if (c == 'r') {
                        c = '\r';
                    } else if (c == 't') {
                        c = '\t';
                    } else if (c == 'u') {
                        char hex[5] = {0};
                        memcpy(hex, p + 1, 4);
                        if (strlen(hex) != 4 || strspn(hex, "0123456789abcdef") != 4)
                            return -1;
                        c = (char)strtol(hex, NULL, 16);
                        p += 4;
                    } else if (c != '"' && c != '\\') {
                        return -1;
                    }
                }
                f[n].value[v++] = c;
            }
            if (*p++ != '"')
                return -1;
        } else {
            for (; *p && *p != ' ' && *p != '\n'; p++) {
                if (*p == '"' || *p == '=' || (unsigned char)*p < ' ' || v + 1 >= sizeof(f[n].value))
                    return -1;
                f[n].value[v++] = *p;
            }
        }
        f[n].value[v] = '\0';
        n++;
        if (*p == ' ')
            p++;
        else if (*p && *p != '\n')
            return -1;
    }
    return n;
}

/* Runs one log call with stderr redirected to a file and returns the line written. */
static char *capture(void (*emit)(const char *), const char *arg)
{
    static char line[8192];
    FILE *tmp = tmpfile();
    int saved = dup(STDERR_FILENO);
    size_t n;

    assert_non_null(tmp);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    emit(arg);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    n = fread(line, 1, sizeof(line) - 1, tmp);
    line[n] = '\0';
    fclose(tmp);
    return line;
}

static void emit_reason(const char *reason)
{
    log_warn("batch not applied, holding it and retrying", "events=%d reason=%s n=3", 12,
             tf_log_q(reason));
}

static void emit_message(const char *msg)
{
    log_info(msg, "");
}

static void assert_reads_back(const char *reason, const char *expected)
{
    field f[MAX_FIELDS];
    char *line = capture(emit_reason, reason);
    int n = parse_logfmt(line, f, MAX_FIELDS);

    if (n != 7)
        fail_msg("%d fields in: %s", n, line);
    assert_string_equal(f[0].key, "ts");
    assert_string_equal(f[1].key, "level");
    assert_string_equal(f[1].value, "warn");
    assert_string_equal(f[3].key, "msg");
    assert_string_equal(f[3].value, "batch not applied, holding it and retrying");
    assert_string_equal(f[4].key, "events");
    assert_string_equal(f[5].key, "reason");
    assert_string_equal(f[5].value, expected);
    assert_string_equal(f[6].key, "n");
    assert_string_equal(f[6].value, "3");
}

static void test_postgresql_message_with_quotes_stays_one_field(void **state)
{
    const char *m = "ERROR:  duplicate key value violates unique constraint \"processed_events_pkey\"";

    assert_reads_back(m, m);
}

static void test_equals_backslashes_and_line_breaks(void **state)
{
    assert_reads_back("key=value a=b", "key=value a=b");
    assert_reads_back("C:\\path\\to \"x\"", "C:\\path\\to \"x\"");
    assert_reads_back("first line\nDETAIL:  Key (id)=(7)\r\n\tHINT", "first line\nDETAIL:  Key (id)=(7)\r\n\tHINT");
    assert_reads_back("", "");
    assert_reads_back("plain", "plain");
}

static void test_message_itself_is_quoted(void **state)
{
    field f[MAX_FIELDS];
    char *line = capture(emit_message, "say \"hi\" = now");

    assert_int_equal(parse_logfmt(line, f, MAX_FIELDS), 4);
    assert_string_equal(f[3].value, "say \"hi\" = now");
}

static void test_long_value_is_cut_but_still_closed(void **state)
{
    char big[3000];
    field f[MAX_FIELDS];
    char *line;

    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    line = capture(emit_reason, big);
    /* every escape pair kept whole and the quote closed: the line still parses */
    assert_int_equal(parse_logfmt(line, f, MAX_FIELDS), 7);
    assert_true(strlen(f[5].value) > 100);
}

static void assert_redacted(const char *in, const char *want)
{
    char buf[512];

    assert_string_equal(tf_log_redact_url(in, buf, sizeof(buf)), want);
}

static void test_url_passwords_are_redacted(void **state)
{
    assert_redacted("amqp://guest:s3cret@h:5672/v", "amqp://guest:***@h:5672/v");
    assert_redacted("amqp://a:x@h1,amqps://b:y@h2/", "amqp://a:***@h1,amqps://b:***@h2/");
    assert_redacted("postgresql://me@db/x", "postgresql://me@db/x");
    assert_redacted("postgresql://me@db:5432/x", "postgresql://me@db:5432/x");
    /* libpq's multi-host URI: the comma separates hosts, not URLs */
    assert_redacted("postgresql://u:pw@h1:5432,h2:5432/db", "postgresql://u:***@h1:5432,h2:5432/db");
    /* unescaped '@', ',' and '/' in the password stay hidden */
    assert_redacted("amqp://u:p@ss@h/v", "amqp://u:***@h/v");
    assert_redacted("amqp://u:p,w@h/v,amqp://u:q@h2/v", "amqp://u:***@h/v,amqp://u:***@h2/v");
    assert_redacted("http://u:a/b@mgmt:15672", "http://u:***@mgmt:15672");
}

static void test_conninfo_passwords_are_redacted_with_spaces_around_equals(void **state)
{
    assert_redacted("host=db password=hunter2 user=me", "host=db password=*** user=me");
    assert_redacted("host=db password = hunter2 user=me", "host=db password = *** user=me");
    assert_redacted("host=db password= hunter2", "host=db password= ***");
    assert_redacted("password=a,b host=db", "password=*** host=db");
    assert_redacted("host=db sslpassword=keypass sslkey=/k", "host=db sslpassword=*** sslkey=/k");
    assert_redacted("PGPASSWORD=x", "PGPASSWORD=***");
    /* a key that merely contains the word, or a value that does, is not a secret */
    assert_redacted("user=password host=db", "user=password host=db");
    assert_redacted("passwords_seen=3", "passwords_seen=3");
}

/* libpq reads '...' with \' and \\ escapes as one value, spaces and all. */
static void test_quoted_conninfo_passwords_are_redacted_whole(void **state)
{
    assert_redacted("password='two words' host=db", "password=*** host=db");
    assert_redacted("password='it\\'s a secret' host=db", "password=*** host=db");
    assert_redacted("password = 'a b\\\\' user=me", "password = *** user=me");
    assert_redacted("sslpassword=\"x y\" host=db", "sslpassword=*** host=db");
}

static void test_url_query_passwords_are_redacted(void **state)
{
    assert_redacted("postgresql://u@h/db?sslmode=require&password=hunter2&application_name=x",
                    "postgresql://u@h/db?sslmode=require&password=***&application_name=x");
    assert_redacted("postgresql://u:pw@h/db?sslpassword=k",
                    "postgresql://u:***@h/db?sslpassword=***");
}

static void test_a_cut_redaction_never_shows_part_of_a_secret(void **state)
{
    char buf[16];

    for (size_t n = 1; n <= sizeof(buf); n++) {
        tf_log_redact_url("host=d password='hunter2 x'", buf, n);
        assert_null(strstr(buf, "hunt"));
        tf_log_redact_url("amqp://u:hunter2@h", buf, n);
        assert_null(strstr(buf, "hunt"));
        assert_true(strlen(buf) < n);
    }
}

static void test_control_characters_are_escaped_and_read_back(void **state)
{
    const char *m = "bell\a esc\x1b[31m del\x7f nl\n";
    char *line = capture(emit_reason, m);

    /* the line's only control character is its end */
    for (const char *p = line; *p; p++)
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            assert_true(*p == '\n' && p[1] == '\0');
    assert_non_null(strstr(line, "reason=\"bell\\u0007 esc\\u001b[31m del\\u007f nl\\n\""));
    assert_reads_back(m, m);
    assert_reads_back("tab\tonly", "tab\tonly");
}

static void test_cut_never_splits_a_utf8_sequence(void **state)
{
    char big[2001];
    field f[MAX_FIELDS];
    char *line;

    for (int i = 0; i < 1000; i++)
        memcpy(big + 2 * i, "\xc3\xa9", 2); /* é, 2 bytes */
    big[2000] = '\0';
    line = capture(emit_reason, big);
    assert_int_equal(parse_logfmt(line, f, MAX_FIELDS), 7);
    assert_true(strlen(f[5].value) > 100);
    assert_int_equal(tf_utf8_check(f[5].value, strlen(f[5].value)), strlen(f[5].value));
    big[1999] = ' ';  /* quoted now: the same holds inside quotes */
    line = capture(emit_reason, big);
    assert_int_equal(parse_logfmt(line, f, MAX_FIELDS), 7);
    assert_int_equal(tf_utf8_check(f[5].value, strlen(f[5].value)), strlen(f[5].value));
}

static void emit_many(const char *v)
{
    /* six values of ~600 bytes: more than a line holds */
    log_info("wide", "a=%s b=%s c=%s d=%s e=%s f=%s", tf_log_q(v), tf_log_q(v), tf_log_q(v),
             tf_log_q(v), tf_log_q(v), tf_log_q(v));
}

static void test_overlong_line_loses_whole_fields_and_says_so(void **state)
{
    char v[700];
    field f[MAX_FIELDS];
    char *line;
    int n;

    memset(v, 'x', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    v[10] = ' ';
    line = capture(emit_many, v);
    n = parse_logfmt(line, f, MAX_FIELDS);
    assert_true(n >= 6 && n < 11);
    assert_string_equal(f[n - 1].key, "truncated");
    assert_string_equal(f[n - 1].value, "true");
    assert_int_equal(strlen(f[4].value), TF_LOG_Q_MAX - 3); /* a kept field is whole */
}

/* ---- --log-format json --------------------------------------------------------------- */

static tf_json_object *json;

/* Parses line as one JSON object (fails the test otherwise); members until the next call. */
static void parse_json_line(const char *line)
{
    tf_err err;
    size_t len = strlen(line);

    assert_true(len > 0 && line[len - 1] == '\n');
    assert_null(memchr(line, '\n', len - 1)); /* one line */
    if (tf_json_parse_object(json, line, len - 1, &err) < 0)
        fail_msg("not JSON (%s): %s", err.msg, line);
}

static const tf_json_value *member(const char *key)
{
    const tf_json_value *v = tf_json_get(json, key);

    if (!v)
        fail_msg("no member %s", key);
    return v;
}

static char *capture_json(void (*emit)(const char *), const char *arg)
{
    char *line;

    tf_log_set_format(TF_LOG_JSON);
    line = capture(emit, arg);
    tf_log_set_format(TF_LOG_LOGFMT);
    return line;
}

static void test_json_line_has_the_same_keys_and_values(void **state)
{
    const char *m = "ERROR:  duplicate key value violates unique constraint \"pk\"\nDETAIL:  Key (id)=(7)";
    const tf_json_value *v;

    parse_json_line(capture_json(emit_reason, m));
    assert_int_equal(tf_json_count(json), 7);
    assert_string_equal(tf_json_member_at(json, 0)->key, "ts");
    assert_string_equal(tf_json_member_at(json, 3)->key, "msg");
    assert_string_equal(member("level")->text, "warn");
    assert_string_equal(member("prog")->text, "test");
    assert_string_equal(member("msg")->text, "batch not applied, holding it and retrying");
    v = member("events");
    assert_int_equal(v->kind, TF_JSON_NUMBER);
    assert_string_equal(v->text, "12");
    v = member("reason");
    assert_int_equal(v->kind, TF_JSON_STRING);
    assert_string_equal(v->text, m);
    assert_int_equal(member("n")->kind, TF_JSON_NUMBER);
}

static void test_json_is_valid_for_control_characters_and_invalid_utf8(void **state)
{
    static const char m[] = "a\x01b\xff\xfe c\"\\\n\x7f \xe2\x82";
    const tf_json_value *v;

    parse_json_line(capture_json(emit_reason, m));
    v = member("reason");
    /* every ill-formed subpart is one U+FFFD; everything else reads back as written */
    assert_string_equal(v->text, "a\x01b\xef\xbf\xbd\xef\xbf\xbd c\"\\\n\x7f \xef\xbf\xbd");
    parse_json_line(capture_json(emit_message, "msg \x80 with \"quotes\"\t"));
    assert_string_equal(member("msg")->text, "msg \xef\xbf\xbd with \"quotes\"\t");
}

static void emit_tricky_pairs(const char *unused)
{
    log_info("pairs", "code=23505 version=0.1.0 hex=0x1f neg=-1.5e3 lead=012 nan=nan bare msg=shadow a=1 a=2");
}

static void test_json_numbers_only_when_json_says_so_and_no_key_repeats(void **state)
{
    parse_json_line(capture_json(emit_tricky_pairs, NULL));
    assert_int_equal(member("code")->kind, TF_JSON_NUMBER);
    assert_int_equal(member("neg")->kind, TF_JSON_NUMBER);
    assert_int_equal(member("version")->kind, TF_JSON_STRING);
    assert_int_equal(member("hex")->kind, TF_JSON_STRING);
    assert_int_equal(member("lead")->kind, TF_JSON_STRING);
    assert_string_equal(member("nan")->text, "nan");
    assert_string_equal(member("bare")->text, "");
    assert_string_equal(member("msg")->text, "pairs");
    assert_string_equal(member("msg_2")->text, "shadow");
    assert_string_equal(member("a")->text, "1");
    assert_string_equal(member("a_2")->text, "2");
}

static void test_json_overlong_line_says_truncated(void **state)
{
    char v[700];

    memset(v, '"', sizeof(v) - 1);
    v[sizeof(v) - 1] = '\0';
    parse_json_line(capture_json(emit_many, v));
    assert_int_equal(member("truncated")->kind, TF_JSON_BOOL);
    assert_int_equal(strlen(member("a")->text), (TF_LOG_Q_MAX - 3) / 2);
}

static void test_log_format_names(void **state)
{
    tf_log_format f;

    assert_int_equal(tf_log_parse_format("json", &f), 0);
    assert_int_equal(f, TF_LOG_JSON);
    assert_int_equal(tf_log_parse_format("LOGFMT", &f), 0);
    assert_int_equal(f, TF_LOG_LOGFMT);
    assert_int_equal(tf_log_parse_format("yaml", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgresql_message_with_quotes_stays_one_field),
        cmocka_unit_test(test_equals_backslashes_and_line_breaks),
        cmocka_unit_test(test_message_itself_is_quoted),
        cmocka_unit_test(test_long_value_is_cut_but_still_closed),
        cmocka_unit_test(test_control_characters_are_escaped_and_read_back),
        cmocka_unit_test(test_cut_never_splits_a_utf8_sequence),
        cmocka_unit_test(test_overlong_line_loses_whole_fields_and_says_so),
        cmocka_unit_test(test_json_line_has_the_same_keys_and_values),
        cmocka_unit_test(test_json_is_valid_for_control_characters_and_invalid_utf8),
        cmocka_unit_test(test_json_numbers_only_when_json_says_so_and_no_key_repeats),
        cmocka_unit_test(test_json_overlong_line_says_truncated),
        cmocka_unit_test(test_log_format_names),
        cmocka_unit_test(test_url_passwords_are_redacted),
        cmocka_unit_test(test_conninfo_passwords_are_redacted_with_spaces_around_equals),
        cmocka_unit_test(test_quoted_conninfo_passwords_are_redacted_whole),
        cmocka_unit_test(test_url_query_passwords_are_redacted),
        cmocka_unit_test(test_a_cut_redaction_never_shows_part_of_a_secret),
    };
    int rc;

    tf_log_init("test", TF_LOG_DEBUG);
    json = tf_json_object_new();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    tf_json_object_free(json);
    return rc;
}
