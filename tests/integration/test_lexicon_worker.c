/*
 * test_lexicon_worker.c - the bilingual lexicon in a real worker: with --lexicon naming a
 * table that maps تصميم to design, English and Arabic design postings are stored under one
 * term, `design`, whose written forms keep both languages (term_forms) and whose topic
 * shows both (`design / التصميم`); an Arabic word without an entry stays its own term.
 * With a table listing two senses (محاسبه: calcul, account), the worker takes the one its
 * English postings use (account), not the table's first; and Arabic postings counted under
 * the first sense before any English arrived do not keep that sense winning afterwards.
 * Each document's language is recorded, and a refit weighs a term by how evenly the two
 * languages use it (sql/014); with --lexicon off nothing is recorded and every weight is 1.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pipeline.h"

#define DOCS 200
#define STALE "select case when not exists (select 1 from topicflow.model) then -1 else" \
              " (select count(*) from topicflow.documents where not deleted and" \
              " coalesce(model_version, 0) < (select max(epoch) from topicflow.model)) end"
#define AR_DESIGN "\xD8\xA7\xD9\x84\xD8\xAA\xD8\xB5\xD9\x85\xD9\x8A\xD9\x85"    /* التصميم */
#define STEM_DESIGN "\xD8\xAA\xD8\xB5\xD9\x85\xD9\x8A\xD9\x85"                /* تصميم */
#define AR_ACCOUNTING "\xD8\xA7\xD9\x84\xD9\x85\xD8\xAD\xD8\xA7\xD8\xB3\xD8\xA8\xD8\xA9" /* المحاسبة */
#define STEM_ACCOUNTING "\xD9\x85\xD8\xAD\xD8\xA7\xD8\xB3\xD8\xA8\xD9\x87"       /* محاسبه */
#define AR_MARKETING "\xD8\xA7\xD9\x84\xD8\xAA\xD8\xB3\xD9\x88\xD9\x8A\xD9\x82" /* التسويق */
#define STEM_MARKETING "\xD8\xAA\xD8\xB3\xD9\x88\xD9\x8A\xD9\x82"             /* تسويق */
#define AR_CONCRETE "\xD8\xA7\xD9\x84\xD8\xAE\xD8\xB1\xD8\xB3\xD8\xA7\xD9\x86\xD8\xA9" /* الخرسانة */

static harness H;
static char lexicon_path[64];

static void test_arabic_and_english_share_the_concept_term(void **state)
{
    pid_t producer, worker;
    char *v;
    int fd;
    const char table[] = "# test table\n" STEM_DESIGN "\tdesign\n";

    (void)state;
    snprintf(lexicon_path, sizeof(lexicon_path), "/tmp/tf-lexicon-test-XXXXXX");
    fd = mkstemp(lexicon_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, table, sizeof(table) - 1), (ssize_t)(sizeof(table) - 1));
    close(fd);

    /* English design postings (3 of 4 of the design ones), Arabic ones, and a concrete theme */
    harness_sql(&H,
        "insert into internships (title, description, skills)"
        " select case g % 4"
        "   when 0 then 'Design intern ' || g"
        "   when 1 then '" AR_DESIGN " ' || g"
        "   when 2 then 'Design studio intern ' || g"
        "   else '" AR_CONCRETE " ' || g end,"
        "  (array['design sketches typography palettes',"
        "         '" AR_DESIGN " " AR_DESIGN " " AR_DESIGN "',"
        "         'design sketches typography palettes',"
        "         '" AR_CONCRETE " " AR_CONCRETE "'])[g % 4 + 1] || ' ' || md5(g::text),"
        "  array['skill' || (g % 3)]"
        " from generate_series(1, 200) g");
    producer = harness_spawn(&H, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    worker = pipeline_spawn_worker(&H, (const char *[]){"--min-docs", "50", "--refit-auto=off",
                                                        "--lexicon", lexicon_path, NULL});
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.processed_events", DOCS, 120), DOCS);
    assert_int_equal(harness_wait_scalar(&H, STALE, 0, 120), 0);
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.term_form_deltas", 0, 30), 0);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    unlink(lexicon_path);

    /* one term: the Arabic stem was never stored */
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.terms where term = 'design'"), 1);
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.terms where term = '" STEM_DESIGN "'"), 0);
    /* each document counts once, in the form of its first occurrence: 100 English, 50 Arabic */
    assert_int_equal(harness_scalar(&H, "select docs from topicflow.term_forms f join topicflow.terms t"
                                        " on t.id = f.term_id where t.term = 'design' and f.form = 'design'"),
                     100);
    assert_int_equal(harness_scalar(&H, "select docs from topicflow.term_forms f join topicflow.terms t"
                                        " on t.id = f.term_id where t.term = 'design' and f.form = '" AR_DESIGN "'"),
                     50);
    v = harness_query_text(&H, "select distinct display from topicflow.topics where term = $1", "design");
    assert_non_null(v);
    assert_string_equal(v, "design / " AR_DESIGN);
    free(v);
    /* without an entry: its own term, written in its one form (no topic shows it: only
     * Arabic postings hold it, so its language weight is 0, see below) */
    v = harness_query_text(&H, "select string_agg(f.form, ',') from topicflow.term_forms f join"
                               " topicflow.terms t on t.id = f.term_id where t.term = $1",
                           "\xD8\xAE\xD8\xB1\xD8\xB3\xD8\xA7\xD9\x86\xD9\x87");
    assert_non_null(v);
    assert_string_equal(v, AR_CONCRETE);
    free(v);
}

/* A producer and a worker reading table (one line or more) as its lexicon. */
typedef struct senses_run {
    pid_t producer, worker;
    long long events; /* processed events to wait for */
} senses_run;

static void senses_start(senses_run *r, const char *table)
{
    const char *path = harness_write_file(&H, "tsv", table, strlen(table));

    r->events = harness_scalar(&H, "select count(*) from topicflow.processed_events");
    r->producer = harness_spawn(&H, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    r->worker = pipeline_spawn_worker(&H, (const char *[]){"--min-docs", "50", "--refit-auto=off",
                                                           "--lexicon", path, NULL});
}

/* Insert n internships (title, description, skill) and wait until the worker has them. */
static void senses_feed(senses_run *r, int n, const char *title, const char *description,
                        const char *skill)
{
    char sql[1024];

    snprintf(sql, sizeof(sql), "insert into internships (title, description, skills)"
             " select '%s ' || g, '%s ' || md5(g::text), array['%s'] from generate_series(1, %d) g",
             title, description, skill, n);
    harness_sql(&H, sql);
    r->events += n;
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.processed_events",
                                         r->events, 120), r->events);
}

static void senses_stop(senses_run *r)
{
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.term_form_deltas", 0, 30), 0);
    assert_int_equal(harness_stop(r->worker, SIGTERM), 0);
    assert_int_equal(harness_stop(r->producer, SIGTERM), 0);
}

/* The documents of term `term` written as `form`. */
static long long form_docs(const char *term, const char *form)
{
    char sql[512];

    snprintf(sql, sizeof(sql), "select coalesce(sum(docs), 0) from topicflow.term_forms f join"
             " topicflow.terms t on t.id = f.term_id where t.term = '%s' and f.form = '%s'", term, form);
    return harness_scalar(&H, sql);
}

static void test_the_sense_the_english_postings_use_wins(void **state)
{
    senses_run r;

    (void)state;
    senses_start(&r, STEM_ACCOUNTING "\tcalcul\taccount\n");
    /* the English accounting postings first, then the Arabic ones */
    senses_feed(&r, 60, "Accounting intern", "accounting ledgers audits", "excel");
    senses_feed(&r, 40, AR_ACCOUNTING, AR_ACCOUNTING " " AR_ACCOUNTING, "excel");
    senses_stop(&r);

    /* every Arabic posting counted under account; the table's first sense never used */
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.terms where term = 'calcul'"), 0);
    assert_int_equal(form_docs("account", AR_ACCOUNTING), 40);
}

/* Arabic postings first (no English usage yet: the table's first sense, commerc), then a
 * few English ones, then Arabic again: only English usage counts, so the later Arabic
 * postings take market although more documents (the first Arabic ones) hold commerc. */
static void test_a_chosen_sense_does_not_win_by_its_own_documents(void **state)
{
    senses_run r;

    (void)state;
    senses_start(&r, STEM_MARKETING "\tcommerc\tmarket\n");
    senses_feed(&r, 60, AR_MARKETING, AR_MARKETING, "seo");
    assert_int_equal(harness_wait_scalar(&H, STALE, 0, 120), 0); /* a model holds commerc's df */
    senses_feed(&r, 20, "Marketing intern", "marketing", "seo");
    senses_feed(&r, 40, AR_MARKETING, AR_MARKETING, "seo");
    senses_stop(&r);

    assert_int_equal(form_docs("commerc", AR_MARKETING), 60); /* before any English */
    assert_int_equal(form_docs("market", "marketing"), 20);
    assert_int_equal(form_docs("market", AR_MARKETING), 40);
}

/* The strength the last refit applied (engine/corpus.h), from its stats. */
#define STRENGTH "(select (stats->>'language_strength')::float8 from topicflow.model" \
                 " where version = epoch order by version desc limit 1)"

/* Each term's weight 1 - strength * (1 - balance), the balance written again in SQL from the
 * stored rows, against what the last refit stored: the number of terms where they differ. */
#define LANGUAGE_WEIGHTS_DIFFER                                                               \
    "with n as (select count(arabic) nk, count(*) filter (where arabic) n2"                  \
    "           from topicflow.documents where not deleted),"                                 \
    " pi as (select n2::float8 / nk pi from n where nk > 0),"                                 \
    " per as (select t, count(*) k, count(*) filter (where d.arabic) a from topicflow.documents d," \
    "         unnest(d.term_ids) t where not d.deleted and d.arabic is not null group by t),"  \
    " want as (select per.t, 1 - " STRENGTH " * (1 - greatest(0, least(1,"                    \
    "          least((a::float8 / k) / pi.pi, (1 - a::float8 / k) / (1 - pi.pi))))) w"       \
    "          from per, pi)"                                                                  \
    " select count(*) from want join topicflow.terms x on x.id = want.t"                      \
    " where abs(x.language_weight - want.w) > 1e-6"

/* A term's language weight after a refit, by term. */
static double language_weight(const char *term)
{
    char *v = harness_query_text(&H, "select language_weight::text from topicflow.terms where term = $1", term);
    double w;

    assert_non_null(v);
    w = atof(v);
    free(v);
    return w;
}

/* The documents of the first test (100 English design postings, 50 Arabic design ones, 50
 * Arabic concrete ones) are recorded in their languages. After a refit, a term both
 * languages use (design) loses a third of what a term of one language (the untranslated
 * concrete, the English-only typography) loses, as the rule says for every term. The two
 * languages share only their skills here (design is in most documents), so the rule
 * applies in part: a language's own words are most of what tells its postings apart. */
static void test_terms_of_one_language_weigh_less_after_a_refit(void **state)
{
    double s, off;
    char *v;

    (void)state;
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.documents where arabic"), 100);
    assert_int_equal(harness_scalar(&H, "select count(*) from topicflow.documents where not arabic"), 100);
    assert_int_equal(harness_run(&H, "topicflow", (const char *[]){"refit", "--k", "2", NULL}, NULL,
                                 NULL, NULL), 0);
    v = harness_query_text(&H, "select " STRENGTH "::text where $1::text is not null", "-");
    assert_non_null(v);
    s = atof(v);
    free(v);
    assert_true(s > 0.05 && s < 0.95);
    /* pi = 1/2; design: 50 of its 150 documents Arabic, balance min(2/3, 4/3) */
    off = 1.0 - language_weight("typographi");
    assert_float_equal(off, s, 1e-6);
    assert_float_equal(1.0 - language_weight("\xD8\xAE\xD8\xB1\xD8\xB3\xD8\xA7\xD9\x86\xD9\x87"), s, 1e-6);
    assert_float_equal(1.0 - language_weight("design"), s / 3.0, 1e-6);
    assert_int_equal(harness_scalar(&H, LANGUAGE_WEIGHTS_DIFFER), 0);
    /* the refold stored each document under them: its weights are the tf-idf of its counts
     * with the language weights, recomputed here for typography's weight against design's */
    assert_int_equal(harness_scalar(&H, STALE), 0);
    assert_int_equal(harness_scalar(&H,
        "select count(*) from topicflow.documents d,"
        " unnest(d.term_ids, d.counts, d.weights) u(t, c, w), topicflow.terms x"
        " where x.id = u.t and not d.deleted and x.term in ('typographi', 'design')"
        " and abs(u.w / (1 + ln(u.c)) / x.language_weight"
        "         / (ln((1 + (select count(*) from topicflow.documents where not deleted))::float8"
        "               / (1 + x.df)) + 1)"
        "         - (select w2 / (1 + ln(c2)) / y.language_weight"
        "                   / (ln((1 + (select count(*) from topicflow.documents where not deleted))::float8"
        "                         / (1 + y.df)) + 1)"
        "              from unnest(d.term_ids, d.counts, d.weights) v(t2, c2, w2)"
        "              join topicflow.terms y on y.id = v.t2 where y.term = 'design')) > 1e-4"), 0);
}

/* With --lexicon off nothing changes: no document records a language, and a refit leaves
 * every term at weight 1 although the postings are in two languages. */
static void test_without_a_lexicon_no_language_is_recorded(void **state)
{
    harness h;
    pid_t producer, worker;

    (void)state;
    harness_setup(&h, "lexicon_off");
    harness_sql(&h,
        "insert into internships (title, description, skills)"
        " select case when g % 2 = 0 then 'Design intern ' || g else '" AR_CONCRETE " ' || g end,"
        "  case when g % 2 = 0 then 'design sketches typography' else '" AR_CONCRETE " " AR_DESIGN "' end"
        "  || ' ' || md5(g::text), array['skill']"
        " from generate_series(1, 100) g");
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    worker = pipeline_spawn_worker(&h, (const char *[]){"--min-docs", "50", "--refit-auto=off",
                                                        "--lexicon", "off", NULL});
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.processed_events", 100, 120), 100);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"refit", "--k", "2", NULL}, NULL,
                                 NULL, NULL), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents where arabic is not null"), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.terms where language_weight <> 1"), 0);
    assert_true(harness_scalar(&h, "select count(*) from topicflow.terms") > 4);
    harness_teardown(&h);
}

static int group_setup(void **state)
{
    harness_setup(&H, "lexicon_worker");
    *state = &H;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    harness_teardown(&H);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arabic_and_english_share_the_concept_term),
        cmocka_unit_test(test_terms_of_one_language_weigh_less_after_a_refit),
        cmocka_unit_test(test_the_sense_the_english_postings_use_wins),
        cmocka_unit_test(test_a_chosen_sense_does_not_win_by_its_own_documents),
        cmocka_unit_test(test_without_a_lexicon_no_language_is_recorded),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
