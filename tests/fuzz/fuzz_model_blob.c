/*
 * fuzz_model_blob.c - the model blob loader (engine/model_blob.h) on arbitrary bytes: both
 * decoders (model and statistics delta). Encoding an accepted model must give back the very
 * same bytes; an accepted delta (whose repeated terms are merged) must encode to a delta
 * that decodes again with as many rows. A mutated blob almost never carries the right
 * CRC-32, which would stop it at the checksum, so each input is decoded twice: as it is, and
 * with its last four bytes replaced by the checksum of the rest, which reaches the header
 * and value checks behind the checksum.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_blob.h"

#define VOCABULARY (1 << 16) /* terms a delta may name, as the vocabulary bounds them */

static void decode(const uint8_t *data, size_t size)
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
    d = model_blob_decode_delta(data, size, VOCABULARY, &err);
    if (d) {
        nmf_delta *again;
        if (model_blob_encode_delta(d, &out, &out_len, &err) != 0 ||
            !(again = model_blob_decode_delta(out, out_len, VOCABULARY, &err)) ||
            nmf_delta_n_rows(again) != nmf_delta_n_rows(d))
            abort();
        nmf_delta_free(again);
        free(out);
        nmf_delta_free(d);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed;
    uint32_t crc;

    decode(data, size);
    if (size < 4 || !(fixed = malloc(size)))
        return 0;
    memcpy(fixed, data, size);
    crc = model_blob_crc32(fixed, size - 4);
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i)); /* little-endian, as the format */
    decode(fixed, size);
    free(fixed);
    return 0;
}
