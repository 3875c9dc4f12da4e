/*
 * shmkit/sync.h: process-shared synchronisation that survives its users.
 *
 * Every primitive is a fixed-size struct that lives in shared memory: put it
 * anywhere in a segment and call _init (embedded), or give it a name of its
 * own with _create / _open (a segment holding just that primitive, so
 * unrelated programs find it by name). Layouts are fixed-width with a magic
 * and a version (docs/format.md); a struct that does not carry its magic is
 * refused with SK_ECORRUPT.
 *
 * Blocking calls take a timeout in nanoseconds measured on CLOCK_MONOTONIC:
 * negative waits forever, 0 does not wait. They sleep in the kernel (futex),
 * return -ETIMEDOUT when the time is up and are not cut short by signals.
 *
 * Owner death. sk_mutex is robust: if a process dies holding it (SIGKILL
 * included) the next locker acquires it and gets SK_EOWNERDEAD instead of 0.
 * It then owns the lock, repairs the data the lock protects and calls
 * sk_mutex_consistent before unlocking. The rule when it does not: unlocking
 * without sk_mutex_consistent makes the mutex permanently unusable (every
 * later lock returns SK_ENOTRECOVERABLE), so that no one goes on using data
 * nobody repaired; sk_mutex_init can reset it once no one uses it. The kernel
 * marks the death (robust futex list), so waiters wake at once, not after a
 * poll interval. Do not unmap a segment while holding a lock inside it: the
 * kernel can then no longer mark the lock when the process dies.
 *
 * The rwlock gives writers priority (a waiting writer holds back new readers,
 * so writers are never starved). Hence a thread that holds a read lock and
 * asks for another one waits behind a waiting writer, who waits for it: do
 * not take read locks recursively where writers may come. A writer that dies is reported like the
 * mutex: the next locker, reader or writer, gets SK_EOWNERDEAD, and the lock
 * is consistent again. A reader that dies holding a read lock cannot
 * corrupt data, but its hold would block writers forever: readers are
 * recorded by process (up to SK_RWLOCK_MAX_READERS at once), and a writer
 * waiting for readers checks every 10 ms whether they still live (pid and
 * start time) and drops the holds of dead ones.
 *
 * Semaphores, barriers, events and condition variables have no owner. A
 * process that dies after taking a semaphore unit does not give it back; a
 * barrier party that dies leaves the others waiting until their timeout; use
 * timeouts where a party may die.
 *
 * Safe for several threads of one process as well as several processes.
 * These structs use glibc's robust pthread mutex internally: two builds of
 * shmkit on the same C library share them.
 */
#ifndef SHMKIT_SYNC_H
#define SHMKIT_SYNC_H

#include <stdint.h>
#include <sys/types.h>

#include "common.h"
#include "segment.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_mutex {
	uint64_t opaque[16];
} sk_mutex; /* 128 bytes */
typedef struct sk_rwlock {
	uint64_t opaque[160];
} sk_rwlock; /* 1280 bytes */
typedef struct sk_sem {
	uint64_t opaque[8];
} sk_sem; /* 64 bytes */
typedef struct sk_barrier {
	uint64_t opaque[8];
} sk_barrier;
typedef struct sk_event {
	uint64_t opaque[8];
} sk_event;
typedef struct sk_cond {
	uint64_t opaque[8];
} sk_cond;

#define SK_RWLOCK_MAX_READERS 64 /* processes holding read locks at once */
#define SK_BARRIER_SERIAL     1  /* returned to exactly one party of each round */

/* What a lock looks like from outside (for `shmkit info` and diagnostics). */
typedef struct sk_lock_state {
	int held;        /* 1 if held (a dead holder that was not recovered yet counts) */
	pid_t owner_pid; /* mutex: holder; rwlock: writer; 0 if none */
	int owner_alive; /* 1 if that process still runs */
	int readers;     /* rwlock: read holds */
	int waiters;     /* processes or threads blocked on it */
	int recoverable; /* 0 once a mutex became unusable */
	int64_t value;   /* sem: count; event: 0/1; barrier: parties waiting now */
	int64_t limit;   /* sem: maximum (0: none); barrier: parties */
} sk_lock_state;

/* ---- mutex ---- */
int sk_mutex_init(sk_mutex *m);
/* 0, SK_EOWNERDEAD (acquired; repair, then sk_mutex_consistent), -ETIMEDOUT,
 * -EDEADLK (this thread holds it already), SK_ENOTRECOVERABLE, SK_ECORRUPT. */
int sk_mutex_lock(sk_mutex *m, int64_t timeout_ns);
/* As lock with a zero timeout, but -EBUSY when held. */
int sk_mutex_trylock(sk_mutex *m);
/* 0, or -EPERM if the calling thread does not hold it. */
int sk_mutex_unlock(sk_mutex *m);
/* After SK_EOWNERDEAD: the data is repaired, the mutex is normal again. */
int sk_mutex_consistent(sk_mutex *m);
int sk_mutex_state(const sk_mutex *m, sk_lock_state *st);
int sk_mutex_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_mutex **m);
int sk_mutex_open(const char *name, sk_segment **seg, sk_mutex **m);

/* ---- rwlock ---- */
int sk_rwlock_init(sk_rwlock *l);
/* 0, SK_EOWNERDEAD (a writer died: the lock is held as asked and consistent
 * again), -ETIMEDOUT, -EAGAIN (rdlock: SK_RWLOCK_MAX_READERS processes read). */
int sk_rwlock_rdlock(sk_rwlock *l, int64_t timeout_ns);
int sk_rwlock_wrlock(sk_rwlock *l, int64_t timeout_ns);
/* Releases what this process (reader) or thread (writer) holds; -EPERM if nothing. */
int sk_rwlock_rdunlock(sk_rwlock *l);
int sk_rwlock_wrunlock(sk_rwlock *l);
int sk_rwlock_state(const sk_rwlock *l, sk_lock_state *st);
int sk_rwlock_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_rwlock **l);
int sk_rwlock_open(const char *name, sk_segment **seg, sk_rwlock **l);

/* ---- counting semaphore ---- */
/* max 0: no maximum; otherwise post beyond max fails with -EOVERFLOW. */
int sk_sem_init(sk_sem *s, uint32_t value, uint32_t max);
int sk_sem_wait(sk_sem *s, int64_t timeout_ns); /* 0, -ETIMEDOUT (-EAGAIN with timeout 0) */
int sk_sem_post(sk_sem *s);
int sk_sem_value(const sk_sem *s); /* the count (never negative), or SK_ECORRUPT */
int sk_sem_state(const sk_sem *s, sk_lock_state *st);
int sk_sem_create(const char *name, uint32_t value, uint32_t max, const sk_create_opts *opts, sk_segment **seg,
		  sk_sem **s);
int sk_sem_open(const char *name, sk_segment **seg, sk_sem **s);

/* ---- reusable barrier for `parties` (1 .. 65535) ---- */
int sk_barrier_init(sk_barrier *b, uint32_t parties);
/* 0 or SK_BARRIER_SERIAL when the round completes; -ETIMEDOUT (this party
 * withdrew; the round goes on without it). */
int sk_barrier_wait(sk_barrier *b, int64_t timeout_ns);
int sk_barrier_state(const sk_barrier *b, sk_lock_state *st);
int sk_barrier_create(const char *name, uint32_t parties, const sk_create_opts *opts, sk_segment **seg, sk_barrier **b);
int sk_barrier_open(const char *name, sk_segment **seg, sk_barrier **b);

/* ---- event (manual reset) ---- */
int sk_event_init(sk_event *e);
int sk_event_set(sk_event *e);
int sk_event_clear(sk_event *e);
int sk_event_is_set(const sk_event *e);             /* 1 or 0 */
int sk_event_wait(sk_event *e, int64_t timeout_ns); /* 0 once set, -ETIMEDOUT */
int sk_event_state(const sk_event *e, sk_lock_state *st);
int sk_event_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_event **e);
int sk_event_open(const char *name, sk_segment **seg, sk_event **e);

/* ---- condition variable, used with an sk_mutex ---- */
int sk_cond_init(sk_cond *c);
/* Unlocks m, sleeps until signalled or the timeout, locks m again (always,
 * also on -ETIMEDOUT). Returns 0, -ETIMEDOUT, or SK_EOWNERDEAD from
 * relocking. Wake-ups without a signal can happen: wait in a loop. */
int sk_cond_wait(sk_cond *c, sk_mutex *m, int64_t timeout_ns);
int sk_cond_signal(sk_cond *c);
int sk_cond_broadcast(sk_cond *c);
int sk_cond_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_cond **c);
int sk_cond_open(const char *name, sk_segment **seg, sk_cond **c);

#ifdef __cplusplus
}
#endif
#endif
