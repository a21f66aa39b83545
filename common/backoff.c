/*
 * backoff.c - delays for retry loops: exponential growth, a cap, and jitter in the upper
 * half of the window (never zero, so a tight reconnect loop cannot spin).
 */
#include "backoff.h"

void tf_backoff_init(tf_backoff *b, double base_s, double cap_s, uint64_t seed)
{
    b->base_s = base_s;
    b->cap_s = cap_s;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

static double next_unit(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) / (double)(1ULL << 53);
}

double tf_backoff_next(tf_backoff *b)
{
    double ceiling = b->base_s;

    for (unsigned i = 0; i < b->attempt && ceiling < b->cap_s; i++)
        ceiling *= 2;
    if (ceiling > b->cap_s)
        ceiling = b->cap_s;
    b->attempt++;
    return ceiling * (0.5 + 0.5 * next_unit(&b->rng));
}

void tf_backoff_reset(tf_backoff *b)
{
    b->attempt = 0;
}
