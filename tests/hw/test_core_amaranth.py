"""The RTL in Amaranth's simulator against the fast model (the scoreboard)."""
import random

import numpy as np
import pytest
from amaranth.back import verilog
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from hw.core import LifCore
from sim.amaranth_sim import AmaranthChip, AmaranthPins
from sim.chip import make_chip
from sim.driver import HostDriver
from tests.compare import assert_same, simulate_against_model
from tests.strategies import configs, programmes


def run_both(cfg, weights, offsets, spikes, **kw):
    fast, rtl = make_chip(cfg, "fast"), AmaranthChip(cfg, **kw)
    fast.load(weights, offsets)
    rtl.load(weights, offsets)
    return fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True)


@given(data=st.data())
@settings(max_examples=50)     # the depth is test_rtl_matches_model_exhaustive's (slow: 300 examples, larger chips)
def test_rtl_matches_model_random(data):
    cfg = data.draw(configs(max_size=10))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=300)
def test_rtl_matches_model_exhaustive(data):
    cfg = data.draw(configs(max_size=24, max_layers=4))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=8))
    assert_same(*run_both(cfg, weights, offsets, spikes))


@pytest.mark.parametrize("density", [0.0, 1.0])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_all_silent_and_all_spiking(density, reset):
    cfg = ChipConfig(layer_sizes=(9, 7, 5), lanes=3, threshold=20, reset=reset, beta=(0.8, 0.6))
    rng = np.random.default_rng(3)
    w = [rng.integers(-20, 60, (9, 7)), rng.integers(-20, 60, (7, 5))]
    model, rtl = run_both(cfg, w, None, np.full((2, 5, 9), density > 0))
    assert_same(model, rtl)
    assert (model.counters["synops"] == 0).all() == (density == 0)


def test_saturation_both_rails():
    cfg = ChipConfig(layer_sizes=(8, 4, 3), lanes=2, weight_bits=6, membrane_bits=6, threshold=31,
                     threshold_offset_bits=4)
    w = [np.array([[31, -32, 31, -32]] * 8), np.full((4, 3), 31)]
    model, rtl = run_both(cfg, w, [np.zeros(4, int), np.array([-7, 0, -5])], np.ones((1, 4, 8), bool))
    assert_same(model, rtl)
    assert model.state[0].max() > 0 and model.state[0].min() < 0


def test_reprogramming_registers_keeps_structure():
    cfg = ChipConfig(layer_sizes=(6, 5, 4), lanes=2, threshold=30)
    rng = np.random.default_rng(5)
    w = [rng.integers(-50, 100, (6, 5)), rng.integers(-50, 100, (5, 4))]
    x = rng.random((2, 6, 6)) < 0.5
    fast, rtl = make_chip(cfg, "fast"), AmaranthChip(cfg)
    for new in (cfg, cfg.replace(beta=0.3, threshold=(10, 70), reset="zero")):
        fast.load(w, cfg=new)
        rtl.load(w, cfg=new)
        assert_same(fast.run(x, record_state=True), rtl.run(x, record_state=True))


class StutteringDriver(HostDriver):
    """Host with gaps in its input stream and back-pressure on the output stream."""

    def __init__(self, *a, seed=0, **kw):
        super().__init__(*a, **kw)
        self.rng = random.Random(seed)

    async def step(self, events):
        p, bus, out = self.pins, self.bus, []
        for word in [bus.pack_event(i) for i in events] + [bus.pack_event(0, end=True)]:
            while self.rng.random() < 0.4:          # idle cycles before offering the token
                p.set("events_in__valid", 0)
                await p.tick()
            p.set("events_in__payload", word)
            p.set("events_in__valid", 1)
            while True:
                ready = p.get("events_in__ready")
                await p.tick()
                if ready:
                    break
        p.set("events_in__valid", 0)
        while True:
            rdy = self.rng.random() < 0.5
            p.set("events_out__ready", int(rdy))
            valid, word = p.get("events_out__valid"), p.get("events_out__payload")
            await p.tick()
            if valid and rdy:
                index, end = bus.unpack_event(word)
                if end:
                    p.set("events_out__ready", 0)
                    return out
                out.append(index)


def simulate_with_stuttering_host(cfg, w, x):
    """Run the samples ``x`` through the RTL with a :class:`StutteringDriver` (gaps in the input stream,
    back-pressure on the output), check the result against the fast model and return the RTL's."""
    dut, samples = LifCore(cfg), []

    async def tb(ctx):
        drv = StutteringDriver(cfg, AmaranthPins(ctx, dut), seed=11)
        await drv.load(cfg, w)
        for s in x:
            samples.append(await drv.run_sample(s, True))

    return simulate_against_model(cfg, dut, tb, w, x, samples)


def test_host_stalls_change_nothing_but_stall_cycles():
    cfg = ChipConfig(layer_sizes=(10, 6, 5), lanes=2, threshold=25)
    rng = np.random.default_rng(7)
    w = [rng.integers(-30, 80, (10, 6)), rng.integers(-30, 80, (6, 5))]
    x = rng.random((2, 5, 10)) < 0.4
    rtl = simulate_with_stuttering_host(cfg, w, x)
    assert (rtl.counters["stall_cycles"] > 0).all()


def test_default_config_converts_to_verilog():
    text = verilog.convert(LifCore(ChipConfig()), name="spikeloop_core")
    assert "module spikeloop_core" in text and "events_in__payload" in text


@pytest.mark.slow
def test_large_config_converts_to_verilog():
    cfg = ChipConfig(layer_sizes=(1024, 1024, 1024, 1024), lanes=16)
    text = verilog.convert(LifCore(cfg), name="spikeloop_core")
    assert "module spikeloop_core" in text


@pytest.mark.parametrize("interrupt_after", [1, 3, 6, 12, 25])
def test_clear_request_mid_step_starts_over(interrupt_after):
    """A clear command written while a step is under way (EVENT, UPDATE or OUTPUT) aborts it: the next
    samples run as from power-up."""
    cfg = ChipConfig(layer_sizes=(7, 5, 6), lanes=2, threshold=(3, 2))
    rng = np.random.default_rng(13)
    w = [rng.integers(0, 40, (7, 5)), rng.integers(0, 40, (5, 6))]
    x = rng.random((2, 3, 7)) < 0.6
    dut, samples = LifCore(cfg), []

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, w)
        p = drv.pins
        for i in list(range(7)) + [None]:            # a full step's input; the output is never taken
            p.set("events_in__payload", drv.bus.pack_event(i or 0, end=i is None))
            p.set("events_in__valid", 1)
            while not p.get("events_in__ready"):
                await p.tick()
            await p.tick()
        p.set("events_in__valid", 0)
        for _ in range(interrupt_after):             # layer 0 UPDATE .. layer 1 .. OUTPUT (stalled)
            await p.tick()
        assert p.get("busy")
        for s in x:
            samples.append(await drv.run_sample(s, True))

    simulate_against_model(cfg, dut, tb, w, x, samples)


def test_widest_lanes_simulate_and_match_the_model():
    """lanes = 64 (the most ChipConfig allows) in Amaranth's simulator: a hidden layer of 70 neurons (a full group
    and a partial one) with groups that fire 3+ spikes (the `hold` path of hw.core.bits' spike count). The
    simulator once spent minutes expanding that count's expression tree before the first cycle."""
    cfg = ChipConfig(layer_sizes=(12, 70, 5), lanes=64, threshold=20)
    rng = np.random.default_rng(5)
    w = [rng.integers(-10, 40, (12, 70)), rng.integers(-20, 40, (70, 5))]
    model, rtl = run_both(cfg, w, None, rng.random((1, 3, 12)) < 0.5)
    assert_same(model, rtl)
    hidden = model.spikes[0]
    assert hidden[..., :64].sum(-1).max() >= 3 and hidden[..., 64:].sum(-1).max() >= 3
    assert not hidden.all()
