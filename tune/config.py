"""Study configuration: a TOML file with validated fields (every error names the field and its range).

Sections: ``[study]`` (name, storage, n_trials, sampler, objective, weights, seed, out — default
``runs/<name>`` —, max_consecutive_failures, seeds_per_trial), ``[report]`` (recheck_seeds, recheck_trials: the
re-run of the Pareto trials on fresh seeds, :mod:`tune.recheck`), ``[data]``
(dataset, data_path, steps, encoder, train_size), ``[faults]`` (the chip's non-idealities the trainers are
not told about; see :mod:`sim.faults`), ``[chip]`` (ChipConfig fields, also ``input_shape`` and ``layers`` of a
conv chip, see ``docs/chip.md``; beta is searched, the chip threshold follows from the software threshold
``theta``), ``[device]`` (a profile name in ``base`` plus overrides),
``[search]`` (methods, surrogates, surrogate_scale_factor, beta, theta, optional lanes / weight_bits / overlap /
update / wavefront / bias_input choices; ``overlap`` applies to either UPDATE schedule, ``wavefront`` to the trials
whose chip is touched (its chip has no overlap: none is drawn); without ``bias_input`` each method
trains with its default, ``Trainer.bias_input``)
and ``[search.<method>]`` for each method's own ranges (the parameters of :data:`train.trainers.TRAINERS`);
``[hardware]`` (optional: ``fits`` — a part every design must fit, synthesised once per structure through
:func:`tune.dse.synth_cached`; ``synth_cache`` — its directory; ``clock`` — ``"fmax"`` scores latency at the
design's post-route Fmax, ``"device"`` at ``[device] clock_mhz``).
A range is ``[low, high]``; a fixed value is a number. The data, faults and chip sections make the study's
base :class:`train.config.TrainConfig`; each trial replaces what it searches.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hw.config import MAX_STEPS_DEFAULT, MAX_STEPS_RANGE, UPDATE_MODES, ChipConfig, ConfigError
from sim.faults import LIMITS, Faults
from sim.power import DeviceProfile
from train.config import DATA_FIELDS, TrainConfig, check_choice, check_float, check_int
from train.data import DATASETS
from train.encode import ENCODERS
from train.surrogates import SURROGATES
from train.trainers import TRAINERS, Param

METHODS = tuple(TRAINERS)
SAMPLERS = ("nsga2", "tpe", "gp", "random")
OBJECTIVES = ("multi", "weighted")
OBJECTIVE_NAMES = ("accuracy", "latency_us", "fps_per_watt")

#: ``[report]`` defaults: after the search the baseline and ``RECHECK_TRIALS`` Pareto trial(s) at a time are
#: re-run on ``RECHECK_SEEDS`` fresh seeds (new split, encoding, initial weights and fault instance), paired by
#: seed, and the report ranks them by those means (:mod:`tune.recheck`). One at a time: the trade-off the report
#: headlines (the lowest-latency one in the window); one stopped as out of reach gives its place to the next.
#: Five seeds for the baseline and one trade-off, 10 trainings, is the floor for a paired five-seed number.
RECHECK_SEEDS = 5
RECHECK_TRIALS = 1

#: the searched parameters common to every method (method parameters: train.trainers.TRAINERS)
COMMON = {
    "beta": Param("beta", 0.9, 0.01, 0.999, help="leak factor of every layer"),
    "theta": Param("theta", 1.0, 0.05, 20.0, log=True, help="software threshold"),
    "surrogate_scale_factor": Param("surrogate_scale_factor", 1.0, 0.05, 20.0, log=True,
                                    help="multiplies the surrogate's default slope/alpha/width"),
}
RENAMED = {"threshold": "theta"}

#: the keys of [study] and [hardware] the loader accepts, each with the note `spikeloop study template` prints
#: beside it; DATA_KEYS holds only the notes of train.config.DATA_FIELDS (the other sections' keys come from
#: ChipConfig, Faults, DeviceProfile and TRAINERS)
STUDY_KEYS = {
    "name": "the study's name in the storage (several studies can share one storage)",
    "storage": "Optuna storage URL: sqlite:///FILE.db (one machine) or postgresql://user@host/db (several)",
    "n_trials": "the study's total number of trials over every worker (1..100000); --n-trials overrides",
    "sampler": "nsga2, tpe (multivariate), gp (Gaussian process) or random (the baseline)",
    "objective": "multi: accuracy, latency_us, fps_per_watt as a Pareto front; weighted: one weighted sum "
                 "(with a median pruner on the trainers' intermediate values)",
    "weights": "objective = \"weighted\" only: the sum's weight of each objective (any real number)",
    "seed": "seed of the sampler, the data split and every trial's training (0..2147483647)",
    "out": "directory for every trial's artefacts and the report (default runs/<name>)",
    "max_consecutive_failures": "stop the study after this many failed trials in a row (1..100000)",
    "seeds_per_trial": "training seeds each trial is scored on: the mean, std as user attributes (1..50)",
}
DATA_KEYS = {
    "dataset": f"one of {', '.join(DATASETS)}",
    "data_path": "local files of the datasets that need them (nmnist: a directory, svhn: a .mat file)",
    "steps": "time steps per sample (1..10000)",
    "encoder": f"one of {', '.join(ENCODERS)}; event datasets (nmnist) need none",
    "train_size": "keep only this many training samples (data-efficiency studies); default: all",
}
HARDWARE_KEYS = {
    "fits": "a part every design must fit (a `spikeloop synth --target`): each trial's structure is "
            "synthesised once (cached) and a design that does not fit is pruned",
    "synth_cache": "directory of the synthesis cache (shared with spikeloop dse)",
    "clock": "fmax: latency at the design's post-route Fmax on `fits` (default with fits); "
             "device: at [device] clock_mhz",
}
SEARCH_KEYS = {
    "methods": "training methods to search (docs/guides/training.md), at least one",
    "surrogates": "surrogate gradients to search (docs/guides/training.md)",
    "lanes": "optional hardware knob: a list of lane counts 1..64 to search (default: [chip] lanes)",
    "weight_bits": "optional hardware knob: a list of weight widths 2..membrane_bits to search",
    "overlap": "optional hardware knob: [true, false] searches the UPDATE/EVENT overlap",
    "update": f"optional hardware knob: UPDATE schedules to search, of {', '.join(UPDATE_MODES)} "
              "(docs/chip.md#update-by-touch)",
    "wavefront": "optional hardware knob: [false, true] searches the wavefront of the trials whose update is "
                 "\"touched\" (docs/chip.md#wavefront)",
    "bias_input": "optional: [true, false] searches the always-on bias input (default: each method's own)",
}

#: a study name: it names the study in its storage, the default output folder ``runs/<name>`` and the progress
#: line, so it is one safe folder name (no path separators, no leading dot, no spaces or control characters)
NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@,-]*")
NAME_MAX = 100


def check_name(name, where: str = "study.name") -> str:
    """``name`` if it is a safe study name, else a ConfigError naming the rule (one source for every command)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}={name!r}: expected a non-empty string")
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}={name!r}: allowed are 1..{NAME_MAX} characters of letters, digits and "
                          "_ . + = @ , - (not starting with . + = @ , -); the name is also a folder name")
    return name

DEFAULT_TOML = """
[study]
name = "spikeloop"
storage = "sqlite:///runs/spikeloop.db"
n_trials = 12
sampler = "nsga2"
objective = "multi"
seed = 0
max_consecutive_failures = 3

[data]
dataset = "breast_cancer"
steps = 16
encoder = "rate"

[chip]
layer_sizes = [30, 16, 2]
lanes = 8
weight_bits = 8
membrane_bits = 16

[device]
base = "ice40up5k"

[search]
methods = ["bptt", "cilspl", "mh"]
surrogates = ["atan", "fast_sigmoid", "sigmoid", "triangular", "straight_through"]
surrogate_scale_factor = [0.25, 4.0]
beta = [0.5, 0.99]
theta = [0.25, 4.0]

[search.bptt]
epochs = [5, 20]
lr = [0.001, 0.03]

[search.bptt_qat]
epochs = [5, 20]
lr = [0.001, 0.03]

[search.cilspl]
epochs = [5, 20]
lr = [0.001, 0.03]

[search.mh]
iters = [500, 2000]
lik_std = [0.2, 1.0]
block_frac = 0.1
prior_std = 0.5
"""


@dataclass(frozen=True)
class Range:
    """A searched (``low < high``) or fixed (``low == high``) value of one parameter, on a log scale or not."""
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @property
    def fixed(self) -> bool:
        """True for a fixed value (the study does not search it)."""
        return self.low == self.high


def resolved_path(value: str, where: str) -> Path:
    """``value`` made absolute (``~`` expanded, symbolic links followed); a loop of symbolic links is a ConfigError
    naming ``where`` (pathlib raises RuntimeError, or OSError ELOOP, for one)."""
    try:
        return Path(value).expanduser().resolve()
    except (RuntimeError, OSError) as e:
        raise ConfigError(f"{where} {value}: cannot be resolved: a loop of symbolic links ({e})") from None


def _range(p: Param, value, where: str) -> Range:
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
    if number(value):
        lo = hi = value
    elif isinstance(value, list) and len(value) == 2 and all(number(v) for v in value):
        lo, hi = value
    else:
        raise ConfigError(f"{where}.{p.name}={value!r}: expected a number or [low, high]")
    if not (p.low <= lo <= hi <= p.high):
        raise ConfigError(f"{where}.{p.name}={value!r}: allowed range is {p.range_text} with low <= high")
    if p.integer and (int(lo) != lo or int(hi) != hi):
        raise ConfigError(f"{where}.{p.name}={value!r}: must be integers")
    return Range(lo, hi, p.log, p.integer)


def _int_list(se: dict, key: str, lo: int, hi: int) -> list[int] | None:
    """``search.<key>``: a non-empty list of integers ``lo..hi`` as ints (``2.0`` counts, as everywhere else:
    :func:`hw.config.check_int`), or None when not given; else a ConfigError naming it and the range."""
    v = se.get(key)
    if v is None:
        return None
    try:
        if not isinstance(v, list) or not v:
            raise ConfigError(key)
        return [check_int(key, x, lo, hi) for x in v]
    except ConfigError:
        raise ConfigError(f"search.{key}={v!r}: expected a list of integers {lo}..{hi}") from None


def _check_keys(d: dict, allowed, where: str) -> None:
    extra = set(d) - set(allowed)
    for old, new in RENAMED.items():
        if old in extra and new in allowed:
            raise ConfigError(f"[{where}]: {old!r} is now {new!r} (the software threshold; the chip threshold "
                              "in LSBs follows from it)")
    if extra:
        raise ConfigError(f"[{where}]: unknown fields {sorted(extra)}; allowed: {sorted(allowed)}")


def _table(d: dict, key: str, where: str) -> dict:
    v = d.get(key, {})
    if not isinstance(v, dict):
        raise ConfigError(f"{where}{key}={v!r}: expected a table ([{where}{key}])")
    return dict(v)


@dataclass(frozen=True)
class StudyConfig:
    """A validated study: what to search, how to score it, where to store it.

    Built from a TOML file by :meth:`load` (the user's file over ``DEFAULT_TOML``, section by section) or
    :meth:`from_toml`; every field is checked, and a mistake is a :class:`hw.config.ConfigError` naming it.
    ``spikeloop study template`` prints every key (:func:`template`). ``train`` is the base
    :class:`train.config.TrainConfig` of every trial (data, encoder, steps, faults, chip, seed); ``ranges`` and
    ``method_ranges`` are what a trial draws (:class:`Range`).
    """
    name: str
    storage: str
    n_trials: int
    sampler: str
    objective: str
    weights: dict
    seed: int
    out: Path                       # absolute: artefact paths stored in the study work from anywhere
    train: TrainConfig              # the base of every trial (dataset, encoder, steps, faults, chip, seed)
    device: DeviceProfile
    methods: tuple
    surrogates: tuple
    ranges: dict                    # name -> Range (common parameters)
    method_ranges: dict             # method -> {name -> Range}
    lanes: tuple | None = None      # hardware knobs (None = fixed to [chip])
    weight_bits: tuple | None = None
    overlap: tuple | None = None    # [search] overlap = [true, false]: the chip's UPDATE/EVENT overlap
    update: tuple | None = None     # [search] update = ["all", "touched"]: the UPDATE schedule (None = [chip] update)
    max_steps: int = MAX_STEPS_DEFAULT   # a touched trial chip's max_steps ([chip] max_steps)
    # [search] wavefront = [false, true]: the wavefront of a trial whose update is "touched" (None = [chip] wavefront)
    wavefront: tuple | None = None
    bias_input: tuple | None = None  # [search] bias_input = [true, false] (None: each method's default)
    fits: str | None = None         # [hardware]: a part the design must fit (a constraint), or None
    synth_cache: Path | None = None
    clock: str = "device"           # "fmax": latency at the post-route Fmax on `fits`; "device": [device]
    max_consecutive_failures: int = 3   # the study stops after this many failed trials in a row (per worker)
    seeds_per_trial: int = 1        # [study]: training seeds each trial is scored on (mean; std as user attribute)
    recheck_seeds: int = RECHECK_SEEDS    # [report]: fresh seeds the Pareto trials and the baseline are re-run on
    recheck_trials: int = RECHECK_TRIALS  # [report]: Pareto trials re-run at a time (besides the baseline)
    # ``out`` as written (the TOML's [study] out or --out), before resolving: resolving follows a symbolic link to
    # nothing, so the output check (hw.cli.check_writable, in tune.study.run_study) must see this one
    out_given: str = field(default="", compare=False)
    out_option: str = field(default="[study] out", compare=False)   # how errors name it ("--out" when the flag set it)

    # the base training config's parts, by their old names
    dataset = property(lambda self: self.train.dataset)
    steps = property(lambda self: self.train.steps)
    encoder = property(lambda self: self.train.encoder)
    train_size = property(lambda self: self.train.train_size)
    chip = property(lambda self: self.train.chip)

    @classmethod
    def from_toml(cls, text: str, overrides: dict | None = None) -> "StudyConfig":
        """A study from TOML text that holds every section it needs (no defaults merged in); ``overrides``
        replace ``[study]`` keys (e.g. the command line's ``--n-trials``)."""
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"study config: not valid TOML: {e}")
        return cls.from_dict(d, overrides)

    @classmethod
    def load(cls, path: str | Path | None, overrides: dict | None = None) -> "StudyConfig":
        """The study of a TOML file (``None``: the default study): its sections override ``DEFAULT_TOML``'s
        key by key (``[search.<method>]`` tables too); ``overrides`` replace ``[study]`` keys."""
        if path is None:
            return cls.from_toml(DEFAULT_TOML, overrides)
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"--config {path}: no such file")
        if not p.is_file():
            raise ConfigError(f"--config {path}: not a file")
        if p.suffix != ".toml":
            raise ConfigError(f"--config {path}: expected a .toml file")
        base = tomllib.loads(DEFAULT_TOML)
        try:
            user = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"--config {path}: not a text file")
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"--config {path}: not valid TOML: {e}")
        for section, values in user.items():          # the user's file overrides the defaults per section
            if isinstance(values, dict) and isinstance(base.get(section), dict):
                if section == "search":
                    for k, v in values.items():
                        if isinstance(v, dict) and isinstance(base["search"].get(k), dict):
                            base["search"][k].update(v)
                        else:
                            base["search"][k] = v
                else:
                    if section == "chip" and "layers" in values and "layer_sizes" not in values:
                        base["chip"].pop("layer_sizes", None)     # a conv chip derives its layer_sizes
                    base[section].update(values)
            else:
                base[section] = values
        return cls.from_dict(base, overrides)

    @classmethod
    def from_dict(cls, d: dict, overrides: dict | None = None) -> "StudyConfig":
        """A study from parsed TOML (a dict of sections); validates every key and value."""
        _check_keys(d, ("study", "data", "faults", "chip", "device", "search", "hardware", "report"), "top level")
        st, da = _table(d, "study", ""), _table(d, "data", "")
        for k, v in (overrides or {}).items():
            if v is not None:
                st[k] = v
        _check_keys(st, tuple(STUDY_KEYS), "study")
        _check_keys(da, DATA_FIELDS, "data")
        name = check_name(st.get("name", "spikeloop"), "--name" if (overrides or {}).get("name") is not None else "study.name")
        storage, out = st.get("storage", "sqlite:///runs/spikeloop.db"), st.get("out", f"runs/{name}")
        for key, v in (("storage", storage), ("out", out)):
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"study.{key}={v!r}: expected a non-empty string")
        for key, v in (("storage", storage), ("out", out)):
            if any(ord(c) < 32 or ord(c) == 127 for c in v):
                raise ConfigError(f"study.{key}={v!r}: control characters (newline, tab, ...) are not allowed")
        seeds_per_trial = check_int("study.seeds_per_trial", st.get("seeds_per_trial", 1), 1, 50)
        rep = _table(d, "report", "")
        _check_keys(rep, ("recheck_seeds", "recheck_trials"), "report")
        recheck_seeds = check_int("report.recheck_seeds", rep.get("recheck_seeds", RECHECK_SEEDS), 0, 100)
        recheck_trials = check_int("report.recheck_trials", rep.get("recheck_trials", RECHECK_TRIALS), 1, 1000)
        max_failures = check_int("study.max_consecutive_failures", st.get("max_consecutive_failures", 3), 1, 100000)
        n_trials = check_int("study.n_trials", st.get("n_trials", 12), 1, 100000)
        seed = check_int("study.seed", st.get("seed", 0), 0, 2**31 - 1)
        sampler = check_choice("study.sampler", st.get("sampler", "nsga2"), SAMPLERS)
        objective = check_choice("study.objective", st.get("objective", "multi"), OBJECTIVES)
        weights = st.get("weights", {"accuracy": 1.0, "latency_us": -0.001, "fps_per_watt": 0.0})
        if not isinstance(weights, dict):
            raise ConfigError(f"study.weights={weights!r}: expected a table like {{accuracy = 1.0}}")
        _check_keys(weights, OBJECTIVE_NAMES, "study.weights")
        weights = {k: check_float(f"study.weights.{k}", v, -1e12, 1e12) for k, v in weights.items()}
        if "weights" in st and objective != "weighted":     # a Pareto front has no sum to weight: they would be dropped
            raise ConfigError(f"study.weights: only with objective = \"weighted\" (this study's objective is "
                              f"{objective!r}, a Pareto front the weights do not change); set objective = "
                              f"\"weighted\" or remove weights")
        fd = _table(d, "faults", "")
        faults = Faults.from_dict({"seed": seed} | fd, "faults")
        ct = _table(d, "chip", "")
        # the quantiser sets each trial's chip threshold from theta: a placeholder (as train --config has) unless
        # given, so a membrane under 8 bits is not refused for the default threshold 64 no study uses
        ct.setdefault("threshold", 1)
        chip = ChipConfig.from_dict(ct)
        train = TrainConfig(dataset=da.get("dataset", "breast_cancer"), data_path=da.get("data_path"),
                            steps=da.get("steps", 16), encoder=da.get("encoder", "rate"),
                            train_size=da.get("train_size"), faults=faults, chip=chip, seed=seed,
                            bias_input=False)   # the shared data; each trial adds the bias input it has
        dev = _table(d, "device", "") or {"base": "ice40up5k"}
        dev.setdefault("name", dev.get("base", "custom"))
        device = DeviceProfile.from_dict(dev)
        se = _table(d, "search", "")
        _check_keys(se, tuple(SEARCH_KEYS) + tuple(COMMON) + METHODS, "search")
        methods = se.get("methods", ["bptt", "cilspl", "mh"])
        if not isinstance(methods, list) or not methods or any(m not in METHODS for m in methods):
            raise ConfigError(f"search.methods={methods!r}: allowed values are {list(METHODS)} (at least one)")
        surrogates = se.get("surrogates", list(SURROGATES))
        if not isinstance(surrogates, list) or not surrogates or any(s not in SURROGATES for s in surrogates):
            bad = [s for s in surrogates if s not in SURROGATES] if isinstance(surrogates, list) else surrogates
            raise ConfigError(f"search.surrogates: unknown {bad!r}; allowed values are {sorted(SURROGATES)}")
        defaults = {"surrogate_scale_factor": [0.25, 4.0], "beta": [0.5, 0.99], "theta": [0.25, 4.0]}
        ranges = {k: _range(p, se.get(k, defaults[k]), "search") for k, p in COMMON.items()}
        method_ranges = {}
        default_search = tomllib.loads(DEFAULT_TOML)["search"]
        for m in methods:
            md = dict(default_search.get(m, {})) | _table(se, m, "search.")
            trainer = TRAINERS[m]
            _check_keys(md, trainer.param_names, f"search.{m}")
            method_ranges[m] = {k: _range(trainer.param(k), v, f"search.{m}") for k, v in md.items()}
        if "mh" in method_ranges:
            _check_mh_ranges(method_ranges["mh"])
        lanes = _int_list(se, "lanes", 1, 64)
        wbits = _int_list(se, "weight_bits", 2, chip.membrane_bits)
        overlap = se.get("overlap")
        if overlap is not None and (not isinstance(overlap, list) or not overlap or
                                    not all(isinstance(x, bool) for x in overlap)):
            raise ConfigError(f"search.overlap={overlap!r}: expected a list of true/false")
        update = _update_choices(se.get("update"))
        max_steps = chip.max_steps if chip.touched else ct.get("max_steps", MAX_STEPS_DEFAULT)
        if chip.touched or (update and "touched" in update):
            # the touched chip of every trial that can draw it: ChipConfig's own checks (max_steps) now, never at
            # a trial
            touched = chip.replace(update="touched", max_steps=max_steps)
            if touched.max_steps < train.steps:
                raise ConfigError(f"data.steps={train.steps}: a chip with update='touched' runs at most "
                                  f"chip.max_steps={touched.max_steps} steps per sample; allowed range is "
                                  f"1..{touched.max_steps} (or raise chip.max_steps)")
            if faults.distortion:
                raise ConfigError(f"faults.distortion={faults.distortion:g}: the membrane distortion is not "
                                  "modelled with update='touched'; allowed is 0 (or leave \"touched\" out)")
            max_steps = touched.max_steps
        wavefront = _wavefront_choices(se.get("wavefront"), chip, update)
        every_wave = chip.wavefront or (wavefront == (True,) and (update or ("touched",)) == ("touched",))
        if overlap is not None and every_wave:
            raise ConfigError(f"search.overlap={overlap!r}: every trial's chip is a wavefront chip, which has no "
                              "overlap (docs/chip.md#wavefront); allowed: leave search.overlap out")
        bias = se.get("bias_input")
        if isinstance(bias, bool):
            bias = [bias]
        if bias is not None and (not isinstance(bias, list) or not bias or
                                 not all(isinstance(x, bool) for x in bias)):
            raise ConfigError(f"search.bias_input={bias!r}: expected true, false or a list of them")
        if bias and any(bias) and chip.input_shape is not None:
            raise ConfigError("search.bias_input: a conv chip (chip.input_shape) has no place for the bias input; "
                              "use bias_input = false")
        hw = _table(d, "hardware", "")
        _check_keys(hw, tuple(HARDWARE_KEYS), "hardware")
        fits = hw.get("fits")
        if fits is not None:
            from hw.synth import TARGETS
            if fits not in TARGETS:
                raise ConfigError(f"hardware.fits={fits!r}: unknown part; allowed values are {', '.join(TARGETS)}")
        clock = check_choice("hardware.clock", hw.get("clock", "fmax" if fits else "device"), ("fmax", "device"))
        if clock == "fmax" and not fits:
            raise ConfigError('hardware.clock="fmax" needs hardware.fits (the part whose Fmax to use)')
        cache = hw.get("synth_cache", "runs/dse/synth-cache")
        if not isinstance(cache, str) or not cache.strip():
            raise ConfigError(f"hardware.synth_cache={cache!r}: expected a directory path")
        out_option = "--out" if (overrides or {}).get("out") is not None else "[study] out"
        return cls(name=name, storage=storage, n_trials=n_trials, sampler=sampler, objective=objective,
                   weights=weights, seed=seed, out=resolved_path(out, out_option), train=train, device=device,
                   methods=tuple(methods), surrogates=tuple(surrogates), ranges=ranges,
                   method_ranges=method_ranges, lanes=tuple(lanes) if lanes else None,
                   weight_bits=tuple(wbits) if wbits else None,
                   overlap=tuple(dict.fromkeys(overlap)) if overlap else None, update=update, max_steps=max_steps,
                   wavefront=wavefront,
                   bias_input=tuple(dict.fromkeys(bias)) if bias else None, fits=fits,
                   synth_cache=resolved_path(cache, "hardware.synth_cache"), clock=clock, max_consecutive_failures=max_failures,
                   seeds_per_trial=seeds_per_trial, recheck_seeds=recheck_seeds, recheck_trials=recheck_trials,
                   out_given=out, out_option=out_option)

    def identity(self) -> dict:
        """What a study's trials were measured against — the data and its split (dataset, path, steps, encoder,
        train size, seed), the chip, the faults, the device profile, the objective (and its weights) and the
        hardware constraint — as flat ``section.field`` -> JSON value. A study remembers it when created and
        refuses to be resumed with another (:func:`tune.study.open_study`); the search space, trial count,
        sampler, storage and output folder may change between runs."""
        t = self.train.to_dict()
        flat = {f"data.{k}": t.get(k) for k in DATA_FIELDS}
        if flat["data.data_path"]:               # the files it names, wherever the command runs
            flat["data.data_path"] = str(resolved_path(flat["data.data_path"], "data.data_path"))
        flat["study.seed"] = self.seed
        flat["train.quantiser"] = t.get("quantiser")
        flat["train.backend"] = t.get("backend")
        for k, v in t.get("faults", {}).items():
            flat[f"faults.{k}"] = v
        for k, v in (t.get("chip") or {}).items():
            if k not in ("beta", "threshold"):        # searched per trial (beta, theta)
                flat[f"chip.{k}"] = v
        for k, v in _as_dict(self.device).items():
            flat[f"device.{k}"] = v
        flat["study.objective"] = self.objective
        if self.objective == "weighted":
            flat["study.weights"] = dict(sorted(self.weights.items()))
        flat["hardware.fits"] = self.fits
        flat["hardware.clock"] = self.clock
        if self.seeds_per_trial != 1:        # what a trial's values mean (absent: one seed, as before)
            flat["study.seeds_per_trial"] = self.seeds_per_trial
        return json.loads(json.dumps(flat, sort_keys=True, default=_jsonable))


def _as_dict(obj) -> dict:
    import dataclasses
    if hasattr(obj, "to_dict"):
        return dict(obj.to_dict())
    return dataclasses.asdict(obj)


def _jsonable(v):
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, (tuple, set, frozenset)):
        return list(v)
    if hasattr(v, "item"):                # numpy scalars
        return v.item()
    return repr(v)


def _update_choices(v) -> tuple | None:
    """``[search] update``: a schedule or a list of them (:data:`hw.config.UPDATE_MODES`), as a tuple without
    repeats; ``None`` when not given (each trial keeps ``[chip] update``)."""
    if v is None:
        return None
    vals = [v] if isinstance(v, str) else v
    if not isinstance(vals, list) or not vals or not all(isinstance(x, str) and x in UPDATE_MODES for x in vals):
        raise ConfigError(f"search.update={v!r}: allowed values are {list(UPDATE_MODES)} (one or a list)")
    return tuple(dict.fromkeys(vals))


def _wavefront_choices(v, chip: ChipConfig, update: tuple | None) -> tuple | None:
    """``[search] wavefront``: true, false or a list of them, as a tuple without repeats; ``None`` when not given
    (each touched trial keeps ``[chip] wavefront``). Only a trial whose update is "touched" has a wavefront (and
    draws it), so a wavefront must be reachable: ``true`` needs a trial that can be touched (``[search] update``
    with "touched", or ``[chip] update = "touched"`` without ``[search] update``). ``[chip] wavefront = true``
    fixes it for every trial: then every trial must be touched, and ``[search] wavefront`` is not given too."""
    touched = ("touched" in update) if update else chip.touched     # can a trial be touched?
    where = f"search.update={list(update)!r}" if update else f"chip.update={chip.update!r}"
    if chip.wavefront:
        if update and "all" in update:
            raise ConfigError(f"chip.wavefront=true: every trial's chip would be a wavefront chip, but {where} "
                              "draws update='all' too, which has none; allowed: search.update=['touched'], or "
                              "chip.wavefront=false with search.wavefront=[true] (the touched trials only)")
        if v is not None:
            raise ConfigError(f"search.wavefront={v!r} with chip.wavefront=true: give the wavefront in one place "
                              "(chip.wavefront fixes it, search.wavefront searches it; allowed: leave one out)")
    if v is None:
        return None
    vals = [v] if isinstance(v, bool) else v
    if not isinstance(vals, list) or not vals or not all(isinstance(x, bool) for x in vals):
        raise ConfigError(f"search.wavefront={v!r}: allowed values are true and false (one or a list)")
    if any(vals) and not touched:
        raise ConfigError(f"search.wavefront={v!r}: a wavefront chip needs update='touched', and no trial is "
                          f"touched ({where}); allowed: search.wavefront=[false], or \"touched\" in search.update")
    return tuple(dict.fromkeys(vals))


def _check_mh_ranges(r: dict) -> None:
    """Every (iters, burn_in, thin) the sampler can draw must be a valid chain — checked at the worst draw
    (fewest iters, most burn-in, widest thinning) by the chain's own rule (:func:`train.mh.check_mh`), so a
    study never starts with ranges that fail at its first MH trial."""
    iters, burn, thin = r.get("iters"), r.get("burn_in"), r.get("thin")
    from train.trainers import TRAINERS
    p = {x.name: x.default for x in TRAINERS["mh"].params}
    lo = int(iters.low) if iters else p["iters"]
    burn_hi = int(burn.high) if burn else lo // 2
    thin_hi = int(thin.high) if thin else p["thin"]
    text = lambda x: "unset" if x is None else (f"{x.low:g}" if x.fixed else f"[{x.low:g}, {x.high:g}]")
    from train.mh import check_mh
    try:                                    # the chain's own rule decides, at the worst draw
        check_mh(**(p | {"iters": lo, "burn_in": burn_hi, "thin": thin_hi}))
        return
    except ConfigError as e:
        rule = str(e)
    if burn is not None and not burn_hi < lo:
        raise ConfigError(f"search.mh.burn_in={text(burn)} with search.mh.iters={text(iters)}: every burn_in "
                          f"drawn must be below every iters drawn — allowed burn_in range is 0..{lo - 1}")
    if not thin_hi <= lo - burn_hi:
        raise ConfigError(f"search.mh.thin={text(thin) if thin else str(thin_hi) + ' (default)'} with "
                          f"search.mh.iters={text(iters)} and search.mh.burn_in="
                          f"{text(burn) if burn else 'iters/2'}: thin must not exceed iters - burn_in at any draw — "
                          f"allowed thin range is 1..{max(1, lo - burn_hi)}"
                          + ("" if lo - burn_hi >= 1 else " (lower burn_in first)"))
    raise ConfigError(f"search.mh at its worst draw (iters={lo}, burn_in={burn_hi}, thin={thin_hi}): {rule}")


# -- `spikeloop study template`: every key the loader accepts, with the defaults and a note on each -------------

#: notes on the [chip] fields (the fields themselves: hw.config.ChipConfig)
CHIP_NOTES = {
    "layer_sizes": "input size, then one size per fully-connected layer (1..65536 each)",
    "weight_bits": "signed weights, 2..16 (at most membrane_bits)",
    "membrane_bits": "signed saturating membrane, 4..32",
    "lanes": "neurons updated (weights read) per cycle, 1..64",
    "beta_frac_bits": "beta = beta_int / 2**beta_frac_bits, 1..16",
    "threshold_offset_bits": "signed per-neuron threshold trim, 1..16",
    "beta": "leak factor in (0, 1), one or per layer (in a study: searched, see [search] beta)",
    "threshold": "chip threshold in membrane LSBs (in a study: follows from the software threshold theta)",
    "reset": "subtract or zero",
    "input_shape": "conv chip: the input's [C, H, W] (features arrive HWC-flattened)",
    "layers": "conv chip: conv / pool / fc entries; layer_sizes is then derived "
              "(docs/guides/training.md#convolutional-layers)",
    "overlap": "a layer's UPDATE streams its spikes into the next layer's EVENT phase",
    "update": f"UPDATE schedule, one of {', '.join(UPDATE_MODES)}: \"touched\" visits only touched/hot words (quiet conv chips)",
    "max_steps": f"update = \"touched\": the longest sample in steps (its step stamps' width), "
                 f"{MAX_STEPS_RANGE[0]}..{MAX_STEPS_RANGE[1]}",
    "bias": "per layer, one integer per output neuron (fc) / channel (conv) in membrane LSBs, in the membrane's "
            "range; left out: no bias memory; not with update = \"touched\" (docs/chip.md#bias)",
    "wavefront": "update = \"touched\": the layers as a dataflow, a membrane memory per layer; overlap is then off "
                 "(docs/chip.md#wavefront)",
}
#: notes on the [device] fields (the fields themselves: sim.power.DeviceProfile)
DEVICE_NOTES = {
    "base": "the profile the other fields override: {profiles}",
    "synth_report": "a `spikeloop synth` report (JSON): its post-route Fmax becomes clock_mhz",
    "name": "a label for the report",
    "clock_mhz": "clock for the latency figures, MHz",
    "static_mw": "static power, mW",
    "synop_pj": "energy of one synaptic accumulate, pJ",
    "weight_read_pj": "one weight-memory word read (lanes weights), pJ",
    "state_read_pj": "one membrane-memory word read, pJ",
    "state_write_pj": "one membrane-memory word write, pJ",
    "neuron_update_pj": "one leak / compare / reset, pJ",
    "event_pj": "one address event moved, pJ",
    "cycle_pj": "clock tree and control per busy cycle, pJ",
    "source": "what the figures rest on (free text)",
}
#: notes on the [faults] fields (sim.faults.Faults)
FAULT_NOTES = {
    "distortion": "membrane distortion sigma (EIF-like, fast model only)",
    "threshold_mismatch": "per-neuron threshold offsets ~ N(0, (mismatch*thr)^2)",
    "leak_mismatch": "per-neuron beta_int * (1 + N(0, mismatch^2)), fast model only",
    "stuck_zero": "fraction of synapses that read as 0",
    "seed": "seed of the drawn faults (default: [study] seed)",
}
#: the template's own study (not the default study's name and storage: a copy edited and run must not resume it)
TEMPLATE_STUDY = {"name": "my_study", "storage": "sqlite:///runs/my_study.db", "out": "runs/my_study"}
#: what `study template --conv` changes: digits as 1x8x8 images on a conv chip (docs/experiments/conv_digits.toml)
CONV_TEMPLATE = {
    "study": {"name": "my_conv_study", "storage": "sqlite:///runs/my_conv_study.db", "out": "runs/my_conv_study",
              "sampler": "tpe"},
    "data": {"dataset": "digits"},
    "chip": {"input_shape": [1, 8, 8],
             "layers": [{"kind": "conv", "channels": 8, "kernel": 3, "padding": 1},
                        {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}]},
    "search": {"methods": ["bptt", "bptt_qat", "cilspl"]},
}


def _toml(v) -> str:
    """One TOML value (the subset a study file uses)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _line(key: str, value, note: str, on: bool) -> str:
    text = f"{key} = {_toml(value)}"
    if not on:
        text = "# " + text
    return f"{text:<44s} # {note}" if note else text


def template(conv: bool = False) -> str:
    """A complete study TOML: every section and key :meth:`StudyConfig.from_dict` accepts, the defaults
    (``DEFAULT_TOML``) filled in — under its own study name and storage (:data:`TEMPLATE_STUDY`) —, optional keys
    commented out, a note on each. ``conv``: a conv chip on digits (:data:`CONV_TEMPLATE`).
    ``spikeloop study template [--conv]`` prints it; ``study run --config`` accepts it as it is."""
    import dataclasses

    from hw.synth import TARGETS
    from sim.power import PROFILES
    d = tomllib.loads(DEFAULT_TOML)
    d["study"].update(TEMPLATE_STUDY)
    if conv:
        for section, values in CONV_TEMPLATE.items():
            d[section].update(values)
        d["chip"].pop("layer_sizes", None)
    out = ["# A spikeloop study: `spikeloop study run --config THIS.toml`. Generated by `spikeloop study template"
           + (" --conv" if conv else "") + "`.",
           "# A range is [low, high] (searched); a single number is fixed. A file needs only the sections and keys",
           "# it changes: the rest come from the defaults, section by section. Commented keys are optional.",
           "# Guide: docs/guides/studies.md"]

    def section(name, comment=""):
        out.append("")
        out.append(f"[{name}]" + (f"  # {comment}" if comment else ""))

    section("study")
    study_defaults = {"weights": {"accuracy": 1.0, "latency_us": -0.001, "fps_per_watt": 0.0}, "max_consecutive_failures": 3,
                      "seeds_per_trial": 1}
    for k, note in STUDY_KEYS.items():
        on = k in d["study"]
        out.append(_line(k, d["study"].get(k, study_defaults.get(k)), note, on))
    section("data")
    data_defaults = {"data_path": "data/", "train_size": 100}
    for k in DATA_FIELDS:                               # the loader's [data] keys (train.config)
        note = DATA_KEYS.get(k, "")
        on = k in d["data"]
        out.append(_line(k, d["data"].get(k, data_defaults.get(k)), note, on))
    section("faults", "non-idealities of the chip the trainers are not told about; all 0 = none")
    for k, note in FAULT_NOTES.items():
        allowed = f"{LIMITS[k][0]:g}..{LIMITS[k][1]:g}" if k in LIMITS else f"integers 0..{2**32 - 1}"
        out.append(_line(k, 0 if k == "seed" else 0.0, f"{note} ({allowed})", False))
    section("chip", "the chip: docs/chip.md, every field in docs/reference/hw-config.md")
    cdef = ChipConfig()
    for f in dataclasses.fields(ChipConfig):
        k = f.name
        on = k in d["chip"]
        if on:
            v = d["chip"][k]
        elif k == "layer_sizes":
            v = list(cdef.layer_sizes)
        elif k == "input_shape":
            v = CONV_TEMPLATE["chip"]["input_shape"]
        elif k == "layers":
            v = CONV_TEMPLATE["chip"]["layers"]
        elif k == "bias":                               # no bias by default: zeros of the template's chip
            c = ChipConfig.from_dict(d["chip"])
            v = [[0] * c.out_channels(l) for l in range(c.num_layers)]
        else:
            v = getattr(cdef, k)
            v = v[0] if isinstance(v, tuple) else v
        out.append(_line(k, v, CHIP_NOTES.get(k, ""), on))
    section("device", "latency and energy model (docs/power.md)")
    base = d["device"].get("base", "ice40up5k")
    prof = PROFILES[base]
    out.append(_line("base", base, DEVICE_NOTES["base"].format(profiles=", ".join(PROFILES)), True))
    out.append(_line("synth_report", "runs/synth/ice40-up5k.json", DEVICE_NOTES["synth_report"], False))
    for f in dataclasses.fields(type(prof)):
        v = getattr(prof, f.name)
        out.append(_line(f.name, round(v, 6) if isinstance(v, float) else v, DEVICE_NOTES.get(f.name, ""), False))
    section("hardware", "optional: synthesis in the loop of the study (docs/guides/fpga.md)")
    hw_defaults = {"fits": TARGETS[0], "synth_cache": "runs/dse/synth-cache", "clock": "fmax"}
    for k, note in HARDWARE_KEYS.items():
        out.append(_line(k, hw_defaults[k], note, False))
    section("report", "after the search: the baseline and the best Pareto trials re-run on fresh seeds (docs/guides/studies.md#trials-judged-on-more-than-one-draw)")
    rep = d.get("report", {})
    out.append(_line("recheck_seeds", rep.get("recheck_seeds", RECHECK_SEEDS), "fresh seeds, paired (0..100; 0: off)",
                     "recheck_seeds" in rep))
    out.append(_line("recheck_trials", rep.get("recheck_trials", RECHECK_TRIALS),
                     "Pareto trials re-run at a time besides the baseline; a stopped one gives its place to the next (1..1000)", "recheck_trials" in rep))
    section("search", "what every trial draws; method parameters in [search.<method>]")
    se = d["search"]
    out.append(_line("methods", se["methods"], f"{SEARCH_KEYS['methods']}: {', '.join(METHODS)}", True))
    out.append(_line("surrogates", se["surrogates"], f"{SEARCH_KEYS['surrogates']}: {', '.join(SURROGATES)}",
                     True))
    for k, p in COMMON.items():
        out.append(_line(k, se.get(k, [p.low, p.high]), f"{p.help} ({p.range_text})", True))
    hw_choices = {"lanes": [4, 8], "weight_bits": [4, 8], "overlap": [True, False], "update": list(UPDATE_MODES),
                  "wavefront": [False, True]}
    for k in ("lanes", "weight_bits", "overlap", "update", "wavefront"):
        out.append(_line(k, hw_choices[k], SEARCH_KEYS[k], k in se))
    out.append(_line("bias_input", se.get("bias_input", [True, False]), SEARCH_KEYS["bias_input"], "bias_input" in se))
    for m, trainer in TRAINERS.items():
        section(f"search.{m}", trainer.description + ("" if m in se["methods"] else
                                                      " (not in methods: add it there to search it)"))
        given = se.get(m, {})
        for p in trainer.params:
            on = p.name in given
            v = given[p.name] if on else (p.default if p.default is not None else p.low)
            default = "" if p.default is None else f"; default {p.default:g}"
            out.append(_line(p.name, v, f"{p.help} ({p.range_text}{default})", on))
    return "\n".join(out) + "\n"
