/*
 * coldscan.c: a fresh process attaches to a filled anonymous segment (by
 * descriptor, so its page tables start empty) and reads it twice: the first
 * read maps every page into it, the second does not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coldscan.h"
#include "shmkit.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t vm_pte_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	uint64_t v = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmPTE:", 6))
			v = strtoull(line + 6, NULL, 10) * 1024;
	if (f)
		fclose(f);
	return v;
}

void cold_scan_run(uint64_t bytes, bool huge, cold_scan *r, const char **note)
{
	memset(r, 0, sizeof *r);
	sk_create_opts o = { .flags = SK_CREATE_ANON | (huge ? SK_CREATE_HUGE : 0) };
	sk_segment *s;
	int rc = sk_segment_create(NULL, bytes, &o, &s);
	if (rc) {
		*note = sk_strerror(rc);
		return;
	}
	sk_segment_info in;
	sk_segment_info_get(s, &in);
	r->page_size = in.page_size;
	if (huge && in.page_size <= 4096) {
		*note = "no room in the huge-page pool (vm.nr_hugepages)";
		sk_segment_close(s);
		return;
	}
	memset(sk_segment_data(s), 1, bytes);
	cold_scan *shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		sk_segment *mine;
		if (sk_segment_open_fd(sk_segment_fd(s), SK_RDONLY, &mine))
			_exit(1);
		const uint64_t *w = sk_segment_data(mine);
		size_t n = bytes / 8;
		volatile uint64_t sink = 0;
		for (int pass = 0; pass < 2; pass++) {
			double t0 = now();
			uint64_t s0 = 0, s1 = 0;
			for (size_t i = 0; i + 2 <= n; i += 2)
				s0 += w[i], s1 += w[i + 1];
			sink += s0 + s1;
			double gbps = (double)bytes / (now() - t0) / 1e9;
			*(pass ? &shared->warm_gbps : &shared->cold_gbps) = gbps;
		}
		(void)sink;
		shared->page_tables = (double)vm_pte_bytes();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	r->cold_gbps = shared->cold_gbps;
	r->warm_gbps = shared->warm_gbps;
	r->page_tables = shared->page_tables;
	r->ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
	if (!r->ok)
		*note = "the reader process failed";
	munmap(shared, sizeof *shared);
	sk_segment_close(s);
}
