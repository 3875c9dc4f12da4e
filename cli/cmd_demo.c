/*
 * cmd_demo.c: `shmkit demo`, the problem shmkit exists for: several bit
 * arrays and int64 arrays totalling SIZE, read by W worker processes, with
 * one copy of the data in memory instead of W.
 *
 * Steps: start the worker pool (before the data exists, so the workers must
 * attach by name like independent programs); create 2 bit arrays and 2 int64
 * arrays; fill them in parallel with a reproducible pattern (the fill also
 * computes the expected popcount, sum, min and max); each worker attaches by
 * name, scans all the data, then its own share; the memory of every process
 * is read from /proc/PID/smaps_rollup while all of them hold the data. The
 * machine's plain memory read speed is measured in the same run with the same
 * workers reading private buffers, and with --baseline copy each worker gets
 * its own private copy through a pipe, as pickled arguments would, so the two
 * memory totals stand side by side.
 *
 * This file is the command: its options, the steps in order and the
 * measurements between them. The workload is demo_work.c, the copy baseline
 * demo_copy.c, the report demo_report.c (demo.h); how memory is measured is
 * measure/ (shared with bench/).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "demo.h"

static const char help[] =
    "usage: shmkit demo [--size SIZE] [--workers N] [--baseline copy|auto|none] [--json] [--keep]\n"
    "                   [--anonymous] [--huge|--no-huge]\n\n"
    "Put SIZE of data (two bit arrays and two int64 arrays) in shared memory once,\n"
    "start N worker processes that attach to it by name and scan all of it, check\n"
    "their results, and show what that cost in memory and time: attach time per\n"
    "worker, scan speed next to this machine's plain memory read speed (measured in\n"
    "the same run), the proportional set size (PSS) of the workers and of the whole\n"
    "process tree, page-table memory, and what copying the data would have cost.\n\n"
    "  --size SIZE      total data, with K/M/G suffixes (default 1G)\n"
    "  --workers N      worker processes (default 12)\n"
    "  --baseline copy  also run the naive way: each worker receives its own private\n"
    "                   copy through a pipe; refused when N x SIZE does not fit in memory\n"
    "  --baseline auto  the same when it fits, a note when it does not\n"
    "  --json           print the figures as one JSON object on stdout\n"
    "  --keep           leave the segments in /dev/shm (and print their names)\n"
    "  --anonymous      anonymous segments (memfd) made before the workers, which inherit\n"
    "                   them: nothing is ever named, and a demo killed outright leaves\n"
    "                   nothing behind (named segments are owned: shmkit gc removes them)\n"
    "  --huge           SK_CREATE_HUGE: 2 MiB pages whatever the size, data on a 2 MiB\n"
    "                   boundary; anonymous segments take them from the huge-page pool\n"
    "                   (vm.nr_hugepages) when it has room\n"
    "  --no-huge        SK_CREATE_NOHUGE: 4 KiB pages (by default segments of 4 MiB or\n"
    "                   more get 2 MiB pages where the kernel allows)\n"
    "  -h, --help       show this help\n\n"
    "Progress goes to stderr. The segments are removed on exit, on error and on\n"
    "Ctrl-C unless --keep is given. Exit status 1 if a result is wrong.\n";

typedef struct demo_opts {
	uint64_t size;
	int nworkers;
	bool json, keep;
	uint32_t page_flags;
	const char *baseline;
} demo_opts;

/* -1 to go on, or the exit status. */
static int parse_opts(int argc, char **argv, demo_opts *o)
{
	static const struct option opts[] = {
		{ "size", required_argument, 0, 's' },     { "workers", required_argument, 0, 'w' },
		{ "baseline", required_argument, 0, 'b' }, { "json", no_argument, 0, 'j' },
		{ "keep", no_argument, 0, 'k' },           { "anonymous", no_argument, 0, 'a' },
		{ "huge", no_argument, 0, 'H' },           { "no-huge", no_argument, 0, 'N' },
		{ "help", no_argument, 0, 'h' },           { 0 }
	};
	*o = (demo_opts){ .size = UINT64_C(1) << 30, .nworkers = 12, .baseline = "none" };
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_size(optarg, &o->size))
				return usage_error("demo", "invalid --size '%s'", optarg);
			break;
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > SK_POOL_MAX_WORKERS)
				return usage_error("demo", "--workers takes 1 to %d", SK_POOL_MAX_WORKERS);
			o->nworkers = (int)v;
			break;
		}
		case 'b':
			if (strcmp(optarg, "copy") && strcmp(optarg, "auto") && strcmp(optarg, "none"))
				return usage_error("demo", "--baseline takes copy, auto or none");
			o->baseline = optarg;
			break;
		case 'j': o->json = true; break;
		case 'k': o->keep = true; break;
		case 'a': demo_anon = true; break;
		case 'H': o->page_flags = SK_CREATE_HUGE; break;
		case 'N': o->page_flags = SK_CREATE_NOHUGE; break;
		case 'h': fputs(help, stdout); return 0;
		case ':': return usage_error("demo", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("demo", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("demo", "unexpected argument '%s'", argv[optind]);
	if (demo_anon && o->keep)
		return usage_error("demo", "--keep needs named segments; --anonymous ones have no name to keep");
	uint64_t words = o->size / NSEG / 8;
	if (words < 8)
		return usage_error("demo", "--size must be at least 256 bytes");
	if (words * 64 > SK_BITS_MAX)
		return usage_error("demo", "--size is at most 512G (each bit array holds at most 2^40 bits)");
	return -1;
}

/* Whether the copy baseline runs: -1 to go on with *want set, or the exit
 * status when --baseline copy cannot fit. */
static int copy_fits(const demo_opts *o, uint64_t data_bytes, bool *want)
{
	*want = strcmp(o->baseline, "none") != 0;
	if (!*want)
		return -1;
	char hs[32], hs2[32];
	uint64_t need = data_bytes * (uint64_t)o->nworkers, avail = measure_mem_available();
	/* The shared data itself is not yet made: it needs room too. */
	if (avail && need + data_bytes > avail / 10 * 9) {
		if (!strcmp(o->baseline, "copy"))
			return fail("demo",
				    "the copy baseline needs %d x %s = %s of memory beside the data, but only %s "
				    "is available; use a smaller --size or fewer --workers",
				    o->nworkers, human_size(data_bytes, hs), human_size(need, hs2),
				    human_size(avail, (char[32]){ 0 }));
		fprintf(stderr, "shmkit demo: skipping the copy baseline: it needs %s, %s is available\n",
			human_size(need, hs), human_size(avail, hs2));
		*want = false;
	}
	return -1;
}

/* ---- removing the segments, on exit and on a signal ---- */

static char seg_names[NSEG][64];
static volatile sig_atomic_t segs_made; /* read by the signal handler */
static bool keep_segments;
static pid_t main_pid;

static void remove_segments(void)
{
	if (keep_segments)
		return;
	for (int k = 0; k < segs_made; k++)
		sk_segment_unlink(seg_names[k]);
	segs_made = 0;
}

static void on_signal(int sig)
{
	/* sk_segment_unlink is async-signal-safe; the names are fixed before the handler is set. */
	if (getpid() == main_pid && !keep_segments)
		for (int k = 0; k < segs_made; k++)
			sk_segment_unlink(seg_names[k]);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- the steps ---- */

typedef struct progress_state {
	const char *what;
	bool tty;
	int64_t last_ns;
	int last_pct;
} progress_state;

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	progress_state *p = arg;
	int pct = total ? (int)(done * 100 / total) : 100;
	if (p->tty) {
		char bar[41];
		int fill = pct * 40 / 100;
		for (int i = 0; i < 40; i++)
			bar[i] = i < fill ? '#' : '.';
		bar[40] = '\0';
		fprintf(stderr, "\r%-8s [%s] %3d%%", p->what, bar, pct);
		if (done == total)
			fputc('\n', stderr);
	} else {
		int64_t t = sk_monotonic_ns();
		if (done == total || t - p->last_ns >= 1000000000) {
			if (pct != p->last_pct)
				fprintf(stderr, "%s: %d%%\n", p->what, pct);
			p->last_ns = t;
			p->last_pct = pct;
		}
	}
}

/* One run of the demo: the pool, the jobs' argument, what was measured. */
typedef struct demo_run {
	sk_pool *pool;
	sk_pool_failure pf;
	demo_arg arg;
	int nworkers;
	stats expect;
	demo_figures fig;
} demo_run;

static const char *why(const demo_run *r, int rc)
{
	return rc == SK_EWORKER ? r->pf.message : sk_strerror(rc);
}

/* A job of one chunk per worker: worker w runs chunk w. */
static sk_pool_job per_worker(demo_run *r, int (*fn)(const sk_pool_ctx *, uint64_t, uint64_t))
{
	return (sk_pool_job){ .fn = fn,
			      .arg = &r->arg,
			      .arg_size = sizeof r->arg,
			      .end = (uint64_t)r->nworkers,
			      .chunk = 1,
			      .schedule = SK_POOL_STATIC };
}

/* Every worker lets go of the data and of its buffer. */
static int release(demo_run *r)
{
	sk_pool_job job = {
		.fn = demo_job_release, .end = (uint64_t)r->nworkers, .chunk = 1, .schedule = SK_POOL_STATIC
	};
	return sk_pool_run(r->pool, &job, &r->pf);
}

/* Fill in parallel; the fill's reduce gives the expected results. */
static int fill(demo_run *r)
{
	progress_state ps = { .what = "filling", .tty = isatty(2), .last_pct = -1 };
	sk_pool_job job = { .fn = demo_job_fill,
			    .arg = &r->arg,
			    .arg_size = sizeof r->arg,
			    .end = r->arg.words * NSEG,
			    .chunk = 1 << 16,
			    .reduce = demo_merge_stats,
			    .reduce_acc = &r->expect,
			    .progress = on_progress,
			    .progress_arg = &ps };
	int64_t t0 = sk_monotonic_ns();
	int rc = sk_pool_run(r->pool, &job, &r->pf);
	r->fig.fill_s = (double)(sk_monotonic_ns() - t0) / 1e9;
	return rc ? rc : release(r);
}

/* Every worker attaches and reads everything, then its share; they keep the
 * data mapped until release. */
static int scan(demo_run *r)
{
	r->arg.keep_open = 1;
	sk_pool_job job = per_worker(r, demo_job_scan);
	int64_t t0 = sk_monotonic_ns();
	int rc = sk_pool_run(r->pool, &job, &r->pf);
	r->fig.scan_s = (double)(sk_monotonic_ns() - t0) / 1e9;
	r->fig.scan_gbps = (double)r->fig.data_bytes * (r->nworkers + 1) / r->fig.scan_s / 1e9;
	return rc;
}

/* Memory, while every worker still holds the data. */
static void measure_memory(demo_run *r)
{
	demo_figures *f = &r->fig;
	f->pss_workers = 0;
	f->page_tables = measure_page_tables(main_pid);
	for (int w = 0; w < r->nworkers; w++) {
		f->pss_workers += measure_pss(sk_pool_pid(r->pool, w));
		f->page_tables += measure_page_tables(sk_pool_pid(r->pool, w));
	}
	f->pss_total = measure_pss(main_pid) + f->pss_workers;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The workers' results against the expected ones, and their attach times.
 * -ENOMEM, or 0. */
static int check_scan(demo_run *r)
{
	int n = r->nworkers;
	stats shares = { 0 };
	int64_t *attach = malloc(2 * (size_t)n * sizeof *attach), *attach_cpu = attach + n;
	if (!attach)
		return -ENOMEM;
	bool ok = true;
	for (int w = 0; w < n; w++) {
		const scan_slot *s = sk_pool_result(r->pool, w);
		ok &= stats_equal(&s->full, &r->expect);
		stats_merge(&shares, &s->share);
		attach[w] = s->attach_ns;
		attach_cpu[w] = s->attach_cpu_ns;
	}
	r->fig.ok = ok && stats_equal(&shares, &r->expect);
	qsort(attach, (size_t)n, sizeof *attach, cmp_i64);
	qsort(attach_cpu, (size_t)n, sizeof *attach_cpu, cmp_i64);
	r->fig.attach_us_median = (double)attach[n / 2] / 1e3;
	r->fig.attach_us_max = (double)attach[n - 1] / 1e3;
	r->fig.attach_cpu_us_median = (double)attach_cpu[n / 2] / 1e3;
	r->fig.attach_cpu_us_max = (double)attach_cpu[n - 1] / 1e3;
	free(attach);
	return 0;
}

/* The machine's plain read speed, same workers, private buffers. Each
 * worker's buffer: its share of the data, but at least 32 MiB so that two at
 * once do not fit in a 32 MiB cache (the figure is memory's, not the
 * cache's), and at most 256 MiB. */
static int memread(demo_run *r)
{
	uint64_t data_bytes = r->fig.data_bytes, buf = data_bytes / (uint64_t)r->nworkers;
	if (buf > (UINT64_C(256) << 20))
		buf = UINT64_C(256) << 20;
	if (buf < (UINT64_C(32) << 20))
		buf = UINT64_C(32) << 20;
	r->arg.buf_bytes = buf / 32 * 32;
	r->arg.reps = (int)(data_bytes / r->arg.buf_bytes) + 1;
	sk_pool_job alloc = per_worker(r, demo_job_buf_alloc), readjob = per_worker(r, demo_job_buf_read);
	int rc = sk_pool_run(r->pool, &alloc, &r->pf);
	if (!rc) {
		int64_t t0 = sk_monotonic_ns();
		rc = sk_pool_run(r->pool, &readjob, &r->pf);
		r->fig.memread_gbps =
		    (double)r->arg.buf_bytes * r->arg.reps * r->nworkers / (double)(sk_monotonic_ns() - t0);
	}
	return rc ? rc : release(r);
}

/* A fresh worker reading memory it has just attached: with the default pages
 * (2 MiB where the kernel allows), then with 4 KiB pages. */
static void cold_scans(demo_figures *f)
{
	const char *note = NULL, *note_4k = NULL;
	f->cold_bytes = f->data_bytes < (UINT64_C(1) << 30) ? f->data_bytes : UINT64_C(1) << 30;
	measure_cold_scan(f->cold_bytes, 0, &f->cold, &note);
	measure_cold_scan(f->cold_bytes, SK_CREATE_NOHUGE, &f->cold_4k, &note_4k);
	f->cold_note = note ? note : note_4k;
}

int cmd_demo(int argc, char **argv)
{
	demo_opts o;
	int st = parse_opts(argc, argv, &o);
	if (st >= 0)
		return st;
	keep_segments = o.keep;
	uint64_t words = o.size / NSEG / 8, data_bytes = words * 8 * NSEG;
	bool want_copy;
	if ((st = copy_fits(&o, data_bytes, &want_copy)) >= 0)
		return st;

	main_pid = getpid();
	demo_run r = { .nworkers = o.nworkers, .arg = { .words = words } };
	for (int k = 0; k < NSEG; k++) {
		snprintf(r.arg.names[k], sizeof r.arg.names[k], "shmkit-demo-%d-%s%d", (int)main_pid,
			 k < NBITS ? "bits" : "int64-", k < NBITS ? k : k - NBITS);
		memcpy(seg_names[k], r.arg.names[k], sizeof seg_names[k]);
	}
	catch_signals();

	demo_figures *f = &r.fig;
	f->data_bytes = data_bytes;
	f->workers = o.nworkers;
	f->anonymous = demo_anon;
	f->pages.page_size = 4096;
	int status = EXIT_FAIL, rc = 0;
	void *data[NSEG] = { 0 };
	sk_bits *bits[NBITS] = { 0 };
	sk_array *arrs[NSEG - NBITS] = { 0 };
	char hs[32];
	/* Named: the pool starts first, so the workers do not inherit the data but
	 * attach by name. Anonymous: the data comes first and the workers inherit it. */
	if (demo_anon && (rc = demo_create_data(&r.arg, o.page_flags, bits, arrs, data, &f->pages, &segs_made)))
		goto out;
	sk_pool_opts po = { .result_bytes = sizeof(scan_slot) };
	rc = sk_pool_create(o.nworkers, &po, &r.pool);
	if (rc) {
		fail("demo", "cannot start %d workers: %s", o.nworkers, sk_strerror(rc));
		goto out;
	}
	if (!demo_anon && (rc = demo_create_data(&r.arg, o.page_flags, bits, arrs, data, &f->pages, &segs_made)))
		goto out;
	if (!o.json)
		fprintf(stderr, "shmkit demo: %s in 2 bit arrays and 2 int64 arrays, %d workers\n",
			human_size(data_bytes, hs), o.nworkers);

	if ((rc = fill(&r))) {
		fail("demo", "filling failed: %s", why(&r, rc));
		goto out;
	}
	if ((rc = scan(&r))) {
		fail("demo", "scanning failed: %s", why(&r, rc));
		goto out;
	}
	measure_memory(&r);
	if (check_scan(&r)) {
		fail("demo", "out of memory");
		goto out;
	}
	rc = release(&r);
	if (!rc)
		rc = memread(&r);
	if (rc) {
		fail("demo", "measuring read speed failed: %s", why(&r, rc));
		goto out;
	}
	cold_scans(f);
	if (want_copy) {
		if (!o.json)
			fprintf(stderr, "copy baseline: sending each of %d workers its own %s...\n", o.nworkers,
				human_size(data_bytes, hs));
		rc = demo_copy_baseline(o.nworkers, words, data, &r.expect, &f->copy);
		if (rc) {
			fail("demo", "the copy baseline failed: %s", sk_strerror(rc));
			goto out;
		}
		f->copy_run = true;
		f->ok &= f->copy.ok;
	}
	f->copy_cost = data_bytes * (uint64_t)(o.nworkers + 1);
	f->kept = keep_segments ? (const char(*)[64])r.arg.names : NULL;

	if (o.json)
		demo_report_json(f);
	else
		demo_report_text(f);
	status = f->ok ? 0 : EXIT_FAIL;
	if (!f->ok)
		fprintf(stderr, "shmkit demo: results differ from the expected values\n");
out:
	if (rc) /* a failed pool may hold a stuck or dead worker: kill, do not wait */
		sk_pool_kill(r.pool);
	else
		sk_pool_close(r.pool);
	for (int k = 0; k < NBITS; k++)
		sk_bits_close(bits[k]);
	for (int k = 0; k < NSEG - NBITS; k++)
		sk_array_close(arrs[k]);
	remove_segments();
	return status;
}
