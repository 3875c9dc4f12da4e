/*
 * fuzz/queue.c: a queue whose indices, counts and records are garbage must
 * answer SK_ECORRUPT (or work), never crash, read or write out of bounds or
 * hang. The input overwrites the control block (not its mutex) and the ring
 * of a real queue; then every operation is tried with no waiting.
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
	/* Bytes 8..127 of the control block (the magic and version stay, so the
	 * checks go deeper), then the ring. The mutex at 128..255 stays intact. */
	size_t ctl = size < 120 ? size : 120;
	memcpy(base + 8, data, ctl);
	size_t ring = size - ctl < CAP ? size - ctl : CAP;
	memcpy(base + 256, data + ctl, ring);
	char buf[1024];
	size_t len;
	const void *p;
	void *w;
	sk_queue_stats st;
	sk_queue_pop(q, buf, sizeof buf, &len, 0);
	if (sk_queue_peek(q, &p, &len, 0) == 0) {
		volatile uint8_t sink = len ? ((const uint8_t *)p)[len - 1] : 0; /* in bounds, ASan checks */
		(void)sink;
		sk_queue_unpeek(q);
	}
	sk_queue_pop_many(q, buf, sizeof buf, (size_t[8]){ 0 }, 8, 0);
	sk_queue_push(q, "fuzz", 4, 0);
	if (sk_queue_reserve(q, 16, &w, 0) == 0) {
		memset(w, 1, 16);
		sk_queue_commit(q);
	}
	sk_queue_stats_get(q, &st);
	sk_queue_stats_peek(view, &st);
	return 0;
}
