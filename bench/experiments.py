"""Reproduce the seed papers' claims on our chip; writes docs/experiments/*.{json,md,png}.

    python bench/experiments.py distortion   # accuracy vs unknown membrane distortion σ (breast cancer)
    python bench/experiments.py datasize     # accuracy vs training-set size, BPTT vs MH (breast cancer)
    python bench/experiments.py deploy       # software vs on-chip accuracy on a 4-bit chip (digits)
    python bench/experiments.py mhchain      # MH at σ = 4, 5 with 3000 vs 10000 iterations
    python bench/experiments.py all

Every number is measured by the run that writes it (``--seeds``, default 5).
"""
from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "docs" / "experiments"
MH_KW = {"iters": 3000}
EPOCHS = {"bptt": 30, "bptt_qat": 30, "cilspl": 30}


def _job(args):
    method, dataset, seed, sigma, train_size, chip = args[:6]
    mh_kw = args[6] if len(args) > 6 else MH_KW
    import torch
    torch.set_num_threads(1)
    from hw.config import ChipConfig
    from sim.faults import Faults
    from train.config import TrainConfig
    from train.run import run_training
    cfg = ChipConfig.from_dict(chip) if chip else None
    kw = mh_kw if method == "mh" else {"epochs": EPOCHS[method]}
    tc = TrainConfig(method=method, dataset=dataset, chip=cfg, faults=Faults(distortion=sigma, seed=seed),
                     seed=seed, train_size=train_size, params=kw)
    r = run_training(tc, progress=False)
    return {"method": method, "seed": seed, "sigma": sigma, "train_size": train_size, "iters": kw.get("iters"),
            "final_step": r.extra.get("final_step"),
            "software": r.software_accuracy, "chip": r.chip_accuracy, "seconds": r.seconds,
            "cycles": r.activity["cycles"], "synops": r.activity["synops"]}


def run_all(jobs, workers):
    from tqdm import tqdm
    with ProcessPoolExecutor(workers) as ex:
        return list(tqdm(ex.map(_job, jobs), total=len(jobs), desc="trainings"))


def summarise(rows, key, methods, field="chip"):
    table = {}
    for m in methods:
        for k in sorted({r[key] for r in rows}):
            vals = [r[field] for r in rows if r["method"] == m and r[key] == k]
            table[(m, k)] = (float(np.mean(vals)), float(np.std(vals)), len(vals))
    return table


def plot(table, key, methods, xlabel, path, title, logx=False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        ks = sorted(k for mm, k in table if mm == m)
        mu = np.array([table[(m, k)][0] for k in ks])
        sd = np.array([table[(m, k)][1] for k in ks])
        ax.errorbar(ks, mu, yerr=sd, marker="o", capsize=3, label=m)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("on-chip test accuracy")
    ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pm(vals) -> str:
    """``mean ± std`` of a sample, three decimals."""
    return f"{np.mean(vals):.3f} ± {np.std(vals):.3f}"


def publish(name: str, rows: list, md: str) -> None:
    """Write ``<name>.json`` (every training's record) and ``<name>.md`` (the table); print the table."""
    (OUT / f"{name}.json").write_text(json.dumps(rows, indent=1))
    (OUT / f"{name}.md").write_text(md + "\n")
    print(md)


def md_table(table, key, methods, header):
    ks = sorted({k for _, k in table})
    lines = [f"| method | " + " | ".join(f"{header}={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{table[(m, k)][0]:.3f} ± {table[(m, k)][1]:.3f}" for k in ks) + " |")
    return "\n".join(lines)


def distortion(seeds, workers):
    methods = ["bptt", "cilspl", "mh"]
    sigmas = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    rows = run_all([(m, "breast_cancer", s, sg, None, None) for sg in sigmas for m in methods for s in range(seeds)],
                   workers)
    t = summarise(rows, "sigma", methods)
    plot(t, "sigma", methods, "membrane distortion σ (unknown to the trainer)", OUT / "distortion.png",
         "breast cancer: accuracy vs chip distortion")
    publish("distortion", rows, md_table(t, "sigma", methods, "σ"))


def datasize(seeds, workers):
    methods = ["bptt", "mh"]
    sizes = [10, 20, 40, 80, 160, 341]
    rows = run_all([(m, "breast_cancer", s, 0.0, n, None) for n in sizes for m in methods for s in range(seeds)],
                   workers)
    t = summarise(rows, "train_size", methods)
    plot(t, "train_size", methods, "training samples", OUT / "datasize.png",
         "breast cancer: accuracy vs training-set size", logx=True)
    publish("datasize", rows, md_table(t, "train_size", methods, "n"))


def deploy(seeds, workers):
    from hw.config import ChipConfig
    methods = ["bptt", "bptt_qat", "cilspl"]
    chip = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, beta=0.9, weight_bits=4).to_dict()
    rows = run_all([(m, "digits", s, 0.0, None, chip) for m in methods for s in range(seeds)], workers)
    lines = ["| method | software accuracy | on-chip accuracy (4-bit weights) | drop |", "|---|---|---|---|"]
    for m in methods:
        sw = np.array([r["software"] for r in rows if r["method"] == m])
        hw = np.array([r["chip"] for r in rows if r["method"] == m])
        lines.append(f"| {m} | {pm(sw)} | {pm(hw)} | {(sw - hw).mean():+.3f} ± {(sw - hw).std():.3f} |")
    publish("deploy", rows, "\n".join(lines))


def mhchain(seeds, workers):
    """MH at high distortion with longer chains: does more exploration recover the accuracy?"""
    rows = []
    for iters in (3000, 10000):
        rows += run_all([("mh", "breast_cancer", s, sg, None, None, {"iters": iters})
                         for sg in (4.0, 5.0) for s in range(seeds)], workers)
    lines = ["| MH iterations | σ=4.0 | σ=5.0 | seconds per training |", "|---|---|---|---|"]
    for iters in (3000, 10000):
        cell = lambda sg: [r["chip"] for r in rows if r["iters"] == iters and r["sigma"] == sg]
        secs = np.mean([r["seconds"] for r in rows if r["iters"] == iters])
        lines.append(f"| {iters} | {pm(cell(4.0))} | {pm(cell(5.0))} | {secs:.0f} |")
    publish("mhchain", rows, "\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["distortion", "datasize", "deploy", "mhchain", "all"])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for name in (["distortion", "datasize", "deploy"] if a.which == "all" else [a.which]):
        globals()[name](a.seeds, a.workers)


if __name__ == "__main__":
    main()
