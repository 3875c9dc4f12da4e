/*
 * bench/lock: the cost of shmkit's robust mutex, in the same run as the
 * baselines a C or C++ programmer would otherwise pick: glibc's robust
 * process-shared pthread mutex (the kernel's robust futex list tells the next
 * locker of a dead holder), its plain process-shared mutex (no owner-death
 * handling at all) and, when bench/lock_boost.cpp is built (a C++ compiler
 * and the Boost headers), Boost.Interprocess interprocess_mutex placed in
 * the same shared mapping (on Linux a plain process-shared pthread mutex
 * behind Boost's class; not robust). Every figure is a median over --reps
 * repetitions, interleaved so that all locks see the same machine; _min and
 * _max give the spread.
 *   mutex_ns, pthread_robust_ns, pthread_plain_ns, boost_ns
 *                          uncontended lock + unlock
 *   handoffs_per_s, pthread_robust_handoffs_per_s, pthread_plain_handoffs_per_s,
 *   boost_handoffs_per_s   two processes hammering one lock: how often
 *                          ownership passes from one to the other
 *   acquisitions_per_s (and the pthread and boost twins)
 *                          acquisitions per second by both together
 *   turns_per_s (and the pthread and boost twins)
 *                          two processes passing a turn to each other under
 *                          the lock (strict alternation: every turn is a
 *                          hand-off, whatever the scheduler does)
 *   mutex_vs_pthread, handoffs_vs_pthread, turns_vs_pthread (_min, _max)
 *                          shmkit against glibc's robust mutex, ratio taken
 *                          in each rep (time: < 1 is better; hand-offs and
 *                          turns: > 1 is better), median and range
 *   mutex_vs_boost, handoffs_vs_boost, turns_vs_boost (_min, _max)
 *                          the same against Boost's interprocess_mutex
 *   owner_death_recovery_us (_min, _max), pthread_robust_recovery_us
 *                          SIGKILL of the holder to acquisition by a process
 *                          already blocked in the lock (for 20 ms)
 *   owner_death_recovery_after_1s_us
 *                          the same for a process blocked 1 s (by then it
 *                          checks the holder every 16 ms, not every 1 ms)
 *   boost_owner_death_note what became of Boost's mutex when its holder was
 *                          SIGKILLed (a locker waits 100 ms for it): not a
 *                          figure, since the lock is not robust
 *   blocked_waiter_cpu_pct CPU time a locker blocked 2 s on a live holder
 *                          uses, in percent of one CPU (it checks the
 *                          holder's liveness every millisecond for 64 ms,
 *                          then less and less often, at least every 16 ms)
 *   blocked_4_waiters_cpu_pct  the same for four lockers together (one
 *                          checks as above, the others four times less often)
 * Without Boost the boost_ figures and the ratios to it are null, and the
 * other keys are as they were.
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
#include "lock_boost.h"
#include "shmkit.h"

/* The locks compared; BOOST only where bench/lock_boost.cpp is built. */
enum { SK, ROBUST, PLAIN, BOOST };
#ifdef SHMKIT_BENCH_BOOST
#define NLOCKS 4
#else
#define NLOCKS 3
#endif
static const char *const lock_names[4] = { "shmkit", "glibc robust", "glibc plain", "Boost ipc" };

/* Each lock, and the data they protect, on cache lines of their own (no lock
 * shares a line with the counters: that would spare it a transfer). */
typedef struct shm {
	sk_mutex m;
	pthread_mutex_t robust __attribute__((aligned(128)));
	pthread_mutex_t plain __attribute__((aligned(128)));
	unsigned char boost[LOCK_BOOST_BYTES] __attribute__((aligned(128)));
	lock_counts c __attribute__((aligned(128)));
	volatile int32_t ready;
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

/* Nanoseconds per uncontended lock + unlock, or -1 on an error. */
static double uncontended(int kind, long iters)
{
	double t0 = bench_now();
#ifdef SHMKIT_BENCH_BOOST
	if (kind == BOOST) {
		if (lock_boost_cycle(S->boost, iters))
			return -1;
		return (bench_now() - t0) / (double)iters * 1e9;
	}
#endif
	for (long i = 0; i < iters; i++) {
		lock(kind);
		unlock(kind);
	}
	return (bench_now() - t0) / (double)iters * 1e9;
}

/* Up to n acquisitions (n < 0: until told to stop), counting hand-offs.
 * Returns 0, or -1 if the lock failed (only Boost's reports it). */
static int hammer(int kind, int me, long n)
{
#ifdef SHMKIT_BENCH_BOOST
	if (kind == BOOST)
		return lock_boost_hammer(S->boost, &S->c, me, n);
#endif
	for (long i = 0; i != n && !S->c.stop; i++) {
		lock(kind);
		S->c.acquisitions++;
		if (S->c.last_owner != me) {
			S->c.handoffs++;
			S->c.last_owner = me;
		}
		unlock(kind);
	}
	return 0;
}

/* Strict alternation through the lock: up to n acquisitions (n < 0: until
 * told to stop); one that finds the turn is mine passes it to the other, so
 * every turn is a hand-off. Returns 0 or -1 as hammer. */
static int pass_turns(int kind, int me, long n)
{
#ifdef SHMKIT_BENCH_BOOST
	if (kind == BOOST)
		return lock_boost_turns(S->boost, &S->c, me, n);
#endif
	for (long i = 0; i != n && !S->c.stop; i++) {
		lock(kind);
		if (S->c.turn == me) {
			S->c.turn = !me;
			S->c.turns++;
		}
		unlock(kind);
	}
	return 0;
}

/* Two processes on one lock for secs, the parent as 1 and a child as 2
 * (turns: 0 and 1), through work (hammer or pass_turns). Returns the seconds
 * it ran, or -1 if either failed. */
static double two_processes(int kind, double secs, int (*work)(int, int, long), int parent, int child)
{
	S->c.stop = 0;
	fflush(NULL);
	pid_t other = fork();
	if (other < 0)
		return -1;
	if (other == 0)
		_exit(work(kind, child, -1) ? 1 : 0);
	int bad = 0, st;
	double t0 = bench_now();
	while (!bad && bench_now() - t0 < secs)
		bad = work(kind, parent, 1000) != 0;
	S->c.stop = 1;
	double t = bench_now() - t0;
	if (waitpid(other, &st, 0) != other || !WIFEXITED(st) || WEXITSTATUS(st))
		bad = 1;
	return bad ? -1 : t;
}

/* Two processes on one lock for secs: hand-offs and acquisitions per second.
 * Returns 0 or -1. */
static int contended(int kind, double secs, double *handoffs, double *acq)
{
	S->c.acquisitions = S->c.handoffs = 0;
	S->c.last_owner = 0;
	double t = two_processes(kind, secs, hammer, 1, 2);
	if (t <= 0)
		return -1;
	*handoffs = (double)S->c.handoffs / t;
	*acq = (double)S->c.acquisitions / t;
	return 0;
}

/* Turns per second passed between two processes, or -1. */
static double pingpong(int kind, double secs)
{
	S->c.turns = 0;
	S->c.turn = 0;
	double t = two_processes(kind, secs, pass_turns, 0, 1);
	return t > 0 ? (double)S->c.turns / t : -1;
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

#ifdef SHMKIT_BENCH_BOOST
/* Boost's interprocess_mutex when its holder is SIGKILLed: 1 if a locker then
 * gets it within ms, 0 if it times out, -1 on an error. It leaves the mutex
 * held by the dead process (nothing can take it back): run it last. */
static int boost_after_owner_death(long ms)
{
	S->ready = 0;
	fflush(NULL);
	pid_t holder = fork();
	if (holder < 0)
		return -1;
	if (holder == 0) {
		if (lock_boost_lock(S->boost))
			_exit(1);
		S->ready = 1;
		for (;;)
			pause();
	}
	while (!S->ready) {
		if (waitpid(holder, NULL, WNOHANG) == holder)
			return -1;
		usleep(50);
	}
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	return lock_boost_timed_lock(S->boost, ms);
}
#endif

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
#ifdef SHMKIT_BENCH_BOOST
	if (lock_boost_init(S->boost)) {
		fprintf(stderr, "lock: Boost could not make an interprocess_mutex\n");
		return 1;
	}
#endif

	/* Uncontended, interleaved so all see the same machine state. */
	static double un[NLOCKS][100], ho[NLOCKS][100], ac[NLOCKS][100], pp[NLOCKS][100];
	const long iters = 2000000;
	for (int k = 0; k < NLOCKS; k++)
		if (uncontended(k, iters / 10) < 0) {
			fprintf(stderr, "lock: %s failed\n", lock_names[k]);
			return 1;
		}
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < NLOCKS; k++)
			if ((un[k][r] = uncontended(k, iters)) < 0) {
				fprintf(stderr, "lock: %s failed\n", lock_names[k]);
				return 1;
			}
	/* Contended: two processes, a tenth of a second per lock and rep. */
	for (int r = 0; r < reps; r++)
		for (int k = 0; k < NLOCKS; k++)
			if (contended(k, 0.1, &ho[k][r], &ac[k][r]) || (pp[k][r] = pingpong(k, 0.1)) < 0) {
				fprintf(stderr, "lock: %s failed with two processes\n", lock_names[k]);
				return 1;
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
	/* Boost's mutex has no owner-death figure: it is not robust. What a
	 * locker finds after the holder's SIGKILL is said in words (last: it
	 * leaves the mutex held by the dead process). */
	const char *boost_death = NULL;
#ifdef SHMKIT_BENCH_BOOST
	switch (boost_after_owner_death(100)) {
	case 0: boost_death = "not robust: holder SIGKILLed, the next locker still timed out after 100 ms"; break;
	case 1: boost_death = "holder SIGKILLed, the next locker got the lock within 100 ms"; break;
	default: fprintf(stderr, "lock: the Boost owner-death check failed\n"); return 1;
	}
#endif

	/* shmkit against glibc's robust mutex and against Boost's mutex, rep by
	 * rep (the same machine state): uncontended time, hand-offs and turns. */
	double ur[100], hr[100], tr[100], ub[100], hb[100], tb[100];
	for (int r = 0; r < reps; r++) {
		ur[r] = un[SK][r] / un[ROBUST][r];
		hr[r] = ho[ROBUST][r] > 0 ? ho[SK][r] / ho[ROBUST][r] : 0;
		tr[r] = pp[ROBUST][r] > 0 ? pp[SK][r] / pp[ROBUST][r] : 0;
#ifdef SHMKIT_BENCH_BOOST
		ub[r] = un[SK][r] / un[BOOST][r];
		hb[r] = ho[BOOST][r] > 0 ? ho[SK][r] / ho[BOOST][r] : 0;
		tb[r] = pp[BOOST][r] > 0 ? pp[SK][r] / pp[BOOST][r] : 0;
#else
		ub[r] = hb[r] = tb[r] = 0;
#endif
	}
	stat3 urs = summary(ur, reps), hrs = summary(hr, reps), trs = summary(tr, reps);
	stat3 ubs = summary(ub, reps), hbs = summary(hb, reps), tbs = summary(tb, reps);
	stat3 u[4] = { 0 }, h[4] = { 0 }, q[4] = { 0 }, t[4] = { 0 };
	for (int k = 0; k < NLOCKS; k++) {
		t[k] = summary(pp[k], reps);
		u[k] = summary(un[k], reps);
		h[k] = summary(ho[k], reps);
		q[k] = summary(ac[k], reps);
	}
	const int boost = NLOCKS > BOOST;
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
		       "\"blocked_waiter_cpu_pct\": %.3f, \"blocked_4_waiters_cpu_pct\": %.3f",
		       rc.med, rc.min, rc.max, pr.med, late, cpu, cpu4);
		/* Boost's figures: null where it was not built. */
		const struct {
			const char *key, *fmt;
			double v;
		} bk[] = {
			{ "boost_ns", "%.1f", u[BOOST].med },
			{ "boost_ns_min", "%.1f", u[BOOST].min },
			{ "boost_ns_max", "%.1f", u[BOOST].max },
			{ "boost_handoffs_per_s", "%.0f", h[BOOST].med },
			{ "boost_acquisitions_per_s", "%.0f", q[BOOST].med },
			{ "boost_turns_per_s", "%.0f", t[BOOST].med },
			{ "mutex_vs_boost", "%.2f", ubs.med },
			{ "mutex_vs_boost_min", "%.2f", ubs.min },
			{ "mutex_vs_boost_max", "%.2f", ubs.max },
			{ "handoffs_vs_boost", "%.2f", hbs.med },
			{ "handoffs_vs_boost_min", "%.2f", hbs.min },
			{ "handoffs_vs_boost_max", "%.2f", hbs.max },
			{ "turns_vs_boost", "%.2f", tbs.med },
			{ "turns_vs_boost_min", "%.2f", tbs.min },
			{ "turns_vs_boost_max", "%.2f", tbs.max },
		};
		for (size_t i = 0; i < sizeof bk / sizeof bk[0]; i++) {
			printf(", \"%s\": ", bk[i].key);
			if (boost)
				printf(bk[i].fmt, bk[i].v);
			else
				printf("null");
		}
		if (boost_death)
			printf(", \"boost_owner_death_note\": \"%s\"}\n", boost_death);
		else
			printf(", \"boost_owner_death_note\": null}\n");
	} else {
		printf("%-13s %24s %38s %16s\n", "", "uncontended lock+unlock",
		       "two processes: hand-offs/s, acquisitions/s", "turns passed/s");
		for (int k = 0; k < NLOCKS; k++)
			printf("%-13s %8.1f ns [%.1f, %.1f] %12.0f [%.0f, %.0f] %12.0f %12.0f [%.0f, %.0f]\n",
			       lock_names[k], u[k].med, u[k].min, u[k].max, h[k].med, h[k].min, h[k].max, q[k].med,
			       t[k].med, t[k].min, t[k].max);
		if (!boost)
			printf("%-13s n/a (bench/lock_boost.cpp not built: no C++ compiler or Boost headers)\n",
			       lock_names[BOOST]);
		printf("shmkit vs glibc robust, rep by rep (median [min, max]): %.2fx [%.2f, %.2f] uncontended time, "
		       "%.2fx [%.2f, %.2f] hand-offs, %.2fx [%.2f, %.2f] turns\n",
		       urs.med, urs.min, urs.max, hrs.med, hrs.min, hrs.max, trs.med, trs.min, trs.max);
		if (boost)
			printf("shmkit vs Boost interprocess_mutex, rep by rep: %.2fx [%.2f, %.2f] uncontended time, "
			       "%.2fx [%.2f, %.2f] hand-offs, %.2fx [%.2f, %.2f] turns\n",
			       ubs.med, ubs.min, ubs.max, hbs.med, hbs.min, hbs.max, tbs.med, tbs.min, tbs.max);
		else
			printf("shmkit vs Boost interprocess_mutex: n/a (not built)\n");
		printf("owner killed -> blocked waiter acquires: shmkit median %.1f us [%.1f, %.1f], glibc robust %.1f "
		       "us [%.1f, %.1f]\n",
		       rc.med, rc.min, rc.max, pr.med, pr.min, pr.max);
		printf("after 1 s blocked: %.1f us\n", late);
		printf("Boost interprocess_mutex, owner killed: %s\n", boost_death ? boost_death : "n/a (not built)");
		printf("lockers blocked 2 s on a live holder use %.3f%% of a CPU (one), %.3f%% (four together)\n", cpu,
		       cpu4);
	}
	return 0;
}
