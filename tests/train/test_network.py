"""Surrogates, the quantiser, and the snnTorch network against the chip model it mirrors."""
import numpy as np
import pytest
import torch

from hw.config import ChipConfig, ConfigError
from sim.model import FastModel
from train.network import ChipMirrorNet, NetSpec
from train.quant import quantise
from train.surrogates import SURROGATES, make_surrogate


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_every_surrogate_passes_a_gradient(name):
    cfg = ChipConfig(layer_sizes=(6, 5, 3), beta=0.9)
    net = ChipMirrorNet(cfg, NetSpec(theta=0.5, surrogate=name))
    x = (torch.rand(4, 8, 6) < 0.5).float()
    net(x).sum().backward()
    assert all(fc.weight.grad is not None and fc.weight.grad.abs().sum() > 0 for fc in net.fc)


def test_bad_surrogate_and_threshold():
    with pytest.raises(ConfigError, match=r"surrogate='relu': allowed values are \['atan'"):
        make_surrogate("relu")
    with pytest.raises(ConfigError, match=r"surrogate_scale=0.0 for atan \(alpha\): allowed range"):
        NetSpec(surrogate="atan", surrogate_scale=0.0)
    with pytest.raises(ConfigError, match=r"theta=-1: allowed range is \(0, 100\]"):
        NetSpec(theta=-1)
    with pytest.raises(ConfigError, match=r"x: expected shape \(batch, steps, 6\)"):
        ChipMirrorNet(ChipConfig(layer_sizes=(6, 3)))(torch.zeros(2, 3, 5))


def test_quantiser_uses_the_chip_format():
    cfg = ChipConfig(layer_sizes=(4, 3), weight_bits=6)
    w = np.array([[0.5, -1.0, 0.25], [0.0, 0.1, -0.2], [1.0, 0.3, 0.0], [-0.7, 0.9, 0.6]])
    qcfg, ints, (s,) = quantise(cfg, [w], theta=1.5)
    assert s == 31.0 and ints[0].max() == 31 and ints[0].min() == -31
    assert qcfg.threshold == (round(1.5 * 31),) and qcfg.structure() == cfg.structure()
    _, ints2, (s2,) = quantise(cfg, [w * 1e-6], theta=1.0)       # tiny weights: threshold must still fit
    assert s2 == cfg.membrane_max
    with pytest.raises(ConfigError, match="NaN"):
        quantise(cfg, [w * np.nan], 1.0)


@pytest.mark.parametrize("reset, beta", [("subtract", 0.8), ("zero", 0.8), ("subtract", 1.0), ("zero", 1.0)])
def test_software_network_mirrors_the_chip(reset, beta):
    """snnTorch (float) and the chip model (integers) agree on almost every spike; the rest is rounding.
    beta = 1: IF neurons, no leak on either side (the chip's beta_int = 2**f)."""
    cfg = ChipConfig(layer_sizes=(40, 30, 10), beta=beta, beta_frac_bits=12, reset=reset, membrane_bits=24,
                     weight_bits=12)
    net = ChipMirrorNet(cfg, NetSpec(theta=1.0, qat=True), seed=2)
    net.set_float_weights([w * 3 for w in net.float_weights()])
    x = np.random.default_rng(0).random((64, 20, 40)) < 0.3
    with torch.no_grad():
        sw = net(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(bool)
    qcfg, ints = net.to_chip()
    hw = FastModel(qcfg, ints).run(x).output
    assert hw.mean() > 0.05                                   # a real test: the outputs are active
    assert (sw == hw).mean() > 0.98


def test_sigmoid_surrogate_is_finite_far_from_threshold():
    """snnTorch's own sigmoid surrogate returns NaN here (exp overflow); ours must not."""
    fn = make_surrogate("sigmoid", 25.0)
    x = torch.tensor([-100.0, -5.0, 0.0, 5.0, 100.0], requires_grad=True)
    fn(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[2] == pytest.approx(25.0 / 4)                   # slope * 1/2 * 1/2 at 0
    assert x.grad[0] == 0.0 and x.grad[4] == 0.0


def test_mse_scale_keeps_more_of_a_2_bit_layer():
    """At 2 bits (integers -2..1) max-abs rounds a Gaussian layer mostly to 0; the MSE rule's scale is at
    least max-abs's, never worse in squared error, and keeps most weights non-zero."""
    from train.quant import layer_scale
    cfg = ChipConfig(layer_sizes=(64, 32), weight_bits=2)
    w = np.random.default_rng(0).normal(0, 0.3, (64, 32))
    err = {}
    for rule in ("maxabs", "mse"):
        _, ints, (s,) = quantise(cfg, [w], 1.0, rule=rule)
        err[rule] = float(((ints[0] / s - w) ** 2).sum())
        assert s >= layer_scale(cfg, w, 1.0) - 1e-12 and s == layer_scale(cfg, w, 1.0, rule)
        if rule == "mse":
            assert (ints[0] != 0).mean() > 0.5
    assert err["mse"] < 0.5 * err["maxabs"]
    with pytest.raises(ConfigError, match="quantiser="):
        NetSpec(quantiser="log")
