/*
 * fuzz/queue.c: a queue whose positions, counts, claims and records are
 * garbage must answer SK_ECORRUPT (or work), never crash, read or write out
 * of bounds or hang. The input overwrites the control block (bytes 8..255,
 * then the claim table at 1024..2047; never the mutexes at 256 and 384) and
 * the ring of a real queue (layout version 3, docs/queue.md); then every
 * operation is tried with no waiting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmkit.h"

#define CAP 4096

static sk_queue *q;
static sk_segment *view;
static char name[64];

static void cleanup(void)
{
	sk_queue_close(q);
	sk_segment_close(view);
	sk_segment_unlink(name);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	setenv("SHMKIT_SWEEP", "0", 1);
	snprintf(name, sizeof name, "shmkit-fuzz-queue-%d", (int)getpid());
	sk_segment_unlink(name);
	if (sk_queue_create(name, CAP, 512, NULL, &q) || sk_segment_open(name, SK_RDWR, &view))
		abort();
	atexit(cleanup);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *base = sk_segment_data(view);
	/* Bytes 8..255 of the control block (the magic and version stay, so the
	 * checks go deeper), the claims, then the ring. */
	size_t ctl = size < 248 ? size : 248;
	memcpy(base + 8, data, ctl);
	size_t claims = size - ctl < 1024 ? size - ctl : 1024;
	memcpy(base + 1024, data + ctl, claims);
	size_t ring = size - ctl - claims < CAP ? size - ctl - claims : CAP;
	memcpy(base + 4096, data + ctl + claims, ring);
	char buf[1024];
	size_t len;
	const void *p;
	void *w;
	sk_queue_stats st;
	sk_queue_pop(q, buf, sizeof buf, &len, 0);
	if (sk_queue_peek(q, &p, &len, 0) == 0) {
		volatile uint8_t sink = len ? ((const uint8_t *)p)[len - 1] : 0; /* in bounds, ASan checks */
		(void)sink;
		if (len > 512)
			abort(); /* longer than the queue's largest message */
		size > 300 && data[299] % 2 ? sk_queue_release(q) : sk_queue_unpeek(q);
	}
	sk_queue_pop_many(q, buf, sizeof buf, (size_t[8]){ 0 }, 8, 0);
	sk_queue_push(q, "fuzz", 4, 0);
	const void *m[2] = { "a", "bb" };
	sk_queue_push_many(q, m, (size_t[2]){ 1, 2 }, 2, 0);
	if (sk_queue_reserve(q, 16, &w, 0) == 0) {
		memset(w, 1, 16);
		size > 301 && data[300] % 2 ? sk_queue_abort(q) : sk_queue_commit(q);
	}
	sk_queue_task_done(q);
	sk_queue_join(q, 0);
	sk_queue_stats_get(q, &st);
	sk_queue_stats_peek(view, &st);
	return 0;
}
