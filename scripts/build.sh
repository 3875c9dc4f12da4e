#!/bin/sh
# Configures and builds one build tree such that no earlier run, however it
# ended, leaves a state this one trips over.
#   usage: scripts/build.sh [-t TARGET]... BUILD_DIR [CMAKE_ARG...]
#
# - CMake configures every time (a second or so when nothing changed), so a
#   configure that failed or was cut short is simply done again; if it fails
#   on a cache left by such a run, it starts once more from an empty cache.
# - A build that was killed (a signal, or the machine) can leave a truncated
#   object file that is newer than its source; the mark file below says so,
#   and the next build then starts clean. A build that fails for an ordinary
#   reason (a compile error) removes the mark: make deletes what it could not
#   finish, so nothing is rebuilt needlessly.
set -eu
targets=""
while [ "${1:-}" = -t ]; do
	targets="$targets --target $2"
	shift 2
done
build=${1:?usage: scripts/build.sh [-t TARGET]... BUILD_DIR [CMAKE_ARG...]}
shift
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if ! cmake -S . -B "$build" --log-level=NOTICE "$@"; then
	echo "build.sh: configuring $build failed; trying once more from an empty cache" >&2
	rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
	cmake -S . -B "$build" --log-level=NOTICE "$@"
fi

mark="$build/.build-unfinished"
if [ -e "$mark" ]; then
	echo "build.sh: the last build of $build was interrupted: building it from clean" >&2
	cmake --build "$build" --target clean
fi
touch "$mark"
status=0
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" $targets || status=$?
# Only a build that ended by itself gets here: one killed by a signal keeps the mark.
rm -f "$mark"
exit $status
