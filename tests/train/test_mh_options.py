"""The MH options for strong distortion: categorical likelihood, tempered burn-in, per-layer steps, the
always-on bias input — each learns on easy data, is seeded, and rejects bad input with a ConfigError."""
import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.faults import Faults, FaultyChip
from train.common import Encoded, with_bias_channel
from train.config import TrainConfig
from train.data import split_dataset
from train.mh import ChainTarget, train_mh
from train.network import NetSpec

CFG = ChipConfig(layer_sizes=(9, 12, 2), lanes=4, beta=0.9)
OPTS = dict(iters=600, burn_in=300, class_temp=2.0, temper=0.1, layer_steps=1)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    x = rng.normal(0, 1, (300, 8)) + np.where(y[:, None] == 1, 1.2, -1.2) * (np.arange(8) < 4)
    return with_bias_channel(Encoded.from_split(split_dataset(x, y, seed=0), steps=12))


def test_bias_channel_spikes_every_step(blobs):
    for x in (blobs.x_train, blobs.x_val, blobs.x_test):
        assert x.shape[2] == 9 and x[:, :, -1].all()


def test_options_learn_and_are_seeded(blobs):
    r = train_mh(CFG, NetSpec(), blobs, make_chip(CFG), seed=1, progress=False, **OPTS)
    assert r.chip_accuracy > 0.85, r.chip_accuracy
    assert len(r.extra["final_steps"]) == 2
    assert r.history[0]["temper"] == pytest.approx(0.1) and r.history[-1]["temper"] == 1.0
    again = train_mh(CFG, NetSpec(), blobs, make_chip(CFG), seed=1, progress=False, **OPTS)
    assert all((a == b).all() for a, b in zip(r.chip_weights, again.chip_weights))
    other = train_mh(CFG, NetSpec(), blobs, make_chip(CFG), seed=2, progress=False, **OPTS)
    assert any((a != b).any() for a, b in zip(r.chip_weights, other.chip_weights))


def test_options_learn_through_strong_distortion(blobs):
    chip = FaultyChip(make_chip(CFG), Faults(distortion=5.0, seed=2))
    r = train_mh(CFG, NetSpec(), blobs, chip, seed=1, progress=False, **OPTS)
    assert r.chip_accuracy > 0.8, r.chip_accuracy


def test_categorical_likelihood_is_log_softmax_of_counts(blobs):
    tgt = ChainTarget(CFG, NetSpec(), blobs, make_chip(CFG), [(9, 12), (12, 2)], class_temp=2.0)
    spikes = np.zeros((len(blobs.y_train), 12, 2), bool)
    spikes[:, :6, 0] = True                              # counts (6, 0) for every sample
    p0 = np.exp(3.0) / (np.exp(3.0) + 1.0)
    want = np.sum(np.where(blobs.y_train == 0, np.log(p0), np.log(1 - p0)))
    assert tgt.log_lik(spikes) == pytest.approx(want)


@pytest.mark.parametrize("bad", [dict(class_temp=0.0), dict(class_temp=float("nan")), dict(temper=0.0),
                                 dict(temper=1.5), dict(layer_steps=2), dict(gain_std=-1.0)])
def test_bad_options_are_refused(bad, blobs):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        train_mh(CFG, NetSpec(), blobs, make_chip(CFG), iters=10, progress=False, **bad)


@pytest.mark.parametrize("bad", [dict(class_temp=-2.0), dict(temper=2.0), dict(layer_steps=3),
                                 dict(layer_steps=0.5), dict(class_temp="soft")])
def test_bad_options_are_refused_by_the_config(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        TrainConfig(method="mh", params=bad)


def test_direct_callers_get_the_registry_ranges():
    from hw.config import ConfigError
    from train.mh import check_mh
    base = dict(iters=100, burn_in=50, thin=5, prior_std=0.5, lik_std=0.5, step=0.05, target_accept=0.3,
                block_frac=0.1)
    check_mh(**base)
    with pytest.raises(ConfigError, match=r"mh.lik_std=1e-09: allowed range is 0.001..100"):
        check_mh(**base | {"lik_std": 1e-9})       # the registry's range, not a looser "> 0"
    with pytest.raises(ConfigError, match=r"mh.layer_steps=2: allowed range is integers 0..1"):
        check_mh(**base, layer_steps=2)
