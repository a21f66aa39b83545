/*
 * vocab.h - the vocabulary (term <-> dense id, document frequency) and the TF-IDF rows
 * built from it: one sparse row per document for the stream path, a CSR matrix of many
 * documents for the batch path. Ids are stable and append-only: a term keeps its id for
 * the life of the vocabulary, and a new term gets the next id (tf_vocab_size()).
 * Weights: tf = 1 + ln(count), idf = ln((1 + N) / (1 + df)) + 1 (scikit-learn's smoothed
 * idf), times the term's language weight (1 unless set: engine/corpus.h), each row
 * L2-normalised. Pure: no I/O. Not thread-safe: one writer at a time.
 */
#ifndef TF_VOCAB_H
#define TF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"
#include "engine/text.h"

typedef struct tf_vocab tf_vocab;

tf_vocab *tf_vocab_new(tf_err *err);
void tf_vocab_free(tf_vocab *v);

/* One past the largest id. Every id below it is a term or, when rows were loaded with
 * gaps (tf_vocab_put), an unused id. It is the column count of rows built against v. */
int32_t tf_vocab_size(const tf_vocab *v);
/* Number of terms (tf_vocab_size minus the gaps). */
int32_t tf_vocab_terms(const tf_vocab *v);
/* N, the number of documents counted (tf_vocab_add_doc minus tf_vocab_remove_doc). */
int64_t tf_vocab_docs(const tf_vocab *v);
void tf_vocab_set_docs(tf_vocab *v, int64_t n_docs);

/* Id of term[0..len), or -1 when absent. */
int32_t tf_vocab_lookup(const tf_vocab *v, const char *term, size_t len);
/* Id of term[0..len), adding it with df 0 and id tf_vocab_size() when absent. -1 on
 * failure (empty term, out of memory) with err set. */
int32_t tf_vocab_add(tf_vocab *v, const char *term, size_t len, tf_err *err);
/* Restore one stored row (id, term, df), in any order. Fails (-1) when the term already
 * has another id or the id another term; putting an identical row again only sets df. */
int tf_vocab_put(tf_vocab *v, int32_t id, const char *term, size_t len, int64_t df,
                 tf_err *err);
/* The term of id (NUL-terminated, *len set when len != NULL), or NULL for an unused or
 * out-of-range id. Valid until the next tf_vocab_add/put. Iterate ids 0..size-1 and skip
 * NULLs to export (id, term, df) rows. */
const char *tf_vocab_term(const tf_vocab *v, int32_t id, size_t *len);
/* Document frequency of id (0 for an unused or out-of-range id). */
int64_t tf_vocab_df(const tf_vocab *v, int32_t id);
int tf_vocab_set_df(tf_vocab *v, int32_t id, int64_t df, tf_err *err);

/* The language weight of id, a factor of its idf in [0, 1]: how evenly the languages of a
 * bilingual corpus use the term (tf_corpus_language_weights). 1 for a new term, an unused
 * or out-of-range id. Setting it fails for an unused id or a value outside [0, 1]. */
float tf_vocab_language_weight(const tf_vocab *v, int32_t id);
int tf_vocab_set_language_weight(tf_vocab *v, int32_t id, float w, tf_err *err);

/* The terms of one document: unique ids in ascending order with their counts, and the
 * weights once tf_vocab_weight has run. Caller-owned, reusable across documents. */
typedef struct tf_bag {
    int32_t *ids;
    int32_t *counts;
    float *weights;
    size_t n;
    /* Without TF_VOCAB_GROW: indices (into tf_tokens.tok) of tokens not in the vocabulary,
     * one per occurrence, so the caller can add them (e.g. with ids from a database). */
    uint32_t *unknown;
    size_t n_unknown;
    /* With TF_VOCAB_FIRST: first[i] is the index (into tf_tokens.tok) of the first token
     * of ids[i], whose surface form (tf_token.form_off) the document shows that term by. */
    uint32_t *first;
    int32_t *tok_ids; /* scratch: the id of each token */
    size_t cap, unknown_cap, first_cap, tok_ids_cap;
} tf_bag;

void tf_bag_init(tf_bag *b);
void tf_bag_free(tf_bag *b);

#define TF_VOCAB_GROW 1  /* tf_vocab_count adds unknown terms instead of reporting them */
#define TF_VOCAB_FIRST 2 /* tf_vocab_count also fills bag->first */

/* Step 1, count: turn a document's tokens into bag (ids ascending, counts). Document
 * frequencies are not touched. -1 on out of memory. */
int tf_vocab_count(tf_vocab *v, const tf_tokens *toks, int flags, tf_bag *bag, tf_err *err);
/* Step 2, document frequency: a document with these unique ids arrives (df += 1 each,
 * N += 1) or is retracted (df -= 1, N -= 1). Both check every id first and change
 * nothing when one is unknown (or, on removal, has df 0 or N is 0). */
int tf_vocab_add_doc(tf_vocab *v, const int32_t *ids, size_t n, tf_err *err);
int tf_vocab_remove_doc(tf_vocab *v, const int32_t *ids, size_t n, tf_err *err);
/* Step 3, weight: bag->weights[i] = L2-normalised tf-idf of ids[i] under the current
 * document frequencies. An empty bag gives an empty row. */
void tf_vocab_weight(const tf_vocab *v, tf_bag *bag);
/* The same on caller buffers: out[i] from ids[i] and counts[i] (out must not overlap
 * them; n may be 0). */
void tf_vocab_tfidf(const tf_vocab *v, const int32_t *ids, const int32_t *counts, size_t n,
                    float *out);

/* Replace the raw counts of every row of m by its L2-normalised tf-idf under v's current
 * document frequencies, and set n_cols = tf_vocab_size(v). Column ids must be below it. */
void tf_vocab_weight_csr(const tf_vocab *v, tf_csr *m);

#endif
