/*
 * npy.c: the header of a .npy file, read for sk_cluster_array_replicate_npy.
 *
 * Format (NumPy's "npy" format, versions 1.0 to 3.0): the magic "\x93NUMPY",
 * a major and a minor version byte, the header's length (2 bytes
 * little-endian in version 1, 4 bytes in versions 2 and 3), then the header:
 * the text of a Python dict literal with exactly the keys 'descr' (a dtype
 * string such as '<i8'), 'fortran_order' (True or False) and 'shape' (a tuple
 * of integers), padded with spaces and ended by a newline. The data follows
 * it, in C order unless fortran_order.
 *
 * Trust: the file is input. The parser reads the buffer it is given and
 * nothing past it, accepts only what it understands, checks every number for
 * overflow, and refuses a header longer than 1 MiB.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20)

typedef struct cursor {
	const unsigned char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static bool eat(cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == (unsigned char)ch) {
		c->p++;
		return true;
	}
	return false;
}

/* A quoted string ('...' or "...") without escapes, into out (NUL-ended). */
static bool string(cursor *c, char *out, size_t cap)
{
	skip_ws(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return false;
	unsigned char q = *c->p++;
	size_t n = 0;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' || n + 1 >= cap)
			return false;
		out[n++] = (char)*c->p++;
	}
	if (c->p >= c->end)
		return false;
	c->p++;
	out[n] = '\0';
	return true;
}

static bool word(cursor *c, const char *w)
{
	skip_ws(c);
	size_t n = strlen(w);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
		return false;
	c->p += n;
	return true;
}

static bool number(cursor *c, uint64_t *v)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return false;
	uint64_t x = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(*c->p - '0'), &x))
			return false;
		c->p++;
	}
	/* Python 2 wrote 3L. */
	if (c->p < c->end && *c->p == 'L')
		c->p++;
	*v = x;
	return true;
}

/* '<i8', '|b1', '=f4', ...: little-endian or byte-order-free only. */
static int parse_descr(const char *s, sk_dtype *dt)
{
	char order = s[0];
	if (order != '<' && order != '|' && order != '=')
		return SK_ETYPE; /* big-endian, a structured dtype, or something else */
	static const struct {
		const char *code;
		sk_dtype dt;
	} map[] = {
		{ "b1", SK_BOOL },   { "?", SK_BOOL },    { "i1", SK_INT8 },    { "i2", SK_INT16 },
		{ "i4", SK_INT32 },  { "i8", SK_INT64 },  { "u1", SK_UINT8 },   { "u2", SK_UINT16 },
		{ "u4", SK_UINT32 }, { "u8", SK_UINT64 }, { "f4", SK_FLOAT32 }, { "f8", SK_FLOAT64 },
	};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(s + 1, map[i].code) == 0) {
			*dt = map[i].dt;
			return 0;
		}
	}
	return SK_ETYPE;
}

int sk__cl_npy_parse(const unsigned char *buf, size_t len, uint64_t file_size, sk__cl_npy *out)
{
	memset(out, 0, sizeof *out);
	if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
		return SK_EFOREIGN;
	uint64_t hlen, start;
	if (buf[6] == 1) {
		hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8;
		start = 10;
	} else if (buf[6] == 2 || buf[6] == 3) {
		if (len < 12)
			return SK_ETRUNCATED;
		hlen = (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
		start = 12;
	} else {
		return SK_EVERSION;
	}
	if (hlen > NPY_MAX_HEADER)
		return SK_ECORRUPT;
	if (start + hlen > len)
		return SK_ETRUNCATED;
	cursor c = { buf + start, buf + start + hlen };
	bool have_descr = false, have_order = false, have_shape = false, fortran = false;
	if (!eat(&c, '{'))
		return SK_ECORRUPT;
	for (;;) {
		if (eat(&c, '}'))
			break;
		char key[32];
		if (!string(&c, key, sizeof key) || !eat(&c, ':'))
			return SK_ECORRUPT;
		if (strcmp(key, "descr") == 0 && !have_descr) {
			char d[32];
			skip_ws(&c);
			if (c.p < c.end && *c.p == '[')
				return SK_ETYPE; /* a structured dtype */
			if (!string(&c, d, sizeof d))
				return SK_ECORRUPT;
			int rc = parse_descr(d, &out->dtype);
			if (rc)
				return rc;
			have_descr = true;
		} else if (strcmp(key, "fortran_order") == 0 && !have_order) {
			if (word(&c, "True"))
				fortran = true;
			else if (!word(&c, "False"))
				return SK_ECORRUPT;
			have_order = true;
		} else if (strcmp(key, "shape") == 0 && !have_shape) {
			if (!eat(&c, '('))
				return SK_ECORRUPT;
			while (!eat(&c, ')')) {
				if (out->ndim == SK_MAX_DIMS)
					return SK_ETYPE;
				if (!number(&c, &out->shape[out->ndim]))
					return SK_ECORRUPT;
				out->ndim++;
				if (!eat(&c, ',')) {
					if (!eat(&c, ')'))
						return SK_ECORRUPT;
					break;
				}
			}
			have_shape = true;
		} else {
			return SK_ECORRUPT; /* an unknown or repeated key */
		}
		if (!eat(&c, ',')) {
			if (!eat(&c, '}'))
				return SK_ECORRUPT;
			break;
		}
	}
	skip_ws(&c);
	if (c.p != c.end || !have_descr || !have_order || !have_shape)
		return SK_ECORRUPT;
	/* Fortran order differs from C order only with two or more extents above 1. */
	int big = 0;
	for (int i = 0; i < out->ndim; i++)
		big += out->shape[i] > 1;
	if (fortran && big > 1)
		return SK_ETYPE;
	uint64_t n = 1;
	for (int i = 0; i < out->ndim; i++)
		if (__builtin_mul_overflow(n, out->shape[i], &n))
			return -EOVERFLOW;
	if (__builtin_mul_overflow(n, (uint64_t)sk_dtype_size(out->dtype), &out->nbytes))
		return -EOVERFLOW;
	out->data_offset = start + hlen;
	if (file_size < out->data_offset || file_size - out->data_offset < out->nbytes)
		return SK_ETRUNCATED;
	return 0;
}
