"""Resource / Fmax table for the README: default network and lanes / weight-bit variants, both targets.

    python bench/synth_table.py      # several minutes (YoWASP tools); reports in runs/synth_table/
"""
from __future__ import annotations

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
]


def main() -> None:
    print("| target | network | lanes | weight bits | logic cells | LUT4 | FF | BRAM | DSP | Fmax (MHz) | board clock met |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for i, (target, cfg) in enumerate(RUNS):
        net = ",".join(map(str, cfg.layer_sizes))
        try:
            r = synthesize(cfg, target, f"runs/synth_table/{i}")
            print(f"| {target} | {net} | {cfg.lanes} | {cfg.weight_bits} | {r.logic_cells}/{r.logic_cells_total} | "
                  f"{r.luts} | {r.ffs} | {r.bram}/{r.bram_total} | {r.dsp} | {r.fmax_mhz:.2f} | "
                  f"{'yes' if r.timing_met else 'no'} ({r.clock_mhz:g} MHz) |", flush=True)
        except SynthError as e:
            print(f"| {target} | {net} | {cfg.lanes} | {cfg.weight_bits} | {str(e).split(': ', 1)[1][:110]} |||||||",
                  flush=True)


if __name__ == "__main__":
    main()
