"""The scoreboard: an RTL result must equal the fast model's in every output spike, membrane and counter."""
import numpy as np

from sim.model import ChipResult

HOST_DEPENDENT = ("stall_cycles",)


def assert_same(model: ChipResult, rtl: ChipResult) -> None:
    assert rtl.output.shape == model.output.shape
    bad = np.argwhere(rtl.output != model.output)
    assert bad.size == 0, f"output spikes differ at (sample, step, neuron) {bad[:5].tolist()}"
    if rtl.state is not None:
        for l, (m, r) in enumerate(zip(model.state, rtl.state)):
            bad = np.argwhere(m != r)
            assert bad.size == 0, (f"layer {l} membrane differs at (sample, step, neuron) {bad[:5].tolist()}: "
                                   f"model {m[tuple(bad[0])]}, rtl {r[tuple(bad[0])]}")
    for name, m in model.counters.items():
        if name not in HOST_DEPENDENT:
            assert (rtl.counters[name] == m).all(), f"counter {name}: model {m.tolist()}, rtl {rtl.counters[name].tolist()}"


def simulate_against_model(cfg, dut, testbench, weights, x, samples: list) -> ChipResult:
    """Run ``testbench`` on ``dut`` in Amaranth's simulator (it appends one driver result per sample of
    ``x`` to ``samples``), then check the RTL's result against the fast model's; returns the RTL's."""
    from amaranth.sim import Simulator
    from sim.chip import make_chip, result_from_samples
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    rtl = result_from_samples(cfg, samples)
    fast = make_chip(cfg, "fast")
    fast.load(weights)
    assert_same(fast.run(x, record_state=True), rtl)
    return rtl
