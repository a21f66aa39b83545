/*
 * test_text.c - the tokenizer: what terms English and Arabic postings turn into, and that
 * no input (ill-formed UTF-8, empty, huge) can make it fail. Expected tokens are written
 * space-separated so that a failure prints the whole actual list.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/datadir.h"
#include "base/utf8.h"
#include "engine/text.h"

static int setup_text(void **state)
{
    tf_text_opts o = {.data_dir = TOPICFLOW_SOURCE_DATA_DIR};
    tf_err err = {{0}};

    *state = tf_text_new(&o, &err);
    if (!*state)
        fprintf(stderr, "tf_text_new: %s\n", err.msg);
    return *state ? 0 : -1;
}

static int teardown_text(void **state)
{
    tf_text_free(*state);
    return 0;
}

/* The tokens of s[0..len) joined by single spaces. */
static const char *joined(tf_text *t, const char *s, size_t len, tf_tokens *k)
{
    static char buf[4096];
    tf_err err = {{0}};
    size_t o = 0;

    assert_int_equal(tf_text_tokenize(t, s, len, k, &err), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < k->n && o + k->tok[i].len + 2 < sizeof(buf); i++) {
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "",
                              k->bytes + k->tok[i].off);
    }
    return buf;
}

static void check(tf_text *t, const char *input, const char *expected)
{
    tf_tokens k;

    assert_string_equal(joined(t, input, strlen(input), &k), expected);
    assert_int_equal(k.invalid, 0);
}

/* Two inputs give the same terms. */
static void same(tf_text *t, const char *a, const char *b)
{
    char first[4096];
    tf_tokens k;

    snprintf(first, sizeof(first), "%s", joined(t, a, strlen(a), &k));
    assert_true(k.n > 0);
    assert_string_equal(joined(t, b, strlen(b), &k), first);
}

/* ---- English --------------------------------------------------------------------- */

static void test_technical_tokens_stay_whole(void **state)
{
    check(*state, "C++ and Node.js developer", "c++ node.js develop");
    check(*state, "C#, F#, .NET and ASP.NET", "c# f# .net asp.net");
    check(*state, "CI/CD with Vue.js.", "ci/cd vue.js");
    check(*state, "C/C++ (embedded)", "c c++ embed");
    check(*state, "node.js/react", "node.js react");
    check(*state, "GPT-4 and 3D printing, web3", "gpt-4 3d print web3");
    check(*state, "R&D in R and C", "r&d r c");
}

static void test_english_stemming_merges_inflections(void **state)
{
    check(*state, "engineering engineers Engineer", "engin engin engin");
    check(*state, "developer's developers developing", "develop develop develop");
}

static void test_english_stop_words_removed(void **state)
{
    check(*state, "The intern will work with the team and you", "intern work team");
    check(*state, "don't it's", "");
}

static void test_hyphens_and_punctuation_split_words(void **state)
{
    check(*state, "full-time, state-of-the-art (remote)!", "full time state art remot");
    check(*state, "\"Python\"...SQL; e.g. Excel", "python sql excel");
}

static void test_numbers_and_short_tokens_dropped(void **state)
{
    check(*state, "ab a 12 1234 x 3.5 2024-2025", "ab");
    check(*state, "python3 10x", "python3 10x");
}

static void test_min_token_length_is_an_option(void **state)
{
    tf_text_opts o = {.data_dir = NULL, .min_token_len = 3};
    tf_text *t = tf_text_new(&o, NULL);

    assert_non_null(t);
    check(t, "ai ml sql c", "sql c");
    tf_text_free(t);
}

static void test_nfkc_folds_fullwidth_and_ligatures(void **state)
{
    check(*state, "\xEF\xAC\x81nance", "financ");                         /* ﬁnance */
    check(*state, "\xEF\xBC\xB0\xEF\xBD\x99\xEF\xBD\x94\xEF\xBD\x88\xEF\xBD\x8F\xEF\xBD\x8E",
          "python");                                                     /* Ｐｙｔｈｏｎ */
    check(*state, "\xEF\xBC\xA3\xEF\xBC\x8B\xEF\xBC\x8B", "c++");          /* Ｃ＋＋ */
    same(*state, "STRASSE", "stra\xC3\x9F" "e");                         /* straße */
}

static void test_combining_accent_composes(void **state)
{
    same(*state, "caf\xC3\xA9 na\xC3\xAFve", "cafe\xCC\x81 nai\xCC\x88ve");
    same(*state, "CAF\xC3\x89", "caf\xC3\xA9");
}

static void test_typographic_apostrophe_is_ascii(void **state)
{
    same(*state, "company\xE2\x80\x99s", "company's");
    check(*state, "don\xE2\x80\x99t", "");
}

static void test_other_scripts_kept_unstemmed(void **state)
{
    check(*state, "Программист Ελλάδα", "программист ελλάδα");
}

/* ---- Arabic ---------------------------------------------------------------------- */

static void test_arabic_tashkeel_and_tatweel_ignored(void **state)
{
    same(*state, "مهندس البرمجة في شركة كبيرة", "مُهَنْدِسُ البَرْمَجَةِ في شَرِكَةٍ كبيرةٍ");
    same(*state, "مهندس", "مهـــندس");
    same(*state, "قال", "قَالَ");
}

static void test_arabic_alef_forms_unified(void **state)
{
    check(*state, "أحمد إحمد آحمد ٱحمد احمد", "احمد احمد احمد احمد احمد");
    /* alef + combining hamza above (decomposed input) composes to أ first */
    same(*state, "أحمد", "\xD8\xA7\xD9\x94حمد");
    /* decomposed and precomposed ؤ give the same term */
    same(*state, "\xD9\x88\xD9\x94\xD9\x84\xD9\x81\xD8\xA7\xD8\xAA", "ؤلفات");
}

static void test_arabic_taa_marbuta_and_alef_maqsura(void **state)
{
    same(*state, "مدرسة مستشفى", "مدرسه مستشفي");
}

static void test_arabic_definite_article_and_conjunction(void **state)
{
    /* Snowball strips ال, بال, لل; the tokenizer adds وال and فال */
    check(*state, "المطور والمطور فالمطور بالمطور للمطورين مطور", "مطور مطور مطور مطور مطور مطور");
}

static void test_arabic_stop_words_removed(void **state)
{
    check(*state, "هذا هو المطور الذي يعمل على التطوير", "مطور يعمل تطوير");
    check(*state, "إلى في من على عن مع والتي", "");
}

static void test_arabic_indic_digits_are_numbers(void **state)
{
    check(*state, "٢٠٢٤ ۱۲۳ ٢٠٢٤م رقم", "رقم");
    same(*state, "python٣", "python3");
    same(*state, "python۳", "python3");
}

static void test_mixed_english_arabic_sentence(void **state)
{
    check(*state, "We need a Python developer مطلوب مطور بايثون للعمل في الرياض",
          "need python develop مطلوب مطور بايث عمل رياض");
    check(*state, "javaمطور", "java مطور");
}

static void test_arabic_presentation_forms_normalized(void **state)
{
    /* ﻣﻄﻮﺭ: isolated/initial/medial presentation forms, folded by NFKC */
    same(*state, "\xEF\xBB\xA3\xEF\xBB\x84\xEF\xBB\xAE\xEF\xBA\xAD", "مطور");
}

/* ---- robustness ------------------------------------------------------------------ */

static void test_invalid_utf8_replaced_and_counted(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
        size_t invalid;
        const char *tokens;
    } cases[] = {
        {"ab\x80" "cd", 5, 1, "ab cd"},             /* lone continuation byte */
        {"\xC0\xAF" "data", 6, 2, "data"},          /* overlong '/' : two bad bytes */
        {"\xE0\x80\xAF" "data", 7, 3, "data"},      /* overlong 3-byte form */
        {"\xED\xA0\x80" "data", 7, 3, "data"},      /* UTF-16 surrogate D800 */
        {"\xF4\x90\x80\x80" "data", 8, 4, "data"},  /* above U+10FFFF */
        {"\xFF\xFE" "data", 6, 2, "data"},          /* bytes that never occur */
        {"data \xE2\x82", 7, 1, "data"},            /* truncated at the end */
        {"data \xF0\x9F\x98", 8, 1, "data"},        /* truncated 4-byte sequence */
        {"caf\xC3" "e", 5, 1, "caf"},               /* lead byte followed by ASCII */
    };
    tf_tokens k;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(joined(*state, cases[i].bytes, cases[i].len, &k), cases[i].tokens);
        assert_int_equal(k.invalid, cases[i].invalid);
    }
}

static void test_random_bytes_never_crash(void **state)
{
    unsigned char doc[512];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    tf_err err = {{0}};
    tf_tokens k;

    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(round % 512);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* bias towards UTF-8 lead/continuation bytes and separators */
            doc[i] = (x & 3) == 0 ? (unsigned char)(0x80 | (x >> 8 & 0x7F))
                                  : (unsigned char)(x >> 16);
        }
        assert_int_equal(tf_text_tokenize(*state, (const char *)doc, len, &k, &err), 0);
        for (size_t i = 0; i < k.n; i++) {
            const char *s = k.bytes + k.tok[i].off;
            assert_true(k.tok[i].len > 0);
            assert_int_equal(strlen(s), k.tok[i].len);
            assert_int_equal(tf_utf8_check(s, k.tok[i].len), k.tok[i].len);
        }
    }
}

static void test_empty_document_has_no_tokens(void **state)
{
    tf_tokens k;

    assert_string_equal(joined(*state, "", 0, &k), "");
    assert_int_equal(k.n, 0);
    assert_int_equal(k.truncated, 0);
    assert_string_equal(joined(*state, " \t\n.,;!?-- ++ // ", 17, &k), "");
    assert_int_equal(k.n, 0);
}

static char *repeat(const char *unit, size_t times, size_t *len)
{
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);

    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * u, unit, u);
    s[u * times] = '\0';
    *len = u * times;
    return s;
}

static void test_huge_document_is_tokenized(void **state)
{
    tf_text_opts o = {.data_dir = NULL, .max_input = 8u << 20};
    tf_text *t = tf_text_new(&o, NULL);
    const char *unit = "Python developer مطور بايثون ";
    size_t times = (5u << 20) / strlen(unit), len;
    char *doc = repeat(unit, times, &len);
    tf_tokens k;
    tf_err err = {{0}};

    assert_non_null(t);
    assert_int_equal(tf_text_tokenize(t, doc, len, &k, &err), 0);
    assert_int_equal(k.n, 4 * times);
    assert_int_equal(k.truncated, 0);
    assert_string_equal(k.bytes + k.tok[k.n - 1].off, "بايث");
    free(doc);
    tf_text_free(t);
}

static void test_input_beyond_max_is_cut_on_a_boundary(void **state)
{
    tf_text_opts o = {.data_dir = NULL, .max_input = 12};
    tf_text *t = tf_text_new(&o, NULL);
    tf_tokens k;

    assert_non_null(t);
    /* "data " is 5 bytes, then 2-byte letters: byte 12 is the second byte of the 4th
     * letter (ر), so the document read is "data مطو" */
    assert_string_equal(joined(t, "data مطورين", strlen("data مطورين"), &k), "data مطو");
    assert_int_equal(k.truncated, 1);
    assert_int_equal(k.invalid, 0);
    tf_text_free(t);
}

static void test_overlong_runs_are_not_tokens(void **state)
{
    size_t len;
    char *doc = repeat("a", 65, &len);

    check(*state, doc, "");
    doc[64] = '\0';
    assert_int_equal(strlen(joined(*state, doc, 64, &(tf_tokens){0})), 64);
    free(doc);
}

static void test_results_do_not_depend_on_the_word_cache(void **state)
{
    char word[32], first[4096];
    tf_tokens k;
    const char *doc = "Engineering interns build Node.js services and مطورين";

    snprintf(first, sizeof(first), "%s", joined(*state, doc, strlen(doc), &k));
    /* enough distinct words to fill and clear the cache several times */
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(word, sizeof(word), "word%dx", i);
        joined(*state, word, (size_t)n, &k);
        assert_int_equal(k.n, 1);
    }
    assert_string_equal(joined(*state, doc, strlen(doc), &k), first);
}

/* ---- construction ------------------------------------------------------------------ */

static void test_missing_stop_words_fail_with_the_path(void **state)
{
    tf_text_opts o = {.data_dir = "/nonexistent/topicflow-data"};
    tf_err err = {{0}};

    assert_null(tf_text_new(&o, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/topicflow-data/stopwords/en.txt"));
}

static void test_without_stop_words_function_words_remain(void **state)
{
    tf_text *t = tf_text_new(&(tf_text_opts){0}, NULL);

    assert_non_null(t);
    check(t, "the team", "the team");
    tf_text_free(t);
}

static void test_data_dir_from_environment(void **state)
{
    setenv("TOPICFLOW_DATA_DIR", "/srv/topicflow/data", 1);
    assert_string_equal(tf_data_dir(), "/srv/topicflow/data");
    setenv("TOPICFLOW_DATA_DIR", "", 1);
    assert_string_equal(tf_data_dir(), TOPICFLOW_SOURCE_DATA_DIR);
    unsetenv("TOPICFLOW_DATA_DIR");
    assert_string_equal(tf_data_dir(), TOPICFLOW_SOURCE_DATA_DIR);
}

static void test_utf8_floor_never_splits_a_sequence(void **state)
{
    const char *s = "a\xD9\x85\xE2\x82\xAC\xF0\x9F\x98\x80"; /* a م € 😀 */
    size_t len = strlen(s);
    static const size_t want[] = {0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10};

    for (size_t max = 0; max <= len; max++)
        assert_int_equal(tf_utf8_floor(s, len, max), want[max]);
    assert_int_equal(tf_utf8_floor(s, len, 100), len);
}

/* The surface forms of s's tokens joined by single spaces. */
static const char *forms(tf_text *t, const char *s)
{
    static char buf[4096];
    tf_tokens k;
    tf_err err = {{0}};
    size_t o = 0;

    assert_int_equal(tf_text_tokenize(t, s, strlen(s), &k, &err), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < k.n && o + k.tok[i].form_len + 2 < sizeof(buf); i++) {
        assert_int_equal(strlen(k.bytes + k.tok[i].form_off), k.tok[i].form_len);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? " " : "",
                              k.bytes + k.tok[i].form_off);
    }
    return buf;
}

static void test_surface_forms_are_the_words_before_stemming(void **state)
{
    tf_text *t = *state;

    check(t, "Financial Warehouses, C++ and node.js", "financi warehous c++ node.js");
    assert_string_equal(forms(t, "Financial Warehouses, C++ and node.js"),
                        "financial warehouses c++ node.js");
    /* Arabic: the letters as written (hamza forms, taa marbuta), without tashkeel and
     * tatweel; the conjunction the tokenizer strips off وال is gone from the form too */
    check(t, "\u0625\u0646\u0634\u0627\u0626\u064A\u0629", "\u0627\u0646\u0634\u0627\u0621");
    assert_string_equal(forms(t, "\u0625\u0646\u0634\u0627\u0626\u0650\u064A\u0640\u0629"),
                        "\u0625\u0646\u0634\u0627\u0626\u064A\u0629");
    assert_string_equal(forms(t, "\u0648\u0627\u0644\u0645\u0647\u0646\u062F\u0633"),
                        "\u0627\u0644\u0645\u0647\u0646\u062F\u0633");
    /* the word cache gives the same forms on a second pass */
    assert_string_equal(forms(t, "warehouses warehouse"), "warehouses warehouse");
}

/* A posting is Arabic when most of its terms are written in Arabic: the technical tokens
 * of an Arabic posting do not make it English, nor a few Arabic words an English one. */
static void test_a_document_is_arabic_by_most_of_its_terms(void **state)
{
    tf_text *t = *state;
    tf_tokens k;
    const char *ar = "مطلوب متدرب تصميم جرافيك يجيد photoshop و illustrator";
    const char *en = "graphic design intern, photoshop; مصمم wanted";

    assert_int_equal(tf_text_tokenize(t, ar, strlen(ar), &k, NULL), 0);
    assert_true(k.n > 2);
    assert_int_equal(tf_text_tokens_arabic(&k), 1);
    assert_int_equal(tf_text_tokenize(t, en, strlen(en), &k, NULL), 0);
    assert_int_equal(tf_text_tokens_arabic(&k), 0);
    assert_int_equal(tf_text_tokenize(t, "", 0, &k, NULL), 0);
    assert_int_equal(tf_text_tokens_arabic(&k), 0);
}

#define WITH_TEXT(test) cmocka_unit_test_setup_teardown(test, setup_text, teardown_text)

int main(void)
{
    const struct CMUnitTest tests[] = {
        WITH_TEXT(test_technical_tokens_stay_whole),
        WITH_TEXT(test_english_stemming_merges_inflections),
        WITH_TEXT(test_english_stop_words_removed),
        WITH_TEXT(test_hyphens_and_punctuation_split_words),
        WITH_TEXT(test_numbers_and_short_tokens_dropped),
        WITH_TEXT(test_surface_forms_are_the_words_before_stemming),
        cmocka_unit_test(test_min_token_length_is_an_option),
        WITH_TEXT(test_nfkc_folds_fullwidth_and_ligatures),
        WITH_TEXT(test_combining_accent_composes),
        WITH_TEXT(test_typographic_apostrophe_is_ascii),
        WITH_TEXT(test_other_scripts_kept_unstemmed),
        WITH_TEXT(test_arabic_tashkeel_and_tatweel_ignored),
        WITH_TEXT(test_arabic_alef_forms_unified),
        WITH_TEXT(test_arabic_taa_marbuta_and_alef_maqsura),
        WITH_TEXT(test_arabic_definite_article_and_conjunction),
        WITH_TEXT(test_arabic_stop_words_removed),
        WITH_TEXT(test_arabic_indic_digits_are_numbers),
        WITH_TEXT(test_mixed_english_arabic_sentence),
        WITH_TEXT(test_arabic_presentation_forms_normalized),
        WITH_TEXT(test_invalid_utf8_replaced_and_counted),
        WITH_TEXT(test_random_bytes_never_crash),
        WITH_TEXT(test_empty_document_has_no_tokens),
        cmocka_unit_test(test_huge_document_is_tokenized),
        cmocka_unit_test(test_input_beyond_max_is_cut_on_a_boundary),
        WITH_TEXT(test_overlong_runs_are_not_tokens),
        WITH_TEXT(test_results_do_not_depend_on_the_word_cache),
        WITH_TEXT(test_a_document_is_arabic_by_most_of_its_terms),
        cmocka_unit_test(test_missing_stop_words_fail_with_the_path),
        cmocka_unit_test(test_without_stop_words_function_words_remain),
        cmocka_unit_test(test_data_dir_from_environment),
        cmocka_unit_test(test_utf8_floor_never_splits_a_sequence),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
