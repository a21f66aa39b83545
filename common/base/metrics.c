/*
 * metrics.c - the registry: families (name, help, type, optional label key) in registration
 * order, each with its series. Series are allocated one by one and never move or go away
 * before tf_metrics_free, so the handles stay valid while other threads register more.
 * Counters and gauges are C11 atomics; a histogram's buckets, sum and count change together
 * under the registry's mutex, so a scrape never sees a count that disagrees with +Inf.
 */
#include "base/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } metric_kind;

struct tf_counter {
    _Atomic uint64_t v;
};

struct tf_gauge {
    _Atomic double v;
};

struct tf_histogram {
    pthread_mutex_t *lock; /* the registry's */
    double *bounds;
    size_t n;
    uint64_t *counts; /* n + 1: per bucket, not cumulative; the last is +Inf */
    uint64_t count;
    double sum;
};

typedef struct series {
    struct series *next;
    char *label_value; /* NULL for a family without a label */
    union {
        struct tf_counter c;
        struct tf_gauge g;
        struct tf_histogram h;
    } u;
} series;

typedef struct family {
    struct family *next;
    char *name, *help, *label;
    metric_kind kind;
    series *first, **tail;
} family;

struct tf_metrics {
    pthread_mutex_t lock; /* registration, rendering, histogram updates */
    family *first, **tail;
    _Atomic(const char *) unready;
};

static const char *const kind_names[] = {"counter", "gauge", "histogram"};

tf_metrics *tf_metrics_new(void)
{
    tf_metrics *m = calloc(1, sizeof(*m));

    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->tail = &m->first;
    atomic_init(&m->unready, NULL);
    return m;
}

static void series_free(series *s, metric_kind kind)
{
    if (kind == KIND_HISTOGRAM) {
        free(s->u.h.bounds);
        free(s->u.h.counts);
    }
    free(s->label_value);
    free(s);
}

static void family_free(family *f)
{
    for (series *s = f->first, *next; s; s = next) {
        next = s->next;
        series_free(s, f->kind);
    }
    free(f->name);
    free(f->help);
    free(f->label);
    free(f);
}

void tf_metrics_free(tf_metrics *m)
{
    if (!m)
        return;
    for (family *f = m->first, *next; f; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Prometheus metric names allow ':'; label names do not. */
static int valid_name(const char *s, int colon)
{
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || (colon && *s == ':')))
            return 0;
    return 1;
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = 1;
    return d;
}

/* Under the lock: the family called name, created when new. NULL with err set when the
 * name or label is invalid or the name is taken by another type or label key. */
static family *family_get(tf_metrics *m, const char *name, const char *help, const char *label,
                          metric_kind kind, tf_err *err)
{
    family *f;
    int failed = 0;

    for (f = m->first; f; f = f->next) {
        if (strcmp(f->name, name) != 0)
            continue;
        if (f->kind != kind || !same(f->label, label)) {
            tf_err_set(err, "metric %s is already registered as a %s%s%s", name,
                       kind_names[f->kind], f->label ? " labelled " : "", f->label ? f->label : "");
            return NULL;
        }
        return f;
    }
    if (!valid_name(name, 1) || (label && (!valid_name(label, 0) || strncmp(label, "__", 2) == 0 ||
                                           (kind == KIND_HISTOGRAM && strcmp(label, "le") == 0)))) {
        tf_err_set(err, "invalid metric name '%s' or label '%s'", name, label ? label : "");
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (!f) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    f->name = dup_or_null(name, &failed);
    f->help = dup_or_null(help ? help : "", &failed);
    f->label = dup_or_null(label, &failed);
    f->kind = kind;
    f->tail = &f->first;
    if (failed) {
        family_free(f);
        tf_err_set(err, "out of memory");
        return NULL;
    }
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

/* Under the lock: the series of f with label_value, created (zero) when new. */
static series *series_get(family *f, const char *label_value, tf_err *err)
{
    series *s;
    int failed = 0;

    if (f->label && !label_value)
        label_value = "";
    if (!f->label)
        label_value = NULL;
    for (s = f->first; s; s = s->next)
        if (same(s->label_value, label_value))
            return s;
    s = calloc(1, sizeof(*s));
    if (!s || (s->label_value = dup_or_null(label_value, &failed), failed)) {
        free(s);
        tf_err_set(err, "out of memory");
        return NULL;
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;
}

static series *register_series(tf_metrics *m, const char *name, const char *help,
                               const char *label, const char *label_value, metric_kind kind,
                               tf_err *err)
{
    family *f;
    series *s = NULL;

    pthread_mutex_lock(&m->lock);
    f = family_get(m, name, help, label, kind, err);
    if (f)
        s = series_get(f, label_value, err);
    pthread_mutex_unlock(&m->lock);
    return s;
}

tf_counter *tf_metrics_counter(tf_metrics *m, const char *name, const char *help,
                               const char *label, const char *label_value, tf_err *err)
{
    series *s = register_series(m, name, help, label, label_value, KIND_COUNTER, err);
    return s ? &s->u.c : NULL;
}

tf_gauge *tf_metrics_gauge(tf_metrics *m, const char *name, const char *help, const char *label,
                           const char *label_value, tf_err *err)
{
    series *s = register_series(m, name, help, label, label_value, KIND_GAUGE, err);
    return s ? &s->u.g : NULL;
}

tf_histogram *tf_metrics_histogram(tf_metrics *m, const char *name, const char *help,
                                   const double *bounds, size_t n, tf_err *err)
{
    family *f;
    series *s = NULL;

    for (size_t i = 1; i < n; i++)
        if (!(bounds[i] > bounds[i - 1])) {
            tf_err_set(err, "histogram %s: bucket bounds must ascend", name);
            return NULL;
        }
    pthread_mutex_lock(&m->lock);
    f = family_get(m, name, help, NULL, KIND_HISTOGRAM, err);
    if (f && f->first) {
        s = f->first; /* registered before: its buckets stand */
    } else if (f && (s = series_get(f, NULL, err)) != NULL) {
        s->u.h.lock = &m->lock;
        s->u.h.n = n;
        s->u.h.bounds = malloc((n ? n : 1) * sizeof(double));
        s->u.h.counts = calloc(n + 1, sizeof(uint64_t));
        if (!s->u.h.bounds || !s->u.h.counts) {
            /* keep the series (freed with the registry) but hand out nothing */
            s->u.h.n = 0;
            tf_err_set(err, "out of memory");
            s = NULL;
        } else {
            memcpy(s->u.h.bounds, bounds, n * sizeof(double));
        }
    }
    pthread_mutex_unlock(&m->lock);
    return s ? &s->u.h : NULL;
}

void tf_counter_add(tf_counter *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

void tf_gauge_set(tf_gauge *g, double v)
{
    if (g)
        atomic_store_explicit(&g->v, v, memory_order_relaxed);
}

void tf_histogram_observe(tf_histogram *h, double v)
{
    size_t i = 0;

    if (!h || !h->counts)
        return;
    while (i < h->n && v > h->bounds[i]) /* le: a value equal to a bound is in its bucket */
        i++;
    pthread_mutex_lock(h->lock);
    h->counts[i]++;
    h->count++;
    h->sum += v;
    pthread_mutex_unlock(h->lock);
}

uint64_t tf_counter_value(const tf_counter *c)
{
    return c ? atomic_load_explicit(&((struct tf_counter *)c)->v, memory_order_relaxed) : 0;
}

double tf_gauge_value(const tf_gauge *g)
{
    return g ? atomic_load_explicit(&((struct tf_gauge *)g)->v, memory_order_relaxed) : 0;
}

void tf_metrics_set_unready(tf_metrics *m, const char *reason)
{
    atomic_store(&m->unready, reason);
}

const char *tf_metrics_unready(tf_metrics *m)
{
    return atomic_load(&m->unready);
}

/* ---- rendering ---------------------------------------------------------------------- */

/* The shortest of %.15g and %.17g that reads back as v; Prometheus's spellings of the
 * non-finite values. */
static void put_double(tf_buf *b, double v)
{
    char s[32];

    if (isnan(v)) {
        tf_buf_printf(b, "NaN");
        return;
    }
    if (isinf(v)) {
        tf_buf_printf(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v)
        snprintf(s, sizeof(s), "%.17g", v);
    tf_buf_printf(b, "%s", s);
}

/* Escapes \ and line feeds (HELP text), and " too (label values), as the format says. */
static void put_escaped(tf_buf *b, const char *s, int quote)
{
    for (; *s; s++) {
        if (*s == '\\')
            tf_buf_append(b, "\\\\", 2);
        else if (*s == '\n')
            tf_buf_append(b, "\\n", 2);
        else if (quote && *s == '"')
            tf_buf_append(b, "\\\"", 2);
        else
            tf_buf_append(b, s, 1);
    }
}

static void put_labels(tf_buf *b, const family *f, const series *s)
{
    if (!f->label)
        return;
    tf_buf_printf(b, "{%s=\"", f->label);
    put_escaped(b, s->label_value, 1);
    tf_buf_append(b, "\"}", 2);
}

static void render_histogram(tf_buf *b, const family *f, const struct tf_histogram *h)
{
    uint64_t cum = 0;

    for (size_t i = 0; i <= h->n; i++) {
        cum += h->counts ? h->counts[i] : 0;
        tf_buf_printf(b, "%s_bucket{le=\"", f->name);
        put_double(b, i < h->n ? h->bounds[i] : INFINITY);
        tf_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    tf_buf_printf(b, "%s_sum ", f->name);
    put_double(b, h->sum);
    tf_buf_printf(b, "\n%s_count %llu\n", f->name, (unsigned long long)h->count);
}

char *tf_metrics_render(tf_metrics *m)
{
    tf_buf b;

    tf_buf_init(&b);
    tf_buf_append(&b, "", 0); /* an empty registry renders as "", not NULL */
    pthread_mutex_lock(&m->lock);
    for (const family *f = m->first; f; f = f->next) {
        tf_buf_printf(&b, "# HELP %s ", f->name);
        put_escaped(&b, f->help, 0);
        tf_buf_printf(&b, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
        for (const series *s = f->first; s; s = s->next) {
            if (f->kind == KIND_HISTOGRAM) {
                render_histogram(&b, f, &s->u.h);
                continue;
            }
            tf_buf_printf(&b, "%s", f->name);
            put_labels(&b, f, s);
            if (f->kind == KIND_COUNTER) {
                tf_buf_printf(&b, " %llu\n", (unsigned long long)tf_counter_value(&s->u.c));
            } else {
                tf_buf_append(&b, " ", 1);
                put_double(&b, tf_gauge_value(&s->u.g));
                tf_buf_append(&b, "\n", 1);
            }
        }
    }
    pthread_mutex_unlock(&m->lock);
    if (!tf_buf_ok(&b)) {
        tf_buf_free(&b);
        return NULL;
    }
    return b.p;
}
