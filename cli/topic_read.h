/*
 * topic_read.h - what `topics`, `topic`, `doc`, `label` and `report` read about the current
 * model's topics, read one way: each topic's label, size (documents whose dominant topic it
 * is, and their share) and heaviest terms (stem, display form, weight), from the public views
 * topicflow.topic_summary and topicflow.topics (sql/008); and the JSON and text shapes they
 * print topics in, so every command shows a topic the same way.
 */
#ifndef TF_CLI_TOPIC_READ_H
#define TF_CLI_TOPIC_READ_H

#include <libpq-fe.h>
#include <stdio.h>

#include "base/error.h"

typedef struct topic_term {
    const char *term;    /* the stem: the key */
    const char *display; /* the form people read */
    double weight;
} topic_term;

typedef struct topic_info {
    int topic;
    const char *label; /* NULL when none */
    long long documents;
    double share;
    topic_term *terms;
    int n_terms;
} topic_info;

/* Strings point into res; free with topic_list_free. */
typedef struct topic_list {
    PGresult *res;
    topic_info *topics;
    topic_term *terms;
    int n;
} topic_list;

/* Connects for command cmd; NULL after printing the reason (*status = CLI_FAIL). */
PGconn *topic_connect(const char *cmd, const char *url, int *status);

/* Runs a parameterized query; NULL after printing "topicflow cmd: reason" (*status set). */
PGresult *topic_query(PGconn *c, const char *cmd, const char *sql, int n,
                      const char *const *params, ExecStatusType want, int *status);

/* The current model's topics (only == -1) or topic `only`, with up to top terms each. No
 * model: n = 0. 0, or -1 with err set. */
int topic_list_load(PGconn *c, int top, int only, topic_list *out, tf_err *err);
void topic_list_free(topic_list *l);
const topic_info *topic_list_find(const topic_list *l, int topic);

/* "terms": [{"term", "display", "weight"}], "label": …, "documents": …, "share": … — the
 * keys a topic adds to a JSON object (no braces; "terms" first, as the README's contract
 * `{"topic": 0, "terms": [...]}` shows it). */
void topic_write_json_fields(FILE *f, const topic_info *t);
/* `topic  3  "Supply chain"  (412 docs, 20.6 %)` (no newline). */
void topic_write_heading(FILE *f, const topic_info *t);
/* Display forms (space-separated) with weights when with_weights. */
void topic_write_terms(FILE *f, const topic_info *t, int with_weights);

#endif
