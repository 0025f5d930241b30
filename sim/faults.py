"""A chip with faults its trainer is not told about.

:class:`FaultyChip` wraps any :class:`sim.chip.Chip`. Faults (all off by default, and then the wrapper
is the plain chip, bit for bit):

* ``distortion`` σ ≥ 0 — an exponential (EIF-like) non-linearity on the membrane dynamics: after
  saturation, ``v ← v + σ·Δ·exp((min(v, thr) − thr)/Δ)`` with ``Δ = thr/4`` (rounded to an integer,
  saturated). It pushes membranes approaching threshold up (by at most σ·Δ), more strongly the larger σ;
  the cap at threshold keeps a neuron that fired from latching at the rail. Fast model only.
* ``threshold_mismatch`` — per-neuron threshold offsets ~ N(0, (mismatch·thr)²), drawn once per chip
  instance (``seed``); expressed through the RTL's threshold-offset memory, so every backend has it.
* ``leak_mismatch`` — per-neuron ``beta_int`` ~ beta_int·(1 + N(0, mismatch²)); fast model only.
* ``stuck_zero`` — that fraction of synapses reads as 0 (drawn once); expressed by zeroing weights, so
  every backend has it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import ChipConfig, ConfigError, check_int
from sim.chip import Chip, FastChip


#: allowed range of each fault strength (inclusive)
LIMITS = {"distortion": (0.0, 10.0), "threshold_mismatch": (0.0, 2.0), "leak_mismatch": (0.0, 2.0),
          "stuck_zero": (0.0, 1.0)}


@dataclass(frozen=True)
class Faults:
    distortion: float = 0.0
    threshold_mismatch: float = 0.0
    leak_mismatch: float = 0.0
    stuck_zero: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name, (lo, hi) in LIMITS.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not lo <= v <= hi:
                raise ConfigError(f"{name}={v!r}: allowed range is {lo:g}..{hi:g}")
        # hw.config.check_int, as every other integer of a config file: a TOML 1.0 is the seed 1
        object.__setattr__(self, "seed", check_int("faults seed", self.seed, 0, 2**32 - 1))

    @classmethod
    def from_dict(cls, d, where: str = "faults") -> "Faults":
        if not isinstance(d, dict):
            raise ConfigError(f"{where}={d!r}: expected a table with fields {sorted(LIMITS) + ['seed']}")
        unknown = set(d) - set(LIMITS) - {"seed"}
        if unknown:
            raise ConfigError(f"[{where}]: unknown fields {sorted(unknown)}; allowed: {sorted(LIMITS) + ['seed']}")
        return cls(**d)

    @property
    def rtl_expressible(self) -> bool:
        return self.distortion == 0 and self.leak_mismatch == 0


def eif_distortion(cfg: ChipConfig, sigma: float):
    """The membrane distortion for strength ``sigma`` (a function of (v, layer))."""
    def f(v: np.ndarray, layer: int) -> np.ndarray:
        thr = cfg.threshold[layer]
        delta = max(thr / 4.0, 1.0)
        arg = (np.minimum(v, thr) - thr) / delta        # sub-threshold exponential, capped at threshold
        return np.rint(v + sigma * delta * np.exp(arg))
    return f


class FaultyChip(Chip):
    """``inner`` with :class:`Faults`; per-instance fault draws are fixed at construction."""

    def __init__(self, inner: Chip, faults: Faults = Faults()):
        super().__init__(inner.cfg)
        if not faults.rtl_expressible and not isinstance(inner, FastChip):
            raise ConfigError("faults: membrane distortion and leak mismatch exist only in the fast model "
                              "(backend 'fast'); threshold mismatch and stuck-at-zero work on every backend")
        if faults.distortion > 0 and type(inner).__name__ == "AsyncChip":
            raise ConfigError("faults: membrane distortion exists only on the synchronous fast model (backend "
                              "'fast'), not in the asynchronous mode")
        self.inner, self.faults = inner, faults
        rng = np.random.default_rng(faults.seed)
        cfg = inner.cfg
        self._thr_noise = [rng.normal(0, 1, cfg.fan_out(l)) for l in range(cfg.num_layers)]
        self._leak_noise = [rng.normal(0, 1, cfg.fan_out(l)) for l in range(cfg.num_layers)]
        self._stuck = [rng.random(cfg.weight_shape(l)) < faults.stuck_zero
                       for l in range(cfg.num_layers)]

    def _faulty_offsets(self) -> list[np.ndarray]:
        cfg, out = self.cfg, []
        for l, off in enumerate(self.offsets):
            o = off + np.rint(self._thr_noise[l] * self.faults.threshold_mismatch * cfg.threshold[l])
            lo = max(cfg.offset_min, -cfg.threshold[l])
            hi = min(cfg.offset_max, cfg.membrane_max - cfg.threshold[l])
            out.append(np.clip(o, lo, hi).astype(np.int64))
        return out

    def _loaded(self) -> None:
        weights = [np.where(s, 0, w) for w, s in zip(self.weights, self._stuck)]
        offsets = self._faulty_offsets()
        if self.faults.rtl_expressible:
            self.inner.load(weights, offsets, cfg=self.cfg)
            return
        f = self.faults
        # only a leak mismatch changes the leak multipliers (a distortion alone keeps the chip's, IF layers
        # included); a mismatched neuron never leaks less than none (2**f: the IF neuron) and a leaky layer's
        # neurons keep leaking (at most 2**f - 1, as the chip encodes a beta just below 1)
        one = 1 << self.cfg.beta_frac_bits
        beta = None if f.leak_mismatch == 0 else [
            np.clip(np.rint(b * (1 + n * f.leak_mismatch)), 1, one if b == one else one - 1).astype(np.int64)
            for b, n in zip(self.cfg.beta_int, self._leak_noise)]
        dist = eif_distortion(self.cfg, f.distortion) if f.distortion > 0 else None
        self.inner.load(weights, offsets, cfg=self.cfg, leak_multipliers=beta, distortion=dist)

    def _run(self, spikes, record_state):
        return self.inner.run(spikes, record_state)
