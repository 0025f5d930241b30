"""Update by touch (ChipConfig.update = "touched", hw/core/touched.py) in the RTL against the fast model (the
scoreboard, sim/lazy.py): output spikes, every layer's stored membranes after every step and every counter
including ``cycles``, in Amaranth's simulator, on random fc and conv/pool chips and the corners — every neuron
firing (hot words), silent input (no word visited: the UPDATE is its fill alone), IF neurons, a clear mid-step,
a host that stalls; the leak table reprogrammed with beta. Icarus and Verilator runs are in test_cocotb.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from hw.core import LifCore
from sim.chip import make_chip
from tests.compare import assert_same, clear_mid_step_case, clear_mid_step_testbench, simulate_against_model
from tests.hw.test_core_amaranth import run_both, simulate_with_stuttering_host
from tests.strategies import configs, conv_configs, programmes


def touched(cfg: ChipConfig, max_steps: int = 8) -> ChipConfig:
    return cfg.replace(update="touched", max_steps=max_steps)


@given(data=st.data())
@settings(max_examples=5, deadline=None)
def test_touched_rtl_matches_model_random(data):
    cfg = touched(data.draw(configs(max_size=10)), data.draw(st.integers(4, 9)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@given(data=st.data())
@settings(max_examples=4, deadline=None)
def test_touched_conv_rtl_matches_model_random(data):
    cfg = touched(data.draw(conv_configs(max_hw=6, max_channels=4)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@given(data=st.data())
@settings(max_examples=4, deadline=None)
def test_touched_rtl_many_lanes_random(data):
    """6-9 lanes (the strategies draw 1-5): words of up to 9 spikes, held up to 4 cycles, two appended per cycle."""
    cfg = data.draw(st.one_of(configs(max_size=14), conv_configs(max_hw=5, max_channels=9)))
    cfg = touched(cfg.replace(lanes=data.draw(st.integers(6, 9))), data.draw(st.integers(4, 9)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@given(data=st.data())
@settings(max_examples=4, deadline=None)
def test_touched_clear_at_a_random_cycle(data):
    """A clear at a random point of a random step (EVENT, UPDATE with words held, OUTPUT part-way through an odd
    or even number of entries): the samples after it equal the model's from the cleared state."""
    cfg = data.draw(st.one_of(configs(max_size=10), conv_configs(max_hw=4, max_channels=5)))
    cfg = touched(cfg.replace(lanes=data.draw(st.integers(1, 7))), 6)
    weights, _, spikes = data.draw(programmes(cfg, batch=2, steps=3, flooded=False))
    clear_mid_step_case(data, cfg, weights, spikes)


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_touched_rtl_matches_model_exhaustive(data):
    cfg = data.draw(st.one_of(configs(max_size=20, max_layers=4),
                              conv_configs(max_hw=8, max_channels=6, max_image_layers=4)))
    cfg = touched(cfg, data.draw(st.integers(8, 40)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=8))
    assert_same(*run_both(cfg, weights, offsets, spikes))


def test_sparse_conv_chip_skips_words_and_leaks_lazily():
    """A quiet conv chip: most words are skipped, touched words get several idle steps' leak at once."""
    conv = {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(2, 6, 6), layers=(conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
                     lanes=2, threshold=(30, 20), beta=(0.7, 0.9), overlap=False, update="touched", max_steps=10)
    rng = np.random.default_rng(4)
    w = [rng.integers(-5, 40, cfg.weight_shape(l)) for l in range(2)]
    x = rng.random((1, 10, 72)) < 0.04
    model, rtl = run_both(cfg, w, None, x)
    assert_same(model, rtl)
    full = make_chip(cfg.replace(update="all"), "fast")
    full.load(w)
    assert (model.counters["state_reads"] < full.run(x).counters["state_reads"]).all()


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_every_neuron_firing_and_silent_input(reset):
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(7, 5, 4), lanes=2, threshold=1, reset=reset, overlap=False, update="touched",
                     max_steps=6)
    weights, offsets, x = flood(cfg, 1, 4)
    assert_same(*run_both(cfg, weights, offsets, np.concatenate([x, ~x])))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_words_with_many_spikes_append_two_per_cycle(reset):
    """Every lane fires (flood): words of 8, 5 (the partial last group), 7 and 3 spikes — even and odd counts
    above 2 — each cost ceil(pc / 2) UPDATE cycles, the RTL cycle-exact with the model and the closed form."""
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(9, 13, 7, 3), lanes=8, threshold=1, reset=reset, overlap=False, update="touched",
                     max_steps=4)
    weights, offsets, x = flood(cfg, 1, 3)
    model, rtl = run_both(cfg, weights, offsets, x)
    assert_same(model, rtl)
    assert all(s.all() for s in model.spikes)                       # every neuron fires in every step
    P = cfg.update_latency
    per_step = ((9 * 2 + 1 + P + 4 + 3) + (13 + 1 + P + 4) + (7 + 1 + P + 2)   # Σ_w max(1, ceil(pc_w / 2))
                + 3 + 1)                                              # OUTPUT: E_out + end token
    assert (rtl.cycles == 3 * per_step).all()


def test_random_spike_counts_per_word_conv_chip():
    """8 lanes, a conv layer into a decoded conv layer (the second spike as a packed coordinate) into a pooled fc
    layer (the second spike's weight row): words with every spike count 0..8, cycle-exact."""
    conv = {"kind": "conv", "channels": 8, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(2, 4, 4), layers=(conv, conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 5}),
                     lanes=8, threshold=(40, 80, 10), overlap=False, update="touched", max_steps=4)
    rng = np.random.default_rng(3)
    w = [rng.integers(-8, 30, cfg.weight_shape(l)) for l in range(3)]
    x = rng.random((2, 4, 32)) < 0.4
    model, rtl = run_both(cfg, w, None, x)
    assert_same(model, rtl)
    counts = {int(c) for s in model.spikes[:2] for c in np.unique(s.reshape(-1, 8).sum(axis=1))}
    assert set(range(9)) <= counts, counts                            # odd and even counts above 2 occur


def test_odd_lanes_partial_groups_pooled_into_conv_and_fc():
    """3 lanes, channels 5 and 7 (G = 2 and 3, a partial last group of 2 and of 1): the second spike of a cycle as
    a packed coordinate through a pool into a decoded conv layer and as a pooled fc row, words of 0..3 spikes, then
    a flood (every neuron of every layer fires: the event list full, an odd total in the output layer)."""
    from tests.strategies import flood
    conv = [{"kind": "conv", "channels": c, "kernel": 3, "padding": 1} for c in (5, 7)]
    pool = {"kind": "pool", "size": 2}
    cfg = ChipConfig(input_shape=(1, 2, 4), layers=(conv[0], pool, conv[1], pool, {"kind": "fc", "size": 3}), lanes=3,
                     threshold=(12, 40, 10), overlap=False, update="touched", max_steps=3)
    rng = np.random.default_rng(2)
    w = [rng.integers(-4, 12, cfg.weight_shape(l)) for l in range(3)]
    model, rtl = run_both(cfg, w, None, rng.random((2, 3, 8)) < 0.6)
    assert_same(model, rtl)
    counts = {int(c) for l in range(2) for c in model.spikes[l].reshape(-1, cfg.out_channels(l))[:, :3].sum(axis=1)}
    assert counts == {0, 1, 2, 3}, counts
    model, rtl = run_both(cfg, *flood(cfg, 1, 3))
    assert_same(model, rtl)
    assert all(s.all() for s in model.spikes)


def test_if_neurons_and_reprogrammed_beta():
    """beta = 1 (B_k = 2^f: no leak), then new betas through load(): the driver rewrites the leak table."""
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=3, threshold=(25, 15), beta=1.0, overlap=False, update="touched",
                     max_steps=7, beta_frac_bits=4)
    rng = np.random.default_rng(5)
    w = [rng.integers(-10, 30, (6, 5)), rng.integers(-10, 30, (5, 3))]
    x = rng.random((2, 7, 6)) < 0.25
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, "amaranth")
    for new in (cfg, cfg.replace(beta=(0.6, 0.85), reset="zero")):
        fast.load(w, cfg=new)
        rtl.load(w, cfg=new)
        assert_same(fast.run(x, record_state=True), rtl.run(x, record_state=True))


def test_host_stalls_change_nothing_but_stall_cycles():
    cfg = ChipConfig(layer_sizes=(8, 6, 4), lanes=2, threshold=25, overlap=False, update="touched", max_steps=5)
    rng = np.random.default_rng(7)
    w = [rng.integers(-30, 80, (8, 6)), rng.integers(-30, 80, (6, 4))]
    rtl = simulate_with_stuttering_host(cfg, w, rng.random((2, 5, 8)) < 0.3)
    assert (rtl.counters["stall_cycles"] > 0).all()


@pytest.mark.parametrize("interrupt_after", [pytest.param(1, marks=pytest.mark.slow), 5,
                                             pytest.param(14, marks=pytest.mark.slow), 35])
def test_clear_mid_step(interrupt_after):
    """A clear in the middle of a step zeroes the stamps and the touched/hot words too."""
    conv = {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=(conv, {"kind": "fc", "size": 3}), lanes=2, threshold=(3, 2),
                     overlap=False, update="touched", max_steps=4)
    rng = np.random.default_rng(13)
    w = [rng.integers(0, 40, cfg.weight_shape(l)) for l in range(2)]
    x = rng.random((2, 3, 16)) < 0.3
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 5, 5, 6, 15, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)


@pytest.mark.parametrize("interrupt_after", [5, 7])
def test_clear_while_the_update_fetches(interrupt_after):
    """A clear in the first cycles of a layer's UPDATE, after its fetch has moved the scan pointer past a word:
    the next step's first UPDATE scans the layer from word 0 again (every neuron of the flood fires)."""
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(5, 14, 9), lanes=7, threshold=1, overlap=False, update="touched", max_steps=4)
    w, _, x = flood(cfg, 1, 2)
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 1, 2, 3, 4, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)


@pytest.mark.parametrize("conv_chip,overlap,layers", [(False, False, 2), (True, False, 2), (False, True, 2),
                                                      (True, True, 2), (False, True, 3), (True, True, 3)])
def test_flush_applies_the_pending_leak(conv_chip, overlap, layers):
    """A flush after a sample: every word's membrane read back leaked by the steps since its last visit
    (sim.lazy.flushed_membranes); a second flush changes nothing; the counters do not count it. With overlap
    the layers are in two membrane memories: the flush walks bank 0's words, then bank 1's — with three layers
    (a beta each) layer 2's words come before layer 1's in the walk but after them in the host's map, so a
    walk that picked a word's leak table by its host address would leak layer 1 or 2 with the other's beta."""
    from sim.amaranth_sim import AmaranthPins
    from sim.driver import HostDriver
    from sim.lazy import flushed_membranes
    from sim.model import FastModel
    if conv_chip and layers == 3:
        conv = {"kind": "conv", "channels": 2, "kernel": 3, "padding": 1}
        cfg = ChipConfig(input_shape=(1, 1, 6), layers=(conv, conv, {"kind": "fc", "size": 3}), lanes=2,
                         threshold=20, beta=(0.9, 0.73, 0.56), beta_frac_bits=5, overlap=overlap, update="touched",
                         max_steps=8)
    elif conv_chip:
        conv = {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1}
        cfg = ChipConfig(input_shape=(1, 5, 5), layers=(conv, {"kind": "fc", "size": 3}), lanes=2,
                         threshold=(60, 40), beta=(0.75, 0.9), overlap=overlap, update="touched", max_steps=8)
    elif layers == 3:
        cfg = ChipConfig(layer_sizes=(6, 5, 4, 3), lanes=2, threshold=20, beta=(0.9, 0.73, 0.56), beta_frac_bits=5,
                         overlap=overlap, update="touched", max_steps=8)
    else:
        cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2, threshold=(60, 40), beta=(0.75, 0.5), overlap=overlap,
                         update="touched", max_steps=8, beta_frac_bits=4)
    assert cfg.state_banks == (2 if overlap else 1) and cfg.num_layers == layers
    rng = np.random.default_rng(21 if layers == 2 else 0)
    w = [rng.integers(0 if layers == 2 else 1, 40 if layers == 2 else 30, cfg.weight_shape(l)) for l in range(layers)]
    x = np.zeros((1, 6, cfg.layer_sizes[0]), bool)
    x[0, 0, :3] = x[0, 1, 2] = True                    # early input, then idle steps: pending leak everywhere
    model = FastModel(cfg, w)
    r = model.run(x)
    want = flushed_membranes(model, x, r)
    assert any((a != b[:, -1]).any() for a, b in zip(want, r.state))      # the flush has work to do
    if layers == 3:                                    # in layers 1 and 2 (the two whose order the walk swaps)
        assert all((want[l] != r.state[l][:, -1]).any() for l in (1, 2))
    dut, got = LifCore(cfg), {}

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, w)
        got["sample"] = await drv.run_sample(x[0], True)
        await drv.flush()
        got["flushed"] = await drv.read_membranes()
        await drv.flush()
        got["again"] = await drv.read_membranes()
        got["counters"] = await drv.read_counters()

    from amaranth.sim import Simulator
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(got["sample"]["state"][l], r.state[l][0])
        np.testing.assert_array_equal(got["flushed"][l], want[l][0])
        np.testing.assert_array_equal(got["again"][l], want[l][0])
    host = ("stall_cycles",)                    # the host's reads between steps are stall cycles
    assert {k: v for k, v in got["counters"].items() if k not in host} == \
        {k: v for k, v in got["sample"]["counters"].items() if k not in host}


@pytest.mark.parametrize("lanes", [8, 16])
def test_netlist_size_of_the_second_spike_pick(lanes):
    """The second spike's one-hot pick (the lowest of ``x`` without its lowest) goes through wires: as one nested
    expression Amaranth emits it with every inner term copied (the touched 8-lane chip's netlist was 10x, the
    16-lane one's 80x the "all" chip's, and Amaranth's simulator took 25 s to start a 16-lane chip, minutes at 32)."""
    import re
    from amaranth.back import rtlil
    plain = ChipConfig(layer_sizes=(8, lanes, 4), lanes=lanes, overlap=False)

    def cells(cfg):
        return len(re.findall(r"\n\s*cell ", rtlil.convert(LifCore(cfg), name="top")))
    assert cells(touched(plain)) < 2 * cells(plain)


def test_cli_verilog_of_a_touched_chip(tmp_path):
    """``spikeloop verilog`` with update = "touched" in the TOML: the leak table is in the Verilog (a memory with
    the config's B_k as its power-up contents) and ports.md names region 3 and the flush."""
    import argparse
    import json
    from hw.cli import cmd_verilog
    toml = tmp_path / "chip.toml"
    toml.write_text('[chip]\nlayer_sizes = [8, 6, 4]\nlanes = 2\noverlap = false\nupdate = "touched"\nmax_steps = 12\n')
    assert cmd_verilog(argparse.Namespace(config=str(toml), weights=None, out=str(tmp_path / "v"))) == 0
    text = (tmp_path / "v" / "spikeloop_core.v").read_text()
    assert "leak_table" in text and "touched_words" in text and "hot_words" in text
    assert "region 3 holds the elapsed-leak table" in (tmp_path / "v" / "ports.md").read_text()
    cfg = ChipConfig.from_dict(json.loads((tmp_path / "v" / "config.json").read_text()))
    assert cfg.touched and cfg.max_steps == 12
    plain = ChipConfig(layer_sizes=(8, 6, 4), lanes=2, overlap=False)
    from amaranth.back import verilog
    assert "touched_words" not in verilog.convert(LifCore(plain), name="spikeloop_core")
