/*
 * pgoutput.c - the replication stream's framing and pgoutput protocol 1, read with a bounds
 * checked cursor (a short message is an error, never a read past the end), and a change
 * turned into the events outbox mode's capture trigger would have written.
 */
#include "pgoutput.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tf_pgo_decoder {
    tf_pgo_column columns[TF_PGO_MAX_COLUMNS];
    tf_pgo_value old_values[TF_PGO_MAX_COLUMNS];
    tf_pgo_value new_values[TF_PGO_MAX_COLUMNS];
};

typedef struct cursor {
    const unsigned char *p, *end;
    int bad;
} cursor;

static uint64_t get_be(cursor *c, size_t n)
{
    uint64_t v = 0;

    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        v = v << 8 | c->p[i];
    c->p += n;
    return v;
}

/* A NUL-terminated string; the terminator must be inside the input. */
static tf_str get_cstr(cursor *c)
{
    tf_str s = {NULL, 0};
    const unsigned char *nul;

    if (c->bad || !(nul = memchr(c->p, 0, (size_t)(c->end - c->p)))) {
        c->bad = 1;
        return s;
    }
    s.ptr = (const char *)c->p;
    s.len = (size_t)(nul - c->p);
    c->p = nul + 1;
    return s;
}

int tf_repl_frame_parse(const void *buf, size_t len, tf_repl_frame *f, tf_err *err)
{
    cursor c = {buf, (const unsigned char *)buf + len, 0};

    memset(f, 0, sizeof(*f));
    f->kind = (char)get_be(&c, 1);
    if (f->kind == 'w') {
        f->wal_start = get_be(&c, 8);
        f->wal_end = get_be(&c, 8);
        f->clock_us = (int64_t)get_be(&c, 8);
        f->data = (const char *)c.p;
        f->len = c.bad ? 0 : (size_t)(c.end - c.p);
    } else if (f->kind == 'k') {
        f->wal_end = get_be(&c, 8);
        f->clock_us = (int64_t)get_be(&c, 8);
        f->reply = (int)get_be(&c, 1);
    } else if (!c.bad) {
        return tf_err_set(err, "replication stream: unknown message kind 0x%02x",
                          (unsigned char)f->kind);
    }
    if (c.bad)
        return tf_err_set(err, "replication stream: truncated '%c' message of %zu bytes",
                          f->kind ? f->kind : '?', len);
    return 0;
}

static void put_be(unsigned char *out, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}

void tf_repl_status_update(uint64_t lsn, int64_t clock_us, int reply, unsigned char *out)
{
    out[0] = 'r';
    put_be(out + 1, lsn, 8);  /* written */
    put_be(out + 9, lsn, 8);  /* flushed: the slot's confirmed position */
    put_be(out + 17, lsn, 8); /* applied */
    put_be(out + 25, (uint64_t)clock_us, 8);
    out[33] = reply ? 1 : 0;
}

int tf_lsn_parse(const char *s, uint64_t *lsn)
{
    unsigned int hi, lo;
    int used = 0;

    if (!s || sscanf(s, "%X/%X%n", &hi, &lo, &used) != 2 || s[used] != '\0')
        return -1;
    *lsn = (uint64_t)hi << 32 | lo;
    return 0;
}

void tf_lsn_format(uint64_t lsn, char *out, size_t size)
{
    snprintf(out, size, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn);
}

tf_pgo_decoder *tf_pgo_decoder_new(void)
{
    return calloc(1, sizeof(tf_pgo_decoder));
}

void tf_pgo_decoder_free(tf_pgo_decoder *d)
{
    free(d);
}

/* TupleData: Int16 count, then per column 'n' | 'u' | 't' Int32 length, bytes. */
static int get_tuple(cursor *c, tf_pgo_value *storage, tf_pgo_tuple *t, tf_err *err)
{
    size_t n = (size_t)get_be(c, 2);

    if (n > TF_PGO_MAX_COLUMNS)
        return tf_err_set(err, "pgoutput: a row of %zu columns (at most %d)", n,
                          TF_PGO_MAX_COLUMNS);
    t->n = n;
    t->values = storage;
    for (size_t i = 0; i < n && !c->bad; i++) {
        tf_pgo_value *v = &storage[i];
        v->kind = (char)get_be(c, 1);
        v->text.ptr = NULL;
        v->text.len = 0;
        if (v->kind == 't' || v->kind == 'b') {
            uint64_t len = get_be(c, 4);
            if (c->bad || len > (uint64_t)(c->end - c->p)) {
                c->bad = 1;
                break;
            }
            if (v->kind == 'b')
                return tf_err_set(err, "pgoutput: a binary column value (binary mode is off)");
            v->text.ptr = (const char *)c->p;
            v->text.len = (size_t)len;
            c->p += len;
        } else if (v->kind != 'n' && v->kind != 'u' && !c->bad) {
            return tf_err_set(err, "pgoutput: unknown column value kind 0x%02x",
                              (unsigned char)v->kind);
        }
    }
    return 0;
}

int tf_pgo_decode(tf_pgo_decoder *d, const void *data, size_t len, tf_pgo_message *m,
                  tf_err *err)
{
    cursor c = {data, (const unsigned char *)data + len, 0};
    char kind;

    memset(m, 0, sizeof(*m));
    kind = (char)get_be(&c, 1);
    switch (kind) {
    case 'B':
        m->final_lsn = get_be(&c, 8);
        m->commit_us = (int64_t)get_be(&c, 8);
        m->xid = (uint32_t)get_be(&c, 4);
        break;
    case 'C':
        get_be(&c, 1); /* flags, unused */
        m->commit_lsn = get_be(&c, 8);
        m->end_lsn = get_be(&c, 8);
        m->commit_us = (int64_t)get_be(&c, 8);
        break;
    case 'R': {
        size_t n;
        m->relid = (uint32_t)get_be(&c, 4);
        m->nspname = get_cstr(&c);
        m->relname = get_cstr(&c);
        m->replident = (char)get_be(&c, 1);
        n = (size_t)get_be(&c, 2);
        if (n > TF_PGO_MAX_COLUMNS)
            return tf_err_set(err, "pgoutput: a relation of %zu columns (at most %d)", n,
                              TF_PGO_MAX_COLUMNS);
        m->n_columns = n;
        m->columns = d->columns;
        for (size_t i = 0; i < n && !c.bad; i++) {
            d->columns[i].key = (int)(get_be(&c, 1) & 1);
            d->columns[i].name = get_cstr(&c);
            d->columns[i].type = (uint32_t)get_be(&c, 4);
            get_be(&c, 4); /* atttypmod */
        }
        break;
    }
    case 'I':
        m->relid = (uint32_t)get_be(&c, 4);
        if (get_be(&c, 1) != 'N' && !c.bad)
            return tf_err_set(err, "pgoutput: insert without a new row");
        if (get_tuple(&c, d->new_values, &m->new_row, err) < 0)
            return -1;
        break;
    case 'U': {
        char next;
        m->relid = (uint32_t)get_be(&c, 4);
        next = (char)get_be(&c, 1);
        if (next == 'K' || next == 'O') {
            m->old_kind = next;
            if (get_tuple(&c, d->old_values, &m->old_row, err) < 0)
                return -1;
            next = (char)get_be(&c, 1);
        }
        if (next != 'N' && !c.bad)
            return tf_err_set(err, "pgoutput: update without a new row");
        if (get_tuple(&c, d->new_values, &m->new_row, err) < 0)
            return -1;
        break;
    }
    case 'D':
        m->relid = (uint32_t)get_be(&c, 4);
        m->old_kind = (char)get_be(&c, 1);
        if (m->old_kind != 'K' && m->old_kind != 'O' && !c.bad)
            return tf_err_set(err, "pgoutput: delete without an old key or row");
        if (get_tuple(&c, d->old_values, &m->old_row, err) < 0)
            return -1;
        break;
    case 'T':
        m->n_truncated = (uint32_t)get_be(&c, 4);
        break;
    default:
        /* Type, Origin, logical Message and the streaming messages are not needed. */
        kind = c.bad ? kind : 0;
        break;
    }
    if (c.bad)
        return tf_err_set(err, "pgoutput: truncated '%c' message of %zu bytes",
                          kind ? kind : '?', len);
    m->kind = kind;
    return 0;
}

/* ---- a change as events ----------------------------------------------------------------- */

void tf_pgo_events_clear(tf_pgo_events *e)
{
    for (size_t i = 0; i < e->n_joined; i++)
        free(e->joined[i]);
    e->n_joined = 0;
    e->n = 0;
}

static int same_value(const tf_pgo_value *a, const tf_pgo_value *b)
{
    return a->kind == b->kind && a->text.len == b->text.len &&
           (a->text.len == 0 || memcmp(a->text.ptr, b->text.ptr, a->text.len) == 0);
}

/*
 * An array's text output ({a,"b c",NULL}) as outbox mode's column_text joins it: the
 * elements that are not NULL, unquoted, joined with ", " (nested arrays flattened). NULL
 * when no element is left. The result is malloc'd.
 */
static char *join_array(const char *s, size_t len, size_t *out_len)
{
    /* Each element takes at least one input byte and gains at most ", " in the output
     * (malformed input need not have the braces and commas that pay for it). */
    char *out = malloc(3 * len + 1), *o = out;
    size_t i = 0;
    int any = 0;

    if (!out)
        return NULL;
    /* An array with explicit bounds starts with "[1:2]=". */
    if (len && s[0] == '[') {
        const char *eq = memchr(s, '=', len);
        if (eq)
            i = (size_t)(eq - s) + 1;
    }
    while (i < len) {
        char ch = s[i];
        if (ch == '{' || ch == '}' || ch == ',' || ch == ' ') {
            i++;
            continue;
        }
        if (any) {
            *o++ = ',';
            *o++ = ' ';
        }
        if (ch == '"') {
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\' && i + 1 < len)
                    i++;
                *o++ = s[i];
            }
            i++;
            any = 1;
        } else {
            size_t start = i;
            while (i < len && s[i] != ',' && s[i] != '}')
                i++;
            if (i - start == 4 && memcmp(s + start, "NULL", 4) == 0) {
                if (any)
                    o -= 2;
                continue;
            }
            memcpy(o, s + start, i - start);
            o += i - start;
            any = 1;
        }
    }
    if (!any) {
        free(out);
        return NULL;
    }
    *o = '\0';
    *out_len = (size_t)(o - out);
    return out;
}

static int column_value(const tf_pgo_message *m, size_t col, const tf_pgo_value **v,
                        tf_err *err)
{
    *v = col < m->new_row.n ? &m->new_row.values[col] : NULL;
    if (*v && (*v)->kind == 'u') {
        /* Unchanged TOASTed value: only the old row (replica identity full) has it. */
        if (m->old_kind != 'O' || col >= m->old_row.n || m->old_row.values[col].kind == 'u')
            return tf_err_set(err, "pgoutput: an unchanged TOASTed value without the old row "
                                   "(is the table's replica identity FULL?)");
        *v = &m->old_row.values[col];
    }
    return 0;
}

/* The tracked text columns of the new row into e's payload storage (NULLs left out). */
static int payload(const tf_pgo_message *m, const tf_pgo_table *t, tf_pgo_events *e,
                   size_t *n_fields, tf_err *err)
{
    *n_fields = 0;
    for (size_t i = 0; i < t->n_text; i++) {
        const tf_pgo_value *v;
        tf_event_field *f = &e->fields[*n_fields];
        if (column_value(m, t->text_col[i], &v, err) < 0)
            return -1;
        if (!v || v->kind != 't')
            continue;
        f->name = t->text_name[i];
        f->value = v->text;
        if (t->text_is_array[i]) {
            size_t len = 0;
            char *j = join_array(v->text.ptr, v->text.len, &len);
            if (!j)
                continue;
            e->joined[e->n_joined++] = j;
            f->value.ptr = j;
            f->value.len = len;
        }
        (*n_fields)++;
    }
    return 0;
}

static tf_event *add_event(tf_pgo_events *e, const tf_pgo_table *t, tf_event_type type,
                           tf_str id, uint64_t lsn, unsigned first_k, int64_t commit_us)
{
    tf_event *ev = &e->ev[e->n];
    int64_t eid = tf_wal_event_id(lsn, first_k + (unsigned)e->n);

    memset(ev, 0, sizeof(*ev));
    ev->id = eid;
    ev->version = eid;
    ev->type = type;
    ev->aggregate = t->aggregate;
    ev->source = t->source;
    ev->aggregate_id = id;
    ev->occurred_at = commit_us + TF_PG_EPOCH_UNIX_US;
    e->n++;
    return ev;
}

int tf_pgo_change_events(const tf_pgo_message *m, const tf_pgo_table *t, uint64_t lsn,
                         unsigned first_k, int64_t commit_us, tf_pgo_events *out, tf_err *err)
{
    const tf_pgo_value *new_id = NULL, *old_id = NULL;
    size_t n_fields = 0;
    tf_event *ev;

    tf_pgo_events_clear(out);
    if (m->kind != 'I' && m->kind != 'U' && m->kind != 'D')
        return 0;
    if (m->kind != 'D' && column_value(m, t->id_col, &new_id, err) < 0)
        return -1;
    if (m->old_kind && t->id_col < m->old_row.n)
        old_id = &m->old_row.values[t->id_col];
    if ((m->kind != 'D' && (!new_id || new_id->kind != 't')) ||
        (m->kind == 'D' && (!old_id || old_id->kind != 't')))
        return tf_err_set(err, "pgoutput: a %s row of %.*s without its id",
                          m->kind == 'D' ? "deleted" : "new", (int)t->source.len, t->source.ptr);
    if (m->kind == 'D') {
        add_event(out, t, TF_EVENT_DELETED, old_id->text, lsn, first_k, commit_us);
        return 0;
    }
    if (m->kind == 'U') {
        int changed = 0;
        if (m->old_kind != 'O')
            return tf_err_set(err, "pgoutput: an update of %.*s without its old row (is the "
                                   "table's replica identity FULL?)",
                              (int)t->source.len, t->source.ptr);
        if (old_id && old_id->kind == 't' && !same_value(old_id, new_id)) {
            /* The key changed: one document gone, another new (as the trigger says it). */
            add_event(out, t, TF_EVENT_DELETED, old_id->text, lsn, first_k, commit_us);
        } else {
            for (size_t i = 0; i < t->n_text && !changed; i++) {
                size_t col = t->text_col[i];
                const tf_pgo_value *nv = col < m->new_row.n ? &m->new_row.values[col] : NULL;
                if (nv && nv->kind == 'u')
                    continue; /* unchanged TOASTed: not changed */
                changed = !nv || col >= m->old_row.n || !same_value(nv, &m->old_row.values[col]);
            }
            if (!changed)
                return 0;
        }
    }
    if (payload(m, t, out, &n_fields, err) < 0) {
        tf_pgo_events_clear(out);
        return -1;
    }
    ev = add_event(out, t,
                   m->kind == 'I' || out->n == 1 ? TF_EVENT_CREATED : TF_EVENT_UPDATED,
                   new_id->text, lsn, first_k, commit_us);
    ev->n_fields = n_fields;
    ev->fields = out->fields;
    return 0;
}
