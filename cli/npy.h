/*
 * npy.h: NumPy .npy headers (format versions 1.0, 2.0 and 3.0), parsed
 * without NumPy. Only what shmkit can share is accepted: C-order (or 1-d)
 * arrays of little-endian bool/int/uint/float elements.
 */
#ifndef SHMKIT_NPY_H
#define SHMKIT_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "shmkit.h"

#define NPY_PREFIX_LEN 12 /* enough bytes to learn the total header length */

typedef struct npy_header {
	int major, minor;
	sk_dtype dtype;
	int ndim;
	uint64_t shape[SK_MAX_DIMS];
	uint64_t header_len; /* bytes before the data */
	uint64_t data_len;   /* product of shape times itemsize */
} npy_header;

/* From the first NPY_PREFIX_LEN bytes (or fewer, len), the length of the whole
 * header. Returns 0 and sets *total, or -1 with a message in err. */
int npy_header_length(const uint8_t *buf, size_t len, uint64_t *total, char *err, size_t errlen);
/* Parses a complete header (buf holds at least header_len bytes). Returns 0,
 * or -1 with a one-line reason in err. Never reads past len. */
int npy_parse(const uint8_t *buf, size_t len, npy_header *h, char *err, size_t errlen);
/* Formats a version 1.0 header (2.0 if it does not fit) for dtype and shape;
 * returns its length, a multiple of 64, or 0 if buf is too small. */
size_t npy_format(uint8_t *buf, size_t len, sk_dtype dtype, int ndim, const uint64_t *shape);

#endif
