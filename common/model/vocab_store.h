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

#endif
