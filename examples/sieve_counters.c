/*
 * sieve_counters: a large bit array plus integer arrays shared by 12 worker
 * processes, with shared counters updated from every worker.
 *
 * The workers run a segmented sieve of Eratosthenes over a 2^30-bit array in
 * shared memory (bit n set = n is composite), marking multiples with atomic
 * bit operations; then they count the primes per last decimal digit into a
 * shared int64 array of 10 counters. The counters are updated with atomic
 * fetch-add, which is exact from any number of processes; a process-shared
 * mutex (sk_mutex, coming with the locks issue) will serve compound updates.
 * The count is checked against pi(2^30) = 54,400,028.
 */
#include <shmkit.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LIMIT    (UINT64_C(1) << 30)
#define PI_LIMIT 54400028

typedef struct job_arg {
	char bits[64], counters[64];
} job_arg;

static uint32_t *small_primes; /* primes up to sqrt(LIMIT), made before the pool: inherited */
static size_t nsmall;
static sk_bits *w_bits;
static sk_array *w_counters;

static int attach(const job_arg *a)
{
	int rc = 0;
	if (!w_bits)
		rc = sk_bits_open(a->bits, SK_RDWR, &w_bits);
	if (!rc && !w_counters)
		rc = sk_array_open_as(a->counters, SK_RDWR, SK_INT64, 1, (uint64_t[]){ 10 }, &w_counters);
	return rc;
}

static int mark_composites(const sk_pool_ctx *ctx, uint64_t begin, uint64_t end)
{
	int rc = attach(ctx->arg);
	if (rc)
		return rc;
	for (size_t k = 0; k < nsmall; k++) {
		uint64_t p = small_primes[k];
		uint64_t first = p * p > begin ? p * p : (begin + p - 1) / p * p;
		for (uint64_t m = first; m < end; m += p)
			sk_bits_set(w_bits, m);
	}
	return 0;
}

static int count_by_digit(const sk_pool_ctx *ctx, uint64_t begin, uint64_t end)
{
	int rc = attach(ctx->arg);
	if (rc)
		return rc;
	int64_t local[10] = { 0 };
	for (int64_t n = sk_bits_find_next_clear(w_bits, begin); n >= 0 && (uint64_t)n < end;
	     n = sk_bits_find_next_clear(w_bits, (uint64_t)n + 1))
		local[n % 10]++;
	int64_t *counters = sk_array_data(w_counters);
	for (int d = 0; d < 10; d++)
		__atomic_fetch_add(&counters[d], local[d], __ATOMIC_RELAXED);
	return 0;
}

int main(void)
{
	/* The small primes, by a plain sieve in this process. */
	uint32_t root = 1u << 15;
	char *is_comp = calloc(root + 1, 1);
	small_primes = malloc(sizeof *small_primes * root);
	for (uint32_t i = 2; i <= root; i++) {
		if (is_comp[i])
			continue;
		small_primes[nsmall++] = i;
		for (uint32_t j = i * i; j <= root; j += i)
			is_comp[j] = 1;
	}
	free(is_comp);

	job_arg arg;
	snprintf(arg.bits, sizeof arg.bits, "sieve-bits-%d", (int)getpid());
	snprintf(arg.counters, sizeof arg.counters, "sieve-counters-%d", (int)getpid());
	sk_pool *pool;
	int rc = sk_pool_create(12, NULL, &pool);
	if (rc) {
		fprintf(stderr, "pool: %s\n", sk_strerror(rc));
		return 1;
	}
	sk_bits *bits = NULL;
	sk_array *counters = NULL;
	rc = sk_bits_create(arg.bits, LIMIT, NULL, &bits);
	if (!rc)
		rc = sk_array_create(arg.counters, SK_INT64, 1, (uint64_t[]){ 10 }, NULL, &counters);
	sk_pool_failure f;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!rc) {
		sk_bits_set_range(bits, 0, 2); /* 0 and 1 are not prime */
		sk_pool_job mark = {
			.fn = mark_composites, .arg = &arg, .arg_size = sizeof arg, .end = LIMIT, .chunk = 1 << 22
		};
		rc = sk_pool_run(pool, &mark, &f);
	}
	if (!rc) {
		sk_pool_job count = {
			.fn = count_by_digit, .arg = &arg, .arg_size = sizeof arg, .end = LIMIT, .chunk = 1 << 22
		};
		rc = sk_pool_run(pool, &count, &f);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (rc)
		fprintf(stderr, "%s\n", rc == SK_EWORKER ? f.message : sk_strerror(rc));
	int ok = 0;
	if (!rc) {
		int64_t primes = LIMIT - sk_bits_count(bits, 0, LIMIT), sum = 0;
		const int64_t *c = sk_array_data(counters);
		printf("primes below 2^30 by last digit:");
		for (int d = 0; d < 10; d++) {
			printf(" %d:%lld", d, (long long)c[d]);
			sum += c[d];
		}
		ok = primes == PI_LIMIT && sum == PI_LIMIT;
		printf("\n%lld primes (expected %d), counters agree: %s; %.2f s with 12 workers\n", (long long)primes,
		       PI_LIMIT, ok ? "ok" : "WRONG",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	}
	sk_pool_close(pool);
	sk_bits_close(bits);
	sk_array_close(counters);
	sk_segment_unlink(arg.bits);
	sk_segment_unlink(arg.counters);
	free(small_primes);
	return ok ? 0 : 1;
}
