/*
 * maintenance.c - the model-upkeep thread. It shares with the consuming thread two atomics
 * (stop, batches) and, under `lock`, the prepared model hand-off; everything else it loads
 * from PostgreSQL itself, on its own connection.
 * Each pass does a bounded amount of work and then sleeps, so stopping is prompt.
 */
#include "maintenance.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/lifecycle.h"
#include "base/log.h"
#include "model/measure.h"
#include "model/vocab_store.h"
#include "pg/migrate.h"
#include "pg/pg.h"

struct maintenance {
    maintenance_opts opts;
    pthread_t thread;
    atomic_int stop;
    atomic_long batches;
    _Atomic double last_batch_at; /* tf_now() of the last committed batch (0: none yet) */
    PGconn *pg;
    tf_model model;
    tf_vocab *vocab;
    double next_refresh;
    double next_policy;      /* when auto_refit looks at the corpus again */
    double last_measure;     /* tf_now() of the last quality measure (or of the start) */
    double next_quality;     /* when the quality gauges are read again */
    int64_t measured;        /* the version it measured */
    char settings[256];      /* the policy's settings, for topicflow.model_policy */
    char next[320];          /* what the policy will do next, as last published */
    double next_published;   /* when it was */
    pthread_mutex_t lock;    /* guards the prepared pair below */
    tf_model prepared;       /* a copy for the consuming thread, version 0 when none */
    tf_vocab *prepared_vocab;
};


static void nap(maintenance *m, double s)
{
    for (double end = tf_now() + s; !atomic_load(&m->stop) && tf_now() < end;) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Loads a second copy of the current model for the consuming thread (which mutates its
 * vocabulary, so the two threads cannot share one). */
static int prepare_for_consumer(maintenance *m, tf_err *err)
{
    tf_model copy;
    tf_vocab *v;

    memset(&copy, 0, sizeof(copy));
    if (tf_model_load(m->pg, 0, &copy, err) < 0)
        return -1;
    v = tf_vocab_load(m->pg, err);
    if (!v) {
        tf_model_clear(&copy);
        return -1;
    }
    pthread_mutex_lock(&m->lock);
    tf_model_clear(&m->prepared);
    tf_vocab_free(m->prepared_vocab);
    m->prepared = copy;
    m->prepared_vocab = v;
    pthread_mutex_unlock(&m->lock);
    return 0;
}

int maintenance_take_model(void *ctx, int64_t version, tf_model *model, tf_vocab **vocab)
{
    maintenance *m = ctx;
    int taken = 0;

    pthread_mutex_lock(&m->lock);
    if (m->prepared.version == version && m->prepared_vocab) {
        *model = m->prepared;
        *vocab = m->prepared_vocab;
        memset(&m->prepared, 0, sizeof(m->prepared));
        m->prepared_vocab = NULL;
        taken = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return taken;
}

/* Brings the thread's copy of the model and vocabulary to the current version. */
static int sync_model(maintenance *m, tf_err *err)
{
    int64_t version, epoch;

    if (tf_model_head(m->pg, &version, &epoch, err) < 0)
        return -1;
    if (m->vocab && version == m->model.version)
        return 0;
    if (version && prepare_for_consumer(m, err) < 0)
        return -1;
    if (version) {
        if (tf_model_load(m->pg, 0, &m->model, err) < 0)
            return -1;
    } else {
        tf_model_clear(&m->model);
    }
    tf_vocab_free(m->vocab);
    m->vocab = tf_vocab_load(m->pg, err);
    /* prepared for the consuming thread, which swaps it in before its next batch */
    tf_gauge_set(m->opts.metrics->model_version, (double)m->model.version);
    return m->vocab ? 0 : -1;
}

static void log_refit(const char *what, const tf_update_opts *u, const tf_refit_result *res)
{
    log_info(what, "reason=%s version=%lld docs=%lld terms=%d model_terms=%d k=%d k_asked=%d"
             " relative_error=%.4f coherence=%.3f language_strength=%.3f seconds=%.1f",
             tf_log_q(u->reason), (long long)res->version, (long long)res->n_docs, res->n_terms,
             res->kept_terms, res->k, u->k,
             res->fit.x_norm > 0 ? res->fit.error / res->fit.x_norm : 0.0, res->coherence,
             res->language_strength, res->fit.seconds_init + res->fit.seconds_iter);
    if (res->k < u->k)
        log_warn("fewer topics than asked: the data allows no more yet", "k=%d k_asked=%d docs=%lld"
                 " model_terms=%d", res->k, u->k, (long long)res->n_docs, res->kept_terms);
}

/* topicflow.model_policy: this worker's settings and what its policy will do next, written
 * when the sentence changes (and once a minute, so `status` sees it is current). */
static int publish_policy(maintenance *m, const char *next, tf_err *err)
{
    const char *params[3] = {m->opts.name, m->settings, next};
    PGresult *r;

    if (strcmp(next, m->next) == 0 && tf_now() < m->next_published + 60)
        return 0;
    r = PQexecParams(m->pg,
        "insert into topicflow.model_policy (worker, settings, next) values ($1, $2, $3)"
        " on conflict (worker) do update set settings = excluded.settings,"
        " next = excluded.next, updated_at = now()",
        3, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(m->pg, r, PGRES_COMMAND_OK, err) < 0)
        return -1;
    PQclear(r);
    snprintf(m->next, sizeof(m->next), "%s", next);
    m->next_published = tf_now();
    return 0;
}

static void describe_settings(maintenance *m)
{
    const maintenance_opts *o = &m->opts;

    if (o->refit_auto)
        snprintf(m->settings, sizeof(m->settings),
                 "k %d; refit when documents or model terms grow x%g, or after %gs quiet once"
                 " grown 10%%, at most every %gs; vocabulary min_df %d max_df %g; refresh every"
                 " %ld deltas or %gs quiet", o->update.k, o->refit_growth, o->refit_quiet_s,
                 o->refit_min_interval_s, o->update.min_df, o->update.max_df, o->refresh_every,
                 o->refresh_interval_s);
    else
        snprintf(m->settings, sizeof(m->settings),
                 "k %d; automatic refits off (topicflow refit); vocabulary min_df %d max_df %g;"
                 " refresh every %ld deltas or %gs quiet", o->update.k, o->update.min_df,
                 o->update.max_df, o->refresh_every, o->refresh_interval_s);
}

static int first_fit(maintenance *m, tf_err *err)
{
    tf_refit_result res;
    tf_update_opts u;
    PGresult *r = PQexec(m->pg, "select count(*) from topicflow.documents where not deleted");
    long long live = 0;
    int rc;

    if (tf_pg_check(m->pg, r, PGRES_TUPLES_OK, err) < 0)
        return -1;
    tf_pg_get_int64(r, 0, 0, &live);
    PQclear(r);
    if (live < m->opts.min_docs) {
        char next[160];
        snprintf(next, sizeof(next), "first fit once %ld live documents exist (now %lld)",
                 m->opts.min_docs, live);
        return publish_policy(m, next, err);
    }
    u = m->opts.update;
    u.reason = "first";
    rc = tf_model_refit(m->pg, &u, &res, err);
    if (rc < 0)
        return tf_err_prefix(err, "first fit");
    if (rc == 0)
        log_refit("first model fitted", &u, &res);
    return 0;
}

static int refold(maintenance *m, tf_err *err)
{
    long long stale;

    if (tf_model_stale_count(m->pg, m->model.epoch, &stale, err) < 0)
        return -1;
    while (stale > 0 && !atomic_load(&m->stop)) {
        int n, rc = tf_model_refold(m->pg, &m->model, m->vocab, m->opts.name,
                                    (int)m->opts.refold_chunk, &n, err);
        if (rc < 0)
            return -1;
        if (rc == 1 || n == 0)
            break; /* a newer epoch, or the rest is locked by workers right now */
        stale -= n;
        log_debug("re-folded documents", "docs=%d model_version=%lld", n, (long long)m->model.version);
    }
    return 0;
}

/* The surface forms the batches appended, into the per-term counts the topics are shown
 * by (sql/008). One worker at a time; the others skip (the function's advisory lock). */
static int fold_forms(maintenance *m, tf_err *err)
{
    PGresult *res = PQexec(m->pg, "select topicflow.fold_term_forms()");

    if (tf_pg_check(m->pg, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (PQntuples(res) == 1 && atoll(PQgetvalue(res, 0, 0)) > 0)
        log_debug("term forms folded", "pairs=%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* Seconds since this worker's last committed batch (a large number before the first). */
static double quiet_for(maintenance *m)
{
    double last = atomic_load(&m->last_batch_at);

    return last > 0 ? tf_now() - last : 1e9;
}

/* While events flow: a refresh once refresh_every deltas wait. Once the stream is quiet for
 * a refresh interval: whatever deltas wait, so the model converges after a burst without
 * new traffic. */
static int refresh(maintenance *m, tf_err *err)
{
    int64_t version;
    long min_deltas = m->opts.refresh_every;
    int rc;

    if (tf_now() < m->next_refresh)
        return 0;
    if (quiet_for(m) >= m->opts.refresh_interval_s)
        min_deltas = 1; /* quiet: fold whatever waits, so the model converges after a burst */
    else if (m->model.version && atomic_load(&m->batches) == 0)
        return 0;
    m->next_refresh = tf_now() + m->opts.refresh_interval_s;
    rc = tf_model_refresh(m->pg, &m->opts.update, min_deltas, &version, err);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        atomic_store(&m->batches, 0);
        if (version) {
            log_info("model refreshed", "version=%lld", (long long)version);
            /* Prepare it for this worker's consuming thread before it goes looking. */
            if (sync_model(m, err) < 0)
                return -1;
        }
    }
    return 0;
}

/*
 * The automatic refit policy: the stream path for fast updates, the batch path for accuracy,
 * chosen here without an operator. A refit runs (one at a time across workers, under the
 * model lock, on this thread: consumption never pauses) when
 *   k:      the epoch fitted fewer topics than asked and the corpus now allows more;
 *   growth: live documents or model terms grew by refit_growth since the epoch's fit
 *           (the first fit saw a few hundred documents; online updates alone cannot
 *           introduce the subjects that arrive later);
 *   quiet:  the stream has been quiet for refit_quiet_s and the corpus grew by 10 % since
 *           the fit, so a burst ends with a model fitted on all of it;
 * and at least refit_min_interval_s passed since the last refit and no refold is pending.
 */
#define POLICY_EVERY_S 3.0

static int auto_refit(maintenance *m, tf_err *err)
{
    char epoch_s[32], next[320];
    const char *params[1] = {epoch_s};
    long long k_fit, fit_docs, kept_then, live, kept_now, stale;
    double since_fit, wait_s, quiet;
    const char *reason = NULL;
    tf_update_opts u;
    tf_refit_result res;
    PGresult *r;
    int rc;

    if (!m->model.version || tf_now() < m->next_policy)
        return 0;
    if (!m->opts.refit_auto)
        return publish_policy(m, "nothing by itself: automatic refits are off", err);
    /* The look costs a count over the vocabulary: every few seconds is soon enough for a
     * policy whose own interval is tens of seconds. Live documents come from the model the
     * thread already holds (each refresh carries the count forward), not from a scan. */
    m->next_policy = tf_now() + POLICY_EVERY_S;
    live = m->model.n_docs;
    snprintf(epoch_s, sizeof(epoch_s), "%lld", (long long)m->model.epoch);
    /* Model terms now: the refit's own rule on the document frequencies of the version
     * held (min_df and max_df both: counting min_df alone would see growth that a refit
     * then prunes away, and re-fit again and again). */
    kept_now = tf_model_kept_terms(m->vocab, live, &m->opts.update, m->opts.update.k, err);
    if (kept_now < 0)
        return -1;
    r = PQexecParams(m->pg,
        "select e.k, e.fit_docs, e.kept_terms, extract(epoch from now() - e.fitted_at)::float8"
        " from topicflow.model_epochs e where e.epoch = $1::bigint",
        1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(m->pg, r, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return publish_policy(m, "nothing: the current epoch predates its record (migration"
                                 " 005); topicflow refit starts one", err);
    }
    tf_pg_get_int64(r, 0, 0, &k_fit);
    tf_pg_get_int64(r, 0, 1, &fit_docs);
    tf_pg_get_int64(r, 0, 2, &kept_then);
    since_fit = strtod(PQgetvalue(r, 0, 3), NULL);
    PQclear(r);
    quiet = quiet_for(m);
    if (k_fit < m->opts.update.k && live > k_fit && kept_now > k_fit)
        reason = "k";
    else if (live >= m->opts.refit_growth * (double)fit_docs ||
             kept_now >= m->opts.refit_growth * (double)kept_then)
        reason = "growth";
    else if (quiet >= m->opts.refit_quiet_s &&
             (live > 1.1 * (double)fit_docs || kept_now > 1.1 * (double)kept_then))
        reason = "quiet";
    wait_s = m->opts.refit_min_interval_s - since_fit;
    if (!reason) {
        int n = snprintf(next, sizeof(next),
                         "refit (growth) at %.0f live documents (now %lld) or %.0f model terms"
                         " (now %lld); refit (quiet) after %gs without events once above %.0f"
                         " documents or %.0f terms",
                         ceil(m->opts.refit_growth * (double)fit_docs), live,
                         ceil(m->opts.refit_growth * (double)kept_then), kept_now,
                         m->opts.refit_quiet_s, floor(1.1 * (double)fit_docs),
                         floor(1.1 * (double)kept_then));
        if (k_fit < m->opts.update.k && n > 0 && (size_t)n < sizeof(next))
            snprintf(next + n, sizeof(next) - (size_t)n, "; refit (k) to %d topics once the"
                     " corpus has more than %lld documents and model terms", m->opts.update.k,
                     k_fit);
        return publish_policy(m, next, err);
    }
    if (wait_s > 0) {
        snprintf(next, sizeof(next), "refit (%s) in %.0f s (at most one every %gs)", reason,
                 ceil(wait_s), m->opts.refit_min_interval_s);
        return publish_policy(m, next, err);
    }
    if (tf_model_stale_count(m->pg, m->model.epoch, &stale, err) < 0)
        return -1;
    if (stale > 0) {
        snprintf(next, sizeof(next), "refit (%s) once %lld stale documents are re-folded",
                 reason, stale);
        return publish_policy(m, next, err);
    }
    snprintf(next, sizeof(next), "refit (%s) now, on %lld documents", reason, live);
    if (publish_policy(m, next, err) < 0)
        return -1;
    u = m->opts.update;
    u.initial_only = 0;
    u.try_lock = 1;
    u.reason = reason;
    rc = tf_model_refit(m->pg, &u, &res, err);
    if (rc < 0)
        return tf_err_prefix(err, "automatic refit");
    if (rc == 0) {
        log_refit("automatic refit", &u, &res);
        m->next_policy = 0; /* publish the next step at once */
        return sync_model(m, err);
    }
    return 0;
}

/* The kept model's quality (model/measure.h), once per version: when the stream is quiet
 * for a refresh interval, or under traffic every five measure intervals; never more often
 * than measure_interval_s. */
static int measure(maintenance *m, tf_err *err)
{
    tf_model_quality q;
    double since = tf_now() - m->last_measure;
    int rc;

    if (m->opts.measure_interval_s <= 0 || !m->model.version || m->model.version == m->measured ||
        since < m->opts.measure_interval_s ||
        (quiet_for(m) < m->opts.refresh_interval_s && since < 5 * m->opts.measure_interval_s))
        return 0;
    rc = tf_model_measure(m->pg, m->opts.name, &q, err);
    if (rc < 0)
        return -1;
    m->last_measure = tf_now();
    if (rc == 0) {
        m->measured = q.version;
        log_info("model measured", "version=%lld docs=%lld relative_error=%.4f coherence=%.3f"
                 " seconds=%.1f", (long long)q.version, (long long)q.docs, q.relative_error,
                 q.coherence, q.seconds);
    }
    return 0;
}

/* The quality gauges: the newest measured version, whichever worker measured it. */
#define QUALITY_EVERY_S 5.0

static int sample_quality(maintenance *m, tf_err *err)
{
    tf_model_quality q;
    int rc;

    if (tf_now() < m->next_quality)
        return 0;
    m->next_quality = tf_now() + QUALITY_EVERY_S;
    rc = tf_model_quality_newest(m->pg, &q, err);
    if (rc == 0) {
        tf_gauge_set(m->opts.metrics->measured_version, (double)q.version);
        tf_gauge_set(m->opts.metrics->relative_error, q.relative_error);
        tf_gauge_set(m->opts.metrics->coherence, q.coherence);
    }
    return rc < 0 ? -1 : 0;
}

/* Runs one step; with --trace, a step that took a millisecond or more is written down. */
static int step(maintenance *m, const char *name, int (*fn)(maintenance *, tf_err *), tf_err *err)
{
    double t0 = tf_now(), wall = stage_wall_now();
    int rc = fn(m, err);
    double took = tf_now() - t0;

    if (took >= 0.001)
        stage_trace_upkeep(m->opts.trace, name, wall, took);
    return rc;
}

static void pass(maintenance *m)
{
    tf_err err;

    if (m->pg && PQstatus(m->pg) != CONNECTION_OK) {
        PQfinish(m->pg);
        m->pg = NULL;
    }
    if (!m->pg) {
        m->pg = tf_migrate_connect(m->opts.pg_url, "topicflow-worker-maintenance", &err);
        if (!m->pg)
            return; /* the consuming thread reports the outage (or the missing schema) */
        /* A new connection may reach another database (a restore): read everything again. */
        tf_model_clear(&m->model);
        tf_vocab_free(m->vocab);
        m->vocab = NULL;
        m->measured = 0;
        pthread_mutex_lock(&m->lock);
        tf_model_clear(&m->prepared);
        tf_vocab_free(m->prepared_vocab);
        m->prepared_vocab = NULL;
        pthread_mutex_unlock(&m->lock);
    }
    if (step(m, "sync", sync_model, &err) < 0 ||
        (!m->model.version && step(m, "first_fit", first_fit, &err) < 0) ||
        step(m, "sync", sync_model, &err) < 0 ||
        (m->model.version && step(m, "refold", refold, &err) < 0) ||
        step(m, "refresh", refresh, &err) < 0 || step(m, "policy", auto_refit, &err) < 0 ||
        step(m, "measure", measure, &err) < 0 || step(m, "fold_forms", fold_forms, &err) < 0 ||
        step(m, "quality", sample_quality, &err) < 0)
        log_warn("model maintenance failed (retried later)", "reason=%s", tf_log_q(err.msg));
}

static void *run(void *arg)
{
    maintenance *m = arg;

    while (!atomic_load(&m->stop)) {
        pass(m);
        nap(m, 1.0);
    }
    return NULL;
}

maintenance *maintenance_start(const maintenance_opts *opts, tf_err *err)
{
    maintenance *m = calloc(1, sizeof(*m));

    if (!m) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    m->opts = *opts;
    describe_settings(m);
    atomic_init(&m->stop, 0);
    atomic_init(&m->batches, 0);
    atomic_init(&m->last_batch_at, 0.0);
    /* A start is no reason to measure: the first measure waits its interval (a fresh
     * worker would otherwise read the whole corpus at once, in the middle of the stream). */
    m->last_measure = tf_now();
    pthread_mutex_init(&m->lock, NULL);
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        free(m);
        tf_err_set(err, "cannot start the maintenance thread");
        return NULL;
    }
    return m;
}

void maintenance_note_batch(maintenance *m)
{
    atomic_fetch_add(&m->batches, 1);
    atomic_store(&m->last_batch_at, tf_now());
}

void maintenance_stop(maintenance *m)
{
    if (!m)
        return;
    atomic_store(&m->stop, 1);
    pthread_join(m->thread, NULL);
    if (m->pg)
        PQfinish(m->pg);
    tf_model_clear(&m->model);
    tf_vocab_free(m->vocab);
    tf_model_clear(&m->prepared);
    tf_vocab_free(m->prepared_vocab);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
