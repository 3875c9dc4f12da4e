#!/bin/sh
# The README's two commands on a minimal Debian 12, run as a new user runs them.
#
#   scripts/fresh-machine.sh [--orders "demo-first test-first"] [--spoil MODE] [--no-deb-cache]
#
# A bare Debian 12 root, what `mmdebstrap --variant=minbase bookworm` makes
# (what a fresh container is: no make, no compiler, no Python), is built from
# this machine's Debian apt sources and cached under /var/tmp (rebuilt after a
# week, or when the sources change). For each order a fresh copy of it gets
# this checkout (`git archive HEAD`) in /root/shmkit, and the two commands of
# the README's first ```sh block (read from README.md, in its order: the demo,
# then the tests) run there as root, in a chroot with /proc, /sys, /dev, /dev/pts
# and a fresh tmpfs on /dev/shm, inside private mount and pid namespaces:
#   demo-first   the first command, then the second
#   test-first   the second command, then the first
# --spoil MODE spoils a first attempt of each order's first command before the
# two commands run in the same root:
#   kill:N       every process of the root is killed (SIGKILL) after N seconds,
#                as when a container or the machine goes away
#   int:N        Ctrl-C (SIGINT to the command's process group) after N seconds
#   offline      the attempt has no network, so apt fails
# Downloaded .deb files are kept in the cache too and linked into each root's
# apt cache (--no-deb-cache: every root downloads its own); apt still installs them.
#
# It prints how long each command took; SHMKIT_FRESH_LOGS=DIR keeps their output. Whatever happens, nothing stays mounted
# (the mounts live in the namespaces, which die with their last process) and
# the roots are removed. Needs root, mmdebstrap and git.
set -eu
cd "$(dirname "$0")/.."
orders="demo-first test-first"
spoil=""
debcache=1
while [ $# -gt 0 ]; do
	case "$1" in
	--orders) orders=$2; shift 2 ;;
	--spoil) spoil=$2; shift 2 ;;
	--no-deb-cache) debcache=0; shift ;;
	*) echo "usage: scripts/fresh-machine.sh [--orders LIST] [--spoil kill:N|int:N|offline] [--no-deb-cache]" >&2; exit 2 ;;
	esac
done
case "$spoil" in "" | offline | kill:[0-9]* | int:[0-9]*) ;; *) echo "fresh-machine: bad --spoil $spoil" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then
	echo "fresh-machine: needs root (mmdebstrap, chroot, mounts)" >&2
	exit 1
fi
scripts/deps.sh fresh
git rev-parse --git-dir >/dev/null 2>&1 || {
	echo "fresh-machine: not a git checkout: the root gets the checkout through git archive" >&2
	exit 1
}

# The README's two commands: its first ```sh block, comments and blank lines dropped.
commands=$(awk '/^```sh[[:space:]]*$/ && !done { on = 1; next } on && /^```/ { on = 0; done = 1 } on' README.md |
	sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$' || true)
if [ "$(printf '%s\n' "$commands" | grep -c .)" != 2 ]; then
	echo "fresh-machine: README.md's first \`\`\`sh block should hold exactly two commands; it holds:" >&2
	printf '%s\n' "$commands" >&2
	exit 1
fi
first=$(printf '%s\n' "$commands" | sed -n 1p)
second=$(printf '%s\n' "$commands" | sed -n 2p)

# The cached bare root.
cache=${SHMKIT_FRESH_CACHE:-/var/tmp/shmkit-fresh}
mkdir -p "$cache/debs"
sources=$(apt-get indextargets --format 'deb $(REPO_URI) $(RELEASE) $(COMPONENT)' 'Created-By: Packages' \
	'Origin: Debian' | sort -u)
if [ -z "$sources" ]; then
	echo "fresh-machine: apt knows no Debian repository on this machine (apt-get indextargets)" >&2
	exit 1
fi
key=$(printf 'minbase bookworm\n%s\n' "$sources" | sha256sum | cut -c1-16)
tarball=$cache/bookworm-minbase-$key.tar
find "$cache" -maxdepth 1 -name 'bookworm-minbase-*.tar' \( -mtime +7 -o ! -name "${tarball##*/}" \) -delete
if [ ! -s "$tarball" ]; then
	echo "fresh-machine: building the bare Debian 12 root (mmdebstrap --variant=minbase bookworm)"
	t0=$(date +%s)
	printf '%s\n' "$sources" | mmdebstrap --quiet --variant=minbase bookworm "$tarball.$$.tar" -
	mv "$tarball.$$.tar" "$tarball"
	echo "fresh-machine: bare root cached in $tarball ($(($(date +%s) - t0)) s)"
fi

work=$(mktemp -d "$cache/run.XXXXXX")
ns_pid=""
cleanup() {
	if [ -n "$ns_pid" ]; then # unshare --kill-child: its namespace dies with it
		kill -KILL "$ns_pid" 2>/dev/null || true
		wait "$ns_pid" 2>/dev/null || true
	fi
	if grep -q " $work/" /proc/self/mountinfo; then
		echo "fresh-machine: BUG: mounts under $work are visible here; unmounting" >&2
		grep " $work/" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l
	fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# In new mount and pid namespaces (this runs as their process 1): mount what the
# root needs, then run each "LABEL<TAB>COMMAND" line of the list in the chroot,
# timed, its output in LABEL.log. SPOIL spoils the first one. When this ends,
# the kernel kills whatever is left in the namespace and drops its mounts.
inner='
set -u
root=$1 list=$2 spoil=$3 results=$4 logs=$5
mount --bind "$root" "$root" # its / is a mount point, as on a machine or in a container
mount --rbind /dev "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" # as a machine or a container has it (MPI over TCP reads /sys/class/net)
run() { # COMMAND [offline|exec]
	pre=""
	if [ "${2:-}" = offline ]; then pre="unshare --net"; fi
	if [ "${2:-}" = exec ]; then pre="exec"; fi # in a subshell started with &: its pid is the group
	# As typed in a terminal: a process group of its own, and Ctrl-C not
	# ignored (a shell ignores it in what it starts with &).
	$pre perl -e "use POSIX; setpgid(0, 0); \$SIG{INT} = \$SIG{QUIT} = q(DEFAULT); exec @ARGV or die" \
		env -i HOME=/root USER=root LOGNAME=root TERM=dumb \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		chroot "$root" /bin/sh -c "cd /root/shmkit && $1" >>"$logs/$label.log" 2>&1 </dev/null
}
tab=$(printf "\t")
while IFS="$tab" read -r label cmd; do
	t0=$(date +%s.%N)
	case "$spoil" in
	"") run "$cmd"; rc=$? ;;
	offline) run "$cmd" offline; rc=$? ;;
	*)
		run "$cmd" exec &
		job=$!
		sleep "${spoil#*:}"
		if ! kill -0 "$job" 2>/dev/null; then
			wait "$job"
			rc=$?
		elif [ "${spoil%%:*}" = kill ]; then
			echo "$label killed $t0 $(date +%s.%N)" >>"$results"
			exit 0 # process 1 leaves: the kernel kills the rest of the namespace
		else
			kill -INT "-$job"
			wait "$job"
			rc=$?
		fi ;;
	esac
	echo "$label $rc $t0 $(date +%s.%N)" >>"$results"
	spoil=""
done <"$list"
'

# in_root ORDER SPOIL "LABEL<TAB>COMMAND"...: the commands, in ORDER's root.
in_root() {
	order=$1 spoil_mode=$2
	shift 2
	list=$work/$order/commands
	: >"$list"
	for c in "$@"; do printf '%s\n' "$c" >>"$list"; done
	unshare --mount --pid --fork --kill-child --propagation private \
		sh -c "$inner" sh "$work/$order/root" "$list" "$spoil_mode" "$work/$order/results" "$work/$order" &
	ns_pid=$!
	wait "$ns_pid" || true
	ns_pid=""
}

# report ORDER LABEL COMMAND: one line of timing, or the failure with the end of its output.
report() {
	line=$(grep "^$2 " "$work/$1/results" 2>/dev/null || true)
	if [ -z "$line" ]; then
		echo "fresh-machine: $1: \`$3\` did not run" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	set -- "$1" "$2" "$3" $line
	secs=$(awk "BEGIN { printf \"%.0f\", $7 - $6 }")
	case "$5" in
	0) printf 'fresh-machine: %-11s %-20s ok in %4s s\n' "$1" "$3" "$secs" ;;
	killed) printf 'fresh-machine: %-11s %-20s killed after %s s (all its processes, SIGKILL)\n' "$1" "$3" "$secs" ;;
	*)
		case "$2" in
		spoiled)
			printf 'fresh-machine: %-11s %-20s spoiled attempt ended with exit %s after %s s\n' "$1" "$3" "$5" "$secs"
			return 0 ;;
		esac
		printf 'fresh-machine: %-11s %-20s FAILED (exit %s) after %s s; the end of its output:\n' "$1" "$3" "$5" \
			"$secs" >&2
		tail -n 80 "$work/$1/$2.log" >&2 || true
		return 1 ;;
	esac
}

tab=$(printf '\t')
status=0
for order in $orders; do
	case "$order" in
	demo-first) a=$first b=$second ;;
	test-first) a=$second b=$first ;;
	*)
		echo "fresh-machine: unknown order $order" >&2
		exit 2 ;;
	esac
	echo "fresh-machine: $order: a fresh root runs \`$a\`, then \`$b\`${spoil:+, after a first attempt of \`$a\` spoiled ($spoil)}"
	t0=$(date +%s)
	mkdir -p "$work/$order/root"
	tar -C "$work/$order/root" -xf "$tarball"
	cp -L /etc/resolv.conf "$work/$order/root/etc/resolv.conf"
	git archive --format=tar --prefix=shmkit/ HEAD | tar -C "$work/$order/root/root" -xf -
	# The cached .debs, linked in (each root has its own apt cache directory and
	# lock, so that roots of CI runs at the same time do not wait for each other).
	if [ "$debcache" = 1 ]; then
		find "$cache/debs" -maxdepth 1 -name '*.deb' -exec ln -f -t "$work/$order/root/var/cache/apt/archives" {} +
	fi
	echo "fresh-machine: $order: root ready in $(($(date +%s) - t0)) s"
	if [ -n "$spoil" ]; then
		in_root "$order" "$spoil" "spoiled$tab$a"
		report "$order" spoiled "$a" || status=1
	fi
	in_root "$order" "" "first$tab$a" "second$tab$b"
	report "$order" first "$a" || status=1
	report "$order" second "$b" || status=1
	if [ "$debcache" = 1 ]; then # what this root downloaded, for the next roots
		for f in "$work/$order/root/var/cache/apt/archives"/*.deb; do
			if [ -e "$f" ] && [ ! -e "$cache/debs/${f##*/}" ]; then ln "$f" "$cache/debs/" 2>/dev/null || true; fi
		done
	fi
	if [ -n "${SHMKIT_FRESH_LOGS:-}" ]; then
		mkdir -p "$SHMKIT_FRESH_LOGS"
		for f in "$work/$order"/*.log; do cp "$f" "$SHMKIT_FRESH_LOGS/$order.${f##*/}"; done
	fi
	t0=$(date +%s)
	rm -rf --one-file-system "${work:?}/$order"
	echo "fresh-machine: $order: root removed in $(($(date +%s) - t0)) s"
done
exit $status
