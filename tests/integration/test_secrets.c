/*
 * test_secrets.c - passwords reach the programs without being written where they show:
 * libpq's passfile works through our connection code (a role whose password is only in a
 * PGPASSFILE connects, and the same passfile with a wrong password is refused, which shows
 * the server really asks for it). The other ways (in the URL, TOPICFLOW_PG_PASSWORD_FILE)
 * are used by every integration test through harness_spawn; secrets.log_grep then checks
 * that no log of the run holds a password. And migrations running in parallel all set the
 * roles' passwords.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define UNPUBLISHED "select count(*) from topicflow.outbox where published_at is null"

/* Writes a passfile (mode 0600, as libpq requires) for role with password into path. */
static void write_passfile(const char *path, const char *role, const char *password)
{
    char line[512];
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int len = snprintf(line, sizeof(line), "127.0.0.1:%s:*:%s:%s\n", getenv("TOPICFLOW_PG_PORT"),
                       role, password);

    if (fd < 0 || write(fd, line, (size_t)len) != len || close(fd) != 0)
        fail_msg("cannot write %s", path);
}

static int wait_log(pid_t pid, const char *needle, double timeout_s)
{
    for (double end = harness_now() + timeout_s; harness_now() < end; usleep(100000))
        if (access(harness_log_of(pid), R_OK) == 0 && harness_log_contains(pid, needle))
            return 1;
    return 0;
}

static void test_a_role_whose_password_is_only_in_a_passfile_connects(void **state)
{
    char url[600], password[256], passfile[1024];
    const char *args[] = {"--pg", url, NULL};
    harness h;
    pid_t producer;

    harness_setup(&h, "secrets_passfile");
    harness_role_url_without_password(&h, "topicflow_producer", url, sizeof(url));
    harness_role_password("topicflow_producer", password, sizeof(password));
    snprintf(passfile, sizeof(passfile), "%s/secrets/test_secrets.pgpass", getenv("TOPICFLOW_STATE_DIR"));
    harness_insert_internships(&h, 20);
    setenv("PGPASSFILE", passfile, 1);

    /* the control: the server asks for the password, and a wrong one in the passfile fails */
    write_passfile(passfile, "topicflow_producer", "not-the-password");
    producer = harness_spawn(&h, "topicflow-producer", args);
    assert_true(wait_log(producer, "password authentication failed", 20));
    harness_stop(producer, SIGTERM);
    assert_int_equal(harness_scalar(&h, UNPUBLISHED), 20);

    write_passfile(passfile, "topicflow_producer", password);
    producer = harness_spawn(&h, "topicflow-producer", args);
    assert_int_equal(harness_wait_scalar(&h, UNPUBLISHED, 0, 60), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);

    unsetenv("PGPASSFILE");
    unlink(passfile);
    harness_teardown(&h);
}

/* Roles are cluster-wide and PostgreSQL fails one of two ALTER ROLEs of the same role at the
 * same instant ("tuple concurrently updated"): 12 parallel runs failed 28 times in 60 before
 * migrate set the password again on that error. */
static void test_parallel_migrations_all_set_the_roles_passwords(void **state)
{
    char cmd[2048], out[256] = "";
    harness h;
    FILE *p;

    harness_setup_pg(&h, "secrets_parallel");
    snprintf(cmd, sizeof(cmd),
             "for round in 1 2 3; do for i in 1 2 3 4 5 6 7 8; do"
             " ('%s/topicflow' migrate --pg '%s' >/dev/null 2>&1 || echo failed) & done; wait; done",
             TF_BIN_DIR, h.pg_url);
    p = popen(cmd, "r");
    assert_non_null(p);
    while (fgets(out, sizeof(out), p))
        fail_msg("a parallel topicflow migrate failed");
    assert_int_equal(WEXITSTATUS(pclose(p)), 0);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_role_whose_password_is_only_in_a_passfile_connects),
        cmocka_unit_test(test_parallel_migrations_all_set_the_roles_passwords),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
