/*
 * nmf.h - the NMF topic engine: X ≈ W·H with W (terms × k) >= 0 and H (k × docs) >= 0.
 *
 * Layout: every dense matrix is row-major double. W is stored terms × k (W[t*k + j] is
 * the weight of term t in topic j); H is stored docs × k (H[d*k + j], i.e. Hᵀ), so one
 * document's mixture is contiguous. Documents arrive as a tf_csr, docs × terms.
 * Normalization: topic columns of W have unit L2 norm after a batch fit and L2 norm <= 1
 * after an online refresh (the projection that keeps the refresh a descent step); the
 * scale lives in H. Fold-in, refresh and batch share one non-negative least-squares
 * kernel (coordinate descent on a k × k Gram matrix). Kernels are pure: no I/O.
 */
#ifndef TF_NMF_H
#define TF_NMF_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/csr.h"

#define NMF_MAX_K 4096

/* ---- fold-in (stream path) ---------------------------------------------------------- */

typedef struct nmf_fold_opts {
    int max_sweeps;   /* coordinate sweeps per document (cap); default 200 */
    double tol;       /* stop when the KKT violation <= tol · max_j p_j; default 1e-6 */
} nmf_fold_opts;

typedef struct nmf_fold_info {
    int64_t sweeps;        /* total sweeps over all documents */
    int32_t capped;        /* documents that hit max_sweeps before tol */
    double max_violation;  /* largest final relative KKT violation over the batch */
} nmf_fold_info;

/* Defaults used when a NULL nmf_fold_opts is passed. */
nmf_fold_opts nmf_fold_defaults(void);

/* The (at most) `top` heaviest terms of topic j of W (n_terms × k), heaviest first, among
 * the weights >= min_weight (0 excluded either way): their ids, and their weights into w
 * when w is not NULL. Returns how many. Topic lists, their stored names and coherence all
 * pick terms this one way. */
int nmf_top_terms(const double *W, int32_t n_terms, int k, int j, int top, double min_weight,
                  int32_t *ids, double *w);

/* G = WᵀW (k × k, full symmetric), the Gram matrix shared by every fold-in against the
 * same W: compute it once per model version. */
int nmf_gram(const double *W, int32_t n_terms, int k, double *G, tf_err *err);

/* H (X->n_rows × k) = argmin_{H >= 0} ‖X − H Wᵀ‖_F row by row: each document's h solves
 * min_{h>=0} ½hᵀGh − pᵀh with p = Wᵀx. Terms >= n_terms are unknown to the model and
 * ignored. A document without known terms gets h = 0. Stops per document when the KKT
 * violation max_j |min(h_j, (Gh − p)_j)| is <= tol · max_j p_j. Single-threaded; info may
 * be NULL. Returns 0, or -1 (k out of range, empty batch, malformed X) with err set. */
int nmf_fold_in(const double *W, int32_t n_terms, int k, const double *G, const tf_csr *X,
                const nmf_fold_opts *opts, double *H, nmf_fold_info *info, tf_err *err);

/* ---- sufficient statistics (online update) ------------------------------------------ */

/* A = Σ h hᵀ (k × k) and B = Σ x hᵀ (n_terms × k, row-major) over the documents the model
 * has seen. Doubles: they are sums over millions of documents that must also subtract
 * exactly (retraction), which float cannot do (see nmf.c). Opaque; the arrays are read
 * through the accessors and are valid until the next mutating call. */
typedef struct nmf_stats nmf_stats;

nmf_stats *nmf_stats_new(int k, int32_t n_terms, tf_err *err);
void nmf_stats_free(nmf_stats *s);
int nmf_stats_k(const nmf_stats *s);
int32_t nmf_stats_n_terms(const nmf_stats *s);
const double *nmf_stats_A(const nmf_stats *s);
const double *nmf_stats_B(const nmf_stats *s);
/* Writable views, for loading stored statistics. */
double *nmf_stats_A_mut(nmf_stats *s);
double *nmf_stats_B_mut(nmf_stats *s);
/* Set A and B to zero. */
void nmf_stats_clear(nmf_stats *s);

/* Extend B to n_terms rows; new rows are zero. Never shrinks. */
int nmf_stats_grow(nmf_stats *s, int32_t n_terms, tf_err *err);

/* A += sign·Σ h hᵀ, B += sign·Σ x hᵀ over the rows of X with mixtures H (X->n_rows × k).
 * sign = +1 adds documents, −1 retracts them (an update or delete retracts the stored
 * old x and h). B grows to X->n_cols if needed. */
int nmf_stats_add(nmf_stats *s, const tf_csr *X, const double *H, double sign, tf_err *err);

/* ---- deltas (what one worker mini-batch writes) ------------------------------------- */

/* The same statistics restricted to the terms a mini-batch touched: ΔA dense (k × k) and
 * ΔB as one row per touched term id, in first-touch order. Compact enough to store one
 * per batch (a dense ΔB would be n_terms × k). */
typedef struct nmf_delta nmf_delta;

nmf_delta *nmf_delta_new(int k, tf_err *err);
void nmf_delta_free(nmf_delta *d);
void nmf_delta_clear(nmf_delta *d);
int nmf_delta_k(const nmf_delta *d);
/* Accumulate sign·(h hᵀ, x hᵀ) over the rows of X, like nmf_stats_add. */
int nmf_delta_add(nmf_delta *d, const tf_csr *X, const double *H, double sign, tf_err *err);
/* Accumulate raw parts: A += sign·dA (k × k, may be NULL), and for i < n_rows
 * B[terms[i]] += sign·rows[i*k ..]. Used by decoders and to merge deltas. */
int nmf_delta_add_raw(nmf_delta *d, const double *dA, int32_t n_rows, const int32_t *terms,
                      const double *rows, double sign, tf_err *err);
const double *nmf_delta_A(const nmf_delta *d);
/* Touched terms and their ΔB rows (n × k, same order). The pointers are valid until the
 * next mutating call. */
int32_t nmf_delta_n_rows(const nmf_delta *d);
const int32_t *nmf_delta_terms(const nmf_delta *d);
const double *nmf_delta_rows(const nmf_delta *d);

/* The documents form: while a delta was made only by nmf_delta_add since it was created or
 * cleared, it keeps each call's inputs (sign, X, H), which is what a delta blob stores
 * when that is smaller than the ΔB rows (a few similar documents touch many terms: 4.5
 * sample postings, 350 rows of k doubles vs 4.5 rows of k doubles and 78 non-zeros each).
 * nmf_delta_n_parts is -1 once raw rows were added; part i's pointers are valid until
 * the next mutating call. */
int64_t nmf_delta_n_parts(const nmf_delta *d);
void nmf_delta_part(const nmf_delta *d, size_t i, double *sign, const tf_csr **X,
                    const double **H);

/* s += d (B grows to cover d's largest term id). */
int nmf_stats_apply(nmf_stats *s, const nmf_delta *d, tf_err *err);

/* ---- W refresh ---------------------------------------------------------------------- */

/* A few HALS passes on min_W ½tr(W A Wᵀ) − tr(Bᵀ W) s.t. W >= 0, ‖W[:,j]‖₂ <= 1, the
 * online NMF surrogate built from the statistics. Column update
 *   W[:,j] ← P(W[:,j] + (B[:,j] − W A[:,j]) / A[j,j]),  P = clamp at 0, then scale to norm <= 1,
 * with the residual B − W A formed once per pass by dgemm and kept current by rank-1
 * updates. Columns with A[j,j] == 0 (topics no document uses) are left unchanged. W must
 * have nmf_stats_n_terms(s) rows (see nmf_w_resize). keep, when not NULL, has one byte per
 * term: rows whose byte is 0 are held at zero (terms outside the model's vocabulary; the
 * projection onto that constraint). Never increases the surrogate. */
int nmf_refresh(double *W, int32_t n_terms, int k, const nmf_stats *s, int passes,
                const uint8_t *keep, tf_err *err);

/* Reallocate *W from old_terms to new_terms rows (k columns); new rows are zero. */
int nmf_w_resize(double **W, int32_t old_terms, int32_t new_terms, int k, tf_err *err);

/* ---- batch fit (refit path) --------------------------------------------------------- */

/* The order of the two halves of an iteration. AUTO updates the documents' mixtures (H)
 * first when k exceeds twice the mean number of non-zeros per document, else the topics
 * (W) first (see nmf_batch.c for the measurements behind it). */
enum { NMF_ORDER_AUTO = 0, NMF_ORDER_DOCS_FIRST = 1, NMF_ORDER_TOPICS_FIRST = 2 };

/* Called after the initialisation (iter 0) and after every iteration with the current
 * Frobenius error ‖X − H Wᵀ‖_F (exact). Return non-zero to stop early: the fit then ends
 * successfully at that iteration. */
typedef int (*nmf_progress_fn)(void *ctx, int iter, int max_iter, double error);

typedef struct nmf_batch_opts {
    int k;
    int max_iter;        /* outer iterations; default 200 */
    double tol;          /* stop when the relative error decrease of one iteration < tol; 0 = never */
    uint64_t seed;       /* for the randomized SVD of the initialisation */
    int threads;         /* for our own kernels; OpenBLAS threads are the caller's setting */
    int inner_passes;    /* coordinate passes per half-iteration; 0 = chosen from nnz/k */
    int order;           /* NMF_ORDER_*: which factor each iteration updates first */
    nmf_progress_fn progress;
    void *progress_ctx;
} nmf_batch_opts;

/* Wall time and floating-point operations of one kernel of the fit, summed over the
 * iterations (tf_now() around each call: a few clock reads per iteration). */
typedef struct nmf_phase {
    double seconds;
    double flops;
} nmf_phase;

typedef struct nmf_batch_result {
    int iterations;      /* outer iterations done */
    int docs_first;      /* 1 when each iteration updated H before W */
    int passes_w, passes_h; /* coordinate sweeps per half-iteration */
    double error;        /* ‖X − H Wᵀ‖_F at the end, exact (not sampled) */
    double x_norm;       /* ‖X‖_F */
    double init_error;   /* after NNDSVDa */
    double seconds_init; /* wall time of the initialisation */
    double seconds_iter; /* wall time of the iterations */
    double flops;        /* floating-point operations done, for GFLOP/s reports */
    /* Where the time went. init is the NNDSVDa initialisation (within seconds_init, which
     * also holds the set-up: transposing and planning); the others split seconds_iter.
     * gram is the k × k Gram matrices WᵀW and HᵀH when they run as dsyrk (k > 256); for
     * smaller k they are accumulated inside the coordinate descent's pass and counted in
     * cd_w and cd_h, like the error's cross term. err is the rest of the exact error (the
     * k² sum). xw and xth share a fused pass with cd_h and cd_w: its wall time is split
     * in the ratio of the threads' own clocks. */
    nmf_phase init, xw, xth, gram, cd_w, cd_h, err;
} nmf_batch_result;

nmf_batch_opts nmf_batch_defaults(int k);

/* Fit X (docs × terms) ≈ H Wᵀ: NNDSVDa initialisation from a randomized truncated SVD,
 * then alternating HALS updates of W and H (in opts->order). W (X->n_cols × k) and H (X->n_rows × k) are
 * caller-allocated outputs; W's columns end with unit L2 norm. Deterministic for a given
 * seed (and OpenBLAS thread setting): opts->threads does not change the result. The error never increases from one iteration to the next.
 * Returns 0, or -1 with err set (k < 1, k > min(docs, terms), X empty or malformed, no
 * memory). res may be NULL. */
int nmf_batch_fit(const tf_csr *X, const nmf_batch_opts *opts, double *W, double *H,
                  nmf_batch_result *res, tf_err *err);

/* ‖X − H Wᵀ‖_F computed exactly as sqrt(‖X‖² − 2·tr(Hᵀ X W) + tr(WᵀW HᵀH)). */
int nmf_error(const tf_csr *X, const double *W, int32_t n_terms, const double *H, int k,
              int threads, double *error, tf_err *err);

#endif
