/*
 * simd.c: the bulk kernels behind bit arrays (popcount, and, or, xor, not),
 * in four versions: portable C, scalar POPCNT, AVX2 and AVX-512. The best
 * version the CPU (and OS) supports is chosen once, at first use; the
 * environment variable SHMKIT_SIMD=portable|popcnt|avx2|avx512 asks for a
 * specific one (ignored if the CPU cannot run it). All versions give
 * identical results; tests run each against a naive reference.
 *
 * Kernels take unaligned pointers and any word count; they hold no state.
 */
#include <errno.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

/* ---- portable C ---- */

static uint64_t popcount_portable(const uint64_t *w, size_t n)
{
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t x = w[i];
		x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
		x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
		x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
		total += (x * UINT64_C(0x0101010101010101)) >> 56;
	}
	return total;
}

static void and_portable(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = a[i] & b[i];
}

static void or_portable(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = a[i] | b[i];
}

static void xor_portable(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = a[i] ^ b[i];
}

static void not_portable(uint64_t *d, const uint64_t *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		d[i] = ~a[i];
}

/* ---- POPCNT instruction ---- */

__attribute__((target("popcnt"))) static uint64_t popcount_popcnt(const uint64_t *w, size_t n)
{
	/* Four independent sums keep the popcnt unit busy. */
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += (uint64_t)__builtin_popcountll(w[i]);
		s1 += (uint64_t)__builtin_popcountll(w[i + 1]);
		s2 += (uint64_t)__builtin_popcountll(w[i + 2]);
		s3 += (uint64_t)__builtin_popcountll(w[i + 3]);
	}
	for (; i < n; i++)
		s0 += (uint64_t)__builtin_popcountll(w[i]);
	return s0 + s1 + s2 + s3;
}

/* ---- AVX2 ---- */

__attribute__((target("avx2,popcnt"))) static uint64_t popcount_avx2(const uint64_t *w, size_t n)
{
	/* Nibble lookup with vpshufb, summed per 64-bit lane with vpsadbw. */
	const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
					     2, 2, 3, 2, 3, 3, 4);
	const __m256i low = _mm256_set1_epi8(0x0f);
	const __m256i zero = _mm256_setzero_si256();
	__m256i acc0 = zero, acc1 = zero;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256i v0 = _mm256_loadu_si256((const __m256i *)(w + i));
		__m256i v1 = _mm256_loadu_si256((const __m256i *)(w + i + 4));
		__m256i c0 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v0, low)),
					     _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v0, 4), low)));
		__m256i c1 = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v1, low)),
					     _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v1, 4), low)));
		acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(c0, zero));
		acc1 = _mm256_add_epi64(acc1, _mm256_sad_epu8(c1, zero));
	}
	__m256i acc = _mm256_add_epi64(acc0, acc1);
	uint64_t lanes[4];
	_mm256_storeu_si256((__m256i *)lanes, acc);
	uint64_t total = lanes[0] + lanes[1] + lanes[2] + lanes[3];
	for (; i < n; i++)
		total += (uint64_t)__builtin_popcountll(w[i]);
	return total;
}

#define AVX2_BINOP(fname, vop, sop)                                                                                    \
	__attribute__((target("avx2"))) static void fname(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n) \
	{                                                                                                              \
		size_t i = 0;                                                                                          \
		for (; i + 4 <= n; i += 4) {                                                                           \
			__m256i x = _mm256_loadu_si256((const __m256i *)(a + i));                                      \
			__m256i y = _mm256_loadu_si256((const __m256i *)(b + i));                                      \
			_mm256_storeu_si256((__m256i *)(d + i), vop(x, y));                                            \
		}                                                                                                      \
		for (; i < n; i++)                                                                                     \
			d[i] = a[i] sop b[i];                                                                          \
	}

AVX2_BINOP(and_avx2, _mm256_and_si256, &)
AVX2_BINOP(or_avx2, _mm256_or_si256, |)
AVX2_BINOP(xor_avx2, _mm256_xor_si256, ^)

__attribute__((target("avx2"))) static void not_avx2(uint64_t *d, const uint64_t *a, size_t n)
{
	const __m256i ones = _mm256_set1_epi64x(-1);
	size_t i = 0;
	for (; i + 4 <= n; i += 4)
		_mm256_storeu_si256((__m256i *)(d + i),
				    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(a + i)), ones));
	for (; i < n; i++)
		d[i] = ~a[i];
}

/* ---- AVX-512 (F + VPOPCNTDQ) ---- */

__attribute__((target("avx512f,avx512vpopcntdq"))) static uint64_t popcount_avx512(const uint64_t *w, size_t n)
{
	__m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(_mm512_loadu_si512(w + i)));
		acc1 = _mm512_add_epi64(acc1, _mm512_popcnt_epi64(_mm512_loadu_si512(w + i + 8)));
	}
	if (i + 8 <= n) {
		acc0 = _mm512_add_epi64(acc0, _mm512_popcnt_epi64(_mm512_loadu_si512(w + i)));
		i += 8;
	}
	if (i < n) {
		__mmask8 m = (__mmask8)((1u << (n - i)) - 1);
		acc1 = _mm512_add_epi64(acc1, _mm512_popcnt_epi64(_mm512_maskz_loadu_epi64(m, w + i)));
	}
	return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(acc0, acc1));
}

#define AVX512_BINOP(fname, op)                                                                                 \
	__attribute__((target("avx512f"))) static void fname(uint64_t *d, const uint64_t *a, const uint64_t *b, \
							     size_t n)                                          \
	{                                                                                                       \
		size_t i = 0;                                                                                   \
		for (; i + 8 <= n; i += 8)                                                                      \
			_mm512_storeu_si512(d + i, op(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i)));   \
		if (i < n) {                                                                                    \
			__mmask8 m = (__mmask8)((1u << (n - i)) - 1);                                           \
			__m512i x = _mm512_maskz_loadu_epi64(m, a + i);                                         \
			__m512i y = _mm512_maskz_loadu_epi64(m, b + i);                                         \
			_mm512_mask_storeu_epi64(d + i, m, op(x, y));                                           \
		}                                                                                               \
	}

AVX512_BINOP(and_avx512, _mm512_and_si512)
AVX512_BINOP(or_avx512, _mm512_or_si512)
AVX512_BINOP(xor_avx512, _mm512_xor_si512)

__attribute__((target("avx512f"))) static void not_avx512(uint64_t *d, const uint64_t *a, size_t n)
{
	const __m512i ones = _mm512_set1_epi64(-1);
	size_t i = 0;
	for (; i + 8 <= n; i += 8)
		_mm512_storeu_si512(d + i, _mm512_xor_si512(_mm512_loadu_si512(a + i), ones));
	if (i < n) {
		__mmask8 m = (__mmask8)((1u << (n - i)) - 1);
		_mm512_mask_storeu_epi64(d + i, m, _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i), ones));
	}
}

/* ---- dispatch ---- */

static const sk__simd_ops ops_table[] = {
	[SK__SIMD_PORTABLE] = { "portable", popcount_portable, and_portable, or_portable, xor_portable, not_portable },
	[SK__SIMD_POPCNT] = { "popcnt", popcount_popcnt, and_portable, or_portable, xor_portable, not_portable },
	[SK__SIMD_AVX2] = { "avx2", popcount_avx2, and_avx2, or_avx2, xor_avx2, not_avx2 },
	[SK__SIMD_AVX512] = { "avx512", popcount_avx512, and_avx512, or_avx512, xor_avx512, not_avx512 },
};

static const sk__simd_ops *current;

bool sk__simd_supported(int level)
{
	__builtin_cpu_init();
	switch (level) {
	case SK__SIMD_PORTABLE: return true;
	case SK__SIMD_POPCNT: return __builtin_cpu_supports("popcnt");
	case SK__SIMD_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
	case SK__SIMD_AVX512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
	}
	return false;
}

int sk__simd_force(int level)
{
	if (level < SK__SIMD_PORTABLE || level > SK__SIMD_AVX512)
		return -EINVAL;
	if (!sk__simd_supported(level))
		return -ENOTSUP;
	__atomic_store_n(&current, &ops_table[level], __ATOMIC_RELEASE);
	return 0;
}

static const sk__simd_ops *choose(void)
{
	const char *want = getenv("SHMKIT_SIMD");
	if (want && *want)
		for (int l = SK__SIMD_PORTABLE; l <= SK__SIMD_AVX512; l++)
			if (!strcmp(want, ops_table[l].name) && sk__simd_supported(l))
				return &ops_table[l];
	for (int l = SK__SIMD_AVX512; l > SK__SIMD_PORTABLE; l--)
		if (sk__simd_supported(l))
			return &ops_table[l];
	return &ops_table[SK__SIMD_PORTABLE];
}

const sk__simd_ops *sk__simd(void)
{
	const sk__simd_ops *o = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
	if (!o) {
		/* Threads racing here compute the same answer. */
		o = choose();
		__atomic_store_n(&current, o, __ATOMIC_RELEASE);
	}
	return o;
}
