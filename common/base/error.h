/*
 * error.h - the error message a failing call leaves for its caller.
 *
 * Functions that can fail return an int status (0 ok, negative error) or NULL, and write
 * a one-line, human-readable reason into a caller-owned tf_err. The caller logs it or
 * prefixes it with its own context; nothing is printed by the callee.
 */
#ifndef TF_ERROR_H
#define TF_ERROR_H

#include <stddef.h>

typedef struct tf_err {
    char msg[512];
    char code[8]; /* machine-readable cause when known (a PostgreSQL SQLSTATE), else "" */
} tf_err;

/* Set err's message (printf format) and clear its code. Safe with err == NULL. Returns
 * -1 so that a failing function can `return tf_err_set(err, ...)`. */
int tf_err_set(tf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the existing message: "context: old message" (the code is kept). Returns -1. */
int tf_err_prefix(tf_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
