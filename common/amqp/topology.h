/*
 * topology.h - the one RabbitMQ topology every program agrees on: the exchanges
 * topicflow.events and topicflow.dlx, the quorum queue topicflow.nmf and its dead-letter
 * queue topicflow.dead, their arguments and bindings, and the option table that sets them.
 *
 * Who declares what: the exchanges and topicflow.dead have no tunable arguments and every
 * program declares them. topicflow.nmf's arguments are fixed when it is created, by
 * whichever program gets there first, from its settings, and only its creator binds it. A
 * program whose settings differ from an existing queue's gets a 406 for its declare, warns,
 * and uses the queue as it is. So a worker started with defaults beside a producer started
 * with --delivery-limit 3 runs, and nobody widens the creator's binding. Changing an
 * existing queue is an operator's act (a policy, or delete and recreate: OPERATIONS.md).
 */
#ifndef TF_TOPOLOGY_H
#define TF_TOPOLOGY_H

#include <stddef.h>

#include "amqp/broker.h"
#include "base/config.h"
#include "base/error.h"

#define TF_EXCHANGE_EVENTS "topicflow.events"
#define TF_EXCHANGE_DLX "topicflow.dlx"
#define TF_QUEUE_NMF "topicflow.nmf"
#define TF_QUEUE_DEAD "topicflow.dead"

typedef struct tf_topology {
    const char *binding; /* what topicflow.nmf receives from topicflow.events ("#") */
    long delivery_limit; /* x-delivery-limit of topicflow.nmf */
    long max_length;     /* x-max-length of topicflow.nmf, 0 = unbounded */
} tf_topology;

/* The settings' option-table rows, for any program config struct `type` with a tf_topology
 * member `member` (flags --binding, --delivery-limit, --queue-max-length and their
 * TOPICFLOW_* variables). Every program that declares includes them, so the defaults and
 * the parsing are written once. */
#define TF_OPTIONS_TOPOLOGY(type, member)                                                        \
    {"binding", "TOPICFLOW_BINDING", TF_OPT_STRING, "#",                                         \
     "binding key of " TF_QUEUE_NMF " on " TF_EXCHANGE_EVENTS " (when this program creates it)", \
     offsetof(type, member.binding), 0, 0},                                                      \
    {"delivery-limit", "TOPICFLOW_DELIVERY_LIMIT", TF_OPT_INT, "10",                            \
     "x-delivery-limit of " TF_QUEUE_NMF " (when this program creates it)",                     \
     offsetof(type, member.delivery_limit), 1, 1000000},                                         \
    {"queue-max-length", "TOPICFLOW_QUEUE_MAX_LENGTH", TF_OPT_INT, "0",                         \
     "x-max-length of " TF_QUEUE_NMF ", 0 unbounded (when this program creates it)",            \
     offsetof(type, member.max_length), 0, 1e12}

/* The defaults of the option rows, for programs and tests that take no topology flags. */
tf_topology tf_topology_defaults(void);

/* Declare the topology on b (idempotent; see the header comment for topicflow.nmf).
 * *created, when not NULL, is set to 1 when this call created topicflow.nmf. */
int tf_topology_declare(tf_broker *b, const tf_topology *t, int *created, tf_err *err);

#endif
