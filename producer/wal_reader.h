/*
 * wal_reader.h - the producer's logical replication connection: it starts streaming the
 * slot with pgoutput for one publication, hands over the CopyData frames in order (changes
 * and keepalives), and reports back the position up to which everything is safely in the
 * broker (the slot's confirmed flush position: the server may recycle WAL before it and
 * resends everything after it on the next start).
 *
 * Frames point into a buffer the reader owns until the next wal_reader_next.
 */
#ifndef TF_WAL_READER_H
#define TF_WAL_READER_H

#include <stdint.h>

#include "base/error.h"
#include "wire/pgoutput.h"

typedef struct wal_reader wal_reader;

/* SQLSTATE of START_REPLICATION on a slot another process reads (object_in_use). */
#define WAL_SLOT_IN_USE "55006"

/* Connect (replication=database), create the slot if it is missing (logged: changes
 * committed before that are not captured), and start streaming from the slot's confirmed
 * position. NULL with reason; err->code is WAL_SLOT_IN_USE when another reader has it. */
wal_reader *wal_reader_open(const char *pg_url, const char *slot, const char *publication,
                            tf_err *err);
void wal_reader_close(wal_reader *r);

/* Wait up to timeout_s for the next frame. 1 with *f filled, 0 nothing arrived, -1 the
 * stream ended or broke (reason in err). */
int wal_reader_next(wal_reader *r, double timeout_s, tf_repl_frame *f, tf_err *err);

/* Everything before lsn is in the broker: report it with the next status update (never
 * moves backwards). */
void wal_reader_confirm(wal_reader *r, uint64_t lsn);
uint64_t wal_reader_confirmed(const wal_reader *r);

/* Send a status update now when `force` (the server asked), when the confirmed position
 * moved, or when the last one is older than the status interval. 0 or -1 with reason. */
int wal_reader_status(wal_reader *r, int force, tf_err *err);

/* Status updates sent so far (for tests and logs). */
unsigned long wal_reader_updates_sent(const wal_reader *r);

#endif
