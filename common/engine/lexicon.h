/*
 * lexicon.h - the bilingual lexicon: Arabic terms mapped to the English term of the same
 * concept, so that a posting in either language counts toward one model term ("تصميم" and
 * "design" both become "design"). Terms on both sides are as the text pipeline makes them
 * (normalised and stemmed: engine/text.h), so the mapping is a lookup after stemming.
 *
 * The table is a file of "arabic-term TAB english-term [TAB english-term...]" lines ('#'
 * starts a comment; the first translation is the table's choice, the others its other
 * dictionary senses, which tf_lexicon_choose weighs against a corpus's usage), made
 * from FreeDict's English-Arabic and Arabic-English dictionaries by `topicflow lexicon
 * build` (data/lexicon/README.md) through the builder below: every single-word translation
 * pair, in either dictionary, votes for (arabic stem, english stem); each Arabic term takes
 * the English term with the most votes (ties: the smaller in byte order).
 */
#ifndef TF_LEXICON_H
#define TF_LEXICON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

typedef struct tf_lexicon tf_lexicon;

/* Read a table file. NULL with err set (unreadable file, a line without exactly one TAB
 * between two non-empty terms: "FILE:LINE: ..."). Free with tf_lexicon_free. */
tf_lexicon *tf_lexicon_load(const char *path, tf_err *err);
void tf_lexicon_free(tf_lexicon *lx);

/* The concept of term[0..len) (*out_len bytes, NUL-terminated), or NULL when the term has
 * no entry. Read-only: one table may serve any number of threads. */
const char *tf_lexicon_concept(const tf_lexicon *lx, const char *term, size_t len,
                               size_t *out_len);

/* Entries in the table; of them, those listing more than one translation. */
size_t tf_lexicon_size(const tf_lexicon *lx);
size_t tf_lexicon_senses(const tf_lexicon *lx);

/* 1 when some entry lists english[0..elen) among its translations. */
int tf_lexicon_is_translation(const tf_lexicon *lx, const char *english, size_t elen);

/* How many of the deployment's documents use english[0..elen) (e.g. its document
 * frequency in the vocabulary), for tf_lexicon_choose. */
typedef int64_t (*tf_lexicon_usage_fn)(void *ctx, const char *english, size_t elen);

/* Like tf_lexicon_concept, but of the term's translations the one usage() rates highest
 * wins; a tie (all 0 included) keeps the table's order, so the first translation is the
 * answer without usage. usage NULL: the first translation. Read-only on lx. */
const char *tf_lexicon_choose(const tf_lexicon *lx, const char *term, size_t len,
                              tf_lexicon_usage_fn usage, void *ctx, size_t *out_len);

/* The table a program's --lexicon setting names: "off" none; NULL, "" or "auto" the one
 * shipped in data_dir (TF_LEXICON_DEFAULT), none when that file is absent; anything else a
 * file that must load. *out gets the table or NULL. 0, or -1 with err set. */
#define TF_LEXICON_DEFAULT "lexicon/ar-en.tsv"
int tf_lexicon_open(const char *setting, const char *data_dir, tf_lexicon **out, tf_err *err);

/* ---- building a table ------------------------------------------------------------------ */

typedef struct tf_lexicon_builder tf_lexicon_builder;

tf_lexicon_builder *tf_lexicon_builder_new(tf_err *err);
void tf_lexicon_builder_free(tf_lexicon_builder *b);

/* One vote for arabic[0..alen) meaning english[0..elen). 0, or -1 out of memory. */
int tf_lexicon_builder_vote(tf_lexicon_builder *b, const char *arabic, size_t alen,
                            const char *english, size_t elen, tf_err *err);

/* One entry of the dictionaries holds english[0..elen): how common the English term is,
 * which breaks a tie of votes between two translations of one Arabic term (the commoner
 * wins; then the smaller in byte order). 0, or -1 out of memory. */
int tf_lexicon_builder_english(tf_lexicon_builder *b, const char *english, size_t elen,
                               tf_err *err);

/* A corpus of the deployment's documents holds english[0..elen) in `docs` documents. With
 * any such counts, an Arabic term takes, of its translations, the one the most documents
 * hold; the votes (then commonness, then byte order) decide only among translations the
 * corpus never uses. 0, or -1 out of memory. */
int tf_lexicon_builder_prefer(tf_lexicon_builder *b, const char *english, size_t elen,
                              int docs, tf_err *err);

/* Write the table (sorted by Arabic term, byte order) to f after the comment lines of
 * header (may be NULL): each Arabic term, its chosen translation, then its other
 * translations in the same order (TAB-separated). *entries gets the line count. 0, or -1
 * with err set. */
int tf_lexicon_builder_write(const tf_lexicon_builder *b, FILE *f, const char *header,
                             size_t *entries, tf_err *err);

/* Every candidate instead: "arabic TAB english TAB votes" for each pair voted for, the
 * chosen translation of each Arabic term first (a diagnostic: what the dictionaries offer). */
int tf_lexicon_builder_write_candidates(const tf_lexicon_builder *b, FILE *f, size_t *entries,
                                        tf_err *err);

#endif
