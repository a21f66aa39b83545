/*
 * mgmt.h - the RabbitMQ management HTTP API, asked for the one number AMQP does not give:
 * how many of a queue's messages are delivered but not yet acknowledged. The API's figures
 * are sampled by the broker (every collect_statistics_interval, 5 s by default), so they
 * may lag by that much.
 */
#ifndef TF_CLI_MGMT_H
#define TF_CLI_MGMT_H

#include "base/config.h"
#include "base/error.h"

/*
 * messages_unacknowledged of queue in the vhost of amqp_url (the first of a comma-separated
 * list). mgmt_url is http[s]://[user:pass@]host:port; NULL means the AMQP host at
 * https://…:15671 when the AMQP URL is amqps://, else http://…:15672. Without credentials
 * in mgmt_url, the AMQP URL's are used. HTTPS trusts, presents and verifies as tls says
 * (the --amqp-* settings). Credentials never go in clear to a TLS broker: with an amqps://
 * AMQP URL, an http:// mgmt_url is refused before any request. 0, or -1 with a reason
 * (which never contains a password).
 */
int mgmt_queue_unacked(const char *mgmt_url, const char *amqp_url, const tf_amqp_tls *tls,
                       const char *queue, long long *unacked, tf_err *err);

#endif
