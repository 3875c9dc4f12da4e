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
			   "when no process with its pid and start time runs, so a reused pid does not keep\n"
			   "a segment alive; when /proc cannot tell, nothing is removed. Persistent segments\n"
			   "are never touched. Processes that still have a removed segment mapped keep\n"
			   "using it; its memory is freed when the last one lets go.\n\n"
			   "  --dry-run  say what would be removed, remove nothing\n"
			   "  --json     print {\"removed\": [...], \"dry_run\": ...}\n"
			   "  -h, --help show this help\n";

typedef struct gc_out {
	bool json, dry;
	int n;
} gc_out;

static int report(const char *name, const sk_segment_info *info, void *arg)
{
	gc_out *o = arg;
	char size[32];
	if (o->json) {
		printf("%s{\"name\": ", o->n ? ", " : "");
		json_string(stdout, name);
		printf(", \"kind\": \"%s\", \"data_bytes\": %llu, \"creator_pid\": %d}", sk_kind_name(info->kind),
		       (unsigned long long)info->data_size, (int)info->creator_pid);
	} else {
		printf("%s %s: %s %s, creator pid %d is gone\n", o->dry ? "would remove" : "removed", name,
		       sk_kind_name(info->kind), human_size(info->data_size, size), (int)info->creator_pid);
	}
	o->n++;
	return 0;
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = { { "dry-run", no_argument, 0, 'n' },
					      { "json", no_argument, 0, 'j' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	gc_out o = { 0 };
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.dry = true; break;
		case 'j': o.json = true; break;
		case 'h': fputs(help, stdout); return 0;
		default: return usage_error("gc", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("gc", "unexpected argument '%s'", argv[optind]);
	if (o.json)
		printf("{\"removed\": [");
	int rc = sk_segment_gc(o.dry ? SK_GC_DRY_RUN : 0, report, &o);
	if (o.json)
		printf("], \"dry_run\": %s}\n", o.dry ? "true" : "false");
	if (rc < 0)
		return fail("gc", "cannot read /dev/shm: %s", sk_strerror(rc));
	if (!o.json)
		printf("%d owned segment%s of dead processes %s\n", rc, rc == 1 ? "" : "s",
		       o.dry ? "would be removed" : "removed");
	return 0;
}
