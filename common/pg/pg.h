/*
 * pg.h - PostgreSQL helpers shared by every program: connecting with keepalives and an
 * application name, turning a failed PGresult into one line (with its SQLSTATE, which
 * pg/retry.h classifies), array parameters in and array values out.
 * Statements built here are constants; anything that comes from input goes through
 * parameters (PQexecParams / prepared statements).
 */
#ifndef TF_PG_H
#define TF_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/error.h"

/* Connect to url (connection string or URI) with TCP keepalives on, so that a silently
 * dead server is noticed within about 30 s even on an idle LISTEN connection.
 * Returns NULL with a reason (password redacted) on failure. Free with PQfinish. */
PGconn *tf_pg_connect(const char *url, const char *application_name, tf_err *err);
/* The same as a logical replication connection (replication=database) to url's database:
 * it speaks the replication protocol (START_REPLICATION ...) as well as simple queries. */
PGconn *tf_pg_connect_replication(const char *url, const char *application_name, tf_err *err);

/* Run a constant statement whose result is not needed (BEGIN, COMMIT, LISTEN x,
 * select pg_advisory_lock(...)). 0 or -1 with reason. */
int tf_pg_command(PGconn *conn, const char *sql, tf_err *err);

/* Set err from a result that is not PGRES_COMMAND_OK/TUPLES_OK (or NULL): the server's
 * primary message and SQLSTATE, or the connection's error. Returns -1. */
int tf_pg_result_error(PGconn *conn, const PGresult *res, tf_err *err);

/* Check that res has status `expected`; if not set err, PQclear(res) and return -1. */
int tf_pg_check(PGconn *conn, PGresult *res, ExecStatusType expected, tf_err *err);

/* 1 while conn is usable (for tf_failure_classify of pg/retry.h). */
int tf_pg_connection_ok(const PGconn *conn);

/* Parse a bigint column value; 0 ok, -1 if not an integer. */
int tf_pg_get_int64(const PGresult *res, int row, int col, long long *out);
/* Parse a real or double column value; 0 ok, -1 if not a number. */
int tf_pg_get_double(const PGresult *res, int row, int col, double *out);

/* Array literals for parameters: append "{1,2,3}" / "{0.5,1e-07}" to b. Floats are
 * written with 9 significant digits, which round-trips every float exactly. */
void tf_pg_append_int_array(tf_buf *b, const int32_t *v, size_t n);
void tf_pg_append_int64_array(tf_buf *b, const int64_t *v, size_t n);
void tf_pg_append_float_array(tf_buf *b, const float *v, size_t n);
/* Append one quoted element of a text[] literal ("ab\"c"), without braces or commas. */
void tf_pg_append_text_element(tf_buf *b, const char *s, size_t len);

/* Binary-format parameters (PQexecParams format 1) for int4[] / float4[]: appended to b
 * in the array_recv wire format. Much cheaper than text for large vectors. */
void tf_pg_append_bin_int4_array(tf_buf *b, const int32_t *v, size_t n);
void tf_pg_append_bin_float4_array(tf_buf *b, const float *v, size_t n);

/* Parse PostgreSQL's text output of an integer[] / real[] (one dimension, no NULLs) into
 * *out (malloc'd, caller frees; NULL when empty). -1 with reason on malformed input. */
int tf_pg_parse_int_array(const char *s, int32_t **out, size_t *n, tf_err *err);
int tf_pg_parse_float_array(const char *s, float **out, size_t *n, tf_err *err);

#endif
