/*
 * outbox.c - reading and marking outbox rows. The batch query returns one row per
 * (event, payload field) so that no JSON has to be parsed here: jsonb_each_text does it
 * in the server, and the events point straight into the PGresult.
 *
 * Why "published_at IS NULL" and not "id > last": ids are handed out at insert but become
 * visible at commit, so a lower id can appear after higher ones were published.
 */
#include "outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

static const char fetch_sql[] =
    "with batch as ("
    "  select id, source, aggregate_type, aggregate_id, event_type, version, created_at, payload,"
    "         replay_of from topicflow.outbox where published_at is null"
    "   order by id limit $1 for update skip locked)"
    " select b.id, b.source, b.aggregate_type, b.aggregate_id, b.event_type, b.version,"
    "        (extract(epoch from b.created_at) * 1000000)::bigint, kv.key, kv.value,"
    "        coalesce(b.replay_of, 0)"
    "   from batch b left join lateral jsonb_each_text(b.payload) kv on true"
    "  order by b.id, kv.key";

static const char mark_sql[] =
    "update topicflow.outbox set published_at = clock_timestamp() where id = any($1::bigint[])";

static const char retention_sql[] =
    "delete from topicflow.outbox where id in ("
    "  select id from topicflow.outbox"
    "   where published_at is not null and published_at < now() - make_interval(secs => $1)"
    "   order by published_at limit $2 for update skip locked)";

int outbox_prepare(PGconn *conn, tf_err *err)
{
    static const struct { const char *name, *sql; int nparams; } stmts[] = {
        {"outbox_fetch", fetch_sql, 1},
        {"outbox_mark", mark_sql, 1},
        {"outbox_retention", retention_sql, 2},
    };

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
    return 0;
}

static tf_str column(const PGresult *res, int row, int col)
{
    tf_str s = {PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col)};
    return s;
}

/* Fills the event of result row `row` (the first row of that event). */
static int event_from_row(const PGresult *res, int row, tf_event *ev, tf_err *err)
{
    long long id, version, occurred, replay;

    memset(ev, 0, sizeof(*ev));
    if (tf_pg_get_int64(res, row, 0, &id) < 0 || tf_pg_get_int64(res, row, 5, &version) < 0 ||
        tf_pg_get_int64(res, row, 6, &occurred) < 0)
        return tf_err_set(err, "outbox row %d has a non-integer id, version or time", row);
    ev->id = id;
    ev->version = version;
    ev->occurred_at = occurred;
    if (tf_pg_get_int64(res, row, 9, &replay) < 0)
        return tf_err_set(err, "outbox row %d has a non-integer replay_of", row);
    ev->replay_of = replay;
    ev->source = column(res, row, 1);
    ev->aggregate = column(res, row, 2);
    ev->aggregate_id = column(res, row, 3);
    if (tf_event_type_parse(PQgetvalue(res, row, 4), (size_t)PQgetlength(res, row, 4),
                            &ev->type) < 0)
        return tf_err_set(err, "outbox event %lld has unknown type '%s'", id,
                          PQgetvalue(res, row, 4));
    return 0;
}

int outbox_fetch(PGconn *conn, int limit, outbox_batch *b, tf_err *err)
{
    char lim[16];
    const char *params[1] = {lim};
    long long prev = -1;
    int rows;

    outbox_batch_reset(b);
    snprintf(lim, sizeof(lim), "%d", limit);
    b->res = PQexecPrepared(conn, "outbox_fetch", 1, params, NULL, NULL, 0);
    if (PQresultStatus(b->res) != PGRES_TUPLES_OK) {
        tf_pg_result_error(conn, b->res, err);
        PQclear(b->res);
        b->res = NULL;
        return -1;
    }
    rows = PQntuples(b->res);
    if (reserve(b, (size_t)rows, (size_t)rows, err) < 0)
        return -1;
    for (int r = 0; r < rows; r++) {
        long long id;
        tf_event *ev;

        if (tf_pg_get_int64(b->res, r, 0, &id) < 0)
            return tf_err_set(err, "outbox row %d has no id", r);
        if (id != prev) {
            if (event_from_row(b->res, r, &b->events[b->n], err) < 0)
                return -1;
            b->events[b->n].fields = &b->fields[r];
            b->n++;
            prev = id;
        }
        ev = &b->events[b->n - 1];
        if (!PQgetisnull(b->res, r, 7)) { /* NULL key: an event with an empty payload */
            b->fields[r].name = column(b->res, r, 7);
            b->fields[r].value = column(b->res, r, 8);
            ev->n_fields++;
        }
    }
    return (int)b->n;
}

int outbox_mark_published(PGconn *conn, const int64_t *ids, size_t n, tf_err *err)
{
    size_t cap = 2 + n * 21, o = 0;
    char *arr = malloc(cap);
    const char *params[1] = {arr};
    PGresult *res;
    int rc;

    if (!arr)
        return tf_err_set(err, "out of memory");
    arr[o++] = '{';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(arr + o, cap - o, i ? ",%lld" : "%lld", (long long)ids[i]);
    arr[o++] = '}';
    arr[o] = '\0';
    res = PQexecPrepared(conn, "outbox_mark", 1, params, NULL, NULL, 0);
    rc = tf_pg_check(conn, res, PGRES_COMMAND_OK, err);
    if (rc == 0) {
        /* Fewer rows than locked would mean someone else changed them: do not commit. */
        if (strtoul(PQcmdTuples(res), NULL, 10) != n)
            rc = tf_err_set(err, "marked %s of %zu events published", PQcmdTuples(res), n);
        PQclear(res);
    }
    free(arr);
    return rc;
}

int outbox_delete_published(PGconn *conn, double age_s, int limit, long *deleted, tf_err *err)
{
    char age[32], lim[16];
    const char *params[2] = {age, lim};
    PGresult *res;

    snprintf(age, sizeof(age), "%.3f", age_s);
    snprintf(lim, sizeof(lim), "%d", limit);
    res = PQexecPrepared(conn, "outbox_retention", 2, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        return -1;
    *deleted = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

void outbox_batch_reset(outbox_batch *b)
{
    PQclear(b->res);
    b->res = NULL;
    b->n = 0;
}

void outbox_batch_free(outbox_batch *b)
{
    outbox_batch_reset(b);
    free(b->events);
    free(b->fields);
    memset(b, 0, sizeof(*b));
}
