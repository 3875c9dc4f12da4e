/*
 * coldscan.c: a creator makes a segment and fills it (its first write of
 * every page), then fills it again (every page mapped: what the memory
 * itself allows, the first fill's ceiling); a fresh process then attaches to it and reads it twice: the
 * first read maps every page into it, the second does not. With 2 MiB pages
 * (the default for large segments) the fill and the first read map 512
 * times fewer pages. The segment is made unpublished and attached by
 * descriptor: nothing ever has a name, so nothing can be left in /dev/shm.
 * (measure.h: shared by `shmkit demo` and bench/attach.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "measure.h"
#include "shmkit.h"

/* Seconds on the library's clock. */
static double now(void)
{
	return (double)sk_monotonic_ns() * 1e-9;
}

void measure_fill_twice(void *data, uint64_t bytes, cold_scan *r)
{
	double t0 = now();
	memset(data, 1, bytes);
	r->fill_s = now() - t0;
	r->fill_gbps = (double)bytes / r->fill_s / 1e9;
	t0 = now();
	memset(data, 2, bytes);
	r->refill_gbps = (double)bytes / (now() - t0) / 1e9;
}

void measure_read_twice(const void *data, uint64_t bytes, double *cold_gbps, double *warm_gbps)
{
	const uint64_t *w = data;
	size_t n = bytes / 8;
	volatile uint64_t sink = 0;
	for (int pass = 0; pass < 2; pass++) {
		double t0 = now();
		uint64_t s0 = 0, s1 = 0;
		for (size_t i = 0; i + 2 <= n; i += 2)
			s0 += w[i], s1 += w[i + 1];
		sink += s0 + s1;
		*(pass ? warm_gbps : cold_gbps) = (double)bytes / (now() - t0) / 1e9;
	}
	(void)sink;
}

/* The fresh process: attach (as a segment, or raw: a plain mmap of the
 * file), read twice, report. */
static int reader(int fd, uint64_t bytes, bool raw, cold_scan *shared)
{
	if (raw) {
		const void *q = mmap(NULL, (size_t)bytes, PROT_READ, MAP_SHARED, fd, 0);
		if (q == MAP_FAILED)
			return 1;
		measure_read_twice(q, bytes, &shared->cold_gbps, &shared->warm_gbps);
		shared->page_tables = (double)measure_page_tables(getpid());
		return 0;
	}
	sk_segment *mine;
	if (sk_segment_open_fd(fd, SK_RDONLY, &mine))
		return 1;
	measure_read_twice(sk_segment_data(mine), bytes, &shared->cold_gbps, &shared->warm_gbps);
	shared->page_tables = (double)measure_page_tables(getpid());
	sk_segment_info in;
	sk_segment_info_get(mine, &in);
	shared->reader_page_size = in.page_size;
	sk_segment_close(mine);
	return 0;
}

void measure_fresh_reader(int fd, uint64_t bytes, bool raw, cold_scan *r)
{
	r->ok = false;
	cold_scan *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		return;
	memset(shared, 0, sizeof *shared);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(reader(fd, bytes, raw, shared));
	int st = 0;
	if (pid > 0)
		waitpid(pid, &st, 0);
	r->cold_gbps = shared->cold_gbps;
	r->warm_gbps = shared->warm_gbps;
	r->page_tables = shared->page_tables;
	if (!raw)
		r->reader_page_size = shared->reader_page_size;
	r->ok = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
	munmap(shared, sizeof *shared);
}

void measure_cold_scan(uint64_t bytes, uint32_t create_flags, cold_scan *r, const char **note)
{
	memset(r, 0, sizeof *r);
	sk_create_opts o = { .flags = create_flags | SK_CREATE_UNPUBLISHED };
	sk_segment *s;
	double t0 = now();
	int rc = sk_segment_create(NULL, bytes, &o, &s);
	r->create_s = now() - t0;
	if (rc) {
		*note = sk_strerror(rc);
		return;
	}
	measure_fill_twice(sk_segment_data(s), bytes, r);
	sk_segment_info in;
	sk_segment_info_get(s, &in);
	r->page_size = in.page_size;
	r->huge_status = in.huge_status;
	r->huge_errno = in.huge_errno;
	r->huge_bytes = in.huge_bytes;
	measure_fresh_reader(sk_segment_fd(s), bytes, false, r);
	if (!r->ok)
		*note = "the reader process failed";
	sk_segment_close(s);
}
