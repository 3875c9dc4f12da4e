/*
 * coldscan.h: how fast a freshly attached process reads a segment, with
 * 4 KiB pages and with 2 MiB pages; shared by `shmkit demo` and bench/attach.
 */
#ifndef SHMKIT_COLDSCAN_H
#define SHMKIT_COLDSCAN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct cold_scan {
	double cold_gbps, warm_gbps; /* first read (maps every page), second read */
	double page_tables;          /* the reader's page-table bytes afterwards */
	uint64_t page_size;          /* pages behind the data */
	bool ok;
} cold_scan;

/* Makes an anonymous segment of `bytes` (with SK_CREATE_HUGE when huge),
 * fills it, and has a new process attach to it and read it twice. For huge,
 * r->ok is false with *note set when no huge pages could be had. */
void cold_scan_run(uint64_t bytes, bool huge, cold_scan *r, const char **note);

#endif
