/*
 * test_pool.c: the worker pool: results against a single-process
 * computation, both schedules, uneven chunk costs, failures of every kind
 * (error return, SIGSEGV, SIGKILL, abort, exit, timeout) named precisely and
 * recovered from, workers dying with their parent, threads refused.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct sums {
	uint64_t sum;    /* of i * i mod 2^64 */
	uint64_t count;  /* indices seen */
	uint64_t chunks; /* chunks run */
} sums;

static int sum_squares(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	sums *r = ctx->result;
	for (uint64_t i = b; i < e; i++)
		r->sum += i * i;
	r->count += e - b;
	r->chunks++;
	return 0;
}

static void add_sums(void *acc, const void *slot, int worker)
{
	(void)worker;
	sums *a = acc;
	const sums *s = slot;
	a->sum += s->sum;
	a->count += s->count;
	a->chunks += s->chunks;
}

static uint64_t progress_calls, progress_last_done, progress_last_total;

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	(void)arg;
	progress_calls++;
	progress_last_done = done;
	progress_last_total = total;
}

static void test_results_match_single_process(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(4, NULL, &p), 0);
	assert_int_equal(sk_pool_size(p), 4);
	for (int w = 0; w < 4; w++) {
		assert_true(sk_pool_pid(p, w) > 0);
		assert_non_null(sk_pool_result(p, w));
	}
	assert_int_equal(sk_pool_pid(p, 4), -1);
	assert_null(sk_pool_result(p, -1));
	struct {
		uint64_t begin, end, chunk;
		int schedule;
	} cases[] = { { 0, 1000000, 0, SK_POOL_DYNAMIC },  { 0, 1000000, 0, SK_POOL_STATIC },
		      { 5, 77777, 1000, SK_POOL_DYNAMIC }, { 5, 77777, 999, SK_POOL_STATIC },
		      { 3, 4, 0, SK_POOL_DYNAMIC },        { 0, 3, 1, SK_POOL_STATIC },
		      { 10, 10, 0, SK_POOL_DYNAMIC },      { 0, 100, 1000, SK_POOL_STATIC } };
	/* Many jobs on the same workers. */
	for (int round = 0; round < 25; round++) {
		for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
			sums got = { 0 }, want = { 0 };
			for (uint64_t i = cases[k].begin; i < cases[k].end; i++)
				want.sum += i * i;
			want.count = cases[k].end - cases[k].begin;
			sk_pool_job job = { .fn = sum_squares,
					    .begin = cases[k].begin,
					    .end = cases[k].end,
					    .chunk = cases[k].chunk,
					    .schedule = cases[k].schedule,
					    .reduce = add_sums,
					    .reduce_acc = &got,
					    .progress = on_progress };
			progress_calls = 0;
			assert_int_equal(sk_pool_run(p, &job, NULL), 0);
			assert_int_equal(got.sum, want.sum);
			assert_int_equal(got.count, want.count);
			/* Results stay readable after the run. */
			sums again = { 0 };
			for (int w = 0; w < 4; w++)
				add_sums(&again, sk_pool_result(p, w), w);
			assert_int_equal(again.sum, want.sum);
			assert_true(progress_calls >= 1);
			assert_int_equal(progress_last_done, progress_last_total);
			assert_int_equal(progress_last_total, got.chunks);
		}
	}
	assert_int_equal(sk_pool_close(p), 0);
}

typedef struct arg_block {
	uint64_t magic;
	char text[100];
	int64_t *shared; /* points into an array mapped before the pool started */
} arg_block;

static int use_arg(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	const arg_block *a = ctx->arg;
	if (!a || a->magic != 0xfeedface || strcmp(a->text, "copied into shared memory"))
		return -EINVAL;
	for (uint64_t i = b; i < e; i++)
		a->shared[i] = (int64_t)i * 2;
	return 0;
}

typedef struct named_arg {
	char name[64];
} named_arg;

static int open_by_name_and_fill(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	const named_arg *a = ctx->arg;
	sk_array *arr;
	int rc = sk_array_open_as(a->name, SK_RDWR, SK_INT32, 1, NULL, &arr);
	if (rc)
		return rc;
	int32_t *d = sk_array_data(arr);
	for (uint64_t i = b; i < e; i++)
		d[i] = (int32_t)i + 1;
	sk_array_close(arr);
	return 0;
}

static void test_inherited_and_named_segments(void **state)
{
	(void)state;
	const char *name = t_name("poolarr");
	uint64_t n = 100000;
	sk_array *a;
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, NULL, &a), 0);
	sk_pool *p;
	assert_int_equal(sk_pool_create(3, NULL, &p), 0);
	arg_block arg = { .magic = 0xfeedface, .shared = sk_array_data(a) };
	strcpy(arg.text, "copied into shared memory");
	sk_pool_job job = { .fn = use_arg, .arg = &arg, .arg_size = sizeof arg, .begin = 0, .end = n };
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	int64_t *d = sk_array_data(a);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(d[i], (int64_t)i * 2);

	/* A segment made after the pool started: the workers open it by name. */
	const char *later = t_name("poollater");
	sk_array *b;
	assert_int_equal(sk_array_create(later, SK_INT32, 1, &n, NULL, &b), 0);
	named_arg na;
	snprintf(na.name, sizeof na.name, "%s", later);
	sk_pool_job job2 = { .fn = open_by_name_and_fill, .arg = &na, .arg_size = sizeof na, .end = n, .chunk = 5000 };
	assert_int_equal(sk_pool_run(p, &job2, NULL), 0);
	int32_t *e = sk_array_data(b);
	for (uint64_t i = 0; i < n; i++)
		assert_int_equal(e[i], (int32_t)i + 1);
	sk_pool_close(p);
	sk_array_close(a);
	sk_array_close(b);
	sk_segment_unlink(name);
	sk_segment_unlink(later);
}

typedef struct per_worker {
	uint64_t chunks;
} per_worker;

static int slow_worker_zero(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	if (ctx->worker == 0) {
		struct timespec ts = { 0, 300 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	((per_worker *)ctx->result)->chunks++;
	return 0;
}

static void test_dynamic_schedule_balances_uneven_chunks(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(4, NULL, &p), 0);
	sk_pool_job job = { .fn = slow_worker_zero, .begin = 0, .end = 40, .chunk = 1, .schedule = SK_POOL_DYNAMIC };
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	uint64_t total = 0;
	for (int w = 0; w < 4; w++)
		total += ((per_worker *)sk_pool_result(p, w))->chunks;
	assert_int_equal(total, 40);
	/* While worker 0 sleeps on one chunk the others take the rest. */
	assert_true(((per_worker *)sk_pool_result(p, 0))->chunks <= 3);
	job.schedule = SK_POOL_STATIC;
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	for (int w = 0; w < 4; w++)
		assert_int_equal(((per_worker *)sk_pool_result(p, w))->chunks, 10);
	sk_pool_close(p);
}

enum { BAD_INDEX = 7777 };

static int fail_at(const sk_pool_ctx *ctx, uint64_t b, uint64_t e, int how)
{
	(void)ctx;
	if (BAD_INDEX < b || BAD_INDEX >= e)
		return 0;
	switch (how) {
	case 0: return -EIO;
	case 1:
		signal(SIGSEGV, SIG_DFL);
		*(volatile int *)NULL = 1;
		break;
	case 2: kill(getpid(), SIGKILL); break;
	case 3: signal(SIGABRT, SIG_DFL); abort();
	case 4: exit(3);
	case 5: pause(); break;
	}
	return 0;
}

static int fail_error(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 0);
}
static int fail_segv(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 1);
}
static int fail_kill(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 2);
}
static int fail_abort(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 3);
}
static int fail_exit(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 4);
}
static int fail_hang(const sk_pool_ctx *c, uint64_t b, uint64_t e)
{
	return fail_at(c, b, e, 5);
}

static void test_failures_are_named_and_recovered(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(3, NULL, &p), 0);
	struct {
		sk_pool_fn fn;
		int sig, exit_code, fn_rc, timed_out;
		const char *words;
	} cases[] = {
		{ fail_error, 0, -1, -EIO, 0, "job function returned -5" },
		{ fail_segv, SIGSEGV, -1, 0, 0, "killed by signal 11 (SEGV)" },
		{ fail_kill, SIGKILL, -1, 0, 0, "killed by signal 9 (KILL)" },
		{ fail_abort, SIGABRT, -1, 0, 0, "killed by signal 6 (ABRT)" },
		{ fail_exit, 0, 3, 0, 0, "exited with code 3" },
		{ fail_hang, SIGKILL, -1, 0, 1, "killed at the job's timeout" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		for (int schedule = 0; schedule <= 1; schedule++) {
			pid_t before[3];
			for (int w = 0; w < 3; w++)
				before[w] = sk_pool_pid(p, w);
			sk_pool_failure f;
			memset(&f, 0xff, sizeof f);
			sk_pool_job job = { .fn = cases[k].fn,
					    .end = 20000,
					    .chunk = 1000,
					    .schedule = schedule,
					    .timeout_ns = cases[k].timed_out ? 300000000 : 0 };
			assert_int_equal(sk_pool_run(p, &job, &f), SK_EWORKER);
			assert_true(f.worker >= 0 && f.worker < 3);
			assert_int_equal(f.pid, before[f.worker]);
			assert_int_equal(f.has_chunk, 1);
			assert_int_equal(f.chunk_begin, 7000);
			assert_int_equal(f.chunk_end, 8000);
			assert_int_equal(f.signal, cases[k].sig);
			assert_int_equal(f.exit_code, cases[k].exit_code);
			assert_int_equal(f.fn_rc, cases[k].fn_rc);
			assert_int_equal(f.timed_out, cases[k].timed_out);
			if (!strstr(f.message, cases[k].words) || !strstr(f.message, "chunk [7000, 8000)"))
				fail_msg("unexpected message: %s", f.message);
			char who[32];
			snprintf(who, sizeof who, "worker %d (pid %d)", f.worker, (int)f.pid);
			assert_non_null(strstr(f.message, who));
			/* A dead worker was replaced; an erring one was not. */
			if (cases[k].fn_rc)
				assert_int_equal(sk_pool_pid(p, f.worker), before[f.worker]);
			else
				assert_int_not_equal(sk_pool_pid(p, f.worker), before[f.worker]);
			/* The pool still works. */
			sums got = { 0 };
			sk_pool_job ok = { .fn = sum_squares, .end = 1000, .reduce = add_sums, .reduce_acc = &got };
			assert_int_equal(sk_pool_run(p, &ok, NULL), 0);
			assert_int_equal(got.count, 1000);
		}
	}
	assert_int_equal(sk_pool_kill(p), 0);
}

static int trivial(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)ctx, (void)b, (void)e;
	return 0;
}

static void test_idle_worker_killed_is_replaced(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(2, NULL, &p), 0);
	pid_t victim = sk_pool_pid(p, 1);
	assert_int_equal(kill(victim, SIGKILL), 0);
	/* Until it has died (a zombie of the pool's): a worker still dying when
	 * the job starts is a death during the job (SK_EWORKER), not this case.
	 * 50 ms was not always enough on a loaded machine. */
	int64_t t0 = t_now_ns();
	while (!t_is_zombie_or_gone(victim)) {
		assert_true(t_now_ns() - t0 < 10000000000LL);
		usleep(1000);
	}
	sk_pool_job job = { .fn = trivial, .end = 100 };
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	assert_int_not_equal(sk_pool_pid(p, 1), victim);
	assert_int_equal(kill(victim, 0), -1); /* reaped, not a zombie */
	sk_pool_close(p);
}

/* close and kill. */
static void test_close_and_kill_leave_no_process(void **state)
{
	(void)state;
	for (int mode = 0; mode < 2; mode++) {
		sk_pool *p;
		assert_int_equal(sk_pool_create(5, NULL, &p), 0);
		pid_t pids[5];
		for (int w = 0; w < 5; w++)
			pids[w] = sk_pool_pid(p, w);
		sk_pool_job job = { .fn = trivial, .end = 10 };
		assert_int_equal(sk_pool_run(p, &job, NULL), 0);
		assert_int_equal(mode ? sk_pool_kill(p) : sk_pool_close(p), 0);
		for (int w = 0; w < 5; w++) {
			assert_int_equal(kill(pids[w], 0), -1);
			assert_int_equal(errno, ESRCH);
		}
	}
	assert_int_equal(sk_pool_close(NULL), 0);
	assert_int_equal(sk_pool_kill(NULL), 0);
}

/* Every share of every split: in order, disjoint, covering [0, total), the
 * sizes differing by at most one, the larger ones first. */
static void test_share_splits_evenly(void **state)
{
	(void)state;
	const uint64_t totals[] = { 0, 1, 2, 11, 12, 13, 1000, UINT64_MAX };
	const int ns[] = { 1, 2, 3, 12, 13, SK_POOL_MAX_WORKERS };
	for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
		for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
			uint64_t total = totals[t], next = 0, per = total / (uint64_t)ns[k];
			for (int w = 0; w < ns[k]; w++) {
				uint64_t first = 7, count = 7;
				assert_int_equal(sk_pool_share(total, ns[k], w, &first, &count), 0);
				assert_true(first == next);
				assert_true(count == per + ((uint64_t)w < total % (uint64_t)ns[k]));
				next += count;
			}
			assert_true(next == total);
		}
	uint64_t f, c;
	assert_int_equal(sk_pool_share(10, 0, 0, &f, &c), -EINVAL);
	assert_int_equal(sk_pool_share(10, 3, 3, &f, &c), -EINVAL);
	assert_int_equal(sk_pool_share(10, 3, -1, &f, &c), -EINVAL);
	assert_int_equal(sk_pool_share(10, 3, 0, NULL, &c), -EINVAL);
	assert_int_equal(sk_pool_share(10, 3, 0, &f, NULL), -EINVAL);
}

/* Each worker's chunks: how many, and the lowest begin. */
typedef struct ran {
	uint64_t chunks, lowest;
} ran;

static int record_chunks(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)e;
	ran *r = ctx->result;
	if (!r->chunks++ || b < r->lowest)
		r->lowest = b;
	return 0;
}

/* SK_POOL_STATIC gives worker w exactly the chunks sk_pool_share names. */
static void test_static_schedule_runs_the_shares(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(3, NULL, &p), 0);
	const uint64_t begin = 5, end = 5 + 7 * 11 + 4, chunk = 7; /* 12 chunks, the last short */
	sk_pool_job job = {
		.fn = record_chunks, .begin = begin, .end = end, .chunk = chunk, .schedule = SK_POOL_STATIC
	};
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	for (int w = 0; w < 3; w++) {
		uint64_t first, count;
		assert_int_equal(sk_pool_share(12, 3, w, &first, &count), 0);
		const ran *r = sk_pool_result(p, w);
		assert_true(r->chunks == count);
		assert_true(r->lowest == begin + first * chunk);
	}
	assert_int_equal(sk_pool_close(p), 0);
}

static int pipe_fd;

static int parent_with_pool(void *arg)
{
	(void)arg;
	sk_pool *p;
	if (sk_pool_create(4, NULL, &p))
		return 1;
	for (int w = 0; w < 4; w++) {
		pid_t pid = sk_pool_pid(p, w);
		if (write(pipe_fd, &pid, sizeof pid) != sizeof pid)
			return 2;
	}
	for (;;)
		pause();
}

static void test_workers_die_with_parent(void **state)
{
	(void)state;
	/* Orphaned workers are reparented to us, so we can reap and time them. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	fflush(NULL);
	pid_t parent = fork();
	assert_true(parent >= 0);
	if (parent == 0) {
		close(fds[0]);
		pipe_fd = fds[1];
		_exit(parent_with_pool(NULL));
	}
	close(fds[1]);
	pid_t workers[4];
	for (int w = 0; w < 4; w++)
		assert_int_equal(read(fds[0], &workers[w], sizeof workers[w]), (ssize_t)sizeof workers[w]);
	close(fds[0]);
	assert_int_equal(kill(parent, SIGKILL), 0);
	int status;
	assert_int_equal(waitpid(parent, &status, 0), parent);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int w = 0; w < 4; w++) {
		for (;;) {
			pid_t r = waitpid(workers[w], &status, WNOHANG);
			if (r == workers[w])
				break;
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) > 1000000000L)
				fail_msg("worker %d still alive 1 s after its parent was killed", (int)workers[w]);
			usleep(1000);
		}
		/* Killed by PR_SET_PDEATHSIG, or, when the parent died before the
		 * worker's prctl took effect, exited by itself on seeing that. */
		bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
		bool left = WIFEXITED(status) && WEXITSTATUS(status) == 0;
		assert_true(killed || left);
	}
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void *idle_thread(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void test_threads_refused_unless_allowed(void **state)
{
	(void)state;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, idle_thread, NULL), 0);
	sk_pool *p;
	assert_int_equal(sk_pool_create(2, NULL, &p), SK_ETHREADED);
	assert_null(p);
	sk_pool_opts o = { .flags = SK_POOL_ALLOW_THREADS };
	assert_int_equal(sk_pool_create(2, &o, &p), 0);
	sk_pool_job job = { .fn = trivial, .end = 10 };
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	sk_pool_close(p);
	pthread_cancel(t);
	pthread_join(t, NULL);
}

static int run_in_child(void *arg)
{
	sk_pool_job job = { .fn = trivial, .end = 10 };
	return sk_pool_run(arg, &job, NULL) == -ECHILD ? 0 : 1;
}

static void test_bad_arguments(void **state)
{
	(void)state;
	sk_pool *p;
	assert_int_equal(sk_pool_create(0, NULL, &p), -EINVAL);
	assert_int_equal(sk_pool_create(SK_POOL_MAX_WORKERS + 1, NULL, &p), -EINVAL);
	sk_pool_opts bad = { .flags = 0x80 };
	assert_int_equal(sk_pool_create(1, &bad, &p), -EINVAL);
	sk_pool_opts bad2 = { .resv = { 1 } };
	assert_int_equal(sk_pool_create(1, &bad2, &p), -EINVAL);
	assert_int_equal(sk_pool_create(1, NULL, NULL), -EINVAL);
	sk_pool_opts big = { .result_bytes = 100000 };
	assert_int_equal(sk_pool_create(2, &big, &p), 0);
	memset(sk_pool_result(p, 1), 1, 100000);
	sk_pool_job job = { .fn = trivial, .begin = 5, .end = 4 };
	assert_int_equal(sk_pool_run(p, &job, NULL), -EINVAL);
	job = (sk_pool_job){ .fn = NULL, .end = 4 };
	assert_int_equal(sk_pool_run(p, &job, NULL), -EINVAL);
	char arg[8];
	job = (sk_pool_job){ .fn = trivial, .end = 4, .arg = arg, .arg_size = SK_POOL_ARG_MAX + 1 };
	assert_int_equal(sk_pool_run(p, &job, NULL), -EINVAL);
	job = (sk_pool_job){ .fn = trivial, .end = 4, .arg_size = 4 };
	assert_int_equal(sk_pool_run(p, &job, NULL), -EINVAL);
	job = (sk_pool_job){ .fn = trivial, .end = 4, .schedule = 9 };
	assert_int_equal(sk_pool_run(p, &job, NULL), -EINVAL);
	assert_int_equal(sk_pool_run(NULL, &job, NULL), -EINVAL);
	/* Slots are zeroed before each job. */
	job = (sk_pool_job){ .fn = trivial, .end = 4 };
	assert_int_equal(sk_pool_run(p, &job, NULL), 0);
	assert_int_equal(((unsigned char *)sk_pool_result(p, 1))[99999], 0);
	/* Only the creating process drives the pool. */
	t_assert_exit0(t_fork(run_in_child, p));
	sk_pool_close(p);
}

/* Waits at most `seconds` for the child pid; kills it and fails the test
 * if it is still running then (a hang is the failure this catches). */
static int wait_bounded(pid_t pid, int seconds)
{
	int status;
	int64_t deadline = t_now_ns() + (int64_t)seconds * 1000000000;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		assert_true(r == 0 || (r < 0 && errno == EINTR));
		if (t_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("the pool's caller (pid %d) still waited after %d s", (int)pid, seconds);
		}
		usleep(10000);
	}
}

static int kill_self_at_zero(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)ctx;
	if (b == 0)
		raise(SIGKILL);
	(void)e;
	return 0;
}

/* With poll refused (RLIMIT_NOFILE below the number of descriptors it is
 * given), the caller must still learn of completion and of deaths. */
static int run_with_poll_refused(void *arg)
{
	(void)arg;
	sk_pool *p;
	if (sk_pool_create(4, NULL, &p))
		return 10;
	struct rlimit rl = { 1, 1 }; /* poll of 2 or more descriptors now fails with EINVAL */
	if (setrlimit(RLIMIT_NOFILE, &rl))
		return 11;
	sums got = { 0 };
	uint64_t want = 0;
	for (uint64_t i = 0; i < 100000; i++)
		want += i * i;
	sk_pool_job job = { .fn = sum_squares, .end = 100000, .reduce = add_sums, .reduce_acc = &got };
	if (sk_pool_run(p, &job, NULL) || got.sum != want || got.count != 100000)
		return 12;
	sk_pool_failure f;
	job = (sk_pool_job){ .fn = kill_self_at_zero, .end = 1000, .chunk = 10 };
	if (sk_pool_run(p, &job, &f) != SK_EWORKER || f.signal != SIGKILL || !f.has_chunk || f.chunk_begin != 0)
		return 13;
	sk_pool_kill(p);
	return 0;
}

static void test_wait_refused_still_sees_deaths(void **state)
{
	(void)state;
	int status = wait_bounded(t_spawn(run_with_poll_refused, NULL), 60);
	t_assert_exit0(status);
}

/* The worker that runs index 0 overwrites the pool's whole control block
 * (the bytes before the argument, from the start of its page) with bytes
 * chosen by the round (all ones, all zeros, random), as a job function with
 * a stray pointer might; once per round, so that a reset chunk counter does
 * not bring it back to index 0 forever. */
static int scribble_control_block(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	static uint64_t last_round = UINT64_MAX; /* per worker process */
	uint64_t round;
	memcpy(&round, ctx->arg, sizeof round);
	if (b == 0 && round != last_round) {
		last_round = round;
		uint8_t *arg = ctx->arg, *base = (uint8_t *)((uintptr_t)arg & ~(uintptr_t)4095);
		uint64_t seed = round + 1;
		for (uint8_t *q = base; q < arg; q++)
			*q = round == 0 ? 0xff : round == 1 ? 0 : (uint8_t)t_rand(&seed);
	}
	return sum_squares(ctx, b, e);
}

static int survive_scribbles(void *arg)
{
	(void)arg;
	sk_pool *p;
	if (sk_pool_create(4, NULL, &p))
		return 10;
	uint64_t want = 0;
	for (uint64_t i = 0; i < 200000; i++)
		want += i * i;
	for (int round = 0; round < 30; round++) {
		uint64_t r = (uint64_t)round;
		sk_pool_job job = { .fn = scribble_control_block,
				    .arg = &r,
				    .arg_size = sizeof r,
				    .end = 200000,
				    .chunk = 1000,
				    .schedule = round % 2 ? SK_POOL_STATIC : SK_POOL_DYNAMIC };
		sk_pool_failure f;
		int rc = sk_pool_run(p, &job, &f);
		if (rc != 0 && rc != SK_EWORKER)
			return 20 + round;
		/* Clean jobs afterwards: a worker may still report the damage it
		 * saw once; then the pool computes right again. */
		int ok = 0;
		for (int tries = 0; tries < 3 && !ok; tries++) {
			sums got = { 0 };
			sk_pool_job clean = {
				.fn = sum_squares, .end = 200000, .reduce = add_sums, .reduce_acc = &got
			};
			rc = sk_pool_run(p, &clean, &f);
			if (rc == 0 && (got.sum != want || got.count != 200000))
				return 60 + round;
			if (rc != 0 && rc != SK_EWORKER)
				return 100 + round;
			ok = rc == 0;
		}
		if (!ok)
			return 140 + round;
	}
	sk_pool_close(p);
	return 0;
}

static void test_scribbled_control_block(void **state)
{
	(void)state;
	/* The caller runs in a child so that a crash is seen, not suffered. */
	int status = wait_bounded(t_spawn(survive_scribbles, NULL), 120);
	t_assert_exit0(status);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_match_single_process),
		cmocka_unit_test(test_inherited_and_named_segments),
		cmocka_unit_test(test_dynamic_schedule_balances_uneven_chunks),
		cmocka_unit_test(test_failures_are_named_and_recovered),
		cmocka_unit_test(test_idle_worker_killed_is_replaced),
		cmocka_unit_test(test_close_and_kill_leave_no_process),
		cmocka_unit_test(test_share_splits_evenly),
		cmocka_unit_test(test_static_schedule_runs_the_shares),
		cmocka_unit_test(test_workers_die_with_parent),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_wait_refused_still_sees_deaths),
		cmocka_unit_test(test_scribbled_control_block),
		/* Last: it leaves a thread behind until it joins it. */
		cmocka_unit_test(test_threads_refused_unless_allowed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
