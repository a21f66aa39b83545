/*
 * jsonl.c - JSONL lines from a FILE with getline; each non-blank line is one object for
 * tf_json_parse_object, which names the byte of a mistake.
 */
#include "rows/jsonl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

int jsonl_reader_init(jsonl_reader *r, FILE *in, tf_err *err)
{
    memset(r, 0, sizeof(*r));
    r->in = in;
    r->obj = tf_json_object_new();
    if (!r->obj)
        return tf_err_set(err, "out of memory");
    return 0;
}

void jsonl_reader_free(jsonl_reader *r)
{
    free(r->line);
    tf_json_object_free(r->obj);
    memset(r, 0, sizeof(*r));
}

int jsonl_read(jsonl_reader *r, tf_err *why)
{
    ssize_t n;

    while ((n = getline(&r->line, &r->line_cap, r->in)) >= 0) {
        size_t len = (size_t)n;
        int blank = 1;

        r->line_no++;
        if (r->line_no == 1 && len >= 3 && memcmp(r->line, "\xef\xbb\xbf", 3) == 0)
            memset(r->line, ' ', 3); /* a UTF-8 byte order mark */
        while (len && (r->line[len - 1] == '\n' || r->line[len - 1] == '\r'))
            len--;
        for (size_t i = 0; i < len && blank; i++)
            blank = r->line[i] == ' ' || r->line[i] == '\t';
        if (blank)
            continue;
        return tf_json_parse_object(r->obj, r->line, len, why) < 0 ? JSONL_BAD : JSONL_OBJECT;
    }
    return JSONL_EOF;
}
