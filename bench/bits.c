/*
 * bench/bits: popcount speed over 1 GiB of bits next to a plain read of the
 * same buffer, in the same run, on every SIMD path this CPU has. The ratio
 * popcount_gbps / read_gbps says how close counting runs to memory speed.
 *
 *   bits [--json] [--size MIB] [--reps N]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "internal.h"
#include "shmkit.h"

/* The baseline: sum every word, four independent accumulators. */
__attribute__((noinline)) static uint64_t plain_read(const uint64_t *w, size_t n)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += w[i];
		s1 += w[i + 1];
		s2 += w[i + 2];
		s3 += w[i + 3];
	}
	for (; i < n; i++)
		s0 += w[i];
	return s0 + s1 + s2 + s3;
}

int main(int argc, char **argv)
{
	int json = 0, reps = 7;
	uint64_t mib = 1024;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			mib = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: bits [--json] [--size MIB] [--reps N]\n");
			return 2;
		}
	}
	if (reps < 1)
		reps = 1;
	char name[64];
	snprintf(name, sizeof name, "shmkit-bench-bits-%d", (int)getpid());
	uint64_t nbits = mib << 23, bytes = nbits / 8;
	sk_bits *b;
	int rc = sk_bits_create(name, nbits, NULL, &b);
	if (rc) {
		fprintf(stderr, "bits: cannot create %llu MiB: %s\n", (unsigned long long)mib, sk_strerror(rc));
		return 1;
	}
	uint64_t *w = sk_bits_words(b), seed = 88172645463325252ull, expect = 0;
	for (uint64_t i = 0; i < nbits / 64; i++) {
		seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
		w[i] = seed;
		expect += (uint64_t)__builtin_popcountll(seed);
	}
	double *t = malloc(sizeof(double) * (size_t)reps);
	volatile uint64_t sink = 0;
	for (int r = 0; r < reps; r++) {
		double t0 = bench_now();
		sink += plain_read(w, nbits / 64);
		t[r] = bench_now() - t0;
	}
	double read_gbps = (double)bytes / bench_quantile(t, (size_t)reps, 0.5) / 1e9;

	const char *names[] = { "portable", "popcnt", "avx2", "avx512" };
	double gbps[4] = { 0 };
	int best = -1, ok = 1;
	for (int l = 0; l < 4; l++) {
		if (sk__simd_force(l))
			continue;
		for (int r = 0; r < reps; r++) {
			double t0 = bench_now();
			int64_t c = sk_bits_count(b, 0, nbits);
			t[r] = bench_now() - t0;
			ok &= (uint64_t)c == expect;
		}
		gbps[l] = (double)bytes / bench_quantile(t, (size_t)reps, 0.5) / 1e9;
		best = l;
	}
	(void)sink;
	free(t);
	sk_bits_close(b);
	sk_segment_unlink(name);
	if (json) {
		printf(
		    "{\"bench\": \"bits\", \"bytes\": %llu, \"reps\": %d, \"simd\": \"%s\", \"popcount_gbps\": %.2f, "
		    "\"read_gbps\": %.2f, \"popcount_vs_read\": %.3f, \"results_ok\": %s, \"paths\": {",
		    (unsigned long long)bytes, reps, names[best], gbps[best], read_gbps, gbps[best] / read_gbps,
		    ok ? "true" : "false");
		for (int l = 0, k = 0; l < 4; l++)
			if (gbps[l] > 0)
				printf("%s\"%s\": %.2f", k++ ? ", " : "", names[l], gbps[l]);
		printf("}}\n");
	} else {
		printf("plain read:        %6.2f GB/s\n", read_gbps);
		for (int l = 0; l < 4; l++)
			if (gbps[l] > 0)
				printf("popcount %-8s  %6.2f GB/s (%.2fx read)\n", names[l], gbps[l],
				       gbps[l] / read_gbps);
		printf("results %s\n", ok ? "ok" : "WRONG");
	}
	return ok ? 0 : 1;
}
