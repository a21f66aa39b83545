/*
 * test_event_codec.c - the wire format: round trips, and every way a hostile or broken
 * message can be malformed (truncation, wrong types, lengths beyond the input, size limit).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <msgpack.h>

#include "wire/event_codec.h"

#define S(lit) ((tf_str){lit, sizeof(lit) - 1})

static tf_event sample_event(tf_event_field *fields)
{
    tf_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.id = 42;
    ev.type = TF_EVENT_UPDATED;
    ev.aggregate = S("internship");
    ev.aggregate_id = S("7");
    ev.version = 3;
    ev.occurred_at = 1764059000123456LL;
    ev.source = S("public.internships");
    fields[0].name = S("title");
    fields[0].value = S("Data engineering intern");
    fields[1].name = S("description");
    fields[1].value = S("تحليل البيانات باستخدام SQL و Python");
    ev.fields = fields;
    ev.n_fields = 2;
    return ev;
}

static int str_eq(tf_str a, const char *b)
{
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static void test_round_trip_keeps_every_field(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    assert_int_equal(tf_event_decode(buf, len, TF_EVENT_DEFAULT_LIMIT, &out, &err), TF_CODEC_OK);
    assert_int_equal(out.id, 42);
    assert_int_equal(out.type, TF_EVENT_UPDATED);
    assert_int_equal(out.version, 3);
    assert_int_equal(out.occurred_at, 1764059000123456LL);
    assert_true(str_eq(out.aggregate, "internship"));
    assert_true(str_eq(out.aggregate_id, "7"));
    assert_true(str_eq(out.source, "public.internships"));
    assert_int_equal(out.n_fields, 2);
    assert_true(str_eq(*tf_event_field_get(&out, "title"), "Data engineering intern"));
    assert_true(str_eq(*tf_event_field_get(&out, "description"),
                       "تحليل البيانات باستخدام SQL و Python"));
    assert_null(tf_event_field_get(&out, "skills"));
    tf_event_clear(&out);
    free(buf);
}

static void test_replay_of_round_trips_and_is_absent_otherwise(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    in.replay_of = 17;
    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    assert_int_equal(tf_event_decode(buf, len, TF_EVENT_DEFAULT_LIMIT, &out, &err), TF_CODEC_OK);
    assert_int_equal(out.replay_of, 17);
    tf_event_clear(&out);
    free(buf);
    in.replay_of = 0;
    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    assert_null(memmem(buf, len, "replay_of", 9));
    assert_int_equal(tf_event_decode(buf, len, TF_EVENT_DEFAULT_LIMIT, &out, &err), TF_CODEC_OK);
    assert_int_equal(out.replay_of, 0);
    tf_event_clear(&out);
    free(buf);
}

static void test_empty_payload_round_trips(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    in.type = TF_EVENT_DELETED;
    in.n_fields = 0;
    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    assert_int_equal(tf_event_decode(buf, len, TF_EVENT_DEFAULT_LIMIT, &out, &err), TF_CODEC_OK);
    assert_int_equal(out.type, TF_EVENT_DELETED);
    assert_int_equal(out.n_fields, 0);
    tf_event_clear(&out);
    free(buf);
}

static void test_every_truncation_is_rejected(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    for (size_t cut = 0; cut < len; cut++) {
        char *copy = malloc(cut ? cut : 1); /* exact size: ASan catches any overread */
        memcpy(copy, buf, cut);
        assert_int_not_equal(tf_event_decode(copy, cut, TF_EVENT_DEFAULT_LIMIT, &out, &err),
                             TF_CODEC_OK);
        assert_int_equal(out.n_fields, 0);
        free(copy);
    }
    free(buf);
}

static void test_over_limit_is_rejected_before_parsing(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    assert_int_equal(tf_event_decode(buf, len, len - 1, &out, &err), TF_CODEC_TOO_LARGE);
    assert_non_null(strstr(err.msg, "over the limit"));
    assert_int_equal(tf_event_decode(buf, len, len, &out, &err), TF_CODEC_OK);
    tf_event_clear(&out);
    free(buf);
}

static void test_huge_declared_lengths_are_rejected(void **state)
{
    /* map32 claiming 4 billion entries; str32 claiming 4 GiB; payload map32 likewise. */
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'x'};
    static const uint8_t huge_key[] = {0x81, 0xdb, 0xff, 0xff, 0xff, 0xff, 'i', 'd'};
    static const uint8_t huge_payload[] = {0x81, 0xa7, 'p', 'a', 'y', 'l', 'o', 'a', 'd',
                                           0xdf, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t huge_unknown_array[] = {0x81, 0xa1, 'z', 0xdd, 0xff, 0xff, 0xff, 0xff};
    tf_event out;
    tf_err err;

    assert_int_equal(tf_event_decode(huge_map, sizeof(huge_map), 1 << 20, &out, &err),
                     TF_CODEC_MALFORMED);
    assert_int_equal(tf_event_decode(huge_key, sizeof(huge_key), 1 << 20, &out, &err),
                     TF_CODEC_MALFORMED);
    assert_int_equal(tf_event_decode(huge_payload, sizeof(huge_payload), 1 << 20, &out, &err),
                     TF_CODEC_MALFORMED);
    assert_int_equal(tf_event_decode(huge_unknown_array, sizeof(huge_unknown_array), 1 << 20,
                                     &out, &err),
                     TF_CODEC_MALFORMED);
}

/* Builds a body with msgpack-c where "id" has the given packing (a string instead of int). */
static void test_wrong_types_name_the_field(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tf_event out;
    tf_err err;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, "42", 2);
    assert_int_equal(tf_event_decode(sb.data, sb.size, 1 << 20, &out, &err), TF_CODEC_BAD_FIELD);
    assert_non_null(strstr(err.msg, "'id'"));
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    msgpack_pack_array(&pk, 0);
    assert_int_equal(tf_event_decode(sb.data, sb.size, 1 << 20, &out, &err), TF_CODEC_MALFORMED);
    msgpack_sbuffer_destroy(&sb);
}

static void test_unknown_type_value_is_rejected(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tf_event out;
    tf_err err;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "renamed", 7);
    assert_int_equal(tf_event_decode(sb.data, sb.size, 1 << 20, &out, &err), TF_CODEC_BAD_FIELD);
    msgpack_sbuffer_destroy(&sb);
}

static void test_missing_field_is_named(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tf_event out;
    tf_err err;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int64(&pk, 5);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "created", 7);
    assert_int_equal(tf_event_decode(sb.data, sb.size, 1 << 20, &out, &err), TF_CODEC_MISSING);
    assert_non_null(strstr(err.msg, "'aggregate'"));
    msgpack_sbuffer_destroy(&sb);
}

static void test_unknown_keys_are_skipped(void **state)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tf_event out;
    tf_err err;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    msgpack_pack_str_with_body(&pk, "future", 6);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int64(&pk, 9);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "created", 7);
    msgpack_pack_str_with_body(&pk, "aggregate", 9);
    msgpack_pack_str_with_body(&pk, "internship", 10);
    msgpack_pack_str_with_body(&pk, "aggregate_id", 12);
    msgpack_pack_str_with_body(&pk, "1", 1);
    msgpack_pack_str_with_body(&pk, "version", 7);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_str_with_body(&pk, "payload", 7);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(tf_event_decode(sb.data, sb.size, 1 << 20, &out, &err), TF_CODEC_OK);
    assert_int_equal(out.id, 9);
    tf_event_clear(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_trailing_bytes_are_rejected(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    char *buf;
    size_t len;
    tf_err err;

    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    buf = realloc(buf, len + 1);
    buf[len] = (char)0xc0;
    assert_int_equal(tf_event_decode(buf, len + 1, TF_EVENT_DEFAULT_LIMIT, &out, &err),
                     TF_CODEC_MALFORMED);
    free(buf);
}

static void test_random_corruption_never_crashes(void **state)
{
    tf_event_field fields[2];
    tf_event in = sample_event(fields), out;
    uint64_t rng = 12345;
    char *buf;
    size_t len;
    tf_err err;
    int ok = 0;

    assert_int_equal(tf_event_encode(&in, &buf, &len, &err), 0);
    for (int round = 0; round < 20000; round++) {
        char *copy = malloc(len);
        memcpy(copy, buf, len);
        for (int k = 0; k < 3; k++) {
            rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
            copy[(rng >> 33) % len] = (char)(rng >> 17);
        }
        if (tf_event_decode(copy, len, TF_EVENT_DEFAULT_LIMIT, &out, &err) == TF_CODEC_OK) {
            ok++;
            assert_true(out.n_fields <= TF_EVENT_MAX_FIELDS);
            tf_event_clear(&out);
        }
        free(copy);
    }
    /* Some corruptions only change text bytes and still decode; most must not. */
    assert_true(ok < 20000);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_every_field),
        cmocka_unit_test(test_empty_payload_round_trips),
        cmocka_unit_test(test_replay_of_round_trips_and_is_absent_otherwise),
        cmocka_unit_test(test_every_truncation_is_rejected),
        cmocka_unit_test(test_over_limit_is_rejected_before_parsing),
        cmocka_unit_test(test_huge_declared_lengths_are_rejected),
        cmocka_unit_test(test_wrong_types_name_the_field),
        cmocka_unit_test(test_unknown_type_value_is_rejected),
        cmocka_unit_test(test_missing_field_is_named),
        cmocka_unit_test(test_unknown_keys_are_skipped),
        cmocka_unit_test(test_trailing_bytes_are_rejected),
        cmocka_unit_test(test_random_corruption_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
