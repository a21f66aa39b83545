/*
 * metrics_server.c - libmicrohttpd with its own polling thread and a handler that answers
 * every request at once from the registry (no request body is ever read). The address is
 * resolved here with getaddrinfo, so "localhost:9100" and "[::1]:9100" work, and bound with
 * SO_REUSEADDR so a restarted daemon gets its port back at once.
 */
#include "http/metrics_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/config.h"

struct tf_metrics_server {
    struct MHD_Daemon *daemon;
    tf_metrics *metrics;
};

#define CONTENT_TYPE_METRICS "text/plain; version=0.0.4; charset=utf-8"

/* Splits addr into host (empty for every interface) and port. 0 ok, -1 with err set. */
static int split_addr(const char *addr, char *host, size_t host_size, long *port, tf_err *err)
{
    const char *colon, *h = addr;
    size_t hlen;

    if (!addr || !*addr)
        return tf_err_set(err, "empty metrics address (HOST:PORT)");
    if (*addr == '[') {
        const char *close = strchr(addr, ']');
        if (!close || close[1] != ':')
            return tf_err_set(err, "metrics address '%s': expected [IPv6]:PORT", addr);
        h = addr + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return tf_err_set(err, "metrics address '%s': expected HOST:PORT", addr);
        hlen = (size_t)(colon - addr);
    }
    if (hlen >= host_size)
        return tf_err_set(err, "metrics address '%s': host too long", addr);
    if (tf_parse_long(colon + 1, port) < 0 || *port < 1 || *port > 65535)
        return tf_err_set(err, "metrics address '%s': port must be 1 to 65535", addr);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
                             char *body, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body, mode);
    enum MHD_Result rc;

    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **req_cls)
{
    tf_metrics_server *s = cls;
    const char *why;
    char *text, line[256];

    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n",
                     MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/metrics") == 0) {
        text = tf_metrics_render(s->metrics);
        if (!text)
            return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", "out of memory\n",
                         MHD_RESPMEM_PERSISTENT);
        return reply(c, MHD_HTTP_OK, CONTENT_TYPE_METRICS, text, MHD_RESPMEM_MUST_FREE);
    }
    if (strcmp(url, "/healthz") == 0)
        return reply(c, MHD_HTTP_OK, "text/plain", "ok\n", MHD_RESPMEM_PERSISTENT);
    if (strcmp(url, "/readyz") == 0) {
        why = tf_metrics_unready(s->metrics);
        if (!why)
            return reply(c, MHD_HTTP_OK, "text/plain", "ready\n", MHD_RESPMEM_PERSISTENT);
        snprintf(line, sizeof(line), "not ready: %s\n", why);
        return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", line, MHD_RESPMEM_MUST_COPY);
    }
    return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found (try /metrics, /healthz, /readyz)\n",
                 MHD_RESPMEM_PERSISTENT);
}

tf_metrics_server *tf_metrics_server_start(const char *addr, tf_metrics *m, tf_err *err)
{
    char host[256], port_s[8];
    long port;
    struct addrinfo hints, *ai = NULL;
    tf_metrics_server *s = NULL;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    int rc;

    if (split_addr(addr, host, sizeof(host), &port, err) < 0)
        return NULL;
    snprintf(port_s, sizeof(port_s), "%ld", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = *host ? AF_UNSPEC : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(*host ? host : NULL, port_s, &hints, &ai);
    if (rc != 0) {
        tf_err_set(err, "metrics address '%s': %s", addr, gai_strerror(rc));
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    s->metrics = m;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, handle, s,
                                 MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10,
                                 MHD_OPTION_END);
    if (!s->daemon) {
        tf_err_set(err, "cannot listen on metrics address '%s' (in use, or not this host's?)", addr);
        free(s);
        s = NULL;
    }
done:
    freeaddrinfo(ai);
    return s;
}

void tf_metrics_server_stop(tf_metrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->daemon);
    free(s);
}
