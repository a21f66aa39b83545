/*
 * test_wal_outbox.c - a wal deployment needs nothing beside its one producer: a change whose
 * message exceeds --max-message is set aside in topicflow.outbox_rejected as outbox mode does
 * (listed and retried by `topicflow outbox`, stored once), and the wal producer also drains
 * the outbox (replays, retried rows) with exact accounting, also across a SIGKILL.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "wal_harness.h"

static void test_oversize_change_is_set_aside_once_and_listed(void **state)
{
    harness h;
    wal_got g[20];
    char *out = NULL;
    size_t n;
    pid_t p;

    harness_setup(&h, "wal_set_aside");
    wal_track_internships(&h);
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--capture", "wal", "--max-message", "2000", NULL});
    harness_sql(&h, "insert into internships (title) values ('small one')");
    harness_sql(&h, "insert into internships (title, description)"
                    " values ('big one', repeat('x', 5000))");
    harness_sql(&h, "insert into internships (title) values ('small two')");
    wal_wait_caught_up(&h, 60);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    n = wal_drain(&h, g, 20, 1.0);
    assert_int_equal(n, 2);
    assert_true(wal_is(&g[0], "created", "1", "small one"));
    assert_true(wal_is(&g[1], "created", "3", "small two"));
    /* stored as outbox mode stores it: the event's id, version, payload and a reason */
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected"
                                        " where aggregate_id = '2' and event_type = 'created'"
                                        " and source = 'public.internships'"
                                        " and aggregate_type = 'internship'"
                                        " and id >= 4611686018427387904 and version = id"
                                        " and payload ->> 'title' = 'big one'"
                                        " and length(payload ->> 'description') = 5000"
                                        " and reason like '%exceeds --max-message%'"), 1);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected"), 1);
    /* the same change again (a restart before the slot confirmed it) stores nothing more */
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected r"
                                        " where topicflow.wal_set_aside(r.id, r.source,"
                                        " r.aggregate_type, r.aggregate_id, r.event_type,"
                                        " r.version, r.payload::text, 0, 'again')"), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.outbox_rejected"), 1);
    /* operators see it as in outbox mode */
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"outbox", "list", NULL}, NULL,
                                 &out, NULL), 0);
    assert_non_null(strstr(out, "public.internships 2 created"));
    assert_non_null(strstr(out, "1 row set aside"));
    free(out);
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"status", "--json", NULL}, NULL,
                                 &out, NULL), 0);
    assert_non_null(strstr(out, "\"outbox_rejected\": 1"));
    free(out);
    harness_teardown(&h);
}

/* replay --current with the wal producer alone: it drains the outbox too, and a SIGKILL in
 * the middle republishes (same ids) and loses nothing. */
static void test_wal_producer_alone_publishes_a_replay_exactly_once_across_sigkill(void **state)
{
    enum { DOCS = 20000 };
    harness h;
    const size_t cap = 3 * DOCS;
    wal_got *g = calloc(cap, sizeof(*g));
    int64_t *got = calloc(cap, sizeof(*got)), *want;
    size_t n, n_want;
    char *out = NULL;
    pid_t p;

    harness_setup(&h, "wal_replay_one");
    wal_track_internships(&h);
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--capture", "wal", "--batch", "100", NULL});
    harness_sql(&h, "insert into internships (title) select 'doc ' || g from generate_series(1, 20000) g");
    wal_wait_caught_up(&h, 120);
    assert_int_equal(wal_distinct_ids(g, wal_drain(&h, g, cap, 1.0)), DOCS);
    /* what the workers store for them */
    harness_sql(&h, "insert into topicflow.documents (source, doc_id, version, deleted, event_id)"
                    " select 'public.internships', id::text, 1, false, id from internships");
    assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"replay", "--current", NULL},
                                 NULL, &out, NULL), 0);
    free(out);
    /* no outbox-mode producer: the wal one publishes the replay, and is killed in the middle */
    assert_int_equal(harness_wait_scalar(&h, "select (count(*) > 0)::int from topicflow.outbox"
                                             " where published_at is not null", 1, 60), 1);
    assert_int_equal(harness_stop(p, SIGKILL), 128 + SIGKILL);
    assert_true(harness_scalar(&h, "select count(*) from topicflow.outbox"
                                   " where published_at is null") > 0); /* really in the middle */
    p = harness_spawn(&h, "topicflow-producer",
                      (const char *[]){"--capture", "wal", "--batch", "100", NULL});
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.outbox"
                                             " where published_at is null", 0, 120), 0);
    wal_wait_caught_up(&h, 60);
    assert_int_equal(harness_stop(p, SIGTERM), 0);
    n = wal_drain(&h, g, cap, 1.5);
    /* every replay event, each document once by id, and nothing else */
    assert_int_equal(wal_distinct_ids(g, n), DOCS);
    assert_int_equal(wal_count_type(g, n, "updated"), DOCS);
    for (size_t i = 0; i < n; i++) {
        assert_true(g[i].id < (INT64_C(1) << 62) && g[i].version == 1);
        got[i] = g[i].id;
    }
    want = harness_outbox_ids(&h, &n_want);
    assert_int_equal(n_want, DOCS);
    assert_true(harness_covers(got, n, want, n_want));
    free(want);
    free(got);
    free(g);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oversize_change_is_set_aside_once_and_listed),
        cmocka_unit_test(test_wal_producer_alone_publishes_a_replay_exactly_once_across_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
