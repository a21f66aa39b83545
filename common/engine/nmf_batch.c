/*
 * nmf_batch.c - the batch path: full NMF of a sparse corpus (the refit).
 *
 * NNDSVDa initialisation from a randomized truncated SVD (range finder with power
 * iterations, Householder QR from OpenBLAS's LAPACK, a Jacobi eigensolver for the small
 * projected problem), then alternating HALS updates (which factor first:
 * nmf_auto_docs_first). Every update is an exact coordinate minimisation and the
 * column normalisation of W is objective-neutral, so the error never increases. Each
 * half-iteration is one pass over the rows it updates: a chunk's rows of the sparse
 * product (spmm_rows, into a per-thread buffer) are solved at once by the coordinate
 * descent, eight rows at a time (nmf_cd_block), which for small k also accumulates the
 * Gram matrix and the error's cross term while the rows are in cache (dsyrk otherwise).
 * Only when B is too large for the last-level cache does the product
 * run first, tiled (spmm plans), into a stored P.
 */
#include "engine/nmf.h"

#include "base/lifecycle.h"
#include "base/rng.h"

#include "nmf_kernel.h"
#include "engine/par.h"
#include "engine/spmm.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* liblapacke-dev is not installed here; the Fortran LAPACK symbols ship inside
 * libopenblas, and these two take no character arguments (no hidden length ABI). */
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);

#define NMF_OVERSAMPLE 10
#define NMF_CD_SCRATCH(k) ((size_t)2 * (k) * NMF_CD_LANES)
#define NMF_MAX_INNER 4
/* Up to this k the per-lane Gram accumulators (k²/2 vectors) stay in L1/L2 and fusing
 * them into the descent beats a separate dsyrk; beyond it dsyrk's blocking wins. */
#define NMF_FUSE_MAX_K 32
/* Up to this k the Gram matrix is summed per chunk by the fit's threads (a k × k
 * accumulator per part, 512 KiB at the limit); beyond it by one dsyrk. */
#define NMF_GRAM_CHUNK_MAX_K 256
/* Parts of a half-iteration, handed to the threads as each finishes one (par_for_parts):
 * enough that a descheduled thread or a part of heavy rows delays the pass by little, few
 * enough that their partial sums stay small. Fixed, so the sums do not depend on the
 * thread count. */
#define NMF_PARTS 32
/* Power iterations of the range finder: the initialisation only needs the leading
 * subspace roughly (HALS refines it), and each iteration costs two sparse products. */
#define NMF_POWER_ITERS 4

static double nmf_rng_normal(uint64_t *s)
{
    double u1 = ((tf_rng_next(s) >> 11) + 1.0) * 0x1.0p-53;
    double u2 = (tf_rng_next(s) >> 11) * 0x1.0p-53;

    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- small dense helpers ------------------------------------------------------------ */

/* Orthonormalise the columns of the row-major n × l matrix M in place (Householder QR).
 * T is scratch of n × l doubles. */
static int nmf_orthonormalize(double *M, int n, int l, double *T, tf_err *err)
{
    double *tau = NULL, *work = NULL, wq = 0.0;
    int lwork = -1, info = 0, rc = -1;

    /* LAPACK is column-major: the transpose of row-major M is exactly that layout. */
    for (int i = 0; i < n; i++)
        for (int j = 0; j < l; j++)
            T[(size_t)j * n + i] = M[(size_t)i * l + j];
    dgeqrf_(&n, &l, T, &n, NULL, &wq, &lwork, &info);
    lwork = (int)wq;
    dorgqr_(&n, &l, &l, T, &n, NULL, &wq, &(int){ -1 }, &info);
    if ((int)wq > lwork)
        lwork = (int)wq;
    tau = malloc(sizeof(double) * (size_t)l);
    work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    if (!tau || !work) {
        tf_err_set(err, "nmf: out of memory in QR");
        goto fail;
    }
    dgeqrf_(&n, &l, T, &n, tau, work, &lwork, &info);
    if (info == 0)
        dorgqr_(&n, &l, &l, T, &n, tau, work, &lwork, &info);
    if (info != 0) {
        tf_err_set(err, "nmf: LAPACK QR failed (info %d)", info);
        goto fail;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < l; j++)
            M[(size_t)i * l + j] = T[(size_t)j * n + i];
    rc = 0;
fail:
    free(tau);
    free(work);
    return rc;
}

/* Eigen-decomposition of the symmetric l × l matrix S (destroyed) by cyclic Jacobi
 * rotations: on return ev[i] are the eigenvalues sorted descending and column i of V
 * (row-major l × l) the matching eigenvector. l is k + oversampling, so O(l³) per sweep
 * is negligible next to the sparse products. */
static void nmf_jacobi_eigen(double *S, int l, double *V, double *ev)
{
    for (int i = 0; i < l; i++)
        for (int j = 0; j < l; j++)
            V[(size_t)i * l + j] = i == j;
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0.0, diag = 0.0;
        for (int i = 0; i < l; i++) {
            diag += S[(size_t)i * l + i] * S[(size_t)i * l + i];
            for (int j = i + 1; j < l; j++)
                off += S[(size_t)i * l + j] * S[(size_t)i * l + j];
        }
        if (off <= 1e-30 * diag || off == 0.0)
            break;
        for (int p = 0; p < l; p++)
            for (int q = p + 1; q < l; q++) {
                double apq = S[(size_t)p * l + q], app, aqq, theta, t, c, s;
                if (fabs(apq) < 1e-300)
                    continue;
                app = S[(size_t)p * l + p];
                aqq = S[(size_t)q * l + q];
                theta = (aqq - app) / (2.0 * apq);
                t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                c = 1.0 / sqrt(t * t + 1.0);
                s = t * c;
                for (int r = 0; r < l; r++) {
                    double srp = S[(size_t)r * l + p], srq = S[(size_t)r * l + q];
                    S[(size_t)r * l + p] = c * srp - s * srq;
                    S[(size_t)r * l + q] = s * srp + c * srq;
                }
                for (int r = 0; r < l; r++) {
                    double spr = S[(size_t)p * l + r], sqr = S[(size_t)q * l + r];
                    S[(size_t)p * l + r] = c * spr - s * sqr;
                    S[(size_t)q * l + r] = s * spr + c * sqr;
                }
                for (int r = 0; r < l; r++) {
                    double vrp = V[(size_t)r * l + p], vrq = V[(size_t)r * l + q];
                    V[(size_t)r * l + p] = c * vrp - s * vrq;
                    V[(size_t)r * l + q] = s * vrp + c * vrq;
                }
            }
    }
    for (int i = 0; i < l; i++)
        ev[i] = S[(size_t)i * l + i];
    /* Selection sort by eigenvalue, descending, swapping columns of V along. */
    for (int i = 0; i < l; i++) {
        int best = i;
        for (int j = i + 1; j < l; j++)
            if (ev[j] > ev[best])
                best = j;
        if (best != i) {
            double t = ev[i];
            ev[i] = ev[best];
            ev[best] = t;
            for (int r = 0; r < l; r++) {
                t = V[(size_t)r * l + i];
                V[(size_t)r * l + i] = V[(size_t)r * l + best];
                V[(size_t)r * l + best] = t;
            }
        }
    }
}

/* ---- initialisation ----------------------------------------------------------------- */

typedef struct nmf_fit {
    const tf_csr *X;
    tf_csr Xt;
    int32_t docs, terms;
    int k, threads;
    double *W, *H;
    double *P;      /* docs × k: X·W (nmf_error; in the fit only while the plan tiles) */
    double *GW, *GH;
    double *scratch; /* per thread, NMF_CD_SCRATCH(k) doubles for nmf_cd_block */
    double *pbuf;    /* per thread, NMF_CD_CHUNK × k doubles: a chunk's rows of A·B */
    double *acc;     /* per part, NMF_CD_ACC(k) doubles; NULL when k > NMF_FUSE_MAX_K */
    double *gram;    /* per part, k × k doubles; when acc is NULL and k <= NMF_GRAM_CHUNK_MAX_K */
    double cross;    /* Σ (XW)⊙H for the current P and H */
    double xx;
    double flops;
    nmf_batch_result *out; /* per-kernel times and flops; NULL outside nmf_batch_fit */
} nmf_fit;

/* Charge the time since t0 and `flops` operations to one kernel; returns the time now. */
static double nmf_phase_add(nmf_phase *ph, double t0, double flops)
{
    double t = tf_now();

    ph->seconds += t - t0;
    ph->flops += flops;
    return t;
}

/* NNDSVDa (Boutsidis & Gallopoulos, zeros filled with the mean of X) from a rank-k
 * randomized SVD X ≈ U Σ Vᵀ. */
static int nmf_init_nndsvda(nmf_fit *f, uint64_t seed, tf_err *err)
{
    int k = f->k, l = f->k + NMF_OVERSAMPLE;
    int32_t docs = f->docs, terms = f->terms;
    int q = NMF_POWER_ITERS;
    double *Y = NULL, *Z = NULL, *T = NULL, *S = NULL, *V = NULL, *ev = NULL, *U = NULL, *R = NULL;
    spmm_plan *XZ = NULL, *XtY = NULL;
    double mean = 0.0;
    uint64_t rng = seed;
    int rc = -1;

    if (l > docs)
        l = docs;
    if (l > terms)
        l = terms;
    Y = malloc(sizeof(double) * (size_t)docs * l);
    Z = malloc(sizeof(double) * (size_t)terms * l);
    T = malloc(sizeof(double) * (size_t)(docs > terms ? docs : terms) * l);
    S = malloc(sizeof(double) * (size_t)l * l);
    V = malloc(sizeof(double) * (size_t)l * l);
    ev = malloc(sizeof(double) * (size_t)l);
    U = malloc(sizeof(double) * (size_t)docs * l);
    R = malloc(sizeof(double) * (size_t)terms * l);
    if (!Y || !Z || !T || !S || !V || !ev || !U || !R) {
        tf_err_set(err, "nmf: out of memory in the initialisation");
        goto fail;
    }
    /* 2q + 3 products at width l: tiling pays for its copy of X's structure. */
    XZ = spmm_plan_new(f->X, terms, l, err);
    XtY = XZ ? spmm_plan_new(&f->Xt, docs, l, err) : NULL;
    if (!XtY)
        goto fail;
    for (size_t i = 0; i < (size_t)terms * l; i++)
        Z[i] = nmf_rng_normal(&rng);
    spmm_plan_run(XZ, Z, Y, f->threads);
    if (nmf_orthonormalize(Y, docs, l, T, err) < 0)
        goto fail;
    for (int it = 0; it < q; it++) {
        spmm_plan_run(XtY, Y, Z, f->threads);
        if (nmf_orthonormalize(Z, terms, l, T, err) < 0)
            goto fail;
        spmm_plan_run(XZ, Z, Y, f->threads);
        if (nmf_orthonormalize(Y, docs, l, T, err) < 0)
            goto fail;
    }
    f->flops += (2.0 * q + 2.0) * 2.0 * csr_nnz(f->X) * l;
    /* X ≈ Y Zᵀ with Z = Xᵀ Y; ZᵀZ = Ṽ Σ² Ṽᵀ gives U = Y Ṽ and V = Z Ṽ Σ⁻¹. */
    spmm_plan_run(XtY, Y, Z, f->threads);
    nmf_gram_rows(Z, terms, l, S);
    nmf_jacobi_eigen(S, l, V, ev);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, docs, l, l, 1.0, Y, l, V, l, 0.0, U, l);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, terms, l, l, 1.0, Z, l, V, l, 0.0, R, l);

    for (int64_t p = 0; p < csr_nnz(f->X); p++)
        mean += f->X->val[p];
    mean /= (double)docs * (double)terms;
    for (int j = 0; j < k; j++) {
        double sigma = ev[j] > 0.0 ? sqrt(ev[j]) : 0.0;
        double up = 0, un = 0, vp = 0, vn = 0, mp, mn, m, su, sv, scale;
        int neg;
        for (int32_t d = 0; d < docs; d++) {
            double u = U[(size_t)d * l + j];
            if (u > 0)
                up += u * u;
            else
                un += u * u;
        }
        /* R's column is V·σ; the norms below absorb the factor. */
        for (int32_t t = 0; t < terms; t++) {
            double v = R[(size_t)t * l + j];
            if (v > 0)
                vp += v * v;
            else
                vn += v * v;
        }
        up = sqrt(up), un = sqrt(un), vp = sqrt(vp), vn = sqrt(vn);
        mp = up * vp;
        mn = un * vn;
        neg = mn > mp;
        m = neg ? mn : mp;
        su = neg ? un : up;
        sv = neg ? vn : vp;
        /* NNDSVD scales both parts by sqrt(σ_j · ‖u±‖ · ‖v±‖) for unit u, v; R's column is
         * σ_j · v, so that product is exactly m = su · sv here. */
        scale = sigma > 0.0 && su > 0.0 && sv > 0.0 ? sqrt(m) : 0.0;
        for (int32_t d = 0; d < docs; d++) {
            double u = U[(size_t)d * l + j];
            u = neg ? -u : u;
            f->H[(size_t)d * k + j] = u > 0.0 && scale > 0.0 ? scale * u / su : 0.0;
        }
        for (int32_t t = 0; t < terms; t++) {
            double v = R[(size_t)t * l + j];
            v = neg ? -v : v;
            f->W[(size_t)t * k + j] = v > 0.0 && scale > 0.0 ? scale * v / sv : 0.0;
        }
    }
    for (size_t i = 0; i < (size_t)docs * k; i++)
        if (f->H[i] == 0.0)
            f->H[i] = mean;
    for (size_t i = 0; i < (size_t)terms * k; i++)
        if (f->W[i] == 0.0)
            f->W[i] = mean;
    rc = 0;
fail:
    free(Y);
    free(Z);
    free(T);
    free(S);
    free(V);
    free(ev);
    free(U);
    free(R);
    spmm_plan_free(XZ);
    spmm_plan_free(XtY);
    return rc;
}

/* ---- HALS --------------------------------------------------------------------------- */

/* One half-iteration's operands: the rows of Y (H or W) are solved against P = A·B, with
 * A = X and B = W for H, A = Xᵀ and B = H for W. Unless the plan tiles B, P is never
 * stored: each chunk of rows gets its rows of A·B into a per-thread buffer and is solved
 * while they are in L1/L2, which saves writing and re-reading a docs × k matrix and keeps
 * the gathers and the descent in one pass. */
typedef struct nmf_half {
    const tf_csr *A;
    spmm_plan *plan;
    int32_t b_rows;
    double *P;       /* A->n_rows × k when the plan tiles, else NULL */
    int64_t bounds[NMF_PARTS + 1]; /* the parts' rows, balanced by gathers and sweeps */
    int parts;
    int passes;
    nmf_phase *prod, *cd;
} nmf_half;

typedef struct nmf_cd_job {
    const nmf_half *half;
    double *Y;
    const double *B, *G, *inv;
    const double *prescale; /* NULL, or column factors applied to Y before solving */
    double *scratch, *pbuf;              /* per worker */
    double *acc, *gram;                  /* per part; gram k × k when acc is NULL */
    int k, want_cross;
    double cross[NMF_PARTS], t_prod[NMF_PARTS], t_cd[NMF_PARTS];
} nmf_cd_job;

/* Rows scaled and then solved together while they are in cache: a multiple of the lanes,
 * so the lane grouping is the same as one call over the whole range. */
#define NMF_CD_CHUNK (64 * NMF_CD_LANES)

/* G += YᵀY over n rows of Y (upper triangle only), four rows per pass over G so that each
 * load and store of G carries four products. For the k that nmf_cd_block does not fuse:
 * run per chunk while the rows are in cache, by the fit's own threads, it replaces a
 * separate dsyrk whose OpenBLAS threads spin badly when other programs share the cores. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void nmf_gram_chunk(const double *restrict Y, int64_t n, int k, double *restrict G)
{
    int64_t r = 0;

    for (; r + 4 <= n; r += 4) {
        const double *y0 = Y + r * k, *y1 = y0 + k, *y2 = y1 + k, *y3 = y2 + k;
        for (int i = 0; i < k; i++) {
            double a0 = y0[i], a1 = y1[i], a2 = y2[i], a3 = y3[i], *g = G + (size_t)i * k;
            int j = i;
            for (; j + 8 <= k; j += 8)
                for (int u = 0; u < 8; u++)
                    g[j + u] += a0 * y0[j + u] + a1 * y1[j + u] + a2 * y2[j + u] + a3 * y3[j + u];
            for (; j < k; j++)
                g[j] += a0 * y0[j] + a1 * y1[j] + a2 * y2[j] + a3 * y3[j];
        }
    }
    for (; r < n; r++)
        for (int i = 0; i < k; i++)
            nmf_axpy(G + (size_t)i * k + i, Y[r * k + i], Y + r * k + i, k - i);
}

static void nmf_cd_range(void *ctx, int worker, int part, int64_t begin, int64_t end)
{
    nmf_cd_job *job = ctx;
    const nmf_half *h = job->half;
    int k = job->k;
    double *pbuf = job->pbuf + (size_t)worker * NMF_CD_CHUNK * k, t = tf_now(), t1;

    job->cross[part] = job->t_prod[part] = job->t_cd[part] = 0.0;
    for (int64_t c0 = begin; c0 < end; c0 += NMF_CD_CHUNK) {
        int64_t c1 = end - c0 < NMF_CD_CHUNK ? end : c0 + NMF_CD_CHUNK;
        double *Y = job->Y + c0 * k;
        const double *P = h->P ? h->P + c0 * k : pbuf;
        if (!h->P) {
            spmm_rows(h->A, (int32_t)c0, (int32_t)c1, job->B, h->b_rows, k, pbuf, 1);
            t1 = tf_now();
            job->t_prod[part] += t1 - t;
            t = t1;
        }
        if (job->prescale)
            for (int64_t r = 0; r < c1 - c0; r++)
                for (int j = 0; j < k; j++)
                    Y[r * k + j] *= job->prescale[j];
        nmf_cd_block(Y, P, job->G, job->inv, k, c1 - c0, h->passes,
                     job->scratch + (size_t)worker * NMF_CD_SCRATCH(k),
                     job->acc ? job->acc + (size_t)part * NMF_CD_ACC(k) : NULL);
        if (job->want_cross && !job->acc)
            for (size_t i = 0; i < (size_t)(c1 - c0) * k; i++)
                job->cross[part] += P[i] * Y[i];
        if (job->gram)
            nmf_gram_chunk(Y, c1 - c0, k, job->gram + (size_t)part * k * k);
        t1 = tf_now();
        job->t_cd[part] += t1 - t;
        t = t1;
    }
}

typedef struct nmf_cross_job {
    const double *P, *Y;
    double part_sum[PAR_MAX_THREADS];
    int k;
} nmf_cross_job;

static void nmf_cross_range(void *ctx, int part, int64_t begin, int64_t end)
{
    nmf_cross_job *job = ctx;
    double s = 0.0;

    for (size_t i = (size_t)begin * job->k; i < (size_t)end * job->k; i++)
        s += job->P[i] * job->Y[i];
    job->part_sum[part] = s;
}

/* Σ P⊙Y over n × k, partial sums per part added in part order. */
static double nmf_cross(const nmf_fit *f, const double *P, const double *Y, int64_t n)
{
    nmf_cross_job job = { .P = P, .Y = Y, .k = f->k };
    int parts = par_for(n, f->threads, NULL, nmf_cross_range, &job);
    double s = 0.0;

    for (int p = 0; p < parts; p++)
        s += job.part_sum[p];
    return s;
}

/* Y ← h->passes HALS sweeps on min_{Y>=0} ½tr(Y G Yᵀ) − tr(Pᵀ Y) with P = h->A · B, rows
 * in parallel; then gram = YᵀY and, when cross is not NULL, *cross = Σ P⊙Y. The time goes
 * to h->prod and h->cd (a fused pass split by the threads' own clocks), and to the gram
 * and error phases when those run separately. */
static void nmf_half_update(nmf_fit *f, const nmf_half *h, const double *B, double *Y,
                            const double *G, const double *prescale, double *gram,
                            double *cross)
{
    double inv[NMF_MAX_K];
    nmf_cd_job job = { .half = h, .Y = Y, .B = B, .G = G, .inv = inv, .prescale = prescale,
                       .scratch = f->scratch, .acc = f->acc, .pbuf = f->pbuf,
                       .gram = f->acc ? NULL : f->gram, .k = f->k, .want_cross = cross != NULL };
    int64_t n = h->A->n_rows;
    int k = f->k, parts;
    double c = 0.0, t = tf_now(), tp = 0.0, tc = 0.0, wall;
    /* A row's sweep is k² lane products: a dot product with G's row per coordinate. */
    double cd_flops = 2.0 * h->passes * (double)n * k * k;
    double prod_flops = 2.0 * (double)csr_nnz(h->A) * k;

    if (h->P) {
        spmm_plan_run(h->plan, B, h->P, f->threads);
        t = nmf_phase_add(h->prod, t, prod_flops);
        prod_flops = 0.0;
    }
    nmf_inv_diag(G, k, inv);
    if (f->acc)
        memset(f->acc, 0, sizeof(double) * (size_t)h->parts * NMF_CD_ACC(k));
    else if (f->gram)
        memset(f->gram, 0, sizeof(double) * (size_t)h->parts * k * k);
    par_for_parts(h->parts, h->bounds, f->threads, nmf_cd_range, &job);
    parts = h->parts;
    f->flops += cd_flops;
    if (f->acc) {
        memset(gram, 0, sizeof(double) * (size_t)k * k);
        for (int p = 0; p < parts; p++)
            nmf_cd_acc_add(f->acc + (size_t)p * NMF_CD_ACC(k), k, gram, &c);
        cd_flops += (double)n * k * (k + 1);
    } else {
        for (int p = 0; p < parts; p++)
            c += job.cross[p];
    }
    if (job.gram) {
        /* Parts summed in order into the upper triangle, then mirrored. */
        memset(gram, 0, sizeof(double) * (size_t)k * k);
        for (int p = 0; p < parts; p++)
            for (int i = 0; i < k; i++)
                for (int j = i; j < k; j++)
                    gram[(size_t)i * k + j] += job.gram[(size_t)p * k * k + (size_t)i * k + j];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < i; j++)
                gram[(size_t)i * k + j] = gram[(size_t)j * k + i];
        cd_flops += (double)n * k * (k + 1);
    }
    if (cross)
        cd_flops += 2.0 * (double)n * k;
    /* The fused pass's wall time, split in the ratio of the threads' summed times. */
    for (int p = 0; p < parts; p++)
        tp += job.t_prod[p], tc += job.t_cd[p];
    wall = tf_now() - t;
    h->prod->seconds += tp + tc > 0.0 ? wall * tp / (tp + tc) : 0.0;
    h->prod->flops += prod_flops;
    h->cd->seconds += tp + tc > 0.0 ? wall * tc / (tp + tc) : wall;
    h->cd->flops += cd_flops;
    t += wall;
    if (cross)
        *cross = c;
    if (!f->acc && !f->gram) {
        nmf_gram_rows(Y, n, k, gram);
        nmf_phase_add(&f->out->gram, t, (double)n * k * (k + 1));
    }
}

/* ‖X − H Wᵀ‖² = ‖X‖² − 2·Σ (XW)⊙H + Σ (WᵀW)⊙(HᵀH), with P = XW, GW, GH current. */
static double nmf_sq_error(const nmf_fit *f)
{
    double quad = 0.0, e;
    int k = f->k;

    for (size_t i = 0; i < (size_t)k * k; i++)
        quad += f->GW[i] * f->GH[i];
    e = f->xx - 2.0 * f->cross + quad;
    return e > 0.0 ? e : 0.0;
}

typedef struct nmf_scale_job {
    double *M;
    const double *s;
    int k, divide;
} nmf_scale_job;

static void nmf_scale_range(void *ctx, int part, int64_t begin, int64_t end)
{
    const nmf_scale_job *job = ctx;
    int k = job->k;

    (void)part;
    for (int64_t r = begin; r < end; r++)
        for (int j = 0; j < k; j++)
            if (job->s[j] > 0.0) {
                if (job->divide)
                    job->M[r * k + j] /= job->s[j];
                else
                    job->M[r * k + j] *= job->s[j];
            }
}

/* Scale W's columns to unit L2 norm and H's columns inversely: H Wᵀ is unchanged. On
 * entry f->GW holds WᵀW; on return it holds the Gram matrix of the normalised W. norm
 * gets the factors for H (1 for an empty column), which are applied here when scale_h is
 * set and otherwise left to the caller (the next H solve applies them on its way). */
static void nmf_normalize(nmf_fit *f, double *norm, int scale_h)
{
    int k = f->k;
    nmf_scale_job wjob = { .M = f->W, .s = norm, .k = k, .divide = 1 };
    nmf_scale_job hjob = { .M = f->H, .s = norm, .k = k, .divide = 0 };

    for (int j = 0; j < k; j++)
        norm[j] = sqrt(f->GW[(size_t)j * k + j]);
    par_for(f->terms, f->threads, NULL, nmf_scale_range, &wjob);
    if (scale_h)
        par_for(f->docs, f->threads, NULL, nmf_scale_range, &hjob);
    for (int i = 0; i < k; i++)
        for (int j = 0; j < k; j++)
            if (norm[i] > 0.0 && norm[j] > 0.0)
                f->GW[(size_t)i * k + j] /= norm[i] * norm[j];
    for (int j = 0; j < k; j++)
        if (!(norm[j] > 0.0))
            norm[j] = 1.0;
}

/* Passes per half-iteration: repeating the cheap k × k coordinate sweeps while the
 * expensive sparse product is reused pays off when nnz per row is large next to k
 * (Gillis & Glineur's accelerated HALS). A second pass as soon as a row's non-zeros
 * outnumber k, since a gathered non-zero (k flops that often miss cache) then costs more
 * than the sweep: on the Debian corpus (29 non-zeros per document) it took the error at
 * k = 20 and 200 iterations from above scikit-learn's (213.450 vs 213.432) to below it
 * (213.412) for 14 % more CPU time, while at k = 50 it cost 30 % more time per iteration
 * for no better error (207.897 against 207.893 with one pass; scikit-learn 207.900). */
static int nmf_auto_passes(int64_t nnz, int64_t rows, int k)
{
    double ratio = (double)nnz / ((double)rows * k);
    int p = 1 + (ratio >= 1.0) + (int)(ratio / 4.0);

    return p > NMF_MAX_INNER ? NMF_MAX_INNER : p;
}

/* Which half goes first. Both orders are exact block coordinate descent and neither
 * converges faster as such; they lead to different local minima, a few 0.01 % apart in
 * error. On the Debian corpus (50,000 documents, 29.3 non-zeros each), seeds 1-3, the
 * final errors after 200 iterations, topics first / documents first, were
 *   k = 20:  213.4118 / 213.4454, 213.4455 / 213.4455, 213.4154 / 213.4154
 *   k = 50:  207.8933 / 207.9000, 207.8914 / 207.9070, 207.9319 / 207.9189
 *   k = 100: 201.5803 / 201.4693, 201.6664 / 201.5747, 201.5261 / 201.5343
 * so documents first once k is well past a document's length (more coefficients than
 * non-zeros: an H row's problem is underdetermined), topics first below. Empirical, from
 * one corpus and three seeds; scikit-learn's coordinate descent goes documents first. */
static int nmf_auto_docs_first(int64_t nnz, int64_t docs, int k)
{
    return (double)k > 2.0 * (double)nnz / (double)docs;
}

/* The plan for h's product and, when it tiles, the stored P; the cost prefix sums that
 * balance the fused pass: a non-zero gathers a k-wide row that often misses (weighted as
 * k + 32 lane operations), a row costs (passes + 1)·k² in the descent (its sweeps, and
 * its share of the Gram matrix and cross term). -1 when out of
 * memory. */
static int nmf_half_prepare(nmf_half *h, int k, tf_err *err)
{
    int32_t n = h->A->n_rows;
    int64_t *cost;

    if (!(h->plan = spmm_plan_new(h->A, h->b_rows, k, err)))
        return -1;
    if (spmm_plan_tiles(h->plan) > 1 && !(h->P = malloc(sizeof(double) * (size_t)n * k)))
        return -1;
    if (!(cost = malloc(sizeof(int64_t) * ((size_t)n + 1))))
        return -1;
    for (int32_t r = 0; r <= n; r++)
        cost[r] = h->A->row_ptr[r] * (k + 32) + (int64_t)r * (h->passes + 1) * k * k;
    h->parts = par_split(n, NMF_PARTS, cost, h->bounds);
    free(cost);
    return 0;
}

static void nmf_half_free(nmf_half *h)
{
    spmm_plan_free(h->plan);
    free(h->P);
}

nmf_batch_opts nmf_batch_defaults(int k)
{
    return (nmf_batch_opts){ .k = k, .max_iter = 200, .tol = 1e-4, .seed = 0, .threads = 1 };
}

int nmf_batch_fit(const tf_csr *X, const nmf_batch_opts *opts, double *W, double *H,
                  nmf_batch_result *res, tf_err *err)
{
    nmf_fit f = { 0 };
    nmf_batch_result out = { 0 };
    int k = opts ? opts->k : 0;
    int pass_w, pass_h, docs_first, scale_pending = 0, rc = -1;
    nmf_half hw = { 0 }, hh = { 0 }, h0;
    double norm[NMF_MAX_K];
    double t0 = tf_now(), t, prev, cur;

    if (!opts || nmf_check_k(k, err) < 0)
        goto fail;
    if (!X || !W || !H) {
        tf_err_set(err, "nmf_batch_fit: missing matrix or output");
        goto fail;
    }
    if (csr_check(X, err) < 0) {
        tf_err_prefix(err, "nmf_batch_fit");
        goto fail;
    }
    if (X->n_rows < 1 || X->n_cols < 1 || csr_nnz(X) == 0) {
        tf_err_set(err, "nmf_batch_fit: empty matrix (%d x %d, %lld non-zeros)", X->n_rows,
                   X->n_cols, (long long)csr_nnz(X));
        goto fail;
    }
    if (k > X->n_rows || k > X->n_cols) {
        tf_err_set(err, "nmf_batch_fit: k = %d exceeds min(docs, terms) = min(%d, %d)", k,
                   X->n_rows, X->n_cols);
        goto fail;
    }
    f.X = X;
    f.docs = X->n_rows;
    f.terms = X->n_cols;
    f.k = k;
    f.threads = opts->threads < 1 ? 1 : opts->threads;
    f.W = W;
    f.H = H;
    f.out = &out;
    f.xx = csr_sqnorm(X);
    if (csr_transpose(X, &f.Xt, err) < 0)
        goto fail;
    pass_w = opts->inner_passes > 0 ? opts->inner_passes : nmf_auto_passes(csr_nnz(X), f.terms, k);
    pass_h = opts->inner_passes > 0 ? opts->inner_passes : nmf_auto_passes(csr_nnz(X), f.docs, k);
    docs_first = opts->order == NMF_ORDER_DOCS_FIRST ||
                 (opts->order == NMF_ORDER_AUTO && nmf_auto_docs_first(csr_nnz(X), f.docs, k));
    out.docs_first = docs_first;
    out.passes_w = pass_w;
    out.passes_h = pass_h;
    hw = (nmf_half){ .A = &f.Xt, .b_rows = f.docs, .passes = pass_w, .prod = &out.xth, .cd = &out.cd_w };
    hh = (nmf_half){ .A = X, .b_rows = f.terms, .passes = pass_h, .prod = &out.xw, .cd = &out.cd_h };
    f.GW = malloc(sizeof(double) * (size_t)k * k);
    f.GH = malloc(sizeof(double) * (size_t)k * k);
    f.scratch = malloc(sizeof(double) * (size_t)f.threads * NMF_CD_SCRATCH(k));
    f.pbuf = malloc(sizeof(double) * (size_t)f.threads * NMF_CD_CHUNK * k);
    if (!f.GW || !f.GH || !f.scratch || !f.pbuf ||
        (k <= NMF_FUSE_MAX_K && !(f.acc = malloc(sizeof(double) * NMF_PARTS * NMF_CD_ACC(k)))) ||
        (k > NMF_FUSE_MAX_K && k <= NMF_GRAM_CHUNK_MAX_K &&
         !(f.gram = malloc(sizeof(double) * NMF_PARTS * k * k))) ||
        nmf_half_prepare(&hw, k, err) < 0 || nmf_half_prepare(&hh, k, err) < 0) {
        tf_err_set(err, "nmf_batch_fit: out of memory (%d x %d, k = %d)", f.docs, f.terms, k);
        goto fail;
    }
    t = tf_now();
    if (nmf_init_nndsvda(&f, opts->seed, err) < 0)
        goto fail;
    nmf_gram_rows(W, f.terms, k, f.GW);
    nmf_normalize(&f, norm, 1);
    /* The initial error: an H half without sweeps gives HᵀH and Σ (XW)⊙H. */
    h0 = hh;
    h0.passes = 0;
    h0.prod = h0.cd = &out.init;
    nmf_phase_add(&out.init, t, f.flops);
    nmf_half_update(&f, &h0, W, H, f.GW, NULL, f.GH, &f.cross);
    prev = sqrt(nmf_sq_error(&f));
    out.init_error = prev;
    out.x_norm = sqrt(f.xx);
    out.seconds_init = tf_now() - t0;
    out.error = prev;
    if (opts->progress && opts->progress(opts->progress_ctx, 0, opts->max_iter, prev))
        goto done;

    t0 = tf_now();
    for (int it = 1; it <= opts->max_iter; it++) {
        if (docs_first) {
            /* H half, against the last normalised W (its scale applied on the way). */
            nmf_half_update(&f, &hh, W, H, f.GW, scale_pending ? norm : NULL, f.GH, NULL);
            /* W half; its product gives the error's cross term, Σ (XᵀH)⊙W = Σ (XW)⊙H. */
            nmf_half_update(&f, &hw, H, W, f.GH, NULL, f.GW, &f.cross);
            t = tf_now();
            cur = sqrt(nmf_sq_error(&f));
            t = nmf_phase_add(&out.err, t, 2.0 * k * k);
            /* H's share of the scale waits for the next H half (or the end of the fit). */
            nmf_normalize(&f, norm, 0);
            scale_pending = 1;
            nmf_phase_add(&out.cd_w, t, (double)f.terms * k);
        } else {
            /* W half: min over W >= 0 of ‖X − H Wᵀ‖², rows of W independent given HᵀH. */
            nmf_half_update(&f, &hw, H, W, f.GH, NULL, f.GW, NULL);
            t = tf_now();
            nmf_normalize(&f, norm, 0);
            nmf_phase_add(&out.cd_w, t, (double)f.terms * k);
            /* H half, against the normalised W; the solve scales H to match first. */
            nmf_half_update(&f, &hh, W, H, f.GW, norm, f.GH, &f.cross);
            t = tf_now();
            cur = sqrt(nmf_sq_error(&f));
            nmf_phase_add(&out.err, t, 2.0 * k * k);
        }
        f.flops += 4.0 * csr_nnz(X) * k + (double)(f.docs + f.terms) * k * k + 2.0 * f.docs * k;
        out.iterations = it;
        out.error = cur;
        if (opts->progress && opts->progress(opts->progress_ctx, it, opts->max_iter, cur))
            break;
        if (opts->tol > 0.0 && prev > 0.0 && (prev - cur) / prev < opts->tol)
            break;
        prev = cur;
    }
    if (scale_pending) {
        /* The last normalisation's scale, which the next H half would have applied: without
         * it H Wᵀ would not be the product whose error was reported. */
        nmf_scale_job hjob = { .M = H, .s = norm, .k = k, .divide = 0 };
        t = tf_now();
        par_for(f.docs, f.threads, NULL, nmf_scale_range, &hjob);
        nmf_phase_add(&out.cd_w, t, (double)f.docs * k);
    }
    out.seconds_iter = tf_now() - t0;
done:
    out.flops = f.flops;
    if (res)
        *res = out;
    rc = 0;
fail:
    nmf_half_free(&hw);
    nmf_half_free(&hh);
    csr_free(&f.Xt);
    free(f.GW);
    free(f.GH);
    free(f.scratch);
    free(f.pbuf);
    free(f.acc);
    free(f.gram);
    return rc;
}

int nmf_error(const tf_csr *X, const double *W, int32_t n_terms, const double *H, int k,
              int threads, double *error, tf_err *err)
{
    nmf_fit f = { 0 };
    int rc = -1;

    if (nmf_check_k(k, err) < 0)
        return -1;
    if (!X || csr_check(X, err) < 0)
        return tf_err_prefix(err, "nmf_error");
    f.docs = X->n_rows;
    f.k = k;
    f.threads = threads < 1 ? 1 : threads;
    f.H = (double *)H;
    f.xx = csr_sqnorm(X);
    f.P = malloc(sizeof(double) * ((size_t)X->n_rows * k + 1));
    f.GW = malloc(sizeof(double) * (size_t)k * k);
    f.GH = malloc(sizeof(double) * (size_t)k * k);
    if (!f.P || !f.GW || !f.GH) {
        tf_err_set(err, "nmf_error: out of memory");
        goto fail;
    }
    spmm(X, W, n_terms, k, f.P, threads);
    /* Terms beyond n_terms are absent from W, so they add only to ‖X‖². */
    nmf_gram_rows(W, n_terms, k, f.GW);
    nmf_gram_rows(H, X->n_rows, k, f.GH);
    f.cross = nmf_cross(&f, f.P, H, f.docs);
    *error = sqrt(nmf_sq_error(&f));
    rc = 0;
fail:
    free(f.P);
    free(f.GW);
    free(f.GH);
    return rc;
}
