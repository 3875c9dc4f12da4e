/*
 * util.c: parsing and formatting helpers of the shmkit command.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "measure.h"

int read_full(int fd, void *buf, size_t n, size_t *got)
{
	*got = 0;
	while (*got < n) {
		size_t want = n - *got > (1u << 26) ? (1u << 26) : n - *got;
		ssize_t r = read(fd, (char *)buf + *got, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t n)
{
	size_t done = 0;
	while (done < n) {
		size_t want = n - done > (1u << 26) ? (1u << 26) : n - done;
		ssize_t r = write(fd, (const char *)buf + done, want);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "shmkit%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'shmkit%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
	return EXIT_USAGE;
}

int fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "shmkit %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

bool is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help");
}

bool parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return false;
	char *end;
	errno = 0;
	unsigned long long whole = strtoull(s, &end, 10);
	if (errno)
		return false;
	/* An optional fraction, only meaningful with a suffix: "1.5G". */
	double frac = 0;
	if (*end == '.') {
		char *fend;
		frac = strtod(end, &fend);
		if (fend == end + 1)
			return false;
		for (const char *q = end + 1; q < fend; q++)
			if (!isdigit((unsigned char)*q))
				return false; /* no exponents: "1.5e3G" */
		end = fend;
	}
	uint64_t mult = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = UINT64_C(1) << 10; break;
	case 'M': mult = UINT64_C(1) << 20; break;
	case 'G': mult = UINT64_C(1) << 30; break;
	case 'T': mult = UINT64_C(1) << 40; break;
	case 'P': mult = UINT64_C(1) << 50; break;
	case '\0': break;
	default: return false;
	}
	if (mult > 1) {
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B") || !strcmp(end, "ib"))
			end += strlen(end);
	} else if (!strcmp(end, "B")) {
		end++;
	}
	if (*end || (frac != 0 && mult == 1))
		return false;
	uint64_t v;
	if (__builtin_mul_overflow((uint64_t)whole, mult, &v))
		return false;
	double extra = floor(frac * (double)mult);
	if (extra > 0 && __builtin_add_overflow(v, (uint64_t)extra, &v))
		return false;
	*out = v;
	return true;
}

bool parse_shape(const char *s, int *ndim, uint64_t *shape)
{
	if (!strcmp(s, "") || !strcmp(s, "()")) {
		*ndim = 0;
		return true;
	}
	char buf[4096];
	if (strlen(s) >= sizeof buf)
		return false;
	strcpy(buf, s);
	char *p = buf;
	size_t n = strlen(p);
	if (p[0] == '(' && n > 1 && p[n - 1] == ')') { /* accept NumPy's "(3, 4)" too */
		p[n - 1] = '\0';
		p++;
	}
	int d = 0;
	char *save = NULL;
	for (char *tok = strtok_r(p, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		char *e = tok + strlen(tok);
		while (e > tok && e[-1] == ' ')
			*--e = '\0';
		if (!*tok)
			continue; /* trailing comma: "(5,)" */
		if (d >= SK_MAX_DIMS || !parse_size(tok, &shape[d]))
			return false;
		d++;
	}
	*ndim = d;
	return d > 0;
}

bool parse_mode(const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 8);
	if (errno || !*s || *end || v == 0 || v > 0777)
		return false;
	*out = (uint32_t)v;
	return true;
}

const char *human_size(uint64_t n, char *buf)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	if (n < 1024) {
		snprintf(buf, 32, "%llu B", (unsigned long long)n);
		return buf;
	}
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 6) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 32, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

const char *shape_str(int ndim, const uint64_t *shape, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, len - o, "(");
	for (int i = 0; i < ndim && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
	if (o < len)
		snprintf(buf + o, len - o, ndim == 1 ? ",)" : ")");
	return buf;
}

const char *time_str(int64_t ns, char *buf)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

const char *open_error(const char *name, int rc, char *buf, size_t len)
{
	sk_segment_info in;
	if (rc != SK_EOWNER || sk_segment_stat(name, &in))
		return sk_strerror(rc);
	struct passwd *pw = getpwuid(in.uid);
	snprintf(buf, len, "owned by %s (uid %u), neither you nor root: not opened (--any-owner opens it anyway)",
		 pw ? pw->pw_name : "an unknown user", (unsigned)in.uid);
	return buf;
}

void print_escaped(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p >= 0x7f)
			fprintf(f, "\\u%04x", *p); /* bytes, not UTF-8: names are raw bytes */
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void json_info_fields(FILE *f, const sk_segment_info *info)
{
	fprintf(f, "\"name\": ");
	json_string(f, info->name);
	fprintf(f, ", \"kind\": \"%s\"", sk_kind_name(info->kind));
	if (info->kind == SK_KIND_ARRAY) {
		fprintf(f, ", \"dtype\": \"%s\", \"shape\": [", sk_dtype_name(info->dtype));
		for (int i = 0; i < info->ndim; i++)
			fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)info->shape[i]);
		fprintf(f, "]");
	} else if (info->kind == SK_KIND_BITS) {
		fprintf(f, ", \"bits\": %llu", (unsigned long long)info->nitems);
	} else if (info->kind == SK_KIND_VALUE)
		fprintf(f, ", \"dtype\": \"%s\"", sk_dtype_name(info->dtype));
	if (info->kind == SK_KIND_ARRAY || info->kind == SK_KIND_VALUE)
		fprintf(f, ", \"locked\": %s", info->locked ? "true" : "false");
	fprintf(f, ", \"owned\": %s, \"frozen\": %s, \"page_size\": %llu", info->owned ? "true" : "false",
		info->frozen ? "true" : "false", (unsigned long long)info->page_size);
	fprintf(f, ", \"huge_status\": \"%s\", \"huge_bytes\": %llu, \"huge_errno\": %d",
		huge_status_token(info->huge_status), (unsigned long long)info->huge_bytes, info->huge_errno);
	char t[32];
	fprintf(f,
		", \"data_bytes\": %llu, \"data_offset\": %llu, \"file_bytes\": %llu, \"mode\": \"%04o\", "
		"\"uid\": %u, \"creator_pid\": %d, \"creator_pidns\": %llu, \"creator_alive\": %s, "
		"\"created\": \"%s\", \"created_ns\": %lld, \"version\": %u",
		(unsigned long long)info->data_size, (unsigned long long)info->data_offset,
		(unsigned long long)info->file_size, info->mode, (unsigned)info->uid, (int)info->creator_pid,
		(unsigned long long)info->creator_pidns,
		info->creator_alive > 0    ? "true"
		: info->creator_alive == 0 ? "false"
					   : "null",
		time_str(info->ctime_ns, t), (long long)info->ctime_ns, info->version);
}

static void format_element(const void *p, sk_dtype dt, char *buf, size_t len)
{
	switch (dt) {
	case SK_BOOL: snprintf(buf, len, "%s", *(const uint8_t *)p ? "True" : "False"); break;
	case SK_INT8: snprintf(buf, len, "%d", *(const int8_t *)p); break;
	case SK_INT16: snprintf(buf, len, "%d", *(const int16_t *)p); break;
	case SK_INT32: snprintf(buf, len, "%d", *(const int32_t *)p); break;
	case SK_INT64: snprintf(buf, len, "%lld", (long long)*(const int64_t *)p); break;
	case SK_UINT8: snprintf(buf, len, "%u", *(const uint8_t *)p); break;
	case SK_UINT16: snprintf(buf, len, "%u", *(const uint16_t *)p); break;
	case SK_UINT32: snprintf(buf, len, "%u", *(const uint32_t *)p); break;
	case SK_UINT64: snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)p); break;
	case SK_FLOAT32: snprintf(buf, len, "%.9g", (double)*(const float *)p); break;
	case SK_FLOAT64: snprintf(buf, len, "%.17g", *(const double *)p); break;
	default: snprintf(buf, len, "?");
	}
}

static void describe_lock(int kind, const sk_lock_state *st, char *buf, size_t len)
{
	size_t o = 0;
	switch (kind) {
	case SK_KIND_SEM:
		o = (size_t)snprintf(buf, len, "count %lld", (long long)st->value);
		if (st->limit && o < len)
			o += (size_t)snprintf(buf + o, len - o, " of at most %lld", (long long)st->limit);
		break;
	case SK_KIND_BARRIER:
		o = (size_t)snprintf(buf, len, "%lld of %lld parties waiting", (long long)st->value,
				     (long long)st->limit);
		break;
	case SK_KIND_EVENT: o = (size_t)snprintf(buf, len, "%s", st->value ? "set" : "clear"); break;
	default:
		if (!st->recoverable)
			o = (size_t)snprintf(buf, len, "unusable (a holder died and it was released unrepaired)");
		else if (st->owner_pid)
			o = (size_t)snprintf(buf, len, "held by pid %d (%s)", (int)st->owner_pid,
					     st->owner_alive ? "running" : "dead: the next locker recovers it");
		else if (st->readers)
			o = (size_t)snprintf(buf, len, "read by %d", st->readers);
		else
			o = (size_t)snprintf(buf, len, "free");
	}
	if (st->waiters && o < len)
		snprintf(buf + o, len - o, ", %d waiting", st->waiters);
}

/* The state of another user's segment that was not opened. */
static void not_inspected(const sk_segment_info *in, char *buf, size_t len)
{
	snprintf(buf, len, "not inspected: owned by uid %u (--any-owner)", (unsigned)in->uid);
}

static void describe_queue(const sk_queue_stats *qs, char *buf, size_t len)
{
	char u[32], c[32];
	snprintf(buf, len, "%llu messages, %s of %s used%s%s", (unsigned long long)qs->messages,
		 human_size(qs->used, u), human_size(qs->capacity, c), qs->closed ? ", shut down" : "",
		 qs->waiting_producers || qs->waiting_consumers ? ", waiting:" : "");
	size_t o = strlen(buf);
	if (qs->waiting_producers && o < len)
		o += (size_t)snprintf(buf + o, len - o, " %d producers", qs->waiting_producers);
	if (qs->waiting_consumers && o < len)
		snprintf(buf + o, len - o, " %d consumers", qs->waiting_consumers);
}

static bool is_lock_kind(int kind)
{
	return kind >= SK_KIND_MUTEX && kind <= SK_KIND_COND;
}

bool segment_state_of(const sk_segment *seg, int orc, const char *name, const sk_segment_info *in, int oflags,
		      char *buf, size_t len, sk_lock_state *st, bool *has_lock, sk_queue_stats *qs, bool *has_qs)
{
	*has_lock = *has_qs = false;
	memset(st, 0, sizeof *st);
	if (in->kind == SK_KIND_QUEUE) {
		int rc = orc ? orc : sk_queue_stats_peek(seg, qs);
		if (rc == SK_EOWNER) {
			not_inspected(in, buf, len);
			return true;
		}
		if (rc) {
			snprintf(buf, len, "damaged");
			return true;
		}
		*has_qs = true;
		describe_queue(qs, buf, len);
		return true;
	}
	if (in->kind == SK_KIND_VALUE) {
		sk_value *v;
		int rc = sk_value_open(name, SK_RDONLY | oflags, &v);
		if (rc == SK_EOWNER) {
			not_inspected(in, buf, len);
			return true;
		}
		if (rc)
			return false;
		char val[64];
		format_element(sk_value_ptr(v), sk_value_dtype(v), val, sizeof val);
		size_t o = (size_t)snprintf(buf, len, "%s", val);
		if (sk_value_mutex(v) && sk_mutex_state(sk_value_mutex(v), st) == 0) {
			*has_lock = true;
			if (o < len)
				snprintf(buf + o, len - o, ", lock ");
			describe_lock(SK_KIND_MUTEX, st, buf + strlen(buf), len - strlen(buf));
		}
		sk_value_close(v);
		return true;
	}
	if (!is_lock_kind(in->kind))
		return false;
	if (orc == SK_EOWNER) {
		not_inspected(in, buf, len);
		return true;
	}
	if (orc)
		return false;
	const void *p = sk_segment_data(seg);
	int rc = -1;
	switch (in->kind) {
	case SK_KIND_MUTEX: rc = sk_mutex_state(p, st); break;
	case SK_KIND_RWLOCK: rc = sk_rwlock_state(p, st); break;
	case SK_KIND_SEM: rc = sk_sem_state(p, st); break;
	case SK_KIND_BARRIER: rc = sk_barrier_state(p, st); break;
	case SK_KIND_EVENT: rc = sk_event_state(p, st); break;
	case SK_KIND_COND: rc = 0; break;
	}
	if (rc) {
		snprintf(buf, len, "damaged (%s)", sk_strerror(rc));
		return true;
	}
	*has_lock = in->kind != SK_KIND_COND;
	if (in->kind == SK_KIND_COND)
		snprintf(buf, len, "-");
	else
		describe_lock(in->kind, st, buf, len);
	return true;
}

bool segment_state(const char *name, const sk_segment_info *in, int oflags, char *buf, size_t len, sk_lock_state *st,
		   bool *has_lock)
{
	sk_segment *seg = NULL;
	int orc = 0;
	if (in->kind == SK_KIND_QUEUE || is_lock_kind(in->kind))
		orc = sk_segment_open(name, SK_RDONLY | oflags, &seg);
	sk_queue_stats qs;
	bool has_qs;
	bool ok = segment_state_of(seg, orc, name, in, oflags, buf, len, st, has_lock, &qs, &has_qs);
	sk_segment_close(seg);
	return ok;
}

void json_queue_fields(FILE *f, const sk_queue_stats *qs)
{
	fprintf(f,
		", \"queue\": {\"capacity\": %llu, \"max_msg\": %llu, \"used\": %llu, \"messages\": %llu, "
		"\"pushed\": %llu, \"popped\": %llu, \"closed\": %s, \"waiting_producers\": %d, "
		"\"waiting_consumers\": %d, \"recoveries\": %llu}",
		(unsigned long long)qs->capacity, (unsigned long long)qs->max_msg, (unsigned long long)qs->used,
		(unsigned long long)qs->messages, (unsigned long long)qs->pushed, (unsigned long long)qs->popped,
		qs->closed ? "true" : "false", qs->waiting_producers, qs->waiting_consumers,
		(unsigned long long)qs->recoveries);
}

void json_state_fields(FILE *f, const char *state, const sk_lock_state *st, bool has_lock)
{
	fprintf(f, ", \"state\": ");
	json_string(f, state);
	if (has_lock)
		fprintf(f,
			", \"lock\": {\"held\": %s, \"owner_pid\": %d, \"owner_alive\": %s, \"readers\": %d, "
			"\"waiters\": %d, \"recoverable\": %s, \"count\": %lld, \"limit\": %lld}",
			st->held ? "true" : "false", (int)st->owner_pid, st->owner_alive ? "true" : "false",
			st->readers, st->waiters, st->recoverable ? "true" : "false", (long long)st->value,
			(long long)st->limit);
}
