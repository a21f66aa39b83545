/*
 * producer_metrics.h - what topicflow-producer counts for --metrics-addr (docs/OPERATIONS.md,
 * "Metrics"): one registry and its handles, registered together so the names, help texts and
 * buckets live in one place. The handles are updated by the producer's one thread; the HTTP
 * thread only reads the registry.
 */
#ifndef TF_PRODUCER_METRICS_H
#define TF_PRODUCER_METRICS_H

#include "base/error.h"
#include "base/metrics.h"

typedef struct producer_metrics {
    tf_metrics *registry;
    tf_counter *published;        /* events the broker confirmed (rows marked published) */
    tf_counter *batches;          /* batches settled with at least one confirmed event */
    tf_counter *set_aside;        /* rows moved to topicflow.outbox_rejected */
    tf_counter *reconnects;       /* connections re-established after a loss */
    tf_histogram *confirm_seconds; /* a batch's submit to its last confirm */
    tf_gauge *outbox_pending, *outbox_oldest_age_s;
    /* capture wal: the slot's confirmed position behind the server's WAL, in bytes and in
     * seconds since the producer was last caught up; the WAL the slot keeps on disk */
    tf_gauge *slot_lag_bytes, *slot_lag_seconds, *slot_retained_bytes;
} producer_metrics;

/* Registers every metric (the registry starts unready: not connected yet). 0 ok, -1 with
 * err set; producer_metrics_free in both cases. */
int producer_metrics_init(producer_metrics *pm, tf_err *err);
void producer_metrics_free(producer_metrics *pm);

#endif
