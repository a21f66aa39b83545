/*
 * url.h - the --amqp setting: a comma-separated list of amqp[s]://user:pass@host:port/vhost
 * URLs, tried in order. Parsing only, no I/O, so the path a URL takes before any connection
 * is tested and fuzzed alone. Messages show a URL only with its password redacted.
 */
#ifndef TF_AMQP_URL_H
#define TF_AMQP_URL_H

#include <amqp.h>

#include "base/error.h"

typedef struct tf_amqp_url {
    char *buf;                        /* owned copy that info's strings point into */
    struct amqp_connection_info info; /* host, port, vhost, user, password, ssl */
    char redacted[512];               /* the URL as messages and logs show it */
} tf_amqp_url;

/* The next URL of a list being split in place (strtok_r: pass the list first, then NULL;
 * empty elements are skipped), without its leading spaces; NULL after the last. */
char *tf_amqp_url_next(char *list, char **save);

/* Parse url into *u; release it with tf_amqp_url_free, after a failure too. Returns 0, or -1
 * with "invalid AMQP URL '<redacted url>' (...)" or "out of memory" in err. */
int tf_amqp_url_parse(const char *url, tf_amqp_url *u, tf_err *err);
void tf_amqp_url_free(tf_amqp_url *u);

#endif
