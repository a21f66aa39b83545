/*
 * wal_reader.c - START_REPLICATION over libpq: frames are read with PQgetCopyData in async
 * mode and select() on the socket, so a caller that waits here still sees keepalives (and
 * answers them through wal_reader_status) however long the database stays idle.
 */
#include "wal_reader.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/time.h>

#include "base/log.h"
#include "pg/pg.h"

/* A status update at least this often while streaming, and not more often than the
 * minimum gap when only the confirmed position moved. */
#define STATUS_EVERY_S 5.0
#define STATUS_MIN_GAP_S 0.1

struct wal_reader {
    PGconn *conn;
    char *buf;                 /* the last frame's CopyData, freed by the next call */
    uint64_t confirmed, sent;  /* confirmed position, and the one last reported */
    double sent_at;
    unsigned long updates;
};

static double now_s(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Slot and publication names are put into replication commands (which take no
 * parameters): only PostgreSQL's own slot-name characters pass. */
static int plain_name(const char *what, const char *s, tf_err *err)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
        return tf_err_set(err, "%s '%s' must be 1-63 characters of [a-z0-9_]", what, s);
    return 0;
}

static int slot_exists(PGconn *conn, const char *slot, int *exists, tf_err *err)
{
    char sql[256];
    PGresult *res;

    snprintf(sql, sizeof(sql), "select 1 from pg_replication_slots where slot_name = '%s'", slot);
    res = PQexec(conn, sql);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    *exists = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

wal_reader *wal_reader_open(const char *pg_url, const char *slot, const char *publication,
                            tf_err *err)
{
    wal_reader *r = NULL;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char cmd[512];
    int exists;

    if (plain_name("slot", slot, err) < 0 || plain_name("publication", publication, err) < 0)
        return NULL;
    conn = tf_pg_connect_replication(pg_url, "topicflow-producer-wal", err);
    if (!conn)
        return NULL;
    if (slot_exists(conn, slot, &exists, err) < 0)
        goto fail;
    if (!exists) {
        /* topicflow track --capture wal creates it; a producer started first does. */
        snprintf(cmd, sizeof(cmd), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput NOEXPORT_SNAPSHOT",
                 slot);
        res = PQexec(conn, cmd);
        if (PQresultStatus(res) != PGRES_TUPLES_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            tf_pg_result_error(conn, res, err);
            tf_err_prefix(err, "creating replication slot %s", slot);
            goto fail;
        }
        PQclear(res);
        res = NULL;
        log_warn("replication slot created: changes committed before now are not captured",
                 "slot=%s", slot);
    }
    snprintf(cmd, sizeof(cmd),
             "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', publication_names '%s')",
             slot, publication);
    res = PQexec(conn, cmd);
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        tf_pg_result_error(conn, res, err);
        tf_err_prefix(err, "starting replication from slot %s", slot);
        goto fail;
    }
    PQclear(res);
    r = calloc(1, sizeof(*r));
    if (!r) {
        tf_err_set(err, "out of memory");
        PQfinish(conn);
        return NULL;
    }
    r->conn = conn;
    r->sent_at = now_s();
    return r;
fail:
    PQclear(res);
    PQfinish(conn);
    return NULL;
}

void wal_reader_close(wal_reader *r)
{
    if (!r)
        return;
    if (r->buf)
        PQfreemem(r->buf);
    PQfinish(r->conn);
    free(r);
}

/* The stream ended (the server closed it or sent an error): its reason. */
static int stream_error(wal_reader *r, tf_err *err)
{
    PGresult *res = PQgetResult(r->conn);

    if (res && PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        tf_pg_result_error(r->conn, res, err);
    else
        tf_pg_result_error(r->conn, NULL, err);
    PQclear(res);
    return tf_err_prefix(err, "replication stream ended");
}

int wal_reader_next(wal_reader *r, double timeout_s, tf_repl_frame *f, tf_err *err)
{
    double deadline = now_s() + timeout_s;

    if (r->buf) {
        PQfreemem(r->buf);
        r->buf = NULL;
    }
    for (;;) {
        int n = PQgetCopyData(r->conn, &r->buf, 1), fd = PQsocket(r->conn);
        double left;
        struct timeval tv;
        fd_set rd;

        if (n > 0)
            return tf_repl_frame_parse(r->buf, (size_t)n, f, err) < 0 ? -1 : 1;
        if (n < 0)
            return stream_error(r, err);
        left = deadline - now_s();
        if (left <= 0)
            return 0;
        tv.tv_sec = (time_t)left;
        tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        if (select(fd + 1, &rd, NULL, NULL, &tv) < 0 && errno != EINTR)
            return tf_err_set(err, "select: %s", strerror(errno));
        if (PQconsumeInput(r->conn) == 0)
            return tf_pg_result_error(r->conn, NULL, err);
    }
}

void wal_reader_confirm(wal_reader *r, uint64_t lsn)
{
    if (lsn > r->confirmed)
        r->confirmed = lsn;
}

uint64_t wal_reader_confirmed(const wal_reader *r)
{
    return r->confirmed;
}

unsigned long wal_reader_updates_sent(const wal_reader *r)
{
    return r->updates;
}

int wal_reader_status(wal_reader *r, int force, tf_err *err)
{
    unsigned char msg[TF_REPL_STATUS_LEN];
    double now = now_s();
    int64_t clock_us;

    if (!force && !(r->confirmed != r->sent && now - r->sent_at >= STATUS_MIN_GAP_S) &&
        now - r->sent_at < STATUS_EVERY_S)
        return 0;
    clock_us = (int64_t)(now * 1e6) - TF_PG_EPOCH_UNIX_US;
    /* Before anything was confirmed, 0 tells the server "no position": it keeps the slot's. */
    tf_repl_status_update(r->confirmed, clock_us, 0, msg);
    if (PQputCopyData(r->conn, (const char *)msg, sizeof(msg)) != 1 || PQflush(r->conn) != 0)
        return tf_pg_result_error(r->conn, NULL, err);
    r->sent = r->confirmed;
    r->sent_at = now;
    r->updates++;
    return 0;
}
