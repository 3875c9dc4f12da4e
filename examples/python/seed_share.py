"""The program shmkit was made for, in Python: three lists of bit arrays and
integer arrays (l1, l2, l3) handed to 12 worker processes. With
shmkit.share they exist once in memory, whatever the number of workers:
one call puts the whole structure in a segment, and each worker gets the
same lists back with zero-copy, read-only arrays.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/seed_share.py [MiB] [WORKERS]

(The seed's program holds 16 GiB: `seed_share.py 16384` on a machine with
the memory for one copy.)
"""
import multiprocessing as mp
import sys
import time

import numpy as np
from bitarray import bitarray

import shmkit


def make_lists(mib, seed=2026):
    """l1: bit arrays (bitarray objects), l2: int64 arrays, l3: pairs of a
    shmkit.Bits and a uint32 array; mib MiB in all, in 4 parts each."""
    rng = np.random.default_rng(seed)
    part = (mib << 20) // 12  # bytes per array
    l1 = []
    for _ in range(4):
        b = bitarray(endian="little")
        b.frombytes(rng.integers(0, 256, part, dtype=np.uint8).tobytes())
        l1.append(b)
    l2 = [rng.integers(-1 << 40, 1 << 40, part // 8, dtype=np.int64) for _ in range(4)]
    l3 = [(shmkit.Bits.from_bools(rng.random(part) < 0.25), rng.integers(0, 1 << 32, part // 4, dtype=np.uint32))
          for _ in range(4)]
    return l1, l2, l3


def work(args):
    """Worker k of n: its stripe of every array. l1/l2/l3 arrive as the
    structure (the pool pickled the handle; unpickled, it is the lists)."""
    (l1, l2, l3), k, n = args
    ones = 0
    for b in l1:
        lo, hi = len(b) * k // n, len(b) * (k + 1) // n
        ones += b.count(1, lo, hi)
    total = 0
    for a in l2:
        lo, hi = len(a) * k // n, len(a) * (k + 1) // n
        total += int(a[lo:hi].sum())
    for bits, a in l3:
        lo, hi = len(bits) * k // n, len(bits) * (k + 1) // n
        ones += bits.count(lo, hi)
        lo, hi = len(a) * k // n, len(a) * (k + 1) // n
        total += int(a[lo:hi].sum(dtype=np.uint64))
    return ones, total


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 96
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    l1, l2, l3 = make_lists(mib)
    want = work(((l1, l2, l3), 0, 1))  # the answer, computed here on the original lists
    t0 = time.perf_counter()
    shared = shmkit.share((l1, l2, l3))  # one copy, in one segment; named when complete
    del l1, l2, l3  # from here on the program keeps the shared copy only
    with mp.get_context("spawn").Pool(workers) as pool:
        parts = pool.map(work, [(shared, k, workers) for k in range(workers)])
    seconds = time.perf_counter() - t0
    got = (sum(p[0] for p in parts), sum(p[1] for p in parts))
    ok = got == want
    print("%d workers, %d MiB shared once (%s), %.2f s: %s" % (workers, shared.nbytes >> 20, shared.name, seconds,
                                                              "ok" if ok else "WRONG %r != %r" % (got, want)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
