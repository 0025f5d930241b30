"""The one description of a spikeloop chip.

Everything that knows a bit width, a memory layout or a rounding rule reads it from :class:`ChipConfig`:
the Amaranth design (:mod:`hw.core`), the fast model (:mod:`sim.model`), the bus drivers
(:mod:`sim.driver`) and the trainer's quantiser. See ``docs/chip.md`` for the arithmetic and the schedule.

Units: weights, membranes and thresholds are integers in membrane LSBs. ``beta`` is a real number in
(0, 1) that the chip stores as ``beta_int / 2**beta_frac_bits``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

RESET_MODES = ("subtract", "zero")

#: Width of every performance counter, in bits (they saturate at ``2**COUNTER_BITS - 1``).
COUNTER_BITS = 32

#: The fixed per-sample performance counters, in read-bus order after the per-layer ``spikes_l{l}``
#: counters. The complete list for a chip is :attr:`ChipConfig.counter_names`; use that.
COUNTER_NAMES = (
    "cycles",          # busy cycles (the schedule in docs/chip.md); stalls on the host streams excluded
    "in_events",       # input address events accepted (layer-0 events)
    "synops",          # synaptic operations: one per (event, target neuron)
    "weight_reads",    # weight-memory word reads (one word = `lanes` weights)
    "state_reads",     # membrane-memory word reads by the datapath
    "state_writes",    # membrane-memory word writes by the datapath
    "neuron_updates",  # leak/compare/reset operations (one per neuron per time step)
    "out_events",      # output address events emitted
    "stall_cycles",    # cycles spent waiting for the host streams (host-dependent; not part of `cycles`)
)


#: Depth of the UPDATE pipeline (read address, memory read, saturate, compare + multiply, round, clamp +
#: write back): the UPDATE phase's fill cycles. Read it as :attr:`ChipConfig.update_latency`.
UPDATE_LATENCY = 6


class ConfigError(ValueError):
    """A chip parameter is outside its allowed range; the message names the parameter and the range."""


def clog2(n: int) -> int:
    """Bits needed to hold the values ``0 .. n-1`` (at least 1)."""
    return max(1, math.ceil(math.log2(n))) if n > 1 else 1


def _per_layer(name: str, value, n: int) -> tuple:
    if isinstance(value, (list, tuple, np.ndarray)):
        value = tuple(value)
        if len(value) != n:
            raise ConfigError(f"{name}: expected one value per layer ({n}), got {len(value)}")
        return value
    return (value,) * n


@dataclass(frozen=True)
class ChipConfig:
    """Structure and neuron parameters of a feed-forward LIF accelerator.

    ``layer_sizes = (N0, N1, ..., NL)``: ``N0`` input addresses, then ``L`` fully-connected LIF layers.
    Fields that change only runtime registers (``beta``, ``threshold``, ``reset``) do not change the RTL;
    :meth:`structure` returns the part that does.
    """

    layer_sizes: tuple[int, ...] = (64, 128, 64, 10)
    weight_bits: int = 8            # signed two's complement weights, range [-2**(w-1), 2**(w-1)-1]
    membrane_bits: int = 16         # signed membrane, saturating, range [-2**(m-1), 2**(m-1)-1]
    lanes: int = 8                  # neurons updated per cycle (weights read per cycle)
    beta_frac_bits: int = 8         # beta = beta_int / 2**beta_frac_bits
    threshold_offset_bits: int = 8  # signed per-neuron threshold trim
    beta: tuple[float, ...] | float = 0.9         # per layer, in (0, 1)
    threshold: tuple[int, ...] | int = 64         # per layer, in [1, 2**(m-1)-1] membrane LSBs
    reset: str = "subtract"                        # "subtract" or "zero"

    def __post_init__(self) -> None:
        if isinstance(self.layer_sizes, (str, bytes)) or not isinstance(self.layer_sizes, Sequence) or \
                not all(_is_int(s) for s in self.layer_sizes):
            raise ConfigError(f"layer_sizes={self.layer_sizes!r}: expected a list of integers 1..65536")
        sizes = tuple(int(s) for s in self.layer_sizes)
        if len(sizes) < 2:
            raise ConfigError(f"layer_sizes: need an input size and at least one layer, got {sizes}")
        for i, s in enumerate(sizes):
            if not 1 <= s <= 65536:
                raise ConfigError(f"layer_sizes[{i}]={s}: allowed range is 1..65536")
        object.__setattr__(self, "layer_sizes", sizes)
        check_int("weight_bits", self.weight_bits, 2, 16)
        check_int("membrane_bits", self.membrane_bits, 4, 32)
        check_int("lanes", self.lanes, 1, 64)
        check_int("beta_frac_bits", self.beta_frac_bits, 1, 16)
        check_int("threshold_offset_bits", self.threshold_offset_bits, 1, 16)
        if self.weight_bits > self.membrane_bits:
            raise ConfigError(f"weight_bits={self.weight_bits}: must not exceed membrane_bits={self.membrane_bits}")
        n = self.num_layers
        betas = _per_layer("beta", self.beta, n)
        for b in betas:
            if isinstance(b, bool) or not isinstance(b, (int, float, np.number)):
                raise ConfigError(f"beta={b!r}: allowed range is the open interval (0, 1)")
        betas = tuple(float(b) for b in betas)
        for b in betas:
            if not (0.0 < b < 1.0) or math.isnan(b):
                raise ConfigError(f"beta={b}: allowed range is the open interval (0, 1)")
        object.__setattr__(self, "beta", betas)
        thrs = _per_layer("threshold", self.threshold, n)
        for t in thrs:
            if not _is_int(t) or not 1 <= int(t) <= self.membrane_max:
                raise ConfigError(f"threshold={t}: allowed range is integers 1..{self.membrane_max} (membrane LSBs)")
        object.__setattr__(self, "threshold", tuple(int(t) for t in thrs))
        if not isinstance(self.reset, str) or self.reset not in RESET_MODES:
            raise ConfigError(f"reset={self.reset!r}: allowed values are {RESET_MODES}")

    # -- derived structure --------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layer_sizes) - 1

    def fan_in(self, layer: int) -> int:
        return self.layer_sizes[layer]

    def fan_out(self, layer: int) -> int:
        return self.layer_sizes[layer + 1]

    def groups(self, layer: int) -> int:
        """Words of `lanes` neurons that hold layer ``layer`` (``ceil(N_out / lanes)``)."""
        return -(-self.fan_out(layer) // self.lanes)

    @property
    def weight_min(self) -> int:
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def membrane_min(self) -> int:
        return -(1 << (self.membrane_bits - 1))

    @property
    def membrane_max(self) -> int:
        return (1 << (self.membrane_bits - 1)) - 1

    @property
    def offset_min(self) -> int:
        return -(1 << (self.threshold_offset_bits - 1))

    @property
    def offset_max(self) -> int:
        return (1 << (self.threshold_offset_bits - 1)) - 1

    @property
    def acc_bits(self) -> int:
        """Width of a stored membrane word: wide enough that one step's accumulation never overflows."""
        max_fan_in = max(self.layer_sizes[:-1])
        return max(self.membrane_bits, self.weight_bits + clog2(max_fan_in + 1)) + 1

    @property
    def update_latency(self) -> int:
        """Cycles from reading a group's membrane word in the UPDATE phase to writing it back (the update
        pipeline's depth): the UPDATE phase of a layer costs ``update_latency + sum_g max(1, pc_g)``
        cycles (``docs/chip.md``, "Schedule")."""
        return UPDATE_LATENCY

    @property
    def beta_int(self) -> tuple[int, ...]:
        """Per-layer leak multipliers: ``beta * 2**f`` rounded half to even (Python's :func:`round`), then
        clipped to ``1 .. 2**f - 1``. E.g. ``f = 2``: beta 0.375 (1.5 quarters) -> 2, 0.625 (2.5) -> 2.

        Only this encoding rounds half to even; the leak itself (``docs/chip.md``) rounds half up."""
        one = 1 << self.beta_frac_bits
        return tuple(min(one - 1, max(1, round(b * one))) for b in self.beta)

    @property
    def beta_effective(self) -> tuple[float, ...]:
        """The beta the chip really uses after encoding."""
        return tuple(b / (1 << self.beta_frac_bits) for b in self.beta_int)

    def weight_base(self, layer: int) -> int:
        """First weight-memory word of ``layer``; row ``i`` (source neuron) starts at ``base + i*groups``."""
        return sum(self.fan_in(k) * self.groups(k) for k in range(layer))

    def state_base(self, layer: int) -> int:
        """First membrane/offset-memory word of ``layer``."""
        return sum(self.groups(k) for k in range(layer))

    @property
    def weight_depth(self) -> int:
        return self.weight_base(self.num_layers)

    @property
    def state_depth(self) -> int:
        return self.state_base(self.num_layers)

    @property
    def event_depth(self) -> int:
        """Entries of the internal event list (spikes of one layer in one step)."""
        return max(self.layer_sizes[1:])

    @property
    def index_bits(self) -> int:
        """Width of an address-event index (enough for any layer)."""
        return clog2(max(self.layer_sizes))

    @property
    def counter_names(self) -> tuple[str, ...]:
        """Every per-sample counter a backend reports, in read-bus order: ``spikes_l0 .. spikes_l{L-1}``,
        then :data:`COUNTER_NAMES`. The one list the RTL, the bus map, the model and the drivers use."""
        return tuple(f"spikes_l{l}" for l in range(self.num_layers)) + COUNTER_NAMES

    def structure(self) -> "ChipConfig":
        """This config with runtime registers at their defaults: equal structures give identical RTL."""
        return dataclasses.replace(self, beta=0.5, threshold=1, reset="subtract")

    @property
    def structure_hash(self) -> str:
        """SHA-256 (hex) of the structure: the sorted-key JSON of :meth:`structure`'s fields. Equal for
        configs that differ only in runtime registers; stable across processes and Python versions."""
        text = json.dumps(self.structure().to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def replace(self, **changes) -> "ChipConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ChipConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"chip config: expected a table of fields, got {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown chip config fields {sorted(unknown)}; allowed: {sorted(known)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    # -- validation of runtime data -----------------------------------------------------------------
    def check_weights(self, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Validate integer weights ``W[l]`` of shape ``(N_l, N_{l+1})``; return them as int64 arrays."""
        if len(weights) != self.num_layers:
            raise ConfigError(f"weights: expected {self.num_layers} matrices (one per layer), got {len(weights)}")
        out = []
        for l, w in enumerate(weights):
            w = np.asarray(w)
            shape = (self.fan_in(l), self.fan_out(l))
            if w.shape != shape:
                raise ConfigError(f"weights[{l}]: expected shape {shape}, got {w.shape}")
            out.append(_int_array(f"weights[{l}]", w, self.weight_min, self.weight_max,
                                  f"{self.weight_bits}-bit weights"))
        return out

    def check_offsets(self, offsets: Sequence[np.ndarray] | None) -> list[np.ndarray]:
        """Validate per-neuron threshold offsets (one vector per layer); ``None`` means all zero."""
        if offsets is None:
            return [np.zeros(self.fan_out(l), np.int64) for l in range(self.num_layers)]
        if len(offsets) != self.num_layers:
            raise ConfigError(f"threshold_offsets: expected {self.num_layers} vectors, got {len(offsets)}")
        out = []
        for l, o in enumerate(offsets):
            o = np.asarray(o)
            if o.shape != (self.fan_out(l),):
                raise ConfigError(f"threshold_offsets[{l}]: expected shape ({self.fan_out(l)},), got {o.shape}")
            oi = _int_array(f"threshold_offsets[{l}]", o, self.offset_min, self.offset_max,
                            f"{self.threshold_offset_bits}-bit offsets")
            eff = self.threshold[l] + oi
            if eff.min(initial=1) < 0 or eff.max(initial=0) > self.membrane_max:
                raise ConfigError(
                    f"threshold_offsets[{l}]: threshold+offset must stay in 0..{self.membrane_max}, "
                    f"got {eff.min()}..{eff.max()}")
            out.append(oi)
        return out

    def check_spikes(self, spikes: np.ndarray) -> np.ndarray:
        """Validate an input spike tensor of shape ``(batch, steps, N0)`` with 0/1 entries."""
        s = np.asarray(spikes)
        if s.ndim != 3 or s.shape[2] != self.layer_sizes[0]:
            raise ConfigError(
                f"spikes: expected shape (batch, steps, {self.layer_sizes[0]}), got {s.shape}")
        if s.shape[0] < 1 or s.shape[1] < 1:
            raise ConfigError(f"spikes: batch and steps must be >= 1, got {s.shape}")
        if s.dtype != bool and not np.all((s == 0) | (s == 1)):
            raise ConfigError("spikes: entries must be 0 or 1 (one address event per neuron per step)")
        return s.astype(bool)


def _is_int(v) -> bool:
    """An integer value (a float like 8.0 counts; bools and strings do not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        return False
    return math.isfinite(v) and int(v) == v


def _int_array(name: str, a: np.ndarray, lo: int, hi: int, unit: str) -> np.ndarray:
    """``a`` as int64 if every entry is an integer in ``lo..hi``, else a :class:`ConfigError` that names
    the allowed range. The range is checked on the values as given, before any cast: no wrap-around of
    unsigned or huge values, no numpy warnings. Shared by weights and threshold offsets."""
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ConfigError(f"{name}: expected a numeric array, got dtype {a.dtype}")
    if a.size == 0:
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating) and (not np.all(np.isfinite(a)) or np.any(a != np.round(a))):
        raise ConfigError(f"{name}: must be integers (quantise first, see train.quant); "
                          f"allowed range is {lo}..{hi}")
    amin, amax = a.min(), a.max()
    # numpy compares any integer or float scalar with a Python int exactly (uint64 2**64-1 > 7 holds)
    if amin < lo or amax > hi:
        raise ConfigError(f"{name}: values {_show(amin)}..{_show(amax)} do not fit {unit}; "
                          f"allowed range is {lo}..{hi}")
    return a.astype(np.int64)


def _show(v) -> str:
    """An array extreme for a message: integers exactly, huge floats as ``1e+30``."""
    if isinstance(v, np.integer) or abs(float(v)) < 2**53:
        return str(int(v))
    return f"{float(v):g}"


def check_int(name: str, v, lo: int, hi: int) -> int:
    """``v`` as an int if it is an integer in ``lo..hi`` (``8.0`` counts; bools and strings do not), else a
    :class:`ConfigError` naming ``name`` and the range. The one integer check of every package."""
    if not _is_int(v) or not lo <= int(v) <= hi:
        raise ConfigError(f"{name}={v!r}: allowed range is integers {lo}..{hi}")
    return int(v)


