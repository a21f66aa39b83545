/*
 * fuzz_text.c - the text pipeline (engine/text.h) on arbitrary bytes: invalid UTF-8, any
 * script, Arabic marks, technical tokens. Two pipelines with the stop words of data/: the
 * defaults, and a 40-byte input limit with one-code-point terms, which puts the cut (and the
 * truncation at a code point boundary) inside the input. Every term must lie inside the
 * output bytes, be NUL-terminated, non-empty, valid UTF-8 and no longer than the maximum.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "engine/text.h"

/* libFuzzer calls the target once per input; the pipelines (stemmers, stop words) are built
 * once per process, as a worker builds one per thread. */
static tf_text *pipelines[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const tf_text_opts opts[2] = {
        {.data_dir = TOPICFLOW_SOURCE_DATA_DIR},
        {.data_dir = TOPICFLOW_SOURCE_DATA_DIR, .max_input = 40, .min_token_len = 1},
    };
    tf_err err;

    for (int i = 0; i < 2; i++)
        if (!(pipelines[i] = tf_text_new(&opts[i], &err)))
            abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_text *t = pipelines[size && (data[0] & 1)];
    tf_tokens out;
    tf_err err;

    if (tf_text_tokenize(t, (const char *)data, size, &out, &err) < 0)
        abort();
    for (size_t i = 0; i < out.n; i++) {
        const char *term = out.bytes + out.tok[i].off;
        size_t len = out.tok[i].len;
        if (len == 0 || term[len] != '\0' || memchr(term, '\0', len) ||
            tf_utf8_check(term, len) != len || len > 4 * TF_TEXT_MAX_TOKEN)
            abort();
    }
    return 0;
}
