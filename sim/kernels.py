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


def _async(x, order, wflat, woff, sizes, thr, beta_int, noff, lo, hi, frac_bits, subtract, record,
           spikes, state, events):
    """The asynchronous (event-order) chip of :mod:`sim.async_model`, one sample after another.

    ``x`` (B, T, N0) bool input spikes; ``order`` (B, T, N0) int64: the input addresses of step ``t`` in
    their arrival order; ``wflat`` every layer's weights, layer ``l`` row-major ``(N_l, N_{l+1})`` from
    ``woff[l]``; ``sizes`` the layer sizes; ``thr``/``beta_int`` (sum N_1..N_L,) int64 per neuron, layer
    ``l`` from ``noff[l]``. Writes int32 spike counts ``spikes`` (B, T, sum N), if ``record`` the state
    after the leak tick ``state`` (B, T, sum N), and per sample the events into each layer ``events``
    (B, L+1; the last column: output events). Each input event's cascade runs depth-first to completion
    before the next input event: the neurons of a layer take the event in ascending index; a neuron whose
    saturated membrane exceeds its threshold fires, resets at once and its spike goes through the next
    layer (depth-first) before the next neuron of this layer takes the event. The leak is one tick at the
    end of the step."""
    B, T, N0 = x.shape
    L = sizes.shape[0] - 1
    M = thr.shape[0]
    half = np.int64(1) << (frac_bits - 1)
    u = np.zeros(M, np.int64)
    src = np.zeros(L, np.int64)
    nxt = np.zeros(L, np.int64)
    for b in range(B):
        u[:] = 0
        for t in range(T):
            for k in range(N0):
                i = order[b, t, k]
                if not x[b, t, i]:
                    continue
                events[b, 0] += 1
                depth = 1
                src[0] = i
                nxt[0] = 0
                while depth > 0:
                    l = depth - 1
                    j = nxt[l]
                    n_out = sizes[l + 1]
                    if j == n_out:
                        depth -= 1
                        continue
                    nxt[l] = j + 1
                    n = noff[l] + j
                    v = u[n] + wflat[woff[l] + src[l] * n_out + j]
                    v = min(max(v, lo), hi)
                    if v > thr[n]:
                        v = max(v - thr[n], lo) if subtract else np.int64(0)
                        spikes[b, t, n] += 1
                        events[b, l + 1] += 1
                        if l + 1 < L:
                            src[l + 1] = j
                            nxt[l + 1] = 0
                            depth += 1
                    u[n] = v
            for n in range(M):                 # the leak tick, once per step
                u[n] = (u[n] * beta_int[n] + half) >> frac_bits
            if record:
                state[b, t, :] = u


#: numba-compiled where numba is installed, else the same function in plain Python (slow, same results)
async_events = njit(cache=True, nogil=True)(_async) if njit is not None else _async
