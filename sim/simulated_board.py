"""A simulated board: the board top's RTL (:class:`hw.board.LinkedChip`, UART included) in Amaranth's
simulator, reached through a host-side UART — the same bytes a real board sees on its serial port.

:class:`SimBoardTransport` is a transport for :class:`sim.board_link.BoardChip`.
"""
from __future__ import annotations

import queue
import threading

from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.board import LinkedChip
from hw.config import ChipConfig
from hw.uart import UARTReceiver, UARTTransmitter


class SimBoardTransport:
    """The board top's RTL in Amaranth's simulator (own thread), reached through a host-side UART.

    ``divisor`` = cycles per UART bit. ``to_board``/``from_board`` may rewrite the byte stream (tests
    use them to corrupt, drop or delay bytes)."""

    def __init__(self, cfg: ChipConfig, divisor: int = 4, to_board=None, from_board=None):
        m = Module()
        m.submodules.board = board = LinkedChip(cfg.structure(), divisor)
        m.submodules.htx = htx = UARTTransmitter(divisor)
        m.submodules.hrx = hrx = UARTReceiver(divisor)
        m.d.comb += [board.uart_rx.eq(htx.tx), hrx.rx.eq(board.uart_tx)]
        self._in: queue.Queue[int] = queue.Queue()
        self._out: queue.Queue[int] = queue.Queue()
        self._stop = threading.Event()
        self.to_board, self.from_board = to_board, from_board

        async def testbench(ctx):
            ctx.set(hrx.data.ready, 1)
            pending = None
            while not self._stop.is_set():
                if pending is None and not self._in.empty():
                    pending = self._in.get()
                ctx.set(htx.data.valid, pending is not None)
                if pending is not None:
                    ctx.set(htx.data.payload, pending)
                sent = pending is not None and ctx.get(htx.data.ready)
                await ctx.tick()
                if sent:
                    pending = None
                if ctx.get(hrx.data.valid):
                    self._out.put(ctx.get(hrx.data.payload))

        self.sim = Simulator(m)
        self.sim.add_clock(1e-7)
        self.sim.add_testbench(testbench)
        self.thread = threading.Thread(target=self.sim.run, daemon=True)
        self.thread.start()

    def write(self, data: bytes) -> None:
        if self.to_board:
            data = self.to_board(data)
        for b in data:
            self._in.put(b)

    def read(self, n: int, timeout: float) -> bytes:
        out = bytearray()
        try:
            out.append(self._out.get(timeout=timeout))
            while len(out) < n:
                out.append(self._out.get_nowait())
        except queue.Empty:
            pass
        data = bytes(out)
        return self.from_board(data) if self.from_board else data

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=10)
