/*
 * spmm.c - row-blocked, column-panelled sparse × dense product.
 *
 * Each output row gathers rows of B. When B is larger than a cache budget, the k columns
 * are processed in panels so the panel of B that the gathers touch stays in L2; the
 * sparse structure (8 bytes per non-zero) is then re-read once per panel, which costs
 * far less than gathering cold 64-byte lines. Inner loops have fixed 8-wide blocks so
 * the compiler vectorizes them at -O2.
 */
#include "spmm.h"

#include "par.h"

#include <string.h>

/* Bytes of B that a panel may span; half of a 2 MiB L2 leaves room for A and C. */
#define SPMM_PANEL_BYTES (1u << 20)
#define SPMM_BLOCK 8
/* Widest panel accumulated on the stack (and the narrowest one cut when B is large). */
#define SPMM_MAX_PANEL 128
#define SPMM_MIN_PANEL 32
#define SPMM_PREFETCH 8

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
                           double *restrict out)
{
    double acc[SPMM_MAX_PANEL];
    int full = kc - kc % SPMM_BLOCK, half = kc - full >= 4 ? full + 4 : full;

    for (int j = 0; j < kc; j++)
        acc[j] = 0.0;
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
                       job->C + r * job->k + job->c0);
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
