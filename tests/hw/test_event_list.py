"""hw.core.events.EventList on its own, one and two entries wide (``update = "touched"``: entries in an even and an
odd memory), against a list in Python: random appends of one or two entries per cycle up to a full list (odd and
even depths, depth 1), reads one entry per cycle that catch up with the appends (an entry appended in a cycle is
the head in the next), rewinds and restarts with an odd or even number of entries written or read."""
import random

import pytest
from amaranth.sim import Simulator

from hw.config import ChipConfig
from hw.core.events import EventList


def _chip(depth: int, touched: bool) -> ChipConfig:
    cfg = ChipConfig(layer_sizes=(4, depth, 1), lanes=2, overlap=False)
    return cfg.replace(update="touched", max_steps=4) if touched else cfg


@pytest.mark.parametrize("touched", [False, True])
@pytest.mark.parametrize("depth", [1, 2, 5, 6, 9])
@pytest.mark.parametrize("seed", range(3))
def test_event_list_against_a_python_list(touched, depth, seed):
    cfg = _chip(depth, touched)
    assert cfg.event_depth == depth and cfg.appends_per_cycle == (2 if touched else 1)
    dut = EventList(cfg)
    rng = random.Random(seed * 100 + depth)
    index_max, row_max = (1 << dut.signature.index_bits) - 1, (1 << dut.signature.row_bits) - 1
    bad = []

    async def bench(ctx):
        entries, pos, stale = [], 0, False          # stale: the cycle after a rewind (the read port's address)
        for cycle in range(800):
            empty = ctx.get(dut.empty)
            if empty != (pos == len(entries)):
                bad.append((cycle, "empty", empty, pos, len(entries)))
            elif not empty and not stale and (ctx.get(dut.head), ctx.get(dut.head_row)) != entries[pos]:
                bad.append((cycle, "head", ctx.get(dut.head), ctx.get(dut.head_row), entries[pos], pos))
            if len(bad) > 5:
                return
            room = depth - len(entries)
            n = rng.choice([0, 1, 1, 2, 2] if touched else [0, 1, 1])
            n = min(n, room)
            new = [(rng.randint(0, index_max), rng.randint(0, row_max)) for _ in range(n)]
            advance = int(not empty and not stale and rng.random() < 0.6)
            op = rng.random()
            rewind, restart = int(op < 0.03), int(0.03 <= op < 0.06)
            ctx.set(dut.append, int(n >= 1))
            ctx.set(dut.append_index, new[0][0] if n else rng.randint(0, index_max))
            ctx.set(dut.append_row, new[0][1] if n else rng.randint(0, row_max))
            if touched:
                ctx.set(dut.append_second, int(n == 2))
                ctx.set(dut.append_second_index, new[1][0] if n == 2 else rng.randint(0, index_max))
                ctx.set(dut.append_second_row, new[1][1] if n == 2 else rng.randint(0, row_max))
            ctx.set(dut.advance, advance)
            ctx.set(dut.rewind, rewind)
            ctx.set(dut.restart, restart)
            await ctx.tick()
            if restart:                              # restart and rewind win over the others
                entries, pos = [], 0
            else:
                entries += new
                pos = 0 if rewind else pos + advance
            stale = bool(rewind and not restart)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad
