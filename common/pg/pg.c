/*
 * pg.c - PostgreSQL connection and result helpers. Keepalive settings are chosen so that a
 * peer that vanished without a FIN (host down, network cut) is detected in ~30 s.
 */
#include "pg/pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* libpq prints server notices (e.g. "FATAL: terminating connection") straight to stderr;
 * route them through the log so every line stays logfmt. */
static void notice_to_log(void *arg, const char *message)
{
    char quoted[512], copy[400];

    (void)arg;
    snprintf(copy, sizeof(copy), "%s", message);
    copy[strcspn(copy, "\n")] = '\0';
    log_info("postgresql notice", "text=%s", tf_log_quote(copy, quoted, sizeof(quoted)));
}

static PGconn *connect_as(const char *url, const char *application_name, int replication,
                          tf_err *err)
{
    const char *keys[] = {"dbname", "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "connect_timeout",
                          replication ? "replication" : NULL, NULL};
    const char *vals[] = {url, application_name, "1", "10", "5", "4", "10",
                          replication ? "database" : NULL, NULL};
    char redacted[512];
    PGconn *conn;

    if (!url || !*url) {
        tf_err_set(err, "no PostgreSQL URL: set --pg, TOPICFLOW_PG_URL or TOPICFLOW_PG_URL_FILE");
        return NULL;
    }
    /* expand_dbname=1: url may be a full connection string or URI; later keys override
     * only what the url does not set, except application_name which we always want. */
    conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        tf_err_set(err, "out of memory connecting to PostgreSQL");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        msg[strcspn(msg, "\n")] = '\0';
        tf_err_set(err, "cannot connect to PostgreSQL %s: %s",
                   tf_log_redact_url(url, redacted, sizeof(redacted)), msg);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, notice_to_log, NULL);
    return conn;
}

PGconn *tf_pg_connect(const char *url, const char *application_name, tf_err *err)
{
    return connect_as(url, application_name, 0, err);
}

PGconn *tf_pg_connect_replication(const char *url, const char *application_name, tf_err *err)
{
    return connect_as(url, application_name, 1, err);
}

int tf_pg_result_error(PGconn *conn, const PGresult *res, tf_err *err)
{
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    char msg[400];

    if (primary) {
        tf_err_set(err, "%s (SQLSTATE %s)", primary, state ? state : "?");
        if (err && state)
            snprintf(err->code, sizeof(err->code), "%s", state);
        return -1;
    }
    snprintf(msg, sizeof(msg), "%s", conn ? PQerrorMessage(conn) : "no connection");
    msg[strcspn(msg, "\n")] = '\0';
    if (!*msg && res)
        snprintf(msg, sizeof(msg), "unexpected result status %s",
                 PQresStatus(PQresultStatus(res)));
    return tf_err_set(err, "%s", msg);
}

int tf_pg_check(PGconn *conn, PGresult *res, ExecStatusType expected, tf_err *err)
{
    if (res && PQresultStatus(res) == expected)
        return 0;
    tf_pg_result_error(conn, res, err);
    PQclear(res);
    return -1;
}

int tf_pg_command(PGconn *conn, const char *sql, tf_err *err)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);

    if (!res || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
        tf_pg_result_error(conn, res, err);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

int tf_pg_connection_ok(const PGconn *conn)
{
    return conn && PQstatus(conn) == CONNECTION_OK;
}

int tf_pg_get_int64(const PGresult *res, int row, int col, long long *out)
{
    const char *s = PQgetvalue(res, row, col);
    char *end;

    if (!s || !*s)
        return -1;
    *out = strtoll(s, &end, 10);
    return *end == '\0' ? 0 : -1;
}

int tf_pg_get_double(const PGresult *res, int row, int col, double *out)
{
    const char *s = PQgetvalue(res, row, col);
    char *end;

    if (!s || !*s)
        return -1;
    *out = strtod(s, &end);
    return *end == '\0' ? 0 : -1;
}

void tf_pg_append_int_array(tf_buf *b, const int32_t *v, size_t n)
{
    tf_buf_append(b, "{", 1);
    for (size_t i = 0; i < n; i++)
        tf_buf_printf(b, i ? ",%d" : "%d", v[i]);
    tf_buf_append(b, "}", 1);
}

void tf_pg_append_int64_array(tf_buf *b, const int64_t *v, size_t n)
{
    tf_buf_append(b, "{", 1);
    for (size_t i = 0; i < n; i++)
        tf_buf_printf(b, i ? ",%lld" : "%lld", (long long)v[i]);
    tf_buf_append(b, "}", 1);
}

void tf_pg_append_float_array(tf_buf *b, const float *v, size_t n)
{
    tf_buf_append(b, "{", 1);
    for (size_t i = 0; i < n; i++)
        tf_buf_printf(b, i ? ",%.9g" : "%.9g", (double)v[i]);
    tf_buf_append(b, "}", 1);
}

/* Counts the elements of "{a,b,c}" and checks the braces. */
static int array_shape(const char *s, size_t *n, tf_err *err)
{
    size_t len = strlen(s), commas = 0;

    if (len < 2 || s[0] != '{' || s[len - 1] != '}')
        return tf_err_set(err, "not an array literal: %.40s", s);
    for (size_t i = 1; i + 1 < len; i++)
        commas += s[i] == ',';
    *n = len == 2 ? 0 : commas + 1;
    return 0;
}

/* Parses one element at p (ending at ',' or '}') into v[i]; returns the end, or NULL. */
typedef const char *(*element_fn)(const char *p, void *v, size_t i);

static const char *int_element(const char *p, void *v, size_t i)
{
    char *end;
    long x = strtol(p, &end, 10);

    if (end == p || (*end != ',' && *end != '}') || x < INT32_MIN || x > INT32_MAX)
        return NULL;
    ((int32_t *)v)[i] = (int32_t)x;
    return end;
}

static const char *float_element(const char *p, void *v, size_t i)
{
    char *end;
    float x = strtof(p, &end);

    if (end == p || (*end != ',' && *end != '}'))
        return NULL;
    ((float *)v)[i] = x;
    return end;
}

/* The one array-literal parser: shape, allocation, then each element through parse. */
static int parse_array(const char *s, size_t elem, element_fn parse, const char *what,
                       void **out, size_t *n, tf_err *err)
{
    const char *p = s + 1;
    void *v;

    *out = NULL;
    if (array_shape(s, n, err) < 0)
        return -1;
    if (*n == 0)
        return 0;
    v = malloc(*n * elem);
    if (!v)
        return tf_err_set(err, "out of memory");
    for (size_t i = 0; i < *n; i++) {
        const char *end = parse(p, v, i);
        if (!end) {
            free(v);
            return tf_err_set(err, "malformed %s array near: %.40s", what, p);
        }
        p = end + 1;
    }
    *out = v;
    return 0;
}

int tf_pg_parse_int_array(const char *s, int32_t **out, size_t *n, tf_err *err)
{
    return parse_array(s, sizeof(int32_t), int_element, "integer", (void **)out, n, err);
}

int tf_pg_parse_float_array(const char *s, float **out, size_t *n, tf_err *err)
{
    return parse_array(s, sizeof(float), float_element, "real", (void **)out, n, err);
}

void tf_pg_append_text_element(tf_buf *b, const char *s, size_t len)
{
    tf_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            tf_buf_append(b, "\\", 1);
        tf_buf_append(b, &s[i], 1);
    }
    tf_buf_append(b, "\"", 1);
}

static void put_be32(tf_buf *b, uint32_t v)
{
    char bytes[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};
    tf_buf_append(b, bytes, 4);
}

/* array_recv: ndim, has-null flag, element type, then per dimension size and lower bound,
 * then each element as length + big-endian value. */
static void put_bin_array(tf_buf *b, uint32_t oid, const void *values, size_t n)
{
    const char *p = values;

    put_be32(b, n ? 1 : 0);
    put_be32(b, 0);
    put_be32(b, oid);
    if (n) {
        put_be32(b, (uint32_t)n);
        put_be32(b, 1);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, p + 4 * i, 4); /* int4 and float4 travel as their 32 bits */
        put_be32(b, 4);
        put_be32(b, v);
    }
}

void tf_pg_append_bin_int4_array(tf_buf *b, const int32_t *v, size_t n)
{
    put_bin_array(b, 23 /* int4 */, v, n);
}

void tf_pg_append_bin_float4_array(tf_buf *b, const float *v, size_t n)
{
    put_bin_array(b, 700 /* float4 */, v, n);
}
