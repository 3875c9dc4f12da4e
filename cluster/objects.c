/*
 * objects.c: replicated and partitioned arrays and bit arrays.
 *
 * Layout in memory. A node's copy (replicated) or part (partitioned) is one
 * ordinary shmkit segment: an array of the object's dtype (the part's shape)
 * or a bit array (the part's bits). Its name is
 * "skc-<job id, 16 hex digits>-n<node>-o<object id>": the job id keeps jobs
 * apart, the node keeps pseudo-nodes that share a /dev/shm apart, and object
 * ids advance with every collective create, alike on every rank. The leader
 * makes it owned (SK_CREATE_OWNED) and mode 0600; the node's other ranks open
 * it by name; once all have, the leader removes the name. So a name exists
 * only during a create, and if the job dies right then, the name is owned by
 * a dead creator and goes at the next shmkit gc (or the sweep of the next
 * create on that machine).
 *
 * Creating. Every step that can fail on some rank ends in an agreement (the
 * minimum of the return codes over all ranks, with the deadline), so every
 * rank returns the same code and a failure cleans up everywhere. Replicating:
 * the root checks its arguments and broadcasts the description; the leaders
 * create their copy; the root writes its buffer or file into its node's
 * copy; the leaders broadcast it from the root's node's copy among
 * themselves, straight from and into the segments (no other buffer), and
 * freeze their copy; each leader tells its node's ranks after every window
 * of the broadcast that it is making progress (so their wait's deadline
 * counts from the last progress, as the leaders' does); the others attach
 * read-only.
 *
 * Partitions. Rows (or words of bits) are split as [R*k/N, R*(k+1)/N), so
 * parts differ by at most one row and any element's owner is one division
 * away; 2-D blocks split each dimension that way over a prows x pcols grid.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct layout {
	sk_cluster_layout kind;
	int nodes, me;
	int prows, pcols;
	uint64_t rows, cols; /* arrays as rows x cols; bits: rows are the 64-bit words */
} layout;

struct sk_cluster_array {
	sk_cluster *cl;
	sk__cl_obj obj;
	sk_array *local;
	layout L;
	sk__cl_map map;
	uint64_t *bounds; /* the map's */
	sk_dtype dtype;
	int ndim;
	uint64_t shape[SK_MAX_DIMS];
	uint64_t size;
};

struct sk_cluster_bits {
	sk_cluster *cl;
	sk__cl_obj obj;
	sk_bits *local;
	layout L;
	sk__cl_map map;
	uint64_t *bounds;
	uint64_t nbits;
};

/* floor(total * k / parts), the first of part k. */
static uint64_t split(uint64_t total, int parts, int k)
{
	return (uint64_t)((unsigned __int128)total * (unsigned)k / (unsigned)parts);
}

/* The map of an object (service.c locates indices with it): replicated
 * objects are all local; rows and words of bits are split into element (or
 * word) bounds; blocks into row and column bounds. */
static int build_map(const layout *L, uint64_t size, int shift, sk__cl_map *m, uint64_t **bounds)
{
	*m = (sk__cl_map){ .kind = SK__CL_MAP_LOCAL, .me = L->me };
	*bounds = NULL;
	if (L->kind == SK_CLUSTER_REPLICATED)
		return 0;
	uint64_t *b = malloc(sizeof *b * ((size_t)L->prows + (size_t)L->pcols + 2 + (size_t)L->nodes + 1));
	if (!b)
		return -ENOMEM;
	*bounds = b;
	if (L->kind == SK_CLUSTER_ROWS) {
		/* Rows of cols elements, or words of 64 bits (shift 6). */
		m->kind = SK__CL_MAP_SPLIT;
		m->shift = shift;
		for (int k = 0; k <= L->nodes; k++)
			b[k] = split(L->rows, L->nodes, k) * (shift ? 1 : L->cols);
		m->nodes_split = sk__cl_split_of(b, L->nodes, shift ? L->rows : size);
		return 0;
	}
	m->kind = SK__CL_MAP_BLOCKS;
	m->cols = L->cols;
	m->pcols = L->pcols;
	uint64_t *rb = b, *cb = b + L->prows + 1;
	for (int i = 0; i <= L->prows; i++)
		rb[i] = split(L->rows, L->prows, i);
	for (int j = 0; j <= L->pcols; j++)
		cb[j] = split(L->cols, L->pcols, j);
	m->rsplit = sk__cl_split_of(rb, L->prows, L->rows);
	m->csplit = sk__cl_split_of(cb, L->pcols, L->cols);
	return 0;
}

static void seg_name(const sk_cluster *cl, uint32_t id, char *buf, size_t n)
{
	snprintf(buf, n, "skc-%016" PRIx64 "-n%d-o%" PRIu32, cl->job, cl->node_id, id);
}

/* ---- Making, filling and attaching a node's segment ---- */

/* What a collective create makes: an array or a bit array. */
typedef struct spec {
	bool is_bits;
	bool replicated;
	sk_dtype dtype;
	int ndim;
	uint64_t shape[SK_MAX_DIMS]; /* the node's part */
	uint64_t nbits;              /* bits: the node's part */
} spec;

typedef struct handle {
	sk_array *a;
	sk_bits *b;
} handle;

static void handle_close(handle *h)
{
	sk_array_close(h->a);
	sk_bits_close(h->b);
	h->a = NULL;
	h->b = NULL;
}

static void *handle_data(const handle *h)
{
	return h->a ? sk_array_data(h->a) : h->b ? (void *)sk_bits_words(h->b) : NULL;
}

static sk_segment *handle_segment(const handle *h)
{
	return h->a ? sk_array_segment(h->a) : sk_bits_segment(h->b);
}

static int open_part(const spec *s, const char *name, int flags, handle *h)
{
	if (!s->is_bits)
		return sk_array_open_as(name, flags, s->dtype, s->ndim, s->shape, &h->a);
	int rc = sk_bits_open(name, flags, &h->b);
	if (!rc && sk_bits_len(h->b) != s->nbits) {
		handle_close(h);
		rc = SK_ETYPE;
	}
	return rc;
}

/* The fill of a replicated copy between its creation and its publication:
 * run by every rank, returns an agreed code. */
typedef int (*fill_fn)(sk_cluster *cl, void *ctx, const char *name, handle *leader_handle);

/* Creates the node's segment (leader), fills it (fill, if any), attaches it
 * (others), removes the name. On success *h is this rank's handle. */
static int publish(sk_cluster *cl, uint32_t id, const spec *s, fill_fn fill, void *ctx, handle *h)
{
	char name[64];
	seg_name(cl, id, name, sizeof name);
	bool leader = cl->node_rank == 0;
	int rc = 0;
	if (leader) {
		sk_create_opts o = { .mode = 0600, .flags = SK_CREATE_OWNED };
		rc = s->is_bits ? sk_bits_create(name, s->nbits, &o, &h->b)
				: sk_array_create(name, s->dtype, s->ndim, s->shape, &o, &h->a);
	}
	rc = sk__cl_agree(cl, rc);
	if (!rc && fill)
		rc = fill(cl, ctx, name, h);
	bool broken = rc == SK_ECLUSTER_TIMEOUT || rc == SK_ECLUSTER_MPI || rc == SK_ECLUSTER_FAILED;
	if (!broken) {
		if (!rc && !leader)
			rc = open_part(s, name, s->replicated ? SK_RDONLY : SK_RDWR, h);
		/* Once the node's ranks have attached (or failed to), the
		 * name goes, before any rank returns. */
		int e = sk__cl_barrier(cl, cl->node);
		if (leader)
			sk_segment_unlink(name);
		rc = e ? e : sk__cl_agree(cl, rc);
	}
	if (atomic_load(&cl->failed))
		sk_segment_unlink(name); /* the node's ranks remove a dead leader's name */
	if (rc)
		handle_close(h);
	return rc;
}

/* ---- Replication ---- */

/* The root's description of what it replicates. */
typedef struct rdesc {
	int64_t rc;
	int64_t dtype;
	int64_t ndim;
	uint64_t shape[SK_MAX_DIMS];
	uint64_t nbits;
	uint64_t nbytes;
	uint64_t data_offset; /* .npy */
} rdesc;

typedef struct rctx {
	int root;
	int root_node;
	const void *buf; /* the root's buffer, or NULL for a file */
	int fd;          /* the root's .npy file */
	uint64_t nbits;  /* bits: the tail past it is cleared */
	const rdesc *d;
	const spec *s;
} rctx;

static int root_fill(const rctx *c, void *dst)
{
	if (c->d->nbytes == 0)
		return 0;
	if (c->buf) {
		memcpy(dst, c->buf, c->d->nbytes);
	} else {
		uint64_t done = 0;
		while (done < c->d->nbytes) {
			size_t want =
			    c->d->nbytes - done > (UINT64_C(1) << 30) ? (size_t)1 << 30 : (size_t)(c->d->nbytes - done);
			ssize_t got = pread(c->fd, (char *)dst + done, want, (off_t)(c->d->data_offset + done));
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0)
				return -errno;
			if (got == 0)
				return SK_ETRUNCATED;
			done += (uint64_t)got;
		}
	}
	if (c->s->is_bits && c->nbits % 64) {
		uint64_t *w = dst;
		w[c->nbits / 64] &= (UINT64_C(1) << (c->nbits % 64)) - 1;
	}
	return 0;
}

/* Leader -> the node's other ranks: {done, code}. */
#define TAG_PROGRESS 7

static int node_tell(sk_cluster *cl, int done, int code)
{
	int n = cl->node_size - 1;
	if (n <= 0)
		return 0;
	int msg[2] = { done, code };
	MPI_Request *r = malloc(sizeof *r * (size_t)n);
	if (!r)
		return sk__cl_fail(cl, -ENOMEM);
	for (int i = 0; i < n; i++)
		if (sk__cl_mpi(cl, MPI_Isend(msg, 2, MPI_INT, i + 1, TAG_PROGRESS, cl->node, &r[i]))) {
			free(r);
			return sk__cl_fail(cl, SK_ECLUSTER_MPI);
		}
	int rc = sk__cl_wait(cl, n, r, sk__cl_now() + cl->deadline_ns, sk__cl_sync_spin(cl), NULL, NULL);
	if (!rc)
		free(r);
	return rc;
}

static int tick(sk_cluster *cl, void *arg)
{
	(void)arg;
	return node_tell(cl, 0, 0);
}

static int replicate_fill(sk_cluster *cl, void *ctx, const char *name, handle *h)
{
	rctx *c = ctx;
	/* The root writes into its node's copy. */
	int rc = 0;
	if (cl->rank == c->root) {
		if (cl->node_rank == 0) {
			rc = root_fill(c, handle_data(h));
		} else {
			handle w = { 0 };
			rc = open_part(c->s, name, SK_RDWR, &w);
			if (!rc)
				rc = root_fill(c, handle_data(&w));
			handle_close(&w);
		}
	}
	rc = sk__cl_agree(cl, rc);
	if (rc)
		return rc;
	/* The leaders pass it on among themselves and freeze their copy; each
	 * keeps its node's ranks informed. */
	if (cl->node_rank == 0) {
		rc = sk__cl_bcast(cl, handle_data(h), c->d->nbytes, c->root_node, cl->leaders, tick, NULL);
		if (!rc)
			rc = sk_segment_freeze(handle_segment(h));
		if (rc != SK_ECLUSTER_TIMEOUT && rc != SK_ECLUSTER_MPI) {
			int e = node_tell(cl, 1, rc);
			if (e)
				rc = e;
		}
	} else {
		for (;;) {
			int msg[2];
			MPI_Request r;
			if (sk__cl_mpi(cl, MPI_Irecv(msg, 2, MPI_INT, 0, TAG_PROGRESS, cl->node, &r))) {
				rc = sk__cl_fail(cl, SK_ECLUSTER_MPI);
				break;
			}
			rc = sk__cl_wait(cl, 1, &r, sk__cl_now() + cl->deadline_ns, sk__cl_sync_spin(cl), NULL, NULL);
			if (rc)
				break;
			if (msg[0]) {
				rc = msg[1] <= 0 && msg[1] >= -4095 ? msg[1] : SK_ECLUSTER_PROTO;
				break;
			}
		}
	}
	if (rc == SK_ECLUSTER_TIMEOUT || rc == SK_ECLUSTER_MPI)
		return rc;
	return sk__cl_agree(cl, rc);
}

/* The root's description goes to everyone; the result is agreed. */
static int share_desc(sk_cluster *cl, int root, rdesc *d)
{
	int rc = sk__cl_bcast(cl, d, sizeof *d, root, cl->comm, NULL, NULL);
	if (rc)
		return rc;
	if (d->rc < 0)
		return d->rc >= -4095 ? (int)d->rc : SK_ECLUSTER_PROTO;
	return 0;
}

static int check_shape(sk_dtype dtype, int ndim, const uint64_t *shape, uint64_t *size, uint64_t *nbytes)
{
	if (sk_dtype_size(dtype) == 0 || ndim < 0 || ndim > SK_MAX_DIMS || (ndim > 0 && !shape))
		return -EINVAL;
	uint64_t n = 1;
	for (int i = 0; i < ndim; i++)
		if (__builtin_mul_overflow(n, shape[i], &n))
			return -EOVERFLOW;
	uint64_t b;
	if (__builtin_mul_overflow(n, (uint64_t)sk_dtype_size(dtype), &b))
		return -EOVERFLOW;
	*size = n;
	if (nbytes)
		*nbytes = b;
	return 0;
}

static int array_replicate(sk_cluster *cl, int root, rdesc *d, const void *buf, int fd, sk_cluster_array **out)
{
	int rc = share_desc(cl, root, d);
	if (rc)
		return rc;
	sk_cluster_array *a = calloc(1, sizeof *a);
	spec s = { .replicated = true, .dtype = (sk_dtype)d->dtype, .ndim = (int)d->ndim };
	uint64_t nbytes = 0;
	int local = a ? 0 : -ENOMEM;
	if (!local && (d->ndim < 0 || d->ndim > SK_MAX_DIMS))
		local = SK_ECLUSTER_PROTO;
	if (!local) {
		memcpy(s.shape, d->shape, sizeof s.shape);
		local = check_shape(s.dtype, s.ndim, s.shape, &a->size, &nbytes);
		if (!local && nbytes != d->nbytes)
			local = SK_ECLUSTER_PROTO;
	}
	rc = sk__cl_agree(cl, local);
	uint32_t id = ++cl->next_id;
	if (rc) {
		free(a);
		return rc;
	}
	rctx c = { .root = root, .root_node = cl->node_of[root], .buf = buf, .fd = fd, .d = d, .s = &s };
	handle h = { 0 };
	rc = publish(cl, id, &s, replicate_fill, &c, &h);
	if (rc) {
		free(a);
		return rc;
	}
	a->cl = cl;
	a->local = h.a;
	a->dtype = s.dtype;
	a->ndim = s.ndim;
	memcpy(a->shape, s.shape, sizeof a->shape);
	a->L = (layout){ .kind = SK_CLUSTER_REPLICATED, .nodes = cl->nodes, .me = cl->node_id, .prows = 1, .pcols = 1 };
	a->L.rows = a->ndim ? a->shape[0] : 1;
	a->L.cols = a->L.rows ? a->size / a->L.rows : 0;
	build_map(&a->L, a->size, 0, &a->map, &a->bounds); /* all local: allocates nothing */
	a->obj = (sk__cl_obj){ .id = id,
			       .dtype = s.dtype,
			       .itemsize = sk_dtype_size(s.dtype),
			       .base = sk_array_data(h.a),
			       .count = a->size };
	cl->nopen++;
	*out = a;
	return 0;
}

int sk_cluster_array_replicate(sk_cluster *cl, int root, sk_dtype dtype, int ndim, const uint64_t *shape,
			       const void *buf, sk_cluster_array **out)
{
	if (!cl || !out)
		return -EINVAL;
	*out = NULL;
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	if (root < 0 || root >= cl->size)
		return -EINVAL; /* the same on every rank */
	rdesc d = { 0 };
	if (cl->rank == root) {
		uint64_t size;
		d.rc = check_shape(dtype, ndim, shape, &size, &d.nbytes);
		if (!d.rc && d.nbytes && !buf)
			d.rc = -EINVAL;
		d.dtype = dtype;
		d.ndim = ndim;
		for (int i = 0; !d.rc && i < ndim; i++)
			d.shape[i] = shape[i];
	}
	return array_replicate(cl, root, &d, buf, -1, out);
}

int sk_cluster_array_replicate_npy(sk_cluster *cl, int root, const char *path, sk_cluster_array **out)
{
	if (!cl || !out)
		return -EINVAL;
	*out = NULL;
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	if (root < 0 || root >= cl->size)
		return -EINVAL;
	rdesc d = { 0 };
	int fd = -1;
	if (cl->rank == root) {
		fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		struct stat st;
		if (!path)
			d.rc = -EINVAL;
		else if (fd < 0)
			d.rc = -errno;
		else if (fstat(fd, &st) < 0)
			d.rc = -errno;
		else if (!S_ISREG(st.st_mode))
			d.rc = SK_EFOREIGN;
		if (!d.rc) {
			size_t want = (size_t)st.st_size < (1u << 20) + 16 ? (size_t)st.st_size : (1u << 20) + 16;
			unsigned char *head = malloc(want ? want : 1);
			ssize_t got = head ? pread(fd, head, want, 0) : -1;
			sk__cl_npy npy;
			if (!head)
				d.rc = -ENOMEM;
			else if (got < 0)
				d.rc = -errno;
			else if ((d.rc = sk__cl_npy_parse(head, (size_t)got, (uint64_t)st.st_size, &npy)) == 0) {
				d.dtype = npy.dtype;
				d.ndim = npy.ndim;
				memcpy(d.shape, npy.shape, sizeof d.shape);
				d.nbytes = npy.nbytes;
				d.data_offset = npy.data_offset;
			}
			free(head);
		}
	}
	rc = array_replicate(cl, root, &d, NULL, fd, out);
	if (fd >= 0)
		close(fd);
	return rc;
}

int sk_cluster_bits_replicate(sk_cluster *cl, int root, uint64_t nbits, const uint64_t *words, sk_cluster_bits **out)
{
	if (!cl || !out)
		return -EINVAL;
	*out = NULL;
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	if (root < 0 || root >= cl->size)
		return -EINVAL;
	rdesc d = { 0 };
	if (cl->rank == root) {
		d.nbits = nbits;
		d.nbytes = (nbits + 63) / 64 * 8;
		if (nbits > SK_BITS_MAX || (nbits && !words))
			d.rc = -EINVAL;
	}
	rc = share_desc(cl, root, &d);
	if (rc)
		return rc;
	sk_cluster_bits *b = calloc(1, sizeof *b);
	int local = b ? 0 : -ENOMEM;
	if (!local && (d.nbits > SK_BITS_MAX || d.nbytes != (d.nbits + 63) / 64 * 8))
		local = SK_ECLUSTER_PROTO;
	rc = sk__cl_agree(cl, local);
	uint32_t id = ++cl->next_id;
	if (rc) {
		free(b);
		return rc;
	}
	spec s = { .is_bits = true, .replicated = true, .nbits = d.nbits };
	rctx c = { .root = root,
		   .root_node = cl->node_of[root],
		   .buf = cl->rank == root ? (const void *)words : NULL,
		   .fd = -1,
		   .nbits = d.nbits,
		   .d = &d,
		   .s = &s };
	handle h = { 0 };
	rc = publish(cl, id, &s, replicate_fill, &c, &h);
	if (rc) {
		free(b);
		return rc;
	}
	b->cl = cl;
	b->local = h.b;
	b->nbits = d.nbits;
	b->L = (layout){ .kind = SK_CLUSTER_REPLICATED, .nodes = cl->nodes, .me = cl->node_id, .prows = 1, .pcols = 1 };
	b->L.rows = (d.nbits + 63) / 64;
	build_map(&b->L, d.nbits, 6, &b->map, &b->bounds);
	b->obj = (sk__cl_obj){ .id = id, .is_bits = true, .itemsize = 1, .base = sk_bits_words(h.b), .count = d.nbits };
	cl->nopen++;
	*out = b;
	return 0;
}

/* ---- Partitions ---- */

/* Every rank must pass the same: a hash of the arguments, compared by min and max. */
static uint64_t fnv(uint64_t h, uint64_t v)
{
	for (int i = 0; i < 8; i++) {
		h ^= (v >> (8 * i)) & 0xff;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

static int agree_args(sk_cluster *cl, int rc, uint64_t hash)
{
	int64_t v[3] = { rc, (int64_t)(hash >> 1), -(int64_t)(hash >> 1) };
	int e = sk__cl_allmin(cl, v, 3, cl->comm);
	if (e)
		return e;
	if (v[0] < 0)
		return (int)v[0];
	return v[1] == -v[2] ? 0 : SK_ECLUSTER_MISMATCH;
}

static int pick_prows(int nodes)
{
	int best = 1;
	for (int p = 1; (int64_t)p * p <= nodes; p++)
		if (nodes % p == 0)
			best = p;
	return best;
}

int sk_cluster_array_partition(sk_cluster *cl, sk_dtype dtype, int ndim, const uint64_t *shape,
			       sk_cluster_layout layout_kind, int prows, sk_cluster_array **out)
{
	if (!cl || !out)
		return -EINVAL;
	*out = NULL;
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	uint64_t size = 0, h = UINT64_C(0xcbf29ce484222325);
	int local = check_shape(dtype, ndim, shape, &size, NULL);
	if (!local && (ndim < 1 || (layout_kind != SK_CLUSTER_ROWS && layout_kind != SK_CLUSTER_BLOCKS)))
		local = -EINVAL;
	if (!local && layout_kind == SK_CLUSTER_BLOCKS) {
		if (ndim != 2 || prows < 0 || prows > cl->nodes || (prows > 0 && cl->nodes % prows))
			local = -EINVAL;
	}
	h = fnv(h, (uint64_t)dtype);
	h = fnv(h, (uint64_t)ndim);
	h = fnv(h, (uint64_t)layout_kind);
	h = fnv(h, (uint64_t)(layout_kind == SK_CLUSTER_BLOCKS ? prows : 0));
	for (int i = 0; !local && i < ndim; i++)
		h = fnv(h, shape[i]);
	sk_cluster_array *a = local ? NULL : calloc(1, sizeof *a);
	if (!local && !a)
		local = -ENOMEM;
	rc = agree_args(cl, local, h);
	uint32_t id = ++cl->next_id;
	if (rc) {
		free(a);
		return rc;
	}
	a->cl = cl;
	a->dtype = dtype;
	a->ndim = ndim;
	a->size = size;
	memcpy(a->shape, shape, sizeof(uint64_t) * (size_t)ndim);
	layout *L = &a->L;
	*L = (layout){ .kind = layout_kind, .nodes = cl->nodes, .me = cl->node_id, .rows = shape[0] };
	L->cols = L->rows ? size / L->rows : 0;
	spec s = { .dtype = dtype, .ndim = ndim };
	memcpy(s.shape, shape, sizeof(uint64_t) * (size_t)ndim);
	if (layout_kind == SK_CLUSTER_ROWS) {
		L->prows = cl->nodes;
		L->pcols = 1;
		s.shape[0] = split(L->rows, L->nodes, L->me + 1) - split(L->rows, L->nodes, L->me);
	} else {
		L->prows = prows ? prows : pick_prows(cl->nodes);
		L->pcols = cl->nodes / L->prows;
		int gi = L->me / L->pcols, gj = L->me % L->pcols;
		s.shape[0] = split(L->rows, L->prows, gi + 1) - split(L->rows, L->prows, gi);
		s.shape[1] = split(L->cols, L->pcols, gj + 1) - split(L->cols, L->pcols, gj);
	}
	handle hd = { 0 };
	a->obj = (sk__cl_obj){ .id = id, .writable = true, .dtype = dtype, .itemsize = sk_dtype_size(dtype) };
	rc = publish(cl, id, &s, NULL, NULL, &hd);
	if (rc) {
		free(a);
		return rc;
	}
	a->local = hd.a;
	a->obj.base = sk_array_data(hd.a);
	a->obj.count = sk_array_size(hd.a);
	/* The leader's service knows the part before anyone can ask for it:
	 * no rank returns before every leader has registered. */
	rc = build_map(L, size, 0, &a->map, &a->bounds);
	rc = sk__cl_agree(cl, rc ? rc : sk__cl_register(cl, &a->obj));
	if (rc) {
		sk__cl_unregister(cl, id);
		sk_array_close(hd.a);
		free(a->bounds);
		free(a);
		return rc;
	}
	cl->nopen++;
	*out = a;
	return 0;
}

int sk_cluster_bits_partition(sk_cluster *cl, uint64_t nbits, sk_cluster_bits **out)
{
	if (!cl || !out)
		return -EINVAL;
	*out = NULL;
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	int local = nbits > SK_BITS_MAX ? -EINVAL : 0;
	sk_cluster_bits *b = local ? NULL : calloc(1, sizeof *b);
	if (!local && !b)
		local = -ENOMEM;
	rc = agree_args(cl, local, fnv(UINT64_C(0xcbf29ce484222325), nbits));
	uint32_t id = ++cl->next_id;
	if (rc) {
		free(b);
		return rc;
	}
	b->cl = cl;
	b->nbits = nbits;
	b->L =
	    (layout){ .kind = SK_CLUSTER_ROWS, .nodes = cl->nodes, .me = cl->node_id, .prows = cl->nodes, .pcols = 1 };
	b->L.rows = (nbits + 63) / 64;
	uint64_t lo = 64 * split(b->L.rows, cl->nodes, cl->node_id);
	uint64_t hi = 64 * split(b->L.rows, cl->nodes, cl->node_id + 1);
	if (hi > nbits)
		hi = nbits;
	spec s = { .is_bits = true, .nbits = hi - lo };
	handle hd = { 0 };
	rc = publish(cl, id, &s, NULL, NULL, &hd);
	if (rc) {
		free(b);
		return rc;
	}
	b->local = hd.b;
	b->obj = (sk__cl_obj){ .id = id,
			       .is_bits = true,
			       .writable = true,
			       .itemsize = 1,
			       .base = sk_bits_words(hd.b),
			       .count = hi - lo };
	rc = build_map(&b->L, nbits, 6, &b->map, &b->bounds);
	rc = sk__cl_agree(cl, rc ? rc : sk__cl_register(cl, &b->obj));
	if (rc) {
		sk__cl_unregister(cl, id);
		sk_bits_close(hd.b);
		free(b->bounds);
		free(b);
		return rc;
	}
	cl->nopen++;
	*out = b;
	return 0;
}

/* ---- Closing ---- */

static int close_common(sk_cluster *cl, uint32_t id)
{
	/* Every rank stops asking before the service forgets the part. */
	int rc = atomic_load(&cl->failed) ? SK_ECLUSTER_FAILED : sk__cl_barrier(cl, cl->comm);
	sk__cl_unregister(cl, id);
	cl->nopen--;
	return rc;
}

int sk_cluster_array_close(sk_cluster_array *a)
{
	if (!a)
		return 0;
	int rc = close_common(a->cl, a->obj.id);
	sk_array_close(a->local);
	free(a->bounds);
	free(a);
	return rc;
}

int sk_cluster_bits_close(sk_cluster_bits *b)
{
	if (!b)
		return 0;
	int rc = close_common(b->cl, b->obj.id);
	sk_bits_close(b->local);
	free(b->bounds);
	free(b);
	return rc;
}

/* ---- Operations ---- */

int sk_cluster_array_gather(sk_cluster_array *a, size_t n, const uint64_t *index, void *out)
{
	return sk__cl_call(a->cl, &a->obj, &a->map, a->size, SK__CL_GATHER, 0, n, index, NULL, out);
}

int sk_cluster_array_scatter(sk_cluster_array *a, size_t n, const uint64_t *index, const void *values)
{
	return sk__cl_call(a->cl, &a->obj, &a->map, a->size, SK__CL_SCATTER, 0, n, index, values, NULL);
}

int sk_cluster_array_add(sk_cluster_array *a, size_t n, const uint64_t *index, const void *delta, void *old)
{
	return sk__cl_call(a->cl, &a->obj, &a->map, a->size, SK__CL_ADD, old ? SK__CL_WANT_OLD : 0, n, index, delta,
			   old);
}

int sk_cluster_bits_test(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *out)
{
	return sk__cl_call(b->cl, &b->obj, &b->map, b->nbits, SK__CL_BTEST, 0, n, index, NULL, out);
}

int sk_cluster_bits_set(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *old)
{
	return sk__cl_call(b->cl, &b->obj, &b->map, b->nbits, SK__CL_BSET, old ? SK__CL_WANT_OLD : 0, n, index, NULL,
			   old);
}

int sk_cluster_bits_clear(sk_cluster_bits *b, size_t n, const uint64_t *index, uint8_t *old)
{
	return sk__cl_call(b->cl, &b->obj, &b->map, b->nbits, SK__CL_BCLEAR, old ? SK__CL_WANT_OLD : 0, n, index, NULL,
			   old);
}

/* ---- Accessors ---- */

sk_array *sk_cluster_array_local(const sk_cluster_array *a)
{
	return a->local;
}

int sk_cluster_array_part(const sk_cluster_array *a, int node, uint64_t *row_begin, uint64_t *row_end,
			  uint64_t *col_begin, uint64_t *col_end)
{
	const layout *L = &a->L;
	if (node == -1)
		node = L->me;
	if (node < 0 || node >= L->nodes)
		return -ERANGE;
	uint64_t r0 = 0, r1 = L->rows, c0 = 0, c1 = L->cols;
	if (L->kind != SK_CLUSTER_REPLICATED) {
		int gi = node / L->pcols, gj = node % L->pcols;
		r0 = split(L->rows, L->prows, gi);
		r1 = split(L->rows, L->prows, gi + 1);
		c0 = split(L->cols, L->pcols, gj);
		c1 = split(L->cols, L->pcols, gj + 1);
	}
	if (row_begin)
		*row_begin = r0;
	if (row_end)
		*row_end = r1;
	if (col_begin)
		*col_begin = c0;
	if (col_end)
		*col_end = c1;
	return 0;
}

int sk_cluster_array_owner(const sk_cluster_array *a, uint64_t i)
{
	if (i >= a->size)
		return -ERANGE;
	uint64_t local;
	return sk__cl_locate(&a->map, i, &local);
}

sk_cluster_layout sk_cluster_array_layout(const sk_cluster_array *a)
{
	return a->L.kind;
}

sk_dtype sk_cluster_array_dtype(const sk_cluster_array *a)
{
	return a->dtype;
}

int sk_cluster_array_ndim(const sk_cluster_array *a)
{
	return a->ndim;
}

const uint64_t *sk_cluster_array_shape(const sk_cluster_array *a)
{
	return a->shape;
}

uint64_t sk_cluster_array_size(const sk_cluster_array *a)
{
	return a->size;
}

void sk_cluster_array_grid(const sk_cluster_array *a, int *prows, int *pcols)
{
	if (prows)
		*prows = a->L.prows;
	if (pcols)
		*pcols = a->L.pcols;
}

sk_bits *sk_cluster_bits_local(const sk_cluster_bits *b)
{
	return b->local;
}

int sk_cluster_bits_part(const sk_cluster_bits *b, int node, uint64_t *begin, uint64_t *end)
{
	const layout *L = &b->L;
	if (node == -1)
		node = L->me;
	if (node < 0 || node >= L->nodes)
		return -ERANGE;
	uint64_t lo = 0, hi = b->nbits;
	if (L->kind != SK_CLUSTER_REPLICATED) {
		lo = 64 * split(L->rows, L->nodes, node);
		hi = 64 * split(L->rows, L->nodes, node + 1);
		if (hi > b->nbits)
			hi = b->nbits;
		if (lo > hi)
			lo = hi;
	}
	if (begin)
		*begin = lo;
	if (end)
		*end = hi;
	return 0;
}

int sk_cluster_bits_owner(const sk_cluster_bits *b, uint64_t i)
{
	if (i >= b->nbits)
		return -ERANGE;
	uint64_t local;
	return sk__cl_locate(&b->map, i, &local);
}

sk_cluster_layout sk_cluster_bits_layout(const sk_cluster_bits *b)
{
	return b->L.kind;
}

uint64_t sk_cluster_bits_len(const sk_cluster_bits *b)
{
	return b->nbits;
}
