/*
 * test_metrics_endpoint.c - --metrics-addr on both daemons, scraped as Prometheus would: the counters
 * follow the traffic exactly (documents processed = events sent = events published), dead
 * letters are counted by reason, the quality gauges read topicflow.model_quality's newest row,
 * and /readyz turns 503 while RabbitMQ is down and 200 again after. The worker's stage
 * account: the per-stage counters grow with the batches, and --trace writes one line per
 * batch naming every event it carried, exactly once. Runs alone (it stops the shared
 * RabbitMQ).
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pipeline.h"

#define PROCESSED "select count(*) from topicflow.processed_events"

/* The two daemons of a test, each with its own metrics port. */
typedef struct daemons {
    pid_t producer, worker;
    int producer_port, worker_port;
    char dir[64], trace[96]; /* the worker's --trace file */
} daemons;

static void spawn_daemons(harness *h, daemons *d)
{
    char paddr[32], waddr[32];

    d->producer_port = harness_free_port();
    do
        d->worker_port = harness_free_port();
    while (d->worker_port == d->producer_port);
    snprintf(paddr, sizeof(paddr), "127.0.0.1:%d", d->producer_port);
    snprintf(waddr, sizeof(waddr), "127.0.0.1:%d", d->worker_port);
    snprintf(d->dir, sizeof(d->dir), "/tmp/tf-trace-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->trace, sizeof(d->trace), "%s/worker.trace", d->dir);
    d->producer = harness_spawn(h, "topicflow-producer",
                                (const char *[]){"--metrics-addr", paddr, "--poll", "200ms",
                                                 "--reconnect-max", "1s", NULL});
    /* no model fit: the test counts events, and the quality gauges read a row it writes */
    d->worker = harness_spawn(h, "topicflow-worker",
                              (const char *[]){"--metrics-addr", waddr, "--min-docs", "1000000",
                                               "--batch", "50", "--reconnect-max", "1s",
                                               "--trace", d->trace, NULL});
    assert_true(harness_wait_http(d->producer_port, "/readyz", 200, 30));
    assert_true(harness_wait_http(d->worker_port, "/readyz", 200, 30));
}

static void stop_daemons(daemons *d)
{
    assert_int_equal(harness_stop(d->worker, SIGTERM), 0);
    assert_int_equal(harness_stop(d->producer, SIGTERM), 0);
    unlink(d->trace);
    rmdir(d->dir);
}

/* The trace's batch lines: each with every stage, and together naming every event of
 * processed_events exactly once (seen[id - first] counts them). */
static void assert_trace_covers(harness *h, const char *path, int n)
{
    static const char *const stages[] = {"fill", "text", "resolve", "sync", "lock", "read", "fold",
                                         "upsert", "delta", "delta_sql", "record", "commit", "ack"};
    long long first = harness_scalar(h, "select min(event_id) from topicflow.processed_events");
    int *seen = calloc((size_t)n, sizeof(*seen)), events = 0;
    FILE *f = fopen(path, "r");
    char line[65536];

    assert_non_null(f);
    assert_non_null(seen);
    while (fgets(line, sizeof(line), f)) {
        char *ids, *p;
        if (strncmp(line, "batch ", 6) != 0)
            continue;
        for (size_t s = 0; s < sizeof(stages) / sizeof(stages[0]); s++) {
            char key[32];
            snprintf(key, sizeof(key), " %s=", stages[s]);
            if (!strstr(line, key))
                fail_msg("no '%s' in trace line: %s", key, line);
        }
        ids = strstr(line, " ids=");
        assert_non_null(ids);
        for (p = ids + 5; *p >= '0' && *p <= '9';) {
            long long id = strtoll(p, &p, 10);
            assert_true(id >= first && id < first + n);
            seen[id - first]++;
            events++;
            if (*p == ',')
                p++;
        }
    }
    fclose(f);
    assert_int_equal(events, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static char *scrape(int port)
{
    int status;
    char *text = harness_http_get(port, "/metrics", &status);

    assert_int_equal(status, 200);
    return text;
}

/* The value of one series ("name" or "name{label=\"v\"}") in exposition text; NAN when absent. */
static double series_value(const char *text, const char *series)
{
    size_t len = strlen(series);

    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return NAN;
}

static double metric(int port, const char *series)
{
    char *text = scrape(port);
    double v = series_value(text, series);

    free(text);
    return v;
}

/* Polls until series reads want (counters are added just after the commit that the database
 * shows); returns the last value. */
static double wait_metric(int port, const char *series, double want, double timeout_s)
{
    double end = harness_now() + timeout_s, v;

    while ((v = metric(port, series)) != want && harness_now() < end)
        usleep(100 * 1000);
    return v;
}

static void assert_has_type(int port, const char *name, const char *type)
{
    char *text = scrape(port), line[160];

    snprintf(line, sizeof(line), "# TYPE %s %s\n", name, type);
    if (!strstr(text, line))
        fail_msg("no '%s' in:\n%s", line, text);
    free(text);
}

static void test_counters_follow_the_traffic_exactly(void **state)
{
    static const char garbage[] = "\xc1not msgpack";
    const int n = 300;
    harness h;
    daemons d;
    int status;
    double batches;

    harness_setup(&h, "metrics_traffic");
    spawn_daemons(&h, &d);
    free(harness_http_get(d.producer_port, "/healthz", &status));
    assert_int_equal(status, 200);
    free(harness_http_get(d.worker_port, "/healthz", &status));
    assert_int_equal(status, 200);
    free(harness_http_get(d.worker_port, "/nothing", &status));
    assert_int_equal(status, 404);
    assert_has_type(d.producer_port, "topicflow_publish_confirm_seconds", "histogram");
    assert_has_type(d.producer_port, "topicflow_outbox_pending", "gauge");
    assert_has_type(d.worker_port, "topicflow_documents_processed_total", "counter");
    assert_has_type(d.worker_port, "topicflow_batch_seconds", "histogram");
    assert_true(metric(d.worker_port, "topicflow_documents_processed_total") == 0);

    harness_insert_internships(&h, n);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, n, 60), n);
    assert_true(wait_metric(d.worker_port, "topicflow_documents_processed_total", n, 10) == n);
    assert_true(wait_metric(d.producer_port, "topicflow_events_published_total", n, 10) == n);
    batches = metric(d.producer_port, "topicflow_batches_published_total");
    assert_true(batches >= 1 && batches <= n);
    assert_true(metric(d.producer_port, "topicflow_publish_confirm_seconds_count") == batches);
    assert_true(metric(d.producer_port, "topicflow_publish_confirm_seconds_bucket{le=\"+Inf\"}") ==
                batches);
    assert_true(metric(d.worker_port, "topicflow_batch_seconds_count") >= n / 50);
    assert_true(metric(d.worker_port, "topicflow_batch_seconds_bucket{le=\"+Inf\"}") ==
                metric(d.worker_port, "topicflow_batch_seconds_count"));
    /* where the batches' time went: every batch passed text, locks, upsert and commit */
    assert_has_type(d.worker_port, "topicflow_batch_stage_microseconds_total", "counter");
    assert_true(metric(d.worker_port, "topicflow_batch_stage_microseconds_total{stage=\"text\"}") > 0);
    assert_true(metric(d.worker_port, "topicflow_batch_stage_microseconds_total{stage=\"lock\"}") > 0);
    assert_true(metric(d.worker_port, "topicflow_batch_stage_microseconds_total{stage=\"upsert\"}") > 0);
    assert_true(metric(d.worker_port, "topicflow_batch_stage_microseconds_total{stage=\"commit\"}") > 0);
    assert_trace_covers(&h, d.trace, n);
    /* the backlog gauges are sampled every 5 s */
    assert_true(wait_metric(d.producer_port, "topicflow_outbox_pending", 0, 15) == 0);
    assert_true(metric(d.producer_port, "topicflow_outbox_oldest_age_seconds") == 0);
    assert_true(metric(d.producer_port, "topicflow_outbox_set_aside_total") == 0);

    /* what cannot be processed is counted by reason, not as a document */
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, 1, "bad1");
    pipeline_publish_raw(&h, garbage, sizeof(garbage) - 1, -1, "bad2");
    assert_true(wait_metric(d.worker_port, "topicflow_dead_letters_total{reason=\"undecodable\"}",
                            1, 30) == 1);
    assert_true(wait_metric(d.worker_port, "topicflow_dead_letters_total{reason=\"schema\"}", 1,
                            30) == 1);
    assert_true(metric(d.worker_port, "topicflow_dead_letters_total{reason=\"content_type\"}") == 0);
    assert_true(metric(d.worker_port, "topicflow_documents_processed_total") == n);

    /* the quality gauges follow the newest measured version, whoever measured it */
    assert_true(isnan(metric(d.worker_port, "topicflow_model_relative_error")));
    harness_sql(&h, "insert into topicflow.model_quality (version, epoch, docs, relative_error,"
                    " coherence, seconds, worker) values (6, 1, 10, 0.5, 0.25, 1, 'other'),"
                    " (7, 1, 10, 0.25, 0.125, 1, 'other')");
    assert_true(wait_metric(d.worker_port, "topicflow_model_measured_version", 7, 15) == 7);
    assert_true(metric(d.worker_port, "topicflow_model_relative_error") == 0.25);
    assert_true(metric(d.worker_port, "topicflow_model_coherence") == 0.125);
    assert_true(metric(d.worker_port, "topicflow_model_version") == 0);
    stop_daemons(&d);
    harness_teardown(&h);
}

static void test_readyz_is_503_while_rabbitmq_is_down(void **state)
{
    harness h;
    daemons d;
    int status;
    char *body;

    harness_setup(&h, "metrics_ready");
    spawn_daemons(&h, &d);
    assert_int_equal(harness_services("rabbitmq stop"), 0);
    assert_true(harness_wait_http(d.producer_port, "/readyz", 503, 30));
    assert_true(harness_wait_http(d.worker_port, "/readyz", 503, 30));
    body = harness_http_get(d.worker_port, "/readyz", &status);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "RabbitMQ"));
    assert_int_equal(harness_count_lines(body), 1);
    free(body);
    free(harness_http_get(d.worker_port, "/healthz", &status));
    assert_int_equal(status, 200); /* alive all along */
    assert_int_equal(harness_services("rabbitmq start"), 0);
    assert_true(harness_wait_http(d.producer_port, "/readyz", 200, 60));
    assert_true(harness_wait_http(d.worker_port, "/readyz", 200, 60));
    assert_true(metric(d.producer_port, "topicflow_reconnects_total") >= 1);
    assert_true(metric(d.worker_port, "topicflow_reconnects_total") >= 1);
    harness_insert_internships(&h, 20); /* and the pipeline works again */
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 20, 60), 20);
    stop_daemons(&d);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_follow_the_traffic_exactly),
        cmocka_unit_test(test_readyz_is_503_while_rabbitmq_is_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
