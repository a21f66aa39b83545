/*
 * test_nmf.c - the NMF engine on synthetic corpora with planted topics (fixed seeds,
 * small enough for ASan): recovery, monotone objective, KKT of fold-in, exact
 * retraction, online-vs-batch quality, and errors instead of crashes on bad input; the
 * fast kernels of the batch fit (lane-parallel coordinate descent, tiled sparse products)
 * against their simple references.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nmf_kernel.h"
#include "base/rng.h"
#include "engine/csr.h"
#include "engine/nmf.h"
#include "engine/spmm.h"
#include "engine/topic_match.h"

#define PLANT_K 5
#define PLANT_TERMS 200
#define PLANT_BLOCK 40 /* terms owned by each planted topic */

typedef struct corpus {
    tf_csr X;
    double W_true[PLANT_TERMS * PLANT_K];
} corpus;

/* docs documents, each a mix of one or two planted topics plus a little noise on random
 * terms, rows L2-normalised like the real pipeline's vectors. */
static void corpus_make(corpus *c, int docs, uint64_t seed)
{
    uint64_t rng = seed;
    double dense[PLANT_TERMS];
    int64_t nnz = 0;

    memset(c->W_true, 0, sizeof(c->W_true));
    for (int j = 0; j < PLANT_K; j++)
        for (int t = j * PLANT_BLOCK; t < (j + 1) * PLANT_BLOCK; t++)
            c->W_true[t * PLANT_K + j] = 0.2 + tf_rng_unit(&rng);
    assert_int_equal(csr_alloc(&c->X, docs, PLANT_TERMS, (int64_t)docs * PLANT_TERMS, NULL), 0);
    for (int d = 0; d < docs; d++) {
        double h[PLANT_K] = { 0 }, norm = 0.0;
        h[tf_rng_next(&rng) % PLANT_K] = 0.5 + tf_rng_unit(&rng);
        if (tf_rng_unit(&rng) < 0.5)
            h[tf_rng_next(&rng) % PLANT_K] += 0.5 * tf_rng_unit(&rng);
        for (int t = 0; t < PLANT_TERMS; t++) {
            dense[t] = 0.0;
            for (int j = 0; j < PLANT_K; j++)
                dense[t] += c->W_true[t * PLANT_K + j] * h[j];
            /* Sparse documents: each drawn term of the active topics appears with p = 0.5. */
            if (tf_rng_unit(&rng) < 0.5)
                dense[t] = 0.0;
        }
        for (int n = 0; n < 3; n++)
            dense[tf_rng_next(&rng) % PLANT_TERMS] += 0.05;
        for (int t = 0; t < PLANT_TERMS; t++)
            norm += dense[t] * dense[t];
        norm = norm > 0 ? sqrt(norm) : 1.0;
        for (int t = 0; t < PLANT_TERMS; t++)
            if (dense[t] > 0.0) {
                c->X.col_idx[nnz] = t;
                c->X.val[nnz++] = (float)(dense[t] / norm);
            }
        c->X.row_ptr[d + 1] = nnz;
    }
}

/* A view of rows [r0, r1) of X sharing its arrays (row_ptr rebased into a copy). */
static tf_csr csr_rows_view(const tf_csr *X, int32_t r0, int32_t r1, int64_t *row_ptr)
{
    tf_csr v = { .n_rows = r1 - r0, .n_cols = X->n_cols, .row_ptr = row_ptr,
                 .col_idx = X->col_idx + X->row_ptr[r0], .val = X->val + X->row_ptr[r0] };
    for (int32_t i = r0; i <= r1; i++)
        row_ptr[i - r0] = X->row_ptr[i] - X->row_ptr[r0];
    return v;
}

static double dense_error(const tf_csr *X, const double *W, const double *H, int k)
{
    double e = 0.0;
    double *row = malloc(sizeof(double) * X->n_cols);

    for (int32_t d = 0; d < X->n_rows; d++) {
        for (int32_t t = 0; t < X->n_cols; t++) {
            row[t] = 0.0;
            for (int j = 0; j < k; j++)
                row[t] -= H[(size_t)d * k + j] * W[(size_t)t * k + j];
        }
        for (int64_t p = X->row_ptr[d]; p < X->row_ptr[d + 1]; p++)
            row[X->col_idx[p]] += X->val[p];
        for (int32_t t = 0; t < X->n_cols; t++)
            e += row[t] * row[t];
    }
    free(row);
    return sqrt(e);
}

typedef struct trace {
    double err[512];
    int n;
} trace;

static int record_progress(void *ctx, int iter, int max_iter, double error)
{
    trace *t = ctx;
    if (t->n < 512)
        t->err[t->n++] = error;
    return 0;
}

static void fit_ordered(const tf_csr *X, int k, int iters, int threads, int order, double *W,
                        double *H, trace *tr, nmf_batch_result *res)
{
    nmf_batch_opts o = nmf_batch_defaults(k);
    tf_err err = { 0 };

    o.order = order;

    o.max_iter = iters;
    o.tol = 0.0;
    o.seed = 42;
    o.threads = threads;
    o.progress = tr ? record_progress : NULL;
    o.progress_ctx = tr;
    assert_int_equal(nmf_batch_fit(X, &o, W, H, res, &err), 0);
}

static void fit(const tf_csr *X, int k, int iters, int threads, double *W, double *H, trace *tr,
                nmf_batch_result *res)
{
    fit_ordered(X, k, iters, threads, NMF_ORDER_AUTO, W, H, tr, res);
}

static void test_batch_recovers_planted_topics(void **state)
{
    corpus c;
    double *W = malloc(sizeof(double) * PLANT_TERMS * PLANT_K);
    double *H = malloc(sizeof(double) * 600 * PLANT_K);
    int map[PLANT_K];
    double sim[PLANT_K];

    corpus_make(&c, 600, 7);
    fit(&c.X, PLANT_K, 100, 2, W, H, NULL, NULL);
    assert_int_equal(topic_match(c.W_true, PLANT_TERMS, PLANT_K, W, PLANT_TERMS, PLANT_K, map, sim,
                                 NULL), 0);
    for (int j = 0; j < PLANT_K; j++) {
        assert_true(map[j] >= 0);
        assert_true(sim[j] >= 0.9);
    }
    free(W);
    free(H);
    csr_free(&c.X);
}

static void test_batch_error_never_increases(void **state)
{
    corpus c;
    trace tr = { .n = 0 };
    double *W = malloc(sizeof(double) * PLANT_TERMS * 8);
    double *H = malloc(sizeof(double) * 300 * 8);

    corpus_make(&c, 300, 11);
    /* k above the planted rank leaves slack, where a careless update would wander. */
    fit(&c.X, 8, 150, 2, W, H, &tr, NULL);
    assert_int_equal(tr.n, 151);
    for (int i = 1; i < tr.n; i++)
        assert_true(tr.err[i] <= tr.err[i - 1] * (1.0 + 1e-12));
    assert_true(tr.err[tr.n - 1] < tr.err[0]);
    free(W);
    free(H);
    csr_free(&c.X);
}

/* Documents first: H is solved before W, the error's cross term comes from the W half and
 * H's share of W's normalisation waits for the next H half, so the fit must apply it at
 * the end for the returned factors to have the reported error. */
static void test_batch_documents_first_descends_and_reports_exact_error(void **state)
{
    corpus c;
    trace tr = { .n = 0 };
    nmf_batch_result res;
    double *W = malloc(sizeof(double) * PLANT_TERMS * 8);
    double *H = malloc(sizeof(double) * 300 * 8);

    (void)state;
    corpus_make(&c, 300, 11);
    fit_ordered(&c.X, 8, 150, 2, NMF_ORDER_DOCS_FIRST, W, H, &tr, &res);
    assert_int_equal(res.docs_first, 1);
    assert_int_equal(tr.n, 151);
    for (int i = 1; i < tr.n; i++)
        assert_true(tr.err[i] <= tr.err[i - 1] * (1.0 + 1e-12));
    assert_true(tr.err[tr.n - 1] < tr.err[0]);
    assert_true(fabs(res.error - dense_error(&c.X, W, H, 8)) < 1e-9);
    /* And a short fit, whose last normalisation is far from neutral. */
    fit_ordered(&c.X, 8, 3, 1, NMF_ORDER_DOCS_FIRST, W, H, NULL, &res);
    assert_true(fabs(res.error - dense_error(&c.X, W, H, 8)) < 1e-9);
    free(W);
    free(H);
    csr_free(&c.X);
}

/* AUTO goes documents first exactly when k exceeds twice the mean document length. */
static void test_batch_order_auto_follows_document_length(void **state)
{
    corpus c;
    nmf_batch_result res;
    int big;
    double mean;
    double *W = malloc(sizeof(double) * PLANT_TERMS * PLANT_TERMS);
    double *H = malloc(sizeof(double) * 300 * PLANT_TERMS);

    (void)state;
    corpus_make(&c, 300, 12);
    mean = (double)csr_nnz(&c.X) / c.X.n_rows;
    big = (int)(2.0 * mean) + 1;
    assert_true(big < PLANT_TERMS);
    fit_ordered(&c.X, 4, 2, 1, NMF_ORDER_AUTO, W, H, NULL, &res);
    assert_int_equal(res.docs_first, 0);
    fit_ordered(&c.X, big - 1, 2, 1, NMF_ORDER_AUTO, W, H, NULL, &res);
    assert_int_equal(res.docs_first, 0);
    fit_ordered(&c.X, big, 2, 1, NMF_ORDER_AUTO, W, H, NULL, &res);
    assert_int_equal(res.docs_first, 1);
    assert_true(fabs(res.error - dense_error(&c.X, W, H, big)) < 1e-9);
    fit_ordered(&c.X, big, 2, 1, NMF_ORDER_TOPICS_FIRST, W, H, NULL, &res);
    assert_int_equal(res.docs_first, 0);
    free(W);
    free(H);
    csr_free(&c.X);
}

static void test_batch_reported_error_is_exact(void **state)
{
    corpus c;
    nmf_batch_result res;
    double *W = malloc(sizeof(double) * PLANT_TERMS * 6);
    double *H = malloc(sizeof(double) * 200 * 6);
    double e = 0.0;

    corpus_make(&c, 200, 3);
    fit(&c.X, 6, 30, 1, W, H, NULL, &res);
    assert_int_equal(res.iterations, 30);
    assert_true(fabs(res.error - dense_error(&c.X, W, H, 6)) < 1e-9);
    assert_int_equal(nmf_error(&c.X, W, PLANT_TERMS, H, 6, 2, &e, NULL), 0);
    assert_true(fabs(e - res.error) < 1e-9);
    assert_true(fabs(res.x_norm - sqrt(csr_sqnorm(&c.X))) < 1e-12);
    free(W);
    free(H);
    csr_free(&c.X);
}

/* k = 40 takes the path where the Gram matrices come from dsyrk, not from the descent. */
static void test_batch_reported_error_is_exact_for_large_k(void **state)
{
    enum { K = 40 };
    corpus c;
    nmf_batch_result res;
    double *W = malloc(sizeof(double) * PLANT_TERMS * K);
    double *H = malloc(sizeof(double) * 200 * K);

    (void)state;
    corpus_make(&c, 200, 4);
    fit(&c.X, K, 10, 2, W, H, NULL, &res);
    assert_int_equal(res.iterations, 10);
    assert_true(res.error <= res.init_error);
    assert_true(fabs(res.error - dense_error(&c.X, W, H, K)) < 1e-9);
    free(W);
    free(H);
    csr_free(&c.X);
}

static void test_batch_normalizes_topic_columns(void **state)
{
    corpus c;
    double *W = malloc(sizeof(double) * PLANT_TERMS * PLANT_K);
    double *H = malloc(sizeof(double) * 200 * PLANT_K);

    corpus_make(&c, 200, 5);
    fit(&c.X, PLANT_K, 20, 1, W, H, NULL, NULL);
    for (int j = 0; j < PLANT_K; j++) {
        double n = 0.0;
        for (int t = 0; t < PLANT_TERMS; t++) {
            assert_true(W[t * PLANT_K + j] >= 0.0);
            n += W[t * PLANT_K + j] * W[t * PLANT_K + j];
        }
        assert_true(fabs(sqrt(n) - 1.0) < 1e-12);
    }
    free(W);
    free(H);
    csr_free(&c.X);
}

/* Two fits of one corpus with the same seed, on threads_a and threads_b threads, give
 * bit-identical W and H. */
static void assert_fits_identical(int threads_a, int threads_b)
{
    corpus c;
    size_t wn = PLANT_TERMS * PLANT_K, hn = 250 * PLANT_K;
    double *W1 = malloc(sizeof(double) * wn), *H1 = malloc(sizeof(double) * hn);
    double *W2 = malloc(sizeof(double) * wn), *H2 = malloc(sizeof(double) * hn);

    corpus_make(&c, 250, 9);
    fit(&c.X, PLANT_K, 15, threads_a, W1, H1, NULL, NULL);
    fit(&c.X, PLANT_K, 15, threads_b, W2, H2, NULL, NULL);
    assert_memory_equal(W1, W2, sizeof(double) * wn);
    assert_memory_equal(H1, H2, sizeof(double) * hn);
    free(W1);
    free(H1);
    free(W2);
    free(H2);
    csr_free(&c.X);
}

static void test_batch_is_deterministic_for_seed_and_threads(void **state)
{
    assert_fits_identical(2, 2);
}

static void test_batch_result_does_not_depend_on_thread_count(void **state)
{
    /* The parts of a half-iteration and their partial sums are fixed; only which thread
     * runs which part changes. */
    assert_fits_identical(1, 3);
}

static void test_batch_rejects_k_larger_than_terms(void **state)
{
    corpus c;
    nmf_batch_opts o = nmf_batch_defaults(PLANT_TERMS + 1);
    double *W = malloc(sizeof(double) * PLANT_TERMS * (PLANT_TERMS + 1));
    double *H = malloc(sizeof(double) * 300 * (PLANT_TERMS + 1));
    tf_err err = { 0 };

    corpus_make(&c, 300, 1);
    assert_int_equal(nmf_batch_fit(&c.X, &o, W, H, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "exceeds"));
    o.k = 0;
    assert_int_equal(nmf_batch_fit(&c.X, &o, W, H, NULL, &err), -1);
    free(W);
    free(H);
    csr_free(&c.X);
}

static void test_batch_rejects_empty_and_malformed_matrices(void **state)
{
    int64_t rp[3] = { 0, 0, 0 };
    int32_t ci[1] = { 0 };
    float v[1] = { 1.0f };
    tf_csr empty = { .n_rows = 2, .n_cols = 4, .row_ptr = rp, .col_idx = ci, .val = v };
    nmf_batch_opts o = nmf_batch_defaults(1);
    double W[8], H[4];
    tf_err err = { 0 };

    assert_int_equal(nmf_batch_fit(&empty, &o, W, H, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "empty"));
    rp[1] = 1;
    rp[2] = 1;
    ci[0] = 9; /* column out of range */
    assert_int_equal(nmf_batch_fit(&empty, &o, W, H, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    ci[0] = 1;
    v[0] = -1.0f;
    assert_int_equal(nmf_batch_fit(&empty, &o, W, H, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "negative"));
}

/* Fitted model shared by the fold-in tests. */
typedef struct model {
    corpus c;
    double W[PLANT_TERMS * PLANT_K];
    double G[PLANT_K * PLANT_K];
} model;

static int model_setup(void **state)
{
    model *m = calloc(1, sizeof(*m));
    double *H = malloc(sizeof(double) * 400 * PLANT_K);

    corpus_make(&m->c, 400, 21);
    fit(&m->c.X, PLANT_K, 50, 1, m->W, H, NULL, NULL);
    free(H);
    assert_int_equal(nmf_gram(m->W, PLANT_TERMS, PLANT_K, m->G, NULL), 0);
    *state = m;
    return 0;
}

static int model_teardown(void **state)
{
    model *m = *state;
    csr_free(&m->c.X);
    free(m);
    return 0;
}

static void test_fold_in_satisfies_kkt(void **state)
{
    model *m = *state;
    int32_t n = m->c.X.n_rows;
    double *H = malloc(sizeof(double) * n * PLANT_K);
    nmf_fold_opts o = nmf_fold_defaults();
    nmf_fold_info info;

    o.tol = 1e-8;
    o.max_sweeps = 1000;
    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &m->c.X, &o, H, &info, NULL), 0);
    assert_int_equal(info.capped, 0);
    for (int32_t d = 0; d < n; d++) {
        /* gradient Wᵀ(W h − x) from scratch, independent of the solver's bookkeeping */
        double grad[PLANT_K] = { 0 }, pmax = 0.0;
        const double *h = H + (size_t)d * PLANT_K;
        for (int t = 0; t < PLANT_TERMS; t++) {
            double wh = 0.0;
            for (int j = 0; j < PLANT_K; j++)
                wh += m->W[t * PLANT_K + j] * h[j];
            for (int j = 0; j < PLANT_K; j++)
                grad[j] += m->W[t * PLANT_K + j] * wh;
        }
        for (int64_t p = m->c.X.row_ptr[d]; p < m->c.X.row_ptr[d + 1]; p++)
            for (int j = 0; j < PLANT_K; j++) {
                double xw = m->c.X.val[p] * m->W[m->c.X.col_idx[p] * PLANT_K + j];
                grad[j] -= xw;
            }
        for (int j = 0; j < PLANT_K; j++) {
            double p = 0.0;
            for (int64_t q = m->c.X.row_ptr[d]; q < m->c.X.row_ptr[d + 1]; q++)
                p += m->c.X.val[q] * m->W[m->c.X.col_idx[q] * PLANT_K + j];
            pmax = fmax(pmax, p);
        }
        for (int j = 0; j < PLANT_K; j++) {
            assert_true(h[j] >= 0.0);
            assert_true(grad[j] >= -1e-6 * pmax);               /* dual feasibility */
            assert_true(fabs(h[j] * grad[j]) <= 1e-6 * pmax);    /* complementarity */
        }
    }
    free(H);
}

static void test_fold_in_gives_zero_mixture_to_empty_document(void **state)
{
    model *m = *state;
    int64_t rp[3] = { 0, 0, 1 };
    int32_t ci[1] = { PLANT_TERMS + 5 }; /* a term the model does not know yet */
    float v[1] = { 1.0f };
    tf_csr X = { .n_rows = 2, .n_cols = PLANT_TERMS + 10, .row_ptr = rp, .col_idx = ci, .val = v };
    double H[2 * PLANT_K];

    memset(H, 0xff, sizeof(H));
    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &X, NULL, H, NULL, NULL), 0);
    for (int j = 0; j < 2 * PLANT_K; j++)
        assert_true(H[j] == 0.0);
}

static void test_fold_in_rejects_empty_batch_and_bad_k(void **state)
{
    model *m = *state;
    int64_t rp[1] = { 0 };
    tf_csr X = { .n_rows = 0, .n_cols = PLANT_TERMS, .row_ptr = rp };
    double H[PLANT_K];
    tf_err err = { 0 };

    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &X, NULL, H, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "empty batch"));
    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, 0, m->G, &m->c.X, NULL, H, NULL, &err), -1);
    assert_int_equal(nmf_gram(m->W, 0, PLANT_K, m->G + 0, &err), -1);
}

static void assert_close(const double *a, const double *b, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(a[i] - b[i]) <= tol);
}

static void test_retract_after_add_restores_statistics(void **state)
{
    model *m = *state;
    int32_t n = m->c.X.n_rows;
    double *H = malloc(sizeof(double) * n * PLANT_K);
    double A0[PLANT_K * PLANT_K], *B0 = malloc(sizeof(double) * PLANT_TERMS * PLANT_K);
    int64_t rp[2];
    tf_csr one = csr_rows_view(&m->c.X, 17, 18, rp);
    nmf_stats *s = nmf_stats_new(PLANT_K, PLANT_TERMS, NULL);
    nmf_delta *d = nmf_delta_new(PLANT_K, NULL);

    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &m->c.X, NULL, H, NULL, NULL), 0);
    /* A large base, then one document in and out: the base must come back to 1e-9. */
    for (int rep = 0; rep < 20; rep++)
        assert_int_equal(nmf_stats_add(s, &m->c.X, H, 1.0, NULL), 0);
    memcpy(A0, nmf_stats_A(s), sizeof(A0));
    memcpy(B0, nmf_stats_B(s), sizeof(double) * PLANT_TERMS * PLANT_K);
    assert_int_equal(nmf_stats_add(s, &one, H + 17 * PLANT_K, 1.0, NULL), 0);
    {
        double moved = 0.0;
        for (int i = 0; i < PLANT_K * PLANT_K; i++)
            moved += fabs(nmf_stats_A(s)[i] - A0[i]);
        assert_true(moved > 1e-3); /* the document really was added */
    }
    assert_int_equal(nmf_stats_add(s, &one, H + 17 * PLANT_K, -1.0, NULL), 0);
    assert_close(nmf_stats_A(s), A0, PLANT_K * PLANT_K, 1e-9);
    assert_close(nmf_stats_B(s), B0, PLANT_TERMS * PLANT_K, 1e-9);

    /* Same through a delta: add then retract nets to (numerically) nothing. */
    assert_int_equal(nmf_delta_add(d, &one, H + 17 * PLANT_K, 1.0, NULL), 0);
    assert_int_equal(nmf_delta_add(d, &one, H + 17 * PLANT_K, -1.0, NULL), 0);
    assert_int_equal(nmf_stats_apply(s, d, NULL), 0);
    assert_close(nmf_stats_A(s), A0, PLANT_K * PLANT_K, 1e-9);
    assert_close(nmf_stats_B(s), B0, PLANT_TERMS * PLANT_K, 1e-9);
    nmf_delta_free(d);
    nmf_stats_free(s);
    free(B0);
    free(H);
}

static void test_delta_applied_equals_direct_add(void **state)
{
    model *m = *state;
    int32_t n = m->c.X.n_rows;
    double *H = malloc(sizeof(double) * n * PLANT_K);
    nmf_stats *direct = nmf_stats_new(PLANT_K, 0, NULL), *via = nmf_stats_new(PLANT_K, 0, NULL);
    nmf_delta *d = nmf_delta_new(PLANT_K, NULL);
    int64_t rp[51];
    tf_csr part = csr_rows_view(&m->c.X, 100, 150, rp);

    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &m->c.X, NULL, H, NULL, NULL), 0);
    assert_int_equal(nmf_stats_add(direct, &part, H + 100 * PLANT_K, 1.0, NULL), 0);
    assert_int_equal(nmf_delta_add(d, &part, H + 100 * PLANT_K, 1.0, NULL), 0);
    assert_true(nmf_delta_n_rows(d) > 0 && nmf_delta_n_rows(d) <= PLANT_TERMS);
    assert_int_equal(nmf_stats_apply(via, d, NULL), 0);
    /* B grew from 0 terms to the highest term touched */
    assert_true(nmf_stats_n_terms(via) <= nmf_stats_n_terms(direct));
    assert_close(nmf_stats_A(via), nmf_stats_A(direct), PLANT_K * PLANT_K, 1e-12);
    assert_close(nmf_stats_B(via), nmf_stats_B(direct), (size_t)nmf_stats_n_terms(via) * PLANT_K, 1e-12);
    nmf_delta_free(d);
    nmf_stats_free(direct);
    nmf_stats_free(via);
    free(H);
}

static void test_stats_grow_appends_zero_rows(void **state)
{
    nmf_stats *s = nmf_stats_new(3, 2, NULL);
    double *B;

    nmf_stats_B_mut(s)[0] = 5.0;
    assert_int_equal(nmf_stats_grow(s, 5000, NULL), 0);
    assert_int_equal(nmf_stats_n_terms(s), 5000);
    B = nmf_stats_B_mut(s);
    assert_true(B[0] == 5.0);
    for (int i = 3; i < 5000 * 3; i++)
        assert_true(B[i] == 0.0);
    assert_int_equal(nmf_stats_grow(s, 10, NULL), 0); /* never shrinks */
    assert_int_equal(nmf_stats_n_terms(s), 5000);
    nmf_stats_free(s);
    assert_null(nmf_stats_new(0, 10, NULL));
}

/* ½tr(W A Wᵀ) − tr(Bᵀ W): what nmf_refresh minimises. */
static double surrogate(const double *W, const nmf_stats *s, int32_t terms, int k)
{
    const double *A = nmf_stats_A(s), *B = nmf_stats_B(s);
    double v = 0.0;

    for (int32_t t = 0; t < terms; t++)
        for (int i = 0; i < k; i++) {
            v -= B[t * k + i] * W[t * k + i];
            for (int j = 0; j < k; j++)
                v += 0.5 * W[t * k + i] * A[i * k + j] * W[t * k + j];
        }
    return v;
}

static void test_refresh_descends_and_keeps_columns_in_unit_ball(void **state)
{
    model *m = *state;
    int32_t n = m->c.X.n_rows;
    double *H = malloc(sizeof(double) * n * PLANT_K);
    double W[PLANT_TERMS * PLANT_K];
    nmf_stats *s = nmf_stats_new(PLANT_K, PLANT_TERMS, NULL);
    uint64_t rng = 5;
    double prev;

    assert_int_equal(nmf_fold_in(m->W, PLANT_TERMS, PLANT_K, m->G, &m->c.X, NULL, H, NULL, NULL), 0);
    assert_int_equal(nmf_stats_add(s, &m->c.X, H, 1.0, NULL), 0);
    for (int i = 0; i < PLANT_TERMS * PLANT_K; i++)
        W[i] = 0.1 * tf_rng_unit(&rng);
    prev = surrogate(W, s, PLANT_TERMS, PLANT_K);
    for (int r = 0; r < 5; r++) {
        double cur;
        assert_int_equal(nmf_refresh(W, PLANT_TERMS, PLANT_K, s, 1, NULL, NULL), 0);
        cur = surrogate(W, s, PLANT_TERMS, PLANT_K);
        assert_true(cur <= prev + 1e-12 * fabs(prev));
        prev = cur;
    }
    for (int j = 0; j < PLANT_K; j++) {
        double norm = 0.0;
        for (int t = 0; t < PLANT_TERMS; t++) {
            assert_true(W[t * PLANT_K + j] >= 0.0);
            norm += W[t * PLANT_K + j] * W[t * PLANT_K + j];
        }
        assert_true(sqrt(norm) <= 1.0 + 1e-12);
    }
    {
        /* Terms outside the model's vocabulary stay at zero, and from a feasible start the
         * masked update still never increases the surrogate. */
        uint8_t keep[PLANT_TERMS];
        for (int t = 0; t < PLANT_TERMS; t++) {
            keep[t] = t % 3 != 0;
            for (int j = 0; !keep[t] && j < PLANT_K; j++)
                W[t * PLANT_K + j] = 0.0;
        }
        prev = surrogate(W, s, PLANT_TERMS, PLANT_K);
        for (int r = 0; r < 3; r++) {
            double cur;
            assert_int_equal(nmf_refresh(W, PLANT_TERMS, PLANT_K, s, 1, keep, NULL), 0);
            cur = surrogate(W, s, PLANT_TERMS, PLANT_K);
            assert_true(cur <= prev + 1e-12 * fabs(prev));
            prev = cur;
        }
        for (int t = 0; t < PLANT_TERMS; t++)
            for (int j = 0; !keep[t] && j < PLANT_K; j++)
                assert_true(W[t * PLANT_K + j] == 0.0);
    }
    assert_int_equal(nmf_refresh(W, PLANT_TERMS - 1, PLANT_K, s, 1, NULL, NULL), -1);
    nmf_stats_free(s);
    free(H);
}

static void test_online_pass_is_within_10_percent_of_batch(void **state)
{
    enum { DOCS = 1200, BATCH = 100, K = PLANT_K };
    corpus c;
    double *Wb = malloc(sizeof(double) * PLANT_TERMS * K), *Hb = malloc(sizeof(double) * DOCS * K);
    double *W = malloc(sizeof(double) * PLANT_TERMS * K), *H = malloc(sizeof(double) * DOCS * K);
    double G[K * K], e_batch, e_online;
    nmf_batch_result res;
    nmf_stats *s = nmf_stats_new(K, 0, NULL);
    int64_t rp[BATCH + 1];

    corpus_make(&c, DOCS, 99);
    fit(&c.X, K, 200, 2, Wb, Hb, NULL, &res);
    e_batch = res.error;

    /* Bootstrap from the first mini-batch, as a fresh deployment would. */
    tf_csr first = csr_rows_view(&c.X, 0, BATCH, rp);
    fit(&first, K, 50, 1, W, H, NULL, NULL);
    for (int32_t r0 = 0; r0 < DOCS; r0 += BATCH) {
        tf_csr mb = csr_rows_view(&c.X, r0, r0 + BATCH, rp);
        assert_int_equal(nmf_gram(W, PLANT_TERMS, K, G, NULL), 0);
        assert_int_equal(nmf_fold_in(W, PLANT_TERMS, K, G, &mb, NULL, H + (size_t)r0 * K, NULL, NULL), 0);
        assert_int_equal(nmf_stats_add(s, &mb, H + (size_t)r0 * K, 1.0, NULL), 0);
        if ((r0 / BATCH) % 2 == 1)
            assert_int_equal(nmf_refresh(W, nmf_stats_n_terms(s), K, s, 3, NULL, NULL), 0);
    }
    assert_int_equal(nmf_stats_n_terms(s), PLANT_TERMS);
    assert_int_equal(nmf_gram(W, PLANT_TERMS, K, G, NULL), 0);
    assert_int_equal(nmf_fold_in(W, PLANT_TERMS, K, G, &c.X, NULL, H, NULL, NULL), 0);
    assert_int_equal(nmf_error(&c.X, W, PLANT_TERMS, H, K, 1, &e_online, NULL), 0);
    print_message("batch error %.6f, online error %.6f (ratio %.4f)\n", e_batch, e_online,
                  e_online / e_batch);
    assert_true(e_online <= 1.10 * e_batch);
    nmf_stats_free(s);
    free(Wb);
    free(Hb);
    free(W);
    free(H);
    csr_free(&c.X);
}

/* ---- kernels of the batch fit against their references ------------------------------ */

/* A random non-negative n × k matrix with about a third of its entries zero. */
static void random_factor(double *M, int64_t n, int k, uint64_t *rng)
{
    for (int64_t i = 0; i < n * k; i++)
        M[i] = tf_rng_unit(rng) < 0.33 ? 0.0 : tf_rng_unit(rng);
}

static void test_cd_block_matches_single_row_solver(void **state)
{
    enum { N = 21, K = 13, SWEEPS = 3 };
    double F[50 * K], G[K * K], inv[K], P[N * K], Y0[N * K], Yb[N * K], Ys[N * K];
    double scratch[2 * K * NMF_CD_LANES], g[K];
    uint64_t rng = 11;

    (void)state;
    random_factor(F, 50, K, &rng);
    nmf_gram_rows(F, 50, K, G);
    nmf_inv_diag(G, K, inv);
    random_factor(Y0, N, K, &rng);
    for (int i = 0; i < N * K; i++)
        P[i] = 4.0 * tf_rng_unit(&rng) - 1.0; /* some negative targets: rows hit the bound */
    memcpy(Yb, Y0, sizeof(Y0));
    memcpy(Ys, Y0, sizeof(Y0));
    nmf_cd_block(Yb, P, G, inv, K, N, SWEEPS, scratch, NULL);
    for (int r = 0; r < N; r++)
        nmf_cd_solve(Ys + r * K, P + r * K, G, inv, K, SWEEPS, 0.0, 0.0, g, NULL);
    for (int i = 0; i < N * K; i++) {
        assert_true(Yb[i] >= 0.0);
        assert_true(fabs(Yb[i] - Ys[i]) <= 1e-12 * (1.0 + fabs(Ys[i])));
    }
}

static void test_cd_block_row_split_is_bit_identical(void **state)
{
    enum { N = 19, K = 20 };
    double F[60 * K], G[K * K], inv[K], P[N * K], Ya[N * K], Yb[N * K];
    double scratch[2 * K * NMF_CD_LANES];
    uint64_t rng = 12;

    (void)state;
    random_factor(F, 60, K, &rng);
    nmf_gram_rows(F, 60, K, G);
    nmf_inv_diag(G, K, inv);
    random_factor(Ya, N, K, &rng);
    random_factor(P, N, K, &rng);
    memcpy(Yb, Ya, sizeof(Ya));
    nmf_cd_block(Ya, P, G, inv, K, N, 2, scratch, NULL);
    /* Split off rows at 5 and 14: other lane groupings. */
    nmf_cd_block(Yb, P, G, inv, K, 5, 2, scratch, NULL);
    nmf_cd_block(Yb + 5 * K, P + 5 * K, G, inv, K, 9, 2, scratch, NULL);
    nmf_cd_block(Yb + 14 * K, P + 14 * K, G, inv, K, N - 14, 2, scratch, NULL);
    assert_memory_equal(Ya, Yb, sizeof(Ya));
}

static void test_cd_block_accumulates_gram_and_cross_term(void **state)
{
    enum { N = 21, K = 11 };
    double F[40 * K], G[K * K], inv[K], P[N * K], Y[N * K], Gy[K * K], Ga[K * K];
    double scratch[2 * K * NMF_CD_LANES], acc[NMF_CD_ACC(K)], cross = 0.0, want = 0.0;
    uint64_t rng = 13;

    (void)state;
    random_factor(F, 40, K, &rng);
    nmf_gram_rows(F, 40, K, G);
    nmf_inv_diag(G, K, inv);
    random_factor(Y, N, K, &rng);
    for (int i = 0; i < N * K; i++)
        P[i] = 4.0 * tf_rng_unit(&rng) - 1.0;
    memset(acc, 0, sizeof(acc));
    memset(Ga, 0, sizeof(Ga));
    /* Two calls into one accumulator, the second with a partial lane group. */
    nmf_cd_block(Y, P, G, inv, K, 8, 2, scratch, acc);
    nmf_cd_block(Y + 8 * K, P + 8 * K, G, inv, K, N - 8, 2, scratch, acc);
    nmf_cd_acc_add(acc, K, Ga, &cross);
    nmf_gram_rows(Y, N, K, Gy);
    for (int i = 0; i < N * K; i++)
        want += P[i] * Y[i];
    for (int i = 0; i < K * K; i++)
        assert_true(fabs(Ga[i] - Gy[i]) <= 1e-12 * (1.0 + fabs(Gy[i])));
    assert_true(fabs(cross - want) <= 1e-12 * (1.0 + fabs(want)));
}

/* C = A·B summed in double with no tricks: the reference for the product kernels. */
static void naive_spmm(const tf_csr *A, const double *B, int32_t b_rows, int k, double *C)
{
    memset(C, 0, sizeof(double) * (size_t)A->n_rows * k);
    for (int32_t r = 0; r < A->n_rows; r++)
        for (int64_t p = A->row_ptr[r]; p < A->row_ptr[r + 1]; p++)
            if (A->col_idx[p] < b_rows)
                for (int j = 0; j < k; j++)
                    C[(size_t)r * k + j] += A->val[p] * B[(size_t)A->col_idx[p] * k + j];
}

/* rows × cols with unsorted column indices, repeated ones, and ~nnz_row entries a row. */
static void random_csr(tf_csr *A, int32_t rows, int32_t cols, int nnz_row, uint64_t *rng)
{
    tf_err err;
    int64_t nnz = 0;

    assert_int_equal(csr_alloc(A, rows, cols, (int64_t)rows * nnz_row, &err), 0);
    for (int32_t r = 0; r < rows; r++) {
        int n = (int)(tf_rng_next(rng) % (uint64_t)(2 * nnz_row)) / 2 + (r % 7 == 0 ? 0 : 1);
        for (int i = 0; i < n; i++) {
            A->col_idx[nnz] = (int32_t)(tf_rng_next(rng) % (uint64_t)cols);
            A->val[nnz++] = (float)tf_rng_unit(rng);
        }
        A->row_ptr[r + 1] = nnz;
    }
}

static void check_product(const tf_csr *A, const double *B, int32_t b_rows, int k, int want_tiled)
{
    double *ref = malloc(sizeof(double) * (size_t)A->n_rows * k);
    double *C1 = malloc(sizeof(double) * (size_t)A->n_rows * k);
    double *C3 = malloc(sizeof(double) * (size_t)A->n_rows * k);
    tf_err err;
    spmm_plan *plan = spmm_plan_new(A, b_rows, k, &err);

    assert_non_null(plan);
    assert_int_equal(spmm_plan_tiles(plan) > 1, want_tiled);
    naive_spmm(A, B, b_rows, k, ref);
    spmm_plan_run(plan, B, C1, 1);
    spmm_plan_run(plan, B, C3, 3);
    assert_memory_equal(C1, C3, sizeof(double) * (size_t)A->n_rows * k);
    for (size_t i = 0; i < (size_t)A->n_rows * k; i++)
        assert_true(fabs(C1[i] - ref[i]) <= 1e-12 * (1.0 + fabs(ref[i])));
    spmm(A, B, b_rows, k, C1, 2);
    for (size_t i = 0; i < (size_t)A->n_rows * k; i++)
        assert_true(fabs(C1[i] - ref[i]) <= 1e-12 * (1.0 + fabs(ref[i])));
    spmm_plan_free(plan);
    free(ref);
    free(C1);
    free(C3);
}

static void test_spmm_matches_naive_product_for_every_width(void **state)
{
    /* Widths below 8, at and between vector multiples, and past one 32-column chunk;
     * columns beyond b_rows meet zero rows. */
    static const int widths[] = { 1, 3, 7, 8, 13, 20, 32, 37, 100 };
    tf_csr A = { 0 };
    uint64_t rng = 21;
    double *B = malloc(sizeof(double) * 300 * 100);

    (void)state;
    random_csr(&A, 57, 320, 9, &rng);
    random_factor(B, 300, 100, &rng);
    for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++)
        check_product(&A, B, 300, widths[w], 0);
    csr_free(&A);
    free(B);
}

static void test_spmm_plan_tiles_large_operand_and_matches_naive_product(void **state)
{
    /* 320,000 × 8 doubles of B (19.5 MiB) exceed a tile, and C is small: tiled. */
    enum { B_ROWS = 320000, K = 8 };
    tf_csr A = { 0 };
    uint64_t rng = 22;
    double *B = malloc(sizeof(double) * (size_t)B_ROWS * K);

    (void)state;
    random_csr(&A, 300, B_ROWS + 50, 40, &rng);
    random_factor(B, B_ROWS, K, &rng);
    check_product(&A, B, B_ROWS, K, 1);
    csr_free(&A);
    free(B);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_recovers_planted_topics),
        cmocka_unit_test(test_batch_error_never_increases),
        cmocka_unit_test(test_batch_reported_error_is_exact),
        cmocka_unit_test(test_batch_documents_first_descends_and_reports_exact_error),
        cmocka_unit_test(test_batch_order_auto_follows_document_length),
        cmocka_unit_test(test_batch_reported_error_is_exact_for_large_k),
        cmocka_unit_test(test_batch_normalizes_topic_columns),
        cmocka_unit_test(test_batch_is_deterministic_for_seed_and_threads),
        cmocka_unit_test(test_batch_result_does_not_depend_on_thread_count),
        cmocka_unit_test(test_batch_rejects_k_larger_than_terms),
        cmocka_unit_test(test_batch_rejects_empty_and_malformed_matrices),
        cmocka_unit_test_setup_teardown(test_fold_in_satisfies_kkt, model_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_fold_in_gives_zero_mixture_to_empty_document, model_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_fold_in_rejects_empty_batch_and_bad_k, model_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_retract_after_add_restores_statistics, model_setup, model_teardown),
        cmocka_unit_test_setup_teardown(test_delta_applied_equals_direct_add, model_setup, model_teardown),
        cmocka_unit_test(test_stats_grow_appends_zero_rows),
        cmocka_unit_test_setup_teardown(test_refresh_descends_and_keeps_columns_in_unit_ball, model_setup, model_teardown),
        cmocka_unit_test(test_online_pass_is_within_10_percent_of_batch),
        cmocka_unit_test(test_cd_block_matches_single_row_solver),
        cmocka_unit_test(test_cd_block_row_split_is_bit_identical),
        cmocka_unit_test(test_cd_block_accumulates_gram_and_cross_term),
        cmocka_unit_test(test_spmm_matches_naive_product_for_every_width),
        cmocka_unit_test(test_spmm_plan_tiles_large_operand_and_matches_naive_product),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
