"""cocotb test module run inside the simulator by :class:`sim.cocotb_sim.CocotbChip` (not a pytest file).

Every output port of the core must be fully resolved (no ``X``/``Z`` bit) at every sampled clock edge
after reset, valid or not: a 4-state simulator (Icarus) shows there what 2-state ones (Verilator, Amaranth)
hide, such as an out-of-range memory read. An unresolved value fails the run with :class:`UnresolvedOutput`.
"""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from amaranth.lib import wiring
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from cocotb.utils import get_sim_time

from hw.config import ChipConfig
from hw.core import LifCore
from sim.driver import HostDriver


class UnresolvedOutput(AssertionError):
    """An output port carried X or Z."""


def output_ports(cfg: ChipConfig) -> list[str]:
    """Verilog names of the core's output ports (``busy``, ``events_out__payload``, ``rd__data`` ...)."""
    return ["__".join(str(p) for p in path)
            for path, member in LifCore(cfg.structure()).signature.members.flatten()
            if member.is_port and member.flow == wiring.Out]


class CocotbPins:
    """:class:`sim.driver.Pins` over a cocotb DUT: inputs change and outputs are read at falling edges.

    Once :attr:`check` is set, every ``tick`` checks that all ``outputs`` are fully resolved, and ``get``
    refuses an unresolved value."""

    def __init__(self, dut, outputs: list[str] = ()):
        self.dut = dut
        self._h = {}
        self.outputs = list(outputs)
        self.check = False
        self.cycle = 0

    def _handle(self, name):
        if name not in self._h:
            self._h[name] = getattr(self.dut, name)
        return self._h[name]

    def set(self, name: str, value: int) -> None:
        self._handle(name).value = int(value)

    def _resolved(self, name: str):
        value = self._handle(name).value
        if not value.is_resolvable:
            raise UnresolvedOutput(f"output port {name} = {value} is not fully resolved (X/Z) at cycle "
                                   f"{self.cycle} (sim time {get_sim_time('ns')} ns)")
        return value

    def get(self, name: str) -> int:
        return int(self._resolved(name))

    async def tick(self) -> None:
        await FallingEdge(self.dut.clk)
        self.cycle += 1
        if self.check:
            for name in self.outputs:
                self._resolved(name)


@cocotb.test()
async def run_job(dut):
    job = np.load(os.environ["SPIKELOOP_JOB"])
    cfg = ChipConfig.from_dict(json.loads(str(job["cfg"])))
    L = cfg.num_layers
    weights = [job[f"w{l}"] for l in range(L)]
    offsets = [job[f"o{l}"] for l in range(L)]
    record = bool(job["record_state"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    pins = CocotbPins(dut, output_ports(cfg))
    drv = HostDriver(cfg.structure(), pins)
    await FallingEdge(dut.clk)
    await drv.reset()
    pins.check = True
    await drv.load(cfg, weights, offsets)
    samples = [await drv.run_sample(x, record) for x in job["spikes"]]
    names = cfg.counter_names
    arrays = {"output": np.stack([s["output"] for s in samples]),
              "counters": np.array([[s["counters"][n] for n in names] for s in samples], np.int64),
              "step_cycles": np.array([s["step_cycles"] for s in samples], np.int64)}
    if record:
        arrays |= {f"state{l}": np.stack([s["state"][l] for s in samples]) for l in range(L)}
    np.savez(os.environ["SPIKELOOP_RESULT"], **arrays)
