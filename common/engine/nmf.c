/*
 * nmf.c - the stream path of the topic engine: fold-in, sufficient statistics, deltas
 * and the W refresh, plus the coordinate-descent kernel that the batch fit reuses.
 *
 * Statistics are double although W and H could be float: measured with k = 20, after a
 * million documents the entries of A reach ~7e4, where float's spacing is 0.008, so one
 * document's contribution (~0.1) is kept only to a few percent and the float sum drifts
 * 4e-5 relative from the exact one. In double, add-then-retract restores A and B to
 * ~1e-15 relative, which is what makes retraction of updated documents exact.
 */
#include "engine/nmf.h"

#include "nmf_kernel.h"
#include "engine/spmm.h"
#include "base/grow.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nmf_stats {
    int k;
    int32_t n_terms, cap_terms;
    double *A;
    double *B;
};

/* One nmf_delta_add call's inputs, copied: the documents form of a delta. */
typedef struct delta_part {
    double sign;
    tf_csr X;
    double *H;
} delta_part;

struct nmf_delta {
    int k;
    double *A;
    int32_t n_rows, cap_rows;
    int32_t *terms;
    double *rows;
    int32_t *slot;     /* term id -> row index, -1 when untouched; covers [0, map_len) */
    int32_t map_len;
    delta_part *parts; /* while parts_ok: every nmf_delta_add since the last clear */
    size_t n_parts, cap_parts;
    int parts_ok;      /* 0 once raw rows were added (or a copy failed): rows form only */
};

/* ---- kernel ------------------------------------------------------------------------- */

/* Cloned for x86-64-v3 like spmm: the rank-1 gradient update is the whole cost. */
__attribute__((target_clones("arch=x86-64-v3", "default")))
int nmf_cd_solve(double *restrict y, const double *restrict p, const double *restrict G,
                 const double *restrict inv_diag, int k, int max_sweeps, double tol, double scale,
                 double *restrict g, double *viol)
{
    int sweeps = 0;
    int any = 0;
    double v = 0.0;

    for (int j = 0; j < k; j++)
        any |= y[j] != 0.0;
    for (int j = 0; j < k; j++)
        g[j] = -p[j];
    if (any)
        for (int j = 0; j < k; j++)
            if (y[j] != 0.0)
                nmf_axpy(g, y[j], G + (size_t)j * k, k);

    while (sweeps < max_sweeps) {
        for (int j = 0; j < k; j++) {
            double yn, d;
            /* At a bound with a non-negative gradient the step is zero: the common case
             * for sparse mixtures, and it needs no arithmetic. */
            if (y[j] == 0.0 && g[j] >= 0.0)
                continue;
            yn = y[j] - g[j] * inv_diag[j];
            if (yn < 0.0 || inv_diag[j] == 0.0)
                yn = 0.0;
            d = yn - y[j];
            if (d != 0.0) {
                y[j] = yn;
                nmf_axpy(g, d, G + (size_t)j * k, k);
            }
        }
        sweeps++;
        v = 0.0;
        for (int j = 0; j < k; j++) {
            double r = fabs(y[j] < g[j] ? y[j] : g[j]);
            if (r > v)
                v = r;
        }
        if (v <= tol * scale)
            break;
    }
    if (sweeps == 0) {
        for (int j = 0; j < k; j++) {
            double r = fabs(y[j] < g[j] ? y[j] : g[j]);
            if (r > v)
                v = r;
        }
    }
    if (viol)
        *viol = v;
    return sweeps;
}

/* One vector lane per row (GCC vector extension: lowered to AVX-512, AVX2 or SSE2 by the
 * clone that runs). aligned(8): the scratch comes from malloc, not 64-byte aligned. */
typedef double nmf_vd __attribute__((vector_size(NMF_CD_LANES * sizeof(double)), aligned(8)));
typedef int64_t nmf_vl __attribute__((vector_size(NMF_CD_LANES * sizeof(int64_t)), aligned(8)));

/* yb[j] holds coordinate j of rows r0 .. r0 + 7, pb[j] their target. Lanes past the last
 * row hold y = p = 0: their gradient stays 0 and their steps are 0.
 * Each step's gradient is computed afresh as a dot product, (G y)_j − p_j, four
 * coordinates at a time so that one load of y[i] feeds four products (and no gradient is
 * stored back); inside a group of four, the later coordinates' gradients are corrected
 * for the steps the earlier ones took, so every step sees the exact current gradient.
 * Against keeping a gradient vector current by a rank-1 update per step, this needs no
 * initial G y pass and no stores, which made it 2.3-3x faster at k = 100 (one sweep over
 * the Debian corpus's documents: 77 -> 26 ms of thread CPU). */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
void nmf_cd_block(double *restrict Y, const double *restrict P, const double *restrict G,
                  const double *restrict inv_diag, int k, int64_t n, int sweeps,
                  double *restrict scratch, double *restrict acc)
{
    nmf_vd *restrict yb = (nmf_vd *)scratch, *restrict pb = yb + k;
    nmf_vd *restrict ab = (nmf_vd *)acc;
    double *restrict cross = acc ? acc + (size_t)k * (k + 1) / 2 * NMF_CD_LANES : NULL;
    const nmf_vd zero = { 0 };

    for (int64_t r0 = 0; r0 < n; r0 += NMF_CD_LANES) {
        int m = n - r0 < NMF_CD_LANES ? (int)(n - r0) : NMF_CD_LANES;
        for (int j = 0; j < k; j++) {
            yb[j] = zero;
            pb[j] = zero;
        }
        for (int l = 0; l < m; l++)
            for (int j = 0; j < k; j++) {
                yb[j][l] = Y[(r0 + l) * k + j];
                pb[j][l] = P[(r0 + l) * k + j];
            }
        for (int s = 0; s < sweeps; s++)
            for (int j0 = 0; j0 < k; j0 += 4) {
                int bn = k - j0 < 4 ? k - j0 : 4;
                /* Rows past k in a short last group repeat row j0: their sums are unused. */
                const double *g0 = G + (size_t)j0 * k, *g1 = bn > 1 ? g0 + k : g0,
                             *g2 = bn > 2 ? g0 + 2 * (size_t)k : g0,
                             *g3 = bn > 3 ? g0 + 3 * (size_t)k : g0;
                nmf_vd a0 = zero, a1 = zero, a2 = zero, a3 = zero;
                nmf_vd b0 = zero, b1 = zero, b2 = zero, b3 = zero, gl[4];
                int i = 0;
                for (; i + 2 <= k; i += 2) {
                    nmf_vd y = yb[i], z = yb[i + 1];
                    a0 += y * g0[i];
                    a1 += y * g1[i];
                    a2 += y * g2[i];
                    a3 += y * g3[i];
                    b0 += z * g0[i + 1];
                    b1 += z * g1[i + 1];
                    b2 += z * g2[i + 1];
                    b3 += z * g3[i + 1];
                }
                if (i < k) {
                    nmf_vd y = yb[i];
                    a0 += y * g0[i];
                    a1 += y * g1[i];
                    a2 += y * g2[i];
                    a3 += y * g3[i];
                }
                gl[0] = a0 + b0;
                gl[1] = a1 + b1;
                gl[2] = a2 + b2;
                gl[3] = a3 + b3;
                for (int b = 0; b < bn; b++) {
                    int j = j0 + b;
                    nmf_vd y = yb[j], yn = zero, d;
                    if (inv_diag[j] != 0.0) {
                        yn = y - (gl[b] - pb[j]) * inv_diag[j];
                        yn = (nmf_vd)((nmf_vl)yn & ~(yn < zero));
                    }
                    d = yn - y;
                    yb[j] = yn;
                    for (int c = b + 1; c < bn; c++)
                        gl[c] += d * G[(size_t)j * k + j0 + c];
                }
            }
        if (ab) {
            /* The rows are in registers or L1 now: their share of YᵀY costs k²/2 lane
             * products here, against a second pass over all of Y for a separate dsyrk. */
            size_t t = 0;
            for (int i = 0; i < k; i++) {
                nmf_vd yi = yb[i];
                for (int j = i; j < k; j++)
                    ab[t++] += yi * yb[j];
            }
            for (int l = 0; l < m; l++)
                for (int j = 0; j < k; j++)
                    cross[l] += P[(r0 + l) * k + j] * yb[j][l];
        }
        for (int l = 0; l < m; l++)
            for (int j = 0; j < k; j++)
                Y[(r0 + l) * k + j] = yb[j][l];
    }
}

void nmf_gram_rows(const double *M, int64_t n, int k, double *G)
{
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, k, (int)n, 1.0, M, k, 0.0, G, k);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < i; j++)
            G[(size_t)i * k + j] = G[(size_t)j * k + i];
}

int nmf_check_k(int k, tf_err *err)
{
    if (k < 1 || k > NMF_MAX_K)
        return tf_err_set(err, "nmf: k = %d outside [1, %d]", k, NMF_MAX_K);
    return 0;
}

int nmf_top_terms(const double *W, int32_t n_terms, int k, int j, int top, double min_weight,
                  int32_t *ids, double *w)
{
    int n = 0;

#define TOP_W(r) W[(size_t)ids[r] * (size_t)k + (size_t)j]
    for (int32_t t = 0; t < n_terms; t++) {
        double x = W[(size_t)t * (size_t)k + (size_t)j];
        int pos;

        if (!(x > 0) || x < min_weight || (n == top && x <= TOP_W(n - 1)))
            continue;
        pos = n < top ? n++ : top - 1;
        while (pos > 0 && TOP_W(pos - 1) < x) {
            ids[pos] = ids[pos - 1];
            pos--;
        }
        ids[pos] = t;
    }
    for (int r = 0; w && r < n; r++)
        w[r] = TOP_W(r);
#undef TOP_W
    return n;
}

int nmf_gram(const double *W, int32_t n_terms, int k, double *G, tf_err *err)
{
    if (nmf_check_k(k, err) < 0)
        return -1;
    if (n_terms < 1 || !W || !G)
        return tf_err_set(err, "nmf_gram: empty model (%d terms)", n_terms);
    nmf_gram_rows(W, n_terms, k, G);
    return 0;
}

/* ---- fold-in ------------------------------------------------------------------------ */

nmf_fold_opts nmf_fold_defaults(void)
{
    return (nmf_fold_opts){ .max_sweeps = 200, .tol = 1e-6 };
}

/* Fold-in works in row blocks so that P = X·W stays in L1/L2 and needs no allocation
 * proportional to the batch. */
#define NMF_FOLD_BLOCK 64

int nmf_fold_in(const double *W, int32_t n_terms, int k, const double *G, const tf_csr *X,
                const nmf_fold_opts *opts, double *H, nmf_fold_info *info, tf_err *err)
{
    nmf_fold_opts o = opts ? *opts : nmf_fold_defaults();
    nmf_fold_info acc = { 0 };
    double *P = NULL, *g = NULL, *inv;
    int rc = -1;

    if (nmf_check_k(k, err) < 0)
        goto fail;
    if (!X || X->n_rows < 1) {
        tf_err_set(err, "nmf_fold_in: empty batch");
        goto fail;
    }
    if (n_terms < 1 || !W || !G || !H) {
        tf_err_set(err, "nmf_fold_in: missing model, Gram matrix or output");
        goto fail;
    }
    if (csr_check(X, err) < 0) {
        tf_err_prefix(err, "nmf_fold_in");
        goto fail;
    }
    if (o.max_sweeps < 1)
        o.max_sweeps = 1;
    P = malloc(sizeof(double) * (size_t)NMF_FOLD_BLOCK * k);
    g = malloc(sizeof(double) * (size_t)k * 2);
    if (!P || !g) {
        tf_err_set(err, "nmf_fold_in: out of memory (k = %d)", k);
        goto fail;
    }
    inv = g + k;
    nmf_inv_diag(G, k, inv);
    for (int32_t r0 = 0; r0 < X->n_rows; r0 += NMF_FOLD_BLOCK) {
        int32_t r1 = X->n_rows - r0 < NMF_FOLD_BLOCK ? X->n_rows : r0 + NMF_FOLD_BLOCK;
        spmm_rows(X, r0, r1, W, n_terms, k, P, 1);
        for (int32_t r = r0; r < r1; r++) {
            const double *p = P + (size_t)(r - r0) * k;
            double *h = H + (size_t)r * k;
            double pmax = 0.0, viol = 0.0;
            int sweeps;
            for (int j = 0; j < k; j++) {
                h[j] = 0.0;
                if (p[j] > pmax)
                    pmax = p[j];
            }
            if (pmax <= 0.0)
                continue; /* no known term, or none in any topic: h = 0 is optimal */
            sweeps = nmf_cd_solve(h, p, G, inv, k, o.max_sweeps, o.tol, pmax, g, &viol);
            acc.sweeps += sweeps;
            if (viol > o.tol * pmax)
                acc.capped++;
            if (viol / pmax > acc.max_violation)
                acc.max_violation = viol / pmax;
        }
    }
    if (info)
        *info = acc;
    rc = 0;
fail:
    free(P);
    free(g);
    return rc;
}

/* ---- statistics --------------------------------------------------------------------- */

nmf_stats *nmf_stats_new(int k, int32_t n_terms, tf_err *err)
{
    nmf_stats *s = NULL;

    if (nmf_check_k(k, err) < 0)
        return NULL;
    if (n_terms < 0) {
        tf_err_set(err, "nmf_stats_new: negative term count %d", n_terms);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->k = k;
    s->A = calloc((size_t)k * k, sizeof(double));
    if (!s->A)
        goto fail;
    if (nmf_stats_grow(s, n_terms, err) < 0) {
        nmf_stats_free(s);
        return NULL;
    }
    return s;
fail:
    nmf_stats_free(s);
    tf_err_set(err, "nmf_stats_new: out of memory (k = %d, %d terms)", k, n_terms);
    return NULL;
}

void nmf_stats_free(nmf_stats *s)
{
    if (!s)
        return;
    free(s->A);
    free(s->B);
    free(s);
}

int nmf_stats_k(const nmf_stats *s) { return s->k; }
int32_t nmf_stats_n_terms(const nmf_stats *s) { return s->n_terms; }
const double *nmf_stats_A(const nmf_stats *s) { return s->A; }
const double *nmf_stats_B(const nmf_stats *s) { return s->B; }
double *nmf_stats_A_mut(nmf_stats *s) { return s->A; }
double *nmf_stats_B_mut(nmf_stats *s) { return s->B; }

void nmf_stats_clear(nmf_stats *s)
{
    memset(s->A, 0, sizeof(double) * (size_t)s->k * s->k);
    if (s->B)
        memset(s->B, 0, sizeof(double) * (size_t)s->n_terms * s->k);
}

int nmf_stats_grow(nmf_stats *s, int32_t n_terms, tf_err *err)
{
    if (n_terms <= s->n_terms)
        return 0;
    if (n_terms > s->cap_terms) {
        /* Geometric growth: the vocabulary grows a few terms per batch. */
        int64_t cap = s->cap_terms ? (int64_t)s->cap_terms * 3 / 2 : 1024;
        double *B;
        if (cap < n_terms)
            cap = n_terms;
        if (cap > INT32_MAX)
            cap = INT32_MAX;
        B = realloc(s->B, sizeof(double) * (size_t)cap * s->k);
        if (!B)
            return tf_err_set(err, "nmf_stats_grow: out of memory for %lld terms", (long long)cap);
        s->B = B;
        s->cap_terms = (int32_t)cap;
    }
    memset(s->B + (size_t)s->n_terms * s->k, 0,
           sizeof(double) * (size_t)(n_terms - s->n_terms) * s->k);
    s->n_terms = n_terms;
    return 0;
}

static int nmf_stats_args(int k, const tf_csr *X, const double *H, tf_err *err)
{
    if (!X || !H)
        return tf_err_set(err, "nmf statistics: missing documents or mixtures");
    if (csr_check(X, err) < 0)
        return tf_err_prefix(err, "nmf statistics");
    for (int64_t i = 0; i < (int64_t)X->n_rows * k; i++)
        if (!(H[i] >= 0.0) || !isfinite(H[i]))
            return tf_err_set(err, "nmf statistics: mixture entry %lld is negative or not finite",
                              (long long)i);
    return 0;
}

int nmf_stats_add(nmf_stats *s, const tf_csr *X, const double *H, double sign, tf_err *err)
{
    int k = s->k;

    if (nmf_stats_args(k, X, H, err) < 0 || nmf_stats_grow(s, X->n_cols, err) < 0)
        return -1;
    if (X->n_rows == 0)
        return 0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, X->n_rows, sign, H, k, H, k,
                1.0, s->A, k);
    for (int32_t i = 0; i < X->n_rows; i++) {
        const double *h = H + (size_t)i * k;
        for (int64_t p = X->row_ptr[i]; p < X->row_ptr[i + 1]; p++)
            cblas_daxpy(k, sign * X->val[p], h, 1, s->B + (size_t)X->col_idx[p] * k, 1);
    }
    return 0;
}

int nmf_stats_apply(nmf_stats *s, const nmf_delta *d, tf_err *err)
{
    int32_t max_term = -1;

    if (d->k != s->k)
        return tf_err_set(err, "nmf_stats_apply: delta has k = %d, statistics k = %d", d->k, s->k);
    for (int32_t i = 0; i < d->n_rows; i++)
        if (d->terms[i] > max_term)
            max_term = d->terms[i];
    if (nmf_stats_grow(s, max_term + 1, err) < 0)
        return -1;
    for (size_t i = 0; i < (size_t)s->k * s->k; i++)
        s->A[i] += d->A[i];
    for (int32_t i = 0; i < d->n_rows; i++)
        cblas_daxpy(s->k, 1.0, d->rows + (size_t)i * s->k, 1, s->B + (size_t)d->terms[i] * s->k, 1);
    return 0;
}

/* ---- deltas ------------------------------------------------------------------------- */

nmf_delta *nmf_delta_new(int k, tf_err *err)
{
    nmf_delta *d;

    if (nmf_check_k(k, err) < 0)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d || !(d->A = calloc((size_t)k * k, sizeof(double)))) {
        free(d);
        tf_err_set(err, "nmf_delta_new: out of memory (k = %d)", k);
        return NULL;
    }
    d->k = k;
    d->parts_ok = 1;
    return d;
}

static void delta_parts_drop(nmf_delta *d)
{
    for (size_t i = 0; i < d->n_parts; i++) {
        csr_free(&d->parts[i].X);
        free(d->parts[i].H);
    }
    d->n_parts = 0;
}

/* Keeps a copy of one nmf_delta_add's inputs; on failure the documents form is given up
 * (the rows form stays complete), which is not an error. */
static void delta_parts_keep(nmf_delta *d, const tf_csr *X, const double *H, double sign)
{
    delta_part *p;
    int64_t nnz = csr_nnz(X);

    if (!d->parts_ok)
        return;
    if (TF_GROW(d->parts, d->cap_parts, d->n_parts + 1) < 0)
        goto give_up;
    p = &d->parts[d->n_parts];
    memset(p, 0, sizeof(*p));
    p->sign = sign;
    p->H = malloc(sizeof(double) * (size_t)X->n_rows * (size_t)d->k);
    if (!p->H || csr_alloc(&p->X, X->n_rows, X->n_cols, nnz, NULL) < 0) {
        free(p->H);
        goto give_up;
    }
    memcpy(p->X.row_ptr, X->row_ptr, sizeof(int64_t) * ((size_t)X->n_rows + 1));
    memcpy(p->X.col_idx, X->col_idx, sizeof(int32_t) * (size_t)nnz);
    memcpy(p->X.val, X->val, sizeof(float) * (size_t)nnz);
    memcpy(p->H, H, sizeof(double) * (size_t)X->n_rows * (size_t)d->k);
    d->n_parts++;
    return;
give_up:
    delta_parts_drop(d);
    d->parts_ok = 0;
}

int64_t nmf_delta_n_parts(const nmf_delta *d)
{
    return d->parts_ok ? (int64_t)d->n_parts : -1;
}

void nmf_delta_part(const nmf_delta *d, size_t i, double *sign, const tf_csr **X,
                    const double **H)
{
    *sign = d->parts[i].sign;
    *X = &d->parts[i].X;
    *H = d->parts[i].H;
}

void nmf_delta_free(nmf_delta *d)
{
    if (!d)
        return;
    delta_parts_drop(d);
    free(d->parts);
    free(d->A);
    free(d->terms);
    free(d->rows);
    free(d->slot);
    free(d);
}

void nmf_delta_clear(nmf_delta *d)
{
    memset(d->A, 0, sizeof(double) * (size_t)d->k * d->k);
    for (int32_t i = 0; i < d->n_rows; i++)
        d->slot[d->terms[i]] = -1;
    d->n_rows = 0;
    delta_parts_drop(d);
    d->parts_ok = 1;
}

int nmf_delta_k(const nmf_delta *d) { return d->k; }
const double *nmf_delta_A(const nmf_delta *d) { return d->A; }
int32_t nmf_delta_n_rows(const nmf_delta *d) { return d->n_rows; }
const int32_t *nmf_delta_terms(const nmf_delta *d) { return d->terms; }
const double *nmf_delta_rows(const nmf_delta *d) { return d->rows; }

/* The ΔB row of term t, created (zero) on first touch; NULL when out of memory. */
static double *nmf_delta_row(nmf_delta *d, int32_t t)
{
    if (t >= d->map_len) {
        int64_t len = (int64_t)t + 1 > (int64_t)d->map_len * 3 / 2 ? (int64_t)t + 1 : (int64_t)d->map_len * 3 / 2;
        int32_t *slot = realloc(d->slot, sizeof(int32_t) * (size_t)len);
        if (!slot)
            return NULL;
        for (int64_t i = d->map_len; i < len; i++)
            slot[i] = -1;
        d->slot = slot;
        d->map_len = (int32_t)len;
    }
    if (d->slot[t] < 0) {
        if (d->n_rows == d->cap_rows) {
            int32_t cap = d->cap_rows ? d->cap_rows * 2 : 256;
            int32_t *terms = realloc(d->terms, sizeof(int32_t) * (size_t)cap);
            double *rows;
            if (!terms)
                return NULL;
            d->terms = terms;
            rows = realloc(d->rows, sizeof(double) * (size_t)cap * d->k);
            if (!rows)
                return NULL;
            d->rows = rows;
            d->cap_rows = cap;
        }
        d->slot[t] = d->n_rows;
        d->terms[d->n_rows] = t;
        memset(d->rows + (size_t)d->n_rows * d->k, 0, sizeof(double) * (size_t)d->k);
        d->n_rows++;
    }
    return d->rows + (size_t)d->slot[t] * d->k;
}

int nmf_delta_add(nmf_delta *d, const tf_csr *X, const double *H, double sign, tf_err *err)
{
    int k = d->k;

    if (nmf_stats_args(k, X, H, err) < 0)
        return -1;
    if (X->n_rows == 0)
        return 0;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, k, X->n_rows, sign, H, k, H, k,
                1.0, d->A, k);
    for (int32_t i = 0; i < X->n_rows; i++) {
        const double *h = H + (size_t)i * k;
        for (int64_t p = X->row_ptr[i]; p < X->row_ptr[i + 1]; p++) {
            double *row = nmf_delta_row(d, X->col_idx[p]);
            if (!row)
                return tf_err_set(err, "nmf_delta_add: out of memory (%d rows)", d->n_rows);
            cblas_daxpy(k, sign * X->val[p], h, 1, row, 1);
        }
    }
    delta_parts_keep(d, X, H, sign);
    return 0;
}

int nmf_delta_add_raw(nmf_delta *d, const double *dA, int32_t n_rows, const int32_t *terms,
                      const double *rows, double sign, tf_err *err)
{
    int k = d->k;

    for (int32_t i = 0; i < n_rows; i++)
        if (terms[i] < 0)
            return tf_err_set(err, "nmf_delta_add_raw: negative term id %d", terms[i]);
    delta_parts_drop(d); /* raw rows have no documents: the rows form from now on */
    d->parts_ok = 0;
    if (dA)
        for (size_t i = 0; i < (size_t)k * k; i++)
            d->A[i] += sign * dA[i];
    for (int32_t i = 0; i < n_rows; i++) {
        double *row = nmf_delta_row(d, terms[i]);
        if (!row)
            return tf_err_set(err, "nmf_delta_add_raw: out of memory (%d rows)", d->n_rows);
        cblas_daxpy(k, sign, rows + (size_t)i * k, 1, row, 1);
    }
    return 0;
}

/* ---- refresh ------------------------------------------------------------------------ */

int nmf_refresh(double *W, int32_t n_terms, int k, const nmf_stats *s, int passes,
                const uint8_t *keep, tf_err *err)
{
    const double *A = s->A;
    double *R = NULL, *delta = NULL;
    int rc = -1;

    if (k != s->k || n_terms != s->n_terms) {
        tf_err_set(err, "nmf_refresh: W is %d x %d but statistics are %d x %d", n_terms, k,
                   s->n_terms, s->k);
        goto fail;
    }
    if (n_terms < 1) {
        tf_err_set(err, "nmf_refresh: empty vocabulary");
        goto fail;
    }
    R = malloc(sizeof(double) * (size_t)n_terms * k);
    delta = malloc(sizeof(double) * (size_t)n_terms);
    if (!R || !delta) {
        tf_err_set(err, "nmf_refresh: out of memory (%d terms)", n_terms);
        goto fail;
    }
    for (int pass = 0; pass < passes; pass++) {
        /* R = B − W A, the negative gradient of the surrogate; rank-1 updates keep it exact
         * as columns change, so each column step sees the current W. */
        memcpy(R, s->B, sizeof(double) * (size_t)n_terms * k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_terms, k, k, -1.0, W, k, A, k,
                    1.0, R, k);
        for (int j = 0; j < k; j++) {
            double ajj = A[(size_t)j * k + j], norm2 = 0.0, scale = 1.0;
            if (!(ajj > 0.0))
                continue;
            for (int32_t t = 0; t < n_terms; t++) {
                double u = W[(size_t)t * k + j] + R[(size_t)t * k + j] / ajj;
                delta[t] = u > 0.0 && (!keep || keep[t]) ? u : 0.0;
                norm2 += delta[t] * delta[t];
            }
            if (norm2 > 1.0)
                scale = 1.0 / sqrt(norm2);
            for (int32_t t = 0; t < n_terms; t++) {
                double u = delta[t] * scale;
                delta[t] = u - W[(size_t)t * k + j];
                W[(size_t)t * k + j] = u;
            }
            cblas_dger(CblasRowMajor, n_terms, k, -1.0, delta, 1, A + (size_t)j * k, 1, R, k);
        }
    }
    rc = 0;
fail:
    free(R);
    free(delta);
    return rc;
}

int nmf_w_resize(double **W, int32_t old_terms, int32_t new_terms, int k, tf_err *err)
{
    double *w;

    if (new_terms < 0 || old_terms < 0 || nmf_check_k(k, err) < 0)
        return tf_err_set(err, "nmf_w_resize: bad size %d -> %d (k = %d)", old_terms, new_terms, k);
    w = realloc(*W, sizeof(double) * (size_t)(new_terms ? new_terms : 1) * k);
    if (!w)
        return tf_err_set(err, "nmf_w_resize: out of memory for %d terms", new_terms);
    if (new_terms > old_terms)
        memset(w + (size_t)old_terms * k, 0, sizeof(double) * (size_t)(new_terms - old_terms) * k);
    *W = w;
    return 0;
}
