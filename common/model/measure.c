/*
 * measure.c - the kept model's relative error and coherence on the stored documents
 * (measure.h). Reads the documents once, in a repeatable-read snapshot that also pins the
 * model version, computes with the engine's kernels, then records the row.
 */
#include "model/measure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lifecycle.h"
#include "engine/coherence.h"
#include "engine/nmf.h"
#include "model/store.h"
#include "doc_rows.h"
#include "pg/pg.h"

/* Keep this many measured versions. */
#define KEEP_ROWS 1000

/* H (docs × k) from the topics column; a null or wrong-length vector stays zero. */
static int read_topics(const PGresult *res, int col, int k, double *H, tf_err *err)
{
    for (int r = 0; r < PQntuples(res); r++) {
        float *h = NULL;
        size_t n = 0;
        if (PQgetisnull(res, r, col))
            continue;
        if (tf_pg_parse_float_array(PQgetvalue(res, r, col), &h, &n, err) < 0)
            return -1;
        if (n == (size_t)k)
            for (int j = 0; j < k; j++)
                H[(size_t)r * (size_t)k + (size_t)j] = h[j];
        free(h);
    }
    return 0;
}

static int record(PGconn *conn, const char *worker, const tf_model_quality *q, tf_err *err)
{
    char version[32], epoch[32], docs[32], relerr[32], coh[32], secs[32], keep[16];
    const char *params[8] = {version, epoch, docs, relerr, coh, secs, worker, keep};
    PGresult *res;

    snprintf(version, sizeof(version), "%lld", (long long)q->version);
    snprintf(epoch, sizeof(epoch), "%lld", (long long)q->epoch);
    snprintf(docs, sizeof(docs), "%lld", (long long)q->docs);
    snprintf(relerr, sizeof(relerr), "%.6g", q->relative_error);
    snprintf(coh, sizeof(coh), "%.6g", q->coherence);
    snprintf(secs, sizeof(secs), "%.3f", q->seconds);
    snprintf(keep, sizeof(keep), "%d", KEEP_ROWS);
    res = PQexecParams(conn,
        "with added as (insert into topicflow.model_quality (version, epoch, docs,"
        "   relative_error, coherence, seconds, worker) values ($1, $2, $3, $4, $5, $6, $7)"
        "   on conflict (version) do nothing returning version)"
        " delete from topicflow.model_quality where version <= $1::bigint - $8::bigint",
        8, NULL, params, NULL, NULL, 0);
    return tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0 ? -1 : (PQclear(res), 0);
}

int tf_model_measure(PGconn *conn, const char *worker, tf_model_quality *q, tf_err *err)
{
    tf_model m;
    tf_csr X;
    PGresult *res = NULL;
    double *H = NULL, error = 0, x_norm, start = tf_now();
    long long n_terms = 0, done_before = 0;
    int rc = -1, skip = 0;

    memset(&m, 0, sizeof(m));
    memset(&X, 0, sizeof(X));
    memset(q, 0, sizeof(*q));
    if (tf_pg_command(conn, "begin isolation level repeatable read read only", err) < 0)
        return -1;
    if ((rc = tf_model_load(conn, 0, &m, err)) <= 0) {
        skip = rc == 0;
        rc = -1;
        goto done;
    }
    rc = -1;
    /* Already measured, or documents folded against an older epoch (a refold is under
     * way): nothing to do now. */
    {
        char version[32], epoch[32];
        const char *params[2] = {version, epoch};
        snprintf(version, sizeof(version), "%lld", (long long)m.version);
        snprintf(epoch, sizeof(epoch), "%lld", (long long)m.epoch);
        res = PQexecParams(conn,
            "select (select count(*) from topicflow.model_quality where version = $1::bigint)"
            "     + (select count(*) from topicflow.documents where not deleted"
            "         and coalesce(model_version, 0) < $2::bigint),"
            "       (select coalesce(max(id), 0) + 1 from topicflow.terms)",
            2, NULL, params, NULL, NULL, 0);
        if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
            res = NULL;
            goto done;
        }
        tf_pg_get_int64(res, 0, 0, &done_before);
        tf_pg_get_int64(res, 0, 1, &n_terms);
        PQclear(res);
        res = NULL;
        if (done_before > 0) {
            skip = 1;
            goto done;
        }
    }
    res = PQexec(conn, "select term_ids, weights, topics from topicflow.documents"
                       " where not deleted");
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto done;
    }
    if (PQntuples(res) == 0) {
        skip = 1;
        goto done;
    }
    H = calloc((size_t)PQntuples(res) * (size_t)m.k + 1, sizeof(*H));
    if (!H) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    if (tf_doc_rows_csr(res, 0, 1, (int32_t)n_terms, &X, err) < 0 ||
        read_topics(res, 2, m.k, H, err) < 0)
        goto done;
    PQclear(res);
    res = NULL;
    if (tf_pg_command(conn, "commit", err) < 0)
        goto done;
    if (nmf_error(&X, m.W, m.n_terms, H, m.k, 1, &error, err) < 0 ||
        tf_coherence_npmi(&X, m.W, m.n_terms, m.k, TF_COHERENCE_TOP, &q->coherence, err) < 0)
        goto done;
    x_norm = sqrt(csr_sqnorm(&X));
    q->version = m.version;
    q->epoch = m.epoch;
    q->docs = X.n_rows;
    q->relative_error = x_norm > 0 ? error / x_norm : 0;
    q->seconds = tf_now() - start;
    rc = record(conn, worker, q, err);
done:
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "rollback"));
    PQclear(res);
    free(H);
    csr_free(&X);
    tf_model_clear(&m);
    if (skip)
        return 1;
    if (rc < 0)
        tf_err_prefix(err, "model measure");
    return rc;
}

int tf_model_quality_newest(PGconn *conn, tf_model_quality *q, tf_err *err)
{
    PGresult *res = PQexec(conn, "select version, epoch, docs, relative_error, coherence, seconds"
                                 "  from topicflow.model_quality order by version desc limit 1");
    long long version, epoch, docs;
    int rc = 1;

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    memset(q, 0, sizeof(*q));
    if (PQntuples(res) == 1) {
        if (tf_pg_get_int64(res, 0, 0, &version) < 0 || tf_pg_get_int64(res, 0, 1, &epoch) < 0 ||
            tf_pg_get_int64(res, 0, 2, &docs) < 0) {
            rc = tf_err_set(err, "topicflow.model_quality: a malformed row");
        } else {
            q->version = version;
            q->epoch = epoch;
            q->docs = docs;
            rc = 0;
        }
        q->relative_error = strtod(PQgetvalue(res, 0, 3), NULL);
        q->coherence = strtod(PQgetvalue(res, 0, 4), NULL);
        q->seconds = strtod(PQgetvalue(res, 0, 5), NULL);
    }
    PQclear(res);
    return rc;
}
