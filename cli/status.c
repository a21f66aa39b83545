/*
 * status.c - `topicflow status [--json]`: the pipeline at a glance, from PostgreSQL (outbox
 * backlog, documents, model, workers), AMQP passive declares (ready messages, consumers, dead
 * letters) and the management API (unacknowledged messages). Exit 1 with the server's name
 * when PostgreSQL or RabbitMQ does not answer; a missing management API only leaves
 * queue_unacked null (reason on stderr). `--check` is the same reading judged for cron:
 * silent and 0 when healthy, one line per failed check and 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "mgmt.h"
#include "options.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "wire/json.h"

typedef struct status_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    const char *management_url;
    int json;
    int check;
    double max_outbox_age_s;
    long max_dead_letters;
} status_config;

static const tf_option status_options[] = {
    TF_OPTIONS_CONNECTION(status_config),
    {"management-url", "TOPICFLOW_AMQP_MANAGEMENT_URL", TF_OPT_STRING, NULL,
     "RabbitMQ management API, http[s]://[user:pass@]host:port (default: the AMQP host, "
     "https port 15671 for amqps://, else http port 15672; the AMQP credentials, never sent "
     "over http:// when AMQP is amqps://)",
     offsetof(status_config, management_url), 0, 0},
    {"json", NULL, TF_OPT_BOOL, "off", "print one JSON object instead of a table",
     offsetof(status_config, json), 0, 0},
    {"check", NULL, TF_OPT_BOOL, "off",
     "print only the failed checks, one line each, and exit 1 when any failed (for cron)",
     offsetof(status_config, check), 0, 0},
    {"max-outbox-age", NULL, TF_OPT_DURATION, "5m",
     "--check: fail when the oldest unpublished event is older", offsetof(status_config, max_outbox_age_s),
     0, 0},
    {"max-dead-letters", NULL, TF_OPT_INT, "0",
     "--check: fail when topicflow.dead holds more messages", offsetof(status_config, max_dead_letters),
     0, 1e12},
};
#define N_STATUS_OPTIONS (sizeof(status_options) / sizeof(status_options[0]))

/* A number that may be unknown (JSON null, "-" in the table). */
typedef struct maybe {
    int known;
    long long v;
} maybe;

/* A real that may be unknown. */
typedef struct maybe_real {
    int known;
    double v;
} maybe_real;

typedef struct status {
    maybe outbox_pending, outbox_rejected, queue_ready, queue_unacked, queue_consumers,
        dead_letters, documents, model_version;
    int age_known;
    double outbox_oldest_age_s;
    char model_updated_at[32];
    /* the current epoch's fit (topicflow.model_epochs): when, why, k fitted and asked,
     * documents, model terms, relative error; empty before the first model */
    char refit_at[32], refit_reason[32];
    maybe model_k, model_k_asked, refit_docs, model_terms;
    int refit_known;
    double refit_error;
    maybe_real refit_coherence;
    /* the kept model as last measured by a worker (topicflow.model_quality), the last
     * refresh, and the automatic policy (topicflow.model_policy, newest row) */
    char refresh_at[32], measured_at[32], policy_next[512], policy_settings[512];
    maybe measured_version;
    maybe_real model_error, model_coherence;
    PGresult *workers; /* name, last_batch_at (ISO 8601 or null), events */
    /* capture wal: the database's slot (topicflow.capture_slot()); unknown without one */
    maybe slot_lag_bytes, slot_retained_bytes, slot_active;
    maybe_real slot_lag_s;
} status;

#define ISO_UTC(col) "to_char(" col " at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const char status_sql[] =
    "select (select count(*) from topicflow.outbox where published_at is null),"
    "       (select extract(epoch from clock_timestamp() - created_at)::float8"
    "          from topicflow.outbox where published_at is null order by id limit 1),"
    "       (select count(*) from topicflow.documents where not deleted),"
    "       (select max(version) from topicflow.model),"
    "       (select " ISO_UTC("created_at") " from topicflow.model order by version desc limit 1),"
    "       (select count(*) from topicflow.outbox_rejected),"
    "       e.k, e.k_asked, e.fit_docs, e.kept_terms, e.relative_error, " ISO_UTC("e.fitted_at") ","
    "       e.reason, e.coherence"
    "  from (select 1) one left join topicflow.model_epochs e"
    "    on e.epoch = (select max(epoch) from topicflow.model)";

static const char quality_sql[] =
    "select (select " ISO_UTC("created_at") " from topicflow.model where kind = 'refresh'"
    "         order by version desc limit 1),"
    "       q.version, q.relative_error, q.coherence, " ISO_UTC("q.measured_at") ","
    "       (select next from topicflow.model_policy order by updated_at desc limit 1),"
    "       (select settings from topicflow.model_policy order by updated_at desc limit 1)"
    "  from (select 1) one left join topicflow.model_quality q"
    "    on q.version = (select max(version) from topicflow.model_quality)";

/* The slot's lag: WAL bytes behind the server's position, WAL it keeps, and the time the
 * producer reading it last reported for flushing (pg_stat_replication.flush_lag: 0 when
 * caught up; unknown when no producer reads it). */
static const char slot_sql[] =
    "select (pg_current_wal_lsn() - s.confirmed_flush_lsn)::bigint,"
    "       (pg_current_wal_lsn() - s.restart_lsn)::bigint,"
    "       case when s.active then coalesce(extract(epoch from r.flush_lag)::float8, 0) end,"
    "       s.active::int"
    "  from pg_replication_slots s left join pg_stat_replication r on r.pid = s.active_pid"
    " where s.slot_name = topicflow.capture_slot()";

static const char workers_sql[] =
    "select worker, " ISO_UTC("last_batch_at") ", events from topicflow.worker_activity"
    " order by worker";

static maybe pg_maybe(const PGresult *res, int col)
{
    maybe m = {0, 0};

    if (!PQgetisnull(res, 0, col) && tf_pg_get_int64(res, 0, col, &m.v) == 0)
        m.known = 1;
    return m;
}

static maybe_real pg_maybe_real(const PGresult *res, int col)
{
    maybe_real m = {0, 0};

    if (!PQgetisnull(res, 0, col)) {
        m.known = 1;
        m.v = strtod(PQgetvalue(res, 0, col), NULL);
    }
    return m;
}

static void pg_text(const PGresult *res, int col, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQgetvalue(res, 0, col));
}

static int read_database(const status_config *cfg, status *s, tf_err *err)
{
    PGconn *conn = tf_migrate_connect(cfg->pg_url, "topicflow-status", err);
    PGresult *res;
    int rc = -1;

    if (!conn)
        return -1;
    res = PQexec(conn, status_sql);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        goto done;
    s->outbox_pending = pg_maybe(res, 0);
    s->age_known = !PQgetisnull(res, 0, 1);
    s->outbox_oldest_age_s = s->age_known ? strtod(PQgetvalue(res, 0, 1), NULL) : 0;
    s->documents = pg_maybe(res, 2);
    s->model_version = pg_maybe(res, 3);
    snprintf(s->model_updated_at, sizeof(s->model_updated_at), "%s", PQgetvalue(res, 0, 4));
    s->outbox_rejected = pg_maybe(res, 5);
    s->model_k = pg_maybe(res, 6);
    s->model_k_asked = pg_maybe(res, 7);
    s->refit_docs = pg_maybe(res, 8);
    s->model_terms = pg_maybe(res, 9);
    s->refit_known = !PQgetisnull(res, 0, 10);
    s->refit_error = s->refit_known ? strtod(PQgetvalue(res, 0, 10), NULL) : 0;
    snprintf(s->refit_at, sizeof(s->refit_at), "%s", PQgetvalue(res, 0, 11));
    snprintf(s->refit_reason, sizeof(s->refit_reason), "%s", PQgetvalue(res, 0, 12));
    s->refit_coherence = pg_maybe_real(res, 13);
    PQclear(res);
    res = PQexec(conn, quality_sql);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        goto done;
    pg_text(res, 0, s->refresh_at, sizeof(s->refresh_at));
    s->measured_version = pg_maybe(res, 1);
    s->model_error = pg_maybe_real(res, 2);
    s->model_coherence = pg_maybe_real(res, 3);
    pg_text(res, 4, s->measured_at, sizeof(s->measured_at));
    pg_text(res, 5, s->policy_next, sizeof(s->policy_next));
    pg_text(res, 6, s->policy_settings, sizeof(s->policy_settings));
    PQclear(res);
    res = PQexec(conn, slot_sql);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        goto done;
    if (PQntuples(res) == 1) {
        s->slot_lag_bytes = pg_maybe(res, 0);
        s->slot_retained_bytes = pg_maybe(res, 1);
        s->slot_lag_s = pg_maybe_real(res, 2);
        s->slot_active = pg_maybe(res, 3);
    }
    PQclear(res);
    res = PQexec(conn, workers_sql);
    if (tf_pg_check(conn, res, PGRES_TUPLES_OK, err) < 0)
        goto done;
    s->workers = res;
    rc = 0;
done:
    PQfinish(conn);
    return rc;
}

static int read_queue(tf_broker *b, const char *queue, maybe *ready, maybe *consumers, tf_err *err)
{
    uint32_t messages, n_consumers;
    int exists;

    if (tf_broker_queue_probe(b, queue, &exists, &messages, &n_consumers, err) < 0)
        return -1;
    if (!exists) {
        fprintf(stderr, "topicflow status: queue %s does not exist yet (topicflow-producer and "
                        "topicflow-worker declare it)\n",
                queue);
        return 0;
    }
    *ready = (maybe){1, messages};
    if (consumers)
        *consumers = (maybe){1, n_consumers};
    return 0;
}

/* The management API only adds queue_unacked, which no check uses: --check skips it (and
 * its warning on stderr, which cron would mail). */
static int read_broker(const status_config *cfg, status *s, tf_err *err)
{
    tf_broker *b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 0, err);
    tf_err why;
    int rc = -1;

    if (!b)
        return -1;
    if (read_queue(b, TF_QUEUE_NMF, &s->queue_ready, &s->queue_consumers, err) < 0 ||
        read_queue(b, TF_QUEUE_DEAD, &s->dead_letters, NULL, err) < 0)
        goto done;
    rc = 0;
    if (!s->queue_ready.known || cfg->check)
        goto done;
    if (mgmt_queue_unacked(cfg->management_url, cfg->amqp_url, &cfg->amqp_tls, TF_QUEUE_NMF,
                           &s->queue_unacked.v, &why) == 0)
        s->queue_unacked.known = 1;
    else
        fprintf(stderr, "topicflow status: queue_unacked unknown: %s\n", why.msg);
done:
    tf_broker_close(b);
    return rc;
}

static void json_maybe(const char *key, maybe m)
{
    if (m.known)
        printf("\"%s\": %lld, ", key, m.v);
    else
        printf("\"%s\": null, ", key);
}

static void json_real(const char *key, maybe_real m, const char *fmt)
{
    printf("\"%s\": ", key);
    if (m.known)
        printf(fmt, m.v);
    else
        fputs("null", stdout);
    fputs(", ", stdout);
}

static void json_text(const char *key, const char *v)
{
    printf("\"%s\": ", key);
    tf_json_write_cstring(stdout, v[0] ? v : NULL);
    fputs(", ", stdout);
}

static void print_json(const status *s)
{
    int n = PQntuples(s->workers);

    fputs("{", stdout);
    json_maybe("outbox_pending", s->outbox_pending);
    if (s->age_known)
        printf("\"outbox_oldest_age_s\": %.3f, ", s->outbox_oldest_age_s);
    else
        fputs("\"outbox_oldest_age_s\": null, ", stdout);
    json_maybe("outbox_rejected", s->outbox_rejected);
    json_maybe("queue_ready", s->queue_ready);
    json_maybe("queue_unacked", s->queue_unacked);
    json_maybe("queue_consumers", s->queue_consumers);
    json_maybe("dead_letters", s->dead_letters);
    json_maybe("slot_lag_bytes", s->slot_lag_bytes);
    json_real("slot_lag_s", s->slot_lag_s, "%.3f");
    json_maybe("slot_retained_bytes", s->slot_retained_bytes);
    json_maybe("slot_active", s->slot_active);
    json_maybe("documents", s->documents);
    json_maybe("model_version", s->model_version);
    json_text("model_updated_at", s->model_updated_at);
    json_text("last_refresh_at", s->refresh_at);
    json_real("model_relative_error", s->model_error, "%.4f");
    json_real("model_coherence", s->model_coherence, "%.4f");
    json_maybe("model_measured_version", s->measured_version);
    json_text("model_measured_at", s->measured_at);
    json_maybe("model_k", s->model_k);
    json_maybe("model_k_asked", s->model_k_asked);
    json_maybe("model_terms", s->model_terms);
    json_maybe("last_refit_docs", s->refit_docs);
    json_real("last_refit_relative_error", (maybe_real){s->refit_known, s->refit_error}, "%.4f");
    json_real("last_refit_coherence", s->refit_coherence, "%.4f");
    json_text("last_refit_at", s->refit_at);
    json_text("last_refit_reason", s->refit_reason);
    json_text("model_policy", s->policy_settings);
    json_text("model_policy_next", s->policy_next);
    fputs("\"workers\": [", stdout);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", {\"name\": " : "{\"name\": ", stdout);
        tf_json_write_cstring(stdout, PQgetvalue(s->workers, i, 0));
        fputs(", \"last_batch_at\": ", stdout);
        tf_json_write_cstring(stdout, PQgetisnull(s->workers, i, 1) ? NULL
                                                                    : PQgetvalue(s->workers, i, 1));
        printf(", \"events\": %s}", PQgetvalue(s->workers, i, 2));
    }
    fputs("]}\n", stdout);
}

static void row(const char *key, const char *value)
{
    printf("%-21s %s\n", key, value);
}

static void row_maybe(const char *key, maybe m)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%lld", m.v);
    row(key, m.known ? buf : "-");
}

static void row_real(const char *key, maybe_real m, const char *fmt)
{
    char buf[64];

    snprintf(buf, sizeof(buf), fmt, m.v);
    row(key, m.known ? buf : "-");
}

static void print_table(const status *s)
{
    int n = PQntuples(s->workers);
    char buf[64];

    row_maybe("outbox_pending", s->outbox_pending);
    snprintf(buf, sizeof(buf), "%.3f", s->outbox_oldest_age_s);
    row("outbox_oldest_age_s", s->age_known ? buf : "-");
    row_maybe("outbox_rejected", s->outbox_rejected);
    row_maybe("queue_ready", s->queue_ready);
    row_maybe("queue_unacked", s->queue_unacked);
    row_maybe("queue_consumers", s->queue_consumers);
    row_maybe("dead_letters", s->dead_letters);
    row_maybe("slot_lag_bytes", s->slot_lag_bytes);
    row_real("slot_lag_s", s->slot_lag_s, "%.3f");
    row_maybe("slot_retained_bytes", s->slot_retained_bytes);
    row_maybe("slot_active", s->slot_active);
    row_maybe("documents", s->documents);
    row_maybe("model_version", s->model_version);
    row("model_updated_at", s->model_updated_at[0] ? s->model_updated_at : "-");
    row("last_refresh_at", s->refresh_at[0] ? s->refresh_at : "-");
    row_real("model_relative_error", s->model_error, "%.4f");
    row_real("model_coherence", s->model_coherence, "%.4f");
    row_maybe("model_measured_version", s->measured_version);
    row("model_measured_at", s->measured_at[0] ? s->measured_at : "-");
    row_maybe("model_k", s->model_k);
    row_maybe("model_k_asked", s->model_k_asked);
    row_maybe("model_terms", s->model_terms);
    row_maybe("last_refit_docs", s->refit_docs);
    snprintf(buf, sizeof(buf), "%.4f", s->refit_error);
    row("last_refit_error", s->refit_known ? buf : "-");
    row("last_refit_at", s->refit_at[0] ? s->refit_at : "-");
    row_real("last_refit_coherence", s->refit_coherence, "%.4f");
    row("last_refit_reason", s->refit_reason[0] ? s->refit_reason : "-");
    row("model_policy", s->policy_settings[0] ? s->policy_settings : "-");
    row("model_policy_next", s->policy_next[0] ? s->policy_next : "-");
    snprintf(buf, sizeof(buf), "%d", n);
    row("workers", buf);
    for (int i = 0; i < n; i++)
        printf("  %-19s last batch %s, %s event%s\n", PQgetvalue(s->workers, i, 0),
               PQgetisnull(s->workers, i, 1) ? "never" : PQgetvalue(s->workers, i, 1),
               PQgetvalue(s->workers, i, 2), strcmp(PQgetvalue(s->workers, i, 2), "1") == 0 ? "" : "s");
}

/* --check: prints one line per failed check; returns how many failed. A queue that does not
 * exist has no consumer; a missing dead-letter queue holds no dead letters. */
static int print_failed_checks(const status_config *cfg, const status *s)
{
    int failed = 0;

    if (s->age_known && s->outbox_oldest_age_s > cfg->max_outbox_age_s) {
        printf("check failed: outbox_oldest_age_s %.1f is over --max-outbox-age %.0fs\n",
               s->outbox_oldest_age_s, cfg->max_outbox_age_s);
        failed++;
    }
    if (s->dead_letters.known && s->dead_letters.v > cfg->max_dead_letters) {
        printf("check failed: dead_letters %lld is over --max-dead-letters %ld\n",
               s->dead_letters.v, cfg->max_dead_letters);
        failed++;
    }
    if (!s->queue_consumers.known || s->queue_consumers.v == 0) {
        printf("check failed: no consumer on %s%s\n", TF_QUEUE_NMF,
               s->queue_consumers.known ? "" : " (the queue does not exist)");
        failed++;
    }
    return failed;
}

int cli_status(int argc, char **argv)
{
    status_config cfg;
    status s;
    tf_err err;
    int first, rc;

    rc = cli_parse("status", "topicflow status [--json | --check] [options]",
                   "Shows the outbox backlog and the age of its oldest unpublished event, the rows\n"
                   "set aside as unpublishable (topicflow outbox list), the\n"
                   "ready, unacknowledged and consumer counts of topicflow.nmf, the dead letters,\n"
                   "with capture wal the replication slot's lag (WAL bytes behind the server, the\n"
                   "reading producer's flush lag in seconds), the WAL it retains and whether a\n"
                   "producer reads it,\n"
                   "the live documents, the model version and when it last changed, its last\n"
                   "refresh, its relative error and coherence (mean NPMI of the topics' top 10\n"
                   "terms) as a worker last measured them, the last refit (k, documents, terms,\n"
                   "error, coherence, reason), the automatic policy and what it will do next,\n"
                   "and each worker's last batch. Unknown values print as - (null in JSON). Exit status 1\n"
                   "with the reason when PostgreSQL or RabbitMQ does not answer; an unreachable\n"
                   "management API only leaves queue_unacked unknown.\n\n"
                   "--check prints nothing and exits 0 when the pipeline is healthy, else one line\n"
                   "per failed check and exit status 1: the oldest unpublished event is older than\n"
                   "--max-outbox-age, topicflow.dead holds more than --max-dead-letters messages,\n"
                   "or topicflow.nmf has no consumer.",
                   status_options, N_STATUS_OPTIONS, &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("status", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    memset(&s, 0, sizeof(s));
    if (read_database(&cfg, &s, &err) < 0)
        return cli_error("status", CLI_FAIL, "PostgreSQL: %s", err.msg);
    if (read_broker(&cfg, &s, &err) < 0) {
        PQclear(s.workers);
        return cli_error("status", CLI_FAIL, "RabbitMQ: %s", err.msg);
    }
    if (cfg.check)
        rc = print_failed_checks(&cfg, &s) ? CLI_FAIL : CLI_OK;
    else if (cfg.json)
        print_json(&s);
    else
        print_table(&s);
    PQclear(s.workers);
    return cfg.check ? rc : CLI_OK;
}
