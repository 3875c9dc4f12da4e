/*
 * helpers.c: utilities shared by the C tests.
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char ring[16][320];
static unsigned ring_pos;

static char *next_buf(void)
{
	return ring[ring_pos++ % 16];
}

const char *t_name(const char *tag)
{
	char *b = next_buf();
	snprintf(b, 320, "sktest-%d-%s", (int)getpid(), tag);
	return b;
}

const char *t_path(const char *name)
{
	char *b = next_buf();
	snprintf(b, 320, "/dev/shm/%s", name);
	return b;
}

void t_remove(const char *name)
{
	const char *p = t_path(name);
	if (unlink(p) < 0 && errno == EISDIR)
		rmdir(p);
}

void t_write_file(const char *name, const void *buf, size_t n)
{
	int fd = open(t_path(name), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

pid_t t_spawn(int (*fn)(void *), void *arg)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(arg));
	return pid;
}

int t_fork(int (*fn)(void *), void *arg)
{
	pid_t pid = t_spawn(fn, arg);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		assert_int_equal(errno, EINTR);
	return status;
}

void t_assert_exit0(int status)
{
	if (!WIFEXITED(status))
		fail_msg("child died of signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : -1);
	assert_int_equal(WEXITSTATUS(status), 0);
}

uint64_t t_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

void t_fork_many(int n, int (*fn)(int, void *), void *arg)
{
	pid_t pids[256];
	assert_true(n <= 256);
	fflush(NULL);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(fn(i, arg));
	}
	int failed = 0;
	for (int i = 0; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = i + 1;
	}
	if (failed)
		fail_msg("child %d failed", failed - 1);
}

int64_t t_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool t_is_zombie_or_gone(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *paren = strrchr(buf, ')'); /* the state follows the name, which may hold spaces */
	return !paren || paren[1] == 0 || paren[2] == 'Z' || paren[2] == 'X';
}
