/*
 * shmkit/segment.h: named, self-describing shared-memory segments.
 *
 * A segment is a file in /dev/shm made of a 4096-byte header page followed by
 * page-aligned data. The header (docs/format.md) records the kind of segment,
 * its sizes, dtype and shape, who created it and when, and a checksum; every
 * open validates a private copy of it against the file before using anything
 * it says. Space for the
 * whole segment is reserved at creation, so a full /dev/shm fails at create
 * time with -ENOSPC instead of killing a process with SIGBUS later. (A
 * process that may write a named segment's file can still truncate it, and
 * processes that have it mapped then get SIGBUS past the new end: tmpfs files
 * cannot be sealed. Anonymous segments are sealed against shrinking.)
 *
 * A segment is published atomically: it is built as an unnamed file and given
 * its name only once the header is complete, so no process ever opens a
 * half-made segment, and a failed create leaves nothing behind.
 *
 * Pages: a segment whose file is at least SK_HUGE_MIN bytes gets 2 MiB pages
 * by default, without root, where the kernel allows it: its creator turns
 * every whole 2 MiB of the file into one transparent huge page
 * (MADV_COLLAPSE, Linux 6.1+) before filling, and every process maps such
 * files on a 2 MiB boundary, so that one page-table entry maps 2 MiB in each.
 * A fresh process then reads the data at almost its warm speed, and a first
 * fill is many times faster. Where the kernel refuses, the segment has 4 KiB
 * pages and says why (sk_segment_info.huge_status); creation never fails for
 * want of huge pages. SK_CREATE_NOHUGE opts out; SK_CREATE_HUGE asks for
 * them whatever the size (shmkit/common.h).
 *
 * Handles (sk_segment *) are process-local. A handle stays valid in a forked
 * child (the mapping is inherited); close it in each process that holds it.
 * Functions taking a handle are safe to call from several threads only when
 * the handle is not being closed at the same time.
 */
#ifndef SHMKIT_SEGMENT_H
#define SHMKIT_SEGMENT_H

#include <stdint.h>
#include <sys/types.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kinds of segments. Values are stored in headers: never renumber. */
typedef enum sk_kind {
	SK_KIND_RAW = 1,   /* untyped bytes */
	SK_KIND_ARRAY = 2, /* typed N-d array (shmkit/array.h) */
	SK_KIND_BITS = 3,  /* bit array (shmkit/bits.h) */
	SK_KIND_VALUE = 4, /* shared scalar (shmkit/value.h) */
	SK_KIND_MUTEX = 5, /* the named primitives of shmkit/sync.h */
	SK_KIND_RWLOCK = 6,
	SK_KIND_SEM = 7,
	SK_KIND_BARRIER = 8,
	SK_KIND_EVENT = 9,
	SK_KIND_COND = 10,
	SK_KIND_QUEUE = 11, /* message queue (shmkit/queue.h) */
} sk_kind;

/* Short name of a kind ("raw", "array", "bits"), or "unknown". */
const char *sk_kind_name(int kind);

#define SK_MAX_DIMS 32

/* Files of at least this many bytes get 2 MiB pages by default (their whole
 * 2 MiB blocks; the rest of the file, less than 2 MiB, stays in 4 KiB
 * pages, so no memory is spent beyond the file). Smaller ones keep 4 KiB
 * pages unless made with SK_CREATE_HUGE. */
#define SK_HUGE_MIN (UINT64_C(4) << 20)

/* How a segment came by its pages (sk_segment_info.huge_status), as its
 * creator recorded it. Values are stored in segments: never renumber. */
enum {
	SK_HUGE_UNKNOWN = 0,   /* no record: made by a shmkit before 2 MiB pages by default, or a copy
				* of a segment's file (the record describes the file it was made for) */
	SK_HUGE_ALL = 1,       /* every whole 2 MiB block of the file is one 2 MiB page (huge_bytes) */
	SK_HUGE_PARTIAL = 2,   /* some blocks are (huge_bytes); the kernel refused the others (huge_errno) */
	SK_HUGE_REFUSED = 3,   /* 4 KiB pages: the kernel refused (huge_errno: EINVAL where it has no
				* MADV_COLLAPSE (before 6.1), THP is compiled out, denied for shmem or
				* disabled for the process; ENOMEM or EAGAIN when no 2 MiB page was free) */
	SK_HUGE_SMALL = 4,     /* 4 KiB pages: the file is smaller than SK_HUGE_MIN */
	SK_HUGE_OPTED_OUT = 5, /* 4 KiB pages: made with SK_CREATE_NOHUGE */
	SK_HUGE_HUGETLB = 6,   /* hugetlb pages from the pool (SK_CREATE_HUGE | SK_CREATE_ANON) */
};
/* A short phrase for an SK_HUGE_* status ("2 MiB pages", "4 KiB pages: ..."). */
const char *sk_huge_str(int status);

/* What a segment's header says, plus what the file system says about it. */
typedef struct sk_segment_info {
	char name[SK_NAME_MAX + 1];
	int kind;                    /* sk_kind */
	uint32_t version;            /* header layout version */
	uint64_t data_size;          /* bytes of data */
	uint64_t data_offset;        /* where data starts in the file */
	uint64_t file_size;          /* bytes the file occupies */
	pid_t creator_pid;           /* process that created the segment, as its own pid namespace numbers it */
	uint64_t creator_start;      /* its start time, clock ticks since boot (as its time namespace sees it) */
	uint64_t creator_pidns;      /* inode of its pid namespace (layout 2); 0 if not recorded */
	int creator_alive;           /* 1: that process (pid, start time, namespace) still runs; 0: it has died;
				      * -1: cannot be judged from here (another container's pid namespace,
				      * another time namespace, layout 1, /proc unreadable): see sk_segment_gc */
	int64_t ctime_ns;            /* creation time, ns since the Unix epoch */
	sk_dtype dtype;              /* arrays: element type; 0 otherwise */
	int ndim;                    /* arrays: number of dimensions */
	uint64_t shape[SK_MAX_DIMS]; /* arrays: extent of each dimension */
	uint64_t nitems;             /* arrays: elements; bits: bits; raw: bytes */
	int locked;                  /* arrays, values: 1 if it carries a lock */
	int owned;                   /* 1 if removed once its creator has died (SK_CREATE_OWNED) */
	int frozen;                  /* 1 after sk_segment_freeze: read-only opens only */
	uint64_t page_size;          /* pages behind the data: 4096, or 2 MiB. From a handle
				      * (sk_segment_info_get): what its own mapping uses (hugetlb, or
				      * transparent huge pages mapped whole: checked by faulting in the first
				      * one and reading /proc/self/smaps). From sk_segment_stat: what the file
				      * holds (2 MiB when huge_bytes is not 0) */
	uint32_t mode;               /* permission bits of the file */
	uid_t uid;                   /* owner of the file */
	int sealed;                  /* 1: the kernel refuses to shrink the file (anonymous segments), so
				      * no process can make this mapping SIGBUS by truncating it; 0 for named
				      * segments (docs/security.md) */
	int huge_status;             /* SK_HUGE_*: how the file came by its pages, as its creator recorded */
	int huge_errno;              /* the kernel's errno (positive) with SK_HUGE_REFUSED and SK_HUGE_PARTIAL */
	uint64_t huge_bytes;         /* bytes of the file in 2 MiB pages, as its creator recorded; 0 if none */
} sk_segment_info;

typedef struct sk_segment sk_segment;

/* Creates a raw segment of `size` data bytes (zero-filled) under `name`, or
 * under a generated unique name when name is NULL (read it back with
 * sk_segment_name). Fails with -EEXIST if the name is taken, SK_EBADNAME for an
 * invalid name, -ENOSPC if /dev/shm cannot hold it (nothing is left behind).
 * On success *out is a read-write handle the caller closes with sk_segment_close. */
int sk_segment_create(const char *name, uint64_t size, const sk_create_opts *opts, sk_segment **out);

/* Publishes a segment made with SK_CREATE_UNPUBLISHED (of any kind: pass
 * sk_array_segment(a), sk_bits_segment(b), ...): links it under name, or
 * under a generated name when name is NULL, atomically (a name that exists
 * is never replaced). From then on it is an ordinary named segment and
 * sk_segment_name returns the name. Returns 0; -EEXIST if the name is
 * taken, SK_EBADNAME for an invalid one (the segment then stays unpublished
 * and another name can be tried, or it can be closed, which discards it);
 * -EINVAL if seg is not an unpublished segment. Do not call it while other
 * threads use the handle. The create-fill-publish sequence:
 *     sk_create_opts o = { .flags = SK_CREATE_UNPUBLISHED };
 *     sk_array_create(NULL, SK_FLOAT64, 2, shape, &o, &a);
 *     fill(sk_array_data(a));
 *     rc = sk_segment_publish(sk_array_segment(a), "name");
 */
int sk_segment_publish(sk_segment *seg, const char *name);

/* Gives the segment this handle maps one more name: a hard link to the same
 * file, not a copy. name, or a generated name when NULL (written to out,
 * outlen >= SK_NAME_MAX + 1; out may be NULL). Until every name is removed
 * and every mapping gone the memory stays, so a process can hand a segment
 * to another under a name of its own (the Python module does so when it
 * pickles a segment) and remove its own name meanwhile. The new name shares
 * the segment's header, owner and ownership: an owned segment's names all go
 * once its creator died (sk_segment_gc). Returns 0; -EEXIST (name taken),
 * SK_EBADNAME, -ENOENT (the handle's name is gone), -ESTALE (the name now
 * belongs to another file), -EINVAL for an anonymous segment (it cannot have
 * a name). An unpublished segment keeps its own publish step. */
int sk_segment_link(const sk_segment *seg, const char *name, char *out, size_t outlen);

/* Opens an existing segment of any kind by name. flags: SK_RDWR or
 * SK_RDONLY, plus SK_OPEN_ANY_OWNER. Refuses with SK_EOWNER a file owned by
 * neither the caller's effective uid nor root unless SK_OPEN_ANY_OWNER is
 * given (checked on the opened descriptor: what is checked is what is
 * mapped; sk_segment_stat tells who the owner is). Validates the header
 * against the file (SK_ETOOSMALL, SK_EFOREIGN, SK_EVERSION, SK_ECHECKSUM,
 * SK_ECORRUPT, SK_ETRUNCATED, SK_ESYMLINK, -ENOENT, -EACCES) and maps it.
 * Attaching costs the same for 1 MiB or 1 TiB: as many system calls as a
 * plain shm_open and mmap (open, fstat, mmap, close); the descriptor is read
 * once from the mapping into the handle's private copy and validated there.
 * (A writer truncating the file at that very moment can make that one read
 * SIGBUS, as it can any later access: docs/security.md.) */
int sk_segment_open(const char *name, int flags, sk_segment **out);

/* Unmaps the segment and frees the handle. The name stays (see
 * sk_segment_unlink). Pointers into the data are invalid afterwards.
 * Accepts NULL. Returns 0. */
int sk_segment_close(sk_segment *seg);

/* Removes the name system-wide. Processes that have the segment mapped keep
 * their mapping; the memory is freed when the last one closes it. Refuses
 * entries that are not shmkit segments (SK_EFOREIGN, SK_ESYMLINK) so that
 * foreign files in /dev/shm are never removed by mistake; a shmkit segment
 * with a corrupt header can still be unlinked. Async-signal-safe: it
 * allocates nothing and calls only open, fstat, pread, close and unlink, so a
 * signal handler may remove the process's own segments with it. */
int sk_segment_unlink(const char *name);
/* Removes the name whatever it names, including what sk_segment_unlink
 * refuses: another program's file, a file too short to be a segment, a
 * symlink (the link, never its target). The name is checked first
 * (SK_EBADNAME), so nothing outside /dev/shm can be reached; otherwise 0 or
 * -errno (-ENOENT, -EISDIR for a directory, -EACCES). For a deliberate
 * removal only, such as `shmkit rm --force`. Async-signal-safe. */
int sk_segment_unlink_any(const char *name);

/* Reads and validates the header of the named segment without mapping it.
 * Errors as sk_segment_open, except that any owner's segment is read (only
 * into a private copy): info->uid names the owner. */
int sk_segment_stat(const char *name, sk_segment_info *info);

/* Accessors of an open handle. */
const char *sk_segment_name(const sk_segment *seg);
void *sk_segment_data(const sk_segment *seg);    /* NULL when data_size is 0 */
uint64_t sk_segment_size(const sk_segment *seg); /* data bytes */
int sk_segment_kind(const sk_segment *seg);
int sk_segment_flags(const sk_segment *seg); /* SK_RDONLY or SK_RDWR as opened */
/* Fills info from the handle's validated copy of the header. Returns 0. */
int sk_segment_info_get(const sk_segment *seg, sk_segment_info *info);
/* What sk_segment_stat says of the segment's file, from the open handle: the
 * header as validated when it was opened (nothing is read or validated
 * again, so a caller that opens a segment to look inside it needs no
 * separate stat), page_size the pages the file holds, not what this mapping
 * uses (sk_segment_info_get). Still answers after the name is gone. Returns
 * 0, or -EINVAL for a NULL argument. */
int sk_segment_fstat(const sk_segment *seg, sk_segment_info *info);

/* Removes the names of owned segments (SK_CREATE_OWNED) whose creator has
 * died: no process with that pid and start time runs in the creator's pid
 * namespace (a reused pid does not fool it). A creator is judged only where
 * it can be: in its own pid namespace, or from an ancestor namespace that
 * sees the creator's (the host sees its containers'); a segment whose
 * creator cannot be judged (a sibling container, another time namespace,
 * layout 1 segments that record no namespace, /proc unreadable) is never
 * removed. Processes that have a removed segment mapped keep it. With
 * SK_GC_DRY_RUN nothing is removed. report (may be NULL) is called for each
 * segment removed (or that would be). Returns how many, or a negative code
 * if /dev/shm cannot be read. The library also runs this at create time, at
 * most once per 10 s per process and reading at most 256 headers, from
 * where that process's previous sweep stopped (a random place for its
 * first), so every name is reached in turn; SHMKIT_SWEEP=0 turns that off. */
#define SK_GC_DRY_RUN 0x1
int sk_segment_gc(int flags, int (*report)(const char *name, const sk_segment_info *info, void *arg), void *arg);

/* What gc decided for an owned segment, and why. */
enum {
	SK_GC_DEAD = 0,          /* removed (or would be, dry run): its creator has died */
	SK_GC_ALIVE = 1,         /* kept: its creator still runs */
	SK_GC_NS_HIDDEN = 2,     /* kept: its creator's pid namespace is not visible from here */
	SK_GC_TIMENS = 3,        /* kept: its creator's time namespace differs: start times do not compare */
	SK_GC_UNKNOWN = 4,       /* kept: /proc cannot tell (not mounted or readable, no start time recorded) */
	SK_GC_OLD_LAYOUT = 5,    /* kept: a layout 1 header records no pid namespace */
	SK_GC_UNLINK_FAILED = 6, /* kept: its creator has died, but removing the name failed (error given) */
};
/* Called by sk_segment_gc_explain for every owned segment examined: its
 * verdict (SK_GC_*), and for SK_GC_UNLINK_FAILED the error (-EPERM for
 * another user's name in a sticky /dev/shm, -ESTALE when the name was
 * replaced meanwhile), else 0. The return value is ignored. */
typedef int (*sk_gc_explain_fn)(const char *name, const sk_segment_info *info, int verdict, int error, void *arg);
/* As sk_segment_gc, telling fn about every owned segment, kept or removed. */
int sk_segment_gc_explain(int flags, sk_gc_explain_fn fn, void *arg);
/* A sentence saying what a verdict means. */
const char *sk_gc_verdict_str(int verdict);

/* Anonymous segments (SK_CREATE_ANON) have no name: the handle holds a memfd,
 * forked children inherit the mapping, and any process can be given the
 * segment over a Unix socket. The memory is freed when the last process that
 * has it (mapped or as a descriptor) lets go, however it ends: nothing can
 * leak into /dev/shm. sk_segment_name is "" for them. The memfd is sealed
 * against shrinking at creation (F_SEAL_SHRINK), so no process it reaches can
 * truncate it under another's mapping; sk_segment_open_fd adds that seal to
 * a memfd that arrives without it when it can (sk_segment_info.sealed). */

/* The memfd of an anonymous segment, or the unnamed file of an unpublished
 * one (owned by the handle); -1 for a named one. */
int sk_segment_fd(const sk_segment *seg);
/* Attaches to the segment behind a descriptor (one from sk_segment_recv,
 * or any descriptor of a segment file); validates it like sk_segment_open,
 * owner check (SK_EOWNER, SK_OPEN_ANY_OWNER) included. The handle keeps its
 * own duplicate: the caller still owns fd. */
int sk_segment_open_fd(int fd, int flags, sk_segment **out);
/* Sends the segment (anonymous or named) over a connected Unix socket as a
 * descriptor (SCM_RIGHTS); the receiver needs no name. A named segment is
 * opened again by name for this: -ESTALE if the name now belongs to another
 * file than the one the handle maps. */
int sk_segment_send(int sock, const sk_segment *seg);
/* Receives a segment sent by sk_segment_send and attaches to it (flags as
 * sk_segment_open_fd: a segment from another user needs SK_OPEN_ANY_OWNER).
 * -EBADMSG if the message carried no segment, -ECONNRESET if the peer closed. */
int sk_segment_recv(int sock, int flags, sk_segment **out);

/* Freezes the segment: from now on it opens read-only only (read-write opens
 * of it fail with SK_EFROZEN), and this handle becomes read-only. For an
 * anonymous segment the kernel enforces it: the memfd is sealed against
 * writes, which fails with -EBUSY (nothing changed) while any process still
 * maps it writable. For a named one, processes that already have it mapped
 * writable keep that mapping: freeze before sharing; -ESTALE if its name now
 * belongs to another file. Cannot be undone. */
int sk_segment_freeze(sk_segment *seg);

/* Called by sk_segment_list for each entry of /dev/shm. status is 0 for a
 * valid shmkit segment (info filled), or the error that opening it would give
 * (SK_EFOREIGN for a foreign file, SK_ECHECKSUM for a corrupt header, -EACCES,
 * ...; info then has only name set). Return 0 to go on, non-zero to stop. */
typedef int (*sk_list_fn)(const char *name, int status, const sk_segment_info *info, void *arg);

/* Visits every entry of /dev/shm in name order. Foreign and corrupt entries
 * are reported through status, never cause a failure. Returns the number of
 * entries visited, the callback's non-zero value if it stopped early, or a
 * negative code if /dev/shm cannot be read. */
int sk_segment_list(sk_list_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
