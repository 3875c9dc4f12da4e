/*
 * cli.h: shared declarations of the shmkit command. The command uses only
 * shmkit's public API; these helpers format and parse for it.
 */
#ifndef SHMKIT_CLI_H
#define SHMKIT_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shmkit.h"

/* Exit codes: 0 success, 1 the operation failed, 2 usage error. */
enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_ls(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_gc(int argc, char **argv);
int cmd_freeze(int argc, char **argv);

/* Prints "shmkit CMD: message" and a hint to stderr; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "shmkit CMD: message" to stderr; returns EXIT_FAIL. */
int fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "1024", "4K", "1.5G", "2GiB" (powers of 1024). Returns false on bad input or overflow. */
bool parse_size(const char *s, uint64_t *out);
/* "A,B,C" of sizes (or "" / "()" for zero dimensions). */
bool parse_shape(const char *s, int *ndim, uint64_t *shape);
/* Octal permission bits like "0640" or "640": 1 to 0777, no setuid, setgid
 * or sticky bit. */
bool parse_mode(const char *s, uint32_t *out);
#define MODE_HELP "octal permission bits 1 to 0777, like 0640 (no setuid, setgid or sticky bit)"
/* Why opening name failed with rc: sk_strerror's text, or for SK_EOWNER a
 * sentence naming the segment's owner. buf holds at least 256 bytes. */
const char *open_error(const char *name, int rc, char *buf, size_t len);
/* Writes s for a terminal: printable ASCII as is, a backslash doubled, any
 * other byte as \xHH (names in /dev/shm may hold escape sequences). */
void print_escaped(FILE *f, const char *s);
/* "1.5 GiB"; buf holds at least 32 bytes. */
const char *human_size(uint64_t n, char *buf);
/* "(3, 4)", "(5,)", "()"; buf holds at least 32 * 22 + 4 bytes. */
const char *shape_str(int ndim, const uint64_t *shape, char *buf, size_t len);
/* ISO 8601 UTC time of ns since the epoch; buf holds at least 32 bytes. */
const char *time_str(int64_t ns, char *buf);
/* Writes s as a JSON string literal. */
void json_string(FILE *f, const char *s);
/* Writes the header fields of info as JSON object members (no braces). */
void json_info_fields(FILE *f, const sk_segment_info *info);
/* For values, named locks and queues: a one-line state ("held by pid 12
 * (running)", "count 2", "42, lock free", "3 messages, ...") in buf, the
 * lock's state in *st. Returns false for other kinds or when the segment
 * cannot be read. oflags is 0 or SK_OPEN_ANY_OWNER; without it another
 * user's segment is not opened and the state says so. Opens the segment
 * (name, in: its sk_segment_stat) to look inside. */
bool segment_state(const char *name, const sk_segment_info *in, int oflags, char *buf, size_t len, sk_lock_state *st,
		   bool *has_lock);
/* The same for a segment the caller has opened read-only: seg, or NULL with
 * orc the open's error (SK_EOWNER: another user's, not inspected); in is
 * sk_segment_fstat's (or sk_segment_stat's when the open failed). A queue's
 * statistics, read without its lock, go to *qs with *has_qs set. A value is
 * still opened by name (its typed handle). */
bool segment_state_of(const sk_segment *seg, int orc, const char *name, const sk_segment_info *in, int oflags,
		      char *buf, size_t len, sk_lock_state *st, bool *has_lock, sk_queue_stats *qs, bool *has_qs);
/* Writes ", \"queue\": {...}". */
void json_queue_fields(FILE *f, const sk_queue_stats *qs);
/* Writes ", \"state\": ..." and, with a lock, ", \"lock\": {...}". */
void json_state_fields(FILE *f, const char *state, const sk_lock_state *st, bool has_lock);
/* Reads from fd until n bytes are in buf or the end of the file, retrying
 * interrupted and short reads (at most 64 MiB a call); *got is the count read
 * (less than n only at the end of the file). 0, or -errno. */
int read_full(int fd, void *buf, size_t n, size_t *got);
/* Writes all n bytes of buf to fd, retrying interrupted and short writes (at
 * most 64 MiB a call). 0, or -errno. */
int write_full(int fd, const void *buf, size_t n);
/* True when an argument is -h or --help. */
bool is_help(const char *arg);

#endif
