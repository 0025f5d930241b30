"""The asynchronous event-order chip mode (sim.async_model): a hand-computed case, agreement with the
synchronous chip where the two must agree, an independent naive reference, and ordering effects."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from sim.async_model import AsyncModel
from sim.chip import AsyncChip, make_chip
from sim.faults import Faults, FaultyChip
from tests.strategies import configs, programmes

# threshold 10 / 5, beta 0.5 (beta_int 128 of 256), subtract reset
HAND = ChipConfig(layer_sizes=(2, 2, 1), lanes=1, beta=0.5, threshold=(10, 5))
HAND_W = [np.array([[12, 6], [-7, 6]]), np.array([[6], [-3]])]
HAND_X = np.array([[[1, 1], [1, 0], [1, 0]]], bool)


def run(cfg, w, x, order="address", offsets=None, seed=0, **kw):
    chip = make_chip(cfg, "async", order=order, seed=seed)
    chip.load(w, offsets, **kw)
    return chip.run(x, record_state=True)


def test_hand_computed_case():
    assert HAND.beta_int == (128, 128)
    r = run(HAND, HAND_W, HAND_X)
    # step 0, input 0: h0 = 12 > 10 fires (u 2) -> o0 = 6 > 5 fires (u 1); h1 = 6.
    #         input 1: h0 = 2 - 7 = -5; h1 = 12 > 10 fires (u 2) -> o0 = 1 - 3 = -2.
    #         leak: h (-5, 2) -> (-2, 1); o -2 -> -1 (round half up of -1).
    # step 1, input 0: h0 = -2 + 12 = 10 (not > 10); h1 = 7. leak: h (5, 4), o 0.
    # step 2, input 0: h0 = 17 fires (u 7) -> o0 = 6 fires (u 1); h1 = 10. leak: h (4, 5), o 1.
    assert r.spikes[0][0].tolist() == [[1, 1], [0, 0], [1, 0]]
    assert r.spikes[1][0].tolist() == [[1], [0], [1]]
    assert r.state[0][0].tolist() == [[-2, 1], [5, 4], [4, 5]]
    assert r.state[1][0].tolist() == [[-1], [0], [1]]
    assert r.counters["in_events"].tolist() == [4]
    assert r.counters["spikes_l0"].tolist() == [3] and r.counters["out_events"].tolist() == [2]
    assert r.counters["synops"].tolist() == [4 * 2 + 3 * 1]
    # the synchronous chip integrates step 0's two inputs together: h = (5, 12), only h1 fires, o0 = -3
    sync = make_chip(HAND)
    sync.load(HAND_W)
    assert sync.run(HAND_X).output[0, 0, 0] == 0


def test_order_matters():
    """Input 1 before input 0 (the same chip with its two inputs swapped): h0 never crosses in step 0."""
    w = [HAND_W[0][::-1], HAND_W[1]]
    r = run(HAND, w, HAND_X[:, :, ::-1])
    assert r.spikes[0][0, 0].tolist() == [0, 1] and r.spikes[1][0, 0].tolist() == [0]
    # random order: both outcomes of step 0 occur over the rows of one batch, and the run is reproducible
    x = np.repeat(HAND_X[:, :1], 64, axis=0)
    a = run(HAND, HAND_W, x, order="random", seed=3)
    assert set(a.output[:, 0, 0].tolist()) == {0, 1}
    assert (a.output == run(HAND, HAND_W, x, order="random", seed=3).output).all()
    assert not (a.output == run(HAND, HAND_W, x, order="random", seed=4).output).all()


def test_several_spikes_per_step():
    cfg = ChipConfig(layer_sizes=(3, 1), lanes=1, beta=0.5, threshold=5)
    r = run(cfg, [np.full((3, 1), 7)], np.ones((1, 1, 3), bool))
    assert r.output.tolist() == [[[3]]] and r.state[0].tolist() == [[[3]]]   # 7, 9, 11 fire (u 2, 4, 6); leak 3
    sync = make_chip(cfg)
    sync.load([np.full((3, 1), 7)])
    assert sync.run(np.ones((1, 1, 3), bool)).output.sum() == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_event_per_layer_equals_the_synchronous_chip(data):
    """At most one input event per step and one hidden neuron per layer (so at most one event into each
    layer per step) and the zero reset: no order and no barrier to differ, bit for bit the same."""
    cfg = data.draw(configs(max_layers=3))
    sizes = (cfg.layer_sizes[0],) + (1,) * (cfg.num_layers - 1) + (cfg.layer_sizes[-1],)
    cfg = dataclasses.replace(cfg, layer_sizes=sizes, reset="zero")
    w, off, _ = data.draw(programmes(cfg, batch=3, steps=8, flooded=False))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = np.zeros((3, 8, cfg.layer_sizes[0]), bool)
    on = rng.random((3, 8)) < 0.8
    b, t = np.nonzero(on)
    x[b, t, rng.integers(0, cfg.layer_sizes[0], len(b))] = True
    sync = make_chip(cfg)
    sync.load(w, off)
    s, a = sync.run(x, record_state=True), run(cfg, w, x, order="random", offsets=off)
    for l in range(cfg.num_layers):
        assert (s.spikes[l] == a.spikes[l]).all() and (s.state[l] == a.state[l]).all()
    for k in ("in_events", "synops", "out_events", "neuron_updates") + tuple(f"spikes_l{l}" for l in range(cfg.num_layers)):
        assert (s.counters[k] == a.counters[k]).all(), k


def naive(cfg, w, thr, beta, x, order):
    """Plain-Python recursion over one sample, written from the module docstring."""
    f, L = cfg.beta_frac_bits, cfg.num_layers
    u = [[0] * cfg.fan_out(l) for l in range(L)]
    T = x.shape[0]
    spk = [[[0] * cfg.fan_out(l) for l in range(L)] for _ in range(T)]

    def deliver(l, i, t):
        for j in range(cfg.fan_out(l)):
            v = min(max(u[l][j] + int(w[l][i][j]), cfg.membrane_min), cfg.membrane_max)
            if v > thr[l][j]:
                v = max(v - thr[l][j], cfg.membrane_min) if cfg.reset == "subtract" else 0
                u[l][j] = v
                spk[t][l][j] += 1
                if l + 1 < L:
                    deliver(l + 1, j, t)
            else:
                u[l][j] = v

    for t in range(T):
        for i in order[t]:
            if x[t][i]:
                deliver(0, int(i), t)
        u = [[(v * int(beta[l][j]) + (1 << (f - 1))) >> f for j, v in enumerate(u[l])] for l in range(L)]
    return spk, u


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_against_the_naive_reference(data):
    cfg = data.draw(configs(max_size=7, max_layers=3))
    w, off, x = data.draw(programmes(cfg, batch=2, steps=4))
    f = Faults(leak_mismatch=data.draw(st.sampled_from([0.0, 0.3])), seed=1)
    chip = FaultyChip(make_chip(cfg, "async", order="random", seed=data.draw(st.integers(0, 9))), f)
    chip.load(w, off)
    r = chip.run(x, record_state=True)
    model = chip.inner._model
    order = model.arrival_order(*x.shape[:2])
    cut = np.concatenate([[0], np.cumsum(cfg.layer_sizes[1:])])
    thr = [model._thr[cut[l]:cut[l + 1]] for l in range(cfg.num_layers)]
    beta = [model._beta[cut[l]:cut[l + 1]] for l in range(cfg.num_layers)]
    weights = model.weights
    for b in range(x.shape[0]):
        spk, u = naive(cfg, weights, thr, beta, x[b], order[b])
        for l in range(cfg.num_layers):
            assert r.spikes[l][b].tolist() == [spk[t][l] for t in range(x.shape[1])]
            assert r.state[l][b, -1].tolist() == u[l]


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="order="):
        make_chip(HAND, "async", order="fifo")
    with pytest.raises(ConfigError, match="distortion"):
        FaultyChip(make_chip(HAND, "async"), Faults(distortion=1.0))
    with pytest.raises(ConfigError, match="seed="):
        AsyncModel(HAND, HAND_W, seed=-1)
    assert isinstance(make_chip(HAND, "async"), AsyncChip)


def test_metrics_count_every_event_of_a_multi_spike_step():
    from sim.metrics import chip_metrics
    cfg = ChipConfig(layer_sizes=(3, 1, 2), lanes=1, beta=0.5, threshold=5)
    w = [np.full((3, 1), 7), np.full((1, 2), 1)]
    x = np.ones((1, 1, 3), bool)
    r = run(cfg, w, x)
    m = chip_metrics(cfg, w, x, r)
    assert r.spikes[0].sum() == 3 and m["synops"] == m["synops_counter"] == 3 * 1 + 3 * 2


def test_conv_chips_are_refused_in_one_line():
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=({"kind": "conv", "channels": 2, "kernel": 3, "padding": 1},
                                                    {"kind": "fc", "size": 2}))
    with pytest.raises(ConfigError, match=r"^layers: the asynchronous mode models fully-connected chips only; "
                                          r"layer 0 is a conv layer"):
        make_chip(cfg, "async").load([np.zeros(cfg.weight_shape(l), int) for l in range(cfg.num_layers)])
