"""Wall-clock time of one chip-in-the-loop training on breast cancer (target: <= 60 s each, 2 cores),
and the cost of one Metropolis-Hastings iteration (target: <= 2 ms; issue #11).

    python bench/bench_train.py
"""
from __future__ import annotations

import time

from train.config import TrainConfig
from train.run import run_training


def main() -> None:
    print("| method | settings | chip evaluations | seconds | on-chip test accuracy |")
    print("|---|---|---|---|---|")
    seconds = {}
    # a warm-up run first pays the one-time costs of the process (imports, loading the compiled
    # recurrence), which belong to neither of the two runs whose difference is the cost of 2999 iterations
    run_training(TrainConfig(method="mh", params={"iters": 1, "burn_in": 0, "thin": 1}), progress=False)
    for method, kw, evals in [("mh", {"iters": 1, "burn_in": 0, "thin": 1}, "2 x 341 samples (fixed cost)"),
                              ("mh", {"iters": 3000}, "3001 x 341 samples"),
                              ("cilspl", {"epochs": 30}, "330 batches of 32"),
                              ("bptt", {"epochs": 30}, "2 (deployment)")]:
        t0 = time.perf_counter()
        r = run_training(TrainConfig(method=method, dataset="breast_cancer", params=kw), progress=False)
        dt = time.perf_counter() - t0
        seconds[(method, kw.get("iters"))] = dt
        print(f"| {method} | {kw} | {evals} | {dt:.1f} | {r.chip_accuracy:.3f} |")
    per_iter = (seconds[("mh", 3000)] - seconds[("mh", 1)]) / 2999
    print(f"\nMH: {per_iter * 1e3:.2f} ms per iteration (3000-iteration run minus the 1-iteration run)")


if __name__ == "__main__":
    main()
