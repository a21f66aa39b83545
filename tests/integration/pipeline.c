/*
 * pipeline.c - worker-side test helpers over the real servers.
 */
#include "pipeline.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/model_blob.h"
#include "model/store.h"
#include "pg/pg.h"
#include "wire/event_codec.h"

static tf_broker *confirming_broker(harness *h)
{
    tf_topology topo = tf_topology_defaults();
    tf_broker *b = harness_broker(h);
    tf_err err;

    if (tf_topology_declare(b, &topo, NULL, &err) < 0 || tf_broker_confirm_select(b, &err) < 0)
        fail_msg("%s", err.msg);
    return b;
}

static void publish(harness *h, const char *rkey, const void *body, size_t len, int schema,
                    const char *message_id)
{
    tf_broker *b = confirming_broker(h);
    amqp_basic_properties_t props;
    amqp_table_entry_t header;
    uint8_t state[1] = {TF_CONFIRM_PENDING};
    uint64_t tag;
    tf_err err;

    memset(&props, 0, sizeof(props));
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.content_type = amqp_cstring_bytes(TF_CONTENT_TYPE);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (message_id) {
        props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props.message_id = amqp_cstring_bytes(message_id);
    }
    if (schema >= 0) {
        header.key = amqp_cstring_bytes(TF_HEADER_SCHEMA);
        header.value.kind = AMQP_FIELD_KIND_I32;
        header.value.value.i32 = schema;
        props._flags |= AMQP_BASIC_HEADERS_FLAG;
        props.headers.num_entries = 1;
        props.headers.entries = &header;
    }
    if (tf_broker_publish(b, TF_EXCHANGE_EVENTS, rkey, &props, body, len, &tag, &err) < 0 ||
        tf_broker_wait_confirms(b, tag, 1, state, 1, 10, NULL, NULL, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(state[0], TF_CONFIRM_ACK);
    tf_broker_close(b);
}

void pipeline_publish(harness *h, int64_t id, const char *type, const char *doc_id,
                      int64_t version, const char *title, const char *description)
{
    tf_event_field fields[2];
    tf_event ev;
    char *body, rkey[64], mid[32];
    size_t len;
    tf_err err;

    memset(&ev, 0, sizeof(ev));
    ev.id = id;
    if (tf_event_type_parse(type, strlen(type), &ev.type) < 0)
        fail_msg("bad type %s", type);
    ev.aggregate = (tf_str){"internship", 10};
    ev.aggregate_id = (tf_str){doc_id, strlen(doc_id)};
    ev.version = version;
    ev.occurred_at = 1764000000000000LL;
    ev.source = (tf_str){"public.internships", 18};
    if (title) {
        fields[0].name = (tf_str){"title", 5};
        fields[0].value = (tf_str){title, strlen(title)};
        fields[1].name = (tf_str){"description", 11};
        fields[1].value = (tf_str){description ? description : "", description ? strlen(description) : 0};
        ev.fields = fields;
        ev.n_fields = 2;
    }
    if (tf_event_encode(&ev, &body, &len, &err) < 0)
        fail_msg("%s", err.msg);
    snprintf(rkey, sizeof(rkey), "internship.%s", type);
    snprintf(mid, sizeof(mid), "%lld", (long long)id);
    publish(h, rkey, body, len, TF_EVENT_SCHEMA, mid);
    free(body);
}

void pipeline_publish_raw(harness *h, const void *body, size_t len, int schema, const char *message_id)
{
    publish(h, "internship.created", body, len, schema, message_id);
}

long long pipeline_queue_depth(harness *h, const char *queue)
{
    tf_broker *b = confirming_broker(h);
    uint32_t messages, consumers;
    tf_err err;

    if (tf_broker_queue_info(b, queue, &messages, &consumers, &err) < 0)
        fail_msg("%s", err.msg);
    tf_broker_close(b);
    return messages;
}

void pipeline_assert_df_consistent(harness *h)
{
    assert_int_equal(harness_scalar(h,
        "with actual as (select t, count(*) c from topicflow.documents, unnest(term_ids) t"
        "                where not deleted group by t),"
        " pending as (select t, sum(d) s from topicflow.model_deltas,"
        "             unnest(df_terms, df_deltas) u(t, d) group by t)"
        " select count(*) from topicflow.terms x left join actual a on a.t = x.id"
        " left join pending p on p.t = x.id"
        " where x.df + coalesce(p.s, 0) <> coalesce(a.c, 0)"), 0);
}

void pipeline_assert_doc_count_consistent(harness *h)
{
    if (harness_scalar(h, "select count(*) from topicflow.model") == 0)
        return;
    assert_int_equal(harness_scalar(h,
        "select (select n_docs from topicflow.model order by version desc limit 1)"
        " + (select coalesce(sum(n_docs), 0) from topicflow.model_deltas)"
        " - (select count(*) from topicflow.documents where not deleted)"), 0);
}

static void apply_pending_deltas(harness *h, tf_model *m)
{
    char epoch[32];
    const char *params[1] = {epoch};
    PGresult *res;
    tf_err err;
    int32_t n_terms =
        (int32_t)harness_scalar(h, "select coalesce(max(id), -1) + 1 from topicflow.terms");

    snprintf(epoch, sizeof(epoch), "%lld", (long long)m->epoch);
    res = PQexecParams(h->pg, "select delta from topicflow.model_deltas"
                              " where base_version >= $1 and delta is not null",
                       1, NULL, params, NULL, NULL, 1);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    for (int r = 0; r < PQntuples(res); r++) {
        nmf_delta *d = model_blob_decode_delta((const uint8_t *)PQgetvalue(res, r, 0),
                                               (size_t)PQgetlength(res, r, 0), n_terms, &err);
        if (!d || nmf_stats_apply(m->stats, d, &err) < 0)
            fail_msg("%s", err.msg);
        nmf_delta_free(d);
    }
    PQclear(res);
}

void pipeline_assert_statistics_consistent(harness *h)
{
    tf_model m;
    tf_err err;
    PGresult *res;
    char epoch[32];
    const char *params[1] = {epoch};
    double *A, *B, scale = 0, worst = 0;
    int32_t n_terms;
    int k, rc;

    memset(&m, 0, sizeof(m));
    rc = tf_model_load(h->pg, 1, &m, &err);
    if (rc < 0)
        fail_msg("%s", err.msg);
    if (rc == 0)
        return;
    apply_pending_deltas(h, &m);
    k = m.k;
    n_terms = nmf_stats_n_terms(m.stats);
    A = calloc((size_t)k * (size_t)k, sizeof(double));
    B = calloc((size_t)n_terms * (size_t)k + 1, sizeof(double));
    snprintf(epoch, sizeof(epoch), "%lld", (long long)m.epoch);
    res = PQexecParams(h->pg, "select term_ids, weights, topics from topicflow.documents"
                              " where not deleted and model_version >= $1",
                       1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    for (int r = 0; r < PQntuples(res); r++) {
        int32_t *ids;
        float *w, *t;
        size_t n, nw, nt;
        if (tf_pg_parse_int_array(PQgetvalue(res, r, 0), &ids, &n, &err) < 0 ||
            tf_pg_parse_float_array(PQgetvalue(res, r, 1), &w, &nw, &err) < 0 ||
            tf_pg_parse_float_array(PQgetvalue(res, r, 2), &t, &nt, &err) < 0)
            fail_msg("%s", err.msg);
        assert_int_equal(nt, (size_t)k);
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                A[i * k + j] += (double)t[i] * (double)t[j];
        for (size_t e = 0; e < n; e++) {
            assert_true(ids[e] < n_terms);
            for (int j = 0; j < k; j++)
                B[(size_t)ids[e] * (size_t)k + (size_t)j] += (double)w[e] * (double)t[j];
        }
        free(ids);
        free(w);
        free(t);
    }
    PQclear(res);
    for (int i = 0; i < k * k; i++) {
        scale = fmax(scale, fabs(A[i]));
        worst = fmax(worst, fabs(A[i] - nmf_stats_A(m.stats)[i]));
    }
    for (size_t i = 0; i < (size_t)n_terms * (size_t)k; i++)
        worst = fmax(worst, fabs(B[i] - nmf_stats_B(m.stats)[i]));
    if (worst > 1e-6 * fmax(scale, 1.0))
        fail_msg("statistics differ from the documents by %g (scale %g)", worst, scale);
    free(A);
    free(B);
    tf_model_clear(&m);
}

pid_t pipeline_spawn_worker(harness *h, const char *const *extra)
{
    const char *args[24] = {"--k", "4", "--min-docs", "20", "--refresh-every", "3",
                            "--refresh-interval", "200ms", "--batch-wait", "5ms"};
    int n = 10;

    for (; extra && *extra && n < 22; extra++)
        args[n++] = *extra;
    args[n] = NULL;
    return harness_spawn(h, "topicflow-worker", args);
}
