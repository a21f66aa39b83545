/*
 * test_lexicon.c - the bilingual lexicon: the builder's vote (most votes wins, ties to the
 * smaller English term, one line per Arabic term with its other senses after it, sorted),
 * the table's loading (comments, malformed lines named by file and line), the choice among
 * senses by usage, and the text pipeline mapping Arabic terms to
 * their English concept while English and unknown Arabic terms stay as they are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/lexicon.h"
#include "engine/text.h"

static char *write_temp(const char *text)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/tf-lexicon-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void vote(tf_lexicon_builder *b, const char *ar, const char *en)
{
    tf_err err;
    assert_int_equal(tf_lexicon_builder_vote(b, ar, strlen(ar), en, strlen(en), &err), 0);
}

/* The table b writes after header, as a string to free; frees b. */
static char *written(tf_lexicon_builder *b, const char *header, size_t *entries)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    tf_err err;

    assert_non_null(f);
    assert_int_equal(tf_lexicon_builder_write(b, f, header, entries, &err), 0);
    fclose(f);
    tf_lexicon_builder_free(b);
    return out;
}

static void test_builder_keeps_the_most_voted_meaning(void **state)
{
    size_t entries = 0;
    tf_err err;
    tf_lexicon_builder *b = tf_lexicon_builder_new(&err);
    char *out;

    (void)state;
    assert_non_null(b);
    vote(b, "مخز", "dishonor");
    vote(b, "مخز", "warehous");
    vote(b, "مخز", "warehous");
    vote(b, "تصميم", "design");
    vote(b, "قان", "law");      /* a tie: the smaller English term */
    vote(b, "قان", "canon");
    out = written(b, "# head\n", &entries);
    assert_int_equal(entries, 3);
    assert_string_equal(out, "# head\n"
                             "تصميم\tdesign\n"
                             "قان\tcanon\tlaw\n"
                             "مخز\twarehous\tdishonor\n");
    free(out);
}

/* A tie of votes goes to the English term more entries of the dictionaries hold (say data
 * over communiqu), and only then to the smaller in byte order. */
static void test_builder_breaks_ties_by_commonness(void **state)
{
    size_t entries = 0;
    tf_err err;
    tf_lexicon_builder *b = tf_lexicon_builder_new(&err);
    char *out;

    (void)state;
    assert_non_null(b);
    vote(b, "بيان", "communiqu");
    vote(b, "بيان", "data");
    for (int i = 0; i < 3; i++)
        assert_int_equal(tf_lexicon_builder_english(b, "data", 4, &err), 0);
    assert_int_equal(tf_lexicon_builder_english(b, "communiqu", 9, &err), 0);
    vote(b, "قان", "law"); /* neither counted: the smaller */
    vote(b, "قان", "canon");
    vote(b, "مخز", "warehous"); /* more votes beat commonness */
    vote(b, "مخز", "warehous");
    vote(b, "مخز", "data");
    out = written(b, NULL, &entries);
    assert_int_equal(entries, 3);
    assert_string_equal(out, "بيان\tdata\tcommuniqu\n"
                             "قان\tcanon\tlaw\n"
                             "مخز\twarehous\tdata\n");
    free(out);
}

/* With a corpus, the translation most of its documents use wins over the votes; the votes
 * still decide among translations the corpus never uses. */
static void test_builder_prefers_what_the_corpus_uses(void **state)
{
    size_t entries = 0;
    tf_err err;
    tf_lexicon_builder *b = tf_lexicon_builder_new(&err);
    char *out;

    (void)state;
    assert_non_null(b);
    vote(b, "مستخدم", "employe");
    vote(b, "مستخدم", "employe");
    vote(b, "مستخدم", "user");
    vote(b, "مخز", "warehous");
    vote(b, "مخز", "warehous");
    vote(b, "مخز", "dishonor");
    assert_int_equal(tf_lexicon_builder_prefer(b, "user", 4, 40, &err), 0);
    assert_int_equal(tf_lexicon_builder_prefer(b, "employe", 7, 3, &err), 0);
    assert_int_equal(tf_lexicon_builder_prefer(b, "design", 6, 90, &err), 0); /* no candidate */
    out = written(b, NULL, &entries);
    assert_int_equal(entries, 2);
    assert_string_equal(out, "مخز\twarehous\tdishonor\n"
                             "مستخدم\tuser\temploye\n");
    free(out);
}

static void test_load_and_look_up(void **state)
{
    const char *path = write_temp("# comment\n\nتصميم\tdesign\nمخز\twarehous\n");
    tf_lexicon *lx;
    tf_err err;
    size_t n = 0;
    const char *c;

    (void)state;
    lx = tf_lexicon_load(path, &err);
    assert_non_null(lx);
    assert_int_equal(tf_lexicon_size(lx), 2);
    c = tf_lexicon_concept(lx, "تصميم", strlen("تصميم"), &n);
    assert_non_null(c);
    assert_int_equal(n, 6);
    assert_string_equal(c, "design");
    assert_null(tf_lexicon_concept(lx, "design", 6, &n));
    tf_lexicon_free(lx);
    unlink(path);
}

/* Usage by a made-up corpus: how many of its documents use each English term. */
static int64_t corpus_usage(void *ctx, const char *english, size_t elen)
{
    (void)ctx;
    if (elen == 7 && !memcmp(english, "account", 7))
        return 40;
    if (elen == 6 && !memcmp(english, "calcul", 6))
        return 3;
    if (elen == 4 && !memcmp(english, "user", 4))
        return 5;
    if (elen == 7 && !memcmp(english, "employe", 7))
        return 5;
    return 0;
}

/* A line may list further senses; tf_lexicon_choose takes the one usage rates highest, a
 * tie (none used included) keeps the table's order, and without usage it is the first. */
static void test_senses_are_chosen_by_usage(void **state)
{
    const char *path = write_temp("محاسبه\tcalcul\taccount\nمستخدم\temploye\tuser\n"
                                  "مخز\twarehous\tdepot\nتصميم\tdesign\n");
    tf_lexicon *lx;
    tf_err err;
    size_t n = 0;
    const char *c;

    (void)state;
    lx = tf_lexicon_load(path, &err);
    assert_non_null(lx);
    assert_int_equal(tf_lexicon_size(lx), 4);
    assert_int_equal(tf_lexicon_senses(lx), 3);
    c = tf_lexicon_concept(lx, "محاسبه", strlen("محاسبه"), &n);
    assert_string_equal(c, "calcul");
    assert_int_equal(n, 6);
    c = tf_lexicon_choose(lx, "محاسبه", strlen("محاسبه"), corpus_usage, NULL, &n);
    assert_string_equal(c, "account");
    assert_int_equal(n, 7);
    c = tf_lexicon_choose(lx, "محاسبه", strlen("محاسبه"), NULL, NULL, &n);
    assert_string_equal(c, "calcul");
    c = tf_lexicon_choose(lx, "مستخدم", strlen("مستخدم"), corpus_usage, NULL, &n); /* tie */
    assert_string_equal(c, "employe");
    c = tf_lexicon_choose(lx, "مخز", strlen("مخز"), corpus_usage, NULL, &n); /* none used */
    assert_string_equal(c, "warehous");
    assert_int_equal(n, 8);
    c = tf_lexicon_choose(lx, "تصميم", strlen("تصميم"), corpus_usage, NULL, &n);
    assert_string_equal(c, "design");
    assert_null(tf_lexicon_choose(lx, "design", 6, corpus_usage, NULL, &n));
    /* every listed translation, first or not, and nothing else */
    assert_true(tf_lexicon_is_translation(lx, "calcul", 6));
    assert_true(tf_lexicon_is_translation(lx, "depot", 5));
    assert_true(tf_lexicon_is_translation(lx, "design", 6));
    assert_false(tf_lexicon_is_translation(lx, "desig", 5));
    assert_false(tf_lexicon_is_translation(lx, "مخز", strlen("مخز")));
    tf_lexicon_free(lx);
    unlink(path);
}

static void test_malformed_lines_are_named(void **state)
{
    const char *path = write_temp("تصميم\tdesign\nno tab here\n");
    tf_lexicon *lx;
    tf_err err;
    char want[128];

    (void)state;
    lx = tf_lexicon_load(path, &err);
    assert_null(lx);
    snprintf(want, sizeof(want), "%s:2:", path);
    assert_non_null(strstr(err.msg, want));
    unlink(path);
    path = write_temp("a\tb\t\tc\n"); /* an empty translation */
    assert_null(tf_lexicon_load(path, &err));
    unlink(path);
    path = write_temp("a\tb\tc\t\n");
    assert_null(tf_lexicon_load(path, &err));
    unlink(path);
    assert_null(tf_lexicon_load("/nonexistent/lexicon.tsv", &err));
    assert_non_null(strstr(err.msg, "cannot read the lexicon"));
}

static void test_open_settings(void **state)
{
    tf_lexicon *lx = (tf_lexicon *)1;
    tf_err err;

    (void)state;
    assert_int_equal(tf_lexicon_open("off", "/nonexistent", &lx, &err), 0);
    assert_null(lx);
    /* auto without the shipped file: no mapping, no error */
    assert_int_equal(tf_lexicon_open("auto", "/nonexistent", &lx, &err), 0);
    assert_null(lx);
    /* a named file must load */
    assert_int_equal(tf_lexicon_open("/nonexistent/x.tsv", NULL, &lx, &err), -1);
}

/* The terms of s through t, space-separated. */
static void terms_of(tf_text *t, const char *s, char *out, size_t size)
{
    tf_tokens toks;
    tf_err err;
    size_t o = 0;

    assert_int_equal(tf_text_tokenize(t, s, strlen(s), &toks, &err), 0);
    out[0] = '\0';
    for (size_t i = 0; i < toks.n; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? " " : "", toks.bytes + toks.tok[i].off);
}

static void test_text_maps_arabic_terms_to_their_concept(void **state)
{
    /* as the stemmer makes them: التصميم -> تصميم, المحاسبة -> محاسبه */
    const char *path = write_temp("تصميم\tdesign\nمحاسبه\taccount\n");
    tf_lexicon *lx;
    tf_text_opts plain = {0}, mapped = {0};
    tf_text *tp, *tm;
    tf_err err;
    char a[256], b[256];

    (void)state;
    lx = tf_lexicon_load(path, &err);
    assert_non_null(lx);
    mapped.lexicon = lx;
    tp = tf_text_new(&plain, &err);
    tm = tf_text_new(&mapped, &err);
    assert_non_null(tp);
    assert_non_null(tm);
    terms_of(tp, "التصميم والمحاسبة design accounting النخبة", a, sizeof(a));
    terms_of(tm, "التصميم والمحاسبة design accounting النخبة", b, sizeof(b));
    assert_string_equal(a, "تصميم محاسبه design account نخبه");
    assert_string_equal(b, "design account design account نخبه");
    /* twice: the word cache keeps the mapped term */
    terms_of(tm, "التصميم", b, sizeof(b));
    assert_string_equal(b, "design");
    /* the shared term keeps each word's own surface form, for display (design / التصميم) */
    {
        tf_tokens toks;
        const char *doc = "Design التصميم";
        assert_int_equal(tf_text_tokenize(tm, doc, strlen(doc), &toks, &err), 0);
        assert_int_equal(toks.n, 2);
        assert_string_equal(toks.bytes + toks.tok[0].off, "design");
        assert_string_equal(toks.bytes + toks.tok[1].off, "design");
        assert_string_equal(toks.bytes + toks.tok[0].form_off, "design");
        assert_string_equal(toks.bytes + toks.tok[1].form_off, "التصميم");
    }
    tf_text_free(tp);
    tf_text_free(tm);
    tf_lexicon_free(lx);
    unlink(path);
}

/* usage for the text pipeline: *ctx is what "account" is used by (calcul by 1). */
static int64_t counted_usage(void *ctx, const char *english, size_t elen)
{
    if (elen == 7 && !memcmp(english, "account", 7))
        return *(const int64_t *)ctx;
    return elen == 6 && !memcmp(english, "calcul", 6) ? 1 : 0;
}

/* With lexicon_usage, a word's translation is chosen when the word cache first meets it,
 * and again after tf_text_forget. */
static void test_text_chooses_senses_by_usage(void **state)
{
    const char *path = write_temp("محاسبه\tcalcul\taccount\n");
    tf_lexicon *lx;
    tf_text_opts o = {0};
    tf_text *t;
    tf_err err;
    int64_t account = 0;
    char b[256];

    (void)state;
    lx = tf_lexicon_load(path, &err);
    assert_non_null(lx);
    o.lexicon = lx;
    o.lexicon_usage = counted_usage;
    o.lexicon_usage_ctx = &account;
    t = tf_text_new(&o, &err);
    assert_non_null(t);
    terms_of(t, "المحاسبة accounting", b, sizeof(b));
    assert_string_equal(b, "calcul account");
    account = 5;
    terms_of(t, "المحاسبة", b, sizeof(b));
    assert_string_equal(b, "calcul"); /* remembered until forgotten */
    tf_text_forget(t);
    terms_of(t, "المحاسبة", b, sizeof(b));
    assert_string_equal(b, "account");
    tf_text_free(t);
    tf_lexicon_free(lx);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builder_keeps_the_most_voted_meaning),
        cmocka_unit_test(test_builder_breaks_ties_by_commonness),
        cmocka_unit_test(test_builder_prefers_what_the_corpus_uses),
        cmocka_unit_test(test_load_and_look_up),
        cmocka_unit_test(test_senses_are_chosen_by_usage),
        cmocka_unit_test(test_malformed_lines_are_named),
        cmocka_unit_test(test_open_settings),
        cmocka_unit_test(test_text_maps_arabic_terms_to_their_concept),
        cmocka_unit_test(test_text_chooses_senses_by_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
