"""The shared library exports the public API, all of it and nothing else.

Every function declared in include/ is exported by libshmkit.so with a version
from libshmkit.map; no internal (sk__) function and nothing else is; the
library carries a soname that matches the headers' version; and a program
linked against it runs. Functions other helpers add to the headers are covered
the moment they are declared: nothing here lists them."""
import os
import re
import subprocess

from conftest import (CC, CFLAGS, INCLUDE, LIB, declared_functions, functions_in_code, header_code, run,
                      umbrella_headers)


def exported(lib=LIB):
    """{name: version} of the symbols the library defines and exports."""
    out = {}
    for ln in run("nm", "-D", "--defined-only", lib).stdout.splitlines():
        parts = ln.split()
        if len(parts) < 3 or parts[1] == "A":  # "A SHMKIT_0": the version node itself
            continue
        name, _, version = parts[2].partition("@")
        out[name] = version.lstrip("@")
    return out


def other_libraries(kinds=("so",)):
    """Other shmkit libraries the build made (libshmkit_mpi.so, say): the
    functions of headers that shmkit.h does not include are theirs."""
    top = os.path.dirname(LIB)
    found = []
    for d, _, files in os.walk(top):
        for f in files:
            path = os.path.join(d, f)
            if re.fullmatch(r"libshmkit_\w+\.(%s)" % "|".join(kinds), f):
                found.append(path)
    return sorted(found)


def defined(lib):
    """The names a static library defines for others (global text)."""
    out = set()
    for ln in run("nm", "--defined-only", "-g", lib).stdout.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[1] == "T":
            out.add(parts[2])
    return out


def header_version():
    with open(os.path.join(INCLUDE, "shmkit", "common.h")) as f:
        return re.search(r'#define\s+SHMKIT_VERSION_STRING\s+"([^"]+)"', f.read()).group(1)


def test_no_internal_function_is_exported():
    for lib in [LIB] + other_libraries():
        internal = sorted(n for n in exported(lib) if n.startswith("sk__"))
        assert not internal, "%s exports %d internal symbols: %s" % (lib, len(internal), ", ".join(internal))


def test_every_declared_function_is_exported(declared):
    assert len(declared) > 100, "only %d functions found in include/" % len(declared)
    core = umbrella_headers()
    ours = set(exported())
    # Such a library is shared where it is installed; builds that make it
    # static only (the sanitizer build) are checked against the archive.
    others = set()
    for lib in other_libraries(("so", "a")):
        others |= set(exported(lib)) if lib.endswith(".so") else defined(lib)
    missing = sorted(n for n, h in declared.items() if n not in (ours if h in core else others))
    assert not missing, "declared in include/ but exported by no library of the build: " + ", ".join(
        "%s (%s)" % (n, os.path.relpath(declared[n], INCLUDE)) for n in missing)


def test_nothing_but_the_api_is_exported(declared):
    extra = sorted(set(exported()) - set(declared))
    assert not extra, "libshmkit.so exports what include/ does not declare: " + ", ".join(extra)


def test_the_two_readings_of_the_headers_agree(declared):
    """For the headers gcc reads, reading their code finds the same functions:
    so it can be trusted for the headers gcc cannot read alone."""
    for h in umbrella_headers():
        from_code = set(functions_in_code(header_code(h)))
        from_gcc = {n for n, p in declared.items() if p == h}
        assert from_code == from_gcc, (h, from_code ^ from_gcc)


def test_every_symbol_is_versioned():
    unversioned = sorted(n for n, v in exported().items() if not v.startswith("SHMKIT_"))
    assert not unversioned, "exported without a SHMKIT_ version: " + ", ".join(unversioned)


def test_soname_and_version_match_the_headers():
    version = header_version()
    major = version.split(".")[0]
    soname = re.search(r"Library soname: \[([^\]]+)\]", run("readelf", "-d", LIB).stdout)
    assert soname, "libshmkit.so has no soname"
    assert soname.group(1) == "libshmkit.so." + major
    real = os.path.realpath(LIB)
    assert os.path.basename(real) == "libshmkit.so." + version, real


def test_a_program_links_against_it_and_runs(tmp_path):
    prog = tmp_path / "uses_shmkit"
    src = tmp_path / "uses_shmkit.c"
    src.write_text('#include <shmkit.h>\n#include <stdio.h>\n'
                   'int main(void) { printf("%s %s\\n", sk_version(), sk_strerror(SK_EKIND)); return 0; }\n')
    run(CC, *CFLAGS, "-I", INCLUDE, str(src), "-L", os.path.dirname(LIB), "-lshmkit", "-o", str(prog))
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(LIB))
    out = run(str(prog), env=env).stdout.split(" ", 1)
    assert out[0] == header_version()
    assert out[1].strip() and "unknown" not in out[1]
    # It asks for versioned symbols: an older library without them refuses to load it.
    refs = run("objdump", "-T", str(prog)).stdout
    assert re.search(r"SHMKIT_\S*\s+sk_version\b", refs), refs


def test_the_checks_fail_on_a_library_that_exports_internals(tmp_path, declared):
    """The checks above can fail: a library linked from the same objects but
    without the version script exports the sk__ internals, and one linked
    without an object misses declared functions."""
    objs = sorted(
        os.path.join(d, f) for d, _, fs in os.walk(os.path.join(os.path.dirname(LIB), "CMakeFiles", "shmkit_objs.dir"))
        for f in fs if f.endswith(".o"))
    assert objs, "no objects of the library found next to " + LIB
    plain = tmp_path / "libplain.so"
    run(CC, *CFLAGS, "-shared", "-o", str(plain), *objs)
    assert any(n.startswith("sk__") for n in exported(str(plain)))
    partial = tmp_path / "libpartial.so"
    run(CC, *CFLAGS, "-shared", "-Wl,--version-script=" + os.path.join(INCLUDE, "..", "libshmkit.map"),
        "-o", str(partial), *[o for o in objs if not o.endswith("value.c.o")])
    missing = set(declared) - set(exported(str(partial)))
    assert "sk_value_create" in missing


def test_functions_added_to_a_header_are_seen(tmp_path):
    """A function someone declares tomorrow is in the list the checks use, in
    a header of shmkit.h and in one of a library of its own that needs a
    header this machine may not have."""
    inc = tmp_path / "include"
    subprocess.run(["cp", "-r", INCLUDE, str(inc)], check=True)
    with open(inc / "shmkit" / "queue.h", "a") as f:
        f.write("\nint sk_queue_added_tomorrow(int x);\n")
    (inc / "shmkit" / "elsewhere.h").write_text(
        "#include <not_on_this_machine.h>\n/* Does it. */\nint sk_elsewhere_do(peer_t p, int (*cb)(int));\n"
        "typedef int (*sk_elsewhere_fn)(int);\nstatic inline int sk_elsewhere_twice(int x) { return sk_x(x) * 2; }\n")
    found = declared_functions(str(inc), tmpdir=str(tmp_path))
    assert found["sk_queue_added_tomorrow"].endswith("queue.h")
    assert found["sk_elsewhere_do"].endswith("elsewhere.h") and found["sk_elsewhere_twice"].endswith("elsewhere.h")
    assert "sk_elsewhere_fn" not in found and "sk_x" not in found
