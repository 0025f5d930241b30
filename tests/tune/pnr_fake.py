"""A stand-in for :func:`hw.synth.synthesize` for the distributed build tests, synchronised by files, not clocks.

Each build touches ``<dir>/started/<build>.<pid>``, then waits until ``<dir>/go`` exists, then touches
``<dir>/done/<build>.<pid>`` and returns a report. A test can so hold every worker mid-build, kill one, and
let the others go; the files say which process started and which finished each build.

Run a real ``spikeloop`` command with it: ``python -m tests.tune.pnr_fake DIR dse --worker ...``.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def build_name(cfg, target, seed) -> str:
    return f"{target}-{cfg.structure_hash[:12]}-seed{seed}"


def install(folder: str | Path) -> None:
    import hw.synth
    from hw.synth import SynthReport
    d = Path(folder)
    for sub in ("started", "done"):
        (d / sub).mkdir(parents=True, exist_ok=True)

    def fake(cfg, target, out, weights=None, baud=115200, synth_opts="", router="router1", seed=None):
        name = build_name(cfg, target, seed)
        (d / "started" / f"{name}.{os.getpid()}").touch()
        while not (d / "go").exists():
            time.sleep(0.02)
        Path(out, target).mkdir(parents=True, exist_ok=True)
        (Path(out, target) / "top.tim").write_text("Info: fake nextpnr log\n")
        (d / "done" / f"{name}.{os.getpid()}").touch()
        return SynthReport(target=target, device="dev", layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                           weight_bits=cfg.weight_bits, logic_cells=1000 * cfg.lanes, logic_cells_total=24288,
                           luts=900 * cfg.lanes, ffs=500 * cfg.lanes, bram=1, bram_total=56, dsp=cfg.lanes,
                           fmax_mhz=100.0 + (seed or 0), clock_mhz=25.0, timing_met=True, bitstream="", seconds=0.0,
                           seed=seed)
    hw.synth.synthesize = fake


if __name__ == "__main__":
    install(sys.argv[1])
    from tune.cli import main
    sys.exit(main(sys.argv[2:]))
