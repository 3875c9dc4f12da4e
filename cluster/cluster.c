/*
 * cluster.c: the cluster handle: communicators, nodes, leaders, the job id,
 * deadlines, fences and failure.
 *
 * Design. The handle duplicates the caller's communicator three times: one
 * for the library's collectives, one for requests to the servers and one for
 * their replies, so a server probing for requests never matches a reply, and
 * nothing mixes with the caller's own traffic. Errors on them return
 * (MPI_ERRORS_RETURN) instead of aborting. The node communicator is
 * MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), optionally cut into pseudo-nodes
 * of k ranks (a pseudo-node never spans two real nodes); the leaders are the
 * node ranks 0, numbered in the order of their ranks, which numbers the nodes.
 *
 * Every wait for another rank is non-blocking MPI plus a test loop against a
 * deadline on CLOCK_MONOTONIC (sk__cl_wait). A wait for data (replies,
 * broadcast pieces) polls without sleeping for 1 ms after the last
 * completion, since large transfers progress only while polled; a wait for
 * agreement in a process that runs a service thread polls for 20 us only, so
 * as not to take MPI's locks from the service. Then it naps a sixteenth of
 * the quiet so far, up to 1 ms (up to poll_ns in a leader serving inline).
 * When the deadline passes, the handle fails for good (fail-stop, as MPI
 * itself): every later call returns SK_ECLUSTER_FAILED, and close becomes
 * local. The first failure is kept in an atomic int, which the service thread
 * also sets, and the MPI error code behind an SK_ECLUSTER_MPI in another.
 *
 * Everything in shared memory is an ordinary shmkit array or bit array: this
 * file keeps no state there.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int64_t sk__cl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sk__cl_nap(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = { .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
	/* An interrupted nap is just shorter: every caller polls in a loop. */
	nanosleep(&ts, NULL);
}

const char *sk_cluster_strerror(int code)
{
	switch (code) {
	case SK_ECLUSTER_TIMEOUT:
		return "a peer did not answer within the cluster deadline (dead, stuck or unreachable)";
	case SK_ECLUSTER_MPI: return "an MPI call failed";
	case SK_ECLUSTER_FAILED: return "the cluster handle failed earlier and cannot be used";
	case SK_ECLUSTER_PROTO: return "a peer sent a malformed message or refused a request";
	case SK_ECLUSTER_MISMATCH: return "ranks passed different arguments to a collective cluster call";
	default: return sk_strerror(code);
	}
}

int sk__cl_fail(sk_cluster *cl, int code)
{
	int expected = 0;
	atomic_compare_exchange_strong(&cl->failed, &expected, code);
	return code;
}

int sk__cl_mpi(sk_cluster *cl, int mpi_rc)
{
	if (mpi_rc == MPI_SUCCESS)
		return 0;
	int expected = MPI_SUCCESS;
	atomic_compare_exchange_strong(&cl->mpi_error, &expected, mpi_rc);
	return sk__cl_fail(cl, SK_ECLUSTER_MPI);
}

int sk__cl_check(const sk_cluster *cl)
{
	return atomic_load((_Atomic int *)&cl->failed) ? SK_ECLUSTER_FAILED : 0;
}

int64_t sk__cl_sync_spin(const sk_cluster *cl)
{
	return cl->thread_started ? SK__CL_SYNC_SPIN_NS : SK__CL_WAIT_SPIN_NS;
}

int sk__cl_wait(sk_cluster *cl, int n, MPI_Request *reqs, int64_t deadline, int64_t spin_ns,
		int (*on_done)(void *arg, int i, const MPI_Status *st), void *arg)
{
	int *idx = malloc(sizeof *idx * (size_t)(n > 0 ? n : 1));
	MPI_Status *sts = malloc(sizeof *sts * (size_t)(n > 0 ? n : 1));
	int rc = 0;
	if (!idx || !sts) {
		rc = -ENOMEM;
		goto out;
	}
	int64_t quiet_since = sk__cl_now();
	for (;;) {
		int outcount = 0;
		int e = MPI_Testsome(n, reqs, &outcount, idx, sts);
		if (e == MPI_ERR_IN_STATUS) {
			/* The error of the request that failed says more. */
			for (int k = 0; k < outcount; k++)
				if (sts[k].MPI_ERROR != MPI_SUCCESS) {
					e = sts[k].MPI_ERROR;
					break;
				}
		}
		if (e != MPI_SUCCESS) {
			rc = sk__cl_mpi(cl, e);
			goto out;
		}
		if (outcount == MPI_UNDEFINED)
			break; /* every request is done */
		int64_t t = sk__cl_now();
		if (outcount > 0) {
			for (int k = 0; k < outcount; k++) {
				if (on_done && (rc = on_done(arg, idx[k], &sts[k])) < 0)
					goto out;
			}
			quiet_since = t;
			continue;
		}
		if (cl->serving && cl->mode == SK_CLUSTER_SERVE_INLINE) {
			int s = sk__cl_serve(cl, 16);
			if (s < 0) {
				rc = s;
				goto out;
			}
			if (s > 0) {
				quiet_since = t;
				continue;
			}
		}
		if (t >= deadline) {
			rc = sk__cl_fail(cl, SK_ECLUSTER_TIMEOUT);
			goto out;
		}
		if (t - quiet_since < spin_ns) {
			sched_yield();
			continue;
		}
		/* A leader that serves inline answers within poll_ns. */
		int64_t most = cl->serving && cl->mode == SK_CLUSTER_SERVE_INLINE ? cl->poll_ns : SK__CL_WAIT_NAP_NS;
		int64_t d = (t - quiet_since) / 16;
		d = d < 1000 ? 1000 : d > most ? most : d;
		sk__cl_nap(d < deadline - t ? d : deadline - t);
	}
out:
	free(idx);
	free(sts);
	return rc;
}

int sk__cl_barrier(sk_cluster *cl, MPI_Comm comm)
{
	MPI_Request r;
	if (sk__cl_mpi(cl, MPI_Ibarrier(comm, &r)))
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	return sk__cl_wait(cl, 1, &r, sk__cl_now() + cl->deadline_ns, sk__cl_sync_spin(cl), NULL, NULL);
}

/* Large broadcasts go in pieces: MPI counts are ints, and the pieces let the
 * deadline see progress. */
#define BCAST_PIECE  (UINT64_C(16) << 20)
#define BCAST_WINDOW 4

int sk__cl_bcast(sk_cluster *cl, void *buf, uint64_t bytes, int root, MPI_Comm comm,
		 int (*tick)(sk_cluster *cl, void *arg), void *arg)
{
	MPI_Request r[BCAST_WINDOW];
	uint64_t off = 0;
	while (off < bytes || bytes == 0) {
		int k = 0;
		for (; k < BCAST_WINDOW && off < bytes; k++) {
			uint64_t len = bytes - off < BCAST_PIECE ? bytes - off : BCAST_PIECE;
			if (sk__cl_mpi(cl, MPI_Ibcast((char *)buf + off, (int)len, MPI_BYTE, root, comm, &r[k])))
				return sk__cl_fail(cl, SK_ECLUSTER_MPI);
			off += len;
		}
		if (k == 0)
			break;
		/* Each window gets the full deadline: progress resets it. */
		int rc = sk__cl_wait(cl, k, r, sk__cl_now() + cl->deadline_ns, SK__CL_WAIT_SPIN_NS, NULL, NULL);
		if (!rc && tick)
			rc = tick(cl, arg);
		if (rc)
			return rc;
	}
	return 0;
}

int sk__cl_allmin(sk_cluster *cl, int64_t *v, int n, MPI_Comm comm)
{
	MPI_Request r;
	if (sk__cl_mpi(cl, MPI_Iallreduce(MPI_IN_PLACE, v, n, MPI_INT64_T, MPI_MIN, comm, &r)))
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	return sk__cl_wait(cl, 1, &r, sk__cl_now() + cl->deadline_ns, sk__cl_sync_spin(cl), NULL, NULL);
}

int sk__cl_agree(sk_cluster *cl, int rc)
{
	int64_t v = rc;
	int e = sk__cl_allmin(cl, &v, 1, cl->comm);
	if (e)
		return e;
	return (int)v;
}

int sk__cl_register(sk_cluster *cl, sk__cl_obj *o)
{
	if (!cl->serving)
		return 0;
	pthread_mutex_lock(&cl->objs_mu);
	int rc = 0;
	if (o->id > cl->nobjs) {
		uint32_t n = cl->nobjs ? cl->nobjs : 16;
		while (n < o->id)
			n *= 2;
		sk__cl_obj **p = realloc(cl->objs, sizeof *p * n);
		if (!p) {
			rc = -ENOMEM;
		} else {
			memset(p + cl->nobjs, 0, sizeof *p * (n - cl->nobjs));
			cl->objs = p;
			cl->nobjs = n;
		}
	}
	if (!rc)
		cl->objs[o->id - 1] = o;
	pthread_mutex_unlock(&cl->objs_mu);
	return rc;
}

void sk__cl_unregister(sk_cluster *cl, uint32_t id)
{
	if (!cl->serving)
		return;
	pthread_mutex_lock(&cl->objs_mu);
	if (id >= 1 && id <= cl->nobjs)
		cl->objs[id - 1] = NULL;
	pthread_mutex_unlock(&cl->objs_mu);
}

static int64_t env_deadline(void)
{
	const char *s = getenv("SHMKIT_CLUSTER_DEADLINE_MS");
	if (s && *s) {
		char *end;
		long long ms = strtoll(s, &end, 10);
		if (*end == '\0' && ms > 0 && ms < INT64_MAX / 1000000)
			return ms * 1000000;
	}
	return INT64_C(30) * 1000000000;
}

static void free_comm(MPI_Comm *c)
{
	if (*c != MPI_COMM_NULL)
		MPI_Comm_free(c);
	*c = MPI_COMM_NULL;
}

/* Releases the handle's memory; with comms, its communicators too. */
static void destroy(sk_cluster *cl, bool comms)
{
	if (comms) {
		free_comm(&cl->comm);
		free_comm(&cl->req);
		free_comm(&cl->rep);
		free_comm(&cl->node);
		free_comm(&cl->leaders);
	}
	pthread_mutex_destroy(&cl->objs_mu);
	free(cl->objs);
	/* A request still being received (a failed handle) keeps its buffer:
	 * MPI may still write it. */
	for (int i = 0; i < 2; i++)
		if (cl->rx[i].req == MPI_REQUEST_NULL) {
			free(cl->rx[i].buf);
			free(cl->rx[i].over);
		}
	for (int i = 0; i < SK__CL_BUFS; i++)
		free(cl->bufs[i].p); /* NULL where a failure left them to MPI */
	/* A reply still in flight (a failed handle) keeps its buffer: MPI may
	 * still read it. */
	for (int i = 0; i < SK__CL_REPLY_SLOTS; i++)
		if (cl->slots[i].req == MPI_REQUEST_NULL)
			free(cl->slots[i].buf);
	free(cl->node_of);
	free(cl->leader_of);
	free(cl);
}

static int stop_service(sk_cluster *cl)
{
	if (!cl->thread_started)
		return 0;
	atomic_store(&cl->stop, 1);
	pthread_join(cl->thread, NULL);
	cl->thread_started = false;
	return 0;
}

static int dup_comm(sk_cluster *cl, MPI_Comm from, MPI_Comm *to)
{
	if (sk__cl_mpi(cl, MPI_Comm_dup(from, to))) {
		*to = MPI_COMM_NULL;
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	}
	MPI_Comm_set_errhandler(*to, MPI_ERRORS_RETURN);
	return 0;
}

/* The communicators and the map of nodes. Collective over cl->comm. */
static int build_nodes(sk_cluster *cl, int ranks_per_node)
{
	MPI_Comm shared;
	if (sk__cl_mpi(cl, MPI_Comm_split_type(cl->comm, MPI_COMM_TYPE_SHARED, cl->rank, MPI_INFO_NULL, &shared)))
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	if (ranks_per_node > 0) {
		int sr;
		MPI_Comm_rank(shared, &sr);
		int e = MPI_Comm_split(shared, sr / ranks_per_node, sr, &cl->node);
		MPI_Comm_free(&shared);
		if (e != MPI_SUCCESS) {
			cl->node = MPI_COMM_NULL;
			return sk__cl_fail(cl, SK_ECLUSTER_MPI);
		}
	} else {
		cl->node = shared;
	}
	MPI_Comm_set_errhandler(cl->node, MPI_ERRORS_RETURN);
	MPI_Comm_rank(cl->node, &cl->node_rank);
	MPI_Comm_size(cl->node, &cl->node_size);
	if (sk__cl_mpi(cl, MPI_Comm_split(cl->comm, cl->node_rank == 0 ? 0 : MPI_UNDEFINED, cl->rank, &cl->leaders))) {
		cl->leaders = MPI_COMM_NULL;
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	}
	if (cl->leaders != MPI_COMM_NULL) {
		MPI_Comm_set_errhandler(cl->leaders, MPI_ERRORS_RETURN);
		MPI_Comm_rank(cl->leaders, &cl->node_id);
		MPI_Comm_size(cl->leaders, &cl->nodes);
	}
	int mine[2] = { cl->node_id, cl->nodes };
	int rc = sk__cl_bcast(cl, mine, sizeof mine, 0, cl->node, NULL, NULL);
	if (rc)
		return rc;
	cl->node_id = mine[0];
	cl->nodes = mine[1];
	cl->node_of = malloc(sizeof(int) * (size_t)cl->size);
	cl->leader_of = malloc(sizeof(int) * (size_t)cl->nodes);
	int *pairs = malloc(sizeof(int) * 2 * (size_t)cl->size);
	if (!cl->node_of || !cl->leader_of || !pairs) {
		free(pairs);
		return -ENOMEM;
	}
	int me[2] = { cl->node_id, cl->node_rank };
	MPI_Request r;
	if (sk__cl_mpi(cl, MPI_Iallgather(me, 2, MPI_INT, pairs, 2, MPI_INT, cl->comm, &r))) {
		free(pairs);
		return sk__cl_fail(cl, SK_ECLUSTER_MPI);
	}
	rc = sk__cl_wait(cl, 1, &r, sk__cl_now() + cl->deadline_ns, sk__cl_sync_spin(cl), NULL, NULL);
	if (!rc) {
		for (int i = 0; i < cl->nodes; i++)
			cl->leader_of[i] = -1;
		for (int i = 0; i < cl->size; i++) {
			int nd = pairs[2 * i];
			if (nd < 0 || nd >= cl->nodes) {
				rc = sk__cl_fail(cl, SK_ECLUSTER_PROTO);
				break;
			}
			cl->node_of[i] = nd;
			if (pairs[2 * i + 1] == 0)
				cl->leader_of[nd] = i;
		}
		for (int i = 0; !rc && i < cl->nodes; i++)
			if (cl->leader_of[i] < 0)
				rc = sk__cl_fail(cl, SK_ECLUSTER_PROTO);
	}
	free(pairs);
	return rc;
}

int sk_cluster_create(MPI_Comm comm, const sk_cluster_opts *opts, sk_cluster **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	int inited = 0, finalized = 0;
	MPI_Initialized(&inited);
	MPI_Finalized(&finalized);
	if (!inited || finalized || comm == MPI_COMM_NULL)
		return -EINVAL;
	sk_cluster_opts o = { 0 };
	int bad = 0;
	if (opts) {
		o = *opts;
		for (size_t i = 0; i < sizeof o.resv / sizeof o.resv[0]; i++)
			bad |= o.resv[i] != 0;
		bad |= o.ranks_per_node < 0 || o.serve < 0 || o.serve > SK_CLUSTER_SERVE_INLINE || o.deadline_ns < 0 ||
		       o.poll_ns < 0;
	}
	int level = MPI_THREAD_SINGLE;
	MPI_Query_thread(&level);
	int mode = o.serve;
	if (mode == SK_CLUSTER_SERVE_AUTO)
		mode = level >= MPI_THREAD_MULTIPLE ? SK_CLUSTER_SERVE_THREAD : SK_CLUSTER_SERVE_INLINE;
	if (mode == SK_CLUSTER_SERVE_THREAD && level < MPI_THREAD_MULTIPLE)
		bad = 1;

	sk_cluster *cl = calloc(1, sizeof *cl);
	if (!cl)
		return -ENOMEM; /* the others time out: fail-stop */
	cl->comm = cl->req = cl->rep = cl->node = cl->leaders = MPI_COMM_NULL;
	for (int i = 0; i < SK__CL_REPLY_SLOTS; i++)
		cl->slots[i].req = MPI_REQUEST_NULL;
	cl->rx[0].req = cl->rx[1].req = MPI_REQUEST_NULL;
	pthread_mutex_init(&cl->objs_mu, NULL);
	cl->deadline_ns = o.deadline_ns ? o.deadline_ns : env_deadline();
	cl->poll_ns = o.poll_ns ? o.poll_ns : 100000;
	cl->mode = mode;
	cl->node_id = -1;
	int rc = dup_comm(cl, comm, &cl->comm);
	if (!rc)
		rc = dup_comm(cl, comm, &cl->req);
	if (!rc)
		rc = dup_comm(cl, comm, &cl->rep);
	if (rc) {
		destroy(cl, true);
		return rc;
	}
	MPI_Comm_rank(cl->comm, &cl->rank);
	MPI_Comm_size(cl->comm, &cl->size);

	/* Every rank must have asked for the same: compare min and max. */
	int64_t v[10] = { bad ? -EINVAL : 0,
			  o.ranks_per_node,
			  -(int64_t)o.ranks_per_node,
			  mode,
			  -(int64_t)mode,
			  cl->deadline_ns,
			  -(int64_t)cl->deadline_ns,
			  cl->poll_ns,
			  -(int64_t)cl->poll_ns,
			  0 };
	rc = sk__cl_allmin(cl, v, 10, cl->comm);
	if (!rc && v[0] < 0)
		rc = (int)v[0];
	if (!rc && (v[1] != -v[2] || v[3] != -v[4] || v[5] != -v[6] || v[7] != -v[8]))
		rc = SK_ECLUSTER_MISMATCH;
	if (!rc)
		rc = build_nodes(cl, o.ranks_per_node);

	/* The tags of replies: 1..min(MPI_TAG_UB, 2^20). */
	if (!rc) {
		int *ub = NULL, flag = 0;
		MPI_Comm_get_attr(cl->rep, MPI_TAG_UB, &ub, &flag);
		cl->tag_max = flag && ub && *ub > 0 ? (*ub < (1 << 20) ? *ub : (1 << 20)) : 32767;
	}
	/* The job id: 64 random bits from rank 0. */
	if (!rc) {
		uint64_t job = 0;
		if (cl->rank == 0) {
			while (job == 0)
				if (getrandom(&job, sizeof job, 0) != (ssize_t)sizeof job)
					job =
					    (uint64_t)sk__cl_now() * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)getpid();
		}
		rc = sk__cl_bcast(cl, &job, sizeof job, 0, cl->comm, NULL, NULL);
		cl->job = job;
	}
	/* Leaders serve their node. */
	int local = rc;
	if (!rc && cl->node_rank == 0) {
		cl->serving = true;
		if (cl->mode == SK_CLUSTER_SERVE_THREAD) {
			int e = pthread_create(&cl->thread, NULL, sk__cl_service_main, cl);
			if (e)
				local = -e;
			else
				cl->thread_started = true;
		}
	}
	if (!rc)
		rc = sk__cl_agree(cl, local);
	if (rc) {
		stop_service(cl);
		/* After a failed exchange the others may be anywhere: keep the communicators. */
		destroy(cl, !atomic_load(&cl->failed));
		return rc;
	}
	*out = cl;
	return 0;
}

int sk_cluster_close(sk_cluster *cl)
{
	if (!cl)
		return 0;
	int failed = atomic_load(&cl->failed);
	if (!failed && cl->nopen > 0)
		return -EBUSY;
	int rc = failed ? failed : sk__cl_barrier(cl, cl->comm);
	stop_service(cl); /* the thread drains its replies */
	if (!rc && cl->serving && cl->mode == SK_CLUSTER_SERVE_INLINE)
		rc = sk__cl_serve_drain(cl);
	destroy(cl, rc == 0);
	return rc;
}

int sk_cluster_rank(const sk_cluster *cl)
{
	return cl->rank;
}

int sk_cluster_size(const sk_cluster *cl)
{
	return cl->size;
}

int sk_cluster_node(const sk_cluster *cl)
{
	return cl->node_id;
}

int sk_cluster_nodes(const sk_cluster *cl)
{
	return cl->nodes;
}

int sk_cluster_node_rank(const sk_cluster *cl)
{
	return cl->node_rank;
}

int sk_cluster_node_size(const sk_cluster *cl)
{
	return cl->node_size;
}

int sk_cluster_node_of(const sk_cluster *cl, int rank)
{
	return rank >= 0 && rank < cl->size ? cl->node_of[rank] : -ERANGE;
}

int sk_cluster_leader_of(const sk_cluster *cl, int node)
{
	return node >= 0 && node < cl->nodes ? cl->leader_of[node] : -ERANGE;
}

uint64_t sk_cluster_job_id(const sk_cluster *cl)
{
	return cl->job;
}

MPI_Comm sk_cluster_comm(const sk_cluster *cl)
{
	return cl->comm;
}

MPI_Comm sk_cluster_node_comm(const sk_cluster *cl)
{
	return cl->node;
}

MPI_Comm sk_cluster_leader_comm(const sk_cluster *cl)
{
	return cl->leaders;
}

int sk_cluster_serve_mode(const sk_cluster *cl)
{
	return cl->mode;
}

int64_t sk_cluster_set_deadline(sk_cluster *cl, int64_t deadline_ns)
{
	if (deadline_ns <= 0)
		return -EINVAL;
	int64_t old = cl->deadline_ns;
	cl->deadline_ns = deadline_ns;
	return old;
}

int sk_cluster_fence(sk_cluster *cl)
{
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	atomic_thread_fence(memory_order_seq_cst);
	rc = sk__cl_barrier(cl, cl->comm);
	atomic_thread_fence(memory_order_seq_cst);
	return rc;
}

int sk_cluster_progress(sk_cluster *cl)
{
	int rc = sk__cl_check(cl);
	if (rc)
		return rc;
	if (!cl->serving || cl->mode != SK_CLUSTER_SERVE_INLINE)
		return 0;
	int total = 0;
	for (;;) {
		int n = sk__cl_serve(cl, 64);
		if (n < 0)
			return n;
		total += n;
		if (n < 64)
			return total;
	}
}

int sk_cluster_failed(const sk_cluster *cl)
{
	return atomic_load((_Atomic int *)&cl->failed);
}

int sk_cluster_mpi_error(const sk_cluster *cl)
{
	return atomic_load((_Atomic int *)&cl->mpi_error);
}

int sk_cluster_stats_get(const sk_cluster *cl, sk_cluster_stats *out)
{
	sk_cluster *c = (sk_cluster *)cl;
	memset(out, 0, sizeof *out);
	out->requests_sent = atomic_load(&c->st_requests_sent);
	out->elements_sent = atomic_load(&c->st_elements_sent);
	out->elements_local = atomic_load(&c->st_elements_local);
	out->requests_served = atomic_load(&c->st_requests_served);
	out->elements_served = atomic_load(&c->st_elements_served);
	return 0;
}
