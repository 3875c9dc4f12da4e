/*
 * internal.h: private declarations shared by shmkit's modules (sk__ prefix).
 * Nothing here is part of the public API or ABI.
 */
#ifndef SHMKIT_INTERNAL_H
#define SHMKIT_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmkit.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shmkit's segment format is little-endian; big-endian hosts are not supported"
#endif

/* ---- The segment header (docs/format.md) ---- */

#define SK__MAGIC          "\x89SHMKIT\n"
#define SK__LAYOUT_VERSION 2u    /* written; version 1 is still read (no namespace record) */
#define SK__HEADER_SIZE    4096u /* the header page: descriptor + live area */
#define SK__DESC_SIZE      512u  /* the checksummed descriptor at offset 0 */
#define SK__PAGE           4096u

/* The descriptor: immutable after creation, checksummed. Little-endian,
 * fixed width, no pointers. Offsets are asserted below and documented in
 * docs/format.md; changing any of them needs a new layout version.
 * Version 2 took 24 bytes of version 1's reserved space for the creator's
 * namespaces; in version 1 they are zero, as all reserved bytes. */
typedef struct sk__header {
	uint8_t magic[8];            /* 0 */
	uint32_t version;            /* 8 */
	uint32_t header_size;        /* 12 */
	uint32_t kind;               /* 16 */
	uint32_t flags;              /* 20 */
	uint64_t data_offset;        /* 24 */
	uint64_t data_size;          /* 32 */
	uint64_t file_size;          /* 40 */
	int32_t creator_pid;         /* 48 */
	uint32_t resv0;              /* 52 */
	uint64_t creator_start;      /* 56 */
	int64_t ctime_ns;            /* 64 */
	uint32_t dtype;              /* 72 */
	uint32_t ndim;               /* 76 */
	uint64_t nitems;             /* 80 */
	uint64_t shape[SK_MAX_DIMS]; /* 88 */
	uint64_t ns_dev;             /* 344: v2: device of the creator's namespace files, 0 unknown */
	uint64_t pidns;              /* 352: v2: inode of its pid namespace, 0 unknown */
	uint64_t timens;             /* 360: v2: inode of its time namespace, 0 none or unknown */
	uint8_t resv[136];           /* 368 */
	uint64_t checksum;           /* 504: FNV-1a 64 of bytes 0..503 */
} sk__header;

static_assert(sizeof(sk__header) == SK__DESC_SIZE, "descriptor must be 512 bytes");
static_assert(offsetof(sk__header, shape) == 88, "shape offset");
static_assert(offsetof(sk__header, ns_dev) == 344, "ns_dev offset");
static_assert(offsetof(sk__header, timens) == 360, "timens offset");
static_assert(offsetof(sk__header, resv) == 368, "resv offset");
static_assert(offsetof(sk__header, checksum) == 504, "checksum offset");

uint64_t sk__header_checksum(const sk__header *h);

#define SK__HF_LOCKED     0x1u  /* header flag: a robust mutex lives at SK__LOCK_OFFSET */
#define SK__HF_OWNED      0x2u  /* header flag: removed once the creator has died */
#define SK__LOCK_OFFSET   512u  /* in the live area of the header page */
#define SK__FREEZE_OFFSET 1024u /* live area: {u32 magic "SKFZ", u32 frozen} */
#define SK__FREEZE_MAGIC  0x5a464b53u
#define SK__CREC_OFFSET   1088u       /* live area: the creation record below */
#define SK__CREC_MAGIC    0x43524b53u /* "SKRC" */

/* The creation record (docs/format.md): written once by the creator before
 * the segment can be opened, in the live area, so not covered by the
 * checksum and never trusted: a reader copies it once and ignores it when it
 * does not validate. It carries a quick hash of the descriptor (a match
 * stands in for recomputing the slow FNV checksum) and what pages the file
 * got at creation, for the file with this device and inode (a copy of the
 * file is not described by it). */
typedef struct sk__crec {
	uint32_t magic;       /* 0: SK__CREC_MAGIC */
	uint16_t version;     /* 4: 1 */
	uint16_t flags;       /* 6: 0 */
	uint64_t desc_hash;   /* 8: sk__desc_hash of descriptor bytes 0..511 */
	uint64_t dev, ino;    /* 16: the file the pages fields describe */
	uint32_t huge_status; /* 32: SK_HUGE_* */
	int32_t huge_errno;   /* 36: the kernel's errno when it refused 2 MiB pages, else 0 */
	uint64_t huge_bytes;  /* 40: bytes of the file in 2 MiB pages */
	uint64_t huge_first;  /* 48: file offset of the first of them */
	uint64_t resv;        /* 56: zero */
} sk__crec;
static_assert(sizeof(sk__crec) == 64, "creation record must be 64 bytes");
static_assert(offsetof(sk__crec, huge_status) == 32, "creation record layout");
/* The quick hash of a descriptor's 512 bytes (docs/format.md). */
uint64_t sk__desc_hash(const sk__header *h);

/* Data sizes of the fixed-size kinds. */
#define SK__QUEUE_CTL  4096u /* a queue's control block before its ring (layout versions 2, 3) */
#define SK__VALUE_SIZE 192u  /* sk_mutex (128) + the element (8) + reserved */

/* ---- Kinds ----
 *
 * Each kind describes itself to the segment layer: its module (array.c,
 * bits.c, value.c, queue.c, sync.c; raw segments are segment.c's own)
 * defines a sk__kind and passes it to sk__segment_create and
 * sk__segment_open, and the segment layer, having validated the header's
 * common fields, asks it about the rest. The operations that take any kind
 * (sk_segment_open, _open_fd, _recv, _stat, _list, _gc, sk_kind_name) live
 * in catalog.c, above the kinds, which holds the table of them all. */
typedef struct sk__kind {
	uint32_t id;      /* SK_KIND_*; 0: any kind (catalog.c's, whose check looks the kind up) */
	const char *name; /* as sk_kind_name gives it */
	uint32_t hflags;  /* the SK__HF_* a header of this kind may carry besides SK__HF_OWNED */
	/* The kind's own header fields (dtype, ndim, shape, nitems, data_size) of
	 * a header whose common fields are valid: 0 or SK_ECORRUPT. */
	int (*check)(const sk__header *h);
} sk__kind;
extern const sk__kind sk__kind_raw;
/* Each kind module's own (catalog.c gathers them). */
extern const sk__kind sk__kind_array, sk__kind_bits, sk__kind_value, sk__kind_queue;
extern const sk__kind sk__kind_mutex, sk__kind_rwlock, sk__kind_sem, sk__kind_barrier, sk__kind_event, sk__kind_cond;
/* A header's kind fields against kind k: SK_EKIND when it is of another
 * kind, SK_ECORRUPT when it carries a header flag k does not take or k's
 * check fails, else 0. For the any kind (id 0), its check decides. */
int sk__kind_check(const sk__header *h, const sk__kind *k);
/* Whether the header has no dimensions: ndim 0 and every shape entry 0. */
bool sk__header_no_shape(const sk__header *h);

/* Validates a descriptor read from a file of actual_size bytes (`got` bytes
 * of it could be read): the common fields, then the kind fields with kind
 * (NULL: not checked; the create-time sweep). rec (NULL: none) is a creation
 * record copied from the same file: when it validates and its hash matches,
 * the FNV checksum is not recomputed. Returns 0 or the SK_E* code that
 * describes the problem. */
int sk__header_validate_kind(const sk__header *h, size_t got, uint64_t actual_size, const sk__crec *rec,
			     const sk__kind *kind);
/* As sk__header_validate_kind with every kind catalog.c knows and no
 * creation record (catalog.c; the header fuzzer's entry). */
int sk__header_validate(const sk__header *h, size_t got, uint64_t actual_size);

/* What a typed create puts in the header besides the common fields. */
typedef struct sk__seg_desc {
	const sk__kind *kind;
	sk_dtype dtype;
	int ndim;
	const uint64_t *shape;
	uint64_t nitems;
	uint64_t data_size;
	uint32_t hflags; /* SK__HF_* */
	/* Optional: initialises the mapped segment (base = header page) before
	 * its name is published. Returns 0 or a negative code. */
	int (*init)(uint8_t *base, const void *arg);
	const void *init_arg;
} sk__seg_desc;

struct sk_segment {
	char name[SK_NAME_MAX + 1];
	uint8_t *base;     /* start of the mapping (the header page) */
	size_t map_size;   /* bytes mapped */
	int flags;         /* SK_RDONLY or SK_RDWR */
	uint32_t mode;     /* permission bits when opened */
	uid_t uid;         /* owner when opened */
	uint64_t dev, ino; /* the file mapped: a reopen by name must find the same one */
	int fd;            /* anonymous segments: the memfd, kept open; unpublished ones: their
			    * unnamed file until sk_segment_publish; -1 for named ones */
	bool unpublished;  /* made with SK_CREATE_UNPUBLISHED and not yet published */
	size_t page_size;  /* of the file system behind it: 4096, or 2 MiB for hugetlb */
	int huge_status;   /* SK_HUGE_*, from the creation record (SK_HUGE_UNKNOWN without one) */
	int huge_errno;
	uint64_t huge_bytes, huge_first;
	sk__header hdr; /* validated private copy of the descriptor */
};

/* Process-local handles (segments, arrays, bit arrays), zeroed: from a small
 * static pool, malloc beyond it. A forked worker's first malloc costs several
 * copy-on-write faults of the allocator's pages (about 5 us for malloc, 10 us
 * for calloc here, more than the rest of an attach); the pool's first page
 * holds its bitmap and the first slots, so a first attach takes one. */
void *sk__handle_alloc(size_t size);
void sk__handle_free(void *p);

int sk__segment_create(const char *name, const sk__seg_desc *d, const sk_create_opts *opts, sk_segment **out);
/* Creates a segment and hands it to wrap(seg, out), which builds the typed
 * handle; if wrap fails, the segment is closed and its name removed. */
int sk__segment_create_wrapped(const char *name, const sk__seg_desc *d, const sk_create_opts *opts,
			       int (*wrap)(sk_segment *seg, void *out), void *out);
/* The creation flags every kind accepts, besides its own. */
#define SK__CREATE_COMMON \
	((uint32_t)(SK_CREATE_OWNED | SK_CREATE_ANON | SK_CREATE_HUGE | SK_CREATE_NOHUGE | SK_CREATE_UNPUBLISHED))
#define SK__HUGE_PAGE (UINT64_C(2) << 20)
/* Opens a segment of the given kind (catalog.c's any kind: every kind it
 * knows); another kind is SK_EKIND. flags: SK_RDONLY and SK_OPEN_ANY_OWNER;
 * without the latter a file owned by neither the effective uid nor root
 * gives SK_EOWNER. Every kind's _open comes here. */
int sk__segment_open(const char *name, int flags, const sk__kind *kind, sk_segment **out);
#define SK__OPEN_FLAGS ((int)(SK_RDONLY | SK_OPEN_ANY_OWNER))
/* sk_segment_open_fd, sk_segment_stat, sk_segment_list and
 * sk_segment_gc_explain with the kinds that kind accepts (catalog.c passes
 * its any kind). */
int sk__segment_open_fd(int fd, int flags, const sk__kind *kind, sk_segment **out);
int sk__segment_stat(const char *name, sk_segment_info *info, const sk__kind *kind);
int sk__segment_list(sk_list_fn fn, void *arg, const sk__kind *kind);
int sk__segment_gc(int flags, sk_gc_explain_fn fn, void *arg, const sk__kind *kind);
void sk__info_from_header(const sk__header *h, sk_segment_info *info);

static inline uint64_t sk__round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* ---- OS layer (src/sys/linux.c): the only code that calls the OS ---- */

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

/* ---- SIMD kernels (src/simd.c) ---- */

enum { SK__SIMD_PORTABLE = 0, SK__SIMD_POPCNT = 1, SK__SIMD_AVX2 = 2, SK__SIMD_AVX512 = 3 };

typedef struct sk__simd_ops {
	const char *name;
	uint64_t (*popcount)(const uint64_t *w, size_t n);
	void (*and_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*or_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*xor_)(uint64_t *d, const uint64_t *a, const uint64_t *b, size_t n);
	void (*not_)(uint64_t *d, const uint64_t *a, size_t n);
} sk__simd_ops;

/* The ops in use (chosen once from the CPU and SHMKIT_SIMD). */
const sk__simd_ops *sk__simd(void);
/* Whether this CPU can run a level. */
bool sk__simd_supported(int level);
/* Forces a level for this process (tests and benchmarks). -ENOTSUP if the CPU
 * cannot run it, -EINVAL for an unknown level. Not thread-safe. */
int sk__simd_force(int level);

/* ---- OS layer: processes and waiting (src/sys/linux.c) ---- */

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

/* A hint to the CPU inside a spin-wait loop. */
static inline void sk__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* A timeout in ns (negative: none) as a CLOCK_MONOTONIC deadline (-1: none). */
static inline int64_t sk__deadline(int64_t timeout_ns)
{
	return timeout_ns < 0 ? -1 : sk__sys_monotonic_ns() + timeout_ns;
}

/* Time left before a deadline: -1 without one, 0 once it passed. */
static inline int64_t sk__time_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t r = deadline - sk__sys_monotonic_ns();
	return r > 0 ? r : 0;
}

/* ---- OS layer: lock owners (src/sys/linux.c, used by src/sync.c) ---- */

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
