/*
 * test_nospace.c: a 64 MiB /dev/shm, as a container would have. Each test
 * runs in a child with its own mount namespace and a small tmpfs mounted over
 * /dev/shm, so the machine's /dev/shm is never touched. Needs root
 * (CAP_SYS_ADMIN); skipped, saying so, without it.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

static int entries_in_shm(void)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static uint64_t free_bytes(void)
{
	struct statvfs v;
	return statvfs("/dev/shm", &v) ? 0 : (uint64_t)v.f_bavail * v.f_frsize;
}

/* Returns 0, or 77 when a private small /dev/shm cannot be had. */
static int small_shm(void)
{
	if (unshare(CLONE_NEWNS))
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 77;
	if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64M,mode=1777"))
		return 77;
	return entries_in_shm() == 0 ? 0 : 3;
}

/* Each check returns a distinct code so a failure names the step. */
static int child_fail_cleanly(void *arg)
{
	(void)arg;
	int rc = small_shm();
	if (rc)
		return rc;
	uint64_t before = free_bytes();
	sk_array *a;
	uint64_t n = (UINT64_C(1) << 30) / 8; /* 1 GiB of int64 */
	if (sk_array_create("big", SK_INT64, 1, &n, NULL, &a) != -ENOSPC)
		return 10;
	if (a != NULL || entries_in_shm() != 0 || free_bytes() != before)
		return 11;
	sk_bits *b;
	if (sk_bits_create("bits", UINT64_C(8) << 30, NULL, &b) != -ENOSPC || entries_in_shm() != 0)
		return 12;
	sk_segment *s;
	if (sk_segment_create(NULL, UINT64_C(1) << 30, NULL, &s) != -ENOSPC || entries_in_shm() != 0)
		return 13;
	return 0;
}

static int child_fill_then_touch(void *arg)
{
	(void)arg;
	int rc = small_shm();
	if (rc)
		return rc;
	/* Fill the 64 MiB: two segments fit, a third fails part way and is
	 * undone; then every byte of the two is written: no SIGBUS. */
	sk_segment *a, *b, *c;
	if (sk_segment_create("a", 30u << 20, NULL, &a))
		return 20;
	if (sk_segment_create("b", 30u << 20, NULL, &b))
		return 21;
	uint64_t before = free_bytes();
	if (sk_segment_create("c", 30u << 20, NULL, &c) != -ENOSPC)
		return 22;
	if (entries_in_shm() != 2 || free_bytes() != before)
		return 23;
	memset(sk_segment_data(a), 1, sk_segment_size(a));
	memset(sk_segment_data(b), 2, sk_segment_size(b));
	/* Space comes back when a name goes and the last mapping closes. */
	sk_segment_close(a);
	if (sk_segment_unlink("a"))
		return 24;
	if (sk_segment_create("c", 30u << 20, NULL, &c))
		return 25;
	memset(sk_segment_data(c), 3, sk_segment_size(c));
	return 0;
}

static void run_in_small_shm(int (*fn)(void *))
{
	int status = t_fork(fn, NULL);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		print_message("cannot mount a private tmpfs over /dev/shm (needs root): skipped\n");
		skip();
	}
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d (SIGBUS is %d)", WTERMSIG(status), SIGBUS);
	if (WEXITSTATUS(status))
		fail_msg("child failed at step %d", WEXITSTATUS(status));
}

static void test_create_too_big_fails_cleanly(void **state)
{
	(void)state;
	run_in_small_shm(child_fail_cleanly);
}

static void test_reserved_space_never_sigbus(void **state)
{
	(void)state;
	run_in_small_shm(child_fill_then_touch);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_too_big_fails_cleanly),
		cmocka_unit_test(test_reserved_space_never_sigbus),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
