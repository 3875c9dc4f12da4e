/*
 * catalog.c: the operations that take a segment of any kind.
 *
 * Each kind describes itself to the segment layer with a sk__kind (its id,
 * its name, the header flags it takes, the check of its own header fields):
 * raw segments in segment.c, arrays in array.c, bit arrays in bits.c, values
 * in value.c, queues in queue.c, the six named primitives in sync.c. A typed
 * open passes its own and learns of no other. What must accept every kind
 * (opening by name or descriptor without knowing the kind, stat, list, gc,
 * kind names) comes here: this module holds the table of them all and hands
 * the segment layer its "any" kind, whose check looks the header's kind up
 * in the table. It sits above the kinds, so that the segment layer depends
 * on none of them; a program linked statically that calls one of these
 * functions links every kind.
 *
 * No state, no shared memory of its own: concurrency and trust are those of
 * the segment layer (every header validated once, in a private copy).
 */
#include <errno.h>

#include "catalog.h"
#include "kinds.h"
#include "os.h"
#include "segment.h"

/* Every kind, in the order of their ids. */
static const sk__kind *const kinds[] = {
	&sk__kind_raw, &sk__kind_array,   &sk__kind_bits,  &sk__kind_value, &sk__kind_mutex, &sk__kind_rwlock,
	&sk__kind_sem, &sk__kind_barrier, &sk__kind_event, &sk__kind_cond,  &sk__kind_queue,
};

static const sk__kind *kind_of(uint32_t id)
{
	for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
		if (kinds[i]->id == id)
			return kinds[i];
	return NULL;
}

/* A header of an unknown kind is SK_EKIND; one that carries a lock is
 * SK_ECORRUPT first, as for a known kind that takes none. */
static int check_any(const sk__header *h)
{
	const sk__kind *k = kind_of(h->kind);
	if (!k)
		return (h->flags & SK__HF_LOCKED) ? SK_ECORRUPT : SK_EKIND;
	return sk__kind_check(h, k);
}

static const sk__kind any = { .id = 0, .name = "any", .check = check_any };

const char *sk_kind_name(int kind)
{
	const sk__kind *k = kind > 0 ? kind_of((uint32_t)kind) : NULL;
	return k ? k->name : "unknown";
}

int sk__header_validate(const sk__header *h, size_t got, uint64_t actual_size)
{
	return sk__header_validate_kind(h, got, actual_size, NULL, &any);
}

int sk_segment_open(const char *name, int flags, sk_segment **out)
{
	return sk__segment_open(name, flags, &any, out);
}

int sk_segment_open_fd(int fd, int flags, sk_segment **out)
{
	return sk__segment_open_fd(fd, flags, &any, out);
}

int sk_segment_recv(int sock, int flags, sk_segment **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	int fd;
	int rc = sk__sys_recv_fd(sock, &fd);
	if (rc)
		return rc;
	rc = sk_segment_open_fd(fd, flags, out);
	sk__sys_close(fd);
	return rc;
}

int sk_segment_stat(const char *name, sk_segment_info *info)
{
	return sk__segment_stat(name, info, &any);
}

int sk_segment_list(sk_list_fn fn, void *arg)
{
	return sk__segment_list(fn, arg, &any);
}

int sk_segment_gc_explain(int flags, sk_gc_explain_fn fn, void *arg)
{
	if (flags & ~SK_GC_DRY_RUN)
		return -EINVAL;
	return sk__segment_gc(flags, fn, arg, &any);
}

typedef struct removed_only {
	int (*report)(const char *name, const sk_segment_info *info, void *arg);
	void *arg;
} removed_only;

static int report_removed(const char *name, const sk_segment_info *info, int verdict, int error, void *arg)
{
	(void)error;
	const removed_only *r = arg;
	if (verdict == SK_GC_DEAD && r->report)
		r->report(name, info, r->arg);
	return 0;
}

int sk_segment_gc(int flags, int (*report)(const char *name, const sk_segment_info *info, void *arg), void *arg)
{
	removed_only r = { report, arg };
	return sk_segment_gc_explain(flags, report_removed, &r);
}
