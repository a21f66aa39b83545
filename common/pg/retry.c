/*
 * retry.c - the retry policy (see retry.h). The classes are SQLSTATE classes (the first two
 * characters) or exact codes, from PostgreSQL's Appendix A "PostgreSQL Error Codes".
 */
#include "pg/retry.h"

#include <string.h>

/* Exact codes first (they refine a class), then whole classes. */
static const struct {
    const char *code;
    tf_failure_class cls;
} rules[] = {
    {"23505", TF_FAILURE_TRANSIENT}, /* unique_violation: only processed_events can raise it,
                                        when another worker committed the event first */
    {"40001", TF_FAILURE_TRANSIENT}, /* serialization_failure */
    {"40P01", TF_FAILURE_TRANSIENT}, /* deadlock_detected */
    {"55P03", TF_FAILURE_TRANSIENT}, /* lock_not_available (lock_timeout) */
    {"57014", TF_FAILURE_TRANSIENT}, /* query_canceled (statement_timeout, pg_cancel_backend) */
    {"57P01", TF_FAILURE_TRANSIENT}, /* admin_shutdown */
    {"57P02", TF_FAILURE_TRANSIENT}, /* crash_shutdown */
    {"57P03", TF_FAILURE_TRANSIENT}, /* cannot_connect_now (starting up) */
    {"57P04", TF_FAILURE_TRANSIENT}, /* database_dropped: the operator's doing; wait */
    {TF_CODE_STALE_MODEL, TF_FAILURE_TRANSIENT},
    {"08", TF_FAILURE_TRANSIENT},    /* connection exception */
    {"53", TF_FAILURE_TRANSIENT},    /* insufficient resources (disk full, out of memory, too many connections) */
    {"58", TF_FAILURE_TRANSIENT},    /* system error (I/O) */
    {"22", TF_FAILURE_PERMANENT},    /* data exception: this event's data */
    {"23", TF_FAILURE_PERMANENT},    /* integrity constraint violation (23505 above) */
    {"54", TF_FAILURE_PERMANENT},    /* program limit exceeded: row or array too large */
};

tf_failure_class tf_failure_classify(const tf_err *err, int connection_ok)
{
    if (!connection_ok)
        return TF_FAILURE_TRANSIENT;
    if (!err || !err->code[0])
        return TF_FAILURE_OURS;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        size_t n = strlen(rules[i].code);
        if (strncmp(err->code, rules[i].code, n) == 0 && (n == 2 || err->code[n] == '\0'))
            return rules[i].cls;
    }
    return TF_FAILURE_OURS;
}

const char *tf_failure_name(tf_failure_class c)
{
    switch (c) {
    case TF_FAILURE_TRANSIENT: return "transient";
    case TF_FAILURE_PERMANENT: return "permanent";
    default: return "ours";
    }
}
