/*
 * cmd_npy.c: `shmkit import` and `shmkit export` speak NumPy's .npy format.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "npy.h"

static const char import_help[] = "usage: shmkit import [--mode MODE] NAME FILE.npy\n\n"
				  "Create array NAME from a NumPy .npy file (format 1.0, 2.0 or 3.0; '-' reads\n"
				  "standard input). The data is read straight into shared memory, into a\n"
				  "segment that gets its name only once all of it is there: no process ever\n"
				  "sees a half-filled NAME, and an import that fails or is killed leaves nothing.\n"
				  "Accepted: C-order arrays of bool, int8-64, uint8-64, float32, float64 in\n"
				  "little-endian byte order. Object, structured, big-endian and Fortran-order\n"
				  "arrays are refused with a one-line reason; so is a truncated file, and then no\n"
				  "segment is left behind.\n\n"
				  "  --mode MODE  octal permission bits 1 to 0777 of the new segment (default\n"
				  "               0600; setuid, setgid and sticky bits are refused)\n"
				  "  -h, --help   show this help\n";

static const char export_help[] = "usage: shmkit export [--any-owner] NAME FILE.npy\n\n"
				  "Write segment NAME to a NumPy .npy file that numpy.load reads back exactly\n"
				  "('-' writes standard output). Arrays keep their dtype and shape; a bit array\n"
				  "is written as its packed bytes (uint8, little bit order: numpy.unpackbits(a,\n"
				  "bitorder='little')[:nbits] gives the bits); a raw segment as uint8 bytes.\n"
				  "FILE is replaced atomically: if the export fails, an existing FILE is untouched.\n"
				  "FILE gets the segment's read and write permission bits, less the umask: never\n"
				  "more than the segment allows (a 0600 segment gives a 0600 file).\n\n"
				  "  --any-owner  export even a segment that another user owns\n"
				  "  -h, --help   show this help\n";

/* Parses options common to both commands (--mode for import, --any-owner
 * for export: NULL where not taken); returns -1 to go on, else an exit code. */
static int parse_opts(const char *cmd, const char *help, int argc, char **argv, uint32_t *mode, int *oflags)
{
	static const struct option opts[] = { { "mode", required_argument, 0, 'm' },
					      { "any-owner", no_argument, 0, 'o' },
					      { "help", no_argument, 0, 'h' },
					      { 0 } };
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (!mode)
				return usage_error(cmd, "unknown option '--mode'");
			if (!parse_mode(optarg, mode))
				return usage_error(cmd, "invalid --mode '%s' (" MODE_HELP ")", optarg);
			break;
		case 'o':
			if (!oflags)
				return usage_error(cmd, "unknown option '--any-owner'");
			*oflags = SK_OPEN_ANY_OWNER;
			break;
		case 'h': fputs(help, stdout); return 0;
		case ':': return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (argc - optind != 2)
		return usage_error(cmd, argc - optind < 2 ? "needs NAME and FILE" : "too many arguments");
	return -1;
}

int cmd_import(int argc, char **argv)
{
	sk_create_opts co = { 0 };
	int rc = parse_opts("import", import_help, argc, argv, &co.mode, NULL);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind], *file = argv[optind + 1];
	if (sk_name_check(name))
		return usage_error("import", "invalid name '%s': %s", name, sk_strerror(SK_EBADNAME));

	int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return fail("import", "%s: %s", file, strerror(errno));
	char err[256];
	uint8_t prefix[NPY_PREFIX_LEN];
	uint8_t *hdr = NULL;
	size_t got;
	uint64_t total = 0;
	npy_header h;
	sk_array *a = NULL;
	int status = EXIT_FAIL;

	if ((rc = read_full(fd, prefix, sizeof prefix, &got))) {
		fail("import", "%s: %s", file, strerror(-rc));
		goto out;
	}
	if (npy_header_length(prefix, got, &total, err, sizeof err)) {
		fail("import", "%s: %s", file, err);
		goto out;
	}
	if (total < sizeof prefix || !(hdr = malloc(total))) {
		fail("import", "%s: %s", file, total < sizeof prefix ? "malformed .npy header" : "out of memory");
		goto out;
	}
	memcpy(hdr, prefix, sizeof prefix);
	if ((rc = read_full(fd, hdr + sizeof prefix, total - sizeof prefix, &got))) {
		fail("import", "%s: %s", file, strerror(-rc));
		goto out;
	}
	if (npy_parse(hdr, sizeof prefix + got, &h, err, sizeof err)) {
		fail("import", "%s: %s", file, err);
		goto out;
	}
	/* Fail early when the name is taken (publishing checks again, atomically). */
	sk_segment_info exists;
	if ((rc = sk_segment_stat(name, &exists)) != -ENOENT) {
		fail("import", "%s: %s", name, sk_strerror(rc ? rc : -EEXIST));
		goto out;
	}
	/* Made without a name, filled, then named: complete or absent. */
	co.flags |= SK_CREATE_UNPUBLISHED;
	rc = sk_array_create(NULL, h.dtype, h.ndim, h.shape, &co, &a);
	if (rc) {
		fail("import", "%s: %s", name, sk_strerror(rc));
		goto out;
	}
	if ((rc = read_full(fd, sk_array_data(a), h.data_len, &got)) || got != h.data_len) {
		if (rc)
			fail("import", "%s: %s", file, strerror(-rc));
		else
			fail("import", "%s: truncated file: %llu bytes of data, expected %llu", file,
			     (unsigned long long)got, (unsigned long long)h.data_len);
		goto out; /* closing the handle discards the unnamed segment */
	}
	if ((rc = sk_segment_publish(sk_array_segment(a), name))) {
		fail("import", "%s: %s", name, sk_strerror(rc));
		goto out;
	}
	status = 0;
out:
	sk_array_close(a);
	free(hdr);
	if (fd != STDIN_FILENO)
		close(fd);
	return status;
}

int cmd_export(int argc, char **argv)
{
	int oflags = 0;
	int rc = parse_opts("export", export_help, argc, argv, NULL, &oflags);
	if (rc >= 0)
		return rc;
	const char *name = argv[optind], *file = argv[optind + 1];

	sk_segment *seg;
	rc = sk_segment_open(name, SK_RDONLY | oflags, &seg);
	char why[256];
	if (rc)
		return fail("export", "%s: %s", name, open_error(name, rc, why, sizeof why));
	sk_segment_info in;
	sk_segment_info_get(seg, &in);
	sk_dtype dt = SK_UINT8;
	int ndim = 1;
	uint64_t shape[SK_MAX_DIMS] = { in.data_size };
	if (in.kind == SK_KIND_ARRAY) {
		dt = in.dtype;
		ndim = in.ndim;
		memcpy(shape, in.shape, sizeof shape);
	} else if (in.kind == SK_KIND_BITS) {
		shape[0] = (in.nitems + 7) / 8; /* the words' bytes, without padding */
	}
	uint64_t nbytes = in.kind == SK_KIND_BITS ? shape[0] : in.data_size;
	uint8_t hdr[4096];
	size_t hl = npy_format(hdr, sizeof hdr, dt, ndim, shape);

	char *tmp = NULL;
	int fd = STDOUT_FILENO;
	if (strcmp(file, "-")) {
		if (asprintf(&tmp, "%s.tmp-XXXXXX", file) < 0) {
			sk_segment_close(seg);
			return fail("export", "out of memory");
		}
		fd = mkostemp(tmp, O_CLOEXEC);
		if (fd < 0) {
			rc = fail("export", "%s: %s", file, strerror(errno));
			free(tmp);
			sk_segment_close(seg);
			return rc;
		}
		/* The segment's read and write bits, less the umask: the file
		 * never lets anyone read what the segment would not. mkostemp
		 * made it 0600, so it is never wider in between. */
		mode_t um = umask(0);
		umask(um);
		if (fchmod(fd, (mode_t)(in.mode & 0666) & ~um) < 0) {
			rc = fail("export", "%s: %s", file, strerror(errno));
			close(fd);
			unlink(tmp);
			free(tmp);
			sk_segment_close(seg);
			return rc;
		}
	}
	rc = write_full(fd, hdr, hl);
	if (!rc && nbytes)
		rc = write_full(fd, sk_segment_data(seg), (size_t)nbytes);
	sk_segment_close(seg);
	if (tmp) {
		if (close(fd) < 0 && !rc)
			rc = -errno;
		if (!rc && rename(tmp, file) < 0)
			rc = -errno;
		if (rc)
			unlink(tmp);
		free(tmp);
	}
	if (rc)
		return fail("export", "%s: %s", file, strerror(-rc));
	return 0;
}
