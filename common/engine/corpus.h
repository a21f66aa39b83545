/*
 * corpus.h - documents into a document-term matrix for the batch path: a builder that
 * accumulates count rows as documents are counted and weights them (tf-idf, L2) once the
 * document frequencies are final, and the whole path in one call.
 */
#ifndef TF_CORPUS_H
#define TF_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"
#include "engine/text.h"
#include "engine/vocab.h"

/* Accumulates count rows into a tf_csr (csr.h, documents x terms) for the batch path:
 * add each document's bag as soon as it is counted, finish once the document frequencies
 * are final. Caller-owned; tf_csr_builder_init before use. */
typedef struct tf_csr_builder {
    tf_csr m; /* the rows so far, raw counts */
    size_t rows_cap, nnz_cap;
} tf_csr_builder;

void tf_csr_builder_init(tf_csr_builder *b);
/* Append bag as the next row (columns ascending, values = raw counts). */
int tf_csr_builder_add(tf_csr_builder *b, const tf_bag *bag, tf_err *err);
/* Weight every row (tf_vocab_weight_csr) and move the matrix into *out, which the caller
 * then owns (csr_free). The builder is left empty and reusable. -1 only on out of memory. */
int tf_csr_builder_finish(tf_csr_builder *b, const tf_vocab *v, tf_csr *out, tf_err *err);
/* Release an unfinished builder's rows. */
void tf_csr_builder_free(tf_csr_builder *b);
/* The batch path in one call: tokenize docs[i][0..lens[i]) with t, count them into v
 * (growing it), add each to the document frequencies, then weight. On success *out holds
 * one row per document, in order, and belongs to the caller (csr_free). Pass an empty v
 * for a fresh model. */
int tf_vocab_build_csr(tf_vocab *v, tf_text *t, const char *const *docs, const size_t *lens,
                       size_t n_docs, tf_csr *out, tf_err *err);

/* ---- the model's vocabulary ----------------------------------------------------------- */

/* Rows of the model (terms) are the terms with min_df <= df[t] <= max_df * n_docs: a term
 * seen in one document cannot make a topic, one in nearly every document tells topics
 * apart by nothing (the upper bound applies from TF_CORPUS_MAX_DF_FROM documents on). When
 * fewer than min_kept terms pass, every term with df > 0 is kept instead: a small corpus
 * still gets a model. keep gets one byte per term; returns how many are kept. */
#define TF_CORPUS_MAX_DF_FROM 50
int32_t tf_corpus_keep_terms(const int32_t *df, int32_t n_terms, int64_t n_docs, int min_df,
                             double max_df, int32_t min_kept, uint8_t *keep);

/* ---- two languages ------------------------------------------------------------------- */

/* The language weight of each term (a factor of its idf, vocab.h) in a corpus written in
 * two languages. X holds raw counts (documents × terms); arabic[r] is row r's recorded
 * language: 1 Arabic (the second language), 0 the first, -1 not recorded (ignored below).
 *
 * A term the two languages use in the corpus's own proportion (share p of its recorded
 * documents in Arabic, against pi for the corpus) tells the subject, not the language;
 * a term of one language only (its untranslated words, its boilerplate) groups documents
 * by language. balance = min(p / pi, (1 - p) / (1 - pi)) in [0, 1], and
 *     weight = 1 - strength * (1 - balance),
 *     strength = min(1, m / TF_CORPUS_LANGUAGE_FULL) * min(1, shared / TF_CORPUS_LANGUAGE_SHARED)
 * where m = min(pi, 1 - pi) is the smaller language's share (a corpus with a few documents
 * of another language keeps its vocabulary nearly as it is), and shared is the mean, over
 * the smaller language's documents, of the share of a document's tf-idf mass (w², plain
 * idf over every row) on terms the two languages share (balance >= 1/2) and that are not
 * in most documents (df <= N / 2): where the two languages share no subject vocabulary,
 * a language's own words are its subject too, and they keep more of their weight. A term
 * no recorded document holds weighs 1, as does every term without two languages.
 * *strength (may be NULL) gets the strength applied. 0, or -1 out of memory. */
#define TF_CORPUS_LANGUAGE_FULL 0.25
#define TF_CORPUS_LANGUAGE_SHARED 0.25
int tf_corpus_language_weights(const tf_csr *X, const int8_t *arabic, float *out,
                               double *strength, tf_err *err);

/* out = X's kept columns renumbered 0..kept-1 in term order (map[t] = the new column, -1
 * when dropped; map has X.n_cols entries), each row scaled back to unit L2 norm (a row left
 * empty stays empty). out is allocated (csr_free). */
int tf_corpus_restrict(const tf_csr *X, const uint8_t *keep, int32_t *map, tf_csr *out,
                       tf_err *err);

#endif
