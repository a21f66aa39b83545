/*
 * spmm.h - the engine's sparse × dense product, C = A · B.
 *
 * A is a tf_csr (rows × cols), B a dense row-major matrix of b_rows × k doubles, C a
 * dense row-major rows × k. Columns of A at or beyond b_rows meet an all-zero row of B
 * (terms that the model does not know yet contribute nothing). Rows of C are split
 * between threads by non-zero count; each row is summed by one thread in index order,
 * so C is bit-identical for any thread count.
 *
 * A plan serves repeated products with one A (the iterations of a batch fit): it cuts
 * B's rows into tiles that fit in the last-level cache and regroups each row of A by tile, so a pass over one
 * tile gathers from cache instead of memory. A planned product sums each row tile by tile
 * (in column order within a tile when A's rows are sorted), so it is also bit-identical for
 * any thread count, though not always to spmm's order.
 */
#ifndef TF_SPMM_H
#define TF_SPMM_H

#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"

/* C = A·B. C must not overlap B. threads <= 1 runs on the caller. Pure: no allocation. */
void spmm(const tf_csr *A, const double *B, int32_t b_rows, int k, double *C, int threads);

/* Same product for rows [row_begin, row_end) of A only, into C (row_end - row_begin) × k. */
void spmm_rows(const tf_csr *A, int32_t row_begin, int32_t row_end, const double *B,
               int32_t b_rows, int k, double *C, int threads);

/* A tiled copy of A's structure for products with a B of b_rows × k. Tiles are used only
 * when B exceeds the cache budget and the extra passes over C cost less than the cache
 * misses they save (small k); otherwise the plan runs spmm on A itself. The plan keeps a
 * pointer to A (which must outlive it) and copies its entries when it tiles. Returns
 * NULL with err set when out of memory. */
typedef struct spmm_plan spmm_plan;

spmm_plan *spmm_plan_new(const tf_csr *A, int32_t b_rows, int k, tf_err *err);
void spmm_plan_free(spmm_plan *plan);

/* How many tiles the plan cut B into (1: untiled). */
int spmm_plan_tiles(const spmm_plan *plan);

/* C = A·B with the B shape of spmm_plan_new; same contract as spmm. */
void spmm_plan_run(const spmm_plan *plan, const double *B, double *C, int threads);

#endif
