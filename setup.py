"""Builds the shmkit Python package (the metadata is in pyproject.toml):

- shmkit._shmkit, the C extension, compiled together with the library's sources;
- shmkit/bin/shmkit, the shmkit command (cli/), which `python -m shmkit` and
  the `shmkit` console script run;
- the type stubs (*.pyi, py.typed) found in python/shmkit/ go in as they are.

    python3 -m pip wheel --no-build-isolation .      # a wheel
    python3 -m pip install --no-build-isolation .    # into the current environment

The command's sources are read from CMakeLists.txt (add_executable(shmkit_cli
...) and target_sources(shmkit_cli ...)), so that the wheel's command is built
from what the C build uses. Linux only: shmkit relies on /dev/shm, memfd,
futexes and robust mutexes."""
import glob
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

if not sys.platform.startswith("linux"):
    sys.exit("shmkit needs Linux")

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)

LIB_SOURCES = sorted(glob.glob("src/**/*.c", recursive=True))
HEADERS = sorted(glob.glob("src/**/*.h", recursive=True) + glob.glob("include/**/*.h", recursive=True))


def cmake_sources(target, path="CMakeLists.txt"):
    """The source files CMakeLists.txt gives `target`, with ${VAR} expanded
    from its set(VAR ...) lines."""
    with open(path) as f:
        text = re.sub(r"#[^\n]*", "", f.read())
    variables = {m.group(1): m.group(2).split() for m in re.finditer(r"\bset\(\s*(\w+)\s+([^)]*)\)", text)}

    def expand(words):
        out = []
        for w in words:
            m = re.fullmatch(r"\$\{(\w+)\}", w)
            out += expand(variables.get(m.group(1), [])) if m else [w]
        return out

    words = []
    for m in re.finditer(r"\badd_executable\(\s*%s\s+([^)]*)\)" % target, text):
        words += m.group(1).split()
    for m in re.finditer(r"\btarget_sources\(\s*%s\s+(?:PRIVATE|PUBLIC|INTERFACE)\s+([^)]*)\)" % target, text):
        words += m.group(1).split()
    files = [w for w in expand(words) if w.endswith(".c")]
    if not files:
        sys.exit("setup.py: CMakeLists.txt names no sources for %s" % target)
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        sys.exit("setup.py: sources of %s not found: %s" % (target, " ".join(missing)))
    return files


class build_ext_and_command(build_ext):
    """build_ext, and then the shmkit command into the package's bin/."""

    def run(self):
        super().run()
        sources = cmake_sources("shmkit_cli")
        dirs = sorted({os.path.dirname(s) for s in sources} | {"include", "src"})
        objects = self.compiler.compile(
            [s for s in sources if s not in LIB_SOURCES] + LIB_SOURCES,
            output_dir=os.path.join(self.build_temp, "command"), include_dirs=dirs,
            macros=[("_GNU_SOURCE", None)], extra_postargs=["-std=c11"], depends=HEADERS)
        out_dir = os.path.join(self.build_lib, "shmkit", "bin")
        if self.inplace:
            out_dir = os.path.join("python", "shmkit", "bin")
        self.mkpath(out_dir)
        self.compiler.link_executable(objects, "shmkit", output_dir=out_dir)


setup(
    # Not build/: that is CMake's tree.
    options={"build": {"build_base": "build-python"}, "egg_info": {"egg_base": "build-python"}},
    cmdclass={"build_ext": build_ext_and_command},
    ext_modules=[
        Extension(
            "shmkit._shmkit",
            sources=sorted(glob.glob("python/ext/*.c")) + LIB_SOURCES,
            include_dirs=["include", "src"],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=["-std=c11", "-fvisibility=hidden"],
            depends=sorted(glob.glob("python/ext/*.h")) + HEADERS,
        )
    ],
)
