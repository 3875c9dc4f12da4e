/*
 * shmkit/pool.h: a pool of worker processes running parallel loops over
 * shared data.
 *
 * sk_pool_create forks N workers once; sk_pool_run then runs a job on them:
 * a function called on chunks of an index range [begin, end). Chunks are
 * handed out dynamically through a shared counter (a slow worker does not
 * hold the others back) or split statically (worker w gets the w-th share).
 * Each worker has a result slot in shared memory, zeroed before every job,
 * and the job's reduce step combines the slots in the calling process: a
 * job returns sums, counts or histograms without pickling or pipes.
 *
 * Workers are forked: they inherit every mapping the process has when the
 * pool starts (segments opened before sk_pool_create are visible to them at
 * the same addresses) and they can open named segments themselves. The job
 * function runs in the workers, so it must be code of the program (not from a
 * library loaded after the pool started), and the job's argument is copied
 * byte for byte into shared memory: pointers inside it must point to memory
 * the workers have (inherited or shared), not to heap allocated later.
 *
 * Failure is never silent. A worker whose function returns an error, that
 * crashes (SIGSEGV, abort) or is killed (SIGKILL) makes sk_pool_run return
 * SK_EWORKER with a description naming the worker, its pid, the chunk and
 * the cause; the other workers stop taking chunks, and dead workers are
 * replaced so the pool stays usable. Workers get SIGKILL when the thread that
 * created the pool exits (PR_SET_PDEATHSIG), so they never outlive it.
 *
 * Threads: fork copies only the calling thread, so a process that already
 * runs other threads can leave a worker with a lock held forever (malloc,
 * stdio). sk_pool_create refuses with SK_ETHREADED when the process has more
 * than one thread, unless SK_POOL_ALLOW_THREADS says the caller knows its job
 * functions use nothing another thread might hold. A pool's functions must be
 * called from one thread at a time.
 */
#ifndef SHMKIT_POOL_H
#define SHMKIT_POOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_pool sk_pool;

#define SK_POOL_MAX_WORKERS 1024
#define SK_POOL_ARG_MAX     65536 /* bytes of a job's argument */

#define SK_POOL_ALLOW_THREADS 0x1 /* sk_pool_opts.flags: create even in a threaded process */

typedef struct sk_pool_opts {
	uint32_t result_bytes; /* bytes of each worker's result slot; 0 means 4096 */
	uint32_t flags;        /* SK_POOL_ALLOW_THREADS */
	uint64_t resv[6];      /* must be zero */
} sk_pool_opts;

/* What the job function is told, in the worker. */
typedef struct sk_pool_ctx {
	int worker; /* 0 .. nworkers - 1 */
	int nworkers;
	void *arg;    /* this job's argument (a copy in shared memory), or NULL */
	void *result; /* this worker's result slot, zeroed before the job */
	size_t result_bytes;
} sk_pool_ctx;

/* Called for each chunk [begin, end). Return 0, or a negative code to fail the job. */
typedef int (*sk_pool_fn)(const sk_pool_ctx *ctx, uint64_t begin, uint64_t end);

enum { SK_POOL_DYNAMIC = 0, SK_POOL_STATIC = 1 };

typedef struct sk_pool_job {
	sk_pool_fn fn;
	const void *arg; /* copied for the workers; may be NULL */
	size_t arg_size; /* 0 .. SK_POOL_ARG_MAX */
	uint64_t begin, end;
	uint64_t chunk; /* indices per chunk; 0 picks about 16 chunks per worker */
	int schedule;   /* SK_POOL_DYNAMIC or SK_POOL_STATIC */
	/* Optional: called in the calling process after every worker finished,
	 * once per worker in order, with that worker's result slot. */
	void (*reduce)(void *acc, const void *slot, int worker);
	void *reduce_acc;
	/* Optional: called in the calling process about every 100 ms while the
	 * job runs, with the chunks done and the total. */
	void (*progress)(uint64_t done, uint64_t total, void *progress_arg);
	void *progress_arg;
	int64_t timeout_ns; /* <= 0: none. Past it, running workers are killed and replaced. */
} sk_pool_job;

/* What went wrong when sk_pool_run returns SK_EWORKER (first failure seen). */
typedef struct sk_pool_failure {
	int worker;           /* index of the worker */
	pid_t pid;            /* its process id */
	int has_chunk;        /* 1 if it was running a chunk */
	uint64_t chunk_begin; /* that chunk */
	uint64_t chunk_end;
	int fn_rc;         /* the function's error, 0 if it did not return one */
	int exit_code;     /* the worker's exit code, -1 if it did not exit */
	int signal;        /* the signal that killed it, 0 if none */
	int timed_out;     /* 1 if the job's timeout killed it */
	char message[192]; /* one line naming all of the above */
} sk_pool_failure;

/* Starts nworkers (1 .. SK_POOL_MAX_WORKERS) worker processes. Errors:
 * -EINVAL, SK_ETHREADED, -EAGAIN/-ENOMEM from fork. */
int sk_pool_create(int nworkers, const sk_pool_opts *opts, sk_pool **out);

/* Runs a job and waits for it. Returns 0, SK_EWORKER (details in *failure
 * when failure is not NULL), -EINVAL for a bad job, or -ECHILD if a dead
 * worker could not be replaced (the pool can then only be closed). Safe to
 * call again after a failure. */
int sk_pool_run(sk_pool *pool, const sk_pool_job *job, sk_pool_failure *failure);

int sk_pool_size(const sk_pool *pool);
/* The pid of worker i, or -1. Changes when a dead worker is replaced. */
pid_t sk_pool_pid(const sk_pool *pool, int worker);
/* Worker i's result slot from the last job (readable until the next run). */
void *sk_pool_result(const sk_pool *pool, int worker);

/* The static schedule's split, for any loop that shares `total` items among
 * nworkers the way SK_POOL_STATIC shares a job's chunks: worker `worker`
 * (0 .. nworkers - 1) gets *count items from *first, the shares are as even
 * as possible (the first total % nworkers workers get one more) and together
 * cover [0, total) in order, once. Returns 0, or -EINVAL (nworkers < 1,
 * worker out of range, a NULL pointer). Arithmetic only: any thread, any
 * process, no pool needed. */
int sk_pool_share(uint64_t total, int nworkers, int worker, uint64_t *first, uint64_t *count);

/* Asks the workers to exit after their current job, waits for them, frees
 * the pool. Accepts NULL. Returns 0. */
int sk_pool_close(sk_pool *pool);
/* Kills the workers now (SIGKILL) whatever they run, reaps them, frees the
 * pool. Accepts NULL. Returns 0. In a forked child (not the process that
 * created the pool) it only frees the handle, as sk_pool_close does. */
int sk_pool_kill(sk_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
