/*
 * shmkit/cluster.h: the same arrays across machines, one copy per node, on
 * MPI. Link with -lshmkit_mpi -lshmkit and your MPI (docs/cluster.md).
 *
 * A cluster handle is made from any MPI communicator. Its ranks are grouped
 * into nodes: the ranks that share memory (MPI_COMM_TYPE_SHARED), or smaller
 * pseudo-nodes of k ranks for tests. Each node has a leader (its lowest rank).
 *
 * Replicated arrays and bit arrays hold one copy per node: an ordinary shmkit
 * segment that the node's leader makes and the node's other ranks attach by
 * name, zero-copy. The leaders fill it by broadcast from a root rank's buffer
 * or .npy file, and it is frozen read-only when published.
 *
 * Partitioned arrays and bit arrays spread rows (or 2-D blocks) over the
 * nodes, not the ranks: every rank of a node maps the node's part zero-copy.
 * Lists of elements anywhere are gathered, scattered and added to atomically
 * (bits: tested, set, cleared) in batches; the owning node's leader serves
 * the requests of other nodes (two-sided: a service thread, or inline in the
 * leader's own calls when MPI gives no MPI_THREAD_MULTIPLE). Every call that
 * waits for another rank has a deadline: a dead or stuck peer gives
 * SK_ECLUSTER_TIMEOUT, never a hang, and the handle fails for good
 * (fail-stop). The job id, which every rank agrees on, is in every segment
 * name, and a name lives only while the node's ranks attach: nothing is left
 * behind, however the job ends.
 *
 * Threads: a handle and its objects are used by one thread at a time (the
 * library's own service thread aside). Collective calls (marked so) must be
 * made by every rank of the handle in the same order, as MPI collectives.
 * Everything in shared memory is an ordinary shmkit array or bit array.
 */
#ifndef SHMKIT_CLUSTER_H
#define SHMKIT_CLUSTER_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "array.h"
#include "bits.h"
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cluster's own error codes (below the core's SK_E* range). */
enum {
	SK_ECLUSTER_TIMEOUT = -1101,  /* a peer did not answer within the deadline: dead, stuck or unreachable */
	SK_ECLUSTER_MPI = -1102,      /* an MPI call returned an error */
	SK_ECLUSTER_FAILED = -1103,   /* the handle failed earlier (sk_cluster_failed says why): close it */
	SK_ECLUSTER_PROTO = -1104,    /* a peer sent a malformed message or refused a request */
	SK_ECLUSTER_MISMATCH = -1105, /* ranks passed different arguments to a collective call */
};

/* A sentence for any code: the SK_ECLUSTER_* codes here, else sk_strerror(code). */
const char *sk_cluster_strerror(int code);

/* Who serves other nodes' requests on a node (sk_cluster_opts.serve). */
enum {
	SK_CLUSTER_SERVE_AUTO = 0,   /* a thread when MPI provides MPI_THREAD_MULTIPLE, else inline */
	SK_CLUSTER_SERVE_THREAD = 1, /* a service thread in each leader; needs MPI_THREAD_MULTIPLE */
	SK_CLUSTER_SERVE_INLINE = 2, /* the leader serves only while inside a call of this library */
};

/* Options of sk_cluster_create; NULL or zero fields for the defaults. Every
 * rank must pass the same values. */
typedef struct sk_cluster_opts {
	int ranks_per_node;  /* 0: a node is an MPI shared-memory node; k > 0: pseudo-nodes of k ranks within it */
	int serve;           /* SK_CLUSTER_SERVE_*: 0 is AUTO */
	int64_t deadline_ns; /* every wait for a peer; 0: SHMKIT_CLUSTER_DEADLINE_MS from the environment, else 30 s */
	int64_t poll_ns;     /* the idle service thread's longest sleep between polls; 0: 100 us */
	uint64_t resv[4];    /* must be zero */
} sk_cluster_opts;

typedef struct sk_cluster sk_cluster;

/* Collective over comm. Makes a cluster handle: duplicates comm (the library's
 * messages never mix with the caller's), splits it into nodes, picks the
 * leaders, agrees on a random 64-bit job id and, in leaders, starts the
 * service thread. comm is not freed and may be used on. Errors: -EINVAL (bad
 * options, or SK_CLUSTER_SERVE_THREAD without MPI_THREAD_MULTIPLE),
 * SK_ECLUSTER_MISMATCH (ranks passed different options), SK_ECLUSTER_MPI,
 * SK_ECLUSTER_TIMEOUT, -ENOMEM. MPI must be initialised. MPI's communicator
 * constructors (dup, split) have no deadline: a rank that died before this
 * call can hang it. */
int sk_cluster_create(MPI_Comm comm, const sk_cluster_opts *opts, sk_cluster **out);

/* Collective. Waits (with the deadline) until every rank has closed, stops the
 * service thread and frees the handle and its communicators. Close the
 * handle's arrays and bit arrays first. On a failed handle it is local: it
 * stops the thread and frees this process's memory without waiting for
 * anyone (the communicators are left to MPI_Abort or MPI_Finalize). Accepts
 * NULL. Returns 0, or the failure that made the handle unusable. */
int sk_cluster_close(sk_cluster *cl);

/* Where am I. Nodes are numbered 0..nodes-1 in the order of their leaders'
 * ranks; ranks are those of the communicator given to sk_cluster_create. */
int sk_cluster_rank(const sk_cluster *cl);
int sk_cluster_size(const sk_cluster *cl);
int sk_cluster_node(const sk_cluster *cl);      /* this rank's node */
int sk_cluster_nodes(const sk_cluster *cl);     /* number of nodes */
int sk_cluster_node_rank(const sk_cluster *cl); /* rank within the node; 0 is the leader */
int sk_cluster_node_size(const sk_cluster *cl); /* ranks in this node */
/* The node of a rank, or -ERANGE. */
int sk_cluster_node_of(const sk_cluster *cl, int rank);
/* The rank that leads (and serves) a node, or -ERANGE. */
int sk_cluster_leader_of(const sk_cluster *cl, int node);
/* The job id: random, the same on every rank of the handle, in every name. */
uint64_t sk_cluster_job_id(const sk_cluster *cl);
/* The handle's communicators (owned by the handle): its duplicate of comm,
 * the node's ranks, and the leaders (MPI_COMM_NULL on other ranks). */
MPI_Comm sk_cluster_comm(const sk_cluster *cl);
MPI_Comm sk_cluster_node_comm(const sk_cluster *cl);
MPI_Comm sk_cluster_leader_comm(const sk_cluster *cl);
/* SK_CLUSTER_SERVE_THREAD or SK_CLUSTER_SERVE_INLINE: how this handle serves. */
int sk_cluster_serve_mode(const sk_cluster *cl);

/* The deadline of every later wait, in ns (> 0); returns the previous one or
 * -EINVAL. Local: each rank sets its own. */
int64_t sk_cluster_set_deadline(sk_cluster *cl, int64_t deadline_ns);

/* Collective. Every rank waits (with the deadline) for every other; after it,
 * every rank sees every update that any rank made before entering it: its
 * own stores into its node's part, and remote scatters and adds, which
 * complete before their call returns. */
int sk_cluster_fence(sk_cluster *cl);

/* Serves requests waiting for this rank (inline mode: a leader that computes
 * for long should call it now and then; a no-op elsewhere). Returns how many
 * it served, or a negative code. */
int sk_cluster_progress(sk_cluster *cl);

/* 0 while the handle is usable; otherwise the error that failed it (a
 * timeout, an MPI error, a malformed message). Thread-safe. */
int sk_cluster_failed(const sk_cluster *cl);
/* The MPI error code behind an SK_ECLUSTER_MPI failure (MPI_Error_string
 * names it), or MPI_SUCCESS. Thread-safe. */
int sk_cluster_mpi_error(const sk_cluster *cl);

/* This rank's counts since the handle was made. */
typedef struct sk_cluster_stats {
	uint64_t requests_sent;   /* messages this rank sent to other nodes' servers */
	uint64_t elements_sent;   /* elements (or bits) those carried */
	uint64_t elements_local;  /* elements this rank's calls handled in its own node's memory */
	uint64_t requests_served; /* requests this rank served for other nodes (leaders) */
	uint64_t elements_served;
	uint64_t resv[3];
} sk_cluster_stats;
int sk_cluster_stats_get(const sk_cluster *cl, sk_cluster_stats *out);

/* ---- Arrays across the cluster ---- */

/* How an array or bit array is spread. */
typedef enum sk_cluster_layout {
	SK_CLUSTER_REPLICATED = 1, /* one whole copy per node, read-only */
	SK_CLUSTER_ROWS = 2,       /* the first dimension split into one range of rows per node */
	SK_CLUSTER_BLOCKS = 3,     /* 2-D: a grid of prows x pcols blocks, one per node */
} sk_cluster_layout;

typedef struct sk_cluster_array sk_cluster_array;
typedef struct sk_cluster_bits sk_cluster_bits;

/* Collective. A replicated array: the leaders each make one copy for their
 * node; the root's buffer goes into the root's node's copy, then to the other
 * leaders by broadcast, and every copy is frozen; the other ranks attach it
 * read-only. dtype, ndim, shape and buf (C order, sk_array_nbytes bytes) are
 * significant at the root only. Errors everywhere alike: the root's argument
 * errors (-EINVAL, -EOVERFLOW), -ENOSPC on any node, SK_ECLUSTER_*. */
int sk_cluster_array_replicate(sk_cluster *cl, int root, sk_dtype dtype, int ndim, const uint64_t *shape,
			       const void *buf, sk_cluster_array **out);
/* Collective. As above, from a .npy file the root reads (straight into its
 * node's copy). path is significant at the root only. File errors reach every
 * rank: -ENOENT, SK_EFOREIGN (not .npy), SK_ETYPE (Fortran order, big-endian
 * or an unsupported dtype), SK_ECORRUPT (bad header), SK_ETRUNCATED. */
int sk_cluster_array_replicate_npy(sk_cluster *cl, int root, const char *path, sk_cluster_array **out);

/* Collective. A zero-filled partitioned array of ndim >= 1 dimensions.
 * SK_CLUSTER_ROWS gives node k the rows [R*k/N, R*(k+1)/N) of the R rows
 * (the first dimension) among N nodes. SK_CLUSTER_BLOCKS (ndim 2 only) lays
 * the nodes on a prows x pcols grid (prows * pcols = N; prows 0 picks the
 * largest divisor of N not above its square root), node k at grid row
 * k / pcols, column k % pcols, each dimension split as the rows are. Every
 * rank must pass the same arguments (SK_ECLUSTER_MISMATCH otherwise).
 * Errors: -EINVAL, -EOVERFLOW, -ENOSPC, SK_ECLUSTER_*. */
int sk_cluster_array_partition(sk_cluster *cl, sk_dtype dtype, int ndim, const uint64_t *shape,
			       sk_cluster_layout layout, int prows, sk_cluster_array **out);

/* Collective. Waits for every rank (with the deadline), then releases this
 * rank's mapping. Accepts NULL. On a failed handle it is local. */
int sk_cluster_array_close(sk_cluster_array *a);

/* Elements are named by their flat C-order index in the whole array. All
 * calls below are local to the calling rank (not collective), take a batch of
 * n elements, handle those of this rank's node in its own mapping, send one
 * request per other owning node (in pieces of 2^15 elements) and
 * return once every owner has answered: 0, or a negative code. Before any
 * request is sent, every index is checked (-ERANGE: nothing done). A failed
 * owner gives SK_ECLUSTER_TIMEOUT within the deadline and fails the handle;
 * the elements of that call may then be partly done. */

/* out[i] = element index[i] (n elements of the dtype). Replicated arrays
 * read their local copy. Reads are single atomic loads per element. */
int sk_cluster_array_gather(sk_cluster_array *a, size_t n, const uint64_t *index, void *out);
/* element index[i] = values[i]. Within one call the stores to one node are
 * made in list order (the last of duplicate indices wins). SK_EREADONLY on a
 * replicated array. */
int sk_cluster_array_scatter(sk_cluster_array *a, size_t n, const uint64_t *index, const void *values);
/* Atomically element index[i] += delta[i] (deltas of the array's dtype); if
 * old is not NULL, old[i] receives the element's value just before that
 * addition. Integers wrap; floats add with compare-and-swap. SK_ETYPE for
 * bool arrays, SK_EREADONLY on a replicated array. */
int sk_cluster_array_add(sk_cluster_array *a, size_t n, const uint64_t *index, const void *delta, void *old);

/* The node's part as an ordinary shmkit array, zero-copy (owned by a: do not
 * close it): the whole array (read-only) when replicated; otherwise the
 * node's rows (shape[0] of them) or its block, read-write, shared by the
 * node's ranks (use atomics or sk_cluster_array_add for concurrent updates). */
sk_array *sk_cluster_array_local(const sk_cluster_array *a);
/* The part of a node (node -1: this rank's): rows [*row_begin, *row_end) and,
 * counting the array as rows x (its size / rows) columns, columns
 * [*col_begin, *col_end). A replicated array's part is the whole. Returns 0
 * or -ERANGE; any pointer may be NULL. */
int sk_cluster_array_part(const sk_cluster_array *a, int node, uint64_t *row_begin, uint64_t *row_end,
			  uint64_t *col_begin, uint64_t *col_end);
/* The node owning flat index i (replicated: this rank's node), or -ERANGE. */
int sk_cluster_array_owner(const sk_cluster_array *a, uint64_t i);
sk_cluster_layout sk_cluster_array_layout(const sk_cluster_array *a);
sk_dtype sk_cluster_array_dtype(const sk_cluster_array *a);
int sk_cluster_array_ndim(const sk_cluster_array *a);
const uint64_t *sk_cluster_array_shape(const sk_cluster_array *a); /* the whole array's */
uint64_t sk_cluster_array_size(const sk_cluster_array *a);         /* elements in the whole array */
/* Blocks: the grid (prows x pcols); rows: N x 1; replicated: 1 x 1. */
void sk_cluster_array_grid(const sk_cluster_array *a, int *prows, int *pcols);

/* Collective. A replicated bit array of nbits bits, filled from the root's
 * words (ceil(nbits / 64) little-endian 64-bit words, sk_bits layout; bits
 * past nbits are ignored). nbits and words are significant at the root only. */
int sk_cluster_bits_replicate(sk_cluster *cl, int root, uint64_t nbits, const uint64_t *words, sk_cluster_bits **out);
/* Collective. A zeroed partitioned bit array: its W = ceil(nbits / 64) words
 * are split as rows are (node k: words [W*k/N, W*(k+1)/N)), so every part
 * starts on a 64-bit boundary. Same arguments everywhere. */
int sk_cluster_bits_partition(sk_cluster *cl, uint64_t nbits, sk_cluster_bits **out);
int sk_cluster_bits_close(sk_cluster_bits *b);

/* out[i] = bit index[i] (0 or 1). */
int sk_cluster_bits_test(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *out);
/* Atomically set (clear) bit index[i]; if old is not NULL, old[i] receives
 * its value just before (test-and-set: exactly one of several setters of a
 * clear bit sees 0). SK_EREADONLY on a replicated bit array. */
int sk_cluster_bits_set(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *old);
int sk_cluster_bits_clear(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *old);

/* The node's part as an ordinary shmkit bit array (owned by b): bit j of it
 * is bit begin + j of the whole, begin from sk_cluster_bits_part. */
sk_bits *sk_cluster_bits_local(const sk_cluster_bits *b);
int sk_cluster_bits_part(const sk_cluster_bits *b, int node, uint64_t *begin, uint64_t *end);
int sk_cluster_bits_owner(const sk_cluster_bits *b, uint64_t i);
sk_cluster_layout sk_cluster_bits_layout(const sk_cluster_bits *b);
uint64_t sk_cluster_bits_len(const sk_cluster_bits *b);

#ifdef __cplusplus
}
#endif
#endif
