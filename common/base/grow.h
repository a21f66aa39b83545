/*
 * grow.h - the one growable array: make room for `need` elements of size `elem` in a
 * malloc'd array with capacity *cap, doubling (from 16) so that appends cost amortised O(1).
 * On failure the array and *cap are unchanged, so the caller still owns and frees it.
 */
#ifndef TF_GROW_H
#define TF_GROW_H

#include <stddef.h>

/* 0 when *p holds at least need elements (reallocated if it had to), -1 out of memory or
 * when need * elem overflows. */
int tf_grow(void **p, size_t *cap, size_t need, size_t elem);

/* The same for a typed pointer: TF_GROW(arr, cap, need) with arr an lvalue `T *`. */
#define TF_GROW(arr, cap, need) tf_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

#endif
