"""``spikeloop run``: a sample network on a simulated (or real) chip — outputs, cycles and activity."""
from __future__ import annotations

import argparse
import sys
import time

from hw.cli import chip_arguments, chip_overrides, check_writable, load_chip, number, writing
from hw.config import ConfigError
from sim.chip import BACKENDS

#: backends that can write waveforms (``--vcd``)
VCD_BACKENDS = ("amaranth", "icarus", "verilator")


def cmd_run(a: argparse.Namespace) -> int:
    from sim.chip import check_memory, make_chip
    from sim.sample import random_spikes, random_weights
    cfg = load_chip(a.config, chip_overrides(a))
    check_memory(cfg, a.batch, a.steps)                 # refuse before the weights are even drawn
    if a.raster:
        from sim.plots import FIGURE_SUFFIXES
        check_writable(a.raster, "--raster", is_dir=False, suffixes=FIGURE_SUFFIXES)
    kwargs = {"port": a.port, "baud": a.baud} if a.backend == "board" else {}
    if a.vcd:
        if a.backend not in VCD_BACKENDS:
            raise ConfigError(f"--vcd: backend {a.backend} has no waveforms; use --backend "
                              f"{' / '.join(VCD_BACKENDS)}")
        check_writable(a.vcd, "--vcd", is_dir=False)
        kwargs |= {"vcd": a.vcd, "vcd_signals": a.vcd_signals, "vcd_steps": a.vcd_steps}
    for flag, value in (("--vcd-signals", a.vcd_signals), ("--vcd-steps", a.vcd_steps)):
        if value is not None and not a.vcd:
            raise ConfigError(f"{flag}: applies to the waveforms; give --vcd FILE (backends "
                              f"{' / '.join(VCD_BACKENDS)})")
    if a.vcd_steps is not None and a.vcd_steps[0] >= a.steps:
        raise ConfigError(f"--vcd-steps {a.vcd_steps[0]}:...: the run has {a.steps} steps (0..{a.steps - 1}); "
                          f"the window must start below {a.steps}")
    chip = make_chip(cfg, a.backend, **kwargs)
    weights = random_weights(cfg, a.seed, a.density)
    x = random_spikes(cfg, a.batch, a.steps, a.density, a.seed + 1)
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
    for name in cfg.counter_names:
        print(f"  {name:15s} {r.counters[name].mean():12.1f}")
    ideal = r.counters["synops"].sum() / cfg.lanes
    print(f"utilisation (synops/lanes / cycles): {ideal / r.cycles.sum():.3f}")
    from sim.metrics import chip_metrics, metrics_table, neurobench_metrics
    nb = None
    if not a.no_neurobench:
        try:
            nb = neurobench_metrics(cfg, weights, x)
        except RuntimeError as e:                     # e.g. out of memory inside NeuroBench: the chip's run stands
            print(f"spikeloop: {e}; its column is left empty (--no-neurobench skips it)", file=sys.stderr)
    print("metrics per sample (chip vs NeuroBench 2.x on the snnTorch mirror of the same weights and inputs):")
    print("\n".join(metrics_table(chip_metrics(cfg, weights, x, r), nb)))
    if a.vcd:
        print(f"waveforms: {a.vcd} (open with gtkwave or surfer)")
    if a.raster:
        from sim.plots import raster
        with writing(a.raster, "--raster"):
            print(f"raster: {raster(r, a.raster)}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("run", help="run a sample network on the simulated chip; print outputs, cycles, activity")
    chip_arguments(p)
    p.add_argument("--backend", default="fast", choices=BACKENDS)
    p.add_argument("--port", help="serial port of the board (backend board)")
    p.add_argument("--baud", type=number(int, 300, 12_000_000), default=115200)
    p.add_argument("--batch", type=number(int, 1, 1_000_000), default=4, help="samples (1..1000000)")
    p.add_argument("--steps", type=number(int, 1, 100_000), default=20, help="time steps (1..100000)")
    p.add_argument("--density", type=number(float, 0, 1), default=0.1,
                   help="input spike probability per neuron and step (0..1)")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0)
    p.add_argument("--clock-mhz", dest="clock_mhz", type=number(float, 0, 10_000, open_low=True), default=100.0,
                   help="clock for the latency figures, MHz (> 0)")
    p.add_argument("--raster", help="write a spike raster of sample 0 to this PNG (or .pdf / .svg)")
    p.add_argument("--vcd", help=f"write the core's waveforms to this VCD file ({', '.join(VCD_BACKENDS)} backends)")
    from sim.vcd import signal_patterns, step_window
    p.add_argument("--vcd-signals", dest="vcd_signals", type=signal_patterns, metavar="PATTERN[,PATTERN]",
                   help="only the signals whose name or dotted path matches one of these glob patterns, "
                        "e.g. busy,events_*,*.sequencer.*")
    p.add_argument("--vcd-steps", dest="vcd_steps", type=step_window, metavar="A:B",
                   help="only time steps A..B-1 of each sample (0-based; A: to the end)")
    p.add_argument("--no-neurobench", dest="no_neurobench", action="store_true",
                   help="skip the NeuroBench metrics (they run an snnTorch mirror of the network)")
    p.set_defaults(func=cmd_run)
