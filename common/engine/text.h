/*
 * text.h - from a document's raw bytes to the terms the topic model counts: UTF-8 repair,
 * NFKC + case folding, Arabic normalization, words split by script, stop words, technical
 * tokens kept whole, Snowball stemming (english for Latin, arabic for Arabic script).
 * Any byte string is accepted. A tf_text is not thread-safe (it owns the stemmers and
 * reusable buffers): one per thread. Only tf_text_new does I/O (the stop-word files).
 */
#ifndef TF_TEXT_H
#define TF_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define TF_TEXT_DEFAULT_MAX_INPUT (1u << 20) /* bytes, the default message limit */
#define TF_TEXT_MAX_INPUT_LIMIT (1u << 30)   /* larger max_input values are lowered to it */
#define TF_TEXT_DEFAULT_MIN_TOKEN 2          /* code points */
#define TF_TEXT_MAX_TOKEN 64                 /* code points; longer runs are URLs or noise */

typedef struct tf_text tf_text;

/* Zero-initialised options mean the defaults. */
typedef struct tf_text_opts {
    /* Directory holding stopwords/en.txt and stopwords/ar.txt (programs pass tf_data_dir() of base/datadir.h).
     * NULL: no stop words at all (tests of the bare pipeline). */
    const char *data_dir;
    /* Bytes of a document that are read; the rest is ignored and tf_tokens.truncated set.
     * The cut falls on a code point boundary. 0: TF_TEXT_DEFAULT_MAX_INPUT. */
    size_t max_input;
    /* Shorter tokens (in code points, counted after stemming) are dropped, except the
     * protected technical tokens such as "c" and "r". 0: TF_TEXT_DEFAULT_MIN_TOKEN. */
    int min_token_len;
    /* Arabic terms mapped to their English concept after stemming (engine/lexicon.h);
     * borrowed, it must outlive the tf_text. NULL: no mapping. */
    const struct tf_lexicon *lexicon;
    /* With a lexicon listing several translations of a term: of them, the one this rates
     * highest (tf_lexicon_choose), e.g. the vocabulary's document frequency. NULL: the
     * table's first translation. Called with lexicon_usage_ctx, on the tokenizing thread,
     * once per distinct word until tf_text_forget. */
    int64_t (*lexicon_usage)(void *ctx, const char *english, size_t elen);
    void *lexicon_usage_ctx;
} tf_text_opts;

typedef struct tf_token {
    uint32_t off; /* into tf_tokens.bytes; the token is NUL-terminated there too */
    uint32_t len; /* bytes */
    /* The surface form the term was made of, as written in the document but case-folded
     * (NFKC), without tashkeel and tatweel and before the Arabic letter folding and the
     * stemmer: "financial" for "financi", "إنشائية" for "انشاييه". Into tf_tokens.bytes,
     * NUL-terminated; equal to the term for technical tokens and unstemmed words. */
    uint32_t form_off, form_len;
} tf_token;

/* The terms of one document, in document order, duplicates included. Owned by the
 * tf_text and valid until its next tokenize call or tf_text_free. */
typedef struct tf_tokens {
    const char *bytes;
    const tf_token *tok;
    size_t n;
    size_t invalid;  /* ill-formed UTF-8 subparts replaced by U+FFFD (a word boundary) */
    int truncated;   /* 1 when the input was longer than max_input */
} tf_tokens;

/* Load the stop words and create the stemmers. NULL on failure (missing or unreadable
 * stop-word file, out of memory) with the reason in err. Free with tf_text_free. */
tf_text *tf_text_new(const tf_text_opts *opts, tf_err *err);
void tf_text_free(tf_text *t);

/* The rules, in order:
 *  - ill-formed UTF-8: each maximal ill-formed subpart becomes U+FFFD (a word boundary,
 *    so "caf\xFFe" is "caf" and "e") and is counted in tf_tokens.invalid;
 *  - NFKC + case fold (utf8proc, also dropping default-ignorables and lumping curly
 *    apostrophes and dashes to ASCII); then Arabic: harakat, U+0670 and every other
 *    Arabic combining mark and tatweel removed, أ إ آ ٱ -> ا, ى -> ي, ة -> ه, Farsi
 *    yeh/keheh -> ي/ك, Arabic-Indic and Eastern digits -> 0-9;
 *  - a chunk between separators (space, punctuation other than + # . / - & _ ') is kept
 *    whole, unstemmed, when it is a technical token: a built-in list (c, r, c++, c#,
 *    .net, ci/cd, r&d, 3d, ...) or a shape x++, x# (base of 1-2 letters), x.js, x.net,
 *    word-number (gpt-4, covid-19); else its parts between / & _ - are tried the same
 *    way (c/c++ -> c, c++); else it splits into words at those characters and at
 *    script changes (an apostrophe between Latin letters stays: don't, developer's);
 *  - a word with no letter (a number) or longer than TF_TEXT_MAX_TOKEN is dropped;
 *    digits stay attached to Latin letters (python3, web3), not to Arabic ones;
 *  - Arabic words starting with وال or فال (5+ letters) lose the و/ف, because the
 *    stemmer strips ال, بال, كال, لل and ولل but not those two;
 *  - stop words (both languages, one list) are dropped, before stemming;
 *  - Latin words go through the english stemmer, Arabic ones through the arabic stemmer
 *    (which also strips the article and other prefixes), words of other scripts and
 *    Latin words with digits are kept as they are;
 *  - a term shorter than min_token_len code points after all this is dropped;
 *  - with a lexicon, an Arabic term it knows becomes its English concept.
 * Tokenize s[0..len) (any bytes; s may be NULL when len is 0) into *out. Returns 0, or
 * -1 only when memory runs out (err says so; *out is then empty). */
int tf_text_tokenize(tf_text *t, const char *s, size_t len, tf_tokens *out, tf_err *err);

/* Forget the words already resolved (the cache), so that the next ones consult
 * lexicon_usage again: after what it reads has changed. */
void tf_text_forget(tf_text *t);

/* A written form (a token's form_off/form_len) starts with an Arabic letter, U+0600..U+06FF
 * (UTF-8 lead bytes 0xD8..0xDB): the rule by which term_forms' readers tell the forms of
 * the two languages apart (model/vocab_store.c's SQL says the same). */
int tf_text_form_is_arabic(const char *form, size_t len);

/* A document is written in Arabic when more than half of its terms (every occurrence) have
 * an Arabic written form: technical tokens (`sql`, `autocad`) inside an Arabic posting do
 * not make it English. 0 for no terms. */
int tf_text_tokens_arabic(const tf_tokens *toks);

#endif
