/*
 * outbox.h - the producer's side of topicflow.outbox: lock a batch of unpublished events
 * (FOR UPDATE SKIP LOCKED, id order), mark the confirmed ones published, and delete old
 * published rows. All statements are prepared once per connection.
 *
 * Locked rows stay locked until the caller commits or rolls back, so several producers
 * never publish the same row at the same time, and a producer that dies mid-batch
 * leaves its rows unpublished (they are published again: duplicates, never loss).
 */
#ifndef TF_OUTBOX_H
#define TF_OUTBOX_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "wire/event_codec.h"

typedef struct tf_json_object tf_json_object;

typedef struct outbox_batch {
    PGresult *res;           /* owns the events' scalar strings */
    size_t n;
    tf_event *events;        /* in id order */
    uint64_t *tids;          /* per event: its row's ctid (block << 16 | offset), stable while
                              * the transaction that read the batch holds the row locks */
    tf_event_field *fields;  /* storage for every event's payload fields */
    tf_json_object **json;   /* one parser per event: owns its payload strings */
    char **joined;           /* the rare payload values that were arrays, joined */
    size_t n_joined, cap_joined;
    char **reject;           /* per event: why it cannot be published (owned), or NULL */
    size_t n_rejected;
    size_t cap_events, cap_fields, cap_json, cap_reject;
} outbox_batch;

/* Prepares the statements on conn and turns synchronous_commit off for the session: a
 * commit of this module is lost in a server crash only as rows published again. */
int outbox_prepare(PGconn *conn, tf_err *err);

/* Inside an open transaction: lock and read up to limit unpublished events with ids of at
 * least from_id (0: all). A caller that skips the head of the outbox with from_id must
 * scan from 0 now and then: a lower id can become visible after higher ones. An event whose
 * payload is not a JSON object is returned with a reject reason (batch->reject[i]) instead
 * of failing the batch: one bad row must never hold up the rows behind it. */
int outbox_fetch(PGconn *conn, int limit, int64_t from_id, outbox_batch *batch, tf_err *err);

/* Mark event i as unpublishable with a reason (printf format); it is set aside at settle. */
int outbox_reject(outbox_batch *batch, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Inside the same transaction: move every rejected event of batch to
 * topicflow.outbox_rejected with its reason (topicflow.outbox_set_aside). */
int outbox_set_aside(PGconn *conn, const outbox_batch *batch, tf_err *err);

/* Inside the transaction that read batch: set published_at on the given ids (ascending,
 * each an event of batch). The rows are found by the ctid they were read at, not through
 * the primary key: a locked row cannot move, and that spares an index search per row. */
int outbox_mark_published(PGconn *conn, const outbox_batch *batch, const int64_t *ids, size_t n,
                          tf_err *err);

/*
 * Retention, as both capture modes run it: at most every OUTBOX_RETENTION_EVERY_S, batches of
 * OUTBOX_RETENTION_BATCH published rows older than age_s, each its own short transaction,
 * repeated while a batch comes back full and budget_s has not run out (0: one batch). Up to
 * ~50,000 rows a second of budget, far above what a drain publishes, so the table cannot
 * outgrow it. *deleted gets the rows deleted in all; 0 ok, -1 (err) on a failed batch.
 */
#define OUTBOX_RETENTION_EVERY_S 5.0
#define OUTBOX_RETENTION_BATCH 5000
int outbox_retention_pass(PGconn *conn, double age_s, double budget_s, long *deleted,
                          tf_err *err);

/* Unpublished rows and the age of the oldest (0 when none), for the metrics. */
int outbox_backlog(PGconn *conn, long long *pending, double *oldest_age_s, tf_err *err);

void outbox_batch_reset(outbox_batch *batch);
void outbox_batch_free(outbox_batch *batch);

#endif
