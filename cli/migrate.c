/*
 * migrate.c - `topicflow migrate`: applies the pending migrations embedded from sql/ and
 * reports each one; safe to run again and from several places at once.
 */
#include <stdio.h>

#include "commands.h"
#include "options.h"
#include "base/config.h"
#include "base/log.h"
#include "pg/migrate.h"
#include "pg/pg.h"

typedef struct migrate_config {
    const char *pg_url, *log_level;
} migrate_config;

static const tf_option migrate_options[] = {TF_OPTIONS_PG(migrate_config), TF_OPTIONS_LOG(migrate_config)};
#define N_OPTIONS (sizeof(migrate_options) / sizeof(migrate_options[0]))

static void on_applied(void *ctx, const tf_migration *m)
{
    (void)ctx;
    printf("applied %03d_%s\n", m->version, m->name);
}

int cli_migrate(int argc, char **argv)
{
    migrate_config cfg;
    PGconn *conn = NULL;
    tf_err err;
    int first, applied = 0, version = 0, rc;

    rc = cli_parse("migrate", "topicflow migrate [options]",
                   "Applies every pending schema migration, each in its own transaction.\n"
                   "Running it again is harmless: applied migrations are skipped.",
                   migrate_options, N_OPTIONS, &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("migrate", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    if (!cfg.pg_url)
        return cli_error("migrate", CLI_USAGE, "no PostgreSQL URL: set TOPICFLOW_PG_URL or --pg");
    conn = tf_pg_connect(cfg.pg_url, "topicflow-migrate", &err);
    if (!conn)
        goto fail;
    if (tf_migrate_apply(conn, &applied, on_applied, NULL, &err) < 0)
        goto fail;
    if (tf_migrate_current(conn, &version, &err) < 0)
        goto fail;
    printf("schema at version %d (%d applied now)\n", version, applied);
    PQfinish(conn);
    return CLI_OK;
fail:
    fprintf(stderr, "topicflow migrate: %s\n", err.msg);
    PQfinish(conn);
    return CLI_FAIL;
}
