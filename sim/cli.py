"""``spikeloop`` — the one command in front of hw, sim, train and tune."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hw.config import ChipConfig, ConfigError


def load_config(path: str | None, overrides: argparse.Namespace) -> ChipConfig:
    """A ChipConfig from a JSON/TOML file (optional) plus command-line overrides."""
    d: dict = {}
    if path:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"--config {path}: no such file")
        if p.suffix == ".toml":
            import tomllib
            d = tomllib.loads(p.read_text())
            d = d.get("chip", d)
        else:
            d = json.loads(p.read_text())
    for key in ("layer_sizes", "lanes", "weight_bits", "membrane_bits", "beta", "threshold", "reset"):
        v = getattr(overrides, key, None)
        if v is not None:
            d[key] = v
    return ChipConfig.from_dict(d)


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes {text!r}: expected comma-separated integers like 64,128,10")


def _chip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="chip config file (.json or .toml with a [chip] table)")
    p.add_argument("--sizes", dest="layer_sizes", type=_sizes, help="layer sizes, e.g. 64,128,64,10")
    p.add_argument("--lanes", type=int)
    p.add_argument("--weight-bits", dest="weight_bits", type=int)
    p.add_argument("--membrane-bits", dest="membrane_bits", type=int)
    p.add_argument("--beta", type=float)
    p.add_argument("--threshold", type=int, help="threshold in membrane LSBs")
    p.add_argument("--reset", choices=["subtract", "zero"])


def cmd_run(a: argparse.Namespace) -> int:
    from sim.chip import make_chip
    from sim.model import counter_names
    from sim.sample import random_spikes, random_weights
    cfg = load_config(a.config, a)
    weights = random_weights(cfg, a.seed, a.density)
    x = random_spikes(cfg, a.batch, a.steps, a.density, a.seed + 1)
    chip = make_chip(cfg, a.backend)
    chip.load(weights)
    t0 = time.perf_counter()
    r = chip.run(x)
    dt = time.perf_counter() - t0
    print(f"chip {cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits}/m{cfg.membrane_bits} "
          f"beta={[round(b, 4) for b in cfg.beta_effective]} threshold={list(cfg.threshold)} reset={cfg.reset}")
    print(f"backend {a.backend}: {a.batch} samples x {a.steps} steps at input density {a.density} in {dt:.3f} s")
    counts = r.output.sum(axis=1)
    for b in range(a.batch):
        print(f"sample {b}: output spike counts {counts[b].tolist()}  predicted class {int(counts[b].argmax())}  "
              f"cycles {int(r.cycles[b])}  latency {r.cycles[b] / a.clock_mhz:.1f} us @ {a.clock_mhz:g} MHz")
    print("activity per sample (mean over batch):")
    for name in counter_names(cfg):
        print(f"  {name:15s} {r.counters[name].mean():12.1f}")
    ideal = r.counters["synops"].sum() / cfg.lanes
    print(f"utilisation (synops/lanes / cycles): {ideal / r.cycles.sum():.3f}")
    return 0


def cmd_verilog(a: argparse.Namespace) -> int:
    from hw.export import export_design
    cfg = load_config(a.config, a)
    weights = None
    if a.weights:
        with np.load(a.weights) as z:
            weights = [z[f"w{l}"] for l in range(cfg.num_layers)]
    paths = export_design(cfg, Path(a.out), weights)
    for kind, p in paths.items():
        print(f"{kind:18s} {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spikeloop", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a sample network on the simulated chip; print outputs, cycles, activity")
    _chip_args(p)
    p.add_argument("--backend", default="fast", choices=["fast", "amaranth", "icarus", "verilator"])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--density", type=float, default=0.1, help="input spike probability per neuron and step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("verilog", help="write Verilog, memory images, config and port map for a chip")
    _chip_args(p)
    p.add_argument("--weights", help=".npz with integer arrays w0..w{L-1} (e.g. from a trained model)")
    p.add_argument("--out", default="out/verilog")
    p.set_defaults(func=cmd_verilog)
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return a.func(a)
    except ConfigError as e:
        print(f"spikeloop: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
