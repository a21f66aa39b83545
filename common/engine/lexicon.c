/*
 * lexicon.c - the bilingual lexicon table and its builder (lexicon.h). The table is one
 * tf_strmap: Arabic term -> the offset of its concept in the same arena.
 */
#include "engine/lexicon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/hash.h"
#include "base/strmap.h"

/* An entry's translations sit in the arena one after another, each NUL-terminated, the
 * table's first choice first, and end with an empty string: "design\0determin\0\0". */
struct tf_lexicon {
    tf_strmap map; /* key: Arabic term; val_off: its first translation; val: that one's length */
    tf_strmap translations; /* key: every English term some entry lists */
    size_t senses; /* entries with more than one translation */
};

/* en[0..elen) holds the translations separated by TABs (no empty one). */
static int add_entry(tf_lexicon *lx, const char *ar, size_t alen, const char *en, size_t elen)
{
    tf_strmap_slot *s = tf_strmap_put(&lx->map, tf_hash_bytes(ar, alen), ar, alen);
    const char *first_tab = memchr(en, '\t', elen);
    int64_t off;

    if (!s)
        return -1;
    off = tf_strmap_store(&lx->map, en, elen + 2); /* room for the NULs */
    if (off < 0)
        return -1;
    for (size_t i = 0; i < elen; i++)
        if (lx->map.arena[off + (int64_t)i] == '\t')
            lx->map.arena[off + (int64_t)i] = '\0';
    lx->map.arena[off + (int64_t)elen] = '\0';
    lx->map.arena[off + (int64_t)elen + 1] = '\0';
    s->val_off = (uint32_t)off;
    s->val = (int32_t)(first_tab ? (size_t)(first_tab - en) : elen);
    if (first_tab)
        lx->senses++;
    for (const char *c = tf_strmap_at(&lx->map, s->val_off); *c; c += strlen(c) + 1) {
        size_t clen = strlen(c);
        uint64_t h = tf_hash_bytes(c, clen);
        if (!tf_strmap_find(&lx->translations, h, c, clen)->key_len &&
            !tf_strmap_put(&lx->translations, h, c, clen))
            return -1;
    }
    return 0;
}

/* Every translation non-empty: no leading, trailing or doubled TAB. */
static int translations_ok(const char *en, size_t elen)
{
    if (!elen || en[0] == '\t' || en[elen - 1] == '\t')
        return 0;
    for (size_t i = 1; i < elen; i++)
        if (en[i] == '\t' && en[i - 1] == '\t')
            return 0;
    return 1;
}

tf_lexicon *tf_lexicon_load(const char *path, tf_err *err)
{
    tf_lexicon *lx = calloc(1, sizeof(*lx));
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;

    if (!lx || tf_strmap_init(&lx->map, 1 << 15, 1 << 20) < 0 ||
        tf_strmap_init(&lx->translations, 1 << 14, 1 << 18) < 0) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    f = fopen(path, "r");
    if (!f) {
        tf_err_set(err, "cannot read the lexicon %s: %s", path, strerror(errno));
        goto fail;
    }
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *tab, *end = line + n;
        lineno++;
        while (end > line && (end[-1] == '\n' || end[-1] == '\r'))
            *--end = '\0';
        if (end == line || line[0] == '#')
            continue;
        tab = memchr(line, '\t', (size_t)(end - line));
        if (!tab || tab == line || !translations_ok(tab + 1, (size_t)(end - tab - 1))) {
            tf_err_set(err, "%s:%ld: want \"arabic-term<TAB>english-term[<TAB>english-term...]\"",
                       path, lineno);
            goto fail;
        }
        if (add_entry(lx, line, (size_t)(tab - line), tab + 1, (size_t)(end - tab - 1)) < 0) {
            tf_err_set(err, "out of memory");
            goto fail;
        }
    }
    if (ferror(f)) {
        tf_err_set(err, "cannot read the lexicon %s: %s", path, strerror(errno));
        goto fail;
    }
    free(line);
    fclose(f);
    return lx;
fail:
    free(line);
    if (f)
        fclose(f);
    tf_lexicon_free(lx);
    return NULL;
}

void tf_lexicon_free(tf_lexicon *lx)
{
    if (!lx)
        return;
    tf_strmap_free(&lx->map);
    tf_strmap_free(&lx->translations);
    free(lx);
}

const char *tf_lexicon_concept(const tf_lexicon *lx, const char *term, size_t len,
                               size_t *out_len)
{
    return tf_lexicon_choose(lx, term, len, NULL, NULL, out_len);
}

size_t tf_lexicon_size(const tf_lexicon *lx)
{
    return lx ? lx->map.count : 0;
}

size_t tf_lexicon_senses(const tf_lexicon *lx)
{
    return lx ? lx->senses : 0;
}

int tf_lexicon_is_translation(const tf_lexicon *lx, const char *english, size_t elen)
{
    return lx && elen &&
           tf_strmap_find(&lx->translations, tf_hash_bytes(english, elen), english, elen)->key_len;
}

const char *tf_lexicon_choose(const tf_lexicon *lx, const char *term, size_t len,
                              tf_lexicon_usage_fn usage, void *ctx, size_t *out_len)
{
    const tf_strmap_slot *s;
    const char *best, *c;
    size_t best_len;
    int64_t best_use;

    if (!lx || !len)
        return NULL;
    s = tf_strmap_find(&lx->map, tf_hash_bytes(term, len), term, len);
    if (!s->key_len)
        return NULL;
    best = tf_strmap_at(&lx->map, s->val_off);
    best_len = (size_t)s->val;
    if (!usage) {
        *out_len = best_len;
        return best;
    }
    best_use = usage(ctx, best, best_len);
    for (c = best + best_len + 1; *c; c += strlen(c) + 1) {
        size_t clen = strlen(c);
        int64_t u = usage(ctx, c, clen);
        if (u > best_use) { /* ties keep the earlier: the table's order */
            best = c;
            best_len = clen;
            best_use = u;
        }
    }
    *out_len = best_len;
    return best;
}

int tf_lexicon_open(const char *setting, const char *data_dir, tf_lexicon **out, tf_err *err)
{
    char path[4096];

    *out = NULL;
    if (setting && strcmp(setting, "off") == 0)
        return 0;
    if (setting && *setting && strcmp(setting, "auto") != 0) {
        *out = tf_lexicon_load(setting, err);
        return *out ? 0 : -1;
    }
    if (!data_dir)
        return 0;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, TF_LEXICON_DEFAULT) >= sizeof(path))
        return tf_err_set(err, "data directory path too long: %s", data_dir);
    if (access(path, F_OK) != 0)
        return 0; /* not shipped here: no mapping */
    *out = tf_lexicon_load(path, err);
    return *out ? 0 : -1;
}

/* ---- builder --------------------------------------------------------------------------- */

/* Votes keyed by "arabic\tenglish"; val counts them. common: English term -> dictionary
 * entries holding it; prefer: English term -> documents of a corpus holding it. */
struct tf_lexicon_builder {
    tf_strmap votes, common, prefer;
    char *key;
    size_t key_cap;
};

tf_lexicon_builder *tf_lexicon_builder_new(tf_err *err)
{
    tf_lexicon_builder *b = calloc(1, sizeof(*b));

    if (!b || tf_strmap_init(&b->votes, 1 << 16, 1 << 22) < 0 ||
        tf_strmap_init(&b->common, 1 << 16, 1 << 20) < 0 ||
        tf_strmap_init(&b->prefer, 1 << 10, 1 << 14) < 0) {
        tf_lexicon_builder_free(b);
        tf_err_set(err, "out of memory");
        return NULL;
    }
    return b;
}

void tf_lexicon_builder_free(tf_lexicon_builder *b)
{
    if (!b)
        return;
    tf_strmap_free(&b->votes);
    tf_strmap_free(&b->common);
    tf_strmap_free(&b->prefer);
    free(b->key);
    free(b);
}

int tf_lexicon_builder_vote(tf_lexicon_builder *b, const char *arabic, size_t alen,
                            const char *english, size_t elen, tf_err *err)
{
    size_t len = alen + 1 + elen;
    tf_strmap_slot *s;

    if (!alen || !elen || memchr(arabic, '\t', alen) || memchr(english, '\t', elen))
        return 0; /* nothing to vote for */
    if (len + 1 > b->key_cap) {
        char *k = realloc(b->key, len + 1);
        if (!k)
            return tf_err_set(err, "out of memory");
        b->key = k;
        b->key_cap = len + 1;
    }
    memcpy(b->key, arabic, alen);
    b->key[alen] = '\t';
    memcpy(b->key + alen + 1, english, elen);
    s = tf_strmap_put(&b->votes, tf_hash_bytes(b->key, len), b->key, len);
    if (!s)
        return tf_err_set(err, "out of memory");
    s->val++;
    return 0;
}

static int add_count(tf_strmap *m, const char *english, size_t elen, int n, tf_err *err)
{
    tf_strmap_slot *s;

    if (!elen)
        return 0;
    s = tf_strmap_put(m, tf_hash_bytes(english, elen), english, elen);
    if (!s)
        return tf_err_set(err, "out of memory");
    s->val += n;
    return 0;
}

int tf_lexicon_builder_english(tf_lexicon_builder *b, const char *english, size_t elen,
                               tf_err *err)
{
    return add_count(&b->common, english, elen, 1, err);
}

int tf_lexicon_builder_prefer(tf_lexicon_builder *b, const char *english, size_t elen,
                              int docs, tf_err *err)
{
    return add_count(&b->prefer, english, elen, docs, err);
}

static int32_t count_of(const tf_strmap *m, const char *english, size_t elen)
{
    const tf_strmap_slot *c = tf_strmap_find(m, tf_hash_bytes(english, elen), english, elen);

    return c->key_len ? c->val : 0;
}

typedef struct vote {
    const char *key; /* "arabic\tenglish", NUL-terminated in the arena */
    size_t alen;
    int32_t n, common, prefer;
} vote;

/* Arabic term ascending, then the English term's documents in the corpus descending, then
 * votes descending, then the English term's commonness descending, then English ascending. */
static int vote_cmp(const void *pa, const void *pb)
{
    const vote *a = pa, *b = pb;
    size_t m = a->alen < b->alen ? a->alen : b->alen;
    int c = memcmp(a->key, b->key, m);

    if (c)
        return c;
    if (a->alen != b->alen)
        return a->alen < b->alen ? -1 : 1;
    if (a->prefer != b->prefer)
        return a->prefer > b->prefer ? -1 : 1;
    if (a->n != b->n)
        return a->n > b->n ? -1 : 1;
    if (a->common != b->common)
        return a->common > b->common ? -1 : 1;
    return strcmp(a->key + a->alen + 1, b->key + b->alen + 1);
}

static int write_votes(const tf_lexicon_builder *b, FILE *f, const char *header, int all,
                       size_t *entries, tf_err *err)
{
    vote *v = malloc((b->votes.count + 1) * sizeof(*v));
    size_t n = 0, out = 0;

    if (!v)
        return tf_err_set(err, "out of memory");
    for (size_t i = 0; i <= b->votes.mask; i++) {
        const tf_strmap_slot *s = &b->votes.slots[i];
        const char *k;
        if (!s->key_len)
            continue;
        k = tf_strmap_at(&b->votes, s->key_off);
        v[n].key = k;
        v[n].alen = (size_t)((const char *)memchr(k, '\t', s->key_len) - k);
        v[n].n = s->val;
        {
            const char *en = k + v[n].alen + 1;
            size_t elen = s->key_len - v[n].alen - 1;
            v[n].common = count_of(&b->common, en, elen);
            v[n].prefer = count_of(&b->prefer, en, elen);
        }
        n++;
    }
    qsort(v, n, sizeof(*v), vote_cmp);
    if (header)
        fputs(header, f);
    for (size_t i = 0; i < n; i++) {
        if (all) {
            fprintf(f, "%s\t%d\n", v[i].key, (int)v[i].n);
            out++;
            continue;
        }
        if (i && v[i].alen == v[i - 1].alen && !memcmp(v[i].key, v[i - 1].key, v[i].alen)) {
            fprintf(f, "\t%s", v[i].key + v[i].alen + 1); /* a lesser sense of the same term */
            continue;
        }
        fprintf(f, "%s%s", out ? "\n" : "", v[i].key);
        out++;
    }
    if (!all && out)
        fputc('\n', f);
    free(v);
    if (ferror(f))
        return tf_err_set(err, "cannot write the lexicon: %s", strerror(errno));
    *entries = out;
    return 0;
}

int tf_lexicon_builder_write(const tf_lexicon_builder *b, FILE *f, const char *header,
                             size_t *entries, tf_err *err)
{
    return write_votes(b, f, header, 0, entries, err);
}

int tf_lexicon_builder_write_candidates(const tf_lexicon_builder *b, FILE *f, size_t *entries,
                                        tf_err *err)
{
    return write_votes(b, f, NULL, 1, entries, err);
}
