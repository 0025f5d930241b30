"""The host link to a board: the host side of :mod:`hw.protocol` over a byte transport.

* :class:`SerialTransport` — a real serial port (pyserial), e.g. an iCEBreaker's FTDI UART.
* :class:`sim.simulated_board.SimBoardTransport` — the board top's RTL in Amaranth's simulator, behind
  the same bytes.

:class:`BoardHost` speaks the protocol; :class:`BoardChip` is a :class:`sim.chip.Chip` on top of it, so
trainers and studies can use a board directly.
Every command is answered; a NAK or a missing answer is retried (the same SEQ, so the board never
executes a write or an event twice), and after the retries a :class:`LinkError` says what failed. A lost
or corrupted output event cannot be asked for again: it raises :class:`LinkError` — never a silently
wrong result.
"""
from __future__ import annotations

import asyncio
import time
from typing import Protocol


from hw import protocol as P
from hw.bus import REGION_REGS, BusMap
from hw.config import ChipConfig, ConfigError
from sim.chip import Chip, result_from_samples
from sim.driver import BusHost, ChipTimeout, OutputSteps


class LinkError(ChipTimeout):
    """The host link failed: no answer, repeated NAKs, or lost output events."""


class Transport(Protocol):
    """Bytes to and from a board. ``now()`` is the link's clock in seconds (a real port: the wall clock; a
    simulated board: simulated time), and ``read``'s ``timeout`` and every answer deadline of
    :class:`BoardHost` are measured on it."""
    def write(self, data: bytes) -> None: ...
    def read(self, n: int, timeout: float) -> bytes: ...
    def now(self) -> float: ...
    def close(self) -> None: ...


class SerialTransport:
    def __init__(self, port: str, baud: int = 115200):
        import serial
        try:
            self.port = serial.Serial(port, baud, timeout=0.05)
        except (serial.SerialException, ValueError) as e:
            raise ConfigError(f"port={port!r} (baud {baud}): cannot open the board's serial port: {e}") from e

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, n: int, timeout: float) -> bytes:
        self.port.timeout = timeout
        return self.port.read(n)

    def now(self) -> float:
        return time.monotonic()

    def close(self) -> None:
        self.port.close()


class BoardHost(BusHost):
    """The four bus primitives as protocol transactions."""

    def __init__(self, cfg: ChipConfig, transport: Transport, timeout: float = 1.0, retries: int = 3):
        self.cfg, self.bus, self.format = cfg, BusMap(cfg), P.FrameFormat(cfg)
        self.t, self.timeout, self.retries = transport, timeout, retries
        self.now = getattr(transport, "now", time.monotonic)     # the link's clock (see Transport)
        self.seq = 0
        self.rx = bytearray()
        self.out: list[int] = []            # output event words received, in order
        self.out_seq = 0                     # SEQ the next OUT_EVENT must carry
        self.bad_frames = 0                  # corrupted frames received and dropped
        self._step_out: list[int] = []       # output indices of the step in progress

    # -- framing ------------------------------------------------------------------------------------------
    def _frame(self, deadline: float):
        """Next valid frame (seq, cmd, payload) from the link, or None at the deadline. Resynchronises on SYNC."""
        while True:
            while self.rx and self.rx[0] != P.SYNC:
                self.rx.pop(0)
            if len(self.rx) >= 5:
                n = self.rx[3]
                if len(self.rx) >= 5 + n:
                    body, crc = bytes(self.rx[1:4 + n]), self.rx[4 + n]
                    if crc == P.CRC8.compute(body):
                        del self.rx[:5 + n]
                        return body[0], body[1], body[3:]
                    self.bad_frames += 1
                    self.rx.pop(0)           # drop this SYNC and hunt for the next
                    continue
            left = deadline - self.now()
            if left <= 0:
                return None
            self.rx += self.t.read(64, min(left, 0.05))

    def _take_out_event(self, seq: int, payload: bytes) -> None:
        if seq != self.out_seq:
            raise LinkError(f"output events lost on the link: expected OUT_EVENT #{self.out_seq}, got #{seq} "
                            f"({self.bad_frames} corrupted frames dropped); the step's result is incomplete")
        self.out_seq = (seq + 1) & 0xFF
        self.out.append(int.from_bytes(payload, "little"))

    def _transact(self, cmd: int, payload: bytes, answer: int) -> bytes:
        seq, why = self.seq, "no answer"
        for _ in range(self.retries + 1):
            self.t.write(P.encode(seq, cmd, payload))
            deadline = self.now() + self.timeout
            while True:
                f = self._frame(deadline)
                if f is None:
                    why = f"no answer within {self.timeout} s"
                    break
                fseq, fcmd, fpay = f
                if fcmd == P.OUT_EVENT:
                    self._take_out_event(fseq, fpay)
                elif fseq != seq:
                    continue                 # a late answer to an earlier try
                elif fcmd == P.NAK:
                    why = {P.NAK_CRC: "board saw a bad CRC", P.NAK_COMMAND: "board rejected the command",
                           P.NAK_TIMEOUT: "board timed out inside the frame"}.get(fpay[0] if fpay else 0, "NAK")
                    break
                elif fcmd == answer:
                    self.seq = (seq + 1) & 0xFF
                    return fpay
        raise LinkError(f"command 0x{cmd:02x} (seq {seq}) failed after {self.retries + 1} tries: {why}")

    # -- the bus primitives -------------------------------------------------------------------------------
    def ping(self) -> None:
        pay = self._transact(P.PING, b"", P.PONG)
        version, h = pay[0], int.from_bytes(pay[1:5], "little")
        if version != P.VERSION or h != self.format.config_hash:
            raise ConfigError(f"board: protocol version {version}, config hash {h:08x}; this host expects "
                              f"version {P.VERSION} and {self.format.config_hash:08x} — "
                              f"the board carries another chip")

    async def write(self, addr: int, data: int) -> None:
        self._transact(P.WRITE, P.le(addr, self.format.addr_bytes) + P.le(data, self.format.data_bytes), P.ACK)

    async def read(self, addr: int) -> int:
        answer = self._transact(P.READ, P.le(addr, self.format.read_addr_bytes), P.READ_DATA)
        return int.from_bytes(answer, "little")

    async def clear(self) -> None:
        await self.write(self.bus.write_addr(REGION_REGS, self.bus.reg_command), 1)   # ACKed once idle

    async def step(self, events) -> list[int]:
        for word in [self.bus.pack_event(i) for i in events] + [self.bus.pack_event(0, end=True)]:
            self._transact(P.EVENT, P.le(word, self.format.event_bytes), P.ACK)
        deadline = self.now() + self.timeout * (self.retries + 1)
        while True:
            while self.out:
                index, end = self.bus.unpack_event(self.out.pop(0))
                if end:
                    result, self._step_out = self._step_out, []
                    return result
                self._step_out.append(index)
            f = self._frame(deadline)
            if f is None:
                raise LinkError(f"end of time step never arrived ({self.bad_frames} corrupted frames dropped)")
            if f[1] == P.OUT_EVENT:
                self._take_out_event(f[0], f[2])


    async def stream(self, steps) -> tuple[list[list[int]], list[int]]:
        """A wavefront chip's host (``docs/chip.md``, "Wavefront"): every step's events and end token sent one after
        another, each EVENT answered once the chip took it, the output events taken as they arrive; returns each
        step's output indices and (no cycle count on the link) empty step marks."""
        outputs = OutputSteps(self.bus)

        def drain():
            while self.out:
                outputs.take(self.out.pop(0))
        for events in steps:
            for word in [self.bus.pack_event(i) for i in events] + [self.bus.pack_event(0, end=True)]:
                self._transact(P.EVENT, P.le(word, self.format.event_bytes), P.ACK)
                drain()
        deadline = self.now() + self.timeout * (self.retries + 1)
        while len(outputs.steps) < len(steps):
            f = self._frame(deadline)
            if f is None:
                raise LinkError(f"the output of step {len(outputs.steps)} never ended ({self.bad_frames} corrupted "
                                f"frames dropped)")
            if f[1] == P.OUT_EVENT:
                self._take_out_event(f[0], f[2])
                drain()
        return outputs.steps, []


class BoardChip(Chip):
    """A board (or its simulation) behind ``transport`` as the chip in the loop."""

    def __init__(self, cfg: ChipConfig, transport: Transport, timeout: float = 1.0, retries: int = 3):
        super().__init__(cfg)
        self.host = BoardHost(cfg.structure(), transport, timeout, retries)
        self.host.ping()

    def _run(self, spikes, record_state):
        async def go():
            await self.host.load(self.cfg, self.weights, self.offsets)
            return [await self.host.run_sample(x, record_state) for x in spikes]
        return result_from_samples(self.cfg, asyncio.run(go()))
