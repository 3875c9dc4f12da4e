/*
 * qharness.h: one harness for every message queue the benchmarks compare
 * (shmkit's queue, Boost.Interprocess message_queue, POSIX mq, a
 * SOCK_SEQPACKET pair, a pipe), so that each is measured the same way.
 * Header-only; compiles as C and as C++ (bench/queue_boost.cpp).
 *
 * A transport is a struct of functions: setup (in the parent, before any
 * fork), attach (in a forked child, as producer or consumer), send, recv,
 * detach, teardown. Every call blocks until it can go on.
 *
 *   throughput  P producer and C consumer processes move n messages of a
 *               size (each producer sends n/P, each consumer takes n/C);
 *               the clock runs from the moment every process has attached
 *               until the last consumer has its last message. The futex
 *               system calls of all the processes are counted with a
 *               perf tracepoint counter inherited by the children
 *               (syscalls:sys_enter_futex; -1 when perf events are not
 *               allowed), and the CPU time they used (user + system, from
 *               wait4) per message: what a message costs, whatever else
 *               runs on the machine.
 *   latency     a parent and an echoing child bounce one message through
 *               two channels; one-way latency is half the round trip,
 *               median of the rounds.
 *
 * The figures are printed as JSON by qh_print_figures: named numbers.
 */
#ifndef SHMKIT_QHARNESS_H
#define SHMKIT_QHARNESS_H

#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"

enum { QH_PRODUCER = 0, QH_CONSUMER = 1 };

typedef struct qh_ops {
	const char *name;
	/* ctx for a channel carrying messages of at most msg bytes, holding about
	 * depth of them. 0 or a negative code. */
	int (*setup)(void **ctx, size_t msg, size_t depth);
	int (*attach)(void *ctx, int role, void **h);
	int (*send)(void *h, const void *buf, size_t len);
	int (*recv)(void *h, void *buf, size_t cap, size_t *len);
	void (*detach)(void *h);
	void (*teardown)(void *ctx);
} qh_ops;

/* Seconds on shmkit's clock (CLOCK_MONOTONIC), for every transport alike. */
static inline double qh_now(void)
{
	return (double)sk_monotonic_ns() * 1e-9;
}

static int qh_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static inline double qh_median(double *v, size_t n)
{
	qsort(v, n, sizeof *v, qh_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A counter of futex system calls by this process and the children it forks
 * from now on, or -1. */
static inline int qh_futex_counter(void)
{
	FILE *f = fopen("/sys/kernel/tracing/events/syscalls/sys_enter_futex/id", "r");
	if (!f)
		f = fopen("/sys/kernel/debug/tracing/events/syscalls/sys_enter_futex/id", "r");
	if (!f)
		return -1;
	long long id = -1;
	if (fscanf(f, "%lld", &id) != 1)
		id = -1;
	fclose(f);
	if (id < 0)
		return -1;
	struct perf_event_attr a;
	memset(&a, 0, sizeof a);
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof a;
	a.config = (uint64_t)id;
	a.inherit = 1;
	a.disabled = 1;
	int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
	if (fd >= 0)
		ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
	return fd;
}

static inline double qh_futex_read(int fd)
{
	uint64_t v = 0;
	if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v)
		return -1;
	return (double)v;
}

static inline void qh_fail(const char *what, int rc)
{
	fprintf(stderr, "qharness: %s failed (%d: %s)\n", what, rc, rc < 0 && rc > -4096 ? strerror(-rc) : "");
	_exit(3);
}

/* Throughput in messages per second; *futex_per_msg gets the futex calls per
 * message (-1 if they could not be counted), *cpu_ns_per_msg the CPU time
 * of all the processes per message. 0 on failure. */
static inline double qh_throughput(const qh_ops *ops, int producers, int consumers, size_t msg, long n, size_t depth,
				   double *futex_per_msg, double *cpu_ns_per_msg)
{
	void *ctx;
	int rc = ops->setup(&ctx, msg, depth);
	if (rc) {
		fprintf(stderr, "qharness: %s setup failed (%d)\n", ops->name, rc);
		return 0;
	}
	n -= n % ((long)producers * consumers);
	int ready[2], go[2];
	if (pipe(ready) || pipe(go))
		return 0;
	int fc = qh_futex_counter();
	fflush(NULL);
	pid_t pids[128];
	int np = 0;
	for (int i = 0; i < producers + consumers; i++) {
		int role = i < producers ? QH_PRODUCER : QH_CONSUMER;
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			void *h;
			int arc = ops->attach(ctx, role, &h);
			if (arc)
				qh_fail("attach", arc);
			char *buf = (char *)calloc(1, msg + 64);
			char c = 1;
			if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 0)
				_exit(4);
			long mine = role == QH_PRODUCER ? n / producers : n / consumers;
			for (long k = 0; k < mine; k++) {
				if (role == QH_PRODUCER) {
					memcpy(buf, &k, sizeof k);
					if ((arc = ops->send(h, buf, msg)))
						qh_fail("send", arc);
				} else {
					size_t len = 0;
					if ((arc = ops->recv(h, buf, msg + 64, &len)))
						qh_fail("recv", arc);
					if (len != msg)
						qh_fail("recv: wrong length", (int)len);
				}
			}
			ops->detach(h);
			_exit(0);
		}
		pids[np++] = pid;
	}
	close(ready[1]);
	close(go[0]);
	char c;
	for (int i = 0; i < np; i++)
		if (read(ready[0], &c, 1) != 1)
			break;
	double f0 = qh_futex_read(fc);
	double t0 = qh_now();
	close(go[1]); /* everyone starts */
	int ok = 1;
	double cpu = 0;
	for (int i = 0; i < np; i++) {
		int st;
		struct rusage ru;
		if (wait4(pids[i], &st, 0, &ru) != pids[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			ok = 0;
		cpu += (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
	}
	double secs = qh_now() - t0;
	double f1 = qh_futex_read(fc);
	if (fc >= 0)
		close(fc);
	close(ready[0]);
	ops->teardown(ctx);
	*futex_per_msg = f0 >= 0 && f1 >= 0 ? (f1 - f0) / (double)n : -1;
	*cpu_ns_per_msg = cpu * 1e9 / (double)n;
	return ok ? (double)n / secs : 0;
}

/* Median one-way latency in ns (half the round trip), 0 on failure. */
static inline double qh_latency(const qh_ops *ops, size_t msg, int rounds)
{
	void *ping, *pong;
	if (ops->setup(&ping, msg, 4))
		return 0;
	if (ops->setup(&pong, msg, 4)) {
		ops->teardown(ping);
		return 0;
	}
	fflush(NULL);
	pid_t echo = fork();
	if (echo == 0) {
		void *in, *out;
		int rc = ops->attach(ping, QH_CONSUMER, &in);
		if (!rc)
			rc = ops->attach(pong, QH_PRODUCER, &out);
		if (rc)
			qh_fail("attach", rc);
		char *buf = (char *)calloc(1, msg + 64);
		for (int r = 0; r < rounds + 1; r++) {
			size_t len = 0;
			if ((rc = ops->recv(in, buf, msg + 64, &len)) || (rc = ops->send(out, buf, len)))
				qh_fail("echo", rc);
		}
		_exit(0);
	}
	void *out, *in;
	int rc = ops->attach(ping, QH_PRODUCER, &out);
	if (!rc)
		rc = ops->attach(pong, QH_CONSUMER, &in);
	double med = 0;
	if (!rc) {
		char *buf = (char *)calloc(1, msg + 64);
		double *t = (double *)malloc(sizeof(double) * (size_t)rounds);
		int ok = 1;
		for (int r = 0; r < rounds + 1 && ok; r++) { /* round 0 warms up */
			size_t len = 0;
			double t0 = qh_now();
			memcpy(buf, &r, sizeof r);
			if (ops->send(out, buf, msg) || ops->recv(in, buf, msg + 64, &len) || len != msg)
				ok = 0;
			else if (r)
				t[r - 1] = (qh_now() - t0) * 1e9 / 2;
		}
		if (ok)
			med = qh_median(t, (size_t)rounds);
		free(t);
		free(buf);
		ops->detach(out);
		ops->detach(in);
	}
	int st;
	if (rc || !med)
		kill(echo, SIGKILL);
	waitpid(echo, &st, 0);
	ops->teardown(ping);
	ops->teardown(pong);
	return med;
}

/* The cases every queue benchmark runs, and their figure names. */
typedef struct qh_case {
	const char *name; /* e.g. "tput_4x4_64" */
	int producers, consumers;
	size_t msg;
	long n, n_quick;
	size_t depth;
} qh_case;

static const qh_case qh_tput_cases[] = {
	{ "tput_1x1_64", 1, 1, 64, 2000000, 200000, 1024 }, { "tput_4x4_64", 4, 4, 64, 800000, 160000, 1024 },
	{ "tput_1x1_4k", 1, 1, 4096, 400000, 40000, 1024 }, { "tput_4x4_4k", 4, 4, 4096, 400000, 40000, 1024 },
	{ "tput_1x1_1m", 1, 1, 1 << 20, 4000, 400, 8 },
};
static const struct {
	const char *name;
	size_t msg;
	int rounds, rounds_quick;
} qh_lat_cases[] = {
	{ "lat_64", 64, 20000, 2000 },
	{ "lat_4k", 4096, 20000, 2000 },
	{ "lat_1m", 1 << 20, 400, 50 },
};
#define QH_NTPUT (sizeof qh_tput_cases / sizeof qh_tput_cases[0])
#define QH_NLAT  (sizeof qh_lat_cases / sizeof qh_lat_cases[0])

/* Runs every case (or, with only, the cases whose name starts with it) for
 * ops and prints ', "NAME_msgs_per_s": X, "NAME_futex_per_msg": Y, ...'
 * (the caller prints the braces). skip(case) may exclude cases a transport
 * cannot run (returns a reason, or NULL). */
static inline void qh_run_all(const qh_ops *ops, int quick, const char *only,
			      const char *(*skip)(int producers, int consumers, size_t msg), int *first)
{
	for (size_t i = 0; i < QH_NTPUT; i++) {
		const qh_case *k = &qh_tput_cases[i];
		if (only && strncmp(k->name, only, strlen(only)))
			continue;
		const char *why = skip ? skip(k->producers, k->consumers, k->msg) : NULL;
		if (why) {
			printf("%s\"%s_msgs_per_s\": null, \"%s_note\": \"%s\"", *first ? "" : ", ", k->name, k->name,
			       why);
			*first = 0;
			continue;
		}
		double fpm = -1, cpu = 0;
		double v = qh_throughput(ops, k->producers, k->consumers, k->msg, quick ? k->n_quick : k->n, k->depth,
					 &fpm, &cpu);
		printf("%s\"%s_msgs_per_s\": %.0f, \"%s_cpu_ns_per_msg\": %.0f", *first ? "" : ", ", k->name, v,
		       k->name, cpu);
		*first = 0;
		if (fpm >= 0)
			printf(", \"%s_futex_per_msg\": %.4f", k->name, fpm);
		else
			printf(", \"%s_futex_per_msg\": null", k->name);
		fflush(stdout);
	}
	for (size_t i = 0; i < QH_NLAT; i++) {
		if (only && strncmp(qh_lat_cases[i].name, only, strlen(only)))
			continue;
		const char *why = skip ? skip(1, 1, qh_lat_cases[i].msg) : NULL;
		if (why) {
			printf("%s\"%s_ns\": null", *first ? "" : ", ", qh_lat_cases[i].name);
			*first = 0;
			continue;
		}
		double v =
		    qh_latency(ops, qh_lat_cases[i].msg, quick ? qh_lat_cases[i].rounds_quick : qh_lat_cases[i].rounds);
		printf("%s\"%s_ns\": %.0f", *first ? "" : ", ", qh_lat_cases[i].name, v);
		*first = 0;
		fflush(stdout);
	}
}

#endif
