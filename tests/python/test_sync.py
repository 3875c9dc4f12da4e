"""Lock, RLock, Semaphore, BoundedSemaphore, Barrier, Event, Condition across
real processes, with holders killed by SIGKILL and waits cut by Ctrl-C."""
import functools
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import warnings

import pytest

import shmkit
from conftest import kill, run_python, wait_for

fork = mp.get_context("fork")
spawn = mp.get_context("spawn")


def _count(lock, v, n):
    for _ in range(n):
        with lock:
            v.value = v.value + 1  # read and write: lost updates without the lock


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_lock_excludes_across_processes(ctx):
    lock = shmkit.Lock()
    v = shmkit.Value("q", 0, lock=False)
    procs = [ctx.Process(target=_count, args=(lock, v, 3000)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert v.value == 18000


def test_lock_basics():
    lock = shmkit.Lock()
    assert lock.acquire() is True
    assert lock.locked() and lock._is_owned()
    assert lock.acquire(False) is False
    assert lock.acquire(block=False) is False
    assert lock.acquire(blocking=False) is False
    with pytest.raises(RuntimeError, match="deadlock"):
        lock.acquire()
    lock.release()
    assert not lock.locked()
    with pytest.raises(ValueError):
        lock.release()
    with lock:
        assert lock._is_owned()
    st = lock.state()
    assert st["held"] is False and st["waiters"] == 0
    other = shmkit.Lock.open(lock.name)
    with other:
        with pytest.raises(RuntimeError, match="another handle"):
            lock.acquire(timeout=0.05)  # this thread holds it already
        got = []
        t = threading.Thread(target=lambda: got.append((lock.acquire(timeout=0.05), lock.acquire(True, 0.2))))
        t0 = time.monotonic()
        t.start()
        t.join()
        assert got == [(False, False)] and time.monotonic() - t0 >= 0.24
        with pytest.raises(RuntimeError):
            lock.release()  # held, but through the other handle's hold
    assert repr(lock).startswith("<shmkit.Lock ")


def test_lock_from_another_thread_waits():
    lock = shmkit.Lock()
    lock.acquire()
    got = []
    t = threading.Thread(target=lambda: got.append(lock.acquire(timeout=5)))
    t.start()
    time.sleep(0.1)
    assert not got  # the GIL is released while waiting: this thread runs
    with pytest.raises(RuntimeError):
        pass_release_from(lock)
    lock.release()
    t.join()
    assert got == [True]


def pass_release_from(lock):
    err = []

    def rel():
        try:
            lock.release()
        except RuntimeError as e:
            err.append(e)

    t = threading.Thread(target=rel)
    t.start()
    t.join()
    if err:
        raise err[0]


def test_rlock():
    r = shmkit.RLock()
    assert isinstance(r, shmkit.Lock)
    assert r.acquire() and r.acquire() and r.acquire(False)
    r.release()
    r.release()
    assert r._is_owned()
    r.release()
    assert not r._is_owned() and not r.locked()
    with pytest.raises(RuntimeError):  # as threading.RLock and multiprocessing.RLock
        r.release()


def _release_in_child(lock, out):
    try:
        lock.release()
        out.put("released")
    except RuntimeError as e:
        out.put("RuntimeError: %s" % e)


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_only_the_holder_releases(kind):
    """A handle whose hold belongs to another thread, or to the parent of a
    forked child, does not release the lock: RuntimeError, the lock stays
    held by its holder, who then releases it as usual."""
    lock = getattr(shmkit, kind)()
    assert lock.acquire()
    errors = []

    def other_thread():
        try:
            lock.release()
        except RuntimeError as e:
            errors.append(str(e))

    t = threading.Thread(target=other_thread)
    t.start()
    t.join(10)
    assert len(errors) == 1 and "another thread or process" in errors[0]
    assert lock.locked() and lock._is_owned()
    out = fork.SimpleQueue()
    p = fork.Process(target=_release_in_child, args=(lock, out))
    p.start()
    p.join(30)
    assert p.exitcode == 0
    msg = out.get()
    assert msg.startswith("RuntimeError") and "another thread or process" in msg
    assert lock.locked() and lock.state()["owner_pid"] == os.getpid()
    lock.release()
    assert not lock.locked()
    assert lock.acquire(False)
    lock.release()


def _hold(lock, ready):
    lock.acquire()
    ready.set()
    time.sleep(60)


@pytest.mark.parametrize("kind", ["Lock", "RLock"])
def test_killed_holder(kind):
    lock = getattr(shmkit, kind)()
    ready = shmkit.Event()
    p = fork.Process(target=_hold, args=(lock, ready))
    p.start()
    assert ready.wait(10)
    st = lock.state()
    assert st["held"] and st["owner_pid"] == p.pid and st["owner_alive"]
    kill(p)
    with pytest.warns(shmkit.OwnerDiedWarning, match="died holding it"):
        assert lock.acquire(timeout=5) is True
    assert lock.owner_died
    lock.release()
    assert lock.acquire() and not lock.owner_died  # consistent again: usable as ever
    lock.release()


def _block_on(lock, started):
    started.set()
    lock.acquire()
    time.sleep(60)


def test_killed_holder_wakes_a_blocked_waiter():
    lock = shmkit.Lock()
    ready, started = shmkit.Event(), shmkit.Event()
    holder = fork.Process(target=_hold, args=(lock, ready))
    holder.start()
    assert ready.wait(10)
    got = []

    def waiter():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            got.append(lock.acquire(timeout=10))
            got.append([x.category for x in w])
            lock.release()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    kill(holder)
    t.join()
    assert got[0] is True and got[1] == [shmkit.OwnerDiedWarning]
    assert time.monotonic() - t0 < 2
    assert not lock.locked()


def test_owner_died_as_error_releases_the_lock():
    lock = shmkit.Lock()
    ready = shmkit.Event()
    p = fork.Process(target=_hold, args=(lock, ready))
    p.start()
    assert ready.wait(10)
    kill(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error", shmkit.OwnerDiedWarning)
        with pytest.raises(shmkit.OwnerDiedWarning):
            lock.acquire()
    assert not lock.locked()  # not left held by the raising acquire
    assert lock.acquire(False)
    lock.release()


def test_value_lock_killed_holder():
    v = shmkit.Value("i", 7)
    ready = shmkit.Event()
    p = fork.Process(target=_hold, args=(v.get_lock(), ready))
    p.start()
    assert ready.wait(10)
    kill(p)
    with pytest.warns(shmkit.OwnerDiedWarning):
        assert v.value == 7  # get repairs the lock, works and tells
    v.value = 8
    with v.get_lock():
        v.value += 1
    assert v.value == 9


CTRL_C = """
import os, signal, sys, time, shmkit
obj = shmkit.open(sys.argv[1]) if sys.argv[2] != 'cond' else None
kind = sys.argv[2]
if kind == 'cond':
    c = shmkit.Condition.open(sys.argv[1], shmkit.Lock.open(sys.argv[3]))
    c.acquire()
    wait = c.wait
elif kind == 'lock':
    wait = obj.acquire
elif kind in ('sem', 'event', 'barrier'):
    wait = obj.acquire if kind == 'sem' else obj.wait
else:
    wait = obj.get
signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
signal.setitimer(signal.ITIMER_REAL, 0.3)
signal.signal(signal.SIGALRM, lambda *a: os.kill(os.getpid(), signal.SIGINT))
t0 = time.monotonic()
try:
    wait()
except KeyboardInterrupt:
    dt = time.monotonic() - t0
    if kind == 'lock':
        assert not obj._is_owned()
    if kind == 'cond':
        assert c.lock._is_owned()
    print('interrupted after %.3f' % dt)
    sys.exit(42)
sys.exit(1)
"""


@pytest.mark.parametrize("kind", ["lock", "sem", "event", "barrier", "queue", "cond"])
def test_ctrl_c_interrupts_a_blocking_wait(kind):
    keep = []
    extra = []
    if kind == "lock":
        obj = shmkit.Lock()
        obj.acquire()
    elif kind == "sem":
        obj = shmkit.Semaphore(0)
    elif kind == "event":
        obj = shmkit.Event()
    elif kind == "barrier":
        obj = shmkit.Barrier(2)
    elif kind == "queue":
        obj = shmkit.Queue(capacity=4096)
    else:
        lock = shmkit.Lock()
        obj = shmkit.Condition(lock)
        keep.append(lock)
        extra.append(lock.name)
    p = run_python(CTRL_C, obj.name, kind, *extra)
    assert p.returncode == 42, (p.returncode, p.stdout, p.stderr)
    dt = float(p.stdout.split()[-1])
    assert 0.25 <= dt < 2.0
    if kind == "barrier":
        assert obj.n_waiting == 0  # the interrupted party withdrew


def test_semaphores():
    s = shmkit.Semaphore(2)
    assert s.get_value() == 2
    assert s.acquire() and s.acquire(False) and not s.acquire(False)
    t0 = time.monotonic()
    assert s.acquire(timeout=0.1) is False
    assert time.monotonic() - t0 >= 0.09
    s.release()
    s.release()
    s.release()  # unbounded: fine
    assert s.get_value() == 3
    with s:
        assert s.get_value() == 2
    b = shmkit.BoundedSemaphore(1)
    assert isinstance(b, shmkit.Semaphore)
    with pytest.raises(ValueError):
        b.release()
    b.acquire()
    b.release()
    b2 = pickle.loads(pickle.dumps(b))
    assert isinstance(b2, shmkit.BoundedSemaphore)
    with pytest.raises(ValueError):
        b2.release()  # the bound travels with the segment
    with pytest.raises(ValueError):
        shmkit.Semaphore(-1)


def _sem_worker(sem, inside, peak, n):
    for _ in range(n):
        with sem:
            now = inside.add(1) + 1
            with peak.get_lock():
                if now > peak.value:
                    peak.value = now
            time.sleep(0.0005)
            inside.add(-1)


def test_semaphore_bounds_processes():
    sem = shmkit.Semaphore(3)
    inside, peak = shmkit.Value("i", 0, lock=False), shmkit.Value("i", 0)
    procs = [fork.Process(target=_sem_worker, args=(sem, inside, peak, 100)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert 1 <= peak.value <= 3 and inside.value == 0


def _event_waiter(e, out):
    out.put(e.wait(10))


def test_event_across_processes():
    e = shmkit.Event()
    assert not e.is_set() and e.wait(0.05) is False
    q = fork.Queue()
    procs = [fork.Process(target=_event_waiter, args=(e, q)) for _ in range(4)]
    for p in procs:
        p.start()
    time.sleep(0.1)
    e.set()
    assert sorted(q.get(timeout=10) for _ in procs) == [True] * 4
    for p in procs:
        p.join()
    e.clear()
    assert not e.is_set()


def _barrier_worker(b, log, rounds):
    for r in range(rounds):
        log.put((r, b.wait(30)))


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_barrier_rounds(ctx):
    parties, rounds = 4, 50
    b = shmkit.Barrier(parties)
    assert b.parties == 4 and b.n_waiting == 0 and not b.broken
    log = ctx.Queue()
    procs = [ctx.Process(target=_barrier_worker, args=(b, log, rounds)) for _ in range(parties)]
    for p in procs:
        p.start()
    got = [log.get(timeout=60) for _ in range(parties * rounds)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for r in range(rounds):
        rets = sorted(ret for rr, ret in got if rr == r)
        assert rets == [0, 1, 2, 3]  # a unique index per party, as threading.Barrier


def test_barrier_timeout_and_action():
    b = shmkit.Barrier(2, timeout=0.1)
    t0 = time.monotonic()
    with pytest.raises(threading.BrokenBarrierError):
        b.wait()
    assert time.monotonic() - t0 >= 0.09
    assert b.n_waiting == 0 and b.broken  # a timeout breaks it, as in threading
    with pytest.raises(threading.BrokenBarrierError):
        b.wait(0.01)
    b.reset()
    assert not b.broken
    b.abort()
    assert b.broken and "broken" in repr(b)
    b.reset()
    calls = []
    one = shmkit.Barrier(1, action=lambda: calls.append(1))
    assert one.wait() == 0 and calls == [1]
    with pytest.raises(ValueError):
        shmkit.Barrier(0)


def _action(flag):
    time.sleep(0.2)  # the others must still be waiting when it is done
    flag.value = 1


def _party(b, flag, out):
    i = b.wait(30)
    out.put((i, flag.value))


@pytest.mark.parametrize("ctx", [fork, spawn], ids=["fork", "spawn"])
def test_barrier_action_runs_before_release_and_a_failing_action_breaks_it(ctx):
    flag = shmkit.Value("i", 0)
    b = shmkit.Barrier(3, action=functools.partial(_action, flag))
    out = ctx.Queue()
    procs = [ctx.Process(target=_party, args=(b, flag, out)) for _ in range(3)]
    for p in procs:
        p.start()
    got = sorted(out.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(30)
    assert got == [(0, 1), (1, 1), (2, 1)]  # every party saw the action's effect
    bad = shmkit.Barrier(1, action=lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bad.wait()
    assert bad.broken


def test_barrier_pickles_its_action_and_timeout():
    b = shmkit.Barrier(2, action=functools.partial(time.sleep, 0), timeout=5)
    c = pickle.loads(pickle.dumps(b))
    assert c.name == b.name and c.parties == 2
    with pytest.raises(threading.BrokenBarrierError):
        c.wait(0.05)
    assert b.broken


def _consumer(cond, items, out, n):
    got = 0
    while got < n:
        with cond:
            assert cond.wait_for(lambda: items.value > 0, timeout=20)
            items.value -= 1
            got += 1
    out.put(got)


def test_condition_producer_consumers():
    cond = shmkit.Condition()
    items = shmkit.Value("i", 0, lock=False)
    out = fork.Queue()
    procs = [fork.Process(target=_consumer, args=(cond, items, out, 50)) for _ in range(3)]
    for p in procs:
        p.start()
    for _ in range(150):
        with cond:
            items.value += 1
            cond.notify()
    assert [out.get(timeout=60) for _ in procs] == [50, 50, 50]
    for p in procs:
        p.join()
    assert items.value == 0


def test_condition_rules():
    lock = shmkit.RLock()
    c = shmkit.Condition(lock)
    assert c.lock is lock
    with pytest.raises(RuntimeError):
        c.wait(0)
    with pytest.raises(RuntimeError):
        c.notify()
    with pytest.raises(TypeError):
        shmkit.Condition(threading.Lock())
    with c:
        with c:  # RLock: recursion is saved around the wait and restored
            assert c.wait(0.05) is False
            assert lock._is_owned()
        c.notify_all()
    assert not lock._is_owned()
    assert c.wait_for if True else None
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.name == c.name and c2.lock.name == lock.name


def test_named_objects_attach_by_name(names):
    n = names()
    lock = shmkit.Lock(name=n)
    assert lock.name == n
    assert isinstance(shmkit.open(n), shmkit.Lock)
    e = shmkit.Event(name=names())
    assert isinstance(shmkit.open(e.name), shmkit.Event)
    with pytest.raises(FileExistsError):
        shmkit.Lock(name=n)
    with pytest.raises(ValueError):
        shmkit.Event(name="no/slash")
    with pytest.raises(TypeError):
        shmkit.Semaphore.open(n)  # a lock is not a semaphore


def test_generated_names_are_removed():
    objs = [shmkit.Lock(), shmkit.RLock(), shmkit.Semaphore(), shmkit.BoundedSemaphore(), shmkit.Event(),
            shmkit.Barrier(2), shmkit.Condition()]
    paths = ["/dev/shm/" + o.name for o in objs]
    assert all(os.path.exists(p) for p in paths)
    del objs
    assert not any(os.path.exists(p) for p in paths)


def test_forked_child_does_not_remove_the_parents_names():
    lock = shmkit.Lock()
    pid = os.fork()
    if pid == 0:
        del lock
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.path.exists("/dev/shm/" + lock.name)
    assert wait_for(lambda: True)


def test_closing_a_value_while_a_thread_waits_for_its_lock_is_refused():
    v = shmkit.Value("i", 0)
    ready = shmkit.Event()
    p = fork.Process(target=_hold, args=(v.get_lock(), ready))
    p.start()
    assert ready.wait(10)
    t = threading.Thread(target=lambda: v.get_lock().acquire(timeout=5) and v.get_lock().release())
    t.start()
    time.sleep(0.2)
    with pytest.raises(RuntimeError, match="other threads"):
        v.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", shmkit.OwnerDiedWarning)
        kill(p)
        t.join()
    v.close()
