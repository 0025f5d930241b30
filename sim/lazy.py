"""The fast model of an ``update = "touched"`` chip (``docs/chip.md``, "Update by touch"): called by
:meth:`sim.model.FastModel.run` when ``cfg.touched``; a code path of its own beside the default schedule's.

Per layer: the synaptic sums of every step come from the model's own product (:meth:`FastModel._product`,
:meth:`FastModel._image_sums`), the touched words from :func:`sim.event_bound.touched_words`; then
:func:`lazy_layer` walks, per sample, step and state word, the schedule: a word is visited in step ``t`` iff it
is touched in ``t`` or *hot* (after its last visit a lane is above its firing level); a visited word first
gets the leak of its ``k = t - 1 - last`` idle steps as one multiply by ``B_k``
(:func:`sim.event_bound.elapsed_leak_table`), ``L_k(u) = (u·B_k + 2^(f-1)) >> f``, plus the step's sum, then
saturates, fires, leaks once and resets as every step on an ``"all"`` chip. A word not visited keeps its
stored ``u`` (what the read port returns) and fires nothing.

Cycles per step and layer: ``D_l + Σ_e (V_e·G_l + O_l) + 1 + P + Σ_visited max(1, ceil(pc_w / A))`` with ``P =
cfg.update_latency`` (the touched chip's pipeline) and ``A = cfg.appends_per_cycle`` (2: spikes appended two per
cycle), then ``E_out + 1``; ``state_reads``/``state_writes`` count the
events' words and the visited words, ``neuron_updates`` the neurons of the visited words. With overlap (every layer
but the last, ``docs/chip.md``, "Overlap") each overlapped layer's step is shorter by the cycles the next layer's
events hide behind its UPDATE (:func:`_lazy`'s fourth statistic). The membrane distortion is refused by
:class:`sim.model.FastModel`.
"""
from __future__ import annotations

import numpy as np

from hw.config import ChipConfig

try:
    from numba import njit
except ImportError:              # pragma: no cover - numba ships with neurobench
    njit = None


def _lazy(h, touched, table, level, co, lanes, lo, hi, frac_bits, subtract, per_cycle, record, spikes, state, stats,
          costs):
    """One layer, every sample. ``h`` (B, T, N) synaptic sums (integer values, any dtype); ``touched`` (B, T,
    words) bool; ``table`` (K + 1, N) int64 ``B_k`` per neuron (``K >= T``); ``level`` (N,) int64 threshold +
    offset; ``co`` output channels (a word ``w = pos·G + g`` holds neurons ``pos·co + g·lanes ..``);
    ``per_cycle`` spikes appended per UPDATE cycle; ``costs`` (words,) int64: the EVENT cycles one spike of
    each word costs in the next layer when this layer's UPDATE overlaps its EVENT phase (empty: no overlap).
    Writes bool ``spikes`` (B, T, N), if ``record`` the stored state ``state`` (B, T, N), and per sample
    ``stats`` (B, 4): visited words, ``Σ_visited max(1, ceil(pc / per_cycle))``, neurons of the visited words,
    and the cycles the overlap hides (``docs/chip.md``, "Overlap": per step ``C - max(0, 1 + m + C - F)``,
    ``C`` the step's spikes' summed costs, ``F`` its UPDATE cycles after the fill, ``m`` the largest
    ``fetch_w - C_w`` over the words with a spike, ``fetch_w`` the UPDATE cycles of the visited words before
    ``w`` and ``C_w`` the costs of the spikes before it; 0 without spikes)."""
    overlapped = costs.shape[0] > 0
    B, T, N = h.shape
    W = touched.shape[2]
    G = (co + lanes - 1) // lanes
    half = np.int64(1) << (frac_bits - 1)
    u = np.zeros(N, np.int64)
    last = np.zeros(W, np.int64)
    hot = np.zeros(W, np.bool_)
    for b in range(B):
        u[:] = 0
        last[:] = -1
        hot[:] = False
        for t in range(T):
            fetch = np.int64(0)                 # UPDATE cycles of the visited words so far (after the fill)
            spent = np.int64(0)                 # the next layer's EVENT cycles of the spikes so far
            top = np.int64(-1) << 62            # max over the words with a spike of fetch - spent there
            for w in range(W):
                if not (touched[b, t, w] or hot[w]):
                    continue
                pos = w // G
                g = w - pos * G
                j0 = pos * co + g * lanes
                j1 = pos * co + min(co, (g + 1) * lanes)
                k = t - 1 - last[w]
                fired = 0
                above = False
                for j in range(j0, j1):
                    word = ((u[j] * table[k, j] + half) >> frac_bits) + np.int64(h[b, t, j])
                    v = min(max(word, lo), hi)
                    s = v > level[j]
                    lv = (v * table[1, j] + half) >> frac_bits
                    if s:
                        new = min(max(lv - level[j], lo), hi) if subtract else np.int64(0)
                        fired += 1
                    else:
                        new = lv
                    u[j] = new
                    spikes[b, t, j] = s
                    above = above or new > level[j]
                hot[w] = above
                last[w] = t
                cost = max(1, (fired + per_cycle - 1) // per_cycle)
                if overlapped and fired > 0:
                    top = max(top, fetch - spent)
                    spent += fired * costs[w]
                fetch += cost
                stats[b, 0] += 1
                stats[b, 1] += cost
                stats[b, 2] += j1 - j0
            if overlapped and spent > 0:
                stats[b, 3] += spent - max(0, 1 + top + spent - fetch)
            if record:
                state[b, t, :] = u


#: numba-compiled where numba is installed, else the same function in plain Python (slow, same results)
lazy_layer = njit(cache=True, nogil=True)(_lazy) if njit is not None else _lazy


def leak_tables(cfg: ChipConfig, beta_int, steps: int, n: int) -> np.ndarray:
    """``B_k`` for ``k = 0 .. steps`` per neuron of a layer of ``n`` neurons, ``(steps + 1, n)`` int64, for its
    leak multipliers ``beta_int`` (a scalar or one per neuron)."""
    from sim.event_bound import elapsed_leak_table
    t = elapsed_leak_table(beta_int, cfg.beta_frac_bits, steps)
    return np.ascontiguousarray(np.broadcast_to(t.reshape(steps + 1, -1), (steps + 1, n)), np.int64)


def run_touched(model, x: np.ndarray, record_state: bool = True):
    """``model`` (a :class:`sim.model.FastModel` of a touched chip) on checked bool spikes ``x`` (B, T, N0):
    a :class:`sim.model.ChipResult` with every counter (see the module doc)."""
    from sim.event_bound import synaptic_sums, touched_words
    from sim.model import ChipResult, word_event_costs
    cfg = model.cfg
    B, T, _ = x.shape
    L = cfg.num_layers
    c = {name: np.zeros(B, np.int64) for name in cfg.counter_names}
    c["in_events"] = np.count_nonzero(x.reshape(B, -1), axis=1).astype(np.int64)
    spk, st = [], [] if record_state else None
    xin = x
    for l in range(L):
        N, G, co = cfg.fan_out(l), cfg.groups(l), cfg.out_channels(l)
        h = synaptic_sums(model, l, xin)                               # (B, T, N) int64
        touched = np.ascontiguousarray(touched_words(cfg, l, xin))
        table = leak_tables(cfg, model.beta_int[l], T, N)
        level = (cfg.threshold[l] + model.offsets[l].reshape(-1)).astype(np.int64)
        s = np.zeros((B, T, N), bool)
        u = np.zeros((B, T, N), np.int64) if record_state else np.zeros((1, 1, 1), np.int64)
        stats = np.zeros((B, 4), np.int64)
        costs = word_event_costs(cfg, l) if cfg.overlapped(l) else np.zeros(0, np.int64)
        lazy_layer(h, touched, table, level, co, cfg.lanes, np.int64(cfg.membrane_min), np.int64(cfg.membrane_max),
                   np.int64(cfg.beta_frac_bits), cfg.reset == "subtract", np.int64(cfg.appends_per_cycle), record_state,
                   s, u, stats, costs)
        e = np.count_nonzero(xin.reshape(B, -1), axis=1).astype(np.int64)
        ev = xin.sum(axis=1, dtype=np.int64) @ cfg.receptive_counts(l) if cfg.layer_kind(l) == "conv" else e
        c[f"spikes_l{l}"] = np.count_nonzero(s.reshape(B, -1), axis=1).astype(np.int64)
        c["cycles"] += (T * cfg.decode_latency(l) + ev * G + e * cfg.event_overhead(l)
                        + (1 + cfg.update_latency) * T + stats[:, 1] - stats[:, 3])
        c["synops"] += ev * co
        c["weight_reads"] += ev * G
        c["state_reads"] += ev * G + stats[:, 0]
        c["state_writes"] += ev * G + stats[:, 0]
        c["neuron_updates"] += stats[:, 2]
        spk.append(s)
        if record_state:
            st.append(u)
        xin = s
    c["out_events"] = c[f"spikes_l{L - 1}"].copy()
    c["cycles"] += c["out_events"] + T
    return ChipResult(spikes=spk, state=st, counters=c)


def flushed_membranes(model, x: np.ndarray, result) -> list[np.ndarray]:
    """What a *flush* after the last step of ``x`` leaves in each layer's membranes (``(B, N)`` per layer):
    every neuron's stored ``u`` with the leak of the steps since its word's last visit applied,
    ``L_{T - 1 - last}(u)`` (``docs/chip.md``, "Update by touch"). ``result``: ``model.run(x)`` with states. The
    visits are read back from the run: a word is visited in step ``t`` iff it is touched or was hot after step
    ``t - 1``."""
    from sim.event_bound import touched_words
    cfg = model.cfg
    B, T, _ = x.shape
    f, half = cfg.beta_frac_bits, 1 << (cfg.beta_frac_bits - 1)
    out, xin = [], x
    for l in range(cfg.num_layers):
        N, G, co, lanes = cfg.fan_out(l), cfg.groups(l), cfg.out_channels(l), cfg.lanes
        word_of = (np.arange(cfg.positions(l))[:, None] * G + np.arange(co)[None, :] // lanes).reshape(-1)
        level = cfg.threshold[l] + model.offsets[l].reshape(-1).astype(np.int64)
        u = result.state[l]                                                  # (B, T, N)
        above = np.zeros((B, T, cfg.state_words(l)), bool)
        np.logical_or.at(above, (slice(None), slice(None), word_of), u > level)
        visited = touched_words(cfg, l, xin).copy()
        visited[:, 1:] |= above[:, :-1]
        last = np.where(visited.any(axis=1), T - 1 - np.argmax(visited[:, ::-1], axis=1), -1)   # (B, words)
        k = (T - 1 - last)[:, word_of]                                       # (B, N) idle steps since
        table = leak_tables(cfg, model.beta_int[l], T, N)
        out.append((u[:, -1] * table[k, np.arange(N)] + half) >> f)
        xin = result.spikes[l]
    return out
