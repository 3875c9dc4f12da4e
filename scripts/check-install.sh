#!/bin/sh
# Installs into a temporary prefix and builds the quickstart example against
# the installed headers and library through pkg-config, then runs it.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build test wheel
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
make install BUILD=build-install PREFIX="$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror examples/quickstart.c $(pkg-config --cflags --libs shmkit) \
	-Wl,-rpath,"$prefix/lib" -o "$prefix/quickstart"
"$prefix/quickstart" | grep -q "m\[999\]\[999\] = 999999"
"$prefix/bin/shmkit" --version >/dev/null
rm -rf build-install
# The Python module, installed by pip with Debian's setuptools (no network), used from elsewhere.
/usr/bin/python3 -m pip install -q --no-build-isolation --no-deps --no-warn-script-location \
	--target "$prefix/py" . 2>&1 | grep -v "Running pip as the 'root' user" || true
test -f "$prefix/py/shmkit/__init__.py"
(cd "$prefix" && PYTHONPATH="$prefix/py" /usr/bin/python3 -c '
import numpy, shmkit
a = shmkit.create(None, (4, 4), "int64")
numpy.asarray(a)[:] = 7
assert int(numpy.asarray(shmkit.open(a.name)).sum()) == 112
assert shmkit.__file__.startswith("'"$prefix"'")
')
rm -rf build-python
echo "check-install: installed library, headers, shmkit.pc, command and Python module work"
