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
#include <sched.h>
#include <sys/mount.h>
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

/* True unless shmem transparent huge pages are off for memfds ("[never]"). */
static bool shmem_thp_possible(void)
{
	char buf[256] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");
	if (f) {
		if (!fgets(buf, sizeof buf, f))
			buf[0] = 0;
		fclose(f);
	}
	return buf[0] && !strstr(buf, "[never]") && !strstr(buf, "[deny]");
}
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
	if (!(in.page_size == 2 << 20 && shmem_thp_possible())) /* a memfd gets THP where shmem_enabled allows */
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

/* In a child with its own mount namespace and a 64 MiB tmpfs over /dev/shm
 * mounted with huge=<arg>. 0, 77 (cannot mount: not root, or no THP for
 * tmpfs), or the failing step. */
static int page_of(const char *name, uint64_t *page)
{
	sk_array *a;
	sk_segment_info in;
	if (sk_array_open(name, SK_RDONLY, &a))
		return -1;
	int rc = sk_segment_info_get(sk_array_segment(a), &in);
	*page = in.page_size;
	for (uint64_t i = 0; !rc && i < sk_array_size(a); i += 4096)
		if (((const int64_t *)sk_array_data(a))[i] != (int64_t)i)
			rc = -1;
	sk_array_close(a);
	return rc;
}

static int opener(void *arg)
{
	uint64_t page;
	return page_of(arg, &page) ? 1 : page == (2 << 20) ? 0 : 2;
}

static int child_tmpfs_thp(void *arg)
{
	const char *mode = arg;
	char opts[64];
	snprintf(opts, sizeof opts, "size=64M,mode=1777,huge=%s", mode);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts))
		return 77;
	bool want = strcmp(mode, "always") == 0;
	uint64_t n = (UINT64_C(8) << 20) / 8, small = (UINT64_C(1) << 20) / 8;
	sk_create_opts huge = { .flags = SK_CREATE_HUGE };
	sk_array *a, *b, *c;
	sk_segment_info in;
	if (sk_array_create("thp", SK_INT64, 1, &n, &huge, &a) || sk_segment_info_get(sk_array_segment(a), &in))
		return 10;
	for (uint64_t i = 0; i < n; i += 4096)
		((int64_t *)sk_array_data(a))[i] = (int64_t)i;
	if (in.page_size != (want ? 2u << 20 : 4096u))
		return 11; /* the creator's outcome */
	uint64_t page;
	if (page_of("thp", &page) || page != in.page_size)
		return 12; /* an opener's outcome */
	if (want) {
		int st = t_fork(opener, "thp"); /* another process attaching by name */
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return 13;
	}
	/* Less than one huge page of data, or no SK_CREATE_HUGE: plain pages reported. */
	if (sk_array_create("small", SK_INT64, 1, &small, &huge, &b) || sk_segment_info_get(sk_array_segment(b), &in) ||
	    in.page_size != 4096)
		return 14;
	if (sk_array_create("plain", SK_INT64, 1, &n, NULL, &c) || sk_segment_info_get(sk_array_segment(c), &in) ||
	    in.page_size != 4096)
		return 15;
	if (sk_segment_stat("thp", &in) || in.page_size != 4096)
		return 16; /* stat has no mapping: the file system's page */
	sk_array_close(a);
	sk_array_close(b);
	sk_array_close(c);
	return 0;
}

static void run_thp(const char *mode)
{
	int status = t_fork(child_tmpfs_thp, (void *)mode);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		print_message("cannot mount a private tmpfs with huge=%s over /dev/shm (needs root): skipped\n", mode);
		skip();
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("huge=%s: child failed at step %d (signal %d)", mode,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Named segments on a tmpfs that gives transparent huge pages: 2 MiB pages,
 * reported to the creator and to every process that attaches. */
static void test_transparent_huge_pages_on_tmpfs(void **state)
{
	(void)state;
	if (access("/sys/kernel/mm/transparent_hugepage/shmem_enabled", F_OK)) {
		print_message("this kernel has no transparent huge pages for shmem: skipped\n");
		skip();
	}
	run_thp("always");
}

/* The same on a tmpfs that refuses them (huge=never, the usual /dev/shm). */
static void test_no_transparent_huge_pages_reported(void **state)
{
	(void)state;
	run_thp("never");
}

int main(void)
{
	setenv("SHMKIT_SWEEP", "0", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_huge_pages_when_the_pool_has_room),
		cmocka_unit_test(test_plain_pages_otherwise),
		cmocka_unit_test(test_transparent_huge_pages_on_tmpfs),
		cmocka_unit_test(test_no_transparent_huge_pages_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
