"""Typing (issue 14): the stubs next to the extension describe the whole
public module, mypy accepts them and code that uses them, and
inspect.signature reads every public callable."""
import ast
import inspect
import os
import subprocess
import sys
import textwrap

import pytest

import shmkit
import shmkit.managers
import shmkit.shared_memory

PKG = os.path.dirname(os.path.abspath(shmkit.__file__))
ROOT = os.path.dirname(PKG)
HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = [shmkit, shmkit.shared_memory, shmkit.managers]


def _mypy_available():
    return subprocess.run([sys.executable, "-c", "import mypy"], capture_output=True).returncode == 0


def _stub_names(path):
    """The names a stub file defines or re-exports at its top level."""
    names = set()
    for node in ast.parse(open(path).read()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


@pytest.mark.parametrize("mod", MODULES, ids=[m.__name__ for m in MODULES])
def test_every_public_name_is_in_the_stub(mod):
    stub = os.path.splitext(mod.__file__)[0] + ".pyi"
    assert os.path.exists(stub), stub
    public = set(getattr(mod, "__all__", [])) | {n for n in vars(mod) if not n.startswith("_")
                                                 and not inspect.ismodule(getattr(mod, n))}
    # Names the module imports for its own use are not part of its API.
    public -= {"annotations"}
    missing = sorted(n for n in public if n not in _stub_names(stub)
                     and getattr(getattr(mod, n), "__module__", mod.__name__).startswith("shmkit"))
    assert not missing, "%s: public names missing from %s: %s" % (mod.__name__, stub, missing)
    assert os.path.exists(os.path.join(PKG, "py.typed"))


def _callables():
    seen = []
    for mod in MODULES:
        for n in getattr(mod, "__all__", []):
            o = getattr(mod, n)
            if isinstance(o, type) and issubclass(o, BaseException):
                continue  # exception classes: CPython gives none of its own a signature either
            if callable(o):
                seen.append(("%s.%s" % (mod.__name__, n), o))
            if isinstance(o, type):
                for a, m in vars(o).items():
                    if a.startswith("_") and a not in ("__init__", "__new__", "_is_owned"):
                        continue
                    m = getattr(o, a)
                    if callable(m) and not isinstance(m, type):
                        seen.append(("%s.%s.%s" % (mod.__name__, n, a), m))
    return seen


def test_inspect_signature_reads_every_public_callable():
    bad = []
    checked = 0
    for label, o in _callables():
        try:
            inspect.signature(o)
            checked += 1
        except (ValueError, TypeError) as e:
            bad.append("%s: %s" % (label, e))
    assert not bad, "no signature: %s" % bad
    assert checked > 100
    # The C ones carry real signatures, not (*args, **kwargs).
    assert str(inspect.signature(shmkit.Lock.acquire)) == "(self, /, block=True, timeout=None, *, blocking=True)"
    assert str(inspect.signature(shmkit.Queue)) == \
        "(maxsize=0, *, name=None, capacity=33554432, max_msg=None, owned=True)"
    assert list(inspect.signature(shmkit.Bits.count).parameters) == ["self", "begin", "end"]


@pytest.mark.skipif(not _mypy_available(), reason="mypy is not installed (Debian: python3-mypy)")
def test_stubtest_finds_the_stubs_true_to_the_module(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", os.devnull, "--allowlist",
                        os.path.join(HERE, "stubtest_allowlist.txt"), "shmkit"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600,
                       env=dict(os.environ, PYTHONPATH=ROOT, MYPY_CACHE_DIR=str(tmp_path)))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


USE = """
import numpy as np
import shmkit
from shmkit.managers import SharedMemoryManager
from shmkit.shared_memory import ShareableList

a = shmkit.create(None, (3, 4), "int64")
m = np.asarray(a)
v = shmkit.Value("i", 1)
v.value += 1
with v.get_lock():
    v.value += 1
raw = shmkit.Value("i", 1, lock=False)
r: int = raw.add(1)
sa = shmkit.Array("d", 10)
with sa.get_lock():
    sa[0] = 1.5
q = shmkit.Queue(4, capacity=1 << 20)
q.put((1, 2.0, "x"))
x = q.get(timeout=1.0)
n: int = q.qsize()
lk = shmkit.Lock()
with lk:
    pass
ok: bool = lk.acquire(timeout=0.5)
sl = ShareableList([1, 2, 3])
first: int = sl[0]
with SharedMemoryManager() as smm:
    shm = smm.SharedMemory(64)
    shm.buf[0] = 1
arr = shmkit.Array("c", b"abc")
b = shmkit.Bits(128)
c: int = b.count()
"""

MISUSE = """
import shmkit
q = shmkit.Queue(name=1)
n: str = shmkit.Bits(8).count()
shmkit.RawArray("d", 4).get_lock()
"""


@pytest.mark.skipif(not _mypy_available(), reason="mypy is not installed (Debian: python3-mypy)")
def test_mypy_accepts_correct_use_and_rejects_misuse(tmp_path):
    ok = tmp_path / "use.py"
    ok.write_text(textwrap.dedent(USE))
    bad = tmp_path / "misuse.py"
    bad.write_text(textwrap.dedent(MISUSE))
    env = dict(os.environ, MYPYPATH=ROOT)
    base = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
            "--config-file", os.devnull]
    r = subprocess.run(base + [str(ok)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(base + [str(bad)], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    for line in (3, 4, 5):
        assert "misuse.py:%d" % line in r.stdout, r.stdout
