"""Energy per 784-128-10 image from the RTL's activity (:func:`sim.activity.measure_activity`: block-RAM port
enables, DSP activations, register toggles counted in Amaranth simulation of every cycle), as a record.

    python -m bench.energy_per_image [--images N] [--name NAME] [--publish]

Network, inputs and weights as ``bench/spiker_compare.py`` (784-128-10, 8 lanes, w8/m16, 25 steps, MNIST-like
inputs of mean density 0.17, the seeded sample network). Run it on two commits to compare an RTL change (the
record carries the commit). Dynamic energy only; static power is the part's (``sim.activity.PARTS``)."""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench.records import Recorder, add_record_args
# design_status: whether a record of this bench is of today's RTL, as spiker_compare's (the same network and board top)
from bench.spiker_compare import CFG, DENSITY, RTL_TARGET, design_status, mnist_like, rtl_hash  # noqa: F401
from sim.activity import PARTS, energy_per_sample, measure_activity
from sim.sample import random_weights


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1, help="images simulated (1..20)")
    ap.add_argument("--name", default="energy_per_image", help="record name")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if not 1 <= a.images <= 20:
        ap.error(f"--images={a.images}: allowed range is 1..20")
    x = mnist_like(a.images)
    w = random_weights(CFG, 0, DENSITY)
    params = {"network": "784-128-10", "lanes": 8, "steps": x.shape[1], "images": a.images,
              "input_density": float(x.mean()), "design_hash": rtl_hash()}
    with Recorder(a.name, args=a, seeds=[0], params=params) as rec:
        t0 = time.time()
        act = measure_activity(CFG, w, x)
        for part in ("ecp5-25k", "ice40-up5k"):
            e = energy_per_sample(act, PARTS[part])
            ports = {name: {"reads": float(np.mean(v["reads"])), "writes": float(np.mean(v["writes"])),
                            "width": v["width"]} for name, v in act.bram.items()}
            for i in range(a.images):
                rec.round(part=part, image=i, cycles=float(act.cycles[i]),
                          **{f"{k}_uj": float(v[i]) / 1e6 for k, v in e.items()},
                          dynamic_uj=float(sum(v[i] for v in e.values())) / 1e6)
            rec.summary[part] = {**{f"{k}_uj": float(np.mean(v)) / 1e6 for k, v in e.items()},
                                 "dynamic_uj": float(np.mean(sum(e.values()))) / 1e6,
                                 "dynamic_uj_std": float(np.std(sum(e.values()))) / 1e6,
                                 "cycles": float(np.mean(act.cycles)), "ports": ports}
        rec.summary["seconds"] = time.time() - t0
    for part in ("ecp5-25k", "ice40-up5k"):
        print(part, {k: round(v, 2) for k, v in rec.summary[part].items() if k.endswith("_uj")})


if __name__ == "__main__":
    main()
