#!/bin/sh
# The foundation demo: a 1 GiB int64 array and a 1 GiB bit array in shared
# memory, shown with `shmkit ls` and `shmkit info`, then removed.
#   usage: scripts/demo.sh PATH_TO_SHMKIT
set -eu
shmkit=${1:?usage: demo.sh PATH_TO_SHMKIT}
arr=shmkit-demo-int64-$$
bits=shmkit-demo-bits-$$
trap '"$shmkit" rm -f "$arr" "$bits"' EXIT INT TERM
run() { echo "\$ shmkit $*"; "$shmkit" "$@"; echo; }
run create "$arr" --dtype int64 --shape 128M
run create "$bits" --bits 8G
run ls
run info "$arr"
run info --count "$bits"
run rm "$arr" "$bits"
trap - EXIT INT TERM
