/*
 * demo_copy.c: the naive way, measured beside shmkit's (demo.h): W child
 * processes, each sent its own private copy of the data through a pipe, as
 * pickled arguments would be, one after another. Each child sums its copy,
 * sends its stats back, and holds the copy until the parent has read every
 * process's PSS and closes the pipe.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"

/* n bytes from a pipe; -EIO when it ends first. */
static int read_all(int fd, void *p, size_t n)
{
	size_t got;
	int rc = read_full(fd, p, n, &got);
	return rc || got != n ? -EIO : 0;
}

static int copy_child(int data_fd, int res_fd, uint64_t words)
{
	size_t bytes = (size_t)(words * 8 * NSEG);
	uint64_t *copy = malloc(bytes);
	if (!copy || read_all(data_fd, copy, bytes))
		return 1;
	stats st = { 0 };
	for (int k = 0; k < NBITS; k++)
		for (uint64_t i = 0; i < words; i++)
			st.popcount += (uint64_t)__builtin_popcountll(copy[k * words + i]);
	for (int k = NBITS; k < NSEG; k++)
		stats_add_ints(&st, (const int64_t *)copy + k * words, words);
	if (write_full(res_fd, &st, sizeof st))
		return 1;
	char c;
	while (read(data_fd, &c, 1) > 0) /* hold the copy until the parent has measured */
		;
	return 0;
}

int demo_copy_baseline(int nworkers, uint64_t words, void *const *data, const stats *expect, copy_result *out)
{
	pid_t *pids = calloc((size_t)nworkers, sizeof *pids);
	int *dfd = malloc((size_t)nworkers * sizeof *dfd), *rfd = malloc((size_t)nworkers * sizeof *rfd);
	if (!pids || !dfd || !rfd) {
		free(pids), free(dfd), free(rfd);
		return -ENOMEM;
	}
	int rc = 0, started = 0;
	int64_t t0 = sk_monotonic_ns();
	for (int w = 0; w < nworkers && !rc; w++) {
		int d[2], r[2];
		if (pipe(d) || pipe(r)) {
			rc = -errno;
			break;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			rc = -errno;
			close(d[0]), close(d[1]), close(r[0]), close(r[1]);
			break;
		}
		if (pid == 0) {
			close(d[1]);
			close(r[0]);
			for (int k = 0; k < w; k++)
				close(dfd[k]), close(rfd[k]);
			_exit(copy_child(d[0], r[1], words));
		}
		close(d[0]);
		close(r[1]);
		pids[w] = pid, dfd[w] = d[1], rfd[w] = r[0];
		started++;
	}
	/* Hand every worker its copy, one after another, as a naive program does. */
	for (int w = 0; w < started && !rc; w++)
		for (int k = 0; k < NSEG && !rc; k++)
			rc = write_full(dfd[w], data[k], (size_t)(words * 8));
	out->seconds = (double)(sk_monotonic_ns() - t0) / 1e9;
	out->ok = !rc;
	for (int w = 0; w < started && !rc; w++) {
		stats st;
		if (read_all(rfd[w], &st, sizeof st))
			rc = -EIO;
		else
			out->ok &= stats_equal(&st, expect);
	}
	out->pss_total = measure_pss(getpid());
	for (int w = 0; w < started; w++)
		out->pss_total += rc ? 0 : measure_pss(pids[w]);
	for (int w = 0; w < started; w++) {
		close(dfd[w]);
		close(rfd[w]);
		if (rc)
			kill(pids[w], SIGKILL);
		waitpid(pids[w], NULL, 0);
	}
	free(pids), free(dfd), free(rfd);
	return rc;
}
