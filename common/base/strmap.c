/*
 * strmap.c - the string-keyed hash table (see strmap.h).
 */
#include "base/strmap.h"

#include <stdlib.h>
#include <string.h>

int tf_strmap_init(tf_strmap *m, size_t slots, size_t arena_cap)
{
    memset(m, 0, sizeof(*m));
    m->slots = calloc(slots, sizeof(*m->slots));
    m->arena = malloc(arena_cap ? arena_cap : 1);
    if (!m->slots || !m->arena)
        return -1;
    m->mask = slots - 1;
    m->arena_cap = arena_cap ? arena_cap : 1;
    return 0;
}

void tf_strmap_free(tf_strmap *m)
{
    free(m->slots);
    free(m->arena);
    memset(m, 0, sizeof(*m));
}

void tf_strmap_clear(tf_strmap *m)
{
    memset(m->slots, 0, (m->mask + 1) * sizeof(*m->slots));
    m->count = 0;
    m->arena_len = 0;
}

static int grow(tf_strmap *m)
{
    size_t n = (m->mask + 1) * 2;
    tf_strmap_slot *old = m->slots, *fresh = calloc(n, sizeof(*fresh));

    if (!fresh)
        return -1;
    for (size_t i = 0; i <= m->mask; i++) {
        if (!old[i].key_len)
            continue;
        size_t j = old[i].hash & (n - 1);
        while (fresh[j].key_len)
            j = (j + 1) & (n - 1);
        fresh[j] = old[i];
    }
    m->slots = fresh;
    m->mask = n - 1;
    free(old);
    return 0;
}

int64_t tf_strmap_store(tf_strmap *m, const char *bytes, size_t len)
{
    if (m->arena_len + len > m->arena_cap) {
        size_t cap = m->arena_cap * 2 + len;
        char *a;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        if (m->arena_len + len > cap)
            return -1;
        a = realloc(m->arena, cap);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = cap;
    }
    memcpy(m->arena + m->arena_len, bytes, len);
    m->arena_len += len;
    return (int64_t)(m->arena_len - len);
}

tf_strmap_slot *tf_strmap_put(tf_strmap *m, uint64_t h, const char *key, size_t len)
{
    tf_strmap_slot *s;
    int64_t off;

    if (!len || len >= UINT32_MAX)
        return NULL;
    s = tf_strmap_find(m, h, key, len);
    if (s->key_len)
        return s;
    if ((m->count + 1) * 2 > m->mask + 1) {
        if (grow(m) < 0)
            return NULL;
        s = tf_strmap_find(m, h, key, len);
    }
    off = tf_strmap_store(m, key, len);
    if (off < 0 || tf_strmap_store(m, "", 1) < 0)
        return NULL;
    s->hash = h;
    s->key_off = (uint32_t)off;
    s->key_len = (uint32_t)len;
    s->val_off = 0;
    s->val = 0;
    m->count++;
    return s;
}
