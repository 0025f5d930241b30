"""Conv and pool layers: the fast model against the naive reference (docs/chip.md, "Convolution and
pooling"), spikes, states and every counter, on random conv/pool/fc networks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from sim.model import FastModel
from tests.reference import reference_run
from tests.strategies import conv_configs, flood, programmes


def assert_matches(cfg, weights, offsets, spikes, r, record_state=True):
    for b in range(spikes.shape[0]):
        want = {}
        spk, state, cycles = reference_run(cfg, weights, offsets, spikes[b].tolist(), want)
        for l in range(cfg.num_layers):
            assert r.spikes[l][b].tolist() == [s[l] for s in spk], l
            if record_state:
                assert r.state[l][b].tolist() == [s[l] for s in state], l
        assert {k: int(v[b]) for k, v in r.counters.items()} == want


@given(data=st.data())
@settings(max_examples=80, deadline=None)
def test_conv_model_matches_reference(data):
    cfg = data.draw(conv_configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    assert_matches(cfg, weights, offsets, spikes, FastModel(cfg, weights, offsets).run(spikes))


@given(data=st.data(), record_state=st.booleans())
@settings(max_examples=25, deadline=None)
def test_conv_every_path_matches_reference(data, record_state):
    cfg = data.draw(conv_configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    for path in [p for p in ("int8", "float", "sparse") if p != "int8" or cfg.weight_bits <= 8]:
        for recurrence in ("numpy", "compiled"):
            r = FastModel(cfg, weights, offsets, path=path, recurrence=recurrence).run(spikes, record_state)
            assert_matches(cfg, weights, offsets, spikes, r, record_state)


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_conv_flood_fires_everything(data):
    """Threshold 1, largest weights, every input on: every neuron of every layer fires every step (the
    saturating, all-spiking corner), and the counters still match."""
    cfg = data.draw(conv_configs(threshold_one=True))
    weights, offsets, spikes = flood(cfg, 2, 3)
    r = FastModel(cfg, weights, offsets).run(spikes)
    assert all(s.all() for s in r.spikes)
    assert_matches(cfg, weights, offsets, spikes, r)


def test_silent_input_costs_decode_fill_and_updates_only():
    cfg = ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "conv", "channels": 8, "kernel": 3, "padding": 1},
                                                    {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}))
    w = [np.ones(cfg.weight_shape(l), int) for l in range(2)]
    r = FastModel(cfg, w).run(np.zeros((2, 4, 64), bool))
    P = cfg.update_latency
    per_step = (cfg.decode_latency(0) + 1 + P + cfg.state_words(0)) + (1 + P + cfg.state_words(1)) + 1
    assert r.cycles.tolist() == [4 * per_step] * 2
    assert r.counters["synops"].tolist() == [0, 0] and r.counters["weight_reads"].tolist() == [0, 0]
    assert r.counters["state_reads"].tolist() == [4 * cfg.state_depth] * 2


def test_one_event_hand_worked():
    """One input spike in the corner of a 1x4x4 image, conv 2 channels k3 p1 (lanes 1: G = 2): it visits
    the 2x2 output positions around it; each (position, group) is one cycle."""
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=({"kind": "conv", "channels": 2, "kernel": 3, "padding": 1},),
                     lanes=1, threshold=1000)
    w = np.arange(18).reshape(1, 3, 3, 2)
    x = np.zeros((1, 1, 16), bool)
    x[0, 0, 0] = True                                         # (y, x) = (0, 0)
    r = FastModel(cfg, [w]).run(x)
    assert r.counters["synops"][0] == 4 * 2 and r.counters["weight_reads"][0] == 4 * 2
    # neuron (y', x', co): the tap that carries input (0, 0) is ky = 1 - y', kx = 1 - x'
    st = r.state[0][0, 0].reshape(4, 4, 2)
    beta, f = cfg.beta_int[0], cfg.beta_frac_bits
    for yo, xo in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        for co in range(2):
            v = int(w[0, 1 - yo, 1 - xo, co])
            assert st[yo, xo, co] == (v * beta + (1 << (f - 1))) >> f
    assert (st[2:] == 0).all() and (st[:, 2:] == 0).all()
    P = cfg.update_latency
    assert r.cycles[0] == cfg.decode_latency(0) + 4 * 2 + 1 + P + 16 * 2 + 1


def test_conv_bad_weights_name_the_shape():
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=({"kind": "conv", "channels": 2, "kernel": 3},))
    with pytest.raises(ConfigError, match=r"weights\[0\]: expected shape \(1, 3, 3, 2\)"):
        FastModel(cfg, [np.zeros((9, 2), int)])


@given(data=st.data())
@settings(max_examples=15, deadline=None)
def test_conv_chip_metrics_count_synapses(data):
    """``synops`` derived from the spikes equals the chip counter; ``synops_nonzero`` counts, per event,
    the nonzero weights it meets: with 0/1 weights, the synaptic sum a one-hot input produces."""
    from sim.metrics import chip_metrics
    cfg = data.draw(conv_configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=2, flooded=False))
    weights = [np.where(np.random.default_rng(l).random(w.shape) < 0.3, 0, w) for l, w in enumerate(weights)]
    r = FastModel(cfg, weights, offsets).run(spikes)
    m = chip_metrics(cfg, weights, spikes, r, offsets)
    assert m["synops"] == m["synops_counter"]
    ones = FastModel(cfg.replace(weight_bits=2), [(w != 0).astype(int) for w in weights])
    nz = 0
    for l in range(cfg.num_layers):
        ins = spikes if l == 0 else r.spikes[l - 1]                   # (B, T, N_raw)
        n_raw = ins.shape[2]
        onehot = np.eye(n_raw, dtype=bool)[None]                      # T=1, B=n_raw samples
        if cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1:
            h = ones._image_sums(l, onehot)[0]
        else:
            h = onehot[0].astype(int) @ ones.weights[l]
        nz += int((ins.sum(axis=(0, 1)) * h.sum(axis=1)).sum())
    assert m["synops_nonzero"] * 2 == nz


def _conv_chain(*layers):
    """Input 1x1x4 (1-D), threshold 1: a kernel-1 conv with weight 5 copies its input spikes."""
    return ChipConfig(input_shape=(1, 1, 4), layers=layers, lanes=1, threshold=1, overlap=True)


def test_overlap_into_conv_and_fc_layers():
    """conv 1ch k1 -> conv 2ch k1 -> pool 2 -> fc 3 (lanes 1), input spikes at x = 1, 3: conv A copies them;
    conv B fires channel 0 there (neurons 2 and 6 of 8: state words 2 and 6, one per (position, channel)).
    conv A -> conv B: A's UPDATE (U = P + 4 words) appends its spikes in P+1 and P+3; B's decoder takes them
    and visits from D cycles later (each event V*G = 2 cycles): P+5..P+6 and P+7..P+8, S = P + 9 > U + D: the
    pair costs P + 10, not U + D + 2*2 + 1. conv B -> fc: B's UPDATE (U = P + 8 words) appends in P+2 and P+6;
    the fc layer (G' = 3) takes them in P+3..P+5 and P+7..P+9, S = P + 10 > U: P + 11, not U + 2*3 + 1."""
    cfg = _conv_chain({"kind": "conv", "channels": 1, "kernel": 1}, {"kind": "conv", "channels": 2, "kernel": 1},
                      {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3})
    assert [cfg.overlapped(l) for l in range(3)] == [True, True, False]
    w = [np.full((1, 1, 1, 1), 5), np.array([5, 0]).reshape(1, 1, 1, 2), np.zeros((4, 3), int)]
    x = np.zeros((1, 1, 4), bool)
    x[0, 0, [1, 3]] = True
    on, off = (FastModel(cfg.replace(overlap=v), w).run(x) for v in (True, False))
    assert on.spikes[1][0, 0].nonzero()[0].tolist() == [2, 6] and not on.output.any()
    P, D = cfg.update_latency, cfg.decode_latency(0)
    assert on.cycles[0] == (D + 2 * 1 + 1) + (P + 10) + (P + 11) + (P + 3) + 1
    assert off.cycles[0] == (D + 2 * 1 + 1 + P + 4) + (D + 2 * 2 + 1) + (P + 8) + (2 * 3 + 1) + (P + 3) + 1
    want = {}
    reference_run(cfg, w, None, x[0].tolist(), want)
    assert want["cycles"] == on.cycles[0]


def test_overlap_into_a_conv_layer_hides_its_events_behind_the_update():
    """conv -> conv, the second conv's events cheap against the first's UPDATE: the end of events is the
    UPDATE's end plus the decoder's fill (the end token's path), U + D, every event hidden."""
    cfg = _conv_chain({"kind": "conv", "channels": 1, "kernel": 1}, {"kind": "conv", "channels": 1, "kernel": 1})
    assert [cfg.overlapped(l) for l in range(2)] == [True, False]
    w = [np.full((1, 1, 1, 1), 5), np.full((1, 1, 1, 1), 5)]
    x = np.zeros((1, 1, 4), bool)
    x[0, 0, [0]] = True                        # A fires at x = 0: appended in P + 0, B visits P+4 (1 cycle)
    on, off = (FastModel(cfg.replace(overlap=v), w).run(x) for v in (True, False))
    P, D = cfg.update_latency, cfg.decode_latency(0)
    assert off.cycles[0] == (D + 1 + 1 + P + 4) + (D + 1 + 1 + P + 4) + (1 + 1)
    assert on.cycles[0] == (D + 1 + 1) + (P + 4 + D + 1) + (P + 4) + (1 + 1)     # max(U + D, P + 5) = U + D
    want = {}
    reference_run(cfg, w, None, x[0].tolist(), want)
    assert want["cycles"] == on.cycles[0]


@pytest.mark.parametrize("shape, layers", [
    ((1, 16, 16), [{"kind": "pool", "size": 8}, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3}]),
    ((2, 16, 16), [{"kind": "pool", "size": 2}, {"kind": "pool", "size": 8},
                   {"kind": "conv", "channels": 2, "kernel": 1}, {"kind": "fc", "size": 2}]),
    ((1, 1, 128), [{"kind": "pool", "size": 8}, {"kind": "pool", "size": 8}, {"kind": "pool", "size": 2},
                   {"kind": "conv", "channels": 2, "kernel": 1}]),
])
@pytest.mark.parametrize("density", [1.0, 0.6, 0.02])
def test_stacked_pools_count_past_127_events_per_address(shape, layers, density):
    """Stacked pools whose area exceeds 127 (8x8 then 2x2: 256 raw addresses per pooled one): the model's
    per-address event counts must not wrap around in int8, on every product path."""
    n = sum(ly["kind"] != "pool" for ly in layers)
    cfg = ChipConfig(input_shape=shape, layers=tuple(layers), weight_bits=4, membrane_bits=16, lanes=2,
                     threshold=(150,) * n, beta=(1.0,) * n, reset="subtract")
    assert cfg.pool_area(0) >= 128
    rng = np.random.default_rng(0)
    weights = [rng.integers(0, cfg.weight_max + 1, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    spikes = rng.random((2, 3, cfg.layer_sizes[0])) < density
    for path in ("auto", "int8", "float", "sparse"):
        r = FastModel(cfg, weights, None, path=path).run(spikes, True)
        assert_matches(cfg, weights, None, spikes, r)


def test_stacked_pool_counts_are_int16_in_the_product_path_and_the_memory_estimate():
    """One place (sim.model.input_dtype) says what a layer's product multiplies: bool spikes (fc), int8 counts
    (conv, pools up to 127 addresses), int16 counts (stacked pools, 8x8 then 2x2 = 256). product_path names the
    float product for int16 counts even where int8 was asked for (there is no int8 product for them), and
    memory_estimate counts them at 2 bytes plus the float product's copy."""
    from sim.chip import memory_estimate
    from sim.model import input_dtype
    stacked = ChipConfig(input_shape=(1, 64, 64), layers=({"kind": "pool", "size": 8}, {"kind": "pool", "size": 2},
                                                          {"kind": "fc", "size": 3}), weight_bits=4, lanes=2)
    single = stacked.replace(layers=({"kind": "pool", "size": 8}, {"kind": "fc", "size": 3}))
    conv = ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "conv", "channels": 2, "kernel": 3},
                                                     {"kind": "fc", "size": 3}), lanes=2)
    assert input_dtype(stacked, 0) == np.int16 and input_dtype(single, 0) == np.int8
    assert input_dtype(conv, 0) == np.int8 and input_dtype(conv, 1) == np.bool_
    assert input_dtype(ChipConfig(layer_sizes=(4, 3)), 0) == np.bool_
    w = [np.ones(stacked.weight_shape(0), int)]
    for path in ("auto", "int8"):
        m = FastModel(stacked, w, None, path=path)
        assert m.product_path(0, rows=8, events=8 * 16 * 256) == "float"
        if m._int8:                               # torch's int8 product is there: int8 counts would take it
            assert FastModel(single, [np.ones(single.weight_shape(0), int)], None,
                             path=path).product_path(0, rows=8, events=8 * 64 * 64) == "int8"
    B, T = 10, 20
    # the same network but for the count dtype: 4x4 = 16 pooled addresses (int16: 2 bytes + an 8-byte float
    # copy) vs 8x8 = 64 (int8: 1 byte); both from the same 4096 inputs, so spikes and weights differ only by
    # the fc layer's fan-in
    est16, est8 = memory_estimate(stacked, B, T), memory_estimate(single, B, T)
    base16 = memory_estimate(stacked.replace(layers=None, input_shape=None, layer_sizes=(4096, 3)), B, T) \
        + 16 * (16 - 4096) * 3
    base8 = memory_estimate(single.replace(layers=None, input_shape=None, layer_sizes=(4096, 3)), B, T) \
        + 16 * (64 - 4096) * 3
    assert est16 - base16 == B * T * 16 * (2 + 8)
    assert est8 - base8 == B * T * 64 * 1
