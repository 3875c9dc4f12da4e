"""The shmkit command: ls, info, create, rm, import, export; exit codes;
.npy round trips checked with NumPy itself."""
import json
import os
import stat

import numpy as np
import pytest

from conftest import run

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
          "uint32", "uint64", "float32", "float64"]


def test_help_everywhere():
    p = run("--help", check=0)
    for cmd in ("ls", "info", "create", "rm", "import", "export", "gc", "freeze", "demo"):
        assert cmd in p.out
        h = run(cmd, "--help", check=0)
        assert h.out.startswith("usage: shmkit " + cmd)
    assert run(check=2).err.startswith("usage:")
    assert run("--version", check=0).out.startswith("shmkit ")


def test_usage_errors_exit_2(names):
    assert "unknown command" in run("frobnicate", check=2).err
    assert "unknown option" in run("ls", "--bogus", check=2).err
    assert "missing NAME" in run("info", check=2).err
    n = names()
    assert run("create", n, check=2).returncode == 2                       # no kind
    assert run("create", n, "--bits", "10", "--size", "4", check=2)
    assert "unknown dtype" in run("create", n, "--dtype", "complex64", "--shape", "3", check=2).err
    assert run("create", n, "--dtype", "int8", "--shape", "3,x", check=2)
    assert run("create", n, "--dtype", "int8", "--shape", ",".join(["1"] * 33), check=2)
    assert run("create", n, "--size", "12Q", check=2)
    assert run("create", n, "--size", "4", "--mode", "999", check=2)
    assert "invalid name" in run("create", "a/b", "--size", "4", check=2).err
    assert run("create", "..", "--size", "4", check=2)
    assert run("rm", check=2)
    assert run("import", n, check=2)
    assert run("export", n, "a", "b", check=2)
    assert not os.path.exists("/dev/shm/" + n)


def test_create_info_ls_rm_array(names):
    n = names("arr")
    p = run("create", n, "--dtype", "int64", "--shape", "1000,3", "--json", check=0)
    info = json.loads(p.out)
    assert info["name"] == n and info["kind"] == "array"
    assert info["dtype"] == "int64" and info["shape"] == [1000, 3]
    assert info["data_bytes"] == 24000 and info["mode"] == "0600"
    assert info["creator_alive"] is True           # said by the creating process itself
    st = os.stat("/dev/shm/" + n)
    assert stat.S_IMODE(st.st_mode) == 0o600

    text = run("info", n, check=0).out
    assert "dtype:    int64" in text and "shape:    (1000, 3)" in text
    assert "pages:    4 KiB: no 2 MiB pages asked for: the file is smaller than 4 MiB" in text
    assert "strides:  (24, 8)" in text and "23.4 KiB" in text
    j = json.loads(run("info", n, "--json", check=0).out)
    assert j["shape"] == [1000, 3] and j["data_offset"] == 4096
    assert j["creator_alive"] is False and j["creator_pid"] == info["creator_pid"]

    ls = run("ls", check=0).out.splitlines()
    assert ls[0].split()[:6] == ["NAME", "KIND", "TYPE", "SHAPE", "SIZE", "CREATOR"]
    row = [l for l in ls if l.startswith(n + " ")]
    assert len(row) == 1 and "int64" in row[0] and "(1000, 3)" in row[0] and "(gone)" in row[0]
    lj = json.loads(run("ls", "--json", check=0).out)
    assert [s["name"] for s in lj["segments"]].count(n) == 1

    run("rm", n, check=0)
    assert not os.path.exists("/dev/shm/" + n)
    assert "no such segment" in run("rm", n, check=1).err
    assert "no such segment" in run("info", n, check=1).err
    run("rm", "-f", n, check=0)


def test_create_bits_raw_generated_mode(names):
    n = names("bits")
    out = run("create", n, "--bits", "1M", check=0).out
    assert "1048576 bits" in out and "128 KiB" in out
    j = json.loads(run("info", "--json", "--count", n, check=0).out)
    assert j["kind"] == "bits" and j["bits"] == 1 << 20 and j["set_bits"] == 0
    r = names("raw")
    j = json.loads(run("create", r, "--size", "1.5K", "--mode", "0640", "--json", check=0).out)
    assert j["kind"] == "raw" and j["data_bytes"] == 1536 and j["mode"] == "0640"
    assert stat.S_IMODE(os.stat("/dev/shm/" + r).st_mode) == 0o640
    z = names("zero")
    j = json.loads(run("create", z, "--dtype", "f8", "--shape", "()", "--json", check=0).out)
    assert j["shape"] == [] and j["data_bytes"] == 8
    # A generated name is printed and valid.
    j = json.loads(run("create", "--bits", "100", "--json", check=0).out)
    names_made = j["name"]
    assert os.path.exists("/dev/shm/" + names_made)
    run("rm", names_made, check=0)
    # An existing name is refused; the segment is untouched.
    assert "already exists" in run("create", n, "--bits", "5", check=1).err
    assert json.loads(run("info", "--json", n, check=0).out)["bits"] == 1 << 20


def test_no_space_is_a_clear_error(names):
    n = names("huge")
    p = run("create", n, "--size", "1T", check=1)
    assert "no space left in shared memory" in p.err
    assert not os.path.exists("/dev/shm/" + n)


def test_foreign_corrupt_symlink(names):
    f, c, l = names("foreign"), names("corrupt"), names("link")
    with open("/dev/shm/" + f, "wb") as fh:
        fh.write(b"not a segment" * 100)
    run("create", c, "--size", "100", check=0)
    with open("/dev/shm/" + c, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xff")
    os.symlink("/etc/passwd", "/dev/shm/" + l)

    assert "not a shmkit segment" in run("info", f, check=1).err
    assert "checksum" in run("info", c, check=1).err
    assert "symbolic link" in run("info", l, check=1).err
    # ls reports the damaged one on stderr, skips the foreign ones, does not fail.
    p = run("ls", check=0)
    assert f not in p.out and c not in p.out and l not in p.out
    assert "warning: %s: segment header checksum mismatch" % c in p.err
    assert f not in p.err
    p = run("ls", "--all", check=0)
    assert "skipped %s: not a shmkit segment" % f in p.err
    j = json.loads(run("ls", "--json", check=0).out)
    skipped = {s["name"]: s for s in j["skipped"]}
    assert skipped[c]["damaged"] is True and skipped[f]["damaged"] is False
    # rm refuses foreign entries unless forced; damaged segments are ours.
    assert "not a shmkit segment" in run("rm", f, l, check=1).err
    assert os.path.exists("/dev/shm/" + f) and os.path.lexists("/dev/shm/" + l)
    run("rm", c, check=0)
    run("rm", "--force", f, l, check=0)
    assert not os.path.lexists("/dev/shm/" + f) and not os.path.lexists("/dev/shm/" + l)
    assert os.path.exists("/etc/passwd")


@pytest.mark.parametrize("dtype", DTYPES)
def test_import_export_roundtrip(tmp_path, names, dtype):
    rng = np.random.default_rng(1)
    if dtype == "bool":
        a = rng.integers(0, 2, size=(17, 5)).astype(bool)
    elif dtype.startswith("float"):
        a = rng.standard_normal((17, 5)).astype(dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, size=(17, 5), dtype=dtype, endpoint=True)
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, a)
    n = names("rt")
    run("import", n, src, check=0)
    j = json.loads(run("info", "--json", n, check=0).out)
    assert j["dtype"] == dtype and j["shape"] == [17, 5]
    run("export", n, dst, check=0)
    b = np.load(dst)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert dst.read_bytes() == src.read_bytes()     # byte-identical to numpy.save


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 0, 4), (2, 3, 4, 5), (1,) * 32])
def test_import_export_shapes(tmp_path, names, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, a)
    n = names("shape")
    run("import", n, src, check=0)
    run("export", n, dst, check=0)
    b = np.load(dst)
    assert b.shape == shape
    np.testing.assert_array_equal(a, b)
    strides = json.loads(run("info", "--json", n, check=0).out)
    assert strides["shape"] == list(shape)


def test_import_versions_and_stdin(tmp_path, names):
    a = np.arange(1000, dtype="<f8").reshape(10, 100)
    for version in [(1, 0), (2, 0), (3, 0)]:
        f = tmp_path / ("v%d.npy" % version[0])
        with open(f, "wb") as fh:
            np.lib.format.write_array(fh, a, version=version)
        n = names("ver")
        run("import", n, f, check=0)
        out = tmp_path / "out.npy"
        run("export", n, out, check=0)
        np.testing.assert_array_equal(np.load(out), a)
    n = names("stdin")
    run("import", n, "-", input=(tmp_path / "v2.npy").read_bytes(), check=0)
    p = run("export", n, "-", check=0)
    f = tmp_path / "stdout.npy"
    f.write_bytes(p.stdout)
    np.testing.assert_array_equal(np.load(f), a)


def test_import_fortran_1d_is_c_order(tmp_path, names):
    f = tmp_path / "f.npy"
    np.save(f, np.asfortranarray(np.arange(10, dtype=np.int16)))
    n = names("f1")
    run("import", n, f, check=0)


@pytest.mark.parametrize("array,message", [
    (np.array([1, "a", None], dtype=object), "object arrays"),
    (np.arange(12, dtype=">i4").reshape(3, 4), "big-endian"),
    (np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)), "Fortran-order"),
    (np.arange(4, dtype=np.complex128), "unsupported dtype '<c16'"),
    (np.zeros(3, dtype=[("x", "<i4"), ("y", "<f8")]), "structured dtypes"),
    (np.zeros(3, dtype="<U4"), "unsupported dtype '<U4'"),
    (np.zeros(3, dtype=np.float16), "unsupported dtype '<f2'"),
])
def test_import_refuses_unsupported(tmp_path, names, array, message):
    f = tmp_path / "bad.npy"
    np.save(f, array, allow_pickle=True)
    n = names("bad")
    p = run("import", n, f, check=1)
    assert message in p.err
    assert len(p.err.strip().splitlines()) == 1
    assert not os.path.exists("/dev/shm/" + n)


def test_import_truncated_and_garbage(tmp_path, names):
    a = np.arange(1000, dtype=np.int64)
    f = tmp_path / "t.npy"
    np.save(f, a)
    data = f.read_bytes()
    n = names("trunc")
    for cut in (len(data) - 1, 200, 60, 11, 5, 0):
        f.write_bytes(data[:cut])
        p = run("import", n, f, check=1)
        assert p.err.startswith("shmkit import: ")
        assert len(p.err.strip().splitlines()) == 1
        assert not os.path.exists("/dev/shm/" + n)
    f.write_bytes(data[:len(data) - 8])
    assert "truncated file: 7992 bytes of data, expected 8000" in run("import", n, f, check=1).err
    f.write_bytes(b"hello world, not numpy at all" * 10)
    assert "not a .npy file" in run("import", n, f, check=1).err
    assert "No such file" in run("import", n, tmp_path / "missing.npy", check=1).err
    # A damaged dict.
    bad = bytearray(data)
    bad[20:26] = b"xxxxxx"
    f.write_bytes(bytes(bad))
    assert "malformed .npy header" in run("import", n, f, check=1).err
    assert not os.path.exists("/dev/shm/" + n)


def test_import_existing_name_refused(tmp_path, names):
    f = tmp_path / "a.npy"
    np.save(f, np.ones(3))
    n = names("dupe")
    run("create", n, "--size", "10", check=0)
    assert "already exists" in run("import", n, f, check=1).err
    assert json.loads(run("info", "--json", n, check=0).out)["kind"] == "raw"


def test_export_bits_and_raw(tmp_path, names):
    b = names("bexp")
    run("create", b, "--bits", "77", check=0)
    out = tmp_path / "b.npy"
    run("export", b, out, check=0)
    packed = np.load(out)
    assert packed.dtype == np.uint8 and packed.shape == (10,)
    assert np.unpackbits(packed, bitorder="little")[:77].sum() == 0
    r = names("rexp")
    run("create", r, "--size", "5000", check=0)
    run("export", r, out, check=0)
    raw = np.load(out)
    assert raw.dtype == np.uint8 and raw.shape == (5000,) and not raw.any()


def test_export_failure_keeps_existing_file(tmp_path, names):
    out = tmp_path / "keep.npy"
    out.write_bytes(b"precious")
    assert "no such segment" in run("export", names("nope"), out, check=1).err
    assert out.read_bytes() == b"precious"
    n = names("exists")
    run("create", n, "--size", "10", check=0)
    assert "No such file or directory" in run("export", n, "/nonexistent/dir/x.npy", check=1).err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.npy"]


def shm_entries(prefix):
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))


def test_demo_small_one_copy():
    p = run("demo", "--size", "64M", "--workers", "4", "--json", check=0)
    d = json.loads(p.out)
    assert d["results_ok"] is True
    assert d["data_bytes"] == 64 << 20 and d["workers"] == 4
    for key in ("attach_us_median", "attach_us_max", "fill_seconds", "scan_seconds", "scan_gbps",
                "pss_workers_bytes", "pss_total_bytes", "page_tables_bytes", "memread_gbps"):
        assert d[key] > 0, key
    # One copy of the data for the whole process tree, not one per worker.
    assert d["data_bytes"] * 0.95 <= d["pss_total_bytes"] <= d["data_bytes"] * 1.15
    assert d["pss_workers_bytes"] <= d["pss_total_bytes"]
    assert d["copy_would_cost_bytes"] == 5 * d["data_bytes"]
    assert "copy_pss_total_bytes" not in d
    # A fresh worker's cold read, with the default pages (2 MiB where the kernel allows) and 4 KiB pages.
    assert d["cold_scan_bytes"] == d["data_bytes"] and d["cold_scan_gbps"] > 0 and d["warm_scan_gbps"] > 0
    assert d["cold_scan_gbps_4k"] > 0 and d["warm_scan_gbps_4k"] > 0
    assert d["cold_page_size"] in (4096, 2 << 20) and d["page_tables_cold_bytes_4k"] > 0
    statuses = ("all", "partial", "refused", "small", "opted_out", "hugetlb")
    assert d["page_size"] in (4096, 2 << 20) and d["huge_status"] in statuses and d["cold_huge_status"] in statuses
    assert "filling: 100%" in p.err                  # plain progress lines when not a terminal
    assert shm_entries("shmkit-demo-") == []


def test_demo_copy_baseline_side_by_side():
    d = json.loads(run("demo", "--size", "16M", "--workers", "3", "--baseline", "copy", "--json",
                       check=0).out)
    assert d["results_ok"] is True
    # Three private copies plus the original, against one shared copy.
    assert d["copy_pss_total_bytes"] >= 3.5 * d["data_bytes"]
    assert d["copy_pss_total_bytes"] >= 3 * d["pss_total_bytes"]
    assert d["copy_seconds"] > 0
    assert shm_entries("shmkit-demo-") == []


def test_demo_refuses_copy_that_does_not_fit():
    p = run("demo", "--size", "512G", "--workers", "12", "--baseline", "copy", check=1)
    assert "copy baseline needs 12 x 512 GiB" in p.err
    assert shm_entries("shmkit-demo-") == []
    # auto: a note, then the shmkit run alone (here failing for space: 256 GiB).
    p = run("demo", "--size", "256G", "--workers", "2", "--baseline", "auto", check=1)
    assert "skipping the copy baseline" in p.err
    assert "no space left in shared memory" in p.err
    assert shm_entries("shmkit-demo-") == []


def test_demo_usage_errors():
    assert run("demo", "--workers", "0", check=2)
    assert run("demo", "--workers", "x", check=2)
    assert run("demo", "--baseline", "fast", check=2)
    assert run("demo", "--size", "100", check=2)
    assert "at most 512G" in run("demo", "--size", "1T", check=2).err
    assert run("demo", "extra", check=2)
    assert run("demo", "--help", check=0).out.startswith("usage: shmkit demo")


def test_demo_keep_then_gc():
    p = run("demo", "--size", "1M", "--workers", "2", "--keep", check=0)
    line = [l for l in p.out.splitlines() if l.startswith("segments")][0]
    kept = line.split()[1:5]
    assert len(kept) == 4 and shm_entries("shmkit-demo-") == sorted(kept)
    # The demo's segments are owned by the demo, which has exited: gc takes them.
    info = run("info", kept[0], check=0).out
    assert "lifetime: owned: the name goes once pid" in info
    assert json.loads(run("info", "--json", kept[0], check=0).out)["owned"] is True
    dry = json.loads(run("gc", "--dry-run", "--json", check=0).out)
    assert dry["dry_run"] is True
    assert sorted(r["name"] for r in dry["removed"] if r["name"] in kept) == sorted(kept)
    assert shm_entries("shmkit-demo-") == sorted(kept)
    text = run("gc", check=0).out
    for name in kept:
        assert "removed %s: " % name in text
    assert shm_entries("shmkit-demo-") == []
    assert "Persistent segments\nare never touched" in run("gc", "--help", check=0).out
    assert run("gc", "extra", check=2)


def test_gc_leaves_persistent_segments(names):
    n = names("persist")
    run("create", n, "--size", "100", check=0)    # its creator, the command, has exited
    assert "lifetime: persistent" in run("info", n, check=0).out
    run("gc", check=0)
    assert os.path.exists("/dev/shm/" + n)


def test_demo_interrupted_leaves_nothing():
    import signal
    import subprocess
    import time
    proc = subprocess.Popen([BIN_PATH(), "demo", "--size", "2G", "--workers", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = "shmkit-demo-%d-" % proc.pid
    deadline = time.time() + 30
    while not shm_entries(prefix) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    assert shm_entries(prefix), "the demo never created its segments"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == -signal.SIGINT
    time.sleep(0.2)
    assert shm_entries(prefix) == []


def BIN_PATH():
    from conftest import BIN
    return BIN


def test_ls_and_info_show_lock_state(names):
    import subprocess
    helper = os.environ.get("SHMKIT_MAKE_LOCKS") or os.path.join(os.path.dirname(BIN_PATH()), "make_locks")
    prefix = names("locks")
    kinds = ["mutex", "rwlock", "sem", "barrier", "event", "cond", "value", "larray", "queue"]
    made = [prefix + "-" + k for k in kinds]
    try:
        holder = int(subprocess.run([helper, prefix], capture_output=True, check=True).stdout)
        segs = {s["name"]: s for s in json.loads(run("ls", "--json", check=0).out)["segments"]}
        m = segs[prefix + "-mutex"]
        assert m["kind"] == "mutex"
        assert m["lock"]["held"] is True and m["lock"]["owner_pid"] == holder
        assert m["lock"]["owner_alive"] is False and m["lock"]["recoverable"] is True
        assert "dead: the next locker recovers it" in m["state"]
        assert segs[prefix + "-rwlock"]["state"] == "free"
        assert segs[prefix + "-sem"]["lock"]["count"] == 2 and segs[prefix + "-sem"]["lock"]["limit"] == 5
        assert segs[prefix + "-sem"]["state"] == "count 2 of at most 5"
        assert segs[prefix + "-barrier"]["state"] == "0 of 3 parties waiting"
        assert segs[prefix + "-event"]["state"] == "set"
        v = segs[prefix + "-value"]
        assert v["kind"] == "value" and v["dtype"] == "int64" and v["locked"] is True
        assert v["state"] == "42, lock free"
        assert segs[prefix + "-larray"]["locked"] is True
        qj = json.loads(run("info", "--json", prefix + "-queue", check=0).out)
        assert qj["kind"] == "queue" and qj["queue"]["messages"] == 3 and qj["queue"]["capacity"] == 65536
        assert qj["queue"]["used"] == 48 and qj["queue"]["waiting_consumers"] == 0
        assert qj["state"] == "3 messages, 48 B of 64.0 KiB used"
        assert "waiting:  0 producers, 0 consumers" in run("info", prefix + "-queue", check=0).out
        text = run("ls", check=0).out
        row = [l for l in text.splitlines() if l.startswith(prefix + "-mutex ")][0]
        assert "held by pid %d (dead" % holder in row
        info = run("info", prefix + "-value", check=0).out
        assert "value:    42, lock free" in info and "int64 (with a lock)" in info
        assert "state:    count 2 of at most 5" in run("info", prefix + "-sem", check=0).out
        assert "lock:     yes" in run("info", prefix + "-larray", check=0).out
        j = json.loads(run("info", "--json", prefix + "-mutex", check=0).out)
        assert j["lock"]["owner_pid"] == holder
    finally:
        for n in made:
            if os.path.exists("/dev/shm/" + n):
                os.unlink("/dev/shm/" + n)


def test_freeze(tmp_path, names):
    n = names("frz")
    f = tmp_path / "a.npy"
    np.save(f, np.arange(10, dtype=np.int16))
    run("import", n, f, check=0)
    assert json.loads(run("info", "--json", n, check=0).out)["frozen"] is False
    run("freeze", n, check=0)
    assert json.loads(run("info", "--json", n, check=0).out)["frozen"] is True
    assert "frozen:   yes" in run("info", n, check=0).out
    out = tmp_path / "b.npy"
    run("export", n, out, check=0)              # read-only opens still work
    np.testing.assert_array_equal(np.load(out), np.arange(10, dtype=np.int16))
    assert "is frozen" in run("freeze", n, check=1).err
    assert "no such segment" in run("freeze", names("nothere"), check=1).err
    assert run("freeze", check=2)


def shmem_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Shmem:"):
                return int(line.split()[1])
    return -1


def test_demo_anonymous_names_nothing():
    before = sorted(os.listdir("/dev/shm"))
    d = json.loads(run("demo", "--anonymous", "--size", "64M", "--workers", "3", "--json", check=0).out)
    assert d["results_ok"] is True and d["anonymous"] is True
    assert d["data_bytes"] * 0.95 <= d["pss_total_bytes"] <= d["data_bytes"] * 1.15
    assert d["attach_us_max"] == 0          # inherited, not attached
    assert sorted(os.listdir("/dev/shm")) == before
    assert "--keep needs named segments" in run("demo", "--anonymous", "--keep", check=2).err


def test_demo_anonymous_killed_leaves_nothing():
    import signal
    import subprocess
    import time
    before = sorted(os.listdir("/dev/shm"))
    base = shmem_kib()
    proc = subprocess.Popen([BIN_PATH(), "demo", "--anonymous", "--size", "1G", "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while shmem_kib() - base < 900 * 1024 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    assert proc.poll() is None and shmem_kib() - base >= 900 * 1024, "the demo never held its 1 GiB"
    proc.send_signal(signal.SIGKILL)       # no handler runs: only the kernel cleans up
    proc.wait(timeout=30)
    deadline = time.time() + 10
    while shmem_kib() - base > 100 * 1024 and time.time() < deadline:
        time.sleep(0.02)
    assert shmem_kib() - base <= 100 * 1024   # the workers died with it and the memory is back
    assert sorted(os.listdir("/dev/shm")) == before
