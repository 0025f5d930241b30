"""The generated Verilog under Icarus and Verilator (cocotb 2.x) against the fast model."""
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from sim.chip import make_chip
from sim.cocotb_sim import simulator_available
from tests.compare import assert_same
from tests.strategies import biased, configs, conv_configs, programmes

pytestmark = pytest.mark.cocotb


def need(simulator):
    reason = simulator_available(simulator)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{simulator} must be installed in CI: {reason}")
        pytest.skip(reason)


def check(cfg, weights, offsets, spikes, simulator):
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, simulator)
    fast.load(weights, offsets)
    rtl.load(weights, offsets)
    assert_same(fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True))


FIXED = [
    ChipConfig(layer_sizes=(12, 9, 7, 4), lanes=3, threshold=(40, 30, 20), beta=(0.9, 0.7, 0.5)),
    ChipConfig(layer_sizes=(5, 3), lanes=1, weight_bits=6, membrane_bits=6, threshold=31,
               threshold_offset_bits=4, reset="zero"),
    ChipConfig(layer_sizes=(16, 16, 16), lanes=16, threshold=60, beta_frac_bits=12),
    # exact IF neurons (beta = 1: beta_int = 2**f, no leak), a saturating membrane, both reset modes
    ChipConfig(layer_sizes=(10, 7, 5), lanes=3, weight_bits=5, membrane_bits=8, threshold=(40, 25), beta=1.0,
               beta_frac_bits=4, reset="subtract"),
    ChipConfig(layer_sizes=(10, 7, 5), lanes=4, threshold=(40, 25), beta=(1.0, 0.75), reset="zero"),
]


#: Verilator (2-state) in the default suite on the configuration whose features the other default Verilator
#: tests (leaky fc with an IF layer: test_touched_fixed_configs; leaky conv; ECP5 banks; the imported SCNNs) do not
#: cover: IF with a saturating membrane and the subtract reset; Icarus (4-state: X propagation) on all. Each
#: Verilator build is tens of CPU seconds: the rest of the matrix runs with ``-m slow``.
VERILATOR_DEFAULT = {3}


@pytest.mark.parametrize("simulator,index", [
    *[("icarus", i) for i in range(len(FIXED))],
    *[pytest.param("verilator", i, marks=() if i in VERILATOR_DEFAULT else pytest.mark.slow)
      for i in range(len(FIXED))]])
def test_fixed_configs(simulator, index):
    need(simulator)
    cfg = FIXED[index]
    rng = np.random.default_rng(index)
    weights = [rng.integers(cfg.weight_min, cfg.weight_max + 1, (cfg.fan_in(l), cfg.fan_out(l)))
               for l in range(cfg.num_layers)]
    offsets = [rng.integers(-3, 1, cfg.fan_out(l)) for l in range(cfg.num_layers)]
    # silent, sparse and full samples in one batch: one simulator launch (each costs seconds)
    spikes = np.concatenate([rng.random((2, 5, cfg.layer_sizes[0])) < d for d in (0.0, 0.3, 1.0)])
    check(cfg, weights, offsets, spikes, simulator)


@given(data=st.data())
@settings(max_examples=4)
def test_random_configs_icarus(data):
    need("icarus")
    cfg = data.draw(configs(max_size=10))
    check(cfg, *data.draw(programmes(cfg)), "icarus")


@given(data=st.data())
@settings(max_examples=4)
def test_full_firing_widest_output_icarus(data):
    """Every neuron of every layer fires and the output layer is the widest (its size mostly not a power
    of two): the event list runs full. Icarus is 4-state, so an out-of-range read shows as X on a port."""
    need("icarus")
    cfg = data.draw(configs(max_size=10, widest_output=True, threshold_one=True))
    check(cfg, *data.draw(programmes(cfg, batch=1, steps=3, flooded=True)), "icarus")


CONV_FIXED = [
    # conv (stride 2, padding) -> pool by 3 -> fc; channels not a multiple of the lanes
    ChipConfig(input_shape=(2, 7, 7), layers=({"kind": "conv", "channels": 5, "kernel": 3, "stride": 2, "padding": 1},
                                              {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
               lanes=2, threshold=(30, 20), beta=(0.9, 0.6)),
    # pool on the packed input -> conv -> conv (a conv output layer: HWC output indices)
    ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "pool", "size": 2}, {"kind": "conv", "channels": 3, "kernel": 3,
                                              "padding": 1}, {"kind": "conv", "channels": 2, "kernel": 2}),
               lanes=3, threshold=(20, 10), reset="zero"),
    # the NIR paper's SCNN pattern in small: conv -> IF, pool, fc -> IF (beta = 1)
    ChipConfig(input_shape=(2, 6, 6), layers=({"kind": "conv", "channels": 3, "kernel": 3, "stride": 1, "padding": 1},
                                              {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
               lanes=2, threshold=(25, 20), beta=1.0, reset="zero", weight_bits=8, membrane_bits=16),
]


def conv_programme(cfg, seed):
    rng = np.random.default_rng(seed)
    weights = [rng.integers(cfg.weight_min // 4, cfg.weight_max + 1, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    offsets = [rng.integers(-3, 1, cfg.fan_out(l)) for l in range(cfg.num_layers)]
    return weights, offsets, rng


@pytest.mark.parametrize("simulator,index", [("icarus", 0), ("icarus", 1), ("icarus", 2), ("verilator", 0),
                                             pytest.param("verilator", 1, marks=pytest.mark.slow),
                                             # IF + pool + fc on Verilator by default: the imported SCNN's test
                                             pytest.param("verilator", 2, marks=pytest.mark.slow)])
def test_conv_fixed_configs(simulator, index):
    """Conv and pool chips (the ConvDecoder) in the generated Verilog: silent, sparse and full input."""
    need(simulator)
    cfg = CONV_FIXED[index]
    weights, offsets, rng = conv_programme(cfg, index)
    spikes = np.concatenate([rng.random((1, 4, cfg.layer_sizes[0])) < d for d in (0.0, 0.3, 1.0)])
    check(cfg, weights, offsets, spikes, simulator)


@given(data=st.data())
@settings(max_examples=3)
def test_random_conv_configs_icarus(data):
    """Random conv/pool/fc networks, flooded one time in four (every neuron firing, the event list full):
    any X on an output port fails the run."""
    need("icarus")
    cfg = data.draw(conv_configs(max_hw=6))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=3)), "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@given(data=st.data())
@settings(max_examples=30)
def test_random_conv_configs_exhaustive(simulator, data):
    need(simulator)
    cfg = data.draw(conv_configs(max_hw=8, max_channels=6, max_image_layers=4))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=4)), simulator)


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@given(data=st.data())
@settings(max_examples=40)
def test_random_configs_exhaustive(simulator, data):
    need(simulator)
    cfg = data.draw(configs(max_size=20, max_layers=4))
    check(cfg, *data.draw(programmes(cfg, batch=3, steps=6)), simulator)


def test_build_cache_key_follows_the_verilog_text():
    """An RTL change with the same structure must not reuse a stale simulator build."""
    from sim.cocotb_sim import build_key
    cfg = FIXED[0]
    key = build_key(cfg, "icarus", "module a; endmodule")
    assert key != build_key(cfg, "icarus", "module a;  endmodule")
    assert key != build_key(cfg, "verilator", "module a; endmodule")
    assert key == build_key(cfg.replace(threshold=5), "icarus", "module a; endmodule")


TOUCHED_FIXED = [
    # update by touch (hw/core/touched.py): fc, the leak table, IF in one layer, zero reset
    ChipConfig(layer_sizes=(12, 9, 7, 4), lanes=3, threshold=(40, 30, 20), beta=(0.9, 0.7, 1.0), overlap=False,
               update="touched", max_steps=12),
    # conv (stride 2) -> pool -> fc, channels not a multiple of the lanes: the append registers by divides
    ChipConfig(input_shape=(2, 11, 11), layers=({"kind": "conv", "channels": 5, "kernel": 3, "stride": 2, "padding": 1},
                                                {"kind": "pool", "size": 3}, {"kind": "fc", "size": 4}),
               lanes=2, threshold=(30, 20), beta=(0.8, 0.6), reset="zero", overlap=False, update="touched", max_steps=9),
    # packed input -> conv -> conv (a decoded next layer)
    ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "pool", "size": 2}, {"kind": "conv", "channels": 3, "kernel": 3,
                                              "padding": 1}, {"kind": "conv", "channels": 2, "kernel": 2}),
               lanes=3, threshold=(20, 10), overlap=False, update="touched", max_steps=9),
    # the same with overlap (two membrane memories; each UPDATE streams into the next layer's decoder)
    ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "pool", "size": 2}, {"kind": "conv", "channels": 3, "kernel": 3,
                                              "padding": 1}, {"kind": "conv", "channels": 2, "kernel": 2}),
               lanes=3, threshold=(20, 10), overlap=True, update="touched", max_steps=9),
]


@pytest.mark.parametrize("simulator,index", [("icarus", 0), ("icarus", 1), ("icarus", 2), ("icarus", 3),
                                             ("verilator", 0),
                                             pytest.param("verilator", 1, marks=pytest.mark.slow),
                                             pytest.param("verilator", 2, marks=pytest.mark.slow),
                                             pytest.param("verilator", 3, marks=pytest.mark.slow)])
def test_touched_fixed_configs(simulator, index):
    """update = "touched": silent, sparse and dense input (no word, some words, most words visited), 7 steps (idle
    stretches of several steps: the leak table's B_k for k > 1)."""
    need(simulator)
    cfg = TOUCHED_FIXED[index]
    weights, offsets, rng = conv_programme(cfg, 40 + index)
    spikes = np.concatenate([rng.random((1, 7, cfg.layer_sizes[0])) < d for d in (0.0, 0.05, 0.3)])
    check(cfg, weights, offsets, spikes, simulator)


@pytest.mark.parametrize("simulator,overlap", [("icarus", False), ("icarus", True), ("verilator", True),
                                               pytest.param("verilator", False, marks=pytest.mark.slow)])
def test_touched_words_with_many_spikes(simulator, overlap):
    """8 lanes, words with every spike count 0..8: two spikes appended per cycle into the two-wide event list (its
    even and odd memories), the second as a packed coordinate (into a decoded conv layer) and as a pooled fc row;
    with overlap the next layer's event engine takes them while they are appended."""
    need(simulator)
    conv = {"kind": "conv", "channels": 8, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(2, 4, 4), layers=(conv, conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 5}),
                     lanes=8, threshold=(40, 80, 10), overlap=overlap, update="touched", max_steps=4)
    rng = np.random.default_rng(3)
    weights = [rng.integers(-8, 30, cfg.weight_shape(l)) for l in range(3)]
    check(cfg, weights, None, rng.random((2, 4, 32)) < 0.4, simulator)


@given(data=st.data())
@settings(max_examples=2, deadline=None)
def test_random_touched_configs_icarus(data):
    """Random update = "touched" fc and conv/pool chips under Icarus: any X on an output port fails."""
    need("icarus")
    cfg = data.draw(st.one_of(configs(max_size=10), conv_configs(max_hw=6)))      # overlap drawn
    cfg = cfg.replace(update="touched", max_steps=data.draw(st.integers(3, 10)))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=3)), "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_random_touched_configs_exhaustive(simulator, data):
    need(simulator)
    cfg = data.draw(st.one_of(configs(max_size=16, max_layers=4),
                              conv_configs(max_hw=8, max_channels=6, max_image_layers=3)))
    cfg = cfg.replace(update="touched", max_steps=data.draw(st.integers(6, 30)))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=6)), simulator)


BIAS_FIXED = [
    # fc with a bias on every layer (the bias memory, region 3, one more UPDATE stage): leaky, IF, overlap
    ChipConfig(layer_sizes=(12, 9, 7, 4), lanes=3, threshold=(40, 30, 20), beta=(0.9, 1.0, 0.5),
               bias=((5, -7, 12, 0, 41, -3, 2, 9, -40), (3, -1, 0, 6, -6, 20, 1), (-2, 8, 0, 30))),
    # the NIR paper's SCNN pattern in small, biased: conv -> IF, pool, fc -> IF, a saturating bias
    ChipConfig(input_shape=(2, 6, 6), layers=({"kind": "conv", "channels": 3, "kernel": 3, "padding": 1},
                                              {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
               lanes=2, threshold=(25, 20), beta=1.0, reset="zero", weight_bits=8, membrane_bits=12,
               bias=((6, -2048, 11), (-9, 2047, 4, 0))),
]


@pytest.mark.parametrize("simulator,index", [("icarus", 0), ("icarus", 1), ("verilator", 1),
                                             pytest.param("verilator", 0, marks=pytest.mark.slow)])
def test_bias_fixed_configs(simulator, index):
    """Chips with a per-layer bias (docs/chip.md, "Bias"): silent input (the bias alone drives the neurons),
    sparse and full; the biases reach the chip through the host's writes (the build's are zero)."""
    need(simulator)
    cfg = BIAS_FIXED[index]
    weights, offsets, rng = conv_programme(cfg, 60 + index)
    spikes = np.concatenate([rng.random((1, 5, cfg.layer_sizes[0])) < d for d in (0.0, 0.3, 1.0)])
    check(cfg, weights, offsets, spikes, simulator)


@given(data=st.data())
@settings(max_examples=3, deadline=None)
def test_random_biased_configs_icarus(data):
    """Random biased fc and conv/pool chips under Icarus: any X on an output port fails."""
    need("icarus")
    cfg = data.draw(biased(st.one_of(configs(max_size=10), conv_configs(max_hw=6))))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=3)), "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_random_biased_configs_exhaustive(simulator, data):
    need(simulator)
    cfg = data.draw(biased(st.one_of(configs(max_size=16, max_layers=4),
                                     conv_configs(max_hw=8, max_channels=6, max_image_layers=3))))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=5)), simulator)
