/*
 * broker.c - rabbitmq-c wrapped for topicflow. Every library call's status is turned into
 * a tf_err by one helper (tf_amqp_reply_error); any server-side close marks the broker
 * unusable so that its owner reconnects instead of using a half-dead channel.
 *
 * Heartbeats whatever the owner waits on. rabbitmq-c sends heartbeats only from inside its
 * own calls, so an owner blocked on PostgreSQL (a lock, a stall, a long refit) or simply
 * idle (the worker's dead-letter connection) used to go silent and the broker closed the
 * connection after two missed heartbeats, returning every unacked message with its delivery
 * count raised. Each connection with heartbeats therefore has a keeper thread, and every
 * public function here runs under the connection's mutex (`X_locked` is the body of
 * tf_broker_X, called with it held). The keeper takes the mutex only when it is free — a
 * busy owner is inside rabbitmq-c, which services heartbeats itself — and then sends a
 * heartbeat frame when none went out for a third of the interval.
 */
#include "amqp/broker.h"

#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "amqp/url.h"
#include "base/lifecycle.h"
#include "base/log.h"
#include "tls.h"

struct tf_broker {
    amqp_connection_state_t conn;
    amqp_channel_t channel;
    int ok;
    int heartbeat;
    uint64_t next_tag; /* delivery tag of the next publish in confirm mode */
    amqp_bytes_t consumer_tag; /* of the consumer started by tf_broker_consume */
    pthread_mutex_t lock;      /* recursive: held by every public call and by the keeper */
    double last_io;            /* when the owner or the keeper last used the connection */
    pthread_t keeper;
    int has_keeper;
    atomic_int keeper_stop;
    atomic_ulong keeper_beats; /* heartbeats the keeper sent (tests, debugging) */
    tf_tls_check tls_check;    /* amqps://: what the certificate check saw (amqp/tls.h) */
};

static void broker_lock(tf_broker *b)
{
    pthread_mutex_lock(&b->lock);
}

static void broker_unlock(tf_broker *b)
{
    b->last_io = tf_now();
    pthread_mutex_unlock(&b->lock);
}

/* The keeper: see the header comment. It never reads: frames the broker sends meanwhile
 * wait in the socket for the owner, and rabbitmq-c counts them as received then. */
static void *keeper_main(void *arg)
{
    tf_broker *b = arg;
    double every = b->heartbeat / 3.0;

    while (!atomic_load(&b->keeper_stop)) {
        struct timespec nap = {0, 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
        if (pthread_mutex_trylock(&b->lock) != 0)
            continue;
        if (b->ok && tf_now() - b->last_io >= every) {
            amqp_frame_t hb;
            memset(&hb, 0, sizeof(hb));
            hb.frame_type = AMQP_FRAME_HEARTBEAT;
            hb.channel = 0;
            if (amqp_send_frame(b->conn, &hb) == AMQP_STATUS_OK)
                atomic_fetch_add(&b->keeper_beats, 1);
            b->last_io = tf_now();
        }
        pthread_mutex_unlock(&b->lock);
    }
    return NULL;
}

unsigned long tf_broker_keeper_beats(const tf_broker *b)
{
    return b ? atomic_load(&((tf_broker *)b)->keeper_beats) : 0;
}


static struct timeval timeval_of(double s)
{
    struct timeval tv;
    if (s < 0)
        s = 0;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

int tf_amqp_reply_error(amqp_rpc_reply_t reply, const char *context, tf_err *err)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        return 0;
    case AMQP_RESPONSE_NONE:
        return tf_err_set(err, "%s: no reply from the broker", context);
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        return tf_err_set(err, "%s: %s", context, amqp_error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *c = reply.reply.decoded;
            return tf_err_set(err, "%s: connection closed by the broker: %u %.*s", context,
                              c->reply_code, (int)c->reply_text.len,
                              (const char *)c->reply_text.bytes);
        }
        if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *c = reply.reply.decoded;
            return tf_err_set(err, "%s: channel closed by the broker: %u %.*s", context,
                              c->reply_code, (int)c->reply_text.len,
                              (const char *)c->reply_text.bytes);
        }
        return tf_err_set(err, "%s: unexpected broker method 0x%08x", context, reply.reply.id);
    }
    return tf_err_set(err, "%s: unknown reply", context);
}

/* 1 when a login failed because the vhost does not exist (or may not be used): RabbitMQ
 * closes the connection with 530 NOT_ALLOWED "vhost X not found". */
static int login_refused_vhost(amqp_rpc_reply_t r)
{
    return r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
           r.reply.id == AMQP_CONNECTION_CLOSE_METHOD &&
           ((amqp_connection_close_t *)r.reply.decoded)->reply_code == AMQP_NOT_ALLOWED;
}

/* Checks the reply of the last synchronous call; on failure the broker is marked unusable. */
static int check_rpc(tf_broker *b, const char *context, tf_err *err)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);

    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    b->ok = 0;
    return tf_amqp_reply_error(r, context, err);
}

/* When the last call's reply is the broker closing only our channel with `code`
 * (AMQP_NOT_FOUND, AMQP_PRECONDITION_FAILED, ...): acknowledge the close, carry on on a fresh
 * channel (which is in neither confirm mode nor under a qos) and return 1. 0 when the reply
 * is anything else (the caller reports it). -1 when the fresh channel cannot be opened. */
static int recover_channel_on(tf_broker *b, amqp_rpc_reply_t r, uint16_t code, tf_err *err)
{
    amqp_channel_close_ok_t close_ok = {0};

    if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
        ((amqp_channel_close_t *)r.reply.decoded)->reply_code != code)
        return 0;
    amqp_send_method(b->conn, b->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
    b->channel++;
    amqp_channel_open(b->conn, b->channel);
    if (check_rpc(b, "channel.open", err) < 0)
        return -1;
    return 1;
}

static amqp_socket_t *socket_for(tf_broker *b, const struct amqp_connection_info *info,
                                 const tf_amqp_tls *tls, tf_err *err)
{
    amqp_socket_t *s;

    if (info->ssl)
        return tf_tls_socket_new(b->conn, info->host, tls, &b->tls_check, err);
    s = amqp_tcp_socket_new(b->conn);
    if (!s)
        tf_err_set(err, "cannot create a TCP socket");
    return s;
}

static tf_broker *open_one(const char *url, const tf_amqp_tls *tls, int heartbeat_s, tf_err *err)
{
    tf_amqp_url u = {0};
    struct timeval tv = {10, 0};
    tf_broker *b = calloc(1, sizeof(*b));
    amqp_socket_t *sock;
    amqp_rpc_reply_t r;
    int rc;

    if (!b) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    {
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&b->lock, &attr);
        pthread_mutexattr_destroy(&attr);
    }
    if (tf_amqp_url_parse(url, &u, err) < 0)
        goto fail;
    b->conn = amqp_new_connection();
    b->channel = 1;
    b->heartbeat = heartbeat_s;
    if (!b->conn) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    sock = socket_for(b, &u.info, tls, err);
    if (!sock) {
        tf_err_prefix(err, "RabbitMQ %s", u.redacted);
        goto fail;
    }
    tf_tls_open_begin(&b->tls_check);
    rc = amqp_socket_open_noblock(sock, u.info.host, u.info.port, &tv);
    if (rc != AMQP_STATUS_OK) {
        char why[400];
        tf_err_set(err, "cannot connect to RabbitMQ %s: %s", u.redacted,
                   u.info.ssl ? tf_tls_error(rc, &b->tls_check, u.info.host, why, sizeof(why))
                            : amqp_error_string2(rc));
        goto fail;
    }
    r = amqp_login(b->conn, u.info.vhost, 0, 131072, heartbeat_s, AMQP_SASL_METHOD_PLAIN,
                   u.info.user, u.info.password);
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && u.info.ssl &&
        r.library_error == AMQP_STATUS_SSL_ERROR) {
        /* A TLS 1.3 server refuses a client certificate only after the handshake. */
        char why[400];
        tf_err_set(err, "cannot connect to RabbitMQ %s: %s", u.redacted,
                   tf_tls_error(r.library_error, &b->tls_check, u.info.host, why, sizeof(why)));
        goto fail;
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        tf_amqp_reply_error(r, "login", err);
        if (!*u.info.vhost && login_refused_vhost(r)) {
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", err->msg);
            tf_err_set(err, "%s (a URL ending in '/' names the empty vhost, per RabbitMQ's URI "
                            "spec; the default vhost / is written %%2f, or leave out the '/')",
                       why);
        }
        tf_err_prefix(err, "RabbitMQ %s", u.redacted);
        goto fail;
    }
    amqp_channel_open(b->conn, b->channel);
    b->ok = 1;
    if (check_rpc(b, "channel.open", err) < 0)
        goto fail;
    b->last_io = tf_now();
    if (heartbeat_s > 0) {
        if (pthread_create(&b->keeper, NULL, keeper_main, b) != 0) {
            tf_err_set(err, "cannot start the heartbeat thread");
            goto fail;
        }
        b->has_keeper = 1;
    }
    tf_amqp_url_free(&u);
    return b;
fail:
    tf_amqp_url_free(&u);
    tf_broker_close(b);
    return NULL;
}

tf_broker *tf_broker_open(const char *urls, const tf_amqp_tls *tls, int heartbeat_s, tf_err *err)
{
    char *list, *save = NULL, *url;
    tf_broker *b = NULL;

    if (!urls || !*urls) {
        tf_err_set(err, "no RabbitMQ URL: set TOPICFLOW_AMQP_URL or --amqp");
        return NULL;
    }
    list = strdup(urls);
    if (!list) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    /* Fail over in order: the first URL that accepts us wins; the error reports the last. */
    for (url = tf_amqp_url_next(list, &save); url && !b; url = tf_amqp_url_next(NULL, &save))
        b = open_one(url, tls, heartbeat_s, err);
    free(list);
    return b;
}

void tf_broker_close(tf_broker *b)
{
    if (!b)
        return;
    if (b->has_keeper) {
        atomic_store(&b->keeper_stop, 1);
        pthread_join(b->keeper, NULL);
    }
    if (b->conn) {
        if (b->ok) {
            amqp_channel_close(b->conn, b->channel, AMQP_REPLY_SUCCESS);
            amqp_connection_close(b->conn, AMQP_REPLY_SUCCESS);
        }
        amqp_destroy_connection(b->conn);
    }
    amqp_bytes_free(b->consumer_tag);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

int tf_broker_fd(const tf_broker *b)
{
    return amqp_get_sockfd(b->conn);
}

int tf_broker_heartbeat(const tf_broker *b)
{
    return b->heartbeat;
}

int tf_broker_ok(const tf_broker *b)
{
    return b && b->ok;
}

/* ---- declarations (the topology itself is topology.c's) ------------------------------- */

static int declare_exchange_locked(tf_broker *b, const char *name, const char *type, tf_err *err)
{
    char ctx[128];

    snprintf(ctx, sizeof(ctx), "declare exchange %s", name);
    amqp_exchange_declare(b->conn, b->channel, amqp_cstring_bytes(name), amqp_cstring_bytes(type),
                          0, 1, 0, 0, amqp_empty_table);
    return check_rpc(b, ctx, err);
}

int tf_broker_declare_exchange(tf_broker *b, const char *name, const char *type, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = declare_exchange_locked(b, name, type, err);
    broker_unlock(b);
    return rc;
}

static int declare_queue_locked(tf_broker *b, const char *name, amqp_table_t args, tf_err *err)
{
    amqp_rpc_reply_t r;
    char ctx[128];
    int rc;

    snprintf(ctx, sizeof(ctx), "declare queue %s", name);
    amqp_queue_declare(b->conn, b->channel, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    r = amqp_get_rpc_reply(b->conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 0;
    tf_amqp_reply_error(r, ctx, err);
    rc = recover_channel_on(b, r, AMQP_PRECONDITION_FAILED, err);
    if (rc == 1)
        return TF_BROKER_INEQUIVALENT;
    b->ok = 0;
    return -1;
}

int tf_broker_declare_queue(tf_broker *b, const char *name, amqp_table_t args, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = declare_queue_locked(b, name, args, err);
    broker_unlock(b);
    return rc;
}

static int bind_locked(tf_broker *b, const char *queue, const char *exchange, const char *key,
                       tf_err *err)
{
    char ctx[160];

    snprintf(ctx, sizeof(ctx), "bind queue %s to %s", queue, exchange);
    amqp_queue_bind(b->conn, b->channel, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_cstring_bytes(key), amqp_empty_table);
    return check_rpc(b, ctx, err);
}

int tf_broker_bind(tf_broker *b, const char *queue, const char *exchange, const char *key,
                   tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = bind_locked(b, queue, exchange, key, err);
    broker_unlock(b);
    return rc;
}

static int queue_info_locked(tf_broker *b, const char *queue, uint32_t *messages,
                             uint32_t *consumers, tf_err *err)
{
    amqp_queue_declare_ok_t *ok;
    char ctx[128];

    snprintf(ctx, sizeof(ctx), "queue %s", queue);
    ok = amqp_queue_declare(b->conn, b->channel, amqp_cstring_bytes(queue), 1, 0, 0, 0,
                            amqp_empty_table);
    if (!ok)
        return check_rpc(b, ctx, err);
    *messages = ok->message_count;
    *consumers = ok->consumer_count;
    return 0;
}

int tf_broker_queue_info(tf_broker *b, const char *queue, uint32_t *messages,
                         uint32_t *consumers, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = queue_info_locked(b, queue, messages, consumers, err);
    broker_unlock(b);
    return rc;
}

static int queue_probe_locked(tf_broker *b, const char *queue, int *exists, uint32_t *messages,
                              uint32_t *consumers, tf_err *err)
{
    amqp_queue_declare_ok_t *ok;
    amqp_rpc_reply_t r;
    char ctx[128];
    int rc;

    snprintf(ctx, sizeof(ctx), "queue %s", queue);
    ok = amqp_queue_declare(b->conn, b->channel, amqp_cstring_bytes(queue), 1, 0, 0, 0,
                            amqp_empty_table);
    if (ok) {
        *exists = 1;
        *messages = ok->message_count;
        *consumers = ok->consumer_count;
        return 0;
    }
    r = amqp_get_rpc_reply(b->conn);
    rc = recover_channel_on(b, r, AMQP_NOT_FOUND, err);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        *exists = 0;
        *messages = *consumers = 0;
        return 0;
    }
    b->ok = 0;
    return tf_amqp_reply_error(r, ctx, err);
}

int tf_broker_queue_probe(tf_broker *b, const char *queue, int *exists, uint32_t *messages,
                          uint32_t *consumers, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = queue_probe_locked(b, queue, exists, messages, consumers, err);
    broker_unlock(b);
    return rc;
}

static int purge_locked(tf_broker *b, const char *queue, tf_err *err)
{
    amqp_queue_purge(b->conn, b->channel, amqp_cstring_bytes(queue));
    return check_rpc(b, "queue.purge", err);
}

int tf_broker_purge(tf_broker *b, const char *queue, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = purge_locked(b, queue, err);
    broker_unlock(b);
    return rc;
}

static int purge_count_locked(tf_broker *b, const char *queue, uint32_t *removed, tf_err *err)
{
    amqp_queue_purge_ok_t *ok = amqp_queue_purge(b->conn, b->channel, amqp_cstring_bytes(queue));

    if (!ok)
        return check_rpc(b, "queue.purge", err);
    *removed = ok->message_count;
    return 0;
}

int tf_broker_purge_count(tf_broker *b, const char *queue, uint32_t *removed, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = purge_count_locked(b, queue, removed, err);
    broker_unlock(b);
    return rc;
}

/* ---- frames outside an RPC ------------------------------------------------------------ */

/* Answers a broker-initiated close and marks the broker unusable. */
static int handle_close(tf_broker *b, const amqp_frame_t *f, tf_err *err)
{
    amqp_rpc_reply_t r = {AMQP_RESPONSE_SERVER_EXCEPTION, f->payload.method, 0};

    tf_amqp_reply_error(r, "broker", err);
    if (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(b->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(b->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
    b->ok = 0;
    return -1;
}

static int is_close(const amqp_frame_t *f)
{
    return f->frame_type == AMQP_FRAME_METHOD &&
           (f->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
            f->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD);
}

/* Waits for one frame; 1 got one, 0 timeout, -1 connection lost. */
static int wait_frame(tf_broker *b, amqp_frame_t *f, double timeout_s, tf_err *err)
{
    struct timeval tv = timeval_of(timeout_s);
    int rc = amqp_simple_wait_frame_noblock(b->conn, f, &tv);

    if (rc == AMQP_STATUS_OK)
        return 1;
    if (rc == AMQP_STATUS_TIMEOUT)
        return 0;
    b->ok = 0;
    tf_err_set(err, "connection to RabbitMQ lost: %s", amqp_error_string2(rc));
    return -1;
}

static int service_locked(tf_broker *b, int timeout_ms, tf_err *err)
{
    double deadline = tf_now() + timeout_ms / 1000.0;
    amqp_frame_t f;
    int rc;

    if (!b->ok)
        return tf_err_set(err, "connection to RabbitMQ is closed");
    do {
        rc = wait_frame(b, &f, deadline - tf_now(), err);
        if (rc < 0)
            return -1;
        if (rc == 1 && is_close(&f))
            return handle_close(b, &f, err);
        /* Anything else here (a confirm that outlived its batch's timeout) is stale. */
    } while (rc == 1);
    amqp_maybe_release_buffers(b->conn);
    return 0;
}

int tf_broker_service(tf_broker *b, int timeout_ms, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = service_locked(b, timeout_ms, err);
    broker_unlock(b);
    return rc;
}

/* ---- publishing ---------------------------------------------------------------------- */

static int confirm_select_locked(tf_broker *b, tf_err *err)
{
    amqp_confirm_select(b->conn, b->channel);
    b->next_tag = 1;
    return check_rpc(b, "confirm.select", err);
}

int tf_broker_confirm_select(tf_broker *b, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = confirm_select_locked(b, err);
    broker_unlock(b);
    return rc;
}

static int publish_locked(tf_broker *b, const char *exchange, const char *routing_key,
                          const amqp_basic_properties_t *props, const void *body, size_t len,
                          uint64_t *tag, tf_err *err)
{
    amqp_bytes_t bytes = {len, (void *)body};
    int rc;

    rc = amqp_basic_publish(b->conn, b->channel, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(routing_key), 1, 0, props, bytes);
    if (rc != AMQP_STATUS_OK) {
        b->ok = 0;
        return tf_err_set(err, "publish to %s failed: %s", exchange, amqp_error_string2(rc));
    }
    if (tag)
        *tag = b->next_tag;
    b->next_tag++;
    return 0;
}

int tf_broker_publish(tf_broker *b, const char *exchange, const char *routing_key,
                      const amqp_basic_properties_t *props, const void *body, size_t len,
                      uint64_t *tag, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = publish_locked(b, exchange, routing_key, props, body, len, tag, err);
    broker_unlock(b);
    return rc;
}

static void settle(uint64_t first, size_t n, uint8_t *state, uint64_t tag, int multiple,
                   uint8_t outcome)
{
    uint64_t lo = multiple ? first : tag;

    for (uint64_t t = lo; t <= tag; t++) {
        if (t < first || t >= first + n)
            continue;
        /* A returned message is also acked afterwards: keep the "returned" verdict. */
        if (state[t - first] == TF_CONFIRM_PENDING)
            state[t - first] = outcome;
    }
}

static size_t count_pending(const uint8_t *state, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += state[i] == TF_CONFIRM_PENDING;
    return c;
}

static int read_return(tf_broker *b, amqp_channel_t ch, tf_return_cb on_return, void *ctx,
                       tf_err *err)
{
    amqp_message_t msg;
    amqp_rpc_reply_t r = amqp_read_message(b->conn, ch, &msg, 0);

    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        b->ok = 0;
        return tf_amqp_reply_error(r, "reading a returned message", err);
    }
    if (on_return) {
        int has_id = (msg.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0;
        on_return(ctx, has_id ? msg.properties.message_id.bytes : NULL,
                  has_id ? msg.properties.message_id.len : 0);
    }
    amqp_destroy_message(&msg);
    return 0;
}

static int wait_confirms_locked(tf_broker *b, uint64_t first, size_t n, uint8_t *state,
                                size_t needed, double timeout_s, tf_return_cb on_return, void *ctx,
                                tf_err *err)
{
    double deadline = tf_now() + timeout_s;
    amqp_frame_t f;

    while (count_pending(state, needed) > 0) {
        int rc = wait_frame(b, &f, deadline - tf_now(), err);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return tf_err_set(err, "%zu of %zu publisher confirms not received within %.1fs",
                              count_pending(state, needed), needed, timeout_s);
        if (f.frame_type != AMQP_FRAME_METHOD)
            continue;
        switch (f.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *a = f.payload.method.decoded;
            settle(first, n, state, a->delivery_tag, a->multiple, TF_CONFIRM_ACK);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *a = f.payload.method.decoded;
            settle(first, n, state, a->delivery_tag, a->multiple, TF_CONFIRM_NACK);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD:
            if (read_return(b, f.channel, on_return, ctx, err) < 0)
                return -1;
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD:
            return handle_close(b, &f, err);
        default:
            break;
        }
    }
    amqp_maybe_release_buffers(b->conn);
    return 0;
}

int tf_broker_wait_confirms(tf_broker *b, uint64_t first, size_t n, uint8_t *state,
                            size_t needed, double timeout_s, tf_return_cb on_return, void *ctx,
                            tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = wait_confirms_locked(b, first, n, state, needed, timeout_s, on_return, ctx, err);
    broker_unlock(b);
    return rc;
}

/* ---- consuming ----------------------------------------------------------------------- */

static int qos_locked(tf_broker *b, uint16_t prefetch, tf_err *err)
{
    amqp_basic_qos(b->conn, b->channel, 0, prefetch, 0);
    return check_rpc(b, "basic.qos", err);
}

int tf_broker_qos(tf_broker *b, uint16_t prefetch, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = qos_locked(b, prefetch, err);
    broker_unlock(b);
    return rc;
}

static int consume_locked(tf_broker *b, const char *queue, tf_err *err)
{
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(b->conn, b->channel,
                                                     amqp_cstring_bytes(queue), amqp_empty_bytes,
                                                     0, 0, 0, amqp_empty_table);
    if (!ok)
        return check_rpc(b, "basic.consume", err);
    amqp_bytes_free(b->consumer_tag);
    b->consumer_tag = amqp_bytes_malloc_dup(ok->consumer_tag);
    return 0;
}

int tf_broker_consume(tf_broker *b, const char *queue, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = consume_locked(b, queue, err);
    broker_unlock(b);
    return rc;
}

static int cancel_locked(tf_broker *b, tf_err *err)
{
    if (!b->consumer_tag.bytes)
        return 0;
    /* Sent without waiting for cancel-ok: deliveries already in flight may still arrive
     * before it, and tf_broker_next hands them out as usual. */
    amqp_basic_cancel_t req;
    req.consumer_tag = b->consumer_tag;
    req.nowait = 1;
    if (amqp_send_method(b->conn, b->channel, AMQP_BASIC_CANCEL_METHOD, &req) != AMQP_STATUS_OK) {
        b->ok = 0;
        return tf_err_set(err, "basic.cancel failed");
    }
    return 0;
}

int tf_broker_cancel(tf_broker *b, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = cancel_locked(b, err);
    broker_unlock(b);
    return rc;
}

static int next_locked(tf_broker *b, amqp_envelope_t *env, int timeout_ms, tf_err *err)
{
    double deadline = tf_now() + timeout_ms / 1000.0;

    for (;;) {
        struct timeval tv = timeval_of(deadline - tf_now());
        amqp_rpc_reply_t r;
        amqp_frame_t f;
        int rc;

        amqp_maybe_release_buffers(b->conn);
        r = amqp_consume_message(b->conn, env, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL)
            return 1;
        if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
            r.library_error == AMQP_STATUS_TIMEOUT)
            return 0;
        if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
            r.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
            b->ok = 0;
            return tf_amqp_reply_error(r, "consume", err);
        }
        /* Some other frame is next: a close, a consumer cancel, or a stray confirm. */
        rc = wait_frame(b, &f, 0, err);
        if (rc < 0)
            return -1;
        if (rc == 1 && is_close(&f))
            return handle_close(b, &f, err);
        if (rc == 1 && f.frame_type == AMQP_FRAME_METHOD &&
            f.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
            b->ok = 0;
            return tf_err_set(err, "the broker cancelled the consumer (queue deleted?)");
        }
    }
}

int tf_broker_next(tf_broker *b, amqp_envelope_t *env, int timeout_ms, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = next_locked(b, env, timeout_ms, err);
    broker_unlock(b);
    return rc;
}

static int get_locked(tf_broker *b, const char *queue, int no_ack, amqp_envelope_t *env, tf_err *err)
{
    amqp_rpc_reply_t r = amqp_basic_get(b->conn, b->channel, amqp_cstring_bytes(queue), no_ack);
    amqp_basic_get_ok_t *ok;

    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        b->ok = 0;
        return tf_amqp_reply_error(r, "basic.get", err);
    }
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
        return 0;
    ok = r.reply.decoded;
    memset(env, 0, sizeof(*env));
    env->channel = b->channel;
    env->delivery_tag = ok->delivery_tag;
    env->redelivered = ok->redelivered;
    env->exchange = amqp_bytes_malloc_dup(ok->exchange);
    env->routing_key = amqp_bytes_malloc_dup(ok->routing_key);
    r = amqp_read_message(b->conn, b->channel, &env->message, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_bytes_free(env->exchange);
        amqp_bytes_free(env->routing_key);
        memset(env, 0, sizeof(*env));
        b->ok = 0;
        return tf_amqp_reply_error(r, "basic.get body", err);
    }
    return 1;
}

int tf_broker_get(tf_broker *b, const char *queue, int no_ack, amqp_envelope_t *env, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = get_locked(b, queue, no_ack, env, err);
    broker_unlock(b);
    return rc;
}

static int ack_locked(tf_broker *b, uint64_t tag, int multiple, tf_err *err)
{
    int rc = amqp_basic_ack(b->conn, b->channel, tag, multiple);
    if (rc != AMQP_STATUS_OK) {
        b->ok = 0;
        return tf_err_set(err, "ack failed: %s", amqp_error_string2(rc));
    }
    return 0;
}

int tf_broker_ack(tf_broker *b, uint64_t tag, int multiple, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = ack_locked(b, tag, multiple, err);
    broker_unlock(b);
    return rc;
}

static int nack_locked(tf_broker *b, uint64_t tag, int multiple, int requeue, tf_err *err)
{
    int rc = amqp_basic_nack(b->conn, b->channel, tag, multiple, requeue);
    if (rc != AMQP_STATUS_OK) {
        b->ok = 0;
        return tf_err_set(err, "nack failed: %s", amqp_error_string2(rc));
    }
    return 0;
}

int tf_broker_nack(tf_broker *b, uint64_t tag, int multiple, int requeue, tf_err *err)
{
    int rc;

    broker_lock(b);
    rc = nack_locked(b, tag, multiple, requeue, err);
    broker_unlock(b);
    return rc;
}

const amqp_field_value_t *tf_amqp_header(const amqp_basic_properties_t *props, const char *name)
{
    size_t len = strlen(name);

    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (e->key.len == len && memcmp(e->key.bytes, name, len) == 0)
            return &e->value;
    }
    return NULL;
}

int tf_amqp_field_int(const amqp_field_value_t *v, long long *out)
{
    if (!v)
        return -1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 0;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 0;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 0;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 0;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 0;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 0;
    case AMQP_FIELD_KIND_I64: *out = (long long)v->value.i64; return 0;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: *out = (long long)v->value.u64; return 0;
    default: return -1;
    }
}
