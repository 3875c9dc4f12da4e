"""Fixtures for the shmkit Python module's tests.

The module is imported from the build tree (CTest sets PYTHONPATH to
build/python; run by hand: PYTHONPATH=build/python /usr/bin/python3 -m pytest
tests/python). Every test gets unique segment names through `names`, and
whatever carries them is removed afterwards, whatever happened."""
import os
import signal
import subprocess
import sys
import time

import pytest

import shmkit

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("SHMKIT_BIN") or os.path.join(HERE, "..", "..", "build", "shmkit")


@pytest.fixture
def names():
    made = []

    def make(tag="x"):
        n = "skpy-%d-%s-%d" % (os.getpid(), tag, len(made))
        made.append(n)
        return n

    yield make
    for n in made:
        if os.path.lexists("/dev/shm/" + n):
            os.unlink("/dev/shm/" + n)


def _ours(name):
    """True for a /dev/shm entry this test process made: its names carry our
    pid, and a segment's header names its creator. Other processes' entries
    (another test run, a benchmark) are none of our business."""
    me = os.getpid()
    if name.startswith(("skpy-%d-" % me, "sk-%d-" % me)):
        return True
    try:
        return shmkit.stat(name)["creator_pid"] == me
    except (OSError, ValueError, TypeError):
        return False


@pytest.fixture(autouse=True)
def no_leftovers():
    """Fails a test that leaves a segment behind (named or generated)."""
    before = set(os.listdir("/dev/shm"))
    yield
    import gc
    gc.collect()
    left = [n for n in set(os.listdir("/dev/shm")) - before if _ours(n)]
    for n in left:
        os.unlink("/dev/shm/" + n)
    assert not left, "left in /dev/shm: %s" % sorted(left)


def run_python(code, *args, timeout=60):
    """Runs code in a fresh /usr/bin/python3 with the same module path."""
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


def kill(p):
    """SIGKILLs a multiprocessing.Process or a pid and reaps it."""
    pid = p.pid if hasattr(p, "pid") else p
    os.kill(pid, signal.SIGKILL)
    if hasattr(p, "join"):
        p.join()
    else:
        os.waitpid(pid, 0)
