/*
 * test_cluster.c - topicflow on a three-node RabbitMQ cluster (scripts/dev-services cluster,
 * ctest fixture "cluster"), wired as compose/docker-compose.cluster.yml wires it: every
 * program gets all three nodes, the producer's list starting at node 1 and the workers' at
 * node 2, and topicflow.nmf has a replica on each node. A node is SIGKILLed under load: the
 * clients fail over through their lists, everything is processed while it is down, it rejoins
 * when restarted, and every event is processed exactly once with nothing dead-lettered.
 * Runs alone: it kills cluster nodes.
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

#include "cluster.h"
#include "harness.h"
#include "pipeline.h"

#define OUTBOX "select count(*) from topicflow.outbox"
#define UNPUBLISHED "select count(*) from topicflow.outbox where published_at is null"
#define PROCESSED "select count(*) from topicflow.processed_events"
#define UNPROCESSED "select count(*) from topicflow.outbox o where not exists" \
                    " (select 1 from topicflow.processed_events p where p.event_id = o.id)"

/* A worker consumes on one connection and dead-letters on another. */
#define WORKER_CONNECTIONS 2

typedef struct programs {
    pid_t producer;
    pid_t workers[2];
} programs;

/* The producer first, so that topicflow.nmf is declared through node 1 while all three nodes
 * run; then two workers, which consume through node 2. */
static void start_programs(harness *h, programs *p)
{
    p->producer = harness_spawn(h, "topicflow-producer",
                                (const char *[]){"--batch", "200", "--reconnect-max", "1s", NULL});
    harness_insert_internships(h, 500);
    assert_int_equal(harness_wait_scalar(h, UNPUBLISHED, 0, 30), 0);
    for (int i = 0; i < 2; i++)
        p->workers[i] = pipeline_spawn_worker(h, (const char *[]){"--amqp", cluster_urls(h, 2),
                                                                  "--reconnect-max", "1s", NULL});
    assert_int_equal(harness_wait_scalar(h, PROCESSED, 500, 60), 500);
    assert_int_equal(cluster_connections(h, 1), 1);
    assert_int_equal(cluster_connections(h, 2), 2 * WORKER_CONNECTIONS);
}

static void stop_programs(programs *p)
{
    for (int i = 0; i < 2; i++)
        assert_int_equal(harness_stop(p->workers[i], SIGTERM), 0);
    assert_int_equal(harness_stop(p->producer, SIGTERM), 0);
}

/* Waits until the outbox is published and processed. */
static void wait_all_processed(harness *h, double timeout_s)
{
    long long n;

    assert_int_equal(harness_wait_scalar(h, UNPUBLISHED, 0, timeout_s), 0);
    n = harness_scalar(h, OUTBOX);
    assert_int_equal(harness_wait_scalar(h, PROCESSED, n, timeout_s), n);
}

/* The killed node is back: its replica of topicflow.nmf is online again and new events flow. */
static void restart_and_finish(harness *h, int node, programs *p)
{
    double t = harness_now();

    cluster_restart(node);
    assert_int_equal(cluster_wait_queue_nodes(h, TF_QUEUE_NMF, "online", CLUSTER_ALL, 60), CLUSTER_ALL);
    print_message("node %d restarted and its replica online in %.1f s\n", node, harness_now() - t);
    harness_insert_internships(h, 500);
    wait_all_processed(h, 60);
    stop_programs(p);
}

static void assert_every_event_processed_once(harness *h)
{
    long long n = harness_scalar(h, OUTBOX);

    assert_int_equal(harness_scalar(h, UNPROCESSED), 0);
    assert_int_equal(harness_scalar(h, PROCESSED), n);
    assert_int_equal(harness_scalar(h, "select count(*) from topicflow.documents where not deleted"), n);
    assert_int_equal(pipeline_queue_depth(h, TF_QUEUE_DEAD), 0);
    assert_int_equal(pipeline_queue_depth(h, TF_QUEUE_NMF), 0);
    pipeline_assert_df_consistent(h);
    pipeline_assert_doc_count_consistent(h);
    pipeline_assert_statistics_consistent(h);
}

static void test_queue_declared_in_full_cluster_has_a_replica_on_every_node(void **state)
{
    harness h;
    programs p;

    harness_setup_pg(&h, "cluster_replicas");
    cluster_setup(&h);
    start_programs(&h, &p);
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_NMF, "members"), CLUSTER_ALL);
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_NMF, "online"), CLUSTER_ALL);
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_DEAD, "members"), CLUSTER_ALL);
    /* A quorum queue is led from the node its declarer is connected to. */
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_NMF, "leader"), CLUSTER_NODE(1));
    stop_programs(&p);
    harness_teardown(&h);
}

static void test_producer_and_leader_node_killed_under_load_loses_nothing(void **state)
{
    harness h;
    programs p;
    long long at_kill;
    double t;

    harness_setup_pg(&h, "cluster_kill_leader");
    cluster_setup(&h);
    start_programs(&h, &p);
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_NMF, "leader"), CLUSTER_NODE(1));
    harness_insert_internships(&h, 10000);
    harness_wait_scalar(&h, "select (count(*) < 10000)::int from topicflow.outbox"
                            " where published_at is null", 1, 30);
    cluster_kill(1);
    t = harness_now();
    /* Nothing was inserted since: what is unpublished now was unpublished at the kill. */
    at_kill = harness_scalar(&h, UNPUBLISHED);
    assert_true(at_kill > 0);
    harness_insert_internships(&h, 1000); /* events keep arriving while node 1 is down */
    wait_all_processed(&h, 90);
    print_message("node 1 killed with %lld events unpublished; all %lld processed %.1f s after\n",
                  at_kill, harness_scalar(&h, OUTBOX), harness_now() - t);
    /* Everything above happened with node 1 down: the producer failed over to node 2, the
     * queue elected a leader among the two replicas left, the workers stayed on node 2. */
    assert_int_equal(cluster_queue_nodes(&h, TF_QUEUE_NMF, "leader") & CLUSTER_NODE(1), 0);
    assert_int_equal(cluster_connections(&h, 2), 1 + 2 * WORKER_CONNECTIONS);
    restart_and_finish(&h, 1, &p);
    assert_every_event_processed_once(&h);
    harness_teardown(&h);
}

static void test_workers_node_killed_under_load_loses_nothing(void **state)
{
    harness h;
    programs p;
    long long at_kill, n;
    double t;

    harness_setup_pg(&h, "cluster_kill_workers");
    cluster_setup(&h);
    start_programs(&h, &p);
    harness_insert_internships(&h, 10000);
    harness_wait_scalar(&h, "select (count(*) >= 1000)::int from topicflow.processed_events", 1, 60);
    cluster_kill(2);
    t = harness_now();
    /* Processing only grows: what is unprocessed now was unprocessed at the kill. */
    at_kill = harness_scalar(&h, PROCESSED);
    n = harness_scalar(&h, OUTBOX);
    assert_true(at_kill < n);
    harness_insert_internships(&h, 1000);
    wait_all_processed(&h, 90);
    print_message("node 2 killed with %lld of %lld events processed; all %lld processed %.1f s after\n",
                  at_kill, n, harness_scalar(&h, OUTBOX), harness_now() - t);
    /* The workers went on through node 3, the next in their list. */
    assert_int_equal(cluster_connections(&h, 3), 2 * WORKER_CONNECTIONS);
    restart_and_finish(&h, 2, &p);
    assert_every_event_processed_once(&h);
    harness_teardown(&h);
}

static int restore_cluster(void **state)
{
    cluster_start_all();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_declared_in_full_cluster_has_a_replica_on_every_node),
        cmocka_unit_test_teardown(test_producer_and_leader_node_killed_under_load_loses_nothing,
                                  restore_cluster),
        cmocka_unit_test_teardown(test_workers_node_killed_under_load_loses_nothing, restore_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
