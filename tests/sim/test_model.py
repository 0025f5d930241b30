"""The fast model against hand-worked numbers and against the naive reference (tests/reference.py)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.model import FastModel
from tests.reference import reference_run
from tests.strategies import configs, programmes

TINY = ChipConfig(layer_sizes=(2, 1), lanes=1, weight_bits=6, membrane_bits=6, beta_frac_bits=2,
                  beta=0.75, threshold=10)


def test_hand_worked_subtract():
    # beta_int = 3/4. t0: 7+5=12 > 10 fires, leak (12*3+2)>>2 = 9, minus 10 -> -1.
    # t1: -1+7 = 6, leak (18+2)>>2 = 5.   t2: no input, leak (15+2)>>2 = 4.
    r = FastModel(TINY, [np.array([[7], [5]])]).run(np.array([[[1, 1], [1, 0], [0, 0]]]))
    assert r.output[0, :, 0].tolist() == [True, False, False]
    assert r.state[0][0, :, 0].tolist() == [-1, 5, 4]
    # cycles per step: E*G + 1 + P + max(1, spikes) + out_events + 1 -> 7, 5, 4 for P = 1 (the
    # update pipeline's depth, TINY.update_latency): 16 + 3 * (P - 1)
    assert r.cycles.tolist() == [16 + 3 * (TINY.update_latency - 1)]
    assert r.counters["synops"].tolist() == [3]
    assert r.counters["spikes_l0"].tolist() == [1]


def test_hand_worked_zero_reset_and_negative_rounding():
    cfg = TINY.replace(reset="zero")
    r = FastModel(cfg, [np.array([[7], [-8]])]).run(np.array([[[1, 1], [0, 1], [0, 0]]]))
    # t0: -1, leak (-3+2)>>2 = -1 (round half up of -0.75).  t1: -9, leak (-27+2)>>2 = -7.  t2: (-21+2)>>2 = -5
    assert r.state[0][0, :, 0].tolist() == [-1, -7, -5]
    cfg2 = TINY.replace(reset="zero")
    r2 = FastModel(cfg2, [np.array([[7], [5]])]).run(np.array([[[1, 1]]]))
    assert r2.state[0][0, 0, 0] == 0 and r2.output[0, 0, 0]


def test_saturation_caps_membrane_and_cannot_exceed_max_threshold():
    cfg = TINY.replace(threshold=31)
    r = FastModel(cfg, [np.array([[31], [31]])]).run(np.array([[[1, 1]]]))
    # 62 saturates to 31, 31 > 31 is false; leak (31*3+2)>>2 = 23
    assert not r.output.any() and r.state[0][0, 0, 0] == 23
    r = FastModel(cfg, [np.array([[-32], [-32]])]).run(np.array([[[1, 1]]]))
    assert r.state[0][0, 0, 0] == (-32 * 3 + 2) >> 2


def test_no_input_means_no_synaptic_work():
    cfg = ChipConfig(layer_sizes=(20, 10, 5), lanes=4, threshold=30)
    w = [np.ones((20, 10), int), np.ones((10, 5), int)]
    r = FastModel(cfg, w).run(np.zeros((3, 4, 20), bool))
    assert r.counters["synops"].sum() == 0 and r.counters["weight_reads"].sum() == 0
    fill = 1 + cfg.update_latency        # end of events + the update pipeline's fill, per layer
    per_step = (fill + 3) + (fill + 2) + 1    # (fill+end + groups) per layer + end token
    assert r.cycles.tolist() == [4 * per_step] * 3


@given(data=st.data())
@settings(max_examples=60)
def test_fast_model_matches_naive_reference(data):
    cfg = data.draw(configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    r = FastModel(cfg, weights, offsets).run(spikes)
    for b in range(spikes.shape[0]):
        spk, state, cycles = reference_run(cfg, weights, offsets, spikes[b].tolist())
        for l in range(cfg.num_layers):
            assert r.spikes[l][b].tolist() == [s[l] for s in spk]
            assert r.state[l][b].tolist() == [s[l] for s in state]
        assert r.cycles[b] == cycles


def test_batch_independent():
    cfg = ChipConfig(layer_sizes=(16, 8, 4), lanes=3, threshold=20)
    rng = np.random.default_rng(1)
    w = [rng.integers(-128, 128, (16, 8)), rng.integers(-128, 128, (8, 4))]
    x = rng.random((5, 6, 16)) < 0.3
    full = FastModel(cfg, w).run(x)
    one = FastModel(cfg, w).run(x[2:3])
    assert (full.output[2] == one.output[0]).all() and full.cycles[2] == one.cycles[0]


# -- bad input ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(beta=1.5), r"beta=1.5: allowed range is \(0, 1\] \(1: no leak"),
    (dict(beta=0.0), r"beta=0.0: allowed range is \(0, 1\]"),
    (dict(beta=0.0), "beta"),
    (dict(beta=float("nan")), "beta"),
    (dict(threshold=0), r"threshold=0: allowed range is integers 1\.\.32767"),
    (dict(threshold=40000), "threshold"),
    (dict(reset="soft"), "reset='soft': allowed values"),
    (dict(layer_sizes=(4,)), "layer_sizes"),
    (dict(layer_sizes=(4, 0)), "layer_sizes"),
    (dict(weight_bits=1), r"weight_bits=1: allowed range is integers 2\.\.16"),
    (dict(lanes=0), "lanes"),
    (dict(beta=(0.5, 0.5, 0.5)), "beta: expected one value per layer"),
])
def test_bad_config(kwargs, match):
    base = dict(layer_sizes=(4, 3, 2))
    with pytest.raises(ConfigError, match=match):
        ChipConfig(**(base | kwargs))


def test_bad_weights_offsets_spikes():
    cfg = ChipConfig(layer_sizes=(4, 3), weight_bits=4)
    chip = make_chip(cfg, "fast")
    with pytest.raises(ConfigError, match=r"weights\[0\]: values -9\.\.-9 do not fit 4-bit weights; allowed range is -8\.\.7"):
        chip.load([np.full((4, 3), -9)])
    with pytest.raises(ConfigError, match=r"weights\[0\]: expected shape \(4, 3\)"):
        chip.load([np.zeros((3, 4), int)])
    with pytest.raises(ConfigError, match="must be integers"):
        chip.load([np.full((4, 3), 0.5)])
    with pytest.raises(ConfigError, match="expected 1 matrices"):
        chip.load([np.zeros((4, 3), int)] * 2)
    with pytest.raises(ConfigError, match=r"threshold_offsets\[0\]: values 200\.\.200 do not fit 8-bit offsets; allowed range is -128\.\.127"):
        chip.load([np.zeros((4, 3), int)], [np.full(3, 200)])
    with pytest.raises(RuntimeError, match="load"):
        chip.run(np.zeros((1, 1, 4)))
    chip.load([np.zeros((4, 3), int)])
    with pytest.raises(ConfigError, match=r"spikes: expected shape \(batch, steps, 4\)"):
        chip.run(np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="0 or 1"):
        chip.run(np.full((1, 1, 4), 2))
    with pytest.raises(ConfigError, match="backend='gpu'"):
        make_chip(cfg, "gpu")
    with pytest.raises(ConfigError, match="structure"):
        chip.load([np.zeros((4, 3), int)], cfg=cfg.replace(lanes=2))


# -- every path of the fast model against the reference ----------------------------------------------
def assert_matches_reference(cfg, weights, offsets, spikes, r, record_state=True):
    for b in range(spikes.shape[0]):
        spk, state, cycles = reference_run(cfg, weights, offsets, spikes[b].tolist())
        for l in range(cfg.num_layers):
            assert r.spikes[l][b].tolist() == [s[l] for s in spk]
            if record_state:
                assert r.state[l][b].tolist() == [s[l] for s in state]
        assert r.cycles[b] == cycles


def product_paths(cfg):
    return [p for p in ("int8", "float", "sparse") if p != "int8" or cfg.weight_bits <= 8]


@given(data=st.data(), record_state=st.booleans(), dtype=st.sampled_from(["auto", "float64"]))
@settings(max_examples=40)
def test_every_product_path_and_dtype_matches_reference(data, record_state, dtype):
    cfg = data.draw(configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=4))
    results = {}
    for path in product_paths(cfg):
        for recurrence in ("numpy", "compiled"):
            r = FastModel(cfg, weights, offsets, path=path, dtype=dtype, recurrence=recurrence).run(
                spikes, record_state=record_state)
            assert (r.state is None) == (not record_state)
            assert_matches_reference(cfg, weights, offsets, spikes, r, record_state)
            results[path, recurrence] = r
    first = next(iter(results.values()))
    for r in results.values():                 # every counter, not only cycles
        for name in first.counters:
            assert (r.counters[name] == first.counters[name]).all(), name


@pytest.mark.parametrize("batch", [1, 70])     # 70 x 40 neurons is over MASKED_MAX: the arithmetic reset
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_masked_and_arithmetic_reset_match_reference(batch, reset):
    cfg = ChipConfig(layer_sizes=(24, 40, 7), lanes=3, threshold=(30, 12), beta=(0.8, 0.6), reset=reset)
    assert batch * 40 > FastModel.MASKED_MAX or batch == 1
    rng = np.random.default_rng(batch)
    w = [rng.integers(-70, 80, (24, 40)), rng.integers(-40, 40, (40, 7))]
    off = [rng.integers(-10, 10, 40), rng.integers(-5, 5, 7)]
    x = rng.random((batch, 6, 24)) < 0.3
    for path in ("int8", "float", "sparse"):
        for recurrence in ("numpy", "compiled"):
            r = FastModel(cfg, w, off, path=path, recurrence=recurrence).run(x)
            assert 0.05 < r.spikes[0].mean() < 0.95 and 0.05 < r.output.mean() < 0.95
            assert_matches_reference(cfg, w, off, x[:5], r)       # the first samples of the big batch


def test_auto_path_switches_on_input_density():
    """With numba: the gathered (event-driven) product below GATHER_BELOW input density (GATHER_BELOW_LARGE
    for weights beyond the caches, GATHER_BELOW_FLOAT against the float product); without (the numpy
    recurrence stands for it here): scipy's CSR product below SPARSE_BELOW, given enough work and weights that
    fit the caches."""
    cfg = ChipConfig(layer_sizes=(512, 512, 8), lanes=8, threshold=40)
    w = [np.ones((512, 512), int), np.ones((512, 8), int)]
    m = FastModel(cfg, w)
    assert m._gather
    rows = 200
    assert m.product_path(0, rows, events=int(0.005 * rows * 512)) == "sparse"
    assert m.product_path(0, rows, events=int(0.05 * rows * 512)) == "sparse"
    assert m.product_path(0, rows, events=int(0.2 * rows * 512)) == "int8"
    assert m.product_path(0, 1, events=1) == "sparse"                 # no fixed cost: one row, one event
    big = ChipConfig(layer_sizes=(4096, 4096, 8), lanes=8, threshold=40)   # 32 MB of int16 weights
    wb = [np.zeros((4096, 4096), np.int8), np.zeros((4096, 8), np.int8)]
    mb = FastModel(big, wb)
    assert mb.product_path(0, rows, events=int(0.005 * rows * 4096)) == "sparse"
    assert mb.product_path(0, rows, events=int(0.05 * rows * 4096)) == "int8"     # scattered reads miss
    wide = ChipConfig(layer_sizes=(512, 512, 8), lanes=8, threshold=40, weight_bits=9)
    mw = FastModel(wide, w)
    assert mw.product_path(0, rows, 10**6) == "float"
    assert mw.product_path(0, rows, events=int(0.15 * rows * 512)) == "sparse"

    m = FastModel(cfg, w, recurrence="numpy")                          # scipy's CSR product
    assert not m._gather
    assert m.product_path(0, rows, events=int(0.005 * rows * 512)) == "sparse"
    assert m.product_path(0, rows, events=int(0.05 * rows * 512)) == "int8"
    assert m.product_path(0, 1, events=1) == "int8"                  # too little work for the sparse one
    mb = FastModel(big, wb, recurrence="numpy")                       # 64 MB of float weights
    assert mb.product_path(0, rows, events=int(0.005 * rows * 4096)) == "int8"     # scattered reads miss
    assert FastModel(wide, w, recurrence="numpy").product_path(0, rows, 10**6) == "float"
    with pytest.raises(ConfigError, match="path='int8': needs weight_bits <= 8"):
        FastModel(wide, [np.ones((512, 512), int), np.ones((512, 8), int)], path="int8")
    with pytest.raises(ConfigError, match="path='gpu'"):
        FastModel(cfg, m.weights, path="gpu")
    with pytest.raises(ConfigError, match="recurrence='jit'"):
        FastModel(cfg, m.weights, recurrence="jit")


def test_float32_where_exact_and_float64_fallback_beyond_the_bound():
    # (2**15 + 258*127) * 255 + 128 < 2**24: float32, with every input active the sums saturate at the rail
    cfg = ChipConfig(layer_sizes=(258, 3), weight_bits=8, membrane_bits=16, lanes=2, threshold=32767 - 127,
                     beta=0.99)
    w = [np.full((258, 3), 127)]
    w[0][:, 1] = -128
    m = FastModel(cfg, w)
    assert m.exact_bound(0) <= 1 << 24 and m.dtypes == [np.float32]
    x = np.ones((2, 5, 258), bool)
    x[1, 2] = False
    assert_matches_reference(cfg, w, None, x, m.run(x))
    # wide membrane and weights: beyond 2**24, float64 (exact to 2**53)
    big = ChipConfig(layer_sizes=(40, 5, 3), weight_bits=16, membrane_bits=32, beta_frac_bits=16, lanes=2,
                     threshold=(1 << 30, 1 << 20), beta=(0.95, 0.5))
    rng = np.random.default_rng(2)
    wb = [rng.integers(-32768, 32768, (40, 5)), rng.integers(-32768, 32768, (5, 3))]
    mb = FastModel(big, wb)
    assert mb.exact_bound(0) > 1 << 24 and mb.dtypes == [np.float64, np.float64]
    xb = rng.random((2, 30, 40)) < 0.7
    r = mb.run(xb)
    assert np.abs(r.state[0]).max() > 1 << 20          # times beta_int ~ 2**16: far beyond 2**24
    for path in ("float", "sparse"):
        for recurrence in ("numpy", "compiled"):
            assert_matches_reference(big, wb, None, xb, FastModel(big, wb, path=path, recurrence=recurrence).run(xb))


@given(data=st.data())
@settings(max_examples=15)
def test_leak_mismatch_and_distortion_match_a_per_neuron_reference(data):
    """FaultyChip's faults go through beta_int vectors and the distortion hook; check both against a
    per-neuron Python loop of the same arithmetic."""
    from sim.faults import Faults, FaultyChip, eif_distortion
    cfg = data.draw(configs(max_layers=2))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=5))
    f = Faults(leak_mismatch=data.draw(st.sampled_from([0.0, 0.3])),
               distortion=data.draw(st.sampled_from([0.0, 2.0])), seed=data.draw(st.integers(0, 9)))
    chip = FaultyChip(make_chip(cfg), f)
    chip.load(weights, offsets)
    r = chip.run(spikes, record_state=True)
    model = chip.inner._model
    dist = eif_distortion(cfg, f.distortion) if f.distortion > 0 else None
    lo, hi, fb = cfg.membrane_min, cfg.membrane_max, cfg.beta_frac_bits
    for b in range(spikes.shape[0]):
        u = [np.zeros(cfg.fan_out(l), np.int64) for l in range(cfg.num_layers)]
        for t in range(spikes.shape[1]):
            x = spikes[b, t]
            for l in range(cfg.num_layers):
                thr = cfg.threshold[l] + model.offsets[l]
                beta = np.broadcast_to(model.beta_int[l], (cfg.fan_out(l),))
                s_out, u_new = [], []
                for j in range(cfg.fan_out(l)):
                    v = min(max(int(u[l][j]) + sum(int(model.weights[l][i, j]) for i in np.flatnonzero(x)), lo), hi)
                    if dist is not None:
                        v = int(min(max(dist(np.array([v]), l)[0], lo), hi))
                    s = v > thr[j]
                    lv = (v * int(beta[j]) + (1 << (fb - 1))) >> fb
                    u_new.append((min(max(lv - thr[j], lo), hi) if cfg.reset == "subtract" else 0) if s else lv)
                    s_out.append(s)
                u[l] = np.array(u_new)
                assert r.spikes[l][b, t].tolist() == s_out and r.state[l][b, t].tolist() == u_new
                x = np.array(s_out)


def test_bad_beta_int():
    cfg = ChipConfig(layer_sizes=(3, 2), beta_frac_bits=4)
    with pytest.raises(ConfigError, match=r"beta_int\[0\]: allowed are integers 1\.\.16 \(16: no leak\)"):
        FastModel(cfg, [np.zeros((3, 2), int)], beta_int=[np.array([17, 3])])
    FastModel(cfg, [np.zeros((3, 2), int)], beta_int=[np.array([16, 3])])        # 16 = 2**f: IF, allowed


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=400)
def test_every_path_matches_reference_exhaustive(data):
    cfg = data.draw(configs(max_size=20))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=4, steps=6))
    for path in product_paths(cfg):
        for dtype, recurrence in (("auto", "numpy"), ("float64", "numpy"), ("auto", "compiled")):
            r = FastModel(cfg, weights, offsets, path=path, dtype=dtype, recurrence=recurrence).run(
                spikes, record_state=True)
            assert_matches_reference(cfg, weights, offsets, spikes, r)


# -- overlap: a layer's UPDATE streams into the next layer's EVENT phase (docs/chip.md, "Overlap") ----
def _one_step(cfg, weights, fired_inputs=(0,)):
    x = np.zeros((1, 1, cfg.layer_sizes[0]), bool)
    x[0, 0, list(fired_inputs)] = True
    on, off = (FastModel(cfg.replace(overlap=v), weights).run(x) for v in (True, False))
    _, _, ref = reference_run(cfg.replace(overlap=True), weights, None, x[0].tolist())
    assert on.cycles[0] == ref
    return on, off


def test_overlap_hand_worked_events_outlast_the_update():
    """Layer 0: 8 neurons in 2 words (lanes 4), spikes 1, 2 | 5: pc = (2, 1), U = P + 3, appended in UPDATE
    cycles P, P+1, P+2. Layer 1 has 16 neurons: G' = 4 cycles per event. The events start in P+1, P+5, P+9
    (each waits for the previous one) and end at S = P + 13 > U; the end-of-events cycle is P + 13, so the
    pair costs P + 14 instead of U + 3*4 + 1 = P + 16."""
    cfg = ChipConfig(layer_sizes=(1, 8, 16), lanes=4, threshold=1)
    w0 = np.zeros((1, 8), int)
    w0[0, [1, 2, 5]] = 5
    on, off = _one_step(cfg, [w0, np.zeros((8, 16), int)])
    P = cfg.update_latency
    assert on.spikes[0][0, 0].nonzero()[0].tolist() == [1, 2, 5] and not on.output.any()
    # EVENT_0 (1 event x 2 groups) + end + pair + UPDATE_1 (4 silent words) + OUTPUT (end token)
    assert on.cycles[0] == 2 + 1 + (P + 14) + (P + 4) + 1 == 2 * P + 22
    assert off.cycles[0] == 2 + 1 + (P + 3) + (3 * 4 + 1) + (P + 4) + 1 == 2 * P + 24


def test_overlap_hand_worked_events_hidden_by_the_update():
    """Layer 0: 12 neurons in 3 words (lanes 4), spikes 0, 1 (word 0): pc = (2, 0, 0), U = P + 4, appended
    in P, P+1. Layer 1 has 4 neurons (G' = 1): the events run in P+1 and P+2, S = P + 3 <= U, so the pair
    costs U + 1: both events hidden."""
    cfg = ChipConfig(layer_sizes=(1, 12, 4), lanes=4, threshold=1)
    w0 = np.zeros((1, 12), int)
    w0[0, [0, 1]] = 5
    on, off = _one_step(cfg, [w0, np.zeros((12, 4), int)])
    P = cfg.update_latency
    assert on.cycles[0] == 3 + 1 + (P + 5) + (P + 1) + 1 == 2 * P + 11
    assert off.cycles[0] == 3 + 1 + (P + 4) + (2 + 1) + (P + 1) + 1 == 2 * P + 13


def test_overlap_silent_layer_saves_nothing():
    """No spike in layer 0: S = 0, the pair is U + 1, the same as without overlap."""
    cfg = ChipConfig(layer_sizes=(1, 8, 16), lanes=4, threshold=1)
    on, off = _one_step(cfg, [np.zeros((1, 8), int), np.zeros((8, 16), int)])
    P = cfg.update_latency
    assert on.cycles[0] == off.cycles[0] == 2 + 1 + (P + 2) + 1 + (P + 4) + 1


def test_overlap_output_layer_does_not_overlap():
    """The last layer's UPDATE is followed by OUTPUT: a one-layer chip costs the same either way."""
    cfg = ChipConfig(layer_sizes=(3, 8), lanes=4, threshold=1, overlap=True)
    assert not cfg.overlapped(0)
    w = [np.full((3, 8), 5)]
    x = np.ones((2, 3, 3), bool)
    on, off = (FastModel(cfg.replace(overlap=v), w).run(x) for v in (True, False))
    assert on.output.all() and (on.cycles == off.cycles).all()


@given(data=st.data())
@settings(max_examples=40)
def test_overlap_changes_only_the_cycles(data):
    """The same programme with and without overlap: every spike, membrane and counter but ``cycles`` is
    equal; ``cycles`` is at most the same, and equal when no layer overlaps."""
    cfg = data.draw(configs(overlap=True))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    on = FastModel(cfg, weights, offsets).run(spikes)
    off = FastModel(cfg.replace(overlap=False), weights, offsets).run(spikes)
    for a, b in zip(on.spikes + on.state, off.spikes + off.state):
        assert (a == b).all()
    assert all((on.counters[k] == off.counters[k]).all() for k in on.counters if k != "cycles")
    assert (on.cycles <= off.cycles).all()
    if not any(cfg.overlapped(l) for l in range(cfg.num_layers)):
        assert (on.cycles == off.cycles).all()


@pytest.mark.parametrize("lanes", [8, 16, 24])
def test_overlap_wide_lanes_match_reference(lanes):
    """Lanes that are a multiple of 8 count a word's spikes by a population count: against the reference,
    with layer widths that leave the last group partly empty."""
    cfg = ChipConfig(layer_sizes=(20, 2 * lanes + 3, lanes + 5, 7), lanes=lanes, threshold=(60, 60, 20),
                     overlap=True)
    rng = np.random.default_rng(lanes)
    w = [rng.integers(-70, 80, cfg.weight_shape(l)) for l in range(3)]
    x = rng.random((3, 5, 20)) < 0.4
    r = FastModel(cfg, w).run(x)
    assert 0.05 < r.spikes[0].mean() < 0.95 and 0.05 < r.spikes[1].mean() < 0.95
    assert_matches_reference(cfg, w, None, x, r)
    assert (r.cycles < FastModel(cfg.replace(overlap=False), w).run(x).cycles).all()


@pytest.mark.parametrize("rows_per_word, compiled", [(0, False), (10**9, False), (64, True)])
@given(data=st.data())
@settings(max_examples=25)
def test_overlap_both_scans_match_reference(rows_per_word, compiled, data):
    """numpy word by word / numpy row by row / the compiled counters (sim.kernels)."""
    import sim.model
    cfg = data.draw(configs(overlap=True))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=4))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sim.model, "OVERLAP_ROWS_PER_WORD", rows_per_word)
        mp.setattr(sim.model, "COMPILED_COUNTERS", compiled)
        r = FastModel(cfg, weights, offsets).run(spikes)
    assert_matches_reference(cfg, weights, offsets, spikes, r)


@given(data=st.data(), lanes=st.integers(1, 24), Gn=st.integers(1, 4), positions=st.integers(1, 4),
       co=st.integers(1, 40), density=st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]))
@settings(max_examples=60, deadline=None)
def test_compiled_counters_equal_numpy(data, lanes, Gn, positions, co, density):
    """The compiled per-sample counters (spikes, busy groups, overlap-hidden cycles) against the numpy ones on
    random spike tensors, including partly empty last groups and all-silent / all-firing steps."""
    import sim.model as M
    from sim import kernels
    if kernels.overlap_hidden is None:
        pytest.skip("numba not installed")
    cfg = ChipConfig(input_shape=(1, positions, 1), layers=[{"kind": "conv", "channels": co, "kernel": 1},
                                                             {"kind": "fc", "size": Gn * lanes}], lanes=lanes)
    assert (cfg.positions(0), cfg.out_channels(0), cfg.groups(1)) == (positions, co, Gn)
    seed = data.draw(st.integers(0, 2**32 - 1))
    s = np.random.default_rng(seed).random((data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6)),
                                             positions * co)) < density
    got = {}
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(M, "COMPILED_COUNTERS", compiled)
            got[compiled] = (M._spike_counts(s), M._busy_groups(s.reshape(s.shape[0], -1, co), lanes),
                             M._busy_groups(s, lanes), M.overlap_hidden(cfg, 0, s), *M.overlap_counts(cfg, 0, s))
            for rows_per_word in (0, 10**9):                # both numpy scans
                mp.setattr(M, "OVERLAP_ROWS_PER_WORD", rows_per_word)
                got[compiled, rows_per_word] = (M.overlap_hidden(cfg, 0, s),)
    assert (got[True, 0][0] == got[False, 0][0]).all() and (got[False, 0][0] == got[False, 10**9][0]).all()
    for a, b in zip(got[True], got[False]):
        assert a.dtype == np.int64 and (a == b).all()
    for g in (got[True], got[False]):       # overlap_counts: the hidden cycles, busy words, spikes of one pass
        assert (g[4] == g[3]).all() and (g[5] == g[1]).all() and (g[6] == g[0]).all()


@given(data=st.data(), lanes=st.integers(1, 12), co=st.integers(1, 20), c_next=st.integers(1, 20),
       hw=st.integers(1, 6), kernel=st.sampled_from([(1, 0), (2, 0), (3, 1), (5, 2)]), pool=st.booleans(),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]))
@settings(max_examples=60, deadline=None)
def test_compiled_overlap_into_a_conv_layer_equals_numpy(data, lanes, co, c_next, hw, kernel, pool, density):
    """The overlap into a decoded (conv) next layer, each spike costing ``V*G'``: the compiled pass over the
    spikes against numpy's word sums, with partly empty groups, pools in between and image edges."""
    import sim.model as M
    from sim import kernels
    if kernels.overlap_hidden is None:
        pytest.skip("numba not installed")
    k, pad = kernel
    size = 2 * hw if pool else hw
    if k > hw + 2 * pad:
        return
    layers = [{"kind": "conv", "channels": co, "kernel": 1}] + ([{"kind": "pool", "size": 2}] if pool else []) + \
        [{"kind": "conv", "channels": c_next, "kernel": k, "padding": pad}]
    cfg = ChipConfig(input_shape=(1, size, size), layers=layers, lanes=lanes)
    assert cfg.overlapped(0) and cfg.decoded(1)
    seed = data.draw(st.integers(0, 2**32 - 1))
    s = np.random.default_rng(seed).random((data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5)),
                                             cfg.fan_out(0))) < density
    got = {}
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(M, "COMPILED_COUNTERS", compiled)
            got[compiled] = M.overlap_hidden(cfg, 0, s)
            counts = M.overlap_counts(cfg, 0, s)
            assert (counts[0] == got[compiled]).all() and (counts[2] == M._spike_counts(s)).all()
            assert (counts[1] == M._busy_groups(s.reshape(s.shape[0], -1, co), lanes)).all()
    assert got[True].dtype == got[False].dtype == np.int64 and (got[True] == got[False]).all()
    assert (got[False] >= 0).all()


@given(data=st.data(), rows=st.integers(1, 30), n_in=st.integers(1, 70), n_out=st.integers(1, 40),
       bits=st.integers(2, 16), counts=st.booleans(), density=st.sampled_from([0.0, 0.02, 0.3, 1.0]),
       wide=st.booleans())
@settings(max_examples=60, deadline=None)
def test_gathered_product_equals_matmul(data, rows, n_in, n_out, bits, counts, density, wide):
    """The event-driven product (sim.kernels.gather_product: bool spikes or int8 event counts up to 64, int16
    weights over the whole weight range, int32 or int64 sums) against an int64 matmul."""
    from sim import kernels
    if kernels.gather_product is None:
        pytest.skip("numba not installed")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.random((rows, n_in)) < density
    if counts:
        x = (x * rng.integers(1, 65, (rows, n_in))).astype(np.int8)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.choice([lo, hi, 0, 1, -1], (n_in, n_out)) if data.draw(st.booleans()) else rng.integers(lo, hi + 1, (n_in, n_out))
    out = np.full((rows, n_out), 7, np.int64 if wide else np.int32)
    want = x.astype(np.int64) @ w.astype(np.int64)
    if not wide and np.abs(want).max(initial=0) >= 1 << 31:
        return
    kernels.gather_product(x.view(np.uint8) if x.dtype == bool else x, w.astype(np.int16), out)
    assert (out == want).all()


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_auto_product_choice_is_exact_over_densities(data):
    """Whatever product the automatic choice takes per layer (gathered at low density, int8 above), the result
    is the float64 one, every counter included."""
    cfg = data.draw(configs())
    weights, offsets, _ = data.draw(programmes(cfg, batch=2, steps=3))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.random((data.draw(st.integers(1, 6)), 5, cfg.layer_sizes[0])) < data.draw(
        st.sampled_from([0.01, 0.05, 0.12, 0.5]))
    a = FastModel(cfg, weights, offsets).run(x)
    b = FastModel(cfg, weights, offsets, path="float", dtype="float64", recurrence="numpy").run(x)
    for p, q in zip(a.spikes + a.state, b.spikes + b.state):
        assert (p == q).all()
    for name in a.counters:
        assert (a.counters[name] == b.counters[name]).all(), name
