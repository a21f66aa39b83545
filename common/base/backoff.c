/*
 * backoff.c - delays for retry loops: exponential growth, a cap, and jitter in the upper
 * half of the window (never zero, so a tight reconnect loop cannot spin).
 */
#include "base/backoff.h"

#include "base/rng.h"

void tf_backoff_init(tf_backoff *b, double base_s, double cap_s, uint64_t seed)
{
    b->base_s = base_s;
    b->cap_s = cap_s;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

double tf_backoff_next(tf_backoff *b)
{
    double ceiling = b->base_s;

    for (unsigned i = 0; i < b->attempt && ceiling < b->cap_s; i++)
        ceiling *= 2;
    if (ceiling > b->cap_s)
        ceiling = b->cap_s;
    b->attempt++;
    return ceiling * (0.5 + 0.5 * tf_rng_unit(&b->rng));
}

void tf_backoff_reset(tf_backoff *b)
{
    b->attempt = 0;
}
