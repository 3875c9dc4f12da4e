#!/bin/sh
# Runs the whole test suite of one build tree, then fails if the suite left
# anything new in /dev/shm.   usage: scripts/run-tests.sh BUILD_DIR
set -u
build=${1:?usage: run-tests.sh BUILD_DIR}
before=$(mktemp)
after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
ls -A /dev/shm | sort >"$before"
# Tests fork and map large segments: run them one at a time.
ctest --test-dir "$build" --output-on-failure --timeout 900
status=$?
ls -A /dev/shm | sort >"$after"
left=$(comm -13 "$before" "$after")
if [ -n "$left" ]; then
	echo "run-tests.sh: the suite left these entries in /dev/shm:" >&2
	echo "$left" | sed 's/^/  /' >&2
	status=1
fi
exit $status
