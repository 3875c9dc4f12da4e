/*
 * cluster_seed: the many-workers-one-copy problem at cluster scale, on MPI.
 *
 *   mpirun -n 8 --hostfile hosts ./cluster_seed          (two nodes of 4 ranks)
 *   mpirun -n 8 ./cluster_seed --ranks-per-node 4         (two pseudo-nodes on one box)
 *
 * Rank 0 sieves a bit array of the primes below 2^26 and draws 2^22 int64
 * values; both are replicated: one read-only copy per node, which every rank
 * of the node reads zero-copy. Every rank takes its share of the values,
 * looks each up in the bit array, and counts the primes among them in 4096
 * buckets (the value modulo 4096): a partitioned int64 array spread over the
 * nodes, updated with batched atomic adds from every rank. After a fence,
 * the leader of every node checks the counters against its own count over
 * the whole data.
 *
 * Options: --bits N, --values N, --ranks-per-node K. Prints one line per
 * node with the memory its ranks use for the replicated data (PSS), and
 * "counters agree: ok" at the end.
 */
#include <shmkit.h>
#include <shmkit/cluster.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096
#define BATCH   65536

static int rank;

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "rank %d: %s: %s\n", rank, what, sk_cluster_strerror(rc));
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
}

/* PSS of this process's mappings inside [p, p + n), in bytes. */
static unsigned long long pss_of(const void *p, size_t n)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	char line[512];
	unsigned long long pss = 0;
	int in = 0;
	unsigned long lo = (unsigned long)p, hi = lo + n;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b, kb;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a < hi && b > lo;
		else if (in && sscanf(line, "Pss: %lu kB", &kb) == 1)
			pss += kb * 1024ull;
	}
	fclose(f);
	return pss;
}

int main(int argc, char **argv)
{
	int level;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &level);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	int size;
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	uint64_t nbits = UINT64_C(1) << 26, nvalues = UINT64_C(1) << 22;
	sk_cluster_opts opts = { 0 };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--bits") == 0)
			nbits = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--values") == 0)
			nvalues = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--ranks-per-node") == 0)
			opts.ranks_per_node = atoi(argv[i + 1]);
	}

	sk_cluster *cl;
	check(sk_cluster_create(MPI_COMM_WORLD, &opts, &cl), "sk_cluster_create");

	/* Rank 0 makes the data: a sieve and some values. */
	uint64_t *prime_words = NULL;
	int64_t *values = NULL;
	if (rank == 0) {
		uint64_t nw = (nbits + 63) / 64;
		prime_words = malloc(nw * 8);
		values = malloc(nvalues * 8);
		if (!prime_words || !values)
			check(-12, "malloc");
		memset(prime_words, 0xff, nw * 8);
		prime_words[0] &= ~UINT64_C(3); /* 0 and 1 */
		for (uint64_t p = 2; p * p < nbits; p++)
			if (prime_words[p / 64] >> (p % 64) & 1)
				for (uint64_t m = p * p; m < nbits; m += p)
					prime_words[m / 64] &= ~(UINT64_C(1) << (m % 64));
		uint64_t x = 88172645463325252ull;
		for (uint64_t i = 0; i < nvalues; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			values[i] = (int64_t)(x >> 1);
		}
	}
	/* One copy per node, read-only, from rank 0's buffers. */
	sk_cluster_bits *primes;
	sk_cluster_array *vals;
	check(sk_cluster_bits_replicate(cl, 0, nbits, prime_words, &primes), "replicate bits");
	check(sk_cluster_array_replicate(cl, 0, SK_INT64, 1, &nvalues, values, &vals), "replicate values");
	free(prime_words);
	free(values);
	/* The counters, spread over the nodes. */
	uint64_t nb = BUCKETS;
	sk_cluster_array *counts;
	check(sk_cluster_array_partition(cl, SK_INT64, 1, &nb, SK_CLUSTER_ROWS, 0, &counts), "partition counters");

	/* Every rank: its share of the values, read from the node's copy. */
	const sk_bits *pb = sk_cluster_bits_local(primes);
	const int64_t *v = sk_array_data(sk_cluster_array_local(vals));
	uint64_t lo = nvalues * (uint64_t)rank / (uint64_t)size, hi = nvalues * (uint64_t)(rank + 1) / (uint64_t)size;
	uint64_t *idx = malloc(BATCH * 8);
	int64_t *ones = malloc(BATCH * 8);
	for (int k = 0; k < BATCH; k++)
		ones[k] = 1;
	uint64_t pending = 0;
	double t0 = MPI_Wtime();
	for (uint64_t i = lo; i < hi; i++) {
		uint64_t x = (uint64_t)v[i];
		if (sk_bits_test(pb, x % nbits) == 1)
			idx[pending++] = x % BUCKETS;
		if (pending == BATCH || (i + 1 == hi && pending)) {
			check(sk_cluster_array_add(counts, pending, idx, ones, NULL), "add");
			pending = 0;
		}
	}
	check(sk_cluster_fence(cl), "fence");
	double t1 = MPI_Wtime();

	/* Every node's leader checks the counters against its own count over
	 * the whole data, read from its node's copy. */
	int ok = 1;
	uint64_t hits = 0;
	if (sk_cluster_node_rank(cl) == 0) {
		int64_t *want = calloc(BUCKETS, 8), *got = malloc(BUCKETS * 8);
		uint64_t *all = malloc(BUCKETS * 8);
		for (uint64_t i = 0; i < nvalues; i++) {
			uint64_t x = (uint64_t)v[i];
			if (sk_bits_test(pb, x % nbits) == 1) {
				want[x % BUCKETS]++;
				hits++;
			}
		}
		for (uint64_t b = 0; b < BUCKETS; b++)
			all[b] = b;
		check(sk_cluster_array_gather(counts, BUCKETS, all, got), "gather");
		ok = memcmp(want, got, BUCKETS * 8) == 0;
		free(want);
		free(got);
		free(all);
	}
	check(sk_cluster_fence(cl), "fence");
	MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

	/* Memory: the replicated data, once per node (every page of it has now
	 * been read on every node). */
	unsigned long long pss = pss_of(v, nvalues * 8) + pss_of(sk_bits_words(pb), (nbits + 63) / 64 * 8), node_pss;
	MPI_Reduce(&pss, &node_pss, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, sk_cluster_node_comm(cl));
	double data = (double)(nvalues * 8 + (nbits + 63) / 64 * 8);
	if (sk_cluster_node_rank(cl) == 0)
		printf("node %d: %d ranks hold %.1f MiB of replicated data in %.1f MiB (PSS, %.2fx)\n",
		       sk_cluster_node(cl), sk_cluster_node_size(cl), data / 1048576.0, (double)node_pss / 1048576.0,
		       (double)node_pss / data);
	fflush(stdout);
	check(sk_cluster_fence(cl), "fence");
	if (rank == 0) {
		printf("%d ranks on %d nodes: %llu of %llu values hit a prime below %llu, counted in %.3f s\n", size,
		       sk_cluster_nodes(cl), (unsigned long long)hits, (unsigned long long)nvalues,
		       (unsigned long long)nbits, t1 - t0);
		printf("counters agree: %s\n", ok ? "ok" : "MISMATCH");
	}
	free(idx);
	free(ones);
	check(sk_cluster_array_close(counts), "close");
	check(sk_cluster_array_close(vals), "close");
	check(sk_cluster_bits_close(primes), "close");
	check(sk_cluster_close(cl), "close");
	MPI_Finalize();
	return ok ? 0 : 1;
}
