"""A Dask cluster whose workers all read one large matrix and one bit array,
one copy per host instead of one per worker (shmkit.dask).

The matrix (MiB of float64, default 256) and a bit array marking the rows to
skip are shared with every worker of a LocalCluster; then
  - plain tasks, one per worker, each take the whole matrix (the task's
    argument is a small handle: np.asarray(handle) is a read-only view of
    the host's copy) and sum a band of columns of the rows not skipped;
  - a dask.array over the same copy (chunks are views of it) computes the
    row norms with map_blocks;
both are checked against NumPy in this process. The workers' PSS is read
before and after: it grows by about one copy, where
client.scatter(x, broadcast=True) would give each worker its own.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/dask_share.py [MIB] [WORKERS]
"""
import logging
import os
import sys

import numpy as np
from distributed import Client, LocalCluster

import shmkit
import shmkit.dask


def pss():
    """This process's proportional set size, in bytes."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def band_sum(matrix, skip, lo, hi):
    """Runs in a worker: matrix and skip are shmkit.dask handles."""
    m = np.asarray(matrix)  # the host's copy, read-only, no copy made
    words = skip.get().words()  # a read-only shmkit.Bits; bit i is bit i % 64 of word i // 64
    skipped = np.unpackbits(words.view(np.uint8), bitorder="little")[:len(skip)].astype(bool)
    return float(m[:, lo:hi].sum(axis=1)[~skipped].sum())


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    nworkers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    cols = 4096
    rows = max(1, (mib << 20) // (8 * cols))
    x = np.random.default_rng(0).random((rows, cols))
    skip = shmkit.Bits(rows)  # in this process; share() copies it to every host
    for i in range(0, rows, 3):
        skip[i] = True

    # Give each worker a memory limit above its own needs plus the data: Dask
    # counts the pages of the shared copy a worker reads in its memory.
    with LocalCluster(n_workers=nworkers, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=logging.ERROR, memory_limit=x.nbytes + (1 << 30)) as cluster, \
            Client(cluster) as client:
        before = sum(client.run(pss).values())
        with shmkit.dask.share(client, x) as matrix, shmkit.dask.share(client, skip) as skipped:
            # Plain tasks, one per worker: each gets the handles, not the data.
            edges = np.linspace(0, cols, nworkers + 1).astype(int)
            workers = sorted(client.scheduler_info()["workers"])
            futures = [client.submit(band_sum, matrix, skipped, int(lo), int(hi), workers=[w])
                       for w, lo, hi in zip(workers, edges[:-1], edges[1:])]
            total = sum(client.gather(futures))

            # Dask's own graph over the same copy: every chunk is a view of it.
            d = matrix.to_dask_array(chunks=(max(1, rows // (2 * nworkers)), cols))
            norms = d.map_blocks(lambda b: np.sqrt((b * b).sum(axis=1)), drop_axis=1, dtype=x.dtype).compute()
            grown = sum(client.run(pss).values()) - before
            nhosts = len(matrix.hosts)

    keep = np.ones(rows, dtype=bool)
    keep[::3] = False
    ok = np.isclose(total, x[keep].sum()) and np.allclose(norms, np.sqrt((x * x).sum(axis=1)))
    print("%d MiB shared with %d workers on %d host(s): the workers' PSS grew by %.2fx the data "
          "(client.scatter(broadcast=True) holds about %dx)" % (x.nbytes >> 20, nworkers, nhosts, grown / x.nbytes,
                                                                 nworkers))
    print("band sums and map_blocks row norms agree with NumPy: %s" % ("ok" if ok else "WRONG"))
    skip.close()
    leftover = [n for n in os.listdir("/dev/shm") if n.startswith("skdask-")]
    if leftover or not ok:
        sys.exit("left in /dev/shm: %s" % leftover if leftover else "wrong results")


if __name__ == "__main__":
    main()
