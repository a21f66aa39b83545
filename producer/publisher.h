/*
 * publisher.h - turns batches of outbox events into persistent msgpack messages on
 * topicflow.events and tracks the broker's confirms. Batches are submitted and settled in
 * order; several may be in flight, so the database work of the next batch overlaps the
 * broker's fsync of the previous one. The outcome tells the caller which rows it may mark
 * published: only those the broker acked and routed.
 */
#ifndef TF_PUBLISHER_H
#define TF_PUBLISHER_H

#include <stdint.h>

#include "outbox.h"
#include "amqp/broker.h"
#include "amqp/topology.h"

typedef struct publisher publisher;

publisher *publisher_new(void);
void publisher_free(publisher *p);

/* Publish every event of batch that is not rejected (not waiting for confirms); an event
 * whose message would exceed max_message bytes is rejected here (outbox_reject) instead:
 * the workers would dead-letter it, and a broker may refuse it and close the channel. The
 * batch must stay alive until it is settled. */
int publisher_submit(publisher *p, tf_broker *b, outbox_batch *batch, size_t max_message,
                     tf_err *err);

/*
 * Wait up to timeout_s until the oldest submitted batch is fully confirmed, and drop it
 * from the window. *acked lists (in id order) the ids the broker acked and did not
 * return, valid until the next call; *n_acked is their count. 0 when every confirm of the
 * batch arrived (some may be nacked or returned), -1 on a lost connection or timeout.
 */
int publisher_settle_oldest(publisher *p, tf_broker *b, double timeout_s, const int64_t **acked,
                            size_t *n_acked, tf_err *err);

/* Of the batch the last publisher_settle_oldest dropped: how many events the broker nacked
 * (a subset of those not in *acked; the others were returned as unroutable). */
size_t publisher_last_nacked(const publisher *p);

/* One event as its message (the properties and routing key every mode uses), published
 * without waiting for its confirm. 1 published with *tag, 0 not published because the
 * message of *len bytes exceeds max_message, -1 failure. */
int publisher_send(tf_broker *b, const tf_event *ev, size_t max_message, uint64_t *tag,
                   size_t *len, tf_err *err);

/* Event i of an outbox batch through publisher_send: 1 published (*tag), 0 too large (the
 * row is marked rejected with its reason, set aside at settle), -1 failure. */
int publisher_send_row(tf_broker *b, outbox_batch *batch, size_t i, size_t max_message,
                       uint64_t *tag, tf_err *err);

/* A returned message carries no delivery tag: mark the pending entry of the window
 * (ids[i] and state[i] for i < n) whose event id is the message_id as returned. */
void publisher_mark_returned(const int64_t *ids, uint8_t *state, size_t n,
                             const char *message_id, size_t len);

/* Forget everything in flight (after the connection was lost: those confirms never come). */
void publisher_reset(publisher *p);

/* Batches submitted and not yet settled. */
size_t publisher_in_flight(const publisher *p);

#endif
