/*
 * fuzz_amqp_url.c - the path an --amqp value takes before any connection (amqp/url.h): split
 * into URLs at commas, each redacted for messages (base/log.h's tf_log_redact_url, also into
 * a buffer as small as the input's first byte says) and parsed by amqp_parse_url.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "amqp/url.h"
#include "base/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *list = malloc(size + 1), *save = NULL, *url, small[32];
    size_t small_size = size ? data[0] % sizeof(small) + 1 : sizeof(small);
    tf_amqp_url u;
    tf_err err;

    if (!list)
        return 0;
    memcpy(list, data, size);
    list[size] = '\0';
    tf_log_redact_url(list, small, small_size);
    if (strnlen(small, small_size) >= small_size)
        abort(); /* not terminated inside the buffer */
    for (url = tf_amqp_url_next(list, &save); url; url = tf_amqp_url_next(NULL, &save)) {
        if (tf_amqp_url_parse(url, &u, &err) == 0 &&
            (!u.info.host || !u.info.vhost))
            abort();
        if (strnlen(u.redacted, sizeof(u.redacted)) >= sizeof(u.redacted))
            abort();
        tf_amqp_url_free(&u);
    }
    free(list);
    return 0;
}
