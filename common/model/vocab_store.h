/*
 * vocab_store.h - the vocabulary's persistence (topicflow.terms): load it, refresh its
 * document frequencies, give ids to new terms. Every function runs inside whatever
 * transaction the caller has open; none commits.
 */
#ifndef TF_MODEL_VOCAB_STORE_H
#define TF_MODEL_VOCAB_STORE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/vocab.h"

/* Load every term (id, term, df) into a new vocabulary; n_docs from the newest model or,
 * without one, the count of live documents. */
tf_vocab *tf_vocab_load(PGconn *conn, tf_err *err);

/* For each term id, the documents that wrote it in a form not starting with an Arabic letter
 * (topicflow.term_forms as folded so far): how much the English (or any non-Arabic) text
 * uses it, which the lexicon's sense choice reads. *docs (freed by the caller) gets *n
 * entries, indexed by term id (0 for an id without such forms). */
int tf_terms_english_docs(PGconn *conn, int64_t **docs, size_t *n, tf_err *err);

#endif
