/*
 * test_gc.c: owned and persistent segments; sk_segment_gc and the sweep at
 * create time; creator liveness by pid and start time; creators SIGKILLed at
 * random moments, after which gc leaves /dev/shm as it was.
 * This process runs with SHMKIT_SWEEP=0 so that only the calls under test
 * remove anything; the sweep is tested in a child without it.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

typedef struct names {
	char v[64][256];
	int n;
} names;

static int collect(const char *name, const sk_segment_info *info, void *arg)
{
	names *r = arg;
	(void)info;
	if (r->n < 64)
		snprintf(r->v[r->n++], sizeof r->v[0], "%s", name);
	return 0;
}

static bool has(const names *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->v[i], name))
			return true;
	return false;
}

static char owned_name[128], persistent_name[128];

static int make_two_and_exit(void *arg)
{
	(void)arg;
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *a, *b;
	if (sk_segment_create(owned_name, 4096, &o, &a) || sk_segment_create(persistent_name, 4096, NULL, &b))
		return 1;
	return 0; /* exits without closing or unlinking anything */
}

static void test_owned_and_persistent(void **state)
{
	(void)state;
	snprintf(owned_name, sizeof owned_name, "%s", t_name("owned"));
	snprintf(persistent_name, sizeof persistent_name, "%s", t_name("persistent"));
	t_assert_exit0(t_fork(make_two_and_exit, NULL));
	/* An owned segment of a live creator (this process) stays. */
	const char *mine = t_name("mine");
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_array *a;
	uint64_t n = 10;
	assert_int_equal(sk_array_create(mine, SK_INT8, 1, &n, &o, &a), 0);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(owned_name, &in), 0);
	assert_int_equal(in.owned, 1);
	assert_int_equal(in.creator_alive, 0);
	assert_int_equal(sk_segment_stat(persistent_name, &in), 0);
	assert_int_equal(in.owned, 0);

	names dry = { .n = 0 };
	int rc = sk_segment_gc(SK_GC_DRY_RUN, collect, &dry);
	assert_true(rc >= 1);
	assert_true(has(&dry, owned_name));
	assert_false(has(&dry, persistent_name));
	assert_false(has(&dry, mine));
	assert_int_equal(access(t_path(owned_name), F_OK), 0); /* a dry run removes nothing */

	names done = { .n = 0 };
	rc = sk_segment_gc(0, collect, &done);
	assert_true(rc >= 1);
	assert_true(has(&done, owned_name));
	assert_int_equal(access(t_path(owned_name), F_OK), -1);
	assert_int_equal(access(t_path(persistent_name), F_OK), 0);
	assert_int_equal(access(t_path(mine), F_OK), 0);
	assert_int_equal(sk_segment_gc(0x8, NULL, NULL), -EINVAL);
	sk_array_close(a);
	sk_segment_unlink(mine);
	sk_segment_unlink(persistent_name);
}

static void forge_start(const char *name, uint64_t delta)
{
	int fd = open(t_path(name), O_RDWR);
	assert_true(fd >= 0);
	sk__header h;
	assert_int_equal(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	h.creator_start += delta;
	h.checksum = sk__header_checksum(&h);
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	close(fd);
}

static void test_reused_pid_does_not_fool_it(void **state)
{
	(void)state;
	/* Same pid as a running process (this one), another start time: the
	 * creator is gone and the pid was reused. */
	const char *reused = t_name("reused"), *live = t_name("live");
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *s, *t;
	assert_int_equal(sk_segment_create(reused, 100, &o, &s), 0);
	assert_int_equal(sk_segment_create(live, 100, &o, &t), 0);
	forge_start(reused, 1);
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(reused, &in), 0);
	assert_int_equal(in.creator_pid, getpid());
	assert_int_equal(in.creator_alive, 0);
	names done = { .n = 0 };
	assert_true(sk_segment_gc(0, collect, &done) >= 1);
	assert_true(has(&done, reused));
	assert_false(has(&done, live));
	/* Unlinking never breaks a process that has it mapped. */
	memset(sk_segment_data(s), 7, 100);
	assert_int_equal(((char *)sk_segment_data(s))[99], 7);
	sk_segment_close(s);
	sk_segment_close(t);
	sk_segment_unlink(live);
}

static char **snapshot(int *n)
{
	DIR *d = opendir("/dev/shm");
	assert_non_null(d);
	char **v = NULL;
	*n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		v = realloc(v, sizeof *v * (size_t)(*n + 1));
		v[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	return v;
}

static void free_names(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void assert_same_entries(char **before, int nb)
{
	int na;
	char **after = snapshot(&na);
	for (int i = 0; i < na; i++) {
		bool found = false;
		for (int j = 0; j < nb && !found; j++)
			found = !strcmp(after[i], before[j]);
		if (!found)
			fail_msg("left in /dev/shm: %s", after[i]);
	}
	free_names(after, na);
}

/* Creates one owned segment of each kind and lets go of nothing. */
static int create_one_of_each(void)
{
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	uint64_t n = 1 << 17;
	sk_array *a;
	sk_bits *b;
	sk_queue *q;
	sk_segment *s;
	sk_mutex *m;
	sk_value *v;
	int rc = sk_array_create(NULL, SK_INT64, 1, &n, &o, &a);
	rc = rc ? rc : sk_bits_create(NULL, 1 << 20, &o, &b);
	rc = rc ? rc : sk_queue_create(NULL, 1 << 16, 1024, &o, &q);
	rc = rc ? rc : sk_mutex_create(NULL, &o, &s, &m);
	rc = rc ? rc : sk_value_create(NULL, SK_FLOAT64, &o, &v);
	return rc;
}

/* Creates owned segments of every kind, forever, until killed. */
static int create_forever(void *arg)
{
	(void)arg;
	for (;;)
		create_one_of_each();
	return 0;
}

static void test_creators_killed_then_gc(void **state)
{
	(void)state;
	int nb;
	char **before = snapshot(&nb);
	uint64_t seed = 12345;
	int removed = 0;
	for (int round = 0; round < 100; round++) {
		pid_t pid = t_spawn(create_forever, NULL);
		usleep((useconds_t)(t_rand(&seed) % 3000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (round % 25 == 24) {
			int rc = sk_segment_gc(0, NULL, NULL);
			assert_true(rc >= 0);
			removed += rc;
		}
	}
	int rc = sk_segment_gc(0, NULL, NULL);
	assert_true(rc >= 0);
	removed += rc;
	print_message("100 creators killed at random moments; gc removed %d segments\n", removed);
	assert_true(removed > 0);
	assert_same_entries(before, nb);
	free_names(before, nb);
}

/* Leaves 20 owned segments of every kind behind, and exits. */
static int create_twenty_and_exit(void *arg)
{
	(void)arg;
	for (int i = 0; i < 4; i++)
		if (create_one_of_each())
			return 1;
	return 0;
}

static int create_300_and_exit(void *arg)
{
	(void)arg;
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	for (int i = 0; i < 300; i++) {
		sk_segment *s;
		if (sk_segment_create(NULL, 64, &o, &s))
			return 1;
	}
	return 0;
}

static int create_with_sweep(void *arg)
{
	unsetenv("SHMKIT_SWEEP");
	sk_segment *s;
	/* The first create in this process sweeps. */
	int rc = sk_segment_create(arg, 10, NULL, &s);
	return rc ? 1 : 0;
}

static void test_sweep_at_create(void **state)
{
	(void)state;
	int nb;
	char **before = snapshot(&nb);
	t_assert_exit0(t_fork(create_twenty_and_exit, NULL));
	int nm;
	char **middle = snapshot(&nm);
	assert_int_equal(nm, nb + 20);
	free_names(middle, nm);
	char mine[128];
	snprintf(mine, sizeof mine, "%s", t_name("swept-by"));
	t_assert_exit0(t_fork(create_with_sweep, mine));
	assert_int_equal(sk_segment_unlink(mine), 0);
	assert_same_entries(before, nb); /* the next create took the dead creators' segments */
	free_names(before, nb);
	/* The sweep is bounded: with 300 dead segments, one create reads at most
	 * 256 headers, so some are left for later sweeps or gc. */
	before = snapshot(&nb);
	t_assert_exit0(t_fork(create_300_and_exit, NULL));
	t_assert_exit0(t_fork(create_with_sweep, mine));
	assert_int_equal(sk_segment_unlink(mine), 0);
	int left;
	char **after = snapshot(&left);
	free_names(after, left);
	assert_true(left - nb >= 300 - 256);
	assert_true(left - nb < 300);
	assert_int_equal(sk_segment_gc(0, NULL, NULL), left - nb);
	assert_same_entries(before, nb);
	free_names(before, nb);
	/* Options that are not for a kind are refused; OWNED is for all. */
	sk_create_opts o = { .flags = SK_CREATE_OWNED | SK_CREATE_RAW };
	sk_bits *b;
	assert_int_equal(sk_bits_create(t_name("x"), 10, &o, &b), -EINVAL);
}

int main(void)
{
	setenv("SHMKIT_SWEEP", "0", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owned_and_persistent),
		cmocka_unit_test(test_reused_pid_does_not_fool_it),
		cmocka_unit_test(test_creators_killed_then_gc),
		cmocka_unit_test(test_sweep_at_create),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
