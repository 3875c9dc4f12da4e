/*
 * bench/queue_boost: Boost.Interprocess message_queue (libboost-dev,
 * header-only) measured by the same harness as bench/queue
 * (bench/qharness.h): a queue of depth messages of the same size, blocking
 * send and receive. Built only for `make bench` (it needs a C++ compiler;
 * the library and the demo never do).
 *
 *   queue_boost [--json] [--quick] [--only PREFIX]
 *
 * Prints {"bench": "queue_boost", "peer": "boost", FIGURES...}.
 */
#include <boost/interprocess/ipc/message_queue.hpp>

#include "qharness.h"

namespace bip = boost::interprocess;

struct bq_ctx {
	char name[64];
};

static int bq_setup(void **ctx, size_t msg, size_t depth)
{
	static int k;
	bq_ctx *c = new bq_ctx;
	snprintf(c->name, sizeof c->name, "shmkit-bench-bmq-%d-%d", (int)getpid(), k++);
	try {
		bip::message_queue q(bip::create_only, c->name, depth, msg);
	} catch (const std::exception &e) {
		fprintf(stderr, "queue_boost: %s\n", e.what());
		delete c;
		return -1;
	}
	*ctx = c;
	return 0;
}

static int bq_attach(void *ctx, int role, void **h)
{
	(void)role;
	try {
		*h = new bip::message_queue(bip::open_only, static_cast<bq_ctx *>(ctx)->name);
	} catch (const std::exception &e) {
		fprintf(stderr, "queue_boost: %s\n", e.what());
		return -1;
	}
	return 0;
}

static int bq_send(void *h, const void *buf, size_t len)
{
	try {
		static_cast<bip::message_queue *>(h)->send(buf, len, 0);
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

static int bq_recv(void *h, void *buf, size_t cap, size_t *len)
{
	try {
		bip::message_queue *q = static_cast<bip::message_queue *>(h);
		bip::message_queue::size_type got = 0;
		unsigned prio = 0;
		q->receive(buf, cap, got, prio);
		*len = got;
	} catch (const std::exception &) {
		return -1;
	}
	return 0;
}

static void bq_detach(void *h)
{
	delete static_cast<bip::message_queue *>(h);
}

static void bq_teardown(void *ctx)
{
	bq_ctx *c = static_cast<bq_ctx *>(ctx);
	bip::message_queue::remove(c->name);
	delete c;
}

int main(int argc, char **argv)
{
	int quick = 0;
	const char *only = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			; /* JSON is all it prints */
		else if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else {
			fprintf(stderr, "usage: queue_boost [--json] [--quick] [--only PREFIX]\n");
			return 2;
		}
	}
	qh_ops ops = { "boost", bq_setup, bq_attach, bq_send, bq_recv, bq_detach, bq_teardown };
	int first = 1;
	printf("{\"bench\": \"queue_boost\", \"peer\": \"boost\", ");
	qh_run_all(&ops, quick, only, NULL, &first);
	printf("}\n");
	return 0;
}
