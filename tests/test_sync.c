/*
 * test_sync.c: mutex, rwlock, semaphore, barrier, event, cond between real
 * processes: exact counts under contention, owners killed with SIGKILL while
 * holding locks (200 rounds each), the rwlock invariant under stress, a
 * 12-process barrier, timeouts, and bad input.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Shared state for one test, in an anonymous shared mapping forked children inherit. */
typedef struct shared {
	sk_mutex m;
	sk_rwlock rw;
	sk_sem sem;
	sk_barrier bar;
	sk_event ev;
	sk_cond cond;
	int64_t counter;
	int64_t inside_readers, inside_writers, violations;
	int64_t serials;
	int64_t rounds_seen[16];
	uint32_t index_masks[1001]; /* barrier: which indices each round handed out */
	int32_t ready;
	int32_t sem_inside, sem_max_seen;
} shared;

static shared *new_shared(void)
{
	shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(s != MAP_FAILED);
	memset(s, 0, sizeof *s);
	assert_int_equal(sk_mutex_init(&s->m), 0);
	assert_int_equal(sk_rwlock_init(&s->rw), 0);
	assert_int_equal(sk_event_init(&s->ev), 0);
	assert_int_equal(sk_cond_init(&s->cond), 0);
	return s;
}

static void free_shared(shared *s)
{
	munmap(s, sizeof *s);
}

/* Waits until a child set s->ready (it holds what it was to hold). */
static void wait_ready(shared *s)
{
	int64_t t0 = t_now_ns();
	while (!__atomic_load_n(&s->ready, __ATOMIC_SEQ_CST)) {
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("child never got ready");
		usleep(100);
	}
	__atomic_store_n(&s->ready, 0, __ATOMIC_SEQ_CST);
}

static shared *S;

enum { PROCS = 12, INCREMENTS = 100000 };

static int locked_increments(int i, void *arg)
{
	(void)i, (void)arg;
	for (int k = 0; k < INCREMENTS; k++) {
		if (sk_mutex_lock(&S->m, -1))
			return 1;
		S->counter++; /* plain, non-atomic: only the lock makes it exact */
		if (sk_mutex_unlock(&S->m))
			return 2;
	}
	return 0;
}

static void test_mutex_12_processes_exact(void **state)
{
	(void)state;
	S = new_shared();
	t_fork_many(PROCS, locked_increments, NULL);
	assert_int_equal(S->counter, PROCS * INCREMENTS);
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(&S->m, &st), 0);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.waiters, 0);
	free_shared(S);
}

static int atomic_increments(int i, void *arg)
{
	(void)i;
	for (int k = 0; k < INCREMENTS; k++)
		if (sk_array_fetch_add(arg, 3, 1, NULL))
			return 1;
	return 0;
}

static void test_atomic_fetch_add_12_processes_exact(void **state)
{
	(void)state;
	const char *name = t_name("fadd");
	uint64_t n = 8;
	sk_array *a;
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, NULL, &a), 0);
	t_fork_many(PROCS, atomic_increments, a);
	int64_t v;
	assert_int_equal(sk_array_atomic_load(a, 3, &v), 0);
	assert_int_equal(v, PROCS * INCREMENTS);
	sk_array_close(a);
	sk_segment_unlink(name);
}

static void *thread_increments(void *arg)
{
	(void)arg;
	for (int k = 0; k < INCREMENTS; k++) {
		if (sk_mutex_lock(&S->m, -1))
			return (void *)1;
		S->counter++;
		if (sk_mutex_unlock(&S->m))
			return (void *)2;
	}
	return NULL;
}

static void *unlock_other_threads_lock(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)sk_mutex_unlock(&S->m);
}

static void test_mutex_between_threads(void **state)
{
	(void)state;
	S = new_shared();
	pthread_t t[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_increments, NULL), 0);
	for (int i = 0; i < 3; i++) {
		void *r;
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
	assert_int_equal(S->counter, 3 * INCREMENTS);
	/* A lock belongs to a thread: another thread of the process cannot release it. */
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	void *r;
	assert_int_equal(pthread_create(&t[0], NULL, unlock_other_threads_lock, NULL), 0);
	assert_int_equal(pthread_join(t[0], &r), 0);
	assert_int_equal((intptr_t)r, -EPERM);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
}

static void test_mutex_basics(void **state)
{
	(void)state;
	S = new_shared();
	sk_lock_state st;
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	assert_int_equal(sk_mutex_state(&S->m, &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.owner_pid, getpid());
	assert_int_equal(st.owner_alive, 1);
	assert_int_equal(sk_mutex_lock(&S->m, -1), -EDEADLK); /* error-checking, not a deadlock */
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), -EPERM);
	assert_int_equal(sk_mutex_trylock(&S->m), 0);
	assert_int_equal(sk_mutex_consistent(&S->m), -EINVAL); /* nothing to repair */
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
	/* Memory that is not a mutex. */
	sk_mutex junk;
	memset(&junk, 0, sizeof junk);
	assert_int_equal(sk_mutex_lock(&junk, -1), SK_ECORRUPT);
	assert_int_equal(sk_mutex_unlock(&junk), SK_ECORRUPT);
	assert_int_equal(sk_mutex_state(&junk, &st), SK_ECORRUPT);
	assert_int_equal(sk_mutex_init(NULL), -EINVAL);
	assert_int_equal(sk_mutex_lock(NULL, 0), -EINVAL);
}

/* A child that takes the lock, says so, and waits to be killed. */
static int hold_mutex(void *arg)
{
	(void)arg;
	int rc = sk_mutex_lock(&S->m, -1);
	if (rc && rc != SK_EOWNERDEAD)
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static int wait_for_dead_owner(void *arg)
{
	(void)arg;
	int rc = sk_mutex_lock(&S->m, 10000000000LL);
	if (rc != SK_EOWNERDEAD)
		return 10 + (rc == 0);
	if (sk_mutex_consistent(&S->m) || sk_mutex_unlock(&S->m))
		return 3;
	return 0;
}

static void kill_and_reap(pid_t pid)
{
	int status;
	assert_int_equal(kill(pid, SIGKILL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
}

/* Waits until *count (a waiter count: read through a state call, or the
 * documented field) is at least 1. */
static void wait_waiter(const uint32_t *count)
{
	int64_t t0 = t_now_ns();
	while (__atomic_load_n(count, __ATOMIC_SEQ_CST) < 1) {
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("the child never slept");
		usleep(100);
	}
}

/* docs/format.md: sem, event and cond keep their waiter count at byte 12,
 * the barrier at 16. */
static const uint32_t *word_waiters(const void *p)
{
	return (const uint32_t *)((const char *)p + 12);
}

static int sem_waiter(void *arg)
{
	(void)arg;
	return sk_sem_wait(&S->sem, 10000000000LL) != 0;
}

static int event_sleeper(void *arg)
{
	(void)arg;
	return sk_event_wait(&S->ev, 10000000000LL) != 0;
}

static int cond_waiter(void *arg)
{
	(void)arg;
	if (sk_mutex_lock(&S->m, -1))
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	int rc = 0;
	while (!rc && !__atomic_load_n(&S->counter, __ATOMIC_SEQ_CST))
		rc = sk_cond_wait(&S->cond, &S->m, 10000000000LL);
	return sk_mutex_unlock(&S->m) || rc;
}

static int barrier_sleeper(void *arg)
{
	(void)arg;
	int rc = sk_barrier_wait(&S->bar, 10000000000LL);
	return rc < 0;
}

/* What a destroyed primitive answers, in another process too. */
static int destroyed_everywhere(void *arg)
{
	(void)arg;
	return sk_mutex_lock(&S->m, 0) != SK_ECORRUPT || sk_rwlock_rdlock(&S->rw, 0) != SK_ECORRUPT ||
	       sk_sem_post(&S->sem) != SK_ECORRUPT || sk_barrier_wait(&S->bar, 0) != SK_ECORRUPT ||
	       sk_event_set(&S->ev) != SK_ECORRUPT || sk_cond_signal(&S->cond) != SK_ECORRUPT;
}

/* _destroy undoes _init: -EBUSY while a process holds or sleeps on the
 * primitive, then every later call, in any process, gets SK_ECORRUPT, until
 * an _init makes it a primitive again. */
static void test_destroy_undoes_init(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_sem_init(&S->sem, 0, 0), 0);
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	int status;

	/* mutex: held here; then held by a killed child (not taken over yet). */
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	assert_int_equal(sk_mutex_destroy(&S->m), -EBUSY);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	pid_t pid = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	kill_and_reap(pid);
	assert_int_equal(sk_mutex_destroy(&S->m), -EBUSY);
	assert_int_equal(sk_mutex_lock(&S->m, -1), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);

	/* rwlock: a read hold, a write hold. */
	assert_int_equal(sk_rwlock_rdlock(&S->rw, -1), 0);
	assert_int_equal(sk_rwlock_destroy(&S->rw), -EBUSY);
	assert_int_equal(sk_rwlock_rdunlock(&S->rw), 0);
	assert_int_equal(sk_rwlock_wrlock(&S->rw, -1), 0);
	assert_int_equal(sk_rwlock_destroy(&S->rw), -EBUSY);
	assert_int_equal(sk_rwlock_wrunlock(&S->rw), 0);

	/* sem and event: a child asleep on each. */
	pid = t_spawn(sem_waiter, NULL);
	wait_waiter(word_waiters(&S->sem));
	assert_int_equal(sk_sem_destroy(&S->sem), -EBUSY);
	assert_int_equal(sk_sem_post(&S->sem), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);
	pid = t_spawn(event_sleeper, NULL);
	wait_waiter(word_waiters(&S->ev));
	assert_int_equal(sk_event_destroy(&S->ev), -EBUSY);
	assert_int_equal(sk_event_set(&S->ev), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);

	/* cond: a child waiting on it. */
	pid = t_spawn(cond_waiter, NULL);
	wait_ready(S);
	wait_waiter(word_waiters(&S->cond));
	assert_int_equal(sk_cond_destroy(&S->cond), -EBUSY);
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	__atomic_store_n(&S->counter, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(sk_cond_broadcast(&S->cond), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);

	/* barrier: one of two parties arrived and waits. */
	pid = t_spawn(barrier_sleeper, NULL);
	wait_waiter((const uint32_t *)((const char *)&S->bar + 16));
	assert_int_equal(sk_barrier_destroy(&S->bar), -EBUSY);
	assert_true(sk_barrier_wait(&S->bar, 10000000000LL) >= 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);

	/* Nothing held or waited on: each goes, once. */
	assert_int_equal(sk_mutex_destroy(&S->m), 0);
	assert_int_equal(sk_rwlock_destroy(&S->rw), 0);
	assert_int_equal(sk_sem_destroy(&S->sem), 0);
	assert_int_equal(sk_barrier_destroy(&S->bar), 0);
	assert_int_equal(sk_event_destroy(&S->ev), 0);
	assert_int_equal(sk_cond_destroy(&S->cond), 0);
	t_assert_exit0(t_fork(destroyed_everywhere, NULL));
	assert_int_equal(destroyed_everywhere(NULL), 0);
	assert_int_equal(sk_mutex_destroy(&S->m), SK_ECORRUPT);
	assert_int_equal(sk_rwlock_destroy(&S->rw), SK_ECORRUPT);
	assert_int_equal(sk_sem_destroy(&S->sem), SK_ECORRUPT);
	assert_int_equal(sk_barrier_destroy(&S->bar), SK_ECORRUPT);
	assert_int_equal(sk_event_destroy(&S->ev), SK_ECORRUPT);
	assert_int_equal(sk_cond_destroy(&S->cond), SK_ECORRUPT);
	assert_int_equal(sk_mutex_destroy(NULL), -EINVAL);
	assert_int_equal(sk_cond_destroy(NULL), -EINVAL);

	/* An unusable mutex can go too; _init brings it back. */
	assert_int_equal(sk_mutex_init(&S->m), 0);
	pid = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	kill_and_reap(pid);
	assert_int_equal(sk_mutex_lock(&S->m, -1), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_unlock(&S->m), 0); /* unrepaired: unusable */
	assert_int_equal(sk_mutex_lock(&S->m, 0), SK_ENOTRECOVERABLE);
	assert_int_equal(sk_mutex_destroy(&S->m), 0);
	assert_int_equal(sk_mutex_init(&S->m), 0);
	assert_int_equal(sk_mutex_lock(&S->m, 0), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
}

static void test_mutex_owner_killed_200_rounds(void **state)
{
	(void)state;
	S = new_shared();
	for (int round = 0; round < 200; round++) {
		pid_t holder = t_spawn(hold_mutex, NULL);
		wait_ready(S);
		/* Every other round a second process is already waiting when the holder dies. */
		pid_t waiter = round % 2 ? t_spawn(wait_for_dead_owner, NULL) : 0;
		if (waiter)
			usleep(1000);
		sk_lock_state st;
		assert_int_equal(sk_mutex_state(&S->m, &st), 0);
		assert_int_equal(st.owner_pid, holder);
		kill_and_reap(holder);
		if (waiter) {
			int status;
			assert_int_equal(waitpid(waiter, &status, 0), waiter);
			t_assert_exit0(status);
			assert_int_equal(sk_mutex_lock(&S->m, 1000000000), 0);
		} else {
			assert_int_equal(sk_mutex_state(&S->m, &st), 0);
			assert_int_equal(st.held, 1);
			assert_int_equal(st.owner_alive, 0);
			assert_int_equal(sk_mutex_lock(&S->m, 1000000000), SK_EOWNERDEAD);
			S->counter++; /* "repair" */
			assert_int_equal(sk_mutex_consistent(&S->m), 0);
		}
		assert_int_equal(sk_mutex_unlock(&S->m), 0);
	}
	assert_int_equal(S->counter, 100);
	free_shared(S);
}

static void test_mutex_unrepaired_becomes_unusable(void **state)
{
	(void)state;
	S = new_shared();
	pid_t holder = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	kill_and_reap(holder);
	assert_int_equal(sk_mutex_lock(&S->m, -1), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_unlock(&S->m), 0); /* without sk_mutex_consistent */
	assert_int_equal(sk_mutex_lock(&S->m, -1), SK_ENOTRECOVERABLE);
	assert_int_equal(sk_mutex_trylock(&S->m), SK_ENOTRECOVERABLE);
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(&S->m, &st), 0);
	assert_int_equal(st.recoverable, 0);
	assert_int_equal(sk_mutex_init(&S->m), 0); /* the way back, once no one uses it */
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
}

static int hold_write(void *arg)
{
	(void)arg;
	int rc = sk_rwlock_wrlock(&S->rw, -1);
	if (rc && rc != SK_EOWNERDEAD)
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static int hold_read(void *arg)
{
	(void)arg;
	if (sk_rwlock_rdlock(&S->rw, -1))
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static void test_rwlock_writer_killed_200_rounds(void **state)
{
	(void)state;
	S = new_shared();
	for (int round = 0; round < 200; round++) {
		pid_t w = t_spawn(hold_write, NULL);
		wait_ready(S);
		sk_lock_state st;
		assert_int_equal(sk_rwlock_state(&S->rw, &st), 0);
		assert_int_equal(st.owner_pid, w);
		kill_and_reap(w);
		/* The next locker, reader or writer, is told; the lock then works. */
		if (round % 2) {
			assert_int_equal(sk_rwlock_rdlock(&S->rw, 1000000000), SK_EOWNERDEAD);
			assert_int_equal(sk_rwlock_rdunlock(&S->rw), 0);
		} else {
			assert_int_equal(sk_rwlock_wrlock(&S->rw, 1000000000), SK_EOWNERDEAD);
			assert_int_equal(sk_rwlock_wrunlock(&S->rw), 0);
		}
		assert_int_equal(sk_rwlock_wrlock(&S->rw, 1000000000), 0);
		assert_int_equal(sk_rwlock_wrunlock(&S->rw), 0);
	}
	free_shared(S);
}

static void test_rwlock_dead_reader_does_not_block_writers(void **state)
{
	(void)state;
	S = new_shared();
	for (int round = 0; round < 20; round++) {
		pid_t r = t_spawn(hold_read, NULL);
		wait_ready(S);
		sk_lock_state st;
		assert_int_equal(sk_rwlock_state(&S->rw, &st), 0);
		assert_int_equal(st.readers, 1);
		assert_int_equal(sk_rwlock_wrlock(&S->rw, 0), -ETIMEDOUT); /* a live reader holds it */
		kill_and_reap(r);
		int64_t t0 = t_now_ns();
		assert_int_equal(sk_rwlock_wrlock(&S->rw, 2000000000), 0);
		assert_true(t_now_ns() - t0 < 1000000000); /* found within the 10 ms checks */
		assert_int_equal(sk_rwlock_wrunlock(&S->rw), 0);
	}
	free_shared(S);
}

enum { RW_PROCS = 6, RW_ITERS = 3000 };

static int rw_stress(int i, void *arg)
{
	(void)arg;
	uint64_t seed = (uint64_t)i * 7919 + 1;
	for (int k = 0; k < RW_ITERS; k++) {
		if (t_rand(&seed) % 4 == 0) {
			if (sk_rwlock_wrlock(&S->rw, -1))
				return 1;
			if (__atomic_fetch_add(&S->inside_writers, 1, __ATOMIC_SEQ_CST) != 0 ||
			    __atomic_load_n(&S->inside_readers, __ATOMIC_SEQ_CST) != 0)
				__atomic_fetch_add(&S->violations, 1, __ATOMIC_SEQ_CST);
			for (volatile int spin = 0; spin < 200; spin++)
				;
			__atomic_fetch_sub(&S->inside_writers, 1, __ATOMIC_SEQ_CST);
			if (sk_rwlock_wrunlock(&S->rw))
				return 2;
		} else {
			if (sk_rwlock_rdlock(&S->rw, -1))
				return 3;
			__atomic_fetch_add(&S->inside_readers, 1, __ATOMIC_SEQ_CST);
			if (__atomic_load_n(&S->inside_writers, __ATOMIC_SEQ_CST) != 0)
				__atomic_fetch_add(&S->violations, 1, __ATOMIC_SEQ_CST);
			for (volatile int spin = 0; spin < 200; spin++)
				;
			__atomic_fetch_sub(&S->inside_readers, 1, __ATOMIC_SEQ_CST);
			if (sk_rwlock_rdunlock(&S->rw))
				return 4;
		}
	}
	return 0;
}

static void test_rwlock_invariant_under_stress(void **state)
{
	(void)state;
	S = new_shared();
	t_fork_many(RW_PROCS, rw_stress, NULL);
	assert_int_equal(S->violations, 0);
	sk_lock_state st;
	assert_int_equal(sk_rwlock_state(&S->rw, &st), 0);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.readers, 0);
	/* Recursive reads by one process, and errors. */
	assert_int_equal(sk_rwlock_rdlock(&S->rw, -1), 0);
	assert_int_equal(sk_rwlock_rdlock(&S->rw, -1), 0);
	assert_int_equal(sk_rwlock_state(&S->rw, &st), 0);
	assert_int_equal(st.readers, 2);
	assert_int_equal(sk_rwlock_rdunlock(&S->rw), 0);
	assert_int_equal(sk_rwlock_rdunlock(&S->rw), 0);
	assert_int_equal(sk_rwlock_rdunlock(&S->rw), -EPERM);
	assert_int_equal(sk_rwlock_wrunlock(&S->rw), -EPERM);
	free_shared(S);
}

enum { BAR_PROCS = 12, BAR_ROUNDS = 1000 };

static int barrier_rounds(int i, void *arg)
{
	(void)arg;
	for (int r = 1; r <= BAR_ROUNDS; r++) {
		__atomic_store_n(&S->rounds_seen[i], r, __ATOMIC_SEQ_CST);
		int rc = sk_barrier_wait(&S->bar, 30000000000LL);
		if (rc < 0 || rc >= BAR_PROCS)
			return 1;
		if (rc == BAR_PROCS - 1) /* the last arriver */
			__atomic_fetch_add(&S->serials, 1, __ATOMIC_SEQ_CST);
		if (__atomic_fetch_or(&S->index_masks[r], 1u << rc, __ATOMIC_SEQ_CST) & (1u << rc))
			return 3; /* an index handed out twice in one round */
		/* No one passes early: everyone has reached round r. */
		for (int j = 0; j < BAR_PROCS; j++)
			if (__atomic_load_n(&S->rounds_seen[j], __ATOMIC_SEQ_CST) < r)
				return 2;
	}
	return 0;
}

static void test_barrier_12_processes_1000_rounds(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_barrier_init(&S->bar, BAR_PROCS), 0);
	t_fork_many(BAR_PROCS, barrier_rounds, NULL);
	assert_int_equal(S->serials, BAR_ROUNDS);
	for (int r = 1; r <= BAR_ROUNDS; r++)
		assert_int_equal(S->index_masks[r], (1u << BAR_PROCS) - 1); /* 0 .. parties-1, each once */
	assert_int_equal(sk_barrier_init(&S->bar, 0), -EINVAL);
	assert_int_equal(sk_barrier_init(&S->bar, 70000), -EINVAL);
	free_shared(S);
}

enum { SEM_PROCS = 8, SEM_ITERS = 3000, SEM_UNITS = 3 };

static int sem_users(int i, void *arg)
{
	(void)i, (void)arg;
	for (int k = 0; k < SEM_ITERS; k++) {
		if (sk_sem_wait(&S->sem, -1))
			return 1;
		int32_t in = __atomic_add_fetch(&S->sem_inside, 1, __ATOMIC_SEQ_CST);
		int32_t seen = __atomic_load_n(&S->sem_max_seen, __ATOMIC_SEQ_CST);
		while (in > seen && !__atomic_compare_exchange_n(&S->sem_max_seen, &seen, in, false, __ATOMIC_SEQ_CST,
								 __ATOMIC_SEQ_CST))
			;
		int v = sk_sem_value(&S->sem);
		if (v < 0 || v > SEM_UNITS)
			return 2;
		__atomic_sub_fetch(&S->sem_inside, 1, __ATOMIC_SEQ_CST);
		if (sk_sem_post(&S->sem))
			return 3;
	}
	return 0;
}

static void test_semaphore_never_negative(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_sem_init(&S->sem, SEM_UNITS, SEM_UNITS), 0);
	t_fork_many(SEM_PROCS, sem_users, NULL);
	assert_true(S->sem_max_seen >= 1 && S->sem_max_seen <= SEM_UNITS);
	assert_int_equal(sk_sem_value(&S->sem), SEM_UNITS);
	assert_int_equal(sk_sem_post(&S->sem), -EOVERFLOW); /* bounded */
	for (int k = 0; k < SEM_UNITS; k++)
		assert_int_equal(sk_sem_wait(&S->sem, 0), 0);
	assert_int_equal(sk_sem_wait(&S->sem, 0), -EAGAIN);
	assert_int_equal(sk_sem_value(&S->sem), 0);
	sk_lock_state st;
	assert_int_equal(sk_sem_state(&S->sem, &st), 0);
	assert_int_equal(st.value, 0);
	assert_int_equal(st.limit, SEM_UNITS);
	assert_int_equal(sk_sem_init(&S->sem, 5, 2), -EINVAL);
	free_shared(S);
}

static void assert_timed(int64_t t0, int64_t want_ns)
{
	int64_t took = t_now_ns() - t0;
	if (took < want_ns - 1000000 || took > want_ns + 2000000000LL)
		fail_msg("a %lld ms timeout took %lld ms", (long long)(want_ns / 1000000), (long long)(took / 1000000));
}

static void test_timeouts(void **state)
{
	(void)state;
	S = new_shared();
	const int64_t T = 100000000; /* 100 ms */
	pid_t holder = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_mutex_lock(&S->m, T), -ETIMEDOUT);
	assert_timed(t0, T);
	assert_int_equal(sk_mutex_lock(&S->m, 0), -ETIMEDOUT);
	assert_int_equal(sk_mutex_trylock(&S->m), -EBUSY);
	kill_and_reap(holder);
	assert_int_equal(sk_mutex_lock(&S->m, T), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);

	/* cond: times out and comes back holding the mutex. */
	t0 = t_now_ns();
	assert_int_equal(sk_cond_wait(&S->cond, &S->m, T), -ETIMEDOUT);
	assert_timed(t0, T);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);

	pid_t reader = t_spawn(hold_read, NULL);
	wait_ready(S);
	t0 = t_now_ns();
	assert_int_equal(sk_rwlock_wrlock(&S->rw, T), -ETIMEDOUT);
	assert_timed(t0, T);
	assert_int_equal(sk_rwlock_rdlock(&S->rw, T), 0); /* no writer holds it: readers share */
	assert_int_equal(sk_rwlock_rdunlock(&S->rw), 0);
	kill_and_reap(reader);

	assert_int_equal(sk_sem_init(&S->sem, 0, 0), 0);
	t0 = t_now_ns();
	assert_int_equal(sk_sem_wait(&S->sem, T), -ETIMEDOUT);
	assert_timed(t0, T);

	t0 = t_now_ns();
	assert_int_equal(sk_event_wait(&S->ev, T), -ETIMEDOUT);
	assert_timed(t0, T);

	/* A party that times out breaks the barrier (as threading.Barrier's
	 * does); reset makes it work again. */
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	t0 = t_now_ns();
	assert_int_equal(sk_barrier_wait(&S->bar, T), -ETIMEDOUT);
	assert_timed(t0, T);
	sk_lock_state st;
	assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
	assert_int_equal(st.value, 0);
	assert_int_equal(st.limit, 2);
	assert_int_equal(sk_barrier_broken(&S->bar), 1);
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	assert_int_equal(sk_barrier_broken(&S->bar), 0);
	free_shared(S);
}

static volatile sig_atomic_t signals_seen;

static void count_signal(int sig)
{
	(void)sig;
	signals_seen++;
}

/* Blocks in each kind of wait for 300 ms while another process sends it
 * SIGUSR1 every 10 ms (with a handler, so system calls see EINTR). */
static int wait_through_signals(void *arg)
{
	(void)arg;
	struct sigaction sa = { .sa_handler = count_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	const int64_t T = 300000000;
	int64_t t0 = t_now_ns();
	if (sk_sem_wait(&S->sem, T) != -ETIMEDOUT || t_now_ns() - t0 < T)
		return 1;
	t0 = t_now_ns();
	if (sk_event_wait(&S->ev, T) != -ETIMEDOUT || t_now_ns() - t0 < T)
		return 2;
	t0 = t_now_ns();
	if (sk_barrier_wait(&S->bar, T) != -ETIMEDOUT || t_now_ns() - t0 < T)
		return 3;
	t0 = t_now_ns();
	if (sk_mutex_lock(&S->m, T) != -ETIMEDOUT || t_now_ns() - t0 < T)
		return 4;
	/* And a wait that succeeds while signals keep coming. */
	__atomic_store_n(&S->ready, 2, __ATOMIC_SEQ_CST);
	if (sk_sem_wait(&S->sem, 5000000000LL) != 0)
		return 5;
	return signals_seen > 10 ? 0 : 6;
}

static void test_signals_do_not_cut_waits_short(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_sem_init(&S->sem, 0, 0), 0);
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0); /* held here: the child's lock times out */
	pid_t child = t_spawn(wait_through_signals, NULL);
	wait_ready(S);
	int64_t t0 = t_now_ns();
	int status = 0;
	bool posted = false;
	while (waitpid(child, &status, WNOHANG) == 0) {
		kill(child, SIGUSR1);
		usleep(10000);
		if (!posted && __atomic_load_n(&S->ready, __ATOMIC_SEQ_CST) == 2) { /* after the timed waits */
			assert_int_equal(sk_sem_post(&S->sem), 0);
			posted = true;
		}
		if (t_now_ns() - t0 > 10000000000LL)
			fail_msg("the child never finished");
	}
	t_assert_exit0(status);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
}

static int barrier_once(void *arg)
{
	(void)arg;
	return sk_barrier_wait(&S->bar, 5000000000LL) < 0;
}

static int event_waiter(void *arg)
{
	(void)arg;
	return sk_event_wait(&S->ev, 5000000000LL) != 0;
}

static int cond_consumer(void *arg)
{
	(void)arg;
	if (sk_mutex_lock(&S->m, -1))
		return 1;
	while (S->counter == 0) {
		int rc = sk_cond_wait(&S->cond, &S->m, 5000000000LL);
		if (rc)
			return 2;
	}
	S->counter--;
	return sk_mutex_unlock(&S->m) ? 3 : 0;
}

static void test_event_cond_barrier_across_processes(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	pid_t b = t_spawn(barrier_once, NULL);
	int rc = sk_barrier_wait(&S->bar, 5000000000LL);
	assert_true(rc == 0 || rc == 1);
	int status;
	assert_int_equal(waitpid(b, &status, 0), b);
	t_assert_exit0(status);

	pid_t w[3];
	for (int i = 0; i < 3; i++)
		w[i] = t_spawn(event_waiter, NULL);
	usleep(20000);
	assert_int_equal(sk_event_is_set(&S->ev), 0);
	sk_lock_state st;
	assert_int_equal(sk_event_state(&S->ev, &st), 0);
	assert_int_equal(sk_event_set(&S->ev), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(waitpid(w[i], &status, 0), w[i]);
		t_assert_exit0(status);
	}
	assert_int_equal(sk_event_is_set(&S->ev), 1);
	assert_int_equal(sk_event_wait(&S->ev, 0), 0);
	assert_int_equal(sk_event_clear(&S->ev), 0);
	assert_int_equal(sk_event_is_set(&S->ev), 0);

	/* Three consumers, three items produced one by one, then a broadcast. */
	pid_t c[3];
	for (int i = 0; i < 3; i++)
		c[i] = t_spawn(cond_consumer, NULL);
	usleep(20000);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
		S->counter++;
		assert_int_equal(sk_cond_signal(&S->cond), 0);
		assert_int_equal(sk_mutex_unlock(&S->m), 0);
	}
	assert_int_equal(sk_cond_broadcast(&S->cond), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(waitpid(c[i], &status, 0), c[i]);
		t_assert_exit0(status);
	}
	assert_int_equal(S->counter, 0);
	free_shared(S);
}

static char named_mutex[128];

static int named_child(void *arg)
{
	(void)arg;
	sk_segment *seg;
	sk_mutex *m;
	if (sk_mutex_open(named_mutex, &seg, &m))
		return 1;
	if (sk_mutex_lock(m, -1))
		return 2;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static void test_named_primitives_and_bad_input(void **state)
{
	(void)state;
	S = new_shared();
	/* A named mutex found by an unrelated process (here a child that opens it by name). */
	sk_segment *seg, *seg2;
	sk_mutex *m;
	char *mname = named_mutex;
	snprintf(named_mutex, sizeof named_mutex, "%s", t_name("nmutex"));
	assert_int_equal(sk_mutex_create(mname, NULL, &seg, &m), 0);
	pid_t child = t_spawn(named_child, NULL);
	wait_ready(S);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(mname, &in), 0);
	assert_int_equal(in.kind, SK_KIND_MUTEX);
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(m, &st), 0);
	assert_int_equal(st.owner_pid, child);
	kill_and_reap(child);
	assert_int_equal(sk_mutex_lock(m, 1000000000), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_consistent(m), 0);
	assert_int_equal(sk_mutex_unlock(m), 0);
	sk_segment_close(seg);

	/* Every kind by name. */
	sk_rwlock *rw;
	sk_sem *sem;
	sk_barrier *bar;
	sk_event *ev;
	sk_cond *cv;
	const char *n[5] = { t_name("nrw"), t_name("nsem"), t_name("nbar"), t_name("nev"), t_name("ncond") };
	char names[5][128];
	for (int i = 0; i < 5; i++)
		snprintf(names[i], sizeof names[i], "%s", n[i]);
	assert_int_equal(sk_rwlock_create(names[0], NULL, &seg, &rw), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_rwlock_open(names[0], &seg, &rw), 0);
	assert_int_equal(sk_rwlock_rdlock(rw, 0), 0);
	assert_int_equal(sk_rwlock_rdunlock(rw), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_sem_create(names[1], 2, 0, NULL, &seg, &sem), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_sem_create(names[1], 2, 0, NULL, &seg, &sem), -EEXIST);
	assert_int_equal(sk_sem_open(names[1], &seg, &sem), 0);
	assert_int_equal(sk_sem_value(sem), 2);
	sk_segment_close(seg);
	assert_int_equal(sk_barrier_create(names[2], 1, NULL, &seg, &bar), 0);
	assert_int_equal(sk_barrier_wait(bar, 0), 0); /* one party: index 0 = parties - 1 */
	sk_segment_close(seg);
	assert_int_equal(sk_barrier_open(names[2], &seg, &bar), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_event_create(names[3], NULL, &seg, &ev), 0);
	assert_int_equal(sk_event_set(ev), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_event_open(names[3], &seg, &ev), 0);
	assert_int_equal(sk_event_is_set(ev), 1);
	sk_segment_close(seg);
	assert_int_equal(sk_cond_create(names[4], NULL, &seg, &cv), 0);
	sk_segment_close(seg);
	assert_int_equal(sk_cond_open(names[4], &seg, &cv), 0);
	assert_int_equal(sk_cond_signal(cv), 0);
	sk_segment_close(seg);

	/* A lock that is really something else, or of another kind. */
	assert_int_equal(sk_sem_open(names[0], &seg, &sem), SK_EKIND);
	assert_null(seg);
	const char *an = t_name("notalock");
	char aname[128];
	snprintf(aname, sizeof aname, "%s", an);
	sk_array *a;
	uint64_t shape = 16;
	assert_int_equal(sk_array_create(aname, SK_INT32, 1, &shape, NULL, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_mutex_open(aname, &seg2, &m), SK_EKIND);
	assert_int_equal(sk_mutex_open(t_name("missing"), &seg2, &m), -ENOENT);
	/* A named lock whose bytes were damaged: its own magic is checked. */
	FILE *f = fopen(t_path(mname), "r+b");
	assert_non_null(f);
	fseek(f, 4096, SEEK_SET);
	fputc(0x00, f);
	fclose(f);
	assert_int_equal(sk_mutex_open(mname, &seg2, &m), SK_ECORRUPT);
	assert_null(m);
	/* Options that mean nothing for locks. */
	sk_create_opts o = { .flags = SK_CREATE_LOCKED };
	assert_int_equal(sk_mutex_create(t_name("badopt"), &o, &seg2, &m), -EINVAL);
	assert_int_equal(sk_sem_create(t_name("badsem"), 3, 2, NULL, &seg2, &sem), -EINVAL);
	assert_int_equal(sk_barrier_create(t_name("badbar"), 0, NULL, &seg2, &bar), -EINVAL);

	sk_segment_unlink(mname);
	sk_segment_unlink(aname);
	for (int i = 0; i < 5; i++)
		sk_segment_unlink(names[i]);
	free_shared(S);
}

/* ---- the lock word: hostile peers, deaths at chosen points ---- */

/* Waits for child pid for up to ms milliseconds; kills it and fails if it
 * is still running then. Returns its wait status. */
static int reap_within(pid_t pid, int ms)
{
	int status;
	for (int i = 0; i < ms; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		assert_int_equal(r, 0);
		usleep(1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	fail_msg("child %d still ran after %d ms", (int)pid, ms);
	return -1;
}

/* The owner word a thread of this process would write (docs/format.md):
 * tid | (start time & 0x7f) << 22 | pid namespace inode << 32. */
static uint64_t owner_word_of_this_thread(void)
{
	pid_t tid = gettid();
	char path[96], buf[1024];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	assert_non_null(p);
	for (int field = 2; field < 22; field++)
		p = strchr(p + 1, ' ');
	unsigned long long start = strtoull(p + 1, NULL, 10);
	struct stat st;
	assert_int_equal(stat("/proc/self/ns/pid", &st), 0);
	return (uint64_t)tid | (start & 0x7f) << 22 | (uint64_t)st.st_ino << 32;
}

static uint64_t *word_of(sk_mutex *m)
{
	return (uint64_t *)((uint8_t *)m + 8);
}

static uint8_t canary[256]; /* the same address in every forked child */

static int hold_until_go(void *arg)
{
	(void)arg;
	if (sk_mutex_lock(&S->m, 1000000000) != 0)
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	int64_t t0 = t_now_ns();
	while (__atomic_load_n(&S->ready, __ATOMIC_SEQ_CST) != 2)
		if (t_now_ns() - t0 > 5000000000LL)
			return 2;
	/* Whatever the peer wrote, these return (an error is fine) and write
	 * nothing outside the lock. */
	sk_mutex_unlock(&S->m);
	int rc = sk_mutex_lock(&S->m, 20000000);
	if (rc == 0 || rc == SK_EOWNERDEAD)
		sk_mutex_unlock(&S->m);
	sk_lock_state st;
	sk_mutex_state(&S->m, &st);
	for (size_t i = 0; i < sizeof canary; i++)
		if (canary[i] != 0xc5)
			return 3; /* something wrote into this process's memory */
	return 0;
}

static int wait_100ms(void *arg)
{
	(void)arg;
	int64_t t0 = t_now_ns();
	int rc = sk_mutex_lock(&S->m, 100000000);
	if (rc == 0 || rc == SK_EOWNERDEAD)
		sk_mutex_unlock(&S->m);
	return t_now_ns() - t0 < 1100000000LL ? 0 : 4; /* never past its timeout (and slack) */
}

/* A peer rewrites each byte of a held mutex (with 0x00, 0xff, 0x41 and a
 * pointer to the holder's own memory for 8-byte fields): the holder, which
 * then unlocks, and a blocked waiter neither crash nor write outside the
 * lock nor wait past their timeouts. Bytes 56-71 held glibc's robust-list
 * links before version 2: unlocking then wrote where they pointed. */
static void test_mutex_hostile_peer_rewrites_every_byte(void **state)
{
	(void)state;
	S = new_shared();
	memset(canary, 0xc5, sizeof canary);
	uint64_t ptr = (uint64_t)(uintptr_t)(canary + 64);
	const int kinds = 4;
	for (int off = 0; off < (int)sizeof(sk_mutex); off++) {
		for (int k = 0; k < kinds; k++) {
			if (k == 3 && off % 8)
				continue;
			assert_int_equal(sk_mutex_init(&S->m), 0);
			S->ready = 0;
			pid_t holder = t_spawn(hold_until_go, NULL);
			int64_t t0 = t_now_ns();
			while (__atomic_load_n(&S->ready, __ATOMIC_SEQ_CST) != 1)
				if (t_now_ns() - t0 > 5000000000LL)
					fail_msg("holder never got ready");
			pid_t waiter = (off + k) % 4 == 0 ? t_spawn(wait_100ms, NULL) : 0;
			uint8_t *b = (uint8_t *)&S->m;
			if (k == 3)
				__atomic_store_n((uint64_t *)(b + off), ptr, __ATOMIC_SEQ_CST);
			else
				__atomic_store_n(b + off,
						 (uint8_t)(k == 0   ? 0x00
							   : k == 1 ? 0xff
								    : 0x41),
						 __ATOMIC_SEQ_CST);
			__atomic_store_n(&S->ready, 2, __ATOMIC_SEQ_CST);
			int st = reap_within(holder, 5000);
			if (!WIFEXITED(st) || WEXITSTATUS(st))
				fail_msg("byte %d pattern %d: the holder %s %d", off, k,
					 WIFEXITED(st) ? "exited with" : "died of signal",
					 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			if (waiter)
				t_assert_exit0(reap_within(waiter, 5000));
		}
	}
	free_shared(S);
}

/* Random bytes over a held mutex, many times, with several waiters. */
static int scribbled_waiter(void *arg)
{
	(void)arg;
	for (int i = 0; i < 200; i++) {
		int64_t t0 = t_now_ns();
		int rc = sk_mutex_lock(&S->m, 2000000);
		if (rc == 0 || rc == SK_EOWNERDEAD) {
			if (rc == SK_EOWNERDEAD)
				sk_mutex_consistent(&S->m);
			sk_mutex_unlock(&S->m);
		}
		if (t_now_ns() - t0 > 1000000000LL)
			return 1;
		sk_mutex_trylock(&S->m) == 0 ? sk_mutex_unlock(&S->m) : 0;
		sk_lock_state st;
		sk_mutex_state(&S->m, &st);
		sk_mutex_held_by_me(&S->m);
	}
	return 0;
}

static void test_mutex_random_scribbles(void **state)
{
	(void)state;
	S = new_shared();
	pid_t w[4];
	for (int i = 0; i < 4; i++)
		w[i] = t_spawn(scribbled_waiter, NULL);
	uint64_t seed = 42;
	int64_t t0 = t_now_ns();
	while (t_now_ns() - t0 < 300000000) {
		uint64_t r = t_rand(&seed);
		uint8_t *b = (uint8_t *)&S->m;
		if (r % 5 == 0)
			sk_mutex_init(&S->m);
		else
			__atomic_store_n(b + (r >> 8) % sizeof(sk_mutex), (uint8_t)(r >> 32), __ATOMIC_SEQ_CST);
		usleep(200);
	}
	for (int i = 0; i < 4; i++)
		t_assert_exit0(reap_within(w[i], 10000));
	free_shared(S);
}

/* Every other primitive under random bytes: rwlock, semaphore, barrier,
 * event, cond. Each operation returns (any code) within its timeout plus
 * slack, and nothing crashes. */
static int scribbled_user(void *arg)
{
	int kind = (int)(intptr_t)arg;
	const int64_t T = 2000000; /* 2 ms */
	for (int i = 0; i < 300; i++) {
		int64_t t0 = t_now_ns();
		int rc;
		sk_lock_state st;
		sk_barrier_ticket t;
		uint32_t tk;
		switch (kind) {
		case 0:
			rc = i % 2 ? sk_rwlock_rdlock(&S->rw, T) : sk_rwlock_wrlock(&S->rw, T);
			if (rc == 0 || rc == SK_EOWNERDEAD)
				i % 2 ? sk_rwlock_rdunlock(&S->rw) : sk_rwlock_wrunlock(&S->rw);
			sk_rwlock_state(&S->rw, &st);
			break;
		case 1:
			if (sk_sem_wait(&S->sem, T) == 0)
				sk_sem_post(&S->sem);
			sk_sem_value(&S->sem);
			sk_sem_state(&S->sem, &st);
			break;
		case 2:
			sk_barrier_wait(&S->bar, T);
			if (sk_barrier_arrive(&S->bar, i % 3 ? 0 : SK_BARRIER_HOLD, T, &t) >= 0) {
				sk_barrier_await(&S->bar, &t, T);
				sk_barrier_release(&S->bar, &t);
				sk_barrier_leave(&S->bar, &t, i % 2 ? SK_BARRIER_BREAK : 0);
			}
			if (i % 7 == 0)
				sk_barrier_reset(&S->bar);
			sk_barrier_broken(&S->bar);
			sk_barrier_state(&S->bar, &st);
			break;
		case 3:
			sk_event_wait(&S->ev, T);
			i % 2 ? sk_event_set(&S->ev) : sk_event_clear(&S->ev);
			sk_event_state(&S->ev, &st);
			break;
		default:
			rc = sk_mutex_lock(&S->m, T);
			if (rc == SK_EOWNERDEAD)
				sk_mutex_consistent(&S->m);
			if (rc == 0 || rc == SK_EOWNERDEAD) {
				rc = sk_cond_wait(&S->cond, &S->m, T);
				if (rc == 0 || rc == -ETIMEDOUT || rc == SK_EOWNERDEAD)
					sk_mutex_unlock(&S->m);
			}
			if (sk_mutex_lock(&S->m, T) == 0 && sk_cond_begin(&S->cond, &S->m, &tk) == 0)
				sk_cond_sleep(&S->cond, tk, T);
			sk_cond_signal(&S->cond);
			break;
		}
		if (t_now_ns() - t0 > 1000000000LL)
			return 10 + kind;
	}
	return 0;
}

static void test_primitives_random_scribbles(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_sem_init(&S->sem, 1, 2), 0);
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	struct {
		void *p;
		size_t n;
	} areas[] = { { &S->rw, sizeof S->rw }, { &S->sem, sizeof S->sem },   { &S->bar, sizeof S->bar },
		      { &S->ev, sizeof S->ev }, { &S->cond, sizeof S->cond }, { &S->m, sizeof S->m } };
	pid_t users[10];
	for (int i = 0; i < 10; i++)
		users[i] = t_spawn(scribbled_user, (void *)(intptr_t)(i % 5));
	uint64_t seed = 99;
	int64_t t0 = t_now_ns();
	while (t_now_ns() - t0 < 400000000) {
		uint64_t r = t_rand(&seed);
		int a = (int)(r % 6);
		uint8_t *b = areas[a].p;
		size_t off = (size_t)(r >> 8) % areas[a].n;
		if ((r >> 40) % 4 == 0) { /* an 8-byte field of garbage */
			off &= ~(size_t)7;
			if (off + 8 <= areas[a].n)
				__atomic_store_n((uint64_t *)(b + off), t_rand(&seed), __ATOMIC_SEQ_CST);
		} else {
			__atomic_store_n(b + off, (uint8_t)(r >> 32), __ATOMIC_SEQ_CST);
		}
		if ((r >> 50) % 16 == 0) { /* and now and then a fresh start */
			sk_rwlock_init(&S->rw);
			sk_sem_init(&S->sem, 1, 2);
			sk_barrier_init(&S->bar, 2);
			sk_event_init(&S->ev);
			sk_cond_init(&S->cond);
			sk_mutex_init(&S->m);
		}
		usleep(100);
	}
	for (int i = 0; i < 10; i++)
		t_assert_exit0(reap_within(users[i], 20000));
	free_shared(S);
}

/* A child that took the lock the way sk_mutex_lock does, and then stopped
 * (or died) before writing its record: the word is its own, the record
 * names someone else. */
static int take_word_and_stop(void *arg)
{
	(void)arg;
	uint64_t want = owner_word_of_this_thread(), zero = 0;
	if (!__atomic_compare_exchange_n(word_of(&S->m), &zero, want, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	raise(SIGSTOP);
	for (;;)
		pause();
}

static void test_mutex_owner_dies_between_cas_and_record(void **state)
{
	(void)state;
	S = new_shared();
	for (int round = 0; round < 3; round++) {
		assert_int_equal(sk_mutex_init(&S->m), 0);
		/* A stale record: another thread's, as a previous holder left it
		 * (round 0), garbage (1), or this very process's (2). */
		uint8_t *b = (uint8_t *)&S->m;
		uint64_t rec[2] = { 12345, (uint64_t)getpid() << 32 | (uint32_t)(round == 2 ? getpid() : 777) };
		if (round == 1)
			memset(rec, 0x5a, sizeof rec);
		memcpy(b + 16, rec, sizeof rec);
		S->ready = 0;
		pid_t c = t_spawn(take_word_and_stop, NULL);
		wait_ready(S);
		int status;
		assert_int_equal(waitpid(c, &status, WUNTRACED), c);
		assert_true(WIFSTOPPED(status));
		/* Alive (stopped) inside that window: never taken over. */
		int64_t t0 = t_now_ns();
		assert_int_equal(sk_mutex_lock(&S->m, 50000000), -ETIMEDOUT);
		assert_true(t_now_ns() - t0 >= 50000000);
		assert_int_equal(sk_mutex_trylock(&S->m), -EBUSY);
		sk_lock_state st;
		assert_int_equal(sk_mutex_state(&S->m, &st), 0);
		assert_int_equal(st.held, 1);
		assert_int_equal(st.owner_alive, 1);
		/* Killed there: the next locker recovers, a blocked one at once. */
		if (round == 0) {
			pid_t w = t_spawn(wait_for_dead_owner, NULL);
			usleep(20000);
			kill(c, SIGKILL); /* a zombie until reaped below */
			t0 = t_now_ns();
			t_assert_exit0(reap_within(w, 5000));
			assert_true(t_now_ns() - t0 < 1000000000LL);
			kill_and_reap(c);
			assert_int_equal(sk_mutex_lock(&S->m, 0), 0);
		} else {
			kill_and_reap(c);
			t0 = t_now_ns();
			assert_int_equal(sk_mutex_lock(&S->m, round == 1 ? 0 : 1000000000), SK_EOWNERDEAD);
			assert_true(t_now_ns() - t0 < 100000000);
			assert_int_equal(sk_mutex_consistent(&S->m), 0);
		}
		assert_int_equal(sk_mutex_unlock(&S->m), 0);
	}
	free_shared(S);
}

/* The lock word names a live thread that is not the one that took it (its
 * id was reused): that owner is dead. */
static void test_mutex_reused_tid_is_a_dead_owner(void **state)
{
	(void)state;
	S = new_shared();
	/* A live process whose tid is in the word, with other start bits. */
	pid_t c = t_spawn(hold_until_go, NULL); /* only to have a live thread */
	wait_ready(S);
	assert_int_equal(sk_mutex_unlock(&S->m), -EPERM);
	uint64_t mine = owner_word_of_this_thread();
	uint64_t w = (uint64_t)c | (((mine >> 22) + 1) & 0x7f) << 22 | (mine & 0xffffffff00000000);
	assert_int_equal(sk_mutex_init(&S->m), 0);
	__atomic_store_n(word_of(&S->m), w, __ATOMIC_SEQ_CST);
	/* trylock asks the kernel cheaply at first, and looks at /proc once it
	 * found the same holder for 1 ms: a loop of trylocks gets there. */
	int64_t t0 = t_now_ns();
	int rc;
	while ((rc = sk_mutex_trylock(&S->m)) == -EBUSY)
		if (t_now_ns() - t0 > 10000000000LL) /* never, even on a loaded machine */
			fail_msg("trylock never judged the owner");
	assert_int_equal(rc, SK_EOWNERDEAD);
	assert_true(t_now_ns() - t0 >= 1000000);
	assert_int_equal(sk_mutex_unlock(&S->m), 0); /* unrepaired: unusable */
	assert_int_equal(sk_mutex_lock(&S->m, 0), SK_ENOTRECOVERABLE);
	/* Same start bits, but the record (its own: same tid and bits) says
	 * another start time. */
	assert_int_equal(sk_mutex_init(&S->m), 0);
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)c);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	for (int field = 2; field < 22; field++)
		p = strchr(p + 1, ' ');
	uint64_t start = strtoull(p + 1, NULL, 10);
	w = (uint64_t)c | (start & 0x7f) << 22 | (mine & 0xffffffff00000000);
	uint64_t rec[2] = { start + 128, (uint64_t)c << 32 | (uint32_t)c };
	memcpy((uint8_t *)&S->m + 16, rec, sizeof rec);
	__atomic_store_n(word_of(&S->m), w, __ATOMIC_SEQ_CST);
	t0 = t_now_ns();
	assert_int_equal(sk_mutex_lock(&S->m, 1000000000), SK_EOWNERDEAD);
	assert_true(t_now_ns() - t0 < 100000000);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	/* And with the true start time it is that thread's: alive. */
	rec[0] = start;
	memcpy((uint8_t *)&S->m + 16, rec, sizeof rec);
	__atomic_store_n(word_of(&S->m), w, __ATOMIC_SEQ_CST);
	assert_int_equal(sk_mutex_lock(&S->m, 20000000), -ETIMEDOUT);
	__atomic_store_n(&S->ready, 2, __ATOMIC_SEQ_CST);
	reap_within(c, 5000);
	free_shared(S);
}

/* Killed while holding, not reaped (a zombie): a blocked waiter wakes. */
static void test_mutex_zombie_holder_wakes_a_blocked_waiter(void **state)
{
	(void)state;
	S = new_shared();
	for (int round = 0; round < 20; round++) {
		pid_t holder = t_spawn(hold_mutex, NULL);
		wait_ready(S);
		pid_t w = t_spawn(wait_for_dead_owner, NULL);
		usleep(5000);
		int64_t t0 = t_now_ns();
		kill(holder, SIGKILL);
		t_assert_exit0(reap_within(w, 5000));
		assert_true(t_now_ns() - t0 < 1000000000LL);
		kill_and_reap(holder);
	}
	free_shared(S);
}

static int count_owner_death(void *arg)
{
	(void)arg;
	int rc = sk_mutex_lock(&S->m, 10000000000LL);
	if (rc == SK_EOWNERDEAD) {
		__atomic_fetch_add(&S->counter, 1, __ATOMIC_SEQ_CST);
		rc = sk_mutex_consistent(&S->m);
	}
	if (rc)
		return 1;
	return sk_mutex_unlock(&S->m) ? 2 : 0;
}

/* Several sleepers: the one that judges every millisecond is killed, then
 * the holder: another sleeper takes the judging over and the lock. */
static void test_mutex_judging_sleeper_killed(void **state)
{
	(void)state;
	S = new_shared();
	S->counter = 0;
	pid_t holder = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	pid_t w[3];
	for (int i = 0; i < 3; i++)
		w[i] = t_spawn(count_owner_death, NULL);
	uint32_t *judge = (uint32_t *)((uint8_t *)&S->m + 36);
	int64_t t0 = t_now_ns();
	while (__atomic_load_n(judge, __ATOMIC_SEQ_CST) == 0)
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("no sleeper judges");
	pid_t j = (pid_t)__atomic_load_n(judge, __ATOMIC_SEQ_CST);
	int victim = -1;
	for (int i = 0; i < 3; i++)
		if (w[i] == j)
			victim = i;
	assert_true(victim >= 0);
	kill_and_reap(w[victim]);
	usleep(20000); /* another sleeper took the role over */
	t0 = t_now_ns();
	kill_and_reap(holder);
	for (int i = 0; i < 3; i++)
		if (i != victim)
			t_assert_exit0(reap_within(w[i], 5000));
	assert_true(t_now_ns() - t0 < 1000000000LL);
	assert_int_equal(S->counter, 1); /* one of them was told, once */
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(&S->m, &st), 0);
	assert_int_equal(st.held, 0);
	free_shared(S);
}

/* A sleeper that has waited long on one live holder looks at it less often
 * (the judge's heartbeat, bytes 40-43, counts its looks) and still takes the
 * lock soon after the holder is killed. */
static void test_mutex_long_wait_backs_off(void **state)
{
	(void)state;
	S = new_shared();
	pid_t holder = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	pid_t w = t_spawn(wait_for_dead_owner, NULL);
	uint32_t *judge = (uint32_t *)((uint8_t *)&S->m + 36), *beat = (uint32_t *)((uint8_t *)&S->m + 40);
	int64_t t0 = t_now_ns();
	while (__atomic_load_n(judge, __ATOMIC_SEQ_CST) == 0)
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("no sleeper judges");
	uint32_t b0 = __atomic_load_n(beat, __ATOMIC_SEQ_CST);
	usleep(1500000);
	uint32_t looks = __atomic_load_n(beat, __ATOMIC_SEQ_CST) - b0;
	print_message("%u looks at a live holder in 1.5 s\n", looks);
	/* Every millisecond would be about 1500; backing off after 64 ms, about
	 * 270 (timers that fire late only make them fewer). */
	assert_true(looks > 0 && looks < 750);
	t0 = t_now_ns();
	kill_and_reap(holder);
	t_assert_exit0(reap_within(w, 5000));
	assert_true(t_now_ns() - t0 < 1000000000LL);
	free_shared(S);
}

/* A waiter killed while it sleeps leaves nothing that blocks others. */
static void test_mutex_killed_waiter(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	pid_t w = t_spawn(wait_for_dead_owner, NULL);
	usleep(20000);
	kill_and_reap(w);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	assert_int_equal(sk_mutex_lock(&S->m, 0), 0);
	assert_int_equal(sk_mutex_held_by_me(&S->m), 1);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	assert_int_equal(sk_mutex_held_by_me(&S->m), 0);
	free_shared(S);
}

static void *lock_and_exit(void *arg)
{
	(void)arg;
	if (sk_mutex_lock(&S->m, -1))
		return (void *)1;
	pthread_exit(NULL);
}

static void *sleep_a_while(void *arg)
{
	(void)arg;
	sleep(30);
	return NULL;
}

/* The main thread locks and ends with pthread_exit while another thread of
 * its process still runs. */
static int leader_exits_holding(void *arg)
{
	(void)arg;
	pthread_t t;
	if (pthread_create(&t, NULL, sleep_a_while, NULL))
		return 1;
	if (sk_mutex_lock(&S->m, -1))
		return 2;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	pthread_exit(NULL);
}

/* A thread that ends holding the lock in a live process is a dead owner. */
static void test_mutex_pthread_exit_while_holding(void **state)
{
	(void)state;
	S = new_shared();
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, lock_and_exit, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_mutex_lock(&S->m, 5000000000LL), SK_EOWNERDEAD);
	assert_true(t_now_ns() - t0 < 100000000);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	/* The thread-group leader, whose id stays (a zombie) while the process lives. */
	pid_t c = t_spawn(leader_exits_holding, NULL);
	wait_ready(S);
	usleep(10000);
	t0 = t_now_ns();
	assert_int_equal(sk_mutex_lock(&S->m, 5000000000LL), SK_EOWNERDEAD);
	assert_true(t_now_ns() - t0 < 1000000000LL);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	kill_and_reap(c);
	free_shared(S);
}

/* The holder runs in another pid namespace (unshare(CLONE_NEWPID) with its
 * own /proc, as `unshare --pid --fork --mount-proc` makes it): its thread
 * ids mean nothing here, so it is never taken over from. */
static int hold_in_new_pid_namespace(void *arg)
{
	(void)arg;
	if (unshare(CLONE_NEWPID | CLONE_NEWNS))
		return 10;
	pid_t inner = fork();
	if (inner < 0)
		return 11;
	if (inner == 0) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("proc", "/proc", "proc", 0, NULL))
			_exit(12);
		if (getpid() != 1)
			_exit(13);
		if (sk_mutex_lock(&S->m, -1))
			_exit(14);
		__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
		for (;;)
			pause();
	}
	__atomic_store_n(&S->counter, inner, __ATOMIC_SEQ_CST); /* its pid out here */
	int status;
	waitpid(inner, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 0;
}

static void test_mutex_holder_in_another_pid_namespace(void **state)
{
	(void)state;
	S = new_shared();
	pid_t c = t_spawn(hold_in_new_pid_namespace, NULL);
	int64_t t0 = t_now_ns();
	/* Both: the holder's ready and, from its parent, its pid out here (the
	 * holder can be ready before its parent has stored that pid). */
	while (!__atomic_load_n(&S->ready, __ATOMIC_SEQ_CST) || !__atomic_load_n(&S->counter, __ATOMIC_SEQ_CST)) {
		int status;
		if (waitpid(c, &status, WNOHANG) == c)
			fail_msg("the namespace helper failed: %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("the holder in the new pid namespace never got ready");
		usleep(1000);
	}
	pid_t inner = (pid_t)__atomic_load_n(&S->counter, __ATOMIC_SEQ_CST);
	assert_true(inner > 1);
	/* Its word names tid 1 of its namespace; here, 1 is init: alive either way,
	 * and it must not matter. */
	assert_int_equal(*word_of(&S->m) & 0x3fffff, 1);
	t0 = t_now_ns();
	assert_int_equal(sk_mutex_lock(&S->m, 300000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 300000000);
	assert_int_equal(sk_mutex_trylock(&S->m), -EBUSY);
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(&S->m, &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.owner_alive, 1); /* cannot be judged: presumed alive */
	/* Dead, it still cannot be judged from here: lockers time out (the
	 * documented limit), and sk_mutex_init is the way back. */
	assert_int_equal(kill(inner, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(c, &status, 0), c);
	assert_int_equal(sk_mutex_lock(&S->m, 50000000), -ETIMEDOUT);
	assert_int_equal(sk_mutex_init(&S->m), 0);
	assert_int_equal(sk_mutex_lock(&S->m, 0), 0);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	free_shared(S);
}

/* ---- deaths at any instruction: SIGKILL rounds ---- */

enum { KILL_MAXP = 32 };

typedef struct kill_shared {
	sk_rwlock rw;
	sk_mutex m;
	int32_t pid[KILL_MAXP];  /* the worker in each place */
	int32_t mode[KILL_MAXP]; /* 0 outside, 1 reading, 2 writing (or holding the mutex) */
	int32_t stop;
	int64_t violations, errors, entries;
	int64_t last_error;
} kill_shared;

static kill_shared *K;

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	int n = v ? atoi(v) : 0;
	return n > 0 ? n : dflt;
}

/* 1 if process pid has ended (gone, or a zombie not yet reaped). */
static int proc_ended(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return !p || p[2] == 'Z' || p[2] == 'X';
}

/* Another live worker in a mode that conflicts with `mine`? */
static bool conflict(int me, int mine, int nprocs)
{
	for (int j = 0; j < nprocs; j++) {
		if (j == me)
			continue;
		int m = __atomic_load_n(&K->mode[j], __ATOMIC_SEQ_CST);
		if (m == 0 || (mine == 1 && m == 1))
			continue;
		/* A killed worker's mark stays until the parent clears it; the lock
		 * may only have let us in if that worker has ended. */
		if (!proc_ended(__atomic_load_n(&K->pid[j], __ATOMIC_SEQ_CST)))
			return true;
	}
	return false;
}

static void kill_error(int code)
{
	__atomic_store_n(&K->last_error, code, __ATOMIC_SEQ_CST);
	__atomic_fetch_add(&K->errors, 1, __ATOMIC_SEQ_CST);
}

/* A worker: random read and write sections (or mutex sections) until told
 * to stop, checking the invariant at each entry. Waits have 10 s timeouts:
 * a lock that is free must never make it time out. */
static int kill_worker(int me, int nprocs, bool use_mutex)
{
	uint64_t seed = (uint64_t)getpid() * 2654435761u + 1;
	while (!__atomic_load_n(&K->stop, __ATOMIC_SEQ_CST)) {
		bool write = use_mutex || t_rand(&seed) % 4 == 0;
		int rc = use_mutex ? sk_mutex_lock(&K->m, 10000000000LL)
			 : write   ? sk_rwlock_wrlock(&K->rw, 10000000000LL)
				   : sk_rwlock_rdlock(&K->rw, 10000000000LL);
		if (rc == SK_EOWNERDEAD && use_mutex)
			rc = sk_mutex_consistent(&K->m);
		if (rc && rc != SK_EOWNERDEAD) {
			kill_error(rc);
			return 1;
		}
		__atomic_store_n(&K->mode[me], write ? 2 : 1, __ATOMIC_SEQ_CST);
		if (conflict(me, write ? 2 : 1, nprocs))
			__atomic_fetch_add(&K->violations, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&K->entries, 1, __ATOMIC_SEQ_CST);
		for (volatile int spin = 0; spin < (int)(t_rand(&seed) % 2000); spin++)
			;
		__atomic_store_n(&K->mode[me], 0, __ATOMIC_SEQ_CST);
		rc = use_mutex ? sk_mutex_unlock(&K->m)
		     : write   ? sk_rwlock_wrunlock(&K->rw)
			       : sk_rwlock_rdunlock(&K->rw);
		if (rc) {
			kill_error(1000 + rc);
			return 2;
		}
	}
	return 0;
}

static pid_t start_worker(int me, int nprocs, bool use_mutex)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		__atomic_store_n(&K->pid[me], getpid(), __ATOMIC_SEQ_CST);
		_exit(kill_worker(me, nprocs, use_mutex));
	}
	__atomic_store_n(&K->pid[me], pid, __ATOMIC_SEQ_CST);
	return pid;
}

/* PROCS workers; ITER rounds (default `rounds`), each of which SIGKILLs a
 * random worker at a random moment and starts another. After every round:
 * no violation (a writer with a reader or another writer, or two mutex
 * holders), no error (a timeout on a lock that only dead processes held,
 * a lost hold, an unlock refused). */
static void kill_rounds(bool use_mutex, int rounds)
{
	K = mmap(NULL, sizeof *K, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(K != MAP_FAILED);
	memset(K, 0, sizeof *K);
	assert_int_equal(sk_rwlock_init(&K->rw), 0);
	assert_int_equal(sk_mutex_init(&K->m), 0);
	int nprocs = env_int("PROCS", 6);
	if (nprocs > KILL_MAXP)
		nprocs = KILL_MAXP;
	rounds = env_int("ITER", rounds);
	pid_t pids[KILL_MAXP];
	for (int i = 0; i < nprocs; i++)
		pids[i] = start_worker(i, nprocs, use_mutex);
	uint64_t seed = 7;
	int inside = 0;
	for (int round = 0; round < rounds; round++) {
		usleep((useconds_t)(t_rand(&seed) % 2000));
		int victim = (int)(t_rand(&seed) % (uint64_t)nprocs);
		kill(pids[victim], SIGKILL);
		int status;
		assert_int_equal(waitpid(pids[victim], &status, 0), pids[victim]);
		if (!WIFSIGNALED(status))
			fail_msg("round %d: worker exited with %d (error %lld)", round,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1, (long long)K->last_error);
		inside += __atomic_load_n(&K->mode[victim], __ATOMIC_SEQ_CST) != 0;
		__atomic_store_n(&K->mode[victim], 0, __ATOMIC_SEQ_CST);
		pids[victim] = start_worker(victim, nprocs, use_mutex);
		if (K->violations || K->errors)
			fail_msg("round %d: %lld violations, %lld errors (last %lld)", round, (long long)K->violations,
				 (long long)K->errors, (long long)K->last_error);
	}
	__atomic_store_n(&K->stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < nprocs; i++) {
		int status = reap_within(pids[i], 30000);
		t_assert_exit0(status);
	}
	assert_int_equal(K->violations, 0);
	assert_int_equal(K->errors, 0);
	/* Free at the end, and takeable at once (dead readers' holds dropped
	 * by this writer). */
	if (use_mutex) {
		int rc = sk_mutex_lock(&K->m, 1000000000);
		assert_true(rc == 0 || rc == SK_EOWNERDEAD);
		if (rc)
			assert_int_equal(sk_mutex_consistent(&K->m), 0);
		assert_int_equal(sk_mutex_unlock(&K->m), 0);
	} else {
		int rc = sk_rwlock_wrlock(&K->rw, 1000000000);
		assert_true(rc == 0 || rc == SK_EOWNERDEAD);
		assert_int_equal(sk_rwlock_wrunlock(&K->rw), 0);
		sk_lock_state st;
		assert_int_equal(sk_rwlock_state(&K->rw, &st), 0);
		assert_int_equal(st.readers, 0);
		assert_int_equal(st.held, 0);
	}
	print_message("    %d kill rounds, %d workers: %d kills inside a section, %lld entries, 0 violations\n", rounds,
		      nprocs, inside, (long long)K->entries);
	munmap(K, sizeof *K);
}

static void test_rwlock_sigkill_rounds(void **state)
{
	(void)state;
	kill_rounds(false, 300);
}

static void test_mutex_sigkill_rounds(void **state)
{
	(void)state;
	kill_rounds(true, 200);
}

/* ---- barrier: indices, breaking, reset, the action before release ---- */

static int barrier_party(void *arg)
{
	int64_t timeout = (int64_t)(intptr_t)arg;
	int rc = sk_barrier_wait(&S->bar, timeout);
	__atomic_fetch_add(&S->counter, 1, __ATOMIC_SEQ_CST);
	return rc == SK_EBROKEN ? 50 : rc == -ETIMEDOUT ? 51 : rc >= 0 ? rc : 52;
}

static int exit_code(int status)
{
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Waits (at most 5 s) until n parties have arrived in S->bar's round: a
 * party started a moment ago may not have run yet on a loaded machine. */
static void wait_arrived(int64_t n)
{
	int64_t t0 = t_now_ns();
	sk_lock_state st;
	for (;;) {
		assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
		if (st.value >= n)
			return;
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("%d parties never arrived", (int)n);
		usleep(1000);
	}
}

static void test_barrier_abort_reset_and_timeouts(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_barrier_init(&S->bar, 3), 0);
	assert_int_equal(sk_barrier_broken(&S->bar), 0);
	/* Abort: waiting parties and later ones get SK_EBROKEN until reset. */
	pid_t p[3];
	for (int i = 0; i < 2; i++)
		p[i] = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(2);
	sk_lock_state st;
	assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
	assert_int_equal(st.value, 2);
	assert_int_equal(sk_barrier_abort(&S->bar), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(exit_code(reap_within(p[i], 2000)), 50);
	assert_int_equal(sk_barrier_broken(&S->bar), 1);
	assert_int_equal(sk_barrier_wait(&S->bar, 1000000000), SK_EBROKEN);
	assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
	assert_int_equal(st.value, 0);
	/* Reset: usable again; a full round hands out 0, 1, 2. */
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	assert_int_equal(sk_barrier_broken(&S->bar), 0);
	for (int i = 0; i < 2; i++)
		p[i] = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(2);
	assert_int_equal(sk_barrier_wait(&S->bar, 5000000000LL), 2); /* the last arriver */
	int codes = 0;
	for (int i = 0; i < 2; i++)
		codes |= 1 << exit_code(reap_within(p[i], 2000));
	assert_int_equal(codes, 3); /* indices 0 and 1 */
	/* Reset while parties wait: they are broken out of it; the barrier works. */
	for (int i = 0; i < 2; i++)
		p[i] = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(2);
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(exit_code(reap_within(p[i], 2000)), 50);
	assert_int_equal(sk_barrier_broken(&S->bar), 0);
	/* A timeout breaks it for everyone, as threading.Barrier does. */
	p[0] = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(1);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_barrier_wait(&S->bar, 100000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 100000000);
	assert_int_equal(exit_code(reap_within(p[0], 2000)), 50);
	assert_int_equal(sk_barrier_broken(&S->bar), 1);
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	free_shared(S);
}

static void test_barrier_action_before_release(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_barrier_init(&S->bar, 3), 0);
	pid_t p[2];
	for (int round = 0; round < 2; round++) {
		S->counter = 0;
		for (int i = 0; i < 2; i++)
			p[i] = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
		wait_arrived(2);
		sk_barrier_ticket t;
		assert_int_equal(sk_barrier_arrive(&S->bar, SK_BARRIER_HOLD, 0, &t), 2);
		/* Held: nobody is released while the action runs. */
		usleep(50000);
		assert_int_equal(__atomic_load_n(&S->counter, __ATOMIC_SEQ_CST), 0);
		sk_lock_state st;
		assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
		assert_int_equal(st.value, 2);
		/* A new arrival waits for the held round to end. */
		sk_barrier_ticket t2;
		assert_int_equal(sk_barrier_arrive(&S->bar, 0, 10000000, &t2), -ETIMEDOUT);
		if (round == 0) {
			assert_int_equal(sk_barrier_release(&S->bar, &t), 0); /* the action succeeded */
			int codes = 0;
			for (int i = 0; i < 2; i++)
				codes |= 1 << exit_code(reap_within(p[i], 2000));
			assert_int_equal(codes, 3);
			assert_int_equal(sk_barrier_release(&S->bar, &t), SK_EBROKEN); /* that round is over */
		} else {
			assert_int_equal(sk_barrier_leave(&S->bar, &t, SK_BARRIER_BREAK), 0); /* it failed */
			for (int i = 0; i < 2; i++)
				assert_int_equal(exit_code(reap_within(p[i], 2000)), 50);
			assert_int_equal(sk_barrier_release(&S->bar, &t), SK_EBROKEN);
		}
	}
	/* Withdrawing from a round leaves it waiting for a full one. */
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	sk_barrier_ticket t;
	assert_int_equal(sk_barrier_arrive(&S->bar, 0, 0, &t), 0);
	assert_int_equal(sk_barrier_await(&S->bar, &t, 10000000), -ETIMEDOUT); /* not broken by this */
	assert_int_equal(sk_barrier_broken(&S->bar), 0);
	assert_int_equal(sk_barrier_leave(&S->bar, &t, 0), 0);
	sk_lock_state st;
	assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
	assert_int_equal(st.value, 0);
	assert_int_equal(sk_barrier_leave(&S->bar, NULL, 0), -EINVAL);
	assert_int_equal(sk_barrier_arrive(&S->bar, 0x80, 0, &t), -EINVAL);
	free_shared(S);
}

/* Killed parties: one that arrived still counts (the round completes); one
 * that never arrives, or a last arriver killed while holding the round,
 * leaves the others waiting only until their timeouts. */
static int hold_round_and_wait(void *arg)
{
	(void)arg;
	sk_barrier_ticket t;
	if (sk_barrier_arrive(&S->bar, SK_BARRIER_HOLD, -1, &t) != 2)
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static void test_barrier_killed_party(void **state)
{
	(void)state;
	S = new_shared();
	assert_int_equal(sk_barrier_init(&S->bar, 3), 0);
	pid_t a = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(1);
	kill_and_reap(a); /* it had arrived */
	pid_t b = t_spawn(barrier_party, (void *)(intptr_t)5000000000LL);
	wait_arrived(2);
	assert_int_equal(sk_barrier_wait(&S->bar, 5000000000LL), 2);
	assert_int_equal(exit_code(reap_within(b, 2000)), 1);
	/* Two wait; the third is killed before it arrives. */
	pid_t p[2];
	for (int i = 0; i < 2; i++)
		p[i] = t_spawn(barrier_party, (void *)(intptr_t)200000000);
	int64_t t0 = t_now_ns();
	for (int i = 0; i < 2; i++) {
		int c = exit_code(reap_within(p[i], 3000));
		assert_true(c == 50 || c == 51);
	}
	assert_true(t_now_ns() - t0 < 2000000000LL);
	assert_int_equal(sk_barrier_reset(&S->bar), 0);
	/* The last arriver holds the round and is killed in its action. */
	for (int i = 0; i < 2; i++)
		p[i] = t_spawn(barrier_party, (void *)(intptr_t)300000000);
	wait_arrived(2);
	S->ready = 0;
	pid_t h = t_spawn(hold_round_and_wait, NULL);
	wait_ready(S);
	kill_and_reap(h);
	for (int i = 0; i < 2; i++) {
		int c = exit_code(reap_within(p[i], 3000));
		assert_true(c == 50 || c == 51);
	}
	assert_int_equal(sk_barrier_broken(&S->bar), 1);
	free_shared(S);
}

/* ---- cond: the mutex comes back within the timeout ---- */

/* Takes the mutex as soon as the waiting parent releases it, then keeps it
 * (arg ms; 0: until killed). */
static int take_mutex_when_released(void *arg)
{
	int ms = (int)(intptr_t)arg;
	if (sk_mutex_lock(&S->m, 5000000000LL))
		return 1;
	__atomic_store_n(&S->ready, 1, __ATOMIC_SEQ_CST);
	if (!ms)
		for (;;)
			pause();
	usleep((useconds_t)ms * 1000);
	return sk_mutex_unlock(&S->m) ? 2 : 0;
}

static int kill_when_ready(void *arg)
{
	pid_t victim = (pid_t)(intptr_t)arg;
	while (!__atomic_load_n(&S->ready, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep(20000);
	return kill(victim, SIGKILL) ? 1 : 0;
}

static void test_cond_wait_takes_the_mutex_back_within_the_timeout(void **state)
{
	(void)state;
	S = new_shared();
	/* While we wait, another process takes the mutex for 2 s: the wait
	 * ends at its own deadline, without the mutex. */
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	pid_t c = t_spawn(take_mutex_when_released, (void *)(intptr_t)2000);
	int64_t t0 = t_now_ns();
	int rc = sk_cond_wait(&S->cond, &S->m, 200000000);
	int64_t took = t_now_ns() - t0;
	assert_int_equal(rc, SK_ENOTHELD);
	assert_true(took >= 200000000 && took < 1500000000LL);
	assert_int_equal(sk_mutex_held_by_me(&S->m), 0);
	t_assert_exit0(reap_within(c, 5000));

	/* The mutex's holder dies during a wait that times out: the time-out
	 * and the owner's death are two facts, both reported (two-phase). */
	assert_int_equal(sk_mutex_lock(&S->m, -1), 0);
	uint32_t tk;
	assert_int_equal(sk_cond_begin(&S->cond, &S->m, &tk), 0);
	S->ready = 0;
	c = t_spawn(hold_mutex, NULL);
	wait_ready(S);
	kill(c, SIGKILL);
	assert_int_equal(sk_cond_sleep(&S->cond, tk, 100000000), -ETIMEDOUT); /* not signalled */
	assert_int_equal(sk_mutex_lock(&S->m, 1000000000), SK_EOWNERDEAD);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	kill_and_reap(c);
	/* In one call: SK_EOWNERDEAD with the mutex held, within the timeout. */
	S->ready = 0;
	c = t_spawn(take_mutex_when_released, (void *)0);
	pid_t killer = t_spawn(kill_when_ready, (void *)(intptr_t)c);
	t0 = t_now_ns();
	assert_int_equal(sk_cond_wait(&S->cond, &S->m, 300000000), SK_EOWNERDEAD);
	assert_true(t_now_ns() - t0 < 1500000000LL);
	assert_int_equal(sk_mutex_held_by_me(&S->m), 1);
	assert_int_equal(sk_mutex_consistent(&S->m), 0);
	t_assert_exit0(reap_within(killer, 5000));
	kill_and_reap(c);
	/* Signalled before the sleep: seen. A zero timeout with a free mutex:
	 * -ETIMEDOUT, held. Not held at all: -EPERM, nothing done. */
	assert_int_equal(sk_cond_begin(&S->cond, &S->m, &tk), 0);
	assert_int_equal(sk_cond_signal(&S->cond), 0);
	assert_int_equal(sk_cond_sleep(&S->cond, tk, 0), 0);
	assert_int_equal(sk_mutex_lock(&S->m, 0), 0);
	assert_int_equal(sk_cond_wait(&S->cond, &S->m, 0), -ETIMEDOUT);
	assert_int_equal(sk_mutex_unlock(&S->m), 0);
	assert_int_equal(sk_cond_wait(&S->cond, &S->m, 0), -EPERM);
	free_shared(S);
}

static void test_new_error_codes_have_texts(void **state)
{
	(void)state;
	assert_string_not_equal(sk_strerror(SK_EBROKEN), "unknown error");
	assert_string_not_equal(sk_strerror(SK_ENOTHELD), "unknown error");
	assert_string_not_equal(sk_strerror(SK_EBROKEN), sk_strerror(SK_ENOTHELD));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex_basics),
		cmocka_unit_test(test_destroy_undoes_init),
		cmocka_unit_test(test_mutex_12_processes_exact),
		cmocka_unit_test(test_mutex_between_threads),
		cmocka_unit_test(test_atomic_fetch_add_12_processes_exact),
		cmocka_unit_test(test_mutex_owner_killed_200_rounds),
		cmocka_unit_test(test_mutex_unrepaired_becomes_unusable),
		cmocka_unit_test(test_mutex_hostile_peer_rewrites_every_byte),
		cmocka_unit_test(test_mutex_random_scribbles),
		cmocka_unit_test(test_primitives_random_scribbles),
		cmocka_unit_test(test_mutex_owner_dies_between_cas_and_record),
		cmocka_unit_test(test_mutex_reused_tid_is_a_dead_owner),
		cmocka_unit_test(test_mutex_zombie_holder_wakes_a_blocked_waiter),
		cmocka_unit_test(test_mutex_killed_waiter),
		cmocka_unit_test(test_mutex_judging_sleeper_killed),
		cmocka_unit_test(test_mutex_long_wait_backs_off),
		cmocka_unit_test(test_mutex_pthread_exit_while_holding),
		cmocka_unit_test(test_mutex_holder_in_another_pid_namespace),
		cmocka_unit_test(test_rwlock_writer_killed_200_rounds),
		cmocka_unit_test(test_rwlock_dead_reader_does_not_block_writers),
		cmocka_unit_test(test_rwlock_invariant_under_stress),
		cmocka_unit_test(test_barrier_12_processes_1000_rounds),
		cmocka_unit_test(test_semaphore_never_negative),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_signals_do_not_cut_waits_short),
		cmocka_unit_test(test_event_cond_barrier_across_processes),
		cmocka_unit_test(test_named_primitives_and_bad_input),
		cmocka_unit_test(test_rwlock_sigkill_rounds),
		cmocka_unit_test(test_mutex_sigkill_rounds),
		cmocka_unit_test(test_barrier_abort_reset_and_timeouts),
		cmocka_unit_test(test_barrier_action_before_release),
		cmocka_unit_test(test_barrier_killed_party),
		cmocka_unit_test(test_cond_wait_takes_the_mutex_back_within_the_timeout),
		cmocka_unit_test(test_new_error_codes_have_texts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
