/*
 * track.c - `topicflow track TABLE --id COL --text COL[,COL...] [--aggregate NAME]
 * [--capture outbox|wal]`: attaches capture to a table of the user's through topicflow.track()
 * (triggers, or in wal mode the publication and the slot), with every value passed as a
 * parameter. Without --aggregate the aggregate type is the table's name (without
 * schema) lower-cased and naively singularised: jobs -> job, companies -> company,
 * addresses -> address, boxes -> box, status -> status.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"

typedef struct track_config {
    const char *pg_url, *log_level, *log_format;
    const char *id, *text, *aggregate, *capture;
} track_config;

static const tf_option track_options[] = {
    TF_OPTIONS_PG(track_config), TF_OPTIONS_LOG(track_config),
    {"id", NULL, TF_OPT_STRING, NULL, "the column that identifies a row (required)",
     offsetof(track_config, id), 0, 0},
    {"text", NULL, TF_OPT_STRING, NULL,
     "comma-separated text columns the topic model reads (required)",
     offsetof(track_config, text), 0, 0},
    {"aggregate", NULL, TF_OPT_STRING, NULL,
     "aggregate type, [a-z][a-z0-9_]*; routing keys are <aggregate>.<event> "
     "(default: the table name singularised)",
     offsetof(track_config, aggregate), 0, 0},
    TF_OPTIONS_CAPTURE(track_config),
};
#define N_TRACK_OPTIONS (sizeof(track_options) / sizeof(track_options[0]))

static const char track_description[] =
    "Attaches topicflow's capture triggers to TABLE: from now on every committed insert, delete,\n"
    "and update of a --text column writes one event to topicflow.outbox in the same transaction.\n"
    "Rows already in the table emit nothing until they change. Running it again on the same\n"
    "table replaces its columns, aggregate type and capture mode. With --capture wal there are\n"
    "no triggers: the table joins the publication topicflow_capture with REPLICA IDENTITY FULL,\n"
    "the database's replication slot is created if missing (wal_level must be logical), and\n"
    "topicflow-producer --capture wal publishes the same events from the log. The aggregate\n"
    "type defaults to the table name without schema, lower-cased and naively singularised\n"
    "(jobs -> job, companies -> company, addresses -> address); give --aggregate when that is\n"
    "wrong.";

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

/* The default aggregate type of a table name; -1 when the result is not a valid type. */
static int singular(const char *table, char *out, size_t size)
{
    size_t n = strlen(table);

    if (n == 0 || n >= size)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)table[i]);
    out[n] = '\0';
    if (ends_with(out, n, "ies"))
        strcpy(out + n - 3, "y");
    else if (ends_with(out, n, "sses") || ends_with(out, n, "xes") || ends_with(out, n, "ches") ||
             ends_with(out, n, "shes"))
        out[n - 2] = '\0';
    else if (ends_with(out, n, "s") && !ends_with(out, n, "ss") && !ends_with(out, n, "us") &&
             !ends_with(out, n, "is"))
        out[n - 1] = '\0';
    for (char *c = out; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_'))
            *c = '_';
    return islower((unsigned char)out[0]) ? 0 : -1;
}

/* "a, b,c" as the text[] literal {"a","b","c"}: a parameter value, never SQL. NULL when a
 * column name is empty. The caller frees. */
static char *array_literal(const char *list, int *count)
{
    size_t n = strlen(list);
    char *out = malloc(3 * n + 8), *o = out;
    const char *p = list;

    *count = 0;
    if (!out)
        return NULL;
    *o++ = '{';
    for (;;) {
        const char *end = strchr(p, ','), *a = p, *b;
        if (!end)
            end = p + strlen(p);
        b = end;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (a == b) {
            free(out);
            return NULL;
        }
        if (*count)
            *o++ = ',';
        *o++ = '"';
        for (; a < b; a++) {
            if (*a == '"' || *a == '\\')
                *o++ = '\\';
            *o++ = *a;
        }
        *o++ = '"';
        (*count)++;
        if (!*end)
            break;
        p = end + 1;
    }
    *o++ = '}';
    *o = '\0';
    return out;
}

int cli_track(int argc, char **argv)
{
    track_config cfg;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    char *columns = NULL, aggregate[128];
    const char *params[5];
    tf_err err;
    int first, n_columns, rc;

    rc = cli_parse("track", "topicflow track TABLE --id COL --text COL[,COL...] [options]",
                   track_description, track_options, N_TRACK_OPTIONS, &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first >= argc)
        return cli_error("track", CLI_USAGE, "TABLE is required (see --help)");
    if (argc - first > 1)
        return cli_error("track", CLI_USAGE, "unexpected argument '%s'", argv[first + 1]);
    if (!cfg.id || !*cfg.id)
        return cli_error("track", CLI_USAGE, "--id is required (see --help)");
    if (!cfg.text)
        return cli_error("track", CLI_USAGE, "--text is required (see --help)");
    if (tf_capture_parse(cfg.capture, &n_columns, &err) < 0)
        return cli_error("track", CLI_USAGE, "%s", err.msg);
    columns = array_literal(cfg.text, &n_columns);
    if (!columns)
        return cli_error("track", CLI_USAGE, "--text '%s' has an empty column name", cfg.text);

    rc = CLI_FAIL;
    conn = tf_migrate_connect(cfg.pg_url, "topicflow-track", &err);
    if (!conn)
        goto fail;
    /* track() drops triggers "if exists": its notices are noise to an operator. */
    if (tf_pg_command(conn, "set client_min_messages = warning", &err) < 0)
        goto fail;
    params[0] = argv[first];
    if (cfg.aggregate) {
        snprintf(aggregate, sizeof(aggregate), "%s", cfg.aggregate);
    } else {
        res = PQexecParams(conn, "select relname from pg_class where oid = $1::regclass", 1,
                           NULL, params, NULL, NULL, 0);
        if (tf_pg_check(conn, res, PGRES_TUPLES_OK, &err) < 0) {
            res = NULL;
            goto fail;
        }
        if (singular(PQgetvalue(res, 0, 0), aggregate, sizeof(aggregate)) < 0) {
            tf_err_set(&err, "cannot derive an aggregate type from the table name '%s'; "
                             "give --aggregate",
                       PQgetvalue(res, 0, 0));
            goto fail;
        }
        PQclear(res);
    }
    params[1] = cfg.id;
    params[2] = columns;
    params[3] = aggregate;
    params[4] = cfg.capture;
    res = PQexecParams(conn, "select topicflow.track($1::regclass, $2, $3::text[], $4, $5)", 5,
                       NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, &err) < 0) {
        res = NULL;
        goto fail;
    }
    PQclear(res);
    res = PQexecParams(conn,
                       "select format('%I.%I', n.nspname, c.relname), t.id_column,"
                       "       array_to_string(t.text_columns, ', '), t.aggregate_type, t.capture"
                       "  from pg_class c"
                       "  join pg_namespace n on n.oid = c.relnamespace"
                       "  join topicflow.tracked_tables t on t.source = format('%I.%I', n.nspname, c.relname)"
                       " where c.oid = $1::regclass",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, &err) < 0) {
        res = NULL;
        goto fail;
    }
    if (PQntuples(res) != 1) {
        tf_err_set(&err, "%s is not in topicflow.tracked_tables after tracking it", argv[first]);
        goto fail;
    }
    printf("tracking %s: aggregate %s, id column %s, text columns %s, capture %s\n",
           PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 1),
           PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 4));
    rc = CLI_OK;
    goto done;
fail:
    cli_error("track", CLI_FAIL, "%s", err.msg);
done:
    PQclear(res);
    PQfinish(conn);
    free(columns);
    return rc;
}
