/*
 * tls.h - the TLS side of amqps:// connections, private to the amqp layer: a rabbitmq-c SSL
 * socket set up from the shared --amqp-cacert/--amqp-cert/--amqp-key/--amqp-verify settings,
 * and a failed open told in words ("certificate verify failed (hostname mismatch: …)").
 *
 * Verification is OpenSSL's own (chain and host name, RFC 6125, DNS names and IP addresses),
 * not rabbitmq-c 0.11's host check, which knows DNS names only and cannot say why it failed.
 */
#ifndef TF_AMQP_TLS_H
#define TF_AMQP_TLS_H

#include <amqp.h>
#include <stddef.h>

#include "base/config.h"
#include "base/error.h"

/* What a TLS connection's certificate check saw; owned by the connection, which must keep
 * it at a fixed address while its socket lives (OpenSSL's callback writes into it). */
typedef struct tf_tls_check {
    long first_error; /* X509_V_ERR_* of the first failed check, 0 when none failed */
    const char *cacert; /* the trust source, for the message: NULL is the system store */
    int has_cert;       /* a client certificate is presented */
} tf_tls_check;

/* A new TLS socket on conn for host, trusting tls->cacert (else the system trust store),
 * presenting tls->cert/key when set, verifying chain and host name unless tls->verify is 0.
 * NULL tls means the defaults. NULL with the reason on failure (a CA or key file that does
 * not load fails here, before any connection). */
amqp_socket_t *tf_tls_socket_new(amqp_connection_state_t conn, const char *host,
                                 const tf_amqp_tls *tls, tf_tls_check *check, tf_err *err);

/* Call right before amqp_socket_open*: clears this thread's OpenSSL error queue, so that
 * tf_tls_error reports this connection's failure only. */
void tf_tls_open_begin(tf_tls_check *check);

/* The reason a TLS connection failed with rabbitmq-c status `status` in its open or its
 * login (a TLS 1.3 server refuses a client certificate only then), in one line. */
const char *tf_tls_error(int status, const tf_tls_check *check, const char *host, char *buf,
                         size_t size);

#endif
