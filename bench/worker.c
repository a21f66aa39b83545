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
 * --corpus FILE.jsonl (title, description per line, e.g. bench/quality_corpus.py's
 * debian.jsonl) replaces the sample postings with real text, taken in file order and
 * cycled when the runs need more documents than the file holds.
 * Where the time goes: the workers run with --trace, whose per-batch stage timings are
 * summed per document (text, PostgreSQL, model, broker) for the throughput runs and, for
 * the latency run, joined by event id to every event's commit timestamps: the slowest 1 %
 * are broken down by stage, set against the worker's upkeep steps that overlapped them and
 * against the wait events of pg_stat_activity sampled every few milliseconds meanwhile.
 */
#include <pthread.h>
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
#include "wire/json.h"
#include "engine/text.h"
#include "pg/pg.h"
#include "sample/generator.h"

typedef struct bench_config {
    const char *pg_url, *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    long docs, warmup, k, rate;
    double seconds;
    const char *bin_dir;
    const char *producer_pg_url, *worker_pg_url;
    const char *corpus;
    const char *lexicon;
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
    {"corpus", NULL, TF_OPT_STRING, NULL, "JSONL of real documents (title, description) instead of sample postings", offsetof(bench_config, corpus), 0, 0},
    {"lexicon", NULL, TF_OPT_STRING, NULL, "the workers' --lexicon (off, auto or FILE; default: the worker's default)", offsetof(bench_config, lexicon), 0, 0},
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

/* Where the documents come from: generated sample postings, or a JSONL corpus in file order
 * (cycled). */
typedef struct doc_source {
    tf_sample *gen;
    uint64_t *rng;
    char **titles, **bodies;
    size_t n, next, cycles;
} doc_source;

static void corpus_load(doc_source *src, const char *path)
{
    FILE *f = fopen(path, "r");
    tf_json_object *o = tf_json_object_new();
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    tf_err err;

    if (!f || !o)
        die(path, f ? "out of memory" : "cannot open (build it: python3 bench/quality_corpus.py --source debian)");
    while ((len = getline(&line, &cap, f)) > 0) {
        const tf_json_value *t, *d;
        if (tf_json_parse_object(o, line, (size_t)len, &err) < 0)
            die(path, err.msg);
        t = tf_json_get(o, "title");
        d = tf_json_get(o, "description");
        if (!d || d->kind != TF_JSON_STRING)
            continue;
        if (src->n == alloc) {
            alloc = alloc ? alloc * 2 : 4096;
            src->titles = realloc(src->titles, alloc * sizeof(char *));
            src->bodies = realloc(src->bodies, alloc * sizeof(char *));
            if (!src->titles || !src->bodies)
                die(path, "out of memory");
        }
        src->titles[src->n] = strdup(t && t->kind == TF_JSON_STRING ? t->text : "");
        src->bodies[src->n] = strdup(d->text);
        src->n++;
    }
    free(line);
    fclose(f);
    tf_json_object_free(o);
    if (src->n == 0)
        die(path, "no documents (lines with a \"description\" string)");
}

/* Inserts n documents in statements of 1000 rows. */
static void insert_docs(PGconn *c, doc_source *src, long n)
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
            const char *vals[5];
            tf_buf_init(&skills);
            if (src->n) {
                vals[0] = src->titles[src->next];
                vals[1] = vals[2] = vals[4] = "";
                vals[3] = src->bodies[src->next];
                if (++src->next == src->n) {
                    src->next = 0;
                    src->cycles++;
                }
            } else {
                if (tf_sample_next(src->gen, src->rng, TF_SAMPLE_MIXED, &p) < 0)
                    die("sample", "out of memory");
                for (size_t s = 0; s < p.n_skills; s++)
                    tf_buf_printf(&skills, s ? "|%s" : "%s", p.skills[s]);
                vals[0] = p.title;
                vals[1] = p.company;
                vals[2] = p.location;
                vals[3] = p.description;
                vals[4] = skills.p ? skills.p : "";
            }
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
            " select t, c, l, d, coalesce(string_to_array(nullif(s, ''), '|'), '{}')"
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
    for (; args && *args && n < 13; args++)
        argv[n++] = *args;
    if (cfg->lexicon && strcmp(program, "topicflow-worker") == 0) { /* every worker alike */
        argv[n++] = "--lexicon";
        argv[n++] = cfg->lexicon;
    }
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

static pid_t spawn_worker(const bench_config *cfg, const char *trace)
{
    char k[16];

    snprintf(k, sizeof(k), "%ld", cfg->k);
    return spawn(cfg, "topicflow-worker", (const char *[]){"--k", k, "--trace", trace, NULL});
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

/* ---- the worker's --trace file --------------------------------------------------------- */

static const char *const stage_names[] = {"fill", "text", "resolve", "sync", "lock", "read",
                                          "fold", "upsert", "delta", "delta_sql", "record",
                                          "commit", "ack"};
#define N_STAGES 13
/* The group of each stage, as worker/stage_clock.c has it. */
static const char *const stage_groups[N_STAGES] = {"broker", "text", "pg", "pg", "pg", "pg",
                                                   "model", "pg", "model", "pg", "pg", "pg", "broker"};
static const char *const group_names[] = {"text", "pg", "model", "broker"};
#define N_GROUPS 4

static int group_of(int stage)
{
    for (int g = 0; g < N_GROUPS; g++)
        if (strcmp(stage_groups[stage], group_names[g]) == 0)
            return g;
    return 0;
}

typedef struct trace_batch {
    double recv, end;
    double sec[N_STAGES];
    size_t events;
} trace_batch;

typedef struct trace_upkeep {
    char step[24];
    double start, seconds;
} trace_upkeep;

typedef struct trace {
    trace_batch *b;
    size_t n_b, cap_b;
    trace_upkeep *u;
    size_t n_u, cap_u;
    int64_t *ev_id;   /* event id -> batch index, pairs */
    size_t *ev_batch;
    size_t n_ev, cap_ev;
} trace;

static void trace_read(const char *path, trace *t)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;

    memset(t, 0, sizeof(*t));
    if (!f)
        die(path, "no worker trace");
    while (getline(&line, &cap, f) > 0) {
        if (strncmp(line, "batch ", 6) == 0) {
            trace_batch b;
            char *ids, *p;
            memset(&b, 0, sizeof(b));
            if (sscanf(line, "batch recv=%lf end=%lf events=%zu", &b.recv, &b.end, &b.events) != 3)
                continue;
            for (int s = 0; s < N_STAGES; s++) {
                char key[32];
                snprintf(key, sizeof(key), " %s=", stage_names[s]);
                p = strstr(line, key);
                if (p)
                    b.sec[s] = atof(p + strlen(key));
            }
            if (t->n_b == t->cap_b) {
                t->cap_b = t->cap_b ? 2 * t->cap_b : 1024;
                t->b = realloc(t->b, t->cap_b * sizeof(*t->b));
            }
            t->b[t->n_b] = b;
            ids = strstr(line, "ids=");
            for (p = ids ? ids + 4 : NULL; p && *p >= '0' && *p <= '9';) {
                if (t->n_ev == t->cap_ev) {
                    t->cap_ev = t->cap_ev ? 2 * t->cap_ev : 4096;
                    t->ev_id = realloc(t->ev_id, t->cap_ev * sizeof(*t->ev_id));
                    t->ev_batch = realloc(t->ev_batch, t->cap_ev * sizeof(*t->ev_batch));
                }
                t->ev_id[t->n_ev] = strtoll(p, &p, 10);
                t->ev_batch[t->n_ev++] = t->n_b;
                if (*p == ',')
                    p++;
            }
            t->n_b++;
        } else if (strncmp(line, "upkeep ", 7) == 0) {
            trace_upkeep u;
            if (sscanf(line, "upkeep step=%23s start=%lf seconds=%lf", u.step, &u.start, &u.seconds) != 3)
                continue;
            if (t->n_u == t->cap_u) {
                t->cap_u = t->cap_u ? 2 * t->cap_u : 256;
                t->u = realloc(t->u, t->cap_u * sizeof(*t->u));
            }
            t->u[t->n_u++] = u;
        }
    }
    free(line);
    fclose(f);
}

static void trace_free(trace *t)
{
    free(t->b);
    free(t->u);
    free(t->ev_id);
    free(t->ev_batch);
}

/* Whether the trace file holds a line starting with prefix. */
static int trace_has(const char *path, const char *prefix)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int found = 0;

    while (f && !found && fgets(line, sizeof(line), f))
        found = strncmp(line, prefix, strlen(prefix)) == 0;
    if (f)
        fclose(f);
    return found;
}

/* The batch that carried event id (the last one: a redelivery's), or -1. */
static long trace_batch_of(const trace *t, int64_t id)
{
    long found = -1;

    for (size_t i = 0; i < t->n_ev; i++)
        if (t->ev_id[i] == id)
            found = (long)t->ev_batch[i];
    return found;
}

/* ---- throughput -------------------------------------------------------------------------- */

typedef struct run_result {
    double seconds, worker_cpu, pg_cpu, mq_cpu;
    double stage[N_STAGES]; /* worker seconds per stage, all workers */
} run_result;

static run_result throughput_run(const bench_config *cfg, PGconn *c, int workers, long long target,
                                 const char *trace_path)
{
    pid_t pids[8];
    run_result r;
    double pg0, mq0, t0;
    trace t;

    memset(&r, 0, sizeof(r));
    unlink(trace_path);
    /* this run's servers only: the postmaster's tree (the parent of our backend) and the node's */
    pg0 = proc_cpu_tree_seconds(proc_parent((pid_t)PQbackendPID(c)));
    mq0 = proc_cpu_tree_seconds(proc_state_dir_pid("rabbitmq"));
    t0 = now_s();
    for (int i = 0; i < workers; i++)
        pids[i] = spawn_worker(cfg, trace_path);
    wait_processed(c, target);
    r.seconds = now_s() - t0;
    r.pg_cpu = proc_cpu_tree_seconds(proc_parent((pid_t)PQbackendPID(c))) - pg0;
    r.mq_cpu = proc_cpu_tree_seconds(proc_state_dir_pid("rabbitmq")) - mq0;
    for (int i = 0; i < workers; i++)
        r.worker_cpu += stop_child(pids[i]);
    trace_read(trace_path, &t);
    for (size_t b = 0; b < t.n_b; b++)
        for (int s = 0; s < N_STAGES; s++)
            r.stage[s] += t.b[b].sec[s];
    trace_free(&t);
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
    return "none (latency-bound, or cores taken by other load)";
}

/* ---- pg_stat_activity sampling ------------------------------------------------------------ */

typedef struct wait_sample {
    double at;
    char who[40], what[48];
} wait_sample;

typedef struct sampler {
    const char *url;
    pthread_t thread;
    volatile int stop;
    wait_sample *s;
    size_t n, cap;
    long polls;
} sampler;

/* Every non-idle session and every background process that is not in its idle wait. */
static void *sample_loop(void *arg)
{
    sampler *sm = arg;
    tf_err err;
    PGconn *c = tf_pg_connect(sm->url, "bench-worker-sampler", &err);

    if (!c)
        return NULL;
    while (!sm->stop) {
        PGresult *res = PQexec(c,
            "select extract(epoch from clock_timestamp())::float8,"
            " coalesce(nullif(application_name, ''), backend_type),"
            " coalesce(wait_event_type || ':' || wait_event, 'CPU')"
            " from pg_stat_activity where pid <> pg_backend_pid()"
            " and (state is null or state <> 'idle')"
            " and coalesce(wait_event, '') not in ('CheckpointerMain', 'BgWriterHibernate',"
            " 'BgWriterMain', 'WalWriterMain', 'AutoVacuumMain', 'LogicalLauncherMain',"
            " 'ArchiverMain', 'ClientRead')");
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            sm->polls++;
            for (int r = 0; r < PQntuples(res); r++) {
                if (sm->n == sm->cap) {
                    sm->cap = sm->cap ? 2 * sm->cap : 4096;
                    sm->s = realloc(sm->s, sm->cap * sizeof(*sm->s));
                }
                sm->s[sm->n].at = atof(PQgetvalue(res, r, 0));
                snprintf(sm->s[sm->n].who, sizeof(sm->s[sm->n].who), "%s", PQgetvalue(res, r, 1));
                snprintf(sm->s[sm->n].what, sizeof(sm->s[sm->n].what), "%s", PQgetvalue(res, r, 2));
                sm->n++;
            }
        }
        PQclear(res);
        usleep(5000);
    }
    PQfinish(c);
    return NULL;
}

/* ---- latency ---------------------------------------------------------------------------- */

/* The steady state the latency run measures: a worker alone (no traffic) until no refit is
 * due and no document waits to be re-folded (after the throughput runs' tenfold growth the
 * policy re-fits, and the refold of every document then takes tens of seconds of CPU, a
 * one-off the latency run would otherwise measure instead). Returns the seconds it took. */
static double settle(const bench_config *cfg, PGconn *c, const char *trace_path)
{
    char k[16];
    pid_t w;
    double t0 = now_s();

    snprintf(k, sizeof(k), "%ld", cfg->k);
    w = spawn(cfg, "topicflow-worker",
              (const char *[]){"--k", k, "--trace", trace_path, "--name", "bench-settle", NULL});

    exec_sql(c, "delete from topicflow.model_policy where worker = 'bench-settle'");
    /* settled: the policy says only when the next growth refit will be, nothing is stale and
     * no delta waits, twice in a row 2 s apart */
    for (int calm = 0; calm < 2 && now_s() - t0 < 600;) {
        usleep(2000000);
        calm = scalar(c, "select (select count(*) from topicflow.model_policy where worker = 'bench-settle'"
                         "    and next like 'refit (growth) at%')"
                         " - (select count(*) from topicflow.documents where not deleted and"
                         "    coalesce(model_version, 0) < (select epoch from topicflow.model"
                         "    order by version desc limit 1))"
                         " - (select count(*) from topicflow.model_deltas)") == 1 ? calm + 1 : 0;
    }
    stop_child(w);
    return now_s() - t0;
}

typedef struct event_lat {
    int64_t id;
    double src, res, ms;
    long batch;
} event_lat;

static int cmp_ms(const void *x, const void *y)
{
    double a = ((const event_lat *)x)->ms, b = ((const event_lat *)y)->ms;
    return (a > b) - (a < b);
}

typedef struct lat_result {
    long long events, sent;
    double seconds, p50, p99, p999, max;
    double load_before[3], load_after[3];
} lat_result;

static void loadavg(double *l)
{
    FILE *f = fopen("/proc/loadavg", "r");
    l[0] = l[1] = l[2] = -1;
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
            l[0] = -1;
        fclose(f);
    }
}

/* Stage times of event e: [0] source commit -> first delivery of its batch (producer,
 * broker), then the batch's stages, then what is left to the result commit. */
#define N_PARTS (N_STAGES + 2)
static void event_parts(const event_lat *e, const trace *t, double *part)
{
    const trace_batch *b = &t->b[e->batch];
    double sum = 0;

    part[0] = b->recv - e->src;
    if (part[0] < 0)
        part[0] = 0;
    for (int s = 0; s < N_STAGES; s++)
        part[1 + s] = b->sec[s];
    part[1 + N_STAGES - 1] = 0; /* the ack is after the result commit */
    for (int p = 0; p < N_PARTS - 1; p++)
        sum += part[p];
    part[N_PARTS - 1] = e->res - e->src - sum;
}

static const char *part_name(int p)
{
    return p == 0 ? "source commit -> worker receives (producer, broker)"
           : p == N_PARTS - 1 ? "unaccounted (clock, commit ordering)"
                              : stage_names[p - 1];
}

static void latency_run(const bench_config *cfg, PGconn *c, doc_source *src, const char *trace_path,
                        lat_result *out)
{
    char since[32], sql[1400];
    pid_t producer, worker;
    long long first, target;
    double t0, interval = 1.0 / (double)cfg->rate;
    long sent = 0;
    long long ckpt0, ckpt1;
    PGresult *res;
    sampler sm;
    trace t;
    event_lat *ev;
    size_t n, slow_from, n_slow;

    memset(out, 0, sizeof(*out));
    memset(&sm, 0, sizeof(sm));
    sm.url = cfg->pg_url;
    unlink(trace_path);
    first = scalar(c, "select coalesce(max(id), 0) from internships");
    target = scalar(c, "select count(*) from topicflow.processed_events");
    ckpt0 = scalar(c, "select checkpoints_timed + checkpoints_req from pg_stat_bgwriter");
    producer = spawn(cfg, "topicflow-producer", NULL);
    worker = spawn_worker(cfg, trace_path);
    /* A starting worker loads the model on both threads (seconds at 55,000 documents on a
     * loaded machine): the run starts once its upkeep thread finished a first pass. */
    for (double w0 = now_s(); now_s() - w0 < 30 && !trace_has(trace_path, "upkeep step=policy") &&
                              !trace_has(trace_path, "upkeep step=quality");)
        usleep(100000);
    usleep(500000);
    loadavg(out->load_before);
    pthread_create(&sm.thread, NULL, sample_loop, &sm);
    t0 = now_s();
    while (now_s() - t0 < cfg->seconds) {
        double due = t0 + (double)sent * interval;
        if (now_s() < due) {
            struct timespec ts = {0, (long)((due - now_s()) * 1e9)};
            nanosleep(&ts, NULL);
        }
        insert_docs(c, src, 1);
        sent++;
    }
    out->seconds = now_s() - t0;
    out->sent = sent;
    wait_processed(c, target + sent);
    sm.stop = 1;
    pthread_join(sm.thread, NULL);
    loadavg(out->load_after);
    stop_child(worker);
    stop_child(producer);
    ckpt1 = scalar(c, "select checkpoints_timed + checkpoints_req from pg_stat_bgwriter");
    snprintf(since, sizeof(since), "%lld", first);
    snprintf(sql, sizeof(sql),
             "select d.event_id, extract(epoch from pg_xact_commit_timestamp(i.xmin))::float8,"
             " extract(epoch from pg_xact_commit_timestamp(d.xmin))::float8"
             " from internships i join topicflow.documents d"
             " on d.source = 'public.internships' and d.doc_id = i.id::text where i.id > %s",
             since);
    res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die("latency query (is track_commit_timestamp on?)", PQerrorMessage(c));
    n = (size_t)PQntuples(res);
    if (n == 0)
        die("latency", "no events");
    trace_read(trace_path, &t);
    ev = calloc(n, sizeof(*ev));
    double t_first = 1e18;
    for (size_t i = 0; i < n; i++) {
        ev[i].id = atoll(PQgetvalue(res, (int)i, 0));
        ev[i].src = atof(PQgetvalue(res, (int)i, 1));
        ev[i].res = atof(PQgetvalue(res, (int)i, 2));
        ev[i].ms = (ev[i].res - ev[i].src) * 1000;
        ev[i].batch = trace_batch_of(&t, ev[i].id);
        if (ev[i].src < t_first)
            t_first = ev[i].src;
    }
    PQclear(res);
    qsort(ev, n, sizeof(*ev), cmp_ms);
    out->events = (long long)n;
    out->p50 = ev[(size_t)(0.50 * (double)(n - 1))].ms;
    out->p99 = ev[(size_t)(0.99 * (double)(n - 1))].ms;
    out->p999 = ev[(size_t)(0.999 * (double)(n - 1))].ms;
    out->max = ev[n - 1].ms;
    slow_from = (size_t)(0.99 * (double)(n - 1));
    n_slow = n - slow_from;

    printf("\n| latency run | value |\n|---|---|\n");
    printf("| events asked / sent / measured | %.0f / %lld / %lld (%.0f events/s sent) |\n",
           cfg->rate * cfg->seconds, out->sent, out->events, (double)out->sent / out->seconds);
    printf("| load average before / after | %.2f %.2f %.2f / %.2f %.2f %.2f |\n", out->load_before[0],
           out->load_before[1], out->load_before[2], out->load_after[0], out->load_after[1],
           out->load_after[2]);
    printf("| worker batches / upkeep steps traced | %zu / %zu |\n", t.n_b, t.n_u);
    printf("| checkpoints during the run | %lld |\n", ckpt1 - ckpt0);
    printf("| pg_stat_activity polls / samples | %ld / %zu |\n", sm.polls, sm.n);

    /* Where the time of the slowest 1 % went, against all events. */
    {
        double all[N_PARTS] = {0}, slow[N_PARTS] = {0}, part[N_PARTS];
        size_t n_all = 0, n_sl = 0;
        for (size_t i = 0; i < n; i++) {
            if (ev[i].batch < 0)
                continue;
            event_parts(&ev[i], &t, part);
            for (int p = 0; p < N_PARTS; p++) {
                all[p] += part[p];
                if (i >= slow_from)
                    slow[p] += part[p];
            }
            n_all++;
            n_sl += i >= slow_from;
        }
        printf("\n| stage (mean ms per event) | all events (%zu) | slowest 1 %% (%zu) |\n|---|---|---|\n",
               n_all, n_sl);
        for (int p = 0; p < N_PARTS; p++)
            printf("| %s | %.2f | %.2f |\n", part_name(p), n_all ? all[p] / (double)n_all * 1e3 : 0,
                   n_sl ? slow[p] / (double)n_sl * 1e3 : 0);
    }
    /* Upkeep steps that overlapped the slowest events' lifetimes. */
    {
        const char *steps[] = {"sync", "first_fit", "refold", "refresh", "policy", "measure",
                               "fold_forms", "quality"};
        printf("\n| upkeep step | runs | mean ms | max ms | overlaps slowest 1 %% | overlaps any event |\n|---|---|---|---|---|---|\n");
        for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
            size_t runs = 0, ov_slow = 0, ov_all = 0;
            double sum = 0, mx = 0;
            for (size_t u = 0; u < t.n_u; u++)
                if (strcmp(t.u[u].step, steps[k]) == 0) {
                    runs++;
                    sum += t.u[u].seconds;
                    if (t.u[u].seconds > mx)
                        mx = t.u[u].seconds;
                }
            if (!runs)
                continue;
            for (size_t i = 0; i < n; i++) {
                int hit = 0;
                for (size_t u = 0; u < t.n_u && !hit; u++)
                    hit = strcmp(t.u[u].step, steps[k]) == 0 && t.u[u].start < ev[i].res &&
                          t.u[u].start + t.u[u].seconds > ev[i].src;
                ov_all += hit;
                ov_slow += hit && i >= slow_from;
            }
            printf("| %s | %zu | %.1f | %.1f | %.0f %% | %.0f %% |\n", steps[k], runs,
                   sum / (double)runs * 1e3, mx * 1e3, 100.0 * (double)ov_slow / (double)n_slow,
                   100.0 * (double)ov_all / (double)n);
        }
    }
    /* Wait events sampled while the slowest events were in flight, against the whole run. */
    {
        typedef struct { char key[96]; size_t slow, all; } wcount;
        wcount w[64];
        size_t nw = 0, in_slow = 0;
        for (size_t i = 0; i < sm.n; i++) {
            char key[96];
            int slow = 0;
            size_t k;
            snprintf(key, sizeof(key), "%s / %s", sm.s[i].who, sm.s[i].what);
            for (size_t e = slow_from; e < n && !slow; e++)
                slow = sm.s[i].at >= ev[e].src && sm.s[i].at <= ev[e].res;
            in_slow += slow;
            for (k = 0; k < nw && strcmp(w[k].key, key); k++)
                ;
            if (k == nw) {
                if (nw == 64)
                    continue;
                snprintf(w[nw].key, sizeof(w[nw].key), "%s", key);
                w[nw].slow = w[nw].all = 0;
                nw++;
            }
            w[k].all++;
            w[k].slow += slow;
        }
        printf("\n| pg_stat_activity (non-idle: session / wait event) | samples while a slowest-1 %% event was in flight | samples in the run |\n|---|---|---|\n");
        for (size_t k = 0; k < nw; k++)
            if (w[k].all * 200 >= sm.n || w[k].slow * 50 >= in_slow)
                printf("| %s | %zu | %zu |\n", w[k].key, w[k].slow, w[k].all);
    }
    /* The ten slowest, one by one. */
    printf("\n| slow event | at s | ms | largest stage (ms) | upkeep steps overlapping |\n|---|---|---|---|---|\n");
    for (size_t i = n; i > 0 && i > n - 10; i--) {
        const event_lat *e = &ev[i - 1];
        double part[N_PARTS];
        int big = 0;
        char steps[160] = "";
        size_t o = 0;
        if (e->batch >= 0) {
            event_parts(e, &t, part);
            for (int p = 1; p < N_PARTS; p++)
                if (part[p] > part[big])
                    big = p;
        }
        for (size_t u = 0; u < t.n_u && o + 40 < sizeof(steps); u++)
            if (t.u[u].start < e->res && t.u[u].start + t.u[u].seconds > e->src)
                o += (size_t)snprintf(steps + o, sizeof(steps) - o, "%s%s %.0f ms", o ? ", " : "",
                                      t.u[u].step, t.u[u].seconds * 1e3);
        printf("| %lld | %.2f | %.1f | %s (%.1f) | %s |\n", (long long)e->id,
               e->src - t_first, e->ms, e->batch >= 0 ? part_name(big) : "?",
               e->batch >= 0 ? part[big] * 1e3 : 0, o ? steps : "-");
    }
    free(ev);
    free(sm.s);
    trace_free(&t);
}

int main(int argc, char **argv)
{
    bench_config cfg;
    char self[1024], tmpl[] = "/tmp/bench-worker-XXXXXX", trace_path[1100];
    doc_source src;
    uint64_t rng = 20261125;
    run_result runs[2];
    lat_result lat;
    long long target;
    double load0[3], load1[3];
    PGconn *c;
    tf_err err;
    int first, rc;

    rc = tf_config_parse(bench_options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_HELP) {
        tf_config_usage(stdout, "bench-worker [options]",
                        "Worker throughput (1 and 2 processes) from a pre-filled queue, CPU per "
                        "document, what saturates, where the\ntime goes per stage, and end-to-end "
                        "latency at a steady rate with the slowest 1 % traced.\nRun through "
                        "bench/run worker.",
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
    if (!mkdtemp(tmpl))
        die("temporary directory", "cannot create");
    snprintf(trace_path, sizeof(trace_path), "%s/worker.trace", tmpl);
    tf_log_init("bench-worker", TF_LOG_WARN);
    memset(&src, 0, sizeof(src));
    src.rng = &rng;
    if (cfg.corpus)
        corpus_load(&src, cfg.corpus);
    else if (!(src.gen = tf_sample_new(tf_data_dir(), &err)))
        die("sample templates", err.msg);
    c = tf_pg_connect(cfg.pg_url, "bench-worker", &err);
    if (!c)
        die("connect", err.msg);
    if (scalar(c, "select (current_setting('track_commit_timestamp') = 'on')::int") != 1)
        die("server", "track_commit_timestamp is off (bench/run turns it on)");
    loadavg(load0);

    /* warm-up: the first model is fitted and every document folded */
    insert_docs(c, &src, cfg.warmup);
    publish_all(&cfg, c);
    throughput_run(&cfg, c, 1, cfg.warmup, trace_path);
    exec_sql(c, "checkpoint");

    for (int w = 1; w <= 2; w++) {
        insert_docs(c, &src, cfg.docs);
        publish_all(&cfg, c);
        target = scalar(c, "select count(*) from topicflow.processed_events") + cfg.docs;
        exec_sql(c, "checkpoint");
        runs[w - 1] = throughput_run(&cfg, c, w, target, trace_path);
    }
    loadavg(load1);

    printf("input: %s%s, workers' lexicon %s; load average before %.2f %.2f %.2f, after the throughput runs %.2f %.2f %.2f\n\n",
           cfg.corpus ? cfg.corpus : "sample postings (English and Arabic)",
           src.cycles ? " (cycled: later documents repeat earlier texts)" : "",
           cfg.lexicon ? cfg.lexicon : "(the worker's default)", load0[0], load0[1],
           load0[2], load1[0], load1[1], load1[2]);
    printf("| workers | documents | seconds | documents/s | worker CPU µs/doc | worker cores | PostgreSQL cores | RabbitMQ cores | saturated |\n");
    printf("|---|---|---|---|---|---|---|---|---|\n");
    for (int w = 1; w <= 2; w++) {
        const run_result *r = &runs[w - 1];
        printf("| %d | %ld | %.2f | %.0f | %.1f | %.2f | %.2f | %.2f | %s |\n", w, cfg.docs,
               r->seconds, (double)cfg.docs / r->seconds, r->worker_cpu / (double)cfg.docs * 1e6,
               r->worker_cpu / r->seconds, r->pg_cpu / r->seconds, r->mq_cpu / r->seconds,
               saturated(r, w));
    }
    printf("\nCPU µs per document by process: ");
    for (int w = 1; w <= 2; w++)
        printf("%s%d worker%s: workers %.1f, PostgreSQL %.1f, RabbitMQ %.1f", w > 1 ? "; " : "", w,
               w > 1 ? "s" : "", runs[w - 1].worker_cpu / (double)cfg.docs * 1e6,
               runs[w - 1].pg_cpu / (double)cfg.docs * 1e6, runs[w - 1].mq_cpu / (double)cfg.docs * 1e6);
    printf("\n\n| where a worker's time goes (wall µs per document, from --trace) | 1 worker | 2 workers (sum of both) |\n|---|---|---|\n");
    for (int g = 0; g < N_GROUPS; g++) {
        double v[2] = {0, 0};
        for (int w = 0; w < 2; w++)
            for (int s = 0; s < N_STAGES; s++)
                if (group_of(s) == g)
                    v[w] += runs[w].stage[s];
        printf("| **%s** | **%.1f** | **%.1f** |\n", group_names[g], v[0] / (double)cfg.docs * 1e6,
               v[1] / (double)cfg.docs * 1e6);
        for (int s = 0; s < N_STAGES; s++)
            if (group_of(s) == g)
                printf("| &nbsp; %s | %.1f | %.1f |\n", stage_names[s],
                       runs[0].stage[s] / (double)cfg.docs * 1e6, runs[1].stage[s] / (double)cfg.docs * 1e6);
    }

    {
        double settled = settle(&cfg, c, trace_path);
        printf("\nbefore the latency run: %.0f s with one worker and no traffic until no refit was due,"
               " nothing stale and no delta pending\n", settled);
    }
    latency_run(&cfg, c, &src, trace_path, &lat);
    printf("\n| end-to-end latency at %ld events/s for %.0f s (source commit -> result commit) | value |\n|---|---|\n",
           cfg.rate, cfg.seconds);
    printf("| events | %lld |\n| p50 | %.1f ms |\n| p99 | %.1f ms |\n| p99.9 | %.1f ms |\n| max | %.1f ms |\n",
           lat.events, lat.p50, lat.p99, lat.p999, lat.max);
    printf("| load average before / after | %.2f %.2f %.2f / %.2f %.2f %.2f |\n", lat.load_before[0],
           lat.load_before[1], lat.load_before[2], lat.load_after[0], lat.load_after[1], lat.load_after[2]);
    printf("\nk=%ld, %ld cores; 2 workers / 1 worker = %.2fx\n", cfg.k, sysconf(_SC_NPROCESSORS_ONLN),
           runs[0].seconds / runs[1].seconds);
    unlink(trace_path);
    rmdir(tmpl);
    if (src.gen)
        tf_sample_free(src.gen);
    for (size_t i = 0; i < src.n; i++) {
        free(src.titles[i]);
        free(src.bodies[i]);
    }
    free(src.titles);
    free(src.bodies);
    PQfinish(c);
    return 0;
}
