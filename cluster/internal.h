/*
 * cluster/internal.h: private declarations of libshmkit_mpi (sk__cl_ prefix).
 * Nothing here is part of the public API or ABI. The library uses only
 * shmkit's public C API (shmkit.h) and MPI-3.
 */
#ifndef SHMKIT_CLUSTER_INTERNAL_H
#define SHMKIT_CLUSTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmkit.h"
#include "shmkit/cluster.h"

/* Elements a request may carry at most (the protocol's limit, which every
 * server accepts): 2^18 indices (2 MiB) plus as many values. Callers send
 * pieces of SK__CL_PIECE elements, several in flight, so that an owner works
 * on one while the next travels. A call's batch is cut into slices of
 * SK__CL_SLICE elements, each bucketed by owner. */
#define SK__CL_PIECE_MAX (UINT64_C(1) << 18)
#ifndef SK__CL_PIECE
#define SK__CL_PIECE (UINT64_C(1) << 15)
#endif
#define SK__CL_SLICE (UINT64_C(1) << 20)
_Static_assert(SK__CL_PIECE <= SK__CL_PIECE_MAX, "pieces within the protocol's limit");

/* The idle service thread sleeps between polls a sixteenth of the quiet
 * since its last request, at least SK__CL_SERVE_NAP_MIN_NS, at most poll_ns.
 * The waits of calls poll without sleeping for SK__CL_WAIT_SPIN_NS after the
 * last completion (large transfers progress only while polled), then sleep a
 * sixteenth of the quiet so far, up to SK__CL_WAIT_NAP_NS: a rank waiting
 * long in a fence polls 1000 times a second, not 20000, and does not crowd
 * its node's service thread out of MPI. */
#define SK__CL_SERVE_NAP_MIN_NS 2000
#define SK__CL_WAIT_SPIN_NS     1000000
#define SK__CL_WAIT_NAP_NS      1000000
#define SK__CL_SYNC_SPIN_NS     20000

/* Operations of the request protocol (docs/cluster.md, "Wire format"). */
enum {
	SK__CL_GATHER = 1,
	SK__CL_SCATTER = 2,
	SK__CL_ADD = 3, /* flags & SK__CL_WANT_OLD: the old values come back */
	SK__CL_BTEST = 4,
	SK__CL_BSET = 5,   /* flags & SK__CL_WANT_OLD: the old bits come back */
	SK__CL_BCLEAR = 6, /* likewise */
};
#define SK__CL_WANT_OLD 0x1

#define SK__CL_REQ_MAGIC 0x51434b53u /* "SKCQ" little-endian */
#define SK__CL_REP_MAGIC 0x52434b53u /* "SKCR" */
#define SK__CL_VERSION   1u

/* A request: this header, then count uint64 indices into the owner's part,
 * then (scatter, add) count values of itemsize bytes. Fixed width, host
 * byte order (a cluster is of one architecture). */
typedef struct sk__cl_req {
	uint32_t magic;    /* 0 */
	uint16_t version;  /* 4 */
	uint16_t op;       /* 6 */
	uint32_t obj;      /* 8: object id, the same on every rank */
	uint32_t itemsize; /* 12: bytes per value as the requester knows it */
	uint32_t flags;    /* 16 */
	uint32_t resv0;    /* 20 */
	uint64_t count;    /* 24 */
	uint64_t resv[2];  /* 32 */
} sk__cl_req;
_Static_assert(sizeof(sk__cl_req) == 48, "request header is 48 bytes");

/* A reply: this header, then count values (gather, add with old values) or
 * count bytes of 0/1 (bit tests, bit sets with old values), or nothing. A
 * refused request gets status < 0 and no payload. */
typedef struct sk__cl_rep {
	uint32_t magic;   /* 0 */
	uint16_t version; /* 4 */
	uint16_t op;      /* 6 */
	int32_t status;   /* 8: 0 or a negative shmkit code */
	uint32_t resv0;   /* 12 */
	uint64_t count;   /* 16 */
	uint64_t resv1;   /* 24 */
} sk__cl_rep;
_Static_assert(sizeof(sk__cl_rep) == 32, "reply header is 32 bytes");

/* What the service needs to know of a partitioned object of its node. */
typedef struct sk__cl_obj {
	uint32_t id;
	bool is_bits;
	bool writable;
	sk_dtype dtype;  /* arrays */
	size_t itemsize; /* bytes per element; 1 for bit arrays (the byte a bit travels in) */
	void *base;      /* the node's part: array data or bit words (NULL when empty) */
	uint64_t count;  /* elements or bits in the node's part */
} sk__cl_obj;

/* A reply in flight from a server (service.c). */
#define SK__CL_REPLY_SLOTS 4
typedef struct sk__cl_slot {
	void *buf;
	size_t cap;
	MPI_Request req; /* MPI_REQUEST_NULL when free */
	int64_t since;
} sk__cl_slot;

/* Memory a handle keeps between calls (service.c): a batch then reuses
 * pages it has touched before instead of faulting in fresh ones (a batch of
 * 2^18 elements allocated about 11 MiB per call). */
typedef struct sk__cl_buf {
	void *p;
	size_t cap;
} sk__cl_buf;

/* The caller's buffers: for locating a slice, and the pieces' requests and
 * replies. One thread at a time uses a handle, so one set is enough. */
enum { SK__CL_BUF_SLICE, SK__CL_BUF_REQS, SK__CL_BUF_REPS, SK__CL_BUFS };

/* A request a server receives (service.c): two in turn, so that the next
 * request's bytes arrive while the server works on one. */
typedef struct sk__cl_rx {
	void *buf;
	size_t cap;
	void *over;      /* a message longer than any request: received here, refused */
	MPI_Request req; /* MPI_REQUEST_NULL when nothing is being received */
	bool active;     /* a request posted or received, not yet handled */
	size_t bytes;    /* bytes the message has */
	int source, tag;
	int64_t since;
} sk__cl_rx;

struct sk_cluster {
	MPI_Comm comm;    /* the library's collectives */
	MPI_Comm req;     /* requests to the servers */
	MPI_Comm rep;     /* their replies */
	MPI_Comm node;    /* the ranks of this node */
	MPI_Comm leaders; /* the leaders, or MPI_COMM_NULL */
	int rank, size;
	int node_id, nodes, node_rank, node_size;
	int *node_of;   /* [size] */
	int *leader_of; /* [nodes] */
	uint64_t job;
	int64_t deadline_ns;
	int64_t poll_ns;
	int mode;     /* SK_CLUSTER_SERVE_THREAD or _INLINE */
	int tag_max;  /* reply tags are 1..tag_max */
	uint32_t tag; /* the last reply tag used */
	_Atomic int failed;
	_Atomic int mpi_error; /* the MPI error code behind an SK_ECLUSTER_MPI failure */
	uint32_t next_id;      /* object ids, advanced by every collective create */
	int nopen;             /* objects not yet closed */

	/* The service (leaders only). */
	bool serving;
	pthread_t thread;
	bool thread_started;
	_Atomic int stop;
	pthread_mutex_t objs_mu; /* guards objs against the service thread */
	sk__cl_obj **objs;       /* indexed by id - 1; NULL when closed */
	uint32_t nobjs;
	sk__cl_rx rx[2]; /* the request being handled and the next, received meanwhile */
	int rx_cur;      /* the index in rx of the one to handle next */
	sk__cl_slot slots[SK__CL_REPLY_SLOTS];

	/* The caller's side. */
	sk__cl_buf bufs[SK__CL_BUFS];

	_Atomic uint64_t st_requests_sent, st_elements_sent, st_elements_local, st_requests_served, st_elements_served;
};

/* cluster.c */
int64_t sk__cl_now(void);
void sk__cl_nap(int64_t ns);
/* Marks the handle failed with code (the first failure stays) and returns code. */
int sk__cl_fail(sk_cluster *cl, int code);
/* 0 for MPI_SUCCESS; else keeps the MPI error code and fails the handle
 * with SK_ECLUSTER_MPI, which it returns. */
int sk__cl_mpi(sk_cluster *cl, int mpi_rc);
/* SK_ECLUSTER_FAILED if the handle failed, else 0. */
int sk__cl_check(const sk_cluster *cl);
/* Waits until the n requests complete (MPI_REQUEST_NULL entries count as
 * done) or the deadline passes, serving requests meanwhile in inline mode.
 * on_done(arg, i, status) is called once per request as it completes; a
 * negative return stops the wait with that code (the handle does not fail).
 * Returns 0, or fails the handle with SK_ECLUSTER_TIMEOUT / _MPI. */
int sk__cl_wait(sk_cluster *cl, int n, MPI_Request *reqs, int64_t deadline, int64_t spin_ns,
		int (*on_done)(void *arg, int i, const MPI_Status *st), void *arg);
/* How long a wait polls without sleeping: waits for data (replies,
 * broadcasts) poll SK__CL_WAIT_SPIN_NS, since transfers progress only while
 * polled; waits for agreement (barriers, reductions) in a process that runs a
 * service thread poll only briefly, so as not to take MPI from the service. */
int64_t sk__cl_sync_spin(const sk_cluster *cl);
/* Collectives with the handle's deadline, on comm (one of the handle's). */
int sk__cl_barrier(sk_cluster *cl, MPI_Comm comm);
/* Broadcasts in pieces of 16 MiB, four in flight; each window of pieces gets
 * the full deadline, and tick(cl, arg) (if not NULL) runs after each. */
int sk__cl_bcast(sk_cluster *cl, void *buf, uint64_t bytes, int root, MPI_Comm comm,
		 int (*tick)(sk_cluster *cl, void *arg), void *arg);
/* In place: v[i] = min over the ranks of comm, for n int64 values. */
int sk__cl_allmin(sk_cluster *cl, int64_t *v, int n, MPI_Comm comm);
/* The agreed result of a collective step: min of rc over comm (rc when the
 * exchange itself fails). */
int sk__cl_agree(sk_cluster *cl, int rc);
/* Registers an object with this node's service (leaders) or removes it. */
int sk__cl_register(sk_cluster *cl, sk__cl_obj *o);
void sk__cl_unregister(sk_cluster *cl, uint32_t id);

/* service.c */
/* Serves up to max requests waiting for this rank; returns how many, or a
 * negative code (the handle has failed). */
int sk__cl_serve(sk_cluster *cl, int max);
/* Waits (with the deadline) until every reply this server sent is out. */
int sk__cl_serve_drain(sk_cluster *cl);
void *sk__cl_service_main(void *arg);
/* A split of [0, total) into `parts` parts, first[k] = floor(total*k/parts):
 * finding x's part takes a multiplication by a fixed-point reciprocal
 * (floor(2^64 * parts / total)) and a step or two, not a division. */
typedef struct sk__cl_split {
	const uint64_t *first; /* [parts + 1] */
	uint64_t recip;
	int parts;
} sk__cl_split;

static inline sk__cl_split sk__cl_split_of(const uint64_t *first, int parts, uint64_t total)
{
	unsigned __int128 r = total ? ((unsigned __int128)(unsigned)parts << 64) / total : 0;
	return (sk__cl_split){ first, r > UINT64_MAX ? UINT64_MAX : (uint64_t)r, parts };
}

static inline int sk__cl_find(const sk__cl_split *s, uint64_t x)
{
	uint64_t g = (uint64_t)(((unsigned __int128)x * s->recip) >> 64);
	int k = g < (uint64_t)s->parts ? (int)g : s->parts - 1;
	while (k + 1 < s->parts && s->first[k + 1] <= x)
		k++;
	while (k > 0 && s->first[k] > x)
		k--;
	return k;
}

/* Where the elements of an object live: a flat index's owner node and its
 * index in that node's part. */
enum { SK__CL_MAP_LOCAL = 1, SK__CL_MAP_SPLIT = 2, SK__CL_MAP_BLOCKS = 3 };
typedef struct sk__cl_map {
	int kind;                    /* LOCAL: every index is this node's (replicated) */
	int me;                      /* this rank's node */
	int shift;                   /* SPLIT: an index's unit is index >> shift (6: words of bits; 0: elements) */
	int pcols;                   /* BLOCKS: node = grid row * pcols + grid column */
	sk__cl_split nodes_split;    /* SPLIT: units over the nodes */
	uint64_t cols;               /* BLOCKS: the array as rows x cols */
	sk__cl_split rsplit, csplit; /* BLOCKS: rows over the grid's rows, columns over its columns */
} sk__cl_map;

/* Owner of flat index i (< the object's total), and i's index there. */
static inline int sk__cl_locate(const sk__cl_map *m, uint64_t i, uint64_t *local)
{
	if (m->kind == SK__CL_MAP_LOCAL) {
		*local = i;
		return m->me;
	}
	if (m->kind == SK__CL_MAP_SPLIT) {
		int k = sk__cl_find(&m->nodes_split, i >> m->shift);
		*local = i - (m->nodes_split.first[k] << m->shift);
		return k;
	}
	uint64_t r = i / m->cols, c = i - r * m->cols;
	int a = sk__cl_find(&m->rsplit, r), bb = sk__cl_find(&m->csplit, c);
	const uint64_t *cb = m->csplit.first;
	*local = (r - m->rsplit.first[a]) * (cb[bb + 1] - cb[bb]) + (c - cb[bb]);
	return a * m->pcols + bb;
}

/* Runs one batched operation: indices checked (< total) and located with
 * map; this node's share applied in place while the rest is in flight to the
 * owners' leaders; replies waited for. in: n values of the element size (or
 * NULL); out: n values of the element size, or n bytes for bits (or NULL). */
int sk__cl_call(sk_cluster *cl, const sk__cl_obj *local, const sk__cl_map *map, uint64_t total, int op, uint32_t flags,
		size_t n, const uint64_t *index, const void *in, void *out);
/* Applies an operation to a part in this process's mapping; indices are
 * checked against o->count first (-ERANGE: nothing done). */
int sk__cl_apply(const sk__cl_obj *o, int op, uint32_t flags, size_t n, const uint64_t *loc, const void *in, void *out);
/* The same without the checks, for indices this process located itself. */
int sk__cl_apply_trusted(const sk__cl_obj *o, int op, uint32_t flags, size_t n, const uint64_t *loc, const void *in,
			 void *out);

/* npy.c: a .npy file's header, checked (trust: the file is input). */
typedef struct sk__cl_npy {
	sk_dtype dtype;
	int ndim;
	uint64_t shape[SK_MAX_DIMS];
	uint64_t nbytes;
	uint64_t data_offset;
} sk__cl_npy;
/* Parses the first len bytes of a file of file_size bytes. Returns 0,
 * SK_EFOREIGN, SK_ETYPE, SK_ECORRUPT, SK_ETRUNCATED or -EOVERFLOW. */
int sk__cl_npy_parse(const unsigned char *buf, size_t len, uint64_t file_size, sk__cl_npy *out);

#endif
