/*
 * model_blob.c - encoder and validating decoder of model and delta blobs (format in
 * model_blob.h). Byte order is written out byte by byte, so blobs move between hosts
 * of any endianness; nothing declared in a header is trusted before it is checked
 * against the buffer length.
 */
#include "engine/model_blob.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MB_MAGIC_MODEL "TFNMFMDL"
#define MB_MAGIC_DELTA "TFNMFDLT"
#define MB_HEADER 32
#define MB_FLAG_STATS 1u
#define MB_DELTA_DOCS 2u /* a delta blob's format word for the documents form */

uint32_t model_blob_crc32(const uint8_t *p, size_t len)
{
    uint32_t table[256];
    uint32_t crc = 0xffffffffu;

    /* Built per call (256 steps) so that no global table is needed. */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int b = 0; b < 8; b++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    for (size_t i = 0; i < len; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;

    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t *put_f64s(uint8_t *p, const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 8) {
        uint64_t bits;
        memcpy(&bits, &x[i], 8);
        put_u64(p, bits);
    }
    return p;
}

/* Reads n doubles; -1 if one is not finite (a corrupted exponent can make NaN/Inf). */
static int get_f64s(const uint8_t *p, double *x, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 8) {
        uint64_t bits = get_u64(p);
        memcpy(&x[i], &bits, 8);
        if (!isfinite(x[i]))
            return -1;
    }
    return 0;
}

int model_blob_encode(const model_blob *m, uint8_t **out, size_t *out_len, tf_err *err)
{
    size_t cells, len;
    int stats;
    uint8_t *buf, *p;

    *out = NULL;
    *out_len = 0;
    if (!m || m->k < 1 || m->k > NMF_MAX_K || m->n_terms < 1 || !m->W)
        return tf_err_set(err, "model_blob_encode: bad model (k %d, %d terms)", m ? m->k : 0,
                          m ? m->n_terms : 0);
    if (!m->A != !m->B)
        return tf_err_set(err, "model_blob_encode: A and B must be both present or both absent");
    stats = m->A != NULL;
    cells = (size_t)m->n_terms * m->k;
    len = MB_HEADER + 8 * (cells + (stats ? (size_t)m->k * m->k + cells : 0)) + 4;
    buf = malloc(len);
    if (!buf)
        return tf_err_set(err, "model_blob_encode: out of memory (%zu bytes)", len);
    memcpy(buf, MB_MAGIC_MODEL, 8);
    put_u32(buf + 8, MODEL_BLOB_FORMAT);
    put_u32(buf + 12, stats ? MB_FLAG_STATS : 0);
    put_u32(buf + 16, (uint32_t)m->k);
    put_u32(buf + 20, (uint32_t)m->n_terms);
    put_u64(buf + 24, m->version);
    p = put_f64s(buf + MB_HEADER, m->W, cells);
    if (stats) {
        p = put_f64s(p, m->A, (size_t)m->k * m->k);
        p = put_f64s(p, m->B, cells);
    }
    put_u32(p, model_blob_crc32(buf, len - 4));
    *out = buf;
    *out_len = len;
    return 0;
}

void model_blob_clear(model_blob *m)
{
    free(m->W);
    free(m->A);
    free(m->B);
    memset(m, 0, sizeof(*m));
}

/* Common framing checks: magic, minimum length, checksum of the whole buffer. */
static int mb_check_frame(const uint8_t *buf, size_t len, const char *magic, const char *what,
                          tf_err *err)
{
    if (!buf || len < MB_HEADER + 4)
        return tf_err_set(err, "%s: truncated (%zu bytes, header needs %d)", what, len,
                          MB_HEADER + 4);
    if (memcmp(buf, magic, 8) != 0)
        return tf_err_set(err, "%s: bad magic (not a topicflow %s)", what, what);
    if (get_u32(buf + 8) != MODEL_BLOB_FORMAT)
        return tf_err_set(err, "%s: unsupported format version %u", what, get_u32(buf + 8));
    return 0;
}

static int mb_check_crc(const uint8_t *buf, size_t len, const char *what, tf_err *err)
{
    uint32_t want = get_u32(buf + len - 4), got = model_blob_crc32(buf, len - 4);

    if (want != got)
        return tf_err_set(err, "%s: checksum mismatch (stored %08x, computed %08x): corrupted",
                          what, want, got);
    return 0;
}

int model_blob_decode(const uint8_t *buf, size_t len, model_blob *m, tf_err *err)
{
    uint32_t flags, k, n_terms;
    uint64_t cells, expect;
    const uint8_t *p;

    memset(m, 0, sizeof(*m));
    if (mb_check_frame(buf, len, MB_MAGIC_MODEL, "model blob", err) < 0)
        return -1;
    flags = get_u32(buf + 12);
    k = get_u32(buf + 16);
    n_terms = get_u32(buf + 20);
    if (flags & ~MB_FLAG_STATS)
        return tf_err_set(err, "model blob: unknown flags 0x%x", flags);
    if (k < 1 || k > NMF_MAX_K || n_terms < 1 || n_terms > INT32_MAX)
        return tf_err_set(err, "model blob: bad shape (k %u, %u terms)", k, n_terms);
    /* k <= 4096 and n_terms < 2^31, so these products stay far below 2^64. */
    cells = (uint64_t)n_terms * k;
    expect = MB_HEADER + 8 * (cells + (flags & MB_FLAG_STATS ? (uint64_t)k * k + cells : 0)) + 4;
    if (expect != len)
        return tf_err_set(err, "model blob: length %zu but header implies %llu bytes (%s)", len,
                          (unsigned long long)expect, len < expect ? "truncated" : "trailing data");
    if (mb_check_crc(buf, len, "model blob", err) < 0)
        return -1;
    m->k = (int)k;
    m->n_terms = (int32_t)n_terms;
    m->version = get_u64(buf + 24);
    m->W = malloc(8 * cells);
    if (flags & MB_FLAG_STATS) {
        m->A = malloc(8 * (size_t)k * k);
        m->B = malloc(8 * cells);
    }
    if (!m->W || ((flags & MB_FLAG_STATS) && (!m->A || !m->B))) {
        model_blob_clear(m);
        return tf_err_set(err, "model blob: out of memory for %u x %u", n_terms, k);
    }
    p = buf + MB_HEADER;
    if (get_f64s(p, m->W, cells) < 0)
        goto bad_value;
    for (uint64_t i = 0; i < cells; i++)
        if (m->W[i] < 0.0)
            goto bad_value;
    p += 8 * cells;
    if (flags & MB_FLAG_STATS) {
        if (get_f64s(p, m->A, (size_t)k * k) < 0 || get_f64s(p + 8 * (size_t)k * k, m->B, cells) < 0)
            goto bad_value;
    }
    return 0;
bad_value:
    model_blob_clear(m);
    return tf_err_set(err, "model blob: negative or non-finite value in a matrix");
}

/* Bytes of the documents form, or 0 when the delta has none (or a part is too large for
 * its 32-bit counts). */
static size_t delta_docs_len(const nmf_delta *d)
{
    int64_t n = nmf_delta_n_parts(d);
    int k = nmf_delta_k(d);
    size_t len = MB_HEADER + 4;

    if (n < 0)
        return 0;
    for (int64_t i = 0; i < n; i++) {
        double sign;
        const tf_csr *X;
        const double *H;
        nmf_delta_part(d, (size_t)i, &sign, &X, &H);
        if (csr_nnz(X) > (int64_t)UINT32_MAX / 8)
            return 0;
        len += 16 + 4 * ((size_t)X->n_rows + 1) + 8 * (size_t)csr_nnz(X) +
               8 * (size_t)X->n_rows * (size_t)k;
    }
    return len;
}

int model_blob_encode_delta(const nmf_delta *d, uint8_t **out, size_t *out_len, tf_err *err)
{
    int k = nmf_delta_k(d);
    int32_t n = nmf_delta_n_rows(d);
    size_t len = MB_HEADER + 8 * (size_t)k * k + 4 * (size_t)n + 8 * (size_t)n * k + 4;
    size_t docs = delta_docs_len(d);
    const int32_t *terms = nmf_delta_terms(d);
    uint8_t *buf, *p;
    int by_docs = docs && docs < len;

    *out = NULL;
    *out_len = 0;
    if (by_docs)
        len = docs;
    buf = malloc(len);
    if (!buf)
        return tf_err_set(err, "delta blob: out of memory (%zu bytes)", len);
    memset(buf, 0, MB_HEADER);
    memcpy(buf, MB_MAGIC_DELTA, 8);
    put_u32(buf + 12, (uint32_t)k);
    if (by_docs) {
        int64_t parts = nmf_delta_n_parts(d);
        put_u32(buf + 8, MB_DELTA_DOCS);
        put_u32(buf + 16, (uint32_t)parts);
        p = buf + MB_HEADER;
        for (int64_t i = 0; i < parts; i++) {
            double sign;
            const tf_csr *X;
            const double *H;
            nmf_delta_part(d, (size_t)i, &sign, &X, &H);
            put_u32(p, sign < 0);
            put_u32(p + 4, (uint32_t)X->n_rows);
            put_u32(p + 8, (uint32_t)csr_nnz(X));
            put_u32(p + 12, 0);
            p += 16;
            for (int32_t r = 0; r <= X->n_rows; r++, p += 4)
                put_u32(p, (uint32_t)X->row_ptr[r]);
            for (int64_t e = 0; e < csr_nnz(X); e++, p += 8) {
                uint32_t bits;
                memcpy(&bits, &X->val[e], 4);
                put_u32(p, (uint32_t)X->col_idx[e]);
                put_u32(p + 4, bits);
            }
            p = put_f64s(p, H, (size_t)X->n_rows * (size_t)k);
        }
    } else {
        put_u32(buf + 8, MODEL_BLOB_FORMAT);
        put_u32(buf + 16, (uint32_t)n);
        p = put_f64s(buf + MB_HEADER, nmf_delta_A(d), (size_t)k * k);
        for (int32_t i = 0; i < n; i++, p += 4)
            put_u32(p, (uint32_t)terms[i]);
        p = put_f64s(p, nmf_delta_rows(d), (size_t)n * k);
    }
    put_u32(p, model_blob_crc32(buf, len - 4));
    *out = buf;
    *out_len = len;
    return 0;
}

/* The documents form: each part replayed through nmf_delta_add, which gives the statistics
 * the writer accumulated from the same inputs. Every count is checked against the bytes
 * left before anything is allocated. */
static nmf_delta *decode_delta_docs(const uint8_t *buf, size_t len, uint32_t k, uint32_t parts,
                                    int32_t n_terms, tf_err *err)
{
    const uint8_t *p = buf + MB_HEADER, *end = buf + len - 4;
    nmf_delta *d = nmf_delta_new((int)k, err);
    tf_csr X;
    double *H = NULL;

    memset(&X, 0, sizeof(X));
    if (!d)
        return NULL;
    for (uint32_t i = 0; i < parts; i++) {
        uint32_t neg, rows, nnz;
        uint64_t need;
        if ((size_t)(end - p) < 16) {
            tf_err_set(err, "delta blob: truncated in part %u", i);
            goto fail;
        }
        neg = get_u32(p);
        rows = get_u32(p + 4);
        nnz = get_u32(p + 8);
        need = 16 + 4 * ((uint64_t)rows + 1) + 8 * (uint64_t)nnz + 8 * (uint64_t)rows * k;
        if (neg > 1 || get_u32(p + 12) != 0 || rows > INT32_MAX || need > (uint64_t)(end - p)) {
            tf_err_set(err, "delta blob: bad part %u (%u rows, %u non-zeros)", i, rows, nnz);
            goto fail;
        }
        p += 16;
        if (csr_alloc(&X, (int32_t)rows, n_terms < 0 ? 0 : n_terms, nnz, err) < 0)
            goto fail;
        H = malloc(8 * ((size_t)rows * k + 1));
        if (!H) {
            tf_err_set(err, "delta blob: out of memory (%u rows)", rows);
            goto fail;
        }
        for (uint32_t r = 0; r <= rows; r++, p += 4)
            X.row_ptr[r] = get_u32(p);
        for (uint32_t e = 0; e < nnz; e++, p += 8) {
            uint32_t bits = get_u32(p + 4);
            X.col_idx[e] = (int32_t)get_u32(p);
            memcpy(&X.val[e], &bits, 4);
            if (get_u32(p) >= (uint32_t)(n_terms < 0 ? 0 : n_terms)) {
                tf_err_set(err, "delta blob: term id %u beyond the vocabulary's %d terms",
                           get_u32(p), n_terms);
                goto fail;
            }
        }
        if (X.row_ptr[0] != 0 || X.row_ptr[rows] != (int64_t)nnz ||
            get_f64s(p, H, (size_t)rows * k) < 0) {
            tf_err_set(err, "delta blob: malformed part %u", i);
            goto fail;
        }
        p += 8 * (size_t)rows * k;
        /* csr_check (in nmf_delta_add) refuses unordered row bounds and bad values */
        if (nmf_delta_add(d, &X, H, neg ? -1.0 : 1.0, err) < 0) {
            tf_err_prefix(err, "delta blob: part %u", i);
            goto fail;
        }
        csr_free(&X);
        free(H);
        H = NULL;
    }
    if (p != end) {
        tf_err_set(err, "delta blob: %zu bytes after the last part", (size_t)(end - p));
        goto fail;
    }
    return d;
fail:
    csr_free(&X);
    free(H);
    nmf_delta_free(d);
    return NULL;
}

nmf_delta *model_blob_decode_delta(const uint8_t *buf, size_t len, int32_t n_terms, tf_err *err)
{
    uint32_t k, n;
    uint64_t expect;
    double *A = NULL, *rows = NULL;
    int32_t *terms = NULL;
    nmf_delta *d = NULL;
    const uint8_t *p;

    if (buf && len >= MB_HEADER + 4 && !memcmp(buf, MB_MAGIC_DELTA, 8) &&
        get_u32(buf + 8) == MB_DELTA_DOCS) {
        k = get_u32(buf + 12);
        if (k < 1 || k > NMF_MAX_K || get_u32(buf + 20) != 0 || get_u64(buf + 24) != 0) {
            tf_err_set(err, "delta blob: bad header (k %u)", k);
            return NULL;
        }
        if (mb_check_crc(buf, len, "delta blob", err) < 0)
            return NULL;
        return decode_delta_docs(buf, len, k, get_u32(buf + 16), n_terms, err);
    }
    if (mb_check_frame(buf, len, MB_MAGIC_DELTA, "delta blob", err) < 0)
        return NULL;
    k = get_u32(buf + 12);
    n = get_u32(buf + 16);
    if (k < 1 || k > NMF_MAX_K || n > INT32_MAX || get_u32(buf + 20) != 0 ||
        get_u64(buf + 24) != 0) {
        tf_err_set(err, "delta blob: bad header (k %u, %u rows)", k, n);
        return NULL;
    }
    expect = MB_HEADER + 8 * (uint64_t)k * k + 4 * (uint64_t)n + 8 * (uint64_t)n * k + 4;
    if (expect != len) {
        tf_err_set(err, "delta blob: length %zu but header implies %llu bytes (%s)", len,
                   (unsigned long long)expect, len < expect ? "truncated" : "trailing data");
        return NULL;
    }
    if (mb_check_crc(buf, len, "delta blob", err) < 0)
        return NULL;
    A = malloc(8 * (size_t)k * k);
    terms = malloc(4 * (size_t)(n ? n : 1));
    rows = malloc(8 * (size_t)(n ? n : 1) * k);
    if (!A || !terms || !rows) {
        tf_err_set(err, "delta blob: out of memory (%u rows)", n);
        goto fail;
    }
    p = buf + MB_HEADER;
    if (get_f64s(p, A, (size_t)k * k) < 0)
        goto bad_value;
    p += 8 * (size_t)k * k;
    for (uint32_t i = 0; i < n; i++, p += 4) {
        uint32_t t = get_u32(p);
        if (n_terms < 0 || t >= (uint32_t)n_terms) {
            tf_err_set(err, "delta blob: term id %u beyond the vocabulary's %d terms", t, n_terms);
            goto fail;
        }
        terms[i] = (int32_t)t;
    }
    if (get_f64s(p, rows, (size_t)n * k) < 0)
        goto bad_value;
    d = nmf_delta_new((int)k, err);
    if (!d || nmf_delta_add_raw(d, A, (int32_t)n, terms, rows, 1.0, err) < 0)
        goto fail;
    free(A);
    free(terms);
    free(rows);
    return d;
bad_value:
    tf_err_set(err, "delta blob: non-finite value");
fail:
    nmf_delta_free(d);
    free(A);
    free(terms);
    free(rows);
    return NULL;
}
