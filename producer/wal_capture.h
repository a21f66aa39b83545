/*
 * wal_capture.h - topicflow-producer --capture wal: reads the database's logical replication
 * slot (pgoutput, publication topicflow_capture) and publishes every change of a table
 * tracked in wal mode as the message outbox mode would send, in commit order. The slot's
 * confirmed position moves past a transaction only once the broker confirmed every message
 * of it and of every transaction before it, so a crash at any instant republishes (the
 * same event ids: the worker's dedup absorbs them) and never loses. Between the slot's frames
 * it also drains topicflow.outbox (replays, rows put back by `topicflow outbox retry`) through
 * the outbox mode's statements, so a wal deployment runs this one producer.
 */
#ifndef TF_WAL_CAPTURE_H
#define TF_WAL_CAPTURE_H

#include <stddef.h>

#include "producer_metrics.h"
#include "amqp/topology.h"
#include "base/config.h"

typedef struct wal_capture_config {
    const char *pg_url, *amqp_url;
    const tf_amqp_tls *amqp_tls;
    int heartbeat_s;
    const tf_topology *topology;
    double confirm_timeout_s, reconnect_max_s;
    size_t window;          /* messages awaiting the broker's confirms at most */
    size_t max_message;
    const char *slot;       /* NULL or "": topicflow.capture_slot() of the database */
    long warn_retained;     /* warn when the slot retains more WAL than this (bytes) */
    /* the outbox (replays, retried rows), drained between the slot's frames */
    int outbox_batch;       /* rows locked and published at a time */
    double poll_s;          /* looked at least this often (and on NOTIFY when notify) */
    int notify;
    double retention_s;     /* published outbox rows older than this are deleted (0: kept) */
} wal_capture_config;

/* Runs until SIGTERM/SIGINT (then settles what is in flight and reports it to the slot).
 * 0 on a clean stop. */
int wal_capture_run(const wal_capture_config *cfg, producer_metrics *metrics);

#endif
