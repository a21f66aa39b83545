/*
 * metrics_server.h - the daemons' HTTP endpoint for --metrics-addr HOST:PORT, on a thread of
 * its own (libmicrohttpd's): GET /metrics renders a tf_metrics registry in the Prometheus
 * text format, /healthz answers 200 while the process lives, /readyz 200 when the registry
 * says ready and 503 with the one-line reason otherwise. Anything else is 404 (405 for a
 * method other than GET or HEAD). It reads the registry only, so it never blocks the
 * daemon's own threads beyond the registry's short lock.
 */
#ifndef TF_METRICS_SERVER_H
#define TF_METRICS_SERVER_H

#include <stddef.h>

#include "base/config.h"
#include "base/error.h"
#include "base/metrics.h"

/* The daemons' option; `type` has a member metrics_addr (char *, NULL: no endpoint). */
#define TF_OPTIONS_METRICS(type)                                                                 \
    {"metrics-addr", "TOPICFLOW_METRICS_ADDR", TF_OPT_STRING, NULL,                              \
     "serve /metrics (Prometheus), /healthz and /readyz over HTTP on HOST:PORT (default: off)",  \
     offsetof(type, metrics_addr), 0, 0}

typedef struct tf_metrics_server tf_metrics_server;

/* Listen on addr ("HOST:PORT", "[IPv6]:PORT", or ":PORT" for every interface) and serve m,
 * which must outlive the server. NULL with err set when addr is malformed or cannot be bound. */
tf_metrics_server *tf_metrics_server_start(const char *addr, tf_metrics *m, tf_err *err);

/* Stop serving (waits for the requests in progress) and free the server; NULL is a no-op. */
void tf_metrics_server_stop(tf_metrics_server *s);

#endif
