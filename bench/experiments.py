"""Reproduce the seed papers' claims on our chip: pages (md, json, png) and a record per experiment.

    python -m bench.experiments distortion   # accuracy vs unknown membrane distortion σ (breast cancer)
    python -m bench.experiments datasize     # accuracy vs training-set size, BPTT vs MH (breast cancer)
    python -m bench.experiments deploy       # software vs on-chip accuracy on a 4-bit chip (digits)
    python -m bench.experiments mhchain      # MH at σ = 4, 5 with 3000 vs 10000 iterations
    python -m bench.experiments mhdiag       # why MH fails at high σ: dynamics, activity, landscape, acceptance
    python -m bench.experiments distortionfix  # σ sweep with the bias input, lik_std 1 / zero reset
    python -m bench.experiments heldout      # the distortion headline on seeds 5-9 (chose nothing)
    python -m bench.experiments deploygap    # deployment gap: 2-3-bit weights, mismatch, stuck synapses, async order
    python -m bench.experiments convsurrogate  # surrogate as the only factor on a conv chip (digits)
    python -m bench.experiments convstudy    # where the cycles go in the conv_seed002 study (after running it)
    python -m bench.experiments all

Every number is measured by the run that writes it. Seeds: ``--seeds 5`` (seeds ``offset .. offset+4``, offset
``--seed-offset``, default 0; ``heldout`` defaults to offset 5) or a list ``--seeds 31337,2718,...``. Output:
``runs/experiments/`` (pages) and ``runs/results/experiment_<name>.json`` (the record: every training as a round)
by default, everything into ``--out DIR``, or, only with ``--publish``, docs/experiments/ and docs/results/ (the
published page is a render block of its record, so the drift test keeps it honest).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "experiments"           # where --publish puts the pages
#: where this run writes its pages (set by main: runs/experiments, --out DIR, or PAGES with --publish)
OUT = ROOT / "runs" / "experiments"
#: the parsed command line (record destination) and seed list of this run
RUN: dict = {"args": None, "seeds": [], "started": None}
MH_KW = {"iters": 3000, "lik_std": 0.5}          # the set-up these experiments were run with
#: a chip that resets a firing neuron to zero (the default subtracts the threshold); ``_setup`` fits its sizes
ZERO = {"layer_sizes": [30, 16, 2], "lanes": 8, "beta": 0.9, "reset": "zero"}
#: the MH set-ups the diagnosis compares (job fields, see :func:`_setup`)
DIAG_CONFIGS = {"mh": {},
                "mh +bias, lik_std 1": {"bias": True, "params": {"iters": 3000, "lik_std": 1.0}},
                "mh +bias, zero reset": {"bias": True, "chip": ZERO}}
EPOCHS = {"bptt": 30, "bptt_qat": 30, "cilspl": 30}


def _setup(args):
    """(TrainConfig, ChipConfig, Encoded) of one job. ``args``: a tuple ``(method, dataset, seed, sigma,
    train_size, chip[, params])`` or a dict with those keys plus ``bias`` (an always-on input channel,
    :func:`train.common.with_bias_channel`), ``hidden`` (hidden width of the default chip) and ``faults``
    (more :class:`sim.faults.Faults` fields)."""
    if not isinstance(args, dict):
        keys = ("method", "dataset", "seed", "sigma", "train_size", "chip", "params")
        args = dict(zip(keys, args))
    a = {"sigma": 0.0, "train_size": None, "chip": None, "params": None, "bias": False, "hidden": None,
         "faults": {}, "tag": None, "backend": "fast", "quantiser": "maxabs", **args}
    from hw.config import ChipConfig
    from sim.faults import Faults
    from train.config import TrainConfig, default_chip
    from train.run import prepare
    method, seed = a["method"], a["seed"]
    params = a["params"] if a["params"] is not None else (MH_KW if method == "mh" else {"epochs": EPOCHS[method]})
    faults = Faults(**{"distortion": a["sigma"], "seed": seed, **a["faults"]})
    tc = TrainConfig(method=method, dataset=a["dataset"], faults=faults, seed=seed, train_size=a["train_size"],
                     params=params, backend=a["backend"], quantiser=a["quantiser"], bias_input=a["bias"])
    _, data = prepare(tc)                       # with the bias input channel when a["bias"]
    n_in, n_out = data.x_train.shape[2], data.n_classes
    if a["chip"]:
        cfg = ChipConfig.from_dict(a["chip"])
        sizes = list(cfg.layer_sizes)
        sizes[0] = n_in
        if a["hidden"] and len(sizes) == 3:
            sizes[1] = a["hidden"]
        cfg = cfg.replace(layer_sizes=tuple(sizes))
    else:
        cfg = default_chip(a["dataset"], n_in, n_out, a["hidden"])
    return tc.replace(chip=cfg), cfg, data, a


def _job(args):
    """One training (see :func:`_setup`); its record."""
    import torch
    torch.set_num_threads(1)
    from train.run import run_training
    tc, cfg, data, a = _setup(args)
    r = run_training(tc, data=data, progress=False)
    cross = _cross_mode(tc, r, data) if tc.backend == "async" else {}
    return {**cross, "backend": tc.backend, "quantiser": tc.quantiser, "method": tc.method, "tag": a["tag"], "label": a["tag"] or tc.method, "seed": tc.seed, "sigma": a["sigma"], "train_size": a["train_size"],
            "bias": a["bias"], "hidden": cfg.layer_sizes[1] if cfg.num_layers > 1 else None,
            "faults": a["faults"], "params": dict(tc.params), "iters": tc.params.get("iters"),
            "final_step": r.extra.get("final_step"), "final_steps": r.extra.get("final_steps"),
            "software": r.software_accuracy, "chip": r.chip_accuracy, "val": r.chip_val_accuracy,
            "seconds": r.seconds, "cycles": r.activity["cycles"], "synops": r.activity["synops"]}


def _cross_mode(tc, r, data) -> dict:
    """The deployed programme of an asynchronous-chip training on the synchronous chip too (test set), and
    the activity of both: what the event order changes."""
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from sim.faults import Faults, FaultyChip
    from train.common import accuracy
    qcfg = ChipConfig.from_dict(r.chip_config)
    out = {}
    for mode in ("fast", "async"):
        chip = make_chip(qcfg, mode, **({"seed": tc.faults.seed} if mode == "async" else {}))
        if tc.faults != Faults():
            chip = FaultyChip(chip, tc.faults)
        chip.load(r.chip_weights, cfg=qcfg)
        res = chip.run(data.x_test)
        hid = np.asarray(res.spikes[0])
        out[f"{mode}_test"] = accuracy(res.output, data.y_test)
        out[f"{mode}_hidden_spikes"] = float(hid.sum(axis=(1, 2)).mean())
        out[f"{mode}_out_spikes"] = float(np.asarray(res.output).sum(axis=(1, 2)).mean())
        out[f"{mode}_hidden_multi"] = float((hid > 1).sum() / max(1, (hid > 0).sum()))
    return out


def run_all(jobs, workers):
    from tqdm import tqdm
    with ProcessPoolExecutor(workers) as ex:
        return list(tqdm(ex.map(_job, jobs), total=len(jobs), desc="trainings", mininterval=10))


def summarise(rows, key, methods, field="chip"):
    table = {}
    for m in methods:
        for k in sorted({r[key] for r in rows}):
            vals = [r[field] for r in rows if r.get("label", r["method"]) == m and r[key] == k]
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


def publish(name: str, rows, md: str, seeds=None, source: str | None = None) -> None:
    """Write ``<name>.json`` (every training's record), the record ``experiment_<name>`` (every training a
    round, the page's markdown as its summary) and ``<name>.md`` (a render block of that record); print it."""
    from bench.records import Recorder
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(rows, indent=1))
    rec = Recorder(f"experiment_{name}", args=RUN["args"], seeds=RUN["seeds"] if seeds is None else seeds,
                   params={"experiment": name, "workers": getattr(RUN["args"], "workers", None),
                           "source": source or "measured by this run"}, script=__file__, started=RUN["started"])
    with rec:
        for r in (rows if isinstance(rows, list) else [rows]):
            rec.round(**r)
        rec.summary = {"md": md}
    (OUT / f"{name}.md").write_text(f"<!-- render experiment_{name} md -->\n{md}\n<!-- end render -->\n")
    print(md)


def view_md(rec: dict) -> str:
    """The experiment's page, as the run that measured it wrote it."""
    return rec["summary"]["md"]


VIEWS = {"md": view_md}


def md_table(table, key, methods, header):
    ks = sorted({k for _, k in table})
    lines = [f"| method | " + " | ".join(f"{header}={k}" for k in ks) + " |", "|---" * (len(ks) + 1) + "|"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(f"{table[(m, k)][0]:.3f} ± {table[(m, k)][1]:.3f}" for k in ks) + " |")
    return "\n".join(lines)


#: the set-ups compared by ``distortion`` and ``datasize``: label -> job fields (see :func:`_setup`)
VARIANTS = {
    "bptt": {"method": "bptt"},
    "cilspl": {"method": "cilspl"},
    "mh": {"method": "mh"},
}


def sweep(name, key, values, variants, seeds, workers, xlabel, title, header, logx=False, extra=None, **fixed):
    """Every variant at every ``key`` value and seed; table (test, and validation accuracy), JSON, plot."""
    jobs = [dict(dataset="breast_cancer", seed=s, tag=label, **{key: k}, **fixed, **v)
            for k in values for label, v in variants.items() for s in seeds]
    print(f"{name}: {len(jobs)} trainings", flush=True)
    rows = run_all(jobs, workers)
    labels = list(variants)
    t = summarise(rows, key, labels)
    tv = summarise(rows, key, labels, field="val")
    plot(t, key, labels, xlabel, OUT / f"{name}.png", title, logx=logx)
    md = (f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds.\n\nOn-chip test accuracy:\n\n"
          + md_table(t, key, labels, header)
          + "\n\nOn-chip validation accuracy:\n\n" + md_table(tv, key, labels, header))
    if extra is not None:
        md += "\n" + extra(rows)
    publish(name, rows, md)
    return rows


#: the networks that remove the high-σ failure (``distortionfix``): every one has the always-on bias input
FIX_VARIANTS = {
    "bptt +bias": {"method": "bptt", "bias": True},
    "cilspl +bias": {"method": "cilspl", "bias": True},
    "mh +bias, lik_std 1": {"method": "mh", "bias": True, "params": {"iters": 3000, "lik_std": 1.0}},
    "bptt +bias, zero reset": {"method": "bptt", "bias": True, "chip": ZERO},
    "cilspl +bias, zero reset": {"method": "cilspl", "bias": True, "chip": ZERO},
    "mh +bias, zero reset": {"method": "mh", "bias": True, "chip": ZERO},
}
#: the set-ups of ``datasize``
SIZE_VARIANTS = {
    "bptt": {"method": "bptt"},
    "bptt +bias, zero reset": {"method": "bptt", "bias": True, "chip": ZERO},
    "mh": {"method": "mh"},
    "mh +bias, zero reset": {"method": "mh", "bias": True, "chip": ZERO},
    "mh +bias, zero reset, 4 hidden": {"method": "mh", "bias": True, "chip": ZERO, "hidden": 4},
}


def distortionfix(seeds, workers):
    sweep("distortionfix", "sigma", [0.0, 2.0, 3.0, 4.0, 5.0], FIX_VARIANTS, seeds, workers,
          "membrane distortion σ (unknown to the trainer)",
          "breast cancer, bias input: accuracy vs chip distortion", "σ")


def distortion(seeds, workers):
    sweep("distortion", "sigma", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], VARIANTS, seeds, workers,
          "membrane distortion σ (unknown to the trainer)", "breast cancer: accuracy vs chip distortion", "σ")


def datasize(seeds, workers):
    sizes = [10, 20, 40, 80, 160, 341]

    def smallest(rows) -> str:
        lines = ["", "Smallest training-set size whose mean on-chip accuracy reaches 0.90 (test; validation):", ""]
        for label in SIZE_VARIANTS:
            first = {}
            for field in ("chip", "val"):
                ok = [n for n in sizes if np.mean([r[field] for r in rows if r["label"] == label
                                                   and r["train_size"] == n]) >= 0.90]
                first[field] = ok[0] if ok else "not reached"
            lines.append(f"* {label}: {first['chip']}; {first['val']}")
        return "\n".join(lines)
    sweep("datasize", "train_size", sizes, SIZE_VARIANTS, seeds, workers, "training samples",
          "breast cancer: accuracy vs training-set size", "n", logx=True, extra=smallest)


def heldout(seeds, workers):
    """The distortion headline on held-out seeds (default 5..9, not used to choose anything): the two MH fixes
    and offline BPTT."""
    variants = {"mh +bias, zero reset": FIX_VARIANTS["mh +bias, zero reset"],
                "mh +bias, lik_std 1": FIX_VARIANTS["mh +bias, lik_std 1"], "bptt": {"method": "bptt"}}
    sigmas = (0.0, 3.0, 5.0)
    jobs = [dict(dataset="breast_cancer", seed=s, sigma=sg, tag=k, **v)
            for k, v in variants.items() for sg in sigmas for s in seeds]
    print(f"heldout: {len(jobs)} trainings", flush=True)
    rows = run_all(jobs, workers)
    lines = [f"Seeds {', '.join(map(str, seeds))}, breast cancer; on-chip test accuracy (validation in brackets):", "",
             "| method | " + " | ".join(f"σ={sg:g}" for sg in sigmas) + " |", "|---" * (len(sigmas) + 1) + "|"]
    for k in variants:
        cell = lambda sg, f: [r[f] for r in rows if r["label"] == k and r["sigma"] == sg]
        lines.append(f"| {k} | " + " | ".join(f"{pm(cell(sg, 'chip'))} ({np.mean(cell(sg, 'val')):.3f})"
                                             for sg in sigmas) + " |")
    publish("heldout", rows, "\n".join(lines))


def deploy(seeds, workers):
    from hw.config import ChipConfig
    methods = ["bptt", "bptt_qat", "cilspl"]
    chip = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, beta=0.9, weight_bits=4).to_dict()
    rows = run_all([(m, "digits", s, 0.0, None, chip) for m in methods for s in seeds], workers)
    lines = [f"Seeds {', '.join(map(str, seeds))}; mean ± std over seeds.", "", "| method | software accuracy | on-chip accuracy (4-bit weights) | drop |", "|---|---|---|---|"]
    for m in methods:
        sw = np.array([r["software"] for r in rows if r["method"] == m])
        hw = np.array([r["chip"] for r in rows if r["method"] == m])
        lines.append(f"| {m} | {pm(sw)} | {pm(hw)} | {(sw - hw).mean():+.3f} ± {(sw - hw).std():.3f} |")
    publish("deploy", rows, "\n".join(lines))


#: deployment conditions of ``deploygap``: name -> job fields (weight bits, faults the offline trainers are
#: not told about, the chip mode, the quantiser's scale rule)
GAP_CONDITIONS = {
    "4-bit (baseline)": {"bits": 4},
    "3-bit": {"bits": 3},
    "2-bit, MSE scale": {"bits": 2, "quantiser": "mse"},
    "4-bit, threshold 0.5 + leak 0.2 mismatch": {"bits": 4, "faults": {"threshold_mismatch": 0.5,
                                                                       "leak_mismatch": 0.2}},
    "4-bit, 30% synapses stuck at 0": {"bits": 4, "faults": {"stuck_zero": 0.3}},
    "4-bit, asynchronous event order": {"bits": 4, "backend": "async"},
}
GAP_METHODS = ["bptt", "bptt_qat", "cilspl"]


def deploygap(seeds, workers, conditions=None):
    """Software vs on-chip accuracy (digits) where offline training should fail: 2–3-bit weights, per-chip
    threshold and leak mismatch, stuck synapses (drawn per chip instance, the same instance in training and
    test), the asynchronous event order. Every method trains ``EPOCHS`` epochs (30); CIL-SPL's forward runs
    on the chip it deploys to (mode and faults)."""
    from hw.config import ChipConfig
    conditions = conditions or GAP_CONDITIONS
    jobs = []
    for cond, c in conditions.items():
        chip = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, beta=0.9, weight_bits=c["bits"]).to_dict()
        jobs += [dict(method=m, dataset="digits", seed=s, chip=chip, faults=c.get("faults", {}), tag=cond,
                      backend=c.get("backend", "fast"), quantiser=c.get("quantiser", "maxabs"))
                 for m in GAP_METHODS for s in seeds]
    print(f"deploygap: {len(jobs)} trainings", flush=True)
    rows = run_all(jobs, workers)
    epochs = sorted({EPOCHS[m] for m in GAP_METHODS})
    lines = [f"digits, (64, 64, 10), β = 0.9, {'/'.join(map(str, epochs))} epochs for every method, seeds "
             f"{', '.join(map(str, seeds))}; "
             "faults drawn per chip instance (seed = training seed), unknown to the offline trainers; CIL-SPL "
             "trains on that instance and mode", "",
             "| condition | method | software accuracy | on-chip test accuracy | drop | on-chip val accuracy |",
             "|---|---|---|---|---|---|"]
    for cond in conditions:
        for m in GAP_METHODS:
            sel = [r for r in rows if r["tag"] == cond and r["method"] == m]
            sw, hw_ = np.array([r["software"] for r in sel]), np.array([r["chip"] for r in sel])
            lines.append(f"| {cond} | {m} | {pm(sw)} | {pm(hw_)} | {(sw - hw_).mean():+.3f} ± {(sw - hw_).std():.3f} "
                         f"| {pm([r['val'] for r in sel])} |")
    asy = [r for r in rows if r["backend"] == "async"]
    if asy:
        lines += ["", "Programmes trained for the asynchronous chip, on the test set of both chip modes (per "
                  "sample: hidden and output spikes; share of hidden (step, neuron) with a spike that fired "
                  "more than once in the step):", "",
                  "| method | async test acc | sync test acc | hidden spikes async / sync | output spikes "
                  "async / sync | hidden multi-spike share (async) |", "|---|---|---|---|---|---|"]
        for m in GAP_METHODS:
            sel = [r for r in asy if r["method"] == m]
            g = lambda k: np.mean([r[k] for r in sel])
            lines.append(f"| {m} | {pm([r['async_test'] for r in sel])} | {pm([r['fast_test'] for r in sel])} | "
                         f"{g('async_hidden_spikes'):.0f} / {g('fast_hidden_spikes'):.0f} | "
                         f"{g('async_out_spikes'):.1f} / {g('fast_out_spikes'):.1f} | {g('async_hidden_multi'):.3f} |")
    publish("deploygap", rows, "\n".join(lines))


def mhchain(seeds, workers):
    """MH at high distortion with longer chains: does more exploration recover the accuracy?"""
    rows = []
    for iters in (3000, 10000):
        rows += run_all([("mh", "breast_cancer", s, sg, None, None, {"iters": iters})
                         for sg in (4.0, 5.0) for s in seeds], workers)
    lines = [f"Seeds {', '.join(map(str, seeds))}. On-chip test accuracy (validation in brackets):", "",
             "| MH iterations | σ=4.0 | σ=5.0 | seconds per training |", "|---|---|---|---|"]
    for iters in (3000, 10000):
        cell = lambda sg, f: [r[f] for r in rows if r["iters"] == iters and r["sigma"] == sg]
        secs = np.mean([r["seconds"] for r in rows if r["iters"] == iters])
        lines.append(f"| {iters} | {pm(cell(4.0, 'chip'))} ({np.mean(cell(4.0, 'val')):.3f}) | "
                     f"{pm(cell(5.0, 'chip'))} ({np.mean(cell(5.0, 'val')):.3f}) | {secs:.0f} |")
    publish("mhchain", rows, "\n".join(lines))


def _drift_table():
    """Zero-input dynamics of one neuron under distortion σ, in threshold units (continuous map) and on the
    integer chip (threshold 127 LSB, β = 0.9, subtract reset)."""
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from sim.faults import Faults, FaultyChip
    beta, rows = 0.9, []
    u = np.linspace(-1, 1, 200001)
    for sg in (0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 4.5, 4.75, 5.0):
        fixed = bool(np.any((1 - beta) * u >= beta * (sg / 4) * np.exp(4 * (u - 1))))
        x, first = 0.0, None                 # continuous: first spontaneous spike from rest
        for t in range(200):
            x += (sg / 4) * np.exp(4 * (min(x, 1) - 1))
            if x > 1:
                first = t
                break
            x *= beta
        cfg = ChipConfig(layer_sizes=(1, 1), lanes=1, beta=beta, threshold=127)
        chip = FaultyChip(make_chip(cfg), Faults(distortion=sg)) if sg else make_chip(cfg)
        chip.load([np.full((1, 1), 127)])
        x_in = np.zeros((2, 16, 1), bool)
        x_in[1, 0, 0] = True                   # sample 1: one input event at step 0 (one forced spike)
        out = chip.run(x_in, True)
        zcfg = cfg.replace(reset="zero")
        zchip = FaultyChip(make_chip(zcfg), Faults(distortion=sg)) if sg else make_chip(zcfg)
        zchip.load([np.full((1, 1), 127)])
        rows.append({"spikes_after_one_kick_16_zero_reset": int(zchip.run(x_in).output[1].sum()),"sigma": sg, "fixed_point": fixed, "first_spontaneous_step_continuous": first,
                     "rest_drift_16_steps_lsb": int(out.state[0][0, -1, 0]),
                     "spikes_zero_input_16": int(out.output[0].sum()),
                     "spikes_after_one_kick_16": int(out.output[1].sum())})
    return rows


def _fi_curves():
    """Spikes in 16 steps of one neuron (threshold 100 LSB, β = 0.9) driven at every step by a constant input
    of I thresholds, per σ and reset mode: the neuron's transfer function under distortion."""
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from sim.faults import Faults, FaultyChip
    currents = np.round(np.linspace(-0.3, 1.2, 31), 3)
    out = {}
    for reset in ("subtract", "zero"):
        cfg = ChipConfig(layer_sizes=(len(currents), len(currents)), lanes=8, beta=0.9, threshold=100, reset=reset)
        w = np.diag(np.rint(currents * 100)).astype(np.int64)
        for sg in (0.0, 3.0, 4.0, 5.0):
            chip = FaultyChip(make_chip(cfg), Faults(distortion=sg)) if sg else make_chip(cfg)
            chip.load([w])
            out[(reset, sg)] = chip.run(np.ones((1, 16, len(currents)), bool)).output[0].sum(0).tolist()
    return currents, out


def _activity(chip, tgt, v):
    """Per-layer activity of the network ``v`` on the training set: fraction of (sample, neuron) pairs that
    fire at every step / never, membranes at the rail, and the output rates on and off target."""
    r = tgt.run(v, record_state=True)
    y = tgt.data.y_train
    out = {}
    for l, s in enumerate(r.spikes):
        rate = s.mean(axis=1)
        out[f"l{l}_always"] = float((rate == 1).mean())
        out[f"l{l}_silent"] = float((rate == 0).mean())
        out[f"l{l}_rail"] = float((np.abs(r.state[l]) >= tgt.cfg.membrane_max - 1).mean())
    rate = r.output.mean(axis=1)
    on = rate[np.arange(len(y)), y]
    off = np.where(np.arange(rate.shape[1])[None] == y[:, None], np.nan, rate)
    out.update(on_rate=float(on.mean()), off_rate=float(np.nanmean(off)),
               off_fires_frac=float((np.nan_to_num(off) > 0).any(1).mean()))
    return out


def mhdiag(seeds, workers, configs=None):
    """Why MH fails at high σ: zero-input dynamics, activity of the trained networks, the log-posterior
    along random directions, acceptance vs step size, and what the log-gains do through the quantiser."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sim.chip import make_chip
    from sim.faults import FaultyChip
    from train.mh import ChainTarget
    from train.quant import quantise
    from train.run import run_training
    configs = configs or DIAG_CONFIGS
    drift = _drift_table()
    sigmas = (0.0, 5.0)
    runs = [dict(method="mh", dataset="breast_cancer", seed=0, sigma=sg, tag=name, **{"params": MH_KW, **c})
            for name, c in configs.items() for sg in sigmas]
    res = {}
    print(f"mhdiag: {len(runs)} MH trainings", flush=True)
    for i, job in enumerate(runs):
        tc, cfg, data, a = _setup(job)
        r = run_training(tc, data=data, progress=False)
        chip = FaultyChip(make_chip(cfg), tc.faults) if a["sigma"] else make_chip(cfg)
        init_shapes = [np.asarray(w).shape for w in r.float_weights]
        p = tc.params
        tgt = ChainTarget(cfg, tc.spec, data, chip, init_shapes, p["prior_std"], p["lik_std"], p["gain_std"],
                          p["class_temp"])
        v = np.asarray(r.extra["final_state"])
        rng = np.random.default_rng(0)
        base_prior, base_lik, _ = tgt.evaluate(v)
        ts = np.linspace(-0.1, 0.1, 21)
        profiles = []
        for d in range(4):                       # random 10% blocks, unit per-coordinate scale
            dvec = np.zeros(v.size)
            idx = rng.choice(v.size, max(1, v.size // 10), replace=False)
            dvec[idx] = rng.normal(0, 1, idx.size)
            profiles.append([sum(tgt.evaluate(v + t * dvec)[:2]) - base_prior - base_lik for t in ts])
        steps = np.logspace(-4, -0.5, 8)
        accept = []
        for st in steps:
            a_ = []
            for _ in range(25):
                prop = v.copy()
                idx = rng.choice(v.size, max(1, v.size // 10), replace=False)
                prop[idx] += rng.normal(0, st, idx.size)
                a_.append(min(1.0, float(np.exp(min(0.0, sum(tgt.evaluate(prop)[:2]) - base_prior - base_lik)))))
            accept.append(float(np.mean(a_)))
        gains = {}
        for g in (-1.0, 0.0, 1.0):
            vv = v.copy()
            vv[tgt.n_w] = g
            qcfg, ints, _ = quantise(cfg, tgt.unflat(vv), tc.spec.theta)
            gains[g] = {"threshold_l0": qcfg.threshold[0], "ints_l0_sum_abs": int(np.abs(ints[0]).sum())}
        key = f"{a['tag']} σ={a['sigma']:g}"
        res[key] = {"test": r.chip_accuracy, "val": r.chip_val_accuracy, "final_steps": r.extra["final_steps"],
                    "gains_state": v[tgt.n_w:].tolist(), "activity": _activity(chip, tgt, v),
                    "profile_t": ts.tolist(), "profiles": profiles, "steps": steps.tolist(), "accept": accept,
                    "gain_effect": {str(k): x for k, x in gains.items()}}
        print(f"  [{i + 1}/{len(runs)}] {key}: test {r.chip_accuracy:.3f} steps {r.extra['final_steps']} "
              f"activity {res[key]['activity']}", flush=True)
    currents, fi = _fi_curves()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (reset, sg), counts in fi.items():
        ax.plot(currents, counts, ("-" if reset == "subtract" else "--"), marker=".", label=f"σ={sg:g}, {reset} reset")
    ax.set_xlabel("constant input per step (thresholds)")
    ax.set_ylabel("spikes in 16 steps")
    ax.set_title("one neuron's transfer function under distortion")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "mhdiag_fi.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, d in res.items():
        prof = np.array(d["profiles"])
        axes[0].plot(d["profile_t"], np.median(prof, 0), marker=".", label=key)
        axes[1].semilogx(d["steps"], d["accept"], marker="o", label=key)
    axes[0].set_xlabel("step along a random 10% block (per-coordinate std)")
    axes[0].set_ylabel("Δ log-posterior (median of 4 directions)")
    axes[0].set_yscale("symlog")
    axes[1].set_xlabel("proposal step size")
    axes[1].set_ylabel("expected acceptance min(1, e^Δ)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "mhdiag.png", dpi=120)
    plt.close(fig)
    lines = ["Zero-input dynamics (threshold units; integer chip: threshold 127 LSB, β = 0.9, 16 steps):", "",
             "| σ | stable rest state (continuous) | first spontaneous spike (continuous, step) | "
             "chip: drift at rest after 16 steps (LSB) | chip: spikes in 16 steps, no input | "
             "chip: spikes in 16 steps after one kick | the same, zero reset |", "|---|---|---|---|---|---|---|"]
    for r_ in drift:
        lines.append(f"| {r_['sigma']:g} | {'yes' if r_['fixed_point'] else 'no'} | "
                     f"{r_['first_spontaneous_step_continuous']} | {r_['rest_drift_16_steps_lsb']} | "
                     f"{r_['spikes_zero_input_16']} | {r_['spikes_after_one_kick_16']} | "
                     f"{r_['spikes_after_one_kick_16_zero_reset']} |")
    sel = [i for i, c in enumerate(currents) if c in (-0.1, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)]
    lines += ["", "Spikes in 16 steps under a constant input of I thresholds per step (`mhdiag_fi.png`):", "",
              "| reset, σ | " + " | ".join(f"I={currents[i]:g}" for i in sel) + " |", "|---" * (len(sel) + 1) + "|"]
    for (reset, sg), counts in fi.items():
        lines.append(f"| {reset}, {sg:g} | " + " | ".join(str(counts[i]) for i in sel) + " |")
    lines += ["", "Trained MH networks (seed 0) on the training set at their final chain state:", "",
              "| run | test acc | final step(s) | hidden always-on | hidden silent | output always-on | "
              "on-target rate | off-target rate | off-target neuron fires at all | accept @1e-3 | accept @1e-2 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, d in res.items():
        a_ = d["activity"]
        acc = dict(zip(np.round(d["steps"], 6), d["accept"]))
        i3 = int(np.argmin(np.abs(np.log(np.array(d["steps"]) / 1e-3))))
        i2 = int(np.argmin(np.abs(np.log(np.array(d["steps"]) / 1e-2))))
        L = len([k for k in a_ if k.endswith("_always")])
        lines.append(f"| {key} | {d['test']:.3f} | {', '.join(f'{s:.4f}' for s in d['final_steps'])} | "
                     f"{a_['l0_always']:.2f} | {a_['l0_silent']:.2f} | {a_[f'l{L - 1}_always']:.2f} | "
                     f"{a_['on_rate']:.2f} | {a_['off_rate']:.2f} | {a_['off_fires_frac']:.2f} | "
                     f"{d['accept'][i3]:.2f} | {d['accept'][i2]:.2f} |")
    lines += ["", "Log-gain of layer 0 vs what the chip gets (first run): "
              + "; ".join(f"g={k}: threshold {x['threshold_l0']} LSB, Σ|W_int| {x['ints_l0_sum_abs']}"
                          for k, x in next(iter(res.values()))["gain_effect"].items())]
    publish("mhdiag", json.loads(json.dumps({"drift": drift, "runs": res, "fi_currents": currents.tolist(),
                                             "fi": {f"{r} {sg:g}": c for (r, sg), c in fi.items()}},
                                            default=_plain)), "\n".join(lines), seeds=[0])


#: ``convsurrogate``: the conv workload of docs/experiments/conv_seed002.toml (hidden events carry most cycles)
CONV_CHIP = {"input_shape": [1, 8, 8], "layers": [
    {"kind": "conv", "channels": 8, "kernel": 3, "padding": 1},
    {"kind": "conv", "channels": 16, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
    {"kind": "fc", "size": 10}], "lanes": 8, "weight_bits": 8, "membrane_bits": 16}
#: what ``convsurrogate`` holds fixed (snnTorch tutorial defaults; the study's fixed epochs and lr)
CONV_FIXED = {"method": "bptt", "beta": 0.95, "theta": 1.0, "epochs": 10, "lr": 0.005}
#: "name" or "name@scale" (scale = the surrogate's own slope/alpha; 1.3 gives fast sigmoid, slope/(1+slope·|x|)²
#: normalised to peak 1, the half-maximum width of atan at alpha 2: |x| = 0.32 threshold units instead of 0.017)
CONV_SURROGATES = ("atan", "fast_sigmoid", "sigmoid", "fast_sigmoid@1.3")


def _conv_job(args):
    """One digits conv training with surrogate ``args["surrogate"]`` and seed ``args["seed"]``; firing rates
    and the cycle breakdown of the trained chip on the validation and test sets."""
    import torch
    torch.set_num_threads(1)
    from bench.bench_conv import PARTS, cycle_breakdown
    from hw.config import ChipConfig
    from sim.model import FastModel
    from train.config import TrainConfig
    from train.run import prepare, run_training
    f = CONV_FIXED
    cfg = ChipConfig.from_dict({**CONV_CHIP, "beta": f["beta"]})
    name, _, scale = args["surrogate"].partition("@")
    tc = TrainConfig(method=f["method"], dataset="digits", chip=cfg, seed=args["seed"], theta=f["theta"],
                     surrogate=name, surrogate_scale=float(scale) if scale else None,
                     params={"epochs": f["epochs"], "lr": f["lr"]})
    _, data = prepare(tc)
    r = run_training(tc, data=data, progress=False)
    dep = ChipConfig.from_dict(r.chip_config)
    rec = {"surrogate": args["surrogate"], "seed": args["seed"], "val": r.chip_val_accuracy, "test": r.chip_accuracy,
           "software": r.software_accuracy, "seconds": r.seconds, "threshold": dep.threshold}
    for split, x in (("val", data.x_val), ("test", data.x_test)):
        res = FastModel(dep, r.chip_weights).run(x, record_state=False)
        T = x.shape[1]
        rates = [float(res.counters[f"spikes_l{l}"].mean()) / (T * dep.layer_sizes[l + 1]) for l in range(dep.num_layers)]
        b = cycle_breakdown(dep, x, res.spikes)
        assert (sum(b[k] for k in PARTS) == res.cycles).all()
        rec[f"{split}_rates"] = rates
        rec[f"{split}_rate"] = float(sum(res.counters[f"spikes_l{l}"].mean() for l in range(dep.num_layers))
                                     / (T * sum(dep.layer_sizes[1:])))
        rec[f"{split}_cycles"] = float(res.cycles.mean())
        rec[f"{split}_parts"] = {k: float(b[k].mean()) for k in PARTS}
    return rec


def convsurrogate(seeds, workers):
    """Surrogate as the only factor on the conv chip (beta, threshold, method, epochs, lr fixed)."""
    path = OUT / "convsurrogate.json"
    rows = json.loads(path.read_text()) if path.exists() else []        # resume: keep finished runs
    have = {(r["surrogate"], r["seed"]) for r in rows}
    jobs = [{"surrogate": s, "seed": seed} for seed in seeds for s in CONV_SURROGATES
            if (s, seed) not in have]
    print(f"convsurrogate: {len(jobs)} trainings ({len(rows)} kept from {path.name})", flush=True)
    if workers == 1:
        for j in jobs:
            rows.append(_conv_job(j))
            print({k: rows[-1][k] for k in ("surrogate", "seed", "val", "test", "val_rate")}, flush=True)
            (OUT / "convsurrogate.json").write_text(json.dumps(rows, indent=1))
    else:
        with ProcessPoolExecutor(workers) as ex:
            rows += list(ex.map(_conv_job, jobs))
    publish("convsurrogate", rows, convsurrogate_md(rows))


def convsurrogate_md(rows) -> str:
    from bench.bench_conv import PARTS
    f = CONV_FIXED
    seeds = sorted({r["seed"] for r in rows})
    lines = [f"Digits conv chip (1x8x8, conv 8 k3 p1, conv 16 k3 p1, pool 2, fc 10; lanes 8, 8-bit weights), "
             f"{f['method']}, beta {f['beta']}, theta {f['theta']}, {f['epochs']} epochs, lr {f['lr']}, 16 steps, "
             f"rate encoder; the surrogate (at its snnTorch default scale unless `name@scale`) is the only factor; seeds {seeds} (the seed also "
             "draws the split and the initial weights). Mean ± std over seeds; firing rate = spikes per neuron per "
             "step over all layers, measured on the chip (fast model).", "",
             "| surrogate | runs | val acc | test acc | val firing rate | test firing rate | rate l0 / l1 / l2 (test) | "
             "cycles/sample (test) |", "|---|---|---|---|---|---|---|---|"]
    for s in CONV_SURROGATES:
        rs = [r for r in rows if r["surrogate"] == s]
        if not rs:
            continue
        per = np.array([r["test_rates"] for r in rs])
        lines.append(f"| {s} | {len(rs)} | {pm([r['val'] for r in rs])} | {pm([r['test'] for r in rs])} | "
                     f"{pm([r['val_rate'] for r in rs])} | {pm([r['test_rate'] for r in rs])} | "
                     + " / ".join(f"{m:.3f}" for m in per.mean(axis=0)) + f" | {np.mean([r['test_cycles'] for r in rs]):.0f} ± "
                     f"{np.std([r['test_cycles'] for r in rs]):.0f} |")
    ref = {r["seed"]: r for r in rows if r["surrogate"] == CONV_SURROGATES[0]}
    lines += ["", f"Paired by seed (same split and initial weights), minus {CONV_SURROGATES[0]}:", "",
              "| surrogate | seeds | Δ val acc | Δ test acc | Δ val firing rate | Δ test firing rate | Δ test cycles |",
              "|---|---|---|---|---|---|---|"]
    for s in CONV_SURROGATES[1:]:
        rs = [r for r in rows if r["surrogate"] == s and r["seed"] in ref]
        if not rs:
            continue
        d = lambda k: pm([r[k] - ref[r["seed"]][k] for r in rs])
        lines.append(f"| {s} | {len(rs)} | {d('val')} | {d('test')} | {d('val_rate')} | {d('test_rate')} | "
                     f"{np.mean([r['test_cycles'] - ref[r['seed']]['test_cycles'] for r in rs]):+.0f} ± "
                     f"{np.std([r['test_cycles'] - ref[r['seed']]['test_cycles'] for r in rs]):.0f} |")
    lines += ["", "Where the cycles go (test set, mean per sample, share of the total):", "",
              "| surrogate | " + " | ".join(PARTS) + " |", "|---" * (len(PARTS) + 1) + "|"]
    for s in CONV_SURROGATES:
        rs = [r for r in rows if r["surrogate"] == s]
        if not rs:
            continue
        tot = np.mean([r["test_cycles"] for r in rs])
        part = lambda k: np.mean([r["test_parts"].get(k, 0.0) for r in rs])     # rows of chips without overlap: 0
        lines.append(f"| {s} | " + " | ".join(f"{part(k):.0f} ({100 * part(k) / tot:.1f} %)" for k in PARTS) + " |")
    return "\n".join(lines)


def _trial_cycles(art: str) -> dict:
    """Cycle breakdown and firing rates of a study trial's deployed chip on its validation and test sets."""
    from bench.bench_conv import PARTS, cycle_breakdown
    from hw.config import ChipConfig
    from sim.model import FastModel
    from train.common import TrainResult
    from train.config import TrainConfig
    from train.run import prepare
    r = TrainResult.load(Path(art) / "result")
    tc = TrainConfig.from_dict({"bias_input": False, **r.train_config})     # results before the field had none
    _, data = prepare(tc)
    dep = ChipConfig.from_dict(r.chip_config)
    rec = {"threshold": list(dep.threshold), "beta": dep.beta}
    for split, x in (("val", data.x_val), ("test", data.x_test)):
        res = FastModel(dep, r.chip_weights).run(x, record_state=False)
        b = cycle_breakdown(dep, x, res.spikes)
        assert (sum(b[k] for k in PARTS) == res.cycles).all()
        T = x.shape[1]
        rec[split] = {"cycles": float(res.cycles.mean()), "parts": {k: float(b[k].mean()) for k in PARTS},
                      "events_l": [float(b[f"events_l{l}"].mean()) for l in range(dep.num_layers)],
                      "update_l": [float(b[f"update_l{l}"].mean()) for l in range(dep.num_layers)],
                      "in_events": float(res.counters["in_events"].mean()),
                      "rates": [float(res.counters[f"spikes_l{l}"].mean()) / (T * dep.layer_sizes[l + 1])
                                for l in range(dep.num_layers)]}
    return rec


def convstudy(seeds=None, workers=None, name="conv_seed002"):
    """The snnTorch-default trial vs the best Pareto trade-off within 3 accuracy points (the rule of
    ``tune.report``) of the ``conv_seed002`` study, with where their cycles go; every Pareto trial's
    breakdown in ``<name>_cycles.json``."""
    import optuna
    from bench.bench_conv import PARTS
    from tune.report import pareto_trials
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = Path(__file__).resolve().parent.parent
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{root}/runs/{name}.db")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    base = next(t for t in done if t.user_attrs.get("baseline"))
    front = pareto_trials(study)
    ok = [t for t in front if t.user_attrs["val_accuracy"] >= base.user_attrs["val_accuracy"] - 0.03]
    best = min(ok, key=lambda t: t.user_attrs["latency_us"]) if ok else None
    rows = {}
    for t in sorted({t.number: t for t in [base, *front]}.values(), key=lambda t: t.number):
        rows[t.number] = {"trial": t.number, "params": t.params, **{k: t.user_attrs[k] for k in (
            "val_accuracy", "test_accuracy", "latency_us", "firing_rate", "cycles")}, **_trial_cycles(t.user_attrs["artefacts"])}
        print(t.number, rows[t.number]["val"]["parts"], flush=True)
    lines = [f"Study `{name}` ({len(done)} completed trials): the snnTorch-default trial against the best Pareto "
             "trade-off within 3 validation-accuracy points (lowest latency among Pareto trials with val accuracy "
             ">= default − 0.03), and where the cycles go (validation set, mean per sample; measured by "
             "`bench/experiments.py convstudy` on the trials' deployed chips).", "",
             "| trial | surrogate (scale) | beta | theta | val acc | test acc | latency µs (val) | firing rate l0 / l1 / l2 "
             "| cycles | " + " | ".join(PARTS) + " |", "|---" * (10 + len(PARTS)) + "|"]
    for n, r in rows.items():
        p = r["params"]
        tag = " (snnTorch default)" if n == base.number else " (best trade-off)" if best and n == best.number else ""
        lines.append(f"| {n}{tag} | {p.get('surrogate')} ({p.get('surrogate_scale_factor', 1.0):.2f}) | "
                     f"{p.get('beta', 0.95):.3f} | {p.get('theta', 1.0):.3f} | {r['val_accuracy']:.3f} | "
                     f"{r['test_accuracy']:.3f} | {r['latency_us']:.1f} | "
                     + " / ".join(f"{q:.3f}" for q in r["val"]["rates"]) + f" | {r['val']['cycles']:.0f} | "
                     + " | ".join(f"{r['val']['parts'][k]:.0f} ({100 * r['val']['parts'][k] / r['val']['cycles']:.0f} %)"
                                  for k in PARTS) + " |")
    if best:
        b, o = rows[base.number], rows[best.number]
        lines += ["", f"Trial {best.number} vs the default (trial {base.number}): validation accuracy "
                  f"{o['val_accuracy'] - b['val_accuracy']:+.3f}, latency "
                  f"{100 * (o['latency_us'] / b['latency_us'] - 1):+.1f} %; cycle change by part: "
                  + ", ".join(f"{k} {o['val']['parts'][k] - b['val']['parts'][k]:+.0f}" for k in PARTS) + "."]
    publish(f"{name}_cycles", {"baseline": base.number, "best": best and best.number, "rows": list(rows.values())},
            "\n".join(lines), seeds=[])


def _plain(x):
    """numpy scalars and arrays as JSON values."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def seed_list(text: str, offset: int) -> list[int]:
    """``--seeds``: a count N (seeds ``offset .. offset+N-1``) or a comma-separated list of seeds."""
    try:
        if "," not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return list(range(offset, offset + n))
        seeds = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: expected a count >= 1 (e.g. 5) or a list of "
                                         "seeds (e.g. 31337,2718)") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"--seeds {text!r}: seeds are distinct integers >= 0")
    return seeds


EXPERIMENTS = ["distortion", "datasize", "deploy", "mhchain", "mhdiag", "deploygap", "distortionfix", "heldout",
               "convsurrogate", "convstudy"]


def main(argv=None) -> int:
    global OUT
    from bench.records import add_record_args
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=[*EXPERIMENTS, "all"])
    ap.add_argument("--seeds", default="5", help="a count N (seeds offset..offset+N-1) or a list like 31337,2718 "
                                                 "(default 5)")
    ap.add_argument("--seed-offset", type=int, default=None,
                    help="first seed of a counted --seeds (default 0; heldout: 5)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--summarise", action="store_true", help="convsurrogate: only rewrite the .md from the .json")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.workers < 1:
        print(f"experiments: --workers {a.workers}: allowed range is >= 1", file=sys.stderr)
        return 2
    if a.seed_offset is not None and a.seed_offset < 0:
        print(f"experiments: --seed-offset {a.seed_offset}: allowed range is >= 0", file=sys.stderr)
        return 2
    OUT = PAGES if a.publish else (Path(a.out) if a.out else OUT)
    if a.out and a.publish:
        print("experiments: give --publish or --out, not both", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    RUN["args"] = a
    from bench.records import provenance
    RUN["started"] = provenance()           # the records are written after the trainings: the code at the start
    if a.summarise and a.which == "convsurrogate":
        rows = json.loads((OUT / "convsurrogate.json").read_text())
        RUN["seeds"] = sorted({r["seed"] for r in rows})
        publish("convsurrogate", rows, convsurrogate_md(rows),
                source=f"rows read from {OUT / 'convsurrogate.json'} (measured by an earlier run; this record's "
                       "commit is the summary's, not the measurement's)")
        return 0
    every = ["mhdiag", "distortion", "distortionfix", "heldout", "datasize", "deploy", "deploygap", "mhchain"]
    for name in (every if a.which == "all" else [a.which]):
        offset = a.seed_offset if a.seed_offset is not None else (5 if name == "heldout" else 0)
        try:
            seeds = seed_list(a.seeds, offset)
        except argparse.ArgumentTypeError as e:
            print(f"experiments: {e}", file=sys.stderr)
            return 2
        RUN["seeds"] = seeds
        globals()[name](seeds, a.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
