/*
 * coldscan.h: what 2 MiB pages change for a segment's creator and for a
 * freshly attached worker; shared by `shmkit demo` and bench/attach.
 */
#ifndef SHMKIT_COLDSCAN_H
#define SHMKIT_COLDSCAN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cold_scan {
	double create_s, fill_s;     /* the creator: sk_segment_create, then its first write of every byte */
	double fill_gbps;            /* bytes / fill_s */
	double cold_gbps, warm_gbps; /* a fresh process: first read (maps every page), second read */
	double page_tables;          /* that process's page-table bytes afterwards (VmPTE) */
	uint64_t page_size;          /* the creator's mapping: 4096 or 2 MiB (sk_segment_info.page_size) */
	uint64_t reader_page_size;   /* the fresh process's mapping */
	int huge_status;             /* SK_HUGE_* */
	int huge_errno;
	uint64_t huge_bytes;
	bool ok;
} cold_scan;

/* Creates a segment of `bytes` with the creation flags given (0: the
 * defaults; SK_CREATE_NOHUGE: 4 KiB pages), timing the create and the
 * creator's first fill; then a new process attaches to it (by descriptor:
 * the segment is never named, so an interrupted run leaves nothing) and reads
 * it twice. r->ok is false with *note set on failure. */
void cold_scan_run(uint64_t bytes, uint32_t create_flags, cold_scan *r, const char **note);

/* A one-word name of an SK_HUGE_* status for JSON ("all", "partial",
 * "refused", "small", "opted_out", "hugetlb", "unknown"): what `shmkit info
 * --json`, `shmkit demo --json` and bench/attach print as huge_status. */
const char *huge_status_token(int status);

#endif
