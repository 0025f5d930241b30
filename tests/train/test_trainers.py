"""The three trainers on an easy task: they learn, report one result format, are seeded, reject bad input."""
import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.faults import Faults, FaultyChip
from train.bptt import train_bptt
from train.cilspl import train_cilspl
from train.common import Encoded, TrainResult
from train.data import split_dataset
from train.mh import train_mh
from train.network import NetSpec

CFG = ChipConfig(layer_sizes=(8, 12, 2), lanes=4, beta=0.9)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y = np.arange(300) % 2
    x = rng.normal(0, 1, (300, 8)) + np.where(y[:, None] == 1, 1.2, -1.2) * (np.arange(8) < 4)
    return Encoded.from_split(split_dataset(x, y, seed=0), steps=12)


TRAINERS = {
    "bptt": (train_bptt, dict(epochs=15)),
    "cilspl": (train_cilspl, dict(epochs=15)),
    "mh": (train_mh, dict(iters=600, burn_in=300)),
}


@pytest.mark.parametrize("method", sorted(TRAINERS))
def test_trainer_learns_and_reports(method, blobs):
    fn, kw = TRAINERS[method]
    r = fn(CFG, NetSpec(), blobs, make_chip(CFG), seed=1, progress=False, **kw)
    assert r.chip_accuracy > 0.85, r.chip_accuracy
    assert 0 <= r.software_accuracy <= 1 and r.history
    assert r.activity["synops"] > 0 and r.activity["cycles"] > 0
    assert all(np.issubdtype(w.dtype, np.integer) for w in r.chip_weights)
    ChipConfig.from_dict(r.chip_config).check_weights(r.chip_weights)
    if method == "mh":
        assert 0 < r.extra["acceptance_rate"] < 1
        assert r.history[-1]["log_posterior"] > r.history[0]["log_posterior"]


#: short runs: reproducibility does not need a trained network
SHORT = {"bptt": dict(epochs=2), "cilspl": dict(epochs=2), "mh": dict(iters=60, burn_in=20)}


@pytest.mark.parametrize("method", sorted(TRAINERS))
def test_trainer_is_reproducible(method, blobs):
    fn = TRAINERS[method][0]
    a, b = (fn(CFG, NetSpec(), blobs, make_chip(CFG), seed=3, progress=False, **SHORT[method]) for _ in range(2))
    assert all((x == y).all() for x, y in zip(a.chip_weights, b.chip_weights))
    assert a.chip_accuracy == b.chip_accuracy and a.activity == b.activity


def test_mh_on_a_faulty_chip_learns_through_the_faults(blobs):
    chip = FaultyChip(make_chip(CFG), Faults(distortion=3.0, threshold_mismatch=0.1, seed=2))
    r = train_mh(CFG, NetSpec(), blobs, chip, iters=600, burn_in=300, seed=1, progress=False)
    assert r.chip_accuracy > 0.8


def test_result_roundtrip(tmp_path, blobs):
    r = train_bptt(CFG, NetSpec(), blobs, make_chip(CFG), epochs=2, progress=False)
    r.save(tmp_path / "res")
    back = TrainResult.load(tmp_path / "res")
    assert back.chip_accuracy == r.chip_accuracy and (back.chip_weights[0] == r.chip_weights[0]).all()


def test_bad_input_fails_before_training(blobs):
    wrong = ChipConfig(layer_sizes=(9, 12, 2))
    for fn, kw in TRAINERS.values():
        with pytest.raises(ConfigError, match=r"layer_sizes\[0\]=9 but the data has 8 input neurons"):
            fn(wrong, NetSpec(), blobs, make_chip(wrong), progress=False, **kw)
    touched = CFG.replace(update="touched", overlap=False, max_steps=8)      # the blobs have 12 steps
    for fn, kw in TRAINERS.values():          # refused before training, not by the chip when the result is scored
        with pytest.raises(ConfigError, match=r"steps=12: a chip with update='touched' runs at most max_steps=8 "):
            fn(touched, NetSpec(), blobs, make_chip(touched), progress=False, **kw)
    with pytest.raises(ConfigError, match=r"burn_in=700: allowed range is 0..iters-1 \(599\)"):
        train_mh(CFG, NetSpec(), blobs, make_chip(CFG), iters=600, burn_in=700, progress=False)
    with pytest.raises(ConfigError, match=r"lr=0: allowed range is \(0, 1\]"):
        train_bptt(CFG, NetSpec(), blobs, make_chip(CFG), lr=0, progress=False)
    with pytest.raises(ConfigError, match="need at least one output per class"):
        one = ChipConfig(layer_sizes=(8, 1))
        train_cilspl(one, NetSpec(), blobs, make_chip(one), progress=False)
