/*
 * sample.h - realistic synthetic internship postings (English and Arabic) for the tests, the
 * demo and the benchmarks. The text comes from template files under <data_dir>/sample/ (format
 * in data/sample/README.md); generation itself does no I/O and is deterministic: the same
 * templates, seed and sequence of calls give byte-identical postings on every platform.
 * Every posting's description is 600-1,200 bytes of valid UTF-8.
 */
#ifndef TF_SAMPLE_H
#define TF_SAMPLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

typedef struct tf_sample tf_sample;

typedef enum tf_sample_lang {
    TF_SAMPLE_EN,
    TF_SAMPLE_AR,
    TF_SAMPLE_MIXED /* about 60 % English, 40 % Arabic, drawn per posting */
} tf_sample_lang;

enum { TF_SAMPLE_DESC_MIN = 600, TF_SAMPLE_DESC_MAX = 1200, TF_SAMPLE_MAX_SKILLS = 8 };

/* One generated posting. Every string is NUL-terminated UTF-8 owned by the tf_sample that
 * produced it and stays valid until the next tf_sample_next() or tf_sample_free() on it. */
typedef struct tf_posting {
    const char *title;
    const char *company;
    const char *location;
    const char *description;
    const char *skills[TF_SAMPLE_MAX_SKILLS];
    size_t n_skills;
    const char *field;  /* ground truth: the primary field's id, e.g. "software" */
    size_t field_index; /* index of that field for tf_sample_field_name() */
    const char *lang;   /* "en" or "ar" */
} tf_posting;

/* Load and validate the templates under <data_dir>/sample/. Returns NULL with a message in
 * err when a file is missing or malformed; the message names the file and, for a bad line,
 * "path:line:". The caller frees the result with tf_sample_free(). */
tf_sample *tf_sample_new(const char *data_dir, tf_err *err);
void tf_sample_free(tf_sample *s);

/* Fill *out with the next posting, advancing *rng_state (any value is a valid seed; the
 * caller owns it, so two generators never share hidden state). Returns 0, or -1 only when
 * memory runs out. One tf_sample must not be used by two threads at once. */
int tf_sample_next(tf_sample *s, uint64_t *rng_state, tf_sample_lang lang, tf_posting *out);

/* Fields in the order of fields.list. The name is owned by s; NULL when i >= count. */
size_t tf_sample_field_count(const tf_sample *s);
const char *tf_sample_field_name(const tf_sample *s, size_t i);


/* Output formats of `topicflow sample`. Return 0, or -1 when the stream reports an error.
 * JSON: one object per line, keys title, company, location, description, skills (array),
 * field, lang; strings escaped for any input (invalid UTF-8 becomes U+FFFD).
 * CSV: RFC 4180 quoting, LF line ends, skills as a PostgreSQL array literal ({"a","b"}) so
 * that COPY ... CSV loads the column into text[] directly. */
int tf_sample_write_json(FILE *f, const tf_posting *p);
int tf_sample_write_csv_header(FILE *f);
int tf_sample_write_csv(FILE *f, const tf_posting *p);

#endif
