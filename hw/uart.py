"""8N1 UART receiver and transmitter with byte streams (Amaranth 0.5 components).

``divisor`` = clock cycles per bit (``clk_hz // baud``, at least 4). The receiver synchronises the pin,
checks the start bit at mid-bit, samples each data bit at its centre and drops a byte whose stop bit is
low (``frame_error`` pulses); a byte arriving while the stream is not ready is dropped (``overrun``).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out


class UARTReceiver(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor={divisor}: allowed range is >= 4 clock cycles per bit")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(unsigned(8))),
                          "frame_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 2))
        bit = Signal(range(9))
        shreg = Signal(8)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.comb += [self.frame_error.eq(0), self.overrun.eq(0)]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):                    # glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq((rx << 7) | (shreg >> 1)), timer.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(~rx):
                        m.d.comb += self.frame_error.eq(1)
                    with m.Elif(self.data.valid & ~self.data.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.data.payload.eq(shreg), self.data.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTransmitter(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor={divisor}: allowed range is >= 4 clock cycles per bit")
        self.divisor = divisor
        super().__init__({"tx": Out(1, init=1), "data": In(stream.Signature(unsigned(8)))})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shreg = Signal(10)                     # stop, 8 data (LSB first), start
        bits = Signal(range(11))
        m.d.comb += self.data.ready.eq((bits == 0) & (timer == 0))
        with m.If(timer != 0):                 # every bit, the stop bit included, lasts `divisor` cycles
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(bits != 0):
            m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1), bits.eq(bits - 1),
                         timer.eq(self.divisor - 1)]
        with m.Elif(self.data.valid):
            m.d.sync += [shreg.eq((1 << 9) | (self.data.payload << 1)), bits.eq(10)]
        return m
