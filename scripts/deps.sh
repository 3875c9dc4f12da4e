#!/bin/sh
# Installs the Debian packages a shmkit command needs, only those missing
# (idempotent, and safe to run again after an interrupted or failed run).
#   scripts/deps.sh make         make itself (./shmkit.sh needs nothing else first)
#   scripts/deps.sh demo         what `make demo` needs: a C compiler, make, CMake
#   scripts/deps.sh build        plus the Python headers and pkg-config (`make`, `make install`)
#   scripts/deps.sh build test   plus what `make test` needs
#   scripts/deps.sh clang        clang (CC=clang builds: the ASan suite, the fuzzers)
#   scripts/deps.sh format       clang-format 14 and python3 (`make format-check`: the layering check)
#   scripts/deps.sh bench        what `make bench` needs (gnuplot for the plots; a C++ compiler
#                                and Boost for the queue's Boost.Interprocess peer)
#   scripts/deps.sh wheel        what building and installing the Python wheel needs
#   scripts/deps.sh fresh        what scripts/fresh-machine.sh needs (mmdebstrap)
# Packages are installed without their recommendations: each set names all it uses.
set -eu
pkgs=""
for what in "$@"; do
	case "$what" in
	make) pkgs="$pkgs make" ;;
	demo) pkgs="$pkgs make cmake gcc libc6-dev" ;;
	build) pkgs="$pkgs make cmake gcc libc6-dev pkg-config python3 python3-dev" ;;
	test) pkgs="$pkgs libcmocka-dev python3 python3-numpy python3-pytest util-linux man-db libpython3.11-testsuite python3-mypy python3-distributed python3-bitarray"
	      pkgs="$pkgs openmpi-bin libopenmpi-dev mpich libmpich-dev python3-mpi4py" ;; # cluster tests, both MPIs
	clang) pkgs="$pkgs clang" ;;
	format) pkgs="$pkgs clang-format python3" ;;
	bench) pkgs="$pkgs python3 python3-numpy gnuplot-nox g++ libboost-dev python3-bitarray python3-joblib"
	       pkgs="$pkgs openmpi-bin libopenmpi-dev python3-mpi4py python3-distributed" ;; # bench/cluster_run.py
	wheel) pkgs="$pkgs python3 python3-dev python3-numpy python3-setuptools python3-wheel python3-pip python3-venv" ;;
	fresh) pkgs="$pkgs mmdebstrap git util-linux" ;;
	*)
		echo "deps.sh: unknown set '$what'" >&2
		exit 2
		;;
	esac
done
missing=""
for p in $pkgs; do
	case " $missing " in *" $p "*) continue ;; esac
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages:$missing (run as root, or install them)" >&2
	exit 1
fi
echo "deps.sh: installing$missing" >&2
started=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
apt() {
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		echo "deps.sh: failed: $*" >&2
		exit 1
	fi
}
# A run killed during dpkg leaves packages unpacked but not configured: finish
# them first, then let apt repair what is still broken (install -f).
if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
	echo "deps.sh: an earlier run was interrupted in dpkg: configuring what it left" >&2
	apt dpkg --force-confdef --force-confold --configure -a
fi
apt apt-get -o DPkg::Lock::Timeout=900 update
# shellcheck disable=SC2086
apt apt-get -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	install -y -f --no-install-recommends $missing
echo "deps.sh: installed in $(($(date +%s) - started)) s" >&2
