"""The bias input as a TrainConfig field (one source of truth for the CLI, train.run and studies) and dead
networks (silent output layer) caught and warned about."""
import warnings

import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from train.common import DeadNetworkWarning, TrainResult, dead_network
from train.config import TrainConfig
from train.run import prepare, run_training
from train.trainers import TRAINERS

CONV = ChipConfig.from_dict({"input_shape": [1, 8, 8], "layers": [{"kind": "conv", "channels": 2, "kernel": 3},
                                                                   {"kind": "fc", "size": 10}]})


def test_bias_input_default_is_the_methods_and_can_be_overridden():
    for m, t in TRAINERS.items():
        assert TrainConfig(method=m).bias == t.bias_input
        assert TrainConfig(method=m, bias_input=True).bias and not TrainConfig(method=m, bias_input=False).bias
    assert not TrainConfig(method="mh", dataset="digits", chip=CONV).bias          # conv chip: off by default
    with pytest.raises(ConfigError, match=r"bias_input=true: a conv chip"):
        TrainConfig(method="mh", dataset="digits", chip=CONV, bias_input=True)
    with pytest.raises(ConfigError, match=r"bias_input='yes': expected true or false"):
        TrainConfig(bias_input="yes")
    tc = TrainConfig(method="bptt", bias_input=True)
    assert TrainConfig.from_dict(tc.to_dict()) == tc
    assert TrainConfig.from_dict(TrainConfig(method="mh").to_dict()).bias == TRAINERS["mh"].bias_input


def test_default_chip_reset_follows_the_method_and_a_given_chip_wins():
    for m, t in TRAINERS.items():
        assert TrainConfig(method=m).chip_for(30, 2).reset == t.reset
    given = ChipConfig(layer_sizes=(31, 8, 2), reset="subtract")
    assert TrainConfig(method="mh", chip=given).chip_for(30, 2) is given
    assert TRAINERS["mh"].reset == "zero" and TRAINERS["bptt"].reset == "subtract"


def test_bias_input_adds_one_always_on_channel_and_one_chip_input():
    tc = TrainConfig(method="bptt", bias_input=True, train_size=60, params={"epochs": 2})
    cfg, data = prepare(tc)
    assert data.bias and cfg.layer_sizes[0] == 31 and data.x_train.shape[2] == 31
    assert data.x_train[:, :, -1].all() and data.x_test[:, :, -1].all()
    _, plain = prepare(tc.replace(bias_input=False))
    assert not plain.bias and plain.x_train.shape[2] == 30
    r = run_training(tc, data=plain, progress=False)              # shared data without it: added per run
    assert r.chip_config["layer_sizes"][0] == 31 and r.train_config["bias_input"] is True
    with pytest.raises(ConfigError, match=r"has the bias input channel but the run has no bias input"):
        run_training(tc.replace(bias_input=False), data=data, progress=False)
    with pytest.raises(ConfigError, match=r"layer_sizes\[0\]=30 but the data has 31 input neurons \(30 features "
                                          r"\+ the bias input\)"):
        run_training(tc.replace(chip=ChipConfig(layer_sizes=(30, 8, 2))), progress=False)


def _result(out_events, losses, silent=0.06625):
    return TrainResult(method="bptt", chip_config={}, chip_weights=[], float_weights=[],
                       history=[{"epoch": i, "loss": v} for i, v in enumerate(losses)],
                       val_activity={"out_events": out_events}, extra={"silent_loss": silent})


def test_dead_network_reasons():
    assert dead_network(_result(3.5, [0.2, 0.1])) is None
    assert "fired no spike on the validation set" in dead_network(_result(0.0, [0.2, 0.1]))
    why = dead_network(_result(2.0, [0.2, 0.06625, 0.06625]))
    assert "stayed at 0.06625" in why and "last 2 of 3 epochs" in why
    assert dead_network(_result(2.0, [0.06625, 0.05])) is None          # it left the silent value


def test_silent_loss_is_derived_from_the_loss():
    from train.bptt import silent_loss
    y = np.arange(20) % 10
    assert silent_loss(y, 10) == pytest.approx((0.8 ** 2 + 9 * 0.05 ** 2) / 10)
    assert silent_loss(np.arange(4) % 2, 2) == pytest.approx((0.8 ** 2 + 0.05 ** 2) / 2)


def test_a_silent_network_is_flagged_and_warned_in_one_line():
    import subprocess
    import sys
    tc = TrainConfig(method="bptt", theta=100.0, train_size=60, params={"epochs": 2})
    with pytest.warns(DeadNetworkWarning, match="dead network"):
        r = run_training(tc, progress=False)
    assert "dead network" in r.extra["dead"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # a live network warns nothing
        ok = run_training(tc.replace(theta=1.0), progress=False)
    assert "dead" not in ok.extra
    p = subprocess.run([sys.executable, "-m", "tune.cli", "train", "--method", "bptt", "--theta", "100",
                        "--epochs", "1", "--train-size", "40"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "dead network" in ln]
    assert len(lines) == 1 and lines[0].startswith("spikeloop: warning: bptt on breast_cancer, seed 0: dead network")
