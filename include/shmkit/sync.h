/*
 * shmkit/sync.h: process-shared synchronisation that survives its users.
 *
 * Every primitive is a fixed-size struct that lives in shared memory: put it
 * anywhere in a segment and call _init (embedded), or give it a name of its
 * own with _create / _open (a segment holding just that primitive, so
 * unrelated programs find it by name). _destroy undoes _init: it returns
 * -EBUSY while the primitive is seen held or waited on, and otherwise
 * removes its magic, so that every later call on it (in any process) gets
 * SK_ECORRUPT until an _init makes it a primitive again. A primitive holds
 * no process-local resource, so _destroy is needed only to say "no one may
 * use this any more" (and to reuse its memory); like pthread's, it must be
 * called once no one uses or waits for it: its check of "seen held or waited
 * on" is a snapshot, not a lock. Layouts are fixed-width with a magic
 * and a version (docs/format.md); a struct that does not carry its magic is
 * refused with SK_ECORRUPT.
 *
 * Blocking calls take a timeout in nanoseconds measured on CLOCK_MONOTONIC:
 * negative waits forever, 0 does not wait. They sleep in the kernel (futex),
 * return -ETIMEDOUT when the time is up and are not cut short by signals.
 *
 * Owner death. sk_mutex is robust: if the thread holding it dies (SIGKILL,
 * or pthread_exit in a live process) the next locker acquires it and gets
 * SK_EOWNERDEAD instead of 0. It then owns the lock, repairs the data the
 * lock protects and calls sk_mutex_consistent before unlocking. The rule when
 * it does not: unlocking without sk_mutex_consistent makes the mutex
 * permanently unusable (every later lock returns SK_ENOTRECOVERABLE), so that
 * no one goes on using data nobody repaired; sk_mutex_init can reset it once
 * no one uses it. Lockers that wait check whether the holder still lives
 * (one of them every millisecond, the others every 4 ms; after 64 ms of
 * the same live holder every 64th of their wait, at most every 16 ms), so
 * a blocked waiter takes over within about 1 ms of the holder's death (a
 * 64th of its wait, at most 16 ms, after longer holds), and a locker that
 * comes later within about 1 ms. Death is
 * judged by thread id within one pid namespace: a holder in another pid
 * namespace (a container that shares the segment) is never taken over from,
 * alive or dead, and lockers wait for it until their timeouts. /proc must be
 * mounted for the namespace's own processes (as in any normal system or
 * container); without it a holder is taken over from only once its thread
 * id is gone. No pointer is kept in the lock, so a lock may be unmapped while
 * held, and a process that writes garbage into a lock can make other lockers
 * wait (until their timeouts) or fail, never crash them.
 *
 * The rwlock gives writers priority (a waiting writer holds back new readers,
 * so writers are never starved). Hence a thread that holds a read lock and
 * asks for another one waits behind a waiting writer, who waits for it: do
 * not take read locks recursively where writers may come. A writer that dies
 * is reported like the mutex: the next locker, reader or writer, gets
 * SK_EOWNERDEAD, and the lock is consistent again. A reader that dies holding
 * a read lock cannot corrupt data, but its hold would block writers forever:
 * readers are recorded by process (up to SK_RWLOCK_MAX_READERS at once), and
 * a writer waiting for readers checks every 10 ms whether they still live
 * (pid and start time; a zombie counts as dead) and drops the holds of dead
 * ones. Every transition is one atomic step, so a process killed at any
 * instruction leaves the lock exact.
 *
 * Semaphores, events and condition variables have no owner. A process that
 * dies after taking a semaphore unit does not give it back; use timeouts
 * where a party may die. A barrier breaks (as Python's threading.Barrier
 * does) when a waiting party times out or calls sk_barrier_abort: everyone
 * waiting and arriving later gets SK_EBROKEN until sk_barrier_reset.
 *
 * Safe for several threads of one process as well as several processes,
 * and in any shared memory: a segment, or a MAP_SHARED region inherited
 * through fork (sk_*_init on it).
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
/* Makes m a free mutex (also the way back from SK_ENOTRECOVERABLE, once no
 * one uses it). m may live in any memory the lockers share. */
int sk_mutex_init(sk_mutex *m);
/* 0, -EBUSY (held, including by a dead holder not yet taken over, or waited
 * on), SK_ECORRUPT (not a mutex). An unusable mutex (SK_ENOTRECOVERABLE) can
 * be destroyed. */
int sk_mutex_destroy(sk_mutex *m);
/* 0, SK_EOWNERDEAD (acquired; repair, then sk_mutex_consistent), -ETIMEDOUT,
 * -EDEADLK (this thread holds it already), SK_ENOTRECOVERABLE, SK_ECORRUPT
 * (not a mutex, or its state was overwritten). */
int sk_mutex_lock(sk_mutex *m, int64_t timeout_ns);
/* As lock with a zero timeout, but -EBUSY when held. A holder whose thread
 * is gone is taken over at once; one that is a zombie, or whose thread id
 * another thread took, once this thread has found it holding the lock for
 * 1 ms (so a loop of trylocks recovers, and costs a system call at most
 * every 50 us). */
int sk_mutex_trylock(sk_mutex *m);
/* 0, or -EPERM if the calling thread does not hold it. */
int sk_mutex_unlock(sk_mutex *m);
/* After SK_EOWNERDEAD: the data is repaired, the mutex is normal again.
 * -EINVAL if there is nothing to repair, -EPERM if another thread holds it. */
int sk_mutex_consistent(sk_mutex *m);
/* 1 if the calling thread holds m, 0 if not (or SK_ECORRUPT): no system call. */
int sk_mutex_held_by_me(const sk_mutex *m);
/* Describes m. Costs a few system calls (and a /proc read) when it is held:
 * it asks whether the holder lives. */
int sk_mutex_state(const sk_mutex *m, sk_lock_state *st);
int sk_mutex_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_mutex **m);
int sk_mutex_open(const char *name, sk_segment **seg, sk_mutex **m);

/* ---- rwlock ---- */
int sk_rwlock_init(sk_rwlock *l);
/* 0, -EBUSY (a writer holds or waits, a reader holds), SK_ECORRUPT. */
int sk_rwlock_destroy(sk_rwlock *l);
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
int sk_sem_destroy(sk_sem *s);                  /* 0, -EBUSY (someone waits), SK_ECORRUPT */
int sk_sem_wait(sk_sem *s, int64_t timeout_ns); /* 0, -ETIMEDOUT (-EAGAIN with timeout 0) */
int sk_sem_post(sk_sem *s);
int sk_sem_value(const sk_sem *s); /* the count (never negative), or SK_ECORRUPT */
int sk_sem_state(const sk_sem *s, sk_lock_state *st);
int sk_sem_create(const char *name, uint32_t value, uint32_t max, const sk_create_opts *opts, sk_segment **seg,
		  sk_sem **s);
int sk_sem_open(const char *name, sk_segment **seg, sk_sem **s);

/* ---- reusable barrier for `parties` (1 .. 65535), as threading.Barrier ---- */
int sk_barrier_init(sk_barrier *b, uint32_t parties);
/* 0, -EBUSY (a party has arrived in the current round, or waits), SK_ECORRUPT. */
int sk_barrier_destroy(sk_barrier *b);
/* Waits for the round to complete. Returns this party's index in the round,
 * 0 .. parties-1 in arrival order (the last arriver, which completes the
 * round, gets parties-1); SK_EBROKEN if the barrier is broken or breaks
 * while waiting (abort, reset, another party's timeout); -ETIMEDOUT when the
 * time runs out, which breaks the barrier for everyone. */
int sk_barrier_wait(sk_barrier *b, int64_t timeout_ns);

/* The two halves of sk_barrier_wait, for callers that wait in slices or run
 * an action before the others are released. */
typedef struct sk_barrier_ticket {
	uint32_t round; /* which round this party arrived in */
	uint32_t index; /* its index in that round */
} sk_barrier_ticket;
#define SK_BARRIER_HOLD 0x1 /* the last arriver holds the round until sk_barrier_release */
/* Arrives: returns the index (as sk_barrier_wait) and fills *t. The last
 * arriver completes the round at once, or with SK_BARRIER_HOLD keeps the
 * others waiting until it calls sk_barrier_release (after its action) or
 * sk_barrier_abort (the action failed). While a round is held, a new
 * arrival waits for it to end: -ETIMEDOUT if it does not within the timeout
 * (nothing changed). SK_EBROKEN if broken. */
int sk_barrier_arrive(sk_barrier *b, unsigned flags, int64_t timeout_ns, sk_barrier_ticket *t);
/* Waits for the round of t to complete: 0, SK_EBROKEN, or -ETIMEDOUT (still
 * waiting: call again, or give up with sk_barrier_leave). */
int sk_barrier_await(sk_barrier *b, const sk_barrier_ticket *t, int64_t timeout_ns);
/* Ends the round held by the last arriver (SK_BARRIER_HOLD): 0, SK_EBROKEN
 * if it broke meanwhile (a party timed out), -EINVAL if not held. */
int sk_barrier_release(sk_barrier *b, const sk_barrier_ticket *t);
/* Leaves the round of t that this party waits in: withdraws from it (as an
 * interrupted threading.Barrier party does; the others go on waiting for a
 * full round), or with SK_BARRIER_BREAK breaks the barrier if that round is
 * still the current one (what a timeout does). 0 done, 1 the round had
 * completed (the party passed), SK_EBROKEN (it broke or was reset), -EBUSY
 * (withdrawing from a held round). */
#define SK_BARRIER_BREAK 0x2
int sk_barrier_leave(sk_barrier *b, const sk_barrier_ticket *t, unsigned flags);
/* Breaks the barrier: waiting and later parties get SK_EBROKEN until reset. */
int sk_barrier_abort(sk_barrier *b);
/* Starts a fresh round; parties waiting in the old one get SK_EBROKEN. */
int sk_barrier_reset(sk_barrier *b);
int sk_barrier_broken(const sk_barrier *b); /* 1 or 0 */
/* value: parties waiting now (0 while broken); limit: parties. */
int sk_barrier_state(const sk_barrier *b, sk_lock_state *st);
int sk_barrier_create(const char *name, uint32_t parties, const sk_create_opts *opts, sk_segment **seg, sk_barrier **b);
int sk_barrier_open(const char *name, sk_segment **seg, sk_barrier **b);

/* ---- event (manual reset) ---- */
int sk_event_init(sk_event *e);
int sk_event_destroy(sk_event *e); /* 0, -EBUSY (someone waits), SK_ECORRUPT */
int sk_event_set(sk_event *e);
int sk_event_clear(sk_event *e);
int sk_event_is_set(const sk_event *e);             /* 1 or 0 */
int sk_event_wait(sk_event *e, int64_t timeout_ns); /* 0 once set, -ETIMEDOUT */
int sk_event_state(const sk_event *e, sk_lock_state *st);
int sk_event_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_event **e);
int sk_event_open(const char *name, sk_segment **seg, sk_event **e);

/* ---- condition variable, used with an sk_mutex ---- */
int sk_cond_init(sk_cond *c);
int sk_cond_destroy(sk_cond *c); /* 0, -EBUSY (someone waits), SK_ECORRUPT */
/* Unlocks m (held by the caller), sleeps until signalled or the timeout, and
 * takes m back within the same timeout. Returns 0 (woken) or -ETIMEDOUT (not
 * woken in time), both with m held; SK_EOWNERDEAD: m held, its previous
 * holder died (repair, sk_mutex_consistent), woken or not: re-check the
 * condition; SK_ENOTHELD: m could not be taken back before the deadline, the
 * caller does not hold it; -EPERM (the caller did not hold m, nothing done).
 * Wake-ups without a signal can happen: wait in a loop. */
int sk_cond_wait(sk_cond *c, sk_mutex *m, int64_t timeout_ns);
/* The same in steps, for callers that sleep in slices (to run signal
 * handlers, say): sk_cond_begin records the wake-up ticket and unlocks m;
 * sk_cond_sleep returns 0 once a signal or broadcast came after the ticket
 * (no spurious wake-ups), or -ETIMEDOUT; then the caller takes m back with
 * sk_mutex_lock. */
int sk_cond_begin(sk_cond *c, sk_mutex *m, uint32_t *ticket);
int sk_cond_sleep(sk_cond *c, uint32_t ticket, int64_t timeout_ns);
int sk_cond_signal(sk_cond *c);
int sk_cond_broadcast(sk_cond *c);
int sk_cond_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_cond **c);
int sk_cond_open(const char *name, sk_segment **seg, sk_cond **c);

#ifdef __cplusplus
}
#endif
#endif
