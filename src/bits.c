/*
 * bits.c: bit arrays over a segment.
 *
 * Layout: ceil(nbits / 64) little-endian uint64 words starting at the data
 * offset; bit i is bit (i % 64) of word (i / 64). Invariant: bits at and past
 * nbits in the last word are zero, so whole-word counting is exact.
 *
 * Concurrency: single-bit writers are atomic RMWs (lock or/and/xor on x86),
 * relaxed for set/clear/flip and acquire-release for test_and_set/clear so
 * that they can guard other data. Range writers touch their edge words
 * atomically and the words between with plain stores. Readers use relaxed
 * atomic loads for single bits and plain loads in bulk kernels.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kinds.h"
#include "segment.h"
#include "simd.h"
#include "shmkit/bits.h"

struct sk_bits {
	sk_segment *seg;
	uint64_t nbits;
	uint64_t nwords;
	uint64_t *w;
	bool view; /* a view inside seg's data (sk_bits_view): seg is not ours to close */
};

static int wrap(sk_segment *seg, void *outp)
{
	sk_bits **out = outp;
	sk_bits *b = sk__handle_alloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	b->seg = seg;
	b->nbits = seg->hdr.nitems;
	b->nwords = (b->nbits + 63) / 64;
	b->w = sk_segment_data(seg);
	*out = b;
	return 0;
}

/* A bit array's header: no dtype, no shape, at most SK_BITS_MAX bits in
 * whole 64-bit words. */
static int check_fields(const sk__header *h)
{
	if (h->dtype || !sk__header_no_shape(h) || h->nitems > SK_BITS_MAX || h->data_size != (h->nitems + 63) / 64 * 8)
		return SK_ECORRUPT;
	return 0;
}

const sk__kind sk__kind_bits = { .id = SK_KIND_BITS, .name = "bits", .check = check_fields };

int sk_bits_create(const char *name, uint64_t nbits, const sk_create_opts *opts, sk_bits **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (nbits > SK_BITS_MAX || (opts && (opts->flags & ~SK__CREATE_COMMON)))
		return -EINVAL;
	sk__seg_desc d = { .kind = &sk__kind_bits, .nitems = nbits, .data_size = (nbits + 63) / 64 * 8 };
	return sk__segment_create_wrapped(name, &d, opts, wrap, out);
}

int sk_bits_open(const char *name, int flags, sk_bits **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, flags, &sk__kind_bits, &seg);
	if (rc)
		return rc;
	rc = wrap(seg, out);
	if (rc)
		sk_segment_close(seg);
	return rc;
}

int sk_bits_close(sk_bits *b)
{
	if (!b)
		return 0;
	if (!b->view)
		sk_segment_close(b->seg);
	sk__handle_free(b);
	return 0;
}

int sk_bits_view(sk_segment *seg, uint64_t offset, uint64_t nbits, sk_bits **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!seg || nbits > SK_BITS_MAX || offset % 8)
		return -EINVAL;
	uint64_t bytes = (nbits + 63) / 64 * 8, size = sk_segment_size(seg);
	if (offset > size || bytes > size - offset)
		return -ERANGE;
	sk_bits *b = sk__handle_alloc(sizeof *b);
	if (!b)
		return -ENOMEM;
	b->seg = seg;
	b->view = true;
	b->nbits = nbits;
	b->nwords = (nbits + 63) / 64;
	b->w = nbits ? (uint64_t *)(void *)((uint8_t *)sk_segment_data(seg) + offset) : NULL;
	*out = b;
	return 0;
}

uint64_t sk_bits_len(const sk_bits *b)
{
	return b->nbits;
}

uint64_t *sk_bits_words(const sk_bits *b)
{
	return b->w;
}

const char *sk_bits_name(const sk_bits *b)
{
	return sk_segment_name(b->seg);
}

sk_segment *sk_bits_segment(const sk_bits *b)
{
	return b->seg;
}

/* Bits [0, k) set, for k in 0..64. */
static inline uint64_t low_mask(unsigned k)
{
	return k >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << k) - 1;
}

static inline uint64_t bit_mask(uint64_t i)
{
	return UINT64_C(1) << (i & 63);
}

int sk_bits_test(const sk_bits *b, uint64_t i)
{
	if (i >= b->nbits)
		return -ERANGE;
	return (__atomic_load_n(&b->w[i >> 6], __ATOMIC_RELAXED) & bit_mask(i)) != 0;
}

#define CHECK_WRITE(b, i)                          \
	do {                                       \
		if ((i) >= (b)->nbits)             \
			return -ERANGE;            \
		if (((b)->seg->flags & SK_RDONLY)) \
			return SK_EREADONLY;       \
	} while (0)

int sk_bits_set(sk_bits *b, uint64_t i)
{
	CHECK_WRITE(b, i);
	__atomic_fetch_or(&b->w[i >> 6], bit_mask(i), __ATOMIC_RELAXED);
	return 0;
}

int sk_bits_clear(sk_bits *b, uint64_t i)
{
	CHECK_WRITE(b, i);
	__atomic_fetch_and(&b->w[i >> 6], ~bit_mask(i), __ATOMIC_RELAXED);
	return 0;
}

int sk_bits_flip(sk_bits *b, uint64_t i)
{
	CHECK_WRITE(b, i);
	__atomic_fetch_xor(&b->w[i >> 6], bit_mask(i), __ATOMIC_RELAXED);
	return 0;
}

int sk_bits_test_and_set(sk_bits *b, uint64_t i)
{
	CHECK_WRITE(b, i);
	return (__atomic_fetch_or(&b->w[i >> 6], bit_mask(i), __ATOMIC_ACQ_REL) & bit_mask(i)) != 0;
}

int sk_bits_test_and_clear(sk_bits *b, uint64_t i)
{
	CHECK_WRITE(b, i);
	return (__atomic_fetch_and(&b->w[i >> 6], ~bit_mask(i), __ATOMIC_ACQ_REL) & bit_mask(i)) != 0;
}

/* Applies set (value true) or clear to [begin, end): edge words atomically. */
static int fill_range(sk_bits *b, uint64_t begin, uint64_t end, bool value)
{
	if (begin > end || end > b->nbits)
		return -ERANGE;
	if ((b->seg->flags & SK_RDONLY))
		return SK_EREADONLY;
	if (begin == end)
		return 0;
	uint64_t first = begin >> 6, last = (end - 1) >> 6;
	uint64_t head = ~UINT64_C(0) << (begin & 63);
	uint64_t tail = low_mask((unsigned)((end - 1) & 63) + 1);
	if (first == last)
		head &= tail;
	if (value)
		__atomic_fetch_or(&b->w[first], head, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&b->w[first], ~head, __ATOMIC_RELAXED);
	if (first == last)
		return 0;
	if (last > first + 1)
		memset(&b->w[first + 1], value ? 0xff : 0, (size_t)(last - first - 1) * 8);
	if (value)
		__atomic_fetch_or(&b->w[last], tail, __ATOMIC_RELAXED);
	else
		__atomic_fetch_and(&b->w[last], ~tail, __ATOMIC_RELAXED);
	return 0;
}

int sk_bits_set_range(sk_bits *b, uint64_t begin, uint64_t end)
{
	return fill_range(b, begin, end, true);
}

int sk_bits_clear_range(sk_bits *b, uint64_t begin, uint64_t end)
{
	return fill_range(b, begin, end, false);
}

int64_t sk_bits_count(const sk_bits *b, uint64_t begin, uint64_t end)
{
	if (begin > end || end > b->nbits)
		return -ERANGE;
	if (begin == end)
		return 0;
	uint64_t first = begin >> 6, last = (end - 1) >> 6;
	uint64_t head = ~UINT64_C(0) << (begin & 63);
	uint64_t tail = low_mask((unsigned)((end - 1) & 63) + 1);
	if (first == last)
		return __builtin_popcountll(b->w[first] & head & tail);
	uint64_t n =
	    (uint64_t)__builtin_popcountll(b->w[first] & head) + (uint64_t)__builtin_popcountll(b->w[last] & tail);
	if (last > first + 1)
		n += sk__simd()->popcount(&b->w[first + 1], (size_t)(last - first - 1));
	return (int64_t)n;
}

static int64_t find_next(const sk_bits *b, uint64_t from, uint64_t invert)
{
	if (from > b->nbits)
		return -ERANGE;
	if (from == b->nbits)
		return SK_ENOTFOUND;
	uint64_t i = from >> 6;
	uint64_t x = (b->w[i] ^ invert) & (~UINT64_C(0) << (from & 63));
	while (!x) {
		if (++i >= b->nwords)
			return SK_ENOTFOUND;
		x = b->w[i] ^ invert;
	}
	uint64_t r = i * 64 + (uint64_t)__builtin_ctzll(x);
	return r < b->nbits ? (int64_t)r : SK_ENOTFOUND;
}

int64_t sk_bits_find_next_set(const sk_bits *b, uint64_t from)
{
	return find_next(b, from, 0);
}

int64_t sk_bits_find_next_clear(const sk_bits *b, uint64_t from)
{
	return find_next(b, from, ~UINT64_C(0));
}

static int check_binop(const sk_bits *dst, const sk_bits *a, const sk_bits *b)
{
	if (!dst || !a || !b)
		return -EINVAL;
	if (a->nbits != dst->nbits || b->nbits != dst->nbits)
		return SK_ETYPE;
	return (dst->seg->flags & SK_RDONLY) ? SK_EREADONLY : 0;
}

int sk_bits_and(sk_bits *dst, const sk_bits *a, const sk_bits *b)
{
	int rc = check_binop(dst, a, b);
	if (!rc)
		sk__simd()->and_(dst->w, a->w, b->w, (size_t)dst->nwords);
	return rc;
}

int sk_bits_or(sk_bits *dst, const sk_bits *a, const sk_bits *b)
{
	int rc = check_binop(dst, a, b);
	if (!rc)
		sk__simd()->or_(dst->w, a->w, b->w, (size_t)dst->nwords);
	return rc;
}

int sk_bits_xor(sk_bits *dst, const sk_bits *a, const sk_bits *b)
{
	int rc = check_binop(dst, a, b);
	if (!rc)
		sk__simd()->xor_(dst->w, a->w, b->w, (size_t)dst->nwords);
	return rc;
}

int sk_bits_not(sk_bits *dst, const sk_bits *a)
{
	int rc = check_binop(dst, a, a);
	if (rc || !dst->nwords)
		return rc;
	sk__simd()->not_(dst->w, a->w, (size_t)dst->nwords);
	dst->w[dst->nwords - 1] &= low_mask((unsigned)(((dst->nbits - 1) & 63) + 1));
	return 0;
}

int sk_bits_wrap(sk_segment *seg, sk_bits **out)
{
	if (!seg || !out)
		return -EINVAL;
	*out = NULL;
	if (seg->hdr.kind != SK_KIND_BITS)
		return SK_EKIND;
	return wrap(seg, out);
}

const char *sk_simd_path(void)
{
	return sk__simd()->name;
}
