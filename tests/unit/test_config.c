/*
 * test_config.c - the settings table: precedence (flag > environment > default), strict
 * value parsing with errors that name the setting, durations and sizes, values and passwords
 * from the files X_FILE and <P>_PASSWORD_FILE name.
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

#include "base/backoff.h"
#include "base/config.h"
#include "base/log.h"

typedef struct demo_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    long batch;
    double poll;
    int notify;
    long limit;
} demo_config;

static const tf_option demo_options[] = {
    TF_OPTIONS_CONNECTION(demo_config),
    {"batch", "DEMO_BATCH", TF_OPT_INT, "500", "events per batch", offsetof(demo_config, batch), 1, 1000},
    {"poll", "DEMO_POLL", TF_OPT_DURATION, "1s", "poll", offsetof(demo_config, poll), 0, 0},
    {"notify", NULL, TF_OPT_BOOL, "on", "notify", offsetof(demo_config, notify), 0, 0},
    {"limit", NULL, TF_OPT_SIZE, "1MiB", "limit", offsetof(demo_config, limit), 0, 0},
};
#define N (sizeof(demo_options) / sizeof(demo_options[0]))

static int parse(demo_config *cfg, int argc, char **argv, tf_err *err)
{
    int first;
    return tf_config_parse(demo_options, N, cfg, argc, argv, &first, err);
}

static void test_defaults_apply_without_flags_or_environment(void **state)
{
    char *argv[] = {"prog"};
    demo_config cfg;
    tf_err err;

    unsetenv("DEMO_BATCH");
    unsetenv("TOPICFLOW_PG_URL");
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.batch, 500);
    assert_true(cfg.poll == 1.0);
    assert_int_equal(cfg.notify, 1);
    assert_int_equal(cfg.limit, 1 << 20);
    assert_null(cfg.pg_url);
    assert_string_equal(cfg.log_level, "info");
}

static void test_flag_beats_environment_beats_default(void **state)
{
    char *argv[] = {"prog", "--batch", "7"};
    demo_config cfg;
    tf_err err;

    setenv("DEMO_BATCH", "9", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.batch, 9);
    assert_int_equal(parse(&cfg, 3, argv, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.batch, 7);
    unsetenv("DEMO_BATCH");
}

static void test_amqp_tls_settings_default_to_system_store_and_verification(void **state)
{
    char *argv[] = {"prog", "--amqp-cert", "client.pem", "--amqp-verify", "off"};
    demo_config cfg;
    tf_err err;

    unsetenv("TOPICFLOW_AMQP_CACERT");
    unsetenv("TOPICFLOW_AMQP_CERT");
    unsetenv("TOPICFLOW_AMQP_VERIFY");
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_null(cfg.amqp_tls.cacert);
    assert_null(cfg.amqp_tls.cert);
    assert_null(cfg.amqp_tls.key);
    assert_int_equal(cfg.amqp_tls.verify, 1);
    /* TOPICFLOW_AMQP_CACERT, read by the broker before the flag existed, is its variable. */
    setenv("TOPICFLOW_AMQP_CACERT", "/etc/topicflow/ca.pem", 1);
    assert_int_equal(parse(&cfg, 5, argv, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.amqp_tls.cacert, "/etc/topicflow/ca.pem");
    assert_string_equal(cfg.amqp_tls.cert, "client.pem");
    assert_int_equal(cfg.amqp_tls.verify, 0);
    unsetenv("TOPICFLOW_AMQP_CACERT");
}

static void test_bad_values_are_errors_naming_the_setting(void **state)
{
    char *trailing[] = {"prog", "--batch=12x"};
    char *range[] = {"prog", "--batch", "0"};
    char *missing[] = {"prog", "--batch"};
    char *unknown[] = {"prog", "--bogus"};
    demo_config cfg;
    tf_err err;

    assert_int_equal(parse(&cfg, 2, trailing, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--batch"));
    assert_int_equal(parse(&cfg, 3, range, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "1 to 1000"));
    assert_int_equal(parse(&cfg, 2, missing, &err), TF_CONFIG_ERROR);
    assert_int_equal(parse(&cfg, 2, unknown, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "--bogus"));
    setenv("DEMO_POLL", "soon", 1);
    assert_int_equal(parse(&cfg, 1, trailing, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "DEMO_POLL"));
    unsetenv("DEMO_POLL");
}

static void test_help_version_and_positional_arguments(void **state)
{
    char *help[] = {"prog", "--help"};
    char *version[] = {"prog", "--version"};
    char *pos[] = {"prog", "--notify", "file.csv", "--batch", "3"};
    demo_config cfg;
    tf_err err;
    int first;

    assert_int_equal(parse(&cfg, 2, help, &err), TF_CONFIG_HELP);
    assert_int_equal(parse(&cfg, 2, version, &err), TF_CONFIG_VERSION);
    assert_int_equal(tf_config_parse(demo_options, N, &cfg, 5, pos, &first, &err), TF_CONFIG_OK);
    assert_int_equal(first, 2);
    assert_int_equal(cfg.notify, 1);
}

/* A boolean flag takes on/off/true/false/yes/no as its next argument, as --help shows it
 * ("--notify on|off"); 1 or 0 after it stays a positional argument. */
static void test_boolean_flag_takes_a_separate_word(void **state)
{
    char *off[] = {"prog", "--notify", "off", "--batch", "3"};
    char *yes[] = {"prog", "--notify", "YES"};
    char *one[] = {"prog", "--notify", "1"};
    demo_config cfg;
    tf_err err;
    int first;

    assert_int_equal(tf_config_parse(demo_options, N, &cfg, 5, off, &first, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.notify, 0);
    assert_int_equal(cfg.batch, 3);
    assert_int_equal(first, 5);
    assert_int_equal(tf_config_parse(demo_options, N, &cfg, 3, yes, &first, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.notify, 1);
    assert_int_equal(tf_config_parse(demo_options, N, &cfg, 3, one, &first, &err), TF_CONFIG_OK);
    assert_int_equal(cfg.notify, 1);
    assert_int_equal(first, 2);
}

static void test_durations_and_sizes(void **state)
{
    double d;
    long b;

    assert_int_equal(tf_parse_duration("250ms", &d), 0);
    assert_true(d > 0.2499 && d < 0.2501);
    assert_int_equal(tf_parse_duration("7d", &d), 0);
    assert_true(d == 7 * 86400.0);
    assert_int_equal(tf_parse_duration("3", &d), 0);
    assert_true(d == 3.0);
    assert_int_equal(tf_parse_duration("-1s", &d), -1);
    assert_int_equal(tf_parse_duration("1w", &d), -1);
    assert_int_equal(tf_parse_size("64k", &b), 0);
    assert_int_equal(b, 65536);
    assert_int_equal(tf_parse_size("2G", &b), 0);
    assert_int_equal(b, 2L << 30);
    assert_int_equal(tf_parse_size("1.5M", &b), -1);
}

/* Writes text to a new temporary file and returns its path (static storage per slot). */
static const char *temp_file(int slot, const char *text)
{
    static char paths[4][64];
    int fd;

    snprintf(paths[slot], sizeof(paths[slot]), "/tmp/test_config.XXXXXX");
    fd = mkstemp(paths[slot]);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return paths[slot];
}

static void clear_connection_environment(void)
{
    static const char *const vars[] = {
        "TOPICFLOW_PG_URL", "TOPICFLOW_PG_URL_FILE", "TOPICFLOW_PG_PASSWORD_FILE",
        "TOPICFLOW_AMQP_URL", "TOPICFLOW_AMQP_URL_FILE", "TOPICFLOW_AMQP_PASSWORD_FILE",
        "DEMO_BATCH", "DEMO_BATCH_FILE",
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        unsetenv(vars[i]);
}

static void test_a_variable_may_come_from_the_file_x_file_names(void **state)
{
    char *argv[] = {"prog"}, *flag[] = {"prog", "--pg", "postgresql://flag@h/db"};
    demo_config cfg;
    tf_err err;

    clear_connection_environment();
    setenv("TOPICFLOW_PG_URL_FILE", temp_file(0, "postgresql://u:pw@h/db\n"), 1);
    setenv("DEMO_BATCH_FILE", temp_file(1, "42\r\n\n"), 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.pg_url, "postgresql://u:pw@h/db");
    assert_int_equal(cfg.batch, 42);
    /* the flag still beats the environment */
    assert_int_equal(parse(&cfg, 3, flag, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.pg_url, "postgresql://flag@h/db");
    unlink(getenv("TOPICFLOW_PG_URL_FILE"));
    unlink(getenv("DEMO_BATCH_FILE"));
    clear_connection_environment();
}

static void test_x_and_x_file_both_set_is_an_error(void **state)
{
    char *argv[] = {"prog"};
    demo_config cfg;
    tf_err err;

    clear_connection_environment();
    setenv("TOPICFLOW_AMQP_URL", "amqp://u:p@h/", 1);
    setenv("TOPICFLOW_AMQP_URL_FILE", temp_file(0, "amqp://u:p@h/"), 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "TOPICFLOW_AMQP_URL and TOPICFLOW_AMQP_URL_FILE"));
    unlink(getenv("TOPICFLOW_AMQP_URL_FILE"));
    clear_connection_environment();
}

static void test_an_unreadable_or_empty_file_is_a_one_line_error(void **state)
{
    char *argv[] = {"prog"};
    demo_config cfg;
    tf_err err;

    clear_connection_environment();
    setenv("TOPICFLOW_PG_URL_FILE", "/nonexistent/pg-url", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_string_equal(err.msg, "cannot read TOPICFLOW_PG_URL_FILE=/nonexistent/pg-url: No such file or directory");
    setenv("TOPICFLOW_PG_URL_FILE", temp_file(0, "\n"), 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "TOPICFLOW_PG_URL_FILE="));
    assert_non_null(strstr(err.msg, "is empty"));
    unlink(getenv("TOPICFLOW_PG_URL_FILE"));
    unsetenv("TOPICFLOW_PG_URL_FILE");
    setenv("TOPICFLOW_PG_URL", "postgresql://u@h/db", 1);
    setenv("TOPICFLOW_PG_PASSWORD_FILE", "/nonexistent/pg-password", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_string_equal(err.msg, "cannot read TOPICFLOW_PG_PASSWORD_FILE=/nonexistent/pg-password: No such file or directory");
    clear_connection_environment();
}

/* The password file fills every URL of the value (percent-encoded), or a libpq key=value
 * string (quoted), whether the URL came from a flag, a variable or a file. */
static void test_password_file_fills_in_the_urls_password(void **state)
{
    char *argv[] = {"prog"}, *flag[] = {"prog", "--pg", "host=h user=u dbname=d"};
    demo_config cfg;
    tf_err err;

    clear_connection_environment();
    setenv("TOPICFLOW_PG_URL", "postgresql://u@h1:5432,h2:5432/db?sslmode=require", 1);
    setenv("TOPICFLOW_PG_PASSWORD_FILE", temp_file(0, "p@ss w:rd/'\\x\n"), 1);
    setenv("TOPICFLOW_AMQP_URL", "amqp://u@h1/v,amqp://u@h2:5672/%2f", 1);
    setenv("TOPICFLOW_AMQP_PASSWORD_FILE", temp_file(1, "s3cret\n"), 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.pg_url, "postgresql://u:p%40ss%20w%3Ard%2F%27%5Cx@h1:5432,h2:5432/db?sslmode=require");
    assert_string_equal(cfg.amqp_url, "amqp://u:s3cret@h1/v,amqp://u:s3cret@h2:5672/%2f");
    assert_int_equal(parse(&cfg, 3, flag, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.pg_url, "host=h user=u dbname=d password='p@ss w:rd/\\'\\\\x'");
    unlink(getenv("TOPICFLOW_PG_PASSWORD_FILE"));
    unlink(getenv("TOPICFLOW_AMQP_PASSWORD_FILE"));
    clear_connection_environment();
}

static void test_password_file_beside_a_password_or_without_a_user_is_an_error(void **state)
{
    char *argv[] = {"prog"};
    demo_config cfg;
    tf_err err;

    clear_connection_environment();
    setenv("TOPICFLOW_PG_PASSWORD_FILE", temp_file(0, "pw"), 1);
    setenv("TOPICFLOW_PG_URL", "postgresql://u:other@h/db", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "TOPICFLOW_PG_PASSWORD_FILE"));
    assert_null(strstr(err.msg, "other"));
    setenv("TOPICFLOW_PG_URL", "host=h password = 'x y'", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    setenv("TOPICFLOW_PG_URL", "postgresql://h/db", 1);
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_ERROR);
    assert_non_null(strstr(err.msg, "no user"));
    /* without a URL the program's own check reports the missing URL */
    unsetenv("TOPICFLOW_PG_URL");
    assert_int_equal(parse(&cfg, 1, argv, &err), TF_CONFIG_OK);
    assert_null(cfg.pg_url);
    unlink(getenv("TOPICFLOW_PG_PASSWORD_FILE"));
    clear_connection_environment();
}

static void test_backoff_grows_to_the_cap_with_jitter(void **state)
{
    tf_backoff b;
    double prev_ceiling = 0.1;

    tf_backoff_init(&b, 0.1, 2.0, 42);
    for (int i = 0; i < 12; i++) {
        double d = tf_backoff_next(&b);
        double ceiling = prev_ceiling;
        assert_true(d >= ceiling / 2 - 1e-12 && d <= ceiling + 1e-12);
        prev_ceiling = ceiling * 2 > 2.0 ? 2.0 : ceiling * 2;
    }
    tf_backoff_reset(&b);
    assert_true(tf_backoff_next(&b) <= 0.1);
}

static void test_log_format_is_shared_checked_and_applied(void **state)
{
    char *json[] = {"prog", "--log-format", "json"}, *yaml[] = {"prog", "--log-format", "yaml"};
    char *none[] = {"prog"};
    demo_config cfg;
    tf_err err;

    unsetenv("TOPICFLOW_LOG_FORMAT");
    assert_int_equal(parse(&cfg, 1, none, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.log_format, "logfmt");
    assert_int_equal(tf_config_log_format(demo_options, N, &cfg, &err), 0);
    setenv("TOPICFLOW_LOG_FORMAT", "json", 1);
    assert_int_equal(parse(&cfg, 1, none, &err), TF_CONFIG_OK);
    assert_string_equal(cfg.log_format, "json");
    unsetenv("TOPICFLOW_LOG_FORMAT");
    assert_int_equal(parse(&cfg, 3, json, &err), TF_CONFIG_OK);
    assert_int_equal(tf_config_log_format(demo_options, N, &cfg, &err), 0);
    assert_int_equal(parse(&cfg, 3, yaml, &err), TF_CONFIG_OK);
    assert_int_equal(tf_config_log_format(demo_options, N, &cfg, &err), -1);
    assert_string_equal(err.msg, "invalid log format 'yaml' (logfmt or json)");
    tf_log_set_format(TF_LOG_LOGFMT);
}

static void test_byte_ranges_read_as_sizes(void **state)
{
    static const tf_option opts[] = {
        {"max-message", NULL, TF_OPT_SIZE, "1MiB", "largest message", offsetof(demo_config, limit),
         64, 1L << 30},
    };
    char *argv[] = {"prog", "--max-message", "1"}, buf[32];
    demo_config cfg;
    tf_err err;

    assert_int_equal(tf_config_parse(opts, 1, &cfg, 3, argv, NULL, &err), TF_CONFIG_ERROR);
    assert_string_equal(err.msg, "invalid value '1' for --max-message (expected 64 to 1G)");
    assert_string_equal(tf_format_size(64, buf, sizeof(buf)), "64");
    assert_string_equal(tf_format_size(1L << 30, buf, sizeof(buf)), "1G");
    assert_string_equal(tf_format_size(3L << 20, buf, sizeof(buf)), "3M");
    assert_string_equal(tf_format_size(65536, buf, sizeof(buf)), "64k");
    assert_string_equal(tf_format_size(1000, buf, sizeof(buf)), "1000");
    assert_string_equal(tf_format_size(0, buf, sizeof(buf)), "0");
}

static void test_log_level_is_checked_from_the_table(void **state)
{
    char *argv[] = {"prog", "--log-level", "loud"}, *ok[] = {"prog", "--log-level", "debug"};
    demo_config cfg;
    tf_log_level level;
    tf_err err;

    assert_int_equal(parse(&cfg, 3, argv, &err), TF_CONFIG_OK);
    assert_int_equal(tf_config_log_level(demo_options, N, &cfg, &level, &err), -1);
    assert_string_equal(err.msg, "invalid log level 'loud' (error, warn, info or debug)");
    assert_int_equal(parse(&cfg, 3, ok, &err), TF_CONFIG_OK);
    assert_int_equal(tf_config_log_level(demo_options, N, &cfg, &level, &err), 0);
    assert_int_equal(level, TF_LOG_DEBUG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_apply_without_flags_or_environment),
        cmocka_unit_test(test_flag_beats_environment_beats_default),
        cmocka_unit_test(test_bad_values_are_errors_naming_the_setting),
        cmocka_unit_test(test_amqp_tls_settings_default_to_system_store_and_verification),
        cmocka_unit_test(test_help_version_and_positional_arguments),
        cmocka_unit_test(test_boolean_flag_takes_a_separate_word),
        cmocka_unit_test(test_durations_and_sizes),
        cmocka_unit_test(test_a_variable_may_come_from_the_file_x_file_names),
        cmocka_unit_test(test_x_and_x_file_both_set_is_an_error),
        cmocka_unit_test(test_an_unreadable_or_empty_file_is_a_one_line_error),
        cmocka_unit_test(test_password_file_fills_in_the_urls_password),
        cmocka_unit_test(test_password_file_beside_a_password_or_without_a_user_is_an_error),
        cmocka_unit_test(test_backoff_grows_to_the_cap_with_jitter),
        cmocka_unit_test(test_log_format_is_shared_checked_and_applied),
        cmocka_unit_test(test_byte_ranges_read_as_sizes),
        cmocka_unit_test(test_log_level_is_checked_from_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
