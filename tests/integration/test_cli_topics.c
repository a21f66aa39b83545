/*
 * test_cli_topics.c - what a person reads about the topics, against real servers: terms
 * shown by their most frequent written form (English and Arabic), topic sizes, one topic
 * with its representative documents and their titles, labels that survive a refit, and the
 * HTML report rendered by headless Chromium (not blank, the words in the DOM, every value
 * escaped). One pipeline run (group setup) feeds every test; they run in this order.
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

#define DOCS 400
#define STALE "select case when not exists (select 1 from topicflow.model) then -1 else" \
              " (select count(*) from topicflow.documents where not deleted and" \
              " coalesce(model_version, 0) < (select max(epoch) from topicflow.model)) end"
/* إنشائية (structural) and its stem */
#define AR_FORM "\xD8\xA5\xD9\x86\xD8\xB4\xD8\xA7\xD8\xA6\xD9\x8A\xD8\xA9"

static harness H;

/* Four themes; the warehouse theme writes "Warehouse" twice as often as "Warehouses" where
 * the word first occurs (the title), the construction theme is Arabic. */
static int group_setup(void **state)
{
    pid_t producer, worker;

    harness_setup(&H, "cli_topics");
    harness_sql(&H,
        "insert into internships (title, description, skills)"
        " select case g % 4"
        "   when 0 then (case when g % 12 = 8 then 'Warehouses team intern ' else 'Warehouse clerk intern ' end) || g"
        "   when 1 then 'Financial analyst intern ' || g"
        "   when 2 then '\xD9\x85\xD8\xAA\xD8\xAF\xD8\xB1\xD8\xA8 \xD9\x87\xD9\x86\xD8\xAF\xD8\xB3\xD8\xA9 " AR_FORM " ' || g"
        "   else 'Clinical nurse intern ' || g end,"
        "  (array['inventory shipping forklift pallets warehouse logistics',"
        "         'financial audit accounting budgets ledgers reconciliation',"
        "         '\xD8\xA7\xD9\x84\xD8\xAE\xD8\xB1\xD8\xB3\xD8\xA7\xD9\x86\xD8\xA9 \xD8\xA7\xD9\x84\xD9\x85\xD8\xA8\xD8\xA7\xD9\x86\xD9\x8A \xD8\xA7\xD9\x84\xD9\x85\xD9\x88\xD9\x82\xD8\xB9 \xD8\xA7\xD9\x84\xD8\xAC\xD8\xB3\xD9\x88\xD8\xB1 " AR_FORM "',"
        "         'patients clinic wards medication triage vaccination'])[g % 4 + 1]"
        "  || ' mentor weekly ' || md5(g::text),"
        "  array['skill' || (g % 7)]"
        " from generate_series(1, 400) g");
    producer = harness_spawn(&H, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    worker = pipeline_spawn_worker(&H, (const char *[]){"--min-docs", "100", "--refit-auto=off", NULL});
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.processed_events", DOCS, 120), DOCS);
    assert_int_equal(harness_wait_scalar(&H, STALE, 0, 120), 0);
    /* the forms of every stored document folded by the upkeep thread */
    assert_int_equal(harness_wait_scalar(&H, "select count(*) from topicflow.term_form_deltas", 0, 30), 0);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    *state = &H;
    return 0;
}

static int group_teardown(void **state)
{
    harness_teardown(&H);
    return 0;
}

/* Runs `topicflow args…` and returns its exit status; *out gets stdout and stderr. */
static int cli(char **out, const char *const *args)
{
    char *err = NULL;
    int rc = harness_run(&H, "topicflow", args, NULL, out, &err);
    size_t a = strlen(*out), b = strlen(err);
    char *both = malloc(a + b + 1);

    assert_non_null(both);
    memcpy(both, *out, a);
    memcpy(both + a, err, b + 1);
    free(*out);
    free(err);
    *out = both;
    return rc;
}

static char *text(const char *sql, const char *param)
{
    char *v = harness_query_text(&H, sql, param);
    assert_non_null(v);
    return v;
}

static void test_terms_show_their_most_frequent_written_form(void **state)
{
    char *out = NULL, *v;

    /* counted per document: the title's form is each warehouse posting's first occurrence */
    assert_int_equal(harness_scalar(&H, "select docs from topicflow.term_forms f join topicflow.terms t"
                                        " on t.id = f.term_id where t.term = 'warehous' and f.form = 'warehouse'"),
                     67);
    assert_int_equal(harness_scalar(&H, "select docs from topicflow.term_forms f join topicflow.terms t"
                                        " on t.id = f.term_id where t.term = 'warehous' and f.form = 'warehouses'"),
                     33);
    v = text("select display from topicflow.topics where term = $1", "warehous");
    assert_string_equal(v, "warehouse");
    free(v);
    v = text("select display from topicflow.topics where display = $1", AR_FORM);
    assert_string_equal(v, AR_FORM);
    free(v);
    v = text("select term from topicflow.topics where display = $1", AR_FORM);
    assert_string_not_equal(v, AR_FORM); /* the key stays the stem */
    free(v);

    assert_int_equal(cli(&out, (const char *[]){"topics", "--top", "8", NULL}), 0);
    assert_non_null(strstr(out, "warehouse ("));
    assert_null(strstr(out, "warehous ("));
    assert_non_null(strstr(out, "financial ("));
    assert_non_null(strstr(out, AR_FORM " ("));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"topics", "--top", "8", "--json", NULL}), 0);
    assert_non_null(strstr(out, "{\"term\": \"warehous\", \"display\": \"warehouse\", \"weight\": "));
    assert_non_null(strstr(out, "\"display\": \"" AR_FORM "\""));
    v = text("select jsonb_array_length($1::jsonb)::text", out);
    assert_string_equal(v, "4");
    free(v);
    free(out);
}

/* A batch stores each (term, form) pair once with the number of its documents (sql/013); a
 * row written by a worker older than that migration (no counts) still counts one document
 * per pair. Whoever folds (this test or the worker's upkeep) adds exactly these. */
static void test_form_counts_fold_with_rows_of_older_workers(void **state)
{
    (void)state;
    harness_sql(&H, "insert into topicflow.term_form_deltas (term_ids, forms)"
                    " select array[id, id], array['legacy-form', 'legacy-form'] from topicflow.terms"
                    " where term = 'warehous'");
    harness_sql(&H, "insert into topicflow.term_form_deltas (term_ids, forms, counts)"
                    " select array[id, id], array['legacy-form', 'counted-form'], array[5, 7]"
                    " from topicflow.terms where term = 'warehous'");
    harness_sql(&H, "select topicflow.fold_term_forms()");
    assert_int_equal(harness_wait_scalar(&H, "select coalesce(sum(docs), 0) from topicflow.term_forms f"
                                             " join topicflow.terms t on t.id = f.term_id"
                                             " where t.term = 'warehous' and f.form = 'legacy-form'",
                                         7, 30),
                     7);
    assert_int_equal(harness_scalar(&H, "select docs from topicflow.term_forms f join topicflow.terms t"
                                        " on t.id = f.term_id where t.term = 'warehous' and f.form = 'counted-form'"),
                     7);
}

static void test_topics_have_sizes_and_representative_documents_with_titles(void **state)
{
    char *out = NULL, *v;

    assert_int_equal(harness_scalar(&H, "select sum(documents) from topicflow.topic_summary"), DOCS);
    assert_int_equal(harness_scalar(&H, "select round(sum(share) * 1000) from topicflow.topic_summary"), 1000);
    assert_int_equal(cli(&out, (const char *[]){"topics", "--json", NULL}), 0);
    v = text("select sum((t->>'documents')::int)::text from jsonb_array_elements($1::jsonb) t", out);
    assert_string_equal(v, "400");
    free(v);
    free(out);
    /* four clean themes of 100 postings each */
    assert_int_equal(cli(&out, (const char *[]){"topics", NULL}), 0);
    assert_non_null(strstr(out, "topic  0  (100 docs, 25.0 %): "));
    free(out);

    assert_int_equal(cli(&out, (const char *[]){"topic", "2", "--docs", "3", "--json", NULL}), 0);
    v = text("select jsonb_array_length($1::jsonb->'top_documents')::text", out);
    assert_string_equal(v, "3");
    free(v);
    v = text("select count(*)::text from jsonb_array_elements($1::jsonb->'top_documents') d"
             " join internships i on i.id = (d->>'doc_id')::bigint and i.title = d->>'title'", out);
    assert_string_equal(v, "3");
    free(v);
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"topic", "2", "--docs", "2", NULL}), 0);
    assert_non_null(strstr(out, "topic  2  (100 docs, 25.0 %)\n  terms: "));
    assert_non_null(strstr(out, "  documents:\n"));
    assert_non_null(strstr(out, " %  public.internships "));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"topic", "9", NULL}), 1);
    assert_non_null(strstr(out, "no topic 9 in the current model"));
    free(out);

    assert_int_equal(cli(&out, (const char *[]){"doc", "5", NULL}), 0);
    assert_non_null(strstr(out, "public.internships 5 (version 1): Financial analyst intern 5\n"));
    assert_non_null(strstr(out, "financial"));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"doc", "5", "--json", NULL}), 0);
    assert_non_null(strstr(out, "\"title\": \"Financial analyst intern 5\""));
    assert_non_null(strstr(out, "\"display\": \"financial\""));
    free(out);
}

/* The topic whose heaviest term is `term`. */
static long long topic_of(const char *term)
{
    char *v = text("select topic::text from topicflow.topics where rank = 1 and term = $1", term);
    long long t = atoll(v);
    free(v);
    return t;
}

static void test_labels_follow_their_topic_across_a_refit(void **state)
{
    char *out = NULL, topic[16], *v;
    long long before = topic_of("warehous");

    snprintf(topic, sizeof(topic), "%lld", before);
    assert_int_equal(cli(&out, (const char *[]){"label", topic, "Supply chain", NULL}), 0);
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"topics", NULL}), 0);
    assert_non_null(strstr(out, "  \"Supply chain\"  (100 docs, 25.0 %): warehouse ("));
    free(out);

    /* another seed finds the themes in another order; matching keeps their ids */
    assert_int_equal(cli(&out, (const char *[]){"refit", "--k", "4", "--seed", "11", NULL}), 0);
    free(out);
    assert_int_equal(topic_of("warehous"), before);
    assert_int_equal(cli(&out, (const char *[]){"topics", "--json", NULL}), 0);
    v = text("select string_agg(t->'terms'->0->>'display', ',') from jsonb_array_elements($1::jsonb) t"
             " where t->>'label' = 'Supply chain'", out);
    assert_string_equal(v, "warehouse");
    free(v);
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"topic", topic, NULL}), 0);
    assert_non_null(strstr(out, "\"Supply chain\""));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"doc", "4", NULL}), 0); /* a warehouse posting */
    assert_non_null(strstr(out, "\"Supply chain\""));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"doc", "4", "--json", NULL}), 0);
    assert_non_null(strstr(out, "\"label\": \"Supply chain\""));
    free(out);

    assert_int_equal(cli(&out, (const char *[]){"label", "7", "x", NULL}), 1);
    assert_non_null(strstr(out, "no topic 7 in the current model (4 topics)"));
    free(out);
    assert_int_equal(cli(&out, (const char *[]){"label", topic, NULL}), 2);
    free(out);
    snprintf(topic, sizeof(topic), "%lld", (before + 1) % 4);
    assert_int_equal(cli(&out, (const char *[]){"label", topic, "--clear", NULL}), 0);
    assert_non_null(strstr(out, ": label was not set"));
    free(out);
}

/* Distinct colours and the share of non-white pixels of a PNG, by Python's zlib (no PIL). */
static const char png_check[] =
    "import sys, struct, zlib\n"
    "d = open(sys.argv[1], 'rb').read()\n"
    "assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'\n"
    "i, idat = 8, b''\n"
    "while i < len(d):\n"
    "    n, t = struct.unpack('>I4s', d[i:i + 8]); c = d[i + 8:i + 8 + n]; i += 12 + n\n"
    "    if t == b'IHDR': w, h, depth, ct = struct.unpack('>IIBB', c[:10])\n"
    "    if t == b'IDAT': idat += c\n"
    "assert depth == 8 and ct in (2, 6)\n"
    "bpp = 3 if ct == 2 else 4; raw = zlib.decompress(idat); stride = w * bpp\n"
    "prev = bytearray(stride); colours = set(); ink = 0\n"
    "for y in range(h):\n"
    "    f = raw[y * (stride + 1)]; line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])\n"
    "    for x in range(stride):\n"
    "        a = line[x - bpp] if x >= bpp else 0; b = prev[x]; c = prev[x - bpp] if x >= bpp else 0\n"
    "        if f == 1: line[x] = (line[x] + a) & 255\n"
    "        elif f == 2: line[x] = (line[x] + b) & 255\n"
    "        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255\n"
    "        elif f == 4:\n"
    "            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)\n"
    "            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255\n"
    "    for x in range(0, stride, bpp):\n"
    "        px = bytes(line[x:x + 3]); colours.add(px); ink += px != b'\\xff\\xff\\xff'\n"
    "    prev = line\n"
    "print(len(colours), ink / (w * h))\n";

static void test_html_report_renders_in_chromium_with_every_value_escaped(void **state)
{
    char *out = NULL, cmd[4096], path[600], png[700], py[600], *html = NULL;
    const char *label = "<script>alert(\"x\")</script> & 'q'";
    long long topic = topic_of("financi");
    char topic_s[16];
    double ink = 0;
    int colours = 0;

    snprintf(topic_s, sizeof(topic_s), "%lld", topic);
    assert_int_equal(cli(&out, (const char *[]){"label", topic_s, label, NULL}), 0);
    free(out);
    snprintf(path, sizeof(path), "%s", harness_write_file(&H, "report.html", "", 0));
    snprintf(png, sizeof(png), "%s.png", path);
    snprintf(py, sizeof(py), "%s", harness_write_file(&H, "png_check.py", png_check, strlen(png_check)));
    assert_int_equal(cli(&out, (const char *[]){"report", "--html", path, NULL}), 0);
    assert_non_null(strstr(out, "wrote "));
    assert_non_null(strstr(out, " (4 topics, "));
    free(out);

    /* escaped, never live markup; nothing fetched */
    snprintf(cmd, sizeof(cmd), "cat '%s'", path);
    assert_non_null(html = harness_shell_read(cmd));
    assert_non_null(strstr(html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_null(strstr(html, " src="));
    assert_non_null(strstr(html, "dir=\"auto\" title=\"stem: "));
    assert_non_null(strstr(html, "Prevalence over time"));
    assert_non_null(strstr(html, "How topics moved between model versions"));
    free(html);

    /* the DOM Chromium builds holds the words, and the label as text */
    snprintf(cmd, sizeof(cmd), "chromium --headless --no-sandbox --disable-gpu --dump-dom 'file://%s'"
                               " 2>/dev/null", path);
    assert_non_null(html = harness_shell_read(cmd));
    assert_non_null(strstr(html, ">warehouse</span>"));
    assert_non_null(strstr(html, ">financial</span>"));
    assert_non_null(strstr(html, ">" AR_FORM "</span>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; 'q'"));
    free(html);

    snprintf(cmd, sizeof(cmd), "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars"
                               " --screenshot='%s' --window-size=1200,2000 'file://%s' >/dev/null 2>&1"
                               " && python3 '%s' '%s'", png, path, py, png);
    assert_non_null(out = harness_shell_read(cmd));
    assert_int_equal(sscanf(out, "%d %lf", &colours, &ink), 2);
    print_message("report screenshot: %d colours, %.1f %% non-white\n", colours, 100 * ink);
    assert_true(colours > 20);
    assert_true(ink > 0.02);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms_show_their_most_frequent_written_form),
        cmocka_unit_test(test_form_counts_fold_with_rows_of_older_workers),
        cmocka_unit_test(test_topics_have_sizes_and_representative_documents_with_titles),
        cmocka_unit_test(test_labels_follow_their_topic_across_a_refit),
        cmocka_unit_test(test_html_report_renders_in_chromium_with_every_value_escaped),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
