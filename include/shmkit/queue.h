/*
 * shmkit/queue.h: a shared-memory message queue, the multiprocessing.Queue of
 * shmkit without pickling or pipes.
 *
 * A queue lives in one named segment: a bounded ring of variable-size
 * messages (0 bytes up to a maximum fixed at creation). Any number of
 * producers and consumers in any processes that open it by name (or inherit
 * it) push and pop at once. Messages come out in the order they went in.
 *
 * Blocking calls take a timeout in ns on CLOCK_MONOTONIC (negative: forever,
 * 0: do not wait, -EAGAIN when it would have to). After sk_queue_shutdown
 * (the queue's "close", like shutdown(2) of a socket's sending side), pushes
 * fail with SK_ECLOSED; pops drain what is left and then fail with
 * SK_ECLOSED too. sk_queue_close only lets go of this process's handle.
 *
 * Zero-copy: sk_queue_reserve returns room in the ring to write a message in
 * place, sk_queue_commit publishes it; sk_queue_peek shows the oldest message
 * in place, sk_queue_release removes it. Between the two calls the message is
 * claimed, not the queue: other processes push and pop meanwhile (messages
 * pushed after a reserved one become visible when it is committed, in
 * order). Only when all 16 claim slots of its side are taken does the call
 * hold that side's lock instead, as small messages do while they are
 * copied.
 *
 * Bounds: capacity bytes always; optionally a number of messages
 * (sk_queue_config.max_messages, like multiprocessing.Queue(maxsize)).
 * Task accounting (like multiprocessing.JoinableQueue): every published
 * message counts as an unfinished task until someone calls
 * sk_queue_task_done for it; sk_queue_join waits until none is unfinished.
 *
 * Producers and consumers have a lock each (so a push and a pop never wait
 * for each other's lock) and meet at two positions in shared memory.
 *
 * Crashes: each side is guarded by a robust mutex (shmkit/sync.h), and each
 * copy made outside them by a claim naming its process. A message becomes
 * visible only when its producer publishes it after copying, and leaves only
 * when its consumer is done copying it. So a producer killed at any point
 * (mid-reserve, mid-copy, holding the lock) loses only its own message, which
 * no consumer ever sees; a consumer killed at any point leaves the message it
 * was taking in the queue, and it is the next one handed out. Whoever waits
 * behind a dead process's claim settles it within milliseconds; the next
 * process to take the lock after a holder died repairs the bookkeeping. No
 * one deadlocks, and no one sees a partial message. A consumer killed after
 * its pop returned and before sk_queue_task_done leaves that task unfinished
 * for good: sk_queue_join then waits until its timeout.
 *
 * Trust: a process that can write the segment can spoil the messages and
 * make calls fail with SK_ECORRUPT; it cannot make another process access
 * memory outside the queue's ring, nor wait past its timeout (calls without
 * a timeout wait for the queue's locks at most 10 s).
 *
 * A handle's reserve or peek belongs to the process (and handle) that made
 * it; a forked child must not commit or release it.
 */
#ifndef SHMKIT_QUEUE_H
#define SHMKIT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "segment.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_queue sk_queue;

/* Creates a queue whose ring holds capacity bytes (rounded up to 8; each
 * message takes 8 bytes plus its size rounded up to 8) and whose messages are
 * at most max_msg bytes (max_msg + 8 <= capacity). name NULL: generated. */
int sk_queue_create(const char *name, uint64_t capacity, uint64_t max_msg, const sk_create_opts *opts, sk_queue **out);

/* What sk_queue_create_with takes. Zero-initialise and set the fields. */
typedef struct sk_queue_config {
	uint64_t capacity;     /* ring bytes, as for sk_queue_create */
	uint64_t max_msg;      /* largest message, as for sk_queue_create */
	uint64_t max_messages; /* at most this many messages held at once; 0: no limit but the bytes */
	uint64_t resv[5];      /* must be zero */
} sk_queue_config;

/* As sk_queue_create, with a limit on the number of messages: a push waits
 * (as its timeout allows) while max_messages messages are held, counting
 * those being written and being read. -EINVAL for a bad config. */
int sk_queue_create_with(const char *name, const sk_queue_config *cfg, const sk_create_opts *opts, sk_queue **out);
/* SK_EKIND if the segment is not a queue, SK_EVERSION if it was made by a
 * shmkit with another queue layout, SK_ECORRUPT if its state is damaged. */
int sk_queue_open(const char *name, sk_queue **out);
/* As sk_queue_open, with open flags (SK_OPEN_ANY_OWNER: a queue that another
 * user made; nothing else, -EINVAL: every user of a queue writes it) and a
 * bound of timeout_ns on the wait for the queue's lock, which the open takes
 * to validate the queue's state (negative: no bound; 0: do not wait,
 * -EAGAIN when it would have to; -ETIMEDOUT when the time ran out).
 * sk_queue_open waits at most 10 s and refuses other users' queues. */
int sk_queue_open_with(const char *name, int flags, int64_t timeout_ns, sk_queue **out);
/* Unmaps and frees the handle (releasing a reserve or peek still held). Accepts NULL. */
int sk_queue_close(sk_queue *q);
const char *sk_queue_name(const sk_queue *q);

/* Copies len bytes in. 0, -EMSGSIZE (len > max_msg; nothing is truncated),
 * -EAGAIN / -ETIMEDOUT (full), SK_ECLOSED, SK_ECORRUPT. */
int sk_queue_push(sk_queue *q, const void *msg, size_t len, int64_t timeout_ns);
/* Copies the oldest message into buf and its size into *len. If bufsize is
 * too small: -EMSGSIZE, *len = its size, the message stays. -EAGAIN /
 * -ETIMEDOUT (empty), SK_ECLOSED (closed and empty). */
int sk_queue_pop(sk_queue *q, void *buf, size_t bufsize, size_t *len, int64_t timeout_ns);

/* Many messages under one lock. push_many pushes msgs[0..n) in order, as many
 * as fit once at least one fits; returns how many (>= 1) or an error.
 * pop_many copies up to max messages back to back into buf (message i at
 * offset lens[0] + .. + lens[i-1]), waiting only for the first; returns how
 * many (>= 1) or an error. */
int sk_queue_push_many(sk_queue *q, const void *const *msgs, const size_t *lens, int n, int64_t timeout_ns);
int sk_queue_pop_many(sk_queue *q, void *buf, size_t bufsize, size_t *lens, int max, int64_t timeout_ns);

/* Zero-copy. reserve: room for len bytes at *ptr, claimed until commit
 * (publishes) or abort (drops it). peek: the oldest message in place, claimed
 * until release (removes it) or unpeek (hands it out again, first). One
 * reserve or peek per handle at a time: other calls on the handle meanwhile
 * return -EDEADLK. commit and release return SK_ECORRUPT if another process
 * spoiled the claim (the message is then lost or handed out again). */
int sk_queue_reserve(sk_queue *q, size_t len, void **ptr, int64_t timeout_ns);
int sk_queue_commit(sk_queue *q);
int sk_queue_abort(sk_queue *q);
int sk_queue_peek(sk_queue *q, const void **ptr, size_t *len, int64_t timeout_ns);
int sk_queue_release(sk_queue *q);
int sk_queue_unpeek(sk_queue *q);

/* Marks one task done (one message taken and handled). 0, or -EINVAL when
 * called more times than messages were published (nothing changes). No lock;
 * any process. */
int sk_queue_task_done(sk_queue *q);
/* Waits until every published message was marked done (returns at once if
 * none is unfinished). 0, -EAGAIN (timeout 0) or -ETIMEDOUT. */
int sk_queue_join(sk_queue *q, int64_t timeout_ns);

/* Producers are refused from now on, everywhere; consumers drain, then get
 * SK_ECLOSED. Wakes everyone waiting. Cannot be undone. */
int sk_queue_shutdown(sk_queue *q);
/* As sk_queue_shutdown, with a bound of timeout_ns on the wait for the
 * queue's lock (sk_queue_shutdown's is 10 s): -EAGAIN (0) / -ETIMEDOUT. */
int sk_queue_shutdown_timed(sk_queue *q, int64_t timeout_ns);

typedef struct sk_queue_stats {
	uint64_t capacity; /* ring bytes */
	uint64_t max_msg;
	uint64_t used;           /* bytes taken by messages and their headers */
	uint64_t messages;       /* messages held: waiting, and being written or read */
	uint64_t pushed, popped; /* since creation */
	int closed;
	int waiting_producers, waiting_consumers; /* asleep now */
	uint64_t recoveries;   /* times a process died holding one of the queue's locks and the next repaired it */
	uint64_t max_messages; /* the limit on messages, 0 if none */
	uint64_t unfinished;   /* published messages not yet marked done (sk_queue_task_done) */
	int in_flight;         /* messages being copied in or out outside the lock (claims) */
} sk_queue_stats;

/* A consistent snapshot (takes the lock briefly). */
int sk_queue_stats_get(sk_queue *q, sk_queue_stats *st);
/* The same without the lock, from a read-only view (for `shmkit info`) or
 * the queue's own segment (sk_queue_segment). */
int sk_queue_stats_peek(const sk_segment *seg, sk_queue_stats *st);
/* The segment of an open queue (owned by q; for sk_queue_stats_peek and
 * sk_segment_info_get). */
sk_segment *sk_queue_segment(const sk_queue *q);

#ifdef __cplusplus
}
#endif
#endif
