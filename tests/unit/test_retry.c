/*
 * test_retry.c - the retry policy: every SQLSTATE class and exact code the policy names,
 * and the cases it must not misread (no code, a lost connection, unknown codes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pg/retry.h"

static tf_err with_code(const char *code)
{
    tf_err e;

    tf_err_set(&e, "failure with %s", code);
    snprintf(e.code, sizeof(e.code), "%s", code);
    return e;
}

static void test_every_named_code_is_classified_as_the_table_says(void **state)
{
    static const struct { const char *code; tf_failure_class want; } table[] = {
        /* transient: the server, the connection, conflicts, a lost race, the model moved */
        {"08000", TF_FAILURE_TRANSIENT}, {"08006", TF_FAILURE_TRANSIENT}, {"08P01", TF_FAILURE_TRANSIENT},
        {"40001", TF_FAILURE_TRANSIENT}, {"40P01", TF_FAILURE_TRANSIENT}, {"53100", TF_FAILURE_TRANSIENT},
        {"53200", TF_FAILURE_TRANSIENT}, {"53300", TF_FAILURE_TRANSIENT}, {"55P03", TF_FAILURE_TRANSIENT},
        {"57014", TF_FAILURE_TRANSIENT}, {"57P01", TF_FAILURE_TRANSIENT}, {"57P02", TF_FAILURE_TRANSIENT},
        {"57P03", TF_FAILURE_TRANSIENT}, {"57P04", TF_FAILURE_TRANSIENT}, {"58030", TF_FAILURE_TRANSIENT},
        {"23505", TF_FAILURE_TRANSIENT}, {TF_CODE_STALE_MODEL, TF_FAILURE_TRANSIENT},
        /* permanent for the event: its data, its constraints, its size */
        {"22001", TF_FAILURE_PERMANENT}, {"22P02", TF_FAILURE_PERMANENT}, {"22021", TF_FAILURE_PERMANENT},
        {"23502", TF_FAILURE_PERMANENT}, {"23503", TF_FAILURE_PERMANENT}, {"23514", TF_FAILURE_PERMANENT},
        {"54000", TF_FAILURE_PERMANENT}, {"54001", TF_FAILURE_PERMANENT},
        /* ours: the deployment or our code, never the event's fault */
        {"42P01", TF_FAILURE_OURS}, {"42501", TF_FAILURE_OURS}, {"3F000", TF_FAILURE_OURS},
        {"25P02", TF_FAILURE_OURS}, {"XX000", TF_FAILURE_OURS}, {"57000", TF_FAILURE_OURS},
        {"40002", TF_FAILURE_OURS},
    };

    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        tf_err e = with_code(table[i].code);
        tf_failure_class got = tf_failure_classify(&e, 1);
        if (got != table[i].want)
            fail_msg("%s: %s, want %s", table[i].code, tf_failure_name(got), tf_failure_name(table[i].want));
    }
}

static void test_no_code_is_ours_not_the_events(void **state)
{
    tf_err e;

    tf_err_set(&e, "out of memory");
    assert_int_equal(tf_failure_classify(&e, 1), TF_FAILURE_OURS);
    assert_int_equal(tf_failure_classify(NULL, 1), TF_FAILURE_OURS);
}

static void test_lost_connection_is_transient_whatever_the_code(void **state)
{
    tf_err e = with_code("22P02");

    assert_int_equal(tf_failure_classify(&e, 0), TF_FAILURE_TRANSIENT);
    tf_err_set(&e, "server closed the connection unexpectedly");
    assert_int_equal(tf_failure_classify(&e, 0), TF_FAILURE_TRANSIENT);
}

static void test_setting_a_message_clears_a_previous_code(void **state)
{
    /* A failure path that sets only a message must not be classified by the code an
     * earlier failure left behind (a healthy event would be dead-lettered). */
    tf_err e = with_code("22P02");

    tf_err_set(&e, "out of memory");
    assert_int_equal(tf_failure_classify(&e, 1), TF_FAILURE_OURS);
}

static void test_names(void **state)
{
    assert_string_equal(tf_failure_name(TF_FAILURE_TRANSIENT), "transient");
    assert_string_equal(tf_failure_name(TF_FAILURE_PERMANENT), "permanent");
    assert_string_equal(tf_failure_name(TF_FAILURE_OURS), "ours");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_named_code_is_classified_as_the_table_says),
        cmocka_unit_test(test_no_code_is_ours_not_the_events),
        cmocka_unit_test(test_lost_connection_is_transient_whatever_the_code),
        cmocka_unit_test(test_setting_a_message_clears_a_previous_code),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
