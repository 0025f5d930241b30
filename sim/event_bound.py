"""Cycles against the event bound, and what an update-by-touch schedule would take (``docs/chip.md``,
"Event bound" and "Update by touch").

:func:`event_bound` is the least a schedule whose work is proportional to events can take for a sample:
``synops / lanes`` (every synaptic add, ``lanes`` per cycle) + the *touched* state words (a word an event
accumulated into in the step: each must be updated once) + the output events + the documented fixed
overheads (per step and layer: the end-of-events cycle, the update pipeline's fill ``P`` and the conv
decoder's fill ``D_l``; per step: the output end token; per conv event: ``event_overhead``).

:func:`touched_schedule` counts, from a fast-model run, the state words the update-by-touch schedule visits
(the *live* words: touched in the step, or not settled by their last visit — their update changed the stored
word or fired) and the cycles it would take: today's cycles with the UPDATE phases walking only the live
words (same arithmetic, so exact). :func:`lazy_run` is a model of the lazy-leak schedule's arithmetic
(``docs/chip.md``, "Update by touch": touched or hot words only, the elapsed leak ``L_k`` at the next
visit) and its cycles: the executable specification of the built ``update = "touched"`` chip (its RTL in
:mod:`hw.core.touched`, its fast model :mod:`sim.lazy`, which ``tests/sim/test_lazy.py`` checks against it). The
live-word schedule is a projection only (not built). Chips with ``overlap`` are projected without the overlap's
saving (the emission times change with the skipped words); the functions refuse none, but
:func:`touched_schedule` reports ``overlap_ignored``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import TOUCHED_APPENDS_PER_CYCLE, TOUCHED_UPDATE_LATENCY, UPDATE_LATENCY, ChipConfig, ConfigError


def touched_words(cfg: ChipConfig, layer: int, x: np.ndarray) -> np.ndarray:
    """Bool ``(B, T, state_words(layer))``: the state words an event accumulates into, per step, for the
    layer's input spikes ``x`` ``(B, T, N_raw)`` (HWC flat, before pooling). An fc event visits every word of
    its layer; a conv event the words of the output positions whose receptive field holds its pooled address
    (all ``G`` groups of each)."""
    B, T, _ = x.shape
    G = cfg.groups(layer)
    if cfg.layer_kind(layer) == "fc":
        any_event = x.reshape(B, T, -1).any(axis=2)
        return np.repeat(any_event[:, :, None], cfg.state_words(layer), axis=2)
    C, H, W = cfg.raw_in_shape(layer)
    ph, pw = cfg.pool_window(layer)
    a = x.reshape(B * T, H, W, C).any(axis=3)
    a = a.reshape(B * T, H // ph, ph, W // pw, pw).any(axis=(2, 4))       # pooled address has an event
    (kh, kw), s, (pdh, pdw) = cfg.kernel(layer), cfg.stride(layer), cfg.padding(layer)
    _, Ho, Wo = cfg.out_shape(layer)
    Hp, Wp = a.shape[1:]
    padded = np.zeros((B * T, Hp + 2 * pdh, Wp + 2 * pdw), bool)
    padded[:, pdh:pdh + Hp, pdw:pdw + Wp] = a
    reach = np.zeros((B * T, Ho, Wo), bool)
    for ky in range(kh):
        for kx in range(kw):
            reach |= padded[:, ky:ky + s * (Ho - 1) + 1:s, kx:kx + s * (Wo - 1) + 1:s]
    return np.repeat(reach.reshape(B, T, Ho * Wo, 1), G, axis=3).reshape(B, T, Ho * Wo * G)


def _words(cfg: ChipConfig, layer: int, v: np.ndarray) -> np.ndarray:
    """``(B, T, N)`` per neuron (HWC flat) -> ``(B, T, positions, G, lanes)``, the channels padded to whole
    words with zeros."""
    B, T, _ = v.shape
    P, Co, G, lanes = cfg.positions(layer), cfg.out_channels(layer), cfg.groups(layer), cfg.lanes
    out = np.zeros((B, T, P, G * lanes), v.dtype)
    out[..., :Co] = v.reshape(B, T, P, Co)
    return out.reshape(B, T, P, G, lanes)


def synaptic_sums(model, layer: int, x: np.ndarray) -> np.ndarray:
    """``(B, T, N)`` int64: what the layer's events add to each neuron per step (the fast model's product)."""
    cfg = model.cfg
    B, T, _ = x.shape
    inp = np.ascontiguousarray(x.transpose(1, 0, 2))
    if cfg.layer_kind(layer) == "conv" or cfg.pool_area(layer) > 1:
        h = model._image_sums(layer, inp)
    else:
        h = model._product(layer, inp.reshape(T * B, -1), int(np.count_nonzero(inp))).reshape(T, B, -1)
    return np.rint(np.asarray(h, np.float64)).astype(np.int64).transpose(1, 0, 2)


@dataclass
class Projection:
    """Per sample (``(B,)`` arrays): today's cycles, the event bound, the live and touched words visited, the
    projected cycles of update by touch; ``overlap_ignored``: the chip overlaps (the projection does not)."""
    cycles: np.ndarray
    bound: np.ndarray
    touched: np.ndarray
    live: np.ndarray
    words: np.ndarray
    touched_cycles: np.ndarray
    lazy: np.ndarray
    lazy_cycles: np.ndarray
    lazy_same_output: np.ndarray
    overlap_ignored: bool
    #: the lazy schedule's phases overlapped (:func:`overlap_ceilings`): next-layer overlap, engines always busy
    lazy_next_overlap: np.ndarray
    lazy_busy: np.ndarray
    #: the lazy schedule's phases in in-order layer pipelining (:func:`pipelined_ceiling`)
    lazy_pipelined: np.ndarray
    #: the lazy schedule's phases in a wavefront (:func:`wavefront_ceiling`): a membrane memory per layer, and two
    lazy_wavefront: np.ndarray
    lazy_wavefront_two: np.ndarray


def event_bound(cfg: ChipConfig, counters: dict, touched: np.ndarray) -> np.ndarray:
    """The event bound per sample (see module doc); ``touched``: touched state words per sample, all layers."""
    T_fixed = sum(1 + cfg.update_latency + cfg.decode_latency(l) for l in range(cfg.num_layers)) + 1
    steps = counters["_steps"]
    per_event = sum(np.asarray(counters[f"_events_l{l}"]) * cfg.event_overhead(l) for l in range(cfg.num_layers))
    return (np.asarray(counters["synops"], float) / cfg.lanes + touched + counters["out_events"]
            + steps * T_fixed + per_event)


def bound_of(cfg: ChipConfig, spikes: np.ndarray, result) -> np.ndarray:
    """The event bound per sample of a run (``result``: a :class:`sim.model.ChipResult` of input ``spikes``)."""
    B, T, _ = spikes.shape
    inputs = [spikes] + list(result.spikes[:-1])
    touched = sum(touched_words(cfg, l, inputs[l]).sum(axis=(1, 2)) for l in range(cfg.num_layers))
    c = dict(result.counters)
    c["_steps"] = T
    for l in range(cfg.num_layers):
        c[f"_events_l{l}"] = np.count_nonzero(inputs[l].reshape(B, -1), axis=1)
    return event_bound(cfg, c, touched)


def _no_bias(cfg: ChipConfig) -> None:
    """The update-by-touch projections model no bias (a bias changes untouched words; not built, docs/chip.md
    "Bias"): refuse a biased chip rather than answer for the chip without its bias."""
    if cfg.has_bias:
        raise ConfigError("bias: the update-by-touch projection (lazy leak, touched words) models no bias "
                          "(docs/chip.md \"Bias\"); use a chip without bias")


def touched_schedule(model, spikes: np.ndarray) -> Projection:
    """Run ``model`` (a :class:`sim.model.FastModel`) on ``spikes`` ``(B, T, N0)`` and project update by touch."""
    cfg = model.cfg
    _no_bias(cfg)
    if cfg.touched:                 # its run's states are the lazy leak's, its cycles (wavefront too) its own
        raise ConfigError("update='touched': touched_schedule projects update by touch from an update='all' "
                          "chip's run; pass the model of the chip with update='all'")
    x = cfg.check_spikes(spikes)
    r = model.run(x, record_state=True)
    B, T, _ = x.shape
    inputs = [x] + [s for s in r.spikes[:-1]]
    touched_n = np.zeros(B, np.int64)
    live_n = np.zeros(B, np.int64)
    words_n = np.zeros(B, np.int64)
    saved = np.zeros(B, np.int64)
    for l in range(cfg.num_layers):
        xin = inputs[l]
        t_words = touched_words(cfg, l, xin)                                # (B, T, words)
        h = synaptic_sums(model, l, xin)
        u = r.state[l]
        before = np.concatenate([np.zeros_like(u[:, :1]), u[:, :-1]], axis=1) + h     # the word UPDATE reads
        changed = _words(cfg, l, (u != before) | r.spikes[l]).any(axis=4).reshape(B, T, -1)
        unsettled_before = np.concatenate([np.zeros_like(changed[:, :1]), changed[:, :-1]], axis=1)
        live = t_words | unsettled_before
        # every word with a spike is live (it was visited: only visited words fire)
        assert not (_words(cfg, l, r.spikes[l]).any(axis=4).reshape(B, T, -1) & ~live).any()
        touched_n += t_words.sum(axis=(1, 2))
        live_n += live.sum(axis=(1, 2))
        words_n += T * cfg.state_words(l)
        saved += (~live).sum(axis=(1, 2))               # each skipped word saved its one UPDATE cycle
    c = dict(r.counters)
    c["_steps"] = T
    ev = [np.count_nonzero(s.reshape(B, -1), axis=1) for s in inputs]
    for l in range(cfg.num_layers):
        c[f"_events_l{l}"] = ev[l]
    overlap_ignored = any(cfg.overlapped(l) for l in range(cfg.num_layers))
    lz = lazy_run(model, x)
    next_overlap, busy = overlap_ceilings(lz)
    hidden = 0
    if overlap_ignored:
        from sim.model import overlap_hidden
        hidden = sum(overlap_hidden(cfg, l, r.spikes[l]) for l in range(cfg.num_layers) if cfg.overlapped(l))
    return Projection(cycles=np.asarray(r.cycles, np.int64), bound=event_bound(cfg, c, touched_n),
                      touched=touched_n, live=live_n, words=words_n,
                      touched_cycles=np.asarray(r.cycles, np.int64) + hidden - saved,
                      lazy=lz.visited, lazy_cycles=lz.cycles,
                      lazy_same_output=np.all(lz.spikes[-1] == r.spikes[-1], axis=(1, 2)),
                      overlap_ignored=overlap_ignored, lazy_next_overlap=next_overlap, lazy_busy=busy,
                      lazy_pipelined=pipelined_ceiling(lz), lazy_wavefront=wavefront_ceiling(lz),
                      lazy_wavefront_two=wavefront_ceiling(lz, memories=2))


def elapsed_leak_table(beta_int, frac_bits: int, k_max: int) -> np.ndarray:
    """``B_k`` for ``k = 0 .. k_max`` (``docs/chip.md``, "Update by touch"): the ``k``-th power of the stored
    leak ``beta_int / 2^f``, rounded once (half up) to ``f`` fraction bits,
    ``B_k = (beta_int^k + 2^(f(k-1)-1)) >> f(k-1)`` (exact integers; ``B_0 = 2^f``, ``B_1 = beta_int``); it
    reaches 0 for ``beta_int < 2^f``. ``beta_int`` a scalar or per neuron (then a trailing neuron axis)."""
    b = np.asarray(beta_int, np.int64)

    def one(v: int) -> list[int]:
        out = [1 << frac_bits]
        for k in range(1, k_max + 1):
            s = frac_bits * (k - 1)
            out.append((v ** k + ((1 << s) >> 1)) >> s)
        return out
    if b.ndim == 0:
        return np.array(one(int(b)), np.int64)
    cols = {int(v): one(int(v)) for v in np.unique(b)}
    return np.array([cols[int(v)] for v in b], np.int64).T


@dataclass
class LazyRun:
    """The lazy-leak schedule on a batch: spikes and stored states per layer ``(B, T, N)``, the words visited
    and the cycles per sample."""
    spikes: list
    state: list
    visited: np.ndarray
    cycles: np.ndarray
    #: ``(B, layers, T)``: each step's EVENT-phase cycles (decoder fill, events' words and overheads, the closing
    #: cycle) and UPDATE-phase cycles (pipeline fill, visited words' cycles) per layer; with ``output`` ``(B, T)``
    #: (output events and the end token) they sum to ``cycles``
    event_cycles: np.ndarray
    update_cycles: np.ndarray
    output_cycles: np.ndarray


def event_phase_cycles(cfg: ChipConfig, layer: int, x: np.ndarray) -> np.ndarray:
    """``(B, T)`` int64: each step's EVENT phase of ``layer`` for its input spikes ``x`` ``(B, T, N)``, with the
    end-of-events cycle: ``D_l + Σ_e (V_e·G_l + O_l) + 1`` (``docs/chip.md``, "Schedule")."""
    e_t = np.count_nonzero(x, axis=2)
    ev_t = x.astype(np.int64) @ cfg.receptive_counts(layer) if cfg.layer_kind(layer) == "conv" else e_t
    return cfg.decode_latency(layer) + ev_t * cfg.groups(layer) + e_t * cfg.event_overhead(layer) + 1


def lazy_run(model, spikes: np.ndarray, visit_all: bool = False) -> LazyRun:
    """Run the lazy-leak update-by-touch schedule (``docs/chip.md``) with ``model``'s weights, offsets and
    leaks. Overlap is not modelled (the cycles are those of the sequential schedule); the UPDATE fill is the touched
    chip's, :data:`hw.config.TOUCHED_UPDATE_LATENCY`, and a visited word with ``pc`` spikes costs
    ``max(1, ceil(pc / 2))`` UPDATE cycles (:data:`hw.config.TOUCHED_APPENDS_PER_CYCLE` spikes appended per cycle).
    ``visit_all``: visit every word in every step (then it is ``update = "all"``, with its fill
    :data:`hw.config.UPDATE_LATENCY` and one spike appended per cycle: the fast model's results and cycles)."""
    cfg = model.cfg
    _no_bias(cfg)
    x = cfg.check_spikes(spikes)
    B, T, _ = x.shape
    f, half = cfg.beta_frac_bits, 1 << (cfg.beta_frac_bits - 1)
    # the touched chip's UPDATE pipeline is deeper (hw.config.TOUCHED_UPDATE_LATENCY), also when projecting
    # it from an "all" chip's model; visiting every word is the "all" chip
    lo, hi = cfg.membrane_min, cfg.membrane_max
    P = UPDATE_LATENCY if visit_all else TOUCHED_UPDATE_LATENCY
    A = 1 if visit_all else TOUCHED_APPENDS_PER_CYCLE             # spikes appended per UPDATE cycle
    out_s, out_u = [], []
    visited_n = np.zeros(B, np.int64)
    event_c = np.zeros((B, cfg.num_layers, T), np.int64)
    update_c = np.zeros((B, cfg.num_layers, T), np.int64)
    xin = x
    for l in range(cfg.num_layers):
        N, lanes, G = cfg.fan_out(l), cfg.lanes, cfg.groups(l)
        Co, pos = cfg.out_channels(l), cfg.positions(l)
        word_of = (np.arange(pos)[:, None] * G + np.arange(Co)[None, :] // lanes).reshape(-1)    # neuron -> word
        level = cfg.threshold[l] + model.offsets[l].reshape(-1).astype(np.int64)
        table = elapsed_leak_table(model.beta_int[l], f, T)
        touched = touched_words(cfg, l, xin)
        h = synaptic_sums(model, l, xin)
        u = np.zeros((B, N), np.int64)
        last = np.full((B, N), -1, np.int64)
        s_all = np.zeros((B, T, N), bool)
        u_all = np.zeros((B, T, N), np.int64)
        for t in range(T):
            hot = np.zeros((B, cfg.state_words(l)), bool)
            np.logical_or.at(hot, (slice(None), word_of), u > level)
            visit_w = touched[:, t] | hot | visit_all
            visit = visit_w[:, word_of]
            k = np.where(visit, t - 1 - last, 0)
            bk = table[k, np.arange(N)[None, :]] if table.ndim == 2 else table[k]
            word = ((u * bk + half) >> f) + h[:, t]
            v = np.clip(word, lo, hi)
            s = (v > level) & visit
            lv = (v * table[1] + half) >> f
            new = np.where(s, 0 if cfg.reset == "zero" else np.clip(lv - level, lo, hi), lv)
            u = np.where(visit, new, u)
            last = np.where(visit, t, last)
            s_all[:, t], u_all[:, t] = s, u
            visited_n += visit_w.sum(axis=1)
            pc = np.zeros(hot.shape, np.int64)                            # spikes per word
            np.add.at(pc, (slice(None), word_of), s)
            # the fill, then max(1, ceil(pc / A)) per visited word
            update_c[:, l, t] = P + np.where(visit_w, np.maximum(1, (pc + A - 1) // A), 0).sum(axis=1)
        event_c[:, l] = event_phase_cycles(cfg, l, xin)
        out_s.append(s_all)
        out_u.append(u_all)
        xin = s_all
    output_c = np.count_nonzero(xin, axis=2) + 1
    cycles = event_c.sum(axis=(1, 2)) + update_c.sum(axis=(1, 2)) + output_c.sum(axis=1)
    return LazyRun(spikes=out_s, state=out_u, visited=visited_n, cycles=cycles, event_cycles=event_c,
                   update_cycles=update_c, output_cycles=output_c)


def overlap_ceilings(run: LazyRun) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the fewest cycles two schedules that hide UPDATE work behind EVENT work could take with the same
    phases as ``run`` (a :class:`LazyRun`): lower bounds, projections only (not built; ``docs/chip.md``, "Standing
    against issue 23's targets").

    * *next-layer overlap*: every layer's UPDATE runs beside the next layer's EVENT phase of the same step (the
      ``overlap`` setting extended to conv layers and to the touched chip), each step
      ``E_0 + sum_l max(U_l, E_(l+1)) + U_last + output``, as if the next layer's events never waited for a spike;
    * *engines busy*: the event engine and the update engine each busy all the time, across layers and steps, the
      output on the update engine (``max(sum E, sum U + sum output)``): no schedule on one event engine and one
      update engine does better."""
    E, U, O = run.event_cycles, run.update_cycles, run.output_cycles
    step = E[:, 0] + np.maximum(U[:, :-1], E[:, 1:]).sum(axis=1) + U[:, -1] + O
    return step.sum(axis=1), np.maximum(E.sum(axis=(1, 2)), U.sum(axis=(1, 2)) + O.sum(axis=1))


def pipelined_ceiling(run: LazyRun) -> np.ndarray:
    """Per sample, the fewest cycles of *in-order layer pipelining* with the phases of ``run`` (a :class:`LazyRun`;
    a projection, not built): one event engine and one update engine, each taking (step, layer) in order, a step's
    output on the update engine after its last layer's UPDATE, and

    * a layer's EVENT phase starting no earlier than the previous layer's UPDATE of the step (its events are that
      UPDATE's spikes, streamed as today's ``overlap`` streams them) and ending no earlier than that UPDATE ends;
    * a layer's UPDATE after its EVENT phase (it needs the step's every sum);
    * a layer's EVENT phase of the next step after its UPDATE (the same words, in one state memory): so the next
      step's first layer may start while the last layers' UPDATE and events of this step still run.

    Optimistic where it is silent (a streamed event never waits for its spike), so a lower bound for such a
    schedule: between :func:`overlap_ceilings`'s two (engines busy, next-layer overlap)."""
    E, U, O = run.event_cycles, run.update_cycles, run.output_cycles
    B, L, T = E.shape
    ev, up = np.zeros(B, np.int64), np.zeros(B, np.int64)
    state_free = np.zeros((B, L), np.int64)             # each layer's words: free after its UPDATE
    for t in range(T):
        u_start = u_end = None
        for l in range(L):
            start = np.maximum(ev, state_free[:, l])
            if l:
                start = np.maximum(start, u_start)
            ev = start + E[:, l, t]
            if l:
                ev = np.maximum(ev, u_end)
            u_start = np.maximum(up, ev)
            u_end = u_start + U[:, l, t]
            up = state_free[:, l] = u_end
        up = up + O[:, t]
    return np.maximum(ev, up)


def _clear_of(start: int, length: int, memory: int, others) -> int:
    """The earliest start >= ``start`` at which ``length`` cycles in ``memory`` meet none of ``others`` (phases
    ``(start, end, memory)``; :func:`wavefront_ceiling`)."""
    moved = length > 0
    while moved:
        moved = False
        for a, z, mem in others:
            if mem == memory and a < start + length and start < z:
                start, moved = z, True
    return start


def wavefront_ceiling(run: LazyRun, memories: int | None = None) -> np.ndarray:
    """Per sample, the fewest cycles of a *wavefront* schedule with the phases of ``run`` (a :class:`LazyRun`; a
    projection, not built: ``docs/chip.md``, "Standing against issue 23's targets").

    Layer ``l`` runs step ``t`` in slot ``t + l``, so the layers of one slot work on different steps and do not wait
    for each other within it; the output of step ``t`` leaves in slot ``t + L - 1``. One event engine and one update
    engine each take (slot, layer) in that order, layers 0 .. L-1 within a slot, the step's output on the update
    engine after its last layer's UPDATE, and

    * a layer's EVENT phase of step ``t`` starts after its own UPDATE of step ``t - 1`` (the same words) and after
      the previous layer's UPDATE of step ``t`` has ended (its whole spike list: no streaming; each layer's list is
      double-buffered, one written while the other is read);
    * a layer's UPDATE after its EVENT phase (it needs the step's every sum);
    * the two engines never work in the same membrane memory at once (layer ``l``'s words in memory ``l % memories``;
      ``memories=None``: a memory per layer, no such wait).

    Optimistic where it is silent (no cycle is lost handing a phase from one layer to the next beyond ``run``'s own
    phase cycles), so a lower bound for such a schedule, as :func:`pipelined_ceiling` is for in-order pipelining."""
    E, U, O = run.event_cycles, run.update_cycles, run.output_cycles
    B, L, T = E.shape
    memories = L if memories is None else memories
    order = [(s - l, l) for s in range(T + L - 1) for l in range(L) if 0 <= s - l < T]
    out = np.zeros(B, np.int64)
    for b in range(B):
        ev = up = 0
        update_end = {}
        events, updates = [], []               # (start, end, memory) of the phases placed so far
        for t, l in order:
            e = int(E[b, l, t])
            u = int(U[b, l, t]) + (int(O[b, t]) if l == L - 1 else 0)
            mem = l % memories
            start = max(ev, update_end.get((t - 1, l), 0), update_end.get((t, l - 1), 0))
            start = _clear_of(start, e, mem, updates)
            ev = start + e
            events.append((start, ev, mem))
            u_start = _clear_of(max(up, ev), u, mem, events)
            up = update_end[(t, l)] = u_start + u
            updates.append((u_start, up, mem))
            now = min(ev, up)                          # a later phase starts after this: drop what ended
            events = [p for p in events if p[1] > now]
            updates = [p for p in updates if p[1] > now]
        out[b] = max(ev, up)
    return out
