"""The per-layer bias (docs/chip.md, "Bias"): configuration, the fast model against the naive reference on
random biased fc and conv/pool chips, and the arithmetic and cycles it specifies."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.bus import BusMap, bias_words, unpack_lanes
from hw.config import BIAS_UPDATE_STAGES, UPDATE_LATENCY, ChipConfig, ConfigError
from sim.chip import make_chip
from sim.model import FastModel
from tests.reference import reference_run
from tests.strategies import biased, configs, conv_configs, programmes


def assert_matches(cfg, weights, offsets, spikes, r):
    for b in range(spikes.shape[0]):
        want = {}
        spk, state, cycles = reference_run(cfg, weights, offsets, spikes[b].tolist(), want)
        for l in range(cfg.num_layers):
            assert r.spikes[l][b].tolist() == [s[l] for s in spk], l
            assert r.state[l][b].tolist() == [s[l] for s in state], l
        assert {k: int(v[b]) for k, v in r.counters.items()} == want


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_biased_fc_model_matches_reference(data):
    cfg = data.draw(biased(configs()))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    assert_matches(cfg, weights, offsets, spikes, FastModel(cfg, weights, offsets).run(spikes))


@given(data=st.data())
@settings(max_examples=60, deadline=None)
def test_biased_conv_model_matches_reference(data):
    cfg = data.draw(biased(conv_configs()))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    assert_matches(cfg, weights, offsets, spikes, FastModel(cfg, weights, offsets).run(spikes))


@pytest.mark.parametrize("kw", [dict(recurrence="numpy"), dict(dtype="float64"), dict(path="float"),
                                dict(path="sparse")])
def test_every_model_path_adds_the_bias_alike(kw):
    cfg = ChipConfig(input_shape=(2, 6, 6), layers=({"kind": "conv", "channels": 5, "kernel": 3, "padding": 1},
                                                    {"kind": "pool", "size": 2}, {"kind": "fc", "size": 7}),
                     lanes=3, threshold=(40, 30), beta=(1.0, 0.75), membrane_bits=12,
                     bias=((5, -9, 41, 0, -2048), (3, 2, 1, 0, -1, -2, 2047)))
    rng = np.random.default_rng(4)
    w = [rng.integers(-128, 128, cfg.weight_shape(l)) for l in range(2)]
    x = rng.random((3, 6, 72)) < 0.2
    want = FastModel(cfg, w).run(x)
    got = FastModel(cfg, w, **kw).run(x)
    for a, b in zip(want.state, got.state):
        assert (a == b).all()
    assert_matches(cfg, w, None, x, got)


def test_bias_alone_drives_the_membrane_as_specified():
    """No input: v[t] = clip(leak(v[t-1]) + b); an IF neuron with b = 7 and threshold 20 fires every third step
    (7, 14, 21 > 20, reset to zero, ...), a negative bias saturates at the membrane's minimum."""
    cfg = ChipConfig(layer_sizes=(3, 2), lanes=2, beta=1.0, threshold=20, reset="zero", membrane_bits=6, weight_bits=4,
                     bias=((7, -20),))
    r = FastModel(cfg, [np.zeros((3, 2), int)]).run(np.zeros((1, 7, 3), bool))
    assert r.spikes[0][0, :, 0].tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert r.state[0][0, :, 0].tolist() == [7, 14, 0, 7, 14, 0, 7]
    assert r.state[0][0, :, 1].tolist() == [-20, -32, -32, -32, -32, -32, -32]


def test_bias_costs_one_pipeline_stage_per_layer_and_step():
    base = ChipConfig(layer_sizes=(6, 5, 4), lanes=2, threshold=10)
    cfg = base.replace(bias=((0,) * 5, (0,) * 4))
    assert base.update_latency == UPDATE_LATENCY and cfg.update_latency == UPDATE_LATENCY + BIAS_UPDATE_STAGES
    rng = np.random.default_rng(0)
    w = [rng.integers(-100, 100, s) for s in ((6, 5), (5, 4))]
    x = rng.random((2, 9, 6)) < 0.5
    a, b = FastModel(base, w).run(x), FastModel(cfg, w).run(x)
    assert all((p == q).all() for p, q in zip(a.spikes, b.spikes))      # an all-zero bias changes no spike
    assert (b.cycles - a.cycles).tolist() == [9 * 2 * BIAS_UPDATE_STAGES] * 2


def test_config_validates_and_round_trips_the_bias():
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=({"kind": "conv", "channels": 3, "kernel": 3},
                                                    {"kind": "fc", "size": 2}), bias=([1, -2, 3], [4, 5]))
    assert cfg.bias == ((1, -2, 3), (4, 5)) and cfg.has_bias and cfg.bias_depth == 2
    assert cfg.bias_vector(0).tolist() == [1, -2, 3] * 4
    d = json.loads(json.dumps(cfg.to_dict()))
    assert ChipConfig.from_dict(d) == cfg
    assert "bias" not in ChipConfig().to_dict()                       # a chip without: as before
    assert cfg.structure_hash == cfg.replace(bias=((9, 9, 9), (0, 1))).structure_hash   # values: runtime
    assert cfg.structure_hash != cfg.replace(bias=None).structure_hash                 # the memory: structure
    for bad, msg in [(([1, 2], [4, 5]), r"bias\[0\]: expected 3 values \(one per output channel\)"),
                     (([1, 2, 3],), "bias: expected 2 lists"),
                     (([1, 2, 3], [4, 1 << 15]), r"bias\[1\]: .* allowed range is -32768..32767"),
                     (([1, 2, 3.5], [4, 5]), r"bias\[0\]: must be integers")]:
        with pytest.raises(ConfigError, match=msg):
            cfg.replace(bias=bad)
    with pytest.raises(ConfigError, match="bias: not built with update='touched'"):
        ChipConfig(layer_sizes=(4, 3), overlap=False, update="touched", bias=((1, 2, 3),))
    with pytest.raises(ConfigError, match="bias: the asynchronous mode"):
        make_chip(ChipConfig(layer_sizes=(4, 3), bias=((1, 2, 3),)), "async").load([np.zeros((4, 3), int)])


def test_bias_words_pack_per_layer_and_group():
    cfg = ChipConfig(layer_sizes=(4, 5, 2), lanes=2, membrane_bits=8, bias=((1, -2, 3, -4, 5), (-128, 127)))
    words = bias_words(cfg)
    assert len(words) == cfg.bias_depth == 3 + 1
    assert [unpack_lanes(w, 8, 2) for w in words] == [[1, -2], [3, -4], [5, 0], [-128, 127]]
    regs = BusMap(cfg).register_writes()
    assert [v for _, v in regs[-4:]] == words                          # the host writes them with the registers


@pytest.mark.parametrize("bad", [([[1], [2, 3]], [4, 5]),          # ragged (a JSON/TOML typo): was a numpy traceback
                                 ([1, None, 3], [4, 5]),            # null in a JSON config
                                 ([10 ** 30, 0, 0], [4, 5]),        # an integer beyond int64
                                 (["a", "b", "c"], [4, 5])])
def test_bad_bias_values_are_one_line_errors_naming_the_range(bad):
    cfg = ChipConfig(layer_sizes=(4, 3, 2), lanes=2)
    with pytest.raises(ConfigError, match=r"^bias\[0\]: .*allowed range is -32768\.\.32767") as e:
        cfg.replace(bias=bad)
    assert "\n" not in str(e.value)
