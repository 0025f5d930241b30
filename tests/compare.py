"""The scoreboard: an RTL result must equal the fast model's in every output spike, membrane and counter."""
import numpy as np

from sim.model import ChipResult

HOST_DEPENDENT = ("stall_cycles",)
#: a wavefront chip's host that records the membranes after every step waits for each step's output before it
#: sends the next (docs/chip.md, "Wavefront"): its cycles are that host's, the model's those of a streaming host
LOCKSTEP_DEPENDENT = ("stall_cycles", "cycles")


def assert_same(model: ChipResult, rtl: ChipResult, host_dependent=HOST_DEPENDENT) -> None:
    assert rtl.output.shape == model.output.shape
    bad = np.argwhere(rtl.output != model.output)
    assert bad.size == 0, f"output spikes differ at (sample, step, neuron) {bad[:5].tolist()}"
    if rtl.state is not None:
        for l, (m, r) in enumerate(zip(model.state, rtl.state)):
            bad = np.argwhere(m != r)
            assert bad.size == 0, (f"layer {l} membrane differs at (sample, step, neuron) {bad[:5].tolist()}: "
                                   f"model {m[tuple(bad[0])]}, rtl {r[tuple(bad[0])]}")
    for name, m in model.counters.items():
        if name not in host_dependent:
            assert (rtl.counters[name] == m).all(), f"counter {name}: model {m.tolist()}, rtl {rtl.counters[name].tolist()}"


def simulate(dut, testbench) -> None:
    """Run ``testbench`` on ``dut`` in Amaranth's simulator (a 100 MHz clock) to its end."""
    from amaranth.sim import Simulator
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def simulate_against_model(cfg, dut, testbench, weights, x, samples: list,
                           host_dependent=HOST_DEPENDENT) -> ChipResult:
    """Run ``testbench`` on ``dut`` in Amaranth's simulator (it appends one driver result per sample of
    ``x`` to ``samples``), then check the RTL's result against the fast model's; returns the RTL's."""
    from sim.chip import make_chip, result_from_samples
    simulate(dut, testbench)
    rtl = result_from_samples(cfg, samples)
    fast = make_chip(cfg, "fast")
    fast.load(weights)
    assert_same(fast.run(x, record_state=True), rtl, host_dependent)
    return rtl


def clear_mid_step_testbench(cfg, dut, weights, x, events, interrupt_after: int, samples: list):
    """A testbench that sends ``events`` (input addresses; ``None`` is the end of the step) and, after
    ``interrupt_after`` accepted tokens — or that many cycles of waiting — requests a clear, then runs
    every sample of ``x`` from the cleared state (their results go to ``samples``)."""
    from sim.amaranth_sim import AmaranthPins
    from sim.driver import HostDriver

    async def tb(ctx):
        drv = HostDriver(cfg, AmaranthPins(ctx, dut))
        await drv.load(cfg, weights)
        p, n = drv.pins, 0
        p.set("events_out__ready", 1)                # the output is taken: the step may finish
        for i in events:
            word = cfg.input_address(i or 0) if cfg.packed_input else (i or 0)
            p.set("events_in__payload", drv.bus.pack_event(word, end=i is None))
            p.set("events_in__valid", 1)
            while not p.get("events_in__ready"):
                await p.tick()
            await p.tick()
            n += 1
            if n > interrupt_after:
                break
        p.set("events_in__valid", 0)
        for _ in range(max(0, interrupt_after - n)):
            await p.tick()
        p.set("events_out__ready", 0)
        await drv.clear()
        for s in x:
            samples.append(await drv.run_sample(s, True))
    return tb


def clear_mid_step_case(data, cfg, weights, spikes, host_dependent=HOST_DEPENDENT) -> ChipResult:
    """Draw a clear at a random point of a random first step (hypothesis ``data``: up to 6 then 3 input events),
    run it with :func:`clear_mid_step_testbench` and check the samples ``spikes`` after it against the model."""
    from hypothesis import strategies as st
    from hw.core import LifCore
    n0 = cfg.layer_sizes[0]
    first = data.draw(st.lists(st.integers(0, n0 - 1), max_size=6, unique=True))
    second = data.draw(st.lists(st.integers(0, n0 - 1), max_size=3, unique=True))
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, weights, spikes, sorted(first) + [None] + sorted(second) + [None],
                                  data.draw(st.integers(0, 80)), samples)
    return simulate_against_model(cfg, dut, tb, weights, spikes, samples, host_dependent)
