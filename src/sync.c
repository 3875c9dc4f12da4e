/*
 * sync.c: process-shared mutex, rwlock, semaphore, barrier, event, cond.
 *
 * Memory layouts (fixed width, little-endian, documented in docs/format.md):
 *
 *   mutex   128 B: magic, version, owner pid/tid/start (informational), waiter
 *           count, state, then a glibc robust process-shared error-checking
 *           pthread mutex at offset 32. The kernel's robust futex list marks
 *           it when the holder dies, so waiters wake at once with EOWNERDEAD.
 *   rwlock  1280 B: a reader count (a futex word), the writer's identity, an
 *           sk_mutex at offset 64 that a writer holds for the whole write
 *           section (so writer death is the mutex's owner death, and new
 *           readers queue behind a waiting writer), and 64 reader slots
 *           {pid, count, start time} at offset 192 used to find dead readers.
 *   sem, barrier, event, cond   64 B each: magic, version, one futex word,
 *           a waiter count (so posts and sets skip the wake syscall when no
 *           one sleeps) and parameters.
 *
 * Concurrency: all fields shared between processes are accessed with
 * __atomic builtins; futex words are waited on with FUTEX_WAIT (shared, not
 * private, so different mappings of the same file match). Every wait loop
 * re-checks its condition after waking, so spurious wake-ups are harmless,
 * and computes the time left from one deadline, so EINTR and retries never
 * extend a timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define MUTEX_MAGIC   0x584d4b53u /* "SKMX" */
#define RWLOCK_MAGIC  0x57524b53u /* "SKRW" */
#define SEM_MAGIC     0x4d534b53u /* "SKSM" */
#define BARRIER_MAGIC 0x52424b53u /* "SKBR" */
#define EVENT_MAGIC   0x56454b53u /* "SKEV" */
#define COND_MAGIC    0x44434b53u /* "SKCD" */
#define SYNC_VERSION  1u

#define LD(p)        __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v)    __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define SUB(p, v)    __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define CAS(p, e, d) __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

enum { M_OK = 0, M_OWNER_DIED = 1, M_UNUSABLE = 2 };

typedef struct mutex_impl {
	uint32_t magic;
	uint16_t version, flags;
	int32_t owner_pid;
	uint32_t waiters;
	uint64_t owner_start;
	uint32_t state;
	int32_t owner_tid;
	union {
		pthread_mutex_t pm;
		uint8_t pad[64];
	} u;
	uint8_t resv[32];
} mutex_impl;
static_assert(sizeof(mutex_impl) == sizeof(sk_mutex), "mutex size");
static_assert(offsetof(mutex_impl, u) == 32, "pthread mutex offset");

typedef struct rd_slot {
	int32_t pid;
	uint32_t count;
	uint64_t start;
} rd_slot;

typedef struct rwlock_impl {
	uint32_t magic;
	uint16_t version, flags;
	uint32_t readers;
	int32_t writer_pid;
	int32_t writer_tid;
	uint64_t writer_start;
	uint32_t waiting_writers;
	uint8_t resv0[28];
	mutex_impl m;
	rd_slot slots[SK_RWLOCK_MAX_READERS];
	uint8_t resv1[64];
} rwlock_impl;
static_assert(sizeof(rwlock_impl) == sizeof(sk_rwlock), "rwlock size");
static_assert(offsetof(rwlock_impl, m) == 64 && offsetof(rwlock_impl, slots) == 192, "rwlock layout");

typedef struct word_impl { /* sem, barrier, event, cond */
	uint32_t magic;
	uint16_t version, flags;
	uint32_t word; /* sem: count; barrier: round << 16 | arrived; event: 0/1; cond: sequence */
	uint32_t waiters;
	uint32_t param; /* sem: maximum (0 none); barrier: parties */
	uint8_t resv[44];
} word_impl;
static_assert(sizeof(word_impl) == 64 && sizeof(sk_sem) == 64 && sizeof(sk_barrier) == 64 && sizeof(sk_event) == 64 &&
		  sizeof(sk_cond) == 64,
	      "64-byte primitives");

size_t sk__sync_size(int kind)
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

static bool alive(pid_t pid, uint64_t start)
{
	uint64_t now;
	return pid > 0 && sk__sys_proc_start(pid, &now) == 0 && now == start;
}

/* ---- mutex ---- */

static int mutex_init(mutex_impl *m)
{
	memset(m, 0, sizeof *m);
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (!rc)
		rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
	if (!rc)
		rc = pthread_mutex_init(&m->u.pm, &a);
	pthread_mutexattr_destroy(&a);
	if (rc)
		return -rc;
	m->version = SYNC_VERSION;
	ST(&m->magic, MUTEX_MAGIC);
	return 0;
}

int sk_mutex_init(sk_mutex *m)
{
	return m ? mutex_init((mutex_impl *)m) : -EINVAL;
}

static int mutex_check(const mutex_impl *m)
{
	if (!m)
		return -EINVAL;
	return LD(&m->magic) == MUTEX_MAGIC && m->version == SYNC_VERSION ? 0 : SK_ECORRUPT;
}

/* Records the new owner after pthread said prc. */
static int acquired(mutex_impl *m, int prc)
{
	if (prc == 0 || prc == EOWNERDEAD) {
		pid_t pid;
		uint64_t start;
		sk__sys_self(&pid, &start);
		/* Informational and only written by the holder: relaxed is enough,
		 * the pthread mutex orders them. */
		__atomic_store_n(&m->owner_start, start, __ATOMIC_RELAXED);
		__atomic_store_n(&m->owner_tid, (int32_t)sk__sys_tid(), __ATOMIC_RELAXED);
		__atomic_store_n(&m->owner_pid, (int32_t)pid, __ATOMIC_RELAXED);
		if (prc == EOWNERDEAD) {
			ST(&m->state, M_OWNER_DIED);
			return SK_EOWNERDEAD;
		}
		return 0;
	}
	if (prc == ENOTRECOVERABLE) {
		ST(&m->state, M_UNUSABLE);
		return SK_ENOTRECOVERABLE;
	}
	return -prc; /* EBUSY, ETIMEDOUT, EDEADLK, EAGAIN */
}

static int mutex_lock(mutex_impl *m, int64_t timeout_ns)
{
	int rc = mutex_check(m);
	if (rc)
		return rc;
	/* The rule is ours to enforce: glibc answers EDEADLK to the thread that
	 * released it unrepaired. */
	if (LD(&m->state) == M_UNUSABLE)
		return SK_ENOTRECOVERABLE;
	int prc = pthread_mutex_trylock(&m->u.pm);
	if (prc != EBUSY)
		return acquired(m, prc);
	if (timeout_ns == 0)
		return -ETIMEDOUT;
	ADD(&m->waiters, 1);
	if (timeout_ns < 0) {
		prc = pthread_mutex_lock(&m->u.pm);
	} else {
		int64_t d = sk__sys_monotonic_ns() + timeout_ns;
		struct timespec abs = { .tv_sec = d / 1000000000, .tv_nsec = d % 1000000000 };
		prc = pthread_mutex_clocklock(&m->u.pm, CLOCK_MONOTONIC, &abs);
	}
	SUB(&m->waiters, 1);
	return acquired(m, prc);
}

int sk_mutex_lock(sk_mutex *m, int64_t timeout_ns)
{
	return mutex_lock((mutex_impl *)m, timeout_ns);
}

int sk_mutex_trylock(sk_mutex *mm)
{
	mutex_impl *m = (mutex_impl *)mm;
	int rc = mutex_check(m);
	if (!rc && LD(&m->state) == M_UNUSABLE)
		rc = SK_ENOTRECOVERABLE;
	return rc ? rc : acquired(m, pthread_mutex_trylock(&m->u.pm));
}

static int mutex_unlock(mutex_impl *m)
{
	int rc = mutex_check(m);
	if (rc)
		return rc;
	pid_t me;
	uint64_t start;
	sk__sys_self(&me, &start);
	if (__atomic_load_n(&m->owner_tid, __ATOMIC_RELAXED) != (int32_t)sk__sys_tid() ||
	    __atomic_load_n(&m->owner_pid, __ATOMIC_RELAXED) != (int32_t)me)
		return -EPERM;
	if (LD(&m->state) == M_OWNER_DIED)
		ST(&m->state, M_UNUSABLE); /* released unrepaired: pthread makes it unusable too */
	__atomic_store_n(&m->owner_pid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->owner_tid, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&m->owner_start, 0, __ATOMIC_RELAXED);
	int prc = pthread_mutex_unlock(&m->u.pm);
	return prc ? -prc : 0;
}

int sk_mutex_unlock(sk_mutex *m)
{
	return mutex_unlock((mutex_impl *)m);
}

static int mutex_consistent(mutex_impl *m)
{
	int rc = mutex_check(m);
	if (rc)
		return rc;
	int prc = pthread_mutex_consistent(&m->u.pm);
	if (prc)
		return -prc;
	ST(&m->state, M_OK);
	return 0;
}

int sk_mutex_consistent(sk_mutex *m)
{
	return mutex_consistent((mutex_impl *)m);
}

int sk_mutex_state(const sk_mutex *mm, sk_lock_state *st)
{
	const mutex_impl *m = (const mutex_impl *)mm;
	int rc = mutex_check(m);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->owner_pid = LD(&m->owner_pid);
	st->held = st->owner_pid != 0;
	st->owner_alive = alive(st->owner_pid, m->owner_start);
	st->waiters = (int)LD(&m->waiters);
	st->recoverable = LD(&m->state) != M_UNUSABLE;
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

static int named_create(const char *name, int kind, uint32_t a, uint32_t b, const sk_create_opts *opts,
			sk_segment **seg, void **obj)
{
	if (!seg || !obj)
		return -EINVAL;
	*seg = NULL;
	*obj = NULL;
	if (opts && (opts->flags & ~SK__CREATE_COMMON))
		return -EINVAL;
	named_init ni = { kind, a, b };
	sk__seg_desc d = {
		.kind = kind, .nitems = 1, .data_size = sk__sync_size(kind), .init = init_named, .init_arg = &ni
	};
	int rc = sk__segment_create(name, &d, opts, seg);
	if (!rc)
		*obj = sk_segment_data(*seg);
	return rc;
}

static int named_open(const char *name, int kind, uint32_t magic, sk_segment **seg, void **obj)
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
	if (LD(p) != magic || ((const uint16_t *)p)[2] != SYNC_VERSION) {
		sk_segment_close(s);
		return SK_ECORRUPT;
	}
	*seg = s;
	*obj = (void *)p;
	return 0;
}

int sk_mutex_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_mutex **m)
{
	return named_create(name, SK_KIND_MUTEX, 0, 0, opts, seg, (void **)m);
}

int sk_mutex_open(const char *name, sk_segment **seg, sk_mutex **m)
{
	return named_open(name, SK_KIND_MUTEX, MUTEX_MAGIC, seg, (void **)m);
}

/* ---- rwlock ---- */

static int rwlock_init(rwlock_impl *l)
{
	memset(l, 0, sizeof *l);
	int rc = mutex_init(&l->m);
	if (rc)
		return rc;
	l->version = SYNC_VERSION;
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
	if (LD(&l->magic) != RWLOCK_MAGIC || l->version != SYNC_VERSION)
		return SK_ECORRUPT;
	return mutex_check(&l->m);
}

/* Takes the inner mutex; a dead previous holder is repaired here. Sets
 * *writer_died when the dead holder was a writer. */
static int rw_enter(rwlock_impl *l, int64_t timeout_ns, bool *writer_died)
{
	*writer_died = false;
	int rc = mutex_lock(&l->m, timeout_ns);
	if (rc == SK_EOWNERDEAD) {
		/* The inner state is always consistent: only the writer's
		 * identity can be stale. The caller is told about a writer. */
		*writer_died = LD(&l->writer_pid) != 0;
		ST(&l->writer_pid, 0);
		ST(&l->writer_tid, 0);
		rc = mutex_consistent(&l->m);
	}
	return rc;
}

/* Drops the holds of readers that died. Called with the inner mutex held. */
static void reap_readers(rwlock_impl *l)
{
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++) {
		rd_slot *s = &l->slots[i];
		uint32_t c = LD(&s->count);
		if (c && !alive(LD(&s->pid), s->start) && CAS(&s->count, &c, 0))
			SUB(&l->readers, c);
	}
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
	pid_t me;
	uint64_t start;
	sk__sys_self(&me, &start);
	rd_slot *mine = NULL, *free_slot = NULL;
	for (int i = 0; i < SK_RWLOCK_MAX_READERS && !mine; i++) {
		rd_slot *s = &l->slots[i];
		if (LD(&s->pid) == me && s->start == start)
			mine = s;
		else if (!free_slot && LD(&s->count) == 0)
			free_slot = s;
	}
	if (!mine && !free_slot) {
		reap_readers(l);
		for (int i = 0; i < SK_RWLOCK_MAX_READERS && !free_slot; i++)
			if (LD(&l->slots[i].count) == 0)
				free_slot = &l->slots[i];
	}
	if (!mine && free_slot) {
		/* A slot with no holds is free; only this mutex holder assigns slots. */
		free_slot->start = start;
		ST(&free_slot->pid, me);
		mine = free_slot;
	}
	if (mine) {
		ADD(&mine->count, 1);
		ADD(&l->readers, 1);
	}
	mutex_unlock(&l->m);
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
	pid_t me;
	uint64_t start;
	sk__sys_self(&me, &start);
	for (int i = 0; i < SK_RWLOCK_MAX_READERS; i++) {
		rd_slot *s = &l->slots[i];
		if (LD(&s->pid) != me)
			continue;
		uint32_t c = LD(&s->count);
		while (c && !CAS(&s->count, &c, c - 1))
			;
		if (!c)
			continue;
		if (SUB(&l->readers, 1) == 1)
			sk__sys_futex_wake(&l->readers, 0x7fffffff); /* a writer may wait for zero */
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
	 * to leave, checking every 10 ms for readers that died. */
	uint32_t r;
	while ((r = LD(&l->readers)) != 0) {
		if (wait_word(&l->readers, r, deadline, 10000000) == -ETIMEDOUT) {
			reap_readers(l);
			if (LD(&l->readers) == 0)
				break;
			SUB(&l->waiting_writers, 1);
			mutex_unlock(&l->m);
			return -ETIMEDOUT;
		}
		reap_readers(l);
	}
	SUB(&l->waiting_writers, 1);
	pid_t me;
	sk__sys_self(&me, &l->writer_start);
	ST(&l->writer_tid, (int32_t)sk__sys_tid());
	ST(&l->writer_pid, me);
	return died ? SK_EOWNERDEAD : 0;
}

int sk_rwlock_wrunlock(sk_rwlock *ll)
{
	rwlock_impl *l = (rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc)
		return rc;
	pid_t me;
	uint64_t start;
	sk__sys_self(&me, &start);
	if (LD(&l->writer_tid) != (int32_t)sk__sys_tid() || LD(&l->writer_pid) != (int32_t)me)
		return -EPERM;
	ST(&l->writer_pid, 0);
	ST(&l->writer_tid, 0);
	return mutex_unlock(&l->m);
}

int sk_rwlock_state(const sk_rwlock *ll, sk_lock_state *st)
{
	const rwlock_impl *l = (const rwlock_impl *)ll;
	int rc = rwlock_check(l);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->owner_pid = LD(&l->writer_pid);
	st->owner_alive = alive(st->owner_pid, l->writer_start);
	st->readers = (int)LD(&l->readers);
	st->held = st->owner_pid != 0 || st->readers > 0;
	st->waiters = (int)(LD(&l->m.waiters) + LD(&l->waiting_writers));
	st->recoverable = LD(&l->m.state) != M_UNUSABLE;
	return 0;
}

int sk_rwlock_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_rwlock **l)
{
	return named_create(name, SK_KIND_RWLOCK, 0, 0, opts, seg, (void **)l);
}

int sk_rwlock_open(const char *name, sk_segment **seg, sk_rwlock **l)
{
	return named_open(name, SK_KIND_RWLOCK, RWLOCK_MAGIC, seg, (void **)l);
}

/* ---- the one-word primitives ---- */

static void word_init(word_impl *w, uint32_t magic, uint32_t word, uint32_t param)
{
	memset(w, 0, sizeof *w);
	w->version = SYNC_VERSION;
	w->word = word;
	w->param = param;
	ST(&w->magic, magic);
}

static int word_check(const void *p, uint32_t magic)
{
	const word_impl *w = p;
	if (!w)
		return -EINVAL;
	return LD(&w->magic) == magic && w->version == SYNC_VERSION ? 0 : SK_ECORRUPT;
}

int sk_sem_init(sk_sem *s, uint32_t value, uint32_t max)
{
	if (!s || (max && value > max))
		return -EINVAL;
	word_init((word_impl *)s, SEM_MAGIC, value, max);
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
		uint32_t v = LD(&s->word);
		while (v > 0)
			if (CAS(&s->word, &v, v - 1))
				return 0;
		if (timeout_ns == 0)
			return -EAGAIN;
		ADD(&s->waiters, 1);
		rc = wait_word(&s->word, 0, deadline, 0);
		SUB(&s->waiters, 1);
		if (rc == -ETIMEDOUT) {
			v = LD(&s->word);
			while (v > 0)
				if (CAS(&s->word, &v, v - 1))
					return 0;
			return -ETIMEDOUT;
		}
	}
}

int sk_sem_post(sk_sem *ss)
{
	word_impl *s = (word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	if (rc)
		return rc;
	uint32_t v = LD(&s->word);
	do {
		if ((s->param && v >= s->param) || v == UINT32_MAX)
			return -EOVERFLOW;
	} while (!CAS(&s->word, &v, v + 1));
	if (LD(&s->waiters))
		sk__sys_futex_wake(&s->word, 1);
	return 0;
}

int sk_sem_value(const sk_sem *ss)
{
	const word_impl *s = (const word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	return rc ? rc : (int)(LD(&s->word) & 0x7fffffff);
}

int sk_sem_state(const sk_sem *ss, sk_lock_state *st)
{
	const word_impl *s = (const word_impl *)ss;
	int rc = word_check(s, SEM_MAGIC);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->value = LD(&s->word);
	st->limit = s->param;
	st->waiters = (int)LD(&s->waiters);
	st->recoverable = 1;
	return 0;
}

int sk_sem_create(const char *name, uint32_t value, uint32_t max, const sk_create_opts *opts, sk_segment **seg,
		  sk_sem **s)
{
	if (max && value > max)
		return -EINVAL;
	return named_create(name, SK_KIND_SEM, value, max, opts, seg, (void **)s);
}

int sk_sem_open(const char *name, sk_segment **seg, sk_sem **s)
{
	return named_open(name, SK_KIND_SEM, SEM_MAGIC, seg, (void **)s);
}

int sk_barrier_init(sk_barrier *b, uint32_t parties)
{
	if (!b || parties < 1 || parties > 0xffff)
		return -EINVAL;
	word_init((word_impl *)b, BARRIER_MAGIC, 0, parties);
	return 0;
}

int sk_barrier_wait(sk_barrier *bb, int64_t timeout_ns)
{
	word_impl *b = (word_impl *)bb;
	int rc = word_check(b, BARRIER_MAGIC);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	/* word = round << 16 | parties arrived in this round. */
	uint32_t w = LD(&b->word), round;
	for (;;) {
		round = w >> 16;
		if ((w & 0xffff) + 1 >= b->param) {
			if (CAS(&b->word, &w, ((round + 1) & 0xffff) << 16)) {
				sk__sys_futex_wake(&b->word, 0x7fffffff);
				return SK_BARRIER_SERIAL;
			}
		} else if (CAS(&b->word, &w, w + 1)) {
			break;
		}
	}
	ADD(&b->waiters, 1);
	for (;;) {
		w = LD(&b->word);
		if (w >> 16 != round)
			break;
		if (wait_word(&b->word, w, deadline, 0) == -ETIMEDOUT) {
			/* Withdraw, unless the round completed meanwhile. */
			w = LD(&b->word);
			while (w >> 16 == round) {
				if (CAS(&b->word, &w, w - 1)) {
					SUB(&b->waiters, 1);
					return -ETIMEDOUT;
				}
			}
			break;
		}
	}
	SUB(&b->waiters, 1);
	return 0;
}

int sk_barrier_state(const sk_barrier *bb, sk_lock_state *st)
{
	const word_impl *b = (const word_impl *)bb;
	int rc = word_check(b, BARRIER_MAGIC);
	if (rc || !st)
		return rc ? rc : -EINVAL;
	memset(st, 0, sizeof *st);
	st->value = LD(&b->word) & 0xffff;
	st->limit = b->param;
	st->waiters = (int)LD(&b->waiters);
	st->recoverable = 1;
	return 0;
}

int sk_barrier_create(const char *name, uint32_t parties, const sk_create_opts *opts, sk_segment **seg, sk_barrier **b)
{
	if (parties < 1 || parties > 0xffff)
		return -EINVAL;
	return named_create(name, SK_KIND_BARRIER, parties, 0, opts, seg, (void **)b);
}

int sk_barrier_open(const char *name, sk_segment **seg, sk_barrier **b)
{
	return named_open(name, SK_KIND_BARRIER, BARRIER_MAGIC, seg, (void **)b);
}

int sk_event_init(sk_event *e)
{
	if (!e)
		return -EINVAL;
	word_init((word_impl *)e, EVENT_MAGIC, 0, 0);
	return 0;
}

int sk_event_set(sk_event *ee)
{
	word_impl *e = (word_impl *)ee;
	int rc = word_check(e, EVENT_MAGIC);
	if (rc)
		return rc;
	ST(&e->word, 1);
	if (LD(&e->waiters))
		sk__sys_futex_wake(&e->word, 0x7fffffff);
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
	return named_create(name, SK_KIND_EVENT, 0, 0, opts, seg, (void **)e);
}

int sk_event_open(const char *name, sk_segment **seg, sk_event **e)
{
	return named_open(name, SK_KIND_EVENT, EVENT_MAGIC, seg, (void **)e);
}

int sk_cond_init(sk_cond *c)
{
	if (!c)
		return -EINVAL;
	word_init((word_impl *)c, COND_MAGIC, 0, 0);
	return 0;
}

int sk_cond_wait(sk_cond *cc, sk_mutex *m, int64_t timeout_ns)
{
	word_impl *c = (word_impl *)cc;
	int rc = word_check(c, COND_MAGIC);
	if (rc)
		return rc;
	int64_t deadline = sk__deadline(timeout_ns);
	uint32_t seq = LD(&c->word);
	ADD(&c->waiters, 1);
	rc = sk_mutex_unlock(m);
	if (rc) {
		SUB(&c->waiters, 1);
		return rc;
	}
	int wrc = wait_word(&c->word, seq, deadline, 0);
	SUB(&c->waiters, 1);
	rc = sk_mutex_lock(m, -1);
	if (rc)
		return rc;
	return wrc;
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
	return cond_wake(c, 0x7fffffff);
}

int sk_cond_create(const char *name, const sk_create_opts *opts, sk_segment **seg, sk_cond **c)
{
	return named_create(name, SK_KIND_COND, 0, 0, opts, seg, (void **)c);
}

int sk_cond_open(const char *name, sk_segment **seg, sk_cond **c)
{
	return named_open(name, SK_KIND_COND, COND_MAGIC, seg, (void **)c);
}
