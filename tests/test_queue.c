/*
 * test_queue.c: the message queue. Order, sizes, blocking and timeouts,
 * shutdown, zero-copy and batches; 4 producers x 4 consumers x 250,000
 * checksummed messages (PROCS and ITER in the environment scale it); 200
 * rounds of producers and consumers SIGKILLed at random points while others
 * keep going (also with messages copied outside the lock); SIGKILL at chosen
 * points (the test hook of src/queue.c); damaged indices and records; hostile
 * peers rewriting shared state between validation and use; the message
 * limit, task accounting and join; claims published in order; producers and
 * consumers not waiting for each other's lock; the message count recounted
 * after repairs.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char qname[128];

/* A message: producer, sequence, checksum of the payload that follows. */
typedef struct msg_hdr {
	uint32_t producer, seq;
	uint64_t sum;
} msg_hdr;

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Builds message (producer, seq) of a pseudo-random size into buf; returns its length. */
static size_t make_msg(uint8_t *buf, uint32_t producer, uint32_t seq, size_t max_payload)
{
	uint64_t s = ((uint64_t)producer << 32 | seq) * 0x9e3779b97f4a7c15ull + 1;
	size_t n = (size_t)(t_rand(&s) % (max_payload + 1));
	uint8_t *payload = buf + sizeof(msg_hdr);
	for (size_t i = 0; i < n; i++)
		payload[i] = (uint8_t)t_rand(&s);
	msg_hdr h = { producer, seq, fnv(payload, n) };
	memcpy(buf, &h, sizeof h);
	return sizeof h + n;
}

/* Whole and uncorrupted? */
static bool msg_ok(const uint8_t *buf, size_t len, msg_hdr *out)
{
	if (len < sizeof(msg_hdr))
		return false;
	memcpy(out, buf, sizeof *out);
	return fnv(buf + sizeof *out, len - sizeof *out) == out->sum;
}

static void test_basics(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("q"));
	sk_queue *q, *r;
	assert_int_equal(sk_queue_create(qname, 4096, 1000, NULL, &q), 0);
	assert_string_equal(sk_queue_name(q), qname);
	assert_int_equal(sk_queue_open(qname, &r), 0);
	uint8_t in[1000], out[1000];
	for (int i = 0; i < 1000; i++)
		in[i] = (uint8_t)(i * 7);
	size_t sizes[] = { 0, 1, 7, 8, 9, 100, 1000 };
	for (size_t k = 0; k < 7; k++)
		assert_int_equal(sk_queue_push(q, in, sizes[k], 0), 0);
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(r, &st), 0);
	assert_int_equal(st.messages, 7);
	assert_int_equal(st.capacity, 4096);
	assert_int_equal(st.max_msg, 1000);
	assert_int_equal(st.pushed, 7);
	for (size_t k = 0; k < 7; k++) {
		size_t len = 12345;
		assert_int_equal(sk_queue_pop(r, out, sizeof out, &len, 0), 0);
		assert_int_equal(len, sizes[k]);
		assert_memory_equal(out, in, len);
	}
	size_t len;
	assert_int_equal(sk_queue_pop(r, out, sizeof out, &len, 0), -EAGAIN);
	assert_int_equal(sk_queue_push(q, in, 1001, 0), -EMSGSIZE); /* refused, never truncated */
	assert_int_equal(sk_queue_push(q, in, 500, 0), 0);
	assert_int_equal(sk_queue_pop(r, out, 499, &len, 0), -EMSGSIZE);
	assert_int_equal(len, 500);
	assert_int_equal(sk_queue_pop(r, out, 500, &len, 0), 0); /* it stayed */
	assert_memory_equal(out, in, 500);
	/* Fill: 4096 bytes hold 4 records of 1008, or 3 when one must skip the ring's end. */
	int fit = 0;
	while (sk_queue_push(q, in, 1000, 0) == 0)
		fit++;
	assert_true(fit == 3 || fit == 4);
	assert_int_equal(sk_queue_push(q, in, 1000, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_queue_push(q, in, 1000, 100000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 99000000 && t_now_ns() - t0 < 2000000000);
	for (int i = 0; i < fit; i++)
		assert_int_equal(sk_queue_pop(r, out, sizeof out, &len, 0), 0);
	t0 = t_now_ns();
	assert_int_equal(sk_queue_pop(r, out, sizeof out, &len, 100000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 99000000 && t_now_ns() - t0 < 2000000000);
	/* Wrap-around, many times, random sizes, one process. */
	uint64_t seed = 5;
	uint8_t buf[1100], got[1100];
	int pushed = 0, popped = 0;
	while (popped < 20000) {
		if (t_rand(&seed) % 2 && pushed - popped < 3) {
			size_t n = make_msg(buf, 0, (uint32_t)pushed, 900);
			assert_int_equal(sk_queue_push(q, buf, n, 0), 0);
			pushed++;
		} else if (pushed > popped) {
			assert_int_equal(sk_queue_pop(r, got, sizeof got, &len, 0), 0);
			msg_hdr h;
			assert_true(msg_ok(got, len, &h));
			assert_int_equal(h.seq, (uint32_t)popped);
			popped++;
		}
	}
	assert_int_equal(sk_queue_close(r), 0);
	assert_int_equal(sk_queue_close(q), 0);
	assert_int_equal(sk_queue_close(NULL), 0);
	sk_segment_unlink(qname);
}

static void test_bad_arguments(void **state)
{
	(void)state;
	sk_queue *q;
	snprintf(qname, sizeof qname, "%s", t_name("qbad"));
	assert_int_equal(sk_queue_create(qname, 8, 0, NULL, &q), -EINVAL);
	assert_int_equal(sk_queue_create(qname, 1024, 1020, NULL, &q), -EINVAL);
	sk_create_opts o = { .flags = SK_CREATE_LOCKED };
	assert_int_equal(sk_queue_create(qname, 1024, 100, &o, &q), -EINVAL);
	assert_int_equal(sk_queue_create(qname, 1024, 100, NULL, NULL), -EINVAL);
	assert_int_equal(sk_queue_open(qname, &q), -ENOENT);
	uint64_t n = 4;
	sk_array *a;
	assert_int_equal(sk_array_create(qname, SK_INT8, 1, &n, NULL, &a), 0);
	assert_int_equal(sk_queue_open(qname, &q), SK_EKIND);
	sk_array_close(a);
	sk_segment_unlink(qname);
	/* A 1001-byte capacity rounds up to 1008. */
	assert_int_equal(sk_queue_create(qname, 1001, 1000, NULL, &q), 0);
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.capacity, 1008);
	assert_int_equal(sk_queue_push(NULL, "x", 1, 0), -EINVAL);
	assert_int_equal(sk_queue_push(q, NULL, 1, 0), -EINVAL);
	assert_int_equal(sk_queue_commit(q), -EINVAL);
	assert_int_equal(sk_queue_release(q), -EINVAL);
	assert_int_equal(sk_queue_abort(q), -EINVAL);
	assert_int_equal(sk_queue_unpeek(q), -EINVAL);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

static int blocked_consumer(void *arg)
{
	(void)arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	char b[16];
	size_t len;
	int rc = sk_queue_pop(q, b, sizeof b, &len, 10000000000LL);
	if (rc || len != 5 || memcmp(b, "hello", 5))
		return 2;
	rc = sk_queue_pop(q, b, sizeof b, &len, 10000000000LL); /* woken by the shutdown */
	return rc == SK_ECLOSED ? 0 : 3;
}

static int blocked_producer(void *arg)
{
	(void)arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	char big[200] = { 0 };
	while (sk_queue_push(q, big, sizeof big, 0) == 0)
		;
	int rc = sk_queue_push(q, big, sizeof big, 10000000000LL); /* full: woken by the shutdown */
	return rc == SK_ECLOSED ? 0 : 2;
}

static void reap_ok(pid_t pid)
{
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	t_assert_exit0(status);
}

static void test_blocking_and_shutdown(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qshut"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, 1024, 200, NULL, &q), 0);
	pid_t c = t_spawn(blocked_consumer, NULL);
	usleep(50000);
	assert_int_equal(sk_queue_push(q, "hello", 5, 0), 0);
	usleep(50000);
	assert_int_equal(sk_queue_shutdown(q), 0);
	reap_ok(c);
	/* After shutdown: producers refused, consumers drain then see the end. */
	assert_int_equal(sk_queue_push(q, "late", 4, 0), SK_ECLOSED);
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.closed, 1);
	sk_queue_close(q);
	sk_segment_unlink(qname);

	assert_int_equal(sk_queue_create(qname, 1024, 200, NULL, &q), 0);
	assert_int_equal(sk_queue_push(q, "a", 1, 0), 0);
	assert_int_equal(sk_queue_push(q, "b", 1, 0), 0);
	pid_t p = t_spawn(blocked_producer, NULL);
	usleep(100000);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.waiting_producers, 1);
	assert_int_equal(sk_queue_shutdown(q), 0);
	reap_ok(p);
	char b[256];
	size_t len;
	assert_int_equal(sk_queue_pop(q, b, sizeof b, &len, 0), 0);
	assert_true(len == 1 && b[0] == 'a');
	assert_int_equal(sk_queue_pop(q, b, sizeof b, &len, 0), 0);
	while (sk_queue_pop(q, b, sizeof b, &len, 0) == 0)
		;
	assert_int_equal(sk_queue_pop(q, b, sizeof b, &len, 0), SK_ECLOSED);
	assert_int_equal(sk_queue_pop(q, b, sizeof b, &len, -1), SK_ECLOSED); /* never blocks */
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

static void test_zero_copy_and_batches(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qzc"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, 4096, 1024, NULL, &q), 0);
	void *w;
	assert_int_equal(sk_queue_reserve(q, 11, &w, 0), 0);
	memcpy(w, "in place!!!", 11);
	assert_int_equal(sk_queue_push(q, "x", 1, 0), -EDEADLK); /* this handle holds the lock */
	assert_int_equal(sk_queue_commit(q), 0);
	assert_int_equal(sk_queue_reserve(q, 5, &w, 0), 0);
	memcpy(w, "never", 5);
	assert_int_equal(sk_queue_abort(q), 0);
	assert_int_equal(sk_queue_reserve(q, 2000, &w, 0), -EMSGSIZE);
	const void *p;
	size_t len;
	assert_int_equal(sk_queue_peek(q, &p, &len, 0), 0);
	assert_int_equal(len, 11);
	assert_memory_equal(p, "in place!!!", 11);
	assert_int_equal(sk_queue_unpeek(q), 0);
	assert_int_equal(sk_queue_peek(q, &p, &len, 0), 0);
	assert_int_equal(sk_queue_release(q), 0);
	assert_int_equal(sk_queue_peek(q, &p, &len, 0), -EAGAIN); /* the aborted one never appeared */

	const void *msgs[100];
	size_t lens[100];
	char data[100][64];
	for (int i = 0; i < 100; i++) {
		memset(data[i], '.', sizeof data[i]);
		snprintf(data[i], sizeof data[i], "message %d", i);
		msgs[i] = data[i];
		lens[i] = sizeof data[i];
	}
	/* 4096 bytes hold 56 records of 72: it pushes what fits. */
	int n = sk_queue_push_many(q, msgs, lens, 100, 0);
	assert_true(n > 100 / 2 && n < 100);
	assert_int_equal(sk_queue_push_many(q, msgs + n, lens + n, 100 - n, 0), -EAGAIN);
	char buf[8192];
	size_t got[100];
	int m = sk_queue_pop_many(q, buf, sizeof buf, got, 100, 0);
	assert_int_equal(m, n);
	size_t off = 0;
	for (int i = 0; i < m; i++) {
		assert_int_equal(got[i], lens[i]);
		assert_memory_equal(buf + off, data[i], got[i]);
		off += got[i];
	}
	/* pop_many stops at the buffer's end; a first message too big is -EMSGSIZE. */
	assert_int_equal(sk_queue_push_many(q, msgs, lens, 3, 0), 3);
	assert_int_equal(sk_queue_pop_many(q, buf, lens[0] + lens[1], got, 100, 0), 2);
	assert_int_equal(sk_queue_pop_many(q, buf, 3, got, 100, 0), -EMSGSIZE);
	assert_int_equal(got[0], lens[2]);
	assert_int_equal(sk_queue_pop_many(q, buf, sizeof buf, got, 100, 0), 1);
	assert_int_equal(sk_queue_pop_many(q, buf, sizeof buf, got, 0, 0), -EINVAL);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

/* ---- 4 x 4 x 250,000 ---- */

typedef struct stress {
	int producers, consumers, per_producer;
	int64_t bad, dup, order;
} stress;

static stress *ST;
static char bitsname[128];

static int stress_producer(int i, void *arg)
{
	(void)arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	uint8_t buf[512];
	for (int k = 0; k < ST->per_producer; k++) {
		size_t n = make_msg(buf, (uint32_t)i, (uint32_t)k, 200);
		if (sk_queue_push(q, buf, n, -1))
			return 2;
	}
	sk_queue_close(q);
	return 0;
}

static int stress_consumer(int i, void *arg)
{
	(void)arg, (void)i;
	sk_queue *q;
	sk_bits *seen;
	if (sk_queue_open(qname, &q) || sk_bits_open(bitsname, SK_RDWR, &seen))
		return 1;
	int64_t *last = malloc(sizeof(int64_t) * (size_t)ST->producers);
	for (int p = 0; p < ST->producers; p++)
		last[p] = -1;
	uint8_t buf[16384];
	size_t lens[64];
	for (;;) {
		int n = sk_queue_pop_many(q, buf, sizeof buf, lens, 64, -1);
		if (n == SK_ECLOSED)
			break;
		if (n < 0)
			return 2;
		size_t off = 0;
		for (int k = 0; k < n; k++) {
			msg_hdr h;
			if (!msg_ok(buf + off, lens[k], &h) || h.producer >= (uint32_t)ST->producers) {
				__atomic_fetch_add(&ST->bad, 1, __ATOMIC_SEQ_CST);
			} else {
				if (sk_bits_test_and_set(seen,
							 (uint64_t)h.producer * (uint64_t)ST->per_producer + h.seq))
					__atomic_fetch_add(&ST->dup, 1, __ATOMIC_SEQ_CST);
				if ((int64_t)h.seq <= last[h.producer])
					__atomic_fetch_add(&ST->order, 1, __ATOMIC_SEQ_CST);
				last[h.producer] = h.seq;
			}
			off += lens[k];
		}
	}
	free(last);
	return 0;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	return v && atoi(v) > 0 ? atoi(v) : dflt;
}

static void test_four_by_four(void **state)
{
	(void)state;
	ST = mmap(NULL, sizeof *ST, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(ST, 0, sizeof *ST);
	ST->producers = ST->consumers = env_int("PROCS", 4);
	ST->per_producer = env_int("ITER", 250000);
	snprintf(qname, sizeof qname, "%s", t_name("q44"));
	snprintf(bitsname, sizeof bitsname, "%s", t_name("q44seen"));
	sk_queue *q;
	sk_bits *seen;
	assert_int_equal(sk_queue_create(qname, 1 << 20, 4096, NULL, &q), 0);
	uint64_t total = (uint64_t)ST->producers * (uint64_t)ST->per_producer;
	assert_int_equal(sk_bits_create(bitsname, total, NULL, &seen), 0);
	int64_t t0 = t_now_ns();
	fflush(NULL);
	pid_t cons[64];
	for (int i = 0; i < ST->consumers; i++) {
		cons[i] = fork();
		if (cons[i] == 0)
			_exit(stress_consumer(i, NULL));
	}
	t_fork_many(ST->producers, stress_producer, NULL);
	assert_int_equal(sk_queue_shutdown(q), 0); /* consumers drain, then stop */
	for (int i = 0; i < ST->consumers; i++)
		reap_ok(cons[i]);
	print_message("%llu messages through %d x %d processes in %.2f s\n", (unsigned long long)total, ST->producers,
		      ST->consumers, (double)(t_now_ns() - t0) / 1e9);
	assert_int_equal(ST->bad, 0);
	assert_int_equal(ST->dup, 0);
	assert_int_equal(ST->order, 0);
	assert_int_equal(sk_bits_count(seen, 0, total), (int64_t)total); /* none lost */
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.pushed, total);
	assert_int_equal(st.popped, total);
	assert_int_equal(st.messages, 0);
	sk_bits_close(seen);
	sk_queue_close(q);
	sk_segment_unlink(qname);
	sk_segment_unlink(bitsname);
	munmap(ST, sizeof *ST);
}

/* ---- SIGKILL at random points ---- */

/* The queue's test hook (src/queue.c): called between validation and use,
 * and around the copies made outside the lock. */
extern void (*sk__queue_hook)(sk_queue *q, int point);
enum { HOOK_LOCKED = 1, HOOK_COPY_IN = 2, HOOK_COPY_OUT = 3, HOOK_FINISH = 4, HOOK_STORE = 5 };

/* A process that installs kill_hook dies by SIGKILL at the countdown-th
 * time it reaches kill_point. */
static int kill_point, kill_countdown;

static void kill_hook(sk_queue *q, int point)
{
	(void)q;
	if (point == kill_point && --kill_countdown == 0)
		raise(SIGKILL);
}

typedef struct chaos {
	int64_t bad, popped_by_survivor, pushed_by_survivor;
	int32_t stop;
	int32_t payload; /* largest payload */
	int32_t hooked;  /* this round's victims also die at a chosen point */
} chaos;

static chaos *CH;

/* In rounds with CH->hooked, a victim also carries a kill hook: it dies at
 * the point where it holds the lock (half of them) or one of the points
 * around a copy outside the lock, after 1 to 20 passes, unless the timed
 * SIGKILL comes first. */
static void maybe_hook(int id)
{
	if (id != 2 || !CH->hooked)
		return;
	uint64_t seed = (uint64_t)getpid() * 2654435761u;
	kill_point = t_rand(&seed) % 2 ? HOOK_LOCKED : 2 + (int)(t_rand(&seed) % 3);
	kill_countdown = 1 + (int)(t_rand(&seed) % 20);
	sk__queue_hook = kill_hook;
}

/* Pushes with every path, forever (until killed or told to stop). */
static int chaos_producer(int id)
{
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	maybe_hook(id);
	static uint8_t buf[1 << 16];
	uint64_t seed = (uint64_t)getpid();
	for (uint32_t k = 0; !__atomic_load_n(&CH->stop, __ATOMIC_SEQ_CST); k++) {
		size_t n = make_msg(buf, (uint32_t)id, k, (size_t)CH->payload);
		int rc;
		switch (t_rand(&seed) % 3) {
		case 0: rc = sk_queue_push(q, buf, n, 50000000); break;
		case 1: {
			const void *m[2] = { buf, buf };
			size_t l[2] = { n, n };
			rc = sk_queue_push_many(q, m, l, 2, 50000000);
			rc = rc > 0 ? 0 : rc;
			break;
		}
		default: {
			void *w;
			rc = sk_queue_reserve(q, n, &w, 50000000);
			if (!rc) {
				memcpy(w, buf, n / 2); /* a kill here leaves half a message: never seen */
				memcpy((uint8_t *)w + n / 2, buf + n / 2, n - n / 2);
				rc = sk_queue_commit(q);
			}
		}
		}
		if (rc && rc != -ETIMEDOUT && rc != -EAGAIN) {
			fprintf(stderr, "chaos %d: %s\n", id, sk_strerror(rc));
			return 2;
		}
		if (!rc && id == 1)
			__atomic_fetch_add(&CH->pushed_by_survivor, 1, __ATOMIC_SEQ_CST);
	}
	sk_queue_close(q);
	return 0;
}

static int chaos_consumer(int id)
{
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	maybe_hook(id);
	static uint8_t buf[1 << 17];
	size_t lens[8];
	uint64_t seed = (uint64_t)getpid();
	for (;;) {
		int rc;
		int n = 0;
		switch (t_rand(&seed) % 3) {
		case 0:
			rc = sk_queue_pop(q, buf, sizeof buf, &lens[0], 50000000);
			n = rc ? 0 : 1;
			break;
		case 1:
			rc = sk_queue_pop_many(q, buf, sizeof buf, lens, 8, 50000000);
			n = rc > 0 ? rc : 0;
			rc = rc > 0 ? 0 : rc;
			break;
		default: {
			const void *p;
			rc = sk_queue_peek(q, &p, &lens[0], 50000000);
			if (!rc) {
				memcpy(buf, p, lens[0]);
				n = 1;
				rc = sk_queue_release(q);
			}
		}
		}
		if (rc == SK_ECLOSED)
			break;
		if (rc && rc != -ETIMEDOUT && rc != -EAGAIN) {
			fprintf(stderr, "chaos %d: %s\n", id, sk_strerror(rc));
			return 2;
		}
		size_t off = 0;
		for (int k = 0; k < n; k++) {
			msg_hdr h;
			if (!msg_ok(buf + off, lens[k], &h))
				__atomic_fetch_add(&CH->bad, 1, __ATOMIC_SEQ_CST);
			off += lens[k];
		}
		if (id == 1)
			__atomic_fetch_add(&CH->popped_by_survivor, n, __ATOMIC_SEQ_CST);
	}
	sk_queue_close(q);
	return 0;
}

static pid_t spawn_role(int (*fn)(int), int id)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fn(id));
	return pid;
}

static void chaos_rounds(uint64_t capacity, uint64_t max_msg, int payload, int rounds)
{
	CH = mmap(NULL, sizeof *CH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(CH, 0, sizeof *CH);
	CH->payload = payload;
	snprintf(qname, sizeof qname, "%s", t_name("qkill"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, capacity, max_msg, NULL, &q), 0);
	/* The survivors run through every round. */
	pid_t sp = spawn_role(chaos_producer, 1), sc = spawn_role(chaos_consumer, 1);
	uint64_t seed = 77;
	for (int r = 0; r < rounds; r++) {
		CH->hooked = r % 4 == 3;
		pid_t p = spawn_role(chaos_producer, 2), c = spawn_role(chaos_consumer, 2);
		usleep((useconds_t)(t_rand(&seed) % 3000));
		kill(r % 2 ? p : c, SIGKILL);
		usleep((useconds_t)(t_rand(&seed) % 1000));
		kill(r % 2 ? c : p, SIGKILL);
		waitpid(p, NULL, 0);
		waitpid(c, NULL, 0);
	}
	/* The survivors kept going... */
	int64_t pushed = CH->pushed_by_survivor, popped = CH->popped_by_survivor;
	usleep(200000);
	assert_true(CH->pushed_by_survivor > pushed || CH->popped_by_survivor > popped);
	__atomic_store_n(&CH->stop, 1, __ATOMIC_SEQ_CST);
	reap_ok(sp);
	assert_int_equal(sk_queue_shutdown(q), 0);
	reap_ok(sc);
	/* ...and every message anyone took was whole. */
	assert_int_equal(CH->bad, 0);
	print_message("%d kill rounds: survivor pushed %lld, popped %lld\n", rounds, (long long)CH->pushed_by_survivor,
		      (long long)CH->popped_by_survivor);
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.messages, 0);
	/* Some kills landed while the victim held the queue's lock, and were repaired. */
	print_message("%llu of them while holding the queue's lock\n", (unsigned long long)st.recoveries);
	assert_true(st.recoveries > 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
	munmap(CH, sizeof *CH);
}

static void test_kill_producers_and_consumers(void **state)
{
	(void)state;
	chaos_rounds(1 << 14, 1024, 500, env_int("ROUNDS", 200));
}

/* The same with messages up to 40 KB: those above the queue's inline limit
 * (16 KiB) are copied in and out outside the lock, so kills land there. */
static void test_kill_copies_outside_the_lock(void **state)
{
	(void)state;
	chaos_rounds(1 << 20, 48 << 10, 40000, env_int("ROUNDS", 200) / 2);
}

static void test_damaged_state(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qdmg"));
	sk_queue *q, *r;
	assert_int_equal(sk_queue_create(qname, 1024, 100, NULL, &q), 0);
	assert_int_equal(sk_queue_push(q, "abc", 3, 0), 0);
	sk_queue_close(q);
	FILE *f = fopen(t_path(qname), "r+b");
	assert_non_null(f);
	/* head (offset 128 of the control block) past tail. */
	uint64_t bad = 4096;
	fseek(f, 4096 + 128, SEEK_SET);
	fwrite(&bad, 8, 1, f);
	fflush(f);
	assert_int_equal(sk_queue_open(qname, &r), SK_ECORRUPT);
	uint64_t zero = 0;
	fseek(f, 4096 + 128, SEEK_SET);
	fwrite(&zero, 8, 1, f);
	fflush(f);
	assert_int_equal(sk_queue_open(qname, &r), 0);
	/* A damaged record header: reported, no read out of bounds. */
	uint32_t huge = 0x7fffffff;
	fseek(f, 4096 + 4096, SEEK_SET);
	fwrite(&huge, 4, 1, f);
	fflush(f);
	char buf[200];
	size_t len;
	assert_int_equal(sk_queue_pop(r, buf, sizeof buf, &len, 0), SK_ECORRUPT);
	const void *p;
	assert_int_equal(sk_queue_peek(r, &p, &len, 0), SK_ECORRUPT);
	/* wtail and tail (64 and 72) beyond the ring. */
	uint64_t far = 1 << 20;
	fseek(f, 4096 + 64, SEEK_SET);
	fwrite(&far, 8, 1, f);
	fwrite(&far, 8, 1, f);
	fflush(f);
	assert_int_equal(sk_queue_push(r, "x", 1, 0), SK_ECORRUPT);
	fclose(f);
	sk_queue_close(r);
	sk_segment_unlink(qname);
}

/* ---- hostile peers (issue 13) ----
 *
 * A victim process runs every operation many times against a queue whose
 * ring ends exactly where its mapping ends, with an inaccessible page right
 * after it, and with buffers malloc'd to their exact size (so ASan sees an
 * overrun of them). A peer process rewrites the control block, record
 * headers and claims between the victim's validation and use: driven by the
 * queue's test hook (deterministic: at each hook point the victim asks the
 * peer to strike and waits until it has), or flipping fields in a tight loop.
 * The victim must never crash, write outside its buffers or the ring, or
 * wait past its timeout; it gets SK_ECORRUPT or wrong data. */

/* Control block offsets (docs/queue.md, layout version 3). */
enum {
	C_WTAIL = 64,
	C_TAIL = 72,
	C_ENTERED = 80,
	C_WCLAIMS = 96,
	C_STALE = 100,
	C_HEAD = 128,
	C_RHEAD = 136,
	C_POPPED = 144,
	C_RETURNED = 152,
	C_RCLAIMS = 156,
	C_CLOSED = 192,
	C_CLAIMS = 1024,
	CTL_SIZE = 4096,
};
#define ST_READY   0x9e3779b9u
#define ST_WRITING 0x5bd1e995u
#define ST_TAKING  0x1b873593u
#define ST_DONE    0xcc9e2d51u

#define H_CAP 16384u /* the ring: 4 pages, so it ends where the mapping does */
#define H_MAX 6000u  /* largest message; above 4096 some go outside the lock */
#define H_BUF 4096u  /* the victim's pop buffer: smaller than H_MAX on purpose */
#define H_BIG 16384u /* the queue's inline limit: big messages in a bigger queue */

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static void wr64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* One strike of a hostile peer at a queue's control block and ring (kind
 * 9: a sane empty state, so that a victim gets past validation again). */
static void strike(uint8_t *ctl, uint64_t cap, uint64_t *seed, int kind)
{
	uint8_t *ring = ctl + CTL_SIZE;
	uint64_t r = kind >= 0 ? (uint64_t)kind : t_rand(seed), head = rd64(ctl + C_HEAD);
	uint64_t near_end = head - head % cap + cap - 8; /* a position whose record would run past the ring */
	static const uint32_t states[] = { ST_READY, ST_WRITING, ST_TAKING, ST_DONE };
	switch (r % 10) {
	case 0: /* every position near the end of the ring */
		wr64(ctl + C_RHEAD, near_end);
		wr64(ctl + C_TAIL, near_end);
		wr64(ctl + C_WTAIL, near_end);
		wr64(ctl + C_HEAD, near_end);
		break;
	case 1: /* tail and wtail near the end, head where it was */
		wr64(ctl + C_TAIL, near_end);
		wr64(ctl + C_WTAIL, near_end);
		break;
	case 2: { /* the record at head claims the largest length, check word valid */
		uint32_t len = (uint32_t)(t_rand(seed) % 2 ? H_MAX : cap), st = states[t_rand(seed) % 4];
		wr32(ring + head % cap, len);
		wr32(ring + head % cap + 4, len ^ st);
		break;
	}
	case 3: { /* a record header anywhere */
		uint64_t off = t_rand(seed) % (cap / 8) * 8;
		uint32_t len = (uint32_t)(t_rand(seed) % (H_MAX + 1)), st = states[t_rand(seed) % 4];
		wr32(ring + off, len);
		wr32(ring + off + 4, len ^ st);
		break;
	}
	case 4: /* the counts */
		wr64(ctl + C_ENTERED, rd64(ctl + C_POPPED) + (t_rand(seed) % 4 ? t_rand(seed) % 8 : t_rand(seed)));
		wr32(ctl + C_WCLAIMS, (uint32_t)(t_rand(seed) % 40));
		wr32(ctl + C_RCLAIMS, (uint32_t)(t_rand(seed) % 40));
		wr32(ctl + C_RETURNED, (uint32_t)(t_rand(seed) % 4));
		wr32(ctl + C_STALE, (uint32_t)(t_rand(seed) % 2));
		break;
	case 5: { /* a claim on a position near the ones in use, this or another pid */
		uint8_t *cl = ctl + C_CLAIMS + (t_rand(seed) % 32) * 32;
		wr64(cl, head + t_rand(seed) % 8 * 8);
		wr32(cl + 8, (uint32_t)(t_rand(seed) % 2 ? getppid() : 1));
		wr32(cl + 12, (uint32_t)(t_rand(seed) % 3));
		wr64(cl + 16, t_rand(seed));
		break;
	}
	case 6: /* closed */ wr32(ctl + C_CLOSED, (uint32_t)(t_rand(seed) % 2)); break;
	case 7: { /* random bytes in the control block (not the mutexes at 256..511) */
		uint64_t off = t_rand(seed) % 2 ? 8 + t_rand(seed) % 248 : 1024 + t_rand(seed) % 1024;
		ctl[off] = (uint8_t)t_rand(seed);
		break;
	}
	case 8: /* a tail behind head, or too far ahead */
		wr64(ctl + C_TAIL, t_rand(seed) % 2 ? head - 8 : head + cap + 8);
		break;
	default: /* a sane empty state, so that the victim gets past validation again */
		head = head / 8 * 8;
		wr64(ctl + C_HEAD, head);
		wr64(ctl + C_RHEAD, head);
		wr64(ctl + C_TAIL, head);
		wr64(ctl + C_WTAIL, head);
		wr64(ctl + C_ENTERED, rd64(ctl + C_POPPED));
		wr32(ctl + C_WCLAIMS, 0);
		wr32(ctl + C_RCLAIMS, 0);
		wr32(ctl + C_RETURNED, 0);
		wr32(ctl + C_STALE, 0);
		wr32(ctl + C_CLOSED, 0);
		memset(ctl + C_CLAIMS, 0, 32 * 32);
		break;
	}
}

/* The peer driven by the victim's hook: strikes once per byte received. */
static int hook_peer(const char *name, int cmd_fd, int ack_fd, uint64_t seed)
{
	sk_segment *seg;
	if (sk_segment_open(name, SK_RDWR, &seg))
		return 1;
	uint8_t *ctl = sk_segment_data(seg);
	char c;
	while (read(cmd_fd, &c, 1) == 1) {
		strike(ctl, H_CAP, &seed, c == 'h' ? 9 : -1);
		if (write(ack_fd, &c, 1) != 1)
			return 2;
	}
	sk_segment_close(seg);
	return 0;
}

static int victim_cmd = -1, victim_ack = -1;
static uint64_t victim_seed;
static int64_t victim_strikes;

/* After SK_ECORRUPT, SK_ECLOSED or a timeout: the peer puts a sane state back. */
static void victim_heal(void)
{
	char c = 'h';
	if (write(victim_cmd, &c, 1) != 1 || read(victim_ack, &c, 1) != 1)
		_exit(91);
}

static void victim_hook(sk_queue *q, int point)
{
	(void)q, (void)point;
	if (t_rand(&victim_seed) % 3)
		return; /* not every time: let some operations get through */
	char c = 's';
	if (write(victim_cmd, &c, 1) != 1 || read(victim_ack, &c, 1) != 1)
		_exit(90);
	victim_strikes++;
}

/* Maps the queue with an inaccessible page right after its mapping, so that
 * any access past the ring faults. */
static sk_queue *open_guarded(const char *name)
{
	uint64_t file = 2 * 4096 + H_CAP;
	for (int attempt = 0; attempt < 8; attempt++) {
		uint8_t *r = mmap(NULL, file + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r == MAP_FAILED)
			return NULL;
		munmap(r, file);
		sk_queue *q;
		if (sk_queue_open(name, &q))
			return NULL;
		/* Is the mapping right below the guard page? */
		char line[512], want[256];
		snprintf(want, sizeof want, "/dev/shm/%s", name);
		FILE *m = fopen("/proc/self/maps", "r");
		bool ok = false;
		while (m && fgets(line, sizeof line, m)) {
			unsigned long lo, hi;
			if (strstr(line, want) && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
			    hi == (unsigned long)(r + file))
				ok = true;
		}
		if (m)
			fclose(m);
		if (ok)
			return q;
		sk_queue_close(q); /* placed elsewhere: keep the reservation and try again */
	}
	return NULL;
}

typedef struct hostile_result {
	int64_t ops_corrupt, strikes, opened;
} hostile_result;

static hostile_result *HR;

static bool allowed(int rc)
{
	return rc >= 0 || rc == SK_ECORRUPT || rc == -EAGAIN || rc == -ETIMEDOUT || rc == -EMSGSIZE ||
	       rc == SK_ECLOSED || rc == -EDEADLK;
}

/* Every operation, iters times; 0 if every result was allowed and in
 * bounds, else the step that was not (exit codes 10..). */
static int victim_ops(const char *name, int iters, uint64_t seed, int64_t *corrupt, void (*on_corrupt)(void))
{
	sk_queue *q = open_guarded(name);
	if (!q)
		return 10;
	__atomic_store_n(&HR->opened, 1, __ATOMIC_SEQ_CST); /* a flipping peer may start */
	uint8_t *out = malloc(H_BUF), *msg = malloc(H_MAX);
	size_t lens[4];
	memset(msg, 'm', H_MAX);
	for (int i = 0; i < iters; i++) {
		int rc = 0;
		size_t len = 12345;
		int64_t t0 = t_now_ns();
		int op = (int)(t_rand(&seed) % 8);
		switch (op) {
		case 0: rc = sk_queue_push(q, msg, t_rand(&seed) % (H_MAX + 1), 1000000); break;
		case 1: {
			const void *m[3] = { msg, msg, msg };
			size_t l[3] = { t_rand(&seed) % 100, t_rand(&seed) % 3000, 8 };
			rc = sk_queue_push_many(q, m, l, 3, 1000000);
			break;
		}
		case 2:
			rc = sk_queue_pop(q, out, H_BUF, &len, 1000000);
			if ((rc == 0 || rc == -EMSGSIZE) && (len > H_MAX || (rc == 0 && len > H_BUF)))
				return 11;
			break;
		case 3:
			rc = sk_queue_pop_many(q, out, H_BUF, lens, 4, 1000000);
			if (rc > 0) {
				size_t sum = 0;
				for (int k = 0; k < rc; k++)
					sum += lens[k];
				if (rc > 4 || sum > H_BUF)
					return 12;
			}
			break;
		case 4: {
			void *w;
			size_t want = t_rand(&seed) % (H_MAX + 1);
			rc = sk_queue_reserve(q, want, &w, 1000000);
			if (rc == 0) {
				memset(w, 'r', want); /* in the ring, or the guard page faults */
				rc = t_rand(&seed) % 2 ? sk_queue_commit(q) : sk_queue_abort(q);
			}
			break;
		}
		case 5: {
			const void *p;
			rc = sk_queue_peek(q, &p, &len, 1000000);
			if (rc == 0) {
				if (len > H_MAX)
					return 13;
				uint8_t sum = 0;
				for (size_t k = 0; k < len; k++)
					sum += ((
					    const volatile uint8_t *)p)[k]; /* in the ring, or the guard page faults */
				if (sum == 1 && len == 0)
					return 16; /* cannot be: keeps the reads */
				rc = t_rand(&seed) % 2 ? sk_queue_release(q) : sk_queue_unpeek(q);
			}
			break;
		}
		case 6: {
			sk_queue_stats st;
			rc = sk_queue_stats_get(q, &st);
			if (rc == 0 && (st.used > H_CAP || st.in_flight > 32))
				return 14;
			break;
		}
		default: rc = sk_queue_task_done(q) == -EINVAL ? 0 : 0; break;
		}
		if (!allowed(rc))
			return 15 + op;
		if (rc == SK_ECORRUPT)
			(*corrupt)++;
		if ((rc == SK_ECORRUPT || rc == SK_ECLOSED || rc == -ETIMEDOUT) && on_corrupt)
			on_corrupt(); /* the peer makes the state sane again, so that the strikes go on */
		/* Timeouts are 1 ms; commit and release wait for the lock at most
		 * 10 s; nobody holds it long here. Generous: never a speed test. */
		if (t_now_ns() - t0 > 5000000000LL)
			return 30 + op;
	}
	sk_queue_close(q);
	free(out);
	free(msg);
	return 0;
}

static int hook_victim(void *arg)
{
	int *fds = arg;
	victim_cmd = fds[0];
	victim_ack = fds[1];
	victim_seed = 99;
	sk__queue_hook = victim_hook;
	int64_t corrupt = 0;
	int rc = victim_ops(qname, env_int("HOSTILE_ITER", 20000), 7, &corrupt, victim_heal);
	HR->ops_corrupt = corrupt;
	HR->strikes = victim_strikes;
	return rc;
}

static void test_hostile_peer_at_hook_points(void **state)
{
	(void)state;
	HR = mmap(NULL, sizeof *HR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(qname, sizeof qname, "%s", t_name("qhook"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, H_CAP, H_MAX, NULL, &q), 0);
	int cmd[2], ack[2];
	assert_int_equal(pipe(cmd), 0);
	assert_int_equal(pipe(ack), 0);
	fflush(NULL);
	pid_t peer = fork();
	assert_true(peer >= 0);
	if (peer == 0) {
		close(cmd[1]);
		close(ack[0]);
		_exit(hook_peer(qname, cmd[0], ack[1], 1234));
	}
	close(cmd[0]);
	close(ack[1]);
	int fds[2] = { cmd[1], ack[0] };
	int st = t_fork(hook_victim, fds);
	close(cmd[1]);
	close(ack[0]);
	reap_ok(peer);
	print_message("victim: %lld strikes between validation and use, %lld operations answered SK_ECORRUPT\n",
		      (long long)HR->strikes, (long long)HR->ops_corrupt);
	t_assert_exit0(st); /* not killed by a fault, every answer allowed */
	assert_true(HR->strikes > 100);
	assert_true(HR->ops_corrupt > 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
	munmap(HR, sizeof *HR);
}

static int flipper(void *arg)
{
	(void)arg;
	sk_segment *seg;
	if (sk_segment_open(qname, SK_RDWR, &seg))
		return 1;
	uint8_t *ctl = sk_segment_data(seg);
	while (!__atomic_load_n(&HR->opened, __ATOMIC_SEQ_CST))
		usleep(100);
	/* In a tight loop until the victim is done, the positions cycle through
	 * four states, each valid on its own: empty at v; tail 8 bytes before
	 * the end of the ring (a record written or read there runs past the
	 * ring if its offset comes from one read and its room from another);
	 * full; empty 8 bytes earlier (head from this state and tail from the
	 * full one make a queue holding more than its capacity). The other
	 * strikes are test_hostile_peer_at_hook_points'. */
	uint64_t v = rd64(ctl + C_HEAD) / 8 * 8 + 64, n = v - v % H_CAP + H_CAP - 8;
	const uint64_t heads[4] = { v, v, v, v - 8 }, tails[4] = { v, n, v + H_CAP, v - 8 };
	while (!__atomic_load_n(&HR->strikes, __ATOMIC_SEQ_CST))
		for (int k = 0; k < 1024; k++) {
			wr64(ctl + C_HEAD, heads[k % 4]);
			wr64(ctl + C_RHEAD, heads[k % 4]);
			wr64(ctl + C_TAIL, tails[k % 4]);
			wr64(ctl + C_WTAIL, tails[k % 4]);
		}
	sk_segment_close(seg);
	return 0;
}

static int flip_victim(void *arg)
{
	(void)arg;
	int64_t corrupt = 0;
	int rc = victim_ops(qname, env_int("HOSTILE_ITER", 20000) * 5, 11, &corrupt, NULL);
	HR->ops_corrupt = corrupt;
	__atomic_store_n(&HR->strikes, 1, __ATOMIC_SEQ_CST);
	return rc;
}

static void test_hostile_peer_flipping(void **state)
{
	(void)state;
	HR = mmap(NULL, sizeof *HR, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(qname, sizeof qname, "%s", t_name("qflip"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, H_CAP, H_MAX, NULL, &q), 0);
	pid_t victim = t_spawn(flip_victim, NULL), peer = t_spawn(flipper, NULL);
	int st;
	assert_int_equal(waitpid(victim, &st, 0), victim);
	__atomic_store_n(&HR->strikes, 1, __ATOMIC_SEQ_CST);
	reap_ok(peer);
	print_message("victim: %lld operations answered SK_ECORRUPT\n", (long long)HR->ops_corrupt);
	t_assert_exit0(st);
	sk_queue_close(q);
	sk_segment_unlink(qname);
	munmap(HR, sizeof *HR);
}

/* ---- SIGKILL at chosen points, copies outside the lock included ---- */

typedef struct kill_plan {
	int point, countdown;
	int op; /* 0 push big, 1 pop, 2 reserve+commit, 3 peek+release, 4 push small */
} kill_plan;

static int killed_child(void *arg)
{
	const kill_plan *k = arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	kill_point = k->point;
	kill_countdown = k->countdown;
	sk__queue_hook = kill_hook;
	static uint8_t buf[H_BIG * 2];
	size_t len;
	void *w;
	const void *p;
	memset(buf, 'k', sizeof buf);
	switch (k->op) {
	case 0: sk_queue_push(q, buf, H_BIG + 100, -1); break;
	case 1: sk_queue_pop(q, buf, sizeof buf, &len, -1); break;
	case 2:
		if (!sk_queue_reserve(q, 64, &w, -1)) {
			memset(w, 'k', 64);
			sk_queue_commit(q);
		}
		break;
	case 3:
		if (!sk_queue_peek(q, &p, &len, -1))
			sk_queue_release(q);
		break;
	default: sk_queue_push(q, buf, 64, -1); break;
	}
	return 3; /* not killed: the test fails */
}

static void push_tagged(sk_queue *q, uint32_t tag, size_t len)
{
	static uint8_t buf[H_BIG * 2];
	memset(buf, (int)tag, len);
	memcpy(buf, &tag, 4);
	assert_int_equal(sk_queue_push(q, buf, len, 0), 0);
}

/* Pops one message within 5 s (a dead claim is settled within milliseconds)
 * and returns its tag, checking that it is whole. */
static uint32_t pop_tag(sk_queue *q, size_t *len_out)
{
	static uint8_t buf[H_BIG * 2];
	size_t len;
	assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 5000000000LL), 0);
	uint32_t tag;
	memcpy(&tag, buf, 4);
	for (size_t i = 4; i < len; i++)
		assert_int_equal(buf[i], (uint8_t)tag);
	if (len_out)
		*len_out = len;
	return tag;
}

static void run_killed(kill_plan k)
{
	int st = t_fork(killed_child, &k);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_kill_at_chosen_points(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qkpt"));
	sk_queue *q;
	sk_queue_stats st;
	uint64_t rec0;
	assert_int_equal(sk_queue_create(qname, 1 << 18, H_BIG * 2, NULL, &q), 0);

	/* A producer killed while it copies a big message in, outside the lock:
	 * its message is lost, the one pushed behind it comes out. */
	for (int point = HOOK_COPY_IN; point <= HOOK_FINISH; point += HOOK_FINISH - HOOK_COPY_IN) {
		push_tagged(q, 1, 100);
		run_killed((kill_plan){ point, 1, 0 });
		assert_int_equal(sk_queue_stats_get(q, &st), 0);
		assert_int_equal(st.in_flight, 1); /* the dead producer's claim */
		push_tagged(q, 2, 100);
		assert_int_equal(pop_tag(q, NULL), 1);
		assert_int_equal(pop_tag(q, NULL), 2); /* waited behind the dead claim, then settled it */
		assert_int_equal(sk_queue_stats_get(q, &st), 0);
		assert_int_equal(st.messages, 0);
		assert_int_equal(st.in_flight, 0);
	}

	/* A consumer killed while it copies a big message out: the message is
	 * handed out again, whole; none is lost or seen twice. */
	for (int point = HOOK_COPY_OUT; point <= HOOK_FINISH; point++) {
		push_tagged(q, 3, H_BIG + 100);
		push_tagged(q, 4, 100);
		run_killed((kill_plan){ point, 1, 1 });
		uint32_t a = pop_tag(q, NULL), b = pop_tag(q, NULL);
		assert_true((a == 3 && b == 4) || (a == 4 && b == 3));
		assert_int_equal(sk_queue_pop(q, NULL, 0, &(size_t){ 0 }, 0), -EAGAIN);
		assert_int_equal(sk_queue_stats_get(q, &st), 0);
		assert_int_equal(st.messages, 0);
		assert_int_equal(st.in_flight, 0);
	}

	/* A zero-copy producer killed after reserving, a consumer after peeking. */
	run_killed((kill_plan){ HOOK_FINISH, 1, 2 });
	push_tagged(q, 5, 10);
	assert_int_equal(pop_tag(q, NULL), 5);
	push_tagged(q, 6, 10);
	run_killed((kill_plan){ HOOK_FINISH, 1, 3 });
	assert_int_equal(pop_tag(q, NULL), 6);

	/* Killed holding the lock (in push and in pop): the next locker repairs. */
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	rec0 = st.recoveries;
	push_tagged(q, 7, 10);
	run_killed((kill_plan){ HOOK_LOCKED, 1, 4 });
	run_killed((kill_plan){ HOOK_LOCKED, 1, 1 });
	assert_int_equal(pop_tag(q, NULL), 7);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.recoveries, rec0 + 2);
	assert_int_equal(st.messages, 0);

	/* Killed between two stores of the positions (a pop has moved rhead,
	 * not head yet): the positions are still ordered, the next locker
	 * repairs, and the message the dead consumer was taking comes out. */
	push_tagged(q, 8, 10);
	push_tagged(q, 9, 10);
	run_killed((kill_plan){ HOOK_STORE, 1, 1 });
	assert_int_equal(pop_tag(q, NULL), 8);
	assert_int_equal(pop_tag(q, NULL), 9);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.recoveries, rec0 + 3);
	assert_int_equal(st.messages, 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

/* ---- the message limit and tasks (issue 15) ---- */

static int limited_producer(void *arg)
{
	(void)arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	int rc = sk_queue_push(q, "late", 4, 10000000000LL); /* full by count: waits for a pop */
	sk_queue_close(q);
	return rc == 0 ? 0 : 2;
}

/* sk_queue_open_with, sk_queue_shutdown_timed and sk_queue_segment: a
 * process holds the queue's lock (the sk_mutex at byte 256 of its control
 * block, docs/queue.md); the timed forms give up when told, the others wait
 * until it lets go; the stats peek from the handle needs no lock. */
static int hold_queue_lock(void *arg)
{
	int *fds = arg; /* [0]: write "held" here; [1]: read to let go */
	sk_segment *seg;
	if (sk_segment_open(qname, SK_RDWR, &seg))
		return 1;
	sk_mutex *m = (sk_mutex *)(void *)((uint8_t *)sk_segment_data(seg) + 256);
	if (sk_mutex_lock(m, -1))
		return 2;
	char c = 'h';
	if (write(fds[0], &c, 1) != 1 || read(fds[1], &c, 1) != 1)
		return 3;
	sk_mutex_unlock(m);
	sk_segment_close(seg);
	return 0;
}

static void test_timed_open_and_shutdown(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qtimed"));
	sk_queue *q, *o;
	assert_int_equal(sk_queue_create(qname, 4096, 512, NULL, &q), 0);
	assert_int_equal(sk_queue_push(q, "abc", 3, 0), 0);
	assert_int_equal(sk_queue_open_with(qname, SK_RDONLY, 0, &o), -EINVAL);
	assert_null(o);
	assert_int_equal(sk_queue_open_with(qname, 0x100, 0, &o), -EINVAL);
	assert_int_equal(sk_queue_open_with(qname, SK_OPEN_ANY_OWNER, 0, &o), 0);
	assert_string_equal(sk_queue_name(o), qname);
	sk_queue_close(o);
	assert_int_equal(sk_segment_kind(sk_queue_segment(q)), SK_KIND_QUEUE);
	assert_null(sk_queue_segment(NULL));
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	int fds[2] = { up[1], down[0] };
	pid_t holder = t_spawn(hold_queue_lock, fds);
	char c;
	assert_int_equal(read(up[0], &c, 1), 1); /* it holds the lock now */
	assert_int_equal(sk_queue_open_with(qname, 0, 0, &o), -EAGAIN);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_queue_open_with(qname, 0, 30000000, &o), -ETIMEDOUT);
	int64_t waited = t_now_ns() - t0;
	assert_true(waited >= 25000000 && waited < 5000000000);
	assert_int_equal(sk_queue_shutdown_timed(q, 0), -EAGAIN);
	assert_int_equal(sk_queue_shutdown_timed(q, 20000000), -ETIMEDOUT);
	/* Counters from the handle's own mapping, without the lock. */
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_peek(sk_queue_segment(q), &st), 0);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.closed, 0);
	assert_int_equal(write(down[1], "g", 1), 1); /* let go */
	int status;
	assert_int_equal(waitpid(holder, &status, 0), holder);
	t_assert_exit0(status);
	assert_int_equal(sk_queue_open_with(qname, 0, -1, &o), 0);
	assert_int_equal(sk_queue_shutdown_timed(o, -1), 0);
	assert_int_equal(sk_queue_stats_peek(sk_queue_segment(q), &st), 0);
	assert_int_equal(st.closed, 1); /* seen through the other handle */
	sk_queue_close(o);
	sk_queue_close(q);
	for (int i = 0; i < 2; i++) {
		close(up[i]);
		close(down[i]);
	}
	sk_segment_unlink(qname);
}

static void test_max_messages(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qmax"));
	sk_queue *q;
	sk_queue_config cfg = { .capacity = 1 << 16, .max_msg = 100, .max_messages = 3 };
	sk_queue_config bad = cfg;
	bad.resv[2] = 1;
	assert_int_equal(sk_queue_create_with(qname, &bad, NULL, &q), -EINVAL);
	assert_int_equal(sk_queue_create_with(qname, NULL, NULL, &q), -EINVAL);
	assert_int_equal(sk_queue_create_with(qname, &cfg, NULL, &q), 0);
	sk_queue_stats st;
	char buf[100];
	size_t len;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.max_messages, 3);
	assert_int_equal(sk_queue_push(q, "a", 1, 0), 0);
	void *w;
	sk_queue *r;
	assert_int_equal(sk_queue_open(qname, &r), 0);
	assert_int_equal(sk_queue_reserve(r, 1, &w, 0), 0); /* a message being written counts */
	assert_int_equal(sk_queue_push(q, "x", 1, 0), 0);
	assert_int_equal(sk_queue_push(q, "y", 1, 0), -EAGAIN);
	*(char *)w = 'b';
	assert_int_equal(sk_queue_commit(r), 0);
	sk_queue_close(r);
	assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
	assert_true(len == 1 && buf[0] == 'a');
	const void *m[3] = { "c", "d", "e" };
	size_t l[3] = { 1, 1, 1 };
	assert_int_equal(sk_queue_push_many(q, m, l, 3, 0), 1); /* as many as the limit lets in */
	assert_int_equal(sk_queue_push(q, "x", 1, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_queue_push(q, "x", 1, 50000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 49000000);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.messages, 3);
	assert_true(st.used < 100); /* the bytes were not the limit */
	/* Another process waits for room by count; a pop lets it in. */
	pid_t p = t_spawn(limited_producer, NULL);
	usleep(50000);
	assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
	assert_true(len == 1 && buf[0] == 'b'); /* reserved before "x" was pushed: out first */
	reap_ok(p);
	const char *want[] = { "x", "c", "late" };
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
		assert_memory_equal(buf, want[i], len);
	}
	sk_queue_close(q);
	sk_segment_unlink(qname);
	/* 0: no limit but the bytes. */
	cfg.max_messages = 0;
	assert_int_equal(sk_queue_create_with(qname, &cfg, NULL, &q), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(sk_queue_push(q, "z", 1, 0), 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

static int joiner(void *arg)
{
	(void)arg;
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	int rc = sk_queue_join(q, 10000000000LL);
	sk_queue_close(q);
	return rc == 0 ? 0 : 2;
}

static int consumer_without_task_done(void *arg)
{
	(void)arg;
	sk_queue *q;
	char buf[16];
	size_t len;
	if (sk_queue_open(qname, &q) || sk_queue_pop(q, buf, sizeof buf, &len, 0))
		return 1;
	raise(SIGKILL); /* between pop and task_done */
	return 2;
}

static void test_tasks_and_join(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qjoin"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, 4096, 100, NULL, &q), 0);
	assert_int_equal(sk_queue_join(q, 0), 0); /* nothing unfinished */
	assert_int_equal(sk_queue_task_done(q), -EINVAL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(sk_queue_push(q, "t", 1, 0), 0);
	void *w;
	assert_int_equal(sk_queue_reserve(q, 1, &w, 0), 0);
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), -EDEADLK); /* the handle holds a reserve */
	assert_int_equal(sk_queue_abort(q), 0);                 /* never published: not a task */
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.unfinished, 3);
	assert_int_equal(sk_queue_join(q, 0), -EAGAIN);
	int64_t t0 = t_now_ns();
	assert_int_equal(sk_queue_join(q, 50000000), -ETIMEDOUT);
	assert_true(t_now_ns() - t0 >= 49000000);
	/* A joiner in another process wakes when the last task is done. */
	pid_t j = t_spawn(joiner, NULL);
	char buf[16];
	size_t len;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
		usleep(20000);
		assert_int_equal(sk_queue_task_done(q), 0);
	}
	reap_ok(j);
	assert_int_equal(sk_queue_task_done(q), -EINVAL); /* more than were published */
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.unfinished, 0);
	/* A consumer killed between pop and task_done: the task stays unfinished
	 * (documented), join waits until its timeout. */
	assert_int_equal(sk_queue_push(q, "u", 1, 0), 0);
	assert_int_equal(t_fork(consumer_without_task_done, NULL) & 0x7f, SIGKILL);
	assert_int_equal(sk_queue_join(q, 20000000), -ETIMEDOUT);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.unfinished, 1);
	assert_int_equal(st.messages, 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

/* A reserve claims its message, not the queue: another handle pushes and
 * pops meanwhile, and messages come out in the order they were reserved. */
static void test_claims_publish_in_order(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qord"));
	sk_queue *a, *b;
	assert_int_equal(sk_queue_create(qname, 1 << 16, 1000, NULL, &a), 0);
	assert_int_equal(sk_queue_open(qname, &b), 0);
	void *w;
	assert_int_equal(sk_queue_reserve(a, 5, &w, 0), 0);
	assert_int_equal(sk_queue_push(b, "second", 6, 0), 0); /* no lock is held by a */
	char buf[100];
	size_t len;
	assert_int_equal(sk_queue_pop(b, buf, sizeof buf, &len, 0), -EAGAIN); /* waits behind the reserve */
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(b, &st), 0);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.in_flight, 1);
	memcpy(w, "first", 5);
	assert_int_equal(sk_queue_commit(a), 0);
	assert_int_equal(sk_queue_pop(b, buf, sizeof buf, &len, 0), 0);
	assert_memory_equal(buf, "first", 5);
	/* A peek gives its message back with unpeek: it is the next one out. */
	const void *p;
	assert_int_equal(sk_queue_peek(a, &p, &len, 0), 0);
	assert_memory_equal(p, "second", 6);
	assert_int_equal(sk_queue_push(b, "third", 5, 0), 0);
	assert_int_equal(sk_queue_unpeek(a), 0);
	assert_int_equal(sk_queue_pop(b, buf, sizeof buf, &len, 0), 0);
	assert_memory_equal(buf, "second", 6);
	assert_int_equal(sk_queue_pop(b, buf, sizeof buf, &len, 0), 0);
	assert_memory_equal(buf, "third", 5);
	sk_queue_close(b);
	sk_queue_close(a);
	sk_segment_unlink(qname);
}

/* ---- two sides, two locks (layout version 3) ---- */

/* A process that holds one side's lock for as long as the test wants: on 17
 * handles it reserves (or peeks), so that the 16 claims of that side are in
 * use and the 17th call holds the side's lock until its commit (release).
 * It tells the parent through fds[1] and finishes when fds[0] gives a byte
 * (fds[2]: peek rather than reserve; fds[3], fds[4]: the parent's ends). */
static int side_holder(void *arg)
{
	const int *fds = arg;
	int peek = fds[2];
	sk_queue *h[17];
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left behind when a test fails */
	close(fds[3]);                    /* the parent's ends */
	close(fds[4]);
	for (int i = 0; i < 17; i++)
		if (sk_queue_open(qname, &h[i]))
			return 1;
	for (int i = 0; i < 17; i++) {
		void *w;
		const void *p;
		size_t len;
		if (peek ? sk_queue_peek(h[i], &p, &len, 0) : sk_queue_reserve(h[i], 8, &w, 0))
			return 2;
		if (!peek)
			memcpy(w, "reserved", 8);
	}
	char c = 1;
	if (write(fds[1], &c, 1) != 1 || read(fds[0], &c, 1) != 1)
		return 3;
	/* The 17th holds the lock the others' commits (releases) need: first. */
	for (int i = 16; i >= 0; i--)
		if (peek ? sk_queue_release(h[i]) : sk_queue_commit(h[i]))
			return 4;
	for (int i = 0; i < 17; i++)
		sk_queue_close(h[i]);
	return 0;
}

/* While a producer holds the producers' lock, consumers take messages; while
 * a consumer holds the consumers' lock, producers push. (With one lock for
 * both, each of these calls would answer -EAGAIN.) */
static void test_sides_do_not_block_each_other(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qsides"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, 1 << 16, 100, NULL, &q), 0);
	for (uint32_t i = 0; i < 30; i++)
		push_tagged(q, i, 10);
	for (int peek = 0; peek < 2; peek++) {
		int go[2], ready[2];
		assert_int_equal(pipe(go), 0);
		assert_int_equal(pipe(ready), 0);
		int fds[5] = { go[0], ready[1], peek, go[1], ready[0] };
		pid_t holder = t_spawn(side_holder, fds);
		char c;
		assert_int_equal(read(ready[0], &c, 1), 1);
		sk_queue_stats st;
		sk_segment *view;
		assert_int_equal(sk_segment_open(qname, SK_RDONLY, &view), 0);
		assert_int_equal(sk_queue_stats_peek(view, &st), 0);
		assert_int_equal(st.in_flight, 16);
		sk_segment_close(view);
		uint8_t buf[100];
		size_t len;
		if (!peek) {
			/* The producers' lock is held: pops go on, a push must wait. */
			for (uint32_t i = 0; i < 10; i++)
				assert_int_equal(pop_tag(q, NULL), i);
			assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
			assert_int_equal(sk_queue_push(q, "x", 1, 0), -EAGAIN);
		} else {
			/* The consumers' lock is held: pushes go on, a pop must wait. */
			for (uint32_t i = 0; i < 10; i++)
				push_tagged(q, 100 + i, 10);
			assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), -EAGAIN);
		}
		assert_int_equal(write(go[1], &c, 1), 1);
		reap_ok(holder);
		close(go[0]), close(go[1]), close(ready[0]), close(ready[1]);
	}
	/* 30 pushed, 11 popped, 17 reserved and committed, 17 peeked and released,
	 * 10 pushed: 29 left, in order. */
	sk_queue_stats st;
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.messages, 29);
	assert_int_equal(st.in_flight, 0);
	uint8_t buf[100];
	size_t len;
	for (int i = 0; i < 29; i++)
		assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
	assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), -EAGAIN);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

/* A process that opens the queue, waits for the parent's word, then stops
 * for good holding a side's lock (where the lock is held and the state
 * loaded) in a push (op 0) or a pop (op 1), after telling the parent. */
static int pause_fd = -1;

static void pause_hook(sk_queue *q, int point)
{
	(void)q;
	if (point != HOOK_LOCKED)
		return;
	char c = 'p';
	if (write(pause_fd, &c, 1) != 1)
		_exit(5);
	for (;;)
		pause();
}

typedef struct paused {
	pid_t pid;
	int op, go[2], told[2];
} paused;

static int paused_child(void *arg)
{
	paused *pc = arg;
	sk_queue *q;
	uint8_t buf[H_BIG * 2];
	size_t len;
	char c = 'o';
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* not left behind when a test fails */
	if (sk_queue_open(qname, &q) || write(pc->told[1], &c, 1) != 1 || read(pc->go[0], &c, 1) != 1)
		return 1;
	pause_fd = pc->told[1];
	sk__queue_hook = pause_hook;
	if (pc->op == 0)
		sk_queue_push(q, "paused", 6, -1);
	else
		sk_queue_pop(q, buf, sizeof buf, &len, -1);
	return 3; /* not paused: the test fails */
}

/* Starts the process; returns once it has opened the queue. */
static void paused_start(paused *pc, int op)
{
	pc->op = op;
	assert_int_equal(pipe(pc->go), 0);
	assert_int_equal(pipe(pc->told), 0);
	pc->pid = t_spawn(paused_child, pc);
	char c;
	assert_int_equal(read(pc->told[0], &c, 1), 1);
	assert_int_equal(c, 'o');
}

/* Lets it go on; returns once it holds the lock. */
static void paused_hold(paused *pc)
{
	char c = 'g';
	assert_int_equal(write(pc->go[1], &c, 1), 1);
	assert_int_equal(read(pc->told[0], &c, 1), 1);
	assert_int_equal(c, 'p');
	close(pc->go[0]), close(pc->go[1]), close(pc->told[0]), close(pc->told[1]);
}

static void kill_reap(pid_t pid)
{
	int st;
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* A repair of one side after its lock holder died leaves the message count
 * (entered - taken) to a recount, which needs both locks: when the other
 * one is held, the count stays marked stale until someone holds both (here
 * sk_queue_stats_get). The repairer never waits for the other lock: a
 * consumer repairing its side while a producer holds the producers' lock
 * goes on at once. */
static void test_count_recounted_after_repairs(void **state)
{
	(void)state;
	snprintf(qname, sizeof qname, "%s", t_name("qstale"));
	sk_queue *q;
	sk_queue_stats st;
	sk_segment *view;
	assert_int_equal(sk_queue_create(qname, 1 << 18, H_BIG * 2, NULL, &q), 0);
	assert_int_equal(sk_segment_open(qname, SK_RDONLY, &view), 0);
	const uint8_t *ctl = sk_segment_data(view);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	uint64_t rec0 = st.recoveries;

	push_tagged(q, 1, 100);
	/* A producer dies copying a big message in (its record counts as being
	 * written), another holding the producers' lock; a consumer then stops
	 * holding the consumers' lock. */
	paused cons;
	paused_start(&cons, 1);
	run_killed((kill_plan){ HOOK_COPY_IN, 1, 0 });
	run_killed((kill_plan){ HOOK_LOCKED, 1, 4 });
	paused_hold(&cons);
	/* The next producer repairs the producers' side (the dead claim's record
	 * is given up) but cannot recount: the count is stale, one too high. */
	push_tagged(q, 2, 100);
	assert_int_equal(*(const volatile uint32_t *)(ctl + C_STALE), 1);
	assert_int_equal(sk_queue_stats_peek(view, &st), 0);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.recoveries, rec0 + 1);
	/* Once both locks can be had, the count is recounted. */
	kill_reap(cons.pid);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.recoveries, rec0 + 2);
	assert_int_equal(*(const volatile uint32_t *)(ctl + C_STALE), 0);
	assert_int_equal(pop_tag(q, NULL), 1);
	assert_int_equal(pop_tag(q, NULL), 2);

	/* A consumer dies holding its lock while a producer holds the producers':
	 * the next consumer repairs its side and takes a message at once. */
	push_tagged(q, 3, 10);
	paused prod;
	paused_start(&prod, 0);
	run_killed((kill_plan){ HOOK_LOCKED, 1, 1 });
	paused_hold(&prod);
	uint8_t buf[100];
	size_t len;
	assert_int_equal(sk_queue_pop(q, buf, sizeof buf, &len, 0), 0);
	assert_int_equal(buf[0], 3);
	assert_int_equal(*(const volatile uint32_t *)(ctl + C_STALE), 1);
	kill_reap(prod.pid);
	assert_int_equal(sk_queue_stats_get(q, &st), 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.recoveries, rec0 + 4);
	assert_int_equal(*(const volatile uint32_t *)(ctl + C_STALE), 0);
	sk_segment_close(view);
	sk_queue_close(q);
	sk_segment_unlink(qname);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basics),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_blocking_and_shutdown),
		cmocka_unit_test(test_zero_copy_and_batches),
		cmocka_unit_test(test_four_by_four),
		cmocka_unit_test(test_kill_producers_and_consumers),
		cmocka_unit_test(test_kill_copies_outside_the_lock),
		cmocka_unit_test(test_damaged_state),
		cmocka_unit_test(test_hostile_peer_at_hook_points),
		cmocka_unit_test(test_hostile_peer_flipping),
		cmocka_unit_test(test_kill_at_chosen_points),
		cmocka_unit_test(test_max_messages),
		cmocka_unit_test(test_timed_open_and_shutdown),
		cmocka_unit_test(test_tasks_and_join),
		cmocka_unit_test(test_claims_publish_in_order),
		cmocka_unit_test(test_sides_do_not_block_each_other),
		cmocka_unit_test(test_count_recounted_after_repairs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
