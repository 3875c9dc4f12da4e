"""shmkit.Value, shmkit.Array (the multiprocessing pair) and shmkit.Bits."""
import ctypes
import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import shmkit

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def test_value_types_and_conversion():
    for code, init, dtype in [("i", 5, np.int32), ("d", 2.5, np.float64), ("?", True, np.bool_),
                              ("Q", 2**64 - 1, np.uint64), (ctypes.c_short, -3, np.int16), ("f", 0.5, np.float32),
                              (np.uint8, 255, np.uint8)]:
        v = shmkit.Value(code, init)
        assert v.value == init and v.dtype == dtype
    v = shmkit.Value("b")
    assert v.value == 0
    with pytest.raises(OverflowError):
        v.value = 128
    with pytest.raises(TypeError):
        v.value = "x"
    c = shmkit.Value("c")
    assert c.value == b"\x00"
    c.value = b"x"
    assert c.value == b"x"
    with pytest.raises(AttributeError):
        shmkit.Value("i", 0, lock="not a lock")  # as multiprocessing: no method 'acquire'
    with pytest.raises(TypeError):
        shmkit.Value("i", 0, True)  # lock is keyword-only: a second value is refused


def test_value_ops():
    v = shmkit.Value("q", 10)
    assert v.add(5) == 10 and v.value == 15
    assert v.compare_and_swap(15, 20) == (True, 15)
    assert v.compare_and_swap(15, 30) == (False, 20)
    raw = shmkit.Value("q", 1, lock=False)
    with pytest.raises(AttributeError):
        raw.get_lock()
    assert raw.add(1) == 1 and raw.value == 2
    lk = v.get_lock()
    assert isinstance(lk, shmkit.RLock)
    with lk:
        v.value += 1  # .value inside its own lock: no deadlock
        with pytest.raises(RuntimeError):
            v.add(1)
    assert v.value == 21
    w = pickle.loads(pickle.dumps(v))
    assert w.value == 21 and w.name == v.name
    assert shmkit.open(v.name).value == 21


def _incr(v, n, locked):
    for _ in range(n):
        if locked:
            with v.get_lock():
                v.value += 1
        else:
            v.add(1)


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
@pytest.mark.parametrize("locked", [True, False])
def test_value_counts_exactly_across_processes(ctx, locked):
    v = shmkit.Value("l", 0, lock=locked)
    procs = [ctx.Process(target=_incr, args=(v, 2000, locked)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert v.value == 8000


def test_array_like_multiprocessing():
    a = shmkit.Array("i", 10)
    assert len(a) == 10 and a[:] == [0] * 10
    a[3] = 7
    a[5:8] = [1, 2, 3]
    assert a[3] == 7 and a[5:8] == [1, 2, 3] and a[-1] == 0
    assert list(a)[:4] == [0, 0, 0, 7]
    with pytest.raises(ValueError):
        a[0:2] = [1]
    with pytest.raises(IndexError):
        a[10]
    b = shmkit.Array("d", [1.5, 2.5])
    assert b[:] == [1.5, 2.5]
    assert (np.asarray(b) == [1.5, 2.5]).all()
    assert isinstance(b.get_lock(), shmkit.RLock)
    with b.get_lock():
        b[0] = b[0] + 1  # nested: the lock is an RLock
    assert b[0] == 2.5
    raw = shmkit.Array("i", 3, lock=False)
    with pytest.raises(AttributeError):
        raw.get_lock()
    c = pickle.loads(pickle.dumps(b))
    assert c[:] == b[:]
    assert isinstance(b.get_obj(), shmkit.SharedArray)


def _array_child(a):
    for i in range(len(a)):
        with a.get_lock():
            a[i] = a[i] + i


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_array_across_processes(ctx):
    a = shmkit.Array("q", 100)
    procs = [ctx.Process(target=_array_child, args=(a,)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert a[:] == [3 * i for i in range(100)]


def test_bits_basics(names):
    b = shmkit.Bits(1000, names())
    assert len(b) == 1000 and b.count() == 0
    b[0] = True
    b[-1] = 1
    assert b[0] and b[999] and not b[500]
    with pytest.raises(IndexError):
        b[1000]
    b.set_range(100, 200)
    assert b.count() == 102 and b.count(100, 200) == 100 and b.count(0, 100) == 1
    b.clear_range(150, 200)
    assert b.count() == 52
    assert b.test_and_set(500) is False and b.test_and_set(500) is True
    assert b.test_and_clear(500) is True and b.test_and_clear(500) is False
    b.flip(3)
    assert b[3]
    assert b.find_next_set(1) == 3 and b.find_next_clear(100) == 150 and b.find_next_set(1000) == -1
    w = b.words()
    assert w.dtype == np.uint64 and w.shape == (16,)
    assert int(w[0]) == 0b1001
    w[1] = 1  # the same memory
    assert b[64]
    with pytest.raises(IndexError):
        b.count(10, 2000)
    with pytest.raises(IndexError):
        b.set_range(20, 10)
    del w
    r = shmkit.Bits.open(b.name, readonly=True)
    assert r.count() == b.count()
    with pytest.raises(shmkit.Error):
        r[0] = False
    assert isinstance(shmkit.open(b.name), shmkit.Bits)


def _claim(bits, out):
    mine = 0
    for i in range(len(bits)):
        if not bits.test_and_set(i):
            mine += 1
    out.put(mine)


def test_bits_test_and_set_is_atomic_across_processes():
    n = 1 << 16
    b = shmkit.Bits(n)
    out = fork.Queue()
    procs = [fork.Process(target=_claim, args=(b, out)) for _ in range(4)]
    for p in procs:
        p.start()
    total = sum(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join()
    assert total == n and b.count() == n


def test_bulk_bit_operations_release_the_gil():
    """Another thread keeps running while set_range and count work on 1 GiB:
    the longest pause between its ticks stays far below the call's length."""
    import threading
    import time
    b = shmkit.Bits(1 << 33)  # 1 GiB of bits
    ticks, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    b.set_range(5, (1 << 33) - 5)  # first touch of 1 GiB: hundreds of ms here
    n = b.count()
    t1 = time.perf_counter()
    stop.set()
    t.join()
    assert n == (1 << 33) - 10
    during = [x for x in ticks if t0 <= x <= t1]
    gaps = [y - x for x, y in zip(during, during[1:])]
    assert t1 - t0 > 0.02 and len(during) > 5, (t1 - t0, len(during))
    assert max(gaps) < (t1 - t0) / 2, (max(gaps), t1 - t0)
    b.close()
