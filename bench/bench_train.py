"""Wall-clock time of one chip-in-the-loop training on breast cancer (target: <= 60 s each, 2 cores).

    python bench/bench_train.py
"""
from __future__ import annotations

import time

from train.config import TrainConfig
from train.run import run_training


def main() -> None:
    print("| method | settings | chip evaluations | seconds | on-chip test accuracy |")
    print("|---|---|---|---|---|")
    for method, kw, evals in [("mh", {"iters": 3000}, "3001 x 341 samples"),
                              ("cilspl", {"epochs": 30}, "330 batches of 32"),
                              ("bptt", {"epochs": 30}, "2 (deployment)")]:
        t0 = time.perf_counter()
        r = run_training(TrainConfig(method=method, dataset="breast_cancer", params=kw), progress=False)
        dt = time.perf_counter() - t0
        print(f"| {method} | {kw} | {evals} | {dt:.1f} | {r.chip_accuracy:.3f} |")


if __name__ == "__main__":
    main()
