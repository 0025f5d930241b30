"""The gated memory ports (docs/power.md, "Port enables"): the host read ports of the membrane memories read
only for a new address or after a membrane write, and ``rd.data`` is still what a port reading on every cycle
returns — checked in Amaranth's simulator on random host addresses, random membrane writes (also in the cycle
of a read) and region changes, with two banks (overlap)."""
import numpy as np
from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, memory
from amaranth.sim import Simulator

from hw.bus import READ_COUNTERS, READ_MEMBRANES, BusMap
from hw.config import ChipConfig
from hw.core import ReadBus
from hw.core.shapes import _lanes_of


def test_gated_host_port_reads_what_an_ungated_one_would():
    cfg = ChipConfig(layer_sizes=(6, 7, 5), lanes=2, overlap=True)
    assert cfg.state_banks == 2
    bus = BusMap(cfg)
    word = unsigned(_lanes_of(signed(cfg.acc_bits), cfg).size)
    m = Module()
    m.submodules.rb = rb = ReadBus(cfg, bus)
    mems, writes = [], []
    for b in range(cfg.state_banks):
        mem = memory.Memory(shape=word, depth=cfg.bank_depth(b), init=[])
        m.submodules[f"mem{b}"] = mem
        w, r = mem.write_port(), mem.read_port()
        m.d.comb += [r.addr.eq(rb.membrane_addr), r.en.eq(rb.membrane_en), rb.membrane_data[b].eq(r.data)]
        mems.append(mem)
        writes.append(w)
    m.d.comb += rb.membrane_written.eq(writes[0].en | writes[1].en)
    sim = Simulator(m)
    sim.add_clock(1e-8)
    rng = np.random.default_rng(0)
    depth = [cfg.bank_depth(b) for b in range(cfg.state_banks)]
    shadow = [[0] * d for d in depth]
    enables = []

    async def bench(ctx):
        expected = None
        for cycle in range(600):
            # the host: mostly keeps its address (as a polling or idle host does), sometimes moves or changes region
            if cycle == 0 or rng.random() < 0.3:
                region = READ_COUNTERS if rng.random() < 0.15 else READ_MEMBRANES
                offset = int(rng.integers(0, cfg.state_depth)) if region == READ_MEMBRANES else 0
                ctx.set(rb.rd.addr, bus.read_addr(region, offset))
            # the sequencer: writes some membrane word now and then
            wb = int(rng.integers(0, 2))
            wen = rng.random() < 0.25
            waddr, wdata = int(rng.integers(0, depth[wb])), int(rng.integers(0, 1 << word.width))
            for b in range(cfg.state_banks):
                ctx.set(writes[b].en, int(wen and b == wb))
                ctx.set(writes[b].addr, waddr)
                ctx.set(writes[b].data, wdata)
            await ctx.delay(1e-9)
            enables.append(ctx.get(rb.membrane_en))
            got = ctx.get(rb.rd.data)
            if expected is not None:
                assert got == expected, f"cycle {cycle}"
            # what an ungated port gives next cycle: the word at this cycle's address before this cycle's write
            addr = ctx.get(rb.rd.addr)
            region, offset = addr >> bus.read_offset_bits, addr & ((1 << bus.read_offset_bits) - 1)
            if region == READ_MEMBRANES:
                layer = max(l for l in range(cfg.num_layers) if offset >= cfg.state_base(l))
                bank = cfg.state_bank(layer)
                expected = shadow[bank][offset - cfg.state_base(layer) + cfg.bank_base(layer)]
            else:
                expected = None
            await ctx.tick()
            if wen:
                shadow[wb][waddr] = wdata
    sim.add_testbench(bench)
    sim.run()
    # and it does save reads: the port is off on most cycles of this mostly-idle host
    assert 0.2 < np.mean(enables) < 0.8
