/*
 * label.c - `topicflow label N TEXT`: a name for topic N, kept in topicflow.topic_labels
 * against the topic id, which refreshes and refits keep stable (refits match new topics to
 * old ones, engine/topic_match.h); `--clear` removes it. Every command that shows a topic
 * shows its label (topic_read.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "topic_read.h"

typedef struct label_config {
    const char *pg_url, *log_level, *log_format;
    int clear;
} label_config;

static const tf_option label_options[] = {
    TF_OPTIONS_PG(label_config), TF_OPTIONS_LOG(label_config),
    {"clear", NULL, TF_OPT_BOOL, "off", "remove topic N's label instead of setting one",
     offsetof(label_config, clear), 0, 0},
};

#define LABEL_MAX 200 /* bytes: a name, not a description */

int cli_label(int argc, char **argv)
{
    label_config cfg;
    const char *params[2];
    PGresult *res = NULL;
    PGconn *c;
    long n;
    int first, status, want = 2;

    status = cli_parse("label", "topicflow label N TEXT | topicflow label N --clear",
                       "Names topic N of the current model (shown by topics, topic, doc and "
                       "report). The name stays with the topic id across refreshes and refits.",
                       label_options, N_OF(label_options), &cfg,
                       argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (cfg.clear)
        want = 1;
    if (argc - first != want || !cli_parse_count(argv[first], 0, 100000, &n))
        return cli_error("label", CLI_USAGE, cfg.clear ? "expected a topic number (see --help)"
                                                       : "expected a topic number and a label (see --help)");
    if (!cfg.clear && (argv[first + 1][0] == '\0' || strlen(argv[first + 1]) > LABEL_MAX))
        return cli_error("label", CLI_USAGE, "a label is 1 to %d bytes", LABEL_MAX);
    c = topic_connect("label", cfg.pg_url, &status);
    if (!c)
        return status;
    params[0] = argv[first];
    params[1] = cfg.clear ? NULL : argv[first + 1];
    res = topic_query(c, "label", "select k from topicflow.current_model", 0, NULL,
                      PGRES_TUPLES_OK, &status);
    if (!res)
        goto done;
    if (PQntuples(res) == 0 || n >= atol(PQgetvalue(res, 0, 0))) {
        status = cli_error("label", CLI_FAIL, "no topic %ld in the current model (%s topics)", n,
                           PQntuples(res) ? PQgetvalue(res, 0, 0) : "no model yet: 0");
        goto done;
    }
    PQclear(res);
    if (cfg.clear)
        res = topic_query(c, "label", "delete from topicflow.topic_labels where topic = $1::int",
                          1, params, PGRES_COMMAND_OK, &status);
    else
        res = topic_query(c, "label",
                          "insert into topicflow.topic_labels (topic, label) values ($1::int, $2)"
                          " on conflict (topic) do update set label = excluded.label,"
                          " labelled_at = now()",
                          2, params, PGRES_COMMAND_OK, &status);
    if (!res)
        goto done;
    if (cfg.clear)
        printf("topic %ld: label %s\n", n, atoi(PQcmdTuples(res)) ? "removed" : "was not set");
    else
        printf("topic %ld: \"%s\"\n", n, argv[first + 1]);
done:
    PQclear(res);
    PQfinish(c);
    return status;
}
