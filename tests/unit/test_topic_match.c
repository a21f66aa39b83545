/*
 * test_topic_match.c - topic ids survive a refit: the Hungarian assignment is optimal,
 * recovers a known permutation, and copes with models of different k and vocabulary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "engine/topic_match.h"

static void random_topics(double *W, int terms, int k, uint64_t seed)
{
    uint64_t rng = seed;
    for (int i = 0; i < terms * k; i++)
        W[i] = tf_rng_unit(&rng) < 0.3 ? tf_rng_unit(&rng) : 0.0;
}

/* W_new[:, j] = W_old[:, perm[j]] plus a little noise. */
static void permuted(const double *W_old, int terms, int k, const int *perm, double *W_new,
                     uint64_t seed)
{
    uint64_t rng = seed;
    for (int t = 0; t < terms; t++)
        for (int j = 0; j < k; j++)
            W_new[t * k + j] = W_old[t * k + perm[j]] + 0.01 * tf_rng_unit(&rng);
}

static void test_match_recovers_known_permutation(void **state)
{
    enum { T = 300, K = 12 };
    double W_old[T * K], W_new[T * K], sim[K];
    int perm[K] = { 3, 7, 0, 11, 5, 1, 9, 2, 10, 4, 8, 6 }, map[K];

    random_topics(W_old, T, K, 1);
    permuted(W_old, T, K, perm, W_new, 2);
    assert_int_equal(topic_match(W_old, T, K, W_new, T, K, map, sim, NULL), 0);
    for (int j = 0; j < K; j++) {
        assert_int_equal(map[j], perm[j]);
        assert_true(sim[j] > 0.95);
    }
}

static void test_match_leaves_surplus_new_topics_unmatched(void **state)
{
    enum { T = 100, KO = 3, KN = 5 };
    double W_old[T * KO], W_new[T * KN];
    int map[KN], used[KO] = { 0 }, unmatched = 0;
    uint64_t rng = 4;

    random_topics(W_old, T, KO, 3);
    /* new topics 4, 0, 2 are old 0, 1, 2; new 1 and 3 are unrelated */
    for (int t = 0; t < T; t++) {
        W_new[t * KN + 4] = W_old[t * KO + 0];
        W_new[t * KN + 0] = W_old[t * KO + 1];
        W_new[t * KN + 2] = W_old[t * KO + 2];
        W_new[t * KN + 1] = tf_rng_unit(&rng) < 0.1 ? 1.0 : 0.0;
        W_new[t * KN + 3] = tf_rng_unit(&rng) < 0.1 ? 1.0 : 0.0;
    }
    assert_int_equal(topic_match(W_old, T, KO, W_new, T, KN, map, NULL, NULL), 0);
    assert_int_equal(map[4], 0);
    assert_int_equal(map[0], 1);
    assert_int_equal(map[2], 2);
    for (int j = 0; j < KN; j++) {
        if (map[j] < 0) {
            unmatched++;
            continue;
        }
        assert_int_equal(used[map[j]], 0);
        used[map[j]] = 1;
    }
    assert_int_equal(unmatched, KN - KO);
}

static void test_match_with_fewer_new_topics_drops_old_ids(void **state)
{
    enum { T = 80, KO = 4, KN = 2 };
    double W_old[T * KO], W_new[T * KN];
    int map[KN];

    random_topics(W_old, T, KO, 8);
    for (int t = 0; t < T; t++) {
        W_new[t * KN + 0] = W_old[t * KO + 3];
        W_new[t * KN + 1] = W_old[t * KO + 1];
    }
    assert_int_equal(topic_match(W_old, T, KO, W_new, T, KN, map, NULL, NULL), 0);
    assert_int_equal(map[0], 3);
    assert_int_equal(map[1], 1);
}

static void test_match_compares_only_terms_both_models_know(void **state)
{
    enum { TO = 50, TN = 70, K = 3 };
    double W_old[TO * K], W_new[TN * K];
    int perm[K] = { 2, 0, 1 }, map[K];

    random_topics(W_old, TO, K, 5);
    permuted(W_old, TO, K, perm, W_new, 6);
    /* Terms the old model never saw carry weight that must not disturb the match. */
    for (int t = TO; t < TN; t++)
        for (int j = 0; j < K; j++)
            W_new[t * K + j] = 5.0 * (j == 0);
    assert_int_equal(topic_match(W_old, TO, K, W_new, TN, K, map, NULL, NULL), 0);
    for (int j = 0; j < K; j++)
        assert_int_equal(map[j], perm[j]);
}

static double best_by_brute_force(const double *cost, int n, int *perm, int depth, int *taken)
{
    double best = INFINITY;
    if (depth == n)
        return 0.0;
    for (int j = 0; j < n; j++) {
        if (taken[j])
            continue;
        taken[j] = 1;
        perm[depth] = j;
        double c = cost[depth * n + j] + best_by_brute_force(cost, n, perm, depth + 1, taken);
        taken[j] = 0;
        if (c < best)
            best = c;
    }
    return best;
}

static void test_assignment_is_optimal_on_random_costs(void **state)
{
    enum { N = 7 };
    uint64_t rng = 77;

    for (int trial = 0; trial < 20; trial++) {
        double cost[N * N], got = 0.0;
        int assign[N], perm[N], taken[N] = { 0 };
        for (int i = 0; i < N * N; i++)
            cost[i] = floor(tf_rng_unit(&rng) * 10.0) - 3.0; /* ties and negatives included */
        assert_int_equal(topic_assign_min(cost, N, N, assign, NULL), 0);
        for (int i = 0; i < N; i++)
            got += cost[i * N + assign[i]];
        assert_true(fabs(got - best_by_brute_force(cost, N, perm, 0, taken)) < 1e-12);
    }
}

static void test_assignment_rejects_bad_shapes(void **state)
{
    double cost[6] = { 0 };
    int assign[3];
    tf_err err = { 0 };

    assert_int_equal(topic_assign_min(cost, 3, 2, assign, &err), -1);
    assert_non_null(strstr(err.msg, "rows <= columns"));
    cost[1] = NAN;
    assert_int_equal(topic_assign_min(cost, 2, 3, assign, &err), -1);
    assert_int_equal(topic_match(cost, 2, 0, cost, 2, 3, assign, NULL, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_recovers_known_permutation),
        cmocka_unit_test(test_match_leaves_surplus_new_topics_unmatched),
        cmocka_unit_test(test_match_with_fewer_new_topics_drops_old_ids),
        cmocka_unit_test(test_match_compares_only_terms_both_models_know),
        cmocka_unit_test(test_assignment_is_optimal_on_random_costs),
        cmocka_unit_test(test_assignment_rejects_bad_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
