/*
 * test_hostile.c: the hostile-peer stress test (issue 13).
 *
 * Victim processes use every kind of shared object at once: a queue (push,
 * pop, batches, zero-copy reserve/commit and peek/release), the locks (mutex,
 * rwlock, semaphore, barrier, event, condition variable), a locked and a raw
 * value, arrays (plain, locked, atomics) and bit arrays (single bits, ranges,
 * counts, searches, and/or/xor/not). Meanwhile a peer process writes into
 * those segments: random bytes at random offsets, plausible values (a field
 * moved by a few bytes, a stale copy of what it held a moment ago, a record
 * header moved elsewhere in the ring with its check word kept, the owner word
 * of a dead or a live thread), forged descriptors with a valid checksum, and
 * one word rewritten in a tight loop; between attacks it restores what it
 * spoiled, so that the victims get deep into every path again.
 *
 * What a victim may get: an error code, or wrong data. What fails the test:
 * - a crash of any kind (a signal, an ASan or UBSan report);
 * - an access outside the victim's mappings. This binary is linked with
 *   --wrap=mmap and --wrap=munmap: every file mapping the library makes is
 *   placed between two GUARD-sized PROT_NONE areas, so that an access up to
 *   1 MiB before or after a segment faults instead of reaching a neighbouring
 *   mapping; the segments are sized so that the queue's ring, the arrays' and
 *   the bit arrays' data end exactly at the end of their mapping. A victim's
 *   buffers for pop end at a guard page too. The fault handler records the
 *   address and whether it lies in a guard;
 * - a result outside the function's contract that a caller would trust: a
 *   popped length larger than the buffer, a batch larger than asked for, a
 *   zero-copy pointer or length outside the ring, a bit index past the end, a
 *   count larger than its range, a return code that sk_strerror does not know;
 * - a wait past its timeout. Every call gets a finite timeout (0 to 300 ms)
 *   and is timed; it fails when it returns more than SLACK_MS (default 500
 *   ms) after its timeout, not counting the time the victim spent waiting for
 *   a CPU (the run delay in /proc/thread-self/schedstat), so that a loaded
 *   machine does not make it fail while a wait that restarts its timeout, a
 *   livelock or a sleep without a deadline does;
 * - no progress: the parent kills and reports a victim that is inside one
 *   call for longer than its timeout plus STALL_MS (default 5000 ms), or
 *   that makes no call for STALL_MS.
 *
 * Environment: PROCS victims (default 3), SECONDS of run time (default 3;
 * none when only ITER is given), ITER calls per victim (0: no limit), SEED
 * (printed; a failing run is replayed with it: the peer's writes and each
 * victim's calls follow from it, their interleaving does not), SLACK_MS,
 * STALL_MS, HOSTILE_QUIET=1 to leave out the summary of counts, PEER_MODES
 * (a comma-separated list of the peer's attacks to use: scribble, mutate,
 * record, lockword, stale, forge, freeze, hammer, restore), HOSTILE_DEBUG=1
 * to print the control words the peer learnt to be live and its flickers of
 * the queue's words.
 */
#include "helpers.h"
#include "internal.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- guarded mappings (the link wraps mmap and munmap) ---- */

#define GUARD      ((size_t)1 << 20)
#define MAX_GUARDS 1024

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

static struct {
	uintptr_t base;
	size_t len;
} guarded[MAX_GUARDS];
static uintptr_t last_map_base; /* the last guarded mapping made */
static size_t last_map_len;

static size_t page_up(size_t n)
{
	return (n + SK__PAGE - 1) / SK__PAGE * SK__PAGE;
}

/* A file mapping placed anywhere gets GUARD bytes of PROT_NONE on each side. */
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (addr || fd < 0 || !(flags & MAP_SHARED) || (flags & MAP_FIXED) || !len)
		return __real_mmap(addr, len, prot, flags, fd, off);
	size_t span = GUARD + page_up(len) + GUARD;
	uint8_t *r = __real_mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED)
		return MAP_FAILED;
	void *p = __real_mmap(r + GUARD, len, prot, flags | MAP_FIXED, fd, off);
	if (p == MAP_FAILED) {
		int e = errno;
		__real_munmap(r, span);
		errno = e;
		return MAP_FAILED;
	}
	for (int i = 0; i < MAX_GUARDS; i++)
		if (!guarded[i].base) {
			guarded[i].base = (uintptr_t)p;
			guarded[i].len = len;
			last_map_base = (uintptr_t)p;
			last_map_len = len;
			return p;
		}
	static const char full[] = "test_hostile: more than MAX_GUARDS guarded mappings at once\n";
	if (write(2, full, sizeof full - 1) < 0)
		_exit(90);
	abort();
}

int __wrap_munmap(void *addr, size_t len)
{
	for (int i = 0; i < MAX_GUARDS; i++)
		if (guarded[i].base && guarded[i].base == (uintptr_t)addr && guarded[i].len == len) {
			guarded[i].base = 0;
			return __real_munmap((uint8_t *)addr - GUARD, GUARD + page_up(len) + GUARD);
		}
	return __real_munmap(addr, len);
}

/* Where a fault address lies: -1 in the guard before a mapping, 1 in the one
 * after it, 0 elsewhere. Async-signal-safe. */
static int guard_of(uintptr_t a, uintptr_t *base, size_t *len)
{
	for (int i = 0; i < MAX_GUARDS; i++) {
		uintptr_t b = guarded[i].base;
		if (!b)
			continue;
		*base = b;
		*len = guarded[i].len;
		if (a >= b - GUARD && a < b)
			return -1;
		if (a >= b + page_up(guarded[i].len) && a < b + page_up(guarded[i].len) + GUARD)
			return 1;
	}
	*base = 0;
	*len = 0;
	return 0;
}

/* ---- the objects ---- */

enum obj {
	O_QUEUE,
	O_MUTEX,
	O_RWLOCK,
	O_SEM,
	O_BARRIER,
	O_EVENT,
	O_COND,
	O_VALUE,
	O_RAW,
	O_ARR_PLAIN,
	O_ARR_LOCKED,
	O_ARR_ATOMIC,
	O_BITS_A,
	O_BITS_B,
	O_BITS_C,
	NOBJ
};
static const char *const obj_tag[NOBJ] = { "queue",       "mutex",       "rwlock", "sem",      "barrier",
					   "event",       "cond",        "value",  "rawvalue", "array",
					   "lockedarray", "atomicarray", "bitsA",  "bitsB",    "bitsC" };

#define Q_CAP     ((uint64_t)16 * SK__PAGE - SK__QUEUE_CTL) /* the ring ends where the mapping ends */
#define Q_MAX_MSG ((size_t)32768)
#define ARR_BYTES ((size_t)32768)
#define NBITS     ((uint64_t)3 * SK__PAGE * 8)
#define PBUF      ((size_t)4 * Q_MAX_MSG) /* a victim's buffer for pops; it ends at a guard */
#define PARTIES   2u
/* shmkit/queue.h: calls without a timeout (open, commit, abort, release,
 * unpeek) wait for the queue's lock at most 10 s. */
#define Q_UNTIMED_NS INT64_C(10000000000)
#define MAX_PROCS    64
#define LOG_N        256

/* ---- what is counted ---- */

enum kind {
	K_Q_PUSH,
	K_Q_POP,
	K_Q_PUSH_MANY,
	K_Q_POP_MANY,
	K_Q_RESERVE,
	K_Q_COMMIT,
	K_Q_ABORT,
	K_Q_PEEK,
	K_Q_RELEASE,
	K_Q_UNPEEK,
	K_M_LOCK,
	K_M_TRYLOCK,
	K_M_CONSISTENT,
	K_M_UNLOCK,
	K_M_STATE,
	K_RW_RDLOCK,
	K_RW_RDUNLOCK,
	K_RW_WRLOCK,
	K_RW_WRUNLOCK,
	K_RW_STATE,
	K_SEM_WAIT,
	K_SEM_POST,
	K_SEM_VALUE,
	K_BAR_WAIT,
	K_BAR_ARRIVE,
	K_BAR_AWAIT,
	K_BAR_RELEASE,
	K_BAR_LEAVE,
	K_BAR_RESET,
	K_EV_SET,
	K_EV_CLEAR,
	K_EV_WAIT,
	K_EV_IS_SET,
	K_C_WAIT,
	K_C_SIGNAL,
	K_C_BROADCAST,
	K_V_GET,
	K_V_SET,
	K_V_ADD,
	K_V_CAS,
	K_V_LOCK,
	K_V_CONSISTENT,
	K_V_UNLOCK,
	K_RAW_GET,
	K_RAW_SET,
	K_RAW_ADD,
	K_RAW_CAS,
	K_A_PLAIN,
	K_A_LOCK,
	K_A_CONSISTENT,
	K_A_UNLOCK,
	K_AT_LOAD,
	K_AT_STORE,
	K_AT_XCHG,
	K_AT_CAS,
	K_AT_ADD,
	K_AT_OR,
	K_AT_AND,
	K_B_SET,
	K_B_CLEAR,
	K_B_FLIP,
	K_B_TEST,
	K_B_TAS,
	K_B_TAC,
	K_B_SET_RANGE,
	K_B_CLEAR_RANGE,
	K_B_COUNT,
	K_B_FIND_SET,
	K_B_FIND_CLEAR,
	K_B_AND,
	K_B_OR,
	K_B_XOR,
	K_B_NOT,
	K_CLOSE,
	K_OPEN, /* K_OPEN + obj: opening that object by name */
	NKINDS = K_OPEN + NOBJ
};

static const char *const kind_name[K_OPEN] = {
	[K_Q_PUSH] = "queue_push",
	[K_Q_POP] = "queue_pop",
	[K_Q_PUSH_MANY] = "queue_push_many",
	[K_Q_POP_MANY] = "queue_pop_many",
	[K_Q_RESERVE] = "queue_reserve",
	[K_Q_COMMIT] = "queue_commit",
	[K_Q_ABORT] = "queue_abort",
	[K_Q_PEEK] = "queue_peek",
	[K_Q_RELEASE] = "queue_release",
	[K_Q_UNPEEK] = "queue_unpeek",
	[K_M_LOCK] = "mutex_lock",
	[K_M_TRYLOCK] = "mutex_trylock",
	[K_M_CONSISTENT] = "mutex_consistent",
	[K_M_UNLOCK] = "mutex_unlock",
	[K_M_STATE] = "mutex_state",
	[K_RW_RDLOCK] = "rwlock_rdlock",
	[K_RW_RDUNLOCK] = "rwlock_rdunlock",
	[K_RW_WRLOCK] = "rwlock_wrlock",
	[K_RW_WRUNLOCK] = "rwlock_wrunlock",
	[K_RW_STATE] = "rwlock_state",
	[K_SEM_WAIT] = "sem_wait",
	[K_SEM_POST] = "sem_post",
	[K_SEM_VALUE] = "sem_value",
	[K_BAR_WAIT] = "barrier_wait",
	[K_BAR_ARRIVE] = "barrier_arrive",
	[K_BAR_AWAIT] = "barrier_await",
	[K_BAR_RELEASE] = "barrier_release",
	[K_BAR_LEAVE] = "barrier_leave",
	[K_BAR_RESET] = "barrier_reset",
	[K_EV_SET] = "event_set",
	[K_EV_CLEAR] = "event_clear",
	[K_EV_WAIT] = "event_wait",
	[K_EV_IS_SET] = "event_is_set",
	[K_C_WAIT] = "cond_wait",
	[K_C_SIGNAL] = "cond_signal",
	[K_C_BROADCAST] = "cond_broadcast",
	[K_V_GET] = "value_get",
	[K_V_SET] = "value_set",
	[K_V_ADD] = "value_add",
	[K_V_CAS] = "value_cas",
	[K_V_LOCK] = "value_lock",
	[K_V_CONSISTENT] = "value_consistent",
	[K_V_UNLOCK] = "value_unlock",
	[K_RAW_GET] = "rawvalue_get",
	[K_RAW_SET] = "rawvalue_set",
	[K_RAW_ADD] = "rawvalue_add",
	[K_RAW_CAS] = "rawvalue_cas",
	[K_A_PLAIN] = "array_plain",
	[K_A_LOCK] = "array_lock",
	[K_A_CONSISTENT] = "array_consistent",
	[K_A_UNLOCK] = "array_unlock",
	[K_AT_LOAD] = "atomic_load",
	[K_AT_STORE] = "atomic_store",
	[K_AT_XCHG] = "atomic_exchange",
	[K_AT_CAS] = "atomic_cas",
	[K_AT_ADD] = "fetch_add",
	[K_AT_OR] = "fetch_or",
	[K_AT_AND] = "fetch_and",
	[K_B_SET] = "bits_set",
	[K_B_CLEAR] = "bits_clear",
	[K_B_FLIP] = "bits_flip",
	[K_B_TEST] = "bits_test",
	[K_B_TAS] = "bits_test_and_set",
	[K_B_TAC] = "bits_test_and_clear",
	[K_B_SET_RANGE] = "bits_set_range",
	[K_B_CLEAR_RANGE] = "bits_clear_range",
	[K_B_COUNT] = "bits_count",
	[K_B_FIND_SET] = "bits_find_next_set",
	[K_B_FIND_CLEAR] = "bits_find_next_clear",
	[K_B_AND] = "bits_and",
	[K_B_OR] = "bits_or",
	[K_B_XOR] = "bits_xor",
	[K_B_NOT] = "bits_not",
	[K_CLOSE] = "close",
};

static const char *kname(int k)
{
	static char buf[8][48];
	static unsigned n;
	if (k >= 0 && k < K_OPEN)
		return kind_name[k];
	if (k >= K_OPEN && k < NKINDS) {
		char *b = buf[n++ % 8];
		snprintf(b, sizeof buf[0], "open_%s", obj_tag[k - K_OPEN]);
		return b;
	}
	return "none";
}

/* Return codes counted one by one; the last bucket is everything else. */
static const struct {
	int code;
	const char *name;
} codes[] = {
	{ 0, "ok" },
	{ -ETIMEDOUT, "ETIMEDOUT" },
	{ -EAGAIN, "EAGAIN" },
	{ -EBUSY, "EBUSY" },
	{ -EPERM, "EPERM" },
	{ -EDEADLK, "EDEADLK" },
	{ -EINVAL, "EINVAL" },
	{ -EMSGSIZE, "EMSGSIZE" },
	{ -EOVERFLOW, "EOVERFLOW" },
	{ -ERANGE, "ERANGE" },
	{ -ENOENT, "ENOENT" },
	{ -EACCES, "EACCES" },
	{ SK_ECORRUPT, "SK_ECORRUPT" },
	{ SK_ECHECKSUM, "SK_ECHECKSUM" },
	{ SK_EVERSION, "SK_EVERSION" },
	{ SK_EKIND, "SK_EKIND" },
	{ SK_ETYPE, "SK_ETYPE" },
	{ SK_ETRUNCATED, "SK_ETRUNCATED" },
	{ SK_EFOREIGN, "SK_EFOREIGN" },
	{ SK_ETOOSMALL, "SK_ETOOSMALL" },
	{ SK_EOWNERDEAD, "SK_EOWNERDEAD" },
	{ SK_ENOTRECOVERABLE, "SK_ENOTRECOVERABLE" },
	{ SK_ECLOSED, "SK_ECLOSED" },
	{ SK_EFROZEN, "SK_EFROZEN" },
	{ SK_EBROKEN, "SK_EBROKEN" },
	{ SK_ENOTHELD, "SK_ENOTHELD" },
	{ SK_EREADONLY, "SK_EREADONLY" },
	{ SK_ENOTFOUND, "SK_ENOTFOUND" },
};
enum { NCODES = sizeof codes / sizeof codes[0] + 1 };

/* Codes that say "this is damaged": what the test counts as corruption detected. */
static bool corrupt_code(int c)
{
	return c == SK_ECORRUPT || c == SK_ECHECKSUM || c == SK_EVERSION || c == SK_EKIND || c == SK_ETYPE ||
	       c == SK_ETRUNCATED || c == SK_EFOREIGN || c == SK_ETOOSMALL;
}

/* ---- what the processes share (an anonymous mapping the peer never writes) ---- */

typedef struct vstats {
	uint64_t ops[NKINDS];
	uint64_t codes[NKINDS][NCODES];
	uint64_t bad[NKINDS];     /* wrong data found by the victim's own checks */
	int64_t late_max[NKINDS]; /* ns past the timeout, less the time spent waiting for a CPU */
	int64_t over_max[NKINDS]; /* ns past the timeout, as measured */
} vstats;

typedef struct vstatus {
	int32_t pid;
	int32_t kind; /* the call in progress; -1 between calls */
	int32_t last_kind;
	int64_t op_start, op_timeout, last_progress;
	uint64_t nops;
	int32_t done, failed;
	int32_t fault_sig, fault_where;
	uint64_t fault_addr, fault_base, fault_len;
	char msg[640];
	vstats st;
} vstatus;

enum mode { P_SCRIBBLE, P_MUTATE, P_RECORD, P_LOCK, P_STALE, P_FORGE, P_FREEZE, P_HAMMER, P_RESTORE, P_HEAL, NMODES };
static const char *const mode_name[NMODES] = { "scribble", "mutate", "record", "lockword", "stale",
					       "forge",    "freeze", "hammer", "restore",  "heal" };

typedef struct peer_entry {
	uint64_t seq;
	int32_t obj, mode;
	uint64_t off;
	uint32_t len;
	uint8_t bytes[16];
} peer_entry;

typedef struct board {
	int32_t stop;
	uint64_t seen_ok[NOBJ], seen_bad[NOBJ]; /* victims' results per object: the peer heals what stays broken */
	uint64_t peer_writes[NMODES];
	uint64_t peer_seq;
	peer_entry log[LOG_N];
	vstatus v[MAX_PROCS];
} board;

/* ---- configuration ---- */

enum { SELF_NONE, SELF_STRAY_AFTER, SELF_STRAY_BEFORE, SELF_LATE, SELF_HANG };

typedef struct config {
	int procs;
	int64_t run_ns; /* 0: no time limit */
	uint64_t iter;  /* calls per victim; 0: no limit */
	uint64_t seed;
	int64_t slack_ns, stall_ns;
	int peers;
	int selftest;   /* SELF_*: each victim misbehaves on purpose, to show the test sees it */
	unsigned modes; /* the peer's attacks (bits of 1 << P_*) */
	bool quiet;
} config;

static config C;
static board *B;
static char names[NOBJ][80];
static uint64_t rng;

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return dflt;
	return strtoull(s, NULL, 0);
}

static config config_from_env(void)
{
	config c = { 0 };
	c.procs = (int)env_u64("PROCS", 3);
	if (c.procs < 1)
		c.procs = 1;
	if (c.procs > MAX_PROCS)
		c.procs = MAX_PROCS;
	c.iter = env_u64("ITER", 0);
	uint64_t secs = env_u64("SECONDS", c.iter ? 0 : 3);
	c.run_ns = (int64_t)secs * 1000000000;
	c.seed = env_u64("SEED", 0);
	if (!c.seed)
		c.seed = (uint64_t)t_now_ns() ^ (uint64_t)getpid() << 32;
	c.slack_ns = (int64_t)env_u64("SLACK_MS", 500) * 1000000;
	c.stall_ns = (int64_t)env_u64("STALL_MS", 5000) * 1000000;
	c.peers = 1;
	c.quiet = env_u64("HOSTILE_QUIET", 0) != 0;
	c.modes = ~0u;
	const char *m = getenv("PEER_MODES"); /* a comma-separated list of attack names */
	if (m && *m) {
		c.modes = 0;
		for (int i = 0; i < NMODES; i++) {
			const char *at = strstr(m, mode_name[i]);
			size_t n = strlen(mode_name[i]);
			if (at && (at == m || at[-1] == ',') && (at[n] == 0 || at[n] == ','))
				c.modes |= 1u << i;
		}
	}
	return c;
}

static uint64_t mix(uint64_t seed, uint64_t role)
{
	uint64_t x = seed + role * UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x ? x : 1;
}

static uint64_t rnd(void)
{
	return t_rand(&rng);
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void nap_ns(int64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- a victim: every call timed and checked ---- */

static vstatus *V;
static int cur_obj = -1; /* the object the calls in progress use */
static int sched_fd = -1;
static int64_t delay0;
static uint8_t *pbuf; /* PBUF bytes between guards */

static struct {
	bool ok[NOBJ];
	uintptr_t base[NOBJ]; /* this victim's mapping of each object */
	size_t len[NOBJ];
	sk_segment *seg[NOBJ]; /* the named primitives' segments */
	sk_queue *q;
	sk_mutex *m;
	sk_rwlock *rw;
	sk_sem *sem;
	sk_barrier *bar;
	sk_event *ev;
	sk_cond *cond;
	sk_value *val, *raw;
	sk_array *arr[3]; /* plain, locked, atomics */
	sk_bits *bits[3];
	uint64_t sent;
} H;

/* Time this thread spent runnable but waiting for a CPU, ns. */
static int64_t run_delay(void)
{
	char b[128];
	if (sched_fd < 0)
		return 0;
	ssize_t n = pread(sched_fd, b, sizeof b - 1, 0);
	if (n <= 0)
		return 0;
	b[n] = 0;
	char *sp = strchr(b, ' ');
	return sp ? strtoll(sp + 1, NULL, 10) : 0;
}

static void violation(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void violation(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(V->msg, sizeof V->msg, fmt, ap);
	va_end(ap);
	__atomic_store_n(&V->failed, 1, __ATOMIC_SEQ_CST);
	_exit(3);
}

static void op_begin(int kind, int64_t timeout)
{
	delay0 = run_delay();
	V->op_timeout = timeout;
	V->op_start = t_now_ns();
	V->last_kind = kind;
	__atomic_store_n(&V->kind, kind, __ATOMIC_SEQ_CST);
}

static int code_index(int64_t rc)
{
	if (rc >= 0)
		return 0;
	for (int i = 1; i < NCODES - 1; i++)
		if (codes[i].code == rc)
			return i;
	return NCODES - 1;
}

static int64_t op_end(int kind, int64_t timeout, int64_t rc)
{
	int64_t t1 = t_now_ns();
	int64_t over = t1 - V->op_start - (timeout > 0 ? timeout : 0);
	int64_t waited = run_delay() - delay0;
	int64_t late = over - (waited > 0 ? waited : 0);
	vstats *s = &V->st;
	s->ops[kind]++;
	s->codes[kind][code_index(rc)]++;
	if (over > s->over_max[kind])
		s->over_max[kind] = over;
	if (late > s->late_max[kind])
		s->late_max[kind] = late;
	__atomic_store_n(&V->kind, -1, __ATOMIC_SEQ_CST);
	if (cur_obj >= 0 && (rc >= 0 || corrupt_code((int)rc)))
		__atomic_fetch_add(rc >= 0 ? &B->seen_ok[cur_obj] : &B->seen_bad[cur_obj], 1, __ATOMIC_RELAXED);
	V->nops++;
	V->last_progress = t1;
	if (rc < 0 && (rc < INT32_MIN || !strcmp(sk_strerror((int)rc), "unknown error")))
		violation("%s returned %" PRId64 ", a code sk_strerror does not know", kname(kind), rc);
	if (late > C.slack_ns)
		violation("%s returned %.1f ms after its timeout of %.3f ms (%.1f ms of that time it waited for a "
			  "CPU; the slack is %.0f ms)",
			  kname(kind), (double)over / 1e6, (double)timeout / 1e6, (double)waited / 1e6,
			  (double)C.slack_ns / 1e6);
	return rc;
}

/* Times one call: CALL(kind, timeout, expression) is the expression's value. */
#define CALL(kind, timeout, expr) (op_begin((kind), (timeout)), op_end((kind), (timeout), (int64_t)(expr)))

static int64_t pick_timeout(void)
{
	uint64_t r = below(1000);
	if (r < 350)
		return 0;
	if (r < 700)
		return 100000;
	if (r < 900)
		return 1000000;
	if (r < 985)
		return 10000000;
	if (r < 998)
		return 50000000;
	return 300000000;
}

/* Now and then a victim holds what it got for a while (a lock, a claim on
 * a message), so that the peer writes while it is held. */
static void hold_briefly(void)
{
	if (below(8) == 0)
		nap_ns(20000 + (int64_t)below(300000));
}

/* Messages: a 16-byte head {magic, length, tag} (when there is room) and a
 * pattern that follows from the tag, so that a consumer sees wrong data. */
#define MSG_MAGIC 0x4c545348u

static uint8_t msg_byte(uint64_t tag, size_t i, size_t len)
{
	return (uint8_t)(tag * 157 + i * 131 + len);
}

static void msg_fill(uint8_t *p, size_t len)
{
	uint64_t tag = 0;
	size_t i = 0;
	if (len >= 16) {
		tag = (uint64_t)(V - B->v) << 48 | ++H.sent;
		uint32_t h[2] = { MSG_MAGIC, (uint32_t)len };
		memcpy(p, h, 8);
		memcpy(p + 8, &tag, 8);
		i = 16;
	}
	for (; i < len; i++)
		p[i] = msg_byte(tag, i, len);
}

static bool msg_ok(const uint8_t *p, size_t len)
{
	uint64_t tag = 0;
	size_t i = 0;
	if (len >= 16) {
		uint32_t h[2];
		memcpy(h, p, 8);
		if (h[0] != MSG_MAGIC || h[1] != len)
			return false;
		memcpy(&tag, p + 8, 8);
		i = 16;
	}
	for (; i < len; i++)
		if (p[i] != msg_byte(tag, i, len))
			return false;
	return true;
}

static size_t msg_len(void)
{
	uint64_t r = below(100);
	if (r < 60)
		return below(65);
	if (r < 90)
		return below(2049);
	return below(Q_MAX_MSG + 1);
}

/* A pointer and length handed out by zero-copy calls must lie in the ring. */
static void ring_check(int kind, const void *ptr, size_t len)
{
	uintptr_t lo = H.base[O_QUEUE] + SK__HEADER_SIZE + SK__QUEUE_CTL, hi = H.base[O_QUEUE] + H.len[O_QUEUE];
	uintptr_t p = (uintptr_t)ptr;
	if (p < lo || p > hi || len > hi - p)
		violation("%s handed out %zu bytes at %#" PRIxPTR ", not inside the ring [%#" PRIxPTR ", %#" PRIxPTR
			  ")",
			  kname(kind), len, p, lo, hi);
}

static void queue_op(void)
{
	sk_queue *q = H.q;
	int64_t t = pick_timeout(), rc;
	size_t len;
	switch (below(10)) {
	case 0:
	case 1: {
		len = msg_len();
		msg_fill(pbuf, len);
		CALL(K_Q_PUSH, t, sk_queue_push(q, pbuf, len, t));
		break;
	}
	case 2:
	case 3: {
		size_t bs = below(4) ? Q_MAX_MSG : below(64);
		uint8_t *dst = pbuf + PBUF - bs; /* ends at the guard */
		len = SIZE_MAX;
		rc = CALL(K_Q_POP, t, sk_queue_pop(q, dst, bs, &len, t));
		if (rc == 0 && len > bs)
			violation("queue_pop returned a %zu-byte message into a %zu-byte buffer", len, bs);
		if (rc == 0 && !msg_ok(dst, len))
			V->st.bad[K_Q_POP]++;
		if (rc > 0)
			violation("queue_pop returned %" PRId64, rc);
		break;
	}
	case 4: {
		int n = 1 + (int)below(8);
		const void *msgs[8];
		size_t lens[8];
		uint8_t *p = pbuf;
		for (int i = 0; i < n; i++) {
			lens[i] = below(4) ? below(257) : below(PBUF / 8 + 1);
			msg_fill(p, lens[i]);
			msgs[i] = p;
			p += lens[i];
		}
		rc = CALL(K_Q_PUSH_MANY, t, sk_queue_push_many(q, msgs, lens, n, t));
		if (rc == 0 || rc > n)
			violation("queue_push_many of %d returned %" PRId64, n, rc);
		break;
	}
	case 5: {
		int max = 1 + (int)below(16);
		size_t bs = below(PBUF + 1), lens[16];
		uint8_t *dst = pbuf + PBUF - bs;
		rc = CALL(K_Q_POP_MANY, t, sk_queue_pop_many(q, dst, bs, lens, max, t));
		if (rc == 0 || rc > max)
			violation("queue_pop_many of at most %d returned %" PRId64, max, rc);
		size_t off = 0;
		for (int i = 0; i < (int)rc; i++) {
			if (lens[i] > bs - off)
				violation("queue_pop_many: message %d of %" PRId64 " (%zu bytes at %zu) ends past the "
					  "%zu-byte buffer",
					  i, rc, lens[i], off, bs);
			if (!msg_ok(dst + off, lens[i]))
				V->st.bad[K_Q_POP_MANY]++;
			off += lens[i];
		}
		break;
	}
	case 6:
	case 7: {
		len = msg_len();
		void *ptr = NULL;
		rc = CALL(K_Q_RESERVE, t, sk_queue_reserve(q, len, &ptr, t));
		if (rc > 0)
			violation("queue_reserve returned %" PRId64, rc);
		if (rc)
			break;
		ring_check(K_Q_RESERVE, ptr, len);
		msg_fill(ptr, len); /* touches every byte handed out */
		hold_briefly();
		if (below(6)) {
			if (CALL(K_Q_COMMIT, Q_UNTIMED_NS, sk_queue_commit(q)))
				CALL(K_Q_ABORT, Q_UNTIMED_NS, sk_queue_abort(q)); /* whatever the handle still holds */
		} else {
			CALL(K_Q_ABORT, Q_UNTIMED_NS, sk_queue_abort(q));
		}
		break;
	}
	default: {
		const void *ptr = NULL;
		len = 0;
		rc = CALL(K_Q_PEEK, t, sk_queue_peek(q, &ptr, &len, t));
		if (rc > 0)
			violation("queue_peek returned %" PRId64, rc);
		if (rc)
			break;
		ring_check(K_Q_PEEK, ptr, len);
		if (!msg_ok(ptr, len)) /* reads every byte handed out */
			V->st.bad[K_Q_PEEK]++;
		hold_briefly();
		if (below(4)) {
			if (CALL(K_Q_RELEASE, Q_UNTIMED_NS, sk_queue_release(q)))
				CALL(K_Q_UNPEEK, Q_UNTIMED_NS, sk_queue_unpeek(q));
		} else {
			CALL(K_Q_UNPEEK, Q_UNTIMED_NS, sk_queue_unpeek(q));
		}
		break;
	}
	}
}

static void mutex_op(void)
{
	int64_t t = pick_timeout(), rc;
	switch (below(5)) {
	case 0:
	case 1:
	case 2: rc = CALL(K_M_LOCK, t, sk_mutex_lock(H.m, t)); break;
	case 3: rc = CALL(K_M_TRYLOCK, 0, sk_mutex_trylock(H.m)); break;
	default: {
		sk_lock_state st;
		CALL(K_M_STATE, 0, sk_mutex_state(H.m, &st));
		return;
	}
	}
	if (rc > 0)
		violation("mutex lock returned %" PRId64, rc);
	if (rc == SK_EOWNERDEAD)
		CALL(K_M_CONSISTENT, 0, sk_mutex_consistent(H.m));
	if (rc == 0 || rc == SK_EOWNERDEAD) {
		hold_briefly();
		CALL(K_M_UNLOCK, 0, sk_mutex_unlock(H.m));
	}
}

static void rwlock_op(void)
{
	int64_t t = pick_timeout(), rc;
	switch (below(5)) {
	case 0:
	case 1:
		rc = CALL(K_RW_RDLOCK, t, sk_rwlock_rdlock(H.rw, t));
		if (rc == 0 || rc == SK_EOWNERDEAD) {
			hold_briefly();
			CALL(K_RW_RDUNLOCK, 0, sk_rwlock_rdunlock(H.rw));
		}
		break;
	case 2:
	case 3:
		rc = CALL(K_RW_WRLOCK, t, sk_rwlock_wrlock(H.rw, t));
		if (rc == 0 || rc == SK_EOWNERDEAD) {
			hold_briefly();
			CALL(K_RW_WRUNLOCK, 0, sk_rwlock_wrunlock(H.rw));
		}
		break;
	default: {
		sk_lock_state st;
		CALL(K_RW_STATE, 0, sk_rwlock_state(H.rw, &st));
		break;
	}
	}
}

static void sem_op(void)
{
	int64_t t = pick_timeout(), rc;
	switch (below(3)) {
	case 0:
		rc = CALL(K_SEM_WAIT, t, sk_sem_wait(H.sem, t));
		if (rc == 0) {
			hold_briefly();
			CALL(K_SEM_POST, 0, sk_sem_post(H.sem));
		}
		break;
	case 1: CALL(K_SEM_POST, 0, sk_sem_post(H.sem)); break;
	default: CALL(K_SEM_VALUE, 0, sk_sem_value(H.sem)); break;
	}
}

static void barrier_op(void)
{
	int64_t t = pick_timeout(), rc;
	if (below(2)) {
		rc = CALL(K_BAR_WAIT, t, sk_barrier_wait(H.bar, t));
		if (rc >= 0xffff)
			violation("barrier_wait returned index %" PRId64, rc);
	} else {
		sk_barrier_ticket tk = { 0, 0 };
		rc = CALL(K_BAR_ARRIVE, t, sk_barrier_arrive(H.bar, SK_BARRIER_HOLD, t, &tk));
		if (rc >= 0xffff || (rc >= 0 && tk.index != (uint32_t)rc))
			violation("barrier_arrive returned index %" PRId64 " with ticket index %u", rc, tk.index);
		if (rc >= 0 && CALL(K_BAR_RELEASE, 0, sk_barrier_release(H.bar, &tk)) == -EINVAL &&
		    CALL(K_BAR_AWAIT, t, sk_barrier_await(H.bar, &tk, t)) == -ETIMEDOUT)
			CALL(K_BAR_LEAVE, 0, sk_barrier_leave(H.bar, &tk, below(2) ? SK_BARRIER_BREAK : 0));
	}
	if (rc == SK_EBROKEN && below(2))
		CALL(K_BAR_RESET, 0, sk_barrier_reset(H.bar));
}

static void event_op(void)
{
	int64_t t = pick_timeout(), rc;
	switch (below(4)) {
	case 0: CALL(K_EV_SET, 0, sk_event_set(H.ev)); break;
	case 1: CALL(K_EV_CLEAR, 0, sk_event_clear(H.ev)); break;
	case 2: CALL(K_EV_WAIT, t, sk_event_wait(H.ev, t)); break;
	default:
		rc = CALL(K_EV_IS_SET, 0, sk_event_is_set(H.ev));
		if (rc > 1)
			violation("event_is_set returned %" PRId64, rc);
		break;
	}
}

static void cond_op(void)
{
	int64_t t = pick_timeout(), rc;
	switch (below(4)) {
	case 0:
	case 1:
		rc = CALL(K_M_LOCK, t, sk_mutex_lock(H.m, t));
		if (rc == SK_EOWNERDEAD)
			CALL(K_M_CONSISTENT, 0, sk_mutex_consistent(H.m));
		if (rc != 0 && rc != SK_EOWNERDEAD)
			break;
		t = pick_timeout();
		rc = CALL(K_C_WAIT, t, sk_cond_wait(H.cond, H.m, t));
		if (rc == SK_EOWNERDEAD)
			CALL(K_M_CONSISTENT, 0, sk_mutex_consistent(H.m));
		if (sk_mutex_held_by_me(H.m) == 1)
			CALL(K_M_UNLOCK, 0, sk_mutex_unlock(H.m));
		break;
	case 2: CALL(K_C_SIGNAL, 0, sk_cond_signal(H.cond)); break;
	default: CALL(K_C_BROADCAST, 0, sk_cond_broadcast(H.cond)); break;
	}
}

static void value_op(void)
{
	int64_t t = pick_timeout(), rc, x = (int64_t)below(8), y = (int64_t)below(8), old = 0;
	switch (below(5)) {
	case 0: CALL(K_V_GET, t, sk_value_get_timed(H.val, &x, t)); break;
	case 1: CALL(K_V_SET, t, sk_value_set_timed(H.val, &x, t)); break;
	case 2: CALL(K_V_ADD, t, sk_value_add_timed(H.val, &y, &old, t)); break;
	case 3:
		rc = CALL(K_V_CAS, t, sk_value_cas_timed(H.val, &x, &y, t));
		if (rc > (SK_VALUE_SWAPPED | SK_VALUE_OWNERDEAD))
			violation("value_cas returned %" PRId64, rc);
		break;
	default:
		rc = CALL(K_V_LOCK, t, sk_value_lock(H.val, t));
		if (rc == SK_EOWNERDEAD)
			CALL(K_V_CONSISTENT, 0, sk_value_consistent(H.val));
		if (rc == 0 || rc == SK_EOWNERDEAD) {
			volatile uint8_t *p = sk_value_ptr(H.val);
			uint8_t mark = (uint8_t)rnd();
			p[0] = mark;
			hold_briefly();
			if (p[0] != mark)
				V->st.bad[K_V_LOCK]++;
			CALL(K_V_UNLOCK, 0, sk_value_unlock(H.val));
		}
		break;
	}
}

static void raw_op(void)
{
	double x = (double)below(8), y = 1.0, old;
	switch (below(4)) {
	case 0: CALL(K_RAW_GET, 0, sk_value_get_timed(H.raw, &x, 0)); break;
	case 1: CALL(K_RAW_SET, 0, sk_value_set_timed(H.raw, &x, 0)); break;
	case 2: CALL(K_RAW_ADD, 0, sk_value_add_timed(H.raw, &y, &old, 0)); break;
	default: {
		int64_t rc = CALL(K_RAW_CAS, 0, sk_value_cas_timed(H.raw, &x, &y, 0));
		if (rc > (SK_VALUE_SWAPPED | SK_VALUE_OWNERDEAD))
			violation("rawvalue_cas returned %" PRId64, rc);
		break;
	}
	}
}

/* Reads every byte of a plain array and writes a stretch of it. */
static int plain_work(sk_array *a)
{
	uint8_t *d = sk_array_data(a);
	size_t n = (size_t)sk_array_nbytes(a);
	if (!d || !n)
		return 0;
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += d[i];
	size_t at = (size_t)below(n), k = (size_t)below(512);
	if (k > n - at)
		k = n - at;
	memset(d + at, (int)(sum & 0xff), k);
	return 0;
}

static void array_op(int which)
{
	sk_array *a = H.arr[which];
	int64_t t = pick_timeout(), rc;
	if (which == 0) {
		CALL(K_A_PLAIN, 0, plain_work(a));
		return;
	}
	if (which == 1) {
		rc = CALL(K_A_LOCK, t, sk_array_lock(a, t));
		if (rc == SK_EOWNERDEAD)
			CALL(K_A_CONSISTENT, 0, sk_mutex_consistent(sk_array_mutex(a)));
		if (rc != 0 && rc != SK_EOWNERDEAD)
			return;
		uint8_t *d = sk_array_data(a);
		size_t n = (size_t)sk_array_nbytes(a), at = n ? (size_t)below(n) : 0, k = 64;
		if (k > n - at)
			k = n - at;
		uint8_t mark = (uint8_t)rnd();
		if (k)
			memset(d + at, mark, k);
		hold_briefly();
		for (size_t i = 0; i < k; i++)
			if (d[at + i] != mark) {
				V->st.bad[K_A_LOCK]++;
				break;
			}
		CALL(K_A_UNLOCK, 0, sk_array_unlock(a));
		return;
	}
	uint64_t n = sk_array_size(a), i = below(64) ? below(n) : n + below(3);
	int64_t v = (int64_t)rnd(), old = 0, e = (int64_t)below(4);
	int k;
	switch (below(7)) {
	case 0: k = K_AT_LOAD, rc = CALL(k, 0, sk_array_atomic_load(a, i, &old)); break;
	case 1: k = K_AT_STORE, rc = CALL(k, 0, sk_array_atomic_store(a, i, v)); break;
	case 2: k = K_AT_XCHG, rc = CALL(k, 0, sk_array_atomic_exchange(a, i, v, &old)); break;
	case 3: k = K_AT_CAS, rc = CALL(k, 0, sk_array_atomic_cas(a, i, &e, v)); break;
	case 4: k = K_AT_ADD, rc = CALL(k, 0, sk_array_fetch_add(a, i, 1, &old)); break;
	case 5: k = K_AT_OR, rc = CALL(k, 0, sk_array_fetch_or(a, i, v, &old)); break;
	default: k = K_AT_AND, rc = CALL(k, 0, sk_array_fetch_and(a, i, v, &old)); break;
	}
	if (i >= n && rc >= 0)
		violation("%s accepted index %" PRIu64 " of an array of %" PRIu64, kname(k), i, n);
	if (rc > (k == K_AT_CAS ? 1 : 0))
		violation("%s returned %" PRId64, kname(k), rc);
}

static void bits_op(int which)
{
	sk_bits *b = H.bits[which];
	uint64_t n = sk_bits_len(b), i = below(64) ? below(n) : n + below(2);
	uint64_t lo = below(n + 1), hi = lo + below(n - lo + 1);
	int64_t rc;
	int k;
	switch (below(15)) {
	case 0: k = K_B_SET, rc = CALL(k, 0, sk_bits_set(b, i)); break;
	case 1: k = K_B_CLEAR, rc = CALL(k, 0, sk_bits_clear(b, i)); break;
	case 2: k = K_B_FLIP, rc = CALL(k, 0, sk_bits_flip(b, i)); break;
	case 3: k = K_B_TEST, rc = CALL(k, 0, sk_bits_test(b, i)); break;
	case 4: k = K_B_TAS, rc = CALL(k, 0, sk_bits_test_and_set(b, i)); break;
	case 5: k = K_B_TAC, rc = CALL(k, 0, sk_bits_test_and_clear(b, i)); break;
	case 6: k = K_B_SET_RANGE, rc = CALL(k, 0, sk_bits_set_range(b, lo, hi)); break;
	case 7: k = K_B_CLEAR_RANGE, rc = CALL(k, 0, sk_bits_clear_range(b, lo, hi)); break;
	case 8:
		rc = CALL(K_B_COUNT, 0, sk_bits_count(b, lo, hi));
		if (rc < 0 || (uint64_t)rc > hi - lo)
			violation("bits_count of [%" PRIu64 ", %" PRIu64 ") returned %" PRId64, lo, hi, rc);
		return;
	case 9:
	case 10:
		k = below(2) ? K_B_FIND_SET : K_B_FIND_CLEAR;
		rc = CALL(k, 0, k == K_B_FIND_SET ? sk_bits_find_next_set(b, lo) : sk_bits_find_next_clear(b, lo));
		if (rc != SK_ENOTFOUND && (rc < (int64_t)lo || (uint64_t)rc >= n))
			violation("%s from %" PRIu64 " of %" PRIu64 " bits returned %" PRId64, kname(k), lo, n, rc);
		return;
	default: {
		bool all = H.ok[O_BITS_A] && H.ok[O_BITS_B] && H.ok[O_BITS_C];
		if (!all)
			return;
		sk_bits *x = H.bits[(which + 1) % 3], *y = H.bits[(which + 2) % 3];
		switch (below(4)) {
		case 0: rc = CALL(K_B_AND, 0, sk_bits_and(b, x, y)); break;
		case 1: rc = CALL(K_B_OR, 0, sk_bits_or(b, x, y)); break;
		case 2: rc = CALL(K_B_XOR, 0, sk_bits_xor(b, x, y)); break;
		default: rc = CALL(K_B_NOT, 0, sk_bits_not(b, x)); break;
		}
		if (rc > 0)
			violation("a bulk bit operation returned %" PRId64, rc);
		return;
	}
	}
	bool ranged = k == K_B_SET_RANGE || k == K_B_CLEAR_RANGE;
	if (!ranged && i >= n && rc >= 0)
		violation("%s accepted bit %" PRIu64 " of %" PRIu64, kname(k), i, n);
	if (rc > ((k == K_B_TEST || k == K_B_TAS || k == K_B_TAC) ? 1 : 0))
		violation("%s returned %" PRId64, kname(k), rc);
}

/* ---- opening and closing by name ---- */

static void close_obj(int o)
{
	if (!H.ok[o])
		return;
	H.ok[o] = false;
	switch (o) {
	case O_QUEUE: CALL(K_CLOSE, Q_UNTIMED_NS, sk_queue_close(H.q)); break;
	case O_VALUE: CALL(K_CLOSE, 0, sk_value_close(H.val)); break;
	case O_RAW: CALL(K_CLOSE, 0, sk_value_close(H.raw)); break;
	case O_ARR_PLAIN:
	case O_ARR_LOCKED:
	case O_ARR_ATOMIC: CALL(K_CLOSE, 0, sk_array_close(H.arr[o - O_ARR_PLAIN])); break;
	case O_BITS_A:
	case O_BITS_B:
	case O_BITS_C: CALL(K_CLOSE, 0, sk_bits_close(H.bits[o - O_BITS_A])); break;
	default: CALL(K_CLOSE, 0, sk_segment_close(H.seg[o])); break;
	}
}

static int open_any(int o)
{
	const char *n = names[o];
	switch (o) {
	case O_QUEUE: return sk_queue_open(n, &H.q);
	case O_MUTEX: return sk_mutex_open(n, &H.seg[o], &H.m);
	case O_RWLOCK: return sk_rwlock_open(n, &H.seg[o], &H.rw);
	case O_SEM: return sk_sem_open(n, &H.seg[o], &H.sem);
	case O_BARRIER: return sk_barrier_open(n, &H.seg[o], &H.bar);
	case O_EVENT: return sk_event_open(n, &H.seg[o], &H.ev);
	case O_COND: return sk_cond_open(n, &H.seg[o], &H.cond);
	case O_VALUE: return sk_value_open(n, SK_RDWR, &H.val);
	case O_RAW: return sk_value_open(n, SK_RDWR, &H.raw);
	case O_ARR_PLAIN:
	case O_ARR_LOCKED:
	case O_ARR_ATOMIC: return sk_array_open(n, SK_RDWR, &H.arr[o - O_ARR_PLAIN]);
	default: return sk_bits_open(n, SK_RDWR, &H.bits[o - O_BITS_A]);
	}
}

static void open_obj(int o)
{
	last_map_base = 0;
	last_map_len = 0;
	int64_t t = o == O_QUEUE ? Q_UNTIMED_NS : 0;
	int64_t rc = CALL(K_OPEN + o, t, open_any(o));
	if (rc > 0)
		violation("%s returned %" PRId64, kname(K_OPEN + o), rc);
	H.ok[o] = rc == 0;
	if (rc)
		return;
	H.base[o] = last_map_base;
	H.len[o] = last_map_len;
	if (!H.base[o])
		violation("%s made no guarded mapping: the guards do not work", kname(K_OPEN + o));
}

/* ---- faults ---- */

static struct sigaction old_segv, old_bus;
static uint8_t altstack[1 << 16];

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	uintptr_t a = (uintptr_t)si->si_addr, base;
	size_t len;
	if (V) {
		V->fault_where = guard_of(a, &base, &len);
		V->fault_base = base;
		V->fault_len = len;
		V->fault_addr = a;
		__atomic_store_n(&V->fault_sig, sig, __ATOMIC_SEQ_CST);
	}
	void *bt[48];
	int n = backtrace(bt, 48);
	backtrace_symbols_fd(bt, n, 2);
	/* Back to what was there (the sanitizers' report, or death by the
	 * signal): the faulting access runs again and faults again. */
	sigaction(sig, sig == SIGBUS ? &old_bus : &old_segv, NULL);
}

/* Every child: dies with the parent, and a crash kills it (the test
 * framework's handlers, inherited through fork, would have the child go on
 * running the parent's tests). */
static void child_init(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		_exit(99);
	const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
}

static void catch_faults(void)
{
	void *bt[2];
	backtrace(bt, 2); /* loads the unwinder now, not inside the handler */
	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
	sigaltstack(&ss, NULL);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

/* A private buffer of n bytes (whole pages) between two guards. */
static uint8_t *guarded_buffer(size_t n)
{
	uint8_t *r =
	    __real_mmap(NULL, GUARD + n + GUARD, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r == MAP_FAILED || mprotect(r + GUARD, n, PROT_READ | PROT_WRITE))
		violation("no guarded buffer: %s", strerror(errno));
	for (int i = 0; i < MAX_GUARDS; i++)
		if (!guarded[i].base) {
			guarded[i].base = (uintptr_t)(r + GUARD);
			guarded[i].len = n;
			break;
		}
	return r + GUARD;
}

static int victim_main(void *arg)
{
	int idx = (int)(intptr_t)arg;
	V = &B->v[idx];
	V->pid = getpid();
	V->kind = -1;
	V->last_progress = t_now_ns();
	rng = mix(C.seed, 1000 + (uint64_t)idx);
	child_init();
	catch_faults();
	sched_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
	pbuf = guarded_buffer(PBUF);
	for (int o = 0; o < NOBJ; o++)
		open_obj(o);
	switch (C.selftest) {
	case SELF_STRAY_AFTER:
	case SELF_STRAY_BEFORE: {
		/* What a library read one byte outside the queue's mapping would do. */
		volatile uint8_t *p = (uint8_t *)(H.ok[O_QUEUE] ? H.base[O_QUEUE] : (uintptr_t)pbuf);
		size_t len = H.ok[O_QUEUE] ? H.len[O_QUEUE] : PBUF;
		op_begin(K_Q_POP, 0);
		return C.selftest == SELF_STRAY_AFTER ? p[len] : p[-1];
	}
	case SELF_LATE:
		/* A wait that overstays its timeout of 1 ms by 3 slacks. */
		CALL(K_EV_WAIT, 1000000, (nap_ns(1000000 + 3 * C.slack_ns), 0));
		return 0;
	case SELF_HANG:
		op_begin(K_EV_WAIT, 1000000); /* and never returns */
		for (;;)
			pause();
	}
	while (!__atomic_load_n(&B->stop, __ATOMIC_SEQ_CST) && (!C.iter || V->nops < C.iter)) {
		uint64_t r = below(1000);
		if (r < 10) { /* reopen one object: its descriptor and state are validated again */
			int o = (int)below(NOBJ);
			close_obj(o);
			cur_obj = o;
			open_obj(o);
			cur_obj = -1;
			continue;
		}
		if (r < 40) { /* try again to open one that failed to open */
			int o = (int)below(NOBJ);
			cur_obj = o;
			if (!H.ok[o])
				open_obj(o);
			cur_obj = -1;
			continue;
		}
		r = below(100);
		cur_obj = r < 30   ? O_QUEUE
			  : r < 38 ? O_MUTEX
			  : r < 44 ? O_RWLOCK
			  : r < 48 ? O_SEM
			  : r < 52 ? O_BARRIER
			  : r < 56 ? O_EVENT
			  : r < 60 ? O_COND
			  : r < 66 ? O_VALUE
			  : r < 70 ? O_RAW
				   : -1;
		if (r < 30) {
			if (H.ok[O_QUEUE])
				queue_op();
		} else if (r < 38) {
			if (H.ok[O_MUTEX])
				mutex_op();
		} else if (r < 44) {
			if (H.ok[O_RWLOCK])
				rwlock_op();
		} else if (r < 48) {
			if (H.ok[O_SEM])
				sem_op();
		} else if (r < 52) {
			if (H.ok[O_BARRIER])
				barrier_op();
		} else if (r < 56) {
			if (H.ok[O_EVENT])
				event_op();
		} else if (r < 60) {
			if (H.ok[O_COND] && H.ok[O_MUTEX])
				cond_op();
		} else if (r < 66) {
			if (H.ok[O_VALUE])
				value_op();
		} else if (r < 70) {
			if (H.ok[O_RAW])
				raw_op();
		} else if (r < 85) {
			int w = (int)below(3);
			cur_obj = O_ARR_PLAIN + w;
			if (H.ok[O_ARR_PLAIN + w])
				array_op(w);
		} else {
			int w = (int)below(3);
			cur_obj = O_BITS_A + w;
			if (H.ok[O_BITS_A + w])
				bits_op(w);
		}
		cur_obj = -1;
	}
	for (int o = 0; o < NOBJ; o++)
		close_obj(o);
	V->done = 1;
	return 0;
}

/* ---- the peer ---- */

typedef struct target {
	uint8_t *base; /* the parent's mapping, inherited */
	size_t len;
	size_t ctl_off, ctl_len;   /* control state: a queue's control block, a primitive, a value, a lock */
	size_t data_off, data_len; /* data: the ring, the element, the array, the bits */
	uint8_t *pristine;         /* the whole mapping as created */
} target;

static target T[NOBJ];
static sk_segment *raw[NOBJ];

/* The mutexes in the segments, found at creation by their magic and
 * version (docs/format.md, sk_mutex version 2): object and offset. */
#define MUTEX_HEAD (UINT64_C(0x584d4b53) | UINT64_C(2) << 32)
#define W_TID      UINT64_C(0x003fffff)
#define W_DIED     (UINT64_C(1) << 29)
#define W_NOTREC   UINT64_C(0x40000000)
#define W_WAITERS  (UINT64_C(1) << 31)
#define PAD_LEN    0xffffffffu

static struct {
	int obj;
	size_t off;
} mutexes[16];
static int nmutexes;

static uint64_t own_word;  /* the peer's own owner word: a live holder */
static uint64_t dead_word; /* pid namespace and thread id of a thread that has ended */
static struct {
	int obj;
	size_t off;
	uint64_t v;
} hist[512]; /* words seen a moment ago, for writing them back stale */
static unsigned nhist;
static uint64_t held_words[16]; /* owner words of victims seen holding a lock */
static unsigned nheld;
static uint32_t rec_keys[8] = { 0x9e3779b9u }; /* length ^ check of queue records (learnt) */
static unsigned nkeys = 1;
static uint64_t qblock[16]; /* a copy of the queue's first 128 control bytes, for writing back */
static bool have_qblock;

/* Control words seen changing between two looks: the live state (positions,
 * counts, lock words), learnt without knowing any layout. */
#define HOT_WORDS 1024 /* 4-byte words */
static uint32_t *prev_ctl[NOBJ];
static uint64_t hot[NOBJ][HOT_WORDS / 64];
static unsigned nhot[NOBJ];
static uint64_t posw[NOBJ][HOT_WORDS / 2 / 64]; /* 8-byte words that grew by multiples of 8: positions */
static unsigned npos[NOBJ];
static bool pick_hot(int o, size_t *off);
static bool pick_pos(int o, size_t *off);

enum { R_DESC, R_LIVE, R_CTL, R_DATA };

static int pick_obj(void)
{
	static const uint8_t weight[NOBJ] = { 30, 4, 4, 4, 4, 4, 4, 6, 4, 4, 6, 4, 6, 6, 6 };
	unsigned total = 0;
	for (int o = 0; o < NOBJ; o++)
		total += weight[o];
	unsigned r = (unsigned)below(total);
	for (int o = 0; o < NOBJ; o++) {
		if (r < weight[o])
			return o;
		r -= weight[o];
	}
	return O_QUEUE;
}

static int pick_region(void)
{
	uint64_t r = below(100);
	return r < 10 ? R_DESC : r < 20 ? R_LIVE : r < 70 ? R_CTL : R_DATA;
}

/* An offset of a width-byte field (1, 4 or 8, aligned) in a region of o. */
static size_t pick_off(int o, int region, size_t width)
{
	const target *t = &T[o];
	size_t lo, n;
	switch (region) {
	case R_DESC: lo = 0, n = SK__DESC_SIZE; break;
	case R_LIVE: {
		uint64_t r = below(10);
		if (r < 4) /* where a locked array keeps its mutex */
			lo = SK__LOCK_OFFSET, n = 128;
		else if (r < 5)
			lo = SK__FREEZE_OFFSET, n = 8;
		else
			lo = SK__DESC_SIZE, n = SK__HEADER_SIZE - SK__DESC_SIZE;
		break;
	}
	case R_CTL: lo = t->ctl_off, n = t->ctl_len; break;
	default: lo = t->data_off, n = t->data_len; break;
	}
	if (n < width)
		lo = 0, n = SK__DESC_SIZE;
	size_t off = lo + (size_t)below(n - width + 1);
	return off - off % width;
}

static uint64_t peekw(int o, size_t off, size_t width)
{
	uint8_t *p = T[o].base + off;
	if (width == 8)
		return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	if (width == 4)
		return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void log_write(int o, size_t off, const void *src, size_t n, int mode)
{
	uint64_t s = __atomic_fetch_add(&B->peer_seq, 1, __ATOMIC_RELAXED);
	peer_entry *e = &B->log[s % LOG_N];
	e->seq = s;
	e->obj = o;
	e->mode = mode;
	e->off = off;
	e->len = (uint32_t)n;
	memset(e->bytes, 0, sizeof e->bytes);
	memcpy(e->bytes, src, n < sizeof e->bytes ? n : sizeof e->bytes);
	__atomic_fetch_add(&B->peer_writes[mode], 1, __ATOMIC_RELAXED);
}

/* Writes n bytes at off of o: a whole aligned word at once where it is one,
 * byte by byte otherwise; 8-byte words for a longer aligned block. */
static void poke(int o, size_t off, const void *src, size_t n, int mode)
{
	uint8_t *p = T[o].base + off;
	const uint8_t *s = src;
	if (off > T[o].len || n > T[o].len - off)
		abort(); /* the peer's own bug */
	if (n % 8 == 0 && off % 8 == 0) {
		for (size_t i = 0; i < n; i += 8) {
			uint64_t v;
			memcpy(&v, s + i, 8);
			__atomic_store_n((uint64_t *)(p + i), v, __ATOMIC_SEQ_CST);
		}
	} else if (n == 4 && off % 4 == 0) {
		uint32_t v;
		memcpy(&v, s, 4);
		__atomic_store_n((uint32_t *)p, v, __ATOMIC_SEQ_CST);
	} else {
		for (size_t i = 0; i < n; i++)
			__atomic_store_n(p + i, s[i], __ATOMIC_SEQ_CST);
	}
	log_write(o, off, src, n, mode);
}

static const uint64_t sizes[] = { 8,
				  16,
				  24,
				  4096,
				  Q_CAP - 8,
				  Q_CAP,
				  Q_CAP + 8,
				  2 * Q_CAP,
				  Q_MAX_MSG,
				  Q_MAX_MSG + 1,
				  Q_MAX_MSG + 8,
				  NBITS,
				  ARR_BYTES,
				  0x7fffffff,
				  0x80000000,
				  0xfffffff8,
				  0xffffffff,
				  UINT64_C(1) << 32,
				  UINT64_C(1) << 63 };

/* A plausible new value for the width-byte field at off that holds v. */
static uint64_t mutated(int o, size_t width, uint64_t v)
{
	uint64_t r = rnd(), k = (r >> 8) % 64;
	switch (r % 12) {
	case 0: return v + 1 + k;
	case 1: return v - 1 - k;
	case 2: return v + 8 * (1 + k % 16);
	case 3: return v - 8 * (1 + k % 16);
	case 4: return v ^ (UINT64_C(1) << (k % (8 * width)));
	case 5: return 0;
	case 6: return ~UINT64_C(0);
	case 7: return peekw(o, pick_off(o, R_CTL, width), width); /* another field's value */
	case 8: return sizes[k % (sizeof sizes / sizeof sizes[0])];
	case 9: return v + Q_CAP; /* a queue position one lap on: the same place in the ring */
	case 10: return v - Q_CAP;
	default: return rnd();
	}
}

static void scribble(int o)
{
	size_t n = 1 + (size_t)below(8), off = pick_off(o, pick_region(), 1);
	uint8_t b[8];
	if (n > T[o].len - off)
		n = T[o].len - off;
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)rnd();
	poke(o, off, b, n, P_SCRIBBLE);
}

static void mutate_word(int o)
{
	size_t w = below(2) ? 8 : 4, off = pick_off(o, pick_region(), w);
	if (below(2))
		pick_hot(o, &off);
	uint64_t v = mutated(o, w, peekw(o, off, w));
	poke(o, off, &v, w, P_MUTATE);
}

static bool known_key(uint32_t k)
{
	for (unsigned i = 0; i < nkeys; i++)
		if (rec_keys[i] == k)
			return true;
	return false;
}

/* Record headers are {length, length ^ key} with a few keys (the record's
 * state): learn the keys that recur among plausible headers in the ring. */
static void learn_keys(void)
{
	static struct {
		uint32_t key, n;
	} seen[32];
	for (int i = 0; i < 32; i++) {
		size_t off = pick_off(O_QUEUE, R_DATA, 8);
		uint32_t a = (uint32_t)peekw(O_QUEUE, off, 4), b = (uint32_t)peekw(O_QUEUE, off + 4, 4);
		if ((a > Q_MAX_MSG && a != PAD_LEN) || (a == 0 && b == 0) || known_key(a ^ b))
			continue;
		int slot = -1;
		for (int j = 0; j < 32 && slot < 0; j++)
			if (seen[j].n && seen[j].key == (a ^ b))
				slot = j;
		if (slot < 0) {
			slot = (int)below(32);
			seen[slot].key = a ^ b;
			seen[slot].n = 0;
		}
		if (++seen[slot].n >= 3 && nkeys < 8)
			rec_keys[nkeys++] = a ^ b;
	}
}

static void record_attack(void)
{
	const int o = O_QUEUE;
	const target *t = &T[o];
	learn_keys();
	size_t off = 0;
	uint32_t len = 0, key = 0;
	bool found = false;
	for (int i = 0; i < 256 && !found; i++) {
		off = pick_off(o, R_DATA, 8);
		len = (uint32_t)peekw(o, off, 4);
		key = len ^ (uint32_t)peekw(o, off + 4, 4);
		found = (len <= Q_MAX_MSG || len == PAD_LEN) && known_key(key);
	}
	if (!found) {
		mutate_word(o);
		return;
	}
	uint32_t h[2] = { len, len ^ key }, nl;
	size_t to = off;
	switch (below(5)) {
	case 0: /* the header copied elsewhere: near it, or anywhere */
		if (below(2)) {
			to = pick_off(o, R_DATA, 8);
		} else {
			int64_t d = 8 * ((int64_t)below(17) - 8);
			int64_t x = (int64_t)off + d;
			if (x >= (int64_t)t->data_off && x + 8 <= (int64_t)(t->data_off + t->data_len))
				to = (size_t)x;
		}
		break;
	case 1: /* another length, the check kept valid */
		nl = below(2) ? len + 8 * (uint32_t)(1 + below(8)) : len - 8 * (uint32_t)(1 + below(8));
		if (below(4) == 0)
			nl = len + 1 + (uint32_t)below(7);
		h[0] = nl;
		h[1] = nl ^ key;
		break;
	case 2:
		nl = (uint32_t)(below(3) == 0 ? PAD_LEN : below(2) ? Q_MAX_MSG : Q_MAX_MSG + 8 * below(4));
		h[0] = nl;
		h[1] = nl ^ key;
		break;
	case 3: /* another state */
		key = rec_keys[below(nkeys)];
		h[1] = len ^ key;
		break;
	default: { /* a copy where the next record would start */
		uint64_t next = off + 8 + (len == PAD_LEN ? 0 : ((uint64_t)len + 7) / 8 * 8);
		if (next + 8 <= t->data_off + t->data_len)
			to = (size_t)next;
		break;
	}
	}
	poke(o, to, h, 8, P_RECORD);
}

static void lock_attack(void)
{
	if (!nmutexes)
		return;
	int k = (int)below((uint64_t)nmutexes), o = mutexes[k].obj;
	size_t m = mutexes[k].off;
	uint64_t cur = peekw(o, m + 8, 8), w;
	switch (below(10)) {
	case 0:
	case 1: w = dead_word | below(128) << 22 | (below(2) ? W_WAITERS : 0); break;
	case 2: w = 0; break;
	case 3: w = W_NOTREC; break;
	case 4: w = nheld ? held_words[below(nheld < 16 ? nheld : 16)] : own_word; break;
	case 5: w = cur ^ W_WAITERS; break;
	case 6: w = cur | W_DIED; break;
	case 7: w = own_word | (below(2) ? W_WAITERS : 0); break;
	case 8: { /* the holder's record, the waiter count, the judge, its heartbeat */
		size_t f = m + 16 + 8 * (size_t)below(4);
		uint64_t v = below(2) ? rnd() : peekw(o, f, 8) ^ UINT64_C(1) << below(64);
		poke(o, f, &v, 8, P_LOCK);
		return;
	}
	default: {
		uint8_t v = (uint8_t)rnd();
		poke(o, m + (size_t)below(128), &v, 1, P_LOCK);
		return;
	}
	}
	poke(o, m + 8, &w, 8, P_LOCK);
}

/* Called at the start of a quiet period (compare false) and at its end
 * (true): what changed in between, the victims changed. */
static void learn_hot(int o, bool compare)
{
	const target *t = &T[o];
	size_t n = t->ctl_len / 4 < HOT_WORDS ? t->ctl_len / 4 : HOT_WORDS;
	if (!prev_ctl[o] && !(prev_ctl[o] = calloc(HOT_WORDS, 4)))
		return;
	uint32_t was_lo = 0, now_lo = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t v = (uint32_t)peekw(o, t->ctl_off + 4 * i, 4);
		if (compare && v != prev_ctl[o][i] && !(hot[o][i / 64] & UINT64_C(1) << (i % 64))) {
			hot[o][i / 64] |= UINT64_C(1) << (i % 64);
			nhot[o]++;
		}
		if (compare && i % 2 == 1) { /* the 8-byte word of u32s i-1, i */
			uint64_t was = (uint64_t)prev_ctl[o][i] << 32 | was_lo;
			uint64_t now = (uint64_t)v << 32 | now_lo;
			size_t k = i / 2;
			if (now > was && (now - was) % 8 == 0 && now - was < (UINT64_C(1) << 32) &&
			    !(posw[o][k / 64] & UINT64_C(1) << (k % 64))) {
				posw[o][k / 64] |= UINT64_C(1) << (k % 64);
				npos[o]++;
			}
		}
		was_lo = prev_ctl[o][i];
		now_lo = v;
		prev_ctl[o][i] = v;
	}
}

/* A control word of o that behaves like a position, if any was seen. */
static bool pick_pos(int o, size_t *off)
{
	if (!npos[o])
		return false;
	unsigned k = (unsigned)below(npos[o]);
	for (unsigned i = 0; i < HOT_WORDS / 2; i++)
		if ((posw[o][i / 64] & UINT64_C(1) << (i % 64)) && k-- == 0) {
			*off = T[o].ctl_off + 8 * i;
			return true;
		}
	return false;
}

/* The 8-byte word around a live control word of o, if any was seen changing. */
static bool pick_hot(int o, size_t *off)
{
	if (!nhot[o])
		return false;
	unsigned k = (unsigned)below(nhot[o]);
	for (unsigned i = 0; i < HOT_WORDS; i++)
		if ((hot[o][i / 64] & UINT64_C(1) << (i % 64)) && k-- == 0) {
			*off = T[o].ctl_off + 4 * (i & ~1u);
			return true;
		}
	return false;
}

/* Remembers what some words hold now, to write them back later. */
static void sample(void)
{
	int o = pick_obj();
	size_t off = pick_off(o, R_CTL, 8);
	if (below(4))
		pick_hot(o, &off);
	unsigned i = nhist++ % 512;
	hist[i].obj = o;
	hist[i].off = off;
	hist[i].v = peekw(o, off, 8);
	if (nmutexes) {
		int k = (int)below((uint64_t)nmutexes);
		uint64_t w = peekw(mutexes[k].obj, mutexes[k].off + 8, 8);
		if ((w & W_TID) && (w & ~W_WAITERS) != own_word)
			held_words[nheld++ % 16] = w;
	}
	if (!have_qblock || below(32) == 0) {
		for (int j = 0; j < 16; j++)
			qblock[j] = peekw(O_QUEUE, T[O_QUEUE].ctl_off + 8 * (size_t)j, 8);
		have_qblock = true;
	}
}

static void stale(void)
{
	if (have_qblock && below(4) == 0) { /* the queue's state as it was a moment ago, whole */
		poke(O_QUEUE, T[O_QUEUE].ctl_off, qblock, sizeof qblock, P_STALE);
		return;
	}
	if (!nhist)
		return;
	unsigned i = (unsigned)below(nhist < 512 ? nhist : 512);
	poke(hist[i].obj, hist[i].off, &hist[i].v, 8, P_STALE);
}

/* A descriptor with another field and a valid checksum: a forgery, not damage. */
static void forge(int o)
{
	sk__header h;
	memcpy(&h, T[o].pristine, sizeof h);
	uint64_t k = 1 + below(4);
	switch (below(8)) {
	case 0: h.kind = 1 + (uint32_t)below(11); break;
	case 1: h.dtype = 1 + (uint32_t)below(11); break;
	case 2: h.flags ^= SK__HF_LOCKED; break;
	case 3: h.version = (uint32_t)below(4); break;
	case 4: h.nitems = mutated(o, 8, h.nitems); break;
	case 5: h.data_size = mutated(o, 8, h.data_size); break;
	default: /* a smaller object of the same kind, consistent in every field */
		switch (h.kind) {
		case SK_KIND_QUEUE:
			h.nitems -= 4096 * k;
			h.data_size = SK__QUEUE_CTL + h.nitems;
			break;
		case SK_KIND_BITS:
			h.nitems -= 64 * k + below(64);
			h.data_size = (h.nitems + 63) / 64 * 8;
			break;
		case SK_KIND_ARRAY:
			if (h.ndim && h.shape[0] > 1) {
				h.shape[0] /= 2;
				h.nitems = 1;
				for (uint32_t i = 0; i < h.ndim; i++)
					h.nitems *= h.shape[i];
				h.data_size = h.nitems * sk_dtype_size((sk_dtype)h.dtype);
			}
			break;
		case SK_KIND_VALUE: h.dtype = 1 + (uint32_t)below(11); break;
		default: h.creator_pid ^= 1; break;
		}
		h.file_size = sk__round_up(h.data_offset + h.data_size, SK__PAGE);
		break;
	}
	h.checksum = sk__header_checksum(&h);
	poke(o, 0, &h, sizeof h, P_FORGE);
}

static void freeze(int o)
{
	uint32_t fz[2] = { SK__FREEZE_MAGIC, 1 };
	poke(o, SK__FREEZE_OFFSET, fz, sizeof fz, P_FREEZE);
}

/* One word rewritten without pause: 1 to 10 ms, now and then 50 to 300 ms,
 * rarely 1.2 s (longer than the slack: a loop that retries while a word
 * changes under it, without bound, fails the test). */
static void hammer(int o)
{
	size_t off = 0;
	uint64_t r = below(20);
	bool pos = false;
	if (r < 4 && nmutexes) {
		int k = (int)below((uint64_t)nmutexes);
		o = mutexes[k].obj;
		off = mutexes[k].off + 8;
	} else if (r < 6) {
		o = O_RAW;
		off = T[O_RAW].data_off;
	} else if (r < 16 && (pos = pick_pos(o, &off))) {
		/* a position: the most telling flicker */
	} else if (r < 19 && pick_hot(o, &off)) {
		/* a live word */
	} else {
		off = pick_off(o, below(2) ? R_CTL : R_DATA, 8);
	}
	int64_t dur = below(50)   ? 1000000 + (int64_t)below(19000000)
		      : below(20) ? 50000000 + (int64_t)below(250000000)
				  : 1200000000;
	/* Flickers between what it holds and a plausible other value (a
	 * position a few records on or back, say): a check that reads one and
	 * a use that reads the other again is caught in between. */
	uint64_t v0 = peekw(o, off, 8);
	uint64_t v1 = below(2) ? v0 + 8 * (1 + below(16)) * (below(2) ? 1 : (uint64_t)-1) : mutated(o, 8, v0);
	/* Best of all: what this very word held a moment ago (a position at
	 * an earlier record, say), which every check accepts as well. */
	size_t other;
	if (pos && below(3) == 0 && pick_pos(o, &other) && other != off)
		v1 = peekw(o, other, 8); /* another position's value */
	unsigned n = nhist < 512 ? nhist : 512, start = (unsigned)below(n ? n : 1);
	for (unsigned j = 0; j < n && below(4); j++) {
		unsigned i = (start + j) % n;
		if (hist[i].obj == o && hist[i].off == off && hist[i].v != v0) {
			v1 = hist[i].v;
			break;
		}
	}
	uint64_t *p = (uint64_t *)(T[o].base + off);
	if (getenv("HOSTILE_DEBUG") && o == O_QUEUE)
		fprintf(stderr, "hammer queue +%zu %#" PRIx64 " %#" PRIx64 " %.1f ms\n", off, v0, v1,
			(double)dur / 1e6);
	log_write(o, off, &v1, 8, P_HAMMER);
	int64_t end = t_now_ns() + dur;
	while (t_now_ns() < end && !__atomic_load_n(&B->stop, __ATOMIC_RELAXED))
		for (int i = 0; i < 1000; i++)
			__atomic_store_n(p, (i & 1) ? v1 : v0, __ATOMIC_RELAXED);
	__atomic_store_n(p, below(2) ? v0 : v1, __ATOMIC_SEQ_CST);
}

static void restore(int o)
{
	size_t off = pick_off(o, pick_region(), 8), n = 8 * (1 + (size_t)below(16));
	if (n > T[o].len - off)
		n = T[o].len - off;
	poke(o, off, T[o].pristine + off, n, P_RESTORE);
}

static void restore_if_changed(int o, size_t off, size_t n)
{
	if (memcmp(T[o].base + off, T[o].pristine + off, n))
		poke(o, off, T[o].pristine + off, n, P_HEAL);
}

static uint64_t healed_ok[NOBJ], healed_bad[NOBJ];

/* Between attacks: the descriptors and the identities of every structure as
 * created, and now and then whole control blocks and locks. */
static void heal(void)
{
	for (int o = 0; o < NOBJ; o++) {
		const target *t = &T[o];
		restore_if_changed(o, 0, SK__DESC_SIZE);
		restore_if_changed(o, SK__FREEZE_OFFSET, 8);
		if (below(4) == 0)
			restore_if_changed(o, SK__DESC_SIZE, SK__HEADER_SIZE - SK__DESC_SIZE);
		/* Victims that saw damage in more than a fifth of their results
		 * on this object since the last heal: its whole state as created
		 * (a flicker finds nothing in a state that fails its checks). */
		uint64_t ok = __atomic_load_n(&B->seen_ok[o], __ATOMIC_RELAXED);
		uint64_t bad = __atomic_load_n(&B->seen_bad[o], __ATOMIC_RELAXED);
		bool stuck = (bad - healed_bad[o]) * 4 > ok - healed_ok[o];
		healed_ok[o] = ok;
		healed_bad[o] = bad;
		if (stuck || below(8) == 0) {
			restore_if_changed(o, t->ctl_off, t->ctl_len);
			continue;
		}
		/* Every control word not seen changing in use holds a constant
		 * (an identity, a size, a flag, reserved bytes): restored; the
		 * live state is left as the attack left it. */
		for (size_t i = 0; i < t->ctl_len / 4 && i < HOT_WORDS; i++)
			if (!(hot[o][i / 64] & UINT64_C(1) << (i % 64)))
				restore_if_changed(o, t->ctl_off + 4 * i, 4);
	}
	for (int k = 0; k < nmutexes; k++) {
		int o = mutexes[k].obj;
		size_t m = mutexes[k].off;
		restore_if_changed(o, m, 8);
		/* A lock left unusable or with a word no holder writes is made
		 * free again, as sk_mutex_init by someone who knows nobody uses it. */
		uint64_t w = peekw(o, m + 8, 8), zero = 0;
		if (w && (w == W_NOTREC || !(w & W_TID)))
			poke(o, m + 8, &zero, 8, P_HEAL);
	}
}

/* One attack, of the kinds in mask (bits of 1 << P_*), by weight. */
static void peer_step(unsigned mask)
{
	static const uint8_t weight[P_HEAL] = {
		[P_SCRIBBLE] = 16, [P_MUTATE] = 24, [P_RECORD] = 12, [P_LOCK] = 16,   [P_STALE] = 10,
		[P_FORGE] = 3,     [P_FREEZE] = 1,  [P_HAMMER] = 4,  [P_RESTORE] = 14
	};
	unsigned total = 0;
	for (int m = 0; m < P_HEAL; m++)
		total += (mask & 1u << m) ? weight[m] : 0;
	if (!total)
		return;
	unsigned r = (unsigned)below(total);
	int m = 0;
	for (; m < P_HEAL - 1; m++) {
		unsigned w = (mask & 1u << m) ? weight[m] : 0;
		if (r < w)
			break;
		r -= w;
	}
	int o = pick_obj();
	switch (m) {
	case P_SCRIBBLE: scribble(o); break;
	case P_MUTATE: mutate_word(o); break;
	case P_RECORD: record_attack(); break;
	case P_LOCK: lock_attack(); break;
	case P_STALE: stale(); break;
	case P_FORGE: forge(o); break;
	case P_FREEZE: freeze(o); break;
	case P_HAMMER: hammer(o); break;
	default: restore(o); break;
	}
}

/* What an attack period uses: everything, or one style at a time (a style
 * drowned among the others finds less: a flicker needs the state it
 * flickers to be sound otherwise). */
static unsigned campaign(void)
{
	static const unsigned styles[] = {
		~0u,
		~0u,
		1u << P_HAMMER,
		1u << P_HAMMER,
		1u << P_LOCK,
		1u << P_STALE | 1u << P_RECORD | 1u << P_MUTATE,
		1u << P_SCRIBBLE | 1u << P_FORGE | 1u << P_FREEZE | 1u << P_RESTORE,
	};
	unsigned m = styles[below(sizeof styles / sizeof styles[0])] & C.modes;
	return m ? m : C.modes;
}

static int peer_main(void *arg)
{
	rng = mix(C.seed, 1 + (uint64_t)(intptr_t)arg);
	child_init();
	/* Owner words (docs/format.md): this process's own, and one of a
	 * thread that has ended, in this pid namespace. */
	sk_mutex pm;
	sk_mutex_init(&pm);
	sk_mutex_lock(&pm, 0);
	memcpy(&own_word, (uint8_t *)&pm + 8, 8);
	sk_mutex_unlock(&pm);
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	while (c > 0 && waitpid(c, NULL, 0) < 0 && errno == EINTR)
		;
	dead_word = (own_word & ~UINT64_C(0xffffffff)) | ((uint64_t)c & W_TID);
	while (!__atomic_load_n(&B->stop, __ATOMIC_SEQ_CST)) {
		heal();
		for (int o = 0; o < NOBJ; o++)
			learn_hot(o, false);
		nap_ns(1000000 + (int64_t)below(20000000));
		for (int o = 0; o < NOBJ; o++)
			learn_hot(o, true);
		uint64_t steps = 1 + below(300);
		unsigned mask = campaign();
		for (uint64_t s = 0; s < steps && !__atomic_load_n(&B->stop, __ATOMIC_RELAXED); s++) {
			sample();
			peer_step(mask);
			if (below(4) == 0)
				nap_ns((int64_t)below(200000));
		}
	}
	if (getenv("HOSTILE_DEBUG"))
		for (int o = 0; o < NOBJ; o++) {
			fprintf(stderr, "peer: %s hot:", obj_tag[o]);
			for (unsigned i = 0; i < HOT_WORDS; i++)
				if (hot[o][i / 64] & UINT64_C(1) << (i % 64))
					fprintf(stderr, " +%zu", T[o].ctl_off + 4 * i);
			fprintf(stderr, " positions:");
			for (unsigned i = 0; i < HOT_WORDS / 2; i++)
				if (posw[o][i / 64] & UINT64_C(1) << (i % 64))
					fprintf(stderr, " +%zu", T[o].ctl_off + 8 * i);
			fprintf(stderr, "\n");
		}
	return 0;
}

/* ---- the parent: objects, processes, watching, the report ---- */

typedef struct vresult {
	int how; /* VR_* */
	int sig, code;
	int fault_where;
	uint64_t fault_addr;
	char msg[640];
} vresult;
enum { VR_RUNNING, VR_OK, VR_VIOLATION, VR_SIGNAL, VR_EXIT, VR_STALL };

static void make_objects(void)
{
	for (int o = 0; o < NOBJ; o++) {
		char tag[32];
		snprintf(tag, sizeof tag, "h-%s", obj_tag[o]);
		snprintf(names[o], sizeof names[o], "%s", t_name(tag));
	}
	sk_queue *q;
	sk_segment *s;
	void *p;
	sk_value *v;
	sk_array *a;
	sk_bits *b;
	sk_create_opts raw_opts = { .flags = SK_CREATE_RAW }, locked = { .flags = SK_CREATE_LOCKED };
	assert_int_equal(sk_queue_create(names[O_QUEUE], Q_CAP, Q_MAX_MSG, NULL, &q), 0);
	sk_queue_close(q);
	assert_int_equal(sk_mutex_create(names[O_MUTEX], NULL, &s, (sk_mutex **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_rwlock_create(names[O_RWLOCK], NULL, &s, (sk_rwlock **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_sem_create(names[O_SEM], 1, 4, NULL, &s, (sk_sem **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_barrier_create(names[O_BARRIER], PARTIES, NULL, &s, (sk_barrier **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_event_create(names[O_EVENT], NULL, &s, (sk_event **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_cond_create(names[O_COND], NULL, &s, (sk_cond **)&p), 0);
	sk_segment_close(s);
	assert_int_equal(sk_value_create(names[O_VALUE], SK_INT64, NULL, &v), 0);
	sk_value_close(v);
	assert_int_equal(sk_value_create(names[O_RAW], SK_FLOAT64, &raw_opts, &v), 0);
	sk_value_close(v);
	uint64_t plain[2] = { 64, ARR_BYTES / 64 / 8 }, lk[1] = { ARR_BYTES / 8 }, at[2] = { 8, ARR_BYTES / 8 / 4 };
	assert_int_equal(sk_array_create(names[O_ARR_PLAIN], SK_FLOAT64, 2, plain, NULL, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_array_create(names[O_ARR_LOCKED], SK_INT64, 1, lk, &locked, &a), 0);
	sk_array_close(a);
	assert_int_equal(sk_array_create(names[O_ARR_ATOMIC], SK_INT32, 2, at, NULL, &a), 0);
	sk_array_close(a);
	for (int o = O_BITS_A; o <= O_BITS_C; o++) {
		assert_int_equal(sk_bits_create(names[o], NBITS, NULL, &b), 0);
		sk_bits_close(b);
	}
	/* The peer's view: a mapping of each, and where its parts are. */
	nmutexes = 0;
	for (int o = 0; o < NOBJ; o++) {
		assert_int_equal(sk_segment_open(names[o], SK_RDWR, &raw[o]), 0);
		target *t = &T[o];
		size_t d = (size_t)raw[o]->hdr.data_offset, n = (size_t)raw[o]->hdr.data_size;
		t->base = raw[o]->base;
		t->len = raw[o]->map_size;
		t->data_off = d, t->data_len = n;
		t->ctl_off = d, t->ctl_len = n;
		switch (o) {
		case O_QUEUE:
			t->ctl_len = SK__QUEUE_CTL;
			t->data_off = d + SK__QUEUE_CTL, t->data_len = n - SK__QUEUE_CTL;
			break;
		case O_VALUE:
		case O_RAW: t->data_off = d + 128, t->data_len = 8; break;
		case O_ARR_LOCKED: t->ctl_off = SK__LOCK_OFFSET, t->ctl_len = 128; break;
		case O_ARR_PLAIN:
		case O_ARR_ATOMIC:
		case O_BITS_A:
		case O_BITS_B:
		case O_BITS_C: t->ctl_off = SK__DESC_SIZE, t->ctl_len = SK__HEADER_SIZE - SK__DESC_SIZE; break;
		}
		/* A stray access past the ring, the array or the bits must reach
		 * the guard at once, not padding that is still mapped. */
		if (o == O_QUEUE || o >= O_ARR_PLAIN)
			assert_int_equal(d + n, t->len);
		t->pristine = malloc(t->len);
		assert_non_null(t->pristine);
		memcpy(t->pristine, t->base, t->len);
		for (size_t off = 0; off + 128 <= t->len && nmutexes < 16; off += 8) {
			uint64_t head;
			memcpy(&head, t->pristine + off, 8);
			if (head == MUTEX_HEAD) {
				mutexes[nmutexes].obj = o;
				mutexes[nmutexes++].off = off;
			}
		}
	}
	/* The queue's two (producers', consumers'), the named mutex, the rwlock's,
	 * the value's, the locked array's. */
	assert_int_equal(nmutexes, 6);
}

static void remove_objects(void)
{
	for (int o = 0; o < NOBJ; o++) {
		if (raw[o]) {
			memcpy(raw[o]->base, T[o].pristine, SK__DESC_SIZE); /* so that unlink knows it */
			sk_segment_close(raw[o]);
			raw[o] = NULL;
		}
		if (sk_segment_unlink(names[o]))
			t_remove(names[o]);
		free(T[o].pristine);
		T[o].pristine = NULL;
	}
}

static void read_proc(pid_t pid, const char *what, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got = fd >= 0 ? read(fd, out, n - 1) : -1;
	if (fd >= 0)
		close(fd);
	out[got > 0 ? got : 0] = 0;
	char *nl = strchr(out, '\n');
	if (nl)
		*nl = 0;
}

/* Kills a victim that stopped making progress, saying where it was. */
static void stalled(int i, vresult *r, int64_t now)
{
	vstatus *v = &B->v[i];
	char wchan[64], sys[128], stat[256];
	read_proc(v->pid, "wchan", wchan, sizeof wchan);
	read_proc(v->pid, "syscall", sys, sizeof sys);
	read_proc(v->pid, "stat", stat, sizeof stat);
	int k = __atomic_load_n(&v->kind, __ATOMIC_SEQ_CST);
	if (k >= 0)
		snprintf(r->msg, sizeof r->msg,
			 "stuck for %.1f s in %s (timeout %.3f ms); kernel: wchan %s, syscall %s; stat %.80s",
			 (double)(now - v->op_start) / 1e9, kname(k), (double)v->op_timeout / 1e6, wchan, sys, stat);
	else
		snprintf(r->msg, sizeof r->msg, "no call for %.1f s (between calls); kernel: wchan %s, syscall %s",
			 (double)(now - v->last_progress) / 1e9, wchan, sys);
	kill(v->pid, SIGKILL);
	while (waitpid(v->pid, NULL, 0) < 0 && errno == EINTR)
		;
	r->how = VR_STALL;
}

static void reaped(int i, int status, vresult *r)
{
	vstatus *v = &B->v[i];
	r->fault_where = v->fault_where;
	r->fault_addr = v->fault_addr;
	if (WIFSIGNALED(status)) {
		r->how = VR_SIGNAL;
		r->sig = WTERMSIG(status);
	} else if (WEXITSTATUS(status) == 0 && v->done) {
		r->how = VR_OK;
	} else if (WEXITSTATUS(status) == 3 && v->failed) {
		r->how = VR_VIOLATION;
		snprintf(r->msg, sizeof r->msg, "%s", v->msg);
	} else {
		r->how = VR_EXIT;
		r->code = WEXITSTATUS(status);
	}
	if (v->fault_sig && r->how != VR_VIOLATION) {
		char where[160] = "not in a guard";
		if (v->fault_where)
			snprintf(where, sizeof where, "%" PRIu64 " bytes %s a %" PRIu64 "-byte mapping at %#" PRIx64,
				 v->fault_where > 0 ? v->fault_addr - v->fault_base - page_up(v->fault_len)
						    : v->fault_base - v->fault_addr,
				 v->fault_where > 0 ? "past the end of" : "before", v->fault_len, v->fault_base);
		snprintf(r->msg, sizeof r->msg, "signal %d at address %#" PRIx64 " (%s)", v->fault_sig, v->fault_addr,
			 where);
	}
}

static void print_report(int nfail, const vresult *res, int64_t ran_ns)
{
	static vstats tot;
	memset(&tot, 0, sizeof tot);
	for (int i = 0; i < C.procs; i++) {
		const vstats *s = &B->v[i].st;
		for (int k = 0; k < NKINDS; k++) {
			tot.ops[k] += s->ops[k];
			tot.bad[k] += s->bad[k];
			for (int c = 0; c < NCODES; c++)
				tot.codes[k][c] += s->codes[k][c];
			if (s->late_max[k] > tot.late_max[k])
				tot.late_max[k] = s->late_max[k];
			if (s->over_max[k] > tot.over_max[k])
				tot.over_max[k] = s->over_max[k];
		}
	}
	FILE *f = nfail ? stderr : stdout;
	if (nfail || !C.quiet) {
		uint64_t pw = 0;
		for (int m = 0; m < NMODES; m++)
			pw += B->peer_writes[m];
		fprintf(f, "hostile: seed %#" PRIx64 ", %d victims, %d peer, %.1f s; peer writes %" PRIu64 ":", C.seed,
			C.procs, C.peers, (double)ran_ns / 1e9, pw);
		for (int m = 0; m < NMODES; m++)
			fprintf(f, " %s %" PRIu64, mode_name[m], B->peer_writes[m]);
		fprintf(f, "\n%-24s %10s %10s %9s %9s %9s %9s  %s\n", "call", "calls", "ok", "corrupt", "wrongdata",
			"late-ms", "over-ms", "other results");
		uint64_t calls = 0, errs = 0, corrupt = 0, wrong = 0;
		int64_t late = 0;
		for (int k = 0; k < NKINDS; k++) {
			if (!tot.ops[k])
				continue;
			uint64_t cc = 0;
			char other[512] = "";
			size_t used = 0;
			for (int c = 1; c < NCODES; c++) {
				uint64_t n = tot.codes[k][c];
				if (!n)
					continue;
				errs += n;
				if (c < NCODES - 1 && corrupt_code(codes[c].code)) {
					cc += n;
				} else if (used < sizeof other - 40) {
					used += (size_t)snprintf(other + used, sizeof other - used, " %s=%" PRIu64,
								 c < NCODES - 1 ? codes[c].name : "other", n);
				}
			}
			fprintf(f, "%-24s %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %9" PRIu64 " %9.1f %9.1f %s\n",
				kname(k), tot.ops[k], tot.codes[k][0], cc, tot.bad[k], (double)tot.late_max[k] / 1e6,
				(double)tot.over_max[k] / 1e6, other);
			calls += tot.ops[k];
			corrupt += cc;
			wrong += tot.bad[k];
			if (tot.late_max[k] > late)
				late = tot.late_max[k];
		}
		fprintf(f,
			"hostile: %" PRIu64 " calls, %" PRIu64 " errors, corruption detected %" PRIu64
			" times (codes), wrong data %" PRIu64 " times; most time past a timeout %.1f ms (less CPU "
			"waits); %d of %d victims failed\n",
			calls, errs, corrupt, wrong, (double)late / 1e6, nfail, C.procs);
	}
	if (!nfail)
		return;
	static const char *const how[] = { "still running",    "ok",     "broke a rule",
					   "died of a signal", "exited", "stopped making progress" };
	for (int i = 0; i < C.procs; i++) {
		const vresult *r = &res[i];
		if (r->how == VR_OK)
			continue;
		const vstatus *v = &B->v[i];
		fprintf(stderr, "hostile: victim %d (pid %d) %s", i, (int)v->pid, how[r->how]);
		if (r->how == VR_SIGNAL)
			fprintf(stderr, " %d (%s)", r->sig, strsignal(r->sig));
		if (r->how == VR_EXIT)
			fprintf(stderr, " with code %d", r->code);
		int k = v->last_kind;
		fprintf(stderr, " after %" PRIu64 " calls; last call %s (timeout %.3f ms)\n  %s\n", v->nops, kname(k),
			(double)v->op_timeout / 1e6, r->msg[0] ? r->msg : "");
	}
	fprintf(stderr, "hostile: the peer's last writes (object, offset, bytes, what):\n");
	uint64_t end = B->peer_seq, start = end > 24 ? end - 24 : 0;
	for (uint64_t s = start; s < end; s++) {
		const peer_entry *e = &B->log[s % LOG_N];
		fprintf(stderr, "  #%-8" PRIu64 " %-12s +%-7" PRIu64 " %3u bytes:", e->seq, obj_tag[e->obj], e->off,
			e->len);
		for (unsigned j = 0; j < e->len && j < sizeof e->bytes; j++)
			fprintf(stderr, " %02x", e->bytes[j]);
		fprintf(stderr, "  (%s)\n", mode_name[e->mode]);
	}
	fprintf(stderr, "hostile: replay with SEED=%#" PRIx64 " PROCS=%d SECONDS=%" PRId64 " ITER=%" PRIu64 "\n",
		C.seed, C.procs, C.run_ns / 1000000000, C.iter);
}

/* One run with the configuration C: returns how many victims failed and
 * fills res[0 .. C.procs). */
static int run(vresult *res)
{
	B = mmap(NULL, sizeof *B, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(B != MAP_FAILED);
	memset(B, 0, sizeof *B);
	memset(res, 0, sizeof *res * (size_t)C.procs);
	make_objects();
	pid_t peers[4] = { 0 };
	for (int i = 0; i < C.peers && i < 4; i++)
		peers[i] = t_spawn(peer_main, (void *)(intptr_t)i);
	for (int i = 0; i < C.procs; i++) {
		B->v[i].kind = -1;
		B->v[i].last_kind = -1;
		B->v[i].last_progress = t_now_ns();
		B->v[i].pid = t_spawn(victim_main, (void *)(intptr_t)i);
	}
	int64_t t0 = t_now_ns(), end = C.run_ns ? t0 + C.run_ns : INT64_MAX;
	int running = C.procs, nfail = 0;
	bool stopping = false;
	while (running > 0) {
		nap_ns(10000000);
		int64_t now = t_now_ns();
		for (int i = 0; i < C.procs; i++) {
			if (res[i].how != VR_RUNNING)
				continue;
			int status;
			pid_t p = waitpid(B->v[i].pid, &status, WNOHANG);
			if (p == B->v[i].pid) {
				reaped(i, status, &res[i]);
			} else {
				vstatus *v = &B->v[i];
				int k = __atomic_load_n(&v->kind, __ATOMIC_SEQ_CST);
				bool stuck = k >= 0 ? now - v->op_start > v->op_timeout + C.stall_ns
						    : now - v->last_progress > C.stall_ns;
				if (stuck)
					stalled(i, &res[i], now);
			}
			if (res[i].how != VR_RUNNING) {
				running--;
				nfail += res[i].how != VR_OK;
			}
		}
		if (!stopping && (nfail || now >= end)) {
			/* Each finishes its call (within its timeout, or it is
			 * stuck as above), closes everything and exits. */
			stopping = true;
			__atomic_store_n(&B->stop, 1, __ATOMIC_SEQ_CST);
		}
	}
	int64_t ran = t_now_ns() - t0;
	__atomic_store_n(&B->stop, 1, __ATOMIC_SEQ_CST);
	for (int i = 0; i < C.peers && i < 4; i++) {
		int status;
		while (waitpid(peers[i], &status, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "hostile: the peer failed (status %#x): a bug of the test\n", status);
			nfail++;
		}
	}
	print_report(nfail, res, ran);
	remove_objects();
	munmap(B, sizeof *B);
	B = NULL;
	return nfail;
}

/* ---- the tests ---- */

static void test_stress(void **state)
{
	(void)state;
	C = config_from_env();
	vresult res[MAX_PROCS];
	int nfail = run(res);
	if (nfail) {
		char why[128];
		snprintf(why, sizeof why, "%d of %d victims failed (seed %#" PRIx64 "); see the report above", nfail,
			 C.procs, C.seed);
		fail_msg("%s", why);
	}
}

/* The detectors themselves: a victim that does what a broken library call
 * would do is caught each way. */
static vresult selftest(int mode)
{
	C = (config){ .procs = 1,
		      .run_ns = 20000000000,
		      .seed = 7,
		      .slack_ns = 100000000,
		      .stall_ns = 500000000,
		      .peers = 0,
		      .selftest = mode,
		      .quiet = true };
	vresult res[1];
	int nfail = run(res);
	assert_int_equal(nfail, 1);
	return res[0];
}

static void test_detects_stray_access(void **state)
{
	(void)state;
	for (int mode = SELF_STRAY_AFTER; mode <= SELF_STRAY_BEFORE; mode++) {
		vresult r = selftest(mode);
		/* Killed by the fault, or (sanitizers) reported and exited. */
		assert_true((r.how == VR_SIGNAL && r.sig == SIGSEGV) || r.how == VR_EXIT);
		assert_int_equal(r.fault_where, mode == SELF_STRAY_AFTER ? 1 : -1);
	}
}

static void test_detects_late_return(void **state)
{
	(void)state;
	vresult r = selftest(SELF_LATE);
	assert_int_equal(r.how, VR_VIOLATION);
	assert_non_null(strstr(r.msg, "after its timeout"));
}

static void test_detects_hang(void **state)
{
	(void)state;
	int64_t t0 = t_now_ns();
	vresult r = selftest(SELF_HANG);
	assert_int_equal(r.how, VR_STALL);
	assert_non_null(strstr(r.msg, "stuck for"));
	assert_true(t_now_ns() - t0 < 10000000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detects_stray_access),
		cmocka_unit_test(test_detects_late_return),
		cmocka_unit_test(test_detects_hang),
		cmocka_unit_test(test_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
