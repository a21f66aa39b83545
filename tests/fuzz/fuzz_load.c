/*
 * fuzz_load.c - the readers of `topicflow load` (cli/rows) on arbitrary files: the input,
 * opened with fmemopen, is read to the end as CSV and then as JSONL, as the command reads a
 * file of either format. Every CSV field must lie inside the decoded record.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "rows/csv.h"
#include "rows/jsonl.h"

static void read_csv(const uint8_t *data, size_t size)
{
    FILE *in = fmemopen((void *)data, size, "r");
    const char *why;
    csv_reader r;
    long line;
    int st;

    if (!in)
        abort();
    csv_reader_init(&r, in);
    while ((st = csv_read(&r, &line, &why)) != CSV_EOF) {
        if (st == CSV_NOMEM)
            abort();
        if (st == CSV_BAD)
            continue;
        if (r.n_fields == 0 || line < 1 || line > r.line_no)
            abort();
        for (size_t i = 0; i < r.n_fields; i++)
            if (r.off[i] + r.len[i] > r.rec.len)
                abort();
    }
    csv_reader_free(&r);
    fclose(in);
}

static void read_jsonl(const uint8_t *data, size_t size)
{
    FILE *in = fmemopen((void *)data, size, "r");
    jsonl_reader r;
    tf_err why;

    if (!in || jsonl_reader_init(&r, in, &why) < 0)
        abort();
    while (jsonl_read(&r, &why) != JSONL_EOF)
        ;
    jsonl_reader_free(&r);
    fclose(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer */
    read_csv(data, size);
    read_jsonl(data, size);
    return 0;
}
