/*
 * par.h - a deterministic parallel loop over row ranges for the numeric kernels.
 *
 * The rows [0, n) are cut into `threads` contiguous ranges whose boundaries depend only
 * on n, the thread count and the optional cost prefix sums, so a kernel that writes each
 * row from one thread gives bit-identical results for a given thread count.
 */
#ifndef TF_PAR_H
#define TF_PAR_H

#include <stdint.h>

/* Parts beyond this are not used: part indices are always below it. */
#define PAR_MAX_THREADS 256

/* fn(ctx, part, begin, end) processes rows [begin, end); part is in [0, threads). */
typedef void (*par_range_fn)(void *ctx, int part, int64_t begin, int64_t end);

/* Run fn over [0, n) in up to `threads` parts (threads <= 1 runs inline, no thread is
 * created). When cost != NULL it holds n + 1 non-decreasing prefix sums (e.g. CSR row_ptr)
 * and parts are balanced by cost instead of by row count. A part whose thread cannot be
 * started runs on the calling thread, so every row is always processed exactly once.
 * Returns the number of parts used (>= 1). */
int par_for(int64_t n, int threads, const int64_t *cost, par_range_fn fn, void *ctx);

/* The boundaries par_for would use: bounds[0..parts], parts returned. bounds has room
 * for threads + 1 entries. */
int par_split(int64_t n, int threads, const int64_t *cost, int64_t *bounds);

#endif
