/*
 * sample.c - `topicflow sample`: writes synthetic internship postings (JSONL or CSV) for the
 * demo, the tests and the benchmarks. The same seed and templates give the same bytes.
 * Exit status: 0 done, 1 template or I/O error, 2 bad arguments (one line on stderr). Its
 * options go through cli_parse like every subcommand's.
 */
#include "commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "base/datadir.h"
#include "sample/generator.h"

#define MAX_COUNT 1000000000ULL

typedef struct sample_config {
    const char *count, *seed, *lang, *format, *output;
} sample_config;

static const tf_option sample_options[] = {
    {"count", NULL, TF_OPT_STRING, NULL, "number of postings, 0 to 1000000000 (required)",
     offsetof(sample_config, count), 0, 0},
    {"seed", NULL, TF_OPT_STRING, "1", "64-bit seed, decimal or 0x-prefixed hex",
     offsetof(sample_config, seed), 0, 0},
    {"lang", NULL, TF_OPT_STRING, "mixed", "en, ar, or mixed (about 60 % English, 40 % Arabic)",
     offsetof(sample_config, lang), 0, 0},
    {"format", NULL, TF_OPT_STRING, "jsonl",
     "jsonl: one object per line (title, company, location, description, skills, field, lang);"
     " csv: a header line, RFC 4180 quoting, skills as a PostgreSQL array literal",
     offsetof(sample_config, format), 0, 0},
    {"output", NULL, TF_OPT_STRING, NULL, "write to this file instead of standard output",
     offsetof(sample_config, output), 0, 0},
};
#define N_OPTIONS (sizeof(sample_options) / sizeof(sample_options[0]))

struct sample_opts {
    unsigned long long count;
    uint64_t seed;
    tf_sample_lang lang;
    bool csv;
    const char *output;
};

static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("topicflow sample: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see topicflow sample --help)\n", stderr);
    return CLI_USAGE;
}

/* Strict unsigned parse: the whole string, no sign, no overflow. */
static bool parse_u64(const char *s, int base, unsigned long long *out)
{
    char *end;

    if (!*s || *s == '-' || *s == '+' || *s == ' ')
        return false;
    errno = 0;
    *out = strtoull(s, &end, base);
    return errno == 0 && *end == '\0';
}

/* Returns CLI_CONTINUE to go on, else the exit status (after --help, --version or a bad
 * argument). */
static int parse_args(int argc, char **argv, struct sample_opts *o)
{
    sample_config c;
    unsigned long long v;
    int first, rc;

    rc = cli_parse("sample", "topicflow sample --count N [options]",
                   "Writes N synthetic internship postings in English and Arabic, for demos, tests and\n"
                   "benchmarks. The same seed (and the same templates under $TOPICFLOW_DATA_DIR/sample,\n"
                   "default the source tree's data/) always gives the same output.\n"
                   "Exit status: 0 success, 1 template or I/O error, 2 bad arguments.",
                   sample_options, N_OPTIONS, &c, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    *o = (struct sample_opts){ .lang = TF_SAMPLE_MIXED };
    if (first < argc)
        return bad_usage("unexpected argument '%s'", argv[first]);
    if (!c.count)
        return bad_usage("--count is required");
    if (!parse_u64(c.count, 10, &v) || v > MAX_COUNT)
        return bad_usage("--count must be an integer from 0 to %llu, not '%s'", MAX_COUNT, c.count);
    o->count = v;
    if (!parse_u64(c.seed, 0, &v))
        return bad_usage("--seed must be an unsigned 64-bit integer, not '%s'", c.seed);
    o->seed = v;
    if (strcmp(c.lang, "en") == 0)
        o->lang = TF_SAMPLE_EN;
    else if (strcmp(c.lang, "ar") == 0)
        o->lang = TF_SAMPLE_AR;
    else if (strcmp(c.lang, "mixed") != 0)
        return bad_usage("--lang must be en, ar or mixed, not '%s'", c.lang);
    if (strcmp(c.format, "jsonl") != 0 && strcmp(c.format, "csv") != 0)
        return bad_usage("--format must be jsonl or csv, not '%s'", c.format);
    o->csv = c.format[0] == 'c';
    if (c.output && !*c.output)
        return bad_usage("--output needs a file name");
    o->output = c.output;
    return CLI_CONTINUE;
}

int cli_sample(int argc, char **argv)
{
    struct sample_opts o;
    tf_sample *gen = NULL;
    tf_posting p;
    tf_err err = { { 0 } };
    FILE *out = stdout;
    const char *out_name = "standard output";
    uint64_t rng;
    unsigned long long i;
    int rc;

    rc = parse_args(argc, argv, &o);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = CLI_FAIL;
    gen = tf_sample_new(tf_data_dir(), &err);
    if (!gen) {
        fprintf(stderr, "topicflow sample: %s\n", err.msg);
        goto done;
    }
    if (o.output) {
        out = fopen(o.output, "w");
        out_name = o.output;
        if (!out) {
            fprintf(stderr, "topicflow sample: %s: %s\n", o.output, strerror(errno));
            goto done;
        }
    }
    rng = o.seed;
    if (o.csv && tf_sample_write_csv_header(out))
        goto io_error;
    for (i = 0; i < o.count; i++) {
        if (tf_sample_next(gen, &rng, o.lang, &p)) {
            fprintf(stderr, "topicflow sample: out of memory\n");
            goto done;
        }
        if (o.csv ? tf_sample_write_csv(out, &p) : tf_sample_write_json(out, &p))
            goto io_error;
    }
    if (fflush(out) != 0)
        goto io_error;
    rc = CLI_OK;
    goto done;
io_error:
    fprintf(stderr, "topicflow sample: writing %s: %s\n", out_name, strerror(errno));
done:
    if (out != stdout && out && fclose(out) != 0 && rc == CLI_OK) {
        fprintf(stderr, "topicflow sample: closing %s: %s\n", out_name, strerror(errno));
        rc = CLI_FAIL;
    }
    tf_sample_free(gen);
    return rc;
}
