/*
 * lifecycle.h - what a long-running topicflow program needs for its life: the stop flag
 * that SIGTERM and SIGINT set (the only process-wide state besides the log level), a
 * monotonic clock, and sleeping that ends early when a stop is requested.
 */
#ifndef TF_LIFECYCLE_H
#define TF_LIFECYCLE_H

/* SIGTERM/SIGINT request a stop (no SA_RESTART: blocking waits return early); SIGPIPE is
 * ignored (a closed socket is an error return, not a death). */
void tf_signals_install(void);
int tf_stop_requested(void);

/* Seconds on the monotonic clock. */
double tf_now(void);

/* Sleep up to s seconds, in slices of at most 100 ms, returning once a stop is requested. */
void tf_sleep_interruptible(double s);

#endif
