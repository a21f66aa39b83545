/*
 * pipeline.h - test helpers for the worker side: publishing hand-made events (duplicates,
 * out-of-order versions, malformed bodies) straight to the exchange, and checking the
 * model's bookkeeping against the documents it claims to summarize.
 */
#ifndef TF_PIPELINE_H
#define TF_PIPELINE_H

#include <stdint.h>

#include "harness.h"

/* Publish an internship event (confirmed). text NULL for deletes. */
void pipeline_publish(harness *h, int64_t id, const char *type, const char *doc_id,
                      int64_t version, const char *title, const char *description);

/* Publish raw bytes with the given schema header value (-1: no header). */
void pipeline_publish_raw(harness *h, const void *body, size_t len, int schema, const char *message_id);

/* Messages ready in a queue (passive declare). */
long long pipeline_queue_depth(harness *h, const char *queue);

/* Every document frequency equals the stored one plus the pending deltas. */
void pipeline_assert_df_consistent(harness *h);

/* Live documents = the model's n_docs plus pending deltas (with a model). */
void pipeline_assert_doc_count_consistent(harness *h);

/* The current epoch's A and B (stored plus pending deltas) equal Σ h hᵀ and Σ x hᵀ over
 * the documents folded in this epoch, to a relative 1e-6. No-op without a model. */
void pipeline_assert_statistics_consistent(harness *h);

/* Start a worker with small-corpus settings plus extra args (NULL-terminated). */
pid_t pipeline_spawn_worker(harness *h, const char *const *extra);

#endif
