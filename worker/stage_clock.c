/*
 * stage_clock.c - the batch stage account and the --trace lines (see stage_clock.h).
 */
#include "stage_clock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/lifecycle.h"

static const char *const names[STAGE_N] = {
    [STAGE_FILL] = "fill",     [STAGE_TEXT] = "text",         [STAGE_RESOLVE] = "resolve",
    [STAGE_SYNC] = "sync",     [STAGE_LOCK] = "lock",
    [STAGE_READ] = "read",     [STAGE_FOLD] = "fold",         [STAGE_UPSERT] = "upsert",
    [STAGE_DELTA] = "delta",   [STAGE_DELTA_SQL] = "delta_sql", [STAGE_RECORD] = "record",
    [STAGE_COMMIT] = "commit", [STAGE_ACK] = "ack",
};

static const char *const groups[STAGE_N] = {
    [STAGE_FILL] = "broker",  [STAGE_TEXT] = "text",  [STAGE_RESOLVE] = "pg",
    [STAGE_SYNC] = "pg",      [STAGE_LOCK] = "pg",
    [STAGE_READ] = "pg",      [STAGE_FOLD] = "model", [STAGE_UPSERT] = "pg",
    [STAGE_DELTA] = "model",  [STAGE_DELTA_SQL] = "pg", [STAGE_RECORD] = "pg",
    [STAGE_COMMIT] = "pg",    [STAGE_ACK] = "broker",
};

const char *stage_name(stage_id s)
{
    return s < STAGE_N ? names[s] : "?";
}

const char *stage_group(stage_id s)
{
    return s < STAGE_N ? groups[s] : "?";
}

void stage_clock_start(stage_clock *c, double now)
{
    memset(c, 0, sizeof(*c));
    c->mark = now;
}

void stage_clock_lap(stage_clock *c, stage_id s)
{
    double now;

    if (!c || s >= STAGE_N)
        return;
    now = tf_now();
    c->sec[s] += now - c->mark;
    c->mark = now;
}

struct stage_trace {
    FILE *f;
};

stage_trace *stage_trace_open(const char *path, const char **why)
{
    stage_trace *t = calloc(1, sizeof(*t));

    if (!t) {
        *why = "out of memory";
        return NULL;
    }
    t->f = fopen(path, "a");
    if (!t->f) {
        *why = strerror(errno);
        free(t);
        return NULL;
    }
    return t;
}

void stage_trace_close(stage_trace *t)
{
    if (!t)
        return;
    fclose(t->f);
    free(t);
}

double stage_wall_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void stage_trace_batch(stage_trace *t, double recv_wall, double end_wall, const stage_clock *c,
                       const int64_t *event_ids, size_t n)
{
    tf_buf line;

    if (!t)
        return;
    tf_buf_init(&line);
    tf_buf_printf(&line, "batch recv=%.6f end=%.6f events=%zu ids=", recv_wall, end_wall, n);
    for (size_t i = 0; i < n; i++)
        tf_buf_printf(&line, i ? ",%lld" : "%lld", (long long)event_ids[i]);
    for (int s = 0; s < STAGE_N; s++)
        tf_buf_printf(&line, " %s=%.6f", names[s], c->sec[s]);
    tf_buf_append(&line, "\n", 1);
    if (tf_buf_ok(&line)) {
        fputs(line.p, t->f);
        fflush(t->f);
    }
    tf_buf_free(&line);
}

void stage_trace_upkeep(stage_trace *t, const char *step, double start_wall, double seconds)
{
    if (!t)
        return;
    fprintf(t->f, "upkeep step=%s start=%.6f seconds=%.6f\n", step, start_wall, seconds);
    fflush(t->f);
}
