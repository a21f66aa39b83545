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

/* min(p / pi, (1 - p) / (1 - pi)) in [0, 1], for 0 < pi < 1. */
static double balance_of(double p, double pi)
{
    double b = p / pi < (1.0 - p) / (1.0 - pi) ? p / pi : (1.0 - p) / (1.0 - pi);

    return b < 0.0 ? 0.0 : b > 1.0 ? 1.0 : b;
}

int tf_corpus_language_weights(const tf_csr *X, const int8_t *arabic, float *out,
                               double *strength, tf_err *err)
{
    int32_t n = X->n_cols;
    int32_t *df = calloc((size_t)n + 1, sizeof(*df));
    int32_t *known = calloc((size_t)n + 1, sizeof(*known));
    int32_t *second = calloc((size_t)n + 1, sizeof(*second));
    int64_t n_known = 0, n_second = 0, n_minority = 0;
    double pi, minority, s = 0.0, shared = 0.0;
    int minority_lang;

    if (!df || !known || !second) {
        free(df);
        free(known);
        free(second);
        return tf_err_set(err, "out of memory");
    }
    for (int32_t r = 0; r < X->n_rows; r++) {
        for (int64_t i = X->row_ptr[r]; i < X->row_ptr[r + 1]; i++) {
            df[X->col_idx[i]]++;
            known[X->col_idx[i]] += arabic[r] >= 0;
            second[X->col_idx[i]] += arabic[r] == 1;
        }
        n_known += arabic[r] >= 0;
        n_second += arabic[r] == 1;
    }
    pi = n_known > 0 ? (double)n_second / (double)n_known : 0.0;
    minority = pi < 0.5 ? pi : 1.0 - pi;
    minority_lang = pi < 0.5 ? 1 : 0;
    if (minority > 0.0) {
        /* how much of the smaller language's text lies on shared, non-universal terms */
        double n1 = 1.0 + (double)X->n_rows;
        for (int32_t r = 0; r < X->n_rows; r++) {
            double all = 0.0, on_shared = 0.0;
            if (arabic[r] != minority_lang)
                continue;
            for (int64_t i = X->row_ptr[r]; i < X->row_ptr[r + 1]; i++) {
                int32_t t = X->col_idx[i];
                double c = X->val[i], idf = log(n1 / (1.0 + df[t])) + 1.0;
                double w = c > 0 ? (1.0 + log(c)) * idf : 0.0;
                all += w * w;
                if (2 * (int64_t)df[t] <= X->n_rows &&
                    balance_of((double)second[t] / (double)known[t], pi) >= 0.5)
                    on_shared += w * w;
            }
            if (all > 0.0) {
                shared += on_shared / all;
                n_minority++;
            }
        }
        shared = n_minority ? shared / (double)n_minority : 0.0;
        s = (minority >= TF_CORPUS_LANGUAGE_FULL ? 1.0 : minority / TF_CORPUS_LANGUAGE_FULL) *
            (shared >= TF_CORPUS_LANGUAGE_SHARED ? 1.0 : shared / TF_CORPUS_LANGUAGE_SHARED);
    }
    for (int32_t t = 0; t < n; t++)
        out[t] = s > 0.0 && known[t] > 0
                     ? (float)(1.0 - s * (1.0 - balance_of((double)second[t] / (double)known[t], pi)))
                     : 1.0f;
    if (strength)
        *strength = s;
    free(df);
    free(known);
    free(second);
    return 0;
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
