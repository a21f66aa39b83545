/*
 * test_cli_options.c - the CLI's options as --help shows them, by the exact commands a user
 * types: "--json off" and "--strict off" as separate words, --log-level checked like the
 * daemons check it, `sample --version`, each command's help listing only the servers it
 * talks to, byte ranges in units, and counts with the right plural.
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

static int run(harness *h, const char *program, const char *const *args, char **out, char **err)
{
    return harness_run(h, program, args, NULL, out, err);
}

static void test_json_off_as_a_separate_word_prints_the_table(void **state)
{
    harness h;
    char *out, *err;

    harness_setup(&h, "options_json_off");
    assert_int_equal(run(&h, "topicflow", (const char *[]){"topics", "--json", "off", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "no model yet"));
    free(out);
    free(err);
    assert_int_equal(run(&h, "topicflow", (const char *[]){"status", "--json", "off", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "outbox_pending "));
    assert_null(strchr(out, '{'));
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_strict_off_as_a_separate_word_skips_bad_rows(void **state)
{
    static const char csv[] = "title,company\nGood,Acme\n,NoTitle\n";
    harness h;
    char *out, *err;
    const char *file;

    harness_setup_pg(&h, "options_strict_off");
    file = harness_write_file(&h, "rows.csv", csv, strlen(csv));
    assert_int_equal(run(&h, "topicflow", (const char *[]){"load", "--strict", "off", file, NULL}, &out, &err), 0);
    assert_string_equal(out, "loaded 1 row, skipped 1\n");
    free(out);
    free(err);
    assert_int_equal(run(&h, "topicflow", (const char *[]){"load", "--strict", "on", file, NULL}, &out, &err), 1);
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_bad_log_level_is_a_usage_error_like_the_daemons(void **state)
{
    harness h;
    char *out, *err;

    harness_setup_pg(&h, "options_log_level");
    assert_int_equal(run(&h, "topicflow", (const char *[]){"topics", "--log-level", "loud", NULL}, &out, &err), 2);
    assert_string_equal(err, "topicflow topics: invalid log level 'loud' (error, warn, info or debug)\n");
    assert_string_equal(out, "");
    free(out);
    free(err);
    assert_int_equal(run(&h, "topicflow-worker", (const char *[]){"--log-level", "loud", NULL}, &out, &err), 2);
    assert_non_null(strstr(err, "invalid log level 'loud' (error, warn, info or debug)"));
    free(out);
    free(err);
    harness_teardown(&h);
}

static void test_sample_prints_its_version(void **state)
{
    harness h;
    char *out, *err;

    harness_setup_pg(&h, "options_sample_version");
    assert_int_equal(run(&h, "topicflow", (const char *[]){"sample", "--version", NULL}, &out, &err), 0);
    assert_string_equal(out, "topicflow " TOPICFLOW_VERSION "\n");
    free(out);
    free(err);
    harness_teardown(&h);
}

/* Does `topicflow <args> --help` list option flag (followed by a space)? */
static int help_lists(harness *h, const char *const *args, const char *flag)
{
    const char *argv[8] = {0};
    char *out, *err, needle[64];
    int i = 0, found;

    for (; args[i]; i++)
        argv[i] = args[i];
    argv[i] = "--help";
    assert_int_equal(run(h, "topicflow", argv, &out, &err), 0);
    snprintf(needle, sizeof(needle), "  %s ", flag);
    found = strstr(out, needle) != NULL;
    free(out);
    free(err);
    return found;
}

static void test_help_lists_only_the_servers_a_command_talks_to(void **state)
{
    static const char *const pg_only[][3] = {
        {"migrate"}, {"track"}, {"load"}, {"topics"}, {"doc"}, {"refit"}, {"replay"}, {"outbox"},
    };
    static const char *const amqp_only[][3] = {{"dlq", "list"}, {"dlq", "requeue"}, {"dlq", "purge"}};
    harness h;

    harness_setup_pg(&h, "options_help");
    for (size_t i = 0; i < sizeof(pg_only) / sizeof(pg_only[0]); i++) {
        assert_true(help_lists(&h, pg_only[i], "--pg"));
        assert_true(help_lists(&h, pg_only[i], "--log-level"));
        assert_false(help_lists(&h, pg_only[i], "--amqp"));
        assert_false(help_lists(&h, pg_only[i], "--amqp-cacert"));
    }
    for (size_t i = 0; i < sizeof(amqp_only) / sizeof(amqp_only[0]); i++) {
        assert_false(help_lists(&h, amqp_only[i], "--pg"));
        assert_true(help_lists(&h, amqp_only[i], "--amqp"));
        assert_true(help_lists(&h, amqp_only[i], "--amqp-verify"));
    }
    assert_true(help_lists(&h, (const char *[]){"status", NULL}, "--pg"));
    assert_true(help_lists(&h, (const char *[]){"status", NULL}, "--amqp"));
    harness_teardown(&h);
}

static void test_byte_ranges_print_in_units(void **state)
{
    harness h;
    char *out, *err;

    harness_setup_pg(&h, "options_byte_range");
    assert_int_equal(run(&h, "topicflow-worker", (const char *[]){"--max-message", "1", NULL}, &out, &err), 2);
    assert_string_equal(err, "topicflow-worker: invalid value '1' for --max-message (expected 64 to 1G)\n");
    free(out);
    free(err);
    assert_int_equal(run(&h, "topicflow-worker", (const char *[]){"--help", NULL}, &out, &err), 0);
    assert_non_null(strstr(out, "(default 1MiB) (64 to 1G)"));
    free(out);
    free(err);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_off_as_a_separate_word_prints_the_table),
        cmocka_unit_test(test_strict_off_as_a_separate_word_skips_bad_rows),
        cmocka_unit_test(test_bad_log_level_is_a_usage_error_like_the_daemons),
        cmocka_unit_test(test_sample_prints_its_version),
        cmocka_unit_test(test_help_lists_only_the_servers_a_command_talks_to),
        cmocka_unit_test(test_byte_ranges_print_in_units),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
