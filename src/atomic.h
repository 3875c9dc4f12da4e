/*
 * atomic.h: the atomic operations of shmkit's modules, in one place.
 *
 * First the short macros that sync.c, queue.c and pool.c use on the words
 * they share with other processes: LD/ST/ADD/SUB/CAS are sequentially
 * consistent, ALD/AST acquire and release, RLD/RST relaxed. They are
 * __atomic builtins, which are lock-free on the 4 and 8-byte words they are
 * used on, so they work between processes that map the same memory. The
 * names are short because the protocols read better with them; this header
 * is private to src/ (never installed, never included by a public header).
 *
 * Then sequentially consistent operations on 1, 2, 4 and 8-byte elements
 * chosen at run time, on raw bits (two's complement arithmetic is the same
 * for signed and unsigned types), for value.c and array.c.
 */
#ifndef SHMKIT_ATOMIC_H
#define SHMKIT_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "shmkit/common.h"

#define LD(p)        __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v)    __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define SUB(p, v)    __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define CAS(p, e, d) __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define ALD(p)       __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define AST(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define RLD(p)       __atomic_load_n((p), __ATOMIC_RELAXED)
#define RST(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELAXED)

enum { SK__OP_XCHG, SK__OP_ADD, SK__OP_OR, SK__OP_AND };

#define SK__SC __ATOMIC_SEQ_CST

#define SK__RMW(T, p, op, v)                                                            \
	((op) == SK__OP_XCHG  ? (uint64_t)__atomic_exchange_n((T *)(p), (T)(v), SK__SC) \
	 : (op) == SK__OP_ADD ? (uint64_t)__atomic_fetch_add((T *)(p), (T)(v), SK__SC)  \
	 : (op) == SK__OP_OR  ? (uint64_t)__atomic_fetch_or((T *)(p), (T)(v), SK__SC)   \
			      : (uint64_t)__atomic_fetch_and((T *)(p), (T)(v), SK__SC))

static inline uint64_t sk__atomic_load(const void *p, size_t size)
{
	switch (size) {
	case 1: return __atomic_load_n((const uint8_t *)p, SK__SC);
	case 2: return __atomic_load_n((const uint16_t *)p, SK__SC);
	case 4: return __atomic_load_n((const uint32_t *)p, SK__SC);
	default: return __atomic_load_n((const uint64_t *)p, SK__SC);
	}
}

static inline void sk__atomic_store(void *p, size_t size, uint64_t v)
{
	switch (size) {
	case 1: __atomic_store_n((uint8_t *)p, (uint8_t)v, SK__SC); break;
	case 2: __atomic_store_n((uint16_t *)p, (uint16_t)v, SK__SC); break;
	case 4: __atomic_store_n((uint32_t *)p, (uint32_t)v, SK__SC); break;
	default: __atomic_store_n((uint64_t *)p, v, SK__SC); break;
	}
}

/* Returns the previous raw bits, zero-extended. */
static inline uint64_t sk__atomic_rmw(void *p, size_t size, int op, uint64_t v)
{
	switch (size) {
	case 1: return (uint8_t)SK__RMW(uint8_t, p, op, v);
	case 2: return (uint16_t)SK__RMW(uint16_t, p, op, v);
	case 4: return (uint32_t)SK__RMW(uint32_t, p, op, v);
	default: return SK__RMW(uint64_t, p, op, v);
	}
}

/* On failure *expected receives the current raw bits. */
static inline bool sk__atomic_cas(void *p, size_t size, uint64_t *expected, uint64_t desired)
{
	bool ok;
	switch (size) {
	case 1: {
		uint8_t e = (uint8_t)*expected;
		ok = __atomic_compare_exchange_n((uint8_t *)p, &e, (uint8_t)desired, false, SK__SC, SK__SC);
		*expected = e;
		break;
	}
	case 2: {
		uint16_t e = (uint16_t)*expected;
		ok = __atomic_compare_exchange_n((uint16_t *)p, &e, (uint16_t)desired, false, SK__SC, SK__SC);
		*expected = e;
		break;
	}
	case 4: {
		uint32_t e = (uint32_t)*expected;
		ok = __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)desired, false, SK__SC, SK__SC);
		*expected = e;
		break;
	}
	default: ok = __atomic_compare_exchange_n((uint64_t *)p, expected, desired, false, SK__SC, SK__SC); break;
	}
	return ok;
}

/* Raw bits of an element of `size` bytes as a signed or unsigned int64. */
static inline int64_t sk__extend(uint64_t raw, size_t size, bool is_signed)
{
	if (size >= 8)
		return (int64_t)raw;
	unsigned shift = (unsigned)(64 - 8 * size);
	return is_signed ? (int64_t)(raw << shift) >> shift : (int64_t)raw;
}

static inline bool sk__dtype_signed(sk_dtype d)
{
	return d == SK_INT8 || d == SK_INT16 || d == SK_INT32 || d == SK_INT64;
}

static inline bool sk__dtype_integer(sk_dtype d)
{
	return d >= SK_INT8 && d <= SK_UINT64;
}

#endif
