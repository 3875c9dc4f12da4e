"""make bench: every benchmark in bench/, in one run, against its baselines
and this machine's own limits; writes bench/results/latest.json and PNG plots.

  /usr/bin/python3 bench/run.py --build BUILD [--out DIR] [--quick]

Every figure is the median of several repetitions, kept with its range
[min, max]; every ratio compares figures from this same run. --quick (make
bench QUICK=1) uses smaller sizes and fewer workers counts to finish in under
two minutes; the full run takes under twenty.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd, timeout=1200, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        sys.exit("bench: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()[-500:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def spread(values):
    """Median and [min, max] of a list of numbers."""
    return {"median": statistics.median(values), "range": [min(values), max(values)], "n": len(values)}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def machine_description():
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return ""
    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), platform.processor())
    mem = next((int(l.split()[1]) * 1024 for l in read("/proc/meminfo").splitlines()
                if l.startswith("MemTotal:")), 0)
    shm = shutil.disk_usage("/dev/shm").total
    osr = dict(l.split("=", 1) for l in read("/etc/os-release").splitlines() if "=" in l)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_bytes": mem, "dev_shm_bytes": shm,
            "kernel": platform.release(), "os": osr.get("PRETTY_NAME", "").strip('"'),
            "hostname": platform.node()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--summary-of", metavar="JSON", help="only write summary.md for an existing results file")
    args = ap.parse_args()
    if args.summary_of:
        with open(args.summary_of) as f:
            summary(json.load(f), os.path.dirname(os.path.abspath(args.summary_of)))
        return
    quick = args.quick
    b = lambda name: os.path.join(args.build, "bench", name)
    shmkit = os.path.join(args.build, "shmkit")
    py = "/usr/bin/python3"
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()
    reps = 3
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "quick": quick, "machine": machine_description(), "figures": {}, "ratios": {}}
    fig = res["figures"]

    log("machine limits")
    fig["machine"] = run_json([b("machine"), "--json", "--reps", str(reps if quick else 5),
                               "--mib", "128" if quick else "512"])

    log("attach against plain shm_open+mmap (alone, and fresh processes at once), 2 MiB against 4 KiB pages; "
        "Python's pickled arguments")
    max_mib = 256 if quick else 4096
    fig["attach"] = run_json([b("attach"), "--json", "--max", str(max_mib), "--reps", "50" if quick else "300",
                              "--size", "256", "--blocks", "5" if quick else "9", "--workers", "12",
                              "--rounds", "8" if quick else "21", "--scan-mib", "256" if quick else "1024",
                              "--scan-reps", "3" if quick else "5"])
    sizes = fig["attach"]["sizes"]
    fig["attach_python"] = run_json([py, os.path.join(HERE, "python_ref.py"), "attach", "--sizes",
                                     ",".join(map(str, sizes)), "--reps", str(reps)], timeout=1800)

    log("memory, scan and attach with 1 to 12 workers: shmkit, copy baseline, Python")
    data = (32 << 20) if quick else (256 << 20)
    workers = [1, 2, 4, 8, 12] if quick else list(range(1, 13))
    sweep = []
    for w in workers:
        runs = [run_json([shmkit, "demo", "--size", str(data), "--workers", str(w), "--baseline", "copy", "--json"])
                for _ in range(reps)]
        pyr = [run_json([py, os.path.join(HERE, "python_ref.py"), "memory", "--bytes", str(data),
                         "--workers", str(w)]) for _ in range(reps)]
        if not all(r["results_ok"] for r in runs + pyr):
            sys.exit("bench: a run reported wrong results")
        sweep.append({
            "workers": w,
            "data_bytes": runs[0]["data_bytes"],
            "pss_total_bytes": spread([r["pss_total_bytes"] for r in runs]),
            "copy_pss_total_bytes": spread([r["copy_pss_total_bytes"] for r in runs]),
            "python_pss_total_bytes": spread([r["pss_total_bytes"] for r in pyr]),
            "page_tables_bytes": spread([r["page_tables_bytes"] for r in runs]),
            "scan_gbps": spread([r["scan_gbps"] for r in runs]),
            "memread_gbps": spread([r["memread_gbps"] for r in runs]),
            "attach_us_max": spread([r["attach_us_max"] for r in runs]),
            "copy_seconds": spread([r["copy_seconds"] for r in runs]),
            "python_seconds_to_ready": spread([r["seconds_to_all_workers_ready"] for r in pyr]),
        })
        log("  %2d workers done (%.0f s so far)" % (w, time.time() - t_start))
    fig["workers_sweep"] = sweep

    log("bit counting, locks, queue")
    bruns = [run_json([b("bits"), "--json", "--size", "256" if quick else "1024", "--reps", "3"])
             for _ in range(reps)]
    fig["bits"] = {"bytes": bruns[0]["bytes"], "simd": bruns[0]["simd"]}
    fig["bits"].update({k: spread([x[k] for x in bruns]) for k in ("popcount_gbps", "read_gbps", "popcount_vs_read")})
    build_boost_peers(b, args.build)
    lruns = [run_json([b("lock"), "--json", "--reps", "5"]) for _ in range(reps)]
    fig["lock"] = lock_figures(lruns)
    log("queue against its peers, interleaved run by run: " + ", ".join(p for p, _ in queue_peer_cmds(b)))
    qruns, peer_runs = queue_with_peers(b, args.build, quick, reps)
    fig["queue"] = {k: spread([q[k] for q in qruns])
                    for k in ("msgs_per_s", "msgs_per_s_batch", "pipe_msgs_per_s")}
    mp = [q["mpqueue_msgs_per_s"] for q in qruns if q.get("mpqueue_msgs_per_s")]
    fig["queue"]["mpqueue_msgs_per_s"] = spread(mp) if mp else None
    fig["queue"]["latency_payload_bytes"] = qruns[0]["latency_payload_bytes"]
    npay = len(qruns[0]["latency_payload_bytes"])
    fig["queue"]["latency_ns_p50"] = {
        mode: [statistics.median(q["latency_ns_p50"][mode][i] for q in qruns) for i in range(npay)]
        for mode in qruns[0]["latency_ns_p50"]}
    fig["queue"]["latency_ns_p50_range"] = {
        mode: [[min(q["latency_ns_p50"][mode][i] for q in qruns), max(q["latency_ns_p50"][mode][i] for q in qruns)]
               for i in range(npay)]
        for mode in qruns[0]["latency_ns_p50"]}
    fig["queue_peers"] = queue_peer_figures(qruns, peer_runs)

    pymod = os.path.join(os.path.abspath(args.build), "python")
    if os.path.isdir(os.path.join(pymod, "shmkit")):
        log("the Python module against multiprocessing (shared_memory, pickled arguments, Queue)")
        env = dict(os.environ, PYTHONPATH=pymod)
        fig["python"] = run_json([py, os.path.join(HERE, "python_compare.py"), "--json"] +
                                 (["--quick"] if quick else []), timeout=3600, env=env)
        if not all(v for k, v in fig["python"].items() if k.endswith("_ok")):
            sys.exit("bench: python_compare reported wrong results")
    else:
        fig["python"] = None
    if fig["python"] is not None:
        log("shmkit.dask against Dask's client.scatter(broadcast=True)")
        fig["dask"] = run_json([py, os.path.join(HERE, "dask_compare.py"), "--json"] +
                               (["--quick"] if quick else []), timeout=3600, env=env)

    if os.path.exists(os.path.join(args.build, "cluster", "openmpi", "bench_cluster")):
        log("cluster mode on Open MPI over TCP: memory per node, replication, remote elements (bench/cluster_run.py)")
        fig["cluster"] = run_json([py, os.path.join(HERE, "cluster_run.py"), "--build", args.build, "--json"] +
                                  (["--quick"] if quick else []), timeout=3600)
    else:
        log("cluster mode not built (no MPI when CMake configured): skipped")
        fig["cluster"] = None

    # Ratios, each from this run.
    last = sweep[-1]
    med = lambda d: d["median"]
    r = res["ratios"]
    r["workers"] = last["workers"]
    r["pss_shmkit_vs_data"] = med(last["pss_total_bytes"]) / last["data_bytes"]
    r["pss_copy_vs_shmkit"] = med(last["copy_pss_total_bytes"]) / med(last["pss_total_bytes"])
    r["pss_python_vs_shmkit"] = med(last["python_pss_total_bytes"]) / med(last["pss_total_bytes"])
    big = fig["attach"]["attach_us_median"][-1]
    r["attach_size_bytes"] = sizes[-1]
    r["attach_python_vs_shmkit"] = fig["attach_python"]["attach_us_median"][-1] / big
    at = fig["attach"]
    r["attach_alone_vs_plain"] = med(at["alone"]["ratio"])
    r["attach_at_once_vs_plain"] = med(at["at_once"]["ratio"])
    r["attach_at_once_cpu_vs_plain"] = med(at["at_once"]["cpu_ratio"])
    pg = at["pages"]
    r["cold_vs_warm_default_pages"] = med(pg["default"]["cold_vs_warm"])
    r["cold_vs_warm_4k_pages"] = med(pg["small"]["cold_vs_warm"])
    r["fill_default_vs_4k_pages"] = med(pg["fill_speedup"])
    r["create_fill_default_vs_4k_pages"] = med(pg["create_fill_speedup"])
    r["fill_default_vs_plain_shm"] = med(pg["fill_speedup_vs_plain"])
    r["create_fill_default_vs_plain_shm"] = med(pg["create_fill_speedup_vs_plain"])
    r["fill_default_vs_second_fill"] = med(pg["default"]["fill_vs_refill"])
    r["scan_vs_private_read_same_workers"] = med(last["scan_gbps"]) / med(last["memread_gbps"])
    r["scan_vs_machine_read_n"] = med(last["scan_gbps"]) / fig["machine"]["read_gbps_n"]
    r["popcount_vs_read"] = med(fig["bits"]["popcount_vs_read"])
    r["mutex_vs_pthread_robust"] = med(fig["lock"]["mutex_vs_pthread"])
    for k in ("handoffs", "turns"):
        if k + "_vs_pthread" in fig["lock"]:
            r["lock_%s_vs_pthread_robust" % k] = med(fig["lock"][k + "_vs_pthread"])
    if "mutex_vs_boost" in fig["lock"]:
        r["mutex_vs_boost"] = med(fig["lock"]["mutex_vs_boost"])
        for k in ("handoffs", "turns"):
            r["lock_%s_vs_boost" % k] = med(fig["lock"][k + "_vs_boost"])
    q = fig["queue"]
    if q["mpqueue_msgs_per_s"]:
        r["queue_vs_mpqueue"] = med(q["msgs_per_s"]) / med(q["mpqueue_msgs_per_s"])
        r["queue_batch_vs_mpqueue"] = med(q["msgs_per_s_batch"]) / med(q["mpqueue_msgs_per_s"])
    r["queue_vs_pipe"] = med(q["msgs_per_s"]) / med(q["pipe_msgs_per_s"])
    for peer, figs in fig["queue_peers"]["ratios"].items():
        for name, ratio in figs.items():
            r["queue_%s_vs_%s" % (name, peer)] = ratio["median"]
    if fig["python"]:
        r.update({"python_" + k: v for k, v in fig["python"]["ratios"].items()})
    if fig["cluster"]:
        r.update({"cluster_" + k: v for k, v in fig["cluster"]["ratios"].items()})
    if fig.get("dask"):
        r["dask_shmkit_pss_per_data"] = fig["dask"]["shmkit_pss_per_data"]["median"]
        r.update({"dask_" + k: v for k, v in fig["dask"]["ratios"].items()})
    res["seconds"] = round(time.time() - t_start, 1)

    path = os.path.join(args.out, "latest.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    plots(res, args.out)
    summary(res, args.out)
    log("wrote %s, summary.md and plots in %.0f s" % (path, res["seconds"]))
    for k, v in r.items():
        print("%-36s %s" % (k, round(v, 3) if isinstance(v, float) else v))


LOCK_FIGURES = ("mutex_ns", "pthread_robust_ns", "pthread_plain_ns", "mutex_vs_pthread", "handoffs_per_s",
                "pthread_robust_handoffs_per_s", "pthread_plain_handoffs_per_s", "handoffs_vs_pthread", "turns_per_s",
                "pthread_robust_turns_per_s", "pthread_plain_turns_per_s", "turns_vs_pthread",
                "owner_death_recovery_us", "pthread_robust_recovery_us", "owner_death_recovery_after_1s_us",
                "blocked_waiter_cpu_pct", "blocked_4_waiters_cpu_pct",
                "boost_ns", "boost_handoffs_per_s", "boost_turns_per_s", "mutex_vs_boost", "handoffs_vs_boost",
                "turns_vs_boost")


def lock_figures(lruns):
    """bench/lock's figures over its runs: median and [min, max] of each run's
    median. A figure some run lacks or gives as null (Boost's, where
    bench/lock_boost.cpp was not built) is left out; Boost's owner-death note
    (it is not robust: no figure) is kept as words."""
    fig = {k: spread([x[k] for x in lruns]) for k in LOCK_FIGURES if all(x.get(k) is not None for x in lruns)}
    notes = [x.get("boost_owner_death_note") for x in lruns]
    if all(notes):
        fig["boost_owner_death_note"] = notes[0] if len(set(notes)) == 1 else "; ".join(sorted(set(notes)))
    return fig


def build_boost_peers(b, build):
    """Builds the Boost.Interprocess peers (bench/queue_boost, and bench/lock
    with bench/lock_boost.cpp) if a C++ compiler and the Boost headers are
    there now but were not when the build tree was configured."""
    if not os.path.exists(b("queue_boost")) and shutil.which("c++") and \
            os.path.exists("/usr/include/boost/interprocess/ipc/message_queue.hpp"):
        log("building bench/queue_boost and bench/lock's Boost peer (C++, Boost.Interprocess)")
        subprocess.run(["cmake", "-S", os.path.dirname(HERE), "-B", build, "-U", "CMAKE_CXX_COMPILER",
                        "-U", "SHMKIT_BOOST_IPC"], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", build, "--target", "bench_queue_boost", "bench_lock"], check=True,
                       capture_output=True)


QUEUE_PEERS = (("boost", "queue_boost", []), ("mq", "queue_peers", ["--peer", "mq"]),
               ("seqpacket", "queue_peers", ["--peer", "seqpacket"]), ("pipe", "queue_peers", ["--peer", "pipe"]))


def queue_peer_cmds(b):
    """The peer benchmarks that exist in this build: (name, command)."""
    return [(name, [b(prog)] + extra) for name, prog, extra in QUEUE_PEERS if os.path.exists(b(prog))]


def queue_with_peers(b, build, quick, reps):
    """Runs bench/queue and every peer, rep by rep (interleaved). Builds the
    Boost peer first if a C++ compiler and the Boost headers are there now but
    were not when the build tree was configured."""
    build_boost_peers(b, build)
    q = ["--quick"] if quick else []
    qruns, peer_runs = [], {}
    for _ in range(reps):
        qruns.append(run_json([b("queue"), "--json"] + q))
        for name, cmd in queue_peer_cmds(b):
            peer_runs.setdefault(name, []).append(run_json(cmd + q))
    return qruns, peer_runs


def queue_peer_figures(qruns, peer_runs):
    """The harness figures (bench/qharness.h) of shmkit and each peer, and
    shmkit's ratio to each peer per run (>1: shmkit better; throughput
    divided, latency inverted), as median and [min, max] over the runs."""
    names = [k for k in qruns[0] if k.startswith(("tput_", "lat_")) and not k.endswith("_note")]
    figs = {"shmkit": {k: spread([x[k] for x in qruns]) for k in names if all(x.get(k) is not None for x in qruns)}}
    ratios = {}
    for peer, runs in peer_runs.items():
        figs[peer] = {k: spread([x[k] for x in runs]) for k in names if all(x.get(k) is not None for x in runs)}
        notes = {k: v for k, v in runs[0].items() if k.endswith("_note")}
        if notes:
            figs[peer]["notes"] = notes
        ratios[peer] = {}
        for k in names:
            if not (k.endswith("_msgs_per_s") or k.endswith("_ns")):
                continue
            pairs = [(s[k], p.get(k)) for s, p in zip(qruns, runs)]
            if not all(a and b for a, b in pairs):
                continue  # a figure the peer cannot give (or a failed run: it reported 0)
            vals = [a / b if k.endswith("_msgs_per_s") else b / a for a, b in pairs]
            ratios[peer][k] = spread(vals)
    return {"figures": figs, "ratios": ratios}


def summary(res, out):
    """The headline figures as a Markdown table (summary.md), for the README."""
    f, r, m = res["figures"], res["ratios"], res["machine"]
    last = f["workers_sweep"][-1]
    med = lambda d: d["median"]
    val = lambda x: x["median"] if isinstance(x, dict) else x  # results files before ranges were kept
    mib, gib = 1 << 20, 1 << 30
    q = f["queue"]
    rows = [
        ("Memory, %d workers sharing %d MiB (PSS of the process tree)" % (last["workers"], last["data_bytes"] // mib),
         "%.0f MiB = %.2fx the data" % (med(last["pss_total_bytes"]) / mib, r["pss_shmkit_vs_data"]),
         "copy per worker: %.0f MiB (%.1fx); Python pickled arguments: %.0f MiB (%.1fx)" % (
             med(last["copy_pss_total_bytes"]) / mib, r["pss_copy_vs_shmkit"],
             med(last["python_pss_total_bytes"]) / mib, r["pss_python_vs_shmkit"])),
        ("Time until a worker has %d MiB" % (r["attach_size_bytes"] // mib),
         "%.1f us (attach by name)" % f["attach"]["attach_us_median"][-1],
         "Python pickled argument: %.0f ms (%.0fx)" % (f["attach_python"]["attach_us_median"][-1] / 1000,
                                                       r["attach_python_vs_shmkit"])),
        ("Scan, %d workers" % last["workers"], "%.1f GB/s" % med(last["scan_gbps"]),
         "same workers reading private memory: %.1f GB/s (%.2fx); machine, %d processes: %.1f GB/s (%.2fx)" % (
             med(last["memread_gbps"]), r["scan_vs_private_read_same_workers"], f["machine"]["nproc"],
             f["machine"]["read_gbps_n"], r["scan_vs_machine_read_n"])),
    ]
    at = f["attach"]
    rng = lambda d, fmt: (fmt + " (" + fmt + "-" + fmt + ")") % (d["median"], d["range"][0], d["range"][1])
    if "alone" in at:
        al, ao = at["alone"], at["at_once"]
        rows.append(("Attach %d MiB by name, against plain shm_open+mmap (ratio, min-max)" % (al["size_bytes"] // mib),
                     "alone: %.2f us vs %.2f us = %s" % (al["attach_us"]["median"], al["plain_us"]["median"],
                                                          rng(al["ratio"], "%.2fx")),
                     "%d fresh processes at once: %.1f us vs %.1f us = %s (CPU time %s)" % (
                         ao["workers"], ao["attach_us"]["median"], ao["plain_us"]["median"], rng(ao["ratio"], "%.2fx"),
                         rng(ao["cpu_ratio"], "%.2fx"))))
    if "pages" in at:
        pg = at["pages"]
        d, s4 = pg["default"], pg["small"]
        rows.append(("A fresh worker reading %d MiB: cold / warm" % (pg["bytes"] // mib),
                     "default pages (%s): %s, %.1f GB/s cold, page tables %.0f KiB" % (
                         "2 MiB" if d["reader_page_size"] > 4096 else "4 KiB", rng(d["cold_vs_warm"], "%.2f"),
                         d["cold_scan_gbps"]["median"], d["page_tables_bytes"]["median"] / 1024),
                     "4 KiB pages: %s, %.1f GB/s cold, page tables %.0f KiB" % (
                         rng(s4["cold_vs_warm"], "%.2f"), s4["cold_scan_gbps"]["median"],
                         s4["page_tables_bytes"]["median"] / 1024)))
        pl = pg.get("plain")  # results of builds before the plain peer have none
        if pl is None:
            rows.append(("Creator's first fill of %d MiB" % (pg["bytes"] // mib),
                         "default pages: %.1f GB/s = %s 4 KiB pages" % (
                             d["fill_gbps"]["median"], rng(pg["fill_speedup"], "%.1fx")),
                         "4 KiB pages: %.2f GB/s" % s4["fill_gbps"]["median"]))
        else:
            rows.append(("Creator's first fill of %d MiB" % (pg["bytes"] // mib),
                         "default pages: %.1f GB/s (%s a second fill of the same memory) = %s plain shm_open+"
                         "ftruncate+mmap, %s 4 KiB pages; create + fill %s, %s faster" % (
                             d["fill_gbps"]["median"], rng(d["fill_vs_refill"], "%.2fx"),
                             rng(pg["fill_speedup_vs_plain"], "%.1fx"), rng(pg["fill_speedup"], "%.1fx"),
                             rng(pg["create_fill_speedup_vs_plain"], "%.1fx"), rng(pg["create_fill_speedup"], "%.1fx")),
                         "plain: %.2f GB/s (%s a second fill); 4 KiB pages: %.2f GB/s (%s); create %.3f s (default) "
                         "vs %.3f s (4 KiB)" % (
                             pl["fill_gbps"]["median"], rng(pl["fill_vs_refill"], "%.2fx"), s4["fill_gbps"]["median"],
                             rng(s4["fill_vs_refill"], "%.2fx"), d["create_s"]["median"], s4["create_s"]["median"])))
    rows += [
        ("Popcount of %d MiB of bits" % (f["bits"]["bytes"] // mib), "%.1f GB/s (%s)" % (
            val(f["bits"]["popcount_gbps"]), f["bits"]["simd"]),
         "plain read of the same buffer: %.1f GB/s (%.2fx)" % (val(f["bits"]["read_gbps"]), r["popcount_vs_read"])),
        ("Robust mutex, uncontended lock+unlock", "%.1f ns" % val(f["lock"]["mutex_ns"]),
         "glibc robust pthread mutex: %.1f ns (%.2fx); owner killed to next locker: %.0f us" % (
             val(f["lock"]["pthread_robust_ns"]), r["mutex_vs_pthread_robust"],
             val(f["lock"]["owner_death_recovery_us"]))),
    ]
    lk = f["lock"]
    if "turns_vs_pthread" in lk:
        rng = lambda d: "%.2fx [%.2f, %.2f]" % (d["median"], d["range"][0], d["range"][1])
        rate = lambda x: "%.2f M" % (x / 1e6) if x >= 1e5 else "%.0f" % x
        rows += [
            ("Robust mutex, two processes contending",
             "%s hand-offs/s, %s turns/s" % (rate(val(lk["handoffs_per_s"])), rate(val(lk["turns_per_s"]))),
             "glibc robust: %s hand-offs/s, %s turns/s; shmkit/glibc (median over runs of each run's median "
             "per-rep ratio [min, max]): hand-offs %s, turns %s" % (
                 rate(val(lk["pthread_robust_handoffs_per_s"])), rate(val(lk["pthread_robust_turns_per_s"])),
                 rng(lk["handoffs_vs_pthread"]), rng(lk["turns_vs_pthread"]))),
            ("Robust mutex, lockers blocked 2 s on a live holder",
             "%.3f%% of a CPU (one), %.3f%% (four)" % (val(lk["blocked_waiter_cpu_pct"]),
                                                     val(lk["blocked_4_waiters_cpu_pct"])),
             "owner killed to a waiter blocked 20 ms: %.0f us, blocked 1 s: %.1f ms (glibc robust: %.0f us)" % (
                 val(lk["owner_death_recovery_us"]), val(lk["owner_death_recovery_after_1s_us"]) / 1000,
                 val(lk["pthread_robust_recovery_us"]))),
        ]
        rows.append(lock_boost_row(lk))
    rows += [
        ("Queue, 64-byte messages, 1 producer + 1 consumer", "%.2f M/s; batched %.1f M/s" % (
            med(q["msgs_per_s"]) / 1e6, med(q["msgs_per_s_batch"]) / 1e6),
         "pipe: %.2f M/s (%.2fx)" % (med(q["pipe_msgs_per_s"]) / 1e6, r["queue_vs_pipe"]) + (
             "; multiprocessing.Queue: %.0f k/s (%.1fx, batched %.0fx)" % (
                 med(q["mpqueue_msgs_per_s"]) / 1e3, r["queue_vs_mpqueue"], r["queue_batch_vs_mpqueue"])
             if q.get("mpqueue_msgs_per_s") else "")),
        ("Queue one-way latency, 64 B / 4 MiB", "%.0f ns / %.0f us blocking; zero-copy %.0f ns / %.0f ns" % (
            q["latency_ns_p50"]["blocking"][0], q["latency_ns_p50"]["blocking"][-1] / 1000,
            q["latency_ns_p50"]["zerocopy"][0], q["latency_ns_p50"]["zerocopy"][-1]), "busy-polling: %.0f ns / %.0f us" % (
            q["latency_ns_p50"]["busy"][0], q["latency_ns_p50"]["busy"][-1] / 1000)),
    ]
    pyf = f.get("python")
    if pyf:
        rows += [
            ("Python: attach %d MiB by name + numpy.asarray" % (pyf["attach_bytes"] // mib),
             "%.1f us" % pyf["attach_us"]["median"],
             "multiprocessing.shared_memory + numpy.ndarray: %.1f us (%.2fx)" % (
                 pyf["cpython_attach_us"]["median"], r["python_attach_vs_cpython"])),
            ("Python: %d spawned workers sum %d MiB (PSS above %d idle workers)" % (
                pyf["workers"], pyf["bytes"] // mib, pyf["workers"]),
             "%.2fx the data, %.2f s" % (r["python_spawn_shmkit_pss_per_data"], pyf["spawn_shmkit_seconds"]),
             "shared_memory: %.2fx, %.2f s" % (r["python_spawn_shared_memory_pss_per_data"],
                                              pyf["spawn_shared_memory_seconds"]) + (
                 "; pickled arguments: %.2fx, %.1f s" % (r["python_spawn_pickled_pss_per_data"],
                                                       pyf["spawn_pickled_seconds"])
                 if "spawn_pickled_seconds" in pyf else "")),
        ]
        if "seed_share_pss_per_data" in pyf:  # the seed's program (python_compare.py seed_*)
            others = [w for w in ("shared_memory", "joblib", "pickled") if "seed_%s_pss_per_data" % w in pyf]
            rows.append((
                "Python, the seed's program: bitarrays and NumPy arrays (%d MiB) to %d spawned workers (PSS above "
                "idle workers)" % (pyf["seed_bytes"] // mib, pyf["seed_workers"]),
                "shmkit.share: %.2fx the data, %.2f s" % (pyf["seed_share_pss_per_data"]["median"],
                                                        pyf["seed_share_seconds"]["median"]),
                "; ".join("%s: %.2fx, %.2f s (%.1fx the time)" % (
                    w.replace("_", " "), pyf["seed_%s_pss_per_data" % w]["median"],
                    pyf["seed_%s_seconds" % w]["median"], pyf["seed_%s_vs_share_seconds" % w]["median"])
                    for w in others)))
        rows += [
            ("Python: shmkit.Queue, small objects, 1 producer + 1 consumer",
             "%.0f k/s" % (pyf["queue_msgs_per_s"]["median"] / 1e3),
             "multiprocessing.Queue: %.0f k/s (%.1fx)" % (pyf["mpqueue_msgs_per_s"]["median"] / 1e3,
                                                          r["python_queue_vs_mpqueue"])),
        ]
    cf = f.get("cluster")
    if cf:
        cr, rep, rem, rma = cf["ratios"], cf["replicate"], cf["remote"], cf["remote_rma"]
        rows += [
            ("Cluster (2 fake hosts, TCP): %d MiB replicated, %d ranks per node" % (cf["data_mib"],
                                                                                 rep["ranks_per_node"]),
             "%.2fx the data per node (PSS); %.2f GB/s" % (cr["pss_per_node_vs_data"], rep["replicate_gbps"]["median"]),
             "MPI_Bcast copies: %.2fx, %.2f GB/s (%.2fx); Dask scatter(broadcast=True), %d workers: %.2fx" % (
                 cr["copy_pss_per_node_vs_data"], rep["bcast_gbps"]["median"], cr["replicate_vs_bcast"]["median"],
                 cr["dask_workers"], cr["dask_pss_vs_data"])),
            ("Cluster: batched gather of remote int64 elements",
             "%.1f M/s; one element %.0f us" % (rem["gather_elems_per_s"]["median"] / 1e6, rem["gather_us"]["median"]),
             "batched MPI_Get: %.3f M/s (%.0fx); ping-pong %.0f us; remote add %.0fx MPI_Fetch_and_op" % (
                 rma["mpi_get_elems_per_s"]["median"] / 1e6, cr["gather_vs_mpi_get"]["median"],
                 rem["rtt_us"]["median"], cr["add_vs_fetch_and_op"]["median"])),
        ]
    dk = f.get("dask")
    if dk:
        rows.append(("Dask: %d workers get %d MiB (growth of their PSS; until every worker summed it)" % (
            dk["workers"], dk["bytes"] // mib), "shmkit.dask: %.2fx the data, %.2f s" % (
            dk["shmkit_pss_per_data"]["median"], dk["shmkit_seconds"]["median"]),
            "client.scatter(broadcast=True): %.2fx, %.2f s" % (dk["scatter_pss_per_data"]["median"],
                                                              dk["scatter_seconds"]["median"])))
    lines = ["| figure | shmkit | baseline, same run |", "|---|---|---|"]
    lines += ["| %s | %s | %s |" % row for row in rows]
    lines += queue_peer_table(f.get("queue_peers"))
    mach = f["machine"]
    lines += ["", "Machine limits, same run: read %.1f GB/s (1 process), %.1f GB/s (%d processes); first touch of "
              "fresh shared memory %.2f GB/s; memcpy %.1f GB/s." % (mach["read_gbps_1"], mach["read_gbps_n"],
                                                                   mach["nproc"], mach["first_touch_gbps"],
                                                                   mach["memcpy_gbps"]),
              "Machine: %s, %d cores, %.0f GiB RAM, %s, kernel %s; %s run of %s (%.0f s)." % (
                  m["cpu"], m["cores"], m["memory_bytes"] / gib, m["os"], m["kernel"],
                  "quick" if res["quick"] else "full", res["date"], res["seconds"])]
    with open(os.path.join(out, "summary.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def lock_boost_row(lk):
    """The summary row of shmkit's mutex against Boost.Interprocess
    interprocess_mutex: Boost's figures and shmkit's ratio to them, each
    ratio the median over runs of each run's median per-rep ratio [min, max];
    no owner-death figure (Boost's mutex is not robust), its note instead."""
    label = "Mutex against Boost.Interprocess interprocess_mutex (uncontended; two processes)"
    if "mutex_vs_boost" not in lk:
        return (label, "n/a", "n/a: no Boost figures in this run (bench/lock has them only where a C++ compiler "
                              "and the Boost headers were there when it was built)")
    rng = lambda d: "%.2fx [%.2f, %.2f]" % (d["median"], d["range"][0], d["range"][1])
    rate = lambda x: "%.2f M" % (x / 1e6) if x >= 1e5 else "%.0f" % x
    med = lambda d: d["median"]
    return (label, "%.1f ns; %s hand-offs/s, %s turns/s" % (med(lk["mutex_ns"]), rate(med(lk["handoffs_per_s"])),
                                                          rate(med(lk["turns_per_s"]))),
            "Boost: %.1f ns, %s hand-offs/s, %s turns/s; shmkit/Boost (median over runs of each run's median "
            "per-rep ratio [min, max]): uncontended time %s (< 1: shmkit faster), hand-offs %s, turns %s; "
            "owner killed: %s" % (
                med(lk["boost_ns"]), rate(med(lk["boost_handoffs_per_s"])), rate(med(lk["boost_turns_per_s"])),
                rng(lk["mutex_vs_boost"]), rng(lk["handoffs_vs_boost"]), rng(lk["turns_vs_boost"]),
                lk.get("boost_owner_death_note", "not measured")))


def queue_case_label(k):
    parts = k.split("_")
    size = {"64": "64 B", "4k": "4 KiB", "1m": "1 MiB"}.get(parts[2] if k.startswith("tput_") else parts[1], "?")
    if k.startswith("tput_"):
        return "%s, %s (msgs/s)" % (parts[1].replace("x", " producers x ") + " consumers", size)
    return "one-way latency, %s (ns)" % size


def queue_peer_table(qp):
    """shmkit against each peer, same runs: shmkit's figure and its ratio to
    each peer (median [min, max]; >1: shmkit better), futex calls per message."""
    if not qp:
        return []
    peers = [p for p in qp["figures"] if p != "shmkit"]
    sh = qp["figures"]["shmkit"]
    lines = ["", "Queue against its peers (bench/qharness.h; each column a peer run interleaved with shmkit; "
             "ratio > 1: shmkit better):", "",
             "| figure | shmkit | " + " | ".join(peers) + " |", "|---|---|" + "---|" * len(peers)]
    for k in sh:
        if not (k.endswith("_msgs_per_s") or k.endswith("_ns")):
            continue
        v = sh[k]["median"]
        cells = []
        for p in peers:
            rr = qp["ratios"].get(p, {}).get(k)
            cells.append("%.2fx [%.2f, %.2f]" % (rr["median"], rr["range"][0], rr["range"][1]) if rr else "n/a")
        vs = ("%.0f ns" % v) if k.endswith("_ns") else ("%.3g M/s" % (v / 1e6) if v >= 1e5 else "%.0f /s" % v)
        lines.append("| %s | %s | %s |" % (queue_case_label(k), vs, " | ".join(cells)))
    ck = [k for k in sh if k.endswith("_cpu_ns_per_msg")]
    if ck:
        lines.append("| CPU time per message, all processes, ns (%s) | %s | %s |" % (
            ", ".join(k.split("_")[1] + " " + k.split("_")[2] for k in ck),
            " / ".join("%.0f" % sh[k]["median"] for k in ck),
            " | ".join(" / ".join("%.0f" % qp["figures"][p][k]["median"]
                                  if qp["figures"][p].get(k, {}).get("median") else "n/a"  # 0: the peer cannot
                                  for k in ck) for p in peers)))
    fk = [k for k in sh if k.endswith("_futex_per_msg")]
    if fk:
        lines.append("| futex calls per message (%s) | %s | %s |" % (
            ", ".join(k.split("_")[1] + " " + k.split("_")[2] for k in fk),
            " / ".join("%.3f" % sh[k]["median"] for k in fk),
            " | ".join(" / ".join("%.3f" % qp["figures"][p][k]["median"] if k in qp["figures"][p] else "-"
                                  for k in fk) for p in peers)))
    return lines


def gnuplot(script, out_dir):
    if not shutil.which("gnuplot"):
        log("gnuplot not found: no plots (make bench installs gnuplot-nox)")
        return
    subprocess.run(["gnuplot"], input=script, text=True, check=True, cwd=out_dir)


def plots(res, out):
    fig = res["figures"]
    m = res["machine"]
    title = "%s, %d cores, %s" % (m["cpu"], m["cores"], "quick run" if res["quick"] else res["date"][:10])
    head = ('set terminal pngcairo size 900,560 font "DejaVu Sans,11"\nset grid\nset key top left\n'
            'set title "%s" font ",10"\n' % title.replace('"', ""))
    mib = 1 << 20

    sw = fig["workers_sweep"]
    with open(os.path.join(out, "memory.dat"), "w") as f:
        f.write("# workers shmkit(min med max) copy(min med max) python(min med max), MiB\n")
        for s in sw:
            row = [s["workers"]]
            for k in ("pss_total_bytes", "copy_pss_total_bytes", "python_pss_total_bytes"):
                row += [s[k]["range"][0] / mib, s[k]["median"] / mib, s[k]["range"][1] / mib]
            f.write(" ".join("%g" % x for x in row) + "\n")
    gnuplot(head + 'set output "memory.png"\nset xlabel "worker processes"\n'
            'set ylabel "PSS of the whole process tree (MiB)"\nset xrange [0:13]\n'
            'set label 1 "data: %d MiB" at graph 0.02, graph 0.8\n'
            'plot "memory.dat" u 1:6:5:7 w yerrorlines lw 2 t "copy per worker (pipe)", '
            '"" u 1:9:8:10 w yerrorlines lw 2 t "Python multiprocessing, pickled arguments", '
            '"" u 1:3:2:4 w yerrorlines lw 2 t "shmkit, one shared copy"\n' % (sw[0]["data_bytes"] // mib), out)

    at, ap = fig["attach"], fig["attach_python"]
    plain = at.get("plain_us_median", [float("nan")] * len(at["sizes"]))
    with open(os.path.join(out, "attach.dat"), "w") as f:
        f.write("# size_MiB shmkit_us python_us plain_shm_open_mmap_us\n")
        for s, a, p, q in zip(at["sizes"], at["attach_us_median"], ap["attach_us_median"], plain):
            f.write("%g %g %g %g\n" % (s / mib, a, p, q))
    gnuplot(head + 'set output "attach.png"\nset logscale xy\nset xlabel "data size (MiB)"\n'
            'set ylabel "time until a worker has the data (us)"\n'
            'plot "attach.dat" u 1:3 w lp lw 2 t "Python: pickled argument through a pipe", '
            '"" u 1:2 w lp lw 2 t "shmkit: attach by name, read first and last element", '
            '"" u 1:4 w lp lw 2 dt 2 t "plain shm_open + fstat + mmap, same reads"\n', out)

    mach = fig["machine"]
    with open(os.path.join(out, "scan.dat"), "w") as f:
        f.write("# workers scan(min med max) private_read(min med max) GB/s\n")
        for s in sw:
            row = [s["workers"]] + [s["scan_gbps"]["range"][0], s["scan_gbps"]["median"], s["scan_gbps"]["range"][1],
                                    s["memread_gbps"]["range"][0], s["memread_gbps"]["median"],
                                    s["memread_gbps"]["range"][1]]
            f.write(" ".join("%g" % x for x in row) + "\n")
    gnuplot(head + 'set output "scan.png"\nset xlabel "worker processes"\nset ylabel "GB/s, all workers together"\n'
            'set xrange [0:13]\nset yrange [0:*]\n'
            'plot "scan.dat" u 1:6:5:7 w yerrorlines lw 2 t "same workers reading private memory", '
            '"" u 1:3:2:4 w yerrorlines lw 2 t "shmkit workers scanning the shared data", '
            '%g w l dt 2 lw 2 t "machine: 1 process reads (bench/machine)", '
            '%g w l dt 3 lw 2 t "machine: %d processes read"\n'
            % (mach["read_gbps_1"], mach["read_gbps_n"], mach["nproc"]), out)

    q = fig["queue"]
    with open(os.path.join(out, "queue_throughput.dat"), "w") as f:
        f.write("# name msgs_per_s min max\n")
        for name, key in (("shmkit", "msgs_per_s"), ("shmkit-batched", "msgs_per_s_batch"),
                          ("pipe", "pipe_msgs_per_s"), ("mp.Queue", "mpqueue_msgs_per_s")):
            if q.get(key):
                f.write('"%s" %g %g %g\n' % (name, q[key]["median"], q[key]["range"][0], q[key]["range"][1]))
    gnuplot(head + 'set output "queue_throughput.png"\nset style data histograms\nset style fill solid 0.6\n'
            'set logscale y\nset ylabel "64-byte messages per second (log)"\nset yrange [1e4:*]\nunset key\n'
            'plot "queue_throughput.dat" u 2:xtic(1) lc rgb "#3366aa"\n', out)
    with open(os.path.join(out, "queue_latency.dat"), "w") as f:
        modes = list(q["latency_ns_p50"])
        f.write("# payload_bytes " + " ".join(modes) + " (one-way ns)\n")
        for i, size in enumerate(q["latency_payload_bytes"]):
            f.write("%d %s\n" % (size, " ".join("%g" % q["latency_ns_p50"][m][i] for m in modes)))
    qp = fig.get("queue_peers")
    if qp:
        peers = list(qp["figures"])
        cases = [k for k in qp["figures"]["shmkit"] if k.endswith("_msgs_per_s")]
        with open(os.path.join(out, "queue_peers.dat"), "w") as f:
            f.write("# case " + " ".join(peers) + " (messages per second, median)\n")
            for k in cases:
                f.write('"%s" %s\n' % (k[5:].replace("_msgs_per_s", "").replace("_", " "), " ".join(
                    "%g" % qp["figures"][p][k]["median"] if k in qp["figures"][p] else "NaN" for p in peers)))
        gnuplot(head + 'set output "queue_peers.png"\nset style data histograms\nset style histogram clustered\n'
                'set style fill solid 0.7\nset logscale y\nset yrange [1e3:*]\nset key top right\n'
                'set ylabel "messages per second (log), producers x consumers, size"\n'
                'plot ' + ", ".join('"queue_peers.dat" u %d:xtic(1) t "%s"' % (i + 2, p) for i, p in enumerate(peers))
                + "\n", out)
    lock_plot(fig["lock"], head, out)
    gnuplot(head + 'set output "queue_latency.png"\nset logscale xy\nset xlabel "payload (bytes)"\n'
            'set ylabel "one-way latency, median (ns)"\n'
            'plot "queue_latency.dat" u 1:3 w lp lw 2 t "copying, blocking", "" u 1:2 w lp lw 2 t "copying, busy-polling", '
            '"" u 1:4 w lp lw 2 t "zero-copy (reserve/commit, peek/release)"\n', out)


def lock_plot(lk, head, out):
    """lock.png: shmkit's mutex against glibc's robust mutex and Boost's
    interprocess_mutex, same runs, as speed-ups (> 1: shmkit better; the
    uncontended time ratio inverted), bars at the median over runs of each
    run's median per-rep ratio, error bars from the lowest to the highest."""
    peers = [(name, suffix) for name, suffix in (("glibc robust pthread mutex", "pthread"),
                                                 ("Boost.Interprocess interprocess_mutex", "boost"))
             if "mutex_vs_" + suffix in lk]
    cases = (("uncontended lock+unlock", "mutex_vs_%s", True), ("hand-offs, 2 processes", "handoffs_vs_%s", False),
             ("turns, 2 processes", "turns_vs_%s", False))
    with open(os.path.join(out, "lock.dat"), "w") as f:
        f.write("# case, then per peer: shmkit's speed-up (median min max; > 1: shmkit better): %s\n" % ", ".join(
            p for p, _ in peers))
        for label, key, inverted in cases:
            row = []
            for _, suffix in peers:
                d = lk.get(key % suffix)
                if not d:
                    row += [float("nan")] * 3
                elif inverted:
                    row += [1 / d["median"], 1 / d["range"][1], 1 / d["range"][0]]
                else:
                    row += [d["median"], d["range"][0], d["range"][1]]
            f.write('"%s" %s\n' % (label, " ".join("%g" % x for x in row)))
    gnuplot(head + 'set output "lock.png"\nset style data histograms\nset style histogram errorbars gap 2 lw 1\n'
            'set style fill solid 0.7\nset yrange [0:*]\nset key below\nset termoption noenhanced\n'
            'set ylabel "shmkit\'s speed-up over the peer, same run (> 1: shmkit better)"\n'
            'plot ' + ", ".join('"lock.dat" u %d:%d:%d:xtic(1) t "%s"' % (3 * i + 2, 3 * i + 3, 3 * i + 4, p)
                                for i, (p, _) in enumerate(peers)) + ', 1 w l dt 2 lc rgb "black" notitle\n', out)


if __name__ == "__main__":
    main()
