"""Trials per hour of the default study (tune/config.py's default study), one worker against two, as a record.

    python -m bench.bench_study [--trials 12] [--repeats 3] [--publish]

Rounds alternate (1 worker, 2 workers, 1 worker, 2 workers, ...) so that the shared machine's load falls on both
alike; every round is kept, and the summary is the paired ratio (two workers' trials per hour over one
worker's, per repeat): median and min-max. Wall-clock: the study's workers are processes (what a user gets).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings

from bench.records import Recorder, add_record_args


def one(trials: int, jobs: int, tag: str) -> tuple[int, float]:
    from tune.config import StudyConfig
    from tune.study import run_study
    with tempfile.TemporaryDirectory() as tmp:
        sc = StudyConfig.load(None, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out",
                                     "n_trials": trials, "name": f"bench{jobs}_{tag}"})
        t0 = time.perf_counter()
        study = run_study(sc, jobs=jobs)
        dt = time.perf_counter() - t0
        return sum(t.state.name == "COMPLETE" for t in study.trials), dt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=12, help="trials per study (default 12)")
    ap.add_argument("--repeats", type=int, default=3, help="pairs of (1 worker, 2 workers) studies (default 3)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.trials < 1 or a.repeats < 1:
        print("bench_study: --trials and --repeats must be >= 1", file=sys.stderr)
        return 2
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    params = {"study": "the default study (tune.config)", "trials": a.trials, "repeats": a.repeats,
              "order": "interleaved: 1 worker, 2 workers per repeat", "timer": "wall seconds (perf_counter)"}
    with Recorder("study_workers", args=a, seeds=[], params=params, script=__file__) as rec:
        rate = {1: [], 2: []}
        for r in range(a.repeats):
            for jobs in (1, 2):
                load = os.getloadavg()[0]
                n, dt = one(a.trials, jobs, str(r))
                rate[jobs].append(3600 * n / dt)
                rec.round(repeat=r, workers=jobs, trials=n, seconds=dt, trials_per_hour=rate[jobs][-1],
                          load_1min=load)
                print(f"repeat {r}: {jobs} worker(s): {n} trials in {dt:.1f} s, {rate[jobs][-1]:.0f}/hour "
                      f"(load {load:.1f})", flush=True)
        ratio = [b / a_ for a_, b in zip(rate[1], rate[2])]
        rec.summary = {"trials_per_hour": {str(k): {"median": statistics.median(v), "min": min(v), "max": max(v)}
                                           for k, v in rate.items()},
                       "two_over_one": {"median": statistics.median(ratio), "min": min(ratio), "max": max(ratio),
                                        "n": len(ratio)}}
        s = rec.summary["two_over_one"]
        print(f"two workers / one: {s['median']:.2f}x (min {s['min']:.2f}, max {s['max']:.2f})")
    return 0


def view_table(rec: dict) -> str:
    """Trials per hour, one worker against two (median, min-max over the repeats) and their paired ratio."""
    s, p = rec["summary"], rec["params"]
    t = s["trials_per_hour"]
    r = s["two_over_one"]
    load = [x["load_1min"] for x in rec["rounds"]]
    return "\n".join([
        "| workers | trials per study | trials / hour: median (min–max) | two ÷ one (paired) | load average |",
        "|---|---|---|---|---|",
        f"| 1 | {p['trials']} | {t['1']['median']:.0f} ({t['1']['min']:.0f}–{t['1']['max']:.0f}) | 1 | "
        f"{min(load):.1f}–{max(load):.1f} |",
        f"| 2 | {p['trials']} | {t['2']['median']:.0f} ({t['2']['min']:.0f}–{t['2']['max']:.0f}) | "
        f"{r['median']:.2f}x ({r['min']:.2f}–{r['max']:.2f}, {r['n']} pairs) | |"])


VIEWS = {"table": view_table}


if __name__ == "__main__":
    sys.exit(main())
