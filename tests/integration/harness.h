/*
 * harness.h - what integration tests share: the throwaway servers started once per ctest
 * run (fixture "servers"), one database and one vhost per test, the programs under test as
 * child processes, and waiting for a condition with a deadline (never a bare sleep).
 */
#ifndef TF_HARNESS_H
#define TF_HARNESS_H

#include <libpq-fe.h>
#include <stdint.h>
#include <sys/types.h>

#include "amqp/broker.h"
#include "amqp/topology.h"

typedef struct harness {
    char name[64];         /* test name: database tf_<name>, vhost tf_<name> */
    char pg_url[512];
    char amqp_url[512];
    tf_amqp_tls amqp_tls;  /* for amqps:// (harness_setup_tls); verification on */
    PGconn *pg;            /* superuser connection to the test database */
} harness;

/* Loads <state>/env, creates a fresh database (migrated) and vhost named after `name`.
 * Fails the test (cmocka) on any error. */
void harness_setup(harness *h, const char *name);
/* The same without a vhost, for tests of the database side alone. */
void harness_setup_pg(harness *h, const char *name);
/* The same against the TLS-only servers of `dev-services tls` (fixture "tls"): loads
 * <state>/tls/env over <state>/env, so the URLs carry sslmode=verify-full and amqps://, and
 * TOPICFLOW_AMQP_CACERT, _CERT and _KEY reach the programs the test starts. */
void harness_setup_tls(harness *h, const char *name);
void harness_teardown(harness *h);

/* Runs a statement without parameters that must succeed (test fixtures only). */
void harness_sql(harness *h, const char *sql);
/* Runs a query returning one bigint. */
long long harness_scalar(harness *h, const char *sql);

/* The test database's URL for another PostgreSQL role. topicflow_producer and
 * topicflow_worker log in with a password (scram-sha-256 in dev-services' pg_hba.conf),
 * which the URL holds; other roles have trust authentication on loopback. */
void harness_role_url(const harness *h, const char *role, char *buf, size_t size);
/* The same URL without the password. */
void harness_role_url_without_password(const harness *h, const char *role, char *buf, size_t size);
/* The file holding role's password (dev-services makes one for each program's role and
 * every migration sets it), or NULL for another role; and the password it holds. */
const char *harness_role_password_file(const char *role);
void harness_role_password(const char *role, char *buf, size_t size);

/* Starts build/bin/<program> with the test's URLs and extra args (NULL-terminated); the
 * producer connects as topicflow_producer (password in its URL), the worker as
 * topicflow_worker (password from TOPICFLOW_PG_PASSWORD_FILE);
 * stderr goes to build/test-logs/<name>.<program>.<pid>.<n>.log. Returns the pid. */
pid_t harness_spawn(harness *h, const char *program, const char *const *args);
/* The log file a spawned program writes (NULL for an unknown pid), and whether it holds
 * needle so far. */
const char *harness_log_of(pid_t pid);
int harness_log_contains(pid_t pid, const char *needle);
/* Sends sig and waits; returns the exit status (or 128+signal). */
int harness_stop(pid_t pid, int sig);

/* Polls sql (one bigint) every 50 ms until it equals want or timeout_s passes; returns
 * the last value. */
long long harness_wait_scalar(harness *h, const char *sql, long long want, double timeout_s);

/* Runs scripts/dev-services with the given arguments; returns its exit status. */
int harness_services(const char *args);
/* The same, returning what it printed on stdout (caller frees); NULL when it failed. */
char *harness_services_read(const char *args);
/* Runs a shell command line; what it printed on stdout (caller frees), NULL when it exited
 * non-zero. */
char *harness_shell_read(const char *cmd);
/* Loads <state>/<file> (KEY=VALUE lines, as dev-services writes them) into the environment;
 * harness_setup loads "env". */
void harness_load_env(const char *file);

/* Opens a broker connection to the test's vhost (fails the test on error). */
tf_broker *harness_broker(harness *h);

/* Drains queue: records each message's outbox id (message_id) in ids[] (up to cap), acks
 * them; stops after idle_s without a message. Returns the count. */
size_t harness_drain_queue(harness *h, const char *queue, int64_t *ids, size_t cap, double idle_s);

double harness_now(void);

/* Every outbox id, ascending; *n gets the count. Caller frees. */
int64_t *harness_outbox_ids(harness *h, size_t *n);

/* 1 when every id of want[0..n_want) occurs in got[0..n_got) (got is sorted in place). */
int harness_covers(int64_t *got, size_t n_got, const int64_t *want, size_t n_want);

/* Drains topicflow.nmf and checks that every outbox event is in it at least once. */
void harness_assert_queue_has_every_event(harness *h);

/* Inserts n internships with ~1 KB of text each, in one statement. */
void harness_insert_internships(harness *h, int n);

/* Declares topicflow's topology (defaults) and puts b in confirm mode, as a producer would. */
void harness_prepare_publisher(tf_broker *b);
/* Publishes n event-shaped messages with message ids first..first+n-1 (msgpack body with a
 * title "Data analyst intern <id>", routing key internship.created, the producer's
 * properties) to exchange and waits for every confirm. error, when given, goes into
 * x-topicflow-error, as the worker sends a dead letter. b must be in confirm mode. */
void harness_publish_events(tf_broker *b, const char *exchange, long first, long n,
                            const char *error);
/* The msgpack body of event id (an internship created, version 1, with one field title);
 * *len gets its size. Caller frees. */
char *harness_encode_event(long id, const char *title, size_t *len);
/* Publishes body (any bytes) as message id with the producer's properties, as
 * harness_publish_events does, and waits for its confirm. */
void harness_publish_body(tf_broker *b, const char *exchange, long id, const void *body,
                          size_t len, const char *error);
/* Polls until queue exists with at least `consumers` consumers; 1 when it does within
 * timeout_s, else 0. */
int harness_wait_queue_exists(harness *h, const char *queue, uint32_t consumers, double timeout_s);
/* Ready messages of queue (passive declare). */
uint32_t harness_queue_count(tf_broker *b, const char *queue);
/* Polls until queue holds want ready messages; fails the test after timeout_s. */
void harness_wait_queue(tf_broker *b, const char *queue, uint32_t want, double timeout_s);

/* Runs build/bin/<program> with the test's URLs and args (NULL-terminated) to completion,
 * standard input from stdin_path (NULL: /dev/null). Returns its exit status (128+signal when
 * killed); *out and *err (when not NULL) get what it wrote to stdout and stderr (caller
 * frees). The output is also kept in build/test-logs/<name>.<program>.<n>.{out,err}. */
int harness_run(harness *h, const char *program, const char *const *args, const char *stdin_path,
                char **out, char **err);

/* Runs a query with one text parameter ($1) that returns one value; NULL for SQL NULL,
 * else the text (caller frees). Lets tests read JSON through jsonb: "select $1::jsonb->>'k'". */
char *harness_query_text(harness *h, const char *sql, const char *param);

/* Number of lines in s (a last line without '\n' counts). */
int harness_count_lines(const char *s);

/* Writes text to build/test-logs/<name>.<suffix> and returns that path (static storage,
 * overwritten by the next call). */
const char *harness_write_file(harness *h, const char *suffix, const char *text, size_t len);

/* A TCP port on 127.0.0.1 that nothing listens on now (bound to port 0 and released). */
int harness_free_port(void);
/* GET http://127.0.0.1:<port><path> (HTTP/1.0, 5 s timeout). Returns the body (caller frees)
 * and the status in *status; NULL with *status 0 when nothing answered. */
char *harness_http_get(int port, const char *path, int *status);
/* Polls GET path every 100 ms until it answers with status want; 1 when it did within
 * timeout_s, else 0. */
int harness_wait_http(int port, const char *path, int want, double timeout_s);

#endif
