"""The classic Python example, with shmkit: a NumPy matrix shared with 12
multiprocessing Processes, each computing the row sums of its band, written
into a shared result array. Nothing is pickled but two names; the matrix
exists once in memory however many workers there are.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/matrix_workers.py [N] [WORKERS]
"""
import multiprocessing as mp
import sys
import time

import numpy as np

import shmkit


def worker(matrix_name, sums_name, lo, hi):
    m = np.asarray(shmkit.open(matrix_name, readonly=True))  # attach by name: no copy
    sums = np.asarray(shmkit.open(sums_name))
    sums[lo:hi] = m[lo:hi].sum(axis=1)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    # Owned segments (the default): their names go when this process ends,
    # however it ends. Generated names: nothing to collide with.
    with shmkit.create(None, (n, n), "float64") as a, shmkit.create(None, (n,), "float64") as s:
        matrix = np.asarray(a)
        matrix[:] = np.random.default_rng(42).random((n, n))
        t0 = time.perf_counter()
        bands = np.linspace(0, n, workers + 1).astype(int)
        ctx = mp.get_context("spawn")  # the start method that pickles arguments: here two names
        procs = [ctx.Process(target=worker, args=(a.name, s.name, bands[i], bands[i + 1])) for i in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode for p in procs):
            sys.exit("a worker failed")
        dt = time.perf_counter() - t0
        sums = np.asarray(s)
        ok = np.allclose(sums, matrix.sum(axis=1))
        print("%d x %d matrix (%d MiB), %d workers, %.2f s: %s" % (n, n, matrix.nbytes >> 20, workers, dt,
                                                                  "ok" if ok else "WRONG"))
        del matrix, sums  # views first: close() refuses while NumPy arrays use the segment
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
