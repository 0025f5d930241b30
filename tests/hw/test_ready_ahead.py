"""The fc event engine's take decision starts at registers decided a cycle ahead (hw/core/event_engine.py,
``Sequencer._ready_ahead``): ``ready_list`` / ``ready_in`` must equal, in every cycle, what they stand for — the
phase is STEP, the engine neither waits nor is part-way through an event, and its layer is an fc layer after
the first / layer 0 — on fc, conv, update-by-touch and wavefront chips, a host that clears mid-step. Cycle-exactness against
the fast model is the other tests' (test_core_amaranth, test_pipeline, test_cocotb, ...)."""
import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from hw.core import LifCore
from hw.core.sequencer import Sequencer
from sim.amaranth_sim import AmaranthPins
from sim.driver import HostDriver
from tests.compare import clear_mid_step_testbench
from tests.strategies import configs, conv_configs, programmes


def _run_checked(cfg, testbench_of):
    """Run ``testbench_of(dut)`` with a checker comparing the ready registers with their expression every cycle;
    returns the cycles checked and how many had each register set."""
    seen = []                                         # the elaborated sequencer's shared state
    ahead = Sequencer._ready_ahead

    def spy(self, m, s, fsm):
        ahead(self, m, s, fsm)
        seen.append(s)
    dut = LifCore(cfg.structure())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Sequencer, "_ready_ahead", spy)
        sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench_of(dut))
    counts = {"cycles": 0, "list": 0, "in": 0}

    async def checker(ctx):
        s = seen[0]
        want_list, want_in = s.ready_now
        async for _ in ctx.tick():
            got = ctx.get(s.ready_list), ctx.get(s.ready_in)
            assert got == (ctx.get(want_list), ctx.get(want_in)), f"cycle {counts['cycles']}: {got}"
            counts["cycles"] += 1
            counts["list"] += got[0]
            counts["in"] += got[1]
    sim.add_testbench(checker, background=True)
    sim.run()
    assert len(seen) == 1
    return counts


def _samples(cfg, weights, offsets, spikes):
    def testbench_of(dut):
        async def tb(ctx):
            drv = HostDriver(cfg.structure(), AmaranthPins(ctx, dut))
            await drv.load(cfg, weights, offsets)
            for x in spikes:
                await drv.run_sample(x, False)
        return tb
    return testbench_of


@given(data=st.data())
@settings(max_examples=6, deadline=None)
def test_ready_registers_fc(data):
    cfg = data.draw(configs(max_size=10))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    counts = _run_checked(cfg, _samples(cfg, weights, offsets, spikes))
    assert counts["in"] > 0


@given(data=st.data())
@settings(max_examples=3, deadline=None)
def test_ready_registers_conv_and_touched(data):
    cfg = data.draw(conv_configs(max_hw=6, max_channels=4, overlap=False))
    if data.draw(st.booleans()):
        cfg = cfg.replace(update="touched", max_steps=8, wavefront=data.draw(st.booleans()))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    _run_checked(cfg, _samples(cfg, weights, offsets, spikes))


@pytest.mark.parametrize("interrupt_after", [0, 3, 9])
@pytest.mark.parametrize("wavefront", [False, True])
def test_ready_registers_clear_mid_step(interrupt_after, wavefront):
    cfg = ChipConfig(layer_sizes=(9, 7, 5), lanes=3, threshold=20)
    if wavefront:               # the decisions, the update queue and the sender (hw/core/wavefront.py)
        cfg = cfg.replace(update="touched", max_steps=8, wavefront=True)
    rng = np.random.default_rng(interrupt_after)
    w = [rng.integers(-20, 60, (9, 7)), rng.integers(-20, 60, (7, 5))]
    x = rng.random((2, 3, 9)) < 0.6
    events = [0, 2, 3, 5, 8, None, 1, 4, None]
    counts = _run_checked(cfg, lambda dut: clear_mid_step_testbench(cfg, dut, w, x, events,
                                                                                  interrupt_after, []))
    assert counts["list"] > 0 and counts["in"] > 0
