/*
 * coherence.c - mean NPMI of each topic's top terms over document co-occurrence
 * (coherence.h). One pass over the documents: every term in some topic's top list gets a
 * slot; a document adds one to the frequency of each slot it holds and, topic by topic, to
 * the co-occurrence of each pair of that topic's top terms it holds. Memory: k·top² pair
 * counts, whatever the vocabulary.
 */
#include "engine/coherence.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/nmf.h"

static double npmi(double n_docs, double ni, double nj, double nij)
{
    double pij = nij / n_docs;

    if (nij <= 0)
        return -1.0;
    if (pij >= 1.0)
        return 1.0;
    return log(pij / ((ni / n_docs) * (nj / n_docs))) / -log(pij);
}

int tf_coherence_npmi(const tf_csr *X, const double *W, int32_t n_terms, int k, int top,
                      double *mean, tf_err *err)
{
    int32_t terms = n_terms < X->n_cols ? n_terms : X->n_cols;
    size_t kt = (size_t)k * (size_t)top;
    int32_t *tops = NULL, *slot_of = NULL, *seen = NULL, *member_ptr = NULL, *member = NULL;
    int32_t *bucket = NULL, *touched = NULL;
    int *n_top = NULL, *fill = NULL;
    double *df = NULL, *co = NULL, total = 0;
    int32_t slots = 0;
    int topics = 0, rc = -1;

    *mean = 0;
    if (k < 1 || top < 2 || top > 64)
        return tf_err_set(err, "coherence: k = %d and top = %d (want k >= 1, 2 <= top <= 64)", k, top);
    tops = malloc(kt * sizeof(*tops));
    n_top = calloc((size_t)k, sizeof(*n_top));
    fill = calloc((size_t)k, sizeof(*fill));
    slot_of = malloc(((size_t)terms + 1) * sizeof(*slot_of));
    bucket = malloc(kt * sizeof(*bucket));
    touched = malloc((size_t)k * sizeof(*touched));
    co = calloc(kt * (size_t)top, sizeof(*co)); /* per topic, top × top */
    if (!tops || !n_top || !fill || !slot_of || !bucket || !touched || !co) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (int32_t t = 0; t < terms; t++)
        slot_of[t] = -1;
    for (int j = 0; j < k; j++) {
        n_top[j] = nmf_top_terms(W, terms, k, j, top, 0, tops + (size_t)j * (size_t)top, NULL);
        for (int a = 0; a < n_top[j]; a++) {
            int32_t t = tops[(size_t)j * (size_t)top + (size_t)a];
            if (slot_of[t] < 0)
                slot_of[t] = slots++;
        }
    }
    /* Memberships of each slot: the (topic, rank) places its term holds, as j·top + rank. */
    df = calloc((size_t)slots + 1, sizeof(*df));
    seen = calloc((size_t)slots + 1, sizeof(*seen));
    member_ptr = calloc((size_t)slots + 2, sizeof(*member_ptr));
    member = malloc(kt * sizeof(*member) + 1);
    if (!df || !seen || !member_ptr || !member) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < kt; i++)
        if ((int)(i % (size_t)top) < n_top[i / (size_t)top])
            member_ptr[slot_of[tops[i]] + 2]++;
    for (int32_t s = 0; s < slots; s++)
        member_ptr[s + 2] += member_ptr[s + 1];
    for (size_t i = 0; i < kt; i++)
        if ((int)(i % (size_t)top) < n_top[i / (size_t)top])
            member[member_ptr[slot_of[tops[i]] + 1]++] = (int32_t)i;
    /* Each document: the ranks of every topic's top terms it holds, then their pairs.
     * seen[s] holds the last row (plus one) that counted slot s: a repeated column within a
     * row counts once. */
    for (int32_t r = 0; r < X->n_rows; r++) {
        int n_touched = 0;
        for (int64_t p = X->row_ptr[r]; p < X->row_ptr[r + 1]; p++) {
            int32_t t = X->col_idx[p];
            int32_t s = t < terms ? slot_of[t] : -1;
            if (s < 0 || X->val[p] <= 0 || seen[s] == r + 1)
                continue;
            seen[s] = r + 1;
            df[s] += 1;
            for (int32_t m = member_ptr[s]; m < member_ptr[s + 1]; m++) {
                int j = member[m] / top;
                if (fill[j] == 0)
                    touched[n_touched++] = j;
                bucket[(size_t)j * (size_t)top + (size_t)fill[j]++] = member[m] % top;
            }
        }
        for (int i = 0; i < n_touched; i++) {
            int j = touched[i];
            const int32_t *b = bucket + (size_t)j * (size_t)top;
            double *cj = co + (size_t)j * (size_t)top * (size_t)top;
            for (int x = 0; x < fill[j]; x++)
                for (int y = 0; y < fill[j]; y++)
                    if (x != y)
                        cj[(size_t)b[x] * (size_t)top + (size_t)b[y]] += 1;
            fill[j] = 0;
        }
    }
    for (int j = 0; j < k; j++) {
        const int32_t *tj = tops + (size_t)j * (size_t)top;
        const double *cj = co + (size_t)j * (size_t)top * (size_t)top;
        double sum = 0;
        int pairs = 0;

        if (n_top[j] < 2)
            continue;
        for (int a = 0; a < n_top[j]; a++)
            for (int b = a + 1; b < n_top[j]; b++) {
                sum += npmi((double)X->n_rows, df[slot_of[tj[a]]], df[slot_of[tj[b]]],
                            cj[(size_t)a * (size_t)top + (size_t)b]);
                pairs++;
            }
        total += sum / pairs;
        topics++;
    }
    *mean = topics ? total / topics : 0;
    rc = 0;
done:
    free(tops);
    free(n_top);
    free(fill);
    free(slot_of);
    free(bucket);
    free(touched);
    free(co);
    free(df);
    free(seen);
    free(member_ptr);
    free(member);
    return rc;
}
