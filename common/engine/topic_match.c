/*
 * topic_match.c - cosine similarity between topic columns and the Hungarian algorithm
 * (shortest augmenting paths with row/column potentials, one row added per phase), which
 * is exact and O(n_rows² · n_cols).
 */
#include "engine/topic_match.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

int topic_assign_min(const double *cost, int n_rows, int n_cols, int *assign, tf_err *err)
{
    /* 1-based arrays; column 0 is the virtual start of each augmenting path. */
    double *u = NULL, *v = NULL, *minv = NULL;
    int *owner = NULL, *way = NULL;
    char *used = NULL;
    int rc = -1;

    if (n_rows < 0 || n_cols < n_rows)
        return tf_err_set(err, "topic_assign_min: need rows <= columns (%d x %d)", n_rows, n_cols);
    for (int64_t i = 0; i < (int64_t)n_rows * n_cols; i++)
        if (!isfinite(cost[i]))
            return tf_err_set(err, "topic_assign_min: cost entry %lld is not finite", (long long)i);
    u = calloc((size_t)n_rows + 1, sizeof(*u));
    v = calloc((size_t)n_cols + 1, sizeof(*v));
    minv = calloc((size_t)n_cols + 1, sizeof(*minv));
    owner = calloc((size_t)n_cols + 1, sizeof(*owner));
    way = calloc((size_t)n_cols + 1, sizeof(*way));
    used = calloc((size_t)n_cols + 1, 1);
    if (!u || !v || !minv || !owner || !way || !used) {
        tf_err_set(err, "topic_assign_min: out of memory (%d x %d)", n_rows, n_cols);
        goto fail;
    }
    for (int i = 1; i <= n_rows; i++) {
        int j0 = 0;
        owner[0] = i;
        for (int j = 0; j <= n_cols; j++) {
            minv[j] = DBL_MAX;
            used[j] = 0;
        }
        /* Grow a tree of tight edges from row i until it reaches a free column; the
         * potentials keep every reduced cost >= 0, so the path found is a shortest one. */
        do {
            int i0 = owner[j0], j1 = 0;
            double delta = DBL_MAX;
            used[j0] = 1;
            for (int j = 1; j <= n_cols; j++) {
                if (used[j])
                    continue;
                double reduced = cost[(size_t)(i0 - 1) * n_cols + (j - 1)] - u[i0] - v[j];
                if (reduced < minv[j]) {
                    minv[j] = reduced;
                    way[j] = j0;
                }
                if (minv[j] < delta) {
                    delta = minv[j];
                    j1 = j;
                }
            }
            for (int j = 0; j <= n_cols; j++) {
                if (used[j]) {
                    u[owner[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
        } while (owner[j0] != 0);
        /* Flip the path: every column on it passes to the row before it. */
        do {
            int j1 = way[j0];
            owner[j0] = owner[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (int j = 1; j <= n_cols; j++)
        if (owner[j] > 0)
            assign[owner[j] - 1] = j - 1;
    rc = 0;
fail:
    free(u);
    free(v);
    free(minv);
    free(owner);
    free(way);
    free(used);
    return rc;
}

static void topic_norms(const double *W, int32_t terms, int k, double *norm)
{
    for (int j = 0; j < k; j++)
        norm[j] = 0.0;
    for (int32_t t = 0; t < terms; t++)
        for (int j = 0; j < k; j++)
            norm[j] += W[(size_t)t * k + j] * W[(size_t)t * k + j];
    for (int j = 0; j < k; j++)
        norm[j] = sqrt(norm[j]);
}

int topic_match(const double *W_old, int32_t terms_old, int k_old, const double *W_new,
                int32_t terms_new, int k_new, int *map_new_to_old, double *similarity,
                tf_err *err)
{
    int32_t terms = terms_old < terms_new ? terms_old : terms_new;
    int rows = k_new <= k_old ? k_new : k_old, cols = k_new <= k_old ? k_old : k_new;
    double *cos = NULL, *cost = NULL, *n_old = NULL, *n_new = NULL;
    int *assign = NULL;
    int rc = -1;

    if (k_old < 1 || k_new < 1 || terms_old < 0 || terms_new < 0 || !W_old || !W_new ||
        !map_new_to_old)
        return tf_err_set(err, "topic_match: bad arguments (k_old %d, k_new %d)", k_old, k_new);
    cos = calloc((size_t)k_new * k_old, sizeof(*cos));
    cost = malloc(sizeof(*cost) * (size_t)k_new * k_old);
    n_old = malloc(sizeof(*n_old) * (size_t)k_old);
    n_new = malloc(sizeof(*n_new) * (size_t)k_new);
    assign = malloc(sizeof(*assign) * (size_t)rows);
    if (!cos || !cost || !n_old || !n_new || !assign) {
        tf_err_set(err, "topic_match: out of memory (k %d x %d)", k_new, k_old);
        goto fail;
    }
    topic_norms(W_old, terms, k_old, n_old);
    topic_norms(W_new, terms, k_new, n_new);
    for (int32_t t = 0; t < terms; t++) {
        const double *a = W_new + (size_t)t * k_new, *b = W_old + (size_t)t * k_old;
        for (int i = 0; i < k_new; i++)
            if (a[i] != 0.0)
                for (int j = 0; j < k_old; j++)
                    cos[(size_t)i * k_old + j] += a[i] * b[j];
    }
    for (int i = 0; i < k_new; i++)
        for (int j = 0; j < k_old; j++) {
            double d = n_new[i] * n_old[j];
            double c = d > 0.0 ? cos[(size_t)i * k_old + j] / d : 0.0;
            cos[(size_t)i * k_old + j] = c;
            /* Rows are the smaller side, so the cost matrix is transposed when new > old. */
            if (k_new <= k_old)
                cost[(size_t)i * k_old + j] = -c;
            else
                cost[(size_t)j * k_new + i] = -c;
        }
    if (topic_assign_min(cost, rows, cols, assign, err) < 0)
        goto fail;
    for (int i = 0; i < k_new; i++)
        map_new_to_old[i] = -1;
    for (int r = 0; r < rows; r++) {
        if (k_new <= k_old)
            map_new_to_old[r] = assign[r];
        else
            map_new_to_old[assign[r]] = r;
    }
    if (similarity)
        for (int i = 0; i < k_new; i++)
            similarity[i] = map_new_to_old[i] >= 0 ? cos[(size_t)i * k_old + map_new_to_old[i]] : 0.0;
    rc = 0;
fail:
    free(cos);
    free(cost);
    free(n_old);
    free(n_new);
    free(assign);
    return rc;
}
