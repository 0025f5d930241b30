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
