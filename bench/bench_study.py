"""Trials per hour of the default study (tune/config.py DEFAULT_TOML), one worker vs two, measured in one run.

    python bench/bench_study.py [--trials 12]
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import optuna

from tune.config import StudyConfig
from tune.study import run_study


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=12)
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    print("| workers | trials | seconds | trials/hour |")
    print("|---|---|---|---|")
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            sc = StudyConfig.load(None, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out",
                                         "n_trials": a.trials, "name": f"bench{jobs}"})
            t0 = time.perf_counter()
            study = run_study(sc, jobs=jobs)
            dt = time.perf_counter() - t0
            n = sum(t.state.name == "COMPLETE" for t in study.trials)
            print(f"| {jobs} | {n} | {dt:.1f} | {3600 * n / dt:.0f} |")


if __name__ == "__main__":
    main()
