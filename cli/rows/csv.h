/*
 * csv.h - the CSV records of `topicflow load`: RFC 4180 (quoted fields may hold commas, ""
 * and line breaks; CRLF or LF), a UTF-8 byte order mark skipped, read from any FILE (a file,
 * standard input, or a buffer through fmemopen) with no other I/O, so it is tested and
 * fuzzed alone. The reader owns its buffers and reuses them from record to record.
 */
#ifndef TF_ROWS_CSV_H
#define TF_ROWS_CSV_H

#include <stddef.h>
#include <stdio.h>

#include "base/buf.h"

typedef struct csv_reader {
    FILE *in;
    char *line;      /* the physical line being parsed */
    size_t line_cap, line_len, pos;
    long line_no;    /* of the physical line in `line` */
    tf_buf rec;      /* the decoded fields of the record, one after another */
    size_t *off, *len; /* field i is rec.p[off[i] .. off[i] + len[i]) */
    unsigned char *quoted; /* 1 when field i was quoted ("" is an empty string, not NULL) */
    size_t n_fields, off_cap, len_cap, quoted_cap;
} csv_reader;

enum { CSV_RECORD = 1, CSV_EOF = 0, CSV_BAD = -1, CSV_NOMEM = -2 };

void csv_reader_init(csv_reader *r, FILE *in);
void csv_reader_free(csv_reader *r);

/*
 * Reads one record. Returns CSV_RECORD (its fields in r, valid until the next read),
 * CSV_EOF, CSV_BAD with *why set and the rest of the offending line skipped, or CSV_NOMEM.
 * *start_line gets the line the record began on.
 */
int csv_read(csv_reader *r, long *start_line, const char **why);

#endif
