/*
 * coherence.h - how interpretable a model's topics are, measured on the corpus itself: the
 * mean normalised pointwise mutual information (NPMI) of each topic's top terms over
 * document co-occurrence. For terms i, j of one topic's top list, with P(i), P(j), P(i,j)
 * the shares of documents holding i, j, both:
 *     NPMI(i, j) = log(P(i,j) / (P(i) P(j))) / -log P(i,j)      (-1 when never together,
 *                                                                  1 when P(i,j) = 1)
 * averaged over the pairs of a topic, then over the topics whose column is not all zero.
 * The same measure bench/quality.py prints, so the workers' figure and the harness's agree.
 */
#ifndef TF_COHERENCE_H
#define TF_COHERENCE_H

#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"

/* The top terms per topic the project measures (refits, the workers' measure, the harness). */
#define TF_COHERENCE_TOP 10

/* X: documents × terms (any non-negative values; only presence counts), W: n_terms × k
 * row-major (nmf.h layout); rows of W beyond X's columns are ignored. top: terms per topic
 * (2..64). *mean gets the mean NPMI, 0 when no topic has two terms with weight. */
int tf_coherence_npmi(const tf_csr *X, const double *W, int32_t n_terms, int k, int top,
                      double *mean, tf_err *err);

#endif
