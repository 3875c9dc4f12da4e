"""What the tests of the installable parts share: where the build is, and the
public API as the compiler sees it.

CTest sets SHMKIT_LIB (libshmkit.so), SHMKIT_MAN (the generated pages),
SHMKIT_BIN (the command) and SHMKIT_CC / SHMKIT_CFLAGS (the build's compiler);
run by hand they default to build/. The public functions are what gcc
-aux-info reports for include/shmkit.h and the headers it includes, and, for a
header of include/shmkit/ that shmkit.h does not include (one with a library of
its own), what its comment-free code declares; not the page generator's own
reading of the headers, so that a declaration the generator misreads is caught."""
import os
import re
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
INCLUDE = os.path.join(SRC, "include")
BUILD = os.path.join(SRC, "build")
LIB = os.environ.get("SHMKIT_LIB") or os.path.join(BUILD, "libshmkit.so")
MAN = os.environ.get("SHMKIT_MAN") or os.path.join(BUILD, "man")
BIN = os.environ.get("SHMKIT_BIN") or os.path.join(BUILD, "shmkit")
CC = os.environ.get("SHMKIT_CC") or "cc"
CFLAGS = (os.environ.get("SHMKIT_CFLAGS") or "").split()

sys.path.insert(0, os.path.join(SRC, "man"))


def run(*cmd, **kw):
    return subprocess.run(list(cmd), capture_output=True, text=True, check=True, **kw)


def header_code(path):
    """A header's code without its comments, its #includes not followed (so a
    header that needs a third-party header, mpi.h say, is read too)."""
    return run("gcc", "-fpreprocessed", "-dD", "-E", "-P", "-x", "c", path).stdout


def all_headers(include=INCLUDE):
    d = os.path.join(include, "shmkit")
    return [os.path.join(include, "shmkit.h")] + sorted(
        os.path.join(d, f) for f in os.listdir(d) if f.endswith(".h"))


def _umbrella_aux(include, umbrella, tmpdir):
    """{name: header} from gcc -aux-info over the umbrella header, and the
    headers it reaches."""
    src = os.path.join(tmpdir, "shmkit_aux_%d.c" % os.getpid())
    aux = src + ".aux"
    with open(src, "w") as f:
        f.write("#include <%s>\n" % umbrella)
    try:
        run("gcc", "-std=c11", "-D_GNU_SOURCE", "-I", include, "-fsyntax-only", "-aux-info", aux, src)
        with open(aux) as f:
            lines = f.read().splitlines()
        deps = run("gcc", "-std=c11", "-D_GNU_SOURCE", "-I", include, "-MM", src).stdout
    finally:
        for p in (src, aux):
            if os.path.exists(p):
                os.unlink(p)
    out = {}
    root = os.path.realpath(include) + os.sep
    for ln in lines:
        m = re.match(r"/\* (.+?):(\d+):(\w+) \*/ (.*)$", ln)
        if not m or not os.path.realpath(m.group(1)).startswith(root):
            continue
        decl = re.sub(r"\b(extern|static|inline|__inline)\b", "", m.group(4))
        name = re.match(r"[^(]*?\b(\w+)\s*\(", decl)
        if name:
            out[name.group(1)] = os.path.realpath(m.group(1))
    reached = {os.path.realpath(w) for w in deps.replace("\\\n", " ").split()[1:]
               if os.path.realpath(w).startswith(root)}
    return out, reached


def functions_in_code(code):
    """The sk_ functions a header's comment-free code declares or defines:
    names before a parenthesis, outside function bodies and typedefs."""
    out, i = [], 0
    kept = []
    while i < len(code):  # drop the bodies of inline functions: a { right after )
        if code[i] == "{" and code[:i].rstrip().endswith(")"):
            depth = 0
            while i < len(code):
                depth += {"{": 1, "}": -1}.get(code[i], 0)
                i += 1
                if depth == 0:
                    break
            kept.append(";")
            continue
        kept.append(code[i])
        i += 1
    code = "".join(kept)
    code = re.sub(r"^\s*#.*$", "", code, flags=re.M)
    code = re.sub(r"\btypedef\b[^;]*;", ";", code)
    for m in re.finditer(r"\b(sk_[a-z0-9]\w*)\s*\(", code):
        if not re.search(r"\(\s*\*\s*$", code[:m.start()]):  # not (*pointer)(...)
            out.append(m.group(1))
    return out


def declared_functions(include=INCLUDE, umbrella="shmkit.h", tmpdir="/tmp"):
    """{name: header path} of every function the headers under `include`
    declare (static inline definitions included): as gcc reads them for the
    headers shmkit.h includes, and from their code for any other header (one
    that needs a third-party header, like an MPI one, and its own library)."""
    out, reached = _umbrella_aux(include, umbrella, tmpdir)
    for h in all_headers(include):
        if os.path.realpath(h) in reached:
            continue
        for name in functions_in_code(header_code(h)):
            out.setdefault(name, os.path.realpath(h))
    return out


def umbrella_headers(include=INCLUDE, umbrella="shmkit.h", tmpdir="/tmp"):
    return _umbrella_aux(include, umbrella, tmpdir)[1]


def header_identifiers(include=INCLUDE):
    """Every identifier in the headers' code (comments removed): functions,
    types, struct tags, fields, enum constants and macros."""
    ids = set()
    for h in all_headers(include):
        ids |= set(re.findall(r"\b[A-Za-z_]\w*\b", header_code(h)))
    return ids


@pytest.fixture(scope="session")
def declared():
    return declared_functions()


@pytest.fixture(scope="session")
def identifiers():
    return header_identifiers()
