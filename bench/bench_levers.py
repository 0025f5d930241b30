"""Two levers re-measured on new seeds, paired by seed, as records (issue #21 item 4).

    python -m bench.bench_levers conv [--seeds 301 302 303 304 305] [--publish]    # record lever_conv_seed002
    python -m bench.bench_levers async [--seeds 301 302 303 304 305] [--publish]   # record lever_async_order
    python -m bench.bench_levers rerun [--publish]                                  # record lever_rerun
    python -m bench.bench_levers fresh [--publish]                                  # record lever_fresh
    python -m bench.bench_levers stated [--publish]                                 # record lever_stated
    python -m bench.bench_levers fresh --against lever_stated --fresh-run 601 [--publish]   # record lever_fresh_601
    python -m bench.bench_levers reproduce --seeds 301 501 [--publish]              # record lever_async_reproduced
    python -m bench.bench_levers reproduce --seeds 601 --workers 1 --name X         # one seed alone, one process
    python -m bench.bench_levers draws [--records ...] [--publish]                  # record lever_async_draws

``rerun``: issue #21's test of a stated lever — does a fresh re-run on seeds no record used land within the
spread the docs state? For each lever rendered in the docs (the two above, and MH's default set-up,
``bench/bench_mh_setup.py``), the stated record against its re-run on new seeds (``--name X_401`` /
``mh_cli_default_301``, run first): the new mean against the stated mean ± std, and against the 95 %
prediction interval for the mean of a new run of m seeds, mean ± t(0.975, n−1) · std · √(1/n + 1/m).

``fresh``: the same test for what the docs state since ``rerun``: each lever's two runs pooled (ten seeds) and
the 95 % prediction interval for the mean of a new run of m seeds, mean ± t(0.975, n−1) · std · √(1/n + 1/m)
with n the pooled seeds — what a user re-running the lever on m new seeds should land in — against a fresh run
on seeds no record used before (501–505: ``--name lever_conv_seed002_501`` / ``lever_async_order_501`` /
``bench_mh_setup check --name mh_cli_default_501``, run first).

``stated``: what the docs state per lever now: EVERY run on record pooled (``RUNS``: the levers' 301–305,
401–405, 501–505 and 601–605, twenty seeds; MH's default set-up 101–105, 201–205, 301–305, 501–505 and 601–605,
twenty-five) with the 95 % prediction interval for the mean of a new run of five seeds: the pooled mean ± the
larger of the seed-level half-width t(0.975, n−1) · std · √(1/n + 1/m) and the run-level one t(0.975, k−1) ·
std(run means) · √(1 + 1/k) (k runs on record) — runs may differ more than their seeds predict (one-way ANOVA
over the runs, recorded per row), and a new run's mean carries that between-run spread too (one rule for every
row: ``stated_half_width``). ``fresh --against lever_stated --fresh-run T`` checks the runs ``X_T`` (``--name
lever_conv_seed002_T`` / ``lever_async_order_T`` / ``mh_cli_default_T``, on seeds no record used, run first)
against that statement, as record ``lever_fresh_T``.

A run named as a fresh check (``--name`` other than the default) must use seeds no published record of its
lever used: ``conv`` / ``async`` (and ``bench_mh_setup check``) refuse an overlapping ``--seeds`` in one line,
and ``fresh`` refuses a fresh record whose seeds overlap the stated ones.

``conv``: the conv_seed002 study's "best trade-off" (trial 15: atan ×2.24, beta 0.967, theta 0.512) against its
snnTorch-default trial (trial 0: atan, beta 0.95, theta 1), the study's fixed BPTT (10 epochs, lr 0.005) on
its conv chip (docs/experiments/conv_seed002.toml). Each seed draws the split, encoding, initial weights and
chip instance, the same for both designs (paired); validation accuracy and latency at the study's device.

``async``: the asynchronous event order's cost to offline training (digits, 64-64-10, 4-bit weights, 30
epochs): each seed's BPTT and BPTT+QAT programme is deployed on the synchronous chip and on the asynchronous
one (random arrival order per step, seeded like the fault instance): the same weights, so the difference is
the event order alone.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import ROOT, Recorder, add_record_args, spread  # noqa: E402

STUDY = ROOT / "docs" / "experiments" / "conv_seed002.toml"
TRIALS = ROOT / "docs" / "experiments" / "conv_seed002_cycles.json"
ASYNC_METHODS = ("bptt", "bptt_qat")


def _conv_job(job):
    import dataclasses
    import warnings
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from sim.power import performance
    from train.common import DeadNetworkWarning
    from train.run import prepare, run_training
    from train.surrogates import SURROGATES
    from tune.config import StudyConfig
    trial, params, seed = job
    sc = StudyConfig.load(STUDY)
    faults = dataclasses.replace(sc.train.faults, seed=seed)
    base = sc.train.replace(seed=seed, faults=faults)
    _, data = prepare(base)
    default = SURROGATES[params["surrogate"]][2]
    tc = base.replace(method="bptt", surrogate=params["surrogate"], theta=params["theta"],
                      surrogate_scale=None if default is None else default * params["surrogate_scale_factor"],
                      chip=base.chip.replace(beta=params["beta"]), params={"epochs": 10, "lr": 0.005})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeadNetworkWarning)
        r = run_training(tc, data=data, progress=False)
    perf = performance({k: np.array([v]) for k, v in r.val_activity.items()}, sc.device)
    return {"trial": trial, "seed": seed, "val": r.chip_val_accuracy, "test": r.chip_accuracy,
            "latency_us": perf.latency_us, "dead": r.extra.get("dead"), "seconds": r.seconds}


def _async_job(job):
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from train.common import accuracy
    from train.config import TrainConfig
    from train.run import run_training
    method, seed = job
    chip = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, beta=0.9, weight_bits=4)
    tc = TrainConfig(method=method, dataset="digits", chip=chip, seed=seed, params={"epochs": 30})
    from train.run import prepare
    _, data = prepare(tc)
    r = run_training(tc, data=data, progress=False)
    q = ChipConfig.from_dict(r.chip_config)
    out = {"method": method, "seed": seed, "software_test": r.software_accuracy}
    for mode in ("fast", "async"):
        c = make_chip(q, mode, **({"seed": seed} if mode == "async" else {}))
        c.load(r.chip_weights, cfg=q)
        for split, x, y in (("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
            out[f"{mode}_{split}"] = accuracy(np.asarray(c.run(x).output), y)
    return out


def _async_draws_job(job):
    """One seed's BPTT(+QAT) programme (trained as ``_async_job`` does) and its asynchronous-order cost on test
    under new input draws: ``orders`` arrival orders on the recorded test encoding, and ``draws`` new test
    encodings each with a new arrival order (seeds far from any record's: no stream shared with a seed's own)."""
    import numpy as np
    import torch
    torch.set_num_threads(1)
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from train.common import accuracy
    from train.config import TrainConfig
    from train.encode import encode
    from train.run import load_split, prepare, run_training
    method, seed, orders, draws = job
    chip = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, beta=0.9, weight_bits=4)
    tc = TrainConfig(method=method, dataset="digits", chip=chip, seed=seed, params={"epochs": 30})
    split = load_split(tc)
    _, data = prepare(tc, split)
    r = run_training(tc, data=data, progress=False)
    q = ChipConfig.from_dict(r.chip_config)

    def acc(mode, x, order_seed=None):
        c = make_chip(q, mode, **({"seed": order_seed} if mode == "async" else {}))
        c.load(r.chip_weights, cfg=q)
        return accuracy(np.asarray(c.run(x).output), data.y_test)
    fast = acc("fast", data.x_test)
    out = {"method": method, "seed": seed, "fast_test": fast, "async_test": acc("async", data.x_test, seed),
           "order_costs": [100 * (fast - acc("async", data.x_test, ORDER_BASE + 1000 * seed + i))
                           for i in range(orders)], "draw_costs": []}
    for i in range(draws):
        x = encode(split.x_test, tc.steps, tc.encoder, DRAW_BASE + 1000 * seed + i)
        out["draw_costs"].append(100 * (acc("fast", x) - acc("async", x, ORDER_BASE + 500 + 1000 * seed + i)))
    return out


#: seeds of the new input draws of ``draws``: far above any training seed s and its streams s, s + 1, s + 2
ORDER_BASE, DRAW_BASE = 10_000_000, 20_000_000


def _run(fn, jobs, workers):
    if workers == 1:
        return [fn(j) for j in jobs]
    with ProcessPoolExecutor(workers) as ex:
        return list(ex.map(fn, jobs))


def conv(a) -> None:
    rows = {r["trial"]: r["params"] for r in json.loads(TRIALS.read_text())["rows"]}
    designs = {0: rows[0], 15: rows[15]}
    jobs = [(t, p, s) for s in a.seeds for t, p in designs.items()]
    with Recorder(a.name or "lever_conv_seed002", args=a, seeds=a.seeds, params={"study": str(STUDY.relative_to(ROOT)),
                  "designs": designs, "epochs": 10, "lr": 0.005}) as rec:
        res = _run(_conv_job, jobs, a.workers)
        for r in res:
            rec.round(**r)
        by = {(r["trial"], r["seed"]): r for r in res}
        d_acc = [by[(15, s)]["val"] - by[(0, s)]["val"] for s in a.seeds]
        d_lat = [100 * (by[(15, s)]["latency_us"] / by[(0, s)]["latency_us"] - 1) for s in a.seeds]
        rec.summary = {str(t): {"val": spread([by[(t, s)]["val"] for s in a.seeds]),
                                "latency_us": spread([by[(t, s)]["latency_us"] for s in a.seeds]),
                                "dead": sum(bool(by[(t, s)]["dead"]) for s in a.seeds)} for t in designs}
        rec.summary["d_val_points"] = spread([100 * x for x in d_acc])
        rec.summary["d_latency_pct"] = spread(d_lat)
        rec.summary["study_draw"] = {"d_val_points": -0.8, "d_latency_pct": -35.8, "seed": 2}
    print(VIEWS["conv"](rec.as_dict()))


def async_order(a) -> None:
    jobs = [(m, s) for s in a.seeds for m in ASYNC_METHODS]
    with Recorder(a.name or "lever_async_order", args=a, seeds=a.seeds, params={"dataset": "digits", "chip": "64-64-10, "
                  "4-bit, lanes 8, beta 0.9", "epochs": 30, "methods": ASYNC_METHODS}) as rec:
        res = _run(_async_job, jobs, a.workers)
        for r in res:
            rec.round(**r)
        for m in ASYNC_METHODS:
            mine = [r for r in res if r["method"] == m]
            rec.summary[m] = {"sync_test": spread([r["fast_test"] for r in mine]),
                              "async_test": spread([r["async_test"] for r in mine]),
                              "cost_test_points": spread([100 * (r["fast_test"] - r["async_test"]) for r in mine]),
                              "cost_val_points": spread([100 * (r["fast_val"] - r["async_val"]) for r in mine])}
    print(VIEWS["async"](rec.as_dict()))


def _pm(s, fmt=".3f"):
    return f"{s['mean']:{fmt}} ± {s['std']:{fmt.lstrip('+')}}"


def view_conv(rec: dict) -> str:
    s = rec["summary"]
    n = len(rec["seeds"])
    return "\n".join([
        "| design | val accuracy | latency µs (val) | dead networks |", "|---|---|---|---|",
        *[f"| trial {t}{' (snnTorch default)' if t == '0' else ' (study best trade-off)'} | {_pm(s[t]['val'])} | "
          f"{_pm(s[t]['latency_us'], '.0f')} | {s[t]['dead']} of {n} |" for t in ("0", "15")],
        "", f"Trial 15 − trial 0, paired over seeds {', '.join(map(str, rec['seeds']))} (new split, encoding, "
        f"initial weights and chip instance per seed): validation accuracy {_pm(s['d_val_points'], '+.1f')} points, "
        f"latency {_pm(s['d_latency_pct'], '+.1f')} % — the study's single draw (seed 2) said "
        f"{s['study_draw']['d_val_points']:+.1f} points, {s['study_draw']['d_latency_pct']:+.1f} %."
        + _alive_only(rec)])


def _alive_only(rec: dict) -> str:
    """The paired differences over the seeds where neither design is a dead network."""
    by = {(str(r["trial"]), r["seed"]): r for r in rec["rounds"]}
    ok = [s for s in rec["seeds"] if not by[("0", s)]["dead"] and not by[("15", s)]["dead"]]
    if len(ok) == len(rec["seeds"]) or len(ok) < 2:
        return ""
    da = spread([100 * (by[("15", s)]["val"] - by[("0", s)]["val"]) for s in ok])
    dl = spread([100 * (by[("15", s)]["latency_us"] / by[("0", s)]["latency_us"] - 1) for s in ok])
    return (f" Over the {len(ok)} seeds where neither network is dead: {_pm(da, '+.1f')} points, "
            f"{_pm(dl, '+.1f')} % latency.")


def view_async(rec: dict) -> str:
    s = rec["summary"]
    lines = ["| method | synchronous chip, test | asynchronous chip, test | cost, test points | cost, val points |",
             "|---|---|---|---|---|"]
    for m in ASYNC_METHODS:
        lines.append(f"| {m} | {_pm(s[m]['sync_test'])} | {_pm(s[m]['async_test'])} | "
                     f"{_pm(s[m]['cost_test_points'], '+.1f')} | {_pm(s[m]['cost_val_points'], '+.1f')} |")
    return "\n".join(lines + ["", f"The same programme on both chip modes, seeds {', '.join(map(str, rec['seeds']))} "
                              "(paired by seed; cost = synchronous − asynchronous accuracy)."])


#: (label, stated record, re-run record, how to read a quantity's per-seed values from a record, scale, unit)
def _conv_d(rec, alive_only=False):
    by = {(str(r["trial"]), r["seed"]): r for r in rec["rounds"]}
    seeds = [s for s in rec["seeds"] if not alive_only or not (by[("0", s)]["dead"] or by[("15", s)]["dead"])]
    return seeds, by


def _conv_val(rec, alive_only=False):
    seeds, by = _conv_d(rec, alive_only)
    return [100 * (by[("15", s)]["val"] - by[("0", s)]["val"]) for s in seeds]


def _conv_lat(rec, alive_only=False):
    seeds, by = _conv_d(rec, alive_only)
    return [100 * (by[("15", s)]["latency_us"] / by[("0", s)]["latency_us"] - 1) for s in seeds]


def _async_cost(method, split):
    key = "fast_test" if split == "test" else "fast_val"
    return lambda rec: [100 * (r[key] - r[f"async_{split}"]) for r in rec["rounds"] if r["method"] == method]


def _mh(rec):
    return [r["test"] for r in rec["rounds"] if r["method"] == "mh"]


def _mh_minus_bptt(rec):
    mh = {r["seed"]: r["test"] for r in rec["rounds"] if r["method"] == "mh"}
    bp = {r["seed"]: r["test"] for r in rec["rounds"] if r["method"] == "bptt"}
    return [100 * (mh[s] - bp[s]) for s in mh if s in bp]


LEVERS = [
    ("conv seed-002 lever: Δ val accuracy, points (trial 15 − trial 0)", "lever_conv_seed002", "lever_conv_seed002_401",
     _conv_val, "+.1f"),
    ("conv seed-002 lever: Δ latency, %", "lever_conv_seed002", "lever_conv_seed002_401", _conv_lat, "+.1f"),
    ("conv seed-002 lever, seeds where neither is dead: Δ val accuracy, points", "lever_conv_seed002",
     "lever_conv_seed002_401", lambda r: _conv_val(r, True), "+.1f"),
    ("conv seed-002 lever, seeds where neither is dead: Δ latency, %", "lever_conv_seed002",
     "lever_conv_seed002_401", lambda r: _conv_lat(r, True), "+.1f"),
    ("async order cost, BPTT, test points", "lever_async_order", "lever_async_order_401",
     _async_cost("bptt", "test"), "+.1f"),
    ("async order cost, BPTT, val points", "lever_async_order", "lever_async_order_401",
     _async_cost("bptt", "val"), "+.1f"),
    ("async order cost, BPTT+QAT, test points", "lever_async_order", "lever_async_order_401",
     _async_cost("bptt_qat", "test"), "+.1f"),
    ("async order cost, BPTT+QAT, val points", "lever_async_order", "lever_async_order_401",
     _async_cost("bptt_qat", "val"), "+.1f"),
    ("`train --method mh --distortion 4`: MH test accuracy", "mh_cli_default", "mh_cli_default_301", _mh, ".3f"),
    ("`train --method mh --distortion 4`: MH − BPTT, test points", "mh_cli_default", "mh_cli_default_301",
     _mh_minus_bptt, "+.1f"),
]

#: t(0.975, df) for the small seed counts the records use
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042}


def t975(df: int) -> float:
    """t(0.975, df): the table up to 30 degrees of freedom, scipy beyond."""
    if df in T975:
        return T975[df]
    from scipy.stats import t
    return float(t.ppf(0.975, df))


def rerun(a) -> None:
    from bench.records import PUBLISHED, SCRATCH, load
    def find(name):
        for folder in (PUBLISHED, SCRATCH):
            if (folder / f"{name}.json").exists():
                return load(name, folder)
        raise SystemExit(f"bench_levers rerun: record {name} not found in docs/results or runs/results; run it first")
    with Recorder("lever_rerun", args=a, seeds=[], params={"levers": [x[0] for x in LEVERS]}) as rec:
        rows = []
        for label, stated_name, new_name, values, fmt in LEVERS:
            stated, new = find(stated_name), find(new_name)
            sv, nv = spread(values(stated)), spread(values(new))
            n, m = sv["n"], nv["n"]
            half = t975(n - 1) * sv["std"] * (1 / n + 1 / m) ** 0.5 if n > 1 else float("inf")
            pooled = spread(values(stated) + values(new))
            pooled_half = t975(pooled["n"] - 1) * pooled["std"] / pooled["n"] ** 0.5
            rows.append({"label": label, "fmt": fmt, "stated_record": stated_name, "stated_seeds": stated["seeds"],
                         "pooled": pooled, "pooled_ci95_half_width": pooled_half,
                         "rerun_record": new_name, "rerun_seeds": new["seeds"], "stated": sv, "rerun": nv,
                         "within_std": abs(nv["mean"] - sv["mean"]) <= sv["std"],
                         "prediction_half_width": half, "within_prediction": abs(nv["mean"] - sv["mean"]) <= half})
            rec.seeds = sorted(set(rec.seeds) | set(new["seeds"]))      # the new seeds this check rests on
        rec.summary = {"rows": rows, "within_std": sum(r["within_std"] for r in rows),
                       "within_prediction": sum(r["within_prediction"] for r in rows), "n": len(rows)}
    print(VIEWS["rerun"](rec.as_dict()))


#: the stated (pooled) records and the fresh record of each lever of LEVERS, by its stated record
FRESH = {"lever_conv_seed002": (("lever_conv_seed002", "lever_conv_seed002_401"), "lever_conv_seed002_501"),
         "lever_async_order": (("lever_async_order", "lever_async_order_401"), "lever_async_order_501"),
         "mh_cli_default": (("mh_cli_default", "mh_cli_default_301"), "mh_cli_default_501")}


def prediction_half_width(values: list[float], m: int) -> float:
    """Half-width of the 95 % prediction interval for the mean of m new draws, from ``values`` (n draws):
    t(0.975, n−1) · std · √(1/n + 1/m)."""
    st = spread(values)
    n = st["n"]
    if n < 2 or m < 1:
        return float("inf")
    return t975(n - 1) * st["std"] * (1 / n + 1 / m) ** 0.5


def between_runs(groups: list[list[float]]) -> dict:
    """Do the runs (``groups``: each run's per-seed values) differ more than their seeds predict? One-way ANOVA
    over the runs: F, its p-value, and the run means' std (sample) — the between-run spread a new run's mean
    carries, which a pooled seed-level std leaves out when runs share something or chance scatters them."""
    groups = [[float(v) for v in g] for g in groups if g]
    k, n = len(groups), sum(len(g) for g in groups)
    means = [sum(g) / len(g) for g in groups]
    out = {"k": k, "run_n": [len(g) for g in groups], "run_means": means,
           "std_run_means": spread(means)["std"] if k > 1 else None, "F": None, "p": None}
    if k < 2 or n - k < 1:
        return out
    grand = sum(sum(g) for g in groups) / n
    ss_b = sum(len(g) * (m - grand) ** 2 for g, m in zip(groups, means))
    ss_w = sum((v - m) ** 2 for g, m in zip(groups, means) for v in g)
    ms_b, ms_w = ss_b / (k - 1), ss_w / (n - k)
    if ms_w == 0:
        out["F"], out["p"] = (float("inf"), 0.0) if ms_b > 0 else (None, None)
        return out
    from scipy.stats import f
    out["F"] = ms_b / ms_w
    out["p"] = float(f.sf(out["F"], k - 1, n - k))
    return out


def stated_half_width(groups: list[list[float]], m: int) -> dict:
    """Half-width of the 95 % prediction interval for the mean of a new run of m seeds, from the runs on record
    (``groups``: each run's per-seed values), one rule for every row: the larger of
    the seed-level interval, t(0.975, n−1) · std · √(1/n + 1/m) over the n pooled seeds (right when the runs are
    draws of one experiment), and the run-level one, t(0.975, k−1) · std(run means) · √(1 + 1/k) over the k run
    means (right for a run like those on record whatever the runs share: a random-effects interval; it needs two
    runs). A lever whose runs scatter more than its seeds predict is stated with the wider run-level spread."""
    pooled = [v for g in groups for v in g]
    seeds = prediction_half_width(pooled, m)
    br = between_runs(groups)
    k = br["k"]
    runs = t975(k - 1) * br["std_run_means"] * (1 + 1 / k) ** 0.5 if k > 1 else float("inf")
    half = max(seeds, runs) if k > 1 else seeds
    return {"half": half, "seeds": seeds, "runs": runs, "by": "runs" if k > 1 and runs > seeds else "seeds",
            "between_runs": br}


INTERVAL = ("pooled mean ± the larger of t(0.975, n−1) · std · √(1/n + 1/m) (n pooled seeds) and "
            "t(0.975, k−1) · std(run means) · √(1 + 1/k) (k runs on record), m = 5")

#: every run on record of each lever of LEVERS (by its stated record), pooled by ``stated``: the same command
#: and set-up on disjoint seeds (MH's 101–105 ran the final default too, after the 201–205 check)
RUNS = {"lever_conv_seed002": ("lever_conv_seed002", "lever_conv_seed002_401", "lever_conv_seed002_501",
                               "lever_conv_seed002_601"),
        "lever_async_order": ("lever_async_order", "lever_async_order_401", "lever_async_order_501",
                              "lever_async_order_601"),
        "mh_cli_default": ("mh_cli_default_101", "mh_cli_default", "mh_cli_default_301", "mh_cli_default_501",
                           "mh_cli_default_601")}


def _find(prog, name):
    from bench.records import PUBLISHED, SCRATCH, load
    for folder in (PUBLISHED, SCRATCH):
        if (folder / f"{name}.json").exists():
            return load(name, folder)
    raise SystemExit(f"bench_levers {prog}: record {name} not found in docs/results or runs/results; run it first")


def _ranges(seeds) -> str:
    """``[301, 302, 303, 401, 402]`` -> ``301–303, 401–402`` (runs of consecutive seeds)."""
    seeds, out = sorted(seeds), []
    for x in seeds:
        if out and x == out[-1][1] + 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return ", ".join(f"{a}–{b}" if a != b else f"{a}" for a, b in out)


def overlapping_records(base: str, name: str, seeds, folder=None) -> list[tuple[str, list[int]]]:
    """The published records of lever ``base`` (``base`` or ``base_*``) other than ``name`` that used any of
    ``seeds``: a fresh check must use seeds none of them used."""
    from bench.records import PUBLISHED
    folder = folder or PUBLISHED
    hits = []
    for f in sorted(folder.glob(f"{base}*.json")):
        other = f.stem
        if other == name or not (other == base or other.startswith(base + "_")):
            continue
        used = json.loads(f.read_text()).get("seeds", [])
        if set(used) & set(seeds):
            hits.append((other, used))
    return hits


def refuse_overlap(prog: str, base: str, name: str | None, seeds, folder=None) -> None:
    """One-line refusal of a run named as a fresh check (``--name`` other than ``base``) on seeds a record of the
    same lever used."""
    if not name or name == base:
        return
    hits = overlapping_records(base, name, seeds, folder)
    if hits:
        other, used = hits[0]
        both = sorted(set(used) & set(seeds))
        raise SystemExit(f"{prog}: --seeds {' '.join(map(str, both))} already used by record {other} (seeds "
                         f"{_ranges(used)}); a fresh check (--name {name}) needs seeds no record of {base} used")


def stated(a) -> None:
    """Every run on record of each lever pooled (``RUNS``), and the 95 % prediction interval for a new five-seed
    run's mean: what the docs state."""
    with Recorder(a.name or "lever_stated", args=a, seeds=[], params={
            "levers": [x[0] for x in LEVERS], "runs": {k: list(v) for k, v in RUNS.items()},
            "interval": INTERVAL}) as rec:
        rows = []
        for label, base, _, values, fmt in LEVERS:
            runs = [_find("stated", n) for n in RUNS[base]]
            groups = [values(r) for r in runs]
            pooled_values = [v for g in groups for v in g]
            seeds = sorted(s for r in runs for s in r["seeds"])
            h = stated_half_width(groups, 5)
            rows.append({"label": label, "fmt": fmt, "lever": base, "stated_records": list(RUNS[base]),
                         "stated_seeds": seeds, "stated_seed_ranges": _ranges(seeds), "values": pooled_values,
                         "pooled": spread(pooled_values), "between_runs": h["between_runs"],
                         "prediction_half_width_5_seeds": h["seeds"], "prediction_half_width_5_runs": h["runs"],
                         "prediction_half_width_5_by": h["by"], "prediction_half_width_5": h["half"]})
            rec.seeds = sorted(set(rec.seeds) | set(seeds))
        rec.summary = {"rows": rows, "n": len(rows)}
    print(VIEWS["stated"](rec.as_dict()))


def fresh(a) -> None:
    if a.against:
        return fresh_against(a)
    def find(name):
        return _find("fresh", name)
    with Recorder("lever_fresh", args=a, seeds=[], params={"levers": [x[0] for x in LEVERS],
                  "interval": "pooled mean ± t(0.975, n−1) · std · √(1/n + 1/m)"}) as rec:
        rows = []
        for label, stated_name, _, values, fmt in LEVERS:
            names, new_name = FRESH[stated_name]
            stated = [find(n) for n in names]
            new = find(new_name)
            pooled_values = [v for r in stated for v in values(r)]
            pooled, nv = spread(pooled_values), spread(values(new))
            m = nv["n"]
            planned = len(new["seeds"])
            # the interval stated for a new run of as many seeds as it runs (a seed-filtered row: as many as count)
            half = prediction_half_width(pooled_values, m)
            rows.append({"label": label, "fmt": fmt, "stated_records": list(names),
                         "stated_seeds": sorted(s for r in stated for s in r["seeds"]), "pooled": pooled,
                         "m": m, "planned_m": planned, "prediction_half_width": half,
                         "prediction_half_width_5": prediction_half_width(pooled_values, 5),
                         "fresh_record": new_name, "fresh_seeds": new["seeds"], "fresh": nv,
                         "inside": abs(nv["mean"] - pooled["mean"]) <= half})
            rec.seeds = sorted(set(rec.seeds) | set(new["seeds"]))
        rec.summary = {"rows": rows, "inside": sum(r["inside"] for r in rows), "n": len(rows)}
    print(VIEWS["fresh"](rec.as_dict()))


def fresh_against(a) -> None:
    """Each lever's fresh run ``X_T`` (T = ``--fresh-run``) against the statement in record ``--against``
    (``stated``): its per-seed values are re-read from the stated records and must match the statement."""
    if not a.fresh_run:
        raise SystemExit("bench_levers fresh: --against needs --fresh-run T (the fresh runs' suffix, e.g. 601)")
    from bench import records
    st = _find("fresh", a.against)
    name = a.name or f"lever_fresh_{a.fresh_run}"
    if not any((folder / f"{base}_{a.fresh_run}.json").exists() for _, base, *_ in LEVERS
               for folder in (records.PUBLISHED, records.SCRATCH)):     # a mistyped T: no vacuous "0 of 0" record
        raise SystemExit(f"bench_levers fresh: --fresh-run {a.fresh_run}: no lever has a fresh run "
                         f"{LEVERS[0][1]}_{a.fresh_run} (or the like) in docs/results or runs/results; run them first")
    with Recorder(name, args=a, seeds=[], params={"levers": [x[0] for x in LEVERS], "against": a.against,
                  "fresh_run": a.fresh_run, "interval": INTERVAL.replace(", m = 5", "")}) as rec:
        rows = []
        for (label, base, _, values, fmt), srow in zip(LEVERS, st["summary"]["rows"]):
            if srow["label"] != label:
                raise SystemExit(f"bench_levers fresh: record {a.against} states {srow['label']!r}, not {label!r}")
            groups = [values(_find("fresh", n)) for n in srow["stated_records"]]
            pooled_values = [v for g in groups for v in g]
            if pooled_values != srow["values"]:
                raise SystemExit(f"bench_levers fresh: the records of {label!r} no longer give what {a.against} "
                                 "states; re-run `bench_levers stated` first")
            new_name = f"{base}_{a.fresh_run}"
            if not any((folder / f"{new_name}.json").exists() for folder in (records.PUBLISHED, records.SCRATCH)):
                rows.append({"label": label, "fmt": fmt, "stated_records": srow["stated_records"],
                             "stated_seeds": srow["stated_seeds"], "pooled": spread(pooled_values),
                             "prediction_half_width_5": srow["prediction_half_width_5"], "fresh_record": new_name,
                             "fresh": None, "inside": None})          # not run (yet): said so, not left out
                continue
            new = _find("fresh", new_name)
            both = sorted(set(new["seeds"]) & set(srow["stated_seeds"]))
            if both:
                raise SystemExit(f"bench_levers fresh: record {new_name} used seeds {' '.join(map(str, both))} that "
                                 f"{a.against} already pools; a fresh check needs seeds no record used")
            pooled, nv = spread(pooled_values), spread(values(new))
            m = nv["n"]
            h = stated_half_width(groups, m)
            half = h["half"]
            rows.append({"label": label, "fmt": fmt, "stated_records": srow["stated_records"],
                         "stated_seeds": srow["stated_seeds"], "pooled": pooled, "m": m,
                         "planned_m": len(new["seeds"]), "prediction_half_width": half,
                         "prediction_half_width_seeds": h["seeds"], "prediction_half_width_runs": h["runs"],
                         "prediction_half_width_by": h["by"], "between_runs": h["between_runs"],
                         "prediction_interval": [pooled["mean"] - half, pooled["mean"] + half],
                         "prediction_half_width_5": srow["prediction_half_width_5"],
                         "fresh_record": new_name, "fresh_seeds": new["seeds"], "fresh_values": values(new),
                         "fresh": nv, "inside": abs(nv["mean"] - pooled["mean"]) <= half,
                         # what the seed-level interval alone would have said (the rule before the run-level one)
                         "inside_seed_level": abs(nv["mean"] - pooled["mean"]) <= h["seeds"]})
            rec.seeds = sorted(set(rec.seeds) | set(new["seeds"]))
        run = [r for r in rows if r["fresh"] is not None]
        rec.summary = {"rows": rows, "inside": sum(r["inside"] for r in run), "n": len(run), "n_levers": len(rows),
                       "inside_seed_level": sum(r["inside_seed_level"] for r in run),
                       "by_runs": sum(r["prediction_half_width_by"] == "runs" for r in run)}
    print(VIEWS["fresh"](rec.as_dict()))


def reproduce(a) -> None:
    """Re-run the BPTT+QAT programme of ``--seeds`` at this commit and compare with the async-order record that
    holds each seed (``RUNS``): are runs made at different commits one experiment?"""
    held = {}
    for name in RUNS["lever_async_order"]:
        for r in _find("reproduce", name)["rounds"]:
            if r["method"] == "bptt_qat":
                held[r["seed"]] = (name, r)
    missing = [s for s in a.seeds if s not in held]
    if missing:
        raise SystemExit(f"bench_levers reproduce: --seeds {' '.join(map(str, missing))} are in no record of "
                         f"{', '.join(RUNS['lever_async_order'])}")
    with Recorder(a.name or "lever_async_reproduced", args=a, seeds=a.seeds,
                  params={"method": "bptt_qat", "records": sorted({held[s][0] for s in a.seeds})}) as rec:
        res = _run(_async_job, [("bptt_qat", s) for s in a.seeds], a.workers)
        for r in res:
            name, old = held[r["seed"]]
            rec.round(record=name, recorded_commit=_find("reproduce", name)["commit"], **r,
                      same=all(old[k] == r[k] for k in r))
        rec.summary = {"same": sum(r["same"] for r in rec.rounds), "n": len(rec.rounds)}
    print(VIEWS["reproduced"](rec.as_dict()))


def draws(a) -> None:
    """Where the async-order cost's scatter lives: each seed's programme of the runs ``--records`` re-trained at
    this commit (its recorded accuracies re-derived bit for bit), then its cost under ``--orders`` new arrival
    orders and ``--draws`` new test encodings (each with a new order): one-way ANOVA over the runs of the recorded
    per-seed costs and of each network's mean cost over the new draws (the input noise averaged out)."""
    recs = {n: _find("draws", n) for n in a.records}
    held = {r["seed"]: (n, r) for n, rec in recs.items() for r in rec["rounds"] if r["method"] == a.method}
    seeds = sorted(held)
    with Recorder(a.name or "lever_async_draws", args=a, seeds=seeds, params={
            "method": a.method, "records": list(a.records), "orders": a.orders, "draws": a.draws,
            "order_seeds": f"{ORDER_BASE} + 1000·seed + i", "encoding_seeds": f"{DRAW_BASE} + 1000·seed + i"}) as rec:
        res = _run(_async_draws_job, [(a.method, s, a.orders, a.draws) for s in seeds], a.workers)
        for r in res:
            name, old = held[r["seed"]]
            rec.round(record=name, recorded_cost=100 * (old["fast_test"] - old["async_test"]),
                      same=old["fast_test"] == r["fast_test"] and old["async_test"] == r["async_test"], **r)
        by = {r["seed"]: r for r in rec.rounds}
        groups = {"recorded": [], "order_mean": [], "draw_mean": [], "order_effect": [], "encoding_effect": []}
        mean = lambda v: sum(v) / len(v)
        for n in a.records:
            ss = [s for s in seeds if held[s][0] == n]
            groups["recorded"].append([by[s]["recorded_cost"] for s in ss])
            groups["order_mean"].append([mean(by[s]["order_costs"]) for s in ss])
            groups["draw_mean"].append([mean(by[s]["draw_costs"]) for s in ss])
            # the recorded arrival order's part of a seed's cost, and the recorded test encoding's part
            groups["order_effect"].append([by[s]["recorded_cost"] - mean(by[s]["order_costs"]) for s in ss])
            groups["encoding_effect"].append([mean(by[s]["order_costs"]) - mean(by[s]["draw_costs"]) for s in ss])
        import statistics
        within = lambda key: statistics.fmean(statistics.variance(by[s][key]) for s in seeds) ** 0.5
        rec.summary = {
            "same": sum(r["same"] for r in rec.rounds), "n": len(rec.rounds),
            "anova": {k: between_runs(g) for k, g in groups.items()},
            "spread": {k: spread([v for x in g for v in x]) for k, g in groups.items()},
            "run_means": {k: [sum(x) / len(x) for x in g] for k, g in groups.items()},
            # one network's cost from one input draw scatters this much (rms over networks of the std over draws)
            "std_within_network_orders": within("order_costs"), "std_within_network_draws": within("draw_costs")}
        dm = rec.summary["spread"]["draw_mean"]
        # the cost of the asynchronous order to a network, its input noise averaged out: 95 % CI over the networks
        rec.summary["draw_mean_ci95_half_width"] = t975(dm["n"] - 1) * dm["std"] / dm["n"] ** 0.5
    print(VIEWS["draws"](rec.as_dict()))


def view_draws(rec: dict) -> str:
    s, p = rec["summary"], rec["params"]
    runs = [f"{min(x['seed'] for x in rec['rounds'] if x['record'] == n)}–"
            f"{max(x['seed'] for x in rec['rounds'] if x['record'] == n)}" for n in p["records"]]
    lines = [f"| {p['method']} cost on test, points | " + " | ".join(runs) + " | all seeds: mean ± std | "
             "runs differ? ANOVA p |", "|---" * (len(runs) + 3) + "|"]
    what = {"recorded": "as recorded (one arrival order, the run's test encoding)",
            "order_mean": f"mean over {p['orders']} new arrival orders (the test encoding as recorded)",
            "draw_mean": f"mean over {p['draws']} new test encodings, each with a new order"}
    what.update({"order_effect": "the recorded arrival order's part (as recorded − mean over new orders)",
                 "encoding_effect": "the recorded test encoding's part (mean over new orders − mean over new "
                                    "encodings)"} if "order_effect" in s["run_means"] else {})
    for k, label in what.items():
        lines.append(f"| {label} | " + " | ".join(f"{m:+.2f}" for m in s["run_means"][k]) +
                     f" | {_pm(s['spread'][k], '+.2f')} | {_p(s['anova'][k]['p']).lstrip('= ')} |")
    return "\n".join(lines + ["", f"{s['same']} of {s['n']} programmes re-trained at commit {rec['commit'][:7]} give "
                              "the recorded synchronous and asynchronous accuracies bit for bit. One network's cost "
                              f"scatters ± {s['std_within_network_orders']:.2f} points over arrival orders alone "
                              f"and ± {s['std_within_network_draws']:.2f} over new encodings with new orders "
                              "(rms over the networks of the std over draws)."]
                 + ([f"The cost to a network with its input noise averaged out: "
                     f"{s['spread']['draw_mean']['mean']:+.2f} ± {s['draw_mean_ci95_half_width']:.2f} points (95 % CI "
                     f"of the mean over the {s['spread']['draw_mean']['n']} networks)."]
                    if "draw_mean_ci95_half_width" in s else []))


def view_reproduced(rec: dict) -> str:
    s = rec["summary"]
    return (f"{s['same']} of {s['n']} BPTT+QAT programmes (seeds {', '.join(map(str, rec['seeds']))}, from "
            f"{', '.join(rec['params']['records'])}) re-run at commit {rec['commit'][:7]} give the recorded "
            "synchronous and asynchronous accuracies bit for bit.")


def view_stated(rec: dict) -> str:
    """What the docs state per lever: every run on record pooled, and where a new five-seed run's mean should
    land."""
    if "between_runs" in rec["summary"]["rows"][0]:
        return _view_stated_runs(rec)
    lines = ["| lever | seeds pooled | pooled: mean ± std | a new run of 5 seeds: 95 % prediction interval of its "
             "mean |", "|---|---|---|---|"]
    for r in rec["summary"]["rows"]:
        f, h = r["fmt"], r["prediction_half_width_5"]
        lo, hi = r["pooled"]["mean"] - h, r["pooled"]["mean"] + h
        n, planned = r["pooled"]["n"], len(r["stated_seeds"])
        which = f"{n} ({_ranges(r['stated_seeds'])})" if n == planned else \
            f"{n} of {planned} ({_ranges(r['stated_seeds'])}; {planned - n} with a dead network left out)"
        lines.append(f"| {r['label']} | {which} | {_pm(r['pooled'], f)} | "
                     f"{r['pooled']['mean']:{f}} ± {h:{f.lstrip('+')}} [{lo:{f.lstrip('+')}}, {hi:{f.lstrip('+')}}] |")
    return "\n".join(lines)


def _p(p) -> str:
    return "—" if p is None else f"= {p:.3f}" if p >= 0.001 else "< 0.001"


def _view_stated_runs(rec: dict) -> str:
    """The statement with its between-run component: per row the seed-level and the run-level half-widths and
    the one stated (the larger)."""
    lines = ["| lever | seeds pooled | pooled: mean ± std | run means: std (k runs); runs differ more than seeds "
             "predict? ANOVA p | a new run of 5 seeds: ± seed-level / ± run-level | stated 95 % prediction interval "
             "of its mean |", "|---|---|---|---|---|---|"]
    for r in rec["summary"]["rows"]:
        f, h, b = r["fmt"], r["prediction_half_width_5"], r["between_runs"]
        g = f.lstrip("+")
        lo, hi = r["pooled"]["mean"] - h, r["pooled"]["mean"] + h
        n, planned = r["pooled"]["n"], len(r["stated_seeds"])
        which = f"{n} ({_ranges(r['stated_seeds'])})" if n == planned else \
            f"{n} of {planned} ({_ranges(r['stated_seeds'])}; {planned - n} with a dead network left out)"
        hs, hr = r["prediction_half_width_5_seeds"], r["prediction_half_width_5_runs"]
        bold = lambda x, on: f"**{x}**" if on else x
        lines.append(f"| {r['label']} | {which} | {_pm(r['pooled'], f)} | {b['std_run_means']:{g}} ({b['k']}); "
                     f"p {_p(b['p'])} | {bold(f'± {hs:{g}}', r['prediction_half_width_5_by'] == 'seeds')} / "
                     f"{bold(f'± {hr:{g}}', r['prediction_half_width_5_by'] == 'runs')} | "
                     f"{r['pooled']['mean']:{f}} ± {h:{g}} [{lo:{g}}, {hi:{g}}] |")
    return "\n".join(lines + ["", "Stated: the pooled mean ± the larger (in bold) of the seed-level half-width "
                              "t(0.975, n−1) · std · √(1/n + 1/5) over the n pooled seeds and the run-level one "
                              "t(0.975, k−1) · std(run means) · √(1 + 1/k) over the k runs on record; p: one-way "
                              "ANOVA of the runs' per-seed values (F over k−1 and n−k degrees of freedom)."])


def view_fresh_stated(rec: dict) -> str:
    """What the docs state per lever: the pooled seeds and the interval a new five-seed run should land in."""
    lines = ["| lever | pooled: mean ± std (seeds) | a new run of 5 seeds: 95 % prediction interval of its mean |",
             "|---|---|---|"]
    for r in rec["summary"]["rows"]:
        f = r["fmt"]
        lo, hi = r["pooled"]["mean"] - r["prediction_half_width_5"], r["pooled"]["mean"] + r["prediction_half_width_5"]
        lines.append(f"| {r['label']} | {_pm(r['pooled'], f)} ({r['pooled']['n']} seeds) | "
                     f"{r['pooled']['mean']:{f}} ± {r['prediction_half_width_5']:{f.lstrip('+')}} "
                     f"[{lo:{f.lstrip('+')}}, {hi:{f.lstrip('+')}}] |")
    return "\n".join(lines)


def view_fresh(rec: dict) -> str:
    s = rec["summary"]
    seeds = rec["seeds"]
    lines = ["| lever | stated: pooled mean ± std (seeds) | 95 % prediction interval for the fresh run's mean | "
             "fresh run: mean ± std (seeds that count) | inside? |", "|---|---|---|---|---|"]
    for r in s["rows"]:
        f = r["fmt"]
        if r["fresh"] is None:
            lines.append(f"| {r['label']} | {_pm(r['pooled'], f)} ({r['pooled']['n']}) | | not run "
                         f"(`{r['fresh_record']}`) | — |")
            continue
        lines.append(f"| {r['label']} | {_pm(r['pooled'], f)} ({r['pooled']['n']}) | "
                     f"{r['pooled']['mean']:{f}} ± {r['prediction_half_width']:{f.lstrip('+')}} (m = {r['m']}) | "
                     f"{_pm(r['fresh'], f)} ({r['m']} of {r['planned_m']}) | {'yes' if r['inside'] else '**no**'} |")
    against = rec["params"].get("against")
    stated = (f"stated in record `{against}` from every run on record pooled" if against else
              "stated from the pooled seeds")
    missing = s.get("n_levers", s["n"]) - s["n"]
    lines += ["", f"{missing} of {s['n_levers']} rows not run (yet)."] if missing else []
    return "\n".join(lines + ["", f"**{s['inside']} of {s['n']}** fresh means (seeds {_ranges(seeds) or 'none yet'}, "
                              f"used by no record before) land inside the 95 % prediction interval {stated}, "
                              + (RULE if "prediction_half_width_by" in next(
                                  (r for r in s["rows"] if r["fresh"] is not None), {}) else
                                 "mean ± t(0.975, n−1) · std · √(1/n + 1/m) (n pooled seeds, m fresh seeds "
                                 "that count: a row over the seeds where neither network is dead counts those).")])


RULE = ("mean ± the larger of t(0.975, n−1) · std · √(1/n + 1/m) (n pooled seeds, m fresh seeds that count: a row "
        "over the seeds where neither network is dead counts those) and t(0.975, k−1) · std(run means) · √(1 + 1/k) "
        "(k runs on record: the spread between runs, which the seeds alone leave out).")


def view_rerun(rec: dict) -> str:
    s = rec["summary"]
    lines = ["| lever | stated (seeds) | re-run on new seeds | within ± std? | 95 % interval for a new run's mean | "
             "within it? | both runs pooled: mean ± std; 95 % CI of the mean |", "|---|---|---|---|---|---|---|"]
    for r in s["rows"]:
        f = r["fmt"]
        seeds = lambda ss: f"{min(ss)}–{max(ss)}"
        lines.append(f"| {r['label']} | {_pm(r['stated'], f)} ({seeds(r['stated_seeds'])}) | "
                     f"{_pm(r['rerun'], f)} ({seeds(r['rerun_seeds'])}) | {'yes' if r['within_std'] else '**no**'} | "
                     f"{r['stated']['mean']:{f}} ± {r['prediction_half_width']:{f.lstrip('+')}} | "
                     f"{'yes' if r['within_prediction'] else '**no**'} | {_pm(r['pooled'], f)} ({r['pooled']['n']} seeds); "
                     f"{r['pooled']['mean']:{f}} ± {r['pooled_ci95_half_width']:{f.lstrip('+')}} |")
    return "\n".join(lines + ["", f"{s['within_std']} of {s['n']} re-run means land within the stated mean ± std; "
                              f"{s['within_prediction']} of {s['n']} within the 95 % prediction interval for the mean "
                              "of a new run of as many seeds (mean ± t(0.975, n−1) · std · √(1/n + 1/m))."])


VIEWS = {"conv": view_conv, "async": view_async, "rerun": view_rerun, "fresh": view_fresh,
         "fresh_stated": view_fresh_stated, "stated": view_stated, "reproduced": view_reproduced,
         "draws": view_draws}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["conv", "async", "rerun", "fresh", "stated", "reproduce", "draws"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[301, 302, 303, 304, 305])
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--name", help="the record's name (default lever_conv_seed002 / lever_async_order / "
                    "lever_stated / lever_fresh[_T]); conv / async: a name other than the default is a fresh "
                    "check, refused on seeds a published record of the lever used")
    ap.add_argument("--against", help="fresh: the stated record to check against (e.g. lever_stated)")
    ap.add_argument("--fresh-run", help="fresh --against: the fresh runs' suffix T (records X_T, e.g. 601)")
    ap.add_argument("--records", nargs="+", default=list(RUNS["lever_async_order"]),
                    help="draws: the async-order runs whose seeds are re-trained (default every run on record)")
    ap.add_argument("--method", choices=ASYNC_METHODS, default="bptt_qat", help="draws: the training method")
    ap.add_argument("--orders", type=int, default=10, help="draws: new arrival orders per network")
    ap.add_argument("--draws", type=int, default=10, help="draws: new test encodings (each with a new order)")
    add_record_args(ap)
    a = ap.parse_args()
    for flag, v in (("--workers", a.workers), ("--orders", a.orders), ("--draws", a.draws)):
        if v < 1:
            ap.exit(2, f"bench_levers: {flag} {v}: must be >= 1\n")
    if a.which in ("conv", "async"):
        refuse_overlap(f"bench_levers {a.which}", "lever_conv_seed002" if a.which == "conv" else "lever_async_order",
                       a.name, a.seeds)
    {"conv": conv, "async": async_order, "rerun": rerun, "fresh": fresh, "stated": stated,
     "reproduce": reproduce, "draws": draws}[a.which](a)


if __name__ == "__main__":
    main()
