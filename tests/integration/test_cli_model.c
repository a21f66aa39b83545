/*
 * test_cli_model.c - the model side of the CLI against real servers: refit while workers
 * process updates (no update lost, statistics exact, topic ids kept), replay of a range
 * (exactly that range reprocessed, once), and the topics / doc outputs.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "harness.h"
#include "pipeline.h"

#define PROCESSED "select count(*) from topicflow.processed_events"
#define OUTBOX "select count(*) from topicflow.outbox"
/* -1 until a model exists, then the number of documents not folded into its epoch */
#define STALE "select case when not exists (select 1 from topicflow.model) then -1 else" \
              " (select count(*) from topicflow.documents where not deleted and" \
              " coalesce(model_version, 0) < (select max(epoch) from topicflow.model)) end"

/* Four clearly separated themes plus shared noise words. */
static void insert_themed(harness *h, int n)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
        "insert into internships (title, description, skills)"
        " select (array['Data analyst intern','Legal assistant intern','Clinical nurse intern',"
        "               'Site engineer intern'])[g %% 4 + 1] || ' ' || g,"
        "  (array['python pandas statistics dashboards sql regression',"
        "         'contracts court litigation drafting compliance arbitration',"
        "         'patients clinic wards medication triage vaccination',"
        "         'concrete scaffolding surveying foundations excavation rebar'])[g %% 4 + 1]"
        "  || ' internship team mentor weekly ' || md5(g::text),"
        "  array['skill' || (g %% 7)]"
        " from generate_series(1, %d) g", n);
    harness_sql(h, sql);
}

static int run_cli(harness *h, const char *args, char *out, size_t cap)
{
    char cmd[2048];
    FILE *p;
    size_t n = 0;
    int status;

    snprintf(cmd, sizeof(cmd), "TOPICFLOW_PG_URL='%s' TOPICFLOW_AMQP_URL='%s' %s/topicflow %s 2>&1",
             h->pg_url, h->amqp_url, TF_BIN_DIR, args);
    p = popen(cmd, "r");
    assert_non_null(p);
    if (out) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof(sink), p) > 0)
            ;
    }
    status = pclose(p);
    if (!WIFEXITED(status))
        print_message("topicflow %s: status %d\n%s\n", args, status, out ? out : "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void top_terms(harness *h, char terms[4][64])
{
    PGresult *res = PQexec(h->pg, "select topic, term from topicflow.topics where rank = 1 order by topic");
    assert_int_equal(PQntuples(res), 4);
    for (int i = 0; i < 4; i++)
        snprintf(terms[i], 64, "%s", PQgetvalue(res, i, 1));
    PQclear(res);
}

static void wait_settled(harness *h, long long events)
{
    assert_int_equal(harness_wait_scalar(h, PROCESSED, events, 120), events);
    assert_int_equal(harness_wait_scalar(h, STALE, 0, 120), 0);
}

static void test_refit_under_worker_traffic_loses_no_update_and_keeps_topic_ids(void **state)
{
    harness h;
    char before[4][64], after[4][64], out[4096];
    pid_t producer, worker, refit;
    int status;

    harness_setup(&h, "cli_refit");
    insert_themed(&h, 400);
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    worker = pipeline_spawn_worker(&h, (const char *[]){"--min-docs", "100", NULL});
    wait_settled(&h, 400);
    top_terms(&h, before);

    /* a refit with another seed, while updates keep flowing through the worker */
    refit = harness_spawn(&h, "topicflow", (const char *[]){"refit", "--k", "4", "--seed", "7",
                                                            "--max-iter", "300", "--tol", "0", NULL});
    for (int i = 0; i < 60; i++) {
        char sql[256];
        snprintf(sql, sizeof(sql), "update internships set description = description || ' revised%d'"
                                   " where id %% 60 = %d", i, i);
        harness_sql(&h, sql);
        usleep(20000);
    }
    assert_int_equal(waitpid(refit, &status, 0), refit);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    wait_settled(&h, harness_scalar(&h, OUTBOX));
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);

    /* every document holds its latest version, folded into the refit's epoch */
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents d join topicflow.aggregate_versions v"
        " on v.aggregate_type = 'internship' and v.aggregate_id = d.doc_id where d.version <> v.version"), 0);
    assert_true(harness_scalar(&h, "select max(epoch) from topicflow.model") > 1);
    pipeline_assert_statistics_consistent(&h);
    pipeline_assert_df_consistent(&h);
    pipeline_assert_doc_count_consistent(&h);
    top_terms(&h, after);
    for (int i = 0; i < 4; i++)
        assert_string_equal(before[i], after[i]); /* same themes keep their ids */
    assert_int_equal(run_cli(&h, "topics --top 3 --json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "[{\"topic\": 0, \"terms\": [{\"term\": "));
    assert_non_null(strstr(out, "{\"topic\": 3, "));
    assert_null(strstr(out, "{\"topic\": 4, "));
    assert_int_equal(run_cli(&h, "doc 1 --json", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"doc_id\": \"1\""));
    assert_non_null(strstr(out, "\"topics\": [{\"topic\": "));
    assert_int_equal(run_cli(&h, "doc 999999", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no document 999999 in public.internships (no such id, or no worker has processed it yet)"));
    harness_teardown(&h);
}

static void test_replay_of_a_range_reprocesses_exactly_that_range_once(void **state)
{
    harness h;
    char out[1024];
    pid_t producer, worker;

    harness_setup(&h, "cli_replay");
    insert_themed(&h, 200);
    producer = harness_spawn(&h, "topicflow-producer", (const char *[]){"--poll", "100ms", NULL});
    worker = pipeline_spawn_worker(&h, (const char *[]){"--min-docs", "50", NULL});
    wait_settled(&h, 200);

    assert_int_equal(run_cli(&h, "replay --from-id 21 --to-id 60 --dry-run", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "would replay 40 events"));
    assert_int_equal(harness_scalar(&h, OUTBOX), 200);
    assert_int_equal(run_cli(&h, "replay --from-id 21 --to-id 60", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "replayed 40 events (ids 21..60) as new events 201..240"));
    wait_settled(&h, 240);
    /* exactly the range was recomputed: its documents now come from the replays */
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents where event_id > 200"), 40);
    assert_int_equal(harness_scalar(&h,
        "select count(*) from topicflow.documents d join topicflow.outbox o on o.id = d.event_id"
        " where o.replay_of not between 21 and 60"), 0);
    /* replaying again takes effect again, once per replayed event */
    assert_int_equal(run_cli(&h, "replay --from-id 21 --to-id 60", out, sizeof(out)), 0);
    wait_settled(&h, 280);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents where event_id > 240"), 40);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.documents"), 200);
    assert_int_equal(harness_stop(worker, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    pipeline_assert_statistics_consistent(&h);
    pipeline_assert_df_consistent(&h);
    pipeline_assert_doc_count_consistent(&h);
    assert_int_equal(run_cli(&h, "replay", out, sizeof(out)), 2);
    assert_int_equal(run_cli(&h, "replay --from-id 9 --to-id 3", out, sizeof(out)), 2);
    harness_teardown(&h);
}

/* No document at all: one line saying so (with documents, k is clamped to what the data
 * allows: test_model_policy). */
static void test_refit_without_documents_fails_with_a_reason(void **state)
{
    harness h;
    char out[1024];

    harness_setup_pg(&h, "cli_refit_small");
    assert_int_equal(run_cli(&h, "refit --k 5", out, sizeof(out)), 1);
    assert_non_null(strstr(out, "no live documents to fit: the tracked tables hold no rows"));
    assert_int_equal(run_cli(&h, "topics", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "no model yet"));
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refit_under_worker_traffic_loses_no_update_and_keeps_topic_ids),
        cmocka_unit_test(test_replay_of_a_range_reprocesses_exactly_that_range_once),
        cmocka_unit_test(test_refit_without_documents_fails_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
