/*
 * doc_rows.c - rows of topicflow.documents as a sparse matrix (doc_rows.h).
 */
#include "doc_rows.h"

#include <stdlib.h>
#include <string.h>

#include "pg/pg.h"

int tf_doc_rows_csr(const PGresult *res, int id_col, int val_col, int32_t n_cols, tf_csr *X,
                    tf_err *err)
{
    int rows = PQntuples(res);
    int64_t nnz = 0;
    int32_t **ids = calloc((size_t)rows + 1, sizeof(*ids));
    float **vals = calloc((size_t)rows + 1, sizeof(*vals));
    size_t *lens = calloc((size_t)rows + 1, sizeof(*lens));
    int rc = -1;

    memset(X, 0, sizeof(*X));
    if (!ids || !vals || !lens) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (int r = 0; r < rows; r++) {
        size_t nv;
        if (tf_pg_parse_int_array(PQgetvalue(res, r, id_col), &ids[r], &lens[r], err) < 0 ||
            tf_pg_parse_float_array(PQgetvalue(res, r, val_col), &vals[r], &nv, err) < 0)
            goto done;
        if (nv != lens[r]) {
            tf_err_set(err, "document row %d has %zu term ids but %zu values", r, lens[r], nv);
            goto done;
        }
        nnz += (int64_t)lens[r];
    }
    if (csr_alloc(X, rows, n_cols, nnz, err) < 0)
        goto done;
    nnz = 0;
    for (int r = 0; r < rows; r++) {
        for (size_t i = 0; i < lens[r]; i++) {
            if (ids[r][i] < 0 || ids[r][i] >= n_cols) {
                tf_err_set(err, "document row %d has term id %d beyond the vocabulary", r,
                           ids[r][i]);
                goto done;
            }
            X->col_idx[nnz] = ids[r][i];
            X->val[nnz] = vals[r][i];
            nnz++;
        }
        X->row_ptr[r + 1] = nnz;
    }
    rc = 0;
done:
    for (int r = 0; ids && vals && r < rows; r++) {
        free(ids[r]);
        free(vals[r]);
    }
    free(ids);
    free(vals);
    free(lens);
    if (rc < 0)
        csr_free(X);
    return rc;
}
