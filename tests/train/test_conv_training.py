"""Training on conv chips: the snnTorch mirror computes the chip's synaptic sums (HWC numbering, sum
pooling, kernels in the chip's layout), and every trainer runs and learns on a conv chip."""
import numpy as np
import pytest
import torch

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.model import FastModel
from train.bptt import train_bptt
from train.cilspl import train_cilspl
from train.common import Encoded
from train.data import split_dataset
from train.mh import train_mh
from train.network import ChipMirrorNet, NetSpec
from train.quant import quantise

CONV = ChipConfig(input_shape=(1, 6, 6), layers=({"kind": "conv", "channels": 4, "kernel": 3, "padding": 1},
                                                 {"kind": "pool", "size": 2}, {"kind": "fc", "size": 2}),
                  lanes=4, beta=0.9)


@pytest.fixture(scope="module")
def bars():
    """6x6 images with a vertical (class 0) or horizontal (class 1) bar at a random place, plus noise."""
    rng = np.random.default_rng(0)
    n = 200
    y = np.arange(n) % 2
    img = rng.normal(0, 0.3, (n, 6, 6))
    pos = rng.integers(0, 6, n)
    for i in range(n):
        if y[i]:
            img[i, pos[i], :] += 3
        else:
            img[i, :, pos[i]] += 3
    return Encoded.from_split(split_dataset(img.reshape(n, 36), y, seed=0), steps=8)


def test_mirror_synaptic_sums_equal_the_chip_model():
    cfg = ChipConfig(input_shape=(2, 6, 6), layers=(
        {"kind": "conv", "channels": 3, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
        {"kind": "conv", "channels": 4, "kernel": 2, "stride": 2, "padding": 1}, {"kind": "pool", "size": 2},
        {"kind": "fc", "size": 5}))
    rng = np.random.default_rng(1)
    ws = [rng.integers(-5, 6, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    net = ChipMirrorNet(cfg)
    net.set_float_weights(ws)
    assert all((a == b).all() for a, b in zip(net.float_weights(), ws))
    model = FastModel(cfg, ws)
    for l in range(cfg.num_layers):
        x = rng.random((1, 6, cfg.layer_sizes[l])) < 0.4                     # (T, B, N_raw)
        want = model._image_sums(l, x)[0]
        got = net.synapse(l, torch.as_tensor(x[0], dtype=torch.float32), net.weight(l)).detach().numpy()
        assert np.array_equal(got, want), l
    with pytest.raises(ConfigError, match=r"weights\[0\]: expected shape \(2, 3, 3, 3\)"):
        net.set_float_weights([np.zeros((18, 3))] + ws[1:])


def test_quantiser_keeps_the_kernel_layout():
    w = [np.random.default_rng(0).normal(0, 1, CONV.weight_shape(l)) for l in range(2)]
    qcfg, ints, scales = quantise(CONV, w, 1.0)
    assert ints[0].shape == (1, 3, 3, 4) and np.abs(ints[0]).max() == CONV.weight_max
    with pytest.raises(ConfigError, match=r"weights\[0\]: expected shape \(1, 3, 3, 4\)"):
        quantise(CONV, [w[0].reshape(9, 4), w[1]], 1.0)


@pytest.mark.parametrize("method", ["bptt", "bptt_qat", "cilspl"])
def test_gradient_trainers_learn_on_a_conv_chip(method, bars):
    fn = train_cilspl if method == "cilspl" else train_bptt
    r = fn(CONV, NetSpec(qat=method == "bptt_qat"), bars, make_chip(CONV), epochs=6, lr=2e-2, seed=1,
           progress=False)
    assert r.chip_accuracy > 0.7, r.chip_accuracy            # chance: 0.5 (40 test samples)
    assert r.chip_weights[0].shape == (1, 3, 3, 4) and r.float_weights[0].shape == (1, 3, 3, 4)
    assert r.activity["cycles"] > 0


def test_mh_perturbs_kernels_on_a_conv_chip(bars):
    r = train_mh(CONV, NetSpec(), bars, make_chip(CONV), iters=60, burn_in=30, seed=1, progress=False)
    assert r.chip_weights[0].shape == (1, 3, 3, 4) and 0 < r.extra["acceptance_rate"] <= 1
