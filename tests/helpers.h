/*
 * helpers.h: small utilities shared by the C tests.
 */
#ifndef SHMKIT_TEST_HELPERS_H
#define SHMKIT_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#include "shmkit.h"

/* A segment name unique to this test process: "sktest-PID-tag". The result
 * lives until the 16th next call. */
const char *t_name(const char *tag);
/* Path of a name in /dev/shm, same lifetime rules. */
const char *t_path(const char *name);
/* Removes /dev/shm/name whatever it is; ignores a missing name. */
void t_remove(const char *name);
/* Creates /dev/shm/name as a plain file holding n bytes of buf. */
void t_write_file(const char *name, const void *buf, size_t n);
/* Runs fn(arg) in a forked child; returns the child's wait status. */
int t_fork(int (*fn)(void *), void *arg);
/* Starts fn(arg) in a forked child (its return value is the exit code) and
 * returns the child's pid without waiting. */
pid_t t_spawn(int (*fn)(void *), void *arg);
/* Fails the test unless status is a normal exit with code 0. */
void t_assert_exit0(int status);
/* xorshift64* random numbers, deterministic per seed. */
uint64_t t_rand(uint64_t *state);

/* Forks n children running fn(i, arg) and waits for all; fails the test
 * unless every one exits 0. */
void t_fork_many(int n, int (*fn)(int i, void *arg), void *arg);
/* Monotonic time in ns. */
int64_t t_now_ns(void);
/* Whether pid has died: a zombie not yet reaped, or no process at all. */
bool t_is_zombie_or_gone(pid_t pid);
#endif
