/*
 * bench.h: timing and statistics shared by the benchmarks (header-only).
 */
#ifndef SHMKIT_BENCH_H
#define SHMKIT_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shmkit.h"

/* Seconds on the library's clock (CLOCK_MONOTONIC, as its timeouts). */
static inline double bench_now(void)
{
	return (double)sk_monotonic_ns() * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Sorts v in place and returns the value at quantile q (0.5: median). */
static inline double bench_quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof *v, bench_cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

#endif
