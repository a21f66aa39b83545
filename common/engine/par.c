/*
 * par.c - par_for and par_for_parts: one pthread per part or worker, created and joined
 * per call. The numeric calls they serve take milliseconds, so a pool would save nothing
 * measurable and would add state that outlives the call.
 */
#include "engine/par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct par_job {
    par_range_fn fn;
    void *ctx;
    int part;
    int64_t begin, end;
} par_job;

static void *par_run(void *arg)
{
    par_job *job = arg;

    job->fn(job->ctx, job->part, job->begin, job->end);
    return NULL;
}

/* First row index whose cost prefix reaches target (binary search on cost[0..n]). */
static int64_t par_cost_cut(const int64_t *cost, int64_t n, int64_t target)
{
    int64_t lo = 0, hi = n;

    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cost[mid] < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int par_split(int64_t n, int threads, const int64_t *cost, int64_t *bounds)
{
    int parts = threads < 1 ? 1 : threads > PAR_MAX_THREADS ? PAR_MAX_THREADS : threads;

    if (n < parts)
        parts = n > 0 ? (int)n : 1;
    bounds[0] = 0;
    for (int p = 1; p < parts; p++) {
        int64_t cut;
        if (cost && cost[n] > cost[0]) {
            int64_t total = cost[n] - cost[0];
            cut = par_cost_cut(cost, n, cost[0] + (total / parts) * p + (total % parts) * p / parts);
        } else {
            cut = n / parts * p + (n % parts) * p / parts;
        }
        if (cut < bounds[p - 1])
            cut = bounds[p - 1];
        bounds[p] = cut;
    }
    bounds[parts] = n;
    return parts;
}

int par_for(int64_t n, int threads, const int64_t *cost, par_range_fn fn, void *ctx)
{
    int64_t bounds[PAR_MAX_THREADS + 1];
    par_job jobs[PAR_MAX_THREADS];
    pthread_t tids[PAR_MAX_THREADS];
    int started[PAR_MAX_THREADS];
    int parts = par_split(n, threads, cost, bounds);

    if (parts == 1) {
        fn(ctx, 0, 0, n);
        return 1;
    }
    for (int p = 1; p < parts; p++) {
        jobs[p] = (par_job){ .fn = fn, .ctx = ctx, .part = p, .begin = bounds[p], .end = bounds[p + 1] };
        started[p] = pthread_create(&tids[p], NULL, par_run, &jobs[p]) == 0;
    }
    /* Part 0 runs on the calling thread, after the others were started. */
    fn(ctx, 0, bounds[0], bounds[1]);
    for (int p = 1; p < parts; p++) {
        if (started[p]) {
            pthread_join(tids[p], NULL);
        } else {
            par_run(&jobs[p]);
        }
    }
    return parts;
}

typedef struct par_parts_job {
    par_part_fn fn;
    void *ctx;
    const int64_t *bounds;
    int parts;
    atomic_int next;
} par_parts_job;

typedef struct par_worker {
    par_parts_job *job;
    int worker;
} par_worker;

static void *par_parts_run(void *arg)
{
    par_worker *w = arg;
    par_parts_job *job = w->job;
    int p;

    while ((p = atomic_fetch_add(&job->next, 1)) < job->parts)
        job->fn(job->ctx, w->worker, p, job->bounds[p], job->bounds[p + 1]);
    return NULL;
}

void par_for_parts(int parts, const int64_t *bounds, int threads, par_part_fn fn, void *ctx)
{
    par_parts_job job = { .fn = fn, .ctx = ctx, .bounds = bounds, .parts = parts };
    par_worker workers[PAR_MAX_THREADS];
    pthread_t tids[PAR_MAX_THREADS];
    int started[PAR_MAX_THREADS];
    int n = threads < 1 ? 1 : threads > PAR_MAX_THREADS ? PAR_MAX_THREADS : threads;

    if (n > parts)
        n = parts > 0 ? parts : 1;
    atomic_init(&job.next, 0);
    for (int w = 0; w < n; w++)
        workers[w] = (par_worker){ .job = &job, .worker = w };
    for (int w = 1; w < n; w++)
        started[w] = pthread_create(&tids[w], NULL, par_parts_run, &workers[w]) == 0;
    /* Worker 0 is the calling thread; a worker that could not start leaves its share to
     * the others through the counter. */
    par_parts_run(&workers[0]);
    for (int w = 1; w < n; w++)
        if (started[w])
            pthread_join(tids[w], NULL);
}
