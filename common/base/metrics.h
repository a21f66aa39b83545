/*
 * metrics.h - a process's counters, gauges and histograms, rendered in the Prometheus text
 * exposition format (version 0.0.4), and its readiness. Pure: no server library; the HTTP
 * endpoint that serves it is common/http. Every update is safe from any thread (atomics for
 * counters and gauges, the registry's mutex for histograms and registration), so a daemon's
 * threads share one registry, passed to them as context.
 */
#ifndef TF_METRICS_H
#define TF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef struct tf_metrics tf_metrics;
typedef struct tf_counter tf_counter;
typedef struct tf_gauge tf_gauge;
typedef struct tf_histogram tf_histogram;

/* An empty registry, ready (tf_metrics_set_unready); NULL when out of memory. */
tf_metrics *tf_metrics_new(void);
/* Frees the registry and every metric it handed out. */
void tf_metrics_free(tf_metrics *m);

/*
 * Registration: name must match [a-zA-Z_:][a-zA-Z0-9_:]* (a histogram's without the
 * _bucket/_sum/_count it adds); label is NULL or one "key" whose value is label_value (any
 * text: it is escaped when rendered). Registering a name again with another label value adds
 * a series to the same family (one # HELP and # TYPE); the same name and value returns the
 * same metric. NULL with err set on a bad name, a name already registered as another type,
 * or no memory. The registry owns what it returns.
 */
tf_counter *tf_metrics_counter(tf_metrics *m, const char *name, const char *help,
                               const char *label, const char *label_value, tf_err *err);
tf_gauge *tf_metrics_gauge(tf_metrics *m, const char *name, const char *help, const char *label,
                           const char *label_value, tf_err *err);
/* bounds: n ascending upper bounds (the +Inf bucket is implied). */
tf_histogram *tf_metrics_histogram(tf_metrics *m, const char *name, const char *help,
                                   const double *bounds, size_t n, tf_err *err);

/* Updates; each accepts NULL (a metric that failed to register) and does nothing. */
void tf_counter_add(tf_counter *c, uint64_t n);
void tf_gauge_set(tf_gauge *g, double v);
void tf_histogram_observe(tf_histogram *h, double v);

uint64_t tf_counter_value(const tf_counter *c);
double tf_gauge_value(const tf_gauge *g);

/* The whole registry as exposition text, families in registration order. Returns a
 * NUL-terminated string the caller frees, or NULL when out of memory. */
char *tf_metrics_render(tf_metrics *m);

/* Readiness for /readyz: reason is NULL when ready, else a one-line reason that must stay
 * valid for the life of the registry (a string literal). */
void tf_metrics_set_unready(tf_metrics *m, const char *reason);
/* NULL when ready, else the reason. */
const char *tf_metrics_unready(tf_metrics *m);

#endif
