/*
 * migrate.c - `topicflow migrate`: applies the pending migrations embedded from sql/ and
 * reports each one; safe to run again and from several places at once. It also sets the
 * passwords of the roles the migrations create, when given (from files, in containers).
 */
#include <stddef.h>
#include <stdio.h>

#include "commands.h"
#include "options.h"
#include "base/config.h"
#include "base/log.h"
#include "pg/migrate.h"
#include "pg/pg.h"

typedef struct migrate_config {
    const char *pg_url, *log_level, *log_format;
    const char *producer_password, *worker_password;
} migrate_config;

static const tf_option migrate_options[] = {
    TF_OPTIONS_PG(migrate_config), TF_OPTIONS_LOG(migrate_config),
    {"producer-password", "TOPICFLOW_PRODUCER_PASSWORD", TF_OPT_STRING, NULL,
     "set topicflow_producer's password (a flag shows in ps: prefer the variable's _FILE)",
     offsetof(migrate_config, producer_password), 0, 0},
    {"worker-password", "TOPICFLOW_WORKER_PASSWORD", TF_OPT_STRING, NULL,
     "set topicflow_worker's password (likewise)", offsetof(migrate_config, worker_password), 0, 0},
};
#define N_OPTIONS (sizeof(migrate_options) / sizeof(migrate_options[0]))

static void on_applied(void *ctx, const tf_migration *m)
{
    (void)ctx;
    printf("applied %03d_%s\n", m->version, m->name);
}

int cli_migrate(int argc, char **argv)
{
    migrate_config cfg;
    struct { const char *name, *password; } roles[2];
    PGconn *conn = NULL;
    tf_err err;
    int first, applied = 0, version = 0, rc;

    rc = cli_parse("migrate", "topicflow migrate [options]",
                   "Applies every pending schema migration, each in its own transaction.\n"
                   "Running it again is harmless: applied migrations are skipped. The migrations\n"
                   "create the roles topicflow_producer and topicflow_worker without passwords;\n"
                   "--producer-password and --worker-password set them (hashed before they are sent).",
                   migrate_options, N_OPTIONS, &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("migrate", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    if (!cfg.pg_url)
        return cli_error("migrate", CLI_USAGE, "no PostgreSQL URL: set --pg, TOPICFLOW_PG_URL or TOPICFLOW_PG_URL_FILE");
    roles[0].name = "topicflow_producer";
    roles[0].password = cfg.producer_password;
    roles[1].name = "topicflow_worker";
    roles[1].password = cfg.worker_password;
    conn = tf_pg_connect(cfg.pg_url, "topicflow-migrate", &err);
    if (!conn)
        goto fail;
    if (tf_migrate_apply(conn, &applied, on_applied, NULL, &err) < 0)
        goto fail;
    if (tf_migrate_current(conn, &version, &err) < 0)
        goto fail;
    printf("schema at version %d (%d applied now)\n", version, applied);
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (!roles[i].password)
            continue;
        if (tf_migrate_set_role_password(conn, roles[i].name, roles[i].password, &err) < 0)
            goto fail;
        printf("password of %s set\n", roles[i].name);
    }
    PQfinish(conn);
    return CLI_OK;
fail:
    fprintf(stderr, "topicflow migrate: %s\n", err.msg);
    PQfinish(conn);
    return CLI_FAIL;
}
