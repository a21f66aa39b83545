/*
 * test_pgoutput.c - the replication stream's framing, pgoutput protocol 1 messages built
 * byte by byte as the server sends them, and the events a change becomes (same rules as the
 * outbox mode's capture trigger).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "wire/pgoutput.h"

typedef struct msg {
    unsigned char b[4096];
    size_t n;
} msg;

static void u8(msg *m, unsigned v) { m->b[m->n++] = (unsigned char)v; }
static void be(msg *m, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--)
        u8(m, (unsigned)(v >> (8 * i)) & 0xff);
}
static void cstr(msg *m, const char *s)
{
    memcpy(m->b + m->n, s, strlen(s) + 1);
    m->n += strlen(s) + 1;
}
/* A TupleData: each value "n" (NULL), "u" (unchanged TOAST) or "t:<text>". */
static void tuple(msg *m, int n, const char *const *vals)
{
    be(m, (uint64_t)n, 2);
    for (int i = 0; i < n; i++) {
        if (vals[i][0] != 't') {
            u8(m, (unsigned char)vals[i][0]);
            continue;
        }
        u8(m, 't');
        be(m, strlen(vals[i]) - 2, 4);
        memcpy(m->b + m->n, vals[i] + 2, strlen(vals[i]) - 2);
        m->n += strlen(vals[i]) - 2;
    }
}

/* internships-like: id, title, company, skills (text[]); tracked: title, skills. */
static tf_pgo_table table(void)
{
    tf_pgo_table t;
    memset(&t, 0, sizeof(t));
    t.source = (tf_str){"public.jobs", 11};
    t.aggregate = (tf_str){"job", 3};
    t.id_col = 0;
    t.n_text = 2;
    t.text_col[0] = 1;
    t.text_name[0] = (tf_str){"title", 5};
    t.text_col[1] = 3;
    t.text_name[1] = (tf_str){"skills", 6};
    t.text_is_array[1] = 1;
    return t;
}

static int field_is(const tf_event *ev, const char *name, const char *value)
{
    for (size_t i = 0; i < ev->n_fields; i++)
        if (ev->fields[i].name.len == strlen(name) &&
            memcmp(ev->fields[i].name.ptr, name, strlen(name)) == 0)
            return ev->fields[i].value.len == strlen(value) &&
                   memcmp(ev->fields[i].value.ptr, value, strlen(value)) == 0;
    return 0;
}

static void test_xlogdata_and_keepalive_frames_parse(void **state)
{
    msg m = {.n = 0};
    tf_repl_frame f;
    tf_err err;

    u8(&m, 'w');
    be(&m, 0x16B374D848ULL, 8);
    be(&m, 0x16B374D900ULL, 8);
    be(&m, 123456789, 8);
    cstr(&m, "Bxyz");
    assert_int_equal(tf_repl_frame_parse(m.b, m.n, &f, &err), 0);
    assert_int_equal(f.kind, 'w');
    assert_true(f.wal_start == 0x16B374D848ULL && f.wal_end == 0x16B374D900ULL);
    assert_int_equal(f.len, 5);
    assert_memory_equal(f.data, "Bxyz", 5);

    m.n = 0;
    u8(&m, 'k');
    be(&m, 42, 8);
    be(&m, 7, 8);
    u8(&m, 1);
    assert_int_equal(tf_repl_frame_parse(m.b, m.n, &f, &err), 0);
    assert_true(f.kind == 'k' && f.wal_end == 42 && f.reply == 1);
    /* one byte short: refused, not read past the end */
    assert_int_equal(tf_repl_frame_parse(m.b, m.n - 1, &f, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
}

static void test_status_update_is_network_order(void **state)
{
    unsigned char out[TF_REPL_STATUS_LEN];

    tf_repl_status_update(0x0102030405060708ULL, 0x10, 1, out);
    assert_int_equal(out[0], 'r');
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 8; i++)
            assert_int_equal(out[1 + 8 * k + i], i + 1);
    assert_int_equal(out[32], 0x10);
    assert_int_equal(out[33], 1);
}

static void test_lsn_text_round_trips(void **state)
{
    uint64_t lsn;
    char buf[32];

    assert_int_equal(tf_lsn_parse("16/B374D848", &lsn), 0);
    assert_true(lsn == 0x16B374D848ULL);
    tf_lsn_format(lsn, buf, sizeof(buf));
    assert_string_equal(buf, "16/B374D848");
    assert_int_equal(tf_lsn_parse("16B374D848", &lsn), -1);
    assert_int_equal(tf_lsn_parse("1/2x", &lsn), -1);
}

static void test_relation_message_names_columns_and_keys(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'R');
    be(&m, 16384, 4);
    cstr(&m, "public");
    cstr(&m, "jobs");
    u8(&m, 'f');
    be(&m, 2, 2);
    u8(&m, 1); cstr(&m, "id"); be(&m, 20, 4); be(&m, (uint64_t)-1, 4);
    u8(&m, 0); cstr(&m, "title"); be(&m, 25, 4); be(&m, (uint64_t)-1, 4);
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(pm.kind, 'R');
    assert_int_equal(pm.relid, 16384);
    assert_int_equal(pm.replident, 'f');
    assert_int_equal(pm.n_columns, 2);
    assert_true(pm.columns[0].key && !pm.columns[1].key);
    assert_memory_equal(pm.columns[1].name.ptr, "title", 5);
    /* a name without its terminator is a truncated message */
    assert_int_equal(tf_pgo_decode(d, m.b, 12, &pm, &err), -1);
    tf_pgo_decoder_free(d);
}

static void test_insert_becomes_created_with_tracked_text(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'I');
    be(&m, 16384, 4);
    u8(&m, 'N');
    tuple(&m, 4, (const char *[]){"t:7", "t:Data intern", "t:ACME", "t:{python,\"c, c++\",NULL}"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x1000, 0, 5, &e, &err), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.ev[0].type, TF_EVENT_CREATED);
    assert_true(e.ev[0].id == TF_WAL_ID_BASE + 0x1000 && e.ev[0].version == e.ev[0].id);
    assert_true(e.ev[0].occurred_at == TF_PG_EPOCH_UNIX_US + 5);
    assert_memory_equal(e.ev[0].aggregate_id.ptr, "7", 1);
    assert_int_equal(e.ev[0].n_fields, 2);
    assert_true(field_is(&e.ev[0], "title", "Data intern"));
    assert_true(field_is(&e.ev[0], "skills", "python, c, c++"));
    tf_pgo_events_clear(&e);
    tf_pgo_decoder_free(d);
}

static void update(msg *m, const char *const *old, const char *const *new_)
{
    m->n = 0;
    u8(m, 'U');
    be(m, 16384, 4);
    u8(m, 'O');
    tuple(m, 4, old);
    u8(m, 'N');
    tuple(m, 4, new_);
}

static void test_update_of_untracked_columns_emits_nothing(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m;
    tf_err err;

    update(&m, (const char *[]){"t:7", "t:A", "t:ACME", "n"},
           (const char *[]){"t:7", "t:A", "t:Other", "n"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x2000, 0, 0, &e, &err), 0);
    assert_int_equal(e.n, 0);
    /* an unchanged TOASTed tracked column is not a change either */
    update(&m, (const char *[]){"t:7", "t:long text", "t:ACME", "n"},
           (const char *[]){"t:7", "u", "t:Other", "n"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x2000, 0, 0, &e, &err), 0);
    assert_int_equal(e.n, 0);
    tf_pgo_decoder_free(d);
}

static void test_update_takes_unchanged_toast_from_the_old_row(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m;
    tf_err err;

    update(&m, (const char *[]){"t:7", "t:long text", "t:ACME", "t:{go}"},
           (const char *[]){"t:7", "u", "t:ACME", "t:{go,rust}"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x3000, 0, 0, &e, &err), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.ev[0].type, TF_EVENT_UPDATED);
    assert_true(field_is(&e.ev[0], "title", "long text"));
    assert_true(field_is(&e.ev[0], "skills", "go, rust"));
    tf_pgo_events_clear(&e);
    tf_pgo_decoder_free(d);
}

static void test_update_without_old_row_is_an_error(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'U');
    be(&m, 16384, 4);
    u8(&m, 'N');
    tuple(&m, 4, (const char *[]){"t:7", "t:B", "n", "n"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 1, 0, 0, &e, &err), -1);
    assert_non_null(strstr(err.msg, "FULL"));
    tf_pgo_decoder_free(d);
}

static void test_key_change_is_delete_then_create_with_distinct_ids(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m;
    tf_err err;

    update(&m, (const char *[]){"t:7", "t:A", "n", "n"}, (const char *[]){"t:8", "t:A", "n", "n"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x4000, 0, 0, &e, &err), 0);
    assert_int_equal(e.n, 2);
    assert_int_equal(e.ev[0].type, TF_EVENT_DELETED);
    assert_memory_equal(e.ev[0].aggregate_id.ptr, "7", 1);
    assert_int_equal(e.ev[0].n_fields, 0);
    assert_int_equal(e.ev[1].type, TF_EVENT_CREATED);
    assert_memory_equal(e.ev[1].aggregate_id.ptr, "8", 1);
    assert_true(e.ev[1].id == e.ev[0].id + 1);
    assert_true(field_is(&e.ev[1], "title", "A"));
    /* the third row of a multi-insert record at the same position: ids after the first two */
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x4000, 2, 0, &e, &err), 0);
    assert_true(e.ev[0].id == TF_WAL_ID_BASE + 0x4000 + 2);
    tf_pgo_decoder_free(d);
}

static void test_delete_becomes_deleted_from_the_old_row(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_table t = table();
    tf_pgo_events e = {0};
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'D');
    be(&m, 16384, 4);
    u8(&m, 'O');
    tuple(&m, 4, (const char *[]){"t:42", "t:A", "n", "n"});
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(tf_pgo_change_events(&pm, &t, 0x5000, 0, 0, &e, &err), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.ev[0].type, TF_EVENT_DELETED);
    assert_memory_equal(e.ev[0].aggregate_id.ptr, "42", 2);
    tf_pgo_decoder_free(d);
}

static void test_value_length_beyond_the_input_is_refused(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'I');
    be(&m, 1, 4);
    u8(&m, 'N');
    be(&m, 1, 2);
    u8(&m, 't');
    be(&m, 1000, 4); /* claims 1000 bytes, has 3 */
    cstr(&m, "ab");
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    m.n = 0;
    u8(&m, 'I');
    be(&m, 1, 4);
    u8(&m, 'N');
    be(&m, 60000, 2); /* more columns than PostgreSQL allows */
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), -1);
    tf_pgo_decoder_free(d);
}

static void test_begin_and_commit_carry_positions(void **state)
{
    tf_pgo_decoder *d = tf_pgo_decoder_new();
    tf_pgo_message pm;
    msg m = {.n = 0};
    tf_err err;

    u8(&m, 'B');
    be(&m, 0x500, 8);
    be(&m, 99, 8);
    be(&m, 731, 4);
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_true(pm.kind == 'B' && pm.final_lsn == 0x500 && pm.commit_us == 99 && pm.xid == 731);
    m.n = 0;
    u8(&m, 'C');
    u8(&m, 0);
    be(&m, 0x500, 8);
    be(&m, 0x530, 8);
    be(&m, 99, 8);
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_true(pm.kind == 'C' && pm.commit_lsn == 0x500 && pm.end_lsn == 0x530);
    m.n = 0;
    u8(&m, 'Y'); /* a type message: skipped */
    assert_int_equal(tf_pgo_decode(d, m.b, m.n, &pm, &err), 0);
    assert_int_equal(pm.kind, 0);
    tf_pgo_decoder_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xlogdata_and_keepalive_frames_parse),
        cmocka_unit_test(test_status_update_is_network_order),
        cmocka_unit_test(test_lsn_text_round_trips),
        cmocka_unit_test(test_relation_message_names_columns_and_keys),
        cmocka_unit_test(test_insert_becomes_created_with_tracked_text),
        cmocka_unit_test(test_update_of_untracked_columns_emits_nothing),
        cmocka_unit_test(test_update_takes_unchanged_toast_from_the_old_row),
        cmocka_unit_test(test_update_without_old_row_is_an_error),
        cmocka_unit_test(test_key_change_is_delete_then_create_with_distinct_ids),
        cmocka_unit_test(test_delete_becomes_deleted_from_the_old_row),
        cmocka_unit_test(test_value_length_beyond_the_input_is_refused),
        cmocka_unit_test(test_begin_and_commit_carry_positions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
