/*
 * bench/nmf.c - bench-nmf: batch refit and fold-in speed of the NMF engine, beside the
 * OpenBLAS gemm peak and (when /usr/bin/python3 has scikit-learn) sklearn's NMF on the
 * identical matrix. Input: a synthetic corpus of realistic shape (Zipf terms, planted
 * topics, sublinear tf·idf, L2 rows) or --matrix FILE.mtx (docs × terms, used as given).
 * The last line is machine-readable: fit_seconds=… error=… relative_error=…
 */
#include "base/lifecycle.h"
#include "base/rng.h"
#include "engine/csr.h"
#include "engine/nmf.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "bench"
#endif

typedef struct bench_opts {
    int k, iters, threads;
    uint64_t seed;
    int32_t docs, terms;
    const char *matrix;
    int sklearn;
} bench_opts;

/* Index drawn from a cumulative distribution of n entries. */
static int32_t draw(const double *cdf, int32_t n, double u)
{
    int32_t lo = 0, hi = n - 1;
    u *= cdf[n - 1];
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#define PLANTED 30
#define TOPIC_TERMS 600

/* Documents mix 1-3 of PLANTED topics (each a Zipf law over its own random terms) with
 * a Zipf background over the whole vocabulary; ~110 tokens give ~80 distinct terms. */
static int make_corpus(const bench_opts *o, tf_csr *X)
{
    uint64_t rng = o->seed * 7919 + 1;
    int32_t T = o->terms, D = o->docs;
    double *bg = malloc(sizeof(double) * T), *tcdf = malloc(sizeof(double) * TOPIC_TERMS);
    int32_t *topic_terms = malloc(sizeof(int32_t) * PLANTED * TOPIC_TERMS);
    int32_t *count = calloc(T, sizeof(int32_t)), *touched = malloc(sizeof(int32_t) * 512);
    int32_t *df = calloc(T, sizeof(int32_t));
    int64_t cap = (int64_t)D * 100, nnz = 0;
    tf_err err;

    if (!bg || !tcdf || !topic_terms || !count || !touched || !df ||
        csr_alloc(X, D, T, cap, &err) < 0)
        return -1;
    for (int32_t t = 0; t < T; t++)
        bg[t] = (t ? bg[t - 1] : 0.0) + 1.0 / pow(t + 1.0, 1.07);
    for (int i = 0; i < TOPIC_TERMS; i++)
        tcdf[i] = (i ? tcdf[i - 1] : 0.0) + 1.0 / pow(i + 1.0, 0.9);
    /* Topic terms are drawn from the background law, so frequent words are shared. */
    for (int j = 0; j < PLANTED; j++)
        for (int i = 0; i < TOPIC_TERMS; i++)
            topic_terms[j * TOPIC_TERMS + i] =
                tf_rng_unit(&rng) < 0.5 ? draw(bg, T, tf_rng_unit(&rng)) : (int32_t)(tf_rng_next(&rng) % T);
    for (int32_t d = 0; d < D; d++) {
        int nt = 1 + (int)(tf_rng_next(&rng) % 3), topics[3];
        int tokens = 80 + (int)(tf_rng_next(&rng) % 60), n = 0;
        for (int i = 0; i < nt; i++)
            topics[i] = (int)(tf_rng_next(&rng) % PLANTED);
        for (int i = 0; i < tokens; i++) {
            int32_t t;
            if (tf_rng_unit(&rng) < 0.25)
                t = draw(bg, T, tf_rng_unit(&rng));
            else
                t = topic_terms[topics[tf_rng_next(&rng) % nt] * TOPIC_TERMS + draw(tcdf, TOPIC_TERMS, tf_rng_unit(&rng))];
            if (count[t]++ == 0 && n < 512)
                touched[n++] = t;
        }
        if (nnz + n > cap)
            break;
        for (int i = 0; i < n; i++) {
            X->col_idx[nnz + i] = touched[i];
            X->val[nnz + i] = (float)(1.0 + log(count[touched[i]]));
            df[touched[i]]++;
            count[touched[i]] = 0;
        }
        nnz += n;
        X->row_ptr[d + 1] = nnz;
    }
    for (int32_t d = 0; d < D; d++) {
        double norm = 0.0;
        for (int64_t p = X->row_ptr[d]; p < X->row_ptr[d + 1]; p++) {
            X->val[p] *= (float)log((double)D / (1.0 + df[X->col_idx[p]]) + 1.0);
            norm += (double)X->val[p] * X->val[p];
        }
        norm = norm > 0.0 ? 1.0 / sqrt(norm) : 0.0;
        for (int64_t p = X->row_ptr[d]; p < X->row_ptr[d + 1]; p++)
            X->val[p] = (float)(X->val[p] * norm);
    }
    free(bg);
    free(tcdf);
    free(topic_terms);
    free(count);
    free(touched);
    free(df);
    return 0;
}

static int read_mtx(const char *path, tf_csr *X)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    long rows, cols, n;
    int32_t *ri = NULL, *ci = NULL;
    float *v = NULL;
    tf_err err;
    int rc = -1;

    if (!f) {
        perror(path);
        return -1;
    }
    if (!fgets(line, sizeof(line), f) || strncmp(line, "%%MatrixMarket matrix coordinate", 32) != 0 ||
        (!strstr(line, "real") && !strstr(line, "integer")) || !strstr(line, "general")) {
        fprintf(stderr, "%s: need a Matrix Market 'coordinate real general' file\n", path);
        goto done;
    }
    do {
        if (!fgets(line, sizeof(line), f))
            goto done;
    } while (line[0] == '%');
    if (sscanf(line, "%ld %ld %ld", &rows, &cols, &n) != 3 || rows < 1 || cols < 1 || n < 0 ||
        rows > INT32_MAX || cols > INT32_MAX) {
        fprintf(stderr, "%s: bad size line\n", path);
        goto done;
    }
    ri = malloc(sizeof(int32_t) * (n ? n : 1));
    ci = malloc(sizeof(int32_t) * (n ? n : 1));
    v = malloc(sizeof(float) * (n ? n : 1));
    if (!ri || !ci || !v || csr_alloc(X, (int32_t)rows, (int32_t)cols, n, &err) < 0)
        goto done;
    for (long i = 0; i < n; i++) {
        long r, c;
        double x;
        if (fscanf(f, "%ld %ld %lf", &r, &c, &x) != 3 || r < 1 || r > rows || c < 1 || c > cols) {
            fprintf(stderr, "%s: bad entry %ld\n", path, i + 1);
            csr_free(X);
            goto done;
        }
        ri[i] = (int32_t)(r - 1);
        ci[i] = (int32_t)(c - 1);
        v[i] = (float)x;
        X->row_ptr[r]++;
    }
    for (int32_t r = 0; r < X->n_rows; r++)
        X->row_ptr[r + 1] += X->row_ptr[r];
    {
        int64_t *next = malloc(sizeof(int64_t) * (size_t)X->n_rows);
        memcpy(next, X->row_ptr, sizeof(int64_t) * (size_t)X->n_rows);
        for (long i = 0; i < n; i++) {
            int64_t q = next[ri[i]]++;
            X->col_idx[q] = ci[i];
            X->val[q] = v[i];
        }
        free(next);
    }
    rc = 0;
done:
    free(ri);
    free(ci);
    free(v);
    fclose(f);
    return rc;
}

static int write_mtx(const char *path, const tf_csr *X)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fprintf(f, "%%%%MatrixMarket matrix coordinate real general\n%d %d %lld\n", X->n_rows,
            X->n_cols, (long long)csr_nnz(X));
    for (int32_t r = 0; r < X->n_rows; r++)
        for (int64_t p = X->row_ptr[r]; p < X->row_ptr[r + 1]; p++)
            fprintf(f, "%d %d %.9g\n", r + 1, X->col_idx[p] + 1, (double)X->val[p]);
    return fclose(f);
}

/* Best-of-3 GFLOP/s of an n³ gemm, double or single. */
static double gemm_peak(int n, int single)
{
    double best = 0.0;
    size_t sz = (size_t)n * n;
    void *a = malloc(sz * 8), *b = malloc(sz * 8), *c = malloc(sz * 8);

    for (size_t i = 0; i < sz; i++) {
        ((double *)a)[i] = 1.0 / (1 + i % 7);
        ((double *)b)[i] = 1.0 / (1 + i % 5);
    }
    if (single)
        for (size_t i = 0; i < sz; i++) {
            ((float *)a)[i] = 1.0f / (1 + i % 7);
            ((float *)b)[i] = 1.0f / (1 + i % 5);
        }
    for (int rep = 0; rep < 4; rep++) {
        double t = tf_now(), g;
        if (single)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
        g = 2.0 * n * n * (double)n / (tf_now() - t) * 1e-9;
        if (rep > 0 && g > best) /* the first call warms up threads and pages */
            best = g;
    }
    free(a);
    free(b);
    free(c);
    return best;
}

static int run_sklearn(const bench_opts *o, const tf_csr *X, double *seconds, double *error)
{
    char path[] = "/tmp/bench-nmf-XXXXXX.mtx", cmd[1024], line[512];
    int fd = mkstemps(path, 4), ok = 0;
    FILE *p;

    if (fd < 0)
        return -1;
    close(fd);
    if (write_mtx(path, X) != 0) {
        unlink(path);
        return -1;
    }
    /* The peer gets the same thread budget as we do. */
    snprintf(cmd, sizeof(cmd),
             "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d /usr/bin/python3 %s/nmf_sklearn.py %s %d %d %llu",
             o->threads, o->threads, BENCH_SOURCE_DIR, path, o->k, o->iters,
             (unsigned long long)o->seed);
    p = popen(cmd, "r");
    while (p && fgets(line, sizeof(line), p))
        if (sscanf(line, "sklearn_seconds=%lf sklearn_error=%lf", seconds, error) == 2)
            ok = 1;
    if (p)
        pclose(p);
    unlink(path);
    return ok ? 0 : -1;
}

static int has_sklearn(void)
{
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import sklearn, scipy' >/dev/null 2>&1") == 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-nmf [--k N] [--iters N] [--threads N] [--seed N] [--docs N] "
                    "[--terms N] [--matrix FILE.mtx] [--no-sklearn]\n");
}

int main(int argc, char **argv)
{
    bench_opts o = { .k = 20, .iters = 200, .threads = 2, .seed = 1, .docs = 50000,
                     .terms = 20000, .matrix = NULL, .sklearn = 1 };
    tf_csr X = { 0 };
    nmf_batch_opts bo;
    nmf_batch_result res;
    tf_err err = { 0 };
    double *W, *H, *G, *Hf, dpeak, speak, fit_s, fold_s, sk_s = 0, sk_e = 0;
    int32_t fold_docs;
    nmf_fold_info info;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-sklearn")) {
            o.sklearn = 0;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "--k"))
            o.k = atoi(v);
        else if (!strcmp(a, "--iters"))
            o.iters = atoi(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--docs"))
            o.docs = atoi(v);
        else if (!strcmp(a, "--terms"))
            o.terms = atoi(v);
        else if (!strcmp(a, "--matrix"))
            o.matrix = v;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (o.k < 1 || o.iters < 1 || o.threads < 1 || o.docs < 1 || o.terms < 1) {
        usage();
        return 2;
    }
    openblas_set_num_threads(o.threads);
    if (o.matrix ? read_mtx(o.matrix, &X) : make_corpus(&o, &X)) {
        fprintf(stderr, "bench-nmf: cannot build the input matrix\n");
        return 1;
    }
    printf("input: %s, %d docs x %d terms, %lld non-zeros (%.1f per doc)\n",
           o.matrix ? o.matrix : "synthetic", X.n_rows, X.n_cols, (long long)csr_nnz(&X),
           (double)csr_nnz(&X) / X.n_rows);
    printf("k=%d iters=%d threads=%d seed=%llu (2-core machine shared with other builds: "
           "timings are noisy)\n", o.k, o.iters, o.threads, (unsigned long long)o.seed);

    W = malloc(sizeof(double) * (size_t)X.n_cols * o.k);
    H = malloc(sizeof(double) * (size_t)X.n_rows * o.k);
    G = malloc(sizeof(double) * (size_t)o.k * o.k);
    bo = nmf_batch_defaults(o.k);
    bo.max_iter = o.iters;
    bo.tol = 0.0;
    bo.seed = o.seed;
    bo.threads = o.threads;
    if (nmf_batch_fit(&X, &bo, W, H, &res, &err) < 0) {
        fprintf(stderr, "bench-nmf: %s\n", err.msg);
        return 1;
    }
    fit_s = res.seconds_init + res.seconds_iter;

    /* Fold-in on one thread, the stream path's unit of work. */
    fold_docs = X.n_rows < 20000 ? X.n_rows : 20000;
    Hf = malloc(sizeof(double) * (size_t)fold_docs * o.k);
    {
        tf_csr head = X;
        double t0 = tf_now();
        head.n_rows = fold_docs;
        nmf_gram(W, X.n_cols, o.k, G, NULL);
        if (nmf_fold_in(W, X.n_cols, o.k, G, &head, NULL, Hf, &info, &err) < 0) {
            fprintf(stderr, "bench-nmf: %s\n", err.msg);
            return 1;
        }
        fold_s = tf_now() - t0;
    }
    /* After the fit: OpenBLAS's workers spin for a while after a call, and would compete
     * with the fit's own threads. */
    dpeak = gemm_peak(1024, 0);
    speak = gemm_peak(1024, 1);

    printf("\n%-34s %14s\n", "measure", "value");
    printf("%-34s %14.3f\n", "init (NNDSVDa) seconds", res.seconds_init);
    printf("%-34s %14.4f\n", "refit seconds per iteration", res.seconds_iter / (res.iterations ? res.iterations : 1));
    printf("%-34s %14.3f\n", "refit seconds total", fit_s);
    printf("%-34s %14.2f\n", "achieved GFLOP/s (fit)", res.flops / fit_s * 1e-9);
    printf("%-34s %14.2f\n", "OpenBLAS dgemm 1024^3 GFLOP/s", dpeak);
    printf("%-34s %14.2f\n", "OpenBLAS sgemm 1024^3 GFLOP/s", speak);
    printf("%-34s %14.0f\n", "fold-in docs/s (1 thread)", fold_docs / fold_s);
    printf("%-34s %14.1f\n", "fold-in mean sweeps per doc", (double)info.sweeps / fold_docs);
    printf("%-34s %14.6f\n", "error (ours)", res.error);
    printf("%-34s %14.6f\n", "relative error (ours)", res.error / res.x_norm);
    if (o.sklearn && has_sklearn()) {
        if (run_sklearn(&o, &X, &sk_s, &sk_e) == 0) {
            printf("%-34s %14.3f\n", "sklearn seconds (cd, nndsvda)", sk_s);
            printf("%-34s %14.6f\n", "sklearn error", sk_e);
            printf("%-34s %14.2f\n", "time ratio sklearn/ours", sk_s / fit_s);
            printf("%-34s %14.6f / %.6f\n", "error ours / sklearn", res.error, sk_e);
        } else {
            printf("sklearn: run failed\n");
        }
    } else {
        printf("sklearn: not run (%s)\n", o.sklearn ? "/usr/bin/python3 cannot import sklearn" : "--no-sklearn");
    }
    printf("fit_seconds=%.3f error=%.6f relative_error=%.6f\n", fit_s, res.error,
           res.error / res.x_norm);
    free(W);
    free(H);
    free(G);
    free(Hf);
    csr_free(&X);
    return 0;
}
