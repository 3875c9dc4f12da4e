/*
 * test_cluster.c: libshmkit_mpi, run by every rank of an MPI job
 * (tests/cluster/test_cluster_c.py starts it under mpirun for each MPI and
 * topology). Every rank runs the same cmocka tests in the same order; the
 * collective calls inside them meet as MPI collectives do. A rank whose
 * assertion fails prints it and aborts the whole job (MPI_Abort), so a
 * failure never leaves the others waiting.
 *
 * Every operation is checked against a single-process reference: each rank
 * replays every rank's operations (all are derived from seeds) on a private
 * copy, then reads the whole distributed object back and compares.
 *
 * Environment: SHMKIT_TEST_RANKS_PER_NODE (pseudo-nodes of k ranks),
 * SHMKIT_TEST_NODES (the number of nodes the topology must give),
 * SHMKIT_TEST_THREAD=single (MPI without MPI_THREAD_MULTIPLE: inline serving),
 * SHMKIT_TEST_TMP (a directory for .npy files).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shmkit.h"
#include "shmkit/cluster.h"

/* The internals: the .npy parser, and the wire format and the handle for
 * forging requests (test_hostile_requests). */
#include "internal.h"

static int RANK, SIZE, RPN, THREADED;
static sk_cluster *CL;
static int test_done;

static void must(int rc, const char *what)
{
	if (rc < 0)
		fail_msg("rank %d: %s: %d (%s)", RANK, what, rc, sk_cluster_strerror(rc));
}

#define MUST(x) must((x), #x)

static uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Element j of the reference data of a seed, as dtype dt. Floats are small
 * integers and halves, so sums are exact. */
static void ref_value(sk_dtype dt, uint64_t seed, uint64_t j, void *out)
{
	uint64_t m = mix(seed * 1000003 + j);
	switch (dt) {
	case SK_BOOL: *(uint8_t *)out = m & 1; break;
	case SK_FLOAT32: *(float *)out = (float)(m % 20001) / 2 - 5000; break;
	case SK_FLOAT64: *(double *)out = (double)(m % 2000001) / 2 - 500000; break;
	default: memcpy(out, &m, sk_dtype_size(dt)); break;
	}
}

/* elem += delta in the element's own type (integers wrap). */
static void ref_add(sk_dtype dt, void *elem, const void *delta)
{
	switch (dt) {
	case SK_FLOAT32: *(float *)elem += *(const float *)delta; break;
	case SK_FLOAT64: *(double *)elem += *(const double *)delta; break;
	case SK_INT8:
	case SK_UINT8: *(uint8_t *)elem = (uint8_t)(*(uint8_t *)elem + *(const uint8_t *)delta); break;
	case SK_INT16:
	case SK_UINT16: *(uint16_t *)elem = (uint16_t)(*(uint16_t *)elem + *(const uint16_t *)delta); break;
	case SK_INT32:
	case SK_UINT32: *(uint32_t *)elem += *(const uint32_t *)delta; break;
	default: *(uint64_t *)elem += *(const uint64_t *)delta; break;
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	assert_non_null(p);
	return p;
}

/* A random permutation of 0..n-1. */
static uint64_t *shuffled(uint64_t n, uint64_t seed)
{
	uint64_t *p = xmalloc(sizeof *p * n);
	for (uint64_t i = 0; i < n; i++)
		p[i] = i;
	for (uint64_t i = n; i > 1; i--) {
		uint64_t j = mix(seed + i) % i, t = p[i - 1];
		p[i - 1] = p[j];
		p[j] = t;
	}
	return p;
}

static int64_t allmin(int64_t v)
{
	MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
	return v;
}

static int64_t allmax(int64_t v)
{
	MPI_Allreduce(MPI_IN_PLACE, &v, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
	return v;
}

/* Every rank must see the same return code. */
static void assert_same_everywhere(int rc)
{
	assert_int_equal(allmin(rc), allmax(rc));
}

/* ---- Topology ---- */

static void test_topology(void **state)
{
	(void)state;
	int node = sk_cluster_node(CL), nodes = sk_cluster_nodes(CL);
	assert_int_equal(sk_cluster_rank(CL), RANK);
	assert_int_equal(sk_cluster_size(CL), SIZE);
	assert_true(node >= 0 && node < nodes);
	const char *want = getenv("SHMKIT_TEST_NODES");
	if (want)
		assert_int_equal(nodes, atoi(want));
	if (RPN > 0)
		assert_true(sk_cluster_node_size(CL) <= RPN);

	/* Rank -> node, as every rank sees it, against each rank's own word. */
	int *nodes_of = xmalloc(sizeof(int) * (size_t)SIZE), *nranks = xmalloc(sizeof(int) * (size_t)SIZE);
	int mine[2] = { node, sk_cluster_node_rank(CL) }, *all = xmalloc(sizeof(int) * 2 * (size_t)SIZE);
	MPI_Allgather(mine, 2, MPI_INT, all, 2, MPI_INT, MPI_COMM_WORLD);
	for (int r = 0; r < SIZE; r++) {
		nodes_of[r] = all[2 * r];
		nranks[r] = all[2 * r + 1];
		assert_int_equal(sk_cluster_node_of(CL, r), nodes_of[r]);
	}
	assert_int_equal(sk_cluster_node_of(CL, SIZE), -ERANGE);
	assert_int_equal(sk_cluster_node_of(CL, -1), -ERANGE);
	assert_int_equal(sk_cluster_leader_of(CL, nodes), -ERANGE);
	/* Leaders are node rank 0, nodes are numbered by their leaders' ranks,
	 * node ranks follow the ranks, and node sizes add up. */
	int prev_leader = -1, counted = 0;
	for (int k = 0; k < nodes; k++) {
		int leader = sk_cluster_leader_of(CL, k);
		assert_true(leader > prev_leader);
		prev_leader = leader;
		assert_int_equal(nodes_of[leader], k);
		assert_int_equal(nranks[leader], 0);
		int pos = 0;
		for (int r = 0; r < SIZE; r++) {
			if (nodes_of[r] != k)
				continue;
			assert_true(r >= leader);
			assert_int_equal(nranks[r], pos);
			pos++;
		}
		if (k == node)
			assert_int_equal(pos, sk_cluster_node_size(CL));
		counted += pos;
	}
	assert_int_equal(counted, SIZE);
	/* The node communicator holds exactly the node's ranks. */
	int ns;
	MPI_Comm_size(sk_cluster_node_comm(CL), &ns);
	assert_int_equal(ns, sk_cluster_node_size(CL));
	assert_int_equal(sk_cluster_leader_comm(CL) != MPI_COMM_NULL, sk_cluster_node_rank(CL) == 0);
	if (sk_cluster_node_rank(CL) == 0) {
		int lr, ls;
		MPI_Comm_rank(sk_cluster_leader_comm(CL), &lr);
		MPI_Comm_size(sk_cluster_leader_comm(CL), &ls);
		assert_int_equal(lr, node);
		assert_int_equal(ls, nodes);
	}
	assert_int_equal(sk_cluster_serve_mode(CL), THREADED ? SK_CLUSTER_SERVE_THREAD : SK_CLUSTER_SERVE_INLINE);

	/* One job id everywhere, and another for another handle. */
	uint64_t job = sk_cluster_job_id(CL);
	assert_true(job != 0);
	assert_int_equal(allmin((int64_t)(job >> 1)), allmax((int64_t)(job >> 1)));
	sk_cluster_opts o = { .ranks_per_node = RPN };
	sk_cluster *c2;
	MUST(sk_cluster_create(MPI_COMM_WORLD, &o, &c2));
	assert_true(sk_cluster_job_id(c2) != job);
	assert_int_equal(allmin((int64_t)(sk_cluster_job_id(c2) >> 1)), allmax((int64_t)(sk_cluster_job_id(c2) >> 1)));
	assert_int_equal(sk_cluster_node(c2), node);
	MUST(sk_cluster_close(c2));
	assert_int_equal(sk_cluster_close(NULL), 0);
	free(nodes_of);
	free(nranks);
	free(all);
	test_done = 1;
}

static void test_create_errors(void **state)
{
	(void)state;
	sk_cluster *c = (sk_cluster *)1;
	/* Bad options on every rank, or on one rank only: every rank fails alike. */
	sk_cluster_opts bad = { .ranks_per_node = RPN };
	bad.resv[0] = 1;
	assert_int_equal(sk_cluster_create(MPI_COMM_WORLD, &bad, &c), -EINVAL);
	assert_null(c);
	sk_cluster_opts o = { .ranks_per_node = RPN, .deadline_ns = 5000000000 };
	if (RANK == SIZE - 1)
		o.ranks_per_node = -1;
	assert_int_equal(sk_cluster_create(MPI_COMM_WORLD, &o, &c), -EINVAL);
	o.ranks_per_node = RPN;
	if (RANK == 0)
		o.deadline_ns = 6000000000;
	assert_int_equal(sk_cluster_create(MPI_COMM_WORLD, &o, &c), SK_ECLUSTER_MISMATCH);
	assert_null(c);
	if (!THREADED) {
		sk_cluster_opts t = { .ranks_per_node = RPN, .serve = SK_CLUSTER_SERVE_THREAD };
		assert_int_equal(sk_cluster_create(MPI_COMM_WORLD, &t, &c), -EINVAL);
	}
	assert_int_equal(sk_cluster_create(MPI_COMM_NULL, NULL, &c), -EINVAL);
	assert_int_equal(sk_cluster_create(MPI_COMM_WORLD, NULL, NULL), -EINVAL);
	/* A handle over a sub-communicator: the even ranks only. */
	MPI_Comm half;
	MPI_Comm_split(MPI_COMM_WORLD, RANK % 2, RANK, &half);
	sk_cluster_opts h = { .ranks_per_node = RPN };
	MUST(sk_cluster_create(half, &h, &c));
	int hs;
	MPI_Comm_size(half, &hs);
	assert_int_equal(sk_cluster_size(c), hs);
	MUST(sk_cluster_fence(c));
	MUST(sk_cluster_close(c));
	MPI_Comm_free(&half);
	/* Strings for every code. */
	for (int code = SK_ECLUSTER_MISMATCH; code <= SK_ECLUSTER_TIMEOUT; code++)
		assert_non_null(strstr(sk_cluster_strerror(code), " "));
	assert_string_equal(sk_cluster_strerror(-ENOENT), sk_strerror(-ENOENT));
	test_done = 1;
}

/* ---- Replicated arrays ---- */

/* Sum of the PSS of this process's mappings that overlap [lo, hi). */
static uint64_t pss_of_range(uintptr_t lo, uintptr_t hi)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	char line[512];
	uint64_t pss = 0;
	int in = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			in = a < hi && b > lo;
			continue;
		}
		unsigned long kb;
		if (in && sscanf(line, "Pss: %lu kB", &kb) == 1)
			pss += (uint64_t)kb * 1024;
	}
	fclose(f);
	return pss;
}

static void check_replicated(sk_cluster_array *a, sk_dtype dt, int ndim, const uint64_t *shape, uint64_t seed)
{
	assert_int_equal(sk_cluster_array_layout(a), SK_CLUSTER_REPLICATED);
	assert_int_equal(sk_cluster_array_dtype(a), dt);
	assert_int_equal(sk_cluster_array_ndim(a), ndim);
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++) {
		assert_int_equal(sk_cluster_array_shape(a)[i], shape[i]);
		n *= shape[i];
	}
	assert_int_equal(sk_cluster_array_size(a), n);
	sk_array *l = sk_cluster_array_local(a);
	assert_int_equal(sk_array_dtype(l), dt);
	assert_int_equal(sk_array_size(l), n);
	size_t isz = sk_dtype_size(dt);
	const char *data = sk_array_data(l);
	char v[8];
	for (uint64_t j = 0; j < n; j++) {
		ref_value(dt, seed, j, v);
		if (memcmp(data + j * isz, v, isz) != 0)
			fail_msg("rank %d: replicated element %" PRIu64 " differs", RANK, j);
	}
	/* Read-only, frozen, and its name already gone. */
	sk_segment_info info;
	sk_segment_info_get(sk_array_segment(l), &info);
	assert_int_equal(sk_segment_flags(sk_array_segment(l)), SK_RDONLY);
	assert_true(info.owned);
	if (sk_cluster_node_rank(CL) == 0)
		assert_true(info.frozen);
	char want[64];
	snprintf(want, sizeof want, "skc-%016" PRIx64 "-n%d-o", sk_cluster_job_id(CL), sk_cluster_node(CL));
	assert_memory_equal(sk_array_name(l), want, strlen(want));
	assert_int_equal(sk_segment_stat(sk_array_name(l), &info), -ENOENT);
	/* Gathers read the local copy; writes are refused. */
	if (n) {
		uint64_t idx[3] = { n - 1, 0, n / 2 };
		char out[3 * 8];
		MUST(sk_cluster_array_gather(a, 3, idx, out));
		for (int k = 0; k < 3; k++)
			assert_memory_equal(out + k * isz, data + idx[k] * isz, isz);
		assert_int_equal(sk_cluster_array_scatter(a, 1, idx, out), SK_EREADONLY);
		if (dt != SK_BOOL)
			assert_int_equal(sk_cluster_array_add(a, 1, idx, out, NULL), SK_EREADONLY);
		assert_int_equal(sk_cluster_array_owner(a, 0), sk_cluster_node(CL));
	}
	uint64_t r0, r1, c0, c1;
	MUST(sk_cluster_array_part(a, -1, &r0, &r1, &c0, &c1));
	assert_int_equal(r0, 0);
	assert_int_equal(r1, ndim ? shape[0] : 1);
}

static void test_replicate_dtypes(void **state)
{
	(void)state;
	for (int dt = SK_BOOL; dt <= SK_FLOAT64; dt++) {
		int root = dt % SIZE; /* every rank is the root of some, leaders and others */
		uint64_t shape[3] = { 3, 5, 7 + (uint64_t)dt };
		uint64_t n = shape[0] * shape[1] * shape[2], seed = 100 + (uint64_t)dt;
		char *buf = NULL;
		if (RANK == root) {
			buf = xmalloc(n * 8);
			for (uint64_t j = 0; j < n; j++)
				ref_value((sk_dtype)dt, seed, j, buf + j * sk_dtype_size((sk_dtype)dt));
		}
		sk_cluster_array *a;
		MUST(sk_cluster_array_replicate(CL, root, (sk_dtype)dt, 3, RANK == root ? shape : NULL, buf, &a));
		check_replicated(a, (sk_dtype)dt, 3, shape, seed);
		MUST(sk_cluster_array_close(a));
		free(buf);
	}
	/* 0-d, empty, and 1-D of an odd length. */
	uint64_t one = 1000003, zero[2] = { 4, 0 };
	int64_t x = 42;
	sk_cluster_array *a;
	MUST(sk_cluster_array_replicate(CL, 0, SK_INT64, 0, NULL, &x, &a));
	assert_int_equal(sk_cluster_array_size(a), 1);
	assert_int_equal(*(int64_t *)sk_array_data(sk_cluster_array_local(a)), 42);
	MUST(sk_cluster_array_close(a));
	MUST(sk_cluster_array_replicate(CL, SIZE - 1, SK_FLOAT32, 2, zero, NULL, &a));
	assert_int_equal(sk_cluster_array_size(a), 0);
	assert_int_equal(sk_cluster_array_gather(a, 1, (uint64_t[]){ 0 }, &x), -ERANGE);
	MUST(sk_cluster_array_close(a));
	char *buf = NULL;
	if (RANK == 1 % SIZE) {
		buf = xmalloc(one * 8);
		for (uint64_t j = 0; j < one; j++)
			ref_value(SK_UINT64, 7, j, buf + 8 * j);
	}
	MUST(sk_cluster_array_replicate(CL, 1 % SIZE, SK_UINT64, 1, &one, buf, &a));
	check_replicated(a, SK_UINT64, 1, &one, 7);
	MUST(sk_cluster_array_close(a));
	free(buf);
	test_done = 1;
}

static void test_replicate_errors(void **state)
{
	(void)state;
	sk_cluster_array *a = (sk_cluster_array *)1;
	uint64_t shape[2] = { 2, 2 };
	int64_t buf[4] = { 0 };
	/* The root's bad arguments reach every rank. */
	int rc = sk_cluster_array_replicate(CL, 0, (sk_dtype)99, 2, shape, buf, &a);
	assert_int_equal(rc, -EINVAL);
	assert_null(a);
	rc = sk_cluster_array_replicate(CL, SIZE - 1, SK_INT64, 2, shape, NULL, &a);
	assert_int_equal(rc, -EINVAL);
	uint64_t huge[2] = { UINT64_C(1) << 40, UINT64_C(1) << 40 };
	rc = sk_cluster_array_replicate(CL, 0, SK_INT64, 2, huge, buf, &a);
	assert_int_equal(rc, -EOVERFLOW);
	assert_int_equal(sk_cluster_array_replicate(CL, SIZE, SK_INT64, 2, shape, buf, &a), -EINVAL);
	/* Too large for /dev/shm (the tests run on a private tmpfs of a few
	 * GiB): -ENOSPC on every rank, and nothing is left. */
	uint64_t big = UINT64_C(1) << 50;
	rc = sk_cluster_array_replicate(CL, 0, SK_UINT8, 1, &big, buf, &a);
	assert_same_everywhere(rc);
	assert_true(rc == -ENOSPC || rc == -EFBIG || rc == -ENOMEM);
	/* Bits. */
	sk_cluster_bits *b;
	assert_int_equal(sk_cluster_bits_replicate(CL, 0, SK_BITS_MAX + 1, (uint64_t *)buf, &b), -EINVAL);
	assert_int_equal(sk_cluster_bits_replicate(CL, 0, 10, NULL, &b), -EINVAL);
	MUST(sk_cluster_fence(CL));
	test_done = 1;
}

static void test_replicate_pss(void **state)
{
	(void)state;
	/* 16 MiB once per node: the PSS of the node's ranks adds up to one copy. */
	uint64_t n = (UINT64_C(16) << 20) / 8;
	int64_t *buf = NULL;
	if (RANK == 0) {
		buf = xmalloc(n * 8);
		for (uint64_t j = 0; j < n; j++)
			buf[j] = (int64_t)j;
	}
	sk_cluster_array *a;
	MUST(sk_cluster_array_replicate(CL, 0, SK_INT64, 1, &n, buf, &a));
	free(buf);
	const int64_t *d = sk_array_data(sk_cluster_array_local(a));
	int64_t sum = 0;
	for (uint64_t j = 0; j < n; j += 512)
		sum += d[j];
	assert_int_equal(sum, (int64_t)((n / 512) * (n / 512 - 1) / 2 * 512));
	MUST(sk_cluster_fence(CL));
	uint64_t pss = pss_of_range((uintptr_t)d, (uintptr_t)d + n * 8), node_pss = 0;
	MPI_Allreduce(&pss, &node_pss, 1, MPI_UINT64_T, MPI_SUM, sk_cluster_node_comm(CL));
	double ratio = (double)node_pss / (double)(n * 8);
	if (ratio < 0.98 || ratio > 1.02)
		fail_msg("rank %d: the node's ranks hold %.3fx the data in PSS", RANK, ratio);
	MUST(sk_cluster_array_close(a));
	test_done = 1;
}

/* ---- .npy ---- */

static void write_npy(const char *path, int version, const char *descr, const char *order, const char *shape,
		      const void *data, size_t n, size_t cut)
{
	char dict[256];
	snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }", descr, order, shape);
	size_t pre = version == 1 ? 10 : 12, hl = strlen(dict) + 1;
	size_t pad = (64 - (pre + hl) % 64) % 64;
	hl += pad;
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite("\x93NUMPY", 1, 6, f);
	unsigned char v[2] = { (unsigned char)version, 0 };
	fwrite(v, 1, 2, f);
	unsigned char len[4] = { hl & 0xff, (hl >> 8) & 0xff, (hl >> 16) & 0xff, (hl >> 24) & 0xff };
	fwrite(len, 1, version == 1 ? 2 : 4, f);
	fwrite(dict, 1, strlen(dict), f);
	for (size_t i = 0; i < pad; i++)
		fputc(' ', f);
	fputc('\n', f);
	fwrite(data, 1, n - cut, f);
	fclose(f);
}

static void test_replicate_npy(void **state)
{
	(void)state;
	const char *tmp = getenv("SHMKIT_TEST_TMP") ? getenv("SHMKIT_TEST_TMP") : "/tmp";
	char dir[256];
	snprintf(dir, sizeof dir, "%s/sknpy-%016" PRIx64, tmp, sk_cluster_job_id(CL));
	int root = SIZE - 1; /* not a leader when nodes have several ranks */
	char path[512];
	uint64_t shape[2] = { 301, 17 };
	uint64_t n = shape[0] * shape[1];
	double *d = xmalloc(n * 8);
	for (uint64_t j = 0; j < n; j++)
		ref_value(SK_FLOAT64, 55, j, d + j);
	if (RANK == root)
		assert_int_equal(mkdir(dir, 0700), 0);
	struct {
		const char *name, *descr, *order, *shape;
		int version;
		size_t cut;
		int want;
	} files[] = {
		{ "ok1.npy", "<f8", "False", "(301, 17)", 1, 0, 0 },
		{ "ok2.npy", "<f8", "False", "(301, 17)", 2, 0, 0 },
		{ "fortran1d.npy", "<f8", "True", "(5117,)", 1, 0, 0 },
		{ "fortran.npy", "<f8", "True", "(301, 17)", 1, 0, SK_ETYPE },
		{ "bigendian.npy", ">f8", "False", "(301, 17)", 1, 0, SK_ETYPE },
		{ "complex.npy", "<c16", "False", "(301, 17)", 1, 0, SK_ETYPE },
		{ "truncated.npy", "<f8", "False", "(301, 17)", 1, 8, SK_ETRUNCATED },
		{ "corrupt.npy", "<f8", "False", "(301, 17", 1, 0, SK_ECORRUPT },
	};
	size_t nf = sizeof files / sizeof files[0];
	if (RANK == root) {
		for (size_t i = 0; i < nf; i++) {
			snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
			write_npy(path, files[i].version, files[i].descr, files[i].order, files[i].shape, d, n * 8,
				  files[i].cut);
		}
		snprintf(path, sizeof path, "%s/foreign.npy", dir);
		FILE *f = fopen(path, "wb");
		fputs("not a numpy file at all", f);
		fclose(f);
	}
	for (size_t i = 0; i < nf; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
		sk_cluster_array *a = NULL;
		/* The path only matters at the root. */
		int rc = sk_cluster_array_replicate_npy(CL, root, RANK == root ? path : NULL, &a);
		if (rc != files[i].want)
			fail_msg("rank %d: %s gave %d, want %d", RANK, files[i].name, rc, files[i].want);
		if (rc == 0) {
			if (strcmp(files[i].name, "fortran1d.npy") == 0) {
				uint64_t s1 = n;
				check_replicated(a, SK_FLOAT64, 1, &s1, 55);
			} else {
				check_replicated(a, SK_FLOAT64, 2, shape, 55);
			}
			MUST(sk_cluster_array_close(a));
		} else {
			assert_null(a);
		}
	}
	sk_cluster_array *a;
	snprintf(path, sizeof path, "%s/foreign.npy", dir);
	assert_int_equal(sk_cluster_array_replicate_npy(CL, root, path, &a), SK_EFOREIGN);
	snprintf(path, sizeof path, "%s/missing.npy", dir);
	assert_int_equal(sk_cluster_array_replicate_npy(CL, root, path, &a), -ENOENT);
	assert_int_equal(sk_cluster_array_replicate_npy(CL, root, dir, &a), SK_EFOREIGN); /* a directory */
	MUST(sk_cluster_fence(CL));
	if (RANK == root) {
		for (size_t i = 0; i < nf; i++) {
			snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
			unlink(path);
		}
		snprintf(path, sizeof path, "%s/foreign.npy", dir);
		unlink(path);
		rmdir(dir);
	}
	free(d);
	test_done = 1;
}

/* The parser alone: every dtype, versions, and damaged headers. */
static size_t npy_header(unsigned char *buf, int version, const char *dict)
{
	size_t pre = version == 1 ? 10 : 12, hl = strlen(dict);
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = (unsigned char)version;
	buf[7] = 0;
	for (size_t i = 0; i < (version == 1 ? 2u : 4u); i++)
		buf[8 + i] = (unsigned char)(hl >> (8 * i));
	memcpy(buf + pre, dict, hl);
	return pre + hl;
}

static void test_npy_parser(void **state)
{
	(void)state;
	static const struct {
		const char *descr;
		sk_dtype dt;
	} types[] = { { "|b1", SK_BOOL },   { "<i1", SK_INT8 },   { "|i1", SK_INT8 },    { "<i2", SK_INT16 },
		      { "<i4", SK_INT32 },  { "<i8", SK_INT64 },  { "|u1", SK_UINT8 },   { "<u2", SK_UINT16 },
		      { "<u4", SK_UINT32 }, { "<u8", SK_UINT64 }, { "<f4", SK_FLOAT32 }, { "=f8", SK_FLOAT64 } };
	unsigned char buf[512];
	sk__cl_npy h;
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		char dict[128];
		snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2, 3), }   \n",
			 types[i].descr);
		size_t len = npy_header(buf, 1 + (int)(i % 3), dict);
		assert_int_equal(sk__cl_npy_parse(buf, len, len + 6 * sk_dtype_size(types[i].dt), &h), 0);
		assert_int_equal(h.dtype, types[i].dt);
		assert_int_equal(h.ndim, 2);
		assert_int_equal(h.shape[0], 2);
		assert_int_equal(h.shape[1], 3);
		assert_int_equal(h.data_offset, len);
		assert_int_equal(h.nbytes, 6 * sk_dtype_size(types[i].dt));
		/* One byte short of the data. */
		assert_int_equal(sk__cl_npy_parse(buf, len, len + 6 * sk_dtype_size(types[i].dt) - 1, &h),
				 SK_ETRUNCATED);
	}
	static const struct {
		const char *dict;
		int want;
	} cases[] = {
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': ()}", 0 },
		{ "{\"shape\": (7,), \"descr\": \"<i8\", \"fortran_order\": False}", 0 },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (3L, 2L), }", 0 },
		{ "{'descr': '<i8', 'fortran_order': False}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), 'x': 1}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'descr': '<i8', 'fortran_order': False, 'shape': (1,)}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': Maybe, 'shape': (1,)}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (1,,)}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (-1,)}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (99999999999999999999,)}", SK_ECORRUPT },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", -EOVERFLOW },
		{ "{'descr': [('a', '<i8')], 'fortran_order': False, 'shape': (1,)}", SK_ETYPE },
		{ "{'descr': '<U8', 'fortran_order': False, 'shape': (1,)}", SK_ETYPE },
		{ "{'descr': '<i8', 'fortran_order': False, 'shape': (1,)} trailing", SK_ECORRUPT },
		{ "{'descr': 'it\\'s', 'fortran_order': False, 'shape': (1,)}", SK_ECORRUPT },
		{ "", SK_ECORRUPT },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t len = npy_header(buf, 1, cases[i].dict);
		int rc = sk__cl_npy_parse(buf, len, len + (UINT64_C(1) << 20), &h);
		if (rc != cases[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].dict, rc, cases[i].want);
	}
	/* 33 dimensions are more than shmkit keeps. */
	char dict[256] = "{'descr': '<i8', 'fortran_order': False, 'shape': (";
	for (int i = 0; i < 33; i++)
		strcat(dict, "1,");
	strcat(dict, ")}");
	size_t len = npy_header(buf, 1, dict);
	assert_int_equal(sk__cl_npy_parse(buf, len, len + 8, &h), SK_ETYPE);
	/* Bad magic, unknown version, a header longer than the bytes given. */
	len = npy_header(buf, 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1,)}");
	assert_int_equal(sk__cl_npy_parse(buf, len - 1, len + 8, &h), SK_ETRUNCATED);
	buf[6] = 9;
	assert_int_equal(sk__cl_npy_parse(buf, len, len + 8, &h), SK_EVERSION);
	buf[0] = 'x';
	assert_int_equal(sk__cl_npy_parse(buf, len, len + 8, &h), SK_EFOREIGN);
	assert_int_equal(sk__cl_npy_parse(buf, 5, 5, &h), SK_EFOREIGN);
	/* Every truncation and many random damages of a good header: an
	 * error or a sane result, never a read outside the buffer (ASan). */
	len = npy_header(buf, 1, "{'descr': '<u2', 'fortran_order': False, 'shape': (3, 4, 5), }");
	for (size_t cut = 0; cut < len; cut++) {
		unsigned char *copy = xmalloc(cut);
		memcpy(copy, buf, cut);
		assert_true(sk__cl_npy_parse(copy, cut, 1 << 20, &h) < 0);
		free(copy);
	}
	uint64_t s = 1;
	for (int round = 0; round < 20000; round++) {
		unsigned char copy[512];
		memcpy(copy, buf, len);
		for (int k = 0; k < 3; k++) {
			s = mix(s);
			copy[10 + s % (len - 10)] = (unsigned char)(s >> 32);
		}
		unsigned char *exact = xmalloc(len);
		memcpy(exact, copy, len);
		if (sk__cl_npy_parse(exact, len, UINT64_C(1) << 40, &h) == 0) {
			assert_true(h.ndim >= 0 && h.ndim <= SK_MAX_DIMS);
			assert_true(sk_dtype_size(h.dtype) > 0);
		}
		free(exact);
	}
	test_done = 1;
}

/* ---- Replicated bits ---- */

static void test_replicate_bits(void **state)
{
	(void)state;
	uint64_t lens[] = { 0, 1, 63, 64, 65, 1000003 };
	for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
		uint64_t nbits = lens[t], nw = (nbits + 63) / 64;
		int root = (int)(t % (size_t)SIZE);
		uint64_t *w = xmalloc(8 * (nw + 1));
		for (uint64_t i = 0; i < nw; i++)
			w[i] = mix(i + 1000 * t); /* bits past nbits are set too: they must be cleared */
		sk_cluster_bits *b;
		MUST(sk_cluster_bits_replicate(CL, root, RANK == root ? nbits : 0, RANK == root ? w : NULL, &b));
		assert_int_equal(sk_cluster_bits_len(b), nbits);
		assert_int_equal(sk_cluster_bits_layout(b), SK_CLUSTER_REPLICATED);
		sk_bits *l = sk_cluster_bits_local(b);
		assert_int_equal(sk_bits_len(l), nbits);
		assert_int_equal(sk_segment_flags(sk_bits_segment(l)), SK_RDONLY);
		uint64_t count = 0;
		for (uint64_t i = 0; i < nbits; i++) {
			int bit = (int)((w[i / 64] >> (i % 64)) & 1);
			count += (uint64_t)bit;
			if (sk_bits_test(l, i) != bit)
				fail_msg("rank %d: bit %" PRIu64 " of %" PRIu64, RANK, i, nbits);
		}
		assert_int_equal(sk_bits_count(l, 0, nbits), count);
		if (nbits % 64)
			assert_int_equal(sk_bits_words(l)[nw - 1] >> (nbits % 64), 0);
		if (nbits) {
			uint64_t idx[2] = { nbits - 1, 0 };
			uint8_t out[2];
			MUST(sk_cluster_bits_test(b, 2, idx, out));
			assert_int_equal(out[0], sk_bits_test(l, nbits - 1));
			assert_int_equal(out[1], sk_bits_test(l, 0));
			assert_int_equal(sk_cluster_bits_set(b, 1, idx, NULL), SK_EREADONLY);
			assert_int_equal(sk_cluster_bits_clear(b, 1, idx, out), SK_EREADONLY);
		}
		MUST(sk_cluster_bits_close(b));
		free(w);
	}
	test_done = 1;
}

/* ---- Partitioned arrays ---- */

typedef struct opsrun {
	sk_dtype dt;
	uint64_t size;
	size_t isz;
	char *ref;
} opsrun;

/* Replays rank r's scatter list: the indices i = r (mod SIZE) whose hash
 * says so, value ref_value(seed, i). */
static uint64_t scatter_list(uint64_t size, int r, uint64_t seed, uint64_t *idx)
{
	uint64_t n = 0;
	for (uint64_t i = (uint64_t)r; i < size; i += (uint64_t)SIZE)
		if (mix(i ^ seed) % 3 == 0)
			idx[n++] = i;
	return n;
}

/* The adds of rank r: m random indices (duplicates on purpose), deltas from the seed. */
static void add_list(uint64_t size, int r, uint64_t seed, uint64_t m, uint64_t *idx)
{
	for (uint64_t j = 0; j < m; j++)
		idx[j] = mix(seed * 31 + (uint64_t)r * 1000003 + j) % size;
}

static void check_against(sk_cluster_array *a, const opsrun *o, uint64_t seed)
{
	/* Everything, read back in a shuffled order. */
	uint64_t *perm = shuffled(o->size, seed ^ (uint64_t)RANK);
	char *got = xmalloc(o->size * o->isz);
	MUST(sk_cluster_array_gather(a, o->size, perm, got));
	for (uint64_t k = 0; k < o->size; k++)
		if (memcmp(got + k * o->isz, o->ref + perm[k] * o->isz, o->isz) != 0)
			fail_msg("rank %d: element %" PRIu64 " differs from the reference", RANK, perm[k]);
	/* The node's part, zero-copy, is the reference's rows and columns. */
	uint64_t r0, r1, c0, c1;
	MUST(sk_cluster_array_part(a, -1, &r0, &r1, &c0, &c1));
	sk_array *l = sk_cluster_array_local(a);
	uint64_t rows = sk_cluster_array_shape(a)[0], cols = rows ? sk_cluster_array_size(a) / rows : 0;
	const char *ld = sk_array_data(l);
	assert_int_equal(sk_array_size(l), (r1 - r0) * (c1 - c0));
	for (uint64_t r = r0; r < r1; r++)
		for (uint64_t c = c0; c < c1; c++) {
			uint64_t g = r * cols + c, lo = (r - r0) * (c1 - c0) + (c - c0);
			if (memcmp(ld + lo * o->isz, o->ref + g * o->isz, o->isz) != 0)
				fail_msg("rank %d: local element (%" PRIu64 ", %" PRIu64 ") differs", RANK, r, c);
			assert_int_equal(sk_cluster_array_owner(a, g), sk_cluster_node(CL));
		}
	free(perm);
	free(got);
}

/* Scatters, then adds, from every rank; each phase checked against the reference. */
static void run_ops(sk_cluster_array *a, uint64_t seed, uint64_t adds)
{
	opsrun o = { .dt = sk_cluster_array_dtype(a), .size = sk_cluster_array_size(a) };
	o.isz = sk_dtype_size(o.dt);
	o.ref = calloc(o.size ? o.size : 1, o.isz);
	uint64_t *idx = xmalloc(8 * (o.size + adds + 1));
	char *vals = xmalloc(8 * (o.size + adds + 1));

	/* The parts cover the array exactly once. */
	uint64_t covered = 0;
	for (int k = 0; k < sk_cluster_nodes(CL); k++) {
		uint64_t r0, r1, c0, c1;
		MUST(sk_cluster_array_part(a, k, &r0, &r1, &c0, &c1));
		covered += (r1 - r0) * (c1 - c0);
	}
	assert_int_equal(covered, o.size);
	assert_int_equal(sk_cluster_array_part(a, sk_cluster_nodes(CL), NULL, NULL, NULL, NULL), -ERANGE);

	/* Scatter: each rank its own indices, in a shuffled order. */
	for (int r = 0; r < SIZE; r++) {
		uint64_t n = scatter_list(o.size, r, seed, idx);
		for (uint64_t k = 0; k < n; k++)
			ref_value(o.dt, seed, idx[k], o.ref + idx[k] * o.isz);
		if (r != RANK)
			continue;
		uint64_t *perm = shuffled(n, seed + 7);
		uint64_t *sidx = xmalloc(8 * (n + 1));
		for (uint64_t k = 0; k < n; k++) {
			sidx[k] = idx[perm[k]];
			ref_value(o.dt, seed, sidx[k], vals + k * o.isz);
		}
		MUST(sk_cluster_array_scatter(a, n, sidx, vals));
		free(perm);
		free(sidx);
	}
	MUST(sk_cluster_fence(CL));
	check_against(a, &o, seed);
	MUST(sk_cluster_fence(CL));

	/* Adds from every rank, duplicates included, with the old values asked
	 * for by odd ranks. */
	if (o.dt != SK_BOOL && o.size) {
		for (int r = 0; r < SIZE; r++) {
			add_list(o.size, r, seed, adds, idx);
			for (uint64_t j = 0; j < adds; j++) {
				char d[8];
				ref_value(o.dt, seed + 99 + (uint64_t)r, j, d);
				if (r == RANK)
					memcpy(vals + j * o.isz, d, o.isz);
				ref_add(o.dt, o.ref + idx[j] * o.isz, d);
			}
			if (r != RANK)
				continue;
			char *old = RANK % 2 ? xmalloc(adds * o.isz + 1) : NULL;
			MUST(sk_cluster_array_add(a, adds, idx, vals, old));
			free(old);
		}
		MUST(sk_cluster_fence(CL));
		check_against(a, &o, seed + 1);
		MUST(sk_cluster_fence(CL));
	} else if (o.dt == SK_BOOL && o.size) {
		assert_int_equal(sk_cluster_array_add(a, 1, (uint64_t[]){ 0 }, vals, NULL), SK_ETYPE);
	}
	free(o.ref);
	free(idx);
	free(vals);
}

static void test_partition_rows(void **state)
{
	(void)state;
	static const struct {
		sk_dtype dt;
		int ndim;
		uint64_t shape[3];
	} cases[] = {
		{ SK_INT64, 1, { 10007 } },   { SK_FLOAT64, 2, { 37, 53 } }, { SK_INT32, 3, { 5, 7, 11 } },
		{ SK_UINT8, 2, { 3, 1001 } }, { SK_FLOAT32, 1, { 4099 } },   { SK_INT16, 2, { 1, 64 } },
		{ SK_UINT64, 1, { 2 } },      { SK_BOOL, 1, { 999 } },       { SK_INT8, 2, { 0, 5 } },
	};
	for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
		sk_cluster_array *a;
		MUST(
		    sk_cluster_array_partition(CL, cases[t].dt, cases[t].ndim, cases[t].shape, SK_CLUSTER_ROWS, 0, &a));
		assert_int_equal(sk_cluster_array_layout(a), SK_CLUSTER_ROWS);
		int pr, pc;
		sk_cluster_array_grid(a, &pr, &pc);
		assert_int_equal(pr, sk_cluster_nodes(CL));
		assert_int_equal(pc, 1);
		/* Node k has rows [R*k/N, R*(k+1)/N). */
		uint64_t R = cases[t].shape[0], r0, r1;
		int N = sk_cluster_nodes(CL), me = sk_cluster_node(CL);
		MUST(sk_cluster_array_part(a, -1, &r0, &r1, NULL, NULL));
		assert_int_equal(r0, R * (uint64_t)me / (uint64_t)N);
		assert_int_equal(r1, R * (uint64_t)(me + 1) / (uint64_t)N);
		assert_int_equal(sk_array_shape(sk_cluster_array_local(a))[0], r1 - r0);
		run_ops(a, 1000 + t, 3000);
		MUST(sk_cluster_array_close(a));
	}
	test_done = 1;
}

static void test_partition_blocks(void **state)
{
	(void)state;
	int N = sk_cluster_nodes(CL);
	uint64_t shape[2] = { 45, 61 };
	for (int prows = 0; prows <= N; prows++) {
		if (prows && N % prows)
			continue;
		sk_cluster_array *a;
		MUST(sk_cluster_array_partition(CL, SK_INT64, 2, shape, SK_CLUSTER_BLOCKS, prows, &a));
		int pr, pc;
		sk_cluster_array_grid(a, &pr, &pc);
		assert_int_equal(pr * pc, N);
		if (prows)
			assert_int_equal(pr, prows);
		else
			assert_true(pr <= pc);
		uint64_t r0, r1, c0, c1;
		int me = sk_cluster_node(CL), gi = me / pc, gj = me % pc;
		MUST(sk_cluster_array_part(a, -1, &r0, &r1, &c0, &c1));
		assert_int_equal(r0, 45 * (uint64_t)gi / (uint64_t)pr);
		assert_int_equal(r1, 45 * (uint64_t)(gi + 1) / (uint64_t)pr);
		assert_int_equal(c0, 61 * (uint64_t)gj / (uint64_t)pc);
		assert_int_equal(c1, 61 * (uint64_t)(gj + 1) / (uint64_t)pc);
		const uint64_t *ls = sk_array_shape(sk_cluster_array_local(a));
		assert_int_equal(ls[0], r1 - r0);
		assert_int_equal(ls[1], c1 - c0);
		run_ops(a, 2000 + (uint64_t)prows, 2000);
		MUST(sk_cluster_array_close(a));
	}
	/* Bad grids and shapes, the same on every rank. */
	sk_cluster_array *a;
	assert_int_equal(sk_cluster_array_partition(CL, SK_INT64, 2, shape, SK_CLUSTER_BLOCKS, N + 1, &a), -EINVAL);
	uint64_t s3[3] = { 2, 2, 2 };
	assert_int_equal(sk_cluster_array_partition(CL, SK_INT64, 3, s3, SK_CLUSTER_BLOCKS, 0, &a), -EINVAL);
	assert_int_equal(sk_cluster_array_partition(CL, SK_INT64, 0, NULL, SK_CLUSTER_ROWS, 0, &a), -EINVAL);
	assert_int_equal(sk_cluster_array_partition(CL, SK_INT64, 1, s3, SK_CLUSTER_REPLICATED, 0, &a), -EINVAL);
	test_done = 1;
}

/* An empty array in blocks (a dimension of 0: no columns): every index is
 * out of range, and the call says so (-ERANGE) instead of locating it. */
static void test_partition_blocks_empty(void **state)
{
	(void)state;
	uint64_t shapes[2][2] = { { 4, 0 }, { 0, 5 } };
	for (int s = 0; s < 2; s++) {
		sk_cluster_array *a;
		MUST(sk_cluster_array_partition(CL, SK_INT64, 2, shapes[s], SK_CLUSTER_BLOCKS, 0, &a));
		uint64_t idx[1] = { 0 };
		int64_t x = 7;
		assert_int_equal(sk_cluster_array_gather(a, 1, idx, &x), -ERANGE);
		assert_int_equal(sk_cluster_array_scatter(a, 1, idx, &x), -ERANGE);
		MUST(sk_cluster_fence(CL));
		MUST(sk_cluster_array_close(a));
	}
	test_done = 1;
}

static void test_partition_mismatch(void **state)
{
	(void)state;
	sk_cluster_array *a = (sk_cluster_array *)1;
	uint64_t shape[2] = { 10, 10 };
	if (RANK == SIZE - 1)
		shape[1] = 11;
	assert_int_equal(sk_cluster_array_partition(CL, SK_INT64, 2, shape, SK_CLUSTER_ROWS, 0, &a),
			 SK_ECLUSTER_MISMATCH);
	assert_null(a);
	shape[1] = 10;
	assert_int_equal(
	    sk_cluster_array_partition(CL, RANK == 0 ? SK_INT32 : SK_INT64, 2, shape, SK_CLUSTER_ROWS, 0, &a),
	    SK_ECLUSTER_MISMATCH);
	/* One rank's bad argument is everyone's error. */
	assert_int_equal(
	    sk_cluster_array_partition(CL, RANK == 0 ? (sk_dtype)0 : SK_INT64, 2, shape, SK_CLUSTER_ROWS, 0, &a),
	    -EINVAL);
	sk_cluster_bits *b;
	assert_int_equal(sk_cluster_bits_partition(CL, RANK == 0 ? 100 : 101, &b), SK_ECLUSTER_MISMATCH);
	/* The handle is still fine. */
	MUST(sk_cluster_array_partition(CL, SK_INT64, 2, shape, SK_CLUSTER_ROWS, 0, &a));
	MUST(sk_cluster_array_close(a));
	test_done = 1;
}

/* Fetch-add from every rank on a few counters: the old values each counter
 * returned, over all ranks, are exactly 0, 1, ..., total-1. */
static void test_add_atomic(void **state)
{
	(void)state;
	const uint64_t K = 7, M = 4000;
	uint64_t shape[1] = { 64 };
	sk_cluster_array *a;
	MUST(sk_cluster_array_partition(CL, SK_INT64, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	uint64_t *idx = xmalloc(8 * M);
	int64_t *one = xmalloc(8 * M), *old = xmalloc(8 * M);
	/* The counters spread over the nodes: indices 0, 9, 18, ... */
	for (uint64_t j = 0; j < M; j++) {
		idx[j] = (mix(j + (uint64_t)RANK * 77) % K) * 9;
		one[j] = 1;
	}
	/* In batches of varied sizes, so that calls interleave across ranks. */
	for (uint64_t done = 0, step = 1; done < M; done += step, step = step * 2 + 1) {
		if (step > M - done)
			step = M - done;
		MUST(sk_cluster_array_add(a, step, idx + done, one + done, old + done));
	}
	MUST(sk_cluster_fence(CL));
	int64_t *allold = xmalloc(8 * M * (size_t)SIZE);
	uint64_t *allidx = xmalloc(8 * M * (size_t)SIZE);
	MPI_Allgather(old, (int)M, MPI_INT64_T, allold, (int)M, MPI_INT64_T, MPI_COMM_WORLD);
	MPI_Allgather(idx, (int)M, MPI_UINT64_T, allidx, (int)M, MPI_UINT64_T, MPI_COMM_WORLD);
	for (uint64_t k = 0; k < K; k++) {
		uint64_t total = 0;
		for (uint64_t j = 0; j < M * (uint64_t)SIZE; j++)
			total += allidx[j] == k * 9;
		uint8_t *seen = calloc(total + 1, 1);
		for (uint64_t j = 0; j < M * (uint64_t)SIZE; j++) {
			if (allidx[j] != k * 9)
				continue;
			assert_true(allold[j] >= 0 && (uint64_t)allold[j] < total);
			assert_int_equal(seen[allold[j]], 0);
			seen[allold[j]] = 1;
		}
		int64_t v;
		uint64_t i = k * 9;
		MUST(sk_cluster_array_gather(a, 1, &i, &v));
		assert_int_equal(v, (int64_t)total);
		free(seen);
	}
	MUST(sk_cluster_array_close(a));
	/* Floats: 0.5 added from everywhere, exactly. */
	MUST(sk_cluster_array_partition(CL, SK_FLOAT64, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	double *half = xmalloc(8 * M);
	for (uint64_t j = 0; j < M; j++) {
		half[j] = 0.5;
		idx[j] = (j % 3) * 21;
	}
	MUST(sk_cluster_array_add(a, M, idx, half, NULL));
	MUST(sk_cluster_fence(CL));
	for (uint64_t k = 0; k < 3; k++) {
		double v;
		uint64_t i = k * 21;
		MUST(sk_cluster_array_gather(a, 1, &i, &v));
		uint64_t cnt = M / 3 + (k < M % 3);
		assert_true(v == 0.5 * (double)(cnt * (uint64_t)SIZE));
	}
	MUST(sk_cluster_array_close(a));
	free(half);
	free(idx);
	free(one);
	free(old);
	free(allold);
	free(allidx);
	test_done = 1;
}

/* ---- Partitioned bits ---- */

static void test_bits_partition(void **state)
{
	(void)state;
	uint64_t lens[] = { 1, 64, 200, 100003 };
	for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
		uint64_t nbits = lens[t];
		sk_cluster_bits *b;
		MUST(sk_cluster_bits_partition(CL, nbits, &b));
		assert_int_equal(sk_cluster_bits_len(b), nbits);
		assert_int_equal(sk_cluster_bits_layout(b), SK_CLUSTER_ROWS);
		/* Parts: whole words, in order, covering everything once. */
		uint64_t next = 0;
		for (int k = 0; k < sk_cluster_nodes(CL); k++) {
			uint64_t lo, hi;
			MUST(sk_cluster_bits_part(b, k, &lo, &hi));
			assert_int_equal(lo, next);
			assert_int_equal(lo % 64, 0);
			next = hi;
		}
		assert_int_equal(next, nbits);
		uint64_t lo, hi;
		MUST(sk_cluster_bits_part(b, -1, &lo, &hi));
		assert_int_equal(sk_bits_len(sk_cluster_bits_local(b)), hi - lo);

		/* Every rank test-and-sets the same bits: each bit is won once. */
		uint64_t m = nbits < 5000 ? nbits : 5000;
		uint64_t *idx = xmalloc(8 * (m + 1));
		uint8_t *old = xmalloc(m + 1);
		for (uint64_t j = 0; j < m; j++)
			idx[j] = mix(j * 3 + t) % nbits;
		MUST(sk_cluster_bits_set(b, m, idx, old));
		/* Inline serving: no rank may block outside the library while
		 * others still need its node, so a fence comes first. */
		MUST(sk_cluster_fence(CL));
		int *won = calloc(nbits, sizeof(int));
		for (uint64_t j = 0; j < m; j++)
			if (!old[j])
				won[idx[j]]++;
		MPI_Allreduce(MPI_IN_PLACE, won, (int)nbits, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		uint8_t *ref = calloc(nbits, 1);
		for (uint64_t j = 0; j < m; j++)
			ref[idx[j]] = 1;
		for (uint64_t i = 0; i < nbits; i++)
			assert_int_equal(won[i], ref[i]);
		/* Then rank r clears the bits i = r (mod SIZE) among them; old
		 * values are all 1. */
		uint64_t nc = 0;
		for (uint64_t i = (uint64_t)RANK; i < nbits; i += (uint64_t)SIZE)
			if (ref[i])
				idx[nc++] = i;
		MUST(sk_cluster_bits_clear(b, nc, idx, old));
		for (uint64_t j = 0; j < nc; j++)
			assert_int_equal(old[j], 1);
		MUST(sk_cluster_fence(CL));
		/* Then all bits read back: all clear; the set bits of a second
		 * round, from every rank, reach the reference. */
		for (uint64_t j = 0; j < m; j++)
			idx[j] = mix(j * 5 + 11 + (uint64_t)RANK) % nbits;
		MUST(sk_cluster_bits_set(b, m, idx, NULL));
		memset(ref, 0, nbits);
		for (int r = 0; r < SIZE; r++)
			for (uint64_t j = 0; j < m; j++)
				ref[mix(j * 5 + 11 + (uint64_t)r) % nbits] = 1;
		MUST(sk_cluster_fence(CL));
		uint64_t *all = shuffled(nbits, t + (uint64_t)RANK);
		uint8_t *got = xmalloc(nbits);
		MUST(sk_cluster_bits_test(b, nbits, all, got));
		for (uint64_t k = 0; k < nbits; k++)
			assert_int_equal(got[k], ref[all[k]]);
		sk_bits *l = sk_cluster_bits_local(b);
		for (uint64_t i = lo; i < hi; i++)
			assert_int_equal(sk_bits_test(l, i - lo), ref[i]);
		assert_int_equal(sk_cluster_bits_owner(b, nbits), -ERANGE);
		for (int k = 0; k < sk_cluster_nodes(CL); k++) {
			uint64_t b0, b1;
			MUST(sk_cluster_bits_part(b, k, &b0, &b1));
			for (uint64_t i = b0; i < b1; i += 61)
				assert_int_equal(sk_cluster_bits_owner(b, i), k);
		}
		assert_int_equal(sk_cluster_bits_test(b, 1, (uint64_t[]){ nbits }, got), -ERANGE);
		MUST(sk_cluster_fence(CL));
		MUST(sk_cluster_bits_close(b));
		free(idx);
		free(old);
		free(won);
		free(ref);
		free(all);
		free(got);
	}
	test_done = 1;
}

/* ---- Errors, stats, zero copy ---- */

static void test_errors_and_stats(void **state)
{
	(void)state;
	uint64_t shape[1] = { 1000 };
	sk_cluster_array *a;
	MUST(sk_cluster_array_partition(CL, SK_INT64, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	sk_cluster_stats before, after;
	sk_cluster_stats_get(CL, &before);
	/* One bad index in a batch: -ERANGE and nothing done, nothing sent. */
	uint64_t idx[4] = { 0, 999, 500, 1000 };
	int64_t v[4] = { 1, 1, 1, 1 };
	assert_int_equal(sk_cluster_array_add(a, 4, idx, v, NULL), -ERANGE);
	assert_int_equal(sk_cluster_array_scatter(a, 4, idx, v), -ERANGE);
	assert_int_equal(sk_cluster_array_gather(a, 4, idx, v), -ERANGE);
	assert_int_equal(sk_cluster_array_gather(a, 1, NULL, v), -EINVAL);
	assert_int_equal(sk_cluster_array_gather(a, 1, idx, NULL), -EINVAL);
	assert_int_equal(sk_cluster_array_gather(a, 0, NULL, NULL), 0);
	assert_int_equal(sk_cluster_array_owner(a, 1000), -ERANGE);
	sk_cluster_stats_get(CL, &after);
	assert_int_equal(after.requests_sent, before.requests_sent);
	assert_int_equal(after.elements_local, before.elements_local);
	MUST(sk_cluster_fence(CL));
	int64_t got[4];
	MUST(sk_cluster_array_gather(a, 3, idx, got));
	assert_int_equal(got[0] | got[1] | got[2], 0);
	/* The whole array from every rank: the elements of other nodes went
	 * as requests, this node's stayed local; the leaders served. */
	uint64_t all[1000];
	int64_t out[1000];
	for (uint64_t i = 0; i < 1000; i++)
		all[i] = i;
	sk_cluster_stats_get(CL, &before);
	MUST(sk_cluster_array_gather(a, 1000, all, out));
	sk_cluster_stats_get(CL, &after);
	uint64_t r0, r1;
	MUST(sk_cluster_array_part(a, -1, &r0, &r1, NULL, NULL));
	assert_int_equal(after.elements_local - before.elements_local, r1 - r0);
	assert_int_equal(after.elements_sent - before.elements_sent, 1000 - (r1 - r0));
	int others = 0;
	for (int k = 0; k < sk_cluster_nodes(CL); k++) {
		uint64_t b0, b1;
		sk_cluster_array_part(a, k, &b0, &b1, NULL, NULL);
		others += k != sk_cluster_node(CL) && b1 > b0;
	}
	assert_int_equal(after.requests_sent - before.requests_sent, (uint64_t)others);
	MUST(sk_cluster_fence(CL));
	sk_cluster_stats_get(CL, &after);
	uint64_t served = after.requests_served;
	MPI_Allreduce(MPI_IN_PLACE, &served, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
	uint64_t sent = after.requests_sent;
	MPI_Allreduce(MPI_IN_PLACE, &sent, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
	assert_int_equal(served, sent);
	if (sk_cluster_node_rank(CL) != 0)
		assert_int_equal(after.requests_served, 0);
	/* Close refuses while objects are open; the handle stays usable. */
	assert_int_equal(sk_cluster_close(CL), -EBUSY);
	MUST(sk_cluster_fence(CL));
	assert_int_equal(sk_cluster_set_deadline(CL, 0), -EINVAL);
	int64_t old = sk_cluster_set_deadline(CL, 7000000000);
	assert_true(old > 0);
	assert_int_equal(sk_cluster_set_deadline(CL, old), 7000000000);
	assert_int_equal(sk_cluster_failed(CL), 0);
	assert_true(sk_cluster_progress(CL) >= 0);
	MUST(sk_cluster_array_close(a));
	assert_int_equal(sk_cluster_array_close(NULL), 0);
	assert_int_equal(sk_cluster_bits_close(NULL), 0);
	test_done = 1;
}

/* Stores into the node's part, made straight through the mapping by every
 * rank of the node, are seen by every rank after a fence. */
static void test_zero_copy_and_fence(void **state)
{
	(void)state;
	uint64_t shape[2] = { 64, 16 };
	sk_cluster_array *a;
	MUST(sk_cluster_array_partition(CL, SK_INT64, 2, shape, SK_CLUSTER_ROWS, 0, &a));
	uint64_t r0, r1;
	MUST(sk_cluster_array_part(a, -1, &r0, &r1, NULL, NULL));
	int64_t *mine = sk_array_data(sk_cluster_array_local(a));
	/* Each rank of the node writes its share of the rows: the node rank's
	 * column. */
	int nr = sk_cluster_node_rank(CL);
	for (uint64_t r = r0; r < r1; r++)
		mine[(r - r0) * 16 + (uint64_t)nr] = (int64_t)(r * 100 + (uint64_t)RANK);
	MUST(sk_cluster_fence(CL));
	int *nrank = xmalloc(sizeof(int) * (size_t)SIZE);
	MPI_Allgather(&nr, 1, MPI_INT, nrank, 1, MPI_INT, MPI_COMM_WORLD);
	/* Everyone reads everything. */
	uint64_t idx[64 * 16];
	int64_t got[64 * 16];
	for (uint64_t i = 0; i < 64 * 16; i++)
		idx[i] = i;
	MUST(sk_cluster_array_gather(a, 64 * 16, idx, got));
	for (uint64_t r = 0; r < 64; r++) {
		int node = sk_cluster_array_owner(a, r * 16);
		for (int k = 0; k < SIZE; k++) {
			if (sk_cluster_node_of(CL, k) != node)
				continue;
			assert_int_equal(got[r * 16 + (uint64_t)nrank[k]], (int64_t)(r * 100 + (uint64_t)k));
		}
	}
	free(nrank);
	MUST(sk_cluster_fence(CL));
	MUST(sk_cluster_array_close(a));
	test_done = 1;
}

/* Batches past a slice (2^20) and a piece (2^18): 1.5 M elements. */
static void test_big_batch(void **state)
{
	(void)state;
	uint64_t n = 1500000, shape[1] = { 600001 };
	sk_cluster_array *a;
	MUST(sk_cluster_array_partition(CL, SK_INT32, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	uint64_t *idx = xmalloc(8 * n);
	int32_t *d = xmalloc(4 * n), *old = xmalloc(4 * n);
	for (uint64_t j = 0; j < n; j++) {
		idx[j] = mix(j + (uint64_t)RANK * n) % shape[0];
		d[j] = 1;
	}
	MUST(sk_cluster_array_add(a, n, idx, d, old));
	MUST(sk_cluster_fence(CL));
	uint32_t *ref = calloc(shape[0], 4);
	for (int r = 0; r < SIZE; r++)
		for (uint64_t j = 0; j < n; j++)
			ref[mix(j + (uint64_t)r * n) % shape[0]]++;
	MUST(sk_cluster_array_gather(a, n, idx, old));
	for (uint64_t j = 0; j < n; j++)
		assert_int_equal((uint32_t)old[j], ref[idx[j]]);
	MUST(sk_cluster_fence(CL));
	MUST(sk_cluster_array_close(a));
	free(idx);
	free(d);
	free(old);
	free(ref);
	test_done = 1;
}

/* One forged request of `bytes` bytes at req to the leader of node 1, on the
 * handle's request communicator (cluster/internal.h: the wire format); its
 * reply (at most cap bytes) lands in rep. The reply's size, or fails the
 * test when none comes within 20 s. */
static int forged_call(const void *req, size_t bytes, void *rep, size_t cap)
{
	int dest = CL->leader_of[1], tag = CL->tag_max; /* a tag the library's own calls reach last */
	MPI_Request r[2];
	assert_int_equal(MPI_Irecv(rep, (int)cap, MPI_BYTE, dest, tag, CL->rep, &r[0]), MPI_SUCCESS);
	assert_int_equal(MPI_Isend(req, (int)bytes, MPI_BYTE, dest, tag, CL->req, &r[1]), MPI_SUCCESS);
	MPI_Status st[2];
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		int done = 0;
		assert_int_equal(MPI_Testall(2, r, &done, st), MPI_SUCCESS);
		if (done)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 20)
			fail_msg("rank %d: no reply to a forged request within 20 s", RANK);
	}
	int got = 0;
	MPI_Get_count(&st[0], MPI_BYTE, &got);
	return got;
}

/* A peer's malformed requests: each is refused with a reply (status
 * SK_ECLUSTER_PROTO, or -ERANGE for an index outside the part), nothing is
 * applied, and the server and every handle go on as before. Rank 0 forges
 * them against node 1's leader, which serves meanwhile (its thread, or inline
 * in the fence the others wait in). */
static void test_hostile_requests(void **state)
{
	(void)state;
	uint64_t shape[1] = { 1000 };
	sk_cluster_array *a;
	uint32_t id = CL->next_id + 1;
	MUST(sk_cluster_array_partition(CL, SK_INT64, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	assert_int_equal(CL->next_id, id);
	uint64_t first = 0, count = 0;
	if (sk_cluster_nodes(CL) >= 2 && RANK == 0) {
		uint64_t all[1000];
		int64_t v[1000];
		for (uint64_t i = 0; i < 1000; i++)
			all[i] = i, v[i] = (int64_t)(i * 3 + 1);
		MUST(sk_cluster_array_scatter(a, 1000, all, v));
		for (uint64_t i = 0; i < 1000; i++)
			if (sk_cluster_array_owner(a, i) == 1 && !count++)
				first = i;
		assert_true(count > 4);
		size_t big = sizeof(sk__cl_req) + (SK__CL_PIECE_MAX * 16) + 64;
		unsigned char *req = calloc(1, big), *rep = malloc(sizeof(sk__cl_rep) + 64 * 8);
		assert_non_null(req);
		assert_non_null(rep);
		sk__cl_req good = { .magic = SK__CL_REQ_MAGIC,
				    .version = SK__CL_VERSION,
				    .op = SK__CL_GATHER,
				    .obj = id,
				    .itemsize = 8,
				    .count = 4 };
		uint64_t loc[4] = { 0, 1, 2, 3 }; /* node 1's first four elements */
		struct {
			const char *what;
			sk__cl_req h;
			size_t bytes; /* 0: the header and its count's indices */
			uint64_t bad_loc;
			int want;
			int64_t fill; /* not 0: count values of this after the indices (scatter) */
		} cases[] = {
			{ "a short header", good, 8, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a wrong magic", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a wrong version", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "an unknown operation", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "an unknown object", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a wrong item size", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a count past the protocol's limit", good, 0, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a count the bytes do not match", good, sizeof(sk__cl_req) + 3 * 8, 0, SK_ECLUSTER_PROTO, 0 },
			{ "an index outside the part", good, 0, UINT64_MAX - 5, -ERANGE, 0 },
			{ "a bit operation on an array", good, 0, 0, SK_EKIND, 0 },
			{ "more bytes than any request has", good, big, 0, SK_ECLUSTER_PROTO, 0 },
			{ "a scatter with an index outside the part", good, 0, UINT64_MAX - 5, -ERANGE, -77 },
		};
		cases[1].h.magic ^= 1;
		cases[2].h.version = 7;
		cases[3].h.op = 99;
		cases[4].h.obj = id + 1000;
		cases[5].h.itemsize = 4;
		cases[6].h.count = SK__CL_PIECE_MAX + 1;
		/* Bytes that match the count (indices 0): only the limit refuses it
		 * (its reply would not fit the server's buffer). */
		cases[6].bytes = sizeof(sk__cl_req) + (SK__CL_PIECE_MAX + 1) * 8;
		/* The first index is valid: nothing may be stored before all are
		 * checked (the gather at the end sees every value unchanged). */
		cases[11].h.op = SK__CL_SCATTER;
		cases[9].h.op = SK__CL_BTEST;
		for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
			uint64_t n = cases[c].h.count <= 4 ? cases[c].h.count : 4;
			size_t bytes =
			    cases[c].bytes ? cases[c].bytes : sizeof(sk__cl_req) + n * (cases[c].fill ? 16 : 8);
			memset(req, 0, bytes > sizeof(sk__cl_req) ? bytes : sizeof(sk__cl_req));
			memcpy(req, &cases[c].h, sizeof cases[c].h);
			memcpy(req + sizeof(sk__cl_req), loc, n * 8);
			if (cases[c].bad_loc)
				memcpy(req + sizeof(sk__cl_req) + 8, &cases[c].bad_loc, 8);
			for (uint64_t k = 0; cases[c].fill && k < n; k++)
				memcpy(req + sizeof(sk__cl_req) + n * 8 + k * 8, &cases[c].fill, 8);
			int got = forged_call(req, bytes, rep, sizeof(sk__cl_rep) + 64 * 8);
			sk__cl_rep h;
			assert_int_equal(got, (int)sizeof h);
			memcpy(&h, rep, sizeof h);
			if (h.magic != SK__CL_REP_MAGIC || h.status != cases[c].want)
				fail_msg("%s: reply magic %#x status %d, want %d", cases[c].what, h.magic, h.status,
					 cases[c].want);
		}
		/* The well-formed request is answered with the values. */
		memcpy(req, &good, sizeof good);
		memcpy(req + sizeof good, loc, sizeof loc);
		int got = forged_call(req, sizeof good + sizeof loc, rep, sizeof(sk__cl_rep) + 64 * 8);
		assert_int_equal(got, (int)(sizeof(sk__cl_rep) + 4 * 8));
		sk__cl_rep h;
		memcpy(&h, rep, sizeof h);
		assert_int_equal(h.status, 0);
		assert_int_equal(h.count, 4);
		for (int k = 0; k < 4; k++) {
			int64_t x;
			memcpy(&x, rep + sizeof h + 8 * k, 8);
			assert_int_equal(x, (int64_t)((first + (uint64_t)k) * 3 + 1));
		}
		free(req);
		free(rep);
	}
	MUST(sk_cluster_fence(CL));
	/* Nothing forged was applied; the handles and the servers work on. */
	uint64_t all[1000];
	int64_t got[1000];
	for (uint64_t i = 0; i < 1000; i++)
		all[i] = i;
	MUST(sk_cluster_array_gather(a, 1000, all, got));
	for (uint64_t i = 0; i < 1000; i++)
		assert_int_equal(got[i], sk_cluster_nodes(CL) >= 2 ? (int64_t)(i * 3 + 1) : 0);
	assert_int_equal(sk_cluster_failed(CL), 0);
	MUST(sk_cluster_fence(CL));
	MUST(sk_cluster_array_close(a));
	test_done = 1;
}

/* Inline serving: a leader that computes outside the library answers once it
 * is back inside (here: the fence). */
static void test_inline_progress(void **state)
{
	(void)state;
	sk_cluster_opts o = { .ranks_per_node = RPN, .serve = SK_CLUSTER_SERVE_INLINE };
	sk_cluster *c;
	MUST(sk_cluster_create(MPI_COMM_WORLD, &o, &c));
	assert_int_equal(sk_cluster_serve_mode(c), SK_CLUSTER_SERVE_INLINE);
	uint64_t shape[1] = { 100 };
	sk_cluster_array *a;
	MUST(sk_cluster_array_partition(c, SK_INT64, 1, shape, SK_CLUSTER_ROWS, 0, &a));
	int nodes = sk_cluster_nodes(c);
	int busy = sk_cluster_leader_of(c, nodes - 1);
	uint64_t r0, r1;
	MUST(sk_cluster_array_part(a, nodes - 1, &r0, &r1, NULL, NULL));
	/* CLOCK_MONOTONIC is one clock for every rank of these tests (one machine). */
	double t_back = 0, t_done = 0;
	MPI_Barrier(MPI_COMM_WORLD);
	if (RANK == busy) {
		/* Computing, outside the library, for 0.3 s; then progress. */
		double t0 = now_s();
		while (now_s() - t0 < 0.3)
			;
		t_back = now_s();
		int served = sk_cluster_progress(c);
		assert_true(served >= 0);
	} else if (sk_cluster_node_of(c, RANK) != nodes - 1) {
		uint64_t i = r0;
		int64_t one = 1;
		MUST(sk_cluster_array_add(a, 1, &i, &one, NULL));
		t_done = now_s();
	}
	MUST(sk_cluster_fence(c));
	MPI_Bcast(&t_back, 1, MPI_DOUBLE, busy, MPI_COMM_WORLD);
	/* An add could only complete once the leader was back in the library. */
	if (t_done > 0)
		assert_true(t_done >= t_back);
	int64_t v;
	uint64_t i = r0;
	MUST(sk_cluster_array_gather(a, 1, &i, &v));
	int others = 0;
	for (int r = 0; r < SIZE; r++)
		others += sk_cluster_node_of(c, r) != nodes - 1;
	assert_int_equal(v, others);
	MUST(sk_cluster_array_close(a));
	MUST(sk_cluster_close(c));
	test_done = 1;
}

/* A write through a replicated copy faults (in a child that only writes). */
static void test_replicated_write_faults(void **state)
{
	(void)state;
	int64_t x[4] = { 1, 2, 3, 4 };
	uint64_t n = 4;
	sk_cluster_array *a;
	MUST(sk_cluster_array_replicate(CL, 0, SK_INT64, 1, &n, x, &a));
	if (RANK == SIZE - 1) {
		volatile int64_t *p = sk_array_data(sk_cluster_array_local(a));
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			signal(SIGSEGV, SIG_DFL);
			p[0] = 5;
			_exit(0);
		}
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st));
		assert_int_equal(WTERMSIG(st), SIGSEGV);
		assert_int_equal(p[0], 1);
	}
	MUST(sk_cluster_array_close(a));
	test_done = 1;
}

static int failed_here;

/* After a failure on this rank the remaining tests are skipped (a failing
 * setup skips its test), cmocka prints the failure, and main aborts the job:
 * the other ranks would wait for this one in the next collective. */
static int setup(void **state)
{
	(void)state;
	test_done = 0;
	return failed_here ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	if (!test_done && !failed_here) {
		failed_here = 1;
		fprintf(stderr, "rank %d: a test failed; the job ends after cmocka's report\n", RANK);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *th = getenv("SHMKIT_TEST_THREAD");
	int want = th && strcmp(th, "single") == 0 ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE, got;
	MPI_Init_thread(&argc, &argv, want, &got);
	THREADED = got >= MPI_THREAD_MULTIPLE;
	MPI_Comm_rank(MPI_COMM_WORLD, &RANK);
	MPI_Comm_size(MPI_COMM_WORLD, &SIZE);
	RPN = getenv("SHMKIT_TEST_RANKS_PER_NODE") ? atoi(getenv("SHMKIT_TEST_RANKS_PER_NODE")) : 0;
	sk_cluster_opts o = { .ranks_per_node = RPN };
	int rc = sk_cluster_create(MPI_COMM_WORLD, &o, &CL);
	if (rc) {
		fprintf(stderr, "rank %d: sk_cluster_create: %s\n", RANK, sk_cluster_strerror(rc));
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_topology, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_npy_parser, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_dtypes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_pss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_npy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicate_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replicated_write_faults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_rows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_blocks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_blocks_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partition_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bits_partition, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_and_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_copy_and_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inline_progress, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
	};
	/* Every rank reports; a line at a time, so that an abort loses nothing. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (getenv("SHMKIT_TEST_FILTER")) /* a glob of test names, to run a few */
		cmocka_set_test_filter(getenv("SHMKIT_TEST_FILTER"));
	rc = cmocka_run_group_tests_name("cluster", tests, NULL, NULL);
	if (rc || failed_here) {
		fprintf(stderr, "rank %d: %d tests failed\n", RANK, rc);
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	rc = sk_cluster_close(CL);
	if (rc) {
		fprintf(stderr, "rank %d: sk_cluster_close: %s\n", RANK, sk_cluster_strerror(rc));
		MPI_Abort(MPI_COMM_WORLD, 1);
	}
	printf("rank %d: all passed\n", RANK);
	fflush(stdout);
	/* Also in a file: a launcher may lose a line of a rank's output, and
	 * MPICH over UCX/TCP may hang in MPI_Finalize (tests/cluster). */
	const char *dir = getenv("SHMKIT_TEST_RESULTS");
	if (dir) {
		char path[512];
		snprintf(path, sizeof path, "%s/rank-%d", dir, RANK);
		FILE *f = fopen(path, "w");
		if (f) {
			fprintf(f, "rank %d: all passed\n", RANK);
			fclose(f);
		}
	}
	MPI_Finalize();
	return 0;
}
