"""The MNIST-sized network on the chip: cycles per image and where they go, per ``lanes``, and latency at the
post-route Fmax of the synthesised design (issue 10, parts 2 and 5).

Input: no MNIST here, so MNIST-*like*: scikit-learn's 8x8 digits (0..16) scaled to [0, 1], upsampled
bilinearly to 20x20 and padded with 4 zero pixels on every side to 28x28 (MNIST's own layout: a 20x20 digit
centred in 28x28), rate-coded (a spike with probability = pixel value in every step): mean input density
0.169. Network 784-128-10, 25 steps, seeded Gaussian weights (``sim.sample.random_weights`` at that density,
so the hidden layer fires now and then; no training).

    python -m bench.bench_mnist [--publish]           # cycles for lanes 8/16/32 (fast model, seconds)
    python -m bench.bench_mnist --overlap on          # the chip's UPDATE -> EVENT overlap on (default: ChipConfig's)
    python -m bench.bench_mnist --synth runs/mnist     # + latency from runs/mnist/l{lanes}/<target>.json (printed)

Writes the record ``mnist_cycles`` (bench/records.py): every (lanes, seed) as a round, cycles per image as mean ±
std over the seeds. Cycles are counts of the cycle-exact model, not timings: the machine's load does not move them.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.records import Recorder, add_record_args, spread
from hw.config import ChipConfig
from sim.model import FastModel, overlap_hidden
from sim.sample import random_weights

SIZES = (784, 128, 10)
STEPS = 25
THRESHOLD, BETA = 64, 0.9             # the chip's neurons in every round
TARGET_US = 390.0                     # issue 10: 2x faster than Spiker+
REFERENCES = {"Spiker+ (arXiv 2401.01141)": 780.0, "snn-fpga, Artix-7 (arXiv 2507.07284)": 520.0}


def mnist_like(n: int, steps: int = STEPS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` rate-coded 28x28 images ``(n, steps, 784)`` from the digits data set, and their labels."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    d = load_digits()
    idx = np.random.default_rng(seed).permutation(len(d.images))[:n]
    img = np.clip(zoom(d.images[idx] / 16.0, (1, 2.5, 2.5), order=1), 0.0, 1.0)       # 20x20
    img = np.pad(img, ((0, 0), (4, 4), (4, 4))).reshape(len(idx), 784)                 # 28x28
    spikes = np.random.default_rng(seed + 1).random((len(idx), steps, 784)) < img[:, None, :]
    return spikes, d.target[idx]


def breakdown(cfg: ChipConfig, r) -> dict[str, np.ndarray]:
    """Cycles per sample split by phase (they sum to ``r.cycles``; docs/chip.md, "Schedule"). With the chip's
    overlap, "hidden by overlap l{l}" (negative) are the cycles the overlap of layer ``l``'s UPDATE with the
    next layer's EVENT phase saves (docs/chip.md, "Overlap"): the EVENT phases are counted in full."""
    T = r.output.shape[1]
    ev = [r.counters["in_events"]] + [r.counters[f"spikes_l{l}"] for l in range(cfg.num_layers)]
    out = {}
    for l in range(cfg.num_layers):
        G = cfg.groups(l)
        s = r.spikes[l]                                            # (B, T, N)
        B, _, n = s.shape
        pad = np.zeros((B, T, G * cfg.lanes), np.int64)
        pad[:, :, :n] = s
        pc = pad.reshape(B, T, G, cfg.lanes).sum(-1)
        out[f"events l{l}"] = ev[l] * G
        out[f"end + fill l{l}"] = np.full(B, (1 + cfg.update_latency) * T)
        out[f"update l{l}"] = np.maximum(pc, 1).sum(axis=(1, 2))
        if cfg.overlapped(l):
            out[f"hidden by overlap l{l}"] = -overlap_hidden(cfg, l, s)
    out["output"] = ev[-1] + T
    assert (sum(out.values()) == r.cycles).all()
    return out


def measure_round(lanes: int, seed: int, samples: int, overlap: bool | None = None, threshold: int = THRESHOLD,
                  beta: float = BETA) -> dict:
    """One round of the record ``mnist_cycles``: ``samples`` MNIST-like images (input seed ``seed``) through the
    784-128-10 chip at ``lanes`` with seeded random weights (the same seed); ``overlap`` None is ChipConfig's
    default. Returns the round's fields: cycles per image (mean over the images), input density, hidden firing
    rate (per neuron per step) and the cycle breakdown (:func:`breakdown`, means), with the cycles of the same chip
    with the overlap the other way. The bench records these; tests/test_records_reproduce.py re-runs one."""
    cfg = ChipConfig(layer_sizes=SIZES, lanes=lanes, threshold=threshold, beta=beta)
    if overlap is not None:
        cfg = cfg.replace(overlap=overlap)
    x, _ = mnist_like(samples, STEPS, seed)
    chip = FastModel(cfg, random_weights(cfg, seed=seed, input_density=float(x.mean())))
    r = chip.run(x, record_state=False)
    b = breakdown(cfg, r)
    b["layer 0 (events+end+fill+update)"] = b["events l0"] + b["end + fill l0"] + b["update l0"]
    other = FastModel(cfg.replace(overlap=not cfg.overlap), chip.weights).run(x, record_state=False)
    b[f"the chip with overlap {'off' if cfg.overlap else 'on'}"] = other.cycles
    return {"lanes": lanes, "overlap": bool(cfg.overlap), "seed": seed, "cycles_mean": float(r.cycles.mean()),
            "input_density": float(x.mean()),
            "hidden_rate": float(r.counters["spikes_l0"].mean() / (STEPS * SIZES[1])),
            "parts": {k: float(np.mean(v)) for k, v in b.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--lanes", default="8,16,32")
    ap.add_argument("--seeds", type=int, default=5, help="weight/input seeds (mean ± std over them)")
    ap.add_argument("--overlap", choices=("on", "off"), help="the chip's overlap (default: ChipConfig's)")
    ap.add_argument("--synth", help="folder with l{lanes}/<target>.json reports of bench/synth_mnist.py")
    add_record_args(ap)
    a = ap.parse_args(argv)
    try:
        lanes_list = [int(v) for v in a.lanes.split(",")]
    except ValueError:
        print(f"bench_mnist: --lanes {a.lanes!r}: expected lane counts like 8,16,32", file=sys.stderr)
        return 2
    if a.samples < 1 or a.seeds < 1 or min(lanes_list) < 1:
        print("bench_mnist: --samples, --seeds and --lanes must be >= 1", file=sys.stderr)
        return 2
    params = {"network": "784-128-10", "steps": STEPS, "samples": a.samples, "threshold": THRESHOLD, "beta": BETA,
              "overlap": a.overlap or "ChipConfig default", "inputs": "sklearn digits, 20x20 in 28x28, rate-coded",
              "weights": "sim.sample.random_weights (untrained), seed = input seed"}
    rec = Recorder("mnist_cycles", args=a, seeds=list(range(a.seeds)), params=params, script=__file__)
    rec.__enter__()
    rows = []
    for lanes in lanes_list:
        rounds = []
        for seed in range(a.seeds):
            rounds.append(measure_round(lanes, seed, a.samples, None if a.overlap is None else a.overlap == "on"))
            rec.round(**rounds[-1])
        overlap = rounds[0]["overlap"]
        per_seed = [r["cycles_mean"] for r in rounds]
        dens, hid = [r["input_density"] for r in rounds], [r["hidden_rate"] for r in rounds]
        parts = {k: [r["parts"][k] for r in rounds] for k in rounds[0]["parts"]}
        cyc = np.array(per_seed)
        rows.append((lanes, cyc, np.mean(parts['events l0']) / cyc.mean()))
        rec.summary[str(lanes)] = {"overlap": overlap, "cycles": spread(cyc),
                                   "layer0_events_share": float(np.mean(parts['events l0']) / cyc.mean()),
                                   "input_density": float(np.mean(dens)), "hidden_rate": float(np.mean(hid)),
                                   "parts": {k: float(np.mean(v)) for k, v in parts.items()}}
        print(f"\nlanes {lanes}, overlap {'on' if overlap else 'off'}: {cyc.mean():,.0f} ± {cyc.std():,.0f} "
              f"cycles/image over {a.seeds} seeds "
              f"x {a.samples} images; input density {np.mean(dens):.3f}, hidden firing {np.mean(hid):.3f}/neuron/step")
        for k, v in parts.items():
            print(f"  {k:>36}: {np.mean(v):9,.0f}  ({np.mean(v) / cyc.mean():6.1%})")
        print(f"  {'a layer pipeline of 2 cores (model)':>36}: throughput x{cyc.mean() / np.mean(parts['layer 0 (events+end+fill+update)']):.3f} "
              f"(one image per layer-0 time)")
    print("\n| lanes | cycles/image | layer-0 events | needed for 390 µs |\n|---|---|---|---|")
    for lanes, cyc, f0 in rows:
        print(f"| {lanes} | {cyc.mean():,.0f} ± {cyc.std():,.0f} | {f0:.1%} | {cyc.mean() / TARGET_US:.1f} MHz |")
    rec.__exit__(None, None, None)
    if not a.synth:
        return 0
    print("\n| lanes | part | logic cells | LUT4 | FF | BRAM | DSP | Fmax (MHz) | µs / image | images/s | "
          "vs Spiker+ 780 µs | vs snn-fpga 520 µs | logic cells × µs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lanes, cyc, _ in rows:
        for p in sorted(Path(a.synth).glob(f"l{lanes}/*.json")):
            d = json.loads(p.read_text())
            us = cyc.mean() / d["fmax_mhz"]
            print(f"| {lanes} | {d['device']} | {d['logic_cells']}/{d['logic_cells_total']} | {d['luts']} | {d['ffs']} | "
                  f"{d['bram']}/{d['bram_total']} | {d['dsp']} | {d['fmax_mhz']:.2f} | {us:.0f} | {1e6 / us:,.0f} | "
                  f"{REFERENCES['Spiker+ (arXiv 2401.01141)'] / us:.2f}x | "
                  f"{REFERENCES['snn-fpga, Artix-7 (arXiv 2507.07284)'] / us:.2f}x | {d['logic_cells'] * us / 1e6:.2f} M |")
    return 0


def view_table(rec: dict) -> str:
    """Cycles per image (mean ± std over seeds), share of layer-0 events, clock needed for 390 µs."""
    out = ["| lanes | overlap | cycles / image (mean ± std over seeds) | layer-0 events | clock for 390 µs |",
           "|---|---|---|---|---|"]
    for lanes, s in rec["summary"].items():
        c = s["cycles"]
        out.append(f"| {lanes} | {'on' if s['overlap'] else 'off'} | {c['mean']:,.0f} ± {c['std']:,.0f} ({c['n']} seeds) "
                   f"| {s['layer0_events_share']:.1%} | {c['mean'] / TARGET_US:.1f} MHz |")
    return "\n".join(out)


VIEWS = {"table": view_table}


if __name__ == "__main__":
    sys.exit(main())
