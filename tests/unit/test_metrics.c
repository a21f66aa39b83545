/*
 * test_metrics.c - the registry renders what a Prometheus server parses: # HELP and # TYPE
 * once per family, counters as integers, histogram buckets cumulative with le bounds and a
 * +Inf bucket equal to _count, label values and help text escaped; updates from several
 * threads are all counted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/metrics.h"

static void test_counter_and_gauge_render_with_help_and_type(void **state)
{
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    tf_counter *c = tf_metrics_counter(m, "topicflow_events_total", "Events seen.", NULL, NULL, &err);
    tf_gauge *g = tf_metrics_gauge(m, "topicflow_backlog", "Rows waiting.", NULL, NULL, &err);
    char *text;

    assert_non_null(c);
    assert_non_null(g);
    tf_counter_add(c, 3);
    tf_counter_add(c, 4);
    tf_gauge_set(g, 2.5);
    text = tf_metrics_render(m);
    assert_string_equal(text, "# HELP topicflow_events_total Events seen.\n"
                              "# TYPE topicflow_events_total counter\n"
                              "topicflow_events_total 7\n"
                              "# HELP topicflow_backlog Rows waiting.\n"
                              "# TYPE topicflow_backlog gauge\n"
                              "topicflow_backlog 2.5\n");
    free(text);
    tf_metrics_free(m);
}

static void test_labelled_series_share_one_family(void **state)
{
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    tf_counter *a = tf_metrics_counter(m, "dl_total", "Dead letters.", "reason", "schema", &err);
    tf_counter *b = tf_metrics_counter(m, "dl_total", "Dead letters.", "reason", "too_large", &err);
    tf_counter *a2 = tf_metrics_counter(m, "dl_total", "Dead letters.", "reason", "schema", &err);
    char *text;

    assert_ptr_equal(a, a2);
    tf_counter_add(a, 1);
    tf_counter_add(b, 2);
    text = tf_metrics_render(m);
    assert_string_equal(text, "# HELP dl_total Dead letters.\n"
                              "# TYPE dl_total counter\n"
                              "dl_total{reason=\"schema\"} 1\n"
                              "dl_total{reason=\"too_large\"} 2\n");
    free(text);
    tf_metrics_free(m);
}

static void test_label_values_and_help_are_escaped(void **state)
{
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    tf_gauge *g = tf_metrics_gauge(m, "x", "a \\ back\nslash \"as is\"", "why",
                                   "say \"no\"\\\nnow", &err);
    char *text;

    tf_gauge_set(g, -1);
    text = tf_metrics_render(m);
    assert_string_equal(text, "# HELP x a \\\\ back\\nslash \"as is\"\n"
                              "# TYPE x gauge\n"
                              "x{why=\"say \\\"no\\\"\\\\\\nnow\"} -1\n");
    free(text);
    tf_metrics_free(m);
}

static void test_histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state)
{
    static const double bounds[] = {0.01, 0.1, 1};
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    tf_histogram *h = tf_metrics_histogram(m, "lat_seconds", "Latency.", bounds, 3, &err);
    char *text;

    assert_non_null(h);
    tf_histogram_observe(h, 0.005);
    tf_histogram_observe(h, 0.1); /* on a bound: in that bucket (le) */
    tf_histogram_observe(h, 0.5);
    tf_histogram_observe(h, 30);
    text = tf_metrics_render(m);
    assert_string_equal(text, "# HELP lat_seconds Latency.\n"
                              "# TYPE lat_seconds histogram\n"
                              "lat_seconds_bucket{le=\"0.01\"} 1\n"
                              "lat_seconds_bucket{le=\"0.1\"} 2\n"
                              "lat_seconds_bucket{le=\"1\"} 3\n"
                              "lat_seconds_bucket{le=\"+Inf\"} 4\n"
                              "lat_seconds_sum 30.605\n"
                              "lat_seconds_count 4\n");
    free(text);
    tf_metrics_free(m);
}

static void test_non_finite_gauges_use_prometheus_spelling(void **state)
{
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    tf_gauge *g = tf_metrics_gauge(m, "g", "", NULL, NULL, &err);
    char *text;

    tf_gauge_set(g, 1.0 / 0.0);
    text = tf_metrics_render(m);
    assert_non_null(strstr(text, "\ng +Inf\n"));
    free(text);
    tf_gauge_set(g, 0.1);
    text = tf_metrics_render(m);
    assert_non_null(strstr(text, "\ng 0.1\n"));
    free(text);
    tf_metrics_free(m);
}

static void test_bad_names_and_type_clashes_are_refused(void **state)
{
    static const double down[] = {1, 0.5};
    tf_metrics *m = tf_metrics_new();
    tf_err err;

    assert_null(tf_metrics_counter(m, "9lives", "", NULL, NULL, &err));
    assert_null(tf_metrics_counter(m, "a-b", "", NULL, NULL, &err));
    assert_null(tf_metrics_counter(m, "ok", "", "bad-label", "v", &err));
    assert_non_null(tf_metrics_counter(m, "taken", "", NULL, NULL, &err));
    assert_null(tf_metrics_gauge(m, "taken", "", NULL, NULL, &err));
    assert_non_null(strstr(err.msg, "counter"));
    assert_null(tf_metrics_histogram(m, "h", "", down, 2, &err));
    tf_counter_add(NULL, 1); /* a failed registration leaves a NULL the daemons may update */
    tf_gauge_set(NULL, 1);
    tf_histogram_observe(NULL, 1);
    tf_metrics_free(m);
}

static void test_readiness_holds_its_reason(void **state)
{
    tf_metrics *m = tf_metrics_new();

    assert_null(tf_metrics_unready(m));
    tf_metrics_set_unready(m, "RabbitMQ not connected");
    assert_string_equal(tf_metrics_unready(m), "RabbitMQ not connected");
    tf_metrics_set_unready(m, NULL);
    assert_null(tf_metrics_unready(m));
    tf_metrics_free(m);
}

#define THREADS 4
#define ADDS 100000

typedef struct shared {
    tf_counter *c;
    tf_histogram *h;
} shared;

static void *hammer(void *arg)
{
    shared *s = arg;

    for (int i = 0; i < ADDS; i++) {
        tf_counter_add(s->c, 1);
        if (i % 10 == 0)
            tf_histogram_observe(s->h, 0.5);
    }
    return NULL;
}

static void test_updates_from_threads_are_all_counted(void **state)
{
    static const double bounds[] = {1};
    tf_metrics *m = tf_metrics_new();
    tf_err err;
    shared s = {tf_metrics_counter(m, "n_total", "", NULL, NULL, &err),
                tf_metrics_histogram(m, "h", "", bounds, 1, &err)};
    pthread_t t[THREADS];
    char *text;

    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, hammer, &s);
    for (int i = 0; i < THREADS; i++) {
        text = tf_metrics_render(m); /* rendering while they run is safe */
        free(text);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(tf_counter_value(s.c), THREADS * ADDS);
    text = tf_metrics_render(m);
    assert_non_null(strstr(text, "h_count 40000\n"));
    assert_non_null(strstr(text, "h_bucket{le=\"+Inf\"} 40000\n"));
    free(text);
    tf_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_and_gauge_render_with_help_and_type),
        cmocka_unit_test(test_labelled_series_share_one_family),
        cmocka_unit_test(test_label_values_and_help_are_escaped),
        cmocka_unit_test(test_histogram_buckets_are_cumulative_with_inf_sum_and_count),
        cmocka_unit_test(test_non_finite_gauges_use_prometheus_spelling),
        cmocka_unit_test(test_bad_names_and_type_clashes_are_refused),
        cmocka_unit_test(test_readiness_holds_its_reason),
        cmocka_unit_test(test_updates_from_threads_are_all_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
