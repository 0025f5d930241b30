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
    (dict(beta=1.0), r"beta=1.0: allowed range is the open interval \(0, 1\)"),
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
