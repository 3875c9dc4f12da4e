/*
 * lock_boost.h: Boost.Interprocess interprocess_mutex for bench/lock, behind
 * a C interface (bench/lock_boost.cpp, compiled only when a C++ compiler and
 * the Boost headers are there; bench/lock then has SHMKIT_BENCH_BOOST).
 *
 * The mutex lives in LOCK_BOOST_BYTES of the benchmark's shared mapping,
 * constructed there with placement new, the way Boost's own "anonymous
 * mutex" example places one in a mapped region; forked processes use it
 * through the mapping they inherit. The loops that lock it are in C++ so
 * that lock() and unlock() inline into them as in a Boost program: a loop
 * costs one call across the interface, not every lock. No function lets an
 * exception out: an error is -1.
 */
#ifndef SHMKIT_BENCH_LOCK_BOOST_H
#define SHMKIT_BENCH_LOCK_BOOST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { LOCK_BOOST_BYTES = 128 };

/* What the contended runs count under the lock, in the shared mapping. */
typedef struct lock_counts {
	volatile int32_t stop;
	int64_t acquisitions, handoffs, turns;
	int32_t last_owner, turn;
} lock_counts;

/* Constructs an interprocess_mutex in area (LOCK_BOOST_BYTES, aligned to 128).
 * Returns 0, or -1 if Boost could not. */
int lock_boost_init(void *area);

/* n lock+unlock pairs, nothing in between. Returns 0 or -1. */
int lock_boost_cycle(void *area, long n);

/* Up to n acquisitions (n < 0: until c->stop), each counted, and a hand-off
 * counted when the last holder was not me. Returns 0 or -1. */
int lock_boost_hammer(void *area, lock_counts *c, int me, long n);

/* Up to n acquisitions (n < 0: until c->stop); one that finds c->turn == me
 * passes the turn to the other (!me) and counts it. Returns 0 or -1. */
int lock_boost_turns(void *area, lock_counts *c, int me, long n);

/* Takes the lock and keeps it (a holder that is then killed). */
int lock_boost_lock(void *area);

/* Waits at most ms for the lock (timed_lock); unlocks it again if it got it.
 * Returns 1 if it got it, 0 if it timed out, -1 on error. */
int lock_boost_timed_lock(void *area, long ms);

#ifdef __cplusplus
}
#endif

#endif
