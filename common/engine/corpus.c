/*
 * corpus.c - documents into a weighted document-term matrix (see corpus.h).
 */
#include "engine/corpus.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tf_csr_builder_init(tf_csr_builder *b)
{
    memset(b, 0, sizeof(*b));
}

void tf_csr_builder_free(tf_csr_builder *b)
{
    csr_free(&b->m);
    memset(b, 0, sizeof(*b));
}

/* Room for one more row; row_ptr[0] exists (= 0) from the first call on. */
static int reserve_row(tf_csr_builder *b)
{
    size_t cap = b->rows_cap ? 2 * b->rows_cap : 1024;
    int64_t *p;

    if ((size_t)b->m.n_rows + 2 <= b->rows_cap)
        return 0;
    if (!(p = realloc(b->m.row_ptr, cap * sizeof(*p))))
        return -1;
    if (!b->rows_cap)
        p[0] = 0;
    b->m.row_ptr = p;
    b->rows_cap = cap;
    return 0;
}

int tf_csr_builder_add(tf_csr_builder *b, const tf_bag *bag, tf_err *err)
{
    tf_csr *m = &b->m;
    int64_t at;
    size_t nnz;
    void *p;

    if (m->n_rows == INT32_MAX - 1)
        return tf_err_set(err, "CSR: too many rows");
    if (reserve_row(b) < 0)
        goto oom;
    at = m->row_ptr[m->n_rows];
    nnz = (size_t)at + bag->n;
    if (nnz > b->nnz_cap) {
        size_t cap = b->nnz_cap ? 2 * b->nnz_cap : 16384;
        while (cap < nnz)
            cap *= 2;
        if (!(p = realloc(m->col_idx, cap * sizeof(*m->col_idx))))
            goto oom;
        m->col_idx = p;
        if (!(p = realloc(m->val, cap * sizeof(*m->val))))
            goto oom;
        m->val = p;
        b->nnz_cap = cap;
    }
    for (size_t i = 0; i < bag->n; i++) {
        m->col_idx[at + (int64_t)i] = bag->ids[i];
        m->val[at + (int64_t)i] = (float)bag->counts[i];
        if (bag->ids[i] >= m->n_cols)
            m->n_cols = bag->ids[i] + 1;
    }
    m->row_ptr[++m->n_rows] = (int64_t)nnz;
    return 0;
oom:
    return tf_err_set(err, "CSR: out of memory at row %d", m->n_rows);
}

int tf_csr_builder_finish(tf_csr_builder *b, const tf_vocab *v, tf_csr *out, tf_err *err)
{
    if (reserve_row(b) < 0) /* an empty matrix still has row_ptr[0] */
        return tf_err_set(err, "CSR: out of memory");
    tf_vocab_weight_csr(v, &b->m);
    *out = b->m;
    memset(b, 0, sizeof(*b));
    return 0;
}

int tf_vocab_build_csr(tf_vocab *v, tf_text *t, const char *const *docs, const size_t *lens,
                       size_t n_docs, tf_csr *out, tf_err *err)
{
    tf_csr_builder b;
    tf_bag bag;
    tf_tokens toks;
    int rc = -1;

    tf_bag_init(&bag);
    tf_csr_builder_init(&b);
    for (size_t d = 0; d < n_docs; d++) {
        if (tf_text_tokenize(t, docs[d], lens[d], &toks, err) < 0 ||
            tf_vocab_count(v, &toks, TF_VOCAB_GROW, &bag, err) < 0 ||
            tf_vocab_add_doc(v, bag.ids, bag.n, err) < 0 ||
            tf_csr_builder_add(&b, &bag, err) < 0) {
            tf_err_prefix(err, "document %zu", d);
            goto fail;
        }
    }
    if (tf_csr_builder_finish(&b, v, out, err) < 0)
        goto fail;
    rc = 0;
fail:
    tf_csr_builder_free(&b);
    tf_bag_free(&bag);
    return rc;
}

int32_t tf_corpus_keep_terms(const int32_t *df, int32_t n_terms, int64_t n_docs, int min_df,
                             double max_df, int32_t min_kept, uint8_t *keep)
{
    int32_t kept = 0;
    double ceiling = n_docs >= TF_CORPUS_MAX_DF_FROM ? max_df * (double)n_docs : (double)n_docs;

    for (int32_t t = 0; t < n_terms; t++) {
        keep[t] = df[t] > 0 && df[t] >= min_df && (double)df[t] <= ceiling;
        kept += keep[t];
    }
    if (kept >= min_kept)
        return kept;
    kept = 0;
    for (int32_t t = 0; t < n_terms; t++) {
        keep[t] = df[t] > 0;
        kept += keep[t];
    }
    return kept;
}

void tf_corpus_language_weights(const int32_t *df_known, const int32_t *df_second,
                                int32_t n_terms, int64_t n_known, int64_t n_second, float *out)
{
    double pi = n_known > 0 ? (double)n_second / (double)n_known : 0.0;
    double minority = pi < 0.5 ? pi : 1.0 - pi;
    double strength = minority >= TF_CORPUS_LANGUAGE_FULL ? 1.0 : minority / TF_CORPUS_LANGUAGE_FULL;

    for (int32_t t = 0; t < n_terms; t++) {
        double p, balance;
        if (strength <= 0.0 || df_known[t] <= 0) {
            out[t] = 1.0f;
            continue;
        }
        p = (double)df_second[t] / (double)df_known[t];
        balance = p / pi < (1.0 - p) / (1.0 - pi) ? p / pi : (1.0 - p) / (1.0 - pi);
        balance = balance < 0.0 ? 0.0 : balance > 1.0 ? 1.0 : balance;
        out[t] = (float)(1.0 - strength * (1.0 - balance));
    }
}

int tf_corpus_restrict(const tf_csr *X, const uint8_t *keep, int32_t *map, tf_csr *out,
                       tf_err *err)
{
    int32_t cols = 0;
    int64_t nnz = 0, o = 0;

    for (int32_t t = 0; t < X->n_cols; t++)
        map[t] = keep[t] ? cols++ : -1;
    for (int64_t i = 0; i < csr_nnz(X); i++)
        nnz += map[X->col_idx[i]] >= 0;
    if (csr_alloc(out, X->n_rows, cols, nnz, err) < 0)
        return -1;
    out->row_ptr[0] = 0;
    for (int32_t r = 0; r < X->n_rows; r++) {
        int64_t start = o;
        double norm = 0.0;
        for (int64_t i = X->row_ptr[r]; i < X->row_ptr[r + 1]; i++) {
            int32_t c = map[X->col_idx[i]];
            if (c < 0)
                continue;
            out->col_idx[o] = c;
            out->val[o] = X->val[i];
            norm += (double)X->val[i] * X->val[i];
            o++;
        }
        if (norm > 0.0) {
            double inv = 1.0 / sqrt(norm);
            for (int64_t i = start; i < o; i++)
                out->val[i] = (float)(out->val[i] * inv);
        }
        out->row_ptr[r + 1] = o;
    }
    return 0;
}
