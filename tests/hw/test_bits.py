"""hw.core.bits: the carry-free "at least k bits set" equals popcount >= k, and lowest_one(x) equals x & -x, for every input (widths 1-9, all
values; 16 bits sampled), in Amaranth's simulator."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.core.bits import at_least, count_to_3, lowest_one


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 8, 9, 16])
def test_at_least_is_popcount_compare(width):
    x = Signal(width)
    outs = {k: Signal(name=f"ge{k}") for k in (1, 2, 3)}
    count, low = Signal(2), Signal(width)
    m = Module()
    m.d.comb += [count.eq(count_to_3(x)), low.eq(lowest_one(x))] + [o.eq(at_least(x, k)) for k, o in outs.items()]
    values = range(1 << width) if width <= 9 else random.Random(width).sample(range(1 << width), 3000)
    bad = []

    async def bench(ctx):
        for v in values:
            ctx.set(x, v)
            n = bin(v).count("1")
            got = {k: ctx.get(o) for k, o in outs.items()}
            if got != {k: int(n >= k) for k in outs} or ctx.get(count) != min(n, 3) or ctx.get(low) != v & -v:
                bad.append((v, got, ctx.get(count)))
    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad


def test_at_least_refuses_k_above_3():
    with pytest.raises(ValueError, match="k=4: allowed values are 1, 2, 3"):
        at_least(Signal(8), 4)
