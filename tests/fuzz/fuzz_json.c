/*
 * fuzz_json.c - the JSON reader and writer (wire/json.h) on arbitrary bytes: the input is
 * parsed as one object (a JSONL row, a management API answer) by a new parser and by one
 * reused from input to input; every member of an accepted object is found again by its key,
 * and the input written as a JSON string literal must parse back, to the same bytes when
 * the input is valid UTF-8.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "wire/json.h"

/* Parsers are reusable (their buffers grow to the largest object seen); one per process. */
static tf_json_object *obj, *back;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    obj = tf_json_object_new();
    back = tf_json_object_new();
    if (!obj || !back)
        abort();
    return 0;
}

static void check_members(void)
{
    for (size_t i = 0; i < tf_json_count(obj); i++) {
        const tf_json_member *m = tf_json_member_at(obj, i);
        if (strlen(m->key) == m->key_len && tf_json_get(obj, m->key) != &m->value)
            abort();
    }
}

/* {"s": <data as a string literal>} must parse, and give data back when it is valid UTF-8. */
static void check_write_string(const char *data, size_t size)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    const tf_json_value *v;
    tf_err err;

    if (!f)
        abort();
    fputs("{\"s\": ", f);
    if (tf_json_write_string(f, data, size) < 0)
        abort();
    fputc('}', f);
    fclose(f);
    if (tf_json_parse_object(back, text, len, &err) < 0)
        abort();
    v = tf_json_get(back, "s");
    if (!v || v->kind != TF_JSON_STRING)
        abort();
    if (tf_utf8_check(data, size) == size && (v->len != size || memcmp(v->text, data, size) != 0))
        abort();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_json_object *fresh = tf_json_object_new();
    tf_err err;

    /* A new parser too: one that never stored an item or a key takes other paths. */
    if (!fresh)
        abort();
    tf_json_parse_object(fresh, (const char *)data, size, &err);
    tf_json_object_free(fresh);
    if (tf_json_parse_object(obj, (const char *)data, size, &err) == 0)
        check_members();
    check_write_string((const char *)data, size);
    return 0;
}
