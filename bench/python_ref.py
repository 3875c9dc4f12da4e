"""The way Python programs share data today, measured for bench/run.py.

  python_ref.py memory --bytes N --workers W   each of W worker processes gets the
        data (2 uint64 and 2 int64 arrays, N bytes in all) as pickled arguments of a
        multiprocessing Process (the "spawn" start method, which pickles them);
        prints the PSS of the whole process tree while every worker holds its copy
  python_ref.py attach --sizes S1,S2,.. --reps R   how long a worker takes to
        receive an array of each size as a pickled argument (through a
        multiprocessing Pipe, as Pool and Process do), median of R

Output: one JSON object on stdout. Run with /usr/bin/python3 (NumPy from Debian).
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import time

import numpy as np


def pss_bytes(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker(arrays, ready, release):
    total = 0
    for a in arrays:
        total += int(a.sum(dtype=np.uint64) if a.dtype == np.uint64 else a.sum())
    ready.put((os.getpid(), total))
    release.wait()


def memory(nbytes, workers):
    quarter = max(nbytes // 4 // 8, 1)
    arrays = [np.arange(quarter, dtype=np.uint64) * 2654435761 for _ in range(2)]
    arrays += [np.arange(quarter, dtype=np.int64) - quarter // 2 for _ in range(2)]
    ctx = mp.get_context("spawn")
    ready, release = ctx.Queue(), ctx.Event()
    t0 = time.perf_counter()
    procs = [ctx.Process(target=worker, args=(arrays, ready, release)) for _ in range(workers)]
    for p in procs:
        p.start()
    sums = [ready.get() for _ in procs]
    seconds = time.perf_counter() - t0
    pss = pss_bytes(os.getpid()) + sum(pss_bytes(pid) for pid, _ in sums)
    release.set()
    for p in procs:
        p.join()
    ok = len({s for _, s in sums}) == 1
    return {"data_bytes": quarter * 8 * 4, "workers": workers, "pss_total_bytes": pss,
            "seconds_to_all_workers_ready": round(seconds, 3), "results_ok": ok}


def echo(conn):
    while True:
        a = conn.recv()
        if a is None:
            return
        conn.send(a.nbytes)


def attach(sizes, reps):
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=echo, args=(child,))
    p.start()
    parent.send(np.ones(1, dtype=np.int64))  # the child imports NumPy on its first array: not timed
    parent.recv()
    medians, ranges = [], []
    for size in sizes:
        a = np.ones(size // 8, dtype=np.int64)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            parent.send(a)
            assert parent.recv() == a.nbytes
            times.append((time.perf_counter() - t0) * 1e6)
        medians.append(round(statistics.median(times), 1))
        ranges.append([round(min(times), 1), round(max(times), 1)])
        del a
    parent.send(None)
    p.join()
    return {"sizes": sizes, "attach_us_median": medians, "attach_us_range": ranges}


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("memory")
    m.add_argument("--bytes", type=int, required=True)
    m.add_argument("--workers", type=int, required=True)
    a = sub.add_parser("attach")
    a.add_argument("--sizes", required=True)
    a.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.mode == "memory":
        out = memory(args.bytes, args.workers)
    else:
        out = attach([int(s) for s in args.sizes.split(",")], args.reps)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
