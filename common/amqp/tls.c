/*
 * tls.c - amqps:// sockets. rabbitmq-c creates one SSL_CTX per socket and leaves its trust
 * store empty unless given a CA file, so without --amqp-cacert nothing would verify: we load
 * the system's default paths instead. Its own host check (DNS names only) is replaced by
 * OpenSSL's, set on the SSL_CTX before the handshake, so that the failure lands in the
 * verification result rabbitmq-c checks, and a callback records which check failed.
 */
#include "tls.h"

#include <amqp_ssl_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Runs for every certificate OpenSSL checks. The context's mode stays SSL_VERIFY_NONE (as
 * rabbitmq-c sets it), so the handshake completes and rabbitmq-c rejects a failed result;
 * returning preverify_ok stops the check at the first failure, the one worth reporting. */
static int on_verify(int preverify_ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    tf_tls_check *check = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;

    if (!preverify_ok && check && !check->first_error)
        check->first_error = X509_STORE_CTX_get_error(store);
    return preverify_ok;
}

/* The reason at the head of this thread's OpenSSL error queue, or fallback. */
static const char *openssl_reason(const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    return r ? r : fallback;
}

/* 0 when the file named by `flag` can be read; OpenSSL would only say "system lib". */
static int readable(const char *path, const char *flag, tf_err *err)
{
    if (access(path, R_OK) == 0)
        return 0;
    return tf_err_set(err, "cannot read %s (%s): %s", path, flag, strerror(errno));
}

static int expect_host(SSL_CTX *ctx, const char *host, tf_err *err)
{
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);

    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    /* An address literal is matched against the certificate's IP addresses, a name
     * against its DNS names. */
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1 ||
        X509_VERIFY_PARAM_set1_host(param, host, 0) == 1)
        return 0;
    return tf_err_set(err, "cannot check the broker's certificate for host %s", host);
}

amqp_socket_t *tf_tls_socket_new(amqp_connection_state_t conn, const char *host,
                                 const tf_amqp_tls *tls, tf_tls_check *check, tf_err *err)
{
    static const tf_amqp_tls defaults = {NULL, NULL, NULL, 1};
    amqp_socket_t *s;
    SSL_CTX *ctx;

    if (!tls)
        tls = &defaults;
    memset(check, 0, sizeof(*check));
    check->cacert = tls->cacert && *tls->cacert ? tls->cacert : NULL;
    check->has_cert = tls->cert && *tls->cert;
    if (tls->key && *tls->key && !check->has_cert) {
        tf_err_set(err, "--amqp-key %s is set without --amqp-cert", tls->key);
        return NULL;
    }
    if ((check->cacert && readable(check->cacert, "--amqp-cacert", err) < 0) ||
        (check->has_cert && readable(tls->cert, "--amqp-cert", err) < 0) ||
        (tls->key && *tls->key && readable(tls->key, "--amqp-key", err) < 0))
        return NULL;
    /* The socket belongs to conn from here on: amqp_destroy_connection frees it. */
    s = amqp_ssl_socket_new(conn);
    if (!s) {
        tf_err_set(err, "cannot create a TLS socket");
        return NULL;
    }
    ctx = amqp_ssl_socket_get_context(s);
    ERR_clear_error();
    if (check->cacert) {
        if (amqp_ssl_socket_set_cacert(s, check->cacert) != AMQP_STATUS_OK) {
            tf_err_set(err, "cannot load CA certificates from %s (--amqp-cacert): %s",
                       check->cacert, openssl_reason("not a PEM certificate file"));
            return NULL;
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        tf_err_set(err, "cannot load the system trust store: %s", openssl_reason("unknown error"));
        return NULL;
    }
    if (check->has_cert) {
        const char *key = tls->key && *tls->key ? tls->key : tls->cert;
        if (amqp_ssl_socket_set_key(s, tls->cert, key) != AMQP_STATUS_OK) {
            tf_err_set(err, "cannot load the client certificate %s with key %s: %s", tls->cert,
                       key, openssl_reason("not a PEM certificate and key"));
            return NULL;
        }
    }
    amqp_ssl_socket_set_verify_hostname(s, 0); /* OpenSSL checks it, see the top */
    amqp_ssl_socket_set_verify_peer(s, tls->verify ? 1 : 0);
    if (tls->verify && expect_host(ctx, host, err) < 0)
        return NULL;
    SSL_CTX_set_app_data(ctx, check);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, on_verify);
    return s;
}

void tf_tls_open_begin(tf_tls_check *check)
{
    check->first_error = 0;
    ERR_clear_error();
}

const char *tf_tls_error(int status, const tf_tls_check *check, const char *host, char *buf,
                         size_t size)
{
    long e = check->first_error;
    const char *why = e ? X509_verify_cert_error_string(e) : "no certificate";

    switch (status) {
    case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
    case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
        if (e == X509_V_ERR_HOSTNAME_MISMATCH || e == X509_V_ERR_IP_ADDRESS_MISMATCH)
            snprintf(buf, size, "certificate verify failed (%s: the certificate is not for %s)",
                     why, host);
        else if (e)
            snprintf(buf, size, "certificate verify failed (%s; trusting %s%s)", why,
                     check->cacert ? "--amqp-cacert " : "the system trust store",
                     check->cacert ? check->cacert : "");
        else
            snprintf(buf, size, "certificate verify failed (%s)", why);
        break;
    case AMQP_STATUS_SSL_CONNECTION_FAILED:
    case AMQP_STATUS_SSL_ERROR:
        /* Whether OpenSSL has read the server's alert yet depends on timing (TLS 1.3 sends
         * it after the client's Finished): name the likely cause either way. */
        if (check->has_cert)
            snprintf(buf, size, "TLS handshake failed (%s)",
                     openssl_reason("not a TLS port, or the client certificate was refused"));
        else
            snprintf(buf, size, "TLS handshake failed (%s; none given with --amqp-cert, and a"
                     " client certificate is required if the broker asks for one)",
                     openssl_reason("not a TLS port"));
        break;
    default:
        snprintf(buf, size, "%s", amqp_error_string2(status));
    }
    return buf;
}
