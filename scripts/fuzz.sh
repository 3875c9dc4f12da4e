#!/bin/sh
# Builds the libFuzzer targets (clang, ASan + UBSan, the library instrumented
# for coverage) and runs each for SECONDS seconds from seeds made here: a real
# segment header, real .npy headers, a real queue.
#   usage: scripts/fuzz.sh SECONDS     (longer runs: scripts/fuzz.sh 3600)
# A crash leaves its input in build-fuzz/crashes/ and fails the script; such
# an input becomes a regression test by adding it to fuzz/regressions/.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=build-fuzz
scripts/deps.sh build clang
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DSHMKIT_FUZZ=ON -DSHMKIT_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
export SHMKIT_SWEEP=0
corpus="$build/corpus"
mkdir -p "$corpus/header" "$corpus/npy" "$corpus/queue" "$build/crashes"
# Seeds: a real header of each kind, real .npy files, replayed regressions.
name=shmkit-fuzz-seed-$$
for spec in "--size 100" "--dtype int64 --shape 3,4" "--bits 1000"; do
	# shellcheck disable=SC2086
	"$build/shmkit" create "$name" $spec >/dev/null
	head -c 4104 "/dev/shm/$name" >"$corpus/header/$(echo "$spec" | tr -c 'a-z0-9' _)"
	"$build/shmkit" export "$name" "$corpus/npy/$(echo "$spec" | tr -c 'a-z0-9' _).npy"
	"$build/shmkit" rm "$name"
done
cp fuzz/regressions/header/* "$corpus/header/" 2>/dev/null || true
cp fuzz/regressions/npy/* "$corpus/npy/" 2>/dev/null || true
cp fuzz/regressions/queue/* "$corpus/queue/" 2>/dev/null || true
printf 'seed' >"$corpus/queue/seed"
status=0
for t in header npy queue; do
	echo "fuzz: $t for ${seconds}s"
	if ! "$build/fuzz_$t" -max_total_time="$seconds" -print_final_stats=0 -artifact_prefix="$build/crashes/$t-" \
		"$corpus/$t" >"$build/fuzz_$t.log" 2>&1; then
		echo "fuzz: $t FAILED; see $build/fuzz_$t.log and $build/crashes/" >&2
		tail -30 "$build/fuzz_$t.log" >&2
		status=1
	else
		grep -E "^#[0-9]+.*(DONE|pulse)" "$build/fuzz_$t.log" | tail -1 || true
	fi
done
rm -f /dev/shm/shmkit-fuzz-queue-* 2>/dev/null || true
exit $status
