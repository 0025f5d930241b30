"""``spikeloop run``: a sample network on a simulated (or real) chip — outputs, cycles and activity."""
from __future__ import annotations

import argparse
import sys
import time

import json
from pathlib import Path

import numpy as np

from hw.cli import (chip_arguments, check_writable, load_model_arguments, model_argument, model_paths,
                    nonempty, number, offsets_text, writing)
from hw.config import ConfigError
from sim.chip import BACKENDS

#: backends that can write waveforms (``--vcd``)
VCD_BACKENDS = ("amaranth", "icarus", "verilator")


def load_spikes(path: str, cfg) -> tuple[np.ndarray, np.ndarray | None]:
    """Input spikes ``x`` (or ``spikes``) ``(B, T, N0)`` and optional labels ``y`` (or ``labels``) from an .npz.
    A chip with an image input also takes ``(B, T, C, H, W)`` (NIR's and torch's layout) and numbers it HWC."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--spikes {path}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            xk = next((k for k in ("x", "spikes") if k in z.files), None)
            if xk is None:
                raise ConfigError(f"--spikes {path}: needs an array 'x' (or 'spikes') of shape (batch, steps, "
                                  f"{cfg.layer_sizes[0]}); has {z.files}")
            x = z[xk]
            yk = next((k for k in ("y", "labels") if k in z.files), None)
            y = z[yk] if yk else None
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"--spikes {path}: not a readable .npz ({type(e).__name__})")
    shape = tuple(cfg.input_shape or ())
    if len(shape) == 3 and x.ndim in (4, 5) and tuple(x.shape[-3:]) == shape:
        # (batch, steps, C, H, W) as NIR, torch and tonic shape an image: the chip numbers its inputs HWC
        # (docs/chip.md), so reorder; a flat (batch, steps, N0) is taken as HWC already
        x = x[None] if x.ndim == 4 else x
        x = np.ascontiguousarray(x.transpose(0, 1, 3, 4, 2)).reshape(x.shape[0], x.shape[1], -1)
    elif len(shape) == 3 and x.ndim in (4, 5):
        raise ConfigError(f"--spikes {path}: an image input must be (batch, steps, {', '.join(map(str, shape))}) "
                          f"(C, H, W) or flat (batch, steps, {cfg.layer_sizes[0]}) in HWC order, got {x.shape}")
    x = cfg.check_spikes(x) if x.ndim == 3 else cfg.check_spikes(x[None] if x.ndim == 2 else x)
    if y is not None:
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise ConfigError(f"--spikes {path}: labels 'y' must be {len(x)} integers (one per sample), got "
                              f"{y.dtype} x {len(y)}")
    return x, y


def _model_inputs(a: argparse.Namespace, cfg):
    """``(x, y, description)`` for ``run``: --spikes, a dataset (a training run's own test split by default),
    or random spikes."""
    train_config = None
    if a.model:
        cpath, _ = model_paths(a.model)
        train_config = json.loads(cpath.read_text()).get("train_config") or None
    if a.spikes:
        if a.dataset:
            raise ConfigError("--spikes: give either --spikes or --dataset, not both")
        try:
            x, y = load_spikes(a.spikes, cfg)
            return x, y, f"{a.spikes}"
        except ConfigError as e:
            if not (train_config and train_config.get("bias_input")) or cfg.input_shape is not None:
                raise
            wrong = e
        # a run trained with the always-on bias input (the last input address, train.common.with_bias_channel):
        # a file of the dataset's features gets it, as the run's own test split does
        try:
            x, y = load_spikes(a.spikes, cfg.replace(layer_sizes=(cfg.layer_sizes[0] - 1,) + cfg.layer_sizes[1:]))
        except ConfigError:
            raise wrong from None
        x = np.concatenate([x, np.ones(x.shape[:2] + (1,), bool)], axis=2)
        return x, y, f"{a.spikes} + the run's always-on bias input"
    if a.dataset or train_config:
        if a.dataset_inputs is None:
            raise ConfigError("--dataset: datasets need the full spikeloop command (tune.cli)")
        x, y, where = a.dataset_inputs(train_config, a.dataset, a.data_path, a.steps_given, a.seed)
        if x.shape[2] != cfg.layer_sizes[0]:            # before the chip is built: named by the flag, not "spikes"
            raise ConfigError(f"{f'--dataset {a.dataset}' if a.dataset else '--model'}: {where} has "
                              f"{x.shape[2]} input neurons, the chip {cfg.layer_sizes[0]} (layer_sizes[0]); "
                              f"score a chip on a dataset of its input size")
        if a.limit:
            x, y = x[:a.limit], y[:a.limit]
        return x, y, where
    return None, None, ""


def _ignored_flags(a: argparse.Namespace, programme: bool, inputs: str | None) -> None:
    """Refuse flags this run would not use (a flag silently dropped is a wrong run); ``inputs`` names where
    the input spikes come from (None: random spikes)."""
    for flag, v in (("--port", a.port), ("--baud", a.baud)):
        if v is not None and a.backend != "board":
            raise ConfigError(f"{flag}: the serial link of a board; give --backend board (not {a.backend})")
    if a.limit is not None and a.spikes:
        raise ConfigError("--limit: applies to a dataset's test split; --spikes runs every sample in its file")
    if a.steps is not None and a.spikes:
        raise ConfigError("--steps: the --spikes file sets the time steps (its array is batch x steps x inputs)")
    if a.batch is not None and inputs:
        raise ConfigError(f"--batch: {inputs} sets the samples; "
                          f"{'cut the file' if a.spikes else 'give --limit'} to run fewer")
    if a.density is not None and programme and inputs:
        raise ConfigError(f"--density: draws random weights and input spikes; this run has its weights and "
                          f"{inputs} for inputs")


def cmd_run(a: argparse.Namespace) -> int:
    from sim.chip import check_memory, make_chip
    from sim.sample import random_spikes, random_weights
    programme = bool(a.model or a.weights)
    _ignored_flags(a, programme, "--spikes" if a.spikes else "--dataset" if a.dataset else None)
    cfg, weights, offsets, source = load_model_arguments(a, need_weights=False)
    a.steps_given = a.steps
    a.steps = a.steps or 20
    x, y, where = _model_inputs(a, cfg)
    if x is None and a.limit is not None:
        raise ConfigError("--limit: applies to a dataset's test split; this run has random input spikes "
                          "(give --dataset, or --model of a training run)")
    if x is not None:
        if not (a.spikes or a.dataset):                 # a training run's own test split
            _ignored_flags(a, programme, f"the training run's test split ({where})")
        a.batch, a.steps = x.shape[0], x.shape[1]
    a.batch = a.batch or 4
    a.density = 0.1 if a.density is None else a.density
    check_memory(cfg, a.batch, a.steps)                 # refuse before the weights are even drawn
    if cfg.touched and a.steps > cfg.max_steps:         # its step stamps: refused before a backend is built
        given = f"--steps {a.steps}" if x is None else f"{where}: {a.steps} steps per sample"
        raise ConfigError(f"{given}: a chip with update='touched' runs at most max_steps={cfg.max_steps} steps "
                          f"(--max-steps, 1..65535)")
    if a.raster:
        from sim.plots import FIGURE_SUFFIXES
        check_writable(a.raster, "--raster", is_dir=False, suffixes=FIGURE_SUFFIXES)
    kwargs = {"port": a.port, "baud": a.baud or 115200} if a.backend == "board" else {}
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
    if weights is None:
        weights = random_weights(cfg, a.seed, a.density)
    if x is None:
        x = random_spikes(cfg, a.batch, a.steps, a.density, a.seed + 1)
        where = f"random spikes at input density {a.density}"
    chip.load(weights, offsets)
    t0 = time.perf_counter()
    r = chip.run(x)
    dt = time.perf_counter() - t0
    print(f"chip {cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits}/m{cfg.membrane_bits} "
          f"beta={[round(b, 4) for b in cfg.beta_effective]} threshold={list(cfg.threshold)} reset={cfg.reset}"
          + (f" (from {source}; offsets {offsets_text(offsets)})" if programme else " (random weights)"))
    print(f"backend {a.backend}: {a.batch} samples x {a.steps} steps of {where} in {dt:.3f} s")
    counts = r.output.sum(axis=1)
    pred = counts.argmax(axis=1)
    for b in range(min(a.batch, 16)):
        print(f"sample {b}: output spike counts {counts[b].tolist()}  predicted class {int(pred[b])}"
              + (f" (label {int(y[b])})" if y is not None else "") +
              f"  cycles {int(r.cycles[b])}  latency {r.cycles[b] / a.clock_mhz:.1f} us @ {a.clock_mhz:g} MHz")
    if a.batch > 16:
        print(f"... ({a.batch - 16} more samples)")
    lat = r.cycles / a.clock_mhz
    print(f"latency per sample: {lat.mean():.1f} ± {lat.std():.1f} us (min {lat.min():.1f}, max {lat.max():.1f}) "
          f"@ {a.clock_mhz:g} MHz; cycles {r.cycles.mean():.1f} ± {r.cycles.std():.1f}")
    if y is not None:
        print(f"accuracy {float((pred == y).mean()):.4f} ({int((pred == y).sum())}/{len(y)}; class = output neuron "
              "with most spikes, ties to the lowest index)")
    print("activity per sample (mean over batch):")
    for name in cfg.counter_names:
        print(f"  {name:15s} {r.counters[name].mean():12.1f}")
    ideal = r.counters["synops"].sum() / cfg.lanes
    print(f"utilisation (synops/lanes / cycles): {ideal / r.cycles.sum():.3f}")
    from sim.metrics import chip_metrics, metrics_table, neurobench_metrics
    nb = None
    if not a.no_neurobench:
        try:
            nb = neurobench_metrics(cfg, weights, x, offsets)
        except RuntimeError as e:                     # e.g. out of memory inside NeuroBench: the chip's run stands
            print(f"spikeloop: {e}; its column is left empty (--no-neurobench skips it)", file=sys.stderr)
    print("metrics per sample (chip vs NeuroBench 2.x on the snnTorch mirror of the same weights and inputs):")
    pooled = any(cfg.pool_area(l) > 1 for l in range(cfg.num_layers))
    print("\n".join(metrics_table(chip_metrics(cfg, weights, x, r, offsets), nb, pooled)))
    if a.vcd:
        print(f"waveforms: {a.vcd} (open with gtkwave or surfer)")
    if a.raster:
        from sim.plots import raster
        with writing(a.raster, "--raster"):
            print(f"raster: {raster(r, a.raster)}")
    return 0


RUN_EXAMPLES = """examples:
  spikeloop run --sizes 64,32,10 --lanes 4                    # a fully-connected chip
  spikeloop run --config chip.toml                            # a conv chip: a TOML with a [chip] table, e.g.
      [chip]
      input_shape = [1, 8, 8]                                 # C, H, W
      layers = [{kind = "conv", channels = 8, kernel = 3, padding = 1},
                {kind = "pool", size = 2}, {kind = "fc", size = 10}]
  spikeloop run --config out/config.json --weights out/weights.npz   # an imported or exported programme
  spikeloop run --backend icarus --sizes 16,8,4 --steps 5 --vcd out.vcd   # the RTL, with waveforms

docs: docs/guides/simulator.md (backends), docs/guides/training.md#convolutional-layers (conv chips)"""


def register(sub) -> None:
    p = sub.add_parser("run", help="run a network on the simulated chip (random, or a trained/imported --model); "
                                   "print outputs, accuracy, cycles, latency, activity",
                       epilog=RUN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    chip_arguments(p)
    model_argument(p)
    p.add_argument("--weights", type=nonempty, help=".npz with integer arrays w0..w{L-1} (and o0.. offsets); its "
                                                    "chip config is --config, or RUN.json / config.json beside it")
    p.add_argument("--spikes", help=".npz of input spikes: x (batch, steps, N0) 0/1, optional labels y; a conv "
                   "chip's x may be (batch, steps, C, H, W) (flat N0 is HWC order); a training run with the bias "
                   "input takes N0 - 1 features and adds it", type=nonempty)
    p.add_argument("--dataset", help="score on this dataset's test split (a training run's own by default)",
                   type=nonempty)
    p.add_argument("--data-path", dest="data_path", help="local files of datasets that need them (nmnist, svhn)",
                   type=nonempty)
    p.add_argument("--limit", type=number(int, 1), help="score only the first LIMIT test samples (>= 1)")
    p.add_argument("--backend", default="fast", choices=BACKENDS)
    p.add_argument("--port", type=nonempty, help="serial port of the board (backend board)")
    p.add_argument("--baud", type=number(int, 300, 12_000_000),
                   help="UART rate of the board (backend board; 300..12000000, default 115200)")
    p.add_argument("--batch", type=number(int, 1, 1_000_000),
                   help="random input samples (1..1000000; default 4); not with --spikes or a dataset")
    p.add_argument("--steps", type=number(int, 1, 100_000), help="time steps (1..100000; default 20, or the "
                                                                    "training run's)")
    p.add_argument("--density", type=number(float, 0, 1),
                   help="probability of a random input spike per neuron and step, and of a non-zero random "
                        "weight (0..1; default 0.1); not when the run has both weights and inputs")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0,
                   help="seed of the random inputs and weights (0..2^32-1; default 0)")
    p.add_argument("--clock-mhz", dest="clock_mhz", type=number(float, 0, 10_000, open_low=True), default=100.0,
                   help="clock for the latency figures, MHz (0..10000, above 0; default 100)")
    p.add_argument("--raster", type=nonempty, help="write a spike raster of sample 0 to this PNG (or .pdf / .svg)")
    p.add_argument("--vcd", type=nonempty,
                   help=f"write the core's waveforms to this VCD file ({', '.join(VCD_BACKENDS)} backends)")
    from sim.vcd import signal_patterns, step_window
    p.add_argument("--vcd-signals", dest="vcd_signals", type=signal_patterns, metavar="PATTERN[,PATTERN]",
                   help="only the signals whose name or dotted path matches one of these glob patterns, "
                        "e.g. busy,events_*,*.sequencer.*")
    p.add_argument("--vcd-steps", dest="vcd_steps", type=step_window, metavar="A:B",
                   help="only time steps A..B-1 of each sample (0-based; A: to the end)")
    p.add_argument("--no-neurobench", dest="no_neurobench", action="store_true",
                   help="skip the NeuroBench metrics (they run an snnTorch mirror of the network)")
    p.set_defaults(func=cmd_run, dataset_inputs=None)     # tune.cli gives train.run.test_inputs
