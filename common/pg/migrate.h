/*
 * migrate.h - versioned schema migrations from sql/, compiled into the library.
 * Each pending migration is applied in its own transaction together with its row in
 * topicflow.schema_migrations, under a transaction-level advisory lock, so concurrent
 * runs apply each migration exactly once and a failed one leaves no trace.
 */
#ifndef TF_MIGRATE_H
#define TF_MIGRATE_H

#include <libpq-fe.h>

#include "base/error.h"

typedef struct tf_migration {
    int version;
    const char *name;
    const char *sql;
} tf_migration;

extern const tf_migration tf_migrations[];
extern const int tf_migration_count;

/* Called for each migration applied (for progress output); may be NULL. */
typedef void (*tf_migrate_cb)(void *ctx, const tf_migration *m);

/* Apply every pending migration in order. *applied counts those applied now. */
int tf_migrate_apply(PGconn *conn, int *applied, tf_migrate_cb cb, void *ctx, tf_err *err);

/* The highest applied version (0 for an empty database). */
int tf_migrate_current(PGconn *conn, int *version, tf_err *err);

/*
 * The one schema check of every program that needs the schema (each CLI command but
 * migrate, the producer, the worker): 0 when every migration this build embeds is applied,
 * else -1 with "schema not migrated: run topicflow migrate" (or the versions, when the
 * schema is only older). A role that may not read topicflow.schema_migrations (the
 * producer's and the worker's) passes when the schema exists: their own statements then
 * name what is missing.
 */
int tf_migrate_require(PGconn *conn, tf_err *err);

/* tf_pg_connect, then tf_migrate_require: how a program that needs the schema connects.
 * NULL with the reason on failure; free with PQfinish. */
PGconn *tf_migrate_connect(const char *url, const char *application_name, tf_err *err);

/*
 * Set the password of role (one the migrations create: topicflow_producer,
 * topicflow_worker). The password is hashed here, with the server's password_encryption
 * (PQencryptPasswordConn), so the plaintext never travels nor reaches a server log. Roles
 * are cluster-wide: when another database's run sets the same role's password at the same
 * instant ("tuple concurrently updated"), it is set again, up to five times.
 */
int tf_migrate_set_role_password(PGconn *conn, const char *role, const char *password, tf_err *err);

#endif
