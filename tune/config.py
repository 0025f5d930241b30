"""Study configuration: a TOML file with validated fields (every error names the field and its range).

Sections: ``[study]`` (name, storage, n_trials, sampler, objective, weights, seed, out), ``[data]``
(dataset, steps, encoder, train_size), ``[chip]`` (ChipConfig fields; beta/threshold are searched),
``[device]`` (a profile name in ``base`` plus overrides), ``[search]`` (methods, surrogates,
surrogate_scale_factor, beta, threshold, optional lanes / weight_bits choices) and
``[search.bptt]``, ``[search.cilspl]``, ``[search.mh]`` for each method's own ranges.
A range is ``[low, high]``; a fixed value is a number.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hw.config import ChipConfig, ConfigError
from sim.power import DeviceProfile
from train.data import DATASETS
from train.encode import ENCODERS
from train.surrogates import SURROGATES

METHODS = ("bptt", "cilspl", "mh")
SAMPLERS = ("nsga2", "tpe")
OBJECTIVES = ("multi", "weighted")
OBJECTIVE_NAMES = ("accuracy", "latency_us", "fps_per_watt")

#: allowed ranges of searchable parameters: name -> (lowest, highest, log scale)
LIMITS = {
    "beta": (0.01, 0.999, False), "threshold": (0.05, 20.0, True), "surrogate_scale_factor": (0.05, 20.0, True),
    "epochs": (1, 500, False), "lr": (1e-5, 0.5, True),
    "iters": (10, 100000, False), "lik_std": (0.01, 10.0, True), "block_frac": (0.001, 1.0, True),
    "prior_std": (0.01, 10.0, True),
}
METHOD_PARAMS = {"bptt": ("epochs", "lr"), "cilspl": ("epochs", "lr"),
                 "mh": ("iters", "lik_std", "block_frac", "prior_std")}

DEFAULT_TOML = """
[study]
name = "spikeloop"
storage = "sqlite:///runs/spikeloop.db"
n_trials = 12
sampler = "nsga2"
objective = "multi"
seed = 0
out = "runs/spikeloop"

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
threshold = [0.25, 4.0]

[search.bptt]
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


def _range(name: str, value, where: str) -> Range:
    lo_lim, hi_lim, log = LIMITS[name]
    integer = name in ("epochs", "iters")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo = hi = value
    elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        lo, hi = value
    else:
        raise ConfigError(f"{where}.{name}={value!r}: expected a number or [low, high]")
    if not (lo_lim <= lo <= hi <= hi_lim):
        raise ConfigError(f"{where}.{name}={value!r}: allowed range is {lo_lim}..{hi_lim} with low <= high")
    if integer and (int(lo) != lo or int(hi) != hi):
        raise ConfigError(f"{where}.{name}={value!r}: must be integers")
    return Range(lo, hi, log, integer)


def _check_keys(d: dict, allowed, where: str) -> None:
    extra = set(d) - set(allowed)
    if extra:
        raise ConfigError(f"[{where}]: unknown fields {sorted(extra)}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class StudyConfig:
    name: str
    storage: str
    n_trials: int
    sampler: str
    objective: str
    weights: dict
    seed: int
    out: Path
    dataset: str
    steps: int
    encoder: str
    train_size: int | None
    chip: ChipConfig
    device: DeviceProfile
    methods: tuple
    surrogates: tuple
    ranges: dict                    # name -> Range (common parameters)
    method_ranges: dict             # method -> {name -> Range}
    lanes: tuple | None = None      # hardware knobs (None = fixed to [chip])
    weight_bits: tuple | None = None

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
        base = tomllib.loads(DEFAULT_TOML)
        if p.suffix != ".toml":
            raise ConfigError(f"--config {path}: expected a .toml file")
        try:
            user = tomllib.loads(p.read_text())
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
                    base[section].update(values)
            else:
                base[section] = values
        return cls.from_dict(base, overrides)

    @classmethod
    def from_dict(cls, d: dict, overrides: dict | None = None) -> "StudyConfig":
        _check_keys(d, ("study", "data", "chip", "device", "search"), "top level")
        st, da = dict(d.get("study", {})), dict(d.get("data", {}))
        for k, v in (overrides or {}).items():
            if v is not None:
                st[k] = v
        _check_keys(st, ("name", "storage", "n_trials", "sampler", "objective", "weights", "seed", "out"), "study")
        _check_keys(da, ("dataset", "steps", "encoder", "train_size"), "data")
        n_trials = st.get("n_trials", 12)
        if not isinstance(n_trials, int) or not 1 <= n_trials <= 100000:
            raise ConfigError(f"study.n_trials={n_trials!r}: allowed range is integers 1..100000")
        sampler, objective = st.get("sampler", "nsga2"), st.get("objective", "multi")
        if sampler not in SAMPLERS:
            raise ConfigError(f"study.sampler={sampler!r}: allowed values are {SAMPLERS}")
        if objective not in OBJECTIVES:
            raise ConfigError(f"study.objective={objective!r}: allowed values are {OBJECTIVES}")
        weights = dict(st.get("weights", {"accuracy": 1.0, "latency_us": -0.001, "fps_per_watt": 0.0}))
        _check_keys(weights, OBJECTIVE_NAMES, "study.weights")
        dataset = da.get("dataset", "breast_cancer")
        if dataset not in DATASETS:
            raise ConfigError(f"data.dataset={dataset!r}: allowed values are {DATASETS}")
        steps = da.get("steps", 16)
        if not isinstance(steps, int) or not 1 <= steps <= 1000:
            raise ConfigError(f"data.steps={steps!r}: allowed range is integers 1..1000")
        encoder = da.get("encoder", "rate")
        if encoder not in ENCODERS:
            raise ConfigError(f"data.encoder={encoder!r}: allowed values are {ENCODERS}")
        chip = ChipConfig.from_dict(dict(d.get("chip", {})))
        dev = dict(d.get("device", {"base": "ice40up5k"}))
        dev.setdefault("name", dev.get("base", "custom"))
        device = DeviceProfile.from_dict(dev)
        se = dict(d.get("search", {}))
        _check_keys(se, ("methods", "surrogates", "surrogate_scale_factor", "beta", "threshold", "lanes",
                         "weight_bits") + METHODS, "search")
        methods = tuple(se.get("methods", METHODS))
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise ConfigError(f"search.methods={list(methods)}: allowed values are {METHODS} (at least one)")
        surrogates = tuple(se.get("surrogates", tuple(SURROGATES)))
        bad = [s for s in surrogates if s not in SURROGATES]
        if bad or not surrogates:
            raise ConfigError(f"search.surrogates: unknown {bad}; allowed values are {sorted(SURROGATES)}")
        ranges = {k: _range(k, se.get(k, default), "search") for k, default in
                  (("surrogate_scale_factor", [0.25, 4.0]), ("beta", [0.5, 0.99]), ("threshold", [0.25, 4.0]))}
        method_ranges = {}
        defaults = tomllib.loads(DEFAULT_TOML)["search"]
        for m in methods:
            md = dict(defaults[m]) | dict(se.get(m, {}))
            _check_keys(md, METHOD_PARAMS[m], f"search.{m}")
            method_ranges[m] = {k: _range(k, v, f"search.{m}") for k, v in md.items()}
        lanes = se.get("lanes")
        if lanes is not None and (not isinstance(lanes, list) or not all(isinstance(x, int) and 1 <= x <= 64 for x in lanes)):
            raise ConfigError(f"search.lanes={lanes!r}: expected a list of integers 1..64")
        wbits = se.get("weight_bits")
        if wbits is not None and (not isinstance(wbits, list) or
                                  not all(isinstance(x, int) and 2 <= x <= chip.membrane_bits for x in wbits)):
            raise ConfigError(f"search.weight_bits={wbits!r}: expected a list of integers 2..{chip.membrane_bits}")
        return cls(name=str(st.get("name", "spikeloop")), storage=str(st.get("storage", "sqlite:///runs/spikeloop.db")),
                   n_trials=n_trials, sampler=sampler, objective=objective, weights=weights,
                   seed=int(st.get("seed", 0)), out=Path(st.get("out", "runs/spikeloop")), dataset=dataset,
                   steps=steps, encoder=encoder, train_size=da.get("train_size"), chip=chip, device=device,
                   methods=methods, surrogates=surrogates, ranges=ranges, method_ranges=method_ranges,
                   lanes=tuple(lanes) if lanes else None, weight_bits=tuple(wbits) if wbits else None)
