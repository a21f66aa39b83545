/*
 * pgoutput.h - the logical replication stream as topicflow's wal capture reads it: the
 * walsender's CopyData framing ('w' XLogData, 'k' keepalive, the standby status update 'r'
 * we send back) and the messages of the built-in pgoutput plugin, protocol version 1
 * (Begin, Commit, Relation, Insert, Update, Delete, Truncate; others are skipped).
 *
 * Pure and defensive: every integer is network byte order, no length is trusted beyond the
 * bytes present, decoded strings point into the input (not NUL-terminated), and the only
 * memory is the decoder's column storage, sized once for PostgreSQL's column limit.
 */
#ifndef TF_PGOUTPUT_H
#define TF_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "wire/event_codec.h"

#define TF_PGO_MAX_COLUMNS 1664 /* MaxTupleAttributeNumber */
/* PostgreSQL's epoch (2000-01-01) in Unix microseconds: replication timestamps count from it. */
#define TF_PG_EPOCH_UNIX_US 946684800000000LL

/* ---- the CopyData framing ----------------------------------------------------------- */

typedef struct tf_repl_frame {
    char kind;             /* 'w' XLogData or 'k' keepalive */
    uint64_t wal_start;    /* 'w': the WAL position of the data (the change's LSN) */
    uint64_t wal_end;      /* the server's WAL end (sent position) */
    int64_t clock_us;      /* server clock, µs since 2000-01-01 */
    int reply;             /* 'k': the server asks for a status update now */
    const char *data;      /* 'w': the pgoutput message */
    size_t len;
} tf_repl_frame;

/* Parse one CopyData message of START_REPLICATION. 0 ok, -1 with reason. */
int tf_repl_frame_parse(const void *buf, size_t len, tf_repl_frame *f, tf_err *err);

#define TF_REPL_STATUS_LEN 34
/* The standby status update 'r': written, flushed and applied all = lsn; clock_us since
 * 2000-01-01. out must hold TF_REPL_STATUS_LEN bytes. */
void tf_repl_status_update(uint64_t lsn, int64_t clock_us, int reply, unsigned char *out);

/* "16/B374D848" <-> 0x16B374D848. Parse: 0 ok, -1 when not an LSN. */
int tf_lsn_parse(const char *s, uint64_t *lsn);
void tf_lsn_format(uint64_t lsn, char *out, size_t size);

/* ---- pgoutput messages --------------------------------------------------------------- */

typedef struct tf_pgo_value {
    char kind;             /* 'n' NULL, 'u' unchanged TOASTed value (not sent), 't' text */
    tf_str text;
} tf_pgo_value;

typedef struct tf_pgo_tuple {
    size_t n;
    tf_pgo_value *values;  /* decoder storage */
} tf_pgo_tuple;

typedef struct tf_pgo_column {
    tf_str name;
    uint32_t type;         /* type oid */
    int key;               /* part of the replica identity */
} tf_pgo_column;

typedef struct tf_pgo_message {
    char kind;             /* 'B','C','R','I','U','D','T', or 0 for a message we skip */
    /* B */
    uint64_t final_lsn;    /* the commit record's LSN */
    int64_t commit_us;     /* B and C: commit time, µs since 2000-01-01 */
    uint32_t xid;
    /* C */
    uint64_t commit_lsn, end_lsn;
    /* R, I, U, D */
    uint32_t relid;
    /* R */
    tf_str nspname, relname;
    char replident;        /* 'd' default, 'n' nothing, 'f' full, 'i' index */
    size_t n_columns;
    tf_pgo_column *columns; /* decoder storage */
    /* U, D: 'K' old key only, 'O' whole old row, 0 none; I, U: the new row */
    char old_kind;
    tf_pgo_tuple old_row, new_row;
    /* T */
    uint32_t n_truncated;
} tf_pgo_message;

typedef struct tf_pgo_decoder tf_pgo_decoder;

tf_pgo_decoder *tf_pgo_decoder_new(void);
void tf_pgo_decoder_free(tf_pgo_decoder *d);

/* Decode one pgoutput message. m's arrays and strings stay valid until the next call on d
 * and while data lives. 0 ok, -1 with reason (truncated, a length beyond the input, more
 * columns than PostgreSQL allows, an unknown tuple value kind). */
int tf_pgo_decode(tf_pgo_decoder *d, const void *data, size_t len, tf_pgo_message *m,
                  tf_err *err);

/* ---- a change as topicflow events ------------------------------------------------------ */

/* Where a tracked table's columns sit in its pgoutput relation. */
typedef struct tf_pgo_table {
    tf_str source, aggregate;       /* "public.internships", "internship" */
    size_t id_col;                  /* column index of the id */
    size_t n_text;
    size_t text_col[TF_EVENT_MAX_FIELDS];
    tf_str text_name[TF_EVENT_MAX_FIELDS];  /* the payload keys */
    int text_is_array[TF_EVENT_MAX_FIELDS]; /* arrays are joined with ", " as in outbox mode */
} tf_pgo_table;

/* Event ids and versions of wal mode: a change at WAL position lsn that yields its k-th
 * message there (k < the record's size in bytes, so ids never reach the next record's).
 * At and above 2^62: never an outbox id or an outbox version (WAL positions stay far below
 * 2^62, 4 EiB of WAL; the sum is taken unsigned so that no input overflows). */
#define TF_WAL_ID_BASE (INT64_C(1) << 62)
static inline int64_t tf_wal_event_id(uint64_t lsn, unsigned k)
{
    return (int64_t)(((uint64_t)TF_WAL_ID_BASE + lsn + k) & (uint64_t)INT64_MAX);
}

/* Storage for the events of one change: at most two (a key change is a delete and a
 * create), their payload fields, and the joined text of array values. */
typedef struct tf_pgo_events {
    size_t n;
    tf_event ev[2];
    tf_event_field fields[TF_EVENT_MAX_FIELDS];
    char *joined[TF_EVENT_MAX_FIELDS]; /* owned: arrays joined, freed by tf_pgo_events_clear */
    size_t n_joined;
} tf_pgo_events;

/*
 * The events an Insert, Update or Delete m of table t means, as outbox mode's capture
 * trigger writes them: created with the tracked text columns; deleted with an empty
 * payload; updated only when a tracked column changed (the old row is compared, so the
 * table's replica identity must be FULL); a key change is the old key deleted and the new
 * one created. An unchanged TOASTed value is taken from the old row. The events get ids
 * and versions from lsn and first_k, the messages already made at lsn (a multi-insert
 * record holds several rows; see tf_wal_event_id), and occurred_at from commit_us (µs since
 * 2000-01-01). Strings point into m's input and t. 0 ok (out->n may be 0), -1 with reason
 * (a row without the id, an unchanged TOASTed value without an old row to take it from).
 */
int tf_pgo_change_events(const tf_pgo_message *m, const tf_pgo_table *t, uint64_t lsn,
                         unsigned first_k, int64_t commit_us, tf_pgo_events *out, tf_err *err);
void tf_pgo_events_clear(tf_pgo_events *e);

#endif
