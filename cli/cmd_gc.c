/*
 * cmd_gc.c: `shmkit gc` removes the names of owned segments whose creator died.
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] = "usage: shmkit gc [--dry-run] [--json]\n\n"
			   "Remove the names of owned segments (made with SK_CREATE_OWNED, or by `shmkit\n"
			   "demo`) whose creating process has died. A process counts as dead\n"
			   "when no process with its pid and start time runs in its pid namespace, so a\n"
			   "reused pid does not keep a segment alive. A creator is judged only where it\n"
			   "can be: from its own pid namespace, or from one that contains it (the host sees\n"
			   "its containers' processes). A segment whose creator cannot be judged (another\n"
			   "container, another time namespace, a layout 1 header, /proc unreadable) is\n"
			   "kept, and said so. Persistent segments\n"
			   "are never touched. Processes that still have a removed segment mapped keep\n"
			   "using it; its memory is freed when the last one lets go.\n\n"
			   "  --dry-run  say what would be removed, remove nothing\n"
			   "  --json     print {\"removed\": [...], \"kept\": [...], \"dry_run\": ...}: every\n"
			   "             owned segment, with \"reason\" (dead, alive, ns_hidden, timens,\n"
			   "             unknown, old_layout, unlink_failed) and \"why\"\n"
			   "  -h, --help show this help\n";

typedef struct entry {
	char *name;
	int kind;
	uint64_t bytes;
	int pid;
	uint64_t pidns;
	int verdict, error;
} entry;

typedef struct gc_out {
	entry *v;
	size_t n, cap;
	bool oom;
} gc_out;

static int collect(const char *name, const sk_segment_info *info, int verdict, int error, void *arg)
{
	gc_out *o = arg;
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 32;
		entry *v = realloc(o->v, cap * sizeof *v);
		if (!v) {
			o->oom = true;
			return 0;
		}
		o->v = v;
		o->cap = cap;
	}
	entry *e = &o->v[o->n];
	if (!(e->name = strdup(name))) {
		o->oom = true;
		return 0;
	}
	e->kind = info->kind;
	e->bytes = info->data_size;
	e->pid = (int)info->creator_pid;
	e->pidns = info->creator_pidns;
	e->verdict = verdict;
	e->error = error;
	o->n++;
	return 0;
}

static const char *reason(int verdict)
{
	switch (verdict) {
	case SK_GC_DEAD: return "dead";
	case SK_GC_ALIVE: return "alive";
	case SK_GC_NS_HIDDEN: return "ns_hidden";
	case SK_GC_TIMENS: return "timens";
	case SK_GC_UNKNOWN: return "unknown";
	case SK_GC_OLD_LAYOUT: return "old_layout";
	case SK_GC_UNLINK_FAILED: return "unlink_failed";
	}
	return "?";
}

static void json_entries(const gc_out *o, bool removed)
{
	int k = 0;
	for (size_t i = 0; i < o->n; i++) {
		const entry *e = &o->v[i];
		if ((e->verdict == SK_GC_DEAD) != removed)
			continue;
		printf("%s{\"name\": ", k++ ? ", " : "");
		json_string(stdout, e->name);
		printf(", \"kind\": \"%s\", \"data_bytes\": %llu, \"creator_pid\": %d, \"creator_pidns\": %llu, "
		       "\"reason\": \"%s\", \"why\": ",
		       sk_kind_name(e->kind), (unsigned long long)e->bytes, e->pid, (unsigned long long)e->pidns,
		       reason(e->verdict));
		json_string(stdout, sk_gc_verdict_str(e->verdict));
		if (e->error) {
			printf(", \"error\": ");
			json_string(stdout, sk_strerror(e->error));
		}
		printf("}");
	}
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "dry-run", no_argument, 0, 'n' },
					      { "json", no_argument, 0, 'j' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	bool json = false, dry = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': dry = true; break;
		case 'j': json = true; break;
		case 'h': fputs(help, stdout); return 0;
		default: return usage_error("gc", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("gc", "unexpected argument '%s'", argv[optind]);
	gc_out o = { 0 };
	int rc = sk_segment_gc_explain(dry ? SK_GC_DRY_RUN : 0, collect, &o);
	if (rc < 0 || o.oom) {
		for (size_t i = 0; i < o.n; i++)
			free(o.v[i].name);
		free(o.v);
		return rc < 0 ? fail("gc", "cannot read /dev/shm: %s", sk_strerror(rc)) : fail("gc", "out of memory");
	}
	int unjudged = 0;
	if (json) {
		printf("{\"removed\": [");
		json_entries(&o, true);
		printf("], \"kept\": [");
		json_entries(&o, false);
		printf("], \"dry_run\": %s}\n", dry ? "true" : "false");
	}
	for (size_t i = 0; i < o.n; i++) {
		const entry *e = &o.v[i];
		char size[32];
		if (!json && e->verdict == SK_GC_DEAD)
			printf("%s %s: %s %s, creator pid %d is gone\n", dry ? "would remove" : "removed", e->name,
			       sk_kind_name(e->kind), human_size(e->bytes, size), e->pid);
		else if (!json && e->verdict != SK_GC_ALIVE)
			printf("kept %s: %s%s%s\n", e->name, sk_gc_verdict_str(e->verdict), e->error ? ": " : "",
			       e->error ? sk_strerror(e->error) : "");
		unjudged += e->verdict != SK_GC_DEAD && e->verdict != SK_GC_ALIVE;
		free(o.v[i].name);
	}
	free(o.v);
	if (!json) {
		printf("%d owned segment%s of dead processes %s", rc, rc == 1 ? "" : "s",
		       dry ? "would be removed" : "removed");
		if (unjudged)
			printf("; %d kept whose creator could not be judged or removed", unjudged);
		printf("\n");
	}
	return 0;
}
