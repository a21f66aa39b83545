/*
 * test_model_policy.c - the model the workers keep, left to themselves: k never blocks a
 * model (fewer terms than topics still gives one, and it grows to k when the data allows);
 * the automatic refit policy re-fits as the corpus grows under traffic without losing an
 * update or the exactness of the statistics; and a quiet stream gets its pending deltas
 * folded and a final refit, with no new event to trigger them.
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
#include "pipeline.h"

#define PROCESSED "select count(*) from topicflow.processed_events"
#define MODEL_K "select coalesce((select k from topicflow.current_model), 0)"
#define STALE "select count(*) from topicflow.documents where not deleted and" \
              " coalesce(model_version, 0) < (select coalesce(max(epoch), 0) from topicflow.model)"

static void assert_bookkeeping(harness *h)
{
    pipeline_assert_df_consistent(h);
    pipeline_assert_doc_count_consistent(h);
    pipeline_assert_statistics_consistent(h);
}

/* n postings whose text uses only the given words. */
static void insert_from_words(harness *h, int n, const char *words)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "insert into public.internships (title, description)"
             " select w[1 + g %% cardinality(w)] || ' ' || w[1 + (g / 3) %% cardinality(w)],"
             " w[1 + (g / 7) %% cardinality(w)] || ' ' || w[1 + (g / 11) %% cardinality(w)]"
             " from generate_series(1, %d) g, (select string_to_array('%s', ' ') w) words",
             n, words);
    harness_sql(h, sql);
}

static void test_fewer_terms_than_k_gets_a_model_that_grows_to_k(void **state)
{
    harness h;
    pid_t producer, w;
    const char *args[] = {"--k", "12", "--min-docs", "100", "--refit-min-interval", "1s", NULL};

    harness_setup(&h, "policy_small_k");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w = pipeline_spawn_worker(&h, args);
    insert_from_words(&h, 400, "welding plumbing carpentry masonry roofing painting");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 400, 60), 400);
    /* six words: a model with at most six topics, never a retry loop */
    assert_true(harness_wait_scalar(&h, "select (" MODEL_K " between 1 and 6)::int", 1, 60) == 1);
    assert_true(harness_log_contains(w, "fewer topics than asked"));
    /* operators see it: k fitted and asked, the fit's reason and error */
    {
        char *out = NULL, *v;
        assert_int_equal(harness_run(&h, "topicflow", (const char *[]){"status", "--json", NULL}, NULL, &out, NULL), 0);
        v = harness_query_text(&h, "select format('%s %s %s', $1::jsonb->>'model_k_asked',"
                                   " $1::jsonb->>'last_refit_reason', (($1::jsonb->>'last_refit_relative_error') is not null)::text)", out);
        assert_string_equal(v, "12 first true");
        free(v);
        v = harness_query_text(&h, "select (($1::jsonb->>'model_k')::int between 1 and 6)::text", out);
        assert_string_equal(v, "true");
        free(v);
        free(out);
    }
    assert_false(harness_log_contains(w, "exceeds min(docs, terms)"));
    assert_int_equal(harness_wait_scalar(&h, STALE, 0, 60), 0);
    /* a richer corpus: the workers grow the model to k by themselves */
    harness_insert_internships(&h, 600);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 1000, 60), 1000);
    assert_int_equal(harness_wait_scalar(&h, MODEL_K, 12, 90), 12);
    assert_true(harness_scalar(&h, "select count(*) from topicflow.model_epochs where reason = 'k'") >= 1);
    assert_int_equal(harness_wait_scalar(&h, STALE, 0, 60), 0);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_bookkeeping(&h);
    harness_teardown(&h);
}

static void test_automatic_refits_under_traffic_lose_no_update(void **state)
{
    harness h;
    pid_t producer, w1, w2;
    const char *args[] = {"--refit-growth", "1.5", "--refit-min-interval", "1s", NULL};
    int n = 0;

    harness_setup(&h, "policy_growth");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w1 = pipeline_spawn_worker(&h, args);
    w2 = pipeline_spawn_worker(&h, args);
    /* waves that each grow the corpus by more than half, updates and deletes among them */
    for (int wave = 0; wave < 5; wave++) {
        int size = 100 << wave;
        harness_insert_internships(&h, size);
        n += size;
        harness_sql(&h, "update public.internships set description = description || ' revised'"
                        " where id % 7 = 0");
        harness_sql(&h, "delete from public.internships where id % 50 = 0");
        usleep(1500000);
    }
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.outbox o where not exists"
        " (select 1 from topicflow.processed_events p where p.event_id = o.id)", 0, 120), 0);
    assert_true(harness_wait_scalar(&h,
        "select (count(*) >= 3)::int from topicflow.model_epochs where reason in ('growth', 'first')", 1, 120) == 1);
    assert_int_equal(harness_wait_scalar(&h, STALE, 0, 120), 0);
    assert_int_equal(harness_stop(w1, SIGTERM), 0);
    assert_int_equal(harness_stop(w2, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    /* every live row's document is its latest version */
    assert_int_equal(harness_scalar(&h,
        "select count(*) from public.internships i left join topicflow.documents d"
        " on d.source = 'public.internships' and d.doc_id = i.id::text"
        " left join topicflow.document_versions v on v.source = d.source and v.aggregate_id = d.doc_id"
        " where d.doc_id is null or d.deleted or d.version <> v.version"), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from public.internships"),
                     harness_scalar(&h, "select count(*) from topicflow.documents where not deleted"));
    assert_bookkeeping(&h);
    harness_teardown(&h);
}

/* The mean NPMI of the current version's top-$1 terms (topic_terms), computed in SQL over
 * the stored documents: an independent check of the workers' own measure. */
#define SQL_COHERENCE \
    "with t as (select tt.topic, tt.rank, te.id from topicflow.topic_terms tt" \
    "   join topicflow.terms te on te.term = tt.term" \
    "  where tt.model_version = (select max(version) from topicflow.model)" \
    "    and tt.rank <= $1::int and tt.weight > 0)," \
    " d as (select term_ids from topicflow.documents where not deleted)," \
    " n as (select count(*)::float8 n from d)," \
    " df as (select x id, count(distinct d.ctid)::float8 c from topicflow.documents d, unnest(d.term_ids) x" \
    "   where not d.deleted group by x)," \
    " co as (select a.topic, a.id ia, b.id ib," \
    "   (select count(*) from d where d.term_ids @> array[a.id, b.id])::float8 c" \
    "   from t a join t b on a.topic = b.topic and a.rank < b.rank)" \
    " select round(avg(v)::numeric, 4)::text from (select co.topic, avg(case when co.c = 0 then -1" \
    "   when co.c = n.n then 1 else ln((co.c / n.n) / ((fa.c / n.n) * (fb.c / n.n))) / -ln(co.c / n.n)" \
    "   end) v from co cross join n join df fa on fa.id = co.ia join df fb on fb.id = co.ib" \
    "   group by co.topic) per_topic"

/* The worker measured the settled version, its coherence agrees with SQL's, and status
 * shows the measure, the last refresh and refit and what the policy will do next. */
static void assert_measured_and_shown(harness *h)
{
    char *out = NULL, *v, *sql_coherence, want[128];

    assert_int_equal(harness_wait_scalar(h,
        "select count(*) from topicflow.model_quality"
        " where version = (select max(version) from topicflow.model)", 1, 60), 1);
    sql_coherence = harness_query_text(h, SQL_COHERENCE, "10");
    v = harness_query_text(h, "select round(coherence::numeric, 4)::text from topicflow.model_quality"
                              " order by version desc limit $1::int", "1");
    assert_string_equal(v, sql_coherence);
    free(v);
    assert_int_equal(harness_run(h, "topicflow", (const char *[]){"status", "--json", NULL}, NULL, &out, NULL), 0);
    v = harness_query_text(h,
        "select format('%s %s %s %s %s %s', ($1::jsonb->>'model_relative_error')::float8 between 0 and 1,"
        " round(($1::jsonb->>'model_coherence')::numeric, 4)::text,"
        " ($1::jsonb->>'model_measured_version')::bigint = (select max(version) from topicflow.model),"
        " ($1::jsonb->>'last_refit_coherence')::float8 between -1 and 1,"
        " $1::jsonb->>'last_refit_reason', $1::jsonb->>'model_policy_next' like 'refit (growth) at %')",
        out);
    snprintf(want, sizeof(want), "t %s t t quiet t", sql_coherence);
    assert_string_equal(v, want);
    free(v);
    free(out);
    free(sql_coherence);
}

static void test_quiet_stream_folds_pending_deltas_and_refits(void **state)
{
    harness h;
    pid_t producer, w;
    /* no refresh while events flow (1000 deltas never accumulate), no growth refit */
    const char *args[] = {"--refresh-every", "1000", "--refit-growth", "100", "--refit-quiet", "2s",
                          "--refit-min-interval", "1s", "--measure-interval", "1s", NULL};
    /* words that co-occur unevenly, then three in every posting that the vocabulary rule prunes */
    const char *words = "welding plumbing carpentry masonry roofing painting tiling glazing"
                        " wiring fencing paving drywall";

    harness_setup(&h, "policy_quiet");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w = pipeline_spawn_worker(&h, args);
    insert_from_words(&h, 200, words);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 200, 60), 200);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.model_epochs", 1, 60), 1);
    insert_from_words(&h, 300, words);
    harness_sql(&h, "update public.internships set description = description || ' site crew shift'");
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 1000, 60), 1000);
    /* nothing arrives any more: the deltas are folded and the model re-fitted on all 500 */
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.model_deltas", 0, 60), 0);
    assert_int_equal(harness_wait_scalar(&h,
        "select count(*) from topicflow.model_epochs where reason = 'quiet' and fit_docs = 500", 1, 60), 1);
    assert_int_equal(harness_wait_scalar(&h, STALE, 0, 60), 0);
    assert_measured_and_shown(&h);
    /* and once: pruned near-universal terms are no growth to re-fit for, again and again */
    sleep(5);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.model_epochs where reason = 'quiet'"), 1);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_bookkeeping(&h);
    harness_teardown(&h);
}

/* The first fit saw every document and no refit follows: the deltas the stream left behind
 * must still be folded once it is quiet (they were not, while fewer than --refresh-every
 * waited). */
static void test_quiet_stream_folds_deltas_without_a_refit(void **state)
{
    harness h;
    pid_t producer, w;
    const char *args[] = {"--refresh-every", "1000", "--refit-auto=off", NULL};

    harness_setup(&h, "policy_quiet_refresh");
    producer = harness_spawn(&h, "topicflow-producer", NULL);
    w = pipeline_spawn_worker(&h, args);
    harness_insert_internships(&h, 100);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 100, 60), 100);
    assert_true(harness_wait_scalar(&h, "select (count(*) > 0)::int from topicflow.model", 1, 60) == 1);
    harness_insert_internships(&h, 100);
    assert_int_equal(harness_wait_scalar(&h, PROCESSED, 200, 60), 200);
    assert_int_equal(harness_wait_scalar(&h, "select count(*) from topicflow.model_deltas", 0, 30), 0);
    assert_int_equal(harness_scalar(&h, "select count(*) from topicflow.model_epochs"), 1);
    assert_int_equal(harness_stop(w, SIGTERM), 0);
    assert_int_equal(harness_stop(producer, SIGTERM), 0);
    assert_bookkeeping(&h);
    harness_teardown(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fewer_terms_than_k_gets_a_model_that_grows_to_k),
        cmocka_unit_test(test_automatic_refits_under_traffic_lose_no_update),
        cmocka_unit_test(test_quiet_stream_folds_pending_deltas_and_refits),
        cmocka_unit_test(test_quiet_stream_folds_deltas_without_a_refit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
