/*
 * bench/lock: the cost of shmkit's robust mutex, in the same run as the
 * baselines a C programmer would otherwise pick: glibc's robust
 * process-shared pthread mutex (the kernel's robust futex list tells the next
 * locker of a dead holder) and its plain process-shared mutex (no owner-death
 * handling at all). Every figure is a median over --reps repetitions,
 * interleaved so that all locks see the same machine; _min and _max give the
 * spread.
 *   mutex_ns, pthread_robust_ns, pthread_plain_ns
 *                          uncontended lock + unlock
 *   handoffs_per_s, pthread_robust_handoffs_per_s, pthread_plain_handoffs_per_s
 *                          two processes hammering one lock: how often
 *                          ownership passes from one to the other
 *   acquisitions_per_s (and the pthread twins)
 *                          acquisitions per second by both together
 *   turns_per_s (and the pthread twins)
 *                          two processes passing a turn to each other under
 *                          the lock (strict alternation: every turn is a
 *                          hand-off, whatever the scheduler does)
 *   mutex_vs_pthread, handoffs_vs_pthread, turns_vs_pthread (_min, _max)
 *                          shmkit against glibc's robust mutex, ratio taken
 *                          in each rep (time: < 1 is better; hand-offs and
 *                          turns: > 1 is better), median and range
 *   owner_death_recovery_us (_min, _max), pthread_robust_recovery_us
 *                          SIGKILL of the holder to acquisition by a process
 *                          already blocked in the lock (for 20 ms)
 *   owner_death_recovery_after_1s_us
 *                          the same for a process blocked 1 s (by then it
 *                          checks the holder every 16 ms, not every 1 ms)
 *   blocked_waiter_cpu_pct CPU time a locker blocked 2 s on a live holder
 *                          uses, in percent of one CPU (it checks the
 *                          holder's liveness every millisecond for 64 ms,
 *                          then less and less often, at least every 16 ms)
 *   blocked_4_waiters_cpu_pct  the same for four lockers together (one
 *                          checks as above, the others four times less often)
 *
 *   lock [--json] [--reps N]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmkit.h"

enum { SK, ROBUST, PLAIN, NLOCKS };
static const char *const lock_names[NLOCKS] = { "shmkit", "glibc robust", "glibc plain" };

/* Each lock, and the data they protect, on cache lines of their own (no lock
 * shares a line with the counters: that would spare it a transfer). */
typedef struct shm {
	sk_mutex m;
	pthread_mutex_t robust __attribute__((aligned(128)));
	pthread_mutex_t plain __attribute__((aligned(128)));
	volatile int32_t ready __attribute__((aligned(128)));
	volatile int32_t stop;
	int64_t acquisitions, handoffs, turns;
	int32_t last_owner, turn;
	double acquired_at;
} shm;

static shm *S;

static inline void lock(int kind)
{
	if (kind == SK)
		sk_mutex_lock(&S->m, -1);
	else
		pthread_mutex_lock(kind == ROBUST ? &S->robust : &S->plain);
}

static inline void unlock(int kind)
{
	if (kind == SK)
		sk_mutex_unlock(&S->m);
	else
		pthread_mutex_unlock(kind == ROBUST ? &S->robust : &S->plain);
}

static double uncontended(int kind, long iters)
{
	double t0 = bench_now();
	for (long i = 0; i < iters; i++) {
		lock(kind);
		unlock(kind);
	}
	return (bench_now() - t0) / (double)iters * 1e9;
}

static void hammer(int kind, int me)
{
	while (!S->stop) {
		lock(kind);
		S->acquisitions++;
		if (S->last_owner != me) {
			S->handoffs++;
			S->last_owner = me;
		}
		unlock(kind);
	}
}

/* Two processes on one lock for secs: hand-offs and acquisitions per second. */
static void contended(int kind, double secs, double *handoffs, double *acq)
{
	S->stop = 0;
	S->acquisitions = S->handoffs = 0;
	S->last_owner = 0;
	fflush(NULL);
	pid_t other = fork();
	if (other == 0) {
		hammer(kind, 2);
		_exit(0);
	}
	double t0 = bench_now();
	while (bench_now() - t0 < secs)
		for (int k = 0; k < 1000 && !S->stop; k++) {
			lock(kind);
			S->acquisitions++;
			if (S->last_owner != 1) {
				S->handoffs++;
				S->last_owner = 1;
			}
			unlock(kind);
		}
	S->stop = 1;
	double t = bench_now() - t0;
	waitpid(other, NULL, 0);
	*handoffs = (double)S->handoffs / t;
	*acq = (double)S->acquisitions / t;
}

/* Strict alternation through the lock: each process passes the turn to the
 * other under the lock, so every turn is a hand-off. Turns per second. */
static void pass_turns(int kind, int me)
{
	while (!S->stop) {
		lock(kind);
		if (S->turn == me) {
			S->turn = !me;
			S->turns++;
		}
		unlock(kind);
	}
}

static double pingpong(int kind, double secs)
{
	S->stop = 0;
	S->turns = 0;
	S->turn = 0;
	fflush(NULL);
	pid_t other = fork();
	if (other == 0) {
		pass_turns(kind, 1);
		_exit(0);
	}
	double t0 = bench_now();
	while (bench_now() - t0 < secs)
		for (int k = 0; k < 1000 && !S->stop; k++) {
			lock(kind);
			if (S->turn == 0) {
				S->turn = 1;
				S->turns++;
			}
			unlock(kind);
		}
	S->stop = 1;
	double t = bench_now() - t0;
	waitpid(other, NULL, 0);
	return (double)S->turns / t;
}

/* A holder and a waiter already blocked for blocked_us; the holder is
 * killed. Microseconds from the kill to the waiter's acquisition, or -1 if
 * it was not told. */
static double recovery(int kind, useconds_t blocked_us)
{
	S->ready = 0;
	fflush(NULL);
	pid_t holder = fork();
	if (holder == 0) {
		lock(kind);
		S->ready = 1;
		for (;;)
			pause();
	}
	while (!S->ready)
		usleep(50);
	pid_t waiter = fork();
	if (waiter == 0) {
		int rc;
		if (kind == SK) {
			rc = sk_mutex_lock(&S->m, -1) == SK_EOWNERDEAD;
			S->acquired_at = bench_now();
			if (rc)
				sk_mutex_consistent(&S->m);
			sk_mutex_unlock(&S->m);
		} else {
			rc = pthread_mutex_lock(&S->robust) == EOWNERDEAD;
			S->acquired_at = bench_now();
			if (rc)
				pthread_mutex_consistent(&S->robust);
			pthread_mutex_unlock(&S->robust);
		}
		_exit(rc ? 0 : 1);
	}
	usleep(blocked_us); /* the waiter is asleep in the kernel by now */
	double k0 = bench_now();
	kill(holder, SIGKILL);
	int st;
	waitpid(waiter, &st, 0);
	waitpid(holder, NULL, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	return (S->acquired_at - k0) * 1e6;
}

/* CPU used by n lockers blocked for secs on a live holder, in % of one CPU
 * (all of them together). */
static double blocked_cpu(int n, double secs)
{
	if (sk_mutex_lock(&S->m, -1))
		return -1;
	fflush(NULL);
	pid_t w[16];
	double t0 = bench_now(), cpu = 0;
	for (int i = 0; i < n; i++) {
		w[i] = fork();
		if (w[i] == 0)
			_exit(sk_mutex_lock(&S->m, (int64_t)(secs * 1e9)) == -ETIMEDOUT ? 0 : 1);
	}
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int st;
		struct rusage ru;
		if (wait4(w[i], &st, 0, &ru) != w[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			bad = 1;
		cpu += (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
	}
	double wall = bench_now() - t0;
	sk_mutex_unlock(&S->m);
	return bad ? -1 : cpu / wall * 100;
}

typedef struct stat3 {
	double med, min, max;
} stat3;

static stat3 summary(double *v, int n)
{
	stat3 s = { bench_quantile(v, (size_t)n, 0.5), v[0], v[n - 1] };
	return s;
}

int main(int argc, char **argv)
{
	int json = 0, reps = 7;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: lock [--json] [--reps N]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > 100)
		reps = 7;
	S = mmap(NULL, sizeof *S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED)
		return 1;
	memset(S, 0, sizeof *S);
	sk_mutex_init(&S->m);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&S->plain, &a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&S->robust, &a);

	/* Uncontended, interleaved so all see the same machine state. */
	static double un[NLOCKS][100], ho[NLOCKS][100], ac[NLOCKS][100], pp[NLOCKS][100];
	const long iters = 2000000;
	for (int k = 0; k < NLOCKS; k++)
		uncontended(k, iters / 10);
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < NLOCKS; k++)
			un[k][r] = uncontended(k, iters);
	/* Contended: two processes, a tenth of a second per lock and rep. */
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < NLOCKS; k++) {
			contended(k, 0.1, &ho[k][r], &ac[k][r]);
			pp[k][r] = pingpong(k, 0.1);
		}
	/* Owner death, shmkit and glibc robust interleaved. */
	double rec[100], prec[100];
	for (int r = 0; r < reps; r++) {
		rec[r] = recovery(SK, 20000);
		prec[r] = recovery(ROBUST, 20000);
		if (rec[r] < 0 || prec[r] < 0) {
			fprintf(stderr, "lock: the waiter was not told of the owner's death (%s)\n",
				rec[r] < 0 ? "shmkit" : "glibc");
			return 1;
		}
	}
	double late = recovery(SK, 1000000);
	if (late < 0) {
		fprintf(stderr, "lock: the waiter was not told of the owner's death (blocked 1 s)\n");
		return 1;
	}
	double cpu = blocked_cpu(1, 2.0), cpu4 = blocked_cpu(4, 2.0);
	if (cpu < 0 || cpu4 < 0) {
		fprintf(stderr, "lock: the blocked waiter did not time out\n");
		return 1;
	}

	/* shmkit against glibc's robust mutex, rep by rep (the same machine
	 * state): uncontended time, hand-offs and turns. */
	double ur[100], hr[100], tr[100];
	for (int r = 0; r < reps; r++) {
		ur[r] = un[SK][r] / un[ROBUST][r];
		hr[r] = ho[ROBUST][r] > 0 ? ho[SK][r] / ho[ROBUST][r] : 0;
		tr[r] = pp[ROBUST][r] > 0 ? pp[SK][r] / pp[ROBUST][r] : 0;
	}
	stat3 urs = summary(ur, reps), hrs = summary(hr, reps), trs = summary(tr, reps);
	stat3 u[NLOCKS], h[NLOCKS], q[NLOCKS], t[NLOCKS];
	for (int k = 0; k < NLOCKS; k++) {
		t[k] = summary(pp[k], reps);
		u[k] = summary(un[k], reps);
		h[k] = summary(ho[k], reps);
		q[k] = summary(ac[k], reps);
	}
	stat3 rc = summary(rec, reps), pr = summary(prec, reps);
	if (json) {
		printf("{\"bench\": \"lock\", \"reps\": %d, \"mutex_ns\": %.1f, \"mutex_ns_min\": %.1f, "
		       "\"mutex_ns_max\": %.1f, "
		       "\"pthread_robust_ns\": %.1f, \"pthread_plain_ns\": %.1f, \"mutex_vs_pthread\": %.2f, "
		       "\"mutex_vs_pthread_min\": %.2f, \"mutex_vs_pthread_max\": %.2f, "
		       "\"mutex_vs_pthread_plain\": %.2f, ",
		       reps, u[SK].med, u[SK].min, u[SK].max, u[ROBUST].med, u[PLAIN].med, urs.med, urs.min, urs.max,
		       u[SK].med / u[PLAIN].med);
		printf("\"handoffs_per_s\": %.0f, \"handoffs_per_s_min\": %.0f, \"handoffs_per_s_max\": %.0f, "
		       "\"pthread_robust_handoffs_per_s\": %.0f, \"pthread_plain_handoffs_per_s\": %.0f, "
		       "\"acquisitions_per_s\": %.0f, \"pthread_robust_acquisitions_per_s\": %.0f, "
		       "\"pthread_plain_acquisitions_per_s\": %.0f, ",
		       h[SK].med, h[SK].min, h[SK].max, h[ROBUST].med, h[PLAIN].med, q[SK].med, q[ROBUST].med,
		       q[PLAIN].med);
		printf("\"turns_per_s\": %.0f, \"turns_per_s_min\": %.0f, \"turns_per_s_max\": %.0f, "
		       "\"pthread_robust_turns_per_s\": %.0f, \"pthread_plain_turns_per_s\": %.0f, "
		       "\"turns_vs_pthread\": %.2f, \"turns_vs_pthread_min\": %.2f, \"turns_vs_pthread_max\": %.2f, "
		       "\"handoffs_vs_pthread\": %.2f, \"handoffs_vs_pthread_min\": %.2f, "
		       "\"handoffs_vs_pthread_max\": %.2f, ",
		       t[SK].med, t[SK].min, t[SK].max, t[ROBUST].med, t[PLAIN].med, trs.med, trs.min, trs.max, hrs.med,
		       hrs.min, hrs.max);
		printf("\"owner_death_recovery_us\": %.1f, \"owner_death_recovery_us_min\": %.1f, "
		       "\"owner_death_recovery_us_max\": %.1f, \"pthread_robust_recovery_us\": %.1f, "
		       "\"owner_death_recovery_after_1s_us\": %.1f, "
		       "\"blocked_waiter_cpu_pct\": %.3f, \"blocked_4_waiters_cpu_pct\": %.3f}\n",
		       rc.med, rc.min, rc.max, pr.med, late, cpu, cpu4);
	} else {
		printf("%-13s %24s %38s %16s\n", "", "uncontended lock+unlock",
		       "two processes: hand-offs/s, acquisitions/s", "turns passed/s");
		for (int k = 0; k < NLOCKS; k++)
			printf("%-13s %8.1f ns [%.1f, %.1f] %12.0f [%.0f, %.0f] %12.0f %12.0f [%.0f, %.0f]\n",
			       lock_names[k], u[k].med, u[k].min, u[k].max, h[k].med, h[k].min, h[k].max, q[k].med,
			       t[k].med, t[k].min, t[k].max);
		printf("shmkit vs glibc robust, rep by rep (median [min, max]): %.2fx [%.2f, %.2f] uncontended time, "
		       "%.2fx [%.2f, %.2f] hand-offs, %.2fx [%.2f, %.2f] turns\n",
		       urs.med, urs.min, urs.max, hrs.med, hrs.min, hrs.max, trs.med, trs.min, trs.max);
		printf("owner killed -> blocked waiter acquires: shmkit median %.1f us [%.1f, %.1f], glibc robust %.1f "
		       "us [%.1f, %.1f]\n",
		       rc.med, rc.min, rc.max, pr.med, pr.min, pr.max);
		printf("after 1 s blocked: %.1f us\n", late);
		printf("lockers blocked 2 s on a live holder use %.3f%% of a CPU (one), %.3f%% (four together)\n", cpu,
		       cpu4);
	}
	return 0;
}
