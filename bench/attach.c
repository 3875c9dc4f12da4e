/*
 * bench/attach: how long a process takes to attach an existing array by
 * name and read its first and last element, for sizes from 1 MiB to 4 GiB.
 * Attaching maps the segment without touching its pages, so the time should
 * not grow with the size.
 *
 *   attach [--json] [--max SIZE_MIB] [--reps N]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "shmkit.h"

int main(int argc, char **argv)
{
	int json = 0, reps = 300;
	uint64_t max_mib = 4096;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max") && i + 1 < argc)
			max_mib = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: attach [--json] [--max SIZE_MIB] [--reps N]\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	uint64_t sizes[16];
	double med[16], p90[16];
	int ns = 0;
	double *t = malloc(sizeof(double) * (size_t)reps);
	char name[64];
	snprintf(name, sizeof name, "shmkit-bench-attach-%d", (int)getpid());
	for (uint64_t mib = 1; mib <= max_mib && ns < 16; mib *= 4) {
		uint64_t n = mib << 20 >> 3;
		sk_array *a;
		int rc = sk_array_create(name, SK_INT64, 1, &n, NULL, &a);
		if (rc) {
			fprintf(stderr, "attach: cannot create %llu MiB: %s\n", (unsigned long long)mib,
				sk_strerror(rc));
			break;
		}
		int64_t *d = sk_array_data(a);
		d[0] = 1;
		d[n - 1] = 2;
		volatile int64_t sink = 0;
		for (int r = 0; r < reps; r++) {
			double t0 = bench_now();
			sk_array *b;
			if (sk_array_open(name, SK_RDONLY, &b))
				return 1;
			const int64_t *e = sk_array_data(b);
			sink += e[0] + e[sk_array_size(b) - 1];
			t[r] = (bench_now() - t0) * 1e6;
			sk_array_close(b);
		}
		(void)sink;
		sk_array_close(a);
		sk_segment_unlink(name);
		sizes[ns] = mib << 20;
		p90[ns] = bench_quantile(t, (size_t)reps, 0.9);
		med[ns] = bench_quantile(t, (size_t)reps, 0.5);
		ns++;
	}
	free(t);
	if (json) {
		printf("{\"bench\": \"attach\", \"reps\": %d, \"sizes\": [", reps);
		for (int i = 0; i < ns; i++)
			printf("%s%llu", i ? ", " : "", (unsigned long long)sizes[i]);
		printf("], \"attach_us_median\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.2f", i ? ", " : "", med[i]);
		printf("], \"attach_us_p90\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.2f", i ? ", " : "", p90[i]);
		printf("]}\n");
	} else {
		printf("%12s  %12s  %12s\n", "size", "median us", "p90 us");
		for (int i = 0; i < ns; i++)
			printf("%9llu MiB  %12.2f  %12.2f\n", (unsigned long long)(sizes[i] >> 20), med[i], p90[i]);
	}
	return ns ? 0 : 1;
}
