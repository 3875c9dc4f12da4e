#!/usr/bin/env python3
"""check-layers.py: fails when a layer of shmkit reaches up to a higher one.

The layers (docs/design.md has them with their reasons), lowest first:

    os       src/sys/, os.h      the only code that calls the OS, and its contract
    base     common.c, simd.c, atomic.h, clock.h, simd.h
                                 error texts, names, dtypes, the clock, SIMD kernels
    segment  segment.c, format.h, kind.h, segment.h
                                 the segment: format, create/open/close, validation
    sync     sync.c, named.h     the locks (named ones are segments of their kinds)
    kinds    array.c, bits.c, value.c, queue.c, kinds.h   typed contents of a segment
    catalog  catalog.c, catalog.h   the operations on a segment of any kind
    pool     pool.c              worker processes
    api      include/shmkit.h, src/internal.h   the umbrellas (internal.h: white-box only)
    measure  measure/            what the demo and the benchmarks measure: public headers only
    front    cli/, python/ext/, examples/        public headers only (cli/ also measure/)
    cluster  cluster/            its own library: public headers only
    bench    bench/              white-box: any library header, measure/; never a front end's

Two checks:

  includes (always): every #include "..." in src/, include/, cli/, python/ext/,
  examples/ and cluster/ is resolved to a file and must name a header of the
  same layer or a lower one. A kind may not include another kind's header
  (they do not call each other), and measure/, the front ends and cluster/
  may include only the public headers (include/) and their own directory's
  headers (the front ends also measure/'s).
  bench/ is white-box towards the library (its private headers too) and
  shares code with the demo only through measure/: it may not include a front
  end's header (cli/, python/ext/, examples/), and nothing includes bench/.
  tests/ and fuzz/ are white-box and may include anything (fuzz/ feeds
  cli/npy.c), but nothing may include them.

  calls (with --lib build/libshmkit.a): every sk_ or sk__ symbol an object of
  the library uses must be defined by the same object or by one of a lower
  layer (nm, on the objects the build made: what the code does, not what it
  says).

KNOWN lists what the code still does against these rules, each with the work
that removes it; the check fails when an entry is no longer true, so the list
only shrinks. Exit status 0 when everything holds, 1 otherwise (each breach on
its own line), 2 on a usage error.
"""
import argparse
import fnmatch
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (layer, patterns) lowest first; a pattern is a path from the root.
LAYERS = [
    # include/shmkit/common.h is in the lowest layer for its constants (error
    # codes, name limits), which the OS layer returns too; the functions it
    # declares are base's (common.c), and the call check keeps the OS layer
    # from calling them.
    ("os", ["src/sys/*.c", "src/os.h", "include/shmkit/common.h"]),
    ("base", ["src/common.c", "src/simd.c", "src/atomic.h", "src/simd.h", "src/clock.h"]),
    ("segment", ["src/segment.c", "src/format.h", "src/segment.h", "src/kind.h", "include/shmkit/segment.h"]),
    ("sync", ["src/sync.c", "src/named.h", "include/shmkit/sync.h"]),
    (
        "kinds",
        [
            "src/array.c",
            "src/bits.c",
            "src/value.c",
            "src/queue.c",
            "include/shmkit/array.h",
            "include/shmkit/bits.h",
            "include/shmkit/value.h",
            "include/shmkit/queue.h",
            "src/kinds.h",
        ],
    ),
    ("catalog", ["src/catalog.c", "src/catalog.h"]),
    ("pool", ["src/pool.c", "include/shmkit/pool.h"]),
    ("api", ["include/shmkit.h", "src/internal.h"]),
    ("measure", ["measure/*"]),
    ("front", ["cli/*", "python/ext/*", "examples/*"]),
    ("cluster", ["cluster/*", "include/shmkit/cluster.h"]),
    ("bench", ["bench/*"]),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
# Layers whose modules are siblings: none may include or call another's.
SIBLINGS = {"kinds"}
# Layers that may include only public headers and their own directory's.
PUBLIC_ONLY = {"measure", "front", "cluster"}
# What a public-only layer may include besides include/ and its own directory.
ALSO = {"front": {"measure"}}
# Layers that may include any lower header but these layers'.
FORBIDDEN = {"bench": {"front"}}
WHITE_BOX = ["tests/*", "fuzz/*"]
SCANNED = ["src", "include", "measure", "cli", "python/ext", "examples", "cluster", "bench"]

# What the code still does against the rules: (check, who, what) -> the work
# that removes it. An entry that no longer happens fails the check.
KNOWN = {}


def layer_of(path):
    for name, patterns in LAYERS:
        if any(fnmatch.fnmatch(path, p) for p in patterns):
            return name
    return None


def white_box(path):
    return any(fnmatch.fnmatch(path, p) for p in WHITE_BOX)


INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def resolve(src, name):
    """The file (relative to the root) that #include "name" in src names."""
    for base in (os.path.dirname(src), "include", "src", "measure", "cli"):
        cand = os.path.normpath(os.path.join(base, name))
        if os.path.isfile(os.path.join(ROOT, cand)):
            return cand
    return None


def sources():
    for top in SCANNED:
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(d, f), ROOT)


def check_includes(found):
    bad = []
    for src in sources():
        me = layer_of(src)
        if me is None:
            bad.append(f"{src}: in no layer (add it to LAYERS in scripts/check-layers.py)")
            continue
        with open(os.path.join(ROOT, src), encoding="utf-8") as f:
            text = f.read()
        for name in INCLUDE.findall(text):
            hdr = resolve(src, name)
            if hdr is None:
                bad.append(f'{src}: #include "{name}" names no file of the tree')
                continue
            if white_box(hdr):
                bad.append(f"{src}: includes {hdr}, a test or benchmark header")
                continue
            them = layer_of(hdr)
            why = None
            if them is None:
                why = "a header in no layer"
            elif them == "bench" and me != "bench":
                why = "a benchmark header: nothing includes bench/"
            elif me in PUBLIC_ONLY and not (
                hdr.startswith("include/")
                or os.path.dirname(hdr) == os.path.dirname(src)
                or them in ALSO.get(me, ())
            ):
                why = f"a private header of the library ({them}): {me} uses the public API only"
            elif them in FORBIDDEN.get(me, ()):
                why = f"a {them} header: {me} shares code with it only through measure/"
            elif RANK[them] > RANK[me]:
                why = f"a higher layer's header ({them} above {me})"
            elif them == me and me in SIBLINGS and hdr.startswith("include/shmkit/"):
                if os.path.splitext(os.path.basename(hdr))[0] != os.path.splitext(os.path.basename(src))[0]:
                    why = f"another {me} module's header (siblings do not use each other)"
            if why:
                key = ("include", src, hdr)
                if key in KNOWN:
                    found.add(key)
                else:
                    bad.append(f"{src}: includes {hdr}, {why}")
    return bad


def check_calls(lib, found):
    out = subprocess.run(["nm", "-A", lib], check=True, capture_output=True, text=True).stdout
    defined, used = {}, {}
    for line in out.splitlines():
        # "libshmkit.a:array.c.o:0000000000000000 T sk_array_create" or "... U sym"
        head, _, rest = line.rpartition(":")
        obj = head.rsplit(":", 1)[-1]
        parts = rest.split()
        if len(parts) < 2 or not parts[-1].startswith("sk_"):
            continue
        sym, kind = parts[-1], parts[-2]
        if kind == "U":
            used.setdefault(obj, set()).add(sym)
        elif kind.isupper():
            defined[sym] = obj
    bad = []
    for obj, syms in sorted(used.items()):
        me = layer_of("src/" + obj[: -len(".o")]) or layer_of("src/sys/" + obj[: -len(".o")])
        if me is None:
            bad.append(f"{lib}: {obj} is in no layer (add its source to LAYERS)")
            continue
        for sym in sorted(syms):
            owner = defined.get(sym)
            if owner is None or owner == obj:
                continue
            them = layer_of("src/" + owner[: -len(".o")]) or layer_of("src/sys/" + owner[: -len(".o")])
            if them is None:
                continue
            if RANK[them] > RANK[me] or (them == me and me in SIBLINGS):
                key = ("call", obj, sym)
                if key in KNOWN:
                    found.add(key)
                else:
                    bad.append(f"{obj} ({me}) calls {sym} of {owner} ({them}): a call upward or sideways")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", help="the static library (build/libshmkit.a): check calls too")
    args = ap.parse_args()
    found = set()
    bad = check_includes(found)
    checks = {"include"}
    if args.lib:
        if not os.path.isfile(args.lib):
            print(f"check-layers: {args.lib}: no such file (build first)", file=sys.stderr)
            return 2
        bad += check_calls(args.lib, found)
        checks.add("call")
    for key, work in sorted(KNOWN.items()):
        if key[0] in checks and key not in found:
            bad.append(f"scripts/check-layers.py: KNOWN {key} no longer happens ({work}): remove it")
    for b in bad:
        print("check-layers: " + b, file=sys.stderr)
    if not bad:
        left = sum(1 for k in KNOWN if k[0] in checks)
        print(f"check-layers: every arrow points down ({left} known exceptions left)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
