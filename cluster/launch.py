"""Runs MPI jobs of several "nodes" on one machine, for shmkit's cluster tests
and benchmark (tests/cluster/, bench/cluster_run.py). Not part of the library.

Topologies (name: what it is):
  openmpi-pseudo  Open MPI, 4 ranks on this box, split into pseudo-nodes of 2
                  ranks by the library (ranks_per_node=2); MPI moves data
                  between them through its shared-memory transport.
  openmpi-hosts   Open MPI, 2 fake hosts of 2 ranks: a hostfile of 127.0.0.2
                  and 127.0.0.3, and an rsh agent that starts Open MPI's daemon
                  here under `unshare --uts` with the hostname fakeNNN (no
                  dots: Open MPI cuts a hostname at its first dot), so
                  MPI_COMM_TYPE_SHARED splits by fake host and traffic between
                  hosts goes over TCP on the loopback interface.
  openmpi-three   Open MPI, 3 ranks, one node each (ranks_per_node=1): uneven
                  partitions.
  openmpi-single  openmpi-pseudo with MPI_THREAD_SINGLE: the leaders serve inline.
  mpich-pseudo    MPICH, 4 ranks in pseudo-nodes of 2.
  mpich-tcp       MPICH, 4 ranks, each its own node (MPIR_CVAR_NOLOCAL=1), all
                  traffic through UCX over TCP on lo (UCX_TLS=tcp,self).

MPICH 4.0.2 with UCX over TCP hangs in MPI_Finalize in about half the runs,
even for a program that only calls MPI_Init and MPI_Finalize (seen here);
run_job(finalize_grace=...) ends such a job once every rank has reported its
result, and says so.

As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM); oversubscription
(4 ranks on 2 cores) is allowed through OMPI_MCA_rmaps_base_oversubscribe.
"""
import os
import select
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

AGENT = r"""#!/bin/sh
# mpirun's rsh agent for fake hosts: runs the command on this machine, in a
# new UTS namespace whose hostname is "fake" plus the host's digits.
host=$1
shift
exec unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "fake$(echo "$host" | tr -cd 0-9)" "$*"
"""

TOPOLOGIES = {
    "openmpi-pseudo": dict(mpi="openmpi", n=4, rpn=2, nodes=2),
    "openmpi-hosts": dict(mpi="openmpi", n=4, rpn=0, nodes=2, hosts=2),
    "openmpi-three": dict(mpi="openmpi", n=3, rpn=1, nodes=3),
    "openmpi-single": dict(mpi="openmpi", n=4, rpn=2, nodes=2, thread="single"),
    "mpich-pseudo": dict(mpi="mpich", n=4, rpn=2, nodes=2),
    "mpich-tcp": dict(mpi="mpich", n=4, rpn=0, nodes=4, tcp=True),
}


class FakeHosts:
    """A hostfile of loopback addresses and the rsh agent, in a temporary directory."""

    def __init__(self, hosts, slots):
        self.dir = tempfile.mkdtemp(prefix="skc-hosts-")
        self.agent = os.path.join(self.dir, "agent.sh")
        with open(self.agent, "w") as f:
            f.write(AGENT)
        os.chmod(self.agent, 0o755)
        self.hostfile = os.path.join(self.dir, "hosts")
        with open(self.hostfile, "w") as f:
            for h in range(hosts):
                f.write("127.0.0.%d slots=%d\n" % (h + 2, slots))

    def close(self):
        for name in ("agent.sh", "hosts"):
            try:
                os.unlink(os.path.join(self.dir, name))
            except OSError:
                pass
        os.rmdir(self.dir)


def mpirun_command(topology, argv, env_names=(), hosts=None, n=None):
    """The mpirun command line for a topology (a TOPOLOGIES key)."""
    t = TOPOLOGIES[topology]
    n = n or t["n"]
    if t["mpi"] == "openmpi":
        cmd = ["mpirun.openmpi", "-n", str(n), "--bind-to", "none"]
        for name in env_names:
            cmd += ["-x", name]
        if t.get("hosts"):
            cmd += ["--hostfile", hosts.hostfile, "--mca", "plm_rsh_agent", hosts.agent,
                    "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]
        return cmd + list(argv)
    return ["mpirun.mpich", "-n", str(n)] + list(argv)


def job_env(topology, extra=None):
    """The environment of a job: the MPI's own settings and the test's."""
    t = TOPOLOGIES[topology]
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1",
               # No warnings about the fork in a test, nor a message per rank for an abort.
               OMPI_MCA_mpi_warn_on_fork="0", OMPI_MCA_orte_base_help_aggregate="1",
               SHMKIT_TEST_RANKS_PER_NODE=str(t["rpn"]), SHMKIT_TEST_NODES=str(t["nodes"]))
    if t.get("thread"):
        env["SHMKIT_TEST_THREAD"] = t["thread"]
    if t.get("tcp"):
        env.update(MPIR_CVAR_NOLOCAL="1", UCX_TLS="tcp,self", UCX_NET_DEVICES="lo")
    if extra:
        env.update(extra)
    return env


class Job:
    """The outcome of run_job."""

    def __init__(self, cmd, returncode, out, err, seconds, note=""):
        self.cmd, self.returncode, self.out, self.err, self.seconds, self.note = cmd, returncode, out, err, seconds, note

    def __repr__(self):
        return "Job(rc=%s, %.1f s%s)\n--- stdout\n%s\n--- stderr\n%s" % (
            self.returncode, self.seconds, ", " + self.note if self.note else "", self.out[-6000:], self.err[-6000:])


def _job_pids(tag):
    """Processes whose environment carries the job's tag: its ranks and daemons."""
    pids = []
    needle = ("SKC_JOB_TAG=%s" % tag).encode()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % d, "rb") as f:
                if needle in f.read().split(b"\0"):
                    pids.append(int(d))
        except OSError:
            pass
    return pids


def _present(pids):
    """Those of pids that still exist, zombies included (a zombie's
    environment is gone, but shmkit counts it alive until it is reaped)."""
    return [p for p in pids if os.path.exists("/proc/%d" % p)]


def _reap(tag, seen, seconds):
    """Waits until no process of the job is left (those seen during the run
    and any carrying its tag); kills what remains after `seconds`. Returns how
    many had to be killed."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not _job_pids(tag) and not _present(seen):
            return 0
        time.sleep(0.05)
    left = set(_job_pids(tag)) | set(_present(seen))
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while (_job_pids(tag) or _present(seen)) and time.monotonic() < end + 5:
        time.sleep(0.05)
    return len(left)


def _kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_job(topology, argv, timeout=120, extra_env=None, done=None, finalize_grace=None, n=None,
            tick=None, mpirun_args=()):
    """Runs argv under mpirun in a topology; kills the whole process group at
    the timeout. done(stdout_so_far) -> bool says when every rank has
    reported; after that, finalize_grace seconds later, a job still running is
    ended (MPICH over UCX/TCP) and note says so. The job is over when none of
    its processes (found by a tag in their environment) is left. tick(stdout_so_far, seconds)
    runs every 20 ms (to kill a rank at a chosen moment, say). mpirun_args go
    to mpirun before the program."""
    t = TOPOLOGIES[topology]
    hosts = FakeHosts(t["hosts"], max((n or t["n"]) // t["hosts"], 1)) if t.get("hosts") else None
    env = job_env(topology, extra_env)
    tag = os.urandom(8).hex()
    env["SKC_JOB_TAG"] = tag
    names = sorted(k for k in env if k.startswith(("SHMKIT_", "ASAN_", "LSAN_", "UBSAN_", "UCX_", "MPIR_", "SKC_")))
    cmd = mpirun_command(topology, list(mpirun_args) + list(argv), names, hosts, n)
    t0 = time.monotonic()
    note = ""
    try:
        with tempfile.TemporaryFile("w+") as errf:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, env=env, start_new_session=True)
            out = []
            done_at = None
            fd = p.stdout.fileno()
            eof = False
            seen, next_scan = set(), 0.0
            while True:
                if not eof and select.select([fd], [], [], 0.02)[0]:
                    chunk = os.read(fd, 1 << 16)
                    if chunk:
                        out.append(chunk.decode("utf-8", "replace"))
                    else:
                        eof = True
                if eof and p.poll() is not None:
                    break
                if eof:
                    time.sleep(0.02)
                now = time.monotonic()
                if now >= next_scan:
                    seen.update(_job_pids(tag))
                    next_scan = now + 0.25
                text = "".join(out)
                if tick:
                    tick(text, now - t0)
                if done and done_at is None and done(text):
                    done_at = now
                if done_at is not None and finalize_grace is not None and now - done_at > finalize_grace:
                    _kill_group(p)
                    p.wait()
                    note = "every rank reported, then MPI_Finalize did not return within %g s: ended" % (
                        finalize_grace)
                    break
                if now - t0 > timeout:
                    _kill_group(p)
                    p.wait()
                    note = "timed out after %g s: killed" % timeout
                    break
            _kill_group(p)  # daemons or ranks that outlived mpirun
            # Ranks may outlive mpirun briefly (signalled, not yet gone):
            # the job is over when none of its processes is left.
            stray = _reap(tag, seen, 10)
            if stray:
                note += ("; " if note else "") + "%d processes outlived the job by 10 s: killed" % stray
            errf.seek(0)
            err = errf.read()
        p.stdout.close()
        return Job(cmd, p.returncode, "".join(out), err, time.monotonic() - t0, note)
    finally:
        if hosts:
            hosts.close()


def shm_names(prefix="skc-"):
    """The names in /dev/shm that start with prefix."""
    return sorted(n for n in os.listdir("/dev/shm") if n.startswith(prefix))
