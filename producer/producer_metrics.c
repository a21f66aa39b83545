/*
 * producer_metrics.c - the producer's metric names, help texts and confirm-latency buckets
 * (1 ms to 30 s: a broker's fsync of a batch takes milliseconds, the confirm timeout is 30 s).
 */
#include "producer_metrics.h"

static const double confirm_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,  0.5,    1,     2.5,  5,     10,   30};

int producer_metrics_init(producer_metrics *pm, tf_err *err)
{
    tf_metrics *m = tf_metrics_new();

    *pm = (producer_metrics){m};
    if (!m)
        return tf_err_set(err, "out of memory");
    tf_metrics_set_unready(m, "not connected yet");
    /* On a new registry only memory can run out; err keeps the first failure. */
    pm->published = tf_metrics_counter(
        m, "topicflow_events_published_total",
        "Outbox events the broker confirmed and the producer marked published.", NULL, NULL, err);
    pm->batches = tf_metrics_counter(m, "topicflow_batches_published_total",
                                     "Batches settled with at least one confirmed event.", NULL,
                                     NULL, err);
    pm->confirm_seconds = tf_metrics_histogram(
        m, "topicflow_publish_confirm_seconds",
        "Time from publishing a batch to the broker's last confirm of it.", confirm_bounds,
        sizeof(confirm_bounds) / sizeof(confirm_bounds[0]), err);
    pm->set_aside = tf_metrics_counter(
        m, "topicflow_outbox_set_aside_total",
        "Outbox rows set aside as unpublishable (topicflow outbox list).", NULL, NULL, err);
    pm->outbox_pending = tf_metrics_gauge(m, "topicflow_outbox_pending",
                                          "Unpublished outbox rows (sampled every 5 s).", NULL,
                                          NULL, err);
    pm->outbox_oldest_age_s = tf_metrics_gauge(
        m, "topicflow_outbox_oldest_age_seconds",
        "Age of the oldest unpublished outbox row, 0 when none (sampled every 5 s).", NULL, NULL,
        err);
    pm->reconnects = tf_metrics_counter(
        m, "topicflow_reconnects_total",
        "Connections to PostgreSQL and RabbitMQ re-established after a loss.", NULL, NULL, err);
    pm->slot_lag_bytes = tf_metrics_gauge(
        m, "topicflow_capture_slot_lag_bytes",
        "capture wal: WAL bytes between the server's position and the slot's confirmed one "
        "(sampled every 5 s).", NULL, NULL, err);
    pm->slot_lag_seconds = tf_metrics_gauge(
        m, "topicflow_capture_slot_lag_seconds",
        "capture wal: seconds since every change was published and confirmed to the slot, "
        "0 when caught up (sampled every 5 s).", NULL, NULL, err);
    pm->slot_retained_bytes = tf_metrics_gauge(
        m, "topicflow_capture_slot_retained_bytes",
        "capture wal: WAL bytes the slot keeps on the server (sampled every 5 s).", NULL, NULL,
        err);
    if (!pm->slot_lag_bytes || !pm->slot_lag_seconds || !pm->slot_retained_bytes)
        return -1;
    if (!pm->published || !pm->batches || !pm->confirm_seconds || !pm->set_aside ||
        !pm->outbox_pending || !pm->outbox_oldest_age_s || !pm->reconnects)
        return -1;
    return 0;
}

void producer_metrics_free(producer_metrics *pm)
{
    tf_metrics_free(pm->registry);
    pm->registry = NULL;
}
