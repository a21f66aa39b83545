/*
 * harness.c - integration test plumbing over the real servers of scripts/dev-services.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "pg/pg.h"
#include "wire/event_codec.h"

static char *slurp(const char *path);

double harness_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void harness_load_env(const char *file)
{
    const char *state = getenv("TOPICFLOW_STATE_DIR");
    char path[1024], line[2048];
    FILE *f;

    if (!state)
        fail_msg("TOPICFLOW_STATE_DIR is not set: run the tests through ctest");
    snprintf(path, sizeof(path), "%s/%s", state, file);
    f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s: are the test servers started?", path);
    while (fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        line[strcspn(line, "\n")] = '\0';
        if (!eq)
            continue;
        *eq = '\0';
        setenv(line, eq + 1, 1);
    }
    fclose(f);
}

int harness_services(const char *args)
{
    char cmd[1024];
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/scripts/dev-services %s >/dev/null", TF_SOURCE_DIR, args);
    rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

char *harness_services_read(const char *args)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "%s/scripts/dev-services %s", TF_SOURCE_DIR, args);
    return harness_shell_read(cmd);
}

char *harness_shell_read(const char *cmd)
{
    char chunk[4096], *out = NULL;
    size_t len = 0, n;
    FILE *p;
    int rc;

    p = popen(cmd, "r");
    if (!p)
        return NULL;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
        char *grown = realloc(out, len + n + 1);
        if (!grown)
            break;
        out = grown;
        memcpy(out + len, chunk, n);
        len += n;
    }
    rc = pclose(p);
    if (!out)
        out = calloc(1, 1);
    else
        out[len] = '\0';
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static PGconn *admin_connect(void)
{
    tf_err err;
    PGconn *c = tf_pg_connect(getenv("TOPICFLOW_PG_ADMIN_URL"), "topicflow-test", &err);
    if (!c)
        fail_msg("%s", err.msg);
    return c;
}

static void create_database(harness *h)
{
    PGconn *admin = admin_connect();
    char dbname[80], sql[256], *ident;
    const char *ssl;
    PGresult *res;

    snprintf(dbname, sizeof(dbname), "tf_%s", h->name);
    ident = PQescapeIdentifier(admin, dbname, strlen(dbname));
    /* A database with a replication slot (capture wal) cannot be dropped: its slots go
     * first, their readers (a producer a failed test left behind) ended before. */
    snprintf(sql, sizeof(sql),
             "select pg_terminate_backend(active_pid) from pg_replication_slots"
             " where database = '%s' and active_pid is not null", dbname);
    PQclear(PQexec(admin, sql));
    for (int tries = 0; tries < 50; tries++) {
        snprintf(sql, sizeof(sql),
                 "select count(pg_drop_replication_slot(slot_name)) from pg_replication_slots"
                 " where database = '%s'", dbname);
        res = PQexec(admin, sql);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            PQclear(res);
            break;
        }
        PQclear(res);
        usleep(100000); /* still active: its walsender is exiting */
    }
    snprintf(sql, sizeof(sql), "drop database if exists %s with (force)", ident);
    res = PQexec(admin, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s", PQerrorMessage(admin));
    PQclear(res);
    snprintf(sql, sizeof(sql), "create database %s", ident);
    res = PQexec(admin, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s", PQerrorMessage(admin));
    PQclear(res);
    PQfreemem(ident);
    PQfinish(admin);
    /* The TLS servers' env adds sslmode=verify-full and the certificates. */
    ssl = getenv("TOPICFLOW_PG_SSL_PARAMS");
    snprintf(h->pg_url, sizeof(h->pg_url), "postgresql://topicflow@127.0.0.1:%s/%s%s%s",
             getenv("TOPICFLOW_PG_PORT"), dbname, ssl && *ssl ? "?" : "", ssl ? ssl : "");
}

/* Migrates the test database. The environment of dev-services names the roles' password
 * files (TOPICFLOW_PRODUCER_PASSWORD_FILE, TOPICFLOW_WORKER_PASSWORD_FILE), so migrate also
 * sets the passwords, as an operator's deploy would (parallel tests set the same passwords:
 * migrate copes with that). */
static void run_migrate(harness *h)
{
    char cmd[2048];
    int rc;

    snprintf(cmd, sizeof(cmd), "%s/topicflow migrate --pg '%s' >/dev/null", TF_BIN_DIR, h->pg_url);
    rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("topicflow migrate failed for %s", h->pg_url);
}

/* env_file, when given, is loaded over <state>/env (the TLS servers' "tls/env"). */
static void setup_pg(harness *h, const char *name, const char *env_file)
{
    tf_err err;

    memset(h, 0, sizeof(*h));
    h->amqp_tls.verify = 1;
    snprintf(h->name, sizeof(h->name), "%s", name);
    harness_load_env("env");
    if (env_file)
        harness_load_env(env_file);
    create_database(h);
    run_migrate(h);
    h->pg = tf_pg_connect(h->pg_url, "topicflow-test", &err);
    if (!h->pg)
        fail_msg("%s", err.msg);
}

void harness_setup_pg(harness *h, const char *name)
{
    setup_pg(h, name, NULL);
}

/* A fresh vhost tf_<name> on the node of `mode` ("" or "tls "), and its URL. */
static void setup_vhost(harness *h, const char *mode, const char *scheme)
{
    char args[128];

    snprintf(args, sizeof(args), "%svhost delete tf_%s", mode, h->name);
    harness_services(args);
    snprintf(args, sizeof(args), "%svhost add tf_%s", mode, h->name);
    if (harness_services(args) != 0)
        fail_msg("cannot create vhost tf_%s", h->name);
    snprintf(h->amqp_url, sizeof(h->amqp_url), "%s://guest:guest@127.0.0.1:%s/tf_%s", scheme,
             getenv("TOPICFLOW_AMQP_PORT"), h->name);
}

void harness_setup(harness *h, const char *name)
{
    setup_pg(h, name, NULL);
    setup_vhost(h, "", "amqp");
}

void harness_setup_tls(harness *h, const char *name)
{
    setup_pg(h, name, "tls/env");
    setup_vhost(h, "tls ", "amqps");
    h->amqp_tls.cacert = getenv("TOPICFLOW_AMQP_CACERT");
    h->amqp_tls.cert = getenv("TOPICFLOW_AMQP_CERT");
    h->amqp_tls.key = getenv("TOPICFLOW_AMQP_KEY");
}

void harness_teardown(harness *h)
{
    if (h->pg)
        PQfinish(h->pg);
    h->pg = NULL;
}

static void reconnect_if_needed(harness *h)
{
    if (PQstatus(h->pg) != CONNECTION_OK)
        PQreset(h->pg);
}

void harness_sql(harness *h, const char *sql)
{
    PGresult *res;

    reconnect_if_needed(h);
    res = PQexec(h->pg, sql);
    if (PQstatus(h->pg) != CONNECTION_OK) {
        /* The server was restarted under us: the statement did not run; run it again. */
        PQclear(res);
        PQreset(h->pg);
        res = PQexec(h->pg, sql);
    }
    /* A statement chosen as a deadlock victim did not run: run it again, as an operator
     * would (said on stderr). Seen in CI: a truncate taking its tables one by one while a
     * worker's transaction held a later one. Again on a new session: PostgreSQL 15 can
     * fail a logical slot creation (track(..., 'wal')) retried in the session where the
     * first attempt failed ("snapshot reference ... is not owned by resource owner"),
     * and a slot's creation waits for every running transaction of the cluster, another
     * test's included. */
    for (int tries = 0; tries < 5 && PQresultStatus(res) == PGRES_FATAL_ERROR; tries++) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

        if (!state || strcmp(state, "40P01") != 0)
            break;
        fprintf(stderr, "harness: deadlock victim, running again on a new session: %s: %s", sql,
                PQresultErrorMessage(res));
        PQclear(res);
        PQreset(h->pg);
        res = PQexec(h->pg, sql);
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(h->pg));
    PQclear(res);
}

static int try_scalar(harness *h, const char *sql, long long *out)
{
    PGresult *res;
    int rc = -1;

    reconnect_if_needed(h);
    res = PQexec(h->pg, sql);
    if (PQstatus(h->pg) != CONNECTION_OK) {
        /* The server was restarted under us: ask again on a new connection. */
        PQclear(res);
        PQreset(h->pg);
        res = PQexec(h->pg, sql);
    }
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
        tf_pg_get_int64(res, 0, 0, out) == 0)
        rc = 0;
    PQclear(res);
    return rc;
}

long long harness_scalar(harness *h, const char *sql)
{
    long long v;

    if (try_scalar(h, sql, &v) < 0)
        fail_msg("%s: %s", sql, PQerrorMessage(h->pg));
    return v;
}

long long harness_wait_scalar(harness *h, const char *sql, long long want, double timeout_s)
{
    double end = harness_now() + timeout_s;
    long long v = -1;

    for (;;) {
        if (try_scalar(h, sql, &v) == 0 && v == want)
            return v;
        if (harness_now() > end)
            return v;
        usleep(50000);
    }
}

/* The log file of each spawned program, for harness_log_of. */
static struct { pid_t pid; char path[1024]; } spawned[256];
static int n_spawned;

const char *harness_log_of(pid_t pid)
{
    for (int i = n_spawned - 1; i >= 0; i--)
        if (spawned[i].pid == pid)
            return spawned[i].path;
    return NULL;
}

int harness_log_contains(pid_t pid, const char *needle)
{
    const char *path = harness_log_of(pid);
    char *text = path ? slurp(path) : NULL;
    int found = text && strstr(text, needle) != NULL;

    free(text);
    return found;
}

const char *harness_role_password_file(const char *role)
{
    const char *var = strcmp(role, "topicflow_producer") == 0 ? "TOPICFLOW_PRODUCER_PASSWORD_FILE"
                      : strcmp(role, "topicflow_worker") == 0 ? "TOPICFLOW_WORKER_PASSWORD_FILE"
                                                              : NULL;
    return var ? getenv(var) : NULL;
}

void harness_role_password(const char *role, char *buf, size_t size)
{
    const char *path = harness_role_password_file(role);
    char *text;

    if (!path)
        fail_msg("no password file for role %s in the environment of dev-services", role);
    text = slurp(path);
    text[strcspn(text, "\r\n")] = '\0';
    snprintf(buf, size, "%s", text);
    free(text);
}

/* The test's URL with its user replaced by role, and password (URL-safe) when not NULL. */
static void role_url(const harness *h, const char *role, const char *password, char *buf,
                     size_t size)
{
    const char *at = strchr(h->pg_url, '@'), *scheme = strstr(h->pg_url, "://");

    if (!at || !scheme)
        fail_msg("cannot derive a role URL from %s", h->pg_url);
    snprintf(buf, size, "%.*s://%s%s%s%s", (int)(scheme - h->pg_url), h->pg_url, role,
             password ? ":" : "", password ? password : "", at);
}

void harness_role_url(const harness *h, const char *role, char *buf, size_t size)
{
    char password[256];

    if (harness_role_password_file(role)) {
        harness_role_password(role, password, sizeof(password));
        role_url(h, role, password, buf, size);
    } else {
        role_url(h, role, NULL, buf, size);
    }
}

void harness_role_url_without_password(const harness *h, const char *role, char *buf, size_t size)
{
    role_url(h, role, NULL, buf, size);
}

pid_t harness_spawn(harness *h, const char *program, const char *const *args)
{
    static int seq;
    char path[1024], log[1024], url[600];
    const char *argv[32], *password_file = NULL;
    int n = 0, fd;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/%s", TF_BIN_DIR, program);
    snprintf(log, sizeof(log), "%s/%s.%s.%d.%d.log", TF_TEST_LOG_DIR, h->name, program,
             (int)getpid(), seq++);
    /* The daemons run as the least-privileged roles of sql/006, as in production, and get
     * their passwords the two ways an operator gives one: the producer inside its URL, the
     * worker from TOPICFLOW_PG_PASSWORD_FILE. */
    snprintf(url, sizeof(url), "%s", h->pg_url);
    if (strcmp(program, "topicflow-producer") == 0) {
        harness_role_url(h, "topicflow_producer", url, sizeof(url));
    } else if (strcmp(program, "topicflow-worker") == 0) {
        harness_role_url_without_password(h, "topicflow_worker", url, sizeof(url));
        password_file = harness_role_password_file("topicflow_worker");
    }
    argv[n++] = path;
    for (; args && *args && n < 30; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* A failing test must not leave its programs running: they die with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        setenv("TOPICFLOW_PG_URL", url, 1);
        if (password_file)
            setenv("TOPICFLOW_PG_PASSWORD_FILE", password_file, 1);
        else
            unsetenv("TOPICFLOW_PG_PASSWORD_FILE");
        setenv("TOPICFLOW_AMQP_URL", h->amqp_url, 1);
        setenv("TOPICFLOW_LOG", "debug", 1);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    if (n_spawned < (int)(sizeof(spawned) / sizeof(spawned[0]))) {
        spawned[n_spawned].pid = pid;
        snprintf(spawned[n_spawned].path, sizeof(spawned[n_spawned].path), "%s", log);
        n_spawned++;
    }
    return pid;
}

int harness_stop(pid_t pid, int sig)
{
    int status;

    kill(pid, sig);
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

tf_broker *harness_broker(harness *h)
{
    tf_err err;
    tf_broker *b = tf_broker_open(h->amqp_url, &h->amqp_tls, 30, &err);
    if (!b)
        fail_msg("%s", err.msg);
    return b;
}

size_t harness_drain_queue(harness *h, const char *queue, int64_t *ids, size_t cap, double idle_s)
{
    tf_broker *b = harness_broker(h);
    double last = harness_now();
    size_t n = 0;
    tf_err err;

    while (harness_now() - last < idle_s) {
        amqp_envelope_t env;
        int rc = tf_broker_get(b, queue, 0, &env, &err);
        if (rc < 0)
            fail_msg("%s", err.msg);
        if (rc == 0) {
            usleep(20000);
            continue;
        }
        last = harness_now();
        if (n < cap && (env.message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG)) {
            char id[32];
            size_t len = env.message.properties.message_id.len;
            memcpy(id, env.message.properties.message_id.bytes, len < 31 ? len : 31);
            id[len < 31 ? len : 31] = '\0';
            ids[n++] = strtoll(id, NULL, 10);
        }
        if (tf_broker_ack(b, env.delivery_tag, 0, &err) < 0)
            fail_msg("%s", err.msg);
        amqp_destroy_envelope(&env);
    }
    tf_broker_close(b);
    return n;
}

int64_t *harness_outbox_ids(harness *h, size_t *n)
{
    PGresult *res;
    int64_t *ids;

    reconnect_if_needed(h);
    res = PQexec(h->pg, "select id from topicflow.outbox order by id");
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("%s", PQerrorMessage(h->pg));
    *n = (size_t)PQntuples(res);
    ids = calloc(*n + 1, sizeof(*ids));
    for (size_t i = 0; i < *n; i++)
        ids[i] = strtoll(PQgetvalue(res, (int)i, 0), NULL, 10);
    PQclear(res);
    return ids;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int harness_covers(int64_t *got, size_t n_got, const int64_t *want, size_t n_want)
{
    qsort(got, n_got, sizeof(*got), cmp_i64);
    for (size_t i = 0; i < n_want; i++)
        if (!bsearch(&want[i], got, n_got, sizeof(*got), cmp_i64)) {
            print_message("missing id %lld\n", (long long)want[i]);
            return 0;
        }
    return 1;
}

void harness_insert_internships(harness *h, int n)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "insert into internships (title, company, location, description, skills)"
             " select 'Intern ' || g, 'Company ' || (g %% 97), 'Cairo',"
             " repeat('We are looking for a motivated intern to join our data team. ', 16) || g,"
             " array['python', 'sql', 'skill' || (g %% 50)]"
             " from generate_series(1, %d) g", n);
    harness_sql(h, sql);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[8192];

    if (!f)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + n + 1 > cap) {
            cap = 2 * (len + n + 1);
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf)
        buf = calloc(1, 1);
    buf[len] = '\0';
    return buf;
}

int harness_run(harness *h, const char *program, const char *const *args, const char *stdin_path,
                char **out, char **err)
{
    static int seq;
    char path[1024], out_path[1024], err_path[1024];
    const char *argv[64];
    int n = 0, status, me = seq++;
    pid_t pid;

    snprintf(path, sizeof(path), "%s/%s", TF_BIN_DIR, program);
    snprintf(out_path, sizeof(out_path), "%s/%s.%s.run%d.out", TF_TEST_LOG_DIR, h->name, program, me);
    snprintf(err_path, sizeof(err_path), "%s/%s.%s.run%d.err", TF_TEST_LOG_DIR, h->name, program, me);
    argv[n++] = path;
    for (; args && *args && n < 62; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int in = open(stdin_path ? stdin_path : "/dev/null", O_RDONLY);
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || o < 0 || e < 0)
            _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        close(in);
        close(o);
        close(e);
        setenv("TOPICFLOW_PG_URL", h->pg_url, 1);
        setenv("TOPICFLOW_AMQP_URL", h->amqp_url, 1);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        fail_msg("waitpid: %s", strerror(errno));
    if (out)
        *out = slurp(out_path);
    if (err)
        *err = slurp(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *harness_query_text(harness *h, const char *sql, const char *param)
{
    const char *params[1] = {param};
    PGresult *res;
    char *v = NULL;

    reconnect_if_needed(h);
    res = PQexecParams(h->pg, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        fail_msg("%s: %s", sql, PQerrorMessage(h->pg));
    if (!PQgetisnull(res, 0, 0))
        v = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

int harness_count_lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        if (*s == '\n' || s[1] == '\0')
            n++;
    return n;
}

const char *harness_write_file(harness *h, const char *suffix, const char *text, size_t len)
{
    static char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s.%s", TF_TEST_LOG_DIR, h->name, suffix);
    f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len || fclose(f) != 0)
        fail_msg("cannot write %s", path);
    return path;
}

void harness_prepare_publisher(tf_broker *b)
{
    tf_topology topo = tf_topology_defaults();
    tf_err err;

    if (tf_topology_declare(b, &topo, NULL, &err) < 0 || tf_broker_confirm_select(b, &err) < 0)
        fail_msg("%s", err.msg);
}

/* Publishes body with the producer's properties (message id = id); *tag gets its
 * publish tag. */
static void publish_body(tf_broker *b, const char *exchange, long id, const void *body, size_t len,
                         const char *error, uint64_t *tag)
{
    amqp_table_entry_t headers[2];
    amqp_basic_properties_t props;
    char mid[32];
    tf_err err;
    int n = 0;

    snprintf(mid, sizeof(mid), "%ld", id);
    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_HEADERS_FLAG;
    props.content_type = amqp_cstring_bytes(TF_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = amqp_cstring_bytes(mid);
    props.type = amqp_cstring_bytes("created");
    props.timestamp = (uint64_t)time(NULL);
    headers[n].key = amqp_cstring_bytes(TF_HEADER_SCHEMA);
    headers[n].value.kind = AMQP_FIELD_KIND_I32;
    headers[n++].value.value.i32 = TF_EVENT_SCHEMA;
    if (error) {
        headers[n].key = amqp_cstring_bytes(TF_HEADER_ERROR);
        headers[n].value.kind = AMQP_FIELD_KIND_UTF8;
        headers[n++].value.value.bytes = amqp_cstring_bytes(error);
    }
    props.headers.num_entries = n;
    props.headers.entries = headers;
    if (tf_broker_publish(b, exchange, "internship.created", &props, body, len, tag, &err) < 0)
        fail_msg("%s", err.msg);
}

char *harness_encode_event(long id, const char *title, size_t *len)
{
    tf_event_field field;
    tf_event ev;
    char mid[32], *body;
    tf_err err;

    snprintf(mid, sizeof(mid), "%ld", id);
    memset(&ev, 0, sizeof(ev));
    ev.id = id;
    ev.type = TF_EVENT_CREATED;
    ev.aggregate = (tf_str){"internship", 10};
    ev.aggregate_id = (tf_str){mid, strlen(mid)};
    ev.version = 1;
    ev.occurred_at = (int64_t)time(NULL) * 1000000;
    ev.source = (tf_str){"public.internships", 18};
    field.name = (tf_str){"title", 5};
    field.value = (tf_str){title, strlen(title)};
    ev.n_fields = 1;
    ev.fields = &field;
    if (tf_event_encode(&ev, &body, len, &err) < 0)
        fail_msg("%s", err.msg);
    return body;
}

static void publish_event(tf_broker *b, const char *exchange, long id, const char *error,
                          uint64_t *tag)
{
    char title[64], *body;
    size_t len;

    snprintf(title, sizeof(title), "Data analyst intern %ld", id);
    body = harness_encode_event(id, title, &len);
    publish_body(b, exchange, id, body, len, error, tag);
    free(body);
}

void harness_publish_body(tf_broker *b, const char *exchange, long id, const void *body,
                          size_t len, const char *error)
{
    uint8_t state = TF_CONFIRM_PENDING;
    uint64_t tag;
    tf_err err;

    publish_body(b, exchange, id, body, len, error, &tag);
    if (tf_broker_wait_confirms(b, tag, 1, &state, 1, 60, NULL, NULL, &err) < 0)
        fail_msg("%s", err.msg);
    if (state != TF_CONFIRM_ACK)
        fail_msg("message %ld was not confirmed", id);
}

void harness_publish_events(tf_broker *b, const char *exchange, long first, long n,
                            const char *error)
{
    uint8_t *state = calloc((size_t)n + 1, 1);
    uint64_t first_tag = 0, tag;
    tf_err err;

    for (long i = 0; i < n; i++) {
        publish_event(b, exchange, first + i, error, &tag);
        if (i == 0)
            first_tag = tag;
    }
    if (n > 0 && tf_broker_wait_confirms(b, first_tag, (size_t)n, state, (size_t)n, 60, NULL,
                                         NULL, &err) < 0)
        fail_msg("%s", err.msg);
    for (long i = 0; i < n; i++)
        if (state[i] != TF_CONFIRM_ACK)
            fail_msg("message %ld was not confirmed", first + i);
    free(state);
}

int harness_wait_queue_exists(harness *h, const char *queue, uint32_t consumers, double timeout_s)
{
    tf_broker *b = harness_broker(h);
    uint32_t messages, have = 0;
    int exists = 0;
    tf_err err;

    for (double end = harness_now() + timeout_s; harness_now() < end; usleep(50000)) {
        if (tf_broker_queue_probe(b, queue, &exists, &messages, &have, &err) < 0)
            fail_msg("probing %s: %s", queue, err.msg);
        if (exists && have >= consumers)
            break;
    }
    tf_broker_close(b);
    return exists && have >= consumers;
}

uint32_t harness_queue_count(tf_broker *b, const char *queue)
{
    uint32_t messages, consumers;
    tf_err err;

    if (tf_broker_queue_info(b, queue, &messages, &consumers, &err) < 0)
        fail_msg("%s", err.msg);
    return messages;
}

void harness_wait_queue(tf_broker *b, const char *queue, uint32_t want, double timeout_s)
{
    double end = harness_now() + timeout_s;
    uint32_t n;

    while ((n = harness_queue_count(b, queue)) != want) {
        if (harness_now() > end)
            fail_msg("%s holds %u ready messages, not %u", queue, n, want);
        usleep(50000);
    }
}

void harness_assert_queue_has_every_event(harness *h)
{
    size_t n_want, n_got;
    int64_t *want = harness_outbox_ids(h, &n_want);
    int64_t *got = calloc(n_want * 2 + 1000, sizeof(*got));

    n_got = harness_drain_queue(h, TF_QUEUE_NMF, got, n_want * 2 + 1000, 1.5);
    assert_true(n_got >= n_want);
    assert_true(harness_covers(got, n_got, want, n_want));
    free(want);
    free(got);
}

int harness_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

char *harness_http_get(int port, const char *path, int *status)
{
    struct sockaddr_in a;
    struct timeval tv = {5, 0};
    char req[512], *resp = NULL, *body;
    size_t n = 0, cap = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    *status = 0;
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        goto fail;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req))
        goto fail;
    for (;;) {
        ssize_t got;
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 16384;
            resp = realloc(resp, cap);
            assert_non_null(resp);
        }
        got = read(fd, resp + n, cap - n - 1);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        n += (size_t)got;
    }
    resp[n] = '\0';
    body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.", 7) != 0 || !body)
        goto fail;
    *status = atoi(resp + 9);
    memmove(resp, body + 4, strlen(body + 4) + 1);
    close(fd);
    return resp;
fail:
    close(fd);
    free(resp);
    *status = 0;
    return NULL;
}

int harness_wait_http(int port, const char *path, int want, double timeout_s)
{
    double end = harness_now() + timeout_s;

    for (;;) {
        int status;
        free(harness_http_get(port, path, &status));
        if (status == want)
            return 1;
        if (harness_now() > end)
            return 0;
        usleep(100 * 1000);
    }
}
