/*
 * topology.c - declares the one topology (see topology.h).
 *
 * Both queues are quorum queues (replicated when clustered). topicflow.nmf dead-letters
 * at-least-once, which RabbitMQ allows only together with overflow=reject-publish: a message
 * is removed from it only once the dead-letter queue has confirmed it.
 */
#include "amqp/topology.h"

#include "base/log.h"

static amqp_table_entry_t entry_str(const char *key, const char *value)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

static amqp_table_entry_t entry_int(const char *key, long value)
{
    amqp_table_entry_t e;

    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_I64;
    e.value.value.i64 = value;
    return e;
}

tf_topology tf_topology_defaults(void)
{
    return (tf_topology){"#", 10, 0};
}

/* 0 declared as t says (created or already so), TF_BROKER_INEQUIVALENT when it exists with
 * other arguments (err says which), -1 failure. */
static int declare_nmf(tf_broker *b, const tf_topology *t, tf_err *err)
{
    amqp_table_entry_t args[6];
    int n = 0;

    args[n++] = entry_str("x-queue-type", "quorum");
    args[n++] = entry_int("x-delivery-limit", t->delivery_limit);
    args[n++] = entry_str("x-dead-letter-exchange", TF_EXCHANGE_DLX);
    args[n++] = entry_str("x-dead-letter-strategy", "at-least-once");
    args[n++] = entry_str("x-overflow", "reject-publish");
    if (t->max_length > 0)
        args[n++] = entry_int("x-max-length", t->max_length);
    return tf_broker_declare_queue(b, TF_QUEUE_NMF, (amqp_table_t){n, args}, err);
}

int tf_topology_declare(tf_broker *b, const tf_topology *t, int *created, tf_err *err)
{
    amqp_table_entry_t dead[1] = {entry_str("x-queue-type", "quorum")};
    uint32_t messages, consumers;
    int exists = 0, rc;

    if (created)
        *created = 0;
    /* The probe first: a 404 replaces the channel, which must happen before the caller
     * puts it in confirm mode or under a qos. Then topicflow.nmf before topicflow.dead:
     * RabbitMQ 3.10 makes a quorum queue's registration durable lazily, and a node killed
     * within about a second of creating a queue brought the last-created one back without a
     * leader (measured in test_server_restarts); the queue that matters is created first. */
    if (tf_broker_queue_probe(b, TF_QUEUE_NMF, &exists, &messages, &consumers, err) < 0 ||
        tf_broker_declare_exchange(b, TF_EXCHANGE_EVENTS, "topic", err) < 0 ||
        tf_broker_declare_exchange(b, TF_EXCHANGE_DLX, "topic", err) < 0)
        return -1;
    rc = declare_nmf(b, t, err);
    if (rc == TF_BROKER_INEQUIVALENT && exists) {
        log_warn("queue exists with other arguments than this program's settings; used as declared",
                 "queue=" TF_QUEUE_NMF " delivery_limit=%ld max_length=%ld reason=%s",
                 t->delivery_limit, t->max_length, tf_log_q(err->msg));
        rc = 0;
    }
    if (rc < 0 || tf_broker_declare_queue(b, TF_QUEUE_DEAD, (amqp_table_t){1, dead}, err) < 0 ||
        tf_broker_bind(b, TF_QUEUE_DEAD, TF_EXCHANGE_DLX, "#", err) < 0)
        return -1;
    if (exists)
        return 0;
    /* Created by this call (or by a twin with the same settings just now): bind it. The
     * binding of a queue found existing is its creator's, never widened here. */
    if (tf_broker_bind(b, TF_QUEUE_NMF, TF_EXCHANGE_EVENTS, t->binding, err) < 0)
        return -1;
    if (created)
        *created = 1;
    log_info("queue created", "queue=" TF_QUEUE_NMF " binding=%s delivery_limit=%ld max_length=%ld",
             tf_log_q(t->binding), t->delivery_limit, t->max_length);
    return 0;
}
