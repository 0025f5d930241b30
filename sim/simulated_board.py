"""A simulated board: the board top's RTL (:class:`hw.board.LinkedChip`, UART included) in Amaranth's
simulator, reached through a host-side UART — the same bytes a real board sees on its serial port.

:class:`SimBoardTransport` is a transport for :class:`sim.board_link.BoardChip`.
"""
from __future__ import annotations

import collections
import threading

from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.board import LinkedChip
from hw.config import ChipConfig
from hw.uart import UARTReceiver, UARTTransmitter


class SimBoardTransport:
    """The board top's RTL in Amaranth's simulator (own thread), reached through a host-side UART.

    ``divisor`` = cycles per UART bit. ``to_board``/``from_board`` may rewrite the byte stream (tests
    use them to corrupt, drop or delay bytes).

    Time on this link is the simulation's (:meth:`now`: cycles times :attr:`PERIOD`), and ``read``'s
    timeout is in simulated seconds: a host's answer deadlines do not depend on how fast the machine
    simulates, so a loaded machine makes a run slower, never a link fail."""

    #: the simulated board's clock period, s
    PERIOD = 1e-7
    #: the simulator wakes waiting readers at least every this many cycles (to see the time advance)
    WAKE_CYCLES = 64

    def __init__(self, cfg: ChipConfig, divisor: int = 4, to_board=None, from_board=None):
        m = Module()
        m.submodules.board = board = LinkedChip(cfg.structure(), divisor)
        m.submodules.htx = htx = UARTTransmitter(divisor)
        m.submodules.hrx = hrx = UARTReceiver(divisor)
        m.d.comb += [board.uart_rx.eq(htx.tx), hrx.rx.eq(board.uart_tx)]
        self._in: collections.deque[int] = collections.deque()
        self._out: collections.deque[int] = collections.deque()
        self._cycles = 0
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self.to_board, self.from_board = to_board, from_board

        async def testbench(ctx):
            ctx.set(hrx.data.ready, 1)
            pending = None
            while not self._stop.is_set():
                if pending is None and self._in:
                    pending = self._in.popleft()
                ctx.set(htx.data.valid, pending is not None)
                if pending is not None:
                    ctx.set(htx.data.payload, pending)
                sent = pending is not None and ctx.get(htx.data.ready)
                await ctx.tick()
                self._cycles += 1
                if sent:
                    pending = None
                if ctx.get(hrx.data.valid):
                    with self._wake:
                        self._out.append(ctx.get(hrx.data.payload))
                        self._wake.notify_all()
                elif self._cycles % self.WAKE_CYCLES == 0:
                    with self._wake:
                        self._wake.notify_all()

        self.sim = Simulator(m)
        self.sim.add_clock(self.PERIOD)
        self.sim.add_testbench(testbench)
        self.thread = threading.Thread(target=self.sim.run, daemon=True)
        self.thread.start()

    def now(self) -> float:
        """Simulated seconds since the board started."""
        return self._cycles * self.PERIOD

    def write(self, data: bytes) -> None:
        if self.to_board:
            data = self.to_board(data)
        self._in.extend(data)

    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes, waiting at most ``timeout`` simulated seconds for the first."""
        end = self.now() + timeout
        out = bytearray()
        with self._wake:
            while not self._out and self.now() < end:
                if not self.thread.is_alive():
                    raise RuntimeError("the simulated board stopped (its simulator thread ended)")
                self._wake.wait(1.0)        # woken by the simulator every WAKE_CYCLES cycles
            while self._out and len(out) < n:
                out.append(self._out.popleft())
        data = bytes(out)
        return self.from_board(data) if self.from_board else data

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)
