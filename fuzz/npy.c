/*
 * fuzz/npy.c: the .npy header parser must refuse any bytes it is given with a
 * message, never crash or read past the buffer, and what it accepts must be
 * consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	uint64_t total;
	/* A copy of exactly `size` bytes, so ASan sees any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	npy_header_length(buf, size, &total, err, sizeof err);
	npy_header h;
	if (npy_parse(buf, size, &h, err, sizeof err) == 0) {
		if (h.header_len > size || h.ndim < 0 || h.ndim > SK_MAX_DIMS || !sk_dtype_size(h.dtype))
			__builtin_trap();
		uint8_t out[4096];
		size_t n = npy_format(out, sizeof out, h.dtype, h.ndim, h.shape);
		npy_header back;
		if (!n || npy_parse(out, n, &back, err, sizeof err) || back.dtype != h.dtype || back.ndim != h.ndim ||
		    memcmp(back.shape, h.shape, sizeof h.shape))
			__builtin_trap(); /* what we write must read back the same */
	}
	free(buf);
	return 0;
}
