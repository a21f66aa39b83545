/*
 * csr.c - allocation, validation and transposition of tf_csr matrices.
 * csr_check is what every engine entry point runs on data it did not build itself, so
 * that a malformed matrix is an error message, never an out-of-bounds read.
 */
#include "engine/csr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int csr_alloc(tf_csr *m, int32_t n_rows, int32_t n_cols, int64_t nnz, tf_err *err)
{
    memset(m, 0, sizeof(*m));
    if (n_rows < 0 || n_cols < 0 || nnz < 0)
        return tf_err_set(err, "csr: negative dimension (%d x %d, nnz %lld)", n_rows, n_cols,
                          (long long)nnz);
    m->n_rows = n_rows;
    m->n_cols = n_cols;
    m->row_ptr = calloc((size_t)n_rows + 1, sizeof(*m->row_ptr));
    m->col_idx = malloc((size_t)(nnz ? nnz : 1) * sizeof(*m->col_idx));
    m->val = malloc((size_t)(nnz ? nnz : 1) * sizeof(*m->val));
    if (!m->row_ptr || !m->col_idx || !m->val) {
        csr_free(m);
        return tf_err_set(err, "csr: out of memory for %d rows, %lld non-zeros", n_rows,
                          (long long)nnz);
    }
    return 0;
}

void csr_free(tf_csr *m)
{
    free(m->row_ptr);
    free(m->col_idx);
    free(m->val);
    memset(m, 0, sizeof(*m));
}

int csr_check(const tf_csr *m, tf_err *err)
{
    if (!m || m->n_rows < 0 || m->n_cols < 0 || !m->row_ptr)
        return tf_err_set(err, "csr: missing matrix or negative dimension");
    if (m->row_ptr[0] != 0)
        return tf_err_set(err, "csr: row_ptr[0] is %lld, not 0", (long long)m->row_ptr[0]);
    for (int32_t i = 0; i < m->n_rows; i++)
        if (m->row_ptr[i + 1] < m->row_ptr[i])
            return tf_err_set(err, "csr: row_ptr decreases at row %d", i);
    if (csr_nnz(m) > 0 && (!m->col_idx || !m->val))
        return tf_err_set(err, "csr: non-zeros without index or value arrays");
    for (int64_t p = 0; p < csr_nnz(m); p++) {
        if (m->col_idx[p] < 0 || m->col_idx[p] >= m->n_cols)
            return tf_err_set(err, "csr: column %d out of range [0, %d) at entry %lld",
                              m->col_idx[p], m->n_cols, (long long)p);
        if (!isfinite(m->val[p]) || m->val[p] < 0.0f)
            return tf_err_set(err, "csr: value %g at entry %lld is negative or not finite",
                              (double)m->val[p], (long long)p);
    }
    return 0;
}

int csr_transpose(const tf_csr *m, tf_csr *out, tf_err *err)
{
    int64_t nnz = csr_nnz(m);
    int64_t *next = NULL;

    if (csr_alloc(out, m->n_cols, m->n_rows, nnz, err) < 0)
        return -1;
    next = malloc(((size_t)m->n_cols + 1) * sizeof(*next));
    if (!next) {
        csr_free(out);
        return tf_err_set(err, "csr: out of memory transposing %d columns", m->n_cols);
    }
    for (int64_t p = 0; p < nnz; p++)
        out->row_ptr[m->col_idx[p] + 1]++;
    for (int32_t j = 0; j < m->n_cols; j++)
        out->row_ptr[j + 1] += out->row_ptr[j];
    memcpy(next, out->row_ptr, ((size_t)m->n_cols + 1) * sizeof(*next));
    /* Visiting source rows in order leaves each output row sorted by column. */
    for (int32_t i = 0; i < m->n_rows; i++)
        for (int64_t p = m->row_ptr[i]; p < m->row_ptr[i + 1]; p++) {
            int64_t q = next[m->col_idx[p]]++;
            out->col_idx[q] = i;
            out->val[q] = m->val[p];
        }
    free(next);
    return 0;
}

double csr_sqnorm(const tf_csr *m)
{
    double s = 0.0;

    for (int64_t p = 0; p < csr_nnz(m); p++)
        s += (double)m->val[p] * m->val[p];
    return s;
}
