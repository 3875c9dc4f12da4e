/*
 * cmd_rm.c: `shmkit rm NAME...` removes segments' names.
 */
#include <errno.h>
#include <getopt.h>

#include "cli.h"

static const char help[] = "usage: shmkit rm [--force] NAME...\n\n"
			   "Remove the named segments. Processes that have a segment open keep using it;\n"
			   "its memory is freed when the last of them closes it. Entries of /dev/shm that\n"
			   "are not shmkit segments are refused, so other programs' files are safe.\n\n"
			   "  -f, --force  also remove entries that are not shmkit segments (or are symlinks),\n"
			   "               and say nothing about names that do not exist\n"
			   "  -h, --help   show this help\n\n"
			   "Exit status 1 if any name could not be removed (the others still are).\n";

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = { { "force", no_argument, 0, 'f' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	bool force = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': force = true; break;
		case 'h': fputs(help, stdout); return 0;
		default: return usage_error("rm", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind == argc)
		return usage_error("rm", "missing NAME");
	int status = 0;
	for (int i = optind; i < argc; i++) {
		const char *name = argv[i];
		int rc = sk_segment_unlink(name);
		if (force && (rc == SK_EFOREIGN || rc == SK_ESYMLINK || rc == SK_ETOOSMALL))
			rc = sk_segment_unlink_any(name); /* not a shmkit segment: removed all the same */
		if (force && rc == -ENOENT)
			rc = 0;
		if (rc)
			status = fail("rm", "%s: %s", name, sk_strerror(rc));
	}
	return status;
}
