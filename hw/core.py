"""Sparsity-aware LIF accelerator core (Amaranth 0.5).

One shared datapath of ``lanes`` neuron units serves all layers in turn. Per time step, for each layer:

1. **EVENT** — each input address event ``i`` reads the ``groups(l)`` weight words of row ``i`` and adds
   them into the membrane words, one word (``lanes`` synapses) per cycle. Layer 0 takes events from the
   ``events_in`` stream (a token with ``end=1`` closes the step); later layers from the internal event
   list written by the previous layer. No event, no synaptic work. 1 cycle closes the phase.
2. **UPDATE** — a pipeline of ``cfg.update_latency`` stages (read, saturate, compare and multiply,
   round, clamp and write back) fills, then groups leave it back to back; the group's spikes are
   appended to the event list one per cycle (a group costs ``max(1, spikes)`` cycles: the pipeline holds
   while a group has more than one spike left).

The two phases are two engines: with ``cfg.overlap``, layer ``l``'s UPDATE and layer ``l + 1``'s EVENT phase
run at the same time when ``l + 1`` is an fc layer (:meth:`hw.config.ChipConfig.overlapped`): each spike's
event starts the cycle after the spike is appended, and the two layers' membranes live in different
memories (banks by layer parity). After the last layer, **OUTPUT** streams the event list to
``events_out`` and an ``end`` token (whose ``index`` is 0). ``docs/chip.md`` specifies the arithmetic and
the schedule; :mod:`sim.model` is its bit- and cycle-exact model.

:class:`LifCore` wires these components around the weight, threshold-offset and membrane memories:

* :class:`RuntimeRegisters` — beta, threshold and reset-mode registers; decodes the host write bus
  into them, into the two host-written memories and into clear requests;
* :class:`Sequencer` — the event engine and the update engine and the phase state machine (STEP, OUTPUT,
  CLEAR): walks events and groups, addresses the memories, accumulates and writes back membranes, emits
  spikes;
* :class:`NeuronLanes` — per-lane arithmetic, pipelined: accumulate, saturate, fire, leak, reset;
* :class:`WeightMemory` — the weight memory in :class:`WeightBank` s with registered read data (built from
  the target's block RAMs or SPRAM, :meth:`WeightMemory.bank_kind`);
* :class:`EventList` — the spikes of one layer in one step, written by UPDATE, read by the next EVENT
  phase or by OUTPUT;
* :class:`PerformanceCounters` — the saturating per-sample counters;
* :class:`ReadBus` — the registered host read mux over the membrane banks and the counters.
"""
from __future__ import annotations

import functools
import operator
from types import SimpleNamespace
from typing import Sequence

import numpy as np
from amaranth.hdl import (Array, C, Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Shape, Signal,
                          signed, unsigned)
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.bus import READ_COUNTERS, REGION_OFFSETS, REGION_REGS, REGION_WEIGHTS, BusMap, offset_words, weight_words
from hw.config import CONV_DECODE_LATENCY, COUNTER_BITS, ChipConfig, clog2


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


def _row_bits(cfg: ChipConfig) -> int:
    """Width of a weight-memory address (one past the last word included)."""
    return Shape.cast(range(cfg.weight_depth + 1)).width


def _bank_addr(cfg: ChipConfig) -> range:
    """A membrane-bank address (one past the deepest bank's last word included)."""
    return range(max(cfg.bank_depth(b) for b in range(cfg.state_banks)) + 1)


def _per_layer(cfg: ChipConfig, layer, f, shape=None):
    """The constant ``f(l)`` of layer ``layer`` (a signal), as a mux of per-layer constants."""
    values = [int(f(l)) for l in range(cfg.num_layers)]
    return Array(C(v, shape or range(max(values) + 1)) for v in values)[layer]


def _lanes_of(shape, cfg: ChipConfig) -> data.ArrayLayout:
    return data.ArrayLayout(shape, cfg.lanes)


def increment_layout(cfg: ChipConfig) -> data.StructLayout:
    """One field per counter of :attr:`hw.config.ChipConfig.counter_names`: its increment this cycle."""
    return data.StructLayout({name: range(max(cfg.lanes, 2) + 1) for name in cfg.counter_names})


# -- components -------------------------------------------------------------------------------------------
class RuntimeRegisters(wiring.Component):
    """Beta, threshold and reset-mode registers, and the decoder of the host write bus.

    Register writes update the registers; weight and offset writes go straight to the memories' write
    ports; a command write with bit 0 set raises ``clear`` for one cycle, the cycle after the write (a
    register: the host bus's decoder stays out of the core's paths). The registers power up with
    ``cfg``'s beta, threshold and reset mode. ``beta`` and ``threshold`` are registers that show the registers
    of ``layer`` one cycle later (the update pipeline reads them two or more cycles after its layer is set,
    and the leak multiplier's input comes from a register instead of through the layer mux).
    """

    def __init__(self, cfg: ChipConfig, bus: BusMap, weight_port: wiring.Signature,
                 offset_port: wiring.Signature):
        self.cfg, self.bus = cfg, bus
        super().__init__({
            "wr": In(WriteBusSignature(bus)),
            "weights": In(weight_port),            # drives the weight memory's write port
            "offsets": In(offset_port),            # drives the threshold-offset memory's write port
            "layer": In(range(cfg.num_layers)),
            "beta": Out(cfg.beta_frac_bits, init=cfg.beta_int[0]),
            "threshold": Out(cfg.membrane_bits - 1, init=cfg.threshold[0]),
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
        m.d.sync += [self.beta.eq(betas[self.layer]), self.threshold.eq(thresholds[self.layer])]
        m.d.comb += self.reset_zero.eq(reset_zero)

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
        m.d.sync += self.clear.eq(self.wr.en & (region == REGION_REGS) & (offset == bus.reg_command) &
                                  self.wr.data[0])
        return m


class NeuronLanes(wiring.Component):
    """The arithmetic of ``lanes`` neurons (``docs/chip.md``, "Arithmetic"), pipelined.

    ``membrane``, ``membrane_update``, ``weights`` and ``offsets`` are the memories' read data. EVENT
    (every cycle): the membrane word of the event engine and the weight word are registered (the membrane
    register takes ``accumulated`` instead when ``forward``: the word being written back this cycle is the one
    just read); ``accumulated`` is the registered ``membrane + weights`` lane by lane. UPDATE, stage by stage
    (a stage moves on when ``advance``):

    * stage 1→2: the update engine's membrane word (``accumulated`` instead when ``forward_update``) and
      the offsets are registered;
    * stage 2: saturate the registered membrane word to ``potential``, ``threshold + offsets``;
    * stage 3: ``fired`` = above the threshold (only the first ``active`` lanes: the last group of a layer
      may be partial), ``potential · beta`` (registered product: a DSP multiply on its own);
    * stage 4: the rounding adder for the leak and, in parallel, the one for the subtract reset;
    * stage 5 (``fired``, ``fired_count``, ``next_membrane``): clamp and select the stored word.

    The sequencer registers the read addresses, so a group it fetches in cycle ``c`` is read in ``c + 1``
    and is in stage 5 in cycle ``c + UPDATE_LATENCY``.
    """

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "membrane": In(_lanes_of(signed(cfg.acc_bits), cfg)),          # the event engine's word
            "membrane_update": In(_lanes_of(signed(cfg.acc_bits), cfg)),   # the update engine's word
            "weights": In(_lanes_of(signed(cfg.weight_bits), cfg)),
            "offsets": In(_lanes_of(signed(cfg.threshold_offset_bits), cfg)),
            "threshold": In(cfg.membrane_bits - 1),
            "beta": In(cfg.beta_frac_bits),
            "reset_zero": In(1),
            "active": In(range(cfg.lanes + 1)),          # for the group in stage 3
            "advance": In(1),
            "forward": In(1),
            "forward_update": In(1),
            "accumulated": Out(_lanes_of(signed(cfg.acc_bits), cfg)),
            "fired": Out(cfg.lanes),
            "fired_count": Out(range(cfg.lanes + 1)),
            "fired_next": Out(cfg.lanes),                 # `fired` of the group in stage 4
            "next_membrane": Out(_lanes_of(signed(cfg.acc_bits), cfg)),   # in the stored word's width
        })

    def elaborate(self, platform):
        cfg = self.cfg
        M, F = cfg.membrane_bits, cfg.beta_frac_bits
        lo, hi = cfg.membrane_min, cfg.membrane_max
        m = Module()
        fired4 = self.fired_next
        stage = []                                        # the stage registers' updates, under `advance`
        for k in range(cfg.lanes):
            # EVENT: the event engine's membrane word and the weight word, every cycle
            sum_word = Signal(signed(cfg.acc_bits), name=f"sum_word{k}")
            weight = Signal(signed(cfg.weight_bits), name=f"weight{k}")
            m.d.sync += [sum_word.eq(Mux(self.forward, self.accumulated[k], self.membrane[k])),
                         weight.eq(self.weights[k])]
            m.d.comb += self.accumulated[k].eq(sum_word + weight)
            # UPDATE stage 1 -> 2: the update engine's membrane word and the offsets
            word = Signal(signed(cfg.acc_bits), name=f"word{k}")
            offset = Signal(signed(cfg.threshold_offset_bits), name=f"offset{k}")
            stage += [word.eq(Mux(self.forward_update, self.accumulated[k], self.membrane_update[k])),
                      offset.eq(self.offsets[k])]
            # stage 2 -> 3: saturate; threshold
            potential = Signal(signed(M), name=f"potential{k}")
            threshold3 = Signal(signed(M + 1), name=f"threshold{k}")
            stage += [potential.eq(Mux(word > hi, hi, Mux(word < lo, lo, word))),
                      threshold3.eq(self.threshold + offset)]
            # stage 3 -> 4: compare; leak multiply; the subtract reset's bias
            product = Signal(signed(M + F + 1), name=f"product{k}")
            bias = Signal(signed(M + F + 2), name=f"bias{k}")
            stage += [fired4[k].eq((potential > threshold3) & (k < self.active)),
                      product.eq(potential * self.beta),
                      bias.eq((1 << (F - 1)) - (threshold3 << F))]
            # stage 4 -> 5: round the leak; leaked - threshold = (product + bias) >> F
            leaked = Signal(signed(M), name=f"leaked{k}")
            subtracted = Signal(signed(M + 2), name=f"subtracted{k}")
            stage += [leaked.eq((product + (1 << (F - 1))) >> F), subtracted.eq((product + bias) >> F),
                      self.fired[k].eq(fired4[k])]
            # stage 5: clamp, reset, select
            clamped = Mux(subtracted < lo, lo, Mux(subtracted > hi, hi, subtracted))
            m.d.comb += self.next_membrane[k].eq(Mux(self.fired[k], Mux(self.reset_zero, 0, clamped), leaked))
        stage += [self.fired_count.eq(sum(fired4[k] for k in range(cfg.lanes)))]
        with m.If(self.advance):
            m.d.sync += stage
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
        row_bits : :class:`int`
            Width of a weight-memory address.

        Members
        -------
        append : :py:`In(1)`
            Write ``append_index`` after the last entry.
        append_index : :py:`In(index_bits)`
            The neuron index to append.
        append_row : :py:`In(row_bits)`
            Stored with it: the first weight word of its row in the next layer (so that reading an
            event back needs no arithmetic before the weight memory's address).
        advance : :py:`In(1)`
            Move the read position to the next entry.
        rewind : :py:`In(1)`
            Move the read position to the first entry.
        restart : :py:`In(1)`
            Empty the list.
        head : :py:`Out(index_bits)`
            The entry at the read position.
        head_row : :py:`Out(row_bits)`
            Its ``append_row``.
        empty : :py:`Out(1)`
            Every entry has been read (the read position is at the end).
        """

        def __init__(self, index_bits: int, row_bits: int):
            self.index_bits, self.row_bits = index_bits, row_bits
            super().__init__({
                "append": In(1), "append_index": In(index_bits), "append_row": In(row_bits),
                "advance": In(1), "rewind": In(1), "restart": In(1),
                "head": Out(index_bits), "head_row": Out(row_bits), "empty": Out(1),
            })

        def __eq__(self, other):
            return (type(self) is type(other) and self.index_bits == other.index_bits and
                    self.row_bits == other.row_bits)

        def __repr__(self):
            return f"EventList.Signature(index_bits={self.index_bits}, row_bits={self.row_bits})"

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__(EventList.Signature(event_index_bits(cfg), _row_bits(cfg)))

    def elaborate(self, platform):
        depth = self.cfg.event_depth
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=unsigned(self.signature.index_bits), depth=depth, init=[])
        # distributed RAM where there is (ECP5): a block RAM's read data is too slow for the path into the
        # weight memory's address
        distributed = getattr(platform, "family", None) == "ecp5"
        m.submodules.rows = rows = memory.Memory(shape=unsigned(_row_bits(self.cfg)), depth=depth, init=[],
                                                 attrs={"ram_style": "distributed"} if distributed else None)
        write, row_write = storage.write_port(), rows.write_port()
        read = storage.read_port(transparent_for=(write,))
        row_read = rows.read_port(transparent_for=(row_write,))
        read_pos = Signal(range(depth + 1))
        count = Signal(range(depth + 1))
        next_pos = Mux(read_pos == depth - 1, 0, read_pos + 1)   # past the last entry: anything in range
        m.d.comb += [self.head.eq(read.data), self.head_row.eq(row_read.data),
                     read.addr.eq(Mux(self.advance, next_pos, read_pos)), row_read.addr.eq(read.addr),
                     write.addr.eq(count), write.data.eq(self.append_index), write.en.eq(self.append),
                     row_write.addr.eq(count), row_write.data.eq(self.append_row), row_write.en.eq(self.append)]
        # the positions' next values, and `empty` as a register of them (`read_pos == count`: the engines'
        # decisions start at a register, not at a comparator)
        read_pos_next = Mux(self.rewind | self.restart, 0, Mux(self.advance, read_pos + 1, read_pos))
        count_next = Mux(self.restart, 0, Mux(self.append, count + 1, count))
        empty = Signal(init=1)
        m.d.sync += [read_pos.eq(read_pos_next), count.eq(count_next), empty.eq(read_pos_next == count_next)]
        m.d.comb += self.empty.eq(empty)
        return m


class PerformanceCounters(wiring.Component):
    """The per-sample counters (:attr:`hw.config.ChipConfig.counter_names`): each adds its field of
    ``increments`` every cycle (one cycle later: the increments are registered) and saturates at
    ``2**COUNTER_BITS - 1``; ``clear`` zeroes them all."""

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
        # the increments are registered first (the counters lag the activity by one cycle; LifCore stays
        # busy one cycle longer): the paths that decide them end at this register, not at the adders
        pending = Signal.like(self.increments)
        m.d.sync += pending.eq(Mux(self.clear, 0, self.increments))
        for k, name in enumerate(self.cfg.counter_names):
            count = Signal(COUNTER_BITS, name=f"count_{name}")
            total = count + pending[name]
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(Mux(total > top, top, total))
            m.d.comb += self.counts[k].eq(count)
        return m


class WeightBank(wiring.Component):
    """One bank of the weight memory: ``depth`` words of ``width`` bits, a write port and a read port whose
    data comes from a register after the RAM (reads take two cycles: ``read.data`` shows the word at the
    ``read.addr`` of two cycles before if ``read.en`` was high then, else it holds).

    Members
    -------
    write : ``Out(memory.WritePort.Signature(addr_width=ceil_log2(depth), shape=width))``
        The host's write port.
    read : ``Out(memory.ReadPort.Signature(addr_width=ceil_log2(depth), shape=width))``
        The read port; ``read.en`` low: no RAM read, ``read.data`` holds.

    ``kind`` (:data:`KINDS`) is what the bank is built from:

    * ``"memory"`` — an :class:`amaranth.lib.memory.Memory` and a register (simulation; block RAM inferred
      by Yosys on any FPGA);
    * ``"dp16kd"`` — ECP5: ``ceil(width / 36)`` ``DP16KD`` block RAMs in their 512 x 36 pseudo-dual-port mode
      (as Yosys maps the memory), the register being the block RAM's own output registers
      (``REGMODE_A = REGMODE_B = "OUTREG"``: in this mode the word's low half leaves on port A's pins through
      port A's register, the high half on port B's): the read data leaves the block RAM from a register, not
      from its array (nextpnr: 0.97 instead of 5.61 ns clock-to-output),
      and no fabric register has to sit between the block RAM and the bank select;
    * ``"spram"`` — iCE40 UltraPlus: ``ceil(width / 16)`` ``SB_SPRAM256KA`` (16K x 16 single-port RAMs, one
      port shared by the host's writes and the reads; a write wins) and a register. SPRAM is not
      initialised by the bitstream: such a bank starts undefined and the host writes the weights.

    ``sim/primitives/<family>`` models the primitives for simulating a build (:func:`hw.export.verilog_text`
    with ``family=``). A read in the cycle the host writes the same word is undefined in every kind."""

    KINDS = ("memory", "dp16kd", "spram")
    #: words per bank of each kind (a DP16KD in its 36-bit mode, an SPRAM)
    DEPTH = {"memory": 512, "dp16kd": 512, "spram": 16384}
    TILE_WIDTH = {"dp16kd": 36, "spram": 16}

    def __init__(self, width: int, depth: int, init: Sequence[int] = (), kind: str = "memory", name: str = "bank"):
        if kind not in self.KINDS:
            raise ValueError(f"kind={kind!r}: allowed values are {', '.join(self.KINDS)}")
        if not 1 <= depth <= self.DEPTH[kind]:
            raise ValueError(f"depth={depth}: a {kind} bank holds 1 to {self.DEPTH[kind]} words")
        self.width, self.depth, self.kind, self.bank_name = width, depth, kind, name
        self.init = list(init) + [0] * (depth - len(init))
        if kind == "spram" and any(self.init):
            raise ValueError("weights: SPRAM is not initialised by the bitstream; build without weights and "
                             "write them over the host link")
        addr_width = Shape.cast(range(depth)).width
        super().__init__({
            "write": Out(memory.WritePort.Signature(addr_width=addr_width, shape=width)),
            "read": Out(memory.ReadPort.Signature(addr_width=addr_width, shape=width)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.kind == "dp16kd":
            self._dp16kd(m)
            return m
        data = Signal(self.width, name=f"{self.bank_name}_data")
        m.d.comb += self.read.data.eq(data)
        if self.kind == "spram":
            m.d.sync += data.eq(self._spram(m))
            return m
        mem = memory.Memory(shape=self.width, depth=self.depth, init=self.init)
        m.submodules[self.bank_name] = mem
        write, read = mem.write_port(), mem.read_port()
        m.d.comb += [write.addr.eq(self.write.addr), write.data.eq(self.write.data), write.en.eq(self.write.en),
                     read.addr.eq(self.read.addr), read.en.eq(self.read.en)]
        m.d.sync += data.eq(read.data)
        return m

    @classmethod
    def initvals(cls, words: Sequence[int]) -> list[int]:
        """The 64 ``INITVAL_xx`` of a ``DP16KD`` holding 36-bit ``words`` in its 512 x 36 mode: 18-bit halves
        (the low one first), 16 to a 320-bit row at a stride of 20 bits (Yosys's ``brams_map_16kd.v``)."""
        depth = cls.DEPTH["dp16kd"]
        halves = [(w >> (18 * h)) & 0x3FFFF for w in list(words) + [0] * (depth - len(words)) for h in (0, 1)]
        return [sum(halves[16 * r + i] << (20 * i) for i in range(16)) for r in range(64)]

    def _tiles(self):
        T = self.TILE_WIDTH[self.kind]
        return T, -(-self.width // T)

    def _dp16kd(self, m):
        T, tiles = self._tiles()
        write_data, read_data = Signal(T * tiles), Signal(T * tiles)
        m.d.comb += [write_data.eq(self.write.data), self.read.data.eq(read_data)]
        write_addr, read_addr = Signal(9), Signal(9)
        m.d.comb += [write_addr.eq(self.write.addr), read_addr.eq(self.read.addr)]
        for t in range(tiles):
            words = [(w >> (T * t)) & ((1 << T) - 1) for w in self.init]
            ports = {}
            for i in range(18):          # 36-bit words: bits 0-17 on port A's pins, 18-35 on port B's
                ports |= {f"i_DIA{i}": write_data[T * t + i], f"i_DIB{i}": write_data[T * t + 18 + i],
                          f"o_DOA{i}": read_data[T * t + i], f"o_DOB{i}": read_data[T * t + 18 + i]}
            for i in range(14):          # word address on bits 13..5; bits 3..0 of port A are the byte enables
                ports[f"i_ADA{i}"] = write_addr[i - 5] if i >= 5 else C(int(i < 4), 1)
                ports[f"i_ADB{i}"] = read_addr[i - 5] if i >= 5 else C(0, 1)
            m.submodules[f"{self.bank_name}_tile{t}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=T, p_DATA_WIDTH_B=T, p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="AUTO",
                **{f"p_INITVAL_{r:02X}": Const(v, 320) for r, v in enumerate(self.initvals(words))},
                i_CLKA=ClockSignal("sync"), i_WEA=C(1, 1), i_CEA=self.write.en, i_OCEA=C(1, 1),
                i_RSTA=ResetSignal("sync", allow_reset_less=True),
                i_CLKB=ClockSignal("sync"), i_WEB=C(0, 1), i_CEB=self.read.en, i_OCEB=C(1, 1),
                i_RSTB=ResetSignal("sync", allow_reset_less=True),
                **{f"i_CS{p}{i}": C(0, 1) for p in "AB" for i in range(3)}, **ports)

    def _spram(self, m):
        """The SPRAM tiles; returns their read data (a write wins the port)."""
        T, tiles = self._tiles()
        write_data, read_data, addr = Signal(T * tiles), Signal(T * tiles), Signal(14)
        m.d.comb += [write_data.eq(self.write.data),
                     addr.eq(Mux(self.write.en, self.write.addr, self.read.addr))]
        for t in range(tiles):
            m.submodules[f"{self.bank_name}_tile{t}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr, i_DATAIN=write_data[T * t:T * (t + 1)], i_MASKWREN=C(0b1111, 4),
                i_WREN=self.write.en, i_CHIPSELECT=self.write.en | self.read.en, i_CLOCK=ClockSignal("sync"),
                i_STANDBY=C(0, 1), i_SLEEP=C(0, 1), i_POWEROFF=C(1, 1),
                o_DATAOUT=read_data[T * t:T * (t + 1)])
        return read_data[:self.width]


class WeightMemory(wiring.Component):
    """The weight memory in :class:`WeightBank` s. The read address and ``read.en`` are registered (they fan
    out to every bank) and each bank's read data comes from a register before the bank select: reads take
    three cycles (``read.data`` shows the word at the ``read.addr`` of three cycles before, if ``read.en`` was
    high then).

    Only the addressed bank's read port is enabled, and only if ``read.en`` was high: the other banks hold
    their data (no RAM read). ``read.en`` is high unless driven (its reset value): a reader that drives
    it with "a weight word is read this cycle" saves the RAM reads of the other cycles; on those
    cycles ``read.data`` is whatever the bank last read (not a new word).

    The banks' kind follows the platform (:meth:`bank_kind`): ``DP16KD`` block RAMs with output registers on
    an ECP5, SPRAM on an iCE40 UltraPlus whose block RAMs the weights would not leave room in, else inferred
    memories of ``BANK_DEPTH`` words.

    A bank read in the cycle the host writes the same word returns an undefined word (write weights between
    time steps): :data:`SYNTH_COLLISION_UNDEFINED` tells Yosys so, which spares the bypass it otherwise builds
    for that collision (the block RAMs leave it undefined) in front of each bank's read-data register."""

    BANK_DEPTH = WeightBank.DEPTH["memory"]
    #: iCE40 UltraPlus: the weights go to SPRAM if, in 256 x 16 block RAMs, they would need more than these of
    #: the UP5K's 30 (the rest of the chip — membranes, event list, offsets — needs up to 6)
    EBR_BUDGET = 24
    #: Yosys command (run after reading the design) marking the banks' read ports as undefined on a collision with
    #: their write port; the banks are the memories whose name starts with ``bank``
    SYNTH_COLLISION_UNDEFINED = r"setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:MEMID=\bank* %i"

    def __init__(self, cfg: ChipConfig, init: Sequence[int]):
        self.cfg, self.init = cfg, list(init)
        shape = unsigned(_lanes_of(signed(cfg.weight_bits), cfg).size)
        addr_width = Shape.cast(range(cfg.weight_depth)).width
        super().__init__({
            # the memory's view of a write port and a read port (``read.en``: 1 unless driven)
            "write": Out(memory.WritePort.Signature(addr_width=addr_width, shape=shape)),
            "read": Out(memory.ReadPort.Signature(addr_width=addr_width, shape=shape)),
        })

    @classmethod
    def bank_kind(cls, cfg: ChipConfig, platform) -> str:
        """The :class:`WeightBank` kind of ``cfg``'s weight memory on ``platform`` (None: simulation)."""
        family = str(getattr(platform, "family", "")).lower()          # Amaranth's: "ecp5", "iCE40", ...
        if family == "ecp5":
            return "dp16kd"
        if family == "ice40" and str(getattr(platform, "device", "")).startswith("iCE40UP"):
            depth, B = cfg.weight_depth, cls.BANK_DEPTH
            ebr = sum(-(-min(B, depth - base) // 256) for base in range(0, depth, B)) * -(-cfg.lanes * cfg.weight_bits // 16)
            if ebr > cls.EBR_BUDGET:
                return "spram"
        return "memory"

    def elaborate(self, platform):
        m = Module()
        kind = self.bank_kind(self.cfg, platform)
        depth, B = self.cfg.weight_depth, (self.BANK_DEPTH if kind == "memory" else WeightBank.DEPTH[kind])
        bank_bits = (B - 1).bit_length()
        banks = []
        addr = Signal.like(self.read.addr)
        en = Signal(init=1)
        m.d.sync += [addr.eq(self.read.addr), en.eq(self.read.en)]
        for b, base in enumerate(range(0, depth, B)):
            bank = WeightBank(self.read.data.shape().width, min(B, depth - base), self.init[base:base + B],
                              kind=kind, name=f"bank{b}")
            m.submodules[f"bank{b}"] = bank
            m.d.comb += [bank.write.addr.eq(self.write.addr), bank.write.data.eq(self.write.data),
                         bank.write.en.eq(self.write.en & (self.write.addr[bank_bits:] == b)),
                         bank.read.addr.eq(addr), bank.read.en.eq(en & (addr[bank_bits:] == b))]
            banks.append(bank.read.data)
        select = Signal(range(len(banks)))
        select_data = Signal.like(select)
        m.d.sync += [select.eq(addr[bank_bits:]), select_data.eq(select)]
        m.d.comb += self.read.data.eq(Array(banks)[select_data])
        return m


class ReadBus(wiring.Component):
    """The host read bus: region 0 reads membrane words (the host's address map, ``state_base(l) + word``)
    through the membrane memories' host read ports (``membrane_addr`` in bank ``ChipConfig.state_bank(l)``,
    data in ``membrane_data``), region 1 the ``counters``; ``rd.data`` follows ``rd.addr`` by one cycle."""

    def __init__(self, cfg: ChipConfig, bus: BusMap):
        self.cfg, self.bus = cfg, bus
        word = _lanes_of(signed(cfg.acc_bits), cfg)
        bank_addr = _bank_addr(cfg)
        super().__init__({
            "rd": In(ReadBusSignature(bus)),
            "membrane_addr": Out(bank_addr),
            "membrane_data": In(data.ArrayLayout(word, cfg.state_banks)),
            "counters": In(data.ArrayLayout(COUNTER_BITS, len(cfg.counter_names))),
        })

    def elaborate(self, platform):
        cfg, bus, n = self.cfg, self.bus, len(self.cfg.counter_names)
        m = Module()
        region = self.rd.addr[bus.read_offset_bits:]
        offset = self.rd.addr[:bus.read_offset_bits]
        last_region = Signal.like(region)
        counter = Signal(COUNTER_BITS)
        counters = Array(self.counters[k] for k in range(n))
        # the word's bank and its address there: from the layer whose words hold `offset`
        bank, last_bank = Signal(range(cfg.state_banks)), Signal(range(cfg.state_banks))
        m.d.comb += self.membrane_addr.eq(offset)
        for l in range(cfg.num_layers):
            with m.If(offset >= cfg.state_base(l)):
                m.d.comb += [bank.eq(cfg.state_bank(l)),
                             self.membrane_addr.eq(offset - cfg.state_base(l) + cfg.bank_base(l))]
        m.d.sync += [last_region.eq(region), last_bank.eq(bank),
                     counter.eq(counters[offset[:max(1, (n - 1).bit_length())]])]
        membrane = Array(self.membrane_data[b] for b in range(cfg.state_banks))[last_bank]
        m.d.comb += self.rd.data.eq(Mux(last_region == READ_COUNTERS, counter, membrane))
        return m


def aer_fields(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Bits of the c, x and y fields of a packed event ``(y << (bx + bc)) | (x << bc) | c`` for spikes of
    shape (C, H, W) (``ChipConfig.input_address``'s packing)."""
    C, H, W = shape
    return clog2(C), clog2(W), clog2(H)


def event_index_bits(cfg: ChipConfig) -> int:
    """Width of an event-list entry's index: a flat neuron index, or the packed coordinate of a spike
    on its way into a decoded layer."""
    bits = cfg.index_bits
    for l in range(1, cfg.num_layers):
        if cfg.decoded(l):
            bits = max(bits, sum(aer_fields(cfg.raw_in_shape(l))))
    return bits


def const_mul(value, k: int):
    """``value * k`` for a constant ``k >= 0`` as shifts and adds (no multiplier cell: a DSP's delay would
    sit on the decoder's paths)."""
    terms = [value << i for i in range(k.bit_length()) if (k >> i) & 1]
    return sum(terms[1:], terms[0]) if terms else C(0, 1)


def divide_by_constant(value, divisor: int, bound: int):
    """``value // divisor`` for ``0 <= value < bound``: a shift for a power of two, else a multiply by a
    constant reciprocal and a shift (checked exhaustively here, at elaboration)."""
    if divisor == 1:
        return value
    if divisor & (divisor - 1) == 0:
        return value >> (divisor.bit_length() - 1)
    for shift in range(1, 40):
        mul = -(-(1 << shift) // divisor)
        if all((v * mul) >> shift == v // divisor for v in range(bound)):
            return const_mul(value, mul) >> shift
    raise AssertionError("no reciprocal found")   # pragma: no cover (shift 2*bits always works)


class ConvDecoder(wiring.Component):
    """The event decoder and address generator of a conv layer (``docs/chip.md``, "Convolution").

    A token (an event's packed coordinate ``(y << (bx + bc)) | (x << bc) | c`` in the layer's raw input
    shape, or the end of the events) is taken from the source in cycle 0 and moves through two registered
    stages: stage 0 holds its pooled (c, y, x) (fields by the layer's widths, pooling by a constant shift or
    reciprocal multiply), stage 1 its decoded ranges — the first output row ``y'`` and column ``x'`` whose
    receptive field holds it, their counts, and the kernel tap ``(ky0, kx0)`` of the first one. At the end
    of cycle 2 the *visitor* loads the event's first weight word ``w = base + (c·kh + ky0)·kw·G + kx0·G`` and
    state word ``s = base + (y'·W' + x')·G`` (constant multiplies), and from cycle 3 (the fill,
    :data:`hw.config.CONV_DECODE_LATENCY`) issues one (weight word, state word) per cycle: groups ``g``
    innermost (``w += 1``, ``s += 1``), then ``x'`` ascending (``w -= (s + 1)·G - 1``, ``s += 1``), then ``y'``
    ascending (from the row start: ``w -= stride·kw·G``, ``s += W'·G``). The next two tokens are decoded
    while an event is visited, so the visitor takes the next event in the cycle of the current event's last
    visit: no cycle between events. The end token reaches the visitor the same way; the cycle it is there
    is the end-of-events cycle (``end``).

    Layer 0 of a chip with packed input in front of an fc layer (a pool, then fc) uses the same stages
    with one position: its weight row is ``((y // ph)·Wp + x // pw)·C + c``.

    Parameters
    ----------
    cfg : :class:`hw.config.ChipConfig`
        The chip; only its decoded layers (:meth:`hw.config.ChipConfig.decoded`) are decoded. The interface is
        :class:`ConvDecoder.Signature`.
    """

    class Signature(wiring.Signature):
        """Signature of a conv event decoder (the decoder's view).

        Parameters
        ----------
        num_layers : :class:`int`
            Neuron layers of the chip.
        index_bits : :class:`int`
            Width of an event's index (:func:`event_index_bits`).
        weight_depth, state_depth : :class:`int`
            Words of the weight and the state memories.
        groups : :class:`int`
            The most groups of a layer.

        Members
        -------
        layer : :py:`In(range(num_layers))`
            The layer whose events are decoded (constant during its EVENT phase).
        source_valid : :py:`In(1)`
            The source offers a token (gate it with "a decoded layer's EVENT phase").
        source_end : :py:`In(1)`
            The token is the end of the layer's events.
        source_index : :py:`In(index_bits)`
            The event's packed coordinate.
        accept : :py:`Out(1)`
            The decoder takes the offered token at this clock edge (from registers only: a stream's ``ready``).
        take : :py:`Out(1)`
            ``accept & source_valid``: the token is taken.
        issue : :py:`Out(1)`
            A visit is issued this cycle: read ``weight_addr`` and accumulate into ``state_addr``.
        weight_addr : :py:`Out(range(weight_depth + 1))`
            The visit's weight word.
        state_addr : :py:`Out(range(state_depth + 1))`
            The visit's state word.
        group : :py:`Out(range(groups + 1))`
            The visit's group ``g`` (the last one may be partial).
        end : :py:`Out(1)`
            The end-of-events cycle: every event has been issued.
        fill : :py:`Out(1)`
            One of the first ``CONV_DECODE_LATENCY`` cycles with a token in flight and nothing to issue
            (counted in ``cycles``; later idle cycles wait for the host).
        pending : :py:`Out(1)`
            A token is somewhere in the decoder (the core is busy).
        restart : :py:`In(1)`
            Empty the decoder for the next layer or a clear (wins over everything).
        """

        def __init__(self, num_layers: int, index_bits: int, weight_depth: int, state_depth: int, groups: int):
            self.params = (num_layers, index_bits, weight_depth, state_depth, groups)
            super().__init__({
                "layer": In(range(num_layers)),
                "source_valid": In(1), "source_end": In(1), "source_index": In(index_bits),
                "accept": Out(1), "take": Out(1),
                "issue": Out(1), "weight_addr": Out(range(weight_depth + 1)),
                "state_addr": Out(range(state_depth + 1)), "group": Out(range(groups + 1)),
                "end": Out(1), "fill": Out(1), "pending": Out(1),
                "restart": In(1),
            })

        def __eq__(self, other):
            return type(self) is type(other) and self.params == other.params

        def __repr__(self):
            names = ("num_layers", "index_bits", "weight_depth", "state_depth", "groups")
            return "ConvDecoder.Signature(" + ", ".join(f"{n}={v}" for n, v in zip(names, self.params)) + ")"

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        L = cfg.num_layers
        super().__init__(ConvDecoder.Signature(L, event_index_bits(cfg), cfg.weight_depth, cfg.state_depth,
                                               max(cfg.groups(l) for l in range(L))))

    def elaborate(self, platform):
        cfg = self.cfg
        L = cfg.num_layers
        layers = [l for l in range(L) if cfg.decoded(l)]
        m = Module()
        wrange, srange = range(cfg.weight_depth + 1), range(cfg.state_depth + 1)
        max_groups = max(cfg.groups(l) for l in range(L))
        max_c = max(cfg.in_shape(l)[0] for l in layers)
        max_y = max(max(cfg.in_shape(l)[1:]) for l in layers)           # pooled coordinates
        max_o = max(max(cfg.out_shape(l)[1:]) for l in layers)          # output rows/columns
        coord = range(max(max_y, max_o, 8) + 8)                         # also kernel taps (k <= 7)
        D = CONV_DECODE_LATENCY

        # -- stage 0: the pooled coordinate ------------------------------------------------------------
        s0 = SimpleNamespace(valid=Signal(name="s0_valid"), end=Signal(name="s0_end"),
                             c=Signal(range(max_c + 1), name="s0_c"), y=Signal(coord, name="s0_y"),
                             x=Signal(coord, name="s0_x"))
        s1 = SimpleNamespace(valid=Signal(name="s1_valid"), end=Signal(name="s1_end"),
                             c=Signal(range(max_c + 1), name="s1_c"),
                             ylo=Signal(coord, name="s1_ylo"), ky=Signal(coord, name="s1_ky"),
                             ny1=Signal(coord, name="s1_ny1"),
                             xlo=Signal(coord, name="s1_xlo"), kx=Signal(coord, name="s1_kx"),
                             nx1=Signal(coord, name="s1_nx1"),
                             wrow=Signal(wrange, name="s1_wrow"))       # weight word of (c, ky=0, kx=0)
        end_taken = Signal()
        # the visitor
        active, ending = Signal(), Signal()
        waddr, wrow = Signal(wrange, name="visit_waddr"), Signal(wrange, name="visit_wrow")
        saddr, srow = Signal(srange, name="visit_saddr"), Signal(srange, name="visit_srow")
        g = Signal(range(max_groups + 1), name="visit_group")
        xc, yc, nx1 = Signal(coord, name="visit_x_left"), Signal(coord, name="visit_y_left"), Signal(coord)
        fill_count = Signal(range(D + 1))

        def const(values, shape):
            return Array(C(v, shape) for v in values)[self.layer]

        def per_layer(f, default=0):
            return [f(l) if cfg.decoded(l) else default for l in range(L)]
        groups = const([cfg.groups(l) - 1 for l in range(L)], range(max_groups + 1))
        g_last = g == groups
        x_last, y_last = xc == 0, yc == 0
        last_visit = active & g_last & x_last & y_last
        vacant = ~ending & (~active | last_visit)
        s1_move = s1.valid & vacant
        s1_free = ~s1.valid | s1_move
        s0_move = s0.valid & s1_free
        s0_free = ~s0.valid | s0_move
        m.d.comb += [self.accept.eq(s0_free & ~end_taken),
                     self.take.eq(self.accept & self.source_valid)]

        # stage 0: fields of the packed coordinate, pooled
        c0, y0, x0 = Signal.like(s0.c), Signal.like(s0.y), Signal.like(s0.x)
        with m.Switch(self.layer):
            for l in layers:
                with m.Case(l):
                    C_, H, W = cfg.raw_in_shape(l)
                    bc, bx, by = aer_fields((C_, H, W))
                    ph, pw = cfg.pool_window(l)
                    idx = self.source_index
                    m.d.comb += [c0.eq(idx[:bc]),
                                 x0.eq(divide_by_constant(idx[bc:bc + bx], pw, W)),
                                 y0.eq(divide_by_constant(idx[bc + bx:bc + bx + by], ph, H))]
        with m.If(self.take):
            m.d.sync += [s0.valid.eq(1), s0.end.eq(self.source_end), s0.c.eq(c0), s0.y.eq(y0), s0.x.eq(x0)]
            with m.If(self.source_end):
                m.d.sync += end_taken.eq(1)
        with m.Elif(s0_move):
            m.d.sync += s0.valid.eq(0)

        # stage 1: the output rows/columns an event reaches, and the kernel tap of the first
        def reach(q, pad, k, stride, n_out):
            """(first output index, kernel tap there, count - 1) of input index ``q`` along one axis."""
            t = q + pad
            first = Mux(t < k, 0, (t - (k - 1)) if stride == 1 else ((t - (k - 2)) >> 1))
            tap = t - (first if stride == 1 else (first << 1))
            last = t >> (stride - 1)
            last = Mux(last > n_out - 1, n_out - 1, last)
            return first, tap, last - first
        with m.If(s0_move):
            m.d.sync += [s1.valid.eq(1), s1.end.eq(s0.end), s1.c.eq(s0.c)]
            with m.Switch(self.layer):
                for l in layers:
                    with m.Case(l):
                        G = cfg.groups(l)
                        if cfg.layer_kind(l) == "conv":
                            kh, kw = cfg.kernel(l)
                            m.d.sync += s1.wrow.eq(cfg.weight_base(l) + const_mul(s0.c, kh * kw * G))
                        else:                    # fc on a packed input: the row of (y, x, c)
                            Cp, _, Wp = cfg.in_shape(l)
                            m.d.sync += s1.wrow.eq(cfg.weight_base(l) + const_mul(s0.c, G) +
                                                   const_mul(s0.y, Wp * Cp * G) + const_mul(s0.x, Cp * G))
                        if cfg.layer_kind(l) == "conv":
                            (kh, kw), st, (pdh, pdw) = cfg.kernel(l), cfg.stride(l), cfg.padding(l)
                            _, Ho, Wo = cfg.out_shape(l)
                            ylo, ky, ny1 = reach(s0.y, pdh, kh, st, Ho)
                            xlo, kx, nx1_ = reach(s0.x, pdw, kw, st, Wo)
                            m.d.sync += [s1.ylo.eq(ylo), s1.ky.eq(ky), s1.ny1.eq(ny1),
                                         s1.xlo.eq(xlo), s1.kx.eq(kx), s1.nx1.eq(nx1_)]
                        else:                    # fc on a packed input: one position, row from (y, x, c)
                            m.d.sync += [s1.ylo.eq(0), s1.ky.eq(0), s1.ny1.eq(0),
                                         s1.xlo.eq(0), s1.kx.eq(0), s1.nx1.eq(0)]
        with m.Elif(s1_move):
            m.d.sync += s1.valid.eq(0)

        # stage 2 (into the visitor): first weight and state words; the kernel taps' offsets from tables of
        # at most 7 constants, the positions' by constant shifts and adds (no multiplier), per layer
        w_start, s_start = Signal(wrange), Signal(srange)
        with m.Switch(self.layer):
            for l in layers:
                with m.Case(l):
                    G = cfg.groups(l)
                    if cfg.layer_kind(l) == "conv":
                        (kh, kw), Wo = cfg.kernel(l), cfg.out_shape(l)[2]
                        ky_off = Array(C(v * kw * G, wrange) for v in range(kh))[s1.ky[:3]]
                        kx_off = Array(C(v * G, wrange) for v in range(kw))[s1.kx[:3]]
                        m.d.comb += [w_start.eq(s1.wrow + ky_off + kx_off),
                                     s_start.eq(cfg.bank_base(l) + const_mul(s1.ylo, Wo * G) +
                                                const_mul(s1.xlo, G))]
                    else:
                        m.d.comb += [w_start.eq(s1.wrow), s_start.eq(cfg.bank_base(l))]

        # the visitor: one (weight word, state word) per cycle
        def signed_const(values):
            bits = max(max(abs(v) for v in values).bit_length() + 1, 2)
            return const(values, signed(bits))
        x_step = signed_const(per_layer(lambda l: 1 - (cfg.stride(l) + 1) * cfg.groups(l)))
        y_step_w = signed_const(per_layer(lambda l: -cfg.stride(l) * cfg.kernel(l)[1] * cfg.groups(l)))
        y_step_s = const(per_layer(lambda l: cfg.out_shape(l)[2] * cfg.groups(l)), srange)
        with m.If(active):
            with m.If(~g_last):
                m.d.sync += [waddr.eq(waddr + 1), saddr.eq(saddr + 1), g.eq(g + 1)]
            with m.Elif(~x_last):
                m.d.sync += [waddr.eq(waddr + x_step), saddr.eq(saddr + 1), g.eq(0), xc.eq(xc - 1)]
            with m.Elif(~y_last):
                next_wrow, next_srow = wrow + y_step_w, srow + y_step_s
                m.d.sync += [waddr.eq(next_wrow), wrow.eq(next_wrow), saddr.eq(next_srow), srow.eq(next_srow),
                             g.eq(0), xc.eq(nx1), yc.eq(yc - 1)]
        with m.If(s1_move):
            with m.If(s1.end):
                m.d.sync += [ending.eq(1), active.eq(0)]
            with m.Else():
                m.d.sync += [active.eq(1), waddr.eq(w_start), wrow.eq(w_start), saddr.eq(s_start),
                             srow.eq(s_start), g.eq(0), xc.eq(s1.nx1), nx1.eq(s1.nx1), yc.eq(s1.ny1)]
        with m.Elif(last_visit):
            m.d.sync += active.eq(0)

        idle = ~active & ~ending
        m.d.comb += [
            self.issue.eq(active), self.weight_addr.eq(waddr), self.state_addr.eq(saddr), self.group.eq(g),
            self.end.eq(ending),
            self.fill.eq(idle & (self.take | s0.valid | s1.valid) & (fill_count != D)),
            self.pending.eq(s0.valid | s1.valid | active | ending | end_taken),
        ]
        with m.If(self.fill):
            m.d.sync += fill_count.eq(fill_count + 1)
        with m.If(self.restart):
            m.d.sync += [s0.valid.eq(0), s1.valid.eq(0), active.eq(0), ending.eq(0), end_taken.eq(0),
                         fill_count.eq(0)]
        return m


class Sequencer(wiring.Component):
    """The two engines of a time step and the phase state machine (STEP, OUTPUT, CLEAR).

    The *event engine* takes the events of layer ``event_layer`` — layer 0's from ``events_in``, a later
    layer's from the ``events`` list — and issues one (weight word, state word) read per cycle; the lanes'
    sum (``lanes.accumulated``) is written back two cycles later. In the cycle after its last event (the
    end-of-events cycle) the *update engine* starts on that layer (``layer``): it fetches the layer's state
    words into the update pipeline back to back, writes ``lanes.next_membrane`` back and appends the fired
    neurons to the event list, one per cycle. When that UPDATE overlaps the next layer's EVENT phase
    (:meth:`hw.config.ChipConfig.overlapped`), the event engine moves on to the next layer at once and takes
    each spike the cycle after it is appended (the two layers' membranes are in different memories,
    :meth:`hw.config.ChipConfig.state_bank`); otherwise it waits for the UPDATE to end. After the last
    layer's UPDATE, OUTPUT streams the list out. A ``clear`` request (from the host) is taken in any state:
    CLEAR zeroes the membrane memories one word per cycle, then the sequencer waits for the next time step.
    Every cycle's activity is reported as counter ``increments``.
    """

    def __init__(self, cfg: ChipConfig, weight_port: wiring.Signature, offset_port: wiring.Signature):
        self.cfg = cfg
        lanes, banks = cfg.lanes, cfg.state_banks
        bank_addr = _bank_addr(cfg)
        word = _lanes_of(signed(cfg.acc_bits), cfg)
        super().__init__({
            "events_in": In(event_stream_signature(cfg)),
            "events_out": Out(event_stream_signature(cfg)),
            "busy": Out(1),
            "clear": In(1),
            "weights": In(weight_port),                 # read ports: addr out, data in
            "offsets": In(offset_port),
            # the membrane memories (one per bank): read address; write enable, address and word
            "membrane_read_addr": Out(data.ArrayLayout(bank_addr, banks)),
            "membrane_write_en": Out(banks),
            "membrane_write_addr": Out(data.ArrayLayout(bank_addr, banks)),
            "membrane_write_data": Out(data.ArrayLayout(word, banks)),
            "event_bank": Out(range(banks)),            # the bank whose read data the lanes accumulate now
            "update_bank": Out(range(banks)),           # the bank whose read data enters the update pipeline
            "events": In(EventList.Signature(event_index_bits(cfg), _row_bits(cfg))),   # drives an EventList
            "layer": Out(range(cfg.num_layers)),        # the update engine's layer
            "active_lanes": Out(range(lanes + 1)),      # lanes holding neurons in the group in stage 3
            "advance": Out(1),                          # the update pipeline moves on (lanes' stage enable)
            "forward": Out(1),                          # lanes: accumulate onto the word being written
            "forward_update": Out(1),                   # lanes: update the word being written, not the read one
            "accumulated": In(word),
            "fired": In(lanes),
            "fired_count": In(range(lanes + 1)),
            "fired_next": In(lanes),
            "next_membrane": In(word),
            "increments": Out(increment_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        s = self._state(m)
        if s.decoder is not None:
            m.submodules.conv_decoder = s.decoder
            m.d.comb += [s.decoder.layer.eq(s.event_layer), s.decoder.restart.eq(self.clear | s.decoder.end)]
        self._datapath(m, s)
        with m.FSM(name="phase") as fsm:
            for name, phase in (("STEP", self._step_phase), ("OUTPUT", self._output_phase),
                                ("CLEAR", self._clear_phase)):
                with m.State(name):
                    phase(m, s)
                    with m.If(self.clear):                # a clear request wins in every state
                        m.next = "CLEAR"
        with m.If(self.clear):
            m.d.comb += self.events.restart.eq(1)
            m.d.sync += [s.clear_addr.eq(0), self.layer.eq(0), s.event_layer.eq(0), s.event_waiting.eq(0),
                         s.in_event.eq(0), s.updating.eq(0), s.fetching.eq(0), s.emitting.eq(0),
                         s.forward.eq(0), s.forward_update.eq(0), s.hold.eq(0)]
            m.d.sync += [v.eq(0) for v in s.valid]
        m.d.comb += self.busy.eq(~fsm.ongoing("STEP") | (s.event_layer != 0) | s.event_waiting | s.updating |
                                 s.in_event | (s.decoder.pending if s.decoder is not None else 0))
        self._count(m, s, fsm)
        return m

    def _layer_constants(self, layer) -> SimpleNamespace:
        """The constants of layer ``layer`` (a signal) that an engine needs, as muxes of constants."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes

        def per_layer(f, shape=None):
            return _per_layer(cfg, layer, f, shape)
        return SimpleNamespace(
            groups=per_layer(cfg.groups),
            words=per_layer(cfg.state_words),
            state_base=per_layer(cfg.state_base, range(cfg.state_depth + 1)),   # offsets: the host's map
            base=per_layer(cfg.bank_base),                                       # in its membrane memory
            bank=per_layer(cfg.state_bank, range(cfg.state_banks)),
            last_group_lanes=per_layer(lambda l: cfg.out_channels(l) - (cfg.groups(l) - 1) * lanes,
                                       range(lanes + 1)),
            decoding=per_layer(cfg.decoded, 1),
            overlapped=per_layer(cfg.overlapped, 1),
            next_base=per_layer(lambda l: cfg.weight_base(l + 1) if l + 1 < L else 0,
                                range(cfg.weight_depth + 1)),     # the next layer's first weight word
        )

    def _state(self, m) -> SimpleNamespace:
        """The per-layer constants of the engines' layers and the signals the phases share."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes
        max_groups = max(cfg.groups(l) for l in range(L))
        max_words = max(cfg.state_words(l) for l in range(L))
        group_range, weight_range = range(max_groups + 1), range(cfg.weight_depth + 1)
        word_range = range(max_words + 1)
        bank_addr = _bank_addr(cfg)
        decoded = [cfg.decoded(l) for l in range(L)]
        event_layer = Signal(range(L), name="event_layer")
        s = SimpleNamespace(
            event_layer=event_layer,
            ev=self._layer_constants(event_layer),        # the event engine's layer
            up=self._layer_constants(self.layer),         # the update engine's layer
            # the conv event decoder, when a layer needs one
            decoder=ConvDecoder(cfg) if any(decoded) else None,
            # positions of the layers (conv): the spike's coordinate is tracked by counters in UPDATE
            spatial=any(cfg.layer_kind(l) == "conv" for l in range(L)),
            **_signals(
                event_waiting=1,                          # the event engine waits for the UPDATE to end
                updating=1,                               # the update engine has a layer
                # the event source (layer 0: the input stream; later: the event list)
                source_valid=1, source_end=1, source_index=event_index_bits(cfg),
                take=1,                                   # consume the source's event or end token
                stall=1,                                  # waiting for the host
                counting=1,                               # a cycle of the step's schedule
                # event engine: one (weight word, membrane word) read per cycle, accumulated two cycles later
                in_event=1,                               # an event is part-way through its groups
                event_group=group_range,                  # next group of that event
                weight_addr=weight_range,                 # its last issued weight word
                issue=1,                                  # read one word of an event this cycle
                issue_group=group_range,
                issue_weight_addr=weight_range,
                issue_state_addr=bank_addr,               # in the event layer's membrane memory
                row_base=weight_range,                    # first weight word of the source event's row
                forward=1,                                # (registered) see NeuronLanes.forward
                # update engine: a pipeline of UPDATE_LATENCY stages; group `group` is in the last one, whose
                # spikes leave one per cycle (the pipeline holds while it has more than one left)
                update_bank=range(cfg.state_banks),       # the memory of the update engine's layer
                update_owns=cfg.state_banks,              # (registered) bank b's read port is the update's
                fetching=1,                               # groups are left to read
                fetch=1,                                  # read the words of `fetch_group` this cycle
                fetch_group=word_range,                   # a state word of the layer (conv: pos*G + g)
                fetch_g=group_range,                      # its group within its position
                update_addr=bank_addr,                    # the membrane read address (a register)
                offset_addr=range(cfg.state_depth + 1),   # the offset read address (a register)
                emitting=1,                               # sending the spikes left in `pending_spikes`
                pending_spikes=lanes,
                # the lowest spike of `pending_spikes` / of NeuronLanes.fired, one-hot, registered beside them
                pending_lowest=lanes,
                fired_lowest=lanes,
                write_back=1,                             # first cycle of `group` in the last stage
                forward_update=1,                         # (registered) see NeuronLanes.forward_update
                hold=1,                                   # the last stage keeps its group another cycle
                write_back_addr=bank_addr,                # the state word of `group` in its memory
                # CLEAR: the word zeroed this cycle (in every bank that has it)
                clear_addr=range(cfg.state_depth + 1),
            ))
        # per stage 1 .. UPDATE_LATENCY: a group is in it, and which
        P = cfg.update_latency
        s.valid = [Signal(name=f"stage{i}_valid") for i in range(1, P + 1)]
        s.stage_group = [Signal(word_range, name=f"stage{i}_group") for i in range(1, P + 1)]
        # the group is the last (maybe partial) one of its position
        s.stage_last = [Signal(name=f"stage{i}_last") for i in range(1, P + 1)]
        s.group = s.stage_group[-1]
        s.have_group = s.valid[-1]
        s.compare_last = s.stage_last[P - 3]              # the stage that compares
        s.fetch_last = (s.fetch_g if s.spatial else s.fetch_group) == s.up.groups - 1
        # event engine: cycle t decides; the weight word's address is registered in the weight memory (three-
        # cycle read); the membrane word is read at t+2 (`read`) from a registered address; both reach the
        # lanes' registers at t+3 (`lanes`), are added and written back at t+4 (`write`)
        stages = ("issued", "read", "lanes", "write")
        s.acc_valid = [Signal(name=f"acc_{i}_valid") for i in stages]
        s.acc_addr = [Signal(bank_addr, name=f"acc_{i}_addr") for i in stages]
        s.acc_bank = [Signal(range(cfg.state_banks), name=f"acc_{i}_bank") for i in stages]
        s.last_group = s.stage_last[-1]                    # of its position
        s.last_word = s.group == s.up.words - 1           # of the layer
        # lane 0 of the group in the last stage, as running registers moved on as groups leave (no multiply
        # on the path from `fired` to the event list): its flat neuron index `nbase` (pos·C_out + g·lanes)
        # and its weight row in the next layer `row` (fc next: weight_base + (pooled flat index)·G); for
        # conv layers also its channel `cbase` (g·lanes), position (`out_x`, `out_y`), position in the
        # pooling window of the next layer (`pool_x`, `pool_y`), and the rows of lane 0 of the pooled
        # position (`row_pos`) and of the pooled row's first position (`row_line`)
        max_out = max(cfg.fan_out(l) for l in range(L))
        s.nbase = Signal(range(max_out + lanes + 1), name="append_nbase")
        s.row = Signal(range(cfg.weight_depth + lanes * max_groups + 1), name="append_row")
        if s.spatial:
            max_w = max(max(cfg.out_shape(l)[1:]) for l in range(L))
            s.cbase = Signal(range(max_groups * lanes + 1), name="append_cbase")
            s.row_pos = Signal.like(s.row, name="append_row_pos")
            s.row_line = Signal.like(s.row, name="append_row_line")
            s.out_x = Signal(range(max_w + 1), name="append_x")
            s.out_y = Signal(range(max_w + 1), name="append_y")
            s.pool_x = Signal(range(9), name="append_pool_x")
            s.pool_y = Signal(range(9), name="append_pool_y")
        s.unsent = Mux(s.emitting, s.pending_spikes, self.fired)
        s.unsent_after = s.unsent & (s.unsent - 1)        # all but the lowest spike
        s.unsent_lowest = Mux(s.emitting, s.pending_lowest, s.fired_lowest)     # = unsent & -unsent
        return s

    def _datapath(self, m, s):
        """Memory addresses, the accumulate and update write-backs and the pick of the next spike to append."""
        cfg, lanes, banks = self.cfg, self.cfg.lanes, self.cfg.state_banks
        # the source event's row: layer 0 from the input's index; later layers stored with the event
        if cfg.decoded(0):
            m.d.comb += s.row_base.eq(self.events.head_row)
        else:
            m.d.comb += s.row_base.eq(Mux(s.event_layer == 0, s.source_index * cfg.groups(0),
                                          self.events.head_row))
        # the event engine's pipeline (a clear request drops the pending accumulations: CLEAR owns the write
        # ports and the counters restart); its membrane reads are addressed by the `read` stage's register
        m.d.sync += [v.eq(u & ~self.clear) for v, u in zip(s.acc_valid, [s.issue] + s.acc_valid[:-1])]
        m.d.sync += [a.eq(b) for a, b in zip(s.acc_addr, [s.issue_state_addr] + s.acc_addr[:-1])]
        m.d.sync += [a.eq(b) for a, b in zip(s.acc_bank, [s.ev.bank] + s.acc_bank[:-1])]
        # the update engine's read addresses are registers (stage 1); while the pipeline holds, the ports read
        # the words of the group in stage 2 again (the memories' read data is that stage's register)
        update_addr_2, offset_addr_2 = Signal.like(s.update_addr), Signal.like(s.offset_addr)
        with m.If(self.advance):
            m.d.sync += [s.update_addr.eq(s.up.base + s.fetch_group), s.offset_addr.eq(s.up.state_base + s.fetch_group),
                         update_addr_2.eq(s.update_addr), offset_addr_2.eq(s.offset_addr)]
        # a bank's read port serves the update engine from the cycle after its first fetch to its end (the
        # event engine is then on another bank, or its last read of this one was the cycle before)
        m.d.sync += [s.update_owns[b].eq(s.updating & (s.update_bank == b)) for b in range(banks)]
        update_read = Mux(s.hold, update_addr_2, s.update_addr)
        for b in range(banks):
            m.d.comb += self.membrane_read_addr[b].eq(Mux(s.update_owns[b], update_read, s.acc_addr[1]))
        # the word read now is written back (by the accumulation of the previous read) in the cycle it
        # reaches the lanes' register: take the sum then, not the memory's stale word (an event's read right
        # after another of the same word, or the first UPDATE read of a word accumulated last)
        m.d.sync += [s.forward.eq(s.acc_valid[2] & (s.acc_addr[1] == s.acc_addr[2]) & (s.acc_bank[1] == s.acc_bank[2])),
                     s.forward_update.eq(s.acc_valid[2] & (update_read == s.acc_addr[2]) &
                                         (s.update_bank == s.acc_bank[2]))]
        m.d.comb += [
            self.weights.addr.eq(s.issue_weight_addr), self.weights.en.eq(s.issue),   # a bank reads on an issue only
            self.offsets.addr.eq(Mux(s.hold, offset_addr_2, s.offset_addr)),
            self.forward.eq(s.forward), self.forward_update.eq(s.forward_update),
            self.event_bank.eq(s.acc_bank[2]), self.update_bank.eq(s.update_bank),
        ]
        # a bank's write port, one writer at a time, decided by registers: CLEAR (`clearing_bank`: a request
        # sets it, the bank's last word clears it), an accumulation (`accumulate`: the write stage's bank), or
        # the UPDATE write-back (the group in the last stage, on its first cycle; its address registered as it
        # moves there)
        for b in range(banks):
            clearing, accumulate = Signal(name=f"clearing_bank{b}"), Signal(name=f"accumulate_bank{b}")
            m.d.sync += accumulate.eq(s.acc_valid[2] & (s.acc_bank[2] == b) & ~self.clear)
            with m.If(self.clear):
                m.d.sync += clearing.eq(1)
            with m.Elif(s.clear_addr == cfg.bank_depth(b) - 1):
                m.d.sync += clearing.eq(0)
            write_back = s.write_back & (s.update_bank == b)
            m.d.comb += [
                self.membrane_write_en[b].eq(clearing | accumulate | write_back),
                self.membrane_write_addr[b].eq(Mux(clearing, s.clear_addr,
                                                   Mux(accumulate, s.acc_addr[3], s.write_back_addr))),
                self.membrane_write_data[b].eq(Mux(clearing, 0, Mux(accumulate, self.accumulated,
                                                                      self.next_membrane))),
            ]
        # the group in the last stage, on its first cycle there, is written back (only in STEP: the last group
        # leaves the pipeline in the cycle the update engine ends; CLEAR empties it)
        m.d.comb += s.write_back.eq(s.have_group & ~s.emitting)
        # the update pipeline: every stage moves on unless the last one holds more than one unsent spike;
        # registered (`hold`): from what moves into the last stage, or what is left in it
        def several(x):
            return (x & (x - 1)) != 0
        m.d.comb += self.advance.eq(~s.hold)
        m.d.sync += s.hold.eq(Mux(self.advance, s.valid[-2] & several(self.fired_next), several(s.unsent_after)))
        with m.If(self.advance):
            m.d.sync += [s.valid[0].eq(s.fetch), s.stage_group[0].eq(s.fetch_group), s.stage_last[0].eq(s.fetch_last)]
            m.d.sync += [v.eq(u) for v, u in zip(s.valid[1:], s.valid[:-1])]
            m.d.sync += [g.eq(h) for g, h in zip(s.stage_group[1:], s.stage_group[:-1])]
            m.d.sync += [g.eq(h) for g, h in zip(s.stage_last[1:], s.stage_last[:-1])]
            m.d.sync += s.write_back_addr.eq(s.up.base + s.stage_group[-2])
        # the lowest unsent spike, one-hot, from registers: `fired`'s is registered with it (from `fired_next`),
        # `pending_spikes`' with them (from `unsent_after`)
        with m.If(self.advance):
            m.d.sync += s.fired_lowest.eq(self.fired_next & -self.fired_next)
        s.last_active = Mux(s.last_group, s.up.last_group_lanes, lanes)
        # the spike's neuron: flat index pos·C_out + g·lanes + lane; into an fc layer with its weight row
        # (of the pooled position when pooled), into a decoded layer as a packed coordinate
        # (each lane's value is added from registers beside the pick, which only selects with the registered
        # one-hot lowest spike: an AND-OR, no priority encoder or adder on the path to the event list)
        def pick(base, step=1):
            values = [base + k * step for k in range(lanes)]
            return functools.reduce(operator.or_, [Mux(s.unsent_lowest[k], v, 0) for k, v in enumerate(values)])
        m.d.comb += [self.active_lanes.eq(Mux(s.compare_last, s.up.last_group_lanes, lanes)),
                     self.events.append_index.eq(pick(s.nbase))]
        with m.Switch(self.layer):
            for l in range(cfg.num_layers - 1):
                with m.Case(l):
                    if cfg.decoded(l + 1):
                        bc, bx, by = aer_fields(cfg.out_shape(l))
                        channel = pick(s.cbase)
                        m.d.comb += self.events.append_index.eq(Cat(channel[:bc], s.out_x[:bx], s.out_y[:by]))
                    else:
                        m.d.comb += self.events.append_row.eq(pick(s.row, cfg.groups(l + 1)))

    def _step_phase(self, m, s):
        """A time step's layers: the event engine (unless it waits) and the update engine (when it has a layer)."""
        m.d.comb += s.counting.eq(1)
        with m.If(~s.event_waiting):
            self._event_engine(m, s)
        with m.If(s.updating):
            self._update_engine(m, s)

    def _start_update(self, m, s):
        """The end-of-events cycle of the event engine's layer: the update engine takes that layer from the
        next cycle; the event engine moves on to the next layer (overlapped) or waits for the UPDATE."""
        ev, L = s.ev, self.cfg.num_layers
        m.d.comb += self.events.restart.eq(1)
        m.d.sync += [s.updating.eq(1), self.layer.eq(s.event_layer), s.update_bank.eq(ev.bank),
                     s.fetching.eq(1), s.fetch_group.eq(0), s.emitting.eq(0), s.nbase.eq(0), s.row.eq(ev.next_base),
                     s.event_waiting.eq(~ev.overlapped)]
        with m.If(s.event_layer != L - 1):
            m.d.sync += s.event_layer.eq(s.event_layer + 1)
        if s.spatial:
            m.d.sync += [s.fetch_g.eq(0), s.cbase.eq(0), s.row_pos.eq(ev.next_base), s.row_line.eq(ev.next_base),
                         s.out_x.eq(0), s.out_y.eq(0), s.pool_x.eq(0), s.pool_y.eq(0)]

    def _event_engine(self, m, s):
        events = self.events
        ready = ~s.in_event if s.decoder is None else Mux(s.ev.decoding, s.decoder.accept, ~s.in_event)
        with m.If(s.event_layer == 0):
            m.d.comb += [s.source_valid.eq(self.events_in.valid), s.source_end.eq(self.events_in.payload.end),
                         s.source_index.eq(self.events_in.payload.index), self.events_in.ready.eq(ready)]
        with m.Else():                                    # the list: ended when the UPDATE feeding it is over
            m.d.comb += [s.source_valid.eq(~events.empty | ~s.updating), s.source_end.eq(events.empty),
                         s.source_index.eq(events.head)]
        if s.decoder is None:
            self._fc_events(m, s)
        else:
            with m.If(s.ev.decoding):
                self._decoded_events(m, s)
            with m.Else():
                self._fc_events(m, s)

    def _decoded_events(self, m, s):
        """A decoded layer's events: the ConvDecoder takes them and issues the visits."""
        dec, events = s.decoder, self.events
        m.d.comb += [dec.source_valid.eq(s.source_valid), dec.source_end.eq(s.source_end),
                     dec.source_index.eq(s.source_index),
                     s.take.eq(dec.take), events.advance.eq(dec.take & ~s.source_end & (s.event_layer != 0)),
                     s.issue.eq(dec.issue), s.issue_group.eq(dec.group), s.issue_weight_addr.eq(dec.weight_addr),
                     s.issue_state_addr.eq(dec.state_addr)]
        with m.If(dec.end):
            self._start_update(m, s)
        with m.Elif(~dec.issue & ~dec.fill):
            m.d.comb += s.stall.eq(1)

    def _fc_events(self, m, s):
        """An fc layer's events: each takes its groups' words from its row, from the cycle it is taken."""
        events = self.events
        m.d.comb += s.issue_state_addr.eq(s.ev.base + s.issue_group)
        with m.If(s.in_event):                            # the next group of the current event
            next_addr = s.weight_addr + 1
            m.d.comb += [s.issue.eq(1), s.issue_group.eq(s.event_group), s.issue_weight_addr.eq(next_addr)]
            m.d.sync += [s.weight_addr.eq(next_addr), s.event_group.eq(s.event_group + 1)]
            with m.If(s.event_group == s.ev.groups - 1):
                m.d.sync += s.in_event.eq(0)
        with m.Elif(s.source_valid & ~s.source_end):      # a new event: its group 0
            m.d.comb += [s.take.eq(1), s.issue.eq(1), s.issue_group.eq(0), s.issue_weight_addr.eq(s.row_base),
                         events.advance.eq(s.event_layer != 0)]
            m.d.sync += [s.weight_addr.eq(s.row_base), s.event_group.eq(1), s.in_event.eq(s.ev.groups > 1)]
        with m.Elif(s.source_valid):                      # end of the layer's events
            m.d.comb += s.take.eq(1)
            self._start_update(m, s)
        with m.Else():                                    # the host's next token (layer 0), or the next spike
            m.d.comb += s.stall.eq(s.event_layer == 0)

    def _update_engine(self, m, s):
        with m.If(s.fetching & self.advance):             # read the next group into the pipeline
            m.d.comb += s.fetch.eq(1)
            m.d.sync += s.fetch_group.eq(s.fetch_group + 1)
            if s.spatial:
                m.d.sync += s.fetch_g.eq(Mux(s.fetch_last, 0, s.fetch_g + 1))
            with m.If(s.fetch_group == s.up.words - 1):
                m.d.sync += s.fetching.eq(0)
        with m.If(s.have_group):                          # the last stage: write back, emit the spikes
            with m.If(s.unsent != 0):
                m.d.comb += self.events.append.eq(1)
            with m.If(s.hold):                            # = more than one unsent spike (a register)
                m.d.sync += [s.pending_spikes.eq(s.unsent_after), s.pending_lowest.eq(s.unsent_after & -s.unsent_after),
                             s.emitting.eq(1)]
            with m.Else():                                # the group is done
                m.d.sync += s.emitting.eq(0)
                self._next_neurons(m, s)
                with m.If(s.last_word):                   # the layer is done
                    m.d.sync += s.updating.eq(0)
                    with m.If(self.layer == self.cfg.num_layers - 1):
                        m.next = "OUTPUT"
                    with m.Elif(~s.up.overlapped):        # the event engine waited: it starts next cycle
                        m.d.sync += s.event_waiting.eq(0)

    def _next_neurons(self, m, s):
        """Move the append registers to the next group (the group in the last stage is done)."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes

        def per_layer(f):
            return _per_layer(cfg, self.layer, f)

        def next_groups(l):                              # words per row of the next layer (0: none)
            return cfg.groups(l + 1) if l + 1 < L else 0
        with m.If(~s.last_group):
            m.d.sync += [s.nbase.eq(s.nbase + lanes), s.row.eq(s.row + per_layer(lambda l: lanes * next_groups(l)))]
            if s.spatial:
                m.d.sync += s.cbase.eq(s.cbase + lanes)
        with m.Else():
            m.d.sync += s.nbase.eq(s.nbase + s.up.last_group_lanes)
            if not s.spatial:                             # fc only: the layer's last group
                return
            m.d.sync += s.cbase.eq(0)

            def next_pool(l):                             # pooling into the next layer when that is fc
                return cfg.pool_window(l + 1) if l + 1 < L and not cfg.decoded(l + 1) else (1, 1)
            last_x = per_layer(lambda l: cfg.out_shape(l)[2] - 1)
            pool_h = per_layer(lambda l: next_pool(l)[0] - 1)
            pool_w = per_layer(lambda l: next_pool(l)[1] - 1)
            # rows: next pooled position (C_out rows on), next pooled row (W'/pw positions on)
            step_pos = per_layer(lambda l: cfg.out_channels(l) * next_groups(l))
            step_line = per_layer(lambda l: cfg.out_shape(l)[2] // next_pool(l)[1] * cfg.out_channels(l) *
                                  next_groups(l))
            with m.If(s.out_x == last_x):                 # next row
                m.d.sync += [s.out_x.eq(0), s.pool_x.eq(0), s.out_y.eq(s.out_y + 1)]
                with m.If(s.pool_y == pool_h):
                    line = s.row_line + step_line
                    m.d.sync += [s.pool_y.eq(0), s.row_line.eq(line), s.row_pos.eq(line), s.row.eq(line)]
                with m.Else():
                    m.d.sync += [s.pool_y.eq(s.pool_y + 1), s.row_pos.eq(s.row_line), s.row.eq(s.row_line)]
            with m.Else():
                m.d.sync += s.out_x.eq(s.out_x + 1)
                with m.If(s.pool_x == pool_w):
                    pos = s.row_pos + step_pos
                    m.d.sync += [s.pool_x.eq(0), s.row_pos.eq(pos), s.row.eq(pos)]
                with m.Else():
                    m.d.sync += [s.pool_x.eq(s.pool_x + 1), s.row.eq(s.row_pos)]

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
            m.d.sync += [self.layer.eq(0), s.event_layer.eq(0), s.event_waiting.eq(0), s.in_event.eq(0)]
            m.next = "STEP"

    def _clear_phase(self, m, s):
        m.d.sync += s.clear_addr.eq(s.clear_addr + 1)     # the banks zero their words (see _datapath)
        with m.If(s.clear_addr == self.cfg.state_depth - 1):
            m.next = "STEP"

    def _count(self, m, s, fsm):
        """This cycle's increment of every performance counter (both engines may act in one cycle)."""
        inc, lanes = self.increments, self.cfg.lanes
        m.d.comb += [
            inc.cycles.eq(s.counting & ~s.stall),
            inc.stall_cycles.eq(s.stall),
            inc.in_events.eq(s.take & ~s.source_end & (s.event_layer == 0) & fsm.ongoing("STEP")),
            inc.synops.eq(Mux(s.issue, Mux(s.issue_group == s.ev.groups - 1, s.ev.last_group_lanes, lanes), 0)),
            inc.weight_reads.eq(s.issue),
            inc.state_reads.eq(s.issue + s.fetch),
            inc.state_writes.eq(s.acc_valid[3] + s.write_back),
            inc.neuron_updates.eq(Mux(s.write_back, s.last_active, 0)),
            inc.out_events.eq(fsm.ongoing("OUTPUT") & s.take & ~s.source_end),
        ]
        for l in range(self.cfg.num_layers):
            m.d.comb += inc[f"spikes_l{l}"].eq(Mux(s.write_back & (self.layer == l), self.fired_count, 0))


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
        m.submodules.weight_memory = weight_memory = WeightMemory(cfg, self._weight_init)
        m.submodules.offset_memory = offset_memory = memory.Memory(
            shape=word(signed(cfg.threshold_offset_bits)), depth=cfg.state_depth, init=self._offset_init)
        # the membranes: one memory per bank (ChipConfig.state_bank), each with the sequencer's read and write
        # ports and a host read port
        banks = []
        for b in range(cfg.state_banks):
            mem = memory.Memory(shape=word(signed(cfg.acc_bits)), depth=cfg.bank_depth(b), init=[])
            m.submodules[f"membrane_memory{b}" if cfg.state_banks > 1 else "membrane_memory"] = mem
            write = mem.write_port()
            banks.append(SimpleNamespace(write=write, read=mem.read_port(transparent_for=(write,)),
                                         host=mem.read_port()))
        weight_write, offset_write = weight_memory.write, offset_memory.write_port()
        weight_read, offset_read = weight_memory.read, offset_memory.read_port()

        m.submodules.registers = registers = RuntimeRegisters(
            cfg, self.bus, weight_write.signature, offset_write.signature)
        m.submodules.sequencer = sequencer = Sequencer(cfg, weight_read.signature, offset_read.signature)
        m.submodules.lanes = lanes = NeuronLanes(cfg)
        m.submodules.event_list = event_list = EventList(cfg)
        m.submodules.counters = counters = PerformanceCounters(cfg)
        m.submodules.read_bus = read_bus = ReadBus(cfg, self.bus)
        for b, bank in enumerate(banks):
            m.d.comb += [bank.read.addr.eq(sequencer.membrane_read_addr[b]),
                         bank.write.en.eq(sequencer.membrane_write_en[b]),
                         bank.write.addr.eq(sequencer.membrane_write_addr[b]),
                         bank.write.data.eq(sequencer.membrane_write_data[b]),
                         bank.host.addr.eq(read_bus.membrane_addr), read_bus.membrane_data[b].eq(bank.host.data)]
        bank_data = Array(bank.read.data for bank in banks)

        busy_before = Signal()
        m.d.sync += busy_before.eq(sequencer.busy)
        wiring.connect(m, wiring.flipped(self.wr), registers.wr)
        wiring.connect(m, wiring.flipped(self.rd), read_bus.rd)
        wiring.connect(m, wiring.flipped(self.events_in), sequencer.events_in)
        wiring.connect(m, sequencer.events_out, wiring.flipped(self.events_out))
        wiring.connect(m, registers.weights, weight_write)
        wiring.connect(m, registers.offsets, offset_write)
        wiring.connect(m, sequencer.weights, weight_read)
        wiring.connect(m, sequencer.offsets, offset_read)
        wiring.connect(m, sequencer.events, event_list)
        m.d.comb += [
            registers.layer.eq(sequencer.layer),
            sequencer.clear.eq(registers.clear),
            counters.clear.eq(registers.clear),
            # busy: also while a clear is on its way, and one cycle longer (the counters' last increment)
            self.busy.eq(sequencer.busy | busy_before | registers.clear),
            # the lanes see the membrane, weight and offset words read in the previous cycle
            lanes.membrane.eq(bank_data[sequencer.event_bank]),
            lanes.membrane_update.eq(bank_data[sequencer.update_bank]), lanes.weights.eq(weight_read.data),
            lanes.offsets.eq(offset_read.data),
            lanes.threshold.eq(registers.threshold), lanes.beta.eq(registers.beta),
            lanes.reset_zero.eq(registers.reset_zero), lanes.active.eq(sequencer.active_lanes),
            lanes.advance.eq(sequencer.advance), lanes.forward.eq(sequencer.forward),
            lanes.forward_update.eq(sequencer.forward_update),
            sequencer.accumulated.eq(lanes.accumulated), sequencer.fired.eq(lanes.fired),
            sequencer.fired_count.eq(lanes.fired_count), sequencer.fired_next.eq(lanes.fired_next),
            sequencer.next_membrane.eq(lanes.next_membrane),
            counters.increments.eq(sequencer.increments),
            read_bus.counters.eq(counters.counts),
        ]
        return m
