/*
 * refit.c - `topicflow refit`: the batch path. Fits NMF over every live document, installs
 * it as a new model version (a new epoch) with topic ids matched to the previous version,
 * then re-folds every document into it. Workers keep running meanwhile: the refit holds the
 * model lock only against refreshes, documents they change during the fit are re-folded
 * too, and the statistics stay exact (see common/model_update.h).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "base/lifecycle.h"
#include "model/update.h"
#include "model/vocab_store.h"
#include "pg/migrate.h"
#include "pg/pg.h"

typedef struct refit_config {
    const char *pg_url, *log_level, *log_format;
    long k, max_iter, threads, chunk;
    double tol;
    long seed;
    tf_vocabulary_rule vocabulary;
} refit_config;

static const tf_option refit_options[] = {
    TF_OPTIONS_PG(refit_config), TF_OPTIONS_LOG(refit_config),
    {"k", "TOPICFLOW_TOPICS", TF_OPT_INT, "0",
     "topics (0: as many as the current model, else 20); at most one per 10 live documents",
     offsetof(refit_config, k), 0, 1000},
    {"max-iter", NULL, TF_OPT_INT, "200", "iteration cap", offsetof(refit_config, max_iter), 1, 100000},
    {"tol", NULL, TF_OPT_DOUBLE, "1e-4", "stop when one iteration improves the error by less (relative; 0: never)",
     offsetof(refit_config, tol), 0, 1},
    {"seed", NULL, TF_OPT_INT, "42", "seed of the initialisation", offsetof(refit_config, seed), 0, 1e18},
    {"threads", NULL, TF_OPT_INT, "0", "threads (0: one per core)", offsetof(refit_config, threads), 0, 256},
    {"chunk", NULL, TF_OPT_INT, "2000", "documents re-folded per transaction", offsetof(refit_config, chunk), 1, 1e6},
    TF_OPTIONS_VOCABULARY(refit_config, vocabulary),
};

typedef struct progress {
    int tty;
    double start;
    int last_decile;
} progress;


/* A bar with an ETA on a terminal; a line per tenth otherwise (logs stay readable). */
static int on_progress(void *ctx, int iter, int max_iter, double error)
{
    progress *p = ctx;
    double elapsed = tf_now() - p->start, frac = max_iter ? (double)iter / max_iter : 1;
    double eta = iter > 0 ? elapsed / iter * (max_iter - iter) : 0;
    int filled = (int)(frac * 30);

    if (p->tty) {
        char bar[31];
        memset(bar, '#', (size_t)filled);
        memset(bar + filled, '.', (size_t)(30 - filled));
        bar[30] = '\0';
        fprintf(stderr, "\rfit [%s] %4d/%d  error %.6g  eta %4.0fs ", bar, iter, max_iter, error, eta);
    } else if ((int)(frac * 10) > p->last_decile || iter == 0) {
        p->last_decile = (int)(frac * 10);
        fprintf(stderr, "fit iteration %d/%d error %.6g eta_s %.0f\n", iter, max_iter, error, eta);
    }
    return 0;
}

static int current_k(PGconn *c, long *k, tf_err *err)
{
    PGresult *res = PQexec(c, "select k from topicflow.model order by version desc limit 1");

    if (tf_pg_check(c, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    *k = PQntuples(res) ? atol(PQgetvalue(res, 0, 0)) : 20;
    PQclear(res);
    return 0;
}

/* Live documents, and the rows of every tracked table (format(%I) over the catalog). */
static const char counts_sql[] =
    "select (select count(*) from topicflow.documents where not deleted),"
    "       coalesce((select sum((xpath('/row/n/text()', query_to_xml(format("
    "                   'select count(*) as n from %I.%I', n.nspname, c.relname),"
    "                   false, true, '')))[1]::text::bigint)"
    "          from topicflow.tracked_tables t"
    "          join pg_class c on c.oid = to_regclass(t.source)"
    "          join pg_namespace n on n.oid = c.relnamespace), 0)";

/* A fit of k topics over fewer than this many documents a topic mostly fits noise, and
 * takes long: --k beyond docs / REFIT_DOCS_PER_TOPIC is refused before any work. */
#define REFIT_DOCS_PER_TOPIC 10

/* CLI_CONTINUE when there is something to fit with k topics, else the exit status after
 * saying why: no live document yet (and how many rows wait for a worker), or k too large. */
static int check_fit_size(PGconn *c, long k, int k_given)
{
    PGresult *res = PQexec(c, counts_sql);
    long long docs, rows, max_k;
    tf_err err;

    if (tf_pg_check(c, res, PGRES_TUPLES_OK, &err) < 0)
        return cli_error("refit", CLI_FAIL, "%s", err.msg);
    docs = atoll(PQgetvalue(res, 0, 0));
    rows = atoll(PQgetvalue(res, 0, 1));
    PQclear(res);
    if (docs == 0 && rows == 0)
        return cli_error("refit", CLI_FAIL, "no live documents to fit: the tracked tables hold no rows");
    if (docs == 0)
        return cli_error("refit", CLI_FAIL,
                         "no live documents to fit: the tracked tables hold %lld %s that no worker "
                         "has processed yet (is topicflow-worker running?)",
                         rows, rows == 1 ? "row" : "rows");
    max_k = docs / REFIT_DOCS_PER_TOPIC > 0 ? docs / REFIT_DOCS_PER_TOPIC : 1;
    if (k_given && k > max_k)
        return cli_error("refit", CLI_USAGE,
                         "--k %ld is more topics than %lld live %s support (at most %lld: %d "
                         "documents a topic)",
                         k, docs, docs == 1 ? "document" : "documents", max_k, REFIT_DOCS_PER_TOPIC);
    return CLI_CONTINUE;
}

static int refold_all(PGconn *c, long chunk, int tty, tf_err *err)
{
    tf_model m;
    tf_vocab *v = NULL;
    long long stale, done = 0;
    int rc = -1;

    memset(&m, 0, sizeof(m));
    for (;;) {
        int n, r;
        if (tf_model_load(c, 0, &m, err) < 0 || !(v = tf_vocab_load(c, err)))
            goto out;
        if (tf_model_stale_count(c, m.epoch, &stale, err) < 0)
            goto out;
        while (stale > 0) {
            r = tf_model_refold(c, &m, v, "topicflow refit", (int)chunk, &n, err);
            if (r < 0)
                goto out;
            if (r == 1)
                break; /* someone installed a newer epoch meanwhile: follow it */
            if (n == 0) {
                usleep(100000); /* the rest is locked by workers updating it right now */
                if (tf_model_stale_count(c, m.epoch, &stale, err) < 0)
                    goto out;
                continue;
            }
            done += n;
            stale -= n;
            if (tty)
                fprintf(stderr, "\rre-folded %lld document%s, %lld to go   ", done, done == 1 ? "" : "s",
                        stale > 0 ? stale : 0);
        }
        if (stale <= 0)
            break;
        tf_vocab_free(v);
        v = NULL;
    }
    if (tty)
        fprintf(stderr, "\n");
    printf("re-folded %lld document%s into version %lld\n", done, done == 1 ? "" : "s",
           (long long)m.version);
    rc = 0;
out:
    tf_model_clear(&m);
    tf_vocab_free(v);
    return rc;
}

int cli_refit(int argc, char **argv)
{
    refit_config cfg;
    tf_update_opts opts = tf_update_defaults();
    tf_refit_result res;
    progress prog = {isatty(STDERR_FILENO), 0, -1};
    PGconn *c;
    tf_err err;
    int first, status, k_given;

    status = cli_parse("refit", "topicflow refit [--k K] [--max-iter N] [--tol T] [--seed S]",
                       "Batch NMF over every live document, installed as a new model version with "
                       "topic ids\nmatched to the previous one, then every document re-folded. "
                       "Safe while workers run.\nWithout live documents it stops and says how many "
                       "rows of the tracked tables wait for a\nworker; a --k above one topic per "
                       "10 live documents is refused (exit 2) before any work.",
                       refit_options, sizeof(refit_options) / sizeof(refit_options[0]), &cfg,
                       argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    status = CLI_OK;
    if (first < argc)
        return cli_error("refit", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    c = tf_migrate_connect(cfg.pg_url, "topicflow-refit", &err);
    if (!c)
        return cli_error("refit", CLI_FAIL, "%s", err.msg);
    k_given = cfg.k != 0;
    if (!cfg.k && current_k(c, &cfg.k, &err) < 0) {
        status = cli_error("refit", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    status = check_fit_size(c, cfg.k, k_given);
    if (status != CLI_CONTINUE)
        goto done;
    status = CLI_OK;
    if (!cfg.threads)
        cfg.threads = sysconf(_SC_NPROCESSORS_ONLN);
    openblas_set_num_threads((int)cfg.threads);
    opts.k = (int)cfg.k;
    opts.max_iter = (int)cfg.max_iter;
    opts.tol = cfg.tol;
    opts.min_df = (int)cfg.vocabulary.min_df;
    opts.max_df = cfg.vocabulary.max_df;
    opts.seed = (uint64_t)cfg.seed;
    opts.threads = (int)cfg.threads;
    opts.progress = on_progress;
    opts.progress_ctx = &prog;
    prog.start = tf_now();
    if (tf_model_refit(c, &opts, &res, &err) != 0) {
        if (prog.tty)
            fprintf(stderr, "\n");
        status = cli_error("refit", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    if (prog.tty)
        fprintf(stderr, "\n");
    printf("model version %lld: k=%d, %lld document%s, %d term%s (%d in the model's vocabulary),"
           " %d iteration%s in %.1fs, relative error %.4f",
           (long long)res.version, res.k, (long long)res.n_docs, res.n_docs == 1 ? "" : "s",
           res.n_terms, res.n_terms == 1 ? "" : "s", res.kept_terms, res.fit.iterations,
           res.fit.iterations == 1 ? "" : "s", res.fit.seconds_init + res.fit.seconds_iter,
           res.fit.x_norm > 0 ? res.fit.error / res.fit.x_norm : 0.0);
    if (res.k < cfg.k)
        printf(" (asked for k=%ld: the data allows only %d topics now)", cfg.k, res.k);
    if (res.mean_match >= 0)
        printf(", topics matched to the previous version (mean cosine %.3f)", res.mean_match);
    if (res.language_strength > 0)
        printf(", terms weighed by how evenly the two languages use them (strength %.2f)",
               res.language_strength);
    printf("\n");
    if (refold_all(c, cfg.chunk, prog.tty, &err) < 0)
        status = cli_error("refit", CLI_FAIL, "re-folding: %s", err.msg);
done:
    PQfinish(c);
    return status;
}
