/*
 * chaos.c - the chaos soak: the whole pipeline on real servers while a driver does to it
 * what production does. Writers insert, update, delete and change keys (a swap of two keys
 * in one statement among them) on two tracked tables; two producers and three workers run;
 * at random instants the driver SIGKILLs producers and workers, restarts RabbitMQ and
 * PostgreSQL, stalls PostgreSQL for longer than two heartbeats, injects outbox rows no
 * message can be made of and malformed messages, and runs a replay and a refit.
 *
 * Then it lets the pipeline settle and proves, against the source tables themselves:
 * every outbox event was processed and nothing else was; every live row's document holds
 * its latest version and content; tombstones exist exactly for absent rows; the model's
 * statistics equal the sum over the documents; the dead-letter queue holds exactly the
 * injected malformed messages, each with its reason, and the rows set aside are exactly
 * the injected ones. It prints events, kills, restarts, stalls, lost, double-applied and
 * wrongly dead-lettered.
 *
 * Short mode (ctest, about 90 s): `test_chaos`. Long mode: `test_chaos --long` (at least
 * 100,000 events and 100 kills). `--seconds N` sets the short mode's length.
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
#include "base/rng.h"

#define N_PRODUCERS 2
#define N_WORKERS 3

static int long_mode;
static double short_seconds = 75;

typedef struct soak {
    harness h;
    pid_t producers[N_PRODUCERS], workers[N_WORKERS];
    PGconn *writer;
    uint64_t rng;
    long reviews;                   /* next review code */
    long writes_failed;
    long kills_producer, kills_worker, restarts_rabbitmq, restarts_pg, stalls;
    long injected_rows, injected_messages, replays, refits, faults;
} soak;

static const char *const producer_args[] = {"--reconnect-max", "1s", "--heartbeat", "2",
                                            "--poll", "200ms", NULL};
static const char *const worker_args[] = {"--reconnect-max", "1s", "--heartbeat", "2",
                                          "--batch", "64", NULL};

static pid_t spawn_producer(soak *s)
{
    return harness_spawn(&s->h, "topicflow-producer", producer_args);
}

static pid_t spawn_worker(soak *s)
{
    return pipeline_spawn_worker(&s->h, worker_args);
}

/* A write that may meet a restarting server: failures are counted, never fatal. Whether an
 * interrupted statement committed is unknown, and need not be: the checker compares with
 * what the tables hold at the end. */
static int write_sql(soak *s, const char *sql)
{
    PGresult *res;
    int ok;

    if (!s->writer || PQstatus(s->writer) != CONNECTION_OK) {
        PQfinish(s->writer);
        s->writer = PQconnectdb(s->h.pg_url);
        if (PQstatus(s->writer) != CONNECTION_OK) {
            s->writes_failed++;
            return -1;
        }
    }
    res = PQexec(s->writer, sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok)
        s->writes_failed++;
    return ok ? 0 : -1;
}

static void write_burst(soak *s)
{
    char sql[1024];
    uint32_t what = tf_rng_below(&s->rng, 100);
    uint32_t k = 1 + tf_rng_below(&s->rng, 40);

    if (what < 35) {
        unsigned long salt = (unsigned long)(tf_rng_next(&s->rng) % 1000000);
        snprintf(sql, sizeof(sql),
                 "insert into public.internships (title, description, skills)"
                 " select (array['Data','Design','Law','Logistics','Marketing','Civil'])[1 + ((g + %lu) %% 6)]"
                 " || ' intern ' || (g + %lu), repeat('practical work on real projects with a mentor ', 1 + g %% 9)"
                 " || (array['sql dashboards','figma prototypes','contract review','warehouse routing',"
                 "'social campaigns','autocad drawings'])[1 + ((g + %lu) %% 6)], array['skill' || (g %% 13)]"
                 " from generate_series(1, %u) g",
                 salt, salt, salt, k);
    } else if (what < 55) {
        snprintf(sql, sizeof(sql),
                 "update public.internships set description = description || ' updated %u'"
                 " where id in (select id from public.internships order by random() limit %u)",
                 what, k);
    } else if (what < 65) {
        snprintf(sql, sizeof(sql),
                 "delete from public.internships where id in"
                 " (select id from public.internships order by random() limit %u)", 1 + k / 8);
    } else if (what < 75) {
        snprintf(sql, sizeof(sql),
                 "update public.internships set company = 'untracked change %u'"
                 " where id in (select id from public.internships order by random() limit %u)",
                 what, k);
    } else if (what < 85) {
        snprintf(sql, sizeof(sql),
                 "insert into public.reviews (code, body) select 'r' || g, 'review of course ' || g"
                 " from generate_series(%ld, %ld) g",
                 s->reviews, s->reviews + k - 1);
        s->reviews += k;
    } else if (what < 90) {
        snprintf(sql, sizeof(sql),
                 "update public.reviews set code = code || 'x' where code in"
                 " (select code from public.reviews order by random() limit %u)", 1 + k / 10);
    } else if (what < 95) {
        /* two keys swapped in one statement (the primary key is deferrable) */
        snprintf(sql, sizeof(sql),
                 "with pair as (select array_agg(code) c from (select code from public.reviews"
                 " order by random() limit 2) p)"
                 " update public.reviews r set code = case when r.code = pair.c[1] then pair.c[2]"
                 " else pair.c[1] end, body = r.body || ' swapped'"
                 " from pair where cardinality(pair.c) = 2 and r.code = any(pair.c)");
    } else {
        snprintf(sql, sizeof(sql),
                 "delete from public.reviews where code in"
                 " (select code from public.reviews order by random() limit %u)", 1 + k / 10);
    }
    write_sql(s, sql);
}

static void respawn_dead(soak *s)
{
    for (int i = 0; i < N_PRODUCERS; i++)
        if (kill(s->producers[i], 0) != 0 || waitpid(s->producers[i], NULL, WNOHANG) > 0)
            s->producers[i] = spawn_producer(s);
    for (int i = 0; i < N_WORKERS; i++)
        if (kill(s->workers[i], 0) != 0 || waitpid(s->workers[i], NULL, WNOHANG) > 0)
            s->workers[i] = spawn_worker(s);
}

static void inject_unpublishable_row(soak *s)
{
    char sql[512];

    /* valid JSON but not an object: the producer must set it aside, not stall on it */
    snprintf(sql, sizeof(sql),
             "insert into topicflow.outbox (source, aggregate_type, aggregate_id, event_type,"
             " version, payload) values ('public.internships', 'internship', 'poison-%ld',"
             " 'created', 1, '[\"not\", \"an object\"]')", s->injected_rows);
    /* a failed insert (the server restarting) injected nothing: only successes count; a
     * commit whose answer was lost is caught by the checker as a surplus row */
    if (write_sql(s, sql) == 0)
        s->injected_rows++;
}

static void inject_malformed_message(soak *s)
{
    static const char body[] = "\xc1 this is not msgpack";
    char id[32];

    snprintf(id, sizeof(id), "malformed-%ld", s->injected_messages);
    pipeline_publish_raw(&s->h, body, sizeof(body) - 1, 1, id);
    s->injected_messages++;
}

/* Holds an exclusive lock on the documents table for longer than two heartbeats. */
static void stall_database(soak *s)
{
    PGconn *c = PQconnectdb(s->h.pg_url);

    if (PQstatus(c) == CONNECTION_OK) {
        PQclear(PQexec(c, "begin"));
        PQclear(PQexec(c, "lock table topicflow.documents in access exclusive mode"));
        for (int i = 0; i < 10; i++) {
            write_burst(s);
            usleep(500000);
        }
        PQclear(PQexec(c, "commit"));
        s->stalls++;
    }
    PQfinish(c);
}

enum fault { KILL_WORKER, KILL_PRODUCER, POISON_ROW, POISON_MESSAGE, STALL, RESTART_RABBITMQ,
             RESTART_PG, REPLAY, REFIT, N_FAULTS };

/* The first faults go through every kind once, so even a short soak makes each of them;
 * after that kills are the most frequent. */
static enum fault next_fault(soak *s, long n)
{
    static const enum fault first[] = {KILL_WORKER, POISON_ROW, KILL_PRODUCER, STALL, POISON_MESSAGE,
                                       RESTART_RABBITMQ, KILL_WORKER, REPLAY, RESTART_PG, REFIT};
    uint32_t f = tf_rng_below(&s->rng, 100);

    if (n < (long)(sizeof(first) / sizeof(first[0])))
        return first[n];
    return f < 35 ? KILL_WORKER : f < 60 ? KILL_PRODUCER : f < 70 ? POISON_ROW
         : f < 80 ? POISON_MESSAGE : f < 86 ? STALL : f < 91 ? RESTART_RABBITMQ
         : f < 96 ? RESTART_PG : f < 98 ? REPLAY : REFIT;
}

static void one_fault(soak *s, long n)
{
    int i;

    switch (next_fault(s, n)) {
    case KILL_WORKER:
        i = (int)tf_rng_below(&s->rng, N_WORKERS);
        harness_stop(s->workers[i], SIGKILL);
        s->workers[i] = spawn_worker(s);
        s->kills_worker++;
        break;
    case KILL_PRODUCER:
        i = (int)tf_rng_below(&s->rng, N_PRODUCERS);
        harness_stop(s->producers[i], SIGKILL);
        s->producers[i] = spawn_producer(s);
        s->kills_producer++;
        break;
    case POISON_ROW:
        inject_unpublishable_row(s);
        break;
    case POISON_MESSAGE:
        inject_malformed_message(s);
        break;
    case STALL:
        stall_database(s);
        break;
    case RESTART_RABBITMQ:
        assert_int_equal(harness_services("rabbitmq kill"), 0);
        sleep(1);
        assert_int_equal(harness_services("rabbitmq start"), 0);
        s->restarts_rabbitmq++;
        break;
    case RESTART_PG:
        assert_int_equal(harness_services("pg stop"), 0);
        sleep(1);
        assert_int_equal(harness_services("pg start"), 0);
        s->restarts_pg++;
        break;
    case REPLAY: {
        /* the last 200 events again, as new events that carry replay_of */
        char from[32];
        long long max_id = harness_scalar(&s->h, "select coalesce(max(id), 0) from topicflow.outbox");
        const char *args[] = {"replay", "--from-id", from, NULL};
        snprintf(from, sizeof(from), "%lld", max_id > 200 ? max_id - 200 : 1);
        if (harness_run(&s->h, "topicflow", args, NULL, NULL, NULL) == 0)
            s->replays++;
        break;
    }
    default: {
        const char *args[] = {"refit", "--k", "6", "--max-iter", "30", NULL};
        if (harness_run(&s->h, "topicflow", args, NULL, NULL, NULL) == 0)
            s->refits++;
        break;
    }
    }
}

static long long q(soak *s, const char *sql)
{
    return harness_scalar(&s->h, sql);
}

/* Outbox events (not set aside) that no worker processed. */
#define UNPROCESSED                                                                               \
    "select count(*) from topicflow.outbox o where not exists"                                    \
    " (select 1 from topicflow.processed_events p where p.event_id = o.id)"

static void test_chaos_soak(void **state)
{
    soak s;
    double start, end;
    long long events, lost, foreign, stale, content, tombstones, dead, rejected, letters = -1,
        distinct_letters = -1, wrong_letters = -1, reasons = -1;
    char *out = NULL;

    memset(&s, 0, sizeof(s));
    s.rng = 20261201;
    harness_setup(&s.h, "chaos");
    harness_sql(&s.h, "create table public.reviews (code text, body text,"
                      " constraint reviews_pk primary key (code) deferrable initially deferred)");
    harness_sql(&s.h, "select topicflow.track('public.reviews', 'code', array['body'], 'review')");
    for (int i = 0; i < N_PRODUCERS; i++)
        s.producers[i] = spawn_producer(&s);
    for (int i = 0; i < N_WORKERS; i++)
        s.workers[i] = spawn_worker(&s);

    start = harness_now();
    end = start + short_seconds;
    for (double fault_at = start + 2;;) {
        long kills = s.kills_producer + s.kills_worker;
        if (!long_mode && harness_now() > end)
            break;
        if (long_mode && kills >= 100 &&
            q(&s, "select coalesce(max(id), 0) from topicflow.outbox") >= 100000)
            break;
        write_burst(&s);
        if (harness_now() >= fault_at) {
            one_fault(&s, s.faults++);
            respawn_dead(&s);
            fault_at = harness_now() + (long_mode ? 1.0 : 2.0) + tf_rng_unit(&s.rng) * 2.0;
        }
        usleep(long_mode ? 2000 : 20000);
    }

    /* Settle: every program up, the outbox drained, every event processed, every document
     * folded against the current model. */
    respawn_dead(&s);
    assert_int_equal(harness_wait_scalar(&s.h, "select count(*) from topicflow.outbox where published_at is null",
                                         0, 300), 0);
    assert_int_equal(harness_wait_scalar(&s.h, UNPROCESSED, 0, 300), 0);
    assert_int_equal(harness_wait_scalar(&s.h,
        "select count(*) from topicflow.documents where not deleted and"
        " coalesce(model_version, 0) < (select coalesce(max(epoch), 0) from topicflow.model)", 0, 300), 0);
    for (int i = 0; i < N_WORKERS; i++)
        assert_int_equal(harness_stop(s.workers[i], SIGTERM), 0);
    for (int i = 0; i < N_PRODUCERS; i++)
        assert_int_equal(harness_stop(s.producers[i], SIGTERM), 0);

    events = q(&s, "select count(*) from topicflow.outbox");
    lost = q(&s, UNPROCESSED);
    foreign = q(&s, "select count(*) from topicflow.processed_events p where not exists"
                    " (select 1 from topicflow.outbox o where o.id = p.event_id)");
    /* every live row: its document is live, at the row's latest version, with its content */
    stale = q(&s,
        "select (select count(*) from public.internships i left join topicflow.documents d"
        "   on d.source = 'public.internships' and d.doc_id = i.id::text"
        "   left join topicflow.document_versions v on v.source = 'public.internships' and v.aggregate_id = i.id::text"
        "  where d.doc_id is null or d.deleted or d.version <> v.version)"
        " + (select count(*) from public.reviews r left join topicflow.documents d"
        "   on d.source = 'public.reviews' and d.doc_id = r.code"
        "   left join topicflow.document_versions v on v.source = 'public.reviews' and v.aggregate_id = r.code"
        "  where d.doc_id is null or d.deleted or d.version <> v.version)");
    content = q(&s,
        "select (select count(*) from public.internships i join topicflow.documents d"
        "   on d.source = 'public.internships' and d.doc_id = i.id::text"
        "   join topicflow.outbox o on o.id = d.event_id"
        "  where o.payload->>'title' is distinct from i.title"
        "     or o.payload->>'description' is distinct from i.description)"
        " + (select count(*) from public.reviews r join topicflow.documents d"
        "   on d.source = 'public.reviews' and d.doc_id = r.code"
        "   join topicflow.outbox o on o.id = d.event_id"
        "  where o.payload->>'body' is distinct from r.body)");
    /* a tombstone where the row exists, or a live document where it does not */
    tombstones = q(&s,
        "select (select count(*) from topicflow.documents d left join public.internships i"
        "   on i.id::text = d.doc_id where d.source = 'public.internships' and d.deleted = (i.id is not null))"
        " + (select count(*) from topicflow.documents d left join public.reviews r"
        "   on r.code = d.doc_id where d.source = 'public.reviews' and d.deleted = (r.code is not null))");
    dead = pipeline_queue_depth(&s.h, "topicflow.dead");
    rejected = q(&s, "select count(*) from topicflow.outbox_rejected");
    if (harness_run(&s.h, "topicflow", (const char *[]){"dlq", "list", "--json", NULL}, NULL, &out, NULL) == 0) {
        char *n = harness_query_text(&s.h,
            "select format('%s %s %s %s', count(*), count(distinct e->>'message_id'),"
            " count(*) filter (where e->>'message_id' not like 'malformed-%'),"
            " count(*) filter (where coalesce(e->>'reason', '') <> ''))"
            " from jsonb_array_elements($1::jsonb) e", out);
        sscanf(n, "%lld %lld %lld %lld", &letters, &distinct_letters, &wrong_letters, &reasons);
        free(n);
    }
    free(out);

    printf("\nchaos soak (%s mode, %.0f s)\n", long_mode ? "long" : "short", harness_now() - start);
    printf("| measure | value |\n|---|---|\n");
    printf("| events (outbox rows, replays included) | %lld |\n", events);
    printf("| writes that met a failing server | %ld |\n", s.writes_failed);
    printf("| kills: producers, workers | %ld, %ld |\n", s.kills_producer, s.kills_worker);
    printf("| restarts: RabbitMQ, PostgreSQL | %ld, %ld |\n", s.restarts_rabbitmq, s.restarts_pg);
    printf("| stalls of PostgreSQL (5 s lock, heartbeat 2 s) | %ld |\n", s.stalls);
    printf("| replays, refits | %ld, %ld |\n", s.replays, s.refits);
    printf("| injected: unpublishable rows, malformed messages | %ld, %ld |\n", s.injected_rows,
           s.injected_messages);
    printf("| lost (events never processed) | %lld |\n", lost);
    printf("| double-applied (processed ids not in the outbox; statistics checked below) | %lld |\n", foreign);
    printf("| live rows whose document is missing, stale or deleted | %lld |\n", stale);
    printf("| documents whose content is not the row's | %lld |\n", content);
    printf("| wrong tombstones | %lld |\n", tombstones);
    printf("| dead letters: in queue, distinct messages (injected malformed) | %lld, %lld (%ld) |\n",
           letters, distinct_letters, s.injected_messages);
    printf("| wrongly dead-lettered (not an injected message) | %lld |\n", wrong_letters);
    printf("| rows set aside (injected) | %lld (%ld) |\n", rejected, s.injected_rows);
    fflush(stdout);

    assert_true(events > 0);
    assert_int_equal(lost, 0);
    assert_int_equal(foreign, 0);
    assert_int_equal(stale, 0);
    assert_int_equal(content, 0);
    assert_int_equal(tombstones, 0);
    /* a dead letter may exist twice (a worker killed between its confirm and the ack of
     * the original); never a healthy message, never one without its reason */
    assert_int_equal(letters, dead);
    assert_int_equal(distinct_letters, s.injected_messages);
    assert_int_equal(wrong_letters, 0);
    assert_int_equal(reasons, letters);
    assert_int_equal(rejected, s.injected_rows);
    pipeline_assert_df_consistent(&s.h);
    pipeline_assert_doc_count_consistent(&s.h);
    pipeline_assert_statistics_consistent(&s.h);
    PQfinish(s.writer);
    harness_teardown(&s.h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chaos_soak),
    };

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--long") == 0)
            long_mode = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            short_seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: test_chaos [--long] [--seconds N]\n");
            return 2;
        }
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
