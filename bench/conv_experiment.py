"""Conv chips vs fc chips on digits and MNIST-1D (issue #9); writes docs/experiments/conv.{json,md}.

    python bench/conv_experiment.py [--seeds 5]

Every run: TrainConfig defaults (rate encoder, 16 steps, 30 epochs, lr 5e-3, batch 32, theta 1), the fast
model as the chip, seeds 0..n-1 (the seed also draws the split). Nothing was tuned; no test number chose
anything. Also measures MH's seconds per iteration on the digits conv and fc chips (50 iterations)."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "docs" / "experiments"

NETS = {
    "digits conv": ("digits", {"input_shape": [1, 8, 8], "layers": [
        {"kind": "conv", "channels": 8, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
        {"kind": "fc", "size": 10}]}),
    "digits fc 64-64-10": ("digits", {"layer_sizes": [64, 64, 10]}),
    "mnist1d conv": ("mnist1d", {"input_shape": [1, 1, 40], "layers": [
        {"kind": "conv", "channels": 16, "kernel": 5, "stride": 2, "padding": 2}, {"kind": "pool", "size": 2},
        {"kind": "fc", "size": 10}]}),
    "mnist1d fc 40-40-10": ("mnist1d", {"layer_sizes": [40, 40, 10]}),
}
JOBS = [("digits conv", "bptt"), ("digits conv", "bptt_qat"), ("digits fc 64-64-10", "bptt"),
        ("digits fc 64-64-10", "bptt_qat"), ("mnist1d conv", "bptt"), ("mnist1d fc 40-40-10", "bptt")]


def chip(d):
    from hw.config import ChipConfig
    return ChipConfig.from_dict({"lanes": 8, "beta": 0.9, **d})


def run(net, method, seed):
    from train.config import TrainConfig
    from train.run import run_training
    dataset, d = NETS[net]
    cfg = chip(d)
    t = time.perf_counter()
    r = run_training(TrainConfig(method=method, dataset=dataset, chip=cfg, seed=seed), progress=False)
    return {"net": net, "method": method, "seed": seed, "val": r.chip_val_accuracy, "test": r.chip_accuracy,
            "software_test": r.software_accuracy, "cycles": r.activity["cycles"], "synops": r.activity["synops"],
            "weights": int(sum(np.size(w) for w in r.chip_weights)), "seconds": time.perf_counter() - t}


def mh_cost(net, iters=50):
    from train.config import TrainConfig
    from train.run import run_training
    dataset, d = NETS[net]
    t = time.perf_counter()
    run_training(TrainConfig(method="mh", dataset=dataset, chip=chip(d), params={"iters": iters}), progress=False)
    return {"net": net, "mh_seconds_per_iter": (time.perf_counter() - t) / iters, "iters": iters}


def summarise(rows, costs) -> str:
    out = ["# Conv vs fc chips (issue #9)", "",
           "Measured by `bench/conv_experiment.py` (fast model as the chip; TrainConfig defaults: rate "
           "encoder, 16 steps, 30 epochs, lr 5e-3, batch 32; seeds 0-4, each with its own split). "
           "Mean ± std over seeds; cycles = mean chip cycles per test sample.", "",
           "| net | method | weights | val acc | test acc | cycles/sample | synops/sample | s/run |",
           "|---|---|---|---|---|---|---|---|"]
    for net, method in JOBS:
        rs = [r for r in rows if r["net"] == net and r["method"] == method]
        if not rs:
            continue
        f = lambda k, p=3: f"{np.mean([r[k] for r in rs]):.{p}f} ± {np.std([r[k] for r in rs]):.{p}f}"
        out.append(f"| {net} | {method} | {rs[0]['weights']} | {f('val')} | {f('test')} | {f('cycles', 0)} | "
                   f"{f('synops', 0)} | {np.mean([r['seconds'] for r in rs]):.0f} |")
    if costs:
        out += ["", "MH cost per iteration (one chip run on the training set; 50 iterations, seed 0):", ""]
        out += [f"* {c['net']}: {c['mh_seconds_per_iter']:.3f} s/iteration" for c in costs]
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--dataset", choices=["digits", "mnist1d"], help="only this dataset's jobs (parallel runs)")
    ap.add_argument("--no-mh", action="store_true", help="skip the MH cost measurement")
    ap.add_argument("--summarise", action="store_true", help="only rewrite conv.md from conv*.json")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if not a.summarise:
        out = OUT / (f"conv_{a.dataset}.json" if a.dataset else "conv.json")
        rows, costs = [], []
        for net, method in JOBS:
            if a.dataset and NETS[net][0] != a.dataset:
                continue
            for seed in range(a.seeds):
                rows.append(run(net, method, seed))
                print(rows[-1], flush=True)
                out.write_text(json.dumps({"runs": rows, "mh_cost": costs}, indent=1))
        if not a.no_mh:
            for net in ("digits conv", "digits fc 64-64-10"):
                costs.append(mh_cost(net))
                print(costs[-1], flush=True)
        out.write_text(json.dumps({"runs": rows, "mh_cost": costs}, indent=1))
    rows, costs = [], []
    for f in sorted(OUT.glob("conv*.json")):
        d = json.loads(f.read_text())
        rows += d["runs"]
        costs += d["mh_cost"]
    (OUT / "conv.md").write_text(summarise(rows, costs))


if __name__ == "__main__":
    main()
