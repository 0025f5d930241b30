"""The board top level: the accelerator behind a UART host link (:mod:`hw.protocol`).

:class:`LinkedChip` is the platform-independent part (core + protocol bridge + UART, pins ``uart_rx``
and ``uart_tx``); :class:`BoardTop` puts it on an amaranth-boards platform (default clock, the
platform's ``uart`` resource, ``led`` 0 shows ``busy`` when present).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.bridge import ProtocolBridge
from hw.config import ChipConfig
from hw.core import LifCore, event_stream_signature
from hw.uart import UARTReceiver, UARTTransmitter


class SkidBuffer(wiring.Component):
    """A stream register slice that registers both ``valid``/``payload`` and ``ready`` (two entries, full
    throughput): no combinational path from one side to the other."""

    def __init__(self, signature: stream.Signature):
        super().__init__({"sink": In(signature), "source": Out(signature)})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.sink.payload)
        m.d.comb += self.sink.ready.eq(~skid_valid)
        take = self.sink.valid & ~skid_valid
        with m.If(~self.source.valid | self.source.ready):    # the output register is free at this edge
            with m.If(skid_valid):
                m.d.sync += [self.source.payload.eq(skid), self.source.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.source.payload.eq(self.sink.payload), self.source.valid.eq(take)]
        with m.Elif(take):
            m.d.sync += [skid.eq(self.sink.payload), skid_valid.eq(1)]
        return m


class LinkedChip(wiring.Component):
    """``divisor``: clock cycles per UART bit (``clk_hz // baud``).

    Registers cut the paths between the bridge and the core (they only add host-side latency: the core's
    ``cycles`` do not change): the write bus is registered (the bridge sees the core busy while a write
    is on its way), so are the ``busy`` the bridge waits on (a write's acknowledgement leaves one cycle
    later) and the read address (the bridge holds it from the cycle its frame arrives), and the event
    streams pass through :class:`SkidBuffer` s."""

    def __init__(self, cfg: ChipConfig, divisor: int, weights: Sequence[np.ndarray] | None = None,
                 threshold_offsets: Sequence[np.ndarray] | None = None):
        self.cfg, self.divisor, self.weights, self.threshold_offsets = cfg, divisor, weights, threshold_offsets
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = LifCore(self.cfg, self.weights, self.threshold_offsets)
        m.submodules.bridge = bridge = ProtocolBridge(self.cfg, byte_cycles=10 * self.divisor)
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        wiring.connect(m, rx.data, bridge.rx)
        wiring.connect(m, bridge.tx, tx.data)
        m.d.sync += core.rd.addr.eq(bridge.rd.addr)            # stable a cycle before the bridge reads
        m.d.comb += bridge.rd.data.eq(core.rd.data)
        write_pending = Signal()
        m.d.sync += [core.wr.addr.eq(bridge.wr.addr), core.wr.data.eq(bridge.wr.data), core.wr.en.eq(bridge.wr.en),
                     write_pending.eq(bridge.wr.en)]
        m.submodules.events_in = events_in = SkidBuffer(event_stream_signature(self.cfg))
        m.submodules.events_out = events_out = SkidBuffer(event_stream_signature(self.cfg))
        wiring.connect(m, bridge.events_in, events_in.sink)
        wiring.connect(m, events_in.source, core.events_in)
        wiring.connect(m, core.events_out, events_out.sink)
        wiring.connect(m, events_out.source, bridge.events_out)
        # the bridge sees ``busy`` through a register (the core's busy logic and the bridge sit apart on the die):
        # a write reaches the core a cycle after the bridge issues it (``write_pending`` covers that cycle) and
        # the core's ``busy`` answers it the cycle after, which ``busy_seen`` shows one cycle later still, so the
        # write itself holds ``busy_seen`` for the cycle between; the acknowledgement waits one cycle more
        busy_seen = Signal()
        m.d.sync += busy_seen.eq(core.busy | core.wr.en)
        m.d.comb += [bridge.busy.eq(busy_seen | write_pending), self.busy.eq(core.busy), rx.rx.eq(self.uart_rx),
                     self.uart_tx.eq(tx.tx)]
        return m


class BoardTop(Elaboratable):
    def __init__(self, cfg: ChipConfig, baud: int = 115200, weights: Sequence[np.ndarray] | None = None,
                 threshold_offsets: Sequence[np.ndarray] | None = None):
        self.cfg, self.baud, self.weights, self.threshold_offsets = cfg, baud, weights, threshold_offsets

    def elaborate(self, platform):
        m = Module()
        divisor = int(platform.default_clk_frequency // self.baud)
        m.submodules.chip = chip = LinkedChip(self.cfg, divisor, self.weights, self.threshold_offsets)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [chip.uart_rx.eq(uart_rx.i), uart_tx.o.eq(chip.uart_tx)]
        try:
            led = platform.request("led", 0, dir="-")
        except ResourceError:       # a board without LEDs
            return m
        m.submodules.led = led_buffer = io.Buffer("o", led)
        m.d.comb += led_buffer.o.eq(chip.busy)
        return m
