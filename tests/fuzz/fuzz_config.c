/*
 * fuzz_config.c - the option parser (base/config.h) on arbitrary command lines and
 * environments. The input is split at NUL bytes; the first piece is the value of one of the
 * table's environment variables (chosen by its first byte), the rest are argv[1..]. A table
 * with every option type, ranges and defaults is parsed, and every piece also goes through
 * each strict value parser on its own.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"

typedef struct fuzz_config {
    const char *pg_url, *amqp_url, *log_level, *log_format, *name;
    tf_amqp_tls amqp_tls;
    long count, max_message;
    double ratio, timeout;
    int json;
} fuzz_config;

static const tf_option options[] = {
    TF_OPTIONS_CONNECTION(fuzz_config),
    {"name", "TF_FUZZ_NAME", TF_OPT_STRING, "x", "a string", offsetof(fuzz_config, name), 0, 0},
    {"count", "TF_FUZZ_COUNT", TF_OPT_INT, "5", "an integer", offsetof(fuzz_config, count), 1, 1000},
    {"ratio", "TF_FUZZ_RATIO", TF_OPT_DOUBLE, "0.5", "a number", offsetof(fuzz_config, ratio), 0, 1},
    {"timeout", "TF_FUZZ_TIMEOUT", TF_OPT_DURATION, "5s", "a duration",
     offsetof(fuzz_config, timeout), 0.001, 86400},
    {"json", "TF_FUZZ_JSON", TF_OPT_BOOL, "off", "a flag", offsetof(fuzz_config, json), 0, 0},
    {"max-message", "TF_FUZZ_SIZE", TF_OPT_SIZE, "1MiB", "a size",
     offsetof(fuzz_config, max_message), 64, 1L << 30},
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
#define MAX_ARGS 64

static void parse_alone(const char *s)
{
    long l;
    double d;
    int b;

    tf_parse_long(s, &l);
    tf_parse_double(s, &d);
    tf_parse_duration(s, &d);
    tf_parse_size(s, &l);
    tf_parse_bool(s, &b);
    tf_config_is_bool_word(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), *argv[MAX_ARGS + 1];
    const char *env = NULL;
    fuzz_config cfg;
    tf_err err;
    int argc = 1, first = -1, rc;

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    argv[0] = "fuzz-config";
    for (char *p = text; p <= text + size && argc < MAX_ARGS; p += strlen(p) + 1) {
        parse_alone(p);
        if (p == text && *p) {
            env = options[(unsigned char)*p % N_OPTIONS].env;
            setenv(env, p + 1, 1);
        } else if (p != text) {
            argv[argc++] = p;
        }
    }
    argv[argc] = NULL;
    rc = tf_config_parse(options, N_OPTIONS, &cfg, argc, argv, &first, &err);
    if (rc == TF_CONFIG_OK && (first < 1 || first > argc || cfg.count < 1 || cfg.count > 1000 ||
                               cfg.ratio < 0 || cfg.ratio > 1 || cfg.max_message < 64 ||
                               (cfg.json != 0 && cfg.json != 1)))
        abort();
    if (rc == TF_CONFIG_ERROR && err.msg[0] == '\0')
        abort();
    if (env)
        unsetenv(env);
    free(text);
    return 0;
}
