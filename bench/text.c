/*
 * bench/text.c - speed of the text half of the topic engine on synthetic ~1 KB postings:
 * tokenization alone, and the whole stream-path vectorization (tokenize, count, update
 * df, weight). The ceiling printed beside it is a UTF-8 validation pass over the same
 * bytes, the least any tokenizer must do. Usage: bench-text [docs-per-case [case]]
 * where case is english, arabic or unseen (default: all three).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/datadir.h"
#include "base/utf8.h"
#include "engine/text.h"
#include "engine/vocab.h"

#define DOC_BYTES 1024

static const char *const english[] = {
    "software", "engineering", "intern", "internship", "developer", "developers", "team",
    "Python", "Java", "C++", "Node.js", "React", "SQL", "PostgreSQL", "data", "analysis",
    "machine", "learning", "models", "cloud", "AWS", "Docker", "Kubernetes", "CI/CD",
    "backend", "frontend", "APIs", "design", "testing", "students", "university", "degree",
    "computer", "science", "experience", "projects", "building", "scalable", "services",
    "customers", "product", "marketing", "finance", "accounting", "reports", "Excel",
    "communication", "skills", "remote", "full-time", "summer", "months", "paid", "mentor",
    "the", "and", "with", "for", "our", "you", "will", "in", "of", "to", "a", "is", "on",
    "we", "are", "looking", "motivated", "strong", "knowledge", "working", "collaborate",
    "engineers", "managers", "security", "networks", "Linux", "Git", "C#", ".NET",
    "TypeScript", "Vue.js", "mobile", "Android", "iOS", "research", "statistics", "2024",
};

static const char *const arabic[] = {
    "مطلوب", "متدرب", "تدريب", "مهندس", "البرمجيات", "مطور", "المطورين", "فريق", "بايثون",
    "جافا", "قواعد", "البيانات", "تحليل", "التعلم", "الآلي", "الحوسبة", "السحابية", "تصميم",
    "اختبار", "طلاب", "الجامعة", "شهادة", "علوم", "الحاسوب", "خبرة", "مشاريع", "بناء",
    "خدمات", "العملاء", "المنتج", "التسويق", "المالية", "المحاسبة", "تقارير", "مهارات",
    "التواصل", "عن", "بعد", "دوام", "كامل", "الصيف", "أشهر", "مدفوع", "مشرف", "في", "من",
    "على", "إلى", "مع", "هذا", "التي", "نبحث", "شغوف", "معرفة", "قوية", "العمل", "والتعاون",
    "المهندسين", "المديرين", "الأمن", "الشبكات", "لينكس", "الرياض", "جدة", "القاهرة",
    "دبي", "الذكاء", "الاصطناعي", "مُهَنْدِس", "البَرْمَجَة", "شركةٍ", "٢٠٢٤", "Python", "SQL",
};

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* A skewed pick (frequent words come first in the lists), like a posting's vocabulary. */
static const char *pick(const char *const *words, size_t n)
{
    double u = (next() % 10000) / 10000.0;
    return words[(size_t)(u * u * (double)n)];
}

/* Fill doc with ~DOC_BYTES of text; `made_up` words defeat the tokenizer's word cache. */
static size_t make_doc(char *doc, const char *const *words, size_t n, int made_up)
{
    size_t len = 0;

    while (len < DOC_BYTES - 40) {
        if (made_up) {
            int k = 4 + (int)(next() % 8);
            for (int i = 0; i < k; i++)
                doc[len++] = (char)('a' + next() % 26);
            doc[len++] = (next() % 10) ? ' ' : '.';
            doc[len++] = ' ';
            continue;
        }
        len += (size_t)sprintf(doc + len, "%s", pick(words, n));
        switch (next() % 12) {
        case 0: doc[len++] = ','; break;
        case 1: doc[len++] = '.'; break;
        default: break;
        }
        doc[len++] = ' ';
    }
    return len;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the budget is CPU per document */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void run(const char *name, tf_text *t, const char *const *words, size_t n_words,
                int made_up, int n_docs)
{
    char *docs = malloc((size_t)n_docs * DOC_BYTES);
    size_t *lens = malloc((size_t)n_docs * sizeof(*lens)), bytes = 0, tokens = 0, sink = 0;
    tf_vocab *v = tf_vocab_new(NULL);
    tf_tokens k;
    tf_bag bag;
    double t0, tok_s, full_s, ceil_s;

    tf_bag_init(&bag);
    if (!docs || !lens || !v) {
        fprintf(stderr, "bench-text: out of memory\n");
        exit(1);
    }
    for (int d = 0; d < n_docs; d++) {
        lens[d] = make_doc(docs + (size_t)d * DOC_BYTES, words, n_words, made_up);
        bytes += lens[d];
    }
    /* warm the buffers (not the cache: made-up words stay unseen) */
    tf_text_tokenize(t, docs, DOC_BYTES / 2, &k, NULL);

    t0 = now();
    for (int d = 0; d < n_docs; d++) {
        tf_text_tokenize(t, docs + (size_t)d * DOC_BYTES, lens[d], &k, NULL);
        tokens += k.n;
    }
    tok_s = now() - t0;

    t0 = now();
    for (int d = 0; d < n_docs; d++) {
        tf_text_tokenize(t, docs + (size_t)d * DOC_BYTES, lens[d], &k, NULL);
        tf_vocab_count(v, &k, TF_VOCAB_GROW, &bag, NULL);
        tf_vocab_add_doc(v, bag.ids, bag.n, NULL);
        tf_vocab_weight(v, &bag);
    }
    full_s = now() - t0;

    t0 = now();
    for (int d = 0; d < n_docs; d++)
        sink += tf_utf8_check(docs + (size_t)d * DOC_BYTES, lens[d]);
    ceil_s = now() - t0;

    printf("%-22s %6.0f B/doc %6.1f tok/doc | tokenize %7.2f us/doc %9.0f docs/s | "
           "+count+df+weight %7.2f us/doc %9.0f docs/s | ceiling utf8 check %5.2f us/doc\n",
           name, (double)bytes / n_docs, (double)tokens / n_docs, tok_s * 1e6 / n_docs,
           n_docs / tok_s, full_s * 1e6 / n_docs, n_docs / full_s, ceil_s * 1e6 / n_docs);
    if (sink != bytes)
        fprintf(stderr, "bench-text: synthetic text was not valid UTF-8\n");
    tf_bag_free(&bag);
    tf_vocab_free(v);
    free(lens);
    free(docs);
}

int main(int argc, char **argv)
{
    int n_docs = argc > 1 ? atoi(argv[1]) : 20000;
    const char *only = argc > 2 ? argv[2] : NULL;
    tf_text_opts o = {.data_dir = tf_data_dir()};
    tf_err err;
    tf_text *t;

    if (n_docs <= 0) {
        fprintf(stderr, "usage: bench-text [docs-per-case [english|arabic|unseen]]\n");
        return 2;
    }
    t = tf_text_new(&o, &err);
    if (!t) {
        fprintf(stderr, "bench-text: %s\n", err.msg);
        return 1;
    }
    if (!only || !strcmp(only, "english"))
        run("english", t, english, sizeof(english) / sizeof(*english), 0, n_docs);
    if (!only || !strcmp(only, "arabic"))
        run("arabic", t, arabic, sizeof(arabic) / sizeof(*arabic), 0, n_docs);
    if (!only || !strcmp(only, "unseen"))
        run("english, unseen words", t, NULL, 0, 1, n_docs);
    tf_text_free(t);
    return 0;
}
