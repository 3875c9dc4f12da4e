/*
 * kind.h: how a kind describes itself to the segment layer. Layer: segment.
 *
 * Each kind's module (array.c, bits.c, value.c, queue.c, sync.c; raw
 * segments are segment.c's own) defines a sk__kind and passes it to
 * sk__segment_create and sk__segment_open; the segment layer, having
 * validated a header's common fields, asks that descriptor about the rest,
 * and never learns of another kind. The operations that take any kind
 * (sk_segment_open, _open_fd, _recv, _stat, _list, _gc, sk_kind_name) live
 * in catalog.c, above the kinds, which holds the table of them all.
 */
#ifndef SHMKIT_SRC_KIND_H
#define SHMKIT_SRC_KIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "shmkit/common.h"

typedef struct sk__kind {
	uint32_t id;      /* SK_KIND_*; 0: any kind (catalog.c's, whose check looks the kind up) */
	const char *name; /* as sk_kind_name gives it */
	uint32_t hflags;  /* the SK__HF_* a header of this kind may carry besides SK__HF_OWNED */
	/* The kind's own header fields (dtype, ndim, shape, nitems, data_size) of
	 * a header whose common fields are valid: 0 or SK_ECORRUPT. */
	int (*check)(const sk__header *h);
} sk__kind;
/* Raw bytes: the segment layer's own kind (segment.c). */
extern const sk__kind sk__kind_raw;
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

#endif
