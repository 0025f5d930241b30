"""Does the tuner earn its keep? Hypervolume of the Pareto front against the number of trials, per sampler.

Every sampler (``random``, ``tpe``, ``nsga2``, ``gp``) runs the same study — the same search space, data
split, trial budget and per-trial training seeds (``study.seed`` = the run's seed) — once per seed. After
each trial, the hypervolume of the feasible trials' front is computed on the study's three *validation*
objectives (accuracy max, latency min, FPS/W max), each normalised to [0, 1] by the minimum and maximum
over **all** runs of this bench (so every sampler is measured on one scale), as losses, with the reference
point (1.1, 1.1, 1.1). Reported: mean ± std over the seeds at several budgets, and a plot.

    python -m bench.bench_samplers [--trials 20] [--seeds 5 | --seeds 31337,2718,...] [--seed-offset 0]
                                   [--samplers random,tpe,nsga2,gp] [--config study.toml] [--pages DIR] [--publish]

Writes the record ``samplers`` (bench/records.py: every sampler x seed run, its hypervolume curve and seconds, as a
round) and the page, plot and json into ``--pages`` (default runs/samplers; with ``--publish``
docs/experiments/samplers, where the page is a render block of the record).

The default study is small on purpose (breast cancer 30-16-2, BPTT and CIL-SPL, short epochs) so that
4 samplers x 5 seeds x 20 trials fit in well under an hour on one core.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna._hypervolume import compute_hypervolume
from tqdm import tqdm

from bench.records import Recorder, add_record_args

from tune.config import SAMPLERS, StudyConfig
from tune.study import run_study

BENCH_TOML = """
[study]
n_trials = 20
objective = "multi"

[data]
dataset = "breast_cancer"
steps = 16

[chip]
layer_sizes = [30, 16, 2]

[search]
methods = ["bptt", "cilspl"]
surrogates = ["atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through"]
beta = [0.3, 0.99]
theta = [0.25, 4.0]
surrogate_scale_factor = [0.25, 4.0]

[search.bptt]
epochs = [3, 12]

[search.cilspl]
epochs = [3, 12]
"""

REFERENCE = 1.1


def losses(trials) -> np.ndarray:
    """(n, 3) losses of the feasible complete trials: 1 - accuracy, latency, -FPS/W (validation)."""
    rows = [(1 - t.values[0], t.values[1], -t.values[2]) for t in trials
            if t.state == optuna.trial.TrialState.COMPLETE and all(v <= 0 for v in t.constraints.values())]
    return np.array(rows, float).reshape(-1, 3)


def hypervolume_curve(trials, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Hypervolume after 1..n trials (in trial-number order), losses scaled by ``lo``/``hi``."""
    trials = sorted(trials, key=lambda t: t.number)
    ref = np.full(3, REFERENCE)
    curve = []
    for k in range(1, len(trials) + 1):
        pts = (losses(trials[:k]) - lo) / np.where(hi > lo, hi - lo, 1.0)
        pts = pts[np.all(pts < ref, axis=1)]
        curve.append(float(compute_hypervolume(pts, ref)) if len(pts) else 0.0)
    return np.array(curve)


def main(argv=None) -> int:
    from bench.experiments import seed_list
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seeds", default="5", help="a count N (seeds offset..offset+N-1) or a list like 31337,2718")
    ap.add_argument("--seed-offset", type=int, default=0, help="first seed of a counted --seeds (default 0)")
    ap.add_argument("--samplers", default=",".join(SAMPLERS))
    ap.add_argument("--config", default=None, help="a study TOML (default: the small bench study above)")
    ap.add_argument("--pages", default=None, help="folder for the page, plot and json (default runs/samplers; "
                                                  "--publish: docs/experiments/samplers)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    samplers = a.samplers.split(",")
    bad = [s for s in samplers if s not in SAMPLERS]
    try:
        seeds = seed_list(a.seeds, max(a.seed_offset, 0))
    except argparse.ArgumentTypeError as e:
        raise SystemExit(f"bench_samplers: {e}") from None
    if bad or a.trials < 2:
        raise SystemExit(f"--samplers: allowed values are {list(SAMPLERS)}; --trials >= 2")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    text = Path(a.config).read_text() if a.config else BENCH_TOML
    root = Path(__file__).resolve().parents[1]
    out = Path(a.pages) if a.pages else root / ("docs/experiments/samplers" if a.publish else "runs/samplers")
    out.mkdir(parents=True, exist_ok=True)
    rec = Recorder("samplers", args=a, seeds=seeds, script=__file__,
                   params={"trials": a.trials, "samplers": samplers, "config": a.config or "the bench study",
                           "reference": REFERENCE})
    rec.__enter__()
    runs, seconds = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [(s, seed) for seed in seeds for s in samplers]
        for sampler, seed in tqdm(jobs, desc="sampler x seed runs"):
            sc = StudyConfig.from_toml(text, {"storage": f"sqlite:///{tmp}/{sampler}{seed}.db",
                                              "out": f"{tmp}/{sampler}{seed}", "name": f"{sampler}-{seed}",
                                              "n_trials": a.trials, "sampler": sampler, "seed": seed})
            t0 = time.perf_counter()
            study = run_study(sc, jobs=1, baseline=False)
            seconds[sampler, seed] = time.perf_counter() - t0
            runs[sampler, seed] = study.get_trials(deepcopy=False)
    pooled = np.concatenate([losses(t) for t in runs.values()])
    if not len(pooled):
        raise SystemExit("bench_samplers: no run has a feasible complete trial to compare; raise --trials")
    lo, hi = pooled.min(axis=0), pooled.max(axis=0)
    curves = {k: hypervolume_curve(t, lo, hi) for k, t in runs.items()}
    for (sampler, seed), c in curves.items():
        rec.round(sampler=sampler, seed=seed, hypervolume=list(map(float, c)), seconds=seconds[sampler, seed],
                  feasible=len(losses(runs[sampler, seed])))
    budgets = sorted({b for b in (5, 10, 15, 20, 30, 40, 50, a.trials) if b <= a.trials})
    table = {}
    for s in samplers:
        c = np.array([curves[s, seed] for seed in seeds])
        table[s] = {"mean": c.mean(0).tolist(), "std": c.std(0).tolist(),
                    "seconds_mean": float(np.mean([seconds[s, seed] for seed in seeds])),
                    "feasible_mean": float(np.mean([len(losses(runs[s, seed])) for seed in seeds]))}
    lines = ["| sampler | " + " | ".join(f"HV @ {b}" for b in budgets) + " | feasible trials | s per run |",
             "|---|" + "---|" * (len(budgets) + 2)]
    for s in samplers:
        m, sd = table[s]["mean"], table[s]["std"]
        lines.append(f"| {s} | " + " | ".join(f"{m[b - 1]:.3f} ± {sd[b - 1]:.3f}" for b in budgets)
                     + f" | {table[s]['feasible_mean']:.1f} | {table[s]['seconds_mean']:.0f} |")
    report = "\n".join(lines)
    print(report)
    md = (f"Seeds {', '.join(map(str, seeds))}, {a.trials} trials per run; mean ± std over the seeds.\n\n"
          f"Normalisation over all runs: loss minima {lo.round(4).tolist()}, maxima {hi.round(4).tolist()} "
          f"(1 - accuracy, latency µs, -FPS/W); reference point {REFERENCE} in each.\n\n{report}")
    rec.summary = {"lo": lo.tolist(), "hi": hi.tolist(), "samplers": table, "md": md}
    rec.__exit__(None, None, None)
    (out / "samplers.md").write_text(f"# Hypervolume vs trials\n\n<!-- render samplers md -->\n{md}\n"
                                     "<!-- end render -->\n")
    (out / "samplers.json").write_text(json.dumps({"trials": a.trials, "seeds": seeds, "lo": lo.tolist(),
                                                   "hi": hi.tolist(), "samplers": table}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, a.trials + 1)
    for s in samplers:
        m, sd = np.array(table[s]["mean"]), np.array(table[s]["std"])
        ax.plot(x, m, label=s)
        ax.fill_between(x, m - sd, m + sd, alpha=0.15)
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (normalised, validation objectives)")
    ax.set_title(f"Pareto-front hypervolume, mean ± std over {len(seeds)} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "samplers.png", dpi=120)
    print(f"wrote {out}/samplers.md, .json, .png")
    return 0


def view_md(rec: dict) -> str:
    """The page's table, as the run that measured it wrote it."""
    return rec["summary"]["md"]


VIEWS = {"md": view_md}


if __name__ == "__main__":
    raise SystemExit(main())
