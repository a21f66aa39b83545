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

#include "base/error.h"
#include "base/metrics.h"

typedef struct tf_metrics_server tf_metrics_server;

/* Listen on addr ("HOST:PORT", "[IPv6]:PORT", or ":PORT" for every interface) and serve m,
 * which must outlive the server. NULL with err set when addr is malformed or cannot be bound. */
tf_metrics_server *tf_metrics_server_start(const char *addr, tf_metrics *m, tf_err *err);

/* Stop serving (waits for the requests in progress) and free the server; NULL is a no-op. */
void tf_metrics_server_stop(tf_metrics_server *s);

/* Check addr's syntax only (for the option parsers): 0 ok, -1 with err set. */
int tf_metrics_addr_check(const char *addr, tf_err *err);

#endif
