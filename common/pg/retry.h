/*
 * retry.h - the one retry policy: what a failure means for the work that hit it.
 *
 * Every program asks this one function, so that the producer, the worker and the CLI never
 * disagree on which failures are worth waiting out and which condemn an event. It looks
 * only at the error's code (a PostgreSQL SQLSTATE, or one of topicflow's own codes below)
 * and whether the connection survived; it does no I/O.
 */
#ifndef TF_RETRY_H
#define TF_RETRY_H

#include "base/error.h"

typedef enum {
    /* Worth the same work again after a pause: the connection or server is gone or going,
     * a lock, deadlock or serialization conflict, resources short, a race lost to another
     * worker (23505), the model moved under the batch (TF_CODE_STALE_MODEL). */
    TF_FAILURE_TRANSIENT = 0,
    /* This event will be refused every time: a data exception (22), an integrity violation
     * other than the lost race (23), a program limit such as a row too large (54). Only
     * this class may set an event aside (dead letter). */
    TF_FAILURE_PERMANENT = 1,
    /* Neither: our own code failed (no code: out of memory, a bug) or the deployment is
     * wrong (missing schema, privileges, a syntax error after an upgrade). Not the
     * event's fault: hold it and retry with backoff, loudly. */
    TF_FAILURE_OURS = 2,
} tf_failure_class;

/* topicflow's own codes in tf_err.code (never a valid SQLSTATE: those are five of
 * [0-9A-Z], ours start with "TF"). */
#define TF_CODE_STALE_MODEL "TFMDL" /* a refit changed the model's epoch during the batch */

/* connection_ok: 0 when the session that failed is no longer usable (PQstatus is not
 * CONNECTION_OK), which makes any failure transient. */
tf_failure_class tf_failure_classify(const tf_err *err, int connection_ok);

/* "transient", "permanent" or "ours", for logs. */
const char *tf_failure_name(tf_failure_class c);

#endif
