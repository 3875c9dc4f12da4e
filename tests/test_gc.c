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
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
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

/* 256 live names sort before every dead one: a sweep that always read the
 * first 256 names would never reach them. Fresh processes, each sweeping
 * once at its first create, must between them remove every dead one. */
static char sweep_prefix[64];

static int create_dead_after(void *arg)
{
	(void)arg;
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	for (int i = 0; i < 40; i++) {
		char name[128];
		snprintf(name, sizeof name, "zzz-%s-%03d", sweep_prefix, i);
		sk_segment *s;
		if (sk_segment_create(name, 16, &o, &s))
			return 1;
	}
	return 0;
}

static int one_sweep(void *arg)
{
	(void)arg;
	unsetenv("SHMKIT_SWEEP");
	sk_segment *s;
	char name[128];
	snprintf(name, sizeof name, "mmm-%s-%d", sweep_prefix, (int)getpid());
	if (sk_segment_create(name, 1, NULL, &s)) /* its first create sweeps */
		return 1;
	sk_segment_close(s);
	return sk_segment_unlink(name) ? 2 : 0;
}

static int count_prefix(const char *p)
{
	int n;
	char **v = snapshot(&n);
	int k = 0;
	for (int i = 0; i < n; i++)
		k += strncmp(v[i], p, strlen(p)) == 0;
	free_names(v, n);
	return k;
}

static void test_sweep_reaches_every_name(void **state)
{
	(void)state;
	snprintf(sweep_prefix, sizeof sweep_prefix, "sktest-%d", (int)getpid());
	char live_p[96], dead_p[96];
	snprintf(live_p, sizeof live_p, "aaa-%s-", sweep_prefix);
	snprintf(dead_p, sizeof dead_p, "zzz-%s-", sweep_prefix);
	for (int i = 0; i < 256; i++) {
		char name[128];
		snprintf(name, sizeof name, "%s%03d", live_p, i);
		sk_segment *s;
		assert_int_equal(sk_segment_create(name, 1, NULL, &s), 0);
		sk_segment_close(s);
	}
	t_assert_exit0(t_fork(create_dead_after, NULL));
	assert_int_equal(count_prefix(dead_p), 40);
	int sweeps = 0;
	while (count_prefix(dead_p) > 0 && sweeps < 200) {
		t_assert_exit0(t_fork(one_sweep, NULL));
		sweeps++;
	}
	print_message("40 dead segments behind 256 live names: all swept after %d fresh processes\n", sweeps);
	assert_int_equal(count_prefix(dead_p), 0);
	assert_int_equal(count_prefix(live_p), 256); /* persistent ones are never touched */
	for (int i = 0; i < 256; i++) {
		char name[128];
		snprintf(name, sizeof name, "%s%03d", live_p, i);
		assert_int_equal(sk_segment_unlink(name), 0);
	}
}

/* ---- Containers: pid and time namespaces ---- */

typedef struct verdicts {
	char name[8][128];
	int verdict[8];
	int n;
} verdicts;

static int note_verdict(const char *name, const sk_segment_info *info, int verdict, int error, void *arg)
{
	(void)info, (void)error;
	verdicts *v = arg;
	for (int i = 0; i < v->n; i++)
		if (!strcmp(v->name[i], name))
			v->verdict[i] = verdict;
	return 0;
}

/* The verdict gc gives name now (-1: not examined). */
static int verdict_of(const char *name, int flags)
{
	verdicts v = { .n = 1, .verdict = { -1 } };
	snprintf(v.name[0], sizeof v.name[0], "%s", name);
	assert_true(sk_segment_gc_explain(flags, note_verdict, &v) >= 0);
	return v.verdict[0];
}

typedef struct ns_job {
	int (*fn)(void *);
	void *arg;
	int time_ns; /* also a new time namespace with a boot-time offset */
} ns_job;

/* Runs job->fn as pid 1 of a new pid namespace with its own /proc (what
 * `unshare --pid --fork --mount-proc` does), sharing /dev/shm. Returns the
 * pid of the outer child; its exit code is fn's (99: no namespaces here). */
static int ns_outer(void *arg)
{
	const ns_job *job = arg;
	if (unshare(CLONE_NEWPID | CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 99;
	if (job->time_ns) {
		if (unshare(CLONE_NEWTIME))
			return 98;
		int f = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (f < 0 || dprintf(f, "boottime 1000 0\n") < 0)
			return 98;
		close(f);
	}
	pid_t pid = fork();
	if (pid < 0)
		return 97;
	if (pid == 0) {
		if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			_exit(96);
		_exit(job->fn(job->arg));
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 95;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 94;
}

static bool namespaces_usable(void)
{
	if (geteuid() != 0) {
		print_message("needs root for pid namespaces: skipped\n");
		return false;
	}
	return true;
}

static char host_live[128], host_dead[128], ctr_name[128];

/* Whether this process's /proc is the initial pid namespace's, which sees
 * every process. Only from there is the creator of a container that has gone
 * provably dead; from inside a pid namespace of its own (a test suite run in
 * a container) the gone namespace cannot be told from a sibling's that is
 * merely hidden, so such a segment is kept (SK_GC_NS_HIDDEN). */
static bool proc_sees_everything(void)
{
	char link[64];
	ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return strcmp(link, "pid:[4026531836]") == 0;
}

/* After the container that made name is gone: removed where that can be
 * proved, else kept as hidden (and removed here by name). */
static void assert_gone_container_judged(const char *name)
{
	if (proc_sees_everything()) {
		assert_int_equal(verdict_of(name, 0), SK_GC_DEAD);
		assert_int_equal(access(t_path(name), F_OK), -1);
	} else {
		print_message("this suite runs in a pid namespace of its own: a gone container's segment is kept\n");
		assert_int_equal(verdict_of(name, 0), SK_GC_NS_HIDDEN);
		assert_int_equal(access(t_path(name), F_OK), 0);
		assert_int_equal(sk_segment_unlink(name), 0);
	}
}

static int make_owned(void *arg)
{
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *s;
	return sk_segment_create(arg, 64, &o, &s) ? 1 : 0;
}

/* Inside a container: a create sweeps and an explicit gc runs; neither may
 * remove the host's segments, whose creators it cannot see. */
static int container_sweeps_and_gcs(void *arg)
{
	(void)arg;
	if (getpid() != 1)
		return 10;
	unsetenv("SHMKIT_SWEEP");
	sk_segment *s;
	if (sk_segment_create(ctr_name, 10, NULL, &s)) /* the first create sweeps */
		return 11;
	sk_segment_close(s);
	if (access(t_path(host_live), F_OK) || access(t_path(host_dead), F_OK))
		return 12;
	if (verdict_of(host_live, 0) != SK_GC_NS_HIDDEN)
		return 40 + verdict_of(host_live, 0);
	if (verdict_of(host_dead, 0) != SK_GC_NS_HIDDEN)
		return 50 + verdict_of(host_dead, 0);
	if (sk_segment_gc(0, NULL, NULL) < 0 || access(t_path(host_live), F_OK) || access(t_path(host_dead), F_OK))
		return 14;
	sk_segment_info in;
	if (sk_segment_stat(host_live, &in) || in.creator_alive != -1)
		return 15;
	/* Its own segment is judged: alive while this process runs. */
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	if (sk_segment_create(NULL, 10, &o, &s))
		return 16;
	if (verdict_of(sk_segment_name(s), 0) != SK_GC_ALIVE)
		return 17;
	if (sk_segment_stat(sk_segment_name(s), &in) || in.creator_alive != 1 || in.creator_pid != 1)
		return 18;
	sk_segment_unlink(sk_segment_name(s));
	return 0;
}

static void test_container_never_removes_host_segments(void **state)
{
	(void)state;
	if (!namespaces_usable())
		skip();
	snprintf(host_live, sizeof host_live, "%s", t_name("host-live"));
	snprintf(host_dead, sizeof host_dead, "%s", t_name("host-dead"));
	snprintf(ctr_name, sizeof ctr_name, "%s", t_name("ctr-made"));
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *s;
	assert_int_equal(sk_segment_create(host_live, 64, &o, &s), 0); /* this process: alive */
	t_assert_exit0(t_fork(make_owned, host_dead));                 /* a host process that has exited */
	ns_job job = { container_sweeps_and_gcs, NULL, 0 };
	int status = t_fork(ns_outer, &job);
	assert_true(WIFEXITED(status));
	if (WEXITSTATUS(status) == 99) {
		print_message("no pid namespaces here: skipped\n");
		skip();
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(access(t_path(host_live), F_OK), 0);
	/* The host judges both: its dead one goes, the live one stays. */
	assert_int_equal(verdict_of(host_dead, SK_GC_DRY_RUN), SK_GC_DEAD);
	assert_int_equal(verdict_of(host_live, 0), SK_GC_ALIVE);
	assert_int_equal(access(t_path(host_dead), F_OK), -1);
	sk_segment_close(s);
	sk_segment_unlink(host_live);
	sk_segment_unlink(ctr_name);
}

static int ctl_pipe[2], ack_pipe[2];

/* Inside a container: makes an owned segment, says so, and lives until told. */
static int container_holds(void *arg)
{
	sk_create_opts o = { .flags = SK_CREATE_OWNED };
	sk_segment *s;
	char c = sk_segment_create(arg, 64, &o, &s) ? 'x' : 'k';
	if (write(ack_pipe[1], &c, 1) != 1)
		return 20;
	(void)!read(ctl_pipe[0], &c, 1); /* until the host closes it */
	return 0;
}

/* ns_outer, holding only the pipe ends the container uses: the host's
 * close of ctl_pipe[1] must be the last one. */
static int outer_holding(void *arg)
{
	close(ctl_pipe[1]);
	close(ack_pipe[0]);
	return ns_outer(arg);
}

static void host_judges_container(int time_ns)
{
	const char *name = t_name(time_ns ? "ctr-timens" : "ctr-live");
	assert_int_equal(pipe(ctl_pipe), 0);
	assert_int_equal(pipe(ack_pipe), 0);
	ns_job job = { container_holds, (void *)name, time_ns };
	pid_t outer = t_spawn(outer_holding, &job);
	close(ack_pipe[1]);
	close(ctl_pipe[0]);
	char c = 0;
	ssize_t got = read(ack_pipe[0], &c, 1);
	close(ack_pipe[0]);
	if (got != 1) { /* the container never started */
		close(ctl_pipe[1]);
		int status;
		waitpid(outer, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) >= 98) {
			print_message("no %s namespaces here: skipped\n", time_ns ? "time" : "pid");
			skip();
		}
		fail_msg("the container failed: status %#x", status);
	}
	assert_int_equal(c, 'k');
	/* While its creator runs, gc on the host keeps it. */
	sk_segment_info in;
	assert_int_equal(sk_segment_stat(name, &in), 0);
	assert_true(in.creator_pid <= 2); /* pid 1 of its namespace */
	assert_true(in.creator_pidns != 0);
	if (time_ns) {
		/* Its start time counts from another boot time: not comparable. */
		assert_int_equal(in.creator_alive, -1);
		assert_int_equal(verdict_of(name, 0), SK_GC_TIMENS);
	} else {
		assert_int_equal(in.creator_alive, 1);
		assert_int_equal(verdict_of(name, 0), SK_GC_ALIVE);
	}
	assert_int_equal(sk_segment_gc(0, NULL, NULL) >= 0, 1);
	assert_int_equal(access(t_path(name), F_OK), 0);
	/* Once the container is gone, the host (which sees every pid
	 * namespace) judges its creator dead, except across time namespaces. */
	close(ctl_pipe[1]);
	int status;
	assert_int_equal(waitpid(outer, &status, 0), outer);
	t_assert_exit0(status);
	if (time_ns) {
		assert_int_equal(verdict_of(name, 0), SK_GC_TIMENS);
		assert_int_equal(access(t_path(name), F_OK), 0);
		assert_int_equal(sk_segment_unlink(name), 0);
	} else {
		assert_gone_container_judged(name);
	}
}

static void test_host_never_removes_live_container_segments(void **state)
{
	(void)state;
	if (!namespaces_usable())
		skip();
	host_judges_container(0);
}

static void test_time_namespace_not_judged(void **state)
{
	(void)state;
	if (!namespaces_usable())
		skip();
	host_judges_container(1);
}

/* A sibling container cannot see another's processes: it keeps their
 * segments while they run (their namespace is alive, so it cannot have been
 * reused for the sibling's); the host removes them once they have died. */
static int sibling_judges(void *arg)
{
	return verdict_of(arg, 0) == SK_GC_NS_HIDDEN && access(t_path(arg), F_OK) == 0 ? 0 : 30;
}

static void test_sibling_container_keeps_what_it_cannot_see(void **state)
{
	(void)state;
	if (!namespaces_usable())
		skip();
	const char *name = t_name("ctr-sib");
	assert_int_equal(pipe(ctl_pipe), 0);
	assert_int_equal(pipe(ack_pipe), 0);
	ns_job job = { container_holds, (void *)name, 0 };
	pid_t outer = t_spawn(outer_holding, &job);
	close(ack_pipe[1]);
	close(ctl_pipe[0]);
	char c = 0;
	assert_int_equal(read(ack_pipe[0], &c, 1), 1);
	close(ack_pipe[0]);
	assert_int_equal(c, 'k');
	ns_job judge = { sibling_judges, (void *)name, 0 };
	t_assert_exit0(t_fork(ns_outer, &judge));
	assert_int_equal(verdict_of(name, 0), SK_GC_ALIVE);
	close(ctl_pipe[1]);
	int status;
	assert_int_equal(waitpid(outer, &status, 0), outer);
	t_assert_exit0(status);
	assert_gone_container_judged(name);
}

/* Layout 1 headers are read as before, and their owned segments are never
 * removed: they do not say which pid namespace their creator lived in. */
static void test_layout1_readable_never_collected(void **state)
{
	(void)state;
	const char *name = t_name("v1");
	t_assert_exit0(t_fork(make_owned, (void *)name)); /* its creator is dead */
	int fd = open(t_path(name), O_RDWR);
	assert_true(fd >= 0);
	sk__header h;
	assert_int_equal(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_int_equal(h.version, 2);
	assert_true(h.pidns != 0);
	h.version = 1;
	h.ns_dev = h.pidns = h.timens = 0;
	h.checksum = sk__header_checksum(&h);
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	sk_segment *s;
	assert_int_equal(sk_segment_open(name, SK_RDWR, &s), 0);
	sk_segment_info in;
	sk_segment_info_get(s, &in);
	assert_int_equal(in.version, 1);
	assert_int_equal(in.creator_alive, -1);
	assert_int_equal(in.creator_pidns, 0);
	sk_segment_close(s);
	assert_int_equal(verdict_of(name, 0), SK_GC_OLD_LAYOUT);
	assert_int_equal(access(t_path(name), F_OK), 0);
	/* A version 1 header with the namespace bytes set is corrupt. */
	h.pidns = 5;
	h.checksum = sk__header_checksum(&h);
	assert_int_equal(pwrite(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	assert_int_equal(sk_segment_open(name, SK_RDONLY, &s), SK_ECORRUPT);
	close(fd);
	assert_int_equal(sk_segment_unlink(name), 0);
	assert_string_not_equal(sk_gc_verdict_str(SK_GC_OLD_LAYOUT), "unknown verdict");
	for (int v = SK_GC_DEAD; v <= SK_GC_UNLINK_FAILED; v++)
		assert_string_not_equal(sk_gc_verdict_str(v), "unknown verdict");
}

int main(void)
{
	setenv("SHMKIT_SWEEP", "0", 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owned_and_persistent),
		cmocka_unit_test(test_reused_pid_does_not_fool_it),
		cmocka_unit_test(test_creators_killed_then_gc),
		cmocka_unit_test(test_sweep_at_create),
		cmocka_unit_test(test_sweep_reaches_every_name),
		cmocka_unit_test(test_container_never_removes_host_segments),
		cmocka_unit_test(test_host_never_removes_live_container_segments),
		cmocka_unit_test(test_time_namespace_not_judged),
		cmocka_unit_test(test_sibling_container_keeps_what_it_cannot_see),
		cmocka_unit_test(test_layout1_readable_never_collected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
