/*
 * model_update.h - the three ways a model version comes to be, shared by the stream path
 * (topicflow-worker) and the batch path (topicflow refit):
 *   refresh: fold the deltas workers appended into the statistics and update W (HALS);
 *   refit:   batch NMF over every live document, a new epoch, topic ids matched to the
 *            previous version;
 *   refold:  fold stale documents (folded against an older epoch, or never) into the
 *            current model, a chunk per transaction.
 * Invariant: the current epoch's statistics plus the deltas based on it equal the sum of
 * (x, h) over the documents whose model_version >= epoch. Refresh and refit serialize on
 * the model advisory lock; refold and the workers' batches lock documents row by row.
 */
#ifndef TF_MODEL_UPDATE_H
#define TF_MODEL_UPDATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "base/config.h"
#include "base/error.h"
#include "engine/nmf.h"
#include "model/store.h"

typedef struct tf_update_opts {
    int k;                 /* topics of a refit */
    int max_iter;          /* refit iterations */
    double tol;            /* refit relative tolerance (0: run max_iter) */
    uint64_t seed;
    int threads;
    int refresh_passes;    /* HALS passes per refresh */
    int top_terms;         /* topic_terms rows per topic */
    int keep_versions;     /* model versions kept */
    nmf_progress_fn progress; /* refit progress, may be NULL */
    void *progress_ctx;
    int initial_only;      /* refit: only when no model exists yet, and skip (return 1)
                              instead of waiting when another process holds the lock */
    int try_lock;          /* refit: skip (return 1) when another process holds the lock */
    int min_df;            /* the model's vocabulary: terms in at least min_df documents */
    double max_df;         /* ... and at most this share of them (engine/corpus.h) */
    const char *reason;    /* refit: why it runs, recorded with the epoch ("operator", ...) */
} tf_update_opts;

tf_update_opts tf_update_defaults(void);

/* The option rows of the model's vocabulary rule (engine/corpus.h), one pair for every
 * program that fits: the worker and `topicflow refit`. member names a struct with long
 * min_df and double max_df. The defaults are tf_update_defaults()'s. */
#define TF_OPTIONS_VOCABULARY(type, member)                                                    \
    {"min-df", "TOPICFLOW_MIN_DF", TF_OPT_INT, "2",                                            \
     "the model's vocabulary: terms in at least this many documents",                         \
     offsetof(type, member.min_df), 1, 1e9},                                                   \
    {"max-df", "TOPICFLOW_MAX_DF", TF_OPT_DOUBLE, "0.95",                                      \
     "... and in at most this share of them (from 50 documents on; 1: no upper cut)",         \
     offsetof(type, member.max_df), 0.01, 1}

typedef struct tf_vocabulary_rule {
    long min_df;
    double max_df;
} tf_vocabulary_rule;

/* Fold all pending deltas (when at least min_deltas are waiting) into a new version, or
 * only into the document frequencies while no model exists. Skips (returns 0) when
 * another process holds the model lock or stale documents are still being re-folded.
 * 1 when a refresh committed, 0 when skipped, -1 on error (rolled back). */
int tf_model_refresh(PGconn *conn, const tf_update_opts *opts, long min_deltas,
                     int64_t *new_version, tf_err *err);

/* How many terms of v the model's vocabulary rule (opts min_df, max_df; engine/corpus.h)
 * keeps for a corpus of n_docs documents: what a refit now would fit on. -1 on error. */
int32_t tf_model_kept_terms(const tf_vocab *v, int64_t n_docs, const tf_update_opts *opts, int k,
                            tf_err *err);

typedef struct tf_refit_result {
    int64_t version;
    int64_t n_docs;
    int32_t n_terms;
    int32_t kept_terms;    /* the model's vocabulary: terms the fit used (tf_corpus_keep_terms) */
    int k;                 /* topics fitted: opts->k, or fewer when the data has fewer
                              documents or terms than that (never an error) */
    nmf_batch_result fit;
    double mean_match;     /* mean cosine of matched topics with the previous version, or -1 */
    double coherence;      /* mean NPMI of the topics' top 10 terms on the fitted documents
                              (engine/coherence.h) */
    double language_strength; /* how much of the two-language rule the weights apply, 0..1
                              (engine/corpus.h tf_corpus_language_weights; 0: one language) */
} tf_refit_result;

/* Batch NMF over every live document and install it as a new epoch (documents become
 * stale until re-folded; the caller runs tf_model_refold until none is left). Holds the
 * model lock (session level) from its snapshot to its install, so no refresh interleaves.
 * The fit uses the model's vocabulary (opts min_df, max_df) and min(k, documents, terms)
 * topics: k never blocks a model. The epoch is recorded in topicflow.model_epochs (asked
 * and fitted k, documents, terms, relative error, reason). 0 installed, 1 skipped (with
 * initial_only: a model exists; with initial_only or try_lock: another process holds the
 * lock), -1 error (no live document with text, or a failure). */
int tf_model_refit(PGconn *conn, const tf_update_opts *opts, tf_refit_result *res, tf_err *err);

/* Re-fold up to limit stale documents against m (the current model, with W and G; v gives
 * the document frequencies) in one transaction. *n receives how many were re-folded (0:
 * none left). Returns 1 when m is no longer the current epoch (reload and call again). */
int tf_model_refold(PGconn *conn, const tf_model *m, const tf_vocab *v, const char *worker,
                    int limit, int *n, tf_err *err);

/* Number of live documents not folded into the current epoch. */
int tf_model_stale_count(PGconn *conn, int64_t epoch, long long *n, tf_err *err);

#endif
