/*
 * url.c - the AMQP URL list of --amqp, split and parsed (amqp_parse_url) without any I/O;
 * the redacted form is made first, so no message can show a password.
 */
#include "amqp/url.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"

char *tf_amqp_url_next(char *list, char **save)
{
    char *url = strtok_r(list, ",", save);

    while (url && *url == ' ')
        url++;
    return url;
}

int tf_amqp_url_parse(const char *url, tf_amqp_url *u, tf_err *err)
{
    memset(u, 0, sizeof(*u));
    tf_log_redact_url(url, u->redacted, sizeof(u->redacted));
    u->buf = strdup(url);
    if (!u->buf)
        return tf_err_set(err, "out of memory");
    if (amqp_parse_url(u->buf, &u->info) != AMQP_STATUS_OK)
        return tf_err_set(err, "invalid AMQP URL '%s' (expected amqp[s]://user:pass@host:port/vhost)",
                          u->redacted);
    return 0;
}

void tf_amqp_url_free(tf_amqp_url *u)
{
    free(u->buf);
    u->buf = NULL;
}
