"""Compiled inner loop of the fast model (numba, which NeuroBench already brings): the LIF recurrence of
one layer over all steps in exact int64 arithmetic, one neuron at a time — the step loop that numpy can
only run as several array calls per step. Imported lazily; :func:`lif_recurrence` is ``None`` where numba
is missing, and :class:`sim.model.FastModel` then uses its numpy recurrence (the same results)."""
from __future__ import annotations

import numpy as np

try:
    from numba import njit
except ImportError:              # pragma: no cover - numba ships with neurobench
    njit = None


def _lif(h, beta_int, thr, lo, hi, frac_bits, subtract, record, spikes, state):
    """``h`` (T, M) synaptic sums (integers, any dtype); ``beta_int``/``thr`` (M,) int64 per neuron
    (threshold + offset); writes bool ``spikes`` (T, M) and, if ``record``, int64 ``state`` (T, M).
    The arithmetic of docs/chip.md: saturate, fire ``v > thr``, leak round half up, reset."""
    T, M = h.shape
    half = np.int64(1) << (frac_bits - 1)
    u = np.zeros(M, np.int64)
    for t in range(T):                      # step-major: every array is walked contiguously
        for j in range(M):
            v = u[j] + np.int64(h[t, j])
            v = min(max(v, lo), hi)
            th = thr[j]
            fired = v > th
            lv = (v * beta_int[j] + half) >> frac_bits
            if subtract:
                w = lv - th * fired
                u[j] = max(w, lo)
            else:
                u[j] = lv * (1 - fired)
            spikes[t, j] = fired
        if record:
            state[t, :] = u


lif_recurrence = njit(cache=True, nogil=True)(_lif) if njit is not None else None
