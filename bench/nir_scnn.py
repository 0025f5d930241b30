"""The NIR paper's N-MNIST SCNN (Conv2d 2->16 5x5 s2 p1, IF; Conv2d 16->16 3x3 p1, IF; SumPool2d 2; Conv2d
16->8 3x3 p1, IF; SumPool2d 2; Flatten; Affine 128->256, IF; Affine 256->10, IF on 2x34x34) with random
weights, built directly as a NIR graph (one graph per seed), imported onto the chip at each weight/membrane
width and run on the fast model; agreement with the ORIGINAL graph run in float64 (train/nir_ref.py) on random
events shaped like the input. Per seed, also:

* two controls without any chip: the float graph against itself with every weight moved by uniform noise of
  +-0.5 LSB of the 16-bit import's scale (what rounding to 16 bits does, but random), and of a 2**-8 smaller
  LSB (about float32's precision): how sensitive the graph itself is;
* the same architecture with its random weights on a 2**-GRID grid (as quantisation-aware training leaves
  them), imported at 16 / 32 bits: the import then finds the exact power-of-two scale.

    python -m bench.nir_scnn [--seeds 10 11 12 13 14] [--samples 32] [--steps 100] [--grid 14] [--publish]
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from bench.records import Recorder, add_record_args, spread

WIDTHS = ((16, 32), (8, 16))
KEYS = ("class_agreement", "spike_agreement", "entry_agreement", "ref_ties")


def _inputs(cfg, seed, samples, steps, density):
    return np.random.default_rng(1000 + seed).random((samples, steps, cfg.layer_sizes[0])) < density


def _ties(ref):
    counts = np.sort(ref.sum(1), axis=1)
    return int((counts[:, -1] == counts[:, -2]).sum())


def measure(seed: int, weight_bits: int, membrane_bits: int, samples: int, steps: int, density: float,
            grid: int | None = None, ref_cache: dict | None = None) -> dict:
    """The chip (fast model) against the float graph of ``seed`` (weights on a ``2**-grid`` grid if given)."""
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from train import nir as tn
    from train.nir_ref import run_graph
    g = tn.scnn_nmnist_graph(seed, grid=grid)
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=weight_bits,
                                                          membrane_bits=membrane_bits), check_samples=0)
    layers, dt, _ = tn.parse_graph(g)
    x = _inputs(cfg, seed, samples, steps, density)
    key = (seed, grid)
    if ref_cache is not None and key in ref_cache:
        ref = ref_cache[key]
    else:
        ref = tn.reference_outputs(run_graph(g, tn.reference_inputs(cfg, x, layers[0].in_shape), dt))
        if ref_cache is not None:
            ref_cache[key] = ref
    chip = make_chip(cfg, "fast")
    chip.load(w, off)
    r = chip.run(x)
    a = tn.spike_agreement(ref, r.output)
    return {**a, "ref_ties": _ties(ref), "cycles_mean": float(r.cycles.mean()), "layer_sizes": list(cfg.layer_sizes),
            "scales": [d["scale"] for d in rep.layers]}


def perturbed(seed: int, lsb_fraction: float, samples: int, steps: int, density: float, ref_cache: dict) -> dict:
    """The float graph against itself with each weight moved by uniform noise of +-``lsb_fraction``/2 LSB of
    the 16-bit import's scale (no chip)."""
    from hw.config import ChipConfig
    from train import nir as tn
    from train.nir_ref import run_graph
    g = tn.scnn_nmnist_graph(seed)
    cfg, _, _, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=16, membrane_bits=32), check_samples=0)
    layers, dt, _ = tn.parse_graph(g)
    rng = np.random.default_rng(7 + seed)
    edits = {}
    for L, d in zip(layers, rep.layers):
        node = g.nodes[L.linear]
        W = np.asarray(node.weight, np.float64)
        Wp = W + rng.uniform(-0.5, 0.5, W.shape) * lsb_fraction / d["scale"]
        edits[L.linear] = (lambda Wp: (lambda n: dataclasses.replace(n, weight=Wp)))(Wp)
    xr = tn.reference_inputs(cfg, _inputs(cfg, seed, samples, steps, density), layers[0].in_shape)
    ref = ref_cache.get((seed, None))
    if ref is None:
        ref = ref_cache[(seed, None)] = tn.reference_outputs(run_graph(g, xr, dt))
    p = tn.reference_outputs(run_graph(g, xr, dt, edits=edits))
    return {**tn.spike_agreement(ref, p), "ref_ties": _ties(ref)}


ROWS = {"16-bit / 32-bit": "the chip, 16-bit weights / 32-bit membranes",
        "8-bit / 16-bit": "the chip, 8-bit weights / 16-bit membranes",
        "noise 16-bit LSB": "no chip: the float graph, weights moved by +-0.5 LSB of 16 bits",
        "noise 24-bit LSB": "no chip: the float graph, weights moved by +-0.5 LSB of 24 bits",
        "grid 16-bit / 32-bit": "the chip, 16 / 32 bits, weights on a 2^-{grid} grid (exact scale)"}


def table(record: dict) -> str:
    s = record["summary"]
    p = record["params"]
    out = ["| what | predicted class (mean ± std, min) | output spikes (matched/union) | entries |",
           "|---|---|---|---|"]
    for key, v in s.items():
        if key not in ROWS:
            continue
        out.append(f"| {ROWS[key].format(grid=p.get('grid'))} | {v['class_agreement']['mean']:.3f} ± "
                   f"{v['class_agreement']['std']:.3f}, min {v['class_agreement']['min']:.3f} | "
                   f"{v['spike_agreement']['mean']:.3f} ± {v['spike_agreement']['std']:.3f} | "
                   f"{v['entry_agreement']['mean']:.4f} ± {v['entry_agreement']['std']:.4f} |")
    out.append("")
    out.append(f"Against the float64 graph (train/nir_ref.py); mean ± std over {len(record['seeds'])} random graphs "
               f"(seeds {record['seeds']}), {p['samples']} samples x {p['steps']} steps of random events at density "
               f"{p['density']} each.")
    return "\n".join(out)


#: short names of the summary's rows, for the one-value view below (render arguments cannot hold spaces)
SHORT = {"16/32": "16-bit / 32-bit", "8/16": "8-bit / 16-bit", "noise16": "noise 16-bit LSB",
         "noise24": "noise 24-bit LSB", "grid": "grid 16-bit / 32-bit"}


def agreement(record: dict, row: str) -> str:
    """One row's predicted-class agreement as 'mean ± std' (row: one of :data:`SHORT`)."""
    if row not in SHORT:
        raise ValueError(f"agreement: row {row!r} is not one of {sorted(SHORT)}")
    v = record["summary"][SHORT[row]]["class_agreement"]
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


VIEWS = {"table": table, "agreement": agreement}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[10, 11, 12, 13, 14])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.2)
    ap.add_argument("--grid", type=int, default=14, help="the exact-scale rows' weights: multiples of 2**-GRID")
    add_record_args(ap)
    a = ap.parse_args(argv)
    params = {"samples": a.samples, "steps": a.steps, "density": a.density, "widths": WIDTHS, "lanes": 8,
              "grid": a.grid}
    rows = {k: [] for k in ROWS}
    with Recorder("nir_scnn", args=a, seeds=a.seeds, params=params) as rec:
        for seed in a.seeds:
            cache: dict = {}
            runs = [(f"{wb}-bit / {mb}-bit", lambda wb=wb, mb=mb: measure(seed, wb, mb, a.samples, a.steps,
                                                                         a.density, ref_cache=cache))
                    for wb, mb in WIDTHS]
            runs += [("noise 16-bit LSB", lambda: perturbed(seed, 1.0, a.samples, a.steps, a.density, cache)),
                     ("noise 24-bit LSB", lambda: perturbed(seed, 2.0 ** -8, a.samples, a.steps, a.density, cache)),
                     ("grid 16-bit / 32-bit", lambda: measure(seed, 16, 32, a.samples, a.steps, a.density, a.grid))]
            for key, run in runs:
                m = run()
                rec.round(seed=seed, what=key, **m)
                rows[key].append(m)
                print(f"seed {seed} {key}: class {m['class_agreement']:.3f} spikes {m['spike_agreement']:.3f} "
                      f"entries {m['entry_agreement']:.4f} ties {m['ref_ties']}", flush=True)
        for key, v in rows.items():
            rec.summary[key] = {k: spread([r[k] for r in v]) for k in KEYS}
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
