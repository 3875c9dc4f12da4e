/*
 * demo.h: the parts of `shmkit demo`, each in its own file:
 *   demo_work.c    the workload: the data's pattern, the worker pool's jobs
 *                  (fill, scan, the plain-memory read), the segments' making
 *   demo_copy.c    the naive way, for comparison: each worker gets its own
 *                  private copy of the data through a pipe
 *   demo_report.c  the figures, as text or as one JSON object
 *   cmd_demo.c     the command: options, the steps in order, the
 *                  measurements between them (measure.h), cleaning up
 */
#ifndef SHMKIT_DEMO_H
#define SHMKIT_DEMO_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "measure.h"
#include "shmkit.h"

/* Four segments of the same size: two bit arrays, then two int64 arrays. */
enum { NSEG = 4, NBITS = 2 };

/* The jobs' argument, copied to every worker. */
typedef struct demo_arg {
	char names[NSEG][64];
	uint64_t words; /* 64-bit words per segment */
	uint64_t buf_bytes;
	int reps;
	int keep_open;
} demo_arg;

/* What a reader computes from the data; the fill computes the expected one. */
typedef struct stats {
	uint64_t popcount;
	int64_t sum;
	int64_t min, max;
	uint64_t ints; /* elements summed: min/max are valid when > 0 */
} stats;

/* A worker's result slot in the scan job. */
typedef struct scan_slot {
	stats full, share;
	int64_t attach_ns, attach_cpu_ns, scan_ns, share_ns;
} scan_slot;

void stats_add_ints(stats *s, const int64_t *v, uint64_t n);
void stats_merge(stats *a, const stats *b);
bool stats_equal(const stats *a, const stats *b);
/* An sk_pool_job reduce: stats_merge of a worker's slot into acc. */
void demo_merge_stats(void *acc, const void *slot, int worker);

/* --anonymous: the segments have no names; they are made before the pool and
 * the workers inherit them. Set before demo_create_data. */
extern bool demo_anon;

/* The pool's jobs (demo_work.c). fill: the index space is every word of the
 * four segments, one after another, in chunks; result: stats. scan: one
 * chunk per worker (static schedule, chunk 1), which attaches (by name, or
 * the inherited handles), reads all the data, then its share; result:
 * scan_slot. buf_alloc and buf_read: the machine's plain read speed, each
 * worker its private buffer of arg->buf_bytes read arg->reps times. release:
 * lets go of the data (named) and of the buffer. */
int demo_job_fill(const sk_pool_ctx *ctx, uint64_t b, uint64_t e);
int demo_job_scan(const sk_pool_ctx *ctx, uint64_t b, uint64_t e);
int demo_job_buf_alloc(const sk_pool_ctx *ctx, uint64_t b, uint64_t e);
int demo_job_buf_read(const sk_pool_ctx *ctx, uint64_t b, uint64_t e);
int demo_job_release(const sk_pool_ctx *ctx, uint64_t b, uint64_t e);

/* The pages the data got, reported as one for the four segments. */
typedef struct demo_pages {
	uint64_t page_size; /* the smallest of the four */
	int huge_status;    /* the first short of SK_HUGE_ALL */
	uint64_t huge_bytes;
} demo_pages;

/* Creates the four segments (named: arg->names, owned; anonymous: for the
 * workers to inherit). *made counts the named ones as they are made, for a
 * signal handler that removes them (counted before each create: a signal
 * landing between a name's publication and the create's return still finds
 * it). data[k]: each segment's data. On failure prints why and returns the
 * error; what was made is in bits/arrs for the caller to close. */
int demo_create_data(const demo_arg *arg, uint32_t page_flags, sk_bits **bits, sk_array **arrs, void **data,
		     demo_pages *pages, volatile sig_atomic_t *made);

/* The copy baseline (demo_copy.c): nworkers child processes, each sent its
 * own copy of the four segments' data through a pipe, one after another as a
 * naive program does; each checks what it got against expect. */
typedef struct copy_result {
	double seconds;     /* forking and handing out every copy */
	uint64_t pss_total; /* PSS of this process and the children while they hold their copies */
	bool ok;            /* every child computed expect */
} copy_result;

int demo_copy_baseline(int nworkers, uint64_t words, void *const *data, const stats *expect, copy_result *out);

/* Every figure the demo reports. */
typedef struct demo_figures {
	uint64_t data_bytes;
	int workers;
	bool anonymous;
	double attach_us_median, attach_us_max, attach_cpu_us_median, attach_cpu_us_max;
	double fill_s, scan_s, scan_gbps, memread_gbps;
	uint64_t pss_workers, pss_total, page_tables, copy_cost;
	demo_pages pages;
	uint64_t cold_bytes;
	cold_scan cold, cold_4k; /* default pages, 4 KiB pages */
	const char *cold_note;   /* why a cold scan failed, or NULL */
	bool copy_run;           /* the copy baseline ran: copy holds its figures */
	copy_result copy;
	bool ok;                /* every result as expected */
	const char (*kept)[64]; /* --keep: the NSEG names kept, else NULL */
} demo_figures;

void demo_report_json(const demo_figures *f);
void demo_report_text(const demo_figures *f);

#endif
