"""The RTL in Amaranth's Python simulator, driven through :class:`sim.driver.HostDriver`."""
from __future__ import annotations

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
    """Slow but exact: every cycle of the real design. ``vcd`` names a waveform file to write."""

    def __init__(self, cfg: ChipConfig, vcd: str | None = None):
        super().__init__(cfg)
        self.vcd = vcd

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
        if self.vcd:
            with sim.write_vcd(self.vcd):
                sim.run()
        else:
            sim.run()
        return result_from_samples(self.cfg, samples)
