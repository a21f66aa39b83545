/*
 * topics.c - `topicflow topics` (the current model's topics and their heaviest terms) and
 * `topicflow doc ID` (one document's topic mixture), as aligned text or as JSON whose shape
 * the README fixes (a public contract). They read only the public views topicflow.topics and
 * topicflow.document_topics, like any dashboard would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "wire/json.h"

typedef struct topics_config {
    const char *pg_url, *log_level;
    long top;
    int json;
    const char *source;
} topics_config;

static const tf_option topics_options[] = {
    TF_OPTIONS_PG(topics_config), TF_OPTIONS_LOG(topics_config),
    {"top", NULL, TF_OPT_INT, "10", "terms per topic", offsetof(topics_config, top), 1, 1000},
    {"json", NULL, TF_OPT_BOOL, "off", "print JSON: [{\"topic\": 0, \"terms\": [{\"term\": …, \"weight\": …}]}]",
     offsetof(topics_config, json), 0, 0},
};

static const tf_option doc_options[] = {
    TF_OPTIONS_PG(topics_config), TF_OPTIONS_LOG(topics_config),
    {"source", NULL, TF_OPT_STRING, "public.internships", "the tracked table the document is from",
     offsetof(topics_config, source), 0, 0},
    {"top", NULL, TF_OPT_INT, "5", "terms shown for each of the document's topics",
     offsetof(topics_config, top), 1, 1000},
    {"json", NULL, TF_OPT_BOOL, "off", "print JSON: {\"source\": …, \"doc_id\": …, \"topics\": [{\"topic\": 0, \"weight\": …}]}",
     offsetof(topics_config, json), 0, 0},
};

static PGconn *connect_or_fail(const char *cmd, const char *url, int *status)
{
    tf_err err;
    PGconn *c = tf_migrate_connect(url, "topicflow-cli", &err);

    if (!c)
        *status = cli_error(cmd, CLI_FAIL, "%s", err.msg);
    return c;
}

static void print_topics_json(const PGresult *res)
{
    int rows = PQntuples(res), prev = -1;

    printf("[");
    for (int r = 0; r < rows; r++) {
        int topic = atoi(PQgetvalue(res, r, 0));
        if (topic != prev) {
            printf("%s{\"topic\": %d, \"terms\": [", prev < 0 ? "" : "]}, ", topic);
            prev = topic;
        } else {
            printf(", ");
        }
        printf("{\"term\": ");
        tf_json_write_cstring(stdout, PQgetvalue(res, r, 2));
        printf(", \"weight\": %s}", PQgetvalue(res, r, 3));
    }
    printf("%s]\n", prev < 0 ? "" : "]}");
}

static void print_topics_table(const PGresult *res)
{
    int rows = PQntuples(res), prev = -1;

    for (int r = 0; r < rows; r++) {
        int topic = atoi(PQgetvalue(res, r, 0));
        if (topic != prev) {
            printf("%stopic %2d:", prev < 0 ? "" : "\n", topic);
            prev = topic;
        }
        printf(" %s (%.3f)", PQgetvalue(res, r, 2), atof(PQgetvalue(res, r, 3)));
    }
    if (prev >= 0)
        printf("\n");
}

int cli_topics(int argc, char **argv)
{
    topics_config cfg;
    char top[24];
    const char *params[1] = {top};
    PGresult *res;
    PGconn *c;
    int first, status;

    status = cli_parse("topics", "topicflow topics [--top N] [--json]",
                       "Prints the current model's topics with their heaviest terms and weights.",
                       topics_options, sizeof(topics_options) / sizeof(topics_options[0]), &cfg,
                       argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first < argc)
        return cli_error("topics", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    c = connect_or_fail("topics", cfg.pg_url, &status);
    if (!c)
        return status;
    snprintf(top, sizeof(top), "%ld", cfg.top);
    res = PQexecParams(c, "select topic, rank, term, weight from topicflow.topics"
                          " where rank <= $1 order by topic, rank",
                       1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        tf_err err;
        tf_pg_result_error(c, res, &err);
        status = cli_error("topics", CLI_FAIL, "%s", err.msg);
    } else if (cfg.json) {
        print_topics_json(res);
    } else if (PQntuples(res) == 0) {
        printf("no model yet: the workers fit the first one once enough documents arrived "
               "(or run `topicflow refit`)\n");
    } else {
        print_topics_table(res);
    }
    PQclear(res);
    PQfinish(c);
    return status;
}

int cli_doc(int argc, char **argv)
{
    topics_config cfg;
    char top[24];
    const char *params[3];
    PGresult *doc = NULL, *mix = NULL;
    PGconn *c;
    tf_err err;
    int first, status;

    status = cli_parse("doc", "topicflow doc ID [--source TABLE] [--top N] [--json]",
                       "Prints one document's topic mixture (weights sum to 1) with each topic's "
                       "heaviest terms.",
                       doc_options, sizeof(doc_options) / sizeof(doc_options[0]), &cfg, argc,
                       argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first != argc - 1)
        return cli_error("doc", CLI_USAGE, "expected one document id (see --help)");
    c = connect_or_fail("doc", cfg.pg_url, &status);
    if (!c)
        return status;
    snprintf(top, sizeof(top), "%ld", cfg.top);
    params[0] = cfg.source;
    params[1] = argv[first];
    params[2] = top;
    /* Always one row: the document (or nulls), and the tracked tables to tell a wrong
     * --source from a missing id. */
    doc = PQexecParams(c, "select d.version, d.deleted, d.model_version,"
                          "       (select string_agg(source, ', ' order by source)"
                          "          from topicflow.tracked_tables),"
                          "       exists (select 1 from topicflow.tracked_tables where source = $1)"
                          "  from (select 1) one left join topicflow.documents d"
                          "    on d.source = $1 and d.doc_id = $2",
                       2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(doc) != PGRES_TUPLES_OK) {
        tf_pg_result_error(c, doc, &err);
        status = cli_error("doc", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (PQgetvalue(doc, 0, 4)[0] != 't') {
        status = cli_error("doc", CLI_FAIL, "%s is not a tracked table (tracked: %s)", cfg.source,
                           PQgetisnull(doc, 0, 3) ? "none" : PQgetvalue(doc, 0, 3));
        goto done;
    }
    if (PQgetisnull(doc, 0, 0) || PQgetvalue(doc, 0, 1)[0] == 't') {
        status = cli_error("doc", CLI_FAIL, "no document %s in %s (%s)", argv[first], cfg.source,
                           PQgetisnull(doc, 0, 0) ? "no such id, or no worker has processed it yet"
                                                  : "deleted");
        goto done;
    }
    mix = PQexecParams(c,
        "select dt.topic, dt.weight,"
        " (select string_agg(t.term, ' ' order by t.rank) from topicflow.topics t"
        "   where t.topic = dt.topic and t.rank <= $3)"
        " from topicflow.document_topics dt where dt.source = $1 and dt.doc_id = $2"
        " order by dt.weight desc",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(mix) != PGRES_TUPLES_OK) {
        tf_pg_result_error(c, mix, &err);
        status = cli_error("doc", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (cfg.json) {
        printf("{\"source\": ");
        tf_json_write_cstring(stdout, cfg.source);
        printf(", \"doc_id\": ");
        tf_json_write_cstring(stdout, argv[first]);
        printf(", \"version\": %s, \"model_version\": %s, \"topics\": [", PQgetvalue(doc, 0, 0),
               PQgetisnull(doc, 0, 2) ? "null" : PQgetvalue(doc, 0, 2));
        for (int r = 0; r < PQntuples(mix); r++)
            printf("%s{\"topic\": %s, \"weight\": %s}", r ? ", " : "", PQgetvalue(mix, r, 0),
                   PQgetvalue(mix, r, 1));
        printf("]}\n");
    } else {
        printf("%s %s (version %s)\n", cfg.source, argv[first], PQgetvalue(doc, 0, 0));
        if (PQntuples(mix) == 0)
            printf("  not folded into a model yet\n");
        for (int r = 0; r < PQntuples(mix); r++)
            printf("  topic %2s  %5.1f %%  %s\n", PQgetvalue(mix, r, 0),
                   100.0 * atof(PQgetvalue(mix, r, 1)), PQgetvalue(mix, r, 2));
    }
done:
    PQclear(doc);
    PQclear(mix);
    PQfinish(c);
    return status;
}
