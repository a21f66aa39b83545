/*
 * dlq.c - `topicflow dlq list|requeue|purge`: the dead letters in topicflow.dead.
 *
 * list and requeue walk the whole queue: each dead letter is taken with basic.get, a copy is
 * published (with confirms) either back to topicflow.dead through topicflow.dlx, which puts
 * it at the end of the queue, or to topicflow.events, and the original is acknowledged only
 * after the copy is confirmed. After a full walk the letters kept are in their old order.
 * Handing messages back with nack or by closing the channel cannot promise that: RabbitMQ
 * 3.10's quorum queues put a nacked message at the end of the queue, and return a closed
 * channel's messages to the front in an order that is only kept up to 32 messages (both
 * observed with RabbitMQ 3.10.8; test_cli_dlq.c checks the order). Killed at any instant, a letter is in
 * topicflow.dead, at its destination, or in both (a duplicate, which the worker drops by
 * event id); none is lost. A letter that arrives during a walk may land among the walked ones.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "options.h"
#include "amqp/broker.h"
#include "amqp/topology.h"
#include "base/utf8.h"
#include "wire/event_codec.h"
#include "wire/json.h"

#define HEADER_REQUEUED "x-topicflow-requeued"
#define PREVIEW_CHARS 80
/* Originals held at once. A killed run's held messages go back to the front of the queue,
 * in order when they are at most 32 (see the top); so that is the window. */
#define CONFIRM_WINDOW 32
#define CONFIRM_TIMEOUT_S 30.0

typedef struct dlq_config {
    const char *amqp_url, *log_level, *log_format;
    tf_amqp_tls amqp_tls;
    long limit, max_message;
    int json, all, dry_run, yes, force;
    const char *id;
} dlq_config;

static const tf_option list_options[] = {
    TF_OPTIONS_AMQP(dlq_config), TF_OPTIONS_LOG(dlq_config),
    {"limit", NULL, TF_OPT_INT, "100", "show at most N dead letters, oldest first (0: all)",
     offsetof(dlq_config, limit), 0, 100000000},
    {"json", NULL, TF_OPT_BOOL, "off", "print a JSON array instead of a table",
     offsetof(dlq_config, json), 0, 0},
};

static const tf_option requeue_options[] = {
    TF_OPTIONS_AMQP(dlq_config), TF_OPTIONS_LOG(dlq_config),
    {"all", NULL, TF_OPT_BOOL, "off", "requeue every dead letter", offsetof(dlq_config, all), 0, 0},
    {"id", NULL, TF_OPT_STRING, NULL,
     "requeue the dead letters with these message ids (comma-separated; more ids may follow "
     "as arguments)",
     offsetof(dlq_config, id), 0, 0},
    {"dry-run", NULL, TF_OPT_BOOL, "off", "print what would be requeued and change nothing",
     offsetof(dlq_config, dry_run), 0, 0},
    {"force", NULL, TF_OPT_BOOL, "off",
     "requeue also the dead letters that would die again (undecodable, no known schema, or "
     "larger than --max-message)",
     offsetof(dlq_config, force), 0, 0},
    TF_OPTIONS_MAX_MESSAGE(dlq_config, max_message,
                           "the workers'; a larger dead letter would die again and is not "
                           "requeued without --force"),
};

static const tf_option purge_options[] = {
    TF_OPTIONS_AMQP(dlq_config), TF_OPTIONS_LOG(dlq_config),
    {"yes", NULL, TF_OPT_BOOL, "off", "really delete every dead letter",
     offsetof(dlq_config, yes), 0, 0},
};


/* Why a worker would refuse a dead letter again if it were requeued (worker/main.c,
 * classify: the schema header, the codec, the size limit). */
typedef enum { DOOM_NONE, DOOM_SCHEMA, DOOM_UNDECODABLE, DOOM_TOO_LARGE, N_DOOMS } doom;

/* What an operator needs to know about one dead letter. */
typedef struct dead_letter {
    char message_id[128];
    char routing_key[256];
    char reason[512];
    long long death_count;
    char first_death[32]; /* ISO 8601 UTC, "" when unknown */
    size_t bytes;         /* the body's size */
    int decoded;          /* the body is an event (tf_event_decode), described by the next */
    char type[16], aggregate[128], aggregate_id[128], source[128];
    long long event_id, version;
    char preview[4 * PREVIEW_CHARS + 8];
    doom doom;
} dead_letter;

/* ---- reading a dead letter's headers ------------------------------------------------------ */

static void copy_bytes(char *out, size_t size, amqp_bytes_t b)
{
    size_t n = b.len < size - 1 ? b.len : size - 1;

    n = tf_utf8_floor(b.bytes, b.len, n);
    memcpy(out, b.bytes, n);
    out[n] = '\0';
    /* Keep the text output one line per field. */
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
}

static int field_text(const amqp_field_value_t *v, char *out, size_t size)
{
    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        return -1;
    copy_bytes(out, size, v->value.bytes);
    return 0;
}

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *name)
{
    size_t len = strlen(name);

    for (int i = 0; i < t->num_entries; i++)
        if (t->entries[i].key.len == len && memcmp(t->entries[i].key.bytes, name, len) == 0)
            return &t->entries[i].value;
    return NULL;
}

static void iso_time(long long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (!gmtime_r(&tt, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        out[0] = '\0';
}

/* Reason, death count and first death time from x-topicflow-error and x-death (an array of
 * tables, newest first, one per queue and reason, each with its count and first time). */
static void read_deaths(const amqp_basic_properties_t *props, dead_letter *d)
{
    const amqp_field_value_t *error = tf_amqp_header(props, TF_HEADER_ERROR);
    const amqp_field_value_t *deaths = tf_amqp_header(props, "x-death");
    long long first = 0, count = 0, v;

    d->reason[0] = '\0';
    if (deaths && deaths->kind == AMQP_FIELD_KIND_ARRAY) {
        for (int i = 0; i < deaths->value.array.num_entries; i++) {
            const amqp_field_value_t *e = &deaths->value.array.entries[i];
            if (e->kind != AMQP_FIELD_KIND_TABLE)
                continue;
            if (i == 0)
                field_text(table_get(&e->value.table, "reason"), d->reason, sizeof(d->reason));
            if (tf_amqp_field_int(table_get(&e->value.table, "count"), &v) == 0)
                count += v;
            if (tf_amqp_field_int(table_get(&e->value.table, "time"), &v) == 0 && (first == 0 || v < first))
                first = v;
        }
    }
    if (error) {
        field_text(error, d->reason, sizeof(d->reason));
        count++;
        if (tf_amqp_field_int(tf_amqp_header(props, TF_HEADER_FAILED_AT), &v) == 0 && (first == 0 || v < first))
            first = v;
    }
    d->death_count = count > 0 ? count : 1;
    d->first_death[0] = '\0';
    if (first > 0)
        iso_time(first, d->first_death, sizeof(d->first_death));
    else if (props->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        /* A dead letter without a recorded time: the event's own time is the bound. */
        iso_time((long long)props->timestamp, d->first_death, sizeof(d->first_death));
    if (!d->reason[0])
        snprintf(d->reason, sizeof(d->reason), "unknown");
}

/* Appends s[0..n) to out with whitespace runs folded to one space, stopping after *left
 * code points; returns the new length. */
static size_t append_text(char *out, size_t at, size_t size, const char *s, size_t n, int *left)
{
    int space = at > 0 && out[at - 1] == ' ';

    for (size_t i = 0; i < n && *left > 0;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            if (!space && at > 0 && at + 1 < size) {
                out[at++] = ' ';
                (*left)--;
            }
            space = 1;
            i++;
            continue;
        }
        if (i + k > n || at + k >= size)
            break;
        memcpy(out + at, s + i, k);
        at += k;
        i += k;
        space = 0;
        (*left)--;
    }
    out[at] = '\0';
    return at;
}

static void copy_str(char *out, size_t size, tf_str s)
{
    copy_bytes(out, size, (amqp_bytes_t){s.len, (void *)s.ptr});
}

/* The event's fields (decoded with the project's codec, whatever its size: the limit is the
 * workers' business, judged in describe) and the first PREVIEW_CHARS characters of its text;
 * an undecodable body as its raw bytes escaped. */
static void make_preview(const amqp_bytes_t body, dead_letter *d)
{
    tf_event ev;
    tf_err err;
    size_t at = 0, size = sizeof(d->preview) - 4;
    int left = PREVIEW_CHARS;

    d->preview[0] = '\0';
    d->decoded = body.len > 0 &&
                 tf_event_decode(body.bytes, body.len, body.len, &ev, &err) == TF_CODEC_OK;
    if (d->decoded) {
        snprintf(d->type, sizeof(d->type), "%s", tf_event_type_name(ev.type));
        copy_str(d->aggregate, sizeof(d->aggregate), ev.aggregate);
        copy_str(d->aggregate_id, sizeof(d->aggregate_id), ev.aggregate_id);
        copy_str(d->source, sizeof(d->source), ev.source);
        d->event_id = (long long)ev.id;
        d->version = (long long)ev.version;
        for (size_t i = 0; i < ev.n_fields && left > 0; i++) {
            if (i && at + 3 < size) {
                at = append_text(d->preview, at, size, " | ", 3, &left);
            }
            if (tf_utf8_check(ev.fields[i].value.ptr, ev.fields[i].value.len) ==
                ev.fields[i].value.len)
                at = append_text(d->preview, at, size, ev.fields[i].value.ptr,
                                 ev.fields[i].value.len, &left);
        }
        if (left <= 0)
            strcat(d->preview, "...");
        tf_event_clear(&ev);
        return;
    }
    /* Raw bytes: printable ASCII as is, the rest as \xNN, about PREVIEW_CHARS in all. */
    at = (size_t)snprintf(d->preview, size, "raw: ");
    size_t i = 0;
    for (; i < body.len && at < PREVIEW_CHARS && at + 5 < size; i++) {
        unsigned char c = ((const unsigned char *)body.bytes)[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            d->preview[at++] = (char)c;
        else
            at += (size_t)snprintf(d->preview + at, size - at, "\\x%02x", c);
    }
    d->preview[at] = '\0';
    if (i < body.len)
        strcat(d->preview, "...");
}

/* max_message: the workers' --max-message, for d->doom. */
static void describe(const amqp_envelope_t *env, long max_message, dead_letter *d)
{
    const amqp_basic_properties_t *props = &env->message.properties;
    long long schema;

    d->message_id[0] = '\0';
    if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        copy_bytes(d->message_id, sizeof(d->message_id), props->message_id);
    copy_bytes(d->routing_key, sizeof(d->routing_key), env->routing_key);
    read_deaths(props, d);
    make_preview(env->message.body, d);
    d->bytes = env->message.body.len;
    if (tf_amqp_field_int(tf_amqp_header(props, TF_HEADER_SCHEMA), &schema) < 0 ||
        schema != TF_EVENT_SCHEMA)
        d->doom = DOOM_SCHEMA;
    else if (!d->decoded)
        d->doom = DOOM_UNDECODABLE;
    else if (d->bytes > (size_t)max_message)
        d->doom = DOOM_TOO_LARGE;
    else
        d->doom = DOOM_NONE;
}

/* ---- walking the queue ---------------------------------------------------------------------- */

enum { DEST_DEAD, DEST_EVENTS };

/* A copy waiting for its confirm; its original is still held, unacknowledged. */
typedef struct in_flight {
    uint64_t dead_tag;
    int dest;
    int returned;
    char message_id[128];
} in_flight;

/* Where dead letter number i (from 0, in queue order) goes: DEST_DEAD or DEST_EVENTS. */
typedef int (*walk_fn)(void *ctx, size_t i, const dead_letter *d);

typedef struct walk {
    tf_broker *b;   /* takes and acknowledges the originals */
    tf_broker *pub; /* publishes the copies, in confirm mode */
    in_flight flight[CONFIRM_WINDOW];
    size_t n_flight;
    uint64_t first_pub;
    int unmatched_return;
    long requeued, kept;
} walk;

static void on_return(void *ctx, const char *message_id, size_t len)
{
    walk *w = ctx;
    int matched = 0;

    for (size_t i = 0; i < w->n_flight; i++)
        if (strlen(w->flight[i].message_id) == len &&
            memcmp(w->flight[i].message_id, message_id, len) == 0) {
            w->flight[i].returned = 1;
            matched = 1;
        }
    if (!matched)
        w->unmatched_return = 1;
}

/* Waits for the window's confirms, then acknowledges exactly the originals whose copies the
 * broker confirmed and routed. -1 when a copy was refused or unroutable (its original is
 * left unacknowledged: it goes back to topicflow.dead when the channel closes) or the
 * confirms did not come. */
static int settle(walk *w, tf_err *err)
{
    uint8_t state[CONFIRM_WINDOW];
    int failed = 0;

    if (w->n_flight == 0)
        return 0;
    memset(state, TF_CONFIRM_PENDING, sizeof(state));
    if (tf_broker_wait_confirms(w->pub, w->first_pub, w->n_flight, state, w->n_flight,
                                CONFIRM_TIMEOUT_S, on_return, w, err) < 0)
        return -1;
    for (size_t i = 0; i < w->n_flight; i++) {
        in_flight *f = &w->flight[i];
        if (state[i] == TF_CONFIRM_ACK && !f->returned && !w->unmatched_return) {
            if (tf_broker_ack(w->b, f->dead_tag, 0, err) < 0)
                return -1;
            if (f->dest == DEST_EVENTS)
                w->requeued++;
            else
                w->kept++;
        } else if (!failed) {
            tf_err_set(err, "the broker %s the copy of message %s to %s; it stays in %s",
                       f->returned || w->unmatched_return ? "could not route" : "refused",
                       f->message_id[0] ? f->message_id : "(no id)",
                       f->dest == DEST_EVENTS ? TF_EXCHANGE_EVENTS : TF_EXCHANGE_DLX,
                       TF_QUEUE_DEAD);
            failed = 1;
        }
    }
    w->n_flight = 0;
    return failed ? -1 : 0;
}

/* A copy's properties: the original's without x-delivery-count (the quorum queue's count
 * of this copy's deliveries, not the event's). A requeued copy also drops x-topicflow-error
 * (a new failure will say why anew) and counts x-topicflow-requeued up; x-death stays as
 * the message's history. entries must hold the original's headers plus one. */
static amqp_basic_properties_t copy_props(const amqp_basic_properties_t *orig, int requeue,
                                          amqp_table_entry_t *entries)
{
    static const char *const dropped[] = {"x-delivery-count", TF_HEADER_ERROR, HEADER_REQUEUED};
    amqp_basic_properties_t p = *orig;
    long long count = 0;
    int n = 0;

    if (orig->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < orig->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &orig->headers.entries[i];
            int drop = 0;
            for (size_t k = 0; k < (requeue ? 3u : 1u); k++)
                drop |= e->key.len == strlen(dropped[k]) &&
                        memcmp(e->key.bytes, dropped[k], e->key.len) == 0;
            if (!drop)
                entries[n++] = *e;
        }
    }
    if (requeue) {
        tf_amqp_field_int(tf_amqp_header(orig, HEADER_REQUEUED), &count);
        entries[n].key = amqp_cstring_bytes(HEADER_REQUEUED);
        entries[n].value.kind = AMQP_FIELD_KIND_I64;
        entries[n].value.value.i64 = count + 1;
        n++;
    }
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers.num_entries = n;
    p.headers.entries = entries;
    return p;
}

/* Takes the first n dead letters one by one (basic.get on b), asks choose where each goes, and
 * publishes a copy there: DEST_DEAD through topicflow.dlx with its own routing key, which
 * puts it back at the end of topicflow.dead, DEST_EVENTS to topicflow.events. Each original
 * is acknowledged only after its copy is confirmed. Walking all of the queue and copying
 * every letter to its end keeps the order (see the top of the file). */
static int walk_dead(tf_broker *b, const dlq_config *cfg, uint32_t n, walk_fn choose, void *ctx,
                     walk *w, tf_err *err)
{
    int rc = -1;

    memset(w, 0, sizeof(*w));
    w->b = b;
    /* Copies go out on a connection of their own: confirms arriving on the channel that
     * does basic.get would sit between a get-ok and its message body. */
    w->pub = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, err);
    if (!w->pub || tf_broker_confirm_select(w->pub, err) < 0)
        goto done;
    for (uint32_t i = 0; i < n; i++) {
        amqp_envelope_t env;
        dead_letter d;
        char key[256];
        uint64_t pub;
        int dest, got = tf_broker_get(b, TF_QUEUE_DEAD, 0, &env, err);
        if (got < 0)
            goto done;
        if (got == 0)
            break; /* another client took some meanwhile */
        describe(&env, cfg->max_message, &d);
        dest = choose(ctx, i, &d);
        snprintf(key, sizeof(key), "%.*s", (int)env.routing_key.len,
                 (const char *)env.routing_key.bytes);
        {
            int n_headers = env.message.properties._flags & AMQP_BASIC_HEADERS_FLAG
                                ? env.message.properties.headers.num_entries
                                : 0;
            amqp_table_entry_t entries[n_headers + 1];
            amqp_basic_properties_t props =
                copy_props(&env.message.properties, dest == DEST_EVENTS, entries);
            if (tf_broker_publish(w->pub, dest == DEST_EVENTS ? TF_EXCHANGE_EVENTS : TF_EXCHANGE_DLX,
                                  key, &props, env.message.body.bytes, env.message.body.len, &pub,
                                  err) < 0) {
                amqp_destroy_envelope(&env);
                goto done;
            }
        }
        if (w->n_flight == 0)
            w->first_pub = pub;
        w->flight[w->n_flight].dead_tag = env.delivery_tag;
        w->flight[w->n_flight].dest = dest;
        w->flight[w->n_flight].returned = 0;
        snprintf(w->flight[w->n_flight].message_id, sizeof(w->flight[0].message_id), "%s",
                 d.message_id);
        w->n_flight++;
        amqp_destroy_envelope(&env);
        if (w->n_flight == CONFIRM_WINDOW && settle(w, err) < 0)
            goto done;
    }
    rc = settle(w, err);
done:
    tf_broker_close(w->pub);
    w->pub = NULL;
    return rc;
}

/* Opens the broker and checks topicflow.dead; *ready gets its ready count. */
static tf_broker *open_dead(const char *cmd, const dlq_config *cfg, uint32_t *ready)
{
    tf_broker *b;
    tf_err err;
    uint32_t consumers;
    int exists;

    b = tf_broker_open(cfg->amqp_url, &cfg->amqp_tls, 30, &err);
    if (!b) {
        cli_error(cmd, CLI_FAIL, "%s", err.msg); /* it names RabbitMQ and the URL */
        return NULL;
    }
    if (tf_broker_queue_probe(b, TF_QUEUE_DEAD, &exists, ready, &consumers, &err) < 0) {
        cli_error(cmd, CLI_FAIL, "RabbitMQ: %s", err.msg);
        tf_broker_close(b);
        return NULL;
    }
    if (!exists) {
        cli_error(cmd, CLI_FAIL, "queue %s does not exist in this vhost (topicflow-producer and "
                                 "topicflow-worker declare it when they start)",
                  TF_QUEUE_DEAD);
        tf_broker_close(b);
        return NULL;
    }
    return b;
}

static void print_json_letter(const dead_letter *d, int first)
{
    printf("%s{\"message_id\": ", first ? "  " : ",\n  ");
    tf_json_write_cstring(stdout, d->message_id);
    fputs(", \"routing_key\": ", stdout);
    tf_json_write_cstring(stdout, d->routing_key);
    fputs(", \"reason\": ", stdout);
    tf_json_write_cstring(stdout, d->reason);
    printf(", \"death_count\": %lld, \"first_death\": ", d->death_count);
    tf_json_write_cstring(stdout, d->first_death[0] ? d->first_death : NULL);
    fputs(", \"preview\": ", stdout);
    tf_json_write_cstring(stdout, d->preview);
    printf(", \"bytes\": %zu, \"event\": ", d->bytes);
    if (!d->decoded) {
        fputs("null}", stdout);
        return;
    }
    printf("{\"id\": %lld, \"type\": ", d->event_id);
    tf_json_write_cstring(stdout, d->type);
    fputs(", \"aggregate\": ", stdout);
    tf_json_write_cstring(stdout, d->aggregate);
    fputs(", \"aggregate_id\": ", stdout);
    tf_json_write_cstring(stdout, d->aggregate_id);
    printf(", \"version\": %lld, \"source\": ", d->version);
    tf_json_write_cstring(stdout, d->source);
    fputs("}}", stdout);
}

static int width_of(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

static void print_table(const dead_letter *d, size_t n)
{
    int w_id = 10, w_key = 11;

    for (size_t i = 0; i < n; i++) {
        if (width_of(d[i].message_id) > w_id)
            w_id = width_of(d[i].message_id);
        if (width_of(d[i].routing_key) > w_key)
            w_key = width_of(d[i].routing_key);
    }
    printf("%-*s  %-*s  %6s  %-20s  %s\n", w_id, "MESSAGE_ID", w_key, "ROUTING_KEY", "DEATHS",
           "FIRST_DEATH", "REASON");
    for (size_t i = 0; i < n; i++) {
        printf("%-*s  %-*s  %6lld  %-20s  %s\n", w_id, d[i].message_id[0] ? d[i].message_id : "-",
               w_key, d[i].routing_key, d[i].death_count,
               d[i].first_death[0] ? d[i].first_death : "-", d[i].reason);
        if (d[i].decoded)
            printf("%-*s  %s %s %s v%lld (event %lld, %zu bytes): %s\n", w_id, "", d[i].type,
                   d[i].aggregate, d[i].aggregate_id, d[i].version, d[i].event_id, d[i].bytes,
                   d[i].preview);
        else
            printf("%-*s  undecodable (%zu bytes): %s\n", w_id, "", d[i].bytes, d[i].preview);
    }
}

/* ---- list ------------------------------------------------------------------------------------ */

typedef struct list_ctx {
    dead_letter *letters;
    size_t n, cap;
} list_ctx;

static int list_choose(void *ctx, size_t i, const dead_letter *d)
{
    list_ctx *l = ctx;

    if (l->n < l->cap)
        l->letters[l->n++] = *d;
    return DEST_DEAD;
}

static int dlq_list(int argc, char **argv)
{
    dlq_config cfg;
    tf_broker *b = NULL;
    list_ctx l = {0};
    walk w;
    uint32_t ready = 0;
    tf_err err;
    int first, rc;

    rc = cli_parse("dlq list", "topicflow dlq list [--limit N] [--json] [options]",
                   "Shows the dead letters of topicflow.dead, oldest first: message id (the outbox\n"
                   "id), routing key, reason (the worker's x-topicflow-error, else the broker's\n"
                   "x-death reason), how often it died, when it first died, and the event as the\n"
                   "workers' codec decodes it (type, aggregate, id, version, size, the start of its\n"
                   "text; an undecodable body as escaped bytes). Every dead letter stays, in the\n"
                   "same order (listing walks the whole queue, also with --limit).",
                   list_options, N_OF(list_options), &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("dlq list", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    cfg.max_message = TF_EVENT_DEFAULT_LIMIT; /* list judges nothing by size */
    b = open_dead("dlq list", &cfg, &ready);
    if (!b)
        return CLI_FAIL;
    rc = CLI_FAIL;
    l.cap = cfg.limit > 0 && (size_t)cfg.limit < ready ? (size_t)cfg.limit : ready;
    l.letters = calloc(l.cap + 1, sizeof(*l.letters));
    if (!l.letters) {
        tf_err_set(&err, "out of memory");
        goto fail;
    }
    if (walk_dead(b, &cfg, ready, list_choose, &l, &w, &err) < 0)
        goto fail;
    if (cfg.json) {
        fputs("[\n", stdout);
        for (size_t i = 0; i < l.n; i++)
            print_json_letter(&l.letters[i], i == 0);
        fputs(l.n ? "\n]\n" : "]\n", stdout);
    } else {
        print_table(l.letters, l.n);
        if ((long)l.n < w.kept)
            printf("%zu of %ld dead letter%s shown (--limit %ld)\n", l.n, w.kept, w.kept == 1 ? "" : "s",
                   cfg.limit);
        else
            printf("%zu dead letter%s\n", l.n, l.n == 1 ? "" : "s");
    }
    rc = CLI_OK;
    goto done;
fail:
    cli_error("dlq list", CLI_FAIL, "RabbitMQ: %s", err.msg);
done:
    /* Closing the channel gives back anything still held (after an error). */
    tf_broker_close(b);
    free(l.letters);
    return rc;
}

/* ---- requeue -------------------------------------------------------------------------------- */

typedef struct id_set {
    char **v;
    unsigned char *found;
    size_t n;
} id_set;

static int id_set_add_list(id_set *s, const char *list)
{
    const char *p = list;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            char **v = realloc(s->v, (s->n + 1) * sizeof(*v));
            unsigned char *f = v ? realloc(s->found, s->n + 1) : NULL;
            if (v)
                s->v = v;
            if (f)
                s->found = f;
            if (!v || !f || !(s->v[s->n] = strndup(p, len)))
                return -1;
            s->found[s->n++] = 0;
        }
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* 1 when id is wanted (marking it found). */
static int id_set_take(id_set *s, const char *id)
{
    int hit = 0;

    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], id) == 0) {
            s->found[i] = 1;
            hit = 1;
        }
    return hit;
}

typedef struct requeue_ctx {
    id_set ids;
    int all, dry_run, force;
    size_t would;
    long skipped[N_DOOMS]; /* chosen, but kept because they would die again */
} requeue_ctx;

static int requeue_choose(void *ctx, size_t i, const dead_letter *d)
{
    requeue_ctx *r = ctx;

    if (!r->all && !id_set_take(&r->ids, d->message_id))
        return DEST_DEAD;
    if (d->doom != DOOM_NONE && !r->force) {
        r->skipped[d->doom]++;
        return DEST_DEAD;
    }
    if (!r->dry_run)
        return DEST_EVENTS;
    printf("would requeue %s  %s  (%s)\n", d->message_id[0] ? d->message_id : "-",
           d->routing_key, d->reason);
    r->would++;
    return DEST_DEAD;
}

/* "kept 3 dead letters that would die again (1 undecodable, ...); --force requeues them". */
static void print_skipped(const requeue_ctx *r, long max_message)
{
    char limit[32], what[N_DOOMS][64];
    long total = 0;
    int n = 0;

    snprintf(what[DOOM_SCHEMA], sizeof(what[0]), "without " TF_HEADER_SCHEMA " %d", TF_EVENT_SCHEMA);
    snprintf(what[DOOM_UNDECODABLE], sizeof(what[0]), "undecodable");
    snprintf(what[DOOM_TOO_LARGE], sizeof(what[0]), "larger than --max-message (%s)",
             tf_format_size(max_message, limit, sizeof(limit)));
    for (int k = DOOM_NONE + 1; k < N_DOOMS; k++)
        total += r->skipped[k];
    if (total == 0)
        return;
    printf("%s %ld dead letter%s that would die again (", r->dry_run ? "would keep" : "kept", total,
           total == 1 ? "" : "s");
    for (int k = DOOM_NONE + 1; k < N_DOOMS; k++)
        if (r->skipped[k])
            printf("%s%ld %s", n++ ? ", " : "", r->skipped[k], what[k]);
    printf("); --force requeues them anyway\n");
}

static int dlq_requeue(int argc, char **argv)
{
    dlq_config cfg;
    requeue_ctx r = {0};
    tf_broker *b = NULL;
    walk w = {0};
    uint32_t ready = 0;
    tf_err err;
    int first, rc;

    rc = cli_parse("dlq requeue", "topicflow dlq requeue (--all | --id ID[,ID...] [ID...]) "
                                  "[--dry-run] [--force] [options]",
                   "Republishes dead letters to topicflow.events with their routing key and\n"
                   "properties and a header x-topicflow-requeued (counted up each time), waits\n"
                   "for the broker's confirm, and only then removes each from topicflow.dead.\n"
                   "The other dead letters stay, in order. Interrupted at any point, no message\n"
                   "is lost (one may be both requeued and still dead: the worker ignores the\n"
                   "duplicate). A dead letter a worker would refuse again (an undecodable body,\n"
                   "no known x-topicflow-schema, larger than --max-message) stays, counted with\n"
                   "its reason, unless --force. Exit status 1 when an --id is not found.",
                   requeue_options, N_OF(requeue_options), &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    r.all = cfg.all;
    r.dry_run = cfg.dry_run;
    r.force = cfg.force;
    rc = CLI_USAGE;
    if (cfg.id && id_set_add_list(&r.ids, cfg.id) < 0)
        goto oom;
    for (int i = first; i < argc; i++) {
        if (!cfg.id) {
            cli_error("dlq requeue", CLI_USAGE, "unexpected argument '%s'", argv[i]);
            goto done;
        }
        if (id_set_add_list(&r.ids, argv[i]) < 0)
            goto oom;
    }
    if (cfg.all == (r.ids.n > 0)) {
        cli_error("dlq requeue", CLI_USAGE, "give either --all or --id ID (see --help)");
        goto done;
    }
    rc = CLI_FAIL;
    b = open_dead("dlq requeue", &cfg, &ready);
    if (!b)
        goto done;
    /* Only the letters there at the start: one that dies again meanwhile waits for the next
     * run instead of going round in this one. */
    if (walk_dead(b, &cfg, ready, requeue_choose, &r, &w, &err) < 0)
        goto fail;
    if (cfg.dry_run)
        printf("would requeue %zu dead letter%s (dry run: nothing changed)\n", r.would,
               r.would == 1 ? "" : "s");
    else
        printf("requeued %ld dead letter%s to %s\n", w.requeued, w.requeued == 1 ? "" : "s",
               TF_EXCHANGE_EVENTS);
    print_skipped(&r, cfg.max_message);
    rc = CLI_OK;
    for (size_t i = 0; i < r.ids.n; i++)
        if (!r.ids.found[i]) {
            cli_error("dlq requeue", CLI_FAIL, "no dead letter with message id %s", r.ids.v[i]);
            rc = CLI_FAIL;
        }
    goto done;
oom:
    tf_err_set(&err, "out of memory");
fail:
    if (w.requeued > 0)
        cli_error("dlq requeue", CLI_FAIL, "%s (%ld requeued before that)", err.msg, w.requeued);
    else
        cli_error("dlq requeue", CLI_FAIL, "%s", err.msg);
    rc = CLI_FAIL;
done:
    tf_broker_close(b);
    for (size_t i = 0; i < r.ids.n; i++)
        free(r.ids.v[i]);
    free(r.ids.v);
    free(r.ids.found);
    return rc;
}

/* ---- purge ------------------------------------------------------------------------------------ */

static int dlq_purge(int argc, char **argv)
{
    dlq_config cfg;
    tf_broker *b;
    uint32_t ready, removed = 0;
    tf_err err;
    int first, rc;

    rc = cli_parse("dlq purge", "topicflow dlq purge --yes [options]",
                   "Deletes every dead letter in topicflow.dead for good and prints how many.\n"
                   "Without --yes it refuses (exit 2). Letters another client holds unacknowledged\n"
                   "at that moment (e.g. a running `dlq list`) stay.",
                   purge_options, N_OF(purge_options), &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("dlq purge", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    if (!cfg.yes)
        return cli_error("dlq purge", CLI_USAGE,
                         "refusing to delete the dead letters without --yes");
    b = open_dead("dlq purge", &cfg, &ready);
    if (!b)
        return CLI_FAIL;
    if (tf_broker_purge_count(b, TF_QUEUE_DEAD, &removed, &err) < 0) {
        tf_broker_close(b);
        return cli_error("dlq purge", CLI_FAIL, "RabbitMQ: %s", err.msg);
    }
    tf_broker_close(b);
    printf("purged %u dead letter%s from %s\n", removed, removed == 1 ? "" : "s", TF_QUEUE_DEAD);
    return CLI_OK;
}

/* ---- dispatch ---------------------------------------------------------------------------------- */

static void dlq_usage(FILE *out)
{
    fprintf(out, "usage: topicflow dlq list|requeue|purge [options]\n\n"
                 "  list      show the dead letters of topicflow.dead (changes nothing)\n"
                 "  requeue   republish dead letters to topicflow.events, then remove them\n"
                 "  purge     delete every dead letter (needs --yes)\n\n"
                 "`topicflow dlq SUBCOMMAND --help` describes each.\n");
}

int cli_dlq(int argc, char **argv)
{
    if (argc < 2) {
        dlq_usage(stderr);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        dlq_usage(stdout);
        return CLI_OK;
    }
    if (strcmp(argv[1], "list") == 0)
        return dlq_list(argc - 1, argv + 1);
    if (strcmp(argv[1], "requeue") == 0)
        return dlq_requeue(argc - 1, argv + 1);
    if (strcmp(argv[1], "purge") == 0)
        return dlq_purge(argc - 1, argv + 1);
    return cli_error("dlq", CLI_USAGE, "unknown subcommand '%s' (list, requeue or purge)", argv[1]);
}
