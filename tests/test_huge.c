/*
 * test_huge.c: 2 MiB pages. By default a segment of at least SK_HUGE_MIN
 * bytes has its creator collapse every whole 2 MiB of the file into a
 * transparent huge page (MADV_COLLAPSE) and every process map it on a 2 MiB
 * boundary; where the kernel refuses, 4 KiB pages, and the segment says why.
 * SK_CREATE_NOHUGE opts out; SK_CREATE_HUGE asks whatever the size, with the
 * data on a 2 MiB boundary, and takes hugetlb pages for anonymous segments
 * when the pool has room (the suite, as root, raises vm.nr_hugepages by 64
 * pages for that test and puts it back).
 */
#include "helpers.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB       (UINT64_C(1) << 20)
#define HUGE_PAGE (2 * MIB)

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

/* Kilobytes of the mapping that contains p mapped by 2 MiB page-table
 * entries (ShmemPmdMapped + FilePmdMapped of /proc/self/smaps). */
static long pmd_kb(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	assert_non_null(f);
	char line[512];
	uintptr_t a = (uintptr_t)p;
	bool inside = false;
	long kb = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			if (inside)
				break;
			inside = lo <= a && a < hi;
		} else if (inside && (!strncmp(line, "ShmemPmdMapped:", 15) || !strncmp(line, "FilePmdMapped:", 14))) {
			kb += atol(strchr(line, ':') + 1);
		}
	}
	fclose(f);
	return kb;
}

/* Whether this kernel can collapse shmem into huge pages at all: MADV_COLLAPSE
 * came with Linux 6.1, and shmem_enabled=deny refuses it. */
/* Whether this kernel turns shmem pages into 2 MiB pages on MADV_COLLAPSE,
 * asked of the kernel itself (not of /sys, which a container may lack): a
 * 2 MiB-aligned shared mapping of a filled memfd, collapsed once. */
static bool kernel_collapses(void)
{
	static int known = -1;
	if (known >= 0)
		return known;
	known = 0;
	int fd = memfd_create("sktest-collapse-probe", MFD_CLOEXEC);
	if (fd < 0)
		return false;
	char *area = MAP_FAILED;
	if (!fallocate(fd, 0, 0, HUGE_PAGE))
		area = mmap(NULL, 2 * HUGE_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area != MAP_FAILED) {
		char *at = (char *)(((uintptr_t)area + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
		if (mmap(at, HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == at) {
			memset(at, 1, HUGE_PAGE);
			known = madvise(at, HUGE_PAGE, 25 /* MADV_COLLAPSE, Linux 6.1 */) == 0;
		}
		munmap(area, 2 * HUGE_PAGE);
	}
	close(fd);
	return known;
}

static void need_collapse(void)
{
	if (!kernel_collapses()) {
		print_message("this kernel cannot collapse shmem into 2 MiB pages (before 6.1, no THP, or "
			      "shmem_enabled=deny): the fallback is tested, this is skipped\n");
		skip();
	}
}

static bool all_zero(const void *p, uint64_t n)
{
	const uint64_t *w = p;
	uint64_t acc = 0;
	for (uint64_t i = 0; i < n / 8; i++)
		acc |= w[i];
	return acc == 0;
}

/* A process attaching by name: the data it sees, its report, and whether its
 * mapping uses 2 MiB page-table entries for every huge byte of the file. */
static int attacher(void *arg)
{
	const char *name = arg;
	sk_array *a;
	if (sk_array_open(name, SK_RDONLY, &a))
		return 1;
	const int64_t *d = sk_array_data(a);
	uint64_t n = sk_array_size(a);
	for (uint64_t i = 0; i < n; i++)
		if (d[i] != (int64_t)(i * 3))
			return 2;
	sk_segment_info in;
	if (sk_segment_info_get(sk_array_segment(a), &in))
		return 3;
	if (in.page_size != HUGE_PAGE || in.huge_status != SK_HUGE_ALL)
		return 4;
	if ((uintptr_t)d % HUGE_PAGE != 4096)
		return 5; /* mapped on a 2 MiB boundary: the header page, then the data */
	if (pmd_kb(d) * 1024 != (long)in.huge_bytes)
		return 6; /* every huge byte mapped by 2 MiB entries in this process too */
	sk_array_close(a);
	return 0;
}

/* The default on this machine's /dev/shm (tmpfs, huge=never, shmem_enabled
 * usually never): 2 MiB pages anyway, for the creator and every process that
 * attaches, zero-filled, the layout unchanged. */
static void test_default_huge_pages(void **state)
{
	(void)state;
	need_collapse();
	const char *name = t_name("dflt");
	uint64_t n = 9 * MIB / 8; /* file: 4 KiB header + 9 MiB: four whole 2 MiB pages and a tail */
	sk_array *a;
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, NULL, &a), 0);
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(sk_array_segment(a), &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_ALL);
	assert_int_equal(in.huge_errno, 0);
	assert_int_equal(in.huge_bytes, 4 * HUGE_PAGE);
	assert_int_equal(in.page_size, HUGE_PAGE);
	assert_int_equal(in.data_offset, 4096); /* the layout of every segment: compatible */
	assert_int_equal(in.file_size, 4096 + 9 * MIB);
	int64_t *d = sk_array_data(a);
	assert_int_equal((uintptr_t)d % HUGE_PAGE, 4096);
	assert_true(all_zero(d, n * 8)); /* the collapsed pages are zero, like reserved ones */
	for (uint64_t i = 0; i < n; i++)
		d[i] = (int64_t)(i * 3);
	assert_int_equal(pmd_kb(d) * 1024, (long)(4 * HUGE_PAGE));
	/* stat maps nothing: it reports what the file holds. */
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_ALL);
	assert_int_equal(in.huge_bytes, 4 * HUGE_PAGE);
	assert_int_equal(in.page_size, HUGE_PAGE);
	t_assert_exit0(t_fork(attacher, (void *)name));
	sk_array_close(a);
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* Segments below SK_HUGE_MIN and SK_CREATE_NOHUGE: 4 KiB pages, said why. */
static void test_small_and_opted_out(void **state)
{
	(void)state;
	sk_segment *s;
	sk_segment_info in;
	const char *small = t_name("small");
	assert_int_equal(sk_segment_create(small, 4096, NULL, &s), 0);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_SMALL);
	assert_int_equal(in.huge_bytes, 0);
	assert_int_equal(in.page_size, 4096);
	assert_int_equal(in.file_size, 8192); /* no 2 MiB page spent on 4 KiB of data */
	sk_segment_close(s);
	assert_int_equal(sk_segment_unlink(small), 0);
	/* Just below the threshold, and just at it. */
	assert_int_equal(sk_segment_create(NULL, SK_HUGE_MIN - 8192, NULL, &s), 0);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_SMALL);
	assert_int_equal(sk_segment_unlink(sk_segment_name(s)), 0);
	sk_segment_close(s);
	if (kernel_collapses()) {
		assert_int_equal(sk_segment_create(NULL, SK_HUGE_MIN - 4096, NULL, &s), 0);
		assert_int_equal(sk_segment_info_get(s, &in), 0);
		assert_int_equal(in.huge_status, SK_HUGE_ALL);
		assert_int_equal(in.huge_bytes, SK_HUGE_MIN);
		assert_int_equal(sk_segment_unlink(sk_segment_name(s)), 0);
		sk_segment_close(s);
	}
	const char *out = t_name("optout");
	sk_create_opts o = { .flags = SK_CREATE_NOHUGE };
	assert_int_equal(sk_segment_create(out, 16 * MIB, &o, &s), 0);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_OPTED_OUT);
	assert_int_equal(in.huge_bytes, 0);
	assert_int_equal(in.page_size, 4096);
	memset(sk_segment_data(s), 7, 16 * MIB);
	assert_int_equal(pmd_kb(sk_segment_data(s)), 0);
	assert_int_equal(sk_segment_stat(out, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_OPTED_OUT);
	assert_int_equal(in.page_size, 4096);
	sk_segment_close(s);
	assert_int_equal(sk_segment_unlink(out), 0);
	/* Both at once mean nothing. */
	o.flags = SK_CREATE_NOHUGE | SK_CREATE_HUGE;
	assert_int_equal(sk_segment_create(NULL, 16 * MIB, &o, &s), -EINVAL);
}

/* The kernel refuses: a creator whose THP is disabled (prctl), as on a kernel
 * without MADV_COLLAPSE. The segment is made with 4 KiB pages, works, and
 * says why, to every process. */
static int refused_creator(void *arg)
{
	const char *name = arg;
	if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0))
		return 77;
	uint64_t n = 8 * MIB / 8;
	sk_array *a;
	sk_segment_info in;
	if (sk_array_create(name, SK_INT64, 1, &n, NULL, &a) || sk_segment_info_get(sk_array_segment(a), &in))
		return 10;
	if (in.huge_status != SK_HUGE_REFUSED || in.huge_errno != EINVAL || in.huge_bytes || in.page_size != 4096)
		return 11;
	int64_t *d = sk_array_data(a);
	if (!all_zero(d, n * 8))
		return 12;
	for (uint64_t i = 0; i < n; i++)
		d[i] = (int64_t)i;
	sk_array_close(a);
	return 0;
}

static int refused_reader(void *arg)
{
	sk_array *a;
	sk_segment_info in;
	if (sk_array_open(arg, SK_RDONLY, &a) || sk_segment_info_get(sk_array_segment(a), &in))
		return 1;
	const int64_t *d = sk_array_data(a);
	for (uint64_t i = 0; i < sk_array_size(a); i++)
		if (d[i] != (int64_t)i)
			return 2;
	if (in.huge_status != SK_HUGE_REFUSED || in.huge_errno != EINVAL || in.page_size != 4096 || pmd_kb(d))
		return 3;
	sk_array_close(a);
	return 0;
}

static void test_refused_by_the_kernel(void **state)
{
	(void)state;
	const char *name = t_name("refused");
	int st = t_fork(refused_creator, (void *)name);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
		print_message("prctl(PR_SET_THP_DISABLE) is not available: skipped\n");
		skip();
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		fail_msg("creator failed at step %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	t_assert_exit0(t_fork(refused_reader, (void *)name));
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_REFUSED);
	assert_int_equal(in.huge_errno, EINVAL);
	assert_int_equal(in.page_size, 4096);
	assert_string_equal(sk_huge_str(in.huge_status), "the kernel refused 2 MiB pages at creation");
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* SK_CREATE_HUGE: any size, data on a 2 MiB boundary, the file in whole 2 MiB
 * pages; the first 2 MiB holds only the header page (no memory for the rest). */
static void test_create_huge_layout(void **state)
{
	(void)state;
	need_collapse();
	const char *name = t_name("hugeflag");
	sk_create_opts o = { .flags = SK_CREATE_HUGE };
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 4096, &o, &s), 0);
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.data_offset, HUGE_PAGE);
	assert_int_equal(in.file_size, HUGE_PAGE + 4096);
	assert_int_equal(in.huge_status, SK_HUGE_ALL);
	assert_int_equal(in.huge_bytes, HUGE_PAGE);
	assert_int_equal(in.page_size, HUGE_PAGE);
	uint8_t *d = sk_segment_data(s);
	assert_int_equal((uintptr_t)d % HUGE_PAGE, 0);
	memset(d, 9, 4096);
	sk_segment_close(s);
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &s), 0);
	d = sk_segment_data(s);
	assert_int_equal((uintptr_t)d % HUGE_PAGE, 0);
	assert_int_equal(d[4095], 9);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.page_size, HUGE_PAGE);
	sk_segment_close(s);
	struct stat st;
	assert_int_equal(stat(t_path(name), &st), 0);
	assert_int_equal(st.st_size, 2 * HUGE_PAGE);                   /* rounded up to whole 2 MiB pages */
	assert_true((uint64_t)st.st_blocks * 512 <= HUGE_PAGE + 4096); /* the gap after the header takes nothing */
	assert_int_equal(sk_segment_unlink(name), 0);
	/* No data at all: the header page, and nothing to collapse. */
	assert_int_equal(sk_segment_create(name, 0, &o, &s), 0);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_SMALL);
	sk_segment_close(s);
	assert_int_equal(sk_segment_open(name, SK_RDWR, &s), 0);
	assert_null(sk_segment_data(s));
	sk_segment_close(s);
	assert_int_equal(sk_segment_unlink(name), 0);
}

static int child_reads(void *arg)
{
	const int64_t *d = sk_array_data(arg);
	for (int i = 0; i < 1000; i++)
		if (d[i * 4096] != i)
			return 1;
	return 0;
}

static const sk_create_opts huge_anon = { .flags = SK_CREATE_ANON | SK_CREATE_HUGE };

static void test_hugetlb_when_the_pool_has_room(void **state)
{
	(void)state;
	long saved = read_long(NR);
	if (geteuid() != 0 || saved < 0 || !write_long(NR, saved + 64) || read_long(NR) < saved + 33) {
		if (saved >= 0)
			write_long(NR, saved);
		print_message("cannot grow the huge-page pool here (needs root): hugetlb path not tested\n");
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
	assert_int_equal(in.huge_status, SK_HUGE_HUGETLB);
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
	assert_int_equal(in.huge_status, SK_HUGE_HUGETLB);
	assert_int_equal(((int64_t *)sk_segment_data(copy))[999 * 4096], 999);
	sk_segment_close(copy);
	/* Freezing seals a hugetlb memfd too. */
	assert_int_equal(sk_segment_freeze(sk_array_segment(a)), 0);
	sk_array_close(a);
	assert_true(write_long(NR, saved));
	assert_int_equal(read_long(NR), saved);
}

/* An anonymous SK_CREATE_HUGE segment with an empty pool: transparent huge
 * pages of its memfd instead, never a failure. */
static void test_anonymous_without_the_pool(void **state)
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
	assert_int_equal(rc, 0); /* never a failure */
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(sk_array_segment(a), &in), 0);
	assert_int_equal(in.data_offset, 2 << 20);
	assert_int_equal((uintptr_t)sk_array_data(a) % (2 << 20), 0);
	if (kernel_collapses()) {
		assert_int_equal(in.huge_status, SK_HUGE_ALL);
		assert_int_equal(in.page_size, HUGE_PAGE);
	} else {
		assert_int_equal(in.huge_status, SK_HUGE_REFUSED);
	}
	((int64_t *)sk_array_data(a))[n - 1] = 5;
	/* Another process attached by descriptor maps it whole too. */
	sk_segment *copy;
	assert_int_equal(sk_segment_open_fd(sk_segment_fd(sk_array_segment(a)), SK_RDONLY, &copy), 0);
	assert_int_equal(((int64_t *)sk_segment_data(copy))[n - 1], 5);
	sk_segment_info ci;
	assert_int_equal(sk_segment_info_get(copy, &ci), 0);
	assert_int_equal(ci.page_size, in.page_size);
	sk_segment_close(copy);
	sk_array_close(a);
}

/* A copy of a segment's file is not described by the original's record:
 * its pages are not recorded (and it still opens). */
static void test_copy_of_the_file(void **state)
{
	(void)state;
	const char *name = t_name("orig"), *copy = t_name("copy");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 6 * MIB, NULL, &s), 0);
	((uint8_t *)sk_segment_data(s))[12345] = 42;
	sk_segment_close(s);
	int src = open(t_path(name), O_RDONLY), dst = open(t_path(copy), O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(src >= 0 && dst >= 0);
	static char buf[1 << 16];
	ssize_t r;
	while ((r = read(src, buf, sizeof buf)) > 0)
		assert_int_equal(write(dst, buf, (size_t)r), r);
	close(src);
	close(dst);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(copy, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_UNKNOWN);
	assert_int_equal(in.huge_bytes, 0);
	assert_int_equal(sk_segment_open(copy, SK_RDONLY, &s), 0);
	assert_int_equal(((uint8_t *)sk_segment_data(s))[12345], 42);
	sk_segment_close(s);
	assert_int_equal(sk_segment_unlink(copy), 0);
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* In a child with its own mount namespace and a 64 MiB tmpfs over /dev/shm
 * mounted with huge=<arg>. 0, 77 (cannot mount: not root), or the failing
 * step. Whatever the mount says, the default and SK_CREATE_HUGE give 2 MiB
 * pages (the mount's own, or collapsed); SK_CREATE_NOHUGE asks for none, and
 * gets the mount's. */
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

static int child_tmpfs(void *arg)
{
	const char *mode = arg;
	char opts[64];
	snprintf(opts, sizeof opts, "size=64M,mode=1777,huge=%s", mode);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts))
		return 77;
	bool fs_huge = !strcmp(mode, "always") || !strcmp(mode, "within_size");
	uint64_t n = 8 * MIB / 8, small = MIB / 8;
	const uint32_t flags[] = { 0, SK_CREATE_HUGE };
	for (int k = 0; k < 2; k++) {
		sk_create_opts o = { .flags = flags[k] };
		sk_array *a;
		sk_segment_info in;
		if (sk_array_create("thp", SK_INT64, 1, &n, &o, &a) || sk_segment_info_get(sk_array_segment(a), &in))
			return 10;
		for (uint64_t i = 0; i < n; i += 4096)
			((int64_t *)sk_array_data(a))[i] = (int64_t)i;
		if (in.page_size != HUGE_PAGE || in.huge_status != SK_HUGE_ALL)
			return 11; /* the creator's outcome */
		uint64_t page;
		if (page_of("thp", &page) || page != HUGE_PAGE)
			return 12;              /* an opener's outcome */
		int st = t_fork(opener, "thp"); /* another process attaching by name */
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return 13;
		if (sk_segment_stat("thp", &in) || in.page_size != HUGE_PAGE)
			return 14;
		sk_array_close(a);
		sk_segment_unlink("thp");
	}
	/* Less than SK_HUGE_MIN: 4 KiB pages, not probed (not 2 MiB-aligned). */
	sk_array *b, *c;
	sk_segment_info in;
	if (sk_array_create("small", SK_INT64, 1, &small, NULL, &b) || sk_segment_info_get(sk_array_segment(b), &in) ||
	    in.page_size != 4096 || in.huge_status != SK_HUGE_SMALL)
		return 15;
	/* Opted out: none asked for; a mount that makes 2 MiB pages still does,
	 * and the handle says what its mapping uses. */
	sk_create_opts no = { .flags = SK_CREATE_NOHUGE };
	if (sk_array_create("plain", SK_INT64, 1, &n, &no, &c) || sk_segment_info_get(sk_array_segment(c), &in) ||
	    in.huge_status != SK_HUGE_OPTED_OUT || in.page_size != (fs_huge ? HUGE_PAGE : 4096))
		return 16;
	sk_array_close(b);
	sk_array_close(c);
	return 0;
}

static void run_tmpfs(const char *mode)
{
	int status = t_fork(child_tmpfs, (void *)mode);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		print_message("cannot mount a private tmpfs with huge=%s over /dev/shm (needs root): skipped\n", mode);
		skip();
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail_msg("huge=%s: child failed at step %d (signal %d)", mode,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Every huge= mount option of tmpfs. */
static void test_tmpfs_mount_options(void **state)
{
	(void)state;
	need_collapse();
	run_tmpfs("never");
	run_tmpfs("always");
	run_tmpfs("within_size");
	run_tmpfs("advise");
}

/* Many large segments at once, opened and closed in shuffled order: every
 * mapping on a 2 MiB boundary, none overlapping, the data intact. */
static void test_many_aligned_mappings(void **state)
{
	(void)state;
	enum { N = 40 };
	const char *names[N];
	char buf[N][64];
	sk_segment *s[N];
	for (int i = 0; i < N; i++) {
		char tag[16];
		snprintf(tag, sizeof tag, "many%d", i);
		snprintf(buf[i], sizeof buf[i], "%s", t_name(tag));
		names[i] = buf[i];
		sk_create_opts o = { .flags = i % 3 ? 0 : SK_CREATE_NOHUGE };
		assert_int_equal(sk_segment_create(names[i], SK_HUGE_MIN + (uint64_t)i * 4096, &o, &s[i]), 0);
		*(int *)sk_segment_data(s[i]) = i;
		sk_segment_close(s[i]);
	}
	uint64_t seed = 7;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			assert_int_equal(sk_segment_open(names[i], SK_RDONLY, &s[i]), 0);
			const uint8_t *d = sk_segment_data(s[i]);
			assert_int_equal((uintptr_t)(d - 4096) % HUGE_PAGE, 0);
			assert_int_equal(*(const int *)d, i);
			for (int j = 0; j < i; j++) { /* no two files' mappings overlap */
				const uint8_t *e = sk_segment_data(s[j]);
				assert_true(d + SK_HUGE_MIN + (uint64_t)i * 4096 <= e - 4096 ||
					    e + SK_HUGE_MIN + (uint64_t)j * 4096 <= d - 4096);
			}
		}
		for (int i = N - 1; i > 0; i--) { /* close in a shuffled order */
			int j = (int)(t_rand(&seed) % (uint64_t)(i + 1));
			sk_segment *t = s[i];
			s[i] = s[j];
			s[j] = t;
		}
		for (int i = 0; i < N; i++)
			sk_segment_close(s[i]);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(sk_segment_unlink(names[i]), 0);
}

int main(void)
{
	setenv("SHMKIT_SWEEP", "0", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_huge_pages),
		cmocka_unit_test(test_small_and_opted_out),
		cmocka_unit_test(test_refused_by_the_kernel),
		cmocka_unit_test(test_create_huge_layout),
		cmocka_unit_test(test_hugetlb_when_the_pool_has_room),
		cmocka_unit_test(test_anonymous_without_the_pool),
		cmocka_unit_test(test_copy_of_the_file),
		cmocka_unit_test(test_tmpfs_mount_options),
		cmocka_unit_test(test_many_aligned_mappings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
