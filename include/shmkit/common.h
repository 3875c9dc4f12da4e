/*
 * shmkit/common.h: error codes, flags, creation options and dtypes shared by
 * every shmkit module.
 *
 * Every fallible shmkit function returns an int (or int64_t where a count can
 * exceed 2^31): zero or a non-negative count on success, a negative code on
 * failure. OS failures are returned as -errno; shmkit's own failures use the
 * SK_E* codes below, which lie far below the errno range. sk_strerror() names
 * both. The library never prints and never exits.
 */
#ifndef SHMKIT_COMMON_H
#define SHMKIT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMKIT_VERSION_MAJOR  0
#define SHMKIT_VERSION_MINOR  1
#define SHMKIT_VERSION_PATCH  0
#define SHMKIT_VERSION_STRING "0.1.0"

/* shmkit's own error codes. All are negative and far from -errno values. */
enum {
	SK_EBADNAME = -1001,        /* name is not 1..200 chars of [A-Za-z0-9._-], or . / .. */
	SK_ETOOSMALL = -1002,       /* file too small to hold a shmkit header */
	SK_EFOREIGN = -1003,        /* not a shmkit segment: foreign magic or not a regular file */
	SK_EVERSION = -1004,        /* header layout version newer than this library */
	SK_ECHECKSUM = -1005,       /* header checksum does not match its contents */
	SK_ECORRUPT = -1006,        /* header fields are inconsistent */
	SK_ETRUNCATED = -1007,      /* file holds less than the header describes */
	SK_EKIND = -1008,           /* segment is of another kind (array opened as bits, ...) */
	SK_ETYPE = -1009,           /* dtype, shape or length differs from what was expected */
	SK_ESYMLINK = -1010,        /* the name in /dev/shm is a symbolic link: never followed */
	SK_EREADONLY = -1011,       /* write through a handle opened read-only */
	SK_ENOTFOUND = -1012,       /* a search found nothing (sk_bits_find_next_*) */
	SK_EWORKER = -1013,         /* a pool worker failed: its function returned an error, it crashed or was killed */
	SK_ETHREADED = -1014,       /* the process runs several threads: forking workers is unsafe */
	SK_EOWNERDEAD = -1015,      /* acquired, but the previous holder died holding it: repair the data */
	SK_ENOTRECOVERABLE = -1016, /* a holder died and the lock was released unrepaired: unusable */
	SK_ECLOSED = -1017,         /* the queue is closed (and, for consumers, empty) */
	SK_EFROZEN = -1018,         /* the segment is frozen: it opens read-only only */
	SK_EOWNER = -1019,          /* the segment's file belongs to another user (neither you nor root) */
	SK_EBROKEN = -1031,         /* the barrier is broken (abort, a party's timeout): reset it */
	SK_ENOTHELD = -1032,        /* a condition wait ended without its mutex: the caller does not hold it */
};

/* Returns a static, human-readable description of a shmkit return code:
 * one of the SK_E* codes above or a negated errno. Thread-safe. */
const char *sk_strerror(int code);

/* Now on CLOCK_MONOTONIC, in nanoseconds: the clock every shmkit timeout is
 * measured on, for callers that compute deadlines or time what they do.
 * Thread-safe; never fails. */
int64_t sk_monotonic_ns(void);

/* Open flags. */
#define SK_RDWR   0x0 /* map read-write (default) */
#define SK_RDONLY 0x1 /* map PROT_READ: writes through the mapping fault */
/* Attach even when the segment's file belongs to another user. By default
 * every open (of any kind, by name or by descriptor) refuses, with SK_EOWNER,
 * a segment whose file owner is neither the caller's effective uid nor root:
 * another local user could have made the name first and filled it with what
 * it likes. Pass this flag only for deliberate sharing between users, and
 * treat what such a segment holds as that user's input. */
#define SK_OPEN_ANY_OWNER 0x2

/* Segment names: 1..SK_NAME_MAX characters of [A-Za-z0-9._-], not "." or "..". */
#define SK_NAME_MAX 200

/* Returns 0 when name is a valid segment name, SK_EBADNAME otherwise. Pure: touches no system state. */
int sk_name_check(const char *name);

/* Creation flags (sk_create_opts.flags). */
/* Arrays: carry a robust mutex in the header (sk_array_lock). */
#define SK_CREATE_LOCKED 0x1
/* Values: no lock; operations are lock-free atomics. */
#define SK_CREATE_RAW 0x2
/* Any kind: the name goes once the creating process has died (sk_segment_gc,
 * `shmkit gc`, or the sweep at create time). */
#define SK_CREATE_OWNED 0x4
/* Any kind: no name at all (a memfd). Shared by fork or sk_segment_send; the
 * memory is freed when the last process lets go, however it ends. */
#define SK_CREATE_ANON 0x8
/* Any kind: 2 MiB pages whatever the size, and the data on a 2 MiB boundary
 * (data_offset 2 MiB). Anonymous segments take hugetlb pages from the pool
 * (vm.nr_hugepages) when it has room; otherwise, and for named segments, the
 * file is rounded up to whole 2 MiB pages and turned into transparent huge
 * pages as by default (see shmkit/segment.h, SK_HUGE_MIN). Without this flag
 * segments of at least SK_HUGE_MIN bytes get 2 MiB pages anyway, with their
 * data at offset 4096 and no memory beyond the file. */
#define SK_CREATE_HUGE 0x10
/* Any kind: create the segment without a name (name must be NULL), so that
 * its creator can fill it through the handle before anyone can open it;
 * sk_segment_publish(seg, name) then gives it its name atomically. Until
 * then it is an unnamed file that goes away with its last handle: a creator
 * killed while filling leaves nothing behind. Not with SK_CREATE_ANON. */
#define SK_CREATE_UNPUBLISHED 0x20
/* Any kind: 4 KiB pages only: no 2 MiB pages by default (not with SK_CREATE_HUGE). */
#define SK_CREATE_NOHUGE 0x40

/* Options for every _create call. Pass NULL for the defaults. Zero-initialise
 * the struct and set what you need: a zero field means "default". */
typedef struct sk_create_opts {
	uint32_t mode;    /* permission bits 0..0777 applied exactly (no umask); 0 means 0600.
			   * Setuid, setgid and sticky bits are refused (-EINVAL). */
	uint32_t flags;   /* SK_CREATE_*: OWNED and ANON for any kind, LOCKED and RAW where allowed */
	uint64_t resv[6]; /* must be zero */
} sk_create_opts;

/* Element types of arrays. Values are stored in segment headers: never renumber. */
typedef enum sk_dtype {
	SK_BOOL = 1,
	SK_INT8 = 2,
	SK_INT16 = 3,
	SK_INT32 = 4,
	SK_INT64 = 5,
	SK_UINT8 = 6,
	SK_UINT16 = 7,
	SK_UINT32 = 8,
	SK_UINT64 = 9,
	SK_FLOAT32 = 10,
	SK_FLOAT64 = 11,
} sk_dtype;

/* Bytes per element of dtype, or 0 for an unknown dtype. */
size_t sk_dtype_size(sk_dtype dtype);
/* NumPy-style name ("int64", "float32", "bool", ...), or NULL for an unknown dtype. */
const char *sk_dtype_name(sk_dtype dtype);
/* Parses a NumPy-style name ("int64", "i8", "float64", "f8", "bool", ...).
 * Returns the dtype, or 0 when the name is unknown. */
sk_dtype sk_dtype_from_name(const char *name);

/* The dtype codes run from 1 to SK_DTYPE_MAX without gaps. */
#define SK_DTYPE_MAX 11

/* What front ends need to know of a dtype, in one place: the library, the
 * command, the .npy code and the Python module derive their tables from
 * it. Elements are stored little-endian (the only byte order shmkit runs
 * on), so the typestr is what NumPy writes for them on such a machine. */
typedef struct sk_dtype_traits {
	sk_dtype dtype;
	uint32_t size;     /* bytes per element: 1, 2, 4 or 8 */
	char kind;         /* NumPy's kind: 'b' bool, 'i' signed integer, 'u' unsigned integer, 'f' float */
	char format;       /* struct-module / buffer-protocol format character: '?' 'b' 'h' 'i' 'q' 'B' 'H'
			    * 'I' 'Q' 'f' 'd' */
	char typestr[4];   /* NumPy array-interface typestr and .npy descr: "|b1", "|i1", "<i2", ..., "<f8" */
	const char *name;  /* NumPy's name, as sk_dtype_name */
	const char *ctype; /* the C type of an element: "bool", "int8_t", ..., "float", "double" */
} sk_dtype_traits;

/* The traits of dtype (a static, immutable struct; thread-safe), or NULL for
 * an unknown dtype. Every dtype 1..SK_DTYPE_MAX has traits. */
const sk_dtype_traits *sk_dtype_traits_of(sk_dtype dtype);

/* Library version as a string ("0.1.0"). */
const char *sk_version(void);

#ifdef __cplusplus
}
#endif
#endif
