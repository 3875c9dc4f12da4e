/*
 * service.c: batched remote operations and the service that answers them.
 *
 * Who serves. A node's part of a partitioned object lives in one shmkit
 * segment that every rank of the node maps, so any of them could answer for
 * it; the node's leader does. In thread mode (MPI_THREAD_MULTIPLE) it runs a
 * service thread from sk_cluster_create to sk_cluster_close, so requests are
 * answered while the leader's main thread computes outside MPI. The thread
 * probes (MPI_Improbe on the request communicator) and never spins: it naps
 * 2 us after a request, then a sixteenth of the quiet so far, up to poll_ns
 * (100 us by default), so an idle service costs a probe per poll_ns and the
 * process's other threads keep MPI's locks (a prober in a loop made the main
 * thread's ping-pong 10 to 200 times slower here). Up to four replies are in
 * flight while it takes the next request, and the request after the one it
 * works on is received meanwhile (two buffers in turn). In inline mode (no
 * MPI_THREAD_MULTIPLE) the leader serves while it waits inside any call of
 * the library and in sk_cluster_progress; a leader computing elsewhere then
 * answers late, and past the deadline its callers fail.
 *
 * A call. sk__cl_call checks every index, then works through the batch in
 * slices of 2^20 elements: each slice is bucketed by owning node (a counting
 * sort keeping list order; a slice with one owner is not reordered), this
 * node's bucket is applied in place, and each other node's bucket goes in
 * pieces of 2^15 elements (the protocol allows 2^18) to that node's leader,
 * all in flight at once, the reply receives posted before the requests. The
 * call returns when every reply has come, so its updates are applied before
 * it returns; that is what makes sk_cluster_fence a barrier and nothing
 * more. Reply tags come from a per-handle counter, so a reply can only match
 * the call that waits for it.
 *
 * Trust. A request is input: its header is read once into a local copy and
 * checked (magic, version, operation, object, item size, count against the
 * bytes received), every index is checked against the node's part before
 * anything is done, and a bad request gets an error reply, never a crash. A
 * message longer than any request is received whole (into memory of its
 * own) and refused. Replies are checked the same way by the caller.
 *
 * Memory kept. A caller's buffers (its located slice, its pieces' requests
 * and replies) stay with the handle between calls, so a batch reuses pages
 * it touched before.
 *
 * Memory. Elements are read and written with single atomic loads, stores and
 * read-modify-writes of their own width (floats added by compare-and-swap),
 * so the ranks of a node and the service work on the same part at once.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>

/* ---- Applying operations to a part in this process's mapping ---- */

/* Random loads are memory-latency bound: a prefetch 16 elements ahead gave
 * 5-10% on this machine (64 MiB parts, 4 KiB pages). */
#define PREFETCH(base, T, loc, i, n)                                             \
	do {                                                                     \
		if ((i) + 16 < (n))                                              \
			__builtin_prefetch((const T *)(base) + (loc)[(i) + 16]); \
	} while (0)

static void load_elems(const void *base, size_t isz, size_t n, const uint64_t *loc, void *out)
{
	switch (isz) {
	case 1:
		for (size_t i = 0; i < n; i++) {
			PREFETCH(base, uint8_t, loc, i, n);
			((uint8_t *)out)[i] = __atomic_load_n((const uint8_t *)base + loc[i], __ATOMIC_RELAXED);
		}
		break;
	case 2:
		for (size_t i = 0; i < n; i++) {
			PREFETCH(base, uint16_t, loc, i, n);
			((uint16_t *)out)[i] = __atomic_load_n((const uint16_t *)base + loc[i], __ATOMIC_RELAXED);
		}
		break;
	case 4:
		for (size_t i = 0; i < n; i++) {
			PREFETCH(base, uint32_t, loc, i, n);
			((uint32_t *)out)[i] = __atomic_load_n((const uint32_t *)base + loc[i], __ATOMIC_RELAXED);
		}
		break;
	default:
		for (size_t i = 0; i < n; i++) {
			PREFETCH(base, uint64_t, loc, i, n);
			((uint64_t *)out)[i] = __atomic_load_n((const uint64_t *)base + loc[i], __ATOMIC_RELAXED);
		}
		break;
	}
}

static void store_elems(void *base, size_t isz, size_t n, const uint64_t *loc, const void *in)
{
	switch (isz) {
	case 1:
		for (size_t i = 0; i < n; i++)
			__atomic_store_n((uint8_t *)base + loc[i], ((const uint8_t *)in)[i], __ATOMIC_RELAXED);
		break;
	case 2:
		for (size_t i = 0; i < n; i++) {
			uint16_t v;
			memcpy(&v, (const char *)in + 2 * i, 2);
			__atomic_store_n((uint16_t *)base + loc[i], v, __ATOMIC_RELAXED);
		}
		break;
	case 4:
		for (size_t i = 0; i < n; i++) {
			uint32_t v;
			memcpy(&v, (const char *)in + 4 * i, 4);
			__atomic_store_n((uint32_t *)base + loc[i], v, __ATOMIC_RELAXED);
		}
		break;
	default:
		for (size_t i = 0; i < n; i++) {
			uint64_t v;
			memcpy(&v, (const char *)in + 8 * i, 8);
			__atomic_store_n((uint64_t *)base + loc[i], v, __ATOMIC_RELAXED);
		}
		break;
	}
}

/* Integer additions wrap (two's complement); the old value goes to old. */
#define ADD_INT(T)                                                               \
	for (size_t i = 0; i < n; i++) {                                         \
		T d, o;                                                          \
		memcpy(&d, (const char *)in + sizeof(T) * i, sizeof(T));         \
		o = __atomic_fetch_add((T *)base + loc[i], d, __ATOMIC_SEQ_CST); \
		if (out)                                                         \
			memcpy((char *)out + sizeof(T) * i, &o, sizeof(T));      \
	}

#define ADD_FLOAT(F, U)                                                                                     \
	for (size_t i = 0; i < n; i++) {                                                                    \
		F d;                                                                                        \
		memcpy(&d, (const char *)in + sizeof(F) * i, sizeof(F));                                    \
		U *p = (U *)base + loc[i];                                                                  \
		U o = __atomic_load_n(p, __ATOMIC_RELAXED), w;                                              \
		do {                                                                                        \
			F f;                                                                                \
			memcpy(&f, &o, sizeof f);                                                           \
			f += d;                                                                             \
			memcpy(&w, &f, sizeof w);                                                           \
		} while (!__atomic_compare_exchange_n(p, &o, w, true, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)); \
		if (out)                                                                                    \
			memcpy((char *)out + sizeof(F) * i, &o, sizeof(F));                                 \
	}

static void add_elems(void *base, sk_dtype dt, size_t n, const uint64_t *loc, const void *in, void *out)
{
	switch (dt) {
	case SK_INT8:
	case SK_UINT8: ADD_INT(uint8_t) break;
	case SK_INT16:
	case SK_UINT16: ADD_INT(uint16_t) break;
	case SK_INT32:
	case SK_UINT32: ADD_INT(uint32_t) break;
	case SK_INT64:
	case SK_UINT64: ADD_INT(uint64_t) break;
	case SK_FLOAT32: ADD_FLOAT(float, uint32_t) break;
	case SK_FLOAT64: ADD_FLOAT(double, uint64_t) break;
	default: break;
	}
}

static void bits_op(uint64_t *words, int op, size_t n, const uint64_t *loc, uint8_t *out)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t *w = words + loc[i] / 64, m = UINT64_C(1) << (loc[i] % 64), was;
		if (op == SK__CL_BTEST)
			was = __atomic_load_n(w, __ATOMIC_RELAXED);
		else if (op == SK__CL_BSET)
			was = __atomic_fetch_or(w, m, __ATOMIC_SEQ_CST);
		else
			was = __atomic_fetch_and(w, ~m, __ATOMIC_SEQ_CST);
		if (out)
			out[i] = (was & m) != 0;
	}
}

/* The bytes per element a request carries in and a reply carries out. */
static size_t in_size(const sk__cl_obj *o, int op)
{
	return op == SK__CL_SCATTER || op == SK__CL_ADD ? o->itemsize : 0;
}

static size_t out_size(const sk__cl_obj *o, int op, uint32_t flags)
{
	switch (op) {
	case SK__CL_GATHER: return o->itemsize;
	case SK__CL_ADD: return flags & SK__CL_WANT_OLD ? o->itemsize : 0;
	case SK__CL_BTEST: return 1;
	case SK__CL_BSET:
	case SK__CL_BCLEAR: return flags & SK__CL_WANT_OLD ? 1 : 0;
	default: return 0;
	}
}

/* 0 if op is allowed on o, else the code. */
static int op_allowed(const sk__cl_obj *o, int op)
{
	switch (op) {
	case SK__CL_GATHER: return o->is_bits ? SK_EKIND : 0;
	case SK__CL_SCATTER: return o->is_bits ? SK_EKIND : o->writable ? 0 : SK_EREADONLY;
	case SK__CL_ADD:
		if (o->is_bits)
			return SK_EKIND;
		if (o->dtype == SK_BOOL)
			return SK_ETYPE;
		return o->writable ? 0 : SK_EREADONLY;
	case SK__CL_BTEST: return o->is_bits ? 0 : SK_EKIND;
	case SK__CL_BSET:
	case SK__CL_BCLEAR:
		if (!o->is_bits)
			return SK_EKIND;
		return o->writable ? 0 : SK_EREADONLY;
	default: return SK_ECLUSTER_PROTO;
	}
}

int sk__cl_apply(const sk__cl_obj *o, int op, uint32_t flags, size_t n, const uint64_t *loc, const void *in, void *out)
{
	int rc = op_allowed(o, op);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (loc[i] >= o->count)
			return -ERANGE;
	return sk__cl_apply_trusted(o, op, flags, n, loc, in, out);
}

int sk__cl_apply_trusted(const sk__cl_obj *o, int op, uint32_t flags, size_t n, const uint64_t *loc, const void *in,
			 void *out)
{
	if (n == 0)
		return 0;
	switch (op) {
	case SK__CL_GATHER: load_elems(o->base, o->itemsize, n, loc, out); break;
	case SK__CL_SCATTER: store_elems(o->base, o->itemsize, n, loc, in); break;
	case SK__CL_ADD: add_elems(o->base, o->dtype, n, loc, in, flags & SK__CL_WANT_OLD ? out : NULL); break;
	default:
		bits_op(o->base, op, n, loc, op == SK__CL_BTEST || (flags & SK__CL_WANT_OLD) ? (uint8_t *)out : NULL);
		break;
	}
	return 0;
}

/* ---- The server ---- */

static int grow(void **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 4096;
	while (n < need)
		n *= 2;
	void *p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

/* The longest request: a header, SK__CL_PIECE_MAX indices and as many
 * values of at most 8 bytes. */
#define REQ_MAX (sizeof(sk__cl_req) + SK__CL_PIECE_MAX * 16)

/* Checks and applies one request of `bytes` bytes at buf (malloc'd); builds
 * the reply in rep (room for a header and SK__CL_PIECE_MAX values) and
 * returns its size. */
static size_t handle(sk_cluster *cl, const void *buf, size_t bytes, sk__cl_rep *rep)
{
	sk__cl_req h;
	memset(rep, 0, sizeof *rep);
	rep->magic = SK__CL_REP_MAGIC;
	rep->version = SK__CL_VERSION;
	if (bytes < sizeof h || bytes > REQ_MAX) { /* too short, or longer than any request: not read */
		rep->status = SK_ECLUSTER_PROTO;
		return sizeof *rep;
	}
	memcpy(&h, buf, sizeof h); /* read once */
	rep->op = h.op;
	if (h.magic != SK__CL_REQ_MAGIC || h.version != SK__CL_VERSION || h.count > SK__CL_PIECE_MAX) {
		rep->status = SK_ECLUSTER_PROTO;
		return sizeof *rep;
	}
	int status = 0;
	size_t rsize = sizeof *rep;
	pthread_mutex_lock(&cl->objs_mu);
	const sk__cl_obj *o = h.obj >= 1 && h.obj <= cl->nobjs ? cl->objs[h.obj - 1] : NULL;
	if (!o) {
		status = SK_ECLUSTER_PROTO;
	} else if (h.itemsize != o->itemsize) {
		status = SK_ECLUSTER_PROTO;
	} else if ((status = op_allowed(o, h.op)) == 0) {
		size_t isz = in_size(o, h.op), osz = out_size(o, h.op, h.flags);
		if (bytes != sizeof h + h.count * (8 + isz)) {
			status = SK_ECLUSTER_PROTO;
		} else {
			/* buf is malloc'd and the header is 48 bytes: the
			 * indices are aligned. */
			const uint64_t *loc = (const uint64_t *)((const char *)buf + sizeof h);
			const void *in = (const char *)buf + sizeof h + h.count * 8;
			status = sk__cl_apply(o, h.op, h.flags, h.count, loc, in, (char *)rep + sizeof *rep);
			if (!status) {
				rsize += h.count * osz;
				rep->count = h.count;
				atomic_fetch_add(&cl->st_elements_served, h.count);
			}
		}
	}
	pthread_mutex_unlock(&cl->objs_mu);
	rep->status = status;
	if (status)
		rsize = sizeof *rep;
	return rsize;
}

/* Replies in flight: the server goes on to the next request while a reply
 * travels. A slot whose send has not completed within the deadline fails
 * the handle (its caller is gone). Returns a free slot, or NULL with *rc set
 * when none frees in time (wait) or none is free (no wait). */
static sk__cl_slot *free_slot(sk_cluster *cl, bool wait, int *rc)
{
	int64_t start = sk__cl_now();
	*rc = 0;
	for (;;) {
		sk__cl_slot *free = NULL;
		int64_t t = sk__cl_now();
		for (int i = 0; i < SK__CL_REPLY_SLOTS; i++) {
			sk__cl_slot *sl = &cl->slots[i];
			if (sl->req != MPI_REQUEST_NULL) {
				int done = 0;
				if ((*rc = sk__cl_mpi(cl, MPI_Test(&sl->req, &done, MPI_STATUS_IGNORE))) != 0)
					return NULL;
				if (!done && t - sl->since > cl->deadline_ns) {
					*rc = sk__cl_fail(cl, SK_ECLUSTER_TIMEOUT);
					return NULL;
				}
			}
			if (sl->req == MPI_REQUEST_NULL && !free)
				free = sl;
		}
		if (free || !wait)
			return free;
		if (t - start > cl->deadline_ns || atomic_load(&cl->stop)) {
			*rc = sk__cl_fail(cl, SK_ECLUSTER_TIMEOUT);
			return NULL;
		}
		sched_yield();
	}
}

int sk__cl_serve_drain(sk_cluster *cl)
{
	int64_t start = sk__cl_now();
	for (;;) {
		int rc, busy = 0;
		free_slot(cl, false, &rc);
		if (rc)
			return rc;
		for (int i = 0; i < SK__CL_REPLY_SLOTS; i++)
			busy += cl->slots[i].req != MPI_REQUEST_NULL;
		if (!busy)
			return 0;
		if (sk__cl_now() - start > cl->deadline_ns)
			return sk__cl_fail(cl, SK_ECLUSTER_TIMEOUT);
		sk__cl_nap(2000);
	}
}

/* Takes the next request that has come, if any, into rx: received from
 * now on (MPI_Imrecv), handled once complete. A message longer than any
 * request is received whole all the same, into memory of its own freed once
 * it is refused: a receive into a shorter buffer is an error neither MPI
 * here survives (MPICH aborts the job; Open MPI's TCP transport drops the
 * connection). 1 taken, 0 none, or the handle's failure code. */
static int take_request(sk_cluster *cl, sk__cl_rx *rx)
{
	int flag = 0;
	MPI_Message msg;
	MPI_Status st;
	if (sk__cl_mpi(cl, MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, cl->req, &flag, &msg, &st)))
		return SK_ECLUSTER_MPI;
	if (!flag)
		return 0;
	int bytes = 0;
	if (sk__cl_mpi(cl, MPI_Get_count(&st, MPI_BYTE, &bytes)) || bytes < 0)
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	rx->bytes = (size_t)bytes;
	rx->source = st.MPI_SOURCE;
	rx->tag = st.MPI_TAG;
	void *into;
	if (rx->bytes <= REQ_MAX) {
		if (grow(&rx->buf, &rx->cap, rx->bytes > 64 ? rx->bytes : 64))
			return sk__cl_fail(cl, -ENOMEM);
		into = rx->buf;
	} else if (!(into = rx->over = malloc(rx->bytes))) {
		return sk__cl_fail(cl, -ENOMEM);
	}
	if (sk__cl_mpi(cl, MPI_Imrecv(into, bytes, MPI_BYTE, &msg, &rx->req)))
		return SK_ECLUSTER_MPI;
	rx->active = true;
	rx->since = sk__cl_now();
	return 1;
}

/* Waits until rx's request is received, within the deadline (it polls:
 * only polling moves a large message on). */
static int finish_request(sk_cluster *cl, sk__cl_rx *rx)
{
	while (rx->req != MPI_REQUEST_NULL) {
		int done = 0;
		if (sk__cl_mpi(cl, MPI_Test(&rx->req, &done, MPI_STATUS_IGNORE)))
			return SK_ECLUSTER_MPI;
		if (done)
			break;
		int64_t waited = sk__cl_now() - rx->since;
		if (waited > cl->deadline_ns || atomic_load(&cl->stop))
			return sk__cl_fail(cl, SK_ECLUSTER_TIMEOUT);
		if (waited > SK__CL_WAIT_SPIN_NS) { /* a slow sender: poll ever less often, up to poll_ns */
			int64_t d = waited / 16;
			sk__cl_nap(d > cl->poll_ns ? cl->poll_ns : d);
		}
	}
	return 0;
}

int sk__cl_serve(sk_cluster *cl, int max)
{
	int served = 0, rc;
	free_slot(cl, false, &rc); /* completes replies sent earlier */
	if (rc)
		return rc;
	while (served < max) {
		sk__cl_rx *rx = &cl->rx[cl->rx_cur], *next = &cl->rx[!cl->rx_cur];
		if (!rx->active && (rc = take_request(cl, rx)) <= 0)
			return rc < 0 ? rc : served;
		if ((rc = finish_request(cl, rx)) != 0)
			return rc;
		/* The next request, if one has come, is received while this
		 * one is worked on. */
		if (!next->active && (rc = take_request(cl, next)) < 0)
			return rc;
		sk__cl_slot *sl = free_slot(cl, true, &rc);
		if (!sl)
			return rc;
		if (grow(&sl->buf, &sl->cap, sizeof(sk__cl_rep) + SK__CL_PIECE_MAX * 8))
			return sk__cl_fail(cl, -ENOMEM);
		size_t rsize = handle(cl, rx->over ? rx->over : rx->buf, rx->bytes, sl->buf);
		free(rx->over);
		rx->over = NULL;
		rx->active = false;
		if (next->active)
			cl->rx_cur = !cl->rx_cur;
		/* Counted before the reply goes: once a caller has its reply,
		 * the count includes its request. */
		served++;
		atomic_fetch_add(&cl->st_requests_served, 1);
		/* The caller posted its receive before its request. */
		if (sk__cl_mpi(cl, MPI_Isend(sl->buf, (int)rsize, MPI_BYTE, rx->source, rx->tag, cl->rep, &sl->req)))
			return SK_ECLUSTER_MPI;
		sl->since = sk__cl_now();
	}
	return served;
}

void *sk__cl_service_main(void *arg)
{
	sk_cluster *cl = arg;
	/* Naps of a few microseconds must be that short: the default timer
	 * slack (50 us) would stretch them. Only this thread is affected. */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	int64_t last = sk__cl_now();
	while (!atomic_load_explicit(&cl->stop, memory_order_acquire)) {
		int n = atomic_load(&cl->failed) ? 0 : sk__cl_serve(cl, 64);
		int64_t t = sk__cl_now();
		if (n > 0) {
			last = t;
			continue;
		}
		/* Never a busy loop: a thread spinning in MPI calls takes MPI's
		 * locks from the process's other threads (with Open MPI 4.1 a
		 * spinning prober made the main thread's ping-pong 10 to 200
		 * times slower, seen here). Naps grow with the quiet. */
		int64_t d = (t - last) / 16;
		d = d < SK__CL_SERVE_NAP_MIN_NS ? SK__CL_SERVE_NAP_MIN_NS : d > cl->poll_ns ? cl->poll_ns : d;
		sk__cl_nap(d);
	}
	if (!atomic_load(&cl->failed))
		sk__cl_serve_drain(cl);
	return NULL;
}

/* ---- The caller's side ---- */

typedef struct piece {
	int node;
	size_t first, count; /* positions in the bucketed order */
	void *req, *rep;
	size_t req_size, rep_size;
} piece;

typedef struct call_state {
	piece *pieces;
	const size_t *perm; /* bucketed position -> position in the slice; NULL: the same */
	size_t base;        /* the slice's first position in the caller's lists */
	size_t osz;
	void *out;
	int op;
} call_state;

/* A reply arrived (even indices are receives, odd ones sends). */
static int on_done(void *arg, int i, const MPI_Status *st)
{
	call_state *cs = arg;
	if (i % 2)
		return 0;
	piece *p = &cs->pieces[i / 2];
	int got = 0;
	MPI_Get_count(st, MPI_BYTE, &got);
	sk__cl_rep h;
	if (got < (int)sizeof h)
		return SK_ECLUSTER_PROTO;
	memcpy(&h, p->rep, sizeof h);
	if (h.magic != SK__CL_REP_MAGIC || h.version != SK__CL_VERSION || h.op != cs->op)
		return SK_ECLUSTER_PROTO;
	if (h.status < 0)
		return h.status >= -4095 ? h.status : SK_ECLUSTER_PROTO;
	if (h.count != p->count || (size_t)got != p->rep_size)
		return SK_ECLUSTER_PROTO;
	if (cs->out && cs->osz) {
		const char *v = (const char *)p->rep + sizeof h;
		char *out = (char *)cs->out + cs->base * cs->osz;
		if (!cs->perm)
			memcpy(out + p->first * cs->osz, v, p->count * cs->osz);
		else if (cs->osz == 8)
			for (size_t k = 0; k < p->count; k++)
				memcpy(out + cs->perm[p->first + k] * 8, v + k * 8, 8);
		else
			for (size_t k = 0; k < p->count; k++)
				memcpy(out + cs->perm[p->first + k] * cs->osz, v + k * cs->osz, cs->osz);
	}
	return 0;
}

/* Sends the pieces of one slice to their nodes and waits for the replies.
 * loc (and vals) are in bucketed order; start[k]..start[k+1] is node k's. */
static int exchange(sk_cluster *cl, const sk__cl_obj *local, int op, uint32_t flags, const size_t *start,
		    const uint64_t *loc, const char *vals, size_t isz, size_t osz, call_state *cs)
{
	int nodes = cl->nodes, me = cl->node_id, np = 0, rc = 0;
	for (int k = 0; k < nodes; k++)
		if (k != me)
			np += (int)((start[k + 1] - start[k] + SK__CL_PIECE - 1) / SK__CL_PIECE);
	if (np == 0)
		return 0;
	piece *pc = calloc((size_t)np, sizeof *pc);
	MPI_Request *reqs = malloc(sizeof *reqs * 2 * (size_t)np);
	/* The pieces' requests and replies, each on a 64-byte boundary, in the
	 * handle's buffers. */
	size_t nout = start[nodes] - (start[me + 1] - start[me]);
	size_t req_bytes = (size_t)np * (sizeof(sk__cl_req) + 64) + nout * (8 + isz);
	size_t rep_bytes = (size_t)np * (sizeof(sk__cl_rep) + 64) + nout * osz;
	sk__cl_buf *rq = &cl->bufs[SK__CL_BUF_REQS], *rp = &cl->bufs[SK__CL_BUF_REPS];
	if (!pc || !reqs || grow(&rq->p, &rq->cap, req_bytes) || grow(&rp->p, &rp->cap, rep_bytes)) {
		free(pc);
		free(reqs);
		return -ENOMEM;
	}
	char *rq_at = rq->p, *rp_at = rp->p;
	int j = 0;
	for (int k = 0; k < nodes && !rc; k++) {
		if (k == me)
			continue;
		for (size_t f = start[k]; f < start[k + 1]; f += SK__CL_PIECE) {
			piece *p = &pc[j];
			p->node = k;
			p->first = f;
			p->count = start[k + 1] - f < SK__CL_PIECE ? start[k + 1] - f : SK__CL_PIECE;
			p->req_size = sizeof(sk__cl_req) + p->count * (8 + isz);
			p->rep_size = sizeof(sk__cl_rep) + p->count * osz;
			p->req = rq_at;
			p->rep = rp_at;
			rq_at += (p->req_size + 63) / 64 * 64;
			rp_at += (p->rep_size + 63) / 64 * 64;
			reqs[2 * j] = reqs[2 * j + 1] = MPI_REQUEST_NULL;
			j++;
			sk__cl_req h = { .magic = SK__CL_REQ_MAGIC,
					 .version = SK__CL_VERSION,
					 .op = (uint16_t)op,
					 .obj = local->id,
					 .itemsize = (uint32_t)local->itemsize,
					 .flags = flags,
					 .count = p->count };
			memcpy(p->req, &h, sizeof h);
			memcpy((char *)p->req + sizeof h, loc + f, p->count * 8);
			if (isz)
				memcpy((char *)p->req + sizeof h + p->count * 8, vals + f * isz, p->count * isz);
		}
	}
	/* The receives first, then the requests: all in flight at once. */
	for (int q = 0; q < j && !rc; q++) {
		piece *p = &pc[q];
		cl->tag = cl->tag % (uint32_t)cl->tag_max + 1;
		int dest = cl->leader_of[p->node];
		if (sk__cl_mpi(
			cl, MPI_Irecv(p->rep, (int)p->rep_size, MPI_BYTE, dest, (int)cl->tag, cl->rep, &reqs[2 * q])) ||
		    sk__cl_mpi(cl, MPI_Isend(p->req, (int)p->req_size, MPI_BYTE, dest, (int)cl->tag, cl->req,
					     &reqs[2 * q + 1]))) {
			rc = SK_ECLUSTER_MPI;
			break;
		}
		atomic_fetch_add(&cl->st_requests_sent, 1);
		atomic_fetch_add(&cl->st_elements_sent, p->count);
	}
	if (!rc) {
		cs->pieces = pc;
		rc = sk__cl_wait(cl, 2 * j, reqs, sk__cl_now() + cl->deadline_ns, SK__CL_WAIT_SPIN_NS, on_done, cs);
		/* A refused request after others went out: the outstanding ones
		 * must still complete. */
		if (rc < 0 && !atomic_load(&cl->failed)) {
			int e = sk__cl_wait(cl, 2 * j, reqs, sk__cl_now() + cl->deadline_ns, SK__CL_WAIT_SPIN_NS, NULL,
					    NULL);
			if (e)
				rc = e;
		}
	}
	/* Buffers of requests still in flight after a failure are left to
	 * MPI: the handle is failed and the job goes, and the handle forgets
	 * them (closing it does not free them). */
	bool inflight = false;
	for (int q = 0; q < 2 * j; q++)
		inflight |= reqs[q] != MPI_REQUEST_NULL;
	if (inflight) {
		*rq = (sk__cl_buf){ 0 };
		*rp = (sk__cl_buf){ 0 };
	} else {
		free(pc);
		free(reqs);
	}
	return rc;
}

int sk__cl_call(sk_cluster *cl, const sk__cl_obj *local, const sk__cl_map *map, uint64_t total, int op, uint32_t flags,
		size_t n, const uint64_t *index, const void *in, void *out)
{
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	if (n > 0 && !index)
		return -EINVAL;
	if ((rc = op_allowed(local, op)) != 0)
		return rc;
	size_t isz = in_size(local, op), osz = out_size(local, op, flags);
	if ((isz && !in) || (osz && !out))
		return n ? -EINVAL : 0;
	/* Every index is checked before anything is done: a batch of one
	 * slice while it is located (one pass over the list), a longer one
	 * first. An empty object is checked first too: its map may have no
	 * columns to locate by (a block map of 0 columns divides by 0). */
	bool one_slice = n <= SK__CL_SLICE && total > 0;
	for (size_t i = 0; !one_slice && i < n; i++)
		if (index[i] >= total)
			return -ERANGE;
	int nodes = cl->nodes, me = cl->node_id;
	size_t slice = n < SK__CL_SLICE ? n : SK__CL_SLICE, sl = slice ? slice : 1;
	/* owner, lt (list order), loc (bucketed order), perm and vals: in the
	 * handle's buffer, 8-byte aligned (isz is 1, 2, 4 or 8). */
	sk__cl_buf *sb = &cl->bufs[SK__CL_BUF_SLICE];
	size_t *start = calloc((size_t)nodes + 2, sizeof *start), *fill = calloc((size_t)nodes + 1, sizeof *fill);
	if (!start || !fill || grow(&sb->p, &sb->cap, sl * (sizeof(int) + 8 + 8 + sizeof(size_t) + isz) + 8)) {
		rc = -ENOMEM;
		goto out;
	}
	uint64_t *lt = sb->p, *loc = lt + sl;
	size_t *perm = (size_t *)(loc + sl);
	int *owner = (int *)(perm + sl);
	char *vals = isz ? (char *)(owner + sl + (sl & 1)) : NULL;
	for (size_t base = 0; base < n && !rc; base += slice) {
		size_t m = n - base < slice ? n - base : slice;
		const char *in_s = isz ? (const char *)in + base * isz : NULL;
		char *out_s = osz ? (char *)out + base * osz : NULL;
		bool single = true, bad = false;
		const sk__cl_map mp = *map; /* a local copy: the stores below cannot alias it */
		for (size_t i = 0; i < m; i++) {
			uint64_t x = index[base + i];
			bad |= x >= total; /* located all the same: no access depends on x */
			owner[i] = sk__cl_locate(&mp, x, &lt[i]);
			single &= owner[i] == owner[0];
		}
		if (bad) {
			rc = -ERANGE; /* only of a batch of one slice: nothing is done yet */
			break;
		}
		call_state cs = { .base = base, .osz = osz, .out = out, .op = op };
		if (single) {
			/* One owner: no reordering at all. */
			int k = owner[0];
			if (k == me) {
				rc = sk__cl_apply_trusted(local, op, flags, m, lt, in_s, out_s);
				atomic_fetch_add(&cl->st_elements_local, m);
				continue;
			}
			memset(start, 0, sizeof *start * ((size_t)nodes + 1));
			for (int q = k + 1; q <= nodes; q++)
				start[q] = m;
			rc = exchange(cl, local, op, flags, start, lt, in_s, isz, osz, &cs);
			continue;
		}
		/* Bucketed by owner, keeping list order within a node. */
		memset(start, 0, sizeof *start * ((size_t)nodes + 1));
		for (size_t i = 0; i < m; i++)
			start[owner[i] + 1]++;
		for (int k = 0; k < nodes; k++)
			start[k + 1] += start[k];
		memcpy(fill, start, sizeof *fill * (size_t)nodes);
		for (size_t i = 0; i < m; i++) {
			size_t pos = fill[owner[i]]++;
			perm[pos] = i;
			loc[pos] = lt[i];
		}
		if (isz == 8)
			for (size_t pos = 0; pos < m; pos++)
				memcpy(vals + pos * 8, in_s + perm[pos] * 8, 8);
		else if (isz)
			for (size_t pos = 0; pos < m; pos++)
				memcpy(vals + pos * isz, in_s + perm[pos] * isz, isz);
		cs.perm = perm;
		/* The others' shares go out first, this node's is done meanwhile
		 * (the requests are in flight), then the replies. */
		size_t mine = start[me + 1] - start[me];
		if (mine) {
			/* Results of this node go to a spare stretch: lt is free now. */
			char *res = osz ? (char *)lt : NULL;
			if (osz > 8) {
				rc = -EINVAL;
				break;
			}
			rc = sk__cl_apply_trusted(local, op, flags, mine, loc + start[me],
						  isz ? vals + start[me] * isz : NULL, res);
			if (rc)
				break;
			for (size_t k = 0; osz && k < mine; k++)
				memcpy(out_s + perm[start[me] + k] * osz, res + k * osz, osz);
			atomic_fetch_add(&cl->st_elements_local, mine);
		}
		rc = exchange(cl, local, op, flags, start, loc, vals, isz, osz, &cs);
	}
out:
	free(start);
	free(fill);
	return rc;
}
