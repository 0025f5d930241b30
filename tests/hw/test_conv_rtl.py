"""Conv and pool layers in the RTL (hw/core/conv.py's ConvDecoder and the Sequencer's conv paths) in Amaranth's
simulator against the fast model (the scoreboard): output spikes, the membranes of every layer after every
step and every counter including ``cycles`` (docs/chip.md, "Convolution and pooling" and "Conv event
decoder"). Random conv/pool/fc networks, and the corners: kernels 1..7, strides 1..2, paddings, image
edges, channels not a multiple of the lanes, pools of 2..8 (not only powers of two), 1-D inputs, a pool in
front of an fc layer (packed input), every neuron firing, saturation, host stalls and clears mid-step."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from hw.core import LifCore
from tests.compare import assert_same, clear_mid_step_testbench, simulate_against_model
from tests.hw.test_core_amaranth import run_both, simulate_with_stuttering_host
from tests.strategies import conv_configs, flood, programmes


def conv_chip(shape, layers, **kw) -> ChipConfig:
    return ChipConfig(input_shape=shape, layers=tuple(layers), **kw)


def conv(channels, kernel, stride=1, padding=0):
    return {"kind": "conv", "channels": channels, "kernel": kernel, "stride": stride, "padding": padding}


def pool(size):
    return {"kind": "pool", "size": size}


def fc(size):
    return {"kind": "fc", "size": size}


def random_programme(cfg, seed, batch=2, steps=3, density=0.4, low=None, high=None):
    rng = np.random.default_rng(seed)
    lo = cfg.weight_min if low is None else low
    hi = cfg.weight_max if high is None else high
    weights = [rng.integers(lo, hi + 1, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    return weights, rng.random((batch, steps, cfg.layer_sizes[0])) < density


@given(data=st.data())
@settings(max_examples=8)
def test_conv_rtl_matches_model_random(data):
    cfg = data.draw(conv_configs(max_hw=6, max_channels=4))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=300)
def test_conv_rtl_matches_model_exhaustive(data):
    cfg = data.draw(conv_configs(max_hw=9, max_channels=7, max_image_layers=4))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    assert_same(*run_both(cfg, weights, offsets, spikes))


# one network per kernel size, with the strides and paddings it allows; channels not a multiple of lanes
KERNELS = [(1, 1, 0), (2, 2, 0), (3, 1, 1), (3, 2, 1), (4, 2, 2), (5, 1, 2), (5, 2, 0), (6, 1, 3), (7, 1, 3),
           (7, 2, 6)]


def first_valid(shapes, layers, **kw) -> ChipConfig:
    """The chip on the first of ``shapes`` whose geometry the stride rule allows."""
    for shape in shapes:
        try:
            return conv_chip(shape, layers, **kw)
        except ConfigError:
            pass
    raise AssertionError("no valid shape")


@pytest.mark.parametrize("kernel,stride,padding", KERNELS[:4])
def test_kernel_stride_padding(kernel, stride, padding):
    """Every output position at the image's edges and corners (every input on in the first step)."""
    cfg = first_valid([(2, 5, 5), (2, 6, 5), (2, 6, 6)], [conv(3, kernel, stride, padding), fc(3)], lanes=2,
                      threshold=(40, 30))
    weights, x = random_programme(cfg, kernel * 10 + stride, steps=2, low=-20, high=40)
    x[:, 0] = True
    assert_same(*run_both(cfg, weights, None, x))


@pytest.mark.slow
@pytest.mark.parametrize("kernel,stride,padding", KERNELS[4:])
def test_kernel_stride_padding_large(kernel, stride, padding):
    cfg = first_valid([(3, 9, 8), (3, 8, 9), (3, 9, 9), (3, 8, 8)], [conv(5, kernel, stride, padding), conv(3, 2, 1, 1)],
                      lanes=3, threshold=(60, 30))
    weights, x = random_programme(cfg, kernel * 10 + stride, low=-20, high=40)
    x[:, 0] = True
    assert_same(*run_both(cfg, weights, None, x))


@pytest.mark.parametrize("layers,shape,lanes", [
    ([conv(3, 3, 1, 1), pool(3), fc(4)], (1, 6, 6), 2),              # pool by 3: a reciprocal multiply
    ([pool(2), conv(4, 3, 1, 1), conv(3, 2, 2, 0)], (2, 8, 8), 3),   # pool on the input; conv -> conv
    ([pool(2), fc(5), fc(3)], (2, 4, 6), 2),                          # packed input into an fc layer
    ([conv(3, 5, 2, 2), pool(2), conv(2, 3, 1, 1), fc(3)], (2, 1, 24), 2),   # 1-D: 1 x k kernels
])
def test_pooling_and_layer_chains(layers, shape, lanes):
    cfg = conv_chip(shape, layers, lanes=lanes, threshold=25)
    weights, x = random_programme(cfg, len(layers), low=-10, high=40, density=0.5)
    assert_same(*run_both(cfg, weights, None, x))


@pytest.mark.parametrize("density", [0.0, 1.0])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_conv_all_silent_and_all_spiking(density, reset):
    cfg = conv_chip((1, 5, 5), [conv(3, 3, 1, 1), pool(5), fc(4)], lanes=2, threshold=(1, 20), reset=reset)
    weights, offsets, x = flood(cfg, 2, 3)
    x = x & (density > 0)
    model, rtl = run_both(cfg, weights, offsets, x)
    assert_same(model, rtl)
    assert (model.counters["synops"] == 0).all() == (density == 0)
    assert model.spikes[0].all() == (density > 0)


def test_conv_saturation_both_rails():
    cfg = conv_chip((2, 4, 4), [conv(3, 3, 1, 1), fc(3)], lanes=2, weight_bits=6, membrane_bits=6,
                    threshold=31, threshold_offset_bits=4)
    w0 = np.zeros(cfg.weight_shape(0), int)
    w0[..., 0], w0[..., 1], w0[..., 2] = 31, -32, 31
    w = [w0, np.full(cfg.weight_shape(1), 31)]
    model, rtl = run_both(cfg, w, None, np.ones((1, 4, 32), bool))
    assert_same(model, rtl)
    assert model.state[0].max() > 0 and model.state[0].min() < 0


def test_conv_host_stalls_change_nothing_but_stall_cycles():
    """Gaps in the packed input stream and back-pressure on the output: the decoder's idle cycles waiting
    for the host are stall cycles, the fill and the visits are not."""
    cfg = conv_chip((2, 5, 5), [conv(3, 3, 2, 1), pool(3), fc(4)], lanes=2, threshold=(20, 15))
    w, x = random_programme(cfg, 7, low=-10, high=40)
    rtl = simulate_with_stuttering_host(cfg, w, x)
    assert (rtl.counters["stall_cycles"] > 0).all()


@pytest.mark.parametrize("interrupt_after", [1, 5, 14, 35])
def test_conv_clear_mid_step(interrupt_after):
    """A clear request with events in the decoder, visits in flight, in UPDATE or OUTPUT: the next samples
    run as from power-up."""
    cfg = conv_chip((1, 4, 4), [conv(3, 3, 1, 1), fc(3)], lanes=2, threshold=(3, 2))
    w, x = random_programme(cfg, 13, low=0, high=40, density=0.6)
    dut, samples = LifCore(cfg), []

    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 5, 5, 6, 15, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)


def conv_into_conv(update, **kw):
    """conv -> conv -> fc with overlap (the default): layer 0's UPDATE streams its spikes into layer 1's decoder."""
    extra = {"max_steps": 6} if update == "touched" else {}
    return conv_chip((1, 4, 4), [conv(3, 3, 1, 1), conv(2, 3, 1, 1), fc(3)], lanes=2, update=update, **kw, **extra)


@pytest.mark.parametrize("update", ["all", "touched"])
def test_host_stalls_with_overlap_into_a_conv_layer(update):
    """A stuttering host on a chip whose conv layer 1 takes layer 0's spikes during its UPDATE: the host's gaps are
    stall cycles, the list-fed decoder's idle cycles while that UPDATE runs are not (``EventEngine._decoded_events``'
    gating), so everything but ``stall_cycles`` equals the model, whose overlap hides cycles here."""
    from sim.model import FastModel
    cfg = conv_into_conv(update, threshold=12)
    rng = np.random.default_rng(1)
    w = [rng.integers(-5, 30, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    x = rng.random((2, 4, 16)) < 0.4
    rtl = simulate_with_stuttering_host(cfg, w, x)
    assert (rtl.counters["stall_cycles"] > 0).all()
    assert (rtl.counters["cycles"] < FastModel(cfg.replace(overlap=False), w).run(x).cycles).all()


@pytest.mark.parametrize("update", ["all", "touched"])
@pytest.mark.parametrize("interrupt_after", [50, 66])
def test_clear_during_an_overlapped_update_into_a_conv_layer(update, interrupt_after):
    """A clear while layer 0's UPDATE streams its spikes into conv layer 1's decoder (these ``interrupt_after`` land
    there for both schedules, the list holding spikes not yet taken: checked on the sequencer's registers when
    written): the samples after it run as from power-up."""
    cfg = conv_into_conv(update, threshold=(3, 4, 2))
    rng = np.random.default_rng(13)
    w = [rng.integers(0, 40, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    x = rng.random((2, 3, 16)) < 0.3
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 5, 6, 9, 15, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)


def test_decoder_issues_back_to_back():
    """No cycle between events: an EVENT phase of a conv layer costs exactly its fill, one cycle per
    (position, group) and the end cycle — read off the model's formula and met by the RTL above; here
    the fill is checked to be the RTL's constant with a single event."""
    from hw.config import CONV_DECODE_LATENCY
    cfg = conv_chip((1, 3, 3), [conv(1, 1)], lanes=1, threshold=100)
    x = np.zeros((1, 1, 9), bool)
    x[0, 0, 4] = True
    model, rtl = run_both(cfg, [np.ones((1, 1, 1, 1), int)], None, x)
    assert_same(model, rtl)
    # D + 1 visit + end + P + 9 words + end token
    assert rtl.counters["cycles"][0] == CONV_DECODE_LATENCY + 1 + 1 + cfg.update_latency + 9 + 1


def test_cli_verilog_of_a_conv_chip_from_toml(tmp_path, capsys):
    """``spikeloop verilog --config chip.toml`` with input_shape and layers (and conv-shaped weights)."""
    import argparse
    from hw.cli import cmd_verilog
    toml = tmp_path / "chip.toml"
    toml.write_text('[chip]\ninput_shape = [1, 8, 8]\nlanes = 8\nlayers = [{kind = "conv", channels = 8, kernel = 3, '
                    'padding = 1}, {kind = "pool", size = 2}, {kind = "fc", size = 10}]\n')
    cfg = conv_chip((1, 8, 8), [conv(8, 3, 1, 1), pool(2), fc(10)], lanes=8)
    weights, _ = random_programme(cfg, 1)
    np.savez(tmp_path / "w.npz", **{f"w{l}": w for l, w in enumerate(weights)})
    assert cmd_verilog(argparse.Namespace(config=str(toml), weights=str(tmp_path / "w.npz"),
                                          out=str(tmp_path / "v"))) == 0
    text = (tmp_path / "v" / "spikeloop_core.v").read_text()
    assert "module spikeloop_core" in text and "conv_decoder" in text
    assert "packed input coordinate" in (tmp_path / "v" / "ports.md").read_text()
    assert ChipConfig.from_dict(__import__("json").loads((tmp_path / "v" / "config.json").read_text())) == cfg


def test_conv_weights_in_several_banks():
    """A conv layer's weight rows on both sides of a WeightMemory bank boundary (more than 512 words)."""
    from hw.core import WeightMemory
    cfg = conv_chip((4, 5, 5), [conv(12, 5, 1, 2), fc(3)], lanes=2, threshold=(150, 40))
    assert cfg.weight_depth > WeightMemory.BANK_DEPTH
    weights, x = random_programme(cfg, 29, batch=1, steps=1, low=-20, high=40, density=0.15)
    assert_same(*run_both(cfg, weights, None, x))


def test_decoder_signature():
    from hw.core import ConvDecoder
    cfg = conv_chip((1, 8, 8), [conv(8, 3, 1, 1), pool(2), fc(10)], lanes=8)
    decoder = ConvDecoder(cfg)
    decoder._MustUse__silence = True                # built for its signature only, never elaborated
    sig = decoder.signature
    assert sig == ConvDecoder.Signature(2, cfg.index_bits, cfg.weight_depth, cfg.state_depth, 2)
    assert sig != ConvDecoder.Signature(2, cfg.index_bits, cfg.weight_depth, cfg.state_depth, 3)
    assert repr(sig).startswith("ConvDecoder.Signature(num_layers=2, ")
    assert {"accept", "issue", "weight_addr", "state_addr", "end", "fill"} <= set(sig.members)
