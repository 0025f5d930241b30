"""Energy per image of the MNIST-sized network against Spiker+ (arXiv 2401.01141: 780 us, 180 mW per MNIST
image), at our estimate and at equal static power.

    python bench/spiker_compare.py SYNTH_CACHE [out.json] [--rtl N] [--clock-mhz F]

Network 784-128-10, 8 lanes, w8/m16, 25 steps; weights are the seeded sample network (sim.sample, not
trained); inputs are MNIST-like: scikit-learn's 8x8 digits upsampled to 28x28 (bilinear) and rate-coded with a
per-pixel probability scaled so the mean input density is ~0.17. Cycles from the fast model (cycle-exact);
the clock is the post-route Fmax of that structure on the ECP5-25F from the DSE cache (``spikeloop dse --sizes
784,128,10 --lanes 8 --weight-bits 8 --target ecp5-25k``). Dynamic energy from the fast model's counters x
``sim.activity.structural_profile`` (and, with ``--rtl N``, from the RTL's activity on the first N images as a
check, both parts: ~15 min per image); static power from ``sim.activity.ECP5_25K`` (assumed, see there).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from hw.config import ChipConfig
from sim.activity import ECP5_25K, PARTS, design_facts, estimate_energy, measure_activity, structural_profile
from sim.chip import make_chip
from sim.power import performance
from sim.sample import random_weights

CFG = ChipConfig(layer_sizes=(784, 128, 10), lanes=8, weight_bits=8, membrane_bits=16)
STEPS, DENSITY, IMAGES = 25, 0.17, 20
SPIKER = {"latency_us": 780.0, "power_mw": 180.0}


def mnist_like(n: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    img = load_digits().images[:n] / 16.0
    big = np.clip(np.stack([zoom(i, 28 / 8, order=1) for i in img]), 0, 1).reshape(n, 784)
    p = np.clip(big * DENSITY / big.mean(), 0, 1)
    return np.random.default_rng(seed).random((n, STEPS, 784)) < p[:, None, :]


def main(cache: str, out: str | None = None, rtl: int = 0, clock_mhz: float | None = None,
         clock_note: str | None = None) -> dict:
    """``clock_mhz``: use this clock (stated in the output as not measured, or as ``clock_note`` says) when the
    structure has no synthesis record in ``cache`` yet; without it, synthesise (cached)."""
    from tune.dse import cache_path, synth_cached
    if clock_mhz and not cache_path(Path(cache), CFG, "ecp5-25k").exists():
        rec = {"status": "ok", "fmax_mhz": clock_mhz, "logic_cells": None, "bram": None, "bram_total": None,
               "dsp": None,
               "clock_note": clock_note or f"{clock_mhz} MHz ASSUMED (no post-route Fmax of this structure)"}
    else:
        rec = synth_cached(CFG, "ecp5-25k", Path(cache))
    assert rec["status"] == "ok", rec
    fmax = rec["fmax_mhz"]
    x = mnist_like(IMAGES)
    w = random_weights(CFG, 0, DENSITY)
    chip = make_chip(CFG)
    chip.load(w)
    r = chip.run(x)
    prof = structural_profile(CFG, "ecp5-25k", clock_mhz=fmax)
    perf = performance(r, prof)
    res = {"network": "784-128-10", "lanes": 8, "steps": STEPS, "images": IMAGES,
           "input_density": float(x.mean()), "fmax_mhz": fmax, "logic_cells": rec["logic_cells"],
           "bram": rec["bram"], "bram_total": rec["bram_total"], "dsp": rec["dsp"], "cycles": perf.cycles,
           "clock_note": rec.get("clock_note", "post-route Fmax (nextpnr)"), "latency_us": perf.latency_us, "dynamic_uj": perf.dynamic_energy_nj / 1000,
           "spiker": SPIKER | {"energy_uj": SPIKER["power_mw"] * SPIKER["latency_us"] / 1000,
                               "fps_per_watt": 1e9 / (SPIKER["power_mw"] * SPIKER["latency_us"])}}
    if rtl:                     # the RTL's activity on the first images, against the structural counter model
        act = measure_activity(CFG, w, x[:rtl])
        counters = {k: v[:rtl] for k, v in r.counters.items()}
        res["rtl_check"] = {"images": rtl}
        for part in PARTS:
            e = estimate_energy(act, part)
            fast = performance(counters, structural_profile(CFG, part, clock_mhz=fmax)).dynamic_energy_nj
            res["rtl_check"][part] = {"rtl_dynamic_uj": e.dynamic_nj / 1000, "fast_dynamic_uj": fast / 1000,
                                      "rel_error": fast / e.dynamic_nj - 1,
                                      "breakdown_uj": {k[:-3]: v / 1000 for k, v in e.to_dict().items()
                                                       if k.endswith("_nj")}}
    facts = design_facts(CFG, ECP5_25K.bram_slice_bits)
    res["weight_reads_gated"] = facts.weight_reads_gated
    if not facts.weight_reads_gated:
        # what-if (not implemented): the sequencer drives WeightMemory.read.en, so that a weight bank reads
        # only on the cycles that issue a weight read (today the addressed bank reads on every busy cycle)
        word_pj = facts.weight_word_slices * ECP5_25K.bram_access_pj
        gated = performance(r, replace(prof, cycle_pj=prof.cycle_pj - word_pj,
                                       weight_read_pj=prof.weight_read_pj + word_pj))
        res["what_if_reads_on_issue"] = {"weight_word_pj": word_pj, "dynamic_uj": gated.dynamic_energy_nj / 1000}
    rows = []
    for label, static in (("ours (ECP5 static 30 mW, assumed)", ECP5_25K.static_mw),
                          ("equal static: all 180 mW of Spiker+ as static", SPIKER["power_mw"])):
        energy = res["dynamic_uj"] + static * res["latency_us"] / 1000
        rows.append({"case": label, "static_mw": static, "energy_uj": energy, "fps_per_watt": 1e6 / energy,
                     "vs_spiker_energy": res["spiker"]["energy_uj"] / energy})
    res["comparison"] = rows
    print(json.dumps(res, indent=1))
    if out:
        Path(out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("cache")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--rtl", type=int, default=0, help="also simulate the RTL on this many images")
    ap.add_argument("--clock-mhz", type=float, help="clock to assume if the structure is not synthesised yet")
    ap.add_argument("--clock-note", help="where --clock-mhz comes from (default: stated as assumed)")
    a = ap.parse_args()
    main(a.cache, a.out, a.rtl, a.clock_mhz, a.clock_note)
