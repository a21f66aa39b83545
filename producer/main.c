/*
 * topicflow-producer - drains topicflow.outbox into the topicflow.events exchange.
 *
 * Life: parse config -> connect (PostgreSQL with LISTEN, RabbitMQ with confirms and the
 * topology) -> loop { drain batches until the outbox is empty; wait for a NOTIFY or the
 * poll interval } -> on SIGTERM/SIGINT finish the batch in flight and exit 0.
 * A batch is marked published in the transaction that locked it and only for the events
 * the broker confirmed; any failure rolls it back, so an event is published at least once.
 * Retention and the backlog gauges run on a thread of their own (side_loop), never in the way
 * of publishing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "outbox.h"
#include "producer_metrics.h"
#include "publisher.h"
#include "wal_capture.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/backoff.h"
#include "base/config.h"
#include "base/lifecycle.h"
#include "base/log.h"
#include "base/progress.h"
#include "http/metrics_server.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "pg/retry.h"

#define MAX_SLOTS 4

typedef struct producer_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    const char *metrics_addr;
    long batch;
    double poll_s;
    int notify;
    double retention_s;
    double confirm_timeout_s;
    long heartbeat_s;
    tf_topology topology;
    double reconnect_max_s;
    long in_flight;
    long max_message;
    const char *capture, *slot;
    long slot_warn;
} producer_config;

static const tf_option producer_options[] = {
    TF_OPTIONS_CONNECTION(producer_config),
    TF_OPTIONS_METRICS(producer_config),
    {"batch", "TOPICFLOW_PRODUCER_BATCH", TF_OPT_INT, "500",
     "events per batch (also the publisher-confirm window)", offsetof(producer_config, batch), 1, 100000},
    {"poll", "TOPICFLOW_PRODUCER_POLL", TF_OPT_DURATION, "1s",
     "poll interval: the longest a lost NOTIFY can delay an event", offsetof(producer_config, poll_s), 0.001, 3600},
    {"notify", "TOPICFLOW_PRODUCER_NOTIFY", TF_OPT_BOOL, "on",
     "wake on LISTEN topicflow_outbox (off: poll only)", offsetof(producer_config, notify), 0, 0},
    {"retention", "TOPICFLOW_RETENTION", TF_OPT_DURATION, "7d",
     "delete published events older than this (0: keep forever)", offsetof(producer_config, retention_s), 0, 0},
    {"confirm-timeout", "TOPICFLOW_CONFIRM_TIMEOUT", TF_OPT_DURATION, "30s",
     "longest wait for the broker's confirms of a batch", offsetof(producer_config, confirm_timeout_s), 0.1, 3600},
    {"heartbeat", "TOPICFLOW_AMQP_HEARTBEAT", TF_OPT_INT, "30",
     "AMQP heartbeat in seconds (0: off)", offsetof(producer_config, heartbeat_s), 0, 600},
    TF_OPTIONS_TOPOLOGY(producer_config, topology),
    {"reconnect-max", "TOPICFLOW_RECONNECT_MAX", TF_OPT_DURATION, "30s",
     "cap of the reconnect backoff", offsetof(producer_config, reconnect_max_s), 0.1, 3600},
    {"in-flight", "TOPICFLOW_PRODUCER_IN_FLIGHT", TF_OPT_INT, "2",
     "batches awaiting confirms at once, each in its own database session",
     offsetof(producer_config, in_flight), 1, MAX_SLOTS},
    TF_OPTIONS_MAX_MESSAGE(producer_config, max_message,
                           "larger messages are set aside (topicflow outbox list), not published"),
    TF_OPTIONS_CAPTURE(producer_config),
    {"slot", "TOPICFLOW_SLOT", TF_OPT_STRING, NULL,
     "capture wal: the logical replication slot (default: topicflow.capture_slot(), "
     "topicflow_<database>)", offsetof(producer_config, slot), 0, 0},
    {"slot-warn", "TOPICFLOW_SLOT_WARN", TF_OPT_SIZE, "1GiB",
     "capture wal: warn when the slot retains more WAL than this (0: never)",
     offsetof(producer_config, slot_warn), 0, 1L << 50},
};
#define N_OPTIONS (sizeof(producer_options) / sizeof(producer_options[0]))

/* One database session per batch in flight: a batch's rows stay locked in its own
 * transaction until the broker confirmed it, while the next slot already works. */
typedef struct slot {
    PGconn *pg;
    outbox_batch batch;
    int open;      /* a transaction is open on pg */
    int in_flight; /* its batch was submitted and awaits confirms */
    double submitted_at; /* tf_now() when it was */
} slot;

typedef struct producer {
    producer_config cfg;
    slot slots[MAX_SLOTS];
    int n_slots, cur;
    int64_t next_id;        /* where the next fetch may start (see scan_start) */
    double next_full_scan;
    tf_broker *broker;
    publisher *pub;
    tf_backoff backoff;
    double next_retention;
    /* retention's and the backlog gauges' own session and thread (side_loop), connected when
     * first needed; only that thread touches side_pg, next_retention and next_backlog */
    PGconn *side_pg;
    pthread_t side_thread;
    atomic_int side_stop;
    atomic_int side_ready;  /* the drain connected once: the schema is there (migrate ran) */
    double next_backlog;    /* when the backlog gauges are sampled again */
    tf_progress progress;
    unsigned long long published, set_aside;
    size_t nacked;          /* events nacked since the last check in run() */
    producer_metrics metrics;
    int connected_once;     /* a later connect is a reconnect */
} producer;


static int connect_slot(producer *p, int i, tf_err *err)
{
    slot *s = &p->slots[i];

    s->pg = tf_migrate_connect(p->cfg.pg_url, "topicflow-producer", err);
    if (!s->pg)
        return -1;
    if (outbox_prepare(s->pg, err) < 0)
        goto fail;
    /* Slot 0's session is also the one that listens (and is watched while idle). */
    if (i == 0 && p->cfg.notify && tf_pg_command(s->pg, "listen topicflow_outbox", err) < 0)
        goto fail;
    return 0;
fail:
    PQfinish(s->pg);
    s->pg = NULL;
    return -1;
}

static int connect_broker(producer *p, tf_err *err)
{
    p->broker = tf_broker_open(p->cfg.amqp_url, &p->cfg.amqp_tls,
                               (int)p->cfg.heartbeat_s, err);
    if (!p->broker)
        return -1;
    if (tf_topology_declare(p->broker, &p->cfg.topology, NULL, err) < 0 ||
        tf_broker_confirm_select(p->broker, err) < 0) {
        tf_broker_close(p->broker);
        p->broker = NULL;
        return -1;
    }
    publisher_reset(p->pub);
    return 0;
}

/* /readyz: every slot's session and the broker connection are up. */
static void update_readiness(producer *p)
{
    const char *why = NULL;

    for (int i = 0; i < p->n_slots && !why; i++)
        if (!p->slots[i].pg || PQstatus(p->slots[i].pg) != CONNECTION_OK)
            why = "not connected to PostgreSQL";
    if (!why && (!p->broker || !tf_broker_ok(p->broker)))
        why = "not connected to RabbitMQ";
    tf_metrics_set_unready(p->metrics.registry, why);
}

static int ensure_connected(producer *p, tf_err *err)
{
    int was_down = !p->broker, rc = -1;

    for (int i = 0; i < p->n_slots; i++) {
        was_down |= !p->slots[i].pg;
        if (!p->slots[i].pg && connect_slot(p, i, err) < 0)
            goto done;
    }
    if (!p->broker && connect_broker(p, err) < 0)
        goto done;
    if (was_down) {
        log_info("connected", "batch=%ld in_flight=%d notify=%s poll_s=%.3f", p->cfg.batch,
                 p->n_slots, p->cfg.notify ? "on" : "off", p->cfg.poll_s);
        if (p->connected_once)
            tf_counter_add(p->metrics.reconnects, 1);
        p->connected_once = 1;
        atomic_store(&p->side_ready, 1);
    }
    rc = 0;
done:
    update_readiness(p);
    return rc;
}

/* After a failure: roll back every open batch (its rows will be published again), forget
 * the confirms in flight, and drop the connections that are broken. */
static void abandon_all(producer *p)
{
    for (int i = 0; i < p->n_slots; i++) {
        slot *s = &p->slots[i];
        outbox_batch_reset(&s->batch);
        if (s->pg && s->open && PQstatus(s->pg) == CONNECTION_OK)
            PQclear(PQexec(s->pg, "rollback"));
        s->open = s->in_flight = 0;
        if (s->pg && PQstatus(s->pg) != CONNECTION_OK) {
            PQfinish(s->pg);
            s->pg = NULL;
        }
    }
    publisher_reset(p->pub);
    p->next_id = 0; /* the rolled-back rows are below it */
    if (p->broker && !tf_broker_ok(p->broker)) {
        tf_broker_close(p->broker);
        p->broker = NULL;
    }
    p->cur = 0;
    update_readiness(p);
}

/* Waits for the confirms of slot s's batch, marks the acked rows and commits.
 * *refused counts the events the broker nacked or returned (left unpublished). */
static int settle_slot(producer *p, slot *s, int *refused, tf_err *err)
{
    const int64_t *acked;
    size_t n_acked, n = s->batch.n - s->batch.n_rejected;
    long long first_id = s->batch.n ? (long long)s->batch.events[0].id : 0;

    if (publisher_settle_oldest(p->pub, p->broker, p->cfg.confirm_timeout_s, &acked, &n_acked,
                                err) < 0)
        return -1;
    tf_histogram_observe(p->metrics.confirm_seconds, tf_now() - s->submitted_at);
    if (n_acked > 0 && outbox_mark_published(s->pg, &s->batch, acked, n_acked, err) < 0)
        return -1;
    /* Rows no message can be made of are set aside in the same transaction, so they never
     * hold up the rows behind them and are never lost (topicflow outbox list). */
    if (s->batch.n_rejected && outbox_set_aside(s->pg, &s->batch, err) < 0)
        return -1;
    for (size_t i = 0; i < s->batch.n && s->batch.n_rejected; i++)
        if (s->batch.reject[i])
            log_warn("outbox event set aside", "id=%lld reason=%s",
                     (long long)s->batch.events[i].id, tf_log_q(s->batch.reject[i]));
    if (tf_pg_command(s->pg, "commit", err) < 0)
        return -1;
    p->set_aside += s->batch.n_rejected;
    tf_counter_add(p->metrics.set_aside, s->batch.n_rejected);
    s->open = s->in_flight = 0;
    outbox_batch_reset(&s->batch);
    p->published += n_acked;
    tf_counter_add(p->metrics.published, n_acked);
    if (n_acked)
        tf_counter_add(p->metrics.batches, 1);
    p->nacked += publisher_last_nacked(p->pub);
    if (n_acked < n) {
        *refused += (int)(n - n_acked);
        log_warn("events refused by the broker (nacked or unroutable)",
                 "refused=%zu nacked=%zu first_id=%lld", n - n_acked,
                 publisher_last_nacked(p->pub), first_id);
    }
    log_debug("batch published", "events=%zu first_id=%lld", n_acked, first_id);
    return 0;
}

/* Settles every batch in flight, oldest first. */
static int flush(producer *p, int *refused, tf_err *err)
{
    for (int k = 0; k < p->n_slots; k++) {
        slot *s = &p->slots[(p->cur + k) % p->n_slots];
        if (s->in_flight && settle_slot(p, s, refused, err) < 0)
            return -1;
    }
    return 0;
}

/*
 * Where to start the next fetch. Scanning from the head of the outbox walks the index
 * entries of every row published since the last vacuum, so batches continue after the
 * last id fetched. Because a lower id can commit after higher ones, a full scan (from 0)
 * still happens at least every poll interval and whenever the continued scan finds nothing.
 */
static int64_t scan_start(producer *p)
{
    if (tf_now() < p->next_full_scan)
        return p->next_id;
    p->next_full_scan = tf_now() + p->cfg.poll_s;
    return 0;
}

/*
 * One step of the pipeline: settle the oldest batch if its slot is needed again, then lock
 * and submit the next batch on that slot. Returns the number of events submitted (0: the
 * outbox is drained) or -1.
 */
static int drain_step(producer *p, int *refused, tf_err *err)
{
    slot *s = &p->slots[p->cur];
    int64_t from;
    int n;

    if (s->in_flight && settle_slot(p, s, refused, err) < 0)
        return -1;
    if (tf_pg_command(s->pg, "begin", err) < 0)
        return -1;
    s->open = 1;
    from = scan_start(p);
    n = outbox_fetch(s->pg, (int)p->cfg.batch, from, &s->batch, err);
    if (n == 0 && from > 0) {
        p->next_full_scan = 0;
        from = scan_start(p);
        n = outbox_fetch(s->pg, (int)p->cfg.batch, from, &s->batch, err);
    }
    if (n < 0)
        return -1;
    if (n > 0)
        p->next_id = s->batch.events[n - 1].id + 1;
    if (n == 0) {
        s->open = 0;
        return tf_pg_command(s->pg, "commit", err);
    }
    if (publisher_submit(p->pub, p->broker, &s->batch, (size_t)p->cfg.max_message, err) < 0)
        return -1;
    s->in_flight = 1;
    s->submitted_at = tf_now();
    p->cur = (p->cur + 1) % p->n_slots;
    return n;
}

/* Retention: outbox_retention_pass with up to RETENTION_BUDGET_S per pass. */
#define RETENTION_BUDGET_S 1.0

/* The session of retention and the backlog gauges, their own: under load every slot's
 * session is inside a batch transaction. NULL (reason logged as `what` failed) when it
 * cannot connect. */
static PGconn *side_session(producer *p, const char *what)
{
    tf_err err;

    if (!p->side_pg) {
        p->side_pg = tf_pg_connect(p->cfg.pg_url, "topicflow-producer-side", &err);
        if (!p->side_pg || outbox_prepare(p->side_pg, &err) < 0) {
            log_warn(what, "reason=%s", tf_log_q(err.msg));
            PQfinish(p->side_pg);
            p->side_pg = NULL;
        }
    }
    return p->side_pg;
}

/* After a failed statement on the side session: drop it when the connection broke. */
static void side_session_failed(producer *p, const char *what, const tf_err *err)
{
    log_warn(what, "reason=%s", tf_log_q(err->msg));
    if (!tf_pg_connection_ok(p->side_pg)) {
        PQfinish(p->side_pg);
        p->side_pg = NULL;
    }
}

static void run_retention(producer *p)
{
    long total = 0;
    double start = tf_now();
    tf_err err;

    if (p->cfg.retention_s <= 0 || start < p->next_retention)
        return;
    p->next_retention = start + OUTBOX_RETENTION_EVERY_S;
    if (!side_session(p, "retention failed"))
        return;
    if (outbox_retention_pass(p->side_pg, p->cfg.retention_s, RETENTION_BUDGET_S, &total,
                              &err) < 0) {
        side_session_failed(p, "retention failed", &err);
        return;
    }
    if (total > 0)
        log_info("retention deleted published events", "deleted=%ld ms=%.0f", total,
                 (tf_now() - start) * 1000);
}

/* The outbox gauges, sampled every BACKLOG_EVERY_S when metrics are served. */
#define BACKLOG_EVERY_S 5.0

static void sample_backlog(producer *p)
{
    long long pending;
    double age;
    tf_err err;

    if (!p->cfg.metrics_addr || tf_now() < p->next_backlog)
        return;
    p->next_backlog = tf_now() + BACKLOG_EVERY_S;
    if (!side_session(p, "outbox backlog not sampled"))
        return;
    if (outbox_backlog(p->side_pg, &pending, &age, &err) < 0) {
        side_session_failed(p, "outbox backlog not sampled", &err);
        return;
    }
    tf_gauge_set(p->metrics.outbox_pending, (double)pending);
    tf_gauge_set(p->metrics.outbox_oldest_age_s, age);
}

/*
 * The side thread: retention and the backlog gauges run beside the drain, never on its loop,
 * so that however long a pass takes (one that read the not yet summarized pages of a large
 * outbox took 0.7 s) nothing waits to be published meanwhile.
 */
#define SIDE_TICK_S 0.2

static void *side_loop(void *arg)
{
    producer *p = arg;

    while (!tf_stop_requested() && !atomic_load(&p->side_stop)) {
        /* not before the drain connected: it is the one that says "run migrate" first */
        if (atomic_load(&p->side_ready)) {
            run_retention(p);
            sample_backlog(p);
        }
        tf_sleep_interruptible(SIDE_TICK_S);
    }
    return NULL;
}

static void log_stats(producer *p)
{
    double rate;

    if (tf_progress_due(&p->progress, p->published, tf_now(), &rate) && rate > 0)
        log_info("progress", "published_total=%llu rate_per_s=%.0f", p->published, rate);
}

/* Waits for a NOTIFY, the poll interval, or a stop request, servicing AMQP heartbeats. */
static int wait_for_work(producer *p, tf_err *err)
{
    double deadline = tf_now() + p->cfg.poll_s;
    double slice = p->broker && tf_broker_heartbeat(p->broker) > 0
                       ? tf_broker_heartbeat(p->broker) / 4.0 : 1.0;
    PGnotify *early;
    int pending = 0;

    /* A NOTIFY that arrived while the last batch ran is already in libpq's queue: its
     * socket will not become readable again, so look before waiting. */
    PQconsumeInput(p->slots[0].pg);
    while ((early = PQnotifies(p->slots[0].pg)) != NULL) {
        pending = 1;
        PQfreemem(early);
    }
    if (pending)
        return 0;

    while (!tf_stop_requested()) {
        double left = deadline - tf_now();
        int pgfd = PQsocket(p->slots[0].pg), afd = tf_broker_fd(p->broker);
        struct timeval tv;
        fd_set rd;
        PGnotify *note;
        int woke = 0;

        if (left <= 0)
            return 0;
        if (left > slice)
            left = slice;
        tv.tv_sec = (time_t)left;
        tv.tv_usec = (suseconds_t)((left - (double)tv.tv_sec) * 1e6);
        FD_ZERO(&rd);
        FD_SET(pgfd, &rd);
        FD_SET(afd, &rd);
        if (select((pgfd > afd ? pgfd : afd) + 1, &rd, NULL, NULL, &tv) < 0 && errno != EINTR)
            return tf_err_set(err, "select: %s", strerror(errno));
        if (PQconsumeInput(p->slots[0].pg) == 0)
            return tf_pg_result_error(p->slots[0].pg, NULL, err);
        while ((note = PQnotifies(p->slots[0].pg)) != NULL) {
            woke = 1;
            PQfreemem(note);
        }
        if (tf_broker_service(p->broker, 0, err) < 0)
            return -1;
        if (woke)
            return 0;
    }
    return 0;
}

/*
 * The retry policy (pg/retry.h) as it applies here: the producer writes nothing an event's
 * data could make the database refuse (rows it cannot turn into a message are set aside
 * before anything is written), so every failure is waited out; the class tells an operator
 * whether to look at the servers (transient) or at the deployment (ours: privileges, schema).
 */
static void retry_after_failure(producer *p, const char *what, const tf_err *err)
{
    int pg_ok = 1;
    double d = tf_backoff_next(&p->backoff);

    for (int i = 0; i < p->n_slots; i++)
        pg_ok &= !p->slots[i].pg || tf_pg_connection_ok(p->slots[i].pg);
    /* A failure without a SQLSTATE on healthy sessions is the broker's (a lost connection,
     * confirms not received): transient too. */
    log_warn(what, "in_s=%.2f class=%s reason=%s", d,
             err->code[0] || !pg_ok ? tf_failure_name(tf_failure_classify(err, pg_ok)) : "transient",
             tf_log_q(err->msg));
    abandon_all(p);
    tf_sleep_interruptible(d);
}

/*
 * A nack says the queue did not take the events through this channel, and the channel may
 * never take them: RabbitMQ 3.10 nacks every publish of a channel whose first publish to a
 * quorum queue found the queue's recorded leader on a dead node (rabbit_fifo_client keeps
 * asking that node; seen in test_cluster when the leader's node is killed). So the events
 * are retried through a new connection, as the worker does after a nacked dead letter.
 */
static void reconnect_after_nack(producer *p)
{
    log_warn("events nacked by the broker; reconnecting", "nacked=%zu", p->nacked);
    p->nacked = 0;
    abandon_all(p);
    tf_broker_close(p->broker);
    p->broker = NULL;
}

static int run(producer *p)
{
    tf_err err;

    while (!tf_stop_requested()) {
        int n, refused = 0;

        if (ensure_connected(p, &err) < 0) {
            retry_after_failure(p, "cannot connect, retrying", &err);
            continue;
        }
        n = drain_step(p, &refused, &err);
        if (n == 0)
            n = flush(p, &refused, &err);
        else if (n > 0)
            n = 1;
        if (n < 0) {
            retry_after_failure(p, "batch rolled back, retrying", &err);
            continue;
        }
        if (refused) {
            if (p->nacked)
                reconnect_after_nack(p);
            tf_sleep_interruptible(tf_backoff_next(&p->backoff));
            continue;
        }
        tf_backoff_reset(&p->backoff);
        log_stats(p);
        if (n > 0)
            continue; /* more may be waiting */
        if (wait_for_work(p, &err) < 0) {
            log_warn("connection lost while idle", "reason=%s", tf_log_q(err.msg));
            abandon_all(p);
        }
    }
    /* Stop requested: settle what is in flight so that its rows are marked now. */
    if (p->broker) {
        int refused = 0;
        if (flush(p, &refused, &err) < 0) {
            log_warn("in-flight batches rolled back at shutdown", "reason=%s", tf_log_q(err.msg));
            abandon_all(p);
        }
    }
    return 0;
}


int main(int argc, char **argv)
{
    producer p;
    tf_log_level level;
    tf_metrics_server *server = NULL;
    tf_err err;
    int rc;

    memset(&p, 0, sizeof(p));
    rc = tf_config_daemon("topicflow-producer",
                          "Publishes every event of topicflow.outbox to the RabbitMQ exchange "
                          "topicflow.events,\nat least once and in id order, marking each "
                          "published once the broker confirmed it.\nWith --capture wal it "
                          "reads the database's logical replication slot instead (tables\n"
                          "tracked with topicflow track --capture wal) and publishes each "
                          "committed change in\ncommit order, moving the slot past a "
                          "transaction once the broker confirmed all of it;\nbetween the "
                          "slot's frames it drains topicflow.outbox too (replays, retried rows).",
                          producer_options, N_OPTIONS, &p.cfg, argc, argv, &level);
    if (rc)
        return rc == 1 ? 0 : rc;
    tf_log_init("producer", level);
    if (producer_metrics_init(&p.metrics, &err) < 0 ||
        (p.cfg.metrics_addr &&
         !(server = tf_metrics_server_start(p.cfg.metrics_addr, p.metrics.registry, &err)))) {
        fprintf(stderr, "topicflow-producer: %s\n", err.msg);
        producer_metrics_free(&p.metrics);
        return 2;
    }
    tf_signals_install();
    tf_backoff_init(&p.backoff, 0.1, p.cfg.reconnect_max_s, (uint64_t)getpid() * 2654435761u);
    p.pub = publisher_new();
    if (!p.pub) {
        log_error("out of memory", "");
        return 1;
    }
    tf_progress_init(&p.progress, 10, tf_now());
    p.n_slots = (int)p.cfg.in_flight;
    log_info("starting", "version=%s capture=%s batch=%ld metrics_addr=%s", TOPICFLOW_VERSION,
             p.cfg.capture, p.cfg.batch,
             p.cfg.metrics_addr ? tf_log_q(p.cfg.metrics_addr) : "off");
    if (strcmp(p.cfg.capture, "wal") == 0) {
        /* --batch is the confirm window here: the messages awaiting confirms at most. */
        wal_capture_config wc = {p.cfg.pg_url, p.cfg.amqp_url, &p.cfg.amqp_tls,
                                 (int)p.cfg.heartbeat_s, &p.cfg.topology,
                                 p.cfg.confirm_timeout_s, p.cfg.reconnect_max_s,
                                 (size_t)p.cfg.batch * (size_t)p.cfg.in_flight,
                                 (size_t)p.cfg.max_message, p.cfg.slot, p.cfg.slot_warn,
                                 (int)p.cfg.batch, p.cfg.poll_s, p.cfg.notify,
                                 p.cfg.retention_s};
        wal_capture_run(&wc, &p.metrics);
    } else {
        atomic_init(&p.side_stop, 0);
        atomic_init(&p.side_ready, 0);
        if (pthread_create(&p.side_thread, NULL, side_loop, &p) != 0) {
            log_error("cannot start the retention thread", "");
            return 1;
        }
        run(&p);
        atomic_store(&p.side_stop, 1);
        pthread_join(p.side_thread, NULL);
        log_info("stopped", "published_total=%llu set_aside_total=%llu", p.published,
                 p.set_aside);
    }
    for (int i = 0; i < p.n_slots; i++) {
        outbox_batch_free(&p.slots[i].batch);
        if (p.slots[i].pg)
            PQfinish(p.slots[i].pg);
    }
    PQfinish(p.side_pg);
    publisher_free(p.pub);
    tf_broker_close(p.broker);
    tf_metrics_server_stop(server);
    producer_metrics_free(&p.metrics);
    return 0;
}
