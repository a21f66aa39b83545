/*
 * broker.h - RabbitMQ for topicflow: connecting (with fail-over over a URL list and
 * heartbeats), declaring (what to declare is amqp/topology.h's), publishing with publisher
 * confirms, and consuming with manual acks.
 *
 * A tf_broker is one connection with one channel, used by one owner thread. With heartbeats
 * on, a keeper thread of its own sends them whenever the owner is busy elsewhere (waiting on
 * PostgreSQL, a refit) or idle, so the broker never drops a connection whose owner is alive;
 * the owner needs no service calls for that. A connection the broker closed is noticed on
 * the owner's next call.
 */
#ifndef TF_BROKER_H
#define TF_BROKER_H

#include <amqp.h>
#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/error.h"

#define TF_HEADER_SCHEMA "x-topicflow-schema"
#define TF_HEADER_ERROR "x-topicflow-error"
#define TF_HEADER_FAILED_AT "x-topicflow-failed-at" /* AMQP timestamp of the worker's dead-lettering */
#define TF_CONTENT_TYPE "application/msgpack"

typedef struct tf_broker tf_broker;

/* Connect to the first reachable URL of a comma-separated list (amqp:// or amqps://),
 * log in, open channel 1. tls applies to the amqps:// ones (NULL: the system trust store,
 * verification on, no client certificate). heartbeat_s 0 disables heartbeats. NULL with
 * reason on failure; a certificate that fails verification is named in it, and which
 * check failed ("certificate verify failed (hostname mismatch: …)"). */
tf_broker *tf_broker_open(const char *urls, const tf_amqp_tls *tls, int heartbeat_s,
                          tf_err *err);
void tf_broker_close(tf_broker *b);

/* The socket, for select()/poll() by an owner that waits on several sources. */
int tf_broker_fd(const tf_broker *b);
int tf_broker_heartbeat(const tf_broker *b);
/* 1 while the connection and channel are usable. */
int tf_broker_ok(const tf_broker *b);
/* Heartbeat frames the keeper thread sent so far (for tests and debugging). */
unsigned long tf_broker_keeper_beats(const tf_broker *b);

/* Durable declarations and a binding (idempotent). Declaring a queue that exists with other
 * arguments returns TF_BROKER_INEQUIVALENT with the broker's reason in err; the broker
 * closed the channel for it, and it is replaced by a fresh one (in neither confirm mode nor
 * under a qos), so the connection stays usable. What to declare is amqp/topology.h's. */
#define TF_BROKER_INEQUIVALENT (-2)
int tf_broker_declare_exchange(tf_broker *b, const char *name, const char *type, tf_err *err);
int tf_broker_declare_queue(tf_broker *b, const char *name, amqp_table_t args, tf_err *err);
int tf_broker_bind(tf_broker *b, const char *queue, const char *exchange, const char *key,
                   tf_err *err);

/* Queue depth and consumers by passive declare; -1 with reason if the queue is missing. */
int tf_broker_queue_info(tf_broker *b, const char *queue, uint32_t *messages,
                         uint32_t *consumers, tf_err *err);

/* The same, except that a missing queue is an answer, not an error: *exists = 0 and the
 * broker stays usable (the broker closes the channel on a 404; it is replaced by a new one,
 * which is in neither confirm mode nor under a qos: probe before setting those). */
int tf_broker_queue_probe(tf_broker *b, const char *queue, int *exists, uint32_t *messages,
                          uint32_t *consumers, tf_err *err);

/* Remove every ready message of queue (operators and benchmarks). */
int tf_broker_purge(tf_broker *b, const char *queue, tf_err *err);
/* The same, reporting how many messages the broker removed (unacked ones stay). */
int tf_broker_purge_count(tf_broker *b, const char *queue, uint32_t *removed, tf_err *err);

/* Process whatever the broker sent (heartbeats, late confirms, a close) for at most
 * timeout_ms. 0 ok (also on timeout), -1 when the connection is no longer usable. */
int tf_broker_service(tf_broker *b, int timeout_ms, tf_err *err);

/* ---- publishing with confirms ------------------------------------------------------ */

enum { TF_CONFIRM_PENDING = 0, TF_CONFIRM_ACK = 1, TF_CONFIRM_NACK = 2, TF_CONFIRM_RETURNED = 3 };

/* Put the channel in confirm mode; delivery tags then count from 1. */
int tf_broker_confirm_select(tf_broker *b, tf_err *err);

/* Publish one message (mandatory: an unroutable message comes back as "returned").
 * *tag receives its delivery tag. */
int tf_broker_publish(tf_broker *b, const char *exchange, const char *routing_key,
                      const amqp_basic_properties_t *props, const void *body, size_t len,
                      uint64_t *tag, tf_err *err);

/* Called for each returned (unroutable) message with its message_id property (NULL, 0
 * when it has none). */
typedef void (*tf_return_cb)(void *ctx, const char *message_id, size_t len);

/*
 * The confirm window: state[i] is the TF_CONFIRM_* outcome of tag first+i, for the n tags
 * still outstanding. Waits until the first `needed` of them are settled (acked or nacked),
 * recording every confirm that arrives for any of the n meanwhile (one ack with "multiple"
 * may settle several batches at once), or until timeout_s passes. Returned messages are
 * reported through on_return before their ack arrives. 0 when settled, -1 on timeout or a
 * lost connection (the unsettled entries stay PENDING).
 */
int tf_broker_wait_confirms(tf_broker *b, uint64_t first, size_t n, uint8_t *state,
                            size_t needed, double timeout_s, tf_return_cb on_return, void *ctx,
                            tf_err *err);

/* ---- consuming ---------------------------------------------------------------------- */

int tf_broker_qos(tf_broker *b, uint16_t prefetch, tf_err *err);
int tf_broker_consume(tf_broker *b, const char *queue, tf_err *err);
/* Stop the consumer (no new deliveries); those already sent still arrive via tf_broker_next. */
int tf_broker_cancel(tf_broker *b, tf_err *err);

/* Wait up to timeout_ms for one delivery. 1 delivered (env filled; destroy with
 * amqp_destroy_envelope), 0 timeout, -1 connection or channel lost. */
int tf_broker_next(tf_broker *b, amqp_envelope_t *env, int timeout_ms, tf_err *err);

/* basic.get: 1 got one (env filled, destroy with amqp_destroy_envelope), 0 empty, -1 error. */
int tf_broker_get(tf_broker *b, const char *queue, int no_ack, amqp_envelope_t *env, tf_err *err);

int tf_broker_ack(tf_broker *b, uint64_t tag, int multiple, tf_err *err);
int tf_broker_nack(tf_broker *b, uint64_t tag, int multiple, int requeue, tf_err *err);

/* Set err from a reply of rabbitmq-c (library error, server channel/connection close). */
int tf_amqp_reply_error(amqp_rpc_reply_t reply, const char *context, tf_err *err);

/* An integer (or timestamp) field's value; -1 when v is NULL or of another kind. */
int tf_amqp_field_int(const amqp_field_value_t *v, long long *out);

/* Look up a header of a message's properties; NULL if absent. */
const amqp_field_value_t *tf_amqp_header(const amqp_basic_properties_t *props, const char *name);

#endif
