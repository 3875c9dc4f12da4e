/*
 * value.c: a named shared scalar with an optional robust lock.
 *
 * Data layout (SK__VALUE_SIZE = 192 bytes at the data offset):
 *   0    128  sk_mutex (zero when the value is raw; header flag LOCKED says which)
 *   128    8  the element, little-endian, dtype from the header
 *   136   56  reserved, zero
 *
 * Locked values serialise every operation through the mutex, as
 * multiprocessing.Value does; raw values use one atomic instruction per
 * operation (a compare-and-swap loop for float addition). Each operation
 * has a timed form that gives up, having done nothing, when the lock is not
 * taken in time; the untimed ones wait without limit. After a lock holder
 * died, an operation does its work, marks the lock consistent (a scalar is
 * never half written: the element is one atomic store) and reports the
 * death: SK_EOWNERDEAD from get/set/add, a bit beside the swap result from
 * cas, so that the caller learns both facts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "clock.h"
#include "kinds.h"
#include "segment.h"
#include "shmkit/value.h"

#define ELEM_OFFSET 128u

struct sk_value {
	sk_segment *seg;
	sk_dtype dtype;
	size_t size;
	sk_mutex *m; /* NULL when raw */
	uint8_t *p;  /* the element */
};

static int init_value(uint8_t *base, const void *arg)
{
	(void)arg;
	return sk_mutex_init((sk_mutex *)(base + SK__HEADER_SIZE));
}

static int wrap(sk_segment *seg, void *outp)
{
	sk_value **out = outp;
	sk_value *v = calloc(1, sizeof *v);
	if (!v)
		return -ENOMEM;
	uint8_t *data = sk_segment_data(seg);
	v->seg = seg;
	v->dtype = (sk_dtype)seg->hdr.dtype;
	v->size = sk_dtype_size(v->dtype);
	v->m = (seg->hdr.flags & SK__HF_LOCKED) ? (sk_mutex *)data : NULL;
	v->p = data + ELEM_OFFSET;
	*out = v;
	return 0;
}

/* A value's header: a dtype, no shape, one item in SK__VALUE_SIZE bytes. */
static int check_fields(const sk__header *h)
{
	if (!sk_dtype_size((sk_dtype)h->dtype) || !sk__header_no_shape(h) || h->nitems != 1 ||
	    h->data_size != SK__VALUE_SIZE)
		return SK_ECORRUPT;
	return 0;
}

const sk__kind sk__kind_value = {
	.id = SK_KIND_VALUE, .name = "value", .hflags = SK__HF_LOCKED, .check = check_fields
};

int sk_value_create(const char *name, sk_dtype dtype, const sk_create_opts *opts, sk_value **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!sk_dtype_size(dtype) || (opts && (opts->flags & ~(SK__CREATE_COMMON | SK_CREATE_RAW))))
		return -EINVAL;
	bool raw = opts && (opts->flags & SK_CREATE_RAW);
	sk__seg_desc d = { .kind = &sk__kind_value,
			   .dtype = dtype,
			   .nitems = 1,
			   .data_size = SK__VALUE_SIZE,
			   .hflags = raw ? 0 : SK__HF_LOCKED,
			   .init = raw ? NULL : init_value };
	return sk__segment_create_wrapped(name, &d, opts, wrap, out);
}

int sk_value_open(const char *name, int flags, sk_value **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, flags, &sk__kind_value, &seg);
	if (rc)
		return rc;
	if (seg->hdr.flags & SK__HF_LOCKED) {
		sk_lock_state st;
		if (sk_mutex_state(sk_segment_data(seg), &st)) {
			sk_segment_close(seg);
			return SK_ECORRUPT;
		}
	}
	rc = wrap(seg, out);
	if (rc)
		sk_segment_close(seg);
	return rc;
}

int sk_value_close(sk_value *v)
{
	if (!v)
		return 0;
	sk_segment_close(v->seg);
	free(v);
	return 0;
}

sk_dtype sk_value_dtype(const sk_value *v)
{
	return v->dtype;
}

const char *sk_value_name(const sk_value *v)
{
	return sk_segment_name(v->seg);
}

sk_mutex *sk_value_mutex(const sk_value *v)
{
	return v->m;
}

void *sk_value_ptr(const sk_value *v)
{
	return v->p;
}

/* Takes the lock for one operation, waiting at most timeout_ns; a dead
 * holder's lock is repaired and reported through *died. */
static int enter(sk_value *v, bool write, bool *died, int64_t timeout_ns)
{
	*died = false;
	if ((v->seg->flags & SK_RDONLY) && (write || v->m))
		return SK_EREADONLY;
	if (!v->m)
		return 0;
	int rc = sk_mutex_lock(v->m, timeout_ns);
	if (rc == SK_EOWNERDEAD) {
		*died = true;
		rc = sk_mutex_consistent(v->m);
		if (rc)
			sk_mutex_unlock(v->m);
	}
	return rc;
}

static void leave(sk_value *v)
{
	if (v->m)
		sk_mutex_unlock(v->m);
}

int sk_value_get_timed(sk_value *v, void *out, int64_t timeout_ns)
{
	bool died;
	int rc = enter(v, false, &died, timeout_ns);
	if (rc)
		return rc;
	uint64_t raw = sk__atomic_load(v->p, v->size);
	memcpy(out, &raw, v->size);
	leave(v);
	return died ? SK_EOWNERDEAD : 0;
}

int sk_value_get(sk_value *v, void *out)
{
	return sk_value_get_timed(v, out, -1);
}

int sk_value_set_timed(sk_value *v, const void *in, int64_t timeout_ns)
{
	bool died;
	int rc = enter(v, true, &died, timeout_ns);
	if (rc)
		return rc;
	uint64_t raw = 0;
	memcpy(&raw, in, v->size);
	sk__atomic_store(v->p, v->size, raw);
	leave(v);
	return died ? SK_EOWNERDEAD : 0;
}

int sk_value_set(sk_value *v, const void *in)
{
	return sk_value_set_timed(v, in, -1);
}

static uint64_t float_add(uint64_t bits, const void *delta, size_t size)
{
	if (size == 4) {
		float a, d;
		uint32_t b = (uint32_t)bits;
		memcpy(&a, &b, 4);
		memcpy(&d, delta, 4);
		a += d;
		memcpy(&b, &a, 4);
		return b;
	}
	double a, d;
	memcpy(&a, &bits, 8);
	memcpy(&d, delta, 8);
	a += d;
	memcpy(&bits, &a, 8);
	return bits;
}

int sk_value_add_timed(sk_value *v, const void *delta, void *old, int64_t timeout_ns)
{
	if (v->dtype == SK_BOOL)
		return -EINVAL;
	bool died;
	int rc = enter(v, true, &died, timeout_ns);
	if (rc)
		return rc;
	uint64_t prev;
	if (v->dtype == SK_FLOAT32 || v->dtype == SK_FLOAT64) {
		prev = sk__atomic_load(v->p, v->size);
		while (!sk__atomic_cas(v->p, v->size, &prev, float_add(prev, delta, v->size)))
			;
	} else {
		uint64_t d = 0;
		memcpy(&d, delta, v->size);
		prev = sk__atomic_rmw(v->p, v->size, SK__OP_ADD, d);
	}
	if (old)
		memcpy(old, &prev, v->size);
	leave(v);
	return died ? SK_EOWNERDEAD : 0;
}

int sk_value_add(sk_value *v, const void *delta, void *old)
{
	return sk_value_add_timed(v, delta, old, -1);
}

int sk_value_cas_timed(sk_value *v, void *expected, const void *desired, int64_t timeout_ns)
{
	bool died;
	int rc = enter(v, true, &died, timeout_ns);
	if (rc)
		return rc;
	uint64_t e = 0, d = 0;
	memcpy(&e, expected, v->size);
	memcpy(&d, desired, v->size);
	bool swapped = sk__atomic_cas(v->p, v->size, &e, d);
	if (!swapped)
		memcpy(expected, &e, v->size);
	leave(v);
	return (swapped ? SK_VALUE_SWAPPED : 0) | (died ? SK_VALUE_OWNERDEAD : 0);
}

int sk_value_cas(sk_value *v, void *expected, const void *desired)
{
	return sk_value_cas_timed(v, expected, desired, -1);
}

int sk_value_lock(sk_value *v, int64_t timeout_ns)
{
	if (!v->m)
		return -EINVAL;
	if ((v->seg->flags & SK_RDONLY))
		return SK_EREADONLY;
	return sk_mutex_lock(v->m, timeout_ns);
}

int sk_value_unlock(sk_value *v)
{
	return v->m ? sk_mutex_unlock(v->m) : -EINVAL;
}

int sk_value_consistent(sk_value *v)
{
	return v->m ? sk_mutex_consistent(v->m) : -EINVAL;
}
