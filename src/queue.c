/*
 * queue.c: a bounded multi-producer multi-consumer queue of variable-size
 * messages in one segment.
 *
 * Memory layout (at the segment's data offset; docs/format.md):
 *
 *   0    256  control block: magic, version, capacity, max_msg, head, tail,
 *             message count, totals, closed flag, two futex sequence words
 *             (not_empty, not_full), waiter counts; an sk_mutex at offset 128
 *   256  cap  the ring: records of an 8-byte header {u32 length, u32 check}
 *             and the payload padded to 8 bytes. A record never wraps: when
 *             one does not fit before the end, a pad record (length
 *             0xffffffff) fills the rest and the record starts at offset 0.
 *
 * head and tail are byte positions that only grow; a position's place in the
 * ring is pos % cap. [head, tail) holds the records waiting.
 *
 * Protocol: every operation holds the robust mutex. A producer copies the
 * record past tail and only then moves tail: a message appears whole or not
 * at all. A consumer copies out and only then moves head. Waiting is on the
 * sequence words (bumped on every push and pop), with the mutex released, so
 * a full or empty queue costs no CPU. The one state a dead holder can leave
 * inconsistent is the message count next to a moved tail or head; the next
 * locker recounts the records between head and tail (repair) and validates
 * every record it touches, so damaged indices are reported as SK_ECORRUPT
 * and never read out of bounds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QUEUE_MAGIC   0x55514b53u /* "SKQU" */
#define QUEUE_VERSION 1u
#define PAD_LEN       0xffffffffu
#define CHECK_XOR     0x9e3779b9u

#define LD(p)     __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v)  __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define SUB(p, v) __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)

typedef struct queue_ctl {
	uint32_t magic;
	uint16_t version, flags;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t head, tail;
	uint64_t count;
	uint64_t pushed, popped;
	uint32_t closed;
	uint32_t not_empty; /* futex: bumped by every push and by close */
	uint32_t not_full;  /* futex: bumped by every pop and by close */
	uint32_t wait_prod, wait_cons;
	uint32_t pad0;
	uint64_t recoveries; /* times a holder died and the next one repaired */
	uint8_t resv[32];
	sk_mutex m;
} queue_ctl;
static_assert(sizeof(queue_ctl) == SK__QUEUE_CTL, "queue control block");
static_assert(offsetof(queue_ctl, m) == 128, "queue mutex offset");

typedef struct rec_hdr {
	uint32_t len;
	uint32_t check; /* len ^ CHECK_XOR: a torn or stray header does not pass */
} rec_hdr;

enum { IDLE, RESERVED, PEEKED };

struct sk_queue {
	sk_segment *seg;
	queue_ctl *c;
	uint8_t *ring;
	uint64_t cap;
	int state;        /* IDLE, or which zero-copy call holds the lock */
	uint64_t pending; /* RESERVED: record size and length; PEEKED: record size */
	uint32_t pending_len;
};

static inline uint64_t rec_size(uint64_t len)
{
	return 8 + sk__round_up(len, 8);
}

/* ---- state checks and repair (mutex held) ---- */

static int check_ctl(const queue_ctl *c, uint64_t cap)
{
	if (c->magic != QUEUE_MAGIC || c->version != QUEUE_VERSION || c->capacity != cap || c->max_msg + 8 > cap ||
	    c->max_msg >= PAD_LEN)
		return SK_ECORRUPT;
	if (c->head > c->tail || c->tail - c->head > cap || c->head % 8 || c->tail % 8)
		return SK_ECORRUPT;
	return 0;
}

/* The record at position pos, validated against the ring and the tail. For a
 * pad, *len is PAD_LEN and *size the bytes to the end of the ring. */
static int read_rec(const sk_queue *q, uint64_t pos, uint32_t *len, uint64_t *size)
{
	const queue_ctl *c = q->c;
	uint64_t off = pos % q->cap;
	if (c->tail - pos < 8)
		return SK_ECORRUPT;
	rec_hdr h;
	memcpy(&h, q->ring + off, sizeof h);
	if ((h.len ^ CHECK_XOR) != h.check)
		return SK_ECORRUPT;
	if (h.len == PAD_LEN) {
		*len = PAD_LEN;
		*size = q->cap - off;
	} else {
		if (h.len > c->max_msg || off + rec_size(h.len) > q->cap)
			return SK_ECORRUPT;
		*len = h.len;
		*size = rec_size(h.len);
	}
	return c->tail - pos < *size ? SK_ECORRUPT : 0;
}

/* After a holder died: recount the records between head and tail. */
static int repair(sk_queue *q)
{
	queue_ctl *c = q->c;
	int rc = check_ctl(c, q->cap);
	if (rc)
		return rc;
	uint64_t n = 0;
	for (uint64_t pos = c->head; pos < c->tail;) {
		uint32_t len;
		uint64_t size;
		rc = read_rec(q, pos, &len, &size);
		if (rc)
			return rc;
		n += len != PAD_LEN;
		pos += size;
	}
	c->count = n;
	c->recoveries++;
	return 0;
}

static int q_lock(sk_queue *q, int64_t deadline)
{
	if (q->state != IDLE)
		return -EDEADLK; /* this handle holds the lock through reserve or peek */
	int64_t left = sk__time_left(deadline);
	int rc = sk_mutex_lock(&q->c->m, left);
	if (rc == SK_EOWNERDEAD) {
		rc = repair(q);
		int crc = sk_mutex_consistent(&q->c->m);
		if (rc || crc) {
			sk_mutex_unlock(&q->c->m);
			return rc ? rc : crc;
		}
	}
	if (rc)
		return rc == -ETIMEDOUT && deadline >= 0 && left == 0 ? -EAGAIN : rc;
	rc = check_ctl(q->c, q->cap);
	if (rc)
		sk_mutex_unlock(&q->c->m);
	return rc;
}

static void q_unlock(sk_queue *q)
{
	sk_mutex_unlock(&q->c->m);
}

/* Sleeps on *seq with the mutex released, then takes it again. Returns 0
 * with the mutex held, or an error with it released. */
static int q_wait(sk_queue *q, uint32_t *seq, uint32_t *waiters, int64_t timeout_ns, int64_t deadline)
{
	int64_t left = sk__time_left(deadline);
	if (timeout_ns == 0 || left == 0) {
		q_unlock(q);
		return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
	}
	uint32_t s = LD(seq);
	ADD(waiters, 1);
	q_unlock(q);
	/* The other side usually runs on another core and answers within
	 * microseconds: watch the word for a moment before paying for a sleep
	 * and a wake-up (about 15 us on a virtual machine). Bounded: 20 us. */
	int64_t spin_end = sk__sys_monotonic_ns() + 20000;
	bool changed = false;
	while (!(changed = LD(seq) != s) && sk__sys_monotonic_ns() < spin_end)
		for (int i = 0; i < 32; i++)
			sk__cpu_relax();
	if (!changed)
		sk__sys_futex_wait(seq, s, sk__time_left(deadline));
	SUB(waiters, 1);
	int rc = q_lock(q, deadline);
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

/* ---- producing ---- */

/* Makes room for a record of `size` bytes at tail (padding to the ring's end
 * first when needed), waiting as the timeout allows. Called with the mutex
 * held; returns 0 with it held, or an error with it released. */
static int make_room(sk_queue *q, uint64_t size, int64_t timeout_ns, int64_t deadline)
{
	queue_ctl *c = q->c;
	for (;;) {
		if (c->closed) {
			q_unlock(q);
			return SK_ECLOSED;
		}
		uint64_t off = c->tail % q->cap, to_end = q->cap - off;
		uint64_t pad = size > to_end ? to_end : 0;
		if (c->tail - c->head + pad + size <= q->cap) {
			if (pad) {
				rec_hdr h = { PAD_LEN, PAD_LEN ^ CHECK_XOR };
				memcpy(q->ring + off, &h, sizeof h);
				ST(&c->tail, c->tail + pad);
			}
			return 0;
		}
		if (c->head == c->tail && off) {
			/* Empty, but the record would straddle the end: start over at offset 0. */
			ST(&c->tail, c->tail + to_end);
			ST(&c->head, c->tail);
			continue;
		}
		int rc = q_wait(q, &c->not_full, &c->wait_prod, timeout_ns, deadline);
		if (rc)
			return rc;
	}
}

/* Writes the header of the record at tail, whose payload is in place, and
 * publishes it. */
static void commit_rec(sk_queue *q, uint32_t len)
{
	queue_ctl *c = q->c;
	rec_hdr h = { len, len ^ CHECK_XOR };
	memcpy(q->ring + c->tail % q->cap, &h, sizeof h);
	ST(&c->tail, c->tail + rec_size(len)); /* the commit point */
	c->count++;
	c->pushed++;
}

/* Copies a message to tail (room was made) and publishes it. */
static void put_rec(sk_queue *q, const void *msg, uint32_t len)
{
	if (len)
		memcpy(q->ring + q->c->tail % q->cap + 8, msg, len);
	commit_rec(q, len);
}

static void wake_consumers(queue_ctl *c, int n)
{
	ADD(&c->not_empty, 1);
	if (LD(&c->wait_cons))
		sk__sys_futex_wake(&c->not_empty, n);
}

static void wake_producers(queue_ctl *c)
{
	ADD(&c->not_full, 1);
	if (LD(&c->wait_prod))
		sk__sys_futex_wake(&c->not_full, 0x7fffffff); /* any of them may fit now */
}

int sk_queue_push(sk_queue *q, const void *msg, size_t len, int64_t timeout_ns)
{
	if (!q || (len && !msg))
		return -EINVAL;
	if (len > q->c->max_msg)
		return -EMSGSIZE;
	int64_t deadline = sk__deadline(timeout_ns);
	int rc = q_lock(q, deadline);
	if (!rc)
		rc = make_room(q, rec_size(len), timeout_ns, deadline);
	if (rc)
		return rc;
	put_rec(q, msg, (uint32_t)len);
	wake_consumers(q->c, 1);
	q_unlock(q);
	return 0;
}

int sk_queue_push_many(sk_queue *q, const void *const *msgs, const size_t *lens, int n, int64_t timeout_ns)
{
	if (!q || !msgs || !lens || n < 1)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		if (lens[i] > q->c->max_msg)
			return -EMSGSIZE;
	int64_t deadline = sk__deadline(timeout_ns);
	int rc = q_lock(q, deadline);
	if (!rc)
		rc = make_room(q, rec_size(lens[0]), timeout_ns, deadline);
	if (rc)
		return rc;
	int done = 0;
	queue_ctl *c = q->c;
	while (done < n) {
		uint64_t size = rec_size(lens[done]);
		uint64_t off = c->tail % q->cap, to_end = q->cap - off;
		uint64_t pad = size > to_end ? to_end : 0;
		if (done && c->tail - c->head + pad + size > q->cap)
			break;
		if (done && make_room(q, size, 0, -1))
			return done; /* cannot happen: it fits; make_room released the lock */
		put_rec(q, msgs[done], (uint32_t)lens[done]);
		done++;
	}
	wake_consumers(c, 0x7fffffff);
	q_unlock(q);
	return done;
}

/* ---- consuming ---- */

/* Waits for a message and returns the position, length and size of the
 * oldest, skipping a pad. Called with the mutex held; returns 0 with it
 * held, or an error with it released. */
static int first_rec(sk_queue *q, int64_t timeout_ns, int64_t deadline, uint32_t *len, uint64_t *size)
{
	queue_ctl *c = q->c;
	for (;;) {
		if (c->count) {
			int rc = read_rec(q, c->head, len, size);
			if (!rc && *len == PAD_LEN) {
				ST(&c->head, c->head + *size);
				rc = read_rec(q, c->head, len, size);
				if (!rc && *len == PAD_LEN)
					rc = SK_ECORRUPT; /* two pads in a row never happen */
			}
			if (rc)
				q_unlock(q);
			return rc;
		}
		if (c->closed) {
			q_unlock(q);
			return SK_ECLOSED;
		}
		int rc = q_wait(q, &c->not_empty, &c->wait_cons, timeout_ns, deadline);
		if (rc)
			return rc;
	}
}

/* Takes the lock and waits for the oldest message, as the timeout allows.
 * Returns 0 with the lock held, or an error with it released. */
static int lock_first(sk_queue *q, int64_t timeout_ns, uint32_t *len, uint64_t *size)
{
	int64_t deadline = sk__deadline(timeout_ns);
	int rc = q_lock(q, deadline);
	return rc ? rc : first_rec(q, timeout_ns, deadline, len, size);
}

/* The payload of the record at head. */
static inline uint8_t *head_payload(const sk_queue *q)
{
	return q->ring + q->c->head % q->cap + 8;
}

static void take_rec(sk_queue *q, uint64_t size)
{
	queue_ctl *c = q->c;
	ST(&c->head, c->head + size); /* the commit point */
	c->count--;
	c->popped++;
}

int sk_queue_pop(sk_queue *q, void *buf, size_t bufsize, size_t *len, int64_t timeout_ns)
{
	if (!q || !len || (bufsize && !buf))
		return -EINVAL;
	uint32_t l;
	uint64_t size;
	int rc = lock_first(q, timeout_ns, &l, &size);
	if (rc)
		return rc;
	*len = l;
	if (l > bufsize) {
		q_unlock(q);
		return -EMSGSIZE;
	}
	if (l)
		memcpy(buf, head_payload(q), l);
	take_rec(q, size);
	wake_producers(q->c);
	q_unlock(q);
	return 0;
}

int sk_queue_pop_many(sk_queue *q, void *buf, size_t bufsize, size_t *lens, int max, int64_t timeout_ns)
{
	if (!q || !lens || max < 1 || (bufsize && !buf))
		return -EINVAL;
	uint32_t l;
	uint64_t size;
	int rc = lock_first(q, timeout_ns, &l, &size);
	if (rc)
		return rc;
	if (l > bufsize) {
		lens[0] = l;
		q_unlock(q);
		return -EMSGSIZE;
	}
	size_t used = 0;
	int n = 0;
	queue_ctl *c = q->c;
	for (;;) {
		if (l)
			memcpy((uint8_t *)buf + used, head_payload(q), l);
		used += l;
		lens[n++] = l;
		take_rec(q, size);
		if (n == max || !c->count)
			break;
		rc = read_rec(q, c->head, &l, &size);
		if (!rc && l == PAD_LEN) {
			ST(&c->head, c->head + size);
			rc = read_rec(q, c->head, &l, &size);
		}
		if (rc || l == PAD_LEN || l > bufsize - used)
			break; /* damage is reported by the next call; a message too big waits */
	}
	wake_producers(c);
	q_unlock(q);
	return n;
}

/* ---- zero copy ---- */

int sk_queue_reserve(sk_queue *q, size_t len, void **ptr, int64_t timeout_ns)
{
	if (!q || !ptr)
		return -EINVAL;
	if (len > q->c->max_msg)
		return -EMSGSIZE;
	int64_t deadline = sk__deadline(timeout_ns);
	int rc = q_lock(q, deadline);
	if (!rc)
		rc = make_room(q, rec_size(len), timeout_ns, deadline);
	if (rc)
		return rc;
	*ptr = q->ring + q->c->tail % q->cap + 8;
	q->state = RESERVED;
	q->pending_len = (uint32_t)len;
	return 0;
}

int sk_queue_commit(sk_queue *q)
{
	if (!q || q->state != RESERVED)
		return -EINVAL;
	commit_rec(q, q->pending_len);
	wake_consumers(q->c, 1);
	q->state = IDLE;
	q_unlock(q);
	return 0;
}

/* Lets go of the lock held since reserve or peek, changing nothing. */
static int drop_hold(sk_queue *q, int held)
{
	if (!q || q->state != held)
		return -EINVAL;
	q->state = IDLE;
	q_unlock(q);
	return 0;
}

int sk_queue_abort(sk_queue *q)
{
	return drop_hold(q, RESERVED);
}

int sk_queue_peek(sk_queue *q, const void **ptr, size_t *len, int64_t timeout_ns)
{
	if (!q || !ptr || !len)
		return -EINVAL;
	uint32_t l;
	uint64_t size;
	int rc = lock_first(q, timeout_ns, &l, &size);
	if (rc)
		return rc;
	*ptr = head_payload(q);
	*len = l;
	q->state = PEEKED;
	q->pending = size;
	return 0;
}

int sk_queue_release(sk_queue *q)
{
	if (!q || q->state != PEEKED)
		return -EINVAL;
	take_rec(q, q->pending);
	wake_producers(q->c);
	q->state = IDLE;
	q_unlock(q);
	return 0;
}

int sk_queue_unpeek(sk_queue *q)
{
	return drop_hold(q, PEEKED);
}

/* ---- the rest ---- */

int sk_queue_shutdown(sk_queue *q)
{
	if (!q)
		return -EINVAL;
	int rc = q_lock(q, -1);
	if (rc)
		return rc;
	ST(&q->c->closed, 1);
	ADD(&q->c->not_empty, 1);
	ADD(&q->c->not_full, 1);
	sk__sys_futex_wake(&q->c->not_empty, 0x7fffffff);
	sk__sys_futex_wake(&q->c->not_full, 0x7fffffff);
	q_unlock(q);
	return 0;
}

static void fill_stats(const queue_ctl *c, sk_queue_stats *st)
{
	memset(st, 0, sizeof *st);
	st->capacity = LD(&c->capacity);
	st->max_msg = LD(&c->max_msg);
	uint64_t head = LD(&c->head), tail = LD(&c->tail);
	st->used = tail >= head ? tail - head : 0;
	st->messages = LD(&c->count);
	st->pushed = LD(&c->pushed);
	st->popped = LD(&c->popped);
	st->closed = LD(&c->closed) != 0;
	st->waiting_producers = (int)LD(&c->wait_prod);
	st->waiting_consumers = (int)LD(&c->wait_cons);
	st->recoveries = LD(&c->recoveries);
}

int sk_queue_stats_get(sk_queue *q, sk_queue_stats *st)
{
	if (!q || !st)
		return -EINVAL;
	int rc = q_lock(q, -1);
	if (rc)
		return rc;
	fill_stats(q->c, st);
	q_unlock(q);
	return 0;
}

int sk_queue_stats_peek(const sk_segment *seg, sk_queue_stats *st)
{
	if (!seg || !st || seg->hdr.kind != SK_KIND_QUEUE)
		return -EINVAL;
	const queue_ctl *c = sk_segment_data(seg);
	if (LD(&c->magic) != QUEUE_MAGIC || c->version != QUEUE_VERSION)
		return SK_ECORRUPT;
	fill_stats(c, st);
	return 0;
}

typedef struct q_init {
	uint64_t capacity, max_msg;
} q_init;

static int init_queue(uint8_t *base, const void *arg)
{
	const q_init *qi = arg;
	queue_ctl *c = (queue_ctl *)(base + SK__HEADER_SIZE);
	memset(c, 0, sizeof *c);
	c->version = QUEUE_VERSION;
	c->capacity = qi->capacity;
	c->max_msg = qi->max_msg;
	int rc = sk_mutex_init(&c->m);
	if (!rc)
		ST(&c->magic, QUEUE_MAGIC);
	return rc;
}

static int wrap(sk_segment *seg, void *outp)
{
	sk_queue **out = outp;
	sk_queue *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	q->seg = seg;
	q->c = sk_segment_data(seg);
	q->ring = (uint8_t *)q->c + SK__QUEUE_CTL;
	q->cap = seg->hdr.nitems;
	*out = q;
	return 0;
}

int sk_queue_create(const char *name, uint64_t capacity, uint64_t max_msg, const sk_create_opts *opts, sk_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	capacity = sk__round_up(capacity, 8);
	if (capacity < 16 || capacity > (UINT64_C(1) << 40) || max_msg >= PAD_LEN || max_msg + 8 > capacity ||
	    (opts && (opts->flags & ~SK__CREATE_COMMON)))
		return -EINVAL;
	q_init qi = { capacity, max_msg };
	sk__seg_desc d = { .kind = SK_KIND_QUEUE,
			   .nitems = capacity,
			   .data_size = SK__QUEUE_CTL + capacity,
			   .init = init_queue,
			   .init_arg = &qi };
	return sk__segment_create_wrapped(name, &d, opts, wrap, out);
}

int sk_queue_open(const char *name, sk_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, SK_RDWR, SK_KIND_QUEUE, &seg);
	if (rc)
		return rc;
	const queue_ctl *c = sk_segment_data(seg);
	sk_lock_state st;
	if (check_ctl(c, seg->hdr.nitems) || sk_mutex_state(&c->m, &st))
		rc = SK_ECORRUPT;
	if (!rc)
		rc = wrap(seg, out);
	if (rc)
		sk_segment_close(seg);
	return rc;
}

int sk_queue_close(sk_queue *q)
{
	if (!q)
		return 0;
	if (q->state != IDLE)
		q_unlock(q);
	sk_segment_close(q->seg);
	free(q);
	return 0;
}

const char *sk_queue_name(const sk_queue *q)
{
	return sk_segment_name(q->seg);
}
