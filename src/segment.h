/*
 * segment.h: the segment layer's private interface (segment.c): the handle,
 * create and open for the kinds, the any-kind machinery catalog.c exposes.
 * Layer: segment.
 */
#ifndef SHMKIT_SRC_SEGMENT_H
#define SHMKIT_SRC_SEGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "kind.h"
#include "shmkit/segment.h"

/* A segment handle: process-local, never in shared memory. */
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

/* Creates a segment of d's kind: checks the arguments, writes the descriptor,
 * gives the file its pages, runs d->init, then publishes the name (none for
 * SK_CREATE_ANON or SK_CREATE_UNPUBLISHED). */
int sk__segment_create(const char *name, const sk__seg_desc *d, const sk_create_opts *opts, sk_segment **out);
/* Creates a segment and hands it to wrap(seg, out), which builds the typed
 * handle; if wrap fails, the segment is closed and its name removed. */
int sk__segment_create_wrapped(const char *name, const sk__seg_desc *d, const sk_create_opts *opts,
			       int (*wrap)(sk_segment *seg, void *out), void *out);
/* The creation flags every kind accepts, besides its own. */
#define SK__CREATE_COMMON \
	((uint32_t)(SK_CREATE_OWNED | SK_CREATE_ANON | SK_CREATE_HUGE | SK_CREATE_NOHUGE | SK_CREATE_UNPUBLISHED))
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
/* The fields of info a descriptor gives, with the creator judged alive or
 * not. */
void sk__info_from_header(const sk__header *h, sk_segment_info *info);

#endif
