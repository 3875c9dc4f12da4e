/*
 * sync.c: process-shared mutex, rwlock, semaphore, barrier, event, cond.
 *
 * Memory layouts (fixed width, little-endian, documented in docs/format.md):
 *
 *   mutex   128 B: magic, version, the 64-bit owner word at offset 8, an
 *           informational record of the holder {thread start time, tid, pid}
 *           at 16, a waiter count at 32, which sleeper judges the holder and
 *           its heartbeat at 36 and 40, reserved space.
 *   rwlock  1280 B: a futex sequence bumped by every read unlock, a
 *           "writer draining" flag, the writer's identity, an sk_mutex at
 *           offset 64 that a writer holds for its whole write section (so a
 *           writer's death is the mutex's owner death and new readers queue
 *           behind a waiting writer), and 64 reader slots {pid, holds, start
 *           time, pid namespace} at offset 192. There is no shared reader
 *           count.
 *   barrier 64 B: a 64-bit state word (arrived, round, broken, and which of
 *           the last 32 rounds completed) and the number of parties.
 *   sem, event, cond   64 B each: magic, version, one futex word, a waiter
 *           count (so posts and sets skip the wake syscall when no one
 *           sleeps) and a parameter.
 *
 * The mutex. No process ever follows a pointer read from shared memory, so
 * the kernel's robust futex list is not used: its entries must sit in the
 * lock (in shared memory) and are linked through addresses in each holder's
 * private memory, which glibc's unlock then follows and rewrites; a peer
 * that rewrites them makes the holder write where the peer chose. (There is
 * one list head per thread and glibc owns it, so a list of our own is not
 * possible either.) Instead the lock is a futex of its own and owner death
 * is learnt by asking the kernel whether the owner still lives.
 *
 * The owner word is 64 bits, always changed whole by compare-and-swap. Its
 * low 32 bits are the futex word: the owner's thread id (bits 0-21: Linux
 * never gives out ids of 2^22 and above), the low 7 bits of that thread's
 * start time (22-28), DIED (29: taken over from a dead owner and not yet
 * marked consistent), NOTREC (30: the word is exactly 0x40000000 once the
 * lock became unusable) and WAITERS (31: someone sleeps on it). The high 32
 * bits are the inode of the owner's pid namespace (namespace inodes are
 * 32-bit; /proc/self/ns/pid), 0 where it is unknown. Each thread computes its
 * word once (tid, pid, namespace and start time are cached per thread and
 * forgotten in a forked child). Locking is one CAS from 0 to that word,
 * followed by two plain stores of the informational record; unlocking clears
 * the record's tid, then one CAS from the word to 0, and a FUTEX_WAKE only if
 * WAITERS was set.
 *
 * Contended, a locker spins briefly (raising a spin hint in the lock, which
 * makes an unlock pause a moment, without touching the word, before its
 * thread can take the lock back: so two threads that keep locking take
 * turns instead of the one whose cache holds the word winning again), then
 * sets WAITERS and sleeps on the futex in slices; a hand-off wakes it at
 * once. One sleeper (the one that
 * claimed the lock's judge field; a sleeper that finds it free claims it)
 * sleeps 1 ms at a time and bumps a heartbeat; the others sleep four times
 * longer and take the role over when the heartbeat stopped (its sleeper
 * left or died), so a wait costs one wake-up per millisecond per lock, not
 * per sleeper. A sleeper that has found the same live owner for more than
 * 64 ms backs off: it sleeps a 64th of the time it has waited, at most
 * 16 ms (the others at most 32 ms), so a long wait costs about 60 wake-ups
 * a second, and a blocked waiter takes a dead owner's lock within a 64th of
 * the time it had waited (at most 16 ms; within 1 ms for an owner that held
 * the lock under 64 ms). Only when a slice ends without the
 * word changing does a sleeper judge the owner (every sleeper does, at its
 * own pace; a new owner also gets one cheap look before the first sleep,
 * so one that died long ago is taken over at once): an owner in
 * another pid namespace (or an unknown one) is never judged dead (tids are
 * per namespace), and the locker waits until its own timeout. In the same
 * namespace the owner is dead if tkill(tid, 0) finds no such thread, if the
 * thread is a zombie (/proc/tid/task/tid/stat), if a pidfd of that thread
 * has become readable, or if the live thread with that id is another one
 * (tid reuse): its start time differs from the record's (when the record is
 * the owner's: same tid and start bits as the word), or its low start bits
 * differ from the word's, or it started after this locker first saw the
 * word. Checks are cheap per slice (a pidfd poll, or tkill) and read /proc
 * every 8th slice. A dead owner's lock is taken with one CAS from exactly the
 * observed word to the locker's word with DIED set, and the locker gets
 * SK_EOWNERDEAD; sk_mutex_consistent clears DIED; an unlock with DIED set
 * leaves NOTREC, which every later locker gets as SK_ENOTRECOVERABLE.
 *
 * A holder that dies between its CAS and its record stores leaves a record
 * that is not its own (unlock and takeover clear the record's tid before
 * they release or take the word, and the holder stores its start time
 * before its tid): judges then rely on the word alone (the tid gone or a
 * zombie, or another thread with that id, by start bits or by start time
 * after first sight). A live holder inside that window (even one stopped
 * there) is never judged dead: its thread exists, is no zombie, carries the
 * start bits its word names and started before any locker saw the word. The
 * one case left waiting is a holder killed inside that window of a few
 * instructions whose tid a new thread with the same 7 start bits took before
 * any locker looked; the lock is recovered once that thread ends. (A 128-bit
 * word with the whole start time would close it, but needs cmpxchg16b and a
 * 16-byte alignment that locks embedded in caller memory do not have.) A
 * thread that ends (pthread_exit) holding the lock in a live process is a
 * dead owner like a killed one.
 *
 * What a peer that writes the lock can do: make lockers wait (until their
 * timeouts), make them get an error, or let two of them in at once: it
 * spoils what it can write. It cannot make any process read or write outside
 * its mappings (nothing read from the lock is an address or a size), wait
 * past its timeout (every wait has a deadline; spins and checks are
 * bounded), or send a signal (tkill uses signal 0). The tid it writes is
 * only ever passed to tkill(tid, 0), pidfd_open and a /proc path.
 *
 * Concurrency: all fields shared between processes are accessed with
 * __atomic builtins; futex words are waited on with FUTEX_WAIT (shared, not
 * private, so different mappings of the same file match). Every wait loop
 * re-checks its condition after waking, so spurious wake-ups are harmless,
 * and computes the time left from one deadline, so EINTR and retries never
 * extend a timeout.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "atomic.h"
#include "clock.h"
#include "named.h"
#include "os.h"
#include "segment.h"
#include "shmkit/sync.h"

/* The uncontended lock and unlock paths start on a cache line: placed
 * wherever the linker puts them, the same code measured 50 or 63 ns per
 * acquire+release in Python depending on the build (bench/python_compare). */
#define SK__HOT_ENTRY __attribute__((aligned(64)))

#define MUTEX_MAGIC     0x584d4b53u /* "SKMX" */
#define RWLOCK_MAGIC    0x57524b53u /* "SKRW" */
#define SEM_MAGIC       0x4d534b53u /* "SKSM" */
#define BARRIER_MAGIC   0x52424b53u /* "SKBR" */
#define EVENT_MAGIC     0x56454b53u /* "SKEV" */
#define COND_MAGIC      0x44434b53u /* "SKCD" */
#define MUTEX_VERSION   2u          /* 1 embedded a glibc robust mutex */
#define RWLOCK_VERSION  2u          /* 1 kept a shared reader count */
#define BARRIER_VERSION 2u          /* 1 had a 32-bit word, no breaking */
#define WORD_VERSION    1u          /* sem, event, cond */

/* The mutex's owner word (see above). */
#define W_TID         UINT64_C(0x003fffff)
#define W_START_SHIFT 22
#define W_START       (UINT64_C(0x7f) << W_START_SHIFT)
#define W_DIED        (UINT64_C(1) << 29)
#define W_NOTREC      (UINT64_C(1) << 30)
#define W_WAITERS     (UINT64_C(1) << 31)
#define W_ID          (UINT64_C(0xffffffff00000000) | W_TID | W_START) /* who holds it */

#define SLICE_NS       1000000  /* the judging sleeper checks the owner this often at first */
#define SLICE_MAX_NS   16000000 /* and at least this often however long it waited */
#define BACKOFF        64       /* after 64 slices of one live owner: every 1/64 of the wait so far */
#define IDLE_MAX_NS    32000000 /* other sleepers: 4 slices, at most this; they take over a judge that stopped */
#define IDLE_SLICES    4
#define SPINS          100      /* polls of a held word before sleeping */
#define HANDOFF_PAUSES 4        /* an unlock leaves a spinning locker this many pauses to take the lock */
#define PROC_EVERY     8        /* slices between /proc reads of a live owner */
#define QUICK_EVERY_NS 50000    /* a thread that keeps trying a held lock asks this often */
#define CAS_TRIES      100000   /* failed CAS in a row: someone keeps rewriting the word */
#define RW_SLICE_NS    10000000 /* a writer checks waiting-on readers this often */

typedef struct mutex_impl {
	union {
		struct {
			uint32_t magic;
			uint16_t version, flags;
		};
		uint64_t head;
	};
	uint64_t word;        /* 8: the owner word */
	uint64_t owner_start; /* 16: record: the holder thread's start time */
	uint64_t owner_id;    /* 24: record: tid | pid << 32 */
	uint32_t waiters;     /* 32: lockers asleep (informational) */
	uint32_t judge;       /* 36: tid of the sleeper that checks the owner every slice; 0: none */
	uint32_t beat;        /* 40: bumped by the judge at each slice it checks */
	uint32_t spin;        /* 44: lockers spinning for the lock (a hint) */
	uint8_t resv[80];     /* 48 */
} mutex_impl;
static_assert(sizeof(mutex_impl) == sizeof(sk_mutex), "mutex size");
static_assert(offsetof(mutex_impl, word) == 8 && offsetof(mutex_impl, owner_start) == 16 &&
		  offsetof(mutex_impl, owner_id) == 24 && offsetof(mutex_impl, waiters) == 32,
	      "mutex layout");
#define MUTEX_HEAD ((uint64_t)MUTEX_MAGIC | (uint64_t)MUTEX_VERSION << 32)

typedef struct rd_slot {
	int32_t pid;    /* reader process, in its pid namespace */
	uint32_t count; /* its read holds */
	uint32_t start; /* low 32 bits of its start time */
	uint32_t pidns; /* its pid namespace inode; 0 if unknown */
} rd_slot;

typedef struct rwlock_impl {
	uint32_t magic;
	uint16_t version, flags;
	uint32_t seq;      /* 8: bumped by every read unlock while a writer drains */
	uint32_t draining; /* 12: 1 while the inner mutex's holder waits for readers */
	int32_t writer_pid;
	int32_t writer_tid;
	uint64_t writer_start;
	uint32_t waiting_writers; /* 32 (informational) */
	uint8_t resv0[28];
	mutex_impl m;
	rd_slot slots[SK_RWLOCK_MAX_READERS];
	uint8_t resv1[64];
} rwlock_impl;
static_assert(sizeof(rwlock_impl) == sizeof(sk_rwlock), "rwlock size");
static_assert(offsetof(rwlock_impl, m) == 64 && offsetof(rwlock_impl, slots) == 192, "rwlock layout");

typedef struct word_impl { /* sem, event, cond */
	uint32_t magic;
	uint16_t version, flags;
	uint32_t word; /* sem: count; event: 0/1; cond: sequence */
	uint32_t waiters;
	uint32_t param; /* sem: maximum (0 none) */
	uint8_t resv[44];
} word_impl;

typedef struct barrier_impl {
	uint32_t magic;
	uint16_t version, flags;
	uint64_t word;    /* 8: see the barrier section */
	uint32_t waiters; /* 16 (informational) */
	uint32_t parties; /* 20 */
	uint8_t resv[40];
} barrier_impl;
static_assert(sizeof(word_impl) == 64 && sizeof(barrier_impl) == 64 && sizeof(sk_sem) == 64 &&
		  sizeof(sk_barrier) == 64 && sizeof(sk_event) == 64 && sizeof(sk_cond) == 64,
	      "64-byte primitives");

/* The data size of a named primitive of this kind, 0 if not one. */
static size_t sync_size(uint32_t kind)
{
	switch (kind) {
	case SK_KIND_MUTEX: return sizeof(sk_mutex);
	case SK_KIND_RWLOCK: return sizeof(sk_rwlock);
	case SK_KIND_SEM:
	case SK_KIND_BARRIER:
	case SK_KIND_EVENT:
	case SK_KIND_COND: return 64;
	}
	return 0;
}

/* A named primitive's header: no dtype, no shape, one item of its size. */
static int check_fields(const sk__header *h)
{
	if (h->dtype || !sk__header_no_shape(h) || h->nitems != 1 || h->data_size != sync_size(h->kind))
		return SK_ECORRUPT;
	return 0;
}

const sk__kind sk__kind_mutex = { .id = SK_KIND_MUTEX, .name = "mutex", .check = check_fields };
const sk__kind sk__kind_rwlock = { .id = SK_KIND_RWLOCK, .name = "rwlock", .check = check_fields };
const sk__kind sk__kind_sem = { .id = SK_KIND_SEM, .name = "sem", .check = check_fields };
const sk__kind sk__kind_barrier = { .id = SK_KIND_BARRIER, .name = "barrier", .check = check_fields };
const sk__kind sk__kind_event = { .id = SK_KIND_EVENT, .name = "event", .check = check_fields };
const sk__kind sk__kind_cond = { .id = SK_KIND_COND, .name = "cond", .check = check_fields };

/* ---- time ---- */

/* Sleeps while *w == v, until the deadline. 0 (woken, changed, spurious) or -ETIMEDOUT. */
static int wait_word(uint32_t *w, uint32_t v, int64_t deadline, int64_t max_slice)
{
	int64_t rem = sk__time_left(deadline);
	if (rem == 0)
		return -ETIMEDOUT;
	if (max_slice > 0 && (rem < 0 || rem > max_slice))
		rem = max_slice;
	int rc = sk__sys_futex_wait(w, v, rem);
	return rc == -ETIMEDOUT && sk__time_left(deadline) == 0 ? -ETIMEDOUT : 0;
}

/* Whether process pid (of the caller's namespace) with that start time
 * still runs (not a zombie). Only the low bits given are compared. */
static bool proc_alive(pid_t pid, uint64_t start, uint64_t mask)
{
	uint64_t now;
	if (pid <= 0 || sk__sys_proc_start(pid, &now) != 0 || (now & mask) != (start & mask))
		return false;
	return sk__sys_proc_gone(pid) != 1;
}

/* ---- who we are ---- */

__attribute__((noinline, cold)) static void me_fill(void)
{
	sk__sys_ident_fill();
	uint64_t tid = (uint32_t)sk__me.tid;
	/* An owner whose start time is unknown cannot be judged by others
	 * (start bits would mislead them): its word names no namespace. */
	uint64_t ns = sk__me.proc_ok ? sk__me.pidns : 0;
	if (tid == 0 || tid > W_TID)
		tid = 0; /* cannot happen on Linux (PID_MAX_LIMIT is 2^22): locks refuse */
	sk__me.recid = (uint64_t)(uint32_t)sk__me.tid | (uint64_t)(uint32_t)sk__me.pid << 32;
	sk__me.lockword = tid ? tid | (sk__me.start & 0x7f) << W_START_SHIFT | ns << 32 : W_NOTREC;
}

static inline const sk__ident *me_get(void)
{
	if (__builtin_expect(sk__me.lockword == 0, 0))
		me_fill();
	return &sk__me;
}

/* ---- mutex ---- */

static int mutex_init(mutex_impl *m)
{
	memset(m, 0, sizeof *m);
	m->version = MUTEX_VERSION;
	ST(&m->magic, MUTEX_MAGIC);
	return 0;
}

int sk_mutex_init(sk_mutex *m)
{
	return m ? mutex_init((mutex_impl *)m) : -EINVAL;
}

static inline int mutex_check(const mutex_impl *m)
{
	if (!m)
		return -EINVAL;
	return __atomic_load_n(&m->head, __ATOMIC_RELAXED) == MUTEX_HEAD ? 0 : SK_ECORRUPT;
}

/* Whether anyone holds m (a dead holder not yet taken over counts; an
 * unusable lock is held by no one) or sleeps on it. */
static bool mutex_busy(const mutex_impl *m)
{
	uint64_t w = LD(&m->word);
	return (w != 0 && w != W_NOTREC) || LD(&m->waiters) != 0;
}

int sk_mutex_destroy(sk_mutex *mm)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	if (mutex_busy(m))
		return -EBUSY;
	ST(&m->head, 0); /* magic and version: every later call gets SK_ECORRUPT */
	return 0;
}

/* The informational record of the new holder: start time first, then (with
 * release) tid and pid, so that whoever sees the tid sees its start time. */
static inline void record(mutex_impl *m, const sk__ident *me)
{
	__atomic_store_n(&m->owner_start, me->start, __ATOMIC_RELAXED);
	__atomic_store_n(&m->owner_id, me->recid, __ATOMIC_RELEASE);
}

/* A locker's view of one owner word while it waits. */
typedef struct judge {
	uint64_t w;       /* the word judged */
	uint64_t seen;    /* boot ticks when this locker first saw it; 0: unknown */
	int64_t since;    /* monotonic ns when this locker first saw it; 0: unknown */
	int pidfd;        /* readable once its owner thread ended; -1 if none */
	bool pidfd_tried; /* opened (or failed to) for this word */
	unsigned slices;  /* slices that ended with the word unchanged */
} judge;

static void judge_reset(judge *j, uint64_t w, bool stamp)
{
	if (j->pidfd >= 0)
		sk__sys_close(j->pidfd);
	*j = (judge){ .w = w,
		      .seen = stamp ? sk__sys_boot_ticks() : 0,
		      .since = stamp ? sk__sys_monotonic_ns() : 0,
		      .pidfd = -1 };
}

/* How long the judging sleeper sleeps between looks at an owner it has seen
 * hold the lock since j->since: 1 ms for the first 64 ms, then a 64th of the
 * time it has waited, up to 16 ms (reached after about a second). A
 * blocked waiter so takes a dead owner's lock within about 1 ms of the
 * death while the owner had held it under 64 ms, and within a 64th of its
 * wait (at most 16 ms) after that; a long wait costs 60 wake-ups a second
 * instead of 1000. */
static int64_t look_every(const judge *j, int64_t now)
{
	int64_t s = j->since > 0 && now > j->since ? (now - j->since) / BACKOFF : 0;
	return s < SLICE_NS ? SLICE_NS : s > SLICE_MAX_NS ? SLICE_MAX_NS : s;
}

/* Whether the owner named by j->w is dead. Cheap checks unless full. Never
 * true for an owner that lives (see the paragraph atop this file). */
static bool owner_dead(const mutex_impl *m, const sk__ident *me, judge *j, bool full)
{
	uint64_t w = j->w;
	pid_t t = (pid_t)(w & W_TID);
	uint32_t ns = (uint32_t)(w >> 32);
	if (!t || !ns || ns != me->pidns)
		return false; /* another (or an unknown) pid namespace: its tids mean nothing here */
	if (!full && j->pidfd >= 0)
		return sk__sys_fd_ready(j->pidfd) == 1;
	int rc = sk__sys_thread_exists(t);
	if (rc == -ESRCH)
		return true;
	if (!full || rc)
		return false;
	if (me->proc_ok) {
		char state;
		uint64_t start;
		rc = sk__sys_thread_stat(t, &state, &start);
		if (rc) /* gone meanwhile, or /proc hides it (hidepid): ask again */
			return rc == -ESRCH && sk__sys_thread_exists(t) == -ESRCH;
		if (state == 'Z' || state == 'X' || state == 'x')
			return true;
		if ((start & 0x7f) != (w & W_START) >> W_START_SHIFT)
			return true; /* another thread took the id */
		uint64_t id = __atomic_load_n(&m->owner_id, __ATOMIC_ACQUIRE);
		uint64_t rstart = __atomic_load_n(&m->owner_start, __ATOMIC_RELAXED);
		bool own_record = (uint32_t)id == (uint32_t)t && (rstart & 0x7f) == (w & W_START) >> W_START_SHIFT;
		if (own_record ? rstart != start : (j->seen && start > j->seen + 1))
			return true;
	}
	if (!j->pidfd_tried) {
		j->pidfd_tried = true;
		if (sk__sys_thread_pidfd(t, &j->pidfd) != 0)
			j->pidfd = -1;
	}
	return j->pidfd >= 0 && sk__sys_fd_ready(j->pidfd) == 1;
}

/* Takes the lock from the dead owner of exactly w. */
static bool steal(mutex_impl *m, uint64_t w, uint64_t mine)
{
	__atomic_store_n(&m->owner_id, 0, __ATOMIC_RELAXED); /* the record is not the new owner's yet */
	return CAS(&m->word, &w, mine | W_DIED | (w & W_WAITERS));
}

/* What a locker that finds w (not 0) is told at once, or 1 to go on. */
static inline int held_verdict(uint64_t w, uint64_t mine)
{
	if (w == W_NOTREC)
		return SK_ENOTRECOVERABLE;
	if ((w & W_ID) == mine)
		return -EDEADLK;
	if (!(w & W_TID))
		return SK_ECORRUPT; /* no state of the lock looks like this */
	return 1;
}

/* One look without waiting (trylock, timeout 0): takes a free lock or a
 * dead owner's. 0, SK_EOWNERDEAD, or busy (1) or another code. fully: look
 * at /proc at once (a single look, not a loop of them). */
static int try_once(mutex_impl *m, const sk__ident *me, bool fully)
{
	uint64_t mine = me->lockword;
	for (int tries = 0; tries < 16; tries++) { /* more only if the word flickers */
		uint64_t w = LD(&m->word);
		if (w == 0) {
			if (CAS(&m->word, &w, mine)) {
				record(m, me);
				return 0;
			}
			continue;
		}
		int v = held_verdict(w, mine);
		if (v != 1)
			return v;
		/* Asking the kernel costs a system call (tkill), a full look
		 * a /proc read and a pidfd: a thread that keeps trying one held
		 * lock asks at most every 50 us, and looks fully once the same
		 * owner held it for 1 ms (then at most every 1 ms). */
		int64_t now = sk__sys_monotonic_ns();
		if (sk__me.busy_word != w) {
			sk__me.busy_word = w;
			sk__me.busy_first = now;
			sk__me.busy_quick = sk__me.busy_full = now - SLICE_NS;
		}
		bool full = fully || (now - sk__me.busy_first >= SLICE_NS && now - sk__me.busy_full >= SLICE_NS);
		if (!full && now - sk__me.busy_quick < QUICK_EVERY_NS)
			return 1;
		sk__me.busy_quick = now;
		if (full)
			sk__me.busy_full = now;
		judge j = { .pidfd = -1 };
		judge_reset(&j, w, false);
		bool dead = owner_dead(m, me, &j, full);
		judge_reset(&j, 0, false);
		if (!dead)
			return 1;
		if (steal(m, w, mine)) {
			record(m, me);
			return SK_EOWNERDEAD;
		}
	}
	return 1;
}

__attribute__((noinline)) static int lock_slow(mutex_impl *m, const sk__ident *me, int64_t timeout_ns, bool fully)
{
	uint64_t mine = me->lockword;
	if (!(mine & W_TID))
		return -EOVERFLOW;
	if (timeout_ns == 0) {
		int rc = try_once(m, me, fully);
		return rc == 1 ? -ETIMEDOUT : rc;
	}
	__atomic_store_n(&m->spin, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < SPINS; i++) {
		uint64_t w = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
		if (w == 0 && CAS(&m->word, &w, mine)) {
			__atomic_store_n(&m->spin, 0, __ATOMIC_RELAXED);
			record(m, me);
			return 0;
		}
		if (w != 0 && held_verdict(w, mine) != 1)
			break;
		sk__cpu_relax();
	}
	__atomic_store_n(&m->spin, 0, __ATOMIC_RELAXED);
	int64_t deadline = sk__deadline(timeout_ns);
	judge j = { .pidfd = -1 };
	bool counted = false, judging = false;
	uint32_t beat = 0, tid = (uint32_t)me->tid;
	unsigned busy = 0; /* turns without sleeping */
	int rc;
	for (;; busy++) {
		if (busy > 1000) {
			/* The word changes under every CAS: someone rewrites it
			 * without end. Back off, and keep to the deadline. */
			if (sk__time_left(deadline) == 0) {
				rc = -ETIMEDOUT;
				break;
			}
			uint32_t nap = 0;
			sk__sys_futex_wait(&nap, 0, SLICE_NS);
			busy = 0;
		}
		uint64_t w = LD(&m->word);
		if (w == 0) {
			/* Others may sleep: the holder's unlock must wake one. */
			if (CAS(&m->word, &w, mine | (counted ? W_WAITERS : 0))) {
				rc = 0;
				break;
			}
			continue;
		}
		rc = held_verdict(w, mine);
		if (rc != 1)
			break;
		bool fresh = (w & ~W_WAITERS) != (j.w & ~W_WAITERS);
		if (fresh)
			judge_reset(&j, w, true);
		else
			j.w = w;
		int64_t left = sk__time_left(deadline);
		if (left == 0 || fresh) {
			/* A new owner gets one quick look (a dead and reaped one is
			 * taken at once); the last look before a timeout is full. */
			if (owner_dead(m, me, &j, left == 0)) {
				if (steal(m, w, mine)) {
					rc = SK_EOWNERDEAD;
					break;
				}
				continue;
			}
			if (left == 0) {
				rc = -ETIMEDOUT;
				break;
			}
		}
		if (!(w & W_WAITERS)) {
			uint64_t e = w;
			if (!CAS(&m->word, &e, w | W_WAITERS))
				continue;
			w |= W_WAITERS;
		}
		if (!counted) {
			ADD(&m->waiters, 1);
			counted = true;
			beat = LD(&m->beat);
		}
		/* One sleeper judges (every millisecond at first, see
		 * look_every), the others four times less often: a blocked
		 * lock costs little CPU. A sleeper that finds no judge (the
		 * last one took the lock or gave up) becomes it. */
		uint32_t none = 0;
		if (!judging && LD(&m->judge) == 0 && CAS(&m->judge, &none, tid)) {
			judging = true;
			beat = LD(&m->beat);
		}
		int64_t every = look_every(&j, sk__sys_monotonic_ns());
		int64_t idle = every * IDLE_SLICES < IDLE_MAX_NS ? every * IDLE_SLICES : IDLE_MAX_NS;
		int64_t slice = judging ? every : idle;
		if (left >= 0 && left < slice)
			slice = left;
		int frc = sk__sys_futex_wait((uint32_t *)&m->word, (uint32_t)w, slice);
		busy = 0;
		if (frc == -ETIMEDOUT && LD(&m->word) == w) {
			if (judging && LD(&m->judge) != tid) {
				judging = false; /* another sleeper took over (this one was slow) */
				beat = LD(&m->beat);
			} else if (judging) {
				ADD(&m->beat, 1);
			} else {
				uint32_t b = LD(&m->beat), j0 = LD(&m->judge);
				if (b == beat && slice == idle) /* the judge stopped: take over */
					judging = j0 == tid || CAS(&m->judge, &j0, tid);
				beat = b;
			}
			bool full = j.slices++ % PROC_EVERY == 0;
			if (owner_dead(m, me, &j, full)) {
				if (steal(m, w, mine)) {
					rc = SK_EOWNERDEAD;
					break;
				}
			}
		}
	}
	if (judging)
		CAS(&m->judge, &tid, 0);
	if (counted)
		SUB(&m->waiters, 1);
	judge_reset(&j, 0, false);
	if (rc == 0 || rc == SK_EOWNERDEAD)
		record(m, me);
	return rc;
}

/* sk_mutex_lock; fully: a zero timeout looks at /proc at once (for a caller
 * that takes its one chance, as a condition wait at its deadline). */
static inline int mutex_lock(sk_mutex *mm, int64_t timeout_ns, bool fully)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	const sk__ident *me = me_get();
	uint64_t mine = me->lockword, w = 0;
	if (__builtin_expect((mine & W_TID) != 0, 1) && CAS(&m->word, &w, mine)) {
		record(m, me);
		return 0;
	}
	return lock_slow(m, me, timeout_ns, fully);
}

SK__HOT_ENTRY int sk_mutex_lock(sk_mutex *m, int64_t timeout_ns)
{
	return mutex_lock(m, timeout_ns, false);
}

SK__HOT_ENTRY int sk_mutex_trylock(sk_mutex *mm)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	const sk__ident *me = me_get();
	uint64_t mine = me->lockword, w = 0;
	if (!(mine & W_TID))
		return -EOVERFLOW;
	if (__builtin_expect(CAS(&m->word, &w, mine), 1)) { /* free: as in mutex_lock */
		record(m, me);
		return 0;
	}
	rc = try_once(m, me, false);
	return rc == 1 ? -EBUSY : rc;
}

__attribute__((noinline)) static int unlock_slow(mutex_impl *m, uint64_t mine, uint64_t w)
{
	for (unsigned n = 0; n < CAS_TRIES; n++) {
		if ((w & W_ID) != mine || !(w & W_TID))
			return -EPERM;
		uint64_t next = (w & W_DIED) ? W_NOTREC : 0; /* released unrepaired: unusable */
		if (CAS(&m->word, &w, next)) {
			if (next == W_NOTREC)
				sk__sys_futex_wake((uint32_t *)&m->word, SK__WAKE_ALL);
			else if (w & W_WAITERS)
				sk__sys_futex_wake((uint32_t *)&m->word, 1);
			return 0;
		}
	}
	return SK_ECORRUPT;
}

SK__HOT_ENTRY int sk_mutex_unlock(sk_mutex *mm)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	uint64_t mine = me_get()->lockword;
	uint64_t w = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
	if ((w & W_ID) != mine || !(w & W_TID))
		return -EPERM;
	/* The record stops naming us before the word does. */
	__atomic_store_n(&m->owner_id, 0, __ATOMIC_RELAXED);
	if (__builtin_expect(w == mine, 1) && CAS(&m->word, &w, 0)) {
		/* A locker spins for it: step back a moment (without touching
		 * the word) so that it can take the lock before this thread,
		 * whose cache holds the word, takes it back. */
		if (__builtin_expect(__atomic_load_n(&m->spin, __ATOMIC_RELAXED) != 0, 0))
			for (int i = 0; i < HANDOFF_PAUSES; i++)
				sk__cpu_relax();
		return 0;
	}
	return unlock_slow(m, mine, w);
}

int sk_mutex_consistent(sk_mutex *mm)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	uint64_t mine = me_get()->lockword;
	uint64_t w = LD(&m->word);
	for (unsigned n = 0; n < CAS_TRIES; n++) {
		if (!(w & W_DIED))
			return -EINVAL; /* nothing to repair */
		if ((w & W_ID) != mine || !(w & W_TID))
			return -EPERM;
		if (CAS(&m->word, &w, w & ~W_DIED))
			return 0;
	}
	return SK_ECORRUPT;
}

int sk_mutex_held_by_me(const sk_mutex *mm)
{
	const mutex_impl *m = (const mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc)
		return rc;
	uint64_t w = __atomic_load_n(&m->word, __ATOMIC_ACQUIRE);
	return (w & W_TID) && (w & W_ID) == me_get()->lockword;
}

int sk_mutex_state(const sk_mutex *mm, sk_lock_state *st)
{
	const mutex_impl *m = (const mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	const sk__ident *me = me_get();
	memset(st, 0, sizeof *st);
	uint64_t w = LD(&m->word);
	uint64_t id = __atomic_load_n(&m->owner_id, __ATOMIC_ACQUIRE);
	st->held = (w & W_TID) != 0;
	st->waiters = (int)LD(&m->waiters);
	st->recoverable = w != W_NOTREC;
	if (!st->held)
		return 0;
	pid_t t = (pid_t)(w & W_TID);
	if ((uint32_t)id == (uint32_t)t)
		st->owner_pid = (pid_t)(id >> 32);
	judge j = { .pidfd = -1 };
	judge_reset(&j, w, false);
	st->owner_alive = !owner_dead(m, me, &j, true);
	judge_reset(&j, 0, false);
	return 0;
}

/* ---- named primitives ---- */

/* What a named primitive is initialised with before its name is published. */
typedef struct named_init {
	int kind;
	uint32_t a, b; /* sem: value, maximum; barrier: parties */
} named_init;

static int rwlock_init(rwlock_impl *l);

static int init_named(uint8_t *base, const void *arg)
{
	const named_init *ni = arg;
	void *p = base + SK__HEADER_SIZE;
	switch (ni->kind) {
	case SK_KIND_MUTEX: return mutex_init(p);
	case SK_KIND_RWLOCK: return rwlock_init(p);
	case SK_KIND_SEM: return sk_sem_init(p, ni->a, ni->b);
	case SK_KIND_BARRIER: return sk_barrier_init(p, ni->a);
	case SK_KIND_EVENT: return sk_event_init(p);
	case SK_KIND_COND: return sk_cond_init(p);
	}
	return -EINVAL;
}

static int named_create(const char *name, const sk__kind *kind, uint32_t a, uint32_t b, const sk_create_opts *opts,
			sk_segment **seg, void **obj)
{
	if (!seg || !obj)
		return -EINVAL;
	*seg = NULL;
	*obj = NULL;
	if (opts && (opts->flags & ~SK__CREATE_COMMON))
		return -EINVAL;
	named_init ni = { (int)kind->id, a, b };
	sk__seg_desc d = {
		.kind = kind, .nitems = 1, .data_size = sync_size(kind->id), .init = init_named, .init_arg = &ni
	};
	int rc = sk__segment_create(name, &d, opts, seg);
	if (!rc)
		*obj = sk_segment_data(*seg);
	return rc;
}

static int named_open(const char *name, const sk__kind *kind, uint32_t magic, uint16_t version, sk_segment **seg,
		      void **obj)
{
	if (!seg || !obj)
		return -EINVAL;
	*seg = NULL;
	*obj = NULL;
	sk_segment *s;
	int rc = sk__segment_open(name, SK_RDWR, kind, &s);
	if (rc)
		return rc;
	const uint32_t *p = sk_segment_data(s);
	if (LD(p) != magic || __atomic_load_n((const uint16_t *)p + 2, __ATOMIC_RELAXED) != version) {
		sk_segment_close(s);
		return SK_ECORRUPT;
	}
	*seg = s;
	*obj = (void *)p;
	return 0;
}

int sk_mutex_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_mutex **m)
{
	return named_create(name, &sk__kind_mutex, 0, 0, opts, seg, (void **)m);
}

int sk_mutex_open(const char *name, sk_segment **seg, sk_mutex **m)
{
	return named_open(name, &sk__kind_mutex, MUTEX_MAGIC, MUTEX_VERSION, seg, (void **)m);
}

/* ---- rwlock ----
 *
 * A reader's hold is one atomic increment of its process's slot (made while
 * it holds the inner mutex, which is also where a waiting writer keeps new
 * readers out); its unlock is one atomic decrement, then a bump of seq when a
 * writer drains. The writer, holding the inner mutex, sums the slots and
 * sleeps on seq in slices, dropping the holds of dead readers. No count is
 * kept twice, so a death at any instruction leaves every hold exact: a slot
 * claimed but not incremented is free; a dead reader's slot is dropped by the
 * next writer; a dead writer is the inner mutex's dead owner. */

static int rwlock_init(rwlock_impl *l)
{
	memset(l, 0, sizeof *l);
	mutex_init(&l->m);
	l->version = RWLOCK_VERSION;
	ST(&l->magic, RWLOCK_MAGIC);
	return 0;
}

int sk_rwlock_init(sk_rwlock *l)
{
	return l ? rwlock_init((rwlock_impl *)l) : -EINVAL;
}

static int rwlock_check(const rwlock_impl *l)
{
	if (!l)
		return -EINVAL;
	if (LD(&l->magic) != RWLOCK_MAGIC || __atomic_load_n(&l->version, __ATOMIC_RELAXED) != RWLOCK_VERSION)
		return SK_ECORRUPT;
	return mutex_check(&l->m);
}

int sk_rwlock_destroy(sk_rwlock *ll)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	if (mutex_busy(&l->m) || LD(&l->waiting_writers))
		return -EBUSY;
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++)
		if (LD(&l->slots[i].count))
			return -EBUSY;
	ST(&l->magic, 0);
	ST(&l->m.head, 0);
	return 0;
}

/* Takes the inner mutex; a dead previous holder is repaired here. Sets
 * *writer_died when the dead holder was a writer inside its section. */
static int rw_enter(rwlock_impl *l, int64_t timeout_ns, bool *writer_died)
{
	*writer_died = false;
	int rc = sk_mutex_lock((sk_mutex *)&l->m, timeout_ns);
	if (rc == SK_EOWNERDEAD) {
		/* The slots are exact at every instruction; only the writer's
		 * identity and the draining flag can be stale. */
		*writer_died = LD(&l->writer_pid) != 0;
		ST(&l->writer_pid, 0);
		ST(&l->writer_tid, 0);
		ST(&l->draining, 0);
		rc = sk_mutex_consistent((sk_mutex *)&l->m);
	}
	return rc;
}

/* The calling process's identity in reader slots. */
typedef struct rd_id {
	int32_t pid;
	uint32_t ns;
	uint64_t start;
} rd_id;

static rd_id rd_me(void)
{
	pid_t pid;
	uint64_t start;
	sk__sys_self(&pid, &start);
	return (rd_id){ pid, me_get()->pidns, start };
}

static bool slot_is(const rd_slot *s, const rd_id *me)
{
	return LD(&s->pid) == me->pid && __atomic_load_n(&s->start, __ATOMIC_RELAXED) == (uint32_t)me->start &&
	       __atomic_load_n(&s->pidns, __ATOMIC_RELAXED) == me->ns;
}

/* Whether the reader of slot s has ended, as far as this process can tell:
 * only readers of its own pid namespace can be judged. */
static bool reader_dead(const rd_slot *s)
{
	const sk__ident *me = me_get();
	uint32_t ns = __atomic_load_n(&s->pidns, __ATOMIC_RELAXED);
	if (!me->proc_ok || !ns || ns != me->pidns)
		return false;
	return !proc_alive(LD(&s->pid), __atomic_load_n(&s->start, __ATOMIC_RELAXED), UINT32_MAX);
}

/* Sums the read holds; with reap, first drops those of dead readers.
 * Called with the inner mutex held. */
static uint64_t readers_held(rwlock_impl *l, bool reap)
{
	uint64_t sum = 0;
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++) {
		rd_slot *s = &l->slots[i];
		uint32_t c = LD(&s->count);
		if (c && reap && reader_dead(s) && CAS(&s->count, &c, 0))
			continue;
		sum += c;
	}
	return sum;
}

int sk_rwlock_rdlock(sk_rwlock *ll, int64_t timeout_ns)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	bool died;
	rc = rw_enter(l, timeout_ns, &died);
	if (rc)
		return rc;
	rd_id me = rd_me();
	rd_slot *mine = NULL, *free_slot = NULL;
	for (int pass = 0; pass < 2 && !mine && !free_slot; pass++) {
		if (pass)
			readers_held(l, true); /* no slot free: drop the dead */
		for (int i = 0; i < SK_RWLOCK_MAX_READERS && !mine; i++) {
			rd_slot *s = &l->slots[i];
			if (slot_is(s, &me))
				mine = s;
			else if (!free_slot && LD(&s->count) == 0)
				free_slot = s;
		}
	}
	if (!mine && free_slot) {
		/* A slot with no holds is free; only the inner mutex's holder
		 * claims one. Dying here leaves it free. */
		__atomic_store_n(&free_slot->start, (uint32_t)me.start, __ATOMIC_RELAXED);
		__atomic_store_n(&free_slot->pidns, me.ns, __ATOMIC_RELAXED);
		ST(&free_slot->pid, me.pid);
		mine = free_slot;
	}
	if (mine)
		ADD(&mine->count, 1); /* the hold */
	sk_mutex_unlock((sk_mutex *)&l->m);
	if (!mine)
		return -EAGAIN;
	return died ? SK_EOWNERDEAD : 0;
}

int sk_rwlock_rdunlock(sk_rwlock *ll)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	rd_id me = rd_me();
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++) {
		rd_slot *s = &l->slots[i];
		if (!slot_is(s, &me))
			continue;
		uint32_t c = LD(&s->count);
		unsigned n = 0;
		while (c && !CAS(&s->count, &c, c - 1))
			if (++n == CAS_TRIES)
				return SK_ECORRUPT;
		if (!c)
			continue;
		if (LD(&l->draining)) { /* a writer sums the slots: tell it */
			ADD(&l->seq, 1);
			sk__sys_futex_wake(&l->seq, SK__WAKE_ALL);
		}
		return 0;
	}
	return -EPERM;
}

int sk_rwlock_wrlock(sk_rwlock *ll, int64_t timeout_ns)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	bool died;
	ADD(&l->waiting_writers, 1);
	rc = rw_enter(l, timeout_ns, &died);
	if (rc) {
		SUB(&l->waiting_writers, 1);
		return rc;
	}
	/* Holding the inner mutex keeps new readers out; wait for the others
	 * to leave, dropping the holds of dead ones every 10 ms. */
	ST(&l->draining, 1);
	int64_t next_reap = 0;
	for (;;) {
		uint32_t seq = LD(&l->seq);
		int64_t now = sk__sys_monotonic_ns();
		bool reap = now >= next_reap;
		if (reap)
			next_reap = now + RW_SLICE_NS;
		if (readers_held(l, reap) == 0)
			break;
		if (wait_word(&l->seq, seq, deadline, RW_SLICE_NS) == -ETIMEDOUT) {
			if (readers_held(l, true) == 0)
				break;
			ST(&l->draining, 0);
			SUB(&l->waiting_writers, 1);
			sk_mutex_unlock((sk_mutex *)&l->m);
			return -ETIMEDOUT;
		}
	}
	ST(&l->draining, 0);
	SUB(&l->waiting_writers, 1);
	pid_t me;
	uint64_t start;
	sk__sys_self(&me, &start);
	__atomic_store_n(&l->writer_start, start, __ATOMIC_RELAXED);
	ST(&l->writer_tid, (int32_t)me_get()->tid);
	ST(&l->writer_pid, me); /* from here a death is reported as a writer's */
	return died ? SK_EOWNERDEAD : 0;
}

int sk_rwlock_wrunlock(sk_rwlock *ll)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	if (sk_mutex_held_by_me((sk_mutex *)&l->m) != 1 || LD(&l->writer_pid) == 0)
		return -EPERM;
	ST(&l->writer_pid, 0);
	ST(&l->writer_tid, 0);
	return sk_mutex_unlock((sk_mutex *)&l->m);
}

int sk_rwlock_state(const sk_rwlock *ll, sk_lock_state *st)
{
	const rwlock_impl *l = (const rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->owner_pid = LD(&l->writer_pid);
	st->owner_alive = proc_alive(st->owner_pid, __atomic_load_n(&l->writer_start, __ATOMIC_RELAXED), UINT64_MAX);
	uint64_t readers = 0;
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++)
		readers += LD(&l->slots[i].count);
	st->readers = readers > INT32_MAX ? INT32_MAX : (int)readers;
	st->held = st->owner_pid != 0 || st->readers > 0;
	st->waiters = (int)(LD(&l->m.waiters) + LD(&l->waiting_writers));
	st->recoverable = LD(&l->m.word) != W_NOTREC;
	return 0;
}

int sk_rwlock_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_rwlock **l)
{
	return named_create(name, &sk__kind_rwlock, 0, 0, opts, seg, (void **)l);
}

int sk_rwlock_open(const char *name, sk_segment **seg, sk_rwlock **l)
{
	return named_open(name, &sk__kind_rwlock, RWLOCK_MAGIC, RWLOCK_VERSION, seg, (void **)l);
}

/* ---- the one-word primitives ---- */

static void word_init(word_impl *w, uint32_t magic, uint32_t word, uint32_t param)
{
	memset(w, 0, sizeof *w);
	w->version = WORD_VERSION;
	w->word = word;
	w->param = param;
	ST(&w->magic, magic);
}

static int word_check(const void *p, uint32_t magic)
{
	const word_impl *w = p;
	if (!w)
		return -EINVAL;
	return LD(&w->magic) == magic && __atomic_load_n(&w->version, __ATOMIC_RELAXED) == WORD_VERSION ? 0
													: SK_ECORRUPT;
}

/* The _destroy of the one-word primitives: -EBUSY while anyone sleeps on it. */
static int word_destroy(void *p, uint32_t magic)
{
	word_impl *w = p;
	int rc = word_check(w, magic);
	if (rc)
		return rc;
	if (LD(&w->waiters))
		return -EBUSY;
	ST(&w->magic, 0);
	return 0;
}

int sk_sem_init(sk_sem *s, uint32_t value, uint32_t max)
{
	if (!s || (max && value > max))
		return -EINVAL;
	word_init((word_impl *)s, SEM_MAGIC, value, max);
	return 0;
}

int sk_sem_destroy(sk_sem *s)
{
	return word_destroy(s, SEM_MAGIC);
}

/* Takes one unit if there is one: 1, 0 (none), SK_ECORRUPT (the count keeps
 * changing under every CAS). */
static int sem_take(word_impl *s)
{
	uint32_t v = LD(&s->word);
	for (unsigned n = 0; v > 0; n++) {
		if (CAS(&s->word, &v, v - 1))
			return 1;
		if (n == CAS_TRIES)
			return SK_ECORRUPT;
	}
	return 0;
}

int sk_sem_wait(sk_sem *ss, int64_t timeout_ns)
{
	word_impl *s = (word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	for (;;) {
		rc = sem_take(s);
		if (rc)
			return rc == 1 ? 0 : rc;
		if (timeout_ns == 0)
			return -EAGAIN;
		ADD(&s->waiters, 1);
		rc = wait_word(&s->word, 0, deadline, 0);
		SUB(&s->waiters, 1);
		if (rc == -ETIMEDOUT) {
			rc = sem_take(s);
			return rc == 1 ? 0 : rc ? rc : -ETIMEDOUT;
		}
	}
}

int sk_sem_post(sk_sem *ss)
{
	word_impl *s = (word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	if (rc)
		return rc;
	uint32_t max = __atomic_load_n(&s->param, __ATOMIC_RELAXED);
	uint32_t v = LD(&s->word);
	unsigned n = 0;
	do {
		if ((max && v >= max) || v == UINT32_MAX)
			return -EOVERFLOW;
		if (n++ == CAS_TRIES)
			return SK_ECORRUPT;
	} while (!CAS(&s->word, &v, v + 1));
	if (LD(&s->waiters))
		sk__sys_futex_wake(&s->word, 1);
	return 0;
}

int sk_sem_value(const sk_sem *ss)
{
	const word_impl *s = (const word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	return rc ? rc : (int)(LD(&s->word) & (uint32_t)INT32_MAX); /* as an int */
}

int sk_sem_state(const sk_sem *ss, sk_lock_state *st)
{
	const word_impl *s = (const word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->value = LD(&s->word);
	st->limit = __atomic_load_n(&s->param, __ATOMIC_RELAXED);
	st->waiters = (int)LD(&s->waiters);
	st->recoverable = 1;
	return 0;
}

int sk_sem_create(const char *name, uint32_t value, uint32_t max, const sk_create_opts *opts, sk_segment **seg,
		  sk_sem **s)
{
	if (max && value > max)
		return -EINVAL;
	return named_create(name, &sk__kind_sem, value, max, opts, seg, (void **)s);
}

int sk_sem_open(const char *name, sk_segment **seg, sk_sem **s)
{
	return named_open(name, &sk__kind_sem, SEM_MAGIC, WORD_VERSION, seg, (void **)s);
}

/* ---- barrier ----
 *
 * One 64-bit state word, changed whole by CAS. Its low 32 bits are the
 * futex word: parties arrived in this round (bits 0-15; == parties while the
 * last arriver holds the round to run an action), the round number (16-30,
 * modulo 2^15) and BROKEN (31). The high 32 bits say, for each of the last
 * 32 rounds (bit 32 + round % 32), whether it completed (1) or was broken or
 * reset (0); a round's bit is written by the CAS that ends it. A party that
 * arrived in round r and wakes to find another round number learns its
 * outcome from bit r, so it needs no other shared state. */

#define B_ARRIVED     UINT64_C(0xffff)
#define B_ROUND_SHIFT 16
#define B_ROUND_MASK  UINT64_C(0x7fff)
#define B_BROKEN      (UINT64_C(1) << 31)
#define B_DONE(r)     (UINT64_C(1) << (32 + (r) % 32))
#define B_ROUND(w)    ((uint32_t)(((w) >> B_ROUND_SHIFT) & B_ROUND_MASK))
/* The word that starts the round after r: nobody arrived, not broken. */
static inline uint64_t next_round(uint64_t w, uint32_t r)
{
	uint64_t keep = w & ~(B_ARRIVED | B_BROKEN | (B_ROUND_MASK << B_ROUND_SHIFT));
	return keep | (((uint64_t)r + 1) & B_ROUND_MASK) << B_ROUND_SHIFT;
}

static int barrier_check(const barrier_impl *b, uint32_t *parties)
{
	if (!b)
		return -EINVAL;
	if (LD(&b->magic) != BARRIER_MAGIC || __atomic_load_n(&b->version, __ATOMIC_RELAXED) != BARRIER_VERSION)
		return SK_ECORRUPT;
	*parties = __atomic_load_n(&b->parties, __ATOMIC_RELAXED);
	return *parties >= 1 && *parties <= 0xffff ? 0 : SK_ECORRUPT;
}

static void barrier_wake(barrier_impl *b)
{
	sk__sys_futex_wake((uint32_t *)&b->word, SK__WAKE_ALL);
}

int sk_barrier_init(sk_barrier *bb, uint32_t parties)
{
	barrier_impl *b = (barrier_impl *)bb;
	if (!b || parties < 1 || parties > 0xffff)
		return -EINVAL;
	memset(b, 0, sizeof *b);
	b->version = BARRIER_VERSION;
	b->parties = parties;
	ST(&b->magic, BARRIER_MAGIC);
	return 0;
}

int sk_barrier_destroy(sk_barrier *bb)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc)
		return rc;
	if ((LD(&b->word) & B_ARRIVED) || LD(&b->waiters))
		return -EBUSY; /* a round has begun */
	ST(&b->magic, 0);
	return 0;
}

/* Sleeps while the futex half of the word is (uint32_t)w. */
static int barrier_sleep(barrier_impl *b, uint64_t w, int64_t deadline)
{
	ADD(&b->waiters, 1);
	int rc = wait_word((uint32_t *)&b->word, (uint32_t)w, deadline, 0);
	SUB(&b->waiters, 1);
	return rc;
}

int sk_barrier_arrive(sk_barrier *bb, unsigned flags, int64_t timeout_ns, sk_barrier_ticket *t)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc || !t || (flags & ~SK_BARRIER_HOLD))
		return rc ? rc : -EINVAL;
	int64_t deadline = sk__deadline(timeout_ns);
	uint64_t w = LD(&b->word);
	for (unsigned n = 0;; n++) {
		if (n == CAS_TRIES)
			return SK_ECORRUPT; /* the word keeps changing under every CAS */
		if (w & B_BROKEN)
			return SK_EBROKEN;
		uint32_t arrived = (uint32_t)(w & B_ARRIVED), round = B_ROUND(w);
		if (arrived > parties)
			return SK_ECORRUPT;
		if (arrived == parties) {
			/* The last arriver of this round runs its action: the next
			 * round starts when it releases. */
			if (barrier_sleep(b, w, deadline) == -ETIMEDOUT) {
				w = LD(&b->word);
				if ((w & B_ARRIVED) == parties && B_ROUND(w) == round)
					return -ETIMEDOUT;
			}
			w = LD(&b->word);
			continue;
		}
		uint64_t next;
		if (arrived + 1 < parties)
			next = w + 1;
		else if (flags & SK_BARRIER_HOLD)
			next = w + 1; /* arrived == parties: held */
		else
			next = next_round(w, round) | B_DONE(round);
		if (CAS(&b->word, &w, next)) {
			t->round = round;
			t->index = arrived;
			if (arrived + 1 == parties && !(flags & SK_BARRIER_HOLD))
				barrier_wake(b);
			return (int)arrived;
		}
	}
}

/* What became of round r, now that the word shows another round. */
static int round_outcome(uint64_t w, uint32_t r)
{
	return (w & B_DONE(r)) ? 0 : SK_EBROKEN;
}

int sk_barrier_await(sk_barrier *bb, const sk_barrier_ticket *t, int64_t timeout_ns)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc || !t)
		return rc ? rc : -EINVAL;
	int64_t deadline = sk__deadline(timeout_ns);
	for (;;) {
		uint64_t w = LD(&b->word);
		if (B_ROUND(w) != (t->round & B_ROUND_MASK))
			return round_outcome(w, t->round);
		if (w & B_BROKEN)
			return SK_EBROKEN;
		if (barrier_sleep(b, w, deadline) == -ETIMEDOUT) {
			w = LD(&b->word);
			if (B_ROUND(w) != (t->round & B_ROUND_MASK))
				return round_outcome(w, t->round);
			return (w & B_BROKEN) ? SK_EBROKEN : -ETIMEDOUT;
		}
	}
}

int sk_barrier_release(sk_barrier *bb, const sk_barrier_ticket *t)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc || !t)
		return rc ? rc : -EINVAL;
	uint64_t w = LD(&b->word);
	for (unsigned n = 0; n < CAS_TRIES; n++) {
		if (B_ROUND(w) != (t->round & B_ROUND_MASK) || (w & B_BROKEN))
			return SK_EBROKEN; /* broken (and maybe reset) while the action ran */
		if ((w & B_ARRIVED) != parties)
			return -EINVAL; /* not a held round */
		if (CAS(&b->word, &w, next_round(w, t->round) | B_DONE(t->round))) {
			barrier_wake(b);
			return 0;
		}
	}
	return SK_ECORRUPT;
}

int sk_barrier_leave(sk_barrier *bb, const sk_barrier_ticket *t, unsigned flags)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc || !t || (flags & ~SK_BARRIER_BREAK))
		return rc ? rc : -EINVAL;
	uint64_t w = LD(&b->word);
	for (unsigned n = 0; n < CAS_TRIES; n++) {
		if (B_ROUND(w) != (t->round & B_ROUND_MASK))
			return round_outcome(w, t->round) == 0 ? 1 : SK_EBROKEN;
		if (w & B_BROKEN)
			return SK_EBROKEN;
		uint64_t next;
		if (flags & SK_BARRIER_BREAK) {
			next = w | B_BROKEN;
		} else {
			uint32_t arrived = (uint32_t)(w & B_ARRIVED);
			if (arrived == 0 || arrived >= parties)
				return -EBUSY; /* held: the round completes when its action ends */
			next = w - 1;
		}
		if (CAS(&b->word, &w, next)) {
			if (next & B_BROKEN)
				barrier_wake(b);
			return 0;
		}
	}
	return SK_ECORRUPT;
}

int sk_barrier_wait(sk_barrier *b, int64_t timeout_ns)
{
	int64_t deadline = sk__deadline(timeout_ns);
	sk_barrier_ticket t;
	int idx = sk_barrier_arrive(b, 0, timeout_ns, &t);
	if (idx == -ETIMEDOUT) {
		/* A held round did not end in time: a timeout breaks the barrier. */
		sk_barrier_abort(b);
		return -ETIMEDOUT;
	}
	if (idx < 0)
		return idx;
	int rc = sk_barrier_await(b, &t, sk__time_left(deadline));
	if (rc == -ETIMEDOUT) {
		rc = sk_barrier_leave(b, &t, SK_BARRIER_BREAK);
		return rc == 1 ? idx : rc == 0 ? -ETIMEDOUT : rc; /* 1: it completed meanwhile */
	}
	return rc ? rc : idx;
}

int sk_barrier_abort(sk_barrier *bb)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc)
		return rc;
	uint64_t w = LD(&b->word);
	for (unsigned n = 0; !(w & B_BROKEN); n++) {
		if (CAS(&b->word, &w, w | B_BROKEN)) {
			barrier_wake(b);
			break;
		}
		if (n == CAS_TRIES)
			return SK_ECORRUPT;
	}
	return 0;
}

int sk_barrier_reset(sk_barrier *bb)
{
	barrier_impl *b = (barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc)
		return rc;
	uint64_t w = LD(&b->word);
	for (unsigned n = 0; n < CAS_TRIES; n++) {
		uint32_t r = B_ROUND(w);
		/* A new round; parties still waiting in the old one find it
		 * marked not completed: broken. */
		if (CAS(&b->word, &w, next_round(w, r) & ~B_DONE(r))) {
			barrier_wake(b);
			return 0;
		}
	}
	return SK_ECORRUPT;
}

int sk_barrier_broken(const sk_barrier *bb)
{
	const barrier_impl *b = (const barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	return rc ? rc : (LD(&b->word) & B_BROKEN) != 0;
}

int sk_barrier_state(const sk_barrier *bb, sk_lock_state *st)
{
	const barrier_impl *b = (const barrier_impl *)bb;
	uint32_t parties;
	int rc = barrier_check(b, &parties);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	uint64_t w = LD(&b->word);
	uint32_t arrived = (uint32_t)(w & B_ARRIVED);
	st->value = (w & B_BROKEN) ? 0 : arrived >= parties ? parties - 1 : arrived;
	st->limit = parties;
	st->waiters = (int)LD(&b->waiters);
	st->recoverable = 1;
	return 0;
}

int sk_barrier_create(const char *name, uint32_t parties, const sk_create_opts *opts, sk_segment **seg, sk_barrier **b)
{
	if (parties < 1 || parties > 0xffff)
		return -EINVAL;
	return named_create(name, &sk__kind_barrier, parties, 0, opts, seg, (void **)b);
}

int sk_barrier_open(const char *name, sk_segment **seg, sk_barrier **b)
{
	return named_open(name, &sk__kind_barrier, BARRIER_MAGIC, BARRIER_VERSION, seg, (void **)b);
}

/* ---- event ---- */

int sk_event_init(sk_event *e)
{
	if (!e)
		return -EINVAL;
	word_init((word_impl *)e, EVENT_MAGIC, 0, 0);
	return 0;
}

int sk_event_destroy(sk_event *e)
{
	return word_destroy(e, EVENT_MAGIC);
}

int sk_event_set(sk_event *ee)
{
	word_impl *e = (word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	if (rc)
		return rc;
	ST(&e->word, 1);
	if (LD(&e->waiters))
		sk__sys_futex_wake(&e->word, SK__WAKE_ALL);
	return 0;
}

int sk_event_clear(sk_event *ee)
{
	word_impl *e = (word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	if (!rc)
		ST(&e->word, 0);
	return rc;
}

int sk_event_is_set(const sk_event *ee)
{
	const word_impl *e = (const word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	return rc ? rc : LD(&e->word) != 0;
}

int sk_event_wait(sk_event *ee, int64_t timeout_ns)
{
	word_impl *e = (word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	while (!LD(&e->word)) {
		ADD(&e->waiters, 1);
		rc = wait_word(&e->word, 0, deadline, 0);
		SUB(&e->waiters, 1);
		if (rc == -ETIMEDOUT)
			return LD(&e->word) ? 0 : -ETIMEDOUT;
	}
	return 0;
}

int sk_event_state(const sk_event *ee, sk_lock_state *st)
{
	const word_impl *e = (const word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->value = LD(&e->word) != 0;
	st->waiters = (int)LD(&e->waiters);
	st->recoverable = 1;
	return 0;
}

int sk_event_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_event **e)
{
	return named_create(name, &sk__kind_event, 0, 0, opts, seg, (void **)e);
}

int sk_event_open(const char *name, sk_segment **seg, sk_event **e)
{
	return named_open(name, &sk__kind_event, EVENT_MAGIC, WORD_VERSION, seg, (void **)e);
}

/* ---- condition variable ---- */

int sk_cond_init(sk_cond *c)
{
	if (!c)
		return -EINVAL;
	word_init((word_impl *)c, COND_MAGIC, 0, 0);
	return 0;
}

int sk_cond_destroy(sk_cond *c)
{
	return word_destroy(c, COND_MAGIC);
}

int sk_cond_begin(sk_cond *cc, sk_mutex *m, uint32_t *ticket)
{
	word_impl *c = (word_impl *)cc;
	int rc = word_check(c, COND_MAGIC);
	if (rc || !ticket)
		return rc ? rc : -EINVAL;
	*ticket = LD(&c->word);
	return sk_mutex_unlock(m);
}

int sk_cond_sleep(sk_cond *cc, uint32_t ticket, int64_t timeout_ns)
{
	word_impl *c = (word_impl *)cc;
	int rc = word_check(c, COND_MAGIC);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	while (LD(&c->word) == ticket) {
		ADD(&c->waiters, 1);
		rc = wait_word(&c->word, ticket, deadline, 0);
		SUB(&c->waiters, 1);
		if (rc == -ETIMEDOUT)
			return LD(&c->word) != ticket ? 0 : -ETIMEDOUT;
	}
	return 0;
}

int sk_cond_wait(sk_cond *c, sk_mutex *m, int64_t timeout_ns)
{
	int64_t deadline = sk__deadline(timeout_ns);
	uint32_t ticket;
	int rc = sk_cond_begin(c, m, &ticket);
	if (rc)
		return rc;
	int wrc = sk_cond_sleep(c, ticket, sk__time_left(deadline));
	/* The mutex is taken back within the same deadline. */
	rc = mutex_lock(m, sk__time_left(deadline), true);
	if (rc == -ETIMEDOUT)
		return SK_ENOTHELD;
	return rc ? rc : wrc;
}

static int cond_wake(sk_cond *cc, int n)
{
	word_impl *c = (word_impl *)cc;
	int rc = word_check(c, COND_MAGIC);
	if (rc)
		return rc;
	ADD(&c->word, 1);
	if (LD(&c->waiters))
		sk__sys_futex_wake(&c->word, n);
	return 0;
}

int sk_cond_signal(sk_cond *c)
{
	return cond_wake(c, 1);
}

int sk_cond_broadcast(sk_cond *c)
{
	return cond_wake(c, SK__WAKE_ALL);
}

int sk_cond_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_cond **c)
{
	return named_create(name, &sk__kind_cond, 0, 0, opts, seg, (void **)c);
}

int sk_cond_open(const char *name, sk_segment **seg, sk_cond **c)
{
	return named_open(name, &sk__kind_cond, COND_MAGIC, WORD_VERSION, seg, (void **)c);
}
