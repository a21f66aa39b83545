/*
 * bench_util.c - the helpers bench-producer and bench-capture share (bench_util.h): clock,
 * fatal errors, queue purge, the producer's path, and the writer threads of the writer-rate
 * runs.
 */
#include "bench_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "amqp/broker.h"
#include "amqp/topology.h"
#include "pg/pg.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_die(const char *what, const tf_err *err)
{
    fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, err->msg);
    exit(1);
}

void bench_exec(PGconn *c, const char *sql)
{
    tf_err err;
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        tf_pg_result_error(c, res, &err);
        bench_die(sql, &err);
    }
    PQclear(res);
}

void bench_purge_queue(const char *amqp_url, const tf_amqp_tls *tls)
{
    tf_err err;
    tf_topology topo = tf_topology_defaults();
    tf_broker *b = tf_broker_open(amqp_url, tls, 30, &err);
    if (!b || tf_topology_declare(b, &topo, NULL, &err) < 0)
        bench_die("broker", &err);
    if (tf_broker_purge(b, TF_QUEUE_NMF, &err) < 0)
        bench_die("purge", &err);
    tf_broker_close(b);
}

const char *bench_producer_beside(char *buf, size_t size)
{
    char self[1024];
    ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);

    self[k > 0 ? k : 0] = '\0';
    if (strrchr(self, '/'))
        strrchr(self, '/')[1] = '\0';
    snprintf(buf, size, "%stopicflow-producer", self);
    return buf;
}

typedef struct writer_arg {
    const bench_writers *w;
    int failed;
    pthread_barrier_t *done, *sampled;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *a = p;
    tf_err err;
    PGconn *c = tf_pg_connect(a->w->url, "bench-writer", &err);

    if (!c)
        a->failed = 1;
    else if (a->w->notify_off)
        bench_exec(c, "set topicflow.notify = off");
    if (c)
        PQprepare(c, "ins", "insert into internships (title, description) values ($1, $2)", 2, NULL);
    for (long i = 0; c && i < a->w->txns; i++) {
        const char *params[2] = {"Writer rate posting", "A short description of the role."};
        PGresult *res = PQexecPrepared(c, "ins", 2, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            a->failed = 1;
        PQclear(res);
    }
    /* A backend's CPU counts only while it lives: stay connected until it was sampled. */
    pthread_barrier_wait(a->done);
    pthread_barrier_wait(a->sampled);
    PQfinish(c);
    return NULL;
}

double bench_writers_run(const bench_writers *w, double *cpu_used)
{
    pthread_t th[64];
    writer_arg args[64];
    pthread_barrier_t done, sampled;
    tf_err err;
    PGconn *listener = tf_pg_connect(w->url, "bench-listener", &err);
    long n = w->writers < 64 ? w->writers : 64;
    double t0, cpu0 = w->cpu ? w->cpu() : 0;

    if (!listener)
        bench_die("listener", &err);
    if (w->listen)
        bench_exec(listener, "listen topicflow_outbox");
    pthread_barrier_init(&done, NULL, (unsigned)n + 1);
    pthread_barrier_init(&sampled, NULL, (unsigned)n + 1);
    t0 = bench_now();
    for (long i = 0; i < n; i++) {
        args[i] = (writer_arg){w, 0, &done, &sampled};
        pthread_create(&th[i], NULL, writer_main, &args[i]);
    }
    pthread_barrier_wait(&done);
    t0 = bench_now() - t0;
    if (cpu_used)
        *cpu_used = w->cpu ? w->cpu() - cpu0 : 0;
    pthread_barrier_wait(&sampled);
    for (long i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (args[i].failed) {
            fprintf(stderr, "%s: a writer failed\n", program_invocation_short_name);
            exit(1);
        }
    }
    PQfinish(listener);
    pthread_barrier_destroy(&done);
    pthread_barrier_destroy(&sampled);
    return t0;
}
