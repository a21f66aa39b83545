/*
 * bench-producer - how close topicflow-producer's outbox drain comes to the broker's own
 * ceiling, and to a tutorial-style relay. The runs publish the same N events (about 1 KB of
 * text each); the first two with the same code path for messages and the same confirm
 * window (--batch, --in-flight):
 *   ceiling: the events pre-read into memory, published straight to topicflow.events;
 *   drain:   topicflow-producer started on the filled outbox, timed until none is unpublished;
 *   relay:   bench/relay.py (psycopg2 + pika) started on the same outbox contents, likewise.
 * Each run prints a CPU account of the processes involved (this server's PostgreSQL and
 * RabbitMQ only, by process tree) and of the whole machine, which other work may share.
 * Then the writer side: single-row insert transactions per second with NOTIFY on and off.
 * Expects a migrated, empty database and a vhost of its own (bench/run sets them up).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "outbox.h"
#include "proc_cpu.h"
#include "publisher.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/config.h"
#include "base/log.h"
#include "pg/pg.h"

#define MAX_ROUNDS 9

typedef struct bench_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    long events, relay_events, rounds, batch, in_flight, writer_txns, writers, broker_pid;
    const char *producer_bin, *producer_pg_url, *relay;
} bench_config;

static const tf_option bench_options[] = {
    TF_OPTIONS_CONNECTION(bench_config),
    {"events", NULL, TF_OPT_INT, "100000", "events to publish", offsetof(bench_config, events), 1, 1e8},
    {"rounds", NULL, TF_OPT_INT, "1", "ceiling and drain measured this many times, alternating (the machine may be shared: the median ratio is printed)", offsetof(bench_config, rounds), 1, MAX_ROUNDS},
    {"relay-events", NULL, TF_OPT_INT, "20000", "events the relay drains: the first of the same outbox (it is ~20x slower)", offsetof(bench_config, relay_events), 1, 1e8},
    {"batch", NULL, TF_OPT_INT, "500", "batch size and confirm window", offsetof(bench_config, batch), 1, 100000},
    {"in-flight", NULL, TF_OPT_INT, "2", "batches awaiting confirms at once (both runs)", offsetof(bench_config, in_flight), 1, 4},
    {"writer-txns", NULL, TF_OPT_INT, "4000", "insert transactions per writer-rate run", offsetof(bench_config, writer_txns), 1, 1e7},
    {"writers", NULL, TF_OPT_INT, "4", "concurrent writer connections", offsetof(bench_config, writers), 1, 64},
    {"producer", NULL, TF_OPT_STRING, NULL, "path of topicflow-producer (default: beside this program)", offsetof(bench_config, producer_bin), 0, 0},
    {"producer-pg", "TOPICFLOW_BENCH_PRODUCER_PG_URL", TF_OPT_URL, NULL, "URL topicflow-producer and the relay connect with: the producer role's (default --pg)", offsetof(bench_config, producer_pg_url), 0, 0},
    {"relay", NULL, TF_OPT_STRING, NULL, "path of the tutorial-style relay, 'off' to skip it (default: relay.py in this program's source folder)", offsetof(bench_config, relay), 0, 0},
    {"broker-pid", NULL, TF_OPT_INT, "0", "pid of the RabbitMQ node (default: $TOPICFLOW_STATE_DIR/rabbitmq.pid)", offsetof(bench_config, broker_pid), 0, 1e9},
};
#define N_OPTIONS (sizeof(bench_options) / sizeof(bench_options[0]))

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
    bench_exec(c, "delete from topicflow.outbox");
    bench_exec(c, sql);
}

/* Reads every unpublished event into memory, in batches, inside a transaction that is rolled
 * back afterwards (marking them within it makes the next fetch move on). */
static outbox_batch *preload(PGconn *c, long batch, size_t *n_batches)
{
    size_t cap = 16, n = 0;
    outbox_batch *all = calloc(cap, sizeof(*all));
    tf_err err;

    bench_exec(c, "begin");
    if (outbox_prepare(c, &err) < 0)
        bench_die("prepare", &err);
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
            bench_die("fetch", &err);
        if (got == 0)
            break;
        ids = malloc((size_t)got * sizeof(*ids));
        for (int i = 0; i < got; i++)
            ids[i] = all[n].events[i].id;
        if (outbox_mark_published(c, &all[n], ids, (size_t)got, &err) < 0)
            bench_die("mark", &err);
        free(ids);
        n++;
    }
    bench_exec(c, "rollback");
    *n_batches = n;
    return all;
}

/* The processes a run is accounted to, and their CPU seconds so far. */
typedef struct watched {
    pid_t database, broker; /* the postmaster and the RabbitMQ node of this benchmark */
} watched;

typedef struct cpu_sample {
    double at, publisher, database, broker, machine;
} cpu_sample;

/* A run: its wall time and what each party used in it. */
typedef struct account {
    char name[48];
    long events;
    double wall_s, publisher_s, database_s, broker_s, machine_s;
} account;

static cpu_sample sample(const watched *w, pid_t publishing)
{
    cpu_sample s;
    s.publisher = proc_cpu_tree_seconds(publishing);
    s.database = proc_cpu_tree_seconds(w->database);
    s.broker = proc_cpu_tree_seconds(w->broker);
    s.machine = proc_cpu_machine_busy_seconds();
    s.at = bench_now();
    return s;
}

static void settle_account(account *a, const cpu_sample *s0, const cpu_sample *s1)
{
    a->wall_s = s1->at - s0->at;
    a->publisher_s = s1->publisher - s0->publisher;
    a->database_s = s1->database - s0->database;
    a->broker_s = s1->broker - s0->broker;
    a->machine_s = s1->machine - s0->machine;
}

static void run_ceiling(const bench_config *cfg, const watched *w, outbox_batch *batches,
                        size_t n_batches, account *acc)
{
    tf_broker *b;
    publisher *pub = publisher_new();
    tf_topology topo = tf_topology_defaults();
    tf_err err;
    cpu_sample s0, s1;

    b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);
    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0 ||
        tf_broker_confirm_select(b, &err) < 0)
        bench_die("broker", &err);
    acc->events = 0;
    s0 = sample(w, getpid());
    /* The producer's confirm pattern without the database: submit, and settle the oldest
     * batch once in_flight batches are outstanding. */
    for (size_t i = 0; i <= n_batches; i++) {
        const int64_t *acked;
        size_t n_acked;
        if (i < n_batches && publisher_submit(pub, b, &batches[i], (size_t)1 << 30, &err) < 0)
            bench_die("publish", &err);
        while (publisher_in_flight(pub) >= (size_t)cfg->in_flight ||
               (i == n_batches && publisher_in_flight(pub) > 0)) {
            if (publisher_settle_oldest(pub, b, 30, &acked, &n_acked, &err) < 0)
                bench_die("confirms", &err);
            acc->events += (long)n_acked;
        }
    }
    s1 = sample(w, getpid());
    settle_account(acc, &s0, &s1);
    tf_broker_close(b);
    publisher_free(pub);
}

static void purge_queue(const bench_config *cfg)
{
    bench_purge_queue(cfg->amqp_url, &cfg->amqp_tls);
}

/* Every drain starts from the same outbox: the rows the capture wrote, unpublished, in a
 * freshly vacuumed table. */
static void snapshot_outbox(PGconn *c)
{
    bench_exec(c, "drop table if exists public.bench_outbox_snapshot");
    bench_exec(c, "create table public.bench_outbox_snapshot as select * from topicflow.outbox");
}

static void restore_outbox(PGconn *c, long events)
{
    char sql[160];

    snprintf(sql, sizeof(sql), "insert into topicflow.outbox select * from"
             " public.bench_outbox_snapshot order by id limit %ld", events);
    bench_exec(c, "truncate topicflow.outbox");
    bench_exec(c, sql);
    bench_exec(c, "vacuum (analyze) topicflow.outbox");
    bench_exec(c, "checkpoint");
    /* Autovacuum would clean up after the drain at a moment of its choosing, inside a run or
     * not: vacuum_after accounts for that work after each run instead. */
    bench_exec(c, "alter table topicflow.outbox set (autovacuum_enabled = false)");
}

/* The cleanup a drain leaves behind (dead row versions of the marked rows, their index
 * entries), accounted per event drained. */
static void vacuum_after(PGconn *c, const watched *w, long events, account *acc)
{
    cpu_sample s0 = sample(w, 0), s1;

    bench_exec(c, "vacuum topicflow.outbox");
    s1 = sample(w, 0);
    settle_account(acc, &s0, &s1);
    acc->events = events;
}

/*
 * Starts argv (with the producer's URLs in its environment) on the filled outbox and times
 * it until no row is unpublished. The queue depth is watched until every event arrived, and
 * only then the outbox, so that the watching costs PostgreSQL nothing during the run.
 */
static void run_drain(const bench_config *cfg, const watched *w, PGconn *c, char *const argv[],
                      long events, account *acc)
{
    tf_topology topo = tf_topology_defaults();
    tf_broker *b;
    cpu_sample s0, s1;
    uint32_t messages = 0, consumers;
    pid_t pid;
    int status;
    tf_err err;

    b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);
    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0)
        bench_die("broker", &err);
    s0 = sample(w, 0);
    pid = fork();
    if (pid == 0) {
        const char *pg = cfg->producer_pg_url ? cfg->producer_pg_url : cfg->pg_url;
        setenv("TOPICFLOW_PG_URL", pg, 1);
        setenv("TOPICFLOW_AMQP_URL", cfg->amqp_url, 1);
        setenv("RELAY_PG_URL", pg, 1);
        setenv("RELAY_AMQP_URL", cfg->amqp_url, 1);
        setenv("TOPICFLOW_LOG", "warn", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        if (messages < (uint32_t)events) {
            if (tf_broker_queue_info(b, TF_QUEUE_NMF, &messages, &consumers, &err) < 0)
                bench_die("queue depth", &err);
        } else if (scalar(c, "select count(*) from topicflow.outbox where published_at is null") == 0) {
            break;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "bench-producer: %s exited early\n", argv[0]);
            exit(1);
        }
        usleep(messages < (uint32_t)events ? 10000 : 2000);
    }
    s1 = sample(w, pid);
    s0.publisher = 0; /* it did not exist yet: all its time is the run's */
    settle_account(acc, &s0, &s1);
    acc->events = events;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
    tf_broker_close(b);
}

static pid_t broker_pid(const bench_config *cfg)
{
    return cfg->broker_pid ? (pid_t)cfg->broker_pid : proc_state_dir_pid("rabbitmq");
}

/* Writer commits/s; a session listens on topicflow_outbox, as a producer normally does. */
static double writer_rate(const bench_config *cfg, int notify)
{
    bench_writers w = {cfg->pg_url, cfg->writers, cfg->writer_txns, 1, !notify, NULL};

    return (double)(cfg->writers * cfg->writer_txns) / bench_writers_run(&w, NULL);
}

static double rate(const account *a)
{
    return (double)a->events / a->wall_s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts v. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One party's share of a run: µs of CPU per event and % of the machine's cores. */
static void print_share(double cpu_s, const account *a, int cores)
{
    printf(" %.1f µs, %.0f %% |", 1e6 * cpu_s / (double)a->events,
           100.0 * cpu_s / (a->wall_s * cores));
}

static void print_account(const account *runs, int n, int cores)
{
    printf("\nCPU account per run (µs of CPU per event, %% of the %d cores over the run's wall time;"
           " PostgreSQL and RabbitMQ are this benchmark's servers only, by process tree):\n\n",
           cores);
    printf("| run | events/s | wall s | publishing process | PostgreSQL | RabbitMQ |"
           " rest of the machine | machine busy |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n; i++) {
        const account *a = &runs[i];
        printf("| %s | %.0f | %.2f |", a->name, rate(a), a->wall_s);
        print_share(a->publisher_s, a, cores);
        print_share(a->database_s, a, cores);
        print_share(a->broker_s, a, cores);
        print_share(a->machine_s - a->publisher_s - a->database_s - a->broker_s, a, cores);
        print_share(a->machine_s, a, cores);
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    bench_config cfg;
    char batch_arg[16], in_flight_arg[16], bin[1100], relay[1100];
    outbox_batch *batches;
    size_t n_batches;
    double with_notify, without_notify;
    account runs[3 * MAX_ROUNDS + 2], *relay_run = NULL;
    double ratios[MAX_ROUNDS], drains[MAX_ROUNDS];
    int n_runs = 0, cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    watched w;
    PGconn *c;
    tf_err err;
    int first, rc;

    rc = tf_config_parse(bench_options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_HELP) {
        tf_config_usage(stdout, "bench-producer [options]",
                        "Outbox drain rate of topicflow-producer against the broker ceiling "
                        "(same messages, same confirm window)\nand a tutorial-style relay on the "
                        "same outbox, with a CPU account of each run;\nwriter commit rates with "
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
    if (!cfg.producer_bin)
        cfg.producer_bin = bench_producer_beside(bin, sizeof(bin));
    if (!cfg.relay) {
        snprintf(relay, sizeof(relay), "%s/relay.py", BENCH_SOURCE_DIR);
        cfg.relay = relay;
    }
    snprintf(batch_arg, sizeof(batch_arg), "%ld", cfg.batch);
    snprintf(in_flight_arg, sizeof(in_flight_arg), "%ld", cfg.in_flight);
    c = tf_pg_connect(cfg.pg_url, "bench-producer", &err);
    if (!c)
        bench_die("connect", &err);
    w.database = proc_parent((pid_t)PQbackendPID(c));
    w.broker = broker_pid(&cfg);
    if (w.broker <= 0 || proc_cpu_tree_seconds(w.broker) <= 0)
        fprintf(stderr, "bench-producer: RabbitMQ's pid unknown (--broker-pid): its CPU reads 0\n");

    fill_outbox(c, cfg.events);
    snapshot_outbox(c);
    /* Everything the fill wrote (postings, versions, the snapshot) vacuumed now, so that
     * autovacuum has no work left to drop into the middle of a run. */
    bench_exec(c, "vacuum (analyze)");
    purge_queue(&cfg);
    batches = preload(c, cfg.batch, &n_batches);
    for (long r = 0; r < cfg.rounds; r++) {
        char *const producer_argv[] = {(char *)cfg.producer_bin, "--batch", batch_arg,
                                       "--in-flight", in_flight_arg, NULL};
        account *ceiling = &runs[n_runs++], *drain = &runs[n_runs++];

        snprintf(ceiling->name, sizeof(ceiling->name), "broker ceiling (no database), round %ld", r + 1);
        snprintf(drain->name, sizeof(drain->name), "topicflow-producer drain, round %ld", r + 1);
        run_ceiling(&cfg, &w, batches, n_batches, ceiling);
        purge_queue(&cfg);
        restore_outbox(c, cfg.events);
        run_drain(&cfg, &w, c, producer_argv, cfg.events, drain);
        purge_queue(&cfg);
        vacuum_after(c, &w, cfg.events, &runs[n_runs]);
        snprintf(runs[n_runs++].name, sizeof(runs[0].name), "vacuum after the drain, round %ld", r + 1);
        ratios[r] = rate(drain) / rate(ceiling);
        drains[r] = rate(drain);
    }
    for (size_t i = 0; i < n_batches; i++)
        outbox_batch_free(&batches[i]);
    free(batches);
    if (strcmp(cfg.relay, "off") != 0) {
        char *const relay_argv[] = {(char *)cfg.relay, batch_arg, NULL};
        long n = cfg.relay_events < cfg.events ? cfg.relay_events : cfg.events;
        relay_run = &runs[n_runs++];
        snprintf(relay_run->name, sizeof(relay_run->name), "tutorial relay (psycopg2 + pika)");
        restore_outbox(c, n);
        run_drain(&cfg, &w, c, relay_argv, n, relay_run);
        purge_queue(&cfg);
        vacuum_after(c, &w, n, &runs[n_runs]);
        snprintf(runs[n_runs++].name, sizeof(runs[0].name), "vacuum after the relay");
    }

    bench_exec(c, "alter table topicflow.outbox reset (autovacuum_enabled)");
    with_notify = writer_rate(&cfg, 1);
    without_notify = writer_rate(&cfg, 0);
    bench_exec(c, "delete from topicflow.outbox");
    bench_exec(c, "drop table public.bench_outbox_snapshot");
    purge_queue(&cfg);

    printf("| measure | value |\n|---|---|\n");
    printf("| events (about 1 KB of text each) | %ld |\n", cfg.events);
    printf("| batch, batches in flight (ceiling and drain) | %ld, %ld |\n", cfg.batch, cfg.in_flight);
    for (long r = 0; r < cfg.rounds; r++)
        printf("| round %ld: broker ceiling (publish + confirm, no database), topicflow-producer"
               " outbox drain, drain / ceiling | %.0f events/s, %.0f events/s, %.1f %% |\n", r + 1,
               rate(&runs[3 * r]), rate(&runs[3 * r + 1]), 100.0 * ratios[r]);
    printf("| drain / ceiling, median of %ld round%s | %.1f %% |\n", cfg.rounds,
           cfg.rounds > 1 ? "s" : "", 100.0 * median(ratios, (size_t)cfg.rounds));
    if (relay_run) {
        printf("| tutorial relay (psycopg2 + pika, confirms, batch %ld; first %ld events) | %.0f events/s |\n",
               cfg.batch, relay_run->events, rate(relay_run));
        printf("| drain (median round) / relay | %.1f× |\n",
               median(drains, (size_t)cfg.rounds) / rate(relay_run));
    }
    printf("| writer commits/s, %ld writers, NOTIFY on | %.0f |\n", cfg.writers, with_notify);
    printf("| writer commits/s, %ld writers, NOTIFY off | %.0f |\n", cfg.writers, without_notify);
    print_account(runs, n_runs, cores);
    PQfinish(c);
    return 0;
}
