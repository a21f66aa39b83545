/*
 * log.c - log lines on stderr. Each line is formatted into one buffer and written with a
 * single write(2), so lines from concurrent processes sharing a terminal never interleave.
 * The caller's key=value pairs are formatted as logfmt first; the JSON format reads them
 * back field by field (logfmt_field), so both formats carry the same keys and values, and a
 * line cut at the buffer's end loses whole fields only (then says truncated=true).
 */
#include "base/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/utf8.h"

static const char *log_program = "topicflow";
static tf_log_level log_level = TF_LOG_INFO;
static tf_log_format log_format = TF_LOG_LOGFMT;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"logfmt", "json"};

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

int tf_log_parse_format(const char *name, tf_log_format *out)
{
    for (int i = 0; i <= TF_LOG_JSON; i++) {
        if (strcasecmp(name, format_names[i]) == 0) {
            *out = (tf_log_format)i;
            return 0;
        }
    }
    return -1;
}

void tf_log_set_format(tf_log_format format)
{
    log_format = format;
}

/* ---- logfmt values ---------------------------------------------------------------------- */

static int logfmt_needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c == 0x7f || c == '"' || c == '=' || c == '\\')
            return 1;
    }
    return 0;
}

/* c as it stands inside a quoted logfmt value, into out; returns its length. */
static size_t logfmt_escape_char(unsigned char c, char out[8])
{
    switch (c) {
    case '"': case '\\': out[0] = '\\'; out[1] = (char)c; return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    default:
        if (c < ' ' || c == 0x7f)
            return (size_t)snprintf(out, 8, "\\u%04x", c);
        out[0] = (char)c;
        return 1;
    }
}

const char *tf_log_quote(const char *s, char *buf, size_t size)
{
    size_t o = 0, len;

    if (size == 0)
        return buf;
    if (!logfmt_needs_quotes(s)) {
        len = tf_utf8_floor(s, strlen(s), size - 1);
        memcpy(buf, s, len);
        buf[len] = '\0';
        return buf;
    }
    if (size < 3) {
        buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; *s; s++) {
        char e[8];
        size_t n = logfmt_escape_char((unsigned char)*s, e);
        if (o + n + 2 > size) {
            /* cut: never inside a UTF-8 sequence (its lead and continuation bytes go) */
            if (((unsigned char)*s & 0xC0) == 0x80) {
                while (o > 1 && ((unsigned char)buf[o - 1] & 0xC0) == 0x80)
                    o--;
                if (o > 1 && (unsigned char)buf[o - 1] >= 0xC0)
                    o--;
            }
            break;
        }
        memcpy(buf + o, e, n);
        o += n;
    }
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

/* ---- the line: logfmt or JSON -------------------------------------------------------- */

/* One key=value field of the pairs a caller formatted. */
typedef struct log_field {
    const char *key, *val;
    size_t key_len, val_len;
    int quoted;
} log_field;

/* Reads the field at *p: 1 with f filled and *p past it; 0 at the end; -1 when the rest is
 * no whole field (a quoted value whose closing quote was cut off). A word without '=' is a
 * key with an empty value. */
static int logfmt_field(const char **p, log_field *f)
{
    const char *q = *p;

    while (*q == ' ')
        q++;
    if (!*q)
        return 0;
    memset(f, 0, sizeof(*f));
    f->key = q;
    while (*q && *q != '=' && *q != ' ')
        q++;
    f->key_len = (size_t)(q - f->key);
    f->val = q;
    if (*q == '=' && q[1] == '"') {
        f->quoted = 1;
        f->val = q += 2;
        while (*q && *q != '"')
            q += (*q == '\\' && q[1]) ? 2 : 1;
        if (*q != '"')
            return -1;
        f->val_len = (size_t)(q++ - f->val);
    } else if (*q == '=') {
        f->val = ++q;
        while (*q && *q != ' ')
            q++;
        f->val_len = (size_t)(q - f->val);
    }
    *p = q;
    return 1;
}

/* The length of the whole fields at the start of pairs; when the formatting was cut, the
 * last field goes too (its end is unknown). */
static size_t logfmt_whole_fields(const char *pairs, int truncated)
{
    const char *p = pairs;
    size_t end = 0, before = 0;
    log_field f;

    while (logfmt_field(&p, &f) == 1) {
        before = end;
        end = (size_t)(p - pairs);
    }
    return truncated ? before : end;
}

/* A quoted logfmt value's text, its escapes undone (out holds len bytes at least). */
static size_t logfmt_unescape(const char *s, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char c;
        if (s[i] != '\\' || i + 1 == len) {
            out[o++] = s[i];
            continue;
        }
        c = s[++i];
        if (c == 'n') {
            out[o++] = '\n';
        } else if (c == 'r') {
            out[o++] = '\r';
        } else if (c == 't') {
            out[o++] = '\t';
        } else if (c == 'u' && i + 4 < len && strspn(s + i + 1, "0123456789abcdefABCDEF") >= 4 &&
                   strncmp(s + i + 1, "00", 2) == 0 && s[i + 3] <= '7') {
            char hex[3] = {s[i + 3], s[i + 4], 0}; /* tf_log_quote writes \u00XX for ASCII only */
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 4;
        } else if (c == '"' || c == '\\') {
            out[o++] = c;
        } else {
            out[o++] = '\\';
            out[o++] = c;
        }
    }
    return o;
}

/* RFC 8259's number grammar, so a bare value that is one can be written unquoted. */
static int json_number(const char *s, size_t n)
{
    size_t i = 0, d;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && s[i] >= '1' && s[i] <= '9')
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < n && s[i] == '.') {
        for (d = ++i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (d = i; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            ;
        if (i == d)
            return 0;
    }
    return i == n;
}

/* A JSON member name; a key already used on the line gets _2, _3, … (a reader may refuse
 * repeated names, and none of the values may be lost). */
#define JSON_MAX_KEYS 64

static void json_key(tf_buf *b, const char *key, size_t len, log_field *seen, size_t *n_seen)
{
    int copies = 1;
    char name[160];

    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i].key_len == len && memcmp(seen[i].key, key, len) == 0)
            copies++;
    tf_buf_append(b, *n_seen ? "," : "{", 1);
    if (*n_seen < JSON_MAX_KEYS)
        seen[(*n_seen)++] = (log_field){.key = key, .key_len = len};
    if (copies == 1) {
        tf_buf_json_string(b, key, len);
    } else {
        int n = snprintf(name, sizeof(name), "%.*s_%d", (int)(len > 120 ? 120 : len), key, copies);
        tf_buf_json_string(b, name, (size_t)n);
    }
    tf_buf_append(b, ":", 1);
}

static void json_value(tf_buf *b, const log_field *f)
{
    char *plain;

    if (!f->quoted) {
        if (json_number(f->val, f->val_len))
            tf_buf_append(b, f->val, f->val_len);
        else
            tf_buf_json_string(b, f->val, f->val_len);
        return;
    }
    plain = malloc(f->val_len + 1);
    if (!plain) {
        b->failed = 1;
        return;
    }
    tf_buf_json_string(b, plain, logfmt_unescape(f->val, f->val_len, plain));
    free(plain);
}

/* {"ts":…,"level":…,"prog":…,"msg":…, then the pairs' fields in order}, into b. */
static void json_line(tf_buf *b, const char *ts, tf_log_level level, const char *msg,
                      const char *pairs, size_t pairs_len, int truncated)
{
    static const char *const base_keys[] = {"ts", "level", "prog", "msg"};
    const char *base_vals[] = {ts, level_names[level], log_program, msg};
    log_field seen[JSON_MAX_KEYS], f;
    size_t n_seen = 0;
    const char *p = pairs;

    for (int i = 0; i < 4; i++) {
        json_key(b, base_keys[i], strlen(base_keys[i]), seen, &n_seen);
        tf_buf_json_string(b, base_vals[i], strlen(base_vals[i]));
    }
    while ((size_t)(p - pairs) < pairs_len && logfmt_field(&p, &f) == 1) {
        json_key(b, f.key, f.key_len, seen, &n_seen);
        json_value(b, &f);
    }
    if (truncated)
        tf_buf_printf(b, ",\"truncated\":true");
    tf_buf_append(b, "}\n", 2);
}

static void write_line(const char *line, size_t n)
{
    if (write(STDERR_FILENO, line, n) < 0)
        return; /* nowhere left to report a failing stderr */
}

void tf_log_write(tf_log_level level, const char *msg, const char *fmt, ...)
{
    char line[4096], qmsg[1024], ts[40], pairs[2900];
    struct timespec now;
    struct tm tm;
    size_t n, kept = 0;
    int truncated = 0;
    va_list ap;

    if (level > log_level)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    pairs[0] = '\0';
    if (fmt && *fmt) {
        int want;
        va_start(ap, fmt);
        want = vsnprintf(pairs, sizeof(pairs), fmt, ap);
        va_end(ap);
        truncated = want >= (int)sizeof(pairs);
        kept = logfmt_whole_fields(pairs, truncated);
    }
    if (log_format == TF_LOG_JSON) {
        static const char oom[] = "{\"msg\":\"out of memory while logging\"}\n";
        tf_buf b;
        tf_buf_init(&b);
        json_line(&b, ts, level, msg, pairs, kept, truncated);
        if (tf_buf_ok(&b))
            write_line(b.p, b.len);
        else
            write_line(oom, strlen(oom));
        tf_buf_free(&b);
        return;
    }
    n = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s prog=%s msg=%s", ts,
                         level_names[level], log_program, tf_log_quote(msg, qmsg, sizeof(qmsg)));
    if (kept && n + 1 + kept + 16 < sizeof(line)) {
        line[n++] = ' ';
        memcpy(line + n, pairs, kept);
        n += kept;
    }
    if (truncated)
        n += (size_t)snprintf(line + n, sizeof(line) - n, " truncated=true");
    line[n++] = '\n';
    write_line(line, n);
}
