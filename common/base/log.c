/*
 * log.c - logfmt lines on stderr. Each line is formatted into one buffer and written with
 * a single write(2), so lines from concurrent processes sharing a terminal never interleave.
 */
#include "base/log.h"

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

const char *tf_log_redact_url(const char *url, char *buf, size_t size)
{
    size_t o = 0;
    const char *p = url;

    /* scheme://user:password@host -> scheme://user:***@host, per comma-separated element;
     * also key=value strings: password=... -> password=*** */
    while (*p && o + 1 < size) {
        const char *scheme = strstr(p, "://");
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        const char *at = NULL, *colon = NULL;

        if (scheme && scheme < stop) {
            const char *auth = scheme + 3;
            for (const char *q = auth; q < stop && *q != '/'; q++)
                if (*q == '@')
                    at = q;
            if (at)
                colon = memchr(auth, ':', (size_t)(at - auth));
        }
        for (const char *q = p; q < stop && o + 1 < size; q++) {
            if (colon && q == colon + 1) {
                o += (size_t)snprintf(buf + o, size - o, "***");
                if (o >= size)
                    o = size - 1;
                q = at - 1;
                continue;
            }
            if (strncmp(q, "password=", 9) == 0) {
                o += (size_t)snprintf(buf + o, size - o, "password=***");
                if (o >= size)
                    o = size - 1;
                while (q + 1 < stop && q[1] != ' ')
                    q++;
                continue;
            }
            buf[o++] = *q;
        }
        p = stop;
        if (*p == ',' && o + 1 < size) {
            buf[o++] = ',';
            p++;
        }
    }
    buf[o] = '\0';
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
