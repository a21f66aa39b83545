/*
 * load.c - `topicflow load FILE`: CSV (RFC 4180, header row) or JSONL rows into a table with
 * COPY FROM STDIN, one COPY (one transaction) per --batch rows. A row that cannot be loaded is
 * reported with its line number and skipped, or with --strict ends the load before its batch
 * commits. Rows are checked here first (UTF-8, shape, required columns, array syntax); what
 * only the server can judge (types, constraints) is caught from COPY's error, whose line
 * number names the row, and the batch is sent again without it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "options.h"
#include "base/lifecycle.h"
#include "base/utf8.h"
#include "pg/migrate.h"
#include "pg/pg.h"
#include "rows/csv.h"
#include "rows/jsonl.h"
#include "wire/event_codec.h"
#include "wire/json.h"

#define MAX_BATCH_BYTES (64L << 20) /* a batch is sent early when its COPY text grows past this */
#define MAX_IGNORED 16

typedef struct load_config {
    const char *pg_url, *log_level, *log_format;
    const char *table, *format;
    int strict;
    long batch, max_message;
} load_config;

static const tf_option load_options[] = {
    TF_OPTIONS_PG(load_config), TF_OPTIONS_LOG(load_config),
    {"table", NULL, TF_OPT_STRING, "public.internships",
     "target table; its columns come from information_schema", offsetof(load_config, table), 0, 0},
    {"format", NULL, TF_OPT_STRING, NULL,
     "csv or jsonl (default: from the file name's extension, else from the first byte)",
     offsetof(load_config, format), 0, 0},
    {"strict", NULL, TF_OPT_BOOL, "off", "stop at the first bad row; its batch is not committed",
     offsetof(load_config, strict), 0, 0},
    {"batch", NULL, TF_OPT_INT, "5000", "rows per COPY transaction", offsetof(load_config, batch),
     1, 10000000},
    TF_OPTIONS_MAX_MESSAGE(load_config, max_message,
                           "the workers' (and the producer's); a row whose tracked text is larger "
                           "loads with a warning, as its event will never be processed"),
};
#define N_LOAD_OPTIONS (sizeof(load_options) / sizeof(load_options[0]))

static const char load_description[] =
    "Loads FILE (- for standard input) into a table, by default public.internships.\n"
    "CSV: RFC 4180, the header row names the columns; an empty unquoted field is NULL, \"\" is an\n"
    "empty string; an array column (skills) takes a PostgreSQL array literal such as\n"
    "{\"sql\",\"c++\"}. JSONL: one object per line, keys are columns, an array of strings fills an\n"
    "array column; a missing key leaves the column to its default. Names that are not columns of\n"
    "the table (such as field and lang from `topicflow sample`) are ignored, with one notice.\n"
    "A bad row (invalid UTF-8, wrong number of fields, malformed CSV or JSON, a missing required\n"
    "column such as title, an invalid array, a value the server refuses) is reported on stderr\n"
    "as \"line N: reason\" and skipped; with --strict the load stops there, and the rows of that\n"
    "batch are not committed (earlier batches are). A row of a tracked table whose tracked text\n"
    "is larger than --max-message loads with a warning \"line N: …\": its event would be set\n"
    "aside by the producer or dead-lettered by a worker. Prints \"loaded N rows, skipped M\" at\n"
    "the end; a progress bar goes to stderr when it is a terminal. Exit status: 0 done (even\n"
    "with some rows skipped), 1 aborted, failed or every row skipped, 2 bad arguments.";

typedef struct column {
    char *name;
    int is_array;
    int required; /* NOT NULL without a default: a row must give it */
    int tracked;  /* one of the table's tracked text columns (topicflow.tracked_tables) */
} column;

enum { CELL_ABSENT, CELL_NULL, CELL_TEXT, CELL_JSON_ARRAY };

typedef struct cell {
    int kind;
    const char *text;          /* CELL_TEXT */
    size_t len;
    const tf_json_value *array; /* CELL_JSON_ARRAY */
} cell;

typedef struct buffer {
    char *data;
    size_t len, cap;
} buffer;

typedef struct loader {
    PGconn *conn;
    char *table_name; /* schema.table, for messages */
    char *copy_sql;   /* the COPY statement of the current batch's columns */
    column *cols;
    size_t n_cols;
    int strict;
    long batch_max, max_message;

    cell *cells;          /* the row being converted, one per column */
    unsigned char *batch_cols; /* the columns the current batch's COPY lists */
    buffer rows;          /* COPY text of the batch, row after row */
    buffer scratch;       /* an array literal being built */
    size_t *row_off;
    long *row_line;
    unsigned char *row_skip;
    size_t n_rows, rows_cap;

    long loaded, skipped, first_line;
    char *ignored[MAX_IGNORED];
    size_t n_ignored;

    /* progress on a terminal */
    int progress;
    FILE *in;
    long long total_bytes;
    double last_draw, started;
} loader;

/* ---- small helpers ------------------------------------------------------------------------ */


static int buf_reserve(buffer *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 4096;
    char *p;

    if (b->len + more <= b->cap)
        return 0;
    while (cap < b->len + more)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int buf_add(buffer *b, const char *s, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* Appends s in COPY's text format: backslash, newline, carriage return and tab escaped. */
static int buf_add_copy_text(buffer *b, const char *s, size_t n)
{
    const char *end = s + n, *run;

    if (buf_reserve(b, 2 * n) < 0)
        return -1;
    while (s < end) {
        for (run = s; s < end && *s != '\\' && *s != '\n' && *s != '\r' && *s != '\t'; s++)
            ;
        memcpy(b->data + b->len, run, (size_t)(s - run));
        b->len += (size_t)(s - run);
        if (s >= end)
            break;
        b->data[b->len++] = '\\';
        b->data[b->len++] = *s == '\\' ? '\\' : *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
        s++;
    }
    return 0;
}

static void clear_progress(loader *L)
{
    if (L->progress && L->last_draw > 0)
        fputs("\r\033[K", stderr);
}

static void draw_progress(loader *L, int force)
{
    double t = tf_now(), rate;
    long long pos;
    char bar[31];
    int filled;

    if (!L->progress || (!force && t - L->last_draw < 0.2))
        return;
    L->last_draw = t;
    rate = (double)(L->loaded + (long)L->n_rows) / (t - L->started > 0.001 ? t - L->started : 0.001);
    pos = ftello(L->in);
    if (L->total_bytes > 0 && pos >= 0) {
        double f = (double)pos / (double)L->total_bytes;
        filled = (int)(f * 30 + 0.5);
        if (filled > 30)
            filled = 30;
        memset(bar, '#', (size_t)filled);
        memset(bar + filled, '.', (size_t)(30 - filled));
        bar[30] = '\0';
        fprintf(stderr, "\r[%s] %3.0f%%  %ld rows  %.0f rows/s  skipped %ld\033[K", bar, f * 100,
                L->loaded + (long)L->n_rows, rate, L->skipped);
    } else {
        fprintf(stderr, "\r%ld rows  %.0f rows/s  skipped %ld\033[K", L->loaded + (long)L->n_rows,
                rate, L->skipped);
    }
}

static void report(loader *L, long line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One bad row: "topicflow load: line N: reason" on stderr. */
static void report(loader *L, long line, const char *fmt, ...)
{
    va_list ap;

    clear_progress(L);
    fprintf(stderr, "topicflow load: line %ld: ", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    L->last_draw = 0;
}

static void note_ignored(loader *L, const char *name, size_t len)
{
    for (size_t i = 0; i < L->n_ignored; i++)
        if (strlen(L->ignored[i]) == len && memcmp(L->ignored[i], name, len) == 0)
            return;
    if (L->n_ignored == MAX_IGNORED)
        return;
    L->ignored[L->n_ignored] = strndup(name, len);
    if (!L->ignored[L->n_ignored])
        return;
    L->n_ignored++;
    clear_progress(L);
    fprintf(stderr, "topicflow load: ignoring '%.*s': %s has no such column\n", (int)len, name,
            L->table_name);
    L->last_draw = 0;
}

static int find_column(const loader *L, const char *name, size_t len)
{
    for (size_t i = 0; i < L->n_cols; i++)
        if (strlen(L->cols[i].name) == len && memcmp(L->cols[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* ---- the target table ---------------------------------------------------------------------- */

static int load_columns(loader *L, const char *table, tf_err *err)
{
    const char *params[2] = {table, NULL};
    PGresult *res;
    int rc = -1;

    res = PQexecParams(L->conn,
                       "select n.nspname, c.relname from pg_class c"
                       " join pg_namespace n on n.oid = c.relnamespace"
                       " where c.oid = $1::regclass",
                       1, NULL, params, NULL, NULL, 0);
    if (tf_pg_check(L->conn, res, PGRES_TUPLES_OK, err) < 0)
        return -1;
    if (asprintf(&L->table_name, "%s.%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) < 0)
        L->table_name = NULL;
    params[0] = PQgetvalue(res, 0, 0);
    params[1] = PQgetvalue(res, 0, 1);
    {
        /* Identity columns GENERATED ALWAYS and generated columns cannot be loaded. */
        PGresult *cols = PQexecParams(
            L->conn,
            "select column_name, data_type = 'ARRAY',"
            "       is_nullable = 'NO' and column_default is null and is_identity = 'NO',"
            "       column_name = any(coalesce((select t.text_columns from topicflow.tracked_tables t"
            "          where to_regclass(t.source) = to_regclass(format('%I.%I', $1::text, $2::text))), '{}'))"
            "  from information_schema.columns"
            " where table_schema = $1 and table_name = $2"
            "   and not (is_identity = 'YES' and identity_generation = 'ALWAYS')"
            "   and is_generated = 'NEVER'"
            " order by ordinal_position",
            2, NULL, params, NULL, NULL, 0);
        if (tf_pg_check(L->conn, cols, PGRES_TUPLES_OK, err) < 0)
            goto done;
        L->n_cols = (size_t)PQntuples(cols);
        L->cols = calloc(L->n_cols + 1, sizeof(*L->cols));
        L->cells = calloc(L->n_cols + 1, sizeof(*L->cells));
        L->batch_cols = calloc(L->n_cols + 1, 1);
        if (!L->cols || !L->cells || !L->batch_cols || !L->table_name) {
            PQclear(cols);
            tf_err_set(err, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < L->n_cols; i++) {
            L->cols[i].name = strdup(PQgetvalue(cols, (int)i, 0));
            L->cols[i].is_array = PQgetvalue(cols, (int)i, 1)[0] == 't';
            L->cols[i].required = PQgetvalue(cols, (int)i, 2)[0] == 't';
            L->cols[i].tracked = PQgetvalue(cols, (int)i, 3)[0] == 't';
            if (!L->cols[i].name) {
                PQclear(cols);
                tf_err_set(err, "out of memory");
                goto done;
            }
        }
        PQclear(cols);
    }
    if (L->n_cols == 0) {
        tf_err_set(err, "%s has no columns that can be loaded (or none you may read)",
                   L->table_name);
        goto done;
    }
    rc = 0;
done:
    PQclear(res);
    return rc;
}

/*
 * The COPY statement for the columns in L->batch_cols. COPY cannot take parameters, so this
 * is the one statement built from input: the table and column names, each quoted with
 * PQescapeIdentifier (names that came from the catalog, not from the file's data).
 */
static int build_copy_sql(loader *L, tf_err *err)
{
    buffer sql = {0};
    char *ident;
    const char *dot = strchr(L->table_name, '.');
    int first = 1;

    free(L->copy_sql);
    L->copy_sql = NULL;
    buf_add(&sql, "copy ", 5);
    ident = PQescapeIdentifier(L->conn, L->table_name, (size_t)(dot - L->table_name));
    if (!ident)
        goto fail;
    buf_add(&sql, ident, strlen(ident));
    PQfreemem(ident);
    buf_add(&sql, ".", 1);
    ident = PQescapeIdentifier(L->conn, dot + 1, strlen(dot + 1));
    if (!ident)
        goto fail;
    buf_add(&sql, ident, strlen(ident));
    PQfreemem(ident);
    buf_add(&sql, " (", 2);
    for (size_t i = 0; i < L->n_cols; i++) {
        if (!L->batch_cols[i])
            continue;
        ident = PQescapeIdentifier(L->conn, L->cols[i].name, strlen(L->cols[i].name));
        if (!ident)
            goto fail;
        if (!first)
            buf_add(&sql, ", ", 2);
        buf_add(&sql, ident, strlen(ident));
        PQfreemem(ident);
        first = 0;
    }
    buf_add(&sql, ") from stdin", 13);
    if (!sql.data)
        goto fail;
    L->copy_sql = sql.data;
    return 0;
fail:
    free(sql.data);
    return tf_err_set(err, "cannot quote a column name: %s", PQerrorMessage(L->conn));
}

/* ---- sending a batch -------------------------------------------------------------------------- */

/* The row COPY names in its error context ("COPY t, line 3, column x: ..."); -1 if none. */
static long copy_error_line(const PGresult *res)
{
    const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT), *p;
    long line;

    if (!ctx || !(p = strstr(ctx, "COPY ")) || !(p = strstr(p, ", line ")))
        return -1;
    if (sscanf(p, ", line %ld", &line) != 1)
        return -1;
    return line;
}

static int send_rows(loader *L, size_t *sent_index, size_t n_sent)
{
    for (size_t k = 0; k < n_sent; k++) {
        size_t r = sent_index[k];
        size_t end = r + 1 < L->n_rows ? L->row_off[r + 1] : L->rows.len;
        if (PQputCopyData(L->conn, L->rows.data + L->row_off[r], (int)(end - L->row_off[r])) != 1)
            return -1;
    }
    return 0;
}

/* Commits the batch; a row the server refuses is reported and the rest sent again. 0 ok,
 * -1 failure (reason in err; nothing of this batch committed). */
static int flush(loader *L, tf_err *err)
{
    size_t *sent = NULL, n_sent;
    PGresult *res = NULL;
    int rc = -1;

    if (L->n_rows == 0)
        return 0;
    sent = malloc(L->n_rows * sizeof(*sent));
    if (!sent)
        return tf_err_set(err, "out of memory");
    if (build_copy_sql(L, err) < 0)
        goto done;
    for (;;) {
        long bad;

        n_sent = 0;
        for (size_t r = 0; r < L->n_rows; r++)
            if (!L->row_skip[r])
                sent[n_sent++] = r;
        if (n_sent == 0) {
            rc = 0;
            break;
        }
        res = PQexec(L->conn, L->copy_sql);
        if (PQresultStatus(res) != PGRES_COPY_IN) {
            tf_pg_result_error(L->conn, res, err);
            goto done;
        }
        PQclear(res);
        if (send_rows(L, sent, n_sent) < 0 || PQputCopyEnd(L->conn, NULL) != 1) {
            res = NULL;
            tf_err_set(err, "sending rows: %s", PQerrorMessage(L->conn));
            goto done;
        }
        res = PQgetResult(L->conn);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            L->loaded += (long)n_sent;
            rc = 0;
            break;
        }
        bad = copy_error_line(res);
        if (bad < 1 || (size_t)bad > n_sent) {
            /* Not one row's fault (connection lost, a constraint checked at commit, ...). */
            tf_pg_result_error(L->conn, res, err);
            goto done;
        }
        {
            const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
            report(L, L->row_line[sent[bad - 1]], "%s", msg ? msg : "refused by the server");
        }
        if (L->strict) {
            tf_err_set(err, "aborted at line %ld (--strict); the batch from line %ld is not committed",
                       L->row_line[sent[bad - 1]], L->row_line[0]);
            goto done;
        }
        L->row_skip[sent[bad - 1]] = 1;
        L->skipped++;
        PQclear(res);
        while ((res = PQgetResult(L->conn)))
            PQclear(res);
    }
done:
    PQclear(res);
    while ((res = PQgetResult(L->conn)))
        PQclear(res);
    free(sent);
    L->n_rows = 0;
    L->rows.len = 0;
    return rc;
}

/* ---- converting a row ------------------------------------------------------------------------- */

/* 1 when s is a plausible one-dimensional array literal ({}, {a,"b c",NULL}, nested braces);
 * the server has the last word, this only keeps obvious mistakes from costing a retry. */
static int array_literal_ok(const char *s, size_t n)
{
    size_t i = 0;
    int depth = 0;

    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'))
        i++;
    if (i < n && s[i] == '[')
        return 1; /* explicit bounds: leave it to the server */
    if (i >= n || s[i] != '{')
        return 0;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '{') {
            depth++;
        } else if (c == '}') {
            if (--depth == 0)
                break;
        } else if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            if (i >= n)
                return 0;
        } else if (c == '\\') {
            i++;
        }
    }
    if (i >= n || depth != 0)
        return 0;
    for (i++; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n')
            return 0;
    return 1;
}

/* {"a","b",NULL} from a JSON array, into L->scratch. */
static int json_array_literal(loader *L, const tf_json_value *v)
{
    buffer *b = &L->scratch;

    b->len = 0;
    if (buf_add(b, "{", 1) < 0)
        return -1;
    for (size_t i = 0; i < v->n_items; i++) {
        const char *s = v->items[i];
        if (i && buf_add(b, ",", 1) < 0)
            return -1;
        if (!s) {
            if (buf_add(b, "NULL", 4) < 0)
                return -1;
            continue;
        }
        if (buf_add(b, "\"", 1) < 0)
            return -1;
        for (size_t k = 0; k < v->item_lens[i]; k++) {
            if ((s[k] == '"' || s[k] == '\\') && buf_add(b, "\\", 1) < 0)
                return -1;
            if (buf_add(b, s + k, 1) < 0)
                return -1;
        }
        if (buf_add(b, "\"", 1) < 0)
            return -1;
    }
    return buf_add(b, "}", 1);
}

/*
 * Checks L->cells against the table and appends the row to the batch (sending the batch
 * first when this row lists other columns). 0 added, 1 bad row (reported; fatal with
 * --strict: then -1), -1 failure.
 */
static int add_row(loader *L, long line, tf_err *err)
{
    const char *why = NULL, *col = NULL;
    size_t start, n_present = 0, tracked_bytes = 0;
    int same = 1;

    for (size_t i = 0; i < L->n_cols && !why; i++) {
        const cell *c = &L->cells[i];
        col = L->cols[i].name;
        if (c->kind == CELL_ABSENT || c->kind == CELL_NULL) {
            if (L->cols[i].required)
                why = "missing required column";
            continue;
        }
        if (c->kind == CELL_JSON_ARRAY) {
            if (!L->cols[i].is_array)
                why = "an array is given for a column that is not an array:";
            for (size_t k = 0; !why && k < c->array->n_items; k++)
                if (c->array->items[k] && memchr(c->array->items[k], '\0', c->array->item_lens[k]))
                    why = "a NUL byte (\\u0000) in column";
            continue;
        }
        if (memchr(c->text, '\0', c->len))
            why = "a NUL byte (\\u0000) in column";
        else if (tf_utf8_check(c->text, c->len) < c->len)
            why = "invalid UTF-8 in column";
        else if (L->cols[i].is_array && !array_literal_ok(c->text, c->len))
            why = "invalid array literal (expected {\"a\",\"b\"}) in column";
    }
    if (why) {
        report(L, line, "%s %s", why, col);
        if (L->strict)
            return tf_err_set(err, "aborted at line %ld (--strict); the batch from line %ld is "
                                   "not committed",
                              line, L->n_rows ? L->row_line[0] : line);
        L->skipped++;
        return 1;
    }
    for (size_t i = 0; i < L->n_cols; i++) {
        int present = L->cells[i].kind != CELL_ABSENT;
        n_present += (size_t)present;
        same &= present == L->batch_cols[i];
    }
    if (n_present == 0) {
        report(L, line, "no column of %s in this row", L->table_name);
        if (L->strict)
            return tf_err_set(err, "aborted at line %ld (--strict)", line);
        L->skipped++;
        return 1;
    }
    /* One COPY lists one set of columns: a row with another set starts a new batch. */
    if (!same || L->n_rows >= (size_t)L->batch_max || L->rows.len > (size_t)MAX_BATCH_BYTES) {
        if (flush(L, err) < 0)
            return -1;
        for (size_t i = 0; i < L->n_cols; i++)
            L->batch_cols[i] = L->cells[i].kind != CELL_ABSENT;
    }
    if (L->n_rows == L->rows_cap) {
        size_t cap = L->rows_cap ? 2 * L->rows_cap : 1024;
        size_t *off = realloc(L->row_off, cap * sizeof(*off));
        long *ln = off ? realloc(L->row_line, cap * sizeof(*ln)) : NULL;
        unsigned char *skip = ln ? realloc(L->row_skip, cap) : NULL;
        if (off)
            L->row_off = off;
        if (ln)
            L->row_line = ln;
        if (!skip)
            return tf_err_set(err, "out of memory");
        L->row_skip = skip;
        L->rows_cap = cap;
    }
    start = L->rows.len;
    for (size_t i = 0, k = 0; i < L->n_cols; i++) {
        const cell *c = &L->cells[i];
        size_t len = 0;
        int rc = 0;
        if (c->kind == CELL_ABSENT)
            continue;
        if (k++ && buf_add(&L->rows, "\t", 1) < 0)
            rc = -1;
        if (c->kind == CELL_NULL) {
            rc |= buf_add(&L->rows, "\\N", 2);
        } else if (c->kind == CELL_TEXT) {
            rc |= buf_add_copy_text(&L->rows, c->text, c->len);
            len = c->len;
        } else if (json_array_literal(L, c->array) < 0) {
            rc = -1;
        } else {
            rc |= buf_add_copy_text(&L->rows, L->scratch.data, L->scratch.len);
            len = L->scratch.len;
        }
        if (rc < 0)
            return tf_err_set(err, "out of memory");
        if (L->cols[i].tracked)
            tracked_bytes += len;
    }
    /* The event carries the tracked text and more: this much text alone is already too much. */
    if (tracked_bytes > (size_t)L->max_message) {
        char limit[32];
        report(L, line, "%zu bytes of tracked text, more than a worker's --max-message (%s): the "
               "row loads, but its event will be set aside or dead-lettered, never processed",
               tracked_bytes, tf_format_size(L->max_message, limit, sizeof(limit)));
    }
    if (buf_add(&L->rows, "\n", 1) < 0)
        return tf_err_set(err, "out of memory");
    L->row_off[L->n_rows] = start;
    L->row_line[L->n_rows] = line;
    L->row_skip[L->n_rows] = 0;
    L->n_rows++;
    return 0;
}

static void reset_cells(loader *L)
{
    memset(L->cells, 0, L->n_cols * sizeof(*L->cells));
}

/* ---- JSONL --------------------------------------------------------------------------------------- */

static int load_jsonl(loader *L, FILE *in, tf_err *err)
{
    jsonl_reader r;
    tf_json_object *obj;
    long line_no;
    int rc = -1, st;
    tf_err why;

    if (jsonl_reader_init(&r, in, err) < 0)
        goto done;
    obj = r.obj;
    while ((st = jsonl_read(&r, &why)) != JSONL_EOF) {
        line_no = r.line_no;
        if (st == JSONL_BAD) {
            report(L, line_no, "invalid JSON: %s", why.msg);
            if (L->strict) {
                tf_err_set(err, "aborted at line %ld (--strict)", line_no);
                goto done;
            }
            L->skipped++;
            continue;
        }
        reset_cells(L);
        for (size_t i = 0; i < tf_json_count(obj); i++) {
            const tf_json_member *m = tf_json_member_at(obj, i);
            int col = find_column(L, m->key, m->key_len);
            cell *c;
            if (col < 0) {
                note_ignored(L, m->key, m->key_len);
                continue;
            }
            c = &L->cells[col];
            switch (m->value.kind) {
            case TF_JSON_NULL:
                c->kind = CELL_NULL;
                break;
            case TF_JSON_BOOL:
                c->kind = CELL_TEXT;
                c->text = m->value.boolean ? "true" : "false";
                c->len = strlen(c->text);
                break;
            case TF_JSON_NUMBER:
            case TF_JSON_STRING:
                c->kind = CELL_TEXT;
                c->text = m->value.text;
                c->len = m->value.len;
                break;
            case TF_JSON_ARRAY:
                c->kind = CELL_JSON_ARRAY;
                c->array = &m->value;
                break;
            case TF_JSON_RAW:
                c->kind = CELL_TEXT;
                c->text = m->value.text;
                c->len = m->value.len;
                if (L->cols[col].is_array) {
                    report(L, line_no, "invalid array in column %s (only strings and nulls)",
                           L->cols[col].name);
                    goto bad;
                }
                break;
            }
        }
        if (add_row(L, line_no, err) < 0)
            goto done;
        draw_progress(L, 0);
        continue;
    bad:
        if (L->strict) {
            tf_err_set(err, "aborted at line %ld (--strict)", line_no);
            goto done;
        }
        L->skipped++;
    }
    if (ferror(in)) {
        tf_err_set(err, "reading the input: %s", strerror(errno));
        goto done;
    }
    rc = flush(L, err);
done:
    jsonl_reader_free(&r);
    return rc;
}

/* ---- CSV ------------------------------------------------------------------------------------------ */

static int load_csv(loader *L, FILE *in, tf_err *err)
{
    csv_reader r;
    int *map = NULL, rc = -1, st;
    size_t n_header = 0;
    const char *why = NULL;
    long line = 0;

    csv_reader_init(&r, in);
    st = csv_read(&r, &line, &why);
    if (st == CSV_EOF) {
        rc = 0; /* an empty file loads nothing */
        goto done;
    }
    if (st != CSV_RECORD) {
        tf_err_set(err, "line %ld: the header row is malformed: %s", line,
                   st == CSV_NOMEM ? "out of memory" : why);
        goto done;
    }
    n_header = r.n_fields;
    map = malloc(n_header * sizeof(*map));
    if (!map) {
        tf_err_set(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_header; i++) {
        map[i] = find_column(L, r.rec.p + r.off[i], r.len[i]);
        for (size_t k = 0; k < i && map[i] >= 0; k++)
            if (map[k] == map[i]) {
                tf_err_set(err, "line %ld: the header names column %s twice", line,
                           L->cols[map[i]].name);
                goto done;
            }
        if (map[i] < 0)
            note_ignored(L, r.rec.p + r.off[i], r.len[i]);
    }
    for (size_t c = 0; c < L->n_cols; c++) {
        int named = 0;
        for (size_t i = 0; i < n_header; i++)
            named |= map[i] == (int)c;
        if (L->cols[c].required && !named) {
            tf_err_set(err, "line %ld: the header has no column %s, which %s requires", line,
                       L->cols[c].name, L->table_name);
            goto done;
        }
    }
    for (;;) {
        st = csv_read(&r, &line, &why);
        if (st == CSV_EOF)
            break;
        if (st == CSV_NOMEM) {
            tf_err_set(err, "out of memory");
            goto done;
        }
        if (st == CSV_RECORD && r.n_fields == 1 && r.len[0] == 0 && !r.quoted[0])
            continue; /* an empty line */
        if (st == CSV_RECORD && r.n_fields != n_header) {
            why = NULL;
            report(L, line, "%zu fields, the header has %zu", r.n_fields, n_header);
        } else if (st == CSV_BAD) {
            report(L, line, "malformed CSV: %s", why);
        }
        if (st == CSV_BAD || r.n_fields != n_header) {
            if (L->strict) {
                tf_err_set(err, "aborted at line %ld (--strict); the batch from line %ld is not "
                                "committed",
                           line, L->n_rows ? L->row_line[0] : line);
                goto done;
            }
            L->skipped++;
            continue;
        }
        reset_cells(L);
        for (size_t i = 0; i < n_header; i++) {
            cell *c;
            if (map[i] < 0)
                continue;
            c = &L->cells[map[i]];
            if (r.len[i] == 0 && !r.quoted[i]) {
                c->kind = CELL_NULL;
            } else {
                c->kind = CELL_TEXT;
                c->text = r.rec.p + r.off[i];
                c->len = r.len[i];
            }
        }
        if (add_row(L, line, err) < 0)
            goto done;
        draw_progress(L, 0);
    }
    if (ferror(in)) {
        tf_err_set(err, "reading the input: %s", strerror(errno));
        goto done;
    }
    rc = flush(L, err);
done:
    free(map);
    csv_reader_free(&r);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* csv or jsonl from the name, else from the first byte ('{' means JSONL), which is put back. */
static int detect_csv(const char *path, FILE *in)
{
    int c;

    if (has_suffix(path, ".csv"))
        return 1;
    if (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson") || has_suffix(path, ".json"))
        return 0;
    c = getc(in);
    if (c != EOF)
        ungetc(c, in);
    return c != '{';
}

static void loader_free(loader *L)
{
    for (size_t i = 0; i < L->n_cols; i++)
        free(L->cols[i].name);
    for (size_t i = 0; i < L->n_ignored; i++)
        free(L->ignored[i]);
    free(L->cols);
    free(L->cells);
    free(L->batch_cols);
    free(L->rows.data);
    free(L->scratch.data);
    free(L->row_off);
    free(L->row_line);
    free(L->row_skip);
    free(L->table_name);
    free(L->copy_sql);
    PQfinish(L->conn);
}

int cli_load(int argc, char **argv)
{
    load_config cfg;
    loader L = {0};
    FILE *in = NULL;
    const char *path;
    struct stat st;
    tf_err err;
    int first, rc, csv;

    rc = cli_parse("load", "topicflow load FILE [options]", load_description, load_options,
                   N_LOAD_OPTIONS, &cfg, argc, argv, &first);
    if (rc != CLI_CONTINUE)
        return rc;
    if (first >= argc)
        return cli_error("load", CLI_USAGE, "FILE is required (- for standard input)");
    if (argc - first > 1)
        return cli_error("load", CLI_USAGE, "unexpected argument '%s'", argv[first + 1]);
    if (cfg.format && strcmp(cfg.format, "csv") != 0 && strcmp(cfg.format, "jsonl") != 0)
        return cli_error("load", CLI_USAGE, "--format must be csv or jsonl, not '%s'", cfg.format);
    path = argv[first];
    in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!in)
        return cli_error("load", CLI_FAIL, "%s: %s", path, strerror(errno));
    csv = cfg.format ? cfg.format[0] == 'c' : detect_csv(path, in);

    rc = CLI_FAIL;
    L.strict = cfg.strict;
    L.batch_max = cfg.batch;
    L.max_message = cfg.max_message;
    L.in = in;
    L.started = tf_now();
    L.progress = isatty(STDERR_FILENO);
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
        L.total_bytes = (long long)st.st_size;
    L.conn = tf_migrate_connect(cfg.pg_url, "topicflow-load", &err);
    if (!L.conn || load_columns(&L, cfg.table, &err) < 0)
        goto fail;
    if ((csv ? load_csv(&L, in, &err) : load_jsonl(&L, in, &err)) < 0)
        goto fail;
    draw_progress(&L, 1);
    clear_progress(&L);
    printf("loaded %ld row%s, skipped %ld\n", L.loaded, L.loaded == 1 ? "" : "s", L.skipped);
    rc = L.loaded == 0 && L.skipped > 0
             ? cli_error("load", CLI_FAIL, "every row was skipped: nothing loaded")
             : CLI_OK;
    goto done;
fail:
    clear_progress(&L);
    if (L.loaded > 0)
        cli_error("load", CLI_FAIL, "%s; %ld row%s of earlier batches stay%s loaded", err.msg, L.loaded,
                  L.loaded == 1 ? "" : "s", L.loaded == 1 ? "s" : "");
    else
        cli_error("load", CLI_FAIL, "%s", err.msg);
done:
    if (in && in != stdin)
        fclose(in);
    loader_free(&L);
    return rc;
}
