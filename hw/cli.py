"""``spikeloop verilog`` and ``spikeloop synth``, and the chip options every subcommand shares.

The command line is assembled in :mod:`tune.cli`; each package registers its own subcommands.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tomllib
from pathlib import Path

import numpy as np

from hw.config import MAX_STEPS_RANGE, RESET_MODES, UPDATE_MODES, ChipConfig, ConfigError

#: chip fields a command line can override, in the order of :func:`chip_arguments`
CHIP_FLAGS = ("layer_sizes", "lanes", "weight_bits", "membrane_bits", "beta", "threshold", "reset", "overlap",
              "update", "max_steps", "wavefront")


def read_table(path: str, flag: str = "--config") -> dict:
    """A JSON or TOML file as a dict; any unreadable file is a ConfigError naming ``flag`` and the path."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{flag} {path}: no such file")
    if not p.is_file():
        raise ConfigError(f"{flag} {path}: not a file")
    try:
        text = p.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as e:
        raise ConfigError(f"{flag} {path}: not a text file ({type(e).__name__})")
    try:
        d = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        kind = "TOML" if p.suffix == ".toml" else "JSON (use a .toml suffix for TOML)"
        raise ConfigError(f"{flag} {path}: not valid {kind}: {e}")
    if not isinstance(d, dict):
        raise ConfigError(f"{flag} {path}: expected a table of fields, got {type(d).__name__}")
    return d


def chip_overrides(a: argparse.Namespace) -> dict:
    """The chip fields given on the command line."""
    return {k: getattr(a, k) for k in CHIP_FLAGS if getattr(a, k, None) is not None}


#: tables of a config file besides ``[chip]`` that every command allows: a study's (``spikeloop study template``),
#: so that a study's config is a valid ``--config`` of run, verilog, synth and train
STUDY_TABLES = ("data", "faults", "study", "search", "device", "hardware", "report")


def check_tables(t: dict, path: str, reads: str, flag: str = "--config", hint: str = "") -> None:
    """Refuse the tables of a TOML config that no command reads (a ``[train]``, a misspelt ``[chp]``: their keys
    would be dropped unread) by name, with the ones allowed: ``[chip]`` and a study's (:data:`STUDY_TABLES`).
    ``reads``: what the command takes from the file, e.g. ``"spikeloop run reads [chip]"``; ``hint`` ends the
    message (where the rest goes instead). JSON files (a training run's RUN.json, an import's config.json) carry
    other tables by design and are not checked."""
    if Path(path).suffix != ".toml":
        return
    unknown = sorted(k for k, v in t.items() if isinstance(v, dict) and k != "chip" and k not in STUDY_TABLES)
    if unknown:
        raise ConfigError(f"{flag} {path}: unknown tables {', '.join(f'[{k}]' for k in unknown)}; {reads} "
                          f"(a study's other tables are allowed: {', '.join(f'[{k}]' for k in STUDY_TABLES)})"
                          + (f"; {hint}" if hint else ""))


def chip_table(t: dict, path: str, flag: str = "--config", command: str | None = None) -> dict:
    """The chip fields of a config table: a ``[chip]`` table, a training run's ``chip_config`` (``spikeloop
    train --out RUN`` writes RUN.json: the deployed thresholds, betas and reset), or the fields at top level.
    Tables besides ``[chip]`` that no command reads are refused (:func:`check_tables`; ``command``, e.g.
    ``"run"``, names the command in the message)."""
    if "chip" not in t and "chip_config" not in t:
        tables = sorted(k for k, v in t.items() if isinstance(v, dict))
        if tables:      # a study-style file without [chip]: its tables are not chip fields
            raise ConfigError(f"{flag} {path}: no [chip] table (the file has "
                              f"{', '.join(f'[{k}]' for k in tables)}); a chip's fields go under [chip]")
    elif "chip" in t and Path(path).suffix == ".toml":
        loose = sorted(k for k, v in t.items() if not isinstance(v, dict) and k != "chip")
        if loose:       # TOML keys above the first [table]: outside [chip], so they would be dropped
            raise ConfigError(f"{flag} {path}: {', '.join(loose)} at the top level, outside every table; a "
                              f"chip's fields go under [chip]")
        check_tables(t, path, f"{'spikeloop ' + command if command else 'the command'} reads [chip]", flag)
    d = t.get("chip", t.get("chip_config", t))
    if not isinstance(d, dict):
        raise ConfigError(f"{flag} {path}: chip={d!r}: expected a table ([chip])")
    return d


def load_chip(path: str | None, overrides: dict | None = None, base: ChipConfig | None = None,
              command: str | None = None) -> ChipConfig:
    """A ChipConfig from a JSON/TOML file (a ``[chip]`` table, a training run's ``chip_config``, or the fields
    at top level) over ``base`` (or the defaults), with ``overrides`` applied (``command``: for a message,
    :func:`chip_table`)."""
    d = base.to_dict() if base is not None else {}
    if path:
        d = {**d, **chip_table(read_table(path), path, command=command)}
    d = dict(d)
    overrides = overrides or {}
    _fit_per_layer(d, overrides)
    d.update(overrides)
    return ChipConfig.from_dict(d)


#: ChipConfig fields that hold one value per layer (or one for all)
PER_LAYER_FIELDS = ("beta", "threshold")


def _fit_per_layer(d: dict, overrides: dict) -> None:
    """When ``overrides`` change the number of layers, the per-layer fields of ``d`` that the overrides do
    not set follow the new count: a list of equal values becomes that one value (for every layer); a list
    of different values cannot be stretched and is a ConfigError naming the field."""
    if "layer_sizes" in overrides:
        sizes = overrides["layer_sizes"]
        n = len(sizes) - 1 if isinstance(sizes, (list, tuple)) else None
    elif overrides.get("layers") is not None and isinstance(overrides["layers"], (list, tuple)):
        n = sum(1 for ly in overrides["layers"]
                if (ly.get("kind") if isinstance(ly, dict) else getattr(ly, "kind", None)) != "pool")
    else:
        return
    for k in PER_LAYER_FIELDS:
        v = d.get(k)
        if k in overrides or n is None or not isinstance(v, (list, tuple)) or len(v) == n:
            continue
        if len(set(v)) <= 1 and len(v):
            d[k] = v[0]
        else:
            raise ConfigError(f"{k}={list(v)}: one value per layer of the config's {len(v)} layers, but the "
                              f"command line gives {n} layers; give --{k} (one value for every layer) or a "
                              f"config with {n} values")


def load_weights(path: str | None, cfg: ChipConfig) -> list[np.ndarray] | None:
    """Integer weights ``w0..w{L-1}`` from an ``.npz`` (as ``spikeloop study export`` writes them)."""
    return load_programme(path, cfg)[0]


def load_programme(path: str | None, cfg: ChipConfig) -> tuple[list[np.ndarray] | None, list[np.ndarray] | None]:
    """Integer weights ``w0..w{L-1}`` and, when the file has all of them, threshold offsets ``o0..o{L-1}``
    (checked against ``cfg``) from one ``.npz``; ``(None, None)`` without a path."""
    if not path:
        return None, None
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--weights {path}: no such file")
    try:
        with np.load(p, allow_pickle=False) as z:
            missing = [f"w{l}" for l in range(cfg.num_layers) if f"w{l}" not in z.files]
            if missing:
                raise ConfigError(f"--weights {path}: lacks arrays {missing} for a {cfg.num_layers}-layer chip")
            weights = [z[f"w{l}"] for l in range(cfg.num_layers)]
            offsets = None
            if all(f"o{l}" in z.files for l in range(cfg.num_layers)):
                offsets = cfg.check_offsets([z[f"o{l}"] for l in range(cfg.num_layers)])
            return weights, offsets
    except ConfigError:
        raise
    except Exception as e:          # zipfile.BadZipFile, EOFError, ValueError (object arrays), OSError
        raise ConfigError(f"--weights {path}: not a readable .npz of integer arrays w0..w{cfg.num_layers - 1} "
                          f"({type(e).__name__}); it is corrupt, truncated or another format")


def companion_config(weights: str | Path) -> Path | None:
    """The chip config that belongs to a weights file: ``RUN.json`` beside ``RUN.npz`` (a training run, or any
    chip config of the same stem), else ``config.json`` in the same folder (``spikeloop import``, ``study
    export``, ``verilog``); None when there is neither."""
    p = Path(weights)
    for c in (p.with_suffix(".json"), p.parent / "config.json"):
        if c.is_file():
            return c
    return None


def model_paths(model: str | Path, flag: str = "--model") -> tuple[Path, Path]:
    """``(config, weights)`` of a model: a folder holding ``config.json`` + ``weights.npz`` (``spikeloop import``,
    ``study export``, ``verilog``), or a training run ``RUN`` / ``RUN.json`` / ``RUN.npz`` (``train --out RUN``)."""
    p = Path(model)
    if p.is_dir():
        cfg, w = p / "config.json", p / "weights.npz"
    else:
        stem = p.with_suffix("") if p.suffix in (".json", ".npz") else p
        cfg, w = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".npz")
    missing = [str(f) for f in (cfg, w) if not f.is_file()]
    if missing:
        raise ConfigError(f"{flag} {model}: no {' and '.join(missing)}; expected a folder with config.json and "
                          "weights.npz (spikeloop import / study export) or a training run RUN.json + RUN.npz "
                          "(spikeloop train --out RUN)")
    return cfg, w


def load_model_arguments(a: argparse.Namespace, need_weights: bool = True, before_weights=None
                         ) -> tuple[ChipConfig, list[np.ndarray] | None, list[np.ndarray] | None, str]:
    """The chip and its programme from the command line: ``--model`` (a folder or a training run), or
    ``--config`` + ``--weights``, or ``--weights`` with the config beside it (:func:`companion_config`);
    chip flags apply on top. Weights without any of these are refused: the file alone does not carry the
    thresholds, betas and reset it was trained with. Returns ``(cfg, weights, offsets, where the chip came
    from)``; ``weights`` is None without any (when ``need_weights`` is False). ``before_weights(cfg)`` (a size
    check) runs once the chip is known, before the weights file is read."""
    model = getattr(a, "model", None)
    config, weights = a.config, getattr(a, "weights", None)
    if model:
        for flag, v in (("--config", config), ("--weights", weights)):
            if v:
                raise ConfigError(f"{flag}: give either --model or --config/--weights, not both")
        config, weights = (str(x) for x in model_paths(model))
    source = f"--model {model}" if model else f"--config {config}" if config else ""
    overrides = chip_overrides(a)
    if weights and not config:
        comp = companion_config(weights)
        if comp is not None:
            config, source = str(comp), f"{comp} (beside --weights)"
    unconfigured = weights and not config and not {"threshold", "beta", "reset"} <= set(overrides)
    if unconfigured and "layer_sizes" not in overrides:
        raise ConfigError(unconfigured_message(weights))
    cfg = load_chip(config, overrides, command=getattr(a, "command", None))
    if before_weights is not None:
        before_weights(cfg)
    w, off = load_programme(weights, cfg)
    if w is None:
        if need_weights:
            raise ConfigError("--weights: required (or --model DIR|RUN)")
        beside = _weights_beside(config)
        if beside is not None:          # a training run's RUN.json (or an import's config.json): its weights unused
            print(f"note: --config {config}: the weights beside it ({beside}) are not used; --model "
                  f"{beside.parent if beside.name == 'weights.npz' else beside.with_suffix('')} takes both",
                  file=sys.stderr)
        return cfg, None, None, source or "defaults and flags"
    w = cfg.check_weights(w)
    if unconfigured:
        raise ConfigError(unconfigured_message(weights))
    return cfg, w, off, source or "flags"


def _weights_beside(config) -> Path | None:
    """The weights file of the model a ``--config`` file belongs to (``RUN.npz`` beside ``RUN.json``, or
    ``weights.npz`` beside a folder's ``config.json``), or None."""
    if not config or not str(config).endswith(".json"):
        return None
    p = Path(config)
    for w in (p.with_suffix(".npz"), p.parent / "weights.npz" if p.name == "config.json" else None):
        if w is not None and w.is_file():
            return w
    return None


def offsets_text(offsets) -> str:
    """How a command line reports the per-neuron threshold offsets it loaded."""
    if offsets is None or not any(np.any(o) for o in offsets):
        return "zero"
    return "from the weights file (" + ", ".join(f"{int(np.min(o))}..{int(np.max(o))}" for o in offsets) + ")"


def unconfigured_message(weights) -> str:
    return (f"--weights {weights}: no chip config beside it (RUN.json or config.json) and no --config: the "
            "weights alone do not carry the thresholds, betas and reset they were trained with; give --config (a "
            "training run's RUN.json works) or --model, or all of --threshold, --beta and --reset")


def sizes(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers like 64,128,10")
    return out


def on_off(text: str) -> bool:
    """An argparse type: ``on`` / ``off`` (any case) as True / False."""
    v = text.lower()
    if v not in ("on", "off"):
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from 'on', 'off')")
    return v == "on"


def number(kind, low=None, high=None, open_low=False):
    """An argparse type: ``kind`` in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {'an integer' if kind is int else 'a number'}")
        if v != v or (low is not None and (v <= low if open_low else v < low)) or (high is not None and v > high):
            f = (lambda x: f"{x:d}") if kind is int else (lambda x: f"{x:g}")
            if high is None:
                allowed = f"{'>' if open_low else '>='} {f(low)}"
            elif low is None:
                allowed = f"<= {f(high)}"
            else:
                allowed = f"{'(' if open_low else '['}{f(low)}, {f(high)}]"
            raise argparse.ArgumentTypeError(f"{text}: allowed range is {allowed}")
        return v
    return parse


def nonempty(text: str) -> str:
    """An argparse type for a path, URL or port: not empty. An empty value (an unset shell variable, as in
    ``--weights "$W"``) read as the option left out: random weights, no saved result, the default storage."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: empty; give a value or leave the option out")
    return text


def chip_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("chip (a --config file, then these overrides)")
    g.add_argument("--config", type=nonempty, help="chip config file (.json, or .toml with a [chip] table)")
    g.add_argument("--sizes", dest="layer_sizes", type=sizes, help="layer sizes, e.g. 64,128,64,10")
    g.add_argument("--lanes", type=number(int, 1, 64), help="neurons per cycle (1..64)")
    g.add_argument("--weight-bits", dest="weight_bits", type=number(int, 2, 16), help="2..16")
    g.add_argument("--membrane-bits", dest="membrane_bits", type=number(int, 4, 32), help="4..32")
    g.add_argument("--beta", type=number(float, 0, 1, open_low=True), help="leak factor in (0, 1]; 1: no leak (IF neurons)")
    g.add_argument("--threshold", type=number(int, 1), help="chip threshold in membrane LSBs (>= 1; default 64)")
    g.add_argument("--reset", choices=RESET_MODES)
    g.add_argument("--overlap", type=on_off, metavar="{on,off}",
                   help="a layer's UPDATE overlaps the next layer's EVENT phase (default "
                        f"{'on' if ChipConfig.overlap else 'off'})")
    g.add_argument("--update", choices=UPDATE_MODES,
                   help=f"UPDATE schedule (default {ChipConfig.update}): every word, or only touched/hot words "
                        "with the lazy leak (docs/chip.md, 'Update by touch')")
    g.add_argument("--max-steps", dest="max_steps", type=number(int, *MAX_STEPS_RANGE),
                   help=f"--update touched: the longest sample in steps ({MAX_STEPS_RANGE[0]}..{MAX_STEPS_RANGE[1]})")
    g.add_argument("--wavefront", type=on_off, metavar="{on,off}",
                   help="--update touched: the layers as a dataflow, later layers a step or more behind earlier ones, "
                        "a membrane memory per layer (default off; docs/chip.md, 'Wavefront')")


def model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=nonempty, help="a trained or imported chip: a folder with config.json + weights.npz "
                                   "(spikeloop import, study export) or a training run RUN (RUN.json + RUN.npz "
                                   "from spikeloop train --out RUN); its thresholds, betas, reset and offsets go along")


def cmd_verilog(a: argparse.Namespace) -> int:
    from hw.export import check_elaboration_size, export_design
    cfg, weights, offsets, source = load_model_arguments(a, need_weights=False, before_weights=check_elaboration_size)
    check_writable(a.out, "--out")
    with writing(a.out, "--out"):
        paths = export_design(cfg, Path(a.out), weights, offsets)
    print(f"chip from {source}: {cfg.layer_sizes} beta={[round(b, 4) for b in cfg.beta_effective]} "
          f"threshold={list(cfg.threshold)} reset={cfg.reset} offsets {offsets_text(offsets)}")
    for kind, p in paths.items():
        print(f"{kind:18s} {p}")
    return 0


def seeds(text: str) -> list[int]:
    """An argparse type: placement seeds ``1-8``, ``1,4,9`` or ``1-4,9`` (:func:`hw.synth.parse_seeds`)."""
    from hw.synth import parse_seeds
    try:
        return parse_seeds(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--seeds {text}: "))


def cmd_synth(a: argparse.Namespace) -> int:
    from hw.synth import SynthError, check_size, output_paths, synthesize
    if a.jobs is not None and not a.seeds:      # before anything is built: one build has no workers to share
        raise ConfigError("--jobs: builds of a placement-seed sweep at once; give --seeds (e.g. 1-8) or drop --jobs")
    cfg, weights, offsets, source = load_model_arguments(
        a, need_weights=False, before_weights=lambda c: check_size(c, a.target))   # before anything is built
    check_writable(a.out, "--out")
    dirs, files = output_paths(a.out, a.target, a.seeds)    # every path the build(s) write, before the first one
    for d in dirs:
        check_writable(d, "--out")
    for f in files:
        check_writable(f, "--out", is_dir=False)
    if a.seeds:
        return _synth_seeds(a, cfg, weights, offsets)
    try:
        with writing(a.out, "--out"):
            r = synthesize(cfg, a.target, Path(a.out), weights, a.baud, router=a.router, seed=a.seed,
                           threshold_offsets=offsets)
    except SynthError as e:
        print(f"spikeloop: synth failed: {e}", file=sys.stderr)
        return 1
    print(f"{r.target} ({r.device}) {r.layer_sizes} lanes={r.lanes} w{r.weight_bits}")
    print(f"  logic cells {r.logic_cells}/{r.logic_cells_total}  LUT4 {r.luts}  FF {r.ffs}  "
          f"BRAM {r.bram}/{r.bram_total}  DSP {r.dsp}" + (f"  SPRAM {r.spram} (weights)" if r.spram else ""))
    print(f"  Fmax {r.fmax_mhz:.2f} MHz (board clock {r.clock_mhz:g} MHz: timing "
          f"{'met' if r.timing_met else 'NOT met - clock the design below Fmax'})  bitstream {r.bitstream or '-'}")
    print(f"  report {Path(a.out) / (r.target + '.json')}  ({r.seconds:.0f} s)")
    return 0


def _synth_seeds(a: argparse.Namespace, cfg: ChipConfig, weights, offsets=None) -> int:
    from hw.synth import seed_sweep
    out = check_writable(a.out, "--out")

    def row(r: dict) -> None:
        print(f"  seed {r['seed']}: " + (f"Fmax {r['fmax_mhz']:.2f} MHz, {r['logic_cells']} logic cells, "
                                         f"{r['seconds']:.0f} s" if r["status"] == "ok" else r["message"]), flush=True)
    print(f"{a.target} {cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits}: {len(a.seeds)} placement seeds")
    s = seed_sweep(cfg, a.target, out, a.seeds, a.jobs, weights, a.baud, router=a.router, progress=row,
                   threshold_offsets=offsets)
    f = s["fmax"]
    if not f["n"]:
        print(f"spikeloop: synth failed on every seed: {s['rows'][0]['message']}", file=sys.stderr)
        return 1
    print(f"  Fmax min / median / max over {f['n']} seeds: {f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f} MHz "
          f"(mean {f['mean']:.2f} ± {f['std']:.2f}); {len(s['seeds_meeting_clock'])} of {f['n']} reach the "
          f"{s['clock_mhz']:g} MHz board clock")
    print(f"  sweep {out / (a.target + '-seeds.json')}  ({s['jobs']} builds at a time)")
    return 0 if f["n"] == len(s["rows"]) else 1


def register(sub) -> None:
    from hw.synth import ROUTERS, TARGETS
    p = sub.add_parser("verilog", help="write Verilog, memory images, config and port map for a chip",
                       epilog="docs: docs/guides/fpga.md (the Verilog and the board), docs/guides/run_and_build.md "
                              "(checks before the work), docs/guides/nir.md (a trained or imported --model)")
    chip_arguments(p)
    model_argument(p)
    p.add_argument("--weights", type=nonempty, help=".npz with integer arrays w0..w{L-1} (e.g. from a trained model)")
    p.add_argument("--out", type=nonempty, default="out/verilog", help="output directory (default out/verilog)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("synth", help="synthesise, place and route the board top; resource and Fmax report",
                       epilog="docs: docs/guides/fpga.md (boards, programming), docs/guides/synthesis.md (seed "
                              "sweeps, builds as a study)")
    chip_arguments(p)
    model_argument(p)
    p.add_argument("--target", default=TARGETS[0], choices=TARGETS)
    p.add_argument("--weights", type=nonempty, help=".npz with integer arrays w0..w{L-1} (memory contents)")
    p.add_argument("--baud", type=number(int, 300, 12_000_000), default=115200,
                   help="UART rate of the board's host link (300..12000000; default 115200)")
    p.add_argument("--router", default=ROUTERS[0], choices=ROUTERS,
                   help="nextpnr router (router2 for designs that fill the block RAMs)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seed", type=number(int, 1, 2 ** 31 - 1), default=None,
                   help="nextpnr placement seed, 1 to 2^31-1 (Fmax varies by several per cent between seeds)")
    g.add_argument("--seeds", type=seeds, default=None,
                   help="a placement-seed sweep, e.g. 1-8 or 1,4,9: one build per seed (out/seed<k>/), then Fmax "
                        "min / median / max, written to out/<target>-seeds.json")
    p.add_argument("--jobs", type=number(int, 1, 256), default=None,
                   help="seed builds at once (1..256; default: the cores the load average leaves free)")
    p.add_argument("--out", type=nonempty, default="runs/synth",
                   help="output directory; the build goes to OUT/<target>/ (default runs/synth)")
    p.set_defaults(func=cmd_synth)


@contextlib.contextmanager
def writing(path, flag: str = "--out"):
    """Writes to ``path`` inside the block that fail end as one line naming ``flag`` and the path — not a
    traceback. The one rule for the exit code: a path the user can correct (a directory where a file should go,
    no permission, a folder removed meanwhile) is a ConfigError, exit 2; the machine's problem (a full disk, a
    quota, an I/O error: :data:`hw.files.MACHINE_ERRNOS`) is a :class:`hw.files.WriteFailed`, exit 1. Library
    messages over several lines (HDF5's) are collapsed into one."""
    from hw.files import MACHINE_ERRNOS, WriteFailed
    try:
        yield
    except OSError as e:
        reason = " ".join(str(e.strerror or e or type(e).__name__).split())
        errno_ = e.errno
        if errno_ is None and "No space left on device" in reason:      # h5py's errors carry errno in text only
            import errno as errno_mod
            errno_ = errno_mod.ENOSPC
        if errno_ is not None and errno_ in MACHINE_ERRNOS:
            reason = os.strerror(errno_) if len(reason) > 120 else reason
        where = f" ({e.filename})" if getattr(e, "filename", None) and str(e.filename) != str(path) else ""
        line = f"{flag} {path}: writing failed: {reason}{where}"
        if errno_ in MACHINE_ERRNOS:
            raise WriteFailed(f"{line}; free some space (or fix the device) and run the command again") from e
        raise ConfigError(line) from e


#: folders :func:`check_writable` made in this process, outermost first; :func:`remove_made_dirs` undoes them
MADE_DIRS: list[Path] = []


def remove_made_dirs() -> None:
    """Remove the folders this process's output checks made, deepest first, where they are still empty: a
    command refused or failed after its check leaves no empty output folder. Never a folder that existed
    before the command, never one with anything in it."""
    while MADE_DIRS:
        d = MADE_DIRS.pop()
        try:
            d.rmdir()
        except OSError:
            pass


def _dangling(a: Path) -> str | None:
    """The target of ``a`` if it is a symbolic link to nothing, else None."""
    if a.is_symlink() and not a.exists():
        return os.readlink(a)
    return None


def check_writable(path: str | Path, flag: str = "--out", is_dir: bool = True,
                   suffixes: tuple[str, ...] | None = None, files: tuple[str | Path, ...] = ()) -> Path:
    """The one check of an output path, run before any long work so nothing is lost at the end: ``path``
    (a directory, or with ``is_dir=False`` a file, whose suffix must then be one of ``suffixes`` if given)
    exists or can be made, is of the right kind, and its directory takes files (a probe file is written
    and removed: this catches read-only mounts, ``/proc``, ``/sys`` and full permissions alike, even for
    root). ``files``: the other files the command will write for this option (``train --out RUN`` writes
    RUN.json, RUN.npz, RUN.png): each must be free to be a file too. A symbolic link to nothing is refused
    (writing through it would make its target's folders wherever it points). Every refusal is a ConfigError
    naming ``flag``. Directories are created; those made are recorded for :func:`remove_made_dirs`."""
    text = str(path)
    if not text.strip() or "\0" in text:
        raise ConfigError(f"{flag} {text!r}: not a usable path")
    p = Path(path).expanduser()
    if suffixes is not None and not is_dir and p.suffix.lower() not in suffixes:
        raise ConfigError(f"{flag} {path}: expected a file ending in {' / '.join(suffixes)}")
    d = p if is_dir else p.parent
    try:
        for a in (p, *p.parents):
            t = _dangling(a)
            if t is not None:
                what = f"{flag} {path} is" if a == p else f"{flag} {path}: {a} is"
                raise ConfigError(f"{what} a symbolic link to {t}, which does not exist")
            if a.exists():
                break
        for f in (p, *map(Path, files)) if not is_dir else ():
            if f.is_dir():
                raise ConfigError(f"{flag} {path}: " + ("is a directory, expected a file name" if f == p else
                                                        f"{f} is a directory; the command writes a file there"))
            if f.exists() and not f.is_file():
                raise ConfigError(f"{flag} {path}: " + ("exists and is not a regular file" if f == p else
                                                        f"{f} exists and is not a regular file"))
        for a in (d, *d.parents):           # the nearest existing ancestor must be a directory
            if a.exists():
                if not a.is_dir():
                    raise ConfigError(f"{flag} {path}: cannot write there ({a} is a file, not a directory)")
                break
        made = [a for a in (d, *d.parents) if not a.exists()][::-1]
        d.mkdir(parents=True, exist_ok=True)
        MADE_DIRS.extend(made)
        probe = d / f".spikeloop-write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ConfigError(f"{flag} {path}: cannot write there ({e.strerror or type(e).__name__})")
    return p
