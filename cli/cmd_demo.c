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
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "coldscan.h"

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

enum { NSEG = 4, NBITS = 2 };

typedef struct demo_arg {
	char names[NSEG][64];
	uint64_t words; /* 64-bit words per segment */
	uint64_t buf_bytes;
	int reps;
	int keep_open;
} demo_arg;

typedef struct stats {
	uint64_t popcount;
	int64_t sum;
	int64_t min, max;
	uint64_t ints; /* elements summed: min/max are valid when > 0 */
} stats;

typedef struct scan_slot {
	stats full, share;
	int64_t attach_ns, attach_cpu_ns, scan_ns, share_ns;
} scan_slot;

/* ---- the pattern ---- */

static inline uint64_t mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Uniform in [-1e9, 1e9] by a multiply-high: no division in the fill loop. */
static inline int64_t int_value(uint64_t i)
{
	return (int64_t)(((unsigned __int128)mix(i) * UINT64_C(2000000001)) >> 64) - 1000000000;
}

static void stats_add_ints(stats *s, const int64_t *v, uint64_t n)
{
	int64_t sum = 0, lo = INT64_MAX, hi = INT64_MIN;
	for (uint64_t i = 0; i < n; i++) {
		sum += v[i];
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	if (!n)
		return;
	s->min = s->ints && s->min < lo ? s->min : lo;
	s->max = s->ints && s->max > hi ? s->max : hi;
	s->sum += sum;
	s->ints += n;
}

static void stats_merge(stats *a, const stats *b)
{
	a->popcount += b->popcount;
	if (b->ints) {
		a->min = a->ints && a->min < b->min ? a->min : b->min;
		a->max = a->ints && a->max > b->max ? a->max : b->max;
	}
	a->sum += b->sum;
	a->ints += b->ints;
}

static bool stats_equal(const stats *a, const stats *b)
{
	return a->popcount == b->popcount && a->sum == b->sum && a->ints == b->ints &&
	       (!a->ints || (a->min == b->min && a->max == b->max));
}

static int64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* ---- worker-side state: each worker is its own process ---- */

static sk_bits *w_bits[NBITS];
static sk_array *w_arr[NSEG - NBITS];
static uint64_t *w_words[NSEG];
static int64_t w_attach_ns, w_attach_cpu_ns;
/* --anonymous: the segments have no names; they are made before the pool
 * and the workers inherit them (their handles below are set before fork). */
static bool anon_mode;
static uint64_t *w_buf;

static void w_release(void)
{
	for (int k = 0; k < NBITS; k++)
		sk_bits_close(w_bits[k]), w_bits[k] = NULL;
	for (int k = 0; k < NSEG - NBITS; k++)
		sk_array_close(w_arr[k]), w_arr[k] = NULL;
	memset(w_words, 0, sizeof w_words);
}

static int w_attach(const demo_arg *a, int flags)
{
	if (w_words[0])
		return 0;
	int64_t t0 = now_ns(), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	for (int k = 0; k < NSEG; k++) {
		int rc;
		if (k < NBITS) {
			rc = sk_bits_open(a->names[k], flags, &w_bits[k]);
			if (!rc)
				w_words[k] = sk_bits_words(w_bits[k]);
		} else {
			rc = sk_array_open_as(a->names[k], flags, SK_INT64, 1, &a->words, &w_arr[k - NBITS]);
			if (!rc)
				w_words[k] = sk_array_data(w_arr[k - NBITS]);
		}
		if (rc) {
			w_release();
			return rc;
		}
	}
	w_attach_ns = now_ns() - t0;
	w_attach_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
	return 0;
}

/* Fill: the index space is all words of the four segments, one after another. */
static int job_fill(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	const demo_arg *a = ctx->arg;
	int rc = w_attach(a, SK_RDWR);
	if (rc)
		return rc;
	stats *st = ctx->result;
	while (b < e) {
		uint64_t seg = b / a->words, off = b % a->words;
		uint64_t n = e - b < a->words - off ? e - b : a->words - off;
		uint64_t *w = w_words[seg] + off;
		if (seg < NBITS) {
			for (uint64_t i = 0; i < n; i++)
				w[i] = mix(b + i);
			/* The library's counting: the same fast path the scan uses. */
			st->popcount += (uint64_t)sk_bits_count(w_bits[seg], off * 64, (off + n) * 64);
		} else {
			int64_t *v = (int64_t *)w;
			for (uint64_t i = 0; i < n; i++)
				v[i] = int_value(b + i);
			stats_add_ints(st, v, n);
		}
		b += n;
	}
	return 0;
}

static int job_release(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)ctx, (void)b, (void)e;
	if (!anon_mode) /* inherited mappings are kept for the next job */
		w_release();
	free(w_buf);
	w_buf = NULL;
	return 0;
}

/* The share of worker w out of n in a segment of `words` words. */
static void share_of(uint64_t words, int w, int n, uint64_t *first, uint64_t *count)
{
	uint64_t per = words / (uint64_t)n, extra = words % (uint64_t)n;
	*first = (uint64_t)w * per + ((uint64_t)w < extra ? (uint64_t)w : extra);
	*count = per + ((uint64_t)w < extra);
}

static void scan_range(stats *st, uint64_t first, uint64_t count)
{
	for (int k = 0; k < NBITS; k++)
		st->popcount += (uint64_t)sk_bits_count(w_bits[k], first * 64, (first + count) * 64);
	for (int k = NBITS; k < NSEG; k++)
		stats_add_ints(st, (const int64_t *)w_words[k] + first, count);
}

/* Scan: one chunk per worker (static schedule, chunk size 1). */
static int job_scan(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	scan_slot *r = ctx->result;
	int rc = w_attach(a, SK_RDONLY);
	if (rc)
		return rc;
	r->attach_ns = w_attach_ns;
	r->attach_cpu_ns = w_attach_cpu_ns;
	int64_t t0 = now_ns();
	scan_range(&r->full, 0, a->words);
	int64_t t1 = now_ns();
	uint64_t first, count;
	share_of(a->words, ctx->worker, ctx->nworkers, &first, &count);
	scan_range(&r->share, first, count);
	r->scan_ns = t1 - t0;
	r->share_ns = now_ns() - t1;
	if (!a->keep_open && !anon_mode)
		w_release();
	return 0;
}

/* The machine's read speed: private buffers, allocated and touched first. */
static int job_buf_alloc(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	w_buf = malloc(a->buf_bytes);
	if (!w_buf)
		return -ENOMEM;
	for (uint64_t i = 0; i < a->buf_bytes / 8; i++)
		w_buf[i] = i ^ (uint64_t)ctx->worker;
	return 0;
}

static int job_buf_read(const sk_pool_ctx *ctx, uint64_t b, uint64_t e)
{
	(void)b, (void)e;
	const demo_arg *a = ctx->arg;
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, n = a->buf_bytes / 8;
	for (int r = 0; r < a->reps; r++)
		for (uint64_t i = 0; i + 4 <= n; i += 4) {
			s0 += w_buf[i];
			s1 += w_buf[i + 1];
			s2 += w_buf[i + 2];
			s3 += w_buf[i + 3];
		}
	*(uint64_t *)ctx->result = s0 + s1 + s2 + s3; /* keeps the loop alive */
	return 0;
}

/* ---- the calling side ---- */

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
	/* unlink(2) is async-signal-safe; the names are fixed before the handler is set. */
	if (getpid() == main_pid && !keep_segments)
		for (int k = 0; k < segs_made; k++) {
			char path[96] = "/dev/shm/";
			strcat(path, seg_names[k]);
			unlink(path);
		}
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint64_t proc_field_kb(pid_t pid, const char *file, const char *key)
{
	char path[64], buf[8192];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strstr(buf, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static uint64_t pss_bytes(pid_t pid)
{
	return proc_field_kb(pid, "smaps_rollup", "\nPss:") * 1024;
}

static uint64_t page_table_bytes(pid_t pid)
{
	return proc_field_kb(pid, "status", "\nVmPTE:") * 1024;
}

static uint64_t mem_available(void)
{
	return proc_field_kb(getpid(), "../meminfo", "\nMemAvailable:") * 1024;
}

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
		int64_t t = now_ns();
		if (done == total || t - p->last_ns >= 1000000000) {
			if (pct != p->last_pct)
				fprintf(stderr, "%s: %d%%\n", p->what, pct);
			p->last_ns = t;
			p->last_pct = pct;
		}
	}
}

static void merge_stats(void *acc, const void *slot, int worker)
{
	(void)worker;
	stats_merge(acc, slot);
}

/* The copy baseline: W children, each reads its own copy from a pipe. */
typedef struct copy_result {
	double seconds;
	uint64_t pss_total;
	bool ok;
} copy_result;

static int write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -EIO;
		p = (char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

static int copy_child(int data_fd, int res_fd, uint64_t words)
{
	size_t bytes = (size_t)(words * 8 * NSEG);
	uint64_t *copy = malloc(bytes);
	if (!copy || read_all(data_fd, copy, bytes))
		return 1;
	stats st = { 0 };
	for (int k = 0; k < NBITS; k++)
		for (uint64_t i = 0; i < words; i++)
			st.popcount += (uint64_t)__builtin_popcountll(copy[k * words + i]);
	for (int k = NBITS; k < NSEG; k++)
		stats_add_ints(&st, (const int64_t *)copy + k * words, words);
	if (write_all(res_fd, &st, sizeof st))
		return 1;
	char c;
	while (read(data_fd, &c, 1) > 0) /* hold the copy until the parent has measured */
		;
	return 0;
}

static int run_copy_baseline(int nworkers, uint64_t words, void *const *data, const stats *expect, copy_result *out)
{
	pid_t *pids = calloc((size_t)nworkers, sizeof *pids);
	int *dfd = malloc((size_t)nworkers * sizeof *dfd), *rfd = malloc((size_t)nworkers * sizeof *rfd);
	if (!pids || !dfd || !rfd) {
		free(pids), free(dfd), free(rfd);
		return -ENOMEM;
	}
	int rc = 0, started = 0;
	int64_t t0 = now_ns();
	for (int w = 0; w < nworkers && !rc; w++) {
		int d[2], r[2];
		if (pipe(d) || pipe(r)) {
			rc = -errno;
			break;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			rc = -errno;
			close(d[0]), close(d[1]), close(r[0]), close(r[1]);
			break;
		}
		if (pid == 0) {
			close(d[1]);
			close(r[0]);
			for (int k = 0; k < w; k++)
				close(dfd[k]), close(rfd[k]);
			_exit(copy_child(d[0], r[1], words));
		}
		close(d[0]);
		close(r[1]);
		pids[w] = pid, dfd[w] = d[1], rfd[w] = r[0];
		started++;
	}
	/* Hand every worker its copy, one after another, as a naive program does. */
	for (int w = 0; w < started && !rc; w++)
		for (int k = 0; k < NSEG && !rc; k++)
			rc = write_all(dfd[w], data[k], (size_t)(words * 8));
	out->seconds = (double)(now_ns() - t0) / 1e9;
	out->ok = !rc;
	for (int w = 0; w < started && !rc; w++) {
		stats st;
		if (read_all(rfd[w], &st, sizeof st))
			rc = -EIO;
		else
			out->ok &= stats_equal(&st, expect);
	}
	out->pss_total = pss_bytes(getpid());
	for (int w = 0; w < started; w++)
		out->pss_total += rc ? 0 : pss_bytes(pids[w]);
	for (int w = 0; w < started; w++) {
		close(dfd[w]);
		close(rfd[w]);
		if (rc)
			kill(pids[w], SIGKILL);
		waitpid(pids[w], NULL, 0);
	}
	free(pids), free(dfd), free(rfd);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Creates the four segments. Named ones are owned: if the demo is killed
 * outright, `shmkit gc` (or the next create anywhere) removes what it left;
 * anonymous ones go with the last process that holds them, and the workers
 * (forked after) get the handles set here. */
static int create_data(const demo_arg *arg, uint64_t words, uint32_t page_flags, sk_bits **bits, sk_array **arrs,
		       void **data, sk_segment_info *pages)
{
	sk_create_opts o = { .flags = (anon_mode ? SK_CREATE_ANON : SK_CREATE_OWNED) | page_flags };
	for (int k = 0; k < NSEG; k++) {
		const char *name = anon_mode ? NULL : arg->names[k];
		/* Counted before the create: a signal that lands between the name's
		 * publication and the create's return still removes it (the names
		 * carry our pid: unlinking one not made yet harms no one). */
		if (!anon_mode)
			segs_made = k + 1;
		int rc = k < NBITS ? sk_bits_create(name, words * 64, &o, &bits[k])
				   : sk_array_create(name, SK_INT64, 1, &words, &o, &arrs[k - NBITS]);
		if (rc) {
			if (!anon_mode)
				segs_made = k;
			char hs[32];
			fail("demo", "cannot create %s (%s): %s", anon_mode ? "an anonymous segment" : arg->names[k],
			     human_size(words * 8, hs), sk_strerror(rc));
			return rc;
		}
		sk_segment *seg = k < NBITS ? sk_bits_segment(bits[k]) : sk_array_segment(arrs[k - NBITS]);
		data[k] = sk_segment_data(seg);
		/* The four are the same size: their pages are reported as one, the
		 * smallest page size, the first status short of SK_HUGE_ALL, and
		 * the bytes in 2 MiB pages of all four. */
		sk_segment_info in;
		sk_segment_info_get(seg, &in);
		if (!k || in.page_size < pages->page_size)
			pages->page_size = in.page_size;
		if (!k || pages->huge_status == SK_HUGE_ALL)
			pages->huge_status = in.huge_status;
		pages->huge_bytes = (k ? pages->huge_bytes : 0) + in.huge_bytes;
		if (anon_mode) {
			w_words[k] = data[k];
			if (k < NBITS)
				w_bits[k] = bits[k];
			else
				w_arr[k - NBITS] = arrs[k - NBITS];
		}
	}
	return 0;
}

int cmd_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, 0, 's' },     { "workers", required_argument, 0, 'w' },
		{ "baseline", required_argument, 0, 'b' }, { "json", no_argument, 0, 'j' },
		{ "keep", no_argument, 0, 'k' },           { "anonymous", no_argument, 0, 'a' },
		{ "huge", no_argument, 0, 'H' },           { "no-huge", no_argument, 0, 'N' },
		{ "help", no_argument, 0, 'h' },           { 0 }
	};
	uint64_t size = UINT64_C(1) << 30;
	int nworkers = 12;
	bool json = false;
	uint32_t page_flags = 0;
	const char *baseline = "none";
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (!parse_size(optarg, &size))
				return usage_error("demo", "invalid --size '%s'", optarg);
			break;
		case 'w': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > SK_POOL_MAX_WORKERS)
				return usage_error("demo", "--workers takes 1 to %d", SK_POOL_MAX_WORKERS);
			nworkers = (int)v;
			break;
		}
		case 'b':
			if (strcmp(optarg, "copy") && strcmp(optarg, "auto") && strcmp(optarg, "none"))
				return usage_error("demo", "--baseline takes copy, auto or none");
			baseline = optarg;
			break;
		case 'j': json = true; break;
		case 'k': keep_segments = true; break;
		case 'a': anon_mode = true; break;
		case 'H': page_flags = SK_CREATE_HUGE; break;
		case 'N': page_flags = SK_CREATE_NOHUGE; break;
		case 'h': fputs(help, stdout); return 0;
		case ':': return usage_error("demo", "option '%s' needs a value", argv[optind - 1]);
		default: return usage_error("demo", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("demo", "unexpected argument '%s'", argv[optind]);
	if (anon_mode && keep_segments)
		return usage_error("demo", "--keep needs named segments; --anonymous ones have no name to keep");
	uint64_t words = size / NSEG / 8;
	if (words < 8)
		return usage_error("demo", "--size must be at least 256 bytes");
	if (words * 64 > SK_BITS_MAX)
		return usage_error("demo", "--size is at most 512G (each bit array holds at most 2^40 bits)");
	uint64_t data_bytes = words * 8 * NSEG;
	char hs[32], hs2[32];
	bool want_copy = strcmp(baseline, "none") != 0;
	if (want_copy) {
		uint64_t need = data_bytes * (uint64_t)nworkers, avail = mem_available();
		/* The shared data itself is not yet made: it needs room too. */
		if (avail && need + data_bytes > avail / 10 * 9) {
			if (!strcmp(baseline, "copy"))
				return fail(
				    "demo",
				    "the copy baseline needs %d x %s = %s of memory beside the data, but only %s "
				    "is available; use a smaller --size or fewer --workers",
				    nworkers, human_size(data_bytes, hs), human_size(need, hs2),
				    human_size(avail, (char[32]){ 0 }));
			fprintf(stderr, "shmkit demo: skipping the copy baseline: it needs %s, %s is available\n",
				human_size(need, hs), human_size(avail, hs2));
			want_copy = false;
		}
	}

	main_pid = getpid();
	demo_arg arg = { .words = words };
	for (int k = 0; k < NSEG; k++) {
		snprintf(arg.names[k], sizeof arg.names[k], "shmkit-demo-%d-%s%d", (int)main_pid,
			 k < NBITS ? "bits" : "int64-", k < NBITS ? k : k - NBITS);
		memcpy(seg_names[k], arg.names[k], sizeof seg_names[k]);
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	int status = EXIT_FAIL, rc = 0;
	sk_pool *pool = NULL;
	sk_pool_failure pf;
	void *data[NSEG] = { 0 };
	sk_bits *bits[NBITS] = { 0 };
	sk_array *arrs[NSEG - NBITS] = { 0 };
	sk_segment_info pages = { .page_size = 4096 };
	/* Named: the pool starts first, so the workers do not inherit the data but
	 * attach by name. Anonymous: the data comes first and the workers inherit it. */
	if (anon_mode && (rc = create_data(&arg, words, page_flags, bits, arrs, data, &pages)))
		goto out;
	sk_pool_opts po = { .result_bytes = sizeof(scan_slot) };
	rc = sk_pool_create(nworkers, &po, &pool);
	if (rc) {
		fail("demo", "cannot start %d workers: %s", nworkers, sk_strerror(rc));
		goto out;
	}
	if (!anon_mode && (rc = create_data(&arg, words, page_flags, bits, arrs, data, &pages)))
		goto out;
	if (!json)
		fprintf(stderr, "shmkit demo: %s in 2 bit arrays and 2 int64 arrays, %d workers\n",
			human_size(data_bytes, hs), nworkers);

	/* Fill in parallel; the fill's reduce gives the expected results. */
	stats expect = { 0 };
	progress_state ps = { .what = "filling", .tty = isatty(2), .last_pct = -1 };
	sk_pool_job fill = { .fn = job_fill,
			     .arg = &arg,
			     .arg_size = sizeof arg,
			     .end = words * NSEG,
			     .chunk = 1 << 16,
			     .reduce = merge_stats,
			     .reduce_acc = &expect,
			     .progress = on_progress,
			     .progress_arg = &ps };
	int64_t t0 = now_ns();
	rc = sk_pool_run(pool, &fill, &pf);
	double fill_s = (double)(now_ns() - t0) / 1e9;
	sk_pool_job release = { .fn = job_release, .end = (uint64_t)nworkers, .chunk = 1, .schedule = SK_POOL_STATIC };
	if (!rc)
		rc = sk_pool_run(pool, &release, &pf);
	if (rc) {
		fail("demo", "filling failed: %s", rc == SK_EWORKER ? pf.message : sk_strerror(rc));
		goto out;
	}

	/* Scan: every worker attaches by name and reads everything, then its share. */
	arg.keep_open = 1;
	sk_pool_job scan = { .fn = job_scan,
			     .arg = &arg,
			     .arg_size = sizeof arg,
			     .end = (uint64_t)nworkers,
			     .chunk = 1,
			     .schedule = SK_POOL_STATIC };
	t0 = now_ns();
	rc = sk_pool_run(pool, &scan, &pf);
	double scan_s = (double)(now_ns() - t0) / 1e9;
	if (rc) {
		fail("demo", "scanning failed: %s", rc == SK_EWORKER ? pf.message : sk_strerror(rc));
		goto out;
	}
	/* Memory, while every worker still holds the data. */
	uint64_t pss_workers = 0, pss_total = pss_bytes(main_pid), ptes = page_table_bytes(main_pid);
	for (int w = 0; w < nworkers; w++) {
		pss_workers += pss_bytes(sk_pool_pid(pool, w));
		ptes += page_table_bytes(sk_pool_pid(pool, w));
	}
	pss_total += pss_workers;
	bool ok = true;
	stats shares = { 0 };
	int64_t *attach = malloc(2 * (size_t)nworkers * sizeof *attach), *attach_cpu = attach + nworkers;
	if (!attach) {
		fail("demo", "out of memory");
		goto out;
	}
	for (int w = 0; w < nworkers; w++) {
		const scan_slot *r = sk_pool_result(pool, w);
		ok &= stats_equal(&r->full, &expect);
		stats_merge(&shares, &r->share);
		attach[w] = r->attach_ns;
		attach_cpu[w] = r->attach_cpu_ns;
	}
	ok &= stats_equal(&shares, &expect);
	qsort(attach, (size_t)nworkers, sizeof *attach, cmp_i64);
	qsort(attach_cpu, (size_t)nworkers, sizeof *attach_cpu, cmp_i64);
	double attach_med = (double)attach[nworkers / 2] / 1e3, attach_max = (double)attach[nworkers - 1] / 1e3;
	double attach_cpu_med = (double)attach_cpu[nworkers / 2] / 1e3;
	double attach_cpu_max = (double)attach_cpu[nworkers - 1] / 1e3;
	free(attach);
	if (!rc)
		rc = sk_pool_run(pool, &release, &pf);

	/* The machine's plain read speed, same workers, private buffers. */
	/* Each worker's buffer: its share of the data, but at least 32 MiB so that
	 * two at once do not fit in a 32 MiB cache (the figure is memory's, not
	 * the cache's), and at most 256 MiB. */
	arg.buf_bytes = data_bytes / (uint64_t)nworkers;
	if (arg.buf_bytes > (UINT64_C(256) << 20))
		arg.buf_bytes = UINT64_C(256) << 20;
	if (arg.buf_bytes < (UINT64_C(32) << 20))
		arg.buf_bytes = UINT64_C(32) << 20;
	arg.buf_bytes = arg.buf_bytes / 32 * 32;
	arg.reps = (int)(data_bytes / arg.buf_bytes) + 1;
	double read_gbps = 0;
	sk_pool_job alloc = scan, readjob = scan;
	alloc.fn = job_buf_alloc;
	readjob.fn = job_buf_read;
	if (!rc)
		rc = sk_pool_run(pool, &alloc, &pf);
	if (!rc) {
		t0 = now_ns();
		rc = sk_pool_run(pool, &readjob, &pf);
		read_gbps = (double)arg.buf_bytes * arg.reps * nworkers / (double)(now_ns() - t0);
	}
	if (!rc)
		rc = sk_pool_run(pool, &release, &pf);
	if (rc) {
		fail("demo", "measuring read speed failed: %s", rc == SK_EWORKER ? pf.message : sk_strerror(rc));
		goto out;
	}
	/* A fresh worker reading memory it has just attached: with the default
	 * pages (2 MiB where the kernel allows), then with 4 KiB pages. */
	uint64_t cold_bytes = data_bytes < (UINT64_C(1) << 30) ? data_bytes : UINT64_C(1) << 30;
	cold_scan cold, cold_4k;
	const char *cold_note = NULL, *note_4k = NULL;
	cold_scan_run(cold_bytes, 0, &cold, &cold_note);
	cold_scan_run(cold_bytes, SK_CREATE_NOHUGE, &cold_4k, &note_4k);
	double scanned = (double)data_bytes * (nworkers + 1);
	double scan_gbps = scanned / scan_s / 1e9;

	copy_result cr = { 0 };
	if (want_copy) {
		if (!json)
			fprintf(stderr, "copy baseline: sending each of %d workers its own %s...\n", nworkers,
				human_size(data_bytes, hs));
		rc = run_copy_baseline(nworkers, words, data, &expect, &cr);
		if (rc) {
			fail("demo", "the copy baseline failed: %s", sk_strerror(rc));
			goto out;
		}
		ok &= cr.ok;
	}
	uint64_t copy_cost = data_bytes * (uint64_t)(nworkers + 1);

	if (json) {
		printf("{\"data_bytes\": %llu, \"workers\": %d, \"attach_us_median\": %.1f, \"attach_us_max\": %.1f, "
		       "\"attach_cpu_us_median\": %.1f, \"attach_cpu_us_max\": %.1f, "
		       "\"fill_seconds\": %.3f, \"scan_seconds\": %.3f, \"scan_gbps\": %.2f, \"memread_gbps\": %.2f, "
		       "\"scan_vs_memread\": %.3f, \"pss_workers_bytes\": %llu, \"pss_total_bytes\": %llu, "
		       "\"pss_total_vs_data\": %.3f, \"page_tables_bytes\": %llu, \"copy_would_cost_bytes\": %llu, "
		       "\"anonymous\": %s, \"page_size\": %llu, \"results_ok\": %s",
		       (unsigned long long)data_bytes, nworkers, attach_med, attach_max, attach_cpu_med, attach_cpu_max,
		       fill_s, scan_s, scan_gbps, read_gbps, scan_gbps / read_gbps, (unsigned long long)pss_workers,
		       (unsigned long long)pss_total, (double)pss_total / (double)data_bytes, (unsigned long long)ptes,
		       (unsigned long long)copy_cost, anon_mode ? "true" : "false", (unsigned long long)pages.page_size,
		       ok ? "true" : "false");
		printf(", \"huge_status\": \"%s\", \"huge_bytes\": %llu", huge_status_token(pages.huge_status),
		       (unsigned long long)pages.huge_bytes);
		printf(", \"cold_scan_bytes\": %llu", (unsigned long long)cold_bytes);
		if (cold.ok)
			printf(
			    ", \"cold_scan_gbps\": %.2f, \"warm_scan_gbps\": %.2f, \"page_tables_cold_bytes\": %.0f, "
			    "\"cold_page_size\": %llu, \"cold_huge_status\": \"%s\"",
			    cold.cold_gbps, cold.warm_gbps, cold.page_tables, (unsigned long long)cold.reader_page_size,
			    huge_status_token(cold.huge_status));
		if (!cold.ok || !cold_4k.ok)
			printf(", \"cold_scan_note\": \"%s\"", cold_note ? cold_note : note_4k ? note_4k : "?");
		if (cold_4k.ok)
			printf(", \"cold_scan_gbps_4k\": %.2f, \"warm_scan_gbps_4k\": %.2f, "
			       "\"page_tables_cold_bytes_4k\": %.0f",
			       cold_4k.cold_gbps, cold_4k.warm_gbps, cold_4k.page_tables);
		if (want_copy)
			printf(", \"copy_pss_total_bytes\": %llu, \"copy_seconds\": %.3f, \"copy_vs_shmkit_pss\": %.2f",
			       (unsigned long long)cr.pss_total, cr.seconds, (double)cr.pss_total / (double)pss_total);
		printf("}\n");
	} else {
		char a[32], b[32];
		printf("\n%-24s %s (2 bit arrays, 2 int64 arrays)\n", "data", human_size(data_bytes, a));
		printf("%-24s %d processes\n", "workers", nworkers);
		printf("%-24s %.2f s (in parallel, by the workers)\n", "fill", fill_s);
		if (anon_mode)
			printf("%-24s none: anonymous segments made before the workers, inherited by them\n",
			       "attach per worker");
		else
			printf("%-24s median %.0f us, max %.0f us (4 segments by name; CPU time: median %.0f us, max "
			       "%.0f us)\n",
			       "attach per worker", attach_med, attach_max, attach_cpu_med, attach_cpu_max);
		printf("%-24s %.2f s: each worker read all data, then its share: %.1f GB/s\n", "scan", scan_s,
		       scan_gbps);
		printf("%-24s %.1f GB/s plain read of private memory, same workers (scan = %.2fx of it)\n", "machine",
		       read_gbps, scan_gbps / read_gbps);
		printf("%-24s %s\n", "PSS of the workers", human_size(pss_workers, a));
		printf("%-24s %s = %.2fx the data\n", "PSS of process tree", human_size(pss_total, a),
		       (double)pss_total / (double)data_bytes);
		printf("%-24s %s\n", "page tables", human_size(ptes, a));
		printf("%-24s %s: %s\n", "pages", pages.page_size > 4096 ? "2 MiB" : "4 KiB",
		       sk_huge_str(pages.huge_status));
		if (cold.ok && cold_4k.ok)
			printf(
			    "%-24s %s: %.1f GB/s cold = %.2fx warm with %s pages (the default; page tables %s),\n"
			    "%-24s %.1f GB/s cold = %.2fx warm with 4 KiB pages (SK_CREATE_NOHUGE; page tables %s)\n",
			    "a fresh worker reads", human_size(cold_bytes, b), cold.cold_gbps,
			    cold.cold_gbps / cold.warm_gbps, cold.reader_page_size > 4096 ? "2 MiB" : "4 KiB",
			    human_size((uint64_t)cold.page_tables, a), "", cold_4k.cold_gbps,
			    cold_4k.cold_gbps / cold_4k.warm_gbps,
			    human_size((uint64_t)cold_4k.page_tables, (char[32]){ 0 }));
		else
			printf("%-24s not measured: %s\n", "a fresh worker reads",
			       cold_note ? cold_note
			       : note_4k ? note_4k
					 : "?");
		printf("%-24s %s (%d private copies and the original)\n", "copying would cost",
		       human_size(copy_cost, a), nworkers);
		if (want_copy)
			printf("%-24s PSS of process tree %s = %.1fx shmkit; handing out the copies took %.2f s\n",
			       "copy baseline (measured)", human_size(cr.pss_total, b),
			       (double)cr.pss_total / (double)pss_total, cr.seconds);
		printf("%-24s %s\n", "results", ok ? "ok: every worker saw exactly the expected data" : "WRONG");
		if (keep_segments)
			printf("%-24s %s %s %s %s (kept; remove with shmkit rm)\n", "segments", arg.names[0],
			       arg.names[1], arg.names[2], arg.names[3]);
	}
	status = ok ? 0 : EXIT_FAIL;
	if (!ok)
		fprintf(stderr, "shmkit demo: results differ from the expected values\n");
out:
	if (rc) /* a failed pool may hold a stuck or dead worker: kill, do not wait */
		sk_pool_destroy(pool);
	else
		sk_pool_close(pool);
	for (int k = 0; k < NBITS; k++)
		sk_bits_close(bits[k]);
	for (int k = 0; k < NSEG - NBITS; k++)
		sk_array_close(arrs[k]);
	remove_segments();
	return status;
}
