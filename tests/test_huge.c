/*
 * test_huge.c: segments backed by 2 MiB pages (SK_CREATE_HUGE): a hugetlb
 * memfd when the huge-page pool has room, plain pages otherwise, and the
 * outcome reported in page_size. To test the huge path the suite, as root,
 * raises vm.nr_hugepages by 64 pages for the test and puts it back.
 */
#include "helpers.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static bool write_long(const char *path, long v)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fprintf(f, "%ld\n", v) > 0;
	return fclose(f) == 0 && ok;
}

static const char *NR = "/proc/sys/vm/nr_hugepages";
static const sk_create_opts huge_anon = { .flags = SK_CREATE_ANON | SK_CREATE_HUGE };

static int child_reads(void *arg)
{
	const int64_t *d = sk_array_data(arg);
	for (int i = 0; i < 1000; i++)
		if (d[i * 4096] != i)
			return 1;
	return 0;
}

static void test_huge_pages_when_the_pool_has_room(void **state)
{
	(void)state;
	long saved = read_long(NR);
	if (geteuid() != 0 || saved < 0 || !write_long(NR, saved + 64) || read_long(NR) < saved + 33) {
		if (saved >= 0)
			write_long(NR, saved);
		print_message("cannot grow the huge-page pool here (needs root): huge path not tested\n");
		skip();
	}
	uint64_t n = (UINT64_C(32) << 20) / 8; /* 32 MiB of int64 */
	sk_array *a;
	int rc = sk_array_create(NULL, SK_INT64, 1, &n, &huge_anon, &a);
	if (rc)
		write_long(NR, saved);
	assert_int_equal(rc, 0);
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(sk_array_segment(a), &in), 0);
	assert_int_equal(in.page_size, 2 << 20);
	assert_int_equal(in.data_offset, 2 << 20);
	assert_int_equal((uintptr_t)sk_array_data(a) % (2 << 20), 0);
	int64_t *d = sk_array_data(a);
	for (int i = 0; i < 1000; i++)
		d[i * 4096] = i;
	t_assert_exit0(t_fork(child_reads, a)); /* inherited */
	/* Sent to another process and attached there: still huge pages. */
	sk_segment *copy;
	assert_int_equal(sk_segment_open_fd(sk_segment_fd(sk_array_segment(a)), SK_RDONLY, &copy), 0);
	assert_int_equal(sk_segment_info_get(copy, &in), 0);
	assert_int_equal(in.page_size, 2 << 20);
	assert_int_equal(((int64_t *)sk_segment_data(copy))[999 * 4096], 999);
	sk_segment_close(copy);
	/* Freezing seals a hugetlb memfd too. */
	assert_int_equal(sk_segment_freeze(sk_array_segment(a)), 0);
	sk_array_close(a);
	assert_true(write_long(NR, saved));
	assert_int_equal(read_long(NR), saved);
}

static void test_plain_pages_otherwise(void **state)
{
	(void)state;
	long saved = read_long(NR);
	if (geteuid() == 0 && saved > 0)
		write_long(NR, 0); /* an empty pool, for certain */
	uint64_t n = (UINT64_C(8) << 20) / 8;
	sk_array *a;
	int rc = sk_array_create(NULL, SK_INT64, 1, &n, &huge_anon, &a);
	if (geteuid() == 0 && saved > 0)
		write_long(NR, saved);
	assert_int_equal(rc, 0); /* never a failure: plain pages instead */
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(sk_array_segment(a), &in), 0);
	assert_int_equal(in.page_size, 4096);
	assert_int_equal(in.data_offset, 2 << 20); /* still 2 MiB-aligned, for THP where enabled */
	((int64_t *)sk_array_data(a))[n - 1] = 5;
	sk_array_close(a);
	/* A named segment: tmpfs, plain or transparent huge pages; the data aligned. */
	const char *name = t_name("hugenamed");
	sk_create_opts o = { .flags = SK_CREATE_HUGE };
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, &o, &a), 0);
	assert_int_equal((uintptr_t)sk_array_data(a) % (2 << 20), 0);
	sk_array_close(a);
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.page_size, 4096);
	assert_int_equal(in.data_offset, 2 << 20);
	assert_int_equal(sk_array_open(name, SK_RDWR, &a), 0);
	assert_int_equal(((int64_t *)sk_array_data(a))[0], 0);
	sk_array_close(a);
	sk_segment_unlink(name);
}

int main(void)
{
	setenv("SHMKIT_SWEEP", "0", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_pages_when_the_pool_has_room),
		cmocka_unit_test(test_plain_pages_otherwise),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
