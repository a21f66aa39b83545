/*
 * test_sample.c - the synthetic posting generator: determinism, coverage of the fields,
 * language purity, description length, UTF-8 validity, the JSONL and CSV encodings, and
 * rejection of malformed template files with the file and line named.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sample/generator.h"

#define SEED 20240611ULL

/* ---- helpers ---- */

/* An independent strict UTF-8 decoder: returns the code point and advances *p, or returns
 * -1 on an invalid sequence. */
static long next_cp(const unsigned char **p)
{
    const unsigned char *s = *p;
    long cp;
    int n, i;

    if (s[0] < 0x80) {
        *p += 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0)
        n = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        n = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        n = 4, cp = s[0] & 0x07;
    else
        return -1;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *p += n;
    return cp;
}

static int valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p)
        if (next_cp(&p) < 0)
            return 0;
    return 1;
}

static int is_arabic_cp(long cp)
{
    return (cp >= 0x0600 && cp <= 0x06ff) || (cp >= 0x0750 && cp <= 0x077f) ||
           (cp >= 0x08a0 && cp <= 0x08ff) || (cp >= 0xfb50 && cp <= 0xfdff) ||
           (cp >= 0xfe70 && cp <= 0xfeff);
}

static int has_arabic(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long cp;

    while (*p) {
        cp = next_cp(&p);
        if (cp < 0)
            return 0;
        if (is_arabic_cp(cp))
            return 1;
    }
    return 0;
}

/* Length of the city part of a location: up to ", " or the Arabic comma U+060C. */
static size_t city_len(const char *location)
{
    const char *comma = strchr(location, ',');
    const char *ar_comma = strstr(location, "\xd8\x8c");

    if (ar_comma && (!comma || ar_comma < comma))
        comma = ar_comma;
    return comma ? (size_t)(comma - location) : strlen(location);
}

/* Every text field of p, for checks that apply to all of them. */
static size_t texts(const tf_posting *p, const char **out)
{
    size_t n = 0, i;

    out[n++] = p->title;
    out[n++] = p->company;
    out[n++] = p->location;
    out[n++] = p->description;
    for (i = 0; i < p->n_skills; i++)
        out[n++] = p->skills[i];
    return n;
}

/* The JSONL of n postings drawn from seed; the caller frees it. */
static char *jsonl(tf_sample *s, uint64_t seed, size_t n, tf_sample_lang lang)
{
    char *buf = NULL;
    size_t len = 0, i;
    FILE *f = open_memstream(&buf, &len);
    tf_posting p;

    assert_non_null(f);
    for (i = 0; i < n; i++) {
        assert_int_equal(tf_sample_next(s, &seed, lang, &p), 0);
        assert_int_equal(tf_sample_write_json(f, &p), 0);
    }
    fclose(f);
    return buf;
}

static int load_bundled(void **state)
{
    tf_err err = { { 0 } };

    *state = tf_sample_new(TOPICFLOW_SOURCE_DATA_DIR, &err);
    if (!*state)
        fprintf(stderr, "loading templates: %s\n", err.msg);
    return *state ? 0 : -1;
}

static int free_bundled(void **state)
{
    tf_sample_free(*state);
    return 0;
}

/* ---- the bundled templates ---- */

static void test_bundled_templates_have_at_least_twelve_fields(void **state)
{
    tf_sample *s = *state;
    static const char *const wanted[] = { "software", "data", "design", "marketing",
                                          "finance", "mechanical", "civil", "medicine",
                                          "law", "education", "media", "logistics" };
    size_t i, j;

    assert_true(tf_sample_field_count(s) >= 12);
    for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        for (j = 0; j < tf_sample_field_count(s); j++)
            if (strcmp(tf_sample_field_name(s, j), wanted[i]) == 0)
                break;
        assert_true(j < tf_sample_field_count(s));
    }
    assert_null(tf_sample_field_name(s, tf_sample_field_count(s)));
}

static void test_same_seed_gives_identical_output(void **state)
{
    char *a = jsonl(*state, SEED, 300, TF_SAMPLE_MIXED);
    char *b = jsonl(*state, SEED, 300, TF_SAMPLE_MIXED);

    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_different_seeds_give_different_output(void **state)
{
    char *a = jsonl(*state, SEED, 50, TF_SAMPLE_MIXED);
    char *b = jsonl(*state, SEED + 1, 50, TF_SAMPLE_MIXED);

    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_every_field_appears_in_1000_postings(void **state)
{
    tf_sample *s = *state;
    size_t seen[64] = { 0 }, i;
    uint64_t rng = SEED;
    tf_posting p;

    for (i = 0; i < 1000; i++) {
        assert_int_equal(tf_sample_next(s, &rng, TF_SAMPLE_MIXED, &p), 0);
        assert_true(p.field_index < tf_sample_field_count(s));
        assert_string_equal(p.field, tf_sample_field_name(s, p.field_index));
        seen[p.field_index]++;
    }
    for (i = 0; i < tf_sample_field_count(s); i++)
        assert_true(seen[i] > 0);
}

static void test_english_postings_contain_no_arabic_script(void **state)
{
    const char *t[4 + TF_SAMPLE_MAX_SKILLS];
    uint64_t rng = SEED;
    tf_posting p;
    size_t i, j, n;

    for (i = 0; i < 1000; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_EN, &p), 0);
        assert_string_equal(p.lang, "en");
        n = texts(&p, t);
        for (j = 0; j < n; j++)
            assert_false(has_arabic(t[j]));
    }
}

static void test_arabic_postings_have_arabic_title_and_description(void **state)
{
    uint64_t rng = SEED;
    tf_posting p;
    size_t i;

    for (i = 0; i < 1000; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_AR, &p), 0);
        assert_string_equal(p.lang, "ar");
        assert_true(has_arabic(p.title));
        assert_true(has_arabic(p.description));
        assert_true(has_arabic(p.location));
    }
}

static void test_mixed_is_about_sixty_percent_english(void **state)
{
    uint64_t rng = SEED;
    tf_posting p;
    size_t i, en = 0;

    for (i = 0; i < 4000; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_MIXED, &p), 0);
        en += strcmp(p.lang, "en") == 0;
    }
    assert_in_range(en, 2200, 2600); /* 55 % to 65 % */
}

static void test_descriptions_stay_within_length_range(void **state)
{
    static const tf_sample_lang langs[] = { TF_SAMPLE_EN, TF_SAMPLE_AR, TF_SAMPLE_MIXED };
    uint64_t rng = SEED;
    tf_posting p;
    size_t i, k, len;

    for (k = 0; k < 3; k++)
        for (i = 0; i < 2000; i++) {
            assert_int_equal(tf_sample_next(*state, &rng, langs[k], &p), 0);
            len = strlen(p.description);
            assert_in_range(len, TF_SAMPLE_DESC_MIN, TF_SAMPLE_DESC_MAX);
        }
}

static void test_all_text_is_valid_utf8(void **state)
{
    const char *t[4 + TF_SAMPLE_MAX_SKILLS];
    uint64_t rng = SEED;
    tf_posting p;
    size_t i, j, n;

    for (i = 0; i < 3000; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_MIXED, &p), 0);
        n = texts(&p, t);
        for (j = 0; j < n; j++) {
            assert_true(t[j][0] != '\0');
            assert_true(valid_utf8(t[j]));
        }
    }
}

static void test_skills_are_distinct_and_three_to_eight(void **state)
{
    uint64_t rng = SEED;
    tf_posting p;
    size_t i, a, b;

    for (i = 0; i < 2000; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_MIXED, &p), 0);
        assert_in_range(p.n_skills, 3, TF_SAMPLE_MAX_SKILLS);
        for (a = 0; a < p.n_skills; a++)
            for (b = a + 1; b < p.n_skills; b++)
                assert_string_not_equal(p.skills[a], p.skills[b]);
    }
}

static void test_descriptions_vary_and_mention_the_posting(void **state)
{
    uint64_t rng = SEED;
    tf_posting p;
    char first[TF_SAMPLE_DESC_MAX + 1], city[128];
    size_t i, differ = 0, named = 0, n;

    assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_MIXED, &p), 0);
    snprintf(first, sizeof(first), "%s", p.description);
    for (i = 0; i < 200; i++) {
        assert_int_equal(tf_sample_next(*state, &rng, TF_SAMPLE_MIXED, &p), 0);
        differ += strcmp(first, p.description) != 0;
        /* the opening sentence names the company or the city of the location */
        n = city_len(p.location);
        snprintf(city, sizeof(city), "%.*s", (int)n, p.location);
        assert_true(n > 0);
        named += strstr(p.description, p.company) != NULL || strstr(p.description, city) != NULL;
    }
    assert_int_equal(differ, 200);
    assert_int_equal(named, 200);
}

static void test_generated_json_is_one_line_per_posting(void **state)
{
    char *out = jsonl(*state, SEED, 100, TF_SAMPLE_MIXED);
    size_t lines = 0;
    const char *c;

    for (c = out; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 100);
    assert_int_equal(out[strlen(out) - 1], '\n');
    assert_int_equal(out[0], '{');
    free(out);
}

/* ---- output encodings ---- */

static char *write_one(int (*writer)(FILE *, const tf_posting *), const tf_posting *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(writer(f, p), 0);
    fclose(f);
    return buf;
}

static void test_json_escapes_quotes_backslashes_and_control_characters(void **state)
{
    tf_posting p = {
        .title = "q\"b\\s\n\r\t\b\f\x01\x1f\x7f",
        .company = NULL,
        .location = "Cairo",
        .description = "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xff end \xf0\x9f\x98\x80",
        .skills = { "c++", "a\"b" },
        .n_skills = 2,
        .field = "software",
        .lang = "en",
    };
    char *out = write_one(tf_sample_write_json, &p);

    (void)state;
    assert_string_equal(out,
                        "{\"title\":\"q\\\"b\\\\s\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\","
                        "\"company\":null,\"location\":\"Cairo\","
                        "\"description\":\"\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xef\xbf\xbd end "
                        "\xf0\x9f\x98\x80\","
                        "\"skills\":[\"c++\",\"a\\\"b\"],\"field\":\"software\",\"lang\":\"en\"}\n");
    free(out);
}

static void test_json_replaces_truncated_utf8_sequences(void **state)
{
    tf_posting p = { .title = "ab\xd9", .company = "\xe0\x80\x80", .location = "\xed\xa0\x80",
                     .description = "x", .field = "f", .lang = "ar" };
    char *out = write_one(tf_sample_write_json, &p);

    (void)state;
    assert_string_equal(out, "{\"title\":\"ab\xef\xbf\xbd\",\"company\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                             "\"location\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\",\"description\":\"x\","
                             "\"skills\":[],\"field\":\"f\",\"lang\":\"ar\"}\n");
    free(out);
}

static void test_csv_quotes_fields_and_writes_skills_as_pg_array(void **state)
{
    tf_posting p = {
        .title = "a,b",
        .company = "say \"hi\"",
        .location = "x",
        .description = "l1\nl2",
        .skills = { "c++", "ux research", "q\"s", "b\\s" },
        .n_skills = 4,
        .field = "design",
        .lang = "ar",
    };
    char *out = write_one(tf_sample_write_csv, &p);
    char *hdr = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    assert_string_equal(out, "\"a,b\",\"say \"\"hi\"\"\",\"x\",\"l1\nl2\","
                             "\"{\"\"c++\"\",\"\"ux research\"\",\"\"q\\\"\"s\"\",\"\"b\\\\s\"\"}\","
                             "\"design\",\"ar\"\n");
    f = open_memstream(&hdr, &len);
    assert_non_null(f);
    assert_int_equal(tf_sample_write_csv_header(f), 0);
    fclose(f);
    assert_string_equal(hdr, "title,company,location,description,skills,field,lang\n");
    free(out);
    free(hdr);
}

/* ---- template validation, on a minimal template set in a temporary directory ---- */

static const char *const base_common[] = {
    "# minimal common templates",
    "[en.city]", "Cairo, Egypt",
    "[ar.city]", "\xd8\xa7\xd9\x84\xd9\x82\xd8\xa7\xd9\x87\xd8\xb1\xd8\xa9",
    "[intro]", "Intro at {@company} in {@city}.",
    "[task_head]", "Tasks:",
    "[req_head]", "Needs:",
    "[task_lead]", "You will {@task}.",
    "[req_lead]", "You have {@req}.",
    "[generic]", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8",
    "[closing]", "Bye {a|b|}.",
    NULL,
};

static const char *const base_field[] = {
    "[title]", "Alpha Intern",
    "[company]", "{name} Ltd",
    "[name]", "Acme",
    "[skill]", "s1", "s2", "s3", "s4", "s5", "s6",
    "[task]", "t1", "t2", "t3", "t4", "t5",
    "[req]", "r1", "r2", "r3", "r4 with {@skill}",
    NULL,
};

struct tmpl_dir {
    char root[64], path[160];
};

static void put_file(const char *path, const char *const *lines, size_t insert_at,
                     const char *extra)
{
    FILE *f = fopen(path, "w");
    size_t i;

    assert_non_null(f);
    for (i = 0; lines[i] || i == insert_at; i++) {
        if (i == insert_at && extra)
            fprintf(f, "%s\n", extra);
        if (!lines[i])
            break;
        fprintf(f, "%s\n", lines[i]);
    }
    fclose(f);
}

/* Writes the minimal set; extra (if any) becomes line insert_at + 1 of the chosen file. */
static void make_templates(struct tmpl_dir *d, const char *fields, int in_field,
                           size_t insert_at, const char *extra)
{
    FILE *f;

    snprintf(d->root, sizeof(d->root), "/tmp/tf_sample_test_XXXXXX");
    assert_non_null(mkdtemp(d->root));
    snprintf(d->path, sizeof(d->path), "%s/sample", d->root);
    assert_int_equal(mkdir(d->path, 0700), 0);
    snprintf(d->path, sizeof(d->path), "%s/sample/fields", d->root);
    assert_int_equal(mkdir(d->path, 0700), 0);
    snprintf(d->path, sizeof(d->path), "%s/sample/fields.list", d->root);
    f = fopen(d->path, "w");
    assert_non_null(f);
    fputs(fields, f);
    fclose(f);
    snprintf(d->path, sizeof(d->path), "%s/sample/common.txt", d->root);
    put_file(d->path, base_common, in_field ? SIZE_MAX : insert_at, extra);
    snprintf(d->path, sizeof(d->path), "%s/sample/fields/alpha.txt", d->root);
    put_file(d->path, base_field, in_field ? insert_at : SIZE_MAX, extra);
}

static void remove_templates(struct tmpl_dir *d)
{
    static const char *const files[] = { "sample/fields/alpha.txt", "sample/fields/beta.txt",
                                         "sample/fields.list", "sample/common.txt",
                                         "sample/fields", "sample" };
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(d->path, sizeof(d->path), "%s/%s", d->root, files[i]);
        remove(d->path);
    }
    rmdir(d->root);
}

static void test_minimal_templates_load(void **state)
{
    struct tmpl_dir d;
    tf_err err = { { 0 } };
    tf_sample *s;
    tf_posting p;
    uint64_t rng = 1;

    (void)state;
    make_templates(&d, "alpha\n", 0, SIZE_MAX, NULL);
    s = tf_sample_new(d.root, &err);
    if (!s)
        fail_msg("%s", err.msg);
    assert_int_equal(tf_sample_field_count(s), 1);
    assert_string_equal(tf_sample_field_name(s, 0), "alpha");
    /* too short to reach 600 bytes: still a complete posting, never a hang or a crash */
    assert_int_equal(tf_sample_next(s, &rng, TF_SAMPLE_MIXED, &p), 0);
    assert_string_equal(p.company, "Acme Ltd");
    tf_sample_free(s);
    remove_templates(&d);
}

/* Loading must fail with a message that contains want (typically "file:line:"). */
static void expect_rejected(const char *fields, int in_field, size_t insert_at,
                            const char *extra, const char *want1, const char *want2)
{
    struct tmpl_dir d;
    tf_err err = { { 0 } };
    tf_sample *s;

    make_templates(&d, fields, in_field, insert_at, extra);
    s = tf_sample_new(d.root, &err);
    tf_sample_free(s);
    remove_templates(&d);
    assert_null(s);
    if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2)))
        fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err.msg, want1, want2 ? want2 : "");
}

static void test_unclosed_brace_is_rejected_with_its_line(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 1, 3, "{name Ltd", "fields/alpha.txt:4:", "never closed");
}

static void test_unknown_slot_is_rejected_with_its_line(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 1, 24, "r5 about {nosuch}", "fields/alpha.txt:25:", "{nosuch}");
}

static void test_text_before_any_section_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 0, 0, "stray text", "common.txt:1:", "before the first");
}

static void test_value_used_where_it_is_not_yet_known_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 1, 1, "Intern at {@company}", "fields/alpha.txt:2:",
                    "{@company}");
}

static void test_task_outside_its_lead_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 0, 24, "g9 {@task}", "common.txt:25:", "[task_lead]");
}

static void test_unknown_value_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 0, 7, "Hello {@salary}", "common.txt:8:", "{@salary}");
}

static void test_slot_cycle_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 1, 5, "Acme {name}", "fields/alpha.txt:6:", "itself");
}

static void test_invalid_utf8_is_rejected_with_its_line(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 0, 7, "caf\xc3 latte", "common.txt:8:", "UTF-8");
}

static void test_duplicate_section_is_rejected(void **state)
{
    (void)state;
    expect_rejected("alpha\n", 1, 24, "[title]", "fields/alpha.txt:25:", "already");
}

static void test_too_few_entries_is_rejected(void **state)
{
    (void)state;
    /* a field-level [task] with only one entry shadows nothing and is too small */
    expect_rejected("alpha\n", 1, 24, "[en.task]\nonly one", "fields/alpha.txt:25:",
                    "at least 5");
}

static void test_missing_field_file_is_named(void **state)
{
    (void)state;
    expect_rejected("alpha\nbeta\n", 0, SIZE_MAX, NULL, "fields/beta.txt", NULL);
}

static void test_missing_required_section_names_the_field(void **state)
{
    struct tmpl_dir d;
    tf_err err = { { 0 } };
    tf_sample *s;
    FILE *f;
    size_t i;

    (void)state;
    make_templates(&d, "alpha\n", 0, SIZE_MAX, NULL);
    snprintf(d.path, sizeof(d.path), "%s/sample/fields/alpha.txt", d.root);
    f = fopen(d.path, "w");
    assert_non_null(f);
    for (i = 0; strcmp(base_field[i], "[req]") != 0; i++)
        fprintf(f, "%s\n", base_field[i]);
    fclose(f);
    s = tf_sample_new(d.root, &err);
    tf_sample_free(s);
    remove_templates(&d);
    assert_null(s);
    if (!strstr(err.msg, "fields/alpha.txt") || !strstr(err.msg, "no [en.req]"))
        fail_msg("message \"%s\" names neither file nor section", err.msg);
}

int main(void)
{
    const struct CMUnitTest bundled[] = {
        cmocka_unit_test(test_bundled_templates_have_at_least_twelve_fields),
        cmocka_unit_test(test_same_seed_gives_identical_output),
        cmocka_unit_test(test_different_seeds_give_different_output),
        cmocka_unit_test(test_every_field_appears_in_1000_postings),
        cmocka_unit_test(test_english_postings_contain_no_arabic_script),
        cmocka_unit_test(test_arabic_postings_have_arabic_title_and_description),
        cmocka_unit_test(test_mixed_is_about_sixty_percent_english),
        cmocka_unit_test(test_descriptions_stay_within_length_range),
        cmocka_unit_test(test_all_text_is_valid_utf8),
        cmocka_unit_test(test_skills_are_distinct_and_three_to_eight),
        cmocka_unit_test(test_descriptions_vary_and_mention_the_posting),
        cmocka_unit_test(test_generated_json_is_one_line_per_posting),
    };
    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_json_escapes_quotes_backslashes_and_control_characters),
        cmocka_unit_test(test_json_replaces_truncated_utf8_sequences),
        cmocka_unit_test(test_csv_quotes_fields_and_writes_skills_as_pg_array),
        cmocka_unit_test(test_minimal_templates_load),
        cmocka_unit_test(test_unclosed_brace_is_rejected_with_its_line),
        cmocka_unit_test(test_unknown_slot_is_rejected_with_its_line),
        cmocka_unit_test(test_text_before_any_section_is_rejected),
        cmocka_unit_test(test_value_used_where_it_is_not_yet_known_is_rejected),
        cmocka_unit_test(test_task_outside_its_lead_is_rejected),
        cmocka_unit_test(test_unknown_value_is_rejected),
        cmocka_unit_test(test_slot_cycle_is_rejected),
        cmocka_unit_test(test_invalid_utf8_is_rejected_with_its_line),
        cmocka_unit_test(test_duplicate_section_is_rejected),
        cmocka_unit_test(test_too_few_entries_is_rejected),
        cmocka_unit_test(test_missing_field_file_is_named),
        cmocka_unit_test(test_missing_required_section_names_the_field),
    };
    int failed;

    failed = cmocka_run_group_tests_name("bundled templates", bundled, load_bundled, free_bundled);
    failed += cmocka_run_group_tests_name("encodings and validation", standalone, NULL, NULL);
    return failed ? 1 : 0;
}
