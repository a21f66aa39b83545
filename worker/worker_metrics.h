/*
 * worker_metrics.h - what topicflow-worker counts for --metrics-addr (docs/OPERATIONS.md,
 * "Metrics"): one registry and its handles, registered together. The consuming thread
 * updates the documents, batches, dead letters and reconnects; the maintenance thread the
 * measured quality; both the model version (each when it loads one). Every handle is safe to update from any thread.
 */
#ifndef TF_WORKER_METRICS_H
#define TF_WORKER_METRICS_H

#include "base/error.h"
#include "base/metrics.h"
#include "stage_clock.h"

/* Why a message was dead-lettered: the label values of topicflow_dead_letters_total. */
typedef enum {
    DL_CONTENT_TYPE,  /* not application/msgpack */
    DL_SCHEMA,        /* x-topicflow-schema missing or unknown */
    DL_TOO_LARGE,     /* over --max-message */
    DL_UNDECODABLE,   /* not an event the codec reads */
    DL_INVALID_EVENT, /* decoded, but nothing to model (no text left) */
    DL_DATABASE,      /* PostgreSQL refused the event for good */
    DL_N_REASONS
} dead_letter_reason;

typedef struct worker_metrics {
    tf_metrics *registry;
    tf_counter *documents;        /* events applied (committed, duplicates and stale included) */
    tf_histogram *batch_seconds;  /* a batch from its first classification to its ack */
    tf_counter *dead_letters[DL_N_REASONS];
    tf_counter *reconnects;
    tf_gauge *model_version;      /* the version this worker folds its next documents in with */
    tf_gauge *measured_version, *relative_error, *coherence; /* topicflow.model_quality's newest */
    tf_counter *stage_us[STAGE_N]; /* microseconds spent per batch stage (stage_clock.h) */
} worker_metrics;

/* Registers every metric (the registry starts unready: not connected yet). 0 ok, -1 with
 * err set; worker_metrics_free in both cases. */
int worker_metrics_init(worker_metrics *wm, tf_err *err);
void worker_metrics_free(worker_metrics *wm);
/* Adds one batch's seconds per stage (stage_clock.h) to the stage counters. */
void worker_metrics_add_stages(worker_metrics *wm, const double *sec);

#endif
