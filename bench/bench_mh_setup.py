"""Which set-up MH and CIL-SPL train with by default, chosen on validation accuracy; then the check on new seeds.

    python -m bench.bench_mh_setup select [--seeds 0 1 2 3 4] [--publish]   # record mh_setup
    python -m bench.bench_mh_setup check [--seeds 101 102 103 104 105] [--publish]   # record mh_cli_distortion

``select`` trains every candidate set-up (bias input on/off, MH's ``lik_std``) on the same seeds (paired: the
seed draws the split, the initial weights and the chip's fault instance), at membrane distortion σ = 0 and 4,
and ranks them by mean **validation** accuracy over both σ; the test accuracy is recorded beside it but chooses
nothing. ``check`` runs ``spikeloop train --method {mh,bptt} --distortion 4`` with default flags (the command
line itself, in-process) on seeds that chose nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args, spread  # noqa: E402

SIGMAS = (0.0, 4.0)
#: candidate set-ups: label -> (method, bias_input, method parameters)
CANDIDATES = {
    "mh, no bias, lik_std 0.5": ("mh", False, {"lik_std": 0.5}),
    "mh, bias, lik_std 0.5": ("mh", True, {"lik_std": 0.5}),
    "mh, bias, lik_std 1": ("mh", True, {"lik_std": 1.0}),
    "cilspl, no bias": ("cilspl", False, {}),
    "cilspl, bias": ("cilspl", True, {}),
}


def _select_job(job):
    import torch
    torch.set_num_threads(1)
    from sim.faults import Faults
    from train.config import TrainConfig
    from train.run import run_training
    label, sigma, seed = job
    method, bias, params = CANDIDATES[label]
    tc = TrainConfig(method=method, seed=seed, bias_input=bias, params=params,
                     faults=Faults(seed=seed, distortion=sigma))
    r = run_training(tc, progress=False)
    return {"label": label, "method": method, "bias_input": bias, "params": dict(tc.params), "sigma": sigma,
            "seed": seed, "val": r.chip_val_accuracy, "test": r.chip_accuracy, "seconds": r.seconds}


def _cli_job(job):
    """``spikeloop train --method M --distortion SIGMA --seed S`` with default flags; the saved result."""
    method, sigma, seed = job
    from tune.cli import main
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r"
        argv = ["train", "--method", method, "--distortion", f"{sigma:g}", "--seed", str(seed), "--out", str(out)]
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            code = main(argv)
        if code:
            raise RuntimeError(f"spikeloop {' '.join(argv)} exited {code}")
        d = json.loads(out.with_suffix(".json").read_text())
    return {"command": "spikeloop " + " ".join(argv[:-2]), "method": method, "sigma": sigma, "seed": seed,
            "bias_input": d["train_config"]["bias_input"], "params": d["train_config"]["params"],
            "val": d["chip_val_accuracy"], "test": d["chip_accuracy"], "seconds": d["seconds"]}


def _run(fn, jobs, workers):
    if workers == 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(fn, jobs))


def select(a) -> None:
    jobs = [(label, sg, s) for label in CANDIDATES for sg in SIGMAS for s in a.seeds]
    with Recorder("mh_setup", args=a, seeds=a.seeds, params={"dataset": "breast_cancer", "sigmas": SIGMAS,
                  "candidates": {k: list(v) for k, v in CANDIDATES.items()}, "workers": a.workers}) as rec:
        rows = _run(_select_job, jobs, a.workers)
        for r in rows:
            rec.round(**r)
        summary = {}
        for label in CANDIDATES:
            mine = [r for r in rows if r["label"] == label]
            summary[label] = {"method": CANDIDATES[label][0],
                              "val_mean_over_sigmas": spread([r["val"] for r in mine])["mean"],
                              **{f"sigma{sg:g}": {"val": spread([r["val"] for r in mine if r["sigma"] == sg]),
                                                  "test": spread([r["test"] for r in mine if r["sigma"] == sg])}
                                 for sg in SIGMAS}}
        for method in ("mh", "cilspl"):
            labels = [k for k in CANDIDATES if CANDIDATES[k][0] == method]
            best = max(labels, key=lambda k: summary[k]["val_mean_over_sigmas"])
            ref = labels[0]
            paired = {}
            for k in labels[1:]:
                d = [r["val"] - q["val"] for r in rows if r["label"] == k for q in rows
                     if q["label"] == ref and q["seed"] == r["seed"] and q["sigma"] == r["sigma"]]
                paired[k] = spread(d)
            rec.summary[method] = {"chosen": best, "reference": ref, "paired_val_minus_reference": paired}
        rec.summary["candidates"] = summary
    print(VIEWS["select"](rec.as_dict()))


def check(a) -> None:
    jobs = [(m, a.sigma, s) for m in ("mh", "bptt") for s in a.seeds]
    with Recorder("mh_cli_distortion", args=a, seeds=a.seeds, params={"sigma": a.sigma, "workers": a.workers,
                  "command": "spikeloop train --method {mh,bptt} --distortion 4 --seed S"}) as rec:
        rows = _run(_cli_job, jobs, a.workers)
        for r in rows:
            rec.round(**r)
        mh = {r["seed"]: r for r in rows if r["method"] == "mh"}
        bp = {r["seed"]: r for r in rows if r["method"] == "bptt"}
        rec.summary = {"mh": {"test": spread([r["test"] for r in mh.values()]),
                              "val": spread([r["val"] for r in mh.values()])},
                       "bptt": {"test": spread([r["test"] for r in bp.values()]),
                                "val": spread([r["val"] for r in bp.values()])},
                       "mh_minus_bptt_test": spread([mh[s]["test"] - bp[s]["test"] for s in mh if s in bp])}
    print(VIEWS["check"](rec.as_dict()))


def _pm(s: dict, scale: float = 1.0, fmt: str = ".3f") -> str:
    return f"{scale * s['mean']:{fmt}} ± {scale * s['std']:{fmt}}"


def view_select(rec: dict) -> str:
    seeds = rec["seeds"]
    c = rec["summary"]["candidates"]
    lines = [f"Breast cancer, seeds {', '.join(map(str, seeds))} (paired), mean ± std over the seeds; the choice is "
             "the highest mean validation accuracy over σ = 0 and 4 (test accuracy chose nothing):", "",
             "| set-up | val σ=0 | val σ=4 | test σ=0 | test σ=4 | chosen |", "|---|---|---|---|---|---|"]
    for k, v in c.items():
        chosen = "**yes**" if rec["summary"][v["method"]]["chosen"] == k else ""
        lines.append(f"| {k} | {_pm(v['sigma0']['val'])} | {_pm(v['sigma4']['val'])} | {_pm(v['sigma0']['test'])} "
                     f"| {_pm(v['sigma4']['test'])} | {chosen} |")
    lines += ["", "Paired validation difference against the first set-up of each method (all σ, "
              f"{2 * len(seeds)} pairs): " + "; ".join(
                  f"{k}: {_pm(d, 100, '+.1f')} points" for m in ("mh", "cilspl")
                  for k, d in rec["summary"][m]["paired_val_minus_reference"].items())]
    return "\n".join(lines)


def view_check(rec: dict) -> str:
    s = rec["summary"]
    load = rec["machine"]["load_before"]
    return (f"`spikeloop train --method mh --distortion {rec['params']['sigma']:g}` with default flags, seeds "
            f"{', '.join(map(str, rec['seeds']))} (chose nothing): on-chip test accuracy {_pm(s['mh']['test'])} "
            f"(validation {_pm(s['mh']['val'])}); default BPTT {_pm(s['bptt']['test'])}; MH − BPTT, paired by seed: "
            f"{_pm(s['mh_minus_bptt_test'], 100, '+.1f')} points (load average {load[0]:.1f} at the start).")


VIEWS = {"select": view_select, "check": view_check}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["select", "check"])
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--sigma", type=float, default=4.0, help="check: the distortion (default 4)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    add_record_args(ap)
    a = ap.parse_args()
    if a.seeds is None:
        a.seeds = [0, 1, 2, 3, 4] if a.which == "select" else [101, 102, 103, 104, 105]
    select(a) if a.which == "select" else check(a)


if __name__ == "__main__":
    main()
