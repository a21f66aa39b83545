/*
 * wal_harness.h - what the capture wal tests share: tracking the example table in wal mode,
 * waiting until the slot's confirmed position passed the database's current WAL position
 * (everything written so far is in the broker), and reading the queue back as decoded
 * events for exact accounting (distinct ids, counts by type, commit order per document).
 */
#ifndef TF_WAL_HARNESS_H
#define TF_WAL_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

typedef struct wal_got {
    int64_t id, version;
    char type[8];
    char doc[24];
    char title[64];
    char skills[64];
    int has_skills;
    size_t description_len;
} wal_got;

/* topicflow.track('public.internships', ..., 'wal'). */
void wal_track_internships(harness *h);
/* 1 when the slot's confirmed position is at or past pg_current_wal_lsn(). */
int wal_caught_up(harness *h);
/* Waits until the slot confirmed the WAL position of now; fails the test after timeout_s. */
void wal_wait_caught_up(harness *h, double timeout_s);
/* Ready messages of topicflow.nmf. */
long long wal_queue_depth(harness *h);
/* Consumes topicflow.nmf into g (queue order) until idle_s without a message. */
size_t wal_drain(harness *h, wal_got *g, size_t cap, double idle_s);
/* g is the event type on document doc with that title (payload key absent: ""). */
int wal_is(const wal_got *g, const char *type, const char *doc, const char *title);
size_t wal_distinct_ids(const wal_got *g, size_t n);
/* Distinct ids of that type. */
size_t wal_count_type(const wal_got *g, size_t n, const char *type);
/* Distinct ids closer than a log record's size to another: rows of one record. */
size_t wal_shared_positions(const wal_got *g, size_t n);
/* Taking each id's first delivery: every document's versions increase in queue order. */
void wal_assert_commit_order(const wal_got *g, size_t n);
/* COPY n rows (code, body) into the table jobs. */
void wal_copy_jobs(harness *h, int n);
/* The process's peak resident set (VmHWM) in KiB, 0 when unknown. */
long wal_peak_rss_kb(pid_t pid);

#endif
