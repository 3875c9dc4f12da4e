/*
 * cmd_ls.c: `shmkit ls` lists the shmkit segments in /dev/shm.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] = "usage: shmkit ls [--json] [--all] [--any-owner]\n\n"
			   "List the shmkit segments in /dev/shm, one line each: name, kind, type, shape,\n"
			   "size, creating process, creation time (UTC), and for values and named locks\n"
			   "their state (the value; held or free, by which pid, waiters). The creator is\n"
			   "marked (gone) when it has died, (?) when that cannot be judged from here\n"
			   "(it lived in another container's pid namespace: see shmkit gc).\n\n"
			   "Entries whose shmkit header is damaged (checksum, truncation, newer version)\n"
			   "are reported on stderr and do not fail the listing. Entries that are not\n"
			   "shmkit segments (other programs' files, symlinks) are skipped silently.\n\n"
			   "Other users' segments are listed from their headers; their state is not\n"
			   "read unless --any-owner says to (see shmkit info).\n\n"
			   "  --all        also name the skipped entries and why (on stderr; bytes that\n"
			   "               are not printable ASCII are shown as \\xHH)\n"
			   "  --any-owner  also read the state of other users' segments\n"
			   "  --json       print {\"segments\": [...], \"skipped\": [...]} on stdout\n"
			   "  -h, --help   show this help\n";

typedef struct row {
	sk_segment_info info;
	int status;
} row;

typedef struct rows {
	row *v;
	size_t n, cap;
	bool oom;
} rows;

static int collect(const char *name, int status, const sk_segment_info *info, void *arg)
{
	(void)name;
	rows *r = arg;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		row *v = realloc(r->v, cap * sizeof *v);
		if (!v) {
			r->oom = true;
			return 1;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n].info = *info;
	r->v[r->n].status = status;
	r->n++;
	return 0;
}

/* A damaged shmkit segment deserves a warning; a foreign entry does not. */
static bool is_damaged(int status)
{
	return status == SK_ETOOSMALL || status == SK_EVERSION || status == SK_ECHECKSUM || status == SK_ECORRUPT ||
	       status == SK_ETRUNCATED || status == SK_EKIND;
}

static void type_and_shape(const sk_segment_info *in, char *type, size_t tlen, char *shape, size_t slen)
{
	switch (in->kind) {
	case SK_KIND_ARRAY:
		snprintf(type, tlen, "%s", sk_dtype_name(in->dtype));
		shape_str(in->ndim, in->shape, shape, slen);
		break;
	case SK_KIND_BITS:
		snprintf(type, tlen, "bit");
		snprintf(shape, slen, "(%llu,)", (unsigned long long)in->nitems);
		break;
	case SK_KIND_VALUE:
		snprintf(type, tlen, "%s", sk_dtype_name(in->dtype));
		snprintf(shape, slen, "()");
		break;
	default: snprintf(type, tlen, "-"); snprintf(shape, slen, "-");
	}
}

int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = { { "json", no_argument, 0, 'j' },
					      { "all", no_argument, 0, 'a' },
					      { "any-owner", no_argument, 0, 'o' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	bool json = false, all = false;
	int oflags = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'a': all = true; break;
		case 'o': oflags = SK_OPEN_ANY_OWNER; break;
		case 'h': fputs(help, stdout); return 0;
		default: return usage_error("ls", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("ls", "unexpected argument '%s'", argv[optind]);

	rows r = { 0 };
	int rc = sk_segment_list(collect, &r);
	if (rc < 0)
		return fail("ls", "cannot read /dev/shm: %s", sk_strerror(rc));
	if (r.oom) {
		free(r.v);
		return fail("ls", "out of memory");
	}

	if (json) {
		printf("{\"segments\": [");
		int k = 0;
		for (size_t i = 0; i < r.n; i++) {
			if (r.v[i].status)
				continue;
			printf("%s{", k++ ? ", " : "");
			json_info_fields(stdout, &r.v[i].info);
			char state[256];
			sk_lock_state st;
			bool has_lock;
			if (segment_state(r.v[i].info.name, &r.v[i].info, oflags, state, sizeof state, &st, &has_lock))
				json_state_fields(stdout, state, &st, has_lock);
			printf("}");
		}
		printf("], \"skipped\": [");
		k = 0;
		for (size_t i = 0; i < r.n; i++) {
			if (!r.v[i].status)
				continue;
			printf("%s{\"name\": ", k++ ? ", " : "");
			json_string(stdout, r.v[i].info.name);
			printf(", \"code\": %d, \"damaged\": %s, \"error\": ", r.v[i].status,
			       is_damaged(r.v[i].status) ? "true" : "false");
			json_string(stdout, sk_strerror(r.v[i].status));
			printf("}");
		}
		printf("]}\n");
	} else {
		size_t wname = 4, wtype = 4, wshape = 5;
		char type[16], shape[1024], size[32], when[32];
		for (size_t i = 0; i < r.n; i++) {
			if (r.v[i].status)
				continue;
			type_and_shape(&r.v[i].info, type, sizeof type, shape, sizeof shape);
			size_t l = strlen(r.v[i].info.name);
			wname = l > wname ? l : wname;
			wtype = strlen(type) > wtype ? strlen(type) : wtype;
			wshape = strlen(shape) > wshape ? strlen(shape) : wshape;
		}
		printf("%-*s  %-7s  %-*s  %-*s  %10s  %-16s  %-20s  %s\n", (int)wname, "NAME", "KIND", (int)wtype,
		       "TYPE", (int)wshape, "SHAPE", "SIZE", "CREATOR", "CREATED", "STATE");
		for (size_t i = 0; i < r.n; i++) {
			const sk_segment_info *in = &r.v[i].info;
			if (r.v[i].status)
				continue;
			type_and_shape(in, type, sizeof type, shape, sizeof shape);
			char creator[32];
			snprintf(creator, sizeof creator, "%d%s", (int)in->creator_pid,
				 in->creator_alive > 0    ? ""
				 : in->creator_alive == 0 ? " (gone)"
							  : " (?)");
			char state[256] = "";
			sk_lock_state st;
			bool has_lock;
			segment_state(in->name, in, oflags, state, sizeof state, &st, &has_lock);
			printf("%-*s  %-7s  %-*s  %-*s  %10s  %-16s  %-20s  %s\n", (int)wname, in->name,
			       sk_kind_name(in->kind), (int)wtype, type, (int)wshape, shape,
			       human_size(in->data_size, size), creator, time_str(in->ctime_ns, when), state);
		}
	}
	for (size_t i = 0; i < r.n; i++) {
		int st = r.v[i].status;
		if (st && (is_damaged(st) || all)) {
			/* Foreign names can be anything: never send their bytes raw to a terminal. */
			fprintf(stderr, "shmkit ls: %s", is_damaged(st) ? "warning: " : "skipped ");
			print_escaped(stderr, r.v[i].info.name);
			fprintf(stderr, ": %s\n", sk_strerror(st));
		}
	}
	free(r.v);
	return 0;
}
