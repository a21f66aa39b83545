/*
 * config.h - one table of settings per program drives the parser, --help and the docs.
 *
 * Each setting has a flag (--name), an optional environment variable, a type, a default
 * and a help line. Precedence: flag > environment > default. Values are parsed strictly:
 * "--batch 12x" is an error naming the flag, never a silent 12.
 *
 * Secrets for containers: every variable X may be given as X_FILE instead, the path of a
 * file holding the value (a trailing line break dropped); both set, or an unreadable or
 * empty file, is an error naming the variable. A TF_OPT_URL setting whose variable is
 * <P>_URL also takes its password alone from the file named by <P>_PASSWORD_FILE
 * (TOPICFLOW_PG_PASSWORD_FILE, TOPICFLOW_AMQP_PASSWORD_FILE), filled into every URL of the
 * value. Strings read from files, and URLs with a password filled in, are kept for the life
 * of the process, like the argv and environment strings other settings point into.
 */
#ifndef TF_CONFIG_H
#define TF_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "base/error.h"
#include "base/log.h"

typedef enum {
    TF_OPT_STRING,   /* char *            (points into argv/environ/default: not owned) */
    TF_OPT_INT,      /* long              */
    TF_OPT_DOUBLE,   /* double            */
    TF_OPT_BOOL,     /* int, 0/1: on/off, true/false, yes/no, 1/0; a bare flag means on */
    TF_OPT_DURATION, /* double seconds: "250ms", "1s", "5m", "2h", "7d", or a plain number of seconds */
    TF_OPT_SIZE,     /* long bytes: "512", "64k", "1M", "1MiB", "2G" */
    TF_OPT_URL       /* char *, as TF_OPT_STRING: a URL, a comma-separated list of URLs or a
                      * libpq key=value string, whose password may come from <P>_PASSWORD_FILE */
} tf_opt_type;

typedef struct tf_option {
    const char *name;   /* flag without the leading dashes */
    const char *env;    /* environment variable, or NULL */
    tf_opt_type type;
    const char *defval; /* default as text, or NULL for "unset" (strings only) */
    const char *help;
    size_t offset;      /* where the parsed value goes in the program's config struct */
    double min, max;    /* accepted range for numbers; min == max means unchecked */
} tf_option;

/* The TLS settings of an amqps:// connection (the broker's and the management API's).
 * Unset strings mean: the system trust store, no client certificate. */
typedef struct tf_amqp_tls {
    const char *cacert; /* PEM file of the CAs to trust instead of the system store */
    const char *cert;   /* PEM client certificate (chain) to present */
    const char *key;    /* its private key (PEM); unset: the key is in the cert file */
    int verify;         /* 1: check the chain and the host name (default); 0: neither */
} tf_amqp_tls;

/* The connection and logging settings (docs/ARCHITECTURE.md, "Configuration contract"),
 * in three groups so that a program lists only what it uses: TF_OPTIONS_PG needs a member
 * pg_url (char *), TF_OPTIONS_AMQP amqp_url (char *) and amqp_tls (tf_amqp_tls),
 * TF_OPTIONS_LOG log_level and log_format (char *). PostgreSQL's TLS settings are libpq's own
 * parameters of the --pg string (sslmode=verify-full, sslrootcert, sslcert, sslkey). */
#define TF_OPTIONS_PG(type)                                                                      \
    {"pg", "TOPICFLOW_PG_URL", TF_OPT_URL, NULL,                                                 \
     "PostgreSQL connection string or URI (TLS: sslmode=verify-full&sslrootcert=FILE)",          \
     offsetof(type, pg_url), 0, 0}

#define TF_OPTIONS_AMQP(type)                                                                    \
    {"amqp", "TOPICFLOW_AMQP_URL", TF_OPT_URL, NULL,                                             \
     "amqp[s]://user:pass@host:port/vhost; a comma-separated list fails over in order",          \
     offsetof(type, amqp_url), 0, 0},                                                            \
    {"amqp-cacert", "TOPICFLOW_AMQP_CACERT", TF_OPT_STRING, NULL,                                \
     "amqps://: PEM file of the CAs to trust (default: the system trust store)",                 \
     offsetof(type, amqp_tls.cacert), 0, 0},                                                     \
    {"amqp-cert", "TOPICFLOW_AMQP_CERT", TF_OPT_STRING, NULL,                                    \
     "amqps://: PEM client certificate to present (default: none)",                              \
     offsetof(type, amqp_tls.cert), 0, 0},                                                       \
    {"amqp-key", "TOPICFLOW_AMQP_KEY", TF_OPT_STRING, NULL,                                      \
     "amqps://: private key of --amqp-cert (default: in the --amqp-cert file)",                  \
     offsetof(type, amqp_tls.key), 0, 0},                                                        \
    {"amqp-verify", "TOPICFLOW_AMQP_VERIFY", TF_OPT_BOOL, "on",                                  \
     "amqps://: verify the broker's certificate chain and host name (off: for tests only)",     \
     offsetof(type, amqp_tls.verify), 0, 0}

#define TF_OPTIONS_LOG(type)                                                                     \
    {"log-level", "TOPICFLOW_LOG", TF_OPT_STRING, "info", "error, warn, info or debug",          \
     offsetof(type, log_level), 0, 0},                                                           \
    {"log-format", "TOPICFLOW_LOG_FORMAT", TF_OPT_STRING, "logfmt",                              \
     "logfmt, or json: one JSON object per line with the same keys",                             \
     offsetof(type, log_format), 0, 0}

/* The capture mode (DESIGN.md): outbox = triggers + topicflow.outbox; wal = a publication and
 * a logical replication slot read with pgoutput. For topicflow track and topicflow-producer. */
#define TF_OPTIONS_CAPTURE(type)                                                                 \
    {"capture", "TOPICFLOW_CAPTURE", TF_OPT_STRING, "outbox",                                    \
     "capture mode: outbox (triggers write topicflow.outbox) or wal (a publication and a "        \
     "logical replication slot read with pgoutput)",                                             \
     offsetof(type, capture), 0, 0}

/* *wal = 1 for "wal", 0 for "outbox"; -1 with a one-line reason for anything else. */
int tf_capture_parse(const char *s, int *wal, tf_err *err);

/* All three: what a program that talks to both servers takes. */
#define TF_OPTIONS_CONNECTION(type) TF_OPTIONS_PG(type), TF_OPTIONS_AMQP(type), TF_OPTIONS_LOG(type)

enum { TF_CONFIG_OK = 0, TF_CONFIG_HELP = 1, TF_CONFIG_VERSION = 2, TF_CONFIG_ERROR = -1 };

/*
 * Fill cfg from defaults, then the environment, then argv[1..]. Parsing stops at the
 * first argument that is not an option (or after "--"); its index goes to *first_arg
 * (argc when none), so subcommands can take positional arguments. Returns TF_CONFIG_OK,
 * TF_CONFIG_HELP for -h/--help, TF_CONFIG_VERSION for --version, or TF_CONFIG_ERROR with
 * a one-line reason in err.
 */
int tf_config_parse(const tf_option *opts, size_t n_opts, void *cfg, int argc, char **argv,
                    int *first_arg, tf_err *err);

/*
 * The start-up both daemons share: parse argv (no positional arguments allowed), print
 * --help ("<program> [options]", description, the table) or --version, check --log-level
 * and that --pg and --amqp are set (when the table has them), and apply --log-format
 * (tf_config_log_format). Returns 0 to run, with *level set; 1 after printing help or the version (exit 0); 2 after printing "<program>: reason"
 * on stderr (exit 2).
 */
int tf_config_daemon(const char *program, const char *description, const tf_option *opts,
                     size_t n_opts, void *cfg, int argc, char **argv, tf_log_level *level);

/* Check the table's --log-format setting (when it has one) and make it the log's format
 * (tf_log_set_format). 0 ok; -1 with a one-line reason for an unknown format. */
int tf_config_log_format(const tf_option *opts, size_t n_opts, const void *cfg, tf_err *err);

/* The --log-level of cfg (when the table has that option) into *level, checked as every
 * program checks it: 0, or -1 with "invalid log level 'x' (error, warn, info or debug)". */
int tf_config_log_level(const tf_option *opts, size_t n_opts, const void *cfg,
                        tf_log_level *level, tf_err *err);

/* Print "usage: <synopsis>", the description, and one line per option with its
 * environment variable (and password file) and default, then how X_FILE works. */
void tf_config_usage(FILE *out, const char *synopsis, const char *description,
                     const tf_option *opts, size_t n_opts);

/* Strict parsers, also used by programs for positional arguments. 0 ok, -1 error. */
int tf_parse_long(const char *s, long *out);
int tf_parse_double(const char *s, double *out);
int tf_parse_duration(const char *s, double *seconds);
int tf_parse_size(const char *s, long *bytes);
int tf_parse_bool(const char *s, int *out);
/* bytes as tf_parse_size reads it back, in the largest unit that divides it exactly: "64",
 * "64k", "1M", "1G". Returns buf. */
const char *tf_format_size(long bytes, char *buf, size_t size);
/* 1 for the words a boolean flag takes as its next argument ("--json off"): on, off, true,
 * false, yes, no (any case). 1 and 0 are not taken that way: they may be positionals. */
int tf_config_is_bool_word(const char *s);

#endif
