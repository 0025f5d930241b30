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


def _row_sums(a, out):
    """``out[b]`` = the sum of row ``b`` of ``a`` (B, n) (unsigned bytes: a bool array's uint8 view counts its
    spikes; a plain sum, so that it vectorises)."""
    B, n = a.shape
    for b in range(B):
        c = np.int64(0)
        for i in range(n):
            c += a[b, i]
        out[b] = c


def _row_nonzero(a, out):
    """``out[b]`` = the nonzero entries of row ``b`` of ``a`` (B, n)."""
    B, n = a.shape
    for b in range(B):
        c = np.int64(0)
        for i in range(n):
            c += a[b, i] != 0
        out[b] = c


def _overlap(pc, gw, out):
    """Per sample the cycles the overlap hides (:func:`sim.model.overlap_hidden`, the same closed form: per step
    ``c_{W-1} - max(0, max_{w < W-1} c_w) + sum_w gw_w*pc_w`` with ``c_w`` the inclusive sums of
    ``d = max(1, pc) - gw*pc`` and 1 taken off the last word), for the spikes per state word ``pc`` (B, T, W)
    in address order and ``gw`` (W,) the EVENT cycles one spike of each word costs in the next layer
    (:func:`sim.model.word_event_costs`: ``G'`` for every word of an fc next layer, a conv layer's ``V*G' + O``
    by position), into ``out[0]``; and, from the same pass, the (step, word) pairs with a spike into ``out[1]``
    (the UPDATE phase's ``sum_w max(1, pc_w) = spikes + words - out[1]``) and the spikes into ``out[2]``
    (``out``: (3, B) int64). The scan is branch-free (``max``, not ``if``: whether a word has a spike is data,
    and a mispredicted branch per word cost more than the scan); the sums run in a second, vectorised loop
    over the step's words while they are in cache."""
    B, T, W = pc.shape
    one = np.int64(1)
    for b in range(B):
        total = np.int64(0)
        n = np.int64(0)                     # the spikes' summed costs
        busy = np.int64(0)
        spikes = np.int64(0)
        for t in range(T):
            c = np.int64(0)                 # inclusive sum of d up to the current word
            top = np.int64(0)               # max(0, c_w) over the words before the last
            for w in range(W - 1):
                p = np.int64(pc[b, t, w])
                c += max(p, one) - gw[w] * p
                top = max(top, c)
            p = np.int64(pc[b, t, W - 1])
            last = c + max(p, one) - gw[W - 1] * p - 1
            total += last - max(top, last)
            for w in range(W):
                p = np.int64(pc[b, t, w])
                n += gw[w] * p
                busy += min(p, one)
                spikes += p
        out[0, b] = total + n
        out[1, b] = busy
        out[2, b] = spikes


def _gather(x, w, out):
    """``out = x @ w`` by events: for each row of ``x`` (rows, n_in) (0/1 spikes as uint8, or int8 event
    counts), the sum of the rows of ``w`` (n_in, n_out) of its nonzero inputs, each times its count; ``out``
    (rows, n_out) integers wide enough for the sums. Work: one pass over ``x`` plus ``n_out`` adds per
    event (two weight rows per pass over the accumulator), against ``n_in * n_out`` for a dense product."""
    rows, n_in = x.shape
    n_out = w.shape[1]
    idx = np.empty(n_in, np.int64)
    acc = np.zeros(n_out, out.dtype)
    for r in range(rows):
        k = 0
        unit = True
        for i in range(n_in):                   # branch-free compaction of the active inputs
            v = x[r, i]
            idx[k] = i
            k += v != 0
            unit &= v == 0 or v == 1
        acc[:] = 0
        m = 0
        if unit:
            while m + 1 < k:
                a = w[idx[m]]
                b = w[idx[m + 1]]
                for j in range(n_out):
                    acc[j] += a[j] + b[j]
                m += 2
            if m < k:
                a = w[idx[m]]
                for j in range(n_out):
                    acc[j] += a[j]
        else:
            for m in range(k):
                a = w[idx[m]]
                c = x[r, idx[m]]
                for j in range(n_out):
                    acc[j] += c * a[j]
        for j in range(n_out):
            out[r, j] = acc[j]


if njit is not None:
    row_sums = njit(cache=True, nogil=True)(_row_sums)
    row_nonzero = njit(cache=True, nogil=True)(_row_nonzero)
    overlap_hidden = njit(cache=True, nogil=True)(_overlap)
    gather_product = njit(cache=True, nogil=True)(_gather)
else:                           # pragma: no cover - numba ships with neurobench
    row_sums = row_nonzero = overlap_hidden = gather_product = None
