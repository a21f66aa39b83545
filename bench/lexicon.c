/*
 * bench/lexicon.c - how far the bilingual lexicon joins the sample postings' languages, and
 * what it costs. Generates sample postings (cli/sample), makes their terms with the text
 * pipeline with and without the lexicon, and prints per field the share of the Arabic
 * postings' term mass that lands on a term the same field's English postings use (coverage;
 * "specific": only terms whose Arabic mass is mostly in that field), the field's heaviest
 * Arabic terms with what the lexicon makes of them, and the tokenizer's CPU per document
 * with and without it (same run, same documents). A term with several senses takes, as in
 * the worker, the one most English postings use (--first-sense: the table's first). Usage:
 *   bench-lexicon [--count N] [--seed S] [--lexicon auto|FILE] [--candidates FILE] [--top N]
 *                 [--quiet] [--first-sense]
 * --candidates takes `topicflow lexicon build --candidates` output and adds the ceiling: the
 * coverage if each Arabic term took whichever of the dictionaries' translations fits best.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/datadir.h"
#include "base/hash.h"
#include "base/strmap.h"
#include "engine/lexicon.h"
#include "engine/text.h"
#include "sample/generator.h"

#define MAX_FIELDS 32

typedef struct term_stat {
    double en_docs[MAX_FIELDS]; /* English documents of the field holding the term */
    double ar_mass[MAX_FIELDS]; /* occurrences in Arabic documents, from Arabic words */
    char *stem;                 /* an Arabic stem (without lexicon) that made it, first seen */
    char *form;
    uint32_t reach;             /* fields where some candidate translation is used (--candidates) */
} term_stat;

typedef struct tally {
    tf_strmap map; /* key: (plain stem or mapped term) -> index in stats */
    term_stat *stats;
    size_t n, cap;
} tally;

static int idx(tally *t, const char *key, size_t len)
{
    tf_strmap_slot *s = tf_strmap_put(&t->map, tf_hash_bytes(key, len), key, len);

    if (!s) {
        fprintf(stderr, "bench-lexicon: out of memory\n");
        exit(1);
    }
    if (!s->val_off) {
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 1024;
            t->stats = realloc(t->stats, t->cap * sizeof(*t->stats));
            if (!t->stats) {
                fprintf(stderr, "bench-lexicon: out of memory\n");
                exit(1);
            }
        }
        memset(&t->stats[t->n], 0, sizeof(t->stats[0]));
        s->val = (int32_t)t->n++;
        s->val_off = 1;
    }
    return s->val;
}

/* Documents of the sample holding english[0..elen) in a non-Arabic form. */
static int64_t english_usage(void *ctx, const char *english, size_t elen)
{
    const tf_strmap_slot *s = tf_strmap_find(ctx, tf_hash_bytes(english, elen), english, elen);

    return s->key_len ? s->val : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The posting as the quality harness loads it: title, description, skills. */
static size_t posting_text(const tf_posting *p, char **buf, size_t *cap)
{
    size_t need = strlen(p->title) + strlen(p->description) + 8;
    size_t len;

    for (size_t i = 0; i < p->n_skills; i++)
        need += strlen(p->skills[i]) + 2;
    if (need > *cap) {
        *cap = need * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            exit(1);
    }
    len = (size_t)sprintf(*buf, "%s\n%s\n", p->title, p->description);
    for (size_t i = 0; i < p->n_skills; i++)
        len += (size_t)sprintf(*buf + len, "%s, ", p->skills[i]);
    return len;
}

/* Whether the field's English postings use term: at least 2 % of them hold it. */
static int used_by(const tally *terms, const char *term, size_t len, size_t f, size_t en_docs)
{
    const tf_strmap_slot *sl = tf_strmap_find(&terms->map, tf_hash_bytes(term, len), term, len);

    return sl->key_len && terms->stats[sl->val].en_docs[f] >= 0.02 * (double)en_docs;
}

/* The ceiling: for each Arabic stem of the corpus, the fields where the stem itself or any
 * translation `topicflow lexicon build --candidates` lists is used by the English postings. */
static void mark_reach(tally *stems, const tally *terms, size_t n_fields, const size_t *en_docs,
                       const char *path)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;

    if (!f) {
        fprintf(stderr, "bench-lexicon: cannot read %s\n", path);
        exit(1);
    }
    for (size_t i = 0; i <= stems->map.mask; i++) {
        const tf_strmap_slot *sl = &stems->map.slots[i];
        if (!sl->key_len)
            continue;
        for (size_t g = 0; g < n_fields; g++)
            if (used_by(terms, tf_strmap_at(&stems->map, sl->key_off), sl->key_len, g, en_docs[g]))
                stems->stats[sl->val].reach |= 1u << g;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        const tf_strmap_slot *sl;
        if (!t2 || line[0] == '#')
            continue;
        sl = tf_strmap_find(&stems->map, tf_hash_bytes(line, (size_t)(t1 - line)), line,
                            (size_t)(t1 - line));
        if (!sl->key_len)
            continue;
        for (size_t g = 0; g < n_fields; g++)
            if (used_by(terms, t1 + 1, (size_t)(t2 - t1 - 1), g, en_docs[g]))
                stems->stats[sl->val].reach |= 1u << g;
    }
    free(line);
    fclose(f);
}

typedef struct ranked {
    int id;
    double mass;
} ranked;

static int by_mass(const void *a, const void *b)
{
    double x = ((const ranked *)a)->mass, y = ((const ranked *)b)->mass;
    return x < y ? 1 : x > y ? -1 : 0;
}

int main(int argc, char **argv)
{
    long count = 5000, top = 12;
    uint64_t seed = 7, rng;
    const char *setting = "auto", *candidates = NULL;
    int quiet = 0, senses = 1;
    tf_strmap english_df; /* term -> documents holding it in a non-Arabic form */
    tf_err err;
    tf_sample *gen;
    tf_lexicon *lx = NULL;
    tf_text *plain, *mapped;
    tf_text_opts o = {.data_dir = tf_data_dir()};
    tally stems = {0}; /* key: the plain stem (Arabic) or term (English); stats per stem */
    tally terms = {0}; /* key: the mapped term */
    size_t n_fields, field_en_docs[MAX_FIELDS] = {0}, field_ar_docs[MAX_FIELDS] = {0};
    char **docs;
    size_t *lens, cap = 0;
    char *buf = NULL;
    int *field_of;
    char *lang_ar;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--lexicon") && i + 1 < argc)
            setting = argv[++i];
        else if (!strcmp(argv[i], "--candidates") && i + 1 < argc)
            candidates = argv[++i];
        else if (!strcmp(argv[i], "--top") && i + 1 < argc)
            top = atol(argv[++i]);
        else if (!strcmp(argv[i], "--quiet"))
            quiet = 1;
        else if (!strcmp(argv[i], "--first-sense"))
            senses = 0;
        else {
            fprintf(stderr, "usage: bench-lexicon [--count N] [--seed S] [--lexicon auto|FILE] "
                            "[--candidates FILE] [--top N] [--quiet] [--first-sense]\n");
            return 2;
        }
    }
    gen = tf_sample_new(tf_data_dir(), &err);
    if (!gen || tf_lexicon_open(setting, tf_data_dir(), &lx, &err) < 0) {
        fprintf(stderr, "bench-lexicon: %s\n", err.msg);
        return 1;
    }
    if (!lx) {
        fprintf(stderr, "bench-lexicon: no lexicon (--lexicon %s)\n", setting);
        return 1;
    }
    plain = tf_text_new(&o, &err);
    if (!plain || tf_strmap_init(&stems.map, 1024, 1 << 16) < 0 ||
        tf_strmap_init(&terms.map, 1024, 1 << 16) < 0 ||
        tf_strmap_init(&english_df, 1024, 1 << 16) < 0) {
        fprintf(stderr, "bench-lexicon: %s\n", plain ? "out of memory" : err.msg);
        return 1;
    }
    n_fields = tf_sample_field_count(gen);
    if (n_fields > MAX_FIELDS)
        n_fields = MAX_FIELDS;
    docs = calloc((size_t)count, sizeof(*docs));
    lens = calloc((size_t)count, sizeof(*lens));
    field_of = calloc((size_t)count, sizeof(*field_of));
    lang_ar = calloc((size_t)count, 1);
    rng = seed;
    for (long d = 0; d < count; d++) {
        tf_posting p;
        if (tf_sample_next(gen, &rng, TF_SAMPLE_MIXED, &p) < 0)
            return 1;
        lens[d] = posting_text(&p, &buf, &cap);
        docs[d] = malloc(lens[d] + 1);
        memcpy(docs[d], buf, lens[d] + 1);
        field_of[d] = (int)p.field_index;
        lang_ar[d] = !strcmp(p.lang, "ar");
        if (p.field_index < n_fields)
            (lang_ar[d] ? field_ar_docs : field_en_docs)[p.field_index]++;
    }

    /* The worker's rule for a term with several senses: the one the deployment's English
     * documents use most (worker/apply.c). Here: documents holding the term in a non-Arabic
     * form, over every posting (no field read), as a settled worker sees them. */
    for (long d = 0; d < count; d++) {
        tf_tokens a;
        tf_strmap seen;
        if (tf_text_tokenize(plain, docs[d], lens[d], &a, &err) < 0 ||
            tf_strmap_init(&seen, 256, 1 << 14) < 0)
            return 1;
        for (size_t i = 0; i < a.n; i++) {
            const char *term = a.bytes + a.tok[i].off;
            uint64_t h = tf_hash_bytes(term, a.tok[i].len);
            tf_strmap_slot *sl;
            if (tf_text_form_is_arabic(a.bytes + a.tok[i].form_off, a.tok[i].form_len) ||
                tf_strmap_find(&seen, h, term, a.tok[i].len)->key_len)
                continue;
            tf_strmap_put(&seen, h, term, a.tok[i].len);
            sl = tf_strmap_find(&english_df, h, term, a.tok[i].len);
            if (!sl->key_len && !(sl = tf_strmap_put(&english_df, h, term, a.tok[i].len)))
                return 1;
            sl->val++;
        }
        tf_strmap_free(&seen);
    }
    o.lexicon = lx;
    o.lexicon_usage = senses ? english_usage : NULL;
    o.lexicon_usage_ctx = &english_df;
    mapped = tf_text_new(&o, &err);
    if (!mapped) {
        fprintf(stderr, "bench-lexicon: %s\n", err.msg);
        return 1;
    }

    /* Tally: English documents per term per field (document frequency), Arabic mass. */
    for (long d = 0; d < count; d++) {
        tf_tokens a, b;
        int f = field_of[d];
        if (f >= (int)n_fields)
            continue;
        if (tf_text_tokenize(plain, docs[d], lens[d], &a, &err) < 0)
            return 1;
        /* the plain tokens are copied: the two pipelines' buffers are separate */
        if (tf_text_tokenize(mapped, docs[d], lens[d], &b, &err) < 0 || a.n != b.n) {
            fprintf(stderr, "bench-lexicon: the lexicon changed the token count\n");
            return 1;
        }
        for (size_t i = 0; i < b.n; i++) {
            const char *term = b.bytes + b.tok[i].off, *stem = a.bytes + a.tok[i].off;
            const char *form = a.bytes + a.tok[i].form_off;
            int ti = idx(&terms, term, b.tok[i].len);
            term_stat *ts = &terms.stats[ti];
            if (!lang_ar[d])
                continue; /* English documents: document frequency, below */
            if (!tf_text_form_is_arabic(form, a.tok[i].form_len))
                continue;
            ts->ar_mass[f] += 1;
            int si = idx(&stems, stem, a.tok[i].len);
            term_stat *ss = &stems.stats[si];
            ss->ar_mass[f] += 1;
            if (!ss->stem) {
                ss->stem = strdup(term); /* the stem's mapped term */
                ss->form = strdup(form);
            }
        }
        if (!lang_ar[d]) {
            /* distinct terms of this English document */
            tf_strmap seen;
            tf_strmap_init(&seen, 256, 1 << 14);
            for (size_t i = 0; i < b.n; i++) {
                const char *term = b.bytes + b.tok[i].off;
                uint64_t h = tf_hash_bytes(term, b.tok[i].len);
                tf_strmap_slot *s = tf_strmap_find(&seen, h, term, b.tok[i].len);
                if (s->key_len)
                    continue;
                tf_strmap_put(&seen, h, term, b.tok[i].len);
                terms.stats[idx(&terms, term, b.tok[i].len)].en_docs[f] += 1;
            }
            tf_strmap_free(&seen);
        }
    }

    /* Coverage per field. A term "is used" by a field's English postings when at least 2 % of
     * them hold it. Specific: the Arabic term's mass is mostly (> 50 %) in this field. */
    double all_hit = 0, all_mass = 0, spec_hit_all = 0, spec_mass_all = 0, all_reach = 0;

    if (candidates)
        mark_reach(&stems, &terms, n_fields, field_en_docs, candidates);
    printf("coverage of Arabic term mass by the same field's English terms (lexicon: %s, %zu entries,"
           " %zu with several senses, %s; %ld postings, seed %llu)\n",
           setting, tf_lexicon_size(lx), tf_lexicon_senses(lx),
           senses ? "the sense the English postings use most" : "the table's first sense", count,
           (unsigned long long)seed);
    printf("| field | ar docs | en docs | coverage | specific coverage | specific share | ceiling |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t f = 0; f < n_fields; f++) {
        double hit = 0, mass = 0, shit = 0, smass = 0, reach = 0;
        for (size_t s = 0; s < stems.n; s++) {
            term_stat *ss = &stems.stats[s];
            double m = ss->ar_mass[f], total = 0;
            if (m <= 0)
                continue;
            for (size_t g = 0; g < n_fields; g++)
                total += ss->ar_mass[g];
            int used = used_by(&terms, ss->stem, strlen(ss->stem), f, field_en_docs[f]);
            mass += m;
            reach += (ss->reach >> f) & 1 ? m : 0;
            hit += used ? m : 0;
            if (m > 0.5 * total) {
                smass += m;
                shit += used ? m : 0;
            }
        }
        all_hit += hit;
        all_mass += mass;
        spec_hit_all += shit;
        spec_mass_all += smass;
        all_reach += reach;
        printf("| %s | %zu | %zu | %.1f %% | %.1f %% | %.1f %% | %s%.1f %% |\n",
               tf_sample_field_name(gen, f), field_ar_docs[f], field_en_docs[f],
               mass ? 100 * hit / mass : 0, smass ? 100 * shit / smass : 0,
               mass ? 100 * smass / mass : 0, candidates ? "" : "-", mass ? 100 * reach / mass : 0);
    }
    printf("| all | | | %.1f %% | %.1f %% | %.1f %% | %s%.1f %% |\n\n",
           all_mass ? 100 * all_hit / all_mass : 0,
           spec_mass_all ? 100 * spec_hit_all / spec_mass_all : 0,
           all_mass ? 100 * spec_mass_all / all_mass : 0, candidates ? "" : "-",
           all_mass ? 100 * all_reach / all_mass : 0);
    printf("coverage: share of the Arabic postings' term mass (terms made of Arabic words) whose term\n"
           "the same field's English postings use (>= 2 %% of them); specific: only terms whose Arabic\n"
           "mass is mostly (> 50 %%) in that field; ceiling (--candidates): the coverage if every\n"
           "Arabic term took, of all the dictionaries' translations, one the field uses\n\n");

    if (!quiet) {
        ranked *r = malloc(stems.n * sizeof(*r));
        for (size_t f = 0; f < n_fields; f++) {
            size_t n = 0;
            printf("%s: heaviest Arabic terms (stem -> term, [+] used by the field's English postings)\n ",
                   tf_sample_field_name(gen, f));
            for (size_t s = 0; s < stems.n; s++) {
                double total = 0;
                for (size_t g = 0; g < n_fields; g++)
                    total += stems.stats[s].ar_mass[g];
                if (stems.stats[s].ar_mass[f] > 0.5 * total)
                    r[n++] = (ranked){(int)s, stems.stats[s].ar_mass[f]};
            }
            qsort(r, n, sizeof(*r), by_mass);
            for (size_t i = 0; i < n && i < (size_t)top; i++) {
                term_stat *ss = &stems.stats[r[i].id];
                const char *term = ss->stem;
                int used = used_by(&terms, term, strlen(term), f, field_en_docs[f]);
                printf(" %s->%s%s %.0f;", ss->form, term, used ? "[+]" : "", r[i].mass);
            }
            printf("\n");
        }
        free(r);
        printf("\n");
    }

    /* CPU of the tokenizer per document, without and with the lexicon, on the same documents
     * (fresh pipelines: their word caches start cold, as a worker's does); 7 alternating
     * rounds, the median of each and of the ratios. */
    {
        enum { ROUNDS = 7 };
        double s[2][ROUNDS], ratio[ROUNDS];
        for (int rep = 0; rep < ROUNDS; rep++) {
            for (int with = 0; with < 2; with++) {
                tf_text_opts oo = {.data_dir = tf_data_dir(), .lexicon = with ? lx : NULL,
                                   .lexicon_usage = with ? o.lexicon_usage : NULL,
                                   .lexicon_usage_ctx = &english_df};
                tf_text *t = tf_text_new(&oo, &err);
                tf_tokens k;
                double t0 = cpu_now();
                for (long d = 0; d < count; d++)
                    tf_text_tokenize(t, docs[d], lens[d], &k, &err);
                s[with][rep] = (cpu_now() - t0) / (double)count;
                tf_text_free(t);
            }
            ratio[rep] = s[1][rep] / s[0][rep];
        }
        qsort(s[0], ROUNDS, sizeof(double), cmp_double);
        qsort(s[1], ROUNDS, sizeof(double), cmp_double);
        qsort(ratio, ROUNDS, sizeof(double), cmp_double);
        printf("tokenizer CPU per posting (median of %d rounds): without lexicon %.2f us, with %.2f us;"
               " median ratio with/without %.3f (range %.3f-%.3f)\n",
               ROUNDS, 1e6 * s[0][ROUNDS / 2], 1e6 * s[1][ROUNDS / 2], ratio[ROUNDS / 2], ratio[0],
               ratio[ROUNDS - 1]);
    }
    return 0;
}
