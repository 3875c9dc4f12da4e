/*
 * bench/machine: this machine's own limits, measured, never assumed:
 *   read_gbps_1        one process summing a private, already-touched buffer
 *   read_gbps_n        nproc processes doing the same at once (aggregate)
 *   first_touch_gbps   writing a freshly created shared segment once (its
 *                      pages get mapped into the process on the way)
 *   warm_write_gbps    writing the same segment again
 *   memcpy_gbps        memcpy between two private buffers (bytes copied)
 * Each is the median of --reps runs, with the minimum and maximum.
 *
 *   machine [--json] [--mib N] [--reps N]
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "measure.h"
#include "shmkit.h"

typedef struct stat3 {
	double med, min, max;
} stat3;

static stat3 summarize(double *v, int n)
{
	stat3 s;
	s.min = bench_quantile(v, (size_t)n, 0.0);
	s.max = v[n - 1];
	s.med = bench_quantile(v, (size_t)n, 0.5);
	return s;
}

/* Aggregate GB/s of `procs` processes each reading its own buffer of `bytes`
 * `passes` times, after touching it. */
static double read_gbps(int procs, size_t bytes, int passes)
{
	/* Finish times of the readers, then the start flags. */
	double *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	volatile int *go = (volatile int *)(shared + 256);
	volatile int *ready = go + 1;
	*go = 0, *ready = 0;
	fflush(NULL);
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			uint64_t *buf = malloc(bytes);
			memset(buf, 1, bytes);
			__atomic_fetch_add(ready, 1, __ATOMIC_SEQ_CST);
			while (!*go)
				;
			volatile uint64_t sink = 0;
			for (int k = 0; k < passes; k++)
				sink += measure_sum_words(buf, bytes / 8);
			(void)sink;
			shared[p] = bench_now(); /* before exit: freeing the buffer is not reading */
			_exit(0);
		}
	}
	while (*ready < procs)
		usleep(100);
	double t0 = bench_now();
	*go = 1;
	for (int p = 0; p < procs; p++)
		wait(NULL);
	double end = 0;
	for (int p = 0; p < procs; p++)
		end = shared[p] > end ? shared[p] : end;
	double secs = end - t0;
	munmap(shared, 4096);
	return (double)bytes * passes * procs / secs / 1e9;
}

int main(int argc, char **argv)
{
	int json = 0, reps = 5;
	size_t mib = 512;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mib") && i + 1 < argc)
			mib = (size_t)atol(argv[++i]);
		else {
			fprintf(stderr, "usage: machine [--json] [--mib N] [--reps N]\n");
			return 2;
		}
	}
	if (reps < 1 || reps > 50)
		reps = 5;
	if (mib < 16)
		mib = 16;
	int nproc = (int)sysconf(_SC_NPROCESSORS_ONLN);
	size_t bytes = mib << 20;
	double r1[50], rn[50], ft[50], ww[50], mc[50];
	char name[64];
	snprintf(name, sizeof name, "shmkit-bench-machine-%d", (int)getpid());
	uint8_t *src = malloc(bytes), *dst = malloc(bytes);
	memset(src, 3, bytes);
	memset(dst, 4, bytes);
	for (int r = 0; r < reps; r++) {
		r1[r] = read_gbps(1, bytes, 3);
		rn[r] = read_gbps(nproc, bytes / (size_t)nproc, 3);
		sk_segment *s;
		int rc = sk_segment_create(name, bytes, NULL, &s);
		if (rc) {
			fprintf(stderr, "machine: %s\n", sk_strerror(rc));
			return 1;
		}
		double t0 = bench_now();
		memset(sk_segment_data(s), 7, bytes);
		ft[r] = (double)bytes / (bench_now() - t0) / 1e9;
		t0 = bench_now();
		memset(sk_segment_data(s), 8, bytes);
		ww[r] = (double)bytes / (bench_now() - t0) / 1e9;
		sk_segment_close(s);
		sk_segment_unlink(name);
		t0 = bench_now();
		memcpy(dst, src, bytes);
		mc[r] = (double)bytes / (bench_now() - t0) / 1e9;
	}
	stat3 a = summarize(r1, reps), b = summarize(rn, reps), c = summarize(ft, reps), d = summarize(ww, reps),
	      e = summarize(mc, reps);
	if (json)
		printf("{\"bench\": \"machine\", \"reps\": %d, \"bytes\": %zu, \"nproc\": %d, "
		       "\"read_gbps_1\": %.2f, \"read_gbps_1_range\": [%.2f, %.2f], "
		       "\"read_gbps_n\": %.2f, \"read_gbps_n_range\": [%.2f, %.2f], "
		       "\"first_touch_gbps\": %.2f, \"first_touch_gbps_range\": [%.2f, %.2f], "
		       "\"warm_write_gbps\": %.2f, \"warm_write_gbps_range\": [%.2f, %.2f], "
		       "\"memcpy_gbps\": %.2f, \"memcpy_gbps_range\": [%.2f, %.2f]}\n",
		       reps, bytes, nproc, a.med, a.min, a.max, b.med, b.min, b.max, c.med, c.min, c.max, d.med, d.min,
		       d.max, e.med, e.min, e.max);
	else
		printf("read, 1 process:      %6.2f GB/s (%.2f-%.2f)\nread, %d processes:    %6.2f GB/s (%.2f-%.2f)\n"
		       "first touch of shared memory: %6.2f GB/s (%.2f-%.2f)\nwarm write:          %6.2f GB/s\n"
		       "memcpy:              %6.2f GB/s\n",
		       a.med, a.min, a.max, nproc, b.med, b.min, b.max, c.med, c.min, c.max, d.med, e.med);
	free(src);
	free(dst);
	return 0;
}
