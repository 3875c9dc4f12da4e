/*
 * bench/attach: attaching an existing array by name against a plain
 * shm_open + fstat + mmap of the same file, in the same run, interleaved
 * (each pair of attaches alternates which goes first); and what 2 MiB pages
 * (the default for large segments) change for a creator's first fill and a
 * fresh worker's first read, against SK_CREATE_NOHUGE (4 KiB pages).
 *
 * Both attaches are timed from the open to having read the first and the last
 * element; closing is not timed. Figures:
 *   - attach time against size, 1 MiB to --max, both ways;
 *   - alone: --blocks blocks of --reps pairs at --size; per block the ratio of
 *     the medians (shmkit / plain, below 1.0 shmkit is faster); min, median,
 *     max over the blocks;
 *   - at once: --rounds rounds in which --workers fresh processes, started
 *     together, each attach both ways; per round the ratio of the medians
 *     over the workers (wall time, and the processes' CPU time);
 *   - pages: --scan-reps rounds of a creator making and filling --scan-mib of
 *     data (then filling it again: the fill's ceiling) and a fresh process
 *     reading it twice, with default pages, 4 KiB pages (SK_CREATE_NOHUGE,
 *     reserved at creation) and a plain shm_open+ftruncate+mmap file (what
 *     multiprocessing.shared_memory makes: pages allocated at first touch):
 *     fill speed, create plus fill time, cold and warm read speed,
 *     page-table bytes.
 *
 *   attach [--json] [--max MIB] [--reps N] [--size MIB] [--blocks B]
 *          [--workers W] [--rounds R] [--scan-mib MIB] [--scan-reps K]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "measure.h"
#include "shmkit.h"

static volatile int64_t sink;

/* The cases of the pages figures, and the figures of each. */
enum { DEFAULT, SMALL, PLAIN, NCASE, NFIG = 9 };
static const char *const case_key[NCASE] = { "default", "small", "plain" };
static const char *const case_label[NCASE] = { "default pages", "4 KiB pages (SK_CREATE_NOHUGE)",
					       "plain shm_open+ftruncate+mmap" };

/* What a program without shmkit does: shm_open, fstat for the size, mmap,
 * close; then it reads the first and last element. Seconds. */
static double plain_attach(const char *name)
{
	double t0 = bench_now();
	int fd = shm_open(name, O_RDONLY, 0);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	const int64_t *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	sink += p[4096 / 8] + p[st.st_size / 8 - 1]; /* the array's first and last element */
	double t = bench_now() - t0;
	munmap((void *)p, (size_t)st.st_size);
	return t;
}

static double shmkit_attach(const char *name)
{
	double t0 = bench_now();
	sk_array *a;
	if (sk_array_open(name, SK_RDONLY, &a))
		return -1;
	const int64_t *e = sk_array_data(a);
	sink += e[0] + e[sk_array_size(a) - 1];
	double t = bench_now() - t0;
	sk_array_close(a);
	return t;
}

/* One pair, in the order given; 0 or -1. */
static int pair(const char *name, bool plain_first, double *t_sk, double *t_plain)
{
	if (plain_first) {
		*t_plain = plain_attach(name);
		*t_sk = shmkit_attach(name);
	} else {
		*t_sk = shmkit_attach(name);
		*t_plain = plain_attach(name);
	}
	return *t_sk < 0 || *t_plain < 0 ? -1 : 0;
}

static double median(double *v, size_t n)
{
	return bench_quantile(v, n, 0.5);
}

/* {"median": m, "range": [min, max], "n": n} of v (sorted in place). */
static void print_spread(const char *key, double *v, size_t n, double scale)
{
	qsort(v, n, sizeof *v, bench_cmp_double);
	printf("\"%s\": {\"median\": %.4g, \"range\": [%.4g, %.4g], \"n\": %zu}", key, median(v, n) * scale,
	       v[0] * scale, v[n - 1] * scale, n);
}

static void load_avg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");
	buf[0] = 0;
	if (f && fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	if (f)
		fclose(f);
}

static int make_array(const char *name, uint64_t bytes, sk_array **out)
{
	uint64_t n = bytes / 8;
	int rc = sk_array_create(name, SK_INT64, 1, &n, NULL, out);
	if (rc) {
		fprintf(stderr, "attach: cannot create %llu MiB: %s\n", (unsigned long long)(bytes >> 20),
			sk_strerror(rc));
		return rc;
	}
	int64_t *d = sk_array_data(*out);
	d[0] = 1;
	d[n - 1] = 2;
	return 0;
}

/* ---- at once: fresh processes started together ---- */

typedef struct slot {
	double sk_wall, plain_wall, sk_cpu, plain_cpu;
	int ok;
} slot;

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int worker(const char *name, int gate, bool plain_first, slot *s)
{
	char c;
	while (read(gate, &c, 1) < 0 && errno == EINTR) /* EOF when the parent lets all go */
		;
	for (int k = 0; k < 2; k++) {
		bool plain = (k == 0) == plain_first;
		double c0 = cpu_now();
		double t = plain ? plain_attach(name) : shmkit_attach(name);
		double c1 = cpu_now();
		if (t < 0)
			return 1;
		*(plain ? &s->plain_wall : &s->sk_wall) = t;
		*(plain ? &s->plain_cpu : &s->sk_cpu) = c1 - c0;
	}
	s->ok = 1;
	return 0;
}

/* One round: per-method medians over the workers. 0 or -1. */
static int round_at_once(const char *name, int nw, int round, slot *slots, double *sk, double *plain, double *skc,
			 double *plainc)
{
	int gate[2];
	if (pipe(gate))
		return -1;
	memset(slots, 0, sizeof *slots * (size_t)nw);
	pid_t pids[256];
	fflush(NULL);
	for (int w = 0; w < nw; w++) {
		pids[w] = fork();
		if (pids[w] == 0) {
			close(gate[1]);
			_exit(worker(name, gate[0], (w + round) % 2 == 0, &slots[w]));
		}
	}
	usleep(20000); /* let them all reach the gate */
	close(gate[1]);
	close(gate[0]);
	int bad = 0;
	for (int w = 0; w < nw; w++) {
		int st;
		if (pids[w] < 0 || waitpid(pids[w], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) || !slots[w].ok)
			bad = 1;
	}
	if (bad)
		return -1;
	double a[256], b[256], c[256], d[256];
	for (int w = 0; w < nw; w++) {
		a[w] = slots[w].sk_wall;
		b[w] = slots[w].plain_wall;
		c[w] = slots[w].sk_cpu;
		d[w] = slots[w].plain_cpu;
	}
	*sk = median(a, (size_t)nw);
	*plain = median(b, (size_t)nw);
	*skc = median(c, (size_t)nw);
	*plainc = median(d, (size_t)nw);
	return 0;
}

/* What measure_cold_scan measures, for a program without shmkit (and
 * multiprocessing.shared_memory): shm_open, ftruncate, mmap; its first fill
 * then faults in 4 KiB pages, each allocated and zeroed at first touch. A
 * fresh process maps the file itself and reads it twice. The name is
 * removed as soon as the file is open: nothing can be left in /dev/shm.
 * 0, or -1 with errno's text in *note. */
static int plain_cold_scan(uint64_t bytes, cold_scan *r, const char **note)
{
	memset(r, 0, sizeof *r);
	char name[64];
	snprintf(name, sizeof name, "/shmkit-bench-plain-%d", (int)getpid());
	double t0 = bench_now();
	int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		*note = strerror(errno);
		return -1;
	}
	shm_unlink(name);
	uint8_t *p = MAP_FAILED;
	if (ftruncate(fd, (off_t)bytes) == 0)
		p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		*note = strerror(errno);
		close(fd);
		return -1;
	}
	r->create_s = bench_now() - t0;
	measure_fill_twice(p, bytes, r);
	r->page_size = r->reader_page_size = 4096;
	measure_fresh_reader(fd, bytes, true, r);
	munmap(p, (size_t)bytes);
	close(fd);
	if (!r->ok)
		*note = "the reader process failed";
	return r->ok ? 0 : -1;
}

/* A failure while the array exists: say so, and remove it. */
static int give_up(const char *name, const char *what)
{
	fprintf(stderr, "attach: %s failed\n", what);
	sk_segment_unlink(name);
	return 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: attach [--json] [--max MIB] [--reps N] [--size MIB] [--blocks B] [--workers W]\n"
			"              [--rounds R] [--scan-mib MIB] [--scan-reps K]\n");
}

int main(int argc, char **argv)
{
	int json = 0, reps = 300, blocks = 7, nworkers = 12, rounds = 15, scan_reps = 3;
	uint64_t max_mib = 4096, size_mib = 256, scan_mib = 1024;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json"))
			json = 1;
		else if (v && !strcmp(a, "--reps"))
			reps = atoi(argv[++i]);
		else if (v && !strcmp(a, "--max"))
			max_mib = strtoull(argv[++i], NULL, 10);
		else if (v && !strcmp(a, "--size"))
			size_mib = strtoull(argv[++i], NULL, 10);
		else if (v && !strcmp(a, "--blocks"))
			blocks = atoi(argv[++i]);
		else if (v && !strcmp(a, "--workers"))
			nworkers = atoi(argv[++i]);
		else if (v && !strcmp(a, "--rounds"))
			rounds = atoi(argv[++i]);
		else if (v && !strcmp(a, "--scan-mib"))
			scan_mib = strtoull(argv[++i], NULL, 10);
		else if (v && !strcmp(a, "--scan-reps"))
			scan_reps = atoi(argv[++i]);
		else {
			usage();
			return 2;
		}
	}
	if (reps < 1 || blocks < 1 || rounds < 1 || scan_reps < 1 || nworkers < 1 || nworkers > 256 || !size_mib ||
	    !scan_mib || !max_mib) {
		usage();
		return 2;
	}
	char load0[128], load1[128];
	load_avg(load0, sizeof load0);
	char name[64];
	snprintf(name, sizeof name, "shmkit-bench-attach-%d", (int)getpid());
	double *ts = malloc(sizeof(double) * (size_t)reps), *tp = malloc(sizeof(double) * (size_t)reps);
	double *tsort = malloc(sizeof(double) * (size_t)reps);
	if (!ts || !tp || !tsort)
		return 1;

	/* Attach time against size. */
	uint64_t sizes[16];
	double med[16], p90[16], pmed[16];
	int ns = 0;
	for (uint64_t mib = 1; mib <= max_mib && ns < 16; mib *= 4) {
		sk_array *a;
		if (make_array(name, mib << 20, &a))
			break;
		for (int r = 0; r < reps; r++)
			if (pair(name, r % 2, &ts[r], &tp[r]))
				return give_up(name, "an attach");
		sk_array_close(a);
		sk_segment_unlink(name);
		sizes[ns] = mib << 20;
		memcpy(tsort, ts, sizeof *ts * (size_t)reps);
		p90[ns] = bench_quantile(tsort, (size_t)reps, 0.9) * 1e6;
		med[ns] = median(ts, (size_t)reps) * 1e6;
		pmed[ns] = median(tp, (size_t)reps) * 1e6;
		ns++;
	}
	if (!ns)
		return 1;

	/* Alone, at one size: blocks of interleaved pairs. */
	sk_array *a;
	if (make_array(name, size_mib << 20, &a))
		return 1;
	double bratio[64], bsk[64], bplain[64];
	if (blocks > 64)
		blocks = 64;
	for (int r = 0; r < 20; r++) /* warm up: page cache, libc, the placement of mappings */
		pair(name, r % 2, &ts[0], &tp[0]);
	for (int b = 0; b < blocks; b++) {
		for (int r = 0; r < reps; r++)
			if (pair(name, (r + b) % 2, &ts[r], &tp[r]))
				return give_up(name, "an attach");
		bsk[b] = median(ts, (size_t)reps);
		bplain[b] = median(tp, (size_t)reps);
		bratio[b] = bsk[b] / bplain[b];
	}

	/* At once: fresh processes, started together. */
	slot *slots =
	    mmap(NULL, sizeof(slot) * (size_t)nworkers, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED)
		return give_up(name, "mmap");
	double rsk[256], rplain[256], rratio[256], rcpu[256];
	if (rounds > 256)
		rounds = 256;
	for (int r = 0; r < rounds; r++) {
		double skc, plainc;
		if (round_at_once(name, nworkers, r, slots, &rsk[r], &rplain[r], &skc, &plainc))
			return give_up(name, "a worker");
		rratio[r] = rsk[r] / rplain[r];
		rcpu[r] = skc / plainc;
	}
	sk_array_close(a);
	sk_segment_unlink(name);

	/* Pages: default pages, 4 KiB pages, and a plain shm_open+ftruncate+mmap
	 * segment, interleaved (each repetition starts with the next one). */
	uint64_t scan_bytes = scan_mib << 20;
	if (scan_reps > 64)
		scan_reps = 64;
	cold_scan *cs = calloc((size_t)scan_reps * NCASE, sizeof *cs);
	if (!cs)
		return 1;
	for (int r = 0; r < scan_reps; r++)
		for (int i = 0; i < NCASE; i++) {
			int k = (r + i) % NCASE;
			const char *note = NULL;
			cold_scan *c = &cs[r * NCASE + k];
			if (k == PLAIN)
				plain_cold_scan(scan_bytes, c, &note);
			else
				measure_cold_scan(scan_bytes, k == SMALL ? SK_CREATE_NOHUGE : 0, c, &note);
			if (!c->ok) {
				fprintf(stderr, "attach: the %s cold scan failed: %s\n", case_key[k], note);
				return 1;
			}
		}
	load_avg(load1, sizeof load1);

	int n = scan_reps;
	double v[NCASE][NFIG][64];
	double speedup[4][64]; /* fill and create+fill, default against 4 KiB pages and against plain */
	for (int r = 0; r < n; r++) {
		for (int k = 0; k < NCASE; k++) {
			const cold_scan *c = &cs[r * NCASE + k];
			v[k][0][r] = c->create_s;
			v[k][1][r] = c->fill_gbps;
			v[k][2][r] = c->cold_gbps;
			v[k][3][r] = c->warm_gbps;
			v[k][4][r] = c->cold_gbps / c->warm_gbps;
			v[k][5][r] = c->page_tables;
			v[k][6][r] = c->create_s + c->fill_s;
			v[k][7][r] = c->refill_gbps;
			v[k][8][r] = c->fill_gbps / c->refill_gbps;
		}
		for (int k = SMALL; k <= PLAIN; k++) {
			speedup[(k - SMALL) * 2][r] = v[DEFAULT][1][r] / v[k][1][r];
			speedup[(k - SMALL) * 2 + 1][r] = v[k][6][r] / v[DEFAULT][6][r];
		}
	}

	if (json) {
		printf("{\"bench\": \"attach\", \"load_before\": \"%s\", \"load_after\": \"%s\", \"reps\": %d, "
		       "\"sizes\": [",
		       load0, load1, reps);
		for (int i = 0; i < ns; i++)
			printf("%s%llu", i ? ", " : "", (unsigned long long)sizes[i]);
		printf("], \"attach_us_median\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.2f", i ? ", " : "", med[i]);
		printf("], \"attach_us_p90\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.2f", i ? ", " : "", p90[i]);
		printf("], \"plain_us_median\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.2f", i ? ", " : "", pmed[i]);
		printf("], \"attach_vs_plain\": [");
		for (int i = 0; i < ns; i++)
			printf("%s%.3f", i ? ", " : "", med[i] / pmed[i]);
		printf("], \"alone\": {\"size_bytes\": %llu, \"blocks\": %d, \"pairs_per_block\": %d, ",
		       (unsigned long long)(size_mib << 20), blocks, reps);
		print_spread("attach_us", bsk, (size_t)blocks, 1e6);
		printf(", ");
		print_spread("plain_us", bplain, (size_t)blocks, 1e6);
		printf(", ");
		print_spread("ratio", bratio, (size_t)blocks, 1);
		printf("}, \"at_once\": {\"size_bytes\": %llu, \"workers\": %d, \"rounds\": %d, ",
		       (unsigned long long)(size_mib << 20), nworkers, rounds);
		print_spread("attach_us", rsk, (size_t)rounds, 1e6);
		printf(", ");
		print_spread("plain_us", rplain, (size_t)rounds, 1e6);
		printf(", ");
		print_spread("ratio", rratio, (size_t)rounds, 1);
		printf(", ");
		print_spread("cpu_ratio", rcpu, (size_t)rounds, 1);
		printf("}, \"pages\": {\"bytes\": %llu, \"reps\": %d", (unsigned long long)scan_bytes, n);
		static const char *const keys[NFIG] = { "create_s",       "fill_gbps",    "cold_scan_gbps",
							"warm_scan_gbps", "cold_vs_warm", "page_tables_bytes",
							"create_fill_s",  "refill_gbps",  "fill_vs_refill" };
		for (int k = 0; k < NCASE; k++) {
			const cold_scan *c = &cs[k];
			printf(", \"%s\": {\"page_size\": %llu, \"reader_page_size\": %llu", case_key[k],
			       (unsigned long long)c->page_size, (unsigned long long)c->reader_page_size);
			if (k != PLAIN)
				printf(", \"huge_status\": \"%s\", \"huge_errno\": %d, \"huge_bytes\": %llu",
				       huge_status_token(c->huge_status), c->huge_errno,
				       (unsigned long long)c->huge_bytes);
			for (int f = 0; f < NFIG; f++) {
				printf(", ");
				print_spread(keys[f], v[k][f], (size_t)n, 1);
			}
			printf("}");
		}
		static const char *const skeys[4] = { "fill_speedup", "create_fill_speedup", "fill_speedup_vs_plain",
						      "create_fill_speedup_vs_plain" };
		for (int k = 0; k < 4; k++) {
			printf(", ");
			print_spread(skeys[k], speedup[k], (size_t)n, 1);
		}
		printf("}}\n");
	} else {
		printf("load average before: %s; after: %s\n", load0, load1);
		printf("%12s  %12s  %12s  %12s  %8s\n", "size", "shmkit us", "p90 us", "plain us", "ratio");
		for (int i = 0; i < ns; i++)
			printf("%9llu MiB  %12.2f  %12.2f  %12.2f  %8.3f\n", (unsigned long long)(sizes[i] >> 20),
			       med[i], p90[i], pmed[i], med[i] / pmed[i]);
		qsort(bratio, (size_t)blocks, sizeof *bratio, bench_cmp_double);
		qsort(rratio, (size_t)rounds, sizeof *rratio, bench_cmp_double);
		qsort(rcpu, (size_t)rounds, sizeof *rcpu, bench_cmp_double);
		printf("attach %llu MiB alone, shmkit / plain shm_open+mmap: median %.3f (min %.3f, max %.3f) over %d "
		       "blocks of %d pairs; %.2f us against %.2f us\n",
		       (unsigned long long)size_mib, median(bratio, (size_t)blocks), bratio[0], bratio[blocks - 1],
		       blocks, reps, median(bsk, (size_t)blocks) * 1e6, median(bplain, (size_t)blocks) * 1e6);
		printf(
		    "%d fresh processes attaching at once: median %.3f (min %.3f, max %.3f) over %d rounds; CPU time "
		    "%.3f (min %.3f, max %.3f); %.2f us against %.2f us\n",
		    nworkers, median(rratio, (size_t)rounds), rratio[0], rratio[rounds - 1], rounds,
		    median(rcpu, (size_t)rounds), rcpu[0], rcpu[rounds - 1], median(rsk, (size_t)rounds) * 1e6,
		    median(rplain, (size_t)rounds) * 1e6);
		for (int k = 0; k < NCASE; k++) {
			const cold_scan *c = &cs[k];
			printf("%s, %llu MiB: create %.3f s, fill %.2f GB/s (%.2fx a second fill), fresh reader cold "
			       "%.2f GB/s = %.2fx warm, page tables %.0f KiB (pages: creator %llu, reader %llu; %s)\n",
			       case_label[k], (unsigned long long)scan_mib, median(v[k][0], (size_t)n),
			       median(v[k][1], (size_t)n), median(v[k][8], (size_t)n), median(v[k][2], (size_t)n),
			       median(v[k][4], (size_t)n), median(v[k][5], (size_t)n) / 1024,
			       (unsigned long long)c->page_size, (unsigned long long)c->reader_page_size,
			       k == PLAIN ? "4 KiB pages allocated at first touch" : sk_huge_str(c->huge_status));
		}
		for (int k = 0; k < 4; k++)
			qsort(speedup[k], (size_t)n, sizeof speedup[k][0], bench_cmp_double);
		for (int k = 0; k < 2; k++)
			printf("default pages against %s: fill %.1fx (min %.1f, max %.1f); create plus fill %.2fx (min "
			       "%.2f, max %.2f)\n",
			       k ? "plain shm_open+ftruncate+mmap" : "4 KiB pages", median(speedup[2 * k], (size_t)n),
			       speedup[2 * k][0], speedup[2 * k][n - 1], median(speedup[2 * k + 1], (size_t)n),
			       speedup[2 * k + 1][0], speedup[2 * k + 1][n - 1]);
	}
	free(cs);
	free(ts);
	free(tp);
	free(tsort);
	return 0;
}
