/*
 * main.c: the shmkit command: dispatch to one file per sub-command.
 */
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *summary;
} commands[] = {
	{ "ls", cmd_ls, "list the shmkit segments in /dev/shm" },
	{ "info", cmd_info, "show what a segment's header says" },
	{ "create", cmd_create, "create an array, a bit array or a raw segment" },
	{ "rm", cmd_rm, "remove segments by name" },
	{ "import", cmd_import, "create an array from a NumPy .npy file" },
	{ "export", cmd_export, "write a segment to a NumPy .npy file" },
	{ "freeze", cmd_freeze, "make segments read-only for good" },
	{ "gc", cmd_gc, "remove owned segments whose creator died" },
	{ "demo", cmd_demo, "many workers, one copy of the data: measure it" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: shmkit [--version] [--help] COMMAND [ARGS...]\n\n"
		   "Named, self-describing shared-memory segments: many processes, one copy of the data.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\nRun 'shmkit COMMAND --help' for the options of a command.\n"
		   "Exit status: 0 on success, 1 when the operation failed, 2 on a usage error.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (is_help(argv[1])) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("shmkit %s\n", sk_version());
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	return usage_error(NULL, "unknown command '%s'", argv[1]);
}
