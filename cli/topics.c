/*
 * topics.c - `topicflow topics` (the current model's topics: label, size, heaviest terms),
 * `topicflow topic N` (one topic with its most representative documents) and `topicflow doc
 * ID` (one document's title and topic mixture), as aligned text or as JSON whose shape the
 * README fixes (a public contract: keys are added, never renamed). Terms are shown by their
 * display form; the JSON keeps the stem as "term". They read only the public views
 * (sql/002, sql/008), like any dashboard would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "topic_read.h"
#include "wire/json.h"

typedef struct topics_config {
    const char *pg_url, *log_level, *log_format;
    long top, docs;
    int json;
    const char *source;
} topics_config;

static const tf_option topics_options[] = {
    TF_OPTIONS_PG(topics_config), TF_OPTIONS_LOG(topics_config),
    {"top", NULL, TF_OPT_INT, "10", "terms per topic", offsetof(topics_config, top), 1, 1000},
    {"json", NULL, TF_OPT_BOOL, "off",
     "print JSON: [{\"topic\": 0, \"terms\": [{\"term\": …, \"display\": …, \"weight\": …}], "
     "\"label\": …, \"documents\": …, \"share\": …}]",
     offsetof(topics_config, json), 0, 0},
};

static const tf_option topic_options[] = {
    TF_OPTIONS_PG(topics_config), TF_OPTIONS_LOG(topics_config),
    {"top", NULL, TF_OPT_INT, "10", "terms shown", offsetof(topics_config, top), 1, 1000},
    {"docs", NULL, TF_OPT_INT, "5", "representative documents shown (highest share of the topic)",
     offsetof(topics_config, docs), 0, 1000},
    {"json", NULL, TF_OPT_BOOL, "off",
     "print JSON: {\"topic\": N, \"terms\": […], \"label\": …, \"documents\": …, \"share\": …, "
     "\"top_documents\": [{\"source\": …, \"doc_id\": …, \"title\": …, \"weight\": …}]}",
     offsetof(topics_config, json), 0, 0},
};

static const tf_option doc_options[] = {
    TF_OPTIONS_PG(topics_config), TF_OPTIONS_LOG(topics_config),
    {"source", NULL, TF_OPT_STRING, "public.internships", "the tracked table the document is from",
     offsetof(topics_config, source), 0, 0},
    {"top", NULL, TF_OPT_INT, "5", "terms shown for each of the document's topics",
     offsetof(topics_config, top), 1, 1000},
    {"json", NULL, TF_OPT_BOOL, "off",
     "print JSON: {\"source\": …, \"doc_id\": …, \"title\": …, \"topics\": [{\"topic\": 0, "
     "\"weight\": …, \"terms\": […], \"label\": …, \"documents\": …, \"share\": …}]}",
     offsetof(topics_config, json), 0, 0},
};

static void print_json_or_null(const char *s)
{
    if (s)
        tf_json_write_cstring(stdout, s);
    else
        printf("null");
}

int cli_topics(int argc, char **argv)
{
    topics_config cfg;
    topic_list list;
    PGconn *c;
    tf_err err;
    int first, status;

    status = cli_parse("topics", "topicflow topics [--top N] [--json]",
                       "Prints the current model's topics: each one's label (topicflow label), "
                       "size (documents whose dominant topic it is, and their share) and heaviest "
                       "terms, shown by their most frequent written form, with weights.",
                       topics_options, N_OF(topics_options), &cfg, argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first < argc)
        return cli_error("topics", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    c = topic_connect("topics", cfg.pg_url, &status);
    if (!c)
        return status;
    if (topic_list_load(c, (int)cfg.top, -1, &list, &err) < 0) {
        PQfinish(c);
        return cli_error("topics", CLI_FAIL, "%s", err.msg);
    }
    if (cfg.json) {
        printf("[");
        for (int i = 0; i < list.n; i++) {
            printf("%s{\"topic\": %d, ", i ? ", " : "", list.topics[i].topic);
            topic_write_json_fields(stdout, &list.topics[i]);
            printf("}");
        }
        printf("]\n");
    } else if (list.n == 0) {
        printf("no model yet: the workers fit the first one once enough documents arrived "
               "(or run `topicflow refit`)\n");
    }
    for (int i = 0; !cfg.json && i < list.n; i++) {
        topic_write_heading(stdout, &list.topics[i]);
        printf(": ");
        topic_write_terms(stdout, &list.topics[i], 1);
        printf("\n");
    }
    topic_list_free(&list);
    PQfinish(c);
    return status;
}

int cli_topic(int argc, char **argv)
{
    topics_config cfg;
    topic_list list;
    const topic_info *t;
    char docs[24];
    const char *params[2];
    PGresult *rep = NULL;
    PGconn *c;
    tf_err err;
    long n;
    int first, status;

    memset(&list, 0, sizeof(list));
    status = cli_parse("topic", "topicflow topic N [--top N] [--docs N] [--json]",
                       "Prints one topic of the current model: its label, size, heaviest terms "
                       "and most representative documents (the largest share of the topic in "
                       "their mixture) with their titles.",
                       topic_options, N_OF(topic_options), &cfg, argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first != argc - 1 || !cli_parse_count(argv[first], 0, 100000, &n))
        return cli_error("topic", CLI_USAGE, "expected one topic number (see --help)");
    c = topic_connect("topic", cfg.pg_url, &status);
    if (!c)
        return status;
    if (topic_list_load(c, (int)cfg.top, (int)n, &list, &err) < 0) {
        status = cli_error("topic", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    t = topic_list_find(&list, (int)n);
    if (!t) {
        status = cli_error("topic", CLI_FAIL, "no topic %ld in the current model", n);
        goto done;
    }
    snprintf(docs, sizeof(docs), "%ld", cfg.docs);
    params[0] = argv[first];
    params[1] = docs;
    rep = topic_query(c, "topic",
        "select dt.source, dt.doc_id, dt.weight, topicflow.document_title(dt.source, dt.doc_id)"
        " from topicflow.document_topics dt"
        " join topicflow.documents d on d.source = dt.source and d.doc_id = dt.doc_id"
        " where dt.topic = $1::int"
        " order by dt.weight desc, d.topics[$1::int + 1] desc, dt.source, dt.doc_id"
        " limit $2::int",
        2, params, PGRES_TUPLES_OK, &status);
    if (!rep)
        goto done;
    if (cfg.json) {
        printf("{\"topic\": %d, ", t->topic);
        topic_write_json_fields(stdout, t);
        printf(", \"top_documents\": [");
        for (int r = 0; r < PQntuples(rep); r++) {
            printf("%s{\"source\": ", r ? ", " : "");
            tf_json_write_cstring(stdout, PQgetvalue(rep, r, 0));
            printf(", \"doc_id\": ");
            tf_json_write_cstring(stdout, PQgetvalue(rep, r, 1));
            printf(", \"title\": ");
            print_json_or_null(PQgetisnull(rep, r, 3) ? NULL : PQgetvalue(rep, r, 3));
            printf(", \"weight\": %s}", PQgetvalue(rep, r, 2));
        }
        printf("]}\n");
    } else {
        topic_write_heading(stdout, t);
        printf("\n  terms: ");
        topic_write_terms(stdout, t, 1);
        printf("\n  documents:\n");
        for (int r = 0; r < PQntuples(rep); r++)
            printf("    %5.1f %%  %s %s  %s\n", 100.0 * atof(PQgetvalue(rep, r, 2)),
                   PQgetvalue(rep, r, 0), PQgetvalue(rep, r, 1),
                   PQgetisnull(rep, r, 3) ? "(no title)" : PQgetvalue(rep, r, 3));
        if (PQntuples(rep) == 0)
            printf("    (none)\n");
    }
done:
    PQclear(rep);
    topic_list_free(&list);
    PQfinish(c);
    return status;
}

int cli_doc(int argc, char **argv)
{
    topics_config cfg;
    topic_list list;
    const char *params[2];
    PGresult *doc = NULL, *mix = NULL;
    PGconn *c;
    tf_err err;
    int first, status;

    memset(&list, 0, sizeof(list));
    status = cli_parse("doc", "topicflow doc ID [--source TABLE] [--top N] [--json]",
                       "Prints one document's title and topic mixture (weights sum to 1) with "
                       "each topic's label and heaviest terms.",
                       doc_options, N_OF(doc_options), &cfg, argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first != argc - 1)
        return cli_error("doc", CLI_USAGE, "expected one document id (see --help)");
    c = topic_connect("doc", cfg.pg_url, &status);
    if (!c)
        return status;
    params[0] = cfg.source;
    params[1] = argv[first];
    /* Always one row: the document (or nulls), and the tracked tables to tell a wrong
     * --source from a missing id. */
    doc = topic_query(c, "doc",
                      "select d.version, d.deleted, d.model_version,"
                      "       case when d.doc_id is not null"
                      "            then topicflow.document_title(d.source, d.doc_id) end,"
                      "       (select string_agg(source, ', ' order by source)"
                      "          from topicflow.tracked_tables),"
                      "       exists (select 1 from topicflow.tracked_tables where source = $1)"
                      "  from (select 1) one left join topicflow.documents d"
                      "    on d.source = $1 and d.doc_id = $2",
                      2, params, PGRES_TUPLES_OK, &status);
    if (!doc)
        goto done;
    if (PQgetvalue(doc, 0, 5)[0] != 't') {
        status = cli_error("doc", CLI_FAIL, "%s is not a tracked table (tracked: %s)", cfg.source,
                           PQgetisnull(doc, 0, 4) ? "none" : PQgetvalue(doc, 0, 4));
        goto done;
    }
    if (PQgetisnull(doc, 0, 0) || PQgetvalue(doc, 0, 1)[0] == 't') {
        status = cli_error("doc", CLI_FAIL, "no document %s in %s (%s)", argv[first], cfg.source,
                           PQgetisnull(doc, 0, 0) ? "no such id, or no worker has processed it yet"
                                                  : "deleted");
        goto done;
    }
    mix = topic_query(c, "doc",
                      "select topic, weight from topicflow.document_topics"
                      " where source = $1 and doc_id = $2 order by weight desc, topic",
                      2, params, PGRES_TUPLES_OK, &status);
    if (!mix)
        goto done;
    if (topic_list_load(c, (int)cfg.top, -1, &list, &err) < 0) {
        status = cli_error("doc", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (cfg.json) {
        printf("{\"source\": ");
        tf_json_write_cstring(stdout, cfg.source);
        printf(", \"doc_id\": ");
        tf_json_write_cstring(stdout, argv[first]);
        printf(", \"title\": ");
        print_json_or_null(PQgetisnull(doc, 0, 3) ? NULL : PQgetvalue(doc, 0, 3));
        printf(", \"version\": %s, \"model_version\": %s, \"topics\": [", PQgetvalue(doc, 0, 0),
               PQgetisnull(doc, 0, 2) ? "null" : PQgetvalue(doc, 0, 2));
        for (int r = 0; r < PQntuples(mix); r++) {
            const topic_info *t = topic_list_find(&list, atoi(PQgetvalue(mix, r, 0)));
            printf("%s{\"topic\": %s, \"weight\": %s", r ? ", " : "", PQgetvalue(mix, r, 0),
                   PQgetvalue(mix, r, 1));
            if (t) {
                printf(", ");
                topic_write_json_fields(stdout, t);
            }
            printf("}");
        }
        printf("]}\n");
    } else {
        printf("%s %s (version %s): %s\n", cfg.source, argv[first], PQgetvalue(doc, 0, 0),
               PQgetisnull(doc, 0, 3) ? "(no title)" : PQgetvalue(doc, 0, 3));
        if (PQntuples(mix) == 0)
            printf("  not folded into a model yet\n");
        for (int r = 0; r < PQntuples(mix); r++) {
            const topic_info *t = topic_list_find(&list, atoi(PQgetvalue(mix, r, 0)));
            printf("  %5.1f %%  ", 100.0 * atof(PQgetvalue(mix, r, 1)));
            if (!t) {
                printf("topic %2s\n", PQgetvalue(mix, r, 0));
                continue;
            }
            topic_write_heading(stdout, t);
            printf(": ");
            topic_write_terms(stdout, t, 0);
            printf("\n");
        }
    }
done:
    PQclear(doc);
    PQclear(mix);
    topic_list_free(&list);
    PQfinish(c);
    return status;
}
