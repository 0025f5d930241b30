"""Resource / Fmax table for the README: default network and lanes / weight-bit variants, both targets.

    python bench/synth_table.py               # about an hour on 2 cores (YoWASP tools); reports in runs/synth_table/
    python bench/synth_table.py --rows 0,4    # only these rows (0-based)

The MNIST-sized ECP5 rows (784-128-10) take 30-50 minutes each on this 2-core machine (routing ~50 block RAMs);
the UP5K rows with SPRAM weights about 2 minutes.
"""
from __future__ import annotations

import argparse

from hw.config import ChipConfig
from hw.synth import SynthError, synthesize

RUNS = [
    ("ice40-up5k", ChipConfig(layer_sizes=(30, 16, 2), lanes=4)),
    ("ice40-up5k", ChipConfig(layer_sizes=(30, 16, 2), lanes=8)),
    ("ice40-up5k", ChipConfig(layer_sizes=(30, 16, 2), lanes=4, weight_bits=4)),
    ("ice40-up5k", ChipConfig()),
    ("ecp5-25k", ChipConfig()),
    ("ecp5-25k", ChipConfig(lanes=16)),
    ("ecp5-25k", ChipConfig(weight_bits=4)),
    # weights in the UP5K's SPRAM (hw.core.WeightMemory.bank_kind): the default network and 784-128-10 at 4 lanes
    ("ice40-up5k", ChipConfig(lanes=4)),
    ("ice40-up5k", ChipConfig(layer_sizes=(784, 128, 10), lanes=4)),
]
MNIST = [("ecp5-25k", ChipConfig(layer_sizes=(784, 128, 10), lanes=lanes)) for lanes in (8, 16, 32)] + \
    [("ecp5-45k", ChipConfig(layer_sizes=(784, 128, 10), lanes=32))]
RUNS += MNIST        # routed with router2: they fill the block RAMs (see hw.synth.ROUTERS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", help="comma-separated 0-based row numbers (default: all)")
    a = ap.parse_args()
    rows = [int(v) for v in a.rows.split(",")] if a.rows else range(len(RUNS))
    print("| target | network | lanes | weight bits | logic cells | LUT4 | FF | BRAM | DSP | Fmax (MHz) | board clock met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i in rows:
        target, cfg = RUNS[i]
        net = ",".join(map(str, cfg.layer_sizes))
        try:
            r = synthesize(cfg, target, f"runs/synth_table/{i}",
                           router="router2" if (target, cfg) in MNIST else "router1")
            print(f"| {target} | {net} | {cfg.lanes} | {cfg.weight_bits} | {r.logic_cells}/{r.logic_cells_total} | "
                  f"{r.luts} | {r.ffs} | {r.bram}/{r.bram_total} | {r.dsp} | {r.fmax_mhz:.2f} | "
                  f"{'yes' if r.timing_met else 'no'} ({r.clock_mhz:g} MHz) |", flush=True)
        except SynthError as e:
            why = str(e).split(": ", 1)[1]
            why = why.split("; ERROR")[0] if why.startswith("needs") else why[:110]    # the resources, whole
            print(f"| {target} | {net} | {cfg.lanes} | {cfg.weight_bits} | {why} |||||||", flush=True)


if __name__ == "__main__":
    main()
