/*
 * queue.c: a bounded multi-producer multi-consumer queue of variable-size
 * messages in one segment.
 *
 * Memory layout (at the segment's data offset; docs/queue.md has it byte by
 * byte): a 4096-byte control block, then the ring of `capacity` bytes. The
 * control block keeps apart what producers and consumers write, one cache
 * line each: identity and tasks at 0; the producers' line at 64 (wtail,
 * tail, messages entered, published, write claims); the consumers' line at
 * 128 (head, rhead, messages taken, handed back, read claims); the waiting
 * line at 192 (closed, two futex words, sleeper counts); the producers'
 * robust mutex at 256 and the consumers' at 384; a table of 32 claims at
 * 1024 (0-15 producers', 16-31 consumers'). A record is an 8-byte header
 * {u32 length, u32 check} and the payload padded to 8 bytes; it never
 * wraps: a pad record (length 0xffffffff) fills the end of the ring when
 * the next record does not fit there. The check word is the length xor'ed
 * with one of four constants, which is the record's state: WRITING (a
 * producer is copying it in), READY, TAKING (a consumer is copying it out)
 * or DONE (taken, or given up by its producer; skipped by everyone).
 *
 * Positions only grow; a position's place in the ring is pos % capacity.
 *   head <= rhead <= tail <= wtail,  wtail - head <= capacity
 *   [head, rhead)  taken or being taken (DONE, TAKING; READY = given back)
 *   [rhead, tail)  published and waiting (READY; DONE and pads skipped)
 *   [tail, wtail)  reserved by producers; the record at tail is WRITING
 *
 * Protocol: two sides, two locks. Producers change wtail, tail, their
 * counters, their claims and the records in [tail, wtail) (and write new
 * ones past wtail) only holding the producers' mutex; consumers change
 * head, rhead, theirs, and the records in [head, tail) only holding the
 * consumers'. So a producer and a consumer never wait for each other's
 * lock, and a producer's copy in overlaps a consumer's copy out. The sides
 * meet at two positions: a producer publishes by storing tail (release)
 * after the record is complete, and a consumer reads tail (acquire) before
 * the records below it; a consumer frees room by storing head (release)
 * after its copy out is done, and a producer reads head (acquire) before it
 * writes there. Each handle remembers the last head (producers) or tail
 * (consumers) it read and reads the other side's line again only when that
 * one is used up: positions only grow, so an old head understates the room
 * and an old tail the messages published, never the reverse. The messages
 * held are entered (producers: reserved or published, less those given up)
 * minus taken (consumers); the message limit compares them.
 *
 * Messages below COPY_INLINE bytes (and the batch calls) are copied holding
 * the side's lock: the producer writes the record READY past wtail, then
 * stores wtail, its counters and tail (the commit). Larger messages, and the
 * zero-copy calls, copy outside the lock: under it a producer writes the
 * header WRITING, records a claim {position, pid, start time} and moves
 * wtail; it copies without the lock; under it again it marks the record
 * READY and moves tail over every finished record (so messages are
 * published in order). A consumer likewise marks the oldest READY record
 * TAKING, claims it and moves rhead; copies without the lock; then marks it
 * DONE and moves head over DONE records. Only the rare steps that touch both
 * sides take both locks, always the producers' first: the repairs' recount,
 * settling dead claims, moving an empty ring to the start, stats, open. A
 * consumer that must repair its side after a death only tries the
 * producers' lock (never waits for it while holding its own).
 *
 * Crashes. A process that dies holding a side's lock leaves the next locker
 * of that side SK_EOWNERDEAD; it re-derives its side from the records
 * (repair): claims whose record does not match or whose owner died, records
 * WRITING (TAKING) that no claim covers, tail over finished records (head
 * over DONE ones), the handed-back count; and it marks the message count
 * stale. The count is recounted from the records by whoever next holds both
 * locks (at once if the other lock is free, else the next producer that
 * can, stats, or a settling waiter). A claim whose owner died (pidfd, start
 * time) is settled by whoever waits behind it (waiters sleep in 2 ms slices
 * while claims are out) or by the next repair: a producer's record becomes
 * DONE (its own unpublished message is lost, no one saw any of it), a
 * consumer's becomes READY again and is handed out before those at rhead.
 * So no one ever sees a partial message and no message published is lost.
 * The unfinished-task count (published minus marked done) grows under the
 * lock just before a publication's commit store (a death between the two
 * leaves it one too high).
 *
 * Trust. A peer can write any byte of the segment at any time, locked or
 * not. So every value read from shared memory is read once into a local,
 * validated, and only the local is used: positions (against each other,
 * the capacity and 8-byte alignment), each record header (check word,
 * length against max_msg, end within the ring and the region it lies in),
 * each claim (against its record). A head or tail remembered by a handle is
 * checked again against the side's fresh positions each time it is used.
 * Copies and the pointers handed out are computed from validated locals
 * only, so a hostile peer yields SK_ECORRUPT or wrong data, never an access
 * outside the ring. Loops over records are bounded by the capacity; loops
 * of compare-and-swap on shared words by a count. The capacity, max_msg and
 * max_messages this process uses were read and validated once, at create or
 * open.
 *
 * Waiting. A waiter releases its lock and spins for a short adaptive time
 * (0.5 to 16 us per handle) on what it waits for (consumers: tail, the
 * handed-back count, closed; producers: head, the taken count, the entered
 * count, closed), uncounted, so that spinning costs the other side nothing.
 * Only then does it register as a sleeper (a sequentially consistent
 * read-modify-write of its side's sleeper word), look once more and
 * FUTEX_WAIT on a sequence word. A waker stores what it changed, then (after
 * a sequentially consistent fence) reads the sleeper word and, only if a
 * sleeper not woken yet exists (sleepers and woken ones are one 64-bit
 * word), bumps the sequence word and wakes; the fence on one side and the
 * read-modify-write on the other mean that either the waker sees the
 * sleeper or the sleeper sees the change: no lost wake-up. Consumers are
 * woken one per message (a consumer that leaves messages behind wakes one
 * more), producers all at once. Each lock is tried for 2 us before the
 * mutex sleeps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "clock.h"
#include "kinds.h"
#include "os.h"
#include "segment.h"
#include "shmkit/queue.h"
#include "shmkit/sync.h"

#define QUEUE_MAGIC   0x55514b53u /* "SKQU" */
#define QUEUE_VERSION 3u
#define PAD_LEN       0xffffffffu
#define NCLAIMS       32
#define SIDE_CLAIMS   16                   /* claims 0-15 producers', 16-31 consumers' */
#define SLICE_NS      2000000              /* a waiter behind a claim checks its owner this often */
#define FINISH_NS     INT64_C(10000000000) /* bound on the lock wait of commit/release */
#define LOCK_SPIN_NS  2000                 /* a lock is tried this long before sleeping in the mutex */
#define COPY_INLINE   16384                /* smaller messages are copied under the lock */
#define CAS_TRIES     100000               /* a shared word rewritten under every CAS: give up */

/* Record states, xor'ed with the length into the check word. */
#define ST_READY   0x9e3779b9u
#define ST_WRITING 0x5bd1e995u
#define ST_TAKING  0x1b873593u
#define ST_DONE    0xcc9e2d51u

/* Atomics (atomic.h): under a lock relaxed (RLD/RST: the mutex orders
 * them); between the sides acquire and release (ALD/AST); waiting
 * sequentially consistent (LD/ST/ADD/SUB/CAS). */

/* The paths every push and pop take are inlined whole; the rest stays out of
 * their way. */
#define HOT  static inline __attribute__((always_inline))
#define COLD static __attribute__((noinline, cold))

enum { CL_FREE = 0, CL_WRITE = 1, CL_READ = 2 };
enum { PSIDE = 0, CSIDE = 1 };

typedef struct q_claim {
	uint64_t pos;   /* the record's position */
	int32_t pid;    /* the owner */
	uint32_t kind;  /* CL_*: written last when claiming, first when freeing */
	uint64_t start; /* the owner's start time (clock ticks since boot) */
	uint64_t resv;
} q_claim;

typedef struct queue_ctl {
	/* 0: identity, fixed at creation */
	uint32_t magic;
	uint16_t version, flags;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t max_messages; /* 0: no limit */
	/* 32: tasks and repairs */
	uint64_t tasks_done; /* task_done calls; unfinished tasks = pushed - tasks_done */
	uint32_t tasks;      /* futex: bumped when tasks_done reaches pushed */
	uint32_t wait_join;  /* joiners asleep on tasks */
	uint64_t recoveries; /* times a holder died and the next locker repaired */
	uint8_t resv0[8];
	/* 64: the producers' line (their lock) */
	uint64_t wtail, tail;
	uint64_t entered; /* messages reserved or published, less those given up */
	uint64_t pushed;  /* messages published since creation */
	uint32_t wclaims; /* write claims in use */
	uint32_t stale;   /* the count (entered) needs a recount; set by either side */
	uint8_t resv1[24];
	/* 128: the consumers' line (their lock) */
	uint64_t head, rhead;
	uint64_t popped;   /* messages taken since creation */
	uint32_t returned; /* READY records below rhead (given back) */
	uint32_t rclaims;  /* read claims in use */
	uint8_t resv2[32];
	/* 192: waiting, read by every operation, written by sleepers and wakers */
	uint32_t closed;
	uint32_t not_empty; /* futex: bumped to wake consumers, and at shutdown */
	uint32_t not_full;  /* futex: bumped to wake producers, and at shutdown */
	uint32_t pad0;
	uint64_t sleep_cons; /* consumers asleep (or about to sleep) << 32 | of them woken, not running yet */
	uint64_t sleep_prod; /* the same for producers */
	uint8_t resv3[32];
	/* 256 */
	sk_mutex pm; /* the producers' lock */
	sk_mutex cm; /* 384: the consumers' lock */
	uint8_t resv4[512];
	/* 1024 */
	q_claim claims[NCLAIMS];
	uint8_t resv5[2048];
} queue_ctl;
static_assert(sizeof(queue_ctl) == SK__QUEUE_CTL, "queue control block");
static_assert(offsetof(queue_ctl, tasks_done) == 32 && offsetof(queue_ctl, recoveries) == 48, "queue tasks");
static_assert(offsetof(queue_ctl, wtail) == 64 && offsetof(queue_ctl, stale) == 100, "queue producers' line");
static_assert(offsetof(queue_ctl, head) == 128 && offsetof(queue_ctl, rclaims) == 156, "queue consumers' line");
static_assert(offsetof(queue_ctl, closed) == 192 && offsetof(queue_ctl, sleep_prod) == 216, "queue waiting line");
static_assert(offsetof(queue_ctl, pm) == 256 && offsetof(queue_ctl, cm) == 384, "queue mutexes");
static_assert(offsetof(queue_ctl, claims) == 1024 && sizeof(q_claim) == 32, "queue claims");

typedef struct rec_hdr {
	uint32_t len;
	uint32_t check;
} rec_hdr;

/* A record as read (once) and validated. */
typedef struct rec {
	uint32_t len;   /* PAD_LEN for a pad */
	uint32_t state; /* ST_*; ST_DONE for a pad */
	uint64_t size;  /* bytes it takes in the ring */
} rec;

/* The producers' side, read once under their lock and validated. */
typedef struct ps {
	uint64_t wtail, tail, entered;
	uint32_t wclaims, stale;
} ps;

/* The consumers' side, likewise. */
typedef struct cs {
	uint64_t head, rhead, popped;
	uint32_t returned, rclaims;
} cs;

/* What a handle holds between reserve and commit or peek and release. */
enum { H_IDLE, H_RESERVED, H_PEEKED };

struct sk_queue {
	sk_segment *seg;
	queue_ctl *c;
	uint8_t *ring;
	uint64_t cap, max_msg, max_messages; /* validated once */
	int64_t spin_ns;                     /* adaptive spin before sleeping */
	/* What this handle last read of the other side (relaxed atomics: threads
	 * may share a handle). Positions only grow, so old values understate. */
	uint64_t head_seen;   /* producing: head */
	uint64_t popped_seen; /* producing with a message limit: the taken count */
	uint64_t tail_seen;   /* consuming: tail */
	uint64_t lap;         /* a multiple of the capacity at or below the last position placed */
	int hold;             /* H_* */
	bool hold_locked;     /* no claim slot was free: the side's lock is held */
	int hold_slot;
	uint64_t hold_pos, hold_size;
	uint32_t hold_len;
	ps hold_p; /* hold_locked: the state to write back */
	cs hold_c;
};

/* Test hook: called at points between validation and use, so that tests can
 * play a peer that rewrites shared memory right there. NULL in normal use. */
void (*sk__queue_hook)(sk_queue *q, int point);
enum { HOOK_LOCKED = 1, HOOK_COPY_IN = 2, HOOK_COPY_OUT = 3, HOOK_FINISH = 4, HOOK_STORE = 5 };
#define HOOK(q, p)                                               \
	do {                                                     \
		if (__builtin_expect(sk__queue_hook != NULL, 0)) \
			sk__queue_hook(q, p);                    \
	} while (0)

HOT uint64_t rec_size(uint64_t len)
{
	return 8 + sk__round_up(len, 8);
}

/* Handle-local caches (never shared memory). */
#define HGET(q, f)    __atomic_load_n(&(q)->f, __ATOMIC_RELAXED)
#define HSET(q, f, v) __atomic_store_n(&(q)->f, (v), __ATOMIC_RELAXED)

/* pos % capacity, without a division while positions stay in the lap this
 * handle placed last. */
HOT uint64_t ring_off(sk_queue *q, uint64_t pos)
{
	uint64_t lap = HGET(q, lap), d = pos - lap;
	if (__builtin_expect(d < q->cap, 1))
		return d;
	lap = pos - pos % q->cap;
	HSET(q, lap, lap);
	return pos - lap;
}

/* ---- reading and writing shared state ---- */

/* The producers' side, read once (their lock held) and validated; with
 * counts_too false (repair, which recounts), the positions only. */
HOT int load_p(const sk_queue *q, ps *p, bool counts_too)
{
	const queue_ctl *c = q->c;
	p->wtail = RLD(&c->wtail);
	p->tail = RLD(&c->tail);
	p->entered = RLD(&c->entered);
	p->wclaims = RLD(&c->wclaims);
	p->stale = RLD(&c->stale);
	if ((p->wtail | p->tail) % 8 || p->tail > p->wtail || p->wtail - p->tail > q->cap)
		return SK_ECORRUPT;
	return counts_too && p->wclaims > SIDE_CLAIMS ? SK_ECORRUPT : 0;
}

/* The consumers' side, likewise (their lock held). */
HOT int load_c(const sk_queue *q, cs *s, bool counts_too)
{
	const queue_ctl *c = q->c;
	s->head = RLD(&c->head);
	s->rhead = RLD(&c->rhead);
	s->popped = RLD(&c->popped);
	s->returned = RLD(&c->returned);
	s->rclaims = RLD(&c->rclaims);
	if ((s->head | s->rhead) % 8 || s->head > s->rhead || s->rhead - s->head > q->cap)
		return SK_ECORRUPT;
	return counts_too && (s->rclaims > SIDE_CLAIMS || s->returned > (s->rhead - s->head) / 8) ? SK_ECORRUPT : 0;
}

/* Positions only grow, and each side stores its larger one first, so that a
 * process killed between two stores leaves positions that still satisfy
 * head <= rhead <= tail <= wtail. tail is the commit point for consumers:
 * stored last, with release. Counts a death leaves stale are recounted. */
HOT void store_p(sk_queue *q, const ps *p)
{
	queue_ctl *c = q->c;
	RST(&c->wtail, p->wtail);
	RST(&c->entered, p->entered);
	RST(&c->wclaims, p->wclaims);
	AST(&c->tail, p->tail);
}

/* head frees room for producers: stored with release after rhead. */
HOT void store_c(sk_queue *q, const cs *s)
{
	queue_ctl *c = q->c;
	RST(&c->rhead, s->rhead);
	HOOK(q, HOOK_STORE);
	AST(&c->head, s->head);
	RST(&c->returned, s->returned);
	RST(&c->rclaims, s->rclaims);
	RST(&c->popped, s->popped);
}

/* The record at pos, which must lie below limit; its header is read once. */
HOT int read_rec(sk_queue *q, uint64_t pos, uint64_t limit, rec *r)
{
	if (pos % 8 || pos >= limit || limit - pos < 8)
		return SK_ECORRUPT;
	uint64_t off = ring_off(q, pos);
	rec_hdr h;
	memcpy(&h, q->ring + off, sizeof h);
	if (h.len == PAD_LEN) {
		if (h.check != (PAD_LEN ^ ST_READY))
			return SK_ECORRUPT;
		r->len = PAD_LEN;
		r->state = ST_DONE;
		r->size = q->cap - off;
	} else {
		uint32_t st = h.check ^ h.len;
		if ((st != ST_READY && st != ST_WRITING && st != ST_TAKING && st != ST_DONE) || h.len > q->max_msg ||
		    off + rec_size(h.len) > q->cap)
			return SK_ECORRUPT;
		r->len = h.len;
		r->state = st;
		r->size = rec_size(h.len);
	}
	return limit - pos < r->size ? SK_ECORRUPT : 0;
}

HOT void write_hdr(sk_queue *q, uint64_t pos, uint32_t len, uint32_t state)
{
	rec_hdr h = { len, len == PAD_LEN ? PAD_LEN ^ ST_READY : len ^ state };
	memcpy(q->ring + ring_off(q, pos), &h, sizeof h);
}

HOT uint8_t *payload(sk_queue *q, uint64_t pos)
{
	return q->ring + ring_off(q, pos) + 8;
}

/* Moves tail over finished records (READY, DONE, pads) up to the first one
 * still being written. Producers' lock. */
static int advance_tail(sk_queue *q, ps *p)
{
	while (p->tail < p->wtail) {
		rec r;
		int rc = read_rec(q, p->tail, p->wtail, &r);
		if (rc)
			return rc;
		if (r.state == ST_WRITING)
			break;
		if (r.state == ST_TAKING)
			return SK_ECORRUPT; /* no consumer reads past tail */
		p->tail += r.size;
	}
	return 0;
}

/* Moves head over DONE records and pads below rhead. Consumers' lock. */
HOT int advance_head(sk_queue *q, cs *s)
{
	while (s->head < s->rhead) {
		rec r;
		int rc = read_rec(q, s->head, s->rhead, &r);
		if (rc)
			return rc;
		if (r.state != ST_DONE)
			break;
		s->head += r.size;
	}
	return 0;
}

/* The consumers' head, read (acquire) by a producer that holds its lock and
 * has its side in p: it must lie at most tail and a capacity below wtail. */
static int read_head(sk_queue *q, const ps *p, uint64_t *head)
{
	uint64_t h = ALD(&q->c->head);
	if (h % 8 || h > p->tail || p->wtail - h > q->cap)
		return SK_ECORRUPT;
	HSET(q, head_seen, h);
	*head = h;
	return 0;
}

/* The producers' tail, read (acquire) by a consumer that holds its lock and
 * has its side in s: at least rhead and at most a capacity above head. */
static int read_tail(sk_queue *q, const cs *s, uint64_t *tail)
{
	uint64_t t = ALD(&q->c->tail);
	if (t % 8 || t < s->rhead || t - s->head > q->cap)
		return SK_ECORRUPT;
	HSET(q, tail_seen, t);
	*tail = t;
	return 0;
}

/* The messages held: entered minus taken (0 if a peer or a death made them
 * cross; the next recount puts them right). */
HOT uint64_t held(uint64_t entered, uint64_t popped)
{
	return entered > popped ? entered - popped : 0;
}

/* ---- claims and repairs ---- */

static bool owner_alive(pid_t pid, uint64_t start)
{
	pid_t me;
	uint64_t my_start;
	sk__sys_self(&me, &my_start);
	if (pid == me)
		return start == my_start;
	int fd;
	if (pid <= 0 || sk__sys_pidfd_open(pid, &fd))
		return false;
	uint64_t now;
	bool ready = false;
	/* The start time tells a reused pid; a readable pidfd tells a process
	 * that ended (also one not reaped yet). */
	bool alive =
	    sk__sys_proc_start(pid, &now) == 0 && now == start && sk__sys_wait_readable(&fd, 1, 0, &ready) == 0;
	sk__sys_close(fd);
	return alive;
}

/* A free claim slot of the side's half taken for the record at pos, or -1
 * when all are in use. The side's lock is held; *used counts its claims. */
static int claim_take(sk_queue *q, int side, uint32_t *used, uint64_t pos, uint32_t kind)
{
	if (*used >= SIDE_CLAIMS)
		return -1;
	pid_t pid;
	uint64_t start;
	sk__sys_self(&pid, &start);
	for (int i = side * SIDE_CLAIMS; i < (side + 1) * SIDE_CLAIMS; i++) {
		q_claim *cl = &q->c->claims[i];
		if (LD(&cl->kind) != CL_FREE)
			continue;
		ST(&cl->pos, pos);
		ST(&cl->pid, (int32_t)pid);
		ST(&cl->start, start);
		ST(&cl->kind, kind);
		(*used)++;
		return i;
	}
	return -1;
}

/* Whether slot i still holds this process's claim of kind on pos. */
static bool claim_is_mine(sk_queue *q, int i, uint64_t pos, uint32_t kind)
{
	const q_claim *cl = &q->c->claims[i];
	pid_t pid;
	uint64_t start;
	sk__sys_self(&pid, &start);
	return LD(&cl->kind) == kind && LD(&cl->pos) == pos && LD(&cl->pid) == (int32_t)pid && LD(&cl->start) == start;
}

static void claim_free(sk_queue *q, uint32_t *used, int i)
{
	ST(&q->c->claims[i].kind, CL_FREE);
	if (*used)
		(*used)--;
}

/* Checks the side's half of the claims: keeps (in mine, returning how many)
 * those of kind whose record at a position in [lo, limit) is in state and
 * whose owner lives; frees the others (a dead owner's, or stray ones). */
static uint32_t keep_live_claims(sk_queue *q, int side, uint32_t kind, uint32_t state, uint64_t lo, uint64_t limit,
				 uint64_t *mine)
{
	uint32_t n = 0;
	for (int i = side * SIDE_CLAIMS; i < (side + 1) * SIDE_CLAIMS; i++) {
		q_claim *cl = &q->c->claims[i];
		uint32_t k = LD(&cl->kind);
		if (k == CL_FREE)
			continue;
		uint64_t pos = LD(&cl->pos), start = LD(&cl->start);
		pid_t pid = LD(&cl->pid);
		rec r;
		if (k == kind && pos >= lo && read_rec(q, pos, limit, &r) == 0 && r.state == state &&
		    owner_alive(pid, start)) {
			mine[n++] = pos;
			continue;
		}
		ST(&cl->kind, CL_FREE);
	}
	return n;
}

static bool covered(const uint64_t *mine, uint32_t n, uint64_t pos)
{
	for (uint32_t k = 0; k < n; k++)
		if (mine[k] == pos)
			return true;
	return false;
}

/* Re-derives the producers' side from the records (their lock held): write
 * claims are checked against their record and owner, records WRITING that
 * no live claim covers become DONE (their producer died before publishing:
 * no one saw any of it), tail moves over what is finished. The message count
 * is left to a recount (the caller marks it stale). */
COLD int repair_p(sk_queue *q)
{
	ps p;
	int rc = load_p(q, &p, false);
	if (rc)
		return rc;
	uint64_t mine[SIDE_CLAIMS];
	uint32_t n = keep_live_claims(q, PSIDE, CL_WRITE, ST_WRITING, p.tail, p.wtail, mine);
	for (uint64_t pos = p.tail; pos < p.wtail;) {
		rec r;
		if ((rc = read_rec(q, pos, p.wtail, &r)))
			return rc;
		if (r.state == ST_TAKING)
			return SK_ECORRUPT;
		if (r.state == ST_WRITING && !covered(mine, n, pos))
			write_hdr(q, pos, r.len, ST_DONE);
		pos += r.size;
	}
	p.wclaims = n;
	rc = advance_tail(q, &p);
	if (!rc)
		store_p(q, &p);
	return rc;
}

/* Re-derives the consumers' side (their lock held): read claims are checked
 * against their record and owner, records TAKING that no live claim covers
 * become READY again (their consumer died before taking them: they are
 * handed out again, first), the handed-back count is recounted and head
 * moves over what is DONE. */
COLD int repair_c(sk_queue *q)
{
	cs s;
	int rc = load_c(q, &s, false);
	if (rc)
		return rc;
	uint64_t tail = ALD(&q->c->tail);
	if (tail % 8 || tail < s.rhead || tail - s.head > q->cap)
		return SK_ECORRUPT;
	uint64_t mine[SIDE_CLAIMS];
	uint32_t n = keep_live_claims(q, CSIDE, CL_READ, ST_TAKING, s.head, s.rhead, mine);
	uint32_t returned = 0;
	for (uint64_t pos = s.head; pos < s.rhead;) {
		rec r;
		if ((rc = read_rec(q, pos, s.rhead, &r)))
			return rc;
		if (r.state == ST_WRITING)
			return SK_ECORRUPT;
		if (r.state == ST_TAKING && !covered(mine, n, pos))
			write_hdr(q, pos, r.len, r.state = ST_READY);
		returned += r.state == ST_READY;
		pos += r.size;
	}
	s.returned = returned;
	s.rclaims = n;
	rc = advance_head(q, &s);
	if (!rc)
		store_c(q, &s);
	return rc;
}

/* Both locks held: counts the messages in the ring (the records not DONE in
 * [head, wtail): waiting, being written or being read) and sets entered so
 * that entered - taken is that count. */
COLD int recount(sk_queue *q)
{
	ps p;
	cs s;
	int rc = load_p(q, &p, false);
	if (!rc)
		rc = load_c(q, &s, false);
	if (!rc && (s.rhead > p.tail || p.wtail - s.head > q->cap))
		rc = SK_ECORRUPT;
	if (rc)
		return rc;
	uint64_t n = 0;
	for (uint64_t pos = s.head; pos < p.wtail;) {
		rec r;
		if ((rc = read_rec(q, pos, p.wtail, &r)))
			return rc;
		n += r.state != ST_DONE;
		pos += r.size;
	}
	RST(&q->c->entered, s.popped + n);
	ST(&q->c->stale, 0);
	return 0;
}

/* ---- the locks ---- */

/* A deadline for a timeout (-1: none). Timeout 0 is deadline 0, already
 * passed, without reading the clock. */
HOT int64_t q_deadline(int64_t timeout_ns)
{
	return timeout_ns <= 0 ? (timeout_ns < 0 ? -1 : 0) : sk__deadline(timeout_ns);
}

HOT sk_mutex *side_mutex(sk_queue *q, int side)
{
	return side == PSIDE ? &q->c->pm : &q->c->cm;
}

HOT void unlock_side(sk_queue *q, int side)
{
	sk_mutex_unlock(side_mutex(q, side));
}

/* Takes a mutex, trying it for a moment before sleeping in it. 0,
 * SK_EOWNERDEAD (held), or an error (not held): -EAGAIN when the deadline
 * had passed before the lock was tried, -ETIMEDOUT when it passed while
 * waiting. */
COLD int take_mutex_slow(sk_mutex *m, int64_t deadline)
{
	int rc;
	int64_t end = sk__sys_monotonic_ns() + LOCK_SPIN_NS;
	do {
		for (int k = 0; k < 8; k++)
			sk__cpu_relax();
		rc = sk_mutex_trylock(m);
	} while (rc == -EBUSY && sk__sys_monotonic_ns() < end);
	if (rc == -EBUSY) {
		int64_t left = sk__time_left(deadline);
		rc = left == 0 ? -EAGAIN : sk_mutex_lock(m, left);
	}
	return rc;
}

HOT int take_mutex(sk_mutex *m, int64_t deadline)
{
	int rc = sk_mutex_lock(m, 0); /* its uncontended path is one compare-and-swap */
	return __builtin_expect(rc != -ETIMEDOUT, 1) ? rc : take_mutex_slow(m, deadline);
}

COLD void wake_all(sk_queue *q);
COLD int after_death(sk_queue *q, int side, bool both);

/* Holding one side's lock: takes the other only if it is free right now
 * (a consumer must never wait for the producers' lock while it holds its
 * own) and recounts a stale count. */
COLD void try_recount(sk_queue *q, int held_side)
{
	int other = !held_side;
	int rc = sk_mutex_trylock(side_mutex(q, other));
	if (rc == SK_EOWNERDEAD)
		rc = after_death(q, other, true);
	if (rc)
		return;
	if (LD(&q->c->stale))
		recount(q);
	unlock_side(q, other);
}

/* A side's lock was taken from a dead holder (held now): repairs that side,
 * marks the count stale and the mutex consistent, and wakes everyone (what
 * the repair settled may let them go on). Unless the caller takes both
 * locks anyway, recounts at once if the other lock is free. Returns 0 with
 * the lock held, or an error with it released. */
COLD int after_death(sk_queue *q, int side, bool both)
{
	ST(&q->c->stale, 1);
	int rc = side == PSIDE ? repair_p(q) : repair_c(q);
	if (!rc)
		ADD(&q->c->recoveries, 1);
	sk_mutex *m = side_mutex(q, side);
	int crc = sk_mutex_consistent(m);
	if (rc || crc) {
		sk_mutex_unlock(m);
		return rc ? rc : crc;
	}
	if (!both)
		try_recount(q, side);
	wake_all(q);
	return 0;
}

HOT int lock_side(sk_queue *q, int side, int64_t deadline, bool both)
{
	int rc = take_mutex(side_mutex(q, side), deadline);
	return __builtin_expect(rc == SK_EOWNERDEAD, 0) ? after_death(q, side, both) : rc;
}

/* Takes the producers' lock and loads their side into *p (validated). A
 * stale count is recounted when the consumers' lock is free. 0 with the
 * lock held, or an error with it released. */
HOT int p_lock(sk_queue *q, int64_t deadline, ps *p)
{
	int rc = lock_side(q, PSIDE, deadline, false);
	if (rc)
		return rc;
	rc = load_p(q, p, true);
	if (!rc && __builtin_expect(p->stale != 0, 0)) {
		try_recount(q, PSIDE);
		rc = load_p(q, p, true);
	}
	if (rc) {
		unlock_side(q, PSIDE);
		return rc;
	}
	HOOK(q, HOOK_LOCKED);
	return 0;
}

/* Takes the consumers' lock and loads their side into *s (validated). */
HOT int c_lock(sk_queue *q, int64_t deadline, cs *s)
{
	int rc = lock_side(q, CSIDE, deadline, false);
	if (rc)
		return rc;
	rc = load_c(q, s, true);
	if (rc) {
		unlock_side(q, CSIDE);
		return rc;
	}
	HOOK(q, HOOK_LOCKED);
	return 0;
}

static void unlock_both(sk_queue *q)
{
	unlock_side(q, CSIDE);
	unlock_side(q, PSIDE);
}

/* Both locks, the producers' first, and a stale count recounted. 0 with both
 * held, or an error with neither. */
static int lock_both(sk_queue *q, int64_t deadline)
{
	int rc = lock_side(q, PSIDE, deadline, true);
	if (rc)
		return rc;
	rc = lock_side(q, CSIDE, deadline, true);
	if (rc) {
		unlock_side(q, PSIDE);
		return rc;
	}
	if (LD(&q->c->stale) && (rc = recount(q)) != 0)
		unlock_both(q);
	return rc;
}

/* ---- waiting ---- */

/* Decides whether to wake one sleeper (all, with all) of a sequence word:
 * only if some sleeper was not woken yet. *sl holds two counts, changed
 * together: sleepers << 32 | woken. Wakers count the sleepers they woke
 * until these run, so a producer pushing into a queue whose consumer was
 * woken but has not run yet pays no system call. woken <= sleepers always
 * holds; a sleeper killed leaves both one too high, which cancels out.
 * Returns whether to call FUTEX_WAKE. */
COLD bool wake_prepare(uint32_t *seq, uint64_t *sl, bool all)
{
	uint64_t x = LD(sl);
	for (int tries = 0; tries < CAS_TRIES; tries++) {
		uint32_t n = (uint32_t)(x >> 32), w = (uint32_t)x;
		if (n <= w)
			return false;
		if (CAS(sl, &x, (uint64_t)n << 32 | (all ? n : w + 1))) {
			ADD(seq, 1);
			return true;
		}
	}
	ADD(seq, 1); /* the word is rewritten without end: wake anyway */
	return true;
}

/* Whether a sleeper word names a sleeper not woken yet. */
HOT bool unwoken(const uint64_t *sl)
{
	uint64_t x = RLD(sl);
	return (x >> 32) > (uint32_t)x;
}

/* A sleeper runs again: one sleeper less, and one woken less (if this one
 * was not woken, a later waker just wakes one more than needed). */
COLD void sleeper_done(uint64_t *sl)
{
	uint64_t x = LD(sl);
	for (int tries = 0; tries < CAS_TRIES; tries++) {
		uint32_t n = (uint32_t)(x >> 32), w = (uint32_t)x;
		if (!n)
			return; /* spoiled by another process */
		n--;
		w = w ? w - 1 : 0;
		if (CAS(sl, &x, (uint64_t)n << 32 | (w < n ? w : n)))
			return;
	}
}

enum { WK_CONSUMER = 1, WK_CONSUMERS = 2, WK_PRODUCERS = 4, WK_MORE = 8 };

/* Decides now whom to wake for `what` (WK_*: one consumer, all consumers,
 * all producers; WK_MORE: one more consumer, see unlock_wake) and marks them
 * woken; returns the futex wakes to make. */
HOT int wake_decide(sk_queue *q, int what)
{
	queue_ctl *c = q->c;
	int todo = 0;
	if ((what & (WK_CONSUMER | WK_CONSUMERS | WK_MORE)) && unwoken(&c->sleep_cons) &&
	    wake_prepare(&c->not_empty, &c->sleep_cons, what & WK_CONSUMERS))
		todo |= what & WK_CONSUMERS ? WK_CONSUMERS : WK_CONSUMER;
	if ((what & WK_PRODUCERS) && unwoken(&c->sleep_prod) && wake_prepare(&c->not_full, &c->sleep_prod, true))
		todo |= WK_PRODUCERS;
	return todo;
}

COLD void wake_do(sk_queue *q, int todo)
{
	if (todo & (WK_CONSUMER | WK_CONSUMERS))
		sk__sys_futex_wake(&q->c->not_empty, todo & WK_CONSUMERS ? SK__WAKE_ALL : 1);
	if (todo & WK_PRODUCERS)
		sk__sys_futex_wake(&q->c->not_full, SK__WAKE_ALL);
}

/* Wakes who `what` says from outside the lock they register under: after a
 * fence, which pairs with the read-modify-write of their registration. */
COLD void wake(sk_queue *q, int what)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	int todo = wake_decide(q, what);
	if (todo)
		wake_do(q, todo);
}

COLD void wake_all(sk_queue *q)
{
	wake(q, WK_CONSUMERS | WK_PRODUCERS);
}

/* Releases a side's lock and wakes who `what` says. Consumers register as
 * sleepers holding the producers' lock and producers holding the consumers'
 * (enlist): whom to wake of the kind that registers under the lock held here
 * is decided before releasing it, with no fence (the lock orders the
 * registration and the change); the other kind after, behind a fence. A
 * consumer's WK_MORE (messages left behind: wake one more, in case a
 * consumer woken for them takes just one) is a hint, decided without a
 * fence: a consumer that registers meanwhile sees those messages itself. */
HOT void unlock_wake(sk_queue *q, int side, int what)
{
	int here = side == PSIDE ? (WK_CONSUMER | WK_CONSUMERS) : (WK_PRODUCERS | WK_MORE);
	int todo = what & here ? wake_decide(q, what & here) : 0;
	unlock_side(q, side);
	if (what & ~here) {
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		todo |= wake_decide(q, what & ~here);
	}
	if (todo)
		wake_do(q, todo);
}

enum { W_CONSUMER, W_PRODUCER };

/* What a waiter watches, as it was when it decided to wait: consumers tail,
 * the handed-back count and closed; producers head, the taken count and
 * the entered count with closed. */
typedef struct q_watch {
	uint64_t a, b, x;
} q_watch;

static q_watch watch_now(const sk_queue *q, int who)
{
	const queue_ctl *c = q->c;
	if (who == W_CONSUMER)
		return (q_watch){ LD(&c->tail), LD(&c->returned), LD(&c->closed) };
	return (q_watch){ LD(&c->head), LD(&c->popped), LD(&c->entered) ^ (uint64_t)LD(&c->closed) << 63 };
}

static bool watch_moved(const sk_queue *q, int who, q_watch w)
{
	q_watch n = watch_now(q, who);
	return n.a != w.a || n.b != w.b || n.x != w.x;
}

#define SPIN_MIN_NS 500
#define SPIN_MAX_NS 16000

/* Watches the state for a change from w for at most q->spin_ns from start
 * (monotonic ns, the caller's clock reading), adapting
 * that bound: doubled (up to 16 us) when the change came, halved (down to
 * 0.5 us) when it did not (side_wait also lengthens it after a sleep that a
 * longer spin would have saved). A spinner costs the other processes nothing: it
 * reads the position it waits for (tail, or head) each time and the other
 * fields, whose lines its peers on the same side write on every call, only
 * every 8th time (one pause each: about 40 ns here). */
static bool spin_for(sk_queue *q, int who, q_watch w, int64_t start)
{
	int64_t bound = __atomic_load_n(&q->spin_ns, __ATOMIC_RELAXED);
	int64_t end = start + bound;
	const uint64_t *pos = who == W_CONSUMER ? &q->c->tail : &q->c->head;
	for (;;) {
		bool moved = false;
		for (int i = 0; i < 8 && !moved; i++) {
			sk__cpu_relax();
			moved = LD(pos) != w.a;
		}
		if (moved || watch_moved(q, who, w)) {
			if (bound < SPIN_MAX_NS)
				__atomic_store_n(&q->spin_ns, bound * 2, __ATOMIC_RELAXED);
			return true;
		}
		if (sk__sys_monotonic_ns() >= end)
			break;
	}
	if (bound > SPIN_MIN_NS)
		__atomic_store_n(&q->spin_ns, bound / 2, __ATOMIC_RELAXED);
	return false;
}

/* A waiter that slept a slice behind claims without a change: settles the
 * claims of dead owners on both sides (repairs, then a recount) and wakes
 * everyone, as what it settled may let others go on. Holds no lock before
 * and after. */
COLD void settle(sk_queue *q, int64_t deadline)
{
	if (lock_both(q, deadline))
		return;
	int rc = repair_p(q);
	if (!rc)
		rc = repair_c(q);
	if (!rc)
		recount(q);
	unlock_both(q);
	wake_all(q);
}

/* Registers the caller as a sleeper, holding the lock of the side that
 * changes what it waits for (consumers: the producers'; producers: the
 * consumers'), unless the state moved from w meanwhile. Whoever changes that
 * state next holds the same lock, so it sees the sleeper (and wakes it) or
 * the sleeper sees the change: no wake-up is lost, and the paths that
 * change it need no fence. Returns 1 with *v the sequence value to sleep on,
 * 0 when the state moved (the caller looks again), or an error (that lock
 * could not be had by the deadline, or is this thread's). */
COLD int enlist(sk_queue *q, int who, q_watch w, int64_t deadline, uint32_t *v)
{
	uint32_t *seq = who == W_CONSUMER ? &q->c->not_empty : &q->c->not_full;
	uint64_t *sl = who == W_CONSUMER ? &q->c->sleep_cons : &q->c->sleep_prod;
	int side = who == W_CONSUMER ? PSIDE : CSIDE;
	int rc = lock_side(q, side, deadline, false);
	if (rc)
		return rc;
	ADD(sl, UINT64_C(1) << 32);
	*v = LD(seq);
	int ok = 1;
	if (watch_moved(q, who, w)) {
		sleeper_done(sl);
		ok = 0;
	}
	unlock_side(q, side);
	return ok;
}

/* Waits for the state to move from w with the side's lock released (after
 * waking who `what` says: changes its caller stored), then takes the lock
 * again and reloads the side into *state. A waiter spins first, uncounted;
 * only when that was in vain does it register as a sleeper (looking once
 * more) and sleep. When the wait ends without a change while claims are out
 * (behind), settles the claims of dead owners. A waiter that was woken but
 * cannot go on (its deadline passed) hands the wake-up on. Returns 0 with
 * the lock held, or an error with it released. */
COLD int side_wait(sk_queue *q, int side, int64_t timeout_ns, int64_t deadline, q_watch w, bool behind, void *state,
		   int what)
{
	unlock_wake(q, side, what);
	if (timeout_ns == 0)
		return -EAGAIN;
	if (sk__time_left(deadline) == 0)
		return -ETIMEDOUT;
	int who = side == CSIDE ? W_CONSUMER : W_PRODUCER;
	bool quiet = false, woken = false;
	int64_t t0 = sk__sys_monotonic_ns();
	if (!spin_for(q, who, w, t0)) {
		uint32_t v = 0;
		int rc = enlist(q, who, w, deadline, &v);
		if (rc < 0)
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		if (rc == 1) {
			uint32_t *seq = who == W_CONSUMER ? &q->c->not_empty : &q->c->not_full;
			int64_t t = sk__time_left(deadline);
			if (behind && (t < 0 || t > SLICE_NS))
				t = SLICE_NS;
			int frc = t == 0 ? -ETIMEDOUT : sk__sys_futex_wait(seq, v, t);
			quiet = frc == -ETIMEDOUT;
			woken = frc == 0;
			sleeper_done(who == W_CONSUMER ? &q->c->sleep_cons : &q->c->sleep_prod);
			/* Woken soon after the spin gave up: a spin of twice that
			 * wait would have saved the sleep and the wake-up. Without
			 * this, a bound halved to 0.5 us stays there for good where
			 * the other side needs longer to answer (a 4 KiB ping-pong:
			 * every wait slept, 4 us one-way instead of 0.4). */
			int64_t waited = sk__sys_monotonic_ns() - t0;
			if (woken && waited < SPIN_MAX_NS / 2 &&
			    2 * waited > __atomic_load_n(&q->spin_ns, __ATOMIC_RELAXED))
				__atomic_store_n(&q->spin_ns, 2 * waited, __ATOMIC_RELAXED);
		}
	}
	if (quiet && behind)
		settle(q, deadline);
	int rc = side == PSIDE ? p_lock(q, deadline, state) : c_lock(q, deadline, state);
	if (rc && woken)
		wake(q, who == W_CONSUMER ? WK_CONSUMER : WK_PRODUCERS);
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

/* ---- producing ---- */

/* What a producer's room was judged on. */
typedef struct room {
	uint64_t pad;    /* bytes of pad record needed first (the record would cross the ring's end) */
	uint64_t head;   /* the head it was judged on */
	uint64_t popped; /* the taken count it was judged on */
} room;

/* Whether a record of size bytes fits at wtail now (after a pad to the
 * ring's end, when it does not fit there), by bytes and by the message
 * limit: 1, 0, or SK_ECORRUPT. The head (and taken count) this handle last
 * read is tried first; the consumers' line is read only when that says no.
 * Producers' lock held. */
COLD int fits_slow(sk_queue *q, const ps *p, uint64_t end, room *rm)
{
	bool fresh = false;
	if (end - rm->head > q->cap || rm->head > p->tail) {
		if (read_head(q, p, &rm->head))
			return SK_ECORRUPT;
		fresh = true;
		if (end - rm->head > q->cap) {
			rm->popped = ALD(&q->c->popped);
			return 0;
		}
	}
	if (q->max_messages && held(p->entered, rm->popped) >= q->max_messages) {
		rm->popped = ALD(&q->c->popped);
		HSET(q, popped_seen, rm->popped);
		if (held(p->entered, rm->popped) >= q->max_messages) {
			if (!fresh && read_head(q, p, &rm->head))
				return SK_ECORRUPT;
			return 0;
		}
	}
	return 1;
}

HOT int fits(sk_queue *q, const ps *p, uint64_t size, room *rm)
{
	uint64_t to_end = q->cap - ring_off(q, p->wtail);
	rm->pad = size > to_end ? to_end : 0;
	uint64_t end = p->wtail + rm->pad + size;
	rm->head = HGET(q, head_seen);
	rm->popped = HGET(q, popped_seen);
	if (__builtin_expect(end - rm->head <= q->cap && rm->head <= p->tail &&
				 (!q->max_messages || held(p->entered, rm->popped) < q->max_messages),
			     1))
		return 1;
	return fits_slow(q, p, end, rm);
}

/* Writes the pad fits() asked for and moves wtail (and tail, when nothing
 * unpublished precedes it) past it: *pos is where the record goes. */
HOT void place(sk_queue *q, ps *p, const room *rm, uint64_t *pos)
{
	if (rm->pad) {
		write_hdr(q, p->wtail, PAD_LEN, 0);
		if (p->tail == p->wtail)
			p->tail += rm->pad;
		p->wtail += rm->pad;
	}
	*pos = p->wtail;
}

/* The ring is empty but the next record would cross its end, and cannot fit
 * with a pad there: all four positions move to the next start of the ring
 * (over a pad, so that every state on the way is valid), under both locks.
 * Producers' lock held. 0 when moved (p updated), 1 when not (the caller
 * waits), or an error (the producers' lock released). */
COLD int restart_ring(sk_queue *q, ps *p, int64_t deadline)
{
	int rc = lock_side(q, CSIDE, deadline, true);
	if (rc == -EAGAIN || rc == -ETIMEDOUT)
		return 1;
	if (rc) {
		unlock_side(q, PSIDE);
		return rc;
	}
	cs s;
	bool moved = false;
	rc = load_c(q, &s, true);
	if (!rc && s.head == p->wtail && s.rhead == p->wtail && p->tail == p->wtail) {
		uint64_t next = p->wtail - ring_off(q, p->wtail) + q->cap;
		write_hdr(q, p->wtail, PAD_LEN, 0);
		p->wtail = p->tail = s.rhead = s.head = next;
		s.returned = 0;
		store_p(q, p);
		store_c(q, &s);
		HSET(q, head_seen, next);
		moved = true;
	}
	if (!rc && LD(&q->c->stale))
		recount(q);
	unlock_side(q, CSIDE);
	if (rc)
		unlock_side(q, PSIDE);
	return rc ? rc : moved ? 0 : 1;
}

/* Makes room for a record of `size` bytes at wtail, padding to the ring's
 * end first when needed, and waits as the timeout allows. Returns 0 with the
 * producers' lock held and *pos where the record goes (p->wtail and p->tail
 * already past any pad), or an error with the lock released. */
COLD int make_room_wait(sk_queue *q, ps *p, uint64_t size, int64_t timeout_ns, int64_t deadline, uint64_t *pos)
{
	bool restarted = false;
	for (;;) {
		uint32_t closed = LD(&q->c->closed);
		if (closed) {
			unlock_side(q, PSIDE);
			return SK_ECLOSED;
		}
		room rm;
		int rc = fits(q, p, size, &rm);
		if (rc == 1) {
			place(q, p, &rm, pos);
			return 0;
		}
		if (rc < 0) {
			unlock_side(q, PSIDE);
			return rc;
		}
		if (rm.head == p->wtail && rm.pad + size > q->cap && !restarted) {
			restarted = true; /* once: a peer rewriting positions cannot keep us here */
			rc = restart_ring(q, p, deadline);
			if (rc < 0)
				return rc;
			if (rc == 0)
				continue;
		}
		bool behind = p->wclaims || p->tail < p->wtail || rm.head < LD(&q->c->rhead) || LD(&q->c->rclaims);
		q_watch w = { rm.head, rm.popped, p->entered };
		rc = side_wait(q, PSIDE, timeout_ns, deadline, w, behind, p, 0);
		if (rc)
			return rc;
	}
}

HOT int make_room(sk_queue *q, ps *p, uint64_t size, int64_t timeout_ns, int64_t deadline, uint64_t *pos)
{
	room rm;
	if (__builtin_expect(!RLD(&q->c->closed) && fits(q, p, size, &rm) == 1, 1)) {
		place(q, p, &rm, pos);
		return 0;
	}
	return make_room_wait(q, p, size, timeout_ns, deadline, pos);
}

/* Publishes the record of len bytes at pos (payload in place, room made),
 * and stores the producers' side: the commit. */
HOT void publish_locked(sk_queue *q, ps *p, uint64_t pos, uint32_t len)
{
	write_hdr(q, pos, len, ST_READY);
	p->wtail = pos + rec_size(len);
	if (p->tail == pos)
		p->tail = p->wtail;
	p->entered++;
	RST(&q->c->pushed, RLD(&q->c->pushed) + 1); /* and one more unfinished task */
	store_p(q, p);
}

/* Out of the lock: claims room for len bytes. Returns 0 with *slot >= 0 and
 * the lock released (copy, then finish_write), 0 with *slot == -1 and the
 * lock held when no claim slot is free (copy under the lock), or an error. */
static int begin_write(sk_queue *q, ps *p, size_t len, int64_t timeout_ns, int64_t deadline, uint64_t *pos, int *slot)
{
	int rc = p_lock(q, deadline, p);
	if (!rc)
		rc = make_room(q, p, rec_size(len), timeout_ns, deadline, pos);
	if (rc)
		return rc;
	*slot = claim_take(q, PSIDE, &p->wclaims, *pos, CL_WRITE);
	if (*slot < 0) {
		store_p(q, p); /* a pad may have been written */
		return 0;
	}
	write_hdr(q, *pos, (uint32_t)len, ST_WRITING);
	p->wtail = *pos + rec_size(len);
	p->entered++;
	store_p(q, p);
	unlock_side(q, PSIDE);
	return 0;
}

/* Publishes (or, abort, gives up) the claimed record at pos: marks it READY
 * (DONE) and moves tail over every finished record. */
static int finish_write(sk_queue *q, int slot, uint64_t pos, uint32_t len, bool abort)
{
	HOOK(q, HOOK_FINISH);
	ps p;
	int rc = p_lock(q, sk__deadline(FINISH_NS), &p);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	rec r;
	if (!claim_is_mine(q, slot, pos, CL_WRITE) || pos < p.tail || read_rec(q, pos, p.wtail, &r) ||
	    r.state != ST_WRITING || r.len != len) {
		unlock_side(q, PSIDE);
		return SK_ECORRUPT;
	}
	if (!abort)
		RST(&q->c->pushed, RLD(&q->c->pushed) + 1); /* and one more unfinished task */
	else if (p.entered)
		p.entered--;
	write_hdr(q, pos, len, abort ? ST_DONE : ST_READY);
	claim_free(q, &p.wclaims, slot);
	uint64_t old_tail = p.tail;
	rc = advance_tail(q, &p);
	if (!rc)
		store_p(q, &p);
	unlock_wake(q, PSIDE, (p.tail != old_tail ? WK_CONSUMERS : 0) | (abort ? WK_PRODUCERS : 0));
	return rc;
}

int sk_queue_push(sk_queue *q, const void *msg, size_t len, int64_t timeout_ns)
{
	if (!q || (len && !msg))
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	if (len > q->max_msg)
		return -EMSGSIZE;
	int64_t deadline = q_deadline(timeout_ns);
	ps p;
	uint64_t pos;
	int rc;
	if (len >= COPY_INLINE) {
		int slot;
		rc = begin_write(q, &p, len, timeout_ns, deadline, &pos, &slot);
		if (rc)
			return rc;
		if (slot >= 0) {
			HOOK(q, HOOK_COPY_IN);
			memcpy(payload(q, pos), msg, len);
			return finish_write(q, slot, pos, (uint32_t)len, false);
		}
	} else {
		rc = p_lock(q, deadline, &p);
		if (!rc)
			rc = make_room(q, &p, rec_size(len), timeout_ns, deadline, &pos);
		if (rc)
			return rc;
	}
	if (len)
		memcpy(payload(q, pos), msg, len);
	publish_locked(q, &p, pos, (uint32_t)len);
	unlock_wake(q, PSIDE, WK_CONSUMER);
	return 0;
}

int sk_queue_push_many(sk_queue *q, const void *const *msgs, const size_t *lens, int n, int64_t timeout_ns)
{
	if (!q || !msgs || !lens || n < 1)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	for (int i = 0; i < n; i++)
		if (lens[i] > q->max_msg || (lens[i] && !msgs[i]))
			return lens[i] > q->max_msg ? -EMSGSIZE : -EINVAL;
	int64_t deadline = q_deadline(timeout_ns);
	ps p;
	uint64_t pos;
	int rc = p_lock(q, deadline, &p);
	if (!rc)
		rc = make_room(q, &p, rec_size(lens[0]), timeout_ns, deadline, &pos);
	if (rc)
		return rc;
	int done = 0;
	for (;;) {
		if (lens[done])
			memcpy(payload(q, pos), msgs[done], lens[done]);
		publish_locked(q, &p, pos, (uint32_t)lens[done]);
		if (++done == n)
			break;
		/* The next one, if it fits now (damage is reported by the next call). */
		room rm;
		if (LD(&q->c->closed) || fits(q, &p, rec_size(lens[done]), &rm) != 1)
			break;
		place(q, &p, &rm, &pos);
	}
	unlock_wake(q, PSIDE, WK_CONSUMERS);
	return done;
}

/* ---- consuming ---- */

/* The oldest message available to consumers: a record given back, else the
 * first READY one at rhead (skipping pads and DONE records, moving rhead
 * and head with it). The tail this handle last read is used first; the
 * producers' line is read only when everything below it is taken. Returns 1
 * and *pos, *r; 0 when there is none (*tail: the tail that was judged on). */
COLD int find_rec_full(sk_queue *q, cs *s, uint64_t *pos, rec *r, uint64_t *tail)
{
	int rc;
	if (s->returned) {
		for (uint64_t p = s->head; p < s->rhead; p += r->size) {
			if ((rc = read_rec(q, p, s->rhead, r)))
				return rc;
			if (r->state == ST_READY) {
				*pos = p;
				return 1;
			}
		}
		s->returned = 0; /* stale */
	}
	uint64_t t = HGET(q, tail_seen);
	if (t <= s->rhead || t - s->head > q->cap) {
		if ((rc = read_tail(q, s, &t)))
			return rc;
	}
	*tail = t;
	while (s->rhead < t) {
		if ((rc = read_rec(q, s->rhead, t, r)))
			return rc;
		if (r->state == ST_READY) {
			*pos = s->rhead;
			return 1;
		}
		if (r->state != ST_DONE)
			return SK_ECORRUPT; /* WRITING or TAKING where everything is published */
		if (s->head == s->rhead)
			s->head += r->size;
		s->rhead += r->size;
	}
	return 0;
}

HOT int find_rec(sk_queue *q, cs *s, uint64_t *pos, rec *r, uint64_t *tail)
{
	uint64_t t = HGET(q, tail_seen);
	if (__builtin_expect(!s->returned, 1)) {
		if (t <= s->rhead || t - s->head > q->cap) {
			t = ALD(&q->c->tail);
			if (t % 8 || t < s->rhead || t - s->head > q->cap)
				return SK_ECORRUPT;
			HSET(q, tail_seen, t);
		}
		if (s->rhead < t && read_rec(q, s->rhead, t, r) == 0 && r->state == ST_READY) {
			*pos = s->rhead;
			return 1;
		}
	}
	return find_rec_full(q, s, pos, r, tail);
}

/* Takes the consumers' lock and waits for the oldest message, as the timeout
 * allows. Returns 0 with the lock held, or an error with it released. */
COLD int lock_first_wait(sk_queue *q, cs *s, int64_t timeout_ns, int64_t deadline, uint64_t *pos, rec *r)
{
	for (;;) {
		uint64_t head0 = s->head, rhead0 = s->rhead, tail = 0;
		int rc = find_rec(q, s, pos, r, &tail);
		if (rc == 1)
			return 0;
		if (rc < 0) {
			unlock_side(q, CSIDE);
			return rc;
		}
		/* None. Records skipped are kept skipped (and the room they free
		 * is the producers'). */
		int what = 0;
		if (s->rhead != rhead0) {
			store_c(q, s);
			what = s->head != head0 ? WK_PRODUCERS : 0;
		}
		uint32_t closed = LD(&q->c->closed);
		uint64_t wtail = ALD(&q->c->wtail);
		uint32_t wclaims = ALD(&q->c->wclaims);
		if (closed && tail == wtail && !wclaims && !s->rclaims) {
			unlock_wake(q, CSIDE, what);
			return SK_ECLOSED;
		}
		bool behind = s->rclaims || wclaims || tail != wtail || s->head < s->rhead;
		q_watch w = { tail, s->returned, closed };
		rc = side_wait(q, CSIDE, timeout_ns, deadline, w, behind, s, what);
		if (rc)
			return rc;
	}
}

HOT int lock_first(sk_queue *q, cs *s, int64_t timeout_ns, uint64_t *pos, rec *r)
{
	int64_t deadline = q_deadline(timeout_ns);
	int rc = c_lock(q, deadline, s);
	if (rc)
		return rc;
	uint64_t tail;
	cs s0 = *s;
	if (__builtin_expect(find_rec(q, s, pos, r, &tail) == 1, 1))
		return 0;
	*s = s0; /* looked at again, with what it skipped kept */
	return lock_first_wait(q, s, timeout_ns, deadline, pos, r);
}

/* Removes the record at pos (found by find_rec, copied out or DONE-to-be)
 * from the waiting ones: rhead moves past it, or it stops counting as given
 * back. Marks it `state` unless head can move past it at once. */
HOT void leave_waiting(sk_queue *q, cs *s, uint64_t pos, const rec *r, uint32_t state)
{
	if (pos == s->rhead) {
		if (s->head == s->rhead && state == ST_DONE) {
			s->head = s->rhead = pos + r->size;
			return;
		}
		s->rhead += r->size;
	} else if (s->returned) {
		s->returned--;
	}
	write_hdr(q, pos, r->len, state);
}

/* A message taken under the lock: it leaves, the counters follow. */
HOT int took_locked(sk_queue *q, cs *s, uint64_t pos, const rec *r)
{
	leave_waiting(q, s, pos, r, ST_DONE);
	s->popped++;
	int rc = advance_head(q, s);
	if (!rc)
		store_c(q, s);
	return rc;
}

/* Releases the lock after messages were taken and wakes who waits for that:
 * producers, and one more consumer when messages are left (a consumer woken
 * for them may have taken just one). */
HOT void after_take(sk_queue *q, const cs *s)
{
	bool more = s->rhead < HGET(q, tail_seen) || s->returned;
	unlock_wake(q, CSIDE, WK_PRODUCERS | (more ? WK_MORE : 0));
}

/* Claims the record at pos for reading out of the lock. Returns the slot,
 * with the lock released, or -1 (no slot free) with the lock still held. */
static int begin_read(sk_queue *q, cs *s, uint64_t pos, const rec *r)
{
	int slot = claim_take(q, CSIDE, &s->rclaims, pos, CL_READ);
	if (slot < 0)
		return -1;
	leave_waiting(q, s, pos, r, ST_TAKING);
	store_c(q, s);
	unlock_side(q, CSIDE);
	return slot;
}

/* Ends a read claim: the message leaves (DONE) or, give_back, is handed out
 * again first. */
static int finish_read(sk_queue *q, int slot, uint64_t pos, uint32_t len, bool give_back)
{
	HOOK(q, HOOK_FINISH);
	cs s;
	int rc = c_lock(q, sk__deadline(FINISH_NS), &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	rec r;
	if (!claim_is_mine(q, slot, pos, CL_READ) || pos < s.head || read_rec(q, pos, s.rhead, &r) ||
	    r.state != ST_TAKING || r.len != len) {
		unlock_side(q, CSIDE);
		return SK_ECORRUPT;
	}
	claim_free(q, &s.rclaims, slot);
	if (give_back) {
		write_hdr(q, pos, len, ST_READY);
		s.returned++;
	} else {
		write_hdr(q, pos, len, ST_DONE);
		s.popped++;
		rc = advance_head(q, &s);
	}
	if (!rc)
		store_c(q, &s);
	unlock_wake(q, CSIDE, give_back ? WK_CONSUMER : WK_PRODUCERS);
	return rc;
}

int sk_queue_pop(sk_queue *q, void *buf, size_t bufsize, size_t *len, int64_t timeout_ns)
{
	if (!q || !len || (bufsize && !buf))
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	cs s;
	uint64_t pos;
	rec r;
	int rc = lock_first(q, &s, timeout_ns, &pos, &r);
	if (rc)
		return rc;
	*len = r.len;
	if (r.len > bufsize) {
		unlock_side(q, CSIDE);
		return -EMSGSIZE;
	}
	if (r.len >= COPY_INLINE) {
		int slot = begin_read(q, &s, pos, &r);
		if (slot >= 0) {
			HOOK(q, HOOK_COPY_OUT);
			memcpy(buf, payload(q, pos), r.len);
			return finish_read(q, slot, pos, r.len, false);
		}
	}
	if (r.len)
		memcpy(buf, payload(q, pos), r.len);
	rc = took_locked(q, &s, pos, &r);
	after_take(q, &s);
	return rc;
}

int sk_queue_pop_many(sk_queue *q, void *buf, size_t bufsize, size_t *lens, int max, int64_t timeout_ns)
{
	if (!q || !lens || max < 1 || (bufsize && !buf))
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	cs s;
	uint64_t pos, tail;
	rec r;
	int rc = lock_first(q, &s, timeout_ns, &pos, &r);
	if (rc)
		return rc;
	if (r.len > bufsize) {
		lens[0] = r.len;
		unlock_side(q, CSIDE);
		return -EMSGSIZE;
	}
	size_t used = 0;
	int n = 0;
	for (;;) {
		if (r.len)
			memcpy((uint8_t *)buf + used, payload(q, pos), r.len);
		used += r.len;
		lens[n++] = r.len;
		if (took_locked(q, &s, pos, &r) || n == max)
			break; /* damage is reported by the next call */
		if (find_rec(q, &s, &pos, &r, &tail) != 1 || r.len > bufsize - used)
			break; /* none left, damage, or a message too big for the rest: it waits */
	}
	after_take(q, &s);
	return n;
}

/* ---- zero copy ---- */

int sk_queue_reserve(sk_queue *q, size_t len, void **ptr, int64_t timeout_ns)
{
	if (!q || !ptr)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	if (len > q->max_msg)
		return -EMSGSIZE;
	int64_t deadline = q_deadline(timeout_ns);
	ps p;
	uint64_t pos;
	int slot;
	int rc = begin_write(q, &p, len, timeout_ns, deadline, &pos, &slot);
	if (rc)
		return rc;
	q->hold = H_RESERVED;
	q->hold_locked = slot < 0;
	q->hold_slot = slot;
	q->hold_pos = pos;
	q->hold_len = (uint32_t)len;
	q->hold_p = p;
	*ptr = payload(q, pos);
	return 0;
}

static int end_reserve(sk_queue *q, bool abort)
{
	if (!q || q->hold != H_RESERVED)
		return -EINVAL;
	q->hold = H_IDLE;
	if (!q->hold_locked)
		return finish_write(q, q->hold_slot, q->hold_pos, q->hold_len, abort);
	if (!abort)
		publish_locked(q, &q->hold_p, q->hold_pos, q->hold_len);
	unlock_wake(q, PSIDE, abort ? 0 : WK_CONSUMER);
	return 0;
}

int sk_queue_commit(sk_queue *q)
{
	return end_reserve(q, false);
}

int sk_queue_abort(sk_queue *q)
{
	return end_reserve(q, true);
}

int sk_queue_peek(sk_queue *q, const void **ptr, size_t *len, int64_t timeout_ns)
{
	if (!q || !ptr || !len)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	cs s;
	uint64_t pos;
	rec r;
	int rc = lock_first(q, &s, timeout_ns, &pos, &r);
	if (rc)
		return rc;
	int slot = begin_read(q, &s, pos, &r);
	q->hold = H_PEEKED;
	q->hold_locked = slot < 0;
	q->hold_slot = slot;
	q->hold_pos = pos;
	q->hold_size = r.size;
	q->hold_len = r.len;
	q->hold_c = s;
	*ptr = payload(q, pos);
	*len = r.len;
	return 0;
}

static int end_peek(sk_queue *q, bool give_back)
{
	if (!q || q->hold != H_PEEKED)
		return -EINVAL;
	q->hold = H_IDLE;
	if (!q->hold_locked)
		return finish_read(q, q->hold_slot, q->hold_pos, q->hold_len, give_back);
	int rc = 0;
	if (!give_back) {
		rec r = { q->hold_len, ST_READY, q->hold_size };
		rc = took_locked(q, &q->hold_c, q->hold_pos, &r);
	}
	unlock_wake(q, CSIDE, give_back ? 0 : WK_PRODUCERS);
	return rc;
}

int sk_queue_release(sk_queue *q)
{
	return end_peek(q, false);
}

int sk_queue_unpeek(sk_queue *q)
{
	return end_peek(q, true);
}

/* ---- tasks ---- */

int sk_queue_task_done(sk_queue *q)
{
	if (!q)
		return -EINVAL;
	queue_ctl *c = q->c;
	uint64_t d = LD(&c->tasks_done);
	do {
		if (d >= LD(&c->pushed))
			return -EINVAL; /* more task_done calls than messages */
	} while (!CAS(&c->tasks_done, &d, d + 1));
	if (d + 1 == LD(&c->pushed)) { /* none unfinished now (unless one was published meanwhile) */
		ADD(&c->tasks, 1);
		if (LD(&c->wait_join))
			sk__sys_futex_wake(&c->tasks, SK__WAKE_ALL);
	}
	return 0;
}

int sk_queue_join(sk_queue *q, int64_t timeout_ns)
{
	if (!q)
		return -EINVAL;
	queue_ctl *c = q->c;
	int64_t deadline = sk__deadline(timeout_ns);
	for (;;) {
		uint32_t v = LD(&c->tasks);
		if (LD(&c->tasks_done) >= LD(&c->pushed))
			return 0;
		int64_t left = sk__time_left(deadline);
		if (left == 0)
			return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
		ADD(&c->wait_join, 1);
		sk__sys_futex_wait(&c->tasks, v, left);
		SUB(&c->wait_join, 1);
	}
}

/* ---- the rest ---- */

static int shutdown_until(sk_queue *q, int64_t deadline)
{
	if (!q)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	ps p;
	int rc = p_lock(q, deadline, &p);
	if (rc)
		return rc;
	ST(&q->c->closed, 1);
	ADD(&q->c->not_empty, 1);
	ADD(&q->c->not_full, 1);
	unlock_side(q, PSIDE);
	sk__sys_futex_wake(&q->c->not_empty, SK__WAKE_ALL);
	sk__sys_futex_wake(&q->c->not_full, SK__WAKE_ALL);
	return 0;
}

int sk_queue_shutdown(sk_queue *q)
{
	int rc = shutdown_until(q, sk__deadline(FINISH_NS));
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

int sk_queue_shutdown_timed(sk_queue *q, int64_t timeout_ns)
{
	int rc = shutdown_until(q, sk__deadline(timeout_ns));
	return rc == -EAGAIN && timeout_ns != 0 ? -ETIMEDOUT : rc;
}

static uint64_t clamp_u32(uint32_t v, uint32_t max)
{
	return v > max ? max : v;
}

/* Each field read once; nothing here is used to address memory. */
static void fill_stats(const queue_ctl *c, uint64_t cap, sk_queue_stats *st)
{
	memset(st, 0, sizeof *st);
	st->capacity = cap;
	st->max_msg = LD(&c->max_msg);
	st->max_messages = LD(&c->max_messages);
	uint64_t head = LD(&c->head), wtail = LD(&c->wtail);
	st->used = wtail >= head ? wtail - head : 0;
	if (st->used > cap)
		st->used = cap;
	st->pushed = LD(&c->pushed);
	st->popped = LD(&c->popped);
	st->messages = held(LD(&c->entered), st->popped);
	uint64_t done = LD(&c->tasks_done);
	st->unfinished = st->pushed > done ? st->pushed - done : 0;
	st->closed = LD(&c->closed) != 0;
	st->waiting_producers = (int)clamp_u32((uint32_t)(LD(&c->sleep_prod) >> 32), 1u << 30);
	st->waiting_consumers = (int)clamp_u32((uint32_t)(LD(&c->sleep_cons) >> 32), 1u << 30);
	st->in_flight = (int)(clamp_u32(LD(&c->wclaims), SIDE_CLAIMS) + clamp_u32(LD(&c->rclaims), SIDE_CLAIMS));
	st->recoveries = LD(&c->recoveries);
}

/* Both locks by deadline, both sides loaded and checked against each other.
 * -EAGAIN when the deadline had passed before the locks were tried. */
static int lock_whole(sk_queue *q, int64_t deadline, ps *p, cs *s)
{
	int rc = lock_both(q, deadline);
	if (rc)
		return rc;
	rc = load_p(q, p, true);
	if (!rc)
		rc = load_c(q, s, true);
	if (!rc && (s->rhead > p->tail || p->wtail - s->head > q->cap))
		rc = SK_ECORRUPT;
	if (rc)
		unlock_both(q);
	return rc;
}

int sk_queue_stats_get(sk_queue *q, sk_queue_stats *st)
{
	if (!q || !st)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	ps p;
	cs s;
	int rc = lock_whole(q, sk__deadline(FINISH_NS), &p, &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	fill_stats(q->c, q->cap, st);
	/* Under the locks the positions were validated: report those. */
	st->used = p.wtail - s.head;
	st->messages = held(p.entered, s.popped);
	st->popped = s.popped;
	st->in_flight = (int)(p.wclaims + s.rclaims);
	unlock_both(q);
	return 0;
}

int sk_queue_stats_peek(const sk_segment *seg, sk_queue_stats *st)
{
	if (!seg || !st || seg->hdr.kind != SK_KIND_QUEUE)
		return -EINVAL;
	const queue_ctl *c = sk_segment_data(seg);
	if (LD(&c->magic) != QUEUE_MAGIC || LD(&c->version) != QUEUE_VERSION)
		return SK_ECORRUPT;
	fill_stats(c, seg->hdr.nitems, st);
	return 0;
}

typedef struct q_init {
	uint64_t capacity, max_msg, max_messages;
} q_init;

static int init_queue(uint8_t *base, const void *arg)
{
	const q_init *qi = arg;
	queue_ctl *c = (queue_ctl *)(base + SK__HEADER_SIZE);
	memset(c, 0, sizeof *c);
	c->version = QUEUE_VERSION;
	c->capacity = qi->capacity;
	c->max_msg = qi->max_msg;
	c->max_messages = qi->max_messages;
	int rc = sk_mutex_init(&c->pm);
	if (!rc)
		rc = sk_mutex_init(&c->cm);
	if (!rc)
		ST(&c->magic, QUEUE_MAGIC);
	return rc;
}

/* The identity, read once and checked; the handle keeps what it uses. */
static int check_identity(const queue_ctl *c, uint64_t cap, uint64_t *max_msg, uint64_t *max_messages)
{
	uint32_t magic = LD(&c->magic);
	uint16_t version = LD(&c->version);
	uint64_t capacity = LD(&c->capacity), mm = LD(&c->max_msg);
	*max_messages = LD(&c->max_messages);
	if (magic != QUEUE_MAGIC)
		return SK_ECORRUPT;
	if (version != QUEUE_VERSION)
		return SK_EVERSION;
	if (capacity != cap || cap % 8 || cap < 16 || mm >= PAD_LEN || mm + 8 > cap)
		return SK_ECORRUPT;
	*max_msg = mm;
	return 0;
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
	q->spin_ns = 4000;
	q->hold_slot = -1;
	int rc = check_identity(q->c, q->cap, &q->max_msg, &q->max_messages);
	if (rc) {
		free(q);
		return rc;
	}
	*out = q;
	return 0;
}

/* A queue's header: no dtype, no shape, a ring of nitems bytes (at least
 * 16, a multiple of 8) after the control block. */
static int check_fields(const sk__header *h)
{
	if (h->dtype || !sk__header_no_shape(h) || h->nitems < 16 || h->nitems % 8 ||
	    h->data_size != SK__QUEUE_CTL + h->nitems)
		return SK_ECORRUPT;
	return 0;
}

const sk__kind sk__kind_queue = { .id = SK_KIND_QUEUE, .name = "queue", .check = check_fields };

int sk_queue_create_with(const char *name, const sk_queue_config *cfg, const sk_create_opts *opts, sk_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		return -EINVAL;
	uint64_t capacity = cfg->capacity, max_msg = cfg->max_msg;
	for (size_t i = 0; i < sizeof cfg->resv / sizeof cfg->resv[0]; i++)
		if (cfg->resv[i])
			return -EINVAL;
	if (capacity > (UINT64_C(1) << 40))
		return -EINVAL;
	capacity = sk__round_up(capacity, 8);
	if (capacity < 16 || max_msg >= PAD_LEN || max_msg + 8 > capacity ||
	    (opts && (opts->flags & ~SK__CREATE_COMMON)))
		return -EINVAL;
	q_init qi = { capacity, max_msg, cfg->max_messages };
	sk__seg_desc d = { .kind = &sk__kind_queue,
			   .nitems = capacity,
			   .data_size = SK__QUEUE_CTL + capacity,
			   .init = init_queue,
			   .init_arg = &qi };
	return sk__segment_create_wrapped(name, &d, opts, wrap, out);
}

int sk_queue_create(const char *name, uint64_t capacity, uint64_t max_msg, const sk_create_opts *opts, sk_queue **out)
{
	sk_queue_config cfg = { .capacity = capacity, .max_msg = max_msg };
	return sk_queue_create_with(name, &cfg, opts, out);
}

/* Opens name with flags, waiting for the queue's lock (to validate and
 * repair its state) until deadline; returns q_lock's code when that fails. */
static int open_queue(const char *name, int flags, int64_t deadline, sk_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, flags, &sk__kind_queue, &seg);
	if (rc)
		return rc;
	sk_queue *q = NULL;
	rc = wrap(seg, &q);
	if (!rc) {
		/* The state, validated under the locks (repaired if a holder died). */
		ps p;
		cs s;
		rc = lock_whole(q, deadline, &p, &s);
		if (!rc)
			unlock_both(q);
		else
			free(q);
	}
	if (rc) {
		sk_segment_close(seg);
		return rc;
	}
	*out = q;
	return 0;
}

int sk_queue_open(const char *name, sk_queue **out)
{
	int rc = open_queue(name, SK_RDWR, sk__deadline(FINISH_NS), out);
	return rc == -EAGAIN ? -ETIMEDOUT : rc;
}

int sk_queue_open_with(const char *name, int flags, int64_t timeout_ns, sk_queue **out)
{
	if (out)
		*out = NULL;
	if (flags & ~SK_OPEN_ANY_OWNER)
		return -EINVAL; /* every user of a queue writes it: no SK_RDONLY */
	int rc = open_queue(name, SK_RDWR | flags, sk__deadline(timeout_ns), out);
	return rc == -EAGAIN && timeout_ns != 0 ? -ETIMEDOUT : rc;
}

sk_segment *sk_queue_segment(const sk_queue *q)
{
	return q ? q->seg : NULL;
}

int sk_queue_close(sk_queue *q)
{
	if (!q)
		return 0;
	if (q->hold == H_RESERVED)
		sk_queue_abort(q);
	else if (q->hold == H_PEEKED)
		sk_queue_unpeek(q);
	sk_segment_close(q->seg);
	free(q);
	return 0;
}

const char *sk_queue_name(const sk_queue *q)
{
	return sk_segment_name(q->seg);
}
