"""Other users' segments (issue 12): refused with PermissionError naming the
owner, opened only with any_owner=True, and a queue of another user never
unpickles unless asked. The tests need root: they make files of another user
(chown) and run a process as that user."""
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile

import numpy as np
import pytest

import shmkit

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="making another user's segments needs root")
NOBODY = 65534


@pytest.fixture
def path_for_others():
    """A PYTHONPATH entry from which another user imports this shmkit: the
    package's own parent when every directory above it lets others through,
    else a copy in a directory they may enter (a checkout under /root, as
    /root/shmkit in a fresh root, is closed to them)."""
    pkg = os.path.dirname(os.path.abspath(shmkit.__file__))
    d = os.path.dirname(pkg)
    while d != "/" and os.stat(d).st_mode & stat.S_IXOTH:
        d = os.path.dirname(d)
    if d == "/":
        yield os.path.dirname(pkg)
        return
    tmp = tempfile.mkdtemp(prefix="shmkit-test-py-")
    try:
        shutil.copytree(pkg, os.path.join(tmp, "shmkit"), ignore=shutil.ignore_patterns("__pycache__"))
        for root, dirs, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for f in files:
                os.chmod(os.path.join(root, f), 0o755)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _give_away(name):
    os.chown("/dev/shm/" + name, NOBODY, NOBODY)


def test_open_refuses_another_users_segment_and_names_the_owner(names):
    a = shmkit.create(names("arr"), (4,), "int32")
    a[:] = 5
    b = shmkit.Bits(64, names("bits"))
    s = shmkit.share({"x": np.arange(3)}, names("share"))
    for obj in (a, b, s):
        _give_away(obj.name)
    for open_it in (lambda: shmkit.open(a.name), lambda: shmkit.Bits.open(b.name),
                    lambda: shmkit.attach(s.name), lambda: shmkit._shmkit.segment_open(a.name, True)):
        with pytest.raises(PermissionError, match="uid %d" % NOBODY):
            open_it()
    got = shmkit.open(a.name, any_owner=True)
    assert isinstance(got, shmkit.SharedArray) and got.sum() == 20
    assert len(shmkit.Bits.open(b.name, any_owner=True)) == 64
    assert (shmkit.attach(s.name, any_owner=True)["x"] == np.arange(3)).all()
    assert shmkit.stat(a.name)["uid"] == NOBODY  # stat reads any owner's header
    del got


class _Evil:
    """Unpickling it would run code: it creates a file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_queue_of_another_user_never_unpickles_unless_asked(names, tmp_path):
    q = shmkit.Queue(name=names("q"), capacity=1 << 16)
    q.put(("compact", 1, 2.5))
    proof = str(tmp_path / "ran")
    q.put(_Evil(proof))
    q.put("after")
    _give_away(q.name)
    with pytest.raises(PermissionError, match="uid %d" % NOBODY):
        shmkit.Queue.open(q.name)
    r = shmkit.Queue.open(q.name, any_owner=True)
    assert r.foreign and not r.unpickle
    assert r.get() == ("compact", 1, 2.5)  # the compact format is data, not code: taken
    with pytest.raises(PermissionError, match="pickled"):
        r.get()
    assert not os.path.exists(proof) and r.qsize() == 2  # refused and still first in the queue
    with pytest.raises(PermissionError):
        r.get_many(5)
    raw = r.get_bytes()  # the raw bytes are the caller's to judge
    assert raw[:1] == b"\x80" and not os.path.exists(proof)
    assert r.get() == "after"
    # Passed on by pickling, the choice travels with it.
    again = pickle.loads(pickle.dumps(r))
    assert again.foreign and not again.unpickle
    # Asked for: unpickled.
    q.put(_Evil(proof))
    trusting = shmkit.Queue.open(q.name, any_owner=True, unpickle=True)
    trusting.get().close()
    assert os.path.exists(proof)
    # One's own queue can refuse pickles too.
    mine = shmkit.Queue(capacity=1 << 16)
    mine.put({1, 2})
    own = shmkit.Queue.open(mine.name, unpickle=False)
    with pytest.raises(PermissionError, match="unpickle=False"):
        own.get()
    assert mine.get() == {1, 2}
    for x in (r, again, trusting, own):
        x.close()
    q.unlink()


MADE_BY_NOBODY = """
import shmkit, sys
q = shmkit.Queue(name=sys.argv[1], capacity=1 << 16, owned=False)
q.put(sys.argv[2])
import pickle
class Evil:
    def __reduce__(self):
        return (open, (sys.argv[3], 'w'))
q.put_bytes(pickle.dumps(Evil()))
print('made', flush=True)
"""


def test_a_queue_made_by_another_user_process(names, tmp_path, path_for_others):
    """The case of issue 12: another local user makes the queue under a name
    that root opens later."""
    name = names("theirs")
    proof = str(tmp_path / "ran")
    os.chmod(str(tmp_path), 0o777)
    env = dict(os.environ, PYTHONPATH=path_for_others)
    p = subprocess.run([sys.executable, "-c", MADE_BY_NOBODY, name, "hello", proof], user=NOBODY, group=NOBODY,
                       env=env, cwd="/", capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert shmkit.stat(name)["uid"] == NOBODY
    with pytest.raises(PermissionError):
        shmkit.Queue.open(name)
    q = shmkit.Queue.open(name, any_owner=True)
    assert q.get() == "hello"
    with pytest.raises(PermissionError):
        q.get()
    assert not os.path.exists(proof)
    q.close()
    shmkit.unlink(name)
