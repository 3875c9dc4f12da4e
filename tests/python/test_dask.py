"""shmkit.dask: one copy per host for every worker of a Dask cluster.

A LocalCluster of 4 worker processes serves most tests; others start their
own cluster (closing it is what they test) or a second "host": two workers
started by `dask worker` in another mount namespace with their own /dev/shm
(`unshare -m`, a tmpfs this test mounts, so it can look inside afterwards).
Every test runs under an alarm, and none may leave a copy in /dev/shm.
Run by hand with a private /dev/shm:
    /work/wt/iso env PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python/test_dask.py
"""
import contextlib
import errno
import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import shmkit
from conftest import wait_for

import distributed  # python3-distributed: scripts/deps.sh test installs it
from distributed import Client, LocalCluster

import shmkit.dask as skd

# Children find this shmkit however the suite was started (PYTHONPATH may be relative),
# and workers started by `dask worker` find this module's task functions.
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(
    [os.path.dirname(os.path.dirname(os.path.abspath(shmkit.__file__))), os.path.dirname(os.path.abspath(__file__))] +
    [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
ALARM = 180  # seconds: a test that takes longer fails (the machine is shared and slow)


@pytest.fixture(autouse=True)
def alarm():
    def expired(signum, frame):
        raise TimeoutError("test took more than %d s" % ALARM)
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(ALARM)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def copies(d="/dev/shm"):
    return sorted(n for n in os.listdir(d) if n.startswith("skdask-"))


@pytest.fixture(autouse=True)
def no_copies_left():
    assert copies() == [], "a previous test left %s" % copies()
    yield
    # Dropped handles and killed clients let go through Dask (asynchronously).
    wait_for(lambda: not copies(), timeout=30)
    left = copies()
    for n in left:
        os.unlink("/dev/shm/" + n)
    assert not left, "left in /dev/shm: %s" % left


def new_cluster(n, **kw):
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                        silence_logs=logging.ERROR, **kw)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    signal.alarm(ALARM)
    with new_cluster(4, local_directory=str(tmp_path_factory.mktemp("dask"))) as cluster, Client(cluster) as c:
        signal.alarm(0)
        c.wait_for_workers(4, timeout=120)
        yield c


def workers(c):
    return sorted(c.scheduler_info()["workers"])


def on_each(c, fn, *args):
    """fn(*args) once on every worker (a task pinned there), in worker order."""
    return c.gather([c.submit(fn, *args, workers=[w], allow_other_workers=False, pure=False) for w in workers(c)])


def pss():
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss in smaps_rollup")


def segment_pss(name):
    """PSS of this process's mappings of /dev/shm/name."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(None, 1)[0]
            if "-" in first and not first.endswith(":"):
                inside = line.rstrip().endswith("/dev/shm/" + name)
            elif inside and first == "Pss:":
                total += int(line.split()[1]) * 1024
    return total


def cached():
    return sorted(skd._attached)


def owned():
    return dict(skd._owned)


# ---- tasks (run in the workers) ---------------------------------------------------

def read_all(h):
    a = np.asarray(h)
    seg = skd._attached[h.name][0]
    return {"pid": os.getpid(), "sum": int(a.sum(dtype=np.int64)), "writeable": a.flags.writeable,
            "same": np.shares_memory(a, h.get()), "segment_readonly": seg.readonly,
            "is_handle": isinstance(h, skd.Shared)}


def block_flags(block, h):
    """1: the block is a view of this host's copy; 2: it is read-only."""
    whole = h.get()
    return np.array([np.shares_memory(block, whole) * 1 + (not block.flags.writeable) * 2]).reshape((1,) * block.ndim)


# ---- the tests ------------------------------------------------------------------------

def test_import_shmkit_does_not_import_dask():
    code = "import sys, shmkit; assert not [m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')]"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=ENV)


def test_without_distributed_a_clear_error():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "try:\n    import shmkit.dask\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV).stdout
    assert "shmkit.dask needs Dask's distributed package (Debian: python3-distributed" in out, out


def test_array_one_copy_read_by_every_worker(client):
    x = np.arange(1 << 20, dtype=np.int64)
    h = skd.share(client, x, timeout=120)
    try:
        assert copies() == [h.name]
        st = shmkit.stat(h.name)
        assert st["owned"] and st["frozen"] and st["creator_pid"] in client.run(os.getpid).values()
        assert (h.kind, h.dtype, h.shape, h.nbytes) == ("array", np.dtype("int64"), x.shape, x.nbytes)
        got = on_each(client, read_all, h)
        assert len({g["pid"] for g in got}) == 4
        for g in got:
            assert g == dict(g, sum=int(x.sum()), writeable=False, same=True, segment_readonly=True, is_handle=True)
        # Only one copy in /dev/shm, and nobody can open it for writing.
        assert copies() == [h.name]
        with pytest.raises(shmkit.Error):
            shmkit.open(h.name)
        # The client shares the host: it reads the same copy.
        assert np.array_equal(np.asarray(h), x) and h[5] == 5 and len(h) == x.shape[0]
    finally:
        h.release()
    assert copies() == []
    assert all(v == [] for v in client.run(cached).values())
    assert all(v == {} for v in client.run(owned).values())
    with pytest.raises(ValueError, match="released"):
        h.get()
    h.release()  # again: nothing


def test_pss_one_copy_per_host(client):
    """4 workers each read all of 128 MiB: the copy's pages count once in the
    sum of their PSS (not 4 times), and their whole PSS grows by one copy."""
    x = np.random.default_rng(1).integers(0, 1 << 40, size=16 << 20, dtype=np.int64)
    before = sum(client.run(pss).values())
    with skd.share(client, x, timeout=120) as h:
        got = on_each(client, read_all, h)
        assert all(g["sum"] == int(x.sum()) for g in got)
        grown = sum(client.run(pss).values()) - before
        mapped = sum(client.run(segment_pss, h.name).values())
    assert 0.98 * x.nbytes < mapped < 1.02 * x.nbytes, "the copy counts %.3fx in PSS" % (mapped / x.nbytes)
    assert 0.9 * x.nbytes < grown < 1.25 * x.nbytes, "workers' PSS grew by %.2fx the data" % (grown / x.nbytes)


def test_dask_array_map_blocks_on_views(client):
    """Dask's own graph over the shared copy: every chunk a read-only view of
    the host's copy (np.shares_memory inside the task), and the workers' PSS
    grows by one copy however many chunks were read."""
    x = np.random.default_rng(2).random((2048, 4096))  # 64 MiB of float64
    client.run(lambda: __import__("dask.array"))  # its import would count in the PSS below
    before = sum(client.run(pss).values())
    with skd.share(client, x, timeout=120) as h:
        d = h.to_dask_array(chunks=(256, 1024))  # 32 chunks, each non-contiguous in memory
        assert d.shape == x.shape and d.dtype == x.dtype and d.numblocks == (8, 4)
        flags = d.map_blocks(block_flags, h, chunks=((1,) * 8, (1,) * 4), dtype=np.int64).compute()
        assert flags.shape == (8, 4) and (flags == 3).all(), flags
        # Every chunk read in place: one copy in the workers' PSS, however the chunks were spread.
        sums = d.map_blocks(lambda b: np.array([[b.sum()]]), chunks=((1,) * 8, (1,) * 4), dtype=x.dtype).compute()
        assert np.allclose(sums.sum(), x.sum())
        grown = sum(client.run(pss).values()) - before
        mapped = sum(client.run(segment_pss, h.name).values())
        assert 0.98 * x.nbytes < mapped < 1.02 * x.nbytes, "the copy counts %.3fx in PSS" % (mapped / x.nbytes)
        assert grown < 1.25 * x.nbytes, "workers' PSS grew by %.2fx the data" % (grown / x.nbytes)
        # Dask's own operations over it (their results are new arrays, of course).
        assert np.isclose(float((d * 2 + 1).sum().compute()), float((x * 2 + 1).sum()))
        assert np.allclose(d.map_blocks(np.sqrt).mean(axis=0).compute(), np.sqrt(x).mean(axis=0))


def test_bits(client):
    b = shmkit.Bits(1_000_003)
    try:
        for i in range(0, len(b), 7):
            b[i] = True
        with skd.share(client, b, timeout=120) as h:
            assert (h.kind, h.nbits, len(h)) == ("bits", len(b), len(b))
            with pytest.raises(TypeError, match="bit array"):
                np.asarray(h)

            def check(h):
                bits = h.get()
                try:
                    bits[1] = True
                    wrote = True
                except (OSError, ValueError, TypeError, BufferError):
                    wrote = False
                return bits.count(), bits[7], bits[8], bits.readonly if hasattr(bits, "readonly") else None, wrote

            got = on_each(client, check, h)
            assert all(g[:3] == (b.count(), True, False) and g[4] is False for g in got), got
            assert copies() == [h.name]
    finally:
        b.close()


def test_handle_is_small_and_pickles_by_name(client):
    x = np.zeros((1000, 1000))
    with skd.share(client, x, timeout=120) as h:
        blob = pickle.dumps(h)
        assert len(blob) < 400 and h.name.encode() in blob
        h2 = pickle.loads(blob)  # in this process (same host): attaches at once
        assert isinstance(h2, skd.Shared) and h2.name in skd._attached
        assert np.shares_memory(np.asarray(h2), np.asarray(h))
        with pytest.raises(ValueError, match="only the handle share"):
            h2.release()
        assert "float64 (1000, 1000)" in repr(h) and "1 host" in repr(h)


def test_dropped_handle_goes(client):
    """The handle is dropped without release(): the copy goes, and the
    workers that had attached let go of their mapping soon after."""
    h = skd.share(client, np.ones(1000), timeout=120)
    name = h.name
    assert copies() == [name]
    on_each(client, read_all, h)
    assert all(v == [name] for v in client.run(cached).values())
    del h
    assert wait_for(lambda: not copies(), timeout=30), "the copy stayed after its handle went"
    assert wait_for(lambda: all(v == [] for v in client.run(cached).values()), timeout=30), \
        "workers kept their mapping of a copy that has gone"


def test_copy_for_a_lease_already_gone(client):
    """A creation task whose lease was released before it ran (the client gave
    up meanwhile) removes what it made instead of leaving it to nobody."""
    spec = {"kind": "array", "name": "skdask-test-%d" % os.getpid(), "dtype": "int64", "shape": (4,), "nbytes": 32}
    f = client.submit(skd._create_copy, "no-such-lease", spec, "data", np.arange(4), pure=False)
    with pytest.raises(RuntimeError, match="lease .* was released"):
        f.result()
    assert copies() == [] and all(v == {} for v in client.run(owned).values())


def test_killed_client_copies_go(client):
    """The client process is SIGKILLed: the scheduler releases its keys, and
    the creators remove their copies."""
    code = ("import sys, numpy as np, shmkit.dask as skd\n"
            "from distributed import Client\n"
            "c = Client(sys.argv[1], timeout=60)\n"
            "h = skd.share(c, np.ones(4096), timeout=120)\n"
            "print(h.name, flush=True)\n"
            "import time; time.sleep(600)\n")
    p = subprocess.Popen([sys.executable, "-c", code, client.scheduler.address], stdout=subprocess.PIPE, text=True,
                         env=ENV)
    try:
        name = p.stdout.readline().strip()
        assert name.startswith("skdask-") and copies() == [name]
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
    assert wait_for(lambda: not copies(), timeout=60), "copies stayed after the client was killed"


def test_timeout_leaves_nothing(client):
    """Every worker busy: share() times out, and the copy, made or not, goes."""
    busy = [client.submit(time.sleep, 4, workers=[w], allow_other_workers=False, pure=False) for w in workers(client)]
    with pytest.raises(TimeoutError):
        skd.share(client, np.ones(1000), timeout=0.5)
    distributed.wait(busy, timeout=120)
    time.sleep(1)
    assert wait_for(lambda: not copies(), timeout=30)
    assert all(v == {} for v in client.run(owned).values())


def test_bad_input(client):
    with pytest.raises(TypeError, match="complex128"):
        skd.share(client, np.zeros(3, dtype=complex))
    for graph in ({"a": 1}, [1, 2, 3]):  # lists and dicts are object graphs now, not arrays
        with skd.share(client, graph, timeout=120) as h:
            assert h.kind == "graph" and client.submit(lambda h: h.get(), h).result() == graph
    with pytest.raises(TypeError):
        skd.share(client, np.zeros(3, dtype=">i8"))
    with skd.share(client, np.zeros(3, dtype=np.float32), timeout=120) as h:
        with pytest.raises(AttributeError):
            h.nbits
    # Non-contiguous, empty and 0-d arrays, and a SharedArray, are copied in as arrays.
    sa = shmkit.create(None, (5, 2), "uint16")
    np.asarray(sa)[:] = 7
    for x in (sa, np.arange(100).reshape(10, 10)[:, ::3], np.zeros((0, 4), dtype=np.uint8),
              np.array(7, dtype=np.int16)):
        with skd.share(client, x, timeout=120) as h:
            ref = np.asarray(x)
            got = client.submit(lambda h: (np.asarray(h).copy(), np.asarray(h).dtype.name), h, pure=False).result()
            assert got[1] == ref.dtype.name and np.array_equal(got[0], ref)
            del ref
    sa.close()


def test_mismatched_or_missing_segment(names):
    """A segment of the handle's name that is not what was shared is refused;
    a host without the copy says so."""
    n = names("dask")
    seg = shmkit.create(n, (10,), "int32")
    try:
        h = skd.Shared({"kind": "array", "name": n, "dtype": "int64", "shape": (10,), "nbytes": 80})
        with pytest.raises(TypeError, match="not the shared"):
            h.get()
        h = skd.Shared({"kind": "bits", "name": n, "nbits": 10, "nbytes": 8})
        with pytest.raises(TypeError, match="not the shared bit array"):
            h.get()
    finally:
        seg.close()
        seg.unlink()
    h = skd.Shared({"kind": "array", "name": n, "dtype": "int32", "shape": (10,), "nbytes": 40})
    with pytest.raises(FileNotFoundError, match="no copy of .* on this host"):
        h.get()


def test_cluster_close_removes_copies_and_memory_warning(tmp_path):
    cluster = new_cluster(2, memory_limit="400MiB", local_directory=str(tmp_path))
    c = Client(cluster)
    try:
        c.wait_for_workers(2, timeout=120)
        h = skd.share(c, np.ones(1 << 16), timeout=120)
        assert copies() == [h.name]
        with pytest.warns(skd.MemoryLimitWarning, match="memory limit is 400 MiB"):
            big = skd.share(c, np.zeros(256 << 17), timeout=120)  # 256 MiB, not read by anyone
        assert len(copies()) == 2
        # The cluster closes under the client, which still holds both handles:
        # the creators remove their copies as they close.
        cluster.close()
        assert copies() == []
        del h, big
    finally:
        c.close()
        cluster.close()


def test_everything_killed_then_sweep(tmp_path):
    """Client, scheduler, nannies and workers all SIGKILLed: the copy stays
    (its creator is dead) until shmkit's sweep or gc removes it."""
    code = ("import logging, sys, numpy as np, shmkit.dask as skd\n"
            "from distributed import Client, LocalCluster\n"
            "cl = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=':0',\n"
            "                  silence_logs=logging.ERROR, local_directory='.')\n"
            "c = Client(cl)\n"
            "h = skd.share(c, np.ones(4096), timeout=120)\n"
            "print(h.name, flush=True)\n"
            "import time; time.sleep(600)\n")
    before = set(os.listdir("/dev/shm"))
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True,
                         cwd=str(tmp_path), env=ENV)
    try:
        name = p.stdout.readline().strip()
        assert name.startswith("skdask-") and copies() == [name]
        creator = shmkit.stat(name)["creator_pid"]
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        p.stdout.close()
    assert wait_for(lambda: not os.path.exists("/proc/%d" % creator), timeout=30)
    st = shmkit.stat(name)
    assert st["owned"] and not st["creator_alive"]
    assert name in shmkit.gc()
    assert copies() == []
    # The killed cluster's multiprocessing semaphores (sem.*) have nobody left to remove them.
    left = set(os.listdir("/dev/shm")) - before
    for n in left:
        if n.startswith("sem."):
            os.unlink("/dev/shm/" + n)
    assert not [n for n in left if not n.startswith("sem.")]


@contextlib.contextmanager
def second_host(client, tmp_path, size="512m"):
    """Two more workers of the cluster, started by `dask worker` in a mount
    namespace of their own whose /dev/shm is a tmpfs mounted here (so that
    what they leave can be seen). Gives that directory and their addresses."""
    if os.geteuid() != 0:
        pytest.skip("needs root for unshare -m and a tmpfs mount (the test suite runs under /work/wt/iso)")
    d = tmp_path / "hostb"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(d)], check=True, timeout=60)
    cmd = ["unshare", "-m", "sh", "-c", 'mount --make-rprivate / && mount --bind "$0" /dev/shm && exec "$@"', str(d),
           sys.executable, "-m", "distributed.cli.dask_worker", client.scheduler.address, "--nworkers", "2",
           "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path / "work")]
    before = set(workers(client))
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)
    try:
        client.wait_for_workers(len(before) + 2, timeout=120)
        yield str(d), sorted(set(workers(client)) - before)
    finally:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        wait_for(lambda: len(workers(client)) == len(before), timeout=60)
        left = copies(str(d))
        subprocess.run(["umount", str(d)], check=True, timeout=60)
        assert left == [], "the second host's workers left %s" % left


def test_two_hosts(client, tmp_path):
    """Two groups of workers with different /dev/shm on one machine: Dask
    gives them the same host address, shmkit.dask tells them apart and makes
    one copy in each /dev/shm; a host that joins later gets one from update()."""
    x = np.arange(3 << 18, dtype=np.float64).reshape(768, 1024)
    early = skd.share(client, x, timeout=120)
    with second_host(client, tmp_path) as (hostb, wb):
        info = client.scheduler_info()["workers"]
        assert len({info[w]["host"] for w in info}) == 1  # Dask's own host address cannot tell them apart
        groups = skd.hosts(client)
        assert len(groups) == 2 and sorted(wb) in groups.values()

        # Shared before the second host came: its tasks are told, update() copies it there.
        assert copies(hostb) == [] and len(early.hosts) == 1
        with pytest.raises(FileNotFoundError, match=r"no copy of .*update\(\)"):
            client.submit(read_all, early, workers=wb[:1], allow_other_workers=False, pure=False).result()
        assert early.update(timeout=120) == 2 and copies(hostb) == [early.name] and len(early.hosts) == 2
        assert early.update(timeout=120) == 2  # nothing to do
        # The second host's copy removed by hand while its creator lives: update() has that
        # same worker make it again, and the old lease, released, leaves the new copy alone.
        os.unlink(os.path.join(hostb, early.name))
        client.run(skd._forget, early.name, workers=wb)
        assert early.update(timeout=120) == 2 and copies(hostb) == [early.name]
        time.sleep(2)  # the old lease's release has reached the creator
        assert copies(hostb) == [early.name]
        got = on_each(client, read_all, early)
        assert len(got) == 6 and all(g["same"] and g["sum"] == int(x.sum()) for g in got)
        early.release()
        assert copies() == [] and copies(hostb) == []

        with skd.share(client, x, timeout=120) as h:
            assert copies() == [h.name] and copies(hostb) == [h.name]
            assert len(h.hosts) == 2
            got = on_each(client, read_all, h)
            assert len(got) == 6 and all(g["same"] and not g["writeable"] and g["sum"] == int(x.sum()) for g in got)
            d = h.to_dask_array(chunks=(128, 256))
            flags = d.map_blocks(block_flags, h, chunks=((1,) * 6, (1,) * 4), dtype=np.int64).compute()
            assert (flags == 3).all()
            assert float(d.sum().compute()) == float(x.sum())
            # One creator on each host.
            creators = client.run(owned)
            assert sum(1 for w in wb if creators[w]) == 1 and sum(1 for w in creators if creators[w]) == 2
        assert copies() == [] and copies(hostb) == []
        # Once more, then the second host's workers close (second_host checks its /dev/shm).
        h = skd.share(client, x, timeout=120)
        assert copies(hostb) == [h.name]
    h.release()


def test_host_without_room(client, tmp_path):
    """A host whose /dev/shm cannot hold the data: share() raises its
    creator's ENOSPC and removes the copies made elsewhere."""
    x = np.ones(8 << 20)  # 64 MiB
    with second_host(client, tmp_path, size="32m") as (hostb, wb):
        with pytest.raises(OSError) as e:
            skd.share(client, x, timeout=120)
        assert e.value.errno == errno.ENOSPC, e.value
        assert copies() == [] and copies(hostb) == []
        assert all(v == {} for v in client.run(owned).values())


def creator_pid(c, h):
    (addr,) = h.hosts.values()
    return addr, c.run(os.getpid)[addr]


def restarted(c, addr):
    """Waits for the nanny to replace the worker at addr."""
    assert wait_for(lambda: addr not in workers(c) and len(workers(c)) == 4, timeout=120)
    c.wait_for_workers(4, timeout=120)


def test_update_after_creator_killed(client):
    """The worker that made the host's copy is SIGKILLed: the complete copy it
    left (owned by a dead process) still serves, and update() has a live
    worker adopt it before a sweep would remove it."""
    x = np.arange(1 << 16, dtype=np.int32)
    with skd.share(client, x, timeout=120) as h:
        addr, pid = creator_pid(client, h)
        os.kill(pid, signal.SIGKILL)
        restarted(client, addr)
        st = shmkit.stat(h.name)
        assert st["frozen"] and not st["creator_alive"]
        assert all(g["sum"] == int(x.sum()) for g in on_each(client, read_all, h))
        assert h.update(timeout=120) == 1
        st = shmkit.stat(h.name)
        assert st["frozen"] and st["creator_alive"] and st["creator_pid"] in client.run(os.getpid).values()
        assert addr not in h.hosts.values()
        assert shmkit.gc() == []  # nothing of ours for the sweep any more
        assert all(g["sum"] == int(x.sum()) for g in on_each(client, read_all, h))


def test_update_after_copy_swept(client):
    """The creator was killed and a sweep removed its copy: tasks are told,
    and update() with no copy left anywhere says so."""
    x = np.arange(1 << 16, dtype=np.int32)
    h = skd.share(client, x, timeout=120)
    addr, pid = creator_pid(client, h)
    os.kill(pid, signal.SIGKILL)
    restarted(client, addr)
    assert h.name in shmkit.gc()
    client.run(skd._forget, h.name)  # workers that had attached keep their mapping until then
    with pytest.raises(FileNotFoundError, match=r"update\(\)"):
        client.submit(read_all, h, pure=False).result()
    with pytest.raises(FileNotFoundError, match="no host has a copy"):
        h.update(timeout=120)
    h.release()


# ---- object graphs -------------------------------------------------------------------

def read_graph(h):
    """What a task sees of a shared graph: the structure, its arrays read-only
    views of this host's segment."""
    g = h.get()
    a, ba, bits, s = g["a"], g["l"][0], g["l"][1], g["l"][2]
    return {"pid": os.getpid(), "asum": int(a.sum(dtype=np.int64)), "a_writeable": a.flags.writeable,
            "a_in_segment": segment_pss(h.name) > 0 and type(a).__name__ == "SharedArray",
            "ba": ba.tobytes(), "ba_readonly": ba.readonly, "bits": np.array(bits.words()).tobytes(),
            "bits_readonly": bits.readonly, "nbits": len(bits), "s": s, "keys": sorted(g), "same": h.get() is g}


def test_graph_one_copy_read_by_every_worker(client):
    bitarray = pytest.importorskip("bitarray").bitarray
    a = np.arange(4 << 20, dtype=np.int64)  # 32 MiB
    ba = bitarray(1 << 16)
    ba.setall(0)
    ba[::3] = 1
    bits = shmkit.Bits(1000)
    bits[7] = 1
    bits[999] = 1
    g = {"a": a, "l": [ba, bits, "a string"]}
    before = sum(client.run(pss).values())
    h = skd.share(client, g)
    bits.close()
    try:
        assert h.kind == "graph" and h.nbytes >= a.nbytes and "graph" in repr(h)
        outs = on_each(client, read_graph, h)
        assert len({o["pid"] for o in outs}) == 4
        for o in outs:
            assert o["keys"] == ["a", "l"] and o["asum"] == int(a.sum()) and not o["a_writeable"]
            assert o["a_in_segment"] and o["same"]
            assert o["ba"] == ba.tobytes() and o["ba_readonly"]
            assert o["nbits"] == 1000 and o["bits_readonly"]
            w = np.frombuffer(o["bits"], np.uint64)
            assert w[0] == 1 << 7 and w[15] == 1 << (999 - 960) and int(w.sum()) == (1 << 7) + (1 << 39)
            assert o["s"] == "a string"
        grown = sum(client.run(pss).values()) - before
        mapped = sum(client.run(segment_pss, h.name).values())
        assert 0.98 * a.nbytes < mapped < 1.02 * h.nbytes, "the copy counts %.3fx in PSS" % (mapped / a.nbytes)
        assert 0.9 * a.nbytes < grown < 1.25 * a.nbytes, "workers' PSS grew by %.2fx the data" % (grown / a.nbytes)
        assert os.path.exists("/dev/shm/" + h.name)
        with pytest.raises(TypeError, match="graph"):
            h.to_dask_array()
        with pytest.raises(TypeError, match="graph"):
            np.asarray(h)
    finally:
        h.release()
    assert not os.path.exists("/dev/shm/" + h.name)
    wait_for(lambda: not any(client.run(cached).values()), timeout=10)
    assert not [n for n in os.listdir("/dev/shm") if n.startswith("sk")], os.listdir("/dev/shm")


def small_graph():
    bitarray = pytest.importorskip("bitarray").bitarray
    ba = bitarray(4096)
    ba.setall(0)
    ba[::5] = 1
    g = {"a": np.arange(1 << 16, dtype=np.int64), "l": [ba, "x" * 10]}
    return g, {"asum": int(g["a"].sum()), "ones": ba.count(), "s": "x" * 10, "writeable": False}


def graph_seen(h):
    g = h.get()
    return {"asum": int(g["a"].sum()), "ones": g["l"][0].count(), "s": g["l"][1], "writeable": g["a"].flags.writeable}


def test_graph_update_after_creator_killed(client):
    """A graph's creator is SIGKILLed: the copy it left still serves, and
    update() has a live worker adopt it."""
    g, want = small_graph()
    with skd.share(client, g, timeout=120) as h:
        addr, pid = creator_pid(client, h)
        os.kill(pid, signal.SIGKILL)
        restarted(client, addr)
        assert not shmkit.stat(h.name)["creator_alive"]
        assert all(o == want for o in on_each(client, graph_seen, h))
        assert h.update(timeout=120) == 1
        st = shmkit.stat(h.name)
        assert st["frozen"] and st["creator_alive"] and st["creator_pid"] in client.run(os.getpid).values()
        assert shmkit.gc() == []
        assert all(o == want for o in on_each(client, graph_seen, h))
    assert copies() == []


def test_graph_two_hosts(client, tmp_path):
    """A graph shared before a second host joined: update() copies it there
    (arrays and bit arrays travel as copies, not as references to the first
    host's segment), and every worker of both hosts sees the same structure."""
    g, want = small_graph()
    h = skd.share(client, g, timeout=120)
    with second_host(client, tmp_path) as (hostb, wb):
        assert copies(hostb) == [] and len(h.hosts) == 1
        assert h.update(timeout=120) == 2 and copies(hostb) == [h.name]
        got = on_each(client, graph_seen, h)
        assert len(got) == 6 and all(o == want for o in got)
        h.release()
        assert copies() == [] and copies(hostb) == []
