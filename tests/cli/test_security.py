"""The shmkit command against other users and hostile names: modes limited to
permission bits, export keeping the segment's bits, escaped foreign names,
other owners' segments opened only on request."""
import atexit
import json
import os
import shutil
import stat
import subprocess
import tempfile

import numpy as np
import pytest

from conftest import BIN, run

NOBODY = 65534
_COPIES = {}


def runnable_by_others(path):
    """path itself when every directory above it lets others through, else a
    copy in a directory they may enter, made once and removed at exit (a
    checkout under /root, as /root/shmkit in a fresh root, is closed to
    other users; the programs are linked statically with the library)."""
    d = os.path.dirname(os.path.abspath(path))
    while d != "/" and os.stat(d).st_mode & stat.S_IXOTH:
        d = os.path.dirname(d)
    if d == "/":
        return path
    if path not in _COPIES:
        if "dir" not in _COPIES:
            _COPIES["dir"] = tempfile.mkdtemp(prefix="shmkit-test-bin-")
            os.chmod(_COPIES["dir"], 0o755)
            atexit.register(shutil.rmtree, _COPIES["dir"], True)
        _COPIES[path] = os.path.join(_COPIES["dir"], os.path.basename(path))
        shutil.copy2(path, _COPIES[path])
        os.chmod(_COPIES[path], 0o755)
    return _COPIES[path]


def as_user(uid, *args):
    """Runs the command as uid:uid (the test runs as root)."""
    def drop():
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    p = subprocess.run([runnable_by_others(BIN), *map(str, args)], capture_output=True, preexec_fn=drop)
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    return p


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


@pytest.mark.parametrize("mode", ["4777", "2777", "1777", "7777", "4755", "1000", "10000", "0"])
def test_create_refuses_special_mode_bits(names, tmp_path, mode):
    n = names("mode")
    p = run("create", n, "--size", "4K", "--mode", mode, check=2)
    assert "permission bits 1 to 0777" in p.err and "setuid" in p.err
    assert not os.path.exists("/dev/shm/" + n)
    f = tmp_path / "a.npy"
    np.save(f, np.arange(3))
    assert "permission bits 1 to 0777" in run("import", "--mode", mode, n, f, check=2).err
    assert not os.path.exists("/dev/shm/" + n)


def test_create_accepts_all_permission_bits(names):
    n = names("m777")
    assert json.loads(run("create", n, "--size", "1", "--mode", "777", "--json", check=0).out)["mode"] == "0777"
    assert stat.S_IMODE(os.stat("/dev/shm/" + n).st_mode) == 0o777


@pytest.mark.parametrize("seg_mode,umask,want", [
    ("0600", 0o022, 0o600), ("0640", 0o022, 0o640), ("0666", 0o022, 0o644),
    ("0666", 0o077, 0o600), ("0400", 0o022, 0o400), ("0755", 0o000, 0o644),
])
def test_export_keeps_segment_bits_or_stricter(names, tmp_path, seg_mode, umask, want):
    n = names("exp")
    run("create", n, "--size", "100", "--mode", seg_mode, check=0)
    out = tmp_path / "out.npy"
    out.write_bytes(b"old")
    os.chmod(out, 0o666)                # the file it replaces was wider
    old = os.umask(umask)
    try:
        run("export", n, out, check=0)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == want
    assert np.load(out).shape == (100,)


def test_ls_all_escapes_foreign_names(names):
    base = names("esc")
    hostile = base + "-\x1b]0;pwned\x07\x1b[31mred\n"
    with open(os.path.join("/dev/shm", hostile), "wb") as f:
        f.write(b"not a segment")
    try:
        p = subprocess.run([BIN, "ls", "--all"], capture_output=True)
        assert p.returncode == 0
        assert b"\x1b" not in p.stderr and b"\x07" not in p.stderr
        line = [l for l in p.stderr.decode().splitlines() if base in l]
        assert line == ["shmkit ls: skipped %s-\\x1b]0;pwned\\x07\\x1b[31mred\\x0a: not a shmkit segment "
                        "(foreign file)" % base]
        j = json.loads(run("ls", "--json", check=0).out)   # JSON escapes as before
        assert hostile in [s["name"] for s in j["skipped"]]
    finally:
        os.unlink(os.path.join("/dev/shm", hostile))


@needs_root
def test_other_owner_opened_only_on_request(names, tmp_path):
    raw, bits, val = names("nraw"), names("nbits"), names("nval")
    p = as_user(NOBODY, "create", raw, "--size", "100", "--mode", "0666")
    assert p.returncode == 0, p.err
    assert as_user(NOBODY, "create", bits, "--bits", "1000", "--mode", "0644").returncode == 0
    # The header is shown whoever owns it.
    j = json.loads(run("info", "--json", raw, check=0).out)
    assert j["uid"] == NOBODY
    assert "owner nobody (uid %d)" % NOBODY in run("info", raw, check=0).out
    # Opening it is refused, naming the owner; --any-owner opens it.
    out = tmp_path / "x.npy"
    p = run("export", raw, out, check=1)
    assert "owned by nobody (uid %d), neither you nor root" % NOBODY in p.err
    assert "--any-owner" in p.err and not out.exists()
    run("export", "--any-owner", raw, out, check=0)
    assert np.load(out).shape == (100,)
    assert "owned by nobody" in run("info", "--count", bits, check=1).err
    assert json.loads(run("info", "--count", "--any-owner", "--json", bits, check=0).out)["set_bits"] == 0
    assert "owned by nobody" in run("freeze", bits, check=1).err
    assert json.loads(run("info", "--json", bits, check=0).out)["frozen"] is False
    run("freeze", "--any-owner", bits, check=0)
    assert json.loads(run("info", "--json", bits, check=0).out)["frozen"] is True
    # Another user's named lock: listed, its state not read unless asked.
    helper = os.environ.get("SHMKIT_MAKE_LOCKS") or os.path.join(os.path.dirname(BIN), "make_locks")
    prefix = names("nlocks")
    made = [prefix + "-" + k for k in
            ["mutex", "rwlock", "sem", "barrier", "event", "cond", "value", "larray", "queue"]]
    try:
        def drop():
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        subprocess.run([runnable_by_others(helper), prefix], capture_output=True, check=True, preexec_fn=drop)
        segs = {s["name"]: s for s in json.loads(run("ls", "--json", check=0).out)["segments"]}
        for n in made:
            if segs[n]["kind"] in ("value", "mutex", "sem", "queue"):
                assert segs[n]["state"] == "not inspected: owned by uid %d (--any-owner)" % NOBODY
        segs = {s["name"]: s for s in json.loads(run("ls", "--json", "--any-owner", check=0).out)["segments"]}
        assert segs[prefix + "-value"]["state"] == "42, lock free"
        assert segs[prefix + "-sem"]["state"] == "count 2 of at most 5"
        qj = json.loads(run("info", "--json", "--any-owner", prefix + "-queue", check=0).out)
        assert qj["queue"]["messages"] == 3
        assert "queue" not in json.loads(run("info", "--json", prefix + "-queue", check=0).out)
    finally:
        for n in made:
            if os.path.exists("/dev/shm/" + n):
                os.unlink("/dev/shm/" + n)
    # And the other way round: root's segments are trusted by everyone.
    mine = names("rootown")
    run("create", mine, "--size", "10", "--mode", "0644", check=0)
    p = as_user(NOBODY, "export", mine, "-")
    assert p.returncode == 0, p.err


def unshare_available():
    if os.geteuid() != 0:
        return False
    p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    return p.returncode == 0


def demo_entries():
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith("shmkit-demo-"))


@pytest.mark.skipif(not unshare_available(), reason="needs root and pid namespaces (unshare)")
def test_gc_json_says_why_across_containers():
    import signal
    import time
    before = demo_entries()
    assert before == []
    # A demo running in a container, stopped once its owned segments exist.
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", BIN, "demo", "--size", "64M",
                             "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 30
        while len(demo_entries()) < 4 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGSTOP)
        made = demo_entries()
        assert len(made) == 4, made
        # The host sees the container's process: alive, kept.
        j = json.loads(run("gc", "--json", check=0).out)
        kept = {k["name"]: k for k in j["kept"]}
        for n in made:
            assert kept[n]["reason"] == "alive", kept[n]
            assert kept[n]["creator_pid"] == 1 and kept[n]["creator_pidns"] > 0
        assert not [r for r in j["removed"] if r["name"] in made]
        # Another container cannot see it: kept, and it says why.
        p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", BIN, "gc", "--json"],
                           capture_output=True, check=True)
        kept = {k["name"]: k for k in json.loads(p.stdout)["kept"]}
        for n in made:
            assert kept[n]["reason"] == "ns_hidden"
            assert "cannot see" in kept[n]["why"]
        p = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", BIN, "gc"], capture_output=True,
                           check=True)
        assert "kept %s: its creator lived in a pid namespace" % made[0] in p.stdout.decode()
        assert demo_entries() == made
        # Killed outright, the container is gone: the host removes them. A
        # suite that itself runs in a pid namespace (a container) cannot tell
        # a gone namespace from a hidden sibling's: it keeps them.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        sees_all = os.readlink("/proc/self/ns/pid") == "pid:[4026531836]"
        deadline = time.time() + 20     # the kernel tears the namespace down after its init died
        while True:
            j = json.loads(run("gc", "--json", "--dry-run", check=0).out)
            removed = {r["name"]: r for r in j["removed"]}
            kept = {k["name"]: k for k in j["kept"]}
            if not sees_all and all(n in kept and kept[n]["reason"] == "ns_hidden" for n in made):
                break
            if all(n in removed for n in made) or time.time() > deadline:
                break
            time.sleep(0.05)
        for n in made:
            if sees_all:
                assert removed[n]["reason"] == "dead" and "has died" in removed[n]["why"]
            else:
                assert kept[n]["reason"] == "ns_hidden" and "cannot see" in kept[n]["why"]
        assert demo_entries() == made
        run("gc", check=0)
        if not sees_all:
            assert demo_entries() == made
            for n in made:
                run("rm", n, check=0)
        assert demo_entries() == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for n in demo_entries():
            os.unlink("/dev/shm/" + n)


def test_import_publishes_only_when_complete(names, tmp_path):
    import io
    import signal
    import time
    a = np.arange(1 << 20, dtype=np.int64)          # 8 MiB of data
    buf = io.BytesIO()
    np.save(buf, a)
    data = buf.getvalue()
    n = names("half")
    proc = subprocess.Popen([BIN, "import", n, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(data[:len(data) // 2])     # the header and half the data
        proc.stdin.flush()
        time.sleep(0.3)                             # it has read what there is
        assert proc.poll() is None
        assert not os.path.exists("/dev/shm/" + n)  # a half-filled array is never visible
        assert n not in [s["name"] for s in json.loads(run("ls", "--json", check=0).out)["segments"]]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert not os.path.exists("/dev/shm/" + n)  # killed: nothing left behind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # Completed: visible, complete.
    p = subprocess.run([BIN, "import", n, "-"], input=data, capture_output=True)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "back.npy"
    run("export", n, out, check=0)
    np.testing.assert_array_equal(np.load(out), a)
    # A name taken meanwhile is never replaced.
    assert "already exists" in run("import", n, "-", input=data, check=1).err
