"""The wavefront (ChipConfig.wavefront, hw/core/wavefront.py; docs/chip.md, "Wavefront") in the RTL against the fast
model (the scoreboard, sim/lazy.py), in Amaranth's simulator: a host that streams (every step's input back to back,
the output taken as it comes) gets the model's every counter, ``cycles`` included; a host that records every layer's
membranes after every step (and so waits for each step's output) gets the model's spikes, membranes and every
counter but the cycles, on random fc and conv/pool chips; a clear at a random cycle; the flush after a sample. Icarus
and Verilator runs are in test_cocotb.py."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from hw.core import LifCore
from sim.amaranth_sim import AmaranthChip
from sim.chip import make_chip
from sim.driver import HostDriver
from tests.compare import LOCKSTEP_DEPENDENT, assert_same, clear_mid_step_case, simulate
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
    clear_mid_step_case(data, cfg, weights, spikes, LOCKSTEP_DEPENDENT)


def test_wavefront_flush_applies_the_pending_leak():
    """After a streamed sample the layers have run the same steps: the flush leaks every word by the steps since its
    last visit (sim.lazy.flushed_membranes), in three membrane memories with a beta each."""
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

    simulate(dut, tb)
    np.testing.assert_array_equal(got["sample"]["output"], r.output[0])
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(got["stored"][l], r.state[l][0, -1])
        np.testing.assert_array_equal(got["flushed"][l], want[l][0])


def test_wavefront_clear_at_every_cycle_of_a_stream():
    """A clear in every cycle of a streamed sample, one after another in one simulation — in an UPDATE's last cycle
    (a step counted, the next layer's input raised), a decision, the sender part-way: each time the next sample,
    streamed from the cleared chip, equals the model's in its outputs and every counter."""
    from sim.amaranth_sim import AmaranthPins
    from sim.driver import HostDriver
    from sim.model import FastModel
    from hw.bus import REGION_REGS
    cfg = ChipConfig(layer_sizes=(6, 5, 4, 3), lanes=2, threshold=12, beta=0.75, update="touched", max_steps=6,
                     wavefront=True)
    rng = np.random.default_rng(4)
    w = [rng.integers(-2, 14, cfg.weight_shape(l)) for l in range(3)]
    first = rng.random((3, 6)) < 0.6
    x = rng.random((1, 2, 6)) < 0.5
    want = FastModel(cfg, w).run(x)
    whole = FastModel(cfg, w).run(first[None]).counters["cycles"][0]
    dut, got = LifCore(cfg), []

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut), max_wait_cycles=5000)
        await drv.load(cfg, w)
        p, words = drv.pins, []
        for t in range(len(first)):
            words += [drv.bus.pack_event(int(i)) for i in np.flatnonzero(first[t])] + [drv.bus.pack_event(0, end=True)]
        for cut in range(0, whole + 4):
            await drv.clear()
            p.set("events_out__ready", 1)
            sent = 0
            for _ in range(cut):                       # stream the first sample, cut after `cut` cycles
                if sent < len(words):
                    p.set("events_in__payload", words[sent])
                    p.set("events_in__valid", 1)
                taken = sent < len(words) and p.get("events_in__ready")
                await p.tick()
                sent += int(bool(taken))
            p.set("events_in__valid", 0)
            p.set("events_out__ready", 0)
            await drv.write(drv.bus.write_addr(REGION_REGS, drv.bus.reg_command), 1)      # the clear request
            await drv._wait_idle()                     # (no second clear: the next sample from this one's state)
            outputs, _ = await drv.stream([[int(i) for i in np.flatnonzero(x[0, t])] for t in range(x.shape[1])])
            out = np.zeros(want.output[0].shape, bool)
            for t, idx in enumerate(outputs):
                out[t, idx] = True
            got.append({"output": out, "counters": await drv.read_counters()})

    simulate(dut, tb)
    for cut, r in enumerate(got):
        np.testing.assert_array_equal(r["output"], want.output[0], err_msg=f"clear after {cut} cycles")
        for name, v in want.counters.items():
            if name != "stall_cycles":
                assert r["counters"][name] == v[0], (cut, name, r["counters"][name], v[0])


class StutteringHost(HostDriver):
    """A streaming host with gaps: the next input token is offered only some cycles (once offered it is held until
    taken), the output taken only some cycles; ``rng`` decides."""

    def __init__(self, cfg, pins, rng, p_gap: float, p_block: float):
        super().__init__(cfg, pins, max_wait_cycles=20000)
        self.rng, self.p_gap, self.p_block = rng, p_gap, p_block

    async def stream(self, steps):
        rng = self.rng
        return await super().stream(steps, offer=lambda: rng.random() >= self.p_gap,
                                    accept=lambda: rng.random() >= self.p_block)


@given(data=st.data())
@settings(max_examples=4, deadline=None)
def test_wavefront_stuttering_host(data):
    """A host with gaps in its input (between tokens, inside steps) that takes the output only now and then, on fc
    chips of up to six layers and conv/pool chips: the model's spikes and every counter but the cycles and stalls
    (the decisions made while the host holds back are counted, and depend on when it does)."""
    from sim.amaranth_sim import AmaranthPins
    from sim.chip import result_from_samples
    cfg = data.draw(st.one_of(configs(max_size=8, max_layers=6), conv_configs(max_hw=5, max_channels=3)))
    cfg = wavefront(cfg.replace(lanes=data.draw(st.integers(1, 8))), data.draw(st.integers(1, 6)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=data.draw(st.integers(1, cfg.max_steps))))
    p_gap, p_block = data.draw(st.sampled_from([0.2, 0.6, 0.9])), data.draw(st.sampled_from([0.2, 0.6, 0.9]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dut, samples = LifCore(cfg), []

    async def tb(ctx):
        drv = StutteringHost(cfg, AmaranthPins(ctx, dut), rng, p_gap, p_block)
        await drv.load(cfg, weights, offsets)
        for x in spikes:
            samples.append(await drv.run_sample(x, False))

    simulate(dut, tb)
    fast = make_chip(cfg, "fast")
    fast.load(weights, offsets)
    assert_same(fast.run(spikes), result_from_samples(cfg, samples), LOCKSTEP_DEPENDENT)


@pytest.mark.xfail(strict=True, reason="liveness: layer 0's EVENT phase, once begun, holds the event engine until its "
                   "end token, so a host that pauses inside step t + 1 until it has step t's output hangs (an "
                   "update-by-touch chip without the wavefront takes step t + 1 only after step t's output)")
def test_wavefront_host_pausing_inside_the_next_step_gets_the_output():
    """A host sends step 0, then offers step 1's first event while it takes the output, and sends the rest of step 1
    only when step 0's output is complete (input that arrives late, as from a sensor, or depends on the output).
    The touched chip without the wavefront takes that event after step 0's output; the wavefront chip takes it at
    once and its event engine then waits in layer 0's EVENT phase for the rest of step 1, while layer 1's step 0
    waits for the event engine: step 0's end token never comes."""
    from sim.amaranth_sim import AmaranthPins
    cfg = ChipConfig(layer_sizes=(4, 3, 2), lanes=2, threshold=2, update="touched", max_steps=4, wavefront=True)
    w = [np.full(cfg.weight_shape(l), 3) for l in range(2)]
    dut, got = LifCore(cfg), {}

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, w)
        await drv.clear()
        p, bus = drv.pins, drv.bus
        for word in [bus.pack_event(0), bus.pack_event(1), bus.pack_event(0, end=True)]:       # step 0
            p.set("events_in__payload", word)
            p.set("events_in__valid", 1)
            while not p.get("events_in__ready"):
                await p.tick()
            await p.tick()
        p.set("events_in__payload", bus.pack_event(2))      # step 1's first event, held until taken
        p.set("events_out__ready", 1)
        out = []
        for _ in range(500):
            taken = p.get("events_in__ready")
            valid, word = p.get("events_out__valid"), p.get("events_out__payload")
            await p.tick()
            if taken:
                p.set("events_in__valid", 0)
            if valid:
                out.append(bus.unpack_event(word))
                if out[-1][1]:
                    break
        got["out"] = out

    simulate(dut, tb)
    assert got["out"] and got["out"][-1][1], "no end token of step 0 within 500 cycles"


@given(data=st.data())
@settings(max_examples=3, deadline=None)
def test_wavefront_flush_requested_while_streaming(data):
    """A flush written at a random cycle of a streamed sample (the host never pauses, so the chip is busy until the
    sample ends): it waits, runs after the last step, and leaves the model's flushed membranes; the spikes and every
    counter but the cycles are the model's."""
    from hw.bus import COMMAND_FLUSH, REGION_REGS
    from sim.amaranth_sim import AmaranthPins
    from sim.lazy import flushed_membranes
    from sim.model import FastModel
    cfg = data.draw(st.one_of(configs(max_size=8, max_layers=5), conv_configs(max_hw=5, max_channels=3)))
    cfg = wavefront(cfg, data.draw(st.integers(2, 6)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=1, steps=cfg.max_steps, flooded=False))
    model = FastModel(cfg, weights, offsets)
    r = model.run(spikes)
    want = flushed_membranes(model, spikes, r)
    flush_at = data.draw(st.integers(0, 60))
    dut, got = LifCore(cfg), {}

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, weights, offsets)
        await drv.clear()
        p, bus = drv.pins, drv.bus
        words = [w for t in range(cfg.max_steps) for w in
                 [bus.pack_event(cfg.input_address(i)) for i in np.flatnonzero(spikes[0, t])]
                 + [bus.pack_event(0, True)]]
        outputs, current, sent, c = [], [], 0, 0
        p.set("events_out__ready", 1)
        while len(outputs) < cfg.max_steps:
            p.set("events_in__payload", words[min(sent, len(words) - 1)])
            p.set("events_in__valid", int(sent < len(words)))
            p.set("wr__addr", bus.write_addr(REGION_REGS, bus.reg_command))
            p.set("wr__data", COMMAND_FLUSH)
            p.set("wr__en", int(c == flush_at))
            taken = sent < len(words) and p.get("events_in__ready")
            valid, word = p.get("events_out__valid"), p.get("events_out__payload")
            await p.tick()
            p.set("wr__en", 0)
            sent, c = sent + int(bool(taken)), c + 1
            if valid:
                index, end = bus.unpack_event(word)
                if end:
                    outputs.append(current)
                    current = []
                else:
                    current.append(index)
        p.set("events_in__valid", 0)
        if c <= flush_at:                     # the sample ended first
            await drv.flush()
        await drv._wait_idle()
        got["outputs"], got["flushed"], got["counters"] = outputs, await drv.read_membranes(), await drv.read_counters()

    simulate(dut, tb)
    for t, idx in enumerate(got["outputs"]):
        assert sorted(idx) == np.flatnonzero(r.output[0, t]).tolist(), f"step {t}"
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(got["flushed"][l], want[l][0], err_msg=f"layer {l}")
    for name, v in r.counters.items():
        if name not in LOCKSTEP_DEPENDENT:
            assert got["counters"][name] == v[0], name


def _clear_while_streaming(data, max_layers, examples_hw):
    """A random chip; a sample streamed by a host with gaps for a random number of cycles (steps under way in several
    layers, updates queued, the sender part-way), the output then left untaken and a clear requested: the chip is
    idle after it, and the samples after it are the model's (streamed: every counter; recorded: every membrane)."""
    from sim.amaranth_sim import AmaranthPins
    from sim.chip import result_from_samples
    cfg = data.draw(st.one_of(configs(max_size=8, max_layers=max_layers),
                              conv_configs(max_hw=examples_hw, max_channels=3)))
    cfg = wavefront(cfg.replace(lanes=data.draw(st.integers(1, 6))), data.draw(st.integers(2, 6)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=1, steps=data.draw(st.integers(1, cfg.max_steps))))
    first = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).random((cfg.max_steps, cfg.layer_sizes[0]))
    first = first < data.draw(st.sampled_from([0.2, 0.6, 1.0]))
    cycles, p_gap, p_block = data.draw(st.integers(0, 200)), data.draw(st.sampled_from([0.0, 0.5])), \
        data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    dut, streamed, recorded = LifCore(cfg), [], []

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut), max_wait_cycles=5000)
        await drv.load(cfg, weights, offsets)
        await drv.clear()
        p, bus = drv.pins, drv.bus
        words = [w for t in range(cfg.max_steps) for w in
                 [bus.pack_event(cfg.input_address(i)) for i in np.flatnonzero(first[t])] + [bus.pack_event(0, True)]]
        sent, offering = 0, False
        for _ in range(cycles):
            offering = sent < len(words) and (offering or rng.random() >= p_gap)
            p.set("events_in__payload", words[min(sent, len(words) - 1)])
            p.set("events_in__valid", int(offering))
            p.set("events_out__ready", int(rng.random() >= p_block))
            taken = offering and p.get("events_in__ready")
            await p.tick()
            if taken:
                sent, offering = sent + 1, False
        p.set("events_in__valid", 0)
        p.set("events_out__ready", 0)
        await drv.clear()                          # a ChipTimeout if still busy after it
        streamed.append(await drv.run_sample(spikes[0], False))
        recorded.append(await drv.run_sample(spikes[0], True))

    simulate(dut, tb)
    fast = make_chip(cfg, "fast")
    fast.load(weights, offsets)
    assert_same(fast.run(spikes), result_from_samples(cfg, streamed))
    assert_same(fast.run(spikes, record_state=True), result_from_samples(cfg, recorded), LOCKSTEP_DEPENDENT)


@given(data=st.data())
@settings(max_examples=4, deadline=None)
def test_wavefront_clear_while_streaming(data):
    _clear_while_streaming(data, 4, 4)


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_wavefront_clear_while_streaming_exhaustive(data):
    _clear_while_streaming(data, 6, 6)


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_wavefront_stuttering_host_exhaustive(data):
    test_wavefront_stuttering_host.hypothesis.inner_test(data)


@pytest.mark.parametrize("wave", [True, pytest.param(False, marks=pytest.mark.xfail(
    strict=True, reason="the touched chip without the wavefront runs a flush written inside a step's input at once "
                        "(flush_go holds in layer 0's EVENT phase between tokens) and zeroes the step's sums h"))])
def test_flush_written_inside_a_step_waits_for_its_end(wave):
    """A flush written after a step's first input event (the host pauses there): the wavefront chip runs it when idle,
    after the step, and with IF neurons (the flush leaks nothing) the membranes are the model's without it. (The
    update-by-touch chip without the wavefront runs it at once, between two events of layer 0's EVENT phase, and
    loses the sums of the events before it: 6 for 9 here.)"""
    from hw.bus import COMMAND_FLUSH, REGION_REGS
    from sim.amaranth_sim import AmaranthPins
    from sim.model import FastModel
    cfg = ChipConfig(layer_sizes=(4, 3, 2), lanes=2, threshold=100, beta=1.0, update="touched", max_steps=4,
                     wavefront=wave)
    w = [np.full(cfg.weight_shape(l), 3) for l in range(2)]
    x = np.zeros((1, 1, 4), bool)
    x[0, 0, :3] = True
    want = FastModel(cfg, w).run(x, record_state=True)
    dut, got = LifCore(cfg), {}

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, w)
        await drv.clear()
        p, bus = drv.pins, drv.bus
        for k, word in enumerate([bus.pack_event(0), bus.pack_event(1), bus.pack_event(2), bus.pack_event(0, True)]):
            if k == 1:
                p.set("events_in__valid", 0)
                await drv.write(bus.write_addr(REGION_REGS, bus.reg_command), COMMAND_FLUSH)
                for _ in range(60):
                    await p.tick()
            p.set("events_in__payload", word)
            p.set("events_in__valid", 1)
            while not p.get("events_in__ready"):
                await p.tick()
            await p.tick()
        p.set("events_in__valid", 0)
        p.set("events_out__ready", 1)
        for _ in range(300):
            valid, word = p.get("events_out__valid"), p.get("events_out__payload")
            await p.tick()
            if valid and bus.unpack_event(word)[1]:
                break
        await drv._wait_idle()
        got["membranes"] = await drv.read_membranes()

    simulate(dut, tb)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(got["membranes"][l], want.state[l][0, -1], err_msg=f"layer {l}")
