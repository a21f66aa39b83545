/*
 * config.c - table-driven parsing of flags and environment variables, and the --help text
 * generated from the same table.
 */
#include "base/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tf_parse_long(const char *s, long *out)
{
    char *end;
    long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

int tf_parse_double(const char *s, double *out)
{
    char *end;
    double v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int tf_parse_duration(const char *s, double *seconds)
{
    static const struct { const char *suffix; double scale; } units[] = {
        {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}, {"", 1},
    };
    char *end;
    double v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || !isfinite(v) || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            *seconds = v * units[i].scale;
            return 0;
        }
    }
    return -1;
}

int tf_parse_size(const char *s, long *bytes)
{
    static const struct { const char *suffix; long scale; } units[] = {
        {"", 1}, {"k", 1024}, {"K", 1024}, {"KiB", 1024}, {"M", 1L << 20}, {"MiB", 1L << 20},
        {"G", 1L << 30}, {"GiB", 1L << 30},
    };
    char *end;
    long v;

    if (!s || !*s)
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > LONG_MAX / units[i].scale)
                return -1;
            *bytes = v * units[i].scale;
            return 0;
        }
    }
    return -1;
}

const char *tf_format_size(long bytes, char *buf, size_t size)
{
    static const struct { const char *suffix; long scale; } units[] = {
        {"G", 1L << 30}, {"M", 1L << 20}, {"k", 1024},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (bytes != 0 && bytes % units[i].scale == 0) {
            snprintf(buf, size, "%ld%s", bytes / units[i].scale, units[i].suffix);
            return buf;
        }
    }
    snprintf(buf, size, "%ld", bytes);
    return buf;
}

/* "64 to 1G" for a byte range, "0 to 1000" for other numbers. */
static const char *range_text(const tf_option *o, char *buf, size_t size)
{
    char lo[32], hi[32];

    if (o->type == TF_OPT_SIZE)
        snprintf(buf, size, "%s to %s", tf_format_size((long)o->min, lo, sizeof(lo)),
                 tf_format_size((long)o->max, hi, sizeof(hi)));
    else
        snprintf(buf, size, "%g to %g", o->min, o->max);
    return buf;
}

int tf_config_is_bool_word(const char *s)
{
    static const char *const words[] = {"on", "off", "true", "false", "yes", "no"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

int tf_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "on", "true", "yes"};
    static const char *const no[] = {"0", "off", "false", "no"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

static int out_of_range(const tf_option *o, double v)
{
    return o->min != o->max && (v < o->min || v > o->max);
}

static int option_set(const tf_option *o, void *cfg, const char *value, const char *origin,
                      tf_err *err)
{
    char *field = (char *)cfg + o->offset, range[64];
    long l;
    double d;
    int b;

    switch (o->type) {
    case TF_OPT_STRING:
        *(const char **)field = value;
        return 0;
    case TF_OPT_INT:
        if (tf_parse_long(value, &l) < 0 || out_of_range(o, (double)l))
            goto bad;
        *(long *)field = l;
        return 0;
    case TF_OPT_SIZE:
        if (tf_parse_size(value, &l) < 0 || out_of_range(o, (double)l))
            goto bad;
        *(long *)field = l;
        return 0;
    case TF_OPT_DOUBLE:
        if (tf_parse_double(value, &d) < 0 || out_of_range(o, d))
            goto bad;
        *(double *)field = d;
        return 0;
    case TF_OPT_DURATION:
        if (tf_parse_duration(value, &d) < 0 || out_of_range(o, d))
            goto bad;
        *(double *)field = d;
        return 0;
    case TF_OPT_BOOL:
        if (tf_parse_bool(value, &b) < 0)
            goto bad;
        *(int *)field = b;
        return 0;
    }
bad:
    if (o->min != o->max)
        return tf_err_set(err, "invalid value '%s' for %s (expected %s)", value, origin,
                          range_text(o, range, sizeof(range)));
    return tf_err_set(err, "invalid value '%s' for %s", value, origin);
}

static const tf_option *option_find(const tf_option *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

static int apply_defaults_and_env(const tf_option *opts, size_t n, void *cfg, tf_err *err)
{
    char origin[128];

    for (size_t i = 0; i < n; i++) {
        const char *env = opts[i].env ? getenv(opts[i].env) : NULL;
        if (opts[i].defval) {
            snprintf(origin, sizeof(origin), "the default of --%s", opts[i].name);
            if (option_set(&opts[i], cfg, opts[i].defval, origin, err) < 0)
                return -1;
        } else if (opts[i].type == TF_OPT_STRING) {
            *(const char **)((char *)cfg + opts[i].offset) = NULL;
        }
        if (env && *env) {
            snprintf(origin, sizeof(origin), "%s", opts[i].env);
            if (option_set(&opts[i], cfg, env, origin, err) < 0)
                return -1;
        }
    }
    return 0;
}

int tf_config_parse(const tf_option *opts, size_t n_opts, void *cfg, int argc, char **argv,
                    int *first_arg, tf_err *err)
{
    char origin[128];
    int i;

    if (apply_defaults_and_env(opts, n_opts, cfg, err) < 0)
        return TF_CONFIG_ERROR;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value;
        const tf_option *o;
        size_t len;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return TF_CONFIG_HELP;
        if (strcmp(arg, "--version") == 0)
            return TF_CONFIG_VERSION;
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (arg[0] == '-' && arg[1] != '\0') {
                tf_err_set(err, "unknown option '%s' (see --help)", arg);
                return TF_CONFIG_ERROR;
            }
            break;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        len = eq ? (size_t)(eq - name) : strlen(name);
        o = option_find(opts, n_opts, name, len);
        if (!o) {
            tf_err_set(err, "unknown option '--%.*s' (see --help)", (int)len, name);
            return TF_CONFIG_ERROR;
        }
        if (eq) {
            value = eq + 1;
        } else if (o->type == TF_OPT_BOOL) {
            /* "--json off" as --help shows it; a bare flag means on. Only the word forms
             * are taken from the next argument: "--yes 1" keeps 1 as a positional id. */
            value = i + 1 < argc && tf_config_is_bool_word(argv[i + 1]) ? argv[++i] : "on";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            tf_err_set(err, "option --%s needs a value", o->name);
            return TF_CONFIG_ERROR;
        }
        snprintf(origin, sizeof(origin), "--%s", o->name);
        if (option_set(o, cfg, value, origin, err) < 0)
            return TF_CONFIG_ERROR;
    }
    if (first_arg)
        *first_arg = i;
    return TF_CONFIG_OK;
}

static const char *type_hint(tf_opt_type t)
{
    switch (t) {
    case TF_OPT_STRING: return "STR";
    case TF_OPT_INT: return "N";
    case TF_OPT_DOUBLE: return "X";
    case TF_OPT_BOOL: return "on|off";
    case TF_OPT_DURATION: return "DUR";
    case TF_OPT_SIZE: return "BYTES";
    }
    return "";
}

void tf_config_usage(FILE *out, const char *synopsis, const char *description,
                     const tf_option *opts, size_t n_opts)
{
    int durations = 0, sizes = 0;

    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", synopsis, description);
    for (size_t i = 0; i < n_opts; i++) {
        char flag[64], range[64];
        snprintf(flag, sizeof(flag), "--%s %s", opts[i].name, type_hint(opts[i].type));
        fprintf(out, "  %-24s %s", flag, opts[i].help);
        if (opts[i].env)
            fprintf(out, " [env %s]", opts[i].env);
        if (opts[i].defval)
            fprintf(out, " (default %s)", opts[i].defval);
        if (opts[i].type == TF_OPT_SIZE && opts[i].min != opts[i].max)
            fprintf(out, " (%s)", range_text(&opts[i], range, sizeof(range)));
        fputc('\n', out);
        durations |= opts[i].type == TF_OPT_DURATION;
        sizes |= opts[i].type == TF_OPT_SIZE;
    }
    fprintf(out, "  %-24s %s\n  %-24s %s\n", "-h, --help", "show this help and exit",
            "--version", "print the version and exit");
    if (durations)
        fprintf(out, "\nDUR values take ms, s, m, h or d (e.g. 250ms, 7d).\n");
    if (sizes)
        fprintf(out, "%sBYTES values take k, M or G (e.g. 64k, 1M).\n", durations ? "" : "\n");
}

/* The string setting named name in cfg, or NULL when the table has no such option. */
static const char *string_setting(const tf_option *opts, size_t n, const void *cfg, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return *(const char *const *)((const char *)cfg + opts[i].offset);
    return NULL;
}

static int has_option(const tf_option *opts, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(opts[i].name, name) == 0)
            return 1;
    return 0;
}

int tf_config_log_level(const tf_option *opts, size_t n_opts, const void *cfg,
                        tf_log_level *level, tf_err *err)
{
    const char *name = string_setting(opts, n_opts, cfg, "log-level");

    *level = TF_LOG_INFO;
    if (name && tf_log_parse_level(name, level) < 0)
        return tf_err_set(err, "invalid log level '%s' (error, warn, info or debug)", name);
    return 0;
}

int tf_config_daemon(const char *program, const char *description, const tf_option *opts,
                     size_t n_opts, void *cfg, int argc, char **argv, tf_log_level *level)
{
    char synopsis[128];
    tf_err err;
    int first, rc = tf_config_parse(opts, n_opts, cfg, argc, argv, &first, &err);

    if (rc == TF_CONFIG_HELP) {
        snprintf(synopsis, sizeof(synopsis), "%s [options]", program);
        tf_config_usage(stdout, synopsis, description, opts, n_opts);
        return 1;
    }
    if (rc == TF_CONFIG_VERSION) {
        printf("%s %s\n", program, TOPICFLOW_VERSION);
        return 1;
    }
    *level = TF_LOG_INFO;
    if (rc == TF_CONFIG_OK && first < argc)
        rc = tf_err_set(&err, "unexpected argument '%s' (see --help)", argv[first]);
    if (rc == TF_CONFIG_OK)
        rc = tf_config_log_level(opts, n_opts, cfg, level, &err);
    if (rc == TF_CONFIG_OK && has_option(opts, n_opts, "pg") && !string_setting(opts, n_opts, cfg, "pg"))
        rc = tf_err_set(&err, "no PostgreSQL URL: set TOPICFLOW_PG_URL or --pg");
    if (rc == TF_CONFIG_OK && has_option(opts, n_opts, "amqp") && !string_setting(opts, n_opts, cfg, "amqp"))
        rc = tf_err_set(&err, "no RabbitMQ URL: set TOPICFLOW_AMQP_URL or --amqp");
    if (rc != TF_CONFIG_OK) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return 2;
    }
    return 0;
}
