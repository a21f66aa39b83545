/*
 * batch.c - the rules of one mini-batch (see batch.h). Pure: no I/O, caller-owned state.
 */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "engine/nmf.h"

void work_item_clear(work_item *item)
{
    tf_event_clear(&item->ev);
    free(item->source);
    free(item->doc_id);
    free(item->text);
    tf_bag_free(&item->bag);
    tf_buf_free(&item->forms);
    memset(item, 0, sizeof(*item));
}

void doc_state_clear(doc_state *s)
{
    free(s->ids);
    free(s->weights);
    free(s->topics);
    memset(s, 0, sizeof(*s));
}

/* ---- rows and document frequencies ------------------------------------------------------ */

static int rows_add(batch_rows *r, const int32_t *ids, const float *vals, size_t n,
                    const float *h, int32_t n_cols, tf_err *err)
{
    int64_t nnz = r->X.n_rows ? r->X.row_ptr[r->X.n_rows] : 0;
    size_t k = (size_t)(r->k ? r->k : 1), rows_cap = r->rows_cap, h_cap = r->rows_cap * k;

    if (TF_GROW(r->X.row_ptr, rows_cap, (size_t)r->X.n_rows + 2) < 0 ||
        tf_grow((void **)&r->H, &h_cap, rows_cap * k, sizeof(*r->H)) < 0)
        return tf_err_set(err, "out of memory");
    if (r->rows_cap == 0)
        r->X.row_ptr[0] = 0;
    r->rows_cap = rows_cap;
    {
        size_t ci_cap = r->nnz_cap, v_cap = r->nnz_cap;
        if (TF_GROW(r->X.col_idx, ci_cap, (size_t)nnz + n + 1) < 0 ||
            TF_GROW(r->X.val, v_cap, (size_t)nnz + n + 1) < 0)
            return tf_err_set(err, "out of memory");
        r->nnz_cap = ci_cap < v_cap ? ci_cap : v_cap;
    }
    if (n) {
        memcpy(r->X.col_idx + nnz, ids, n * sizeof(*ids));
        memcpy(r->X.val + nnz, vals, n * sizeof(*vals));
    }
    for (int j = 0; h && j < r->k; j++)
        r->H[(size_t)r->X.n_rows * (size_t)r->k + (size_t)j] = h[j];
    r->X.n_rows++;
    r->X.row_ptr[r->X.n_rows] = nnz + (int64_t)n;
    if (r->X.n_cols < n_cols)
        r->X.n_cols = n_cols;
    return 0;
}

static void rows_free(batch_rows *r)
{
    free(r->X.row_ptr);
    free(r->X.col_idx);
    free(r->X.val);
    free(r->H);
    memset(r, 0, sizeof(*r));
}

static int df_push(df_changes *c, const int32_t *ids, size_t n, int32_t delta, tf_err *err)
{
    size_t t_cap = c->cap, d_cap = c->cap;

    if (TF_GROW(c->terms, t_cap, c->n + n) < 0 || TF_GROW(c->deltas, d_cap, c->n + n) < 0)
        return tf_err_set(err, "out of memory");
    c->cap = t_cap < d_cap ? t_cap : d_cap;
    for (size_t i = 0; i < n; i++) {
        c->terms[c->n] = ids[i];
        c->deltas[c->n++] = delta;
    }
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    const int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Sums the pairs per term, in place, dropping zero sums. Without memory it keeps the
 * uncompacted pairs, which sum to the same when the model is refreshed. */
static void df_compact(df_changes *c)
{
    int64_t *pairs = malloc((c->n + 1) * sizeof(*pairs));
    size_t m = 0;

    if (!pairs)
        return;
    for (size_t i = 0; i < c->n; i++)
        pairs[i] = ((int64_t)c->terms[i] << 32) | (uint32_t)(c->deltas[i] + (1 << 30));
    qsort(pairs, c->n, sizeof(*pairs), cmp_i64);
    for (size_t i = 0; i < c->n;) {
        int32_t term = (int32_t)(pairs[i] >> 32), sum = 0;
        for (; i < c->n && (int32_t)(pairs[i] >> 32) == term; i++)
            sum += (int32_t)(pairs[i] & 0xffffffff) - (1 << 30);
        if (sum) {
            c->terms[m] = term;
            c->deltas[m++] = sum;
        }
    }
    c->n = m;
    free(pairs);
}

void batch_result_init(batch_result *r, int k)
{
    memset(r, 0, sizeof(*r));
    r->retract.k = r->add.k = k;
}

void batch_result_free(batch_result *r)
{
    rows_free(&r->retract);
    rows_free(&r->add);
    free(r->add_item);
    free(r->df.terms);
    free(r->df.deltas);
    memset(r, 0, sizeof(*r));
}

/* ---- the rules ------------------------------------------------------------------------- */

static int same_key(const work_item *x, const work_item *y)
{
    return strcmp(x->source, y->source) == 0 && strcmp(x->doc_id, y->doc_id) == 0;
}

void batch_mark_duplicates(work_item *items, size_t n, const int64_t *processed,
                           size_t n_processed)
{
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < n_processed && items[i].outcome == ITEM_PENDING; p++)
            if (items[i].ev.id == processed[p])
                items[i].outcome = ITEM_DUPLICATE;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i && items[i].outcome == ITEM_PENDING; j++)
            if (items[j].outcome != ITEM_DUPLICATE && items[j].ev.id == items[i].ev.id)
                items[i].outcome = ITEM_DUPLICATE;
    for (size_t i = 0; i < n; i++) {
        if (items[i].outcome != ITEM_PENDING)
            continue;
        for (size_t j = 0; j < n; j++) {
            if (j == i || items[j].outcome != ITEM_PENDING || !same_key(&items[i], &items[j]))
                continue;
            if (items[j].ev.version > items[i].ev.version ||
                (items[j].ev.version == items[i].ev.version && j < i)) {
                items[i].outcome = ITEM_STALE;
                break;
            }
        }
    }
}

int batch_applies(const work_item *it, const doc_state *s)
{
    /* Older never overwrites newer (an update that arrived before its insert); a replay of
     * the stored version recomputes it. */
    if (!s->found)
        return 1;
    if (s->version > it->ev.version)
        return 0;
    return s->version < it->ev.version || it->ev.replay_of != 0;
}

int batch_retracts(const doc_state *s, const batch_model *m)
{
    return s->found && !s->deleted && m->version && s->model_version >= m->epoch && s->topics &&
           (int)s->n_topics == m->k;
}

/* Term ids are the database's: a bag counted against an older vocabulary object may hold
 * ids beyond the current one's size, so the width comes from the data too. */
static int32_t widest_column(const tf_vocab *v, const work_item *items, size_t n,
                             const doc_state *states)
{
    int32_t w = tf_vocab_size(v);

    for (size_t i = 0; i < n; i++) {
        if (items[i].bag.n && items[i].bag.ids[items[i].bag.n - 1] >= w)
            w = items[i].bag.ids[items[i].bag.n - 1] + 1;
        for (size_t j = 0; j < states[i].n; j++)
            if (states[i].ids[j] >= w)
                w = states[i].ids[j] + 1;
    }
    return w;
}

int batch_compute(work_item *items, size_t n, const doc_state *states, const batch_model *m,
                  const tf_vocab *v, batch_result *out, tf_err *err)
{
    int32_t n_cols = widest_column(v, items, n, states);
    float *weights = NULL;
    size_t n_add = 0, add_cap = 0;
    int rc = -1;

    for (size_t i = 0; i < n; i++) {
        work_item *it = &items[i];
        const doc_state *s = &states[i];

        if (it->outcome != ITEM_PENDING)
            continue;
        if (!batch_applies(it, s)) {
            it->outcome = ITEM_STALE;
            continue;
        }
        it->outcome = ITEM_APPLIED;
        if (s->found && !s->deleted) {
            if (df_push(&out->df, s->ids, s->n, -1, err) < 0)
                goto done;
            out->n_docs--;
            if (batch_retracts(s, m) &&
                rows_add(&out->retract, s->ids, s->weights, s->n, s->topics, n_cols, err) < 0)
                goto done;
        }
        if (it->ev.type == TF_EVENT_DELETED)
            continue;
        if (df_push(&out->df, it->bag.ids, it->bag.n, +1, err) < 0)
            goto done;
        out->n_docs++;
        free(weights);
        weights = malloc((it->bag.n + 1) * sizeof(*weights));
        if (!weights) {
            tf_err_set(err, "out of memory");
            goto done;
        }
        tf_vocab_tfidf(v, it->bag.ids, it->bag.counts, it->bag.n, weights);
        if (rows_add(&out->add, it->bag.ids, weights, it->bag.n, NULL, n_cols, err) < 0 ||
            (TF_GROW(out->add_item, add_cap, n_add + 1) < 0 && tf_err_set(err, "out of memory")))
            goto done;
        out->add_item[n_add++] = i;
    }
    /* Fold-in of every new vector at once, then rounding to what is stored. */
    if (n_add && m->version) {
        double *H = out->add.H;
        if (nmf_fold_in(m->W, m->n_terms, m->k, m->G, &out->add.X, NULL, H, NULL, err) < 0)
            goto done;
        for (size_t j = 0; j < n_add * (size_t)m->k; j++)
            H[j] = (double)(float)H[j];
    }
    df_compact(&out->df);
    for (size_t i = 0; i < n; i++) {
        out->applied += items[i].outcome == ITEM_APPLIED;
        out->stale += items[i].outcome == ITEM_STALE;
        out->duplicates += items[i].outcome == ITEM_DUPLICATE;
    }
    rc = 0;
done:
    free(weights);
    return rc;
}
