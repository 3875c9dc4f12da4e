/*
 * os.h: the OS layer's contract (src/sys/linux.c). Layer: os.
 *
 * Every system call shmkit makes goes through these sk__sys_* functions;
 * nothing above includes a system header for a system call, so a port to
 * another system is a new src/sys/<os>.c behind this header. For all of them,
 * unless the comment on one says otherwise:
 *   - a function returning int (or ssize_t, pid_t) returns 0, or a count or
 *     an id where it says so, on success, and -errno on failure; the few
 *     shmkit codes some return are named on them (SK_ESYMLINK, SK_EFOREIGN,
 *     SK_EBADNAME);
 *   - an interrupted call (EINTR) is retried inside; only
 *     sk__sys_futex_wait reports -EINTR, and its callers re-check;
 *   - a function returning void cannot fail, or has nothing to report;
 *   - none prints, none exits but sk__sys_exit, and memory handed out
 *     (sk__sys_proc_scan, sk__sys_list) is the caller's to free;
 *   - a name is a segment's: a file in SK__SHM_DIR.
 */
#ifndef SHMKIT_SRC_OS_H
#define SHMKIT_SRC_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- Files, mappings, processes seen in /proc ---- */

#define SK__SHM_DIR "/dev/shm"

/* An unnamed file in the shm directory with exactly `mode`; *fd and its
 * owner (the effective uid) on success. */
int sk__sys_tmpfile(uint32_t mode, int *fd, uid_t *owner);
/* An anonymous memory file (memfd) with exactly `mode`; backed by 2 MiB
 * hugetlb pages with sk__sys_memfd_huge. */
int sk__sys_memfd(uint32_t mode, int *fd, uid_t *owner);
int sk__sys_memfd_huge(uint32_t mode, int *fd, uid_t *owner);
/* Page size of the file system of fd (hugetlbfs: its huge page size). */
size_t sk__sys_fs_page(int fd);
/* Bytes still free on the file system of fd (UINT64_MAX: no limit, or
 * cannot tell): a create that cannot fit fails at once. */
uint64_t sk__sys_fs_room(int fd);
/* The same for a file on device dev (its st_dev): remembered per process for
 * the last device asked about, so that opens on one file system ask once. */
size_t sk__sys_fs_page_of(int fd, uint64_t dev);
/* Turns the 2 MiB-aligned, 2 MiB-long range at p of a shared file mapping
 * into one transparent huge page (MADV_COLLAPSE, Linux 6.1+): 0, or -errno
 * (-EINVAL where the kernel cannot: no MADV_COLLAPSE, THP off or denied for
 * shmem, THP disabled for the process; -ENOMEM/-EAGAIN when no 2 MiB page
 * could be had). */
int sk__sys_collapse(void *p);
/* Faults in the page at p and tells whether a 2 MiB page-table entry maps it
 * (a transparent huge page of tmpfs or a file): 1 or 0, from /proc/self/smaps. */
int sk__sys_thp_mapped(const void *p);
/* Sends fd over a Unix socket (SCM_RIGHTS) with a small tag; receives one. */
int sk__sys_send_fd(int sock, int fd);
int sk__sys_recv_fd(int sock, int *fd);
/* Size, mode and owner of the regular file open as fd (SK_EFOREIGN otherwise). */
int sk__sys_fd_stat(int fd, uint64_t *size, uint32_t *mode, uid_t *uid);
/* Device and inode of the file open as fd. */
int sk__sys_fd_ident(int fd, uint64_t *dev, uint64_t *ino);
/* What one fstat says about a regular file. */
typedef struct sk__file {
	uint64_t size, dev, ino;
	uint32_t mode; /* permission bits */
	uid_t uid;
} sk__file;
/* fstat of fd: SK_EFOREIGN unless a regular file. */
int sk__sys_fd_file(int fd, sk__file *st);
/* As sk__sys_open, reporting everything one fstat says. */
int sk__sys_open_file(const char *name, bool rdonly, int *fd, sk__file *st);
/* The effective uid of the calling process. */
uid_t sk__sys_euid(void);
int sk__sys_dup(int fd, int *out);
/* Seals a memfd against writes, growth and shrinking. -EBUSY while any
 * process still maps it writable. */
int sk__sys_seal_writes(int fd);
/* Seals a memfd against shrinking, so that no process can truncate it under
 * another's mapping (SIGBUS). -EPERM where sealing is not allowed (named
 * tmpfs files, memfds sealed with F_SEAL_SEAL). */
int sk__sys_seal_shrink(int fd);
/* Whether the file open as fd is sealed against shrinking: 1 or 0. */
int sk__sys_shrink_sealed(int fd);
/* Reserves (allocates and zeroes) size bytes of fd. -ENOSPC when full. */
int sk__sys_reserve(int fd, uint64_t size);
/* Reserves len bytes of fd from off (fallocate; the file grows to cover them). */
int sk__sys_reserve_at(int fd, uint64_t off, uint64_t len);
/* Sets the file's length (ftruncate). */
int sk__sys_truncate(int fd, uint64_t size);
/* Gives the unnamed file fd the name; -EEXIST if taken. Never follows symlinks. */
int sk__sys_publish(int fd, const char *name);
/* Opens an existing name without following symlinks or blocking on FIFOs;
 * SK_ESYMLINK for a symlink, SK_EFOREIGN for anything but a regular file.
 * Reports the file's size, permission bits and owner (each may be NULL). */
int sk__sys_open(const char *name, bool rdonly, int *fd, uint64_t *size, uint32_t *mode, uid_t *uid);
/* Reads up to n bytes at off; returns bytes read (short only at end of file) or -errno. */
ssize_t sk__sys_pread(int fd, void *buf, size_t n, uint64_t off);
int sk__sys_map(int fd, size_t size, bool rdonly, void **out);
/* As sk__sys_map, at an address that is a multiple of align (a power of two;
 * segments ask for 2 MiB so that 2 MiB pages of the file can map whole).
 * Usually one mmap: it is first tried, without replacing anything, just below
 * the last aligned mapping this process made. */
int sk__sys_map_aligned(int fd, size_t size, bool rdonly, size_t align, void **out);
/* A read-only descriptor of the file behind fd (through /proc/self/fd): a
 * mapping made from it cannot become writable, as sealing requires. */
int sk__sys_reopen_rdonly(int fd, int *out);
/* Replaces the mapping at addr with one of fd (MAP_FIXED): same address. */
int sk__sys_remap_fixed(int fd, void *addr, size_t size, bool rdonly);
void sk__sys_unmap(void *p, size_t size);
void sk__sys_close(int fd);
int sk__sys_unlink(const char *name);
/* Unlinks name only if it still is the file open as fd (same device and inode). */
int sk__sys_unlink_if_same(const char *name, int fd);
/* Start time of pid in clock ticks since boot (/proc/PID/stat field 22). */
int sk__sys_proc_start(pid_t pid, uint64_t *start);
/* The calling process's pid and start time, and the calling thread's id:
 * cached, and forgotten in a child forked through fork(3). The start time
 * is read from /proc/self, so it is right even when /proc belongs to an
 * ancestor pid namespace; 0 when /proc cannot tell. */
void sk__sys_self(pid_t *pid, uint64_t *start);
/* The calling process's namespaces: the device of the namespace files and
 * the inodes of its pid and time namespaces (0 when unknown; timens 0 on
 * kernels without time namespaces). Cached like sk__sys_self. */
void sk__sys_self_ns(uint64_t *dev, uint64_t *pidns, uint64_t *timens);
/* What this process's /proc shows: *own when it is the process's own pid
 * namespace (its NSpid line has one entry), *all when it is the initial pid
 * namespace, where every process of the machine appears. */
void sk__sys_proc_view(bool *own, bool *all);
/* One process seen in /proc: its pid namespace (ns_known 0 when its
 * namespace link cannot be read: another user's process), its pid inside
 * that namespace (the last NSpid entry) and its start time. */
typedef struct sk__proc {
	uint64_t ns_dev, ns_ino;
	uint64_t start;
	int32_t pid;
	uint32_t ns_known;
} sk__proc;
/* Every process in /proc; *ticks is the boot clock (in the units of start
 * times) just before the listing began. The caller frees *procs. */
int sk__sys_proc_scan(sk__proc **procs, size_t *n, uint64_t *ticks);
pid_t sk__sys_tid(void);
int sk__sys_random(void *buf, size_t n);
int64_t sk__sys_realtime_ns(void);
/* Names in the shm directory, sorted; the caller frees each and the array. */
int sk__sys_list(char ***names, size_t *n);

/* ---- Clocks, futexes, child processes, waiting ---- */

/* CLOCK_MONOTONIC in ns: every timeout and deadline of shmkit. */
int64_t sk__sys_monotonic_ns(void);
/* Sleeps while *addr == expected (a shared, non-private futex), at most
 * timeout_ns (negative: no limit). Returns 0 when woken or the value
 * differed, -ETIMEDOUT, or -EINTR; callers re-check their condition. */
int sk__sys_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns);
/* Wakes up to count sleepers on addr; SK__WAKE_ALL wakes every one. */
void sk__sys_futex_wake(uint32_t *addr, int count);
#define SK__WAKE_ALL 0x7fffffff /* INT_MAX: the kernel's "all" for FUTEX_WAKE */
/* Threads of the calling process (from /proc/self/status), or -errno. */
int sk__sys_thread_count(void);
/* An anonymous MAP_SHARED mapping, inherited by forked children. */
int sk__sys_map_shared_anon(size_t size, void **out);
/* fork(2); in the child, sets PR_SET_PDEATHSIG to SIGKILL (and exits if
 * the parent is already gone). Returns the pid, 0 in the child, or -errno. */
pid_t sk__sys_fork_tied(void);
/* The calling process's pid, asked of the kernel each time (sk__sys_self
 * caches it): a process forked by any means gets its own. */
pid_t sk__sys_pid(void);
/* Ends the calling process at once with code (_exit: no atexit handlers, no
 * stdio flush; see sk__sys_flush_stdio). */
__attribute__((noreturn)) void sk__sys_exit(int code);
int sk__sys_pidfd_open(pid_t pid, int *fd);
/* Reaps the child behind pidfd. Returns 1 and fills *exit_code (-1 if it
 * did not exit) and *sig (0 if no signal killed it) when it is dead, 0 when
 * it still runs (only without block), or -errno. */
int sk__sys_pidfd_reap(int pidfd, bool block, int *exit_code, int *sig);
int sk__sys_kill(pid_t pid, int sig);
/* Waits for the child pid to end (no zombie is left). */
void sk__sys_reap_pid(pid_t pid);
int sk__sys_eventfd(int *fd);
void sk__sys_eventfd_signal(int fd);
void sk__sys_eventfd_drain(int fd);
/* Waits until one of fds is readable or timeout_ms passes (-1: no limit).
 * Sets ready[i] for each readable fd (all false on failure); returns how
 * many, 0 on timeout, or -errno. */
int sk__sys_wait_readable(const int *fds, int n, int timeout_ms, bool *ready);
/* Sleeps ns nanoseconds (signals do not cut it short). */
void sk__sys_sleep_ns(int64_t ns);
/* Flushes every stdio stream, so a fork does not duplicate buffered output. */
void sk__sys_flush_stdio(void);

/* ---- Lock owners (used by src/sync.c) ---- */

/* Who the calling thread is, cached per thread and forgotten in a child
 * forked through fork(3). */
typedef struct sk__ident {
	uint64_t lockword; /* sync.c's owner word for this thread; 0 until it derives it */
	uint64_t recid;    /* sync.c: tid | pid << 32, as its lock record holds them */
	pid_t pid, tid;
	uint32_t pidns;   /* inode of the process's pid namespace; 0 if unknown */
	uint32_t proc_ok; /* 1 if /proc is this namespace's and gave the start time */
	uint64_t start;   /* the thread's start time, clock ticks since boot; 0 if unknown */
	/* sync.c: the last held lock word a trylock of this thread found, and
	 * when (monotonic ns): first seen, last looked at cheaply, last fully. */
	uint64_t busy_word;
	int64_t busy_first, busy_quick, busy_full;
} sk__ident;
extern __thread sk__ident sk__me __attribute__((tls_model("initial-exec")));
/* Fills sk__me for the calling thread (lockword 0). */
void sk__sys_ident_fill(void);
/* 0 if thread tid (a number in the caller's pid namespace) exists, -ESRCH if
 * not, or -errno (tkill with signal 0: nothing is sent). */
int sk__sys_thread_exists(pid_t tid);
/* State letter and start time (clock ticks since boot) of thread tid, from
 * /proc/tid/task/tid/stat: 0, -ESRCH if /proc does not show it, or -errno. */
int sk__sys_thread_stat(pid_t tid, char *state, uint64_t *start);
/* A pidfd that becomes readable when thread tid has exited (Linux 6.9), or,
 * on older kernels, when tid leads a process and that process has exited. */
int sk__sys_thread_pidfd(pid_t tid, int *fd);
/* 1 if no process pid runs (none, or only its zombie), 0 if it runs, -errno. */
int sk__sys_proc_gone(pid_t pid);
/* 1 if fd is readable now, 0 if not, or -errno (poll with no wait). */
int sk__sys_fd_ready(int fd);
/* CLOCK_BOOTTIME in clock ticks: the unit and clock of /proc start times. */
uint64_t sk__sys_boot_ticks(void);

#endif
