/*
 * mgmt.c - one GET /api/queues/<vhost>/<queue> with libcurl, bounded in time (2 s to
 * connect, 5 s in all) and in size, and the JSON answer read with common/json. Over
 * https:// with the AMQP connection's trust settings; never credentials over http:// to a
 * broker reached by amqps://.
 */
#include "mgmt.h"

#include <amqp.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "wire/json.h"

#define MAX_ANSWER (4L << 20)

typedef struct answer {
    char *data;
    size_t len;
} answer;

static size_t on_data(char *ptr, size_t size, size_t n, void *ctx)
{
    answer *a = ctx;
    size_t more = size * n;
    char *p;

    if (a->len + more > (size_t)MAX_ANSWER)
        return 0; /* makes curl fail with a write error */
    p = realloc(a->data, a->len + more + 1);
    if (!p)
        return 0;
    memcpy(p + a->len, ptr, more);
    a->data = p;
    a->len += more;
    a->data[a->len] = '\0';
    return more;
}

/* 1 when the authority of url (between "//" and the next '/') holds user info. */
static int has_userinfo(const char *url)
{
    const char *p = strstr(url, "//"), *end;

    if (!p)
        return 0;
    p += 2;
    end = strchr(p, '/');
    if (!end)
        end = p + strlen(p);
    return memchr(p, '@', (size_t)(end - p)) != NULL;
}

/* The AMQP connection's trust settings for HTTPS (curl's default store without a CA file). */
static void use_tls(CURL *curl, const tf_amqp_tls *tls)
{
    if (!tls)
        return;
    if (tls->cacert && *tls->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, tls->cacert);
    if (tls->cert && *tls->cert) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, tls->cert);
        curl_easy_setopt(curl, CURLOPT_SSLKEY, tls->key && *tls->key ? tls->key : tls->cert);
    }
    if (!tls->verify) {
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

int mgmt_queue_unacked(const char *mgmt_url, const char *amqp_url, const tf_amqp_tls *tls,
                       const char *queue, long long *unacked, tf_err *err)
{
    struct amqp_connection_info info;
    char *first = NULL, *base = NULL, *url = NULL, *vhost = NULL, *qname = NULL;
    char redacted[512], curl_why[CURL_ERROR_SIZE] = "";
    answer a = {0};
    CURL *curl = NULL;
    tf_json_object *obj = NULL;
    const tf_json_value *v;
    long code = 0;
    CURLcode cc;
    int rc = -1;

    if (!amqp_url || !*amqp_url)
        return tf_err_set(err, "no RabbitMQ URL");
    first = strndup(amqp_url, strcspn(amqp_url, ","));
    if (!first || amqp_parse_url(first, &info) != AMQP_STATUS_OK) {
        tf_err_set(err, "cannot parse the AMQP URL");
        goto done;
    }
    if (mgmt_url && *mgmt_url)
        base = strdup(mgmt_url);
    else if (asprintf(&base, info.ssl ? "https://%s:15671" : "http://%s:15672", info.host) < 0)
        base = NULL;
    if (!base) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    base[strcspn(base, "?#")] = '\0';
    while (*base && base[strlen(base) - 1] == '/')
        base[strlen(base) - 1] = '\0';
    tf_log_redact_url(base, redacted, sizeof(redacted));
    if (strncasecmp(base, "https://", 8) != 0 && strncasecmp(base, "http://", 7) != 0) {
        tf_err_set(err, "management URL %s is neither http:// nor https://", redacted);
        goto done;
    }
    if (info.ssl && strncasecmp(base, "https://", 8) != 0) {
        tf_err_set(err, "not sending the RabbitMQ credentials in clear to %s while AMQP uses "
                        "TLS (amqps://): give an https:// --management-url", redacted);
        goto done;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(curl = curl_easy_init())) {
        tf_err_set(err, "cannot initialise libcurl");
        goto done;
    }
    vhost = curl_easy_escape(curl, info.vhost, 0);
    qname = curl_easy_escape(curl, queue, 0);
    if (!vhost || !qname || asprintf(&url, "%s/api/queues/%s/%s", base, vhost, qname) < 0) {
        url = NULL;
        tf_err_set(err, "out of memory");
        goto done;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_why);
    use_tls(curl, tls);
    if (!has_userinfo(base)) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, info.user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, info.password);
    }
    cc = curl_easy_perform(curl);
    if (cc != CURLE_OK) {
        tf_err_set(err, "management API %s: %s", redacted,
                   curl_why[0] ? curl_why : curl_easy_strerror(cc));
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200) {
        tf_err_set(err, "management API %s: HTTP %ld for queue %s%s", redacted, code, queue,
                   code == 401 ? " (credentials refused)" : code == 404 ? " (no such queue)" : "");
        goto done;
    }
    obj = tf_json_object_new();
    if (!obj) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    if (tf_json_parse_object(obj, a.data ? a.data : "", a.len, err) < 0) {
        tf_err_prefix(err, "management API %s: unreadable answer", redacted);
        goto done;
    }
    v = tf_json_get(obj, "messages_unacknowledged");
    if (!v || v->kind != TF_JSON_NUMBER) {
        tf_err_set(err, "management API %s: no statistics for queue %s yet", redacted, queue);
        goto done;
    }
    *unacked = strtoll(v->text, NULL, 10);
    rc = 0;
done:
    tf_json_object_free(obj);
    if (vhost)
        curl_free(vhost);
    if (qname)
        curl_free(qname);
    if (curl) {
        curl_easy_cleanup(curl);
        curl_global_cleanup();
    }
    free(a.data);
    free(url);
    free(base);
    free(first);
    return rc;
}
