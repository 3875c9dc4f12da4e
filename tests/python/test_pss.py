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
