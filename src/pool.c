/*
 * pool.c: worker processes and the parallel loop.
 *
 * Memory layout: one anonymous MAP_SHARED block, made before the workers are
 * forked, so every worker has it at the same address:
 *
 *   pool_shm           job description, generation counter (the futex the
 *                      idle workers sleep on), chunk counters, flags
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
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define SLOT_HDR 64u

typedef struct pool_shm {
	uint32_t gen;   /* futex: bumped to start a job */
	uint32_t quit;  /* workers exit at the next generation */
	uint32_t abort; /* stop taking chunks */
	int32_t schedule;
	int32_t nworkers;
	uint32_t resv;
	uint64_t next;        /* next chunk (dynamic) */
	uint64_t chunks_done; /* progress */
	uint64_t nchunks, begin, end, chunk;
	uint64_t arg_size;
	uint64_t result_bytes;
	uint64_t slot_stride;
	sk_pool_fn fn; /* same program image in every worker */
	int efd;
} pool_shm;

typedef struct slot_hdr {
	uint64_t cur_begin, cur_end; /* the chunk being run */
	uint32_t busy;               /* 1 while inside fn */
	int32_t rc;                  /* fn's error */
	uint64_t fail_begin, fail_end;
	uint32_t ran_gen; /* last generation finished */
} slot_hdr;
static_assert(sizeof(slot_hdr) <= SLOT_HDR, "slot header fits");

struct sk_pool {
	pool_shm *shm;
	size_t map_size;
	int n;
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

static inline slot_hdr *slot(pool_shm *s, int w)
{
	return (slot_hdr *)(arg_area(s) + SK_POOL_ARG_MAX + (size_t)w * s->slot_stride);
}

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* ---- the worker side ---- */

/* Runs chunk i; returns false when the job must stop. */
static bool run_chunk(pool_shm *s, slot_hdr *h, const sk_pool_ctx *ctx, uint64_t i)
{
	uint64_t b = s->begin + i * s->chunk;
	uint64_t e = s->end - b > s->chunk ? b + s->chunk : s->end;
	STORE(&h->cur_begin, b);
	STORE(&h->cur_end, e);
	STORE(&h->busy, 1);
	int rc = s->fn(ctx, b, e);
	STORE(&h->busy, 0);
	if (rc) {
		h->fail_begin = b;
		h->fail_end = e;
		STORE(&h->rc, rc);
		STORE(&s->abort, 1);
		return false;
	}
	__atomic_fetch_add(&s->chunks_done, 1, __ATOMIC_RELAXED);
	return true;
}

static void run_job(pool_shm *s, int w)
{
	slot_hdr *h = slot(s, w);
	sk_pool_ctx ctx = { .worker = w,
			    .nworkers = s->nworkers,
			    .arg = s->arg_size ? arg_area(s) : NULL,
			    .result = (uint8_t *)h + SLOT_HDR,
			    .result_bytes = (size_t)s->result_bytes };
	if (s->schedule == SK_POOL_STATIC) {
		uint64_t per = s->nchunks / (uint64_t)s->nworkers, extra = s->nchunks % (uint64_t)s->nworkers;
		uint64_t first = (uint64_t)w * per + ((uint64_t)w < extra ? (uint64_t)w : extra);
		uint64_t count = per + ((uint64_t)w < extra);
		for (uint64_t i = first; i < first + count && !LOAD(&s->abort); i++)
			if (!run_chunk(s, h, &ctx, i))
				break;
	} else {
		while (!LOAD(&s->abort)) {
			uint64_t i = __atomic_fetch_add(&s->next, 1, __ATOMIC_RELAXED);
			if (i >= s->nchunks || !run_chunk(s, h, &ctx, i))
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
		while ((g = LOAD(&s->gen)) == seen)
			sk__sys_futex_wait(&s->gen, seen, -1);
		seen = g;
		if (LOAD(&s->quit))
			_exit(0);
		run_job(s, w);
		sk__sys_flush_stdio(); /* _exit would drop what a job printed */
		STORE(&slot(s, w)->ran_gen, g);
		sk__sys_eventfd_signal(s->efd);
	}
}

/* ---- the caller side ---- */

static int spawn(sk_pool *p, int w)
{
	sk__sys_flush_stdio();
	uint32_t seen = LOAD(&p->shm->gen);
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
	if (p->shm) {
		sk__sys_close(p->shm->efd);
		sk__sys_unmap(p->shm, p->map_size);
	}
	free(p->pids);
	free(p->pidfds);
	free(p->dead);
	free(p);
}

/* Reaps every live worker, blocking; used by close and destroy. */
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
	uint32_t result_bytes = 4096, flags = 0;
	if (opts) {
		for (size_t i = 0; i < sizeof opts->resv / sizeof opts->resv[0]; i++)
			if (opts->resv[i])
				return -EINVAL;
		if (opts->flags & ~(uint32_t)SK_POOL_ALLOW_THREADS || opts->result_bytes > (1u << 24))
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
	p->owner = getpid();
	p->pids = calloc((size_t)nworkers, sizeof *p->pids);
	p->pidfds = malloc((size_t)nworkers * sizeof *p->pidfds);
	p->dead = calloc((size_t)nworkers, sizeof *p->dead);
	if (!p->pids || !p->pidfds || !p->dead) {
		free_pool(p);
		return -ENOMEM;
	}
	for (int w = 0; w < nworkers; w++)
		p->pidfds[w] = -1;
	uint64_t stride = sk__round_up(SLOT_HDR + result_bytes, 64);
	p->map_size = (size_t)sk__round_up(
	    sk__round_up(sizeof(pool_shm), 64) + SK_POOL_ARG_MAX + (uint64_t)nworkers * stride, SK__PAGE);
	void *m;
	int rc = sk__sys_map_shared_anon(p->map_size, &m);
	if (rc) {
		free_pool(p);
		return rc;
	}
	p->shm = m;
	p->shm->efd = -1;
	p->shm->nworkers = nworkers;
	p->shm->result_bytes = result_bytes;
	p->shm->slot_stride = stride;
	rc = sk__sys_eventfd(&p->shm->efd);
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
	if (p->owner != getpid() || p->broken)
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
		chunk = len / ((uint64_t)p->n * 16);
		if (!chunk)
			chunk = 1;
	}
	s->fn = job->fn;
	s->begin = job->begin;
	s->end = job->end;
	s->chunk = chunk;
	s->nchunks = len / chunk + (len % chunk != 0);
	s->schedule = job->schedule;
	s->next = 0;
	s->chunks_done = 0;
	s->abort = 0;
	s->arg_size = job->arg_size;
	if (job->arg_size)
		memcpy(arg_area(s), job->arg, job->arg_size);
	for (int w = 0; w < p->n; w++) {
		uint32_t ran = slot(s, w)->ran_gen;
		memset(slot(s, w), 0, (size_t)s->slot_stride);
		slot(s, w)->ran_gen = ran;
	}
	uint32_t gen = s->gen + 1;
	STORE(&s->gen, gen);
	sk__sys_futex_wake(&s->gen, 0x7fffffff);

	int64_t start = sk__sys_monotonic_ns(), next_progress = start + 100000000;
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
		int pending = 0, nfds = 0;
		fds[nfds++] = s->efd;
		for (int w = 0; w < p->n; w++) {
			if (p->dead[w] || LOAD(&slot(s, w)->ran_gen) == gen)
				continue;
			pending++;
			who[nfds] = w;
			fds[nfds++] = p->pidfds[w];
		}
		if (!pending)
			break;
		int64_t now = sk__sys_monotonic_ns();
		int wait_ms = 100;
		if (job->timeout_ns > 0 && !timed_out) {
			int64_t left = start + job->timeout_ns - now;
			if (left <= 0) {
				timed_out = true;
				for (int k = 1; k < nfds; k++)
					sk__sys_kill(p->pids[who[k]], SIGKILL);
				STORE(&s->abort, 1);
			} else if (left / 1000000 < wait_ms) {
				wait_ms = (int)(left / 1000000) + 1;
			}
		}
		sk__sys_wait_readable(fds, nfds, wait_ms, ready);
		if (ready[0])
			sk__sys_eventfd_drain(s->efd);
		for (int k = 1; k < nfds; k++) {
			int w = who[k];
			if (!ready[k] || !check_dead(p, w, &code, &sig))
				continue;
			if (LOAD(&slot(s, w)->ran_gen) == gen)
				continue; /* finished its part, then died: the job is intact */
			STORE(&s->abort, 1);
			if (failed)
				continue;
			failed = true;
			slot_hdr *h = slot(s, w);
			fail.worker = w;
			fail.pid = p->pids[w];
			fail.has_chunk = LOAD(&h->busy) != 0;
			fail.chunk_begin = LOAD(&h->cur_begin);
			fail.chunk_end = LOAD(&h->cur_end);
			fail.exit_code = code;
			fail.signal = sig;
			fail.timed_out = timed_out;
		}
		if (job->progress && sk__sys_monotonic_ns() >= next_progress) {
			job->progress(LOAD(&s->chunks_done), s->nchunks, job->progress_arg);
			next_progress += 100000000;
		}
	}
	free(fds), free(ready), free(who);
	/* A function's error, if no death was seen first: lowest worker wins. */
	for (int w = 0; w < p->n && !failed; w++) {
		slot_hdr *h = slot(s, w);
		if (!LOAD(&h->rc))
			continue;
		failed = true;
		fail.worker = w;
		fail.pid = p->pids[w];
		fail.has_chunk = 1;
		fail.chunk_begin = h->fail_begin;
		fail.chunk_end = h->fail_end;
		fail.fn_rc = h->rc;
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
		job->progress(s->chunks_done, s->nchunks, job->progress_arg);
	if (job->reduce)
		for (int w = 0; w < p->n; w++)
			job->reduce(job->reduce_acc, (uint8_t *)slot(s, w) + SLOT_HDR, w);
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
	return w >= 0 && w < p->n ? (uint8_t *)slot(p->shm, w) + SLOT_HDR : NULL;
}

int sk_pool_close(sk_pool *p)
{
	if (!p)
		return 0;
	if (p->owner == getpid()) {
		STORE(&p->shm->quit, 1);
		STORE(&p->shm->gen, p->shm->gen + 1);
		sk__sys_futex_wake(&p->shm->gen, 0x7fffffff);
		reap_all(p);
	}
	free_pool(p);
	return 0;
}

int sk_pool_destroy(sk_pool *p)
{
	if (!p)
		return 0;
	if (p->owner == getpid()) {
		for (int w = 0; w < p->n; w++)
			if (!p->dead[w] && p->pidfds[w] >= 0)
				sk__sys_kill(p->pids[w], SIGKILL);
		reap_all(p);
	}
	free_pool(p);
	return 0;
}
