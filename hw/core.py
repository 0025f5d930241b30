"""Sparsity-aware LIF accelerator core (Amaranth 0.5).

One shared datapath of ``lanes`` neuron units serves all layers in turn. Per time step, for each layer:

1. **EVENT** — each input address event ``i`` reads the ``groups(l)`` weight words of row ``i`` and adds
   them into the membrane words, one word (``lanes`` synapses) per cycle. Layer 0 takes events from the
   ``events_in`` stream (a token with ``end=1`` closes the step); later layers from the internal event
   list written by the previous layer. No event, no synaptic work. 1 cycle closes the phase.
2. **UPDATE** — 1 fill cycle, then per group: saturate, compare, leak, reset, write back; the group's
   spikes are appended to the event list one per cycle (a group costs ``max(1, spikes)`` cycles).

After the last layer, **OUTPUT** streams the event list to ``events_out`` and an ``end`` token (whose
``index`` is 0). ``docs/chip.md`` specifies the arithmetic; :mod:`sim.model` is its bit- and cycle-exact
model.

:class:`LifCore` wires these components around the weight, threshold-offset and membrane memories:

* :class:`RuntimeRegisters` — beta, threshold and reset-mode registers; decodes the host write bus
  into them, into the two host-written memories and into clear requests;
* :class:`Sequencer` — the phase state machine (EVENT, UPDATE, OUTPUT, CLEAR): walks events and groups,
  addresses the memories, accumulates and writes back membranes, emits spikes;
* :class:`NeuronLanes` — per-lane arithmetic: accumulate, saturate, fire, leak, reset;
* :class:`EventList` — the spikes of one layer in one step, written by UPDATE, read by the next EVENT
  phase or by OUTPUT;
* :class:`PerformanceCounters` — the saturating per-sample counters;
* :class:`ReadBus` — the registered host read mux over membranes and counters.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import numpy as np
from amaranth.hdl import Array, C, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.bus import READ_COUNTERS, REGION_OFFSETS, REGION_REGS, REGION_WEIGHTS, BusMap, offset_words, weight_words
from hw.config import COUNTER_BITS, ChipConfig


# -- interfaces -------------------------------------------------------------------------------------------
def event_layout(cfg: ChipConfig) -> data.StructLayout:
    """Address-event payload: a neuron index, or ``end`` closing the time step."""
    return data.StructLayout({"index": unsigned(cfg.index_bits), "end": unsigned(1)})


def event_stream_signature(cfg: ChipConfig) -> stream.Signature:
    """Signature of an address-event stream: Amaranth's own :class:`amaranth.lib.stream.Signature` (a
    final class, so not subclassed here) with an :func:`event_layout` payload.

    Parameters
    ----------
    cfg : :class:`hw.config.ChipConfig`
        Chip whose ``index_bits`` size the payload.

    Members
    -------
    valid : :py:`Out(1)`
        The payload holds an event.
    ready : :py:`In(1)`
        The sink takes the payload at this clock edge.
    payload : :py:`Out(event_layout(cfg))`
        ``index`` (neuron index) and ``end`` (closes the time step; the index of an end token is 0).
    """
    return stream.Signature(event_layout(cfg))


class _WordBusSignature(wiring.Signature):
    """What the two host buses share: equal when their widths are, shown with them."""
    addr_width: int
    data_width: int

    def __eq__(self, other):
        return (type(self) is type(other) and self.addr_width == other.addr_width and
                self.data_width == other.data_width)

    def __repr__(self):
        return f"{type(self).__name__}(addr_width={self.addr_width}, data_width={self.data_width})"


class WriteBusSignature(_WordBusSignature):
    """Signature of the host's word write bus (host's view: all outputs). See :mod:`hw.bus` for the map.

    Parameters
    ----------
    bus : :class:`hw.bus.BusMap`
        Address map that sizes the bus.

    Members
    -------
    addr : :py:`Out(bus.addr_bits)`
        ``region << offset_bits | offset``.
    data : :py:`Out(bus.write_data_bits)`
        Word to write.
    en : :py:`Out(1)`
        Write strobe: one word is written at each clock edge it is high.
    """

    def __init__(self, bus: BusMap):
        self.addr_width, self.data_width = bus.addr_bits, bus.write_data_bits
        super().__init__({"addr": Out(self.addr_width), "data": Out(self.data_width), "en": Out(1)})


class ReadBusSignature(_WordBusSignature):
    """Signature of the host's word read bus (host's view). See :mod:`hw.bus` for the map.

    Parameters
    ----------
    bus : :class:`hw.bus.BusMap`
        Address map that sizes the bus.

    Members
    -------
    addr : :py:`Out(bus.read_addr_bits)`
        ``region << read_offset_bits | offset``.
    data : :py:`In(bus.read_data_bits)`
        The word at the ``addr`` of the previous cycle (registered read).
    """

    def __init__(self, bus: BusMap):
        self.addr_width, self.data_width = bus.read_addr_bits, bus.read_data_bits
        super().__init__({"addr": Out(self.addr_width), "data": In(self.data_width)})


def _signals(**shapes) -> dict:
    """``Signal(shape, name=name)`` for each ``name=shape``."""
    return {name: Signal(shape, name=name) for name, shape in shapes.items()}


def _lanes_of(shape, cfg: ChipConfig) -> data.ArrayLayout:
    return data.ArrayLayout(shape, cfg.lanes)


def increment_layout(cfg: ChipConfig) -> data.StructLayout:
    """One field per counter of :attr:`hw.config.ChipConfig.counter_names`: its increment this cycle."""
    return data.StructLayout({name: range(max(cfg.lanes, 2) + 1) for name in cfg.counter_names})


# -- components -------------------------------------------------------------------------------------------
class RuntimeRegisters(wiring.Component):
    """Beta, threshold and reset-mode registers, and the decoder of the host write bus.

    Register writes update the registers; weight and offset writes go straight to the memories' write
    ports; a command write with bit 0 set raises ``clear`` for that cycle. The registers power up with
    ``cfg``'s beta, threshold and reset mode. ``beta`` and ``threshold`` show the registers of ``layer``.
    """

    def __init__(self, cfg: ChipConfig, bus: BusMap, weight_port: wiring.Signature,
                 offset_port: wiring.Signature):
        self.cfg, self.bus = cfg, bus
        super().__init__({
            "wr": In(WriteBusSignature(bus)),
            "weights": In(weight_port),            # drives the weight memory's write port
            "offsets": In(offset_port),            # drives the threshold-offset memory's write port
            "layer": In(range(cfg.num_layers)),
            "beta": Out(cfg.beta_frac_bits),
            "threshold": Out(cfg.membrane_bits - 1),
            "reset_zero": Out(1),
            "clear": Out(1),
        })

    def elaborate(self, platform):
        cfg, bus = self.cfg, self.bus
        m = Module()
        betas = Array(Signal(self.beta.shape(), name=f"beta_l{l}", init=cfg.beta_int[l])
                      for l in range(cfg.num_layers))
        thresholds = Array(Signal(self.threshold.shape(), name=f"threshold_l{l}", init=cfg.threshold[l])
                           for l in range(cfg.num_layers))
        reset_zero = Signal(init=int(cfg.reset == "zero"))
        m.d.comb += [self.beta.eq(betas[self.layer]), self.threshold.eq(thresholds[self.layer]),
                     self.reset_zero.eq(reset_zero)]

        region = self.wr.addr[bus.offset_bits:]
        offset = self.wr.addr[:bus.offset_bits]
        for port, target in ((self.weights, REGION_WEIGHTS), (self.offsets, REGION_OFFSETS)):
            m.d.comb += [port.addr.eq(offset), port.data.eq(self.wr.data),
                         port.en.eq(self.wr.en & (region == target))]
        with m.If(self.wr.en & (region == REGION_REGS)):
            for l in range(cfg.num_layers):
                with m.If(offset == bus.reg_beta(l)):
                    m.d.sync += betas[l].eq(self.wr.data)
                with m.If(offset == bus.reg_threshold(l)):
                    m.d.sync += thresholds[l].eq(self.wr.data)
            with m.If(offset == bus.reg_reset):
                m.d.sync += reset_zero.eq(self.wr.data[0])
            with m.If(offset == bus.reg_command):
                m.d.comb += self.clear.eq(self.wr.data[0])
        return m


class NeuronLanes(wiring.Component):
    """The arithmetic of ``lanes`` neurons, combinational (``docs/chip.md``, "Arithmetic").

    ``accumulated`` is ``membrane + weights`` lane by lane (the EVENT phase). For the UPDATE phase, from
    the stored ``membrane`` words: saturate, ``fired`` = above ``threshold`` + ``offsets`` (only the first
    ``active`` lanes: the last group of a layer may be partial), leak by ``beta``, reset; the result is
    ``next_membrane`` and ``fired_count`` spikes.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "membrane": In(_lanes_of(signed(cfg.acc_bits), cfg)),
            "weights": In(_lanes_of(signed(cfg.weight_bits), cfg)),
            "offsets": In(_lanes_of(signed(cfg.threshold_offset_bits), cfg)),
            "threshold": In(cfg.membrane_bits - 1),
            "beta": In(cfg.beta_frac_bits),
            "reset_zero": In(1),
            "active": In(range(cfg.lanes + 1)),
            "accumulated": Out(_lanes_of(signed(cfg.acc_bits), cfg)),
            "fired": Out(cfg.lanes),
            "fired_count": Out(range(cfg.lanes + 1)),
            "next_membrane": Out(_lanes_of(signed(cfg.acc_bits), cfg)),   # in the stored word's width
        })

    def elaborate(self, platform):
        cfg = self.cfg
        M, F = cfg.membrane_bits, cfg.beta_frac_bits
        lo, hi = cfg.membrane_min, cfg.membrane_max
        m = Module()
        for k in range(cfg.lanes):
            m.d.comb += self.accumulated[k].eq(self.membrane[k] + self.weights[k])
            potential = Signal(signed(M), name=f"potential{k}")
            stored = self.membrane[k]
            m.d.comb += potential.eq(Mux(stored > hi, hi, Mux(stored < lo, lo, stored)))
            threshold = Signal(signed(M + 1), name=f"threshold{k}")
            m.d.comb += threshold.eq(self.threshold + self.offsets[k])
            m.d.comb += self.fired[k].eq((potential > threshold) & (k < self.active))
            leaked = Signal(signed(M), name=f"leaked{k}")
            m.d.comb += leaked.eq((potential * self.beta + (1 << (F - 1))) >> F)
            subtracted = leaked - threshold
            subtracted = Mux(subtracted < lo, lo, Mux(subtracted > hi, hi, subtracted))
            m.d.comb += self.next_membrane[k].eq(
                Mux(self.fired[k], Mux(self.reset_zero, 0, subtracted), leaked))
        m.d.comb += self.fired_count.eq(sum(self.fired[k] for k in range(cfg.lanes)))
        return m


class EventList(wiring.Component):
    """The spikes of one layer in one time step, in order: a memory of ``event_depth`` neuron indices.

    ``append`` writes ``append_index`` at the end. ``head`` is the entry at the read position (valid when
    not ``empty``: everything appended has been read); ``advance`` moves to the next entry. ``rewind``
    reads from the start again, ``restart`` also empties the list (these two win over the others).
    The read port is addressed one entry ahead and never beyond the memory; it is transparent to the
    write port, so an entry appended in one cycle is the ``head`` in the next.
    """

    class Signature(wiring.Signature):
        """Signature of an event list (the list's view).

        Parameters
        ----------
        index_bits : :class:`int`
            Width of a neuron index.

        Members
        -------
        append : :py:`In(1)`
            Write ``append_index`` after the last entry.
        append_index : :py:`In(index_bits)`
            The neuron index to append.
        advance : :py:`In(1)`
            Move the read position to the next entry.
        rewind : :py:`In(1)`
            Move the read position to the first entry.
        restart : :py:`In(1)`
            Empty the list.
        head : :py:`Out(index_bits)`
            The entry at the read position.
        empty : :py:`Out(1)`
            Every entry has been read (the read position is at the end).
        """

        def __init__(self, index_bits: int):
            self.index_bits = index_bits
            super().__init__({
                "append": In(1), "append_index": In(index_bits),
                "advance": In(1), "rewind": In(1), "restart": In(1),
                "head": Out(index_bits), "empty": Out(1),
            })

        def __eq__(self, other):
            return type(self) is type(other) and self.index_bits == other.index_bits

        def __repr__(self):
            return f"EventList.Signature(index_bits={self.index_bits})"

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__(EventList.Signature(cfg.index_bits))

    def elaborate(self, platform):
        depth = self.cfg.event_depth
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=unsigned(self.cfg.index_bits), depth=depth, init=[])
        write = storage.write_port()
        read = storage.read_port(transparent_for=(write,))
        read_pos = Signal(range(depth + 1))
        count = Signal(range(depth + 1))
        next_pos = Mux(read_pos == depth - 1, 0, read_pos + 1)   # past the last entry: anything in range
        m.d.comb += [self.head.eq(read.data), self.empty.eq(read_pos == count),
                     read.addr.eq(Mux(self.advance, next_pos, read_pos)),
                     write.addr.eq(count), write.data.eq(self.append_index), write.en.eq(self.append)]
        with m.If(self.append):
            m.d.sync += count.eq(count + 1)
        with m.If(self.advance):
            m.d.sync += read_pos.eq(read_pos + 1)
        with m.If(self.rewind | self.restart):
            m.d.sync += read_pos.eq(0)
        with m.If(self.restart):
            m.d.sync += count.eq(0)
        return m


class PerformanceCounters(wiring.Component):
    """The per-sample counters (:attr:`hw.config.ChipConfig.counter_names`): each adds its field of
    ``increments`` every cycle and saturates at ``2**COUNTER_BITS - 1``; ``clear`` zeroes them all."""

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "increments": In(increment_layout(cfg)),
            "clear": In(1),
            "counts": Out(data.ArrayLayout(COUNTER_BITS, len(cfg.counter_names))),
        })

    def elaborate(self, platform):
        m = Module()
        top = (1 << COUNTER_BITS) - 1
        for k, name in enumerate(self.cfg.counter_names):
            count = Signal(COUNTER_BITS, name=f"count_{name}")
            total = count + self.increments[name]
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(Mux(total > top, top, total))
            m.d.comb += self.counts[k].eq(count)
        return m


class ReadBus(wiring.Component):
    """The host read bus: region 0 reads membrane words through ``membranes`` (the membrane memory's
    host read port), region 1 the ``counters``; ``rd.data`` follows ``rd.addr`` by one cycle."""

    def __init__(self, cfg: ChipConfig, bus: BusMap, membrane_port: wiring.Signature):
        self.cfg, self.bus = cfg, bus
        super().__init__({
            "rd": In(ReadBusSignature(bus)),
            "membranes": In(membrane_port),
            "counters": In(data.ArrayLayout(COUNTER_BITS, len(cfg.counter_names))),
        })

    def elaborate(self, platform):
        bus, n = self.bus, len(self.cfg.counter_names)
        m = Module()
        region = self.rd.addr[bus.read_offset_bits:]
        offset = self.rd.addr[:bus.read_offset_bits]
        last_region = Signal.like(region)
        counter = Signal(COUNTER_BITS)
        counters = Array(self.counters[k] for k in range(n))
        m.d.comb += self.membranes.addr.eq(offset)
        m.d.sync += [last_region.eq(region), counter.eq(counters[offset[:max(1, (n - 1).bit_length())]])]
        m.d.comb += self.rd.data.eq(Mux(last_region == READ_COUNTERS, counter, self.membranes.data))
        return m


class Sequencer(wiring.Component):
    """The phase state machine: EVENT, UPDATE (per layer), OUTPUT (after the last layer) and CLEAR.

    It walks the input events and the groups of the current ``layer``, addresses the weight, offset and
    membrane memories, writes back ``lanes.accumulated`` (EVENT) and ``lanes.next_membrane`` (UPDATE),
    appends fired neurons to the ``events`` list one per cycle, and reports every cycle's activity as
    counter ``increments``. A ``clear`` request (from the host) is taken in any state: the FSM goes to
    CLEAR, which zeroes the membrane memory one word per cycle, then waits for the next time step.
    """

    def __init__(self, cfg: ChipConfig, weight_port: wiring.Signature, offset_port: wiring.Signature,
                 membrane_read_port: wiring.Signature, membrane_write_port: wiring.Signature):
        self.cfg = cfg
        lanes = cfg.lanes
        super().__init__({
            "events_in": In(event_stream_signature(cfg)),
            "events_out": Out(event_stream_signature(cfg)),
            "busy": Out(1),
            "clear": In(1),
            "weights": In(weight_port),                 # read ports: addr out, data in
            "offsets": In(offset_port),
            "membrane_read": In(membrane_read_port),
            "membrane_write": In(membrane_write_port),
            "events": In(EventList.Signature(cfg.index_bits)),   # drives an EventList
            "layer": Out(range(cfg.num_layers)),
            "active_lanes": Out(range(lanes + 1)),      # lanes holding neurons in the group in UPDATE
            "accumulated": In(_lanes_of(signed(cfg.acc_bits), cfg)),
            "fired": In(lanes),
            "fired_count": In(range(lanes + 1)),
            "next_membrane": In(_lanes_of(signed(cfg.acc_bits), cfg)),
            "increments": Out(increment_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        s = self._state(m)
        self._datapath(m, s)
        phases = {"EVENT": self._event_phase, "UPDATE": self._update_phase, "OUTPUT": self._output_phase,
                  "CLEAR": self._clear_phase}
        with m.FSM(name="phase") as fsm:
            for name, phase in phases.items():
                with m.State(name):
                    phase(m, s)
                    with m.If(self.clear):                # a clear request wins in every state
                        m.next = "CLEAR"
        with m.If(self.clear):
            m.d.comb += self.events.restart.eq(1)
            m.d.sync += [s.clear_addr.eq(0), self.layer.eq(0), s.in_event.eq(0), s.have_group.eq(0),
                         s.emitting.eq(0)]
        m.d.comb += self.busy.eq(~fsm.ongoing("EVENT") | (self.layer != 0) | s.in_event)
        self._count(m, s, fsm)
        return m

    def _state(self, m) -> SimpleNamespace:
        """The per-layer constants of the current layer and the signals the phases share."""
        cfg, layer = self.cfg, self.layer
        L, lanes = cfg.num_layers, cfg.lanes
        max_groups = max(cfg.groups(l) for l in range(L))
        group_range, weight_range = range(max_groups + 1), range(cfg.weight_depth + 1)
        s = SimpleNamespace(
            groups=Array(C(cfg.groups(l), group_range) for l in range(L))[layer],
            state_base=Array(C(cfg.state_base(l), range(cfg.state_depth + 1)) for l in range(L))[layer],
            last_group_lanes=Array(C(cfg.fan_out(l) - (cfg.groups(l) - 1) * lanes, range(lanes + 1))
                                   for l in range(L))[layer],
            **_signals(
                # the event source of the EVENT phase (layer 0: the input stream; later: the event list)
                source_valid=1, source_end=1, source_index=cfg.index_bits,
                take=1,                                   # consume the source's event or end token
                stall=1,                                  # waiting for the host
                counting=1,                               # a cycle of the step's schedule
                # EVENT phase: one (weight word, membrane word) read per cycle, accumulated one cycle later
                in_event=1,                               # an event is part-way through its groups
                event_group=group_range,                  # next group of that event
                weight_addr=weight_range,                 # its next weight word
                issue=1,                                  # read one word of an event this cycle
                issue_group=group_range,
                issue_weight_addr=weight_range,
                row_base=weight_range,                    # first weight word of the source event's row
                accumulate=1,                             # the words read last cycle are in the lanes
                accumulate_addr=range(cfg.state_depth + 1),
                # UPDATE phase: group `group` is in the lanes; its spikes leave one per cycle
                have_group=1,                             # the words of `group` have been read
                group=group_range,
                emitting=1,                               # sending the spikes left in `pending_spikes`
                pending_spikes=lanes,
                fetch=1,                                  # read the words of `fetch_group` this cycle
                fetch_group=group_range,
                write_back=1,                             # first cycle of `group`: store it, count it
                # CLEAR
                clear_addr=range(cfg.state_depth + 1),
            ))
        s.last_group = s.group == s.groups - 1
        s.unsent = Mux(s.emitting, s.pending_spikes, self.fired)
        s.unsent_after = s.unsent & (s.unsent - 1)        # all but the lowest spike
        return s

    def _datapath(self, m, s):
        """Memory addresses, the accumulate write-back and the pick of the next spike to append."""
        cfg, lanes = self.cfg, self.cfg.lanes
        with m.Switch(self.layer):
            for l in range(cfg.num_layers):
                with m.Case(l):
                    m.d.comb += s.row_base.eq(cfg.weight_base(l) + s.source_index * cfg.groups(l))
        # (a clear request drops a pending accumulation: CLEAR owns the write port and the counters restart)
        m.d.sync += [s.accumulate.eq(s.issue & ~self.clear), s.accumulate_addr.eq(s.state_base + s.issue_group)]
        m.d.comb += [
            self.weights.addr.eq(s.issue_weight_addr),
            self.membrane_read.addr.eq(Mux(s.fetch, s.state_base + s.fetch_group, s.state_base + s.issue_group)),
            self.offsets.addr.eq(s.state_base + s.fetch_group),
        ]
        with m.If(s.accumulate):
            write = self.membrane_write
            m.d.comb += [write.data.eq(self.accumulated), write.addr.eq(s.accumulate_addr), write.en.eq(1)]
        lowest = Const(0, range(lanes))
        for k in reversed(range(lanes)):
            lowest = Mux(s.unsent[k], k, lowest)
        m.d.comb += [self.active_lanes.eq(Mux(s.last_group, s.last_group_lanes, lanes)),
                     self.events.append_index.eq(s.group * lanes + lowest)]

    def _event_phase(self, m, s):
        events, layer = self.events, self.layer
        m.d.comb += s.counting.eq(1)
        with m.If(layer == 0):
            m.d.comb += [s.source_valid.eq(self.events_in.valid), s.source_end.eq(self.events_in.payload.end),
                         s.source_index.eq(self.events_in.payload.index), self.events_in.ready.eq(~s.in_event)]
        with m.Else():
            m.d.comb += [s.source_valid.eq(1), s.source_end.eq(events.empty), s.source_index.eq(events.head)]
        with m.If(s.in_event):                            # the next group of the current event
            m.d.comb += [s.issue.eq(1), s.issue_group.eq(s.event_group), s.issue_weight_addr.eq(s.weight_addr)]
            m.d.sync += [s.weight_addr.eq(s.weight_addr + 1), s.event_group.eq(s.event_group + 1)]
            with m.If(s.event_group == s.groups - 1):
                m.d.sync += s.in_event.eq(0)
        with m.Elif(s.source_valid & ~s.source_end):      # a new event: its group 0
            m.d.comb += [s.take.eq(1), s.issue.eq(1), s.issue_group.eq(0), s.issue_weight_addr.eq(s.row_base),
                         events.advance.eq(layer != 0)]
            m.d.sync += [s.weight_addr.eq(s.row_base + 1), s.event_group.eq(1), s.in_event.eq(s.groups > 1)]
        with m.Elif(s.source_valid):                      # end of the layer's events
            m.d.comb += [s.take.eq(1), events.restart.eq(1)]
            m.d.sync += [s.have_group.eq(0), s.emitting.eq(0)]
            m.next = "UPDATE"
        with m.Else():
            m.d.comb += s.stall.eq(1)

    def _update_phase(self, m, s):
        m.d.comb += s.counting.eq(1)
        with m.If(~s.have_group):                         # fill: read group 0
            m.d.comb += [s.fetch.eq(1), s.fetch_group.eq(0)]
            m.d.sync += [s.have_group.eq(1), s.group.eq(0)]
        with m.Else():
            m.d.comb += s.write_back.eq(~s.emitting)
            with m.If(s.unsent != 0):
                m.d.comb += self.events.append.eq(1)
            with m.If(s.unsent_after != 0):
                m.d.sync += [s.pending_spikes.eq(s.unsent_after), s.emitting.eq(1)]
            with m.Else():                                # the group is done
                m.d.sync += s.emitting.eq(0)
                with m.If(s.last_group):
                    m.d.sync += s.have_group.eq(0)
                    with m.If(self.layer == self.cfg.num_layers - 1):
                        m.next = "OUTPUT"
                    with m.Else():
                        m.d.sync += [self.layer.eq(self.layer + 1), s.in_event.eq(0)]
                        m.next = "EVENT"
                with m.Else():
                    m.d.comb += [s.fetch.eq(1), s.fetch_group.eq(s.group + 1)]
                    m.d.sync += s.group.eq(s.group + 1)
        with m.If(s.write_back):
            write = self.membrane_write
            m.d.comb += [write.data.eq(self.next_membrane), write.addr.eq(s.state_base + s.group), write.en.eq(1)]

    def _output_phase(self, m, s):
        events, out = self.events, self.events_out
        m.d.comb += [s.counting.eq(1), s.source_end.eq(events.empty),
                     out.valid.eq(1), out.payload.index.eq(Mux(events.empty, 0, events.head)),
                     out.payload.end.eq(events.empty),
                     s.take.eq(out.ready), s.stall.eq(~out.ready)]
        with m.If(s.take & ~s.source_end):
            m.d.comb += events.advance.eq(1)
        with m.If(s.take & s.source_end):
            m.d.comb += events.rewind.eq(1)
            m.d.sync += [self.layer.eq(0), s.in_event.eq(0)]
            m.next = "EVENT"

    def _clear_phase(self, m, s):
        write = self.membrane_write
        m.d.comb += [write.addr.eq(s.clear_addr), write.en.eq(1), write.data.eq(0)]
        m.d.sync += s.clear_addr.eq(s.clear_addr + 1)
        with m.If(s.clear_addr == self.cfg.state_depth - 1):
            m.next = "EVENT"

    def _count(self, m, s, fsm):
        """This cycle's increment of every performance counter."""
        inc, layer, lanes = self.increments, self.layer, self.cfg.lanes
        m.d.comb += [
            inc.cycles.eq(s.counting & ~s.stall),
            inc.stall_cycles.eq(s.stall),
            inc.in_events.eq(s.take & ~s.source_end & (layer == 0) & fsm.ongoing("EVENT")),
            inc.synops.eq(Mux(s.issue, Mux(s.issue_group == s.groups - 1, s.last_group_lanes, lanes), 0)),
            inc.weight_reads.eq(s.issue),
            inc.state_reads.eq(s.issue | s.fetch),
            inc.state_writes.eq(s.accumulate | s.write_back),
            inc.neuron_updates.eq(Mux(s.write_back, self.active_lanes, 0)),
            inc.out_events.eq(fsm.ongoing("OUTPUT") & s.take & ~s.source_end),
        ]
        for l in range(self.cfg.num_layers):
            m.d.comb += inc[f"spikes_l{l}"].eq(Mux(s.write_back & (layer == l), self.fired_count, 0))


class LifCore(wiring.Component):
    """The accelerator. ``weights``/``threshold_offsets`` (optional) become the memories' power-up contents;
    the registers power up with ``cfg``'s beta, threshold and reset mode. ``busy`` is low only while the core
    waits for the first token of a new time step."""

    def __init__(self, cfg: ChipConfig, weights: Sequence[np.ndarray] | None = None,
                 threshold_offsets: Sequence[np.ndarray] | None = None):
        self.cfg = cfg
        self.bus = BusMap(cfg)
        self._weight_init = weight_words(cfg, weights) if weights is not None else []
        self._offset_init = offset_words(cfg, threshold_offsets) if threshold_offsets is not None else []
        super().__init__({
            "events_in": In(event_stream_signature(cfg)),
            "events_out": Out(event_stream_signature(cfg)),
            "wr": In(WriteBusSignature(self.bus)),
            "rd": In(ReadBusSignature(self.bus)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()

        def word(shape):
            return unsigned(_lanes_of(shape, cfg).size)
        m.submodules.weight_memory = weight_memory = memory.Memory(
            shape=word(signed(cfg.weight_bits)), depth=cfg.weight_depth, init=self._weight_init)
        m.submodules.offset_memory = offset_memory = memory.Memory(
            shape=word(signed(cfg.threshold_offset_bits)), depth=cfg.state_depth, init=self._offset_init)
        m.submodules.membrane_memory = membrane_memory = memory.Memory(
            shape=word(signed(cfg.acc_bits)), depth=cfg.state_depth, init=[])
        weight_write, offset_write = weight_memory.write_port(), offset_memory.write_port()
        weight_read, offset_read = weight_memory.read_port(), offset_memory.read_port()
        membrane_write = membrane_memory.write_port()
        membrane_read = membrane_memory.read_port(transparent_for=(membrane_write,))
        membrane_host_read = membrane_memory.read_port()

        m.submodules.registers = registers = RuntimeRegisters(
            cfg, self.bus, weight_write.signature, offset_write.signature)
        m.submodules.sequencer = sequencer = Sequencer(
            cfg, weight_read.signature, offset_read.signature, membrane_read.signature, membrane_write.signature)
        m.submodules.lanes = lanes = NeuronLanes(cfg)
        m.submodules.event_list = event_list = EventList(cfg)
        m.submodules.counters = counters = PerformanceCounters(cfg)
        m.submodules.read_bus = read_bus = ReadBus(cfg, self.bus, membrane_host_read.signature)

        wiring.connect(m, wiring.flipped(self.wr), registers.wr)
        wiring.connect(m, wiring.flipped(self.rd), read_bus.rd)
        wiring.connect(m, wiring.flipped(self.events_in), sequencer.events_in)
        wiring.connect(m, sequencer.events_out, wiring.flipped(self.events_out))
        wiring.connect(m, registers.weights, weight_write)
        wiring.connect(m, registers.offsets, offset_write)
        wiring.connect(m, sequencer.weights, weight_read)
        wiring.connect(m, sequencer.offsets, offset_read)
        wiring.connect(m, sequencer.membrane_read, membrane_read)
        wiring.connect(m, sequencer.membrane_write, membrane_write)
        wiring.connect(m, sequencer.events, event_list)
        wiring.connect(m, read_bus.membranes, membrane_host_read)
        m.d.comb += [
            registers.layer.eq(sequencer.layer),
            sequencer.clear.eq(registers.clear),
            counters.clear.eq(registers.clear),
            self.busy.eq(sequencer.busy),
            # the lanes see the membrane, weight and offset words read in the previous cycle
            lanes.membrane.eq(membrane_read.data), lanes.weights.eq(weight_read.data),
            lanes.offsets.eq(offset_read.data),
            lanes.threshold.eq(registers.threshold), lanes.beta.eq(registers.beta),
            lanes.reset_zero.eq(registers.reset_zero), lanes.active.eq(sequencer.active_lanes),
            sequencer.accumulated.eq(lanes.accumulated), sequencer.fired.eq(lanes.fired),
            sequencer.fired_count.eq(lanes.fired_count), sequencer.next_membrane.eq(lanes.next_membrane),
            counters.increments.eq(sequencer.increments),
            read_bus.counters.eq(counters.counts),
        ]
        return m
