/*
 * dlq.c - `topicflow dlq list|requeue|purge`: the dead letters in topicflow.dead.
 *
 * Dead letters are read with basic.get and left unacknowledged; what is not removed goes back
 * with one nack (requeue) per message in the order it was read. A quorum queue serves
 * returned messages before all others, in the order they were returned, so the queue's
 * order is unchanged (a multiple nack or a closed channel returns them too, but without that
 * guarantee). A dead letter leaves the queue only after the broker confirmed its republished
 * copy: killed at any instant, a message is in topicflow.dead, in topicflow.events' queues,
 * or in both (the worker drops the duplicate by event id).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "commands.h"
#include "event_codec.h"
#include "json.h"
#include "options.h"
#include "utf8.h"

#define HEADER_REQUEUED "x-topicflow-requeued"
#define PREVIEW_CHARS 80
#define CONFIRM_WINDOW 256
#define CONFIRM_TIMEOUT_S 30.0

typedef struct dlq_config {
    const char *pg_url, *amqp_url, *log_level;
    long limit;
    int json, all, dry_run, yes;
    const char *id;
} dlq_config;

static const tf_option list_options[] = {
    TF_OPTIONS_CONNECTION(dlq_config),
    {"limit", NULL, TF_OPT_INT, "100", "show at most N dead letters, oldest first (0: all)",
     offsetof(dlq_config, limit), 0, 100000000},
    {"json", NULL, TF_OPT_BOOL, "off", "print a JSON array instead of a table",
     offsetof(dlq_config, json), 0, 0},
};

static const tf_option requeue_options[] = {
    TF_OPTIONS_CONNECTION(dlq_config),
    {"all", NULL, TF_OPT_BOOL, "off", "requeue every dead letter", offsetof(dlq_config, all), 0, 0},
    {"id", NULL, TF_OPT_STRING, NULL,
     "requeue the dead letters with these message ids (comma-separated; more ids may follow "
     "as arguments)",
     offsetof(dlq_config, id), 0, 0},
    {"dry-run", NULL, TF_OPT_BOOL, "off", "print what would be requeued and change nothing",
     offsetof(dlq_config, dry_run), 0, 0},
};

static const tf_option purge_options[] = {
    TF_OPTIONS_CONNECTION(dlq_config),
    {"yes", NULL, TF_OPT_BOOL, "off", "really delete every dead letter",
     offsetof(dlq_config, yes), 0, 0},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* What an operator needs to know about one dead letter. */
typedef struct dead_letter {
    char message_id[128];
    char routing_key[256];
    char reason[512];
    long long death_count;
    char first_death[32]; /* ISO 8601 UTC, "" when unknown */
    char preview[4 * PREVIEW_CHARS + 8];
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

static int field_int(const amqp_field_value_t *v, long long *out)
{
    if (!v)
        return -1;
    switch (v->kind) {
    case AMQP_FIELD_KIND_I8: *out = v->value.i8; return 0;
    case AMQP_FIELD_KIND_U8: *out = v->value.u8; return 0;
    case AMQP_FIELD_KIND_I16: *out = v->value.i16; return 0;
    case AMQP_FIELD_KIND_U16: *out = v->value.u16; return 0;
    case AMQP_FIELD_KIND_I32: *out = v->value.i32; return 0;
    case AMQP_FIELD_KIND_U32: *out = v->value.u32; return 0;
    case AMQP_FIELD_KIND_I64: *out = (long long)v->value.i64; return 0;
    case AMQP_FIELD_KIND_U64:
    case AMQP_FIELD_KIND_TIMESTAMP: *out = (long long)v->value.u64; return 0;
    default: return -1;
    }
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
            if (field_int(table_get(&e->value.table, "count"), &v) == 0)
                count += v;
            if (field_int(table_get(&e->value.table, "time"), &v) == 0 && (first == 0 || v < first))
                first = v;
        }
    }
    if (error) {
        field_text(error, d->reason, sizeof(d->reason));
        count++;
    }
    d->death_count = count > 0 ? count : 1;
    d->first_death[0] = '\0';
    if (first > 0)
        iso_time(first, d->first_death, sizeof(d->first_death));
    else if (props->_flags & AMQP_BASIC_TIMESTAMP_FLAG)
        /* The worker's dead letters carry no death time: the event's own time is the bound. */
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

/* The first PREVIEW_CHARS characters of the event's text, or the raw bytes escaped. */
static void make_preview(const amqp_bytes_t body, dead_letter *d)
{
    tf_event ev;
    tf_err err;
    size_t at = 0, size = sizeof(d->preview) - 4;
    int left = PREVIEW_CHARS;

    d->preview[0] = '\0';
    if (body.len > 0 &&
        tf_event_decode(body.bytes, body.len, TF_EVENT_DEFAULT_LIMIT, &ev, &err) == TF_CODEC_OK) {
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
    at = (size_t)snprintf(d->preview, size, "raw: ");
    for (size_t i = 0; i < body.len && at + 5 < size && left > 0; i++, left--) {
        unsigned char c = ((const unsigned char *)body.bytes)[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            d->preview[at++] = (char)c;
        else
            at += (size_t)snprintf(d->preview + at, size - at, "\\x%02x", c);
    }
    d->preview[at] = '\0';
    if (body.len > 0 && left <= 0)
        strcat(d->preview, "...");
}

static void describe(const amqp_envelope_t *env, dead_letter *d)
{
    const amqp_basic_properties_t *props = &env->message.properties;

    d->message_id[0] = '\0';
    if (props->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
        copy_bytes(d->message_id, sizeof(d->message_id), props->message_id);
    copy_bytes(d->routing_key, sizeof(d->routing_key), env->routing_key);
    read_deaths(props, d);
    make_preview(env->message.body, d);
}

/* ---- shared plumbing ----------------------------------------------------------------------- */

typedef struct tags {
    uint64_t *v;
    size_t n, cap;
} tags;

static int tags_push(tags *t, uint64_t tag)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 256;
        uint64_t *v = realloc(t->v, cap * sizeof(*v));
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = tag;
    return 0;
}

/* Gives the held messages back one by one, in the order they were read (see the top). */
static int return_in_order(tf_broker *b, const tags *held, tf_err *err)
{
    for (size_t i = 0; i < held->n; i++)
        if (tf_broker_nack(b, held->v[i], 0, 1, err) < 0)
            return -1;
    return 0;
}

/* Opens the broker and checks topicflow.dead; *ready gets its ready count. */
static tf_broker *open_dead(const char *cmd, const dlq_config *cfg, uint32_t *ready)
{
    tf_broker *b;
    tf_err err;
    uint32_t consumers;
    int exists;

    b = tf_broker_open(cfg->amqp_url, 30, &err);
    if (!b) {
        cli_error(cmd, CLI_FAIL, "RabbitMQ: %s", err.msg);
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

static int print_json_letter(const dead_letter *d, int first)
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
    fputs("}", stdout);
    return 0;
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
        if (d[i].preview[0])
            printf("%-*s  %s\n", w_id, "", d[i].preview);
    }
}

/* ---- list ------------------------------------------------------------------------------------ */

static int dlq_list(int argc, char **argv)
{
    dlq_config cfg;
    tf_broker *b = NULL;
    dead_letter *letters = NULL;
    tags held = {0};
    uint32_t ready = 0;
    size_t want, n = 0;
    tf_err err;
    int first, rc;

    rc = cli_parse("dlq list", "topicflow dlq list [--limit N] [--json] [options]",
                   "Shows the dead letters of topicflow.dead, oldest first: message id (the outbox\n"
                   "id), routing key, reason (the worker's x-topicflow-error, else the broker's\n"
                   "x-death reason), how often it died, when it first died, and the start of its\n"
                   "text. Listing leaves every dead letter where it was, in the same order.",
                   list_options, N_OF(list_options), &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first < argc)
        return cli_error("dlq list", CLI_USAGE, "unexpected argument '%s'", argv[first]);
    b = open_dead("dlq list", &cfg, &ready);
    if (!b)
        return CLI_FAIL;
    rc = CLI_FAIL;
    /* Only what was there at the start: letters arriving meanwhile queue up behind. */
    want = cfg.limit > 0 && (size_t)cfg.limit < ready ? (size_t)cfg.limit : ready;
    letters = calloc(want + 1, sizeof(*letters));
    if (!letters) {
        tf_err_set(&err, "out of memory");
        goto fail;
    }
    while (n < want) {
        amqp_envelope_t env;
        int got = tf_broker_get(b, TF_QUEUE_DEAD, 0, &env, &err);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        describe(&env, &letters[n++]);
        if (tags_push(&held, env.delivery_tag) < 0) {
            amqp_destroy_envelope(&env);
            tf_err_set(&err, "out of memory");
            goto fail;
        }
        amqp_destroy_envelope(&env);
    }
    if (return_in_order(b, &held, &err) < 0)
        goto fail;
    if (cfg.json) {
        fputs("[\n", stdout);
        for (size_t i = 0; i < n; i++)
            print_json_letter(&letters[i], i == 0);
        fputs(n ? "\n]\n" : "]\n", stdout);
    } else {
        print_table(letters, n);
        if (n < ready)
            printf("%zu of %u dead letters shown (--limit %ld)\n", n, ready, cfg.limit);
        else
            printf("%zu dead letter%s\n", n, n == 1 ? "" : "s");
    }
    rc = CLI_OK;
    goto done;
fail:
    cli_error("dlq list", CLI_FAIL, "RabbitMQ: %s", err.msg);
done:
    /* Closing the channel also returns anything still held (after an error). */
    tf_broker_close(b);
    free(letters);
    free(held.v);
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
            unsigned char *f = realloc(s->found, s->n + 1);
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

static int id_set_all_found(const id_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->found[i])
            return 0;
    return 1;
}

/* A republished dead letter waiting for its confirm. */
typedef struct in_flight {
    uint64_t dead_tag;
    char message_id[128];
    int returned;
} in_flight;

typedef struct requeue_state {
    tf_broker *b;
    in_flight *flight;
    size_t n_flight;
    uint64_t first_pub;
    int unmatched_return;
    long requeued;
} requeue_state;

static void on_return(void *ctx, const char *message_id, size_t len)
{
    requeue_state *st = ctx;
    int matched = 0;

    for (size_t i = 0; i < st->n_flight; i++)
        if (strlen(st->flight[i].message_id) == len &&
            memcmp(st->flight[i].message_id, message_id, len) == 0) {
            st->flight[i].returned = 1;
            matched = 1;
        }
    if (!matched)
        st->unmatched_return = 1;
}

/* Waits for the window's confirms, then removes from the dead-letter queue exactly the
 * messages the broker confirmed and routed. -1 when any was refused or unroutable (those
 * stay dead letters) or the confirms did not come. */
static int settle(requeue_state *st, tf_err *err)
{
    uint8_t state[CONFIRM_WINDOW];
    int failed = 0;

    if (st->n_flight == 0)
        return 0;
    memset(state, TF_CONFIRM_PENDING, sizeof(state));
    if (tf_broker_wait_confirms(st->b, st->first_pub, st->n_flight, state, st->n_flight,
                                CONFIRM_TIMEOUT_S, on_return, st, err) < 0)
        return -1;
    for (size_t i = 0; i < st->n_flight; i++) {
        in_flight *f = &st->flight[i];
        if (state[i] == TF_CONFIRM_ACK && !f->returned && !st->unmatched_return) {
            if (tf_broker_ack(st->b, f->dead_tag, 0, err) < 0)
                return -1;
            st->requeued++;
        } else {
            if (!failed)
                tf_err_set(err, "the broker %s message %s; it stays in %s",
                           f->returned || st->unmatched_return ? "could not route"
                                                               : "refused (nack)",
                           f->message_id[0] ? f->message_id : "(no id)", TF_QUEUE_DEAD);
            failed = 1;
            if (tf_broker_nack(st->b, f->dead_tag, 0, 1, err) < 0)
                return -1;
        }
    }
    st->n_flight = 0;
    return failed ? -1 : 0;
}

/* The dead letter's properties with x-topicflow-requeued incremented. Broker-set and stale
 * headers are dropped: x-delivery-count (the quorum queue's, not the event's) and
 * x-topicflow-error (a new failure will say why anew). x-death is kept as history. */
static amqp_basic_properties_t requeue_props(const amqp_basic_properties_t *orig,
                                             amqp_table_entry_t *entries)
{
    amqp_basic_properties_t p = *orig;
    const amqp_field_value_t *prev = tf_amqp_header(orig, HEADER_REQUEUED);
    long long count = 0;
    int n = 0;

    if (orig->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < orig->headers.num_entries; i++) {
            const amqp_table_entry_t *e = &orig->headers.entries[i];
            static const char *const dropped[] = {"x-delivery-count", TF_HEADER_ERROR,
                                                  HEADER_REQUEUED};
            int drop = 0;
            for (size_t k = 0; k < 3; k++)
                drop |= e->key.len == strlen(dropped[k]) &&
                        memcmp(e->key.bytes, dropped[k], e->key.len) == 0;
            if (!drop)
                entries[n++] = *e;
        }
    }
    field_int(prev, &count);
    entries[n].key = amqp_cstring_bytes(HEADER_REQUEUED);
    entries[n].value.kind = AMQP_FIELD_KIND_I64;
    entries[n].value.value.i64 = count + 1;
    n++;
    p._flags |= AMQP_BASIC_HEADERS_FLAG;
    p.headers.num_entries = n;
    p.headers.entries = entries;
    return p;
}

static int dlq_requeue(int argc, char **argv)
{
    dlq_config cfg;
    requeue_state st = {0};
    id_set ids = {0};
    tags held = {0};
    uint32_t ready = 0;
    size_t seen = 0, would = 0;
    tf_err err;
    int first, rc;

    rc = cli_parse("dlq requeue", "topicflow dlq requeue (--all | --id ID[,ID...] [ID...]) "
                                  "[--dry-run] [options]",
                   "Republishes dead letters to topicflow.events with their routing key and\n"
                   "properties and a header x-topicflow-requeued (incremented each time), waits\n"
                   "for the broker's confirm, and only then removes each from topicflow.dead.\n"
                   "Dead letters not selected stay where they are, in order. Interrupted at any\n"
                   "point, no message is lost (one may be both requeued and still dead: the worker\n"
                   "ignores the duplicate).",
                   requeue_options, N_OF(requeue_options), &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = CLI_USAGE;
    if (cfg.id && id_set_add_list(&ids, cfg.id) < 0)
        goto oom;
    for (int i = first; i < argc; i++) {
        if (!cfg.id) {
            cli_error("dlq requeue", CLI_USAGE, "unexpected argument '%s'", argv[i]);
            goto done;
        }
        if (id_set_add_list(&ids, argv[i]) < 0)
            goto oom;
    }
    if (cfg.all == (ids.n > 0)) {
        cli_error("dlq requeue", CLI_USAGE, "give either --all or --id ID (see --help)");
        goto done;
    }
    rc = CLI_FAIL;
    st.b = open_dead("dlq requeue", &cfg, &ready);
    if (!st.b)
        goto done;
    st.flight = calloc(CONFIRM_WINDOW, sizeof(*st.flight));
    if (!st.flight)
        goto oom;
    if (!cfg.dry_run && tf_broker_confirm_select(st.b, &err) < 0)
        goto fail;
    /* Only the letters there at the start: a requeued message that dies again meanwhile must
     * not be requeued again by this same run. */
    while (seen < ready && (cfg.all || !id_set_all_found(&ids))) {
        amqp_envelope_t env;
        dead_letter d;
        int got = tf_broker_get(st.b, TF_QUEUE_DEAD, 0, &env, &err);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        seen++;
        describe(&env, &d);
        if (!cfg.all && !id_set_take(&ids, d.message_id)) {
            amqp_destroy_envelope(&env);
            if (tags_push(&held, env.delivery_tag) < 0)
                goto oom;
            continue;
        }
        if (cfg.dry_run) {
            printf("would requeue %s  %s  (%s)\n", d.message_id[0] ? d.message_id : "-",
                   d.routing_key, d.reason);
            would++;
            amqp_destroy_envelope(&env);
            if (tags_push(&held, env.delivery_tag) < 0)
                goto oom;
            continue;
        }
        {
            int n_headers = env.message.properties._flags & AMQP_BASIC_HEADERS_FLAG
                                ? env.message.properties.headers.num_entries
                                : 0;
            amqp_table_entry_t entries[n_headers + 1];
            amqp_basic_properties_t props = requeue_props(&env.message.properties, entries);
            char key[256];
            uint64_t pub;

            snprintf(key, sizeof(key), "%.*s", (int)env.routing_key.len,
                     (const char *)env.routing_key.bytes);
            if (tf_broker_publish(st.b, TF_EXCHANGE_EVENTS, key, &props, env.message.body.bytes,
                                  env.message.body.len, &pub, &err) < 0) {
                amqp_destroy_envelope(&env);
                goto fail;
            }
            if (st.n_flight == 0)
                st.first_pub = pub;
            st.flight[st.n_flight].dead_tag = env.delivery_tag;
            st.flight[st.n_flight].returned = 0;
            snprintf(st.flight[st.n_flight].message_id, sizeof(st.flight[0].message_id), "%s",
                     d.message_id);
            st.n_flight++;
        }
        amqp_destroy_envelope(&env);
        if (st.n_flight == CONFIRM_WINDOW && settle(&st, &err) < 0)
            goto fail;
    }
    if (settle(&st, &err) < 0 || return_in_order(st.b, &held, &err) < 0)
        goto fail;
    if (cfg.dry_run)
        printf("would requeue %zu dead letter%s (dry run: nothing changed)\n", would,
               would == 1 ? "" : "s");
    else
        printf("requeued %ld dead letter%s to %s\n", st.requeued, st.requeued == 1 ? "" : "s",
               TF_EXCHANGE_EVENTS);
    rc = CLI_OK;
    for (size_t i = 0; i < ids.n; i++)
        if (!ids.found[i]) {
            cli_error("dlq requeue", CLI_FAIL, "no dead letter with message id %s", ids.v[i]);
            rc = CLI_FAIL;
        }
    goto done;
oom:
    tf_err_set(&err, "out of memory");
fail:
    if (st.requeued > 0)
        cli_error("dlq requeue", CLI_FAIL, "%s (%ld requeued before that)", err.msg, st.requeued);
    else
        cli_error("dlq requeue", CLI_FAIL, "%s", err.msg);
    rc = CLI_FAIL;
done:
    tf_broker_close(st.b);
    free(st.flight);
    free(held.v);
    for (size_t i = 0; i < ids.n; i++)
        free(ids.v[i]);
    free(ids.v);
    free(ids.found);
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
