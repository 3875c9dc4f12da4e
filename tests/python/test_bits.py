"""shmkit.Bits as a full bit-array type (issue 18): slices, iteration,
and/or/xor/not and their in-place forms, count and find over ranges,
zero-copy views as bitarray and NumPy, copies in and out with a bit order
nobody can get wrong. Checked against NumPy bool arrays, bit by bit."""
import multiprocessing as mp
import os
import threading
import time

import numpy as np
import pytest
from bitarray import bitarray

import shmkit

SEED = int(os.environ.get("SEED", "18"))
ROUNDS = int(os.environ.get("ITER", "25"))
LENGTHS = [0, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 1000, 4099]


def bools_of(b):
    return np.array([b[i] for i in range(len(b))], dtype=bool)


def test_bit_order_is_fixed_and_stated():
    """Bit i is bit i%64 of word i//64 and bit i%8 of byte i//8 (little);
    packed data must say its order, and each order is honoured."""
    b = shmkit.Bits(20)
    b[0] = b[9] = b[19] = True
    assert b.words().tolist() == [1 | 1 << 9 | 1 << 19]
    assert b.as_numpy("uint8").tolist() == [0b00000001, 0b00000010, 0b00001000]
    assert b.to_packed(bitorder="little").tolist() == [0b00000001, 0b00000010, 0b00001000]
    assert b.to_packed(bitorder="big").tolist() == [0b10000000, 0b01000000, 0b00010000]
    assert b.to_bitarray() == bitarray("10000000010000000001")
    assert b.to_bitarray("big") == bitarray("10000000010000000001")
    assert b.to_bitarray("big").tobytes() == bytes([0b10000000, 0b01000000, 0b00010000])
    with pytest.raises(TypeError, match="bitorder"):
        shmkit.Bits.from_packed(b"\x01")  # no default: numpy.packbits and bitarray disagree
    with pytest.raises(TypeError, match="bitorder"):
        b.to_packed()
    with pytest.raises(ValueError):
        shmkit.Bits.from_packed(b"\x01", bitorder="middle")
    assert list(shmkit.Bits.from_packed(b"\x01", 3, bitorder="little")) == [True, False, False]
    assert list(shmkit.Bits.from_packed(b"\x01", 3, bitorder="big")) == [False, False, False]
    assert list(shmkit.Bits.from_packed(b"\x80", 3, bitorder="big")) == [True, False, False]
    big = bitarray("1101", endian="big")
    little = bitarray("1101", endian="little")
    assert list(shmkit.Bits.from_bitarray(big)) == list(shmkit.Bits.from_bitarray(little)) == [1, 1, 0, 1]
    with pytest.raises(ValueError):
        shmkit.Bits.from_packed(b"\x01", 9, bitorder="little")  # 9 bits from 1 byte


@pytest.mark.parametrize("n", LENGTHS)
def test_conversions_round_trip(n):
    rng = np.random.default_rng(SEED + n)
    ref = rng.random(n) < 0.5
    b = shmkit.Bits.from_bools(ref)
    assert len(b) == n and b.count() == ref.sum()
    assert (b.to_bools() == ref).all() and b.to_bools().dtype == bool
    assert (bools_of(b) == ref).all()
    assert list(b) == ref.tolist()
    for order in ("little", "big"):
        packed = np.packbits(ref, bitorder=order)
        assert (b.to_packed(bitorder=order) == packed).all()
        assert shmkit.Bits.from_packed(packed, n, bitorder=order) == b
        assert shmkit.Bits.from_packed(packed.tobytes(), n, bitorder=order) == b
        ba = bitarray(ref.tolist(), endian=order)
        assert shmkit.Bits.from_bitarray(ba) == b
        out = b.to_bitarray(order)
        assert out == ba and out.endian() == order and len(out) == n
    # truth values of other types count as NumPy's bool conversion does
    assert shmkit.Bits.from_bools(ref.astype(np.uint8) * 7) == b
    assert shmkit.Bits.from_bools(ref.tolist()) == b
    assert shmkit.Bits.from_bools(np.repeat(ref, 2)[::2]) == b  # not contiguous
    assert b.any() == ref.any() and b.all() == ref.all()


@pytest.mark.parametrize("n", LENGTHS)
def test_slices_and_ranges_against_numpy(n):
    rng = np.random.default_rng(SEED * 7 + n)
    ref = rng.random(n) < 0.5
    b = shmkit.Bits.from_bools(ref)
    for _ in range(ROUNDS):
        i, j = (int(x) for x in sorted(rng.integers(0, n + 1, 2)))
        step = int(rng.choice([1, 1, 1, 2, 3, 64, -1, -7]))
        sl = slice(i, j, step) if step > 0 else slice(j, i, step)
        got = b[sl]
        assert isinstance(got, shmkit.Bits) and got.name != b.name
        assert (got.to_bools() == ref[sl]).all(), sl
        k = len(ref[sl])
        for value in (rng.random(k) < 0.5, True, False, np.True_):
            ref[sl] = value
            b[sl] = value
            assert (b.to_bools() == ref).all(), (sl, value)
        vals = rng.random(k) < 0.5
        for as_value in (shmkit.Bits.from_bools(vals), bitarray(vals.tolist(), endian="big"),
                         bitarray(vals.tolist(), endian="little"), list(vals), vals.astype(np.uint8)):
            b[sl] = ~ref[sl]
            b[sl] = as_value
            ref[sl] = vals
            assert (b.to_bools() == ref).all(), (sl, type(as_value))
        assert b.count(i, j) == ref[i:j].sum()
        for value in (True, False):
            hits = np.nonzero(ref[i:j] == value)[0]
            assert b.find(value, i, j) == (i + int(hits[0]) if len(hits) else -1)
    b[:] = b[::-1]  # a slice of itself, overlapping
    ref[:] = ref[::-1]
    assert (b.to_bools() == ref).all()
    if n > 2:
        b[1:] = b[:-1]
        ref[1:] = ref[:-1].copy()
        assert (b.to_bools() == ref).all()


def test_slice_errors():
    b = shmkit.Bits(100)
    with pytest.raises(ValueError):
        b[0:10] = [True] * 9
    with pytest.raises(ValueError):
        b[0:10] = shmkit.Bits(11)
    with pytest.raises(ValueError):
        b[0:10] = bitarray(9)
    with pytest.raises(TypeError):
        del b[0:10]
    with pytest.raises(TypeError):
        b["x"]
    with pytest.raises(IndexError):
        b.find(True, 0, 101)
    with pytest.raises(IndexError):
        b.count(50, 10)


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000, 100_003])
def test_and_or_xor_not(n):
    rng = np.random.default_rng(SEED + 3 * n)
    x, y = rng.random(n) < 0.5, rng.random(n) < 0.3
    a, b = shmkit.Bits.from_bools(x), shmkit.Bits.from_bools(y)
    assert ((a & b).to_bools() == (x & y)).all()
    assert ((a | b).to_bools() == (x | y)).all()
    assert ((a ^ b).to_bools() == (x ^ y)).all()
    assert ((~a).to_bools() == ~x).all()
    assert (~a).count() == n - x.sum()  # bits past the length stay zero
    c = a.copy()
    c &= b
    assert (c.to_bools() == (x & y)).all()
    c = a.copy()
    c |= b
    assert (c.to_bools() == (x | y)).all()
    c = a.copy()
    c ^= b
    assert (c.to_bools() == (x ^ y)).all()
    name = c.name
    c.invert()
    assert (c.to_bools() == ~(x ^ y)).all() and c.name == name  # in place
    assert a == shmkit.Bits.from_bools(x) and not (a != shmkit.Bits.from_bools(x))
    if n:
        assert a != ~a
    with pytest.raises(ValueError):
        a & shmkit.Bits(n + 1)
    with pytest.raises(TypeError):
        a & 1
    with pytest.raises(TypeError):
        hash(a)


def test_readonly_refuses_every_write(names):
    n = names()
    b = shmkit.Bits(64, n)
    b[3] = True
    r = shmkit.Bits.open(n, readonly=True)
    for write in (lambda: r.__setitem__(0, True), lambda: r.__setitem__(slice(0, 8), True),
                  lambda: r.__setitem__(slice(0, 8), [True] * 8), lambda: r.__iand__(b),
                  lambda: r.setall(True), lambda: r.invert()):
        with pytest.raises(shmkit.Error) as ei:
            write()
        assert ei.value.args[0] == -1011  # SK_EREADONLY
    assert (r & b) == b and r[3]  # reads make new objects: fine
    assert r.count() == 1


def test_views_are_zero_copy():
    b = shmkit.Bits(128)
    u8 = b.as_numpy("uint8")
    u64 = b.as_numpy(np.uint64)
    ba = b.as_bitarray()
    assert u8.shape == (16,) and u64.shape == (2,)
    ba[5] = 1
    assert b[5] and u8[0] == 0b100000 and u64[0] == 0b100000
    u8[15] = 0x80
    assert b[127] and ba[127]
    b[64] = True
    assert u64[1] == (1 | 1 << 63) and ba[64]
    b.close()  # the views keep the mapping: they stay valid
    ba[7] = 1
    assert u8[0] == 0b10100000 and u64[0] == 0b10100000
    with pytest.raises(ValueError):
        b.count()
    del u8, u64, ba
    with pytest.raises(ValueError, match="multiple of 8"):
        shmkit.Bits(12).as_bitarray()
    with pytest.raises(TypeError):
        shmkit.Bits(64).as_numpy("float32")


def test_iteration_and_closing():
    b = shmkit.Bits.from_bools([True, False, True])
    it = iter(b)
    assert next(it) is True and next(it) is False
    assert it.__length_hint__() == 1
    b.close()
    with pytest.raises(ValueError):
        next(it)  # closed underneath: an error, never a stale read
    with pytest.raises(ValueError):
        len(b)
    with pytest.raises(ValueError):
        b & b


def _child_slices(b, out):
    b[10:20] = True
    b[100::7] = False
    out.put((b[5:25].count(), len(b), b.name))


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_slices_across_processes(method):
    b = shmkit.Bits.from_bools(np.ones(1000, bool))
    b[10:20] = False
    ctx = mp.get_context(method)
    out = ctx.Queue()
    p = ctx.Process(target=_child_slices, args=(b, out))
    p.start()
    count, n, name = out.get(timeout=120)
    p.join(60)
    assert p.exitcode == 0 and name == b.name and n == 1000
    assert count == 20 and b.count(10, 20) == 10
    assert not any(b[100::7]) and b.count() == 1000 - len(range(100, 1000, 7))


def test_bulk_operations_release_the_gil():
    """A thread keeps ticking while & and from_bools work on big inputs."""
    n = 1 << 31
    a, c = shmkit.Bits(n), shmkit.Bits(n)
    a.set_range(0, n)
    bools = np.ones(1 << 27, bool)
    ticks, stop = [], threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    t = threading.Thread(target=ticker)
    t.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    r = a & c
    a ^= c
    f = shmkit.Bits.from_bools(bools)
    t1 = time.perf_counter()
    stop.set()
    t.join()
    assert r.count() == 0 and a.count() == n and f.count() == 1 << 27
    during = [x for x in ticks if t0 <= x <= t1]
    gaps = [y - x for x, y in zip(during, during[1:])]
    assert len(during) > 5 and max(gaps) < (t1 - t0) / 2, (max(gaps), t1 - t0)
