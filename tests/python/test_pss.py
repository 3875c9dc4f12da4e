"""12 workers attach to one array by name with the fork and spawn start
methods; the memory they use together (the sum of their PSS of the data)
stays near one copy of it."""
import multiprocessing as mp

import numpy as np
import pytest

import shmkit

WORKERS = 12
DATA = 256 << 20


def mapping_pss(addr):
    """PSS and RSS in bytes of the mapping of this process that holds addr."""
    pss = rss = None
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head == "Pss:":
                pss = int(line.split()[1]) * 1024
            elif inside and head == "Rss:":
                rss = int(line.split()[1]) * 1024
    return pss, rss


def _worker(name, barrier, out):
    a = shmkit.open(name, readonly=True)
    m = np.asarray(a)
    total = int(m[::512].sum())  # touches every page (4 KiB = 512 int64)
    barrier.wait(120)  # everyone holds every page now
    pss, rss = mapping_pss(m.__array_interface__["data"][0])
    out.put((total, pss, rss))
    barrier.wait(120)  # nobody lets go before all have measured


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_twelve_workers_share_one_copy(method):
    ctx = mp.get_context(method)
    a = shmkit.create(None, (DATA // 8,), "int64")
    m = np.asarray(a)
    m[:] = 1
    barrier = shmkit.Barrier(WORKERS + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(a.name, barrier, out)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    barrier.wait(120)
    mine = mapping_pss(m.__array_interface__["data"][0])
    got = [out.get(timeout=120) for _ in procs]
    barrier.wait(120)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(t == DATA // 8 // 512 for t, _, _ in got)
    assert all(rss >= DATA * 0.99 for _, _, rss in got)  # each worker maps all of it ...
    total_pss = mine[0] + sum(pss for _, pss, _ in got)
    # ... and together they hold one copy (13 processes: 1/13 each)
    print("%s: sum of PSS %.3f x the data, each worker RSS %.3f x" %
          (method, total_pss / DATA, got[0][2] / DATA))
    assert 0.95 * DATA <= total_pss <= 1.1 * DATA


def pss_total():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def mapping_pss_of_range(lo, hi):
    """PSS in bytes of this process's mappings that overlap [lo, hi)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                a, b = (int(x, 16) for x in head.split("-"))
                inside = a < hi and lo < b
            elif inside and head == "Pss:":
                total += int(line.split()[1]) * 1024
    return total


def _share_worker(name, barrier, out):
    from bitarray import bitarray  # noqa: F401  (imported before the baseline, as a program would)
    before = pss_total()
    seg = shmkit._shmkit.segment_open(name, True)  # the same mapping attach makes
    l1, l2, l3 = shmkit._share._load(seg)
    touched = sum(b.count() for b in l1) + sum(int(a[::512].sum()) for a in l2)  # every page
    barrier.wait(300)  # everyone holds every page now
    mine = mapping_pss_of_range(seg.address, seg.address + seg.size)
    out.put((touched, mine, pss_total() - before - mine))
    barrier.wait(300)


def test_twelve_workers_share_one_copy_of_a_shared_graph():
    """shmkit.share of the seed's three lists (bit arrays, integer arrays, a
    dict) with 12 spawned workers: all processes together hold at most 1.05x
    the data (issue 18), counting each worker's private growth too."""
    from bitarray import bitarray
    n = DATA // 8 // 4  # int64 elements per array: 4 arrays, plus bit arrays of a quarter of that
    rng = np.random.default_rng(7)
    l1 = [bitarray(n * 8, endian="little") for _ in range(2)]
    for b in l1:
        b.frombytes(rng.integers(0, 256, n // 8, dtype=np.uint8).tobytes())
        del b[n * 8:]
    l1.append(shmkit.Bits.from_bools(rng.random(n) < 0.5))
    l2 = [rng.integers(1, 9, n, dtype=np.int64) for _ in range(4)]
    l3 = {"workers": WORKERS, "note": "seed"}
    data_bytes = sum(len(b) // 8 for b in l1[:2]) + (len(l1[2]) + 7) // 8 + sum(a.nbytes for a in l2)
    want = sum(b.count() for b in l1) + sum(int(a[::512].sum()) for a in l2)
    h = shmkit.share((l1, l2, l3))
    del l1, l2  # the program keeps the shared copy only
    ctx = mp.get_context("spawn")
    barrier = shmkit.Barrier(WORKERS + 1)
    out = ctx.Queue()
    procs = [ctx.Process(target=_share_worker, args=(h.name, barrier, out)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    barrier.wait(300)
    seg = h._seg
    mine = mapping_pss_of_range(seg.address, seg.address + seg.size)
    got = [out.get(timeout=300) for _ in procs]
    barrier.wait(300)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(t == want for t, _, _ in got)
    shared = mine + sum(m for _, m, _ in got)
    private = sum(x for _, _, x in got)  # what unpickling the structure cost the workers
    ratio = (shared + max(private, 0)) / data_bytes
    print("share: %d workers, data %.1f MiB, segment PSS %.4fx, workers' private growth %+.0f KiB, total %.4fx"
          % (WORKERS, data_bytes / 2**20, shared / data_bytes, private / 1024, ratio))
    assert 0.95 <= shared / data_bytes and ratio <= 1.05, ratio
    h.close()
