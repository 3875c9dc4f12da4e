/*
 * clock.h: deadlines on CLOCK_MONOTONIC, and the CPU's hint for spin-waits.
 * Layer: base (over the OS layer's clock).
 */
#ifndef SHMKIT_SRC_CLOCK_H
#define SHMKIT_SRC_CLOCK_H

#include <stdint.h>

#include "os.h"

/* A hint to the CPU inside a spin-wait loop. */
static inline void sk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* A timeout in ns (negative: none) as a CLOCK_MONOTONIC deadline (-1: none). */
static inline int64_t sk__deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? -1 : sk__sys_monotonic_ns() + timeout_ns;
}

/* Time left before a deadline: -1 without one, 0 once it passed. */
static inline int64_t sk__time_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t r = deadline - sk__sys_monotonic_ns();
	return r > 0 ? r : 0;
}

#endif
