/*
 * apply.h - one mini-batch of events into PostgreSQL, in one transaction: duplicates
 * dropped against processed_events, older versions ignored, documents tokenized, folded
 * in against the current model and stored, the statistics delta appended, the events
 * recorded as processed. The caller acks the messages only after this committed.
 *
 * Concurrency: per-document advisory locks (taken in key order, so two workers never
 * deadlock) serialize workers on the same document, including one that does not exist
 * yet; the rows are then read FOR UPDATE so that a concurrent refold is waited for.
 */
#ifndef TF_APPLY_H
#define TF_APPLY_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "stage_clock.h"
#include "base/error.h"
#include "engine/text.h"
#include "engine/vocab.h"
#include "model/store.h"

typedef struct applier applier;

typedef struct apply_stats {
    int applied, duplicates, stale;
    int64_t model_version;
} apply_stats;

/* name identifies the worker in model_deltas and worker_activity; text configures its
 * text pipeline (its lexicon must outlive the applier). */
applier *applier_new(const char *name, const tf_text_opts *text, tf_err *err);
void applier_free(applier *a);

/* Build item from a decoded event: payload text tokenized and counted against the
 * vocabulary. Returns 0, or 1 with a one-line reason in err when the event can never be
 * processed (no text left after sanitation), -1 on an internal failure. */
int applier_prepare_item(applier *a, work_item *item, tf_err *err);

/* Count the items' terms again against the vocabulary held now (after applier_forget and
 * a reload: ids cached from another database must not reach this one). */
int applier_recount(applier *a, work_item *items, size_t n, tf_err *err);

/* Give ids to the terms the batch's documents brought (own short transaction) and
 * recount those documents. */
int applier_resolve_terms(applier *a, PGconn *conn, work_item *items, size_t n, tf_err *err);

/* The batch transaction. 0 committed; -1 rolled back, err saying why with the code that
 * pg/retry.h classifies (every failure path sets err, so no earlier failure's code is left
 * behind). */
int applier_apply(applier *a, PGconn *conn, work_item *items, size_t n, apply_stats *stats,
                  tf_err *err);

/* Where a newer model may already be waiting, loaded off the hot path: fills *model and
 * *vocab (ownership passes to the caller) and returns 1 when it holds exactly `version`,
 * else 0. */
/* The batch account the transaction's stages are added to (NULL: none); the caller starts
 * it for each batch. */
void applier_set_clock(applier *a, stage_clock *clock);

typedef int (*model_source_fn)(void *ctx, int64_t version, tf_model *model, tf_vocab **vocab);
void applier_set_model_source(applier *a, model_source_fn fn, void *ctx);

/* Drop the model and vocabulary held, so that the next applier_sync_model reads them
 * again: after a new connection the database may not be the one they came from (a restore,
 * a re-created database), and term ids cached from another are wrong there. */
void applier_forget(applier *a);

/* Load (or reload after a change) the model and the vocabulary: from the model source
 * when it has the current version, else from the database (after up to 5 s of folding
 * against the previous version of the same epoch, which is consistent). A batch that meets
 * a document folded in a newer epoch (a refit committed meanwhile) rolls back as transient
 * and reloads. */
int applier_sync_model(applier *a, PGconn *conn, tf_err *err);
const tf_model *applier_model(const applier *a);
const tf_vocab *applier_vocab(const applier *a);

#endif
