/*
 * json.c - a strict reader for one JSON object and a string escaper. The reader decodes into
 * one scratch buffer and records offsets while parsing (the buffer may move as it grows);
 * pointers are handed out only once the whole object parsed.
 */
#include "wire/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/grow.h"
#include "base/utf8.h"

#define MAX_DEPTH 64 /* nesting accepted inside a raw value */
#define NO_OFFSET SIZE_MAX

typedef struct slot {
    tf_json_kind kind;
    int boolean;
    size_t off, len;                /* into buf */
    size_t first_item, n_items;     /* into item_off/item_len */
} slot;

typedef struct pending_member {
    size_t key_off, key_len;
    slot value;
} pending_member;

struct tf_json_object {
    char *buf;
    size_t buf_len, buf_cap;
    pending_member *pending;
    tf_json_member *members;
    size_t n_members, members_cap;
    size_t *item_off, *item_len;
    const char **item_ptr;
    size_t n_items, items_cap;
};

typedef struct parser {
    const char *s;
    size_t len, pos;
    tf_json_object *o;
    tf_err *err;
} parser;

tf_json_object *tf_json_object_new(void)
{
    return calloc(1, sizeof(tf_json_object));
}

void tf_json_object_free(tf_json_object *o)
{
    if (!o)
        return;
    free(o->buf);
    free(o->pending);
    free(o->members);
    free(o->item_off);
    free(o->item_len);
    free(o->item_ptr);
    free(o);
}

static int fail(parser *p, const char *what)
{
    return tf_err_set(p->err, "at byte %zu: %s", p->pos + 1, what);
}

static int emit(parser *p, const char *bytes, size_t n)
{
    tf_json_object *o = p->o;

    if (tf_grow((void **)&o->buf, &o->buf_cap, o->buf_len + n + 1, 1) < 0)
        return tf_err_set(p->err, "out of memory");
    memcpy(o->buf + o->buf_len, bytes, n);
    o->buf_len += n;
    return 0;
}

/* Ends the current buffer entry with a NUL that is not part of its length. */
static int terminate(parser *p)
{
    if (emit(p, "", 1) < 0)
        return -1;
    return 0;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int hex4(parser *p, uint32_t *out)
{
    uint32_t v = 0;

    if (p->len - p->pos < 4)
        return fail(p, "truncated \\u escape");
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "invalid \\u escape");
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static int unicode_escape(parser *p)
{
    uint32_t cp, lo;
    char enc[4];

    if (hex4(p, &cp) < 0)
        return -1;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, "unpaired surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
            return fail(p, "unpaired surrogate in \\u escape");
        p->pos += 2;
        if (hex4(p, &lo) < 0)
            return -1;
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, "unpaired surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return emit(p, enc, tf_utf8_encode(cp, enc));
}

/* A string at p->pos (the opening quote), decoded into buf at *off, *len bytes. */
static int parse_string(parser *p, size_t *off, size_t *len)
{
    size_t run;

    p->pos++;
    *off = p->o->buf_len;
    for (;;) {
        for (run = p->pos; p->pos < p->len; p->pos++) {
            unsigned char c = (unsigned char)p->s[p->pos];
            if (c == '"' || c == '\\' || c < 0x20)
                break;
        }
        if (emit(p, p->s + run, p->pos - run) < 0)
            return -1;
        if (p->pos >= p->len)
            return fail(p, "unterminated string");
        if (p->s[p->pos] == '"')
            break;
        if ((unsigned char)p->s[p->pos] < 0x20)
            return fail(p, "control character in string");
        p->pos++;
        if (p->pos >= p->len)
            return fail(p, "unterminated string");
        {
            char c = p->s[p->pos++], out;
            switch (c) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u':
                if (unicode_escape(p) < 0)
                    return -1;
                continue;
            default:
                p->pos--;
                return fail(p, "invalid escape in string");
            }
            if (emit(p, &out, 1) < 0)
                return -1;
        }
    }
    p->pos++;
    *len = p->o->buf_len - *off;
    return terminate(p);
}

static int is_digit(parser *p)
{
    return p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

/* Validates a number without copying it; *start gets where it began. */
static int scan_number(parser *p, size_t *start)
{
    *start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '-')
        p->pos++;
    else if (!is_digit(p))
        return fail(p, "invalid value");
    if (!is_digit(p))
        return fail(p, "invalid number");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (is_digit(p))
            p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (!is_digit(p))
            return fail(p, "invalid number");
        while (is_digit(p))
            p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (!is_digit(p))
            return fail(p, "invalid number");
        while (is_digit(p))
            p->pos++;
    }
    return 0;
}

static int literal(parser *p, const char *word)
{
    size_t n = strlen(word);

    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid value");
    p->pos += n;
    return 0;
}

/* Validates any value at p->pos without decoding it (the body of a raw value). */
static int skip_value(parser *p, int depth)
{
    size_t off, len, start;
    char close;

    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "value expected");
    switch (p->s[p->pos]) {
    case '"': {
        size_t mark = p->o->buf_len;
        int rc = parse_string(p, &off, &len);
        p->o->buf_len = mark;
        return rc;
    }
    case 't': return literal(p, "true");
    case 'f': return literal(p, "false");
    case 'n': return literal(p, "null");
    case '{':
    case '[':
        break;
    default:
        return scan_number(p, &start);
    }
    if (depth >= MAX_DEPTH)
        return fail(p, "nested too deeply");
    close = p->s[p->pos] == '{' ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return fail(p, "key expected");
            if (skip_value(p, depth + 1) < 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return fail(p, "':' expected");
            p->pos++;
        }
        if (skip_value(p, depth + 1) < 0)
            return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            return 0;
        }
        return fail(p, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int add_item(parser *p, size_t off, size_t len)
{
    tf_json_object *o = p->o;
    size_t cap = o->items_cap;

    if (tf_grow((void **)&o->item_off, &cap, o->n_items + 1, sizeof(size_t)) < 0)
        return tf_err_set(p->err, "out of memory");
    cap = o->items_cap;
    if (tf_grow((void **)&o->item_len, &cap, o->n_items + 1, sizeof(size_t)) < 0)
        return tf_err_set(p->err, "out of memory");
    cap = o->items_cap;
    if (tf_grow((void **)&o->item_ptr, &cap, o->n_items + 1, sizeof(char *)) < 0)
        return tf_err_set(p->err, "out of memory");
    o->items_cap = cap;
    o->item_off[o->n_items] = off;
    o->item_len[o->n_items] = len;
    o->n_items++;
    return 0;
}

static int raw_value(parser *p, size_t start, slot *v)
{
    p->pos = start;
    if (skip_value(p, 0) < 0)
        return -1;
    v->kind = TF_JSON_RAW;
    v->off = p->o->buf_len;
    v->len = p->pos - start;
    if (emit(p, p->s + start, v->len) < 0)
        return -1;
    return terminate(p);
}

/* An array of strings and nulls becomes TF_JSON_ARRAY; anything else falls back to RAW. */
static int parse_array(parser *p, slot *v)
{
    size_t start = p->pos, buf_mark = p->o->buf_len, items_mark = p->o->n_items, off, len;

    v->kind = TF_JSON_ARRAY;
    v->first_item = p->o->n_items;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        v->n_items = 0;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '"') {
            if (parse_string(p, &off, &len) < 0 || add_item(p, off, len) < 0)
                return -1;
        } else if (p->pos < p->len && p->s[p->pos] == 'n') {
            if (literal(p, "null") < 0 || add_item(p, NO_OFFSET, 0) < 0)
                return -1;
        } else {
            p->o->buf_len = buf_mark;
            p->o->n_items = items_mark;
            return raw_value(p, start, v);
        }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            v->n_items = p->o->n_items - v->first_item;
            return 0;
        }
        return fail(p, "',' or ']' expected");
    }
}

static int parse_value(parser *p, slot *v)
{
    size_t start;

    memset(v, 0, sizeof(*v));
    skip_ws(p);
    if (p->pos >= p->len)
        return fail(p, "value expected");
    switch (p->s[p->pos]) {
    case '"':
        v->kind = TF_JSON_STRING;
        return parse_string(p, &v->off, &v->len);
    case 't':
        v->kind = TF_JSON_BOOL;
        v->boolean = 1;
        return literal(p, "true");
    case 'f':
        v->kind = TF_JSON_BOOL;
        return literal(p, "false");
    case 'n':
        v->kind = TF_JSON_NULL;
        return literal(p, "null");
    case '[':
        return parse_array(p, v);
    case '{':
        return raw_value(p, p->pos, v);
    default:
        if (scan_number(p, &start) < 0)
            return -1;
        v->kind = TF_JSON_NUMBER;
        v->off = p->o->buf_len;
        v->len = p->pos - start;
        if (emit(p, p->s + start, v->len) < 0)
            return -1;
        return terminate(p);
    }
}

static int add_member(parser *p, size_t key_off, size_t key_len, const slot *v)
{
    tf_json_object *o = p->o;
    size_t cap = o->members_cap;

    for (size_t i = 0; i < o->n_members; i++)
        if (o->pending[i].key_len == key_len &&
            memcmp(o->buf + o->pending[i].key_off, o->buf + key_off, key_len) == 0)
            return fail(p, "repeated key");
    if (tf_grow((void **)&o->pending, &cap, o->n_members + 1, sizeof(pending_member)) < 0)
        return tf_err_set(p->err, "out of memory");
    cap = o->members_cap;
    if (tf_grow((void **)&o->members, &cap, o->n_members + 1, sizeof(tf_json_member)) < 0)
        return tf_err_set(p->err, "out of memory");
    o->members_cap = cap;
    o->pending[o->n_members].key_off = key_off;
    o->pending[o->n_members].key_len = key_len;
    o->pending[o->n_members].value = *v;
    o->n_members++;
    return 0;
}

/* Turns the recorded offsets into pointers now that buf no longer moves. */
static void resolve(tf_json_object *o)
{
    for (size_t i = 0; i < o->n_items; i++)
        o->item_ptr[i] = o->item_off[i] == NO_OFFSET ? NULL : o->buf + o->item_off[i];
    for (size_t i = 0; i < o->n_members; i++) {
        const pending_member *pm = &o->pending[i];
        tf_json_member *m = &o->members[i];
        memset(m, 0, sizeof(*m));
        m->key = o->buf + pm->key_off;
        m->key_len = pm->key_len;
        m->value.kind = pm->value.kind;
        m->value.boolean = pm->value.boolean;
        if (pm->value.kind == TF_JSON_NUMBER || pm->value.kind == TF_JSON_STRING ||
            pm->value.kind == TF_JSON_RAW) {
            m->value.text = o->buf + pm->value.off;
            m->value.len = pm->value.len;
        } else if (pm->value.kind == TF_JSON_ARRAY) {
            /* An empty array can come before any item was ever stored, while item_ptr is
             * still NULL: it gets empty arrays of its own, never NULL (NULL + 0 is undefined
             * and NULL is no array for memcpy). */
            static const char *const no_items[1];
            static const size_t no_lens[1];
            int empty = pm->value.n_items == 0;
            m->value.n_items = pm->value.n_items;
            m->value.items = empty ? no_items : o->item_ptr + pm->value.first_item;
            m->value.item_lens = empty ? no_lens : o->item_len + pm->value.first_item;
        }
    }
}

int tf_json_parse_object(tf_json_object *o, const char *text, size_t len, tf_err *err)
{
    parser p = {text, len, 0, o, err};
    size_t bad = tf_utf8_check(text, len), key_off, key_len;
    slot v;

    o->buf_len = 0;
    o->n_members = 0;
    o->n_items = 0;
    if (bad < len) {
        p.pos = bad;
        return fail(&p, "invalid UTF-8");
    }
    skip_ws(&p);
    if (p.pos >= len || text[p.pos] != '{')
        return fail(&p, "'{' expected");
    p.pos++;
    skip_ws(&p);
    if (p.pos < len && text[p.pos] == '}') {
        p.pos++;
        goto done;
    }
    for (;;) {
        skip_ws(&p);
        if (p.pos >= len || text[p.pos] != '"')
            return fail(&p, "key expected");
        if (parse_string(&p, &key_off, &key_len) < 0)
            return -1;
        skip_ws(&p);
        if (p.pos >= len || text[p.pos] != ':')
            return fail(&p, "':' expected");
        p.pos++;
        if (parse_value(&p, &v) < 0 || add_member(&p, key_off, key_len, &v) < 0)
            return -1;
        skip_ws(&p);
        if (p.pos < len && text[p.pos] == ',') {
            p.pos++;
            continue;
        }
        if (p.pos < len && text[p.pos] == '}') {
            p.pos++;
            break;
        }
        return fail(&p, "',' or '}' expected");
    }
done:
    skip_ws(&p);
    if (p.pos < len)
        return fail(&p, "unexpected text after the object");
    resolve(o);
    return 0;
}

size_t tf_json_count(const tf_json_object *o)
{
    return o->n_members;
}

const tf_json_member *tf_json_member_at(const tf_json_object *o, size_t i)
{
    return i < o->n_members ? &o->members[i] : NULL;
}

const tf_json_value *tf_json_get(const tf_json_object *o, const char *key)
{
    size_t n = strlen(key);

    for (size_t i = 0; i < o->n_members; i++)
        if (o->members[i].key_len == n && memcmp(o->members[i].key, key, n) == 0)
            return &o->members[i].value;
    return NULL;
}

/* ---- writing ---------------------------------------------------------------------------- */

int tf_json_write_string(FILE *f, const char *s, size_t len)
{
    tf_buf b;
    int rc;

    tf_buf_init(&b);
    tf_buf_json_string(&b, s, len);
    rc = tf_buf_ok(&b) && fwrite(b.p, 1, b.len, f) == b.len ? 0 : -1;
    tf_buf_free(&b);
    return rc < 0 || ferror(f) ? -1 : 0;
}

int tf_json_write_cstring(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return ferror(f) ? -1 : 0;
    }
    return tf_json_write_string(f, s, strlen(s));
}
