"""shmkit.cluster (Python, on mpi4py) under mpirun: tests/cluster/py_ranks.py
in the Open MPI topologies of cluster/launch.py (Debian's mpi4py is built on
Open MPI), a stopped rank, and examples/python/cluster_seed.py. Every job
runs under a timeout and must leave nothing in /dev/shm. CTest runs it with
PYTHONPATH naming the build's Python package.
"""
import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "cluster"))
import launch  # noqa: E402

PY = "/usr/bin/python3"
RANKS = os.path.join(ROOT, "tests", "cluster", "py_ranks.py")


@pytest.fixture
def no_leftovers():
    before = set(launch.shm_names())
    yield
    left = set(launch.shm_names()) - before
    assert not left, "left in /dev/shm: %s" % sorted(left)


@pytest.fixture
def results(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    return str(d)


def reports(d):
    text = ""
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name)) as f:
            text += f.read()
    return text


def env(results, **extra):
    e = {"PYTHONPATH": os.environ.get("PYTHONPATH", os.path.join(ROOT, "build", "python")),
         "SHMKIT_TEST_RESULTS": results, "SHMKIT_TEST_TMP": os.environ.get("TMPDIR", "/tmp")}
    e.update(extra)
    return e


@pytest.mark.parametrize("topology", ["openmpi-pseudo", "openmpi-hosts", "openmpi-three", "openmpi-single"])
def test_suite(topology, results, no_leftovers):
    t = launch.TOPOLOGIES[topology]
    job = launch.run_job(topology, [PY, RANKS, "suite"], timeout=300, extra_env=env(results))
    assert len(set(re.findall(r"rank (\d+): all passed", reports(results)))) == t["n"], (reports(results), job)
    assert job.returncode == 0 and not job.note, job


def test_stopped_leader(results, no_leftovers):
    """The leader of the last node stops: every other rank raises
    ClusterTimeout within the deadline (2 s)."""
    t = launch.TOPOLOGIES["openmpi-hosts"]
    job = launch.run_job("openmpi-hosts", [PY, RANKS, "stop"], timeout=60,
                         extra_env=env(results, SHMKIT_CLUSTER_DEADLINE_MS="2000"),
                         done=lambda out: len(os.listdir(results)) >= t["n"] - 1, finalize_grace=5)
    got = {int(r): (float(s), int(c)) for r, s, c in
           re.findall(r"rank (\d+): failed after ([\d.]+) s: code (-?\d+)", reports(results))}
    victim = int(re.search(r"victim rank (\d+)", job.out).group(1))
    assert sorted(got) == sorted(set(range(t["n"])) - {victim}), (got, job)
    for seconds, code in got.values():
        assert code == -1101 and 1.95 <= seconds <= 4.5, (got, job)


@pytest.mark.parametrize("topology", ["openmpi-hosts", "openmpi-pseudo"])
def test_example(topology, results, no_leftovers):
    t = launch.TOPOLOGIES[topology]
    argv = [PY, os.path.join(ROOT, "examples", "python", "cluster_seed.py"), "--bits", str(1 << 24),
            "--values", str(1 << 20)]
    if t["rpn"]:
        argv += ["--ranks-per-node", str(t["rpn"])]
    job = launch.run_job(topology, argv, timeout=180, extra_env=env(results))
    assert job.returncode == 0 and "counters agree: ok" in job.out, job
    ratios = re.findall(r"\(PSS, ([\d.]+)x\)", job.out)
    assert len(ratios) == 2 and all(0.95 <= float(r) <= 1.05 for r in ratios), job
