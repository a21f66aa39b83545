/*
 * event_codec.h - the message body every topicflow event travels in: a msgpack map
 *   {id, type, aggregate, aggregate_id, version, occurred_at, source, payload[, replay_of]}
 * where payload maps each tracked text column to its text (docs/ARCHITECTURE.md, "Messages").
 * occurred_at is microseconds since the Unix epoch (UTC); source is the tracked table;
 * replay_of, present only on replays, is the id of the event replayed.
 *
 * The decoder is zero-copy and defensive: it never trusts a declared length beyond the
 * bytes present, rejects input over the configured limit before looking at it, and its
 * only allocation (the payload field array) is bounded by the input size.
 */
#ifndef TF_EVENT_CODEC_H
#define TF_EVENT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/config.h"
#include "base/error.h"

#define TF_EVENT_SCHEMA 1             /* value of the x-topicflow-schema header */
#define TF_EVENT_MAX_FIELDS 64        /* payload columns per event */
#define TF_EVENT_DEFAULT_LIMIT (1L << 20)

/* A byte string that is not NUL-terminated (it points into a message buffer). */
typedef struct tf_str {
    const char *ptr;
    size_t len;
} tf_str;

typedef struct tf_event_field {
    tf_str name;
    tf_str value;
} tf_event_field;

typedef enum { TF_EVENT_CREATED, TF_EVENT_UPDATED, TF_EVENT_DELETED } tf_event_type;

typedef struct tf_event {
    int64_t id;            /* outbox id */
    tf_event_type type;
    tf_str aggregate;      /* aggregate type, e.g. "internship" */
    tf_str aggregate_id;
    int64_t version;       /* monotonic per aggregate */
    int64_t occurred_at;   /* µs since the epoch */
    tf_str source;         /* tracked table, e.g. "public.internships" */
    int64_t replay_of;     /* 0, or the outbox id this event replays */
    size_t n_fields;
    tf_event_field *fields; /* decoder: owned by the event, see tf_event_clear */
} tf_event;

typedef enum {
    TF_CODEC_OK = 0,
    TF_CODEC_TOO_LARGE = -1,  /* input over the limit */
    TF_CODEC_MALFORMED = -2,  /* not msgpack, truncated, or a length beyond the input */
    TF_CODEC_BAD_FIELD = -3,  /* a known key with the wrong type or value */
    TF_CODEC_MISSING = -4,    /* a required key is absent */
    TF_CODEC_NOMEM = -5
} tf_codec_status;

const char *tf_event_type_name(tf_event_type t);
int tf_event_type_parse(const char *s, size_t len, tf_event_type *out);

/* Encode ev into *buf (malloc'd, caller frees) of *len bytes. 0 or negative with reason. */
int tf_event_encode(const tf_event *ev, char **buf, size_t *len, tf_err *err);

/* Decode data[0..len) into ev. The strings in ev point into data, which must outlive ev.
 * Unknown keys are skipped (forward compatibility). Returns a tf_codec_status; on error
 * err says which field and why, and ev holds nothing to free. */
int tf_event_decode(const void *data, size_t len, size_t limit, tf_event *ev, tf_err *err);

/* Release what tf_event_decode allocated (the field array). Safe on a zeroed event. */
void tf_event_clear(tf_event *ev);

/* Find a payload field by name; NULL when absent. */
const tf_str *tf_event_field_get(const tf_event *ev, const char *name);

/* The message size limit both ends share (flag --max-message, TOPICFLOW_MAX_MESSAGE): the
 * producer sets aside what would exceed it, the worker dead-letters it and never decodes
 * more. One row for any program's option table; `what` says what happens to a larger one. */
#define TF_OPTIONS_MAX_MESSAGE(type, member, what)                                               \
    {"max-message", "TOPICFLOW_MAX_MESSAGE", TF_OPT_SIZE, "1MiB", "largest message: " what,    \
     offsetof(type, member), 64, 1L << 30}

#endif
