"""Resource / Fmax table: the default network and lanes / weight-bit variants on both targets, the MNIST-sized
rows and the digits conv chip, each over placement seeds.

    python -m bench.synth_table --rows 9 --seeds 1-5 --publish    # one row (0-based), five placement seeds
    python -m bench.synth_table --list                            # the rows

Each row is one ``bench/synth_seeds.py`` run (a record ``synth_seeds_<target>_<network>_l<lanes>[_w<bits>]``
with every build as a round); docs/synth_table.md renders the rows that have a record with
``<!-- render FIRST table OTHER ... -->``. Times on this 2-core machine: the UP5K rows ~2 min per build, the
default network on the ECP5 ~5-10 min, the MNIST-sized ECP5 rows 30-50 min per build (routing ~50 block RAMs).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import sys
from pathlib import Path

from bench import synth_seeds
from bench.records import add_record_args
from hw.config import ChipConfig

ROOT = Path(__file__).resolve().parents[1]
CONV_DIGITS = ROOT / "docs" / "experiments" / "conv_digits.toml"

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
#: the digits conv chip (issue #9), from its study config
CONV = [("ecp5-25k", CONV_DIGITS), ("ice40-up5k", CONV_DIGITS)]


def row_args(i: int) -> list[str]:
    """synth_seeds arguments of row ``i``."""
    if i < len(RUNS):
        target, cfg = RUNS[i]
        args = ["--target", target, "--sizes", ",".join(map(str, cfg.layer_sizes)), "--lanes", str(cfg.lanes),
                "--weight-bits", str(cfg.weight_bits)]
        return args + ["--router", "router2" if (target, cfg) in MNIST else "router1"]
    target, path = CONV[i - len(RUNS)]
    return ["--target", target, "--config", str(path.relative_to(ROOT))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", help="comma-separated 0-based row numbers (default: all; see --list)")
    ap.add_argument("--seeds", default="1-5", help="placement seeds per row, e.g. 1-5 or 1,4,9 (default 1-5)")
    ap.add_argument("--jobs", default="2", help="builds in parallel (default 2)")
    ap.add_argument("--list", action="store_true", help="print the rows and exit")
    add_record_args(ap)
    a = ap.parse_args(argv)
    n = len(RUNS) + len(CONV)
    if a.list:
        for i in range(n):
            print(i, " ".join(row_args(i)))
        return 0
    try:
        rows = [int(v) for v in a.rows.split(",")] if a.rows else list(range(n))
    except ValueError:
        print(f"synth_table: --rows {a.rows!r}: expected row numbers like 0,4 (0 to {n - 1})", file=sys.stderr)
        return 2
    if any(not 0 <= i < n for i in rows):
        print(f"synth_table: --rows {a.rows!r}: allowed row numbers are 0 to {n - 1}", file=sys.stderr)
        return 2
    rec = (["--publish"] if a.publish else []) + (["--out", str(a.out)] if a.out else [])
    worst = 0
    for i in rows:
        worst = max(worst, synth_seeds.main(row_args(i) + ["--seeds", a.seeds, "--jobs", a.jobs,
                                                           "--build-dir", f"runs/synth_table/{i}"] + rec))
    return worst


if __name__ == "__main__":
    sys.exit(main())
