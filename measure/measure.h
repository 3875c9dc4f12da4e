/*
 * measure.h: what `shmkit demo` (cli/) and the benchmarks (bench/) measure
 * about memory, in one place so that both measure it the same way: the
 * proportional set size (PSS) and page-table bytes of a process, the memory
 * available, the read kernel behind a memory bandwidth figure, a fresh
 * process's cold scan of a segment, and the one-word name of a segment's
 * huge-page status that their JSON (and `shmkit info --json`) prints.
 *
 * Layer: above the library (shmkit's public API and /proc only), below the
 * command and the benchmarks; nothing here prints or exits. The /proc readers
 * return 0 when the file cannot be read (another user's process, no /proc):
 * a figure is then missing, never wrong in another way.
 */
#ifndef SHMKIT_MEASURE_H
#define SHMKIT_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* PSS of process pid in bytes (/proc/PID/smaps_rollup): its private pages,
 * plus each shared page divided by the number of processes mapping it. */
uint64_t measure_pss(pid_t pid);
/* PSS in bytes of this process's mappings that overlap [p, p + n)
 * (/proc/self/smaps). */
uint64_t measure_pss_range(const void *p, size_t n);
/* Bytes of page tables of process pid (VmPTE of /proc/PID/status). */
uint64_t measure_page_tables(pid_t pid);
/* The memory the kernel estimates available to new work, in bytes
 * (MemAvailable of /proc/meminfo). */
uint64_t measure_mem_available(void);

/* The sum of w[0..n) (n rounded down to a multiple of 4), with four
 * independent accumulators so that the loop is bound by memory, not by one
 * chain of additions: the read kernel of every memory bandwidth figure. The
 * result only keeps the loop from being optimised away. */
uint64_t measure_sum_words(const uint64_t *w, size_t n);

typedef struct cold_scan {
	double create_s, fill_s;     /* the creator: sk_segment_create, then its first write of every byte */
	double fill_gbps;            /* bytes / fill_s */
	double refill_gbps;          /* the same fill again, every page mapped: the memory's own speed */
	double cold_gbps, warm_gbps; /* a fresh process: first read (maps every page), second read */
	double page_tables;          /* that process's page-table bytes afterwards (VmPTE) */
	uint64_t page_size;          /* the creator's mapping: 4096 or 2 MiB (sk_segment_info.page_size) */
	uint64_t reader_page_size;   /* the fresh process's mapping */
	int huge_status;             /* SK_HUGE_* */
	int huge_errno;
	uint64_t huge_bytes;
	bool ok;
} cold_scan;

/* What 2 MiB pages change for a segment's creator and for a freshly attached
 * worker. Creates a segment of `bytes` with the creation flags given (0: the
 * defaults; SK_CREATE_NOHUGE: 4 KiB pages), timing the create, the creator's
 * first fill and a second fill (the first fill's ceiling); then a new process attaches to it (by descriptor:
 * the segment is never named, so an interrupted run leaves nothing) and reads
 * it twice. r->ok is false with *note set on failure. The child is reaped
 * before it returns. */
void measure_cold_scan(uint64_t bytes, uint32_t create_flags, cold_scan *r, const char **note);

/* The creator's fills of bytes at data: the first write of every byte
 * (r->fill_s, fill_gbps), then a second (refill_gbps: every page mapped by
 * then, so the memory's own speed, the first fill's ceiling). */
void measure_fill_twice(void *data, uint64_t bytes, cold_scan *r);

/* Reads bytes (a multiple of 16) at data twice, summing 64-bit words: the
 * first pass maps every page the calling process has not mapped yet, the
 * second finds them mapped. GB/s of each pass. */
void measure_read_twice(const void *data, uint64_t bytes, double *cold_gbps, double *warm_gbps);

/* A fresh (forked) process maps the first `bytes` of the file fd read-only,
 * as a segment (sk_segment_open_fd) or, raw, with a plain mmap, and reads
 * them twice (measure_read_twice). Fills r->cold_gbps, warm_gbps,
 * page_tables, reader_page_size (segments only) and ok; the child is reaped
 * before it returns. */
void measure_fresh_reader(int fd, uint64_t bytes, bool raw, cold_scan *r);

/* A one-word name of an SK_HUGE_* status for JSON ("all", "partial",
 * "refused", "small", "opted_out", "hugetlb", "unknown"): what `shmkit info
 * --json`, `shmkit demo --json` and bench/attach print as huge_status. */
const char *huge_status_token(int status);

#endif
