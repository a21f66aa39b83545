/*
 * test_vocab.c - the vocabulary (ids, document frequencies, export and reload) and the
 * TF-IDF rows and CSR matrices built from it, checked against hand-computed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "engine/corpus.h"
#include "engine/csr.h"
#include "engine/text.h"
#include "engine/vocab.h"

/* A tf_tokens over space-separated words, as the tokenizer would hand them over. */
typedef struct fake_tokens {
    char bytes[1024];
    tf_token tok[128];
    tf_tokens t;
} fake_tokens;

static const tf_tokens *tokens_of(fake_tokens *f, const char *words)
{
    size_t n = 0, len = strlen(words);

    assert_true(len < sizeof(f->bytes));
    memcpy(f->bytes, words, len + 1);
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && f->bytes[e] != ' ')
            e++;
        if (e > i) {
            f->tok[n].off = (uint32_t)i;
            f->tok[n++].len = (uint32_t)(e - i);
            f->bytes[e] = '\0';
        }
        i = e + 1;
    }
    memset(&f->t, 0, sizeof(f->t));
    f->t.bytes = f->bytes;
    f->t.tok = f->tok;
    f->t.n = n;
    return &f->t;
}

static void test_add_gives_dense_ids_and_lookup_finds_them(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);

    assert_non_null(v);
    assert_int_equal(tf_vocab_add(v, "python", 6, NULL), 0);
    assert_int_equal(tf_vocab_add(v, "sql", 3, NULL), 1);
    assert_int_equal(tf_vocab_add(v, "python", 6, NULL), 0);
    assert_int_equal(tf_vocab_lookup(v, "sql", 3), 1);
    assert_int_equal(tf_vocab_lookup(v, "sq", 2), -1);
    assert_int_equal(tf_vocab_lookup(v, "java", 4), -1);
    assert_int_equal(tf_vocab_size(v), 2);
    assert_int_equal(tf_vocab_terms(v), 2);
    assert_string_equal(tf_vocab_term(v, 1, NULL), "sql");
    assert_null(tf_vocab_term(v, 2, NULL));
    assert_null(tf_vocab_term(v, -1, NULL));
    assert_int_equal(tf_vocab_add(v, "", 0, NULL), -1);
    tf_vocab_free(v);
}

static void test_ids_survive_growth_and_rehash(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    char term[32];
    size_t len;

    assert_non_null(v);
    for (int i = 0; i < 200000; i++) {
        int n = snprintf(term, sizeof(term), "term%d", i);
        assert_int_equal(tf_vocab_add(v, term, (size_t)n, NULL), i);
    }
    for (int i = 0; i < 200000; i += 7) {
        int n = snprintf(term, sizeof(term), "term%d", i);
        assert_int_equal(tf_vocab_lookup(v, term, (size_t)n), i);
        assert_string_equal(tf_vocab_term(v, i, &len), term);
        assert_int_equal(len, (size_t)n);
    }
    assert_int_equal(tf_vocab_lookup(v, "term200000", 10), -1);
    tf_vocab_free(v);
}

static void test_df_counts_documents_and_retractions(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    int32_t doc1[] = {0, 1}, doc2[] = {1};
    tf_err err = {{0}};

    tf_vocab_add(v, "a", 1, NULL);
    tf_vocab_add(v, "b", 1, NULL);
    assert_int_equal(tf_vocab_add_doc(v, doc1, 2, &err), 0);
    assert_int_equal(tf_vocab_add_doc(v, doc2, 1, &err), 0);
    assert_int_equal(tf_vocab_docs(v), 2);
    assert_int_equal(tf_vocab_df(v, 0), 1);
    assert_int_equal(tf_vocab_df(v, 1), 2);

    assert_int_equal(tf_vocab_remove_doc(v, doc1, 2, &err), 0);
    assert_int_equal(tf_vocab_docs(v), 1);
    assert_int_equal(tf_vocab_df(v, 0), 0);
    assert_int_equal(tf_vocab_df(v, 1), 1);
    /* the term stays, with df 0: ids are never reused */
    assert_int_equal(tf_vocab_lookup(v, "a", 1), 0);
    tf_vocab_free(v);
}

static void test_bad_retraction_changes_nothing(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    int32_t ab[] = {0, 1}, a[] = {0}, unknown[] = {1, 7};
    tf_err err = {{0}};

    tf_vocab_add(v, "a", 1, NULL);
    tf_vocab_add(v, "b", 1, NULL);
    assert_int_equal(tf_vocab_remove_doc(v, a, 1, &err), -1); /* no document yet */
    assert_int_equal(tf_vocab_add_doc(v, a, 1, &err), 0);
    assert_int_equal(tf_vocab_remove_doc(v, ab, 2, &err), -1); /* b has df 0 */
    assert_non_null(strstr(err.msg, "id 1"));
    assert_int_equal(tf_vocab_remove_doc(v, unknown, 2, &err), -1);
    assert_int_equal(tf_vocab_add_doc(v, unknown, 2, &err), -1);
    assert_int_equal(tf_vocab_df(v, 0), 1);
    assert_int_equal(tf_vocab_df(v, 1), 0);
    assert_int_equal(tf_vocab_docs(v), 1);
    tf_vocab_free(v);
}

static void test_export_and_reload_rows(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL), *w = tf_vocab_new(NULL);
    const char *term;
    size_t len;

    tf_vocab_add(v, "node.js", 7, NULL);
    tf_vocab_add(v, "مطور", strlen("مطور"), NULL);
    tf_vocab_set_df(v, 0, 5, NULL);
    tf_vocab_set_df(v, 1, 2, NULL);
    tf_vocab_set_docs(v, 9);
    /* rows in reverse order, as a database may return them */
    for (int32_t id = tf_vocab_size(v) - 1; id >= 0; id--) {
        term = tf_vocab_term(v, id, &len);
        assert_int_equal(tf_vocab_put(w, id, term, len, tf_vocab_df(v, id), NULL), 0);
    }
    tf_vocab_set_docs(w, tf_vocab_docs(v));
    assert_int_equal(tf_vocab_size(w), 2);
    assert_int_equal(tf_vocab_lookup(w, "مطور", strlen("مطور")), 1);
    assert_int_equal(tf_vocab_df(w, 0), 5);
    assert_int_equal(tf_vocab_docs(w), 9);
    /* new terms continue after the loaded ids */
    assert_int_equal(tf_vocab_add(w, "sql", 3, NULL), 2);
    tf_vocab_free(v);
    tf_vocab_free(w);
}

static void test_reload_with_gaps_and_conflicts(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    tf_err err = {{0}};

    assert_int_equal(tf_vocab_put(v, 5, "sql", 3, 1, &err), 0);
    assert_int_equal(tf_vocab_size(v), 6);
    assert_int_equal(tf_vocab_terms(v), 1);
    assert_null(tf_vocab_term(v, 2, NULL));
    assert_int_equal(tf_vocab_put(v, 2, "java", 4, 3, &err), 0); /* fills a gap */
    assert_int_equal(tf_vocab_put(v, 2, "java", 4, 4, &err), 0); /* same row: df only */
    assert_int_equal(tf_vocab_df(v, 2), 4);
    assert_int_equal(tf_vocab_put(v, 3, "java", 4, 1, &err), -1); /* term has id 2 */
    assert_int_equal(tf_vocab_put(v, 5, "rust", 4, 1, &err), -1); /* id holds sql */
    assert_non_null(strstr(err.msg, "sql"));
    assert_int_equal(tf_vocab_put(v, -1, "go", 2, 1, &err), -1);
    assert_int_equal(tf_vocab_add(v, "rust", 4, NULL), 6);
    tf_vocab_free(v);
}

static void test_count_sorts_ids_and_counts_repeats(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;

    tf_bag_init(&bag);
    tf_vocab_add(v, "z", 1, NULL);
    tf_vocab_add(v, "y", 1, NULL);
    assert_int_equal(tf_vocab_count(v, tokens_of(&f, "x y z y x y"), TF_VOCAB_GROW, &bag, NULL), 0);
    assert_int_equal(bag.n, 3);
    assert_int_equal(bag.ids[0], 0);  /* z */
    assert_int_equal(bag.counts[0], 1);
    assert_int_equal(bag.ids[1], 1);  /* y */
    assert_int_equal(bag.counts[1], 3);
    assert_int_equal(bag.ids[2], 2);  /* x, new */
    assert_int_equal(bag.counts[2], 2);
    assert_int_equal(bag.n_unknown, 0);
    assert_int_equal(tf_vocab_df(v, 1), 0); /* counting leaves df alone */
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_count_first_gives_each_terms_first_token(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;

    tf_bag_init(&bag);
    tf_vocab_add(v, "z", 1, NULL);
    tf_vocab_add(v, "y", 1, NULL);
    /* w is unknown (no GROW): it has no bag entry, and the others keep theirs */
    assert_int_equal(tf_vocab_count(v, tokens_of(&f, "w y z y z"), TF_VOCAB_FIRST, &bag, NULL), 0);
    assert_int_equal(bag.n, 2);
    assert_int_equal(bag.ids[0], 0); /* z, first at token 2 */
    assert_int_equal(bag.first[0], 2);
    assert_int_equal(bag.ids[1], 1); /* y, first at token 1 */
    assert_int_equal(bag.first[1], 1);
    assert_int_equal(bag.n_unknown, 1);
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_count_without_grow_reports_unknown_tokens(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;

    tf_bag_init(&bag);
    tf_vocab_add(v, "y", 1, NULL);
    assert_int_equal(tf_vocab_count(v, tokens_of(&f, "x y w"), 0, &bag, NULL), 0);
    assert_int_equal(bag.n, 1);
    assert_int_equal(bag.ids[0], 0);
    assert_int_equal(bag.n_unknown, 2);
    assert_int_equal(bag.unknown[0], 0);
    assert_int_equal(bag.unknown[1], 2);
    assert_int_equal(tf_vocab_size(v), 1);
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_count_many_distinct_terms_in_order(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    tf_token tok[3000];
    char *bytes = malloc(3000 * 8);
    tf_tokens t = {.bytes = bytes, .tok = tok, .n = 3000};
    tf_bag bag;
    uint32_t x = 12345;

    tf_bag_init(&bag);
    for (int i = 0; i < 1000; i++) { /* ids 0..999 in order */
        char w[8];
        int n = snprintf(w, sizeof(w), "w%d", i);
        tf_vocab_add(v, w, (size_t)n, NULL);
    }
    for (int i = 0; i < 3000; i++) { /* random picks, many repeats */
        x = x * 1103515245u + 12345u;
        int n = snprintf(bytes + 8 * i, 8, "w%u", (x >> 8) % 1000);
        tok[i].off = (uint32_t)(8 * i);
        tok[i].len = (uint32_t)n;
    }
    assert_int_equal(tf_vocab_count(v, &t, 0, &bag, NULL), 0);
    int64_t total = 0;
    for (size_t i = 0; i < bag.n; i++) {
        if (i)
            assert_true(bag.ids[i - 1] < bag.ids[i]);
        total += bag.counts[i];
    }
    assert_int_equal(total, 3000);
    tf_bag_free(&bag);
    tf_vocab_free(v);
    free(bytes);
}

/* N = 3 documents; a has df 1, b has df 3. A document with a twice and b once:
 *   w_a = (1 + ln 2) (ln(4/2) + 1) = 1.693147 * 1.693147 = 2.866747
 *   w_b = (1 + ln 1) (ln(4/4) + 1) = 1
 *   norm = sqrt(2.866747^2 + 1) = 3.036156  ->  a = 0.944203, b = 0.329364 */
static void test_tfidf_row_matches_hand_computation(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    int32_t ids[] = {0, 1}, counts[] = {2, 1};
    float out[2];

    tf_vocab_put(v, 0, "a", 1, 1, NULL);
    tf_vocab_put(v, 1, "b", 1, 3, NULL);
    tf_vocab_set_docs(v, 3);
    tf_vocab_tfidf(v, ids, counts, 2, out);
    assert_float_equal(out[0], 0.944203, 1e-5);
    assert_float_equal(out[1], 0.329364, 1e-5);
    assert_float_equal(out[0] * out[0] + out[1] * out[1], 1.0, 1e-6);
    tf_vocab_free(v);
}

/* The same row with b's language weight 0.5: w_b = 0.5, norm = sqrt(2.866747^2 + 0.25)
 * = 2.910021 -> a = 0.985128, b = 0.171820. A weight of 1 changes no bit. */
static void test_language_weight_scales_the_idf(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    int32_t ids[] = {0, 1}, counts[] = {2, 1};
    float plain[2], out[2];
    tf_err err = {{0}};

    tf_vocab_put(v, 0, "a", 1, 1, NULL);
    tf_vocab_put(v, 1, "b", 1, 3, NULL);
    tf_vocab_set_docs(v, 3);
    tf_vocab_tfidf(v, ids, counts, 2, plain);
    assert_float_equal(tf_vocab_language_weight(v, 1), 1.0, 0);
    assert_int_equal(tf_vocab_set_language_weight(v, 1, 1.0f, &err), 0);
    tf_vocab_tfidf(v, ids, counts, 2, out);
    assert_memory_equal(out, plain, sizeof(out));
    assert_int_equal(tf_vocab_set_language_weight(v, 1, 0.5f, &err), 0);
    tf_vocab_tfidf(v, ids, counts, 2, out);
    assert_float_equal(out[0], 0.985128, 1e-5);
    assert_float_equal(out[1], 0.171820, 1e-5);
    /* refused: out of [0, 1], an unused id; a new term starts at 1 */
    assert_int_equal(tf_vocab_set_language_weight(v, 1, 1.5f, &err), -1);
    assert_int_equal(tf_vocab_set_language_weight(v, 1, -0.1f, &err), -1);
    assert_int_equal(tf_vocab_set_language_weight(v, 7, 0.5f, &err), -1);
    assert_int_equal(tf_vocab_add(v, "c", 1, &err), 2);
    assert_float_equal(tf_vocab_language_weight(v, 2), 1.0, 0);
    tf_vocab_free(v);
}

/* A count matrix (every count 1) of n rows, row r holding the terms rows[r] (-1 ends). */
static void corpus_of(tf_csr *X, int32_t n_rows, int32_t n_cols, const int rows[][6])
{
    int64_t nnz = 0;

    for (int32_t r = 0; r < n_rows; r++)
        for (int i = 0; rows[r][i] >= 0; i++)
            nnz++;
    assert_int_equal(csr_alloc(X, n_rows, n_cols, nnz, NULL), 0);
    nnz = 0;
    for (int32_t r = 0; r < n_rows; r++) {
        for (int i = 0; rows[r][i] >= 0; i++) {
            X->col_idx[nnz] = rows[r][i];
            X->val[nnz++] = 1.0f;
        }
        X->row_ptr[r + 1] = nnz;
    }
}

/* Four English rows, four Arabic (pi = 1/2). Terms 0 and 1 are used as evenly as the
 * corpus (weight 1); 2 only in English, 3 only in Arabic (0); 4 in two English rows and one
 * Arabic (p = 1/3: min(2/3, 4/3)). The Arabic rows hold 64 %, 64 %, 57 % and 0 % of their
 * tf-idf mass on shared terms (idf with N = 8: df 2 -> 2.0986, 3 -> 1.8109, 4 -> 1.5878),
 * a mean of 0.459, above TF_CORPUS_LANGUAGE_SHARED: the rule applies in full. Unrecorded
 * rows (-1) count for nothing: term 5, only in one, weighs 1. */
static void test_language_weights_follow_the_balance_of_each_term(void **state)
{
    const int rows[][6] = {{0, 2, -1}, {1, 2, -1}, {2, 4, -1}, {2, 4, -1},
                           {0, 3, -1}, {1, 3, -1}, {3, 4, -1}, {3, -1}, {5, -1}};
    const int8_t arabic[] = {0, 0, 0, 0, 1, 1, 1, 1, -1};
    tf_csr X;
    float w[6];
    double strength;

    corpus_of(&X, 9, 6, rows);
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, &strength, NULL), 0);
    assert_float_equal(strength, 1.0, 0);
    assert_float_equal(w[0], 1.0, 1e-6);
    assert_float_equal(w[1], 1.0, 1e-6);
    assert_float_equal(w[2], 0.0, 1e-6);
    assert_float_equal(w[3], 0.0, 1e-6);
    assert_float_equal(w[4], 2.0 / 3.0, 1e-6);
    assert_float_equal(w[5], 1.0, 0);
    csr_free(&X);
}

/* Where the languages share little text, a language's own words keep more of their weight:
 * only one Arabic row of four shares a term with the English rows (64 % of its mass), so
 * shared = 0.159 and the strength 0.159 / 0.25 = 0.636; a one-language term weighs 0.364.
 * A tenth of the rows in Arabic (m = 0.1) scales it by 0.4 more; none, all, or no recorded
 * language leave every term 1. */
static void test_language_weights_grow_with_what_the_languages_share(void **state)
{
    const int rows[][6] = {{0, 2, -1}, {2, -1}, {2, -1}, {2, -1},
                           {0, 3, -1}, {3, -1}, {3, -1}, {3, -1}};
    int8_t arabic[] = {0, 0, 0, 0, 1, 1, 1, 1};
    tf_csr X;
    float w[4];
    double strength;

    corpus_of(&X, 8, 4, rows);
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, &strength, NULL), 0);
    assert_float_equal(strength, 0.635960, 1e-5);
    assert_float_equal(w[0], 1.0, 1e-6);
    assert_float_equal(w[2], 0.364040, 1e-5);
    assert_float_equal(w[3], 0.364040, 1e-5);
    for (int r = 0; r < 8; r++)
        arabic[r] = 0;
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, &strength, NULL), 0);
    assert_float_equal(strength, 0.0, 0);
    for (int t = 0; t < 4; t++)
        assert_float_equal(w[t], 1.0, 0);
    for (int r = 0; r < 8; r++)
        arabic[r] = 1;
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, NULL, NULL), 0);
    assert_float_equal(w[3], 1.0, 0);
    for (int r = 0; r < 8; r++)
        arabic[r] = -1;
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, NULL, NULL), 0);
    assert_float_equal(w[3], 1.0, 0);
    csr_free(&X);
}

/* Ten rows, one Arabic, 42 % of whose mass lies on a term shared with an English row
 * (shared above the threshold): m = 0.1 gives 0.4 of the strength. Term 0 has p = 1/2
 * against pi = 0.1: balance min(5, 5/9) = 5/9, weight 1 - 0.4 * 4/9. */
static void test_language_weights_grow_with_the_smaller_language(void **state)
{
    const int rows[][6] = {{0, 2, -1}, {1, 2, -1}, {1, 2, -1}, {1, 2, -1}, {1, 2, -1},
                           {1, 2, -1}, {1, 2, -1}, {1, 2, -1}, {1, 2, -1}, {0, 3, -1}};
    const int8_t arabic[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    tf_csr X;
    float w[4];
    double strength;

    corpus_of(&X, 10, 4, rows);
    assert_int_equal(tf_corpus_language_weights(&X, arabic, w, &strength, NULL), 0);
    /* the Arabic row: term 0 (df 2, balance 5/9) and term 3 (df 1, balance 0) */
    assert_float_equal(strength, 0.4, 1e-6);
    assert_float_equal(w[3], 0.6, 1e-6);
    assert_float_equal(w[2], 0.6, 1e-6); /* English only: balance 0 too */
    assert_float_equal(w[0], 1.0 - 0.4 * 4.0 / 9.0, 1e-6);
    csr_free(&X);
}

static void test_weighted_bag_has_unit_norm(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;
    double norm = 0;

    tf_bag_init(&bag);
    tf_vocab_count(v, tokens_of(&f, "p q r p p s q"), TF_VOCAB_GROW, &bag, NULL);
    tf_vocab_add_doc(v, bag.ids, bag.n, NULL);
    tf_vocab_weight(v, &bag);
    for (size_t i = 0; i < bag.n; i++) {
        assert_true(bag.weights[i] > 0);
        norm += (double)bag.weights[i] * bag.weights[i];
    }
    assert_float_equal(norm, 1.0, 1e-6);
    assert_true(bag.weights[0] > bag.weights[2]); /* p (3 times) outweighs r (once) */
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_empty_bag_gives_empty_row(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;

    tf_bag_init(&bag);
    assert_int_equal(tf_vocab_count(v, tokens_of(&f, ""), TF_VOCAB_GROW, &bag, NULL), 0);
    assert_int_equal(bag.n, 0);
    tf_vocab_weight(v, &bag);
    assert_int_equal(tf_vocab_add_doc(v, bag.ids, bag.n, NULL), 0);
    assert_int_equal(tf_vocab_docs(v), 1);
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_build_csr_from_documents(void **state)
{
    const char *docs[] = {
        "Python developer, Python and SQL",
        "",
        "مطور بايثون Python",
    };
    size_t lens[] = {strlen(docs[0]), 0, strlen(docs[2])};
    tf_text *t = tf_text_new(&(tf_text_opts){.data_dir = TOPICFLOW_SOURCE_DATA_DIR}, NULL);
    tf_vocab *v = tf_vocab_new(NULL);
    tf_csr m;
    tf_err err = {{0}};

    assert_non_null(t);
    assert_int_equal(tf_vocab_build_csr(v, t, docs, lens, 3, &m, &err), 0);
    assert_int_equal(csr_check(&m, &err), 0);
    assert_int_equal(m.n_rows, 3);
    assert_int_equal(m.n_cols, tf_vocab_size(v));
    assert_int_equal(tf_vocab_size(v), 5); /* python develop sql مطور بايث */
    assert_int_equal(m.row_ptr[1], 3);
    assert_int_equal(m.row_ptr[2], 3);  /* the empty document is an empty row */
    assert_int_equal(m.row_ptr[3], 6);
    assert_int_equal(tf_vocab_docs(v), 3);
    assert_int_equal(tf_vocab_df(v, tf_vocab_lookup(v, "python", 6)), 2);
    for (int32_t r = 0; r < m.n_rows; r++) {
        double norm = 0;
        for (int64_t i = m.row_ptr[r]; i < m.row_ptr[r + 1]; i++) {
            if (i > m.row_ptr[r])
                assert_true(m.col_idx[i - 1] < m.col_idx[i]);
            norm += (double)m.val[i] * m.val[i];
        }
        if (m.row_ptr[r + 1] > m.row_ptr[r])
            assert_float_equal(norm, 1.0, 1e-6);
    }
    csr_free(&m);
    tf_vocab_free(v);
    tf_text_free(t);
}

static void test_builder_rows_match_single_rows(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    fake_tokens f;
    tf_bag bag;
    tf_csr_builder b;
    tf_csr m;
    const char *docs[] = {"a b a", "b c", "c c c d"};

    tf_bag_init(&bag);
    tf_csr_builder_init(&b);
    for (int d = 0; d < 3; d++) {
        tf_vocab_count(v, tokens_of(&f, docs[d]), TF_VOCAB_GROW, &bag, NULL);
        tf_vocab_add_doc(v, bag.ids, bag.n, NULL);
        assert_int_equal(tf_csr_builder_add(&b, &bag, NULL), 0);
    }
    assert_int_equal(tf_csr_builder_finish(&b, v, &m, NULL), 0);
    assert_int_equal(m.n_rows, 3);
    assert_int_equal(m.n_cols, 4);
    for (int d = 0; d < 3; d++) { /* the stream path's row for the same document */
        tf_vocab_count(v, tokens_of(&f, docs[d]), 0, &bag, NULL);
        tf_vocab_weight(v, &bag);
        assert_int_equal(m.row_ptr[d + 1] - m.row_ptr[d], (int64_t)bag.n);
        for (size_t i = 0; i < bag.n; i++) {
            assert_int_equal(m.col_idx[m.row_ptr[d] + (int64_t)i], bag.ids[i]);
            assert_float_equal(m.val[m.row_ptr[d] + (int64_t)i], bag.weights[i], 1e-7);
        }
    }
    csr_free(&m);
    tf_csr_builder_free(&b);
    tf_bag_free(&bag);
    tf_vocab_free(v);
}

static void test_empty_batch_is_a_valid_matrix(void **state)
{
    tf_vocab *v = tf_vocab_new(NULL);
    tf_csr_builder b;
    tf_csr m;

    tf_csr_builder_init(&b);
    assert_int_equal(tf_csr_builder_finish(&b, v, &m, NULL), 0);
    assert_int_equal(m.n_rows, 0);
    assert_int_equal(csr_nnz(&m), 0);
    assert_int_equal(csr_check(&m, NULL), 0);
    csr_free(&m);
    tf_vocab_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_gives_dense_ids_and_lookup_finds_them),
        cmocka_unit_test(test_ids_survive_growth_and_rehash),
        cmocka_unit_test(test_df_counts_documents_and_retractions),
        cmocka_unit_test(test_bad_retraction_changes_nothing),
        cmocka_unit_test(test_export_and_reload_rows),
        cmocka_unit_test(test_reload_with_gaps_and_conflicts),
        cmocka_unit_test(test_count_sorts_ids_and_counts_repeats),
        cmocka_unit_test(test_count_first_gives_each_terms_first_token),
        cmocka_unit_test(test_count_without_grow_reports_unknown_tokens),
        cmocka_unit_test(test_count_many_distinct_terms_in_order),
        cmocka_unit_test(test_tfidf_row_matches_hand_computation),
        cmocka_unit_test(test_language_weight_scales_the_idf),
        cmocka_unit_test(test_language_weights_follow_the_balance_of_each_term),
        cmocka_unit_test(test_language_weights_grow_with_what_the_languages_share),
        cmocka_unit_test(test_language_weights_grow_with_the_smaller_language),
        cmocka_unit_test(test_weighted_bag_has_unit_norm),
        cmocka_unit_test(test_empty_bag_gives_empty_row),
        cmocka_unit_test(test_build_csr_from_documents),
        cmocka_unit_test(test_builder_rows_match_single_rows),
        cmocka_unit_test(test_empty_batch_is_a_valid_matrix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
