"""The one description of a spikeloop chip.

Everything that knows a bit width, a memory layout or a rounding rule reads it from :class:`ChipConfig`:
the Amaranth design (:mod:`hw.core`), the fast model (:mod:`sim.model`), the bus drivers
(:mod:`sim.driver`) and the trainer's quantiser. See ``docs/chip.md`` for the arithmetic and the schedule.

Units: weights, membranes and thresholds are integers in membrane LSBs. ``beta`` is a real number in
(0, 1] that the chip stores as ``beta_int / 2**beta_frac_bits``; ``beta = 1`` exactly is the integrate-and-fire
neuron (no leak, ``beta_int = 2**beta_frac_bits``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

RESET_MODES = ("subtract", "zero")

#: UPDATE schedules (``ChipConfig.update``, ``docs/chip.md``, "Update by touch"): ``"all"`` walks every state word
#: of a layer in every step; ``"touched"`` visits only the words an event accumulated into or that hold a neuron
#: above its firing level, and applies the idle steps' leak at the next visit.
UPDATE_MODES = ("all", "touched")

#: ``ChipConfig.max_steps`` (the steps of one sample an ``update = "touched"`` chip can run: its step stamps are
#: ``clog2(max_steps + 1)`` bits): default and allowed range.
MAX_STEPS_DEFAULT = 1024
MAX_STEPS_RANGE = (1, 65535)

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

#: The UPDATE pipeline of an ``update = "touched"`` chip: two stages more (the idle steps' leak ``u·B_k`` and
#: its rounding plus the step's synaptic sum, before the saturate stage). Read it as
#: :attr:`ChipConfig.update_latency`.
TOUCHED_UPDATE_LATENCY = UPDATE_LATENCY + 2

#: Stages the per-layer bias adds to the UPDATE pipeline of a chip with :attr:`ChipConfig.bias` (one: the
#: registered ``word + b`` before the saturate stage). Read the depth as :attr:`ChipConfig.update_latency`.
BIAS_UPDATE_STAGES = 1

#: Spikes an ``update = "touched"`` chip appends to its event list per UPDATE cycle (a two-wide list: a word with
#: ``pc`` spikes costs ``max(1, ceil(pc / 2))`` cycles; an ``"all"`` chip appends one). Read it as
#: :attr:`ChipConfig.appends_per_cycle`.
TOUCHED_APPENDS_PER_CYCLE = 2

#: Fill cycles of a conv layer's event decoder (pooled coordinate -> first (position, group) issue), paid
#: once per time step and conv layer at the start of its EVENT phase (``docs/chip.md``, "Convolution and
#: pooling"). Read it as :meth:`ChipConfig.decode_latency`. Set by the RTL.
CONV_DECODE_LATENCY = 3

#: Extra cycles per input event of a conv layer (0: the decoder issues an event's first (position,
#: group) in the cycle after the previous event's last). Read it as :meth:`ChipConfig.event_overhead`.
CONV_EVENT_OVERHEAD = 0

LAYER_KINDS = ("fc", "conv", "pool")


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
class Layer:
    """One entry of :attr:`ChipConfig.layers`: ``fc`` (``size`` neurons), ``conv`` (``channels`` output
    channels, a ``kernel`` x ``kernel`` kernel (1×``kernel`` on an input of height 1), ``stride``, zero
    ``padding``) or ``pool`` (sum pooling, window = stride = ``size``; no neurons)."""

    kind: str
    size: int | None = None
    channels: int | None = None
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    def to_dict(self) -> dict:
        """The entry as a TOML/JSON table (``{kind = "conv", channels, kernel, stride, padding}`` or
        ``{kind, size}``)."""
        if self.kind == "conv":
            return {"kind": "conv", "channels": self.channels, "kernel": self.kernel, "stride": self.stride,
                    "padding": self.padding}
        return {"kind": self.kind, "size": self.size}

    @classmethod
    def from_value(cls, i: int, v) -> "Layer":
        """A :class:`Layer` from a Layer or a table (TOML/JSON); ConfigError names ``layers[i]``."""
        if isinstance(v, Layer):
            d = dataclasses.asdict(v)
        elif isinstance(v, dict):
            d = dict(v)
        else:
            raise ConfigError(f"layers[{i}]={v!r}: expected a table like {{kind=\"conv\", channels=8, kernel=3}}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"layers[{i}]: unknown fields {sorted(unknown)}; allowed: {sorted(known)}")
        kind = d.get("kind")
        if kind not in LAYER_KINDS:
            raise ConfigError(f"layers[{i}].kind={kind!r}: allowed values are {LAYER_KINDS}")
        defaults = {"size": None, "channels": None, "kernel": 1, "stride": 1, "padding": 0}
        need = {"fc": ("size",), "pool": ("size",), "conv": ("channels",)}[kind]
        allowed = need + (("kernel", "stride", "padding") if kind == "conv" else ())
        for name, default in defaults.items():
            if name not in allowed and d.get(name, default) != default:
                raise ConfigError(f"layers[{i}].{name}: not a field of a {kind} layer (its fields: {need + allowed[len(need):]})")
        for name in need:
            if d.get(name) is None:
                raise ConfigError(f"layers[{i}].{name}: required for a {kind} layer")
        rng = {"size": (2, 8) if kind == "pool" else (1, 65536), "channels": (1, 65536), "kernel": (1, 7),
               "stride": (1, 2)}
        for name in allowed:
            if name == "padding":
                continue
            v = d.get(name, defaults[name])
            lo, hi = rng[name]
            check_int(f"layers[{i}].{name}", v, lo, hi)
        k = int(d.get("kernel", 1))
        check_int(f"layers[{i}].padding", d.get("padding", 0), 0, k - 1)
        return cls(kind=kind, **{n: int(d[n]) if d.get(n) is not None else defaults[n] for n in defaults})


_DEFAULT_LAYER_SIZES = (64, 128, 64, 10)


@dataclass(frozen=True)
class _Geometry:
    """Derived per-neuron-layer geometry of a chip given by ``layers`` (internal)."""
    kind: str
    raw_in: tuple           # (C, H, W) of the spikes the layer receives (before its input pooling)
    pool: tuple             # (ph, pw) input pooling window (1, 1) for none
    in_shape: tuple         # (C, H, W) after pooling
    out_shape: tuple        # (Co, H', W'); fc: (N, 1, 1)
    kernel: tuple           # (kh, kw); fc: (1, 1)
    stride: int
    padding: tuple          # (ph, pw) zero padding


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
    beta: tuple[float, ...] | float = 0.9         # per layer, in (0, 1]; 1 = IF (no leak)
    threshold: tuple[int, ...] | int = 64         # per layer, in [1, 2**(m-1)-1] membrane LSBs
    reset: str = "subtract"                        # "subtract" or "zero"
    input_shape: tuple[int, int, int] | None = None   # (C, H, W) of the input; HWC address numbering
    layers: tuple[Layer, ...] | None = None        # fc/conv/pool entries; then layer_sizes is derived
    overlap: bool = True    # a layer's UPDATE streams its spikes into the next layer's EVENT phase
    update: str = "all"     # "all": UPDATE walks every word; "touched": only touched or hot words (lazy leak)
    max_steps: int = MAX_STEPS_DEFAULT   # update="touched": the longest sample (step stamps' width)
    # update="touched": the layers as a dataflow, each layer's step t as soon as its input is complete and its own
    # UPDATE of t - 1 is over (docs/chip.md, "Wavefront"); a membrane memory per layer; overlap is then stored false
    wavefront: bool = False
    # per layer, the bias in membrane LSBs: one per output neuron (fc) / output channel (conv), added to the
    # membrane with the layer's input each step (docs/chip.md, "Bias"); None: the chip has no bias memory
    bias: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self) -> None:
        self._init_layers()
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
        for name, lo, hi in (("weight_bits", 2, 16), ("membrane_bits", 4, 32), ("lanes", 1, 64),
                             ("beta_frac_bits", 1, 16), ("threshold_offset_bits", 1, 16)):
            # stored as int: a JSON/TOML 8.0 passes the check and must not reach numpy dtypes and shifts as a float
            object.__setattr__(self, name, check_int(name, getattr(self, name), lo, hi))
        if self.weight_bits > self.membrane_bits:
            raise ConfigError(f"weight_bits={self.weight_bits}: must not exceed membrane_bits={self.membrane_bits}")
        n = self.num_layers
        betas = _per_layer("beta", self.beta, n)
        for b in betas:
            if isinstance(b, bool) or not isinstance(b, (int, float, np.number)):
                raise ConfigError(f"beta={b!r}: allowed range is (0, 1] (1: no leak, an IF neuron)")
        betas = tuple(float(b) for b in betas)
        for b in betas:
            if not (0.0 < b <= 1.0) or math.isnan(b):
                raise ConfigError(f"beta={b}: allowed range is (0, 1] (1: no leak, an IF neuron)")
        object.__setattr__(self, "beta", betas)
        thrs = _per_layer("threshold", self.threshold, n)
        for t in thrs:
            if not _is_int(t) or not 1 <= int(t) <= self.membrane_max:
                raise ConfigError(f"threshold={t}: allowed range is integers 1..{self.membrane_max} (membrane LSBs)")
        object.__setattr__(self, "threshold", tuple(int(t) for t in thrs))
        if not isinstance(self.overlap, (bool, np.bool_)):
            raise ConfigError(f"overlap={self.overlap!r}: allowed values are true and false")
        object.__setattr__(self, "overlap", bool(self.overlap))
        if not isinstance(self.reset, str) or self.reset not in RESET_MODES:
            raise ConfigError(f"reset={self.reset!r}: allowed values are {RESET_MODES}")
        self._init_update()
        self._init_bias()

    def _init_bias(self) -> None:
        """Validate ``bias``: ``None`` (no bias memory) or one list per layer of ``out_channels(l)`` integers in
        the membrane range. Refused with ``update = "touched"`` (not built there: a biased layer would have to
        visit every word each step, docs/chip.md "Bias")."""
        if self.bias is None:
            return
        n = self.num_layers
        if isinstance(self.bias, (str, bytes)) or not isinstance(self.bias, Sequence) or len(self.bias) != n:
            raise ConfigError(f"bias: expected {n} lists (one per layer, out_channels integers each) or none")
        out = []
        rng = f"allowed range is {self.membrane_min}..{self.membrane_max}"
        for l, b in enumerate(self.bias):
            try:
                a = np.asarray(b)
            except (ValueError, TypeError):     # ragged nesting: numpy refuses it
                raise ConfigError(f"bias[{l}]: expected a flat list of {self.out_channels(l)} integers, got a "
                                  f"ragged nesting; {rng}") from None
            if a.shape != (self.out_channels(l),):
                raise ConfigError(f"bias[{l}]: expected {self.out_channels(l)} values (one per output "
                                  f"{'channel' if self.layer_kind(l) == 'conv' else 'neuron'}), got shape {a.shape}; "
                                  f"{rng}")
            if not (a.dtype == bool or np.issubdtype(a.dtype, np.number)):   # null, text, integers beyond int64
                raise ConfigError(f"bias[{l}]: expected integers (membrane LSBs), got {a.tolist()!r:.60}; {rng}")
            a = _int_array(f"bias[{l}]", a, self.membrane_min, self.membrane_max,
                           f"{self.membrane_bits}-bit membranes")
            out.append(tuple(int(v) for v in a))
        object.__setattr__(self, "bias", tuple(out))
        if self.touched:
            raise ConfigError("bias: not built with update='touched' (a biased layer would visit every word in "
                              "every step); use update='all'")

    @property
    def has_bias(self) -> bool:
        """The chip has a bias memory (:attr:`bias` is set, also when all zero)."""
        return self.bias is not None

    def bias_vector(self, layer: int) -> np.ndarray:
        """The bias of every neuron of ``layer`` in HWC order (a conv channel's bias repeated per position),
        int64; zeros without a bias."""
        if self.bias is None:
            return np.zeros(self.fan_out(layer), np.int64)
        return np.tile(np.asarray(self.bias[layer], np.int64), self.positions(layer))

    def bias_base(self, layer: int) -> int:
        """First bias-memory word of ``layer``: word ``bias_base(l) + g`` holds the bias of channels (fc:
        neurons) ``g*lanes ...``; one word per group, shared by every position of a conv layer."""
        return sum(self.groups(k) for k in range(layer))

    @property
    def bias_depth(self) -> int:
        """Words of the bias memory (0 without a bias)."""
        return self.bias_base(self.num_layers) if self.has_bias else 0

    def _init_update(self) -> None:
        """Validate ``update`` and ``max_steps``. With ``update = "all"`` ``max_steps`` means
        nothing and is kept at its default (so it never changes an ``"all"`` chip's structure)."""
        if not isinstance(self.update, str) or self.update not in UPDATE_MODES:
            raise ConfigError(f"update={self.update!r}: allowed values are {UPDATE_MODES}")
        if not isinstance(self.wavefront, (bool, np.bool_)):
            raise ConfigError(f"wavefront={self.wavefront!r}: allowed values are true and false")
        object.__setattr__(self, "wavefront", bool(self.wavefront))
        if self.update == "all":
            if self.wavefront:
                raise ConfigError("wavefront=true: built for update='touched' only; set update='touched' "
                                  "(or wavefront=false)")
            object.__setattr__(self, "max_steps", MAX_STEPS_DEFAULT)
            return
        object.__setattr__(self, "max_steps", check_int("max_steps", self.max_steps, *MAX_STEPS_RANGE))
        if self.wavefront:                      # no UPDATE streams into a running EVENT phase (docs/chip.md)
            object.__setattr__(self, "overlap", False)

    def _init_layers(self) -> None:
        """Validate ``input_shape``/``layers``, derive ``layer_sizes`` and the per-layer geometry."""
        shape = self.input_shape
        if shape is not None:
            if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or len(shape) != 3 or \
                    not all(_is_int(v) and 1 <= int(v) <= 65536 for v in shape):
                raise ConfigError(f"input_shape={shape!r}: expected [C, H, W], integers 1..65536")
            shape = tuple(int(v) for v in shape)
            if math.prod(shape) > 65536:
                raise ConfigError(f"input_shape={list(shape)}: C*H*W={math.prod(shape)}, allowed range is 1..65536")
            object.__setattr__(self, "input_shape", shape)
        if self.layers is None:
            geo = None
            if shape is not None:
                sizes = self.layer_sizes
                if isinstance(sizes, Sequence) and len(sizes) >= 1 and _is_int(sizes[0]) and \
                        int(sizes[0]) != math.prod(shape):
                    raise ConfigError(f"input_shape={list(shape)}: C*H*W={math.prod(shape)} must equal "
                                      f"layer_sizes[0]={sizes[0]}")
            object.__setattr__(self, "_geo", geo)
            return
        if shape is None:
            raise ConfigError("input_shape: required with layers (the input's [C, H, W])")
        if isinstance(self.layers, (str, bytes, dict)) or not isinstance(self.layers, Sequence) or not self.layers:
            raise ConfigError(f"layers={self.layers!r}: expected a non-empty list of tables "
                              f"({{kind=\"fc\"|\"conv\"|\"pool\", ...}})")
        layers = tuple(Layer.from_value(i, v) for i, v in enumerate(self.layers))
        object.__setattr__(self, "layers", layers)
        if layers[-1].kind == "pool":
            raise ConfigError(f"layers[{len(layers) - 1}]: a pool cannot be the last entry (it has no neurons)")
        geo, cur, pool, prev_kind = [], shape, (1, 1), "input"
        pool_start = None
        for i, ly in enumerate(layers):
            C, H, W = cur
            if ly.kind == "pool":
                if prev_kind == "fc":
                    raise ConfigError(f"layers[{i}]: a pool after an fc layer (pool needs an image: input, conv or pool)")
                p = ly.size
                ph = p if H > 1 else 1
                if H % ph or W % p:
                    raise ConfigError(f"layers[{i}].size={p}: pooling must tile the {C}x{H}x{W} input "
                                      f"(height and width multiples of size; height 1: width only)")
                cur = (C, H // ph, W // p)
                pool = (pool[0] * ph, pool[1] * p)
                pool_start = pool_start or (C, H, W)
                prev_kind = "pool"
                continue
            raw = pool_start or cur
            if ly.kind == "conv":
                if prev_kind == "fc":
                    raise ConfigError(f"layers[{i}]: a conv after an fc layer (a conv needs an image: it must "
                                      f"follow the input or a conv/pool layer)")
                k, s_, p = ly.kernel, ly.stride, ly.padding
                kh, padh = (1, 0) if H == 1 else (k, p)
                if k > W + 2 * p or kh > H + 2 * padh:
                    kmax = (W if H == 1 else min(H, W)) + 2 * p
                    raise ConfigError(f"layers[{i}].kernel={k}: larger than the padded {C}x{H}x{W} input; "
                                      f"allowed range is 1..{kmax} with padding={p}")
                if k < s_:
                    raise ConfigError(f"layers[{i}].stride={s_}: must not exceed kernel={k} (inputs between "
                                      f"windows would reach no neuron); allowed range is 1..{k}")
                if (W + 2 * p - k) % s_ > p or (H + 2 * padh - kh) % s_ > padh:
                    raise ConfigError(f"layers[{i}].stride={s_}: leaves input rows/cols of the {C}x{H}x{W} input "
                                      f"in no window ((size + 2*padding - kernel) % stride must be <= padding); "
                                      f"allowed: 1, or another kernel/padding")
                Ho, Wo = (H + 2 * padh - kh) // s_ + 1, (W + 2 * p - k) // s_ + 1
                out = (ly.channels, Ho, Wo)
                geo.append(_Geometry("conv", raw, pool, cur, out, (kh, k), s_, (padh, p)))
            else:
                out = (ly.size, 1, 1)
                geo.append(_Geometry("fc", raw, pool, cur, out, (1, 1), 1, (0, 0)))
            if math.prod(out) > 65536:
                raise ConfigError(f"layers[{i}]: {math.prod(out)} neurons ({'x'.join(map(str, out))}); "
                                  f"allowed range is 1..65536")
            cur, pool, pool_start, prev_kind = out if ly.kind == "conv" else (ly.size, 1, 1), (1, 1), None, ly.kind
        derived = (math.prod(shape),) + tuple(math.prod(g.out_shape) for g in geo)
        given = self.layer_sizes
        if isinstance(given, (str, bytes)) or not isinstance(given, Sequence) or \
                tuple(given) not in (_DEFAULT_LAYER_SIZES, derived):
            raise ConfigError(f"layer_sizes={given!r}: inconsistent with layers (derived {list(derived)}); "
                              f"leave it out when giving layers")
        object.__setattr__(self, "layer_sizes", derived)
        object.__setattr__(self, "_geo", tuple(geo))

    # -- derived structure --------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Layers with neurons (``len(layer_sizes) - 1``; pool entries are not layers)."""
        return len(self.layer_sizes) - 1

    def fan_in(self, layer: int) -> int:
        """Input addresses of ``layer`` after its input pooling (``prod(in_shape(layer))``; FC chips:
        ``layer_sizes[layer]``). For an fc layer this is its weight matrix's row count."""
        if self._geo is None:
            return self.layer_sizes[layer]
        return math.prod(self._geo[layer].in_shape)

    def fan_out(self, layer: int) -> int:
        """Neurons of ``layer`` (``layer_sizes[layer + 1]``; a conv layer's ``C_out * H' * W'``)."""
        return self.layer_sizes[layer + 1]

    def groups(self, layer: int) -> int:
        """Words of `lanes` neurons per position: ``ceil(C_out / lanes)`` for a conv layer, ``ceil(N_out /
        lanes)`` for an fc layer."""
        return -(-self.out_channels(layer) // self.lanes)

    # -- layer geometry (FC chips: every layer is "fc", shapes (N, 1, 1)) ----------------------------------
    def layer_kind(self, layer: int) -> str:
        """``"fc"`` or ``"conv"`` (pool entries are not neuron layers; see :meth:`input_pool`)."""
        return "fc" if self._geo is None else self._geo[layer].kind

    def in_shape(self, layer: int) -> tuple[int, int, int]:
        """(C, H, W) that ``layer`` sees after its input pooling; FC chips: ``(fan_in, 1, 1)``."""
        if self._geo is None:
            return (self.layer_sizes[layer], 1, 1) if layer or self.input_shape is None else self.input_shape
        return self._geo[layer].in_shape

    def raw_in_shape(self, layer: int) -> tuple[int, int, int]:
        """(C, H, W) of the spikes that arrive at ``layer`` (before its input pooling): the input's
        shape for layer 0, else the previous neuron layer's :meth:`out_shape`."""
        if self._geo is None:
            return self.in_shape(layer)
        return self._geo[layer].raw_in

    def out_shape(self, layer: int) -> tuple[int, int, int]:
        """(C_out, H', W') of a conv layer; ``(N, 1, 1)`` of an fc layer. Neuron ``j`` of the layer is
        ``(y'*W' + x')*C_out + c`` (HWC)."""
        return (self.fan_out(layer), 1, 1) if self._geo is None else self._geo[layer].out_shape

    def out_channels(self, layer: int) -> int:
        """Output channels of ``layer`` (an fc layer: its size)."""
        return self.out_shape(layer)[0]

    def last_group_lanes(self, layer: int) -> int:
        """Lanes of the last group of a position that hold neurons: ``C_out - (groups - 1)*lanes``."""
        return self.out_channels(layer) - (self.groups(layer) - 1) * self.lanes

    def positions(self, layer: int) -> int:
        """Output positions ``H'*W'`` of a conv layer (1 for fc)."""
        _, h, w = self.out_shape(layer)
        return h * w

    def input_pool(self, layer: int) -> int:
        """Sum-pooling factor in front of ``layer`` (product of the pool entries before it; 1 for none).
        On an input of height 1 the window is 1×factor (see :meth:`pool_window`)."""
        return 1 if self._geo is None else self._geo[layer].pool[1]

    def pool_window(self, layer: int) -> tuple[int, int]:
        """(ph, pw): input events at ``(c, y, x)`` go to pooled ``(c, y // ph, x // pw)``."""
        return (1, 1) if self._geo is None else self._geo[layer].pool

    def pool_area(self, layer: int) -> int:
        """Raw input addresses per pooled address (the most events one pooled address gets per step)."""
        ph, pw = self.pool_window(layer)
        return ph * pw

    def kernel(self, layer: int) -> tuple[int, int]:
        """(kh, kw) of a conv layer: (k, k), or (1, k) when its input height is 1; fc: (1, 1)."""
        return (1, 1) if self._geo is None else self._geo[layer].kernel

    def stride(self, layer: int) -> int:
        """Stride of a conv layer (1 for an fc layer)."""
        return 1 if self._geo is None else self._geo[layer].stride

    def padding(self, layer: int) -> tuple[int, int]:
        """(pad_h, pad_w) zero padding of a conv layer (pad_h = 0 when its input height is 1)."""
        return (0, 0) if self._geo is None else self._geo[layer].padding

    def weight_rows(self, layer: int) -> int:
        """Weight-memory rows of ``layer``: ``fan_in`` (fc) or ``C_in*kh*kw`` (conv); row ``(c*kh + ky)*kw +
        kx`` of a conv layer holds the kernel tap (c, ky, kx) for every output channel."""
        if self.layer_kind(layer) == "fc":
            return self.fan_in(layer)
        kh, kw = self.kernel(layer)
        return self.in_shape(layer)[0] * kh * kw

    def weight_shape(self, layer: int) -> tuple[int, ...]:
        """``(N_in, N_out)`` for fc, ``(C_in, kh, kw, C_out)`` for conv."""
        if self.layer_kind(layer) == "fc":
            return (self.fan_in(layer), self.fan_out(layer))
        kh, kw = self.kernel(layer)
        return (self.in_shape(layer)[0], kh, kw, self.out_channels(layer))

    def state_words(self, layer: int) -> int:
        """Membrane (and threshold-offset) words of ``layer``: ``positions * groups``; word ``pos*G + g``
        holds the neurons ``pos*C_out + g*lanes ...``."""
        return self.positions(layer) * self.groups(layer)

    def decode_latency(self, layer: int) -> int:
        """Cycles the EVENT phase of ``layer`` spends once per step before its first event's first cycle:
        :data:`CONV_DECODE_LATENCY` for a layer whose events go through the conv event decoder — every conv
        layer, and layer 0 of a :attr:`packed_input` chip (a pool in front of an fc layer: the packed
        coordinate is pooled and flattened there) — else 0."""
        return CONV_DECODE_LATENCY if self.decoded(layer) else 0

    def decoded(self, layer: int) -> bool:
        """Whether ``layer``'s events go through the conv event decoder: every conv layer, and layer 0 of a
        :attr:`packed_input` chip (a pool in front of an fc layer)."""
        return self.layer_kind(layer) == "conv" or (layer == 0 and self.packed_input)

    def overlapped(self, layer: int) -> bool:
        """Whether ``layer``'s UPDATE phase streams its spikes into the EVENT phase of ``layer + 1`` (an fc
        event starts the cycle after its spike is appended, a conv event goes through the event decoder from
        then; ``docs/chip.md``, "Overlap"): with :attr:`overlap`, for every layer but the last, whose spikes
        go to OUTPUT after its UPDATE."""
        return self.overlap and layer + 1 < self.num_layers

    def event_overhead(self, layer: int) -> int:
        """Extra cycles per input event of ``layer`` (:data:`CONV_EVENT_OVERHEAD` for conv, 0 for fc)."""
        return CONV_EVENT_OVERHEAD if self.layer_kind(layer) == "conv" else 0

    def receptive_counts(self, layer: int) -> np.ndarray:
        """``V`` of every raw input address of ``layer`` (HWC flat, before pooling): the output positions
        an event there visits (``|{y'}| * |{x'}|``); 1 for fc. Closed form of the conv schedule."""
        C, H, W = self.raw_in_shape(layer)
        if self.layer_kind(layer) == "fc":
            return np.ones(C * H * W, np.int64)
        ph, pw = self.pool_window(layer)
        _, Hp, Wp = self.in_shape(layer)
        _, Ho, Wo = self.out_shape(layer)
        (kh, kw), s, (pdh, pdw) = self.kernel(layer), self.stride(layer), self.padding(layer)
        vy = np.array([_visits(y, pdh, s, kh, Ho) for y in range(Hp)], np.int64)
        vx = np.array([_visits(x, pdw, s, kw, Wo) for x in range(Wp)], np.int64)
        v = vy[np.arange(H) // ph][:, None] * vx[np.arange(W) // pw][None, :]     # (H, W)
        return np.repeat(v.reshape(-1), C)

    def synaptic_fan_in(self, layer: int) -> int:
        """An upper bound on the weight additions one neuron of ``layer`` can get in one step:
        ``weight_rows * pool_area``, reached only when every kernel tap of the neuron lies on the image (not
        on padding) and every raw input address that reaches it spikes; edge neurons of a padded conv get
        fewer. ``acc_bits`` is sized by it, so a stored word never overflows within a step."""
        return self.weight_rows(layer) * self.pool_area(layer)

    @property
    def packed_input(self) -> bool:
        """The input stream carries packed (y, x, c) coordinates: the first entry of ``layers`` is a conv
        or a pool. Otherwise an input event's index is the flat input address."""
        return self.layers is not None and self.layers[0].kind != "fc"

    def input_address(self, i: int) -> int:
        """The ``index`` of the input event for flat (HWC) input address ``i``: ``i`` itself, or for a
        :attr:`packed_input` chip ``(y << (bx + bc)) | (x << bc) | c``, ``bc = clog2(C)``, ``bx = clog2(W)``."""
        if not self.packed_input:
            return int(i)
        C, H, W = self.input_shape
        c, x, y = int(i) % C, (int(i) // C) % W, int(i) // (C * W)
        bc, bx = clog2(C), clog2(W)
        return (y << (bx + bc)) | (x << bc) | c

    def input_index(self, word: int) -> int:
        """Inverse of :meth:`input_address`: the flat input address of an input event ``index``."""
        if not self.packed_input:
            return int(word)
        C, H, W = self.input_shape
        bc, bx = clog2(C), clog2(W)
        c, x, y = word & ((1 << bc) - 1), (word >> bc) & ((1 << bx) - 1), word >> (bx + bc)
        return (y * W + x) * C + c

    @property
    def weight_min(self) -> int:
        """Smallest weight: ``-2**(weight_bits-1)``."""
        return -(1 << (self.weight_bits - 1))

    @property
    def weight_max(self) -> int:
        """Largest weight: ``2**(weight_bits-1) - 1``."""
        return (1 << (self.weight_bits - 1)) - 1

    @property
    def membrane_min(self) -> int:
        """Lower saturation rail of a membrane: ``-2**(membrane_bits-1)``."""
        return -(1 << (self.membrane_bits - 1))

    @property
    def membrane_max(self) -> int:
        """Upper saturation rail of a membrane (and the largest threshold): ``2**(membrane_bits-1) - 1``."""
        return (1 << (self.membrane_bits - 1)) - 1

    @property
    def offset_min(self) -> int:
        """Smallest per-neuron threshold offset: ``-2**(threshold_offset_bits-1)``."""
        return -(1 << (self.threshold_offset_bits - 1))

    @property
    def offset_max(self) -> int:
        """Largest per-neuron threshold offset: ``2**(threshold_offset_bits-1) - 1``."""
        return (1 << (self.threshold_offset_bits - 1)) - 1

    @property
    def acc_bits(self) -> int:
        """Width of a stored membrane word: wide enough that one step's accumulation never overflows
        (``max_fan_in`` = the largest :meth:`synaptic_fan_in`, an upper bound; ``layer_sizes[l]`` on an FC
        chip)."""
        max_fan_in = max(self.synaptic_fan_in(l) for l in range(self.num_layers))
        return max(self.membrane_bits, self.weight_bits + clog2(max_fan_in + 1)) + 1

    @property
    def update_latency(self) -> int:
        """Cycles from reading a group's membrane word in the UPDATE phase to writing it back (the update
        pipeline's depth): the UPDATE phase of a layer costs ``update_latency + sum_g max(1, pc_g)``
        cycles (``docs/chip.md``, "Schedule"; with ``update = "touched"`` the sum runs over the visited words
        and the pipeline is :data:`TOUCHED_UPDATE_LATENCY` deep)."""
        return (TOUCHED_UPDATE_LATENCY if self.update == "touched" else UPDATE_LATENCY) + \
            (BIAS_UPDATE_STAGES if self.bias is not None else 0)

    @property
    def touched(self) -> bool:
        """``update == "touched"``: the update-by-touch schedule (``docs/chip.md``, "Update by touch")."""
        return self.update == "touched"

    @property
    def appends_per_cycle(self) -> int:
        """Spikes the UPDATE phase appends to the event list per cycle: a state word with ``pc`` spikes costs
        ``max(1, ceil(pc / appends_per_cycle))`` UPDATE cycles (``docs/chip.md``, "Update by touch": 2,
        :data:`TOUCHED_APPENDS_PER_CYCLE`, with ``update = "touched"``; 1 otherwise)."""
        return TOUCHED_APPENDS_PER_CYCLE if self.touched else 1

    @property
    def stamp_bits(self) -> int:
        """Width of a word's step stamp (``update = "touched"``): ``clog2(max_steps + 1)``, the stamps hold
        ``0 .. max_steps``."""
        return clog2(self.max_steps + 1)

    @property
    def leak_table_depth(self) -> int:
        """Entries of the elapsed-leak table (``update = "touched"``): ``B_{l,k}`` for ``k = 0 .. max_steps``
        per layer, layer ``l`` from ``l * (max_steps + 1)``; 0 for ``update = "all"``."""
        return self.num_layers * (self.max_steps + 1) if self.touched else 0

    @property
    def beta_int(self) -> tuple[int, ...]:
        """Per-layer leak multipliers: ``beta * 2**f`` rounded half to even (Python's :func:`round`), then
        clipped to ``1 .. 2**f - 1``. E.g. ``f = 2``: beta 0.375 (1.5 quarters) -> 2, 0.625 (2.5) -> 2.
        ``beta = 1`` exactly (and only then) is ``2**f``: no leak, the IF neuron (the leak ``(v·2**f + 2**(f-1))
        >> f`` is ``v`` exactly); a beta just below 1 still encodes as ``2**f - 1``.

        Only this encoding rounds half to even; the leak itself (``docs/chip.md``) rounds half up."""
        one = 1 << self.beta_frac_bits
        return tuple(one if b == 1.0 else min(one - 1, max(1, round(b * one))) for b in self.beta)

    @property
    def beta_effective(self) -> tuple[float, ...]:
        """The beta the chip really uses after encoding."""
        return tuple(b / (1 << self.beta_frac_bits) for b in self.beta_int)

    def weight_base(self, layer: int) -> int:
        """First weight-memory word of ``layer``; row ``r`` (fc: source neuron; conv: ``(c*kh + ky)*kw +
        kx``) starts at ``base + r*groups``."""
        return sum(self.weight_rows(k) * self.groups(k) for k in range(layer))

    def state_base(self, layer: int) -> int:
        """First membrane/offset-memory word of ``layer`` (word ``pos*groups + g`` of the layer follows)."""
        return sum(self.state_words(k) for k in range(layer))

    @property
    def state_banks(self) -> int:
        """Membrane memories: one per layer on a :attr:`wavefront` chip (layer ``l`` in bank ``l``); 2 when a
        layer's UPDATE overlaps the next layer's EVENT phase (layer ``l`` in bank ``l % 2``, so the two phases
        never share a memory port); else 1."""
        if self.wavefront:
            return self.num_layers
        return 2 if any(self.overlapped(l) for l in range(self.num_layers)) else 1

    def state_bank(self, layer: int) -> int:
        """The membrane memory holding ``layer``'s words (:attr:`state_banks`)."""
        return layer % self.state_banks

    def bank_base(self, layer: int) -> int:
        """First word of ``layer`` in its membrane memory (:meth:`state_bank`); the host's address map and the
        threshold offsets use :meth:`state_base`."""
        return sum(self.state_words(k) for k in range(layer) if self.state_bank(k) == self.state_bank(layer))

    def bank_depth(self, bank: int) -> int:
        """Words of membrane memory ``bank``."""
        return sum(self.state_words(k) for k in range(self.num_layers) if self.state_bank(k) == bank)

    @property
    def weight_depth(self) -> int:
        """Words of the weight memory (every layer's rows)."""
        return self.weight_base(self.num_layers)

    @property
    def state_depth(self) -> int:
        """Words of the membrane (state) memory (every layer's groups)."""
        return self.state_base(self.num_layers)

    @property
    def event_depth(self) -> int:
        """Entries of the internal event list (spikes of one layer in one step)."""
        return max(self.layer_sizes[1:])

    @property
    def index_bits(self) -> int:
        """Width of an address-event index (enough for any layer, and for a :attr:`packed_input` chip's
        ``clog2(H) + clog2(W) + clog2(C)`` coordinate bits)."""
        bits = clog2(max(self.layer_sizes))
        if self.packed_input:
            C, H, W = self.input_shape
            bits = max(bits, clog2(H) + clog2(W) + clog2(C))
        return bits

    @property
    def counter_names(self) -> tuple[str, ...]:
        """Every per-sample counter a backend reports, in read-bus order: ``spikes_l0 .. spikes_l{L-1}``,
        then :data:`COUNTER_NAMES`. The one list the RTL, the bus map, the model and the drivers use."""
        return tuple(f"spikes_l{l}" for l in range(self.num_layers)) + COUNTER_NAMES

    def structure(self) -> "ChipConfig":
        """This config with runtime registers at their defaults: equal structures give identical RTL."""
        return dataclasses.replace(self, beta=0.5, threshold=1, reset="subtract",
                                   bias=None if self.bias is None else tuple((0,) * len(b) for b in self.bias))

    @property
    def structure_hash(self) -> str:
        """SHA-256 (hex) of the structure: the sorted-key JSON of :meth:`structure`'s fields. Equal for
        configs that differ only in runtime registers; stable across processes and Python versions."""
        text = json.dumps(self.structure().to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def replace(self, **changes) -> "ChipConfig":
        """A copy with ``changes``; a new ``layers``/``input_shape`` re-derives ``layer_sizes``."""
        if self.layers is not None and "layer_sizes" not in changes and ({"layers", "input_shape"} & set(changes)):
            changes["layer_sizes"] = _DEFAULT_LAYER_SIZES
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain fields (JSON/TOML-able). ``input_shape``/``layers`` appear only when set, and ``update``/
        ``max_steps`` only with ``update = "touched"``, so an FC chip's dict (and :attr:`structure_hash`) is what
        it was before they existed."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.input_shape is None:
            del d["input_shape"]
        if self.layers is None:
            del d["layers"]
        else:
            d["layers"] = [ly.to_dict() for ly in self.layers]
        if self.update == "all":                # an "all" chip's dict and structure hash are as before
            del d["update"], d["max_steps"]
        if not self.wavefront:                  # so is every chip's without a wavefront
            del d["wavefront"]
        if self.bias is None:                   # so is a chip's without a bias
            del d["bias"]
        else:
            d["bias"] = [list(b) for b in self.bias]
        return d

    @classmethod
    def check_fields(cls, d: dict) -> None:
        """Refuse a table that is not one of chip fields: an unknown field is a :class:`ConfigError` naming it
        and listing the allowed ones (the values are checked when the config is built)."""
        if not isinstance(d, dict):
            raise ConfigError(f"chip config: expected a table of fields, got {d!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown chip config fields {sorted(unknown)}; allowed: {sorted(known)}")

    @classmethod
    def from_dict(cls, d: dict) -> "ChipConfig":
        """A ChipConfig from a table of its fields (lists for tuples); an unknown field is a
        :class:`ConfigError` naming it and listing the allowed ones."""
        cls.check_fields(d)
        return cls(**{k: (tuple(tuple(b) if isinstance(b, list) else b for b in v) if k == "bias" and
                          isinstance(v, list) else tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    # -- validation of runtime data -----------------------------------------------------------------
    def check_weights(self, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Validate integer weights ``W[l]`` of shape :meth:`weight_shape` (fc ``(N_in, N_out)``, conv
        ``(C_in, kh, kw, C_out)``); return them as int64 arrays."""
        if len(weights) != self.num_layers:
            raise ConfigError(f"weights: expected {self.num_layers} matrices (one per layer), got {len(weights)}")
        out = []
        for l, w in enumerate(weights):
            w = np.asarray(w)
            shape = self.weight_shape(l)
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
        """Validate an input spike tensor of shape ``(batch, steps, N0)`` with 0/1 entries (at most
        :attr:`max_steps` steps on an ``update = "touched"`` chip)."""
        s = np.asarray(spikes)
        if s.ndim != 3 or s.shape[2] != self.layer_sizes[0]:
            raise ConfigError(
                f"spikes: expected shape (batch, steps, {self.layer_sizes[0]}), got {s.shape}")
        if s.shape[0] < 1 or s.shape[1] < 1:
            raise ConfigError(f"spikes: batch and steps must be >= 1, got {s.shape}")
        if self.touched and s.shape[1] > self.max_steps:
            raise ConfigError(f"spikes: {s.shape[1]} steps per sample; a chip with update='touched' runs at most "
                              f"max_steps={self.max_steps} (its step stamps), allowed range is 1..{self.max_steps}")
        if s.dtype != bool and not np.all((s == 0) | (s == 1)):
            raise ConfigError("spikes: entries must be 0 or 1 (one address event per neuron per step)")
        return s.astype(bool)


def _visits(y: int, pad: int, s: int, k: int, n_out: int) -> int:
    """Output positions ``0 <= y' < n_out`` with ``0 <= y + pad - s*y' < k``."""
    return sum(1 for yo in range(n_out) if 0 <= y + pad - s * yo < k)


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


