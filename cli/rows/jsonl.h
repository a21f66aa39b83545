/*
 * jsonl.h - the JSONL rows of `topicflow load`: one JSON object per line (wire/json.h),
 * blank lines skipped, a UTF-8 byte order mark ignored, CRLF or LF. Reads any FILE (a file,
 * standard input, or a buffer through fmemopen) with no other I/O, so it is tested and
 * fuzzed alone. The reader owns its line buffer and its parser.
 */
#ifndef TF_ROWS_JSONL_H
#define TF_ROWS_JSONL_H

#include <stdio.h>

#include "base/error.h"
#include "wire/json.h"

typedef struct jsonl_reader {
    FILE *in;
    char *line;
    size_t line_cap;
    long line_no;         /* of the line last read */
    tf_json_object *obj;  /* the object of that line, after JSONL_OBJECT */
} jsonl_reader;

enum { JSONL_OBJECT = 1, JSONL_EOF = 0, JSONL_BAD = -1 };

/* 0, or -1 when out of memory (err says so). Free with jsonl_reader_free, also after failure. */
int jsonl_reader_init(jsonl_reader *r, FILE *in, tf_err *err);
void jsonl_reader_free(jsonl_reader *r);

/* Reads the next non-blank line. Returns JSONL_OBJECT (its members in r->obj, valid until
 * the next read), JSONL_EOF (at the end or on a read error: check ferror), or JSONL_BAD
 * with the JSON parser's reason in why. r->line_no is the line's number. */
int jsonl_read(jsonl_reader *r, tf_err *why);

#endif
