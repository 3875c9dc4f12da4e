#!/bin/sh
# shmkit.sh: the front door, on any Debian machine, even a minimal one with no
# make and no compiler (run it as root there, or with the packages installed).
#   ./shmkit.sh demo            install what the demo needs, build the command, run the demo
#   ./shmkit.sh test            install what the tests need, build everything, run every test
#   ./shmkit.sh TARGET [VAR=x]  any other target of the Makefile: build, install PREFIX=DIR,
#                               bench, fuzz, format-check, clean
# It installs make when it is missing and hands over to it; each make target
# installs the rest of what it needs (scripts/deps.sh). Any run can be
# repeated, also after one that failed or was interrupted.
set -eu
cd "$(dirname "$0")"
scripts/deps.sh make
exec make "$@"
