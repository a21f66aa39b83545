/*
 * options.c - argument handling shared by the subcommands of `topicflow`.
 */
#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"

static const tf_option *find(const tf_option *opts, size_t n, const char *arg)
{
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);

    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

/* Stable partition of argv[1..argc) into options (with their values) and positionals, so
 * that tf_config_parse, which stops at the first positional, sees every option. An explicit
 * "--" stays between the two groups and keeps protecting what followed it. */
static int partition(const tf_option *opts, size_t n_opts, int argc, char **argv)
{
    char **pos = malloc(sizeof(char *) * (size_t)(argc + 1));
    int n_pos = 0, out = 1, dashdash = 0;

    if (!pos)
        return -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash) {
            pos[n_pos++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            dashdash = 1;
        } else if (a[0] != '-' || a[1] == '\0') {
            pos[n_pos++] = argv[i];
        } else {
            const tf_option *o = strncmp(a, "--", 2) == 0 ? find(opts, n_opts, a) : NULL;
            argv[out++] = argv[i];
            if (o && !strchr(a, '=') && i + 1 < argc &&
                (o->type != TF_OPT_BOOL || tf_config_is_bool_word(argv[i + 1])))
                argv[out++] = argv[++i];
        }
    }
    if (dashdash)
        argv[out++] = "--";
    for (int i = 0; i < n_pos; i++)
        argv[out++] = pos[i];
    free(pos);
    return 0;
}

int cli_parse(const char *cmd, const char *synopsis, const char *description,
              const tf_option *opts, size_t n_opts, void *cfg, int argc, char **argv,
              int *first_arg)
{
    tf_log_level level;
    tf_err err;
    int rc;

    if (partition(opts, n_opts, argc, argv) < 0)
        return cli_error(cmd, CLI_FAIL, "out of memory");
    rc = tf_config_parse(opts, n_opts, cfg, argc, argv, first_arg, &err);
    switch (rc) {
    case TF_CONFIG_HELP:
        tf_config_usage(stdout, synopsis, description, opts, n_opts);
        return CLI_OK;
    case TF_CONFIG_VERSION:
        printf("topicflow %s\n", TOPICFLOW_VERSION);
        return CLI_OK;
    case TF_CONFIG_OK:
        if (tf_config_log_level(opts, n_opts, cfg, &level, &err) < 0)
            return cli_error(cmd, CLI_USAGE, "%s", err.msg);
        tf_log_init("topicflow", level);
        if (tf_config_log_format(opts, n_opts, cfg, &err) < 0)
            return cli_error(cmd, CLI_USAGE, "%s", err.msg);
        return CLI_CONTINUE;
    default:
        return cli_error(cmd, CLI_USAGE, "%s", err.msg);
    }
}

int cli_error(const char *cmd, int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "topicflow %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return status;
}

int cli_parse_count(const char *s, long min, long max, long *out)
{
    long v;

    if (tf_parse_long(s, &v) < 0 || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}
