"""Two levers re-measured on new seeds, paired by seed, as records (issue #21 item 4).

    python -m bench.bench_levers conv [--seeds 301 302 303 304 305] [--publish]    # record lever_conv_seed002
    python -m bench.bench_levers async [--seeds 301 302 303 304 305] [--publish]   # record lever_async_order

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


VIEWS = {"conv": view_conv, "async": view_async}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["conv", "async"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[301, 302, 303, 304, 305])
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--name", help="the record's name (default lever_conv_seed002 / lever_async_order)")
    add_record_args(ap)
    a = ap.parse_args()
    conv(a) if a.which == "conv" else async_order(a)


if __name__ == "__main__":
    main()
