/*
 * fuzz/header.c: header validation must refuse any bytes it is given without
 * crashing or reading out of bounds. The input is the start of a segment
 * file; its length also stands for the file's size.
 */
#include <stdint.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sk__header h;
	memset(&h, 0, sizeof h);
	size_t got = size < sizeof h ? size : sizeof h;
	memcpy(&h, data, got);
	/* The file's size: the input's own, or a size read from its tail. */
	uint64_t actual = size;
	if (size >= sizeof h + 8)
		memcpy(&actual, data + sizeof h, 8);
	int rc = sk__header_validate(&h, got, actual);
	if (rc == 0 && (h.data_offset + h.data_size > actual || h.kind < 1))
		__builtin_trap(); /* accepted a header that does not fit its file */
	return 0;
}
