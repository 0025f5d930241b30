"""The training mirror of a chip with a per-layer bias (ChipConfig.bias): a trainable bias per output neuron / conv
channel; with QAT its forward is the chip's arithmetic up to the leak's rounding, and to_chip carries the bias."""
import numpy as np
import pytest
import torch

from hw.config import ChipConfig
from sim.model import FastModel
from train.network import ChipMirrorNet, NetSpec


def mismatch(cfg, x, seed, scale):
    net = ChipMirrorNet(cfg, NetSpec(theta=1.0, qat=True), seed=seed)
    net.set_float_weights([w * scale for w in net.float_weights()])
    with torch.no_grad():
        sw = net(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(bool)
    qcfg, ints = net.to_chip()
    assert qcfg.has_bias and qcfg.structure() == cfg.structure()
    hw = FastModel(qcfg, ints).run(x).output
    return float((sw != hw).sum() / max(1, hw.sum())), float(hw.mean()), net, qcfg


@pytest.mark.parametrize("beta", [1.0, 0.8])
def test_mirror_forward_matches_the_biased_chip_fc(beta):
    cfg = ChipConfig(layer_sizes=(40, 30, 10), beta=beta, beta_frac_bits=12, reset="zero", membrane_bits=24,
                     weight_bits=12, bias=(tuple(range(-300, 300, 20)), tuple(range(-500, 500, 100))))
    x = np.random.default_rng(0).random((64, 30, 40)) < 0.1
    differ, active, net, qcfg = mismatch(cfg, x, 2, 4)
    assert active > 0.05 and differ < 0.02
    assert qcfg.bias != cfg.bias          # the bias follows the trained scale (weights scaled by 4 here)
    assert all(any(b) for b in qcfg.bias)


def test_mirror_forward_matches_the_biased_chip_conv():
    conv = {"kind": "conv", "channels": 6, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(2, 8, 8), layers=(conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}),
                     beta=(1.0, 0.85), beta_frac_bits=12, membrane_bits=24, weight_bits=12, reset="zero",
                     bias=((400, -300, 0, 900, -50, 120), (100, -100, 0, 300, 50, -20, 0, 0, 10, 700)))
    x = np.random.default_rng(1).random((32, 30, 128)) < 0.1
    differ, active, _, _ = mismatch(cfg, x, 3, 3)
    assert active > 0.05 and differ < 0.02


def test_the_bias_is_trained_and_a_chip_without_one_has_none():
    cfg = ChipConfig(layer_sizes=(8, 4), beta=0.9, bias=((0, 0, 0, 0),))
    net = ChipMirrorNet(cfg, NetSpec(qat=False))
    out = net(torch.ones(2, 5, 8)).sum()
    out.backward()
    assert net.bias[0].grad is not None
    assert ChipMirrorNet(ChipConfig(layer_sizes=(8, 4))).bias is None
