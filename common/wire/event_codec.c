/*
 * event_codec.c - msgpack encoding (msgpack-c's packer) and a bounds-checked decoder.
 *
 * Decoding does not go through msgpack-c's object unpacker because that allocates
 * according to declared array/map sizes before checking them against the input; here
 * every length is compared with the bytes that remain before anything is read or
 * allocated, so a 10-byte message cannot make us allocate gigabytes.
 */
#include "wire/event_codec.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"created", "updated", "deleted"};

const char *tf_event_type_name(tf_event_type t)
{
    return (unsigned)t < 3 ? type_names[t] : "unknown";
}

int tf_event_type_parse(const char *s, size_t len, tf_event_type *out)
{
    for (int i = 0; i < 3; i++) {
        if (strlen(type_names[i]) == len && memcmp(s, type_names[i], len) == 0) {
            *out = (tf_event_type)i;
            return 0;
        }
    }
    return -1;
}

/* ---- encoding ---------------------------------------------------------------------- */

static int pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, len);
}

static int pack_key(msgpack_packer *pk, const char *key)
{
    return pack_str(pk, key, strlen(key));
}

int tf_event_encode(const tf_event *ev, char **buf, size_t *len, tf_err *err)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const char *type = tf_event_type_name(ev->type);
    int rc = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    rc |= msgpack_pack_map(&pk, ev->replay_of ? 9 : 8);
    rc |= pack_key(&pk, "id") | msgpack_pack_int64(&pk, ev->id);
    rc |= pack_key(&pk, "type") | pack_str(&pk, type, strlen(type));
    rc |= pack_key(&pk, "aggregate") | pack_str(&pk, ev->aggregate.ptr, ev->aggregate.len);
    rc |= pack_key(&pk, "aggregate_id") |
          pack_str(&pk, ev->aggregate_id.ptr, ev->aggregate_id.len);
    rc |= pack_key(&pk, "version") | msgpack_pack_int64(&pk, ev->version);
    rc |= pack_key(&pk, "occurred_at") | msgpack_pack_int64(&pk, ev->occurred_at);
    rc |= pack_key(&pk, "source") | pack_str(&pk, ev->source.ptr, ev->source.len);
    if (ev->replay_of)
        rc |= pack_key(&pk, "replay_of") | msgpack_pack_int64(&pk, ev->replay_of);
    rc |= pack_key(&pk, "payload") | msgpack_pack_map(&pk, ev->n_fields);
    for (size_t i = 0; i < ev->n_fields; i++) {
        rc |= pack_str(&pk, ev->fields[i].name.ptr, ev->fields[i].name.len);
        rc |= pack_str(&pk, ev->fields[i].value.ptr, ev->fields[i].value.len);
    }
    if (rc != 0) {
        msgpack_sbuffer_destroy(&sb);
        return tf_err_set(err, "out of memory encoding event %lld", (long long)ev->id);
    }
    *len = sb.size;
    *buf = msgpack_sbuffer_release(&sb);
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p, *end;
} reader;

static size_t remaining(const reader *r)
{
    return (size_t)(r->end - r->p);
}

static int read_be(reader *r, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (remaining(r) < n)
        return -1;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | r->p[i];
    r->p += n;
    *out = v;
    return 0;
}

/* Reads a str (fixstr/str8/16/32); the body must be present in full. */
static int read_str(reader *r, tf_str *out)
{
    uint64_t len;
    uint8_t tag;

    if (remaining(r) < 1)
        return -1;
    tag = *r->p++;
    if ((tag & 0xe0) == 0xa0)
        len = tag & 0x1f;
    else if (tag == 0xd9 ? read_be(r, 1, &len) : tag == 0xda ? read_be(r, 2, &len)
             : tag == 0xdb ? read_be(r, 4, &len) : -1)
        return -1;
    if (len > remaining(r))
        return -1;
    out->ptr = (const char *)r->p;
    out->len = (size_t)len;
    r->p += len;
    return 0;
}

static int read_int(reader *r, int64_t *out)
{
    uint64_t v;
    uint8_t tag;

    if (remaining(r) < 1)
        return -1;
    tag = *r->p++;
    if (tag <= 0x7f) {
        *out = tag;
        return 0;
    }
    if (tag >= 0xe0) {
        *out = (int8_t)tag;
        return 0;
    }
    switch (tag) {
    case 0xcc: if (read_be(r, 1, &v)) return -1; *out = (int64_t)v; return 0;
    case 0xcd: if (read_be(r, 2, &v)) return -1; *out = (int64_t)v; return 0;
    case 0xce: if (read_be(r, 4, &v)) return -1; *out = (int64_t)v; return 0;
    case 0xcf:
        if (read_be(r, 8, &v) || v > INT64_MAX)
            return -1;
        *out = (int64_t)v;
        return 0;
    case 0xd0: if (read_be(r, 1, &v)) return -1; *out = (int8_t)v; return 0;
    case 0xd1: if (read_be(r, 2, &v)) return -1; *out = (int16_t)v; return 0;
    case 0xd2: if (read_be(r, 4, &v)) return -1; *out = (int32_t)v; return 0;
    case 0xd3: if (read_be(r, 8, &v)) return -1; *out = (int64_t)v; return 0;
    }
    return -1;
}

/* Reads a map header; -1 also when the declared count cannot fit in what remains
 * (every entry needs at least two bytes). */
static int read_map(reader *r, size_t *count)
{
    uint64_t n;
    uint8_t tag;

    if (remaining(r) < 1)
        return -1;
    tag = *r->p++;
    if ((tag & 0xf0) == 0x80)
        n = tag & 0x0f;
    else if (tag == 0xde ? read_be(r, 2, &n) : tag == 0xdf ? read_be(r, 4, &n) : -1)
        return -1;
    if (n > remaining(r) / 2)
        return -1;
    *count = (size_t)n;
    return 0;
}

/* Skips one value of any type, with a depth limit against nesting bombs. */
static int skip_value(reader *r, int depth)
{
    uint64_t n = 0, elems = 0;
    uint8_t tag;

    if (depth > 16 || remaining(r) < 1)
        return -1;
    tag = *r->p;
    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc0 || tag == 0xc2 || tag == 0xc3) {
        r->p++;
        return 0;
    }
    if ((tag & 0xe0) == 0xa0 || tag == 0xd9 || tag == 0xda || tag == 0xdb) {
        tf_str s;
        return read_str(r, &s);
    }
    r->p++;
    switch (tag) {
    case 0xcc: case 0xd0: n = 1; break;
    case 0xcd: case 0xd1: n = 2; break;
    case 0xce: case 0xd2: case 0xca: n = 4; break;
    case 0xcf: case 0xd3: case 0xcb: n = 8; break;
    case 0xc4: if (read_be(r, 1, &n)) return -1; break;
    case 0xc5: if (read_be(r, 2, &n)) return -1; break;
    case 0xc6: if (read_be(r, 4, &n)) return -1; break;
    case 0xd4: n = 2; break;
    case 0xd5: n = 3; break;
    case 0xd6: n = 5; break;
    case 0xd7: n = 9; break;
    case 0xd8: n = 17; break;
    case 0xc7: if (read_be(r, 1, &n)) return -1; n += 1; break;
    case 0xc8: if (read_be(r, 2, &n)) return -1; n += 1; break;
    case 0xc9: if (read_be(r, 4, &n)) return -1; n += 1; break;
    case 0xdc: if (read_be(r, 2, &elems)) return -1; goto array;
    case 0xdd: if (read_be(r, 4, &elems)) return -1; goto array;
    case 0xde: if (read_be(r, 2, &elems)) return -1; elems *= 2; goto array;
    case 0xdf: if (read_be(r, 4, &elems)) return -1; elems *= 2; goto array;
    default:
        if ((tag & 0xf0) == 0x90) {
            elems = tag & 0x0f;
            goto array;
        }
        if ((tag & 0xf0) == 0x80) {
            elems = (uint64_t)(tag & 0x0f) * 2;
            goto array;
        }
        return -1; /* 0xc1 is never used */
    }
    if (n > remaining(r))
        return -1;
    r->p += n;
    return 0;
array:
    if (elems > remaining(r))
        return -1;
    for (uint64_t i = 0; i < elems; i++)
        if (skip_value(r, depth + 1) < 0)
            return -1;
    return 0;
}

static int key_is(const tf_str *k, const char *name)
{
    return k->len == strlen(name) && memcmp(k->ptr, name, k->len) == 0;
}

static int decode_payload(reader *r, tf_event *ev, tf_err *err)
{
    size_t n;

    if (read_map(r, &n) < 0)
        return tf_err_set(err, "payload is not a map or is truncated"), TF_CODEC_MALFORMED;
    if (n > TF_EVENT_MAX_FIELDS)
        return tf_err_set(err, "payload has %zu fields, more than %d", n, TF_EVENT_MAX_FIELDS),
               TF_CODEC_BAD_FIELD;
    free(ev->fields);
    ev->fields = n ? calloc(n, sizeof(*ev->fields)) : NULL;
    if (n && !ev->fields)
        return tf_err_set(err, "out of memory"), TF_CODEC_NOMEM;
    ev->n_fields = n;
    for (size_t i = 0; i < n; i++) {
        if (read_str(r, &ev->fields[i].name) < 0)
            return tf_err_set(err, "payload key %zu is not a string or is truncated", i),
                   TF_CODEC_MALFORMED;
        if (read_str(r, &ev->fields[i].value) < 0)
            return tf_err_set(err, "payload value '%.*s' is not a string or is truncated",
                              (int)(ev->fields[i].name.len > 64 ? 64 : ev->fields[i].name.len),
                              ev->fields[i].name.ptr),
                   TF_CODEC_BAD_FIELD;
    }
    return TF_CODEC_OK;
}

enum { HAS_ID = 1, HAS_TYPE = 2, HAS_AGG = 4, HAS_AGG_ID = 8, HAS_VERSION = 16,
       HAS_OCCURRED = 32, HAS_PAYLOAD = 64, HAS_SOURCE = 128, HAS_REPLAY = 256 };

static int decode_entry(reader *r, const tf_str *key, tf_event *ev, unsigned *seen, tf_err *err)
{
    tf_str s;

#define INT_FIELD(name, flag, dst)                                                           \
    if (key_is(key, name)) {                                                                 \
        if (read_int(r, dst) < 0)                                                            \
            return tf_err_set(err, "field '" name "' is not an integer"), TF_CODEC_BAD_FIELD; \
        *seen |= flag;                                                                       \
        return TF_CODEC_OK;                                                                  \
    }
#define STR_FIELD(name, flag, dst)                                                           \
    if (key_is(key, name)) {                                                                 \
        if (read_str(r, dst) < 0)                                                            \
            return tf_err_set(err, "field '" name "' is not a string"), TF_CODEC_BAD_FIELD;  \
        *seen |= flag;                                                                       \
        return TF_CODEC_OK;                                                                  \
    }
    INT_FIELD("id", HAS_ID, &ev->id)
    INT_FIELD("version", HAS_VERSION, &ev->version)
    INT_FIELD("occurred_at", HAS_OCCURRED, &ev->occurred_at)
    INT_FIELD("replay_of", HAS_REPLAY, &ev->replay_of)
    STR_FIELD("aggregate", HAS_AGG, &ev->aggregate)
    STR_FIELD("aggregate_id", HAS_AGG_ID, &ev->aggregate_id)
    STR_FIELD("source", HAS_SOURCE, &ev->source)
#undef INT_FIELD
#undef STR_FIELD
    if (key_is(key, "type")) {
        if (read_str(r, &s) < 0 || tf_event_type_parse(s.ptr, s.len, &ev->type) < 0)
            return tf_err_set(err, "field 'type' is not created, updated or deleted"),
                   TF_CODEC_BAD_FIELD;
        *seen |= HAS_TYPE;
        return TF_CODEC_OK;
    }
    if (key_is(key, "payload")) {
        *seen |= HAS_PAYLOAD;
        return decode_payload(r, ev, err);
    }
    if (skip_value(r, 0) < 0)
        return tf_err_set(err, "value of unknown key is truncated or malformed"),
               TF_CODEC_MALFORMED;
    return TF_CODEC_OK;
}

static const char *first_missing(unsigned seen)
{
    static const struct { unsigned flag; const char *name; } req[] = {
        {HAS_ID, "id"}, {HAS_TYPE, "type"}, {HAS_AGG, "aggregate"},
        {HAS_AGG_ID, "aggregate_id"}, {HAS_VERSION, "version"}, {HAS_PAYLOAD, "payload"},
    };
    for (size_t i = 0; i < sizeof(req) / sizeof(req[0]); i++)
        if (!(seen & req[i].flag))
            return req[i].name;
    return NULL;
}

int tf_event_decode(const void *data, size_t len, size_t limit, tf_event *ev, tf_err *err)
{
    reader r = {data, (const uint8_t *)data + len};
    unsigned seen = 0;
    const char *missing;
    size_t n;
    int rc;

    memset(ev, 0, sizeof(*ev));
    if (len > limit)
        return tf_err_set(err, "message of %zu bytes is over the limit of %zu", len, limit),
               TF_CODEC_TOO_LARGE;
    if (read_map(&r, &n) < 0) {
        rc = TF_CODEC_MALFORMED;
        tf_err_set(err, "body is not a msgpack map or is truncated");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        tf_str key;
        if (read_str(&r, &key) < 0) {
            rc = TF_CODEC_MALFORMED;
            tf_err_set(err, "key %zu is not a string or is truncated", i);
            goto fail;
        }
        rc = decode_entry(&r, &key, ev, &seen, err);
        if (rc != TF_CODEC_OK)
            goto fail;
    }
    if (r.p != r.end) {
        rc = TF_CODEC_MALFORMED;
        tf_err_set(err, "%zu trailing bytes after the body", remaining(&r));
        goto fail;
    }
    missing = first_missing(seen);
    if (missing) {
        rc = TF_CODEC_MISSING;
        tf_err_set(err, "required field '%s' is missing", missing);
        goto fail;
    }
    if (ev->version < 1 || ev->id < 1 || ev->replay_of < 0) {
        rc = TF_CODEC_BAD_FIELD;
        tf_err_set(err, "id and version must be positive, replay_of not negative");
        goto fail;
    }
    return TF_CODEC_OK;
fail:
    tf_event_clear(ev);
    return rc;
}

void tf_event_clear(tf_event *ev)
{
    free(ev->fields);
    memset(ev, 0, sizeof(*ev));
}

const tf_str *tf_event_field_get(const tf_event *ev, const char *name)
{
    for (size_t i = 0; i < ev->n_fields; i++)
        if (key_is(&ev->fields[i].name, name))
            return &ev->fields[i].value;
    return NULL;
}
