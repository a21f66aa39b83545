/*
 * spmm.c - row-blocked sparse × dense product with register accumulators, and plans that
 * tile B for repeated products.
 *
 * Each output row gathers rows of B into at most four 8-wide vector accumulators per
 * 32-column chunk, so the sums stay in registers (an accumulator array indexed by a
 * run-time k lives in memory, and every non-zero then waits on a store). A plan cuts B's
 * rows into tiles that stay in the last-level cache while every row of A passes over them:
 * worth it for a B much larger than that cache and small k, where a gathered row is a
 * cache line or two and the cost is the miss, not the arithmetic; for large k the extra
 * passes over C cost more than they save.
 */
#include "engine/spmm.h"

#include "engine/par.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of B per tile: a share of a last-level cache, not of L2. Tiles sized for L2 were
 * measured 2-3x slower than no tiles on an EPYC (1 MiB L2 per core, 32 MiB L3) with a
 * 4.9 MiB W and an 8 MiB H: a gathered row that hits L3 costs less than the extra passes
 * over C, and rows of A split over many tiles (a term's few documents) leave each tile
 * pass with one or no entry. Tiles pay only when B would come from memory. */
#define SPMM_TILE_BYTES (16u << 20)
/* A gathered row that misses costs about a 64-byte line from memory; a tile pass costs
 * reading and writing all of C once. */
#define SPMM_MISS_BYTES 64

typedef struct spmm_job {
    const tf_csr *A;
    int32_t row0;
    const double *B;
    int32_t b_rows;
    int k;
    double *C;
} spmm_job;

/* Eight doubles in one value: the accumulators must live in registers, since an array
 * indexed by a run-time k stays in memory and every non-zero then waits on a store. The
 * vector extension lowers to AVX-512, AVX2 or SSE2 in the matching clone. */
typedef double spmm_v8 __attribute__((vector_size(8 * sizeof(double))));

/* acc += v · B[p .. p + 8), the load unaligned. A macro: a function returning a vector
 * by value would change its ABI between the clones. */
#define SPMM_FMA8(acc, v, p)                                                                  \
    do {                                                                                     \
        spmm_v8 b8_;                                                                         \
        memcpy(&b8_, (p), sizeof(b8_));                                                      \
        (acc) += (v) * b8_;                                                                  \
    } while (0)

/* Non-zeros ahead of the one being summed whose rows of B are prefetched: the column
 * indices are known in advance but scattered, so the hardware prefetcher cannot guess
 * them, and a gathered row that misses L2 is the whole cost of a non-zero. */
#define SPMM_AHEAD 16

/* Asks for the cache lines of B's row i, columns [0, cw) (B already offset to the chunk). */
static inline __attribute__((always_inline)) void
spmm_prefetch(const double *B, int32_t i, int32_t b_rows, int k, int cw)
{
    const double *b = B + (int64_t)(i < b_rows ? i : 0) * k;

    for (int o = 0; o < cw; o += 8)
        __builtin_prefetch(b + o, 0, 3);
    __builtin_prefetch(b + cw - 1, 0, 3);
}

/* Columns [0, cw) of one output row from the non-zeros idx/val (n of them), B's rows being
 * k doubles apart: nv full vectors of 8, then, when cw % 8 != 0, one vector that ends at
 * column cw and overlaps the previous ones (it stays inside B's row because the caller
 * guarantees the chunk ends at column >= 8 of it), of which only the last cw % 8 lanes are
 * kept. nv and tail are constants after inlining, so the branches on them vanish. */
static inline __attribute__((always_inline)) void
spmm_chunk(const int32_t *restrict idx, const float *restrict val, int64_t n, int64_t ahead,
           const double *restrict B, int32_t b_rows, int k, int cw, int accumulate,
           double *restrict out, const int nv, const int tail)
{
    const spmm_v8 zero = { 0 };
    spmm_v8 a0 = zero, a1 = zero, a2 = zero, a3 = zero, at = zero;
    spmm_v8 e0 = zero, e1 = zero, e2 = zero, e3 = zero, et = zero;
    int r = cw - 8 * nv;
    int64_t p = 0;

    /* Two non-zeros per step into two sets of accumulators: one set would chain every add
     * on the previous one. An entry beyond b_rows meets a zero row: weight 0 on row 0. */
    for (; p + 1 < n; p += 2) {
        int32_t i0 = idx[p], i1 = idx[p + 1];
        double v = i0 < b_rows ? val[p] : 0.0, w = i1 < b_rows ? val[p + 1] : 0.0;
        const double *restrict b = B + (int64_t)(i0 < b_rows ? i0 : 0) * k;
        const double *restrict c = B + (int64_t)(i1 < b_rows ? i1 : 0) * k;
        if (p + SPMM_AHEAD + 1 < ahead) {
            spmm_prefetch(B, idx[p + SPMM_AHEAD], b_rows, k, cw);
            spmm_prefetch(B, idx[p + SPMM_AHEAD + 1], b_rows, k, cw);
        }
        if (nv > 0) {
            SPMM_FMA8(a0, v, b);
            SPMM_FMA8(e0, w, c);
        }
        if (nv > 1) {
            SPMM_FMA8(a1, v, b + 8);
            SPMM_FMA8(e1, w, c + 8);
        }
        if (nv > 2) {
            SPMM_FMA8(a2, v, b + 16);
            SPMM_FMA8(e2, w, c + 16);
        }
        if (nv > 3) {
            SPMM_FMA8(a3, v, b + 24);
            SPMM_FMA8(e3, w, c + 24);
        }
        if (tail) {
            SPMM_FMA8(at, v, b + cw - 8);
            SPMM_FMA8(et, w, c + cw - 8);
        }
    }
    if (p < n && idx[p] < b_rows) {
        const double *restrict b = B + (int64_t)idx[p] * k;
        double v = val[p];
        if (nv > 0)
            SPMM_FMA8(a0, v, b);
        if (nv > 1)
            SPMM_FMA8(a1, v, b + 8);
        if (nv > 2)
            SPMM_FMA8(a2, v, b + 16);
        if (nv > 3)
            SPMM_FMA8(a3, v, b + 24);
        if (tail)
            SPMM_FMA8(at, v, b + cw - 8);
    }
    a0 += e0;
    a1 += e1;
    a2 += e2;
    a3 += e3;
    at += et;
    /* Written lane by lane, so a tiled product adds each tile's sum to the previous ones
     * in a fixed order. */
    for (int u = 0; u < 8; u++) {
        if (nv > 0)
            out[u] = (accumulate ? out[u] : 0.0) + a0[u];
        if (nv > 1)
            out[8 + u] = (accumulate ? out[8 + u] : 0.0) + a1[u];
        if (nv > 2)
            out[16 + u] = (accumulate ? out[16 + u] : 0.0) + a2[u];
        if (nv > 3)
            out[24 + u] = (accumulate ? out[24 + u] : 0.0) + a3[u];
    }
    if (tail)
        for (int u = 8 - r; u < 8; u++)
            out[cw - 8 + u] = (accumulate ? out[cw - 8 + u] : 0.0) + at[u];
}

/* Rows narrower than 8 doubles (k < 8): a plain loop. */
static inline void spmm_narrow(const int32_t *restrict idx, const float *restrict val, int64_t n,
                               const double *restrict B, int32_t b_rows, int k,
                               int accumulate, double *restrict out)
{
    double acc[8] = { 0 };

    for (int64_t p = 0; p < n; p++) {
        if (idx[p] >= b_rows)
            continue;
        for (int j = 0; j < k; j++)
            acc[j] += val[p] * B[(int64_t)idx[p] * k + j];
    }
    for (int j = 0; j < k; j++)
        out[j] = (accumulate ? out[j] : 0.0) + acc[j];
}

/* One output row in chunks of up to 32 columns (four accumulators: eight registers even
 * with AVX2). With accumulate, the sums are added to out instead of replacing it.
 * Cloned for x86-64-v4 and v3: the build targets baseline x86-64, and wider vectors pay
 * where the CPU has them (chosen once at load time). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void spmm_row(const int32_t *restrict idx, const float *restrict val, int64_t n, int64_t ahead,
                     const double *restrict B, int32_t b_rows, int k, int accumulate,
                     double *restrict out)
{
    if (k < 8) {
        spmm_narrow(idx, val, n, B, b_rows, k, accumulate, out);
        return;
    }
    for (int c0 = 0; c0 < k; c0 += 32) {
        int cw = k - c0 < 32 ? k - c0 : 32, tail = cw % 8 != 0;
        const double *Bc = B + c0;
        double *oc = out + c0;
        switch (cw / 8 * 2 + tail) {
        case 1: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 0, 1); break;
        case 2: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 1, 0); break;
        case 3: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 1, 1); break;
        case 4: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 2, 0); break;
        case 5: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 2, 1); break;
        case 6: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 3, 0); break;
        case 7: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 3, 1); break;
        default: spmm_chunk(idx, val, n, ahead, Bc, b_rows, k, cw, accumulate, oc, 4, 0); break;
        }
    }
}

static void spmm_range(void *ctx, int part, int64_t begin, int64_t end)
{
    const spmm_job *job = ctx;
    const tf_csr *A = job->A;

    /* The prefetches run ahead into the next rows of the range. */
    int64_t last = A->row_ptr[job->row0 + end];

    for (int64_t r = begin; r < end; r++) {
        int64_t i = job->row0 + r;
        int64_t p0 = A->row_ptr[i];
        spmm_row(A->col_idx + p0, A->val + p0, A->row_ptr[i + 1] - p0, last - p0, job->B, job->b_rows,
                 job->k, 0, job->C + r * job->k);
    }
}

void spmm_rows(const tf_csr *A, int32_t row_begin, int32_t row_end, const double *B,
               int32_t b_rows, int k, double *C, int threads)
{
    int64_t n = (int64_t)row_end - row_begin;
    spmm_job job = { .A = A, .row0 = row_begin, .B = B, .b_rows = b_rows, .k = k, .C = C };

    if (n <= 0 || k <= 0)
        return;
    if (b_rows < 1) {
        memset(C, 0, sizeof(double) * (size_t)n * (size_t)k);
        return;
    }
    /* Balancing by the non-zeros of the row range: row_ptr offset by row_begin. */
    par_for(n, threads, A->row_ptr + row_begin, spmm_range, &job);
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

    /* Tiles outermost: the thread's rows all pass over one tile while it is in cache. */
    for (int t = 0; t < pl->tiles; t++)
        for (int64_t r = begin; r < end; r++) {
            const int64_t *s = pl->seg + r * stride;
            spmm_row(pl->idx + s[t], pl->val + s[t], s[t + 1] - s[t], s[t + 1] - s[t], job->B, pl->b_rows, k,
                     t > 0, job->C + r * k);
        }
}

/* Tiles of B (b_rows × k doubles) of about SPMM_TILE_BYTES each, or 1 when tiling does
 * not pay: every tile after the first re-reads and re-writes C. */
static int spmm_tile_count(const tf_csr *A, int32_t b_rows, int k)
{
    double b_bytes = (double)b_rows * k * sizeof(double);
    double c_bytes = (double)A->n_rows * k * sizeof(double);
    double tiles = ceil(b_bytes / SPMM_TILE_BYTES);

    if (tiles <= 1.0 || tiles > b_rows)
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
    pl->tiles = spmm_tile_count(A, b_rows, k);
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

int spmm_plan_tiles(const spmm_plan *plan)
{
    return plan->tiles;
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
