/*
 * apply.c - the worker's mini-batch transaction (see apply.h): the reads, locks and writes
 * around the batch rules of batch.c, which decide. Every vector and mixture is rounded to
 * float before it enters the statistics (batch.c), because float is what the documents
 * table stores: a later retraction then subtracts exactly what was added.
 */
#include "apply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/grow.h"
#include "base/hash.h"
#include "base/strmap.h"
#include "base/lifecycle.h"
#include "engine/lexicon.h"
#include "model/vocab_store.h"
#include "pg/pg.h"
#include "pg/retry.h"

struct applier {
    char name[128];
    tf_text *text;
    tf_vocab *vocab;
    tf_vocab *unknown;   /* this batch's new terms (used as a set) */
    tf_model model;
    nmf_delta *delta;
    model_source_fn source;
    void *source_ctx;
    double behind_since; /* since when a newer model of our epoch exists (0: none) */
    stage_clock *clock;  /* the caller's batch account (NULL: none) */
    const tf_lexicon *lexicon; /* maps Arabic terms (NULL: none): each document's language
                                * is recorded */
    int senses;          /* the lexicon lists several translations: english_usage chooses */
    int64_t *english;    /* with senses: per term id, the documents of the database that write
                          * it in a non-Arabic form (term_forms, read at each new epoch) */
    size_t n_english;
    int64_t english_epoch; /* the epoch english was read at (-1: never) */
    int64_t *seen;       /* with senses: per term id, the documents this thread counted that
                          * write it in a non-Arabic form (what term_forms may not hold yet) */
    size_t seen_cap;
};

/* A translation's usage: the documents that write it in English (any non-Arabic form), as
 * the database's term_forms held them at this epoch's start plus those this thread has
 * counted (its own may count twice: only English is counted, so no sense gains by it).
 * Never the mapped Arabic documents: a sense must not win by having been chosen. */
static int64_t english_usage(void *ctx, const char *english, size_t elen)
{
    const applier *a = ctx;
    int32_t id = a->vocab ? tf_vocab_lookup(a->vocab, english, elen) : -1;

    if (id < 0)
        return 0;
    return ((size_t)id < a->n_english ? a->english[id] : 0) +
           ((size_t)id < a->seen_cap ? a->seen[id] : 0);
}

/* A document counted in full: its terms written in English (any non-Arabic script) add to
 * their usage. A translation used in English for the first time clears the word cache, so
 * that Arabic words met before choose again (the other choices are made again at each
 * model version). */
static int note_usage(applier *a, const tf_tokens *toks, const tf_bag *bag, tf_err *err)
{
    size_t need;
    int forget = 0;

    if (!bag->n)
        return 0;
    need = (size_t)bag->ids[bag->n - 1] + 1;
    if (need > a->seen_cap) {
        size_t old = a->seen_cap;
        if (TF_GROW(a->seen, a->seen_cap, need) < 0)
            return tf_err_set(err, "out of memory");
        memset(a->seen + old, 0, (a->seen_cap - old) * sizeof(*a->seen));
    }
    for (size_t i = 0; i < bag->n; i++) {
        const tf_token *t = &toks->tok[bag->first[i]];
        int32_t id = bag->ids[i];
        if (tf_text_form_is_arabic(toks->bytes + t->form_off, t->form_len) || a->seen[id]++ ||
            ((size_t)id < a->n_english && a->english[id]))
            continue;
        forget |= tf_lexicon_is_translation(a->lexicon, toks->bytes + t->off, t->len);
    }
    if (forget)
        tf_text_forget(a->text);
    return 0;
}

applier *applier_new(const char *name, const tf_text_opts *text, tf_err *err)
{
    applier *a = calloc(1, sizeof(*a));

    if (!a) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->lexicon = text->lexicon;
    if (text->lexicon && tf_lexicon_senses(text->lexicon)) {
        tf_text_opts o = *text;
        o.lexicon_usage = english_usage;
        o.lexicon_usage_ctx = a;
        a->senses = 1;
        a->english_epoch = -1;
        a->text = tf_text_new(&o, err);
    } else {
        a->text = tf_text_new(text, err);
    }
    if (!a->text) {
        applier_free(a);
        return NULL;
    }
    return a;
}

void applier_free(applier *a)
{
    if (!a)
        return;
    tf_text_free(a->text);
    tf_vocab_free(a->vocab);
    tf_vocab_free(a->unknown);
    tf_model_clear(&a->model);
    nmf_delta_free(a->delta);
    free(a->seen);
    free(a->english);
    free(a);
}

const tf_model *applier_model(const applier *a)
{
    return &a->model;
}

const tf_vocab *applier_vocab(const applier *a)
{
    return a->vocab;
}

void applier_set_clock(applier *a, stage_clock *clock)
{
    a->clock = clock;
}

void applier_set_model_source(applier *a, model_source_fn fn, void *ctx)
{
    a->source = fn;
    a->source_ctx = ctx;
}

/* Takes the model (and its vocabulary) prepared by the source, when it is `version`. The
 * prepared vocabulary was read before the terms this thread has added since (ids are the
 * database's, so theirs lie beyond it): they are carried over, as this thread knew them.
 * Without them a translation resolved since would have no usage (english_usage looks terms
 * up by text) and an Arabic word would take a sense its English postings do not use. */
static int take_prepared(applier *a, int64_t version, tf_err *err)
{
    tf_model m;
    tf_vocab *v = NULL;

    memset(&m, 0, sizeof(m));
    if (!a->source || !version || !a->source(a->source_ctx, version, &m, &v))
        return 0;
    for (int32_t id = tf_vocab_size(v); a->vocab && id < tf_vocab_size(a->vocab); id++) {
        size_t len;
        const char *term = tf_vocab_term(a->vocab, id, &len);
        if (term && (tf_vocab_put(v, id, term, len, tf_vocab_df(a->vocab, id), err) < 0 ||
                     tf_vocab_set_language_weight(v, id, tf_vocab_language_weight(a->vocab, id),
                                                  err) < 0)) {
            tf_model_clear(&m);
            tf_vocab_free(v);
            return -1;
        }
    }
    tf_model_clear(&a->model);
    a->model = m;
    tf_vocab_free(a->vocab);
    a->vocab = v;
    return 1;
}

void applier_forget(applier *a)
{
    tf_model_clear(&a->model);
    tf_vocab_free(a->vocab);
    a->vocab = NULL;
    a->behind_since = 0;
}

/* applier_sync_model for a head already read. */
static int sync_to(applier *a, PGconn *conn, int64_t version, int64_t epoch, tf_err *err)
{
    if (a->vocab && version == a->model.version) {
        a->behind_since = 0;
        return 0;
    }
    switch (take_prepared(a, version, err)) {
    case -1:
        return -1;
    case 1:
        a->behind_since = 0;
        goto delta;
    }
    /* A refresh in our epoch: folding against our version a little longer is consistent
     * (see check_epoch) and spares this thread the decode while the upkeep thread
     * prepares the new one; after 5 s it loads the model itself. */
    if (a->source && a->vocab && a->model.version && epoch == a->model.epoch) {
        if (!a->behind_since)
            a->behind_since = tf_now();
        if (tf_now() - a->behind_since < 5.0)
            return 0;
    }
    a->behind_since = 0;
    if (version && tf_model_load(conn, 0, &a->model, err) < 0)
        return -1;
    if (!version)
        tf_model_clear(&a->model);
    if (!a->vocab) {
        a->vocab = tf_vocab_load(conn, err);
        if (!a->vocab)
            return -1;
    } else if (tf_vocab_reload_df(conn, a->vocab, a->model.n_docs ? a->model.n_docs
                                                                  : tf_vocab_docs(a->vocab), err) < 0) {
        return -1;
    }
delta:
    if (a->senses) { /* a new model version: choose translations again */
        if (a->english_epoch != a->model.epoch) { /* and at a new epoch, read the database's */
            free(a->english);
            if (tf_terms_english_docs(conn, &a->english, &a->n_english, err) < 0)
                return -1;
            a->english_epoch = a->model.epoch;
        }
        tf_text_forget(a->text);
    }
    if (a->model.version && (!a->delta || nmf_delta_k(a->delta) != a->model.k)) {
        nmf_delta_free(a->delta);
        a->delta = nmf_delta_new(a->model.k, err);
        if (!a->delta)
            return -1;
    }
    return 0;
}

int applier_sync_model(applier *a, PGconn *conn, tf_err *err)
{
    int64_t version, epoch;

    if (tf_model_head(conn, &version, &epoch, err) < 0)
        return -1;
    return sync_to(a, conn, version, epoch, err);
}

static char *strndup_str(tf_str s)
{
    char *p = malloc(s.len + 1);
    if (p) {
        memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
    }
    return p;
}

/* The payload's text columns joined by newlines (a newline separates words). */
static char *join_payload(const tf_event *ev, size_t *len)
{
    size_t total = 0, o = 0;
    char *p;

    for (size_t i = 0; i < ev->n_fields; i++)
        total += ev->fields[i].value.len + 1;
    p = malloc(total + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < ev->n_fields; i++) {
        memcpy(p + o, ev->fields[i].value.ptr, ev->fields[i].value.len);
        o += ev->fields[i].value.len;
        p[o++] = '\n';
    }
    p[o] = '\0';
    *len = o;
    return p;
}

static int count_terms(applier *a, work_item *item, tf_err *err)
{
    tf_tokens toks;

    if (tf_text_tokenize(a->text, item->text, item->text_len, &toks, err) < 0)
        return -1;
    if (toks.n == 0)
        return 1;
    item->arabic = a->lexicon ? tf_text_tokens_arabic(&toks) : -1;
    if (tf_vocab_count(a->vocab, &toks, TF_VOCAB_FIRST, &item->bag, err) < 0)
        return -1;
    item->unknown_terms = item->bag.n_unknown > 0;
    tf_buf_reset(&item->forms);
    for (size_t i = 0; !item->unknown_terms && i < item->bag.n; i++) {
        const tf_token *t = &toks.tok[item->bag.first[i]];
        tf_buf_append(&item->forms, toks.bytes + t->form_off, t->form_len);
        tf_buf_append(&item->forms, "", 1); /* each form ends with its NUL */
    }
    if (!tf_buf_ok(&item->forms))
        return tf_err_set(err, "out of memory");
    if (a->senses && !item->unknown_terms && note_usage(a, &toks, &item->bag, err) < 0)
        return -1;
    for (size_t i = 0; i < item->bag.n_unknown; i++) {
        const tf_token *t = &toks.tok[item->bag.unknown[i]];
        if (!a->unknown) {
            a->unknown = tf_vocab_new(err);
            if (!a->unknown)
                return -1;
        }
        if (tf_vocab_add(a->unknown, toks.bytes + t->off, t->len, err) < 0)
            return -1;
    }
    return 0;
}

int applier_prepare_item(applier *a, work_item *item, tf_err *err)
{
    int rc;

    item->source = item->ev.source.len ? strndup_str(item->ev.source) : strndup_str(item->ev.aggregate);
    item->doc_id = strndup_str(item->ev.aggregate_id);
    tf_bag_init(&item->bag);
    if (!item->source || !item->doc_id)
        return tf_err_set(err, "out of memory");
    if (item->ev.type == TF_EVENT_DELETED)
        return 0;
    item->text = join_payload(&item->ev, &item->text_len);
    if (!item->text)
        return tf_err_set(err, "out of memory");
    rc = count_terms(a, item, err);
    if (rc == 1)
        tf_err_set(err, "no text left after sanitation (%zu payload fields, %zu bytes)",
                   item->ev.n_fields, item->text_len);
    return rc;
}

/* Count an item's terms again against the vocabulary held now (its text is kept for it). */
static int recount(applier *a, work_item *item, tf_err *err)
{
    item->bag.n = 0;
    return count_terms(a, item, err) < 0 ? -1 : 0;
}

int applier_recount(applier *a, work_item *items, size_t n, tf_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (items[i].text && recount(a, &items[i], err) < 0) /* a deletion counts nothing */
            return -1;
    return 0;
}

int applier_resolve_terms(applier *a, PGconn *conn, work_item *items, size_t n, tf_err *err)
{
    const char **terms = NULL;
    int32_t count;
    int rc = -1;

    if (!a->unknown)
        return 0;
    count = tf_vocab_size(a->unknown);
    terms = malloc((size_t)count * sizeof(*terms));
    if (!terms)
        return tf_err_set(err, "out of memory");
    for (int32_t i = 0; i < count; i++)
        terms[i] = tf_vocab_term(a->unknown, i, NULL);
    if (tf_terms_resolve(conn, a->vocab, terms, (size_t)count, err) < 0)
        goto done;
    tf_vocab_free(a->unknown);
    a->unknown = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].unknown_terms)
            continue;
        if (recount(a, &items[i], err) < 0)
            goto done;
        if (items[i].unknown_terms) {
            tf_err_set(err, "term ids could not be resolved for document %s", items[i].doc_id);
            goto done;
        }
    }
    rc = 0;
done:
    free(terms);
    if (a->unknown) { /* on failure, the next attempt collects them again */
        tf_vocab_free(a->unknown);
        a->unknown = NULL;
    }
    return rc;
}

/* ---- the transaction ------------------------------------------------------------------ */

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* One statement with parameters (lengths and formats NULL: all text); its result in *out
 * when out is not NULL, else cleared. */
static int exec_params_bin(PGconn *conn, const char *sql, int n, const char *const *params,
                           const int *lengths, const int *formats, ExecStatusType want,
                           PGresult **out, tf_err *err)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, lengths, formats, 0);

    if (tf_pg_check(conn, res, want, err) < 0)
        return -1;
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int exec_params(PGconn *conn, const char *sql, int n, const char *const *params,
                       ExecStatusType want, PGresult **out, tf_err *err)
{
    return exec_params_bin(conn, sql, n, params, NULL, NULL, want, out, err);
}

/* The event ids of items (all, or those that are not duplicates) as a bigint[] literal
 * into arr; *count gets how many. 0, or -1 out of memory. */
static int event_ids_param(tf_buf *arr, const work_item *items, size_t n, int skip_duplicates,
                           size_t *count, tf_err *err)
{
    int64_t *ids = malloc((n + 1) * sizeof(*ids));
    size_t m = 0;

    if (!ids)
        return tf_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!skip_duplicates || items[i].outcome != ITEM_DUPLICATE)
            ids[m++] = items[i].ev.id;
    tf_pg_append_int64_array(arr, ids, m);
    free(ids);
    *count = m;
    return tf_buf_ok(arr) ? 0 : tf_err_set(err, "out of memory");
}

/* The advisory lock key of a document: FNV-1a over source, a NUL, and the id. Every worker
 * of every release computes the same key (the raw hash, not the table hash). */
static int64_t doc_lock_key(const char *source, const char *doc_id)
{
    uint64_t h = tf_fnv1a(TF_FNV1A_INIT, source, strlen(source) + 1);

    return (int64_t)tf_fnv1a(h, doc_id, strlen(doc_id));
}

/* One round trip: takes the documents' advisory locks (sorted keys, so that every worker
 * locks in the same order and none deadlocks; a key of an event that then turns out to be a
 * duplicate is locked for nothing, harmlessly) and reads which events were already
 * processed; then drops those, and the batch's own duplicates and superseded events
 * (batch_mark_duplicates). A concurrent worker's commit of one of these events after this
 * read is caught by processed_events' key (see record_batch). */
static int lock_and_mark_duplicates(PGconn *conn, work_item *items, size_t n, tf_err *err)
{
    int64_t *keys = malloc((n + 1) * sizeof(*keys)), *done_ids = NULL;
    tf_buf arr, karr;
    const char *params[2];
    PGresult *res = NULL;
    size_t n_done = 0, m;
    int rc = -1;

    tf_buf_init(&arr);
    tf_buf_init(&karr);
    if (!keys) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = doc_lock_key(items[i].source, items[i].doc_id);
    qsort(keys, n, sizeof(*keys), cmp_i64);
    tf_pg_append_int64_array(&karr, keys, n);
    if (event_ids_param(&arr, items, n, 0, &m, err) < 0)
        goto done;
    if (!tf_buf_ok(&karr)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    params[0] = arr.p;
    params[1] = karr.p;
    /* The locks are taken before the processed events are read: unnest keeps the array's
     * (sorted) order. */
    if (exec_params(conn, "select (select count(pg_advisory_xact_lock(k)) from unnest($2::bigint[]) k),"
                          " array(select event_id from topicflow.processed_events"
                          " where event_id = any($1::bigint[]))",
                    2, params, PGRES_TUPLES_OK, &res, err) < 0)
        goto done;
    if (PQntuples(res) != 1) {
        tf_err_set(err, "malformed processed events");
        goto done;
    }
    done_ids = malloc((n + 1) * sizeof(*done_ids));
    if (!done_ids) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    /* a bigint[] in text: "{}" or "{1,2,3}" (at most n: the ids asked about) */
    for (const char *p = PQgetvalue(res, 0, 1) + 1; *p && *p != '}' && n_done < n;) {
        char *end;
        done_ids[n_done++] = strtoll(p, &end, 10);
        if (end == p) {
            tf_err_set(err, "malformed processed events");
            goto done;
        }
        p = *end == ',' ? end + 1 : end;
    }
    batch_mark_duplicates(items, n, done_ids, n_done);
    rc = 0;
done:
    PQclear(res);
    free(keys);
    free(done_ids);
    tf_buf_free(&arr);
    tf_buf_free(&karr);
    return rc;
}

static int read_documents(PGconn *conn, const work_item *items, size_t n, doc_state *states,
                          tf_err *err)
{
    tf_buf src, ids;
    const char *params[2];
    PGresult *res = NULL;
    int rc = -1, first = 1;

    tf_buf_init(&src);
    tf_buf_init(&ids);
    tf_buf_append(&src, "{", 1);
    tf_buf_append(&ids, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (items[i].outcome != ITEM_PENDING)
            continue;
        if (!first) {
            tf_buf_append(&src, ",", 1);
            tf_buf_append(&ids, ",", 1);
        }
        tf_pg_append_text_element(&src, items[i].source, strlen(items[i].source));
        tf_pg_append_text_element(&ids, items[i].doc_id, strlen(items[i].doc_id));
        first = 0;
    }
    tf_buf_append(&src, "}", 1);
    tf_buf_append(&ids, "}", 1);
    params[0] = src.p;
    params[1] = ids.p;
    if (!tf_buf_ok(&src) || !tf_buf_ok(&ids) ||
        exec_params(conn,
                    "select d.source, d.doc_id, d.version, d.deleted,"
                    " coalesce(d.model_version, 0), d.term_ids, d.weights, d.topics"
                    " from topicflow.documents d"
                    " join unnest($1::text[], $2::text[]) as u(s, i)"
                    " on d.source = u.s and d.doc_id = u.i"
                    " order by d.source, d.doc_id for update of d",
                    2, params, PGRES_TUPLES_OK, &res, err) < 0)
        goto done;
    for (int r = 0; r < PQntuples(res); r++) {
        for (size_t i = 0; i < n; i++) {
            doc_state *s = &states[i];
            long long v, mv;
            size_t nw;
            if (items[i].outcome != ITEM_PENDING || strcmp(items[i].source, PQgetvalue(res, r, 0)) ||
                strcmp(items[i].doc_id, PQgetvalue(res, r, 1)))
                continue;
            tf_pg_get_int64(res, r, 2, &v);
            tf_pg_get_int64(res, r, 4, &mv);
            s->found = 1;
            s->version = v;
            s->deleted = PQgetvalue(res, r, 3)[0] == 't';
            s->model_version = mv;
            if (tf_pg_parse_int_array(PQgetvalue(res, r, 5), &s->ids, &s->n, err) < 0 ||
                tf_pg_parse_float_array(PQgetvalue(res, r, 6), &s->weights, &nw, err) < 0)
                goto done;
            if (nw != s->n) {
                tf_err_set(err, "document %s has %zu terms but %zu weights", items[i].doc_id, s->n, nw);
                goto done;
            }
            if (!PQgetisnull(res, r, 7) &&
                tf_pg_parse_float_array(PQgetvalue(res, r, 7), &s->topics, &s->n_topics, err) < 0)
                goto done;
        }
    }
    rc = 0;
done:
    PQclear(res);
    tf_buf_free(&src);
    tf_buf_free(&ids);
    return rc;
}

/* The rows a batch writes, as flat vectors sent in binary: per row its keys and the offset
 * and length of its slice of the term/count/weight vectors (topics: k per row or none). */
typedef struct upsert {
    tf_buf src, id, version, deleted, model_version, event, arabic; /* text array literals */
    int32_t *ids, *counts, *off, *len, *topic_off;
    float *weights, *topics;
    size_t n_vec, n_topics;
    size_t cap_ids, cap_counts, cap_weights, cap_topics, cap_off, cap_len, cap_topic_off;
    int n, k;
} upsert;

static void upsert_init(upsert *u, int k)
{
    tf_buf *bufs[] = {&u->src, &u->id, &u->version, &u->deleted, &u->model_version, &u->event,
                      &u->arabic};

    memset(u, 0, sizeof(*u));
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        tf_buf_init(bufs[i]);
        tf_buf_append(bufs[i], "{", 1);
    }
    u->k = k;
}

static void upsert_free(upsert *u)
{
    tf_buf *bufs[] = {&u->src, &u->id, &u->version, &u->deleted, &u->model_version, &u->event,
                      &u->arabic};

    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        tf_buf_free(bufs[i]);
    free(u->ids);
    free(u->counts);
    free(u->weights);
    free(u->topics);
    free(u->off);
    free(u->len);
    free(u->topic_off);
}

/* Appends one row; topics NULL stores SQL NULL (no model), model_version 0 likewise. */
static int upsert_add(upsert *u, const work_item *it, int deleted, const int32_t *ids,
                      const int32_t *counts, const float *weights, size_t n, const float *topics,
                      int64_t model_version, tf_err *err)
{
    const char *sep = u->n ? "," : "";
    size_t n_rows = (size_t)u->n + 1;

    if (tf_grow((void **)&u->ids, &u->cap_ids, u->n_vec + n, sizeof(int32_t)) < 0 ||
        tf_grow((void **)&u->counts, &u->cap_counts, u->n_vec + n, sizeof(int32_t)) < 0 ||
        tf_grow((void **)&u->weights, &u->cap_weights, u->n_vec + n, sizeof(float)) < 0 ||
        tf_grow((void **)&u->off, &u->cap_off, n_rows, sizeof(int32_t)) < 0 ||
        tf_grow((void **)&u->len, &u->cap_len, n_rows, sizeof(int32_t)) < 0 ||
        tf_grow((void **)&u->topic_off, &u->cap_topic_off, n_rows, sizeof(int32_t)) < 0 ||
        (topics && tf_grow((void **)&u->topics, &u->cap_topics, u->n_topics + (size_t)u->k,
                        sizeof(float)) < 0))
        return tf_err_set(err, "out of memory");
    u->off[u->n] = (int32_t)u->n_vec;
    u->len[u->n] = (int32_t)n;
    u->topic_off[u->n] = (int32_t)u->n_topics;
    if (n) {
        memcpy(u->ids + u->n_vec, ids, n * sizeof(*ids));
        memcpy(u->counts + u->n_vec, counts, n * sizeof(*counts));
        memcpy(u->weights + u->n_vec, weights, n * sizeof(*weights));
        u->n_vec += n;
    }
    if (topics) {
        memcpy(u->topics + u->n_topics, topics, (size_t)u->k * sizeof(*topics));
        u->n_topics += (size_t)u->k;
    }
    tf_buf_append(&u->src, sep, strlen(sep));
    tf_pg_append_text_element(&u->src, it->source, strlen(it->source));
    tf_buf_append(&u->id, sep, strlen(sep));
    tf_pg_append_text_element(&u->id, it->doc_id, strlen(it->doc_id));
    tf_buf_printf(&u->version, "%s%lld", sep, (long long)it->ev.version);
    tf_buf_printf(&u->deleted, "%s%s", sep, deleted ? "t" : "f");
    tf_buf_printf(&u->event, "%s%lld", sep, (long long)it->ev.id);
    tf_buf_printf(&u->arabic, "%s%s", sep, deleted || it->arabic < 0 ? "NULL" : it->arabic ? "t" : "f");
    if (topics)
        tf_buf_printf(&u->model_version, "%s%lld", sep, (long long)model_version);
    else
        tf_buf_printf(&u->model_version, "%sNULL", sep);
    u->n++;
    return 0;
}

static int upsert_run(PGconn *conn, upsert *u, tf_err *err)
{
    tf_buf *text[] = {&u->src, &u->id, &u->version, &u->deleted, &u->model_version, &u->event};
    tf_buf bin[7];
    char k[16];
    const char *params[15];
    int lengths[15] = {0}, formats[15] = {0};
    int rc = -1;

    if (u->n == 0)
        return 0;
    for (size_t i = 0; i < 7; i++)
        tf_buf_init(&bin[i]);
    for (size_t i = 0; i < 6; i++) {
        tf_buf_append(text[i], "}", 1);
        params[i] = text[i]->p;
    }
    tf_pg_append_bin_int4_array(&bin[0], u->ids, u->n_vec);
    tf_pg_append_bin_int4_array(&bin[1], u->counts, u->n_vec);
    tf_pg_append_bin_float4_array(&bin[2], u->weights, u->n_vec);
    tf_pg_append_bin_float4_array(&bin[3], u->topics, u->n_topics);
    tf_pg_append_bin_int4_array(&bin[4], u->off, (size_t)u->n);
    tf_pg_append_bin_int4_array(&bin[5], u->len, (size_t)u->n);
    tf_pg_append_bin_int4_array(&bin[6], u->topic_off, (size_t)u->n);
    for (size_t i = 0; i < 7; i++) {
        if (!tf_buf_ok(&bin[i]) || !tf_buf_ok(text[i < 6 ? i : 0])) {
            tf_err_set(err, "out of memory");
            goto done;
        }
        params[6 + i] = bin[i].p;
        lengths[6 + i] = (int)bin[i].len;
        formats[6 + i] = 1;
    }
    snprintf(k, sizeof(k), "%d", u->k);
    params[13] = k;
    tf_buf_append(&u->arabic, "}", 1);
    if (!tf_buf_ok(&u->arabic)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    params[14] = u->arabic.p;
    /* The version guard repeats, atomically, the check made under the document lock
     * (equal versions pass for replays; other equal ones never reach this statement).
     * Each row's vectors are slices of the flat binary arrays. */
    rc = exec_params_bin(conn,
        "insert into topicflow.documents as d (source, doc_id, version, deleted, term_ids, counts,"
        " weights, topics, model_version, event_id, updated_at, arabic)"
        " select s, i, v, del, ($7::int4[])[o + 1 : o + n], ($8::int4[])[o + 1 : o + n],"
        " ($9::float4[])[o + 1 : o + n],"
        " case when mv is null then null else ($10::float4[])[t + 1 : t + $14::int] end,"
        " mv, e, clock_timestamp(), ar"
        " from unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::bigint[], $6::bigint[],"
        " $11::int4[], $12::int4[], $13::int4[], $15::bool[]) as u(s, i, v, del, mv, e, o, n, t, ar)"
        " on conflict (source, doc_id) do update set version = excluded.version,"
        " deleted = excluded.deleted, term_ids = excluded.term_ids, counts = excluded.counts,"
        " weights = excluded.weights, topics = excluded.topics,"
        " model_version = excluded.model_version, event_id = excluded.event_id,"
        " updated_at = excluded.updated_at, arabic = excluded.arabic"
        " where d.version <= excluded.version",
        15, params, lengths, formats, PGRES_COMMAND_OK, NULL, err);
done:
    for (size_t i = 0; i < 7; i++)
        tf_buf_free(&bin[i]);
    return rc;
}

/* The batch's (term id, form) pairs counted: one entry per distinct pair with the number of
 * the batch's stored documents that wrote the term that way. A batch of similar postings
 * repeats most pairs (sample postings: 39,198 pairs in 500 documents, 2,173 distinct), and
 * the pairs were most of the batch's PostgreSQL time (array parsing, TOAST compression, the
 * fold) before they were counted here. Key: the term id's 4 bytes, then the form; val: the
 * count. */
static int form_count(tf_strmap *map, tf_buf *key, int32_t id, const char *form, size_t len,
                      tf_err *err)
{
    tf_strmap_slot *slot;

    tf_buf_reset(key);
    tf_buf_append(key, (const char *)&id, 4);
    tf_buf_append(key, form, len);
    if (!tf_buf_ok(key) || !(slot = tf_strmap_put(map, tf_hash_bytes(key->p, key->len), key->p,
                                                  key->len)))
        return tf_err_set(err, "out of memory");
    slot->val++;
    return 0;
}

/* One statement for the batch's records: the surface forms of the documents it stored,
 * counted per (term id, form), one row per batch, appended like the statistics deltas so
 * that no worker shares a hot row (the upkeep thread folds them into term_forms, sql/008
 * and 013); the events as processed; this worker's activity. */
static int record_batch(PGconn *conn, const char *name, const work_item *items, size_t n,
                        const batch_result *r, tf_err *err)
{
    tf_strmap pairs;
    tf_buf key, ids, forms, counts, events;
    char count[24];
    const char *params[6];
    int lengths[6] = {0}, formats[6] = {0};
    int rc = -1;
    size_t m = 0, n_pairs = 0;
    int32_t *pair_ids = NULL, *pair_counts = NULL;

    memset(&pairs, 0, sizeof(pairs));
    tf_buf_init(&key);
    tf_buf_init(&ids);
    tf_buf_init(&forms);
    tf_buf_init(&counts);
    tf_buf_init(&events);
    if (tf_strmap_init(&pairs, 1024, 16384) < 0) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (int32_t row = 0; row < r->add.X.n_rows; row++) {
        const work_item *it = &items[r->add_item[row]];
        const char *form = it->forms.p;
        for (size_t i = 0; i < it->bag.n; i++) {
            size_t len = strlen(form);
            if (form_count(&pairs, &key, it->bag.ids[i], form, len, err) < 0)
                goto done;
            form += len + 1;
        }
    }
    pair_ids = malloc((pairs.count + 1) * sizeof(*pair_ids));
    pair_counts = malloc((pairs.count + 1) * sizeof(*pair_counts));
    if (!pair_ids || !pair_counts) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    tf_buf_append(&forms, "{", 1);
    for (size_t i = 0; i <= pairs.mask; i++) {
        const tf_strmap_slot *s = &pairs.slots[i];
        const char *k = tf_strmap_at(&pairs, s->key_off);
        if (!s->key_len)
            continue;
        if (n_pairs)
            tf_buf_append(&forms, ",", 1);
        tf_pg_append_text_element(&forms, k + 4, s->key_len - 4);
        memcpy(&pair_ids[n_pairs], k, 4);
        pair_counts[n_pairs++] = s->val;
    }
    tf_buf_append(&forms, "}", 1);
    tf_pg_append_bin_int4_array(&ids, pair_ids, n_pairs);
    tf_pg_append_bin_int4_array(&counts, pair_counts, n_pairs);
    if (event_ids_param(&events, items, n, 1, &m, err) < 0)
        goto done;
    if (!tf_buf_ok(&ids) || !tf_buf_ok(&forms) || !tf_buf_ok(&counts)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    snprintf(count, sizeof(count), "%zu", n);
    params[0] = n_pairs ? ids.p : NULL;
    lengths[0] = (int)ids.len;
    formats[0] = 1;
    params[1] = n_pairs ? forms.p : NULL;
    params[2] = n_pairs ? counts.p : NULL;
    lengths[2] = (int)counts.len;
    formats[2] = 1;
    params[3] = events.p;
    params[4] = name;
    params[5] = count;
    /* A unique violation on processed_events means another worker processed one of these
     * events since lock_and_mark_duplicates: the batch rolls back and its retry drops it as
     * a duplicate (the retry policy counts 23505 as transient for this reason). */
    rc = exec_params_bin(conn,
        "with forms as (insert into topicflow.term_form_deltas (term_ids, forms, counts)"
        "  select $1::int4[], $2::text[], $3::int4[] where $1::int4[] is not null),"
        " processed as (insert into topicflow.processed_events (event_id)"
        "  select unnest($4::bigint[]))"
        " insert into topicflow.worker_activity (worker, started_at, last_batch_at, events)"
        " values ($5, now(), now(), $6::bigint) on conflict (worker) do update"
        " set last_batch_at = now(), events = topicflow.worker_activity.events + $6::bigint",
        6, params, lengths, formats, PGRES_COMMAND_OK, NULL, err);
done:
    tf_strmap_free(&pairs);
    free(pair_ids);
    free(pair_counts);
    tf_buf_free(&key);
    tf_buf_free(&ids);
    tf_buf_free(&forms);
    tf_buf_free(&counts);
    tf_buf_free(&events);
    return rc;
}

/* The rows to store: deletions as tombstones, new vectors with their mixtures. */
static int fill_upsert(const applier *a, const work_item *items, size_t n, const batch_result *r,
                       upsert *up, tf_err *err)
{
    const tf_model *m = &a->model;
    float *hq = malloc((size_t)(m->k ? m->k : 1) * sizeof(*hq));
    int rc = -1;

    if (!hq)
        return tf_err_set(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (items[i].outcome == ITEM_APPLIED && items[i].ev.type == TF_EVENT_DELETED &&
            upsert_add(up, &items[i], 1, NULL, NULL, NULL, 0, NULL, 0, err) < 0)
            goto done;
    for (int32_t row = 0; row < r->add.X.n_rows; row++) {
        const work_item *it = &items[r->add_item[row]];
        const float *x = r->add.X.val + r->add.X.row_ptr[row];
        for (int j = 0; m->version && j < m->k; j++)
            hq[j] = (float)r->add.H[(size_t)row * (size_t)m->k + (size_t)j];
        if (upsert_add(up, it, 0, it->bag.ids, it->bag.counts, x, it->bag.n,
                       m->version ? hq : NULL, m->version, err) < 0)
            goto done;
    }
    rc = 0;
done:
    free(hq);
    return rc;
}

/*
 * A document folded against a newer model than ours is fine when that model belongs to our
 * epoch (our delta retracts from the same statistics). If a refit started a new epoch, our
 * delta could not retract its contribution from the new statistics: roll back and reload.
 * The head is read after the documents are locked, and a refold cannot touch locked
 * documents, so a newer epoch that matters is always seen here.
 */
static int check_epoch(applier *a, PGconn *conn, const doc_state *states, size_t n, tf_err *err)
{
    int64_t version, epoch;
    int newer = 0;

    for (size_t i = 0; i < n; i++)
        newer |= states[i].found && states[i].model_version > a->model.version;
    if (!newer)
        return 0;
    if (tf_model_head(conn, &version, &epoch, err) < 0)
        return -1;
    if (a->model.version && epoch == a->model.epoch)
        return 0;
    tf_err_set(err, "the model moved to epoch %lld during the batch (ours: %lld)",
               (long long)epoch, (long long)a->model.epoch);
    snprintf(err->code, sizeof(err->code), "%s", TF_CODE_STALE_MODEL);
    return -1;
}

int applier_apply(applier *a, PGconn *conn, work_item *items, size_t n, apply_stats *stats,
                  tf_err *err)
{
    doc_state *states = calloc(n + 1, sizeof(*states));
    batch_result res;
    batch_model bm;
    upsert up;
    int64_t head_version, head_epoch;
    int rc = -1;

    memset(stats, 0, sizeof(*stats));
    batch_result_init(&res, 0);
    upsert_init(&up, 0);
    for (size_t i = 0; i < n; i++)
        items[i].outcome = ITEM_PENDING;
    if (!states) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    if (tf_model_begin_head(conn, &head_version, &head_epoch, err) < 0 ||
        sync_to(a, conn, head_version, head_epoch, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_SYNC);
    bm = (batch_model){a->model.version, a->model.epoch, a->model.k, a->model.n_terms,
                       a->model.W, a->model.G};
    batch_result_init(&res, a->model.k);
    up.k = a->model.k;
    if (lock_and_mark_duplicates(conn, items, n, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_LOCK);
    if (read_documents(conn, items, n, states, err) < 0 || check_epoch(a, conn, states, n, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_READ);
    if (batch_compute(items, n, states, &bm, a->vocab, &res, err) < 0 ||
        fill_upsert(a, items, n, &res, &up, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_FOLD);
    if (upsert_run(conn, &up, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_UPSERT);
    if (up.n > 0) {
        nmf_delta *d = NULL;
        if (a->model.version) {
            d = a->delta;
            nmf_delta_clear(d);
            if ((res.retract.X.n_rows && nmf_delta_add(d, &res.retract.X, res.retract.H, -1.0, err) < 0) ||
                (res.add.X.n_rows && nmf_delta_add(d, &res.add.X, res.add.H, 1.0, err) < 0))
                goto fail;
        }
        stage_clock_lap(a->clock, STAGE_DELTA);
        if (tf_model_write_delta(conn, a->name, a->model.version, res.n_docs, d, res.df.terms,
                                 res.df.deltas, res.df.n, err) < 0)
            goto fail;
        stage_clock_lap(a->clock, STAGE_DELTA_SQL);
    }
    if (record_batch(conn, a->name, items, n, &res, err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_RECORD);
    if (tf_pg_command(conn, "commit", err) < 0)
        goto fail;
    stage_clock_lap(a->clock, STAGE_COMMIT);
    stats->applied = res.applied;
    stats->duplicates = res.duplicates;
    stats->stale = res.stale;
    stats->model_version = a->model.version;
    rc = 0;
    goto done;
fail:
    if (tf_pg_connection_ok(conn))
        PQclear(PQexec(conn, "rollback"));
done:
    for (size_t i = 0; states && i < n; i++)
        doc_state_clear(&states[i]);
    free(states);
    batch_result_free(&res);
    upsert_free(&up);
    return rc;
}
