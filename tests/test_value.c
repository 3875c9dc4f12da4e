/*
 * test_value.c: shared values (locked and raw), arrays carrying a lock, and
 * atomic element operations on integer arrays, across processes; a value's
 * lock holder killed 200 times.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char vname[128];

static void test_value_every_dtype(void **state)
{
	(void)state;
	for (int d = SK_BOOL; d <= SK_FLOAT64; d++) {
		for (int raw = 0; raw <= 1; raw++) {
			snprintf(vname, sizeof vname, "%s", t_name("val"));
			sk_create_opts o = { .flags = raw ? SK_CREATE_RAW : 0 };
			sk_value *v, *w;
			assert_int_equal(sk_value_create(vname, (sk_dtype)d, &o, &v), 0);
			assert_int_equal(sk_value_dtype(v), d);
			assert_string_equal(sk_value_name(v), vname);
			assert_true(raw ? sk_value_mutex(v) == NULL : sk_value_mutex(v) != NULL);
			uint64_t out = 77, in = 1;
			assert_int_equal(sk_value_get(v, &out), 0);
			assert_int_equal(out & 0xff, 0);
			assert_int_equal(sk_value_set(v, &in), 0);
			assert_int_equal(sk_value_open(vname, SK_RDWR, &w), 0);
			out = 0;
			assert_int_equal(sk_value_get(w, &out), 0);
			assert_memory_equal(&out, &in, sk_dtype_size((sk_dtype)d));
			sk_segment_info info;
			assert_int_equal(sk_segment_stat(vname, &info), 0);
			assert_int_equal(info.kind, SK_KIND_VALUE);
			assert_int_equal(info.dtype, d);
			assert_int_equal(info.locked, !raw);
			sk_value_close(w);
			sk_value_close(v);
			sk_segment_unlink(vname);
		}
	}
	assert_int_equal(sk_value_close(NULL), 0);
}

static void test_value_operations(void **state)
{
	(void)state;
	snprintf(vname, sizeof vname, "%s", t_name("ops"));
	sk_value *v;
	assert_int_equal(sk_value_create(vname, SK_INT32, NULL, &v), 0);
	int32_t x = 40, d = 2, old = 0, e, n;
	assert_int_equal(sk_value_set(v, &x), 0);
	assert_int_equal(sk_value_add(v, &d, &old), 0);
	assert_int_equal(old, 40);
	assert_int_equal(sk_value_get(v, &x), 0);
	assert_int_equal(x, 42);
	e = 41, n = 7;
	assert_int_equal(sk_value_cas(v, &e, &n), 0);
	assert_int_equal(e, 42);
	assert_int_equal(sk_value_cas(v, &e, &n), 1);
	assert_int_equal(sk_value_get(v, &x), 0);
	assert_int_equal(x, 7);
	/* Compound update under the lock. */
	assert_int_equal(sk_value_lock(v, -1), 0);
	*(int32_t *)sk_value_ptr(v) *= 6;
	assert_int_equal(sk_value_unlock(v), 0);
	assert_int_equal(sk_value_get(v, &x), 0);
	assert_int_equal(x, 42);
	assert_int_equal(sk_value_consistent(v), -EINVAL);
	/* Read-only handles: a locked value needs to write its lock. */
	sk_value *r;
	assert_int_equal(sk_value_open(vname, SK_RDONLY, &r), 0);
	assert_int_equal(sk_value_get(r, &x), SK_EREADONLY);
	assert_int_equal(sk_value_set(r, &x), SK_EREADONLY);
	assert_int_equal(sk_value_lock(r, 0), SK_EREADONLY);
	sk_value_close(r);
	sk_value_close(v);
	sk_segment_unlink(vname);

	/* Raw float: lock-free add; lock calls refused. */
	sk_create_opts raw = { .flags = SK_CREATE_RAW };
	assert_int_equal(sk_value_create(vname, SK_FLOAT64, &raw, &v), 0);
	double f = 1.5, df = 0.25, fold;
	assert_int_equal(sk_value_set(v, &f), 0);
	assert_int_equal(sk_value_add(v, &df, &fold), 0);
	assert_true(fold == 1.5);
	assert_int_equal(sk_value_get(v, &f), 0);
	assert_true(f == 1.75);
	assert_int_equal(sk_value_lock(v, 0), -EINVAL);
	assert_int_equal(sk_value_unlock(v), -EINVAL);
	assert_int_equal(sk_value_open(vname, SK_RDONLY, &r), 0);
	assert_int_equal(sk_value_get(r, &f), 0); /* raw values read without writing */
	assert_true(f == 1.75);
	sk_value_close(r);
	sk_value_close(v);
	sk_segment_unlink(vname);

	/* Bad input. */
	bool b = true;
	assert_int_equal(sk_value_create(vname, SK_BOOL, NULL, &v), 0);
	assert_int_equal(sk_value_add(v, &b, NULL), -EINVAL);
	sk_value_close(v);
	sk_segment_unlink(vname);
	assert_int_equal(sk_value_create(vname, (sk_dtype)0, NULL, &v), -EINVAL);
	sk_create_opts locked = { .flags = SK_CREATE_LOCKED };
	assert_int_equal(sk_value_create(vname, SK_INT8, &locked, &v), -EINVAL);
	uint64_t shape = 3;
	sk_array *a;
	assert_int_equal(sk_array_create(vname, SK_INT8, 1, &shape, NULL, &a), 0);
	assert_int_equal(sk_value_open(vname, SK_RDWR, &v), SK_EKIND);
	sk_array_close(a);
	sk_segment_unlink(vname);
}

enum { PROCS = 12, ADDS = 100000 };

static int add_many(int i, void *arg)
{
	(void)i, (void)arg;
	sk_value *v;
	if (sk_value_open(vname, SK_RDWR, &v))
		return 1;
	int64_t one = 1;
	for (int k = 0; k < ADDS; k++)
		if (sk_value_add(v, &one, NULL))
			return 2;
	/* And a compound update under the lock, where there is one. */
	if (sk_value_mutex(v)) {
		if (sk_value_lock(v, -1))
			return 3;
		*(int64_t *)sk_value_ptr(v) += 1000;
		if (sk_value_unlock(v))
			return 4;
	}
	sk_value_close(v);
	return 0;
}

static void test_value_12_processes_exact(void **state)
{
	(void)state;
	for (int raw = 0; raw <= 1; raw++) {
		snprintf(vname, sizeof vname, "%s", t_name("many"));
		sk_create_opts o = { .flags = raw ? SK_CREATE_RAW : 0 };
		sk_value *v;
		assert_int_equal(sk_value_create(vname, SK_INT64, &o, &v), 0);
		t_fork_many(PROCS, add_many, NULL);
		int64_t x;
		assert_int_equal(sk_value_get(v, &x), 0);
		assert_int_equal(x, (int64_t)PROCS * ADDS + (raw ? 0 : PROCS * 1000));
		sk_value_close(v);
		sk_segment_unlink(vname);
	}
}

static int hold_value_lock(void *arg)
{
	sk_value *v;
	if (sk_value_open(vname, SK_RDWR, &v))
		return 1;
	int rc = sk_value_lock(v, -1);
	if (rc && rc != SK_EOWNERDEAD)
		return 2;
	*(int64_t *)sk_value_ptr(v) = -1; /* half-done compound update */
	__atomic_store_n((int32_t *)arg, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static void test_value_lock_holder_killed_200_rounds(void **state)
{
	(void)state;
	snprintf(vname, sizeof vname, "%s", t_name("death"));
	sk_value *v;
	assert_int_equal(sk_value_create(vname, SK_INT64, NULL, &v), 0);
	/* A flag in a raw segment the children inherit. */
	sk_segment *flag;
	assert_int_equal(sk_segment_create(NULL, 8, NULL, &flag), 0);
	int32_t *f = sk_segment_data(flag);
	for (int round = 0; round < 200; round++) {
		*f = 0;
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0)
			_exit(hold_value_lock(f));
		int64_t t0 = t_now_ns();
		while (!__atomic_load_n(f, __ATOMIC_SEQ_CST)) {
			if (t_now_ns() - t0 > 5000000000LL)
				fail_msg("child never took the lock");
			usleep(100);
		}
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		int64_t x = round;
		if (round % 2) {
			/* An operation that takes the lock is told, and does its work. */
			assert_int_equal(sk_value_set(v, &x), SK_EOWNERDEAD);
		} else {
			assert_int_equal(sk_value_lock(v, 1000000000), SK_EOWNERDEAD);
			*(int64_t *)sk_value_ptr(v) = x; /* repair */
			assert_int_equal(sk_value_consistent(v), 0);
			assert_int_equal(sk_value_unlock(v), 0);
		}
		assert_int_equal(sk_value_get(v, &x), 0);
		assert_int_equal(x, round);
	}
	sk_segment_unlink(sk_segment_name(flag));
	sk_segment_close(flag);
	sk_value_close(v);
	sk_segment_unlink(vname);
}

/* Starts a child holding the value's lock (it writes -1 into the value, a
 * half-done update) and waits until it does. */
static pid_t start_holder(int32_t *flag)
{
	*flag = 0;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(hold_value_lock(flag));
	int64_t t0 = t_now_ns();
	while (!__atomic_load_n(flag, __ATOMIC_SEQ_CST)) {
		if (t_now_ns() - t0 > 5000000000LL)
			fail_msg("child never took the lock");
		usleep(100);
	}
	return pid;
}

static void kill_reap(pid_t pid)
{
	kill(pid, SIGKILL);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/* After a holder died, cas reports both the swap and the death, so a retry
 * loop applies its update exactly once. */
static void test_value_cas_after_owner_death(void **state)
{
	(void)state;
	snprintf(vname, sizeof vname, "%s", t_name("casdeath"));
	sk_value *v;
	assert_int_equal(sk_value_create(vname, SK_INT64, NULL, &v), 0);
	sk_segment *flag;
	assert_int_equal(sk_segment_create(NULL, 8, NULL, &flag), 0);
	int32_t *f = sk_segment_data(flag);
	for (int round = 0; round < 2; round++) {
		kill_reap(start_holder(f)); /* the value is -1 now */
		int64_t e = -1, d;
		int rc, calls = 0, died = 0;
		if (round == 0) {
			/* The usual increment loop. */
			do {
				d = e + 1;
				rc = sk_value_cas(v, &e, &d);
				assert_true(rc >= 0);
				died += (rc & SK_VALUE_OWNERDEAD) != 0;
				calls++;
			} while (!(rc & SK_VALUE_SWAPPED));
			assert_int_equal(calls, 1);
			assert_int_equal(rc, SK_VALUE_SWAPPED | SK_VALUE_OWNERDEAD);
		} else {
			/* A cas that does not swap: the current value comes back, and the death. */
			e = 5, d = 6;
			assert_int_equal(sk_value_cas_timed(v, &e, &d, 1000000000), SK_VALUE_OWNERDEAD);
			assert_int_equal(e, -1);
			died = 1;
		}
		assert_int_equal(died, 1);
		int64_t x;
		assert_int_equal(sk_value_get(v, &x), 0); /* the lock was repaired */
		assert_int_equal(x, round == 0 ? 0 : -1);
	}
	sk_segment_unlink(sk_segment_name(flag));
	sk_segment_close(flag);
	sk_value_close(v);
	sk_segment_unlink(vname);
}

static void assert_took(int64_t t0, int64_t at_least, int64_t below)
{
	int64_t took = t_now_ns() - t0;
	if (took < at_least || took >= below)
		fail_msg("took %lld ms", (long long)(took / 1000000));
}

/* Timed get/set/add/cas: a live holder makes them time out having done
 * nothing; a dead one is reported; raw values never wait. */
static void test_value_timed_operations(void **state)
{
	(void)state;
	snprintf(vname, sizeof vname, "%s", t_name("timed"));
	sk_value *v;
	assert_int_equal(sk_value_create(vname, SK_INT64, NULL, &v), 0);
	sk_segment *flag;
	assert_int_equal(sk_segment_create(NULL, 8, NULL, &flag), 0);
	int32_t *f = sk_segment_data(flag);
	pid_t holder = start_holder(f);
	const int64_t T = 100000000;
	int64_t x = 7, old = 0, e = -1, t0 = t_now_ns();
	assert_int_equal(sk_value_get_timed(v, &x, T), -ETIMEDOUT);
	assert_took(t0, T, 2 * T + 1000000000LL);
	assert_int_equal(x, 7); /* untouched */
	t0 = t_now_ns();
	assert_int_equal(sk_value_set_timed(v, &x, T), -ETIMEDOUT);
	assert_took(t0, T, 2 * T + 1000000000LL);
	assert_int_equal(sk_value_add_timed(v, &x, &old, 0), -ETIMEDOUT);
	assert_int_equal(sk_value_cas_timed(v, &e, &x, 0), -ETIMEDOUT);
	assert_int_equal(e, -1);
	assert_int_equal(*(int64_t *)sk_value_ptr(v), -1); /* none of them wrote */
	kill_reap(holder);
	assert_int_equal(sk_value_add_timed(v, &x, &old, T), SK_EOWNERDEAD);
	assert_int_equal(old, -1);
	assert_int_equal(sk_value_get_timed(v, &x, 0), 0);
	assert_int_equal(x, 6);
	assert_int_equal(sk_value_set_timed(v, &x, -1), 0);
	sk_segment_unlink(sk_segment_name(flag));
	sk_segment_close(flag);
	sk_value_close(v);
	sk_segment_unlink(vname);

	/* Raw: no lock, no waiting, whatever the timeout. */
	sk_create_opts raw = { .flags = SK_CREATE_RAW };
	assert_int_equal(sk_value_create(vname, SK_INT32, &raw, &v), 0);
	int32_t a = 3, b = 4, c = 0;
	assert_int_equal(sk_value_set_timed(v, &a, 0), 0);
	assert_int_equal(sk_value_add_timed(v, &a, &c, 0), 0);
	assert_int_equal(c, 3);
	assert_int_equal(sk_value_cas_timed(v, &c, &b, 0), 0); /* 6 != 3 */
	assert_int_equal(c, 6);
	assert_int_equal(sk_value_cas_timed(v, &c, &b, 0), SK_VALUE_SWAPPED);
	assert_int_equal(sk_value_get_timed(v, &c, 0), 0);
	assert_int_equal(c, 4);
	sk_value_close(v);
	sk_segment_unlink(vname);
}

static void test_locked_array(void **state)
{
	(void)state;
	const char *name = t_name("larr");
	uint64_t shape[2] = { 4, 4 };
	sk_create_opts o = { .flags = SK_CREATE_LOCKED };
	sk_array *a, *b, *r, *plain;
	assert_int_equal(sk_array_create(name, SK_FLOAT64, 2, shape, &o, &a), 0);
	assert_non_null(sk_array_mutex(a));
	assert_int_equal(sk_array_lock(a, -1), 0);
	assert_int_equal(sk_array_open(name, SK_RDWR, &b), 0);
	assert_ptr_not_equal(sk_array_mutex(b), NULL);
	sk_lock_state st;
	assert_int_equal(sk_mutex_state(sk_array_mutex(b), &st), 0);
	assert_int_equal(st.held, 1);
	assert_int_equal(st.owner_pid, getpid());
	assert_int_equal(sk_array_unlock(a), 0);
	assert_int_equal(sk_array_lock(b, 0), 0);
	assert_int_equal(sk_array_unlock(b), 0);
	assert_int_equal(sk_array_open(name, SK_RDONLY, &r), 0);
	assert_int_equal(sk_array_lock(r, 0), SK_EREADONLY);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.locked, 1);
	sk_array_close(r);
	sk_array_close(b);
	sk_array_close(a);
	sk_segment_unlink(name);
	assert_int_equal(sk_array_create(name, SK_INT8, 2, shape, NULL, &plain), 0);
	assert_null(sk_array_mutex(plain));
	assert_int_equal(sk_array_lock(plain, 0), -EINVAL);
	assert_int_equal(sk_array_unlock(plain), -EINVAL);
	sk_array_close(plain);
	sk_segment_unlink(name);
	sk_create_opts rawopt = { .flags = SK_CREATE_RAW };
	assert_int_equal(sk_array_create(name, SK_INT8, 2, shape, &rawopt, &plain), -EINVAL);
}

static void test_array_atomics_every_integer_dtype(void **state)
{
	(void)state;
	for (int d = SK_INT8; d <= SK_UINT64; d++) {
		const char *name = t_name("atom");
		uint64_t n = 5;
		sk_array *a;
		assert_int_equal(sk_array_create(name, (sk_dtype)d, 1, &n, NULL, &a), 0);
		bool is_signed = d <= SK_INT64;
		int64_t old, v;
		assert_int_equal(sk_array_atomic_store(a, 2, 5), 0);
		assert_int_equal(sk_array_fetch_add(a, 2, 3, &old), 0);
		assert_int_equal(old, 5);
		assert_int_equal(sk_array_atomic_load(a, 2, &v), 0);
		assert_int_equal(v, 8);
		assert_int_equal(sk_array_fetch_or(a, 2, 0x11, &old), 0);
		assert_int_equal(old, 8);
		assert_int_equal(sk_array_fetch_and(a, 2, 0x18, &old), 0);
		assert_int_equal(old, 0x19);
		assert_int_equal(sk_array_atomic_exchange(a, 2, 100, &old), 0);
		assert_int_equal(old, 0x18);
		int64_t e = 99;
		assert_int_equal(sk_array_atomic_cas(a, 2, &e, 1), 0);
		assert_int_equal(e, 100);
		assert_int_equal(sk_array_atomic_cas(a, 2, &e, 1), 1);
		/* -1 is all ones: signed types read it back as -1, unsigned as their maximum. */
		assert_int_equal(sk_array_atomic_store(a, 4, -1), 0);
		assert_int_equal(sk_array_atomic_load(a, 4, &v), 0);
		size_t sz = sk_dtype_size((sk_dtype)d);
		int64_t want = is_signed || sz == 8 ? -1 : (int64_t)((UINT64_C(1) << (8 * sz)) - 1);
		assert_int_equal(v, want);
		e = -1; /* matches the all-ones element of any width */
		assert_int_equal(sk_array_atomic_cas(a, 4, &e, 0), 1);
		assert_int_equal(sk_array_fetch_add(a, 0, 1, NULL), 0); /* old may be NULL */
		assert_int_equal(sk_array_atomic_load(a, 5, &v), -ERANGE);
		assert_int_equal(sk_array_fetch_add(a, 5, 1, NULL), -ERANGE);
		sk_array *r;
		assert_int_equal(sk_array_open(name, SK_RDONLY, &r), 0);
		assert_int_equal(sk_array_atomic_load(r, 2, &v), 0);
		assert_int_equal(v, 1);
		assert_int_equal(sk_array_atomic_store(r, 2, 1), SK_EREADONLY);
		assert_int_equal(sk_array_fetch_add(r, 2, 1, NULL), SK_EREADONLY);
		sk_array_close(r);
		sk_array_close(a);
		sk_segment_unlink(name);
	}
	int types[] = { SK_BOOL, SK_FLOAT32, SK_FLOAT64 };
	for (int k = 0; k < 3; k++) {
		const char *name = t_name("atomf");
		uint64_t n = 2;
		sk_array *a;
		int64_t v;
		assert_int_equal(sk_array_create(name, (sk_dtype)types[k], 1, &n, NULL, &a), 0);
		assert_int_equal(sk_array_atomic_load(a, 0, &v), SK_ETYPE);
		assert_int_equal(sk_array_fetch_add(a, 0, 1, NULL), SK_ETYPE);
		sk_array_close(a);
		sk_segment_unlink(name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_every_dtype),
		cmocka_unit_test(test_value_operations),
		cmocka_unit_test(test_value_12_processes_exact),
		cmocka_unit_test(test_value_lock_holder_killed_200_rounds),
		cmocka_unit_test(test_value_cas_after_owner_death),
		cmocka_unit_test(test_value_timed_operations),
		cmocka_unit_test(test_locked_array),
		cmocka_unit_test(test_array_atomics_every_integer_dtype),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
