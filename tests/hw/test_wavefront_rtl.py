"""The wavefront (ChipConfig.wavefront, hw/core/wavefront.py; docs/chip.md, "Wavefront") in the RTL against the fast
model (the scoreboard, sim/lazy.py), in Amaranth's simulator: a host that streams (every step's input back to back,
the output taken as it comes) gets the model's every counter, ``cycles`` included; a host that records every layer's
membranes after every step (and so waits for each step's output) gets the model's spikes, membranes and every
counter but the cycles, on random fc and conv/pool chips; a clear at a random cycle; the flush after a sample. Icarus
and Verilator runs are in test_cocotb.py."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from hw.core import LifCore
from sim.amaranth_sim import AmaranthChip
from sim.chip import make_chip
from tests.compare import LOCKSTEP_DEPENDENT, assert_same, clear_mid_step_testbench, simulate_against_model
from tests.strategies import configs, conv_configs, programmes


def wavefront(cfg: ChipConfig, max_steps: int = 8) -> ChipConfig:
    return cfg.replace(update="touched", max_steps=max_steps, wavefront=True)


def check(cfg, weights, offsets, spikes):
    """Streamed: every counter; recorded step by step: every membrane, every counter but the cycles."""
    fast, rtl = make_chip(cfg, "fast"), AmaranthChip(cfg)
    fast.load(weights, offsets)
    rtl.load(weights, offsets)
    assert_same(fast.run(spikes), rtl.run(spikes))
    assert_same(fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True), LOCKSTEP_DEPENDENT)


@given(data=st.data())
@settings(max_examples=5, deadline=None)
def test_wavefront_rtl_matches_model_random(data):
    cfg = wavefront(data.draw(configs(max_size=10)), data.draw(st.integers(4, 9)))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=4)))


@given(data=st.data())
@settings(max_examples=3, deadline=None)
def test_wavefront_conv_rtl_matches_model_random(data):
    cfg = wavefront(data.draw(conv_configs(max_hw=6, max_channels=4)))
    check(cfg, *data.draw(programmes(cfg, batch=2, steps=3)))


def test_wavefront_runs_layers_of_different_steps_at_once():
    """Four layers, every one busy: the streamed sample takes fewer cycles than the touched chip's sequential
    schedule (the layers of one moment work on different steps), the same spikes and membranes."""
    cfg = ChipConfig(layer_sizes=(12, 10, 9, 8, 4), lanes=3, threshold=18, beta=0.8, update="touched", max_steps=8,
                     wavefront=True)
    rng = np.random.default_rng(5)
    w = [rng.integers(-4, 25, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    x = rng.random((2, 6, 12)) < 0.5
    check(cfg, w, None, x)
    sequential = make_chip(cfg.replace(wavefront=False, overlap=False), "fast")
    sequential.load(w)
    rtl = AmaranthChip(cfg)
    rtl.load(w)
    r = rtl.run(x)
    seq = sequential.run(x)
    assert all(s.any() for s in seq.spikes) and (r.output == seq.output).all()
    assert (r.counters["cycles"] < 0.8 * seq.counters["cycles"]).all()


@given(data=st.data())
@settings(max_examples=3, deadline=None)
def test_wavefront_clear_at_a_random_cycle(data):
    """A clear at a random point (an EVENT phase, a decision, UPDATEs waiting, the sender part-way): the samples
    after it equal the model's from the cleared state."""
    cfg = data.draw(st.one_of(configs(max_size=10), conv_configs(max_hw=4, max_channels=5)))
    cfg = wavefront(cfg.replace(lanes=data.draw(st.integers(1, 7))), 6)
    weights, _, spikes = data.draw(programmes(cfg, batch=2, steps=3, flooded=False))
    n0 = cfg.layer_sizes[0]
    first = data.draw(st.lists(st.integers(0, n0 - 1), max_size=6, unique=True))
    second = data.draw(st.lists(st.integers(0, n0 - 1), max_size=3, unique=True))
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, weights, spikes, sorted(first) + [None] + sorted(second) + [None],
                                  data.draw(st.integers(0, 80)), samples)
    simulate_against_model(cfg, dut, tb, weights, spikes, samples, LOCKSTEP_DEPENDENT)


def test_wavefront_flush_applies_the_pending_leak():
    """After a streamed sample the layers have run the same steps: the flush leaks every word by the steps since its
    last visit (sim.lazy.flushed_membranes), in three membrane memories with a beta each."""
    from amaranth.sim import Simulator
    from sim.amaranth_sim import AmaranthPins
    from sim.driver import HostDriver
    from sim.lazy import flushed_membranes
    from sim.model import FastModel
    cfg = ChipConfig(layer_sizes=(6, 5, 4, 3), lanes=2, threshold=20, beta=(0.9, 0.73, 0.56), beta_frac_bits=5,
                     update="touched", max_steps=8, wavefront=True)
    rng = np.random.default_rng(0)
    w = [rng.integers(1, 30, cfg.weight_shape(l)) for l in range(3)]
    x = np.zeros((1, 6, 6), bool)
    x[0, 0, :3] = x[0, 1, 2] = True
    model = FastModel(cfg, w)
    r = model.run(x)
    want = flushed_membranes(model, x, r)
    assert all((want[l] != r.state[l][:, -1]).any() for l in (1, 2))
    dut, got = LifCore(cfg), {}

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, w)
        got["sample"] = await drv.run_sample(x[0], False)
        got["stored"] = await drv.read_membranes()
        await drv.flush()
        got["flushed"] = await drv.read_membranes()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    np.testing.assert_array_equal(got["sample"]["output"], r.output[0])
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(got["stored"][l], r.state[l][0, -1])
        np.testing.assert_array_equal(got["flushed"][l], want[l][0])


def test_wavefront_clear_in_any_cycle_of_a_streamed_sample():
    """A clear requested in every cycle of a streamed sample in turn (the output not taken when it comes): the chip
    is idle after it and the next sample is the model's. (A clear in the last cycle of layer 0's UPDATE once left
    layer 1 a phantom input — ``inputs`` was counted after the clear's zeroing — whose step then ran and sent an
    end token nobody asked for, busy until the host took it.)"""
    from amaranth.sim import Simulator
    from sim.amaranth_sim import AmaranthPins
    from sim.chip import result_from_samples
    from sim.driver import ChipTimeout, HostDriver
    cfg = ChipConfig(layer_sizes=(3, 2, 2), lanes=2, threshold=1, update="touched", max_steps=4, wavefront=True)
    w = [np.full(cfg.weight_shape(l), 3) for l in range(2)]
    x = np.ones((1, 4, 3), bool)
    dut, samples, hung = LifCore(cfg), [], []

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut), max_wait_cycles=50)
        await drv.load(cfg, w)
        p, bus = drv.pins, drv.bus
        words = [bus.pack_event(0, end=True) if i is None else bus.pack_event(i) for t in range(4) for i in (0, 1, 2, None)]
        for c in range(60):                       # a clear c cycles into the sample
            await drv.clear()
            p.set("events_out__ready", 1)
            sent = 0
            for _ in range(c):
                p.set("events_in__payload", words[min(sent, len(words) - 1)])
                p.set("events_in__valid", int(sent < len(words)))
                taken = sent < len(words) and p.get("events_in__ready")
                await p.tick()
                sent += int(bool(taken))
            p.set("events_in__valid", 0)
            p.set("events_out__ready", 0)
            try:
                await drv.clear()
            except ChipTimeout:
                hung.append(c)
                return
        samples.append(await drv.run_sample(x[0], False))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert not hung, f"still busy after a clear requested {hung[0]} cycles into a streamed sample"
    fast = make_chip(cfg, "fast")
    fast.load(w)
    assert_same(fast.run(x), result_from_samples(cfg, samples))
