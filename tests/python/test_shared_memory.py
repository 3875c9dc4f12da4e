"""shmkit.SharedMemory against what CPython documents for
multiprocessing.shared_memory.SharedMemory (and its own test suite checks)."""
import multiprocessing as mp
import os
import pickle

import numpy as np
import pytest

import shmkit
from conftest import run_python


def test_documented_basics(names):
    n = names()
    sms = shmkit.SharedMemory(n, create=True, size=512)
    assert sms.name == n
    assert sms.size >= 512 and len(sms.buf) >= sms.size
    assert isinstance(sms.buf, memoryview)
    sms.buf[0] = 42
    also = shmkit.SharedMemory(n)
    assert also.buf[0] == 42
    assert also.size == sms.size
    also.buf[1] = 7
    assert sms.buf[1] == 7
    also.close()
    also.close()  # closing twice is harmless
    with pytest.raises(FileExistsError):
        shmkit.SharedMemory(n, create=True, size=512)
    assert repr(sms) == "SharedMemory(%r, size=%d)" % (n, sms.size)
    sms.close()
    sms.unlink()
    with pytest.raises(FileNotFoundError):
        shmkit.SharedMemory(n)
    with pytest.raises(FileNotFoundError):
        sms.unlink()


def test_argument_errors():
    with pytest.raises(ValueError):
        shmkit.SharedMemory(create=True, size=-2)
    with pytest.raises(ValueError):
        shmkit.SharedMemory(create=True, size=0)
    with pytest.raises(ValueError):
        shmkit.SharedMemory(create=False)
    with pytest.raises(ValueError):
        shmkit.SharedMemory("a/b", create=True, size=10)


def test_generated_name_and_leading_slash():
    s = shmkit.SharedMemory(create=True, size=10)
    assert s.name.startswith("psm_")
    t = shmkit.SharedMemory("/" + s.name)
    assert t.name == s.name
    t.close()
    s.close()
    assert os.path.exists("/dev/shm/" + s.name)  # close never unlinks: CPython's rule
    s.unlink()


def test_numpy_on_buf_and_close_with_exports():
    s = shmkit.SharedMemory(create=True, size=8 * 100)
    a = np.ndarray((100,), dtype=np.int64, buffer=s.buf)
    a[:] = np.arange(100)
    b = shmkit.SharedMemory(s.name)
    assert np.ndarray((100,), dtype=np.int64, buffer=b.buf)[99] == 99
    with pytest.raises(BufferError):
        s.close()  # the NumPy array still uses buf (CPython would unmap it and crash on a[0])
    assert a[99] == 99
    view = s.buf[10:20]
    del a
    with pytest.raises(BufferError):
        s.close()  # a slice of buf keeps the mapping too
    del view
    s.close()
    b.close()
    b.unlink()


def test_pickle_attaches_by_name():
    s = shmkit.SharedMemory(create=True, size=16)
    s.buf[:4] = b"abcd"
    t = pickle.loads(pickle.dumps(s))
    assert t.name == s.name and bytes(t.buf[:4]) == b"abcd"
    t.close()
    s.close()
    s.unlink()


def _child_attach(name, q):
    m = shmkit.SharedMemory(name)
    q.put(bytes(m.buf[:5]))
    m.buf[5] = 1
    m.close()  # an attaching process closes; it must not remove the name


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_attaching_process_never_unlinks(method):
    s = shmkit.SharedMemory(create=True, size=64)
    s.buf[:5] = b"hello"
    ctx = mp.get_context(method)
    q = ctx.Queue()
    p = ctx.Process(target=_child_attach, args=(s.name, q))
    p.start()
    assert q.get(timeout=60) == b"hello"
    p.join(60)
    assert p.exitcode == 0
    assert os.path.exists("/dev/shm/" + s.name) and s.buf[5] == 1
    s.close()
    s.unlink()


def test_crashed_creator_does_not_leak():
    code = ("import shmkit, os\n"
            "s = shmkit.SharedMemory(create=True, size=1 << 20)\n"
            "print(s.name, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    p = run_python(code)
    assert p.returncode == -9
    name = p.stdout.split()[0]
    assert name in shmkit.gc()
    assert not os.path.exists("/dev/shm/" + name)
