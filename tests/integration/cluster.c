/*
 * cluster.c - test helpers over the three-node cluster of `scripts/dev-services cluster`. What
 * the cluster reports comes from rabbitmqctl through dev-services, so the tests see the nodes
 * as an operator would.
 */
#include "cluster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

/* TOPICFLOW_CLUSTER_<key>_<n> of <state>/cluster/env. */
static const char *node_env(const char *key, int n)
{
    char var[64];
    const char *v;

    snprintf(var, sizeof(var), "TOPICFLOW_CLUSTER_%s_%d", key, n);
    v = getenv(var);
    if (!v || !*v)
        fail_msg("%s is not set: is the cluster fixture started?", var);
    return v;
}

void cluster_setup(harness *h)
{
    char args[128];

    harness_load_env("cluster/env");
    snprintf(args, sizeof(args), "cluster vhost delete tf_%s", h->name);
    harness_services(args);
    snprintf(args, sizeof(args), "cluster vhost add tf_%s", h->name);
    if (harness_services(args) != 0)
        fail_msg("cannot create vhost tf_%s on the cluster", h->name);
    snprintf(h->amqp_url, sizeof(h->amqp_url), "%s", cluster_urls(h, 1));
}

const char *cluster_urls(harness *h, int first)
{
    static char list[512];
    size_t len = 0;

    for (int i = 0; i < CLUSTER_NODES; i++) {
        int n = (first - 1 + i) % CLUSTER_NODES + 1;
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%samqp://guest:guest@127.0.0.1:%s/tf_%s",
                                i ? "," : "", node_env("AMQP_PORT", n), h->name);
        if (len >= sizeof(list))
            fail_msg("URL list too long");
    }
    return list;
}

void cluster_kill(int n)
{
    char args[64];

    snprintf(args, sizeof(args), "cluster node %d kill", n);
    if (harness_services(args) != 0)
        fail_msg("cannot kill node %d", n);
}

void cluster_restart(int n)
{
    char args[64];

    snprintf(args, sizeof(args), "cluster node %d start", n);
    if (harness_services(args) != 0)
        fail_msg("node %d did not start again", n);
}

void cluster_start_all(void)
{
    if (harness_services("cluster start") != 0)
        fail_msg("cannot start the cluster");
}

/* rabbitmqctl ARGS on the first node that answers (caller frees); NULL when none does. */
static char *ctl_any(const char *args)
{
    char cmd[512], *out;

    for (int n = 1; n <= CLUSTER_NODES; n++) {
        snprintf(cmd, sizeof(cmd), "cluster rabbitmqctl %d -q %s 2>/dev/null", n, args);
        out = harness_services_read(cmd);
        if (out)
            return out;
    }
    return NULL;
}

static char *next_line(char *s)
{
    s += strcspn(s, "\n");
    return *s ? s + 1 : s;
}

/* The set of nodes whose names occur in text. Names are tf-<port>@localhost, so one never
 * occurs inside another. */
static int nodes_in(const char *text, size_t len)
{
    int set = 0;

    for (int n = 1; n <= CLUSTER_NODES; n++) {
        const char *name = node_env("NODE", n);
        size_t nlen = strlen(name);
        for (size_t i = 0; i + nlen <= len; i++)
            if (memcmp(text + i, name, nlen) == 0) {
                set |= CLUSTER_NODE(n);
                break;
            }
    }
    return set;
}

int cluster_queue_nodes(harness *h, const char *queue, const char *column)
{
    char args[256], *out, *line;
    size_t qlen = strlen(queue);
    int set = -1;

    snprintf(args, sizeof(args), "list_queues -p tf_%s --no-table-headers name %s", h->name, column);
    out = ctl_any(args);
    if (!out)
        return -1;
    for (line = out; *line; line = next_line(line)) {
        if (strncmp(line, queue, qlen) == 0 && line[qlen] == '\t') {
            set = nodes_in(line + qlen, strcspn(line + qlen, "\n"));
            break;
        }
    }
    free(out);
    return set;
}

int cluster_wait_queue_nodes(harness *h, const char *queue, const char *column, int want,
                             double timeout_s)
{
    double end = harness_now() + timeout_s;
    int set;

    while ((set = cluster_queue_nodes(h, queue, column)) != want && harness_now() < end)
        usleep(200000);
    return set;
}

int cluster_connections(harness *h, int n)
{
    char vhost[80], want[128], *out, *line;
    int count = 0;

    snprintf(vhost, sizeof(vhost), "tf_%s", h->name);
    snprintf(want, sizeof(want), "%s\t%s", vhost, node_env("AMQP_PORT", n));
    out = ctl_any("list_connections --no-table-headers vhost port");
    if (!out)
        fail_msg("no cluster node answers list_connections");
    for (line = out; *line; line = next_line(line)) {
        size_t len = strcspn(line, "\n");
        if (len == strlen(want) && strncmp(line, want, len) == 0)
            count++;
    }
    free(out);
    return count;
}
