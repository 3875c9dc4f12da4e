/*
 * sys/linux.c: the OS layer. Every system call shmkit makes is here; the
 * modules above are written against these sk__sys_* functions only.
 *
 * Segments live as files in /dev/shm, the tmpfs behind shm_open(3) on Linux.
 * Creation uses O_TMPFILE: the file is built without a name (sized, reserved
 * with fallocate, header written) and linked under its name last, so no other
 * process sees a partial segment and an interrupted create leaves nothing.
 * Opening uses O_NOFOLLOW | O_NONBLOCK so a planted symlink is not followed
 * and a planted FIFO does not block.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../os.h"
#include "shmkit/common.h"

static int path_of(const char *name, char *buf, size_t len)
{
	/* Not snprintf: every open builds a path, and formatting costs more
	 * than a tenth of a plain shm_open. */
	size_t dir = sizeof(SK__SHM_DIR) - 1, n = strlen(name);
	if (dir + 1 + n >= len)
		return SK_EBADNAME;
	memcpy(buf, SK__SHM_DIR, dir);
	buf[dir] = '/';
	memcpy(buf + dir + 1, name, n + 1);
	return 0;
}

/* Gives a new file (f, or -1 with errno set) exactly `mode`, whatever the umask. */
static int new_file(int f, uint32_t mode, int *fd, uid_t *owner)
{
	if (f < 0)
		return -errno;
	if (fchmod(f, mode & 0777) < 0) {
		int e = -errno;
		close(f);
		return e;
	}
	*fd = f;
	*owner = geteuid();
	return 0;
}

int sk__sys_tmpfile(uint32_t mode, int *fd, uid_t *owner)
{
	return new_file(open(SK__SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), mode, fd, owner);
}

int sk__sys_memfd(uint32_t mode, int *fd, uid_t *owner)
{
	return new_file(memfd_create("shmkit", MFD_CLOEXEC | MFD_ALLOW_SEALING), mode, fd, owner);
}

int sk__sys_memfd_huge(uint32_t mode, int *fd, uid_t *owner)
{
	return new_file(memfd_create("shmkit", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB), mode, fd, owner);
}

size_t sk__sys_fs_page(int fd)
{
	struct statfs s;
	if (fstatfs(fd, &s) < 0 || s.f_bsize < 4096)
		return 4096;
	return (size_t)s.f_bsize;
}

uint64_t sk__sys_fs_room(int fd)
{
	struct statfs s;
	if (fstatfs(fd, &s) < 0 || s.f_blocks == 0)
		return UINT64_MAX; /* cannot tell, or no limit */
	uint64_t r;
	if (__builtin_mul_overflow((uint64_t)s.f_bavail, (uint64_t)s.f_bsize, &r))
		return UINT64_MAX;
	return r;
}

/* The last device asked about and its page, as one word: dev << 8 | log2(page)
 * (the kernel's device numbers have 32 bits), 0 when none yet. */
static uint64_t fs_page_memo;

size_t sk__sys_fs_page_of(int fd, uint64_t dev)
{
	uint64_t m = __atomic_load_n(&fs_page_memo, __ATOMIC_RELAXED);
	if (m && m >> 8 == dev)
		return (size_t)1 << (m & 63);
	size_t page = sk__sys_fs_page(fd);
	if (dev < (UINT64_C(1) << 56) && !(page & (page - 1)))
		__atomic_store_n(&fs_page_memo, dev << 8 | (uint64_t)__builtin_ctzll(page), __ATOMIC_RELAXED);
	return page;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1 */
#endif

int sk__sys_collapse(void *p)
{
	return madvise(p, (size_t)2 << 20, MADV_COLLAPSE) == 0 ? 0 : -errno;
}

int sk__sys_thp_mapped(const void *p)
{
	(void)*(const volatile uint8_t *)p;
	FILE *f = fopen("/proc/self/smaps", "re");
	if (!f)
		return 0;
	char line[4096];
	uintptr_t a = (uintptr_t)p;
	bool inside = false;
	int mapped = 0;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line */
			if (inside)
				break;
			inside = lo <= a && a < hi;
		} else if (inside && (!strncmp(line, "ShmemPmdMapped:", 15) || !strncmp(line, "FilePmdMapped:", 14))) {
			unsigned long kb = 0;
			if (sscanf(strchr(line, ':') + 1, "%lu", &kb) == 1 && kb)
				mapped = 1;
		}
	}
	fclose(f);
	return mapped;
}

#define FD_TAG "SKFD"

int sk__sys_send_fd(int sock, int fd)
{
	char tag[] = FD_TAG;
	struct iovec iov = { .iov_base = tag, .iov_len = 4 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	memset(&ctl, 0, sizeof ctl);
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	for (;;) {
		ssize_t n = sendmsg(sock, &m, MSG_NOSIGNAL);
		if (n == 4)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

int sk__sys_recv_fd(int sock, int *fd)
{
	char tag[4];
	struct iovec iov = { .iov_base = tag, .iov_len = 4 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf
	};
	ssize_t n;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	int got = -1;
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&got, CMSG_DATA(c), sizeof got);
	if (n != 4 || memcmp(tag, FD_TAG, 4) || got < 0 || (m.msg_flags & MSG_CTRUNC)) {
		if (got >= 0)
			close(got);
		return n == 0 ? -ECONNRESET : -EBADMSG; /* not a segment sent by sk_segment_send */
	}
	*fd = got;
	return 0;
}

int sk__sys_fd_stat(int fd, uint64_t *size, uint32_t *mode, uid_t *uid)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return SK_EFOREIGN;
	*size = (uint64_t)st.st_size;
	*mode = (uint32_t)(st.st_mode & 07777);
	*uid = st.st_uid;
	return 0;
}

int sk__sys_fd_file(int fd, sk__file *f)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return SK_EFOREIGN;
	f->size = (uint64_t)st.st_size;
	f->dev = (uint64_t)st.st_dev;
	f->ino = (uint64_t)st.st_ino;
	f->mode = (uint32_t)(st.st_mode & 07777);
	f->uid = st.st_uid;
	return 0;
}

int sk__sys_fd_ident(int fd, uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

uid_t sk__sys_euid(void)
{
	return geteuid();
}

int sk__sys_seal_writes(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK) == 0)
		return 0;
	return -errno;
}

int sk__sys_seal_shrink(int fd)
{
	return fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0 ? 0 : -errno;
}

int sk__sys_shrink_sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & F_SEAL_SHRINK) ? 1 : 0;
}

int sk__sys_dup(int fd, int *out)
{
	int f = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (f < 0)
		return -errno;
	*out = f;
	return 0;
}

int sk__sys_reserve(int fd, uint64_t size)
{
	if (size == 0)
		return 0;
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	for (;;) {
		if (fallocate(fd, 0, 0, (off_t)size) == 0)
			return 0;
		if (errno == EINTR)
			continue; /* tmpfs undoes a partial allocation: start again */
		if (errno != EOPNOTSUPP)
			return -errno;
		break;
	}
	/* No fallocate on this file system: posix_fallocate writes every block,
	 * which also reserves them. */
	int e = posix_fallocate(fd, 0, (off_t)size);
	return e ? -e : 0;
}

int sk__sys_reserve_at(int fd, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (off > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off)
		return -EFBIG;
	for (;;) {
		if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
			return 0;
		if (errno != EINTR)
			break;
	}
	if (errno != EOPNOTSUPP)
		return -errno;
	int e = posix_fallocate(fd, (off_t)off, (off_t)len);
	return e ? -e : 0;
}

int sk__sys_truncate(int fd, uint64_t size)
{
	if (size > (uint64_t)INT64_MAX)
		return -EFBIG;
	while (ftruncate(fd, (off_t)size) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int sk__sys_publish(int fd, const char *name)
{
	char path[sizeof(SK__SHM_DIR) + SK_NAME_MAX + 2];
	int rc = path_of(name, path, sizeof path);
	if (rc)
		return rc;
	/* linkat fails with EEXIST if anything (file, symlink, FIFO) has the
	 * name, and never follows a symlink at the destination. */
	if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM && errno != EACCES)
		return -errno;
	/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works for all. */
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

int sk__sys_open_file(const char *name, bool rdonly, int *fd, sk__file *st)
{
	char path[sizeof(SK__SHM_DIR) + SK_NAME_MAX + 2];
	int rc = path_of(name, path, sizeof path);
	if (rc)
		return rc;
	int f = open(path, (rdonly ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (f < 0) {
		if (errno == ELOOP)
			return SK_ESYMLINK;
		if (errno == EISDIR)
			return SK_EFOREIGN;
		return -errno;
	}
	rc = sk__sys_fd_file(f, st);
	if (rc) {
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

int sk__sys_open(const char *name, bool rdonly, int *fd, uint64_t *size, uint32_t *mode, uid_t *uid)
{
	sk__file st;
	int rc = sk__sys_open_file(name, rdonly, fd, &st);
	if (rc)
		return rc;
	if (size)
		*size = st.size;
	if (mode)
		*mode = st.mode;
	if (uid)
		*uid = st.uid;
	return 0;
}

ssize_t sk__sys_pread(int fd, void *buf, size_t n, uint64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int sk__sys_map(int fd, size_t size, bool rdonly, void **out)
{
	void *p = mmap(NULL, size, rdonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

int sk__sys_reopen_rdonly(int fd, int *out)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	*out = f;
	return 0;
}

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17 */
#endif

/* Where the next aligned mapping is tried first: the start of the last one
 * this process made (moved back up when that one is unmapped). The kernel
 * places mappings top-down, so the room just below is usually free; a
 * placement there is one mmap, where finding an aligned place otherwise takes
 * two and a partial unmap (together about three times as long). The address
 * is derived from one the kernel chose, so it is as random as the kernel's. */
static uintptr_t aligned_next;

int sk__sys_map_aligned(int fd, size_t size, bool rdonly, size_t align, void **out)
{
	if (align <= 4096)
		return sk__sys_map(fd, size, rdonly, out);
	int prot = rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
	size_t span = (size + align - 1) & ~(align - 1);
	uintptr_t next = __atomic_load_n(&aligned_next, __ATOMIC_RELAXED);
	if (span >= size && next > span && next - span >= ((uintptr_t)1 << 32)) {
		uint8_t *a = (uint8_t *)((next - span) & ~(uintptr_t)(align - 1));
		/* Never replaces anything: fails with EEXIST where something is mapped. */
		void *p = mmap(a, size, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
		if (p == a) {
			__atomic_store_n(&aligned_next, (uintptr_t)a, __ATOMIC_RELAXED);
			*out = p;
			return 0;
		}
		if (p != MAP_FAILED)
			munmap(p, size); /* a kernel before 4.17 took the address as a hint only */
	}
	/* Reserve room for the alignment, place the mapping, give back the rest. */
	uint8_t *r = mmap(NULL, size + align, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	uint8_t *a = (uint8_t *)(((uintptr_t)r + align - 1) & ~(uintptr_t)(align - 1));
	void *p = mmap(a, size, prot, MAP_SHARED | MAP_FIXED, fd, 0);
	if (p == MAP_FAILED) {
		int e = -errno;
		munmap(r, size + align);
		return e;
	}
	if (a > r)
		munmap(r, (size_t)(a - r));
	if (r + size + align > a + size)
		munmap(a + size, (size_t)(r + size + align - (a + size)));
	__atomic_store_n(&aligned_next, (uintptr_t)a, __ATOMIC_RELAXED);
	*out = p;
	return 0;
}

int sk__sys_remap_fixed(int fd, void *addr, size_t size, bool rdonly)
{
	void *p = mmap(addr, size, rdonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
	return p == MAP_FAILED ? -errno : 0;
}

void sk__sys_unmap(void *p, size_t size)
{
	if (!p)
		return;
	munmap(p, size);
	/* The last aligned mapping is gone: the next one may take its place. */
	uintptr_t at = (uintptr_t)p;
	__atomic_compare_exchange_n(&aligned_next, &at, at + ((size + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1)),
				    false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

void sk__sys_close(int fd)
{
	if (fd >= 0)
		close(fd); /* Linux closes the descriptor even when close reports EINTR */
}

int sk__sys_unlink(const char *name)
{
	char path[sizeof(SK__SHM_DIR) + SK_NAME_MAX + 2];
	int rc = path_of(name, path, sizeof path);
	if (rc)
		return rc;
	return unlink(path) == 0 ? 0 : -errno;
}

int sk__sys_unlink_if_same(const char *name, int fd)
{
	char path[sizeof(SK__SHM_DIR) + SK_NAME_MAX + 2];
	int rc = path_of(name, path, sizeof path);
	if (rc)
		return rc;
	struct stat a, b;
	if (fstat(fd, &a) < 0 || lstat(path, &b) < 0)
		return -errno;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return -ESTALE; /* the name now belongs to another file: leave it */
	return unlink(path) == 0 ? 0 : -errno;
}

/* Field 22 of a /proc/.../stat file. */
static int read_start(const char *path, uint64_t *start)
{
	char buf[1024];
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = sk__sys_pread(f, buf, sizeof buf - 1, 0);
	close(f);
	if (n <= 0)
		return n < 0 ? (int)n : -ESRCH;
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: fields
	 * are counted from the last ')'. starttime is field 22. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EIO;
	*start = v;
	return 0;
}

int sk__sys_proc_start(pid_t pid, uint64_t *start)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	return read_start(path, start);
}

/* The inode of the initial pid namespace (PROC_PID_INIT_INO in the kernel's
 * include/linux/proc_ns.h, fixed since Linux 3.8). */
#define INIT_PIDNS_INO UINT64_C(0xEFFFFFFC)

/* Device and inode of a namespace link such as /proc/self/ns/pid. */
static int ns_ident(const char *path, uint64_t *dev, uint64_t *ino)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -errno;
	*dev = (uint64_t)st.st_dev;
	*ino = (uint64_t)st.st_ino;
	return 0;
}

/* The last number of the NSpid line of a /proc/.../status file: the pid in
 * the process's own pid namespace; the count of numbers in *levels. */
static int read_nspid(const char *path, int32_t *pid, int *levels)
{
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	char buf[4096];
	ssize_t n = sk__sys_pread(f, buf, sizeof buf - 1, 0);
	close(f);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nNSpid:");
	if (!p)
		return -ENOTSUP; /* a kernel before 4.1 */
	p += 7;
	long last = -1;
	int count = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')
			break;
		char *end;
		last = strtol(p, &end, 10);
		p = end;
		count++;
	}
	if (count == 0 || last <= 0 || last > INT32_MAX)
		return -EIO;
	*pid = (int32_t)last;
	*levels = count;
	return 0;
}
/* getpid and gettid are system calls (glibc caches neither), and locks need
 * them on every acquisition: they are cached, per process and per thread,
 * and forgotten in a child by a pthread_atfork handler. */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static pid_t cached_pid;
static uint64_t cached_start;
static int cached_ns_ok; /* cached_ns is valid */
static uint64_t cached_ns[3];
static __thread pid_t cached_tid __attribute__((tls_model("initial-exec")));

static void forget_ids(void)
{
	cached_tid = 0;
	__atomic_store_n(&cached_pid, 0, __ATOMIC_RELEASE);
	/* A child forked after unshare(CLONE_NEWPID) lives in another pid namespace. */
	__atomic_store_n(&cached_ns_ok, 0, __ATOMIC_RELEASE);
}

static void register_forget(void)
{
	pthread_atfork(NULL, NULL, forget_ids);
}

void sk__sys_self(pid_t *pid, uint64_t *start)
{
	pid_t me = __atomic_load_n(&cached_pid, __ATOMIC_ACQUIRE);
	if (!me) {
		pthread_once(&atfork_once, register_forget);
		me = getpid();
		uint64_t s = 0;
		/* /proc/self, not /proc/<getpid()>: when /proc is an ancestor pid
		 * namespace's, the latter is another process. */
		if (read_start("/proc/self/stat", &s) < 0)
			s = 0;
		cached_start = s;
		__atomic_store_n(&cached_pid, me, __ATOMIC_RELEASE);
	}
	*pid = me;
	*start = cached_start;
}

void sk__sys_self_ns(uint64_t *dev, uint64_t *pidns, uint64_t *timens)
{
	if (!__atomic_load_n(&cached_ns_ok, __ATOMIC_ACQUIRE)) {
		pthread_once(&atfork_once, register_forget);
		uint64_t d = 0, p = 0, t = 0, td = 0;
		if (ns_ident("/proc/self/ns/pid", &d, &p) < 0)
			d = p = 0;
		/* No time namespaces (before Linux 5.6): 0, as for every process. */
		if (p && (ns_ident("/proc/self/ns/time", &td, &t) < 0 || td != d))
			t = 0;
		cached_ns[0] = d;
		cached_ns[1] = p;
		cached_ns[2] = t;
		__atomic_store_n(&cached_ns_ok, 1, __ATOMIC_RELEASE);
	}
	*dev = cached_ns[0];
	*pidns = cached_ns[1];
	*timens = cached_ns[2];
}

void sk__sys_proc_view(bool *own, bool *all)
{
	int32_t pid;
	int levels = 0;
	*own = read_nspid("/proc/self/status", &pid, &levels) == 0 && levels == 1 && pid == getpid();
	uint64_t d = 0, ino = 0;
	if (ns_ident("/proc/1/ns/pid", &d, &ino) == 0) {
		*all = ino == INIT_PIDNS_INO;
	} else { /* pid 1 is another user's: only our own namespace can tell */
		uint64_t pidns, timens;
		sk__sys_self_ns(&d, &pidns, &timens);
		*all = *own && pidns == INIT_PIDNS_INO;
	}
}

int sk__sys_proc_scan(sk__proc **procs, size_t *count, uint64_t *ticks)
{
	*ticks = sk__sys_boot_ticks();
	/* A process whose NSpid has one entry lives in /proc's own namespace:
	 * known without reading its namespace link (which needs the right to
	 * trace it) when that namespace is ours. */
	bool own, all;
	sk__sys_proc_view(&own, &all);
	uint64_t my_dev, my_pidns, my_timens;
	sk__sys_self_ns(&my_dev, &my_pidns, &my_timens);
	DIR *d = opendir("/proc");
	if (!d)
		return -errno;
	sk__proc *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long q = strtol(e->d_name, &end, 10);
		if (*end || q <= 0 || e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char path[64];
		sk__proc p = { 0 };
		int levels;
		snprintf(path, sizeof path, "/proc/%ld/status", q);
		if (read_nspid(path, &p.pid, &levels) < 0)
			continue; /* gone, or no NSpid: nothing to match against */
		snprintf(path, sizeof path, "/proc/%ld/stat", q);
		if (read_start(path, &p.start) < 0)
			continue;
		snprintf(path, sizeof path, "/proc/%ld/ns/pid", q);
		int r = ns_ident(path, &p.ns_dev, &p.ns_ino);
		if (r == -ENOENT || r == -ESRCH)
			continue; /* exited meanwhile */
		p.ns_known = r == 0;
		if (r && levels == 1 && own && my_pidns) {
			p.ns_dev = my_dev;
			p.ns_ino = my_pidns;
			p.ns_known = 1;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			sk__proc *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n++] = p;
	}
	closedir(d);
	if (rc) {
		free(v);
		return rc;
	}
	*procs = v;
	*count = n;
	return 0;
}

pid_t sk__sys_tid(void)
{
	if (!cached_tid) {
		pthread_once(&atfork_once, register_forget);
		cached_tid = gettid();
	}
	return cached_tid;
}

int sk__sys_random(void *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = getrandom((char *)buf + got, n - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int64_t sk__sys_realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int sk__sys_list(char ***names, size_t *count)
{
	DIR *d = opendir(SK__SHM_DIR);
	if (!d)
		return -errno;
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		if (!(v[n] = strdup(e->d_name))) {
			rc = -ENOMEM;
			break;
		}
		n++;
		errno = 0;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_names);
	*names = v;
	*count = n;
	return 0;
}

int64_t sk__sys_monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sk__sys_futex_wait(uint32_t *addr, uint32_t expected, int64_t timeout_ns)
{
	struct timespec ts, *tp = NULL;
	if (timeout_ns >= 0) {
		/* FUTEX_WAIT takes a relative timeout measured on CLOCK_MONOTONIC. */
		ts.tv_sec = (time_t)(timeout_ns / 1000000000);
		ts.tv_nsec = (long)(timeout_ns % 1000000000);
		tp = &ts;
	}
	if (syscall(SYS_futex, addr, FUTEX_WAIT, expected, tp, NULL, 0) == 0)
		return 0;
	if (errno == EAGAIN)
		return 0; /* the value had already changed */
	return -errno;
}

void sk__sys_futex_wake(uint32_t *addr, int count)
{
	syscall(SYS_futex, addr, FUTEX_WAKE, count, NULL, NULL, 0);
}

int sk__sys_thread_count(void)
{
	int f = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -errno;
	char buf[4096];
	ssize_t n = sk__sys_pread(f, buf, sizeof buf - 1, 0);
	close(f);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nThreads:");
	return p ? atoi(p + 9) : -EIO;
}

int sk__sys_map_shared_anon(size_t size, void **out)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	*out = p;
	return 0;
}

pid_t sk__sys_fork_tied(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent) /* the parent died before prctl took effect */
			_exit(0);
	}
	return pid;
}

pid_t sk__sys_pid(void)
{
	return getpid();
}

void sk__sys_exit(int code)
{
	_exit(code);
}

int sk__sys_pidfd_open(pid_t pid, int *fd)
{
	long f = syscall(SYS_pidfd_open, pid, 0);
	if (f < 0)
		return -errno;
	*fd = (int)f;
	return 0;
}

int sk__sys_pidfd_reap(int pidfd, bool block, int *exit_code, int *sig)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	for (;;) {
		if (waitid(P_PIDFD, (id_t)pidfd, &si, WEXITED | (block ? 0 : WNOHANG)) == 0)
			break;
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid == 0)
		return 0; /* still running */
	*exit_code = si.si_code == CLD_EXITED ? si.si_status : -1;
	*sig = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED ? si.si_status : 0;
	return 1;
}

int sk__sys_kill(pid_t pid, int sig)
{
	return kill(pid, sig) == 0 ? 0 : -errno;
}

void sk__sys_reap_pid(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

int sk__sys_eventfd(int *fd)
{
	int f = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

void sk__sys_eventfd_signal(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof one) < 0 && errno == EINTR)
		;
}

void sk__sys_eventfd_drain(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
}

int sk__sys_wait_readable(const int *fds, int n, int timeout_ms, bool *ready)
{
	for (int i = 0; i < n; i++)
		ready[i] = false;
	struct pollfd stack[64], *p = n <= 64 ? stack : calloc((size_t)n, sizeof *p);
	if (!p)
		return -ENOMEM;
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	int r;
	do
		r = poll(p, (nfds_t)n, timeout_ms);
	while (r < 0 && errno == EINTR);
	int rc = r < 0 ? -errno : r;
	for (int i = 0; i < n; i++)
		ready[i] = r > 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR));
	if (p != stack)
		free(p);
	return rc;
}

void sk__sys_sleep_ns(int64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) };
	while (ns > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void sk__sys_flush_stdio(void)
{
	fflush(NULL);
}

/* ---- Lock owners: who the calling thread is, and whether another thread
 * still lives (src/sync.c judges a lock holder's death with these). ---- */

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd for one thread, readable when that thread exits */
#endif

__thread sk__ident sk__me __attribute__((tls_model("initial-exec")));

/* Per process: pid, pid namespace, whether /proc is this namespace's. A child
 * forked through fork(3) forgets them (and its thread's identity). */
static pthread_once_t ident_once = PTHREAD_ONCE_INIT;
static struct {
	pid_t pid; /* stored last (release): the others are valid once it is set */
	uint32_t pidns;
	uint32_t proc_ok;
} proc_id;

static void ident_forget(void)
{
	memset(&sk__me, 0, sizeof sk__me);
	__atomic_store_n(&proc_id.pid, 0, __ATOMIC_RELEASE);
}

static void ident_register(void)
{
	pthread_atfork(NULL, NULL, ident_forget);
}

/* Parses the state letter (field 3) and start time (field 22) of a
 * /proc/.../stat line. The command name (field 2) may hold spaces and
 * parentheses: fields are counted from the last ')'. */
static int parse_stat(char *buf, char *state, uint64_t *start)
{
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EIO;
	*state = p[2];
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p + 1, &end, 10);
	if (errno || end == p + 1)
		return -EIO;
	*start = v;
	return 0;
}

int sk__sys_thread_stat(pid_t tid, char *state, uint64_t *start)
{
	if (tid <= 0)
		return -EINVAL;
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)tid, (int)tid);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = sk__sys_pread(f, buf, sizeof buf - 1, 0);
	close(f);
	if (n <= 0)
		return n < 0 ? (int)n : -ESRCH;
	buf[n] = '\0';
	return parse_stat(buf, state, start);
}

/* Whether /proc shows this process's own pid namespace: /proc/thread-self
 * must name this thread, and pid 1 of /proc must live in our namespace (when
 * we may look). A /proc of another namespace (a container that kept the
 * host's) would make judging other threads by number unsound. */
static bool proc_is_ours(pid_t pid, pid_t tid, uint32_t ns)
{
	char want[64], got[64];
	snprintf(want, sizeof want, "%d/task/%d", (int)pid, (int)tid);
	ssize_t n = readlink("/proc/thread-self", got, sizeof got - 1);
	if (n <= 0)
		return false;
	got[n] = '\0';
	if (strcmp(want, got) != 0)
		return false;
	struct stat st;
	if (stat("/proc/1/ns/pid", &st) == 0)
		return st.st_ino == ns;
	return errno == EACCES || errno == EPERM;
}

void sk__sys_ident_fill(void)
{
	pthread_once(&ident_once, ident_register);
	sk__ident id = { .tid = gettid() };
	id.pid = __atomic_load_n(&proc_id.pid, __ATOMIC_ACQUIRE);
	if (id.pid) {
		id.pidns = __atomic_load_n(&proc_id.pidns, __ATOMIC_RELAXED);
		id.proc_ok = __atomic_load_n(&proc_id.proc_ok, __ATOMIC_RELAXED);
	} else {
		/* Threads that race here compute the same facts. */
		id.pid = getpid();
		struct stat st;
		/* Namespace inodes are 32-bit (proc_alloc_inum); 0 means unknown. */
		id.pidns = stat("/proc/self/ns/pid", &st) == 0 && st.st_ino <= UINT32_MAX ? (uint32_t)st.st_ino : 0;
		id.proc_ok = id.pidns && proc_is_ours(id.pid, id.tid, id.pidns);
		__atomic_store_n(&proc_id.pidns, id.pidns, __ATOMIC_RELAXED);
		__atomic_store_n(&proc_id.proc_ok, id.proc_ok, __ATOMIC_RELAXED);
		__atomic_store_n(&proc_id.pid, id.pid, __ATOMIC_RELEASE);
	}
	char state;
	if (!id.proc_ok || sk__sys_thread_stat(id.tid, &state, &id.start) != 0) {
		id.start = 0;
		id.proc_ok = 0;
	}
	sk__me = id; /* lockword stays 0: sync.c derives it */
}

int sk__sys_thread_exists(pid_t tid)
{
	if (tid <= 0)
		return -EINVAL;
	if (syscall(SYS_tkill, tid, 0) == 0 || errno == EPERM)
		return 0; /* EPERM: it exists, owned by another user */
	return -errno;
}

int sk__sys_thread_pidfd(pid_t tid, int *fd)
{
	if (tid <= 0)
		return -EINVAL;
	long f = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (f < 0 && errno == EINVAL)
		f = syscall(SYS_pidfd_open, tid, 0); /* before 6.9: a process leader only */
	if (f < 0)
		return -errno;
	*fd = (int)f;
	return 0;
}

int sk__sys_proc_gone(pid_t pid)
{
	if (pid <= 0)
		return -EINVAL;
	if (kill(pid, 0) < 0 && errno == ESRCH)
		return 1;
	long f = syscall(SYS_pidfd_open, pid, 0);
	if (f < 0)
		return errno == ESRCH ? 1 : -errno;
	int r = sk__sys_fd_ready((int)f);
	close((int)f);
	return r;
}

int sk__sys_fd_ready(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

uint64_t sk__sys_boot_ticks(void)
{
	static long hz;
	if (!hz) {
		long h = sysconf(_SC_CLK_TCK);
		__atomic_store_n(&hz, h > 0 ? h : 100, __ATOMIC_RELAXED);
	}
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	long t = __atomic_load_n(&hz, __ATOMIC_RELAXED);
	return (uint64_t)ts.tv_sec * (uint64_t)t + (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)t);
}
