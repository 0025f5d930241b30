"""The NIR paper's N-MNIST SCNN (Conv2d 2->16 5x5 s2 p1, IF; Conv2d 16->16 3x3 p1, IF; SumPool2d 2; Conv2d
16->8 3x3 p1, IF; SumPool2d 2; Flatten; Affine 128->256, IF; Affine 256->10, IF on 2x34x34) with random
weights, built directly as a NIR graph (one graph per seed), imported onto the chip at each weight/membrane
width and run on the fast model; agreement with the ORIGINAL graph run in float64 (train/nir_ref.py) on random
events shaped like the input.

    python -m bench.nir_scnn [--seeds 0 1 2] [--samples 32] [--steps 100] [--publish]
"""
from __future__ import annotations

import argparse

import numpy as np

from bench.records import Recorder, add_record_args, spread

WIDTHS = ((16, 32), (8, 16))


def measure(seed: int, weight_bits: int, membrane_bits: int, samples: int, steps: int, density: float) -> dict:
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from train import nir as tn
    from train.nir_ref import run_graph
    g = tn.scnn_nmnist_graph(seed)
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=weight_bits,
                                                          membrane_bits=membrane_bits), check_samples=0)
    layers, dt, _ = tn.parse_graph(g)
    x = np.random.default_rng(1000 + seed).random((samples, steps, cfg.layer_sizes[0])) < density
    ref = tn.reference_outputs(run_graph(g, tn.reference_inputs(cfg, x, layers[0].in_shape), dt))
    chip = make_chip(cfg, "fast")
    chip.load(w, off)
    r = chip.run(x)
    a = tn.spike_agreement(ref, r.output)
    counts = np.sort(ref.sum(1), axis=1)
    return {**a, "ref_ties": int((counts[:, -1] == counts[:, -2]).sum()),
            "cycles_mean": float(r.cycles.mean()), "layer_sizes": list(cfg.layer_sizes)}


def table(record: dict) -> str:
    s = record["summary"]
    p = record["params"]
    out = [f"| weights / membrane | predicted class | output spikes (matched/union) | entries | samples with a tie "
           f"in the float graph |", "|---|---|---|---|---|"]
    for key, v in s.items():
        out.append(f"| {key} | {v['class_agreement']['mean']:.3f} ± {v['class_agreement']['std']:.3f} | "
                   f"{v['spike_agreement']['mean']:.3f} ± {v['spike_agreement']['std']:.3f} | "
                   f"{v['entry_agreement']['mean']:.4f} ± {v['entry_agreement']['std']:.4f} | "
                   f"{v['ref_ties']['mean']:.1f} |")
    out.append("")
    out.append(f"Mean ± std over {len(record['seeds'])} random graphs (seeds {record['seeds']}), {p['samples']} "
               f"samples x {p['steps']} steps of random events at density {p['density']} each.")
    return "\n".join(out)


VIEWS = {"table": table}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--density", type=float, default=0.2)
    add_record_args(ap)
    a = ap.parse_args(argv)
    params = {"samples": a.samples, "steps": a.steps, "density": a.density, "widths": WIDTHS, "lanes": 8}
    with Recorder("nir_scnn", args=a, seeds=a.seeds, params=params) as rec:
        for wb, mb in WIDTHS:
            rows = []
            for seed in a.seeds:
                m = measure(seed, wb, mb, a.samples, a.steps, a.density)
                rec.round(seed=seed, weight_bits=wb, membrane_bits=mb, **m)
                rows.append(m)
                print(f"w{wb}/m{mb} seed {seed}: class {m['class_agreement']:.3f} spikes {m['spike_agreement']:.3f} "
                      f"entries {m['entry_agreement']:.4f} ties {m['ref_ties']}", flush=True)
            rec.summary[f"{wb}-bit / {mb}-bit"] = {k: spread([r[k] for r in rows]) for k in
                                                  ("class_agreement", "spike_agreement", "entry_agreement", "ref_ties")}
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
