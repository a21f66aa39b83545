/*
 * sample.c - `topicflow sample`: writes synthetic internship postings (JSONL or CSV) for the
 * demo, the tests and the benchmarks. The same seed and templates give the same bytes.
 * Exit status: 0 done, 1 template or I/O error, 2 bad arguments (one line on stderr).
 */
#include "commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample.h"

#define MAX_COUNT 1000000000ULL

static const char usage[] =
    "Usage: topicflow sample --count N [--seed S] [--lang en|ar|mixed] [--format jsonl|csv]\n"
    "                        [--output FILE]\n"
    "\n"
    "Write N synthetic internship postings in English and Arabic, for demos, tests and\n"
    "benchmarks. The same seed (and the same templates) always gives the same output.\n"
    "\n"
    "Options:\n"
    "  --count N        number of postings, 0 to 1000000000 (required)\n"
    "  --seed S         64-bit seed, decimal or 0x-prefixed hex (default 1)\n"
    "  --lang L         en, ar, or mixed: about 60 % English, 40 % Arabic (default mixed)\n"
    "  --format F       jsonl (default): one JSON object per line with the keys title,\n"
    "                   company, location, description, skills (array of strings), field\n"
    "                   (the ground-truth field, e.g. \"software\") and lang (\"en\"/\"ar\");\n"
    "                   csv: a header line title,company,location,description,skills,field,\n"
    "                   lang, RFC 4180 quoting (descriptions span lines), skills as a\n"
    "                   PostgreSQL array literal {\"a\",\"b\"} for COPY ... (FORMAT csv)\n"
    "  --output FILE    write to FILE instead of standard output\n"
    "  -h, --help       show this help and exit\n"
    "\n"
    "Environment:\n"
    "  TOPICFLOW_DATA_DIR  directory whose sample/ holds the templates\n"
    "                      (default: the source tree's data/)\n"
    "\n"
    "Exit status: 0 success, 1 template or I/O error, 2 bad arguments.\n";

struct sample_opts {
    unsigned long long count;
    uint64_t seed;
    tf_sample_lang lang;
    bool csv;
    const char *output;
};

static const char *data_dir(void)
{
    const char *dir = getenv("TOPICFLOW_DATA_DIR");

    return dir && *dir ? dir : TOPICFLOW_SOURCE_DATA_DIR;
}

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

/* Returns 0 to go on, -1 when --help was printed, CLI_USAGE on a bad argument. */
static int parse_args(int argc, char **argv, struct sample_opts *o)
{
    bool have_count = false;
    const char *name, *value;
    size_t name_len;
    unsigned long long v;
    int i;

    static const char *const known[] = { "--count", "--seed", "--lang", "--format", "--output" };
    enum { O_COUNT, O_SEED, O_LANG, O_FORMAT, O_OUTPUT, O_N };
    int opt;

    *o = (struct sample_opts){ .seed = 1, .lang = TF_SAMPLE_MIXED };
    for (i = 1; i < argc; i++) {
        name = argv[i];
        if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
            fputs(usage, stdout);
            return -1;
        }
        value = strchr(name, '=');
        name_len = value ? (size_t)(value - name) : strlen(name);
        for (opt = 0; opt < O_N; opt++)
            if (strlen(known[opt]) == name_len && strncmp(name, known[opt], name_len) == 0)
                break;
        if (opt == O_N)
            return bad_usage("%s '%.*s'", name[0] == '-' ? "unknown option" : "unexpected argument",
                             (int)name_len, name);
        if (value)
            value++;
        else if (i + 1 < argc)
            value = argv[++i];
        else
            return bad_usage("option '%s' needs a value", name);
        switch (opt) {
        case O_COUNT:
            if (!parse_u64(value, 10, &v) || v > MAX_COUNT)
                return bad_usage("--count must be an integer from 0 to %llu, not '%s'",
                                 MAX_COUNT, value);
            o->count = v;
            have_count = true;
            break;
        case O_SEED:
            if (!parse_u64(value, 0, &v))
                return bad_usage("--seed must be an unsigned 64-bit integer, not '%s'", value);
            o->seed = v;
            break;
        case O_LANG:
            if (strcmp(value, "en") == 0)
                o->lang = TF_SAMPLE_EN;
            else if (strcmp(value, "ar") == 0)
                o->lang = TF_SAMPLE_AR;
            else if (strcmp(value, "mixed") == 0)
                o->lang = TF_SAMPLE_MIXED;
            else
                return bad_usage("--lang must be en, ar or mixed, not '%s'", value);
            break;
        case O_FORMAT:
            if (strcmp(value, "jsonl") == 0 || strcmp(value, "csv") == 0)
                o->csv = value[0] == 'c';
            else
                return bad_usage("--format must be jsonl or csv, not '%s'", value);
            break;
        default:
            if (!*value)
                return bad_usage("--output needs a file name");
            o->output = value;
            break;
        }
    }
    if (!have_count)
        return bad_usage("--count is required");
    return 0;
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
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    rc = CLI_FAIL;
    gen = tf_sample_new(data_dir(), &err);
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
