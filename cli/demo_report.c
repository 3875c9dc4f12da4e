/*
 * demo_report.c: the figures of `shmkit demo` (demo.h), as one JSON object
 * (--json) or as a table for a person. Nothing is measured here: every
 * number comes in demo_figures. The JSON keys are a contract (tests/cli,
 * bench/run.py read them).
 */
#include <stdio.h>

#include "cli.h"
#include "demo.h"

void demo_report_json(const demo_figures *f)
{
	const cold_scan *cold = &f->cold, *cold_4k = &f->cold_4k;
	printf("{\"data_bytes\": %llu, \"workers\": %d, \"attach_us_median\": %.1f, \"attach_us_max\": %.1f, "
	       "\"attach_cpu_us_median\": %.1f, \"attach_cpu_us_max\": %.1f, "
	       "\"fill_seconds\": %.3f, \"scan_seconds\": %.3f, \"scan_gbps\": %.2f, \"memread_gbps\": %.2f, "
	       "\"scan_vs_memread\": %.3f, \"pss_workers_bytes\": %llu, \"pss_total_bytes\": %llu, "
	       "\"pss_total_vs_data\": %.3f, \"page_tables_bytes\": %llu, \"copy_would_cost_bytes\": %llu, "
	       "\"anonymous\": %s, \"page_size\": %llu, \"results_ok\": %s",
	       (unsigned long long)f->data_bytes, f->workers, f->attach_us_median, f->attach_us_max,
	       f->attach_cpu_us_median, f->attach_cpu_us_max, f->fill_s, f->scan_s, f->scan_gbps, f->memread_gbps,
	       f->scan_gbps / f->memread_gbps, (unsigned long long)f->pss_workers, (unsigned long long)f->pss_total,
	       (double)f->pss_total / (double)f->data_bytes, (unsigned long long)f->page_tables,
	       (unsigned long long)f->copy_cost, f->anonymous ? "true" : "false",
	       (unsigned long long)f->pages.page_size, f->ok ? "true" : "false");
	printf(", \"huge_status\": \"%s\", \"huge_bytes\": %llu", huge_status_token(f->pages.huge_status),
	       (unsigned long long)f->pages.huge_bytes);
	printf(", \"cold_scan_bytes\": %llu", (unsigned long long)f->cold_bytes);
	if (cold->ok)
		printf(", \"cold_scan_gbps\": %.2f, \"warm_scan_gbps\": %.2f, \"page_tables_cold_bytes\": %.0f, "
		       "\"cold_page_size\": %llu, \"cold_huge_status\": \"%s\"",
		       cold->cold_gbps, cold->warm_gbps, cold->page_tables, (unsigned long long)cold->reader_page_size,
		       huge_status_token(cold->huge_status));
	if (!cold->ok || !cold_4k->ok)
		printf(", \"cold_scan_note\": \"%s\"", f->cold_note ? f->cold_note : "?");
	if (cold_4k->ok)
		printf(", \"cold_scan_gbps_4k\": %.2f, \"warm_scan_gbps_4k\": %.2f, "
		       "\"page_tables_cold_bytes_4k\": %.0f",
		       cold_4k->cold_gbps, cold_4k->warm_gbps, cold_4k->page_tables);
	if (f->copy_run)
		printf(", \"copy_pss_total_bytes\": %llu, \"copy_seconds\": %.3f, \"copy_vs_shmkit_pss\": %.2f",
		       (unsigned long long)f->copy.pss_total, f->copy.seconds,
		       (double)f->copy.pss_total / (double)f->pss_total);
	printf("}\n");
}

void demo_report_text(const demo_figures *f)
{
	const cold_scan *cold = &f->cold, *cold_4k = &f->cold_4k;
	char a[32], b[32];
	printf("\n%-24s %s (2 bit arrays, 2 int64 arrays)\n", "data", human_size(f->data_bytes, a));
	printf("%-24s %d processes\n", "workers", f->workers);
	printf("%-24s %.2f s (in parallel, by the workers)\n", "fill", f->fill_s);
	if (f->anonymous)
		printf("%-24s none: anonymous segments made before the workers, inherited by them\n",
		       "attach per worker");
	else
		printf("%-24s median %.0f us, max %.0f us (4 segments by name; CPU time: median %.0f us, max "
		       "%.0f us)\n",
		       "attach per worker", f->attach_us_median, f->attach_us_max, f->attach_cpu_us_median,
		       f->attach_cpu_us_max);
	printf("%-24s %.2f s: each worker read all data, then its share: %.1f GB/s\n", "scan", f->scan_s, f->scan_gbps);
	printf("%-24s %.1f GB/s plain read of private memory, same workers (scan = %.2fx of it)\n", "machine",
	       f->memread_gbps, f->scan_gbps / f->memread_gbps);
	printf("%-24s %s\n", "PSS of the workers", human_size(f->pss_workers, a));
	printf("%-24s %s = %.2fx the data\n", "PSS of process tree", human_size(f->pss_total, a),
	       (double)f->pss_total / (double)f->data_bytes);
	printf("%-24s %s\n", "page tables", human_size(f->page_tables, a));
	printf("%-24s %s: %s\n", "pages", f->pages.page_size > 4096 ? "2 MiB" : "4 KiB",
	       sk_huge_str(f->pages.huge_status));
	if (cold->ok && cold_4k->ok)
		printf("%-24s %s: %.1f GB/s cold = %.2fx warm with %s pages (the default; page tables %s),\n"
		       "%-24s %.1f GB/s cold = %.2fx warm with 4 KiB pages (SK_CREATE_NOHUGE; page tables %s)\n",
		       "a fresh worker reads", human_size(f->cold_bytes, b), cold->cold_gbps,
		       cold->cold_gbps / cold->warm_gbps, cold->reader_page_size > 4096 ? "2 MiB" : "4 KiB",
		       human_size((uint64_t)cold->page_tables, a), "", cold_4k->cold_gbps,
		       cold_4k->cold_gbps / cold_4k->warm_gbps,
		       human_size((uint64_t)cold_4k->page_tables, (char[32]){ 0 }));
	else
		printf("%-24s not measured: %s\n", "a fresh worker reads", f->cold_note ? f->cold_note : "?");
	printf("%-24s %s (%d private copies and the original)\n", "copying would cost", human_size(f->copy_cost, a),
	       f->workers);
	if (f->copy_run)
		printf("%-24s PSS of process tree %s = %.1fx shmkit; handing out the copies took %.2f s\n",
		       "copy baseline (measured)", human_size(f->copy.pss_total, b),
		       (double)f->copy.pss_total / (double)f->pss_total, f->copy.seconds);
	printf("%-24s %s\n", "results", f->ok ? "ok: every worker saw exactly the expected data" : "WRONG");
	if (f->kept)
		printf("%-24s %s %s %s %s (kept; remove with shmkit rm)\n", "segments", f->kept[0], f->kept[1],
		       f->kept[2], f->kept[3]);
}
