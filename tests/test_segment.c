/*
 * test_segment.c: segments: names, create/open/close/unlink, header
 * validation (every error code provoked), listing, permissions, processes.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "internal.h" /* twice on purpose: its include guard must cover all of it */

static void test_name_check(void **state)
{
	(void)state;
	char max[SK_NAME_MAX + 2];
	memset(max, 'a', SK_NAME_MAX);
	max[SK_NAME_MAX] = '\0';
	assert_int_equal(sk_name_check(max), 0);
	max[SK_NAME_MAX] = 'a';
	max[SK_NAME_MAX + 1] = '\0';
	assert_int_equal(sk_name_check(max), SK_EBADNAME);
	const char *good[] = { "a", "A-Z_a.z-09", "..a", ".hidden", "-dash", "x.." };
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_int_equal(sk_name_check(good[i]), 0);
	const char *bad[] = { "", ".", "..", "a/b", "/abs", "../x", "sp ace", "tab\t", "uni\xc3\xa9", "star*", NULL };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(sk_name_check(bad[i]), SK_EBADNAME);
}

/* sk_monotonic_ns is CLOCK_MONOTONIC: between two readings of it, never
 * going back. */
static void test_monotonic_clock(void **state)
{
	(void)state;
	int64_t last = sk_monotonic_ns();
	for (int i = 0; i < 1000; i++) {
		int64_t before = t_now_ns(), now = sk_monotonic_ns(), after = t_now_ns();
		assert_true(before <= now && now <= after);
		assert_true(now >= last);
		last = now;
	}
}

static void test_bad_names_touch_nothing(void **state)
{
	(void)state;
	sk_segment *s = (sk_segment *)0x1;
	assert_int_equal(sk_segment_create("../etc/x", 10, NULL, &s), SK_EBADNAME);
	assert_null(s);
	assert_int_equal(sk_segment_create("a/b", 10, NULL, &s), SK_EBADNAME);
	assert_int_equal(sk_segment_open("..", SK_RDWR, &s), SK_EBADNAME);
	assert_int_equal(sk_segment_unlink("a/b"), SK_EBADNAME);
	assert_int_equal(sk_segment_unlink_any("a/b"), SK_EBADNAME);
	assert_int_equal(sk_segment_unlink_any("../etc/passwd"), SK_EBADNAME);
	assert_int_equal(sk_segment_unlink_any(".."), SK_EBADNAME);
	assert_int_equal(sk_segment_unlink_any(NULL), SK_EBADNAME);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat("", &in), SK_EBADNAME);
	assert_int_equal(sk_segment_open(t_name("x"), 0x10, &s), -EINVAL);
}

static void test_create_open_roundtrip(void **state)
{
	(void)state;
	const char *name = t_name("rt");
	int64_t before = sk__sys_realtime_ns();
	sk_segment *a, *b;
	assert_int_equal(sk_segment_create(name, 10000, NULL, &a), 0);
	assert_string_equal(sk_segment_name(a), name);
	assert_int_equal(sk_segment_size(a), 10000);
	assert_int_equal(sk_segment_kind(a), SK_KIND_RAW);
	assert_int_equal(sk_segment_flags(a), SK_RDWR);
	unsigned char *p = sk_segment_data(a);
	assert_non_null(p);
	assert_int_equal((uintptr_t)p % 4096, 0);
	for (int i = 0; i < 10000; i++)
		assert_int_equal(p[i], 0);
	memset(p, 0xab, 10000);

	assert_int_equal(sk_segment_open(name, SK_RDWR, &b), 0);
	assert_memory_equal(sk_segment_data(b), p, 10000);
	sk_segment_info in;
	assert_int_equal(sk_segment_info_get(b, &in), 0);
	assert_string_equal(in.name, name);
	assert_int_equal(in.kind, SK_KIND_RAW);
	assert_int_equal(in.version, 2);
	assert_int_equal(in.data_size, 10000);
	assert_int_equal(in.data_offset, 4096);
	assert_int_equal(in.file_size, 4096 + 12288);
	assert_int_equal(in.creator_pid, getpid());
	assert_true(in.creator_alive);
	assert_true(in.ctime_ns >= before && in.ctime_ns <= sk__sys_realtime_ns());
	assert_int_equal(in.mode, 0600);
	assert_int_equal(in.uid, getuid());
	assert_int_equal(in.nitems, 10000);

	struct stat st;
	assert_int_equal(stat(t_path(name), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_size, 4096 + 12288);
	/* Space is reserved, not sparse. */
	assert_true((uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size);

	sk_segment_info st_in;
	assert_int_equal(sk_segment_stat(name, &st_in), 0);
	assert_int_equal(st_in.ctime_ns, in.ctime_ns);

	assert_int_equal(sk_segment_close(b), 0);
	assert_int_equal(sk_segment_close(a), 0);
	assert_int_equal(sk_segment_close(NULL), 0);
	assert_int_equal(sk_segment_unlink(name), 0);
	assert_int_equal(sk_segment_open(name, SK_RDWR, &b), -ENOENT);
	assert_null(b);
	assert_int_equal(sk_segment_unlink(name), -ENOENT);
}

static void test_exists_and_generated(void **state)
{
	(void)state;
	const char *name = t_name("dup");
	sk_segment *a, *b;
	assert_int_equal(sk_segment_create(name, 100, NULL, &a), 0);
	((char *)sk_segment_data(a))[0] = 7;
	assert_int_equal(sk_segment_create(name, 100, NULL, &b), -EEXIST);
	assert_int_equal(((char *)sk_segment_data(a))[0], 7);
	sk_segment_close(a);
	sk_segment_unlink(name);

	sk_segment *g1, *g2;
	assert_int_equal(sk_segment_create(NULL, 10, NULL, &g1), 0);
	assert_int_equal(sk_segment_create(NULL, 10, NULL, &g2), 0);
	assert_int_equal(sk_name_check(sk_segment_name(g1)), 0);
	assert_string_not_equal(sk_segment_name(g1), sk_segment_name(g2));
	assert_int_equal(access(t_path(sk_segment_name(g1)), F_OK), 0);
	assert_int_equal(sk_segment_unlink(sk_segment_name(g1)), 0);
	assert_int_equal(sk_segment_unlink(sk_segment_name(g2)), 0);
	sk_segment_close(g1);
	sk_segment_close(g2);
}

static void test_zero_size_and_options(void **state)
{
	(void)state;
	const char *name = t_name("zero");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 0, NULL, &s), 0);
	assert_null(sk_segment_data(s));
	assert_int_equal(sk_segment_size(s), 0);
	sk_segment_close(s);
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &s), 0);
	sk_segment_close(s);
	sk_segment_unlink(name);

	/* The mode is applied exactly, whatever the umask. */
	mode_t old = umask(077);
	sk_create_opts o = { .mode = 0644 };
	name = t_name("mode");
	assert_int_equal(sk_segment_create(name, 1, &o, &s), 0);
	umask(old);
	struct stat st;
	assert_int_equal(stat(t_path(name), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
	sk_segment_close(s);
	sk_segment_unlink(name);

	sk_create_opts bad = { .flags = 1 };
	assert_int_equal(sk_segment_create(t_name("bad"), 1, &bad, &s), -EINVAL);
	sk_create_opts bad2 = { .resv = { 0, 0, 1 } };
	assert_int_equal(sk_segment_create(t_name("bad"), 1, &bad2, &s), -EINVAL);
	sk_create_opts bad3 = { .mode = 010000 };
	assert_int_equal(sk_segment_create(t_name("bad"), 1, &bad3, &s), -EINVAL);
	/* Permission bits only: setuid, setgid and sticky are refused, for every kind. */
	uint32_t special[] = { 04777, 02777, 01777, 04000, 02600, 01600 };
	for (size_t i = 0; i < sizeof special / sizeof *special; i++) {
		sk_create_opts sp = { .mode = special[i] };
		assert_int_equal(sk_segment_create(t_name("bad"), 1, &sp, &s), -EINVAL);
		sk_bits *bb;
		assert_int_equal(sk_bits_create(t_name("bad"), 1, &sp, &bb), -EINVAL);
		sk_array *aa;
		assert_int_equal(sk_array_create(t_name("bad"), SK_INT8, 0, NULL, &sp, &aa), -EINVAL);
	}
	sk_create_opts all = { .mode = 0777 };
	name = t_name("m777");
	assert_int_equal(sk_segment_create(name, 1, &all, &s), 0);
	assert_int_equal(stat(t_path(name), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0777);
	sk_segment_close(s);
	sk_segment_unlink(name);
	assert_int_equal(access(t_path(t_name("bad")), F_OK), -1);
	assert_int_equal(sk_segment_create(t_name("bad"), UINT64_MAX - 100, NULL, &s), -EOVERFLOW);
	assert_int_equal(sk_segment_create(t_name("x"), 1, NULL, NULL), -EINVAL);
}

static void test_too_big_for_shm(void **state)
{
	(void)state;
	/* 1 TiB: more than this machine's /dev/shm. Fails now, leaves nothing. */
	const char *name = t_name("huge");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, UINT64_C(1) << 40, NULL, &s), -ENOSPC);
	assert_null(s);
	assert_int_equal(access(t_path(name), F_OK), -1);
	assert_non_null(strstr(sk_strerror(-ENOSPC), "space"));
}

static int write_first_byte(void *arg)
{
	signal(SIGSEGV, SIG_DFL); /* cmocka catches it in the test process */
	((volatile char *)arg)[0] = 1;
	return 0;
}

static void test_readonly_faults(void **state)
{
	(void)state;
	const char *name = t_name("ro");
	sk_segment *w, *r;
	assert_int_equal(sk_segment_create(name, 4096, NULL, &w), 0);
	((char *)sk_segment_data(w))[0] = 42;
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &r), 0);
	assert_int_equal(sk_segment_flags(r), SK_RDONLY);
	assert_int_equal(((char *)sk_segment_data(r))[0], 42);
	int status = t_fork(write_first_byte, sk_segment_data(r));
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGSEGV);
	sk_segment_close(r);
	sk_segment_close(w);
	sk_segment_unlink(name);
}

static int child_open_and_write(void *arg)
{
	sk_segment *s;
	if (sk_segment_open(arg, SK_RDWR, &s))
		return 1;
	memset(sk_segment_data(s), 0x5a, sk_segment_size(s));
	sk_segment_close(s);
	return 0;
}

static void test_other_process_sees_writes(void **state)
{
	(void)state;
	const char *name = t_name("xproc");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 1 << 20, NULL, &s), 0);
	t_assert_exit0(t_fork(child_open_and_write, (void *)name));
	unsigned char *p = sk_segment_data(s);
	for (size_t i = 0; i < (1 << 20); i += 4093)
		assert_int_equal(p[i], 0x5a);
	sk_segment_close(s);
	sk_segment_unlink(name);
}

static void test_unlink_while_mapped(void **state)
{
	(void)state;
	const char *name = t_name("unl");
	sk_segment *s, *s2;
	assert_int_equal(sk_segment_create(name, 4096, NULL, &s), 0);
	memset(sk_segment_data(s), 9, 4096);
	assert_int_equal(sk_segment_unlink(name), 0);
	assert_int_equal(((char *)sk_segment_data(s))[4095], 9);
	assert_int_equal(sk_segment_create(name, 4096, NULL, &s2), 0);
	assert_int_equal(((char *)sk_segment_data(s2))[0], 0);
	assert_int_equal(((char *)sk_segment_data(s))[0], 9);
	sk_segment_close(s);
	sk_segment_close(s2);
	sk_segment_unlink(name);
}

/* Rewrites the descriptor of a segment file with a fresh checksum. */
static void forge(const char *name, void (*edit)(sk__header *))
{
	int fd = open(t_path(name), O_RDWR);
	assert_true(fd >= 0);
	sk__header h;
	assert_int_equal(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	edit(&h);
	h.checksum = sk__header_checksum(&h);
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
}

static void ed_version(sk__header *h)
{
	h->version = 3;
}
static void ed_version0(sk__header *h)
{
	h->version = 0;
}
static void ed_kind(sk__header *h)
{
	h->kind = 77;
}
static void ed_resv(sk__header *h)
{
	h->resv[10] = 1;
}
static void ed_grow(sk__header *h)
{
	h->data_size += 1 << 20;
	h->nitems += 1 << 20;
	h->file_size += 1 << 20;
}
static void ed_offset(sk__header *h)
{
	h->data_offset = 100;
}
static void ed_pid(sk__header *h)
{
	h->creator_pid = 0;
}

static int open_code(const char *name)
{
	sk_segment *s;
	int rc = sk_segment_open(name, SK_RDONLY, &s);
	if (!rc)
		sk_segment_close(s);
	sk_segment_info in;
	int rc2 = sk_segment_stat(name, &in);
	assert_int_equal(rc, rc2);
	return rc;
}

static void test_forged_headers(void **state)
{
	(void)state;
	struct {
		void (*edit)(sk__header *);
		int code;
	} cases[] = { { ed_version, SK_EVERSION }, { ed_version0, SK_ECORRUPT }, { ed_kind, SK_EKIND },
		      { ed_resv, SK_ECORRUPT },    { ed_grow, SK_ETRUNCATED },   { ed_offset, SK_ECORRUPT },
		      { ed_pid, SK_ECORRUPT } };
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const char *name = t_name("forge");
		sk_segment *s;
		assert_int_equal(sk_segment_create(name, 8192, NULL, &s), 0);
		sk_segment_close(s);
		forge(name, cases[i].edit);
		assert_int_equal(open_code(name), cases[i].code);
		assert_int_equal(sk_segment_unlink(name), 0); /* still ours to remove */
	}
}

/* Each kind checks its own header fields (its sk__kind), reached alike from
 * its typed open and from the any-kind operations of catalog.c; a typed open
 * of another kind's segment is SK_EKIND. */
static void ed_bits_size(sk__header *h)
{
	h->data_size += 8; /* one word more than nitems bits take */
}
static void ed_bits_size_back(sk__header *h)
{
	h->data_size -= 8;
}
static void ed_lock_flag(sk__header *h)
{
	h->flags |= SK__HF_LOCKED; /* bit arrays and queues take no lock */
}
static void ed_queue_ring(sk__header *h)
{
	h->nitems -= 4; /* a ring of whole 8-byte words */
	h->data_size -= 4;
}
static void ed_sync_size(sk__header *h)
{
	h->data_size += 64; /* a mutex has one size (the file stays 8 KiB) */
}
static void ed_value_dtype(sk__header *h)
{
	h->dtype = 0;
}

static int stat_code(const char *name)
{
	sk_segment_info in;
	return sk_segment_stat(name, &in);
}

static void test_kinds_check_their_fields(void **state)
{
	(void)state;
	static const char *const names[] = { "unknown", "raw", "array",   "bits",  "value", "mutex",
					     "rwlock",  "sem", "barrier", "event", "cond",  "queue" };
	for (int k = 0; k <= 11; k++)
		assert_string_equal(sk_kind_name(k), names[k]);
	assert_string_equal(sk_kind_name(12), "unknown");
	assert_string_equal(sk_kind_name(-SK_KIND_RAW), "unknown");

	char b[64], q[64], m[64], v[64]; /* copies: t_name's buffers are reused */
	snprintf(b, sizeof b, "%s", t_name("kbits"));
	snprintf(q, sizeof q, "%s", t_name("kqueue"));
	snprintf(m, sizeof m, "%s", t_name("kmutex"));
	snprintf(v, sizeof v, "%s", t_name("kvalue"));
	sk_bits *bits;
	assert_int_equal(sk_bits_create(b, 1000, NULL, &bits), 0);
	sk_bits_close(bits);
	sk_queue *queue;
	assert_int_equal(sk_queue_create(q, 4096, 64, NULL, &queue), 0);
	sk_queue_close(queue);
	sk_segment *ms;
	sk_mutex *mx;
	assert_int_equal(sk_mutex_create(m, NULL, &ms, &mx), 0);
	sk_segment_close(ms);
	sk_value *val;
	assert_int_equal(sk_value_create(v, SK_INT64, NULL, &val), 0);
	sk_value_close(val);

	sk_array *a;
	sk_value *v2;
	sk_segment *s2;
	/* Untouched: every kind opens through its own _open and the catalog. */
	assert_int_equal(sk_bits_open(b, SK_RDONLY, &bits), 0);
	sk_bits_close(bits);
	assert_int_equal(open_code(q), 0);
	assert_int_equal(sk_array_open(b, SK_RDONLY, &a), SK_EKIND);
	assert_int_equal(sk_value_open(q, SK_RDWR, &v2), SK_EKIND);
	assert_int_equal(sk_sem_open(m, &s2, &(sk_sem *){ NULL }), SK_EKIND);

	forge(b, ed_bits_size);
	assert_int_equal(sk_bits_open(b, SK_RDONLY, &bits), SK_ECORRUPT);
	assert_int_equal(open_code(b), SK_ECORRUPT);
	forge(b, ed_bits_size_back);
	assert_int_equal(open_code(b), 0);
	forge(b, ed_lock_flag);
	assert_int_equal(sk_bits_open(b, SK_RDONLY, &bits), SK_ECORRUPT);
	assert_int_equal(stat_code(b), SK_ECORRUPT);

	forge(q, ed_queue_ring);
	assert_int_equal(sk_queue_open(q, &queue), SK_ECORRUPT);
	assert_int_equal(open_code(q), SK_ECORRUPT);

	forge(m, ed_sync_size);
	assert_int_equal(sk_mutex_open(m, &ms, &mx), SK_ECORRUPT);
	assert_int_equal(open_code(m), SK_ECORRUPT);

	forge(v, ed_value_dtype);
	assert_int_equal(sk_value_open(v, SK_RDWR, &v2), SK_ECORRUPT);
	assert_int_equal(stat_code(v), SK_ECORRUPT);

	const char *all[] = { b, q, m, v };
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(sk_segment_unlink(all[i]), 0);
}

static void test_flip_every_header_byte(void **state)
{
	(void)state;
	const char *name = t_name("flip");
	sk_array *a;
	uint64_t shape[2] = { 3, 5 };
	assert_int_equal(sk_array_create(name, SK_INT32, 2, shape, NULL, &a), 0);
	sk_array_close(a);
	int fd = open(t_path(name), O_RDWR);
	assert_true(fd >= 0);
	for (int i = 0; i < (int)SK__DESC_SIZE; i++) {
		unsigned char c, x;
		assert_int_equal(pread(fd, &c, 1, i), 1);
		x = c ^ 0xff;
		assert_int_equal(pwrite(fd, &x, 1, i), 1);
		int rc = open_code(name);
		if (rc >= 0)
			fail_msg("flipping header byte %d was not detected", i);
		if (i < 8)
			assert_int_equal(rc, SK_EFOREIGN);
		else if (i >= 504)
			assert_int_equal(rc, SK_ECHECKSUM);
		/* Also flip single bits: the weakest damage. */
		for (int bit = 0; bit < 8; bit++) {
			x = c ^ (unsigned char)(1u << bit);
			assert_int_equal(pwrite(fd, &x, 1, i), 1);
			if (open_code(name) >= 0)
				fail_msg("flipping bit %d of header byte %d was not detected", bit, i);
		}
		assert_int_equal(pwrite(fd, &c, 1, i), 1);
	}
	close(fd);
	assert_int_equal(open_code(name), 0);
	assert_int_equal(sk_segment_unlink(name), 0);
}

static void test_truncated_and_small(void **state)
{
	(void)state;
	const char *name = t_name("trunc");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 100000, NULL, &s), 0);
	sk_segment_close(s);
	assert_int_equal(truncate(t_path(name), 4096 + 100000 - 1), 0);
	assert_int_equal(open_code(name), SK_ETRUNCATED);
	assert_int_equal(truncate(t_path(name), 4096), 0);
	assert_int_equal(open_code(name), SK_ETRUNCATED);
	assert_int_equal(truncate(t_path(name), 300), 0);
	assert_int_equal(open_code(name), SK_ETOOSMALL);
	assert_int_equal(truncate(t_path(name), 5), 0);
	assert_int_equal(open_code(name), SK_ETOOSMALL);
	assert_int_equal(truncate(t_path(name), 0), 0);
	assert_int_equal(open_code(name), SK_ETOOSMALL);
	/* Without a readable magic it is not provably ours: refused, removed by hand. */
	assert_int_equal(sk_segment_unlink(name), SK_EFOREIGN);
	t_remove(name);
}

static void test_foreign_entries(void **state)
{
	(void)state;
	/* A foreign file, as Python's shared_memory would leave. */
	const char *f = t_name("foreign");
	char junk[8192];
	memset(junk, 'x', sizeof junk);
	t_write_file(f, junk, sizeof junk);
	assert_int_equal(open_code(f), SK_EFOREIGN);
	assert_int_equal(sk_segment_unlink(f), SK_EFOREIGN);
	assert_int_equal(access(t_path(f), F_OK), 0); /* never removed by mistake */
	t_remove(f);

	/* A symlink to a real segment, and one to a file outside /dev/shm. */
	const char *real = t_name("real"), *link1 = t_name("link1"), *link2 = t_name("link2");
	sk_segment *s;
	assert_int_equal(sk_segment_create(real, 10, NULL, &s), 0);
	sk_segment_close(s);
	assert_int_equal(symlink(t_path(real), t_path(link1)), 0);
	assert_int_equal(symlink("/etc/passwd", t_path(link2)), 0);
	assert_int_equal(open_code(link1), SK_ESYMLINK);
	assert_int_equal(open_code(link2), SK_ESYMLINK);
	assert_int_equal(sk_segment_unlink(link1), SK_ESYMLINK);
	assert_int_equal(sk_segment_create(link2, 10, NULL, &s), -EEXIST); /* not written through */
	assert_int_equal(access("/etc/passwd", F_OK), 0);
	t_remove(link1);
	t_remove(link2);
	assert_int_equal(open_code(real), 0);
	sk_segment_unlink(real);

	/* A FIFO must not block the open; a directory is not a segment. */
	const char *fifo = t_name("fifo"), *dir = t_name("dir");
	assert_int_equal(mkfifo(t_path(fifo), 0600), 0);
	assert_int_equal(open_code(fifo), SK_EFOREIGN);
	t_remove(fifo);
	assert_int_equal(mkdir(t_path(dir), 0700), 0);
	assert_int_equal(open_code(dir), SK_EFOREIGN);
	t_remove(dir);
}

/* sk_segment_fstat of an open handle says what sk_segment_stat says of the
 * name, byte for byte: small and large files, 2 MiB and 4 KiB pages, a frozen
 * one, a locked array; and it still answers once the name is gone. */
static void test_fstat_is_stat(void **state)
{
	(void)state;
	static const struct {
		uint64_t size;
		uint32_t flags;
	} cases[] = { { 10, 0 }, { 8 << 20, 0 }, { 8 << 20, SK_CREATE_NOHUGE }, { 8 << 20, SK_CREATE_HUGE } };
	const char *name = t_name("fstat");
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		sk_create_opts o = { .flags = cases[i].flags };
		sk_segment *c, *s;
		assert_int_equal(sk_segment_create(name, cases[i].size, &o, &c), 0);
		if (i == 1)
			assert_int_equal(sk_segment_freeze(c), 0);
		assert_int_equal(sk_segment_open(name, SK_RDONLY, &s), 0);
		sk_segment_info a, b;
		assert_int_equal(sk_segment_stat(name, &a), 0);
		assert_int_equal(sk_segment_fstat(s, &b), 0);
		assert_int_equal(b.frozen, i == 1);
		assert_int_equal(b.page_size, a.page_size);
		assert_int_equal(b.huge_bytes, a.huge_bytes);
		assert_int_equal(b.creator_alive, 1);
		assert_memory_equal(&a, &b, sizeof a);
		assert_int_equal(sk_segment_unlink(name), 0);
		assert_int_equal(sk_segment_stat(name, &a), -ENOENT);
		memset(&a, 0xff, sizeof a);
		assert_int_equal(sk_segment_fstat(s, &a), 0); /* the handle's, not the name's */
		assert_memory_equal(&a, &b, sizeof a);
		sk_segment_close(s);
		sk_segment_close(c);
	}
	sk_array *arr;
	uint64_t shape[2] = { 3, 4 };
	sk_create_opts lo = { .flags = SK_CREATE_LOCKED };
	assert_int_equal(sk_array_create(name, SK_FLOAT32, 2, shape, &lo, &arr), 0);
	sk_segment *s;
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &s), 0);
	sk_segment_info a, b;
	assert_int_equal(sk_segment_stat(name, &a), 0);
	assert_int_equal(sk_segment_fstat(s, &b), 0);
	assert_memory_equal(&a, &b, sizeof a);
	assert_true(b.locked && b.kind == SK_KIND_ARRAY && b.ndim == 2 && b.shape[1] == 4);
	assert_int_equal(sk_segment_fstat(NULL, &b), -EINVAL);
	assert_int_equal(sk_segment_fstat(s, NULL), -EINVAL);
	sk_segment_close(s);
	sk_array_close(arr);
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* sk_segment_unlink_any removes what sk_segment_unlink refuses, and only the
 * entry named: a symlink goes, its target stays. */
static void test_unlink_any(void **state)
{
	(void)state;
	char junk[8192];
	memset(junk, 'x', sizeof junk);
	const char *f = t_name("any-foreign"), *small = t_name("any-small");
	t_write_file(f, junk, sizeof junk);
	t_write_file(small, junk, 3);
	assert_int_equal(sk_segment_unlink(f), SK_EFOREIGN);
	assert_int_equal(sk_segment_unlink_any(f), 0);
	assert_int_equal(access(t_path(f), F_OK), -1);
	assert_int_equal(sk_segment_unlink_any(small), 0);
	assert_int_equal(access(t_path(small), F_OK), -1);
	assert_int_equal(sk_segment_unlink_any(f), -ENOENT);

	const char *real = t_name("any-real"), *link1 = t_name("any-link1"), *link2 = t_name("any-link2");
	sk_segment *s;
	assert_int_equal(sk_segment_create(real, 10, NULL, &s), 0);
	sk_segment_close(s);
	assert_int_equal(symlink(t_path(real), t_path(link1)), 0);
	assert_int_equal(symlink("/etc/passwd", t_path(link2)), 0);
	assert_int_equal(sk_segment_unlink(link1), SK_ESYMLINK);
	assert_int_equal(sk_segment_unlink_any(link1), 0);
	assert_int_equal(sk_segment_unlink_any(link2), 0);
	struct stat st;
	assert_int_equal(lstat(t_path(link1), &st), -1);
	assert_int_equal(lstat(t_path(link2), &st), -1);
	assert_int_equal(access("/etc/passwd", F_OK), 0);
	assert_int_equal(open_code(real), 0);             /* the link's target is untouched */
	assert_int_equal(sk_segment_unlink_any(real), 0); /* a segment too */
	assert_int_equal(open_code(real), -ENOENT);

	const char *dir = t_name("any-dir");
	assert_int_equal(mkdir(t_path(dir), 0700), 0);
	assert_int_equal(sk_segment_unlink_any(dir), -EISDIR);
	assert_int_equal(access(t_path(dir), F_OK), 0);
	t_remove(dir);
}

typedef struct seen {
	const char *names[4];
	int status[4];
	int visits;
} seen;

static int record(const char *name, int status, const sk_segment_info *info, void *arg)
{
	seen *s = arg;
	s->visits++;
	for (int i = 0; i < 4; i++) {
		if (s->names[i] && !strcmp(name, s->names[i])) {
			s->status[i] = status;
			if (!status && strcmp(info->name, name))
				s->status[i] = 999;
		}
	}
	return 0;
}

static int stop_at_once(const char *name, int status, const sk_segment_info *info, void *arg)
{
	(void)name, (void)status, (void)info, (void)arg;
	return 7;
}

static void test_list(void **state)
{
	(void)state;
	const char *good = t_name("lgood"), *foreign = t_name("lforeign"), *bad = t_name("lbad");
	char badname[64];
	snprintf(badname, sizeof badname, "sktest-%d bad name", (int)getpid());
	sk_segment *s;
	assert_int_equal(sk_segment_create(good, 10, NULL, &s), 0);
	sk_segment_close(s);
	assert_int_equal(sk_segment_create(bad, 10, NULL, &s), 0);
	sk_segment_close(s);
	int fd = open(t_path(bad), O_RDWR);
	assert_int_equal(pwrite(fd, "Z", 1, 200), 1);
	close(fd);
	t_write_file(foreign, "hello", 5);
	t_write_file(badname, "hello", 5);

	seen sn = { { good, foreign, bad, badname }, { -1, -1, -1, -1 }, 0 };
	int rc = sk_segment_list(record, &sn);
	assert_true(rc >= 4);
	assert_int_equal(rc, sn.visits);
	assert_int_equal(sn.status[0], 0);
	assert_int_equal(sn.status[1], SK_EFOREIGN);
	assert_int_equal(sn.status[2], SK_ECHECKSUM);
	assert_int_equal(sn.status[3], SK_EFOREIGN);
	assert_int_equal(sk_segment_list(stop_at_once, NULL), 7);
	assert_int_equal(sk_segment_list(NULL, NULL), -EINVAL);

	sk_segment_unlink(good);
	assert_int_equal(sk_segment_unlink(bad), 0);
	t_remove(foreign);
	t_remove(badname);
}

static int open_as_nobody(void *arg)
{
	if (setgid(65534) || setuid(65534))
		return 2;
	sk_segment *s;
	int rc = sk_segment_open(arg, SK_RDONLY, &s);
	return rc == -EACCES ? 0 : 1;
}

static void test_other_user_refused(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* needs root to become another user */
	const char *name = t_name("perm");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 10, NULL, &s), 0);
	t_assert_exit0(t_fork(open_as_nobody, (void *)name));
	sk_segment_close(s);
	sk_segment_unlink(name);
}

/* Creates, as uid:gid `uid`, a raw segment, an array, a bit array, a value,
 * a mutex and a queue named base-raw, base-arr, ... (mode 0644), and exits. */
typedef struct as_user {
	uid_t uid;
	char base[128];
} as_user;

static const char *kind_name(const char *base, const char *kind)
{
	static char b[6][200];
	static int k;
	char *r = b[k++ % 6];
	snprintf(r, 200, "%s-%s", base, kind);
	return r;
}

static int create_as_user(void *arg)
{
	const as_user *u = arg;
	if (setresgid(u->uid, u->uid, u->uid) || setresuid(u->uid, u->uid, u->uid))
		return 2;
	sk_create_opts o = { .mode = 0644 };
	sk_segment *s, *ms;
	sk_array *a;
	sk_bits *b;
	sk_value *v;
	sk_mutex *m;
	sk_queue *q;
	uint64_t n = 10;
	if (sk_segment_create(kind_name(u->base, "raw"), 100, &o, &s) ||
	    sk_array_create(kind_name(u->base, "arr"), SK_INT32, 1, &n, &o, &a) ||
	    sk_bits_create(kind_name(u->base, "bits"), 100, &o, &b) ||
	    sk_value_create(kind_name(u->base, "val"), SK_INT64, &o, &v) ||
	    sk_mutex_create(kind_name(u->base, "mtx"), &o, &ms, &m) ||
	    sk_queue_create(kind_name(u->base, "q"), 4096, 64, &o, &q))
		return 3;
	return 0;
}

static void unlink_kinds(const char *base)
{
	const char *kinds[] = { "raw", "arr", "bits", "val", "mtx", "q" };
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		assert_int_equal(sk_segment_unlink(kind_name(base, kinds[i])), 0);
}

/* As uid 65534: opening the segments of uid 65533 is refused by default and
 * allowed with SK_OPEN_ANY_OWNER; root's segment (name in arg) is trusted. */
static int nobody_opens(void *arg)
{
	const char **names = arg;
	if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534))
		return 2;
	sk_segment *s;
	if (sk_segment_open(names[0], SK_RDONLY, &s) != 0) /* root's */
		return 3;
	sk_segment_close(s);
	if (sk_segment_open(names[1], SK_RDONLY, &s) != SK_EOWNER) /* uid 65533's */
		return 4;
	if (sk_segment_open(names[1], SK_RDONLY | SK_OPEN_ANY_OWNER, &s) != 0)
		return 5;
	sk_segment_close(s);
	return 0;
}

static void test_other_owner_needs_consent(void **state)
{
	(void)state;
	if (geteuid() != 0) {
		print_message("needs root to create segments as another user: skipped\n");
		skip();
	}
	as_user u = { .uid = 65534 };
	snprintf(u.base, sizeof u.base, "%s", t_name("nobody"));
	t_assert_exit0(t_fork(create_as_user, &u));
	const char *raw = kind_name(u.base, "raw"), *arr = kind_name(u.base, "arr"), *bits = kind_name(u.base, "bits"),
		   *val = kind_name(u.base, "val");
	char mtx[200], q[200];
	snprintf(mtx, sizeof mtx, "%s", kind_name(u.base, "mtx"));
	snprintf(q, sizeof q, "%s", kind_name(u.base, "q"));

	/* The header can be read (and listed) whoever owns it... */
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(raw, &in), 0);
	assert_int_equal(in.uid, 65534);
	/* ... but attaching is refused by default, by every kind's open. */
	sk_segment *s = (sk_segment *)1;
	assert_int_equal(sk_segment_open(raw, SK_RDONLY, &s), SK_EOWNER);
	assert_null(s);
	assert_int_equal(sk_segment_open(raw, SK_RDWR, &s), SK_EOWNER);
	sk_array *a;
	assert_int_equal(sk_array_open(arr, SK_RDWR, &a), SK_EOWNER);
	assert_int_equal(sk_array_open_as(arr, SK_RDONLY, SK_INT32, 1, NULL, &a), SK_EOWNER);
	sk_bits *b;
	assert_int_equal(sk_bits_open(bits, SK_RDONLY, &b), SK_EOWNER);
	sk_value *v;
	assert_int_equal(sk_value_open(val, SK_RDWR, &v), SK_EOWNER);
	sk_mutex *m;
	assert_int_equal(sk_mutex_open(mtx, &s, &m), SK_EOWNER);
	sk_queue *qu;
	assert_int_equal(sk_queue_open(q, &qu), SK_EOWNER);
	int fd = open(t_path(raw), O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(sk_segment_open_fd(fd, SK_RDONLY, &s), SK_EOWNER);
	assert_non_null(strstr(sk_strerror(SK_EOWNER), "another user"));

	/* With consent, each opens. */
	assert_int_equal(sk_segment_open_fd(fd, SK_RDONLY | SK_OPEN_ANY_OWNER, &s), 0);
	sk_segment_close(s);
	close(fd);
	assert_int_equal(sk_segment_open(raw, SK_RDWR | SK_OPEN_ANY_OWNER, &s), 0);
	sk_segment_info_get(s, &in);
	assert_int_equal(in.uid, 65534);
	sk_segment_close(s);
	assert_int_equal(sk_array_open(arr, SK_RDWR | SK_OPEN_ANY_OWNER, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_array_open_as(arr, SK_RDONLY | SK_OPEN_ANY_OWNER, SK_INT32, 1, NULL, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_bits_open(bits, SK_RDONLY | SK_OPEN_ANY_OWNER, &b), 0);
	sk_bits_close(b);
	assert_int_equal(sk_value_open(val, SK_RDWR | SK_OPEN_ANY_OWNER, &v), 0);
	sk_value_close(v);
	assert_int_equal(sk_segment_open(raw, 0x10 | SK_OPEN_ANY_OWNER, &s), -EINVAL);

	/* Root's own segments are trusted by everyone; other users' are not. */
	as_user u2 = { .uid = 65533 };
	snprintf(u2.base, sizeof u2.base, "%s", t_name("other"));
	t_assert_exit0(t_fork(create_as_user, &u2));
	const char *mine = t_name("rootown");
	sk_create_opts o = { .mode = 0644 };
	assert_int_equal(sk_segment_create(mine, 10, &o, &s), 0);
	sk_segment_close(s);
	const char *names[2] = { mine, kind_name(u2.base, "raw") };
	t_assert_exit0(t_fork(nobody_opens, names));
	sk_segment_unlink(mine);
	unlink_kinds(u.base);
	unlink_kinds(u2.base);
}

static int open_fails_enoent(void *arg)
{
	sk_segment *s;
	return sk_segment_open(arg, SK_RDONLY, &s) == -ENOENT ? 0 : 1;
}

static int open_sees_pattern(void *arg)
{
	sk_array *a;
	if (sk_array_open(arg, SK_RDONLY, &a))
		return 1;
	const int64_t *d = sk_array_data(a);
	for (uint64_t i = 0; i < sk_array_size(a); i++)
		if (d[i] != (int64_t)(i * 7))
			return 2;
	sk_array_close(a);
	return 0;
}

static int count_entries(void)
{
	int n = 0;
	char **names;
	size_t k;
	assert_int_equal(sk__sys_list(&names, &k), 0);
	for (size_t i = 0; i < k; i++)
		free(names[i]);
	free(names);
	n = (int)k;
	return n;
}

static int fill_then_wait(void *arg)
{
	int *fds = arg;
	sk_create_opts o = { .flags = SK_CREATE_UNPUBLISHED };
	sk_bits *b;
	if (sk_bits_create(NULL, UINT64_C(1) << 28, &o, &b)) /* 32 MiB */
		return 1;
	sk_bits_set_range(b, 0, sk_bits_len(b));
	char c = 'f';
	if (write(fds[1], &c, 1) != 1)
		return 2;
	pause(); /* killed here, before publishing */
	return 0;
}

static void test_create_fill_publish(void **state)
{
	(void)state;
	const char *name = t_name("pub");
	sk_create_opts o = { .flags = SK_CREATE_UNPUBLISHED };
	sk_array *a;
	uint64_t n = 100000;
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, &o, &a), -EINVAL); /* the name comes later */
	sk_create_opts anon = { .flags = SK_CREATE_UNPUBLISHED | SK_CREATE_ANON };
	assert_int_equal(sk_array_create(NULL, SK_INT64, 1, &n, &anon, &a), -EINVAL);

	int before = count_entries();
	assert_int_equal(sk_array_create(NULL, SK_INT64, 1, &n, &o, &a), 0);
	sk_segment *seg = sk_array_segment(a);
	assert_string_equal(sk_array_name(a), "");
	assert_true(sk_segment_fd(seg) >= 0);
	assert_int_equal(count_entries(), before); /* nothing visible while it is filled */
	int64_t *d = sk_array_data(a);
	for (uint64_t i = 0; i < n; i++)
		d[i] = (int64_t)(i * 7);
	t_assert_exit0(t_fork(open_fails_enoent, (void *)name));
	assert_int_equal(sk_segment_publish(seg, "bad/name"), SK_EBADNAME);
	assert_int_equal(sk_segment_publish(seg, name), 0);
	assert_string_equal(sk_array_name(a), name);
	assert_int_equal(sk_segment_fd(seg), -1);
	assert_int_equal(sk_segment_publish(seg, name), -EINVAL); /* once */
	t_assert_exit0(t_fork(open_sees_pattern, (void *)name));
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.nitems, n);
	d[0] = 0; /* the creator's handle maps the published file */
	sk_array *b;
	assert_int_equal(sk_array_open(name, SK_RDONLY, &b), 0);
	assert_int_equal(((int64_t *)sk_array_data(b))[0], 0);
	sk_array_close(b);

	/* A taken name: refused, still unpublished; another name works. */
	sk_segment *s2;
	assert_int_equal(sk_segment_create(NULL, 10, &o, &s2), 0);
	assert_int_equal(sk_segment_publish(s2, name), -EEXIST);
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.kind, SK_KIND_ARRAY);          /* the existing one is untouched */
	assert_int_equal(sk_segment_publish(s2, NULL), 0); /* a generated name */
	assert_int_equal(sk_name_check(sk_segment_name(s2)), 0);
	assert_int_equal(sk_segment_unlink(sk_segment_name(s2)), 0);
	sk_segment_close(s2);
	assert_int_equal(sk_segment_publish(s2 = NULL, name), -EINVAL);
	sk_array_close(a);
	assert_int_equal(sk_segment_unlink(name), 0);

	/* Closed before publishing: discarded. */
	assert_int_equal(sk_segment_create(NULL, 1 << 20, &o, &s2), 0);
	sk_segment_close(s2);
	assert_int_equal(count_entries(), before);

	/* Killed while filling: nothing is left, under any name. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = t_spawn(fill_then_wait, fds);
	char c;
	assert_int_equal(read(fds[0], &c, 1), 1);
	assert_int_equal(count_entries(), before);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(count_entries(), before);

	/* Every kind can be published; frozen first, it is never writable by name. */
	sk_bits *bits;
	const char *bn = t_name("pubbits");
	assert_int_equal(sk_bits_create(NULL, 1000, &o, &bits), 0);
	sk_bits_set(bits, 999);
	assert_int_equal(sk_segment_freeze(sk_bits_segment(bits)), 0);
	assert_int_equal(sk_segment_publish(sk_bits_segment(bits), bn), 0);
	sk_bits *bb;
	assert_int_equal(sk_bits_open(bn, SK_RDWR, &bb), SK_EFROZEN);
	assert_int_equal(sk_bits_open(bn, SK_RDONLY, &bb), 0);
	assert_int_equal(sk_bits_test(bb, 999), 1);
	sk_bits_close(bb);
	sk_bits_close(bits);
	sk_segment_unlink(bn);
	sk_segment *ms;
	sk_mutex *m;
	const char *mn = t_name("pubmtx");
	assert_int_equal(sk_mutex_create(NULL, &o, &ms, &m), 0);
	assert_int_equal(sk_segment_publish(ms, mn), 0);
	sk_segment *ms2;
	sk_mutex *m2;
	assert_int_equal(sk_mutex_open(mn, &ms2, &m2), 0);
	assert_int_equal(sk_mutex_lock(m2, 0), 0);
	assert_int_equal(sk_mutex_unlock(m2), 0);
	sk_segment_close(ms2);
	sk_segment_close(ms);
	sk_segment_unlink(mn);
	/* Owned and unpublished: judged like any owned segment once named. */
	sk_create_opts ow = { .flags = SK_CREATE_UNPUBLISHED | SK_CREATE_OWNED };
	assert_int_equal(sk_segment_create(NULL, 10, &ow, &s2), 0);
	assert_int_equal(sk_segment_publish(s2, NULL), 0);
	assert_int_equal(sk_segment_stat(sk_segment_name(s2), &in), 0);
	assert_int_equal(in.owned, 1);
	assert_int_equal(in.creator_alive, 1);
	sk_segment_unlink(sk_segment_name(s2));
	sk_segment_close(s2);
}

/* What holds for named segments (docs/security.md): a process that may write
 * the file can truncate it, and every process that has it mapped then gets
 * SIGBUS past the new end; the kernel cannot be told to refuse (tmpfs files
 * cannot be sealed). shmkit only guarantees that opens after it see the
 * truncation (SK_ETRUNCATED). This test pins that behaviour down. */
static int trunc_pipe[2], trunc_go[2];

static int map_then_read_after_truncation(void *arg)
{
	signal(SIGBUS, SIG_DFL); /* cmocka catches it in the test process */
	sk_segment *s;
	if (sk_segment_open(arg, SK_RDONLY, &s))
		return 1;
	char c = 'o';
	if (write(trunc_pipe[1], &c, 1) != 1 || read(trunc_go[0], &c, 1) != 1)
		return 2;
	volatile const char *d = sk_segment_data(s);
	return d[60000]; /* past the new end: SIGBUS */
}

static void test_named_truncation_documented(void **state)
{
	(void)state;
	const char *name = t_name("trunc-live");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 65536, NULL, &s), 0);
	sk_segment_info in;
	sk_segment_info_get(s, &in);
	assert_int_equal(in.sealed, 0);
	assert_int_equal(pipe(trunc_pipe), 0);
	assert_int_equal(pipe(trunc_go), 0);
	pid_t pid = t_spawn(map_then_read_after_truncation, (void *)name);
	char c;
	assert_int_equal(read(trunc_pipe[0], &c, 1), 1);
	assert_int_equal(truncate(t_path(name), 4096), 0); /* the owner may */
	assert_int_equal(write(trunc_go[1], &c, 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGBUS);
	close(trunc_pipe[0]);
	close(trunc_pipe[1]);
	close(trunc_go[0]);
	close(trunc_go[1]);
	sk_segment *t;
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &t), SK_ETRUNCATED);
	sk_segment_close(s);
	assert_int_equal(sk_segment_unlink(name), 0);
}

static void test_creator_gone(void **state)
{
	(void)state;
	const char *name = t_name("gone");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sk_segment *s;
		_exit(sk_segment_create(name, 10, NULL, &s) ? 1 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.creator_pid, pid);
	assert_false(in.creator_alive);
	sk_segment_unlink(name);
}

static int write_through(void *arg)
{
	signal(SIGSEGV, SIG_DFL);
	((volatile char *)arg)[0] = 1;
	return 0;
}

static void test_freeze(void **state)
{
	(void)state;
	const char *name = t_name("frozen");
	uint64_t n = 1000;
	sk_array *a, *b;
	assert_int_equal(sk_array_create(name, SK_INT32, 1, &n, NULL, &a), 0);
	int32_t *d = sk_array_data(a);
	d[7] = 77;
	assert_int_equal(sk_segment_freeze(sk_array_segment(a)), 0);
	assert_int_equal(sk_segment_flags(sk_array_segment(a)), SK_RDONLY);
	assert_ptr_equal(sk_array_data(a), d); /* same address, now read-only */
	assert_int_equal(d[7], 77);
	int status = t_fork(write_through, d);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV);
	assert_int_equal(sk_array_atomic_store(a, 1, 5), SK_EREADONLY);
	assert_int_equal(sk_array_open(name, SK_RDWR, &b), SK_EFROZEN);
	assert_int_equal(sk_array_open(name, SK_RDONLY, &b), 0);
	assert_int_equal(((int32_t *)sk_array_data(b))[7], 77);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.frozen, 1);
	assert_int_equal(sk_segment_info_get(sk_array_segment(b), &in), 0);
	assert_int_equal(in.frozen, 1);
	assert_int_equal(sk_segment_freeze(sk_array_segment(b)), SK_EREADONLY);
	sk_array_close(b);
	sk_array_close(a);
	assert_int_equal(sk_segment_unlink(name), 0);
	/* Kinds whose state is written as they are used cannot be frozen. */
	sk_segment *s;
	sk_mutex *m;
	const char *ln = t_name("lockfz");
	assert_int_equal(sk_mutex_create(ln, NULL, &s, &m), 0);
	assert_int_equal(sk_segment_freeze(s), -EINVAL);
	sk_segment_close(s);
	sk_segment_unlink(ln);
	assert_int_equal(sk_segment_freeze(NULL), -EINVAL);
}

static void test_strerror(void **state)
{
	(void)state;
	/* Every shmkit code: a new code without a text, or missing here, fails. */
	int codes[] = { SK_EBADNAME,   SK_ETOOSMALL, SK_EFOREIGN,   SK_EVERSION,        SK_ECHECKSUM, SK_ECORRUPT,
			SK_ETRUNCATED, SK_EKIND,     SK_ETYPE,      SK_ESYMLINK,        SK_EREADONLY, SK_ENOTFOUND,
			SK_EWORKER,    SK_ETHREADED, SK_EOWNERDEAD, SK_ENOTRECOVERABLE, SK_ECLOSED,   SK_EFROZEN,
			SK_EOWNER,     SK_EBROKEN,   SK_ENOTHELD };
	size_t n = sizeof codes / sizeof *codes;
	for (size_t i = 0; i < n; i++) {
		assert_true(codes[i] < -1000);
		assert_string_not_equal(sk_strerror(codes[i]), "unknown error");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(sk_strerror(codes[i]), sk_strerror(codes[j]));
	}
	/* Codes have texts exactly when they are listed above. */
	for (int c = -1001; c >= -1099; c--) {
		bool listed = false;
		for (size_t i = 0; i < n; i++)
			listed |= codes[i] == c;
		assert_int_equal(listed, strcmp(sk_strerror(c), "unknown error") != 0);
	}
	assert_string_equal(sk_strerror(-ETIMEDOUT), "timed out");
	assert_string_equal(sk_strerror(-ENOENT), "no such segment");
	assert_string_equal(sk_strerror(-EBADF), "Bad file descriptor");
	assert_string_equal(sk_strerror(-999999), "unknown error");
	assert_string_equal(sk_strerror(0), "success");
	assert_string_equal(sk_version(), SHMKIT_VERSION_STRING);
	assert_string_equal(sk_kind_name(SK_KIND_BITS), "bits");
	assert_string_equal(sk_kind_name(99), "unknown");
}

/* ---- The creation record and the attach path (map first, validate the
 * private copy) ---- */

static void read_rec(const char *name, sk__header *h, sk__crec *r)
{
	int fd = open(t_path(name), O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, sizeof *h, 0), (ssize_t)sizeof *h);
	assert_int_equal(pread(fd, r, sizeof *r, SK__CREC_OFFSET), (ssize_t)sizeof *r);
	close(fd);
}

static void write_at(const char *name, const void *p, size_t n, off_t off)
{
	int fd = open(t_path(name), O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, p, n, off), (ssize_t)n);
	close(fd);
}

/* The quick hash misses no single-bit change of the 512 bytes. */
static void test_quick_hash_sees_every_bit(void **state)
{
	(void)state;
	const char *name = t_name("qh");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 100, NULL, &s), 0);
	sk_segment_close(s);
	sk__header h;
	sk__crec r;
	read_rec(name, &h, &r);
	assert_int_equal(r.magic, SK__CREC_MAGIC);
	assert_int_equal(r.version, 1);
	assert_true(r.desc_hash == sk__desc_hash(&h));
	for (int bit = 0; bit < (int)SK__DESC_SIZE * 8; bit++) {
		((uint8_t *)&h)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		if (sk__desc_hash(&h) == r.desc_hash)
			fail_msg("flipping bit %d left the quick hash unchanged", bit);
		((uint8_t *)&h)[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* The record is never trusted: damaged or removed, the segment still opens
 * (the FNV checksum is checked instead) and its pages are "not recorded";
 * a record that matches the descriptor stands in for the FNV checksum, which
 * gives a writer nothing it did not have (it can write a right checksum). */
static void test_creation_record_untrusted(void **state)
{
	(void)state;
	const char *name = t_name("rec");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 6 << 20, NULL, &s), 0);
	((uint8_t *)sk_segment_data(s))[7] = 7;
	sk_segment_close(s);
	sk__header h;
	sk__crec r, junk;
	read_rec(name, &h, &r);
	memset(&junk, 0xa5, sizeof junk);
	write_at(name, &junk, sizeof junk, SK__CREC_OFFSET);
	sk_segment_info in;
	assert_int_equal(open_code(name), 0);
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_UNKNOWN);
	assert_int_equal(in.huge_bytes, 0);
	assert_int_equal(sk_segment_open(name, SK_RDWR, &s), 0);
	assert_int_equal(((uint8_t *)sk_segment_data(s))[7], 7);
	assert_int_equal(sk_segment_info_get(s, &in), 0);
	assert_int_equal(in.huge_status, SK_HUGE_UNKNOWN);
	sk_segment_close(s);
	/* A good record with a damaged descriptor: its hash no longer matches,
	 * the FNV checksum decides. */
	write_at(name, &r, sizeof r, SK__CREC_OFFSET);
	uint8_t b = ((uint8_t *)&h)[100] ^ 1;
	write_at(name, &b, 1, 100);
	assert_int_equal(open_code(name), SK_ECHECKSUM);
	/* A descriptor rewritten with its record's hash to match, the FNV
	 * checksum left stale: accepted, and still validated field by field. */
	sk__header e = h;
	e.checksum ^= 1;
	sk__crec r2 = r;
	r2.desc_hash = sk__desc_hash(&e);
	write_at(name, &e, sizeof e, 0);
	write_at(name, &r2, sizeof r2, SK__CREC_OFFSET);
	assert_int_equal(open_code(name), 0);
	e.data_offset = 100; /* fields still checked */
	r2.desc_hash = sk__desc_hash(&e);
	write_at(name, &e, sizeof e, 0);
	write_at(name, &r2, sizeof r2, SK__CREC_OFFSET);
	assert_int_equal(open_code(name), SK_ECORRUPT);
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* A file stretched far past its header's size (too long to map whole):
 * opened through the header read by pread, only file_size mapped. */
static void test_stretched_file(void **state)
{
	(void)state;
	const char *name = t_name("stretch");
	sk_segment *s;
	assert_int_equal(sk_segment_create(name, 8 << 20, NULL, &s), 0);
	((uint8_t *)sk_segment_data(s))[(8 << 20) - 1] = 5;
	sk_segment_close(s);
	assert_int_equal(truncate(t_path(name), (off_t)1 << 62), 0);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(sk_segment_open(name, k ? SK_RDWR : SK_RDONLY, &s), 0);
		assert_int_equal(sk_segment_size(s), 8 << 20);
		assert_int_equal(((uint8_t *)sk_segment_data(s))[(8 << 20) - 1], 5);
		sk_segment_close(s);
	}
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* More handles than the static pool holds: the rest come from malloc. */
static void test_many_handles(void **state)
{
	(void)state;
	enum { N = 150 };
	const char *name = t_name("handles");
	uint64_t n = 10;
	sk_array *a[N];
	assert_int_equal(sk_array_create(name, SK_INT64, 1, &n, NULL, &a[0]), 0);
	((int64_t *)sk_array_data(a[0]))[9] = 99;
	for (int i = 1; i < N; i++)
		assert_int_equal(sk_array_open(name, i % 2 ? SK_RDONLY : SK_RDWR, &a[i]), 0);
	for (int i = 0; i < N; i += 2)
		sk_array_close(a[i]);
	for (int i = 0; i < N; i += 2)
		assert_int_equal(sk_array_open(name, SK_RDONLY, &a[i]), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(((const int64_t *)sk_array_data(a[i]))[9], 99);
		sk_array_close(a[i]);
	}
	assert_int_equal(sk_segment_unlink(name), 0);
}

/* sk_segment_link: another name for the same file. A child takes the
 * segment under the new name after the first is gone; bad arguments,
 * vanished and replaced names, anonymous and unpublished segments; an owned
 * segment's extra name goes with its dead creator. */
static int child_reads_and_removes(void *arg)
{
	sk_segment *s;
	if (sk_segment_open(arg, SK_RDONLY, &s))
		return 1;
	int ok = memcmp(sk_segment_data(s), "handed over", 12) == 0;
	sk_segment_close(s);
	return ok && sk_segment_unlink(arg) == 0 ? 0 : 2;
}

static int child_creates_owned_and_links(void *arg)
{
	char *names = arg; /* two SK_NAME_MAX + 1 slots in shared memory */
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *s;
	if (sk_segment_create(names, 64, &o, &s) || sk_segment_link(s, NULL, names + SK_NAME_MAX + 1, SK_NAME_MAX + 1))
		return 1;
	_exit(0); /* dies without letting go: gc judges it */
}

static void test_link(void **state)
{
	(void)state;
	const char *a = t_name("lnka"), *b = t_name("lnkb");
	sk_segment *s, *t;
	char out[SK_NAME_MAX + 1];
	assert_int_equal(sk_segment_create(a, 4096, NULL, &s), 0);
	memcpy(sk_segment_data(s), "handed over", 12);
	assert_int_equal(sk_segment_link(s, b, NULL, 0), 0);
	struct stat sa, sb;
	assert_int_equal(stat(t_path(a), &sa), 0);
	assert_int_equal(stat(t_path(b), &sb), 0);
	assert_int_equal(sa.st_ino, sb.st_ino); /* one file, two names */
	assert_int_equal(sb.st_nlink, 2);
	assert_int_equal(sk_segment_link(s, b, NULL, 0), -EEXIST);
	assert_int_equal(sk_segment_link(s, "bad/name", NULL, 0), SK_EBADNAME);
	assert_int_equal(sk_segment_link(s, NULL, out, 8), -EINVAL); /* out too small */
	assert_int_equal(sk_segment_link(NULL, NULL, NULL, 0), -EINVAL);
	assert_int_equal(sk_segment_link(s, NULL, out, sizeof out), 0); /* a generated name */
	assert_int_equal(sk_name_check(out), 0);
	assert_int_equal(stat(t_path(out), &sb), 0);
	assert_int_equal(sb.st_ino, sa.st_ino);
	assert_int_equal(sk_segment_unlink(out), 0);
	/* The first name goes; a child takes it under the second and removes that. */
	assert_int_equal(sk_segment_unlink(a), 0);
	t_assert_exit0(t_fork(child_reads_and_removes, (void *)b));
	assert_int_equal(stat(t_path(b), &sb), -1);
	assert_memory_equal(sk_segment_data(s), "handed over", 12); /* this mapping never noticed */
	/* The handle's own name is gone now: nothing to link from. */
	assert_int_equal(sk_segment_link(s, b, NULL, 0), -ENOENT);
	/* ... or belongs to another file. */
	assert_int_equal(sk_segment_create(a, 64, NULL, &t), 0);
	assert_int_equal(sk_segment_link(s, b, NULL, 0), -ESTALE);
	assert_int_equal(stat(t_path(b), &sb), -1);
	sk_segment_close(t);
	sk_segment_close(s);
	sk_segment_unlink(a);

	/* Anonymous: no name can be added. Unpublished: linked through its file. */
	sk_create_opts anon = { .flags = SK_CREATE_ANON }, unpub = { .flags = SK_CREATE_UNPUBLISHED };
	assert_int_equal(sk_segment_create(NULL, 64, &anon, &s), 0);
	assert_int_equal(sk_segment_link(s, b, NULL, 0), -EINVAL);
	sk_segment_close(s);
	assert_int_equal(sk_segment_create(NULL, 64, &unpub, &s), 0);
	assert_int_equal(sk_segment_link(s, b, NULL, 0), 0);
	assert_int_equal(sk_segment_publish(s, a), 0);
	assert_int_equal(stat(t_path(a), &sa), 0);
	assert_int_equal(stat(t_path(b), &sb), 0);
	assert_int_equal(sa.st_ino, sb.st_ino);
	sk_segment_close(s);
	sk_segment_unlink(a);
	sk_segment_unlink(b);

	/* An owned segment's extra name goes with its creator (gc). */
	char *names = mmap(NULL, 2 * (SK_NAME_MAX + 1), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(names != MAP_FAILED);
	snprintf(names, SK_NAME_MAX + 1, "%s", t_name("lnkown"));
	t_assert_exit0(t_fork(child_creates_owned_and_links, names));
	const char *second = names + SK_NAME_MAX + 1;
	assert_int_equal(stat(t_path(second), &sb), 0);
	assert_true(sk_segment_gc(0, NULL, NULL) >= 2);
	assert_int_equal(stat(t_path(names), &sa), -1);
	assert_int_equal(stat(t_path(second), &sb), -1);
	munmap(names, 2 * (SK_NAME_MAX + 1));
}

static void test_dtypes(void **state)
{
	(void)state;
	const char *names[] = { NULL,    "bool",   "int8",   "int16",  "int32",   "int64",
				"uint8", "uint16", "uint32", "uint64", "float32", "float64" };
	size_t sizes[] = { 0, 1, 1, 2, 4, 8, 1, 2, 4, 8, 4, 8 };
	for (int d = 1; d <= 11; d++) {
		assert_string_equal(sk_dtype_name((sk_dtype)d), names[d]);
		assert_int_equal(sk_dtype_size((sk_dtype)d), sizes[d]);
		assert_int_equal(sk_dtype_from_name(names[d]), d);
	}
	assert_int_equal(sk_dtype_from_name("i8"), SK_INT64);
	assert_int_equal(sk_dtype_from_name("f4"), SK_FLOAT32);
	assert_int_equal(sk_dtype_from_name("b1"), SK_BOOL);
	assert_int_equal(sk_dtype_from_name("complex128"), 0);
	assert_int_equal(sk_dtype_from_name(NULL), 0);
	assert_null(sk_dtype_name((sk_dtype)0));
	assert_int_equal(sk_dtype_size((sk_dtype)12), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_monotonic_clock),
		cmocka_unit_test(test_bad_names_touch_nothing),
		cmocka_unit_test(test_create_open_roundtrip),
		cmocka_unit_test(test_exists_and_generated),
		cmocka_unit_test(test_zero_size_and_options),
		cmocka_unit_test(test_too_big_for_shm),
		cmocka_unit_test(test_readonly_faults),
		cmocka_unit_test(test_other_process_sees_writes),
		cmocka_unit_test(test_unlink_while_mapped),
		cmocka_unit_test(test_forged_headers),
		cmocka_unit_test(test_kinds_check_their_fields),
		cmocka_unit_test(test_flip_every_header_byte),
		cmocka_unit_test(test_truncated_and_small),
		cmocka_unit_test(test_foreign_entries),
		cmocka_unit_test(test_unlink_any),
		cmocka_unit_test(test_fstat_is_stat),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_other_user_refused),
		cmocka_unit_test(test_other_owner_needs_consent),
		cmocka_unit_test(test_creator_gone),
		cmocka_unit_test(test_create_fill_publish),
		cmocka_unit_test(test_link),
		cmocka_unit_test(test_named_truncation_documented),
		cmocka_unit_test(test_freeze),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_dtypes),
		cmocka_unit_test(test_quick_hash_sees_every_bit),
		cmocka_unit_test(test_creation_record_untrusted),
		cmocka_unit_test(test_stretched_file),
		cmocka_unit_test(test_many_handles),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
