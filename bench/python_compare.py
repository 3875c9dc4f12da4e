"""shmkit's Python module against what Python programs use today, in one run.

    /usr/bin/python3 bench/python_compare.py --json [--bytes N] [--workers W] [--quick]

Needs the module on the path (PYTHONPATH=build/python, or installed by pip).
Figures (one JSON object; times are medians, with min/max and n beside them):

  attach_us, cpython_attach_us
      attach to an existing segment of --bytes by name and make a NumPy array
      of it: shmkit.open + numpy.asarray, against
      multiprocessing.shared_memory.SharedMemory + numpy.ndarray(buffer=...).
  spawn_<way>_pss_bytes, spawn_<way>_seconds  (way: shmkit, pickled, shared_memory)
      --workers processes started with the spawn method each get --bytes of
      int64 and sum it: by name (shmkit), as a pickled argument (pickled), or
      through multiprocessing.shared_memory. PSS of the whole process tree
      while every worker holds the data, and the time until all have summed.
      spawn_baseline_pss_bytes: the same workers holding no data (interpreter,
      NumPy, shmkit); the ratios spawn_<way>_pss_per_data subtract it.
  queue_msgs_per_s, mpqueue_msgs_per_s
      small objects (a tuple of an int, a float and a short str) from one
      process to another through shmkit.Queue and multiprocessing.Queue
      (rounds interleaved).
  lock_ns, mplock_ns
      one acquire() plus release() of an uncontended shmkit.Lock and
      multiprocessing.Lock, per pair, in one process (rounds interleaved).
  value_inc_ns, mpvalue_inc_ns
      ``with v.get_lock(): v.value += 1`` on shmkit.Value("q") and
      multiprocessing.Value("q"), per increment (rounds interleaved).
  joinable_msgs_per_s, mpjoinable_msgs_per_s
      small objects through a JoinableQueue, the consumer calling task_done()
      for each and the producer join()ing at the end, against
      multiprocessing.JoinableQueue (rounds interleaved).
  barrier_rounds_per_s, mpbarrier_rounds_per_s
      rounds of a 2-party Barrier (this process and a forked one) per second,
      shmkit.Barrier against multiprocessing.Barrier (rounds interleaved).
  shareable_list_rw_ns, mpshareable_list_rw_ns
      one read and one write of an int item of shmkit.shared_memory.ShareableList
      and multiprocessing.shared_memory.ShareableList (rounds interleaved).
  seed_<way>_seconds, seed_<way>_pss_per_data  (way: share, pickled, shared_memory, joblib)
      the seed's program: three lists (4 bitarray objects, 4 int64 and 4 uint32
      NumPy arrays, --seed-bytes in all) reach --workers spawned workers, each of
      which reads all of it and checks a sum; the time from the first step of
      handing them over (share(), copying into SharedMemory blocks, joblib's
      dispatch) until every worker has checked, and the PSS of the parent and
      the workers while all hold the data, above a run whose workers hold
      nothing (seed_baseline_pss_bytes), per byte of data. Each run is a fresh
      process; rounds interleave the ways. share: shmkit.share, the handle
      passed as the workers' argument, the parent's originals dropped;
      pickled: the lists as the workers' arguments; shared_memory: one
      multiprocessing.shared_memory block per array by hand, originals dropped
      (for both, malloc_trim then returns the freed heap to the system);
      joblib: Parallel(n_jobs=W) on its default loky backend with its automatic
      memmapping of arrays over 1 MB (max_nbytes="1M"), the parent keeping its
      lists as a joblib user must; loky does not run W blocking tasks at once,
      so each task returns at once and its worker keeps the lists it got,
      rounds of W tasks until W workers hold them.
  seed_<way>_vs_share_seconds, seed_<way>_vs_share_pss
      per round, the way's time (PSS above the baseline) over share's in
      the same round: min/median/max over rounds; ratios holds the medians.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import shared_memory

import numpy as np

import shmkit
from python_ref import pss_bytes  # the same PSS reading as the other Python baselines


def run_holders(ctx, target, args, workers, ready, release, t0):
    """Starts workers processes of target(*args, ready, release); once every
    one has reported (pid, result) on ready: the seconds since t0 and the PSS
    of this process and the workers, read while they all still hold the data;
    then releases and joins them. Gives (results, seconds, pss, processes)."""
    procs = [ctx.Process(target=target, args=args + (ready, release)) for _ in range(workers)]
    for p in procs:
        p.start()
    got = [ready.get(timeout=600) for _ in procs]
    seconds = time.perf_counter() - t0
    pss = pss_bytes(os.getpid()) + sum(pss_bytes(pid) for pid, _ in got)
    release.set()
    for p in procs:
        p.join()
    return got, seconds, pss, procs


def stat(xs, scale=1.0):
    xs = [x * scale for x in xs]
    return {"median": round(statistics.median(xs), 3), "min": round(min(xs), 3), "max": round(max(xs), 3),
            "n": len(xs)}


# ---- attach ---------------------------------------------------------------------

def attach(nbytes, reps):
    a = shmkit.create(None, (nbytes // 8,), "int64")
    sm = shared_memory.SharedMemory(create=True, size=nbytes)
    ours, theirs = [], []
    try:
        for i in range(reps + 1):
            t0 = time.perf_counter()
            b = shmkit.open(a.name)
            m = np.asarray(b)
            t1 = time.perf_counter()
            del m
            b.close()
            # b is itself an ndarray over the mapping (SharedArray), which
            # goes only with b: dropped here, untimed, as s.close() unmaps
            # below (rebinding b in the next round would time it there).
            del b
            t2 = time.perf_counter()
            s = shared_memory.SharedMemory(sm.name)
            n = np.ndarray((nbytes // 8,), dtype=np.int64, buffer=s.buf)
            t3 = time.perf_counter()
            del n
            s.close()
            del s
            if i:  # the first of each is a warm-up (CPython starts its resource tracker there)
                ours.append(t1 - t0)
                theirs.append(t3 - t2)
    finally:
        sm.close()
        sm.unlink()
        a.close()
    return {"attach_us": stat(ours, 1e6), "cpython_attach_us": stat(theirs, 1e6), "attach_bytes": nbytes}


# ---- 12 spawned workers -------------------------------------------------------------

def w_shmkit(name, ready, release):
    m = np.asarray(shmkit.open(name, readonly=True))
    ready.put((os.getpid(), int(m.sum())))
    release.wait()


def w_pickled(arr, ready, release):
    ready.put((os.getpid(), int(arr.sum())))
    release.wait()


def w_shared_memory(name, n, ready, release):
    s = shared_memory.SharedMemory(name)
    m = np.ndarray((n,), dtype=np.int64, buffer=s.buf)
    ready.put((os.getpid(), int(m.sum())))
    release.wait()
    del m
    s.close()


def w_baseline(ready, release):
    ready.put((os.getpid(), 0))
    release.wait()


def spawn_run(way, nbytes, workers):
    ctx = mp.get_context("spawn")
    ready, release = ctx.Queue(), ctx.Event()
    n = nbytes // 8
    keep = None
    if way == "baseline":  # the interpreter, NumPy and shmkit, no data: what every way pays anyway
        src, args, target, n = None, (), w_baseline, 1
    elif way == "shmkit":
        keep = shmkit.create(None, (n,), "int64")
        src = np.asarray(keep)
        src[:] = np.arange(n)
        args = (keep.name,)
        target = w_shmkit
    elif way == "pickled":
        src = np.arange(n, dtype=np.int64)
        args = (src,)
        target = w_pickled
    else:
        keep = shared_memory.SharedMemory(create=True, size=nbytes)
        src = np.ndarray((n,), dtype=np.int64, buffer=keep.buf)
        src[:] = np.arange(n)
        args = (keep.name, n)
        target = w_shared_memory
    expect = n * (n - 1) // 2
    got, seconds, pss, _ = run_holders(ctx, target, args, workers, ready, release, time.perf_counter())
    del src, args
    if way == "shared_memory":
        keep.close()
        keep.unlink()
    elif keep is not None:
        keep.close()
    ok = all(s == expect for _, s in got)
    return {"spawn_%s_pss_bytes" % way: pss, "spawn_%s_seconds" % way: round(seconds, 3),
            "spawn_%s_ok" % way: ok}


# ---- queue ------------------------------------------------------------------------

def q_producer(q, n):
    for i in range(n):
        q.put((i, 3.25, "payload"))


def queue_rate(kind, n):
    ctx = mp.get_context("fork")
    q = shmkit.Queue(capacity=8 << 20) if kind == "shmkit" else ctx.Queue()  # no maxsize: as the twin
    p = ctx.Process(target=q_producer, args=(q, n))
    p.start()
    first = q.get()
    t0 = time.perf_counter()
    last = first
    for _ in range(n - 1):
        last = q.get()
    dt = time.perf_counter() - t0
    p.join()
    assert first[0] == 0 and last[0] == n - 1
    return (n - 1) / dt


# ---- per-operation figures, shmkit and its multiprocessing twin interleaved ----------

def per_op_ns(fn, n):
    t0 = time.perf_counter()
    fn(n)
    return (time.perf_counter() - t0) / n * 1e9


def lock_loop(lock):
    def run(n):
        a, r = lock.acquire, lock.release
        for _ in range(n):
            a()
            r()
    return run


def value_loop(v):
    def run(n):
        for _ in range(n):
            with v.get_lock():
                v.value += 1
    return run


def shareable_list_loop(sl):
    def run(n):
        for i in range(n):
            sl[3] = sl[3] + 1
    return run


def interleaved(pairs, n, rounds):
    """pairs: {figure: (shmkit's loop, the twin's loop)}; rounds alternate."""
    out = {}
    for name, (ours, theirs) in pairs.items():
        a, b = [], []
        for _ in range(rounds):
            a.append(per_op_ns(ours, n))
            b.append(per_op_ns(theirs, n))
        out[name] = stat(a)
        out["mp" + name] = stat(b)
    return out


def per_op(quick):
    from multiprocessing import shared_memory as mp_shared_memory

    from shmkit.shared_memory import ShareableList
    sl = ShareableList([0, 1, 2, 3, 4])
    msl = mp_shared_memory.ShareableList([0, 1, 2, 3, 4])
    try:
        pairs = {
            "lock_ns": (lock_loop(shmkit.Lock()), lock_loop(mp.Lock())),
            "value_inc_ns": (value_loop(shmkit.Value("q", 0)), value_loop(mp.Value("q", 0))),
            "shareable_list_rw_ns": (shareable_list_loop(sl), shareable_list_loop(msl)),
        }
        return interleaved(pairs, 20000 if quick else 200000, 5 if quick else 9)
    finally:
        for x in (sl, msl):
            x.shm.close()
            x.shm.unlink()


def _joinable_consumer(q, n):
    for _ in range(n):
        q.get()
        q.task_done()


def joinable_rate(kind, n):
    ctx = mp.get_context("fork")
    q = shmkit.JoinableQueue(capacity=8 << 20) if kind == "shmkit" else ctx.JoinableQueue()
    p = ctx.Process(target=_joinable_consumer, args=(q, n))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put((i, 3.25, "payload"))
    q.join()
    dt = time.perf_counter() - t0
    p.join()
    return n / dt


def _barrier_party(b, n):
    for _ in range(n):
        b.wait()


def barrier_rate(kind, n):
    ctx = mp.get_context("fork")
    b = shmkit.Barrier(2) if kind == "shmkit" else ctx.Barrier(2)
    p = ctx.Process(target=_barrier_party, args=(b, n + 1))
    p.start()
    b.wait()  # both started
    t0 = time.perf_counter()
    for _ in range(n):
        b.wait()
    dt = time.perf_counter() - t0
    p.join()
    return n / dt


# ---- the seed's program: three lists to 12 spawned workers ------------------------------

def seed_lists(nbytes, seed=2026):
    """l1: 4 bitarray objects, l2: 4 int64 arrays, l3: 4 uint32 arrays; nbytes in all."""
    from bitarray import bitarray
    rng = np.random.default_rng(seed)
    part = max(nbytes // 12 // 64 * 64, 64)
    l1 = []
    for _ in range(4):
        b = bitarray(endian="little")
        b.frombytes(rng.integers(0, 256, part, dtype=np.uint8).tobytes())
        l1.append(b)
    l2 = [rng.integers(-1 << 40, 1 << 40, part // 8, dtype=np.int64) for _ in range(4)]
    l3 = [rng.integers(0, 1 << 32, part // 4, dtype=np.uint32) for _ in range(4)]
    return (l1, l2, l3), part * 12


def seed_check(lists):
    """Reads every byte of the three lists: a checksum."""
    l1, l2, l3 = lists
    return (sum(b.count() for b in l1) + sum(int(a.sum()) for a in l2) + sum(int(a.sum(dtype=np.uint64))
                                                                              for a in l3))


def seed_w_lists(lists, ready, release):  # share (the handle arrives as the lists) and pickled
    ready.put((os.getpid(), seed_check(lists)))
    release.wait()


def seed_w_shared_memory(blocks, ready, release):
    from bitarray import bitarray
    shms = [shared_memory.SharedMemory(name) for name, _, _ in blocks]
    views = []
    for shm, (_, kind, n) in zip(shms, blocks):
        if kind == "bits":
            views.append(bitarray(buffer=shm.buf[:n], endian="little"))
        else:
            views.append(np.ndarray((n,), dtype=kind, buffer=shm.buf))
    lists = (views[0:4], views[4:8], views[8:12])
    ready.put((os.getpid(), seed_check(lists)))
    release.wait()
    del lists, views
    for shm in shms:
        shm.close()


_held = None  # what a joblib worker keeps (its last task's lists)


def seed_w_joblib(lists):
    global _held
    _held = lists
    return os.getpid(), seed_check(lists)


def seed_w_idle(ready, release):
    ready.put((os.getpid(), 0))
    release.wait()


def _trim():
    """Gives the heap's free memory back to the system (glibc keeps what was
    freed, and would count as the parent's though the program dropped it)."""
    import ctypes
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def seed_run(way, nbytes, workers):
    """One way in this (fresh) process: JSON with seconds, pss_bytes, ok."""
    from bitarray import bitarray  # noqa: F401  (in the parent before anything is measured)
    ctx = mp.get_context("spawn")
    lists, data = seed_lists(nbytes) if way != "baseline" else (None, nbytes)
    expect = seed_check(lists) if lists else 0
    keep = []
    t0 = time.perf_counter()
    if way == "joblib":
        # loky does not run W blocking tasks at once (measured: 5 of 12 ran,
        # the others waited for them), so tasks return at once and each
        # worker keeps what its last task got; rounds of W tasks until W
        # workers hold the lists.
        from joblib import Parallel, delayed
        seen = {}
        with Parallel(n_jobs=workers, max_nbytes="1M", mmap_mode="r", batch_size=1) as par:
            for _ in range(50):
                seen.update(par(delayed(seed_w_joblib)(lists) for _ in range(workers)))
                if len(seen) >= workers:
                    break
            seconds = time.perf_counter() - t0
            got = list(seen.items())
            pss = pss_bytes(os.getpid()) + sum(pss_bytes(pid) for pid, _ in got)
        ok = len(got) == workers
    else:
        ready, release = ctx.Queue(), ctx.Event()
        if way == "baseline":
            target, args = seed_w_idle, ()
        elif way == "share":
            h = shmkit.share(lists)
            keep.append(h)
            lists = None  # the program keeps the shared copy only
            _trim()
            target, args = seed_w_lists, (h,)
        elif way == "pickled":
            target, args = seed_w_lists, (lists,)
        else:  # multiprocessing.shared_memory by hand: one block per array, originals dropped
            blocks = []
            for group in lists:
                for x in group:
                    raw = memoryview(x).cast("B")
                    n = raw.nbytes
                    shm = shared_memory.SharedMemory(create=True, size=max(n, 1))
                    shm.buf[:n] = raw
                    raw.release()
                    keep.append(shm)
                    kind = "bits" if not isinstance(x, np.ndarray) else x.dtype.str
                    blocks.append((shm.name, kind, n if kind == "bits" else x.size))
            del group, x  # the loop's names held l3 and its last array
            lists = None
            _trim()
            target, args = seed_w_shared_memory, (blocks,)
        got, seconds, pss, procs = run_holders(ctx, target, args, workers, ready, release, t0)
        ok = all(p.exitcode == 0 for p in procs)
    ok = ok and all(s == expect for _, s in got)
    for k in keep:
        k.close()
        if isinstance(k, shared_memory.SharedMemory):
            k.unlink()
    return {"seconds": round(seconds, 3), "pss_bytes": pss, "data_bytes": data, "ok": ok}


def seed_compare(nbytes, workers, rounds, ways):
    """Each way in a fresh process, rounds interleaved; PSS above the baseline run."""
    runs = {w: [] for w in ["baseline"] + ways}
    for _ in range(rounds):
        for w in ["baseline"] + ways:
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--seed-way", w, "--seed-bytes",
                                str(nbytes), "--workers", str(workers)], capture_output=True, text=True,
                               timeout=3600, env=os.environ)
            if r.returncode:
                raise SystemExit("seed %s: %s" % (w, r.stderr[-2000:]))
            runs[w].append(json.loads(r.stdout))
    base = statistics.median(r["pss_bytes"] for r in runs["baseline"])
    data = runs[ways[0]][0]["data_bytes"]
    out = {"seed_bytes": data, "seed_workers": workers, "seed_baseline_pss_bytes": int(base)}
    for w in ways:
        out["seed_%s_seconds" % w] = stat([r["seconds"] for r in runs[w]])
        out["seed_%s_pss_per_data" % w] = stat([(r["pss_bytes"] - base) / data for r in runs[w]])
        out["seed_%s_ok" % w] = all(r["ok"] for r in runs[w])
        if w != "share":
            pairs = list(zip(runs[w], runs["share"]))
            out["seed_%s_vs_share_seconds" % w] = stat([a["seconds"] / b["seconds"] for a, b in pairs])
            out["seed_%s_vs_share_pss" % w] = stat([(a["pss_bytes"] - base) / (b["pss_bytes"] - base)
                                                    for a, b in pairs])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object on one line (the only format)")
    ap.add_argument("--bytes", type=int, default=1 << 30, help="data per run (default 1 GiB)")
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--quick", action="store_true", help="256 MiB, fewer repetitions and messages")
    ap.add_argument("--skip-pickled", action="store_true", help="leave out the pickled-arguments run")
    ap.add_argument("--seed-bytes", type=int, default=512 << 20,
                    help="data of the seed's three lists (default 512 MiB; --quick: 128 MiB)")
    ap.add_argument("--seed-rounds", type=int, default=3, help="interleaved rounds of the seed comparison")
    ap.add_argument("--seed-only", action="store_true", help="only the seed comparison")
    ap.add_argument("--seed-way", help=argparse.SUPPRESS)  # one run of one way, in a fresh process
    args = ap.parse_args()
    if args.seed_way:
        print(json.dumps(seed_run(args.seed_way, args.seed_bytes, args.workers)))
        return 0
    seed_ways = ["share", "shared_memory", "joblib"] + ([] if args.skip_pickled else ["pickled"])
    if args.seed_only:
        out = seed_compare(args.seed_bytes, args.workers, args.seed_rounds, seed_ways)
        print(json.dumps(out))
        return 0 if all(v for k, v in out.items() if k.endswith("_ok")) else 1
    nbytes = (256 << 20) if args.quick else args.bytes
    reps = 5 if args.quick else 21
    msgs = 20000 if args.quick else 200000
    out = {"bytes": nbytes, "workers": args.workers, "python": sys.version.split()[0],
           "numpy": np.__version__, "shmkit": shmkit.__version__}
    out.update(attach(nbytes, reps))
    ways = ["baseline", "shmkit", "shared_memory"] + ([] if args.skip_pickled else ["pickled"])
    for way in ways:
        out.update(spawn_run(way, nbytes, args.workers))
    q, mq = [], []
    for _ in range(3 if args.quick else 5):  # interleaved rounds
        q.append(queue_rate("shmkit", msgs))
        mq.append(queue_rate("mp", msgs // 4))
    out["queue_msgs_per_s"] = stat(q)
    out["mpqueue_msgs_per_s"] = stat(mq)
    out.update(per_op(args.quick))
    jq, mjq = [], []
    for _ in range(3 if args.quick else 5):
        jq.append(joinable_rate("shmkit", msgs))
        mjq.append(joinable_rate("mp", msgs // 4))
    out["joinable_msgs_per_s"] = stat(jq)
    out["mpjoinable_msgs_per_s"] = stat(mjq)
    br, mbr = [], []
    for _ in range(3 if args.quick else 5):
        br.append(barrier_rate("shmkit", 2000 if args.quick else 20000))
        mbr.append(barrier_rate("mp", 2000 if args.quick else 20000))
    out["barrier_rounds_per_s"] = stat(br)
    out["mpbarrier_rounds_per_s"] = stat(mbr)
    out.update(seed_compare((128 << 20) if args.quick else args.seed_bytes, args.workers,
                            1 if args.quick else args.seed_rounds, seed_ways))
    base = out["spawn_baseline_pss_bytes"]
    r = {"attach_vs_cpython": out["cpython_attach_us"]["median"] / out["attach_us"]["median"],
         "queue_vs_mpqueue": out["queue_msgs_per_s"]["median"] / out["mpqueue_msgs_per_s"]["median"],
         "lock_vs_mplock": out["mplock_ns"]["median"] / out["lock_ns"]["median"],
         "value_inc_vs_mpvalue": out["mpvalue_inc_ns"]["median"] / out["value_inc_ns"]["median"],
         "shareable_list_vs_mp": out["mpshareable_list_rw_ns"]["median"] / out["shareable_list_rw_ns"]["median"],
         "joinable_vs_mpjoinable": out["joinable_msgs_per_s"]["median"] / out["mpjoinable_msgs_per_s"]["median"],
         "barrier_vs_mpbarrier": out["barrier_rounds_per_s"]["median"] / out["mpbarrier_rounds_per_s"]["median"],
         "spawn_shmkit_pss_per_data": (out["spawn_shmkit_pss_bytes"] - base) / nbytes,
         "spawn_shared_memory_pss_per_data": (out["spawn_shared_memory_pss_bytes"] - base) / nbytes}
    r["seed_share_pss_per_data"] = out["seed_share_pss_per_data"]["median"]
    for w in seed_ways:
        if w != "share":
            r["seed_%s_pss_per_data" % w] = out["seed_%s_pss_per_data" % w]["median"]
            r["seed_%s_vs_share_seconds" % w] = out["seed_%s_vs_share_seconds" % w]["median"]
    if "spawn_pickled_pss_bytes" in out:
        r["spawn_pickled_pss_per_data"] = (out["spawn_pickled_pss_bytes"] - base) / nbytes
        r["spawn_pickled_vs_shmkit_seconds"] = out["spawn_pickled_seconds"] / out["spawn_shmkit_seconds"]
    out["ratios"] = {k: round(v, 3) for k, v in r.items()}
    ok = all(v for k, v in out.items() if k.endswith("_ok"))
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
