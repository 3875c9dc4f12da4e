"""shmkit.create / shmkit.open: N-d arrays as zero-copy NumPy views."""
import errno
import multiprocessing as mp
import os
import pickle
import subprocess

import numpy as np
import pytest

import shmkit
from conftest import BIN, run_python


def test_create_open_attributes(names):
    n = names()
    with shmkit.create(n, (3, 5), np.int32) as a:
        assert a.name == n
        assert a.shape == (3, 5) and a.ndim == 2 and a.size == 15
        assert a.dtype == np.int32
        assert a.nbytes == 60 and len(a) == 3
        assert not a.readonly and not a.locked and not a.closed
        m = np.asarray(a)
        assert m.shape == (3, 5) and m.dtype == np.int32 and m.flags.writeable
        assert m.strides == (20, 4) and not m.any()
        m[2, 4] = 99
        b = shmkit.open(n)
        assert isinstance(b, shmkit.SharedArray)
        mb = np.asarray(b)
        assert mb[2, 4] == 99
        mb[0, 0] = -1
        assert m[0, 0] == -1  # the same memory, no copy
        assert np.shares_memory(m, np.asarray(a))
        del mb
        b.close()
        del m
    assert a.closed


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                   "float32", "float64", "i8", "f4", "d", "B", np.dtype("<u2"), float, int, bool])
def test_every_dtype(names, dtype):
    n = names()
    a = shmkit.create(n, (4, 2), dtype)
    m = np.asarray(a)
    assert m.dtype == np.dtype(shmkit._dtype_name(dtype))
    assert m.dtype == a.dtype
    m[:] = 1
    assert np.asarray(shmkit.open(n)).sum() == 8
    del m
    a.close()
    a.unlink()


def test_zero_d_and_empty(names):
    a = shmkit.create(names(), (), "float64")
    np.asarray(a)[()] = 2.5
    assert np.asarray(shmkit.open(a.name))[()] == 2.5
    e = shmkit.create(names(), (0, 7), "int64")
    assert np.asarray(e).shape == (0, 7) and e.nbytes == 0


def test_generated_name_goes_with_the_object():
    a = shmkit.create(None, 10, "int8")
    name = a.name
    assert os.path.exists("/dev/shm/" + name)
    assert a.info()["owned"]
    del a
    assert not os.path.exists("/dev/shm/" + name)


def test_shared_array_is_a_numpy_array(names):
    """What create/open hand out indexes, slices, iterates and takes part in
    ufuncs as an ndarray does (issue 18); views stay in the segment, new
    results are plain private arrays."""
    a = shmkit.create(names(), (4, 5), "int64")
    assert isinstance(a, np.ndarray) and isinstance(a, shmkit.SharedArray)
    a[:] = np.arange(20).reshape(4, 5)
    assert a[1, 2] == 7 and list(a[0]) == [0, 1, 2, 3, 4]
    assert [list(row) for row in a][3] == [15, 16, 17, 18, 19]
    assert a.sum() == 190 and type(a.sum()) is np.int64
    assert type(a + 1) is np.ndarray and (a + 1)[0, 0] == 1
    assert type(np.sqrt(a)) is np.ndarray and type(a[a > 3]) is np.ndarray
    assert type(a.copy()) is np.ndarray and type(a.sum(axis=0)) is np.ndarray
    v = a[1:3, ::2]
    assert type(v) is shmkit.SharedArray and v.name == a.name and np.shares_memory(v, a)
    assert type(a.T) is shmkit.SharedArray and a.T.name == a.name
    a += 1  # in place: still the segment
    assert type(a) is shmkit.SharedArray and a[0, 0] == 1
    np.multiply(a, 2, out=a)
    b = shmkit.open(a.name)
    assert b[0, 0] == 2 and b[3, 4] == 40  # the same memory
    assert a.nbytes == 160 and a.size == 20 and a.ndim == 2 and a.shape == (4, 5)


def test_close_never_leaves_a_dangling_view(names):
    """close() with views alive: the views stay valid and the mapping goes
    with the last of them; the object's own methods refuse from then on."""
    a = shmkit.create(names(), (1000,), "float64")
    m = np.asarray(a)
    view = m[10:20]
    a.close()
    assert a.closed
    view[:] = 3  # the mapping is intact
    assert m[10] == 3 and a[10] == 3  # the array itself is still an array
    with pytest.raises(ValueError):
        a.info()
    a.close()  # idempotent
    a.unlink()  # as multiprocessing's close() then unlink()
    h = shmkit._shmkit.array_create(None, (10,), "int64")
    h.close()
    with pytest.raises(ValueError):
        h.shape
    with pytest.raises(BufferError):
        memoryview(h)  # a closed handle gives no new views


# Each idiom runs in a child: a segfault there shows as exit -11.
IDIOMS = {
    "ndarray_buffer_then_close": "a = shmkit.create(None, (1000,), 'int64'); a[:] = 7\n"
                                 "x = np.ndarray((1000,), np.int64, buffer=a); a.close(); del a\n"
                                 "assert x.sum() == 7000",
    "ndarray_buffer_handle": "h = shmkit._shmkit.array_create(None, (1000,), 'int64')\n"
                             "x = np.ndarray((1000,), np.int64, buffer=h); h.close(); del h\n"
                             "assert x.sum() == 0",
    "ndarray_buffer_bits": "b = shmkit.Bits(1 << 16); b[5] = 1\n"
                           "x = np.ndarray((1024,), np.uint64, buffer=b); b.close(); del b\n"
                           "assert x[0] == 32",
    "ndarray_buffer_segment": "s = shmkit._shmkit.segment_create(None, 4096)\n"
                              "x = np.ndarray((4096,), np.uint8, buffer=s); s.close(); del s\n"
                              "x[:] = 1; assert x.sum() == 4096",
    "close_then_read": "a = shmkit.create(None, (1000,), 'int64'); a.close(); a[0] = 1; assert a.sum() == 1",
    "views_outlive": "a = shmkit.create(None, (1000,), 'int64'); v = a[::3]; w = a.T; del a\n"
                     "import gc; gc.collect(); v[:] = 1; assert w.sum() == 334",
    "with_block": "with shmkit.create(None, (100,), 'int64') as a: m = np.asarray(a)\n"
                  "m[:] = 2; assert a.sum() == 200",
    "open_close_read": "a = shmkit.create(None, (100,), 'int64'); b = shmkit.open(a.name); b.close()\n"
                       "b[:] = 3; assert a.sum() == 300",
    "frozen_view_writes": "a = shmkit.create(None, (100,), 'int64'); v = np.asarray(a)\n"
                          "x = np.ndarray((100,), np.int64, buffer=a); a.freeze(); v[0] = 1; x[1] = 1\n"
                          "assert a.sum() == 2 and not a.flags.writeable",
    "bits_iter_close": "b = shmkit.Bits(100); it = iter(b); b.close()\n"
                       "try:\n    next(it)\nexcept ValueError:\n    pass",
    "memoryview_close": "a = shmkit.create(None, (100,), 'uint8'); mv = memoryview(a); a.close(); del a\n"
                        "mv[0] = 1; assert mv[0] == 1",
}


@pytest.mark.parametrize("idiom", sorted(IDIOMS))
def test_no_idiom_segfaults(idiom):
    p = run_python("import numpy as np, shmkit\n" + IDIOMS[idiom] + "\nprint('ok')")
    assert p.returncode == 0 and p.stdout.strip() == "ok", (p.returncode, p.stderr)


def test_readonly(names):
    n = names()
    a = shmkit.create(n, (8,), "uint8")
    np.asarray(a)[:] = 7
    r = shmkit.open(n, readonly=True)
    assert r.readonly
    m = np.asarray(r)
    assert not m.flags.writeable and m.sum() == 56
    with pytest.raises(ValueError):
        m[0] = 1
    # a write through the mapping faults: shown in a child
    code = ("import shmkit, ctypes, numpy as np, sys\n"
            "r = shmkit.open(sys.argv[1], readonly=True)\n"
            "addr = np.asarray(r).__array_interface__['data'][0]\n"
            "ctypes.c_uint8.from_address(addr).value = 1\n")
    p = run_python(code, n)
    assert p.returncode == -11, (p.returncode, p.stderr)


def test_errors(names, tmp_path):
    with pytest.raises(FileNotFoundError):
        shmkit.open(names("missing"))
    with pytest.raises(ValueError, match="invalid segment name"):
        shmkit.create("a/b", 4, "int8")
    with pytest.raises(ValueError):
        shmkit.create("../etc", 4, "int8")
    with pytest.raises(ValueError):
        shmkit.create("", 4, "int8")
    n = names()
    shmkit.create(n, 4, "int8", owned=False)
    with pytest.raises(FileExistsError):
        shmkit.create(n, 4, "int8")
    with pytest.raises(TypeError):
        shmkit.create(names(), 4, "complex128")
    with pytest.raises(TypeError):
        shmkit.create(names(), 4, ">i4")
    with pytest.raises(ValueError):
        shmkit.create(names(), (-1,), "int8")
    # wrong kind: bits opened as an array
    b = names()
    shmkit.Bits(100, b)
    with pytest.raises(TypeError):
        shmkit._shmkit.array_open(b)
    # a foreign file and a corrupt header
    f = names("foreign")
    with open("/dev/shm/" + f, "wb") as fh:
        fh.write(b"not a segment" * 1000)
    with pytest.raises(shmkit.Error) as ei:
        shmkit.open(f)
    assert ei.value.args[0] == -1003
    # larger than /dev/shm has free: a clear error now, nothing left behind
    free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    big = names("big")
    with pytest.raises(OSError) as ei:
        shmkit.create(big, (free * 2,), "uint8")
    assert ei.value.errno == errno.ENOSPC
    assert not os.path.exists("/dev/shm/" + big)


def _child_write(name):
    a = shmkit.open(name)
    m = np.asarray(a)
    m[:, 0] = np.arange(m.shape[0])
    m[0, 1] = os.getpid()


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_zero_copy_across_processes(names, method):
    n = names()
    a = shmkit.create(n, (100, 2), "int64")
    m = np.asarray(a)
    p = mp.get_context(method).Process(target=_child_write, args=(n,))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    assert (m[:, 0] == np.arange(100)).all()
    assert m[0, 1] == p.pid


def _child_pickled(a, q):
    m = np.asarray(a)
    q.put(int(m.sum()))
    m[:] = 5


def test_pickled_to_spawned_process(names):
    a = shmkit.create(names(), (10,), "int32")
    np.asarray(a)[:] = 2
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child_pickled, args=(a, q))
    p.start()
    assert q.get(timeout=60) == 20
    p.join(60)
    assert np.asarray(a).sum() == 50
    b = pickle.loads(pickle.dumps(a))
    assert b.name == a.name and b is not a


def test_array_made_by_the_command_read_in_python(names):
    n = names()
    subprocess.run([BIN, "create", n, "--dtype", "uint16", "--shape", "4,6"], check=True, capture_output=True)
    a = shmkit.open(n)
    assert a.shape == (4, 6) and a.dtype == np.uint16
    assert not a.info()["owned"]  # the command makes persistent segments
    np.asarray(a)[3, 5] = 65535
    out = subprocess.run([BIN, "info", n, "--json"], check=True, capture_output=True, text=True).stdout
    assert '"uint16"' in out


def test_array_made_in_python_exported_by_the_command(names, tmp_path):
    n = names()
    a = shmkit.create(n, (3, 4, 5), "float32")
    src = np.random.default_rng(1).random((3, 4, 5), dtype=np.float32)
    np.asarray(a)[...] = src
    out = tmp_path / "a.npy"
    subprocess.run([BIN, "export", n, str(out)], check=True, capture_output=True)
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (3, 4, 5)
    assert (got == src).all()
    # and back: the command imports a .npy that Python opens
    m = names()
    subprocess.run([BIN, "import", m, str(out)], check=True, capture_output=True)
    assert (np.asarray(shmkit.open(m)) == src).all()


def test_locked_array(names):
    a = shmkit.create(names(), (4,), "int64", locked=True)
    assert a.locked
    lock = a.get_lock()
    assert lock is a.get_lock()
    with lock:
        np.asarray(a)[0] += 1
        with pytest.raises(RuntimeError):
            a.close()  # closing under its own lock would strand the lock
    plain = shmkit.create(names(), (4,), "int64")
    with pytest.raises(AttributeError):
        plain.get_lock()
    del lock
    a.close()
    with pytest.raises(ValueError):
        a.get_lock()


def test_freeze(names):
    n = names()
    a = shmkit.create(n, (4,), "int8")
    a.freeze()
    assert a.readonly and not np.asarray(a).flags.writeable
    with pytest.raises(shmkit.Error):
        shmkit.open(n)
    assert shmkit.open(n, readonly=True).readonly


def test_stat_list_and_gc(names):
    n = names()
    a = shmkit.create(n, (2, 3), "int16")
    st = shmkit.stat(n)
    assert st["kind"] == "array" and st["shape"] == (2, 3) and st["dtype"] == "int16"
    assert st["creator_pid"] == os.getpid() and st["creator_alive"] and st["owned"]
    assert n in shmkit.list_segments()
    assert n not in shmkit.gc(dry_run=True)  # its creator is alive
    del a


def _fnv1a64(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def test_creator_alive_is_none_when_it_cannot_be_judged(names):
    """creator_alive: True, False, or None when this process cannot judge
    (the creator's pid namespace unknown or another container's, an old
    layout, /proc unreadable), never True by default. Here the header
    (re-checksummed as docs/format.md says) records no pid namespace, as a
    creator that could not read its own writes 0."""
    import struct
    n = names()
    a = shmkit.create(n, (4,), "int8")
    assert shmkit.stat(n)["creator_alive"] is True
    with open("/dev/shm/" + n, "r+b") as f:
        head = bytearray(f.read(512))
        pidns = struct.unpack_from("<Q", head, 352)[0]
        assert pidns == os.stat("/proc/self/ns/pid").st_ino  # layout 2 records it
        struct.pack_into("<Q", head, 352, 0)
        struct.pack_into("<Q", head, 504, _fnv1a64(head[:504]))
        f.seek(0)
        f.write(head)
    st = shmkit.stat(n)
    assert st["creator_alive"] is None and st["creator_pid"] == os.getpid()
    assert n not in shmkit.gc(dry_run=True)  # not judged: never collected
    a.close()
    shmkit.unlink(n)


def test_dead_creator_is_collected(names):
    n = names()
    code = ("import shmkit, os, sys\n"
            "a = shmkit.create(sys.argv[1], (1000,), 'int64')\n"
            "os.kill(os.getpid(), 9)\n")
    p = run_python(code, n)
    assert p.returncode == -9
    assert os.path.exists("/dev/shm/" + n)  # SIGKILL: nothing ran at exit
    assert n in shmkit.gc()
    assert not os.path.exists("/dev/shm/" + n)


def test_dtype_tables_come_from_the_library():
    """The package's dtype tables are derived from the library's dtype traits
    (issue 15), and the traits agree with NumPy's own description of each."""
    traits = shmkit._shmkit.dtypes()
    assert shmkit.DTYPES == tuple(t[0] for t in traits)
    assert len(traits) == 11
    for name, size, kind, fmt, typestr in traits:
        dt = np.dtype(name)
        assert (dt.itemsize, dt.kind, dt.str) == (size, kind, typestr), name
        assert np.dtype(fmt) == dt and memoryview(np.zeros(1, dt)).format in (fmt, "l" if fmt == "q" else fmt,
                                                                             "L" if fmt == "Q" else fmt)
        assert shmkit._dtype_name(fmt) == name and shmkit._dtype_name(typestr) == name
        a = shmkit.create(None, (3,), name)
        # 64-bit integers are exported as C long on LP64, so that NumPy gives int64 itself
        assert memoryview(a).format == {"q": "l", "Q": "L"}.get(fmt, fmt)
        assert a.dtype.type is dt.type and a.sum().dtype == np.asarray(a).sum().dtype
        del a
