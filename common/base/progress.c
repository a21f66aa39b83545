/*
 * progress.c - the progress meter (see progress.h).
 */
#include "base/progress.h"

void tf_progress_init(tf_progress *p, double interval_s, double now)
{
    p->interval_s = interval_s;
    p->last_at = now;
    p->last_count = 0;
}

int tf_progress_due(tf_progress *p, unsigned long long count, double now, double *rate)
{
    double elapsed = now - p->last_at;

    if (elapsed < p->interval_s)
        return 0;
    *rate = elapsed > 0 ? (double)(count - p->last_count) / elapsed : 0.0;
    p->last_at = now;
    p->last_count = count;
    return 1;
}
