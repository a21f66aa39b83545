/*
 * maintenance.h - the worker's model upkeep, on its own thread and database connection so
 * that it never delays the consumption of events: the first model's fit once enough
 * documents exist, the re-folding of stale documents after a refit, periodic refreshes of W
 * from the accumulated deltas (also once the stream goes quiet with deltas pending), and the
 * automatic refit policy (see maintenance.c); and it loads each new model version for the
 * consuming thread, which then swaps it in instead of decoding it mid-stream. Several
 * workers may all run it: the model advisory lock and SKIP LOCKED make them share the work
 * instead of repeating it.
 */
#ifndef TF_MAINTENANCE_H
#define TF_MAINTENANCE_H

#include "stage_clock.h"
#include "worker_metrics.h"
#include "base/error.h"
#include "model/update.h"

typedef struct maintenance_opts {
    const char *pg_url;
    const char *name;
    long min_docs;          /* live documents before the first fit */
    long refresh_every;     /* deltas that make a refresh worth it */
    double refresh_interval_s;
    long refold_chunk;
    int refit_auto;         /* re-fit by itself when the corpus outgrew the epoch's fit */
    double refit_growth;    /* ... when documents or model terms grew by this factor */
    double refit_quiet_s;   /* ... or when the stream was quiet this long after growing 10 % */
    double refit_min_interval_s; /* least time between two automatic refits (any worker) */
    double measure_interval_s;   /* least time between two quality measures (0: never) */
    worker_metrics *metrics;     /* gets the newest measured quality (must outlive the thread) */
    stage_trace *trace;          /* each step's timing (NULL: off; must outlive the thread) */
    tf_update_opts update;  /* k and iterations of the first fit, refresh passes, ... */
} maintenance_opts;

typedef struct maintenance maintenance;

/* Start the thread (opts is copied; its strings must outlive the thread). */
maintenance *maintenance_start(const maintenance_opts *opts, tf_err *err);

/* A model version prepared for the consuming thread (apply.h's model_source_fn): 1 and
 * ownership of *model and *vocab when it holds `version`. */
int maintenance_take_model(void *m, int64_t version, tf_model *model, tf_vocab **vocab);

/* Tell it a batch committed (cheap, any thread). */
void maintenance_note_batch(maintenance *m);

/* Stop and join the thread (finishing the step in progress). */
void maintenance_stop(maintenance *m);

#endif
