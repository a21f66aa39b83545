/*
 * sample.c - the synthetic posting generator. Templates are compiled once into token lists
 * (text, {slot}, {@bound}, {a|b} alternatives) and every {slot} is resolved per field and
 * language at load time, so a loaded generator cannot meet an unknown slot or a cycle and
 * generation is a walk over arrays with one reused byte arena. Format: data/sample/README.md.
 */
#include "sample/generator.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "base/rng.h"
#include "base/utf8.h"
#include "wire/json.h"

#define COMMON UINT32_MAX /* owner of the sections of common.txt */
#define MAX_FIELDS 64
#define MAX_ATTEMPTS 16

enum { LANG_EN, LANG_AR, LANG_ANY };
enum tok_kind { TOK_TEXT, TOK_SLOT, TOK_BOUND, TOK_ALT };

/* Values fixed for the whole posting, usable in sentences as {@name}. */
enum bound { B_COMPANY, B_LOCATION, B_CITY, B_TITLE, B_SKILL, B_TASK, B_REQ, B_COUNT };
static const char *const bound_names[B_COUNT] = {
    "company", "location", "city", "title", "skill", "task", "req",
};

/* Section names the generator itself asks for; interned first so that id == enum value. */
enum known {
    K_TITLE, K_COMPANY, K_CITY, K_SKILL, K_TASK, K_REQ, K_ABOUT, K_INTRO, K_TASK_HEAD,
    K_REQ_HEAD, K_TASK_LEAD, K_REQ_LEAD, K_GENERIC, K_CLOSING, K_COUNT
};
static const char *const known_names[K_COUNT] = {
    "title", "company", "city", "skill", "task", "req", "about", "intro", "task_head",
    "req_head", "task_lead", "req_lead", "generic", "closing",
};
/* Smallest entry counts that let the generator draw distinct sentences and skills. */
static const unsigned known_min[K_COUNT] = {
    [K_TITLE] = 1, [K_COMPANY] = 1, [K_CITY] = 1, [K_SKILL] = 6, [K_TASK] = 5, [K_REQ] = 4,
    [K_INTRO] = 1, [K_TASK_HEAD] = 1, [K_REQ_HEAD] = 1, [K_TASK_LEAD] = 1, [K_REQ_LEAD] = 1,
    [K_GENERIC] = 8, [K_CLOSING] = 1,
};

/* TEXT: a = pool offset, b = length. SLOT: a = name id. BOUND: a = enum bound.
 * ALT: a = number of alternatives, which are the next a TEXT tokens. */
struct tok {
    uint32_t kind, a, b;
};

struct entry {
    uint32_t tok, ntok, file, line;
};

struct section {
    uint32_t name, lang, owner, first, count, file, line;
};

struct tf_sample {
    char *pool;
    size_t pool_len, pool_cap;
    struct tok *toks;
    size_t n_toks, cap_toks;
    struct entry *entries;
    size_t n_entries, cap_entries;
    struct section *secs;
    size_t n_secs, cap_secs;
    char **names;
    size_t n_names, cap_names;
    char **files;
    size_t n_files, cap_files;
    char *fields[MAX_FIELDS];
    size_t n_fields;
    int32_t *resolve; /* [field][lang EN/AR][name] -> section index, or -1 */
    uint32_t *scratch; /* index permutation for distinct draws; size = largest section */
    size_t scratch_cap;
    char *buf; /* per-posting arena: every string of the last posting lives here */
    size_t len, cap;
};

struct piece {
    size_t off, len;
};

/* Pieces of one description, in reading order. */
struct layout {
    bool bullets, has_about;
    struct piece intro, about, task_head, req_head, closing;
    struct piece tasks[6], reqs[4], generic[64];
    size_t n_tasks, n_reqs, n_generic;
};

/* Generation state of one posting. */
struct gen {
    tf_sample *s;
    uint64_t *rng;
    uint32_t lang;
    size_t field;
    struct piece bound[B_COUNT];
    bool bound_set[B_COUNT];
    struct piece skills[TF_SAMPLE_MAX_SKILLS];
    size_t n_skills;
    size_t cur_field; /* field context and entry that {@task} / {@req} expand */
    uint32_t cur_entry;
};

/* ---- small helpers ---- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static bool valid_name(const char *p, size_t n)
{
    size_t i;

    if (n == 0)
        return false;
    for (i = 0; i < n; i++)
        if (!name_char(p[i]))
            return false;
    return true;
}

/* ---- loading ---- */

static int32_t intern(tf_sample *s, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < s->n_names; i++)
        if (strlen(s->names[i]) == n && memcmp(s->names[i], p, n) == 0)
            return (int32_t)i;
    if (tf_grow((void **)&s->names, &s->cap_names, s->n_names + 1, sizeof(*s->names)))
        return -1;
    s->names[s->n_names] = strndup(p, n);
    if (!s->names[s->n_names])
        return -1;
    return (int32_t)s->n_names++;
}

static int add_tok(tf_sample *s, uint32_t kind, uint32_t a, uint32_t b)
{
    if (tf_grow((void **)&s->toks, &s->cap_toks, s->n_toks + 1, sizeof(*s->toks)))
        return -1;
    s->toks[s->n_toks++] = (struct tok){ kind, a, b };
    return 0;
}

static int add_text(tf_sample *s, const char *p, size_t n)
{
    size_t off = s->pool_len;

    if (tf_grow((void **)&s->pool, &s->pool_cap, s->pool_len + n + 1, 1))
        return -1;
    memcpy(s->pool + off, p, n);
    s->pool_len += n;
    return add_tok(s, TOK_TEXT, (uint32_t)off, (uint32_t)n);
}

static bool in_list(const char *name, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* Which {@bound} a section may use: the values are filled in a fixed order (location,
 * company, title, skills), so the sections producing them must not refer to them. */
static const char *bound_misuse(const char *section, uint32_t b)
{
    static const char *const value_sections[] = { "title", "company", "city", "skill" };

    if (in_list(section, value_sections, 4))
        return "is not allowed in the sections that produce a posting's title, company, "
               "city or skills";
    if (b == B_TASK && strcmp(section, "task_lead") != 0)
        return "is only allowed in [task_lead]";
    if (b == B_REQ && strcmp(section, "req_lead") != 0)
        return "is only allowed in [req_lead]";
    return NULL;
}

/* Compile one template line into tokens. */
static int parse_entry(tf_sample *s, const char *p, size_t n, const char *section,
                       const char *where, tf_err *err)
{
    size_t i = 0, lit = 0, j, k, start;
    const char *inner, *why;
    size_t inner_n;
    uint32_t b, alts;
    int32_t id;

    while (i < n) {
        if (p[i] == '}')
            return tf_err_set(err, "%s: '}' without '{' at column %zu", where, i + 1);
        if (p[i] != '{') {
            i++;
            continue;
        }
        if (i > lit && add_text(s, p + lit, i - lit))
            goto oom;
        for (j = i + 1; j < n && p[j] != '}'; j++)
            if (p[j] == '{')
                return tf_err_set(err, "%s: '{' inside braces at column %zu", where, j + 1);
        if (j == n)
            return tf_err_set(err, "%s: '{' at column %zu is never closed", where, i + 1);
        inner = p + i + 1;
        inner_n = j - i - 1;
        if (inner_n > 0 && inner[0] == '@') {
            for (b = 0; b < B_COUNT; b++)
                if (strlen(bound_names[b]) == inner_n - 1 &&
                    memcmp(bound_names[b], inner + 1, inner_n - 1) == 0)
                    break;
            if (b == B_COUNT)
                return tf_err_set(err, "%s: unknown value {%.*s} (known: @company @location "
                                  "@city @title @skill @task @req)", where, (int)inner_n, inner);
            why = bound_misuse(section, b);
            if (why)
                return tf_err_set(err, "%s: {@%s} %s", where, bound_names[b], why);
            if (add_tok(s, TOK_BOUND, b, 0))
                goto oom;
        } else if (memchr(inner, '|', inner_n)) {
            alts = 1;
            for (k = 0; k < inner_n; k++)
                alts += inner[k] == '|';
            if (add_tok(s, TOK_ALT, alts, 0))
                goto oom;
            start = 0;
            for (k = 0; k <= inner_n; k++) {
                if (k < inner_n && inner[k] != '|')
                    continue;
                if (add_text(s, inner + start, k - start))
                    goto oom;
                start = k + 1;
            }
        } else {
            if (!valid_name(inner, inner_n))
                return tf_err_set(err, "%s: bad slot name {%.*s} (use a-z, 0-9, _)", where,
                                  (int)inner_n, inner);
            id = intern(s, inner, inner_n);
            if (id < 0)
                goto oom;
            if (add_tok(s, TOK_SLOT, (uint32_t)id, 0))
                goto oom;
        }
        i = lit = j + 1;
    }
    if (n > lit && add_text(s, p + lit, n - lit))
        goto oom;
    return 0;
oom:
    return tf_err_set(err, "%s: out of memory", where);
}

/* Trim the line (*out, *out_n) and reject what no template may contain. */
static int clean_line(char *line, size_t n, char **out, size_t *out_n, const char *where,
                      tf_err *err)
{
    char *p = line;
    size_t i;

    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
                     line[n - 1] == '\t'))
        n--;
    while (n > 0 && (*p == ' ' || *p == '\t'))
        p++, n--;
    for (i = 0; i < n; i++)
        if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
            return tf_err_set(err, "%s: control character at column %zu", where, i + 1);
    i = tf_utf8_check(p, n);
    if (i < n)
        return tf_err_set(err, "%s: invalid UTF-8 at byte %zu", where, i + 1);
    *out = p;
    *out_n = n;
    return 0;
}

static int add_file(tf_sample *s, const char *path)
{
    if (tf_grow((void **)&s->files, &s->cap_files, s->n_files + 1, sizeof(*s->files)))
        return -1;
    s->files[s->n_files] = strdup(path);
    return s->files[s->n_files] ? (int)s->n_files++ : -1;
}

static int open_section(tf_sample *s, const char *p, size_t n, uint32_t owner,
                        uint32_t file, unsigned lineno, const char *where, tf_err *err)
{
    uint32_t lang = LANG_ANY;
    int32_t id;
    size_t i;

    if (n < 3 || p[n - 1] != ']')
        return tf_err_set(err, "%s: a section header is written [name] or [en.name]", where);
    p++, n -= 2;
    if (n > 3 && (memcmp(p, "en.", 3) == 0 || memcmp(p, "ar.", 3) == 0)) {
        lang = p[0] == 'e' ? LANG_EN : LANG_AR;
        p += 3, n -= 3;
    }
    if (!valid_name(p, n))
        return tf_err_set(err, "%s: bad section name [%.*s] (use a-z, 0-9, _ after an "
                          "optional en. or ar.)", where, (int)n, p);
    id = intern(s, p, n);
    if (id < 0)
        return tf_err_set(err, "%s: out of memory", where);
    for (i = 0; i < s->n_secs; i++)
        if (s->secs[i].owner == owner && s->secs[i].name == (uint32_t)id &&
            s->secs[i].lang == lang)
            return tf_err_set(err, "%s: section [%.*s] already appears at line %u", where,
                              (int)(n + (lang == LANG_ANY ? 0 : 3)),
                              p - (lang == LANG_ANY ? 0 : 3), s->secs[i].line);
    if (tf_grow((void **)&s->secs, &s->cap_secs, s->n_secs + 1, sizeof(*s->secs)))
        return tf_err_set(err, "%s: out of memory", where);
    s->secs[s->n_secs++] = (struct section){ (uint32_t)id, lang, owner, (uint32_t)s->n_entries,
                                             0, file, lineno };
    return 0;
}

/* Read a template file (owner = field index or COMMON), or, with list != NULL, the field
 * list fields.list, whose lines are field ids. */
static int load_file(tf_sample *s, const char *path, uint32_t owner, bool list, tf_err *err)
{
    FILE *f = NULL;
    char *line = NULL, *p = NULL, where[1200];
    size_t cap = 0, n = 0, i;
    ssize_t got;
    unsigned lineno = 0;
    int file, rc = -1;
    struct section *cur = NULL;

    f = fopen(path, "r");
    if (!f) {
        tf_err_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    file = add_file(s, path);
    if (file < 0) {
        tf_err_set(err, "%s: out of memory", path);
        goto fail;
    }
    while ((got = getline(&line, &cap, f)) != -1) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", path, lineno);
        if (clean_line(line, (size_t)got, &p, &n, where, err))
            goto fail;
        if (n == 0 || p[0] == '#')
            continue;
        if (list) {
            if (!valid_name(p, n)) {
                tf_err_set(err, "%s: bad field id '%.*s' (use a-z, 0-9, _)", where, (int)n, p);
                goto fail;
            }
            for (i = 0; i < s->n_fields; i++)
                if (strlen(s->fields[i]) == n && memcmp(s->fields[i], p, n) == 0)
                    break;
            if (i < s->n_fields || s->n_fields == MAX_FIELDS) {
                tf_err_set(err, "%s: %s", where, i < s->n_fields ? "field listed twice"
                                                                   : "too many fields");
                goto fail;
            }
            s->fields[s->n_fields] = strndup(p, n);
            if (!s->fields[s->n_fields++]) {
                tf_err_set(err, "%s: out of memory", where);
                goto fail;
            }
            continue;
        }
        if (p[0] == '[') {
            if (open_section(s, p, n, owner, (uint32_t)file, lineno, where, err))
                goto fail;
            cur = &s->secs[s->n_secs - 1];
            continue;
        }
        if (!cur) {
            tf_err_set(err, "%s: text before the first [section] header", where);
            goto fail;
        }
        if (tf_grow((void **)&s->entries, &s->cap_entries, s->n_entries + 1, sizeof(*s->entries))) {
            tf_err_set(err, "%s: out of memory", where);
            goto fail;
        }
        s->entries[s->n_entries] = (struct entry){ (uint32_t)s->n_toks, 0, (uint32_t)file,
                                                   lineno };
        if (parse_entry(s, p, n, s->names[cur->name], where, err))
            goto fail;
        s->entries[s->n_entries].ntok = (uint32_t)(s->n_toks - s->entries[s->n_entries].tok);
        s->n_entries++;
        cur->count++;
    }
    if (ferror(f)) {
        tf_err_set(err, "%s: %s", path, strerror(errno));
        goto fail;
    }
    for (i = 0; i < s->n_secs; i++)
        if (s->secs[i].file == (uint32_t)file && s->secs[i].count == 0) {
            tf_err_set(err, "%s:%u: section [%s] has no entries", path, s->secs[i].line,
                       s->names[s->secs[i].name]);
            goto fail;
        }
    if (list && s->n_fields == 0) {
        tf_err_set(err, "%s: lists no field", path);
        goto fail;
    }
    rc = 0;
fail:
    free(line);
    if (f)
        fclose(f);
    return rc;
}

static int32_t find_section(const tf_sample *s, uint32_t owner, uint32_t lang, uint32_t name)
{
    size_t i;

    for (i = 0; i < s->n_secs; i++)
        if (s->secs[i].owner == owner && s->secs[i].lang == lang && s->secs[i].name == name)
            return (int32_t)i;
    return -1;
}

static int32_t *resolve_slot(const tf_sample *s, size_t field, uint32_t lang, uint32_t name)
{
    return &s->resolve[(field * 2 + lang) * s->n_names + name];
}

/* Most specific first: the field's own language, the field's shared, then the same in
 * common.txt. This is what lets a field override e.g. [en.company]. */
static int build_resolve(tf_sample *s, tf_err *err)
{
    size_t f, n;
    uint32_t l;
    int32_t r;

    s->resolve = malloc(s->n_fields * 2 * s->n_names * sizeof(*s->resolve));
    if (!s->resolve)
        return tf_err_set(err, "out of memory");
    for (f = 0; f < s->n_fields; f++)
        for (l = 0; l < 2; l++)
            for (n = 0; n < s->n_names; n++) {
                r = find_section(s, (uint32_t)f, l, (uint32_t)n);
                if (r < 0)
                    r = find_section(s, (uint32_t)f, LANG_ANY, (uint32_t)n);
                if (r < 0)
                    r = find_section(s, COMMON, l, (uint32_t)n);
                if (r < 0)
                    r = find_section(s, COMMON, LANG_ANY, (uint32_t)n);
                *resolve_slot(s, f, l, (uint32_t)n) = r;
            }
    return 0;
}

static bool usable(const struct section *sec, size_t field, uint32_t lang)
{
    return (sec->owner == COMMON || sec->owner == field) &&
           (sec->lang == lang || sec->lang == LANG_ANY);
}

/* Depth-first walk of the slot graph from sec; colour 1 = on the current path. */
static int check_cycles(const tf_sample *s, size_t field, uint32_t lang, size_t sec,
                        unsigned char *colour, tf_err *err)
{
    const struct section *sc = &s->secs[sec];
    const struct entry *e;
    uint32_t i, t;
    int32_t to;

    colour[sec] = 1;
    for (i = sc->first; i < sc->first + sc->count; i++) {
        e = &s->entries[i];
        for (t = e->tok; t < e->tok + e->ntok; t++) {
            if (s->toks[t].kind != TOK_SLOT)
                continue;
            to = *resolve_slot(s, field, lang, s->toks[t].a);
            if (colour[to] == 1)
                return tf_err_set(err, "%s:%u: {%s} leads back to itself (field %s, %s)",
                                  s->files[e->file], e->line, s->names[s->toks[t].a],
                                  s->fields[field], lang == LANG_EN ? "en" : "ar");
            if (colour[to] == 0 && check_cycles(s, field, lang, (size_t)to, colour, err))
                return -1;
        }
    }
    colour[sec] = 2;
    return 0;
}

static const char *field_path(const tf_sample *s, size_t field)
{
    size_t i;

    /* files[0] is fields.list, files[1] common.txt, then one per field in order */
    i = 2 + field;
    return i < s->n_files ? s->files[i] : "?";
}

static int validate(tf_sample *s, tf_err *err)
{
    unsigned char *colour = NULL;
    size_t f, i, biggest = 0;
    uint32_t l, k, t;
    const struct entry *e;
    const char *ln;
    int32_t r;
    int rc = -1;

    colour = malloc(s->n_secs);
    if (!colour) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    for (f = 0; f < s->n_fields; f++)
        for (l = 0; l < 2; l++) {
            ln = l == LANG_EN ? "en" : "ar";
            for (k = 0; k < K_COUNT; k++) {
                r = *resolve_slot(s, f, l, k);
                if (r < 0 && k != K_ABOUT) {
                    tf_err_set(err, "%s: field %s has no [%s.%s] section here or in "
                               "common.txt", field_path(s, f), s->fields[f], ln, known_names[k]);
                    goto fail;
                }
                if (r >= 0 && s->secs[r].count < known_min[k]) {
                    tf_err_set(err, "%s:%u: [%s] needs at least %u entries, has %u",
                               s->files[s->secs[r].file], s->secs[r].line, known_names[k],
                               known_min[k], s->secs[r].count);
                    goto fail;
                }
            }
            for (i = 0; i < s->n_secs; i++) {
                if (!usable(&s->secs[i], f, l))
                    continue;
                for (e = &s->entries[s->secs[i].first];
                     e < &s->entries[s->secs[i].first + s->secs[i].count]; e++)
                    for (t = e->tok; t < e->tok + e->ntok; t++)
                        if (s->toks[t].kind == TOK_SLOT &&
                            *resolve_slot(s, f, l, s->toks[t].a) < 0) {
                            tf_err_set(err, "%s:%u: {%s} has no [%s.%s] or [%s] section for "
                                       "field %s", s->files[e->file], e->line,
                                       s->names[s->toks[t].a], ln, s->names[s->toks[t].a],
                                       s->names[s->toks[t].a], s->fields[f]);
                            goto fail;
                        }
            }
            memset(colour, 0, s->n_secs);
            for (i = 0; i < s->n_secs; i++)
                if (usable(&s->secs[i], f, l) && colour[i] == 0 &&
                    check_cycles(s, f, l, i, colour, err))
                    goto fail;
        }
    for (i = 0; i < s->n_secs; i++)
        if (s->secs[i].count > biggest)
            biggest = s->secs[i].count;
    s->scratch = malloc(biggest * sizeof(*s->scratch));
    if (!s->scratch) {
        tf_err_set(err, "out of memory");
        goto fail;
    }
    s->scratch_cap = biggest;
    rc = 0;
fail:
    free(colour);
    return rc;
}

tf_sample *tf_sample_new(const char *data_dir, tf_err *err)
{
    tf_sample *s;
    char path[1024];
    size_t f, k;

    s = calloc(1, sizeof(*s));
    if (!s) {
        tf_err_set(err, "out of memory");
        return NULL;
    }
    for (k = 0; k < K_COUNT; k++)
        if (intern(s, known_names[k], strlen(known_names[k])) < 0) {
            tf_err_set(err, "out of memory");
            goto fail;
        }
    snprintf(path, sizeof(path), "%s/sample/fields.list", data_dir);
    if (load_file(s, path, COMMON, true, err))
        goto fail;
    snprintf(path, sizeof(path), "%s/sample/common.txt", data_dir);
    if (load_file(s, path, COMMON, false, err))
        goto fail;
    for (f = 0; f < s->n_fields; f++) {
        snprintf(path, sizeof(path), "%s/sample/fields/%s.txt", data_dir, s->fields[f]);
        if (load_file(s, path, (uint32_t)f, false, err))
            goto fail;
    }
    if (build_resolve(s, err) || validate(s, err))
        goto fail;
    return s;
fail:
    tf_sample_free(s);
    return NULL;
}

void tf_sample_free(tf_sample *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < s->n_names; i++)
        free(s->names[i]);
    for (i = 0; i < s->n_files; i++)
        free(s->files[i]);
    for (i = 0; i < s->n_fields; i++)
        free(s->fields[i]);
    free(s->names);
    free(s->files);
    free(s->pool);
    free(s->toks);
    free(s->entries);
    free(s->secs);
    free(s->resolve);
    free(s->scratch);
    free(s->buf);
    free(s);
}

size_t tf_sample_field_count(const tf_sample *s)
{
    return s->n_fields;
}

const char *tf_sample_field_name(const tf_sample *s, size_t i)
{
    return i < s->n_fields ? s->fields[i] : NULL;
}

/* ---- generation ---- */

static int reserve(tf_sample *s, size_t n)
{
    return tf_grow((void **)&s->buf, &s->cap, s->len + n, 1);
}

static int append(tf_sample *s, const char *p, size_t n)
{
    if (reserve(s, n))
        return -1;
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    return 0;
}

/* Copy an earlier part of the arena to its end: offsets, because reserve() may move it. */
static int append_piece(tf_sample *s, struct piece pc)
{
    if (reserve(s, pc.len))
        return -1;
    memcpy(s->buf + s->len, s->buf + pc.off, pc.len);
    s->len += pc.len;
    return 0;
}

static const struct section *section_for(const struct gen *g, size_t field, uint32_t name)
{
    return &g->s->secs[*resolve_slot(g->s, field, g->lang, name)];
}

static int expand_entry(struct gen *g, size_t field, uint32_t entry);

static int expand_bound(struct gen *g, uint32_t b)
{
    if (b == B_TASK || b == B_REQ)
        return expand_entry(g, g->cur_field, g->cur_entry);
    if (b == B_SKILL)
        return g->n_skills ? append_piece(g->s, g->skills[tf_rng_below(g->rng, (uint32_t)g->n_skills)])
                           : 0;
    /* unset only when reached indirectly from a value section: expands to nothing */
    return g->bound_set[b] ? append_piece(g->s, g->bound[b]) : 0;
}

static int expand_entry(struct gen *g, size_t field, uint32_t entry)
{
    const tf_sample *s = g->s;
    const struct entry *e = &s->entries[entry];
    const struct section *sec;
    const struct tok *k, *alt;
    uint32_t t;
    int rc = 0;

    for (t = e->tok; t < e->tok + e->ntok && rc == 0; t++) {
        k = &s->toks[t];
        switch (k->kind) {
        case TOK_TEXT:
            rc = append(g->s, s->pool + k->a, k->b);
            break;
        case TOK_ALT:
            alt = &s->toks[t + 1 + tf_rng_below(g->rng, k->a)];
            rc = append(g->s, s->pool + alt->a, alt->b);
            t += k->a;
            break;
        case TOK_SLOT:
            sec = section_for(g, field, k->a);
            rc = expand_entry(g, field, sec->first + tf_rng_below(g->rng, sec->count));
            break;
        default:
            rc = expand_bound(g, k->a);
            break;
        }
    }
    return rc;
}

/* Expand a random entry of a known section into a new piece of the arena. */
static int expand_known(struct gen *g, size_t field, uint32_t name, struct piece *out)
{
    const struct section *sec = section_for(g, field, name);

    out->off = g->s->len;
    if (expand_entry(g, field, sec->first + tf_rng_below(g->rng, sec->count)))
        return -1;
    out->len = g->s->len - out->off;
    return 0;
}

/* Draw k distinct entry indices of sec (partial Fisher-Yates over the scratch permutation). */
static void draw_distinct(struct gen *g, const struct section *sec, size_t k, uint32_t *out)
{
    uint32_t *idx = g->s->scratch, j, tmp;
    size_t i;

    for (i = 0; i < sec->count; i++)
        idx[i] = sec->first + (uint32_t)i;
    for (i = 0; i < k; i++) {
        j = (uint32_t)i + tf_rng_below(g->rng, sec->count - (uint32_t)i);
        tmp = idx[i], idx[i] = idx[j], idx[j] = tmp;
        out[i] = idx[i];
    }
}

static int terminate(tf_sample *s)
{
    return append(s, "", 1);
}

static int add_skills(struct gen *g, size_t field, size_t k)
{
    const struct section *sec = section_for(g, field, K_SKILL);
    uint32_t picks[TF_SAMPLE_MAX_SKILLS];
    struct piece pc;
    size_t i, j;

    draw_distinct(g, sec, k, picks);
    for (i = 0; i < k && g->n_skills < TF_SAMPLE_MAX_SKILLS; i++) {
        pc.off = g->s->len;
        if (expand_entry(g, field, picks[i]))
            return -1;
        pc.len = g->s->len - pc.off;
        for (j = 0; j < g->n_skills; j++)
            if (g->skills[j].len == pc.len &&
                memcmp(g->s->buf + g->skills[j].off, g->s->buf + pc.off, pc.len) == 0)
                break;
        if (j < g->n_skills) { /* the same skill can belong to two fields */
            g->s->len = pc.off;
            continue;
        }
        if (terminate(g->s))
            return -1;
        g->skills[g->n_skills++] = pc;
    }
    return 0;
}

/* ASCII only: Arabic has no case, and English entries start with ASCII letters. */
static void capitalize(tf_sample *s, size_t off)
{
    if (off < s->len && s->buf[off] >= 'a' && s->buf[off] <= 'z')
        s->buf[off] = (char)(s->buf[off] - 'a' + 'A');
}

/* A task or requirement as a bullet ("- Text.") or as a sentence from a lead template. */
static int add_item(struct gen *g, bool bullets, size_t field,
                    uint32_t entry, uint32_t lead_entry, struct piece *out)
{
    out->off = g->s->len;
    if (bullets) {
        if (append(g->s, "- ", 2) || expand_entry(g, field, entry) || append(g->s, ".", 1))
            return -1;
        capitalize(g->s, out->off + 2);
    } else {
        g->cur_field = field;
        g->cur_entry = entry;
        if (expand_entry(g, g->field, lead_entry))
            return -1;
        capitalize(g->s, out->off);
    }
    out->len = g->s->len - out->off;
    return 0;
}

/* Writes the description when write is true; returns its length either way. */
static size_t compose(tf_sample *s, const struct layout *ly, bool write)
{
    size_t sep = 1, len = 0, i;
    const char *item_sep = ly->bullets ? "\n" : " ";

#define PUT(str, n) \
    do { \
        if (write) \
            memcpy(s->buf + s->len + len, (str), (n)); \
        len += (n); \
    } while (0)
#define PUT_PIECE(pc) PUT(s->buf + (pc).off, (pc).len)

    PUT_PIECE(ly->intro);
    if (ly->has_about) {
        PUT(" ", 1);
        PUT_PIECE(ly->about);
    }
    PUT("\n\n", 2);
    if (ly->bullets) {
        PUT_PIECE(ly->task_head);
        PUT("\n", 1);
    }
    for (i = 0; i < ly->n_tasks; i++) {
        if (i)
            PUT(item_sep, sep);
        PUT_PIECE(ly->tasks[i]);
    }
    PUT("\n\n", 2);
    if (ly->bullets) {
        PUT_PIECE(ly->req_head);
        PUT("\n", 1);
    }
    for (i = 0; i < ly->n_reqs; i++) {
        if (i)
            PUT(item_sep, sep);
        PUT_PIECE(ly->reqs[i]);
    }
    for (i = 0; i < ly->n_generic; i++) {
        PUT(i ? " " : "\n\n", i ? 1 : 2);
        PUT_PIECE(ly->generic[i]);
    }
    PUT("\n\n", 2);
    PUT_PIECE(ly->closing);
#undef PUT_PIECE
#undef PUT
    return len;
}

/* Location, company, title and skills: the values sentences refer to as {@...}. */
static int generate_values(struct gen *g, size_t second)
{
    tf_sample *s = g->s;
    struct piece *loc = &g->bound[B_LOCATION];
    const unsigned char *c;
    size_t i;

    memset(g->bound_set, 0, sizeof(g->bound_set));
    g->n_skills = 0;
    if (expand_known(g, g->field, K_CITY, loc) || terminate(s))
        return -1;
    /* the city is the location up to its first comma (ASCII, or Arabic U+060C = d8 8c) */
    g->bound[B_CITY] = *loc;
    for (i = 0; i < loc->len; i++) {
        c = (const unsigned char *)s->buf + loc->off + i;
        if (c[0] == ',' || (i + 1 < loc->len && c[0] == 0xd8 && c[1] == 0x8c)) {
            g->bound[B_CITY].len = i;
            break;
        }
    }
    g->bound_set[B_LOCATION] = g->bound_set[B_CITY] = true;
    if (expand_known(g, g->field, K_COMPANY, &g->bound[B_COMPANY]) || terminate(s))
        return -1;
    g->bound_set[B_COMPANY] = true;
    if (expand_known(g, g->field, K_TITLE, &g->bound[B_TITLE]) || terminate(s))
        return -1;
    g->bound_set[B_TITLE] = true;
    if (add_skills(g, g->field, 3 + tf_rng_below(g->rng, 4)))
        return -1;
    if (second != g->field && add_skills(g, second, 1 + tf_rng_below(g->rng, 2)))
        return -1;
    return 0;
}

enum cand_kind { C_TASK, C_REQ, C_ABOUT, C_GENERIC };

struct cand {
    uint32_t kind, entry, lead;
    size_t field;
};

static void shuffle_cands(uint64_t *rng, struct cand *c, size_t n)
{
    struct cand tmp;
    size_t i, j;

    for (i = n; i > 1; i--) {
        j = tf_rng_below(rng, (uint32_t)i);
        tmp = c[i - 1], c[i - 1] = c[j], c[j] = tmp;
    }
}

/* Expand candidate c into the layout; undone by the caller if it does not fit. */
static int add_cand(struct gen *g, struct layout *ly, const struct cand *c)
{
    switch (c->kind) {
    case C_TASK:
        return add_item(g, ly->bullets, c->field, c->entry, c->lead, &ly->tasks[ly->n_tasks++]);
    case C_REQ:
        return add_item(g, ly->bullets, c->field, c->entry, c->lead, &ly->reqs[ly->n_reqs++]);
    case C_ABOUT:
        ly->has_about = true;
        return expand_known(g, g->field, K_ABOUT, &ly->about);
    default:
        ly->generic[ly->n_generic].off = g->s->len;
        if (expand_entry(g, g->field, c->entry))
            return -1;
        ly->generic[ly->n_generic].len = g->s->len - ly->generic[ly->n_generic].off;
        ly->n_generic++;
        return 0;
    }
}

static void drop_cand(struct layout *ly, const struct cand *c)
{
    if (c->kind == C_TASK)
        ly->n_tasks--;
    else if (c->kind == C_REQ)
        ly->n_reqs--;
    else if (c->kind == C_ABOUT)
        ly->has_about = false;
    else
        ly->n_generic--;
}

/* One attempt at a posting. Returns 0, -1 when out of memory, 1 when the draw cannot fit
 * the length range. The description starts from its required parts (intro, three tasks,
 * two requirements, closing); optional parts (more tasks and requirements, the team
 * sentence, shared sentences) are then added in random order up to a random target
 * length, skipping any that would overflow, so long (Arabic) and short (English)
 * sentences both land in range. */
static int generate(struct gen *g, size_t second, struct layout *ly, size_t *desc_off)
{
    tf_sample *s = g->s;
    const struct section *sec;
    uint32_t tasks[5], reqs[4], task_leads[64], req_leads[64], gens[64], extra[2], pos[2];
    size_t task_field[5], n_second = 0, n_tl, n_rl, n_gen, n_cands = 0, n_mixed, i, len;
    size_t target;
    struct cand cands[8 + 64];

    memset(ly, 0, sizeof(*ly));
    s->len = 0;
    if (generate_values(g, second))
        return -1;

    draw_distinct(g, section_for(g, g->field, K_TASK), 5, tasks);
    for (i = 0; i < 5; i++)
        task_field[i] = g->field;
    if (second != g->field) {
        /* the second field's tasks go among the three that are always kept */
        n_second = 1 + tf_rng_below(g->rng, 2);
        draw_distinct(g, section_for(g, second, K_TASK), n_second, extra);
        pos[0] = tf_rng_below(g->rng, 3);
        pos[1] = (pos[0] + 1 + tf_rng_below(g->rng, 2)) % 3;
        for (i = 0; i < n_second; i++) {
            tasks[pos[i]] = extra[i];
            task_field[pos[i]] = second;
        }
    }
    draw_distinct(g, section_for(g, g->field, K_REQ), 4, reqs);
    sec = section_for(g, g->field, K_TASK_LEAD);
    n_tl = sec->count < 64 ? sec->count : 64;
    draw_distinct(g, sec, n_tl, task_leads);
    sec = section_for(g, g->field, K_REQ_LEAD);
    n_rl = sec->count < 64 ? sec->count : 64;
    draw_distinct(g, sec, n_rl, req_leads);
    sec = section_for(g, g->field, K_GENERIC);
    n_gen = sec->count < 64 ? sec->count : 64;
    draw_distinct(g, sec, n_gen, gens);

    ly->bullets = tf_rng_below(g->rng, 100) < 55;
    if (expand_known(g, g->field, K_INTRO, &ly->intro) ||
        expand_known(g, g->field, K_CLOSING, &ly->closing))
        return -1;
    if (ly->bullets && (expand_known(g, g->field, K_TASK_HEAD, &ly->task_head) ||
                        expand_known(g, g->field, K_REQ_HEAD, &ly->req_head)))
        return -1;
    for (i = 0; i < 3; i++)
        if (add_item(g, ly->bullets, task_field[i], tasks[i], task_leads[i % n_tl],
                     &ly->tasks[ly->n_tasks++]))
            return -1;
    for (i = 0; i < 2; i++)
        if (add_item(g, ly->bullets, g->field, reqs[i], req_leads[i % n_rl],
                     &ly->reqs[ly->n_reqs++]))
            return -1;
    len = compose(s, ly, false);
    if (len > TF_SAMPLE_DESC_MAX)
        return 1;

    /* One shared sentence comes first, so nearly every posting has some noise; a second
     * competes with the optional content on equal terms; the rest only pad to the target. */
    cands[n_cands++] = (struct cand){ C_GENERIC, gens[0], 0, g->field };
    for (i = 3; i < 5; i++)
        cands[n_cands++] = (struct cand){ C_TASK, tasks[i], task_leads[i % n_tl], task_field[i] };
    for (i = 2; i < 4; i++)
        cands[n_cands++] = (struct cand){ C_REQ, reqs[i], req_leads[i % n_rl], g->field };
    if (*resolve_slot(s, g->field, g->lang, K_ABOUT) >= 0)
        cands[n_cands++] = (struct cand){ C_ABOUT, 0, 0, g->field };
    for (i = 1; i < n_gen; i++)
        cands[n_cands++] = (struct cand){ C_GENERIC, gens[i], 0, g->field };
    n_mixed = n_cands - n_gen + 2;
    shuffle_cands(g->rng, cands + 1, n_mixed - 1);

    target = 700 + tf_rng_below(g->rng, 480);
    for (i = 0; i < n_cands && (len < target || len < TF_SAMPLE_DESC_MIN); i++) {
        size_t mark = s->len, new_len;

        if (add_cand(g, ly, &cands[i]))
            return -1;
        new_len = compose(s, ly, false);
        if (new_len > TF_SAMPLE_DESC_MAX) {
            drop_cand(ly, &cands[i]);
            s->len = mark;
            continue;
        }
        len = new_len;
    }
    if (len < TF_SAMPLE_DESC_MIN)
        return 1;
    if (reserve(s, len + 1))
        return -1;
    *desc_off = s->len;
    compose(s, ly, true);
    s->len += len;
    return terminate(s);
}

int tf_sample_next(tf_sample *s, uint64_t *rng_state, tf_sample_lang lang, tf_posting *out)
{
    struct gen g = { .s = s, .rng = rng_state };
    struct layout ly;
    size_t second, desc_off = 0, i;
    int attempt, rc = 1;

    if (lang == TF_SAMPLE_MIXED)
        g.lang = tf_rng_below(rng_state, 10) < 6 ? LANG_EN : LANG_AR;
    else
        g.lang = lang == TF_SAMPLE_AR ? LANG_AR : LANG_EN;
    g.field = tf_rng_below(rng_state, (uint32_t)s->n_fields);
    second = g.field;
    if (s->n_fields > 1 && tf_rng_below(rng_state, 1000) < 30)
        second = (g.field + 1 + tf_rng_below(rng_state, (uint32_t)s->n_fields - 1)) % s->n_fields;
    /* A draw that cannot fit the length range is redrawn; with the bundled templates this
     * is rare, and after MAX_ATTEMPTS the last draw is kept rather than looping forever. */
    for (attempt = 0; attempt < MAX_ATTEMPTS && rc == 1; attempt++) {
        rc = generate(&g, second, &ly, &desc_off);
        if (rc == 1 && attempt == MAX_ATTEMPTS - 1) {
            rc = reserve(s, compose(s, &ly, false) + 1) ? -1 : 0;
            if (rc == 0) {
                desc_off = s->len;
                s->len += compose(s, &ly, true);
                rc = terminate(s);
            }
        }
    }
    if (rc < 0)
        return -1;
    out->title = s->buf + g.bound[B_TITLE].off;
    out->company = s->buf + g.bound[B_COMPANY].off;
    out->location = s->buf + g.bound[B_LOCATION].off;
    out->description = s->buf + desc_off;
    for (i = 0; i < g.n_skills; i++)
        out->skills[i] = s->buf + g.skills[i].off;
    out->n_skills = g.n_skills;
    out->field = s->fields[g.field];
    out->field_index = g.field;
    out->lang = g.lang == LANG_EN ? "en" : "ar";
    return 0;
}

/* ---- output formats ---- */

/* s itself when it is well-formed UTF-8 (the normal case), else a repaired copy in *tmp
 * (each ill-formed subpart replaced by U+FFFD), which the caller frees; NULL when out of
 * memory. */
static const char *well_formed(const char *s, char **tmp)
{
    size_t n = strlen(s), bad = 0, len;

    *tmp = NULL;
    if (tf_utf8_check(s, n) == n)
        return s;
    *tmp = malloc(3 * n + 1);
    if (!*tmp)
        return NULL;
    len = tf_utf8_repair(s, n, *tmp, &bad);
    (*tmp)[len] = '\0';
    return *tmp;
}

static int json_member(FILE *f, const char *key, const char *value, bool first)
{
    fprintf(f, "%s\"%s\":", first ? "" : ",", key);
    return tf_json_write_cstring(f, value);
}

int tf_sample_write_json(FILE *f, const tf_posting *p)
{
    size_t i;
    int rc = 0;

    putc('{', f);
    rc |= json_member(f, "title", p->title, true);
    rc |= json_member(f, "company", p->company, false);
    rc |= json_member(f, "location", p->location, false);
    rc |= json_member(f, "description", p->description, false);
    fputs(",\"skills\":[", f);
    for (i = 0; i < p->n_skills; i++) {
        if (i)
            putc(',', f);
        rc |= tf_json_write_cstring(f, p->skills[i]);
    }
    putc(']', f);
    rc |= json_member(f, "field", p->field, false);
    rc |= json_member(f, "lang", p->lang, false);
    fputs("}\n", f);
    return rc || ferror(f) ? -1 : 0;
}

/* Text inside a quoted CSV field: quotes doubled; with pg_element also the backslash
 * escapes of a quoted PostgreSQL array element (so " becomes \"", \ becomes \\). */
static int csv_text(FILE *f, const char *str, bool pg_element)
{
    char *tmp;
    const char *s = well_formed(str, &tmp), *run;

    if (!s)
        return -1;
    while (*s) {
        for (run = s; *s && *s != '"' && !(pg_element && *s == '\\'); s++)
            ;
        fwrite(run, 1, (size_t)(s - run), f);
        if (!*s)
            break;
        if (*s == '"')
            fputs(pg_element ? "\\\"\"" : "\"\"", f);
        else
            fputs("\\\\", f);
        s++;
    }
    free(tmp);
    return 0;
}

/* Every present value is quoted (RFC 4180 allows it, and it spares a per-value test); a
 * NULL value is an empty unquoted field. */
static int csv_field(FILE *f, const char *value, bool last)
{
    int rc = 0;

    if (value) {
        putc('"', f);
        rc = csv_text(f, value, false);
        putc('"', f);
    }
    putc(last ? '\n' : ',', f);
    return rc;
}

int tf_sample_write_csv_header(FILE *f)
{
    fputs("title,company,location,description,skills,field,lang\n", f);
    return ferror(f) ? -1 : 0;
}

int tf_sample_write_csv(FILE *f, const tf_posting *p)
{
    size_t i;
    int rc = 0;

    rc |= csv_field(f, p->title, false);
    rc |= csv_field(f, p->company, false);
    rc |= csv_field(f, p->location, false);
    rc |= csv_field(f, p->description, false);
    /* {"a","b"} with every element quoted, so spaces and commas in skills need no rules */
    fputs("\"{", f);
    for (i = 0; i < p->n_skills; i++) {
        fputs(i ? ",\"\"" : "\"\"", f);
        rc |= csv_text(f, p->skills[i], true);
        fputs("\"\"", f);
    }
    fputs("}\",", f);
    rc |= csv_field(f, p->field, false);
    rc |= csv_field(f, p->lang, true);
    return rc || ferror(f) ? -1 : 0;
}
