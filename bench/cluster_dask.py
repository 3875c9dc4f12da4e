"""Dask's way of giving every worker the same array, measured for
bench/cluster_run.py: client.scatter(x, broadcast=True) on a LocalCluster of
W worker processes on this host, and the PSS the workers gain by holding it.

  cluster_dask.py --mib N --workers W

Prints one JSON object: data_bytes, workers, pss_bytes (the sum over the
workers of the PSS of the memory that holds their array, from each worker's
/proc/self/smaps: the mappings that overlap the array), pss_vs_data, seconds
(the scatter), results_ok (every worker holds the array and its sum is
right). Needs python3-distributed; run with /usr/bin/python3.
"""
import argparse
import json
import time

import numpy as np


def pss_of(array):
    """PSS of this process's mappings that overlap the array's memory."""
    lo = array.__array_interface__["data"][0]
    hi, pss, inside = lo + array.nbytes, 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and ":" not in head:
                a, b = (int(x, 16) for x in head.split("-"))
                inside = a < hi and b > lo
            elif inside and line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return pss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)
    x = np.arange((args.mib << 20) // 8, dtype=np.int64)
    want = int(x.sum())
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit=0,
                      dashboard_address=None, silence_logs=logging.ERROR) as lc, Client(lc) as client:
        t0 = time.perf_counter()
        fut = client.scatter(x, broadcast=True)
        holders = client.who_has(fut)[fut.key]
        seconds = time.perf_counter() - t0
        key = fut.key
        got = client.run(lambda dask_worker: (int(dask_worker.data[key].sum()), pss_of(dask_worker.data[key])))
    pss = sum(p for _, p in got.values())
    ok = len(holders) == args.workers == len(got) and all(s == want for s, _ in got.values())
    print(json.dumps({"data_bytes": x.nbytes, "workers": args.workers, "pss_bytes": pss,
                      "pss_vs_data": pss / x.nbytes, "seconds": round(seconds, 3), "results_ok": ok}))


if __name__ == "__main__":
    main()
