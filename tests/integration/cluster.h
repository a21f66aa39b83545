/*
 * cluster.h - test helpers for the three-node RabbitMQ cluster of `scripts/dev-services
 * cluster` (ctest fixture "cluster"): the test's vhost on it, URL lists starting at a given
 * node, killing and restarting nodes, and what the cluster reports about a queue's replicas
 * and the clients' connections. Nodes are numbered 1..CLUSTER_NODES as in dev-services; a set
 * of nodes is a bit mask, node n being bit n-1.
 */
#ifndef TF_CLUSTER_H
#define TF_CLUSTER_H

#include "harness.h"

#define CLUSTER_NODES 3
#define CLUSTER_NODE(n) (1 << ((n) - 1))
#define CLUSTER_ALL ((1 << CLUSTER_NODES) - 1)

/* Loads <state>/cluster/env, creates vhost tf_<name> on the cluster (vhosts are cluster-wide)
 * and points h->amqp_url at it: every node, node 1 first. Call after harness_setup_pg. */
void cluster_setup(harness *h);

/* The test vhost's URLs starting at node `first` and wrapping around, comma-separated, as
 * compose/docker-compose.cluster.yml gives them (static storage, overwritten by the next call). */
const char *cluster_urls(harness *h, int first);

/* SIGKILLs node n (its beam and launcher); fails the test on error. */
void cluster_kill(int n);
/* Starts node n again on its data and ports; returns once it has booted, that is rejoined. */
void cluster_restart(int n);

/* Starts every node that is down (idempotent): a test that fails between a kill and its
 * restart must not leave the next test a two-node cluster. Fails the test on error. */
void cluster_start_all(void);

/* The nodes named in `column` (leader, members or online) of queue's line in the test vhost's
 * list_queues, asked of the first node that answers; -1 when none answers or the queue is
 * unknown. */
int cluster_queue_nodes(harness *h, const char *queue, const char *column);
/* Polls cluster_queue_nodes until it returns want or timeout_s passes; returns the last value. */
int cluster_wait_queue_nodes(harness *h, const char *queue, const char *column, int want,
                             double timeout_s);

/* Connections to the test vhost that node n serves (told apart by the server port). */
int cluster_connections(harness *h, int n);

#endif
