/*
 * fuzz_model_blob.c - the model blob loader (engine/model_blob.h) on arbitrary bytes: both
 * decoders (model and statistics delta). Encoding an accepted model must give back the very
 * same bytes; an accepted delta (whose repeated terms are merged) must encode to a delta
 * that decodes again with as many rows.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    model_blob m;
    nmf_delta *d;
    tf_err err;
    uint8_t *out = NULL;
    size_t out_len;

    if (model_blob_decode(data, size, &m, &err) == 0) {
        if (model_blob_encode(&m, &out, &out_len, &err) != 0 || out_len != size ||
            memcmp(out, data, size) != 0)
            abort();
        free(out);
        model_blob_clear(&m);
    }
    d = model_blob_decode_delta(data, size, &err);
    if (d) {
        nmf_delta *again;
        if (model_blob_encode_delta(d, &out, &out_len, &err) != 0 ||
            !(again = model_blob_decode_delta(out, out_len, &err)) ||
            nmf_delta_n_rows(again) != nmf_delta_n_rows(d))
            abort();
        nmf_delta_free(again);
        free(out);
        nmf_delta_free(d);
    }
    return 0;
}
