"""The multiprocessing drop-in pieces: Queue(maxsize), SimpleQueue, RawValue,
RawArray, the lock= forms, typecodes 'c' and 'u', Lock.close, Event repr,
SharedMemory.buf release, ShareableList (also fed a damaged layout) and
SharedMemoryManager."""
import multiprocessing as mp
import os
import pickle
import queue
import struct

import pytest

import shmkit
from shmkit.managers import SharedMemoryManager
from shmkit.shared_memory import ShareableList, SharedMemory

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def test_queue_maxsize_first_and_bounds_one_producer():
    q = shmkit.Queue(3)
    assert q.maxsize == 3 and not q.full()
    for i in range(3):
        q.put(i)
    assert q.full() and q.qsize() == 3
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.05)
    with pytest.raises(queue.Full):
        q.put_nowait(3)
    assert q.get() == 0
    q.put(3)
    assert [q.get() for _ in range(3)] == [1, 2, 3]
    with pytest.raises(TypeError):
        shmkit.Queue("name")  # the name is keyword-only now
    q2 = pickle.loads(pickle.dumps(q))
    assert q2.maxsize == 3 and q2.name == q.name


def _consume_slowly(q, n, out):
    import time
    for _ in range(n):
        time.sleep(0.01)
        out.put(q.get())


def test_queue_maxsize_across_processes():
    q = shmkit.Queue(2)
    out = shmkit.Queue()
    p = fork.Process(target=_consume_slowly, args=(q, 10, out))
    p.start()
    for i in range(10):
        q.put(i)
        assert q.qsize() <= 2
    p.join(30)
    assert p.exitcode == 0
    assert [out.get(timeout=5) for _ in range(10)] == list(range(10))


def test_simple_queue():
    q = shmkit.SimpleQueue()
    assert q.empty()
    q.put([1, "x"])
    assert not q.empty() and q.get() == [1, "x"]
    with pytest.raises(TypeError):
        shmkit.SimpleQueue(5)
    q.close()
    q.close()
    with pytest.raises(ValueError, match="is closed"):
        q.put(1)


def test_value_lock_forms():
    v = shmkit.Value("i", 5)
    assert isinstance(v, shmkit.SharedValue) and v.get_obj() is v
    assert isinstance(v.get_lock(), shmkit.RLock)
    assert shmkit.Value("i", 5, lock=None).get_lock() is not None
    lk = shmkit.Lock()
    v3 = shmkit.Value("i", 5, lock=lk)
    assert v3.get_lock() is lk
    v3.value = 7
    with lk:
        assert v3.value == 7  # held by this thread: read directly, no second acquire
    raw = shmkit.Value("i", 5, lock=False)
    assert type(raw) is shmkit.SharedRawValue
    assert not hasattr(raw, "get_lock") and not hasattr(raw, "get_obj")
    r2 = shmkit.RawValue("d", 2.5)
    assert r2.value == 2.5 and not hasattr(r2, "get_lock")
    with pytest.raises(AttributeError, match="acquire"):
        shmkit.Value("i", 5, lock="navalue")


def _set_values(values):
    values[0].value = b"y"
    values[1].value = "\u00e9"
    values[2].value = 9


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_char_values_and_external_lock_across_processes(ctx):
    lk = shmkit.Lock()
    vals = [shmkit.Value("c", b"x"), shmkit.Value("u", "a"), shmkit.Value("q", 1, lock=lk)]
    assert vals[0].value == b"x" and vals[1].value == "a"
    p = ctx.Process(target=_set_values, args=(vals,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert [v.value for v in vals] == [b"y", "\u00e9", 9]
    with pytest.raises(TypeError):
        vals[0].value = b"xy"
    with pytest.raises(TypeError):
        vals[1].value = "ab"


def test_arrays_lock_forms_and_chars():
    a = shmkit.Array("i", range(10))
    assert isinstance(a, shmkit.SynchronizedArray) and a[:] == list(range(10))
    assert isinstance(a.get_obj(), shmkit.SharedArray)
    lk = shmkit.Lock()
    b = shmkit.Array("i", 4, lock=lk)
    assert b.get_lock() is lk
    b[1] = 3
    assert b[:] == [0, 3, 0, 0]
    raw = shmkit.Array("i", 4, lock=False)
    assert isinstance(raw, shmkit.SharedRawArray)
    assert not hasattr(raw, "get_lock") and not hasattr(raw, "get_obj")
    r2 = shmkit.RawArray("d", [1.5, 2.5])
    assert r2[:] == [1.5, 2.5] and not hasattr(r2, "get_lock")
    with pytest.raises(AttributeError):
        shmkit.Array("i", 3, lock="notalock")
    with pytest.raises(TypeError):
        shmkit.Array("i", 3, False)  # lock is keyword-only
    c = shmkit.Array("c", b"hello\0\0\0")
    assert c.value == b"hello" and c.raw == b"hello\0\0\0" and c[1] == b"e" and c[0:2] == b"he"
    c.value = b"hi"
    assert c.value == b"hi" and c.raw[:3] == b"hi\0"
    c.raw = b"abcdefgh"
    assert c.value == b"abcdefgh"
    with pytest.raises(ValueError):
        c.value = b"123456789"
    u = shmkit.Array("u", 5)
    u.value = "h\u00e9"
    assert u.value == "h\u00e9" and u[1] == "\u00e9" and u[:2] == "h\u00e9"


def test_synchronized_array_unlink_and_reopen_by_name(names):
    n = names("arr")
    a = shmkit.Array("q", [1, 2, 3], name=n)
    again = shmkit.SynchronizedArray.open(n)
    assert isinstance(again, shmkit.SynchronizedArray) and again[:] == [1, 2, 3]
    assert isinstance(again.get_lock(), shmkit.RLock)
    raw = shmkit.RawArray("q", 2)
    with pytest.raises(TypeError):
        shmkit.SynchronizedArray.open(raw.name)  # carries no lock
    assert shmkit.SharedRawArray.open(raw.name)[:] == [0, 0]
    again.close()
    a.unlink()
    assert not os.path.exists("/dev/shm/" + n)
    assert a[:] == [1, 2, 3]  # still mapped here
    a.close()


def test_lock_close_and_event_repr():
    lk = shmkit.Lock()
    lk.acquire()
    with pytest.raises(RuntimeError):
        lk.close()
    lk.release()
    lk.close()
    lk.close()
    with pytest.raises(ValueError):
        lk.acquire()
    e = shmkit.Event()
    assert repr(e).startswith("<Event at ") and repr(e).endswith(" unset>")
    e.set()
    assert repr(e).endswith(" set>")


def test_shared_memory_close_releases_buf_like_cpython():
    s = SharedMemory(create=True, size=64)
    b = s.buf
    b[0] = 1
    s.close()
    with pytest.raises(ValueError):
        b[0]  # released, as CPython releases it
    s.unlink()


def test_shareable_list_basics_and_processes():
    sl = ShareableList(["howdy", b"HoWdY", -273.154, 100, None, True, 42])
    assert sl.format == "8s8sdqxxxxxx?xxxxxxxx?q" and len(sl) == 7
    assert list(sl) == ["howdy", b"HoWdY", -273.154, 100, None, True, 42]
    sl[4] = "some"
    assert sl[4] == "some" and sl[-2] is True
    with pytest.raises(ValueError, match="exceeds available storage"):
        sl[4] = "far too many"
    with pytest.raises(IndexError):
        sl[7]
    with pytest.raises(TypeError):
        sl[0] = [1]
    other = ShareableList(name=sl.shm.name)
    other[-1] = 880
    assert sl[-1] == 880 and sl.count(880) == 1 and sl.index(100) == 3
    again = pickle.loads(pickle.dumps(sl))
    assert list(again) == list(sl)
    other.shm.close()
    again.shm.close()
    sl.shm.close()
    sl.shm.unlink()
    with pytest.raises(FileNotFoundError):
        pickle.loads(pickle.dumps(again))


@pytest.mark.parametrize("damage", ["magic", "count", "offset", "kind", "length"])
def test_shareable_list_damaged_layout_raises(damage):
    sl = ShareableList([1, "abc", 2.5])
    buf = sl.shm.buf
    if damage == "magic":
        buf[0:4] = b"XXXX"
    elif damage == "count":
        struct.pack_into("<Q", buf, 8, 1 << 60)
    elif damage == "offset":
        struct.pack_into("<Q", buf, 24 + 24, 1 << 40)
    elif damage == "kind":
        buf[24 + 24 + 16] = 77
    else:
        struct.pack_into("<I", buf, 24 + 24 + 12, 1000)
    del buf
    with pytest.raises(ValueError):
        ShareableList(name=sl.shm.name)[1] if damage in ("magic", "count") else sl[1]
    sl.shm.close()
    sl.shm.unlink()


def test_shared_memory_manager():
    smm = SharedMemoryManager()
    with pytest.raises(ValueError):
        smm.SharedMemory(size=9)
    smm.start()
    sl = smm.ShareableList(range(5))
    shm = smm.SharedMemory(size=32)
    names = [sl.shm.name, shm.name]
    assert len(ShareableList(name=names[0])) == 5
    smm.shutdown()
    for n in names:
        with pytest.raises(FileNotFoundError):
            SharedMemory(n)
    sl.shm.close()
    shm.close()
    with SharedMemoryManager() as m2:
        s2 = m2.ShareableList("howdy")
        held = s2.shm.name
        s2.shm.close()
    with pytest.raises(FileNotFoundError):
        ShareableList(name=held)


def _produce(q, n):
    for i in range(n):
        q.put(i)


def test_queue_maxsize_is_exact_with_racing_producers():
    q = shmkit.Queue(2)
    procs = [fork.Process(target=_produce, args=(q, 50)) for _ in range(4)]
    for p in procs:
        p.start()
    seen, peak = 0, 0
    while seen < 200:
        peak = max(peak, q.qsize())
        q.get(timeout=30)
        seen += 1
    for p in procs:
        p.join(30)
    assert peak <= 2 and q.stats()["max_messages"] == 2


def _work(q, done):
    while True:
        item = q.get(timeout=30)
        if item is None:
            q.task_done()
            return
        done.add(1)
        q.task_done()


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_joinable_queue(ctx):
    q = shmkit.JoinableQueue()
    done = shmkit.Value("q", 0)
    procs = [ctx.Process(target=_work, args=(q, done)) for _ in range(2)]
    for p in procs:
        p.start()
    for i in range(100):
        q.put(i)
    for _ in procs:
        q.put(None)
    assert q.join(timeout=60) is True
    assert done.value == 100 and q.stats()["unfinished"] == 0
    for p in procs:
        p.join(30)
    with pytest.raises(ValueError):
        q.task_done()  # more than were put
    q.put(1)
    assert q.join(timeout=0.05) is False  # one unfinished
    q.get()
    q.task_done()
    assert q.join(timeout=0) is True
