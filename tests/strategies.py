"""Hypothesis strategies for random chips, programmes and inputs (shared by tests/sim and tests/hw).

Besides uniformly random cases they deliberately draw the corners where RTL bugs hide: layers in which
every neuron fires (``programmes(..)`` "flood" mode with ``configs(..)``'s threshold 1), layer sizes and
memory depths that are not powers of two, and the output layer being the widest layer (it then fills the
event list to its last entry)."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from hw.config import ChipConfig


@st.composite
def configs(draw, max_size: int = 12, max_layers: int = 3, widest_output: bool | None = None,
            threshold_one: bool = False, overlap: bool | None = None) -> ChipConfig:
    """A random chip. ``widest_output``: make the output layer the widest (``None``: sometimes);
    ``threshold_one``: every layer's threshold is 1 (with :func:`flood`, every neuron fires);
    ``overlap``: the chip's ``overlap`` schedule (``None``: drawn)."""
    L = draw(st.integers(1, max_layers))
    sizes = draw(st.lists(st.integers(1, max_size), min_size=L + 1, max_size=L + 1))
    if draw(st.booleans()) if widest_output is None else widest_output:
        widest = max(range(1, L + 1), key=lambda k: sizes[k])
        sizes[widest], sizes[L] = sizes[L], sizes[widest]
    wb = draw(st.integers(2, 8))
    mb = draw(st.integers(max(wb, 5), 14))          # small membranes make saturation common
    m_max = (1 << (mb - 1)) - 1
    # mostly near the weight scale so that neurons fire (several per group), 1 so that a flood fires
    # every neuron, sometimes anywhere
    threshold = st.just(1) if threshold_one else \
        st.one_of(st.integers(1, min(1 << wb, m_max)), st.just(1), st.integers(1, m_max))
    return ChipConfig(
        layer_sizes=tuple(sizes), weight_bits=wb, membrane_bits=mb, lanes=draw(st.integers(1, 5)),
        beta_frac_bits=draw(st.integers(1, 9)), threshold_offset_bits=draw(st.integers(1, min(6, mb))),
        beta=tuple(draw(st.one_of(st.floats(0.01, 0.99), st.just(1.0))) for _ in range(L)),     # 1.0: IF
        threshold=tuple(draw(threshold) for _ in range(L)),
        reset=draw(st.sampled_from(["subtract", "zero"])),
        overlap=draw(st.booleans()) if overlap is None else overlap)


def flood(cfg: ChipConfig, batch: int, steps: int):
    """The largest weights, the lowest effective thresholds and every input on: a layer with threshold 1
    fires all its neurons in every step (and so does every later one with threshold 1)."""
    weights = [np.full(cfg.weight_shape(l), cfg.weight_max) for l in range(cfg.num_layers)]
    offsets = [np.full(cfg.fan_out(l), max(cfg.offset_min, -cfg.threshold[l])) for l in range(cfg.num_layers)]
    return weights, offsets, np.ones((batch, steps, cfg.layer_sizes[0]), bool)


@st.composite
def programmes(draw, cfg: ChipConfig, batch: int = 2, steps: int = 5, flooded: bool | None = None):
    """(weights, offsets, spikes) for ``cfg``: weights over the full range and input density 0, 1 or
    random; or a :func:`flood` (``flooded``: always / never; ``None``: one time in four)."""
    if draw(st.integers(0, 3)) == 0 if flooded is None else flooded:
        return flood(cfg, batch, steps)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = [rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.weight_shape(l))
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


@st.composite
def conv_layers(draw, max_hw: int = 7, max_channels: int = 4, max_image_layers: int = 3, max_fc: int = 2):
    """(input_shape, layers) of a random valid conv/pool/fc network: images of 1..max_hw (height 1
    sometimes: 1-D), kernels up to the padded input, strides 1..2, paddings 0..k-1, pools that tile."""
    C = draw(st.integers(1, 3))
    H = draw(st.sampled_from([1, 1] + list(range(2, max_hw + 1))))
    W = draw(st.integers(1, max_hw))
    shape, cur, layers = (C, H, W), (C, H, W), []
    for _ in range(draw(st.integers(0, max_image_layers))):
        c, h, w = cur
        if draw(st.booleans()):              # pool, if some size tiles
            sizes = [p for p in range(2, 9) if w % p == 0 and (h == 1 or h % p == 0)]
            if not sizes:
                continue
            p = draw(st.sampled_from(sizes))
            layers.append({"kind": "pool", "size": p})
            cur = (c, h // p if h > 1 else 1, w // p)
            continue
        kmax = min(7, w if h == 1 else min(h, w))
        k = draw(st.integers(1, kmax))
        pad = draw(st.integers(0, k - 1))
        s = draw(st.integers(1, min(2, k)))
        if (w + 2 * pad - k) % s > pad or (h > 1 and (h + 2 * pad - k) % s > pad):
            s = 1
        co = draw(st.integers(1, max_channels))
        layers.append({"kind": "conv", "channels": co, "kernel": k, "stride": s, "padding": pad})
        cur = (co, 1 if h == 1 else (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
    n_fc = draw(st.integers(0 if layers and layers[-1]["kind"] == "conv" else 1, max_fc))
    layers += [{"kind": "fc", "size": draw(st.integers(1, 6))} for _ in range(n_fc)]
    return shape, layers


@st.composite
def conv_configs(draw, threshold_one: bool = False, overlap: bool | None = None, **kw) -> ChipConfig:
    """A random conv/pool/fc chip (:func:`conv_layers`) with random number formats, as :func:`configs`
    (``overlap``: the chip's ``overlap`` schedule, ``None``: drawn)."""
    shape, layers = draw(conv_layers(**kw))
    n = sum(1 for ly in layers if ly["kind"] != "pool")
    wb = draw(st.integers(2, 8))
    mb = draw(st.integers(max(wb, 5), 14))
    m_max = (1 << (mb - 1)) - 1
    threshold = st.just(1) if threshold_one else \
        st.one_of(st.integers(1, min(1 << wb, m_max)), st.just(1), st.integers(1, m_max))
    return ChipConfig(
        input_shape=shape, layers=tuple(layers), weight_bits=wb, membrane_bits=mb, lanes=draw(st.integers(1, 5)),
        beta_frac_bits=draw(st.integers(1, 9)), threshold_offset_bits=draw(st.integers(1, min(6, mb))),
        beta=tuple(draw(st.one_of(st.floats(0.01, 0.99), st.just(1.0))) for _ in range(n)),     # 1.0: IF
        threshold=tuple(draw(threshold) for _ in range(n)),
        reset=draw(st.sampled_from(["subtract", "zero"])),
        overlap=draw(st.booleans()) if overlap is None else overlap)


@st.composite
def biased(draw, chips) -> ChipConfig:
    """A chip of the strategy ``chips`` with a per-layer bias (``ChipConfig.bias``): per layer all zero, small
    (about a weight), near the threshold (so a neuron with no input fires or not on its bias alone) or anywhere
    in the membrane range (saturation); one value per output neuron (fc) / channel (conv)."""
    cfg = draw(chips)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    out = []
    for l in range(cfg.num_layers):
        n, kind = cfg.out_channels(l), draw(st.sampled_from(["zero", "small", "threshold", "any"]))
        lo, hi = {"zero": (0, 0), "small": (-(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1)),
                  "threshold": (-cfg.threshold[l], cfg.threshold[l] + 1),
                  "any": (cfg.membrane_min, cfg.membrane_max)}[kind]
        out.append(tuple(int(v) for v in np.clip(rng.integers(lo, hi + 1, n), cfg.membrane_min, cfg.membrane_max)))
    return cfg.replace(bias=tuple(out))
