/* quickstart: one array in shared memory, written by a child, read by the parent. */
#include <shmkit.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	uint64_t shape[2] = { 1000, 1000 };
	sk_array *a;
	int rc = sk_array_create("quickstart", SK_INT64, 2, shape, NULL, &a);
	if (rc) {
		fprintf(stderr, "create: %s\n", sk_strerror(rc));
		return 1;
	}
	if (fork() == 0) { /* any process can attach by name: no copy is made */
		sk_array *b;
		if (sk_array_open("quickstart", SK_RDWR, &b))
			_exit(1);
		int64_t *m = sk_array_data(b);
		for (uint64_t i = 0; i < sk_array_size(b); i++)
			m[i] = (int64_t)i;
		_exit(0);
	}
	wait(NULL);
	int64_t *m = sk_array_data(a);
	printf("m[999][999] = %lld\n", (long long)m[999 * 1000 + 999]);
	sk_array_close(a);
	sk_segment_unlink("quickstart");
	return 0;
}
