/*
 * vocab.c - vocabulary, document frequencies and TF-IDF rows (see vocab.h). Terms map to
 * ids through the shared string table (base/strmap.h: a slot's val is the id), whose arena
 * also holds each term's bytes, NUL-terminated; per id we keep only where those bytes are,
 * the document frequency and the language weight.
 */
#include "engine/vocab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "base/hash.h"
#include "base/strmap.h"

#define GAP UINT32_MAX /* off[] of an id that has no term */

struct tf_vocab {
    tf_strmap map;  /* term -> id (slot val) */
    uint32_t *off;  /* per id, into map's arena */
    uint32_t *len;  /* per id */
    int64_t *df;    /* per id */
    float *lang;    /* per id: the language weight (tf_vocab_set_language_weight), 1 by default */
    int32_t size, n_terms, cap;
    int64_t n_docs;
};

/* Make ids [0, want) addressable. */
static int grow_ids(tf_vocab *v, int32_t want)
{
    int32_t cap = v->cap ? v->cap : 1024;

    if (want <= v->cap)
        return 0;
    while (cap < want)
        cap = cap < (INT32_MAX / 2) ? cap * 2 : INT32_MAX;
#define GROW(field)                                                                       \
    do {                                                                                  \
        void *p = realloc(v->field, (size_t)cap * sizeof(*v->field));                     \
        if (!p)                                                                           \
            return -1;                                                                    \
        v->field = p;                                                                     \
    } while (0)
    GROW(off);
    GROW(len);
    GROW(df);
    GROW(lang);
#undef GROW
    v->cap = cap;
    return 0;
}

tf_vocab *tf_vocab_new(tf_err *err)
{
    tf_vocab *v = calloc(1, sizeof(*v));

    if (!v)
        goto fail;
    if (grow_ids(v, 1024) < 0 || tf_strmap_init(&v->map, 2048, 16384) < 0)
        goto fail;
    return v;
fail:
    tf_err_set(err, "out of memory creating a vocabulary");
    tf_vocab_free(v);
    return NULL;
}

void tf_vocab_free(tf_vocab *v)
{
    if (!v)
        return;
    tf_strmap_free(&v->map);
    free(v->off);
    free(v->len);
    free(v->df);
    free(v->lang);
    free(v);
}

int32_t tf_vocab_size(const tf_vocab *v) { return v->size; }
int32_t tf_vocab_terms(const tf_vocab *v) { return v->n_terms; }
int64_t tf_vocab_docs(const tf_vocab *v) { return v->n_docs; }
void tf_vocab_set_docs(tf_vocab *v, int64_t n_docs) { v->n_docs = n_docs; }

static int32_t find(const tf_vocab *v, uint64_t h, const char *term, size_t len)
{
    const tf_strmap_slot *s = tf_strmap_find(&v->map, h, term, len);

    return s->key_len ? s->val : -1;
}

int32_t tf_vocab_lookup(const tf_vocab *v, const char *term, size_t len)
{
    return find(v, tf_hash_bytes(term, len), term, len);
}

/* Give the (absent) term the id `id`, which must be addressable and unused. */
static int insert(tf_vocab *v, int32_t id, uint64_t h, const char *term, size_t len)
{
    tf_strmap_slot *s = tf_strmap_put(&v->map, h, term, len);

    if (!s)
        return -1;
    s->val = id;
    v->off[id] = s->key_off;
    v->len[id] = (uint32_t)len;
    v->df[id] = 0;
    v->lang[id] = 1.0f;
    v->n_terms++;
    return 0;
}

/* Make ids [size, want) addressable gaps. */
static int extend(tf_vocab *v, int32_t want)
{
    if (grow_ids(v, want) < 0)
        return -1;
    for (int32_t id = v->size; id < want; id++) {
        v->off[id] = GAP;
        v->df[id] = 0;
        v->lang[id] = 1.0f;
    }
    if (want > v->size)
        v->size = want;
    return 0;
}

int32_t tf_vocab_add(tf_vocab *v, const char *term, size_t len, tf_err *err)
{
    uint64_t h = tf_hash_bytes(term, len);
    int32_t id = find(v, h, term, len);

    if (id >= 0)
        return id;
    if (!len || len > UINT32_MAX - 1)
        return tf_err_set(err, "vocabulary: empty or oversized term");
    if (v->size == INT32_MAX)
        return tf_err_set(err, "vocabulary: id space exhausted");
    id = v->size;
    if (extend(v, id + 1) < 0 || insert(v, id, h, term, len) < 0) {
        v->size = id; /* the id stays free for the next attempt */
        return tf_err_set(err, "vocabulary: out of memory adding a term");
    }
    return id;
}

int tf_vocab_put(tf_vocab *v, int32_t id, const char *term, size_t len, int64_t df,
                 tf_err *err)
{
    uint64_t h = tf_hash_bytes(term, len);
    int32_t have = find(v, h, term, len);

    if (id < 0 || id == INT32_MAX || !len || len > UINT32_MAX - 1 || df < 0)
        return tf_err_set(err, "vocabulary: invalid row (id %d, %zu bytes, df %lld)", id, len,
                          (long long)df);
    if (have >= 0 && have != id)
        return tf_err_set(err, "vocabulary: term \"%.*s\" has id %d, not %d",
                          (int)(len > 64 ? 64 : len), term, have, id);
    if (have < 0) {
        if (id < v->size && v->off[id] != GAP)
            return tf_err_set(err, "vocabulary: id %d already holds \"%s\"", id,
                              tf_strmap_at(&v->map, v->off[id]));
        if (extend(v, id + 1) < 0 || insert(v, id, h, term, len) < 0)
            return tf_err_set(err, "vocabulary: out of memory loading a term");
    }
    v->df[id] = df;
    return 0;
}

const char *tf_vocab_term(const tf_vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->size || v->off[id] == GAP)
        return NULL;
    if (len)
        *len = v->len[id];
    return tf_strmap_at(&v->map, v->off[id]);
}

int64_t tf_vocab_df(const tf_vocab *v, int32_t id)
{
    return id >= 0 && id < v->size ? v->df[id] : 0;
}

int tf_vocab_set_df(tf_vocab *v, int32_t id, int64_t df, tf_err *err)
{
    if (id < 0 || id >= v->size || v->off[id] == GAP || df < 0)
        return tf_err_set(err, "vocabulary: cannot set df %lld of id %d", (long long)df, id);
    v->df[id] = df;
    return 0;
}

float tf_vocab_language_weight(const tf_vocab *v, int32_t id)
{
    return id >= 0 && id < v->size ? v->lang[id] : 1.0f;
}

int tf_vocab_set_language_weight(tf_vocab *v, int32_t id, float w, tf_err *err)
{
    if (id < 0 || id >= v->size || v->off[id] == GAP || !(w >= 0.0f && w <= 1.0f))
        return tf_err_set(err, "vocabulary: cannot set language weight %g of id %d", (double)w,
                          id);
    v->lang[id] = w;
    return 0;
}

/* ---- bags ------------------------------------------------------------------------ */

void tf_bag_init(tf_bag *b)
{
    memset(b, 0, sizeof(*b));
}

void tf_bag_free(tf_bag *b)
{
    free(b->ids);
    free(b->counts);
    free(b->weights);
    free(b->unknown);
    free(b->first);
    free(b->tok_ids);
    memset(b, 0, sizeof(*b));
}

static int bag_reserve(tf_bag *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 64;
    void *p;

    if (n <= b->cap)
        return 0;
    while (cap < n)
        cap *= 2;
    if (!(p = realloc(b->ids, cap * sizeof(*b->ids))))
        return -1;
    b->ids = p;
    if (!(p = realloc(b->counts, cap * sizeof(*b->counts))))
        return -1;
    b->counts = p;
    if (!(p = realloc(b->weights, cap * sizeof(*b->weights))))
        return -1;
    b->weights = p;
    b->cap = cap;
    return 0;
}

static int bag_unknown(tf_bag *b, uint32_t tok)
{
    if (b->n_unknown == b->unknown_cap) {
        size_t cap = b->unknown_cap ? 2 * b->unknown_cap : 64;
        uint32_t *p = realloc(b->unknown, cap * sizeof(*p));
        if (!p)
            return -1;
        b->unknown = p;
        b->unknown_cap = cap;
    }
    b->unknown[b->n_unknown++] = tok;
    return 0;
}

/* Quicksort (median of three, insertion sort below 16, recursion on the smaller side
 * only): a document has a few hundred ids, where qsort's indirect compare dominates. */
static void sort_ids(int32_t *a, size_t n)
{
    while (n > 16) {
        size_t i = 0, j = n - 1, m = n / 2;
        int32_t p, tmp;
        if (a[m] < a[0]) { tmp = a[m]; a[m] = a[0]; a[0] = tmp; }
        if (a[j] < a[0]) { tmp = a[j]; a[j] = a[0]; a[0] = tmp; }
        if (a[j] < a[m]) { tmp = a[j]; a[j] = a[m]; a[m] = tmp; }
        p = a[m];
        for (;;) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i >= j)
                break;
            tmp = a[i]; a[i] = a[j]; a[j] = tmp;
            i++;
            j--;
        }
        /* a[0..j] <= p <= a[j+1..n) */
        if (j + 1 < n - j - 1) {
            sort_ids(a, j + 1);
            a += j + 1;
            n -= j + 1;
        } else {
            sort_ids(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }
    for (size_t i = 1; i < n; i++) {
        int32_t x = a[i];
        size_t k = i;
        while (k > 0 && a[k - 1] > x) {
            a[k] = a[k - 1];
            k--;
        }
        a[k] = x;
    }
}

/* bag->first[i] for each of bag's (ascending) ids: its first token, found by bisection. */
static void bag_first_tokens(tf_bag *bag, size_t n_tok)
{
    for (size_t i = 0; i < bag->n; i++)
        bag->first[i] = UINT32_MAX;
    for (size_t i = 0; i < n_tok; i++) {
        int32_t id = bag->tok_ids[i];
        size_t lo = 0, hi = bag->n;
        if (id < 0)
            continue;
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (bag->ids[mid] <= id)
                lo = mid;
            else
                hi = mid;
        }
        if (bag->first[lo] == UINT32_MAX)
            bag->first[lo] = (uint32_t)i;
    }
}

int tf_vocab_count(tf_vocab *v, const tf_tokens *toks, int flags, tf_bag *bag, tf_err *err)
{
    size_t m = 0, u = 0;
    int first = (flags & TF_VOCAB_FIRST) != 0;

    bag->n = 0;
    bag->n_unknown = 0;
    if (bag_reserve(bag, toks->n) < 0 ||
        (first && (TF_GROW(bag->first, bag->first_cap, toks->n) < 0 ||
                   TF_GROW(bag->tok_ids, bag->tok_ids_cap, toks->n) < 0)))
        return tf_err_set(err, "out of memory counting %zu tokens", toks->n);
    for (size_t i = 0; i < toks->n; i++) {
        const char *s = toks->bytes + toks->tok[i].off;
        int32_t id = tf_vocab_lookup(v, s, toks->tok[i].len);
        if (id < 0 && (flags & TF_VOCAB_GROW)) {
            id = tf_vocab_add(v, s, toks->tok[i].len, err);
            if (id < 0)
                return -1;
        }
        if (first)
            bag->tok_ids[i] = id;
        if (id < 0) {
            if (bag_unknown(bag, (uint32_t)i) < 0)
                return tf_err_set(err, "out of memory counting %zu tokens", toks->n);
            continue;
        }
        bag->ids[m++] = id;
    }
    sort_ids(bag->ids, m);
    for (size_t i = 0; i < m; i++) {
        if (u && bag->ids[u - 1] == bag->ids[i]) {
            bag->counts[u - 1]++;
        } else {
            bag->ids[u] = bag->ids[i];
            bag->counts[u++] = 1;
        }
    }
    bag->n = u;
    if (first)
        bag_first_tokens(bag, toks->n);
    return 0;
}

int tf_vocab_add_doc(tf_vocab *v, const int32_t *ids, size_t n, tf_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= v->size || v->off[ids[i]] == GAP)
            return tf_err_set(err, "vocabulary: document has unknown term id %d", ids[i]);
    for (size_t i = 0; i < n; i++)
        v->df[ids[i]]++;
    v->n_docs++;
    return 0;
}

int tf_vocab_remove_doc(tf_vocab *v, const int32_t *ids, size_t n, tf_err *err)
{
    if (v->n_docs <= 0)
        return tf_err_set(err, "vocabulary: removing a document from an empty collection");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= v->size || v->off[ids[i]] == GAP)
            return tf_err_set(err, "vocabulary: retracted document has unknown term id %d",
                              ids[i]);
        if (v->df[ids[i]] <= 0)
            return tf_err_set(err, "vocabulary: term id %d already has document frequency 0",
                              ids[i]);
    }
    for (size_t i = 0; i < n; i++)
        v->df[ids[i]]--;
    v->n_docs--;
    return 0;
}

/* ---- weights --------------------------------------------------------------------- */

/* counts come either as integers (bags) or as floats (CSR rows weighted in place). */
static void weigh(const tf_vocab *v, const int32_t *ids, const int32_t *icount,
                  const float *fcount, size_t n, float *out)
{
    double n1 = 1.0 + (double)v->n_docs, norm = 0.0;

    for (size_t i = 0; i < n; i++) {
        double c = icount ? (double)icount[i] : (double)fcount[i];
        double df = (double)tf_vocab_df(v, ids[i]);
        double idf = (log(n1 / (1.0 + df)) + 1.0) * (double)tf_vocab_language_weight(v, ids[i]);
        double w = c > 0 ? (1.0 + log(c)) * idf : 0.0;
        out[i] = (float)w;
        norm += w * w;
    }
    if (norm > 0) {
        double inv = 1.0 / sqrt(norm);
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(out[i] * inv);
    }
}

void tf_vocab_tfidf(const tf_vocab *v, const int32_t *ids, const int32_t *counts, size_t n,
                    float *out)
{
    weigh(v, ids, counts, NULL, n, out);
}

void tf_vocab_weight(const tf_vocab *v, tf_bag *bag)
{
    weigh(v, bag->ids, bag->counts, NULL, bag->n, bag->weights);
}

void tf_vocab_weight_csr(const tf_vocab *v, tf_csr *m)
{
    for (int32_t r = 0; r < m->n_rows; r++) {
        int64_t s = m->row_ptr[r], e = m->row_ptr[r + 1];
        weigh(v, m->col_idx + s, NULL, m->val + s, (size_t)(e - s), m->val + s);
    }
    m->n_cols = tf_vocab_size(v);
}
