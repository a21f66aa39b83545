/*
 * bench-producer - how close topicflow-producer's outbox drain comes to the broker's own
 * ceiling. Both runs publish the same N events (about 1 KB of text each) with the same
 * code path for messages and the same confirm window (--batch):
 *   ceiling: the events pre-read into memory, published straight to topicflow.events;
 *   drain:   topicflow-producer started on the filled outbox, timed until none is unpublished.
 * Then the writer side: single-row insert transactions per second with NOTIFY on and off.
 * Expects a migrated, empty database and a vhost of its own (bench/run sets them up).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "outbox.h"
#include "proc_cpu.h"
#include "publisher.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/config.h"
#include "base/log.h"
#include "pg/pg.h"

typedef struct bench_config {
    const char *pg_url, *amqp_url, *log_level;
    tf_amqp_tls amqp_tls;
    long events, batch, in_flight, writer_txns, writers;
    const char *producer_bin, *producer_pg_url;
} bench_config;

static const tf_option bench_options[] = {
    TF_OPTIONS_CONNECTION(bench_config),
    {"events", NULL, TF_OPT_INT, "100000", "events to publish", offsetof(bench_config, events), 1, 1e8},
    {"batch", NULL, TF_OPT_INT, "500", "batch size and confirm window", offsetof(bench_config, batch), 1, 100000},
    {"in-flight", NULL, TF_OPT_INT, "2", "batches awaiting confirms at once (both runs)", offsetof(bench_config, in_flight), 1, 4},
    {"writer-txns", NULL, TF_OPT_INT, "4000", "insert transactions per writer-rate run", offsetof(bench_config, writer_txns), 1, 1e7},
    {"writers", NULL, TF_OPT_INT, "4", "concurrent writer connections", offsetof(bench_config, writers), 1, 64},
    {"producer", NULL, TF_OPT_STRING, NULL, "path of topicflow-producer (default: beside this program)", offsetof(bench_config, producer_bin), 0, 0},
    {"producer-pg", "TOPICFLOW_BENCH_PRODUCER_PG_URL", TF_OPT_URL, NULL, "URL topicflow-producer connects with: its role's (default --pg)", offsetof(bench_config, producer_pg_url), 0, 0},
};
#define N_OPTIONS (sizeof(bench_options) / sizeof(bench_options[0]))

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const tf_err *err)
{
    fprintf(stderr, "bench-producer: %s: %s\n", what, err->msg);
    exit(1);
}

static void exec_or_die(PGconn *c, const char *sql)
{
    tf_err err;
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        tf_pg_result_error(c, res, &err);
        die(sql, &err);
    }
    PQclear(res);
}

static long long scalar(PGconn *c, const char *sql)
{
    long long v = -1;
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        tf_pg_get_int64(res, 0, 0, &v);
    PQclear(res);
    return v;
}

static void fill_outbox(PGconn *c, long n)
{
    char sql[1024];

    /* ~1 KB of text per posting across title, description and skills. */
    snprintf(sql, sizeof(sql),
             "insert into internships (title, company, location, description, skills)"
             " select 'Software engineering intern ' || g, 'Company ' || (g %% 500), 'Amman',"
             " repeat('Join our platform team to build reliable data pipelines in C and SQL. ', 13)"
             " || md5(g::text), array['c', 'sql', 'linux', 'skill' || (g %% 300)]"
             " from generate_series(1, %ld) g", n);
    exec_or_die(c, "delete from topicflow.outbox");
    exec_or_die(c, sql);
}

/* Reads every unpublished event into memory, in batches, inside a transaction that is rolled
 * back afterwards (marking them within it makes the next fetch move on). */
static outbox_batch *preload(PGconn *c, long batch, size_t *n_batches)
{
    size_t cap = 16, n = 0;
    outbox_batch *all = calloc(cap, sizeof(*all));
    tf_err err;

    exec_or_die(c, "begin");
    if (outbox_prepare(c, &err) < 0)
        die("prepare", &err);
    for (;;) {
        int64_t *ids;
        int got;
        if (n == cap) {
            all = realloc(all, 2 * cap * sizeof(*all));
            memset(all + cap, 0, cap * sizeof(*all));
            cap *= 2;
        }
        got = outbox_fetch(c, (int)batch, 0, &all[n], &err);
        if (got < 0)
            die("fetch", &err);
        if (got == 0)
            break;
        ids = malloc((size_t)got * sizeof(*ids));
        for (int i = 0; i < got; i++)
            ids[i] = all[n].events[i].id;
        if (outbox_mark_published(c, ids, (size_t)got, &err) < 0)
            die("mark", &err);
        free(ids);
        n++;
    }
    exec_or_die(c, "rollback");
    *n_batches = n;
    return all;
}

typedef struct cores {
    double broker, database, producer;
} cores;

static double run_ceiling(const bench_config *cfg, outbox_batch *batches, size_t n_batches,
                          long *published, cores *used)
{
    double mq0 = proc_cpu_seconds("beam.smp"), self0 = proc_cpu_seconds("bench-producer");
    tf_broker *b;
    publisher *pub = publisher_new();
    tf_topology topo = tf_topology_defaults();
    tf_err err;
    double t0;

    b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);
    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0 ||
        tf_broker_confirm_select(b, &err) < 0)
        die("broker", &err);
    *published = 0;
    t0 = now_s();
    /* The producer's confirm pattern without the database: submit, and settle the oldest
     * batch once in_flight batches are outstanding. */
    for (size_t i = 0; i <= n_batches; i++) {
        const int64_t *acked;
        size_t n_acked;
        if (i < n_batches && publisher_submit(pub, b, &batches[i], (size_t)1 << 30, &err) < 0)
            die("publish", &err);
        while (publisher_in_flight(pub) >= (size_t)cfg->in_flight ||
               (i == n_batches && publisher_in_flight(pub) > 0)) {
            if (publisher_settle_oldest(pub, b, 30, &acked, &n_acked, &err) < 0)
                die("confirms", &err);
            *published += (long)n_acked;
        }
    }
    t0 = now_s() - t0;
    used->broker = (proc_cpu_seconds("beam.smp") - mq0) / t0;
    used->producer = (proc_cpu_seconds("bench-producer") - self0) / t0;
    used->database = 0;
    tf_broker_close(b);
    publisher_free(pub);
    return t0;
}

static void purge_queue(const bench_config *cfg)
{
    tf_err err;
    tf_topology topo = tf_topology_defaults();
    tf_broker *b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);
    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0)
        die("broker", &err);
    if (tf_broker_purge(b, TF_QUEUE_NMF, &err) < 0)
        die("purge", &err);
    tf_broker_close(b);
}

static double run_drain(const bench_config *cfg, PGconn *c, char batch_arg[16],
                        char in_flight_arg[16], cores *used)
{
    char bin[1024];
    double t0, elapsed, mq0 = proc_cpu_seconds("beam.smp"), pg0 = proc_cpu_seconds("postgres"),
           prod0 = proc_cpu_seconds("topicflow-produ");
    pid_t pid;
    int status;

    snprintf(bin, sizeof(bin), "%s", cfg->producer_bin);
    t0 = now_s();
    pid = fork();
    if (pid == 0) {
        setenv("TOPICFLOW_PG_URL", cfg->producer_pg_url ? cfg->producer_pg_url : cfg->pg_url, 1);
        setenv("TOPICFLOW_AMQP_URL", cfg->amqp_url, 1);
        setenv("TOPICFLOW_LOG", "warn", 1);
        execl(bin, bin, "--batch", batch_arg, "--in-flight", in_flight_arg, (char *)NULL);
        _exit(127);
    }
    while (scalar(c, "select count(*) from topicflow.outbox where published_at is null") != 0) {
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "bench-producer: %s exited early\n", bin);
            exit(1);
        }
        usleep(5000);
    }
    elapsed = now_s() - t0;
    used->broker = (proc_cpu_seconds("beam.smp") - mq0) / elapsed;
    used->database = (proc_cpu_seconds("postgres") - pg0) / elapsed;
    used->producer = (proc_cpu_seconds("topicflow-produ") - prod0) / elapsed;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    return elapsed;
}

typedef struct writer_arg {
    const char *url;
    long txns;
    int notify;
    int failed;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *a = p;
    tf_err err;
    PGconn *c = tf_pg_connect(a->url, "bench-writer", &err);

    if (!c) {
        a->failed = 1;
        return NULL;
    }
    if (!a->notify)
        exec_or_die(c, "set topicflow.notify = off");
    PQprepare(c, "ins", "insert into internships (title, description) values ($1, $2)", 2, NULL);
    for (long i = 0; i < a->txns; i++) {
        const char *params[2] = {"Writer rate posting", "A short description of the role."};
        PGresult *res = PQexecPrepared(c, "ins", 2, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            a->failed = 1;
        PQclear(res);
    }
    PQfinish(c);
    return NULL;
}

static double writer_rate(const bench_config *cfg, int notify)
{
    pthread_t th[64];
    writer_arg args[64];
    tf_err err;
    PGconn *listener = tf_pg_connect(cfg->pg_url, "bench-listener", &err);
    double t0;

    if (!listener)
        die("listener", &err);
    exec_or_die(listener, "listen topicflow_outbox"); /* a producer is normally listening */
    t0 = now_s();
    for (long i = 0; i < cfg->writers; i++) {
        args[i] = (writer_arg){cfg->pg_url, cfg->writer_txns, notify, 0};
        pthread_create(&th[i], NULL, writer_main, &args[i]);
    }
    for (long i = 0; i < cfg->writers; i++) {
        pthread_join(th[i], NULL);
        if (args[i].failed) {
            fprintf(stderr, "bench-producer: a writer failed\n");
            exit(1);
        }
    }
    t0 = now_s() - t0;
    PQfinish(listener);
    return (double)(cfg->writers * cfg->writer_txns) / t0;
}

int main(int argc, char **argv)
{
    bench_config cfg;
    char batch_arg[16], in_flight_arg[16], self[1024], bin[1100];
    outbox_batch *batches;
    size_t n_batches;
    long published;
    double ceiling_s, drain_s, with_notify, without_notify;
    cores ceiling_cores, drain_cores;
    PGconn *c;
    tf_err err;
    int first, rc;

    rc = tf_config_parse(bench_options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_HELP) {
        tf_config_usage(stdout, "bench-producer [options]",
                        "Outbox drain rate of topicflow-producer against the broker ceiling "
                        "(same messages, same confirm window),\nand writer commit rates with "
                        "NOTIFY on and off. Run through bench/run producer.",
                        bench_options, N_OPTIONS);
        return 0;
    }
    if (rc != TF_CONFIG_OK || !cfg.pg_url || !cfg.amqp_url) {
        fprintf(stderr, "bench-producer: %s\n", rc != TF_CONFIG_OK ? err.msg
                        : "TOPICFLOW_PG_URL and TOPICFLOW_AMQP_URL must be set");
        return 2;
    }
    tf_log_init("bench-producer", TF_LOG_WARN);
    if (!cfg.producer_bin) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[len > 0 ? len : 0] = '\0';
        *strrchr(self, '/') = '\0';
        snprintf(bin, sizeof(bin), "%s/topicflow-producer", self);
        cfg.producer_bin = bin;
    }
    snprintf(batch_arg, sizeof(batch_arg), "%ld", cfg.batch);
    snprintf(in_flight_arg, sizeof(in_flight_arg), "%ld", cfg.in_flight);
    c = tf_pg_connect(cfg.pg_url, "bench-producer", &err);
    if (!c)
        die("connect", &err);

    fill_outbox(c, cfg.events);
    purge_queue(&cfg);
    batches = preload(c, cfg.batch, &n_batches);
    ceiling_s = run_ceiling(&cfg, batches, n_batches, &published, &ceiling_cores);
    for (size_t i = 0; i < n_batches; i++)
        outbox_batch_free(&batches[i]);
    free(batches);
    purge_queue(&cfg);
    drain_s = run_drain(&cfg, c, batch_arg, in_flight_arg, &drain_cores);
    purge_queue(&cfg);

    with_notify = writer_rate(&cfg, 1);
    without_notify = writer_rate(&cfg, 0);
    exec_or_die(c, "delete from topicflow.outbox");
    purge_queue(&cfg);

    printf("| measure | value |\n|---|---|\n");
    printf("| events (about 1 KB of text each) | %ld |\n", cfg.events);
    printf("| batch, batches in flight (both runs) | %ld, %ld |\n", cfg.batch, cfg.in_flight);
    printf("| broker ceiling (publish + confirm, no database) | %.0f events/s |\n",
           (double)published / ceiling_s);
    printf("| topicflow-producer outbox drain | %.0f events/s |\n", (double)cfg.events / drain_s);
    printf("| drain / ceiling | %.1f %% |\n", 100.0 * ((double)cfg.events / drain_s) /
                                                ((double)published / ceiling_s));
    printf("| cores used during the ceiling: RabbitMQ, publisher | %.2f, %.2f |\n",
           ceiling_cores.broker, ceiling_cores.producer);
    printf("| cores used during the drain: RabbitMQ, PostgreSQL, producer | %.2f, %.2f, %.2f |\n",
           drain_cores.broker, drain_cores.database, drain_cores.producer);
    printf("| writer commits/s, %ld writers, NOTIFY on | %.0f |\n", cfg.writers, with_notify);
    printf("| writer commits/s, %ld writers, NOTIFY off | %.0f |\n", cfg.writers, without_notify);
    PQfinish(c);
    return 0;
}
