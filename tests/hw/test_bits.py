"""hw.core.bits: the carry-free "at least k bits set" equals popcount >= k, and lowest_one(x) equals x & -x, for every input (widths 1-9, all
values; 16, 33 and 64 bits sampled), in Amaranth's simulator, as one expression and with each level's counts a wire of
the module (the form the sequencer uses: Amaranth's simulator expands a shared expression tree in full)."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from hw.core.bits import at_least, count_to_3, lowest_one


def _sampled(width: int) -> list[int]:
    """Values of ``width`` bits: every one with 0-4 bits set among the low 8 and high 8 positions, and random ones."""
    rng = random.Random(width)
    ends = [i for i in range(width) if i < 8 or i >= width - 8]
    few = [sum(1 << i for i in rng.sample(ends, k)) for k in range(5) for _ in range(60)]
    return few + [rng.getrandbits(width) for _ in range(300)]


@pytest.mark.parametrize("width, wires", [(w, False) for w in (1, 2, 3, 4, 5, 7, 8, 9)] +
                         [(w, True) for w in (2, 3, 5, 8, 9, 16, 33, 64)])
def test_at_least_is_popcount_compare(width, wires):
    x = Signal(width)
    outs = {k: Signal(name=f"ge{k}") for k in (1, 2, 3)}
    count, low = Signal(2), Signal(width)
    m = Module()
    w = m if wires else None
    m.d.comb += [count.eq(count_to_3(x, w)), low.eq(lowest_one(x))] + [o.eq(at_least(x, k, w, f"c{k}"))
                                                                      for k, o in outs.items()]
    values = range(1 << width) if width <= 9 else _sampled(width)
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


def _nodes(v) -> int:
    """Nodes of an Amaranth expression tree, a shared subtree counted each time it occurs."""
    parts = [getattr(v, a) for a in ("operands", "parts") if hasattr(v, a)]
    kids = [k for p in parts for k in p] + ([v.value] if hasattr(v, "value") and not hasattr(v, "parts") else [])
    return 1 + sum(_nodes(k) for k in kids if hasattr(k, "shape"))


@pytest.mark.parametrize("k", [2, 3])
def test_wired_count_grows_linearly_with_the_width(k):
    """With the module given, the expressions the simulator compiles (the returned one and each wire's) grow
    linearly: 64 bits are about twice 32. As one tree they grew ~11x per doubling (lanes = 64 never started)."""
    def size(width, wired):
        m = Module()
        m._MustUse__silence = True                        # inspected, never elaborated
        out = at_least(Signal(width), k, m if wired else None)
        return _nodes(out) + sum(_nodes(st.rhs) for st in m._statements.get("comb", []))
    assert size(64, True) <= 2.3 * size(32, True)
    assert size(16, False) > 5 * size(8, False)          # what the wires are for
    assert size(64, True) < size(16, False)
