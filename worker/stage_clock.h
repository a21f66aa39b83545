/*
 * stage_clock.h - where a mini-batch's time goes: a lap timer over the stages of one batch
 * (waiting for deliveries, text, the SQL statements, the model arithmetic, commit, ack),
 * added to the worker's per-stage counters and, with --trace FILE, written as one line per
 * batch (and per upkeep step) with wall-clock times, so that a slow event can be traced to
 * the stage, statement or upkeep step that held it (docs/OPERATIONS.md, "Tracing latency").
 */
#ifndef TF_STAGE_CLOCK_H
#define TF_STAGE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The stages, in the order a batch passes them; the group (text, pg, model, broker) is
 * what bench-worker sums them into. */
typedef enum {
    STAGE_FILL,      /* broker: from the first delivery held to the batch's start */
    STAGE_TEXT,      /* text: decode, tokenize, count against the vocabulary */
    STAGE_RESOLVE,   /* pg: ids of new terms (own short transaction) */
    STAGE_SYNC,      /* pg: begin, model head, model swap */
    STAGE_LOCK,      /* pg: per-document advisory locks and the processed_events lookup */
    STAGE_READ,      /* pg: the stored documents, FOR UPDATE */
    STAGE_FOLD,      /* model: tf-idf and fold-in of the new vectors */
    STAGE_UPSERT,    /* pg: the documents' rows */
    STAGE_DELTA,     /* model: the statistics delta (retract + add) and its encoding */
    STAGE_DELTA_SQL, /* pg: the delta row */
    STAGE_RECORD,    /* pg: term forms, processed_events, worker_activity */
    STAGE_COMMIT,    /* pg: commit */
    STAGE_ACK,       /* broker: dead letters confirmed, the multiple-ack */
    STAGE_N
} stage_id;

const char *stage_name(stage_id s);
const char *stage_group(stage_id s); /* "text", "pg", "model" or "broker" */

typedef struct stage_clock {
    double mark;            /* tf_now() of the last lap */
    double sec[STAGE_N];    /* this batch's seconds per stage */
} stage_clock;

/* Starts a batch's account at `now` (a tf_now() value). */
void stage_clock_start(stage_clock *c, double now);
/* Adds the time since the last lap to stage s. NULL clock: nothing. */
void stage_clock_lap(stage_clock *c, stage_id s);

/* The --trace file: shared by the consuming and upkeep threads (one fprintf per line). */
typedef struct stage_trace stage_trace;

/* Opens path for appending; NULL with *why set (errno text) when it cannot. */
stage_trace *stage_trace_open(const char *path, const char **why);
void stage_trace_close(stage_trace *t);
/* "batch" line: wall-clock of the first delivery and of the ack, events, their ids, then
 * seconds per stage. NULL trace: nothing. */
void stage_trace_batch(stage_trace *t, double recv_wall, double end_wall, const stage_clock *c,
                       const int64_t *event_ids, size_t n);
/* "upkeep" line: one step of the maintenance thread (wall-clock start, seconds). */
void stage_trace_upkeep(stage_trace *t, const char *step, double start_wall, double seconds);

/* Wall-clock seconds since the epoch (comparable with PostgreSQL's commit timestamps). */
double stage_wall_now(void);

#endif
