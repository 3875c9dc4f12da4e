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
#include <sys/mman.h>
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

	/* A party that times out withdraws; the barrier goes on working. */
	assert_int_equal(sk_barrier_init(&S->bar, 2), 0);
	t0 = t_now_ns();
	assert_int_equal(sk_barrier_wait(&S->bar, T), -ETIMEDOUT);
	assert_timed(t0, T);
	sk_lock_state st;
	assert_int_equal(sk_barrier_state(&S->bar, &st), 0);
	assert_int_equal(st.value, 0);
	assert_int_equal(st.limit, 2);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutex_basics),
		cmocka_unit_test(test_mutex_12_processes_exact),
		cmocka_unit_test(test_mutex_between_threads),
		cmocka_unit_test(test_atomic_fetch_add_12_processes_exact),
		cmocka_unit_test(test_mutex_owner_killed_200_rounds),
		cmocka_unit_test(test_mutex_unrepaired_becomes_unusable),
		cmocka_unit_test(test_rwlock_writer_killed_200_rounds),
		cmocka_unit_test(test_rwlock_dead_reader_does_not_block_writers),
		cmocka_unit_test(test_rwlock_invariant_under_stress),
		cmocka_unit_test(test_barrier_12_processes_1000_rounds),
		cmocka_unit_test(test_semaphore_never_negative),
		cmocka_unit_test(test_timeouts),
		cmocka_unit_test(test_signals_do_not_cut_waits_short),
		cmocka_unit_test(test_event_cond_barrier_across_processes),
		cmocka_unit_test(test_named_primitives_and_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
