"""A deliberately naive per-neuron, per-event reference of docs/chip.md, independent of sim.model.

It walks the schedule cycle by cycle in plain Python integers, so it checks the fast model's
vectorised arithmetic and its closed-form cycle count."""
from __future__ import annotations

from hw.config import ChipConfig


def reference_run(cfg: ChipConfig, weights, offsets, spikes):
    """One sample ``spikes[t][i]``; returns (spikes per layer [t][l] list, state [t][l] list, cycles)."""
    L, lanes, f = cfg.num_layers, cfg.lanes, cfg.beta_frac_bits
    lo, hi = cfg.membrane_min, cfg.membrane_max
    u = [[0] * cfg.fan_out(l) for l in range(L)]
    out_spk, out_state, cycles = [], [], 0
    for t in range(len(spikes)):
        events = [i for i, s in enumerate(spikes[t]) if s]
        spk_t, st_t = [], []
        for l in range(L):
            n = cfg.fan_out(l)
            groups = (n + lanes - 1) // lanes
            acc = list(u[l])
            for i in events:                       # one cycle per (event, group)
                for g in range(groups):
                    cycles += 1
                    for k in range(lanes):
                        j = g * lanes + k
                        if j < n:
                            acc[j] += int(weights[l][i][j])
            cycles += 1                            # end of events
            cycles += cfg.update_latency           # update fill (the update pipeline's depth)
            new_events = []
            for g in range(groups):
                fired = 0
                for k in range(lanes):
                    j = g * lanes + k
                    if j >= n:
                        continue
                    v = min(max(acc[j], lo), hi)
                    thr = cfg.threshold[l] + (int(offsets[l][j]) if offsets is not None else 0)
                    s = v > thr
                    lv = (v * cfg.beta_int[l] + (1 << (f - 1))) // (1 << f)   # floor division
                    if s and cfg.reset == "zero":
                        u[l][j] = 0
                    elif s:
                        u[l][j] = min(max(lv - thr, lo), hi)
                    else:
                        u[l][j] = lv
                    if s:
                        fired += 1
                        new_events.append(j)
                cycles += max(1, fired)
            spk_t.append([j in new_events for j in range(n)])
            st_t.append(list(u[l]))
            events = new_events
        cycles += len(events) + 1                  # output events + end token
        out_spk.append(spk_t)
        out_state.append(st_t)
    return out_spk, out_state, cycles
