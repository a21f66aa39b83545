/*
 * csr.h - compressed sparse row matrices, the input of the topic engine.
 *
 * A tf_csr is documents × terms (or its transpose) with non-negative float values.
 * row_ptr is int64 so that a corpus may exceed 2^31 non-zeros; col_idx is int32 (term
 * ids). Column indices inside a row need not be sorted; a repeated index acts as the sum.
 */
#ifndef TF_CSR_H
#define TF_CSR_H

#include <stdint.h>

#include "base/error.h"

typedef struct tf_csr {
    int32_t n_rows;
    int32_t n_cols;
    int64_t *row_ptr; /* n_rows + 1 entries, row_ptr[0] == 0, non-decreasing */
    int32_t *col_idx; /* row_ptr[n_rows] entries, each in [0, n_cols) */
    float *val;       /* row_ptr[n_rows] entries, finite and >= 0 */
} tf_csr;

static inline int64_t csr_nnz(const tf_csr *m) { return m->row_ptr[m->n_rows]; }

/* Allocate an n_rows × n_cols matrix with room for nnz entries; row_ptr is zeroed and
 * the caller fills the arrays. Returns 0, or -1 with err set. Free with csr_free. */
int csr_alloc(tf_csr *m, int32_t n_rows, int32_t n_cols, int64_t nnz, tf_err *err);

/* Release the arrays of a matrix made by csr_alloc or csr_transpose; safe on a zeroed struct. */
void csr_free(tf_csr *m);

/* Check every structural invariant listed above (O(nnz)); -1 with the first violation. */
int csr_check(const tf_csr *m, tf_err *err);

/* out = mᵀ, column indices of out sorted within each row. out is allocated (csr_free). */
int csr_transpose(const tf_csr *m, tf_csr *out, tf_err *err);

/* Σ val², in double. */
double csr_sqnorm(const tf_csr *m);

#endif
