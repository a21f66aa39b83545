/*
 * strmap.h - the one string-keyed hash table: open addressing with linear probing, kept at
 * most half full, keys (and any bytes a user stores beside them) in one arena so that an
 * entry costs no allocation of its own. A slot carries the key's hash, so growing never
 * rehashes a string. The text module's lexicon and word cache and the vocabulary use it;
 * each gives the slot's val / val_off its own meaning.
 *
 * Arena offsets are 32-bit: a table holds at most 4 GiB of bytes.
 */
#ifndef TF_STRMAP_H
#define TF_STRMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct tf_strmap_slot {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0 marks an empty slot: keys are never empty */
    uint32_t val_off;          /* the user's: e.g. the offset of a value stored in the arena */
    int32_t val;               /* the user's: e.g. an id */
} tf_strmap_slot;

typedef struct tf_strmap {
    tf_strmap_slot *slots;
    size_t mask, count;
    char *arena;
    size_t arena_len, arena_cap;
} tf_strmap;

/* slots must be a power of two. 0, or -1 out of memory (m is then safe to free). */
int tf_strmap_init(tf_strmap *m, size_t slots, size_t arena_cap);
void tf_strmap_free(tf_strmap *m);
/* Forget every entry and every stored byte, keeping the memory. */
void tf_strmap_clear(tf_strmap *m);

/* The slot holding key (hash h), or the empty slot where it belongs. Inline: it is on the
 * tokenizer's and the vocabulary's hot path. The table is never full (the load stays at or
 * below one half), so the probe ends. */
static inline tf_strmap_slot *tf_strmap_find(const tf_strmap *m, uint64_t h, const char *key,
                                             size_t len)
{
    for (size_t i = h & m->mask;; i = (i + 1) & m->mask) {
        tf_strmap_slot *s = &m->slots[i];
        if (!s->key_len)
            return s;
        if (s->hash == h && s->key_len == len && !memcmp(m->arena + s->key_off, key, len))
            return s;
    }
}

/* The slot of key, inserting it when absent (the key's bytes are stored followed by a NUL,
 * val and val_off are 0); the table grows first when it would pass half full. NULL when
 * out of memory, or when len is 0 or does not fit 32 bits. */
tf_strmap_slot *tf_strmap_put(tf_strmap *m, uint64_t h, const char *key, size_t len);

/* Append len bytes to the arena (growing it). Their offset, or -1 out of memory. */
int64_t tf_strmap_store(tf_strmap *m, const char *bytes, size_t len);

/* The bytes at an arena offset (a key_off or a stored value's offset). */
static inline const char *tf_strmap_at(const tf_strmap *m, uint32_t off)
{
    return m->arena + off;
}

#endif
