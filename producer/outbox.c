/*
 * outbox.c - reading and marking outbox rows. Events point straight into the PGresult and
 * into one JSON parser per event for the payload.
 *
 * Why "published_at IS NULL" and not only "id > last": ids are handed out at insert but
 * become visible at commit, so a lower id can appear after higher ones were published.
 * The payload (a flat jsonb object of text columns) is parsed here rather than unnested in
 * the query: that saves the server a function scan and a sort per batch. Rows come back in
 * binary format: the server sends its integers and created_at as they are stored instead of
 * formatting them (extract(epoch ...) alone cost ~1 µs of server CPU per event), and text and
 * jsonb (a version byte, then the same text) cost the same either way.
 */
#include "outbox.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/lifecycle.h"
#include "pg/pg.h"
#include "wire/json.h"

/* Column types are part of the binary contract of event_from_row: keep them in step. */
static const char fetch_sql[] =
    "select id, source, aggregate_type, aggregate_id, event_type, version, created_at,"
    "       payload, coalesce(replay_of, 0), ctid"
    "  from topicflow.outbox where published_at is null and id >= $2"
    " order by id limit $1 for update skip locked";

/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC), where binary
 * timestamptz values count from. */
#define PG_EPOCH_US 946684800000000LL
#define JSONB_BINARY_VERSION 1

static const char mark_sql[] =
    "update topicflow.outbox set published_at = clock_timestamp() where ctid = any($1::tid[])";

static const char set_aside_sql[] = "select topicflow.outbox_set_aside($1, $2)";

static const char retention_sql[] = "select topicflow.outbox_delete_published($1, $2)";

/* Both through the partial index on unpublished ids. */
static const char backlog_sql[] =
    "select (select count(*) from topicflow.outbox where published_at is null),"
    "       (select extract(epoch from clock_timestamp() - created_at)::float8"
    "          from topicflow.outbox where published_at is null order by id limit 1)";

int outbox_prepare(PGconn *conn, tf_err *err)
{
    static const struct { const char *name, *sql; int nparams; } stmts[] = {
        {"outbox_fetch", fetch_sql, 2},
        {"outbox_mark", mark_sql, 1},
        {"outbox_retention", retention_sql, 2},
        {"outbox_set_aside", set_aside_sql, 2},
        {"outbox_backlog", backlog_sql, 0},
    };

    /* A commit here only records that rows were published (or set aside, or retired): if
     * the server crashes before it reaches disk, those rows are published again, which the
     * workers' dedup absorbs. So no commit of this session waits for the WAL flush. */
    if (tf_pg_command(conn, "set synchronous_commit = off", err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *res = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
            return tf_err_prefix(err, "preparing %s", stmts[i].name);
        PQclear(res);
    }
    return 0;
}

static int reserve(outbox_batch *b, size_t events, size_t fields, tf_err *err)
{
    if (events > b->cap_events) {
        uint64_t *t = realloc(b->tids, events * sizeof(*t));
        if (!t)
            return tf_err_set(err, "out of memory for %zu events", events);
        b->tids = t;
    }
    if (events > b->cap_events) {
        tf_event *e = realloc(b->events, events * sizeof(*e));
        if (!e)
            return tf_err_set(err, "out of memory for %zu events", events);
        b->events = e;
        b->cap_events = events;
    }
    if (fields > b->cap_fields) {
        tf_event_field *f = realloc(b->fields, fields * sizeof(*f));
        if (!f)
            return tf_err_set(err, "out of memory for %zu fields", fields);
        b->fields = f;
        b->cap_fields = fields;
    }
    if (events > b->cap_reject) {
        char **r = realloc(b->reject, events * sizeof(*r));
        if (!r)
            return tf_err_set(err, "out of memory");
        b->reject = r;
        for (; b->cap_reject < events; b->cap_reject++)
            b->reject[b->cap_reject] = NULL;
    }
    if (events > b->cap_json) {
        tf_json_object **j = realloc(b->json, events * sizeof(*j));
        if (!j)
            return tf_err_set(err, "out of memory");
        b->json = j;
        for (; b->cap_json < events; b->cap_json++) {
            b->json[b->cap_json] = tf_json_object_new();
            if (!b->json[b->cap_json])
                return tf_err_set(err, "out of memory");
        }
    }
    return 0;
}

/* A binary int8 or timestamptz column; -1 when it is not 8 bytes (or NULL). */
static int binary_int64(const PGresult *res, int row, int col, long long *out)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t v = 0;

    if (PQgetisnull(res, row, col) || PQgetlength(res, row, col) != 8)
        return -1;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    *out = (long long)v;
    return 0;
}

static tf_str column(const PGresult *res, int row, int col)
{
    tf_str s = {PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col)};
    return s;
}

/* Keeps a joined array value alive until the batch is reset. */
static const char *keep_joined(outbox_batch *b, const tf_json_value *v, size_t *len)
{
    size_t total = 1, o = 0;
    char *s;

    if (b->n_joined == b->cap_joined) {
        size_t cap = b->cap_joined ? b->cap_joined * 2 : 8;
        char **j = realloc(b->joined, cap * sizeof(*j));
        if (!j)
            return NULL;
        b->joined = j;
        b->cap_joined = cap;
    }
    for (size_t i = 0; i < v->n_items; i++)
        total += (v->items[i] ? v->item_lens[i] : 0) + 2;
    s = malloc(total);
    if (!s)
        return NULL;
    for (size_t i = 0; i < v->n_items; i++) {
        if (!v->items[i])
            continue;
        if (o) {
            memcpy(s + o, ", ", 2);
            o += 2;
        }
        memcpy(s + o, v->items[i], v->item_lens[i]);
        o += v->item_lens[i];
    }
    s[o] = '\0';
    *len = o;
    b->joined[b->n_joined++] = s;
    return s;
}

/* The text of one payload value: strings as they are (the capture writes only strings),
 * other scalars in their JSON form, an array of strings joined with ", ". 0: JSON null
 * (the field is left out), -1: out of memory. */
static int value_text(outbox_batch *b, const tf_json_value *v, tf_str *out)
{
    switch (v->kind) {
    case TF_JSON_NULL:
        return 0;
    case TF_JSON_BOOL:
        out->ptr = v->boolean ? "true" : "false";
        out->len = v->boolean ? 4 : 5;
        return 1;
    case TF_JSON_ARRAY:
        out->ptr = keep_joined(b, v, &out->len);
        return out->ptr ? 1 : -1;
    default:
        out->ptr = v->text;
        out->len = v->len;
        return 1;
    }
}

static int event_from_row(outbox_batch *b, int row, tf_err *err)
{
    const PGresult *res = b->res;
    tf_event *ev = &b->events[row];
    long long id, version, occurred, replay;
    tf_str payload = column(res, row, 7);

    memset(ev, 0, sizeof(*ev));
    if (binary_int64(res, row, 0, &id) < 0 || binary_int64(res, row, 5, &version) < 0 ||
        binary_int64(res, row, 6, &occurred) < 0 || binary_int64(res, row, 8, &replay) < 0)
        return tf_err_set(err, "outbox row %d has a non-integer id, version, time or replay_of", row);
    if (payload.len < 1 || payload.ptr[0] != JSONB_BINARY_VERSION)
        return tf_err_set(err, "outbox row %d: jsonb payload in an unknown binary format", row);
    if (PQgetlength(res, row, 9) != 6)
        return tf_err_set(err, "outbox row %d: a ctid of %d bytes", row, PQgetlength(res, row, 9));
    {
        const unsigned char *t = (const unsigned char *)PQgetvalue(res, row, 9);
        b->tids[row] = (uint64_t)t[0] << 40 | (uint64_t)t[1] << 32 | (uint64_t)t[2] << 24 |
                       (uint64_t)t[3] << 16 | (uint64_t)t[4] << 8 | t[5];
    }
    ev->id = id;
    ev->version = version;
    ev->occurred_at = occurred + PG_EPOCH_US;
    ev->replay_of = replay;
    ev->source = column(res, row, 1);
    ev->aggregate = column(res, row, 2);
    ev->aggregate_id = column(res, row, 3);
    if (tf_event_type_parse(PQgetvalue(res, row, 4), (size_t)PQgetlength(res, row, 4),
                            &ev->type) < 0)
        return tf_err_set(err, "outbox event %lld has unknown type '%s'", id,
                          PQgetvalue(res, row, 4));
    if (tf_json_parse_object(b->json[row], payload.ptr + 1, payload.len - 1, err) < 0) {
        /* Valid JSON (the column is jsonb) but not a flat object of text columns, e.g.
         * '["x"]': no message can be made of it, now or later. */
        tf_json_parse_object(b->json[row], "{}", 2, NULL);
        if (outbox_reject(b, (size_t)row, "payload is not a JSON object of text columns: %s",
                          err ? err->msg : "parse error") < 0)
            return tf_err_set(err, "out of memory");
    }
    return 0;
}

static int fill_fields(outbox_batch *b, tf_event *ev, tf_json_object *json, size_t *next,
                       tf_err *err)
{
    ev->fields = &b->fields[*next];
    for (size_t i = 0; i < tf_json_count(json); i++) {
        const tf_json_member *m = tf_json_member_at(json, i);
        tf_event_field *f = &b->fields[*next];
        int kind = value_text(b, &m->value, &f->value);
        if (kind < 0)
            return tf_err_set(err, "out of memory");
        if (kind == 0)
            continue;
        f->name.ptr = m->key;
        f->name.len = m->key_len;
        (*next)++;
        ev->n_fields++;
    }
    return 0;
}

int outbox_fetch(PGconn *conn, int limit, int64_t from_id, outbox_batch *b, tf_err *err)
{
    char lim[16], from[24];
    const char *params[2] = {lim, from};
    size_t fields = 0, next = 0;
    int rows;

    outbox_batch_reset(b);
    snprintf(lim, sizeof(lim), "%d", limit);
    snprintf(from, sizeof(from), "%lld", (long long)from_id);
    b->res = PQexecPrepared(conn, "outbox_fetch", 2, params, NULL, NULL, 1);
    if (PQresultStatus(b->res) != PGRES_TUPLES_OK) {
        tf_pg_result_error(conn, b->res, err);
        PQclear(b->res);
        b->res = NULL;
        return -1;
    }
    rows = PQntuples(b->res);
    if (reserve(b, (size_t)rows, 0, err) < 0)
        return -1;
    for (int r = 0; r < rows; r++) {
        if (event_from_row(b, r, err) < 0)
            return -1;
        fields += tf_json_count(b->json[r]);
    }
    /* The field pool is sized once, so the events can point into it. */
    if (reserve(b, (size_t)rows, fields, err) < 0)
        return -1;
    for (int r = 0; r < rows; r++)
        if (fill_fields(b, &b->events[r], b->json[r], &next, err) < 0)
            return -1;
    b->n = (size_t)rows;
    return rows;
}

int outbox_mark_published(PGconn *conn, const outbox_batch *batch, const int64_t *ids, size_t n,
                          tf_err *err)
{
    tf_buf arr;
    const char *params[1];
    PGresult *res;
    size_t j = 0;
    int rc;

    tf_buf_init(&arr);
    tf_buf_append(&arr, "{", 1);
    for (size_t i = 0; i < n; i++) {
        /* ids is an ascending subset of the batch's ids, so one forward walk finds them all */
        while (j < batch->n && batch->events[j].id < ids[i])
            j++;
        if (j == batch->n || batch->events[j].id != ids[i]) {
            tf_buf_free(&arr);
            return tf_err_set(err, "event %lld to mark is not in the batch", (long long)ids[i]);
        }
        tf_buf_printf(&arr, i ? ",\"(%llu,%u)\"" : "\"(%llu,%u)\"",
                      (unsigned long long)(batch->tids[j] >> 16),
                      (unsigned)(batch->tids[j] & 0xffff));
    }
    tf_buf_append(&arr, "}", 1);
    if (!tf_buf_ok(&arr)) {
        tf_buf_free(&arr);
        return tf_err_set(err, "out of memory");
    }
    params[0] = arr.p;
    res = PQexecPrepared(conn, "outbox_mark", 1, params, NULL, NULL, 0);
    rc = tf_pg_check(conn, res, PGRES_COMMAND_OK, err);
    if (rc == 0) {
        /* Fewer rows than locked would mean someone else changed them: do not commit. */
        if (strtoul(PQcmdTuples(res), NULL, 10) != n)
            rc = tf_err_set(err, "marked %s of %zu events published", PQcmdTuples(res), n);
        PQclear(res);
    }
    tf_buf_free(&arr);
    return rc;
}

/* Delete up to limit published rows older than age_s seconds; *deleted gets the count. */
static int outbox_delete_published(PGconn *conn, double age_s, int limit, long *deleted,
                                   tf_err *err)
{
    char age[32], lim[16];
    const char *params[2] = {age, lim};
    PGresult *res;

    snprintf(age, sizeof(age), "%.3f", age_s);
    snprintf(lim, sizeof(lim), "%d", limit);
    res = PQexecPrepared(conn, "outbox_retention", 2, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    *deleted = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return 0;
}

int outbox_retention_pass(PGconn *conn, double age_s, double budget_s, long *deleted,
                          tf_err *err)
{
    double end = tf_now() + budget_s;
    long batch = 0;

    *deleted = 0;
    do {
        if (outbox_delete_published(conn, age_s, OUTBOX_RETENTION_BATCH, &batch, err) < 0)
            return -1;
        *deleted += batch;
    } while (batch == OUTBOX_RETENTION_BATCH && tf_now() < end && !tf_stop_requested());
    return 0;
}

int outbox_backlog(PGconn *conn, long long *pending, double *oldest_age_s, tf_err *err)
{
    PGresult *res = PQexecPrepared(conn, "outbox_backlog", 0, NULL, NULL, NULL, 0);

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    *pending = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    *oldest_age_s = PQgetisnull(res, 0, 1) ? 0 : strtod(PQgetvalue(res, 0, 1), NULL);
    PQclear(res);
    return 0;
}

int outbox_reject(outbox_batch *b, size_t i, const char *fmt, ...)
{
    va_list ap;
    char *reason;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&reason, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if (b->reject[i])
        free(b->reject[i]);
    else
        b->n_rejected++;
    b->reject[i] = reason;
    return 0;
}

int outbox_set_aside(PGconn *conn, const outbox_batch *b, tf_err *err)
{
    for (size_t i = 0; i < b->n && b->n_rejected; i++) {
        char id[24];
        const char *params[2] = {id, b->reject[i]};
        PGresult *res;

        if (!b->reject[i])
            continue;
        snprintf(id, sizeof(id), "%lld", (long long)b->events[i].id);
        res = PQexecPrepared(conn, "outbox_set_aside", 2, params, NULL, NULL, 0);
        if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
            return tf_err_prefix(err, "setting aside outbox event %s", id);
        PQclear(res);
    }
    return 0;
}

void outbox_batch_reset(outbox_batch *b)
{
    PQclear(b->res);
    b->res = NULL;
    for (size_t i = 0; i < b->cap_reject && b->n_rejected; i++) {
        if (b->reject[i]) {
            free(b->reject[i]);
            b->reject[i] = NULL;
            b->n_rejected--;
        }
    }
    b->n = 0;
    for (size_t i = 0; i < b->n_joined; i++)
        free(b->joined[i]);
    b->n_joined = 0;
}

void outbox_batch_free(outbox_batch *b)
{
    outbox_batch_reset(b);
    for (size_t i = 0; i < b->cap_json; i++)
        tf_json_object_free(b->json[i]);
    free(b->json);
    free(b->events);
    free(b->tids);
    free(b->fields);
    free(b->joined);
    free(b->reject);
    memset(b, 0, sizeof(*b));
}
