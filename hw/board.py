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
from amaranth.lib import fifo, io, wiring
from amaranth.lib.wiring import In, Out

from hw.bridge import ProtocolBridge
from hw.config import ChipConfig
from hw.core import LifCore
from hw.uart import UARTReceiver, UARTTransmitter


class LinkedChip(wiring.Component):
    """``divisor``: clock cycles per UART bit (``clk_hz // baud``).

    Registers cut the paths between the bridge and the core (they only add host-side latency: the core's
    ``cycles`` do not change): the write bus is registered (the bridge sees the core busy while a write
    is on its way), and the event streams pass through two-entry FIFOs whose ``ready``/``valid`` are
    registers."""

    def __init__(self, cfg: ChipConfig, divisor: int, weights: Sequence[np.ndarray] | None = None):
        self.cfg, self.divisor, self.weights = cfg, divisor, weights
        super().__init__({"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = LifCore(self.cfg, self.weights)
        m.submodules.bridge = bridge = ProtocolBridge(self.cfg, byte_cycles=10 * self.divisor)
        m.submodules.rx = rx = UARTReceiver(self.divisor)
        m.submodules.tx = tx = UARTTransmitter(self.divisor)
        wiring.connect(m, rx.data, bridge.rx)
        wiring.connect(m, bridge.tx, tx.data)
        wiring.connect(m, bridge.rd, core.rd)
        write_pending = Signal()
        m.d.sync += [core.wr.addr.eq(bridge.wr.addr), core.wr.data.eq(bridge.wr.data), core.wr.en.eq(bridge.wr.en),
                     write_pending.eq(bridge.wr.en)]
        event_bits = len(core.events_in.payload.as_value())
        m.submodules.events_in = events_in = fifo.SyncFIFO(width=event_bits, depth=2)
        m.submodules.events_out = events_out = fifo.SyncFIFO(width=event_bits, depth=2)
        m.d.comb += [
            events_in.w_data.eq(bridge.events_in.payload), events_in.w_en.eq(bridge.events_in.valid),
            bridge.events_in.ready.eq(events_in.w_rdy),
            core.events_in.payload.eq(events_in.r_data), core.events_in.valid.eq(events_in.r_rdy),
            events_in.r_en.eq(core.events_in.ready),
            events_out.w_data.eq(core.events_out.payload), events_out.w_en.eq(core.events_out.valid),
            core.events_out.ready.eq(events_out.w_rdy),
            bridge.events_out.payload.eq(events_out.r_data), bridge.events_out.valid.eq(events_out.r_rdy),
            events_out.r_en.eq(bridge.events_out.ready),
        ]
        m.d.comb += [bridge.busy.eq(core.busy | write_pending), self.busy.eq(core.busy), rx.rx.eq(self.uart_rx),
                     self.uart_tx.eq(tx.tx)]
        return m


class BoardTop(Elaboratable):
    def __init__(self, cfg: ChipConfig, baud: int = 115200, weights: Sequence[np.ndarray] | None = None):
        self.cfg, self.baud, self.weights = cfg, baud, weights

    def elaborate(self, platform):
        m = Module()
        divisor = int(platform.default_clk_frequency // self.baud)
        m.submodules.chip = chip = LinkedChip(self.cfg, divisor, self.weights)
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
