/*
 * spmm.c - row-blocked, column-panelled sparse × dense product.
 *
 * Each output row gathers rows of B. When B is larger than a cache budget, the k columns
 * are processed in panels so the panel of B that the gathers touch stays in L2; the
 * sparse structure (8 bytes per non-zero) is then re-read once per panel, which costs
 * far less than gathering cold 64-byte lines. Inner loops have fixed 8-wide blocks so
 * the compiler vectorizes them at -O2. A plan (spmm_plan) instead cuts B's rows into tiles
 * that stay in L2 while every row of A passes over them: worth it when k is small, where a
 * gathered row is a cache line or two and the cost is the miss, not the arithmetic.
 */
#include "spmm.h"

#include "par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of B that a panel may span; half of a 2 MiB L2 leaves room for A and C. */
#define SPMM_PANEL_BYTES (1u << 20)
#define SPMM_BLOCK 8
/* Widest panel accumulated on the stack (and the narrowest one cut when B is large). */
#define SPMM_MAX_PANEL 128
#define SPMM_MIN_PANEL 32
#define SPMM_PREFETCH 8
/* A gathered row that misses costs about a 64-byte line from memory; a tile pass costs
 * reading and writing all of C once. */
#define SPMM_MISS_BYTES 64

typedef struct spmm_job {
    const tf_csr *A;
    int32_t row0;
    const double *B;
    int32_t b_rows;
    int k, c0, kc;
    double *C;
} spmm_job;

/* Cloned for x86-64-v3 (AVX2 + FMA): the build targets baseline x86-64, and the wider
 * vectors make this loop ~1.7x faster where the CPU has them (chosen once at load time). */
__attribute__((target_clones("arch=x86-64-v3", "default")))
static void spmm_panel_row(const int32_t *restrict idx, const float *restrict val, int64_t n,
                           const double *restrict B, int32_t b_rows, int k, int kc,
                           int accumulate, double *restrict out)
{
    double acc[SPMM_MAX_PANEL];
    int full = kc - kc % SPMM_BLOCK, half = kc - full >= 4 ? full + 4 : full;

    for (int j = 0; j < kc; j++)
        acc[j] = accumulate ? out[j] : 0.0;
    for (int64_t p = 0; p < n; p++) {
        /* The gathers are latency-bound: ask for a row a few non-zeros ahead. */
        if (p + SPMM_PREFETCH < n && idx[p + SPMM_PREFETCH] < b_rows) {
            const char *ahead = (const char *)(B + (int64_t)idx[p + SPMM_PREFETCH] * k);
            for (int off = 0; off < kc * (int)sizeof(double); off += 64)
                __builtin_prefetch(ahead + off);
        }
        if (idx[p] >= b_rows)
            continue;
        const double *restrict b = B + (int64_t)idx[p] * k;
        double v = val[p];
        for (int j = 0; j < full; j += SPMM_BLOCK)
            for (int u = 0; u < SPMM_BLOCK; u++)
                acc[j + u] += v * b[j + u];
        /* A 4-wide step keeps k = 20 or 100 off the scalar tail. */
        for (int j = full; j < half; j += 4)
            for (int u = 0; u < 4; u++)
                acc[j + u] += v * b[j + u];
        for (int j = half; j < kc; j++)
            acc[j] += v * b[j];
    }
    for (int j = 0; j < kc; j++)
        out[j] = acc[j];
}

static void spmm_range(void *ctx, int part, int64_t begin, int64_t end)
{
    const spmm_job *job = ctx;
    const tf_csr *A = job->A;

    for (int64_t r = begin; r < end; r++) {
        int64_t i = job->row0 + r;
        int64_t p0 = A->row_ptr[i];
        spmm_panel_row(A->col_idx + p0, A->val + p0, A->row_ptr[i + 1] - p0,
                       job->B + job->c0, job->b_rows, job->k, job->kc,
                       0, job->C + r * job->k + job->c0);
    }
}

void spmm_rows(const tf_csr *A, int32_t row_begin, int32_t row_end, const double *B,
               int32_t b_rows, int k, double *C, int threads)
{
    int64_t n = (int64_t)row_end - row_begin;
    size_t b_bytes = (size_t)b_rows * (size_t)k * sizeof(double);
    int kc = k;

    if (n <= 0 || k <= 0)
        return;
    if (b_bytes > SPMM_PANEL_BYTES) {
        kc = (int)(SPMM_PANEL_BYTES / ((size_t)b_rows * sizeof(double)));
        kc = kc < SPMM_MIN_PANEL ? SPMM_MIN_PANEL : kc - kc % SPMM_BLOCK;
    }
    if (kc > SPMM_MAX_PANEL)
        kc = SPMM_MAX_PANEL;
    for (int c0 = 0; c0 < k; c0 += kc) {
        spmm_job job = { .A = A, .row0 = row_begin, .B = B, .b_rows = b_rows, .k = k,
                         .c0 = c0, .kc = k - c0 < kc ? k - c0 : kc, .C = C };
        /* Balancing by the non-zeros of the row range: row_ptr offset by row_begin. */
        par_for(n, threads, A->row_ptr + row_begin, spmm_range, &job);
    }
}

void spmm(const tf_csr *A, const double *B, int32_t b_rows, int k, double *C, int threads)
{
    spmm_rows(A, 0, A->n_rows, B, b_rows, k, C, threads);
}

/* ---- plans -------------------------------------------------------------------------- */

struct spmm_plan {
    const tf_csr *A;
    int32_t b_rows;
    int k;
    int tiles;         /* 1: no copy, products run spmm on A */
    int64_t *seg;      /* n_rows × (tiles + 1) offsets into idx/val: row r's tile t */
    int32_t *idx;
    float *val;
};

typedef struct spmm_tile_job {
    const spmm_plan *plan;
    const double *B;
    double *C;
} spmm_tile_job;

static void spmm_tile_range(void *ctx, int part, int64_t begin, int64_t end)
{
    const spmm_tile_job *job = ctx;
    const spmm_plan *pl = job->plan;
    int k = pl->k, stride = pl->tiles + 1;

    /* Tiles outermost: the thread's rows all pass over one tile while it is in L2. */
    for (int t = 0; t < pl->tiles; t++)
        for (int64_t r = begin; r < end; r++) {
            const int64_t *s = pl->seg + r * stride;
            spmm_panel_row(pl->idx + s[t], pl->val + s[t], s[t + 1] - s[t], job->B, pl->b_rows,
                           k, k, t > 0, job->C + r * k);
        }
}

/* Tiles of B (b_rows × k doubles) of about SPMM_PANEL_BYTES each, or 1 when tiling does
 * not pay: every tile after the first re-reads and re-writes C. */
static int spmm_plan_tiles(const tf_csr *A, int32_t b_rows, int k)
{
    double b_bytes = (double)b_rows * k * sizeof(double);
    double c_bytes = (double)A->n_rows * k * sizeof(double);
    double tiles = ceil(b_bytes / SPMM_PANEL_BYTES);

    if (k > SPMM_MAX_PANEL || tiles <= 1.0 || tiles > b_rows)
        return 1;
    if ((tiles - 1.0) * 2.0 * c_bytes > (double)csr_nnz(A) * SPMM_MISS_BYTES)
        return 1;
    return (int)tiles;
}

spmm_plan *spmm_plan_new(const tf_csr *A, int32_t b_rows, int k, tf_err *err)
{
    spmm_plan *pl = calloc(1, sizeof(*pl));
    int32_t width;
    int stride;

    if (!pl)
        goto oom;
    pl->A = A;
    pl->b_rows = b_rows;
    pl->k = k;
    pl->tiles = spmm_plan_tiles(A, b_rows, k);
    if (pl->tiles == 1)
        return pl;
    stride = pl->tiles + 1;
    width = (int32_t)((b_rows + (int64_t)pl->tiles - 1) / pl->tiles);
    pl->seg = malloc(sizeof(int64_t) * (size_t)A->n_rows * stride);
    pl->idx = malloc(sizeof(int32_t) * (size_t)(csr_nnz(A) ? csr_nnz(A) : 1));
    pl->val = malloc(sizeof(float) * (size_t)(csr_nnz(A) ? csr_nnz(A) : 1));
    if (!pl->seg || !pl->idx || !pl->val)
        goto oom;
    /* A stable counting sort of each row by tile; entries beyond b_rows meet zero rows of
     * B and are dropped. */
    for (int32_t r = 0; r < A->n_rows; r++) {
        int64_t *s = pl->seg + (int64_t)r * stride, p0 = A->row_ptr[r], p1 = A->row_ptr[r + 1];
        for (int t = 0; t < stride; t++)
            s[t] = 0;
        for (int64_t p = p0; p < p1; p++)
            if (A->col_idx[p] < b_rows)
                s[A->col_idx[p] / width + 1]++;
        s[0] = p0;
        for (int t = 1; t < stride; t++)
            s[t] += s[t - 1];
        for (int64_t p = p0; p < p1; p++) {
            int32_t c = A->col_idx[p];
            if (c < b_rows) {
                int64_t q = s[c / width]++;
                pl->idx[q] = c;
                pl->val[q] = A->val[p];
            }
        }
        /* The placement advanced s[t] to the start of tile t + 1: shift back. */
        for (int t = stride - 1; t > 0; t--)
            s[t] = s[t - 1];
        s[0] = p0;
    }
    return pl;
oom:
    spmm_plan_free(pl);
    tf_err_set(err, "spmm: out of memory planning a %d x %d product", A->n_rows, k);
    return NULL;
}

void spmm_plan_free(spmm_plan *plan)
{
    if (!plan)
        return;
    free(plan->seg);
    free(plan->idx);
    free(plan->val);
    free(plan);
}

void spmm_plan_run(const spmm_plan *plan, const double *B, double *C, int threads)
{
    spmm_tile_job job = { .plan = plan, .B = B, .C = C };

    if (plan->tiles == 1) {
        spmm(plan->A, B, plan->b_rows, plan->k, C, threads);
        return;
    }
    if (plan->A->n_rows > 0 && plan->k > 0)
        par_for(plan->A->n_rows, threads, plan->A->row_ptr, spmm_tile_range, &job);
}
