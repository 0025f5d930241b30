"""Chip benchmark: simulator speed (fast model vs Verilator vs Icarus vs Amaranth) and schedule efficiency.

Everything printed is measured in this one run on the same network and inputs. Usage:
    python -m bench.bench_chip [--steps 25] [--density 0.1] [--quick] [--cycles-only] [--seeds 5] [--publish]

The schedule table (fast model, cycle-exact with the RTL) has three chips per row: ``update = "all"`` with overlap
off and on (the default chip), and ``update = "touched"`` with overlap off and on (``max_steps = --steps``).
It is the record ``chip_schedule`` (every (row, seed, chip) a round; mean ± std over the weight/input seeds: weights
``seed``, inputs ``seed + 2``); ``cycles / event bound`` is against each chip's own bound (its own pipeline depth,
``sim.event_bound.bound_of``).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench.records import Recorder, add_record_args, spread
from hw.config import ChipConfig
from sim.chip import make_chip
from sim.cocotb_sim import simulator_available
from sim.event_bound import bound_of
from sim.sample import random_spikes, random_weights


def dense_cycles(cfg: ChipConfig, r) -> np.ndarray:
    """Cycles of the same datapath if every synapse were visited every step (no event skipping)."""
    steps = r.output.shape[1]
    per_step = sum(cfg.fan_in(l) * cfg.groups(l) + 1 + cfg.update_latency + cfg.groups(l) for l in range(cfg.num_layers)) + 1
    return steps * per_step + r.counters["out_events"]


def timed(chip, x, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = chip.run(x)
        best = min(best, time.perf_counter() - t0)
    return r, best


#: the benchmark's network (both tables)
NETWORK = ChipConfig(layer_sizes=(256, 256, 128, 16), lanes=8, threshold=64, beta=0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="fewer RTL samples")
    ap.add_argument("--cycles-only", action="store_true", help="only the schedule table (fast model, seconds)")
    ap.add_argument("--seeds", type=int, default=5, help="weight/input seeds of the schedule table (1..10)")
    add_record_args(ap)
    a = ap.parse_args()
    if not 1 <= a.seeds <= 10:
        ap.error(f"--seeds {a.seeds}: allowed range 1..10")
    if not 1 <= a.steps <= 65535:
        ap.error(f"--steps {a.steps}: allowed range 1..65535")
    cfg = NETWORK
    w = random_weights(cfg, seed=0, input_density=a.density)
    x = random_spikes(cfg, 256, a.steps, a.density, seed=1)
    print(f"network {cfg.layer_sizes}, lanes {cfg.lanes}, {a.steps} steps, input density {a.density}")

    fast = make_chip(cfg, "fast")
    fast.load(w)
    fast.run(x[:8])
    r_fast, t_fast = timed(fast, x, repeat=3)
    rows = [("fast model (numpy)", len(x), t_fast)]
    n_rtl = {"verilator": 4 if a.quick else 16, "icarus": 2 if a.quick else 4, "amaranth": 1 if a.quick else 2}
    for backend in () if a.cycles_only else ("verilator", "icarus", "amaranth"):
        if backend != "amaranth" and simulator_available(backend):
            print(f"{backend}: unavailable ({simulator_available(backend)})")
            continue
        chip = make_chip(cfg, backend)
        chip.load(w)
        if backend != "amaranth":
            chip.run(x[:1])                              # build outside the timing
        n = n_rtl[backend]
        r, t = timed(chip, x[:n])
        same = (r.output == r_fast.output[:n]).all() and (r.cycles == r_fast.cycles[:n]).all()
        rows.append((f"{backend} RTL", n, t))
        print(f"{backend}: outputs and cycles equal to the fast model on {n} samples: {same}")
    print()
    print("| simulator | samples | seconds | samples/s | fast model speed-up |")
    print("|---|---|---|---|---|")
    fast_rate = rows[0][1] / rows[0][2]
    for name, n, t in rows:
        print(f"| {name} | {n} | {t:.3f} | {n / t:.1f} | {fast_rate / (n / t):.0f}x |")

    schedule_table(cfg, a)


#: the schedule table's chips: label -> ChipConfig overrides ("touched": overlap off, the record's first touched chip)
CHIPS = {"all, overlap off": {"overlap": False}, "all, overlap on": {"overlap": True},
         "touched": {"overlap": False, "update": "touched"},
         "touched, overlap on": {"overlap": True, "update": "touched"}}
DENSITIES = (0.02, 0.05, 0.1, 0.2, 0.5)
EVERY_LAYER = "0.1, every layer ~0.1 (thr 138/142/172)"


def schedule_row(c: ChipConfig, wd, xd) -> dict:
    """Per chip of :data:`CHIPS`: mean cycles, utilisation (synops / (lanes x cycles)), dense / ours and cycles /
    event bound of one (weights, inputs), and the hidden firing rate of the "all" chip."""
    out = {}
    steps = xd.shape[1]
    for label, over in CHIPS.items():
        cc = c.replace(**over, **({"max_steps": steps} if over.get("update") == "touched" else {}))
        chip = make_chip(cc, "fast")
        chip.load(wd)
        r = chip.run(xd)
        cyc, ideal, dense = r.cycles.mean(), r.counters["synops"].mean() / c.lanes, dense_cycles(c, r).mean()
        bound = bound_of(cc, xd, r).mean()                   # docs/chip.md, "Event bound"
        out[label] = {"cycles": float(cyc), "utilisation": float(ideal / cyc), "dense_ratio": float(dense / cyc),
                      "bound_ratio": float(cyc / bound), "ideal": float(ideal), "dense": float(dense)}
        if label == "all, overlap off":
            out["hidden"] = [float(r.counters[f"spikes_l{l}"].mean() / (steps * n))
                             for l, n in enumerate(c.layer_sizes[1:])]
    return out


def schedule_table(cfg: ChipConfig, a) -> None:
    print()
    print(f"Schedule (fast model, 64 samples, mean ± std over {a.seeds} seeds; docs/chip.md):")
    cols = ("cycles", "utilisation", "dense_ratio", "bound_ratio")
    params = {"layer_sizes": list(cfg.layer_sizes), "lanes": cfg.lanes, "steps": a.steps, "samples": 64,
              "chips": CHIPS, "densities": list(DENSITIES), "every_layer_thresholds": [138, 142, 172]}
    with Recorder("chip_schedule", args=a, seeds=list(range(a.seeds)), params=params) as rec:
        rows = {}
        for name in [str(d) for d in DENSITIES] + [EVERY_LAYER]:
            per_seed = []
            for seed in range(a.seeds):
                d = 0.1 if name == EVERY_LAYER else float(name)
                c = cfg.replace(threshold=(138, 142, 172)) if name == EVERY_LAYER else cfg
                m = schedule_row(c, random_weights(cfg, seed=seed, input_density=d),
                                 random_spikes(cfg, 64, a.steps, d, seed=seed + 2))
                per_seed.append(m)
                for label in CHIPS:
                    rec.round(row=name, seed=seed, chip=label, **m[label])
            rows[name] = {"hidden": [spread([m["hidden"][l] for m in per_seed])["mean"]
                                     for l in range(cfg.num_layers)]}
            for label in CHIPS:
                rows[name][label] = {k: [spread([m[label][k] for m in per_seed])["mean"],
                                         spread([m[label][k] for m in per_seed])["std"]] for k in cols}
        rec.summary = rows
    print(table({"summary": rows}))


def _pm(v, fmt):
    return f"{format(v[0], fmt)} ± {format(v[1], fmt)}"


def table(record: dict) -> str:
    """The schedule table: per row, each chip's cycles, utilisation, dense / ours and cycles / event bound."""
    head = "| input density | hidden firing (all) | " + " | ".join(
        f"{label}: cycles | utilisation | dense / ours | cycles / bound" for label in CHIPS) + " |"
    lines = [head, "|---|---|" + "---|" * (4 * len(CHIPS))]
    for name, row in record["summary"].items():
        cells = []
        for label in CHIPS:
            m = row[label]
            cells += [_pm(m["cycles"], ".0f"), _pm(m["utilisation"], ".3f"), _pm(m["dense_ratio"], ".2f") + "x",
                      _pm(m["bound_ratio"], ".3f")]
        lines.append(f"| {name} | {'/'.join(f'{h:.3f}' for h in row['hidden'][:-1])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def point(record: dict, row: str, chip: str, field: str, fmt: str = ".3f") -> str:
    """One mean of the summary for prose: ``row`` (``0.1``, or ``every`` for the every-layer row), ``chip``
    (``all_on``, ``all_off``, ``touched``, ``touched_on``), ``field`` (cycles, utilisation, dense_ratio, bound_ratio)."""
    key = EVERY_LAYER if row == "every" else row
    label = {"all_on": "all, overlap on", "all_off": "all, overlap off", "touched": "touched",
             "touched_on": "touched, overlap on"}[chip]
    return format(record["summary"][key][label][field][0], fmt)


def hidden(record: dict, row: str | None = None) -> str:
    """The span of the hidden layers' mean firing rates (the output layer left out, as in the table), in per cent:
    over one ``row`` (``0.1``, ...) or, without it, over every input-density row (not the every-layer row)."""
    rows = [row] if row else [str(d) for d in DENSITIES]
    rates = [h for key in rows for h in record["summary"][key]["hidden"][:-1]]
    return f"{100 * min(rates):.0f}–{100 * max(rates):.0f} %"


def seeds(record: dict) -> str:
    """How many weight/input seeds the means are over: ``5 seeds (0–4)``."""
    s = record["seeds"]
    return f"{len(s)} seed{'s' * (len(s) > 1)} ({s[0]}–{s[-1]})" if len(s) > 1 else f"1 seed ({s[0]})"


VIEWS = {"table": table, "point": point, "hidden": hidden, "seeds": seeds}


if __name__ == "__main__":
    main()
