"""Counting set bits without a carry chain: "at least k of these bits are set" (k <= 3) as a tree of small
logic functions, one LUT4 level per halving.

The obvious ``(x & (x - 1)) != 0`` ("two or more") puts a subtractor — a carry chain — and a wide OR between
its register and the next one; on the ECP5 that chain and its routing were the critical path of the update
pipeline's ``hold`` (nextpnr, default net, 8 lanes). Here each pair of inputs is a 2-bit count saturating at
3, and two counts combine by ``min(a + b, 3)`` written as logic: every output bit depends on 4 input bits, one
LUT4, so ``lanes`` bits take ``ceil(log2(lanes))`` LUT levels and no carry.

Pass the module ``m``: each level's counts are then wires of their own (``m.d.comb``). The logic is the same,
but an expression tree refers to each child count several times, and Amaranth's Python simulator expands such a
tree in full: without the wires its size grows ~11x per doubling of the width (a ``lanes = 64`` core took
minutes to even start simulating; hardware and Verilog simulators share the subexpressions anyway).
"""
from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal, Value


def _sat_add(a: Value, b: Value) -> Value:
    """``min(a + b, 3)`` of two 2-bit counts, as logic (each output bit a function of 4 bits)."""
    a0, a1, b0, b1 = a[0], a[1], b[0], b[1]
    ge3 = (a1 & (b0 | b1)) | (b1 & a0)
    return Cat((a0 ^ b0) | ge3, a1 | b1 | (a0 & b0))


def count_to_3(x: Value, m: Module | None = None, name: str = "count") -> Value:
    """The number of set bits of ``x``, saturated at 3 (2 bits); with ``m``, every level's counts are wires
    ``{name}_l{level}_{i}`` of ``m`` (see the module's docstring)."""
    width = len(x)
    if width == 0:
        return C(0, 2)
    level = []
    for i in range(0, width, 2):
        if i + 1 < width:
            level.append(Cat(x[i] ^ x[i + 1], x[i] & x[i + 1]))
        else:
            level.append(Cat(x[i], C(0, 1)))
    depth = 0
    while True:
        if m is not None and width > 2:
            wires = [Signal(2, name=f"{name}_l{depth}_{i}") for i in range(len(level))]
            m.d.comb += [w.eq(v) for w, v in zip(wires, level)]
            level = wires
        if len(level) == 1:
            return level[0]
        level = [_sat_add(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
        depth += 1


def lowest_one(x: Value) -> Value:
    """``x & -x`` (the lowest set bit, one-hot; 0 for 0) without the negation's carry chain: bit ``i`` is set if
    ``x[i]`` is and no lower bit is (a prefix OR, a LUT tree)."""
    seen, out = C(0, 1), []
    for i in range(len(x)):
        out.append(x[i] & ~seen)
        seen = seen | x[i]
    return Cat(*out)


def at_least(x: Value, k: int, m: Module | None = None, name: str = "count") -> Value:
    """1 if at least ``k`` (1, 2 or 3) bits of ``x`` are set (``m``, ``name``: see :func:`count_to_3`)."""
    if k == 1:
        return x.any()
    c = count_to_3(x, m, name)
    if k == 2:
        return c[1]
    if k == 3:
        return c[0] & c[1]
    raise ValueError(f"k={k}: allowed values are 1, 2, 3")
