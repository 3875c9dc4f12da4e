/*
 * cmd_info.c: `shmkit info NAME` shows what a segment's header says.
 */
#include <getopt.h>
#include <pwd.h>
#include <string.h>

#include "cli.h"

static const char help[] = "usage: shmkit info [--json] [--count] [--any-owner] NAME\n\n"
			   "Show a segment's header: kind, dtype and shape (arrays), length (bit arrays),\n"
			   "sizes, permissions, the creating process and whether it still runs; for a\n"
			   "value its current value, for a named lock its state (free or held, by which\n"
			   "pid, alive or dead, waiters; a semaphore's count, an event's flag), for a\n"
			   "queue its capacity, bytes used, messages and waiting producers and consumers;\n"
			   "which pages the file has (2 MiB or 4 KiB) and why, as its creator recorded.\n\n"
			   "The header of another user's segment is shown, but the segment itself is not\n"
			   "opened (its state is \"not inspected\") unless --any-owner says to: shmkit\n"
			   "opens only segments of the caller and of root by default.\n\n"
			   "  --count      bit arrays: also count the set bits (reads the whole array)\n"
			   "  --any-owner  open the segment even when another user owns it\n"
			   "  --json       print one JSON object on stdout\n"
			   "  -h, --help   show this help\n\n"
			   "Exit status 1 if NAME is missing, not a shmkit segment or damaged.\n";

/* Prints what NAME's header says (in) and what is read inside the segment
 * (seg, or NULL with orc the open's error). Returns the exit status. */
static int show(const char *name, const sk_segment *seg, int orc, const sk_segment_info *in, int oflags, bool json,
		bool count)
{
	int rc;
	int64_t set_bits = -1;
	if (count && in->kind == SK_KIND_BITS) {
		sk_bits *b;
		rc = sk_bits_open(name, SK_RDONLY | oflags, &b);
		char why[256];
		if (rc)
			return fail("info", "%s: %s", name, open_error(name, rc, why, sizeof why));
		set_bits = sk_bits_count(b, 0, sk_bits_len(b));
		sk_bits_close(b);
	}

	char state[256];
	sk_lock_state st;
	bool has_lock;
	sk_queue_stats qs;
	bool has_qs;
	bool has_state =
	    segment_state_of(seg, orc, name, in, oflags, state, sizeof state, &st, &has_lock, &qs, &has_qs);
	if (json) {
		printf("{");
		json_info_fields(stdout, in);
		if (has_state)
			json_state_fields(stdout, state, &st, has_lock);
		if (has_qs)
			json_queue_fields(stdout, &qs);
		if (set_bits >= 0)
			printf(", \"set_bits\": %lld", (long long)set_bits);
		printf("}\n");
		return 0;
	}
	char a[32], b[32], shape[1024];
	printf("name:     %s\n", in->name);
	printf("kind:     %s\n", sk_kind_name(in->kind));
	if (in->kind == SK_KIND_ARRAY) {
		printf("dtype:    %s\n", sk_dtype_name(in->dtype));
		printf("shape:    %s\n", shape_str(in->ndim, in->shape, shape, sizeof shape));
		uint64_t strides[SK_MAX_DIMS];
		uint64_t s = sk_dtype_size(in->dtype);
		for (int i = in->ndim - 1; i >= 0; i--) {
			strides[i] = s;
			s *= in->shape[i] ? in->shape[i] : 1;
		}
		printf("strides:  %s\n", shape_str(in->ndim, strides, shape, sizeof shape));
		printf("elements: %llu\n", (unsigned long long)in->nitems);
	} else if (in->kind == SK_KIND_BITS) {
		printf("bits:     %llu\n", (unsigned long long)in->nitems);
		if (set_bits >= 0)
			printf("set:      %lld\n", (long long)set_bits);
	}
	if (in->kind == SK_KIND_VALUE)
		printf("dtype:    %s%s\n", sk_dtype_name(in->dtype),
		       in->locked ? " (with a lock)" : " (raw, lock-free)");
	if (in->kind == SK_KIND_ARRAY && in->locked)
		printf("lock:     yes (a robust mutex in the header)\n");
	if (has_state)
		printf("%-10s%s\n", in->kind == SK_KIND_VALUE ? "value:" : "state:", state);
	if (has_qs) {
		printf("capacity: %s ring, messages of at most %s\n", human_size(qs.capacity, a),
		       human_size(qs.max_msg, b));
		printf("traffic:  %llu pushed, %llu popped; %llu recoveries from a dead holder\n",
		       (unsigned long long)qs.pushed, (unsigned long long)qs.popped, (unsigned long long)qs.recoveries);
		printf("waiting:  %d producers, %d consumers\n", qs.waiting_producers, qs.waiting_consumers);
	}
	printf("data:     %s (%llu bytes) at offset %llu\n", human_size(in->data_size, a),
	       (unsigned long long)in->data_size, (unsigned long long)in->data_offset);
	struct passwd *pw = getpwuid(in->uid);
	printf("file:     %s (%llu bytes), mode %04o, owner %s (uid %u)\n", human_size(in->file_size, b),
	       (unsigned long long)in->file_size, in->mode, pw ? pw->pw_name : "?", (unsigned)in->uid);
	printf("created:  %s by pid %d (%s)\n", time_str(in->ctime_ns, a), (int)in->creator_pid,
	       in->creator_alive > 0    ? "running"
	       : in->creator_alive == 0 ? "exited"
					: "not judged from here: another pid namespace, or /proc cannot tell");
	if (in->creator_pidns)
		printf("pidns:    pid:[%llu] (the creator's pid namespace)\n", (unsigned long long)in->creator_pidns);
	if (in->owned)
		printf("lifetime: owned: the name goes once pid %d has exited (shmkit gc)\n", (int)in->creator_pid);
	else
		printf("lifetime: persistent: stays until removed (shmkit rm)\n");
	if (in->frozen)
		printf("frozen:   yes: it opens read-only only\n");
	/* Which pages the file got, and why (the creator's record). */
	printf("pages:    %s: %s", in->page_size > 4096 ? "2 MiB" : "4 KiB", sk_huge_str(in->huge_status));
	if (in->huge_status == SK_HUGE_PARTIAL)
		printf(" (%s of the file in 2 MiB pages)", human_size(in->huge_bytes, a));
	if (in->huge_errno)
		printf(" (%s)", strerror(in->huge_errno));
	printf("\n");
	printf("layout:   version %u\n", in->version);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' },
					      { "count", no_argument, 0, 'c' },
					      { "any-owner", no_argument, 0, 'o' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	bool json = false, count = false;
	int oflags = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'c': count = true; break;
		case 'o': oflags = SK_OPEN_ANY_OWNER; break;
		case 'h': fputs(help, stdout); return 0;
		default: return usage_error("info", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc - 1)
		return usage_error("info", optind == argc ? "missing NAME" : "too many arguments");
	const char *name = argv[optind];

	/* One open, one validation of the header: what is shown of the header
	 * and what is read inside (a queue's statistics, a lock's state) come
	 * from the same handle. A segment that cannot be opened (another user's
	 * without --any-owner: SK_EOWNER) is shown from its header alone, or
	 * fails with the header's error. */
	sk_segment *seg = NULL;
	sk_segment_info in;
	int orc = sk_segment_open(name, SK_RDONLY | oflags, &seg);
	int rc = orc ? sk_segment_stat(name, &in) : sk_segment_fstat(seg, &in);
	if (rc)
		return fail("info", "%s: %s", name, sk_strerror(rc));
	rc = show(name, seg, orc, &in, oflags, json, count);
	sk_segment_close(seg);
	return rc;
}
