/*
 * bench-capture - the two capture modes in one run, on the same table and servers:
 *   writers: 4 connections committing single-row inserts into internships, per mode
 *            (outbox with NOTIFY on and a listener, as in production; wal), commits/s and
 *            PostgreSQL CPU per insert;
 *   drain:   topicflow-producer --capture outbox|wal started on the backlog (the writers'
 *            rows and --events more in 1,000-row transactions), events/s and PostgreSQL CPU
 *            per event (walsender decoding included), against
 *   ceiling: the broker's own rate for the same messages, published from memory with the
 *            same confirm window.
 * Expects a migrated, empty database and a vhost of its own (bench/run capture sets them up).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "proc_cpu.h"
#include "publisher.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/config.h"
#include "pg/pg.h"

typedef struct bench_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    long events, batch, writer_txns, writers;
    const char *producer_bin, *producer_pg_url;
} bench_config;

static const tf_option bench_options[] = {
    TF_OPTIONS_CONNECTION(bench_config),
    {"events", NULL, TF_OPT_INT, "50000", "backlog rows per drain (besides the writers' rows)", offsetof(bench_config, events), 1000, 1e8},
    {"batch", NULL, TF_OPT_INT, "500", "producer --batch (confirm window: batch x 2 in flight)", offsetof(bench_config, batch), 1, 100000},
    {"writer-txns", NULL, TF_OPT_INT, "3000", "insert transactions per writer per mode", offsetof(bench_config, writer_txns), 1, 1e7},
    {"writers", NULL, TF_OPT_INT, "4", "concurrent writer connections", offsetof(bench_config, writers), 1, 64},
    {"producer", NULL, TF_OPT_STRING, NULL, "path of topicflow-producer (default: beside this program)", offsetof(bench_config, producer_bin), 0, 0},
    {"producer-pg", "TOPICFLOW_BENCH_PRODUCER_PG_URL", TF_OPT_URL, NULL, "URL topicflow-producer connects with (default --pg)", offsetof(bench_config, producer_pg_url), 0, 0},
};
#define N_OPTIONS (sizeof(bench_options) / sizeof(bench_options[0]))

/* This server's postmaster (the parent of our backend): its tree's CPU is PostgreSQL's here,
 * whatever other servers the machine runs. */
static pid_t postmaster;

static double pg_cpu(void)
{
    return proc_cpu_tree_seconds(postmaster);
}

static char *text_of(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    char *v = NULL;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

/* The backlog: rows of ~1 KB of text in transactions of 1,000 (as the writers of a busy
 * backend commit them, not one giant statement). */
static void fill(PGconn *c, long n)
{
    char sql[1024];

    for (long done = 0; done < n; done += 1000) {
        snprintf(sql, sizeof(sql),
                 "insert into internships (title, company, location, description, skills)"
                 " select 'Software engineering intern ' || g, 'Company ' || (g %% 500), 'Amman',"
                 " repeat('Join our platform team to build reliable data pipelines in C and SQL. ', 13)"
                 " || md5(g::text), array['c', 'sql', 'linux', 'skill' || (g %% 300)]"
                 " from generate_series(%ld, %ld) g", done + 1, done + (n - done < 1000 ? n - done : 1000));
        bench_exec(c, sql);
    }
}

typedef struct rate {
    double per_s, pg_us_per_event;
} rate;

/* The writers' commits/s and PostgreSQL CPU per insert; in outbox mode a session listens
 * on topicflow_outbox, as the producer does. */
static rate writer_rate(const bench_config *cfg, int listen)
{
    bench_writers w = {cfg->pg_url, cfg->writers, cfg->writer_txns, listen, 0, pg_cpu};
    double pg_used, t = bench_writers_run(&w, &pg_used);
    long n = cfg->writers * cfg->writer_txns;

    return (rate){(double)n / t, pg_used * 1e6 / (double)n};
}

static void purge_queue(const bench_config *cfg)
{
    bench_purge_queue(cfg->amqp_url, &cfg->amqp_tls);
}

/* The producer started on the backlog of `events`, until done_sql says 1. */
static rate drain(const bench_config *cfg, PGconn *c, const char *capture, const char *done_sql,
                  long events)
{
    char batch[16];
    double t0, elapsed, pg_used, pg0 = pg_cpu();
    pid_t pid;
    int status;

    snprintf(batch, sizeof(batch), "%ld", cfg->batch);
    t0 = bench_now();
    pid = fork();
    if (pid == 0) {
        setenv("TOPICFLOW_PG_URL", cfg->producer_pg_url ? cfg->producer_pg_url : cfg->pg_url, 1);
        setenv("TOPICFLOW_AMQP_URL", cfg->amqp_url, 1);
        setenv("TOPICFLOW_LOG", "warn", 1);
        execl(cfg->producer_bin, cfg->producer_bin, "--batch", batch, "--capture", capture,
              (char *)NULL);
        _exit(127);
    }
    for (;;) {
        char *v = text_of(c, done_sql);
        int done = v && strcmp(v, "1") == 0;
        free(v);
        if (done)
            break;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "bench-capture: %s exited early\n", cfg->producer_bin);
            exit(1);
        }
        usleep(5000);
    }
    elapsed = bench_now() - t0;
    /* sampled while the producer's sessions (and its walsender) still live */
    pg_used = pg_cpu() - pg0;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return (rate){(double)events / elapsed, pg_used * 1e6 / (double)events};
}

/* The broker alone: n messages like the backlog's, published from memory through the same
 * message code and a confirm window of the producer's size. */
static double ceiling(const bench_config *cfg, long n)
{
    size_t window = (size_t)cfg->batch * 2, pending = 0;
    uint8_t *state = calloc(window, 1);
    uint64_t first = 0;
    tf_topology topo = tf_topology_defaults();
    tf_event_field fields[3];
    char desc[1100];
    tf_event ev;
    tf_err err;
    double t0;
    tf_broker *b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);

    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0 ||
        tf_broker_confirm_select(b, &err) < 0)
        bench_die("broker", &err);
    desc[0] = '\0';
    for (int i = 0; i < 13; i++)
        strcat(desc, "Join our platform team to build reliable data pipelines in C and SQL. ");
    strcat(desc, "0cc175b9c0f1b6a831c399e269772661");
    fields[0] = (tf_event_field){{"title", 5}, {"Software engineering intern 1", 29}};
    fields[1] = (tf_event_field){{"description", 11}, {desc, strlen(desc)}};
    fields[2] = (tf_event_field){{"skills", 6}, {"c, sql, linux, skill1", 21}};
    memset(&ev, 0, sizeof(ev));
    ev.type = TF_EVENT_CREATED;
    ev.aggregate = (tf_str){"internship", 10};
    ev.source = (tf_str){"public.internships", 18};
    ev.n_fields = 3;
    ev.fields = fields;
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        uint64_t tag;
        size_t len;
        char id[24];
        ev.id = ev.version = (int64_t)1 << 62 | i;
        snprintf(id, sizeof(id), "%ld", i + 1);
        ev.aggregate_id = (tf_str){id, strlen(id)};
        ev.occurred_at = (int64_t)time(NULL) * 1000000;
        if (pending == window) {
            if (tf_broker_wait_confirms(b, first, pending, state, window / 2, 30, NULL, NULL,
                                        &err) < 0)
                bench_die("confirms", &err);
            memmove(state, state + window / 2, window - window / 2);
            pending -= window / 2;
            first += window / 2;
            memset(state + pending, 0, window - pending);
        }
        if (publisher_send(b, &ev, (size_t)1 << 30, &tag, &len, &err) != 1)
            bench_die("publish", &err);
        if (pending == 0)
            first = tag;
        state[pending++] = TF_CONFIRM_PENDING;
    }
    if (pending && tf_broker_wait_confirms(b, first, pending, state, pending, 30, NULL, NULL,
                                           &err) < 0)
        bench_die("confirms", &err);
    t0 = bench_now() - t0;
    tf_broker_close(b);
    free(state);
    return (double)n / t0;
}

int main(int argc, char **argv)
{
    bench_config cfg;
    char bin[1100], *lsn, done_wal[512];
    rate w_outbox, w_wal, d_outbox, d_wal;
    double ceil_rate;
    long drained;
    PGconn *c;
    tf_err err;
    int first, rc;

    rc = tf_config_parse(bench_options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_HELP) {
        tf_config_usage(stdout, "bench-capture [options]",
                        "Capture outbox (NOTIFY on) against capture wal on the same table: "
                        "writer commits/s,\ndrain events/s against the broker ceiling, and "
                        "PostgreSQL CPU per event. Run through bench/run capture.",
                        bench_options, N_OPTIONS);
        return 0;
    }
    if (rc != TF_CONFIG_OK)
        bench_die("options", &err);
    if (!cfg.producer_bin)
        cfg.producer_bin = bench_producer_beside(bin, sizeof(bin));
    c = tf_pg_connect(cfg.pg_url, "bench-capture", &err);
    if (!c)
        bench_die("connect", &err);
    bench_exec(c, "set client_min_messages = warning");
    postmaster = proc_parent((pid_t)PQbackendPID(c));
    if (postmaster <= 0) {
        fprintf(stderr, "bench-capture: the server must run on this machine (no /proc entry of"
                        " backend %d)\n", PQbackendPID(c));
        return 1;
    }

    /* outbox, NOTIFY on */
    bench_exec(c, "select topicflow.track('internships', 'id', array['title', 'description',"
                   " 'skills'], 'internship', 'outbox')");
    w_outbox = writer_rate(&cfg, 1);
    fill(c, cfg.events);
    purge_queue(&cfg);
    drained = cfg.events + cfg.writers * cfg.writer_txns;
    d_outbox = drain(&cfg, c, "outbox",
                     "select (not exists (select 1 from topicflow.outbox where published_at is null))::int",
                     drained);

    /* wal: the slot is created by track(), so it starts reading here */
    bench_exec(c, "select topicflow.track('internships', 'id', array['title', 'description',"
                   " 'skills'], 'internship', 'wal')");
    w_wal = writer_rate(&cfg, 0);
    fill(c, cfg.events);
    lsn = text_of(c, "select pg_current_wal_lsn()::text");
    snprintf(done_wal, sizeof(done_wal),
             "select coalesce((select (confirmed_flush_lsn >= '%s')::int from pg_replication_slots"
             " where slot_name = topicflow.capture_slot()), 0)", lsn);
    purge_queue(&cfg);
    d_wal = drain(&cfg, c, "wal", done_wal, drained);
    bench_exec(c, "select pg_drop_replication_slot(topicflow.capture_slot())");

    purge_queue(&cfg);
    ceil_rate = ceiling(&cfg, drained);
    purge_queue(&cfg);

    printf("| capture (%ld writers x %ld commits; drain of %ld events, --batch %ld) | outbox (NOTIFY on) | wal | wal / outbox |\n",
           cfg.writers, cfg.writer_txns, drained, cfg.batch);
    printf("| --- | --- | --- | --- |\n");
    printf("| writer commits/s | %.0f | %.0f | %.2fx |\n", w_outbox.per_s, w_wal.per_s,
           w_wal.per_s / w_outbox.per_s);
    printf("| PostgreSQL CPU per insert, writers (us) | %.1f | %.1f | %.2f |\n",
           w_outbox.pg_us_per_event, w_wal.pg_us_per_event,
           w_wal.pg_us_per_event / w_outbox.pg_us_per_event);
    printf("| drain events/s | %.0f | %.0f | %.2fx |\n", d_outbox.per_s, d_wal.per_s,
           d_wal.per_s / d_outbox.per_s);
    printf("| drain / broker ceiling (%.0f events/s) | %.1f %% | %.1f %% | |\n", ceil_rate,
           100 * d_outbox.per_s / ceil_rate, 100 * d_wal.per_s / ceil_rate);
    printf("| PostgreSQL CPU per event, drain (us) | %.1f | %.1f | %.2f |\n",
           d_outbox.pg_us_per_event, d_wal.pg_us_per_event,
           d_wal.pg_us_per_event / d_outbox.pg_us_per_event);
    printf("| PostgreSQL CPU per captured event, capture share (writer insert above the wal "
           "insert, + drain) (us) | %.1f | %.1f | %.2f |\n",
           w_outbox.pg_us_per_event - w_wal.pg_us_per_event + d_outbox.pg_us_per_event,
           d_wal.pg_us_per_event,
           d_wal.pg_us_per_event /
               (w_outbox.pg_us_per_event - w_wal.pg_us_per_event + d_outbox.pg_us_per_event));
    free(lsn);
    PQfinish(c);
    return 0;
}
