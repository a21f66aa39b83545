/*
 * nmf_kernel.h - the non-negative least-squares kernel shared by fold-in, the batch fit
 * and (through the same update rule) the refresh. Private to the engine's .c files.
 */
#ifndef TF_NMF_KERNEL_H
#define TF_NMF_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* y += a·x over k entries, written in fixed 8-wide blocks so that -O2 vectorizes it. */
static inline void nmf_axpy(double *restrict y, double a, const double *restrict x, int k)
{
    int l = 0;

    for (; l + 8 <= k; l += 8)
        for (int u = 0; u < 8; u++)
            y[l + u] += a * x[l + u];
    for (; l < k; l++)
        y[l] += a * x[l];
}

/* Coordinate descent on min_{y>=0} ½yᵀGy − pᵀy (G k × k symmetric PSD), from y in place.
 * Each coordinate step is the exact minimiser along that coordinate (a HALS step), so
 * the objective never increases. inv_diag[j] = 1 / G[j][j], or 0 where G[j][j] == 0
 * (see nmf_inv_diag). g (k doubles) is scratch: on return it holds G y − p.
 * Runs at most max_sweeps sweeps, stopping early when the KKT residual
 * max_j |min(y_j, g_j)| <= tol · scale. Returns the sweeps done; *viol gets the residual. */
int nmf_cd_solve(double *restrict y, const double *restrict p, const double *restrict G,
                 const double *restrict inv_diag, int k, int max_sweeps, double tol, double scale,
                 double *restrict g, double *viol);

/* Rows that nmf_cd_block solves together, one per vector lane. */
#define NMF_CD_LANES 8

/* Exactly `sweeps` cyclic coordinate sweeps on n independent problems
 * min_{y>=0} ½yᵀGy − p_rᵀy, row r of Y (n × k) updated in place from row r of P: the
 * steps of nmf_cd_solve with tol = 0, so each is an exact coordinate minimisation and no
 * row's objective increases. Rows go NMF_CD_LANES at a time with one row per vector lane:
 * a single row's k steps form a serial chain (each step's gradient needs the coordinates
 * the previous steps wrote), and eight independent chains keep the vector units busy where
 * one cannot. Each gradient is a fresh dot product with G's row (see nmf.c), so a sweep
 * costs k² lane products and nothing is kept between calls.
 * scratch holds 2 · k · NMF_CD_LANES doubles. A row's result does not depend on its
 * neighbours, so any split of the rows gives bit-identical output.
 * acc, when not NULL (NMF_CD_ACC(k) doubles, zeroed by the caller before the first
 * block), accumulates lane by lane the Gram matrix YᵀY of the updated rows (upper
 * triangle, packed by rows) and Σ P⊙Y; nmf_cd_acc_add folds it into a k × k matrix.
 * The sums depend on which rows share a lane, so they are reproducible for a fixed split
 * of the rows, not across splits. */
#define NMF_CD_ACC(k) (((size_t)(k) * ((k) + 1) / 2 + 1) * NMF_CD_LANES)
void nmf_cd_block(double *restrict Y, const double *restrict P, const double *restrict G,
                  const double *restrict inv_diag, int k, int64_t n, int sweeps,
                  double *restrict scratch, double *restrict acc);

/* G += the Gram matrix held in acc (full symmetric), *cross += the Σ P⊙Y it holds. Lanes
 * are summed in a fixed order. */
static inline void nmf_cd_acc_add(const double *acc, int k, double *G, double *cross)
{
    size_t t = 0;

    for (int i = 0; i < k; i++)
        for (int j = i; j < k; j++, t++) {
            double s = 0.0;
            for (int l = 0; l < NMF_CD_LANES; l++)
                s += acc[t * NMF_CD_LANES + l];
            G[(size_t)i * k + j] += s;
            if (j != i)
                G[(size_t)j * k + i] += s;
        }
    for (int l = 0; l < NMF_CD_LANES; l++)
        *cross += acc[t * NMF_CD_LANES + l];
}

/* inv[j] = 1 / G[j][j] (0 where the diagonal is not positive: a topic without mass). */
static inline void nmf_inv_diag(const double *G, int k, double *inv)
{
    for (int j = 0; j < k; j++)
        inv[j] = G[(size_t)j * k + j] > 0.0 ? 1.0 / G[(size_t)j * k + j] : 0.0;
}

/* 0 when 1 <= k <= NMF_MAX_K, else -1 with err set. */
int nmf_check_k(int k, tf_err *err);

/* Gram matrix G = MᵀM of a row-major n × k matrix, full symmetric (dsyrk + mirror). */
void nmf_gram_rows(const double *M, int64_t n, int k, double *G);

#endif
