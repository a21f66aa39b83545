/*
 * model_update.c - refresh, refit and refold (see model_update.h for the invariant they
 * keep). Documents are read as (term_ids, counts) and weighted here with the document
 * frequencies of the moment, so a refit sees the whole corpus with one consistent IDF.
 */
#include "model/update.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "engine/corpus.h"
#include "engine/model_blob.h"
#include "engine/coherence.h"
#include "engine/topic_match.h"
#include "model/vocab_store.h"
#include "doc_rows.h"
#include "pg/pg.h"

#define LOCK_SQL_ARGS TF_LOCK_MODEL_SQL

tf_update_opts tf_update_defaults(void)
{
    tf_update_opts o;

    memset(&o, 0, sizeof(o));
    o.k = 20;
    o.max_iter = 200;
    o.tol = 1e-4;
    o.seed = 42;
    o.threads = 1;
    o.refresh_passes = 3;
    o.top_terms = 20;
    o.keep_versions = 3;
    o.min_df = 2;
    o.max_df = 0.95;
    o.reason = "operator";
    return o;
}

static void rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "rollback"));
}

static int query_int64(PGconn *conn, const char *sql, int nparams, const char *const *params,
                       long long *out, tf_err *err)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (PQntuples(res) != 1 || tf_pg_get_int64(res, 0, 0, out) < 0) {
        PQclear(res);
        return tf_err_set(err, "unexpected result of: %.60s", sql);
    }
    PQclear(res);
    return 0;
}

int tf_model_stale_count(PGconn *conn, int64_t epoch, long long *n, tf_err *err)
{
    char e[32];
    const char *params[1] = {e};

    snprintf(e, sizeof(e), "%lld", (long long)epoch);
    return query_int64(conn, "select count(*) from topicflow.documents"
                             " where not deleted and coalesce(model_version, 0) < $1",
                       1, params, n, err);
}

/* The model's vocabulary as of a refresh: the same rule as the refit's, on the document
 * frequencies the deltas just brought, so a term enters the model once it is in min_df
 * documents and no pruned term comes back through the statistics. */
static uint8_t *refresh_mask(const tf_vocab *v, int32_t n_terms, int64_t n_docs,
                             const tf_update_opts *opts, int k, tf_err *err)
{
    int32_t *df = malloc(((size_t)n_terms + 1) * sizeof(*df));
    uint8_t *keep = malloc((size_t)n_terms + 1);

    if (!df || !keep) {
        free(df);
        free(keep);
        tf_err_set(err, "out of memory");
        return NULL;
    }
    for (int32_t t = 0; t < n_terms; t++)
        df[t] = (int32_t)tf_vocab_df(v, t);
    tf_corpus_keep_terms(df, n_terms, n_docs, opts->min_df, opts->max_df, k, keep);
    free(df);
    return keep;
}

int32_t tf_model_kept_terms(const tf_vocab *v, int64_t n_docs, const tf_update_opts *opts, int k,
                            tf_err *err)
{
    int32_t n_terms = tf_vocab_size(v), kept = 0;
    uint8_t *keep = refresh_mask(v, n_terms, n_docs, opts, k, err);

    if (!keep)
        return -1;
    for (int32_t t = 0; t < n_terms; t++)
        kept += keep[t] != 0;
    free(keep);
    return kept;
}

/* ---- refresh ------------------------------------------------------------------------- */

typedef struct df_acc {
    int32_t *delta; /* per term id */
    int32_t size;
} df_acc;

static int df_add(df_acc *acc, const char *terms_text, const char *deltas_text, tf_err *err)
{
    int32_t *terms = NULL, *deltas = NULL;
    size_t n = 0, nd = 0;
    int rc = -1;

    if (tf_pg_parse_int_array(terms_text, &terms, &n, err) < 0 ||
        tf_pg_parse_int_array(deltas_text, &deltas, &nd, err) < 0)
        goto done;
    if (n != nd) {
        tf_err_set(err, "delta with %zu df terms but %zu df values", n, nd);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (terms[i] < 0) {
            tf_err_set(err, "negative term id in a delta");
            goto done;
        }
        if (terms[i] >= acc->size) {
            int32_t size = acc->size ? acc->size : 1024;
            int32_t *d;
            while (size <= terms[i])
                size *= 2;
            d = realloc(acc->delta, (size_t)size * sizeof(*d));
            if (!d) {
                tf_err_set(err, "out of memory");
                goto done;
            }
            memset(d + acc->size, 0, (size_t)(size - acc->size) * sizeof(*d));
            acc->delta = d;
            acc->size = size;
        }
        acc->delta[terms[i]] += deltas[i];
    }
    rc = 0;
done:
    free(terms);
    free(deltas);
    return rc;
}

static int df_apply(PGconn *conn, const df_acc *acc, tf_err *err)
{
    tf_buf ids, deltas;
    const char *params[2];
    int rc = -1, first = 1;
    PGresult *res;

    tf_buf_init(&ids);
    tf_buf_init(&deltas);
    tf_buf_append(&ids, "{", 1);
    tf_buf_append(&deltas, "{", 1);
    for (int32_t t = 0; t < acc->size; t++) {
        if (!acc->delta[t])
            continue;
        tf_buf_printf(&ids, first ? "%d" : ",%d", t);
        tf_buf_printf(&deltas, first ? "%d" : ",%d", acc->delta[t]);
        first = 0;
    }
    tf_buf_append(&ids, "}", 1);
    tf_buf_append(&deltas, "}", 1);
    if (!tf_buf_ok(&ids) || !tf_buf_ok(&deltas)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    params[0] = ids.p;
    params[1] = deltas.p;
    res = PQexecParams(conn,
                       "update topicflow.terms t set df = t.df + u.d"
                       " from unnest($1::int[], $2::int[]) as u(id, d) where t.id = u.id",
                       2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    rc = 0;
done:
    tf_buf_free(&ids);
    tf_buf_free(&deltas);
    return rc;
}

/* Reads every visible delta: sums df and n_docs, applies the statistics of those based on
 * the current epoch to m->stats (when a model exists). *max_id gets the largest id. */
static int fold_deltas(PGconn *conn, tf_model *m, df_acc *acc, long long *n_docs,
                       long long *max_id, long *folded, tf_err *err)
{
    PGresult *res;
    long long n_terms;
    int rows;

    /* The vocabulary bounds the term ids of a delta (its terms are committed with it or
     * before, and never deleted): a larger id is a corrupt delta, refused by the decoder. */
    if (query_int64(conn, "select coalesce(max(id), -1) + 1 from topicflow.terms", 0, NULL,
                    &n_terms, err) < 0)
        return -1;
    /* Binary results: a delta is tens of kilobytes of doubles, and hex-escaping every byte
     * (server) and unescaping it (client) took most of a refresh (~2 ms per delta). The
     * other columns are cast to text, whose binary form is the text itself (renamed, so
     * that "order by id" still means the bigint column, not its text). */
    res = PQexecParams(conn, "select id::text as id_text, base_version::text, n_docs::text,"
                             " delta, df_terms::text, df_deltas::text"
                             " from topicflow.model_deltas order by id",
                       0, NULL, NULL, NULL, NULL, 1);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    rows = PQntuples(res);
    *n_docs = 0;
    *max_id = 0;
    *folded = 0;
    for (int r = 0; r < rows; r++) {
        long long id, base, docs;
        if (tf_pg_get_int64(res, r, 0, &id) < 0 || tf_pg_get_int64(res, r, 1, &base) < 0 ||
            tf_pg_get_int64(res, r, 2, &docs) < 0) {
            tf_err_set(err, "malformed model_deltas row");
            goto fail;
        }
        if (id > *max_id)
            *max_id = id;
        *n_docs += docs;
        if (df_add(acc, PQgetvalue(res, r, 4), PQgetvalue(res, r, 5), err) < 0)
            goto fail;
        /* A delta folded against an older epoch describes documents a refit made stale;
         * they come back through refold, so its statistics are dropped (its df is not). */
        if (m->version && base >= m->epoch && !PQgetisnull(res, r, 3)) {
            nmf_delta *d = model_blob_decode_delta((const uint8_t *)PQgetvalue(res, r, 3),
                                                   (size_t)PQgetlength(res, r, 3),
                                                   (int32_t)n_terms, err);
            if (!d)
                goto fail;
            if (nmf_delta_k(d) != m->k || nmf_stats_apply(m->stats, d, err) < 0) {
                if (nmf_delta_k(d) != m->k)
                    tf_err_set(err, "delta %lld has k=%d, the model k=%d", id, nmf_delta_k(d), m->k);
                nmf_delta_free(d);
                goto fail;
            }
            nmf_delta_free(d);
            (*folded)++;
        }
    }
    PQclear(res);
    return rows;
fail:
    PQclear(res);
    return -1;
}

int tf_model_refresh(PGconn *conn, const tf_update_opts *opts, long min_deltas,
                     int64_t *new_version, tf_err *err)
{
    tf_model m;
    tf_vocab *v = NULL;
    df_acc acc = {NULL, 0};
    long long pending, n_docs, max_id, stale = 0, locked;
    long folded;
    char max_s[32], stats[160];
    const char *params[1] = {max_s};
    PGresult *res;
    uint8_t *keep = NULL;
    int rows, rc = -1;

    memset(&m, 0, sizeof(m));
    *new_version = 0;
    /* Repeatable read: the deltas summed are exactly the deltas deleted. */
    if (tf_pg_command(conn, "begin isolation level repeatable read", err) < 0)
        return -1;
    if (query_int64(conn, "select pg_try_advisory_xact_lock(" LOCK_SQL_ARGS ")::int", 0, NULL,
                    &locked, err) < 0)
        goto fail;
    if (!locked)
        goto skip;
    if (query_int64(conn, "select count(*) from topicflow.model_deltas", 0, NULL, &pending,
                    err) < 0)
        goto fail;
    if (pending < min_deltas || pending == 0)
        goto skip;
    if (tf_model_load(conn, 1, &m, err) < 0)
        goto fail;
    if (m.version && tf_model_stale_count(conn, m.epoch, &stale, err) < 0)
        goto fail;
    if (stale > 0)
        goto skip; /* a refit's refold is under way: W waits for the whole corpus */
    rows = fold_deltas(conn, &m, &acc, &n_docs, &max_id, &folded, err);
    if (rows < 0)
        goto fail;
    snprintf(max_s, sizeof(max_s), "%lld", max_id);
    res = PQexecParams(conn, "delete from topicflow.model_deltas where id <= $1", 1, NULL,
                       params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto fail;
    PQclear(res);
    if (df_apply(conn, &acc, err) < 0)
        goto fail;
    if (m.version) {
        int32_t n_terms = nmf_stats_n_terms(m.stats);
        if (n_terms > m.n_terms && nmf_w_resize(&m.W, m.n_terms, n_terms, m.k, err) < 0)
            goto fail;
        m.n_terms = n_terms;
        v = tf_vocab_load(conn, err);
        if (!v)
            goto fail;
        keep = refresh_mask(v, m.n_terms, m.n_docs + n_docs, opts, m.k, err);
        if (!keep)
            goto fail;
        if (nmf_refresh(m.W, m.n_terms, m.k, m.stats, opts->refresh_passes, keep, err) < 0)
            goto fail;
        m.version++;
        m.n_docs += n_docs;
        snprintf(stats, sizeof(stats), "{\"deltas\": %d, \"deltas_folded\": %ld}", rows, folded);
        if (tf_model_save(conn, &m, "refresh", v, opts->top_terms, stats, opts->keep_versions,
                          err) < 0)
            goto fail;
        *new_version = m.version;
    }
    if (tf_pg_command(conn, "commit", err) < 0)
        goto fail;
    rc = 1;
    goto done;
skip:
    rollback(conn);
    rc = 0;
    goto done;
fail:
    rollback(conn);
    tf_err_prefix(err, "model refresh");
    rc = -1;
done:
    tf_model_clear(&m);
    tf_vocab_free(v);
    free(keep);
    free(acc.delta);
    return rc;
}

/* ---- refit --------------------------------------------------------------------------- */

typedef struct snapshot {
    tf_vocab *v;
    tf_csr X;              /* tf-idf rows of every live document */
    tf_model prev;         /* the previous model (W only), version 0 when none */
    tf_buf delta_ids;      /* "{...}" of the deltas visible in the snapshot */
    int32_t *df;           /* recomputed document frequencies, v's size */
    int8_t *arabic;        /* per row of X: its recorded language (1 Arabic, 0 not, -1 none) */
    float *language;       /* per term: its language weight (engine/corpus.h), v's size */
    double language_strength; /* how much of the language rule applied (engine/corpus.h) */
} snapshot;

static void snapshot_free(snapshot *s)
{
    tf_vocab_free(s->v);
    csr_free(&s->X);
    tf_model_clear(&s->prev);
    tf_buf_free(&s->delta_ids);
    free(s->df);
    free(s->arabic);
    free(s->language);
}

static int read_snapshot(PGconn *conn, snapshot *s, tf_err *err)
{
    PGresult *res = NULL;
    int32_t n_terms;
    int rc = -1;

    if (tf_pg_command(conn, "begin isolation level repeatable read read only", err) < 0)
        return -1;
    s->v = tf_vocab_load(conn, err);
    if (!s->v)
        goto done;
    if (tf_model_load(conn, 0, &s->prev, err) < 0)
        goto done;
    res = PQexec(conn, "select term_ids, counts, arabic from topicflow.documents where not deleted"
                       " order by source, doc_id");
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto done;
    }
    n_terms = tf_vocab_size(s->v);
    if (tf_doc_rows_csr(res, 0, 1, n_terms, &s->X, err) < 0)
        goto done;
    s->arabic = malloc((size_t)PQntuples(res) + 1);
    if (!s->arabic) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < PQntuples(res); r++)
        s->arabic[r] = PQgetisnull(res, r, 2) ? -1 : PQgetvalue(res, r, 2)[0] == 't';
    PQclear(res);
    res = PQexec(conn, "select coalesce(array_agg(id), '{}') from topicflow.model_deltas");
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto done;
    }
    tf_buf_append(&s->delta_ids, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    rc = tf_pg_command(conn, "commit", err);
done:
    PQclear(res);
    if (rc < 0)
        rollback(conn);
    return rc;
}

/* Document frequencies and language weights recounted from the snapshot's documents, then
 * tf-idf weights. */
static int recount_and_weight(snapshot *s, tf_err *err)
{
    int32_t n_terms = tf_vocab_size(s->v);

    s->df = calloc((size_t)n_terms + 1, sizeof(*s->df));
    s->language = malloc(((size_t)n_terms + 1) * sizeof(*s->language));
    if (!s->df || !s->language)
        return tf_err_set(err, "out of memory");
    for (int64_t i = 0; i < csr_nnz(&s->X); i++)
        s->df[s->X.col_idx[i]]++;
    if (tf_corpus_language_weights(&s->X, s->arabic, s->language, &s->language_strength, err) < 0)
        return -1;
    for (int32_t t = 0; t < n_terms; t++)
        if (tf_vocab_term(s->v, t, NULL) &&
            (tf_vocab_set_df(s->v, t, s->df[t], err) < 0 ||
             tf_vocab_set_language_weight(s->v, t, s->language[t], err) < 0))
            return -1;
    tf_vocab_set_docs(s->v, s->X.n_rows);
    tf_vocab_weight_csr(s->v, &s->X);
    return 0;
}

/* Reorders the columns of W (n_terms × k) so that new topic j gets the id of its best
 * match in the previous model; unmatched topics take the ids left over, in order.
 * by_id[id] (k entries) gets the cosine of topic id with its match, -1 when new. */
static int keep_topic_ids(const snapshot *s, double *W, int32_t n_terms, int k, double *mean,
                          double *by_id, tf_err *err)
{
    int *map = malloc((size_t)k * sizeof(int)), *taken = calloc((size_t)k, sizeof(int));
    double *sim = malloc((size_t)k * sizeof(double)), *copy = NULL, total = 0;
    int next = 0, matched = 0, rc = -1;

    *mean = -1;
    if (!map || !taken || !sim)
        goto oom;
    if (topic_match(s->prev.W, s->prev.n_terms, s->prev.k, W, n_terms, k, map, sim, err) < 0)
        goto done;
    for (int j = 0; j < k; j++) {
        if (map[j] >= k) /* the previous model had more topics: that id is gone */
            map[j] = -1;
        if (map[j] >= 0) {
            taken[map[j]] = 1;
            total += sim[j];
            matched++;
        }
    }
    for (int j = 0; j < k; j++)
        by_id[j] = -1;
    for (int j = 0; j < k; j++) {
        if (map[j] >= 0) {
            by_id[map[j]] = sim[j];
            continue;
        }
        while (taken[next])
            next++;
        map[j] = next;
        taken[next] = 1;
    }
    copy = malloc((size_t)n_terms * (size_t)k * sizeof(double));
    if (!copy)
        goto oom;
    memcpy(copy, W, (size_t)n_terms * (size_t)k * sizeof(double));
    for (int32_t t = 0; t < n_terms; t++)
        for (int j = 0; j < k; j++)
            W[(size_t)t * (size_t)k + (size_t)map[j]] = copy[(size_t)t * (size_t)k + (size_t)j];
    *mean = matched ? total / matched : -1;
    rc = 0;
    goto done;
oom:
    tf_err_set(err, "out of memory");
done:
    free(map);
    free(taken);
    free(sim);
    free(copy);
    return rc;
}

static int install_refit(PGconn *conn, snapshot *s, tf_model *m, const tf_refit_result *r,
                         const double *match, const tf_update_opts *opts, tf_err *err)
{
    const nmf_batch_result *fit = &r->fit;
    char ep[32], k_asked[16], k_fit[16], docs[32], terms[16], kept[16], relerr[32], coh[32];
    char mean[32];
    const char *eparams[11];
    tf_buf matches;
    int64_t head, epoch;
    tf_buf dfs, langs;
    const char *params[2];
    char stats[256];
    PGresult *res;
    int rc = -1;

    tf_buf_init(&dfs);
    tf_buf_init(&langs);
    tf_buf_init(&matches);
    if (tf_pg_command(conn, "begin", err) < 0)
        return -1;
    if (tf_model_head(conn, &head, &epoch, err) < 0)
        goto done;
    m->version = head + 1;
    m->epoch = m->version; /* documents are now stale until re-folded */
    m->n_docs = s->X.n_rows;
    m->stats = nmf_stats_new(m->k, m->n_terms, err);
    if (!m->stats)
        goto done;
    snprintf(stats, sizeof(stats),
             "{\"iterations\": %d, \"error\": %.6g, \"relative_error\": %.6g,"
             " \"seconds\": %.3f, \"k_asked\": %d, \"kept_terms\": %d,"
             " \"language_strength\": %.9g}",
             fit->iterations, fit->error, fit->x_norm > 0 ? fit->error / fit->x_norm : 0,
             fit->seconds_init + fit->seconds_iter, opts->k, r->kept_terms, s->language_strength);
    if (tf_model_save(conn, m, "refit", s->v, opts->top_terms, stats, opts->keep_versions,
                      err) < 0)
        goto done;
    /* Document frequencies and language weights as recounted, element i for term id i;
     * terms added after the snapshot keep theirs. */
    tf_pg_append_int_array(&dfs, s->df, (size_t)m->n_terms);
    tf_pg_append_float_array(&langs, s->language, (size_t)m->n_terms);
    if (!tf_buf_ok(&dfs) || !tf_buf_ok(&langs)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    params[0] = dfs.p;
    params[1] = langs.p;
    res = PQexecParams(conn, "update topicflow.terms t set df = u.df, language_weight = u.w"
                             " from unnest($1::int[], $2::real[]) with ordinality as u(df, w, n)"
                             " where t.id = u.n - 1 and (t.df <> u.df or t.language_weight <> u.w)",
                       2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    /* The epoch's record: what the automatic policy and `topicflow status` compare with. */
    snprintf(ep, sizeof(ep), "%lld", (long long)m->epoch);
    snprintf(k_asked, sizeof(k_asked), "%d", opts->k);
    snprintf(k_fit, sizeof(k_fit), "%d", m->k);
    snprintf(docs, sizeof(docs), "%lld", (long long)m->n_docs);
    snprintf(terms, sizeof(terms), "%d", m->n_terms);
    snprintf(kept, sizeof(kept), "%d", r->kept_terms);
    snprintf(relerr, sizeof(relerr), "%.6g", fit->x_norm > 0 ? fit->error / fit->x_norm : 0);
    eparams[0] = ep;
    eparams[1] = k_asked;
    eparams[2] = k_fit;
    eparams[3] = docs;
    eparams[4] = terms;
    eparams[5] = kept;
    eparams[6] = relerr;
    eparams[7] = opts->reason ? opts->reason : "operator";
    snprintf(coh, sizeof(coh), "%.6g", r->coherence);
    eparams[8] = coh;
    /* How the topics moved (sql/008): per topic id its cosine with its match, null if new. */
    snprintf(mean, sizeof(mean), "%.6g", r->mean_match);
    eparams[9] = r->mean_match >= 0 ? mean : NULL;
    tf_buf_append(&matches, "{", 1);
    for (int j = 0; match && j < m->k; j++) {
        if (match[j] >= 0)
            tf_buf_printf(&matches, j ? ",%.6g" : "%.6g", match[j]);
        else
            tf_buf_append(&matches, j ? ",NULL" : "NULL", j ? 5 : 4);
    }
    tf_buf_append(&matches, "}", 1);
    if (!tf_buf_ok(&matches)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    eparams[10] = match ? matches.p : NULL;
    res = PQexecParams(conn, "insert into topicflow.model_epochs (epoch, k_asked, k, fit_docs,"
                             " fit_terms, kept_terms, relative_error, reason, coherence,"
                             " mean_match, topic_match)"
                             " values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                       11, NULL, eparams, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    /* The snapshot's deltas are in the recount (df) or superseded (statistics). */
    params[0] = s->delta_ids.p;
    res = PQexecParams(conn, "delete from topicflow.model_deltas where id = any($1::bigint[])",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    rc = tf_pg_command(conn, "commit", err);
done:
    if (rc < 0)
        rollback(conn);
    tf_buf_free(&dfs);
    tf_buf_free(&langs);
    tf_buf_free(&matches);
    return rc;
}

int tf_model_refit(PGconn *conn, const tf_update_opts *opts, tf_refit_result *out, tf_err *err)
{
    snapshot s;
    tf_model m;
    nmf_batch_opts bo;
    tf_csr Xk;
    double *H = NULL, *Wk = NULL, *match = NULL;
    uint8_t *keep = NULL;
    int32_t *map = NULL, kept = 0;
    int k, locked = 0, rc = -1;

    memset(&s, 0, sizeof(s));
    memset(&m, 0, sizeof(m));
    memset(&Xk, 0, sizeof(Xk));
    memset(out, 0, sizeof(*out));
    tf_buf_init(&s.delta_ids);
    /* Session-level lock from the snapshot to the install: no refresh in between. */
    if (opts->initial_only || opts->try_lock) {
        long long got;
        int64_t head, epoch;
        if (query_int64(conn, "select pg_try_advisory_lock(" LOCK_SQL_ARGS ")::int", 0, NULL,
                        &got, err) < 0)
            goto done;
        if (!got)
            return 1;
        locked = 1;
        if (tf_model_head(conn, &head, &epoch, err) < 0)
            goto done;
        if (head && opts->initial_only) {
            rc = 1;
            goto done;
        }
    } else {
        if (tf_pg_command(conn, "select pg_advisory_lock(" LOCK_SQL_ARGS ")", err) < 0)
            goto done;
        locked = 1;
    }
    if (read_snapshot(conn, &s, err) < 0 || recount_and_weight(&s, err) < 0)
        goto done;
    /* The model's vocabulary, then as many topics as the data allows (at most k). */
    keep = malloc((size_t)s.X.n_cols + 1);
    map = malloc(((size_t)s.X.n_cols + 1) * sizeof(*map));
    if (!keep || !map) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    kept = tf_corpus_keep_terms(s.df, s.X.n_cols, s.X.n_rows, opts->min_df, opts->max_df,
                                opts->k, keep);
    if (tf_corpus_restrict(&s.X, keep, map, &Xk, err) < 0)
        goto done;
    k = opts->k;
    if (k > s.X.n_rows)
        k = s.X.n_rows;
    if (k > kept)
        k = kept;
    if (k < 1) {
        tf_err_set(err, "no live document has any text yet (%d documents)", s.X.n_rows);
        goto done;
    }
    m.k = k;
    m.n_terms = s.X.n_cols;
    m.W = calloc((size_t)m.n_terms * (size_t)m.k, sizeof(double));
    Wk = calloc((size_t)(kept ? kept : 1) * (size_t)m.k, sizeof(double));
    H = calloc((size_t)s.X.n_rows * (size_t)m.k, sizeof(double));
    if (!m.W || !Wk || !H) {
        tf_err_set(err, "out of memory for a %d x %d model", m.n_terms, m.k);
        goto done;
    }
    bo = nmf_batch_defaults(k);
    bo.max_iter = opts->max_iter;
    bo.tol = opts->tol;
    bo.seed = opts->seed;
    bo.threads = opts->threads;
    bo.progress = opts->progress;
    bo.progress_ctx = opts->progress_ctx;
    if (nmf_batch_fit(&Xk, &bo, Wk, H, &out->fit, err) < 0)
        goto done;
    /* Back to the full vocabulary: terms outside the model's have zero rows. */
    for (int32_t t = 0; t < m.n_terms; t++)
        if (map[t] >= 0)
            memcpy(m.W + (size_t)t * (size_t)k, Wk + (size_t)map[t] * (size_t)k,
                   (size_t)k * sizeof(double));
    out->mean_match = -1;
    if (s.prev.version) {
        match = malloc((size_t)k * sizeof(*match));
        if (!match) {
            tf_err_set(err, "out of memory");
            goto done;
        }
        if (keep_topic_ids(&s, m.W, m.n_terms, m.k, &out->mean_match, match, err) < 0)
            goto done;
    }
    out->k = k;
    out->kept_terms = kept;
    out->language_strength = s.language_strength;
    if (tf_coherence_npmi(&Xk, Wk, kept, k, TF_COHERENCE_TOP, &out->coherence, err) < 0 ||
        tf_model_gram(&m, err) < 0 || install_refit(conn, &s, &m, out, match, opts, err) < 0)
        goto done;
    out->version = m.version;
    out->n_docs = s.X.n_rows;
    out->n_terms = m.n_terms;
    rc = 0;
done:
    if (locked)
        PQclear(PQexec(conn, "select pg_advisory_unlock(" LOCK_SQL_ARGS ")"));
    if (rc < 0 && PQtransactionStatus(conn) == PQTRANS_INERROR)
        rollback(conn);
    free(H);
    free(Wk);
    free(match);
    free(keep);
    free(map);
    csr_free(&Xk);
    tf_model_clear(&m);
    snapshot_free(&s);
    return rc;
}

/* ---- refold -------------------------------------------------------------------------- */

int tf_model_refold(PGconn *conn, const tf_model *m, const tf_vocab *v, const char *worker,
                    int limit, int *n, tf_err *err)
{
    char epoch_s[32], limit_s[16], version_s[32];
    const char *params[5];
    PGresult *res = NULL;
    tf_csr X;
    double *H = NULL;
    float *hq = NULL;
    nmf_delta *d = NULL;
    tf_buf keys_src, keys_id, weights, topics;
    int64_t head, epoch;
    int rows, rc = -1;

    *n = 0;
    memset(&X, 0, sizeof(X));
    tf_buf_init(&keys_src);
    tf_buf_init(&keys_id);
    tf_buf_init(&weights);
    tf_buf_init(&topics);
    if (tf_pg_command(conn, "begin", err) < 0)
        return -1;
    if (tf_model_head(conn, &head, &epoch, err) < 0)
        goto fail;
    if (epoch != m->epoch) {
        rollback(conn);
        return 1;
    }
    snprintf(epoch_s, sizeof(epoch_s), "%lld", (long long)m->epoch);
    snprintf(limit_s, sizeof(limit_s), "%d", limit);
    params[0] = epoch_s;
    params[1] = limit_s;
    /* SKIP LOCKED: a document a worker is updating right now is left to that worker. */
    res = PQexecParams(conn,
                       "select source, doc_id, term_ids, counts from topicflow.documents"
                       " where not deleted and coalesce(model_version, 0) < $1"
                       " limit $2 for update skip locked",
                       2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto fail;
    }
    rows = PQntuples(res);
    if (rows == 0)
        goto commit;
    if (tf_doc_rows_csr(res, 2, 3, tf_vocab_size(v), &X, err) < 0)
        goto fail;
    tf_vocab_weight_csr(v, &X);
    H = malloc((size_t)rows * (size_t)m->k * sizeof(double));
    hq = malloc((size_t)m->k * sizeof(float));
    d = nmf_delta_new(m->k, err);
    if (!H || !hq || !d) {
        if (!err || !*err->msg)
            tf_err_set(err, "out of memory");
        goto fail;
    }
    if (nmf_fold_in(m->W, m->n_terms, m->k, m->G, &X, NULL, H, NULL, err) < 0)
        goto fail;
    tf_buf_append(&keys_src, "{", 1);
    tf_buf_append(&keys_id, "{", 1);
    tf_buf_append(&weights, "{", 1);
    tf_buf_append(&topics, "{", 1);
    for (int r = 0; r < rows; r++) {
        tf_buf arr;
        /* What is stored is what the statistics get: the float-rounded h. */
        for (int j = 0; j < m->k; j++) {
            hq[j] = (float)H[(size_t)r * (size_t)m->k + (size_t)j];
            H[(size_t)r * (size_t)m->k + (size_t)j] = hq[j];
        }
        if (r) {
            tf_buf_append(&keys_src, ",", 1);
            tf_buf_append(&keys_id, ",", 1);
            tf_buf_append(&weights, ",", 1);
            tf_buf_append(&topics, ",", 1);
        }
        tf_pg_append_text_element(&keys_src, PQgetvalue(res, r, 0), (size_t)PQgetlength(res, r, 0));
        tf_pg_append_text_element(&keys_id, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1));
        tf_buf_init(&arr);
        tf_pg_append_float_array(&arr, X.val + X.row_ptr[r], (size_t)(X.row_ptr[r + 1] - X.row_ptr[r]));
        tf_pg_append_text_element(&weights, arr.p ? arr.p : "{}", arr.len);
        tf_buf_reset(&arr);
        tf_pg_append_float_array(&arr, hq, (size_t)m->k);
        tf_pg_append_text_element(&topics, arr.p ? arr.p : "{}", arr.len);
        tf_buf_free(&arr);
    }
    tf_buf_append(&keys_src, "}", 1);
    tf_buf_append(&keys_id, "}", 1);
    tf_buf_append(&weights, "}", 1);
    tf_buf_append(&topics, "}", 1);
    if (!tf_buf_ok(&keys_src) || !tf_buf_ok(&keys_id) || !tf_buf_ok(&weights) || !tf_buf_ok(&topics)) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    if (nmf_delta_add(d, &X, H, 1.0, err) < 0)
        goto fail;
    PQclear(res);
    snprintf(version_s, sizeof(version_s), "%lld", (long long)m->version);
    params[0] = keys_src.p;
    params[1] = keys_id.p;
    params[2] = weights.p;
    params[3] = topics.p;
    params[4] = version_s;
    res = PQexecParams(conn,
                       "update topicflow.documents d set weights = u.w::real[],"
                       " topics = u.t::real[], model_version = $5, updated_at = now()"
                       " from unnest($1::text[], $2::text[], $3::text[], $4::text[])"
                       " as u(s, i, w, t) where d.source = u.s and d.doc_id = u.i",
                       5, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0) {
        res = NULL;
        goto fail;
    }
    if (tf_model_write_delta(conn, worker, m->version, 0, d, NULL, NULL, 0, err) < 0)
        goto fail;
    *n = rows;
commit:
    if (tf_pg_command(conn, "commit", err) < 0)
        goto fail;
    rc = 0;
    goto done;
fail:
    rollback(conn);
    tf_err_prefix(err, "refold");
    rc = -1;
done:
    PQclear(res);
    csr_free(&X);
    free(H);
    free(hq);
    nmf_delta_free(d);
    tf_buf_free(&keys_src);
    tf_buf_free(&keys_id);
    tf_buf_free(&weights);
    tf_buf_free(&topics);
    return rc;
}
