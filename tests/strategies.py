"""Hypothesis strategies for random chips, programmes and inputs (shared by tests/sim and tests/hw)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from hw.config import ChipConfig


@st.composite
def configs(draw, max_size: int = 12, max_layers: int = 3) -> ChipConfig:
    L = draw(st.integers(1, max_layers))
    sizes = tuple(draw(st.lists(st.integers(1, max_size), min_size=L + 1, max_size=L + 1)))
    wb = draw(st.integers(2, 8))
    mb = draw(st.integers(max(wb, 5), 14))          # small membranes make saturation common
    return ChipConfig(
        layer_sizes=sizes, weight_bits=wb, membrane_bits=mb, lanes=draw(st.integers(1, 5)),
        beta_frac_bits=draw(st.integers(1, 9)), threshold_offset_bits=draw(st.integers(1, min(6, mb))),
        beta=tuple(draw(st.floats(0.01, 0.99)) for _ in range(L)),
        # mostly near the weight scale so that neurons fire (several per group), sometimes anywhere
        threshold=tuple(draw(st.one_of(st.integers(1, min(1 << wb, (1 << (mb - 1)) - 1)),
                                           st.integers(1, (1 << (mb - 1)) - 1)))
                        for _ in range(L)),
        reset=draw(st.sampled_from(["subtract", "zero"])))


@st.composite
def programmes(draw, cfg: ChipConfig, batch: int = 2, steps: int = 5):
    """(weights, offsets, spikes) for ``cfg``: weights over the full range, input density 0, 1 or random."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = [rng.integers(cfg.weight_min, cfg.weight_max + 1, (cfg.fan_in(l), cfg.fan_out(l)))
               for l in range(cfg.num_layers)]
    offsets = None
    if draw(st.booleans()):
        offsets = []
        for l in range(cfg.num_layers):
            lo = max(cfg.offset_min, -cfg.threshold[l])
            hi = min(cfg.offset_max, cfg.membrane_max - cfg.threshold[l])
            offsets.append(rng.integers(lo, hi + 1, cfg.fan_out(l)))
    density = draw(st.sampled_from([0.0, 1.0, 0.1, 0.5]))
    spikes = rng.random((batch, steps, cfg.layer_sizes[0])) < density
    return weights, offsets, spikes
