"""The fast model of an update="touched" chip (sim/lazy.py) against the executable specification
(sim.event_bound.lazy_run: spikes, membranes, cycles) and the independent per-neuron, per-event, per-cycle
reference (tests/reference.py, update="touched": every counter), on random fc and conv/pool chips."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from sim.event_bound import lazy_run
from sim.model import FastModel
from tests.strategies import configs, conv_configs, programmes


def touched(cfg: ChipConfig, max_steps: int = 16) -> ChipConfig:
    return cfg.replace(update="touched", max_steps=max_steps)


chips = st.one_of(configs(), conv_configs(max_hw=6, max_channels=4)).map(touched)    # overlap drawn


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_fast_model_is_the_lazy_specification(data):
    cfg = data.draw(chips)
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=6))
    model = FastModel(cfg, weights, offsets)
    r = model.run(spikes)
    lz = lazy_run(model, spikes)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(r.spikes[l], lz.spikes[l])
        np.testing.assert_array_equal(r.state[l], lz.state[l])
    # lazy_run's cycles are the sequential schedule's (it does not model the overlap)
    sequential = r if not cfg.overlap else FastModel(cfg.replace(overlap=False), weights, offsets).run(spikes)
    np.testing.assert_array_equal(sequential.cycles, lz.cycles)
    assert (r.cycles <= sequential.cycles).all()
    without = model.run(spikes, record_state=False)
    assert without.state is None and all((a == b).all() for a, b in zip(without.spikes, r.spikes))


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_fast_model_counters_match_the_reference(data):
    from tests.reference import reference_run
    cfg = data.draw(chips)
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=5))
    r = FastModel(cfg, weights, offsets).run(spikes)
    offs = cfg.check_offsets(offsets)
    for b in range(spikes.shape[0]):
        cnt = {}
        spk, state, cycles = reference_run(cfg, weights, offs, spikes[b], counters=cnt)
        for name in cfg.counter_names:
            if name != "stall_cycles":
                assert r.counters[name][b] == cnt[name], name
        for t in range(spikes.shape[1]):
            for l in range(cfg.num_layers):
                assert list(r.spikes[l][b, t]) == spk[t][l] and list(r.state[l][b, t]) == state[t][l]


@pytest.mark.parametrize("lanes", [8, 7])
def test_many_spikes_per_word_against_the_reference(lanes):
    """Every lane fires (flood, 8 and 7 lanes: full and partial groups, even and odd spike counts above 2): two
    spikes appended per cycle, max(1, ceil(pc / 2)) per word, in the model, the specification and the reference."""
    from tests.reference import reference_run
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(9, 13, 7, 3), lanes=lanes, threshold=1, overlap=False, update="touched",
                     max_steps=3)
    weights, offsets, x = flood(cfg, 1, 3)
    model = FastModel(cfg, weights, offsets)
    r = model.run(x)
    np.testing.assert_array_equal(r.cycles, lazy_run(model, x).cycles)
    cnt = {}
    reference_run(cfg, weights, cfg.check_offsets(offsets), x[0], counters=cnt)
    assert r.counters["cycles"][0] == cnt["cycles"]
    words = sum(-(-min(lanes, n - g) // 2) for n in (13, 7, 3) for g in range(0, n, lanes))   # Σ ceil(pc / 2)
    events = 9 * cfg.groups(0) + 13 * cfg.groups(1) + 7 * cfg.groups(2)
    assert cnt["cycles"] == 3 * (events + 3 * (1 + cfg.update_latency) + words + 3 + 1)


def test_per_neuron_leak_multipliers():
    """sim.faults' leak mismatch: one B_k table per neuron."""
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2, threshold=20, beta=0.8, overlap=False, update="touched",
                     max_steps=12)
    rng = np.random.default_rng(1)
    w = [rng.integers(-10, 30, (6, 5)), rng.integers(-10, 30, (5, 3))]
    beta = [rng.integers(150, 255, 5), rng.integers(100, 255, 3)]
    x = rng.random((2, 12, 6)) < 0.2
    model = FastModel(cfg, w, beta_int=beta)
    r, lz = model.run(x), lazy_run(model, x)
    for l in range(2):
        np.testing.assert_array_equal(r.state[l], lz.state[l])
    assert (r.state[0] != FastModel(cfg, w).run(x).state[0]).any()


def test_touched_visits_fewer_words_than_all_on_a_quiet_conv_chip():
    conv = {"kind": "conv", "channels": 4, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(1, 8, 8), layers=(conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3}),
                     lanes=4, threshold=(40, 20), overlap=False, update="touched", max_steps=20)
    rng = np.random.default_rng(2)
    w = [rng.integers(-5, 30, cfg.weight_shape(l)) for l in range(2)]
    x = rng.random((2, 20, 64)) < 0.02
    r = FastModel(cfg, w).run(x)
    full = FastModel(cfg.replace(update="all"), w).run(x)
    assert (r.counters["state_reads"] < full.counters["state_reads"]).all()
    assert (r.cycles < full.cycles).all()
    assert (r.counters["in_events"] == full.counters["in_events"]).all()


def test_refusals():
    cfg = ChipConfig(layer_sizes=(4, 3), update="touched", max_steps=3)
    w = [np.ones((4, 3), int)]
    with pytest.raises(ConfigError, match=r"^spikes: 4 steps per sample; a chip with update='touched' runs at most"):
        FastModel(cfg, w).run(np.zeros((1, 4, 4), bool))
    with pytest.raises(ConfigError, match=r"^distortion: the membrane distortion is not modelled with update='touched'$"):
        FastModel(cfg, w, distortion=lambda v, l: v)
    from sim.async_model import AsyncModel
    with pytest.raises(ConfigError, match=r"^update='touched': the asynchronous mode has no UPDATE phase"):
        AsyncModel(cfg, w)
