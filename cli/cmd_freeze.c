/*
 * cmd_freeze.c: `shmkit freeze NAME...` makes segments read-only for good.
 */
#include <errno.h>
#include <getopt.h>

#include "cli.h"

static const char help[] = "usage: shmkit freeze [--any-owner] NAME...\n\n"
			   "Freeze segments: from now on they open read-only only (read-write opens fail\n"
			   "with \"the segment is frozen\"). For data that is published once and then only\n"
			   "read. Processes that already have a segment mapped writable keep that mapping,\n"
			   "so freeze before sharing. Raw segments, bit arrays and arrays without a lock can\n"
			   "be frozen; it cannot be undone.\n\n"
			   "  --any-owner  freeze even segments that another user owns\n"
			   "  -h, --help   show this help\n\n"
			   "Exit status 1 if any segment could not be frozen (the others still are).\n";

int cmd_freeze(int argc, char **argv)
{
	static const struct option opts[] = { { "any-owner", no_argument, 0, 'o' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	int c, oflags = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(help, stdout);
			return 0;
		}
		if (c == 'o') {
			oflags = SK_OPEN_ANY_OWNER;
			continue;
		}
		return usage_error("freeze", "unknown option '%s'", argv[optind - 1]);
	}
	if (optind == argc)
		return usage_error("freeze", "missing NAME");
	int status = 0;
	for (int i = optind; i < argc; i++) {
		sk_segment *seg;
		int rc = sk_segment_open(argv[i], SK_RDWR | oflags, &seg);
		if (!rc) {
			rc = sk_segment_freeze(seg);
			sk_segment_close(seg);
		}
		if (rc == -EINVAL)
			status =
			    fail("freeze", "%s: only raw segments, bit arrays and arrays without a lock can be frozen",
				 argv[i]);
		else if (rc) {
			char why[256];
			status = fail("freeze", "%s: %s", argv[i], open_error(argv[i], rc, why, sizeof why));
		}
	}
	return status;
}
