/*
 * par.h - deterministic parallel loops over row ranges for the numeric kernels.
 *
 * par_for cuts the rows [0, n) into `threads` contiguous ranges whose boundaries depend
 * only on n, the thread count and the optional cost prefix sums, so a kernel that writes
 * each row from one thread gives bit-identical results for a given thread count.
 * par_for_parts hands out many fixed parts dynamically instead, for kernels that keep
 * one partial result per part.
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

/* fn(ctx, worker, part, begin, end): rows [begin, end) of one part, on worker thread
 * `worker` (in [0, threads): the index of per-thread scratch). */
typedef void (*par_part_fn)(void *ctx, int worker, int part, int64_t begin, int64_t end);

/* Run fn over the parts [bounds[p], bounds[p + 1]) for p in [0, parts), handed out in
 * order to up to `threads` threads as each finishes its previous part: a thread that the
 * system deschedules, or one with heavier rows, takes fewer parts. Which thread runs a
 * part varies from run to run, so fn must write its results per part (never per
 * worker) for them to be reproducible; they then do not depend on the thread count
 * either. threads <= 1 runs inline. */
void par_for_parts(int parts, const int64_t *bounds, int threads, par_part_fn fn, void *ctx);

#endif
