/*
 * config.c - table-driven parsing of flags and environment variables (or the files X_FILE
 * names), and the --help text generated from the same table.
 */
#include "base/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"

/* A file named by X_FILE holds one value (a URL, a password), not a document. */
#define SETTING_FILE_MAX (64 * 1024)

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
    char lo[24], hi[24]; /* a long and a unit: at most 21 bytes each */
    int n;

    if (o->type == TF_OPT_SIZE)
        n = snprintf(buf, size, "%s to %s", tf_format_size((long)o->min, lo, sizeof(lo)),
                     tf_format_size((long)o->max, hi, sizeof(hi)));
    else
        n = snprintf(buf, size, "%g to %g", o->min, o->max);
    (void)n; /* a cut range text only shortens a help or error line */
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
    case TF_OPT_URL:
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

/* Strings the parser made: values read from files and URLs with a password filled in.
 * Settings point into them as other settings point into argv and environ, so they live as
 * long as the process; the list keeps them reachable for a leak checker. */
typedef struct kept_string {
    struct kept_string *next;
    char text[];
} kept_string;
static kept_string *kept_strings;

static const char *keep_string(const char *s, size_t len, tf_err *err)
{
    kept_string *k = malloc(sizeof(*k) + len + 1);

    if (!k) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    memcpy(k->text, s, len);
    k->text[len] = '\0';
    k->next = kept_strings;
    kept_strings = k;
    return k->text;
}

/* The value held by the file at path, which variable var names, into b: the whole file
 * without its trailing line breaks. */
static int read_setting_file(const char *var, const char *path, tf_buf *b, tf_err *err)
{
    char chunk[4096];
    size_t n;
    int rc = -1;
    FILE *f = fopen(path, "rb");

    if (!f)
        return tf_err_set(err, "cannot read %s=%s: %s", var, path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b->len <= SETTING_FILE_MAX)
        tf_buf_append(b, chunk, n);
    memset(chunk, 0, sizeof(chunk));
    while (b->len > 0 && (b->p[b->len - 1] == '\n' || b->p[b->len - 1] == '\r'))
        b->p[--b->len] = '\0';
    if (ferror(f))
        tf_err_set(err, "cannot read %s=%s: %s", var, path, strerror(errno));
    else if (!tf_buf_ok(b))
        tf_err_set(err, "out of memory reading %s=%s", var, path);
    else if (b->len > SETTING_FILE_MAX)
        tf_err_set(err, "%s=%s is larger than %d bytes: not a setting", var, path, SETTING_FILE_MAX);
    else if (b->len == 0)
        tf_err_set(err, "%s=%s is empty", var, path);
    else if (memchr(b->p, '\0', b->len))
        tf_err_set(err, "%s=%s holds a NUL byte", var, path);
    else
        rc = 0;
    fclose(f);
    return rc;
}

/* Frees b, leaving no copy of a secret behind in freed memory. */
static void wipe_buf(tf_buf *b)
{
    if (b->p)
        memset(b->p, 0, b->cap);
    tf_buf_free(b);
}

/* The value of environment variable name, or of the file that name_FILE names (kept);
 * *value is NULL when neither is set (an empty variable counts as unset). origin gets the
 * variable the value came from, for error messages. */
static int env_or_file(const char *name, const char **value, char *origin, size_t origin_size,
                       tf_err *err)
{
    char file_var[128];
    const char *direct = getenv(name), *path;
    tf_buf b;

    snprintf(file_var, sizeof(file_var), "%s_FILE", name);
    path = getenv(file_var);
    *value = NULL;
    if (direct && !*direct)
        direct = NULL;
    if (path && !*path)
        path = NULL;
    if (direct && path)
        return tf_err_set(err, "both %s and %s are set: set one of them", name, file_var);
    snprintf(origin, origin_size, "%s", path ? file_var : name);
    if (!path) {
        *value = direct;
        return 0;
    }
    tf_buf_init(&b);
    if (read_setting_file(file_var, path, &b, err) == 0)
        *value = keep_string(b.p, b.len, err);
    wipe_buf(&b);
    return *value ? 0 : -1;
}

static int apply_defaults_and_env(const tf_option *opts, size_t n, void *cfg, tf_err *err)
{
    char origin[160], env_origin[160];

    for (size_t i = 0; i < n; i++) {
        const char *env = NULL;
        if (opts[i].env && env_or_file(opts[i].env, &env, env_origin, sizeof(env_origin), err) < 0)
            return -1;
        if (opts[i].defval) {
            snprintf(origin, sizeof(origin), "the default of --%s", opts[i].name);
            if (option_set(&opts[i], cfg, opts[i].defval, origin, err) < 0)
                return -1;
        } else if (opts[i].type == TF_OPT_STRING || opts[i].type == TF_OPT_URL) {
            *(const char **)((char *)cfg + opts[i].offset) = NULL;
        }
        if (env && option_set(&opts[i], cfg, env, env_origin, err) < 0)
            return -1;
    }
    return 0;
}

/* The variable naming the password file of a TF_OPT_URL option whose variable is <P>_URL:
 * <P>_PASSWORD_FILE into buf; 0 when the option has none. */
static int password_file_var(const tf_option *o, char *buf, size_t size)
{
    size_t len = o->env ? strlen(o->env) : 0;

    if (o->type != TF_OPT_URL || len < 4 || strcmp(o->env + len - 4, "_URL") != 0)
        return 0;
    snprintf(buf, size, "%.*s_PASSWORD_FILE", (int)(len - 4), o->env);
    return 1;
}

/* Appends password to b as a URL's userinfo needs it: everything but the unreserved
 * characters percent-encoded (libpq and rabbitmq-c decode it). */
static void append_url_encoded(tf_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
            tf_buf_append(b, s, 1);
        else
            tf_buf_printf(b, "%%%02X", c);
    }
}

/* url with password filled in, into b: after the user of every URL of the value
 * (scheme://user@host -> scheme://user:password@host), or for a libpq key=value string as
 * password='...'. A value that already holds a password, or a URL without a user, is an
 * error: which of the two passwords counts would be a guess. */
static int fill_password(const char *url, const char *password, const char *var, tf_buf *b,
                         tf_err *err)
{
    size_t size = 4 * strlen(url) + 16;
    char *redacted = malloc(size);
    const char *p, *sep, *at;
    int had_password;

    if (!redacted)
        return tf_err_set(err, "out of memory");
    had_password = strcmp(tf_log_redact_url(url, redacted, size), url) != 0;
    free(redacted);
    if (had_password)
        return tf_err_set(err, "%s is set but the URL holds a password already: keep one of them", var);
    if (!strstr(url, "://")) {
        tf_buf_printf(b, "%s password='", url);
        for (const char *s = password; *s; s++) {
            if (*s == '\'' || *s == '\\')
                tf_buf_append(b, "\\", 1);
            tf_buf_append(b, s, 1);
        }
        tf_buf_append(b, "'", 1);
        return 0;
    }
    for (p = url; (sep = strstr(p, "://")) != NULL; p = at) {
        const char *auth = sep + 3, *end = auth + strcspn(auth, "/?#, \t");
        at = NULL;
        for (const char *q = auth; q < end; q++)
            if (*q == '@')
                at = q;
        if (!at)
            return tf_err_set(err, "%s is set but a URL names no user to go with it "
                              "(scheme://USER@host...)", var);
        tf_buf_append(b, p, (size_t)(at - p));
        tf_buf_append(b, ":", 1);
        append_url_encoded(b, password);
    }
    tf_buf_append(b, p, strlen(p));
    return 0;
}

/* Fills the password files of the TF_OPT_URL settings into their URLs (kept). A password
 * file without a URL is left to the program's check for a missing URL. */
static int apply_password_files(const tf_option *opts, size_t n, void *cfg, tf_err *err)
{
    char var[160];

    for (size_t i = 0; i < n; i++) {
        const char **field = (const char **)((char *)cfg + opts[i].offset);
        const char *path, *filled = NULL;
        tf_buf password, url;

        if (!password_file_var(&opts[i], var, sizeof(var)) || !(path = getenv(var)) || !*path ||
            !*field)
            continue;
        tf_buf_init(&password);
        tf_buf_init(&url);
        if (read_setting_file(var, path, &password, err) == 0 &&
            fill_password(*field, password.p, var, &url, err) == 0) {
            if (tf_buf_ok(&url))
                filled = keep_string(url.p, url.len, err);
            else
                tf_err_set(err, "out of memory");
        }
        wipe_buf(&password);
        wipe_buf(&url);
        if (!filled)
            return -1;
        *field = filled;
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
    if (apply_password_files(opts, n_opts, cfg, err) < 0)
        return TF_CONFIG_ERROR;
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
    case TF_OPT_URL: return "URL";
    }
    return "";
}

void tf_config_usage(FILE *out, const char *synopsis, const char *description,
                     const tf_option *opts, size_t n_opts)
{
    int durations = 0, sizes = 0, any_env = 0;

    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", synopsis, description);
    for (size_t i = 0; i < n_opts; i++) {
        char flag[64], range[64], password_var[160];
        snprintf(flag, sizeof(flag), "--%s %s", opts[i].name, type_hint(opts[i].type));
        fprintf(out, "  %-24s %s", flag, opts[i].help);
        if (password_file_var(&opts[i], password_var, sizeof(password_var)))
            fprintf(out, " [env %s; its password alone: %s]", opts[i].env, password_var);
        else if (opts[i].env)
            fprintf(out, " [env %s]", opts[i].env);
        if (opts[i].defval)
            fprintf(out, " (default %s)", opts[i].defval);
        if (opts[i].type == TF_OPT_SIZE && opts[i].min != opts[i].max)
            fprintf(out, " (%s)", range_text(&opts[i], range, sizeof(range)));
        fputc('\n', out);
        durations |= opts[i].type == TF_OPT_DURATION;
        sizes |= opts[i].type == TF_OPT_SIZE;
        any_env |= opts[i].env != NULL;
    }
    fprintf(out, "  %-24s %s\n  %-24s %s\n", "-h, --help", "show this help and exit",
            "--version", "print the version and exit");
    if (durations)
        fprintf(out, "\nDUR values take ms, s, m, h or d (e.g. 250ms, 7d).\n");
    if (sizes)
        fprintf(out, "%sBYTES values take k, M or G (e.g. 64k, 1M).\n", durations ? "" : "\n");
    if (any_env)
        fprintf(out, "%sEvery variable X above may be given as X_FILE instead: the path of a file holding the\n"
                     "value (a container secret; a trailing line break is dropped).\n",
                durations || sizes ? "" : "\n");
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

int tf_config_log_format(const tf_option *opts, size_t n_opts, const void *cfg, tf_err *err)
{
    const char *name = string_setting(opts, n_opts, cfg, "log-format");
    tf_log_format format;

    if (!name)
        return 0;
    if (tf_log_parse_format(name, &format) < 0)
        return tf_err_set(err, "invalid log format '%s' (logfmt or json)", name);
    tf_log_set_format(format);
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

int tf_capture_parse(const char *s, int *wal, tf_err *err)
{
    if (s && strcmp(s, "outbox") == 0)
        *wal = 0;
    else if (s && strcmp(s, "wal") == 0)
        *wal = 1;
    else
        return tf_err_set(err, "--capture must be outbox or wal, not '%s'", s ? s : "");
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
    if (rc == TF_CONFIG_OK && tf_config_log_format(opts, n_opts, cfg, &err) < 0)
        rc = TF_CONFIG_ERROR;
    if (rc == TF_CONFIG_OK && has_option(opts, n_opts, "pg") && !string_setting(opts, n_opts, cfg, "pg"))
        rc = tf_err_set(&err, "no PostgreSQL URL: set --pg, TOPICFLOW_PG_URL or TOPICFLOW_PG_URL_FILE");
    if (rc == TF_CONFIG_OK && has_option(opts, n_opts, "capture")) {
        int wal;
        if (tf_capture_parse(string_setting(opts, n_opts, cfg, "capture"), &wal, &err) < 0)
            rc = TF_CONFIG_ERROR;
    }
    if (rc == TF_CONFIG_OK && has_option(opts, n_opts, "amqp") && !string_setting(opts, n_opts, cfg, "amqp"))
        rc = tf_err_set(&err, "no RabbitMQ URL: set --amqp, TOPICFLOW_AMQP_URL or TOPICFLOW_AMQP_URL_FILE");
    if (rc != TF_CONFIG_OK) {
        fprintf(stderr, "%s: %s\n", program, err.msg);
        return 2;
    }
    return 0;
}
