#!/bin/sh
# Installs the Debian packages shmkit needs, only those missing (idempotent).
#   scripts/deps.sh build        compilers, CMake and the Python headers
#   scripts/deps.sh build test   plus what the tests need
#   scripts/deps.sh bench        what make bench needs (gnuplot for the plots; a C++ compiler
#                                and Boost for the queue's Boost.Interprocess peer)
set -eu
pkgs=""
for what in "$@"; do
	case "$what" in
	build) pkgs="$pkgs gcc make cmake pkg-config python3 python3-dev" ;;
	test) pkgs="$pkgs libcmocka-dev clang python3 python3-numpy python3-pytest python3-setuptools python3-pip util-linux libpython3.11-testsuite python3-mypy python3-distributed"
	      pkgs="$pkgs openmpi-bin libopenmpi-dev mpich libmpich-dev python3-mpi4py" ;; # cluster tests, both MPIs
	bench) pkgs="$pkgs python3 python3-numpy gnuplot-nox g++ libboost-dev"
	       pkgs="$pkgs openmpi-bin libopenmpi-dev python3-mpi4py python3-distributed" ;; # bench/cluster_run.py
	*) echo "deps.sh: unknown set '$what'" >&2; exit 2 ;;
	esac
done
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
