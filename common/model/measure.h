/*
 * measure.h - the quality of the model the workers keep, measured on the documents as
 * stored: X = their tf-idf weights, H = their folded topic vectors (each against a version
 * of the current epoch), W = the newest version. Relative error ‖X − H Wᵀ‖ / ‖X‖ and the
 * mean NPMI coherence of the topics' top terms (engine/coherence.h), the figures
 * bench/quality.py computes for "kept by the workers". Recorded in topicflow.model_quality
 * for `topicflow status`.
 */
#ifndef TF_MODEL_MEASURE_H
#define TF_MODEL_MEASURE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "base/error.h"

typedef struct tf_model_quality {
    int64_t version, epoch;
    int64_t docs;            /* live documents measured */
    double relative_error;
    double coherence;        /* mean NPMI of the top TF_COHERENCE_TOP terms */
    double seconds;          /* the measure's own time */
} tf_model_quality;

/* Measure the newest version in one read-only snapshot and record it (worker names who
 * did). Returns 0 recorded, 1 skipped (no model, documents still stale against an older
 * epoch, or this version already measured), -1 on error. */
int tf_model_measure(PGconn *conn, const char *worker, tf_model_quality *q, tf_err *err);

/* The newest measured version's row of topicflow.model_quality (any worker's), into q.
 * 0 found, 1 nothing measured yet, -1 on error. */
int tf_model_quality_newest(PGconn *conn, tf_model_quality *q, tf_err *err);

#endif
