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
words. This is a **projection** from the specification's arithmetic (the fast model's membranes), not a
measurement of an RTL: the RTL implements ``update = "all"`` only. Chips with ``overlap`` are projected without
the overlap's saving (the emission times change with the skipped words); the functions refuse none, but
:func:`touched_schedule` reports ``overlap_ignored``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import ChipConfig


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
    overlap_ignored: bool


def event_bound(cfg: ChipConfig, counters: dict, touched: np.ndarray) -> np.ndarray:
    """The event bound per sample (see module doc); ``touched``: touched state words per sample, all layers."""
    T_fixed = sum(1 + cfg.update_latency + cfg.decode_latency(l) for l in range(cfg.num_layers)) + 1
    steps = counters["_steps"]
    per_event = sum(np.asarray(counters[f"_events_l{l}"]) * cfg.event_overhead(l) for l in range(cfg.num_layers))
    return (np.asarray(counters["synops"], float) / cfg.lanes + touched + counters["out_events"]
            + steps * T_fixed + per_event)


def touched_schedule(model, spikes: np.ndarray) -> Projection:
    """Run ``model`` (a :class:`sim.model.FastModel`) on ``spikes`` ``(B, T, N0)`` and project update by touch."""
    cfg = model.cfg
    x = cfg.check_spikes(spikes)
    r = model.run(x, record_state=True)
    B, T, _ = x.shape
    inputs = [x] + [s for s in r.spikes[:-1]]
    touched_n = np.zeros(B, np.int64)
    live_n = np.zeros(B, np.int64)
    words_n = np.zeros(B, np.int64)
    saved = np.zeros(B, np.int64)
    lazy_n = np.zeros(B, np.int64)
    lazy_saved = np.zeros(B, np.int64)
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
        # lazy leak: touched words, and words holding a neuron above its firing level (it could fire untouched)
        level = cfg.threshold[l] + model.offsets[l].reshape(-1)
        above = _words(cfg, l, u > level).any(axis=4).reshape(B, T, -1)
        lazy = t_words | np.concatenate([np.zeros_like(above[:, :1]), above[:, :-1]], axis=1)
        spiking = _words(cfg, l, r.spikes[l]).any(axis=4).reshape(B, T, -1)
        lazy |= spiking                                 # (an estimate: the model's membranes are today's)
        lazy_n += lazy.sum(axis=(1, 2))
        lazy_saved += (~lazy).sum(axis=(1, 2))
    c = dict(r.counters)
    c["_steps"] = T
    ev = [np.count_nonzero(s.reshape(B, -1), axis=1) for s in inputs]
    for l in range(cfg.num_layers):
        c[f"_events_l{l}"] = ev[l]
    overlap_ignored = any(cfg.overlapped(l) for l in range(cfg.num_layers))
    hidden = 0
    if overlap_ignored:
        from sim.model import overlap_hidden
        hidden = sum(overlap_hidden(cfg, l, r.spikes[l]) for l in range(cfg.num_layers) if cfg.overlapped(l))
    return Projection(cycles=np.asarray(r.cycles, np.int64), bound=event_bound(cfg, c, touched_n),
                      touched=touched_n, live=live_n, words=words_n,
                      touched_cycles=np.asarray(r.cycles, np.int64) + hidden - saved,
                      lazy=lazy_n, lazy_cycles=np.asarray(r.cycles, np.int64) + hidden - lazy_saved,
                      overlap_ignored=overlap_ignored)
