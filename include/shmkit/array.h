/*
 * shmkit/array.h: typed N-dimensional arrays in named segments.
 *
 * An array is a segment of kind SK_KIND_ARRAY whose header records its dtype
 * and shape (0 to 32 dimensions, C order). Data is zero-filled at creation
 * and page aligned. Anyone can open it by name alone and gets dtype, shape,
 * strides and data pointer from the header; the same memory is what NumPy sees
 * through the Python module and what `shmkit export` writes.
 *
 * Handles are process-local and inherited by fork; reading and writing
 * elements from many processes at once is ordinary shared memory: use the
 * lock or atomic primitives for read-modify-write.
 */
#ifndef SHMKIT_ARRAY_H
#define SHMKIT_ARRAY_H

#include <stdint.h>

#include "common.h"
#include "segment.h"
#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_array sk_array;

/* Creates a zero-filled array under `name` (NULL: generated unique name).
 * ndim is 0..SK_MAX_DIMS; shape holds ndim extents (may be NULL when ndim is 0);
 * an extent of 0 gives an empty array. Errors: SK_EBADNAME, -EINVAL (bad dtype
 * or ndim), -EOVERFLOW (size does not fit in 64 bits), -EEXIST, -ENOSPC. */
int sk_array_create(const char *name, sk_dtype dtype, int ndim, const uint64_t *shape, const sk_create_opts *opts,
		    sk_array **out);

/* Opens an existing array by name; dtype and shape come from its header.
 * flags as sk_segment_open (SK_RDONLY, SK_OPEN_ANY_OWNER). SK_EKIND if the
 * segment is not an array; header and owner errors as sk_segment_open. */
int sk_array_open(const char *name, int flags, sk_array **out);

/* Like sk_array_open, but refuses with SK_ETYPE unless the array has the given
 * dtype (0: any), number of dimensions (negative: any) and shape (NULL: any). */
int sk_array_open_as(const char *name, int flags, sk_dtype dtype, int ndim, const uint64_t *shape, sk_array **out);

/* Unmaps and frees the handle; accepts NULL. The name stays. Returns 0. */
int sk_array_close(sk_array *a);

/* Makes an array handle of a segment handle (from sk_segment_recv or
 * sk_segment_open_fd, say). On success the array owns seg: close the array,
 * not seg. SK_EKIND if the segment is not an array (seg stays the caller's). */
int sk_array_wrap(sk_segment *seg, sk_array **out);

sk_dtype sk_array_dtype(const sk_array *a);
int sk_array_ndim(const sk_array *a);
const uint64_t *sk_array_shape(const sk_array *a);  /* ndim extents */
const int64_t *sk_array_strides(const sk_array *a); /* ndim byte strides, C order */
uint64_t sk_array_size(const sk_array *a);          /* number of elements */
uint64_t sk_array_nbytes(const sk_array *a);        /* size * itemsize */
void *sk_array_data(const sk_array *a);             /* NULL for an empty array */
const char *sk_array_name(const sk_array *a);
sk_segment *sk_array_segment(const sk_array *a); /* the underlying segment; owned by a */

/* Arrays created with SK_CREATE_LOCKED carry a robust mutex in their header,
 * like multiprocessing.Array(lock=True).get_lock(). sk_array_mutex returns it
 * (NULL for an array without one); lock and unlock are shorthands whose
 * results are those of sk_mutex_lock/unlock (-EINVAL without a lock,
 * SK_EREADONLY on a read-only handle). */
sk_mutex *sk_array_mutex(const sk_array *a);
int sk_array_lock(sk_array *a, int64_t timeout_ns);
int sk_array_unlock(sk_array *a);

/* Atomic element operations on integer arrays (int8 .. uint64), element i of
 * the flattened array. Values travel as int64_t: for unsigned dtypes the low
 * bits are the element (uint64 elements above INT64_MAX come back negative).
 * Every operation is sequentially consistent (a full barrier). Errors:
 * -ERANGE for i >= size, SK_ETYPE for bool or float arrays, SK_EREADONLY. */
int sk_array_atomic_load(const sk_array *a, uint64_t i, int64_t *out);
int sk_array_atomic_store(sk_array *a, uint64_t i, int64_t v);
int sk_array_atomic_exchange(sk_array *a, uint64_t i, int64_t v, int64_t *old);
/* 1 if the element equalled *expected and now holds desired; 0 otherwise,
 * with the element's value in *expected. */
int sk_array_atomic_cas(sk_array *a, uint64_t i, int64_t *expected, int64_t desired);
int sk_array_fetch_add(sk_array *a, uint64_t i, int64_t delta, int64_t *old);
int sk_array_fetch_or(sk_array *a, uint64_t i, int64_t mask, int64_t *old);
int sk_array_fetch_and(sk_array *a, uint64_t i, int64_t mask, int64_t *old);

#ifdef __cplusplus
}
#endif
#endif
