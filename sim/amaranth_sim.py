"""The RTL in Amaranth's Python simulator, driven through :class:`sim.driver.HostDriver`."""
from __future__ import annotations

from pathlib import Path

from amaranth.hdl import Value
from amaranth.sim import Simulator

from hw.config import ChipConfig
from hw.core import LifCore
from sim.chip import Chip, result_from_samples
from sim.driver import HostDriver


class AmaranthPins:
    """:class:`sim.driver.Pins` over an Amaranth testbench context; names as in the Verilog ports."""

    def __init__(self, ctx, dut: LifCore):
        self.ctx = ctx
        self.sigs = {"__".join(str(p) for p in path): Value.cast(value)
                     for path, _member, value in dut.signature.flatten(dut)}

    def set(self, name: str, value: int) -> None:
        if name != "rst":                  # the simulator starts from reset values
            self.ctx.set(self.sigs[name], value)

    def get(self, name: str) -> int:
        return self.ctx.get(self.sigs[name])

    async def tick(self) -> None:
        await self.ctx.tick()


class AmaranthChip(Chip):
    """Slow but exact: every cycle of the real design. ``vcd`` names a waveform file to write, reduced to
    the signals matching ``vcd_signals`` and the time steps ``vcd_steps`` (see :mod:`sim.vcd`)."""

    def __init__(self, cfg: ChipConfig, vcd: str | None = None, vcd_signals=None, vcd_steps=None):
        super().__init__(cfg)
        self.vcd, self.vcd_signals, self.vcd_steps = vcd, vcd_signals, vcd_steps

    def _run(self, spikes, record_state):
        dut = LifCore(self.cfg.structure())
        samples: list[dict] = []

        async def testbench(ctx):
            drv = HostDriver(self.cfg.structure(), AmaranthPins(ctx, dut))
            await drv.load(self.cfg, self.weights, self.offsets)
            for x in spikes:
                samples.append(await drv.run_sample(x, record_state))

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(testbench)
        if not self.vcd:
            sim.run()
        elif self.vcd_signals is None and self.vcd_steps is None:
            with sim.write_vcd(self.vcd):
                sim.run()
        else:
            from sim.vcd import filter_vcd, step_cycles
            dest = Path(self.vcd)
            full = dest.with_name(f".{dest.name}.full")
            try:
                with sim.write_vcd(str(full)):
                    sim.run()
                cycles = (None if self.vcd_steps is None else
                          step_cycles([s["step_cycles"] for s in samples], self.vcd_steps))
                filter_vcd(full, dest, self.vcd_signals, cycles)
            finally:
                full.unlink(missing_ok=True)
        return result_from_samples(self.cfg, samples)
