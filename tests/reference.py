"""A deliberately naive per-neuron, per-event reference of docs/chip.md, independent of sim.model.

It walks the schedule cycle by cycle in plain Python integers, so it checks the fast model's
vectorised arithmetic and its closed-form cycle count. Conv layers follow "Convolution and pooling":
every input event is pooled to (c, y // ph, x // pw), then visits its output positions (y' ascending,
x' ascending, group innermost), one cycle per (position, group).

Overlap (``cfg.overlapped(l)``, docs/chip.md "Overlap"): layer ``l``'s UPDATE is walked cycle by cycle, each
spike is appended in its cycle, and layer ``l+1``'s event engine takes the spikes one by one, each in the
cycle after it is appended (a conv layer's: ``D = decode_latency(l+1)`` cycles later, through its decoder) or
when the previous event's cycles (``G``; a conv layer's ``V*G + O``) end; layer ``l+1``'s end-of-events
cycle follows both the UPDATE (plus ``D``) and the last event.

``update="touched"``: the lazy-leak update by touch of docs/chip.md ("Update by touch"): UPDATE visits only the words an event accumulated into or that hold a neuron above its firing level;
a visited word first gets the leak of its idle steps, ``k`` of them, as one multiply by ``B_k``, the ``k``-th
power of ``beta_int / 2^f`` rounded once; its UPDATE pipeline is ``TOUCHED_UPDATE_LATENCY`` deep and its last
stage appends ``TOUCHED_APPENDS_PER_CYCLE`` (2) spikes per cycle, so a word with ``pc`` spikes holds it
``max(1, ceil(pc / 2))`` cycles; with overlap the next layer's event engine takes the spikes in the cycles
they are appended, as above.

``wavefront`` (docs/chip.md, "Wavefront"; touched, no overlap): the arithmetic and every counter but ``cycles``
as above; ``cycles`` from :func:`wavefront_schedule`, a cycle-by-cycle walk of the event engine's decisions, the
update engine and the output sender over this reference's own per-step, per-layer phase lengths."""
from __future__ import annotations

from hw.config import BIAS_UPDATE_STAGES, TOUCHED_APPENDS_PER_CYCLE, TOUCHED_UPDATE_LATENCY, UPDATE_LATENCY, ChipConfig


def _pooled(cfg: ChipConfig, l: int, i: int) -> tuple[int, int, int]:
    """Raw (HWC flat) input address ``i`` of layer ``l`` -> pooled coordinate (c, y, x)."""
    C, H, W = cfg.raw_in_shape(l)
    ph, pw = cfg.pool_window(l)
    c, x, y = i % C, (i // C) % W, i // (C * W)
    return c, y // ph, x // pw


def reference_run(cfg: ChipConfig, weights, offsets, spikes, counters: dict | None = None, update: str | None = None):
    """One sample ``spikes[t][i]``; returns (spikes per layer [t][l] list, state [t][l] list, cycles).
    ``counters``, if given, is filled with every counter of ``cfg.counter_names``; ``update``: ``"all"`` or
    ``"touched"`` (see the module doc; ``None``: ``cfg.update``)."""
    L, lanes, f = cfg.num_layers, cfg.lanes, cfg.beta_frac_bits
    lazy = (update or cfg.update) == "touched"
    P = TOUCHED_UPDATE_LATENCY if lazy else UPDATE_LATENCY     # the touched chip's UPDATE pipeline is deeper
    per_cycle = TOUCHED_APPENDS_PER_CYCLE if lazy else 1       # and appends two spikes per cycle
    if cfg.bias is not None:                                   # so is a biased chip's (the add: docs/chip.md, "Bias")
        P += BIAS_UPDATE_STAGES
    last = [[-1] * cfg.state_words(l) for l in range(L)]     # the step of each word's last update

    def elapsed(u_j, k, l):                                   # L_k(u): k idle steps' leak at once
        if k == 0:
            return u_j
        s = f * (k - 1)
        b = (cfg.beta_int[l] ** k + ((1 << s) >> 1)) >> s
        return (u_j * b + (1 << (f - 1))) >> f
    lo, hi = cfg.membrane_min, cfg.membrane_max
    u = [[0] * cfg.fan_out(l) for l in range(L)]
    cnt = {name: 0 for name in cfg.counter_names}
    out_spk, out_state, cycles = [], [], 0

    timed = True                        # False: this layer's EVENT phase was timed in the previous UPDATE
    wave = lazy and cfg.wavefront       # cycles from the wavefront's engines (see wavefront_schedule)
    phase_e, phase_u, phase_o = [], [], []   # per step: each layer's EVENT and UPDATE cycles; the output's

    def tick(n=1):
        nonlocal cycles
        if timed:
            cycles += n

    for t in range(len(spikes)):
        events = [i for i, s in enumerate(spikes[t]) if s]
        cnt["in_events"] += len(events)
        spk_t, st_t = [], []
        timed = True
        phase_e.append([])
        phase_u.append([])
        for l in range(L):
            n = cfg.fan_out(l)
            co_n = cfg.out_channels(l)
            groups = (co_n + lanes - 1) // lanes
            Wi = cfg.in_shape(l)[2]
            acc = list(u[l])
            touched = set()
            mark = cycles                                  # this layer's EVENT phase starts (no overlap: timed)
            tick(cfg.decode_latency(l))
            for i in events:
                c, y, x = _pooled(cfg, l, i)
                tick(cfg.event_overhead(l))
                if cfg.layer_kind(l) == "fc":
                    targets = [(0, (y * Wi + x) * cfg.in_shape(l)[0] + c, None)]
                else:
                    (kh, kw), s, (pdh, pdw) = cfg.kernel(l), cfg.stride(l), cfg.padding(l)
                    _, Ho, Wo = cfg.out_shape(l)
                    targets = []
                    for yo in range(Ho):                    # y' ascending, then x', then group
                        for xo in range(Wo):
                            ky, kx = y + pdh - s * yo, x + pdw - s * xo
                            if 0 <= ky < kh and 0 <= kx < kw:
                                targets.append((yo * Wo + xo, None, (c, ky, kx)))
                for pos, row, tap in targets:              # one cycle per (position, group)
                    for g in range(groups):
                        tick()
                        touched.add(pos * groups + g)
                        cnt["weight_reads"] += 1
                        cnt["state_reads"] += 1
                        cnt["state_writes"] += 1
                        for k in range(lanes):
                            co = g * lanes + k
                            if co >= co_n:
                                continue
                            cnt["synops"] += 1
                            w = weights[l][row][co] if tap is None else weights[l][tap[0]][tap[1]][tap[2]][co]
                            acc[pos * co_n + co] += int(w)
            tick()                                         # end of events
            if wave:
                phase_e[-1].append(cycles - mark)
            timed = True
            update_cycle = P                               # update fill (the update pipeline's depth)
            emitted = []                                   # the UPDATE cycle each spike is appended in
            new_events = []
            def level(j):
                return cfg.threshold[l] + (int(offsets[l][j]) if offsets is not None else 0)
            for pos in range(cfg.positions(l)):            # state words in address order
                for g in range(groups):
                    lanes_j = [pos * co_n + co for co in range(g * lanes, min(co_n, (g + 1) * lanes))]
                    if lazy:
                        w_ = pos * groups + g
                        if w_ not in touched and not any(u[l][j] > level(j) for j in lanes_j):
                            continue                       # not visited: no cycle, the word keeps its value
                        for j in lanes_j:                  # the idle steps' leak, then this step's input
                            acc[j] = elapsed(u[l][j], t - 1 - last[l][w_], l) + acc[j] - u[l][j]
                        last[l][w_] = t
                    fired = 0
                    cnt["state_reads"] += 1
                    cnt["state_writes"] += 1
                    for k in range(lanes):
                        co = g * lanes + k
                        if co >= co_n:
                            continue
                        j = pos * co_n + co
                        cnt["neuron_updates"] += 1
                        b = cfg.bias[l][co] if cfg.bias is not None else 0    # per output channel (fc: neuron)
                        v = min(max(acc[j] + b, lo), hi)
                        thr = cfg.threshold[l] + (int(offsets[l][j]) if offsets is not None else 0)
                        s = v > thr
                        lv = (v * cfg.beta_int[l] + (1 << (f - 1))) // (1 << f)   # floor division
                        if s and cfg.reset == "zero":
                            u[l][j] = 0
                        elif s:
                            u[l][j] = min(max(lv - thr, lo), hi)
                        else:
                            u[l][j] = lv
                        if s:                          # the last stage's cycle that appends it
                            emitted.append(update_cycle + fired // per_cycle)
                            fired += 1
                            new_events.append(j)
                    update_cycle += max(1, -(-fired // per_cycle))
            if cfg.overlapped(l):                          # layer l+1's events run during this UPDATE
                G_next, end = cfg.groups(l + 1), 0
                D = cfg.decode_latency(l + 1)              # a conv event's first visit: D cycles after its take
                V = cfg.receptive_counts(l + 1)
                for cycle, j in zip(emitted, new_events):  # the event engine, one spike after another
                    start = max(cycle + 1 + D, end)
                    end = start + int(V[j]) * G_next + cfg.event_overhead(l + 1)
                tick(max(update_cycle + D, end) + 1)       # + layer l+1's end-of-events cycle
                timed = False
            else:
                tick(update_cycle)
            if wave:
                phase_u[-1].append(update_cycle)
            cnt[f"spikes_l{l}"] += len(new_events)
            fired_set = set(new_events)
            spk_t.append([j in fired_set for j in range(n)])
            st_t.append(list(u[l]))
            events = new_events
        tick(len(events) + 1)                              # output events + end token
        phase_o.append(len(events) + 1)
        cnt["out_events"] += len(events)
        out_spk.append(spk_t)
        out_state.append(st_t)
    if wave:
        cycles = wavefront_schedule(phase_e, phase_u, phase_o)
    cnt["cycles"] = cycles
    if counters is not None:
        counters.update(cnt)
    return out_spk, out_state, cycles


def wavefront_schedule(event_len, update_len, output_len) -> int:
    """The ``cycles`` of docs/chip.md's "Wavefront" schedule, walked cycle by cycle with a host that always has the
    next token ready and always takes the output: ``event_len[t][l]`` a phase's EVENT cycles (with its
    end-of-events cycle), ``update_len[t][l]`` its UPDATE cycles, ``output_len[t]`` the output events + end token.

    Every cycle the event engine, the update engine and the output sender act on the registers as they were at
    the cycle's start (a count or flag changed in a cycle is seen from the next); the cycle counts when anything
    works: an EVENT cycle, a decision cycle other than parking, an UPDATE's cycle or one with an UPDATE waiting
    to start, a cycle in which the sender sends."""
    T, L = len(event_len), len(event_len[0]) if event_len else 0
    count = [0] * L                     # l >= 1: layer l - 1's steps finished, not yet started by l (0..2)
    busy = [False] * L
    taken = [0] * L                     # steps each layer has started
    at, phase_left = 0, 0               # the event engine's layer; cycles of its EVENT phase still to come
    handed = []                         # layers handed to the update engine, in order: (layer, step)
    upd = None                          # the running UPDATE: [layer, step, cycles left]
    send = 0                            # the sender's cycles still to come (it starts the cycle after the UPDATE)
    counted = cycle = 0
    while taken[L - 1] < T or phase_left or handed or upd is not None or send:
        seen_count, seen_busy = list(count), list(busy)
        works = False
        # the output sender: one event per cycle, then the end token (the last layer not busy from the next cycle)
        if send:
            works = True
            send -= 1
            if send == 0:
                busy[L - 1] = False
        # the update engine: the next handed layer starts in the cycle after its hand-over or the last UPDATE
        if upd is None and handed:
            layer, step = handed.pop(0)
            upd = [layer, step, update_len[step][layer]]
        if upd is not None or handed:
            works = True
        if upd is not None:
            upd[2] -= 1
            if upd[2] == 0:                                 # the UPDATE's last cycle
                layer, step, _ = upd
                upd = None
                if layer == L - 1:
                    send = output_len[step]                 # from the next cycle
                else:
                    count[layer + 1] += 1
                    assert count[layer + 1] <= 2, "a layer's input count above 2"
                    busy[layer] = False
        # the event engine
        if phase_left:
            works = True
            phase_left -= 1
            if phase_left == 0:                             # the end-of-events cycle: hand over, busy
                handed.append((at, taken[at] - 1))
                busy[at] = True
                at = (at + 1) % L
        else:
            has = taken[0] < T if at == 0 else seen_count[at] > 0
            if has and not seen_busy[at]:
                works = True
                phase_left = event_len[taken[at]][at]       # from the next cycle
                taken[at] += 1
                if at:
                    count[at] -= 1
            elif has:
                works = True                                # waits at this layer
            elif at == 0 and not any(seen_count[m] > 0 for m in range(1, L)):
                pass                                        # parks
            else:
                works = True
                at = (at + 1) % L
        counted += works
        cycle += 1
        assert cycle < 1 << 24, "the wavefront schedule does not end"
    return counted
