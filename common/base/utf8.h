/*
 * utf8.h - UTF-8 validation and repair for untrusted text.
 * Well-formed means RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
 * Repair replaces each maximal ill-formed subpart (the Unicode "best practice") with one
 * U+FFFD, so output length and the number of replacements do not depend on the reader.
 */
#ifndef TF_UTF8_H
#define TF_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define TF_UTF8_REPLACEMENT 0xFFFDu

/* Offset of the first byte of the first ill-formed sequence in s[0..len), or len when
 * all of it is well-formed. A sequence truncated by the end of s is ill-formed. */
size_t tf_utf8_check(const char *s, size_t len);

/* Copy s[0..len) to out, replacing every maximal ill-formed subpart by U+FFFD. out must
 * hold 3 * len bytes (the worst case: every byte replaced). Returns the bytes written and
 * adds the number of replacements to *n_invalid. */
size_t tf_utf8_repair(const char *s, size_t len, char *out, size_t *n_invalid);

/* The largest cut <= max such that s[0..cut) does not end inside a multi-byte sequence
 * (continuation bytes are backed over, at most three). Returns len when len <= max. */
size_t tf_utf8_floor(const char *s, size_t len, size_t max);

/* Encode a scalar value (< 0x110000, not a surrogate) into out[0..4). Returns 1..4. */
size_t tf_utf8_encode(uint32_t cp, char *out);

#endif
