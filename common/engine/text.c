/*
 * text.c - tokenization of postings in English and Arabic (see text.h for the pipeline).
 * Guarantees: every input is accepted and tokenized from at most max_input bytes; the
 * output depends only on the input bytes, the stop-word files and the lexicon (the word
 * cache below is invisible except in speed; with lexicon_usage, an Arabic word's
 * translation is chosen when the cache first meets it, until tf_text_forget); no
 * allocation happens per token once the buffers are warm.
 */
#include "engine/text.h"

#include <errno.h>
#include <libstemmer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "engine/lexicon.h"
#include "base/hash.h"
#include "base/strmap.h"
#include "base/utf8.h"

/* NFKC (COMPAT|COMPOSE) with case folding; IGNORE drops default-ignorable code points
 * (soft hyphen, ZWJ/ZWNJ, BOM) that would otherwise split or disguise words; LUMP maps
 * typographic variants (curly apostrophe, dashes, odd spaces) to their ASCII forms. */
#define NORM_OPTIONS                                                                      \
    (UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_COMPOSE | UTF8PROC_CASEFOLD |           \
     UTF8PROC_IGNORE | UTF8PROC_LUMP)

/* Class of a normalized code point. Letters carry their script, which picks the stemmer
 * and splits words where the script changes ("javaمطور" is two words). */
enum {
    C_SEP,    /* ends a chunk: space, punctuation, symbols */
    C_JOIN,   /* + # . / - & _ ' : may sit inside a technical token */
    C_DIGIT,
    C_MARK,   /* combining mark that survived NFKC: part of the word */
    C_LATIN,
    C_ARABIC,
    C_OTHER,  /* letters of any other script: kept, never stemmed */
};

enum { K_STOP = 1, K_KEEP = 2 };

/* Technical tokens that the generic rules (x++, x#, x.js, x.net, word-number) miss or that
 * are shorter than the minimum length. Written normalized (lower case). */
static const char *const keep_words[] = {
    "c",      "r",       "c++",   "c#",   "f#",    "j#",          ".net",  "asp.net",
    "ado.net", "node.js", "vue.js", "ci/cd", "ui/ux", "tcp/ip",    "i/o",   "a/b",
    "r&d",    "pl/sql",  "t-sql", "b2b",  "b2c",   "p2p",         "2d",    "3d",
    "e-commerce", "e-learning", "objective-c", "ml/ai", "ai/ml",
};

#define WORD_MAX (TF_TEXT_MAX_TOKEN * 4 + 4)
#define CACHE_SLOTS (1u << 15)
#define CACHE_ARENA (1u << 19)

struct tf_text {
    uint8_t ascii_cls[128]; /* ascii_class() of each folded ASCII byte, as a table */
    uint8_t ascii_low[128]; /* ASCII case folding */
    size_t max_input;
    int min_len;
    struct sb_stemmer *en, *ar;
    const tf_lexicon *lexicon; /* Arabic term -> English concept, or NULL */
    tf_lexicon_usage_fn usage; /* picks among a term's translations, or NULL */
    void *usage_ctx;
    tf_strmap lex;   /* normalized word -> K_STOP or K_KEEP */
    tf_strmap cache; /* word as normalized -> final term or "dropped"; cleared when full */

    char *fix; /* repaired copy of an ill-formed input */
    size_t fix_cap;
    int32_t *cp; /* the normalized document */
    int32_t *raw; /* the same code points before the Arabic folding: the surface forms */
    uint8_t *cls;
    size_t cp_len, cp_cap;
    char word[WORD_MAX];
    char form[WORD_MAX];

    char *out;
    size_t out_len, out_cap;
    tf_token *tok;
    size_t n_tok, tok_cap;
    int oom; /* set by the walk when a buffer could not grow */
};

/* ---- code point classes and Arabic normalization ------------------------------- */

static uint8_t ascii_class(int32_t c)
{
    if (c >= 'a' && c <= 'z')
        return C_LATIN;
    if (c >= '0' && c <= '9')
        return C_DIGIT;
    switch (c) {
    case '+': case '#': case '.': case '/': case '-': case '&': case '_': case '\'':
        return C_JOIN;
    default:
        return C_SEP; /* upper case never gets here: folded first */
    }
}

int tf_text_form_is_arabic(const char *form, size_t len)
{
    unsigned char b = len ? (unsigned char)form[0] : 0;

    return len >= 2 && b >= 0xD8 && b <= 0xDB;
}

int tf_text_tokens_arabic(const tf_tokens *toks)
{
    size_t arabic = 0;

    for (size_t i = 0; i < toks->n; i++)
        arabic += (size_t)tf_text_form_is_arabic(toks->bytes + toks->tok[i].form_off,
                                                 toks->tok[i].form_len);
    return arabic * 2 > toks->n;
}

static int is_arabic_block(int32_t c)
{
    return (c >= 0x0600 && c <= 0x06FF) || (c >= 0x0750 && c <= 0x077F) ||
           (c >= 0x08A0 && c <= 0x08FF) || (c >= 0xFB50 && c <= 0xFDFF) ||
           (c >= 0xFE70 && c <= 0xFEFF);
}

static int is_latin_block(int32_t c)
{
    return (c >= 0x00C0 && c <= 0x024F) || (c >= 0x1E00 && c <= 0x1EFF) ||
           (c >= 0x2C60 && c <= 0x2C7F) || (c >= 0xA720 && c <= 0xA7FF);
}

static uint8_t unicode_class(int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        if (is_arabic_block(c))
            return C_ARABIC;
        return is_latin_block(c) ? C_LATIN : C_OTHER;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        return C_MARK;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return C_DIGIT;
    default:
        return C_SEP;
    }
}

/* Arabic orthographic normalization, applied after NFKC (which has already turned
 * presentation forms into plain letters). Returns the replacement or -1 to drop it.
 * Combining marks of the Arabic blocks (tashkeel and Quranic marks) are dropped by the
 * caller; tatweel is a letter-like filler and is dropped here. */
static int32_t arabic_fold(int32_t c)
{
    switch (c) {
    case 0x0640: /* tatweel */
        return -1;
    case 0x0622: case 0x0623: case 0x0625: case 0x0671: /* alef with madda/hamza, wasla */
        return 0x0627;
    case 0x0649: case 0x06CC: /* alef maqsura, Farsi yeh */
        return 0x064A;
    case 0x0629: /* taa marbuta */
        return 0x0647;
    case 0x06A9: /* Farsi keheh */
        return 0x0643;
    default:
        break;
    }
    if (c >= 0x0660 && c <= 0x0669)
        return '0' + (c - 0x0660);
    if (c >= 0x06F0 && c <= 0x06F9)
        return '0' + (c - 0x06F0);
    return c;
}

/* ---- normalization: bytes -> t->cp / t->cls ------------------------------------ */

static int reserve_cp(tf_text *t, size_t extra)
{
    size_t need = t->cp_len + extra;
    int32_t *cp;
    uint8_t *cls;

    if (need <= t->cp_cap)
        return 0;
    need = need > 2 * t->cp_cap ? need : 2 * t->cp_cap;
    cp = realloc(t->cp, need * sizeof(*cp));
    if (!cp)
        return -1;
    t->cp = cp;
    cp = realloc(t->raw, need * sizeof(*cp));
    if (!cp)
        return -1;
    t->raw = cp;
    cls = realloc(t->cls, need);
    if (!cls)
        return -1;
    t->cls = cls;
    t->cp_cap = need;
    return 0;
}

/* ASCII needs no utf8proc: its NFKC case fold is plain lower-casing. */
static void push_ascii(tf_text *t, const char *s, size_t len)
{
    int32_t *cp = t->cp + t->cp_len, *raw = t->raw + t->cp_len;
    uint8_t *cls = t->cls + t->cp_len;

    for (size_t i = 0; i < len; i++) {
        uint8_t c = t->ascii_low[(unsigned char)s[i]];
        cp[i] = c;
        raw[i] = c;
        cls[i] = t->ascii_cls[c];
    }
    t->cp_len += len;
}

/* Normalize well-formed s[0..len) through utf8proc, then fold Arabic and classify. */
static int push_unicode(tf_text *t, const char *s, size_t len)
{
    utf8proc_ssize_t n, room = (utf8proc_ssize_t)(t->cp_cap - t->cp_len);
    int32_t *dst = t->cp + t->cp_len;

    n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, dst, room,
                           NORM_OPTIONS);
    if (n > room) {
        if (reserve_cp(t, (size_t)n) < 0)
            return -1;
        dst = t->cp + t->cp_len;
        n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, dst, n,
                               NORM_OPTIONS);
    }
    if (n > 0)
        n = utf8proc_normalize_utf32(dst, n, NORM_OPTIONS);
    if (n <= 0)
        return 0; /* cannot happen on repaired input; the segment is then simply skipped */

    for (utf8proc_ssize_t i = 0; i < n; i++) {
        int32_t c = arabic_fold(dst[i]);
        uint8_t k;
        if (c < 0)
            continue;
        k = c < 0x80 ? ascii_class(c) : unicode_class(c);
        if (k == C_MARK && is_arabic_block(c))
            continue; /* tashkeel, superscript alef, Quranic marks */
        t->raw[t->cp_len] = c < 0x80 ? c : dst[i]; /* before t->cp overwrites it */
        t->cp[t->cp_len] = c;
        t->cls[t->cp_len++] = k;
    }
    return 0;
}

/* Arabic letters U+0621..U+063A, U+0641..U+064A, tatweel and the harakat U+064B..U+0652,
 * and Arabic-Indic digits are their own NFKC case fold, and no two of them compose (only
 * U+0653..U+0655 do, and those are not in the set). A stretch made only of them, which
 * is what Arabic prose is between spaces, can therefore skip utf8proc. */
static int is_plain_arabic(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;

    if (len % 2)
        return 0;
    for (size_t i = 0; i < len; i += 2) {
        int32_t c = ((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
        if ((s[i] != 0xD8 && s[i] != 0xD9) ||
            !((c >= 0x0621 && c <= 0x0652) || (c >= 0x0660 && c <= 0x0669)))
            return 0;
    }
    return 1;
}

static void push_plain_arabic(tf_text *t, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;

    for (size_t i = 0; i < len; i += 2) {
        int32_t r = ((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F), c = arabic_fold(r);
        if (c < 0 || (c >= 0x064B && c <= 0x0652))
            continue; /* tatweel, harakat */
        t->raw[t->cp_len] = c < 0x80 ? c : r;
        t->cp[t->cp_len] = c;
        t->cls[t->cp_len++] = c < 0x80 ? C_DIGIT : C_ARABIC;
    }
}

/* Normalize well-formed s[0..len) into t->cp. Pure-ASCII stretches skip utf8proc; the
 * ASCII character just before a non-ASCII stretch goes with it, because a combining mark
 * there may compose with it (e + U+0301 -> é). ASCII is never the second half of a
 * composition, so the character after a stretch needs no such care. */
static int normalize(tf_text *t, const char *s, size_t len)
{
    size_t i = 0;

    t->cp_len = 0;
    if (reserve_cp(t, len + 1) < 0)
        return -1;
    while (i < len) {
        size_t j = i, k, a;
        while (j < len && (unsigned char)s[j] < 0x80)
            j++;
        a = (j < len && j > i) ? j - 1 : j;
        /* earlier NFKC expansions (U+FDFA is 18 code points) may have used the slack */
        if (reserve_cp(t, a - i) < 0)
            return -1;
        push_ascii(t, s + i, a - i);
        if (j == len)
            break;
        for (k = j; k < len && (unsigned char)s[k] >= 0x80; k++)
            ;
        if (is_plain_arabic(s + j, k - j)) {
            if (reserve_cp(t, k - a) < 0)
                return -1;
            push_ascii(t, s + a, j - a);
            push_plain_arabic(t, s + j, k - j);
        } else if (push_unicode(t, s + a, k - a) < 0) {
            return -1;
        }
        i = k;
    }
    return 0;
}

/* Repair (when needed) and normalize one input. */
static int prepare(tf_text *t, const char *s, size_t len, size_t *invalid)
{
    if (tf_utf8_check(s, len) < len) {
        if (len > (SIZE_MAX - 16) / 3)
            return -1;
        if (t->fix_cap < 3 * len) {
            char *f = realloc(t->fix, 3 * len);
            if (!f)
                return -1;
            t->fix = f;
            t->fix_cap = 3 * len;
        }
        len = tf_utf8_repair(s, len, t->fix, invalid);
        s = t->fix;
    }
    return normalize(t, s, len);
}

/* ---- output -------------------------------------------------------------------- */

/* Appends term s[0..len) and its surface form, the code points cp[fs..fe) as written
 * (before the Arabic folding; tashkeel and tatweel already gone), to the output. */
static void push_token(tf_text *t, const char *s, size_t len, size_t fs, size_t fe)
{
    size_t flen = 0;

    for (size_t i = fs; i < fe; i++) {
        if (t->raw[i] < 0x80)
            t->form[flen++] = (char)t->raw[i];
        else
            flen += tf_utf8_encode((uint32_t)t->raw[i], t->form + flen);
    }
    if (t->out_len + len + flen + 2 > t->out_cap) {
        size_t cap = 2 * t->out_cap + len + flen + 2;
        char *o = realloc(t->out, cap);
        if (!o) {
            t->oom = 1;
            return;
        }
        t->out = o;
        t->out_cap = cap;
    }
    if (t->n_tok == t->tok_cap) {
        size_t cap = t->tok_cap ? 2 * t->tok_cap : 256;
        tf_token *k = realloc(t->tok, cap * sizeof(*k));
        if (!k) {
            t->oom = 1;
            return;
        }
        t->tok = k;
        t->tok_cap = cap;
    }
    memcpy(t->out + t->out_len, s, len);
    t->out[t->out_len + len] = '\0';
    t->tok[t->n_tok].off = (uint32_t)t->out_len;
    t->tok[t->n_tok].len = (uint32_t)len;
    t->out_len += len + 1;
    memcpy(t->out + t->out_len, t->form, flen);
    t->out[t->out_len + flen] = '\0';
    t->tok[t->n_tok].form_off = (uint32_t)t->out_len;
    t->tok[t->n_tok].form_len = (uint32_t)flen;
    t->out_len += flen + 1;
    t->n_tok++;
}

/* ---- words ------------------------------------------------------------------------ */

static size_t encode_span(const tf_text *t, size_t s, size_t e, char *out)
{
    size_t len = 0;

    for (size_t i = s; i < e; i++) {
        if (t->cp[i] < 0x80)
            out[len++] = (char)t->cp[i];
        else
            len += tf_utf8_encode((uint32_t)t->cp[i], out + len);
    }
    return len;
}

static size_t count_cp(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int lex_kind(const tf_text *t, const char *w, size_t len)
{
    const tf_strmap_slot *s = tf_strmap_find(&t->lex, tf_hash_bytes(w, len), w, len);

    return s->key_len ? s->val : 0;
}

static int all_in(const char *w, size_t n, int digits_ok)
{
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (!((c >= 'a' && c <= 'z') || (digits_ok && c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/* The generic shapes of technical names: x++ (c++, g++), x# with a one or two letter
 * base (c#, f#), x.js (node.js, d3.js), x.net (asp.net), and word-number (gpt-4, covid-19). */
static int tech_shape(const char *w, size_t n)
{
    const char *dash;

    if (n >= 3 && w[n - 1] == '+' && w[n - 2] == '+')
        return w[0] >= 'a' && w[0] <= 'z' && all_in(w, n - 2, 1);
    if (n >= 2 && n <= 3 && w[n - 1] == '#')
        return all_in(w, n - 1, 0);
    if (n >= 4 && !memcmp(w + n - 3, ".js", 3))
        return all_in(w, n - 3, 1);
    if (n >= 4 && !memcmp(w + n - 4, ".net", 4))
        return all_in(w, n - 4, 0);
    dash = memchr(w, '-', n);
    if (dash && dash > w && dash + 1 < w + n && dash[1] >= '0' && dash[1] <= '9')
        return all_in(w, (size_t)(dash - w), 0) &&
               all_in(dash + 1, (size_t)(w + n - dash - 1), 1);
    return 0;
}

/* Emit cp[s..e) whole when it is a technical token. Returns 1 when emitted. */
static int emit_technical(tf_text *t, size_t s, size_t e)
{
    size_t len;

    if (e - s > TF_TEXT_MAX_TOKEN)
        return 0;
    len = encode_span(t, s, e, t->word);
    if (lex_kind(t, t->word, len) == K_KEEP || tech_shape(t->word, len)) {
        push_token(t, t->word, len, s, e);
        return 1;
    }
    return 0;
}

/* Decide what word w (n code points, one script) becomes. Returns the term length with
 * *term pointing at it (in t->word or the stemmer's buffer), or -1 to drop the word. */
static int32_t resolve_word(tf_text *t, const char *w, size_t len, size_t n, int script,
                            int has_digit, const char **term)
{
    static const char wa_al[] = "\xD9\x88\xD8\xA7\xD9\x84"; /* و + ال */
    static const char fa_al[] = "\xD9\x81\xD8\xA7\xD9\x84"; /* ف + ال */
    struct sb_stemmer *st;
    const sb_symbol *stem;
    int kind;

    /* Snowball's arabic stemmer strips ال, بال, كال, لل, ولل but not وال/فال: take the
     * conjunction off first so that والمهندس and المهندس meet. */
    if (script == C_ARABIC && n >= 5 && (!memcmp(w, wa_al, 6) || !memcmp(w, fa_al, 6))) {
        w += 2;
        len -= 2;
        n -= 1;
    }
    *term = w;
    kind = lex_kind(t, w, len);
    if (kind == K_STOP)
        return -1;
    if (kind == K_KEEP)
        return (int32_t)len;
    if (n < (size_t)t->min_len)
        return -1;
    if (has_digit || script == C_OTHER)
        return (int32_t)len;
    st = script == C_LATIN ? t->en : t->ar;
    stem = sb_stemmer_stem(st, (const sb_symbol *)w, (int)len);
    if (!stem) {
        t->oom = 1;
        return -1;
    }
    len = (size_t)sb_stemmer_length(st);
    if (count_cp((const char *)stem, len) < (size_t)t->min_len)
        return -1;
    *term = (const char *)stem;
    if (script == C_ARABIC && t->lexicon) {
        size_t clen;
        const char *concept = tf_lexicon_choose(t->lexicon, *term, len, t->usage, t->usage_ctx,
                                                &clen);
        if (concept) {
            *term = concept;
            len = clen;
        }
    }
    return (int32_t)len;
}

/* Where the surface form of word cp[s..e) starts: after the و/ف that resolve_word takes
 * off وال/فال words, so the form shows the word the term was made of. */
static size_t form_start(const tf_text *t, size_t s, size_t e, int script)
{
    if (script == C_ARABIC && e - s >= 5 && (t->cp[s] == 0x0648 || t->cp[s] == 0x0641) &&
        t->cp[s + 1] == 0x0627 && t->cp[s + 2] == 0x0644)
        return s + 1;
    return s;
}

/* A word is looked up in the cache first: postings repeat their vocabulary, and a hit
 * saves the stop-word lookup and the stemmer (about 100-250 ns). */
static void emit_word(tf_text *t, size_t s, size_t e, int script, int has_digit)
{
    tf_strmap *c = &t->cache;
    const char *term;
    size_t len;
    uint64_t h;
    tf_strmap_slot *slot;
    int32_t tlen;
    int64_t koff, voff;

    if (script == C_SEP || e - s > TF_TEXT_MAX_TOKEN)
        return; /* no letter at all (numbers), or too long to be a word */
    len = encode_span(t, s, e, t->word);
    h = tf_hash_bytes(t->word, len);
    slot = tf_strmap_find(c, h, t->word, len);
    if (slot->key_len) {
        if (slot->val >= 0)
            push_token(t, tf_strmap_at(c, slot->val_off), (size_t)slot->val,
                       form_start(t, s, e, script), e);
        return;
    }
    tlen = resolve_word(t, t->word, len, e - s, script, has_digit, &term);
    if (tlen >= 0)
        push_token(t, term, (size_t)tlen, form_start(t, s, e, script), e);
    if (t->oom)
        return; /* a word dropped for want of memory must not be remembered as dropped */

    if (c->count + 1 > (c->mask + 1) / 2 ||
        c->arena_len + len + (size_t)(tlen > 0 ? tlen : 0) > c->arena_cap) {
        tf_strmap_clear(c);
        slot = tf_strmap_find(c, h, t->word, len);
    }
    /* The stemmer's buffer stays valid until its next call, so term is still good. */
    voff = tlen > 0 ? tf_strmap_store(c, term, (size_t)tlen) : 0;
    koff = tf_strmap_store(c, t->word, len);
    if (koff < 0 || voff < 0)
        return; /* arena is sized up front and cleared, not grown: cannot happen */
    slot->hash = h;
    slot->key_off = (uint32_t)koff;
    slot->key_len = (uint32_t)len;
    slot->val_off = (uint32_t)voff;
    slot->val = tlen;
    c->count++;
}

/* Split cp[s..e) (no separators inside) into words at joiners and script changes.
 * An apostrophe between Latin letters stays in the word (don't, developer's): the stop
 * list and the english stemmer both know those forms. */
static void split_words(tf_text *t, size_t s, size_t e)
{
    size_t ws = s;
    int script = C_SEP, has_digit = 0, open = 0;

    for (size_t i = s; i < e; i++) {
        uint8_t k = t->cls[i];
        if (k == C_JOIN) {
            if (t->cp[i] == '\'' && script == C_LATIN && i + 1 < e && t->cls[i + 1] == C_LATIN)
                continue;
            if (open)
                emit_word(t, ws, i, script, has_digit);
            open = 0;
            continue;
        }
        /* Digits stick to Latin letters only (python3, web3); in Arabic text a digit run
         * next to letters is a number with a unit or marker (2024م), not a name. */
        if (open && ((k >= C_LATIN && script != C_SEP && script != k) ||
                     (k > C_LATIN && has_digit) || (k == C_DIGIT && script > C_LATIN))) {
            emit_word(t, ws, i, script, has_digit);
            open = 0;
        }
        if (!open) {
            ws = i;
            script = C_SEP;
            has_digit = 0;
            open = 1;
        }
        if (k >= C_LATIN)
            script = k;
        else if (k == C_DIGIT)
            has_digit = 1;
    }
    if (open)
        emit_word(t, ws, e, script, has_digit);
}

static int has_join(const tf_text *t, size_t s, size_t e)
{
    for (size_t i = s; i < e; i++)
        if (t->cls[i] == C_JOIN)
            return 1;
    return 0;
}

static int is_split_point(int32_t c)
{
    return c == '/' || c == '&' || c == '_' || c == '-';
}

/* A part of a chunk: trim every joiner at both ends, then technical or plain words. */
static void do_part(tf_text *t, size_t s, size_t e)
{
    while (s < e && t->cls[s] == C_JOIN)
        s++;
    while (e > s && t->cls[e - 1] == C_JOIN && t->cp[e - 1] != '+' && t->cp[e - 1] != '#')
        e--;
    if (s == e)
        return;
    if (has_join(t, s, e) && emit_technical(t, s, e))
        return;
    split_words(t, s, e);
}

/* A chunk is a run between separators, e.g. "node.js/react", "c++.", "ci/cd". The
 * whole chunk is tried as a technical token first (so ci/cd stays whole), then its parts
 * between / & _ - (so c/c++ gives c and c++), then plain words. */
static void do_chunk(tf_text *t, size_t s, size_t e, int joined)
{
    size_t p;

    /* trailing sentence punctuation goes, a trailing + or # is part of the name */
    while (e > s && t->cls[e - 1] == C_JOIN && t->cp[e - 1] != '+' && t->cp[e - 1] != '#')
        e--;
    /* a leading dot may be .net; other leading joiners never start a name */
    while (s < e && t->cls[s] == C_JOIN && t->cp[s] != '.')
        s++;
    if (s == e)
        return;
    if (!joined || !has_join(t, s, e)) {
        split_words(t, s, e);
        return;
    }
    if (emit_technical(t, s, e))
        return;
    p = s;
    for (size_t i = s; i <= e; i++) {
        if (i == e || is_split_point(t->cp[i])) {
            if (i > p)
                do_part(t, p, i);
            p = i + 1;
        }
    }
}

/* ---- public ------------------------------------------------------------------------ */

static int lex_add(tf_text *t, const char *w, size_t len, int kind)
{
    tf_strmap_slot *s;

    if (!len || len > WORD_MAX)
        return 0;
    s = tf_strmap_put(&t->lex, tf_hash_bytes(w, len), w, len);
    if (!s)
        return -1;
    s->val = kind;
    return 0;
}

/* Add each line of a stop-word file, normalized exactly as document text is, so that
 * the file may be written with capitals, tashkeel or any alef form. */
static int load_stop_words(tf_text *t, const char *dir, const char *name, tf_err *err)
{
    char path[4096];
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, invalid = 0;
    ssize_t n;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/stopwords/%s", dir, name);
    f = fopen(path, "r");
    if (!f) {
        tf_err_set(err, "cannot open stop words %s: %s", path, strerror(errno));
        goto fail;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        size_t s = 0, e = (size_t)n;
        while (s < e && (line[s] == ' ' || line[s] == '\t'))
            s++;
        while (e > s && (line[e - 1] == '\n' || line[e - 1] == '\r' || line[e - 1] == ' ' ||
                         line[e - 1] == '\t'))
            e--;
        if (s == e || line[s] == '#')
            continue;
        if (prepare(t, line + s, e - s, &invalid) < 0 || t->cp_len > TF_TEXT_MAX_TOKEN)
            continue;
        if (lex_add(t, t->word, encode_span(t, 0, t->cp_len, t->word), K_STOP) < 0) {
            tf_err_set(err, "out of memory loading %s", path);
            goto fail;
        }
    }
    if (ferror(f)) {
        tf_err_set(err, "cannot read stop words %s", path);
        goto fail;
    }
    rc = 0;
fail:
    free(line);
    if (f)
        fclose(f);
    return rc;
}

tf_text *tf_text_new(const tf_text_opts *opts, tf_err *err)
{
    static const tf_text_opts defaults = {0};
    tf_text *t = calloc(1, sizeof(*t));

    if (!opts)
        opts = &defaults;
    if (!t) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    for (int c = 0; c < 128; c++) {
        t->ascii_low[c] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 'a' - 'A' : c);
        t->ascii_cls[c] = ascii_class(c);
    }
    t->max_input = opts->max_input ? opts->max_input : TF_TEXT_DEFAULT_MAX_INPUT;
    if (t->max_input > TF_TEXT_MAX_INPUT_LIMIT)
        t->max_input = TF_TEXT_MAX_INPUT_LIMIT; /* token offsets are 32-bit */
    t->min_len = opts->min_token_len > 0 ? opts->min_token_len : TF_TEXT_DEFAULT_MIN_TOKEN;
    t->lexicon = opts->lexicon;
    t->usage = opts->lexicon_usage;
    t->usage_ctx = opts->lexicon_usage_ctx;
    if (tf_strmap_init(&t->lex, 1024, 16384) < 0 ||
        tf_strmap_init(&t->cache, CACHE_SLOTS, CACHE_ARENA) < 0) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    t->en = sb_stemmer_new("english", "UTF_8");
    t->ar = sb_stemmer_new("arabic", "UTF_8");
    if (!t->en || !t->ar) {
        tf_err_set(err, "cannot create the english and arabic Snowball stemmers");
        goto fail;
    }
    if (opts->data_dir && (load_stop_words(t, opts->data_dir, "en.txt", err) < 0 ||
                           load_stop_words(t, opts->data_dir, "ar.txt", err) < 0))
        goto fail;
    /* after the stop words: a protected name wins over a stop word of the same spelling */
    for (size_t i = 0; i < sizeof(keep_words) / sizeof(keep_words[0]); i++) {
        if (lex_add(t, keep_words[i], strlen(keep_words[i]), K_KEEP) < 0) {
            tf_err_set(err, "out of memory");
            goto fail;
        }
    }
    return t;
fail:
    tf_text_free(t);
    return NULL;
}

void tf_text_forget(tf_text *t)
{
    tf_strmap_clear(&t->cache);
}

void tf_text_free(tf_text *t)
{
    if (!t)
        return;
    sb_stemmer_delete(t->en);
    sb_stemmer_delete(t->ar);
    tf_strmap_free(&t->lex);
    tf_strmap_free(&t->cache);
    free(t->fix);
    free(t->cp);
    free(t->raw);
    free(t->cls);
    free(t->out);
    free(t->tok);
    free(t);
}

int tf_text_tokenize(tf_text *t, const char *s, size_t len, tf_tokens *out, tf_err *err)
{
    size_t i = 0;

    memset(out, 0, sizeof(*out));
    t->out_len = 0;
    t->n_tok = 0;
    t->oom = 0;
    if (len > t->max_input) {
        len = tf_utf8_floor(s, len, t->max_input);
        out->truncated = 1;
    }
    if (prepare(t, s, len, &out->invalid) < 0)
        return tf_err_set(err, "out of memory normalizing a %zu-byte document", len);
    while (i < t->cp_len) {
        size_t start;
        int joined = 0;
        while (i < t->cp_len && t->cls[i] == C_SEP)
            i++;
        start = i;
        for (; i < t->cp_len && t->cls[i] != C_SEP; i++)
            joined |= t->cls[i] == C_JOIN;
        if (i > start)
            do_chunk(t, start, i, joined);
    }
    if (t->oom) {
        t->n_tok = 0;
        return tf_err_set(err, "out of memory tokenizing a %zu-byte document", len);
    }
    out->bytes = t->out;
    out->tok = t->tok;
    out->n = t->n_tok;
    return 0;
}
