/*
 * bench/cluster: libshmkit_mpi against what an MPI program would otherwise
 * do, in one run, under mpirun with at least two nodes (bench/cluster_run.py
 * runs it on two fake hosts whose ranks talk over TCP). Every figure is
 * measured --reps times, interleaved with its baseline, and reported as
 * {min, median, max, n}; every ratio is taken within one repetition and
 * reported the same way.
 *
 * --only replicate (needs several ranks per node to mean anything):
 *   replicate_gbps          bytes / time for sk_cluster_array_replicate of rank 0's
 *                           buffer: every node has one frozen copy that all its
 *                           ranks have attached (the slowest rank's time)
 *   bcast_gbps              the same bytes by MPI_Bcast into a fresh buffer in
 *                           every rank (one copy per rank)
 *   pss_per_node_bytes      PSS of a node's ranks for the replicated data once every
 *                           rank has read every page (the largest node); and
 *   copy_pss_per_node_bytes for the MPI_Bcast copies
 * --only remote (rank 0 against the leader of node 1; others wait):
 *   rtt_us                  ping-pong of 8 bytes
 *   local_loads_per_s       random 8-byte loads from rank 0's node's part
 *   gather_us, gather_elems_per_s   sk_cluster_array_gather of 1 element, and of
 *                           a batch of random elements, all owned by node 1
 *   add_elems_per_s         sk_cluster_array_add with old values, a batch on node 1
 *   with --rma: mpi_get_us, mpi_get_elems_per_s  MPI_Get of 1 element + flush, and
 *                           a batch of MPI_Gets then one flush (passive target,
 *                           lock_all); fetch_and_op_elems_per_s likewise
 *
 * While rank 0 measures, the others wait: in sk_cluster_fence for shmkit's
 * figures (node 1's service answers), in MPI_Barrier for MPI's RMA (the
 * target must be inside MPI to progress: its best case). RMA windows are made
 * with MPI_Win_create over the node's part, never MPI_Win_allocate (MPICH
 * 4.0.2 misplaces RMA in windows of some sizes from it). Open MPI 4.1's RMA
 * component over TCP (osc pt2pt, OMPI_MCA_osc=pt2pt) refuses
 * MPI_THREAD_MULTIPLE, which shmkit's service thread needs: the RMA figures
 * come from a run with --thread single, where shmkit's leaders serve inline
 * and shmkit's figures are measured too, interleaved with MPI's. Every
 * element's final value is checked (results_ok).
 *
 *   cluster [--json] [--quick] [--mib N] [--reps R] [--ranks-per-node K]
 *           [--thread multiple|single] [--rma] [--only replicate|remote]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "measure.h"
#include "shmkit.h"
#include "shmkit/cluster.h"

static int rank, size, ok = 1;

static void die(const char *what, int rc)
{
	fprintf(stderr, "cluster bench: rank %d: %s: %s\n", rank, what, sk_cluster_strerror(rc));
	MPI_Abort(MPI_COMM_WORLD, 1);
}

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* The largest node's PSS for [p, p + n) once every rank has read every page. */
static uint64_t node_pss(sk_cluster *cl, const void *p, size_t n)
{
	const volatile unsigned char *c = p;
	uint64_t s = 0;
	for (size_t i = 0; i < n; i += 4096)
		s += c[i];
	(void)s;
	MPI_Barrier(MPI_COMM_WORLD);
	uint64_t mine = measure_pss_range(p, n), node = 0, most = 0;
	MPI_Allreduce(&mine, &node, 1, MPI_UINT64_T, MPI_SUM, sk_cluster_node_comm(cl));
	MPI_Allreduce(&node, &most, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
	return most;
}

static double max_over_ranks(double v)
{
	MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* How many times x is in the sorted v[0..n). */
static uint64_t occurrences(const uint64_t *v, uint64_t n, uint64_t x)
{
	uint64_t lo = 0, hi = n;
	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	uint64_t c = 0;
	while (lo + c < n && v[lo + c] == x)
		c++;
	return c;
}

/* A figure: one value per repetition. */
typedef struct fig {
	const char *name;
	double *v;
	int n;
} fig;

#define NFIG 16
static fig figs[NFIG];
static int nfigs;

static double *figure(const char *name, int reps)
{
	figs[nfigs] = (fig){ name, calloc((size_t)reps, sizeof(double)), reps };
	return figs[nfigs++].v;
}

static void replication(sk_cluster *cl, uint64_t mib, int reps, uint64_t *pss, uint64_t *copy_pss)
{
	double *rep = figure("replicate_gbps", reps), *bc = figure("bcast_gbps", reps),
	       *ratio = figure("replicate_vs_bcast", reps);
	uint64_t bytes = mib << 20;
	unsigned char *src = NULL;
	if (rank == 0) {
		src = malloc(bytes);
		for (uint64_t i = 0; i < bytes; i += 8) {
			uint64_t v = mix(i);
			memcpy(src + i, &v, 8);
		}
	}
	int rc;
	for (int r = 0; r < reps; r++) {
		sk_cluster_array *a;
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = bench_now();
		if ((rc = sk_cluster_array_replicate(cl, 0, SK_UINT8, 1, &bytes, src, &a)))
			die("replicate", rc);
		rep[r] = (double)bytes / max_over_ranks(bench_now() - t0) / 1e9;
		const unsigned char *d = sk_array_data(sk_cluster_array_local(a));
		for (uint64_t i = 0; i < bytes; i += 1 << 20)
			ok &= d[i] == (unsigned char)mix(i);
		if (r == reps - 1)
			*pss = node_pss(cl, d, bytes);
		if ((rc = sk_cluster_array_close(a)))
			die("close", rc);

		MPI_Barrier(MPI_COMM_WORLD);
		t0 = bench_now();
		unsigned char *buf = rank == 0 ? src : malloc(bytes);
		for (uint64_t off = 0; off < bytes; off += UINT64_C(1) << 30) {
			uint64_t len = bytes - off < (UINT64_C(1) << 30) ? bytes - off : UINT64_C(1) << 30;
			MPI_Bcast(buf + off, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD);
		}
		bc[r] = (double)bytes / max_over_ranks(bench_now() - t0) / 1e9;
		ratio[r] = rep[r] / bc[r];
		if (r == reps - 1)
			*copy_pss = node_pss(cl, buf, bytes);
		if (rank != 0)
			free(buf);
	}
	free(src);
}

static void remote(sk_cluster *cl, int quick, int reps, int rma, uint64_t *batch_out, uint64_t *rma_batch_out)
{
	int nodes = sk_cluster_nodes(cl), nr = sk_cluster_node_rank(cl), peer = sk_cluster_leader_of(cl, 1), rc;
	uint64_t nelem = (quick ? UINT64_C(1) << 20 : UINT64_C(1) << 23) * (uint64_t)nodes;
	sk_cluster_array *p;
	if ((rc = sk_cluster_array_partition(cl, SK_INT64, 1, &nelem, SK_CLUSTER_ROWS, 0, &p)))
		die("partition", rc);
	int64_t *part = sk_array_data(sk_cluster_array_local(p));
	uint64_t r0, r1, q0, q1;
	sk_cluster_array_part(p, -1, &r0, &r1, NULL, NULL);
	if (nr == 0)
		for (uint64_t i = r0; i < r1; i++)
			part[i - r0] = (int64_t)i;
	sk_cluster_array_part(p, 1, &q0, &q1, NULL, NULL);
	uint64_t batch = quick ? 1 << 16 : 1 << 18, rma_batch = quick ? 512 : 4096;
	*batch_out = batch;
	*rma_batch_out = rma_batch;
	uint64_t *idx = malloc(8 * batch), *lidx = malloc(8 * batch);
	int64_t *out = malloc(8 * batch), *ones = malloc(8 * batch);
	for (uint64_t k = 0; k < batch; k++) {
		idx[k] = q0 + mix(k) % (q1 - q0);
		lidx[k] = mix(k + 77) % (r1 - r0);
		ones[k] = 1;
	}
	MPI_Win win = MPI_WIN_NULL;
	if (rma)
		MPI_Win_create(nr == 0 ? part : NULL, nr == 0 ? (MPI_Aint)((r1 - r0) * 8) : 0, 8, MPI_INFO_NULL,
			       MPI_COMM_WORLD, &win);
	if ((rc = sk_cluster_fence(cl)))
		die("fence", rc);
	int lat_n = quick ? 200 : 1000;
	double *rtt = figure("rtt_us", reps), *local = figure("local_loads_per_s", reps),
	       *g_us = figure("gather_us", reps), *g_eps = figure("gather_elems_per_s", reps),
	       *add_eps = figure("add_elems_per_s", reps), *g_local = figure("gather_vs_local_loads", reps);
	double *get_us = NULL, *get_eps = NULL, *fop_eps = NULL, *g_get = NULL, *a_fop = NULL;
	if (rma) {
		get_us = figure("mpi_get_us", reps);
		get_eps = figure("mpi_get_elems_per_s", reps);
		fop_eps = figure("fetch_and_op_elems_per_s", reps);
		g_get = figure("gather_vs_mpi_get", reps);
		a_fop = figure("add_vs_fetch_and_op", reps);
	}
	for (int r = 0; r < reps; r++) {
		/* Ping-pong; the others wait in a fence. */
		if (rank == 0 || rank == peer) {
			int64_t x = 0;
			double t0 = bench_now();
			for (int k = 0; k < lat_n; k++) {
				if (rank == 0) {
					MPI_Send(&x, 1, MPI_INT64_T, peer, 1, MPI_COMM_WORLD);
					MPI_Recv(&x, 1, MPI_INT64_T, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				} else {
					MPI_Recv(&x, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
					MPI_Send(&x, 1, MPI_INT64_T, 0, 1, MPI_COMM_WORLD);
				}
			}
			rtt[r] = (bench_now() - t0) / lat_n * 1e6;
		}
		if ((rc = sk_cluster_fence(cl)))
			die("fence", rc);
		/* shmkit; the others wait in a fence (node 1's leader serves). */
		if (rank == 0) {
			double t0 = bench_now();
			int64_t s = 0;
			for (uint64_t k = 0; k < batch; k++)
				s += __atomic_load_n(&part[lidx[k]], __ATOMIC_RELAXED);
			local[r] = (double)batch / (bench_now() - t0);
			ok &= s != 0;
			t0 = bench_now();
			for (int k = 0; k < lat_n; k++)
				if ((rc = sk_cluster_array_gather(p, 1, &idx[k], out)))
					die("gather", rc);
			g_us[r] = (bench_now() - t0) / lat_n * 1e6;
			t0 = bench_now();
			if ((rc = sk_cluster_array_gather(p, batch, idx, out)))
				die("gather", rc);
			g_eps[r] = (double)batch / (bench_now() - t0);
			t0 = bench_now();
			if ((rc = sk_cluster_array_add(p, batch, idx, ones, out)))
				die("add", rc);
			add_eps[r] = (double)batch / (bench_now() - t0);
			g_local[r] = g_eps[r] / local[r];
		}
		if ((rc = sk_cluster_fence(cl)))
			die("fence", rc);
		/* MPI RMA; the others wait in MPI_Barrier, inside MPI. */
		if (rma && rank == 0) {
			MPI_Win_lock_all(0, win);
			int n1 = lat_n / 10 ? lat_n / 10 : 1;
			double t0 = bench_now();
			for (int k = 0; k < n1; k++) {
				MPI_Get(&out[k], 1, MPI_INT64_T, peer, (MPI_Aint)(idx[k] - q0), 1, MPI_INT64_T, win);
				MPI_Win_flush(peer, win);
			}
			get_us[r] = (bench_now() - t0) / n1 * 1e6;
			t0 = bench_now();
			for (uint64_t k = 0; k < rma_batch; k++)
				MPI_Get(&out[k], 1, MPI_INT64_T, peer, (MPI_Aint)(idx[k] - q0), 1, MPI_INT64_T, win);
			MPI_Win_flush(peer, win);
			get_eps[r] = (double)rma_batch / (bench_now() - t0);
			int64_t one = 1;
			t0 = bench_now();
			for (uint64_t k = 0; k < rma_batch; k++)
				MPI_Fetch_and_op(&one, &out[k], MPI_INT64_T, peer, (MPI_Aint)(idx[k] - q0), MPI_SUM,
						 win);
			MPI_Win_flush(peer, win);
			fop_eps[r] = (double)rma_batch / (bench_now() - t0);
			MPI_Win_unlock_all(win);
			g_get[r] = g_eps[r] / get_eps[r];
			a_fop[r] = add_eps[r] / fop_eps[r];
		}
		MPI_Barrier(MPI_COMM_WORLD);
	}
	/* Every add landed exactly once, shmkit's and MPI's: element i holds i
	 * plus reps times its occurrences in the shmkit batch and in the RMA
	 * batch. */
	if ((rc = sk_cluster_fence(cl)))
		die("fence", rc);
	if (rank == 0) {
		uint64_t *sorted = malloc(8 * batch), *rsorted = malloc(8 * rma_batch);
		memcpy(sorted, idx, 8 * batch);
		memcpy(rsorted, idx, 8 * rma_batch);
		qsort(sorted, batch, 8, cmp_u64);
		qsort(rsorted, rma_batch, 8, cmp_u64);
		if ((rc = sk_cluster_array_gather(p, batch, idx, out)))
			die("gather", rc);
		for (uint64_t k = 0; k < batch; k++) {
			uint64_t n =
			    occurrences(sorted, batch, idx[k]) + (rma ? occurrences(rsorted, rma_batch, idx[k]) : 0);
			ok &= out[k] == (int64_t)idx[k] + reps * (int64_t)n;
		}
		free(sorted);
		free(rsorted);
	}
	if ((rc = sk_cluster_fence(cl)))
		die("fence", rc);
	if (rma)
		MPI_Win_free(&win);
	if ((rc = sk_cluster_array_close(p)))
		die("close", rc);
	free(idx);
	free(lidx);
	free(out);
	free(ones);
}

int main(int argc, char **argv)
{
	int json = 0, quick = 0, reps = 5, rpn = 0, rma = 0, want = MPI_THREAD_MULTIPLE, level;
	const char *only = NULL;
	uint64_t mib = 256;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--quick") == 0)
			quick = 1;
		else if (strcmp(argv[i], "--rma") == 0)
			rma = 1;
		else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc)
			mib = strtoull(argv[++i], NULL, 0);
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--ranks-per-node") == 0 && i + 1 < argc)
			rpn = atoi(argv[++i]);
		else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
			only = argv[++i];
		else if (strcmp(argv[i], "--thread") == 0 && i + 1 < argc)
			want = strcmp(argv[++i], "single") == 0 ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE;
	}
	MPI_Init_thread(&argc, &argv, want, &level);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (quick) {
		mib = mib > 32 ? 32 : mib;
		reps = reps > 3 ? 3 : reps;
	}
	if (reps < 1)
		reps = 1;
	int do_rep = !only || strcmp(only, "replicate") == 0, do_remote = !only || strcmp(only, "remote") == 0;
	sk_cluster_opts o = { .ranks_per_node = rpn };
	sk_cluster *cl;
	int rc = sk_cluster_create(MPI_COMM_WORLD, &o, &cl);
	if (rc)
		die("sk_cluster_create", rc);
	int nodes = sk_cluster_nodes(cl);
	if (nodes < 2 || sk_cluster_node_of(cl, 0) != 0) {
		if (rank == 0)
			fprintf(stderr, "cluster bench: needs at least two nodes\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	int per_node = 0;
	for (int k = 0; k < size; k++)
		per_node += sk_cluster_node_of(cl, k) == 0;
	uint64_t pss = 0, copy_pss = 0, batch = 0, rma_batch = 0;
	if (do_rep)
		replication(cl, mib, reps, &pss, &copy_pss);
	if (do_remote)
		remote(cl, quick, reps, rma, &batch, &rma_batch);
	int serve = sk_cluster_serve_mode(cl);
	if ((rc = sk_cluster_close(cl)))
		die("close", rc);
	MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);

	if (rank == 0) {
		double data = (double)(mib << 20);
		if (json) {
			printf("{\"ranks\": %d, \"nodes\": %d, \"ranks_per_node\": %d, \"serve\": \"%s\", ", size,
			       nodes, per_node, serve == SK_CLUSTER_SERVE_THREAD ? "thread" : "inline");
			if (do_rep)
				printf("\"replicate_bytes\": %llu, \"pss_per_node_bytes\": %llu, "
				       "\"pss_per_node_vs_data\": "
				       "%.4f, \"copy_pss_per_node_bytes\": %llu, \"copy_pss_per_node_vs_data\": %.4f, ",
				       (unsigned long long)(mib << 20), (unsigned long long)pss, (double)pss / data,
				       (unsigned long long)copy_pss, (double)copy_pss / data);
			if (do_remote)
				printf("\"gather_batch\": %llu, \"rma_batch\": %llu, ", (unsigned long long)batch,
				       rma ? (unsigned long long)rma_batch : 0ull);
			for (int f = 0; f < nfigs; f++) {
				double *v = figs[f].v;
				int n = figs[f].n;
				printf("\"%s\": {\"min\": %.6g, \"median\": %.6g, \"max\": %.6g, \"n\": %d}, ",
				       figs[f].name, bench_quantile(v, (size_t)n, 0.0),
				       bench_quantile(v, (size_t)n, 0.5), bench_quantile(v, (size_t)n, 1.0), n);
			}
			printf("\"results_ok\": %s}\n", ok ? "true" : "false");
		} else {
			for (int f = 0; f < nfigs; f++)
				printf("%-26s median %.6g [%.6g, %.6g]\n", figs[f].name,
				       bench_quantile(figs[f].v, (size_t)figs[f].n, 0.5),
				       bench_quantile(figs[f].v, (size_t)figs[f].n, 0.0),
				       bench_quantile(figs[f].v, (size_t)figs[f].n, 1.0));
			if (do_rep)
				printf("PSS per node: %.3fx the data (one MPI_Bcast copy per rank: %.3fx)\n",
				       (double)pss / data, (double)copy_pss / data);
			printf("results %s\n", ok ? "ok" : "WRONG");
		}
	}
	MPI_Finalize();
	return ok ? 0 : 1;
}
