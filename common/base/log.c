/*
 * log.c - logfmt lines on stderr. Each line is formatted into one buffer and written with
 * a single write(2), so lines from concurrent processes sharing a terminal never interleave.
 */
#include "base/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "topicflow";
static tf_log_level log_level = TF_LOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void tf_log_init(const char *program, tf_log_level level)
{
    log_program = program;
    log_level = level;
}

int tf_log_parse_level(const char *name, tf_log_level *out)
{
    for (int i = 0; i <= TF_LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (tf_log_level)i;
            return 0;
        }
    }
    return -1;
}

int tf_log_enabled(tf_log_level level)
{
    return level <= log_level;
}

const char *tf_log_quote(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    int needs = (*s == '\0') || strpbrk(s, " \"=\\\t\n\r") != NULL;

    if (size == 0)
        return buf;
    if (!needs) {
        snprintf(buf, size, "%s", s);
        return buf;
    }
    if (o + 1 < size)
        buf[o++] = '"';
    for (; *s && o + 3 < size; s++) {
        char c = *s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = c;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            buf[o++] = ' ';
        } else {
            buf[o++] = c;
        }
    }
    if (o + 1 < size)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The output of tf_log_redact_url: appends while there is room, always NUL-terminated. */
typedef struct redact_out {
    char *buf;
    size_t size, len;
} redact_out;

static void redact_put(redact_out *o, const char *s, size_t n)
{
    while (n-- > 0 && o->len + 1 < o->size)
        o->buf[o->len++] = *s++;
    o->buf[o->len] = '\0';
}

static int key_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* A URL list's next element starts at a comma followed by "scheme://"; a comma anywhere else
 * (a libpq multi-host URI "h1:5432,h2:5432", a password) belongs to the current URL. */
static int url_starts(const char *s)
{
    const char *p = s;

    if (!isalpha((unsigned char)*p))
        return 0;
    while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
        p++;
    return strncmp(p, "://", 3) == 0;
}

/* Where the URL whose authority starts at s ends: white space, the end, or the next URL of
 * a comma-separated list. */
static const char *url_end(const char *s)
{
    for (; *s && !isspace((unsigned char)*s); s++)
        if (*s == ',' && url_starts(s + 1))
            break;
    return s;
}

/* When s (at a word boundary) is a key ending in "password" (password, sslpassword, any case)
 * followed by '=', with spaces around it as libpq allows: the offset of its value, else 0. */
static size_t secret_key(const char *s)
{
    size_t k = 0, i;

    while (key_char(s[k]))
        k++;
    if (k < 8 || strncasecmp(s + k - 8, "password", 8) != 0)
        return 0;
    for (i = k; s[i] == ' ' || s[i] == '\t'; i++)
        ;
    if (s[i] != '=')
        return 0;
    for (i++; s[i] == ' ' || s[i] == '\t'; i++)
        ;
    return i;
}

/* The end of the value at s: a quoted value ('...' with \ escapes, as libpq reads it) ends
 * after its closing quote; a bare one at white space, or in a URL's query at '&' or '#'. */
static const char *secret_value_end(const char *s, const char *in_url)
{
    if (*s == '\'' || *s == '"') {
        char quote = *s++;
        for (; *s && *s != quote; s++)
            if (*s == '\\' && s[1])
                s++;
        return *s ? s + 1 : s;
    }
    for (; *s && !isspace((unsigned char)*s); s++)
        if (in_url && (s >= in_url || *s == '&' || *s == '#'))
            break;
    return s;
}

const char *tf_log_redact_url(const char *url, char *buf, size_t size)
{
    redact_out o = {buf, size, 0};
    const char *p = url, *in_url = NULL; /* the end of the URL p is in, if any */

    if (size == 0)
        return buf;
    buf[0] = '\0';
    while (*p) {
        size_t value;

        if (in_url && p >= in_url)
            in_url = NULL;
        if (!in_url && strncmp(p, "://", 3) == 0) {
            /* user:password@ — the last '@' of the URL, so that an unescaped '@' in the
             * password is hidden too; the password runs from the first ':' before it */
            const char *auth = p + 3, *at = NULL, *colon;
            in_url = url_end(auth);
            for (const char *q = auth; q < in_url; q++)
                if (*q == '@')
                    at = q;
            colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
            if (colon) {
                redact_put(&o, p, (size_t)(colon + 1 - p));
                redact_put(&o, "***", 3);
                p = at;
                continue;
            }
        }
        value = (p == url || !key_char(p[-1])) ? secret_key(p) : 0;
        if (value) {
            redact_put(&o, p, value);
            redact_put(&o, "***", 3);
            p = secret_value_end(p + value, in_url);
            continue;
        }
        redact_put(&o, p++, 1);
    }
    return buf;
}

void tf_log_write(tf_log_level level, const char *msg, const char *fmt, ...)
{
    char line[4096], qmsg[1024];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level > log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s prog=%s msg=%s",
                          ts.tv_nsec / 1000000, level_names[level], log_program,
                          tf_log_quote(msg, qmsg, sizeof(qmsg)));
    if (fmt && *fmt && n < sizeof(line) - 2) {
        line[n++] = ' ';
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
        n = strlen(line);
    }
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0)
        return; /* nowhere left to report a failing stderr */
}
