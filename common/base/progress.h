/*
 * progress.h - the periodic "progress" log line of a long-running program: due every
 * interval, with a rate computed over the time that really passed since the last line (a
 * loop that overslept its interval does not inflate the rate).
 */
#ifndef TF_PROGRESS_H
#define TF_PROGRESS_H

typedef struct tf_progress {
    double interval_s, last_at;
    unsigned long long last_count;
} tf_progress;

/* Start measuring at time now. */
void tf_progress_init(tf_progress *p, double interval_s, double now);

/* 1 when a line is due at time now for a running total `count`: *rate gets the events per
 * second since the last line (0 when nothing happened) and the meter restarts; else 0. */
int tf_progress_due(tf_progress *p, unsigned long long count, double now, double *rate);

#endif
