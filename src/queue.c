/*
 * queue.c: a bounded multi-producer multi-consumer queue of variable-size
 * messages in one segment.
 *
 * Memory layout (at the segment's data offset; docs/queue.md has it byte by
 * byte): a 4096-byte control block (identity, the producers' positions, the
 * consumers' positions, counters, futex words, an sk_mutex at 256, a table
 * of 32 claims at 1024), then the ring of `capacity` bytes. A record is an
 * 8-byte header {u32 length, u32 check} and the payload padded to 8 bytes;
 * it never wraps: a pad record (length 0xffffffff) fills the end of the ring
 * when the next record does not fit there. The check word is the length
 * xor'ed with one of four constants, which is the record's state: WRITING
 * (a producer is copying it in), READY, TAKING (a consumer is copying it
 * out) or DONE (taken, or given up by its producer; skipped by everyone).
 *
 * Positions only grow; a position's place in the ring is pos % capacity.
 *   head <= rhead <= tail <= wtail,  wtail - head <= capacity
 *   [head, rhead)  taken or being taken (DONE, TAKING; READY = given back)
 *   [rhead, tail)  published and waiting (READY; DONE and pads skipped)
 *   [tail, wtail)  reserved by producers; the record at tail is WRITING
 *
 * Protocol. Every change of the control block or of a record header is made
 * holding the robust mutex. Messages below COPY_INLINE bytes (and the
 * batch calls) are copied under the lock: the record is written READY past
 * wtail, then wtail (and tail, when nothing unpublished precedes it) moves:
 * that store is the commit. Larger messages, and the zero-copy calls, copy
 * outside the lock: under it a producer writes the header WRITING, records
 * a claim {position, pid, start time} and moves wtail; it copies without
 * the lock; under it again it marks the record READY and moves tail over
 * every finished record (so messages are published in order). A consumer
 * likewise marks the oldest READY record TAKING, claims it and moves rhead;
 * copies without the lock; then marks it DONE and moves head over DONE
 * records. Producers and consumers so copy at the same time, and several
 * producers (consumers) copy at once.
 *
 * Crashes. A process that dies holding the lock leaves the next locker
 * SK_EOWNERDEAD; it re-derives everything from the records (repair): the
 * message count, claims whose record does not match, records WRITING or
 * TAKING that no claim covers. A claim whose owner died (pidfd, start time)
 * is settled by whoever waits behind it (waiters sleep in 2 ms slices while
 * claims are out) or by the next repair: a producer's record becomes DONE
 * (its own unpublished message is lost, no one saw any of it), a consumer's
 * becomes READY again and is handed out before those at rhead. So no one
 * ever sees a partial message and no message published is lost. The
 * unfinished-task count (published minus marked done) grows under the lock
 * just before a publication's commit store (a death between the two leaves
 * it one too high).
 *
 * Trust. A peer can write any byte of the segment at any time, locked or
 * not. So every value read from shared memory is read once into a local,
 * validated, and only the local is used: positions (against each other,
 * the capacity and 8-byte alignment), each record header (check word,
 * length against max_msg, end within the ring and the region it lies in),
 * each claim (against its record). Copies and the pointers handed out are
 * computed from validated locals only, so a hostile peer yields SK_ECORRUPT
 * or wrong data, never an access outside the ring. Loops over records are
 * bounded by the capacity. The capacity, max_msg and max_messages this
 * process uses were read and validated once, at create or open.
 *
 * Waiting. A waiter releases the lock and spins for a short adaptive time
 * (0.5 to 16 us per handle) on the state line (tail, or the taken count),
 * uncounted, so that spinning costs the other side nothing. Only then does
 * it take the lock, look once more, register as a sleeper and FUTEX_WAIT on
 * a sequence word. A waker decides under the lock whether a sleeper not
 * woken yet exists (sleepers and woken ones are one 64-bit word), bumps the
 * word and wakes after unlocking; registration and decision both under the
 * lock means no lost wake-up and no fence. Consumers are woken one per
 * message (a consumer that leaves messages behind wakes one more), producers
 * all at once. The lock itself is tried for 2 us before the mutex sleeps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define QUEUE_MAGIC   0x55514b53u /* "SKQU" */
#define QUEUE_VERSION 2u
#define PAD_LEN       0xffffffffu
#define NCLAIMS       32
#define SLICE_NS      2000000              /* a waiter behind a claim checks its owner this often */
#define FINISH_NS     INT64_C(10000000000) /* bound on the lock wait of commit/release */
#define LOCK_SPIN_NS  2000                 /* the lock is tried this long before sleeping in the mutex */
#define COPY_INLINE   16384                /* smaller messages are copied under the lock */

/* Record states, xor'ed with the length into the check word. */
#define ST_READY   0x9e3779b9u
#define ST_WRITING 0x5bd1e995u
#define ST_TAKING  0x1b873593u
#define ST_DONE    0xcc9e2d51u

/* Under the lock: relaxed (the mutex orders them). Waiting: sequentially consistent. */
#define RLD(p)       __atomic_load_n((p), __ATOMIC_RELAXED)
#define RST(p, v)    __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define LD(p)        __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define ST(p, v)     __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v)    __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define SUB(p, v)    __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define CAS(p, e, d) __atomic_compare_exchange_n((p), (e), (d), false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)

enum { CL_FREE = 0, CL_WRITE = 1, CL_READ = 2 };

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
	uint8_t resv0[32];
	/* 64: the state every operation reads and writes, one cache line */
	uint64_t head, rhead, tail, wtail;
	uint64_t count;    /* messages held: being written, waiting, being read */
	uint64_t pushed;   /* messages published since creation */
	uint64_t popped;   /* messages taken since creation */
	uint32_t nclaims;  /* claims in use */
	uint32_t returned; /* READY records below rhead (given back) */
	/* 128: waiting, read by every operation, written by sleepers and wakers */
	uint32_t closed;
	uint32_t not_empty; /* futex: bumped to wake consumers, and at shutdown */
	uint32_t not_full;  /* futex: bumped to wake producers, and at shutdown */
	uint32_t pad0;
	uint64_t sleep_cons; /* consumers asleep (or about to sleep) << 32 | of them woken, not running yet */
	uint64_t sleep_prod; /* the same for producers */
	uint64_t recoveries; /* times a holder died and the next locker repaired */
	uint8_t resv1[24];
	/* 192: tasks */
	uint64_t tasks_done; /* task_done calls; unfinished tasks = pushed - tasks_done */
	uint32_t tasks;      /* futex: bumped when tasks_done reaches pushed */
	uint32_t wait_join;  /* joiners asleep on tasks */
	uint8_t resv2[48];
	/* 256 */
	sk_mutex m;
	uint8_t resv4[640];
	/* 1024 */
	q_claim claims[NCLAIMS];
	uint8_t resv5[2048];
} queue_ctl;
static_assert(sizeof(queue_ctl) == SK__QUEUE_CTL, "queue control block");
static_assert(offsetof(queue_ctl, head) == 64 && offsetof(queue_ctl, returned) == 124, "queue state line");
static_assert(offsetof(queue_ctl, closed) == 128 && offsetof(queue_ctl, tasks_done) == 192, "queue waiting and tasks");
static_assert(offsetof(queue_ctl, m) == 256, "queue mutex");
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

/* The positions and counts, read once under the lock and validated. */
typedef struct qs {
	uint64_t head, rhead, tail, wtail, count;
	uint32_t nclaims, returned;
} qs;

/* What a handle holds between reserve and commit or peek and release. */
enum { H_IDLE, H_RESERVED, H_PEEKED };

struct sk_queue {
	sk_segment *seg;
	queue_ctl *c;
	uint8_t *ring;
	uint64_t cap, max_msg, max_messages; /* validated once */
	int64_t spin_ns;                     /* adaptive spin before sleeping */
	int hold;                            /* H_* */
	bool hold_locked;                    /* no claim slot was free: the lock is held */
	int hold_slot;
	uint64_t hold_pos, hold_size;
	uint32_t hold_len;
	qs hold_s; /* hold_locked: the state to write back */
};

/* Test hook: called at points between validation and use, so that tests can
 * play a peer that rewrites shared memory right there. NULL in normal use. */
void (*sk__queue_hook)(sk_queue *q, int point);
enum { HOOK_LOCKED = 1, HOOK_COPY_IN = 2, HOOK_COPY_OUT = 3, HOOK_FINISH = 4, HOOK_STORE = 5 };
#define HOOK(q, p)                            \
	do {                                  \
		if (sk__queue_hook)           \
			sk__queue_hook(q, p); \
	} while (0)

static inline uint64_t rec_size(uint64_t len)
{
	return 8 + sk__round_up(len, 8);
}

/* ---- reading and writing shared state (lock held) ---- */

/* Reads the positions and counts once and validates them; with
 * counts_too false (repair, which recounts), the positions only. */
static int load_state(const sk_queue *q, qs *s, bool counts_too)
{
	const queue_ctl *c = q->c;
	s->head = RLD(&c->head);
	s->rhead = RLD(&c->rhead);
	s->tail = RLD(&c->tail);
	s->wtail = RLD(&c->wtail);
	s->count = RLD(&c->count);
	s->nclaims = RLD(&c->nclaims);
	s->returned = RLD(&c->returned);
	if ((s->head | s->rhead | s->tail | s->wtail) % 8 || s->head > s->rhead || s->rhead > s->tail ||
	    s->tail > s->wtail || s->wtail - s->head > q->cap)
		return SK_ECORRUPT;
	if (counts_too && (s->count > (s->wtail - s->head) / 8 || s->nclaims > NCLAIMS || s->returned > s->count))
		return SK_ECORRUPT;
	return 0;
}

/* Positions only grow, and are stored largest first, so that a process
 * killed between two of these stores leaves positions that still satisfy
 * head <= rhead <= tail <= wtail and wtail - head <= capacity (each store
 * moves a position at most up to the next larger one's new value); the
 * counts a death leaves stale are recounted by the repair. */
static void store_state(sk_queue *q, const qs *s)
{
	queue_ctl *c = q->c;
	RST(&c->wtail, s->wtail);
	RST(&c->tail, s->tail); /* the commit point for consumers (published by the unlock) */
	RST(&c->rhead, s->rhead);
	HOOK(q, HOOK_STORE);
	RST(&c->head, s->head);
	RST(&c->count, s->count);
	RST(&c->nclaims, s->nclaims);
	RST(&c->returned, s->returned);
}

/* The record at pos, which must lie below limit; its header is read once. */
static int read_rec(const sk_queue *q, uint64_t pos, uint64_t limit, rec *r)
{
	if (pos % 8 || pos >= limit || limit - pos < 8)
		return SK_ECORRUPT;
	uint64_t off = pos % q->cap;
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

static void write_hdr(sk_queue *q, uint64_t pos, uint32_t len, uint32_t state)
{
	rec_hdr h = { len, len == PAD_LEN ? PAD_LEN ^ ST_READY : len ^ state };
	memcpy(q->ring + pos % q->cap, &h, sizeof h);
}

static inline uint8_t *payload(const sk_queue *q, uint64_t pos)
{
	return q->ring + pos % q->cap + 8;
}

/* Moves tail over finished records (READY, DONE, pads) up to the first one
 * still being written. */
static int advance_tail(sk_queue *q, qs *s)
{
	while (s->tail < s->wtail) {
		rec r;
		int rc = read_rec(q, s->tail, s->wtail, &r);
		if (rc)
			return rc;
		if (r.state == ST_WRITING)
			break;
		s->tail += r.size;
	}
	return 0;
}

/* Moves head over DONE records and pads below rhead. */
static int advance_head(sk_queue *q, qs *s)
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

/* ---- claims ---- */

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

/* A free claim slot taken for the record at pos, or -1 when all are in use. */
static int claim_take(sk_queue *q, qs *s, uint64_t pos, uint32_t kind)
{
	if (s->nclaims >= NCLAIMS)
		return -1;
	for (int i = 0; i < NCLAIMS; i++) {
		q_claim *cl = &q->c->claims[i];
		if (LD(&cl->kind) != CL_FREE)
			continue;
		pid_t pid;
		uint64_t start;
		sk__sys_self(&pid, &start);
		ST(&cl->pos, pos);
		ST(&cl->pid, (int32_t)pid);
		ST(&cl->start, start);
		ST(&cl->kind, kind);
		s->nclaims++;
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

static void claim_free(sk_queue *q, qs *s, int i)
{
	ST(&q->c->claims[i].kind, CL_FREE);
	if (s->nclaims)
		s->nclaims--;
}

/* Re-derives the state from the records: settles claims whose owner died or
 * that do not match their record, records WRITING or TAKING that no claim
 * covers, the message count. Used after a holder died (the lock said so)
 * and by waiters that find themselves behind a claim. Lock held. */
static int repair(sk_queue *q, qs *s)
{
	int rc = load_state(q, s, false);
	if (rc)
		return rc;
	uint64_t mine[NCLAIMS];
	uint32_t n = 0;
	for (int i = 0; i < NCLAIMS; i++) {
		q_claim *cl = &q->c->claims[i];
		uint32_t kind = LD(&cl->kind);
		if (kind == CL_FREE)
			continue;
		uint64_t pos = LD(&cl->pos), start = LD(&cl->start);
		pid_t pid = LD(&cl->pid);
		rec r;
		bool ok = (kind == CL_WRITE && pos >= s->tail) || (kind == CL_READ && pos >= s->head && pos < s->rhead);
		ok =
		    ok && read_rec(q, pos, s->wtail, &r) == 0 && r.state == (kind == CL_WRITE ? ST_WRITING : ST_TAKING);
		if (ok && owner_alive(pid, start)) {
			mine[n++] = pos;
			continue;
		}
		/* A dead owner's or a stray claim: its record, if any, is settled
		 * by the walk below as one that no claim covers. */
		ST(&cl->kind, CL_FREE);
	}
	uint64_t count = 0;
	uint32_t returned = 0;
	for (uint64_t pos = s->head; pos < s->wtail;) {
		rec r;
		rc = read_rec(q, pos, s->wtail, &r);
		if (rc)
			return rc;
		bool claimed = false;
		for (uint32_t k = 0; k < n; k++)
			claimed = claimed || mine[k] == pos;
		if (r.state == ST_WRITING) {
			if (pos < s->tail)
				return SK_ECORRUPT;
			if (!claimed)
				write_hdr(q, pos, r.len, r.state = ST_DONE); /* its producer died: never published */
		} else if (r.state == ST_TAKING) {
			if (pos >= s->rhead)
				return SK_ECORRUPT;
			if (!claimed)
				write_hdr(q, pos, r.len, r.state = ST_READY); /* its consumer died: hand it out again */
		}
		if (r.state != ST_DONE)
			count++;
		if (r.state == ST_READY && pos < s->rhead)
			returned++;
		pos += r.size;
	}
	s->count = count;
	s->returned = returned;
	s->nclaims = n;
	rc = advance_tail(q, s);
	if (!rc)
		rc = advance_head(q, s);
	if (!rc)
		store_state(q, s);
	return rc;
}

/* ---- the lock ---- */

/* Takes the queue's lock (trying for a moment before sleeping in the mutex),
 * repairs after a dead holder, and loads and validates the state. Returns 0
 * with the lock held, or an error with it released (-EAGAIN when the
 * deadline had passed before the lock was tried, -ETIMEDOUT when it passed
 * while waiting for it). */
static int q_lock(sk_queue *q, int64_t deadline, qs *s)
{
	int rc = sk_mutex_trylock(&q->c->m);
	if (rc == -EBUSY) {
		int64_t end = sk__sys_monotonic_ns() + LOCK_SPIN_NS;
		do {
			for (int k = 0; k < 8; k++)
				sk__cpu_relax();
			rc = sk_mutex_trylock(&q->c->m);
		} while (rc == -EBUSY && sk__sys_monotonic_ns() < end);
	}
	if (rc == -EBUSY) {
		int64_t left = sk__time_left(deadline);
		rc = left == 0 ? -EAGAIN : sk_mutex_lock(&q->c->m, left);
	}
	if (rc == SK_EOWNERDEAD) {
		rc = repair(q, s);
		if (!rc)
			ADD(&q->c->recoveries, 1);
		int crc = sk_mutex_consistent(&q->c->m);
		if (rc || crc) {
			sk_mutex_unlock(&q->c->m);
			return rc ? rc : crc;
		}
		return 0;
	}
	if (rc)
		return rc;
	rc = load_state(q, s, true);
	if (rc) {
		sk_mutex_unlock(&q->c->m);
		return rc;
	}
	HOOK(q, HOOK_LOCKED);
	return 0;
}

static void q_unlock(sk_queue *q)
{
	sk_mutex_unlock(&q->c->m);
}

/* Decides, holding the lock, whether to wake one sleeper (all, with all) of
 * a sequence word: only if some sleeper was not woken yet. *sl holds two
 * counts, changed together: sleepers << 32 | woken. Sleepers register
 * holding the lock (q_wait), so the mutex orders registration and the state
 * change that follows, and no fence is needed; wakers count the sleepers
 * they woke until these run, so a producer pushing into a queue whose
 * consumer was woken but has not run yet pays no system call. woken <=
 * sleepers always holds; a sleeper killed leaves both one too high, which
 * cancels out. Returns whether to call FUTEX_WAKE (after unlocking). */
static bool wake_prepare(uint32_t *seq, uint64_t *sl, bool all)
{
	uint64_t x = RLD(sl);
	for (;;) {
		uint32_t n = (uint32_t)(x >> 32), w = (uint32_t)x;
		if (n <= w)
			return false;
		if (CAS(sl, &x, (uint64_t)n << 32 | (all ? n : w + 1)))
			break;
	}
	ADD(seq, 1);
	return true;
}

/* A sleeper runs again: one sleeper less, and one woken less (if this one
 * was not woken, a later waker just wakes one more than needed). No lock. */
static void sleeper_done(uint64_t *sl)
{
	uint64_t x = LD(sl);
	for (;;) {
		uint32_t n = (uint32_t)(x >> 32), w = (uint32_t)x;
		if (!n)
			return; /* spoiled by another process */
		n--;
		w = w ? w - 1 : 0;
		if (CAS(sl, &x, (uint64_t)n << 32 | (w < n ? w : n)))
			return;
	}
}

enum { WK_CONSUMER = 1, WK_CONSUMERS = 2, WK_PRODUCERS = 4 };

/* Releases the lock, waking who `what` says (WK_*) if they sleep. */
static void unlock_wake(sk_queue *q, int what)
{
	queue_ctl *c = q->c;
	bool cons =
	    (what & (WK_CONSUMER | WK_CONSUMERS)) && wake_prepare(&c->not_empty, &c->sleep_cons, what & WK_CONSUMERS);
	bool prod = (what & WK_PRODUCERS) && wake_prepare(&c->not_full, &c->sleep_prod, true);
	q_unlock(q);
	if (cons)
		sk__sys_futex_wake(&c->not_empty, what & WK_CONSUMERS ? 0x7fffffff : 1);
	if (prod)
		sk__sys_futex_wake(&c->not_full, 0x7fffffff);
}

enum { W_CONSUMER, W_PRODUCER };

/* What a waiter watches: consumers wait for tail to move or a record to be
 * given back, producers for a message to leave or the count to change (an
 * abandoned message); both for shutdown. */
typedef struct q_watch {
	uint64_t a;
	uint32_t b;
} q_watch;

static q_watch watch_now(const sk_queue *q, int who)
{
	const queue_ctl *c = q->c;
	q_watch w = { who == W_CONSUMER ? LD(&c->tail) : LD(&c->popped),
		      (who == W_CONSUMER ? LD(&c->returned) : (uint32_t)LD(&c->count)) ^ LD(&c->closed) << 31 };
	return w;
}

static bool watch_moved(const sk_queue *q, int who, q_watch w)
{
	q_watch n = watch_now(q, who);
	return n.a != w.a || n.b != w.b;
}

/* Watches the state for a change from w for at most q->spin_ns, adapting
 * that bound: doubled (up to 16 us) when the change came, halved (down to
 * 0.5 us) when it did not. A spinner costs the other processes nothing. */
static bool spin_for(sk_queue *q, int who, q_watch w)
{
	int64_t bound = __atomic_load_n(&q->spin_ns, __ATOMIC_RELAXED);
	int64_t end = sk__sys_monotonic_ns() + bound;
	for (;;) {
		for (int i = 0; i < 8; i++) {
			sk__cpu_relax();
			sk__cpu_relax();
			if (watch_moved(q, who, w)) {
				if (bound < 16000)
					__atomic_store_n(&q->spin_ns, bound * 2, __ATOMIC_RELAXED);
				return true;
			}
		}
		if (sk__sys_monotonic_ns() >= end)
			break;
	}
	if (bound > 500)
		__atomic_store_n(&q->spin_ns, bound / 2, __ATOMIC_RELAXED);
	return false;
}

/* Waits for the state to change with the lock released, then takes the lock
 * again and reloads *s. A waiter spins first, uncounted; only when that was
 * in vain does it take the lock, check the state once more and register as
 * a sleeper (see wake_prepare). When the wait ends without a change while
 * claims are out, settles the claims of dead owners (repair). Returns 0 with
 * the lock held, or an error with it released. */
static int q_wait(sk_queue *q, int who, int64_t timeout_ns, int64_t deadline, qs *s)
{
	int64_t left = sk__time_left(deadline);
	if (timeout_ns == 0 || left == 0) {
		q_unlock(q);
		return timeout_ns == 0 ? -EAGAIN : -ETIMEDOUT;
	}
	bool behind_claim = s->nclaims || s->tail < s->wtail || s->head < s->rhead;
	q_watch w = watch_now(q, who);
	q_unlock(q);
	bool quiet = false;
	int rc;
	if (!spin_for(q, who, w)) {
		rc = q_lock(q, deadline, s);
		if (rc)
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		if (watch_moved(q, who, w))
			return 0; /* changed meanwhile: the caller looks again */
		uint32_t *seq = who == W_CONSUMER ? &q->c->not_empty : &q->c->not_full;
		uint64_t *sl = who == W_CONSUMER ? &q->c->sleep_cons : &q->c->sleep_prod;
		ADD(sl, UINT64_C(1) << 32);
		uint32_t v = RLD(seq);
		q_unlock(q);
		int64_t t = sk__time_left(deadline);
		if (behind_claim && (t < 0 || t > SLICE_NS))
			t = SLICE_NS;
		quiet = t == 0 || sk__sys_futex_wait(seq, v, t) == -ETIMEDOUT;
		sleeper_done(sl);
	}
	rc = q_lock(q, deadline, s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	if (quiet && behind_claim) {
		rc = repair(q, s);
		if (rc) {
			q_unlock(q);
			return rc;
		}
		/* What the repair settled may let others go on too (rare: wake
		 * them holding the lock). */
		if (wake_prepare(&q->c->not_empty, &q->c->sleep_cons, true))
			sk__sys_futex_wake(&q->c->not_empty, 0x7fffffff);
		if (wake_prepare(&q->c->not_full, &q->c->sleep_prod, true))
			sk__sys_futex_wake(&q->c->not_full, 0x7fffffff);
	}
	return rc;
}

/* ---- producing ---- */

/* Makes room for a record of `size` bytes at wtail, padding to the ring's
 * end first when needed, and waits as the timeout allows. Returns 0 with the
 * lock held and *pos where the record goes (s->wtail and s->tail already past
 * any pad), or an error with the lock released. */
static int make_room(sk_queue *q, qs *s, uint64_t size, int64_t timeout_ns, int64_t deadline, uint64_t *pos)
{
	for (;;) {
		if (LD(&q->c->closed)) {
			q_unlock(q);
			return SK_ECLOSED;
		}
		uint64_t off = s->wtail % q->cap, to_end = q->cap - off;
		uint64_t pad = size > to_end ? to_end : 0;
		bool counted_ok = !q->max_messages || s->count < q->max_messages;
		if (counted_ok && s->wtail - s->head + pad + size <= q->cap) {
			if (pad) {
				write_hdr(q, s->wtail, PAD_LEN, 0);
				if (s->tail == s->wtail)
					s->tail += pad;
				s->wtail += pad;
			}
			*pos = s->wtail;
			return 0;
		}
		if (counted_ok && s->head == s->wtail && off) {
			/* Empty, but the record would straddle the end: start over at offset 0. */
			s->head = s->rhead = s->tail = s->wtail = s->wtail + to_end;
			store_state(q, s);
			continue;
		}
		int rc = q_wait(q, W_PRODUCER, timeout_ns, deadline, s);
		if (rc)
			return rc;
	}
}

/* Publishes the record of len bytes at pos (payload in place, room made),
 * and stores the state: the commit. */
static void publish_locked(sk_queue *q, qs *s, uint64_t pos, uint32_t len)
{
	write_hdr(q, pos, len, ST_READY);
	s->wtail = pos + rec_size(len);
	if (s->tail == pos)
		s->tail = s->wtail;
	s->count++;
	RST(&q->c->pushed, RLD(&q->c->pushed) + 1); /* and one more unfinished task */
	store_state(q, s);
}

/* Out of the lock: claims room for len bytes. Returns 0 with *slot >= 0 and
 * the lock released (copy, then finish_write), 0 with *slot == -1 and the
 * lock held when no claim slot is free (copy under the lock), or an error. */
static int begin_write(sk_queue *q, qs *s, size_t len, int64_t timeout_ns, int64_t deadline, uint64_t *pos, int *slot)
{
	int rc = q_lock(q, deadline, s);
	if (!rc)
		rc = make_room(q, s, rec_size(len), timeout_ns, deadline, pos);
	if (rc)
		return rc;
	*slot = claim_take(q, s, *pos, CL_WRITE);
	if (*slot < 0) {
		store_state(q, s); /* a pad may have been written */
		return 0;
	}
	write_hdr(q, *pos, (uint32_t)len, ST_WRITING);
	s->wtail = *pos + rec_size(len);
	s->count++;
	store_state(q, s);
	q_unlock(q);
	return 0;
}

/* Publishes (or, abort, gives up) the claimed record at pos: marks it READY
 * (DONE) and moves tail over every finished record. */
static int finish_write(sk_queue *q, int slot, uint64_t pos, uint32_t len, bool abort)
{
	HOOK(q, HOOK_FINISH);
	qs s;
	int rc = q_lock(q, sk__deadline(FINISH_NS), &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	rec r;
	if (!claim_is_mine(q, slot, pos, CL_WRITE) || pos < s.tail || read_rec(q, pos, s.wtail, &r) ||
	    r.state != ST_WRITING || r.len != len) {
		q_unlock(q);
		return SK_ECORRUPT;
	}
	if (!abort) {
		RST(&q->c->pushed, RLD(&q->c->pushed) + 1); /* and one more unfinished task */
	} else if (s.count) {
		s.count--;
	}
	write_hdr(q, pos, len, abort ? ST_DONE : ST_READY);
	claim_free(q, &s, slot);
	uint64_t old_tail = s.tail;
	rc = advance_tail(q, &s);
	if (!rc)
		store_state(q, &s);
	unlock_wake(q, (s.tail != old_tail ? WK_CONSUMERS : 0) | (abort ? WK_PRODUCERS : 0));
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
	int64_t deadline = sk__deadline(timeout_ns);
	qs s;
	uint64_t pos;
	int rc;
	if (len >= COPY_INLINE) {
		int slot;
		rc = begin_write(q, &s, len, timeout_ns, deadline, &pos, &slot);
		if (rc)
			return rc;
		if (slot >= 0) {
			HOOK(q, HOOK_COPY_IN);
			memcpy(payload(q, pos), msg, len);
			return finish_write(q, slot, pos, (uint32_t)len, false);
		}
	} else {
		rc = q_lock(q, deadline, &s);
		if (!rc)
			rc = make_room(q, &s, rec_size(len), timeout_ns, deadline, &pos);
		if (rc)
			return rc;
	}
	if (len)
		memcpy(payload(q, pos), msg, len);
	publish_locked(q, &s, pos, (uint32_t)len);
	unlock_wake(q, WK_CONSUMER);
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
	int64_t deadline = sk__deadline(timeout_ns);
	qs s;
	uint64_t pos;
	int rc = q_lock(q, deadline, &s);
	if (!rc)
		rc = make_room(q, &s, rec_size(lens[0]), timeout_ns, deadline, &pos);
	if (rc)
		return rc;
	int done = 0;
	for (;;) {
		if (lens[done])
			memcpy(payload(q, pos), msgs[done], lens[done]);
		publish_locked(q, &s, pos, (uint32_t)lens[done]);
		if (++done == n)
			break;
		/* The next one, if it fits now (make_room does not wait with timeout 0
		 * when it fits, and releases the lock when it does not). */
		uint64_t size = rec_size(lens[done]), to_end = q->cap - s.wtail % q->cap;
		uint64_t pad = size > to_end ? to_end : 0;
		if ((q->max_messages && s.count >= q->max_messages) || s.wtail - s.head + pad + size > q->cap ||
		    LD(&q->c->closed))
			break;
		if (make_room(q, &s, size, 0, -1, &pos))
			return done; /* cannot happen: it fits */
	}
	unlock_wake(q, WK_CONSUMERS);
	return done;
}

/* ---- consuming ---- */

/* The oldest message available to consumers: a record given back, else the
 * first READY one at rhead (skipping pads and DONE records, moving rhead
 * and head with it). Returns 1 and *pos, *r; 0 when there is none. */
static int find_rec(sk_queue *q, qs *s, uint64_t *pos, rec *r)
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
	while (s->rhead < s->tail) {
		if ((rc = read_rec(q, s->rhead, s->tail, r)))
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

/* Takes the lock and waits for the oldest message, as the timeout allows.
 * Returns 0 with the lock held, or an error with it released. */
static int lock_first(sk_queue *q, qs *s, int64_t timeout_ns, uint64_t *pos, rec *r)
{
	int64_t deadline = sk__deadline(timeout_ns);
	int rc = q_lock(q, deadline, s);
	if (rc)
		return rc;
	for (;;) {
		rc = find_rec(q, s, pos, r);
		if (rc == 1)
			return 0;
		if (rc < 0) {
			q_unlock(q);
			return rc;
		}
		if (LD(&q->c->closed) && s->tail == s->wtail && !s->nclaims) {
			q_unlock(q);
			return SK_ECLOSED;
		}
		rc = q_wait(q, W_CONSUMER, timeout_ns, deadline, s);
		if (rc)
			return rc;
	}
}

/* Removes the record at pos (found by find_rec, copied out or DONE-to-be)
 * from the waiting ones: rhead moves past it, or it stops counting as given
 * back. Marks it `state` unless head can move past it at once. */
static void leave_waiting(sk_queue *q, qs *s, uint64_t pos, const rec *r, uint32_t state)
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
static int took_locked(sk_queue *q, qs *s, uint64_t pos, const rec *r)
{
	leave_waiting(q, s, pos, r, ST_DONE);
	if (s->count)
		s->count--;
	RST(&q->c->popped, RLD(&q->c->popped) + 1);
	int rc = advance_head(q, s);
	if (!rc)
		store_state(q, s);
	return rc;
}

/* Releases the lock after messages were taken and wakes who waits for that:
 * producers, and one more consumer when messages are left (a consumer woken
 * for them may have taken just one). */
static void after_take(sk_queue *q, const qs *s)
{
	bool more = s->rhead < s->tail || s->returned;
	unlock_wake(q, WK_PRODUCERS | (more ? WK_CONSUMER : 0));
}

/* Claims the record at pos for reading out of the lock. Returns the slot,
 * with the lock released, or -1 (no slot free) with the lock still held. */
static int begin_read(sk_queue *q, qs *s, uint64_t pos, const rec *r)
{
	int slot = claim_take(q, s, pos, CL_READ);
	if (slot < 0)
		return -1;
	leave_waiting(q, s, pos, r, ST_TAKING);
	store_state(q, s);
	q_unlock(q);
	return slot;
}

/* Ends a read claim: the message leaves (DONE) or, give_back, is handed out
 * again first. */
static int finish_read(sk_queue *q, int slot, uint64_t pos, uint32_t len, bool give_back)
{
	HOOK(q, HOOK_FINISH);
	qs s;
	int rc = q_lock(q, sk__deadline(FINISH_NS), &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	rec r;
	if (!claim_is_mine(q, slot, pos, CL_READ) || pos < s.head || read_rec(q, pos, s.rhead, &r) ||
	    r.state != ST_TAKING || r.len != len) {
		q_unlock(q);
		return SK_ECORRUPT;
	}
	claim_free(q, &s, slot);
	if (give_back) {
		write_hdr(q, pos, len, ST_READY);
		s.returned++;
	} else {
		write_hdr(q, pos, len, ST_DONE);
		if (s.count)
			s.count--;
		RST(&q->c->popped, RLD(&q->c->popped) + 1);
		rc = advance_head(q, &s);
	}
	if (!rc)
		store_state(q, &s);
	unlock_wake(q, give_back ? WK_CONSUMER : WK_PRODUCERS);
	return rc;
}

int sk_queue_pop(sk_queue *q, void *buf, size_t bufsize, size_t *len, int64_t timeout_ns)
{
	if (!q || !len || (bufsize && !buf))
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	qs s;
	uint64_t pos;
	rec r;
	int rc = lock_first(q, &s, timeout_ns, &pos, &r);
	if (rc)
		return rc;
	*len = r.len;
	if (r.len > bufsize) {
		q_unlock(q);
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
	qs s;
	uint64_t pos;
	rec r;
	int rc = lock_first(q, &s, timeout_ns, &pos, &r);
	if (rc)
		return rc;
	if (r.len > bufsize) {
		lens[0] = r.len;
		q_unlock(q);
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
		if (find_rec(q, &s, &pos, &r) != 1 || r.len > bufsize - used)
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
	int64_t deadline = sk__deadline(timeout_ns);
	qs s;
	uint64_t pos;
	int slot;
	int rc = begin_write(q, &s, len, timeout_ns, deadline, &pos, &slot);
	if (rc)
		return rc;
	q->hold = H_RESERVED;
	q->hold_locked = slot < 0;
	q->hold_slot = slot;
	q->hold_pos = pos;
	q->hold_len = (uint32_t)len;
	q->hold_s = s;
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
		publish_locked(q, &q->hold_s, q->hold_pos, q->hold_len);
	unlock_wake(q, abort ? 0 : WK_CONSUMER);
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
	qs s;
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
	q->hold_s = s;
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
		rc = took_locked(q, &q->hold_s, q->hold_pos, &r);
	}
	unlock_wake(q, give_back ? 0 : WK_PRODUCERS);
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
			sk__sys_futex_wake(&c->tasks, 0x7fffffff);
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

int sk_queue_shutdown(sk_queue *q)
{
	if (!q)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	qs s;
	int rc = q_lock(q, sk__deadline(FINISH_NS), &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	ST(&q->c->closed, 1);
	ADD(&q->c->not_empty, 1);
	ADD(&q->c->not_full, 1);
	q_unlock(q);
	sk__sys_futex_wake(&q->c->not_empty, 0x7fffffff);
	sk__sys_futex_wake(&q->c->not_full, 0x7fffffff);
	return 0;
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
	st->messages = LD(&c->count);
	st->pushed = LD(&c->pushed);
	st->popped = LD(&c->popped);
	uint64_t done = LD(&c->tasks_done);
	st->unfinished = st->pushed > done ? st->pushed - done : 0;
	st->closed = LD(&c->closed) != 0;
	st->waiting_producers = (int)clamp_u32((uint32_t)(LD(&c->sleep_prod) >> 32), 1u << 30);
	st->waiting_consumers = (int)clamp_u32((uint32_t)(LD(&c->sleep_cons) >> 32), 1u << 30);
	st->in_flight = (int)clamp_u32(LD(&c->nclaims), NCLAIMS);
	st->recoveries = LD(&c->recoveries);
}

int sk_queue_stats_get(sk_queue *q, sk_queue_stats *st)
{
	if (!q || !st)
		return -EINVAL;
	if (q->hold != H_IDLE)
		return -EDEADLK;
	qs s;
	int rc = q_lock(q, sk__deadline(FINISH_NS), &s);
	if (rc)
		return rc == -EAGAIN ? -ETIMEDOUT : rc;
	fill_stats(q->c, q->cap, st);
	/* Under the lock the positions were validated: report those. */
	st->used = s.wtail - s.head;
	st->messages = s.count;
	st->in_flight = (int)s.nclaims;
	q_unlock(q);
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
	int rc = sk_mutex_init(&c->m);
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
	sk__seg_desc d = { .kind = SK_KIND_QUEUE,
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

int sk_queue_open(const char *name, sk_queue **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	sk_segment *seg;
	int rc = sk__segment_open(name, SK_RDWR, SK_KIND_QUEUE, &seg);
	if (rc)
		return rc;
	sk_queue *q = NULL;
	rc = wrap(seg, &q);
	if (!rc) {
		/* The state, validated under the lock (repaired if a holder died). */
		qs s;
		rc = q_lock(q, sk__deadline(FINISH_NS), &s);
		if (!rc)
			q_unlock(q);
		else if (rc == -EAGAIN)
			rc = -ETIMEDOUT;
		if (rc)
			free(q);
	}
	if (rc) {
		sk_segment_close(seg);
		return rc;
	}
	*out = q;
	return 0;
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
