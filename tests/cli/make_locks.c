/*
 * make_locks PREFIX: creates one named segment of every lock kind, a value
 * and a locked array, in known states, for the command's tests:
 *   PREFIX-mutex    held by a process that was then SIGKILLed
 *   PREFIX-rwlock   free          PREFIX-sem      count 2 of at most 5
 *   PREFIX-barrier  3 parties     PREFIX-event    set
 *   PREFIX-cond     -             PREFIX-value    int64 42, locked
 *   PREFIX-larray   int32 (2, 3) carrying a lock
 *   PREFIX-queue    64 KiB ring holding 3 messages of 5 bytes
 */
#include <shmkit.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static char name[256];

static const char *n(const char *prefix, const char *what)
{
	snprintf(name, sizeof name, "%s-%s", prefix, what);
	return name;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_locks PREFIX\n");
		return 2;
	}
	const char *p = argv[1];
	sk_segment *seg[6] = { 0 };
	sk_mutex *m;
	sk_rwlock *rw;
	sk_sem *sem;
	sk_barrier *b;
	sk_event *e;
	sk_cond *c;
	int64_t x = 42;
	uint64_t shape[2] = { 2, 3 };
	sk_create_opts locked = { .flags = SK_CREATE_LOCKED };
	sk_value *v = NULL;
	sk_array *a = NULL;
	sk_queue *q = NULL;
	int rc = sk_mutex_create(n(p, "mutex"), NULL, &seg[0], &m);
	rc = rc ? rc : sk_rwlock_create(n(p, "rwlock"), NULL, &seg[1], &rw);
	rc = rc ? rc : sk_sem_create(n(p, "sem"), 2, 5, NULL, &seg[2], &sem);
	rc = rc ? rc : sk_barrier_create(n(p, "barrier"), 3, NULL, &seg[3], &b);
	rc = rc ? rc : sk_event_create(n(p, "event"), NULL, &seg[4], &e);
	rc = rc ? rc : sk_event_set(e);
	rc = rc ? rc : sk_cond_create(n(p, "cond"), NULL, &seg[5], &c);
	rc = rc ? rc : sk_value_create(n(p, "value"), SK_INT64, NULL, &v);
	rc = rc ? rc : sk_value_set(v, &x);
	rc = rc ? rc : sk_array_create(n(p, "larray"), SK_INT32, 2, shape, &locked, &a);
	rc = rc ? rc : sk_queue_create(n(p, "queue"), 65536, 1024, NULL, &q);
	for (int i = 0; i < 3 && !rc; i++)
		rc = sk_queue_push(q, "hello", 5, 0);
	if (rc) {
		fprintf(stderr, "make_locks: %s: %s\n", name, sk_strerror(rc));
		return 1;
	}
	int fds[2];
	if (pipe(fds))
		return 1;
	pid_t pid = fork();
	if (pid == 0) {
		char ok = sk_mutex_lock(m, -1) == 0;
		if (write(fds[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char ok = 0;
	if (read(fds[0], &ok, 1) != 1 || !ok)
		return 1;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("%d\n", (int)pid);
	for (int i = 0; i < 6; i++)
		sk_segment_close(seg[i]);
	sk_value_close(v);
	sk_array_close(a);
	sk_queue_close(q);
	close(fds[0]);
	close(fds[1]);
	return 0;
}
