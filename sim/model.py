"""Fast, batched, bit-exact and cycle-exact model of the :mod:`hw.core` accelerator.

The arithmetic and the schedule are specified in ``docs/chip.md``; in short, per time step ``t`` and
layer ``l`` (``x`` = this layer's input spikes, ``u`` = stored membrane state, all integers):

* integrate  ``acc = u + x @ W``                      (exact: the stored word is ``acc_bits`` wide)
* saturate   ``v = clip(acc + b, m_min, m_max)``       (``v`` is the membrane potential at step t; ``b`` the
  layer's bias, ``ChipConfig.bias``, 0 without one)
* fire       ``s = v > thr + offset``                  (strict, like snnTorch's Heaviside)
* leak       ``lv = (v * beta_int + 2**(f-1)) >> f``    (round half up; arithmetic shift)
* reset      subtract: ``u = clip(lv - s*(thr+offset))``; zero: ``u = 0 if s else lv``

Cycles of one step, with ``E_l`` events into layer ``l``, ``G_l`` groups and ``pc_{l,g}`` spikes of group
``g``: ``sum_l (E_l*G_l + 1 + U_l) + E_L + 1`` with ``U_l = P + sum_g max(1, pc_{l,g})`` (the UPDATE phase),
``P = cfg.update_latency``. With :attr:`hw.config.ChipConfig.overlap` (``docs/chip.md``, "Overlap"), for every
layer ``l`` with ``cfg.overlapped(l)`` the terms ``U_l + E_{l+1}*G_{l+1} + 1`` (its UPDATE, the next layer's
EVENT phase and end-of-events cycle) become ``max(U_l + D, S_l) + 1``, ``S_l = max_k (emit_k + 1 + D +
sum_{k' >= k} c_{k'})`` over the ``n = E_{l+1}`` spikes ``k`` of layer ``l`` in HWC order, appended in UPDATE cycle
``emit_k = P + sum_{w < w_k} max(1, pc_{l,w}) + j_k`` (``j_k`` earlier spikes of its word ``w_k``), ``S_l = 0``
without spikes; ``c_k`` is the EVENT cycles of spike ``k`` in layer ``l + 1`` (``G_{l+1}`` for an fc layer, ``V_k*G_{l+1}
+ O`` for a conv layer: :func:`word_event_costs`) and ``D = decode_latency(l + 1)`` (0 for an fc layer): :func:`overlap_hidden`
counts the difference.

Conv layers (``docs/chip.md``, "Convolution and pooling"): input events are sum-pooled into per-address
counts, the synaptic sums are one product of the im2col matrix of those counts (rows: output positions,
columns: kernel taps ``(c*kh + ky)*kw + kx``) with the ``(C_in*kh*kw, C_out)`` weight matrix, and an event
costs ``V*G_l`` cycles, ``V`` from :meth:`hw.config.ChipConfig.receptive_counts` (a per-address vector,
so the EVENT cycles are one matrix-vector product of the per-address event counts).
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hw.config import COUNTER_BITS, ChipConfig, ConfigError

#: the largest value a performance counter holds: the chip's counters saturate there
COUNTER_MAX = (1 << COUNTER_BITS) - 1


def saturate_counters(counters: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every counter capped at :data:`COUNTER_MAX` (in place), as the RTL's ``PerformanceCounters`` do.

    The chip adds non-negative increments each cycle and holds at ``2**COUNTER_BITS - 1``, so its count is
    ``min(total, COUNTER_MAX)`` of the exact total a model computes in int64."""
    values = [v for v in counters.values() if v is not None and np.size(v)]
    if values and np.concatenate(values, axis=None).max() > COUNTER_MAX:    # one array call on the hot path
        for name, v in counters.items():
            if v is not None:
                counters[name] = np.minimum(v, COUNTER_MAX)
    return counters


@dataclass
class ChipResult:
    """What a chip backend returns for a batch of ``B`` samples of ``T`` steps.

    ``spikes[l]``: bool ``(B, T, N_{l+1})`` spikes of layer ``l`` (``spikes[-1]`` is the output); int32
    spike counts per step from the asynchronous mode (:mod:`sim.async_model`), where a neuron can fire
    more than once in a step.
    ``state[l]``: int64 ``(B, T, N_{l+1})`` stored membrane state after step ``t`` (after leak and reset),
    or ``None`` when the backend was asked not to record it.
    ``counters``: name -> int64 ``(B,)`` per-sample counters, the names of
    :attr:`hw.config.ChipConfig.counter_names`, saturated at :data:`COUNTER_MAX` like the chip's 32-bit
    counters (every backend's result goes through :func:`saturate_counters`). ``cycles`` is
    ``counters["cycles"]``.

    Every array is the result's own: none is a view of a backend's scratch memory, so a later run never
    changes a result already returned.
    """

    spikes: list[np.ndarray]
    state: list[np.ndarray] | None
    counters: dict[str, np.ndarray]

    def __post_init__(self):
        saturate_counters(self.counters)

    @property
    def output(self) -> np.ndarray:
        return self.spikes[-1]

    @property
    def cycles(self) -> np.ndarray:
        return self.counters["cycles"]

    def rates(self) -> np.ndarray:
        """Output firing rate per sample and neuron, spikes per step, shape ``(B, N_L)``."""
        return self.spikes[-1].mean(axis=1)


def input_dtype(cfg: ChipConfig, layer: int) -> type:
    """The dtype of what ``layer``'s synaptic product multiplies (the one place it is decided): bool spikes for an fc
    layer without input pooling; otherwise event counts per (pooled) input address — int8 where at most 127 events
    can reach one address (pool area <= 127; a conv layer without pooling: 0 or 1), int16 beyond (stacked pools
    reach 16x16 = 256). int16 counts have no int8 product (:meth:`FastModel.product_path`: float instead) and take
    two bytes each (:func:`sim.chip.memory_estimate`)."""
    area = cfg.pool_area(layer)
    if cfg.layer_kind(layer) == "fc" and area == 1:
        return np.bool_
    return np.int8 if area <= 127 else np.int16


def check_leak_multipliers(cfg: ChipConfig, beta_int: Sequence[np.ndarray] | None) -> list[np.ndarray]:
    """Per-layer leak multipliers as int64 (a scalar or one per neuron): ``cfg.beta_int`` when ``None``,
    else ``beta_int`` checked against ``1 .. 2**f`` (``2**f``: no leak, the IF neuron, as ``cfg.beta_int`` encodes
    beta = 1) and the layer sizes (a one-line ConfigError)."""
    if beta_int is None:
        return [np.int64(b) for b in cfg.beta_int]
    if len(beta_int) != cfg.num_layers:
        raise ConfigError(f"beta_int: expected {cfg.num_layers} vectors (one per layer), got {len(beta_int)}")
    out, f = [np.asarray(b, np.int64) for b in beta_int], cfg.beta_frac_bits
    for l, b in enumerate(out):
        if b.shape not in ((), (cfg.fan_out(l),)) or b.min() < 1 or b.max() > 1 << f:
            raise ConfigError(f"beta_int[{l}]: allowed are integers 1..{1 << f} ({1 << f}: no leak), a scalar "
                              f"or one per neuron ({cfg.fan_out(l)})")
    return out


def leak(v: np.ndarray, beta_int: int, frac_bits: int) -> np.ndarray:
    """``round_half_up(v * beta_int / 2**frac_bits)`` on int64 arrays."""
    return (v * beta_int + (1 << (frac_bits - 1))) >> frac_bits


def group_spike_cycles(s: np.ndarray, lanes: int) -> np.ndarray:
    """Update-phase cycles for spikes ``s`` (..., N): per group of ``lanes`` neurons, ``max(1, spikes)``."""
    n = s.shape[-1]
    g = -(-n // lanes)
    pad = g * lanes - n
    if pad:
        s = np.concatenate([s, np.zeros(s.shape[:-1] + (pad,), bool)], axis=-1)
    pc = s.reshape(s.shape[:-1] + (g, lanes)).sum(-1)
    return np.maximum(pc, 1).sum(-1)


class FastModel:
    """Vectorised model of the chip; one instance holds one programmed chip (weights, offsets).

    The network is feed-forward, so :meth:`run` evaluates it layer by layer over all steps at once: one
    synaptic product per layer for the whole batch and every step (dense, or sparse — the weight rows of
    the active inputs only — below :attr:`SPARSE_BELOW` input density), then the neuron recurrence over
    the steps, then every counter in closed form from the spike tensors.

    Arithmetic is in floating point but exact: the recurrence works on ``v·c + 1/2`` with
    ``c = beta_int/2**f`` (so the leak is one ``floor``), and every value is an integer multiple of
    ``2**-f`` bounded by :meth:`exact_bound`; float32 is used for a layer when that bound is at most
    ``2**24`` (float32 represents every such value exactly), float64 (exact to ``2**53``, always enough
    for :class:`ChipConfig`'s ranges) otherwise.
    """

    #: the sparse product where numba is installed (:func:`sim.kernels.gather_product`, event-driven: one
    #: pass over the inputs plus ``N_out`` adds per event, no fixed cost): below this input density of a
    #: layer (events per input neuron and step) against the int8 product, and below
    #: :attr:`GATHER_BELOW_FLOAT` against the float one. Crossover measured on 2 shared cores, 800 rows
    #: (``runs``-free micro-benchmark, CPU time): 256x256 gather/int8 0.11/0.25 ms at 1 %, 0.23/0.25 at
    #: 10 %, 0.48/0.25 at 20 % (25 rows: 5/13 us at 1 %, 16/13 us at 20 %); 1024x1024 0.75/4.1 ms at 1 %,
    #: 3.4/4.1 ms at 10 %
    GATHER_BELOW = 0.08
    GATHER_BELOW_FLOAT = 0.2
    #: above this many bytes of (int16) weights the gathered rows miss the caches: the crossover falls to
    #: :attr:`GATHER_BELOW_LARGE` (4096x4096, 32 MB: gather/int8 10/63 ms at 0.5 %, 65/63 ms at 5 %)
    GATHER_CACHE_BYTES = 1 << 23
    GATHER_BELOW_LARGE = 0.03
    #: without numba the sparse product is scipy's CSR product: below this input density of a layer;
    #: crossover measured with ``bench/bench_model.py`` on 2 shared cores against the int8 product
    SPARSE_BELOW = 0.02
    #: below this many dense multiply-accumulates the CSR product's fixed cost is never worth it
    SPARSE_MIN_WORK = 1 << 24
    #: above this many bytes of (float) weights the CSR product's scattered row reads miss the caches
    #: and the dense int8 product wins even at 1 % density (layer 0, batch 32 x 25 steps, density 0.01:
    #: sparse/int8 2.5/4.8 ms at 1024x1024 (4 MB), 12.3/18.3 ms at 2048x2048 (16 MB), 104/65 ms at
    #: 4096x4096 (64 MB); measured on 2 shared cores)
    SPARSE_MAX_WEIGHT_BYTES = 1 << 25
    #: ``"int8"``: spikes and weights as int8, int32 sums (torch's VNNI kernel; weight_bits <= 8);
    #: ``"float"``: float32/float64 BLAS; ``"sparse"``: CSR rows of the active inputs; ``"auto"`` picks
    PATHS = ("auto", "int8", "float", "sparse")
    DTYPES = ("auto", "float64")
    #: neuron arrays (batch x layer width) up to this size use the masked-reset recurrence
    MASKED_MAX = 2048
    #: the neuron recurrence: ``"compiled"`` (:mod:`sim.kernels`, int64, one pass per neuron),
    #: ``"numpy"`` (array calls per step) or ``"auto"`` (compiled where numba is installed)
    RECURRENCES = ("auto", "compiled", "numpy")

    def __init__(self, cfg: ChipConfig, weights, threshold_offsets=None,
                 beta_int: Sequence[np.ndarray] | None = None,
                 distortion: Callable[[np.ndarray, int], np.ndarray] | None = None,
                 path: str = "auto", dtype: str = "auto", recurrence: str = "auto"):
        """``beta_int`` (per-neuron leak multipliers, one vector per layer) and ``distortion`` (maps the
        saturated membrane ``v`` of layer ``l`` to a distorted one) model faults the RTL does not have;
        see :mod:`sim.faults`. Left ``None`` the model is the chip, bit for bit.

        ``path`` forces the synaptic product (see :attr:`PATHS`; ``"auto"`` picks by input density and
        weight width), ``dtype="float64"`` the wide arithmetic and ``recurrence`` the neuron loop (see
        :attr:`RECURRENCES`); results are identical either way."""
        if path not in self.PATHS:
            raise ConfigError(f"path={path!r}: allowed values are {self.PATHS}")
        if recurrence not in self.RECURRENCES:
            raise ConfigError(f"recurrence={recurrence!r}: allowed values are {self.RECURRENCES}")
        from sim.kernels import lif_recurrence
        if recurrence == "compiled" and lif_recurrence is None:
            raise ConfigError("recurrence='compiled': needs numba (pip install numba)")
        self.compiled = lif_recurrence is not None and recurrence != "numpy"
        if dtype not in self.DTYPES:
            raise ConfigError(f"dtype={dtype!r}: allowed values are {self.DTYPES}")
        self.cfg, self.path = cfg, path
        self.weights = cfg.check_weights(weights)
        self.offsets = cfg.check_offsets(threshold_offsets)
        self.beta_int = check_leak_multipliers(cfg, beta_int)
        if distortion is not None and cfg.touched:
            raise ConfigError("distortion: the membrane distortion is not modelled with update='touched'")
        self.distortion = distortion
        self.dtypes = [np.float32 if dtype == "auto" and self.exact_bound(l) <= 1 << 24 else np.float64
                       for l in range(cfg.num_layers)]
        assert all(self.exact_bound(l) <= 1 << 53 for l in range(cfg.num_layers))
        # every layer's weights as a (rows, C_out) matrix: fc (N_in, N_out), conv (C_in*kh*kw, C_out)
        self._w = [w.reshape(cfg.weight_rows(l), -1).astype(dt)
                   for l, (w, dt) in enumerate(zip(self.weights, self.dtypes))]
        self._V = [cfg.receptive_counts(l) for l in range(cfg.num_layers)]
        self._costs = [word_event_costs(cfg, l) if cfg.overlapped(l) else None for l in range(cfg.num_layers)]
        self._tiled: dict = {}
        self._int8 = cfg.weight_bits <= 8 and _int_mm() is not None
        if path == "int8" and not self._int8:
            raise ConfigError(f"path='int8': needs weight_bits <= 8 (got {cfg.weight_bits}) and torch._int_mm")
        self._w8 = [_int_mm().from_numpy(w.reshape(cfg.weight_rows(l), -1).astype(np.int8))
                    for l, w in enumerate(self.weights)] if self._int8 else None
        # the event-driven (gathered) product (numba, beside the compiled recurrence); its int16 weights are
        # made on first use (:meth:`_gather_weights`: a chip reloaded per proposal may never take it)
        from sim.kernels import gather_product
        self._gather = gather_product is not None and self.compiled
        self._wg: dict = {}
        self._c, self._thr, self._thr_s, self._lo_s, self._hi_s = [], [], [], [], []
        for l, dt in enumerate(self.dtypes):
            c = (self.beta_int[l] / (1 << cfg.beta_frac_bits)).astype(dt)            # exact: beta_int < 2**f
            thr = (cfg.threshold[l] + self.offsets[l]).astype(dt)
            self._c.append(_scalar_if_uniform(c))
            self._thr.append(_scalar_if_uniform(thr))
            self._thr_s.append(_scalar_if_uniform(thr * c + dt(0.5)))
            self._lo_s.append(_scalar_if_uniform(dt(cfg.membrane_min) * c + dt(0.5)))
            self._hi_s.append(_scalar_if_uniform(dt(cfg.membrane_max) * c + dt(0.5)))

    def exact_bound(self, layer: int) -> int:
        """Largest integer numerator (in units of ``2**-f``) any intermediate of ``layer`` can reach.

        ``(|u|max + max_j sum_i |W_ij|·pool_area)·max(beta_int) + 2**(f-1)``: a stored membrane is at most
        ``2**(m-1)`` in magnitude, one step adds at most the largest column sum of ``|W|`` (a conv layer:
        over its kernel taps) times the events one pooled address can get (never more than
        ``synaptic_fan_in·2**(w-1)``), the recurrence scales by ``beta_int`` and adds the rounding half."""
        cfg = self.cfg
        u_max = 1 << (cfg.membrane_bits - 1)
        col = self._column_bound(layer)
        return (u_max + col) * int(np.max(self.beta_int[layer])) + (1 << (cfg.beta_frac_bits - 1))

    def _column_bound(self, layer: int) -> int:
        """The largest column sum of ``|W|`` of ``layer`` times its pool area: the most one step's events add
        to a neuron (computed once per layer)."""
        cache = self.__dict__.setdefault("_col_bounds", {})
        if layer not in cache:
            w = self.weights[layer].reshape(self.cfg.weight_rows(layer), -1)
            cache[layer] = int(np.abs(w).sum(axis=0, dtype=np.int64).max(initial=0)) * self.cfg.pool_area(layer)
            if self.cfg.has_bias:                    # the bias is added with the step's sums (docs/chip.md, "Bias")
                cache[layer] += int(np.abs(self.cfg.bias_vector(layer)).max(initial=0))
        return cache[layer]

    def _gather_weights(self, layer: int):
        """The gathered product's weights of ``layer`` as int16 ``(rows, C_out)`` (weight_bits <= 16) and the
        dtype of its sums (int32 where every sum fits, see :meth:`_column_bound`), made once."""
        if layer not in self._wg:
            w = self.weights[layer].reshape(self.cfg.weight_rows(layer), -1).astype(np.int16)
            self._wg[layer] = (w, np.int32 if self._column_bound(layer) < 1 << 31 else np.int64)
        return self._wg[layer]

    def product_path(self, layer: int, rows: int, events: int) -> str:
        """How the synaptic product of ``layer`` for ``rows`` (step, sample) rows with ``events`` input
        spikes in total is computed: ``"sparse"``, ``"int8"`` or ``"float"``."""
        # int16 event counts (:func:`input_dtype`: stacked pools) have no int8 product: float instead
        int8 = self._int8 and input_dtype(self.cfg, layer) != np.int16
        if self.path != "auto":
            return "float" if self.path == "int8" and not int8 else self.path
        n_in, n_out = self._w[layer].shape
        if self._gather:
            below = (self.GATHER_BELOW_LARGE if 2 * self._w[layer].size > self.GATHER_CACHE_BYTES
                     else self.GATHER_BELOW if int8 else self.GATHER_BELOW_FLOAT)
            return "sparse" if events < below * rows * n_in else "int8" if int8 else "float"
        if (events < self.SPARSE_BELOW * rows * n_in and rows * n_in * n_out >= self.SPARSE_MIN_WORK
                and self._w[layer].nbytes <= self.SPARSE_MAX_WEIGHT_BYTES):
            return "sparse"
        return "int8" if int8 else "float"

    def _product(self, layer: int, x: np.ndarray, events: int) -> np.ndarray:
        """``x @ W`` for bool ``x`` or int8/int16 event counts ``x`` (rows, N_in) (``W``: the layer's weight
        matrix, see ``_w``), in the layer's dtype (a scratch array), or as the integer sums themselves (int32
        or int64 scratch) where the recurrence is an int64 one (compiled or distorted), which takes any integer
        dtype. ``events``: nonzero entries of ``x``."""
        w = self._w[layer]
        rows, n_in = x.shape
        h = _scratch.get(("h", layer), (rows, w.shape[1]), w.dtype)
        how = self.product_path(layer, rows, events)
        assert how != "int8" or x.dtype in (np.bool_, np.int8), (layer, x.dtype)   # input_dtype's int16 counts
        if how == "sparse" and self._gather:
            from sim.kernels import gather_product
            wg, acc_dtype = self._gather_weights(layer)
            acc = _scratch.get(("acc", layer), h.shape, acc_dtype)
            gather_product(x.view(np.uint8) if x.dtype == bool else x, wg, acc)
            return acc                          # integer sums: the int64 recurrences take them as they are
        if how == "sparse":
            from scipy.sparse import csr_matrix
            indptr = np.zeros(rows + 1, np.int64)
            np.cumsum(np.count_nonzero(x, axis=1), out=indptr[1:])
            flat = np.flatnonzero(x)
            cols = flat % n_in
            data = np.ones(len(cols), w.dtype) if x.dtype == bool else x.reshape(-1)[flat].astype(w.dtype)
            m = csr_matrix((data, cols, indptr), shape=(rows, n_in))
            np.copyto(h, m @ w)
        elif how == "int8":                     # exact: |sum| <= fan_in * 128 < 2**31
            torch = _int_mm()
            acc = _scratch.get(("acc", layer), h.shape, np.int32)
            threads = torch.get_num_threads()
            if threads != 1:    # its 2-thread kernel took >= 16 ms per call on 2 shared cores, at any size
                torch.set_num_threads(1)
            try:
                x8 = x.view(np.int8) if x.dtype == bool else x
                torch._int_mm(torch.from_numpy(np.ascontiguousarray(x8)), self._w8[layer], out=torch.from_numpy(acc))
            finally:
                if threads != 1:
                    torch.set_num_threads(threads)
            if self.compiled or self.distortion is not None:
                return acc                      # integer sums: the int64 recurrences take them as they are
            np.copyto(h, acc)
        else:
            np.matmul(_copy_to(_scratch.get(("x", layer), x.shape, w.dtype), x), w, out=h)
        return h

    #: im2col matrices are built in chunks of at most this many bytes
    IM2COL_BYTES = 1 << 25

    def _image_sums(self, layer: int, x: np.ndarray) -> np.ndarray:
        """Synaptic sums ``(T, B, N_out)`` of a conv layer, or of an fc layer behind a pool, for bool input
        spikes ``x`` (T, B, N_raw) (HWC): sum pooling to int8 counts, then (conv) im2col and one product."""
        cfg = self.cfg
        T, B, _ = x.shape
        C, H, W = cfg.raw_in_shape(layer)
        ph, pw = cfg.pool_window(layer)
        a = x.reshape(T * B, H, W, C)
        counts = input_dtype(cfg, layer)                  # events per pooled address: int8 or int16
        if ph * pw > 1:                                   # sum pooling
            v = a.view(np.int8).reshape(T * B, H // ph, ph, W // pw, pw, C)
            a = _scratch.get(("pool", layer), (T * B, H // ph, W // pw, C), counts)
            np.copyto(a, v[:, :, 0, :, 0])
            for i in range(ph):                           # ph*pw adds: far faster than a strided sum
                for j in range(pw):
                    if i or j:
                        a += v[:, :, i, :, j]
        if cfg.layer_kind(layer) == "fc":
            m = a.reshape(T * B, -1)
            return self._product(layer, m, int(np.count_nonzero(m))).reshape(T, B, -1)
        (kh, kw), s, (pdh, pdw) = cfg.kernel(layer), cfg.stride(layer), cfg.padding(layer)
        _, Ho, Wo = cfg.out_shape(layer)
        Hp, Wp = a.shape[1], a.shape[2]
        if a.dtype == bool:
            a = a.view(np.int8)
        padded = _scratch.get(("pad", layer), (T * B, Hp + 2 * pdh, Wp + 2 * pdw, C), counts)
        padded.fill(0)
        padded[:, pdh:pdh + Hp, pdw:pdw + Wp] = a
        rows_per_sample, k = Ho * Wo, C * kh * kw
        n_out = rows_per_sample * cfg.out_channels(layer)
        step = max(1, self.IM2COL_BYTES // max(1, rows_per_sample * k))
        out = None if step >= T * B else _scratch.get(("conv", layer), (T * B, n_out), self.dtypes[layer])
        for i in range(0, T * B, step):
            n = min(step, T * B - i)
            # im2col: column (c*kh + ky)*kw + kx of row (sample, y', x') is padded[sample, s*y'+ky, s*x'+kx, c]
            m = _scratch.get(("im2col", layer), (n, Ho, Wo, C, kh, kw), counts)
            for ky in range(kh):
                for kx in range(kw):
                    m[..., ky, kx] = padded[i:i + n, ky:ky + s * (Ho - 1) + 1:s, kx:kx + s * (Wo - 1) + 1:s]
            m = m.reshape(-1, k)
            h = self._product(layer, m, int(np.count_nonzero(m)))
            if out is None:
                return h.reshape(T, B, n_out)
            out[i:i + n] = h.reshape(n, n_out)
        return out.reshape(T, B, -1)

    def _recurrence(self, layer: int, h: np.ndarray, record_state: bool):
        """Neuron dynamics over all steps; ``h`` (T, B, N) synaptic sums (overwritten).
        Returns bool spikes (T, B, N) and the stored state (T, B, N) (or ``None``)."""
        T, B, N = h.shape
        dt = self.dtypes[layer]
        # flat (B*N) arrays with per-neuron parameters tiled: one contiguous loop per ufunc call
        c, thr, thr_s, lo_s, hi_s = (p if np.ndim(p) == 0 else np.tile(p, B) for p in (
            self._c[layer], self._thr[layer], self._thr_s[layer], self._lo_s[layer], self._hi_s[layer]))
        h = h.reshape(T, B * N)
        h *= c                                  # scaled: a = u·c + h·c + 1/2, exact (see exact_bound)
        h += dt(0.5)
        # spikes as 0/1 in the arithmetic dtype, reset by arithmetic; small arrays: bool spikes and a
        # masked reset (fewer calls; masked ufuncs are many times slower on large, irregular masks)
        masked = B * N <= self.MASKED_MAX
        spk = _scratch.get(("spk", layer), (T, B * N), bool if masked else dt)
        st = _scratch.get(("st", layer), (T, B * N), dt) if record_state else None
        u = np.zeros(B * N, dt)
        tmp = np.empty(B * N, dt)
        subtract = self.cfg.reset == "subtract"
        if masked:
            for t in range(T):
                a = h[t]
                if t:
                    np.multiply(u, c, out=tmp)
                    a += tmp
                a.clip(lo_s, hi_s, out=a)
                s = spk[t]
                np.greater(a, thr_s, out=s)
                if record_state:
                    u = st[t]
                np.floor(a, out=u)
                if subtract:
                    np.subtract(u, thr, out=u, where=s)
                else:
                    np.copyto(u, 0, where=s)
            return spk.reshape(T, B, N), None if st is None else st.reshape(T, B, N)
        for t in range(T):
            a = h[t]
            if t:
                np.multiply(u, c, out=tmp)
                a += tmp
            a.clip(lo_s, hi_s, out=a)           # saturate
            s = spk[t]
            np.greater(a, thr_s, out=s)         # fire: v > thr
            if record_state:
                u = st[t]
            np.floor(a, out=u)                  # leak: floor(v·c + 1/2)
            if subtract:                        # lv - thr >= -thr >= m_min and lv <= m_max: no clip needed
                np.multiply(s, thr, out=tmp)
                u -= tmp
            else:
                np.subtract(1, s, out=tmp)
                u *= tmp
        return spk.reshape(T, B, N), None if st is None else st.reshape(T, B, N)

    def _recurrence_compiled(self, layer: int, h: np.ndarray, record_state: bool):
        """The same as :meth:`_recurrence` in :func:`sim.kernels.lif_recurrence` (exact int64)."""
        from sim.kernels import lif_recurrence
        cfg = self.cfg
        T, B, N = h.shape
        h = h.reshape(T, B * N)
        key = (layer, B)
        if key not in self._tiled:                  # per-neuron parameters tiled over the batch, kept per batch size
            if len(self._tiled) > 64:
                self._tiled.clear()
            self._tiled[key] = (np.tile(np.broadcast_to(self.beta_int[layer], (N,)).astype(np.int64), B),
                                np.tile((cfg.threshold[layer] + self.offsets[layer]).astype(np.int64), B))
        beta, thr = self._tiled[key]
        spk = _scratch.get(("spk", layer), (T, B * N), bool)
        st = _scratch.get(("st", layer), (T, B * N), np.int64) if record_state else np.empty((1, 1), np.int64)
        lif_recurrence(h, beta, thr, np.int64(cfg.membrane_min), np.int64(cfg.membrane_max),
                       np.int64(cfg.beta_frac_bits), cfg.reset == "subtract", record_state, spk, st)
        return spk.reshape(T, B, N), st.reshape(T, B, N) if record_state else None

    def _recurrence_distorted(self, layer: int, h: np.ndarray, record_state: bool):
        """The same in int64, step by step, with the distortion applied to the saturated membrane."""
        cfg = self.cfg
        T, B, N = h.shape
        lo, hi = cfg.membrane_min, cfg.membrane_max
        thr = cfg.threshold[layer] + self.offsets[layer]
        h = h.astype(np.int64)
        spk = np.empty((T, B, N), bool)
        st = np.empty((T, B, N), np.int64) if record_state else None
        u = np.zeros((B, N), np.int64)
        for t in range(T):
            v = np.clip(u + h[t], lo, hi)
            v = np.clip(self.distortion(v, layer), lo, hi).astype(np.int64)
            s = v > thr
            lv = leak(v, self.beta_int[layer], cfg.beta_frac_bits)
            u = np.clip(lv - s * thr, lo, hi) if cfg.reset == "subtract" else np.where(s, 0, lv)
            spk[t] = s
            if record_state:
                st[t] = u
        return spk, st

    def run(self, spikes: np.ndarray, record_state: bool = True) -> ChipResult:
        cfg = self.cfg
        x = cfg.check_spikes(spikes)
        if cfg.touched:                 # update by touch: its own code path (sim/lazy.py)
            from sim.lazy import run_touched
            return run_touched(self, x, record_state)
        B, T, _ = x.shape
        L = cfg.num_layers
        inp = _copy_to(_scratch.get("in", (T, B, x.shape[2]), bool), x.transpose(1, 0, 2))   # step-major
        events = [_spike_counts(x)]                                 # per sample, into layer l
        spk, st = [], [] if record_state else None
        rec = (self._recurrence_distorted if self.distortion is not None else
               self._recurrence_compiled if self.compiled else self._recurrence)
        weighted = []                                               # sum of V over events, per sample
        hidden, busy = [None] * L, [None] * L                       # per overlapped layer, per sample
        for l in range(L):
            if cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1:
                if cfg.layer_kind(l) == "conv":                     # fc behind a pool: V = 1
                    per_addr = inp.sum(axis=0, dtype=np.int32)      # (B, N_raw) events per address
                    weighted.append(per_addr @ self._V[l])
                else:
                    weighted.append(events[l])
                h = self._image_sums(l, inp)
            else:
                weighted.append(events[l])
                h = self._product(l, inp.reshape(T * B, -1), int(events[l].sum())).reshape(T, B, -1)
            if cfg.has_bias and any(cfg.bias[l]):         # v = clip(u + x@W + b): b joins the step's sums
                b = cfg.bias_vector(l)
                h = h.astype(np.int64) + b if np.issubdtype(h.dtype, np.integer) else np.add(h, b.astype(h.dtype), out=h)
            s, u = rec(l, h, record_state)
            if s.dtype != bool:
                s = np.not_equal(s, 0, out=_scratch.get(("spk_b", l), s.shape, bool))
            # always a copy: with B == 1 or T == 1 the transposed scratch is already contiguous, and
            # ascontiguousarray would hand out the scratch memory itself (the next run overwrites it)
            spk.append(s.transpose(1, 0, 2).copy())
            if record_state:
                st.append(u.transpose(1, 0, 2).astype(np.int64, order="C", copy=True))
            if cfg.overlapped(l):       # hidden cycles, busy words and spikes in one pass over the spikes
                hidden[l], busy[l], n = overlap_counts(cfg, l, spk[l], self._costs[l])
                events.append(n)
            else:
                events.append(_spike_counts(spk[l]))
            inp = s
        c = {name: np.zeros(B, np.int64) for name in cfg.counter_names}
        c["in_events"] = events[0]
        for l in range(L):
            e, ev, n_out, G = events[l], weighted[l], cfg.fan_out(l), cfg.groups(l)
            words, pos, co = cfg.state_words(l), cfg.positions(l), cfg.out_channels(l)
            c[f"spikes_l{l}"] = events[l + 1]
            # update phase per step: sum_words max(1, pc) = spikes + words - (words that have a spike)
            if busy[l] is None:
                busy[l] = _busy_groups(spk[l].reshape(B, T * pos, co), cfg.lanes)
            upd = events[l + 1] + T * words - busy[l]
            c["cycles"] += (T * cfg.decode_latency(l) + ev * G + e * cfg.event_overhead(l)
                            + (1 + cfg.update_latency) * T + upd)
            c["synops"] += ev * co
            c["weight_reads"] += ev * G
            c["state_reads"] += ev * G + T * words
            c["state_writes"] += ev * G + T * words
            c["neuron_updates"] += T * n_out
            if hidden[l] is not None:
                c["cycles"] -= hidden[l]
        c["out_events"] = events[L].copy()
        c["cycles"] += events[L] + T
        return ChipResult(spikes=spk, state=st, counters=c)


def word_spike_counts(cfg: ChipConfig, layer: int, s: np.ndarray) -> np.ndarray:
    """``pc``: spikes per state word of ``layer`` in address order, uint8 ``(B, T, state_words(layer))``,
    for its bool spikes ``s`` (B, T, N) in HWC order (word ``pos*G + g`` holds neurons ``pos*C_out +
    g*lanes ..``)."""
    B, T, n = s.shape
    lanes, co, G = cfg.lanes, cfg.out_channels(layer), cfg.groups(layer)
    words = cfg.state_words(layer)
    if co != G * lanes:                              # the last group of a position is partly empty
        s = np.concatenate([s.reshape(B, T, -1, co),
                            np.zeros((B, T, n // co, G * lanes - co), bool)], axis=3)
    s = np.ascontiguousarray(s).reshape(B, T, words * lanes)
    if lanes % 8 == 0:                               # 8 bools as one 64-bit word: a population count
        pc = np.bitwise_count(s.view(np.uint64))
        return pc if lanes == 8 else pc.reshape(B, T, words, lanes // 8).sum(-1, dtype=np.uint8)
    return s.reshape(B, T, words, lanes).sum(-1, dtype=np.uint8)


def overlap_hidden(cfg: ChipConfig, layer: int, s: np.ndarray) -> np.ndarray:
    """Per sample, the cycles the overlap of ``layer``'s UPDATE with the next layer's EVENT phase hides
    (``docs/chip.md``, "Overlap"; the model subtracts it where ``cfg.overlapped(layer)``), for the bool
    spikes ``s`` (B, T, N) of ``layer`` (HWC): over the steps, ``(U + n*G' + 1) - (max(U, S) + 1)``, ``n``
    spikes in the step, ``G' = groups(layer + 1)``, ``U = P + F`` the UPDATE phase (``F = sum_w cost_w``,
    ``cost_w = max(1, pc_w)`` over the state words) and ``S`` the end of the next layer's last event.

    ``S = max_k (emit_k + 1 + (n - k)*G')``: spike ``k``, the ``j``-th of word ``w``, is appended in cycle
    ``emit_k = P + fetch_w + j`` and has rank ``k = before_w + j`` (``fetch_w``, ``before_w``: sums of
    ``cost`` and of ``pc`` over the words before ``w``), so its term is ``P + 1 + n*G' + e_w - j*(G' - 1)``
    with ``e_w = sum_{w' < w} d_{w'}``, ``d = cost - G'*pc``. Within a word the first spike's term is the
    largest (``G' >= 1``). A word without a spike has ``e_{w+1} = e_w + 1``, so its ``e`` is the largest
    only if it is the last word, and then ``P + 1 + n*G' + e_w = U`` (``e_{W-1} = F - 1 - n*G'``): the max
    may run over every word, ``max(U, S) = P + 1 + n*G' + max(F - 1 - n*G', max_w e_w)``. The hidden
    cycles are therefore ``c_{W-1} - max(0, max_w c_w)`` with ``c_w`` the inclusive sums of ``d`` with 1
    taken off the last word (``c_{W-1} = F - n*G' - 1``, ``c_w = e_{w+1}`` before it), plus ``n*G'``: one
    cumulative sum and one max per step. Without spikes ``c_w = w + 1`` (``c_{W-1} = W - 1``): 0.

    With few words and many (sample, step) rows (``W * OVERLAP_ROWS_PER_WORD <= rows``) the sum runs word
    by word over every row at once (an array call per word); otherwise row by row (an axis-wise cumsum,
    whose cost per row dominates short rows): :func:`_overlap_hidden_fc`. Into a decoded (conv) next layer, whose
    events cost differently by position: :func:`_decoded_overlap_hidden`. Where numba is installed (and
    :data:`COMPILED_COUNTERS`), one compiled pass over the spike counts computes either
    (:func:`sim.kernels.overlap_hidden`, with each word's spike cost from :func:`word_event_costs`: ``G'`` for
    every word of an fc next layer) and the counts :func:`overlap_counts` returns with it."""
    return overlap_counts(cfg, layer, s)[0]


def overlap_counts(cfg: ChipConfig, layer: int, s: np.ndarray, costs: np.ndarray | None = None) -> np.ndarray:
    """Per sample, from one pass over the spike counts per word of ``layer`` (its bool spikes ``s`` (B, T, N),
    HWC), ``(3, B)`` int64: the cycles the overlap hides (:func:`overlap_hidden`), the (step, state word) pairs
    with a spike (the UPDATE phase's ``sum_w max(1, pc_w)`` is the spikes plus the words minus them, as
    :func:`_busy_groups` counts) and the spikes (:func:`_spike_counts`): :class:`FastModel` takes all three
    from here for an overlapped layer. ``costs``: :func:`word_event_costs` of ``layer``, if already made."""
    pc = word_spike_counts(cfg, layer, s)                                       # (B, T, W) uint8
    B = pc.shape[0]
    out = np.empty((3, B), np.int64)
    if COMPILED_COUNTERS:
        from sim import kernels
        if kernels.overlap_hidden is not None:
            kernels.overlap_hidden(pc, word_event_costs(cfg, layer) if costs is None else costs, out)
            return out
    flat = pc.reshape(B, -1)
    out[0] = _decoded_overlap_hidden(cfg, layer, pc) if cfg.decoded(layer + 1) else _overlap_hidden_fc(cfg, layer, pc)
    out[1] = np.count_nonzero(flat, axis=1)
    out[2] = flat.sum(axis=1, dtype=np.int64)
    return out


def _overlap_hidden_fc(cfg: ChipConfig, layer: int, pc: np.ndarray) -> np.ndarray:
    """:func:`overlap_hidden` (numpy) into an fc next layer, for the spikes per word ``pc`` of ``layer``
    (:func:`word_spike_counts`): word by word or row by row (``OVERLAP_ROWS_PER_WORD``)."""
    B, T, W = pc.shape
    Gn = cfg.groups(layer + 1)
    bound = W * max(1, cfg.lanes * (Gn - 1)) + 1                                # |c_w| <= bound
    by_word = W * OVERLAP_ROWS_PER_WORD <= B * T
    # int16 where it is exact, for the elementwise adds only (numpy's int16 cumsum is 2.5x slower than int32's)
    dt = np.int16 if by_word and bound < 1 << 15 else np.int32 if bound < 1 << 31 else np.int64
    p = np.ascontiguousarray(pc.reshape(B * T, W).T) if by_word else pc.reshape(B * T, W)
    d = (p == 0).astype(dt)                                                     # d = cost - G'*pc
    if Gn > 1:
        d -= p * dt(Gn - 1)
    if by_word:                                                                 # d: (W, rows)
        d[-1] -= 1
        top = np.zeros(B * T, dt)
        for w in range(W):
            if w:
                np.add(d[w - 1], d[w], out=d[w])
            np.maximum(top, d[w], out=top)
        last = d[-1]
    else:                                                                       # d: (rows, W)
        d[:, -1] -= 1
        np.cumsum(d, axis=1, dtype=dt, out=d)
        top = np.maximum(d.max(axis=1), 0)
        last = d[:, -1]
    hidden = (last.astype(np.int64) - top).reshape(B, T).sum(axis=1)
    return hidden + Gn * pc.reshape(B, -1).sum(axis=1, dtype=np.int64)


def word_event_costs(cfg: ChipConfig, layer: int) -> np.ndarray:
    """Per state word of ``layer`` (address order) the EVENT cycles one of its spikes costs in ``layer + 1``,
    int64 ``(state_words(layer),)``: ``V*G + O`` (:meth:`hw.config.ChipConfig.receptive_counts` of ``layer + 1``
    at the word's position — the same for every channel there —, its groups and event overhead; an fc next
    layer's ``G``)."""
    if not cfg.decoded(layer + 1):
        return np.full(cfg.state_words(layer), cfg.groups(layer + 1), np.int64)
    V = cfg.receptive_counts(layer + 1)[::cfg.out_channels(layer)]                # per position (HWC)
    cost = V * cfg.groups(layer + 1) + cfg.event_overhead(layer + 1)
    return np.repeat(cost, cfg.groups(layer)).astype(np.int64)


def _decoded_overlap_hidden(cfg: ChipConfig, layer: int, pc: np.ndarray) -> np.ndarray:
    """:func:`overlap_hidden` (numpy) into a decoded (conv) next layer, whose events cost ``V*G + O`` cycles each
    (:func:`word_event_costs`) and start ``D`` cycles after their take (the decoder's fill, also of the end
    token: ``D`` cancels, ``docs/chip.md``, "Overlap"), for the spikes per word ``pc`` of ``layer``
    (:func:`word_spike_counts`): the same closed form with ``d = cost_w - C_w``, ``C_w = gw_w*pc_w`` the word's
    spikes' summed costs, and ``sum_w C_w`` in place of ``n*G'``."""
    gw = word_event_costs(cfg, layer)
    cw = pc * gw                                                                # (B, T, W) int64
    d = np.maximum(pc, 1) - cw
    d[..., -1] -= 1
    np.cumsum(d, axis=2, out=d)
    top = np.maximum(d.max(axis=2), 0)
    return (d[..., -1] - top).sum(axis=1) + cw.reshape(pc.shape[0], -1).sum(axis=1)


#: :func:`overlap_hidden` scans word by word when there are at least this many (sample, step) rows per word
#: (crossover measured on 2 shared cores, lanes 8: rows x words 800 x 32 equal, 6400 x 32 0.41 vs 0.70 ms,
#: 6400 x 256 6.1 vs 4.6 ms, 1600 x 784 6.8 vs 2.7 ms for word vs row scans)
OVERLAP_ROWS_PER_WORD = 64
#: the per-sample counters from spikes (:func:`overlap_hidden`, :func:`_busy_groups`, :func:`_spike_counts`) in
#: one compiled pass each (:mod:`sim.kernels`) where numba is installed; ``False``: the numpy versions (tests
#: compare both)
COMPILED_COUNTERS = True


def _busy_groups(s: np.ndarray, lanes: int) -> np.ndarray:
    """For bool spikes ``s`` (B, T, N): per sample, the number of (step, group of ``lanes``) with a spike."""
    B, T, n = s.shape
    if lanes == 1:
        return _spike_counts(s)
    g = -(-n // lanes)
    if g * lanes != n:
        s = np.concatenate([s, np.zeros((B, T, g * lanes - n), bool)], axis=-1)
    if lanes in (2, 4, 8):                       # a group's bools as one 16/32/64-bit word
        words = s.view(f"u{lanes}").reshape(B, T, g)
    else:
        words = s.reshape(B, T, g, lanes).any(axis=-1)
    if COMPILED_COUNTERS:
        from sim import kernels
        if kernels.row_nonzero is not None:
            out = np.empty(B, np.int64)
            kernels.row_nonzero(words.reshape(B, -1), out)
            return out
    return np.count_nonzero(words, axis=(1, 2))


def _spike_counts(s: np.ndarray) -> np.ndarray:
    """Per sample, the spikes of bool ``s`` (B, ...) as int64 (B,): one compiled pass where numba is installed
    (numpy's ``count_nonzero`` over trailing axes is a slow generic reduction)."""
    B = s.shape[0]
    flat = s.reshape(B, -1)
    if COMPILED_COUNTERS:
        from sim import kernels
        if kernels.row_sums is not None:
            out = np.empty(B, np.int64)
            kernels.row_sums(flat.view(np.uint8), out)
            return out
    return np.count_nonzero(flat, axis=1).astype(np.int64)


def _scalar_if_uniform(v: np.ndarray):
    """A per-neuron vector whose entries are all equal as a scalar (faster broadcasting)."""
    v = np.asarray(v)
    return v.dtype.type(v.flat[0]) if v.size and np.all(v == v.flat[0]) else v


def _copy_to(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    np.copyto(dst, src)
    return dst


class _Scratch(threading.local):
    """Scratch arrays reused across runs and models (a fresh multi-megabyte array costs a page fault per
    4 KiB on every run). Per thread, so concurrent runs never share one; buffers over ``LIMIT`` bytes
    are not kept."""
    LIMIT = 1 << 27

    def __init__(self):
        self.bufs: dict = {}

    def get(self, tag, shape, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        n = math.prod(shape) * dtype.itemsize
        if n > self.LIMIT:
            return np.empty(shape, dtype)
        b = self.bufs.get(tag)
        if b is None or b.nbytes < n:
            b = self.bufs[tag] = np.empty(max(n, 64), np.uint8)
        return b[:n].view(dtype).reshape(shape)


_scratch = _Scratch()
_INT_MM: list = []


def _int_mm():
    """torch, if it has a working CPU ``_int_mm`` (int8 x int8 -> int32); else ``None``. Imported lazily."""
    if not _INT_MM:
        try:
            import torch
            a = torch.tensor([[1, 0, 1]], dtype=torch.int8)
            b = torch.tensor([[-128, 127], [5, 5], [-128, 127]], dtype=torch.int8)
            ok = torch._int_mm(a, b).tolist() == [[-256, 254]]
        except Exception:               # no torch, or a build without the kernel
            ok = False
        _INT_MM.append(torch if ok else None)
    return _INT_MM[0]
