"""``spikeloop`` — the one command in front of hw, sim, train and tune."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from hw.config import ChipConfig, ConfigError
from sim.chip import BACKENDS


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


def load_weights(path: str | None, cfg: ChipConfig) -> list[np.ndarray] | None:
    """Integer weights ``w0..w{L-1}`` from an ``.npz`` (as ``spikeloop study export`` writes them)."""
    if not path:
        return None
    if not Path(path).exists():
        raise ConfigError(f"--weights {path}: no such file")
    with np.load(path) as z:
        missing = [f"w{l}" for l in range(cfg.num_layers) if f"w{l}" not in z.files]
        if missing:
            raise ConfigError(f"--weights {path}: lacks arrays {missing} for a {cfg.num_layers}-layer chip")
        return [z[f"w{l}"] for l in range(cfg.num_layers)]


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
    from sim.sample import random_spikes, random_weights
    cfg = load_config(a.config, a)
    weights = random_weights(cfg, a.seed, a.density)
    x = random_spikes(cfg, a.batch, a.steps, a.density, a.seed + 1)
    chip = make_chip(cfg, a.backend, **_board_kwargs(a))
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
    if a.raster:
        from sim.plots import raster
        print(f"raster: {raster(r, a.raster)}")
    return 0


def _board_kwargs(a: argparse.Namespace) -> dict:
    return {"port": a.port, "baud": a.baud} if a.backend == "board" else {}


def cmd_verilog(a: argparse.Namespace) -> int:
    from hw.export import export_design
    cfg = load_config(a.config, a)
    weights = load_weights(a.weights, cfg)
    paths = export_design(cfg, Path(a.out), weights)
    for kind, p in paths.items():
        print(f"{kind:18s} {p}")
    return 0


def cmd_train(a: argparse.Namespace) -> int:
    from sim.faults import Faults
    from train.network import NetSpec
    from train.run import run_training
    cfg = load_config(a.config, a) if (a.config or a.layer_sizes) else None
    spec = NetSpec(threshold=a.theta, surrogate=a.surrogate, surrogate_scale=a.surrogate_scale)
    faults = Faults(distortion=a.distortion, threshold_mismatch=a.threshold_mismatch,
                    leak_mismatch=a.leak_mismatch, stuck_zero=a.stuck_zero, seed=a.seed)
    kw = {}
    if a.method == "mh":
        kw = {"iters": a.iters, "burn_in": a.iters // 2}
    elif a.epochs:
        kw = {"epochs": a.epochs}
    if cfg is None and a.beta is not None:
        from train.data import load_dataset
        from train.run import default_chip
        split = load_dataset(a.dataset)
        cfg = default_chip(a.dataset, split.n_features, split.n_classes).replace(beta=a.beta)
    r = run_training(a.method, a.dataset, cfg, spec, faults, a.backend, a.steps, a.encoder, a.seed,
                     a.train_size, **kw)
    print(f"{r.method} on {a.dataset}: software accuracy {r.software_accuracy:.4f}, "
          f"on-chip accuracy {r.chip_accuracy:.4f} (test), {r.seconds:.1f} s")
    print(f"chip activity per test sample: cycles {r.activity['cycles']:.0f}, synops {r.activity['synops']:.0f}, "
          f"output events {r.activity['out_events']:.0f}")
    if r.extra:
        print("extra:", {k: round(v, 4) if isinstance(v, float) else v for k, v in r.extra.items()})
    if a.out:
        from sim.plots import training_curves
        r.save(Path(a.out))
        png = training_curves(r.history, Path(a.out).with_suffix(".png"), f"{r.method} on {a.dataset}")
        print(f"saved {a.out}.json / {a.out}.npz / {png}")
    return 0


def cmd_synth(a: argparse.Namespace) -> int:
    from hw.synth import SynthError, synthesize
    cfg = load_config(a.config, a)
    weights = load_weights(a.weights, cfg)
    try:
        r = synthesize(cfg, a.target, Path(a.out), weights, a.baud)
    except SynthError as e:
        print(f"spikeloop: synth failed: {e}", file=sys.stderr)
        return 1
    print(f"{r.target} ({r.device}) {r.layer_sizes} lanes={r.lanes} w{r.weight_bits}")
    print(f"  logic cells {r.logic_cells}/{r.logic_cells_total}  LUT4 {r.luts}  FF {r.ffs}  "
          f"BRAM {r.bram}/{r.bram_total}  DSP {r.dsp}")
    print(f"  Fmax {r.fmax_mhz:.2f} MHz (board clock {r.clock_mhz:g} MHz: timing "
          f"{'met' if r.timing_met else 'NOT met - clock the design below Fmax'})  bitstream {r.bitstream or '-'}")
    print(f"  report {Path(a.out) / (r.target + '.json')}  ({r.seconds:.0f} s)")
    return 0


def _study_config(a: argparse.Namespace):
    from tune.config import StudyConfig
    return StudyConfig.load(a.config, {"storage": a.storage, "name": a.name, "n_trials": getattr(a, "n_trials", None),
                                       "out": getattr(a, "out", None)})


def cmd_study_run(a: argparse.Namespace) -> int:
    from tune.report import write_report
    from tune.study import run_study
    sc = _study_config(a)
    study = run_study(sc, jobs=a.jobs)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    print(f"study {sc.name!r} in {sc.storage}: {len(done)} complete, "
          f"{sum(t.state.name == 'PRUNED' for t in study.trials)} pruned, "
          f"{sum(t.state.name == 'FAIL' for t in study.trials)} failed")
    from tune.report import pareto_trials
    for t in pareto_trials(study):
        vals = ", ".join(f"{v:.4g}" for v in t.values)
        print(f"  Pareto trial {t.number}: {t.params.get('method')}/{t.params.get('surrogate')} "
              f"beta={t.params.get('beta', 0):.3f} threshold={t.params.get('threshold', 0):.3f} -> ({vals})")
    paths = write_report(study, sc.out / "report")
    print(f"report: {paths['markdown']}")
    return 0


def cmd_study_report(a: argparse.Namespace) -> int:
    from tune.report import write_report
    from tune.study import open_study
    sc = _study_config(a)
    for kind, p in write_report(open_study(sc), Path(a.report_dir or sc.out / "report")).items():
        print(f"{kind:15s} {p}")
    return 0


def cmd_study_export(a: argparse.Namespace) -> int:
    from tune.report import export_trial
    from tune.study import open_study
    sc = _study_config(a)
    for kind, p in export_trial(open_study(sc), a.trial, Path(a.dest or sc.out / f"export_{a.trial}")).items():
        print(f"{kind:18s} {p}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="spikeloop", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a sample network on the simulated chip; print outputs, cycles, activity")
    _chip_args(p)
    p.add_argument("--backend", default="fast", choices=BACKENDS)
    p.add_argument("--port", help="serial port of the board (backend board)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--density", type=float, default=0.1, help="input spike probability per neuron and step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--raster", help="write a spike raster of sample 0 to this PNG")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("verilog", help="write Verilog, memory images, config and port map for a chip")
    _chip_args(p)
    p.add_argument("--weights", help=".npz with integer arrays w0..w{L-1} (e.g. from a trained model)")
    p.add_argument("--out", default="out/verilog")
    p.set_defaults(func=cmd_verilog)
    p = sub.add_parser("train", help="train a network with the simulated chip (bptt, bptt_qat, mh, cilspl)")
    _chip_args(p)
    p.add_argument("--method", default="mh", choices=["bptt", "bptt_qat", "mh", "cilspl"])
    p.add_argument("--dataset", default="breast_cancer", choices=["breast_cancer", "digits"])
    p.add_argument("--backend", default="fast", choices=[b for b in BACKENDS if b != "board"],
                   help="chip in the loop (a board is used from Python: make_chip(cfg, 'board', port=...))")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--encoder", default="rate", choices=["rate", "latency", "delta"])
    p.add_argument("--theta", type=float, default=1.0, help="software threshold")
    p.add_argument("--surrogate", default="atan")
    p.add_argument("--surrogate-scale", type=float)
    p.add_argument("--epochs", type=int, help="bptt / cilspl epochs")
    p.add_argument("--iters", type=int, default=3000, help="mh iterations (half of them burn-in)")
    p.add_argument("--train-size", type=int)
    p.add_argument("--distortion", type=float, default=0.0, help="unknown membrane distortion sigma (0..5)")
    p.add_argument("--threshold-mismatch", type=float, default=0.0)
    p.add_argument("--leak-mismatch", type=float, default=0.0)
    p.add_argument("--stuck-zero", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the result as OUT.json + OUT.npz and its training curves as OUT.png")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("synth", help="synthesise, place and route the board top; resource and Fmax report")
    _chip_args(p)
    p.add_argument("--target", default="ice40-up5k", choices=["ice40-up5k", "ecp5-25k"])
    p.add_argument("--weights", help=".npz with integer arrays w0..w{L-1} (memory contents)")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--out", default="runs/synth")
    p.set_defaults(func=cmd_synth)

    study = sub.add_parser("study", help="Optuna co-design studies: run, report, export")
    ssub = study.add_subparsers(dest="study_command", required=True)
    for name, fn, hlp in (("run", cmd_study_run, "run (or resume) a study"),
                          ("report", cmd_study_report, "write Pareto/importance plots and tables"),
                          ("export", cmd_study_export, "write a trial's weights, config and Verilog")):
        p = ssub.add_parser(name, help=hlp)
        p.add_argument("--config", help="study TOML (defaults: tune/config.py DEFAULT_TOML)")
        p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///runs/s.db or postgresql://...")
        p.add_argument("--name", help="study name")
        p.set_defaults(func=fn)
        if name == "run":
            p.add_argument("--n-trials", type=int, dest="n_trials")
            p.add_argument("--jobs", type=int, default=1, help="worker processes on this machine")
            p.add_argument("--out", help="artefact directory")
        elif name == "report":
            p.add_argument("--report-dir")
        else:
            p.add_argument("trial", type=int)
            p.add_argument("--dest")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    if a.command == "study":
        import warnings
        import optuna
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return a.func(a)
    except ConfigError as e:
        print(f"spikeloop: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
