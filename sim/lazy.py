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
events hide behind its UPDATE (:func:`_lazy`'s fourth statistic). On a ``wavefront`` chip (``docs/chip.md``,
"Wavefront"; no overlap) the arithmetic and every other counter are these; ``cycles`` come from
:func:`wavefront_cycles` over the per-step phases (:func:`_lazy` writes each step's UPDATE cycles). The membrane
distortion is refused by :class:`sim.model.FastModel`.
"""
from __future__ import annotations

import numpy as np

from hw.config import ChipConfig

try:
    from numba import njit
except ImportError:              # pragma: no cover - numba ships with neurobench
    njit = None


def _lazy(h, touched, table, level, co, lanes, lo, hi, frac_bits, subtract, per_cycle, record, spikes, state, stats,
          costs, steps):
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
    ``w`` and ``C_w`` the costs of the spikes before it; 0 without spikes). ``steps`` (B, T) int64, unless
    empty: each step's ``Σ_visited max(1, ceil(pc / per_cycle))`` (the UPDATE's cycles after the fill; the
    wavefront schedule needs them per step)."""
    overlapped = costs.shape[0] > 0
    per_step = steps.shape[0] > 0
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
            if per_step:
                steps[b, t] = fetch
            if record:
                state[b, t, :] = u


#: numba-compiled where numba is installed, else the same function in plain Python (slow, same results)
lazy_layer = njit(cache=True, nogil=True)(_lazy) if njit is not None else _lazy


def _wavefront(E, U, O, out):
    """:func:`wavefront_cycles`' schedule (``E``, ``U`` (B, L, T), ``O`` (B, T) int64; ``out`` (B,) int64), one
    phase at a time: the event engine's position ``l`` and decision cycle ``c``, per layer the next step it starts
    ``s[l]`` and the last cycle it is busy, per (layer, step) the cycle from which the next layer sees that step's
    input (its UPDATE's last cycle + 1); the update engine's last cycle ``up``. A phase's UPDATE is placed when
    its EVENT phase is (the update engine takes them in that order), so every time a decision reads is known."""
    B, L, T = E.shape
    s = np.zeros(L, np.int64)
    busy = np.zeros(L, np.int64)
    ready = np.zeros((L, T), np.int64)
    for b in range(B):
        s[:] = 0
        busy[:] = -1
        c = np.int64(0)                     # the decision cycle
        l = 0                               # the event engine's layer
        up = np.int64(-1)                   # the last cycle of the last UPDATE placed
        while s[L - 1] < T:
            if l == 0:
                has = s[0] < T              # the host streams: the next token is there while steps remain
            else:
                has = s[l] < s[l - 1] and ready[l - 1, s[l]] <= c
            if has:
                if c <= busy[l]:            # wait at l: decisions c .. busy, the next one not busy
                    c = busy[l] + 1
                    continue
                t = s[l]
                eoe = c + E[b, l, t]        # EVENT phase c+1 .. eoe (its end-of-events cycle)
                f = max(eoe, up) + U[b, l, t]     # UPDATE max(eoe, up)+1 .. f
                up = f
                if l == L - 1:
                    busy[l] = f + O[b, t]   # the sender f+1 .. f+O, its end token in f+O
                else:
                    busy[l] = f
                    ready[l, t] = f + 1
                s[l] = t + 1
                c = eoe + 1
                l = (l + 1) % L
            elif l == 0:                    # layer 0 without input (every step taken): parks unless a layer has
                nxt = np.int64(1) << 62     # input; the earliest cycle one has
                for m in range(1, L):
                    if s[m] < s[m - 1]:
                        nxt = min(nxt, ready[m - 1, s[m]])
                if nxt <= c:
                    c += 1
                    l = 1
                else:
                    c = nxt                 # parked until then (those cycles are no decision cycles)
            else:
                c += 1
                l = (l + 1) % L
        out[b] = busy[L - 1] + 1


#: numba-compiled where numba is installed, else the same function in plain Python
wavefront_kernel = njit(cache=True, nogil=True)(_wavefront) if njit is not None else _wavefront


def wavefront_cycles(event_cycles, update_cycles, output_cycles) -> np.ndarray:
    """Per sample, the ``cycles`` of the wavefront schedule (``docs/chip.md``, "Wavefront") with a host that always
    has the next input token ready and always takes the output: from cycle 0 (the first decision cycle, at layer
    0) to the last end token, inclusive. ``event_cycles`` ``(B, L, T)``: each (layer, step)'s EVENT phase with its
    end-of-events cycle, ``D_l + Σ_e (V_e·G_l + O_l) + 1``; ``update_cycles`` ``(B, L, T)``: its UPDATE, ``P_T +
    Σ_visited max(1, ceil(pc / 2))``; ``output_cycles`` ``(B, T)``: ``E_out + 1`` (the arrays of
    :class:`sim.event_bound.LazyRun`).

    The event engine visits the layers ``0, 1, …, L − 1, 0, …``, one decision cycle ``c`` per visit: a layer with
    input and not busy runs its EVENT phase in ``c + 1 … c + X`` and the next decision, at ``l + 1``, is ``c + X +
    1``; with input and busy it waits (``c + 1`` at ``l``); without input the next decision is ``c + 1`` at ``l +
    1``, but at layer 0 with no layer having input it parks. Layer 0 has input while steps remain; layer ``l ≥ 1``
    from the cycle after layer ``l − 1``'s UPDATE of its next step ends. The update engine takes the UPDATEs in the
    order their EVENT phases end, each from ``max(end of events, last cycle of the UPDATE before) + 1``. A layer is
    busy from its end-of-events cycle through its UPDATE's last cycle ``f``; the last layer through its output
    sender's end token (the sender sends from ``f + 1``, ``E_out + 1`` cycles)."""
    E = np.ascontiguousarray(event_cycles, np.int64)
    U = np.ascontiguousarray(update_cycles, np.int64)
    O = np.ascontiguousarray(output_cycles, np.int64)
    B, L, T = E.shape
    if U.shape != (B, L, T) or O.shape != (B, T):
        raise ValueError(f"wavefront_cycles: shapes {E.shape}, {U.shape}, {O.shape}; expected (B, L, T) twice "
                         "and (B, T)")
    out = np.zeros(B, np.int64)
    if T and L:
        wavefront_kernel(E, U, O, out)
    return out


def leak_tables(cfg: ChipConfig, beta_int, steps: int, n: int) -> np.ndarray:
    """``B_k`` for ``k = 0 .. steps`` per neuron of a layer of ``n`` neurons, ``(steps + 1, n)`` int64, for its
    leak multipliers ``beta_int`` (a scalar or one per neuron)."""
    from sim.event_bound import elapsed_leak_table
    t = elapsed_leak_table(beta_int, cfg.beta_frac_bits, steps)
    return np.ascontiguousarray(np.broadcast_to(t.reshape(steps + 1, -1), (steps + 1, n)), np.int64)


def run_touched(model, x: np.ndarray, record_state: bool = True):
    """``model`` (a :class:`sim.model.FastModel` of a touched chip) on checked bool spikes ``x`` (B, T, N0):
    a :class:`sim.model.ChipResult` with every counter (see the module doc)."""
    from sim.event_bound import event_phase_cycles, synaptic_sums, touched_words
    from sim.model import ChipResult, word_event_costs
    cfg = model.cfg
    B, T, _ = x.shape
    L = cfg.num_layers
    c = {name: np.zeros(B, np.int64) for name in cfg.counter_names}
    c["in_events"] = np.count_nonzero(x.reshape(B, -1), axis=1).astype(np.int64)
    spk, st = [], [] if record_state else None
    wave = cfg.wavefront                      # the cycles come from the wavefront schedule of the per-step phases
    if wave:
        ev_c, up_c = np.zeros((B, L, T), np.int64), np.zeros((B, L, T), np.int64)
    per_step = np.zeros((B, T) if wave else (0, 0), np.int64)
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
                   s, u, stats, costs, per_step)
        e = np.count_nonzero(xin.reshape(B, -1), axis=1).astype(np.int64)
        ev = xin.sum(axis=1, dtype=np.int64) @ cfg.receptive_counts(l) if cfg.layer_kind(l) == "conv" else e
        c[f"spikes_l{l}"] = np.count_nonzero(s.reshape(B, -1), axis=1).astype(np.int64)
        if wave:                                                       # per step: as below, step by step
            ev_c[:, l] = event_phase_cycles(cfg, l, xin)
            up_c[:, l] = cfg.update_latency + per_step
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
    if wave:
        c["cycles"] = wavefront_cycles(ev_c, up_c, np.count_nonzero(xin, axis=2) + 1)
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
