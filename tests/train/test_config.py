"""TrainConfig: one frozen, validated description of a training run, built from the registries."""
import pickle

import pytest

from hw.config import ChipConfig, ConfigError
from sim.faults import Faults
from train.config import TrainConfig
from train.trainers import TRAINERS


def test_defaults_are_completed_from_the_registry():
    tc = TrainConfig(method="mh", params={"iters": 200})
    assert dict(tc.params) == {p.name: p.default for p in TRAINERS["mh"].params} | {"iters": 200}
    assert tc.spec.theta == 1.0 and not tc.spec.qat
    assert TrainConfig(method="bptt_qat").spec.qat


def test_frozen_hashable_picklable_and_round_trips():
    tc = TrainConfig(method="bptt", params={"epochs": 3}, faults=Faults(distortion=2.0, seed=4),
                     chip=ChipConfig(layer_sizes=(30, 8, 2)), seed=7)
    with pytest.raises(Exception):
        tc.seed = 1
    with pytest.raises(TypeError, match="read-only"):
        tc.params["epochs"] = 4
    assert pickle.loads(pickle.dumps(tc)) == tc and hash(tc) == hash(pickle.loads(pickle.dumps(tc)))
    back = TrainConfig.from_dict(tc.to_dict())       # the method's bias-input default is written out as run
    assert back == tc.replace(bias_input=tc.bias) and back.to_dict() == tc.to_dict()
    other = tc.replace(method="mh")                     # another method: its own defaults
    assert other.params["iters"] == 3000 and "epochs" not in other.params


@pytest.mark.parametrize("kw, match", [
    (dict(method="sgd"), r"method='sgd': allowed values are \['bptt', 'bptt_qat', 'cilspl', 'mh'\]"),
    (dict(dataset="mnist"), r"dataset='mnist': allowed values"),
    (dict(encoder="poisson"), r"encoder='poisson': allowed values"),
    (dict(steps=0), r"steps=0: allowed range is integers 1..10000"),
    (dict(steps="8"), r"steps='8': allowed range"),
    (dict(seed=-1), r"seed=-1"),
    (dict(train_size="x"), r"train_size='x'"),
    (dict(theta=0), r"theta=0: allowed range is \(0, 100\]"),
    (dict(surrogate="relu"), r"surrogate='relu'"),
    (dict(surrogate="atan", surrogate_scale=-1.0), r"surrogate_scale=-1.0 for atan"),
    (dict(method="bptt", params={"iters": 5}), r"method 'bptt' has no parameters \['iters'\]"),
    (dict(method="bptt", params={"epochs": 0}), r"bptt.epochs=0: allowed range is integers 1..100000"),
    (dict(method="bptt", params={"lr": "fast"}), r"bptt.lr='fast': expected a number"),
    (dict(method="mh", params={"iters": 2.5}), r"mh.iters=2.5: must be an integer"),
    (dict(dataset="svhn"), r"dataset='svhn' reads local files"),
    (dict(backend="board"), r"backend='board': allowed values"),
    (dict(threads=0), r"threads=0: allowed range is integers 1..256"),
])
def test_bad_fields_name_themselves(kw, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kw)


def test_from_dict_rejects_unknown_and_mistyped_tables():
    with pytest.raises(ConfigError, match=r"\[train\]: unknown fields \['colour'\]"):
        TrainConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match=r"\[train.faults\]: unknown fields \[.noise.\]; allowed:"):
        TrainConfig.from_dict({"faults": {"noise": 1}})
    with pytest.raises(ConfigError, match="expected a table"):
        TrainConfig.from_dict(5)


def test_whole_float_counts_are_stored_as_ints():
    """steps = 4.0 in a --config's [data] passed the check and reached numpy's shapes as a float (a TypeError
    traceback from `spikeloop train --config`); the faults' seed 1.0 was refused though every other count took it."""
    tc = TrainConfig.from_dict({"steps": 4.0, "seed": 2.0, "threads": 1.0, "train_size": 50.0,
                                "faults": {"seed": 1.0}})
    assert (tc.steps, tc.seed, tc.threads, tc.train_size, tc.faults.seed) == (4, 2, 1, 50, 1)
    assert all(type(v) is int for v in (tc.steps, tc.seed, tc.threads, tc.train_size, tc.faults.seed))
    with pytest.raises(ConfigError, match=r"faults seed=1.5: allowed range is integers 0..4294967295"):
        Faults(seed=1.5)
