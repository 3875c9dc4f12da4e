/*
 * format.h: the on-disk format of a segment (docs/format.md has every byte):
 * the descriptor, the live area's fixed places (lock, freeze mark, creation
 * record), page sizes, the data sizes of the fixed-size kinds. Layer:
 * segment. static_asserts pin every offset; a change needs a new layout
 * version.
 */
#ifndef SHMKIT_SRC_FORMAT_H
#define SHMKIT_SRC_FORMAT_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit/segment.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shmkit's segment format is little-endian; big-endian hosts are not supported"
#endif

#define SK__MAGIC          "\x89SHMKIT\n"
#define SK__LAYOUT_VERSION 2u    /* written; version 1 is still read (no namespace record) */
#define SK__HEADER_SIZE    4096u /* the header page: descriptor + live area */
#define SK__DESC_SIZE      512u  /* the checksummed descriptor at offset 0 */
#define SK__PAGE           4096u
#define SK__HUGE_PAGE      (UINT64_C(2) << 20)

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

/* The descriptor's checksum: FNV-1a 64 of its bytes 0..503. */
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

/* x rounded up to a multiple of a. */
static inline uint64_t sk__round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

#endif
