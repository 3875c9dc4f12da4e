/*
 * array.c: typed N-d arrays over a segment.
 *
 * The segment header carries dtype, ndim and shape; the data region holds
 * the elements in C order starting at a page boundary. A handle caches
 * shape and byte strides computed from the validated header copy; it holds
 * no shared state of its own, so concurrency is that of plain shared memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "kinds.h"
#include "segment.h"
#include "shmkit/array.h"

struct sk_array {
	sk_segment *seg;
	sk_mutex *m; /* in the header's live area, or NULL */
	sk_dtype dtype;
	int ndim;
	uint64_t size;
	uint64_t shape[SK_MAX_DIMS];
	int64_t strides[SK_MAX_DIMS];
};

static int wrap(sk_segment *seg, void *outp)
{
	sk_array **out = outp;
	sk_array *a = sk__handle_alloc(sizeof *a);
	if (!a)
		return -ENOMEM;
	const sk__header *h = &seg->hdr;
	a->seg = seg;
	a->m = (h->flags & SK__HF_LOCKED) ? (sk_mutex *)(seg->base + SK__LOCK_OFFSET) : NULL;
	a->dtype = (sk_dtype)h->dtype;
	a->ndim = (int)h->ndim;
	a->size = h->nitems;
	int64_t stride = (int64_t)sk_dtype_size(a->dtype);
	for (int i = a->ndim - 1; i >= 0; i--) {
		a->shape[i] = h->shape[i];
		a->strides[i] = stride;
		/* Cannot overflow: the header's total size fits in 64 bits. An
		 * empty dimension makes the product 0, like NumPy's strides. */
		stride *= (int64_t)(h->shape[i] ? h->shape[i] : 1);
	}
	*out = a;
	return 0;
}

/* An array's header: a dtype, at most SK_MAX_DIMS dimensions (the rest of
 * the shape zero), nitems their product and data_size nitems elements. */
static int check_fields(const sk__header *h)
{
	size_t isz = sk_dtype_size((sk_dtype)h->dtype);
	if (!isz || h->ndim > SK_MAX_DIMS)
		return SK_ECORRUPT;
	uint64_t n = 1;
	for (uint32_t i = 0; i < SK_MAX_DIMS; i++) {
		if (i >= h->ndim) {
			if (h->shape[i])
				return SK_ECORRUPT;
		} else if (__builtin_mul_overflow(n, h->shape[i], &n)) {
			return SK_ECORRUPT;
		}
	}
	uint64_t bytes;
	if (n != h->nitems || __builtin_mul_overflow(n, (uint64_t)isz, &bytes) || bytes != h->data_size)
		return SK_ECORRUPT;
	return 0;
}

const sk__kind sk__kind_array = {
	.id = SK_KIND_ARRAY, .name = "array", .hflags = SK__HF_LOCKED, .check = check_fields
};

static int init_lock(uint8_t *base, const void *arg)
{
	(void)arg;
	return sk_mutex_init((sk_mutex *)(base + SK__LOCK_OFFSET));
}

int sk_array_create(const char *name, sk_dtype dtype, int ndim, const uint64_t *shape, const sk_create_opts *opts,
		    sk_array **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	size_t isz = sk_dtype_size(dtype);
	if (!isz || ndim < 0 || ndim > SK_MAX_DIMS || (ndim > 0 && !shape))
		return -EINVAL;
	uint64_t n = 1, bytes;
	for (int i = 0; i < ndim; i++)
		if (__builtin_mul_overflow(n, shape[i], &n))
			return -EOVERFLOW;
	if (__builtin_mul_overflow(n, (uint64_t)isz, &bytes) || bytes > (uint64_t)INT64_MAX)
		return -EOVERFLOW;
	if (opts && (opts->flags & ~(SK__CREATE_COMMON | SK_CREATE_LOCKED)))
		return -EINVAL;
	bool locked = opts && (opts->flags & SK_CREATE_LOCKED);
	sk__seg_desc d = { .kind = &sk__kind_array,
			   .dtype = dtype,
			   .ndim = ndim,
			   .shape = shape,
			   .nitems = n,
			   .data_size = bytes,
			   .hflags = locked ? SK__HF_LOCKED : 0,
			   .init = locked ? init_lock : NULL };
	return sk__segment_create_wrapped(name, &d, opts, wrap, out);
}

int sk_array_open_as(const char *name, int flags, sk_dtype dtype, int ndim, const uint64_t *shape, sk_array **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, flags, &sk__kind_array, &seg);
	if (rc)
		return rc;
	const sk__header *h = &seg->hdr;
	bool ok = (!dtype || h->dtype == (uint32_t)dtype) && (ndim < 0 || h->ndim == (uint32_t)ndim);
	if (ok && shape) {
		if (ndim < 0) /* a shape without a rank means nothing */
			ok = false;
		for (int i = 0; ok && i < ndim; i++)
			ok = h->shape[i] == shape[i];
	}
	if (!ok) {
		sk_segment_close(seg);
		return SK_ETYPE;
	}
	sk_lock_state st;
	if ((h->flags & SK__HF_LOCKED) && sk_mutex_state((sk_mutex *)(seg->base + SK__LOCK_OFFSET), &st)) {
		sk_segment_close(seg);
		return SK_ECORRUPT;
	}
	rc = wrap(seg, out);
	if (rc)
		sk_segment_close(seg);
	return rc;
}

int sk_array_open(const char *name, int flags, sk_array **out)
{
	return sk_array_open_as(name, flags, 0, -1, NULL, out);
}

int sk_array_close(sk_array *a)
{
	if (!a)
		return 0;
	sk_segment_close(a->seg);
	sk__handle_free(a);
	return 0;
}

sk_dtype sk_array_dtype(const sk_array *a)
{
	return a->dtype;
}

int sk_array_ndim(const sk_array *a)
{
	return a->ndim;
}

const uint64_t *sk_array_shape(const sk_array *a)
{
	return a->shape;
}

const int64_t *sk_array_strides(const sk_array *a)
{
	return a->strides;
}

uint64_t sk_array_size(const sk_array *a)
{
	return a->size;
}

uint64_t sk_array_nbytes(const sk_array *a)
{
	return a->seg->hdr.data_size;
}

void *sk_array_data(const sk_array *a)
{
	return sk_segment_data(a->seg);
}

const char *sk_array_name(const sk_array *a)
{
	return sk_segment_name(a->seg);
}

sk_segment *sk_array_segment(const sk_array *a)
{
	return a->seg;
}

sk_mutex *sk_array_mutex(const sk_array *a)
{
	return a->m;
}

int sk_array_lock(sk_array *a, int64_t timeout_ns)
{
	if (!a->m)
		return -EINVAL;
	if (a->seg->flags & SK_RDONLY)
		return SK_EREADONLY;
	return sk_mutex_lock(a->m, timeout_ns);
}

int sk_array_unlock(sk_array *a)
{
	return a->m ? sk_mutex_unlock(a->m) : -EINVAL;
}

/* The element for an atomic operation, or an error. */
static int element(const sk_array *a, uint64_t i, bool write, void **p)
{
	if (!sk__dtype_integer(a->dtype))
		return SK_ETYPE;
	if (i >= a->size)
		return -ERANGE;
	if (write && (a->seg->flags & SK_RDONLY))
		return SK_EREADONLY;
	*p = (uint8_t *)sk_segment_data(a->seg) + i * sk_dtype_size(a->dtype);
	return 0;
}

static int rmw(sk_array *a, uint64_t i, int op, int64_t v, int64_t *old)
{
	void *p;
	int rc = element(a, i, true, &p);
	if (rc)
		return rc;
	size_t sz = sk_dtype_size(a->dtype);
	uint64_t prev = sk__atomic_rmw(p, sz, op, (uint64_t)v);
	if (old)
		*old = sk__extend(prev, sz, sk__dtype_signed(a->dtype));
	return 0;
}

int sk_array_atomic_load(const sk_array *a, uint64_t i, int64_t *out)
{
	void *p;
	int rc = element(a, i, false, &p);
	if (rc)
		return rc;
	size_t sz = sk_dtype_size(a->dtype);
	*out = sk__extend(sk__atomic_load(p, sz), sz, sk__dtype_signed(a->dtype));
	return 0;
}

int sk_array_atomic_store(sk_array *a, uint64_t i, int64_t v)
{
	void *p;
	int rc = element(a, i, true, &p);
	if (!rc)
		sk__atomic_store(p, sk_dtype_size(a->dtype), (uint64_t)v);
	return rc;
}

int sk_array_atomic_exchange(sk_array *a, uint64_t i, int64_t v, int64_t *old)
{
	return rmw(a, i, SK__OP_XCHG, v, old);
}

int sk_array_atomic_cas(sk_array *a, uint64_t i, int64_t *expected, int64_t desired)
{
	void *p;
	int rc = element(a, i, true, &p);
	if (rc)
		return rc;
	size_t sz = sk_dtype_size(a->dtype);
	uint64_t e = (uint64_t)*expected;
	if (sz < 8)
		e &= (UINT64_C(1) << (8 * sz)) - 1;
	bool ok = sk__atomic_cas(p, sz, &e, (uint64_t)desired);
	if (!ok)
		*expected = sk__extend(e, sz, sk__dtype_signed(a->dtype));
	return ok;
}

int sk_array_fetch_add(sk_array *a, uint64_t i, int64_t delta, int64_t *old)
{
	return rmw(a, i, SK__OP_ADD, delta, old);
}

int sk_array_fetch_or(sk_array *a, uint64_t i, int64_t mask, int64_t *old)
{
	return rmw(a, i, SK__OP_OR, mask, old);
}

int sk_array_fetch_and(sk_array *a, uint64_t i, int64_t mask, int64_t *old)
{
	return rmw(a, i, SK__OP_AND, mask, old);
}

int sk_array_wrap(sk_segment *seg, sk_array **out)
{
	if (!seg || !out)
		return -EINVAL;
	*out = NULL;
	if (seg->hdr.kind != SK_KIND_ARRAY)
		return SK_EKIND;
	sk_lock_state st;
	if ((seg->hdr.flags & SK__HF_LOCKED) && sk_mutex_state((sk_mutex *)(seg->base + SK__LOCK_OFFSET), &st))
		return SK_ECORRUPT;
	return wrap(seg, out);
}
