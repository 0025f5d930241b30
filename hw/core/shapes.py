"""Small shape helpers the components share: signals by name, the widths of a weight-memory and a
membrane-bank address, per-layer constants as muxes, a word of ``lanes`` values."""
from __future__ import annotations

from amaranth.hdl import Array, C, Shape, Signal
from amaranth.lib import data

from hw.config import ChipConfig


def _signals(**shapes) -> dict:
    """``Signal(shape, name=name)`` for each ``name=shape``."""
    return {name: Signal(shape, name=name) for name, shape in shapes.items()}


def _row_bits(cfg: ChipConfig) -> int:
    """Width of a weight-memory address (one past the last word included)."""
    return Shape.cast(range(cfg.weight_depth + 1)).width


def _bank_addr(cfg: ChipConfig) -> range:
    """A membrane-bank address (one past the deepest bank's last word included)."""
    return range(max(cfg.bank_depth(b) for b in range(cfg.state_banks)) + 1)


def _per_layer(cfg: ChipConfig, layer, f, shape=None):
    """The constant ``f(l)`` of layer ``layer`` (a signal), as a mux of per-layer constants."""
    values = [int(f(l)) for l in range(cfg.num_layers)]
    shape = shape or range(max(values) + 1)
    if len(set(values)) == 1:       # one layer (a zero-width index) or the same constant everywhere: no mux
        return C(values[0], shape)
    return Array(C(v, shape) for v in values)[layer]


def _lanes_of(shape, cfg: ChipConfig) -> data.ArrayLayout:
    return data.ArrayLayout(shape, cfg.lanes)

