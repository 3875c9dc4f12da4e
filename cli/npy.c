/*
 * npy.c: reading and writing .npy headers.
 *
 * A header is the magic "\x93NUMPY", a major and minor version byte, a
 * little-endian length (2 bytes in 1.0, 4 bytes in 2.0 and 3.0) and a Python
 * dict literal such as {'descr': '<i8', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces to a multiple of 64 bytes and ended by a newline.
 * The parser is strict and bounded: it reads only within the buffer given,
 * accepts exactly the three keys, and reports the first problem it sees.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "npy.h"

static int err_(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int err_(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int npy_header_length(const uint8_t *buf, size_t len, uint64_t *total, char *err, size_t errlen)
{
	if (len < 10 || memcmp(buf, "\x93NUMPY", 6))
		return err_(err, errlen, "not a .npy file (no \\x93NUMPY magic)");
	int major = buf[6];
	if (major == 1) {
		*total = 10 + (uint64_t)(buf[8] | buf[9] << 8);
	} else if (major == 2 || major == 3) {
		if (len < 12)
			return err_(err, errlen, "truncated .npy header");
		*total =
		    12 + ((uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24);
	} else {
		return err_(err, errlen, "unsupported .npy format version %d.%d", major, buf[7]);
	}
	if (*total > (UINT64_C(1) << 26)) /* NumPy itself refuses far smaller headers */
		return err_(err, errlen, ".npy header of %llu bytes is implausibly large", (unsigned long long)*total);
	return 0;
}

typedef struct cursor {
	const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int expect(cursor *c, char ch)
{
	skip_ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 0;
	}
	return -1;
}

/* A quoted Python string without escapes, copied into out. */
static int read_str(cursor *c, char *out, size_t outlen)
{
	skip_ws(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return -1;
	char q = *c->p++;
	size_t n = 0;
	while (c->p < c->end && *c->p != q) {
		if (*c->p == '\\' || n + 1 >= outlen)
			return -1;
		out[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return -1;
	c->p++;
	out[n] = '\0';
	return 0;
}

static int read_uint(cursor *c, uint64_t *v)
{
	skip_ws(c);
	if (c->p >= c->end || *c->p < '0' || *c->p > '9')
		return -1;
	uint64_t x = 0;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, (uint64_t)(*c->p - '0'), &x))
			return -1;
		c->p++;
	}
	if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) /* Python 2 longs */
		c->p++;
	*v = x;
	return 0;
}

static int descr_to_dtype(const char *d, sk_dtype *dt, char *err, size_t errlen)
{
	if (strlen(d) >= 2 && d[1] == 'O')
		return err_(err, errlen,
			    "object arrays (dtype '%s') hold Python objects, not data; they cannot be shared", d);
	if (strlen(d) < 3 || (d[0] != '<' && d[0] != '>' && d[0] != '|' && d[0] != '='))
		return err_(err, errlen, "unsupported dtype '%s'", d);
	char order = d[0], kind = d[1];
	const char *size = d + 2;
	static const struct {
		char kind;
		const char *size;
		sk_dtype dt;
	} map[] = { { 'b', "1", SK_BOOL },   { 'i', "1", SK_INT8 },    { 'i', "2", SK_INT16 },  { 'i', "4", SK_INT32 },
		    { 'i', "8", SK_INT64 },  { 'u', "1", SK_UINT8 },   { 'u', "2", SK_UINT16 }, { 'u', "4", SK_UINT32 },
		    { 'u', "8", SK_UINT64 }, { 'f', "4", SK_FLOAT32 }, { 'f', "8", SK_FLOAT64 } };
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (map[i].kind != kind || strcmp(map[i].size, size))
			continue;
		if (order == '>' && sk_dtype_size(map[i].dt) > 1)
			return err_(
			    err, errlen,
			    "big-endian data (dtype '%s'); convert it first: a.astype(a.dtype.newbyteorder('<'))", d);
		*dt = map[i].dt;
		return 0;
	}
	return err_(err, errlen, "unsupported dtype '%s' (supported: bool, int8-64, uint8-64, float32, float64)", d);
}

int npy_parse(const uint8_t *buf, size_t len, npy_header *h, char *err, size_t errlen)
{
	uint64_t total;
	if (npy_header_length(buf, len, &total, err, errlen))
		return -1;
	if (total > len)
		return err_(err, errlen, "truncated .npy header");
	memset(h, 0, sizeof *h);
	h->major = buf[6];
	h->minor = buf[7];
	h->header_len = total;
	size_t start = h->major == 1 ? 10 : 12;
	cursor c = { (const char *)buf + start, (const char *)buf + total };

	bool have_descr = false, have_order = false, have_shape = false, fortran = false;
	if (expect(&c, '{'))
		return err_(err, errlen, "malformed .npy header (expected a dict)");
	for (;;) {
		skip_ws(&c);
		if (c.p < c.end && *c.p == '}') {
			c.p++;
			break;
		}
		char key[32];
		if (read_str(&c, key, sizeof key) || expect(&c, ':'))
			return err_(err, errlen, "malformed .npy header (bad key)");
		skip_ws(&c);
		if (!strcmp(key, "descr") && !have_descr) {
			if (c.p < c.end && *c.p == '[')
				return err_(err, errlen, "structured dtypes are not supported");
			char d[32];
			if (read_str(&c, d, sizeof d))
				return err_(err, errlen, "malformed .npy header (bad descr)");
			if (descr_to_dtype(d, &h->dtype, err, errlen))
				return -1;
			have_descr = true;
		} else if (!strcmp(key, "fortran_order") && !have_order) {
			if ((size_t)(c.end - c.p) >= 4 && !memcmp(c.p, "True", 4)) {
				fortran = true;
				c.p += 4;
			} else if ((size_t)(c.end - c.p) >= 5 && !memcmp(c.p, "False", 5)) {
				c.p += 5;
			} else {
				return err_(err, errlen, "malformed .npy header (bad fortran_order)");
			}
			have_order = true;
		} else if (!strcmp(key, "shape") && !have_shape) {
			if (expect(&c, '('))
				return err_(err, errlen, "malformed .npy header (bad shape)");
			for (;;) {
				skip_ws(&c);
				if (c.p < c.end && *c.p == ')') {
					c.p++;
					break;
				}
				if (h->ndim >= SK_MAX_DIMS)
					return err_(err, errlen, "more than %d dimensions", SK_MAX_DIMS);
				if (read_uint(&c, &h->shape[h->ndim]))
					return err_(err, errlen, "malformed .npy header (bad shape)");
				h->ndim++;
				skip_ws(&c);
				if (c.p < c.end && *c.p == ',')
					c.p++;
				else if (c.p >= c.end || *c.p != ')')
					return err_(err, errlen, "malformed .npy header (bad shape)");
			}
			have_shape = true;
		} else {
			return err_(err, errlen, "malformed .npy header (unexpected or repeated key '%s')", key);
		}
		skip_ws(&c);
		if (c.p < c.end && *c.p == ',')
			c.p++;
		else if (c.p >= c.end || *c.p != '}')
			return err_(err, errlen, "malformed .npy header (expected ',' or '}')");
	}
	if (!have_descr || !have_order || !have_shape)
		return err_(err, errlen, "malformed .npy header (needs descr, fortran_order and shape)");
	if (fortran) {
		int big = 0;
		for (int i = 0; i < h->ndim; i++)
			big += h->shape[i] > 1;
		if (big > 1)
			return err_(err, errlen,
				    "Fortran-order array; save it in C order first (numpy.ascontiguousarray(a)) or "
				    "save its transpose a.T");
	}
	uint64_t n = sk_dtype_size(h->dtype);
	for (int i = 0; i < h->ndim; i++)
		if (__builtin_mul_overflow(n, h->shape[i], &n))
			return err_(err, errlen, "array size overflows 64 bits");
	h->data_len = n;
	return 0;
}

size_t npy_format(uint8_t *buf, size_t len, sk_dtype dtype, int ndim, const uint64_t *shape)
{
	char dict[1024];
	const sk_dtype_traits *t = sk_dtype_traits_of(dtype); /* its typestr is the .npy descr */
	const char *descr = t ? t->typestr : NULL;
	if (!descr || ndim < 0 || ndim > SK_MAX_DIMS)
		return 0;
	size_t o = (size_t)snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
	for (int i = 0; i < ndim; i++)
		o += (size_t)snprintf(dict + o, sizeof dict - o, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
	o += (size_t)snprintf(dict + o, sizeof dict - o, "%s), }", ndim == 1 ? "," : "");
	if (o >= sizeof dict)
		return 0;
	/* Version 1.0 unless the header needs more than a 16-bit length. */
	size_t prefix = 10;
	size_t total = (prefix + o + 1 + 63) / 64 * 64;
	if (total - prefix > 65535) {
		prefix = 12;
		total = (prefix + o + 1 + 63) / 64 * 64;
	}
	if (total > len)
		return 0;
	size_t hl = total - prefix;
	memcpy(buf, "\x93NUMPY", 6);
	buf[6] = prefix == 10 ? 1 : 2;
	buf[7] = 0;
	for (size_t i = 0; i < prefix - 8; i++)
		buf[8 + i] = (uint8_t)(hl >> (8 * i));
	memcpy(buf + prefix, dict, o);
	memset(buf + prefix + o, ' ', total - prefix - o - 1);
	buf[total - 1] = '\n';
	return total;
}
