/*
 * fuzz_event_codec.c - the message decoder (wire/event_codec.h) on arbitrary AMQP bodies:
 * tf_event_decode under a limit taken from the input; for a body it accepts, every field
 * can be looked up by name and the round trip encode -> decode gives the same event back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/event_codec.h"

static int str_same(tf_str a, tf_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void check_same(const tf_event *a, const tf_event *b)
{
    if (a->id != b->id || a->type != b->type || a->version != b->version ||
        a->occurred_at != b->occurred_at || a->replay_of != b->replay_of ||
        !str_same(a->aggregate, b->aggregate) || !str_same(a->aggregate_id, b->aggregate_id) ||
        !str_same(a->source, b->source) || a->n_fields != b->n_fields)
        abort();
    for (size_t i = 0; i < a->n_fields; i++)
        if (!str_same(a->fields[i].name, b->fields[i].name) ||
            !str_same(a->fields[i].value, b->fields[i].value))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_event ev, again;
    tf_err err;
    char *buf = NULL;
    size_t len;
    /* Mostly the default limit; an input ending in 0xFF is also tried right at its size. */
    size_t limit = size && data[size - 1] == 0xFF ? size : TF_EVENT_DEFAULT_LIMIT;

    if (tf_event_decode(data, size, limit, &ev, &err) != TF_CODEC_OK)
        return 0;
    for (size_t i = 0; i < ev.n_fields; i++) {
        char name[64];
        const tf_str *found;
        if (ev.fields[i].name.len >= sizeof(name) || memchr(ev.fields[i].name.ptr, 0, ev.fields[i].name.len))
            continue;
        memcpy(name, ev.fields[i].name.ptr, ev.fields[i].name.len);
        name[ev.fields[i].name.len] = '\0';
        found = tf_event_field_get(&ev, name);
        if (!found)
            abort(); /* a field the decoder returned cannot be looked up */
    }
    if (tf_event_encode(&ev, &buf, &len, &err) == 0) {
        if (tf_event_decode(buf, len, len, &again, &err) != TF_CODEC_OK)
            abort();
        check_same(&ev, &again);
        tf_event_clear(&again);
        free(buf);
    }
    tf_event_clear(&ev);
    return 0;
}
