/*
 * mgmt.h - the RabbitMQ management HTTP API, asked for the one number AMQP does not give:
 * how many of a queue's messages are delivered but not yet acknowledged. The API's figures
 * are sampled by the broker (every collect_statistics_interval, 5 s by default), so they
 * may lag by that much.
 */
#ifndef TF_CLI_MGMT_H
#define TF_CLI_MGMT_H

#include "base/error.h"

/*
 * messages_unacknowledged of queue in the vhost of amqp_url (the first of a comma-separated
 * list). mgmt_url is http[s]://[user:pass@]host:port; NULL means http://<AMQP host>:15672.
 * Without credentials in mgmt_url, the AMQP URL's are used. 0, or -1 with a reason (which
 * never contains a password).
 */
int mgmt_queue_unacked(const char *mgmt_url, const char *amqp_url, const char *queue,
                       long long *unacked, tf_err *err);

#endif
