"""Study configuration: a TOML file with validated fields (every error names the field and its range).

Sections: ``[study]`` (name, storage, n_trials, sampler, objective, weights, seed, out — default
``runs/<name>`` —, max_consecutive_failures), ``[data]``
(dataset, data_path, steps, encoder, train_size), ``[faults]`` (the chip's non-idealities the trainers are
not told about; see :mod:`sim.faults`), ``[chip]`` (ChipConfig fields, also ``input_shape`` and ``layers`` of a
conv chip, see ``docs/chip.md``; beta is searched, the chip threshold follows from the software threshold
``theta``), ``[device]`` (a profile name in ``base`` plus overrides),
``[search]`` (methods, surrogates, surrogate_scale_factor, beta, theta, optional lanes / weight_bits / overlap choices)
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
from dataclasses import dataclass
from pathlib import Path

from hw.config import ChipConfig, ConfigError
from sim.faults import Faults
from sim.power import DeviceProfile
from train.config import DATA_FIELDS, TrainConfig, check_choice, check_float, check_int
from train.surrogates import SURROGATES
from train.trainers import TRAINERS, Param

METHODS = tuple(TRAINERS)
SAMPLERS = ("nsga2", "tpe", "gp", "random")
OBJECTIVES = ("multi", "weighted")
OBJECTIVE_NAMES = ("accuracy", "latency_us", "fps_per_watt")

#: the searched parameters common to every method (method parameters: train.trainers.TRAINERS)
COMMON = {
    "beta": Param("beta", 0.9, 0.01, 0.999, help="leak factor of every layer"),
    "theta": Param("theta", 1.0, 0.05, 20.0, log=True, help="software threshold"),
    "surrogate_scale_factor": Param("surrogate_scale_factor", 1.0, 0.05, 20.0, log=True,
                                    help="multiplies the surrogate's default slope/alpha/width"),
}
RENAMED = {"threshold": "theta"}

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
    low: float
    high: float
    log: bool = False
    integer: bool = False

    @property
    def fixed(self) -> bool:
        return self.low == self.high


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
    fits: str | None = None         # [hardware]: a part the design must fit (a constraint), or None
    synth_cache: Path | None = None
    clock: str = "device"           # "fmax": latency at the post-route Fmax on `fits`; "device": [device]
    max_consecutive_failures: int = 3   # the study stops after this many failed trials in a row (per worker)

    # the base training config's parts, by their old names
    dataset = property(lambda self: self.train.dataset)
    steps = property(lambda self: self.train.steps)
    encoder = property(lambda self: self.train.encoder)
    train_size = property(lambda self: self.train.train_size)
    chip = property(lambda self: self.train.chip)

    @classmethod
    def from_toml(cls, text: str, overrides: dict | None = None) -> "StudyConfig":
        try:
            d = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"study config: not valid TOML: {e}")
        return cls.from_dict(d, overrides)

    @classmethod
    def load(cls, path: str | Path | None, overrides: dict | None = None) -> "StudyConfig":
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
        _check_keys(d, ("study", "data", "faults", "chip", "device", "search", "hardware"), "top level")
        st, da = _table(d, "study", ""), _table(d, "data", "")
        for k, v in (overrides or {}).items():
            if v is not None:
                st[k] = v
        _check_keys(st, ("name", "storage", "n_trials", "sampler", "objective", "weights", "seed", "out",
                         "max_consecutive_failures"), "study")
        _check_keys(da, DATA_FIELDS, "data")
        name = check_name(st.get("name", "spikeloop"), "--name" if (overrides or {}).get("name") else "study.name")
        storage, out = st.get("storage", "sqlite:///runs/spikeloop.db"), st.get("out", f"runs/{name}")
        for key, v in (("storage", storage), ("out", out)):
            if not isinstance(v, str) or not v.strip():
                raise ConfigError(f"study.{key}={v!r}: expected a non-empty string")
        for key, v in (("storage", storage), ("out", out)):
            if any(ord(c) < 32 or ord(c) == 127 for c in v):
                raise ConfigError(f"study.{key}={v!r}: control characters (newline, tab, ...) are not allowed")
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
        fd = _table(d, "faults", "")
        faults = Faults.from_dict({"seed": seed} | fd, "faults")
        chip = ChipConfig.from_dict(_table(d, "chip", ""))
        train = TrainConfig(dataset=da.get("dataset", "breast_cancer"), data_path=da.get("data_path"),
                            steps=da.get("steps", 16), encoder=da.get("encoder", "rate"),
                            train_size=da.get("train_size"), faults=faults, chip=chip, seed=seed)
        dev = _table(d, "device", "") or {"base": "ice40up5k"}
        dev.setdefault("name", dev.get("base", "custom"))
        device = DeviceProfile.from_dict(dev)
        se = _table(d, "search", "")
        _check_keys(se, ("methods", "surrogates", "lanes", "weight_bits", "overlap") + tuple(COMMON) + METHODS,
                    "search")
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
        lanes = se.get("lanes")
        if lanes is not None and (not isinstance(lanes, list) or not lanes or
                                  not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= 64
                                          for x in lanes)):
            raise ConfigError(f"search.lanes={lanes!r}: expected a list of integers 1..64")
        wbits = se.get("weight_bits")
        if wbits is not None and (not isinstance(wbits, list) or not wbits or
                                  not all(isinstance(x, int) and not isinstance(x, bool) and
                                          2 <= x <= chip.membrane_bits for x in wbits)):
            raise ConfigError(f"search.weight_bits={wbits!r}: expected a list of integers 2..{chip.membrane_bits}")
        overlap = se.get("overlap")
        if overlap is not None and (not isinstance(overlap, list) or not overlap or
                                    not all(isinstance(x, bool) for x in overlap)):
            raise ConfigError(f"search.overlap={overlap!r}: expected a list of true/false")
        hw = _table(d, "hardware", "")
        _check_keys(hw, ("fits", "synth_cache", "clock"), "hardware")
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
        return cls(name=name, storage=storage, n_trials=n_trials, sampler=sampler, objective=objective,
                   weights=weights, seed=seed, out=Path(out).expanduser().resolve(), train=train, device=device,
                   methods=tuple(methods), surrogates=tuple(surrogates), ranges=ranges,
                   method_ranges=method_ranges, lanes=tuple(lanes) if lanes else None,
                   weight_bits=tuple(wbits) if wbits else None,
                   overlap=tuple(dict.fromkeys(overlap)) if overlap else None, fits=fits,
                   synth_cache=Path(cache).expanduser().resolve(), clock=clock, max_consecutive_failures=max_failures)

    def identity(self) -> dict:
        """What a study's trials were measured against — the data and its split (dataset, path, steps, encoder,
        train size, seed), the chip, the faults, the device profile, the objective (and its weights) and the
        hardware constraint — as flat ``section.field`` -> JSON value. A study remembers it when created and
        refuses to be resumed with another (:func:`tune.study.open_study`); the search space, trial count,
        sampler, storage and output folder may change between runs."""
        t = self.train.to_dict()
        flat = {f"data.{k}": t.get(k) for k in ("dataset", "data_path", "steps", "encoder", "train_size")}
        if flat["data.data_path"]:               # the files it names, wherever the command runs
            flat["data.data_path"] = str(Path(flat["data.data_path"]).expanduser().resolve())
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
