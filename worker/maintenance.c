/*
 * maintenance.c - the model-upkeep thread. It shares with the consuming thread two atomics
 * (stop, batches) and, under `lock`, the prepared model hand-off; everything else it loads
 * from PostgreSQL itself, on its own connection.
 * Each pass does a bounded amount of work and then sleeps, so stopping is prompt.
 */
#include "maintenance.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/lifecycle.h"
#include "base/log.h"
#include "model/vocab_store.h"
#include "pg/pg.h"

struct maintenance {
    maintenance_opts opts;
    pthread_t thread;
    atomic_int stop;
    atomic_long batches;
    PGconn *pg;
    tf_model model;
    tf_vocab *vocab;
    double next_refresh;
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
    return m->vocab ? 0 : -1;
}

static int first_fit(maintenance *m, tf_err *err)
{
    tf_refit_result res;
    PGresult *r = PQexec(m->pg, "select count(*) from topicflow.documents where not deleted");
    long long live = 0;
    int rc;

    if (tf_pg_check(m->pg, r, PGRES_TUPLES_OK, err) < 0)
        return -1;
    tf_pg_get_int64(r, 0, 0, &live);
    PQclear(r);
    if (live < m->opts.min_docs || live < m->opts.update.k)
        return 0;
    rc = tf_model_refit(m->pg, &m->opts.update, &res, err);
    if (rc == 0)
        log_info("first model fitted", "version=%lld docs=%lld terms=%d k=%d relative_error=%.4f",
                 (long long)res.version, (long long)res.n_docs, res.n_terms, m->opts.update.k,
                 res.fit.x_norm > 0 ? res.fit.error / res.fit.x_norm : 0.0);
    return rc < 0 ? -1 : 0;
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

static int refresh(maintenance *m, tf_err *err)
{
    int64_t version;
    int rc;

    if (tf_now() < m->next_refresh || (m->model.version && atomic_load(&m->batches) == 0))
        return 0;
    m->next_refresh = tf_now() + m->opts.refresh_interval_s;
    rc = tf_model_refresh(m->pg, &m->opts.update, m->opts.refresh_every, &version, err);
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

static void pass(maintenance *m)
{
    tf_err err;

    if (m->pg && PQstatus(m->pg) != CONNECTION_OK) {
        PQfinish(m->pg);
        m->pg = NULL;
    }
    if (!m->pg) {
        m->pg = tf_pg_connect(m->opts.pg_url, "topicflow-worker-maintenance", &err);
        if (!m->pg)
            return; /* the consuming thread reports the outage */
    }
    if (sync_model(m, &err) < 0 || (!m->model.version && first_fit(m, &err) < 0) ||
        sync_model(m, &err) < 0 || (m->model.version && refold(m, &err) < 0) ||
        refresh(m, &err) < 0)
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
    atomic_init(&m->stop, 0);
    atomic_init(&m->batches, 0);
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
