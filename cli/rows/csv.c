/*
 * csv.c - RFC 4180 records from a FILE, line by line with getline: a quoted field that
 * holds a line break continues on the next physical line. A malformed record skips the rest
 * of its line, so one bad row does not swallow the rows after it.
 */
#include "rows/csv.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "base/grow.h"

void csv_reader_init(csv_reader *r, FILE *in)
{
    memset(r, 0, sizeof(*r));
    r->in = in;
    tf_buf_init(&r->rec);
}

void csv_reader_free(csv_reader *r)
{
    free(r->line);
    tf_buf_free(&r->rec);
    free(r->off);
    free(r->len);
    free(r->quoted);
    memset(r, 0, sizeof(*r));
}

static int next_line(csv_reader *r)
{
    ssize_t n = getline(&r->line, &r->line_cap, r->in);

    if (n < 0)
        return 0;
    r->line_len = (size_t)n;
    r->pos = 0;
    r->line_no++;
    if (r->line_no == 1 && n >= 3 && memcmp(r->line, "\xef\xbb\xbf", 3) == 0)
        r->pos = 3;
    return 1;
}

static int end_field(csv_reader *r, size_t start, int quoted)
{
    if (TF_GROW(r->off, r->off_cap, r->n_fields + 1) < 0 ||
        TF_GROW(r->len, r->len_cap, r->n_fields + 1) < 0 ||
        TF_GROW(r->quoted, r->quoted_cap, r->n_fields + 1) < 0)
        return -1;
    r->off[r->n_fields] = start;
    r->len[r->n_fields] = r->rec.len - start;
    r->quoted[r->n_fields] = (unsigned char)quoted;
    r->n_fields++;
    return 0;
}

int csv_read(csv_reader *r, long *start_line, const char **why)
{
    size_t start;
    int quoted;

    tf_buf_reset(&r->rec);
    tf_buf_append(&r->rec, "", 0); /* rec.p is never NULL, even when every field is empty */
    r->n_fields = 0;
    if (r->pos >= r->line_len && !next_line(r))
        return CSV_EOF;
    *start_line = r->line_no;
    for (;;) {
        char c;
        start = r->rec.len;
        quoted = 0;
        if (r->pos < r->line_len && r->line[r->pos] == '"') {
            quoted = 1;
            r->pos++;
            for (;;) {
                if (r->pos >= r->line_len) {
                    if (!next_line(r)) {
                        *why = "unterminated quoted field";
                        return CSV_BAD;
                    }
                    continue;
                }
                c = r->line[r->pos++];
                if (c == '"') {
                    if (r->pos < r->line_len && r->line[r->pos] == '"')
                        r->pos++;
                    else
                        break;
                }
                tf_buf_append(&r->rec, &c, 1);
            }
        } else {
            while (r->pos < r->line_len) {
                c = r->line[r->pos];
                if (c == ',' || c == '\n' ||
                    (c == '\r' && r->pos + 1 < r->line_len && r->line[r->pos + 1] == '\n'))
                    break;
                if (c == '"') {
                    *why = "a quote inside an unquoted field";
                    r->pos = r->line_len;
                    return CSV_BAD;
                }
                tf_buf_append(&r->rec, &c, 1);
                r->pos++;
            }
        }
        if (!tf_buf_ok(&r->rec) || end_field(r, start, quoted) < 0)
            return CSV_NOMEM;
        if (r->pos >= r->line_len)
            return CSV_RECORD; /* the last line without a line break */
        c = r->line[r->pos++];
        if (c == ',')
            continue;
        if (c == '\r' && r->pos < r->line_len && r->line[r->pos] == '\n')
            c = r->line[r->pos++];
        if (c == '\n')
            return CSV_RECORD;
        *why = "text after a closing quote";
        r->pos = r->line_len;
        return CSV_BAD;
    }
}
