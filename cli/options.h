/*
 * options.h - what every subcommand shares: options accepted anywhere on the command line
 * (before or after the positional arguments), --help generated from the option table, and
 * the one error format "topicflow CMD: reason" on stderr.
 */
#ifndef TF_CLI_OPTIONS_H
#define TF_CLI_OPTIONS_H

#include <stddef.h>

#include "base/config.h"

enum { CLI_CONTINUE = -1 };

/* The number of entries of an option table (any array). */
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Parse argv (argv[0] = the command's name) against opts into cfg. Positional arguments are
 * moved behind the options in argv (keeping their order) and *first_arg is the index of the
 * first. Returns CLI_CONTINUE to go on, or the exit status when done: CLI_OK after printing
 * --help or --version, CLI_USAGE after printing a bad option's reason.
 */
int cli_parse(const char *cmd, const char *synopsis, const char *description,
              const tf_option *opts, size_t n_opts, void *cfg, int argc, char **argv,
              int *first_arg);

/* Print "topicflow CMD: <message>" on stderr and return status. */
int cli_error(const char *cmd, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1 when s is a whole decimal integer in [min, max]. */
int cli_parse_count(const char *s, long min, long max, long *out);

#endif
