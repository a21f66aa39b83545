/*
 * rng.h - the one random generator: SplitMix64 over a caller-owned 64-bit state. Seeded,
 * so that a fit, a sample or a benchmark is the same on every run and in every process;
 * fast and well mixed, which is all its users (jitter, initialisation, test data) need. Not
 * for anything secret.
 */
#ifndef TF_RNG_H
#define TF_RNG_H

#include <stdint.h>

/* The next 64 random bits; advances *state. */
static inline uint64_t tf_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static inline double tf_rng_unit(uint64_t *state)
{
    return (double)(tf_rng_next(state) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, n) for n < 2^32 by multiply-shift (no modulo bias worth measuring). */
static inline uint32_t tf_rng_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(((tf_rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

#endif
