/*
 * migrate.c - applies the embedded migrations. The advisory lock key is fixed so that
 * every topicflow program (and two operators typing `topicflow migrate` at once)
 * serializes on it.
 */
#include "pg/migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pg/pg.h"

#define MIGRATE_LOCK_KEY "7340155320394"

static int bootstrap(PGconn *conn, tf_err *err)
{
    static const char sql[] =
        "begin;"
        "select pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ");"
        "create schema if not exists topicflow;"
        "create table if not exists topicflow.schema_migrations ("
        "  version integer primary key, name text not null,"
        "  applied_at timestamptz not null default now());"
        "commit;";
    PGresult *res = PQexec(conn, sql);

    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0) {
        PQclear(PQexec(conn, "rollback"));
        return tf_err_prefix(err, "creating topicflow.schema_migrations");
    }
    PQclear(res);
    return 0;
}

static int is_applied(PGconn *conn, int version, int *applied, tf_err *err)
{
    char v[16];
    const char *params[1] = {v};
    PGresult *res;

    snprintf(v, sizeof(v), "%d", version);
    res = PQexecParams(conn, "select 1 from topicflow.schema_migrations where version = $1", 1,
                       NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    *applied = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

static int record(PGconn *conn, const tf_migration *m, tf_err *err)
{
    char v[16];
    const char *params[2] = {v, m->name};

    PGresult *res;

    snprintf(v, sizeof(v), "%d", m->version);
    res = PQexecParams(conn, "insert into topicflow.schema_migrations (version, name) values ($1, $2)",
                       2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_COMMAND_OK, err) < 0)
        return -1;
    PQclear(res);
    return 0;
}

static int apply_one(PGconn *conn, const tf_migration *m, int *done, tf_err *err)
{
    int applied = 0;
    PGresult *res;

    *done = 0;
    if (tf_pg_command(conn, "begin", err) < 0)
        return -1;
    if (tf_pg_command(conn, "select pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", err) < 0)
        goto fail;
    if (is_applied(conn, m->version, &applied, err) < 0)
        goto fail;
    if (!applied) {
        /* The migration is our own constant text: several statements in one simple query. */
        res = PQexec(conn, m->sql);
        if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
                     PQresultStatus(res) != PGRES_TUPLES_OK)) {
            tf_pg_result_error(conn, res, err);
            PQclear(res);
            goto fail;
        }
        PQclear(res);
        if (record(conn, m, err) < 0)
            goto fail;
        *done = 1;
    }
    if (tf_pg_command(conn, "commit", err) < 0)
        goto fail;
    return 0;
fail:
    PQclear(PQexec(conn, "rollback"));
    *done = 0;
    return tf_err_prefix(err, "migration %03d_%s", m->version, m->name);
}

int tf_migrate_apply(PGconn *conn, int *applied, tf_migrate_cb cb, void *ctx, tf_err *err)
{
    *applied = 0;
    /* "drop ... if exists, skipping" notices are expected on a first run, not news. */
    if (tf_pg_command(conn, "set client_min_messages = warning", err) < 0)
        return -1;
    if (bootstrap(conn, err) < 0)
        return -1;
    for (int i = 0; i < tf_migration_count; i++) {
        int done;
        if (apply_one(conn, &tf_migrations[i], &done, err) < 0)
            return -1;
        if (done) {
            (*applied)++;
            if (cb)
                cb(ctx, &tf_migrations[i]);
        }
    }
    return 0;
}

int tf_migrate_current(PGconn *conn, int *version, tf_err *err)
{
    PGresult *res = PQexec(conn,
                           "select coalesce(max(version), 0) from topicflow.schema_migrations");
    long long v;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        int missing = state && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0);
        if (missing) {
            PQclear(res);
            *version = 0;
            return 0;
        }
        tf_pg_result_error(conn, res, err);
        PQclear(res);
        return -1;
    }
    if (tf_pg_get_int64(res, 0, 0, &v) < 0) {
        PQclear(res);
        return tf_err_set(err, "unexpected schema_migrations version");
    }
    *version = (int)v;
    PQclear(res);
    return 0;
}

int tf_migrate_require(PGconn *conn, tf_err *err)
{
    int version = 0, needed = tf_migrations[tf_migration_count - 1].version;

    if (tf_migrate_current(conn, &version, err) < 0)
        return strcmp(err->code, "42501") == 0 ? 0 : -1; /* insufficient_privilege */
    if (version == 0)
        return tf_err_set(err, "schema not migrated: run topicflow migrate");
    if (version < needed)
        return tf_err_set(err, "schema at version %d, this build needs %d: run topicflow migrate",
                          version, needed);
    return 0;
}

PGconn *tf_migrate_connect(const char *url, const char *application_name, tf_err *err)
{
    PGconn *conn = tf_pg_connect(url, application_name, err);

    if (conn && tf_migrate_require(conn, err) < 0) {
        PQfinish(conn);
        conn = NULL;
    }
    return conn;
}

/* One ALTER ROLE ... PASSWORD with the hash of password (never the password itself). */
static int alter_role_password(PGconn *conn, const char *role, const char *password, tf_err *err)
{
    char *verifier = PQencryptPasswordConn(conn, password, role, NULL);
    const char *params[2] = {role, verifier};
    PGresult *res = NULL;
    int rc = -1;

    if (!verifier) {
        tf_pg_result_error(conn, NULL, err);
        tf_err_prefix(err, "hashing the password");
        goto done;
    }
    res = PQexecParams(conn, "select format('alter role %I password %L', $1::text, $2::text)", 2,
                       NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0) {
        res = NULL;
        goto done;
    }
    rc = tf_pg_command(conn, PQgetvalue(res, 0, 0), err);
done:
    PQclear(res);
    PQfreemem(verifier);
    return rc;
}

int tf_migrate_set_role_password(PGconn *conn, const char *role, const char *password, tf_err *err)
{
    /* ALTER ROLE takes no lock that serializes it with another ALTER ROLE of the same role
     * (from another database of the cluster): the loser fails with an internal error and
     * succeeds when run again, after the winner committed. */
    for (int attempt = 1;; attempt++) {
        if (alter_role_password(conn, role, password, err) == 0)
            return 0;
        if (attempt == 5 || strcmp(err->code, "XX000") != 0 ||
            !strstr(err->msg, "tuple concurrently updated"))
            return tf_err_prefix(err, "setting the password of %s", role);
        usleep(20000 * (useconds_t)attempt);
    }
}
