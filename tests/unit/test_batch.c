/*
 * test_batch.c - the worker's in-batch rules without servers: duplicates, versions,
 * superseding, deletes, and which previous contribution a change retracts. apply.c only
 * reads the state these functions decide on and writes what they decided.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "engine/nmf.h"

#define K 2
#define TERMS 4

/* A created/updated/deleted event of document doc_id with version v and event id id; the
 * bag holds the given term ids with count 1. */
static work_item item(int64_t id, const char *doc_id, int64_t v, tf_event_type type,
                      const int32_t *terms, size_t n)
{
    work_item it;

    memset(&it, 0, sizeof(it));
    it.ev.id = id;
    it.ev.version = v;
    it.ev.type = type;
    it.source = strdup("public.internships");
    it.doc_id = strdup(doc_id);
    tf_bag_init(&it.bag);
    if (n) {
        it.bag.ids = malloc(n * sizeof(int32_t));
        it.bag.counts = malloc(n * sizeof(int32_t));
        for (size_t i = 0; i < n; i++) {
            it.bag.ids[i] = terms[i];
            it.bag.counts[i] = 1;
        }
        it.bag.n = n;
    }
    return it;
}

/* A stored, live document folded at model_version with mixture topics. */
static doc_state stored(int64_t version, int64_t model_version, const int32_t *ids,
                        const float *weights, size_t n, const float *topics, size_t n_topics)
{
    doc_state s;

    memset(&s, 0, sizeof(s));
    s.found = 1;
    s.version = version;
    s.model_version = model_version;
    s.n = n;
    s.ids = malloc(n * sizeof(int32_t));
    s.weights = malloc(n * sizeof(float));
    memcpy(s.ids, ids, n * sizeof(int32_t));
    memcpy(s.weights, weights, n * sizeof(float));
    if (topics) {
        s.topics = malloc(n_topics * sizeof(float));
        memcpy(s.topics, topics, n_topics * sizeof(float));
        s.n_topics = n_topics;
    }
    return s;
}

static void clear_all(work_item *items, doc_state *states, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        work_item_clear(&items[i]);
        if (states)
            doc_state_clear(&states[i]);
    }
}

/* Four terms with document frequencies, N = 10. */
static tf_vocab *vocab(void)
{
    tf_vocab *v = tf_vocab_new(NULL);
    const char *t[TERMS] = {"python", "sql", "design", "law"};

    for (int i = 0; i < TERMS; i++)
        assert_int_equal(tf_vocab_put(v, i, t[i], strlen(t[i]), 2 + i, NULL), 0);
    tf_vocab_set_docs(v, 10);
    return v;
}

/* A two-topic model of epoch 5, version 7: topic 0 = terms 0,1; topic 1 = terms 2,3. */
typedef struct model_fx {
    double W[TERMS * K], G[K * K];
    batch_model m;
} model_fx;

static void model_init(model_fx *f)
{
    static const double W[TERMS * K] = {0.7, 0.0, 0.7, 0.0, 0.0, 0.7, 0.0, 0.7};

    memcpy(f->W, W, sizeof(W));
    assert_int_equal(nmf_gram(f->W, TERMS, K, f->G, NULL), 0);
    f->m = (batch_model){7, 5, K, TERMS, f->W, f->G};
}

static void test_duplicates_in_one_batch_and_already_processed(void **state)
{
    work_item it[4] = {
        item(5, "a", 1, TF_EVENT_CREATED, NULL, 0),
        item(5, "a", 1, TF_EVENT_CREATED, NULL, 0), /* the same event delivered twice */
        item(6, "b", 1, TF_EVENT_CREATED, NULL, 0), /* committed by another worker */
        item(7, "c", 1, TF_EVENT_CREATED, NULL, 0),
    };
    const int64_t processed[] = {6};

    batch_mark_duplicates(it, 4, processed, 1);
    assert_int_equal(it[0].outcome, ITEM_PENDING);
    assert_int_equal(it[1].outcome, ITEM_DUPLICATE);
    assert_int_equal(it[2].outcome, ITEM_DUPLICATE);
    assert_int_equal(it[3].outcome, ITEM_PENDING);
    clear_all(it, NULL, 4);
}

static void test_newest_event_of_a_document_in_the_batch_wins(void **state)
{
    work_item it[4] = {
        item(10, "a", 2, TF_EVENT_UPDATED, NULL, 0),
        item(11, "a", 3, TF_EVENT_UPDATED, NULL, 0),
        item(12, "a", 1, TF_EVENT_CREATED, NULL, 0), /* the insert arriving last */
        item(13, "a", 3, TF_EVENT_UPDATED, NULL, 0), /* equal version: the first one wins */
    };

    batch_mark_duplicates(it, 4, NULL, 0);
    assert_int_equal(it[0].outcome, ITEM_STALE);
    assert_int_equal(it[1].outcome, ITEM_PENDING);
    assert_int_equal(it[2].outcome, ITEM_STALE);
    assert_int_equal(it[3].outcome, ITEM_STALE);
    clear_all(it, NULL, 4);
}

static void test_update_before_insert_keeps_newest(void **state)
{
    const int32_t ids[] = {0};
    const float w[] = {1.0f};
    work_item older = item(20, "a", 1, TF_EVENT_CREATED, ids, 1);
    work_item same = item(21, "a", 3, TF_EVENT_UPDATED, ids, 1);
    work_item newer = item(22, "a", 4, TF_EVENT_UPDATED, ids, 1);
    doc_state s = stored(3, 0, ids, w, 1, NULL, 0);
    doc_state none = {0};

    assert_false(batch_applies(&older, &s)); /* the insert after its update: ignored */
    assert_false(batch_applies(&same, &s));  /* a redelivery of the stored version */
    same.ev.replay_of = 9;
    assert_true(batch_applies(&same, &s));   /* a replay recomputes the stored version */
    assert_true(batch_applies(&newer, &s));
    assert_true(batch_applies(&older, &none)); /* an update before any insert applies */
    work_item_clear(&older);
    work_item_clear(&same);
    work_item_clear(&newer);
    doc_state_clear(&s);
}

static void test_retraction_only_of_the_current_epochs_contribution(void **state)
{
    model_fx f;
    const int32_t ids[] = {0, 1};
    const float w[] = {0.6f, 0.8f}, h[K] = {0.9f, 0.1f};
    doc_state cur = stored(2, 6, ids, w, 2, h, K);   /* folded at 6 >= epoch 5 */
    doc_state old = stored(2, 4, ids, w, 2, h, K);   /* folded before the refit of epoch 5 */
    doc_state unfolded = stored(2, 0, ids, w, 2, NULL, 0);
    doc_state other_k = stored(2, 6, ids, w, 2, h, 1);
    doc_state dead = stored(2, 6, ids, w, 2, h, K);

    model_init(&f);
    dead.deleted = 1;
    assert_true(batch_retracts(&cur, &f.m));
    assert_false(batch_retracts(&old, &f.m));
    assert_false(batch_retracts(&unfolded, &f.m));
    assert_false(batch_retracts(&other_k, &f.m));
    assert_false(batch_retracts(&dead, &f.m));
    f.m.version = 0;
    assert_false(batch_retracts(&cur, &f.m)); /* no model: no statistics to retract from */
    doc_state_clear(&cur);
    doc_state_clear(&old);
    doc_state_clear(&unfolded);
    doc_state_clear(&other_k);
    doc_state_clear(&dead);
}

static void test_update_retracts_exactly_the_stored_contribution(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t old_ids[] = {0, 1}, new_ids[] = {2, 3};
    const float w[] = {0.6f, 0.8f}, h[K] = {0.9f, 0.1f};
    work_item it[1] = {item(30, "a", 3, TF_EVENT_UPDATED, new_ids, 2)};
    doc_state s[1] = {stored(2, 7, old_ids, w, 2, h, K)};
    batch_result r;

    model_init(&f);
    batch_result_init(&r, K);
    assert_int_equal(batch_compute(it, 1, s, &f.m, v, &r, NULL), 0);
    assert_int_equal(it[0].outcome, ITEM_APPLIED);
    assert_int_equal(r.applied, 1);
    /* the previous (x, h) comes back exactly as stored */
    assert_int_equal(r.retract.X.n_rows, 1);
    assert_int_equal(r.retract.X.row_ptr[1], 2);
    assert_int_equal(r.retract.X.col_idx[0], 0);
    assert_int_equal(r.retract.X.col_idx[1], 1);
    assert_true(r.retract.X.val[0] == 0.6f && r.retract.X.val[1] == 0.8f);
    assert_true(r.retract.H[0] == (double)0.9f && r.retract.H[1] == (double)0.1f);
    /* the new vector is folded in: it lies on topic 1, and every value is a float */
    assert_int_equal(r.add.X.n_rows, 1);
    assert_int_equal(r.add_item[0], 0);
    assert_true(r.add.H[1] > 0.5 && r.add.H[0] < 1e-6);
    for (int j = 0; j < K; j++)
        assert_true(r.add.H[j] == (double)(float)r.add.H[j]);
    /* a replaced document: live count unchanged, old terms −1, new terms +1 */
    assert_int_equal(r.n_docs, 0);
    assert_int_equal(r.df.n, 4);
    for (size_t i = 0; i < r.df.n; i++)
        assert_int_equal(r.df.deltas[i], r.df.terms[i] < 2 ? -1 : 1);
    batch_result_free(&r);
    clear_all(it, s, 1);
    tf_vocab_free(v);
}

static void test_retract_then_add_of_the_same_document_cancels_in_the_delta(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t ids[] = {0, 1};
    work_item first[1] = {item(40, "a", 1, TF_EVENT_CREATED, ids, 2)};
    work_item second[1] = {item(41, "a", 2, TF_EVENT_UPDATED, ids, 2)};
    doc_state none[1] = {{0}}, s[1];
    batch_result r1, r2;
    nmf_delta *d = nmf_delta_new(K, NULL);
    float x[2], h[K];

    model_init(&f);
    batch_result_init(&r1, K);
    assert_int_equal(batch_compute(first, 1, none, &f.m, v, &r1, NULL), 0);
    /* what the database stores: the float vector and mixture of the first batch */
    for (int i = 0; i < 2; i++)
        x[i] = r1.add.X.val[i];
    for (int j = 0; j < K; j++)
        h[j] = (float)r1.add.H[j];
    s[0] = stored(1, 7, ids, x, 2, h, K);
    batch_result_init(&r2, K);
    assert_int_equal(batch_compute(second, 1, s, &f.m, v, &r2, NULL), 0);
    /* Σ deltas = +first − retraction + second = second: the retraction cancels the first */
    assert_int_equal(nmf_delta_add(d, &r1.add.X, r1.add.H, 1.0, NULL), 0);
    assert_int_equal(nmf_delta_add(d, &r2.retract.X, r2.retract.H, -1.0, NULL), 0);
    for (int i = 0; i < K * K; i++)
        assert_true(nmf_delta_A(d)[i] == 0.0);
    assert_int_equal(r1.n_docs + r2.n_docs, 1);
    batch_result_free(&r1);
    batch_result_free(&r2);
    nmf_delta_free(d);
    clear_all(first, none, 1);
    clear_all(second, s, 1);
    tf_vocab_free(v);
}

static void test_delete_then_create_in_one_batch_applies_the_create(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t old_ids[] = {0}, new_ids[] = {3};
    const float w[] = {1.0f}, h[K] = {0.5f, 0.0f};
    work_item it[2] = {
        item(50, "a", 2, TF_EVENT_DELETED, NULL, 0),
        item(51, "a", 3, TF_EVENT_CREATED, new_ids, 1), /* the key came back */
    };
    doc_state s[2] = {stored(1, 7, old_ids, w, 1, h, K), stored(1, 7, old_ids, w, 1, h, K)};
    batch_result r;

    model_init(&f);
    batch_result_init(&r, K);
    batch_mark_duplicates(it, 2, NULL, 0);
    assert_int_equal(it[0].outcome, ITEM_STALE);
    assert_int_equal(batch_compute(it, 2, s, &f.m, v, &r, NULL), 0);
    assert_int_equal(it[1].outcome, ITEM_APPLIED);
    assert_int_equal(r.stale, 1);
    assert_int_equal(r.applied, 1);
    assert_int_equal(r.retract.X.n_rows, 1); /* the old version, once */
    assert_int_equal(r.add.X.n_rows, 1);
    assert_int_equal(r.n_docs, 0);
    batch_result_free(&r);
    clear_all(it, s, 2);
    tf_vocab_free(v);
}

static void test_delete_retracts_and_adds_nothing(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t ids[] = {2};
    const float w[] = {1.0f}, h[K] = {0.0f, 0.7f};
    work_item it[1] = {item(60, "a", 5, TF_EVENT_DELETED, NULL, 0)};
    doc_state s[1] = {stored(4, 7, ids, w, 1, h, K)};
    batch_result r;

    model_init(&f);
    batch_result_init(&r, K);
    assert_int_equal(batch_compute(it, 1, s, &f.m, v, &r, NULL), 0);
    assert_int_equal(it[0].outcome, ITEM_APPLIED);
    assert_int_equal(r.retract.X.n_rows, 1);
    assert_int_equal(r.add.X.n_rows, 0);
    assert_int_equal(r.n_docs, -1);
    assert_int_equal(r.df.n, 1);
    assert_int_equal(r.df.terms[0], 2);
    assert_int_equal(r.df.deltas[0], -1);
    batch_result_free(&r);
    clear_all(it, s, 1);
    tf_vocab_free(v);
}

static void test_older_version_after_newer_is_stale_and_changes_nothing(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t ids[] = {1};
    const float w[] = {1.0f}, h[K] = {0.6f, 0.0f};
    work_item it[1] = {item(70, "a", 4, TF_EVENT_UPDATED, ids, 1)};
    doc_state s[1] = {stored(5, 7, ids, w, 1, h, K)};
    batch_result r;

    model_init(&f);
    batch_result_init(&r, K);
    assert_int_equal(batch_compute(it, 1, s, &f.m, v, &r, NULL), 0);
    assert_int_equal(it[0].outcome, ITEM_STALE);
    assert_int_equal(r.stale, 1);
    assert_int_equal(r.retract.X.n_rows + r.add.X.n_rows, 0);
    assert_int_equal(r.df.n, 0);
    assert_int_equal(r.n_docs, 0);
    batch_result_free(&r);
    clear_all(it, s, 1);
    tf_vocab_free(v);
}

static void test_without_a_model_vectors_are_kept_unfolded(void **state)
{
    model_fx f;
    tf_vocab *v = vocab();
    const int32_t ids[] = {0, 2};
    work_item it[1] = {item(80, "a", 1, TF_EVENT_CREATED, ids, 2)};
    doc_state none[1] = {{0}};
    batch_result r;
    double norm = 0;

    model_init(&f);
    f.m.version = 0;
    batch_result_init(&r, 0);
    assert_int_equal(batch_compute(it, 1, none, &f.m, v, &r, NULL), 0);
    assert_int_equal(r.add.X.n_rows, 1);
    assert_int_equal(r.retract.X.n_rows, 0);
    assert_int_equal(r.n_docs, 1);
    for (int i = 0; i < 2; i++)
        norm += (double)r.add.X.val[i] * r.add.X.val[i];
    assert_true(norm > 0.999 && norm < 1.001); /* an L2-normalised tf-idf vector */
    batch_result_free(&r);
    clear_all(it, none, 1);
    tf_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duplicates_in_one_batch_and_already_processed),
        cmocka_unit_test(test_newest_event_of_a_document_in_the_batch_wins),
        cmocka_unit_test(test_update_before_insert_keeps_newest),
        cmocka_unit_test(test_retraction_only_of_the_current_epochs_contribution),
        cmocka_unit_test(test_update_retracts_exactly_the_stored_contribution),
        cmocka_unit_test(test_retract_then_add_of_the_same_document_cancels_in_the_delta),
        cmocka_unit_test(test_delete_then_create_in_one_batch_applies_the_create),
        cmocka_unit_test(test_delete_retracts_and_adds_nothing),
        cmocka_unit_test(test_older_version_after_newer_is_stale_and_changes_nothing),
        cmocka_unit_test(test_without_a_model_vectors_are_kept_unfolded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
