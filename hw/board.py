"""The board top level: the accelerator behind a UART host link (:mod:`hw.protocol`).

:class:`LinkedChip` is the platform-independent part (core + protocol bridge + UART, pins ``uart_rx``
and ``uart_tx``); :class:`BoardTop` puts it on an amaranth-boards platform (default clock, the
platform's ``uart`` resource, ``led`` 0 shows ``busy`` when present).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out

from hw.bridge import ProtocolBridge
from hw.config import ChipConfig
from hw.core import LifCore
from hw.uart import UARTReceiver, UARTTransmitter


class LinkedChip(wiring.Component):
    """``divisor``: clock cycles per UART bit (``clk_hz // baud``)."""

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
        wiring.connect(m, bridge.wr, core.wr)
        wiring.connect(m, bridge.rd, core.rd)
        wiring.connect(m, bridge.events_in, core.events_in)
        wiring.connect(m, core.events_out, bridge.events_out)
        m.d.comb += [bridge.busy.eq(core.busy), self.busy.eq(core.busy), rx.rx.eq(self.uart_rx),
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
