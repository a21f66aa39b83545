/*
 * store.h - the topic model's persistence in PostgreSQL: model versions (topicflow.model with their topic_terms), and the
 * statistics deltas that worker mini-batches append (topicflow.model_deltas).
 * Every function runs inside whatever transaction the caller has open; none commits.
 */
#ifndef TF_MODEL_STORE_H
#define TF_MODEL_STORE_H

#include <libpq-fe.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/nmf.h"
#include "engine/vocab.h"

/* Serializes every writer of model versions and document frequencies (refresh, refit):
 * the two-key advisory lock (class, object), which can never collide with the one-key
 * per-document locks. TF_LOCK_MODEL_SQL is its argument list for SQL text. */
#define TF_LOCK_MODEL_CLASS 7340155
#define TF_LOCK_MODEL_OBJ 1
#define TF_STR_(x) #x
#define TF_STR(x) TF_STR_(x)
#define TF_LOCK_MODEL_SQL TF_STR(TF_LOCK_MODEL_CLASS) ", " TF_STR(TF_LOCK_MODEL_OBJ)

typedef struct tf_model {
    int64_t version;   /* 0: no model */
    int64_t epoch;     /* version of the refit that started the current statistics */
    int64_t n_docs;
    int k;
    int32_t n_terms;
    double *W;         /* n_terms × k (nmf.h layout) */
    double *G;         /* k × k Gram matrix WᵀW, for fold-in */
    nmf_stats *stats;  /* A and B; only when loaded with statistics */
} tf_model;

/* The newest version and its epoch; both 0 when no model exists yet. */
int tf_model_head(PGconn *conn, int64_t *version, int64_t *epoch, tf_err *err);
/* The same, after beginning a transaction in the same round trip (the caller commits or
 * rolls back; on failure the transaction may be open and aborted). */
int tf_model_begin_head(PGconn *conn, int64_t *version, int64_t *epoch, tf_err *err);

/* Load the newest model into m (replacing what it held). with_stats also loads A and B.
 * 1 loaded, 0 no model yet (m cleared), -1 error. */
int tf_model_load(PGconn *conn, int with_stats, tf_model *m, tf_err *err);

/* Insert m as a new version (its version and epoch as set by the caller) with its blob
 * (W and statistics), its topic_terms (the top `top` terms of each topic, named through
 * v), and stats_json; then delete versions older than the newest `keep`. */
int tf_model_save(PGconn *conn, const tf_model *m, const char *kind, const tf_vocab *v, int top,
                  const char *stats_json, int keep, tf_err *err);

/* Compute m->G from m->W. */
int tf_model_gram(tf_model *m, tf_err *err);

void tf_model_clear(tf_model *m);

/* Refresh the document frequencies of v from topicflow.terms (after a model change). */
int tf_vocab_reload_df(PGconn *conn, tf_vocab *v, int64_t n_docs, tf_err *err);

/* Give ids to the n terms (adding the unknown ones to topicflow.terms in sorted order,
 * so that concurrent workers never deadlock) and put them into v. Meant to run in its
 * own short transaction: a term is harmless if the batch that wanted it rolls back. */
int tf_terms_resolve(PGconn *conn, tf_vocab *v, const char *const *terms, size_t n, tf_err *err);

/* Append one mini-batch's delta: the statistics (d may be NULL when no model exists) and
 * the document-frequency changes. */
int tf_model_write_delta(PGconn *conn, const char *worker, int64_t base_version, int n_docs,
                         const nmf_delta *d, const int32_t *df_terms, const int32_t *df_deltas,
                         size_t n_df, tf_err *err);

#endif
