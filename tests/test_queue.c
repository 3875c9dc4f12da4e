/*
 * test_queue.c: the message queue. Order, sizes, blocking and timeouts,
 * shutdown, zero-copy and batches; 4 producers x 4 consumers x 250,000
 * checksummed messages (PROCS and ITER in the environment scale it); 200
 * rounds of producers and consumers SIGKILLed at random points while others
 * keep going; damaged indices and records.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

typedef struct chaos {
	int64_t bad, popped_by_survivor, pushed_by_survivor;
	int32_t stop;
} chaos;

static chaos *CH;

/* Pushes with every path, forever (until killed or told to stop). */
static int chaos_producer(int id)
{
	sk_queue *q;
	if (sk_queue_open(qname, &q))
		return 1;
	uint8_t buf[600];
	uint64_t seed = (uint64_t)getpid();
	for (uint32_t k = 0; !__atomic_load_n(&CH->stop, __ATOMIC_SEQ_CST); k++) {
		size_t n = make_msg(buf, (uint32_t)id, k, 500);
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
		if (rc && rc != -ETIMEDOUT && rc != -EAGAIN)
			return 2;
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
	uint8_t buf[8192];
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
		if (rc && rc != -ETIMEDOUT && rc != -EAGAIN)
			return 2;
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

static void test_kill_producers_and_consumers(void **state)
{
	(void)state;
	CH = mmap(NULL, sizeof *CH, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(CH, 0, sizeof *CH);
	snprintf(qname, sizeof qname, "%s", t_name("qkill"));
	sk_queue *q;
	assert_int_equal(sk_queue_create(qname, 1 << 14, 1024, NULL, &q), 0);
	/* The survivors run through every round. */
	pid_t sp = spawn_role(chaos_producer, 1), sc = spawn_role(chaos_consumer, 1);
	uint64_t seed = 77;
	int rounds = env_int("ROUNDS", 200);
	for (int r = 0; r < rounds; r++) {
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
	/* head (offset 64 of the control block) past tail. */
	uint64_t bad = 4096;
	fseek(f, 4096 + 64, SEEK_SET);
	fwrite(&bad, 8, 1, f);
	fflush(f);
	assert_int_equal(sk_queue_open(qname, &r), SK_ECORRUPT);
	uint64_t zero = 0;
	fseek(f, 4096 + 64, SEEK_SET);
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
	/* tail and wtail (80 and 88) beyond the ring. */
	uint64_t far = 1 << 20;
	fseek(f, 4096 + 80, SEEK_SET);
	fwrite(&far, 8, 1, f);
	fwrite(&far, 8, 1, f);
	fflush(f);
	assert_int_equal(sk_queue_push(r, "x", 1, 0), SK_ECORRUPT);
	fclose(f);
	sk_queue_close(r);
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
		cmocka_unit_test(test_damaged_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
