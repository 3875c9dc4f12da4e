/*
 * pool.c: worker processes and the parallel loop.
 *
 * Memory layout: one anonymous MAP_SHARED block, made before the workers are
 * forked, so every worker has it at the same address:
 *
 *   pool_shm           job description and its tag, generation counter (the
 *                      futex the idle workers sleep on), chunk counters, flags
 *   arg[ARG_MAX]       the running job's argument bytes
 *   slot[0..n-1]       per worker: a 64-byte header (current chunk, error,
 *                      last generation finished) and result_bytes of result
 *
 * Protocol: the caller writes a job into pool_shm, zeroes the slots, then
 * increments `gen` (release) and wakes all workers. Each worker (acquire)
 * runs chunks, taking indices from `next` with fetch-add (dynamic) or from
 * its own share (static), publishing the chunk it runs in its slot so a crash
 * can be attributed. When done it stores `gen` into its slot's `ran_gen` and
 * signals an eventfd. The caller polls that eventfd together with a pidfd per
 * worker: it learns of completion and of deaths without spinning. An error
 * or a death sets `abort`; the others stop taking chunks. Dead workers are
 * reaped through their pidfd and replaced after the job.
 *
 * Trust: every worker can write the whole block, and a job function with a
 * stray pointer may. So no process takes the block's layout from the block:
 * the slot stride, result size, worker count and eventfd are private copies
 * (the workers inherit them at fork). The job description is read once into
 * a local copy and checked against a tag, a keyed hash of it whose 64-bit key
 * lives only in private memory (drawn before the first fork); a worker runs
 * nothing, and in particular calls no function pointer, from a description
 * whose tag does not match. The tag stops stray writes, not a worker that
 * reads the key from its own memory: workers are the caller's own program.
 * While it waits, the caller puts back the generation and the description
 * if they changed, so a stray write cannot make a sleeping worker miss the
 * job. What a scribbling worker can still do is spoil the job's results or,
 * by rewriting another worker's completion mark, make the caller wait until
 * the job's timeout; it cannot make another process follow a pointer of its
 * choosing or touch memory outside the block.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "clock.h"
#include "format.h"
#include "os.h"
#include "shmkit/pool.h"

#define SLOT_HDR          64u
#define RESULT_BYTES      4096u              /* a result slot when the options do not say */
#define RESULT_BYTES_MAX  (1u << 24)         /* the largest slot the options may ask for */
#define CHUNKS_PER_WORKER 16                 /* a job's default chunk size gives about this many */
#define WATCH_MS          100                /* the caller looks at its workers at least this often */
#define PROGRESS_NS       INT64_C(100000000) /* and calls a job's progress this often */
#define BLIND_MS          10                 /* when it cannot poll: its pause between looks */
#define NS_PER_MS         1000000

/* A job as the caller describes it; copied out of shared memory before use. */
typedef struct job_desc {
	uint64_t gen; /* the generation it belongs to */
	uint64_t begin, end, chunk, nchunks;
	uint64_t arg_size;
	uint64_t schedule;
	uint64_t fn;  /* sk_pool_fn: the same program image in every worker */
	uint64_t tag; /* keyed hash of the fields above */
} job_desc;

typedef struct pool_shm {
	uint32_t gen;   /* futex: bumped to start a job */
	uint32_t quit;  /* workers exit at the next generation */
	uint32_t abort; /* stop taking chunks */
	uint32_t resv;
	uint64_t next;        /* next chunk (dynamic) */
	uint64_t chunks_done; /* progress */
	job_desc job;
} pool_shm;

typedef struct slot_hdr {
	uint64_t cur_begin, cur_end; /* the chunk being run */
	uint32_t busy;               /* 1 while inside fn */
	int32_t rc;                  /* fn's error */
	uint64_t fail_begin, fail_end;
	uint32_t ran_gen; /* last generation finished */
	uint32_t bad_job; /* 1: the job description failed its check; nothing ran */
} slot_hdr;
static_assert(sizeof(slot_hdr) <= SLOT_HDR, "slot header fits");

struct sk_pool {
	pool_shm *shm;
	size_t map_size;
	int n;
	/* The block's layout, never read back from the block. */
	uint64_t stride;       /* bytes per slot */
	uint32_t result_bytes; /* of each slot's result */
	int efd;               /* workers signal it when they finish a job */
	uint64_t key;          /* for job tags; never in shared memory */
	pid_t owner;
	bool broken;
	pid_t *pids;
	int *pidfds;
	bool *dead;
};

static inline uint8_t *arg_area(pool_shm *s)
{
	return (uint8_t *)s + sk__round_up(sizeof *s, 64);
}

static inline slot_hdr *slot(const sk_pool *p, int w)
{
	return (slot_hdr *)(arg_area(p->shm) + SK_POOL_ARG_MAX + (size_t)w * p->stride);
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* The tag of a job description: every field but the tag, mixed with the key. */
static uint64_t job_tag(uint64_t key, const job_desc *j)
{
	const uint64_t f[] = { j->gen, j->begin, j->end, j->chunk, j->nchunks, j->arg_size, j->schedule, j->fn };
	uint64_t h = mix64(key ^ UINT64_C(0x736b706f6f6c6a62));
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
		h = mix64(h ^ f[i]) + key;
	return mix64(h ^ key);
}

/* Whether a job description is one the caller wrote for generation gen: its
 * tag matches and its fields agree with each other. */
static bool job_valid(uint64_t key, const job_desc *j, uint32_t gen)
{
	return j->tag == job_tag(key, j) && j->gen == gen && j->begin <= j->end && j->chunk > 0 &&
	       j->nchunks == (j->end - j->begin) / j->chunk + ((j->end - j->begin) % j->chunk != 0) &&
	       j->arg_size <= SK_POOL_ARG_MAX && (j->schedule == SK_POOL_DYNAMIC || j->schedule == SK_POOL_STATIC) &&
	       j->fn != 0;
}

int sk_pool_share(uint64_t total, int nworkers, int worker, uint64_t *first, uint64_t *count)
{
	if (nworkers < 1 || worker < 0 || worker >= nworkers || !first || !count)
		return -EINVAL;
	uint64_t w = (uint64_t)worker, per = total / (uint64_t)nworkers, extra = total % (uint64_t)nworkers;
	*first = w * per + (w < extra ? w : extra);
	*count = per + (w < extra);
	return 0;
}

/* ---- the worker side ---- */

/* Runs chunk i of job j (a validated private copy); returns false when the job must stop. */
static bool run_chunk(pool_shm *s, slot_hdr *h, const job_desc *j, const sk_pool_ctx *ctx, uint64_t i)
{
	uint64_t b = j->begin + i * j->chunk;
	uint64_t e = j->end - b > j->chunk ? b + j->chunk : j->end;
	AST(&h->cur_begin, b);
	AST(&h->cur_end, e);
	AST(&h->busy, 1);
	int rc = ((sk_pool_fn)(uintptr_t)j->fn)(ctx, b, e);
	AST(&h->busy, 0);
	if (rc) {
		h->fail_begin = b;
		h->fail_end = e;
		AST(&h->rc, rc);
		AST(&s->abort, 1);
		return false;
	}
	__atomic_fetch_add(&s->chunks_done, 1, __ATOMIC_RELAXED);
	return true;
}

static void run_job(const sk_pool *p, int w, uint32_t gen)
{
	pool_shm *s = p->shm;
	slot_hdr *h = slot(p, w);
	job_desc j;
	memcpy(&j, &s->job, sizeof j); /* once: the block may change under us */
	if (!job_valid(p->key, &j, gen)) {
		/* Not what the caller wrote: run nothing, and say so. */
		h->fail_begin = h->fail_end = 0;
		AST(&h->bad_job, 1);
		AST(&h->rc, SK_ECORRUPT);
		AST(&s->abort, 1);
		return;
	}
	sk_pool_ctx ctx = { .worker = w,
			    .nworkers = p->n,
			    .arg = j.arg_size ? arg_area(s) : NULL,
			    .result = (uint8_t *)h + SLOT_HDR,
			    .result_bytes = p->result_bytes };
	if (j.schedule == SK_POOL_STATIC) {
		uint64_t first, count;
		sk_pool_share(j.nchunks, p->n, w, &first, &count); /* 0 <= w < p->n */
		for (uint64_t i = first; i < first + count && !ALD(&s->abort); i++)
			if (!run_chunk(s, h, &j, &ctx, i))
				break;
	} else {
		while (!ALD(&s->abort)) {
			uint64_t i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
			if (i >= j.nchunks || !run_chunk(s, h, &j, &ctx, i))
				break;
		}
	}
}

static void worker_main(sk_pool *p, int w, uint32_t seen)
{
	pool_shm *s = p->shm;
	/* Siblings' pidfds were inherited; this process has no use for them. */
	for (int i = 0; i < p->n; i++)
		if (p->pidfds[i] >= 0)
			sk__sys_close(p->pidfds[i]);
	for (;;) {
		uint32_t g;
		while ((g = ALD(&s->gen)) == seen)
			sk__sys_futex_wait(&s->gen, seen, -1);
		seen = g;
		if (ALD(&s->quit))
			sk__sys_exit(0);
		run_job(p, w, g);
		sk__sys_flush_stdio(); /* sk__sys_exit would drop what a job printed */
		AST(&slot(p, w)->ran_gen, g);
		sk__sys_eventfd_signal(p->efd);
	}
}

/* ---- the caller side ---- */

static int spawn(sk_pool *p, int w)
{
	sk__sys_flush_stdio();
	uint32_t seen = ALD(&p->shm->gen);
	pid_t pid = sk__sys_fork_tied();
	if (pid < 0)
		return pid;
	if (pid == 0)
		worker_main(p, w, seen); /* never returns */
	int fd;
	int rc = sk__sys_pidfd_open(pid, &fd);
	if (rc) { /* no pidfd (a kernel before 5.3): this pool cannot watch it */
		sk__sys_kill(pid, SIGKILL);
		sk__sys_reap_pid(pid);
		return rc;
	}
	p->pids[w] = pid;
	p->pidfds[w] = fd;
	p->dead[w] = false;
	return 0;
}

static void free_pool(sk_pool *p)
{
	sk__sys_close(p->efd);
	if (p->shm)
		sk__sys_unmap(p->shm, p->map_size);
	free(p->pids);
	free(p->pidfds);
	free(p->dead);
	free(p);
}

/* Reaps every live worker, blocking; used by close and kill. */
static void reap_all(sk_pool *p)
{
	for (int w = 0; w < p->n; w++) {
		if (p->pidfds[w] < 0)
			continue;
		int code, sig;
		sk__sys_pidfd_reap(p->pidfds[w], true, &code, &sig);
		sk__sys_close(p->pidfds[w]);
		p->pidfds[w] = -1;
		p->dead[w] = true;
	}
}

int sk_pool_create(int nworkers, const sk_pool_opts *opts, sk_pool **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	uint32_t result_bytes = RESULT_BYTES, flags = 0;
	if (opts) {
		for (size_t i = 0; i < sizeof opts->resv / sizeof opts->resv[0]; i++)
			if (opts->resv[i])
				return -EINVAL;
		if (opts->flags & ~(uint32_t)SK_POOL_ALLOW_THREADS || opts->result_bytes > RESULT_BYTES_MAX)
			return -EINVAL;
		flags = opts->flags;
		if (opts->result_bytes)
			result_bytes = opts->result_bytes;
	}
	if (nworkers < 1 || nworkers > SK_POOL_MAX_WORKERS)
		return -EINVAL;
	if (!(flags & SK_POOL_ALLOW_THREADS) && sk__sys_thread_count() > 1)
		return SK_ETHREADED;

	sk_pool *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->n = nworkers;
	p->efd = -1;
	p->owner = sk__sys_pid();
	p->pids = calloc((size_t)nworkers, sizeof *p->pids);
	p->pidfds = malloc((size_t)nworkers * sizeof *p->pidfds);
	p->dead = calloc((size_t)nworkers, sizeof *p->dead);
	if (!p->pids || !p->pidfds || !p->dead) {
		free_pool(p);
		return -ENOMEM;
	}
	for (int w = 0; w < nworkers; w++)
		p->pidfds[w] = -1;
	p->stride = sk__round_up(SLOT_HDR + result_bytes, 64);
	p->result_bytes = result_bytes;
	p->map_size = (size_t)sk__round_up(
	    sk__round_up(sizeof(pool_shm), 64) + SK_POOL_ARG_MAX + (uint64_t)nworkers * p->stride, SK__PAGE);
	int rc = sk__sys_random(&p->key, sizeof p->key);
	void *m = NULL;
	if (!rc)
		rc = sk__sys_map_shared_anon(p->map_size, &m);
	if (rc) {
		free_pool(p);
		return rc;
	}
	p->shm = m;
	rc = sk__sys_eventfd(&p->efd);
	for (int w = 0; !rc && w < nworkers; w++)
		rc = spawn(p, w);
	if (rc) {
		for (int w = 0; w < nworkers; w++)
			if (p->pids[w] > 0 && p->pidfds[w] >= 0)
				sk__sys_kill(p->pids[w], SIGKILL);
		reap_all(p);
		free_pool(p);
		return rc;
	}
	*out = p;
	return 0;
}

static void describe(sk_pool_failure *f)
{
	char chunk[64] = "";
	if (f->has_chunk)
		snprintf(chunk, sizeof chunk, " in chunk [%llu, %llu)", (unsigned long long)f->chunk_begin,
			 (unsigned long long)f->chunk_end);
	if (f->timed_out)
		snprintf(f->message, sizeof f->message, "worker %d (pid %d) was killed at the job's timeout%s",
			 f->worker, (int)f->pid, chunk);
	else if (f->signal)
		snprintf(f->message, sizeof f->message, "worker %d (pid %d) was killed by signal %d (%s)%s", f->worker,
			 (int)f->pid, f->signal, sigabbrev_np(f->signal) ? sigabbrev_np(f->signal) : "?", chunk);
	else if (!f->has_chunk && f->fn_rc == SK_ECORRUPT)
		snprintf(f->message, sizeof f->message,
			 "worker %d (pid %d) found the job description in shared memory damaged and ran nothing",
			 f->worker, (int)f->pid);
	else if (f->exit_code >= 0)
		snprintf(f->message, sizeof f->message, "worker %d (pid %d) exited with code %d%s", f->worker,
			 (int)f->pid, f->exit_code, chunk);
	else
		snprintf(f->message, sizeof f->message, "worker %d (pid %d): job function returned %d (%s)%s",
			 f->worker, (int)f->pid, f->fn_rc, sk_strerror(f->fn_rc), chunk);
}

/* Reaps worker w if it is dead. Returns true if it was. */
static bool check_dead(sk_pool *p, int w, int *code, int *sig)
{
	if (p->dead[w])
		return false;
	int r = sk__sys_pidfd_reap(p->pidfds[w], false, code, sig);
	if (r <= 0)
		return false;
	sk__sys_close(p->pidfds[w]);
	p->pidfds[w] = -1;
	p->dead[w] = true;
	return true;
}

static int replace_dead(sk_pool *p)
{
	for (int w = 0; w < p->n; w++) {
		if (!p->dead[w])
			continue;
		int rc = spawn(p, w);
		if (rc) {
			p->broken = true;
			return -ECHILD;
		}
	}
	return 0;
}

int sk_pool_run(sk_pool *p, const sk_pool_job *job, sk_pool_failure *failure)
{
	if (!p || !job || !job->fn || job->end < job->begin || job->arg_size > SK_POOL_ARG_MAX ||
	    (job->arg_size && !job->arg) || (job->schedule != SK_POOL_DYNAMIC && job->schedule != SK_POOL_STATIC))
		return -EINVAL;
	if (p->owner != sk__sys_pid() || p->broken)
		return -ECHILD;
	pool_shm *s = p->shm;
	int code, sig;
	/* Workers that died while idle are replaced before the job. */
	for (int w = 0; w < p->n; w++)
		check_dead(p, w, &code, &sig);
	if (replace_dead(p))
		return -ECHILD;

	uint64_t len = job->end - job->begin;
	uint64_t chunk = job->chunk;
	if (!chunk) {
		chunk = len / ((uint64_t)p->n * CHUNKS_PER_WORKER);
		if (!chunk)
			chunk = 1;
	}
	/* The generation differs from the current one, whatever wrote it, so
	 * every worker wakes. */
	uint32_t gen = ALD(&s->gen) + 1;
	job_desc j = { .gen = gen,
		       .begin = job->begin,
		       .end = job->end,
		       .chunk = chunk,
		       .nchunks = len / chunk + (len % chunk != 0),
		       .arg_size = job->arg_size,
		       .schedule = (uint64_t)job->schedule,
		       .fn = (uint64_t)(uintptr_t)job->fn };
	j.tag = job_tag(p->key, &j);
	const uint64_t nchunks = j.nchunks; /* the caller's own copy from here on */
	s->job = j;
	s->next = 0;
	s->chunks_done = 0;
	s->abort = 0;
	s->quit = 0;
	if (job->arg_size)
		memcpy(arg_area(s), job->arg, job->arg_size);
	for (int w = 0; w < p->n; w++) {
		memset(slot(p, w), 0, (size_t)p->stride);
		slot(p, w)->ran_gen = gen - 1;
	}
	AST(&s->gen, gen);
	sk__sys_futex_wake(&s->gen, SK__WAKE_ALL);

	int64_t start = sk__sys_monotonic_ns(), next_progress = start + PROGRESS_NS;
	bool failed = false, timed_out = false;
	sk_pool_failure fail;
	memset(&fail, 0, sizeof fail);
	int *fds = malloc(((size_t)p->n + 1) * sizeof *fds);
	bool *ready = malloc(((size_t)p->n + 1) * sizeof *ready);
	int *who = malloc(((size_t)p->n + 1) * sizeof *who);
	if (!fds || !ready || !who) {
		/* Cannot watch: kill the workers rather than lose track of them. */
		free(fds), free(ready), free(who);
		for (int w = 0; w < p->n; w++)
			if (!p->dead[w])
				sk__sys_kill(p->pids[w], SIGKILL);
		reap_all(p);
		replace_dead(p);
		return -ENOMEM;
	}
	for (;;) {
		/* A stray write may have put back an older generation (a worker
		 * still asleep would then miss the job) or damaged the
		 * description: put both back, at most every 100 ms. */
		if (ALD(&s->gen) != gen || memcmp(&s->job, &j, sizeof j)) {
			s->job = j;
			AST(&s->gen, gen);
			sk__sys_futex_wake(&s->gen, SK__WAKE_ALL);
		}
		int pending = 0, nfds = 0;
		fds[nfds++] = p->efd;
		for (int w = 0; w < p->n; w++) {
			/* Done: finished this generation, or refused a damaged
			 * description (then it will not finish this one). */
			if (p->dead[w] || ALD(&slot(p, w)->ran_gen) == gen || ALD(&slot(p, w)->bad_job))
				continue;
			pending++;
			who[nfds] = w;
			fds[nfds++] = p->pidfds[w];
		}
		if (!pending)
			break;
		int64_t now = sk__sys_monotonic_ns();
		int wait_ms = WATCH_MS;
		if (job->timeout_ns > 0 && !timed_out) {
			int64_t left = start + job->timeout_ns - now;
			if (left <= 0) {
				timed_out = true;
				for (int k = 1; k < nfds; k++)
					sk__sys_kill(p->pids[who[k]], SIGKILL);
				AST(&s->abort, 1);
			} else if (left / NS_PER_MS < wait_ms) {
				wait_ms = (int)(left / NS_PER_MS) + 1;
			}
		}
		if (sk__sys_wait_readable(fds, nfds, wait_ms, ready) < 0) {
			/* Cannot wait (poll refused: too many descriptors for
			 * RLIMIT_NOFILE, or no memory): look at every worker
			 * without blocking, after a short pause. */
			sk__sys_sleep_ns((int64_t)(wait_ms < BLIND_MS ? wait_ms : BLIND_MS) * NS_PER_MS);
			for (int k = 0; k < nfds; k++)
				ready[k] = true;
		}
		if (ready[0])
			sk__sys_eventfd_drain(p->efd);
		for (int k = 1; k < nfds; k++) {
			int w = who[k];
			if (!ready[k] || !check_dead(p, w, &code, &sig))
				continue;
			if (ALD(&slot(p, w)->ran_gen) == gen)
				continue; /* finished its part, then died: the job is intact */
			AST(&s->abort, 1);
			if (failed)
				continue;
			failed = true;
			slot_hdr *h = slot(p, w);
			fail.worker = w;
			fail.pid = p->pids[w];
			fail.has_chunk = ALD(&h->busy) != 0;
			fail.chunk_begin = ALD(&h->cur_begin);
			fail.chunk_end = ALD(&h->cur_end);
			fail.exit_code = code;
			fail.signal = sig;
			fail.timed_out = timed_out;
		}
		if (job->progress && sk__sys_monotonic_ns() >= next_progress) {
			job->progress(ALD(&s->chunks_done), nchunks, job->progress_arg);
			next_progress += PROGRESS_NS;
		}
	}
	free(fds), free(ready), free(who);
	/* A function's error, if no death was seen first: lowest worker wins. */
	for (int w = 0; w < p->n && !failed; w++) {
		slot_hdr *h = slot(p, w);
		int32_t frc = ALD(&h->rc);
		if (!frc)
			continue;
		failed = true;
		fail.worker = w;
		fail.pid = p->pids[w];
		fail.has_chunk = !ALD(&h->bad_job);
		fail.chunk_begin = fail.has_chunk ? ALD(&h->fail_begin) : 0;
		fail.chunk_end = fail.has_chunk ? ALD(&h->fail_end) : 0;
		fail.fn_rc = frc;
		fail.exit_code = -1;
	}
	int rc = replace_dead(p);
	if (failed) {
		describe(&fail);
		if (failure)
			*failure = fail;
		return SK_EWORKER;
	}
	if (rc)
		return rc;
	if (job->progress)
		job->progress(ALD(&s->chunks_done), nchunks, job->progress_arg);
	if (job->reduce)
		for (int w = 0; w < p->n; w++)
			job->reduce(job->reduce_acc, (uint8_t *)slot(p, w) + SLOT_HDR, w);
	return 0;
}

int sk_pool_size(const sk_pool *p)
{
	return p->n;
}

pid_t sk_pool_pid(const sk_pool *p, int w)
{
	return w >= 0 && w < p->n && !p->dead[w] ? p->pids[w] : -1;
}

void *sk_pool_result(const sk_pool *p, int w)
{
	return w >= 0 && w < p->n ? (uint8_t *)slot(p, w) + SLOT_HDR : NULL;
}

int sk_pool_close(sk_pool *p)
{
	if (!p)
		return 0;
	if (p->owner == sk__sys_pid()) {
		AST(&p->shm->quit, 1);
		AST(&p->shm->gen, ALD(&p->shm->gen) + 1);
		sk__sys_futex_wake(&p->shm->gen, SK__WAKE_ALL);
		reap_all(p);
	}
	free_pool(p);
	return 0;
}

int sk_pool_kill(sk_pool *p)
{
	if (!p)
		return 0;
	if (p->owner == sk__sys_pid()) {
		for (int w = 0; w < p->n; w++)
			if (!p->dead[w] && p->pidfds[w] >= 0)
				sk__sys_kill(p->pids[w], SIGKILL);
		reap_all(p);
	}
	free_pool(p);
	return 0;
}
