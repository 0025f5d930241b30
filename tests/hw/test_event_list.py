"""The event list (hw/core/events.py, :class:`EventList`) against a Python list, cycle by cycle: ``empty`` (a
register chosen from compares of the positions by ``advance`` / ``append`` / ``restart``), ``head`` and
``head_row`` (but in the cycle after a rewind; read one entry ahead; the two-wide list's read words are registers beside the read position), for
the one-wide list and the two-wide one of an ``update = "touched"`` chip, on depths that are and are not powers
of two, with random appends (one or two), advances, rewinds and restarts the engines may issue (no advance
past the end, no append to a full list). Cycle-exactness of the chips that use it is the other tests'."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.config import ChipConfig
from hw.core.events import EventList


def _run(cfg, seed, cycles=600):
    dut = EventList(cfg)
    wide = dut.signature.width == 2
    depth = cfg.event_depth
    rnd = random.Random(seed)
    m = Module()
    m.submodules.dut = dut
    sim = Simulator(m)
    sim.add_clock(1e-6)
    checked = {"cycles": 0, "heads": 0}

    async def tb(ctx):
        entries, pos, stale = [], 0, False
        bias = 0.5
        for t in range(cycles):
            if t % 60 == 0:
                bias = rnd.choice([0.2, 0.5, 0.8])
            empty = pos == len(entries)
            assert ctx.get(dut.empty) == empty, f"cycle {t}: empty"
            if not empty and not stale:               # the cycle after a rewind reads the old position
                index, row = entries[pos]
                assert (ctx.get(dut.head), ctx.get(dut.head_row)) == (index, row), f"cycle {t}: head"
                checked["heads"] += 1
            restart, rewind = rnd.random() < 0.02, rnd.random() < 0.03
            advance = not empty and rnd.random() < 0.6
            n = 0
            if rnd.random() < bias:
                n = 2 if wide and rnd.random() < 0.5 else 1
            n = min(n, depth - len(entries))
            new = [(rnd.randrange(1 << len(dut.append_index)), rnd.randrange(1 << len(dut.append_row)))
                   for _ in range(n)]
            ctx.set(dut.restart, restart)
            ctx.set(dut.rewind, rewind)
            ctx.set(dut.advance, advance)
            ctx.set(dut.append, n > 0)
            if n:
                ctx.set(dut.append_index, new[0][0])
                ctx.set(dut.append_row, new[0][1])
            if wide:
                ctx.set(dut.append_second, n == 2)
                if n == 2:
                    ctx.set(dut.append_second_index, new[1][0])
                    ctx.set(dut.append_second_row, new[1][1])
            await ctx.tick()
            entries += new
            pos += advance
            stale = rewind and not restart
            if rewind or restart:
                pos = 0
            if restart:
                entries = []
            checked["cycles"] += 1

    sim.add_testbench(tb)
    sim.run()
    return checked


@pytest.mark.parametrize("update", ["all", "touched"])
@pytest.mark.parametrize("sizes", [(6, 8, 2), (5, 7, 3), (4, 3, 1), (3, 1, 1)])
def test_event_list_is_a_list(update, sizes):
    cfg = ChipConfig(layer_sizes=sizes, lanes=4, update=update, overlap=False)
    assert cfg.appends_per_cycle == (2 if update == "touched" else 1)
    for seed in range(3):
        checked = _run(cfg, seed)
        assert checked["heads"] > 10
