/*
 * model_blob.h - the binary forms of a topic model and of a statistics delta.
 *
 * Model blob, all integers and doubles little-endian (IEEE 754 binary64):
 *   0  magic "TFNMFMDL"         8 bytes
 *   8  format version (1)       u32
 *  12  flags (bit 0: A and B present; other bits must be 0)  u32
 *  16  k                        u32, 1..NMF_MAX_K
 *  20  n_terms                  u32, 1..INT32_MAX
 *  24  model version            u64
 *  32  W  n_terms × k  f64 (row-major, nmf.h layout)
 *      A  k × k        f64   (only with flag bit 0: the base statistics)
 *      B  n_terms × k  f64   (only with flag bit 0)
 *  end CRC-32 (IEEE) of every preceding byte   u32
 * Delta blob, whichever of two forms is smaller:
 *   rows form: magic "TFNMFDLT", u32 1, u32 k, u32 n_rows, u32 reserved 0, u64 0,
 *     ΔA k × k f64, term ids n_rows × i32, ΔB rows n_rows × k f64, CRC-32;
 *   documents form (the inputs of nmf_delta_add, replayed by the decoder): magic
 *     "TFNMFDLT", u32 2, u32 k, u32 n_parts, u32 0, u64 0, then per part u32 sign (0: +1,
 *     1: −1), u32 n_rows, u32 nnz, u32 0, row bounds (n_rows + 1) × u32, nnz × (u32 term
 *     id, f32 weight), H n_rows × k f64; CRC-32.
 * Decoders check the length implied by the header against the buffer before reading or
 * allocating, then the checksum, then the values (finite; W >= 0): a truncated or
 * corrupted blob (any single changed byte) is an error, never a crash or a wrong model.
 */
#ifndef TF_MODEL_BLOB_H
#define TF_MODEL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "engine/nmf.h"

#define MODEL_BLOB_FORMAT 1

typedef struct model_blob {
    int k;
    int32_t n_terms;
    uint64_t version;
    double *W;        /* n_terms × k */
    double *A;        /* k × k, or NULL when the blob carries no statistics */
    double *B;        /* n_terms × k, or NULL likewise */
} model_blob;

/* Encode m (A and B both NULL, or both set) into a malloc'd buffer *out of *out_len
 * bytes, owned by the caller (free). */
int model_blob_encode(const model_blob *m, uint8_t **out, size_t *out_len, tf_err *err);

/* Decode buf into *m, whose arrays are malloc'd (release with model_blob_clear). On
 * error *m is left zeroed. */
int model_blob_decode(const uint8_t *buf, size_t len, model_blob *m, tf_err *err);

void model_blob_clear(model_blob *m);

/* Delta blob of a worker mini-batch; decode returns a new nmf_delta (nmf_delta_free).
 * Every term id must be below n_terms, the size of the vocabulary the delta is applied
 * with: an id beyond it is corruption, which would otherwise size the delta's term map and
 * the statistics it is added to (gigabytes for one bad id in a blob of a few hundred bytes). */
int model_blob_encode_delta(const nmf_delta *d, uint8_t **out, size_t *out_len, tf_err *err);
nmf_delta *model_blob_decode_delta(const uint8_t *buf, size_t len, int32_t n_terms, tf_err *err);

/* CRC-32 (IEEE 802.3, reflected, as in zlib and PNG) of len bytes. */
uint32_t model_blob_crc32(const uint8_t *p, size_t len);

#endif
