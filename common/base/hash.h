/*
 * hash.h - the one string hash: the text module's and the vocabulary's tables, lock keys.
 * FNV-1a 64-bit: byte-at-a-time is cheap for the short words it is used on, needs no
 * seed, and gives the same value in every process, so a table can be rebuilt anywhere.
 */
#ifndef TF_HASH_H
#define TF_HASH_H

#include <stddef.h>
#include <stdint.h>

#define TF_FNV1A_INIT 0xcbf29ce484222325ULL

/* Continue an FNV-1a hash h over len bytes (start from TF_FNV1A_INIT). The raw value, for
 * keys that must stay the same across releases (the worker's document lock keys). */
static inline uint64_t tf_fnv1a(uint64_t h, const void *p, size_t len)
{
    const unsigned char *s = p;

    for (size_t i = 0; i < len; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* For hash tables: FNV-1a with the high bits folded down, since tables index with the
 * low bits. */
static inline uint64_t tf_hash_bytes(const char *s, size_t len)
{
    uint64_t h = tf_fnv1a(TF_FNV1A_INIT, s, len);

    return h ^ (h >> 29);
}

#endif
