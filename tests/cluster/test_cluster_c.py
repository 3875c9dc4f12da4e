"""libshmkit_mpi under mpirun: the cmocka suite (test_cluster.c) in every
topology of cluster/launch.py, the example, and failures (cluster_fail.c):
a stopped rank, a stuck leader, a rank killed mid-run, ranks killed at random
moments while objects are made. Every job runs under a timeout, with at most
4 ranks and 64 MiB of segments, and must leave nothing in /dev/shm.

CTest runs this file once per MPI (-k openmpi, -k mpich), with
SHMKIT_CLUSTER_BUILD naming the build tree.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "cluster"))
import launch  # noqa: E402

BUILD = os.environ.get("SHMKIT_CLUSTER_BUILD", os.path.join(ROOT, "build"))
DEADLINE_S = 2.0


def prog(mpi, name):
    path = os.path.join(BUILD, "cluster", mpi, name)
    assert os.path.exists(path), "%s is not built (make)" % path
    return path


def sanitizer_env():
    """Under SANITIZE=1 the programs carry ASan; MPI's own allocations that
    live until exit are not leaks of ours (tests/cluster/lsan.supp)."""
    if os.environ.get("SHMKIT_SANITIZE") not in ("1", "ON", "TRUE"):
        return {}
    return {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:fast_unwind_on_malloc=0",
            # Open MPI unloads its components at MPI_Finalize: their frames could not be named.
            "OMPI_MCA_mca_base_component_disable_dlclose": "1",
            "LSAN_OPTIONS": "suppressions=%s:print_suppressions=0" % os.path.join(ROOT, "tests", "cluster",
                                                                                    "lsan.supp"),
            # UCX replaces malloc and mmap hooks, which ASan must own.
            "UCX_MEM_MALLOC_HOOKS": "no", "UCX_MEM_MMAP_HOOK_MODE": "none"}


@pytest.fixture
def no_leftovers():
    """Nothing the test made may stay in /dev/shm."""
    before = set(launch.shm_names())
    yield
    left = set(launch.shm_names()) - before
    assert not left, "left in /dev/shm: %s" % sorted(left)


@pytest.fixture
def results(tmp_path):
    """A directory where each rank writes its result (rank-N): launchers may
    lose a rank's last line of output when a job ends."""
    d = tmp_path / "results"
    d.mkdir()
    return str(d)


def reports(d):
    """The ranks' result files, joined."""
    text = ""
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name)) as f:
            text += f.read()
    return text


def count_reports(d, pattern):
    return len(set(re.findall(pattern, reports(d))))


SUITE = ["openmpi-pseudo", "openmpi-hosts", "openmpi-three", "openmpi-single", "mpich-pseudo", "mpich-tcp"]


@pytest.mark.parametrize("topology", SUITE)
def test_suite(topology, no_leftovers, results):
    t = launch.TOPOLOGIES[topology]
    env = dict(sanitizer_env(), SHMKIT_TEST_TMP=os.environ.get("TMPDIR", "/tmp"), SHMKIT_TEST_RESULTS=results)
    job = launch.run_job(topology, [prog(t["mpi"], "test_cluster")], timeout=300, extra_env=env,
                         done=lambda out: count_reports(results, r"rank (\d+): all passed") >= t["n"],
                         finalize_grace=10 if t.get("tcp") else None)
    assert count_reports(results, r"rank (\d+): all passed") == t["n"], job
    if job.note:
        # Only the known MPICH 4.0.2 + UCX/TCP hang in MPI_Finalize may end a job.
        assert t.get("tcp") and "MPI_Finalize" in job.note, job
        print("note: %s" % job.note)
    else:
        assert job.returncode == 0, job


@pytest.mark.parametrize("topology", ["openmpi-hosts", "openmpi-pseudo", "mpich-pseudo"])
def test_example(topology, no_leftovers):
    """The seed problem at cluster scale, small: 4 ranks over 2 nodes."""
    t = launch.TOPOLOGIES[topology]
    argv = [prog(t["mpi"], "example_cluster_seed"), "--bits", str(1 << 24), "--values", str(1 << 20)]
    if t["rpn"]:
        argv += ["--ranks-per-node", str(t["rpn"])]
    job = launch.run_job(topology, argv, timeout=180, extra_env=sanitizer_env())
    assert job.returncode == 0, job
    assert "counters agree: ok" in job.out, job
    nodes = re.findall(r"node (\d+): (\d+) ranks hold ([\d.]+) MiB of replicated data in ([\d.]+) MiB \(PSS, ([\d.]+)x\)",
                       job.out)
    assert len(nodes) == 2, job
    for _, nranks, _, _, ratio in nodes:
        assert int(nranks) == 2
        assert 0.95 <= float(ratio) <= 1.05, job


def failure_lines(d):
    """{rank: (seconds, code)} of the survivors' reports in directory d."""
    return {int(r): (float(s), int(c)) for r, s, c in re.findall(r"rank (\d+): failed after ([\d.]+) s: code (-?\d+)",
                                                                   reports(d))}


def victim_of(out):
    return int(re.search(r"victim rank (\d+)", out).group(1))


# SIGSTOP keeps the victim alive, so no launcher notices: only the deadline
# can end the others' waits.
@pytest.mark.parametrize("topology,role", [("openmpi-hosts", "leader"), ("openmpi-hosts", "member"),
                                           ("openmpi-pseudo", "leader"), ("mpich-pseudo", "member"),
                                           ("mpich-tcp", "leader")])
def test_stopped_rank(topology, role, no_leftovers, results):
    t = launch.TOPOLOGIES[topology]
    env = dict(sanitizer_env(), SHMKIT_CLUSTER_DEADLINE_MS=str(int(DEADLINE_S * 1000)), SHMKIT_TEST_RESULTS=results)
    job = launch.run_job(topology, [prog(t["mpi"], "cluster_fail"), "stop", role], timeout=60, extra_env=env,
                         done=lambda out: len(failure_lines(results)) >= t["n"] - 1, finalize_grace=5)
    got = failure_lines(results)
    victim = victim_of(job.out)
    assert victim not in got, job
    assert sorted(got) == sorted(set(range(t["n"])) - {victim}), job
    for rank, (seconds, code) in got.items():
        assert code == -1101, job  # SK_ECLUSTER_TIMEOUT
        assert DEADLINE_S - 0.05 <= seconds <= DEADLINE_S + 2.5, job
    assert "did not answer within the cluster deadline" in reports(results)


@pytest.mark.parametrize("topology", ["openmpi-hosts", "mpich-pseudo"])
def test_stuck_leader(topology, no_leftovers, results):
    """Inline serving: a leader computing outside the library for three
    deadlines; rank 0's gather from its node fails after one."""
    t = launch.TOPOLOGIES[topology]
    env = dict(sanitizer_env(), SHMKIT_CLUSTER_DEADLINE_MS=str(int(DEADLINE_S * 1000)), SHMKIT_TEST_RESULTS=results)
    job = launch.run_job(topology, [prog(t["mpi"], "cluster_fail"), "stuck"], timeout=60, extra_env=env,
                         done=lambda out: len(failure_lines(results)) >= t["n"], finalize_grace=5)
    got = failure_lines(results)
    assert sorted(got) == list(range(t["n"])), job
    seconds, code = got[0]
    assert code == -1101, job
    assert DEADLINE_S - 0.05 <= seconds <= DEADLINE_S + 1.5, job
    # The stuck leader learns of it only once back in the library.
    assert got[victim_of(job.out)][0] >= 3 * DEADLINE_S, job


@pytest.mark.parametrize("topology,role,recovery", [
    ("openmpi-hosts", "leader", False), ("openmpi-hosts", "member", False),
    ("openmpi-hosts", "leader", True), ("openmpi-pseudo", "member", True),
    ("mpich-pseudo", "leader", False), ("mpich-tcp", "member", False)])
def test_killed_rank(topology, role, recovery, no_leftovers, results):
    """A rank SIGKILLed mid-run. By default the launcher ends the job at once
    (fail-stop); with Open MPI's --enable-recovery it lets the others run,
    and they must fail with SK_ECLUSTER_TIMEOUT within the deadline. Either
    way the job ends, and nothing is left in /dev/shm."""
    t = launch.TOPOLOGIES[topology]
    env = dict(sanitizer_env(), SHMKIT_CLUSTER_DEADLINE_MS=str(int(DEADLINE_S * 1000)), SHMKIT_TEST_RESULTS=results)
    job = launch.run_job(topology, [prog(t["mpi"], "cluster_fail"), "kill", role], timeout=60, extra_env=env,
                         mpirun_args=["--enable-recovery"] if recovery else [],
                         done=lambda out: len(failure_lines(results)) >= t["n"] - 1, finalize_grace=3)
    assert "timed out" not in job.note and "outlived" not in job.note, job
    # With --enable-recovery, Open MPI's exit status after MPI_Abort varies.
    assert job.returncode != 0 or job.note or recovery, job
    assert job.seconds < 30, job
    got = failure_lines(results)
    if recovery:
        assert sorted(got) == sorted(set(range(t["n"])) - {victim_of(job.out)}), job
        for seconds, code in got.values():
            assert seconds <= DEADLINE_S + 2.5, job
    # The deadline (SK_ECLUSTER_TIMEOUT), or MPI reporting the lost peer
    # (SK_ECLUSTER_MPI: UCX notices a closed TCP connection).
    for seconds, code in got.values():
        assert code in (-1101, -1102), job


@pytest.mark.parametrize("topology", ["openmpi-hosts", "mpich-pseudo"])
def test_killed_while_creating(topology):
    """Ranks SIGKILLed at random moments while objects are made, used and
    closed over and over: what may stay in /dev/shm is only a name whose
    creator is dead and which is owned, so shmkit gc removes it."""
    t = launch.TOPOLOGIES[topology]
    shmkit = os.path.join(BUILD, "shmkit")
    before = set(launch.shm_names())
    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    left_total = 0
    for round_ in range(4):
        state = {}

        def tick(out, seconds):
            pids = dict((int(r), int(p)) for r, p in re.findall(r"rank (\d+) pid (\d+) node", out))
            if len(pids) < t["n"]:
                return
            if "at" not in state:
                state["at"] = seconds + rng.uniform(0.2, 1.5)
                state["victim"] = rng.randrange(t["n"])
            if seconds >= state["at"] and "killed" not in state:
                try:
                    os.kill(pids[state["victim"]], signal.SIGKILL)
                except ProcessLookupError:
                    pass
                state["killed"] = seconds

        job = launch.run_job(topology, [prog(t["mpi"], "cluster_fail"), "churn"], timeout=60, tick=tick,
                             extra_env=dict(sanitizer_env(), SHMKIT_CLUSTER_DEADLINE_MS="3000"))
        assert "killed" in state, job
        assert "timed out" not in job.note and "outlived" not in job.note and job.returncode != 0, job
        left = sorted(set(launch.shm_names()) - before)
        for name in left:
            info = subprocess.run([shmkit, "info", "--json", name], capture_output=True, text=True)
            assert info.returncode == 0, info.stderr
            meta = json.loads(info.stdout)
            who = subprocess.run(["ps", "-o", "pid,stat,lstart,args", "-p", str(meta["creator_pid"])],
                                 capture_output=True, text=True).stdout
            assert meta["owned"] and not meta["creator_alive"], (name, meta, who, job)
        left_total += len(left)
        gc = subprocess.run([shmkit, "gc"], capture_output=True, text=True)
        assert gc.returncode == 0, gc.stderr
        assert sorted(set(launch.shm_names()) - before) == [], "gc left %s" % left
    print("names left by killed jobs, all removed by gc: %d in 4 rounds" % left_total)

