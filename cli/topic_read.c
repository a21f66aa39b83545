/*
 * topic_read.c - the topics as the CLI shows them (see topic_read.h): one query over the
 * public views, grouped per topic, and the shared JSON and text shapes.
 */
#include "topic_read.h"

#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "wire/json.h"

PGconn *topic_connect(const char *cmd, const char *url, int *status)
{
    tf_err err;
    PGconn *c = tf_migrate_connect(url, "topicflow-cli", &err);

    if (!c)
        *status = cli_error(cmd, CLI_FAIL, "%s", err.msg);
    return c;
}

PGresult *topic_query(PGconn *c, const char *cmd, const char *sql, int n,
                      const char *const *params, ExecStatusType want, int *status)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    tf_err err;

    if (tf_pg_check(c, res, want, &err) < 0) {
        *status = cli_error(cmd, CLI_FAIL, "%s", err.msg);
        return NULL;
    }
    return res;
}

int topic_list_load(PGconn *c, int top, int only, topic_list *out, tf_err *err)
{
    char top_s[24], only_s[24];
    const char *params[2] = {top_s, only >= 0 ? only_s : NULL};
    int rows;

    memset(out, 0, sizeof(*out));
    snprintf(top_s, sizeof(top_s), "%d", top);
    snprintf(only_s, sizeof(only_s), "%d", only);
    out->res = PQexecParams(c,
        "select s.topic, s.label, s.documents, s.share, t.term, t.display, t.weight"
        " from topicflow.topic_summary s"
        " left join topicflow.topics t on t.topic = s.topic and t.rank <= $1::int"
        " where $2::int is null or s.topic = $2::int"
        " order by s.topic, t.rank",
        2, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(c, out->res, PGRES_TUPLES_OK, err) < 0) {
        out->res = NULL;
        return -1;
    }
    rows = PQntuples(out->res);
    out->topics = calloc((size_t)rows + 1, sizeof(*out->topics));
    out->terms = calloc((size_t)rows + 1, sizeof(*out->terms));
    if (!out->topics || !out->terms) {
        topic_list_free(out);
        return tf_err_set(err, "out of memory");
    }
    for (int r = 0; r < rows; r++) {
        const PGresult *res = out->res;
        int topic = atoi(PQgetvalue(res, r, 0));
        topic_info *t = out->n ? &out->topics[out->n - 1] : NULL;
        if (!t || t->topic != topic) {
            t = &out->topics[out->n++];
            t->topic = topic;
            t->label = PQgetisnull(res, r, 1) ? NULL : PQgetvalue(res, r, 1);
            t->documents = atoll(PQgetvalue(res, r, 2));
            t->share = atof(PQgetvalue(res, r, 3));
            t->terms = &out->terms[r];
        }
        if (PQgetisnull(res, r, 4))
            continue;
        t->terms[t->n_terms].term = PQgetvalue(res, r, 4);
        t->terms[t->n_terms].display = PQgetvalue(res, r, 5);
        t->terms[t->n_terms].weight = atof(PQgetvalue(res, r, 6));
        t->n_terms++;
    }
    return 0;
}

void topic_list_free(topic_list *l)
{
    PQclear(l->res);
    free(l->topics);
    free(l->terms);
    memset(l, 0, sizeof(*l));
}

const topic_info *topic_list_find(const topic_list *l, int topic)
{
    for (int i = 0; i < l->n; i++)
        if (l->topics[i].topic == topic)
            return &l->topics[i];
    return NULL;
}

void topic_write_json_fields(FILE *f, const topic_info *t)
{
    fprintf(f, "\"terms\": [");
    for (int i = 0; i < t->n_terms; i++) {
        fprintf(f, "%s{\"term\": ", i ? ", " : "");
        tf_json_write_cstring(f, t->terms[i].term);
        fprintf(f, ", \"display\": ");
        tf_json_write_cstring(f, t->terms[i].display);
        fprintf(f, ", \"weight\": %.6g}", t->terms[i].weight);
    }
    fprintf(f, "], \"label\": ");
    if (t->label)
        tf_json_write_cstring(f, t->label);
    else
        fprintf(f, "null");
    fprintf(f, ", \"documents\": %lld, \"share\": %.4f", t->documents, t->share);
}

void topic_write_heading(FILE *f, const topic_info *t)
{
    fprintf(f, "topic %2d", t->topic);
    if (t->label)
        fprintf(f, "  \"%s\"", t->label);
    fprintf(f, "  (%lld doc%s, %.1f %%)", t->documents, t->documents == 1 ? "" : "s",
            100.0 * t->share);
}

void topic_write_terms(FILE *f, const topic_info *t, int with_weights)
{
    for (int i = 0; i < t->n_terms; i++) {
        fprintf(f, "%s%s", i ? " " : "", t->terms[i].display);
        if (with_weights)
            fprintf(f, " (%.3f)", t->terms[i].weight);
    }
}
