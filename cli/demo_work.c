/*
 * demo_work.c: the workload of `shmkit demo` (demo.h). The data is a
 * reproducible pattern: bit arrays of mixed words, int64 arrays uniform in
 * [-1e9, 1e9], both from the word's index, so that the fill computes the
 * expected popcount, sum, min and max as it writes. Each worker is its own
 * process: the state below is per worker, set by its first attach (by name)
 * or, with --anonymous, by demo_create_data in the parent before the pool
 * forks (the workers inherit the handles and keep them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "demo.h"

bool demo_anon;

/* ---- the pattern ---- */

static inline uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Uniform in [-1e9, 1e9] by a multiply-high: no division in the fill loop. */
static inline int64_t int_value(uint64_t i)
{
	return (int64_t)(((unsigned __int128)mix(i) * UINT64_C(2000000001)) >> 64) - 1000000000;
}

void stats_add_ints(stats *s, const int64_t *v, uint64_t n)
{
	int64_t sum = 0, lo = INT64_MAX, hi = INT64_MIN;
	for (uint64_t i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	if (!n)
		return;
	s->min = s->ints && s->min < lo ? s->min : lo;
	s->max = s->ints && s->max > hi ? s->max : hi;
	s->sum += sum;
	s->ints += n;
}

void stats_merge(stats *a, const stats *b)
{
	a->popcount += b->popcount;
	if (b->ints) {
		a->min = a->ints && a->min < b->min ? a->min : b->min;
		a->max = a->ints && a->max > b->max ? a->max : b->max;
	}
	a->sum += b->sum;
	a->ints += b->ints;
}

bool stats_equal(const stats *a, const stats *b)
{
	return a->popcount == b->popcount && a->sum == b->sum && a->ints == b->ints &&
	       (!a->ints || (a->min == b->min && a->max == b->max));
}

void demo_merge_stats(void *acc, const void *slot, int worker)
{
	(void)worker;
	stats_merge(acc, slot);
}

/* This thread's CPU time: the library's clock is wall time only. */
static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- worker-side state: each worker is its own process ---- */

static sk_bits *w_bits[NBITS];
static sk_array *w_arr[NSEG - NBITS];
static uint64_t *w_words[NSEG];
static int64_t w_attach_ns, w_attach_cpu_ns;
static uint64_t *w_buf;

static void w_release(void)
{
	for (int k = 0; k < NBITS; k++)
		sk_bits_close(w_bits[k]), w_bits[k] = NULL;
	for (int k = 0; k < NSEG - NBITS; k++)
		sk_array_close(w_arr[k]), w_arr[k] = NULL;
	memset(w_words, 0, sizeof w_words);
}

static int w_attach(const demo_arg *a, int flags)
{
	if (w_words[0])
		return 0;
	int64_t t0 = sk_monotonic_ns(), c0 = cpu_ns();
	for (int k = 0; k < NSEG; k++) {
		int rc;
		if (k < NBITS) {
			rc = sk_bits_open(a->names[k], flags, &w_bits[k]);
			if (!rc)
				w_words[k] = sk_bits_words(w_bits[k]);
		} else {
			rc = sk_array_open_as(a->names[k], flags, SK_INT64, 1, &a->words, &w_arr[k - NBITS]);
			if (!rc)
				w_words[k] = sk_array_data(w_arr[k - NBITS]);
		}
		if (rc) {
			w_release();
			return rc;
		}
	}
	w_attach_ns = sk_monotonic_ns() - t0;
	w_attach_cpu_ns = cpu_ns() - c0;
	return 0;
}

/* ---- the jobs ---- */

int demo_job_fill(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	const demo_arg *a = ctx->arg;
	int rc = w_attach(a, SK_RDWR);
	if (rc)
		return rc;
	stats *st = ctx->result;
	while (b < e) {
		uint64_t seg = b / a->words, off = b % a->words;
		uint64_t n = e - b < a->words - off ? e - b : a->words - off;
		uint64_t *w = w_words[seg] + off;
		if (seg < NBITS) {
			for (uint64_t i = 0; i < n; i++)
				w[i] = mix(b + i);
			/* The library's counting: the same fast path the scan uses. */
			st->popcount += (uint64_t)sk_bits_count(w_bits[seg], off * 64, (off + n) * 64);
		} else {
			int64_t *v = (int64_t *)w;
			for (uint64_t i = 0; i < n; i++)
				v[i] = int_value(b + i);
			stats_add_ints(st, v, n);
		}
		b += n;
	}
	return 0;
}

int demo_job_release(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)ctx, (void)b, (void)e;
	if (!demo_anon) /* inherited mappings are kept for the next job */
		w_release();
	free(w_buf);
	w_buf = NULL;
	return 0;
}

static void scan_range(stats *st, uint64_t first, uint64_t count)
{
	for (int k = 0; k < NBITS; k++)
		st->popcount += (uint64_t)sk_bits_count(w_bits[k], first * 64, (first + count) * 64);
	for (int k = NBITS; k < NSEG; k++)
		stats_add_ints(st, (const int64_t *)w_words[k] + first, count);
}

int demo_job_scan(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	scan_slot *r = ctx->result;
	int rc = w_attach(a, SK_RDONLY);
	if (rc)
		return rc;
	r->attach_ns = w_attach_ns;
	r->attach_cpu_ns = w_attach_cpu_ns;
	int64_t t0 = sk_monotonic_ns();
	scan_range(&r->full, 0, a->words);
	int64_t t1 = sk_monotonic_ns();
	uint64_t first = 0, count = 0; /* its share: the pool's static split */
	sk_pool_share(a->words, ctx->nworkers, ctx->worker, &first, &count);
	scan_range(&r->share, first, count);
	r->scan_ns = t1 - t0;
	r->share_ns = sk_monotonic_ns() - t1;
	if (!a->keep_open && !demo_anon)
		w_release();
	return 0;
}

/* The machine's read speed: private buffers, allocated and touched first. */
int demo_job_buf_alloc(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	w_buf = malloc(a->buf_bytes);
	if (!w_buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < a->buf_bytes / 8; i++)
		w_buf[i] = i ^ (uint64_t)ctx->worker;
	return 0;
}

int demo_job_buf_read(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	uint64_t sum = 0;
	for (int r = 0; r < a->reps; r++)
		sum += measure_sum_words(w_buf, (size_t)(a->buf_bytes / 8));
	*(uint64_t *)ctx->result = sum; /* keeps the loop alive */
	return 0;
}

/* ---- the data ---- */

/* Named segments are owned: if the demo is killed outright, `shmkit gc` (or
 * the next create anywhere) removes what it left; anonymous ones go with the
 * last process that holds them, and the workers (forked after) get the
 * handles set here. */
int demo_create_data(const demo_arg *arg, uint32_t page_flags, sk_bits **bits, sk_array **arrs, void **data,
		     demo_pages *pages, volatile sig_atomic_t *made)
{
	uint64_t words = arg->words;
	sk_create_opts o = { .flags = (demo_anon ? SK_CREATE_ANON : SK_CREATE_OWNED) | page_flags };
	for (int k = 0; k < NSEG; k++) {
		const char *name = demo_anon ? NULL : arg->names[k];
		/* Counted before the create: a signal that lands between the name's
		 * publication and the create's return still removes it (the names
		 * carry our pid: unlinking one not made yet harms no one). */
		if (!demo_anon)
			*made = k + 1;
		int rc = k < NBITS ? sk_bits_create(name, words * 64, &o, &bits[k])
				   : sk_array_create(name, SK_INT64, 1, &words, &o, &arrs[k - NBITS]);
		if (rc) {
			if (!demo_anon)
				*made = k;
			char hs[32];
			fail("demo", "cannot create %s (%s): %s", demo_anon ? "an anonymous segment" : arg->names[k],
			     human_size(words * 8, hs), sk_strerror(rc));
			return rc;
		}
		sk_segment *seg = k < NBITS ? sk_bits_segment(bits[k]) : sk_array_segment(arrs[k - NBITS]);
		data[k] = sk_segment_data(seg);
		/* The four are the same size: their pages are reported as one, the
		 * smallest page size, the first status short of SK_HUGE_ALL, and
		 * the bytes in 2 MiB pages of all four. */
		sk_segment_info in;
		sk_segment_info_get(seg, &in);
		if (!k || in.page_size < pages->page_size)
			pages->page_size = in.page_size;
		if (!k || pages->huge_status == SK_HUGE_ALL)
			pages->huge_status = in.huge_status;
		pages->huge_bytes = (k ? pages->huge_bytes : 0) + in.huge_bytes;
		if (demo_anon) {
			w_words[k] = data[k];
			if (k < NBITS)
				w_bits[k] = bits[k];
			else
				w_arr[k - NBITS] = arrs[k - NBITS];
		}
	}
	return 0;
}
