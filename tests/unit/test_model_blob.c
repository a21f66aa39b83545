/*
 * test_model_blob.c - model and delta blobs round-trip exactly, and a decoder rejects
 * every truncation, every single-byte corruption and any header that lies about sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "engine/model_blob.h"

enum { K = 3, TERMS = 7 };

typedef struct fixture {
    double W[TERMS * K], A[K * K], B[TERMS * K];
    model_blob m;
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    for (int i = 0; i < TERMS * K; i++) {
        f->W[i] = (i % 5) * 0.125 + i * 1e-3;
        f->B[i] = -0.5 + i * 0.01;
    }
    for (int i = 0; i < K * K; i++)
        f->A[i] = 1.0 / (1 + i);
    f->m = (model_blob){ .k = K, .n_terms = TERMS, .version = 0x0102030405060708ULL,
                         .W = f->W, .A = f->A, .B = f->B };
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_model_round_trips_with_statistics(void **state)
{
    fixture *f = *state;
    uint8_t *buf;
    size_t len;
    model_blob out;

    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), 0);
    assert_int_equal(len, 32 + 8 * (TERMS * K * 2 + K * K) + 4);
    assert_memory_equal(buf, "TFNMFMDL", 8);
    assert_int_equal(buf[24], 0x08); /* little-endian version */
    assert_int_equal(model_blob_decode(buf, len, &out, NULL), 0);
    assert_int_equal(out.k, K);
    assert_int_equal(out.n_terms, TERMS);
    assert_true(out.version == f->m.version);
    assert_memory_equal(out.W, f->W, sizeof(f->W));
    assert_memory_equal(out.A, f->A, sizeof(f->A));
    assert_memory_equal(out.B, f->B, sizeof(f->B));
    model_blob_clear(&out);
    free(buf);
}

static void test_model_round_trips_without_statistics(void **state)
{
    fixture *f = *state;
    uint8_t *buf;
    size_t len;
    model_blob out;

    f->m.A = NULL;
    f->m.B = NULL;
    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), 0);
    assert_int_equal(model_blob_decode(buf, len, &out, NULL), 0);
    assert_null(out.A);
    assert_null(out.B);
    assert_memory_equal(out.W, f->W, sizeof(f->W));
    model_blob_clear(&out);
    free(buf);
}

static void test_every_single_byte_corruption_is_rejected(void **state)
{
    fixture *f = *state;
    static const uint8_t flips[] = { 0x01, 0x80, 0xff, 0x5a };
    uint8_t *buf;
    size_t len;
    model_blob out;
    tf_err err = { 0 };

    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), 0);
    for (size_t i = 0; i < len; i++)
        for (size_t x = 0; x < sizeof(flips); x++) {
            buf[i] ^= flips[x];
            assert_int_equal(model_blob_decode(buf, len, &out, &err), -1);
            assert_null(out.W);
            assert_true(strlen(err.msg) > 0);
            buf[i] ^= flips[x];
        }
    assert_int_equal(model_blob_decode(buf, len, &out, NULL), 0);
    model_blob_clear(&out);
    free(buf);
}

static void test_every_truncation_and_trailing_byte_is_rejected(void **state)
{
    fixture *f = *state;
    uint8_t *buf, *longer;
    size_t len;
    model_blob out;
    tf_err err = { 0 };

    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), 0);
    for (size_t n = 0; n < len; n++) {
        /* a fresh copy of exactly n bytes, so ASan catches any read past it */
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        assert_int_equal(model_blob_decode(cut, n, &out, &err), -1);
        free(cut);
    }
    longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(model_blob_decode(longer, len + 1, &out, &err), -1);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    free(buf);
}

static void test_header_claiming_huge_model_is_rejected_before_allocating(void **state)
{
    uint8_t buf[64] = "TFNMFMDL";
    model_blob out;
    tf_err err = { 0 };

    buf[8] = 1;                                        /* format 1 */
    buf[16] = 0x00, buf[17] = 0x10;                    /* k = 4096 */
    buf[20] = buf[21] = buf[22] = 0xff, buf[23] = 0x7f; /* n_terms = 2^31 − 1 */
    assert_int_equal(model_blob_decode(buf, sizeof(buf), &out, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    buf[23] = 0xff;                                    /* n_terms = 2^32 − 1 */
    assert_int_equal(model_blob_decode(buf, sizeof(buf), &out, &err), -1);
    assert_non_null(strstr(err.msg, "bad shape"));
    assert_int_equal(model_blob_decode(NULL, 0, &out, &err), -1);
}

static void test_encoder_rejects_half_statistics_and_bad_shape(void **state)
{
    fixture *f = *state;
    uint8_t *buf;
    size_t len;

    f->m.B = NULL;
    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), -1);
    f->m.B = f->B;
    f->m.k = 0;
    assert_int_equal(model_blob_encode(&f->m, &buf, &len, NULL), -1);
    assert_null(buf);
}

static nmf_delta *sample_delta(void)
{
    int32_t terms[3] = { 40, 2, 17 };
    double A[K * K], rows[3 * K];
    nmf_delta *d = nmf_delta_new(K, NULL);

    for (int i = 0; i < K * K; i++)
        A[i] = 0.25 * i;
    for (int i = 0; i < 3 * K; i++)
        rows[i] = i - 4.0;
    assert_int_equal(nmf_delta_add_raw(d, A, 3, terms, rows, 1.0, NULL), 0);
    return d;
}

static void test_delta_round_trips_and_rejects_corruption(void **state)
{
    nmf_delta *d = sample_delta(), *back;
    uint8_t *buf;
    size_t len;
    tf_err err = { 0 };

    assert_int_equal(model_blob_encode_delta(d, &buf, &len, NULL), 0);
    back = model_blob_decode_delta(buf, len, 41, NULL);
    assert_non_null(back);
    assert_int_equal(nmf_delta_n_rows(back), 3);
    assert_memory_equal(nmf_delta_terms(back), nmf_delta_terms(d), 3 * sizeof(int32_t));
    assert_memory_equal(nmf_delta_rows(back), nmf_delta_rows(d), 3 * K * sizeof(double));
    assert_memory_equal(nmf_delta_A(back), nmf_delta_A(d), K * K * sizeof(double));
    nmf_delta_free(back);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x10;
        assert_null(model_blob_decode_delta(buf, len, 41, &err));
        buf[i] ^= 0x10;
    }
    for (size_t n = 0; n < len; n++)
        assert_null(model_blob_decode_delta(buf, n, 41, &err));
    free(buf);
    nmf_delta_free(d);
}

/* A few documents touching many terms: the delta blob stores the documents (their
 * weights and mixtures) instead of one ΔB row per term, and the decoder replays them into
 * the same statistics; an added raw row falls back to the rows form. */
static void test_delta_of_few_documents_is_stored_as_its_documents(void **state)
{
    enum { DOCS = 2, TERMS_PER_DOC = 40 };
    tf_csr X;
    double H[DOCS * K], Hold[1 * K];
    nmf_delta *d = nmf_delta_new(K, NULL), *back;
    uint8_t *buf;
    size_t len, rows_form;
    tf_err err = { 0 };
    int32_t extra = 7;
    double extra_row[K] = { 1, 1 };

    (void)state;
    assert_int_equal(csr_alloc(&X, DOCS, 200, DOCS * TERMS_PER_DOC, NULL), 0);
    for (int r = 0; r < DOCS; r++) {
        X.row_ptr[r + 1] = (r + 1) * TERMS_PER_DOC;
        for (int e = 0; e < TERMS_PER_DOC; e++) {
            X.col_idx[r * TERMS_PER_DOC + e] = r * 30 + 2 * e; /* overlapping ranges */
            X.val[r * TERMS_PER_DOC + e] = 0.01f * (float)(1 + (e * 7 + r) % 13);
        }
    }
    for (int i = 0; i < DOCS * K; i++)
        H[i] = 0.3 + 0.1 * i;
    for (int i = 0; i < K; i++)
        Hold[i] = 0.5 - 0.2 * i;
    assert_int_equal(nmf_delta_add(d, &X, H, 1.0, NULL), 0);
    X.n_rows = 1; /* the first document's old version, retracted */
    assert_int_equal(nmf_delta_add(d, &X, Hold, -1.0, NULL), 0);
    X.n_rows = DOCS;
    assert_int_equal(nmf_delta_n_parts(d), 2);
    rows_form = 32 + 8 * K * K + (size_t)nmf_delta_n_rows(d) * (4 + 8 * K) + 4;

    assert_int_equal(model_blob_encode_delta(d, &buf, &len, NULL), 0);
    assert_true(len < rows_form);
    back = model_blob_decode_delta(buf, len, 200, &err);
    assert_non_null(back);
    assert_int_equal(nmf_delta_n_rows(back), nmf_delta_n_rows(d));
    assert_memory_equal(nmf_delta_terms(back), nmf_delta_terms(d),
                        (size_t)nmf_delta_n_rows(d) * sizeof(int32_t));
    assert_memory_equal(nmf_delta_rows(back), nmf_delta_rows(d),
                        (size_t)nmf_delta_n_rows(d) * K * sizeof(double));
    assert_memory_equal(nmf_delta_A(back), nmf_delta_A(d), K * K * sizeof(double));
    nmf_delta_free(back);
    for (size_t i = 0; i < len; i++) { /* any single changed byte */
        buf[i] ^= 0x10;
        assert_null(model_blob_decode_delta(buf, len, 200, &err));
        buf[i] ^= 0x10;
    }
    for (size_t n = 0; n < len; n++)
        assert_null(model_blob_decode_delta(buf, n, 200, &err));
    assert_null(model_blob_decode_delta(buf, len, 100, &err)); /* ids beyond the vocabulary */
    assert_non_null(strstr(err.msg, "beyond the vocabulary"));
    free(buf);

    /* raw rows have no documents: the rows form, still exact */
    assert_int_equal(nmf_delta_add_raw(d, NULL, 1, &extra, extra_row, 1.0, NULL), 0);
    assert_int_equal(nmf_delta_n_parts(d), -1);
    assert_int_equal(model_blob_encode_delta(d, &buf, &len, NULL), 0);
    assert_int_equal(len, 32 + 8 * K * K + (size_t)nmf_delta_n_rows(d) * (4 + 8 * K) + 4);
    back = model_blob_decode_delta(buf, len, 200, &err);
    assert_non_null(back);
    assert_memory_equal(nmf_delta_rows(back), nmf_delta_rows(d),
                        (size_t)nmf_delta_n_rows(d) * K * sizeof(double));
    nmf_delta_free(back);
    free(buf);
    /* cleared: documents again */
    nmf_delta_clear(d);
    assert_int_equal(nmf_delta_n_parts(d), 0);
    csr_free(&X);
    nmf_delta_free(d);
}

/* Found by fuzz-model_blob: a delta of 192 bytes naming term 0x3fc00000 made the decoder
 * allocate a 4 GiB term map (and the statistics it is added to would have grown to match).
 * Ids are checked against the vocabulary's size before anything is sized by them. */
static void test_delta_term_beyond_the_vocabulary_is_refused(void **state)
{
    int32_t terms[2] = { 3, 1000 }, huge = 0x3fc00000;
    double rows[2 * K] = { 1, 2, 3, 4, 5, 6 };
    nmf_delta *d = nmf_delta_new(K, NULL), *back;
    uint8_t *buf;
    size_t len;
    tf_err err;

    (void)state;
    assert_int_equal(nmf_delta_add_raw(d, NULL, 2, terms, rows, 1.0, NULL), 0);
    assert_int_equal(model_blob_encode_delta(d, &buf, &len, NULL), 0);
    assert_null(model_blob_decode_delta(buf, len, 1000, &err));
    assert_non_null(strstr(err.msg, "beyond the vocabulary"));
    assert_null(model_blob_decode_delta(buf, len, -1, &err));
    back = model_blob_decode_delta(buf, len, 1001, &err);
    assert_non_null(back);
    assert_int_equal(nmf_delta_n_rows(back), 2);
    nmf_delta_free(back);

    /* The fuzzer's case: the second term made `huge`, with the checksum made right again
     * (building such a delta with nmf_delta_add_raw would itself allocate the 4 GiB). */
    for (int i = 0; i < 4; i++)
        buf[32 + 8 * K * K + 4 + i] = (uint8_t)((uint32_t)huge >> (8 * i));
    {
        uint32_t crc = model_blob_crc32(buf, len - 4);
        for (int i = 0; i < 4; i++)
            buf[len - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
    assert_null(model_blob_decode_delta(buf, len, 1 << 20, &err));
    assert_non_null(strstr(err.msg, "term id 1069547520 beyond"));
    free(buf);
    nmf_delta_free(d);
}

static void test_crc32_matches_the_standard_check_value(void **state)
{
    assert_int_equal(model_blob_crc32((const uint8_t *)"123456789", 9), 0xcbf43926u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_round_trips_with_statistics, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_model_round_trips_without_statistics, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_every_single_byte_corruption_is_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_every_truncation_and_trailing_byte_is_rejected, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_header_claiming_huge_model_is_rejected_before_allocating),
        cmocka_unit_test_setup_teardown(test_encoder_rejects_half_statistics_and_bad_shape, fixture_setup, fixture_teardown),
        cmocka_unit_test(test_delta_round_trips_and_rejects_corruption),
        cmocka_unit_test(test_delta_term_beyond_the_vocabulary_is_refused),
        cmocka_unit_test(test_delta_of_few_documents_is_stored_as_its_documents),
        cmocka_unit_test(test_crc32_matches_the_standard_check_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
