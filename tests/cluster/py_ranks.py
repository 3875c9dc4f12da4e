"""shmkit.cluster checked inside every rank of an MPI job; started by
tests/cluster/test_cluster_py.py under mpirun.

    py_ranks.py suite    every check below, in order, on every rank
    py_ranks.py stop     the leader of the last node stops (SIGSTOP); the
                         others must raise ClusterTimeout within the deadline

Each check compares with a single-process reference computed by every rank
(NumPy, from seeds). A rank whose check fails prints the traceback, writes it
to its result file and aborts the job; a rank that passes everything writes
"rank N: all passed" to SHMKIT_TEST_RESULTS/rank-N.
Environment: as tests/cluster/test_cluster.c (SHMKIT_TEST_RANKS_PER_NODE,
SHMKIT_TEST_NODES, SHMKIT_TEST_THREAD=single, SHMKIT_TEST_TMP).
"""
import os
import signal
import sys
import time
import traceback

import mpi4py

if os.environ.get("SHMKIT_TEST_THREAD") == "single":
    mpi4py.rc.thread_level = "single"
from mpi4py import MPI  # noqa: E402
import numpy as np  # noqa: E402

import shmkit  # noqa: E402
import shmkit.cluster as skc  # noqa: E402

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
RPN = int(os.environ.get("SHMKIT_TEST_RANKS_PER_NODE", "0"))


def result(text):
    d = os.environ.get("SHMKIT_TEST_RESULTS")
    if d:
        with open(os.path.join(d, "rank-%d" % RANK), "w") as f:
            f.write(text + "\n")
    print(text, flush=True)


def raises(exc, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc.__name__))


def same_everywhere(value):
    values = COMM.allgather(value)
    assert all(v == values[0] for v in values), values


def pss_of(array):
    """PSS of this process's mappings overlapping the array's memory."""
    lo = array.__array_interface__["data"][0]
    hi = lo + array.nbytes
    pss, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and not line.startswith(("Pss", "Rss")) and ":" not in head:
                a, b = (int(x, 16) for x in head.split("-"))
                inside = a < hi and b > lo
            elif inside and line.startswith("Pss:"):
                pss += int(line.split()[1]) * 1024
    return pss


def check_topology(cl):
    assert (cl.rank, cl.size) == (RANK, SIZE)
    want = os.environ.get("SHMKIT_TEST_NODES")
    if want:
        assert cl.nodes == int(want), (cl.nodes, want)
    pairs = COMM.allgather((cl.node, cl.node_rank))
    for r, (node, nr) in enumerate(pairs):
        assert cl.node_of(r) == node
        if nr == 0:
            assert cl.leader_of(node) == r
    for k in range(cl.nodes):
        members = [r for r in range(SIZE) if pairs[r][0] == k]
        assert [pairs[r][1] for r in members] == list(range(len(members)))
        assert cl.leader_of(k) == members[0]
    assert cl.node_comm.Get_size() == cl.node_size
    assert (cl.leader_comm != MPI.COMM_NULL) == (cl.node_rank == 0)
    same_everywhere(cl.job_id)
    other = skc.Cluster(COMM, ranks_per_node=RPN)
    assert other.job_id != cl.job_id
    same_everywhere(other.job_id)
    other.close()
    assert cl.serve == ("inline" if os.environ.get("SHMKIT_TEST_THREAD") == "single" else "thread")
    # Different arguments on one rank: every rank learns it.
    e = raises(skc.ClusterMismatch, skc.Cluster, COMM, ranks_per_node=RPN, deadline=7.0 if RANK == 0 else 8.0)
    assert e.code == skc.SK_ECLUSTER_MISMATCH


def check_replicate(cl):
    rng = np.random.default_rng(5)
    dtypes = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64"]
    for i, dt in enumerate(dtypes):
        root = i % SIZE
        shape = (3, 5, 7 + i)
        ref = (rng.integers(0, 1 << 62, size=shape) % 1000 - 300).astype(dt)
        a = cl.replicate(ref if RANK == root else None, root=root)
        assert a.local.dtype == np.dtype(dt) and a.local.shape == shape
        assert np.array_equal(a.local, ref)
        assert not a.local.flags.writeable
        raises(ValueError, a.local.__setitem__, (0, 0, 0), 1)  # read-only view
        assert a.name.startswith("skc-%016x-n%d-o" % (cl.job_id, cl.node))
        raises(FileNotFoundError, shmkit.stat, a.name)  # the name is already gone
        idx = [ref.size - 1, 0, ref.size // 2]
        assert np.array_equal(a.gather(idx), ref.reshape(-1)[idx])
        raises(PermissionError, a.scatter, idx, ref.reshape(-1)[idx])
        raises(PermissionError, a.add, idx, 1)
        a.close()
    # A 0-d array, an empty one, and argument errors at the root reach everyone.
    a = cl.replicate(np.array(42, dtype="int64") if RANK == 0 else None)
    assert a.local.shape == () and int(a.local) == 42
    a.close()
    a = cl.replicate(np.zeros((4, 0), dtype="float32") if RANK == SIZE - 1 else None, root=SIZE - 1)
    assert a.local.shape == (4, 0)
    raises(IndexError, a.gather, [0])
    a.close()
    raises(TypeError, cl.replicate, np.zeros(3, dtype="complex128") if RANK == 0 else None)
    raises(TypeError, cl.replicate, np.zeros(3, dtype=">i8") if RANK == 0 else None)
    raises(ValueError, cl.replicate, None, root=SIZE)


def check_replicate_pss(cl):
    n = (16 << 20) // 8
    a = cl.replicate(np.arange(n, dtype="int64") if RANK == 0 else None)
    assert int(a.local[::512].sum()) == int(np.arange(n, dtype="int64")[::512].sum())
    cl.fence()
    node_pss = cl.node_comm.allreduce(pss_of(a.local))
    ratio = node_pss / (n * 8)
    assert 0.98 <= ratio <= 1.02, ratio
    a.close()


def check_replicate_npy(cl):
    tmp = os.environ.get("SHMKIT_TEST_TMP", "/tmp")
    path = os.path.join(tmp, "skc-py-%016x" % cl.job_id)
    root = SIZE - 1
    ref = np.arange(301 * 17, dtype="float64").reshape(301, 17) / 4
    if RANK == root:
        os.mkdir(path)
        np.save(os.path.join(path, "ok.npy"), ref)
        np.save(os.path.join(path, "fortran.npy"), np.asfortranarray(ref))
        np.save(os.path.join(path, "complex.npy"), ref.astype("complex64"))
    a = cl.replicate_npy(os.path.join(path, "ok.npy") if RANK == root else None, root=root)
    assert np.array_equal(a.local, ref)
    a.close()
    raises(TypeError, cl.replicate_npy, os.path.join(path, "fortran.npy") if RANK == root else None, root=root)
    raises(TypeError, cl.replicate_npy, os.path.join(path, "complex.npy") if RANK == root else None, root=root)
    raises(FileNotFoundError, cl.replicate_npy, os.path.join(path, "missing.npy"), root=root)
    cl.fence()
    if RANK == root:
        for name in ("ok.npy", "fortran.npy", "complex.npy"):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def check_replicate_bits(cl):
    rng = np.random.default_rng(9)
    for t, nbits in enumerate([0, 1, 63, 64, 65, 100003]):
        ref = rng.integers(0, 2, size=nbits).astype(bool)
        root = t % SIZE
        b = cl.replicate_bits(ref if RANK == root else None, root=root)
        assert len(b) == nbits and len(b.local) == nbits
        got = np.unpackbits(b.words.view(np.uint8), bitorder="little")[:nbits].astype(bool)
        assert np.array_equal(got, ref)
        assert b.local.count() == int(ref.sum())
        if nbits:
            idx = np.arange(nbits)[::7]
            assert np.array_equal(b.test(idx), ref[idx].astype(np.uint8))
        b.close()
    # From words with nbits: the bits past nbits are cleared.
    words = np.full(3, 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    b = cl.replicate_bits(words if RANK == 0 else None, nbits=130)
    assert b.local.count() == 130 and int(b.words[2]) == 3
    b.close()


def run_ops(cl, p, ref, seed, adds=3000):
    """Scatters from every rank (its own indices), then adds from every rank
    (duplicates included), each checked against the reference."""
    flat = ref.reshape(-1)
    size = flat.size
    covered = sum((r1 - r0) * (c1 - c0) for (r0, r1), (c0, c1) in (p.part(k) for k in range(cl.nodes)))
    assert covered == size
    for r in range(SIZE):
        rng = np.random.default_rng(seed + r)
        idx = np.arange(r, size, SIZE)
        idx = idx[rng.random(len(idx)) < 0.4]
        rng.shuffle(idx)
        vals = (rng.integers(0, 1000, size=len(idx)) - 100).astype(p.dtype)
        flat[idx] = vals
        if r == RANK:
            p.scatter(idx, vals)
    cl.fence()
    check_all(cl, p, ref)
    cl.fence()
    if p.dtype != np.bool_ and size:
        for r in range(SIZE):
            rng = np.random.default_rng(seed * 7 + r)
            idx = rng.integers(0, size, size=adds)
            d = (rng.integers(0, 50, size=adds) - 10).astype(p.dtype)
            np.add.at(flat, idx, d)
            if r == RANK:
                p.add(idx, d, fetch=bool(RANK % 2))
        cl.fence()
        check_all(cl, p, ref)
        cl.fence()


def check_all(cl, p, ref):
    flat = ref.reshape(-1)
    perm = np.random.default_rng(RANK).permutation(flat.size)
    assert np.array_equal(p.gather(perm), flat[perm])
    (r0, r1), (c0, c1) = p.part()
    view = ref.reshape(p.rows, -1)[r0:r1, c0:c1] if p.rows else ref
    assert np.array_equal(p.local.reshape(view.shape), view)


def check_partition(cl):
    cases = [("int64", (10007,), "rows", 0), ("float64", (37, 53), "rows", 0), ("int32", (5, 7, 11), "rows", 0),
             ("uint8", (3, 1001), "rows", 0), ("bool", (999,), "rows", 0), ("int8", (0, 5), "rows", 0),
             ("int64", (45, 61), "blocks", 0), ("float32", (45, 61), "blocks", cl.nodes)]
    for t, (dt, shape, layout, prows) in enumerate(cases):
        p = cl.partition(shape, dt, layout=layout, prows=prows)
        assert p.local.dtype == np.dtype(dt) and p.local.flags.writeable
        (r0, r1), _ = p.part()
        if layout == "rows":
            assert (r0, r1) == (shape[0] * cl.node // cl.nodes, shape[0] * (cl.node + 1) // cl.nodes)
            assert p.local.shape == (r1 - r0,) + shape[1:]
        run_ops(cl, p, np.zeros(shape, dtype=dt), 100 + t)
        p.close()
    raises(ValueError, cl.partition, (4, 4, 4), "int64", layout="blocks")
    raises(skc.ClusterMismatch, cl.partition, (10, 11 if RANK == 0 else 10), "int64")
    raises(skc.ClusterMismatch, cl.partition_bits, 100 + (RANK == SIZE - 1))


def check_fetch_add(cl):
    """Old values from every rank's fetch-add on a few counters are exactly
    0, 1, ..., total-1 for each counter."""
    p = cl.partition(64, "int64")
    m = 3000
    idx = (np.random.default_rng(RANK).integers(0, 7, size=m) * 9).astype(np.int64)
    olds = np.concatenate([p.add(idx[a:b], 1, fetch=True) for a, b in ((0, 1), (1, 100), (100, 1000), (1000, m))])
    cl.fence()
    all_idx = np.concatenate(COMM.allgather(idx))
    all_old = np.concatenate(COMM.allgather(olds))
    for k in range(7):
        sel = all_old[all_idx == k * 9]
        assert np.array_equal(np.sort(sel), np.arange(len(sel))), k
        assert int(p.gather([k * 9])[0]) == len(sel)
    p.close()
    # Floats, exactly.
    p = cl.partition(64, "float64")
    p.add(np.arange(m) % 3 * 21, 0.5)
    cl.fence()
    counts = np.bincount(np.arange(m) % 3, minlength=3)
    assert np.array_equal(p.gather([0, 21, 42]), counts * 0.5 * SIZE)
    p.close()


def check_bits(cl):
    for t, nbits in enumerate([1, 64, 200, 100003]):
        b = cl.partition_bits(nbits)
        nxt = 0
        for k in range(cl.nodes):
            lo, hi = b.part(k)
            assert lo == nxt and lo % 64 == 0
            nxt = hi
        assert nxt == nbits
        lo, hi = b.part()
        assert len(b.local) == hi - lo
        m = min(nbits, 5000)
        idx = np.random.default_rng(t).integers(0, nbits, size=m)
        old = b.set(idx, fetch=True)
        cl.fence()
        won = np.zeros(nbits, dtype=np.int64)
        np.add.at(won, idx[old == 0], 1)
        won = COMM.allreduce(won)
        ref = np.zeros(nbits, dtype=bool)
        ref[idx] = True
        assert np.array_equal(won, ref.astype(np.int64))
        mine = np.arange(RANK, nbits, SIZE)
        mine = mine[ref[mine]]
        assert np.all(b.clear(mine, fetch=True) == 1)
        cl.fence()
        assert not b.test(np.arange(nbits)).any()
        cl.fence()
        b.set(np.random.default_rng(50 + RANK).integers(0, nbits, size=m))
        ref[:] = False
        for r in range(SIZE):
            ref[np.random.default_rng(50 + r).integers(0, nbits, size=m)] = True
        cl.fence()
        assert np.array_equal(b.test(np.arange(nbits)), ref.astype(np.uint8))
        words = b.local.words()
        got = np.unpackbits(words.view(np.uint8), bitorder="little")[:hi - lo].astype(bool)
        assert np.array_equal(got, ref[lo:hi])
        del words
        raises(IndexError, b.test, [nbits])
        cl.fence()
        b.close()


def check_errors_and_local(cl):
    p = cl.partition((64, 16), "int64")
    before = dict(cl.stats)
    raises(IndexError, p.add, [0, 64 * 16], [1, 1])
    raises(IndexError, p.gather, [-1])
    raises(TypeError, p.gather, [0.5])
    assert cl.stats == before
    assert p.gather([]).shape == (0,)
    # Stores through the node's view are seen by every rank after a fence.
    # (Inline serving: no rank may block in MPI outside the module while
    # others still need its node, so plain MPI calls come before or after a fence.)
    nranks = COMM.allgather(cl.node_rank)
    (r0, r1), _ = p.part()
    p.local[:, cl.node_rank] = np.arange(r0, r1) * 100 + RANK
    cl.fence()
    got = p.gather(np.arange(64 * 16)).reshape(64, 16)
    for r in range(SIZE):
        rows = [i for i in range(64) if p.owner([i * 16])[0] == cl.node_of(r)]
        assert np.array_equal(got[rows, nranks[r]], np.array(rows) * 100 + r)
    cl.fence()
    raises(RuntimeError, cl.close)  # objects still open
    p.close()


def check_inline(cl):
    c2 = skc.Cluster(COMM, ranks_per_node=RPN, serve="inline")
    assert c2.serve == "inline"
    p = c2.partition(100, "int64")
    busy = c2.leader_of(c2.nodes - 1)
    (r0, _), _ = p.part(c2.nodes - 1)
    COMM.Barrier()
    t_back = t_done = 0.0
    if RANK == busy:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.3:
            pass
        t_back = time.monotonic()
        c2.progress()
    elif c2.node_of(RANK) != c2.nodes - 1:
        p.add([r0], 1)
        t_done = time.monotonic()
    c2.fence()
    t_back = COMM.bcast(t_back, root=busy)
    if t_done:
        assert t_done >= t_back
    others = sum(c2.node_of(r) != c2.nodes - 1 for r in range(SIZE))
    assert int(p.gather([r0])[0]) == others
    p.close()
    c2.close()


def suite():
    cl = skc.Cluster(COMM, ranks_per_node=RPN)
    for check in (check_topology, check_replicate, check_replicate_pss, check_replicate_npy, check_replicate_bits,
                  check_partition, check_fetch_add, check_bits, check_errors_and_local, check_inline):
        try:
            check(cl)
        except BaseException:
            text = "rank %d: %s FAILED\n%s" % (RANK, check.__name__, traceback.format_exc())
            result(text)
            sys.stderr.write(text)
            sys.stderr.flush()
            COMM.Abort(1)
        if RANK == 0:
            print("ok %s" % check.__name__, flush=True)
    cl.close()
    result("rank %d: all passed" % RANK)


def stop():
    cl = skc.Cluster(COMM, ranks_per_node=RPN)
    p = cl.partition(4096, "int64")
    victim = cl.leader_of(cl.nodes - 1)
    if RANK == 0:
        print("victim rank %d" % victim, flush=True)
    cl.fence()
    t0 = time.monotonic()
    if RANK == victim:
        os.kill(os.getpid(), signal.SIGSTOP)
    idx = np.arange(0, 4096, 16)
    try:
        while True:
            p.gather(idx)
            p.add(idx, 1)
            cl.fence()
    except skc.ClusterTimeout as e:
        result("rank %d: failed after %.3f s: code %d (%s)" % (RANK, time.monotonic() - t0, e.code, e))
        assert isinstance(cl.failed, skc.ClusterTimeout)
        raises(skc.ClusterFailed, cl.fence)
        cl.close()  # local on a failed handle
    time.sleep(1.0)
    COMM.Abort(3)


if __name__ == "__main__":
    {"suite": suite, "stop": stop}[sys.argv[1]]()
