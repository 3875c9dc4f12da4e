/*
 * measure.c: the /proc readers, the read kernel and the huge-page status
 * word of measure.h. Each reader opens its file, reads it once and closes it;
 * nothing is cached, so a figure is the file's at the moment of the call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "measure.h"
#include "shmkit.h"

/* The number after `key` (which starts with a newline) in the first 8 KiB of
 * path, in kB as /proc writes it; 0 when absent or unreadable. */
static uint64_t proc_field_kb(const char *path, const char *key)
{
	char buf[8192];
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strstr(buf, key);
	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static uint64_t pid_field_kb(pid_t pid, const char *file, const char *key)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	return proc_field_kb(path, key);
}

uint64_t measure_pss(pid_t pid)
{
	return pid_field_kb(pid, "smaps_rollup", "\nPss:") * 1024;
}

uint64_t measure_pss_range(const void *p, size_t n)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return 0;
	char line[512];
	uint64_t pss = 0;
	int in = 0;
	unsigned long lo = (unsigned long)p, hi = lo + n;
	while (fgets(line, sizeof line, f)) {
		unsigned long a, b, kb;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = a < hi && b > lo;
		else if (in && sscanf(line, "Pss: %lu kB", &kb) == 1)
			pss += (uint64_t)kb * 1024;
	}
	fclose(f);
	return pss;
}

uint64_t measure_page_tables(pid_t pid)
{
	return pid_field_kb(pid, "status", "\nVmPTE:") * 1024;
}

uint64_t measure_mem_available(void)
{
	return proc_field_kb("/proc/meminfo", "\nMemAvailable:") * 1024;
}

__attribute__((noinline)) uint64_t measure_sum_words(const uint64_t *w, size_t n)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	for (size_t i = 0; i + 4 <= n; i += 4) {
		s0 += w[i];
		s1 += w[i + 1];
		s2 += w[i + 2];
		s3 += w[i + 3];
	}
	return s0 + s1 + s2 + s3;
}

const char *huge_status_token(int status)
{
	static const char *const t[] = { "unknown", "all", "partial", "refused", "small", "opted_out", "hugetlb" };
	return status >= 0 && status <= SK_HUGE_HUGETLB ? t[status] : t[0];
}
