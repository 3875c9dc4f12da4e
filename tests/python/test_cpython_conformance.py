"""CPython 3.11's own multiprocessing tests, run against shmkit.

tests/python/cpython_mp_runner.py runs the test classes of
Lib/test/_test_multiprocessing.py (Debian's libpython3.11-testsuite) for the
primitives shmkit replaces, with shmkit's classes substituted, under fork and
spawn. Every test passes except the ones listed here, each with its reason:

- EXCLUDED: tests that read or patch CPython's private attributes, that run
  CPython's own class in a child interpreter (nothing of shmkit's is under
  test), or that check one of the deliberate differences documented in
  docs/python.md ("Where shmkit differs from multiprocessing").
- PENDING (empty now): tests that need a C API another branch is still
  building. They must fail; when one passes, this test fails and asks for it
  to be taken off the list.
"""
import json
import os
import subprocess
import sys

import pytest

import shmkit

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = "/usr/lib/python3.%d/test/_test_multiprocessing.py" % sys.version_info[1]

PRIVATE = "reads or patches CPython's private attributes"
EXCLUDED = {
    "WithTestSharedMemory.test_shared_memory_basics":
        PRIVATE + " (mocks multiprocessing.shared_memory._make_filename; _SHM_NAME_PREFIX, _USE_POSIX, _flags, "
        "_name); its public checks are in test_shared_memory.py",
    "WithTestSharedMemory.test_shared_memory_recreate": PRIVATE + " (_make_filename, _SHM_NAME_PREFIX, _name)",
    "WithTestSharedMemory.test_shared_memory_SharedMemoryServer_ignores_sigint":
        PRIVATE + " (smm._process) and a deliberate difference: shmkit's SharedMemoryManager has no server process",
    "WithTestSharedMemory.test_shared_memory_SharedMemoryManager_reuses_resource_tracker":
        "runs CPython's own SharedMemoryManager in a child interpreter (nothing of shmkit's is under test); "
        "shmkit has no resource tracker",
    "WithTestSharedMemory.test_shared_memory_cleaned_after_process_termination":
        "creates the segment with CPython's own SharedMemory in a child interpreter and checks its resource "
        "tracker's warning; shmkit's crash cleanup is tested in test_shared_memory.py",
    "WithTestCondition.test_notify": PRIVATE + " (cond._sleeping_count, _woken_count, _wait_semaphore)",
    "WithTestCondition.test_notify_all": PRIVATE + " (cond._sleeping_count, _woken_count, _wait_semaphore)",
    "WithTestCondition.test_notify_n": PRIVATE + " (cond._sleeping_count, _woken_count, _wait_semaphore)",
    "WithTestQueue.test_queue_feeder_donot_stop_onexc":
        "deliberate difference: put() serialises in the caller (no feeder thread), so an object that cannot "
        "be pickled raises at put() instead of being logged and dropped",
    "TestSimpleQueue.test_closed": PRIVATE + " (queue._reader, queue._writer)",
}

PENDING: dict = {}


@pytest.mark.skipif(not os.path.exists(SUITE), reason="CPython's test suite is not installed (Debian: "
                    "libpython3.11-testsuite, installed by scripts/deps.sh test)")
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_cpython_multiprocessing_suite(method, tmp_path):
    excl = tmp_path / "excluded"
    excl.write_text("\n".join(EXCLUDED) + "\n")
    out = tmp_path / "outcomes.json"
    env = dict(os.environ)
    env["SHMKIT_CONFORMANCE_VERBOSE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(  # absolute: the runner works in its own directory
        [os.path.dirname(os.path.dirname(os.path.abspath(shmkit.__file__)))] +
        [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # The runner's children import it as __mp_main__: run it from a directory of its own.
    r = subprocess.run([sys.executable, os.path.join(HERE, "cpython_mp_runner.py"), method, "--json", str(out),
                        "--exclude", str(excl)], cwd=str(tmp_path), capture_output=True, text=True,
                       timeout=900, env=env)
    assert out.exists(), (r.returncode, r.stdout[-3000:], r.stderr[-5000:])
    outcomes = json.loads(out.read_text())
    failed = sorted(t for t, o in outcomes.items() if o in ("FAIL", "ERROR") and t not in PENDING)
    now_passing = sorted(t for t in PENDING if outcomes.get(t) == "PASS")
    missing = sorted(t for t in list(EXCLUDED) + list(PENDING) if t not in outcomes)
    counts = {o: sum(1 for v in outcomes.values() if v == o) for o in ("PASS", "FAIL", "ERROR", "SKIP", "EXCLUDED")}
    print("%s: %d passed, %d pending (failing, listed), %d skipped by CPython's own conditions, %d excluded, "
          "of %d" % (method, counts["PASS"], len(PENDING) - len(now_passing), counts["SKIP"], counts["EXCLUDED"],
                     len(outcomes)))
    assert not failed, "failed: %s\n%s" % (failed, r.stderr[-6000:])
    assert not now_passing, "these pass now: take them off PENDING: %s" % now_passing
    assert not missing, "listed but not run (renamed in CPython?): %s" % missing
    assert counts["PASS"] >= 50, counts
