/*
 * bench/queue: the message queue against what a program would otherwise use,
 * in one run:
 *   msgs_per_s, msgs_per_s_batch   64-byte messages, 1 producer and 1 consumer
 *                                  process, one at a time and 64 per call
 *   pipe_msgs_per_s                the same 64-byte messages through a pipe
 *   mpqueue_msgs_per_s             multiprocessing.Queue of 64-byte bytes, run
 *                                  by /usr/bin/python3 (skipped if missing)
 *   latency_ns_p50                 one-way latency (round trip / 2) for payloads
 *                                  of 64 B to 4 MiB: copying push/pop busy-polling
 *                                  ("busy") and blocking ("blocking"), and the
 *                                  zero-copy path ("zerocopy": reserve/commit,
 *                                  peek/release busy-polling, touching 8 bytes of
 *                                  the payload)
 *
 *
 * and the cases every queue benchmark runs the same way (bench/qharness.h;
 * bench/queue_peers.c and bench/queue_boost.cpp run them for the peers):
 *   tput_PxC_SIZE_msgs_per_s       P producer and C consumer processes, blocking
 *                                  push and pop (timeout -1) of SIZE-byte messages
 *   tput_PxC_SIZE_futex_per_msg    futex system calls per message, all processes
 *   lat_SIZE_ns                    one-way latency, blocking, median
 *
 *   queue [--json] [--quick] [--only PREFIX]   (PREFIX: run only the harness
 *                                              cases whose name starts with it)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "qharness.h"
#include "shmkit.h"

static char qname[64], qname2[64];

static void die(const char *what, int rc)
{
	fprintf(stderr, "queue: %s: %s\n", what, sk_strerror(rc));
	sk_segment_unlink(qname);
	sk_segment_unlink(qname2);
	exit(1);
}

static double throughput(long n, int batch)
{
	sk_queue *q;
	int rc = sk_queue_create(qname, 1 << 20, 4096, NULL, &q);
	if (rc)
		die("create", rc);
	fflush(NULL);
	pid_t prod = fork();
	if (prod == 0) {
		char msg[64] = { 0 };
		const void *msgs[64];
		size_t lens[64];
		for (int i = 0; i < 64; i++)
			msgs[i] = msg, lens[i] = sizeof msg;
		for (long i = 0; i < n;) {
			int k = batch ? sk_queue_push_many(q, msgs, lens, (int)(n - i < 64 ? n - i : 64), -1)
				      : (sk_queue_push(q, msg, sizeof msg, -1) == 0);
			if (k < 0)
				_exit(1);
			i += k;
		}
		_exit(0);
	}
	double t0 = bench_now();
	char buf[64 * 64];
	size_t lens[64], len;
	for (long i = 0; i < n;) {
		int k = batch ? sk_queue_pop_many(q, buf, sizeof buf, lens, 64, -1)
			      : (sk_queue_pop(q, buf, sizeof buf, &len, -1) == 0);
		if (k < 0)
			die("pop", k);
		i += k;
	}
	double secs = bench_now() - t0;
	waitpid(prod, NULL, 0);
	sk_queue_close(q);
	sk_segment_unlink(qname);
	return (double)n / secs;
}

static double pipe_throughput(long n)
{
	int fds[2];
	if (pipe(fds))
		return 0;
	fflush(NULL);
	pid_t prod = fork();
	if (prod == 0) {
		close(fds[0]);
		char msg[64] = { 0 };
		for (long i = 0; i < n; i++)
			if (write(fds[1], msg, sizeof msg) != sizeof msg)
				_exit(1);
		_exit(0);
	}
	close(fds[1]);
	double t0 = bench_now();
	char buf[64];
	for (long i = 0; i < n; i++) {
		size_t got = 0;
		while (got < sizeof buf) {
			ssize_t r = read(fds[0], buf + got, sizeof buf - got);
			if (r <= 0)
				return 0;
			got += (size_t)r;
		}
	}
	double secs = bench_now() - t0;
	close(fds[0]);
	waitpid(prod, NULL, 0);
	return (double)n / secs;
}

static double mpqueue_throughput(long n, const char **note)
{
	if (access("/usr/bin/python3", X_OK)) {
		*note = "/usr/bin/python3 not found";
		return 0;
	}
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "/usr/bin/python3 -c '\n"
		 "import multiprocessing as mp, time\n"
		 "def produce(q, n):\n"
		 "    m = bytes(64)\n"
		 "    for _ in range(n):\n"
		 "        q.put(m)\n"
		 "if __name__ == \"__main__\":\n"
		 "    q = mp.Queue(1000)\n"
		 "    p = mp.Process(target=produce, args=(q, %ld))\n"
		 "    t0 = time.perf_counter()\n"
		 "    p.start()\n"
		 "    for _ in range(%ld):\n"
		 "        q.get()\n"
		 "    print(%ld / (time.perf_counter() - t0))\n"
		 "    p.join()\n"
		 "' 2>/dev/null",
		 n, n, n);
	FILE *f = popen(cmd, "r");
	double v = 0;
	if (!f || fscanf(f, "%lf", &v) != 1)
		*note = "python3 multiprocessing run failed";
	if (f)
		pclose(f);
	return v;
}

/* shmkit's queue in the harness: a queue holding depth messages of msg bytes. */
typedef struct skq_ctx {
	char name[64];
} skq_ctx;

static int skq_setup(void **ctx, size_t msg, size_t depth)
{
	static int k;
	skq_ctx *c = calloc(1, sizeof *c);
	snprintf(c->name, sizeof c->name, "shmkit-bench-qh-%d-%d", (int)getpid(), k++);
	uint64_t rec = 8 + (msg + 7) / 8 * 8;
	sk_queue *q;
	int rc = sk_queue_create(c->name, rec * depth, msg, NULL, &q);
	if (rc) {
		free(c);
		return rc;
	}
	sk_queue_close(q);
	*ctx = c;
	return 0;
}

static int skq_attach(void *ctx, int role, void **h)
{
	(void)role;
	return sk_queue_open(((skq_ctx *)ctx)->name, (sk_queue **)h);
}

static int skq_send(void *h, const void *buf, size_t len)
{
	return sk_queue_push(h, buf, len, -1);
}

static int skq_recv(void *h, void *buf, size_t cap, size_t *len)
{
	return sk_queue_pop(h, buf, cap, len, -1);
}

static void skq_detach(void *h)
{
	sk_queue_close(h);
}

static void skq_teardown(void *ctx)
{
	sk_segment_unlink(((skq_ctx *)ctx)->name);
	free(ctx);
}

static const qh_ops skq_ops = { "shmkit", skq_setup, skq_attach, skq_send, skq_recv, skq_detach, skq_teardown };

enum { BUSY, BLOCKING, ZEROCOPY };

/* Ping-pong through two queues; returns the median one-way latency in ns. */
static double latency(size_t payload, int mode, int rounds)
{
	sk_queue *ping, *pong;
	uint64_t cap = payload * 2 + 4096 > (1u << 16) ? payload * 2 + 4096 : (1u << 16);
	int rc = sk_queue_create(qname, cap, payload, NULL, &ping);
	if (!rc)
		rc = sk_queue_create(qname2, cap, payload, NULL, &pong);
	if (rc)
		die("create", rc);
	char *buf = calloc(1, payload + 8);
	int64_t timeout = mode == BUSY ? 0 : -1;
	fflush(NULL);
	pid_t echo = fork();
	if (echo == 0) {
		for (int r = 0; r < rounds; r++) {
			size_t len;
			if (mode == ZEROCOPY) {
				const void *p;
				while ((rc = sk_queue_peek(ping, &p, &len, 0)) == -EAGAIN)
					;
				uint64_t seq;
				memcpy(&seq, p, 8);
				sk_queue_release(ping);
				void *w;
				if (sk_queue_reserve(pong, payload, &w, -1))
					_exit(1);
				memcpy(w, &seq, 8);
				sk_queue_commit(pong);
			} else {
				while ((rc = sk_queue_pop(ping, buf, payload, &len, timeout)) == -EAGAIN)
					;
				if (rc || sk_queue_push(pong, buf, len, -1))
					_exit(1);
			}
		}
		_exit(0);
	}
	double *t = malloc(sizeof(double) * (size_t)rounds);
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now();
		size_t len;
		if (mode == ZEROCOPY) {
			void *w;
			if (sk_queue_reserve(ping, payload, &w, -1))
				die("reserve", -1);
			memcpy(w, &r, sizeof r);
			sk_queue_commit(ping);
			const void *p;
			while (sk_queue_peek(pong, &p, &len, 0) == -EAGAIN)
				;
			sk_queue_release(pong);
		} else {
			if ((rc = sk_queue_push(ping, buf, payload, -1)))
				die("push", rc);
			while ((rc = sk_queue_pop(pong, buf, payload, &len, timeout)) == -EAGAIN)
				;
			if (rc)
				die("pop", rc);
		}
		t[r] = (bench_now() - t0) * 1e9 / 2;
	}
	waitpid(echo, NULL, 0);
	double med = bench_quantile(t, (size_t)rounds, 0.5);
	free(t);
	free(buf);
	sk_queue_close(ping);
	sk_queue_close(pong);
	sk_segment_unlink(qname);
	sk_segment_unlink(qname2);
	return med;
}

int main(int argc, char **argv)
{
	int json = 0, quick = 0;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: queue [--json] [--quick] [--only PREFIX]\n");
			return 2;
		}
	}
	snprintf(qname, sizeof qname, "shmkit-bench-queue-%d", (int)getpid());
	snprintf(qname2, sizeof qname2, "shmkit-bench-queue2-%d", (int)getpid());
	if (only) {
		/* Just the harness cases asked for, as JSON. */
		int first = 1;
		printf("{\"bench\": \"queue\", \"peer\": \"shmkit\", ");
		qh_run_all(&skq_ops, quick, only, NULL, &first);
		printf("}\n");
		return 0;
	}
	long n = quick ? 200000 : 2000000;
	double single = throughput(n, 0), batch = throughput(n * 4, 1), piped = pipe_throughput(n);
	const char *note = NULL;
	double mp = mpqueue_throughput(quick ? 20000 : 200000, &note);

	static const size_t payloads[] = { 64, 4096, 65536, 1 << 20, 4 << 20 };
	static const char *modes[] = { "busy", "blocking", "zerocopy" };
	double lat[3][5];
	for (int m = 0; m < 3; m++)
		for (int k = 0; k < 5; k++) {
			int rounds = payloads[k] >= (1 << 20) ? (quick ? 20 : 100) : (quick ? 200 : 2000);
			lat[m][k] = latency(payloads[k], m, rounds);
		}

	if (json) {
		printf("{\"bench\": \"queue\", \"peer\": \"shmkit\", \"msg_bytes\": 64, \"msgs_per_s\": %.0f, "
		       "\"msgs_per_s_batch\": %.0f, \"pipe_msgs_per_s\": %.0f, ",
		       single, batch, piped);
		if (mp > 0)
			printf("\"mpqueue_msgs_per_s\": %.0f, \"vs_mpqueue\": %.1f, \"batch_vs_mpqueue\": %.1f, ", mp,
			       single / mp, batch / mp);
		else
			printf("\"mpqueue_msgs_per_s\": null, \"mpqueue_note\": \"%s\", ", note);
		printf("\"vs_pipe\": %.2f, \"latency_payload_bytes\": [64, 4096, 65536, 1048576, 4194304], "
		       "\"latency_ns_p50\": {",
		       single / piped);
		for (int m = 0; m < 3; m++) {
			printf("%s\"%s\": [", m ? ", " : "", modes[m]);
			for (int k = 0; k < 5; k++)
				printf("%s%.0f", k ? ", " : "", lat[m][k]);
			printf("]");
		}
		printf("}, ");
		int first = 1;
		qh_run_all(&skq_ops, quick, NULL, NULL, &first);
		printf("}\n");
	} else {
		printf("64-byte messages, 1 producer + 1 consumer process:\n");
		printf(
		    "  shmkit queue   %12.0f msgs/s\n  batched (64)   %12.0f msgs/s\n  pipe           %12.0f msgs/s\n",
		    single, batch, piped);
		if (mp > 0)
			printf("  mp.Queue       %12.0f msgs/s  (shmkit %.1fx, batched %.1fx)\n", mp, single / mp,
			       batch / mp);
		else
			printf("  mp.Queue       skipped: %s\n", note);
		printf("one-way latency, median ns:   64 B    4 KiB   64 KiB    1 MiB    4 MiB\n");
		for (int m = 0; m < 3; m++) {
			printf("  %-10s           ", modes[m]);
			for (int k = 0; k < 5; k++)
				printf(" %8.0f", lat[m][k]);
			printf("\n");
		}
		printf("harness cases (bench/qharness.h), as JSON:\n{");
		int first = 1;
		qh_run_all(&skq_ops, quick, NULL, NULL, &first);
		printf("}\n");
	}
	return 0;
}
