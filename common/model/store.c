/*
 * model_store.c - reading and writing the model's tables. Blobs travel as binary
 * parameters/results (no hex round trip for megabytes of doubles); everything else is
 * text parameters. Nothing here builds SQL from input.
 */
#include "model/store.h"

#include <arpa/inet.h>
#include <endian.h>
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "engine/model_blob.h"
#include "pg/pg.h"

void tf_model_clear(tf_model *m)
{
    free(m->W);
    free(m->G);
    nmf_stats_free(m->stats);
    memset(m, 0, sizeof(*m));
}

int tf_model_gram(tf_model *m, tf_err *err)
{
    double *G = realloc(m->G, (size_t)m->k * (size_t)m->k * sizeof(double));

    if (!G)
        return tf_err_set(err, "out of memory");
    m->G = G;
    return nmf_gram(m->W, m->n_terms, m->k, m->G, err);
}

static int read_head(PGconn *conn, const char *sql, int64_t *version, int64_t *epoch, tf_err *err)
{
    PGresult *res = PQexec(conn, sql);
    long long v = 0, e = 0;

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (PQntuples(res) == 1 &&
        (tf_pg_get_int64(res, 0, 0, &v) < 0 || tf_pg_get_int64(res, 0, 1, &e) < 0)) {
        PQclear(res);
        return tf_err_set(err, "malformed model version");
    }
    PQclear(res);
    *version = v;
    *epoch = e;
    return 0;
}

int tf_model_head(PGconn *conn, int64_t *version, int64_t *epoch, tf_err *err)
{
    return read_head(conn, "select version, epoch from topicflow.model order by version desc limit 1",
                     version, epoch, err);
}

int tf_model_begin_head(PGconn *conn, int64_t *version, int64_t *epoch, tf_err *err)
{
    /* one round trip: a simple query may hold two statements, the result is the last one's */
    return read_head(conn, "begin; select version, epoch from topicflow.model"
                           " order by version desc limit 1", version, epoch, err);
}

static int64_t binary_int8(const PGresult *res, int row, int col)
{
    uint64_t v;
    memcpy(&v, PQgetvalue(res, row, col), 8);
    return (int64_t)be64toh(v);
}

int tf_model_load(PGconn *conn, int with_stats, tf_model *m, tf_err *err)
{
    PGresult *res;
    model_blob blob;
    int rc = -1;

    tf_model_clear(m);
    memset(&blob, 0, sizeof(blob));
    /* Binary results: the blob is megabytes of doubles. */
    res = PQexecParams(conn, "select version, epoch, n_docs, blob from topicflow.model"
                             " order by version desc limit 1",
                       0, NULL, NULL, NULL, NULL, 1);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return 0;
    }
    if (model_blob_decode((const uint8_t *)PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3),
                          &blob, err) < 0) {
        tf_err_prefix(err, "model version %lld", (long long)binary_int8(res, 0, 0));
        goto done;
    }
    m->version = binary_int8(res, 0, 0);
    m->epoch = binary_int8(res, 0, 1);
    m->n_docs = binary_int8(res, 0, 2);
    m->k = blob.k;
    m->n_terms = blob.n_terms;
    m->W = blob.W;
    blob.W = NULL;
    if (with_stats) {
        m->stats = nmf_stats_new(m->k, m->n_terms, err);
        if (!m->stats)
            goto done;
        if (blob.A && blob.B) {
            memcpy(nmf_stats_A_mut(m->stats), blob.A, (size_t)m->k * (size_t)m->k * sizeof(double));
            memcpy(nmf_stats_B_mut(m->stats), blob.B,
                   (size_t)m->n_terms * (size_t)m->k * sizeof(double));
        }
    }
    if (tf_model_gram(m, err) < 0)
        goto done;
    rc = 1;
done:
    model_blob_clear(&blob);
    PQclear(res);
    if (rc < 0)
        tf_model_clear(m);
    return rc;
}

static int save_topic_terms(PGconn *conn, const tf_model *m, const tf_vocab *v, int top,
                            tf_err *err)
{
    tf_buf topics, ranks, terms, weights;
    char version[32];
    const char *params[5];
    PGresult *res;
    int32_t *ids = malloc((size_t)top * sizeof(*ids));
    double *w = malloc((size_t)top * sizeof(*w));
    int rc = -1, first = 1;

    tf_buf_init(&topics);
    tf_buf_init(&ranks);
    tf_buf_init(&terms);
    tf_buf_init(&weights);
    if (!ids || !w) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    tf_buf_append(&topics, "{", 1);
    tf_buf_append(&ranks, "{", 1);
    tf_buf_append(&terms, "{", 1);
    tf_buf_append(&weights, "{", 1);
    for (int j = 0; j < m->k; j++) {
        /* Below float's range a weight is stored as real: treat it as the zero it is. */
        int n = nmf_top_terms(m->W, m->n_terms, m->k, j, top, FLT_MIN, ids, w);
        for (int r = 0; r < n; r++) {
            size_t len = 0;
            const char *term = tf_vocab_term(v, ids[r], &len);
            const char *sep = first ? "" : ",";
            char fallback[24];
            if (!term) { /* a row of W without a known name: keep the id visible */
                len = (size_t)snprintf(fallback, sizeof(fallback), "#%d", ids[r]);
                term = fallback;
            }
            tf_buf_printf(&topics, "%s%d", sep, j);
            tf_buf_printf(&ranks, "%s%d", sep, r + 1);
            tf_buf_printf(&weights, "%s%.9g", sep, w[r]);
            if (!first)
                tf_buf_append(&terms, ",", 1);
            tf_pg_append_text_element(&terms, term, len);
            first = 0;
        }
    }
    tf_buf_append(&topics, "}", 1);
    tf_buf_append(&ranks, "}", 1);
    tf_buf_append(&terms, "}", 1);
    tf_buf_append(&weights, "}", 1);
    if (!tf_buf_ok(&topics) || !tf_buf_ok(&ranks) || !tf_buf_ok(&terms) || !tf_buf_ok(&weights)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    snprintf(version, sizeof(version), "%lld", (long long)m->version);
    params[0] = version;
    params[1] = topics.p;
    params[2] = ranks.p;
    params[3] = terms.p;
    params[4] = weights.p;
    res = PQexecParams(conn,
                                  "insert into topicflow.topic_terms"
                                  " (model_version, topic, rank, term, weight)"
                                  " select $1, t, r, term, w from unnest($2::int[], $3::int[],"
                                  " $4::text[], $5::real[]) as u(t, r, term, w)",
                                  5, NULL, params, NULL, NULL, 0);
    rc = tf_pg_check(conn, res, PGRES_COMMAND_OK, err);
    if (rc == 0)
        PQclear(res);
done:
    free(ids);
    free(w);
    tf_buf_free(&topics);
    tf_buf_free(&ranks);
    tf_buf_free(&terms);
    tf_buf_free(&weights);
    return rc;
}

int tf_model_save(PGconn *conn, const tf_model *m, const char *kind, const tf_vocab *v, int top,
                  const char *stats_json, int keep, tf_err *err)
{
    model_blob blob = {m->k, m->n_terms, (uint64_t)m->version, m->W,
                       m->stats ? (double *)nmf_stats_A(m->stats) : NULL,
                       m->stats ? (double *)nmf_stats_B(m->stats) : NULL};
    char version[32], epoch[32], k[16], n_terms[16], n_docs[32], keep_s[16];
    const char *params[8];
    int lengths[8] = {0}, formats[8] = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;
    PGresult *res;

    if (m->stats && nmf_stats_n_terms(m->stats) != m->n_terms)
        return tf_err_set(err, "statistics cover %d terms, W has %d",
                          nmf_stats_n_terms(m->stats), m->n_terms);
    if (model_blob_encode(&blob, &bytes, &len, err) < 0)
        return -1;
    snprintf(version, sizeof(version), "%lld", (long long)m->version);
    snprintf(epoch, sizeof(epoch), "%lld", (long long)m->epoch);
    snprintf(k, sizeof(k), "%d", m->k);
    snprintf(n_terms, sizeof(n_terms), "%d", m->n_terms);
    snprintf(n_docs, sizeof(n_docs), "%lld", (long long)m->n_docs);
    params[0] = version;
    params[1] = epoch;
    params[2] = kind;
    params[3] = k;
    params[4] = n_terms;
    params[5] = n_docs;
    params[6] = (const char *)bytes;
    lengths[6] = (int)len;
    formats[6] = 1;
    params[7] = stats_json ? stats_json : "{}";
    res = PQexecParams(conn,
                       "insert into topicflow.model"
                       " (version, epoch, kind, k, n_terms, n_docs, blob, stats)"
                       " values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                       8, NULL, params, lengths, formats, 0);
    free(bytes);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        return tf_err_prefix(err, "saving model version %s", version);
    PQclear(res);
    if (save_topic_terms(conn, m, v, top, err) < 0)
        return tf_err_prefix(err, "saving the topics of version %s", version);
    snprintf(keep_s, sizeof(keep_s), "%d", keep);
    params[0] = keep_s;
    res = PQexecParams(conn,
                       "delete from topicflow.model where version not in"
                       " (select version from topicflow.model order by version desc limit $1)",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        return -1;
    PQclear(res);
    return 0;
}

int tf_model_write_delta(PGconn *conn, const char *worker, int64_t base_version, int n_docs,
                         const nmf_delta *d, const int32_t *df_terms, const int32_t *df_deltas,
                         size_t n_df, tf_err *err)
{
    char base[32], docs[16];
    const char *params[6];
    int lengths[6] = {0}, formats[6] = {0};
    uint8_t *bytes = NULL;
    size_t len = 0;
    tf_buf terms, deltas;
    PGresult *res;
    int rc = -1;

    tf_buf_init(&terms);
    tf_buf_init(&deltas);
    if (d && model_blob_encode_delta(d, &bytes, &len, err) < 0)
        return -1;
    tf_pg_append_int_array(&terms, df_terms, n_df);
    tf_pg_append_int_array(&deltas, df_deltas, n_df);
    if (!tf_buf_ok(&terms) || !tf_buf_ok(&deltas)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    snprintf(base, sizeof(base), "%lld", (long long)base_version);
    snprintf(docs, sizeof(docs), "%d", n_docs);
    params[0] = worker;
    params[1] = base;
    params[2] = docs;
    params[3] = (const char *)bytes; /* NULL -> SQL NULL */
    lengths[3] = (int)len;
    formats[3] = 1;
    params[4] = terms.p;
    params[5] = deltas.p;
    res = PQexecParams(conn,
                       "insert into topicflow.model_deltas"
                       " (worker, base_version, n_docs, delta, df_terms, df_deltas)"
                       " values ($1, $2, $3, $4, $5::int[], $6::int[])",
                       6, NULL, params, lengths, formats, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    rc = 0;
done:
    free(bytes);
    tf_buf_free(&terms);
    tf_buf_free(&deltas);
    return rc;
}
