/*
 * vocab_store.c - the vocabulary's table (topicflow.terms): loading it into an engine
 * vocabulary, refreshing document frequencies, and giving ids to new terms. Term ids are
 * the database's; nothing here builds SQL from input.
 */
#include "model/vocab_store.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/grow.h"
#include "pg/pg.h"

static int count_docs(PGconn *conn, int64_t *n_docs, tf_err *err)
{
    PGresult *res = PQexec(conn,
        "select coalesce((select n_docs from topicflow.model order by version desc limit 1),"
        " (select count(*) from topicflow.documents where not deleted))");
    long long n;

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (tf_pg_get_int64(res, 0, 0, &n) < 0) {
        PQclear(res);
        return tf_err_set(err, "malformed document count");
    }
    PQclear(res);
    *n_docs = n;
    return 0;
}

/* The columns both readers of topicflow.terms select, in this order. */
#define TERM_COLUMNS "id, term, df, language_weight"

/* One row of TERM_COLUMNS into v: put() adds a new term or, for a known one, only sets its
 * df; then its language weight. */
static int put_term_row(tf_vocab *v, const PGresult *res, int r, tf_err *err)
{
    long long id, df;
    double lang;

    if (tf_pg_get_int64(res, r, 0, &id) < 0 || tf_pg_get_int64(res, r, 2, &df) < 0 ||
        tf_pg_get_double(res, r, 3, &lang) < 0)
        return tf_err_set(err, "malformed row in topicflow.terms");
    if (tf_vocab_put(v, (int32_t)id, PQgetvalue(res, r, 1), (size_t)PQgetlength(res, r, 1), df,
                     err) < 0)
        return -1;
    return tf_vocab_set_language_weight(v, (int32_t)id, (float)lang, err);
}

int tf_vocab_reload_df(PGconn *conn, tf_vocab *v, int64_t n_docs, tf_err *err)
{
    PGresult *res = PQexec(conn, "select " TERM_COLUMNS " from topicflow.terms order by id");

    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        if (put_term_row(v, res, r, err) < 0) {
            PQclear(res);
            return -1;
        }
    }
    PQclear(res);
    tf_vocab_set_docs(v, n_docs);
    return 0;
}

tf_vocab *tf_vocab_load(PGconn *conn, tf_err *err)
{
    tf_vocab *v = tf_vocab_new(err);
    int64_t n_docs = 0;

    if (!v)
        return NULL;
    if (count_docs(conn, &n_docs, err) < 0 || tf_vocab_reload_df(conn, v, n_docs, err) < 0) {
        tf_vocab_free(v);
        return NULL;
    }
    return v;
}

int tf_terms_english_docs(PGconn *conn, int64_t **docs, size_t *n, tf_err *err)
{
    PGresult *res = PQexec(conn, "select term_id, sum(docs)::bigint from topicflow.term_forms"
                                 " where form !~ '^[\\u0600-\\u06ff]' group by term_id");
    int64_t *out = NULL;
    size_t cap = 0;

    *docs = NULL;
    *n = 0;
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        long long id, d;
        if (tf_pg_get_int64(res, r, 0, &id) < 0 || tf_pg_get_int64(res, r, 1, &d) < 0 || id < 0 ||
            id > INT32_MAX) {
            PQclear(res);
            free(out);
            return tf_err_set(err, "malformed row in topicflow.term_forms");
        }
        if ((size_t)id >= cap) {
            size_t old = cap;
            if (TF_GROW(out, cap, (size_t)id + 1) < 0) {
                PQclear(res);
                free(out);
                return tf_err_set(err, "out of memory");
            }
            memset(out + old, 0, (cap - old) * sizeof(*out));
        }
        out[id] = d;
        if ((size_t)id + 1 > *n)
            *n = (size_t)id + 1;
    }
    PQclear(res);
    *docs = out;
    return 0;
}

int tf_terms_resolve(PGconn *conn, tf_vocab *v, const char *const *terms, size_t n, tf_err *err)
{
    tf_buf arr;
    const char *params[1];
    PGresult *res;
    int rc = -1;

    if (n == 0)
        return 0;
    tf_buf_init(&arr);
    tf_buf_append(&arr, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            tf_buf_append(&arr, ",", 1);
        tf_pg_append_text_element(&arr, terms[i], strlen(terms[i]));
    }
    tf_buf_append(&arr, "}", 1);
    if (!tf_buf_ok(&arr)) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    params[0] = arr.p;
    /* Sorted inserts: two workers adding overlapping new terms wait on each other in the
     * same order and never deadlock. "not exists" keeps the id sequence dense. */
    res = PQexecParams(conn,
                       "insert into topicflow.terms (term)"
                       " select t from unnest($1::text[]) as u(t)"
                       " where not exists (select 1 from topicflow.terms x where x.term = u.t)"
                       " order by t on conflict (term) do nothing",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        goto done;
    PQclear(res);
    res = PQexecParams(conn, "select " TERM_COLUMNS " from topicflow.terms"
                             " where term = any($1::text[])",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        goto done;
    for (int r = 0; r < PQntuples(res); r++) {
        if (put_term_row(v, res, r, err) < 0) {
            PQclear(res);
            goto done;
        }
    }
    PQclear(res);
    rc = 0;
done:
    tf_buf_free(&arr);
    return rc;
}
