"""Threads, signals and hostile arguments (issue 12): close() and freeze()
refuse while another thread is inside the object or holds its lock, waits
that a stopped peer could stretch forever stay interruptible, names with a
NUL are refused, and 64-bit sizes never wrap.

Each crash case runs in a child interpreter, so that the SIGSEGV the old code
died of fails the test instead of killing pytest."""
import ctypes
import multiprocessing as mp
import os
import queue
import subprocess
import sys
import time

import pytest

import shmkit
from conftest import BIN, kill, run_python

fork = mp.get_context("fork")

CLOSE_WHILE_HELD = """
import sys, threading, time, shmkit
kind = sys.argv[1]
if kind == 'value':
    obj = shmkit.Value('q', 5)
    target = obj
else:
    obj = shmkit.Array('q', 1000)
    target = obj
lock = obj.get_lock()
held, done = threading.Event(), threading.Event()
def holder():
    with lock:
        held.set()
        done.wait(10)
        if kind == 'value':
            obj.value = 6   # writes through the mapping while holding the lock
        else:
            obj[0] = 6
t = threading.Thread(target=holder)
t.start()
held.wait(10)
try:
    target.close()
    print('closed')
except RuntimeError as e:
    print('refused:', e)
done.set()
t.join()
target.close()   # free now: closes
print('end')
"""


@pytest.mark.parametrize("kind", ["value", "array"])
def test_close_refused_while_another_thread_holds_the_lock(kind):
    r = run_python(CLOSE_WHILE_HELD, kind)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)  # main: SIGSEGV (-11)
    assert "refused: cannot close while a thread holds its lock" in r.stdout
    assert r.stdout.strip().endswith("end")


FREEZE_WHILE_BUSY = """
import sys, threading, time, shmkit
b = shmkit.Bits(1 << 31)
stop = threading.Event()
calls = [0]
def writer():
    while not stop.is_set():
        try:
            b.set_range(0, len(b))
        except shmkit.Error:      # frozen between two calls: read-only, refused
            break
        calls[0] += 1
t = threading.Thread(target=writer)
t.start()
while calls[0] == 0:
    time.sleep(0.001)
refused = 0
end = time.monotonic() + 5
while time.monotonic() < end:
    try:
        b.freeze()
        break
    except RuntimeError as e:
        refused += 1
        assert 'cannot freeze' in str(e), e
stop.set()
t.join()
print('refused', refused)
b.unlink()
"""


def test_freeze_refused_while_a_bulk_call_runs():
    r = run_python(FREEZE_WHILE_BUSY, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)  # main: SIGSEGV (-11)
    assert r.stdout.startswith("refused ")


def _lib():
    for d in (os.path.dirname(BIN), os.path.join(os.path.dirname(__file__), "..", "..", "build")):
        p = os.path.join(d, "libshmkit.so")
        if os.path.exists(p):
            return p
    pytest.fail("libshmkit.so not found next to %s" % BIN)


def _hold_queue_lock(name, ready):
    """Holds the queue's lock for good, as a stopped or stuck peer would: a
    zero-copy reserve takes one of the producers' claim slots (16 in queue
    layout 3), and once all are taken the next reserve holds the lock itself
    until its commit, which never comes. Every handle is opened first: an
    open waits for the lock, which this thread then holds."""
    lib = ctypes.CDLL(_lib())
    lib.sk_queue_reserve.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.c_int64]
    opened = []
    for _ in range(33):  # more than the claims, then one reserve that holds the lock
        q = ctypes.c_void_p()
        assert lib.sk_queue_open(name.encode(), ctypes.byref(q)) == 0
        opened.append(q)
    handles = []
    for q in opened:
        ptr = ctypes.c_void_p()
        if lib.sk_queue_reserve(q, 8, ctypes.byref(ptr), 0) != 0:
            break  # the previous reserve holds the lock already (a library without claims)
        handles.append(q)
    assert handles
    ready.set()
    time.sleep(600)


QUEUE_COUNTERS = """
import sys, time, shmkit
q = shmkit.Queue.open(sys.argv[1])  # before the peer gets stuck
print('open', flush=True)
sys.stdin.readline()
t0 = time.monotonic()
assert q.qsize() >= 1 and not q.empty() and not q.full() and q.stats()["messages"] >= 1
assert "<shmkit.Queue" in repr(q)
print(time.monotonic() - t0)
"""

QUEUE_OPEN = """
import sys, threading, time, shmkit
ticks = [0]
def tick():
    while True:
        ticks[0] += 1
        time.sleep(0.01)
threading.Thread(target=tick, daemon=True).start()
t0 = time.monotonic()
try:
    shmkit.Queue.open(sys.argv[1])
    what = 'opened'
except TimeoutError:
    what = 'timed out'
print(what, round(time.monotonic() - t0, 2), ticks[0])
"""


def test_queue_counters_and_open_do_not_freeze_behind_a_stuck_peer():
    q = shmkit.Queue(capacity=1 << 16)
    q.put(1)
    counters = subprocess.Popen([sys.executable, "-c", QUEUE_COUNTERS, q.name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert counters.stdout.readline().strip() == "open"
    ready = fork.Event()
    p = fork.Process(target=_hold_queue_lock, args=(q.name, ready))
    p.start()
    try:
        assert ready.wait(10)
        # The counters are read without the lock: no wait at all (on
        # a56ecd1 the first qsize() waited forever with the GIL held).
        try:
            out, err = counters.communicate("go\n", timeout=20)
        finally:
            counters.kill()
            counters.wait()
        assert counters.returncode == 0, (out, err)
        assert float(out.split()[-1]) < 1.0, out
        # Opening (what unpickling in a spawned worker does) waits for the
        # lock with the GIL released and gives up after the library's bound:
        # another thread keeps running meanwhile (a56ecd1: frozen for good).
        r = run_python(QUEUE_OPEN, q.name, timeout=60)
        assert r.returncode == 0, (r.stdout, r.stderr)
        secs, ticks = float(r.stdout.split()[-2]), int(r.stdout.split()[-1])
        assert secs < 30, r.stdout
        assert ticks >= secs * 20, r.stdout  # the ticker ran all along: the GIL was released
        # Producers and consumers have a lock each (queue layout 3): the
        # held producers' lock leaves a get alone and makes a put time out.
        assert q.get(timeout=5) == 1
        with pytest.raises(queue.Full):
            q.put(2, timeout=0.2)
    finally:
        kill(p)
    q.put(3, timeout=30)  # the dead holder's claims and lock were settled
    assert q.get(timeout=30) == 3


QUEUE_CTRL_C = """
import os, signal, sys, time, shmkit
signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
q = shmkit.Queue.open(sys.argv[1]) if sys.argv[2] == 'shutdown' else None  # (opened before the peer got stuck)
print('ready', flush=True)
sys.stdin.readline()
signal.setitimer(signal.ITIMER_REAL, 0.3)
t0 = time.monotonic()
try:
    q.shutdown() if q else shmkit.Queue.open(sys.argv[1])
except KeyboardInterrupt:
    print('interrupted after %.3f' % (time.monotonic() - t0))
    sys.exit(42)
sys.exit(1)
"""


@pytest.mark.parametrize("op", ["open", "shutdown"])
def test_queue_open_and_shutdown_honour_ctrl_c_behind_a_stuck_peer(op):
    """Queue.open (what unpickling a Queue does) and shutdown() wait for the
    queue's lock in slices: Ctrl-C interrupts them within 50 ms (before, the
    library waited its 10 s and Python saw the signal only then)."""
    q = shmkit.Queue(capacity=1 << 16)
    child = subprocess.Popen([sys.executable, "-c", QUEUE_CTRL_C, q.name, op], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    ready = fork.Event()
    p = fork.Process(target=_hold_queue_lock, args=(q.name, ready))
    p.start()
    try:
        assert ready.wait(10)
        t0 = time.monotonic()
        try:
            out, err = child.communicate("go\n", timeout=20)
        finally:
            child.kill()
            child.wait()
        assert child.returncode == 42, (child.returncode, out, err)
        assert float(out.split()[-1]) < 0.3 + 0.5 and time.monotonic() - t0 < 5, out
    finally:
        kill(p)
    assert not q.stats()["shut_down"]


def test_queue_counters_use_the_queue_itself():
    """qsize, stats and repr read the handle's own mapping: no second mapping
    of the name exists (one opened by name later could be another queue's,
    if a peer had made the name again in between)."""
    q = shmkit.Queue(capacity=1 << 16)
    q.put(1)
    ino = os.stat("/dev/shm/" + q.name).st_ino
    maps = [line for line in open("/proc/self/maps") if line.split()[4] == str(ino)]
    assert len(maps) == 1, maps  # main mapped it twice
    assert q.qsize() == 1 and q.stats()["messages"] == 1
    name = q.name
    q.unlink()
    other = shmkit.Queue(name=name, capacity=1 << 16)  # the name is made again by a peer
    for i in range(5):
        other.put(i)
    assert q.qsize() == 1 and other.qsize() == 5
    o2 = shmkit.Queue.open(name)
    assert o2.qsize() == 5 and o2.get() == 0
    o2.close()
    other.unlink()


VALUE_CTRL_C = """
import os, signal, sys, time, shmkit
v = shmkit.open(sys.argv[1])
signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
signal.setitimer(signal.ITIMER_REAL, 0.3)
t0 = time.monotonic()
try:
    getattr(v, sys.argv[2])() if sys.argv[2] != 'value' else v.value
except KeyboardInterrupt:
    print('interrupted after %.3f' % (time.monotonic() - t0))
    sys.exit(42)
sys.exit(1)
"""


def _hold_value_lock(v, ready):
    v.get_lock().acquire()
    ready.set()
    time.sleep(600)


@pytest.mark.parametrize("op", ["value", "add", "cas"])
def test_value_ops_honour_ctrl_c_while_a_peer_holds_the_lock(names, op):
    v = shmkit.Value("q", 1, name=names("v"))
    ready = fork.Event()
    p = fork.Process(target=_hold_value_lock, args=(v, ready))
    p.start()
    try:
        assert ready.wait(10)
        code = VALUE_CTRL_C.replace("getattr(v, sys.argv[2])()",
                                    "(v.add(1) if sys.argv[2] == 'add' else v.compare_and_swap(1, 2))")
        t0 = time.monotonic()
        r = run_python(code, v.name, op, timeout=20)
        assert r.returncode == 42, (r.returncode, r.stdout, r.stderr)  # main: hangs until the timeout
        assert time.monotonic() - t0 < 10
    finally:
        kill(p)
    with pytest.warns(shmkit.OwnerDiedWarning):
        assert v.value == 1


def test_cas_after_owner_death_reports_the_swap():
    v = shmkit.Value("q", 1)
    ready = fork.Event()
    p = fork.Process(target=_hold_value_lock, args=(v, ready))
    p.start()
    assert ready.wait(10)
    kill(p)
    with pytest.warns(shmkit.OwnerDiedWarning):
        assert v.compare_and_swap(1, 2) == (True, 1)  # main: (False, 1) although it swapped
    assert v.value == 2


def test_names_with_nul_are_refused(names):
    n = names("nul")
    keep = shmkit.SharedMemory(n, create=True, size=16)
    with pytest.raises(ValueError):
        shmkit.unlink(n + "\0y")  # main: removed n
    with pytest.raises(ValueError):
        shmkit.stat(n + "\0y")
    with pytest.raises(ValueError):
        shmkit.SharedMemory(n + "\0z", create=True, size=16)
    with pytest.raises(ValueError):
        shmkit.Queue(name=n + "\0q")
    with pytest.raises(ValueError):
        shmkit.create(n + "\0a", (4,))
    assert os.path.exists("/dev/shm/" + n)
    keep.close()
    keep.unlink()


def test_sizes_of_2_64_and_more_raise_overflow():
    big = 2 ** 64
    with pytest.raises(OverflowError):
        shmkit.SharedMemory(create=True, size=big + 4096)  # main: a 4096-byte segment
    with pytest.raises(OverflowError):
        shmkit.Bits(big + 64)
    with pytest.raises(OverflowError):
        shmkit.Queue(capacity=big + 4096)
    with pytest.raises(OverflowError):
        shmkit.Queue(capacity=4096, max_msg=big + 16)
    with pytest.raises(OverflowError):
        shmkit.create(None, (big + 1,))
    b = shmkit.Bits(128)
    with pytest.raises(OverflowError):
        b.count(big + 1)
    with pytest.raises(OverflowError):
        b.count(0, big + 64)
    with pytest.raises(OverflowError):
        b.find_next_set(big + 1)
    with pytest.raises(OverflowError):
        b.set_range(big, big + 1)
    with pytest.raises(OverflowError):
        b.count(-1)
