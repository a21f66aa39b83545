/*
 * topicflow-worker - consumes topicflow.nmf and keeps the topic model up to date.
 *
 * Life: parse config -> connect (PostgreSQL; RabbitMQ twice: a consumer with manual acks
 * and a confirming publisher for dead letters) -> loop { gather a mini-batch (size or
 * max wait); dead-letter what can never be processed; apply the rest in one transaction;
 * ack after commit }, while a second thread keeps the model up to date (maintenance.c)
 * -> on SIGTERM/SIGINT stop consuming, finish what was received, ack, exit 0.
 * A database outage is waited out with backoff while the messages stay unacked: nothing is
 * dead-lettered and nothing is requeued (a requeue would count as a delivery attempt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "dead_letter.h"
#include "maintenance.h"
#include "stage_clock.h"
#include "worker_metrics.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/backoff.h"
#include "base/config.h"
#include "base/datadir.h"
#include "base/lifecycle.h"
#include "base/log.h"
#include "base/progress.h"
#include "engine/lexicon.h"
#include "http/metrics_server.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "pg/retry.h"

typedef struct worker_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    const char *metrics_addr;
    long batch;
    double batch_wait_s;
    long prefetch;
    long max_message;
    long k;
    long min_docs;
    long fit_iters;
    double fit_tol;
    double measure_interval_s;
    long refresh_every;
    double refresh_interval_s;
    long refold_chunk;
    int refit_auto;
    double refit_growth, refit_quiet_s, refit_min_interval_s;
    tf_vocabulary_rule vocabulary;
    long heartbeat_s;
    tf_topology topology;
    const char *name;
    double reconnect_max_s;
    const char *data_dir, *lexicon;
    const char *trace;
} worker_config;

static const tf_option worker_options[] = {
    TF_OPTIONS_CONNECTION(worker_config),
    TF_OPTIONS_METRICS(worker_config),
    {"batch", "TOPICFLOW_WORKER_BATCH", TF_OPT_INT, "256", "events per mini-batch (one transaction)",
     offsetof(worker_config, batch), 1, 10000},
    {"batch-wait", "TOPICFLOW_WORKER_BATCH_WAIT", TF_OPT_DURATION, "20ms",
     "longest a received event waits for its batch to fill", offsetof(worker_config, batch_wait_s), 0, 60},
    {"prefetch", "TOPICFLOW_WORKER_PREFETCH", TF_OPT_INT, "0",
     "unacked deliveries held at most (0: twice the batch)", offsetof(worker_config, prefetch), 0, 65535},
    TF_OPTIONS_MAX_MESSAGE(worker_config, max_message, "larger messages are dead-lettered"),
    {"k", "TOPICFLOW_TOPICS", TF_OPT_INT, "20", "topics of the first model (later: topicflow refit --k)",
     offsetof(worker_config, k), 1, 1000},
    {"min-docs", "TOPICFLOW_MIN_DOCS", TF_OPT_INT, "500",
     "live documents needed before the first model is fitted", offsetof(worker_config, min_docs), 1, 1e9},
    {"fit-iters", "TOPICFLOW_FIT_ITERS", TF_OPT_INT, "200", "iteration cap of the workers' fits (first and automatic)",
     offsetof(worker_config, fit_iters), 1, 10000},
    {"fit-tol", "TOPICFLOW_FIT_TOL", TF_OPT_DOUBLE, "0",
     "... which stop when an iteration improves the error by less (relative; 0: never)",
     offsetof(worker_config, fit_tol), 0, 1},
    {"refresh-every", "TOPICFLOW_REFRESH_EVERY", TF_OPT_INT, "20",
     "batch deltas that trigger a model refresh", offsetof(worker_config, refresh_every), 1, 1e6},
    {"refresh-interval", "TOPICFLOW_REFRESH_INTERVAL", TF_OPT_DURATION, "10s",
     "least time between two refresh attempts of this worker", offsetof(worker_config, refresh_interval_s), 0, 86400},
    {"refold-chunk", "TOPICFLOW_REFOLD_CHUNK", TF_OPT_INT, "500",
     "stale documents re-folded per transaction", offsetof(worker_config, refold_chunk), 1, 1e6},
    {"refit-auto", "TOPICFLOW_REFIT_AUTO", TF_OPT_BOOL, "on",
     "re-fit the model by itself when the corpus outgrew it (docs/ARCHITECTURE.md)",
     offsetof(worker_config, refit_auto), 0, 0},
    {"refit-growth", "TOPICFLOW_REFIT_GROWTH", TF_OPT_DOUBLE, "2",
     "re-fit when live documents or model terms grew by this factor since the last fit",
     offsetof(worker_config, refit_growth), 1.01, 1000},
    {"refit-quiet", "TOPICFLOW_REFIT_QUIET", TF_OPT_DURATION, "30s",
     "re-fit once the stream was quiet this long and the corpus grew 10 % since the last fit",
     offsetof(worker_config, refit_quiet_s), 1, 86400},
    {"refit-min-interval", "TOPICFLOW_REFIT_MIN_INTERVAL", TF_OPT_DURATION, "30s",
     "least time between two automatic refits (across workers)",
     offsetof(worker_config, refit_min_interval_s), 0, 86400 * 7},
    TF_OPTIONS_VOCABULARY(worker_config, vocabulary),
    {"measure-interval", "TOPICFLOW_MEASURE_INTERVAL", TF_OPT_DURATION, "60s",
     "least time between two measures of the kept model's error and coherence (0: never)",
     offsetof(worker_config, measure_interval_s), 0, 86400 * 7},
    {"heartbeat", "TOPICFLOW_AMQP_HEARTBEAT", TF_OPT_INT, "30", "AMQP heartbeat in seconds (0: off)",
     offsetof(worker_config, heartbeat_s), 0, 600},
    TF_OPTIONS_TOPOLOGY(worker_config, topology),
    {"name", "TOPICFLOW_WORKER_NAME", TF_OPT_STRING, NULL, "this worker's name (default host:pid)",
     offsetof(worker_config, name), 0, 0},
    {"reconnect-max", "TOPICFLOW_RECONNECT_MAX", TF_OPT_DURATION, "30s", "cap of the retry backoff",
     offsetof(worker_config, reconnect_max_s), 0.1, 3600},
    {"data-dir", "TOPICFLOW_DATA_DIR", TF_OPT_STRING, NULL,
     "stop-word lists and the lexicon (default: the source tree's data/)",
     offsetof(worker_config, data_dir), 0, 0},
    {"lexicon", "TOPICFLOW_LEXICON", TF_OPT_STRING, "auto",
     "Arabic terms counted as their English concept: off, auto (the data directory's "
     TF_LEXICON_DEFAULT " when present) or a file; of a term's dictionary senses, the one the"
     " database's English documents use most; without Arabic text it changes nothing; every"
     " worker of a database must agree (data/lexicon/README.md)",
     offsetof(worker_config, lexicon), 0, 0},
    {"trace", "TOPICFLOW_WORKER_TRACE", TF_OPT_STRING, NULL,
     "append one line per batch and per upkeep step with its stage timings to this file"
     " (diagnostics: docs/OPERATIONS.md, \"Tracing latency\")",
     offsetof(worker_config, trace), 0, 0},
};
#define N_OPTIONS (sizeof(worker_options) / sizeof(worker_options[0]))

/* Deliveries received and not yet acked, in delivery order. */
typedef struct inbox {
    amqp_envelope_t *env;
    double *at;             /* wall-clock time each was received */
    size_t n, cap;
} inbox;

typedef struct worker {
    worker_config cfg;
    char name[128];
    PGconn *pg;
    tf_broker *consumer, *publisher;
    applier *app;
    dead_letter *dl;
    inbox in;
    work_item *items;
    tf_backoff backoff;
    maintenance *upkeep;
    tf_progress progress;
    unsigned long long events, dead;
    worker_metrics metrics;
    int connected_once;     /* a later connect is a reconnect */
    int stopping;           /* consumption cancelled: finishing what was received */
    stage_clock clock;      /* the current batch's stage account */
    stage_trace *trace;     /* --trace (NULL: off) */
} worker;




/* ---- connections ------------------------------------------------------------------- */

/* /readyz: PostgreSQL and both broker connections up, and consuming. */
static void update_readiness(worker *w)
{
    const char *why = NULL;

    if (!tf_pg_connection_ok(w->pg))
        why = "not connected to PostgreSQL";
    else if (!w->consumer || !tf_broker_ok(w->consumer) || !tf_broker_ok(w->publisher))
        why = "not connected to RabbitMQ";
    else if (w->stopping)
        why = "not consuming: stopping";
    tf_metrics_set_unready(w->metrics.registry, why);
}

static void inbox_drop(inbox *in)
{
    for (size_t i = 0; i < in->n; i++)
        amqp_destroy_envelope(&in->env[i]);
    in->n = 0;
}

static void drop_broker(worker *w)
{
    /* Unacked deliveries die with the connection: the broker redelivers them. */
    inbox_drop(&w->in);
    tf_broker_close(w->consumer);
    tf_broker_close(w->publisher);
    w->consumer = w->publisher = NULL;
    update_readiness(w);
}

static int connect_broker(worker *w, tf_err *err)
{
    long prefetch = w->cfg.prefetch ? w->cfg.prefetch : 2 * w->cfg.batch;

    w->consumer = tf_broker_open(w->cfg.amqp_url, &w->cfg.amqp_tls,
                                 (int)w->cfg.heartbeat_s, err);
    if (!w->consumer)
        return -1;
    w->publisher = tf_broker_open(w->cfg.amqp_url, &w->cfg.amqp_tls,
                                  (int)w->cfg.heartbeat_s, err);
    if (!w->publisher)
        goto fail;
    if (tf_topology_declare(w->publisher, &w->cfg.topology, NULL, err) < 0 ||
        tf_broker_confirm_select(w->publisher, err) < 0 ||
        tf_broker_qos(w->consumer, (uint16_t)(prefetch > 65535 ? 65535 : prefetch), err) < 0 ||
        tf_broker_consume(w->consumer, TF_QUEUE_NMF, err) < 0)
        goto fail;
    return 0;
fail:
    drop_broker(w);
    return -1;
}

static int connect_pg(worker *w, tf_err *err)
{
    w->pg = tf_migrate_connect(w->cfg.pg_url, "topicflow-worker", err);
    if (!w->pg)
        return -1;
    applier_forget(w->app);
    if (applier_sync_model(w->app, w->pg, err) < 0) {
        PQfinish(w->pg);
        w->pg = NULL;
        return -1;
    }
    return 0;
}

static int ensure_connected(worker *w, tf_err *err)
{
    int was_down = !w->pg || !w->consumer, rc = -1;

    if (w->pg && PQstatus(w->pg) != CONNECTION_OK) {
        PQfinish(w->pg);
        w->pg = NULL;
    }
    if (w->consumer && (!tf_broker_ok(w->consumer) || !tf_broker_ok(w->publisher)))
        drop_broker(w);
    if (!w->pg && connect_pg(w, err) < 0)
        goto done;
    if (!w->consumer && connect_broker(w, err) < 0)
        goto done;
    if (was_down) {
        log_info("connected", "worker=%s batch=%ld model_version=%lld", tf_log_q(w->name), w->cfg.batch,
                 (long long)applier_model(w->app)->version);
        if (w->connected_once)
            tf_counter_add(w->metrics.reconnects, 1);
        w->connected_once = 1;
        tf_gauge_set(w->metrics.model_version, (double)applier_model(w->app)->version);
    }
    rc = 0;
done:
    update_readiness(w);
    return rc;
}

/* ---- receiving ---------------------------------------------------------------------- */

/* Receives deliveries into the inbox for up to timeout_s, returning early once `want`
 * are held. Heartbeats are serviced while waiting. */
static int inbox_fill(worker *w, size_t want, double timeout_s, tf_err *err)
{
    double end = tf_now() + timeout_s;

    while (w->in.n < want) {
        double left = end - tf_now();
        int rc;
        if (w->in.n == w->in.cap) {
            size_t cap = w->in.cap ? w->in.cap * 2 : 256;
            amqp_envelope_t *e = realloc(w->in.env, cap * sizeof(*e));
            double *at;
            if (!e)
                return tf_err_set(err, "out of memory");
            w->in.env = e;
            at = realloc(w->in.at, cap * sizeof(*at));
            if (!at)
                return tf_err_set(err, "out of memory");
            w->in.at = at;
            w->in.cap = cap;
        }
        rc = tf_broker_next(w->consumer, &w->in.env[w->in.n], left > 0 ? (int)(left * 1000) : 0, err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        w->in.at[w->in.n] = stage_wall_now();
        w->in.n++;
    }
    return 0;
}

/* Waits for the first delivery (up to idle_s), then lets the batch grow while deliveries
 * keep arriving (each within LINGER_S of the last), for at most the batch wait. Under load
 * the prefetched deliveries are already there and batches fill at once; a lone event is
 * held for LINGER_S, not for the whole batch wait. */
#define LINGER_S 0.002

static int gather(worker *w, double idle_s, tf_err *err)
{
    double end;

    if (w->in.n == 0 && inbox_fill(w, 1, idle_s, err) < 0)
        return -1;
    end = tf_now() + w->cfg.batch_wait_s;
    while (w->in.n > 0 && w->in.n < (size_t)w->cfg.batch) {
        size_t before = w->in.n;
        double left = end - tf_now();
        if (left <= 0)
            break;
        if (inbox_fill(w, (size_t)w->cfg.batch, left < LINGER_S ? left : LINGER_S, err) < 0)
            return -1;
        if (w->in.n == before)
            break;
    }
    return 0;
}

/* ---- classification ----------------------------------------------------------------- */

/* 0: item ready; 1: permanent failure, reason in err and its kind in *kind; -1: internal
 * failure. */
static int classify(worker *w, const amqp_envelope_t *env, work_item *item,
                    dead_letter_reason *kind, tf_err *err)
{
    const amqp_basic_properties_t *p = &env->message.properties;
    const amqp_field_value_t *schema = tf_amqp_header(p, TF_HEADER_SCHEMA);
    long long version;
    int rc;

    memset(item, 0, sizeof(*item));
    *kind = DL_CONTENT_TYPE;
    if ((p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) &&
        (p->content_type.len != strlen(TF_CONTENT_TYPE) ||
         memcmp(p->content_type.bytes, TF_CONTENT_TYPE, p->content_type.len) != 0))
        return tf_err_set(err, "content type '%.*s' is not " TF_CONTENT_TYPE,
                          (int)(p->content_type.len > 60 ? 60 : p->content_type.len),
                          (const char *)p->content_type.bytes), 1;
    *kind = DL_SCHEMA;
    if (!schema)
        return tf_err_set(err, "no " TF_HEADER_SCHEMA " header"), 1;
    if (tf_amqp_field_int(schema, &version) < 0 || version != TF_EVENT_SCHEMA)
        return tf_err_set(err, "unknown schema version (" TF_HEADER_SCHEMA " is not %d)",
                          TF_EVENT_SCHEMA), 1;
    rc = tf_event_decode(env->message.body.bytes, env->message.body.len,
                         (size_t)w->cfg.max_message, &item->ev, err);
    if (rc != TF_CODEC_OK) {
        *kind = rc == TF_CODEC_TOO_LARGE ? DL_TOO_LARGE : DL_UNDECODABLE;
        return 1;
    }
    *kind = DL_INVALID_EVENT;
    rc = applier_prepare_item(w->app, item, err);
    if (rc != 0)
        work_item_clear(item);
    return rc;
}

static void ack_front(worker *w, size_t n, tf_err *err)
{
    if (n == 0)
        return;
    /* Deliveries arrive in tag order and everything before them was acked: one
     * multiple-ack settles exactly the batch. */
    if (tf_broker_ack(w->consumer, w->in.env[n - 1].delivery_tag, 1, err) < 0)
        log_warn("ack failed (the messages come back and are dropped as duplicates)",
                 "reason=%s", tf_log_q(err->msg));
    for (size_t i = 0; i < n; i++)
        amqp_destroy_envelope(&w->in.env[i]);
    memmove(w->in.env, w->in.env + n, (w->in.n - n) * sizeof(*w->in.env));
    memmove(w->in.at, w->in.at + n, (w->in.n - n) * sizeof(*w->in.at));
    w->in.n -= n;
}

static int dead_letter_env(worker *w, const amqp_envelope_t *env, dead_letter_reason kind,
                           const char *reason, tf_err *err)
{
    char mid[64] = "";

    if (env->message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        snprintf(mid, sizeof(mid), "%.*s",
                 (int)(env->message.properties.message_id.len > 60 ? 60 : env->message.properties.message_id.len),
                 (const char *)env->message.properties.message_id.bytes);
    log_warn("dead-lettering message", "message_id=%s reason=%s", tf_log_q(*mid ? mid : "-"),
             tf_log_q(reason));
    w->dead++;
    tf_counter_add(w->metrics.dead_letters[kind], 1);
    return dead_letter_add(w->dl, w->publisher, env, reason, err);
}

/* ---- one batch ---------------------------------------------------------------------- */

/* Applies items with retries, as the retry policy (pg/retry.h) says: a permanent failure
 * of one event dead-letters it, of a multi-item batch is retried item by item so that the
 * one bad event is found; transient failures and our own wait (receiving meanwhile, so
 * heartbeats flow) and retry. 0 done, -1 broker lost or stopping. */
static int apply_with_retries(worker *w, work_item *items, amqp_envelope_t **envs, size_t n,
                              tf_err *err)
{
    apply_stats st;

    for (;;) {
        tf_failure_class cls;
        if (!tf_pg_connection_ok(w->pg)) {
            if (w->pg)
                PQfinish(w->pg);
            w->pg = NULL;
            if (connect_pg(w, err) < 0 || applier_recount(w->app, items, n, err) < 0)
                goto wait;
        }
        if (applier_resolve_terms(w->app, w->pg, items, n, err) == 0 &&
            (stage_clock_lap(&w->clock, STAGE_RESOLVE), 1) &&
            applier_apply(w->app, w->pg, items, n, &st, err) == 0) {
            tf_backoff_reset(&w->backoff);
            w->events += (unsigned long long)n;
            tf_counter_add(w->metrics.documents, n);
            tf_gauge_set(w->metrics.model_version, (double)applier_model(w->app)->version);
            log_debug("batch committed", "events=%zu applied=%d duplicates=%d stale=%d model_version=%lld",
                      n, st.applied, st.duplicates, st.stale, (long long)st.model_version);
            return 0;
        }
        cls = tf_failure_classify(err, tf_pg_connection_ok(w->pg));
        if (cls == TF_FAILURE_PERMANENT) {
            char reason[600];
            if (n == 1) {
                snprintf(reason, sizeof(reason), "database rejected the event: %s", err->msg);
                return dead_letter_env(w, envs[0], DL_DATABASE, reason, err);
            }
            log_warn("batch failed, retrying its events one by one", "events=%zu reason=%s",
                     n, tf_log_q(err->msg));
            for (size_t i = 0; i < n; i++)
                if (apply_with_retries(w, &items[i], &envs[i], 1, err) < 0)
                    return -1;
            return 0;
        }
    wait:
        update_readiness(w);
        if (tf_stop_requested())
            return tf_err_set(err, "stopping while the database is unavailable");
        {
            double d = tf_backoff_next(&w->backoff);
            log_warn("batch not applied, holding it and retrying", "events=%zu in_s=%.2f class=%s reason=%s",
                     n, d, tf_failure_name(tf_failure_classify(err, tf_pg_connection_ok(w->pg))),
                     tf_log_q(err->msg));
            if (inbox_fill(w, w->in.cap ? w->in.cap : 1, d, err) < 0)
                return -1; /* broker lost too: everything unacked is redelivered */
        }
    }
}

static int process_batch(worker *w, tf_err *err)
{
    size_t n = w->in.n < (size_t)w->cfg.batch ? w->in.n : (size_t)w->cfg.batch, m = 0;
    amqp_envelope_t **envs = malloc((n + 1) * sizeof(*envs));
    double start = tf_now(), start_wall = stage_wall_now();
    int rc = -1;

    if (!envs)
        return tf_err_set(err, "out of memory");
    stage_clock_start(&w->clock, start);
    w->clock.sec[STAGE_FILL] = n ? start_wall - w->in.at[0] : 0;
    for (size_t i = 0; i < n; i++) {
        tf_err why;
        dead_letter_reason kind;
        int c = classify(w, &w->in.env[i], &w->items[m], &kind, &why);
        if (c < 0) {
            *err = why;
            goto done;
        }
        if (c == 1) {
            if (dead_letter_env(w, &w->in.env[i], kind, why.msg, err) < 0)
                goto done;
            continue;
        }
        envs[m++] = &w->in.env[i];
    }
    stage_clock_lap(&w->clock, STAGE_TEXT);
    /* The dead letters are confirmed before anything is acked. */
    if (dead_letter_flush(w->dl, w->publisher, 30, err) < 0)
        goto done;
    if (m && apply_with_retries(w, w->items, envs, m, err) < 0)
        goto done;
    if (dead_letter_flush(w->dl, w->publisher, 30, err) < 0)
        goto done;
    {
        double recv = w->in.at[0];
        ack_front(w, n, err);
        stage_clock_lap(&w->clock, STAGE_ACK);
        worker_metrics_add_stages(&w->metrics, w->clock.sec);
        if (w->trace) {
            int64_t *ids = malloc((m + 1) * sizeof(*ids));
            for (size_t i = 0; ids && i < m; i++)
                ids[i] = w->items[i].ev.id;
            if (ids)
                stage_trace_batch(w->trace, recv, stage_wall_now(), &w->clock, ids, m);
            free(ids);
        }
    }
    maintenance_note_batch(w->upkeep);
    tf_histogram_observe(w->metrics.batch_seconds, tf_now() - start);
    rc = 0;
done:
    for (size_t i = 0; i < m; i++)
        work_item_clear(&w->items[i]);
    free(envs);
    return rc;
}

static void log_stats(worker *w)
{
    double rate;

    if (tf_progress_due(&w->progress, w->events, tf_now(), &rate) && rate > 0)
        log_info("progress", "events_total=%llu dead_lettered=%llu rate_per_s=%.0f model_version=%lld",
                 w->events, w->dead, rate, (long long)applier_model(w->app)->version);
}

/* ---- life --------------------------------------------------------------------------- */

static void run(worker *w)
{
    tf_err err;

    while (!tf_stop_requested()) {
        if (ensure_connected(w, &err) < 0) {
            double d = tf_backoff_next(&w->backoff);
            log_warn("cannot connect, retrying", "in_s=%.2f reason=%s", d, tf_log_q(err.msg));
            /* With the broker up, wait by receiving: heartbeats keep flowing and what
             * arrives waits in the inbox (bounded by the prefetch). */
            if (w->consumer && tf_broker_ok(w->consumer))
                inbox_fill(w, w->in.n + 1 + (size_t)w->cfg.batch * 4, d, &err);
            else
                tf_sleep_interruptible(d);
            continue;
        }
        if (gather(w, 0.25, &err) < 0 || (w->in.n && process_batch(w, &err) < 0)) {
            log_warn("broker connection lost, reconnecting", "reason=%s", tf_log_q(err.msg));
            drop_broker(w);
            tf_sleep_interruptible(tf_backoff_next(&w->backoff));
            continue;
        }
        log_stats(w);
    }
    /* Stopping: no new deliveries; finish what was already sent to us. */
    w->stopping = 1;
    update_readiness(w);
    if (w->consumer && w->pg && tf_broker_cancel(w->consumer, &err) == 0) {
        while (inbox_fill(w, (size_t)w->cfg.batch, 0.1, &err) == 0 && w->in.n > 0)
            if (process_batch(w, &err) < 0)
                break;
    }
}


int main(int argc, char **argv)
{
    worker w;
    tf_log_level level = TF_LOG_INFO;
    tf_err err;
    char host[64] = "worker";
    tf_metrics_server *server = NULL;
    tf_lexicon *lexicon = NULL;
    int rc;

    memset(&w, 0, sizeof(w));
    rc = tf_config_daemon("topicflow-worker",
                          "Consumes topicflow.nmf, updates the NMF topic model in PostgreSQL and "
                          "acks each event\nonly after its effects committed. Run several to "
                          "share the load.",
                          worker_options, N_OPTIONS, &w.cfg, argc, argv, &level);
    if (rc)
        return rc == 1 ? 0 : rc;
    tf_log_init("worker", level);
    if (worker_metrics_init(&w.metrics, &err) < 0 ||
        (w.cfg.metrics_addr &&
         !(server = tf_metrics_server_start(w.cfg.metrics_addr, w.metrics.registry, &err)))) {
        fprintf(stderr, "topicflow-worker: %s\n", err.msg);
        worker_metrics_free(&w.metrics);
        return 2;
    }
    if (w.cfg.trace) {
        const char *why = NULL;
        w.trace = stage_trace_open(w.cfg.trace, &why);
        if (!w.trace) {
            fprintf(stderr, "topicflow-worker: --trace %s: %s\n", w.cfg.trace, why);
            worker_metrics_free(&w.metrics);
            return 2;
        }
    }
    tf_signals_install();
    gethostname(host, sizeof(host) - 1);
    if (w.cfg.name)
        snprintf(w.name, sizeof(w.name), "%s", w.cfg.name);
    else
        snprintf(w.name, sizeof(w.name), "%s:%d", host, (int)getpid());
    tf_backoff_init(&w.backoff, 0.1, w.cfg.reconnect_max_s, (uint64_t)getpid() * 2654435761u);
    {
        tf_text_opts text = {.data_dir = w.cfg.data_dir ? w.cfg.data_dir : tf_data_dir(),
                             .max_input = (size_t)w.cfg.max_message};
        if (tf_lexicon_open(w.cfg.lexicon, text.data_dir, &lexicon, &err) < 0) {
            fprintf(stderr, "topicflow-worker: %s\n", err.msg);
            return 1;
        }
        text.lexicon = lexicon;
        if (lexicon)
            log_info("lexicon loaded", "arabic_terms=%zu", tf_lexicon_size(lexicon));
        w.app = applier_new(w.name, &text, &err);
    }
    w.dl = dead_letter_new();
    w.items = calloc((size_t)w.cfg.batch, sizeof(*w.items));
    if (!w.app || !w.dl || !w.items) {
        fprintf(stderr, "topicflow-worker: %s\n", w.app ? "out of memory" : err.msg);
        return 1;
    }
    tf_progress_init(&w.progress, 10, tf_now());
    {
        maintenance_opts mo = {w.cfg.pg_url, w.name, w.cfg.min_docs, w.cfg.refresh_every,
                               w.cfg.refresh_interval_s, w.cfg.refold_chunk, w.cfg.refit_auto,
                               w.cfg.refit_growth, w.cfg.refit_quiet_s, w.cfg.refit_min_interval_s,
                               w.cfg.measure_interval_s, &w.metrics, w.trace, tf_update_defaults()};
        mo.update.k = (int)w.cfg.k;
        mo.update.max_iter = (int)w.cfg.fit_iters;
        mo.update.tol = w.cfg.fit_tol;
        mo.update.min_df = (int)w.cfg.vocabulary.min_df;
        mo.update.max_df = w.cfg.vocabulary.max_df;
        mo.update.initial_only = 1;
        w.upkeep = maintenance_start(&mo, &err);
        if (!w.upkeep) {
            fprintf(stderr, "topicflow-worker: %s\n", err.msg);
            return 1;
        }
        applier_set_model_source(w.app, maintenance_take_model, w.upkeep);
        applier_set_clock(w.app, &w.clock);
    }
    log_info("starting", "version=%s worker=%s batch=%ld metrics_addr=%s", TOPICFLOW_VERSION,
             tf_log_q(w.name), w.cfg.batch, w.cfg.metrics_addr ? tf_log_q(w.cfg.metrics_addr) : "off");
    run(&w);
    maintenance_stop(w.upkeep);
    log_info("stopped", "worker=%s events_total=%llu dead_lettered=%llu", tf_log_q(w.name), w.events,
             w.dead);
    drop_broker(&w);
    if (w.pg)
        PQfinish(w.pg);
    applier_free(w.app);
    tf_lexicon_free(lexicon);
    dead_letter_free(w.dl);
    free(w.items);
    free(w.in.env);
    free(w.in.at);
    stage_trace_close(w.trace);
    tf_metrics_server_stop(server);
    worker_metrics_free(&w.metrics);
    return 0;
}
