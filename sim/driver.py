"""The host side of the chip's pins: program it, stream a sample through it, read its counters.

One set of host transactions (:class:`BusHost`) serves every RTL backend. :class:`HostDriver` implements
its bus primitives on the chip's pins, which a simulator backend (Amaranth, cocotb on Icarus/Verilator)
supplies as :class:`Pins`; a board's :class:`sim.board_link.BoardHost` implements them as protocol frames.

Timing contract of ``Pins``: after ``await tick()``, ``get`` returns the values that settled after that
rising edge, and values given to ``set`` are what the chip samples at the next rising edge. The chip's
outputs (``*__ready``, ``*__valid``, payloads, ``busy``, ``rd__data``) depend on registers only, so
reading them after ``set`` in the same cycle is safe.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from hw.bus import (READ_COUNTERS, READ_MEMBRANES, REGION_OFFSETS, REGION_REGS, REGION_WEIGHTS, BusMap,
                    membranes_from_words, offset_words, weight_words)
from hw.config import ChipConfig


class Pins(Protocol):
    def set(self, name: str, value: int) -> None: ...
    def get(self, name: str) -> int: ...
    async def tick(self) -> None: ...


class ChipTimeout(RuntimeError):
    """The chip did not answer within the cycle budget (a hung design or a broken link)."""


class OutputSteps:
    """The output stream's tokens gathered into steps: ``take(word)`` adds an event to the step under way or, for an
    end token, closes it into ``steps`` (a list of each step's output indices, in order)."""

    def __init__(self, bus: BusMap):
        self.bus, self.steps, self._current = bus, [], []

    def take(self, word: int) -> None:
        index, end = self.bus.unpack_event(word)
        if end:
            self.steps.append(self._current)
            self._current = []
        else:
            self._current.append(index)


class BusHost:
    """Transactions every host needs, on four primitives a transport supplies: ``write``, ``read``,
    ``clear`` and ``step`` (all async)."""

    cfg: ChipConfig
    bus: BusMap

    async def write(self, addr: int, data: int) -> None:
        raise NotImplementedError

    async def read(self, addr: int) -> int:
        raise NotImplementedError

    async def clear(self) -> None:
        raise NotImplementedError

    async def step(self, events: Sequence[int]) -> list[int]:
        raise NotImplementedError

    async def load(self, cfg: ChipConfig, weights: Sequence[np.ndarray],
                   threshold_offsets: Sequence[np.ndarray] | None = None) -> None:
        """Program registers from ``cfg`` (same structure as the chip's), then weights and offsets."""
        if cfg.structure() != self.cfg.structure():
            raise ValueError("load: cfg has a different structure from the chip this driver drives")
        self.cfg, self.bus = cfg, BusMap(cfg)
        for addr, value in self.bus.register_writes():
            await self.write(addr, value)
        for k, word in enumerate(weight_words(cfg, weights)):
            await self.write(self.bus.write_addr(REGION_WEIGHTS, k), word)
        for k, word in enumerate(offset_words(cfg, threshold_offsets)):
            await self.write(self.bus.write_addr(REGION_OFFSETS, k), word)

    async def read_membranes(self) -> list[np.ndarray]:
        words = [await self.read(self.bus.read_addr(READ_MEMBRANES, k)) for k in range(self.cfg.state_depth)]
        return membranes_from_words(self.cfg, words)

    async def read_counters(self) -> dict[str, int]:
        return {name: await self.read(self.bus.read_addr(READ_COUNTERS, k))
                for k, name in enumerate(self.cfg.counter_names)}

    def _check_output(self, t: int, idx: list[int]) -> None:
        if len(set(idx)) != len(idx) or any(i >= self.cfg.layer_sizes[-1] for i in idx):
            raise RuntimeError(f"chip emitted malformed output events at step {t}: {idx}")

    async def run_sample(self, spikes: np.ndarray, record_state: bool) -> dict:
        """One sample ``(T, N0)`` bool from a cleared chip: output spikes, states, counters. Input
        address ``i`` (HWC flat) is sent as ``cfg.input_address(i)`` (packed coordinates on a conv chip)."""
        cfg = self.cfg
        T = spikes.shape[0]
        await self.clear()
        out = np.zeros((T, cfg.layer_sizes[-1]), bool)
        state = [np.zeros((T, cfg.fan_out(l)), np.int64) for l in range(cfg.num_layers)] if record_state else None
        marks = []                  # clock cycle at the start of each step, then at the end of the last
        steps = [[cfg.input_address(i) for i in np.flatnonzero(spikes[t])] for t in range(T)]
        if cfg.wavefront and not record_state and hasattr(self, "stream"):
            # a wavefront chip takes the input of later steps while it finishes earlier ones (docs/chip.md,
            # "Wavefront"): stream it all, take the output as it comes
            outputs, marks = await self.stream(steps)        # (a board link has no cycle marks)
            for t, idx in enumerate(outputs):
                self._check_output(t, idx)
                out[t, idx] = True
            return {"output": out, "state": state, "counters": await self.read_counters(), "step_cycles": marks}
        for t in range(T):
            marks.append(getattr(self, "cycles", 0))
            idx = await self.step(steps[t])
            self._check_output(t, idx)
            out[t, idx] = True
            if record_state:
                for l, v in enumerate(await self.read_membranes()):
                    state[l][t] = v
        marks.append(getattr(self, "cycles", 0))
        return {"output": out, "state": state, "counters": await self.read_counters(), "step_cycles": marks}


class _CountingPins:
    """``pins`` with ``tick`` replaced (the driver counts its cycles)."""

    def __init__(self, pins: Pins, tick):
        self._pins, self.tick = pins, tick
        self.set, self.get = pins.set, pins.get


class HostDriver(BusHost):
    """Drives a :class:`hw.core.LifCore` through :class:`Pins` named like its Verilog ports."""

    def __init__(self, cfg: ChipConfig, pins: Pins, max_wait_cycles: int = 1_000_000):
        self.cfg, self.pins, self.bus = cfg, pins, BusMap(cfg)
        self.max_wait = max_wait_cycles
        self.cycles = 0             # clock cycles this driver has waited (ticks), for waveform windows
        tick = pins.tick

        async def counted_tick() -> None:
            self.cycles += 1
            await tick()
        self.pins = _CountingPins(pins, counted_tick)

    async def reset(self, cycles: int = 2) -> None:
        """Assert the synchronous reset (for simulators that do not start from reset values)."""
        p = self.pins
        for name in ("wr__en", "events_in__valid", "events_in__payload", "events_out__ready", "wr__addr",
                     "wr__data", "rd__addr"):
            p.set(name, 0)
        p.set("rst", 1)
        for _ in range(cycles):
            await p.tick()
        p.set("rst", 0)
        await p.tick()

    async def write(self, addr: int, data: int) -> None:
        p = self.pins
        p.set("wr__addr", addr)
        p.set("wr__data", data)
        p.set("wr__en", 1)
        await p.tick()
        p.set("wr__en", 0)

    async def read(self, addr: int) -> int:
        self.pins.set("rd__addr", addr)
        await self.pins.tick()
        return self.pins.get("rd__data")

    async def clear(self) -> None:
        """Zero the membranes and the counters; returns when the chip is idle again."""
        await self.write(self.bus.write_addr(REGION_REGS, self.bus.reg_command), 1)
        await self._wait_idle()

    async def flush(self) -> None:
        """``update = "touched"`` chips: apply every word's pending leak (docs/chip.md, "Update by touch"); returns
        when the chip is idle again. Between steps only."""
        from hw.bus import COMMAND_FLUSH
        await self.write(self.bus.write_addr(REGION_REGS, self.bus.reg_command), COMMAND_FLUSH)
        await self._wait_idle()

    async def _wait_idle(self) -> None:
        for _ in range(self.max_wait):
            if not self.pins.get("busy"):
                return
            await self.pins.tick()
        raise ChipTimeout(f"chip still busy after {self.max_wait} cycles")

    async def stream(self, steps: Sequence[Sequence[int]], offer=None,
                     accept=None) -> tuple[list[list[int]], list[int]]:
        """Send every step's input events (+ end token) back to back while taking every output event: a
        wavefront chip's host (``docs/chip.md``, "Wavefront"). ``offer()`` / ``accept()``: whether the host offers
        its next input token / takes an output token this cycle (default: always, both streams always ready); a
        token once offered is held until taken. Returns each step's output events and the clock cycle at which each
        step's first input token was offered, then the cycle of the last output end token."""
        p, bus = self.pins, self.bus
        words, firsts = [], []
        for events in steps:
            firsts.append(len(words))
            words += [bus.pack_event(i) for i in events] + [bus.pack_event(0, end=True)]
        outputs, marks = OutputSteps(bus), []
        sent, offering, waited = 0, False, 0
        try:
            while len(outputs.steps) < len(steps):
                offering = sent < len(words) and (offering or offer is None or offer())
                if offering and len(marks) < len(firsts) and sent == firsts[len(marks)]:
                    marks.append(self.cycles)
                p.set("events_in__payload", words[min(sent, len(words) - 1)])
                p.set("events_in__valid", int(offering))
                ready = 1 if accept is None else int(accept())
                p.set("events_out__ready", ready)
                taken = offering and p.get("events_in__ready")
                valid, word = p.get("events_out__valid"), p.get("events_out__payload")
                await p.tick()
                if taken:
                    sent, offering = sent + 1, False
                waited = 0 if taken or (valid and ready) else waited + 1
                if waited > self.max_wait:
                    raise ChipTimeout(f"no progress on either event stream for {self.max_wait} cycles")
                if valid and ready:
                    outputs.take(word)
        finally:
            p.set("events_in__valid", 0)
            p.set("events_out__ready", 0)
        marks.append(self.cycles)
        return outputs.steps, marks

    async def step(self, events: Sequence[int]) -> list[int]:
        """Send one time step's input events (+ end token); return the output events of that step."""
        p, bus = self.pins, self.bus
        for word in [bus.pack_event(i) for i in events] + [bus.pack_event(0, end=True)]:
            p.set("events_in__payload", word)
            p.set("events_in__valid", 1)
            for _ in range(self.max_wait):
                ready = p.get("events_in__ready")
                await p.tick()
                if ready:
                    break
            else:
                raise ChipTimeout(f"events_in not ready for {self.max_wait} cycles")
        p.set("events_in__valid", 0)
        p.set("events_out__ready", 1)
        out = []
        try:
            for _ in range(self.max_wait):
                valid, word = p.get("events_out__valid"), p.get("events_out__payload")
                await p.tick()
                if valid:
                    index, end = bus.unpack_event(word)
                    if end:
                        return out
                    out.append(index)
            raise ChipTimeout(f"no end-of-step token within {self.max_wait} cycles")
        finally:
            p.set("events_out__ready", 0)
