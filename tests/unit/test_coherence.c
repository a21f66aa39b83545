/*
 * test_coherence.c - the NPMI coherence of topics: hand-computed cases (perfect pair, an
 * independent pair, a pair never together, all-zero topics skipped, repeated columns counted
 * once) and agreement with a direct computation on random data with overlapping top lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "engine/coherence.h"

/* rows: each a list of term ids ended by -1; the whole list ended by an empty row. */
static void build(tf_csr *X, int32_t n_cols, const int32_t *const *rows, int n_rows)
{
    int64_t nnz = 0;
    tf_err err;

    for (int r = 0; r < n_rows; r++)
        for (int i = 0; rows[r][i] >= 0; i++)
            nnz++;
    assert_int_equal(csr_alloc(X, n_rows, n_cols, nnz, &err), 0);
    nnz = 0;
    for (int r = 0; r < n_rows; r++) {
        for (int i = 0; rows[r][i] >= 0; i++) {
            X->col_idx[nnz] = rows[r][i];
            X->val[nnz++] = 1.0f;
        }
        X->row_ptr[r + 1] = nnz;
    }
}

static void test_hand_computed(void **state)
{
    static const int32_t d0[] = {0, 1, 1, -1}, d1[] = {0, 1, 2, -1}, d2[] = {2, 3, -1}, d3[] = {3, -1};
    const int32_t *rows[] = {d0, d1, d2, d3};
    /* topic 0: t0, t1 (always together: NPMI 1); topic 1: t2, t3 (P = 1/4 = 1/2 · 1/2: 0);
     * topic 2: all zero (skipped); topic 3: t0, t3 (never together: -1). */
    double W[4 * 4] = {
        0.9, 0.0, 0.0, 0.7,
        0.5, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 0.0,
        0.0, 0.4, 0.0, 0.2,
    };
    tf_csr X;
    tf_err err;
    double mean = 7;

    (void)state;
    build(&X, 4, rows, 4);
    assert_int_equal(tf_coherence_npmi(&X, W, 4, 4, 10, &mean, &err), 0);
    assert_true(fabs(mean - (1.0 + 0.0 - 1.0) / 3.0) < 1e-12);
    /* Topic 3 emptied: topics 0 and 1 remain, with top lists of two. */
    W[0 * 4 + 3] = 0;
    W[3 * 4 + 3] = 0;
    assert_int_equal(tf_coherence_npmi(&X, W, 4, 4, 2, &mean, &err), 0);
    assert_true(fabs(mean - 0.5) < 1e-12);
    csr_free(&X);
}

static void test_rejects_bad_arguments(void **state)
{
    static const int32_t d0[] = {0, -1};
    const int32_t *rows[] = {d0};
    double W[2] = {1, 1}, mean;
    tf_csr X;
    tf_err err;

    (void)state;
    build(&X, 1, rows, 1);
    assert_int_equal(tf_coherence_npmi(&X, W, 1, 2, 1, &mean, &err), -1);
    assert_non_null(strstr(err.msg, "top"));
    assert_int_equal(tf_coherence_npmi(&X, W, 1, 0, 10, &mean, &err), -1);
    csr_free(&X);
}

/* The definition, computed the slow way: top terms by a full sort, co-occurrence by scans. */
static double direct(const tf_csr *X, const double *W, int32_t terms, int k, int top)
{
    double total = 0;
    int topics = 0;

    for (int j = 0; j < k; j++) {
        int32_t idx[64];
        int n = 0;
        double sum = 0;
        int pairs = 0;

        for (int32_t t = 0; t < terms; t++) {
            if (!(W[t * k + j] > 0))
                continue;
            int pos = n < top ? n++ : top;
            if (pos == top && W[idx[top - 1] * k + j] >= W[t * k + j])
                continue;
            if (pos == top)
                pos = top - 1;
            while (pos > 0 && W[idx[pos - 1] * k + j] < W[t * k + j]) {
                idx[pos] = idx[pos - 1];
                pos--;
            }
            idx[pos] = t;
        }
        if (n < 2)
            continue;
        for (int a = 0; a < n; a++)
            for (int b = a + 1; b < n; b++) {
                double da = 0, db = 0, dab = 0, N = X->n_rows;
                for (int32_t r = 0; r < X->n_rows; r++) {
                    int ha = 0, hb = 0;
                    for (int64_t p = X->row_ptr[r]; p < X->row_ptr[r + 1]; p++) {
                        ha |= X->col_idx[p] == idx[a];
                        hb |= X->col_idx[p] == idx[b];
                    }
                    da += ha;
                    db += hb;
                    dab += ha && hb;
                }
                sum += dab == 0 ? -1.0 : dab == N ? 1.0
                     : log((dab / N) / ((da / N) * (db / N))) / -log(dab / N);
                pairs++;
            }
        total += sum / pairs;
        topics++;
    }
    return topics ? total / topics : 0;
}

static void test_matches_direct_computation(void **state)
{
    enum { DOCS = 300, TERMS = 80, K = 6, TOP = 10 };
    uint64_t rng = 11;
    double W[TERMS * K], mean;
    tf_csr X;
    tf_err err;
    int64_t nnz = 0;

    (void)state;
    assert_int_equal(csr_alloc(&X, DOCS, TERMS, (int64_t)DOCS * 12, &err), 0);
    for (int r = 0; r < DOCS; r++) {
        int len = 1 + (int)(tf_rng_unit(&rng) * 12);
        for (int i = 0; i < len; i++) {
            /* skewed: low ids far more frequent */
            double u = tf_rng_unit(&rng);
            X.col_idx[nnz] = (int32_t)(u * u * TERMS);
            X.val[nnz++] = 1.0f + (float)i;
        }
        X.row_ptr[r + 1] = nnz;
    }
    /* Topics share terms (overlapping top lists); some weights tie at zero. */
    for (int i = 0; i < TERMS * K; i++)
        W[i] = tf_rng_unit(&rng) < 0.4 ? tf_rng_unit(&rng) : 0.0;
    assert_int_equal(tf_coherence_npmi(&X, W, TERMS, K, TOP, &mean, &err), 0);
    assert_true(fabs(mean - direct(&X, W, TERMS, K, TOP)) < 1e-9);
    assert_true(mean > -1 && mean < 1);
    csr_free(&X);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_rejects_bad_arguments),
        cmocka_unit_test(test_matches_direct_computation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
