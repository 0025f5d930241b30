"""Fast, batched, bit-exact and cycle-exact model of the :mod:`hw.core` accelerator.

The arithmetic and the schedule are specified in ``docs/chip.md``; in short, per time step ``t`` and
layer ``l`` (``x`` = this layer's input spikes, ``u`` = stored membrane state, all integers):

* integrate  ``acc = u + x @ W``                      (exact: the stored word is ``acc_bits`` wide)
* saturate   ``v = clip(acc, m_min, m_max)``           (``v`` is the membrane potential at step t)
* fire       ``s = v > thr + offset``                  (strict, like snnTorch's Heaviside)
* leak       ``lv = (v * beta_int + 2**(f-1)) >> f``    (round half up; arithmetic shift)
* reset      subtract: ``u = clip(lv - s*(thr+offset))``; zero: ``u = 0 if s else lv``

Cycles of one step, with ``E_l`` events into layer ``l``, ``G_l`` groups and ``pc_{l,g}`` spikes of group
``g``: ``sum_l (E_l*G_l + 1 + P + sum_g max(1, pc_{l,g})) + E_L + 1``, ``P = cfg.update_latency``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from hw.config import ChipConfig


@dataclass
class ChipResult:
    """What a chip backend returns for a batch of ``B`` samples of ``T`` steps.

    ``spikes[l]``: bool ``(B, T, N_{l+1})`` spikes of layer ``l`` (``spikes[-1]`` is the output).
    ``state[l]``: int64 ``(B, T, N_{l+1})`` stored membrane state after step ``t`` (after leak and reset),
    or ``None`` when the backend was asked not to record it.
    ``counters``: name -> int64 ``(B,)`` per-sample counters, the names of
    :attr:`hw.config.ChipConfig.counter_names`. ``cycles`` is ``counters["cycles"]``.
    """

    spikes: list[np.ndarray]
    state: list[np.ndarray] | None
    counters: dict[str, np.ndarray]

    @property
    def output(self) -> np.ndarray:
        return self.spikes[-1]

    @property
    def cycles(self) -> np.ndarray:
        return self.counters["cycles"]

    def rates(self) -> np.ndarray:
        """Output firing rate per sample and neuron, spikes per step, shape ``(B, N_L)``."""
        return self.spikes[-1].mean(axis=1)


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
    """Vectorised model of the chip; one instance holds one programmed chip (weights, offsets)."""

    def __init__(self, cfg: ChipConfig, weights, threshold_offsets=None,
                 beta_int: Sequence[np.ndarray] | None = None,
                 distortion: Callable[[np.ndarray, int], np.ndarray] | None = None):
        """``beta_int`` (per-neuron leak multipliers, one vector per layer) and ``distortion`` (maps the
        saturated membrane ``v`` of layer ``l`` to a distorted one) model faults the RTL does not have;
        see :mod:`sim.faults`. Left ``None`` the model is the chip, bit for bit."""
        self.cfg = cfg
        self.weights = cfg.check_weights(weights)
        self.offsets = cfg.check_offsets(threshold_offsets)
        self.beta_int = [np.int64(b) for b in cfg.beta_int] if beta_int is None else \
            [np.asarray(b, np.int64) for b in beta_int]
        self.distortion = distortion
        # float64 matmul is exact for these integers (|acc| < 2**acc_bits <= 2**48).
        self._wf = [w.astype(np.float64) for w in self.weights]

    def run(self, spikes: np.ndarray, record_state: bool = True) -> ChipResult:
        cfg = self.cfg
        x_all = cfg.check_spikes(spikes)
        B, T, _ = x_all.shape
        L = cfg.num_layers
        f = cfg.beta_frac_bits
        lo, hi = cfg.membrane_min, cfg.membrane_max
        thr = [cfg.threshold[l] + self.offsets[l] for l in range(L)]
        u = [np.zeros((B, cfg.fan_out(l)), np.int64) for l in range(L)]
        spk = [np.zeros((B, T, cfg.fan_out(l)), bool) for l in range(L)]
        st = [np.zeros((B, T, cfg.fan_out(l)), np.int64) for l in range(L)] if record_state else None
        c = {name: np.zeros(B, np.int64) for name in cfg.counter_names}
        for t in range(T):
            x = x_all[:, t, :]
            for l in range(L):
                e = x.sum(1)
                G = cfg.groups(l)
                acc = u[l] + (x.astype(np.float64) @ self._wf[l]).astype(np.int64)
                v = np.clip(acc, lo, hi)
                if self.distortion is not None:
                    v = np.clip(self.distortion(v, l), lo, hi).astype(np.int64)
                s = v > thr[l]
                lv = leak(v, self.beta_int[l], f)
                if cfg.reset == "subtract":
                    u[l] = np.clip(lv - s * thr[l], lo, hi)
                else:
                    u[l] = np.where(s, 0, lv)
                spk[l][:, t] = s
                if record_state:
                    st[l][:, t] = u[l]
                upd = group_spike_cycles(s, cfg.lanes)
                c["cycles"] += e * G + 1 + cfg.update_latency + upd
                c["synops"] += e * cfg.fan_out(l)
                c["weight_reads"] += e * G
                c["state_reads"] += e * G + G
                c["state_writes"] += e * G + G
                c["neuron_updates"] += cfg.fan_out(l)
                c[f"spikes_l{l}"] += s.sum(1)
                if l == 0:
                    c["in_events"] += e
                x = s
            e_out = x.sum(1)
            c["out_events"] += e_out
            c["cycles"] += e_out + 1
        return ChipResult(spikes=spk, state=st, counters=c)
