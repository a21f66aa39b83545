/*
 * publisher.c - message properties and the confirm window. The window holds the outcome of
 * every outstanding delivery tag, oldest first, so that an ack with "multiple" that covers
 * two batches settles both; it is bounded by the in-flight batches.
 */
#include "publisher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_IN_FLIGHT 8

struct publisher {
    uint64_t first_tag;   /* delivery tag of window entry 0 */
    size_t n;             /* outstanding entries */
    size_t cap;
    uint8_t *state;       /* TF_CONFIRM_* per entry */
    int64_t *ids;         /* outbox id per entry, to map returned messages back */
    size_t batch_sizes[MAX_IN_FLIGHT];
    size_t n_batches;
    int64_t *acked;       /* result of the last settle */
    size_t last_nacked;   /* nacks in the last settled batch */
};

publisher *publisher_new(void)
{
    return calloc(1, sizeof(publisher));
}

void publisher_free(publisher *p)
{
    if (!p)
        return;
    free(p->state);
    free(p->ids);
    free(p->acked);
    free(p);
}

void publisher_reset(publisher *p)
{
    p->n = 0;
    p->n_batches = 0;
}

size_t publisher_last_nacked(const publisher *p)
{
    return p->last_nacked;
}

size_t publisher_in_flight(const publisher *p)
{
    return p->n_batches;
}

static int reserve(publisher *p, size_t n, tf_err *err)
{
    size_t cap = p->cap ? p->cap : 1024;
    uint8_t *s;
    int64_t *i, *a;

    if (n <= p->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    s = realloc(p->state, cap);
    if (s)
        p->state = s;
    i = realloc(p->ids, cap * sizeof(*i));
    if (i)
        p->ids = i;
    a = realloc(p->acked, cap * sizeof(*a));
    if (a)
        p->acked = a;
    if (!s || !i || !a)
        return tf_err_set(err, "out of memory for a confirm window of %zu", cap);
    p->cap = cap;
    return 0;
}

void publisher_mark_returned(const int64_t *ids, uint8_t *state, size_t n,
                             const char *message_id, size_t len)
{
    char buf[32];
    long long id;

    if (len == 0 || len >= sizeof(buf))
        return;
    memcpy(buf, message_id, len);
    buf[len] = '\0';
    id = strtoll(buf, NULL, 10);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id && state[i] == TF_CONFIRM_PENDING) {
            state[i] = TF_CONFIRM_RETURNED;
            return;
        }
    }
}

static void on_return(void *ctx, const char *message_id, size_t len)
{
    publisher *p = ctx;
    publisher_mark_returned(p->ids, p->state, p->n, message_id, len);
}

int publisher_send(tf_broker *b, const tf_event *ev, size_t max_message, uint64_t *tag,
                   size_t *len_out, tf_err *err)
{
    char id[24], rkey[256], *body = NULL;
    const char *type = tf_event_type_name(ev->type);
    amqp_table_entry_t header;
    amqp_basic_properties_t props;
    size_t len;
    int rc;

    if (tf_event_encode(ev, &body, &len, err) < 0)
        return -1;
    *len_out = len;
    if (len > max_message) {
        free(body);
        return 0;
    }
    snprintf(id, sizeof(id), "%lld", (long long)ev->id);
    snprintf(rkey, sizeof(rkey), "%.*s.%s",
             (int)(ev->aggregate.len > 200 ? 200 : ev->aggregate.len), ev->aggregate.ptr, type);
    header.key = amqp_cstring_bytes(TF_HEADER_SCHEMA);
    header.value.kind = AMQP_FIELD_KIND_I32;
    header.value.value.i32 = TF_EVENT_SCHEMA;
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG | AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes(TF_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(id);
    props.type = amqp_cstring_bytes(type);
    props.timestamp = (uint64_t)(ev->occurred_at / 1000000);
    props.headers.num_entries = 1;
    props.headers.entries = &header;
    rc = tf_broker_publish(b, TF_EXCHANGE_EVENTS, rkey, &props, body, len, tag, err);
    free(body);
    return rc < 0 ? -1 : 1;
}

int publisher_send_row(tf_broker *b, outbox_batch *batch, size_t i, size_t max_message,
                       uint64_t *tag, tf_err *err)
{
    size_t len = 0;
    int rc = publisher_send(b, &batch->events[i], max_message, tag, &len, err);

    if (rc == 0 && outbox_reject(batch, i, "message of %zu bytes exceeds --max-message (%zu bytes)",
                                 len, max_message) < 0)
        return tf_err_set(err, "out of memory");
    return rc;
}

int publisher_submit(publisher *p, tf_broker *b, outbox_batch *batch, size_t max_message,
                     tf_err *err)
{
    size_t published = 0;

    if (p->n_batches == MAX_IN_FLIGHT)
        return tf_err_set(err, "more than %d batches in flight", MAX_IN_FLIGHT);
    if (reserve(p, p->n + batch->n, err) < 0)
        return -1;
    for (size_t i = 0; i < batch->n; i++) {
        uint64_t tag;
        int rc;
        if (batch->reject[i])
            continue;
        rc = publisher_send_row(b, batch, i, max_message, &tag, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        if (p->n == 0)
            p->first_tag = tag;
        p->state[p->n] = TF_CONFIRM_PENDING;
        p->ids[p->n] = batch->events[i].id;
        p->n++;
        published++;
    }
    p->batch_sizes[p->n_batches++] = published;
    return 0;
}

int publisher_settle_oldest(publisher *p, tf_broker *b, double timeout_s, const int64_t **acked,
                            size_t *n_acked, tf_err *err)
{
    size_t size;

    *acked = p->acked;
    *n_acked = 0;
    p->last_nacked = 0;
    if (p->n_batches == 0)
        return 0;
    size = p->batch_sizes[0];
    if (size > 0 && tf_broker_wait_confirms(b, p->first_tag, p->n, p->state, size, timeout_s,
                                            on_return, p, err) < 0)
        return -1;
    for (size_t i = 0; i < size; i++) {
        if (p->state[i] == TF_CONFIRM_ACK)
            p->acked[(*n_acked)++] = p->ids[i];
        else if (p->state[i] == TF_CONFIRM_NACK)
            p->last_nacked++;
    }
    /* Drop the settled batch from the front of the window. */
    memmove(p->state, p->state + size, p->n - size);
    memmove(p->ids, p->ids + size, (p->n - size) * sizeof(*p->ids));
    p->n -= size;
    p->first_tag += size;
    memmove(p->batch_sizes, p->batch_sizes + 1, (p->n_batches - 1) * sizeof(size_t));
    p->n_batches--;
    return 0;
}
