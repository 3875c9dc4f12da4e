/*
 * bench/lock: the cost of shmkit's robust mutex, in the same run as the
 * baseline a C programmer would otherwise pick, a glibc robust
 * process-shared pthread mutex:
 *   mutex_ns, pthread_robust_ns   uncontended lock + unlock, median of runs
 *   handoffs_per_s                two processes hammering one mutex: how often
 *                                 ownership passes from one to the other
 *   owner_death_recovery_us       SIGKILL of the holder to acquisition by a
 *                                 process already blocked in sk_mutex_lock
 *
 *   lock [--json] [--reps N]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "shmkit.h"

typedef struct shm {
	sk_mutex m;
	pthread_mutex_t pm;
	volatile int32_t ready, stop;
	int64_t acquisitions, handoffs;
	int32_t last_owner;
	double acquired_at;
} shm;

static shm *S;

static double uncontended(int use_pthread, long iters)
{
	double t0 = bench_now();
	for (long i = 0; i < iters; i++) {
		if (use_pthread) {
			pthread_mutex_lock(&S->pm);
			pthread_mutex_unlock(&S->pm);
		} else {
			sk_mutex_lock(&S->m, -1);
			sk_mutex_unlock(&S->m);
		}
	}
	return (bench_now() - t0) / (double)iters * 1e9;
}

static void hammer(int me)
{
	while (!S->stop) {
		sk_mutex_lock(&S->m, -1);
		S->acquisitions++;
		if (S->last_owner != me) {
			S->handoffs++;
			S->last_owner = me;
		}
		sk_mutex_unlock(&S->m);
	}
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
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&S->pm, &a);

	/* Uncontended, interleaved so both see the same machine state. */
	double sk[100], pt[100];
	const long iters = 2000000;
	uncontended(0, iters / 10), uncontended(1, iters / 10);
	for (int r = 0; r < reps; r++) {
		sk[r] = uncontended(0, iters);
		pt[r] = uncontended(1, iters);
	}
	double mutex_ns = bench_quantile(sk, (size_t)reps, 0.5), pthread_ns = bench_quantile(pt, (size_t)reps, 0.5);

	/* Contended: two processes for half a second. */
	fflush(NULL);
	pid_t other = fork();
	if (other == 0) {
		hammer(2);
		_exit(0);
	}
	double t0 = bench_now();
	while (bench_now() - t0 < 0.5)
		for (int k = 0; k < 1000 && !S->stop; k++) {
			sk_mutex_lock(&S->m, -1);
			S->acquisitions++;
			if (S->last_owner != 1) {
				S->handoffs++;
				S->last_owner = 1;
			}
			sk_mutex_unlock(&S->m);
		}
	S->stop = 1;
	double secs = bench_now() - t0;
	waitpid(other, NULL, 0);
	double handoffs = (double)S->handoffs / secs, acq = (double)S->acquisitions / secs;

	/* Owner death: a holder and a waiter already blocked; kill the holder. */
	double rec[100];
	for (int r = 0; r < reps; r++) {
		S->ready = 0;
		fflush(NULL);
		pid_t holder = fork();
		if (holder == 0) {
			sk_mutex_lock(&S->m, -1);
			S->ready = 1;
			for (;;)
				pause();
		}
		while (!S->ready)
			usleep(50);
		pid_t waiter = fork();
		if (waiter == 0) {
			int rc = sk_mutex_lock(&S->m, -1);
			S->acquired_at = bench_now();
			if (rc == SK_EOWNERDEAD)
				sk_mutex_consistent(&S->m);
			sk_mutex_unlock(&S->m);
			_exit(rc == SK_EOWNERDEAD ? 0 : 1);
		}
		usleep(20000); /* the waiter is asleep in the kernel by now */
		double k0 = bench_now();
		kill(holder, SIGKILL);
		int st;
		waitpid(waiter, &st, 0);
		waitpid(holder, NULL, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) {
			fprintf(stderr, "lock: the waiter was not told of the owner's death\n");
			return 1;
		}
		rec[r] = (S->acquired_at - k0) * 1e6;
	}
	double rec_med = bench_quantile(rec, (size_t)reps, 0.5), rec_max = rec[reps - 1];

	if (json)
		printf("{\"bench\": \"lock\", \"reps\": %d, \"mutex_ns\": %.1f, \"pthread_robust_ns\": %.1f, "
		       "\"mutex_vs_pthread\": %.2f, \"handoffs_per_s\": %.0f, \"acquisitions_per_s\": %.0f, "
		       "\"owner_death_recovery_us\": %.1f, \"owner_death_recovery_us_max\": %.1f}\n",
		       reps, mutex_ns, pthread_ns, mutex_ns / pthread_ns, handoffs, acq, rec_med, rec_max);
	else
		printf("uncontended lock+unlock: shmkit %.1f ns, glibc robust pthread %.1f ns (%.2fx)\n"
		       "two processes: %.0f hand-offs/s, %.0f acquisitions/s\n"
		       "owner killed -> blocked waiter acquires: median %.1f us, max %.1f us\n",
		       mutex_ns, pthread_ns, mutex_ns / pthread_ns, handoffs, acq, rec_med, rec_max);
	return 0;
}
