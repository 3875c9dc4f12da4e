"""shmkit.share / shmkit.attach (issue 18): a whole object graph in one call,
arrays zero-copy and read-only in every process, published only when
complete; and the lifetimes around handing objects to other processes."""
import concurrent.futures
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from bitarray import bitarray

import shmkit
from conftest import run_python

METHODS = ["fork", "spawn", "forkserver"]


def graph():
    """Something like the seed's three lists: bit arrays and integer arrays,
    plus the odds and ends a program holds."""
    rng = np.random.default_rng(18)
    l1 = [bitarray((rng.random(8000) < 0.5).tolist(), endian="little"),
          bitarray((rng.random(77) < 0.5).tolist(), endian="big"),  # not a multiple of 8
          shmkit.Bits.from_bools(rng.random(1000) < 0.5)]
    l2 = [rng.integers(0, 1 << 40, 5000, dtype=np.int64), np.arange(12, dtype=np.uint16).reshape(3, 4),
          np.arange(20, dtype=np.float32)[::3],  # not contiguous
          np.array([1.5, -2.5], dtype=">f8"),  # not native
          np.zeros((0, 3), np.int32), np.array(7, np.int8),
          np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])]
    l3 = {"name": "seed", "n": 12, "pi": 3.14159, "raw": b"\x00\x01" * 10, "none": None,
          "nested": ([1, 2], {"x": (3,)}), "objects": np.array([1, "a", None], dtype=object)}
    return l1, l2, l3


def same(a, b):
    """a (the original) equals b (what came back), arrays by value, types kept."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, shmkit.Bits):
        return isinstance(b, shmkit.Bits) and a == b
    if isinstance(a, bitarray):
        return type(b) is type(a) and a == b and a.endian() == b.endian()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b and type(a) is type(b)


def test_share_and_attach_give_the_same_structure():
    g = graph()
    h = shmkit.share(g)
    assert isinstance(h, shmkit.Shared) and h.name
    for got in (h.get(), shmkit.attach(h.name), shmkit.attach(h), pickle.loads(pickle.dumps(h))):
        assert same(g, got)
    assert h.get() is h.get()  # one structure per handle
    l1, l2, l3 = h  # the handle iterates as the structure does
    assert same(g[0], l1) and len(h) == 3 and same(g[2]["nested"], h[2]["nested"])


def test_share_lets_go_of_the_originals_at_once():
    """A program that shares its lists and drops them keeps one copy: share()
    holds no reference to the graph afterwards, not even until a gc pass
    (gc disabled here, so a cycle through the pickler would show)."""
    import gc
    import weakref
    a = np.arange(1 << 16, dtype=np.int64)
    b = bitarray(1 << 16, endian="little")
    bits = shmkit.Bits.from_bools(np.ones(100, bool))
    refs = [weakref.ref(a), weakref.ref(bits)]
    was = gc.isenabled()
    gc.disable()
    try:
        h = shmkit.share(([a], {"b": b}, (bits,)))
        del a, b, bits
        assert [r() for r in refs] == [None, None]
    finally:
        if was:
            gc.enable()
    assert int(h[0][0][-1]) == (1 << 16) - 1 and h[2][0].count() == 100
    h.close()


def _addresses(x, out):
    if isinstance(x, np.ndarray) and x.nbytes and not x.dtype.hasobject:
        out.append((x.__array_interface__["data"][0], x.nbytes))
    elif isinstance(x, (list, tuple)):
        for y in x:
            _addresses(y, out)
    elif isinstance(x, dict):
        for y in x.values():
            _addresses(y, out)
    return out


def test_arrays_are_zero_copy_read_only_and_page_aligned():
    g = graph()
    h = shmkit.share(g)
    l1, l2, l3 = h.get()
    for a in l2:
        if a.nbytes and not a.dtype.hasobject:
            assert not a.flags.writeable
            with pytest.raises(ValueError):
                a[(0,) * a.ndim] = 1
    assert l1[0].readonly and l1[2].readonly
    with pytest.raises(TypeError):
        l1[0][0] = 1  # a read-only bitarray
    with pytest.raises(shmkit.Error):
        l1[2][0] = 1  # a read-only Bits
    seg = h._seg  # the mapping the structure views
    lo, hi = seg.address, seg.address + seg.size
    for addr, n in _addresses(h.get(), []):
        assert lo <= addr and addr + n <= hi, "an array outside the segment: a copy"
        assert addr % 4096 == 0, "not page aligned"
    m = memoryview(l1[0])
    assert m.readonly and seg.address <= np.frombuffer(m, np.uint8).__array_interface__["data"][0] < hi
    # Every attach maps the same memory: nothing is copied per reader.
    assert shmkit.stat(h.name)["frozen"]
    with pytest.raises(shmkit.Error):
        shmkit._shmkit.segment_open(h.name, False)  # frozen: nobody writes it
    del m


def test_published_only_when_complete(names, monkeypatch):
    """The name appears only once everything is in (the library's
    create-fill-publish); a creator killed while filling leaves nothing."""
    from shmkit import _share
    name, name2 = names("pub"), names("pub2")
    seen = []
    real = _share._copy

    def spy(dst, off, src):
        seen.append(os.path.exists("/dev/shm/" + name))
        real(dst, off, src)

    monkeypatch.setattr(_share, "_copy", spy)
    h = shmkit.share([np.arange(1000), np.ones(5000)], name)
    assert seen == [False, False] and os.path.exists("/dev/shm/" + name)
    assert h.get()[1].sum() == 5000
    # from_numpy and the other copy-ins: the same.
    a = np.arange(100000)
    seen.clear()
    real_copyto = np.copyto

    def spy_copyto(dst, src, **kw):
        seen.append(os.path.exists("/dev/shm/" + name2))
        real_copyto(dst, src, **kw)

    monkeypatch.setattr(shmkit._np, "copyto", spy_copyto)
    s = shmkit.from_numpy(a, name2)
    assert seen == [False] and (s == a).all() and s.name == name2
    h.close()
    h.unlink()


KILLED_WHILE_FILLING = """
import os, signal, sys, time, numpy as np, shmkit
from shmkit import _share
real = _share._copy
def slow(dst, off, src):
    real(dst, off, src)
    print('filling', flush=True)
    time.sleep(60)
_share._copy = slow
shmkit.share([np.arange(1 << 20)], sys.argv[1])
"""


def test_a_creator_killed_while_filling_leaves_nothing(names):
    name = names("killed")
    before = set(os.listdir("/dev/shm"))
    p = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_FILLING, name], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "filling"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert set(os.listdir("/dev/shm")) == before  # no name, no half-filled segment, nothing for gc
    assert name not in shmkit.gc(dry_run=True)


def _sum_worker(data):
    l1, l2, l3 = data
    return (sum(b.count() for b in l1), int(sum(int(a.sum()) for a in l2 if not a.dtype.hasobject
                                                 and a.dtype.kind in "iuf")), l3["name"])


def _expect(g):
    return _sum_worker(g)


@pytest.mark.parametrize("method", METHODS)
def test_every_start_method_and_pool(method):
    g = graph()
    want = _expect(g)
    h = shmkit.share(g)
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_to_queue, args=(h, q))
    p.start()
    assert q.get(timeout=120) == want
    p.join(60)
    assert p.exitcode == 0
    with ctx.Pool(3) as pool:
        assert pool.map(_sum_worker, [h] * 6) == [want] * 6
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
        assert list(ex.map(_sum_worker, [h] * 4)) == [want] * 4


def _to_queue(h, q):
    q.put(_sum_worker(h if not isinstance(h, shmkit.Shared) else h.get()))


def _wait(ev):
    ev.wait(120)
    return "waited"


def _hand_over_names(name, t0):
    """The hand-over names of segment name (hard links: the same inode)."""
    ino = os.stat("/dev/shm/" + name).st_ino
    while time.monotonic() - t0 < 60:
        found = [e for e in os.listdir("/dev/shm") if e != name and os.stat("/dev/shm/" + e).st_ino == ino]
        if found:
            return found
        time.sleep(0.01)
    return []


def test_the_creator_may_drop_the_handle_once_it_is_handed_over():
    """The pool pickles a task's handle with a name of its own: the worker
    attaches by it even after the creator closed its handle (and its
    generated name went) before the worker got there; the worker removes
    that name once attached."""
    g = graph()
    h = shmkit.share(g)
    name = h.name
    ctx = mp.get_context("spawn")
    ev = shmkit.Event()  # (multiprocessing.Event cannot travel with a Pool task; shmkit.Event can)
    t0 = time.monotonic()
    with ctx.Pool(1) as pool:
        busy = pool.apply_async(_wait, (ev,))
        res = pool.apply_async(_sum_worker, (h,))
        tokens = _hand_over_names(name, t0)
        assert len(tokens) == 1  # pickled: the task carries its own name
        h.close()
        del h
        assert not os.path.exists("/dev/shm/" + name)  # the creator's name is gone ...
        ev.set()
        assert busy.get(60) == "waited"
        assert res.get(120) == _expect(g)  # ... and the worker still got it
        assert not os.path.exists("/dev/shm/" + tokens[0])  # the worker removed its name once attached


def _return_unnamed(n):
    a = shmkit.create(None, (n,), "int64")
    a[:] = np.arange(n)
    return a  # an unnamed array, dropped by this worker right after it is pickled


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_returning_an_unnamed_array_from_a_worker_works(method):
    with mp.get_context(method).Pool(2) as pool:
        got = pool.map(_return_unnamed, [10, 100, 1000])
    assert [int(a.sum()) for a in got] == [45, 4950, 499500]
    assert all(isinstance(a, shmkit.SharedArray) for a in got)


def _uses(a):
    return int(np.asarray(a).sum())


def test_a_vanished_name_fails_the_task_instead_of_hanging_the_pool(names):
    """On main, a worker that could not unpickle its task died, and Pool.map
    waited for ever. Now unpickling gives a placeholder and the task fails
    with FileNotFoundError: here the hand-over name of a task's array is
    removed (by hand) after the pool pickled the task, before the worker
    unpickles it."""
    a = shmkit.create(names("gone"), (10,), "int64", owned=False)
    ctx = mp.get_context("spawn")
    ev = shmkit.Event()  # (multiprocessing.Event cannot travel with a Pool task; shmkit.Event can)
    t0 = time.monotonic()
    with ctx.Pool(1) as pool:
        first = pool.apply_async(_wait, (ev,))  # the only worker is busy ...
        second = pool.apply_async(_uses, (a,))  # ... while this task waits, pickled
        tokens = _hand_over_names(a.name, t0)
        assert tokens, "the pool never pickled the task"
        os.unlink("/dev/shm/" + tokens[0])
        ev.set()
        assert first.get(60) == "waited"
        with pytest.raises(FileNotFoundError, match="removed before this process attached it"):
            second.get(60)
        assert pool.apply(_uses, (a,)) == 0  # the pool goes on
    assert time.monotonic() - t0 < 60
    a.unlink()


EXIT = """
import os, signal, sys, time, numpy as np, shmkit
h = shmkit.share([np.arange(100)], sys.argv[1] + 'share')
a = shmkit.create(sys.argv[1] + 'named', (10,), 'int64')   # owned, named
b = shmkit.Bits(100)                                        # owned, generated
print(h.name, a.name, b.name, flush=True)
sys.stdin.readline()
if sys.argv[2] == 'normal':
    sys.exit(0)
if sys.argv[2] == 'ctrl-c':
    signal.signal(signal.SIGINT, signal.default_int_handler)
    time.sleep(60)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["normal", "ctrl-c", "sigkill"])
def test_owned_segments_go_at_exit_and_ctrl_c_at_once_after_a_crash_at_gc(names, how):
    base = names("exit")
    p = subprocess.Popen([sys.executable, "-c", EXIT, base, how], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    made = p.stdout.readline().split()
    assert len(made) == 3 and all(os.path.exists("/dev/shm/" + n) for n in made)
    p.stdin.write("go\n")
    p.stdin.flush()
    if how == "ctrl-c":
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
    p.wait(60)
    left = [n for n in made if os.path.exists("/dev/shm/" + n)]
    if how == "sigkill":
        assert left == made  # nothing ran: the names wait for gc
        assert set(made) <= set(shmkit.gc())
    else:
        assert left == [], (how, left, p.stderr.read())


def _child_creates(base, q):
    a = shmkit.create(base + "child", (10,), "int64")
    q.put(a.name)


@pytest.mark.parametrize("method", METHODS)
def test_a_multiprocessing_child_removes_its_owned_segments_at_exit(names, method):
    """multiprocessing's children end with os._exit, past atexit: shmkit's
    exit hook runs in them too."""
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_child_creates, args=(names("mp"), q))
    p.start()
    name = q.get(timeout=60)
    p.join(60)
    assert p.exitcode == 0 and not os.path.exists("/dev/shm/" + name)


def test_the_handle_and_the_data_outlive_each_other():
    h = shmkit.share({"a": np.arange(1000)})
    a = h.get()["a"]
    name = h.name
    h.close()  # the generated name goes; the view stays valid
    assert not os.path.exists("/dev/shm/" + name)
    assert a.sum() == 499500
    with pytest.raises(ValueError):
        h.info()
    p = run_python("import shmkit, numpy as np\n"
                   "h = shmkit.share([np.ones(10)])\n"
                   "x = h.get()[0]; del h\n"
                   "import gc; gc.collect(); print(x.sum())")
    assert p.returncode == 0 and p.stdout.strip() == "10.0", p.stderr


def test_attach_errors(names):
    with pytest.raises(FileNotFoundError):
        shmkit.attach(names("nothere"))
    raw = shmkit._shmkit.segment_create(names("raw"), 4096)
    with pytest.raises(TypeError, match="not a shmkit share"):
        shmkit.attach(raw.name)
    a = shmkit.create(names("arr"), 10)
    with pytest.raises(TypeError):
        shmkit.attach(a.name)  # an array, not a share
    raw.unlink()


def test_damaged_share_headers_raise_cleanly(names):
    """Every header value is checked against the segment before use."""
    import struct
    from shmkit import _share
    h = shmkit.share([np.arange(10), b"x"], owned=False, name=names("dmg"))
    size = shmkit.stat(h.name)["data_size"]
    good = bytes(memoryview(shmkit._shmkit.segment_open(h.name, True))[:size])
    fields = _share._HEADER.unpack(good[:128])
    cases = {"magic": (0, b"NOTSHARE"), "version": (8, struct.pack("<I", 9)),
             "n": (16, struct.pack("<Q", 1 << 60)), "table": (24, struct.pack("<Q", 64)),
             "pickle_off": (32, struct.pack("<Q", size * 2)), "pickle_len": (40, struct.pack("<Q", size)),
             "used": (48, struct.pack("<Q", size + 4096)), "entry_off": (128, struct.pack("<Q", 4097)),
             "entry_len": (136, struct.pack("<Q", 1 << 62)), "entry_kind": (144, struct.pack("<I", 7))}
    assert fields[3] == 1  # one array out of band; b"x" is in the pickle
    for what, (off, patch) in cases.items():
        bad = bytearray(good)
        bad[off:off + len(patch)] = patch
        seg = shmkit._shmkit.segment_create(None, len(bad))
        memoryview(seg)[:] = bad
        with pytest.raises((shmkit.Error, TypeError)):
            _share._load(seg)
    h.unlink()
