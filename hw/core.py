"""Sparsity-aware LIF accelerator core (Amaranth 0.5).

One shared datapath of ``lanes`` neuron units serves all layers in turn. Per time step, for each layer:

1. **EVENT** — each input address event ``i`` reads the ``groups(l)`` weight words of row ``i`` and adds
   them into the membrane words, one word (``lanes`` synapses) per cycle. Layer 0 takes events from the
   ``events_in`` stream (a token with ``end=1`` closes the step); later layers from the internal event
   list written by the previous layer. No event, no synaptic work. 1 cycle closes the phase.
2. **UPDATE** — 1 fill cycle, then per group: saturate, compare, leak, reset, write back; the group's
   spikes are appended to the event list one per cycle (a group costs ``max(1, spikes)`` cycles).

After the last layer, **OUTPUT** streams the event list to ``events_out`` and an ``end`` token.
``docs/chip.md`` specifies the arithmetic; :mod:`sim.model` is its bit- and cycle-exact model.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.hdl import Array, C, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.bus import (READ_COUNTERS, READ_MEMBRANES, REGION_OFFSETS, REGION_REGS, REGION_WEIGHTS, BusMap,
                    offset_words, weight_words)
from hw.config import COUNTER_BITS, ChipConfig


def event_layout(cfg: ChipConfig) -> data.StructLayout:
    """Address-event payload: a neuron index, or ``end`` closing the time step."""
    return data.StructLayout({"index": unsigned(cfg.index_bits), "end": unsigned(1)})


def write_bus_signature(bus: BusMap) -> wiring.Signature:
    """Host → chip word writes (host's view: all outputs)."""
    return wiring.Signature({"addr": Out(bus.addr_bits), "data": Out(bus.write_data_bits), "en": Out(1)})


def read_bus_signature(bus: BusMap) -> wiring.Signature:
    """Host ← chip word reads; ``data`` follows ``addr`` by one cycle (host's view)."""
    return wiring.Signature({"addr": Out(bus.read_addr_bits), "data": In(bus.read_data_bits)})


class LifCore(wiring.Component):
    """The accelerator. ``weights``/``threshold_offsets`` (optional) become the memories' power-up contents;
    the registers power up with ``cfg``'s beta, threshold and reset mode. ``busy`` is low only while the core
    waits for the first token of a new time step."""

    def __init__(self, cfg: ChipConfig, weights: Sequence[np.ndarray] | None = None,
                 threshold_offsets: Sequence[np.ndarray] | None = None):
        self.cfg = cfg
        self.bus = BusMap(cfg)
        self._winit = weight_words(cfg, weights) if weights is not None else []
        self._oinit = offset_words(cfg, threshold_offsets) if threshold_offsets is not None else []
        ev = stream.Signature(event_layout(cfg))
        super().__init__({
            "events_in": In(ev),
            "events_out": Out(ev),
            "wr": In(write_bus_signature(self.bus)),
            "rd": In(read_bus_signature(self.bus)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg, bus = self.cfg, self.bus
        m = Module()
        L, lanes = cfg.num_layers, cfg.lanes
        A, M, F = cfg.acc_bits, cfg.membrane_bits, cfg.beta_frac_bits
        g_max = max(cfg.groups(l) for l in range(L))
        w_lanes = data.ArrayLayout(signed(cfg.weight_bits), lanes)
        s_lanes = data.ArrayLayout(signed(A), lanes)
        o_lanes = data.ArrayLayout(signed(cfg.threshold_offset_bits), lanes)

        # -- memories ---------------------------------------------------------------------------------
        m.submodules.wmem = wmem = memory.Memory(shape=unsigned(w_lanes.size), depth=cfg.weight_depth,
                                                 init=self._winit)
        m.submodules.smem = smem = memory.Memory(shape=unsigned(s_lanes.size), depth=cfg.state_depth, init=[])
        m.submodules.omem = omem = memory.Memory(shape=unsigned(o_lanes.size), depth=cfg.state_depth,
                                                 init=self._oinit)
        m.submodules.emem = emem = memory.Memory(shape=unsigned(cfg.index_bits), depth=cfg.event_depth, init=[])
        w_wp, o_wp = wmem.write_port(), omem.write_port()
        s_wp, e_wp = smem.write_port(), emem.write_port()
        w_rp, o_rp = wmem.read_port(), omem.read_port()
        s_rp = smem.read_port(transparent_for=(s_wp,))
        s_host = smem.read_port()
        e_rp = emem.read_port(transparent_for=(e_wp,))
        w_data, s_data, o_data = w_lanes(w_rp.data), s_lanes(s_rp.data), o_lanes(o_rp.data)
        s_wdata = s_lanes(s_wp.data)

        # -- runtime registers and the host write bus -------------------------------------------------
        beta = Array(Signal(unsigned(F), name=f"beta{l}", init=cfg.beta_int[l]) for l in range(L))
        thr = Array(Signal(unsigned(M - 1), name=f"thr{l}", init=cfg.threshold[l]) for l in range(L))
        reset_zero = Signal(init=int(cfg.reset == "zero"))
        clear = Signal()
        region = self.wr.addr[bus.offset_bits:]
        offset = self.wr.addr[:bus.offset_bits]
        m.d.comb += [
            w_wp.addr.eq(offset), w_wp.data.eq(self.wr.data),
            w_wp.en.eq(self.wr.en & (region == REGION_WEIGHTS)),
            o_wp.addr.eq(offset), o_wp.data.eq(self.wr.data),
            o_wp.en.eq(self.wr.en & (region == REGION_OFFSETS)),
        ]
        with m.If(self.wr.en & (region == REGION_REGS)):
            for l in range(L):
                with m.If(offset == bus.reg_beta(l)):
                    m.d.sync += beta[l].eq(self.wr.data)
                with m.If(offset == bus.reg_threshold(l)):
                    m.d.sync += thr[l].eq(self.wr.data)
            with m.If(offset == bus.reg_reset):
                m.d.sync += reset_zero.eq(self.wr.data[0])
            with m.If(offset == bus.reg_command):
                m.d.comb += clear.eq(self.wr.data[0])

        # -- per-layer constants selected by the current layer ----------------------------------------
        layer = Signal(range(L))
        n_groups = Array(C(cfg.groups(l), range(g_max + 1)) for l in range(L))[layer]
        s_base = Array(C(cfg.state_base(l), range(cfg.state_depth + 1)) for l in range(L))[layer]
        last_lanes = Array(C(cfg.fan_out(l) - (cfg.groups(l) - 1) * lanes, range(lanes + 1))
                           for l in range(L))[layer]

        # -- event-phase state --------------------------------------------------------------------------
        have_ev = Signal()                           # an event is mid-way through its groups
        g = Signal(range(g_max + 1))                 # next group of the current event
        waddr = Signal(range(cfg.weight_depth + 1))  # next weight word of the current event
        ev_rd = Signal(range(cfg.event_depth + 1))   # event-list read pointer
        ev_wr = Signal(range(cfg.event_depth + 1))   # event-list write pointer (= count)
        src_valid, src_end, src_index = Signal(), Signal(), Signal(cfg.index_bits)
        take = Signal()                              # consume one token from the event source
        issue = Signal()                             # event phase issues one weight/state word read
        issue_g = Signal(range(g_max + 1))
        issue_w = Signal(range(cfg.weight_depth + 1))
        row_base = Signal(range(cfg.weight_depth + 1))
        with m.Switch(layer):
            for l in range(L):
                with m.Case(l):
                    m.d.comb += row_base.eq(cfg.weight_base(l) + src_index * cfg.groups(l))

        # -- update-phase state -------------------------------------------------------------------------
        u_have = Signal()                  # stage 2 holds the words of group u_cur
        u_cur = Signal(range(g_max + 1))
        emitting = Signal()                # spilling the remaining spikes of u_cur
        pend = Signal(lanes)
        u_issue = Signal()
        u_issue_g = Signal(range(g_max + 1))

        # -- event pipeline stage 2: accumulate -----------------------------------------------------------
        p_valid = Signal()
        p_saddr = Signal(range(cfg.state_depth + 1))
        m.d.sync += [p_valid.eq(issue), p_saddr.eq(s_base + issue_g)]

        # -- update datapath (per lane, combinational from stage-2 words) ---------------------------------
        lo, hi = cfg.membrane_min, cfg.membrane_max
        spike_now = Signal(lanes)
        new_state = [Signal(signed(M), name=f"new{k}") for k in range(lanes)]
        for k in range(lanes):
            acc = s_data[k]
            v = Signal(signed(M), name=f"v{k}")
            m.d.comb += v.eq(Mux(acc > hi, hi, Mux(acc < lo, lo, acc)))
            thr_eff = Signal(signed(M + 1), name=f"thr_eff{k}")
            m.d.comb += thr_eff.eq(thr[layer] + o_data[k])
            lane_ok = (u_cur != n_groups - 1) | (k < last_lanes)
            m.d.comb += spike_now[k].eq((v > thr_eff) & lane_ok)
            lv = Signal(signed(M), name=f"leak{k}")
            m.d.comb += lv.eq((v * beta[layer] + (1 << (F - 1))) >> F)
            sub = lv - thr_eff
            sub_sat = Mux(sub < lo, lo, Mux(sub > hi, hi, sub))
            m.d.comb += new_state[k].eq(
                Mux(spike_now[k], Mux(reset_zero, 0, sub_sat), lv))
        cur = Mux(emitting, pend, spike_now)
        rest = cur & (cur - 1)
        low_idx = Const(0, range(lanes))
        for k in reversed(range(lanes)):
            low_idx = Mux(cur[k], k, low_idx)
        lanes_in_group = Mux(u_cur == n_groups - 1, last_lanes, lanes)
        popcount = sum(spike_now[k] for k in range(lanes))
        u_first = Signal()                 # first compute cycle of group u_cur (writes back, counts)

        # -- event list addressing ----------------------------------------------------------------------------
        m.d.comb += [e_rp.addr.eq(Mux(take & ~src_end, ev_rd + 1, ev_rd)),
                     e_wp.addr.eq(ev_wr), e_wp.data.eq(u_cur * lanes + low_idx)]

        # -- state memory ports -----------------------------------------------------------------------------
        m.d.comb += [
            w_rp.addr.eq(issue_w),
            s_rp.addr.eq(Mux(u_issue, s_base + u_issue_g, s_base + issue_g)),
            o_rp.addr.eq(s_base + u_issue_g),
        ]
        clr_addr = Signal(range(cfg.state_depth + 1))
        with m.If(p_valid):
            for k in range(lanes):
                m.d.comb += s_wdata[k].eq(s_data[k] + w_data[k])
            m.d.comb += [s_wp.addr.eq(p_saddr), s_wp.en.eq(1)]

        # -- control ---------------------------------------------------------------------------------------
        stall = Signal()
        counting = Signal()
        with m.FSM(name="phase") as fsm:
            with m.State("EVENT"):
                m.d.comb += counting.eq(1)
                with m.If(layer == 0):
                    m.d.comb += [src_valid.eq(self.events_in.valid), src_end.eq(self.events_in.payload.end),
                                 src_index.eq(self.events_in.payload.index),
                                 self.events_in.ready.eq(~have_ev)]
                with m.Else():
                    m.d.comb += [src_valid.eq(1), src_end.eq(ev_rd == ev_wr), src_index.eq(e_rp.data)]
                with m.If(have_ev):
                    m.d.comb += [issue.eq(1), issue_g.eq(g), issue_w.eq(waddr)]
                    m.d.sync += [waddr.eq(waddr + 1), g.eq(g + 1)]
                    with m.If(g == n_groups - 1):
                        m.d.sync += have_ev.eq(0)
                with m.Elif(src_valid & ~src_end):
                    m.d.comb += [take.eq(1), issue.eq(1), issue_g.eq(0), issue_w.eq(row_base)]
                    m.d.sync += [waddr.eq(row_base + 1), g.eq(1), have_ev.eq(n_groups > 1)]
                    with m.If(layer != 0):
                        m.d.sync += ev_rd.eq(ev_rd + 1)
                with m.Elif(src_valid):
                    m.d.comb += take.eq(1)
                    m.d.sync += [ev_rd.eq(0), ev_wr.eq(0), u_have.eq(0), emitting.eq(0)]
                    m.next = "UPDATE"
                with m.Else():
                    m.d.comb += stall.eq(1)
            with m.State("UPDATE"):
                m.d.comb += counting.eq(1)
                with m.If(~u_have):                          # fill: read group 0
                    m.d.comb += [u_issue.eq(1), u_issue_g.eq(0)]
                    m.d.sync += [u_have.eq(1), u_cur.eq(0)]
                with m.Else():
                    m.d.comb += u_first.eq(~emitting)
                    with m.If(cur != 0):
                        m.d.comb += e_wp.en.eq(1)
                        m.d.sync += ev_wr.eq(ev_wr + 1)
                    with m.If(rest != 0):
                        m.d.sync += [pend.eq(rest), emitting.eq(1)]
                    with m.Else():
                        m.d.sync += emitting.eq(0)
                        with m.If(u_cur == n_groups - 1):
                            m.d.sync += u_have.eq(0)
                            with m.If(layer == L - 1):
                                m.next = "OUTPUT"
                            with m.Else():
                                m.d.sync += [layer.eq(layer + 1), have_ev.eq(0)]
                                m.next = "EVENT"
                        with m.Else():
                            m.d.comb += [u_issue.eq(1), u_issue_g.eq(u_cur + 1)]
                            m.d.sync += u_cur.eq(u_cur + 1)
                with m.If(u_first):
                    for k in range(lanes):
                        m.d.comb += s_wdata[k].eq(new_state[k])
                    m.d.comb += [s_wp.addr.eq(s_base + u_cur), s_wp.en.eq(1)]
            with m.State("OUTPUT"):
                m.d.comb += [counting.eq(1), src_end.eq(ev_rd == ev_wr),
                             self.events_out.valid.eq(1),
                             self.events_out.payload.index.eq(Mux(src_end, 0, e_rp.data)),
                             self.events_out.payload.end.eq(src_end),
                             take.eq(self.events_out.ready), stall.eq(~self.events_out.ready)]
                with m.If(take & ~src_end):
                    m.d.sync += ev_rd.eq(ev_rd + 1)
                with m.If(take & src_end):
                    m.d.sync += [layer.eq(0), have_ev.eq(0), ev_rd.eq(0)]
                    m.next = "EVENT"
            with m.State("CLEAR"):
                m.d.comb += [s_wp.addr.eq(clr_addr), s_wp.en.eq(1), s_wp.data.eq(0)]
                m.d.sync += clr_addr.eq(clr_addr + 1)
                with m.If(clr_addr == cfg.state_depth - 1):
                    m.next = "EVENT"
        with m.If(clear):   # a command write overrides whatever the phase logic chose
            m.d.sync += [clr_addr.eq(0), layer.eq(0), have_ev.eq(0), ev_rd.eq(0), ev_wr.eq(0),
                         u_have.eq(0), emitting.eq(0)]
            m.d.sync += fsm.state.eq(fsm.encoding["CLEAR"])
        m.d.comb += self.busy.eq(~fsm.ongoing("EVENT") | (layer != 0) | have_ev)

        # -- performance counters -------------------------------------------------------------------------
        names = list(cfg.counter_names)
        counters = {n: Signal(COUNTER_BITS, name=f"cnt_{n}") for n in names}
        incr = {n: Signal(range(max(lanes, 2) + 1), name=f"inc_{n}") for n in names}
        m.d.comb += [
            incr["cycles"].eq(counting & ~stall),
            incr["stall_cycles"].eq(stall),
            incr["in_events"].eq(take & ~src_end & (layer == 0) & fsm.ongoing("EVENT")),
            incr["synops"].eq(Mux(issue, Mux(issue_g == n_groups - 1, last_lanes, lanes), 0)),
            incr["weight_reads"].eq(issue),
            incr["state_reads"].eq(issue | (u_issue & fsm.ongoing("UPDATE"))),
            incr["state_writes"].eq(p_valid | u_first),
            incr["neuron_updates"].eq(Mux(u_first, lanes_in_group, 0)),
            incr["out_events"].eq(fsm.ongoing("OUTPUT") & take & ~src_end),
        ]
        for l in range(L):
            m.d.comb += incr[f"spikes_l{l}"].eq(Mux(u_first & (layer == l), popcount, 0))
        top = (1 << COUNTER_BITS) - 1
        for n in names:
            total = counters[n] + incr[n]
            with m.If(clear):
                m.d.sync += counters[n].eq(0)
            with m.Else():
                m.d.sync += counters[n].eq(Mux(total > top, top, total))

        # -- host read bus (registered) ---------------------------------------------------------------
        r_region = self.rd.addr[bus.read_offset_bits:]
        r_offset = self.rd.addr[:bus.read_offset_bits]
        r_region_q = Signal.like(r_region)
        cnt_q = Signal(COUNTER_BITS)
        m.d.comb += s_host.addr.eq(r_offset)
        m.d.sync += [r_region_q.eq(r_region),
                     cnt_q.eq(Array(counters[n] for n in names)[r_offset[:max(1, (len(names) - 1).bit_length())]])]
        m.d.comb += self.rd.data.eq(Mux(r_region_q == READ_COUNTERS, cnt_q, s_host.data))
        return m
