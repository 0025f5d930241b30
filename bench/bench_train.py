"""Wall-clock time of one chip-in-the-loop training on breast cancer (target: <= 60 s each, 2 cores), and the
cost of one Metropolis-Hastings iteration (target: <= 2 ms; issue #11), as the record ``train_speed``.

    python -m bench.bench_train [--repeats 5] [--publish]

Each repeat runs, in this order, MH with 1 iteration, MH with 3000, CIL-SPL 30 epochs and BPTT 30 epochs
(training seed 0); the cost of an MH iteration is, per repeat, (3000-iteration run - 1-iteration run) / 2999.
A warm-up run first pays the process's one-time costs (imports, compiling the recurrence). Wall seconds
(``perf_counter``: what a user waits, inflated by other jobs on a shared machine) and CPU seconds of this
process (``process_time``: all its threads, less sensitive to the load) are both kept for every run.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import os
import sys
import time

from bench.records import Recorder, add_record_args, spread

RUNS = [("mh", {"iters": 1, "burn_in": 0, "thin": 1}, "2 x 341 samples (fixed cost)"),
        ("mh", {"iters": 3000}, "3001 x 341 samples"),
        ("cilspl", {"epochs": 30}, "330 batches of 32"),
        ("bptt", {"epochs": 30}, "2 (deployment)")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5, help="repeats of the four runs (default 5)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.repeats < 1:
        print("bench_train: --repeats must be >= 1", file=sys.stderr)
        return 2
    from train.config import TrainConfig
    from train.run import run_training
    params = {"dataset": "breast_cancer", "seed": 0, "repeats": a.repeats, "timer": "wall seconds (perf_counter)",
              "runs": [{"method": m, "params": kw, "chip_evaluations": ev} for m, kw, ev in RUNS]}
    with Recorder("train_speed", args=a, seeds=[0], params=params, script=__file__) as rec:
        run_training(TrainConfig(method="mh", params={"iters": 1, "burn_in": 0, "thin": 1}), progress=False)
        per_iter = []
        for rep in range(a.repeats):
            secs = {}
            for method, kw, _ in RUNS:
                load = os.getloadavg()[0]
                t0, c0 = time.perf_counter(), time.process_time()
                r = run_training(TrainConfig(method=method, dataset="breast_cancer", params=kw), progress=False)
                dt, dc = time.perf_counter() - t0, time.process_time() - c0
                secs[(method, kw.get("iters"))] = (dt, dc)
                rec.round(repeat=rep, method=method, params=kw, seconds=dt, cpu_seconds=dc,
                          chip_accuracy=r.chip_accuracy, load_1min=load)
                print(f"repeat {rep}: {method} {kw}: {dt:.1f} s, on-chip test accuracy {r.chip_accuracy:.3f}",
                      flush=True)
            per_iter.append([(secs[("mh", 3000)][i] - secs[("mh", 1)][i]) / 2999 for i in (0, 1)])
        rows = {}
        for i, (method, kw, ev) in enumerate(RUNS):
            sel = [x for x in rec.rounds if x["method"] == method and x["params"] == kw]
            rows[str(i)] = {"method": method, "params": kw, "chip_evaluations": ev,
                            "seconds": spread(x["seconds"] for x in sel),
                            "cpu_seconds": spread(x["cpu_seconds"] for x in sel),
                            "chip_accuracy": spread(x["chip_accuracy"] for x in sel)}
        rec.summary = {"runs": rows, "mh_ms_per_iteration": spread(v[0] * 1e3 for v in per_iter),
                       "mh_cpu_ms_per_iteration": spread(v[1] * 1e3 for v in per_iter)}
        s, c = rec.summary["mh_ms_per_iteration"], rec.summary["mh_cpu_ms_per_iteration"]
        print(f"MH: {s['median']:.2f} ms per iteration wall (min {s['min']:.2f}, max {s['max']:.2f}); "
              f"{c['median']:.2f} ms CPU (min {c['min']:.2f}, max {c['max']:.2f})")
    return 0


def view_table(rec: dict) -> str:
    """Seconds per training (min / median over repeats) and on-chip test accuracy (mean ± std)."""
    out = ["| method | settings | chip evaluations | wall seconds: min / median | CPU seconds: min / median "
           "| on-chip test accuracy (seed 0) |", "|---|---|---|---|---|---|"]
    for r in rec["summary"]["runs"].values():
        s, c, acc = r["seconds"], r["cpu_seconds"], r["chip_accuracy"]
        out.append(f"| {r['method']} | {r['params']} | {r['chip_evaluations']} | {s['min']:.1f} / {s['median']:.1f} "
                   f"| {c['min']:.1f} / {c['median']:.1f} | {acc['mean']:.3f} |")
    return "\n".join(out)


def view_mh(rec: dict) -> str:
    """MH milliseconds per iteration, wall and CPU: median (min–max over repeats)."""
    s, c = rec["summary"]["mh_ms_per_iteration"], rec["summary"]["mh_cpu_ms_per_iteration"]
    return (f"{s['median']:.2f} ms wall ({s['min']:.2f}–{s['max']:.2f}), {c['median']:.2f} ms CPU "
            f"({c['min']:.2f}–{c['max']:.2f}) over {s['n']} repeats")


VIEWS = {"table": view_table, "mh": view_mh}


if __name__ == "__main__":
    sys.exit(main())
