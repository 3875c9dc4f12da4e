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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "coldscan.h"
#include "shmkit.h"

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f && fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static void write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", v);
		fclose(f);
	}
}

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

	/* Cold scan of 1 GiB by a freshly attached process, plain and huge pages.
	 * Huge pages need room in the pool; as root the benchmark makes it for
	 * this measurement and puts the setting back. */
	uint64_t cold_bytes = (max_mib >= 1024 ? 1024 : max_mib) << 20;
	cold_scan plain, huge;
	const char *plain_note = NULL, *huge_note = NULL;
	cold_scan_run(cold_bytes, false, &plain, &plain_note);
	if (!plain.ok) {
		fprintf(stderr, "attach: the cold scan failed: %s\n", plain_note);
		return 1;
	}
	const char *nr = "/proc/sys/vm/nr_hugepages";
	long saved = read_long(nr), need = (long)(cold_bytes >> 21) + 2;
	if (saved >= 0 && saved < need && geteuid() == 0)
		write_long(nr, need);
	cold_scan_run(cold_bytes, true, &huge, &huge_note);
	if (saved >= 0 && read_long(nr) != saved)
		write_long(nr, saved);

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
		printf("], \"cold_scan_bytes\": %llu, \"cold_scan_gbps\": %.2f, \"warm_scan_gbps\": %.2f, "
		       "\"page_tables_bytes\": %.0f",
		       (unsigned long long)cold_bytes, plain.cold_gbps, plain.warm_gbps, plain.page_tables);
		if (huge_note)
			printf(", \"cold_scan_gbps_huge\": null, \"huge_note\": \"%s\"}\n", huge_note);
		else
			printf(", \"cold_scan_gbps_huge\": %.2f, \"warm_scan_gbps_huge\": %.2f, "
			       "\"page_tables_bytes_huge\": %.0f}\n",
			       huge.cold_gbps, huge.warm_gbps, huge.page_tables);
	} else {
		printf("%12s  %12s  %12s\n", "size", "median us", "p90 us");
		for (int i = 0; i < ns; i++)
			printf("%9llu MiB  %12.2f  %12.2f\n", (unsigned long long)(sizes[i] >> 20), med[i], p90[i]);
		printf("fresh process scanning %llu MiB: 4 KiB pages cold %.1f GB/s, warm %.1f GB/s, page tables %.0f "
		       "KiB\n",
		       (unsigned long long)(cold_bytes >> 20), plain.cold_gbps, plain.warm_gbps,
		       plain.page_tables / 1024);
		if (huge_note)
			printf("huge pages: %s\n", huge_note);
		else
			printf("                            2 MiB pages cold %.1f GB/s, warm %.1f GB/s, page tables "
			       "%.0f KiB\n",
			       huge.cold_gbps, huge.warm_gbps, huge.page_tables / 1024);
	}
	return ns ? 0 : 1;
}
