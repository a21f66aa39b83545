/*
 * hash.h - the string hash shared by the text module's tables and the vocabulary.
 * FNV-1a 64-bit: byte-at-a-time is cheap for the short words it is used on, needs no
 * seed, and gives the same value in every process, so a table can be rebuilt anywhere.
 */
#ifndef TF_HASH_H
#define TF_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t tf_hash_bytes(const char *s, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    /* fold the high bits down: tables index with the low bits */
    return h ^ (h >> 29);
}

#endif
