"""Which set-up MH and CIL-SPL train with by default, chosen on validation accuracy; then the check on new seeds.

    python -m bench.bench_mh_setup select [--verify 4] [--publish]   # record mh_setup
    python -m bench.bench_mh_setup check [--seeds 101 102 103 104 105] [--publish]   # record mh_cli_distortion

``select`` compares the candidate set-ups (bias input on/off, MH's ``lik_std``) on the same seeds (paired: the
seed draws the split, the initial weights and the chip's fault instance) over membrane distortion σ, from the
runs of ``bench/experiments.py distortion`` / ``distortionfix`` (re-running a few with the current code to show
they are reproduced), and ranks them by mean **validation** accuracy over σ; the test accuracy is recorded
beside it but chooses nothing. ``check`` runs ``spikeloop train --method {mh,bptt} --distortion 4`` with default flags (the command
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

import numpy as np  # noqa: E402

from bench.records import Recorder, add_record_args, spread  # noqa: E402

#: candidate set-ups: label -> (method, bias_input, method parameters, label of its runs in the experiments'
#: records docs/experiments/distortion.json (no bias input) and distortionfix.json (bias input))
CANDIDATES = {
    "mh, no bias, lik_std 0.5": ("mh", False, {"lik_std": 0.5}, "mh"),
    "mh, bias, lik_std 1": ("mh", True, {"lik_std": 1.0}, "mh +bias, lik_std 1"),
    "mh, bias, zero reset, lik_std 0.5": ("mh", True, {"lik_std": 0.5, "reset": "zero"}, "mh +bias, zero reset"),
    "cilspl, no bias": ("cilspl", False, {}, "cilspl"),
    "cilspl, bias": ("cilspl", True, {}, "cilspl +bias"),
    "cilspl, bias, zero reset": ("cilspl", True, {"reset": "zero"}, "cilspl +bias, zero reset"),
}
ROWS = ("docs/experiments/distortion.json", "docs/experiments/distortionfix.json")


def _select_job(job):
    import torch
    torch.set_num_threads(1)
    from sim.faults import Faults
    from train.config import TrainConfig
    from train.run import run_training
    label, sigma, seed = job
    method, bias, params, _ = CANDIDATES[label]
    params = dict(params)
    reset = params.pop("reset", "subtract")             # a chip register, not a method parameter
    params = {"iters": 3000, **params} if method == "mh" else {"epochs": 30, **params}
    from train.config import default_chip
    tc = TrainConfig(method=method, seed=seed, bias_input=bias, params=params,
                     faults=Faults(seed=seed, distortion=sigma), chip=default_chip("breast_cancer", 31 if bias else 30,
                                                                                   2, reset=reset))
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
            "reset": d["chip_config"].get("reset", "subtract"),
            "val": d["chip_val_accuracy"], "test": d["chip_accuracy"], "seconds": d["seconds"]}


def _run(fn, jobs, workers):
    if workers == 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(fn, jobs))


def select(a) -> None:
    """The paired comparison from the training runs of ``bench/experiments.py distortion`` / ``distortionfix``
    (5 seeds x σ, every run's validation and test accuracy), after re-running ``--verify`` of them with the
    current code (TrainConfig.bias_input) to show they are reproduced exactly."""
    from bench.records import ROOT
    rows = []
    for f in ROWS:
        rows += [dict(r, source=f) for r in json.loads((ROOT / f).read_text())]
    by = {(lab, r["sigma"], r["seed"]): r for lab, c in CANDIDATES.items() for r in rows if r["label"] == c[3]}
    sigmas = sorted({k[1] for k in by if all((lab, k[1], k[2]) in by for lab in CANDIDATES)})
    seeds = sorted({k[2] for k in by})
    verify = [(lab, 4.0, 0) for lab in CANDIDATES][:a.verify] if a.verify <= len(CANDIDATES) else \
        [(lab, sg, 0) for sg in (4.0, 0.0) for lab in CANDIDATES][:a.verify]
    with Recorder("mh_setup", args=a, seeds=seeds, params={"dataset": "breast_cancer", "sigmas": sigmas,
                  "candidates": {k: list(v) for k, v in CANDIDATES.items()}, "rows_from": list(ROWS),
                  "verified_by_rerun": verify}) as rec:
        again = _run(_select_job, verify, a.workers)
        for (lab, sg, sd), r in zip(verify, again):
            old = by[(lab, sg, sd)]
            rec.round(kind="rerun", **r, recorded_val=old["val"], recorded_test=old["chip"],
                      same=(r["val"] == old["val"] and r["test"] == old["chip"]))
        for (lab, sg, sd), r in sorted(by.items()):
            if sg in sigmas:
                rec.round(kind="row", label=lab, sigma=sg, seed=sd, val=r["val"], test=r["chip"], source=r["source"])
        summary = {}
        for lab in CANDIDATES:
            summary[lab] = {"method": CANDIDATES[lab][0], "val_mean_over_sigmas": float(np.mean(
                [by[(lab, sg, sd)]["val"] for sg in sigmas for sd in seeds])),
                **{f"sigma{sg:g}": {"val": spread([by[(lab, sg, sd)]["val"] for sd in seeds]),
                                    "test": spread([by[(lab, sg, sd)]["chip"] for sd in seeds])} for sg in sigmas}}
        for method in ("mh", "cilspl"):
            labels = [k for k in CANDIDATES if CANDIDATES[k][0] == method]
            best = max(labels, key=lambda k: summary[k]["val_mean_over_sigmas"])
            ref = labels[0]
            paired = {k: spread([by[(k, sg, sd)]["val"] - by[(ref, sg, sd)]["val"] for sg in sigmas for sd in seeds])
                      for k in labels[1:]}
            rec.summary[method] = {"chosen": best, "reference": ref, "paired_val_minus_reference": paired}
        rec.summary["candidates"] = summary
        rec.summary["reproduced"] = all(r["same"] for r in rec.rounds if r.get("kind") == "rerun")
    print(VIEWS["select"](rec.as_dict()))


def check(a) -> None:
    jobs = [(m, a.sigma, s) for m in ("mh", "bptt") for s in a.seeds]
    with Recorder(a.name or "mh_cli_distortion", args=a, seeds=a.seeds, params={"sigma": a.sigma, "workers": a.workers,
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
    return f"{scale * s['mean']:{fmt}} ± {scale * s['std']:{fmt.lstrip('+')}}"


def view_select(rec: dict) -> str:
    seeds, sigmas = rec["seeds"], rec["params"]["sigmas"]
    c = rec["summary"]["candidates"]
    lines = [f"Breast cancer, seeds {', '.join(map(str, seeds))} (paired: a seed draws the split, the initial weights "
             "and the chip's fault instance), mean ± std over the seeds of the on-chip **validation** accuracy; the "
             f"choice is the highest mean over σ = {', '.join(f'{x:g}' for x in sigmas)} (test accuracy, in the "
             "record, chose nothing):", "",
             "| set-up | " + " | ".join(f"val σ={x:g}" for x in sigmas) + " | mean | chosen |",
             "|---" * (len(sigmas) + 3) + "|"]
    for k, v in c.items():
        chosen = "**default**" if rec["summary"][v["method"]]["chosen"] == k else ""
        lines.append(f"| {k} | " + " | ".join(_pm(v[f'sigma{x:g}']['val']) for x in sigmas)
                     + f" | {v['val_mean_over_sigmas']:.3f} | {chosen} |")
    n = len(seeds) * len(sigmas)
    lines += ["", f"Paired validation difference to the first set-up of each method ({n} pairs): " + "; ".join(
        f"{k}: {_pm(d, 100, '+.1f')} points" for m in ("mh", "cilspl")
        for k, d in rec["summary"][m]["paired_val_minus_reference"].items())
        + ". The runs are those of `bench/experiments.py distortion` and `distortionfix`; re-running "
        f"{len(rec['params']['verified_by_rerun'])} of them with the current code (`TrainConfig.bias_input`) gave "
        + ("the same accuracies bit for bit." if rec["summary"]["reproduced"] else "DIFFERENT accuracies (see the "
           "record's rounds).")]
    return "\n".join(lines)


def view_check(rec: dict) -> str:
    s = rec["summary"]
    load = rec["machine"]["load_before"]
    mh = next(r for r in rec["rounds"] if r["method"] == "mh")
    setup = (f"bias input {'on' if mh['bias_input'] else 'off'}, {mh.get('reset', 'subtract')} reset, lik_std "
             f"{mh['params']['lik_std']:g}")
    return (f"`spikeloop train --method mh --distortion {rec['params']['sigma']:g}` with default flags ({setup}), seeds "
            f"{', '.join(map(str, rec['seeds']))}: on-chip test accuracy {_pm(s['mh']['test'])} "
            f"(validation {_pm(s['mh']['val'])}); default BPTT {_pm(s['bptt']['test'])}; MH − BPTT, paired by seed: "
            f"{_pm(s['mh_minus_bptt_test'], 100, '+.1f')} points (load average {load[0]:.1f} at the start).")


VIEWS = {"select": view_select, "check": view_check}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["select", "check"])
    ap.add_argument("--seeds", type=int, nargs="+")
    ap.add_argument("--sigma", type=float, default=4.0, help="check: the distortion (default 4)")
    ap.add_argument("--name", help="check: the record's name (default mh_cli_distortion)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--verify", type=int, default=6, help="select: re-run this many recorded runs (σ=4, seed 0)")
    add_record_args(ap)
    a = ap.parse_args()
    if a.seeds is None:
        a.seeds = [0, 1, 2, 3, 4] if a.which == "select" else [101, 102, 103, 104, 105]
    if a.which == "check" and a.name and a.name.startswith("mh_cli_default_"):
        from bench.bench_levers import refuse_overlap      # a fresh check of the default: seeds no record used
        refuse_overlap("bench_mh_setup check", "mh_cli_default", a.name, a.seeds)
    select(a) if a.which == "select" else check(a)


if __name__ == "__main__":
    main()
