"""The per-layer bias in the RTL (hw/core/bias.py) in Amaranth's simulator against the fast model: random
biased fc and conv/pool chips (with and without overlap), the biases written by the host (the chip is built with
its structure, whose biases are zero), and reprogrammed biases on one build."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from sim.amaranth_sim import AmaranthChip
from sim.chip import make_chip
from tests.compare import assert_same
from tests.strategies import biased, configs, conv_configs, programmes


def run_both(cfg, weights, offsets, spikes):
    fast, rtl = make_chip(cfg, "fast"), AmaranthChip(cfg)
    fast.load(weights, offsets)
    rtl.load(weights, offsets)
    return fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_biased_fc_rtl_matches_model(data):
    cfg = data.draw(biased(configs(max_size=10)))
    assert_same(*run_both(cfg, *data.draw(programmes(cfg, batch=2, steps=4))))


@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_biased_conv_rtl_matches_model(data):
    cfg = data.draw(biased(conv_configs(max_hw=6)))
    assert_same(*run_both(cfg, *data.draw(programmes(cfg, batch=2, steps=3))))


def test_reprogrammed_biases_on_one_build():
    """One structure, two bias programmes (and none of them the build's zeros): the host's region-3 writes."""
    base = ChipConfig(input_shape=(2, 5, 5), layers=({"kind": "conv", "channels": 5, "kernel": 3, "padding": 1},
                                                     {"kind": "pool", "size": 5}, {"kind": "fc", "size": 3}),
                      lanes=2, threshold=(30, 20), beta=(1.0, 0.5), bias=((0,) * 5, (0,) * 3))
    rng = np.random.default_rng(2)
    w = [rng.integers(-60, 100, base.weight_shape(l)) for l in range(2)]
    x = rng.random((2, 5, 50)) < 0.2
    rtl = AmaranthChip(base)
    for bias in (((9, -4, 31, 0, -40), (25, -3, 7)), ((-1, 1, -30, 12, 3), (-25, 0, 21))):
        cfg = base.replace(bias=bias)
        fast = make_chip(cfg, "fast")
        fast.load(w)
        rtl.load(w, cfg=cfg)
        want = fast.run(x, record_state=True)
        assert_same(want, rtl.run(x, record_state=True))
        assert any(s.any() for s in want.spikes)


def test_a_chip_without_bias_elaborates_none_of_it():
    """hw/core/bias.py is built only for a chip with a bias: no bias memory, no add stage elsewhere (the Verilog of a
    chip without one was compared with the code before the bias existed: equal apart from source attributes)."""
    from hw.export import verilog_text
    plain = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    text = verilog_text(plain)          # (the lanes' `bias{k}` is the subtract reset's, not this)
    assert "bias_memory" not in text and "biased" not in text and "bias_addr" not in text
    text = verilog_text(plain.replace(bias=((0,) * 5, (1, 2, 3))))
    assert "bias_memory" in text and "biased0" in text
