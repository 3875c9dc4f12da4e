/*
 * python/ext/bits.c: shmkit.Bits, a bit array in a segment (the library's
 * sk_bits), as a full bit-array type: single bits and slices, iteration,
 * and/or/xor/not and their in-place forms, count and find over ranges,
 * zero-copy views (NumPy uint8/uint64, bitarray) and copies in and out
 * (NumPy bool arrays, packed bytes, bitarray objects).
 *
 * Bit order is fixed: bit i is bit i % 64 of the little-endian word i / 64,
 * so byte i / 8 holds bit i at position i % 8 ("little" bit order, as
 * numpy.packbits(bitorder="little") and bitarray(endian="little")). Every
 * conversion takes the order from the other side's own description (a bool
 * array has none to get wrong, a bitarray knows its endian), and packed bytes
 * must be given one explicitly (bitorder= has no default).
 *
 * Bulk work (counts, the and/or/xor/not kernels, copies, packing) runs with
 * the GIL released, with every object it touches counted busy so that no
 * thread can close them meanwhile. Writers follow the library's rules: the
 * edge words of a range change by atomic and/or (a concurrent writer of other
 * bits in those words loses nothing), the words between by plain stores.
 *
 * Layer: above data.c (data.h), see base.h.
 */
#include "data.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static PyTypeObject Bits_Type, BitsIter_Type;

#define IS_BITS(o) PyObject_TypeCheck((o), &Bits_Type)

/* ---- bit kernels (no Python, no GIL needed) ---- */

static inline uint64_t low_mask(uint64_t k)
{
	return k >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << k) - 1;
}

/* The 64 bits of w starting at bit off; bits at and past nw words read as 0. */
static inline uint64_t get64(const uint64_t *w, uint64_t nw, uint64_t off)
{
	uint64_t i = off >> 6;
	unsigned s = (unsigned)(off & 63);
	uint64_t lo = i < nw ? w[i] : 0;
	if (!s)
		return lo;
	uint64_t hi = i + 1 < nw ? w[i + 1] : 0;
	return (lo >> s) | (hi << (64 - s));
}

/* Writes the low k (1..64) bits of v at bit off of w: a whole aligned word by
 * a plain store, a part of one by atomic and/or (other bits untouched). */
static inline void put_bits(uint64_t *w, uint64_t off, uint64_t v, uint64_t k)
{
	uint64_t i = off >> 6;
	unsigned s = (unsigned)(off & 63);
	if (!s && k == 64) {
		w[i] = v;
		return;
	}
	uint64_t m = low_mask(k) << s, x = (v << s) & m;
	__atomic_fetch_and(&w[i], ~m | x, __ATOMIC_RELAXED);
	__atomic_fetch_or(&w[i], x, __ATOMIC_RELAXED);
}

/* Copies n bits of src (snw words) from bit soff to dst from bit doff; the
 * ranges must not overlap. */
static void copy_bits(uint64_t *dst, uint64_t doff, const uint64_t *src, uint64_t snw, uint64_t soff, uint64_t n)
{
	while (n) {
		uint64_t k = 64 - (doff & 63);
		if (k > n)
			k = n;
		put_bits(dst, doff, get64(src, snw, soff), k);
		doff += k;
		soff += k;
		n -= k;
	}
}

/* spread[x]: the 8 bits of x as 8 bytes of 0 or 1, bit 0 first (little). */
static uint64_t spread[256];
/* reverse[x]: x with its bit order reversed (for big-endian bit order). */
static uint8_t reverse[256];

static void tables_init(void)
{
	for (unsigned x = 0; x < 256; x++) {
		uint64_t s = 0;
		unsigned r = 0;
		for (unsigned j = 0; j < 8; j++) {
			if (x & (1u << j)) {
				s |= UINT64_C(1) << (8 * j);
				r |= 0x80u >> j;
			}
		}
		spread[x] = s;
		reverse[x] = (uint8_t)r;
	}
}

/* The truth of k (0..64) bytes as k bits, byte 0 in bit 0. A byte counts as
 * true when it is not zero, as NumPy's bool conversion has it. */
static inline uint64_t pack64(const uint8_t *p, uint64_t k)
{
	uint64_t v = 0, j = 0;
#ifdef __SSE2__
	/* 16 bytes at a time: compare with zero, one bit per byte. */
	const __m128i zero = _mm_setzero_si128();
	for (; j + 16 <= k; j += 16) {
		__m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + j));
		uint64_t m = (uint64_t)(~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, zero)) & 0xffffu);
		v |= m << j;
	}
#endif
	for (; j + 8 <= k; j += 8) {
		uint64_t x;
		memcpy(&x, p + j, 8);
		x |= x >> 4; /* bit 0 of each byte becomes the OR of its 8 bits */
		x |= x >> 2;
		x |= x >> 1;
		x &= UINT64_C(0x0101010101010101);
		/* Byte b's bit lands on bit 56 + b: the 8 bits, byte 0 lowest. */
		v |= ((x * UINT64_C(0x0102040810204080)) >> 56) << j;
	}
	for (; j < k; j++)
		v |= (uint64_t)(p[j] != 0) << j;
	return v;
}

/* Bits [doff, doff + n) of dst from n bytes of truth values. */
static void bools_in(uint64_t *dst, uint64_t doff, const uint8_t *src, uint64_t n)
{
	while (n) {
		uint64_t k = 64 - (doff & 63);
		if (k > n)
			k = n;
		put_bits(dst, doff, pack64(src, k), k);
		doff += k;
		src += k;
		n -= k;
	}
}

/* n bits of w from bit off as n bytes of 0 or 1. */
static void bools_out(uint8_t *dst, const uint64_t *w, uint64_t nw, uint64_t off, uint64_t n)
{
	while (n) {
		uint64_t k = n < 64 ? n : 64, v = get64(w, nw, off);
		if (k == 64) {
			for (unsigned b = 0; b < 8; b++)
				memcpy(dst + 8 * b, &spread[(v >> (8 * b)) & 0xff], 8);
		} else {
			for (uint64_t j = 0; j < k; j++)
				dst[j] = (uint8_t)((v >> j) & 1);
		}
		dst += k;
		off += k;
		n -= k;
	}
}

/* x with the bit order of each of its 8 bytes reversed. */
static inline uint64_t reverse_bytes_bits(uint64_t x)
{
	x = ((x >> 1) & UINT64_C(0x5555555555555555)) | ((x & UINT64_C(0x5555555555555555)) << 1);
	x = ((x >> 2) & UINT64_C(0x3333333333333333)) | ((x & UINT64_C(0x3333333333333333)) << 2);
	return ((x >> 4) & UINT64_C(0x0f0f0f0f0f0f0f0f)) | ((x & UINT64_C(0x0f0f0f0f0f0f0f0f)) << 4);
}

/* n bytes from src to dst, each with its bit order reversed when big. */
static void copy_bytes(uint8_t *dst, const uint8_t *src, uint64_t n, int big)
{
	if (!big) {
		memcpy(dst, src, n);
		return;
	}
	uint64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, src + i, 8);
		x = reverse_bytes_bits(x);
		memcpy(dst + i, &x, 8);
	}
	for (; i < n; i++)
		dst[i] = reverse[src[i]];
}

/* Bits [0, nbits) of dst (zero, fresh) from packed bytes in either order. */
static void packed_in(uint64_t *dst, const uint8_t *src, uint64_t nbits, int big)
{
	copy_bytes((uint8_t *)dst, src, (nbits + 7) / 8, big);
	if (nbits & 63) /* bits past the length stay zero (the library's invariant) */
		dst[nbits >> 6] &= low_mask(nbits & 63);
}

/* ceil(nbits / 8) packed bytes of w in either order (w's bits past nbits are zero). */
static void packed_out(uint8_t *dst, const uint64_t *w, uint64_t nbits, int big)
{
	copy_bytes(dst, (const uint8_t *)w, (nbits + 7) / 8, big);
}

/* Bits start, start + step, ... (n of them, step may be negative) of src to
 * dst from bit 0. */
static void gather_bits(uint64_t *dst, const uint64_t *src, int64_t start, int64_t step, uint64_t n)
{
	uint64_t v = 0, j = 0;
	int64_t i = start;
	for (uint64_t k = 0; k < n; k++, i += step) {
		v |= ((src[(uint64_t)i >> 6] >> ((uint64_t)i & 63)) & 1) << j;
		if (++j == 64) {
			dst[k >> 6] = v;
			v = 0;
			j = 0;
		}
	}
	if (j)
		dst[n >> 6] = v;
}

/* ---- helpers over objects ---- */

static uint64_t nbits_of(DataObject *d)
{
	return sk_bits_len(d->bits);
}

static uint64_t *words_of(DataObject *d)
{
	return sk_bits_words(d->bits);
}

static uint64_t nwords_of(DataObject *d)
{
	return (nbits_of(d) + 63) / 64;
}

static int writable(DataObject *d)
{
	if (skpy_data_usable(d))
		return -1;
	if (d->readonly) {
		skpy_raise(SK_EREADONLY, d->life.name);
		return -1;
	}
	return 0;
}

/* A new zeroed Bits of n bits (type: Bits or a subclass), not yet named:
 * the caller fills it, then bits_done names it (name, or a generated one,
 * owned, removed when dropped), so nobody sees it half filled. */
static DataObject *bits_new(PyTypeObject *type, uint64_t n, const char *name, int owned, int huge)
{
	open_args a = { .op = OP_BITS_CREATE, .size = n, .name = name, .unpublished = 1 };
	a.opts.flags = (uint32_t)skpy_data_flags(owned || !name, 0, huge);
	int rc = skpy_data_open(&a);
	if (rc) {
		skpy_raise(rc, name);
		return NULL;
	}
	return (DataObject *)skpy_data_wrap(type, &a, name == NULL);
}

/* Publishes d (from bits_new) under name once filled; on failure drops it. */
static PyObject *bits_done(DataObject *d, const char *name)
{
	if (d && skpy_data_publish_as(d, name))
		Py_CLEAR(d);
	return (PyObject *)d;
}

/* Runs stmt without the GIL while a and b (b may be NULL) count busy. */
#define RELEASED2(a, b, stmt)                        \
	do {                                         \
		DataObject *r2a_ = (a), *r2b_ = (b); \
		r2a_->busy++;                        \
		if (r2b_)                            \
			r2b_->busy++;                \
		Py_BEGIN_ALLOW_THREADS               \
		stmt;                                \
		Py_END_ALLOW_THREADS                 \
		if (r2b_)                            \
			r2b_->busy--;                \
		r2a_->busy--;                        \
	} while (0)

/* ---- construction ---- */

static PyObject *bits_tp_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "nbits", "name", "owned", "huge", NULL };
	uint64_t n;
	PyObject *name_o = Py_None;
	int owned = 1, huge = 0;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O$pp", kwlist, skpy_u64_conv, &n, &name_o, &owned, &huge) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	return bits_done(bits_new(type, n, name, owned, huge), name);
}

static PyObject *bits_open(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "readonly", "any_owner", NULL };
	const char *name;
	int ro = 0, any = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|pp", kwlist, skpy_strname_conv, &name, &ro, &any))
		return NULL;
	open_args a = { .op = OP_BITS_OPEN, .name = name, .flags = skpy_open_flags(ro, any) };
	int rc = skpy_data_open(&a);
	if (rc)
		return skpy_raise(rc, name);
	return skpy_data_wrap((PyTypeObject *)cls, &a, 0);
}

/* A C-contiguous buffer of bytes from o. bools: o holds truth values (a
 * NumPy bool array, or anything numpy.ascontiguousarray(o, bool) takes);
 * otherwise packed bytes (bytes, a uint8 array, a bitarray, ...). 0 or -1. */
static int byte_buffer(PyObject *o, Py_buffer *view, int bools)
{
	if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) == 0) {
		if (view->itemsize == 1)
			return 0;
		PyBuffer_Release(view);
	} else {
		PyErr_Clear();
	}
	PyObject *np = skpy_numpy();
	if (!np)
		return -1;
	PyObject *conv = bools ? PyObject_CallMethod(np, "ascontiguousarray", "Os", o, "bool")
			       : PyObject_CallMethod(np, "ascontiguousarray", "O", o);
	if (!conv)
		return -1;
	int rc = PyObject_GetBuffer(conv, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT);
	Py_DECREF(conv); /* the view holds it */
	if (!rc && view->itemsize != 1) {
		PyBuffer_Release(view);
		PyErr_Format(PyExc_TypeError, "packed bits are bytes (bytes, uint8), not items of %zd bytes",
			     view->itemsize);
		return -1;
	}
	return rc;
}

/* bitorder= / endian= argument: 'little' or 'big' (required: no default). */
static int order_arg(PyObject *o, int *big, const char *what)
{
	if (o && PyUnicode_Check(o)) {
		if (PyUnicode_CompareWithASCIIString(o, "little") == 0) {
			*big = 0;
			return 0;
		}
		if (PyUnicode_CompareWithASCIIString(o, "big") == 0) {
			*big = 1;
			return 0;
		}
	}
	PyErr_Format(PyExc_ValueError, "%s must be 'little' or 'big'", what);
	return -1;
}

/* Bits.from_bools(a, name=None, *, owned=True) */
static PyObject *bits_from_bools(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "bools", "name", "owned", NULL };
	PyObject *src, *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$p", kwlist, &src, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	Py_buffer v;
	if (byte_buffer(src, &v, 1))
		return NULL;
	DataObject *d = bits_new((PyTypeObject *)cls, (uint64_t)v.len, name, owned, 0);
	if (d)
		RELEASED2(d, NULL, bools_in(words_of(d), 0, v.buf, (uint64_t)v.len));
	PyBuffer_Release(&v);
	return bits_done(d, name);
}

/* Bits.from_packed(data, nbits=None, *, bitorder, name=None, owned=True) */
static PyObject *bits_from_packed(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "data", "nbits", "bitorder", "name", "owned", NULL };
	PyObject *src, *nbits_o = Py_None, *order_o = NULL, *name_o = Py_None;
	int owned = 1, big;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$OOp", kwlist, &src, &nbits_o, &order_o, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	if (!order_o) {
		PyErr_SetString(PyExc_TypeError,
				"from_packed() needs bitorder='little' (numpy.packbits(..., bitorder='little'), "
				"bitarray endian='little') or bitorder='big' (numpy.packbits' default)");
		return NULL;
	}
	if (order_arg(order_o, &big, "bitorder"))
		return NULL;
	Py_buffer v;
	if (byte_buffer(src, &v, 0))
		return NULL;
	uint64_t n = (uint64_t)v.len * 8;
	if (nbits_o != Py_None) {
		uint64_t want;
		if (!skpy_u64_conv(nbits_o, &want)) {
			PyBuffer_Release(&v);
			return NULL;
		}
		if (want > n) {
			PyBuffer_Release(&v);
			return PyErr_Format(PyExc_ValueError, "nbits %llu is more than the %zd bytes given hold",
					    (unsigned long long)want, v.len);
		}
		n = want;
	}
	DataObject *d = bits_new((PyTypeObject *)cls, n, name, owned, 0);
	if (d && n)
		RELEASED2(d, NULL, packed_in(words_of(d), v.buf, n, big));
	PyBuffer_Release(&v);
	return bits_done(d, name);
}

/* The endian of a bitarray object ('little' / 'big' as a str), or NULL. */
static PyObject *endian_of(PyObject *ba)
{
	PyObject *e = PyObject_CallMethod(ba, "endian", NULL);
	if (e && !PyUnicode_Check(e)) {
		Py_DECREF(e);
		PyErr_SetString(PyExc_TypeError, "endian() did not return a str");
		return NULL;
	}
	return e;
}

/* Bits.from_bitarray(ba, name=None, *, owned=True): the order from ba.endian(). */
static PyObject *bits_from_bitarray(PyObject *cls, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "bitarray", "name", "owned", NULL };
	PyObject *src, *name_o = Py_None;
	int owned = 1, big;
	const char *name;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O$p", kwlist, &src, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	PyObject *e = endian_of(src);
	if (!e)
		return NULL;
	int bad = order_arg(e, &big, "the bitarray's endian()");
	Py_DECREF(e);
	Py_ssize_t n = bad ? -1 : PyObject_Length(src);
	if (n < 0)
		return NULL;
	Py_buffer v;
	if (byte_buffer(src, &v, 0))
		return NULL;
	if ((uint64_t)v.len * 8 < (uint64_t)n) {
		PyBuffer_Release(&v);
		return PyErr_Format(PyExc_ValueError, "the bitarray's buffer holds fewer than its %zd bits", n);
	}
	DataObject *d = bits_new((PyTypeObject *)cls, (uint64_t)n, name, owned, 0);
	if (d && n)
		RELEASED2(d, NULL, packed_in(words_of(d), v.buf, (uint64_t)n, big));
	PyBuffer_Release(&v);
	return bits_done(d, name);
}

/* bits_view(segment, offset, nbits): a Bits over nbits bits of a raw
 * Segment's data from byte offset on (the library's sk_bits_view); it keeps
 * the Segment alive, and is read-only when the Segment is. */
static PyObject *bits_view(PyObject *mod, PyObject *args)
{
	(void)mod;
	PyObject *owner;
	uint64_t offset, n;
	if (!PyArg_ParseTuple(args, "OO&O&", &owner, skpy_u64_conv, &offset, skpy_u64_conv, &n))
		return NULL;
	if (!skpy_data_is_segment(owner))
		return PyErr_Format(PyExc_TypeError, "bits_view() needs a Segment, not %.100s",
				    Py_TYPE(owner)->tp_name);
	DataObject *o = (DataObject *)owner;
	if (skpy_data_usable(o))
		return NULL;
	sk_bits *view;
	int rc = sk_bits_view(o->seg, offset, n, &view);
	if (rc)
		return skpy_raise(rc, o->life.name);
	open_args a = { .op = OP_BITS_OPEN, .out = view };
	DataObject *d = (DataObject *)skpy_data_wrap(&Bits_Type, &a, 0);
	if (!d)
		return NULL;
	d->owner = Py_NewRef(owner);
	d->offset = offset;
	d->readonly = o->readonly;
	return (PyObject *)d;
}

static PyObject *bits_get_owner(DataObject *d, void *c)
{
	(void)c;
	return Py_NewRef(d->owner ? d->owner : Py_None);
}

static PyObject *bits_get_offset(DataObject *d, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(d->offset);
}

/* ---- length, single bits, slices ---- */

static Py_ssize_t bits_len(DataObject *d)
{
	if (skpy_data_usable(d))
		return -1;
	return (Py_ssize_t)nbits_of(d);
}

/* An index argument, negative counting from the end; -1 with an exception. */
static int bit_index(DataObject *d, PyObject *o, uint64_t *out)
{
	if (skpy_data_usable(d))
		return -1;
	Py_ssize_t i = PyNumber_AsSsize_t(o, PyExc_IndexError);
	if (i == -1 && PyErr_Occurred())
		return -1;
	Py_ssize_t n = (Py_ssize_t)nbits_of(d);
	if (i < 0)
		i += n;
	if (i < 0 || i >= n) {
		PyErr_SetString(PyExc_IndexError, "bit index out of range");
		return -1;
	}
	*out = (uint64_t)i;
	return 0;
}

static int bits_check_rc(DataObject *d, int rc)
{
	if (rc < 0) {
		skpy_raise(rc, d->life.name);
		return -1;
	}
	return rc;
}

/* A slice of d: start, step and length, or -1 with an exception. */
static int bit_slice(DataObject *d, PyObject *key, Py_ssize_t *start, Py_ssize_t *step, Py_ssize_t *len)
{
	Py_ssize_t stop;
	if (skpy_data_usable(d) || PySlice_Unpack(key, start, &stop, step) < 0)
		return -1;
	*len = PySlice_AdjustIndices((Py_ssize_t)nbits_of(d), start, &stop, *step);
	return 0;
}

static PyObject *bits_getitem(DataObject *d, PyObject *key)
{
	if (PySlice_Check(key)) {
		Py_ssize_t start, step, n;
		if (bit_slice(d, key, &start, &step, &n))
			return NULL;
		DataObject *r = bits_new(&Bits_Type, (uint64_t)n, NULL, 1, 0);
		if (r && n && step == 1)
			RELEASED2(r, d,
				  copy_bits(words_of(r), 0, words_of(d), nwords_of(d), (uint64_t)start, (uint64_t)n));
		else if (r && n)
			RELEASED2(r, d, gather_bits(words_of(r), words_of(d), start, step, (uint64_t)n));
		return bits_done(r, NULL);
	}
	uint64_t i;
	if (bit_index(d, key, &i))
		return NULL;
	int rc = bits_check_rc(d, sk_bits_test(d->bits, i));
	return rc < 0 ? NULL : PyBool_FromLong(rc);
}

/* The bits a slice assignment takes: another Bits, a bitarray, a buffer of
 * bytes (bool array), or any sequence of truth values; as n bits in a fresh
 * word array (malloc'd: the caller frees it). NULL with an exception. */
static uint64_t *bits_of_value(PyObject *v, uint64_t n)
{
	uint64_t nw = (n + 63) / 64;
	uint64_t *w = calloc(nw ? nw : 1, 8);
	if (!w)
		return (uint64_t *)PyErr_NoMemory();
	if (IS_BITS(v)) {
		DataObject *s = (DataObject *)v;
		if (skpy_data_usable(s))
			goto fail;
		if (nbits_of(s) != n) {
			PyErr_Format(PyExc_ValueError, "a slice of %llu bits cannot take %llu bits",
				     (unsigned long long)n, (unsigned long long)nbits_of(s));
			goto fail;
		}
		RELEASED2(s, NULL, memcpy(w, words_of(s), nw * 8));
		return w;
	}
	if (PyObject_HasAttrString(v, "endian") && PyObject_CheckBuffer(v)) { /* a bitarray */
		PyObject *e = endian_of(v);
		int big, bad = !e || order_arg(e, &big, "the bitarray's endian()");
		Py_XDECREF(e);
		Py_ssize_t len = bad ? -1 : PyObject_Length(v);
		if (len < 0)
			goto fail;
		if ((uint64_t)len != n) {
			PyErr_Format(PyExc_ValueError, "a slice of %llu bits cannot take %zd bits",
				     (unsigned long long)n, len);
			goto fail;
		}
		Py_buffer b;
		if (byte_buffer(v, &b, 0))
			goto fail;
		if (n)
			packed_in(w, b.buf, n, big);
		PyBuffer_Release(&b);
		return w;
	}
	if (PyObject_CheckBuffer(v)) {
		Py_buffer b;
		if (byte_buffer(v, &b, 1))
			goto fail;
		if ((uint64_t)b.len != n) {
			PyErr_Format(PyExc_ValueError, "a slice of %llu bits cannot take %zd values",
				     (unsigned long long)n, b.len);
			PyBuffer_Release(&b);
			goto fail;
		}
		bools_in(w, 0, b.buf, n);
		PyBuffer_Release(&b);
		return w;
	}
	PyObject *seq = PySequence_Fast(v, "a slice of Bits takes a bool, a Bits, a bitarray, a bool array or a "
					   "sequence of truth values");
	if (!seq)
		goto fail;
	if ((uint64_t)PySequence_Fast_GET_SIZE(seq) != n) {
		PyErr_Format(PyExc_ValueError, "a slice of %llu bits cannot take %zd values", (unsigned long long)n,
			     PySequence_Fast_GET_SIZE(seq));
		Py_DECREF(seq);
		goto fail;
	}
	for (uint64_t i = 0; i < n; i++) {
		int t = PyObject_IsTrue(PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i));
		if (t < 0) {
			Py_DECREF(seq);
			goto fail;
		}
		w[i >> 6] |= (uint64_t)t << (i & 63);
	}
	Py_DECREF(seq);
	return w;
fail:
	free(w);
	return NULL;
}

/* Scatters n bits of src (from bit 0) to bits start, start + step, ... of dst,
 * each bit atomically. */
static void scatter_bits(uint64_t *dst, int64_t start, int64_t step, const uint64_t *src, uint64_t n)
{
	int64_t i = start;
	for (uint64_t k = 0; k < n; k++, i += step) {
		uint64_t m = UINT64_C(1) << ((uint64_t)i & 63);
		if ((src[k >> 6] >> (k & 63)) & 1)
			__atomic_fetch_or(&dst[(uint64_t)i >> 6], m, __ATOMIC_RELAXED);
		else
			__atomic_fetch_and(&dst[(uint64_t)i >> 6], ~m, __ATOMIC_RELAXED);
	}
}

static int bits_set_slice(DataObject *d, PyObject *key, PyObject *v)
{
	Py_ssize_t start, step, n;
	if (writable(d) || bit_slice(d, key, &start, &step, &n))
		return -1;
	if (PyBool_Check(v) || PyLong_Check(v) || (PyNumber_Check(v) && !PySequence_Check(v) && !IS_BITS(v))) {
		/* one value (True, 1, numpy.True_, ...) for every bit of the slice */
		int t = PyObject_IsTrue(v);
		if (t < 0)
			return -1;
		if (!n)
			return 0;
		if (step == 1) {
			int rc;
			RELEASED2(d, NULL,
				  rc = t ? sk_bits_set_range(d->bits, (uint64_t)start, (uint64_t)(start + n))
					 : sk_bits_clear_range(d->bits, (uint64_t)start, (uint64_t)(start + n)));
			return bits_check_rc(d, rc) < 0 ? -1 : 0;
		}
		for (Py_ssize_t k = 0, i = start; k < n; k++, i += step)
			(void)(t ? sk_bits_set(d->bits, (uint64_t)i) : sk_bits_clear(d->bits, (uint64_t)i));
		return 0;
	}
	uint64_t *w = bits_of_value(v, (uint64_t)n);
	if (!w)
		return -1;
	if (skpy_data_usable(d)) { /* the value's conversion may have run code that closed d */
		free(w);
		return -1;
	}
	if (n) {
		if (step == 1)
			RELEASED2(d, NULL,
				  copy_bits(words_of(d), (uint64_t)start, w, ((uint64_t)n + 63) / 64, 0, (uint64_t)n));
		else
			RELEASED2(d, NULL, scatter_bits(words_of(d), start, step, w, (uint64_t)n));
	}
	free(w);
	return 0;
}

static int bits_setitem(DataObject *d, PyObject *key, PyObject *v)
{
	uint64_t i;
	if (!v) {
		PyErr_SetString(PyExc_TypeError, "bits cannot be deleted: a Bits has a fixed length");
		return -1;
	}
	if (PySlice_Check(key))
		return bits_set_slice(d, key, v);
	if (writable(d) || bit_index(d, key, &i))
		return -1;
	int t = PyObject_IsTrue(v);
	if (t < 0)
		return -1;
	return bits_check_rc(d, t ? sk_bits_set(d->bits, i) : sk_bits_clear(d->bits, i)) < 0 ? -1 : 0;
}

/* ---- iteration ---- */

typedef struct {
	PyObject_HEAD DataObject *bits;
	uint64_t i;
} BitsIter;

static PyObject *bits_iter(DataObject *d)
{
	if (skpy_data_usable(d))
		return NULL;
	BitsIter *it = PyObject_GC_New(BitsIter, &BitsIter_Type);
	if (!it)
		return NULL;
	Py_INCREF(d);
	it->bits = d;
	it->i = 0;
	PyObject_GC_Track(it);
	return (PyObject *)it;
}

static PyObject *bitsiter_next(BitsIter *it)
{
	DataObject *d = it->bits;
	if (!d)
		return NULL;
	if (skpy_data_usable(d))
		return NULL;
	if (it->i >= nbits_of(d)) {
		Py_CLEAR(it->bits);
		return NULL;
	}
	uint64_t i = it->i++;
	uint64_t w = __atomic_load_n(&words_of(d)[i >> 6], __ATOMIC_RELAXED);
	return PyBool_FromLong((long)((w >> (i & 63)) & 1));
}

static PyObject *bitsiter_length_hint(BitsIter *it, PyObject *unused)
{
	(void)unused;
	if (!it->bits || it->bits->closed)
		return PyLong_FromLong(0);
	return PyLong_FromUnsignedLongLong(nbits_of(it->bits) - it->i);
}

static int bitsiter_traverse(BitsIter *it, visitproc visit, void *arg)
{
	Py_VISIT(it->bits);
	return 0;
}

static void bitsiter_dealloc(BitsIter *it)
{
	PyObject_GC_UnTrack(it);
	Py_XDECREF(it->bits);
	PyObject_GC_Del(it);
}

static PyMethodDef bitsiter_methods[] = {
	{ "__length_hint__", (PyCFunction)bitsiter_length_hint, METH_NOARGS, NULL },
	{ 0 },
};

static PyTypeObject BitsIter_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit._shmkit.BitsIterator",
	.tp_basicsize = sizeof(BitsIter),
	.tp_dealloc = (destructor)bitsiter_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_traverse = (traverseproc)bitsiter_traverse,
	.tp_iter = PyObject_SelfIter,
	.tp_iternext = (iternextfunc)bitsiter_next,
	.tp_methods = bitsiter_methods,
};

/* ---- and, or, xor, not ---- */

enum { OP_AND, OP_OR, OP_XOR };

static int run_binop(int op, sk_bits *dst, sk_bits *a, sk_bits *b)
{
	return op == OP_AND ? sk_bits_and(dst, a, b) : op == OP_OR ? sk_bits_or(dst, a, b) : sk_bits_xor(dst, a, b);
}

/* Both operands Bits of one length: 0; NotImplemented (1) for other types; -1. */
static int binop_args(PyObject *a, PyObject *b)
{
	if (!IS_BITS(a) || !IS_BITS(b))
		return 1;
	DataObject *x = (DataObject *)a, *y = (DataObject *)b;
	if (skpy_data_usable(x) || skpy_data_usable(y))
		return -1;
	if (nbits_of(x) != nbits_of(y)) {
		PyErr_Format(PyExc_ValueError, "bit arrays of %llu and %llu bits: and/or/xor need equal lengths",
			     (unsigned long long)nbits_of(x), (unsigned long long)nbits_of(y));
		return -1;
	}
	return 0;
}

static PyObject *bits_binop(PyObject *a, PyObject *b, int op)
{
	int rc = binop_args(a, b);
	if (rc)
		return rc > 0 ? Py_NewRef(Py_NotImplemented) : NULL;
	DataObject *x = (DataObject *)a, *y = (DataObject *)b;
	DataObject *r = bits_new(&Bits_Type, nbits_of(x), NULL, 1, 0);
	if (!r)
		return NULL;
	x->busy++;
	RELEASED2(r, y, rc = run_binop(op, r->bits, x->bits, y->bits));
	x->busy--;
	if (rc) {
		Py_DECREF(r);
		return skpy_raise(rc, NULL);
	}
	return bits_done(r, NULL);
}

static PyObject *bits_inplace(PyObject *a, PyObject *b, int op)
{
	int rc = binop_args(a, b);
	if (rc)
		return rc > 0 ? Py_NewRef(Py_NotImplemented) : NULL;
	DataObject *x = (DataObject *)a, *y = (DataObject *)b;
	if (writable(x))
		return NULL;
	RELEASED2(x, y, rc = run_binop(op, x->bits, x->bits, y->bits));
	if (rc)
		return skpy_raise(rc, x->life.name);
	return Py_NewRef(a);
}

static PyObject *bits_and(PyObject *a, PyObject *b)
{
	return bits_binop(a, b, OP_AND);
}
static PyObject *bits_or(PyObject *a, PyObject *b)
{
	return bits_binop(a, b, OP_OR);
}
static PyObject *bits_xor(PyObject *a, PyObject *b)
{
	return bits_binop(a, b, OP_XOR);
}
static PyObject *bits_iand(PyObject *a, PyObject *b)
{
	return bits_inplace(a, b, OP_AND);
}
static PyObject *bits_ior(PyObject *a, PyObject *b)
{
	return bits_inplace(a, b, OP_OR);
}
static PyObject *bits_ixor(PyObject *a, PyObject *b)
{
	return bits_inplace(a, b, OP_XOR);
}

static PyObject *bits_invert(DataObject *d)
{
	if (skpy_data_usable(d))
		return NULL;
	DataObject *r = bits_new(&Bits_Type, nbits_of(d), NULL, 1, 0);
	if (!r)
		return NULL;
	int rc;
	RELEASED2(r, d, rc = sk_bits_not(r->bits, d->bits));
	if (rc) {
		Py_DECREF(r);
		return skpy_raise(rc, NULL);
	}
	return bits_done(r, NULL);
}

/* invert(): every bit flipped in place (the in-place form of ~). */
static PyObject *bits_invert_inplace(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (writable(d))
		return NULL;
	int rc;
	RELEASED2(d, NULL, rc = sk_bits_not(d->bits, d->bits));
	if (rc)
		return skpy_raise(rc, d->life.name);
	Py_RETURN_NONE;
}

static PyNumberMethods bits_as_number = {
	.nb_and = bits_and,
	.nb_or = bits_or,
	.nb_xor = bits_xor,
	.nb_invert = (unaryfunc)bits_invert,
	.nb_inplace_and = bits_iand,
	.nb_inplace_or = bits_ior,
	.nb_inplace_xor = bits_ixor,
};

/* == and !=: the same length and the same bits. */
static PyObject *bits_richcompare(PyObject *a, PyObject *b, int op)
{
	if ((op != Py_EQ && op != Py_NE) || !IS_BITS(a) || !IS_BITS(b))
		return Py_NewRef(Py_NotImplemented);
	DataObject *x = (DataObject *)a, *y = (DataObject *)b;
	if (skpy_data_usable(x) || skpy_data_usable(y))
		return NULL;
	int eq = nbits_of(x) == nbits_of(y);
	if (eq && x != y && nbits_of(x))
		RELEASED2(x, y, eq = memcmp(words_of(x), words_of(y), nwords_of(x) * 8) == 0);
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

/* ---- atomic single bits ---- */

static PyObject *bits_bitop(DataObject *d, PyObject *arg, int (*op)(sk_bits *, uint64_t))
{
	uint64_t i;
	if (writable(d) || bit_index(d, arg, &i))
		return NULL;
	int rc = bits_check_rc(d, op(d->bits, i));
	return rc < 0 ? NULL : PyBool_FromLong(rc);
}

static PyObject *bits_test_and_set(DataObject *d, PyObject *arg)
{
	return bits_bitop(d, arg, sk_bits_test_and_set);
}
static PyObject *bits_test_and_clear(DataObject *d, PyObject *arg)
{
	return bits_bitop(d, arg, sk_bits_test_and_clear);
}
static PyObject *bits_flip(DataObject *d, PyObject *arg)
{
	uint64_t i;
	if (writable(d) || bit_index(d, arg, &i))
		return NULL;
	if (bits_check_rc(d, sk_bits_flip(d->bits, i)) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* ---- ranges: count, set, clear, find ---- */

/* [begin, end) from an end that may be None (len); out of range is an
 * error, as slices would clamp it silently. */
static int check_range(DataObject *d, uint64_t begin, PyObject *end_o, uint64_t *b, uint64_t *e)
{
	uint64_t n = nbits_of(d), end = n;
	if (end_o && end_o != Py_None && !skpy_u64_conv(end_o, &end))
		return -1;
	if (begin > end || end > n) {
		PyErr_Format(PyExc_IndexError, "range [%llu, %llu) is not within the %llu bits",
			     (unsigned long long)begin, (unsigned long long)end, (unsigned long long)n);
		return -1;
	}
	*b = begin;
	*e = end;
	return 0;
}

static int bit_range(DataObject *d, PyObject *args, PyObject *kw, uint64_t *b, uint64_t *e)
{
	static char *kwlist[] = { "begin", "end", NULL };
	uint64_t begin = 0;
	PyObject *end_o = Py_None;
	if (skpy_data_usable(d) ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "|O&O", kwlist, skpy_u64_conv, &begin, &end_o))
		return -1;
	return check_range(d, begin, end_o, b, e);
}

static PyObject *bits_count(DataObject *d, PyObject *args, PyObject *kw)
{
	uint64_t b, e;
	if (bit_range(d, args, kw, &b, &e))
		return NULL;
	int64_t c;
	SKPY_RELEASED(d, c = sk_bits_count(d->bits, b, e));
	if (c < 0)
		return skpy_raise((int)c, d->life.name);
	return PyLong_FromLongLong(c);
}

static PyObject *bits_any_all(DataObject *d, int all)
{
	if (skpy_data_usable(d))
		return NULL;
	uint64_t n = nbits_of(d);
	int64_t c;
	SKPY_RELEASED(d, c = sk_bits_count(d->bits, 0, n));
	if (c < 0)
		return skpy_raise((int)c, d->life.name);
	return PyBool_FromLong(all ? (uint64_t)c == n : c > 0);
}
static PyObject *bits_any(DataObject *d, PyObject *unused)
{
	(void)unused;
	return bits_any_all(d, 0);
}
static PyObject *bits_all(DataObject *d, PyObject *unused)
{
	(void)unused;
	return bits_any_all(d, 1);
}

static PyObject *bits_range_op(DataObject *d, PyObject *args, PyObject *kw, int set)
{
	uint64_t b, e;
	if (writable(d) || bit_range(d, args, kw, &b, &e))
		return NULL;
	int rc;
	SKPY_RELEASED(d, rc = set ? sk_bits_set_range(d->bits, b, e) : sk_bits_clear_range(d->bits, b, e));
	if (rc < 0)
		return skpy_raise(rc, d->life.name);
	Py_RETURN_NONE;
}
static PyObject *bits_set_range(DataObject *d, PyObject *args, PyObject *kw)
{
	return bits_range_op(d, args, kw, 1);
}
static PyObject *bits_clear_range(DataObject *d, PyObject *args, PyObject *kw)
{
	return bits_range_op(d, args, kw, 0);
}

static PyObject *bits_setall(DataObject *d, PyObject *value)
{
	int t = PyObject_IsTrue(value);
	if (t < 0 || writable(d))
		return NULL;
	int rc;
	uint64_t n = nbits_of(d);
	SKPY_RELEASED(d, rc = t ? sk_bits_set_range(d->bits, 0, n) : sk_bits_clear_range(d->bits, 0, n));
	if (rc < 0)
		return skpy_raise(rc, d->life.name);
	Py_RETURN_NONE;
}

/* The first bit of value in [b, e), or -1. The library's count (SIMD) tells
 * which stretch of FIND_STRETCH bits holds one, and its find_next finds it
 * there: nothing past the stretch that holds the answer is read. */
#define FIND_STRETCH (UINT64_C(1) << 16)
static int64_t find_in(sk_bits *bits, int value, uint64_t b, uint64_t e)
{
	for (uint64_t lo = b; lo < e;) {
		uint64_t hi = e - lo > FIND_STRETCH ? lo + FIND_STRETCH : e;
		int64_t c = sk_bits_count(bits, lo, hi);
		if (c < 0)
			return c;
		if (value ? c > 0 : (uint64_t)c < hi - lo) {
			int64_t r = value ? sk_bits_find_next_set(bits, lo) : sk_bits_find_next_clear(bits, lo);
			return r < 0 || (uint64_t)r >= hi ? -1 : r; /* another process may change it meanwhile */
		}
		lo = hi;
	}
	return -1;
}

/* find(value=True, begin=0, end=None) */
static PyObject *bits_find(DataObject *d, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "value", "begin", "end", NULL };
	PyObject *value_o = Py_True, *end_o = Py_None;
	uint64_t begin = 0, b, e;
	if (skpy_data_usable(d) ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "|OO&O", kwlist, &value_o, skpy_u64_conv, &begin, &end_o) ||
	    check_range(d, begin, end_o, &b, &e))
		return NULL;
	int value = PyObject_IsTrue(value_o);
	if (value < 0)
		return NULL;
	int64_t r;
	SKPY_RELEASED(d, r = find_in(d->bits, value, b, e));
	if (r < -1)
		return skpy_raise((int)r, d->life.name);
	return PyLong_FromLongLong(r);
}

static PyObject *bits_find_next(DataObject *d, PyObject *args, int set)
{
	uint64_t from = 0;
	if (skpy_data_usable(d) || !PyArg_ParseTuple(args, "|O&", skpy_u64_conv, &from))
		return NULL;
	int64_t r;
	SKPY_RELEASED(d, r = set ? sk_bits_find_next_set(d->bits, from) : sk_bits_find_next_clear(d->bits, from));
	if (r == SK_ENOTFOUND)
		return PyLong_FromLong(-1);
	if (r < 0)
		return skpy_raise((int)r, d->life.name);
	return PyLong_FromLongLong(r);
}
static PyObject *bits_find_next_set(DataObject *d, PyObject *args)
{
	return bits_find_next(d, args, 1);
}
static PyObject *bits_find_next_clear(DataObject *d, PyObject *args)
{
	return bits_find_next(d, args, 0);
}

/* ---- copies and views ---- */

/* copy(name=None, *, owned=True): a new Bits with the same bits. */
static PyObject *bits_copy(DataObject *d, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "name", "owned", NULL };
	PyObject *name_o = Py_None;
	int owned = 1;
	const char *name;
	if (skpy_data_usable(d) || !PyArg_ParseTupleAndKeywords(args, kw, "|O$p", kwlist, &name_o, &owned) ||
	    skpy_name_arg(name_o, &name))
		return NULL;
	DataObject *r = bits_new(&Bits_Type, nbits_of(d), name, owned, 0);
	if (r && nbits_of(d))
		RELEASED2(r, d, memcpy(words_of(r), words_of(d), nwords_of(d) * 8));
	return bits_done(r, name);
}

/* numpy.empty(n, dtype) */
static PyObject *np_empty(uint64_t n, const char *dtype)
{
	PyObject *np = skpy_numpy();
	return np ? PyObject_CallMethod(np, "empty", "Ks", (unsigned long long)n, dtype) : NULL;
}

/* A writable byte buffer of a fresh object (NumPy array, bitarray). */
static int fresh_buffer(PyObject *o, Py_buffer *v)
{
	return PyObject_GetBuffer(o, v, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS);
}

static PyObject *bits_to_bools(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	uint64_t n = nbits_of(d);
	PyObject *out = np_empty(n, "bool");
	Py_buffer v;
	if (!out || fresh_buffer(out, &v)) {
		Py_XDECREF(out);
		return NULL;
	}
	if (!skpy_data_usable(d) && n == nbits_of(d)) /* (NumPy's code may have run others) */
		RELEASED2(d, NULL, bools_out(v.buf, words_of(d), nwords_of(d), 0, n));
	PyBuffer_Release(&v);
	if (PyErr_Occurred())
		Py_CLEAR(out);
	return out;
}

static PyObject *bits_to_packed(DataObject *d, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "bitorder", NULL };
	PyObject *order_o = NULL;
	int big;
	if (skpy_data_usable(d) || !PyArg_ParseTupleAndKeywords(args, kw, "|$O", kwlist, &order_o))
		return NULL;
	if (!order_o) {
		PyErr_SetString(PyExc_TypeError, "to_packed() needs bitorder='little' or bitorder='big'");
		return NULL;
	}
	if (order_arg(order_o, &big, "bitorder"))
		return NULL;
	uint64_t n = nbits_of(d);
	PyObject *out = np_empty((n + 7) / 8, "uint8");
	Py_buffer v;
	if (!out || fresh_buffer(out, &v)) {
		Py_XDECREF(out);
		return NULL;
	}
	if (!skpy_data_usable(d) && n)
		RELEASED2(d, NULL, packed_out(v.buf, words_of(d), n, big));
	PyBuffer_Release(&v);
	if (PyErr_Occurred())
		Py_CLEAR(out);
	return out;
}

static PyObject *bitarray_class(void)
{
	PyObject *m = PyImport_ImportModule("bitarray");
	if (!m)
		return NULL;
	PyObject *c = PyObject_GetAttrString(m, "bitarray");
	Py_DECREF(m);
	return c;
}

/* to_bitarray(endian='little'): a copy of exactly len(self) bits. */
static PyObject *bits_to_bitarray(DataObject *d, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "endian", NULL };
	PyObject *order_o = NULL;
	int big = 0;
	if (skpy_data_usable(d) || !PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &order_o) ||
	    (order_o && order_arg(order_o, &big, "endian")))
		return NULL;
	PyObject *cls = bitarray_class();
	if (!cls)
		return NULL;
	uint64_t n = nbits_of(d);
	PyObject *out = PyObject_CallFunction(cls, "Ks", (unsigned long long)n, big ? "big" : "little");
	Py_DECREF(cls);
	Py_buffer v;
	if (!out || fresh_buffer(out, &v)) {
		Py_XDECREF(out);
		return NULL;
	}
	if ((uint64_t)v.len * 8 < n) {
		PyErr_SetString(PyExc_RuntimeError, "bitarray(n) exported fewer than n bits");
	} else if (!skpy_data_usable(d) && n == nbits_of(d) && n) {
		RELEASED2(d, NULL, packed_out(v.buf, words_of(d), n, big));
	}
	PyBuffer_Release(&v);
	if (PyErr_Occurred())
		Py_CLEAR(out);
	return out;
}

/* as_numpy(dtype='uint64'): a zero-copy view of the words (uint64) or of the
 * ceil(len / 8) bytes (uint8, little bit order). */
static PyObject *bits_as_numpy(DataObject *d, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "dtype", NULL };
	PyObject *dt = NULL;
	if (skpy_data_usable(d) || !PyArg_ParseTupleAndKeywords(args, kw, "|O", kwlist, &dt))
		return NULL;
	PyObject *np = skpy_numpy();
	if (!np)
		return NULL;
	int words = 1, bytes = 0;
	if (dt && dt != Py_None) {
		PyObject *want = PyObject_CallMethod(np, "dtype", "O", dt);
		PyObject *name = want ? PyObject_GetAttrString(want, "name") : NULL;
		Py_XDECREF(want);
		if (!name)
			return NULL;
		words = PyUnicode_CompareWithASCIIString(name, "uint64") == 0;
		bytes = PyUnicode_CompareWithASCIIString(name, "uint8") == 0;
		Py_DECREF(name);
	}
	if (!words && !bytes)
		return PyErr_Format(PyExc_TypeError, "a Bits is viewed as uint64 words or uint8 bytes, not %R", dt);
	if (words)
		return PyObject_CallMethod(np, "asarray", "O", (PyObject *)d);
	return PyObject_CallMethod(np, "frombuffer", "OsK", (PyObject *)d, "uint8",
				   (unsigned long long)((nbits_of(d) + 7) / 8));
}

/* as_bitarray(): a zero-copy bitarray (endian='little') over the bits;
 * the length must be a multiple of 8 (a bitarray views whole bytes). */
static PyObject *bits_as_bitarray(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	uint64_t n = nbits_of(d);
	if (n % 8)
		return PyErr_Format(PyExc_ValueError,
				    "a bitarray can view only whole bytes, and this Bits has %llu bits (not a multiple "
				    "of 8): use to_bitarray() for a copy",
				    (unsigned long long)n);
	PyObject *cls = bitarray_class();
	if (!cls)
		return NULL;
	PyObject *mv = PyMemoryView_FromObject((PyObject *)d), *bytes = NULL, *part = NULL, *r = NULL;
	if (mv)
		bytes = PyObject_CallMethod(mv, "cast", "s", "B");
	if (bytes)
		part = PySequence_GetSlice(bytes, 0, (Py_ssize_t)(n / 8));
	if (part) {
		PyObject *kwargs = Py_BuildValue("{s:O,s:s}", "buffer", part, "endian", "little");
		PyObject *noargs = PyTuple_New(0);
		if (kwargs && noargs)
			r = PyObject_Call(cls, noargs, kwargs);
		Py_XDECREF(kwargs);
		Py_XDECREF(noargs);
	}
	Py_XDECREF(part);
	Py_XDECREF(bytes);
	Py_XDECREF(mv);
	Py_DECREF(cls);
	return r;
}

static PyObject *bits_words(DataObject *d, PyObject *unused)
{
	(void)unused;
	if (skpy_data_usable(d))
		return NULL;
	PyObject *np = skpy_numpy();
	if (!np)
		return NULL;
	return PyObject_CallMethod(np, "asarray", "O", (PyObject *)d);
}

static PyObject *bits_repr(DataObject *d)
{
	if (d->closed)
		return PyUnicode_FromFormat("<shmkit.Bits %s (closed)>", d->life.name);
	return PyUnicode_FromFormat("<shmkit.Bits %s len=%llu%s>", d->life.name, (unsigned long long)nbits_of(d),
				    d->readonly ? " readonly" : "");
}

static PyMethodDef bits_methods[] = {
	DATA_COMMON_METHODS,
	{ "open", (PyCFunction)(void (*)(void))bits_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "open($type, /, name, readonly=False, any_owner=False)\n--\n\n"
	  "Bits.open(name, readonly=False, any_owner=False): attach to an existing bit array (any_owner:\n"
	  "one that another user made)." },
	{ "from_bools", (PyCFunction)(void (*)(void))bits_from_bools, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "from_bools($type, /, bools, name=None, *, owned=True)\n--\n\n"
	  "A new Bits holding the truth of each item of a NumPy bool array (or any buffer of bytes):\n"
	  "bit i is bools[i]." },
	{ "from_packed", (PyCFunction)(void (*)(void))bits_from_packed, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "from_packed($type, /, data, nbits=None, *, bitorder, name=None, owned=True)\n--\n\n"
	  "A new Bits from packed bytes (numpy.packbits' output, bytes, ...): nbits of them (default all).\n"
	  "bitorder is required: 'little' (bit i in bit i%8 of byte i//8) or 'big' (numpy.packbits' default)." },
	{ "from_bitarray", (PyCFunction)(void (*)(void))bits_from_bitarray, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  "from_bitarray($type, /, bitarray, name=None, *, owned=True)\n--\n\n"
	  "A new Bits with the bits of a bitarray object (either endian: bit i is bitarray[i])." },
	{ "count", (PyCFunction)(void (*)(void))bits_count, METH_VARARGS | METH_KEYWORDS,
	  "count($self, /, begin=0, end=None)\n--\n\n"
	  "count(begin=0, end=None): set bits in [begin, end)." },
	{ "any", (PyCFunction)bits_any, METH_NOARGS, "any($self, /)\n--\n\nTrue if any bit is set." },
	{ "all", (PyCFunction)bits_all, METH_NOARGS, "all($self, /)\n--\n\nTrue if every bit is set." },
	{ "find", (PyCFunction)(void (*)(void))bits_find, METH_VARARGS | METH_KEYWORDS,
	  "find($self, /, value=True, begin=0, end=None)\n--\n\n"
	  "The index of the first bit equal to value in [begin, end), or -1." },
	{ "set_range", (PyCFunction)(void (*)(void))bits_set_range, METH_VARARGS | METH_KEYWORDS,
	  "set_range($self, /, begin=0, end=None)\n--\n\n"
	  "set_range(begin=0, end=None): set every bit of [begin, end)." },
	{ "clear_range", (PyCFunction)(void (*)(void))bits_clear_range, METH_VARARGS | METH_KEYWORDS,
	  "clear_range($self, /, begin=0, end=None)\n--\n\n"
	  "clear_range(begin=0, end=None): clear every bit of [begin, end)." },
	{ "setall", (PyCFunction)bits_setall, METH_O,
	  "setall($self, value, /)\n--\n\n"
	  "Set (value true) or clear every bit." },
	{ "invert", (PyCFunction)bits_invert_inplace, METH_NOARGS,
	  "invert($self, /)\n--\n\n"
	  "Flip every bit in place (~b makes a new Bits)." },
	{ "test_and_set", (PyCFunction)bits_test_and_set, METH_O,
	  "test_and_set($self, i, /)\n--\n\n"
	  "Atomically set bit i; return its previous value." },
	{ "test_and_clear", (PyCFunction)bits_test_and_clear, METH_O,
	  "test_and_clear($self, i, /)\n--\n\n"
	  "Atomically clear bit i; return its previous value." },
	{ "flip", (PyCFunction)bits_flip, METH_O,
	  "flip($self, i, /)\n--\n\n"
	  "Atomically flip bit i." },
	{ "find_next_set", (PyCFunction)bits_find_next_set, METH_VARARGS,
	  "find_next_set($self, start=0, /)\n--\n\n"
	  "find_next_set(start=0): index of the first set bit >= start, or -1." },
	{ "find_next_clear", (PyCFunction)bits_find_next_clear, METH_VARARGS,
	  "find_next_clear($self, start=0, /)\n--\n\n"
	  "find_next_clear(start=0): index of the first clear bit >= start, or -1." },
	{ "copy", (PyCFunction)(void (*)(void))bits_copy, METH_VARARGS | METH_KEYWORDS,
	  "copy($self, /, name=None, *, owned=True)\n--\n\n"
	  "A new Bits with the same bits." },
	{ "to_bools", (PyCFunction)bits_to_bools, METH_NOARGS,
	  "to_bools($self, /)\n--\n\n"
	  "A NumPy bool array (a copy): item i is bit i." },
	{ "to_packed", (PyCFunction)(void (*)(void))bits_to_packed, METH_VARARGS | METH_KEYWORDS,
	  "to_packed($self, /, *, bitorder)\n--\n\n"
	  "A NumPy uint8 array of the bits packed in the given bit order, 'little' or 'big' (a copy,\n"
	  "as numpy.packbits(self.to_bools(), bitorder=bitorder))." },
	{ "to_bitarray", (PyCFunction)(void (*)(void))bits_to_bitarray, METH_VARARGS | METH_KEYWORDS,
	  "to_bitarray($self, /, endian='little')\n--\n\n"
	  "A bitarray (a copy) of exactly len(self) bits: item i is bit i, in either endian." },
	{ "as_numpy", (PyCFunction)(void (*)(void))bits_as_numpy, METH_VARARGS | METH_KEYWORDS,
	  "as_numpy($self, /, dtype='uint64')\n--\n\n"
	  "A zero-copy NumPy view: uint64 words (bit i is bit i%64 of word i//64) or uint8 bytes\n"
	  "(bit i is bit i%8 of byte i//8, numpy.unpackbits(..., bitorder='little'))." },
	{ "as_bitarray", (PyCFunction)bits_as_bitarray, METH_NOARGS,
	  "as_bitarray($self, /)\n--\n\n"
	  "A zero-copy bitarray view (endian='little'); the length must be a multiple of 8." },
	{ "words", (PyCFunction)bits_words, METH_NOARGS,
	  "words($self, /)\n--\n\n"
	  "A NumPy uint64 array over the words (zero copy; bit i is bit i%64 of word i//64)." },
	{ 0 }
};
static PyGetSetDef bits_getset[] = { DATA_COMMON_GETSET,
				     { "_owner", (getter)bits_get_owner, NULL, "the Segment of a view, or None", NULL },
				     { "_offset", (getter)bits_get_offset, NULL, "where a view starts in it", NULL },
				     { 0 } };

static PyMethodDef bits_functions[] = {
	{ "bits_view", (PyCFunction)bits_view, METH_VARARGS,
	  "bits_view($module, segment, offset, nbits, /)\n--\n\n"
	  "A Bits over nbits bits of a Segment's data from byte offset on (zero copy)." },
	{ 0 }
};
static PySequenceMethods bits_as_sequence = { .sq_length = (lenfunc)bits_len };
static PyMappingMethods bits_as_mapping = {
	.mp_length = (lenfunc)bits_len,
	.mp_subscript = (binaryfunc)bits_getitem,
	.mp_ass_subscript = (objobjargproc)bits_setitem,
};

static PyTypeObject Bits_Type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmkit.Bits",
	.tp_basicsize = sizeof(DataObject),
	.tp_dealloc = (destructor)skpy_data_dealloc,
	.tp_traverse = skpy_base_traverse,
	.tp_clear = skpy_base_clear,
	.tp_repr = (reprfunc)bits_repr,
	.tp_as_number = &bits_as_number,
	.tp_as_sequence = &bits_as_sequence,
	.tp_as_mapping = &bits_as_mapping,
	.tp_as_buffer = &skpy_data_as_buffer,
	.tp_richcompare = bits_richcompare,
	.tp_hash = PyObject_HashNotImplemented,
	.tp_iter = (getiterfunc)bits_iter,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
	.tp_doc = "Bits(nbits, name=None, *, owned=True, huge=False)\n--\n\n"
		  "A shared bit array of nbits bits (zero). Bits.open(name) attaches; from_bools,\n"
		  "from_packed and from_bitarray copy one in. b[i], b[i:j:k] (a new Bits), iteration,\n"
		  "& | ^ ~ and &= |= ^=, ==, count/find over ranges. The buffer protocol exports the\n"
		  "uint64 words: bit i is bit i%64 of word i//64.",
	.tp_weaklistoffset = offsetof(DataObject, weakrefs),
	.tp_methods = bits_methods,
	.tp_getset = bits_getset,
	.tp_new = bits_tp_new,
};

int skpy_bits_init(PyObject *m)
{
	tables_init();
	if (PyType_Ready(&BitsIter_Type) < 0 || skpy_add_type(m, &Bits_Type, "Bits") ||
	    PyModule_AddFunctions(m, bits_functions))
		return -1;
	skpy_data_set_bits_type(&Bits_Type);
	return 0;
}
