/*
 * matrix_workers: what Python users write with shared_memory.SharedMemory and
 * 12 multiprocessing.Process over a 5000 x 5000 int64 matrix, in C with shmkit.
 *
 * The matrix lives once in a named segment. Twelve worker processes fill it
 * in parallel (row i, column j holds i * 5000 + j), then compute the sum of
 * every row; each worker's partial totals come back through its result slot,
 * without pickling or pipes. The result is checked against the closed form.
 */
#include <shmkit.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N 5000

typedef struct job_arg {
	char name[64];
} job_arg;

typedef struct partial {
	int64_t total;   /* sum of the row sums this worker computed */
	int64_t rows;    /* rows it handled */
	int64_t max_row; /* the largest row sum it saw */
} partial;

/* Each worker attaches by name once and keeps the mapping for the next job. */
static sk_array *attached;

static int64_t *matrix(const job_arg *a, int *rc)
{
	if (!attached && (*rc = sk_array_open_as(a->name, SK_RDWR, SK_INT64, 2, (uint64_t[]){ N, N }, &attached)))
		return NULL;
	return sk_array_data(attached);
}

static int fill_rows(const sk_pool_ctx *ctx, uint64_t begin, uint64_t end)
{
	int rc = 0;
	int64_t *m = matrix(ctx->arg, &rc);
	if (!m)
		return rc;
	for (uint64_t i = begin; i < end; i++)
		for (uint64_t j = 0; j < N; j++)
			m[i * N + j] = (int64_t)(i * N + j);
	return 0;
}

static int sum_rows(const sk_pool_ctx *ctx, uint64_t begin, uint64_t end)
{
	int rc = 0;
	int64_t *m = matrix(ctx->arg, &rc);
	if (!m)
		return rc;
	partial *p = ctx->result;
	for (uint64_t i = begin; i < end; i++) {
		int64_t s = 0;
		for (uint64_t j = 0; j < N; j++)
			s += m[i * N + j];
		p->total += s;
		p->rows++;
		if (s > p->max_row)
			p->max_row = s;
	}
	return 0;
}

static void combine(void *acc, const void *slot, int worker)
{
	(void)worker;
	partial *a = acc;
	const partial *p = slot;
	a->total += p->total;
	a->rows += p->rows;
	if (p->max_row > a->max_row)
		a->max_row = p->max_row;
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(void)
{
	job_arg arg;
	snprintf(arg.name, sizeof arg.name, "matrix-workers-%d", (int)getpid());
	sk_pool *pool;
	int rc = sk_pool_create(12, NULL, &pool);
	if (rc) {
		fprintf(stderr, "pool: %s\n", sk_strerror(rc));
		return 1;
	}
	sk_array *a;
	rc = sk_array_create(arg.name, SK_INT64, 2, (uint64_t[]){ N, N }, NULL, &a);
	if (rc) {
		fprintf(stderr, "create %s: %s\n", arg.name, sk_strerror(rc));
		sk_pool_close(pool);
		return 1;
	}
	sk_pool_failure f;
	double t0 = seconds();
	sk_pool_job fill = { .fn = fill_rows, .arg = &arg, .arg_size = sizeof arg, .end = N, .chunk = 50 };
	rc = sk_pool_run(pool, &fill, &f);
	double t1 = seconds();
	partial got = { 0 };
	sk_pool_job sum = { .fn = sum_rows,
			    .arg = &arg,
			    .arg_size = sizeof arg,
			    .end = N,
			    .chunk = 50,
			    .reduce = combine,
			    .reduce_acc = &got };
	if (!rc)
		rc = sk_pool_run(pool, &sum, &f);
	double t2 = seconds();
	if (rc)
		fprintf(stderr, "job: %s\n", rc == SK_EWORKER ? f.message : sk_strerror(rc));
	sk_pool_close(pool);
	sk_array_close(a);
	sk_segment_unlink(arg.name);
	if (rc)
		return 1;

	/* Sum of 0 .. N*N - 1, and the last row's sum. */
	int64_t nn = (int64_t)N * N, want = nn * (nn - 1) / 2;
	int64_t last = (int64_t)N * ((int64_t)(N - 1) * N) + (int64_t)N * (N - 1) / 2;
	bool ok = got.total == want && got.rows == N && got.max_row == last;
	printf("5000 x 5000 int64 (%.0f MB) shared by 12 workers: filled in %.3f s, summed in %.3f s\n",
	       (double)nn * 8 / 1e6, t1 - t0, t2 - t1);
	printf("total %lld (expected %lld), largest row sum %lld: %s\n", (long long)got.total, (long long)want,
	       (long long)got.max_row, ok ? "ok" : "WRONG");
	return ok ? 0 : 1;
}
