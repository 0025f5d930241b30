"""The top: :class:`LifCore` instantiates the weight, threshold-offset and membrane memories and the
components (registers, sequencer, lanes, event list, counters, read bus) and wires them; its ports are the
chip's (event streams in and out, host write and read buses, ``busy``)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Sequence

import numpy as np
from amaranth.hdl import Array, Module, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.bus import BusMap, leak_table_words, offset_words, weight_words
from hw.config import ChipConfig
from hw.core.bias import bias_memory
from hw.core.counters import PerformanceCounters
from hw.core.events import EventList, WavefrontLists, event_stream_signature
from hw.core.host import ReadBus, ReadBusSignature, RuntimeRegisters, WriteBusSignature
from hw.core.lanes import NeuronLanes
from hw.core.sequencer import Sequencer, state_word_shape
from hw.core.shapes import _lanes_of
from hw.core.weights import WeightMemory


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
        shape = state_word_shape(cfg) if cfg.touched else word(signed(cfg.acc_bits))
        for b in range(cfg.state_banks):
            mem = memory.Memory(shape=shape, depth=cfg.bank_depth(b), init=[])
            m.submodules[f"membrane_memory{b}" if cfg.state_banks > 1 else "membrane_memory"] = mem
            write = mem.write_port()
            banks.append(SimpleNamespace(write=write, read=mem.read_port(transparent_for=(write,)),
                                         host=mem.read_port()))
        weight_write, offset_write = weight_memory.write, offset_memory.write_port()
        weight_read, offset_read = weight_memory.read, offset_memory.read_port()

        leak_write = leak_read = None
        if cfg.touched:                     # update by touch: the elapsed-leak table B_{l,k} (hw.core.touched)
            m.submodules.leak_table = leak_table = memory.Memory(
                shape=unsigned(cfg.beta_frac_bits + 1), depth=cfg.leak_table_depth, init=leak_table_words(cfg))
            leak_write, leak_read = leak_table.write_port(), leak_table.read_port()
        bias_write = bias_read = None
        if cfg.has_bias:                    # the per-layer bias (hw.core.bias), powered up with cfg.bias
            m.submodules.bias_memory = bias_mem = bias_memory(cfg)
            bias_write, bias_read = bias_mem.write_port(), bias_mem.read_port()
        m.submodules.registers = registers = RuntimeRegisters(
            cfg, self.bus, weight_write.signature, offset_write.signature,
            leak_write.signature if leak_write is not None else None,
            bias_write.signature if bias_write is not None else None)
        m.submodules.sequencer = sequencer = Sequencer(cfg, weight_read.signature, offset_read.signature,
                                                       bias_read.signature if bias_read is not None else None)
        if cfg.has_bias:
            wiring.connect(m, registers.bias, bias_write)
            wiring.connect(m, sequencer.bias, bias_read)
        m.submodules.lanes = lanes = NeuronLanes(cfg)
        if cfg.has_bias:
            m.d.comb += lanes.bias.eq(bias_read.data)
        m.submodules.event_list = event_list = EventList(cfg) if not cfg.wavefront else WavefrontLists(cfg)
        m.submodules.counters = counters = PerformanceCounters(cfg)
        m.submodules.read_bus = read_bus = ReadBus(cfg, self.bus)
        LA = cfg.lanes * cfg.acc_bits
        for b, bank in enumerate(banks):
            m.d.comb += [bank.read.addr.eq(sequencer.membrane_read_addr[b]),
                         bank.write.en.eq(sequencer.membrane_write_en[b]),
                         bank.write.addr.eq(sequencer.membrane_write_addr[b]),
                         bank.write.data.eq(sequencer.membrane_write_data[b]),
                         bank.host.addr.eq(read_bus.membrane_addr), bank.host.en.eq(read_bus.membrane_en),
                         read_bus.membrane_data[b].eq(bank.host.data if not cfg.touched else bank.host.data[LA:2 * LA])]
        bank_data = Array(bank.read.data for bank in banks)
        if cfg.touched:       # the word: h (what the event engine accumulates), u, stamp (hw.core.touched)
            update_word, event_word = bank_data[sequencer.update_bank], bank_data[sequencer.event_bank]
            wiring.connect(m, registers.leak, leak_write)
            m.d.comb += [leak_read.addr.eq(sequencer.leak_addr), leak_read.en.eq(sequencer.leak_en),
                         lanes.elapsed.eq(leak_read.data), lanes.membrane_stored.eq(update_word[LA:2 * LA]),
                         sequencer.event_stored.eq(event_word[LA:]),
                         sequencer.hot.eq(lanes.hot), sequencer.flush.eq(registers.flush),
                         sequencer.stored.eq(update_word[LA:2 * LA]), sequencer.elapsed.eq(leak_read.data)]
            bank_data = Array(bank.read.data[:LA] for bank in banks)

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
            read_bus.membrane_written.eq(sequencer.membrane_write_en.any()),
            # busy: also while a clear is on its way, and one cycle longer (the counters' last increment)
            self.busy.eq(sequencer.busy | busy_before | registers.clear if not cfg.touched else
                         sequencer.busy | busy_before | registers.clear | registers.flush),
            # the lanes see the membrane, weight and offset words read in the previous cycle
            lanes.membrane.eq(bank_data[sequencer.event_bank]),
            lanes.membrane_update.eq(bank_data[sequencer.update_bank]), lanes.weights.eq(weight_read.data),
            lanes.offsets.eq(offset_read.data),
            lanes.threshold.eq(registers.threshold), lanes.beta.eq(registers.beta),
            lanes.reset_zero.eq(registers.reset_zero), lanes.active.eq(sequencer.active_lanes),
            lanes.advance.eq(sequencer.advance), lanes.valid.eq(sequencer.stage_valid),
            lanes.forward.eq(sequencer.forward),
            lanes.forward_update.eq(sequencer.forward_update),
            sequencer.accumulated.eq(lanes.accumulated), sequencer.fired.eq(lanes.fired),
            sequencer.fired_count.eq(lanes.fired_count), sequencer.fired_next.eq(lanes.fired_next),
            sequencer.next_membrane.eq(lanes.next_membrane),
            counters.increments.eq(sequencer.increments),
            read_bus.counters.eq(counters.counts),
        ]
        return m

