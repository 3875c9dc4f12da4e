"""Fixtures for testing the shmkit command: the binary, and segment names
that are removed after each test whatever happens."""
import os
import subprocess

import pytest

BIN = os.environ.get("SHMKIT_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "shmkit")


def run(*args, input=None, check=None):
    """Runs the command; returns CompletedProcess with text output."""
    p = subprocess.run([BIN, *map(str, args)], input=input, capture_output=True)
    p.out = p.stdout.decode(errors="replace")
    p.err = p.stderr.decode(errors="replace")
    if check is not None:
        assert p.returncode == check, (p.returncode, p.out, p.err)
    return p


@pytest.fixture
def names(request):
    """Hands out unique names; removes /dev/shm entries with them afterwards."""
    made = []

    def make(tag="x"):
        n = "skcli-%d-%s-%d" % (os.getpid(), tag, len(made))
        made.append(n)
        return n

    yield make
    for n in made:
        p = os.path.join("/dev/shm", n)
        if os.path.lexists(p):
            os.unlink(p)
