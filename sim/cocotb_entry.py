"""cocotb test module run inside the simulator by :class:`sim.cocotb_sim.CocotbChip` (not a pytest file)."""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from hw.config import ChipConfig
from sim.driver import HostDriver
from sim.model import counter_names


class CocotbPins:
    """:class:`sim.driver.Pins` over a cocotb DUT: inputs change and outputs are read at falling edges."""

    def __init__(self, dut):
        self.dut = dut
        self._h = {}

    def _handle(self, name):
        if name not in self._h:
            self._h[name] = getattr(self.dut, name)
        return self._h[name]

    def set(self, name: str, value: int) -> None:
        self._handle(name).value = int(value)

    def get(self, name: str) -> int:
        return int(self._handle(name).value)

    async def tick(self) -> None:
        await FallingEdge(self.dut.clk)


@cocotb.test()
async def run_job(dut):
    job = np.load(os.environ["SPIKELOOP_JOB"])
    cfg = ChipConfig.from_dict(json.loads(str(job["cfg"])))
    L = cfg.num_layers
    weights = [job[f"w{l}"] for l in range(L)]
    offsets = [job[f"o{l}"] for l in range(L)]
    record = bool(job["record_state"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    drv = HostDriver(cfg.structure(), CocotbPins(dut))
    await FallingEdge(dut.clk)
    await drv.reset()
    await drv.load(cfg, weights, offsets)
    samples = [await drv.run_sample(x, record) for x in job["spikes"]]
    names = counter_names(cfg)
    arrays = {"output": np.stack([s["output"] for s in samples]),
              "counters": np.array([[s["counters"][n] for n in names] for s in samples], np.int64)}
    if record:
        arrays |= {f"state{l}": np.stack([s["state"][l] for s in samples]) for l in range(L)}
    np.savez(os.environ["SPIKELOOP_RESULT"], **arrays)
