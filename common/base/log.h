/*
 * log.h - one logfmt line per event on stderr:
 *   ts=2026-11-25T08:40:00.123Z level=info prog=producer msg="batch published" n=500 ms=3.2
 * The level and program name are the only process-wide state (set once in main). Callers
 * pass the message and a printf format for the key=value pairs; a value that may hold
 * spaces, quotes or '=' (any error message) goes through tf_log_q() / tf_log_quote().
 * Passwords never reach a log line: URLs are logged through tf_log_redact_url().
 */
#ifndef TF_LOG_H
#define TF_LOG_H

#include <stddef.h>

typedef enum { TF_LOG_ERROR = 0, TF_LOG_WARN = 1, TF_LOG_INFO = 2, TF_LOG_DEBUG = 3 } tf_log_level;

void tf_log_init(const char *program, tf_log_level level);
int tf_log_parse_level(const char *name, tf_log_level *out);
int tf_log_enabled(tf_log_level level);

void tf_log_write(tf_log_level level, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies s into buf as a logfmt value: quoted and escaped when it holds spaces, quotes or
 * '='; truncated to fit. Returns buf. */
const char *tf_log_quote(const char *s, char *buf, size_t size);

/* tf_log_quote into a buffer that lives until the end of the enclosing statement's block,
 * for a value argument: log_warn("x", "reason=%s", tf_log_q(err.msg)). */
#define TF_LOG_Q_MAX 600
#define tf_log_q(s) tf_log_quote((s), (char[TF_LOG_Q_MAX]){0}, TF_LOG_Q_MAX)

/* Copies url into buf with every secret replaced by "***", in each form libpq and
 * rabbitmq-c read: the password of scheme://user:password@host (every URL of a
 * comma-separated list, an unescaped '@' or ',' in the password included), and the value
 * of any key ending in "password" (password, sslpassword; any case) in a key=value
 * connection string or a URL's query: "password=x", "password = x", "password='two words'",
 * "password='it\'s'", "?password=x&...". Truncated to fit, never in the middle of a
 * secret. Returns buf. */
const char *tf_log_redact_url(const char *url, char *buf, size_t size);

#define log_error(msg, ...) tf_log_write(TF_LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) tf_log_write(TF_LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) tf_log_write(TF_LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...) do { if (tf_log_enabled(TF_LOG_DEBUG)) tf_log_write(TF_LOG_DEBUG, msg, __VA_ARGS__); } while (0)

#endif
