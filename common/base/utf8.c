/*
 * utf8.c - UTF-8 validation and repair. The decoder follows the table of well-formed
 * byte sequences (Unicode 15, table 3-7): the second byte's range depends on the first,
 * which is what rules out overlongs, surrogates and values above U+10FFFF.
 */
#include "base/utf8.h"

#include <string.h>

/* Length of the well-formed sequence at s[0..len), or 0 with *bad set to the length of
 * its maximal ill-formed subpart (>= 1). */
static size_t seq_len(const unsigned char *s, size_t len, size_t *bad)
{
    unsigned char b0 = s[0], lo = 0x80, hi = 0xBF;
    size_t need;

    if (b0 < 0x80)
        return 1;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 2;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 3;
        if (b0 == 0xE0)
            lo = 0xA0;
        else if (b0 == 0xED)
            hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 4;
        if (b0 == 0xF0)
            lo = 0x90;
        else if (b0 == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        unsigned char b = i < len ? s[i] : 0;
        if (i >= len || b < lo || b > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

size_t tf_utf8_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, bad;

    while (i < len) {
        /* Most text is ASCII: test eight bytes at a time. */
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ULL)) {
                i += 8;
                continue;
            }
        }
        size_t n = seq_len(s + i, len - i, &bad);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

size_t tf_utf8_repair(const char *str, size_t len, char *out, size_t *n_invalid)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, o = 0, bad = 0;

    while (i < len) {
        size_t n = seq_len(s + i, len - i, &bad);
        if (n) {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        } else {
            o += tf_utf8_encode(TF_UTF8_REPLACEMENT, out + o);
            (*n_invalid)++;
            i += bad;
        }
    }
    return o;
}

size_t tf_utf8_floor(const char *s, size_t len, size_t max)
{
    size_t cut = max, back = 0;

    if (len <= max)
        return len;
    while (cut > 0 && back < 3 && ((unsigned char)s[cut] & 0xC0) == 0x80) {
        cut--;
        back++;
    }
    return cut;
}

size_t tf_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}
