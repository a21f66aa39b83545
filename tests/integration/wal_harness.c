/*
 * wal_harness.c - capture wal test helpers: the slot's progress from pg_replication_slots,
 * the queue read back through the event codec, and the accounting over what was read.
 */
#include "wal_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "amqp/topology.h"
#include "wire/event_codec.h"

void wal_track_internships(harness *h)
{
    harness_sql(h, "select topicflow.track('public.internships', 'id',"
                   " array['title', 'description', 'skills'], 'internship', 'wal')");
}

#define CONFIRMED_PAST                                                                          \
    "select coalesce((select (confirmed_flush_lsn >= $1::pg_lsn)::int from pg_replication_slots" \
    " where slot_name = topicflow.capture_slot()), 0)::text"

int wal_caught_up(harness *h)
{
    char *lsn = harness_query_text(h, "select pg_current_wal_lsn()::text where $1::text is null", NULL);
    char *ok = harness_query_text(h, CONFIRMED_PAST, lsn);
    int r = ok && strcmp(ok, "1") == 0;

    free(lsn);
    free(ok);
    return r;
}

void wal_wait_caught_up(harness *h, double timeout_s)
{
    char *lsn = harness_query_text(h, "select pg_current_wal_lsn()::text where $1::text is null", NULL);
    double end = harness_now() + timeout_s;

    for (;;) {
        char *ok = harness_query_text(h, CONFIRMED_PAST, lsn);
        int done = ok && strcmp(ok, "1") == 0;
        free(ok);
        if (done)
            break;
        if (harness_now() > end)
            fail_msg("the slot did not confirm %s within %.0f s", lsn, timeout_s);
        usleep(50000);
    }
    free(lsn);
}

long long wal_queue_depth(harness *h)
{
    tf_broker *b = harness_broker(h);
    uint32_t messages = 0, consumers = 0;
    int exists = 0;
    tf_err err;

    if (tf_broker_queue_probe(b, TF_QUEUE_NMF, &exists, &messages, &consumers, &err) < 0)
        fail_msg("%s", err.msg);
    tf_broker_close(b);
    return exists ? (long long)messages : 0;
}

static void copy_field(char *out, size_t size, const tf_str *s)
{
    size_t n = s ? (s->len < size - 1 ? s->len : size - 1) : 0;

    if (n)
        memcpy(out, s->ptr, n);
    out[n] = '\0';
}

size_t wal_drain(harness *h, wal_got *g, size_t cap, double idle_s)
{
    tf_broker *b = harness_broker(h);
    uint64_t unacked = 0, last_tag = 0;
    size_t n = 0;
    tf_err err;

    /* A consumer with a prefetch window and acks in bulk: 100,000 messages in seconds. */
    if (tf_broker_qos(b, 2000, &err) < 0 || tf_broker_consume(b, TF_QUEUE_NMF, &err) < 0)
        fail_msg("%s", err.msg);
    for (;;) {
        amqp_envelope_t env;
        tf_event ev;
        int rc = tf_broker_next(b, &env, (int)(idle_s * 1000), &err);
        if (rc < 0)
            fail_msg("%s", err.msg);
        if (rc == 0)
            break;
        if (tf_event_decode(env.message.body.bytes, env.message.body.len, TF_EVENT_DEFAULT_LIMIT,
                            &ev, &err) != TF_CODEC_OK)
            fail_msg("undecodable message: %s", err.msg);
        if (n < cap) {
            wal_got *w = &g[n++];
            const tf_str *skills = tf_event_field_get(&ev, "skills");
            const tf_str *desc = tf_event_field_get(&ev, "description");
            memset(w, 0, sizeof(*w));
            w->id = ev.id;
            w->version = ev.version;
            snprintf(w->type, sizeof(w->type), "%s", tf_event_type_name(ev.type));
            copy_field(w->doc, sizeof(w->doc), &ev.aggregate_id);
            copy_field(w->title, sizeof(w->title), tf_event_field_get(&ev, "title"));
            copy_field(w->skills, sizeof(w->skills), skills);
            w->has_skills = skills != NULL;
            w->description_len = desc ? desc->len : 0;
        }
        tf_event_clear(&ev);
        last_tag = env.delivery_tag;
        amqp_destroy_envelope(&env);
        if (++unacked == 500) {
            if (tf_broker_ack(b, last_tag, 1, &err) < 0)
                fail_msg("%s", err.msg);
            unacked = 0;
        }
    }
    if (unacked && tf_broker_ack(b, last_tag, 1, &err) < 0)
        fail_msg("%s", err.msg);
    tf_broker_close(b);
    return n;
}

int wal_is(const wal_got *g, const char *type, const char *doc, const char *title)
{
    if (strcmp(g->type, type) || strcmp(g->doc, doc) || strcmp(g->title, title)) {
        print_message("got %s %s '%s' (id %lld), want %s %s '%s'\n", g->type, g->doc, g->title,
                      (long long)g->id, type, doc, title);
        return 0;
    }
    return g->id == g->version && g->id >= (INT64_C(1) << 62);
}

static int by_id(const void *a, const void *b)
{
    const wal_got *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The distinct events sorted by id (caller frees); *m gets their count. */
static wal_got *distinct(const wal_got *g, size_t n, size_t *m)
{
    wal_got *s = malloc((n ? n : 1) * sizeof(*s));
    size_t k = 0;

    memcpy(s, g, n * sizeof(*s));
    qsort(s, n, sizeof(*s), by_id);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || s[k - 1].id != s[i].id)
            s[k++] = s[i];
    *m = k;
    return s;
}

size_t wal_distinct_ids(const wal_got *g, size_t n)
{
    size_t m;
    free(distinct(g, n, &m));
    return m;
}

size_t wal_count_type(const wal_got *g, size_t n, const char *type)
{
    size_t m, c = 0;
    wal_got *s = distinct(g, n, &m);

    for (size_t i = 0; i < m; i++)
        c += strcmp(s[i].type, type) == 0;
    free(s);
    return c;
}

size_t wal_shared_positions(const wal_got *g, size_t n)
{
    size_t m, c = 0;
    wal_got *s = distinct(g, n, &m);

    for (size_t i = 1; i < m; i++)
        c += s[i].id - s[i - 1].id < 24; /* a WAL record is at least 24 bytes */
    free(s);
    return c;
}

typedef struct seen {
    const char *doc;
    size_t pos;
    int64_t id, version;
} seen;

static int by_id_then_pos(const void *a, const void *b)
{
    const seen *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int by_doc_then_pos(const void *a, const void *b)
{
    const seen *x = a, *y = b;
    int c = strcmp(x->doc, y->doc);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

void wal_assert_commit_order(const wal_got *g, size_t n)
{
    seen *s = malloc((n ? n : 1) * sizeof(*s));
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        s[i] = (seen){g[i].doc, i, g[i].id, g[i].version};
    qsort(s, n, sizeof(*s), by_id_then_pos);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || s[k - 1].id != s[i].id)
            s[k++] = s[i];
    qsort(s, k, sizeof(*s), by_doc_then_pos);
    for (size_t i = 1; i < k; i++)
        if (strcmp(s[i].doc, s[i - 1].doc) == 0 && s[i].version <= s[i - 1].version)
            fail_msg("document %s: version %lld delivered after %lld", s[i].doc,
                     (long long)s[i].version, (long long)s[i - 1].version);
    free(s);
}

void wal_copy_jobs(harness *h, int n)
{
    PGresult *res = PQexec(h->pg, "copy jobs (code, body) from stdin");
    char line[128];

    assert_int_equal(PQresultStatus(res), PGRES_COPY_IN);
    PQclear(res);
    for (int i = 0; i < n; i++) {
        int len = snprintf(line, sizeof(line), "job-%d\tbackend developer intern %d\n", i, i);
        assert_int_equal(PQputCopyData(h->pg, line, len), 1);
    }
    assert_int_equal(PQputCopyEnd(h->pg, NULL), 1);
    res = PQgetResult(h->pg);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    PQclear(res);
    PQclear(PQgetResult(h->pg));
}

long wal_peak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}
