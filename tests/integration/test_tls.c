/*
 * test_tls.c - the pipeline through servers that accept TLS only (`dev-services tls`:
 * PostgreSQL with hostssl lines alone, RabbitMQ with listeners.tcp = none and the management
 * API over https, both demanding a client certificate of the test CA): producer, worker and
 * CLI reach them with sslmode=verify-full and amqps://; a wrong CA or a wrong host name is
 * one clear line from the CLI and a clear line at every retry of a daemon; credentials never
 * go over http:// to a broker reached by amqps://.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"

#define PROCESSED "select count(*) from topicflow.processed_events"

/* A CA that signed nothing the servers present, made with the openssl command. */
static const char *other_ca(harness *h)
{
    static char path[1024];
    char cmd[2600];

    snprintf(path, sizeof(path), "%s/%s.other-ca.pem", TF_TEST_LOG_DIR, h->name);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
             " -subj '/CN=some other CA' -keyout '%s.key' -out '%s' >/dev/null 2>&1",
             path, path);
    if (system(cmd) != 0)
        fail_msg("openssl could not make %s", path);
    return path;
}

/* The test database's URL as user, at host (hostaddr 127.0.0.1 when host is a name), trusting
 * rootcert, with the client certificate. */
static void pg_url(const harness *h, const char *user, const char *host, const char *rootcert,
                   char *buf, size_t size)
{
    const char *certs = getenv("TOPICFLOW_TLS_CERTS");
    int n;

    n = snprintf(buf, size,
             "postgresql://%s@%s:%s/tf_%s?%ssslmode=verify-full&sslrootcert=%s"
             "&sslcert=%s/client.pem&sslkey=%s/client.key",
             user, host, getenv("TOPICFLOW_PG_PORT"), h->name,
             strcmp(host, "127.0.0.1") != 0 ? "hostaddr=127.0.0.1&" : "", rootcert, certs, certs);
    if (n < 0 || (size_t)n >= size)
        fail_msg("the PostgreSQL URL does not fit %zu bytes", size);
}

/* Runs `topicflow status` with extra args; asserts exit 1 with one stderr line holding want. */
static void status_fails_with_one_line(harness *h, const char *const *args, const char *want)
{
    const char *argv[16] = {"status"};
    char *out, *err;
    int n = 1;

    for (; *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    assert_int_equal(harness_run(h, "topicflow", argv, NULL, &out, &err), 1);
    assert_int_equal(harness_count_lines(err), 1);
    if (!strstr(err, want))
        fail_msg("expected '%s' in: %s", want, err);
    assert_null(strstr(err, "guest:guest"));
    free(out);
    free(err);
}

/* Waits until the daemon's log holds needle at least `times` times: it retries, and says
 * why every time. */
static void daemon_keeps_saying(pid_t pid, const char *needle, int times)
{
    double end = harness_now() + 30;

    for (;;) {
        FILE *f = fopen(harness_log_of(pid), "r");
        char line[4096];
        int n = 0;

        while (f && fgets(line, sizeof(line), f))
            n += strstr(line, needle) && strstr(line, "cannot connect, retrying") ? 1 : 0;
        if (f)
            fclose(f);
        if (n >= times)
            return;
        if (harness_now() > end)
            fail_msg("%s logged '%s' %d times, not %d", harness_log_of(pid), needle, n, times);
        usleep(100000);
    }
}

static char *json_field(harness *h, const char *json, const char *key)
{
    char sql[128];

    snprintf(sql, sizeof(sql), "select $1::jsonb->>'%s'", key);
    return harness_query_text(h, sql, json);
}

/* status --json until queue_unacked is known: the management API has no statistics for a
 * queue before its first sample (once a second). */
static char *status_with_unacked(harness *h)
{
    double end = harness_now() + 30;
    char *out, *err, *v;

    for (;;) {
        assert_int_equal(harness_run(h, "topicflow", (const char *[]){"status", "--json", NULL},
                                     NULL, &out, &err), 0);
        v = json_field(h, out, "queue_unacked");
        if (v) {
            assert_string_equal(err, "");
            free(v);
            free(err);
            return out;
        }
        if (harness_now() > end)
            fail_msg("queue_unacked stayed unknown: %s", err);
        free(out);
        free(err);
        usleep(200000);
    }
}

static void test_plain_connections_are_refused(void **state)
{
    harness h;
    char url[600];
    tf_err err;
    PGconn *c;

    harness_setup_tls(&h, "tls_plain_refused");
    snprintf(url, sizeof(url), "postgresql://topicflow@127.0.0.1:%s/tf_%s?sslmode=disable",
             getenv("TOPICFLOW_PG_PORT"), h.name);
    c = PQconnectdb(url);
    assert_int_not_equal(PQstatus(c), CONNECTION_OK);
    assert_non_null(strstr(PQerrorMessage(c), "no pg_hba.conf entry"));
    PQfinish(c);
    snprintf(url, sizeof(url), "amqp://guest:guest@127.0.0.1:%s/tf_%s",
             getenv("TOPICFLOW_AMQP_PORT"), h.name);
    assert_null(tf_broker_open(url, NULL, 0, &err));
    harness_teardown(&h);
}

static void test_pipeline_runs_through_tls_only_servers(void **state)
{
    const int n = 200;
    harness h;
    pid_t producer, worker;
    char *sample, *out, *v;
    const char *file;

    /* harness_setup_tls migrated through sslmode=verify-full already */
    harness_setup_tls(&h, "tls_pipeline");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    worker = harness_spawn(&h, "topicflow-worker", (const char *[]){"--min-docs", "50", NULL});
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"sample", "--count", "200", NULL},
                                 NULL, &sample, NULL), 0);
    file = harness_write_file(&h, "sample.jsonl", sample, strlen(sample));
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"load", file, NULL}, NULL, NULL,
                                 NULL), 0);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, n, 120), n);
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.documents where not deleted", n, 30), n);
    /* status: PostgreSQL, AMQP and the management API over https, all with the client
     * certificate (the servers demand it) */
    out = status_with_unacked(&h);
    v = json_field(&h, out, "queue_consumers");
    assert_string_equal(v, "1");
    free(v);
    v = json_field(&h, out, "documents");
    assert_string_equal(v, "200");
    free(v);
    free(out);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    free(sample);
    harness_teardown(&h);
}

/* The flags carry what the environment carried above; without a CA the system trust store is
 * used, which does not know the test CA. */
static void test_flags_set_the_trust_and_the_client_certificate(void **state)
{
    static const char *const vars[] = {"TOPICFLOW_AMQP_CACERT", "TOPICFLOW_AMQP_CERT",
                                       "TOPICFLOW_AMQP_KEY"};
    char *saved[3], *out;
    const char *certs;
    char ca[1024], cert[1024], key[1024];
    harness h;

    harness_setup_tls(&h, "tls_flags");
    certs = getenv("TOPICFLOW_TLS_CERTS");
    snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
    snprintf(cert, sizeof(cert), "%s/client.pem", certs);
    snprintf(key, sizeof(key), "%s/client.key", certs);
    for (int i = 0; i < 3; i++) {
        saved[i] = strdup(getenv(vars[i]));
        unsetenv(vars[i]);
    }
    status_fails_with_one_line(&h, (const char *[]){"--amqp-cert", cert, "--amqp-key", key, NULL},
                               "certificate verify failed (self-signed certificate in certificate "
                               "chain; trusting the system trust store)");
    status_fails_with_one_line(&h, (const char *[]){"--amqp-cacert", ca, NULL},
                               "a client certificate is required");
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"status", "--json", "--amqp-cacert", ca,
                                                  "--amqp-cert", cert, "--amqp-key", key, NULL},
                                 NULL, &out, NULL), 0);
    free(out);
    for (int i = 0; i < 3; i++) {
        setenv(vars[i], saved[i], 1);
        free(saved[i]);
    }
    harness_teardown(&h);
}

static void test_wrong_ca_fails_with_one_clear_line(void **state)
{
    harness h;
    char url[1200];
    const char *wrong;
    pid_t worker, producer;

    harness_setup_tls(&h, "tls_wrong_ca");
    wrong = other_ca(&h);
    status_fails_with_one_line(&h, (const char *[]){"--amqp-cacert", wrong, NULL},
                               "certificate verify failed (self-signed certificate in certificate "
                               "chain; trusting --amqp-cacert ");
    pg_url(&h, "topicflow", "127.0.0.1", wrong, url, sizeof(url));
    status_fails_with_one_line(&h, (const char *[]){"--pg", url, NULL},
                               "SSL error: certificate verify failed");
    /* the daemons retry by design, and say why at every attempt */
    worker = harness_spawn(&h, "topicflow-worker", (const char *[]){"--amqp-cacert", wrong, NULL});
    pg_url(&h, "topicflow_producer", "127.0.0.1", wrong, url, sizeof(url));
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--pg", url, NULL});
    daemon_keeps_saying(worker, "certificate verify failed (self-signed certificate", 3);
    daemon_keeps_saying(producer, "SSL error: certificate verify failed", 3);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    harness_teardown(&h);
}

/* 127.0.0.2 reaches the same broker under an address its certificate does not name; for
 * PostgreSQL, hostaddr=127.0.0.1 with a host name the certificate does not name. */
static void test_wrong_host_name_fails_with_one_clear_line(void **state)
{
    harness h;
    char amqp[600], pg[1200];
    pid_t worker;

    harness_setup_tls(&h, "tls_wrong_host");
    snprintf(amqp, sizeof(amqp), "amqps://guest:guest@127.0.0.2:%s/tf_%s",
             getenv("TOPICFLOW_AMQP_PORT"), h.name);
    status_fails_with_one_line(&h, (const char *[]){"--amqp", amqp, NULL},
                               "certificate verify failed (IP address mismatch: the certificate is "
                               "not for 127.0.0.2)");
    pg_url(&h, "topicflow", "wrong.invalid", getenv("TOPICFLOW_AMQP_CACERT"), pg, sizeof(pg));
    status_fails_with_one_line(&h, (const char *[]){"--pg", pg, NULL},
                               "does not match host name \"wrong.invalid\"");
    worker = harness_spawn(&h, "topicflow-worker", (const char *[]){"--amqp", amqp, NULL});
    daemon_keeps_saying(worker, "IP address mismatch", 3);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    harness_teardown(&h);
}

/* An http:// management URL with amqps:// is refused before any request: a listener in its
 * place sees no connection, and queue_unacked stays null. */
static void test_management_credentials_never_go_over_http(void **state)
{
    struct sockaddr_in addr = {0};
    socklen_t len = sizeof(addr);
    char mgmt[64], *out, *err, *v;
    tf_broker *b;
    harness h;
    int fd;

    harness_setup_tls(&h, "tls_mgmt_http");
    b = harness_broker(&h); /* over TLS, with the harness's own settings */
    harness_prepare_publisher(b);
    tf_broker_close(b);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    snprintf(mgmt, sizeof(mgmt), "http://127.0.0.1:%d", ntohs(addr.sin_port));
    assert_int_equal(harness_run(&h, "topicflow",
                                 (const char *[]){"status", "--json", "--management-url", mgmt, NULL},
                                 NULL, &out, &err), 0);
    v = json_field(&h, out, "queue_unacked");
    assert_null(v);
    assert_int_equal(harness_count_lines(err), 1);
    assert_non_null(strstr(err, "not sending the RabbitMQ credentials in clear to http://"));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    assert_int_equal(accept(fd, NULL, NULL), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    close(fd);
    free(out);
    free(err);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_connections_are_refused),
        cmocka_unit_test(test_pipeline_runs_through_tls_only_servers),
        cmocka_unit_test(test_flags_set_the_trust_and_the_client_certificate),
        cmocka_unit_test(test_wrong_ca_fails_with_one_clear_line),
        cmocka_unit_test(test_wrong_host_name_fails_with_one_clear_line),
        cmocka_unit_test(test_management_credentials_never_go_over_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
