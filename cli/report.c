/*
 * report.c - `topicflow report --html FILE`: one self-contained HTML file (inline CSS, no
 * script, nothing fetched when viewed) with, per topic, its label, size and a bar chart of
 * its heaviest terms (display forms, dir="auto" so Arabic runs right to left); the topics'
 * prevalence over time (documents by dominant topic, bucketed by event time: the outbox
 * row's created_at through documents.event_id, or documents.updated_at once retention
 * removed that row); and how topics moved at each refit (the cosine of each topic with the
 * previous model's topic it was matched to, model_epochs.topic_match). Every value from
 * the database goes through html_text (a label may hold anything, <script> included).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "options.h"
#include "topic_read.h"

typedef struct report_config {
    const char *pg_url, *log_level, *log_format;
    const char *html;
    long top, buckets;
} report_config;

static const tf_option report_options[] = {
    TF_OPTIONS_PG(report_config), TF_OPTIONS_LOG(report_config),
    {"html", NULL, TF_OPT_STRING, NULL, "the HTML file to write (required; - for stdout)",
     offsetof(report_config, html), 0, 0},
    {"top", NULL, TF_OPT_INT, "10", "terms per topic", offsetof(report_config, top), 1, 100},
    {"buckets", NULL, TF_OPT_INT, "12", "time buckets of the prevalence table",
     offsetof(report_config, buckets), 1, 100},
};

/* Text as HTML (element content and attribute values alike). */
static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;background:#fff}"
    "h1{margin-bottom:.2em}.meta{color:#666}"
    ".topics{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1.2em}"
    ".topic{border:1px solid #ddd;border-radius:6px;padding:.8em 1em}"
    ".topic h2{font-size:1.1em;margin:0 0 .3em}.size{color:#555;margin:0 0 .6em}"
    ".row{display:grid;grid-template-columns:9em 1fr 3.5em;align-items:center;gap:.5em;"
    "margin:2px 0}.term{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}"
    ".track{background:#eef2f7;height:14px;border-radius:3px}"
    ".bar{background:#3b6fb6;height:14px;border-radius:3px}.w{color:#666;font-size:.85em;"
    "text-align:right}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "td,th{border:1px solid #ddd;padding:3px 6px;text-align:right;font-size:.9em}"
    "th{background:#f5f5f5}td.name,th.name{text-align:left}";

static void write_topic(FILE *f, const topic_info *t)
{
    double max = t->n_terms ? t->terms[0].weight : 0;

    fprintf(f, "<section class=\"topic\" id=\"topic-%d\"><h2>Topic %d", t->topic, t->topic);
    if (t->label) {
        fputs(" &middot; <span class=\"label\" dir=\"auto\">", f);
        html_text(f, t->label);
        fputs("</span>", f);
    }
    fprintf(f, "</h2><p class=\"size\">%lld document%s (%.1f %%) whose dominant topic it is</p>\n",
            t->documents, t->documents == 1 ? "" : "s", 100.0 * t->share);
    for (int i = 0; i < t->n_terms; i++) {
        double pct = max > 0 ? 100.0 * t->terms[i].weight / max : 0;
        fputs("<div class=\"row\"><span class=\"term\" dir=\"auto\" title=\"stem: ", f);
        html_text(f, t->terms[i].term);
        fputs("\">", f);
        html_text(f, t->terms[i].display);
        fprintf(f, "</span><div class=\"track\"><div class=\"bar\" style=\"width:%.1f%%\"></div>"
                   "</div><span class=\"w\">%.3f</span></div>\n", pct, t->terms[i].weight);
    }
    fputs("</section>\n", f);
}

static void topic_cell_name(FILE *f, const topic_list *l, int topic)
{
    const topic_info *t = topic_list_find(l, topic);

    fprintf(f, "<td class=\"name\">%d", topic);
    if (t && t->label) {
        fputs(" <span dir=\"auto\">", f);
        html_text(f, t->label);
        fputs("</span>", f);
    }
    fputs("</td>", f);
}

/* Documents by dominant topic per time bucket; cells shaded by the topic's share of the
 * bucket. */
static int write_prevalence(FILE *f, PGconn *c, const topic_list *l, long buckets, int *status)
{
    char nb[24];
    const char *params[1] = {nb};
    PGresult *res;
    long long *count = NULL, *total = NULL;
    int rows;

    snprintf(nb, sizeof(nb), "%ld", buckets);
    res = topic_query(c, "report",
        "with ev as ("
        "  select coalesce(o.created_at, d.updated_at) as at, d.topic"
        "    from topicflow.dominant_topics d left join topicflow.outbox o on o.id = d.event_id"
        "   where d.topic is not null),"
        " span as (select min(at) as lo, greatest(extract(epoch from max(at) - min(at)), 1e-6)"
        "          / $1::int as width from ev)"
        " select least(floor(extract(epoch from ev.at - span.lo) / span.width)::int, $1::int - 1),"
        "        ev.topic, count(*),"
        "        to_char(min(span.lo) at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), min(span.width)"
        "   from ev, span group by 1, 2 order by 1, 2",
        1, params, PGRES_TUPLES_OK, status);
    if (!res)
        return -1;
    rows = PQntuples(res);
    fputs("<h2>Prevalence over time</h2>\n", f);
    if (rows == 0 || l->n == 0) {
        fputs("<p>No document has a topic mixture yet.</p>\n", f);
        PQclear(res);
        return 0;
    }
    count = calloc((size_t)buckets * (size_t)l->n, sizeof(*count));
    total = calloc((size_t)buckets, sizeof(*total));
    if (!count || !total) {
        free(count);
        free(total);
        PQclear(res);
        *status = cli_error("report", CLI_FAIL, "out of memory");
        return -1;
    }
    for (int r = 0; r < rows; r++) {
        long b = atol(PQgetvalue(res, r, 0));
        int t = atoi(PQgetvalue(res, r, 1));
        long long n = atoll(PQgetvalue(res, r, 2));
        if (b < 0 || b >= buckets)
            continue;
        total[b] += n;
        for (int i = 0; i < l->n; i++)
            if (l->topics[i].topic == t)
                count[(size_t)b * (size_t)l->n + (size_t)i] += n;
    }
    fputs("<p class=\"meta\">Documents by dominant topic, in ", f);
    fprintf(f, "%ld equal spans of event time from ", buckets);
    html_text(f, PQgetvalue(res, 0, 3));
    fprintf(f, " UTC, each %.3g s long. Event time: when the change was written to the outbox "
               "(topicflow.outbox.created_at of the document's event), or when a worker stored "
               "it (documents.updated_at) once retention removed that outbox row. A cell's shade "
               "is the topic's share of its span.</p>\n<table><tr><th class=\"name\">topic</th>",
            atof(PQgetvalue(res, 0, 4)));
    for (long b = 0; b < buckets; b++)
        fprintf(f, "<th>%ld</th>", b + 1);
    fputs("</tr>\n", f);
    for (int i = 0; i < l->n; i++) {
        fputs("<tr>", f);
        topic_cell_name(f, l, l->topics[i].topic);
        for (long b = 0; b < buckets; b++) {
            long long n = count[(size_t)b * (size_t)l->n + (size_t)i];
            double share = total[b] ? (double)n / (double)total[b] : 0;
            fprintf(f, "<td style=\"background:rgba(59,111,182,%.2f)\">%lld</td>", share, n);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
    free(count);
    free(total);
    PQclear(res);
    return 0;
}

/* At each refit, the cosine of each topic with its match in the previous model. */
static int write_moves(FILE *f, PGconn *c, const topic_list *l, int *status)
{
    PGresult *res = topic_query(c, "report",
        "select epoch, to_char(fitted_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'), reason, k,"
        " mean_match, coalesce(array_to_string(topic_match, ' ', 'new'), '')"
        " from (select * from topicflow.model_epochs order by epoch desc limit 20) e"
        " order by epoch",
        0, NULL, PGRES_TUPLES_OK, status);

    if (!res)
        return -1;
    fputs("<h2>How topics moved between model versions</h2>\n<p class=\"meta\">At each refit the "
          "new topics are matched to the previous model's (Hungarian assignment on the cosine "
          "of their term weights) and keep their ids; a cell is the cosine of a topic with the "
          "topic it replaced (1 = unchanged, new = no predecessor). Refreshes between refits "
          "update the same topics in place.</p>\n<table><tr><th>model version</th>"
          "<th class=\"name\">fitted (UTC)</th><th class=\"name\">reason</th><th>k</th>"
          "<th>mean</th>", f);
    for (int i = 0; i < l->n; i++)
        fprintf(f, "<th>%d</th>", l->topics[i].topic);
    fputs("</tr>\n", f);
    for (int r = 0; r < PQntuples(res); r++) {
        char *cells = strdup(PQgetvalue(res, r, 5)), *save = NULL, *cell;
        int col = 0;
        fputs("<tr><td>", f);
        html_text(f, PQgetvalue(res, r, 0));
        fputs("</td><td class=\"name\">", f);
        html_text(f, PQgetvalue(res, r, 1));
        fputs("</td><td class=\"name\">", f);
        html_text(f, PQgetvalue(res, r, 2));
        fputs("</td><td>", f);
        html_text(f, PQgetvalue(res, r, 3));
        if (PQgetisnull(res, r, 4))
            fputs("</td><td>first fit</td>", f);
        else
            fprintf(f, "</td><td>%.3f</td>", atof(PQgetvalue(res, r, 4)));
        for (cell = cells ? strtok_r(cells, " ", &save) : NULL; cell && col < l->n;
             cell = strtok_r(NULL, " ", &save), col++) {
            if (strcmp(cell, "new") == 0)
                fputs("<td>new</td>", f);
            else
                fprintf(f, "<td style=\"background:rgba(59,111,182,%.2f)\">%.3f</td>",
                        atof(cell) * 0.6, atof(cell));
        }
        for (; col < l->n; col++)
            fputs("<td></td>", f);
        fputs("</tr>\n", f);
        free(cells);
    }
    fputs("</table>\n", f);
    PQclear(res);
    return 0;
}

static int write_report(FILE *f, PGconn *c, const report_config *cfg, const topic_list *l,
                        int *status)
{
    PGresult *m = topic_query(c, "report",
        "select version, k, n_docs, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
        " to_char(now() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        " from topicflow.current_model",
        0, NULL, PGRES_TUPLES_OK, status);
    int rc = -1;

    if (!m)
        return -1;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<title>topicflow report</title><style>%s</style></head><body>\n"
               "<h1>topicflow topics</h1>\n", style);
    if (PQntuples(m) == 0) {
        fputs("<p>No model yet: the workers fit the first one once enough documents arrived "
              "(or run <code>topicflow refit</code>).</p>\n", f);
    } else {
        fputs("<p class=\"meta\">Model version ", f);
        html_text(f, PQgetvalue(m, 0, 0));
        fputs(" (", f);
        html_text(f, PQgetvalue(m, 0, 1));
        fputs(" topics, made ", f);
        html_text(f, PQgetvalue(m, 0, 3));
        fputs(" UTC from ", f);
        html_text(f, PQgetvalue(m, 0, 2));
        fputs(" documents); report written ", f);
        html_text(f, PQgetvalue(m, 0, 4));
        fputs(" UTC. Terms are shown by their most frequent written form; hover for the "
              "stem.</p>\n<div class=\"topics\">\n", f);
        for (int i = 0; i < l->n; i++)
            write_topic(f, &l->topics[i]);
        fputs("</div>\n", f);
        if (write_prevalence(f, c, l, cfg->buckets, status) < 0 || write_moves(f, c, l, status) < 0)
            goto done;
    }
    fputs("</body></html>\n", f);
    rc = 0;
done:
    PQclear(m);
    return rc;
}

int cli_report(int argc, char **argv)
{
    report_config cfg;
    topic_list list;
    PGconn *c;
    FILE *f = NULL;
    tf_err err;
    long size;
    int first, status;

    memset(&list, 0, sizeof(list));
    status = cli_parse("report", "topicflow report --html FILE [--top N] [--buckets N]",
                       "Writes one self-contained HTML file (no script, nothing fetched when "
                       "viewed): per topic its label, size and a bar chart of its heaviest terms; "
                       "the topics' prevalence over time; how topics moved at each refit.",
                       report_options, N_OF(report_options), &cfg,
                       argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first < argc)
        return cli_error("report", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    if (!cfg.html || !cfg.html[0])
        return cli_error("report", CLI_USAGE, "--html FILE is required");
    c = topic_connect("report", cfg.pg_url, &status);
    if (!c)
        return status;
    if (topic_list_load(c, (int)cfg.top, -1, &list, &err) < 0) {
        status = cli_error("report", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    f = strcmp(cfg.html, "-") == 0 ? stdout : fopen(cfg.html, "w");
    if (!f) {
        status = cli_error("report", CLI_FAIL, "cannot write %s: %s", cfg.html, strerror(errno));
        goto done;
    }
    if (write_report(f, c, &cfg, &list, &status) < 0)
        goto done;
    size = ftell(f);
    if (f != stdout) {
        int rc = fclose(f);
        f = NULL;
        if (rc != 0) {
            status = cli_error("report", CLI_FAIL, "cannot write %s: %s", cfg.html, strerror(errno));
            goto done;
        }
        printf("wrote %s (%d topics, %ld bytes)\n", cfg.html, list.n, size);
    }
done:
    if (f && f != stdout)
        fclose(f);
    topic_list_free(&list);
    PQfinish(c);
    return status;
}
