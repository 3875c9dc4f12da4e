#!/bin/sh
# Installs into a temporary prefix and builds the quickstart example against
# the installed headers and library through pkg-config, then runs it.
set -eu
cd "$(dirname "$0")/.."
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
echo "check-install: installed library, headers, shmkit.pc and command work"
