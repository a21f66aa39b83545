/*
 * outbox.c - `topicflow outbox`: the outbox rows the producer set aside because no message
 * can be made of them (a payload that is not a JSON object, a message over --max-message).
 * They wait in topicflow.outbox_rejected with their reason, never blocking the rows behind
 * them: `list` shows them, `retry` puts them back under their own id (after the cause was
 * fixed), `discard` deletes them for good.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "wire/json.h"

typedef struct outbox_config {
    const char *pg_url, *log_level, *log_format;
    int json, all, yes;
} outbox_config;

static const tf_option outbox_options[] = {
    TF_OPTIONS_PG(outbox_config), TF_OPTIONS_LOG(outbox_config),
    {"json", NULL, TF_OPT_BOOL, "off", "list as a JSON array", offsetof(outbox_config, json), 0, 0},
    {"all", NULL, TF_OPT_BOOL, "off", "retry or discard every row set aside", offsetof(outbox_config, all), 0, 0},
    {"yes", NULL, TF_OPT_BOOL, "off", "confirm a discard", offsetof(outbox_config, yes), 0, 0},
};
#define N_OPTIONS (sizeof(outbox_options) / sizeof(outbox_options[0]))

#define ISO_UTC(col) "to_char(" col " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static int list(PGconn *c, int json)
{
    PGresult *res = PQexec(c,
        "select id, source, aggregate_id, event_type, version, " ISO_UTC("rejected_at") ", reason,"
        " left(payload::text, 80) from topicflow.outbox_rejected order by id");
    tf_err err;
    int n;

    if (tf_pg_check(c, res, PGRES_TUPLES_OK, &err) < 0)
        return cli_error("outbox", CLI_FAIL, "%s", err.msg);
    n = PQntuples(res);
    if (json) {
        fputs("[", stdout);
        for (int r = 0; r < n; r++) {
            printf("%s{\"id\": %s, \"source\": ", r ? ", " : "", PQgetvalue(res, r, 0));
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 1));
            fputs(", \"aggregate_id\": ", stdout);
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 2));
            fputs(", \"event_type\": ", stdout);
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 3));
            printf(", \"version\": %s, \"rejected_at\": ", PQgetvalue(res, r, 4));
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 5));
            fputs(", \"reason\": ", stdout);
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 6));
            fputs(", \"preview\": ", stdout);
            tf_json_write_cstring(stdout, PQgetvalue(res, r, 7));
            fputs("}", stdout);
        }
        fputs("]\n", stdout);
    } else if (n == 0) {
        printf("no outbox row is set aside\n");
    } else {
        for (int r = 0; r < n; r++)
            printf("%s  %s %s %s v%s  set aside %s\n  reason: %s\n  payload: %s\n",
                   PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), PQgetvalue(res, r, 2),
                   PQgetvalue(res, r, 3), PQgetvalue(res, r, 4), PQgetvalue(res, r, 5),
                   PQgetvalue(res, r, 6), PQgetvalue(res, r, 7));
        printf("%d row%s set aside\n", n, n == 1 ? "" : "s");
    }
    PQclear(res);
    return CLI_OK;
}

/* retry or discard: the ids given, or --all. Every id is reported; one that is not set
 * aside makes the exit status 1. */
static int act(PGconn *c, const char *verb, const outbox_config *cfg, int argc, char **argv,
               int first)
{
    const char *one = strcmp(verb, "retry") == 0
                          ? "select topicflow.outbox_retry($1)::int"
                          : "with d as (delete from topicflow.outbox_rejected where id = $1 returning 1)"
                            " select count(*)::int from d";
    const char *all = strcmp(verb, "retry") == 0
                          ? "select count(*) filter (where topicflow.outbox_retry(id))"
                            " from (select id from topicflow.outbox_rejected order by id) r"
                          : "with d as (delete from topicflow.outbox_rejected returning 1) select count(*) from d";
    int status = CLI_OK, done = 0;
    tf_err err;

    if (cfg->all == (first < argc))
        return cli_error("outbox", CLI_USAGE, "%s: give the ids of rows set aside, or --all", verb);
    if (strcmp(verb, "discard") == 0 && !cfg->yes)
        return cli_error("outbox", CLI_USAGE, "discard deletes events for good: add --yes");
    if (cfg->all) {
        PGresult *res = PQexec(c, all);
        if (tf_pg_check(c, res, PGRES_TUPLES_OK, &err) < 0)
            return cli_error("outbox", CLI_FAIL, "%s", err.msg);
        done = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    for (int i = first; i < argc; i++) {
        long id;
        const char *params[1] = {argv[i]};
        PGresult *res;
        if (!cli_parse_count(argv[i], 1, 9.2e18, &id)) {
            status = cli_error("outbox", CLI_USAGE, "'%s' is not an outbox id", argv[i]);
            continue;
        }
        res = PQexecParams(c, one, 1, NULL, params, NULL, NULL, 0);
        if (tf_pg_check(c, res, PGRES_TUPLES_OK, &err) < 0)
            return cli_error("outbox", CLI_FAIL, "%s", err.msg);
        if (atoi(PQgetvalue(res, 0, 0)) == 1)
            done++;
        else if (status == CLI_OK)
            status = cli_error("outbox", CLI_FAIL, "no row %s is set aside", argv[i]);
        else
            cli_error("outbox", CLI_FAIL, "no row %s is set aside", argv[i]);
        PQclear(res);
    }
    printf("%s %d row%s%s\n", strcmp(verb, "retry") == 0 ? "put back" : "discarded", done,
           done == 1 ? "" : "s", strcmp(verb, "retry") == 0 ? " into the outbox" : "");
    return status;
}

int cli_outbox(int argc, char **argv)
{
    outbox_config cfg;
    const char *verb;
    PGconn *c;
    tf_err err;
    int first, status;

    status = cli_parse("outbox", "topicflow outbox list [--json] | retry (ID... | --all) | discard (ID... | --all) --yes",
                       "The outbox rows the producer set aside because no message can be made of them\n"
                       "(a payload that is not a JSON object, a message over --max-message), with the\n"
                       "reason. retry puts rows back under their own id; discard deletes them.",
                       outbox_options, N_OPTIONS, &cfg, argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    if (first >= argc)
        return cli_error("outbox", CLI_USAGE, "missing action: list, retry or discard");
    verb = argv[first++];
    if (strcmp(verb, "list") != 0 && strcmp(verb, "retry") != 0 && strcmp(verb, "discard") != 0)
        return cli_error("outbox", CLI_USAGE, "unknown action '%s' (list, retry or discard)", verb);
    if (strcmp(verb, "list") == 0 && first < argc)
        return cli_error("outbox", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    c = tf_migrate_connect(cfg.pg_url, "topicflow-outbox", &err);
    if (!c)
        return cli_error("outbox", CLI_FAIL, "%s", err.msg);
    status = strcmp(verb, "list") == 0 ? list(c, cfg.json) : act(c, verb, &cfg, argc, argv, first);
    PQfinish(c);
    return status;
}
