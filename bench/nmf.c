/*
 * bench/nmf.c - bench-nmf: batch refit and fold-in speed of the NMF engine, beside the
 * OpenBLAS gemm peak and (when /usr/bin/python3 has scikit-learn) sklearn's NMF on the
 * identical matrix, with the fit's time and GFLOP/s per kernel. Input: a synthetic corpus
 * shaped like text (Zipf terms, log-normal lengths, the workers' min_df/max_df cut; the
 * older planted-topics one with --planted), real documents through the workers' text
 * pipeline (--corpus FILE.jsonl), or --matrix FILE.mtx (docs × terms, used as given).
 * The comparison runs both for the same iterations from NNDSVDa (tol 0) and prints two
 * ratios: at the same iteration count, and to the time our fit first reached
 * scikit-learn's final error (the "equal or lower error" figure); each side's time is the
 * best of --repeat alternated runs.
 * The last line is machine-readable: fit_seconds=… error=… relative_error=…
 */
#include "base/datadir.h"
#include "base/lifecycle.h"
#include "base/rng.h"
#include "engine/corpus.h"
#include "engine/csr.h"
#include "engine/nmf.h"
#include "engine/text.h"
#include "engine/vocab.h"
#include "wire/json.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_SOURCE_DIR
#define BENCH_SOURCE_DIR "bench"
#endif

typedef struct bench_opts {
    int k, iters, threads, inner, repeat;
    uint64_t seed;
    int32_t docs, terms;
    const char *matrix, *corpus, *save;
    int32_t count;
    int planted, sklearn, trajectory, order;
    double target;
} bench_opts;

/* The workers' vocabulary cut (model/update.c defaults): a term in one document cannot
 * make a topic, one in nearly every document separates none. */
#define BENCH_MIN_DF 2
#define BENCH_MAX_DF 0.95

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

/* X's columns cut to the model's vocabulary as the refit does it (tf_corpus_keep_terms,
 * tf_corpus_restrict: rows re-normalised); X is replaced. */
static int prune_terms(tf_csr *X, int k)
{
    int32_t *df = calloc((size_t)X->n_cols + 1, sizeof(int32_t));
    int32_t *map = malloc(sizeof(int32_t) * ((size_t)X->n_cols + 1));
    uint8_t *keep = malloc((size_t)X->n_cols + 1);
    tf_csr out;
    tf_err err = { 0 };
    int rc = -1;

    if (!df || !map || !keep)
        goto done;
    for (int64_t p = 0; p < csr_nnz(X); p++)
        df[X->col_idx[p]]++;
    tf_corpus_keep_terms(df, X->n_cols, X->n_rows, BENCH_MIN_DF, BENCH_MAX_DF, k, keep);
    if (tf_corpus_restrict(X, keep, map, &out, &err) < 0)
        goto done;
    csr_free(X);
    *X = out;
    rc = 0;
done:
    free(df);
    free(map);
    free(keep);
    return rc;
}

/* Raw counts in X's values to sublinear tf · smoothed idf (vocab.h's weights), rows L2. */
static void weight_counts(tf_csr *X)
{
    int32_t *df = calloc((size_t)X->n_cols + 1, sizeof(int32_t));

    for (int64_t p = 0; p < csr_nnz(X); p++)
        df[X->col_idx[p]]++;
    for (int32_t d = 0; d < X->n_rows; d++) {
        double norm = 0.0;
        for (int64_t p = X->row_ptr[d]; p < X->row_ptr[d + 1]; p++) {
            double idf = log((1.0 + X->n_rows) / (1.0 + df[X->col_idx[p]])) + 1.0;
            X->val[p] = (float)((1.0 + log(X->val[p])) * idf);
            norm += (double)X->val[p] * X->val[p];
        }
        norm = norm > 0.0 ? 1.0 / sqrt(norm) : 0.0;
        for (int64_t p = X->row_ptr[d]; p < X->row_ptr[d + 1]; p++)
            X->val[p] = (float)(X->val[p] * norm);
    }
    free(df);
}

/* Row d from the n terms touched and their counts (which are reset), or, when the matrix
 * is full, an empty row. */
static void add_row(tf_csr *X, int32_t d, const int32_t *touched, int n, int32_t *count,
                    int64_t *nnz, int64_t cap)
{
    for (int i = 0; i < n; i++) {
        if (*nnz + n <= cap) {
            X->col_idx[*nnz + i] = touched[i];
            X->val[*nnz + i] = (float)count[touched[i]];
        }
        count[touched[i]] = 0;
    }
    if (*nnz + n <= cap)
        *nnz += n;
    X->row_ptr[d + 1] = *nnz;
}

#define PLANTED 30
#define TOPIC_TERMS 600

/* The old generator (--planted): documents mix 1-3 of PLANTED topics (each a Zipf law
 * over its own random terms) with a Zipf background over the whole vocabulary; ~110
 * tokens give ~80 distinct terms. Kinder to the kernels than text: long, even rows. */
static int make_planted(const bench_opts *o, tf_csr *X)
{
    uint64_t rng = o->seed * 7919 + 1;
    int32_t T = o->terms, D = o->docs;
    double *bg = malloc(sizeof(double) * T), *tcdf = malloc(sizeof(double) * TOPIC_TERMS);
    int32_t *topic_terms = malloc(sizeof(int32_t) * PLANTED * TOPIC_TERMS);
    int32_t *count = calloc(T, sizeof(int32_t)), *touched = malloc(sizeof(int32_t) * 512);
    int64_t cap = (int64_t)D * 100, nnz = 0;
    tf_err err;

    if (!bg || !tcdf || !topic_terms || !count || !touched || csr_alloc(X, D, T, cap, &err) < 0)
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
        add_row(X, d, touched, n, count, &nnz, cap);
    }
    weight_counts(X);
    free(bg);
    free(tcdf);
    free(topic_terms);
    free(count);
    free(touched);
    return 0;
}

/* Shape of text (the default): a word's frequency follows Zipf's law over the whole
 * vocabulary (exponent ZIPF_S: a few words in a large share of the documents, most in a
 * handful), document lengths are log-normal (most short, a long tail), and each document
 * draws most of its words from one or two of ZIPF_TOPICS topics, themselves Zipf laws over
 * terms picked by the background law (so the heavy head is shared). Pruned with the
 * workers' min_df/max_df, like the real corpus. */
#define ZIPF_S 1.0
#define ZIPF_TOPICS 60
#define ZIPF_TOPIC_TERMS 2000
#define ZIPF_LEN_MU 3.45    /* log tokens: median e^3.45 ≈ 31 tokens */
#define ZIPF_LEN_SIGMA 0.75 /* mean ≈ 41 tokens, ~30 distinct terms after pruning */
#define ZIPF_BACKGROUND 0.25
#define ZIPF_MAX_TOKENS 2000

static double normal(uint64_t *rng)
{
    double u1 = ((tf_rng_next(rng) >> 11) + 1.0) * 0x1.0p-53, u2 = tf_rng_unit(rng);

    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int make_zipf(const bench_opts *o, tf_csr *X)
{
    uint64_t rng = o->seed * 7919 + 1;
    int32_t T = o->terms, D = o->docs;
    double *bg = malloc(sizeof(double) * T), *tcdf = malloc(sizeof(double) * ZIPF_TOPIC_TERMS);
    int32_t *topic_terms = malloc(sizeof(int32_t) * ZIPF_TOPICS * ZIPF_TOPIC_TERMS);
    int32_t *count = calloc(T, sizeof(int32_t)), *touched = malloc(sizeof(int32_t) * ZIPF_MAX_TOKENS);
    int64_t cap = (int64_t)D * 64, nnz = 0;
    tf_err err;
    int rc = -1;

    if (!bg || !tcdf || !topic_terms || !count || !touched || csr_alloc(X, D, T, cap, &err) < 0)
        goto done;
    for (int32_t t = 0; t < T; t++)
        bg[t] = (t ? bg[t - 1] : 0.0) + 1.0 / pow(t + 1.0, ZIPF_S);
    for (int i = 0; i < ZIPF_TOPIC_TERMS; i++)
        tcdf[i] = (i ? tcdf[i - 1] : 0.0) + 1.0 / pow(i + 1.0, ZIPF_S);
    for (int j = 0; j < ZIPF_TOPICS; j++)
        for (int i = 0; i < ZIPF_TOPIC_TERMS; i++)
            topic_terms[j * ZIPF_TOPIC_TERMS + i] = draw(bg, T, tf_rng_unit(&rng));
    for (int32_t d = 0; d < D; d++) {
        int topics[2] = { (int)tf_rng_below(&rng, ZIPF_TOPICS), (int)tf_rng_below(&rng, ZIPF_TOPICS) };
        int nt = tf_rng_unit(&rng) < 0.6 ? 1 : 2, n = 0;
        double len = exp(ZIPF_LEN_MU + ZIPF_LEN_SIGMA * normal(&rng));
        int tokens = len < 1.0 ? 1 : len > ZIPF_MAX_TOKENS ? ZIPF_MAX_TOKENS : (int)len;
        for (int i = 0; i < tokens; i++) {
            int32_t t;
            if (tf_rng_unit(&rng) < ZIPF_BACKGROUND)
                t = draw(bg, T, tf_rng_unit(&rng));
            else
                t = topic_terms[topics[tf_rng_below(&rng, (uint32_t)nt)] * ZIPF_TOPIC_TERMS +
                                draw(tcdf, ZIPF_TOPIC_TERMS, tf_rng_unit(&rng))];
            if (count[t]++ == 0)
                touched[n++] = t;
        }
        add_row(X, d, touched, n, count, &nnz, cap);
    }
    weight_counts(X);
    rc = prune_terms(X, o->k);
done:
    free(bg);
    free(tcdf);
    free(topic_terms);
    free(count);
    free(touched);
    return rc;
}

/* --corpus: one JSON object per line with title and description (bench/quality_corpus.py
 * writes them), `count` documents taken evenly over the file (all when count is 0 or
 * larger), through the workers' text pipeline (engine/text, vocab, corpus) and vocabulary
 * cut. */
static int read_corpus(const bench_opts *o, tf_csr *X)
{
    FILE *f = fopen(o->corpus, "r");
    char *line = NULL, **docs = NULL;
    size_t cap = 0, n = 0, dcap = 0, *lens = NULL;
    ssize_t got;
    tf_json_object *js = tf_json_object_new();
    tf_text_opts to = { .data_dir = tf_data_dir() };
    tf_text *text = NULL;
    tf_vocab *v = NULL;
    tf_err err = { 0 };
    int rc = -1;

    if (!f || !js) {
        perror(o->corpus);
        goto done;
    }
    while ((got = getline(&line, &cap, f)) > 0) {
        const tf_json_value *title, *desc;
        if (tf_json_parse_object(js, line, (size_t)got, &err) < 0) {
            fprintf(stderr, "%s: line %zu: %s\n", o->corpus, n + 1, err.msg);
            goto done;
        }
        title = tf_json_get(js, "title");
        desc = tf_json_get(js, "description");
        if (n == dcap) {
            dcap = dcap ? 2 * dcap : 4096;
            docs = realloc(docs, sizeof(*docs) * dcap);
            lens = realloc(lens, sizeof(*lens) * dcap);
            if (!docs || !lens)
                goto done;
        }
        lens[n] = (title && title->text ? title->len : 0) + 1 + (desc && desc->text ? desc->len : 0);
        if (!(docs[n] = malloc(lens[n] + 1)))
            goto done;
        snprintf(docs[n], lens[n] + 1, "%.*s\n%.*s", title && title->text ? (int)title->len : 0,
                 title && title->text ? title->text : "", desc && desc->text ? (int)desc->len : 0,
                 desc && desc->text ? desc->text : "");
        n++;
    }
    if (o->count > 0 && (size_t)o->count < n) {
        /* Evenly spread: the file is ordered (by package name), a prefix would be one corner. */
        for (size_t i = 0; i < (size_t)o->count; i++) {
            size_t j = i * n / (size_t)o->count;
            char *d = docs[j];
            docs[j] = docs[i];
            docs[i] = d;
            size_t l = lens[j];
            lens[j] = lens[i];
            lens[i] = l;
        }
        for (size_t i = (size_t)o->count; i < n; i++)
            free(docs[i]);
        n = (size_t)o->count;
    }
    if (!(text = tf_text_new(&to, &err)) || !(v = tf_vocab_new(&err)) ||
        tf_vocab_build_csr(v, text, (const char *const *)docs, lens, n, X, &err) < 0) {
        fprintf(stderr, "%s: %s\n", o->corpus, err.msg);
        goto done;
    }
    rc = prune_terms(X, o->k);
done:
    for (size_t i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    free(lens);
    free(line);
    tf_json_object_free(js);
    tf_text_free(text);
    tf_vocab_free(v);
    if (f)
        fclose(f);
    return rc;
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

typedef struct sk_result {
    double seconds, cpu, error;
    int iters;
    int n;          /* points of the traced run, 0 when not traced */
    double *t, *e;  /* its cumulative seconds and error after each iteration (0: init) */
} sk_result;

/* One run of scikit-learn on the matrix file written by the caller; with r->t set, also
 * its traced run (nmf_sklearn.py trace), up to o->iters + 1 points. */
static int run_sklearn(const bench_opts *o, const char *path, sk_result *r)
{
    char cmd[1024], *line = NULL;
    size_t cap = 0;
    int ok = 0;
    FILE *p;

    /* The peer gets the same thread budget as we do (its coordinate descent itself is
     * single-threaded Cython; only its dense BLAS calls can use the second thread). */
    snprintf(cmd, sizeof(cmd),
             "OMP_NUM_THREADS=%d OPENBLAS_NUM_THREADS=%d /usr/bin/python3 %s/nmf_sklearn.py %s %d %d %llu%s",
             o->threads, o->threads, BENCH_SOURCE_DIR, path, o->k, o->iters,
             (unsigned long long)o->seed, r->t ? " trace" : "");
    r->n = 0;
    p = popen(cmd, "r");
    while (p && getline(&line, &cap, p) > 0) {
        if (sscanf(line, "sklearn_seconds=%lf sklearn_cpu=%lf sklearn_error=%lf sklearn_iters=%d",
                   &r->seconds, &r->cpu, &r->error, &r->iters) == 4)
            ok = 1;
        if (r->t && !strncmp(line, "sklearn_trace=", 14)) {
            char *q = line + 14, *end;
            while (r->n <= o->iters) {
                r->t[r->n] = strtod(q, &end);
                if (end == q || *end != ':')
                    break;
                q = end + 1;
                r->e[r->n] = strtod(q, &end);
                if (end == q)
                    break;
                r->n++;
                if (*end != ',')
                    break;
                q = end + 1;
            }
        }
    }
    free(line);
    if (p)
        pclose(p);
    return ok ? 0 : -1;
}

/* First index whose error is at or below target, or -1. */
static int first_reach(const double *e, int n, double target)
{
    for (int i = 0; i < n; i++)
        if (e[i] <= target)
            return i;
    return -1;
}

static int has_sklearn(void)
{
    return access("/usr/bin/python3", X_OK) == 0 &&
           system("/usr/bin/python3 -c 'import sklearn, scipy' >/dev/null 2>&1") == 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench-nmf [--k N] [--iters N] [--inner N] [--order auto|docs|topics] [--threads N]\n"
            "                 [--seed N] [--repeat N]\n"
            "                 [--no-sklearn [--target ERROR]] [--trajectory]\n"
            "                 [--docs N] [--terms N] [--planted] | --corpus FILE.jsonl [--count N] |\n"
            "                 --matrix FILE.mtx [--save-matrix FILE.mtx]\n");
}

/* User + system CPU time of the process: beside wall time, it shows what the fit cost
 * when other programs share the cores. */
static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static int cmp_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

    return (x < y) - (x > y);
}

/* How heavy the head is: the share of non-zeros in the top 1 % of terms, the largest
 * document frequency, and the median one. */
static void print_shape(const tf_csr *X)
{
    int32_t *df = calloc((size_t)X->n_cols + 1, sizeof(int32_t));
    int64_t head = 0;
    int32_t top = X->n_cols / 100 > 0 ? X->n_cols / 100 : 1;

    for (int64_t p = 0; p < csr_nnz(X); p++)
        df[X->col_idx[p]]++;
    qsort(df, (size_t)X->n_cols, sizeof(int32_t), cmp_desc);
    for (int32_t t = 0; t < top; t++)
        head += df[t];
    printf("shape: top 1%% of terms hold %.0f%% of the non-zeros; document frequency max %.1f%%, "
           "median %d\n", 100.0 * head / (double)csr_nnz(X), 100.0 * df[0] / X->n_rows,
           df[X->n_cols / 2]);
    free(df);
}

/* The error after each iteration (index 0: after the initialisation) and the wall time
 * since the fit was called. */
typedef struct bench_trace {
    double t0, c0, *t, *c, *e;
    int n;
} bench_trace;

static int trace_progress(void *ctx, int iter, int max_iter, double error)
{
    bench_trace *tr = ctx;

    (void)max_iter;
    tr->t[iter] = tf_now() - tr->t0;
    tr->c[iter] = cpu_seconds() - tr->c0;
    tr->e[iter] = error;
    tr->n = iter + 1;
    return 0;
}

/* One line of the per-kernel table: seconds, share of the fit, GFLOP/s. */
static void print_phase(const char *name, const nmf_phase *ph, double fit_s, int iters)
{
    printf("  %-30s %9.3f %9.5f %6.1f%% %9.2f\n", name, ph->seconds, ph->seconds / iters,
           100.0 * ph->seconds / fit_s, ph->seconds > 0 ? ph->flops / ph->seconds * 1e-9 : 0.0);
}

int main(int argc, char **argv)
{
    bench_opts o = { .k = 20, .iters = 200, .threads = 2, .seed = 1, .docs = 50000,
                     .terms = 35000, .sklearn = 1, .repeat = 2 };
    tf_csr X = { 0 };
    nmf_batch_opts bo;
    nmf_batch_result res;
    tf_err err = { 0 };
    double *W, *H, *G, *Hf, dpeak, speak, fit_s = 0, cpu_s = 0, fold_s = 0, t0;
    int32_t fold_docs;
    nmf_fold_info info;
    bench_trace tr = { 0 }, best = { 0 };
    sk_result sk = { 0 };
    double *sk_t, *sk_e;
    int sk_n = 0;
    char sk_path[] = "/tmp/bench-nmf-XXXXXX.mtx";
    int terms_set = 0, its, sk_ok, sk_written = 0, reach = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-sklearn")) {
            o.sklearn = 0;
            continue;
        }
        if (!strcmp(a, "--trajectory")) {
            o.trajectory = 1;
            continue;
        }
        if (!strcmp(a, "--planted")) {
            o.planted = 1;
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
        else if (!strcmp(a, "--inner"))
            o.inner = atoi(v);
        else if (!strcmp(a, "--order")) {
            if (!strcmp(v, "auto"))
                o.order = NMF_ORDER_AUTO;
            else if (!strcmp(v, "docs"))
                o.order = NMF_ORDER_DOCS_FIRST;
            else if (!strcmp(v, "topics"))
                o.order = NMF_ORDER_TOPICS_FIRST;
            else {
                usage();
                return 2;
            }
        }
        else if (!strcmp(a, "--target"))
            o.target = atof(v);
        else if (!strcmp(a, "--repeat"))
            o.repeat = atoi(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--seed"))
            o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--docs"))
            o.docs = atoi(v);
        else if (!strcmp(a, "--terms"))
            o.terms = atoi(v), terms_set = 1;
        else if (!strcmp(a, "--matrix"))
            o.matrix = v;
        else if (!strcmp(a, "--save-matrix"))
            o.save = v;
        else if (!strcmp(a, "--corpus"))
            o.corpus = v;
        else if (!strcmp(a, "--count"))
            o.count = atoi(v);
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (o.planted && !terms_set)
        o.terms = 20000;
    if (o.k < 1 || o.iters < 1 || o.threads < 1 || o.docs < 1 || o.terms < 1 || o.count < 0 || o.repeat < 1 ||
        (o.matrix && o.corpus)) {
        usage();
        return 2;
    }
    /* Line by line even into a file: a run at k = 100 takes minutes, and the per-run lines
     * show how far it got. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    openblas_set_num_threads(o.threads);
    t0 = tf_now();
    if (o.matrix ? read_mtx(o.matrix, &X)
        : o.corpus ? read_corpus(&o, &X)
        : o.planted ? make_planted(&o, &X)
        : make_zipf(&o, &X)) {
        fprintf(stderr, "bench-nmf: cannot build the input matrix\n");
        return 1;
    }
    printf("input: %s, %d docs x %d terms, %lld non-zeros (%.1f per doc), built in %.1f s\n",
           o.matrix ? o.matrix : o.corpus ? o.corpus : o.planted ? "synthetic (planted topics)"
           : "synthetic (Zipf terms, log-normal lengths, min_df 2, max_df 0.95)",
           X.n_rows, X.n_cols, (long long)csr_nnz(&X), (double)csr_nnz(&X) / X.n_rows,
           tf_now() - t0);
    print_shape(&X);
    if (o.save && write_mtx(o.save, &X) != 0) {
        perror(o.save);
        return 1;
    }
    printf("k=%d iters=%d inner=%d (0: auto) threads=%d seed=%llu (2-core machine shared with other builds: "
           "timings are noisy)\n", o.k, o.iters, o.inner, o.threads, (unsigned long long)o.seed);

    W = malloc(sizeof(double) * (size_t)X.n_cols * o.k);
    H = malloc(sizeof(double) * (size_t)X.n_rows * o.k);
    G = malloc(sizeof(double) * (size_t)o.k * o.k);
    tr.t = malloc(sizeof(double) * ((size_t)o.iters + 1));
    tr.e = malloc(sizeof(double) * ((size_t)o.iters + 1));
    tr.c = malloc(sizeof(double) * ((size_t)o.iters + 1));
    best.c = malloc(sizeof(double) * ((size_t)o.iters + 1));
    best.t = malloc(sizeof(double) * ((size_t)o.iters + 1));
    best.e = malloc(sizeof(double) * ((size_t)o.iters + 1));
    sk_t = malloc(sizeof(double) * ((size_t)o.iters + 1));
    sk_e = malloc(sizeof(double) * ((size_t)o.iters + 1));
    bo = nmf_batch_defaults(o.k);
    bo.max_iter = o.iters;
    bo.tol = 0.0;
    bo.seed = o.seed;
    bo.threads = o.threads;
    bo.inner_passes = o.inner;
    bo.order = o.order;
    bo.progress = trace_progress;
    bo.progress_ctx = &tr;
    sk_ok = o.sklearn && has_sklearn();
    if (sk_ok) {
        int fd = mkstemps(sk_path, 4);
        if (fd < 0 || close(fd) != 0 || write_mtx(sk_path, &X) != 0) {
            fprintf(stderr, "bench-nmf: cannot write %s for scikit-learn\n", sk_path);
            return 1;
        }
        sk_written = 1;
    }
    /* Ours and the peer alternate, each keeping its best time: the same treatment on a
     * shared machine. Both results are deterministic, so only the times differ. */
    for (int rep = 0; rep < o.repeat; rep++) {
        double c0 = cpu_seconds(), f_s;
        nmf_batch_result r;
        sk_result sr = { .t = rep == 0 ? sk_t : NULL, .e = sk_e };
        tr.n = 0;
        tr.t0 = tf_now();
        tr.c0 = c0;
        if (nmf_batch_fit(&X, &bo, W, H, &r, &err) < 0) {
            fprintf(stderr, "bench-nmf: %s\n", err.msg);
            return 1;
        }
        f_s = r.seconds_init + r.seconds_iter;
        printf("run %d: ours %.3f s (CPU %.3f s)", rep + 1, f_s, cpu_seconds() - c0);
        if (rep == 0 || f_s < fit_s) {
            fit_s = f_s;
            cpu_s = cpu_seconds() - c0;
            res = r;
            best.n = tr.n;
            memcpy(best.t, tr.t, sizeof(double) * (size_t)tr.n);
            memcpy(best.e, tr.e, sizeof(double) * (size_t)tr.n);
            memcpy(best.c, tr.c, sizeof(double) * (size_t)tr.n);
        }
        if (sk_ok) {
            if (run_sklearn(&o, sk_path, &sr) < 0) {
                printf(", scikit-learn failed\n");
                sk_ok = 0;
                continue;
            }
            printf(", scikit-learn %.3f s (CPU %.3f s)", sr.seconds, sr.cpu);
            if (rep == 0)
                sk_n = sr.n;
            if (rep == 0 || sr.seconds < sk.seconds)
                sk = sr;
        }
        printf("\n");
    }
    if (sk_written)
        unlink(sk_path);
    if (o.trajectory) {
        /* The best run's error after each iteration, and scikit-learn's from its traced run
         * (its time as a share of its best run's, as for the equal-error ratio). */
        printf("\ntrajectory   iter  ours s  ours CPU s  ours error%s\n",
               sk_ok && sk_n > 0 ? "     sklearn s  sklearn error" : "");
        for (int i = 0; i < best.n || (sk_ok && i < sk_n); i++) {
            printf("trajectory %6d", i);
            if (i < best.n)
                printf(" %7.3f %11.3f %11.6f", best.t[i], best.c[i], best.e[i]);
            else
                printf(" %7s %11s %11s", "", "", "");
            if (sk_ok && i < sk_n && sk_t[sk_n - 1] > 0.0)
                printf(" %13.3f %14.6f", sk.seconds * sk_t[i] / sk_t[sk_n - 1], sk_e[i]);
            printf("\n");
        }
    }
    its = res.iterations ? res.iterations : 1;

    /* Fold-in on one thread, the stream path's unit of work: best of two. */
    fold_docs = X.n_rows < 20000 ? X.n_rows : 20000;
    Hf = malloc(sizeof(double) * (size_t)fold_docs * o.k);
    for (int rep = 0; rep < 2; rep++) {
        tf_csr head = X;
        double t1 = tf_now();
        head.n_rows = fold_docs;
        nmf_gram(W, X.n_cols, o.k, G, NULL);
        if (nmf_fold_in(W, X.n_cols, o.k, G, &head, NULL, Hf, &info, &err) < 0) {
            fprintf(stderr, "bench-nmf: %s\n", err.msg);
            return 1;
        }
        t1 = tf_now() - t1;
        fold_s = rep == 0 || t1 < fold_s ? t1 : fold_s;
    }
    /* After the fit: OpenBLAS's workers spin for a while after a call, and would compete
     * with the fit's own threads. */
    dpeak = gemm_peak(1024, 0);
    speak = gemm_peak(1024, 1);

    printf("\nper kernel (best fit)             seconds  s/iter  share    GFLOP/s\n");
    print_phase("init (NNDSVDa)", &res.init, fit_s, 1);
    print_phase("X.W (sparse, H half)", &res.xw, fit_s, its);
    print_phase("X^T.H (sparse, W half)", &res.xth, fit_s, its);
    print_phase("Gram WtW, HtH (dsyrk, k>256)", &res.gram, fit_s, its);
    print_phase("HALS W (+Gram, normalise)", &res.cd_w, fit_s, its);
    print_phase("HALS H (+Gram, error cross)", &res.cd_h, fit_s, its);
    print_phase("error (k^2 sum)", &res.err, fit_s, its);
    printf("  %-30s %9.3f\n", "set-up (transpose, plans)", res.seconds_init - res.init.seconds);
    printf("\n%-34s %14s\n", "measure", "value");
    printf("%-34s %14s\n", "first half of each iteration", res.docs_first ? "documents (H)" : "topics (W)");
    printf("%-34s %11d / %d\n", "sweeps per iteration, H / W", res.passes_h, res.passes_w);
    printf("%-34s %14.3f\n", "init (NNDSVDa) seconds", res.seconds_init);
    printf("%-34s %14.4f\n", "refit seconds per iteration", res.seconds_iter / its);
    printf("%-34s %14.3f\n", "refit seconds total", fit_s);
    printf("%-34s %14.3f\n", "refit CPU seconds (all threads)", cpu_s);
    printf("%-34s %14.2f\n", "achieved GFLOP/s (fit)", res.flops / fit_s * 1e-9);
    printf("%-34s %14.2f\n", "OpenBLAS dgemm 1024^3 GFLOP/s", dpeak);
    printf("%-34s %14.2f\n", "OpenBLAS sgemm 1024^3 GFLOP/s", speak);
    printf("%-34s %14.0f\n", "fold-in docs/s (1 thread)", fold_docs / fold_s);
    printf("%-34s %14.1f\n", "fold-in mean sweeps per doc", (double)info.sweeps / fold_docs);
    printf("%-34s %14.6f\n", "error (ours)", res.error);
    printf("%-34s %14.6f\n", "relative error (ours)", res.error / res.x_norm);
    if (!sk_ok && o.target > 0.0) {
        reach = first_reach(best.e, best.n, o.target);
        if (reach >= 0)
            printf("ours: error %.6f reached after %d iterations, %.3f s, %.3f CPU s\n", o.target,
                   reach, best.t[reach], best.c[reach]);
        else
            printf("ours: error %.6f not reached in %d iterations\n", o.target, o.iters);
    }
    if (sk_ok) {
        /* Equal error: the worse of the two final errors, which both reach; each side's
         * time to first reach it (the peer's from its traced run, as a share of its best
         * time: the traced run repeats the same steps). */
        double target = res.error > sk.error ? res.error : sk.error, sk_reach_s = 0.0;
        int sk_reach = sk_n > 0 ? first_reach(sk_e, sk_n, target) : -1;
        reach = first_reach(best.e, best.n, target);
        if (sk_reach >= 0 && sk_t[sk_n - 1] > 0.0)
            sk_reach_s = sk.seconds * sk_t[sk_reach] / sk_t[sk_n - 1];
        printf("\ncomparison: the same matrix, k, seed and iteration count (%d, tol 0: no early stop) for both;\n"
               "NNDSVDa initialisation for both (ours from a randomized SVD, scikit-learn's its own);\n"
               "error = ||X - HW^T||_F = sqrt(||X||^2 - 2<XW,H> + <W^TW,H^TH>) for both (scikit-learn's\n"
               "reconstruction_err_); times are wall seconds from the input matrix in memory to the factors,\n"
               "initialisation included, best of %d alternated runs each; ours uses %d threads, scikit-learn's\n"
               "coordinate descent is single-threaded Cython (its BLAS calls may use %d).\n"
               "Equal error: the worse final error of the two; each side's time until its error first\n"
               "reached it (scikit-learn's from a traced run of the same steps, as a share of its best time).\n",
               o.iters, o.repeat, o.threads, o.threads);
        printf("Updates: scikit-learn sweeps each factor once per iteration, documents (W) first; ours\n"
               "sweeps the documents (H) %d and the topics (W) %d times per iteration (one sparse product\n"
               "each), %s first (--inner, --order).\n", res.passes_h, res.passes_w,
               res.docs_first ? "documents" : "topics");
        printf("%-34s %14.3f\n", "sklearn seconds (cd, nndsvda)", sk.seconds);
        printf("%-34s %14.3f\n", "sklearn CPU seconds", sk.cpu);
        printf("%-34s %14d\n", "sklearn iterations", sk.iters);
        printf("%-34s %14.6f\n", "sklearn error", sk.error);
        if (sk_n > 0)
            printf("%-34s %14.6f\n", "sklearn error (traced run)", sk_e[sk_n - 1]);
        printf("%-34s %14.6f / %.6f (%+.4f%%)\n", "error ours / sklearn", res.error, sk.error,
               100.0 * (res.error - sk.error) / sk.error);
        printf("%-34s %14.2f\n", "time ratio sklearn/ours (same its)", sk.seconds / fit_s);
        printf("%-34s %14.2f\n", "CPU ratio sklearn/ours (same its)", sk.cpu / cpu_s);
        printf("%-34s %14.6f\n", "equal-error target", target);
        if (reach >= 0)
            printf("%-34s %8d its %8.3f s\n", "ours: reaches it after", reach, best.t[reach]);
        if (sk_reach >= 0)
            printf("%-34s %8d its %8.3f s\n", "sklearn: reaches it after", sk_reach, sk_reach_s);
        if (reach >= 0 && sk_reach >= 0 && best.t[reach] > 0.0)
            printf("%-34s %14.2f\n", "time ratio at equal error", sk_reach_s / best.t[reach]);
        else
            printf("time ratio at equal error: not available (no traced scikit-learn run)\n");
        printf("sklearn_seconds=%.3f sklearn_error=%.6f ratio_same_iters=%.3f ratio_equal_error=%.3f\n",
               sk.seconds, sk.error, sk.seconds / fit_s,
               reach >= 0 && sk_reach >= 0 ? sk_reach_s / best.t[reach] : 0.0);
    } else {
        printf("sklearn: not run (%s)\n", o.sklearn ? "/usr/bin/python3 cannot import sklearn or scipy, or it failed" : "--no-sklearn");
    }
    printf("fit_seconds=%.3f error=%.6f relative_error=%.6f\n", fit_s, res.error,
           res.error / res.x_norm);
    free(tr.t);
    free(tr.e);
    free(tr.c);
    free(best.c);
    free(sk_t);
    free(sk_e);
    free(best.t);
    free(best.e);
    free(W);
    free(H);
    free(G);
    free(Hf);
    csr_free(&X);
    return 0;
}
