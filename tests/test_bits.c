/*
 * test_bits.c: bit arrays against a naive reference (one byte per bit) on
 * random data, on every SIMD path this CPU has; atomic test-and-set from
 * several processes at once; errors.
 */
#include "helpers.h"

#include <sys/stat.h>
#include <sys/mman.h>
#include <signal.h>
#include <fcntl.h>
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static const uint64_t sizes[] = { 0, 1, 63, 64, 65, 127, 128, 129, 511, 512, 513, 1000, 4099, 100003 };

static void fill_random(sk_bits *b, unsigned char *ref, uint64_t *seed)
{
	uint64_t n = sk_bits_len(b);
	for (uint64_t i = 0; i < n; i++) {
		ref[i] = t_rand(seed) & 1;
		if (ref[i])
			assert_int_equal(sk_bits_set(b, i), 0);
		else
			assert_int_equal(sk_bits_clear(b, i), 0);
	}
}

static void check_equal(const sk_bits *b, const unsigned char *ref)
{
	uint64_t n = sk_bits_len(b);
	for (uint64_t i = 0; i < n; i++)
		if (sk_bits_test(b, i) != ref[i])
			fail_msg("bit %llu differs from the reference", (unsigned long long)i);
	/* Bits past the length stay zero. */
	if (n % 64)
		assert_int_equal(sk_bits_words(b)[n / 64] >> (n % 64), 0);
}

static void test_single_bits_and_ranges(void **state)
{
	(void)state;
	uint64_t seed = 12345;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		uint64_t n = sizes[k];
		const char *name = t_name("single");
		sk_bits *b;
		assert_int_equal(sk_bits_create(name, n, NULL, &b), 0);
		assert_int_equal(sk_bits_len(b), n);
		assert_string_equal(sk_bits_name(b), name);
		assert_int_equal(sk_segment_kind(sk_bits_segment(b)), SK_KIND_BITS);
		unsigned char *ref = calloc(n + 1, 1);
		check_equal(b, ref);
		for (int round = 0; round < 300 && n; round++) {
			uint64_t i = t_rand(&seed) % n, j = t_rand(&seed) % (n + 1);
			uint64_t lo = i < j ? i : j, hi = i < j ? j : i;
			switch (t_rand(&seed) % 7) {
			case 0:
				assert_int_equal(sk_bits_set(b, i), 0);
				ref[i] = 1;
				break;
			case 1:
				assert_int_equal(sk_bits_clear(b, i), 0);
				ref[i] = 0;
				break;
			case 2:
				assert_int_equal(sk_bits_flip(b, i), 0);
				ref[i] ^= 1;
				break;
			case 3:
				assert_int_equal(sk_bits_test_and_set(b, i), ref[i]);
				ref[i] = 1;
				break;
			case 4:
				assert_int_equal(sk_bits_test_and_clear(b, i), ref[i]);
				ref[i] = 0;
				break;
			case 5:
				assert_int_equal(sk_bits_set_range(b, lo, hi), 0);
				memset(ref + lo, 1, hi - lo);
				break;
			case 6:
				assert_int_equal(sk_bits_clear_range(b, lo, hi), 0);
				memset(ref + lo, 0, hi - lo);
				break;
			}
		}
		check_equal(b, ref);
		/* Whole-array ranges and errors. */
		assert_int_equal(sk_bits_set_range(b, 0, n), 0);
		assert_int_equal(sk_bits_count(b, 0, n), (int64_t)n);
		check_equal(b, memset(ref, 1, n));
		assert_int_equal(sk_bits_clear_range(b, 0, n), 0);
		assert_int_equal(sk_bits_count(b, 0, n), 0);
		assert_int_equal(sk_bits_test(b, n), -ERANGE);
		assert_int_equal(sk_bits_set(b, n), -ERANGE);
		assert_int_equal(sk_bits_clear(b, n), -ERANGE);
		assert_int_equal(sk_bits_flip(b, n), -ERANGE);
		assert_int_equal(sk_bits_test_and_set(b, n), -ERANGE);
		assert_int_equal(sk_bits_test_and_clear(b, n), -ERANGE);
		assert_int_equal(sk_bits_set_range(b, 0, n + 1), -ERANGE);
		assert_int_equal(sk_bits_clear_range(b, 1, 0), -ERANGE);
		assert_int_equal(sk_bits_count(b, 0, n + 1), -ERANGE);
		assert_int_equal(sk_bits_find_next_set(b, n + 1), -ERANGE);
		assert_int_equal(sk_bits_find_next_set(b, n), SK_ENOTFOUND);
		free(ref);
		sk_bits_close(b);
		assert_int_equal(sk_segment_unlink(name), 0);
	}
	assert_int_equal(sk_bits_close(NULL), 0);
}

static int levels[4];
static int nlevels;

static void each_level(void (*fn)(void))
{
	for (int k = 0; k < nlevels; k++) {
		assert_int_equal(sk__simd_force(levels[k]), 0);
		fn();
	}
}

static void count_and_find(void)
{
	uint64_t seed = 99;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		uint64_t n = sizes[k];
		const char *name = t_name("count");
		sk_bits *b;
		assert_int_equal(sk_bits_create(name, n, NULL, &b), 0);
		unsigned char *ref = calloc(n + 1, 1);
		fill_random(b, ref, &seed);
		for (int round = 0; round < 200; round++) {
			uint64_t i = n ? t_rand(&seed) % (n + 1) : 0, j = n ? t_rand(&seed) % (n + 1) : 0;
			uint64_t lo = i < j ? i : j, hi = i < j ? j : i;
			int64_t want = 0;
			for (uint64_t x = lo; x < hi; x++)
				want += ref[x];
			assert_int_equal(sk_bits_count(b, lo, hi), want);
			int64_t ns = SK_ENOTFOUND, nc = SK_ENOTFOUND;
			for (uint64_t x = lo; x < n && ns < 0; x++)
				if (ref[x])
					ns = (int64_t)x;
			for (uint64_t x = lo; x < n && nc < 0; x++)
				if (!ref[x])
					nc = (int64_t)x;
			assert_int_equal(sk_bits_find_next_set(b, lo), ns);
			assert_int_equal(sk_bits_find_next_clear(b, lo), nc);
		}
		/* Sparse and dense extremes for the searches. */
		assert_int_equal(sk_bits_clear_range(b, 0, n), 0);
		assert_int_equal(sk_bits_find_next_set(b, 0), SK_ENOTFOUND);
		if (n) {
			assert_int_equal(sk_bits_set(b, n - 1), 0);
			assert_int_equal(sk_bits_find_next_set(b, 0), (int64_t)(n - 1));
			assert_int_equal(sk_bits_set_range(b, 0, n), 0);
			assert_int_equal(sk_bits_find_next_clear(b, 0), SK_ENOTFOUND);
		}
		free(ref);
		sk_bits_close(b);
		sk_segment_unlink(name);
	}
}

static void test_count_and_find_every_path(void **state)
{
	(void)state;
	each_level(count_and_find);
}

static void bulk_ops(void)
{
	uint64_t seed = 7;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		uint64_t n = sizes[k];
		const char *na = t_name("opa"), *nb = t_name("opb"), *nd = t_name("opd");
		sk_bits *a, *b, *d;
		assert_int_equal(sk_bits_create(na, n, NULL, &a), 0);
		assert_int_equal(sk_bits_create(nb, n, NULL, &b), 0);
		assert_int_equal(sk_bits_create(nd, n, NULL, &d), 0);
		unsigned char *ra = calloc(n + 1, 1), *rb = calloc(n + 1, 1), *rd = calloc(n + 1, 1);
		fill_random(a, ra, &seed);
		fill_random(b, rb, &seed);
		for (int op = 0; op < 4; op++) {
			int rc = op == 0   ? sk_bits_and(d, a, b)
				 : op == 1 ? sk_bits_or(d, a, b)
				 : op == 2 ? sk_bits_xor(d, a, b)
					   : sk_bits_not(d, a);
			assert_int_equal(rc, 0);
			for (uint64_t i = 0; i < n; i++)
				rd[i] = op == 0   ? ra[i] & rb[i]
					: op == 1 ? ra[i] | rb[i]
					: op == 2 ? ra[i] ^ rb[i]
						  : !ra[i];
			check_equal(d, rd);
			int64_t want = 0;
			for (uint64_t i = 0; i < n; i++)
				want += rd[i];
			assert_int_equal(sk_bits_count(d, 0, n), want);
		}
		/* In place: a = a ^ b, then a = ~a. */
		assert_int_equal(sk_bits_xor(a, a, b), 0);
		assert_int_equal(sk_bits_not(a, a), 0);
		for (uint64_t i = 0; i < n; i++)
			ra[i] = !(ra[i] ^ rb[i]);
		check_equal(a, ra);
		free(ra), free(rb), free(rd);
		sk_bits_close(a), sk_bits_close(b), sk_bits_close(d);
		sk_segment_unlink(na), sk_segment_unlink(nb), sk_segment_unlink(nd);
	}
}

static void test_bulk_ops_every_path(void **state)
{
	(void)state;
	each_level(bulk_ops);
}

static void test_kernels_against_portable(void **state)
{
	(void)state;
	/* Unaligned starts and every tail length, big enough to reach the loops. */
	enum { N = 2100 };
	uint64_t *a = malloc((N + 1) * 8), *b = malloc((N + 1) * 8), *d1 = malloc((N + 1) * 8),
		 *d2 = malloc((N + 1) * 8);
	uint64_t seed = 4242;
	for (int i = 0; i <= N; i++)
		a[i] = t_rand(&seed), b[i] = t_rand(&seed);
	assert_int_equal(sk__simd_force(SK__SIMD_PORTABLE), 0);
	const sk__simd_ops *ref = sk__simd();
	for (int k = 0; k < nlevels; k++) {
		sk__simd_force(levels[k]);
		const sk__simd_ops *o = sk__simd();
		for (size_t n = 0; n < N; n += n < 70 ? 1 : 97) {
			for (int off = 0; off <= 1; off++) {
				assert_int_equal(o->popcount(a + off, n), ref->popcount(a + off, n));
				void (*ops[3])(uint64_t *, const uint64_t *, const uint64_t *,
					       size_t) = { o->and_, o->or_, o->xor_ };
				void (*rops[3])(uint64_t *, const uint64_t *, const uint64_t *,
						size_t) = { ref->and_, ref->or_, ref->xor_ };
				for (int j = 0; j < 3; j++) {
					memset(d1, 0x11, (N + 1) * 8), memset(d2, 0x11, (N + 1) * 8);
					ops[j](d1 + off, a + off, b, n);
					rops[j](d2 + off, a + off, b, n);
					assert_memory_equal(d1, d2, (N + 1) * 8); /* nothing written past n */
				}
				memset(d1, 0x22, (N + 1) * 8), memset(d2, 0x22, (N + 1) * 8);
				o->not_(d1 + off, b + off, n);
				ref->not_(d2 + off, b + off, n);
				assert_memory_equal(d1, d2, (N + 1) * 8);
			}
		}
	}
	free(a), free(b), free(d1), free(d2);
}

static void test_simd_selection(void **state)
{
	(void)state;
	assert_int_equal(sk__simd_force(-1), -EINVAL);
	assert_int_equal(sk__simd_force(9), -EINVAL);
	const char *names[] = { "portable", "popcnt", "avx2", "avx512" };
	for (int l = 0; l < 4; l++) {
		if (sk__simd_supported(l)) {
			assert_int_equal(sk__simd_force(l), 0);
			assert_string_equal(sk_simd_path(), names[l]);
		} else {
			assert_int_equal(sk__simd_force(l), -ENOTSUP);
		}
	}
	/* SHMKIT_SIMD picks the path for a fresh process. */
	char cmd[512];
	for (int l = 0; l < nlevels; l++) {
		snprintf(cmd, sizeof cmd, "SHMKIT_SIMD=%s /proc/%d/exe --print-simd", names[levels[l]], (int)getpid());
		FILE *p = popen(cmd, "r");
		assert_non_null(p);
		char out[64] = "";
		assert_non_null(fgets(out, sizeof out, p));
		assert_int_equal(pclose(p), 0);
		out[strcspn(out, "\n")] = '\0';
		assert_string_equal(out, names[levels[l]]);
	}
}

static void test_errors(void **state)
{
	(void)state;
	sk_bits *b, *r, *c;
	assert_int_equal(sk_bits_create(t_name("toolong"), SK_BITS_MAX + 1, NULL, &b), -EINVAL);
	assert_null(b);
	/* 2^40 bits is 128 GiB: allowed by the format, refused for space. */
	assert_int_equal(sk_bits_create(t_name("max"), SK_BITS_MAX, NULL, &b), -ENOSPC);
	assert_int_equal(sk_bits_create(t_name("x"), 10, NULL, NULL), -EINVAL);
	assert_int_equal(sk_bits_open(t_name("missing"), SK_RDONLY, &b), -ENOENT);

	const char *name = t_name("ro"), *other = t_name("len");
	assert_int_equal(sk_bits_create(name, 1000, NULL, &b), 0);
	assert_int_equal(sk_bits_create(other, 999, NULL, &c), 0);
	assert_int_equal(sk_bits_set(b, 5), 0);
	assert_int_equal(sk_bits_open(name, SK_RDONLY, &r), 0);
	assert_int_equal(sk_bits_test(r, 5), 1);
	assert_int_equal(sk_bits_set(r, 1), SK_EREADONLY);
	assert_int_equal(sk_bits_clear(r, 1), SK_EREADONLY);
	assert_int_equal(sk_bits_flip(r, 1), SK_EREADONLY);
	assert_int_equal(sk_bits_test_and_set(r, 1), SK_EREADONLY);
	assert_int_equal(sk_bits_test_and_clear(r, 1), SK_EREADONLY);
	assert_int_equal(sk_bits_set_range(r, 0, 10), SK_EREADONLY);
	assert_int_equal(sk_bits_clear_range(r, 0, 10), SK_EREADONLY);
	assert_int_equal(sk_bits_and(r, b, b), SK_EREADONLY);
	assert_int_equal(sk_bits_not(r, b), SK_EREADONLY);
	assert_int_equal(sk_bits_count(r, 0, 1000), 1);
	assert_int_equal(sk_bits_and(b, b, c), SK_ETYPE);
	assert_int_equal(sk_bits_or(c, b, b), SK_ETYPE);
	assert_int_equal(sk_bits_xor(b, c, b), SK_ETYPE);
	assert_int_equal(sk_bits_not(c, b), SK_ETYPE);
	assert_int_equal(sk_bits_and(NULL, b, b), -EINVAL);
	assert_int_equal(sk_bits_count(b, 0, 1000), 1); /* failed ops changed nothing */
	sk_bits_close(r), sk_bits_close(b), sk_bits_close(c);
	sk_segment_unlink(name), sk_segment_unlink(other);

	sk_bits *empty;
	assert_int_equal(sk_bits_create(name, 0, NULL, &empty), 0);
	assert_null(sk_bits_words(empty));
	assert_int_equal(sk_bits_count(empty, 0, 0), 0);
	assert_int_equal(sk_bits_not(empty, empty), 0);
	sk_bits_close(empty);
	sk_segment_unlink(name);
}

enum { PROCS = 8, NBITS = 1 << 18 };

typedef struct tas_arg {
	const char *bits, *wins;
	int who;
} tas_arg;

static int child_test_and_set(void *p)
{
	tas_arg *arg = p;
	sk_bits *b;
	sk_array *w;
	if (sk_bits_open(arg->bits, SK_RDWR, &b) || sk_array_open(arg->wins, SK_RDWR, &w))
		return 1;
	/* Every process walks all bits, from its own starting point and
	 * stride, so they collide on the same words all the time. */
	uint64_t strides[PROCS] = { 1, 3, 5, 7, 9, 11, 13, 15 };
	uint64_t pos = (uint64_t)arg->who * 977, wins = 0;
	for (uint64_t k = 0; k < NBITS; k++) {
		pos = (pos + strides[arg->who]) % NBITS;
		int r = sk_bits_test_and_set(b, pos);
		if (r < 0)
			return 2;
		wins += r == 0;
	}
	((int64_t *)sk_array_data(w))[arg->who] = (int64_t)wins;
	sk_bits_close(b);
	sk_array_close(w);
	return 0;
}

static void test_atomic_test_and_set_processes(void **state)
{
	(void)state;
	const char *bn = t_name("tas"), *wn = t_name("taswins");
	sk_bits *b;
	sk_array *w;
	uint64_t procs = PROCS;
	assert_int_equal(sk_bits_create(bn, NBITS, NULL, &b), 0);
	assert_int_equal(sk_array_create(wn, SK_INT64, 1, &procs, NULL, &w), 0);
	pid_t pids[PROCS];
	tas_arg args[PROCS];
	for (int i = 0; i < PROCS; i++) {
		args[i] = (tas_arg){ bn, wn, i };
		fflush(NULL);
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(child_test_and_set(&args[i]));
	}
	for (int i = 0; i < PROCS; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		t_assert_exit0(status);
	}
	int64_t total = 0;
	for (int i = 0; i < PROCS; i++)
		total += ((int64_t *)sk_array_data(w))[i];
	/* Each bit was won by exactly one process. */
	assert_int_equal(total, NBITS);
	assert_int_equal(sk_bits_count(b, 0, NBITS), NBITS);
	sk_bits_close(b);
	sk_array_close(w);
	sk_segment_unlink(bn);
	sk_segment_unlink(wn);
}

/* ---- A hostile peer (issue 13): it maps the segment's file itself and
 * writes random bytes at random offsets, header page and data alike, until
 * killed. The victim must get clean errors or wrong data, never a crash and
 * never an access outside its mappings (ASan checks the latter in CI).
 * ITER sets the victim's rounds (default 2000). ---- */
static int scribble_forever(void *arg)
{
	char path[300];
	snprintf(path, sizeof path, "/dev/shm/%s", (const char *)arg);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return 1;
	uint8_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 2;
	sk__header orig;
	memcpy(&orig, p, sizeof orig);
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	for (;;) {
		uint64_t r = t_rand(&seed);
		if (r % 4 == 0) {
			/* A forged descriptor with a valid checksum: the original, or
			 * one field changed. Half of them change nothing. */
			sk__header h = orig;
			uint64_t *w = (uint64_t *)&h;
			if (r & 8)
				w[(r >> 8) % (offsetof(sk__header, checksum) / 8)] ^= t_rand(&seed);
			h.checksum = sk__header_checksum(&h);
			memcpy(p, &h, sizeof h);
			continue;
		}
		for (int k = 0; k < 64; k++) {
			r = t_rand(&seed);
			size_t off = r & 1 ? (size_t)(r >> 8) % 4096 : (size_t)(r >> 8) % (size_t)st.st_size;
			p[off] = (uint8_t)(r >> 56);
		}
	}
	return 0;
}

static int hostile_iters(void)
{
	const char *e = getenv("ITER");
	int n = e ? atoi(e) : 0;
	return n > 0 ? n : 2000;
}

static sk_bits *victim_bits; /* opened before the peer starts; inherited */

static int bits_victim(void *arg)
{
	char name[256], path[300];
	snprintf(name, sizeof name, "%s", (const char *)arg); /* t_name's buffers are reused */
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	sk_bits *b = victim_bits, *other;
	const uint64_t n = sk_bits_len(b);
	sk_create_opts anon = { .flags = SK_CREATE_ANON };
	if (sk_bits_create(NULL, n, &anon, &other))
		return 2;
	uint64_t seed = 11;
	int opened = 0, refused = 0;
	for (int round = 0; round < hostile_iters(); round++) {
		for (int k = 0; k < 16; k++) {
			uint64_t i = t_rand(&seed) % n;
			if (sk_bits_set(b, i) || sk_bits_test(b, i) < 0 || sk_bits_test_and_clear(b, i) < 0 ||
			    sk_bits_flip(b, i) || sk_bits_test_and_set(b, i) < 0)
				return 3;
		}
		uint64_t x = t_rand(&seed) % n, y = t_rand(&seed) % n, lo = x < y ? x : y, hi = x < y ? y : x;
		if (sk_bits_set_range(b, lo, hi) || sk_bits_clear_range(b, lo, (lo + hi) / 2))
			return 4;
		int64_t c = sk_bits_count(b, 0, n), c2 = sk_bits_count(b, lo, hi);
		if (c < 0 || (uint64_t)c > n || c2 < 0 || (uint64_t)c2 > hi - lo)
			return 5;
		int64_t f = sk_bits_find_next_set(b, lo), g = sk_bits_find_next_clear(b, lo);
		if ((f != SK_ENOTFOUND && (f < (int64_t)lo || (uint64_t)f >= n)) ||
		    (g != SK_ENOTFOUND && (g < (int64_t)lo || (uint64_t)g >= n)))
			return 6;
		if (sk_bits_and(other, b, other) || sk_bits_or(other, other, b) || sk_bits_xor(b, b, other) ||
		    sk_bits_not(other, b))
			return 7;
		/* Padding bits past the length are never counted, whatever is in them. */
		if ((uint64_t)sk_bits_count(other, 0, n) > n)
			return 8;
		if (sk_bits_len(b) != n)
			return 9;
		sk_bits *fresh;
		int rc = sk_bits_open(name, SK_RDONLY, &fresh);
		if (rc == 0) {
			struct stat st;
			if (stat(path, &st) || (sk_bits_len(fresh) + 63) / 64 * 8 > (uint64_t)st.st_size)
				return 10;
			if (sk_bits_count(fresh, 0, sk_bits_len(fresh)) < 0)
				return 11;
			sk_bits_close(fresh);
			opened++;
		} else if (rc > -1000) {
			return 12;
		} else {
			refused++;
		}
	}
	sk_bits_close(other);
	print_message("hostile peer: %d fresh opens accepted, %d refused with a clean error\n", opened, refused);
	return 0;
}

static void test_hostile_peer_scribbles_bits(void **state)
{
	(void)state;
	const char *name = t_name("hostile");
	sk_bits *b;
	assert_int_equal(sk_bits_create(name, 100003, NULL, &b), 0); /* a partial last word */
	sk_bits_close(b);
	assert_int_equal(sk_bits_open(name, SK_RDWR, &victim_bits), 0);
	pid_t peer = t_spawn(scribble_forever, (void *)name);
	int status = t_fork(bits_victim, (void *)name);
	kill(peer, SIGKILL);
	waitpid(peer, NULL, 0);
	t_assert_exit0(status);
	sk_bits_close(victim_bits);
	t_remove(name); /* by hand: the peer may have damaged the magic too */
}

/* sk_bits_view: a bit array inside a raw segment's data, used like any
 * other, in this process and in a forked one; bounds and read-only refused. */
static int child_view_sets(void *arg)
{
	sk_bits *v = arg;
	for (uint64_t i = 1; i < sk_bits_len(v); i += 3)
		if (sk_bits_set(v, i))
			return 1;
	return 0;
}

static void test_view_inside_a_segment(void **state)
{
	(void)state;
	const char *name = t_name("view");
	sk_segment *seg, *ro;
	sk_bits *v, *w, *other, *bad;
	assert_int_equal(sk_segment_create(name, 4096 + 200, NULL, &seg), 0);
	uint8_t *data = sk_segment_data(seg);
	assert_int_equal(sk_bits_view(seg, 64, 1000, &v), 0);
	assert_int_equal(sk_bits_len(v), 1000);
	assert_ptr_equal(sk_bits_words(v), data + 64);
	assert_ptr_equal(sk_bits_segment(v), seg);
	assert_string_equal(sk_bits_name(v), name);
	assert_int_equal(sk_bits_set_range(v, 10, 20), 0);
	assert_int_equal(sk_bits_set(v, 999), 0);
	assert_int_equal(data[64 + 1], 0xfc); /* bits 10..15 of byte 1 */
	assert_int_equal(data[64 + 2], 0x0f);
	assert_int_equal(data[64 + 124], 0x80); /* bit 999 */
	assert_int_equal(sk_bits_count(v, 0, 1000), 11);
	assert_int_equal(sk_bits_find_next_set(v, 0), 10);
	assert_int_equal(sk_bits_test(v, 1000), -ERANGE);
	/* and/or/xor/not between a view and a bit array of its own */
	assert_int_equal(sk_bits_create(NULL, 1000, NULL, &other), 0);
	assert_int_equal(sk_bits_not(other, v), 0);
	assert_int_equal(sk_bits_count(other, 0, 1000), 989);
	assert_int_equal(sk_bits_and(other, other, v), 0);
	assert_int_equal(sk_bits_count(other, 0, 1000), 0);
	/* a forked child writes through its inherited view */
	t_assert_exit0(t_fork(child_view_sets, v));
	assert_int_equal(sk_bits_count(v, 0, 1000), 333 + 11 - 4); /* 4 of 10..19, 999 already set */
	/* bounds: the words must lie within the data; offsets are whole words' bytes */
	assert_int_equal(sk_bits_view(seg, 4096 + 200 - 8, 64, &w), 0);
	sk_bits_close(w);
	assert_int_equal(sk_bits_view(seg, 4096 + 200 - 8, 65, &bad), -ERANGE);
	assert_null(bad);
	assert_int_equal(sk_bits_view(seg, 4096 + 208, 0, &bad), -ERANGE);
	assert_int_equal(sk_bits_view(seg, UINT64_MAX - 7, 64, &bad), -ERANGE);
	assert_int_equal(sk_bits_view(seg, 4, 8, &bad), -EINVAL);
	assert_int_equal(sk_bits_view(seg, 0, SK_BITS_MAX + 1, &bad), -EINVAL);
	assert_int_equal(sk_bits_view(NULL, 0, 8, &bad), -EINVAL);
	assert_int_equal(sk_bits_view(seg, 0, 8, NULL), -EINVAL);
	assert_int_equal(sk_bits_view(seg, 4096 + 200, 0, &w), 0); /* empty, at the very end */
	assert_int_equal(sk_bits_count(w, 0, 0), 0);
	sk_bits_close(w);
	/* a view of a read-only mapping refuses writes */
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &ro), 0);
	assert_int_equal(sk_bits_view(ro, 64, 1000, &w), 0);
	assert_int_equal(sk_bits_count(w, 0, 1000), sk_bits_count(v, 0, 1000));
	assert_int_equal(sk_bits_set(w, 0), SK_EREADONLY);
	assert_int_equal(sk_bits_set_range(w, 0, 5), SK_EREADONLY);
	assert_int_equal(sk_bits_not(w, v), SK_EREADONLY);
	sk_bits_close(w);
	sk_segment_close(ro);
	/* closing the view leaves the segment mapped */
	sk_bits_close(v);
	assert_int_equal(data[64 + 124], 0xa4);                      /* 994 and 997 from the child, 999 */
	assert_int_equal(sk_segment_unlink(sk_bits_name(other)), 0); /* a generated name */
	sk_bits_close(other);
	sk_segment_close(seg);
	assert_int_equal(sk_segment_unlink(name), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--print-simd")) {
		puts(sk_simd_path());
		return 0;
	}
	for (int l = SK__SIMD_PORTABLE; l <= SK__SIMD_AVX512; l++)
		if (sk__simd_supported(l))
			levels[nlevels++] = l;
	printf("# SIMD paths tested on this CPU:");
	for (int k = 0; k < nlevels; k++)
		printf(" %d", levels[k]);
	printf("\n");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_peer_scribbles_bits),
		cmocka_unit_test(test_single_bits_and_ranges),
		cmocka_unit_test(test_count_and_find_every_path),
		cmocka_unit_test(test_bulk_ops_every_path),
		cmocka_unit_test(test_kernels_against_portable),
		cmocka_unit_test(test_simd_selection),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_atomic_test_and_set_processes),
		cmocka_unit_test(test_view_inside_a_segment),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
