"""cluster_seed.py: the many-workers-one-copy problem at cluster scale, from
Python (shmkit.cluster on mpi4py); examples/cluster_seed.c is the same in C.

    mpirun -n 8 --hostfile hosts python3 cluster_seed.py           (two nodes of 4 ranks)
    mpirun -n 8 python3 cluster_seed.py --ranks-per-node 4          (two pseudo-nodes on one box)

Rank 0 sieves the primes below 2^26 into a bit array and draws 2^22 int64
values; both are replicated, one read-only copy per node that every rank of
the node reads zero-copy as NumPy arrays. Every rank counts the primes among
its share of the values in 4096 buckets (the value modulo 4096): a
partitioned int64 array spread over the nodes, updated with batched atomic
adds. After a fence, every node's leader checks the counters against its own
count over the whole data, and every node reports the memory its ranks use
for the replicated data (PSS).
"""
import argparse

import numpy as np
from mpi4py import MPI

import shmkit.cluster

BUCKETS = 4096


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
    ap.add_argument("--bits", type=lambda s: int(s, 0), default=1 << 26)
    ap.add_argument("--values", type=lambda s: int(s, 0), default=1 << 22)
    ap.add_argument("--ranks-per-node", type=int, default=0)
    args = ap.parse_args()
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    cl = shmkit.cluster.Cluster(comm, ranks_per_node=args.ranks_per_node)

    primes = values = None
    if rank == 0:
        primes = np.ones(args.bits, dtype=bool)
        primes[:2] = False
        for p in range(2, int(args.bits ** 0.5) + 1):
            if primes[p]:
                primes[p * p::p] = False
        values = (np.random.default_rng(1).integers(0, 1 << 62, size=args.values, dtype=np.int64))
    bits = cl.replicate_bits(primes, root=0)      # one copy per node
    vals = cl.replicate(values, root=0)           # one copy per node
    del primes, values
    counts = cl.partition(BUCKETS, "int64")       # spread over the nodes

    # This rank's share, read from the node's copy, looked up in the bits.
    words, v = bits.words, vals.local
    lo, hi = args.values * rank // size, args.values * (rank + 1) // size
    t0 = MPI.Wtime()
    for a in range(lo, hi, 1 << 16):
        x = v[a:min(a + (1 << 16), hi)].astype(np.uint64) % np.uint64(args.bits)
        hit = (words[x >> np.uint64(6)] >> (x & np.uint64(63))) & np.uint64(1) == 1
        counts.add(v[a:min(a + (1 << 16), hi)][hit] % BUCKETS, 1)
    cl.fence()
    seconds = MPI.Wtime() - t0

    # Every node's leader checks everything against its node's copy.
    ok, hits = True, 0
    if cl.node_rank == 0:
        x = v.astype(np.uint64) % np.uint64(args.bits)
        hit = (words[x >> np.uint64(6)] >> (x & np.uint64(63))) & np.uint64(1) == 1
        want = np.bincount(v[hit] % BUCKETS, minlength=BUCKETS)
        hits = int(hit.sum())
        ok = np.array_equal(counts.gather(np.arange(BUCKETS)), want)
    cl.fence()
    ok = comm.allreduce(ok, op=MPI.LAND)
    data = v.nbytes + words.nbytes
    node_pss = cl.node_comm.reduce(pss_of(v) + pss_of(words), root=0)
    if cl.node_rank == 0:
        print("node %d: %d ranks hold %.1f MiB of replicated data in %.1f MiB (PSS, %.2fx)"
              % (cl.node, cl.node_size, data / 2**20, node_pss / 2**20, node_pss / data), flush=True)
    cl.fence()
    if rank == 0:
        print("%d ranks on %d nodes: %d of %d values hit a prime below %d, counted in %.3f s"
              % (size, cl.nodes, hits, args.values, args.bits, seconds))
        print("counters agree: %s" % ("ok" if ok else "MISMATCH"), flush=True)
    del words, v
    counts.close()
    vals.close()
    bits.close()
    cl.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
