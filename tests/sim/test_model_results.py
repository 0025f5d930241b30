"""A fast-chip result is its own memory, and its counters saturate as the chip's 32-bit counters do."""
import numpy as np
import pytest

from hw.config import COUNTER_BITS, ChipConfig
from sim import model as model_mod
from sim.chip import make_chip
from sim.model import COUNTER_MAX, ChipResult, saturate_counters
from sim.sample import random_spikes, random_weights


def _arrays(r: ChipResult):
    yield from (a for a in r.spikes if a is not None)
    yield from (a for a in (r.state or []) if a is not None)
    yield from r.counters.values()


def _snapshot(r: ChipResult):
    return [a.copy() for a in _arrays(r)]


CHIPS = [ChipConfig(layer_sizes=(16, 12, 4), lanes=4, threshold=8),
         ChipConfig(layer_sizes=(16, 24, 8, 4), lanes=8, threshold=5, reset="zero")]


@pytest.mark.parametrize("B, T", [(1, 1), (1, 6), (5, 1), (3, 4)])
@pytest.mark.parametrize("recurrence", ["auto", "numpy", "numpy-arithmetic"])
def test_a_result_is_not_overwritten_by_later_runs(B, T, recurrence, monkeypatch):
    if recurrence == "numpy-arithmetic":     # the numpy recurrence's float spikes (large arrays) path
        monkeypatch.setattr(model_mod.FastModel, "MASKED_MAX", 0)
    chips = []
    for i, cfg in enumerate(CHIPS):
        chip = make_chip(cfg, "fast")
        chip.load(random_weights(cfg, i, 0.6))
        if recurrence != "auto":
            chip._model = model_mod.FastModel(cfg, chip.weights, chip.offsets, recurrence="numpy")
        chips.append(chip)
    x = [random_spikes(cfg, B, T, 0.7, 10 + i) for i, cfg in enumerate(CHIPS)]
    first = chips[0].run(x[0], record_state=True)
    kept = _snapshot(first)
    assert sum(int(a.sum()) for a in first.spikes) > 0            # something to overwrite
    # the same chip and another chip, same and other shapes, with other inputs
    chips[0].run(1 - x[0], record_state=True)
    chips[1].run(x[1], record_state=True)
    chips[0].run(random_spikes(CHIPS[0], B, T, 0.9, 99), record_state=False)
    for a, b in zip(_arrays(first), kept):
        np.testing.assert_array_equal(a, b)
    # and no array of a result is a view of the per-thread scratch buffers
    for r in (first, chips[1].run(x[1], record_state=True)):
        for a in _arrays(r):
            for buf in model_mod._scratch.bufs.values():
                assert not np.shares_memory(a, buf)


def test_saturating_accumulate_caps_every_counter():
    cfg = CHIPS[0]
    top = (1 << COUNTER_BITS) - 1
    assert COUNTER_MAX == top
    big = {n: np.array([0, top - 1, top, top + 1, 5 * top], np.int64) for n in cfg.counter_names}
    r = ChipResult(spikes=[None], state=None, counters=big)
    for n in cfg.counter_names:
        np.testing.assert_array_equal(r.counters[n], [0, top - 1, top, top, top])
    np.testing.assert_array_equal(r.cycles, [0, top - 1, top, top, top])
    small = {"x": np.array([1, 2], np.int64)}
    assert saturate_counters(small)["x"].tolist() == [1, 2]


def test_fast_model_counters_saturate_end_to_end():
    """1700 x 1700 weights (zero), lanes 1, 1700 steps of all-ones input: 1700^3 = 4.9e9 synaptic
    operations, weight and state reads, and cycles: past 2^32 - 1, where the RTL's counters stop."""
    n, T = 1700, 1700
    cfg = ChipConfig(layer_sizes=(n, n), lanes=1, threshold=1)
    chip = make_chip(cfg, "fast")
    chip.load([np.zeros((n, n), np.int64)])
    r = chip.run(np.ones((1, T, n), np.uint8))
    exact = n * n * T
    assert exact > COUNTER_MAX
    for name in ("synops", "weight_reads", "state_reads", "state_writes", "cycles"):
        assert r.counters[name].tolist() == [COUNTER_MAX], name
    # the counters that stay below the limit are exact
    assert r.counters["in_events"].tolist() == [n * T]
    assert r.counters["neuron_updates"].tolist() == [n * T]
    assert r.counters["out_events"].tolist() == [0]
