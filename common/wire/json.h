/*
 * json.h - the little JSON topicflow reads and writes: a reader for one object per line
 * (JSONL rows for `topicflow load`, the management API's queue object) and an escaper for
 * the --json outputs. The reader accepts exactly RFC 8259 (UTF-8 checked, escapes decoded,
 * surrogate pairs joined, nothing after the object); nested objects and arrays that are not
 * arrays of strings are kept as raw text for the caller to accept or refuse.
 */
#ifndef TF_JSON_H
#define TF_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "base/error.h"

typedef enum {
    TF_JSON_NULL,
    TF_JSON_BOOL,
    TF_JSON_NUMBER, /* text is the number exactly as written */
    TF_JSON_STRING, /* text is the decoded string (may contain NUL bytes: check len) */
    TF_JSON_ARRAY,  /* an array whose elements are all strings or null: items */
    TF_JSON_RAW     /* any other object or array: text is its JSON source */
} tf_json_kind;

typedef struct tf_json_value {
    tf_json_kind kind;
    int boolean;              /* TF_JSON_BOOL */
    const char *text;         /* NUMBER, STRING, RAW: NUL-terminated */
    size_t len;
    size_t n_items;           /* TF_JSON_ARRAY */
    const char *const *items; /* NULL for a null element, else NUL-terminated */
    const size_t *item_lens;
} tf_json_value;

typedef struct tf_json_member {
    const char *key; /* decoded, NUL-terminated */
    size_t key_len;
    tf_json_value value;
} tf_json_member;

/* A reusable parser: its buffers grow to the largest object seen, so parsing a file line
 * by line allocates only while lines keep getting longer. */
typedef struct tf_json_object tf_json_object;

tf_json_object *tf_json_object_new(void);
void tf_json_object_free(tf_json_object *o);

/*
 * Parse text[0..len) as one JSON object (whitespace around it allowed). On success the
 * members are available until the next parse or free. A repeated key is an error. Returns 0,
 * or -1 with a reason naming the byte offset ("at byte 17: ...").
 */
int tf_json_parse_object(tf_json_object *o, const char *text, size_t len, tf_err *err);

size_t tf_json_count(const tf_json_object *o);
const tf_json_member *tf_json_member_at(const tf_json_object *o, size_t i);
/* The member named key, or NULL. */
const tf_json_value *tf_json_get(const tf_json_object *o, const char *key);

/* Write s[0..len) as a JSON string literal: the escapes JSON requires, \u00XX for other
 * control characters, and invalid UTF-8 replaced by U+FFFD so the output is always valid
 * JSON. Returns 0, or -1 when out of memory or the stream reports an error. */
int tf_json_write_string(FILE *f, const char *s, size_t len);
/* The same for a NUL-terminated string; NULL is written as null. */
int tf_json_write_cstring(FILE *f, const char *s);

#endif
