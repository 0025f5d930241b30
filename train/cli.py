"""``spikeloop train``: one training run, built as a :class:`train.config.TrainConfig`.

Choices and method flags come from the registries (datasets, encoders, trainers and their parameters,
surrogates, faults), so a new registry entry is a new command-line choice.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hw.cli import (STUDY_TABLES, chip_arguments, chip_overrides, chip_table, check_tables, check_writable, load_chip,
                    load_model_arguments, model_argument, nonempty, number, offsets_text, on_off, read_table,
                    writing)
from hw.config import ChipConfig, ConfigError
from sim.chip import BACKENDS
from train.quant import SCALES
from sim.faults import LIMITS as FAULT_LIMITS
from train.data import DATASETS
from train.encode import ENCODERS
from train.surrogates import SURROGATES
from train.trainers import TRAINERS


def _method_params():
    """Every method parameter once: name -> (Param of the first method that has it, methods that use it)."""
    out: dict = {}
    for t in TRAINERS.values():
        for p in t.params:
            out.setdefault(p.name, (p, []))[1].append(t.name)
    return out


def cmd_train(a: argparse.Namespace) -> int:
    from train.config import DATA_FIELDS, TrainConfig, data_table
    from train.run import load_split, run_training
    from sim.faults import Faults
    if a.threshold is not None:         # the quantiser sets every layer's chip threshold from theta
        raise ConfigError("--threshold: training sets the chip threshold (membrane LSBs) from the software "
                          "threshold when it quantises the weights; give --theta (software units) instead")
    params = {}
    for name, (_, methods) in _method_params().items():
        v = getattr(a, name)
        if v is None:
            continue
        if a.method not in methods:
            raise ConfigError(f"--{name.replace('_', '-')} applies to method {' / '.join(methods)}, "
                              f"not to --method {a.method}")
        params[name] = v
    # a --config file's [data] and [faults] tables (a study's config works as it is); flags override them
    data, fault_table, table = {}, {}, {}
    if a.config:
        table = read_table(a.config)
        # e.g. [train]: its keys would be dropped unread
        check_tables(table, a.config, "spikeloop train reads [chip], [data] and [faults]",
                     hint="the method's settings are flags (spikeloop train --help)")
        data = data_table(table.get("data", {}))
        fault_table = table.get("faults", {})
        if not isinstance(fault_table, dict):
            raise ConfigError(f"--config {a.config}: faults={fault_table!r}: expected a table ([faults])")
        Faults.from_dict(fault_table)           # every field checked, the seed too (--seed replaces it)
    for k in DATA_FIELDS:
        if getattr(a, k) is not None:
            data[k] = getattr(a, k)
    fault_table = {k: v for k, v in fault_table.items() if k != "seed"} | {
        k: getattr(a, k) for k in FAULT_LIMITS if getattr(a, k) is not None}
    faults = Faults.from_dict({"seed": a.seed} | fault_table)
    tc = TrainConfig(method=a.method, **data, theta=a.theta, surrogate=a.surrogate,
                     surrogate_scale=a.surrogate_scale, quantiser=a.quantiser, params=params, faults=faults,
                     backend=a.backend, seed=a.seed, threads=a.threads, bias_input=a.bias_input)
    if a.out:
        check_writable(a.out, "--out", is_dir=False, files=training_files(a.out))
    overrides = chip_overrides(a)
    # the chip: the file's [chip] table, or its top-level fields; a file of other sections only (a study's
    # [data], [faults], ...) leaves the dataset's default chip
    chip_file = a.config if a.config and ("chip" in table or not set(table) & set(STUDY_TABLES)) else None
    fields = table.get("chip", table) if chip_file else {}
    if a.config and not chip_file:        # a study-style file: fields above its first [table] would be dropped
        loose = sorted(k for k, v in table.items() if not isinstance(v, dict))
        if loose:
            raise ConfigError(f"--config {a.config}: {', '.join(loose)} at the top level, outside every table; "
                              f"a chip's fields go under [chip]")
    if chip_file:                         # a misspelt chip field is refused before the data are loaded
        ChipConfig.check_fields(chip_table(table, chip_file))
    split = load_split(tc)
    if chip_file or overrides:
        # a file that does not give the network (a study's [chip] often has only widths and lanes) sits on
        # the dataset's default chip, as a study's does
        given = isinstance(fields, dict) and bool({"layer_sizes", "layers"} & set(fields))
        base = None if given else tc.chip_for(split.n_features, split.n_classes)
        # a file's chip thresholds are not used either (the quantiser sets them from theta): a placeholder, so
        # that a file's per-layer thresholds do not have to follow a --sizes with another layer count
        tc = tc.replace(chip=load_chip(chip_file, overrides | {"threshold": 1}, base=base))
    cfg = tc.chip_for(split.n_features, split.n_classes)
    print(f"chip {cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits}/m{cfg.membrane_bits} "
          f"beta={[round(b, 4) for b in cfg.beta_effective]} reset={cfg.reset}; {tc.method} {dict(tc.params)}"
          f"{'; bias input on' if tc.bias else ''}")
    r = run_training(tc, split=split)
    print(f"{r.method} on {tc.dataset}: software accuracy {r.software_accuracy:.4f}, "
          f"on-chip accuracy {r.chip_accuracy:.4f} (test), {r.seconds:.1f} s")
    print(f"chip activity per test sample: cycles {r.activity['cycles']:.0f}, synops {r.activity['synops']:.0f}, "
          f"output events {r.activity['out_events']:.0f}")
    if r.extra:
        print("extra:", {k: round(v, 4) if isinstance(v, float) else v for k, v in r.extra.items()})
    if a.out:
        from sim.plots import training_curves
        with writing(a.out, "--out"):
            r.save(Path(a.out))
            png = training_curves(r.history, training_files(a.out)[2], f"{r.method} on {tc.dataset}")
        print(f"saved {a.out}.json / {a.out}.npz / {png}")
    return 0


def training_files(out: str) -> tuple[Path, ...]:
    """The files ``train --out RUN`` writes: RUN.json and RUN.npz (:meth:`TrainResult.save`), RUN.png."""
    return tuple(Path(out).with_suffix(s) for s in (".json", ".npz", ".png"))


#: chip flags ``import`` cannot apply: the graph sets them (``--sizes`` is checked against the graph instead)
GRAPH_FLAGS = {"beta": "the graph sets beta (from tau and dt)", "threshold": "the graph sets the thresholds",
               "reset": "the graph's neuron type sets the reset"}


def cmd_import(a: argparse.Namespace) -> int:
    from train.nir import import_nir, write_import
    for k, why in GRAPH_FLAGS.items():
        if getattr(a, k) is not None:
            raise ConfigError(f"--{k}: {why}; import takes it from the NIR file (change the graph, or change the "
                              f"imported config.json afterwards)")
    kept = {}
    if a.config:        # a file is a bundle (import's own config.json, a training run's RUN.json): say, don't refuse
        table = chip_table(read_table(a.config), a.config)
        unused = [k for k in GRAPH_FLAGS if k in table]
        if unused:
            print(f"note: --config {a.config}: its {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not "
                  f"used; the NIR file sets {'it' if len(unused) == 1 else 'them'} (the file gives widths and lanes)",
                  file=sys.stderr)
        kept = {k: v for k, v in table.items() if k not in GRAPH_FLAGS}      # not validated: the graph replaces them
    # threshold 1 until the graph sets it (as import_graph does): the default 64 does not fit a membrane under 8
    # bits, and was refused as "threshold=64" though --threshold is refused here
    base = load_chip(None, {"threshold": 1, **kept, **chip_overrides(a)})
    out = Path(a.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {a.out}: is a file, not a directory")
    try:
        check_writable(out.parent, "--out")
    except ConfigError as e:            # name the path given, not its parent
        raise ConfigError(str(e).replace(f"--out {out.parent}:", f"--out {a.out}:", 1)) from None
    cfg, weights, offsets, rep = import_nir(a.model, base=base, dt=a.dt, drop_biases=a.drop_biases,
                                            drop_synapses=a.drop_synapses, check_samples=a.check_samples,
                                            sizes=a.layer_sizes)
    with writing(a.out, "--out"):
        paths = write_import(a.out, cfg, weights, offsets, rep)
    print(rep.text())
    for kind, p in paths.items():
        print(f"{kind:8s} {p}")
    return 0


#: file suffixes ``export --out`` writes (NIR files are HDF5)
NIR_SUFFIXES = (".nir", ".h5")


def cmd_export(a: argparse.Namespace) -> int:
    from train.nir import export_nir, export_notes
    cfg, weights, offsets, source = load_model_arguments(a)
    if Path(a.out).is_dir():
        raise ConfigError(f"--out {a.out}: is a directory; give the NIR file to write, e.g. {Path(a.out) / 'model.nir'}")
    check_writable(a.out, "--out", is_dir=False, suffixes=NIR_SUFFIXES)
    with writing(a.out, "--out"):
        path = export_nir(a.out, cfg, weights, offsets)
    print(f"chip from {source}: beta={[round(b, 4) for b in cfg.beta_effective]} threshold={list(cfg.threshold)} "
          f"reset={cfg.reset} offsets {offsets_text(offsets)}")
    print(f"NIR {path}: {cfg.layer_sizes}, chip units (weights and thresholds in membrane LSBs), dt 1e-4 s")
    for n in export_notes(cfg, offsets):
        print(f"  approximated: {n}")
    return 0


TRAIN_EXAMPLES = """examples:
  spikeloop train --method mh --dataset breast_cancer                 # an fc chip sized to the dataset
  spikeloop train --method bptt_qat --dataset digits --config conv.toml --out runs/conv   # a conv chip
  where conv.toml holds the chip (digits are 1x8x8 images; input_shape must match the dataset's):
      [chip]
      input_shape = [1, 8, 8]                                     # C, H, W
      layers = [{kind = "conv", channels = 8, kernel = 3, padding = 1},
                {kind = "pool", size = 2}, {kind = "fc", size = 10}]
  spikeloop verilog --config runs/conv.json --weights runs/conv.npz --out out/conv   # the trained chip's Verilog

docs: docs/guides/training.md (methods, datasets, conv chips), docs/guides/seed-papers.md"""


def register(sub) -> None:
    p = sub.add_parser("import", help="map a NIR graph (.nir) onto the chip: config, weights, offsets, report",
                       epilog="docs: docs/guides/nir.md (import, report, hand-off), docs/guides/interchange.md")
    p.add_argument("model", type=nonempty, help="NIR file (e.g. from snnTorch export_to_nir or Rockpool to_nir)")
    chip_arguments(p)
    p.add_argument("--out", required=True, help="directory for config.json, weights.npz, nir_report.{json,txt}",
                   type=nonempty)
    p.add_argument("--dt", type=number(float, 0, 10, open_low=True),
                   help="time step, s (0..10, above 0; default: tau/r when the graph agrees on it, else 1e-4 as "
                        "snnTorch)")
    p.add_argument("--drop-biases", dest="drop_biases", action="store_true",
                   help="drop Affine/Conv2d biases (by default every layer's bias maps onto the chip's per-layer "
                        "bias, docs/chip.md 'Bias'; the report lists what dropping them costs)")
    p.add_argument("--drop-synapses", dest="drop_synapses", action="store_true",
                   help="drop CubaLIF synaptic currents instead of refusing the graph")
    p.add_argument("--check-samples", dest="check_samples", type=number(int, 0, 100000), default=64,
                   help="random samples for the agreement check (0..100000; 0: skip; default 64)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write a chip programme (config + weights) as NIR",
                       epilog="docs: docs/guides/nir.md (export), docs/guides/interchange.md")
    chip_arguments(p)
    model_argument(p)
    p.add_argument("--weights", type=nonempty, help=".npz with integer arrays w0..w{L-1} (and o0.. offsets); its "
                                                    "chip config is --config, or RUN.json / config.json beside it")
    p.add_argument("--out", required=True, type=nonempty, help="NIR file to write, e.g. model.nir")
    p.set_defaults(func=cmd_export)

    methods = "; ".join(f"{t.name}: {t.description}" for t in TRAINERS.values())
    p = sub.add_parser("train", help=f"train a network with the simulated chip ({', '.join(TRAINERS)})",
                       description=f"Methods — {methods}.", epilog=TRAIN_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    chip_arguments(p)
    p.add_argument("--method", default="mh", choices=list(TRAINERS))
    p.add_argument("--dataset", choices=list(DATASETS),
                   help="default: the --config file's [data] dataset, else breast_cancer; " +
                        "; ".join(f"{d.name}: {d.description}" for d in DATASETS.values()))
    p.add_argument("--data-path", dest="data_path", help="local files of datasets that need them (nmnist, svhn)",
                   type=nonempty)
    p.add_argument("--backend", default="fast", choices=[b for b in BACKENDS if b != "board"],
                   help="chip in the loop (a board is used from Python: make_chip(cfg, 'board', port=...))")
    p.add_argument("--steps", type=number(int, 1, 10000),
                   help="time steps per sample (1..10000; default: [data] steps, else 16)")
    p.add_argument("--encoder", choices=list(ENCODERS), help="default: [data] encoder, else rate")
    p.add_argument("--theta", type=number(float, 0, 100, open_low=True), default=1.0,
                   help="software threshold (the chip threshold in LSBs follows from quantisation; 0..100, above 0; "
                        "default 1.0)")
    p.add_argument("--surrogate", default="atan", choices=list(SURROGATES))
    p.add_argument("--surrogate-scale", dest="surrogate_scale", type=number(float, 0, open_low=True),
                   help="the surrogate's slope/alpha/width (> 0; default: the surrogate's own)")
    p.add_argument("--quantiser", default="maxabs", choices=list(SCALES),
                   help="per-layer weight scale: max-abs, or least squared error (better at 2-3-bit weights)")
    p.add_argument("--train-size", dest="train_size", type=number(int, 1),
                   help="training samples to keep (1..10000000; default: all)")
    p.add_argument("--bias-input", dest="bias_input", type=on_off, metavar="{on,off}",
                   help="one more input that spikes at every step (its weights act as biases; the chip gets one "
                        "more input). Default: the method's (" + ", ".join(
                            f"{t.name} {'on' if t.bias_input else 'off'}" for t in TRAINERS.values())
                        + "; off on conv chips)")
    g = p.add_argument_group("method parameters (each says which methods use it, its range and default; docs/guides/training.md)")
    for name, (param, users) in _method_params().items():
        kind = int if param.integer else float
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, type=number(kind, param.low, param.high),
                       help=f"{param.help} [{' / '.join(users)}; {param.range_text}"
                            f"{'' if param.default is None else f'; default {param.default}'}]")  # None: the text says
    g = p.add_argument_group("faults the trainer is not told about")
    for name, (lo, hi) in FAULT_LIMITS.items():
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, type=number(float, lo, hi),
                       help=f"{lo:g}..{hi:g} (default: the --config file's [faults], else 0)")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0,
                   help="training seed (0..2^32-1; default 0)")
    p.add_argument("--threads", type=number(int, 1, 256), default=1,
                   help="torch threads for the software network (1..256; small networks are fastest with 1)")
    p.add_argument("--out", help="save the result as OUT.json + OUT.npz and its training curves as OUT.png",
                   type=nonempty)
    p.set_defaults(func=cmd_train)
