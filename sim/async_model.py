"""The asynchronous (event-order) chip mode: a model of chips like SynSense Speck that process each event
as it arrives, with no step barrier. Model only — the RTL in :mod:`hw` is synchronous (docs/chip.md,
"Asynchronous event order").

Differences from the synchronous chip (:class:`sim.model.FastModel`), per time step ``t``:

* **Input order.** The input events of a step arrive one at a time, in the order :attr:`AsyncModel.order`
  names: ``"random"`` — a random permutation of the input addresses per sample and step, drawn from
  ``numpy.random.default_rng(seed)`` for the batch at every :meth:`AsyncModel.run` (so a run is
  reproducible: row ``b`` of a batch always gets the same permutations), or ``"address"`` — ascending
  input address.
* **No barrier.** Each input event's cascade runs to completion before the next event arrives (the chip
  is faster than its input). The event reaches the neurons of layer 1 in ascending index; each one
  integrates ``u ← clip(u + W[i, j])`` and, if ``u > thr + offset``, fires *at once*: it resets at once
  (subtract: ``u ← max(u − thr, m_min)``; zero: ``u ← 0``) and its spike is delivered through the next
  layer, depth-first, before the next neuron of layer 1 takes the event.
* **Many spikes per step.** A neuron is evaluated only when an event reaches it, and may fire on every
  event that leaves it above threshold: its output for a step is a *count* (int32 spikes in
  :class:`sim.model.ChipResult`), not a bit.
* **Leak clock.** The leak ``u ← round_half_up(u·beta_int / 2**f)`` is applied once per step, to every
  neuron, after the step's events (Speck's leak clock). So a subtract reset gives
  ``leak(v − thr)`` where the synchronous chip gives ``leak(v) − thr``; the zero reset is the same.

With at most one event into each layer per step and the zero reset, the two chips agree bit for bit
(spikes and state; tests/sim/test_async.py). Counters: ``synops`` = events into a layer x its fan-out;
``cycles`` an event-driven schedule with the synchronous chip's datapath: one cycle per (event, group of
``lanes`` neurons), ``1 + update_latency`` plus one per group per layer per step for the leak tick, one
per output event; ``neuron_updates`` the leak operations (one per neuron and step).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
from sim.model import ChipResult, check_leak_multipliers

ORDERS = ("random", "address")


class AsyncModel:
    """One programmed asynchronous chip (weights, offsets, optional per-neuron leak multipliers)."""

    def __init__(self, cfg: ChipConfig, weights, threshold_offsets=None,
                 beta_int: Sequence[np.ndarray] | None = None,
                 distortion: Callable[[np.ndarray, int], np.ndarray] | None = None,
                 order: str = "random", seed: int = 0):
        if order not in ORDERS:
            raise ConfigError(f"order={order!r}: allowed values are {ORDERS}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
            raise ConfigError(f"seed={seed!r}: allowed range is integers 0..{2**32 - 1}")
        if distortion is not None:
            raise ConfigError("distortion: the membrane distortion is modelled on the synchronous fast chip "
                              "only (backend 'fast'), not in the asynchronous mode")
        if cfg.has_bias:
            raise ConfigError("bias: the asynchronous mode has no step to add a bias in; use backend 'fast' "
                              "(or a chip without bias)")
        if cfg.touched:
            raise ConfigError("update='touched': the asynchronous mode has no UPDATE phase to skip (its leak is one "
                              "tick per step); use update='all' or backend 'fast'")
        image = [l for l in range(cfg.num_layers) if cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1]
        if image:
            raise ConfigError(f"layers: the asynchronous mode models fully-connected chips only; layer {image[0]} "
                              "is a conv layer or pooled (use backend 'fast')")
        self.cfg, self.order, self.seed = cfg, order, int(seed)
        self.weights = cfg.check_weights(weights)
        self.offsets = cfg.check_offsets(threshold_offsets)
        L = cfg.num_layers
        betas = [np.broadcast_to(b, (cfg.fan_out(l),)) for l, b in enumerate(check_leak_multipliers(cfg, beta_int))]
        self._beta = np.concatenate(betas).astype(np.int64)
        self._thr = np.concatenate([cfg.threshold[l] + np.asarray(self.offsets[l], np.int64)
                                    for l in range(L)]).astype(np.int64)
        self._w = np.concatenate([np.asarray(w, np.int64).ravel() for w in self.weights])
        sizes_w = [cfg.fan_in(l) * cfg.fan_out(l) for l in range(L)]
        self._woff = np.concatenate([[0], np.cumsum(sizes_w)[:-1]]).astype(np.int64)
        self._noff = np.concatenate([[0], np.cumsum(cfg.layer_sizes[1:])[:-1]]).astype(np.int64)
        self._sizes = np.asarray(cfg.layer_sizes, np.int64)

    def arrival_order(self, batch: int, steps: int) -> np.ndarray:
        """The input addresses of every (sample, step) in arrival order, int64 ``(batch, steps, N0)``."""
        n0 = self.cfg.layer_sizes[0]
        if self.order == "address":
            return np.broadcast_to(np.arange(n0, dtype=np.int64), (batch, steps, n0))
        rng = np.random.default_rng(self.seed)
        return rng.random((batch, steps, n0), dtype=np.float32).argsort(axis=-1).astype(np.int64)

    def run(self, spikes: np.ndarray, record_state: bool = True) -> ChipResult:
        from sim.kernels import async_events
        cfg = self.cfg
        x = np.ascontiguousarray(cfg.check_spikes(spikes), dtype=bool)
        B, T, _ = x.shape
        L, M = cfg.num_layers, int(sum(cfg.layer_sizes[1:]))
        spk = np.zeros((B, T, M), np.int32)
        st = np.zeros((B, T, M), np.int64) if record_state else np.zeros((1, 1, 1), np.int64)
        ev = np.zeros((B, L + 1), np.int64)
        async_events(x, np.ascontiguousarray(self.arrival_order(B, T)), self._w, self._woff, self._sizes,
                     self._thr, self._beta, self._noff, np.int64(cfg.membrane_min), np.int64(cfg.membrane_max),
                     np.int64(cfg.beta_frac_bits), cfg.reset == "subtract", record_state, spk, st, ev)
        cut = [int(o) for o in self._noff] + [M]
        spikes_l = [np.ascontiguousarray(spk[:, :, cut[l]:cut[l + 1]]) for l in range(L)]
        state = [np.ascontiguousarray(st[:, :, cut[l]:cut[l + 1]]) for l in range(L)] if record_state else None
        c = {name: np.zeros(B, np.int64) for name in cfg.counter_names}
        c["in_events"] = ev[:, 0].copy()
        for l in range(L):
            e, G = ev[:, l], cfg.groups(l)
            c[f"spikes_l{l}"] = ev[:, l + 1].copy()
            c["cycles"] += e * G + T * (1 + cfg.update_latency + G)
            c["synops"] += e * cfg.fan_out(l)
            c["weight_reads"] += e * G
            c["state_reads"] += e * G + T * G
            c["state_writes"] += e * G + T * G
            c["neuron_updates"] += T * cfg.fan_out(l)
        c["out_events"] = ev[:, L].copy()
        c["cycles"] += ev[:, L]
        return ChipResult(spikes=spikes_l, state=state, counters=c)
