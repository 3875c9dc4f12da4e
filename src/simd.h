/*
 * simd.h: the bit-array kernels (src/simd.c), in one of several
 * implementations chosen once per process from the CPU and SHMKIT_SIMD.
 * Layer: base.
 */
#ifndef SHMKIT_SRC_SIMD_H
#define SHMKIT_SRC_SIMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SK__SIMD_PORTABLE = 0, SK__SIMD_POPCNT = 1, SK__SIMD_AVX2 = 2, SK__SIMD_AVX512 = 3 };

typedef struct sk__simd_ops {
	const char *name;
	uint64_t (*popcount)(const uint64_t *w, size_t n);
	void (*and_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*or_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*xor_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*not_)(uint64_t *d, const uint64_t *a, size_t n);
} sk__simd_ops;

/* The ops in use (chosen once from the CPU and SHMKIT_SIMD). */
const sk__simd_ops *sk__simd(void);
/* Whether this CPU can run a level. */
bool sk__simd_supported(int level);
/* Forces a level for this process (tests and benchmarks). -ENOTSUP if the CPU
 * cannot run it, -EINVAL for an unknown level. Not thread-safe. */
int sk__simd_force(int level);

#endif
