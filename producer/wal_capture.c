/*
 * wal_capture.c - the wal mode's loop: frames in (wal_reader), events out (publisher_send),
 * confirms back to the slot.
 *
 * Invariant: a commit's end position is reported to the slot only when every message
 * published up to it was acked by the broker. Messages are published as they are read, so
 * a transaction of any size streams through a window of at most cfg->window unconfirmed
 * messages (the server spills large transactions to disk before sending them; nothing here
 * holds a transaction in memory). Any failure (broker nack or return, a lost connection, a
 * stream error) drops both connections and restarts from the slot's confirmed position:
 * what was published after it comes again with the same ids.
 */
#include "wal_capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "publisher.h"
#include "wal_reader.h"
#include "amqp/broker.h"
#include "base/backoff.h"
#include "base/lifecycle.h"
#include "base/log.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "pg/retry.h"
#include "wire/json.h"
#include "wire/pgoutput.h"

#define PUBLICATION "topicflow_capture"
#define SAMPLE_EVERY_S 5.0
#define RETAINED_WARN_EVERY_S 60.0
#define STANDBY_RETRY_S 1.0

typedef struct relation {
    uint32_t relid;
    int tracked;           /* mapped through topicflow.tracked_tables */
    tf_pgo_table t;
    char *source, *aggregate, *names[TF_EVENT_MAX_FIELDS]; /* t's strings */
} relation;

typedef struct commit_mark {
    uint64_t end_lsn;      /* reported to the slot ... */
    uint64_t upto;         /* ... once this many messages of the connection are acked */
} commit_mark;

typedef struct capture {
    const wal_capture_config *cfg;
    producer_metrics *m;
    char slot[64];
    PGconn *sql;           /* relation mapping and slot gauges */
    wal_reader *rd;
    tf_broker *broker;
    tf_pgo_decoder *dec;
    relation *rels;
    size_t n_rels, cap_rels;
    /* confirm window: state[i] and ids[i] belong to delivery tag first_tag + i */
    uint8_t *state;
    int64_t *ids;
    size_t n;
    uint64_t first_tag, sent, settled;
    commit_mark *commits;
    size_t n_commits, cap_commits;
    /* the transaction being read */
    int in_txn;
    int64_t commit_us;
    uint64_t last_lsn;
    unsigned k_at_lsn;
    tf_pgo_events events;
    /* bookkeeping */
    unsigned long long published, too_large;
    uint64_t server_end;
    double caught_up_at, next_sample, next_retained_warn;
    /* the outbox: its own session (a batch's rows stay locked until their confirms) */
    PGconn *ob;
    outbox_batch batch;
    double next_outbox;     /* when the outbox is looked at again (0: at once) */
    double next_retention;
    int standby, connected_once;
    tf_backoff backoff;
} capture;

/* ---- relations ------------------------------------------------------------------------ */

static void relation_clear(relation *r)
{
    free(r->source);
    free(r->aggregate);
    for (size_t i = 0; i < TF_EVENT_MAX_FIELDS; i++)
        free(r->names[i]);
    memset(r, 0, sizeof(*r));
}

static relation *find_relation(capture *c, uint32_t relid)
{
    for (size_t i = 0; i < c->n_rels; i++)
        if (c->rels[i].relid == relid)
            return &c->rels[i];
    return NULL;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static long column_index(const tf_pgo_message *m, const char *name)
{
    for (size_t i = 0; i < m->n_columns; i++)
        if (m->columns[i].name.len == strlen(name) &&
            memcmp(m->columns[i].name.ptr, name, m->columns[i].name.len) == 0)
            return (long)i;
    return -1;
}

/*
 * A Relation message: where the tracked columns of this table sit in the rows that follow.
 * The mapping is topicflow.tracked_tables as it is now (re-tracking a table with other
 * columns applies to the changes not yet confirmed too).
 */
static int remember_relation(capture *c, const tf_pgo_message *m, tf_err *err)
{
    relation *r = find_relation(c, m->relid);
    char *nsp = dup_str(m->nspname.ptr, m->nspname.len), *rel = dup_str(m->relname.ptr, m->relname.len);
    const char *params[2] = {nsp, rel};
    PGresult *res = NULL;
    int rc = -1;
    long id;

    if (!nsp || !rel) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    if (!r) {
        if (c->n_rels == c->cap_rels) {
            size_t cap = c->cap_rels ? 2 * c->cap_rels : 8;
            relation *g = realloc(c->rels, cap * sizeof(*g));
            if (!g) {
                tf_err_set(err, "out of memory");
                goto done;
            }
            c->rels = g;
            c->cap_rels = cap;
        }
        r = &c->rels[c->n_rels++];
        memset(r, 0, sizeof(*r));
    }
    relation_clear(r);
    r->relid = m->relid;
    res = PQexecParams(c->sql,
                       "select t.source, t.aggregate_type, t.id_column, col.name,"
                       "       coalesce(ty.typcategory = 'A', false)"
                       "  from topicflow.tracked_tables t"
                       "  cross join unnest(t.text_columns) with ordinality as col(name, i)"
                       "  left join pg_attribute a on a.attrelid = to_regclass(t.source)"
                       "       and a.attname = col.name and not a.attisdropped"
                       "  left join pg_type ty on ty.oid = a.atttypid"
                       " where t.capture = 'wal' and t.source = format('%I.%I', $1::text, $2::text)"
                       " order by col.i",
                       2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(c->sql, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto done;
    }
    rc = 0;
    if (PQntuples(res) == 0 || PQntuples(res) > TF_EVENT_MAX_FIELDS) {
        log_warn("changes of a table not tracked in wal mode are skipped", "table=%s.%s",
                 tf_log_q(nsp), tf_log_q(rel));
        goto done;
    }
    id = column_index(m, PQgetvalue(res, 0, 2));
    if (id < 0) {
        log_warn("tracked table has no id column in the log; its changes are skipped",
                 "table=%s.%s id_column=%s", tf_log_q(nsp), tf_log_q(rel),
                 tf_log_q(PQgetvalue(res, 0, 2)));
        goto done;
    }
    r->source = strdup(PQgetvalue(res, 0, 0));
    r->aggregate = strdup(PQgetvalue(res, 0, 1));
    if (!r->source || !r->aggregate) {
        rc = tf_err_set(err, "out of memory");
        goto done;
    }
    r->t.source = (tf_str){r->source, strlen(r->source)};
    r->t.aggregate = (tf_str){r->aggregate, strlen(r->aggregate)};
    r->t.id_col = (size_t)id;
    for (int i = 0; i < PQntuples(res); i++) {
        long col = column_index(m, PQgetvalue(res, i, 3));
        size_t k = r->t.n_text;
        if (col < 0)
            continue;
        r->names[k] = strdup(PQgetvalue(res, i, 3));
        if (!r->names[k]) {
            rc = tf_err_set(err, "out of memory");
            goto done;
        }
        r->t.text_col[k] = (size_t)col;
        r->t.text_name[k] = (tf_str){r->names[k], strlen(r->names[k])};
        r->t.text_is_array[k] = PQgetvalue(res, i, 4)[0] == 't';
        r->t.n_text++;
    }
    if (m->replident != 'f')
        log_warn("tracked table's replica identity is not FULL: updates cannot be captured",
                 "table=%s.%s", tf_log_q(nsp), tf_log_q(rel));
    r->tracked = 1;
done:
    PQclear(res);
    free(nsp);
    free(rel);
    return rc;
}

/* ---- the confirm window ------------------------------------------------------------------ */

static void on_return(void *ctx, const char *message_id, size_t len)
{
    capture *c = ctx;
    publisher_mark_returned(c->ids, c->state, c->n, message_id, len);
}

/* Report every commit whose messages are all acked. */
static void advance_commits(capture *c)
{
    size_t k = 0;

    while (k < c->n_commits && c->commits[k].upto <= c->settled)
        wal_reader_confirm(c->rd, c->commits[k++].end_lsn);
    if (k) {
        memmove(c->commits, c->commits + k, (c->n_commits - k) * sizeof(*c->commits));
        c->n_commits -= k;
    }
}

/* Waits until the oldest `needed` messages are settled; all must be acks (a nack or a return
 * fails the stream, which restarts from the slot: the message comes again). */
static int settle(capture *c, size_t needed, tf_err *err)
{
    size_t k = 0;

    if (needed && tf_broker_wait_confirms(c->broker, c->first_tag, c->n, c->state, needed,
                                          c->cfg->confirm_timeout_s, on_return, c, err) < 0)
        return -1;
    while (k < c->n && c->state[k] != TF_CONFIRM_PENDING) {
        if (c->state[k] != TF_CONFIRM_ACK)
            return tf_err_set(err, "the broker %s event %lld",
                              c->state[k] == TF_CONFIRM_NACK ? "nacked" : "returned (unroutable)",
                              (long long)c->ids[k]);
        k++;
    }
    memmove(c->state, c->state + k, c->n - k);
    memmove(c->ids, c->ids + k, (c->n - k) * sizeof(*c->ids));
    c->n -= k;
    c->first_tag += k;
    c->settled += k;
    c->published += k;
    tf_counter_add(c->m->published, k);
    advance_commits(c);
    return 0;
}

/* A message just published (delivery tag, event id) joins the confirm window. */
static void window_add(capture *c, uint64_t tag, int64_t id)
{
    if (c->n == 0)
        c->first_tag = tag;
    c->state[c->n] = TF_CONFIRM_PENDING;
    c->ids[c->n] = id;
    c->n++;
    c->sent++;
}

/* The event's payload as outbox mode stores it: a flat JSON object of the tracked text. */
static char *payload_json(const tf_event *ev)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    fputc('{', f);
    for (size_t i = 0; i < ev->n_fields; i++) {
        if (i)
            fputc(',', f);
        tf_json_write_string(f, ev->fields[i].name.ptr, ev->fields[i].name.len);
        fputc(':', f);
        tf_json_write_string(f, ev->fields[i].value.ptr, ev->fields[i].value.len);
    }
    fputc('}', f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/*
 * A change no message can be made of is stored in topicflow.outbox_rejected, as outbox mode
 * sets such rows aside. The call commits (durably) before the change's commit is pushed to
 * the confirm window, so the slot never passes a change that is neither published nor stored;
 * read again after a crash it has the same id, which the function stores only once.
 */
static int set_aside(capture *c, const tf_event *ev, size_t len, tf_err *err)
{
    char id[24], version[24], created[24], reason[128];
    char *payload = payload_json(ev), *source = dup_str(ev->source.ptr, ev->source.len),
         *aggregate = dup_str(ev->aggregate.ptr, ev->aggregate.len),
         *doc = dup_str(ev->aggregate_id.ptr, ev->aggregate_id.len);
    const char *params[9] = {id, source, aggregate, doc, tf_event_type_name(ev->type), version,
                             payload, created, reason};
    PGresult *res = NULL;
    int rc = -1;

    if (!payload || !source || !aggregate || !doc) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    snprintf(id, sizeof(id), "%lld", (long long)ev->id);
    snprintf(version, sizeof(version), "%lld", (long long)ev->version);
    snprintf(created, sizeof(created), "%lld", (long long)ev->occurred_at);
    snprintf(reason, sizeof(reason), "message of %zu bytes exceeds --max-message (%zu bytes)",
             len, c->cfg->max_message);
    res = PQexecParams(c->sql, "select topicflow.wal_set_aside($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                       9, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(c->sql, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        tf_err_prefix(err, "setting event %lld aside", (long long)ev->id);
        goto done;
    }
    rc = 0;
    c->too_large++;
    tf_counter_add(c->m->set_aside, 1);
    log_warn("outbox event set aside", "id=%lld reason=%s", (long long)ev->id, tf_log_q(reason));
done:
    PQclear(res);
    free(payload);
    free(source);
    free(aggregate);
    free(doc);
    return rc;
}

static int publish(capture *c, const tf_event *ev, tf_err *err)
{
    uint64_t tag;
    size_t len = 0;
    int rc;

    if (c->n == c->cfg->window && settle(c, c->n / 2 ? c->n / 2 : 1, err) < 0)
        return -1;
    rc = publisher_send(c->broker, ev, c->cfg->max_message, &tag, &len, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return set_aside(c, ev, len, err);
    window_add(c, tag, ev->id);
    return 0;
}

static int push_commit(capture *c, uint64_t end_lsn, tf_err *err)
{
    if (c->n_commits == c->cap_commits) {
        size_t cap = c->cap_commits ? 2 * c->cap_commits : 64;
        commit_mark *g = realloc(c->commits, cap * sizeof(*g));
        if (!g)
            return tf_err_set(err, "out of memory");
        c->commits = g;
        c->cap_commits = cap;
    }
    c->commits[c->n_commits++] = (commit_mark){end_lsn, c->sent};
    advance_commits(c);
    return 0;
}

/* ---- the outbox -------------------------------------------------------------------------- */

/* 1 when the outbox session heard a NOTIFY (or lost its connection: look, and fail there). */
static int outbox_notified(capture *c)
{
    PGnotify *note;
    int woke = 0;

    if (!c->ob)
        return 0;
    if (PQconsumeInput(c->ob) == 0)
        return 1;
    while ((note = PQnotifies(c->ob)) != NULL) {
        woke = 1;
        PQfreemem(note);
    }
    return woke;
}

static int outbox_session(capture *c, tf_err *err)
{
    if (c->ob)
        return 0;
    c->ob = tf_pg_connect(c->cfg->pg_url, "topicflow-producer-outbox", err);
    if (!c->ob || outbox_prepare(c->ob, err) < 0 ||
        (c->cfg->notify && tf_pg_command(c->ob, "listen topicflow_outbox", err) < 0)) {
        PQfinish(c->ob);
        c->ob = NULL;
        return -1;
    }
    return 0;
}

/* When the outbox is drained, at most every OUTBOX_RETENTION_EVERY_S: one batch of published
 * rows past --retention deleted (replays are the rows a wal deployment writes there). */

static int outbox_retention(capture *c, tf_err *err)
{
    long deleted = 0;

    if (c->cfg->retention_s <= 0 || tf_now() < c->next_retention)
        return 0;
    c->next_retention = tf_now() + OUTBOX_RETENTION_EVERY_S;
    if (outbox_retention_pass(c->ob, c->cfg->retention_s, 0, &deleted, err) < 0)
        return -1;
    if (deleted > 0)
        log_info("retention deleted published events", "deleted=%ld", deleted);
    return 0;
}

/*
 * One outbox batch, as outbox mode publishes it: lock unpublished rows (FOR UPDATE SKIP
 * LOCKED, id order), publish them through the same confirm window as the slot's changes,
 * wait for all of their confirms (and so for every change published before them), then mark
 * the acked rows, set aside the ones no message can be made of, and commit. Between batches
 * the window holds only the slot's changes, whose commits still reach the slot only once
 * acked. A nack or return fails the stream: the batch is rolled back and published again.
 */
static int drain_outbox(capture *c, tf_err *err)
{
    size_t before = c->n;
    int64_t *acked = NULL;
    size_t n_acked = 0;
    int n, rc = -1;

    if (outbox_session(c, err) < 0)
        return -1;
    if (tf_pg_command(c->ob, "begin", err) < 0)
        goto done;
    n = outbox_fetch(c->ob, c->cfg->outbox_batch, 0, &c->batch, err);
    if (n < 0)
        goto done;
    if (n == 0) {
        c->next_outbox = tf_now() + c->cfg->poll_s;
        rc = tf_pg_command(c->ob, "commit", err);
        if (rc == 0)
            rc = outbox_retention(c, err);
        goto done;
    }
    /* the rows' confirms are waited for at once: make room for all of them */
    if (c->n + (size_t)n > c->cfg->window && settle(c, c->n, err) < 0)
        goto done;
    before = c->n;
    for (size_t i = 0; i < c->batch.n; i++) {
        uint64_t tag;
        int sent;
        if (c->batch.reject[i])
            continue;
        sent = publisher_send_row(c->broker, &c->batch, i, c->cfg->max_message, &tag, err);
        if (sent < 0)
            goto done;
        if (sent == 0)
            continue;
        window_add(c, tag, c->batch.events[i].id);
    }
    n_acked = c->n - before;
    /* settle() fails on any nack or return, so every row published here was acked */
    if (settle(c, c->n, err) < 0)
        goto done;
    if (n_acked) {
        acked = malloc(n_acked * sizeof(*acked));
        if (!acked) {
            tf_err_set(err, "out of memory");
            goto done;
        }
        for (size_t i = 0, k = 0; i < c->batch.n; i++)
            if (!c->batch.reject[i])
                acked[k++] = c->batch.events[i].id;
        if (outbox_mark_published(c->ob, &c->batch, acked, n_acked, err) < 0)
            goto done;
    }
    if (c->batch.n_rejected && outbox_set_aside(c->ob, &c->batch, err) < 0)
        goto done;
    for (size_t i = 0; i < c->batch.n && c->batch.n_rejected; i++)
        if (c->batch.reject[i])
            log_warn("outbox event set aside", "id=%lld reason=%s",
                     (long long)c->batch.events[i].id, tf_log_q(c->batch.reject[i]));
    if (tf_pg_command(c->ob, "commit", err) < 0)
        goto done;
    c->too_large += c->batch.n_rejected;
    tf_counter_add(c->m->set_aside, c->batch.n_rejected);
    /* a full batch: more may wait, look again at the next step */
    c->next_outbox = n == c->cfg->outbox_batch ? 0 : tf_now() + c->cfg->poll_s;
    rc = 0;
done:
    free(acked);
    if (rc < 0 && c->ob) {
        if (tf_pg_connection_ok(c->ob))
            PQclear(PQexec(c->ob, "rollback"));
        else {
            PQfinish(c->ob);
            c->ob = NULL;
        }
    }
    outbox_batch_reset(&c->batch);
    return rc;
}

/* Between frames: an outbox batch when one is due (the poll interval passed, a full batch
 * before, or — when the slot is quiet — a NOTIFY), never inside a transaction of the slot. */
static int maybe_drain_outbox(capture *c, int quiet, tf_err *err)
{
    if (c->in_txn)
        return 0;
    if (tf_now() < c->next_outbox && !(quiet && outbox_notified(c)))
        return 0;
    return drain_outbox(c, err);
}

/* ---- the stream -------------------------------------------------------------------------- */

static int on_change(capture *c, const tf_pgo_message *m, uint64_t lsn, tf_err *err)
{
    relation *r = find_relation(c, m->relid);
    unsigned k;

    if (!r)
        return tf_err_set(err, "pgoutput: a change of relation %u before its Relation message",
                          m->relid);
    if (!r->tracked)
        return 0;
    /* The rows of one multi-insert record share its position: number them on. */
    k = lsn == c->last_lsn ? c->k_at_lsn : 0;
    if (tf_pgo_change_events(m, &r->t, lsn, k, c->commit_us, &c->events, err) < 0)
        return -1;
    for (size_t i = 0; i < c->events.n; i++)
        if (publish(c, &c->events.ev[i], err) < 0)
            return -1;
    c->last_lsn = lsn;
    c->k_at_lsn = k + (unsigned)c->events.n;
    tf_pgo_events_clear(&c->events);
    return 0;
}

static int on_xlogdata(capture *c, const tf_repl_frame *f, tf_err *err)
{
    tf_pgo_message m;

    if (tf_pgo_decode(c->dec, f->data, f->len, &m, err) < 0)
        return -1;
    switch (m.kind) {
    case 'B':
        c->in_txn = 1;
        c->commit_us = m.commit_us;
        c->last_lsn = 0;
        c->k_at_lsn = 0;
        return 0;
    case 'C':
        c->in_txn = 0;
        return push_commit(c, m.end_lsn, err);
    case 'R':
        return remember_relation(c, &m, err);
    case 'I':
    case 'U':
    case 'D':
        return on_change(c, &m, f->wal_start, err);
    case 'T':
        /* The trigger refuses TRUNCATE of a tracked table, so this is another table's. */
        log_warn("TRUNCATE in the log ignored", "relations=%u", m.n_truncated);
        return 0;
    default:
        return 0;
    }
}

static int idle(const capture *c)
{
    return !c->in_txn && c->n == 0 && c->n_commits == 0;
}

/* ---- connections ---------------------------------------------------------------------------- */

static void drop_stream(capture *c)
{
    wal_reader_close(c->rd);
    c->rd = NULL;
    tf_broker_close(c->broker);
    c->broker = NULL;
    for (size_t i = 0; i < c->n_rels; i++)
        relation_clear(&c->rels[i]);
    c->n_rels = 0;
    c->n = c->n_commits = 0;
    c->sent = c->settled = 0;
    c->in_txn = 0;
    tf_pgo_events_clear(&c->events);
    if (c->sql && !tf_pg_connection_ok(c->sql)) {
        PQfinish(c->sql);
        c->sql = NULL;
    }
    tf_metrics_set_unready(c->m->registry, "not streaming the replication slot");
}

static int connect_sql(capture *c, tf_err *err)
{
    PGresult *res;

    c->sql = tf_migrate_connect(c->cfg->pg_url, "topicflow-producer", err);
    if (!c->sql)
        return -1;
    if (c->cfg->slot && *c->cfg->slot) {
        snprintf(c->slot, sizeof(c->slot), "%s", c->cfg->slot);
        return 0;
    }
    res = PQexec(c->sql, "select topicflow.capture_slot()");
    if (tf_pg_check(c->sql, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    snprintf(c->slot, sizeof(c->slot), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* 0 streaming, -1 failure, -2 the slot is another producer's (stand by). */
static int ensure_connected(capture *c, tf_err *err)
{
    if (!c->sql && connect_sql(c, err) < 0)
        return -1;
    if (!c->broker) {
        c->broker = tf_broker_open(c->cfg->amqp_url, c->cfg->amqp_tls, c->cfg->heartbeat_s, err);
        if (!c->broker)
            return -1;
        if (tf_topology_declare(c->broker, c->cfg->topology, NULL, err) < 0 ||
            tf_broker_confirm_select(c->broker, err) < 0)
            return -1;
    }
    if (!c->rd) {
        c->rd = wal_reader_open(c->cfg->pg_url, c->slot, PUBLICATION, err);
        if (!c->rd)
            return strcmp(err->code, WAL_SLOT_IN_USE) == 0 ? -2 : -1;
        log_info("connected", "capture=wal slot=%s window=%zu", c->slot, c->cfg->window);
        if (c->standby)
            log_info("standby over: this producer now reads the slot", "slot=%s", c->slot);
        c->standby = 0;
        if (c->connected_once)
            tf_counter_add(c->m->reconnects, 1);
        c->connected_once = 1;
        c->caught_up_at = tf_now();
        tf_metrics_set_unready(c->m->registry, NULL);
    }
    return 0;
}

/* Slot lag and retained WAL, every SAMPLE_EVERY_S: gauges, and a warning past the bound. */
static void sample_slot(capture *c)
{
    const char *params[1] = {c->slot};
    PGresult *res;
    double lag_s = 0;

    if (tf_now() < c->next_sample || !c->sql)
        return;
    c->next_sample = tf_now() + SAMPLE_EVERY_S;
    if (!idle(c) || c->server_end > wal_reader_confirmed(c->rd))
        lag_s = tf_now() - c->caught_up_at;
    tf_gauge_set(c->m->slot_lag_seconds, lag_s);
    res = PQexecParams(c->sql,
                       "select (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint,"
                       "       (pg_current_wal_lsn() - restart_lsn)::bigint"
                       "  from pg_replication_slots where slot_name = $1",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        double lag = atof(PQgetvalue(res, 0, 0)), retained = atof(PQgetvalue(res, 0, 1));
        tf_gauge_set(c->m->slot_lag_bytes, lag);
        tf_gauge_set(c->m->slot_retained_bytes, retained);
        if (c->cfg->warn_retained > 0 && retained > (double)c->cfg->warn_retained &&
            tf_now() >= c->next_retained_warn) {
            c->next_retained_warn = tf_now() + RETAINED_WARN_EVERY_S;
            log_warn("replication slot retains WAL past the bound", "slot=%s retained_bytes=%.0f "
                     "bound_bytes=%ld lag_bytes=%.0f", c->slot, retained, c->cfg->warn_retained, lag);
        }
    }
    PQclear(res);
}

static void fail_and_wait(capture *c, const char *what, const tf_err *err)
{
    double d = tf_backoff_next(&c->backoff);

    log_warn(what, "in_s=%.2f confirmed=%llu reason=%s", d,
             (unsigned long long)(c->rd ? wal_reader_confirmed(c->rd) : 0), tf_log_q(err->msg));
    drop_stream(c);
    tf_sleep_interruptible(d);
}

/* One step of the stream: a frame, or a wait of at most a quarter second. */
static int step(capture *c, tf_err *err)
{
    tf_repl_frame f;
    int rc = wal_reader_next(c->rd, 0.25, &f, err);

    if (rc < 0)
        return -1;
    if (rc == 0) {
        /* Quiet: settle what is in flight so the last commits reach the slot now. */
        if (c->n && settle(c, c->n, err) < 0)
            return -1;
        if (tf_broker_service(c->broker, 0, err) < 0)
            return -1;
    } else if (f.kind == 'k') {
        if (f.wal_end > c->server_end)
            c->server_end = f.wal_end;
        /* Nothing of ours is pending: the WAL up to the server's sent position holds no
         * commit we have not published, so the slot may move past other tables' WAL. */
        if (idle(c))
            wal_reader_confirm(c->rd, f.wal_end);
        if (f.reply && wal_reader_status(c->rd, 1, err) < 0)
            return -1;
    } else {
        if (f.wal_end > c->server_end)
            c->server_end = f.wal_end;
        if (on_xlogdata(c, &f, err) < 0)
            return -1;
    }
    if (maybe_drain_outbox(c, rc == 0, err) < 0)
        return -1;
    if (idle(c) && wal_reader_confirmed(c->rd) >= c->server_end)
        c->caught_up_at = tf_now();
    return wal_reader_status(c->rd, 0, err);
}

int wal_capture_run(const wal_capture_config *cfg, producer_metrics *metrics)
{
    capture c;
    tf_err err;

    memset(&c, 0, sizeof(c));
    c.cfg = cfg;
    c.m = metrics;
    c.dec = tf_pgo_decoder_new();
    c.state = malloc(cfg->window);
    c.ids = malloc(cfg->window * sizeof(*c.ids));
    if (!c.dec || !c.state || !c.ids) {
        log_error("out of memory", "window=%zu", cfg->window);
        tf_pgo_decoder_free(c.dec);
        free(c.state);
        free(c.ids);
        return 1;
    }
    tf_backoff_init(&c.backoff, 0.1, cfg->reconnect_max_s, (uint64_t)tf_now() * 2654435761u);
    while (!tf_stop_requested()) {
        int rc = ensure_connected(&c, &err);
        if (rc == -2) {
            if (!c.standby)
                log_info("standby: another producer reads the slot; retrying", "slot=%s reason=%s",
                         c.slot, tf_log_q(err.msg));
            c.standby = 1;
            tf_metrics_set_unready(c.m->registry, "standby: another producer reads the slot");
            tf_sleep_interruptible(STANDBY_RETRY_S);
            continue;
        }
        if (rc < 0) {
            fail_and_wait(&c, "cannot connect, retrying", &err);
            continue;
        }
        if (step(&c, &err) < 0) {
            fail_and_wait(&c, "stream restarted from the slot's confirmed position", &err);
            continue;
        }
        tf_backoff_reset(&c.backoff);
        sample_slot(&c);
    }
    /* Stop: what the broker confirms now reaches the slot; the rest comes again. */
    if (c.rd && c.broker && (settle(&c, c.n, &err) < 0 || wal_reader_status(c.rd, 1, &err) < 0))
        log_warn("in-flight events not confirmed at shutdown (they are published again)",
                 "reason=%s", tf_log_q(err.msg));
    log_info("stopped", "capture=wal published_total=%llu set_aside_total=%llu", c.published,
             c.too_large);
    drop_stream(&c);
    for (size_t i = 0; i < c.n_rels; i++)
        relation_clear(&c.rels[i]);
    free(c.rels);
    free(c.commits);
    free(c.state);
    free(c.ids);
    PQfinish(c.sql);
    PQfinish(c.ob);
    outbox_batch_free(&c.batch);
    tf_pgo_decoder_free(c.dec);
    return 0;
}
