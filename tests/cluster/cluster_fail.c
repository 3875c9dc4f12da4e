/*
 * cluster_fail.c: failures for tests/cluster/test_cluster_c.py, one mode per
 * run (the job ends with them: MPI is fail-stop).
 *
 *   cluster_fail stop leader|member   the leader (or a non-leader) of the last
 *       node stops (SIGSTOP) while the others gather, add and fence: every
 *       other rank must fail with SK_ECLUSTER_TIMEOUT within the deadline
 *   cluster_fail stuck               inline serving; the leader of the last
 *       node computes outside the library for three deadlines while rank 0
 *       gathers from it: rank 0 must time out after one deadline
 *   cluster_fail kill leader|member  the rank SIGKILLs itself mid-run
 *   cluster_fail churn              creates, uses and closes objects until it
 *       is killed from outside (at random moments, by the test)
 *
 * Each surviving rank prints "rank R: failed after T s: code C (text)", waits
 * for the others to print, and aborts the job. The deadline comes from
 * SHMKIT_CLUSTER_DEADLINE_MS; SHMKIT_TEST_RANKS_PER_NODE as in test_cluster.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmkit.h"
#include "shmkit/cluster.h"

static int rank, size;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "rank %d: %s: %s\n", rank, what, sk_cluster_strerror(rc));
	MPI_Abort(MPI_COMM_WORLD, 1);
}

/* One round of remote work on every node: gather and add everywhere, then a fence. */
static int round_of_work(sk_cluster *cl, sk_cluster_array *a, uint64_t n)
{
	uint64_t idx[256];
	int64_t v[256];
	for (int k = 0; k < 256; k++) {
		idx[k] = (uint64_t)k * n / 256;
		v[k] = 1;
	}
	int rc = sk_cluster_array_gather(a, 256, idx, v);
	if (!rc)
		rc = sk_cluster_array_add(a, 256, idx, v, NULL);
	if (!rc)
		rc = sk_cluster_fence(cl);
	return rc;
}

static void report(sk_cluster *cl, double t0, int rc, double wait_s)
{
	char mpi[MPI_MAX_ERROR_STRING] = "";
	int len = 0;
	if (sk_cluster_mpi_error(cl) != MPI_SUCCESS)
		MPI_Error_string(sk_cluster_mpi_error(cl), mpi, &len);
	char line[1024];
	snprintf(line, sizeof line, "rank %d: failed after %.3f s: code %d (%s%s%s); handle failed with %d\n", rank,
		 now_s() - t0, rc, sk_cluster_strerror(rc), len ? ": " : "", mpi, sk_cluster_failed(cl));
	fputs(line, stdout);
	fflush(stdout);
	/* Also in a file: a launcher may lose a line of a rank that it kills. */
	const char *dir = getenv("SHMKIT_TEST_RESULTS");
	if (dir) {
		char path[512];
		snprintf(path, sizeof path, "%s/rank-%d", dir, rank);
		FILE *f = fopen(path, "w");
		if (f) {
			fputs(line, f);
			fclose(f);
		}
	}
	/* The handle is failed: close is local, and leaves nothing behind. */
	sk_cluster_close(cl);
	/* Let the other survivors report too, then end the job. */
	double until = now_s() + wait_s;
	while (now_s() < until)
		usleep(10000);
	MPI_Abort(MPI_COMM_WORLD, 3);
}

int main(int argc, char **argv)
{
	int got;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &got);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc < 2) {
		fprintf(stderr, "usage: cluster_fail stop|stuck|kill|churn [leader|member]\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	const char *mode = argv[1], *role = argc > 2 ? argv[2] : "leader";
	int rpn = getenv("SHMKIT_TEST_RANKS_PER_NODE") ? atoi(getenv("SHMKIT_TEST_RANKS_PER_NODE")) : 0;
	sk_cluster_opts o = { .ranks_per_node = rpn };
	if (strcmp(mode, "stuck") == 0)
		o.serve = SK_CLUSTER_SERVE_INLINE;
	sk_cluster *cl;
	int rc = sk_cluster_create(MPI_COMM_WORLD, &o, &cl);
	if (rc)
		die("sk_cluster_create", rc);
	int nodes = sk_cluster_nodes(cl), last = nodes - 1;
	int victim = sk_cluster_leader_of(cl, last);
	if (strcmp(role, "member") == 0) {
		for (int r = size - 1; r >= 0; r--)
			if (sk_cluster_node_of(cl, r) == last) {
				victim = r;
				break;
			}
	}
	if (rank == 0)
		printf("job %016llx: %d ranks, %d nodes, victim rank %d\n", (unsigned long long)sk_cluster_job_id(cl),
		       size, nodes, victim);
	printf("rank %d pid %d node %d\n", rank, (int)getpid(), sk_cluster_node(cl));
	fflush(stdout);

	if (strcmp(mode, "churn") == 0) {
		/* Until killed: every create is a window where a name exists. */
		uint64_t n = 1 << 17, shape[2] = { 512, 64 };
		int64_t *buf = malloc(n * 8);
		for (uint64_t i = 0; i < n; i++)
			buf[i] = (int64_t)i;
		for (unsigned it = 0;; it++) {
			sk_cluster_array *r, *p;
			sk_cluster_bits *b;
			if ((rc = sk_cluster_array_replicate(cl, (int)(it % (unsigned)size), SK_INT64, 1, &n, buf, &r)))
				die("replicate", rc);
			if ((rc = sk_cluster_array_partition(cl, SK_INT64, 2, shape, SK_CLUSTER_BLOCKS, 0, &p)))
				die("partition", rc);
			if ((rc = sk_cluster_bits_partition(cl, 100000, &b)))
				die("bits", rc);
			if ((rc = round_of_work(cl, p, 512 * 64)))
				die("work", rc);
			if ((rc = sk_cluster_bits_close(b)) || (rc = sk_cluster_array_close(p)) ||
			    (rc = sk_cluster_array_close(r)))
				die("close", rc);
		}
	}

	uint64_t n = 4096;
	sk_cluster_array *a;
	if ((rc = sk_cluster_array_partition(cl, SK_INT64, 1, &n, SK_CLUSTER_ROWS, 0, &a)))
		die("partition", rc);
	if ((rc = round_of_work(cl, a, n)))
		die("first round", rc);
	double deadline_s = 0;
	{
		int64_t d = sk_cluster_set_deadline(cl, 1);
		sk_cluster_set_deadline(cl, d);
		deadline_s = (double)d / 1e9;
	}
	double t0 = now_s();
	if (strcmp(mode, "stop") == 0 || strcmp(mode, "kill") == 0) {
		if (rank == victim) {
			raise(strcmp(mode, "stop") == 0 ? SIGSTOP : SIGKILL);
			for (;;)
				pause();
		}
		for (;;)
			if ((rc = round_of_work(cl, a, n)))
				report(cl, t0, rc, 1.0);
	}
	if (strcmp(mode, "stuck") == 0) {
		/* The victim tells rank 0 (with plain MPI, outside the library) that
		 * it has left the library: a gather sent while the victim was still
		 * inside its last fence would be served there, inline, in time. */
		int gatherer = sk_cluster_node_of(cl, 0) != last, left = 1;
		if (rank == victim) {
			if (gatherer)
				MPI_Send(&left, 1, MPI_INT, 0, 4242, MPI_COMM_WORLD);
			/* Busy outside the library for three deadlines. */
			while (now_s() - t0 < 3 * deadline_s)
				;
			rc = sk_cluster_fence(cl);
			report(cl, t0, rc ? rc : -1, 1.0);
		}
		if (rank == 0 && gatherer) {
			uint64_t i = n - 1;
			int64_t v;
			MPI_Recv(&left, 1, MPI_INT, victim, 4242, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			t0 = now_s(); /* the gather's own time is what the test checks */
			rc = sk_cluster_array_gather(a, 1, &i, &v);
			report(cl, t0, rc ? rc : -1, 4 * deadline_s + 2.0);
		}
		rc = sk_cluster_fence(cl);
		report(cl, t0, rc ? rc : -1, 4 * deadline_s + 2.0);
	}
	die("unknown mode", -22);
	return 1;
}
