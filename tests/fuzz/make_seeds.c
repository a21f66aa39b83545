/*
 * make_seeds.c - writes the binary seeds of the fuzz corpus from the unit tests' values
 * (test_event_codec.c, test_model_blob.c): event bodies into <dir>/event_codec, model and
 * delta blobs into <dir>/model_blob. (event_codec/unknown-keys is the message of
 * test_unknown_keys_are_skipped, kept as a file.) Run by hand after a format change:
 *   build-fuzz/bin/make-fuzz-seeds tests/fuzz/corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model_blob.h"
#include "wire/event_codec.h"

#define S(lit) ((tf_str){lit, sizeof(lit) - 1})

static void put(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "make-fuzz-seeds: cannot write %s\n", path);
        exit(1);
    }
}

static void put_event(const char *dir, const char *name, const tf_event *ev)
{
    char *buf;
    size_t len;
    tf_err err;

    if (tf_event_encode(ev, &buf, &len, &err) < 0) {
        fprintf(stderr, "make-fuzz-seeds: %s\n", err.msg);
        exit(1);
    }
    put(dir, "event_codec", name, buf, len);
    free(buf);
}

static void events(const char *dir)
{
    tf_event_field fields[2] = {
        {S("title"), S("Data engineering intern")},
        {S("description"), S("تحليل البيانات باستخدام SQL و Python")},
    };
    tf_event ev = {.id = 42, .type = TF_EVENT_UPDATED, .aggregate = S("internship"),
                   .aggregate_id = S("7"), .version = 3, .occurred_at = 1764059000123456LL,
                   .source = S("public.internships"), .n_fields = 2, .fields = fields};

    put_event(dir, "updated", &ev);
    ev.replay_of = 17;
    put_event(dir, "replay", &ev);
    ev.replay_of = 0;
    ev.type = TF_EVENT_DELETED;
    ev.n_fields = 0;
    put_event(dir, "deleted-empty-payload", &ev);
}

static void blobs(const char *dir)
{
    enum { K = 3, TERMS = 7 };
    double W[TERMS * K], A[K * K], B[TERMS * K], rows[3 * K];
    int32_t terms[3] = {40, 2, 17};
    model_blob m = {.k = K, .n_terms = TERMS, .version = 0x0102030405060708ULL,
                    .W = W, .A = A, .B = B};
    nmf_delta *d = nmf_delta_new(K, NULL);
    uint8_t *buf;
    size_t len;

    for (int i = 0; i < TERMS * K; i++) {
        W[i] = (i % 5) * 0.125 + i * 1e-3;
        B[i] = -0.5 + i * 0.01;
    }
    for (int i = 0; i < K * K; i++)
        A[i] = 1.0 / (1 + i);
    for (int i = 0; i < 3 * K; i++)
        rows[i] = i - 4.0;
    if (model_blob_encode(&m, &buf, &len, NULL) < 0)
        exit(1);
    put(dir, "model_blob", "model-with-statistics", buf, len);
    free(buf);
    m.A = m.B = NULL;
    if (model_blob_encode(&m, &buf, &len, NULL) < 0)
        exit(1);
    put(dir, "model_blob", "model", buf, len);
    free(buf);
    if (!d || nmf_delta_add_raw(d, A, 3, terms, rows, 1.0, NULL) < 0 ||
        model_blob_encode_delta(d, &buf, &len, NULL) < 0)
        exit(1);
    put(dir, "model_blob", "delta", buf, len);
    free(buf);
    nmf_delta_free(d);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-fuzz-seeds CORPUS_DIR\n");
        return 2;
    }
    events(argv[1]);
    blobs(argv[1]);
    return 0;
}
