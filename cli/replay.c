/*
 * replay.c - `topicflow replay`: reprocess history after the text pipeline or the model
 * changed. The selected outbox events are copied as new events that carry replay_of; the
 * producer publishes them like any other. Their new ids get past the exactly-once check,
 * and the worker accepts a replay of the version it already stores (recomputing it) but
 * never an older one, so each replayed event has its effect once and newer state wins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"

typedef struct replay_config {
    const char *pg_url, *log_level, *log_format;
    long from_id, to_id;
    const char *since, *until;
    int all, dry_run, current;
} replay_config;

static const tf_option replay_options[] = {
    TF_OPTIONS_PG(replay_config), TF_OPTIONS_LOG(replay_config),
    {"from-id", NULL, TF_OPT_INT, "0", "first outbox id to replay", offsetof(replay_config, from_id), 0, 9.2e18},
    {"to-id", NULL, TF_OPT_INT, "0", "last outbox id to replay (0: no upper bound)", offsetof(replay_config, to_id), 0, 9.2e18},
    {"since", NULL, TF_OPT_STRING, NULL, "replay events created at or after this time (e.g. '2026-11-01 00:00Z')",
     offsetof(replay_config, since), 0, 0},
    {"until", NULL, TF_OPT_STRING, NULL, "... and before this time", offsetof(replay_config, until), 0, 0},
    {"all", NULL, TF_OPT_BOOL, "off", "replay every retained event", offsetof(replay_config, all), 0, 0},
    {"current", NULL, TF_OPT_BOOL, "off",
     "re-emit the current row of every stored document of the tracked tables (any capture mode; "
     "for capture wal, which keeps no outbox history)", offsetof(replay_config, current), 0, 0},
    {"dry-run", NULL, TF_OPT_BOOL, "off", "count what would be replayed; change nothing", offsetof(replay_config, dry_run), 0, 0},
};

/* Replays of replays are not selected: replaying history once is what the range means. */
#define RANGE_SQL \
    " from topicflow.outbox where replay_of is null and id >= $1 and ($2 = 0 or id <= $2)" \
    " and created_at >= coalesce($3::timestamptz, '-infinity')" \
    " and created_at < coalesce($4::timestamptz, 'infinity')"

int cli_replay(int argc, char **argv)
{
    replay_config cfg;
    char from[24], to[24];
    const char *params[4];
    PGresult *res;
    PGconn *c;
    tf_err err;
    int first, status, modes;

    status = cli_parse("replay", "topicflow replay (--from-id N [--to-id M] | --since TIME [--until TIME] | --all) [--dry-run] | --current",
                       "Re-publishes past events so that the worker recomputes their documents "
                       "(after a change of the\ntext pipeline or the model). Each replayed event "
                       "takes effect once; newer state always wins.",
                       replay_options, sizeof(replay_options) / sizeof(replay_options[0]), &cfg,
                       argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first < argc)
        return cli_error("replay", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    modes = (cfg.from_id || cfg.to_id) + (cfg.since || cfg.until) + cfg.all + cfg.current;
    if (modes != 1)
        return cli_error("replay", CLI_USAGE, "choose exactly one of --from-id/--to-id, --since/--until, --all, --current");
    if (cfg.current && cfg.dry_run)
        return cli_error("replay", CLI_USAGE, "--dry-run is for the history modes, not --current");
    if (cfg.to_id && cfg.to_id < cfg.from_id)
        return cli_error("replay", CLI_USAGE, "--to-id %ld is below --from-id %ld", cfg.to_id, cfg.from_id);
    if (cfg.until && !cfg.since)
        return cli_error("replay", CLI_USAGE, "--until needs --since");
    c = tf_migrate_connect(cfg.pg_url, "topicflow-replay", &err);
    if (!c)
        return cli_error("replay", CLI_FAIL, "%s", err.msg);
    snprintf(from, sizeof(from), "%ld", cfg.from_id);
    snprintf(to, sizeof(to), "%ld", cfg.to_id);
    params[0] = from;
    params[1] = to;
    params[2] = cfg.since;
    params[3] = cfg.until;
    if (cfg.current) {
        /* Replay events in the outbox, published by an outbox-mode producer. */
        res = PQexec(c, "select topicflow.replay_current()");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            tf_pg_result_error(c, res, &err);
            status = cli_error("replay", CLI_FAIL, "%s", err.msg);
        } else {
            printf("replayed the current rows of %s stored document%s\n", PQgetvalue(res, 0, 0),
                   strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "" : "s");
        }
        PQclear(res);
        PQfinish(c);
        return status;
    }
    if (cfg.dry_run)
        res = PQexecParams(c, "select count(*), min(id), max(id)" RANGE_SQL, 4, NULL, params,
                           NULL, NULL, 0);
    else
        /* One statement, so the copies commit together and in id order; the statement
         * trigger is not involved (the outbox is not a tracked table): notify explicitly. */
        res = PQexecParams(c,
            "with copied as (insert into topicflow.outbox (source, aggregate_type, aggregate_id,"
            " event_type, version, payload, replay_of)"
            " select source, aggregate_type, aggregate_id, event_type, version, payload, id" RANGE_SQL
            " order by id returning id, replay_of),"
            " notified as (select pg_notify('topicflow_outbox', '') where exists (select 1 from copied))"
            " select count(*), min(replay_of), max(replay_of), min(id), max(id)"
            " from copied left join notified on true",
            4, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        tf_pg_result_error(c, res, &err);
        status = cli_error("replay", CLI_FAIL, "%s", err.msg);
    } else if (atoll(PQgetvalue(res, 0, 0)) == 0) {
        printf("nothing to replay: no event in that range\n");
    } else if (cfg.dry_run) {
        printf("would replay %s event%s (ids %s..%s)\n", PQgetvalue(res, 0, 0),
               atoll(PQgetvalue(res, 0, 0)) == 1 ? "" : "s", PQgetvalue(res, 0, 1),
               PQgetvalue(res, 0, 2));
    } else {
        printf("replayed %s event%s (ids %s..%s) as new events %s..%s\n", PQgetvalue(res, 0, 0),
               atoll(PQgetvalue(res, 0, 0)) == 1 ? "" : "s", PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3),
               PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    PQfinish(c);
    return status;
}
