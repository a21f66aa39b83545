/*
 * bench/json.c - speed of `topicflow load`'s JSONL parsing: each line turned into the cells
 * load needs (column index, text and length, string arrays), once with the project's reader
 * (wire/json, exactly as cli/load.c calls it) and once with jansson (json_loadb, with the
 * flags that keep load's rules: duplicate keys refused, \u0000 left for load to report).
 * Both must produce the same cells (a checksum is compared); the runs are interleaved. The ceiling printed beside them
 * is a UTF-8 validation pass over the same bytes, which any strict reader does at least.
 * Usage: bench-json [postings-per-case | FILE.jsonl]   (default 50,000 sample postings)
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/datadir.h"
#include "base/hash.h"
#include "base/utf8.h"
#include "sample/generator.h"
#include "wire/json.h"

#define REPEATS 3

/* public.internships' columns, in table order (what load's find_column searches). */
static const char *const columns[] = {"id",     "title",      "company",   "location",
                                      "description", "skills", "created_at", "updated_at"};
#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

typedef struct corpus {
    char *text;
    size_t len;
    long lines;
} corpus;

typedef struct result {
    double seconds;
    uint64_t sum; /* checksum of every cell, equal for both readers */
    long bad;
} result;

/* CPU time, not wall time: on a shared machine the waits for a core are not the reader's. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A cell into the checksum: its bytes and its length (so "ab","c" differs from "a","bc"). */
static uint64_t mix(uint64_t h, const char *s, size_t len)
{
    return tf_fnv1a(h, s, len) * 31 + len;
}

static int find_column(const char *name, size_t len)
{
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (strlen(columns[i]) == len && memcmp(columns[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Calls per_line(line, len) for every non-blank line, as load_jsonl trims and skips them. */
#define FOR_EACH_LINE(c, line, len, body)                                                   \
    for (size_t pos_ = 0; pos_ < (c)->len;) {                                             \
        const char *line = (c)->text + pos_, *nl_ = memchr(line, '\n', (c)->len - pos_);  \
        size_t len = nl_ ? (size_t)(nl_ - line) : (c)->len - pos_;                          \
        int blank_ = 1;                                                                     \
        pos_ += len + 1;                                                                    \
        while (len && line[len - 1] == '\r')                                                \
            len--;                                                                          \
        for (size_t i_ = 0; i_ < len && blank_; i_++)                                       \
            blank_ = line[i_] == ' ' || line[i_] == '\t';                                   \
        if (!blank_) {                                                                      \
            body                                                                            \
        }                                                                                   \
    }

/* (a) wire/json: parse, then walk the members into cells as load_jsonl does. */
static result run_wire(const corpus *c)
{
    tf_json_object *obj = tf_json_object_new();
    result r = {0, TF_FNV1A_INIT, 0};
    double t0 = now();

    FOR_EACH_LINE(c, line, len, {
        tf_err why;
        if (tf_json_parse_object(obj, line, len, &why) < 0) {
            r.bad++;
            continue;
        }
        for (size_t i = 0; i < tf_json_count(obj); i++) {
            const tf_json_member *m = tf_json_member_at(obj, i);
            int col = find_column(m->key, m->key_len);
            if (col < 0)
                continue;
            r.sum = r.sum * 7 + (uint64_t)col;
            switch (m->value.kind) {
            case TF_JSON_NULL:
                break;
            case TF_JSON_BOOL:
                r.sum = mix(r.sum, m->value.boolean ? "true" : "false", m->value.boolean ? 4 : 5);
                break;
            case TF_JSON_NUMBER:
            case TF_JSON_STRING:
            case TF_JSON_RAW:
                r.sum = mix(r.sum, m->value.text, m->value.len);
                break;
            case TF_JSON_ARRAY:
                for (size_t k = 0; k < m->value.n_items; k++)
                    if (m->value.items[k])
                        r.sum = mix(r.sum, m->value.items[k], m->value.item_lens[k]);
                break;
            }
        }
    })
    r.seconds = now() - t0;
    tf_json_object_free(obj);
    return r;
}

/* (b) jansson: what load_jsonl's loop would become. Numbers must be printed back to text
 * (jansson keeps no source text) and nested objects dumped; the sample data has neither. */
static result run_jansson(const corpus *c)
{
    result r = {0, TF_FNV1A_INIT, 0};
    double t0 = now();

    FOR_EACH_LINE(c, line, len, {
        json_error_t jerr;
        json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
        const char *key;
        size_t key_len;
        json_t *v;
        if (!root || !json_is_object(root)) {
            json_decref(root);
            r.bad++;
            continue;
        }
        json_object_keylen_foreach(root, key, key_len, v) {
            int col = find_column(key, key_len);
            char num[64];
            if (col < 0)
                continue;
            r.sum = r.sum * 7 + (uint64_t)col;
            switch (json_typeof(v)) {
            case JSON_NULL:
                break;
            case JSON_TRUE:
                r.sum = mix(r.sum, "true", 4);
                break;
            case JSON_FALSE:
                r.sum = mix(r.sum, "false", 5);
                break;
            case JSON_INTEGER:
                r.sum = mix(r.sum, num, (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                                                         json_integer_value(v)));
                break;
            case JSON_REAL:
                r.sum = mix(r.sum, num, (size_t)snprintf(num, sizeof(num), "%.17g",
                                                         json_real_value(v)));
                break;
            case JSON_STRING:
                r.sum = mix(r.sum, json_string_value(v), json_string_length(v));
                break;
            case JSON_ARRAY: {
                size_t k;
                json_t *item;
                json_array_foreach(v, k, item) {
                    if (json_is_string(item))
                        r.sum = mix(r.sum, json_string_value(item), json_string_length(item));
                }
                break;
            }
            case JSON_OBJECT: {
                char *raw = json_dumps(v, JSON_COMPACT);
                if (raw)
                    r.sum = mix(r.sum, raw, strlen(raw));
                free(raw);
                break;
            }
            }
        }
        json_decref(root);
    })
    r.seconds = now() - t0;
    return r;
}

/* The ceiling: one UTF-8 validation pass per line. */
static result run_utf8(const corpus *c)
{
    result r = {0, 0, 0};
    double t0 = now();

    FOR_EACH_LINE(c, line, len, { r.sum += tf_utf8_check(line, len); })
    r.seconds = now() - t0;
    return r;
}

static void keep_best(result *best, result r, int first)
{
    if (first || r.seconds < best->seconds)
        *best = r;
}

/* Decodes one UTF-8 sequence (the input is valid: it comes from the generator). */
static uint32_t utf8_next(const unsigned char *s, size_t *i)
{
    uint32_t cp = s[*i];
    int more = cp >= 0xF0 ? 3 : cp >= 0xE0 ? 2 : cp >= 0xC0 ? 1 : 0;

    cp &= more == 3 ? 0x07 : more == 2 ? 0x0F : more == 1 ? 0x1F : 0x7F;
    (*i)++;
    while (more--)
        cp = (cp << 6) | (s[(*i)++] & 0x3F);
    return cp;
}

/* Rewrites a JSON line with every non-ASCII character as \uXXXX (a surrogate pair above
 * U+FFFF), as Python's json.dumps writes by default. */
static void ascii_escape(FILE *out, const char *line, size_t len)
{
    const unsigned char *s = (const unsigned char *)line;

    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (s[i] < 0x80) {
            fputc(s[i++], out);
            continue;
        }
        cp = utf8_next(s, &i);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            fprintf(out, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else {
            fprintf(out, "\\u%04x", cp);
        }
    }
}

enum { CASE_MIXED, CASE_ARABIC_LONG, CASE_ESCAPED, N_CASES };
static const char *const case_names[N_CASES] = {
    "mixed (topicflow sample)", "arabic, 4x descriptions", "escaped (ASCII-only, \\n \\\" \\t)"};

/* The JSONL `topicflow sample` writes, varied per case. */
static int make_corpus(tf_sample *gen, int which, long count, corpus *c)
{
    uint64_t rng = 42;
    FILE *out = open_memstream(&c->text, &c->len), *line_f;
    char *desc = NULL, *line = NULL;
    size_t desc_cap = 0, line_len = 0;

    if (!out)
        return -1;
    for (long n = 0; n < count; n++) {
        tf_posting p;
        if (tf_sample_next(gen, &rng, which == CASE_ARABIC_LONG ? TF_SAMPLE_AR : TF_SAMPLE_MIXED,
                           &p) < 0)
            return -1;
        if (which == CASE_ARABIC_LONG) {
            /* four descriptions in one: the long postings of a real scrape */
            size_t d = strlen(p.description), need = 4 * (d + 1) + 1;
            if (need > desc_cap) {
                desc = realloc(desc, need);
                desc_cap = need;
            }
            for (int k = 0; k < 4; k++) {
                memcpy(desc + k * (d + 1), p.description, d);
                desc[k * (d + 1) + d] = k < 3 ? '\n' : '\0';
            }
            p.description = desc;
        } else if (which == CASE_ESCAPED) {
            /* quotes, tabs and line breaks in the text, as pasted descriptions carry */
            size_t d = strlen(p.description);
            if (d + 3 > desc_cap) {
                desc = realloc(desc, d + 3);
                desc_cap = d + 3;
            }
            desc[0] = '"';
            for (size_t i = 0; i < d; i++)
                desc[i + 1] = p.description[i] == '.' ? '\n' : p.description[i] == ',' ? '\t'
                                                                                      : p.description[i];
            desc[d + 1] = '"';
            desc[d + 2] = '\0';
            p.description = desc;
        }
        if (which != CASE_ESCAPED) {
            tf_sample_write_json(out, &p);
            continue;
        }
        line_f = open_memstream(&line, &line_len);
        tf_sample_write_json(line_f, &p);
        fclose(line_f);
        ascii_escape(out, line, line_len);
        free(line);
        line = NULL;
    }
    free(desc);
    if (fclose(out) != 0)
        return -1;
    c->lines = count;
    return 0;
}

static int read_file(const char *path, corpus *c)
{
    FILE *f = fopen(path, "rb");
    long size;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        return -1;
    c->text = malloc((size_t)size + 1);
    if (!c->text || fread(c->text, 1, (size_t)size, f) != (size_t)size)
        return -1;
    fclose(f);
    c->len = (size_t)size;
    c->lines = 0;
    for (size_t i = 0; i < c->len; i++)
        c->lines += c->text[i] == '\n';
    return 0;
}

static void print_row(const char *what, const corpus *c, const result *r, double base)
{
    printf("  %-22s %9.1f MB/s %11.0f lines/s   %5.2fx", what, (double)c->len / r->seconds / 1e6,
           (double)c->lines / r->seconds, base / r->seconds);
    if (r->bad)
        printf("   (%ld lines refused)", r->bad);
    printf("\n");
}

static int bench_case(const char *name, const corpus *c)
{
    result wire, jan, utf8;

    /* interleaved, so that a busy neighbour on a shared machine slows all three alike */
    for (int i = 0; i < REPEATS; i++) {
        keep_best(&wire, run_wire(c), i == 0);
        keep_best(&jan, run_jansson(c), i == 0);
        keep_best(&utf8, run_utf8(c), i == 0);
    }

    printf("%s: %ld lines, %.1f MB, %.0f bytes a line (CPU time, best of %d; x = speed / wire/json's)\n",
           name, c->lines, (double)c->len / 1e6, (double)c->len / (double)c->lines, REPEATS);
    print_row("wire/json (load today)", c, &wire, wire.seconds);
    print_row("jansson json_loadb", c, &jan, wire.seconds);
    print_row("ceiling: UTF-8 check", c, &utf8, wire.seconds);
    if (wire.sum != jan.sum || wire.bad != jan.bad) {
        printf("  the two readers disagree on the cells\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long count = 50000;
    int rc = 0;
    tf_err err;
    tf_sample *gen;

    if (argc > 1 && argv[1][0] >= '0' && argv[1][0] <= '9') {
        count = strtol(argv[1], NULL, 10);
    } else if (argc > 1) {
        corpus c;
        if (read_file(argv[1], &c) < 0) {
            fprintf(stderr, "bench-json: cannot read %s\n", argv[1]);
            return 1;
        }
        rc = bench_case(argv[1], &c);
        free(c.text);
        return rc < 0 ? 1 : 0;
    }
    gen = tf_sample_new(tf_data_dir(), &err);
    if (!gen) {
        fprintf(stderr, "bench-json: %s\n", err.msg);
        return 1;
    }
    printf("jansson %s; %ld postings per case\n", JANSSON_VERSION, count);
    for (int which = 0; which < N_CASES && rc == 0; which++) {
        corpus c;
        if (make_corpus(gen, which, count, &c) < 0) {
            fprintf(stderr, "bench-json: out of memory\n");
            rc = -1;
            break;
        }
        rc = bench_case(case_names[which], &c);
        free(c.text);
    }
    tf_sample_free(gen);
    return rc < 0 ? 1 : 0;
}
