/*
 * test_array.c: typed N-d arrays: every dtype, 0 to 32 dimensions, empty
 * arrays, expected-type opens, kind checks, sizes beyond 4 GiB, processes.
 */
#include "helpers.h"

#include <sys/stat.h>
#include <sys/mman.h>
#include <signal.h>
#include <fcntl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static void test_every_dtype(void **state)
{
	(void)state;
	for (int d = SK_BOOL; d <= SK_FLOAT64; d++) {
		const char *name = t_name("dt");
		uint64_t shape[2] = { 7, 13 };
		sk_array *a, *b;
		assert_int_equal(sk_array_create(name, (sk_dtype)d, 2, shape, NULL, &a), 0);
		size_t isz = sk_dtype_size((sk_dtype)d);
		assert_int_equal(sk_array_dtype(a), d);
		assert_int_equal(sk_array_ndim(a), 2);
		assert_int_equal(sk_array_shape(a)[0], 7);
		assert_int_equal(sk_array_shape(a)[1], 13);
		assert_int_equal(sk_array_strides(a)[0], 13 * isz);
		assert_int_equal(sk_array_strides(a)[1], isz);
		assert_int_equal(sk_array_size(a), 91);
		assert_int_equal(sk_array_nbytes(a), 91 * isz);
		assert_string_equal(sk_array_name(a), name);
		assert_int_equal(sk_segment_kind(sk_array_segment(a)), SK_KIND_ARRAY);
		unsigned char *p = sk_array_data(a);
		for (size_t i = 0; i < 91 * isz; i++)
			assert_int_equal(p[i], 0);
		for (size_t i = 0; i < 91 * isz; i++)
			p[i] = (unsigned char)(i * 31 + (size_t)d);

		assert_int_equal(sk_array_open(name, SK_RDONLY, &b), 0);
		assert_int_equal(sk_array_dtype(b), d);
		assert_memory_equal(sk_array_shape(b), shape, sizeof shape);
		assert_memory_equal(sk_array_strides(b), sk_array_strides(a), 2 * sizeof(int64_t));
		assert_memory_equal(sk_array_data(b), p, 91 * isz);
		sk_array_close(b);
		sk_array_close(a);
		assert_int_equal(sk_segment_unlink(name), 0);
	}
	assert_int_equal(sk_array_close(NULL), 0);
}

/* The dtype traits (issue 15): one table that front ends derive theirs from.
 * Checked against an independent list and against the other dtype calls. */
static void test_dtype_traits(void **state)
{
	(void)state;
	static const struct {
		sk_dtype d;
		size_t size;
		char kind, format;
		const char *typestr, *name, *ctype;
	} want[] = {
		{ SK_BOOL, sizeof(_Bool), 'b', '?', "|b1", "bool", "bool" },
		{ SK_INT8, sizeof(int8_t), 'i', 'b', "|i1", "int8", "int8_t" },
		{ SK_INT16, sizeof(int16_t), 'i', 'h', "<i2", "int16", "int16_t" },
		{ SK_INT32, sizeof(int32_t), 'i', 'i', "<i4", "int32", "int32_t" },
		{ SK_INT64, sizeof(int64_t), 'i', 'q', "<i8", "int64", "int64_t" },
		{ SK_UINT8, sizeof(uint8_t), 'u', 'B', "|u1", "uint8", "uint8_t" },
		{ SK_UINT16, sizeof(uint16_t), 'u', 'H', "<u2", "uint16", "uint16_t" },
		{ SK_UINT32, sizeof(uint32_t), 'u', 'I', "<u4", "uint32", "uint32_t" },
		{ SK_UINT64, sizeof(uint64_t), 'u', 'Q', "<u8", "uint64", "uint64_t" },
		{ SK_FLOAT32, sizeof(float), 'f', 'f', "<f4", "float32", "float" },
		{ SK_FLOAT64, sizeof(double), 'f', 'd', "<f8", "float64", "double" },
	};
	assert_int_equal(sizeof want / sizeof want[0], SK_DTYPE_MAX);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const sk_dtype_traits *t = sk_dtype_traits_of(want[i].d);
		assert_non_null(t);
		assert_int_equal(t->dtype, want[i].d);
		assert_int_equal(t->size, want[i].size);
		assert_int_equal(t->kind, want[i].kind);
		assert_int_equal(t->format, want[i].format);
		assert_string_equal(t->typestr, want[i].typestr);
		assert_string_equal(t->name, want[i].name);
		assert_string_equal(t->ctype, want[i].ctype);
		/* The other calls agree with the traits. */
		assert_int_equal(sk_dtype_size(want[i].d), t->size);
		assert_string_equal(sk_dtype_name(want[i].d), t->name);
		assert_int_equal(sk_dtype_from_name(t->name), want[i].d);
		assert_int_equal(sk_dtype_from_name(t->typestr + 1), want[i].d); /* "i8": the short code */
		/* One byte: no byte order ('|'); wider: little-endian ('<'). */
		assert_int_equal(t->typestr[0], t->size == 1 ? '|' : '<');
		assert_int_equal(t->typestr[2] - '0', (int)t->size);
		assert_true(t == sk_dtype_traits_of(want[i].d)); /* static: the same struct every time */
	}
	assert_null(sk_dtype_traits_of((sk_dtype)0));
	assert_null(sk_dtype_traits_of((sk_dtype)(SK_DTYPE_MAX + 1)));
	assert_null(sk_dtype_traits_of((sk_dtype)-1));
	assert_null(sk_dtype_traits_of((sk_dtype)0x7fffffff));
}

static void test_dimensions(void **state)
{
	(void)state;
	sk_array *a;
	/* 0-d: one element. */
	const char *n0 = t_name("d0");
	assert_int_equal(sk_array_create(n0, SK_FLOAT64, 0, NULL, NULL, &a), 0);
	assert_int_equal(sk_array_ndim(a), 0);
	assert_int_equal(sk_array_size(a), 1);
	assert_int_equal(sk_array_nbytes(a), 8);
	*(double *)sk_array_data(a) = 2.5;
	sk_array_close(a);
	assert_int_equal(sk_array_open(n0, SK_RDONLY, &a), 0);
	assert_true(*(double *)sk_array_data(a) == 2.5);
	sk_array_close(a);
	sk_segment_unlink(n0);

	/* 32 dimensions, NumPy's limit. */
	uint64_t shape[SK_MAX_DIMS + 1];
	for (int i = 0; i <= SK_MAX_DIMS; i++)
		shape[i] = i % 8 == 0 ? 2 : 1;
	const char *n32 = t_name("d32");
	assert_int_equal(sk_array_create(n32, SK_INT16, SK_MAX_DIMS, shape, NULL, &a), 0);
	assert_int_equal(sk_array_size(a), 16);
	assert_int_equal(sk_array_strides(a)[SK_MAX_DIMS - 1], 2);
	assert_int_equal(sk_array_strides(a)[0], 16);
	sk_array_close(a);
	assert_int_equal(sk_array_open(n32, SK_RDONLY, &a), 0);
	assert_int_equal(sk_array_ndim(a), SK_MAX_DIMS);
	assert_memory_equal(sk_array_shape(a), shape, SK_MAX_DIMS * sizeof(uint64_t));
	sk_array_close(a);
	sk_segment_unlink(n32);
	assert_int_equal(sk_array_create(t_name("d33"), SK_INT16, SK_MAX_DIMS + 1, shape, NULL, &a), -EINVAL);
	assert_int_equal(sk_array_create(t_name("dneg"), SK_INT16, -1, shape, NULL, &a), -EINVAL);
	assert_int_equal(sk_array_create(t_name("dnull"), SK_INT16, 2, NULL, NULL, &a), -EINVAL);

	/* Empty: a zero extent, strides as NumPy gives them. */
	uint64_t empty[3] = { 3, 0, 4 };
	const char *ne = t_name("empty");
	assert_int_equal(sk_array_create(ne, SK_FLOAT64, 3, empty, NULL, &a), 0);
	assert_int_equal(sk_array_size(a), 0);
	assert_null(sk_array_data(a));
	assert_int_equal(sk_array_strides(a)[0], 32);
	assert_int_equal(sk_array_strides(a)[1], 32);
	assert_int_equal(sk_array_strides(a)[2], 8);
	sk_array_close(a);
	assert_int_equal(sk_array_open(ne, SK_RDWR, &a), 0);
	assert_int_equal(sk_array_size(a), 0);
	sk_array_close(a);
	sk_segment_unlink(ne);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	sk_array *a;
	uint64_t big[2] = { UINT64_C(1) << 40, UINT64_C(1) << 30 };
	assert_int_equal(sk_array_create(t_name("ovf"), SK_INT8, 2, big, NULL, &a), -EOVERFLOW);
	uint64_t big2[1] = { UINT64_C(1) << 62 };
	assert_int_equal(sk_array_create(t_name("ovf"), SK_INT64, 1, big2, NULL, &a), -EOVERFLOW);
	uint64_t s[1] = { 4 };
	assert_int_equal(sk_array_create(t_name("dt0"), (sk_dtype)0, 1, s, NULL, &a), -EINVAL);
	assert_int_equal(sk_array_create(t_name("dt99"), (sk_dtype)99, 1, s, NULL, &a), -EINVAL);
	assert_int_equal(sk_array_create("bad/name", SK_INT8, 1, s, NULL, &a), SK_EBADNAME);
	assert_int_equal(sk_array_create(t_name("x"), SK_INT8, 1, s, NULL, NULL), -EINVAL);
	assert_int_equal(sk_array_open(t_name("missing"), SK_RDONLY, &a), -ENOENT);
	assert_null(a);
	assert_int_equal(sk_array_open_as(t_name("missing"), SK_RDONLY, SK_INT8, 1, s, NULL), -EINVAL);
	assert_int_equal(access("/dev/shm/bad", F_OK), -1);
}

static void test_open_as(void **state)
{
	(void)state;
	const char *name = t_name("as");
	uint64_t shape[2] = { 4, 6 };
	sk_array *a, *b;
	assert_int_equal(sk_array_create(name, SK_UINT16, 2, shape, NULL, &a), 0);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, SK_UINT16, 2, shape, &b), 0);
	sk_array_close(b);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, 0, -1, NULL, &b), 0);
	sk_array_close(b);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, SK_UINT16, 2, NULL, &b), 0);
	sk_array_close(b);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, SK_INT16, 2, shape, &b), SK_ETYPE);
	assert_null(b);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, SK_UINT16, 1, shape, &b), SK_ETYPE);
	uint64_t other[2] = { 6, 4 };
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, SK_UINT16, 2, other, &b), SK_ETYPE);
	assert_int_equal(sk_array_open_as(name, SK_RDONLY, 0, -1, shape, &b), SK_ETYPE);

	/* Another kind under the name. */
	const char *bn = t_name("asbits");
	sk_bits *bits;
	assert_int_equal(sk_bits_create(bn, 100, NULL, &bits), 0);
	assert_int_equal(sk_array_open(bn, SK_RDONLY, &b), SK_EKIND);
	sk_bits *wrong;
	assert_int_equal(sk_bits_open(name, SK_RDONLY, &wrong), SK_EKIND);
	assert_null(wrong);
	sk_bits_close(bits);
	sk_segment_unlink(bn);
	sk_array_close(a);
	sk_segment_unlink(name);
}

typedef struct big_arg {
	const char *name;
	uint64_t n;
} big_arg;

static int child_check_big(void *p)
{
	big_arg *arg = p;
	sk_array *a;
	if (sk_array_open_as(arg->name, SK_RDWR, SK_INT64, 1, &arg->n, &a))
		return 1;
	int64_t *d = sk_array_data(a);
	if (d[0] != -1 || d[arg->n - 1] != 0x1234567890 || d[arg->n / 2] != 0)
		return 2;
	d[arg->n / 2] = 77;
	sk_array_close(a);
	return 0;
}

static void test_beyond_4gib(void **state)
{
	(void)state;
	/* 5 GiB: offsets past 32 bits, shared with a child by name. */
	big_arg arg = { t_name("big"), (UINT64_C(5) << 30) / 8 };
	sk_array *a;
	assert_int_equal(sk_array_create(arg.name, SK_INT64, 1, &arg.n, NULL, &a), 0);
	assert_int_equal(sk_array_nbytes(a), UINT64_C(5) << 30);
	int64_t *d = sk_array_data(a);
	d[0] = -1;
	d[arg.n - 1] = 0x1234567890;
	t_assert_exit0(t_fork(child_check_big, &arg));
	assert_int_equal(d[arg.n / 2], 77);
	sk_array_close(a);
	assert_int_equal(sk_segment_unlink(arg.name), 0);
}

static int child_inherited_write(void *p)
{
	int32_t *d = sk_array_data(p);
	for (int i = 0; i < 1000; i++)
		d[i] = i * 3;
	return 0;
}

static void test_fork_inherits(void **state)
{
	(void)state;
	const char *name = t_name("inh");
	uint64_t n = 1000;
	sk_array *a;
	assert_int_equal(sk_array_create(name, SK_INT32, 1, &n, NULL, &a), 0);
	t_assert_exit0(t_fork(child_inherited_write, a));
	int32_t *d = sk_array_data(a);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(d[i], i * 3);
	sk_array_close(a);
	sk_segment_unlink(name);
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

static sk_array *victim_array; /* opened before the peer starts; inherited */

static int array_victim(void *arg)
{
	char name[256], path[300];
	snprintf(name, sizeof name, "%s", (const char *)arg); /* t_name's buffers are reused */
	snprintf(path, sizeof path, "/dev/shm/%s", name);
	sk_array *a = victim_array;
	const uint64_t n = sk_array_size(a), shape0 = sk_array_shape(a)[0];
	uint64_t seed = 7;
	int opened = 0, refused = 0;
	for (int round = 0; round < hostile_iters(); round++) {
		for (int k = 0; k < 16; k++) {
			uint64_t i = t_rand(&seed) % n;
			int64_t old, v;
			if (sk_array_fetch_add(a, i, 1, &old) || sk_array_atomic_load(a, i, &v) ||
			    sk_array_atomic_exchange(a, i, (int64_t)i, &old) || sk_array_atomic_cas(a, i, &v, 5) < 0)
				return 2;
		}
		if (sk_array_atomic_load(a, n, &(int64_t){ 0 }) != -ERANGE)
			return 3;
		/* What this handle believes never changes. */
		sk_segment_info in;
		sk_segment_info_get(sk_array_segment(a), &in);
		if (sk_array_size(a) != n || sk_array_shape(a)[0] != shape0 || in.kind != SK_KIND_ARRAY ||
		    in.nitems != n || in.dtype != SK_INT64)
			return 4;
		/* A fresh open: accepted only with a consistent header that fits. */
		sk_array *b;
		int rc = sk_array_open(name, round % 2 ? SK_RDONLY : SK_RDWR, &b);
		if (rc == 0) {
			opened++;
			struct stat st;
			if (stat(path, &st) || sk_array_nbytes(b) > (uint64_t)st.st_size ||
			    sk_array_nbytes(b) != sk_array_size(b) * sk_dtype_size(sk_array_dtype(b))) {
				print_message("accepted: nbytes %llu size %llu dtype %d file %lld\n",
					      (unsigned long long)sk_array_nbytes(b),
					      (unsigned long long)sk_array_size(b), (int)sk_array_dtype(b),
					      (long long)st.st_size);
				return 5;
			}
			volatile const uint8_t *d = sk_array_data(b);
			uint64_t sum = 0;
			for (uint64_t j = 0; j < sk_array_nbytes(b); j += 512)
				sum += d[j];
			(void)sum;
			sk_array_close(b);
		} else if (rc > -1000 && rc != -EACCES) {
			return 6; /* only shmkit's own codes for a damaged header */
		} else {
			refused++;
		}
		sk_segment_info in2;
		(void)sk_segment_stat(name, &in2);
	}
	print_message("hostile peer: %d fresh opens accepted, %d refused with a clean error\n", opened, refused);
	return 0;
}

static void test_hostile_peer_scribbles_array(void **state)
{
	(void)state;
	const char *name = t_name("hostile");
	uint64_t shape[2] = { 500, 40 };
	sk_array *a;
	sk_create_opts o = { .mode = 0600 };
	assert_int_equal(sk_array_create(name, SK_INT64, 2, shape, &o, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_array_open(name, SK_RDWR, &victim_array), 0);
	pid_t peer = t_spawn(scribble_forever, (void *)name);
	int status = t_fork(array_victim, (void *)name);
	kill(peer, SIGKILL);
	waitpid(peer, NULL, 0);
	t_assert_exit0(status);
	sk_array_close(victim_array);
	t_remove(name); /* by hand: the peer may have damaged the magic too */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hostile_peer_scribbles_array),
		cmocka_unit_test(test_every_dtype),
		cmocka_unit_test(test_dtype_traits),
		cmocka_unit_test(test_dimensions),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_open_as),
		cmocka_unit_test(test_beyond_4gib),
		cmocka_unit_test(test_fork_inherits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
