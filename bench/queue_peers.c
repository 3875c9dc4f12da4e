/*
 * bench/queue_peers: what a C program would use instead of shmkit's queue,
 * measured by the same harness as bench/queue (bench/qharness.h): POSIX
 * message queues, a SOCK_SEQPACKET socket pair, a pipe. Each gets the same
 * depth as shmkit's queue where the kernel lets it (mq: maxmsg; sockets:
 * SO_SNDBUF(FORCE); pipe: F_SETPIPE_SZ).
 *
 *   queue_peers --peer mq|seqpacket|pipe [--json] [--quick] [--only PREFIX]
 *
 * Prints {"bench": "queue_peers", "peer": NAME, FIGURES...} with the figure
 * names of bench/qharness.h. A pipe is a byte stream: its consumers read
 * exactly the message size, and several producers or consumers share it
 * only for messages of at most PIPE_BUF bytes (atomic writes); the 1 MiB
 * cases with several processes are not run for it.
 */
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "qharness.h"

/* ---- POSIX mq ---- */

typedef struct mq_ctx {
	char name[64];
} mq_ctx;

static int mq_setup(void **ctx, size_t msg, size_t depth)
{
	static int k;
	mq_ctx *c = calloc(1, sizeof *c);
	snprintf(c->name, sizeof c->name, "/shmkit-bench-mq-%d-%d", (int)getpid(), k++);
	struct mq_attr a;
	memset(&a, 0, sizeof a);
	a.mq_maxmsg = (long)depth;
	a.mq_msgsize = (long)msg;
	mqd_t q = mq_open(c->name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	if (q == (mqd_t)-1 && errno == EINVAL && depth > 10) {
		a.mq_maxmsg = 10; /* not root: /proc/sys/fs/mqueue/msg_max */
		q = mq_open(c->name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	}
	if (q == (mqd_t)-1) {
		int e = errno;
		free(c);
		return -e;
	}
	mq_close(q);
	*ctx = c;
	return 0;
}

static int mq_attach(void *ctx, int role, void **h)
{
	mqd_t q = mq_open(((mq_ctx *)ctx)->name, role == QH_PRODUCER ? O_WRONLY : O_RDONLY);
	if (q == (mqd_t)-1)
		return -errno;
	*h = (void *)(intptr_t)q;
	return 0;
}

static int mq_send_(void *h, const void *buf, size_t len)
{
	while (mq_send((mqd_t)(intptr_t)h, buf, len, 0))
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int mq_recv_(void *h, void *buf, size_t cap, size_t *len)
{
	ssize_t n;
	while ((n = mq_receive((mqd_t)(intptr_t)h, buf, cap, NULL)) < 0)
		if (errno != EINTR)
			return -errno;
	*len = (size_t)n;
	return 0;
}

static void mq_detach(void *h)
{
	mq_close((mqd_t)(intptr_t)h);
}

static void mq_teardown(void *ctx)
{
	mq_unlink(((mq_ctx *)ctx)->name);
	free(ctx);
}

static const qh_ops mq_ops = { "mq", mq_setup, mq_attach, mq_send_, mq_recv_, mq_detach, mq_teardown };

/* ---- SOCK_SEQPACKET pair and pipe: two descriptors, inherited ---- */

typedef struct fd_ctx {
	int fd[2]; /* [0] producers write, [1] consumers read */
	size_t msg;
	int pipe;
} fd_ctx;

typedef struct fd_h {
	int fd;
	size_t msg;
	int pipe;
} fd_h;

static int sp_setup(void **ctx, size_t msg, size_t depth)
{
	fd_ctx *c = calloc(1, sizeof *c);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, c->fd)) {
		free(c);
		return -errno;
	}
	size_t want = depth * (msg + 1024);
	if (want < 2 * msg + 65536)
		want = 2 * msg + 65536;
	if (want > (64u << 20))
		want = 64u << 20;
	int v = (int)want;
	for (int i = 0; i < 2; i++) {
		if (setsockopt(c->fd[i], SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v))
			setsockopt(c->fd[i], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
		if (setsockopt(c->fd[i], SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v))
			setsockopt(c->fd[i], SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
	}
	c->msg = msg;
	*ctx = c;
	return 0;
}

static int pipe_setup(void **ctx, size_t msg, size_t depth)
{
	fd_ctx *c = calloc(1, sizeof *c);
	int p[2];
	if (pipe(p)) {
		free(c);
		return -errno;
	}
	c->fd[0] = p[1];
	c->fd[1] = p[0];
	size_t want = depth * msg;
	if (want > (8u << 20))
		want = 8u << 20;
	if (fcntl(p[1], F_SETPIPE_SZ, (int)want) < 0)
		fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
	c->msg = msg;
	c->pipe = 1;
	*ctx = c;
	return 0;
}

static int fd_attach(void *ctx, int role, void **h)
{
	fd_ctx *c = ctx;
	fd_h *x = calloc(1, sizeof *x);
	x->fd = role == QH_PRODUCER ? c->fd[0] : c->fd[1];
	x->msg = c->msg;
	x->pipe = c->pipe;
	*h = x;
	return 0;
}

static int fd_send(void *h, const void *buf, size_t len)
{
	fd_h *x = h;
	size_t done = 0;
	while (done < len) {
		ssize_t n =
		    x->pipe ? write(x->fd, (const char *)buf + done, len - done) : send(x->fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!x->pipe)
			return (size_t)n == len ? 0 : -EMSGSIZE;
		done += (size_t)n;
	}
	return 0;
}

static int fd_recv(void *h, void *buf, size_t cap, size_t *len)
{
	fd_h *x = h;
	if (!x->pipe) {
		ssize_t n;
		while ((n = recv(x->fd, buf, cap, 0)) < 0)
			if (errno != EINTR)
				return -errno;
		*len = (size_t)n;
		return n ? 0 : -EPIPE;
	}
	size_t got = 0;
	while (got < x->msg) {
		ssize_t n = read(x->fd, (char *)buf + got, x->msg - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += (size_t)n;
	}
	*len = got;
	return 0;
}

static void fd_detach(void *h)
{
	free(h);
}

static void fd_teardown(void *ctx)
{
	fd_ctx *c = ctx;
	close(c->fd[0]);
	close(c->fd[1]);
	free(c);
}

static const qh_ops sp_ops = { "seqpacket", sp_setup, fd_attach, fd_send, fd_recv, fd_detach, fd_teardown };
static const qh_ops pipe_ops = { "pipe", pipe_setup, fd_attach, fd_send, fd_recv, fd_detach, fd_teardown };

static const char *pipe_skip(int producers, int consumers, size_t msg)
{
	return (producers > 1 || consumers > 1) && msg > PIPE_BUF ? "a pipe is atomic only up to PIPE_BUF bytes" : NULL;
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *peer = NULL, *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			; /* JSON is all it prints */
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
			peer = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else
			peer = NULL, i = argc;
	}
	const qh_ops *ops = NULL;
	if (peer && !strcmp(peer, "mq"))
		ops = &mq_ops;
	else if (peer && !strcmp(peer, "seqpacket"))
		ops = &sp_ops;
	else if (peer && !strcmp(peer, "pipe"))
		ops = &pipe_ops;
	if (!ops) {
		fprintf(stderr, "usage: queue_peers --peer mq|seqpacket|pipe [--json] [--quick] [--only PREFIX]\n");
		return 2;
	}
	/* POSIX mq: room for the deepest queue (root may raise the limit). */
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MSGQUEUE, &rl);
	int first = 1;
	printf("{\"bench\": \"queue_peers\", \"peer\": \"%s\", ", ops->name);
	qh_run_all(ops, quick, only, ops == &pipe_ops ? pipe_skip : NULL, &first);
	printf("}\n");
	return 0;
}
