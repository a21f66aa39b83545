/*
 * lexicon.c - `topicflow lexicon build | lookup`: makes the bilingual lexicon the workers
 * load (engine/lexicon.h) from FreeDict's English-Arabic and Arabic-English dictionaries as
 * Debian ships them (dictd format: an index of "headword TAB offset TAB length", offsets in
 * base64, and a dictzip data file, which zlib reads as gzip), through the project's own text
 * pipeline; and shows what the text pipeline makes of words, with and without it.
 */
#include "commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "options.h"
#include "base/datadir.h"
#include "base/hash.h"
#include "base/strmap.h"
#include "engine/lexicon.h"
#include "engine/text.h"

typedef struct lexicon_config {
    const char *dictd, *out, *lexicon, *corpus;
    int candidates;
} lexicon_config;

static const tf_option lexicon_options[] = {
    {"dictd", NULL, TF_OPT_STRING, "/usr/share/dictd",
     "build: where freedict-eng-ara and freedict-ara-eng (.index, .dict.dz) are",
     offsetof(lexicon_config, dictd), 0, 0},
    {"out", NULL, TF_OPT_STRING, NULL, "build: write the table here (default: standard output)",
     offsetof(lexicon_config, out), 0, 0},
    {"corpus", NULL, TF_OPT_STRING, NULL,
     "build: a file of the deployment's documents, one a line (JSONL will do); of an Arabic"
     " term's translations, the one most of its documents use wins (default: none, the"
     " dictionaries' votes decide)",
     offsetof(lexicon_config, corpus), 0, 0},
    {"candidates", NULL, TF_OPT_BOOL, "off",
     "build: write every translation the dictionaries offer (arabic TAB english TAB votes, the"
     " chosen one first) instead of the table: a diagnostic (bench-lexicon --candidates)",
     offsetof(lexicon_config, candidates), 0, 0},
    {"lexicon", "TOPICFLOW_LEXICON", TF_OPT_STRING, "auto",
     "lookup: the table (auto: the data directory's " TF_LEXICON_DEFAULT ", off: none)",
     offsetof(lexicon_config, lexicon), 0, 0},
};
#define N_OPTIONS (sizeof(lexicon_options) / sizeof(lexicon_options[0]))

/* dictd's base64 number: digits A-Z a-z 0-9 + /, most significant first. -1 if malformed. */
static long long b64_number(const char *s, size_t n)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    long long v = 0;

    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *d = s[i] ? strchr(digits, s[i]) : NULL;
        if (!d)
            return -1;
        v = v * 64 + (d - digits);
    }
    return v;
}

/* The whole decompressed data file. */
static char *read_gz(const char *path, size_t *len, tf_err *err)
{
    gzFile g = gzopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0;
    int n;

    *len = 0;
    if (!g) {
        tf_err_set(err, "cannot read %s: %s", path, strerror(errno ? errno : ENOENT));
        return NULL;
    }
    do {
        if (*len + 65536 > cap) {
            char *b = realloc(buf, cap = cap * 2 + 65536);
            if (!b) {
                free(buf);
                gzclose(g);
                tf_err_set(err, "out of memory");
                return NULL;
            }
            buf = b;
        }
        n = gzread(g, buf + *len, 65536);
        if (n > 0)
            *len += (size_t)n;
    } while (n > 0);
    if (n < 0) {
        int code;
        tf_err_set(err, "cannot decompress %s: %s", path, gzerror(g, &code));
        free(buf);
        buf = NULL;
    }
    gzclose(g);
    return buf;
}

/* The single term the text pipeline makes of s[0..len), with its script checked: Arabic
 * letters (UTF-8 lead bytes 0xD8-0xDB) or ASCII letters. NULL when it makes none or several. */
static const char *one_term(tf_text *t, const char *s, size_t len, int arabic, size_t *tlen)
{
    tf_tokens toks;
    tf_err err;
    const char *w;

    if (tf_text_tokenize(t, s, len, &toks, &err) < 0 || toks.n != 1)
        return NULL;
    w = toks.bytes + toks.tok[0].off;
    *tlen = toks.tok[0].len;
    for (size_t i = 0; i < *tlen; i++) {
        unsigned char c = (unsigned char)w[i];
        if (arabic ? (c < 0x80 || (c >= 0xC0 && (c < 0xD8 || c > 0xDB)))
                   : !((c >= 'a' && c <= 'z')))
            return NULL;
    }
    return w;
}

/* Votes for (Arabic word ar[0..alen), English term en[0..elen)) under each term the
 * pipeline makes of the word's written variants: with and without the definite article
 * (two votes each: running text writes a noun both ways, a dictionary one way, and
 * Snowball's arabic stemmer does not always make one stem of the two: برمجيات -> رمجيا,
 * البرمجيات -> برمج), and, one vote each, its regular inflections the stemmer does not
 * undo: the feminine of a nisba adjective (طبي -> الطبية) and the sound plurals (ات, ين,
 * ون; ة -> ات). A term gets one pair's votes once, at the variant's highest weight. */
#define MAX_VARIANTS 12
static int vote_pair(tf_lexicon_builder *b, tf_text *ta, const char *ar, size_t alen,
                     const char *en, size_t elen, tf_err *err)
{
    static const char al[] = "\xD8\xA7\xD9\x84", ta_marbuta[] = "\xD8\xA9", yeh[] = "\xD9\x8A";
    static const char *const plural[] = {"\xD8\xA7\xD8\xAA", "\xD9\x8A\xD9\x86", "\xD9\x88\xD9\x86"};
    char bare[256], forms[MAX_VARIANTS][272], terms[2 * MAX_VARIANTS][256];
    int weight[2 * MAX_VARIANTS], n_forms = 0, n_terms = 0, form_weight[MAX_VARIANTS];
    size_t bare_len, term_len[2 * MAX_VARIANTS];

    while (alen && (*ar == ' ' || *ar == '\t'))
        ar++, alen--;
    while (alen && (ar[alen - 1] == ' ' || ar[alen - 1] == '\t'))
        alen--;
    if (alen > 4 && !memcmp(ar, al, 4))
        ar += 4, alen -= 4;
    if (alen + 8 >= sizeof(bare) || !alen)
        return 0;
    memcpy(bare, ar, alen);
    bare_len = alen;
#define ADD(w8, ...)                                                                          \
    do {                                                                                      \
        if (n_forms < MAX_VARIANTS) {                                                         \
            snprintf(forms[n_forms], sizeof(forms[0]), __VA_ARGS__);                          \
            form_weight[n_forms++] = (w8);                                                    \
        }                                                                                     \
    } while (0)
    ADD(2, "%.*s", (int)bare_len, bare);
    if (bare_len >= 4 && !memcmp(bare + bare_len - 2, yeh, 2))
        ADD(1, "%.*s%s", (int)bare_len, bare, ta_marbuta);
    if (bare_len >= 4 && !memcmp(bare + bare_len - 2, ta_marbuta, 2))
        ADD(1, "%.*s%s", (int)(bare_len - 2), bare, plural[0]);
    else
        for (int i = 0; i < 3; i++)
            ADD(1, "%.*s%s", (int)bare_len, bare, plural[i]);
#undef ADD
    for (int f = 0; f < n_forms; f++) {
        for (int art = 0; art < 2; art++) {
            char word[288];
            size_t wlen;
            const char *w;
            int j;
            snprintf(word, sizeof(word), "%s%.270s", art ? al : "", forms[f]);
            w = one_term(ta, word, strlen(word), 1, &wlen);
            if (!w || wlen >= sizeof(terms[0]))
                continue;
            for (j = 0; j < n_terms; j++)
                if (term_len[j] == wlen && !memcmp(terms[j], w, wlen))
                    break;
            if (j == n_terms) {
                memcpy(terms[n_terms], w, wlen);
                term_len[n_terms] = wlen;
                weight[n_terms++] = form_weight[f];
            } else if (weight[j] < form_weight[f]) {
                weight[j] = form_weight[f];
            }
        }
    }
    for (int j = 0; j < n_terms; j++)
        for (int v = 0; v < weight[j]; v++)
            if (tf_lexicon_builder_vote(b, terms[j], term_len[j], en, elen, err) < 0)
                return -1;
    return 0;
}

/* The English terms of an entry's text, each counted once per entry: how common a term is
 * in the dictionaries, which breaks ties between an Arabic term's translations. */
static int count_english(tf_lexicon_builder *b, tf_text *te, const char *s, size_t len,
                         tf_err *err)
{
    tf_tokens toks;

    if (tf_text_tokenize(te, s, len, &toks, err) < 0)
        return -1;
    for (size_t i = 0; i < toks.n; i++) {
        const char *w = toks.bytes + toks.tok[i].off;
        size_t j, n = toks.tok[i].len;
        for (j = 0; j < i; j++)
            if (toks.tok[j].len == n && !memcmp(toks.bytes + toks.tok[j].off, w, n))
                break;
        if (j == i && (unsigned char)w[0] < 0x80 && tf_lexicon_builder_english(b, w, n, err) < 0)
            return -1;
    }
    return 0;
}

/* Each translation of an entry: its lines after the headword line, a "N. " numbering
 * dropped, split at , and ;. */
static int vote_entry(tf_lexicon_builder *b, tf_text *ta, tf_text *te, const char *head,
                      size_t head_len, int head_arabic, const char *body, size_t body_len,
                      tf_err *err)
{
    const char *end = body + body_len, *p = memchr(body, '\n', body_len);
    size_t hlen, key_len;
    const char *hterm;
    char key[256];

    if (count_english(b, te, body, body_len, err) < 0)
        return -1;
    hterm = one_term(head_arabic ? ta : te, head, head_len, head_arabic, &hlen);
    if (!hterm || !p || hlen >= sizeof(key))
        return 0;
    memcpy(key, hterm, hlen); /* the tf_text's buffer is reused by the next call */
    key_len = hlen;
    for (p++; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p)), *q;
        if (!eol)
            eol = end;
        q = p;
        while (q < eol && ((*q >= '0' && *q <= '9') || *q == '.' || *q == ' '))
            q++;
        while (q < eol) {
            const char *sep = q, *w;
            size_t wlen;
            while (sep < eol && *sep != ',' && *sep != ';')
                sep++;
            w = one_term(head_arabic ? te : ta, q, (size_t)(sep - q), !head_arabic, &wlen);
            if (w && (head_arabic ? vote_pair(b, ta, head, head_len, w, wlen, err)
                                  : vote_pair(b, ta, q, (size_t)(sep - q), key, key_len, err)) < 0)
                return -1;
            q = sep < eol ? sep + 1 : eol;
        }
        p = eol + 1;
    }
    return 0;
}

/* Every entry of DIR/NAME.index and DIR/NAME.dict.dz. head_arabic: the headwords are Arabic. */
static int read_dictionary(tf_lexicon_builder *b, tf_text *ta, tf_text *te, const char *dir,
                           const char *name, int head_arabic, long *entries, tf_err *err)
{
    char path[4096], *line = NULL, *data;
    size_t cap = 0, data_len;
    ssize_t n;
    FILE *f;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/%s.dict.dz", dir, name);
    data = read_gz(path, &data_len, err);
    if (!data)
        return -1;
    snprintf(path, sizeof(path), "%s/%s.index", dir, name);
    f = fopen(path, "r");
    if (!f) {
        tf_err_set(err, "cannot read %s: %s", path, strerror(errno));
        free(data);
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        long long off, len;
        if (!t2) {
            tf_err_set(err, "%s: a line without two tabs", path);
            goto done;
        }
        line[n - 1] = line[n - 1] == '\n' ? '\0' : line[n - 1];
        off = b64_number(t1 + 1, (size_t)(t2 - t1 - 1));
        len = b64_number(t2 + 1, strlen(t2 + 1));
        if (off < 0 || len < 0 || (unsigned long long)(off + len) > data_len) {
            tf_err_set(err, "%s: an entry outside the data file", path);
            goto done;
        }
        if (strncmp(line, "00database", 10) == 0)
            continue; /* the dictionary's own description */
        if (vote_entry(b, ta, te, line, (size_t)(t1 - line), head_arabic, data + off, (size_t)len,
                       err) < 0)
            goto done;
        (*entries)++;
    }
    rc = 0;
done:
    free(line);
    free(data);
    fclose(f);
    return rc;
}

/* Each English term of path's lines, counted once per line, as a preference (engine/lexicon.h). */
static int read_corpus(tf_lexicon_builder *b, tf_text *te, const char *path, long *docs,
                       tf_err *err)
{
    tf_strmap df;
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = -1;

    if (!f)
        return tf_err_set(err, "cannot read %s: %s", path, strerror(errno));
    if (tf_strmap_init(&df, 1 << 12, 1 << 16) < 0) {
        fclose(f);
        return tf_err_set(err, "out of memory");
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        tf_tokens toks;
        if (tf_text_tokenize(te, line, (size_t)n, &toks, err) < 0)
            goto done;
        for (size_t i = 0; i < toks.n; i++) {
            const char *w = toks.bytes + toks.tok[i].off;
            size_t len = toks.tok[i].len;
            tf_strmap_slot *s;
            if ((unsigned char)w[0] >= 0x80)
                continue; /* English terms only */
            s = tf_strmap_put(&df, tf_hash_bytes(w, len), w, len);
            if (!s) {
                tf_err_set(err, "out of memory");
                goto done;
            }
            if (s->val_off != (uint32_t)(*docs + 1)) { /* once per line */
                s->val_off = (uint32_t)(*docs + 1);
                s->val++;
            }
        }
        (*docs)++;
    }
    for (size_t i = 0; i <= df.mask; i++) {
        const tf_strmap_slot *s = &df.slots[i];
        if (s->key_len &&
            tf_lexicon_builder_prefer(b, tf_strmap_at(&df, s->key_off), s->key_len, s->val, err) < 0)
            goto done;
    }
    rc = 0;
done:
    free(line);
    fclose(f);
    tf_strmap_free(&df);
    return rc;
}

static int build(const lexicon_config *cfg)
{
    tf_text_opts o = {.data_dir = tf_data_dir()};
    tf_text *ta = NULL, *te = NULL;
    tf_lexicon_builder *b = NULL;
    FILE *out = stdout;
    long eng_ara = 0, ara_eng = 0, corpus_docs = 0;
    size_t written = 0;
    char header[512];
    tf_err err;
    int rc = CLI_FAIL;

    /* Two pipelines: the headword's term lives in one while the other makes the translations'. */
    ta = tf_text_new(&o, &err);
    te = ta ? tf_text_new(&o, &err) : NULL;
    b = te ? tf_lexicon_builder_new(&err) : NULL;
    if (!b)
        goto done;
    if (cfg->corpus && read_corpus(b, te, cfg->corpus, &corpus_docs, &err) < 0)
        goto done;
    if (read_dictionary(b, ta, te, cfg->dictd, "freedict-eng-ara", 0, &eng_ara, &err) < 0 ||
        read_dictionary(b, ta, te, cfg->dictd, "freedict-ara-eng", 1, &ara_eng, &err) < 0)
        goto done;
    if (cfg->out && !(out = fopen(cfg->out, "w"))) {
        tf_err_set(&err, "cannot write %s: %s", cfg->out, strerror(errno));
        goto done;
    }
    snprintf(header, sizeof(header),
             "# topicflow bilingual lexicon: Arabic term TAB English term, then TAB and its\n"
             "# other dictionary senses, if any (the workers take, of them, the one their\n"
             "# English documents use most; all terms as the text pipeline makes them).\n"
             "# Made by `topicflow lexicon build` from FreeDict's\n"
             "# eng-ara (%ld entries) and ara-eng (%ld entries) dictionaries (GPL-2+);\n"
             "# see data/lexicon/README.md.\n%s",
             eng_ara, ara_eng,
             cfg->corpus ? "# Translations chosen by how many documents of a corpus use them\n"
                           "# (topicflow lexicon build --corpus).\n" : "");
    if ((cfg->candidates ? tf_lexicon_builder_write_candidates(b, out, &written, &err)
                         : tf_lexicon_builder_write(b, out, header, &written, &err)) < 0)
        goto done;
    if (out != stdout && fclose(out) != 0) {
        out = stdout;
        tf_err_set(&err, "cannot write %s: %s", cfg->out, strerror(errno));
        goto done;
    }
    out = stdout;
    fprintf(stderr, "topicflow lexicon: %zu Arabic terms from %ld + %ld dictionary entries%s%s\n",
            written, eng_ara, ara_eng, cfg->out ? " -> " : "", cfg->out ? cfg->out : "");
    rc = CLI_OK;
done:
    if (out != stdout)
        fclose(out);
    if (rc != CLI_OK)
        cli_error("lexicon", CLI_FAIL, "%s", err.msg);
    tf_lexicon_builder_free(b);
    tf_text_free(ta);
    tf_text_free(te);
    return rc;
}

/* Each word: its term without the lexicon, then with it. */
static int lookup(const lexicon_config *cfg, int argc, char **argv, int first)
{
    tf_text_opts plain = {.data_dir = tf_data_dir()}, mapped = plain;
    tf_lexicon *lx = NULL;
    tf_text *tp = NULL, *tm = NULL;
    tf_err err;
    int rc = CLI_FAIL;

    if (tf_lexicon_open(cfg->lexicon, tf_data_dir(), &lx, &err) < 0)
        return cli_error("lexicon", CLI_FAIL, "%s", err.msg);
    mapped.lexicon = lx;
    tp = tf_text_new(&plain, &err);
    tm = tp ? tf_text_new(&mapped, &err) : NULL;
    if (!tm) {
        cli_error("lexicon", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    for (int i = first; i < argc; i++) {
        tf_tokens a, b;
        if (tf_text_tokenize(tp, argv[i], strlen(argv[i]), &a, &err) < 0 ||
            tf_text_tokenize(tm, argv[i], strlen(argv[i]), &b, &err) < 0) {
            cli_error("lexicon", CLI_FAIL, "%s", err.msg);
            goto done;
        }
        printf("%s\t", argv[i]);
        for (size_t j = 0; j < a.n; j++)
            printf("%s%s", j ? " " : "", a.bytes + a.tok[j].off);
        printf("\t");
        for (size_t j = 0; j < b.n; j++)
            printf("%s%s", j ? " " : "", b.bytes + b.tok[j].off);
        printf("\n");
    }
    rc = CLI_OK;
done:
    tf_text_free(tp);
    tf_text_free(tm);
    tf_lexicon_free(lx);
    return rc;
}

int cli_lexicon(int argc, char **argv)
{
    lexicon_config cfg;
    const char *verb;
    int first, status;

    status = cli_parse("lexicon", "topicflow lexicon build [--dictd DIR] [--out FILE] [--corpus FILE] [--candidates] | lookup WORD...",
                       "build: the bilingual lexicon (Arabic term TAB English term) from FreeDict's\n"
                       "English-Arabic and Arabic-English dictionaries (Debian: dict-freedict-eng-ara,\n"
                       "dict-freedict-ara-eng), through the workers' own normalisation and stemming;\n"
                       "data/lexicon/ar-en.tsv is its output. lookup: each word, a tab, its terms\n"
                       "without the lexicon, a tab, its terms with it.",
                       lexicon_options, N_OPTIONS, &cfg, argc, argv, &first);
    if (status != CLI_CONTINUE)
        return status;
    if (first >= argc)
        return cli_error("lexicon", CLI_USAGE, "missing action: build or lookup");
    verb = argv[first++];
    if (strcmp(verb, "build") == 0) {
        if (first < argc)
            return cli_error("lexicon", CLI_USAGE, "unexpected argument '%s'", argv[first]);
        return build(&cfg);
    }
    if (strcmp(verb, "lookup") == 0) {
        if (first >= argc)
            return cli_error("lexicon", CLI_USAGE, "lookup needs at least one word");
        return lookup(&cfg, argc, argv, first);
    }
    return cli_error("lexicon", CLI_USAGE, "unknown action '%s' (build or lookup)", verb);
}
