"""Builds the shmkit Python module: the C extension shmkit._shmkit, compiled
together with the library's sources (the metadata is in pyproject.toml).

    python3 -m pip install --no-build-isolation .

Linux only: shmkit relies on /dev/shm, memfd, futexes and robust mutexes."""
import glob
import sys

from setuptools import Extension, setup

if not sys.platform.startswith("linux"):
    sys.exit("shmkit needs Linux")

sources = sorted(glob.glob("python/ext/*.c")) + sorted(glob.glob("src/*.c")) + ["src/sys/linux.c"]

setup(
    # Not build/: that is CMake's tree.
    options={"build": {"build_base": "build-python"}, "egg_info": {"egg_base": "build-python"}},
    ext_modules=[
        Extension(
            "shmkit._shmkit",
            sources=sources,
            include_dirs=["include", "src"],
            define_macros=[("_GNU_SOURCE", None)],
            extra_compile_args=["-std=c11", "-fvisibility=hidden"],
            depends=sorted(glob.glob("python/ext/*.h") + glob.glob("src/*.h") + glob.glob("include/**/*.h",
                                                                                       recursive=True)),
        )
    ],
)
