"""Cycles against the event bound (``docs/chip.md``, "Event bound"): today's schedule, the live-word schedule
projected (:mod:`sim.event_bound`) and the built update-by-touch chip (``update = "touched"``, measured on its fast
model, which is cycle-exact with the RTL), over input densities and hidden firing rates, as the ``event_bound``
record.

    python -m bench.bench_event_bound [--seeds 5] [--quick] [--publish]
    python -m bench.bench_event_bound --nmnist-sweep [--seeds 5] [--publish]

``--nmnist-sweep`` writes the ``event_bound_nmnist`` record instead: the N-MNIST-shaped stand-in at its input
density (0.6 %) over hidden rates 0.2-5 % (``NMNIST_RATES``), with the share of the first conv layer's words its
input touches per step -- what bounds any UPDATE schedule's saving there.

Networks: fc 256-256-128-16 (bench_chip's), and the conv chip of issue 23 with 3x3 and with 5x5 kernels
(2x16x16 -> conv 16 kxk -> conv 16 kxk -> pool 2 -> fc 10, 'same' padding), 8 lanes, overlap off, 30 steps,
4 samples; an N-MNIST-shaped SCNN (2x34x34 -> conv 16 5x5 p1 -> pool 2 -> conv 32 5x5 p1 -> pool 2 -> fc 10;
a stand-in, not the NIR paper's exact net) at 300 steps, 2 samples, input density 0.6 %. Inputs are Bernoulli
spikes; weights ``sim.sample.random_weights``; the hidden layers' thresholds are set by bisection so that they
fire at the hidden rate (``bench.bench_conv.calibrate``) on today's chip; the touched chip runs with the same
weights and thresholds (its hidden rates are recorded too). Every (network, density, rate, seed) is a round."""
from __future__ import annotations

import argparse
import functools

import numpy as np

from bench.records import Recorder, add_record_args, spread
from hw.config import ChipConfig
from sim.event_bound import bound_of, touched_schedule, touched_words
from sim.model import FastModel
from sim.sample import random_spikes, random_weights

DENSITIES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
RATES = (0.01, 0.07, 0.2)
NMNIST_RATES = (0.002, 0.005, 0.01, 0.02, 0.05)


def conv(c, k, p):
    return {"kind": "conv", "channels": c, "kernel": k, "stride": 1, "padding": p}


def networks() -> dict[str, ChipConfig]:
    return {
        "conv 3x3": ChipConfig(input_shape=(2, 16, 16), layers=(conv(16, 3, 1), conv(16, 3, 1), {"kind": "pool", "size": 2},
                                                                {"kind": "fc", "size": 10}), lanes=8, overlap=False),
        "conv 5x5": ChipConfig(input_shape=(2, 16, 16), layers=(conv(16, 5, 2), conv(16, 5, 2), {"kind": "pool", "size": 2},
                                                                {"kind": "fc", "size": 10}), lanes=8, overlap=False),
        "fc 256-256-128-16": ChipConfig(layer_sizes=(256, 256, 128, 16), lanes=8, beta=0.9, overlap=False),
    }


NMNIST = ChipConfig(input_shape=(2, 34, 34), layers=(conv(16, 5, 1), {"kind": "pool", "size": 2}, conv(32, 5, 1),
                                                     {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}),
                    lanes=8, overlap=False)


def measure(cfg: ChipConfig, density: float, rate: float, seed: int, batch: int, steps: int) -> dict:
    from bench.bench_conv import calibrate
    w = random_weights(cfg, seed, density)
    x = random_spikes(cfg, batch, steps, density, seed + 1000)
    c = calibrate(cfg, w, x, rate)
    model = FastModel(c, w)
    p = touched_schedule(model, x)
    r = model.run(x, record_state=False)
    # the built update-by-touch chip (hw/core/touched.py; its fast model sim/lazy.py is bit- and cycle-exact with
    # the RTL), same weights and thresholds: its cycles are the specification's (lazy_run) or this is a bug
    t = FastModel(c.replace(update="touched", max_steps=steps), w).run(x, record_state=False)
    if not (t.cycles == p.lazy_cycles).all():
        raise AssertionError("the touched chip's cycles differ from sim.event_bound.lazy_run's")
    # the default chip (update "all", overlap on: an UPDATE streams into the next layer's events); same outputs
    on = FastModel(c.replace(overlap=True), w).run(x, record_state=False)
    # the touched chip with overlap on (its default, as the "all" chip's): same outputs as the touched chip's
    t_on = FastModel(c.replace(update="touched", max_steps=steps, overlap=True), w).run(x, record_state=False)
    if not all((a == b).all() for a, b in zip(t_on.spikes, t.spikes)):
        raise AssertionError("the touched chip's spikes change with overlap")
    # the touched chip as a wavefront (docs/chip.md, "Wavefront"; its model cycle-exact with the RTL): same spikes
    wf = FastModel(c.replace(update="touched", max_steps=steps, wavefront=True), w).run(x, record_state=False)
    if not all((a == b).all() for a, b in zip(wf.spikes, t.spikes)):
        raise AssertionError("the wavefront chip's spikes differ from the touched chip's")
    own_bound = bound_of(t_cfg := c.replace(update="touched", max_steps=steps), x, t)   # with its own P_T
    appends = sum(_extra_appends(t_cfg, l, t.spikes[l]) for l in range(c.num_layers))
    synops = r.counters["synops"].astype(float)
    t_synops = t.counters["synops"].astype(float)
    # the rest of the touched chip's excess over its own bound: the hot words (visited with no event: a visited
    # word is a state read beyond the events' ones) and the events' partial last groups (a word per group, where the
    # bound charges synops / lanes)
    t_inputs = [x] + list(t.spikes[:-1])
    t_touched = sum(touched_words(t_cfg, l, t_inputs[l]).sum(axis=(1, 2)) for l in range(c.num_layers))
    hot = t.counters["state_reads"] - t.counters["weight_reads"] - t_touched
    partial = t.counters["weight_reads"] - t_synops / c.lanes
    hidden = [float(r.counters[f"spikes_l{l}"].mean() / (steps * c.fan_out(l))) for l in range(c.num_layers - 1)]
    t_hidden = [float(t.counters[f"spikes_l{l}"].mean() / (steps * c.fan_out(l))) for l in range(c.num_layers - 1)]
    return {"cycles": float(p.cycles.mean()), "bound": float(p.bound.mean()),
            "ratio": float((p.cycles / p.bound).mean()),
            "live_ratio": float((p.touched_cycles / p.bound).mean()),
            "lazy_ratio": float((t.cycles / p.bound).mean()),
            "utilisation": float((synops / (c.lanes * p.cycles)).mean()),
            "lazy_utilisation": float((t_synops / (c.lanes * t.cycles)).mean()),
            "bound_utilisation": float((synops / (c.lanes * p.bound)).mean()),
            "synaptic_ceiling": float((c.lanes * p.cycles / synops).mean()),
            # the touched words' update cycles against the synaptic cycles (one datapath does both)
            "touched_share": float((p.touched / (synops / c.lanes)).mean()),
            "touched_words": float((p.touched / p.words).mean()), "live_words": float((p.live / p.words).mean()),
            "first_touched": float(touched_words(c, 0, x).mean()),      # layer 0's words the input touches per step
            "lazy_words": float((p.lazy / p.words).mean()),
            "lazy_speedup": float((p.cycles / t.cycles).mean()),
            "default_speedup": float((on.cycles / t.cycles).mean()),
            "default_utilisation": float((synops / (c.lanes * on.cycles)).mean()),
            "default_ratio": float((on.cycles / p.bound).mean()),
            "touched_overlap_utilisation": float((t_synops / (c.lanes * t_on.cycles)).mean()),
            "touched_overlap_ratio": float((t_on.cycles / p.bound).mean()),
            "touched_overlap_vs_default": float((on.cycles / t_on.cycles).mean()),
            "lazy_own_ratio": float((t.cycles / own_bound).mean()),
            # projections (sim.event_bound.overlap_ceilings, not built): the touched chip's utilisation if every
            # UPDATE ran beside the next layer's EVENT phase, and if both engines were busy all the time
            "next_overlap_utilisation": float((t_synops / (c.lanes * p.lazy_next_overlap)).mean()),
            "busy_utilisation": float((t_synops / (c.lanes * p.lazy_busy)).mean()),
            # in-order layer pipelining (sim.event_bound.pipelined_ceiling, not built)
            "pipelined_utilisation": float((t_synops / (c.lanes * p.lazy_pipelined)).mean()),
            # a wavefront (sim.event_bound.wavefront_ceiling, not built): layer l runs step t in slot t + l, with a
            # membrane memory per layer, and with two (even and odd layers, as the touched chip with overlap has)
            "wavefront_utilisation": float((t_synops / (c.lanes * p.lazy_wavefront)).mean()),
            "wavefront_two_memories_utilisation": float((t_synops / (c.lanes * p.lazy_wavefront_two)).mean()),
            # the wavefront, built (hw/core/wavefront.py): a host that streams the input
            "wavefront_built_utilisation": float((t_synops / (c.lanes * wf.cycles)).mean()),
            "wavefront_ratio": float((wf.cycles / p.bound).mean()),
            "wavefront_vs_default": float((on.cycles / wf.cycles).mean()),
            "wavefront_vs_ceiling": float((wf.cycles / p.lazy_wavefront).mean()),
            "append_share": float((appends / own_bound).mean()),
            "hot_share": float((hot / own_bound).mean()), "partial_share": float((partial / own_bound).mean()),
            "lazy_same_output": float(np.all(t.output == r.output, axis=(1, 2)).mean()), "hidden_rates": hidden,
            "touched_hidden_rates": t_hidden, "thresholds": list(c.threshold)}


def _extra_appends(cfg: ChipConfig, l: int, spikes: np.ndarray) -> np.ndarray:
    """Per sample, the UPDATE cycles layer ``l`` spends appending spikes beyond a state word's first cycle
    (``max(1, ceil(pc / A)) - 1`` summed over the words that fired, ``A = cfg.appends_per_cycle`` spikes entering
    the event list per cycle: 2 on the touched chip), which the event bound does not charge."""
    B, T, _ = spikes.shape
    pos, co, G = cfg.positions(l), cfg.out_channels(l), cfg.groups(l)
    words = spikes.reshape(B, T, pos, co)
    if G * cfg.lanes > co:
        words = np.concatenate([words, np.zeros((B, T, pos, G * cfg.lanes - co), bool)], axis=3)
    pc = words.reshape(B, T, pos, G, cfg.lanes).sum(axis=4, dtype=np.int64)
    A = cfg.appends_per_cycle
    return np.maximum((pc + A - 1) // A - 1, 0).sum(axis=(1, 2, 3))


def _ms(v):
    """[mean, std] over seeds, by :func:`bench.records.spread` (sample std, ddof=1, as every record's spread)."""
    s = spread(v)
    return [s["mean"], s["std"]]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="weight/input seeds per point (1..10)")
    ap.add_argument("--quick", action="store_true", help="densities 0.02 and 0.1, rates 0.02 and 0.07, no N-MNIST")
    ap.add_argument("--nmnist-sweep", action="store_true",
                    help="only the N-MNIST-shaped stand-in over hidden rates (record event_bound_nmnist)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if not 1 <= a.seeds <= 10:
        ap.error(f"--seeds={a.seeds}: allowed range is 1..10")
    if a.nmnist_sweep and a.quick:
        ap.error("--nmnist-sweep and --quick: choose one")
    if a.nmnist_sweep:
        return nmnist_sweep(a)
    dens, rates = ((0.02, 0.1), (0.02, 0.07)) if a.quick else (DENSITIES, RATES)
    seeds = list(range(a.seeds))
    params = {"densities": dens, "rates": rates, "steps": 30, "batch": 4, "lanes": 8,
              "nmnist": {"steps": 300, "batch": 2, "density": 0.006, "rate": 0.05}}
    with Recorder("event_bound", args=a, seeds=seeds, params=params) as rec:
        for name, cfg in networks().items():
            for d in dens:
                for q in rates:
                    got = [measure(cfg, d, q, s, 4, 30) for s in seeds]
                    for s, g in zip(seeds, got):
                        rec.round(net=name, density=d, rate=q, seed=s, **g)
                    key = f"{name} | {d} | {q}"
                    rec.summary[key] = {k: _ms([g[k] for g in got]) for k in got[0]
                                        if k not in ("hidden_rates", "touched_hidden_rates", "thresholds")}
                    print(key, {k: round(v[0], 3) for k, v in rec.summary[key].items()}, flush=True)
        if not a.quick:
            got = [measure(NMNIST, 0.006, 0.05, s, 2, 300) for s in seeds]
            for s, g in zip(seeds, got):
                rec.round(net="nmnist-shaped", density=0.006, rate=0.05, seed=s, **g)
            rec.summary["nmnist-shaped"] = {k: _ms([g[k] for g in got]) for k in got[0]
                                            if k not in ("hidden_rates", "touched_hidden_rates", "thresholds")}
            print("nmnist", {k: round(v[0], 3) for k, v in rec.summary["nmnist-shaped"].items()})


def nmnist_sweep(a) -> None:
    """The ``event_bound_nmnist`` record: the N-MNIST-shaped stand-in at 0.6 % input over ``NMNIST_RATES``."""
    seeds = list(range(a.seeds))
    params = {"density": 0.006, "rates": NMNIST_RATES, "steps": 300, "batch": 2, "lanes": 8}
    with Recorder("event_bound_nmnist", args=a, seeds=seeds, params=params) as rec:
        for q in NMNIST_RATES:
            got = [measure(NMNIST, 0.006, q, s, 2, 300) for s in seeds]
            for s, g in zip(seeds, got):
                rec.round(net="nmnist-shaped", density=0.006, rate=q, seed=s, **g)
            key = f"nmnist-shaped | 0.006 | {q}"
            rec.summary[key] = {k: _ms([g[k] for g in got]) for k in got[0]
                                if k not in ("hidden_rates", "touched_hidden_rates", "thresholds")}
            print(key, {k: round(v[0], 3) for k, v in rec.summary[key].items()}, flush=True)


def _cell(v: dict, k: str, unit: str = "", optional: bool = False) -> str:
    """One cell of the tables below from a summary row ``v``: field ``k``'s mean ± std over seeds, ``unit``
    (``"x"``) after it; an ``optional`` field, one that records from before it was measured lack, is "not
    measured" there (without the unit)."""
    if optional and k not in v:
        return "not measured"
    return f"{v[k][0]:.2f} ± {v[k][1]:.2f}{unit}"


def nmnist_table(record: dict) -> str:
    """Markdown table of ``event_bound_nmnist``: per hidden rate, mean ± std over seeds."""
    rows = ["| hidden rate | first layer's words touched per step | today's cycles / bound (the most any UPDATE "
            "sequential schedule can save) | today's cycles / (synops / lanes) (the most any schedule can save) | "
            "touched chip: cycles saved | touched vs the default chip (overlap on) | touched, overlap on, vs the "
            "default chip | utilisation today | default chip (overlap on) | touched chip | touched chip, overlap on |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, v in record["summary"].items():
        c = functools.partial(_cell, v)
        rows.append(f"| {key.split(' | ')[2]} | {c('first_touched')} | {c('ratio', 'x')} | "
                    f"{c('synaptic_ceiling', 'x')} | {c('lazy_speedup', 'x')} | {c('default_speedup', 'x')} | "
                    f"{c('touched_overlap_vs_default', 'x', optional=True)} | {c('utilisation')} | "
                    f"{c('default_utilisation', optional=True)} | {c('lazy_utilisation')} | "
                    f"{c('touched_overlap_utilisation', optional=True)} |")
    return "\n".join(rows)


def table(record: dict) -> str:
    """Markdown table of the summary: mean ± std over seeds."""
    rows = ["| network | input density | hidden rate | cycles / bound (today) | exact live-word schedule / bound | "
            "touched chip / bound | utilisation today | default chip (overlap on) | touched chip | touched chip, "
            "overlap on | bound's own utilisation | touched: cycles saved | touched vs the default chip (overlap on) "
            "| touched, overlap on, vs the default chip | touched chip / its own bound | touched: output spikes as "
            "today | wavefront chip | wavefront vs the default chip |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, v in record["summary"].items():
        parts = key.split(" | ") if " | " in key else [key, "", ""]
        c = functools.partial(_cell, v)
        rows.append(f"| {parts[0]} | {parts[1]} | {parts[2]} | {c('ratio')} | {c('live_ratio')} | {c('lazy_ratio')} | "
                    f"{c('utilisation')} | {c('default_utilisation', optional=True)} | {c('lazy_utilisation')} | "
                    f"{c('touched_overlap_utilisation', optional=True)} | {c('bound_utilisation')} | "
                    f"{c('lazy_speedup', 'x')} | {c('default_speedup', 'x', optional=True)} | "
                    f"{c('touched_overlap_vs_default', 'x', optional=True)} | "
                    f"{c('lazy_own_ratio', optional=True)} | {c('lazy_same_output')} | "
                    f"{c('wavefront_built_utilisation', optional=True)} | {c('wavefront_vs_default', 'x', optional=True)} |")
    return "\n".join(rows)


def _in(x: str, rng: str) -> bool:
    if rng == "*":
        return True
    lo, _, hi = rng.partition("-")
    return float(lo) <= float(x) <= float(hi or lo)


def stat(record: dict, field: str, agg: str, net: str = "*", densities: str = "*", hidden: str = "*",
         fmt: str = ".2f") -> str:
    """One figure of the summary's means for prose: ``agg`` (``min`` / ``max`` / ``span``: ``lo–hi``) of ``field``
    over the rows whose network matches ``net`` (fnmatch, ``_`` for a space: ``conv_3x3``, ``conv*``,
    ``nmnist-shaped``) and whose input density and hidden rate lie in ``densities`` / ``hidden`` (``0.01-0.02``,
    ``0.01``, ``*``)."""
    from fnmatch import fnmatch
    vals = []
    for key, v in record["summary"].items():
        parts = key.split(" | ") if " | " in key else [key, None, None]
        if not fnmatch(parts[0], net.replace("_", " ")):
            continue
        if parts[1] is not None and not (_in(parts[1], densities) and _in(parts[2], hidden)):
            continue
        vals.append(v[field][0])
    if not vals:
        raise ValueError(f"event_bound stat: no row matches {net} {densities} {hidden}")
    if agg == "span":
        lo, hi = format(min(vals), fmt), format(max(vals), fmt)
        return lo if lo == hi else f"{lo}–{hi}"
    return format({"min": min, "max": max}[agg](vals), fmt)


def seeds(record: dict) -> str:
    """How many weight/input seeds the means are over (``bench.bench_chip.seeds``)."""
    from bench.bench_chip import seeds as of
    return of(record)


VIEWS = {"table": table, "stat": stat, "seeds": seeds, "nmnist_table": nmnist_table}


if __name__ == "__main__":
    main()
