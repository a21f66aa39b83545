/*
 * spmm.h - the engine's sparse × dense product, C = A · B.
 *
 * A is a tf_csr (rows × cols), B a dense row-major matrix of b_rows × k doubles, C a
 * dense row-major rows × k. Columns of A at or beyond b_rows meet an all-zero row of B
 * (terms that the model does not know yet contribute nothing). Rows of C are split
 * between threads by non-zero count; each row is summed by one thread in index order,
 * so C is bit-identical for any thread count.
 */
#ifndef TF_SPMM_H
#define TF_SPMM_H

#include <stdint.h>

#include "csr.h"

/* C = A·B. C must not overlap B. threads <= 1 runs on the caller. Pure: no allocation. */
void spmm(const tf_csr *A, const double *B, int32_t b_rows, int k, double *C, int threads);

/* Same product for rows [row_begin, row_end) of A only, into C (row_end - row_begin) × k. */
void spmm_rows(const tf_csr *A, int32_t row_begin, int32_t row_end, const double *B,
               int32_t b_rows, int k, double *C, int threads);

#endif
