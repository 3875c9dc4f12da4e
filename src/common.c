/*
 * common.c: error texts, name rules, the dtype table and the public clock.
 * No shared state.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "os.h"
#include "shmkit/common.h"

const char *sk_version(void)
{
	return SHMKIT_VERSION_STRING;
}

int64_t sk_monotonic_ns(void)
{
	return sk__sys_monotonic_ns();
}

const char *sk_strerror(int code)
{
	switch (code) {
	case 0: return "success";
	case SK_EBADNAME:
		return "invalid segment name (use 1 to 200 characters of A-Z a-z 0-9 . _ -, not \".\" or \"..\")";
	case SK_ETOOSMALL: return "file is too small to be a shmkit segment";
	case SK_EFOREIGN: return "not a shmkit segment (foreign file)";
	case SK_EVERSION: return "segment layout version is newer than this shmkit supports";
	case SK_ECHECKSUM: return "segment header checksum mismatch (corrupt header)";
	case SK_ECORRUPT: return "segment header is inconsistent (corrupt header)";
	case SK_ETRUNCATED: return "segment file is smaller than its header says (truncated)";
	case SK_EKIND: return "segment is of another kind";
	case SK_ETYPE: return "dtype, shape or length mismatch";
	case SK_ESYMLINK: return "name is a symbolic link in /dev/shm (not followed)";
	case SK_EREADONLY: return "segment is opened read-only";
	case SK_ENOTFOUND: return "not found";
	case SK_EWORKER: return "a worker process failed";
	case SK_ETHREADED: return "the process runs several threads; forking worker processes is unsafe";
	case SK_EOWNERDEAD:
		return "the previous holder died holding the lock; it is yours now, repair the data it protects";
	case SK_ENOTRECOVERABLE:
		return "the lock is unusable: a holder died and it was released without being marked consistent";
	case SK_ECLOSED: return "the queue is closed";
	case SK_EFROZEN: return "the segment is frozen: it can only be opened read-only";
	case SK_EOWNER:
		return "the segment belongs to another user (neither you nor root): refused unless opened with "
		       "SK_OPEN_ANY_OWNER";
	case SK_EBROKEN: return "the barrier is broken (aborted, or a party timed out); reset it to use it again";
	case SK_ENOTHELD:
		return "the condition wait timed out before its mutex could be taken back: the caller does not hold it";
	/* errno values, worded for what they mean in shmkit. */
	case -ENOENT: return "no such segment";
	case -EEXIST: return "a segment with this name already exists";
	case -ENOSPC: return "no space left in shared memory (/dev/shm is full or too small)";
	case -EACCES: return "permission denied";
	case -EINVAL: return "invalid argument";
	case -ERANGE: return "index out of range";
	case -EOVERFLOW: return "size too large (overflows 64 bits)";
	case -ENOMEM: return "out of memory";
	case -ETIMEDOUT: return "timed out";
	case -EBUSY: return "busy (held by another)";
	case -EMSGSIZE: return "message too large";
	}
	if (code < 0 && code > -4096) {
		const char *s = strerrordesc_np(-code);
		if (s)
			return s;
	}
	return "unknown error";
}

int sk_name_check(const char *name)
{
	if (!name)
		return SK_EBADNAME;
	size_t n = 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
			  c == '_' || c == '-';
		if (!ok || n >= SK_NAME_MAX)
			return SK_EBADNAME;
	}
	if (n == 0 || !strcmp(name, ".") || !strcmp(name, ".."))
		return SK_EBADNAME;
	return 0;
}

/* The one dtype table: every other one (names, sizes, NumPy codes, format
 * characters) is derived from it through sk_dtype_traits_of. Indexed by
 * dtype - 1. The alias is NumPy's short code without the byte-order mark. */
static const struct {
	sk_dtype_traits t;
	const char *alias;
} dtypes[SK_DTYPE_MAX] = {
	{ { SK_BOOL, 1, 'b', '?', "|b1", "bool", "bool" }, "b1" },
	{ { SK_INT8, 1, 'i', 'b', "|i1", "int8", "int8_t" }, "i1" },
	{ { SK_INT16, 2, 'i', 'h', "<i2", "int16", "int16_t" }, "i2" },
	{ { SK_INT32, 4, 'i', 'i', "<i4", "int32", "int32_t" }, "i4" },
	{ { SK_INT64, 8, 'i', 'q', "<i8", "int64", "int64_t" }, "i8" },
	{ { SK_UINT8, 1, 'u', 'B', "|u1", "uint8", "uint8_t" }, "u1" },
	{ { SK_UINT16, 2, 'u', 'H', "<u2", "uint16", "uint16_t" }, "u2" },
	{ { SK_UINT32, 4, 'u', 'I', "<u4", "uint32", "uint32_t" }, "u4" },
	{ { SK_UINT64, 8, 'u', 'Q', "<u8", "uint64", "uint64_t" }, "u8" },
	{ { SK_FLOAT32, 4, 'f', 'f', "<f4", "float32", "float" }, "f4" },
	{ { SK_FLOAT64, 8, 'f', 'd', "<f8", "float64", "double" }, "f8" },
};

static_assert(SK_FLOAT64 == SK_DTYPE_MAX, "the dtype table covers every code");

const sk_dtype_traits *sk_dtype_traits_of(sk_dtype dtype)
{
	if ((int)dtype < 1 || (int)dtype > SK_DTYPE_MAX)
		return NULL;
	return &dtypes[dtype - 1].t;
}

size_t sk_dtype_size(sk_dtype dtype)
{
	const sk_dtype_traits *t = sk_dtype_traits_of(dtype);
	return t ? t->size : 0;
}

const char *sk_dtype_name(sk_dtype dtype)
{
	const sk_dtype_traits *t = sk_dtype_traits_of(dtype);
	return t ? t->name : NULL;
}

sk_dtype sk_dtype_from_name(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (!strcmp(name, dtypes[i].t.name) || !strcmp(name, dtypes[i].alias))
			return dtypes[i].t.dtype;
	return 0;
}
