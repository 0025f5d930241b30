"""The wavefront (ChipConfig.wavefront; docs/chip.md, "Wavefront") as Verilog under Icarus (4-state: any X on an
output port fails) and Verilator (2-state) against the fast model: streamed, every counter; recorded step by step,
every membrane and every counter but the cycles. (A file of its own beside test_cocotb.py so that the two run in
parallel.)"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from sim.chip import make_chip
from tests.compare import LOCKSTEP_DEPENDENT, assert_same
from tests.hw.test_cocotb import conv_programme, need
from tests.strategies import configs, conv_configs, programmes


WAVEFRONT_FIXED = [
    # the wavefront (hw/core/wavefront.py): fc, three membrane memories, IF in one layer
    ChipConfig(layer_sizes=(12, 9, 7, 4), lanes=3, threshold=(40, 30, 20), beta=(0.9, 0.7, 1.0), update="touched",
               max_steps=12, wavefront=True),
    # packed input -> conv -> conv: decoded layers fed from the double-buffered lists
    ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "pool", "size": 2}, {"kind": "conv", "channels": 3, "kernel": 3,
                                              "padding": 1}, {"kind": "conv", "channels": 2, "kernel": 2}),
               lanes=3, threshold=(20, 10), update="touched", max_steps=9, wavefront=True),
]


def check_wavefront(cfg, weights, offsets, spikes, simulator):
    """A wavefront chip: streamed, every counter; recorded step by step (the host waits for each step's output),
    every membrane and every counter but the cycles."""
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, simulator)
    fast.load(weights, offsets)
    rtl.load(weights, offsets)
    assert_same(fast.run(spikes), rtl.run(spikes))
    assert_same(fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True), LOCKSTEP_DEPENDENT)


@pytest.mark.parametrize("simulator,index", [("icarus", 0), ("icarus", 1), ("verilator", 0),
                                             pytest.param("verilator", 1, marks=pytest.mark.slow)])
def test_wavefront_fixed_configs(simulator, index):
    """wavefront = true: silent, sparse and dense input, 7 steps."""
    need(simulator)
    cfg = WAVEFRONT_FIXED[index]
    weights, offsets, rng = conv_programme(cfg, 40 + index)
    spikes = np.concatenate([rng.random((1, 7, cfg.layer_sizes[0])) < d for d in (0.0, 0.05, 0.3)])
    check_wavefront(cfg, weights, offsets, spikes, simulator)


@given(data=st.data())
@settings(max_examples=2, deadline=None)
def test_random_wavefront_configs_icarus(data):
    """Random wavefront fc and conv/pool chips under Icarus: any X on an output port fails."""
    need("icarus")
    cfg = data.draw(st.one_of(configs(max_size=10, max_layers=4), conv_configs(max_hw=6)))
    cfg = cfg.replace(update="touched", max_steps=data.draw(st.integers(3, 10)), wavefront=True)
    check_wavefront(cfg, *data.draw(programmes(cfg, batch=2, steps=3)), "icarus")


@pytest.mark.slow
@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_random_wavefront_configs_exhaustive(simulator, data):
    need(simulator)
    cfg = data.draw(st.one_of(configs(max_size=16, max_layers=4),
                              conv_configs(max_hw=8, max_channels=6, max_image_layers=3)))
    cfg = cfg.replace(update="touched", max_steps=data.draw(st.integers(6, 30)), wavefront=True)
    check_wavefront(cfg, *data.draw(programmes(cfg, batch=2, steps=6)), simulator)
