/*
 * shmkit/value.h: a named shared scalar, the multiprocessing.Value of C.
 *
 * A value holds one element of any array dtype. By default it carries a
 * robust mutex, like multiprocessing.Value(lock=True): get, set, add and
 * compare-and-swap take the lock, and sk_value_lock/unlock bracket compound
 * updates through sk_value_ptr. Created with SK_CREATE_RAW it has no lock and
 * every operation is a lock-free atomic instruction.
 *
 * Owner death: when a process dies holding the value's lock, the next
 * operation that takes the lock is told. get/set/add/cas still do their work
 * and mark the lock consistent (a scalar is never half written): get, set
 * and add return SK_EOWNERDEAD, cas reports the death beside its result.
 * sk_value_lock leaves the decision to its caller, who must call
 * sk_value_consistent before sk_value_unlock (see shmkit/sync.h).
 *
 * Timeouts: get, set, add and cas wait for the lock as long as it takes; the
 * _timed forms wait at most timeout_ns (negative: forever, 0: not at all)
 * and return -ETIMEDOUT, having done nothing, when it runs out (a caller
 * that must run signal handlers while it waits calls them in slices). On a
 * raw value they never wait.
 *
 * Memory order: every operation is sequentially consistent.
 */
#ifndef SHMKIT_VALUE_H
#define SHMKIT_VALUE_H

#include <stdint.h>

#include "common.h"
#include "segment.h"
#include "sync.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_value sk_value;

/* Creates a zero value of dtype under name (NULL: generated). opts->flags may
 * hold SK_CREATE_RAW. */
int sk_value_create(const char *name, sk_dtype dtype, const sk_create_opts *opts, sk_value **out);
/* SK_EKIND if the segment is not a value. flags: SK_RDWR or SK_RDONLY (a
 * read-only handle can read a raw value only: a lock needs writing). */
int sk_value_open(const char *name, int flags, sk_value **out);
int sk_value_close(sk_value *v);

sk_dtype sk_value_dtype(const sk_value *v);
const char *sk_value_name(const sk_value *v);
sk_mutex *sk_value_mutex(const sk_value *v); /* NULL for a raw value */
void *sk_value_ptr(const sk_value *v);       /* the element itself, for use under the lock */

/* The element is copied from/to *out / *in (sk_dtype_size bytes). Return 0,
 * SK_EOWNERDEAD (done; see above), SK_EREADONLY, SK_ECORRUPT, and for the
 * _timed forms -ETIMEDOUT (nothing done). */
int sk_value_get(sk_value *v, void *out);
int sk_value_set(sk_value *v, const void *in);
int sk_value_get_timed(sk_value *v, void *out, int64_t timeout_ns);
int sk_value_set_timed(sk_value *v, const void *in, int64_t timeout_ns);
/* *v += *delta; the previous value goes to *old unless NULL. -EINVAL for bool. */
int sk_value_add(sk_value *v, const void *delta, void *old);
int sk_value_add_timed(sk_value *v, const void *delta, void *old, int64_t timeout_ns);

/* Compare-and-swap: if *v equals *expected, stores *desired; otherwise
 * copies the current value into *expected. Returns a non-negative set of
 * bits: SK_VALUE_SWAPPED if it stored, and SK_VALUE_OWNERDEAD when the
 * lock's previous holder had died (the lock is repaired; the swap was done
 * or not as the first bit says, exactly once). Test the bit: `rc &
 * SK_VALUE_SWAPPED`, never `rc == 1`. Negative codes as for get, nothing
 * done. */
#define SK_VALUE_SWAPPED   0x1
#define SK_VALUE_OWNERDEAD 0x2
int sk_value_cas(sk_value *v, void *expected, const void *desired);
int sk_value_cas_timed(sk_value *v, void *expected, const void *desired, int64_t timeout_ns);

/* For compound updates of a locked value (-EINVAL for a raw one). */
int sk_value_lock(sk_value *v, int64_t timeout_ns);
int sk_value_unlock(sk_value *v);
int sk_value_consistent(sk_value *v);

#ifdef __cplusplus
}
#endif
#endif
