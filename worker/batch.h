/*
 * batch.h - the rules of one mini-batch, as pure functions: which events are duplicates,
 * which are superseded or older than what is stored, which previous contribution each
 * applied event retracts, and the statistics delta and document-frequency changes that
 * follow. No I/O: apply.c reads the database's state into doc_state, calls these, and
 * writes what they decided. The unit tests (tests/unit/test_batch.c) hold them to it.
 *
 * Invariants: an older version never overwrites a newer one (equal versions only for a
 * replay); of two events of one document in a batch only the newest applies; an event
 * id is applied at most once; what is retracted is exactly what was added (vectors and
 * mixtures are rounded to float, the stored precision, before they enter the statistics),
 * and only when it belongs to the current epoch's statistics.
 */
#ifndef TF_WORKER_BATCH_H
#define TF_WORKER_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"
#include "engine/csr.h"
#include "engine/vocab.h"
#include "wire/event_codec.h"

typedef enum {
    ITEM_PENDING = 0,
    ITEM_APPLIED,      /* its document changed */
    ITEM_DUPLICATE,    /* already in processed_events (or twice in this batch) */
    ITEM_STALE,        /* an older version than the stored one, or superseded in the batch */
} item_outcome;

typedef struct work_item {
    tf_event ev;          /* decoded; strings point into the message body */
    char *source;         /* owned, NUL-terminated */
    char *doc_id;         /* owned, NUL-terminated */
    tf_bag bag;           /* term ids (ascending) and counts, for created/updated */
    tf_buf forms;         /* the surface form of each bag term (its first occurrence), in
                             bag order, each followed by a NUL */
    char *text;           /* owned: the payload fields joined, kept for a recount */
    size_t text_len;
    int unknown_terms;    /* the bag lacks terms the vocabulary did not know yet */
    int arabic;           /* the document's language (engine/text.h tf_text_tokens_arabic):
                             1 Arabic, 0 not, -1 not recorded (no lexicon) */
    item_outcome outcome;
} work_item;

void work_item_clear(work_item *item);

/* What the database holds for an item's document, read under its lock. */
typedef struct doc_state {
    int found, deleted;
    int64_t version, model_version; /* model_version 0: never folded */
    int32_t *ids;                   /* owned */
    float *weights, *topics;        /* owned; topics NULL when never folded */
    size_t n, n_topics;
} doc_state;

void doc_state_clear(doc_state *s);

/* The model a batch folds against: W (n_terms × k) and its Gram matrix, or version 0. */
typedef struct batch_model {
    int64_t version, epoch;
    int k;
    int32_t n_terms;
    const double *W, *G;
} batch_model;

/* Rows a batch adds to or retracts from the statistics: a growable CSR and the mixtures. */
typedef struct batch_rows {
    tf_csr X;
    double *H; /* X.n_rows × k */
    size_t rows_cap, nnz_cap;
    int k;
} batch_rows;

/* Document-frequency changes, summed per term by batch_compute. */
typedef struct df_changes {
    int32_t *terms, *deltas;
    size_t n, cap;
} df_changes;

/* Everything a batch decided, for apply.c to write. */
typedef struct batch_result {
    batch_rows retract;  /* previous contributions of the current epoch, sign −1 */
    batch_rows add;      /* new vectors, folded in (when a model exists), sign +1 */
    size_t *add_item;    /* items index of each add row */
    df_changes df;
    int n_docs;          /* live documents added minus removed */
    int applied, duplicates, stale;
} batch_result;

void batch_result_init(batch_result *r, int k);
void batch_result_free(batch_result *r);

/* Step 1. Marks ITEM_DUPLICATE every item whose event id is in processed[] (ids already
 * committed) or that repeats an earlier item's id, and ITEM_STALE every pending item whose
 * document has a newer pending event in the batch (of equal versions the first wins). */
void batch_mark_duplicates(work_item *items, size_t n, const int64_t *processed,
                           size_t n_processed);

/* Step 2, per pending item against its stored state: 1 it applies, 0 it is stale (the
 * stored version is newer, or equal and the event is not a replay). */
int batch_applies(const work_item *it, const doc_state *s);

/* 1 when s's stored contribution is in m's statistics and must be retracted before the
 * document changes: it is live, folded in m's epoch (or later), with m's k topics. */
int batch_retracts(const doc_state *s, const batch_model *m);

/* Steps 2 and 3 for the whole batch: decides each pending item (APPLIED or STALE), collects
 * retractions and new vectors (tf-idf under v, folded against m, rounded to float), and the
 * document-frequency changes. states[i] belongs to items[i]. 0, or -1 with err set. */
int batch_compute(work_item *items, size_t n, const doc_state *states, const batch_model *m,
                  const tf_vocab *v, batch_result *out, tf_err *err);

#endif
