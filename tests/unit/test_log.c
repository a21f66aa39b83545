/*
 * test_log.c - logfmt lines that any parser splits right: every value that holds spaces,
 * quotes, '=', backslashes or line breaks stays one field and reads back as written (line
 * breaks as spaces), whatever a PostgreSQL or broker message contains; and no password reaches
 * a line, in any form a connection string can hold one.
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

#define MAX_FIELDS 16

typedef struct field {
    char key[32];
    char value[1024];
} field;

/* A strict logfmt reader: key=value pairs separated by one space; a value is bare (no
 * space, quote or '=') or quoted with \" and \\ escapes. Returns the field count, -1 on a
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
                if (*p == '\\') {
                    p++;
                    if (*p != '"' && *p != '\\')
                        return -1;
                }
                if (*p == '\n' || v + 1 >= sizeof(f[n].value))
                    return -1;
                f[n].value[v++] = *p;
            }
            if (*p++ != '"')
                return -1;
        } else {
            for (; *p && *p != ' ' && *p != '\n'; p++) {
                if (*p == '"' || *p == '=' || v + 1 >= sizeof(f[n].value))
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
    assert_reads_back("first line\nDETAIL:  Key (id)=(7)\r\n\tHINT", "first line DETAIL:  Key (id)=(7)   HINT");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postgresql_message_with_quotes_stays_one_field),
        cmocka_unit_test(test_equals_backslashes_and_line_breaks),
        cmocka_unit_test(test_message_itself_is_quoted),
        cmocka_unit_test(test_long_value_is_cut_but_still_closed),
        cmocka_unit_test(test_url_passwords_are_redacted),
        cmocka_unit_test(test_conninfo_passwords_are_redacted_with_spaces_around_equals),
        cmocka_unit_test(test_quoted_conninfo_passwords_are_redacted_whole),
        cmocka_unit_test(test_url_query_passwords_are_redacted),
        cmocka_unit_test(test_a_cut_redaction_never_shows_part_of_a_secret),
    };
    tf_log_init("test", TF_LOG_DEBUG);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
