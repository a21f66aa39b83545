/*
 * bench_util.h - what the producer and capture benchmarks share: a monotonic clock, failing
 * with one line (named after the program), SQL that must succeed, an empty topicflow.nmf, the
 * topicflow-producer beside the benchmark, and concurrent single-row insert writers.
 */
#ifndef TF_BENCH_UTIL_H
#define TF_BENCH_UTIL_H

#include <libpq-fe.h>
#include <stddef.h>

#include "base/config.h"
#include "base/error.h"

double bench_now(void);

/* Prints "<program>: what: reason" and exits 1. */
void bench_die(const char *what, const tf_err *err) __attribute__((noreturn));

/* Runs sql on c; any failure is fatal (bench_die). */
void bench_exec(PGconn *c, const char *sql);

/* Declares the topology and purges topicflow.nmf; fatal on failure. */
void bench_purge_queue(const char *amqp_url, const tf_amqp_tls *tls);

/* The path of topicflow-producer in this program's directory, into buf. */
const char *bench_producer_beside(char *buf, size_t size);

typedef struct bench_writers {
    const char *url;
    long writers, txns;   /* sessions, and single-row insert transactions each */
    int listen;           /* a session listens on topicflow_outbox meanwhile, as a producer does */
    int notify_off;       /* each writer sets topicflow.notify = off */
    double (*cpu)(void);  /* NULL, or sampled before and once every insert committed, while
                           * the writers' sessions still live */
} bench_writers;

/* Runs the writers into internships; the seconds until every insert committed (and in
 * *cpu_used the cpu() difference, when given). Fatal when a writer fails. */
double bench_writers_run(const bench_writers *w, double *cpu_used);

#endif
