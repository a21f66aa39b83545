/*
 * topic_match.h - keeping topic ids stable across model versions.
 *
 * New topics are matched to old ones by a maximum-weight assignment on the cosine
 * similarity of their term columns (Hungarian algorithm, O(n³)), so a refit that finds
 * the same themes in another order keeps every theme's id.
 */
#ifndef TF_TOPIC_MATCH_H
#define TF_TOPIC_MATCH_H

#include <stdint.h>

#include "base/error.h"

/* W_old (terms_old × k_old) and W_new (terms_new × k_new) are row-major, nmf.h layout.
 * Cosines use the first min(terms_old, terms_new) terms: term ids are stable and the
 * vocabulary only grows. On return map_new_to_old[j] (k_new entries) is the old id of new
 * topic j, or -1 when k_new > k_old and topic j found no partner (the caller gives it a
 * fresh id); every old id appears at most once. similarity (k_new entries, may be NULL)
 * gets the cosine of each matched pair (0 for -1). The total matched cosine is maximal.
 * Returns 0, or -1 with err set. */
int topic_match(const double *W_old, int32_t terms_old, int k_old, const double *W_new,
                int32_t terms_new, int k_new, int *map_new_to_old, double *similarity,
                tf_err *err);

/* Minimum-cost assignment of n_rows rows to distinct columns of the row-major
 * n_rows × n_cols cost matrix, n_rows <= n_cols: assign[i] is row i's column. */
int topic_assign_min(const double *cost, int n_rows, int n_cols, int *assign, tf_err *err);

#endif
