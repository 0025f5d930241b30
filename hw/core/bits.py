"""Counting set bits without a carry chain: "at least k of these bits are set" (k <= 3) as a tree of small
logic functions, one LUT4 level per halving.

The obvious ``(x & (x - 1)) != 0`` ("two or more") puts a subtractor — a carry chain — and a wide OR between
its register and the next one; on the ECP5 that chain and its routing were the critical path of the update
pipeline's ``hold`` (nextpnr, default net, 8 lanes). Here each pair of inputs is a 2-bit count saturating at
3, and two counts combine by ``min(a + b, 3)`` written as logic: every output bit depends on 4 input bits, one
LUT4, so ``lanes`` bits take ``ceil(log2(lanes))`` LUT levels and no carry.
"""
from __future__ import annotations

from amaranth.hdl import C, Cat, Value


def _sat_add(a: Value, b: Value) -> Value:
    """``min(a + b, 3)`` of two 2-bit counts, as logic (each output bit a function of 4 bits)."""
    a0, a1, b0, b1 = a[0], a[1], b[0], b[1]
    ge3 = (a1 & (b0 | b1)) | (b1 & a0)
    return Cat((a0 ^ b0) | ge3, a1 | b1 | (a0 & b0))


def count_to_3(x: Value) -> Value:
    """The number of set bits of ``x``, saturated at 3 (2 bits)."""
    width = len(x)
    if width == 0:
        return C(0, 2)
    level = []
    for i in range(0, width, 2):
        if i + 1 < width:
            level.append(Cat(x[i] ^ x[i + 1], x[i] & x[i + 1]))
        else:
            level.append(Cat(x[i], C(0, 1)))
    while len(level) > 1:
        level = [_sat_add(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def lowest_one(x: Value) -> Value:
    """``x & -x`` (the lowest set bit, one-hot; 0 for 0) without the negation's carry chain: bit ``i`` is set if
    ``x[i]`` is and no lower bit is (a prefix OR, a LUT tree)."""
    seen, out = C(0, 1), []
    for i in range(len(x)):
        out.append(x[i] & ~seen)
        seen = seen | x[i]
    return Cat(*out)


def at_least(x: Value, k: int) -> Value:
    """1 if at least ``k`` (1, 2 or 3) bits of ``x`` are set."""
    if k == 1:
        return x.any()
    c = count_to_3(x)
    if k == 2:
        return c[1]
    if k == 3:
        return c[0] & c[1]
    raise ValueError(f"k={k}: allowed values are 1, 2, 3")
