"""The bit-array / integer-array case: worker processes sieve primes below N
into one shared bit array (a set bit marks a composite; test_and_set makes
every marking atomic, so the workers need no lock), then count the primes of
each block into a shared int64 array, and add their totals into a shared
Value. Each structure exists once, whatever the number of workers.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/sieve_counters.py [N] [WORKERS]
"""
import math
import multiprocessing as mp
import sys

import numpy as np

import shmkit

BLOCK = 1 << 20


def sieve(bits_name, primes, lo, hi):
    """Marks the multiples of the base primes in [lo, hi)."""
    bits = shmkit.Bits.open(bits_name)
    for p in primes:
        start = max(p * p, (lo + p - 1) // p * p)
        for m in range(start, hi, p):
            bits.test_and_set(m)


def count(bits_name, counts_name, total, blocks):
    bits = shmkit.Bits.open(bits_name)
    counts = np.asarray(shmkit.open(counts_name))
    n = len(bits)
    for b in blocks:
        lo, hi = b * BLOCK, min((b + 1) * BLOCK, n)
        counts[b] = (hi - lo) - bits.count(lo, hi)  # clear bits are primes
    total.add(int(counts[blocks].sum()))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    root = math.isqrt(n)
    base = [p for p in range(2, root + 1) if all(p % q for q in range(2, math.isqrt(p) + 1))]
    bits = shmkit.Bits(n)
    bits.set_range(0, 2)  # 0 and 1 are not primes
    nblocks = (n + BLOCK - 1) // BLOCK
    counts = shmkit.create(None, (nblocks,), "int64")
    total = shmkit.Value("q", 0)
    ctx = mp.get_context("fork")
    edges = np.linspace(0, n, workers + 1).astype(int)
    procs = [ctx.Process(target=sieve, args=(bits.name, base, edges[i], edges[i + 1])) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    procs = [ctx.Process(target=count, args=(bits.name, counts.name, total, list(range(i, nblocks, workers))))
             for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        sys.exit("a worker failed")
    # A plain NumPy sieve, to check against.
    ref = np.ones(n, dtype=bool)
    ref[:2] = False
    for p in range(2, root + 1):
        if ref[p]:
            ref[p * p::p] = False
    expect = int(ref.sum())
    per_block = [int(ref[b * BLOCK:(b + 1) * BLOCK].sum()) for b in range(nblocks)]
    agree = total.value == expect and list(np.asarray(counts)) == per_block
    print("primes below %d: %d (%d workers); counters agree: %s" % (n, total.value, workers,
                                                                   "ok" if agree else "WRONG"))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
