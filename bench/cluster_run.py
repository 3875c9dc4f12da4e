"""The cluster benchmark for make bench: bench/cluster (C, under mpirun on two
fake hosts of this machine whose ranks talk over TCP) and Dask's scatter,
with the issue's goals checked in the same run.

  /usr/bin/python3 bench/cluster_run.py --build BUILD [--quick] [--json]

Runs (Open MPI, topology openmpi-hosts of cluster/launch.py):
  replicate    4 ranks, 2 per node: replication against MPI_Bcast, PSS per node
  remote       2 ranks, 1 per node, MPI_THREAD_MULTIPLE: shmkit's service thread
  remote_rma   2 ranks, MPI_THREAD_SINGLE, OMPI_MCA_osc=pt2pt: MPI_Get and
               MPI_Fetch_and_op, interleaved with shmkit serving inline (Open
               MPI's RMA over TCP refuses MPI_THREAD_MULTIPLE)
  dask         client.scatter(x, broadcast=True) to 4 worker processes here
Goals (docs/cluster.md): PSS per node at most 1.05x the data; replication at
least 0.9x MPI_Bcast of the same bytes; batched gather at least 100x
batched MPI_Get over TCP. Every ratio is {min, median, max} over the
repetitions of one run; across runs (the service thread against MPI_Get)
min is the worst pairing (min / max) and max the best.
Prints one JSON object (--json) or a table; fails on wrong results, never
on speed.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "cluster"))
import launch  # noqa: E402

GOALS = {"pss_per_node_vs_data": ("<=", 1.05), "replicate_vs_bcast": (">=", 0.9),
         "gather_vs_mpi_get": (">=", 100.0)}


def run(build, argv, n, extra_env=None, timeout=900):
    prog = os.path.join(build, "cluster", "openmpi", "bench_cluster")
    if not os.path.exists(prog):
        sys.exit("cluster_run: %s is not built (an MPI must be present when CMake configures)" % prog)
    job = launch.run_job("openmpi-hosts", [prog, "--json"] + argv, n=n, timeout=timeout, extra_env=extra_env)
    lines = [l for l in job.out.splitlines() if l.startswith("{")]
    if job.returncode != 0 or job.note or not lines:
        sys.exit("cluster_run: %s failed (%s, %s)\n%s" % (" ".join(argv), job.returncode, job.note, job.err[-3000:]))
    res = json.loads(lines[-1])
    if not res.get("results_ok"):
        sys.exit("cluster_run: %s reported wrong results" % " ".join(argv))
    return res


def across(num, den):
    """{min, median, max} of num/den for figures of two runs."""
    return {"min": num["min"] / den["max"], "median": num["median"] / den["median"],
            "max": num["max"] / den["min"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mib", type=int, default=None)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    mib = args.mib or (32 if args.quick else 256)
    common = ["--mib", str(mib)] + (["--quick"] if args.quick else ["--reps", "5"])
    out = {"mpi": "openmpi", "topology": "2 fake hosts (unshare --uts), TCP over lo", "data_mib": mib}
    out["replicate"] = run(build, common + ["--only", "replicate"], 4)
    out["remote"] = run(build, common + ["--only", "remote"], 2)
    out["remote_rma"] = run(build, common + ["--only", "remote", "--thread", "single", "--rma"], 2,
                            extra_env={"OMPI_MCA_osc": "pt2pt"})
    import subprocess
    p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "cluster_dask.py"), "--mib", str(mib), "--workers",
                        "4"], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        sys.exit("cluster_run: cluster_dask.py failed: %s" % p.stderr[-2000:])
    out["dask"] = json.loads(p.stdout.strip().splitlines()[-1])
    if not out["dask"]["results_ok"]:
        sys.exit("cluster_run: Dask's scatter gave wrong results")

    rep, rem, rma, dask = out["replicate"], out["remote"], out["remote_rma"], out["dask"]
    r = out["ratios"] = {}
    r["pss_per_node_vs_data"] = rep["pss_per_node_vs_data"]
    r["copy_pss_per_node_vs_data"] = rep["copy_pss_per_node_vs_data"]
    r["copy_ranks_per_node"] = rep["ranks_per_node"]
    r["dask_pss_vs_data"] = dask["pss_vs_data"]
    r["dask_workers"] = dask["workers"]
    r["replicate_vs_bcast"] = rep["replicate_vs_bcast"]
    r["gather_vs_mpi_get"] = across(rem["gather_elems_per_s"], rma["mpi_get_elems_per_s"])
    r["gather_inline_vs_mpi_get_same_run"] = rma["gather_vs_mpi_get"]
    r["add_vs_fetch_and_op"] = across(rem["add_elems_per_s"], rma["fetch_and_op_elems_per_s"])
    r["add_inline_vs_fetch_and_op_same_run"] = rma["add_vs_fetch_and_op"]
    r["gather_vs_local_loads"] = rem["gather_vs_local_loads"]
    r["gather_us_vs_rtt_us"] = across(rem["gather_us"], rem["rtt_us"])
    goals = out["goals"] = {}
    for name, (op, target) in GOALS.items():
        v = r[name]
        med = v["median"] if isinstance(v, dict) else v
        goals[name] = {"goal": "%s %g" % (op, target), "median": med,
                       "met": med <= target if op == "<=" else med >= target}
    if args.json:
        print(json.dumps(out))
        return
    for k, v in r.items():
        if isinstance(v, dict):
            print("%-40s median %.3g [%.3g, %.3g]" % (k, v["median"], v["min"], v["max"]))
        else:
            print("%-40s %.3g" % (k, v))
    for k, g in goals.items():
        print("goal %-35s %s: %.3g %s" % (k, g["goal"], g["median"], "met" if g["met"] else "NOT MET"))


if __name__ == "__main__":
    main()
