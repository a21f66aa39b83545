/*
 * backoff.h - capped exponential backoff with full jitter, for reconnecting to a server.
 * The state is a small caller-owned struct; the random source is seeded per instance so
 * that several processes restarting together do not retry in lockstep.
 */
#ifndef TF_BACKOFF_H
#define TF_BACKOFF_H

#include <stdint.h>

typedef struct tf_backoff {
    double base_s;     /* first delay ceiling */
    double cap_s;      /* largest delay ceiling */
    unsigned attempt;  /* failures since the last success */
    uint64_t rng;
} tf_backoff;

void tf_backoff_init(tf_backoff *b, double base_s, double cap_s, uint64_t seed);
/* The delay to wait after one more failure: uniform in [ceiling/2, ceiling], ceiling =
 * min(cap, base * 2^attempt). */
double tf_backoff_next(tf_backoff *b);
void tf_backoff_reset(tf_backoff *b);

#endif
