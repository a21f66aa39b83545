/*
 * doc_rows.h - rows of topicflow.documents as a sparse matrix (private to the model layer):
 * the refit and the refold read (term_ids, counts), the quality measure (term_ids, weights).
 * Values are parsed as reals, which integer arrays are too.
 */
#ifndef TF_MODEL_DOC_ROWS_H
#define TF_MODEL_DOC_ROWS_H

#include <libpq-fe.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"

/* Columns id_col (an integer[] of term ids) and val_col (a numeric array of the same length)
 * of every row of res into X, documents × n_cols. A term id outside [0, n_cols) or arrays of
 * different lengths are an error. X is allocated (csr_free); zeroed on failure. */
int tf_doc_rows_csr(const PGresult *res, int id_col, int val_col, int32_t n_cols, tf_csr *X,
                    tf_err *err);

#endif
