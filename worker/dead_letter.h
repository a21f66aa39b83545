/*
 * dead_letter.h - sending a message the worker can never process to topicflow.dlx, with
 * its original routing key and properties and a header x-topicflow-error saying why.
 * Uses its own connection in confirm mode: the original is acked only after the broker
 * confirmed the dead letter, so a crash in between duplicates, never loses.
 */
#ifndef TF_DEAD_LETTER_H
#define TF_DEAD_LETTER_H

#include <amqp.h>

#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/error.h"

typedef struct dead_letter dead_letter;

dead_letter *dead_letter_new(void);
void dead_letter_free(dead_letter *d);

/* Queue a dead letter for env (published at once, confirmed by dead_letter_flush). */
int dead_letter_add(dead_letter *d, tf_broker *b, const amqp_envelope_t *env, const char *reason,
                    tf_err *err);

/* Wait for the confirms of everything added since the last flush. 0 when all were acked;
 * -1 otherwise (the originals must not be acked). */
int dead_letter_flush(dead_letter *d, tf_broker *b, double timeout_s, tf_err *err);

#endif
