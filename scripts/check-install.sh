#!/bin/sh
# Checks what users install, as they install it:
# 1. `make install PREFIX=...` into a temporary prefix: the shared library (with
#    its soname links), the headers, shmkit.pc, the command and the manual
#    pages; the quickstart example is built against the installed headers and
#    library through pkg-config and run, and `man` finds the pages there; where
#    an MPI is installed, the cluster example through shmkit-mpi.pc against the
#    installed libshmkit_mpi, run by mpirun as two pseudo-nodes.
# 2. The Python wheel (`pip wheel --no-build-isolation .`) installed into a fresh
#    virtual environment (`python3 -m venv --system-site-packages`), then used
#    from another directory: the module (with NumPy), the `shmkit` console
#    script, `python -m shmkit`, and the type stubs that python/shmkit/ has.
set -eu
cd "$(dirname "$0")/.."
src=$(pwd)
scripts/deps.sh build test wheel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

# 1. make install
make install BUILD=build-install PREFIX="$prefix" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log" >&2
	exit 1
}
version=$(sed -n 's/^#define SHMKIT_VERSION_STRING "\(.*\)"/\1/p' include/shmkit/common.h)
for f in lib/libshmkit.so lib/libshmkit.so.0 "lib/libshmkit.so.$version" lib/libshmkit.a lib/pkgconfig/shmkit.pc \
	include/shmkit.h include/shmkit/segment.h bin/shmkit share/man/man1/shmkit.1 share/man/man3/shmkit.3 \
	share/man/man3/shmkit_segment.3 share/man/man3/sk_segment_create.3; do
	test -e "$prefix/$f" || {
		echo "check-install: make install did not install $f" >&2
		exit 1
	}
done
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror examples/quickstart.c $(pkg-config --cflags --libs shmkit) \
	-Wl,-rpath,"$prefix/lib" -o "$tmp/quickstart"
"$tmp/quickstart" | grep -q "m\[999\]\[999\] = 999999"
ldd "$tmp/quickstart" | grep -q "libshmkit.so.0 => $prefix/lib/libshmkit.so.0"
"$prefix/bin/shmkit" --version | grep -qx "shmkit $version"
for page in shmkit.1 shmkit.3 shmkit_segment.3 shmkit_array.3 shmkit_bits.3 shmkit_value.3 shmkit_sync.3 \
	shmkit_queue.3 shmkit_pool.3; do
	name=${page%.*}
	man -M "$prefix/share/man" "${page##*.}" "$name" 2>&1 | grep -q "^NAME" || {
		echo "check-install: man -M $prefix/share/man does not show $name(${page##*.})" >&2
		exit 1
	}
done
man -M "$prefix/share/man" 3 sk_queue_push | grep -q "sk_queue_push(sk_queue \*q"
# libshmkit_mpi, installed where an MPI was found (the test set installs Open MPI
# and MPICH; the default MPI's mpi-c.pc decides which): the cluster example
# built through shmkit-mpi.pc against the installed library, run as two
# pseudo-nodes of one rank each.
if pkg-config --exists mpi-c; then
	test -e "$prefix/lib/libshmkit_mpi.so" && test -e "$prefix/lib/pkgconfig/shmkit-mpi.pc" || {
		echo "check-install: make install did not install libshmkit_mpi.so and shmkit-mpi.pc" >&2
		exit 1
	}
	# shellcheck disable=SC2046
	cc -Wall -Wextra -Werror examples/cluster_seed.c $(pkg-config --cflags --libs shmkit-mpi) \
		-Wl,-rpath,"$prefix/lib" -o "$tmp/cluster_seed"
	ldd "$tmp/cluster_seed" | grep -q "libshmkit_mpi.so.0 => $prefix/lib/libshmkit_mpi.so.0"
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
		timeout 300 mpirun -n 2 "$tmp/cluster_seed" --ranks-per-node 1 --bits 1048576 --values 65536 \
		>"$tmp/cluster.log" 2>&1 && grep -q "counters agree: ok" "$tmp/cluster.log" || {
		cat "$tmp/cluster.log" >&2
		echo "check-install: the cluster example against the installed libshmkit_mpi failed" >&2
		exit 1
	}
	echo "check-install: the cluster example ran against the installed libshmkit_mpi (shmkit-mpi.pc)"
fi
rm -rf build-install

# 2. The wheel, in a fresh virtual environment, used from elsewhere.
/usr/bin/python3 -m pip wheel -q --no-build-isolation --no-deps -w "$tmp/wheels" . >"$tmp/wheel.log" 2>&1 || {
	cat "$tmp/wheel.log" >&2
	exit 1
}
wheel=$(ls "$tmp"/wheels/shmkit-*.whl)
/usr/bin/python3 -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --no-deps --no-index "$wheel" 2>&1 | grep -v "Running pip as the 'root' user" || true
mkdir "$tmp/elsewhere"
cd "$tmp/elsewhere"
stubs=$(cd "$src/python/shmkit" && ls -- *.pyi py.typed 2>/dev/null || true)
export SHMKIT_SMOKE_STUBS="$stubs"
"$tmp/venv/bin/python" - "$tmp/venv" <<'EOF'
import os, subprocess, sys
import numpy, shmkit
venv = sys.argv[1]
pkg = os.path.dirname(shmkit.__file__)
assert pkg.startswith(venv), "shmkit was imported from %s, not from the virtual environment" % pkg
print("smoke: import shmkit from", os.path.relpath(pkg, venv), "version", shmkit.__version__)
a = shmkit.create(None, (4, 4), "int64")
numpy.asarray(a)[:] = 7
b = shmkit.open(a.name)
assert int(numpy.asarray(b).sum()) == 112
print("smoke: array %s shared by name, sum %d" % (a.name, int(numpy.asarray(b).sum())))
for cmd in ([os.path.join(venv, "bin", "shmkit"), "info", a.name], [sys.executable, "-m", "shmkit", "info", a.name]):
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "int64" in out and "(4, 4)" in out, out
    print("smoke: `%s info` shows it: %s" % (os.path.basename(cmd[0]) if len(cmd) == 3 else "python -m shmkit",
                                            out.splitlines()[0]))
p = subprocess.run([os.path.join(venv, "bin", "shmkit"), "nonsense"], capture_output=True, text=True)
assert p.returncode == 2, p
stubs = os.environ["SHMKIT_SMOKE_STUBS"].split()
for f in stubs:
    assert os.path.exists(os.path.join(pkg, f)), "the wheel lacks %s" % f
print("smoke: type stubs in the wheel:", " ".join(stubs) if stubs else "(python/shmkit/ has none)")
del a, b
EOF
cd "$src"
rm -rf build-python
echo "check-install: installed library, headers, shmkit.pc, command, manual pages and the wheel work"
