/*
 * bench-worker - topicflow-worker throughput and end-to-end latency.
 *   throughput: a queue pre-filled with --docs sample postings (English and Arabic) is
 *     drained by 1, then 2 worker processes; printed: documents/s, worker CPU µs per
 *     document (the children's own rusage), and the cores used by the workers, PostgreSQL
 *     and RabbitMQ over the run (from /proc), which tells what saturates.
 *   latency: a writer commits --rate single-row transactions per second for --seconds
 *     through the whole pipeline (producer + one worker); latency is the commit time of the
 *     document's result minus the commit time of the source row, both read with
 *     pg_xact_commit_timestamp (the server needs track_commit_timestamp = on; bench/run sets it).
 * A warm-up fits the model first (k = --k), so the runs measure the steady state.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proc_cpu.h"
#include "base/buf.h"
#include "base/config.h"
#include "base/datadir.h"
#include "base/log.h"
#include "engine/text.h"
#include "pg/pg.h"
#include "sample/generator.h"

typedef struct bench_config {
    const char *pg_url, *amqp_url, *log_level;
    tf_amqp_tls amqp_tls;
    long docs, warmup, k, rate;
    double seconds;
    const char *bin_dir;
    const char *producer_pg_url, *worker_pg_url;
} bench_config;

static const tf_option bench_options[] = {
    TF_OPTIONS_CONNECTION(bench_config),
    {"docs", NULL, TF_OPT_INT, "50000", "documents in the pre-filled queue (per run)", offsetof(bench_config, docs), 100, 1e7},
    {"warmup", NULL, TF_OPT_INT, "5000", "documents processed before measuring (fits the model)", offsetof(bench_config, warmup), 100, 1e7},
    {"k", NULL, TF_OPT_INT, "20", "topics", offsetof(bench_config, k), 2, 1000},
    {"rate", NULL, TF_OPT_INT, "500", "events per second of the latency run", offsetof(bench_config, rate), 1, 100000},
    {"seconds", NULL, TF_OPT_DURATION, "20s", "duration of the latency run", offsetof(bench_config, seconds), 1, 3600},
    {"bin-dir", NULL, TF_OPT_STRING, NULL, "where the topicflow programs are (default: beside this one)", offsetof(bench_config, bin_dir), 0, 0},
    {"producer-pg", "TOPICFLOW_BENCH_PRODUCER_PG_URL", TF_OPT_URL, NULL, "URL topicflow-producer connects with: its role's (default --pg)", offsetof(bench_config, producer_pg_url), 0, 0},
    {"worker-pg", "TOPICFLOW_BENCH_WORKER_PG_URL", TF_OPT_URL, NULL, "URL topicflow-worker connects with: its role's (default --pg)", offsetof(bench_config, worker_pg_url), 0, 0},
};
#define N_OPTIONS (sizeof(bench_options) / sizeof(bench_options[0]))

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench-worker: %s: %s\n", what, why);
    exit(1);
}

static long long scalar(PGconn *c, const char *sql)
{
    long long v = -1;
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        tf_pg_get_int64(res, 0, 0, &v) < 0)
        die(sql, PQerrorMessage(c));
    PQclear(res);
    return v;
}

static void exec_sql(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        die(sql, PQerrorMessage(c));
    PQclear(res);
}

/* Inserts n generated postings in statements of 1000 rows. */
static void insert_postings(PGconn *c, tf_sample *gen, uint64_t *rng, long n)
{
    for (long done = 0; done < n;) {
        tf_buf cols[5];
        const char *params[5];
        long m = n - done < 1000 ? n - done : 1000;
        PGresult *res;

        for (int i = 0; i < 5; i++) {
            tf_buf_init(&cols[i]);
            tf_buf_append(&cols[i], "{", 1);
        }
        for (long r = 0; r < m; r++) {
            tf_posting p;
            tf_buf skills;
            if (tf_sample_next(gen, rng, TF_SAMPLE_MIXED, &p) < 0)
                die("sample", "out of memory");
            tf_buf_init(&skills);
            for (size_t s = 0; s < p.n_skills; s++)
                tf_buf_printf(&skills, s ? "|%s" : "%s", p.skills[s]);
            const char *vals[5] = {p.title, p.company, p.location, p.description,
                                   skills.p ? skills.p : ""};
            for (int i = 0; i < 5; i++) {
                if (r)
                    tf_buf_append(&cols[i], ",", 1);
                tf_pg_append_text_element(&cols[i], vals[i], strlen(vals[i]));
            }
            tf_buf_free(&skills);
        }
        for (int i = 0; i < 5; i++) {
            tf_buf_append(&cols[i], "}", 1);
            params[i] = cols[i].p;
        }
        res = PQexecParams(c,
            "insert into internships (title, company, location, description, skills)"
            " select t, c, l, d, string_to_array(s, '|')"
            " from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) u(t, c, l, d, s)",
            5, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            die("insert", PQerrorMessage(c));
        PQclear(res);
        for (int i = 0; i < 5; i++)
            tf_buf_free(&cols[i]);
        done += m;
    }
}

/* Starts program from the bin dir, connected as its own role (--producer-pg, --worker-pg)
 * as it runs in production. */
static pid_t spawn(const bench_config *cfg, const char *program, const char *const *args)
{
    const char *url = strcmp(program, "topicflow-producer") == 0 ? cfg->producer_pg_url
                      : strcmp(program, "topicflow-worker") == 0 ? cfg->worker_pg_url
                                                                 : NULL;
    char path[1024];
    const char *argv[16];
    int n = 0;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/%s", cfg->bin_dir, program);
    argv[n++] = path;
    for (; args && *args && n < 15; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    if (pid == 0) {
        setenv("TOPICFLOW_PG_URL", url ? url : cfg->pg_url, 1);
        setenv("TOPICFLOW_LOG", "warn", 1);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Stops a child with SIGTERM; returns its CPU seconds (user + system). */
static double stop_child(pid_t pid)
{
    struct rusage ru;
    int status;

    kill(pid, SIGTERM);
    if (wait4(pid, &status, 0, &ru) < 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void publish_all(const bench_config *cfg, PGconn *c)
{
    pid_t p = spawn(cfg, "topicflow-producer", (const char *[]){"--batch", "1000", NULL});
    while (scalar(c, "select count(*) from topicflow.outbox where published_at is null") > 0)
        usleep(20000);
    stop_child(p);
}

static void wait_processed(PGconn *c, long long target)
{
    while (scalar(c, "select count(*) from topicflow.processed_events") < target)
        usleep(2000);
}

typedef struct run_result {
    double seconds, worker_cpu, pg_cpu, mq_cpu;
} run_result;

static run_result throughput_run(const bench_config *cfg, PGconn *c, int workers, long long target)
{
    char k[16];
    pid_t pids[8];
    run_result r = {0, 0, 0, 0};
    double pg0, mq0, t0;

    snprintf(k, sizeof(k), "%ld", cfg->k);
    pg0 = proc_cpu_seconds("postgres");
    mq0 = proc_cpu_seconds("beam.smp");
    t0 = now_s();
    for (int i = 0; i < workers; i++)
        pids[i] = spawn(cfg, "topicflow-worker", (const char *[]){"--k", k, NULL});
    wait_processed(c, target);
    r.seconds = now_s() - t0;
    r.pg_cpu = proc_cpu_seconds("postgres") - pg0;
    r.mq_cpu = proc_cpu_seconds("beam.smp") - mq0;
    for (int i = 0; i < workers; i++)
        r.worker_cpu += stop_child(pids[i]);
    return r;
}

static const char *saturated(const run_result *r, int workers)
{
    double w = r->worker_cpu / r->seconds / workers, pg = r->pg_cpu / r->seconds,
           mq = r->mq_cpu / r->seconds, total = (r->worker_cpu + r->pg_cpu + r->mq_cpu) / r->seconds;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    if (total > 0.85 * (double)cores)
        return w >= pg && w >= mq ? "all cores busy (worker largest)"
               : pg >= mq ? "all cores busy (PostgreSQL largest)" : "all cores busy (RabbitMQ largest)";
    if (w > 0.9)
        return "worker (one core each)";
    if (pg > 0.9)
        return "PostgreSQL";
    if (mq > 0.9)
        return "RabbitMQ";
    return "none (latency-bound)";
}

static void latency_run(const bench_config *cfg, PGconn *c, tf_sample *gen, uint64_t *rng,
                        double *p50, double *p99, long long *events)
{
    char k[16], since[32], sql[1024];
    pid_t producer, worker;
    long long first, target;
    double t0, interval = 1.0 / (double)cfg->rate;
    long sent = 0;
    PGresult *res;

    snprintf(k, sizeof(k), "%ld", cfg->k);
    first = scalar(c, "select coalesce(max(id), 0) from internships");
    target = scalar(c, "select count(*) from topicflow.processed_events");
    producer = spawn(cfg, "topicflow-producer", NULL);
    worker = spawn(cfg, "topicflow-worker", (const char *[]){"--k", k, NULL});
    usleep(500000);
    t0 = now_s();
    while (now_s() - t0 < cfg->seconds) {
        double due = t0 + (double)sent * interval;
        if (now_s() < due) {
            struct timespec ts = {0, (long)((due - now_s()) * 1e9)};
            nanosleep(&ts, NULL);
        }
        insert_postings(c, gen, rng, 1);
        sent++;
    }
    wait_processed(c, target + sent);
    stop_child(worker);
    stop_child(producer);
    snprintf(since, sizeof(since), "%lld", first);
    snprintf(sql, sizeof(sql),
             "select percentile_cont(0.5) within group (order by ms),"
             " percentile_cont(0.99) within group (order by ms), count(*) from ("
             " select extract(epoch from pg_xact_commit_timestamp(d.xmin)"
             "  - pg_xact_commit_timestamp(i.xmin)) * 1000 as ms"
             " from internships i join topicflow.documents d"
             " on d.source = 'public.internships' and d.doc_id = i.id::text where i.id > %s) x",
             since);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die("latency query (is track_commit_timestamp on?)", PQerrorMessage(c));
    *p50 = atof(PQgetvalue(res, 0, 0));
    *p99 = atof(PQgetvalue(res, 0, 1));
    *events = atoll(PQgetvalue(res, 0, 2));
    PQclear(res);
}

int main(int argc, char **argv)
{
    bench_config cfg;
    char self[1024];
    tf_sample *gen;
    uint64_t rng = 20261125;
    run_result runs[2];
    double p50, p99;
    long long events, target;
    PGconn *c;
    tf_err err;
    int first, rc;

    rc = tf_config_parse(bench_options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_HELP) {
        tf_config_usage(stdout, "bench-worker [options]",
                        "Worker throughput (1 and 2 processes) from a pre-filled queue, CPU per "
                        "document, what saturates,\nand end-to-end latency at a steady rate. "
                        "Run through bench/run worker.",
                        bench_options, N_OPTIONS);
        return 0;
    }
    if (rc != TF_CONFIG_OK || !cfg.pg_url || !cfg.amqp_url)
        die("configuration", rc != TF_CONFIG_OK ? err.msg : "TOPICFLOW_PG_URL and TOPICFLOW_AMQP_URL must be set");
    if (!cfg.bin_dir) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[len > 0 ? len : 0] = '\0';
        *strrchr(self, '/') = '\0';
        cfg.bin_dir = self;
    }
    tf_log_init("bench-worker", TF_LOG_WARN);
    gen = tf_sample_new(tf_data_dir(), &err);
    if (!gen)
        die("sample templates", err.msg);
    c = tf_pg_connect(cfg.pg_url, "bench-worker", &err);
    if (!c)
        die("connect", err.msg);
    if (scalar(c, "select (current_setting('track_commit_timestamp') = 'on')::int") != 1)
        die("server", "track_commit_timestamp is off (bench/run turns it on)");

    /* warm-up: the first model is fitted and every document folded */
    insert_postings(c, gen, &rng, cfg.warmup);
    publish_all(&cfg, c);
    throughput_run(&cfg, c, 1, cfg.warmup);
    exec_sql(c, "checkpoint");

    for (int w = 1; w <= 2; w++) {
        insert_postings(c, gen, &rng, cfg.docs);
        publish_all(&cfg, c);
        target = scalar(c, "select count(*) from topicflow.processed_events") + cfg.docs;
        exec_sql(c, "checkpoint");
        runs[w - 1] = throughput_run(&cfg, c, w, target);
    }
    latency_run(&cfg, c, gen, &rng, &p50, &p99, &events);

    printf("| workers | documents | seconds | documents/s | worker CPU µs/doc | worker cores | PostgreSQL cores | RabbitMQ cores | saturated |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 1; w <= 2; w++) {
        const run_result *r = &runs[w - 1];
        printf("| %d | %ld | %.2f | %.0f | %.1f | %.2f | %.2f | %.2f | %s |\n", w, cfg.docs,
               r->seconds, (double)cfg.docs / r->seconds, r->worker_cpu / (double)cfg.docs * 1e6,
               r->worker_cpu / r->seconds, r->pg_cpu / r->seconds, r->mq_cpu / r->seconds,
               saturated(r, w));
    }
    printf("\n| end-to-end latency at %ld events/s for %.0f s (source commit -> result commit) | value |\n|---|---|\n",
           cfg.rate, cfg.seconds);
    printf("| events | %lld |\n| p50 | %.1f ms |\n| p99 | %.1f ms |\n", events, p50, p99);
    printf("\nk=%ld, %ld cores; 2 workers / 1 worker = %.2fx\n", cfg.k, sysconf(_SC_NPROCESSORS_ONLN),
           runs[0].seconds / runs[1].seconds);
    tf_sample_free(gen);
    PQfinish(c);
    return 0;
}
