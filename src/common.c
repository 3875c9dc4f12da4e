/*
 * common.c: error texts, name rules, the dtype table and the public clock.
 * No shared state.
 */
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

static const struct {
	sk_dtype dtype;
	size_t size;
	const char *name;
	const char *alias; /* NumPy's short code, little-endian, without byte-order mark */
} dtypes[] = {
	{ SK_BOOL, 1, "bool", "b1" },       { SK_INT8, 1, "int8", "i1" },       { SK_INT16, 2, "int16", "i2" },
	{ SK_INT32, 4, "int32", "i4" },     { SK_INT64, 8, "int64", "i8" },     { SK_UINT8, 1, "uint8", "u1" },
	{ SK_UINT16, 2, "uint16", "u2" },   { SK_UINT32, 4, "uint32", "u4" },   { SK_UINT64, 8, "uint64", "u8" },
	{ SK_FLOAT32, 4, "float32", "f4" }, { SK_FLOAT64, 8, "float64", "f8" },
};

size_t sk_dtype_size(sk_dtype dtype)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dtype == dtype)
			return dtypes[i].size;
	return 0;
}

const char *sk_dtype_name(sk_dtype dtype)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (dtypes[i].dtype == dtype)
			return dtypes[i].name;
	return NULL;
}

sk_dtype sk_dtype_from_name(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (!strcmp(name, dtypes[i].name) || !strcmp(name, dtypes[i].alias))
			return dtypes[i].dtype;
	return 0;
}
