/*
 * cmd_create.c: `shmkit create` makes an array, a bit array or a raw segment.
 */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static const char help[] = "usage: shmkit create [NAME] --dtype TYPE --shape A,B,...  [--mode MODE] [--json]\n"
			   "       shmkit create [NAME] --bits N                      [--mode MODE] [--json]\n"
			   "       shmkit create [NAME] --size SIZE                   [--mode MODE] [--json]\n\n"
			   "Create a zero-filled segment in /dev/shm. Without NAME a unique name is\n"
			   "generated and printed. Space is reserved now: if /dev/shm cannot hold the\n"
			   "segment the command fails and leaves nothing behind. The segment is\n"
			   "persistent: it stays until `shmkit rm` removes it.\n\n"
			   "  --dtype TYPE   array element type: bool, int8, int16, int32, int64, uint8,\n"
			   "                 uint16, uint32, uint64, float32, float64 (or i8, f4, ...)\n"
			   "  --shape A,B,.. array extents, C order, 0 to 32 of them ('' or '()' for a\n"
			   "                 0-d array)\n"
			   "  --bits N       a bit array of N bits (up to 2^40)\n"
			   "  --size SIZE    a raw segment of SIZE bytes\n"
			   "  --mode MODE    octal permission bits 1 to 0777 (default 0600; setuid,\n"
			   "                 setgid and sticky bits are refused)\n"
			   "  --json         print the new segment's header as JSON\n"
			   "  -h, --help     show this help\n\n"
			   "Numbers take binary suffixes: 4K = 4096, 1.5M, 2G, 1T. NAME is 1 to 200 characters\n"
			   "of A-Z a-z 0-9 . _ -.\n";

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dtype", required_argument, 0, 'd' }, { "shape", required_argument, 0, 's' },
		{ "bits", required_argument, 0, 'b' },  { "size", required_argument, 0, 'z' },
		{ "mode", required_argument, 0, 'm' },  { "json", no_argument, 0, 'j' },
		{ "help", no_argument, 0, 'h' },        { 0 }
	};
	const char *dtype_s = NULL, *shape_s = NULL, *bits_s = NULL, *size_s = NULL;
	sk_create_opts co = { 0 };
	bool json = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dtype_s = optarg; break;
		case 's': shape_s = optarg; break;
		case 'b': bits_s = optarg; break;
		case 'z': size_s = optarg; break;
		case 'm':
			if (!parse_mode(optarg, &co.mode))
				return usage_error("create", "invalid --mode '%s' (" MODE_HELP ")", optarg);
			break;
		case 'j': json = true; break;
		case 'h': fputs(help, stdout); return 0;
		case ':': return usage_error("create", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("create", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind > 1)
		return usage_error("create", "too many arguments");
	const char *name = optind < argc ? argv[optind] : NULL;
	if (name && sk_name_check(name))
		return usage_error("create", "invalid name '%s': %s", name, sk_strerror(SK_EBADNAME));
	int kinds = (dtype_s || shape_s) + !!bits_s + !!size_s;
	if (kinds != 1)
		return usage_error("create", kinds ? "give only one of --dtype/--shape, --bits, --size"
						   : "give --dtype and --shape, --bits or --size");

	int rc;
	sk_segment_info info;
	if (bits_s) {
		uint64_t n;
		if (!parse_size(bits_s, &n))
			return usage_error("create", "invalid --bits '%s'", bits_s);
		if (n > SK_BITS_MAX)
			return usage_error("create", "--bits %s is more than 2^40", bits_s);
		sk_bits *b;
		rc = sk_bits_create(name, n, &co, &b);
		if (!rc) {
			sk_segment_info_get(sk_bits_segment(b), &info);
			sk_bits_close(b);
		}
	} else if (size_s) {
		uint64_t n;
		if (!parse_size(size_s, &n))
			return usage_error("create", "invalid --size '%s'", size_s);
		sk_segment *s;
		rc = sk_segment_create(name, n, &co, &s);
		if (!rc) {
			sk_segment_info_get(s, &info);
			sk_segment_close(s);
		}
	} else {
		if (!dtype_s || !shape_s)
			return usage_error("create", "an array needs both --dtype and --shape");
		sk_dtype dt = sk_dtype_from_name(dtype_s);
		if (!dt)
			return usage_error("create", "unknown dtype '%s'", dtype_s);
		int ndim;
		uint64_t shape[SK_MAX_DIMS];
		if (!parse_shape(shape_s, &ndim, shape))
			return usage_error("create", "invalid --shape '%s' (like 1000,1000; at most 32 extents)",
					   shape_s);
		sk_array *a;
		rc = sk_array_create(name, dt, ndim, shape, &co, &a);
		if (!rc) {
			sk_segment_info_get(sk_array_segment(a), &info);
			sk_array_close(a);
		}
	}
	if (rc)
		return fail("create", "%s: %s", name ? name : "(generated name)", sk_strerror(rc));
	if (json) {
		printf("{");
		json_info_fields(stdout, &info);
		printf("}\n");
	} else {
		char sz[32], shape[1024];
		if (info.kind == SK_KIND_ARRAY)
			printf("created %s: array of %s %s, %s\n", info.name, sk_dtype_name(info.dtype),
			       shape_str(info.ndim, info.shape, shape, sizeof shape), human_size(info.data_size, sz));
		else if (info.kind == SK_KIND_BITS)
			printf("created %s: %llu bits, %s\n", info.name, (unsigned long long)info.nitems,
			       human_size(info.data_size, sz));
		else
			printf("created %s: raw, %s\n", info.name, human_size(info.data_size, sz));
	}
	return 0;
}
