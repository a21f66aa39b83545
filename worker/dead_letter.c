/*
 * dead_letter.c - the worker's explicit dead-lettering. The original headers are kept and
 * x-topicflow-error is added (or replaced), so `topicflow dlq requeue` can restore the
 * message exactly as it was.
 */
#include "dead_letter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HEADERS 64

struct dead_letter {
    uint64_t first_tag;
    size_t n, cap;
    uint8_t *state;
    size_t returned; /* unroutable dead letters seen during the current flush */
};

dead_letter *dead_letter_new(void)
{
    return calloc(1, sizeof(dead_letter));
}

void dead_letter_free(dead_letter *d)
{
    if (!d)
        return;
    free(d->state);
    free(d);
}

int dead_letter_add(dead_letter *d, tf_broker *b, const amqp_envelope_t *env, const char *reason,
                    tf_err *err)
{
    amqp_basic_properties_t props = env->message.properties;
    amqp_table_entry_t headers[MAX_HEADERS + 2];
    char rkey[256];
    uint64_t tag;
    int n = 0;

    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        uint8_t *s = realloc(d->state, cap);
        if (!s)
            return tf_err_set(err, "out of memory");
        d->state = s;
        d->cap = cap;
    }
    if (props._flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < props.headers.num_entries && n < MAX_HEADERS; i++) {
            const amqp_table_entry_t *e = &props.headers.entries[i];
            if ((e->key.len == strlen(TF_HEADER_ERROR) &&
                 memcmp(e->key.bytes, TF_HEADER_ERROR, e->key.len) == 0) ||
                (e->key.len == strlen(TF_HEADER_FAILED_AT) &&
                 memcmp(e->key.bytes, TF_HEADER_FAILED_AT, e->key.len) == 0))
                continue;
            headers[n++] = *e;
        }
    }
    headers[n].key = amqp_cstring_bytes(TF_HEADER_ERROR);
    headers[n].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[n].value.value.bytes = amqp_cstring_bytes(reason);
    n++;
    /* When it was dead-lettered (the broker's own dead letters carry x-death times). */
    headers[n].key = amqp_cstring_bytes(TF_HEADER_FAILED_AT);
    headers[n].value.kind = AMQP_FIELD_KIND_TIMESTAMP;
    headers[n].value.value.u64 = (uint64_t)time(NULL);
    n++;
    props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.headers.num_entries = n;
    props.headers.entries = headers;
    snprintf(rkey, sizeof(rkey), "%.*s", (int)(env->routing_key.len < 255 ? env->routing_key.len : 255),
             (const char *)env->routing_key.bytes);
    if (tf_broker_publish(b, TF_EXCHANGE_DLX, rkey, &props, env->message.body.bytes,
                          env->message.body.len, &tag, err) < 0)
        return -1;
    if (d->n == 0)
        d->first_tag = tag;
    d->state[d->n++] = TF_CONFIRM_PENDING;
    return 0;
}

/* A returned dead letter may carry no message_id to find it by: count it, and refuse the
 * whole flush (the originals stay unacked and come back). */
static void on_return(void *ctx, const char *message_id, size_t len)
{
    dead_letter *d = ctx;
    (void)message_id;
    (void)len;
    d->returned++;
}

int dead_letter_flush(dead_letter *d, tf_broker *b, double timeout_s, tf_err *err)
{
    size_t n = d->n;

    if (n == 0)
        return 0;
    d->n = 0;
    d->returned = 0;
    if (tf_broker_wait_confirms(b, d->first_tag, n, d->state, n, timeout_s, on_return, d,
                                err) < 0)
        return -1;
    if (d->returned)
        return tf_err_set(err, "%zu dead letters were unroutable: is topicflow.dead bound to "
                               "topicflow.dlx?", d->returned);
    for (size_t i = 0; i < n; i++)
        if (d->state[i] != TF_CONFIRM_ACK)
            return tf_err_set(err, "the broker nacked a dead letter");
    return 0;
}
