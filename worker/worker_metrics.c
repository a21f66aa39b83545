/*
 * worker_metrics.c - the worker's metric names, help texts, batch-latency buckets (1 ms to
 * 60 s: a batch commits in milliseconds, a database outage holds it for as long as it lasts)
 * and the dead-letter reasons, all registered up front so that every series reads 0 before
 * its first event instead of being absent.
 */
#include "worker_metrics.h"

#include <math.h>

static const double batch_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                      0.25,  0.5,    1,     2.5,  5,     10,   60};

static const char *const reason_labels[DL_N_REASONS] = {
    [DL_CONTENT_TYPE] = "content_type", [DL_SCHEMA] = "schema",
    [DL_TOO_LARGE] = "too_large",       [DL_UNDECODABLE] = "undecodable",
    [DL_INVALID_EVENT] = "invalid_event", [DL_DATABASE] = "database",
};

int worker_metrics_init(worker_metrics *wm, tf_err *err)
{
    tf_metrics *m = tf_metrics_new();
    int ok = 1;

    *wm = (worker_metrics){m};
    if (!m)
        return tf_err_set(err, "out of memory");
    tf_metrics_set_unready(m, "not connected yet");
    /* On a new registry only memory can run out; err keeps the first failure. */
    wm->documents = tf_metrics_counter(
        m, "topicflow_documents_processed_total",
        "Events applied and acknowledged (duplicates and stale versions included).", NULL, NULL,
        err);
    wm->batch_seconds = tf_metrics_histogram(
        m, "topicflow_batch_seconds",
        "Time a mini-batch takes from its first message to its ack (apply, commit, dead letters).",
        batch_bounds, sizeof(batch_bounds) / sizeof(batch_bounds[0]), err);
    for (int r = 0; r < DL_N_REASONS; r++) {
        wm->dead_letters[r] = tf_metrics_counter(
            m, "topicflow_dead_letters_total",
            "Messages this worker sent to the dead-letter queue, by reason.", "reason",
            reason_labels[r], err);
        ok &= wm->dead_letters[r] != NULL;
    }
    wm->model_version = tf_metrics_gauge(m, "topicflow_model_version",
                                         "Model version this worker folds its next documents in with (0: none yet).",
                                         NULL, NULL, err);
    wm->measured_version = tf_metrics_gauge(
        m, "topicflow_model_measured_version",
        "Newest model version measured (topicflow.model_quality; 0: none yet).", NULL, NULL, err);
    wm->relative_error = tf_metrics_gauge(
        m, "topicflow_model_relative_error",
        "Relative error ||X - H W'|| / ||X|| of the newest measured version (NaN: none yet).",
        NULL, NULL, err);
    wm->coherence = tf_metrics_gauge(
        m, "topicflow_model_coherence",
        "Mean NPMI of the top 10 terms of the newest measured version's topics (NaN: none yet).",
        NULL, NULL, err);
    wm->reconnects = tf_metrics_counter(
        m, "topicflow_reconnects_total",
        "Connections to PostgreSQL and RabbitMQ re-established after a loss.", NULL, NULL, err);
    for (int st = 0; st < STAGE_N; st++) {
        wm->stage_us[st] = tf_metrics_counter(
            m, "topicflow_batch_stage_microseconds_total",
            "Time the mini-batches spent per stage (fill: waiting for deliveries; text; the SQL"
            " statements; fold and delta: the model; commit; ack), in microseconds.",
            "stage", stage_name((stage_id)st), err);
        ok &= wm->stage_us[st] != NULL;
    }
    if (!ok || !wm->documents || !wm->batch_seconds || !wm->model_version ||
        !wm->measured_version || !wm->relative_error || !wm->coherence || !wm->reconnects)
        return -1;
    tf_gauge_set(wm->relative_error, NAN);
    tf_gauge_set(wm->coherence, NAN);
    return 0;
}

void worker_metrics_free(worker_metrics *wm)
{
    tf_metrics_free(wm->registry);
    wm->registry = NULL;
}

void worker_metrics_add_stages(worker_metrics *wm, const double *sec)
{
    for (int st = 0; st < STAGE_N; st++)
        if (sec[st] > 0)
            tf_counter_add(wm->stage_us[st], (uint64_t)(sec[st] * 1e6 + 0.5));
}
