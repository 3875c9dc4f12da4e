"""shmkit.dask against Dask's own broadcast, in one run: how long until every
worker has the data, and how much memory the workers hold for it.

    /usr/bin/python3 bench/dask_compare.py --json [--bytes N] [--workers W] [--reps R] [--quick]

Needs the shmkit module on the path (PYTHONPATH=build/python) and Dask's
distributed (python3-distributed). One LocalCluster of W worker processes (one
thread each) on this machine, so one host. Each repetition runs both ways,
alternating which goes first, on the same --bytes of random int64:

  shmkit:  h = shmkit.dask.share(client, x), then one task pinned to each
           worker that sums all of np.asarray(h) (attach + read every page).
  scatter: f = client.scatter(x, broadcast=True), then one task pinned to
           each worker that sums its replica.

Figures (min/median/max over the repetitions):
  <way>_seconds         from the call until every worker's sum is back
  <way>_share_seconds   the share() / scatter() call alone
  <way>_pss_per_data    growth of the workers' summed PSS (smaps_rollup), read
                        right after the sums, divided by the data size
  scatter_replicas      replicas Dask held at that moment (its Active Memory
                        Manager may drop some later)
The client holds x in both ways and is not counted. results_ok: every sum
right. The data is released and the workers settle between runs.
"""
import argparse
import gc
import json
import logging
import os
import statistics
import sys
import time

import numpy as np

import shmkit

try:
    import distributed
    from distributed import Client, LocalCluster

    import shmkit.dask as skd
except ImportError as e:
    sys.exit("dask_compare: needs python3-distributed (%s)" % e)


def stat(xs, nd=3):
    return {"median": round(statistics.median(xs), nd), "min": round(min(xs), nd), "max": round(max(xs), nd),
            "n": len(xs)}


def pss_of(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss for %d" % pid)


def task_sum(a):
    return int(np.asarray(a).sum(dtype=np.int64))


def settle():
    gc.collect()
    return True


class Bench:
    def __init__(self, client):
        self.c = client
        self.workers = sorted(client.scheduler_info()["workers"])
        self.pids = client.run(os.getpid)

    def pss(self):
        return sum(pss_of(p) for p in self.pids.values())

    def sums(self, arg):
        fs = [self.c.submit(task_sum, arg, workers=[w], allow_other_workers=False, pure=False) for w in self.workers]
        return self.c.gather(fs)

    def quiet(self):
        """Lets the workers free what the last run left (Dask releases keys asynchronously)."""
        self.c.run(settle)
        time.sleep(0.5)
        self.c.run(settle)

    def run_shmkit(self, x, want):
        self.quiet()
        before = self.pss()
        t0 = time.perf_counter()
        h = skd.share(self.c, x)
        t1 = time.perf_counter()
        got = self.sums(h)
        t2 = time.perf_counter()
        grown = self.pss() - before
        h.release()
        return {"seconds": t2 - t0, "share_seconds": t1 - t0, "pss_per_data": grown / x.nbytes,
                "ok": got == [want] * len(self.workers)}

    def run_scatter(self, x, want):
        self.quiet()
        before = self.pss()
        t0 = time.perf_counter()
        f = self.c.scatter(x, broadcast=True, hash=False)
        t1 = time.perf_counter()
        got = self.sums(f)
        t2 = time.perf_counter()
        grown = self.pss() - before
        replicas = len(self.c.who_has([f])[f.key])
        f.release()
        del f
        return {"seconds": t2 - t0, "share_seconds": t1 - t0, "pss_per_data": grown / x.nbytes,
                "replicas": replicas, "ok": got == [want] * len(self.workers)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object on one line (the only format)")
    ap.add_argument("--bytes", type=int, default=256 << 20, help="data per run (default 256 MiB)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="32 MiB, 3 repetitions")
    args = ap.parse_args()
    nbytes = (32 << 20) if args.quick else args.bytes
    reps = 3 if args.quick else args.reps
    x = np.random.default_rng(20).integers(0, 1 << 40, size=nbytes // 8, dtype=np.int64)
    want = int(x.sum(dtype=np.int64))
    # Each worker's memory limit must hold a private copy for the scatter (and
    # Dask counts the shared pages a worker read in its RSS too): data + 1 GiB.
    limit = nbytes + (1 << 30)
    out = {"bytes": x.nbytes, "workers": args.workers, "reps": reps, "dask": distributed.__version__,
           "shmkit": shmkit.__version__, "python": sys.version.split()[0], "numpy": np.__version__,
           "memory_limit_bytes": limit}
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR, memory_limit=limit) as cluster, Client(cluster) as c:
        c.wait_for_workers(args.workers, timeout=300)
        b = Bench(c)
        out["hosts"] = len(skd.hosts(c))
        out["idle_workers_pss_bytes"] = b.pss()
        # Warm-up: imports, the plugin, first transfers (not counted).
        small = x[:1024].copy()
        b.run_shmkit(small, int(small.sum()))
        b.run_scatter(small, int(small.sum()))
        runs = {"shmkit": [], "scatter": []}
        for i in range(reps):
            order = ["shmkit", "scatter"] if i % 2 == 0 else ["scatter", "shmkit"]
            for way in order:
                runs[way].append(getattr(b, "run_" + way)(x, want))
    for way, rs in runs.items():
        out[way + "_seconds"] = stat([r["seconds"] for r in rs])
        out[way + "_share_seconds"] = stat([r["share_seconds"] for r in rs])
        out[way + "_pss_per_data"] = stat([r["pss_per_data"] for r in rs])
        out[way + "_ok"] = all(r["ok"] for r in rs)
    out["scatter_replicas"] = stat([r["replicas"] for r in runs["scatter"]], 0)
    med = lambda k: out[k]["median"]
    out["ratios"] = {
        "pss_scatter_vs_shmkit": round(med("scatter_pss_per_data") / med("shmkit_pss_per_data"), 3),
        "seconds_scatter_vs_shmkit": round(med("scatter_seconds") / med("shmkit_seconds"), 3),
    }
    out["results_ok"] = out["shmkit_ok"] and out["scatter_ok"]
    print(json.dumps(out))
    if not out["results_ok"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
