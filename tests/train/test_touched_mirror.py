"""The training mirror on an update="touched" chip. In real numbers the lazy leak is the per-step leak: an
untouched word that is not hot cannot fire (it is at or below its firing level and leaking keeps it there),
and ``β^k·u`` after ``k`` idle steps is ``k`` steps of ``β·u``; so the snnTorch mirror (float, per-step leak) is
the touched chip's arithmetic up to rounding, as it is the default chip's. Checked: its forward agrees with the
touched fast model on almost every output spike, on fc and conv chips, at sparse input where most words idle."""
import numpy as np
import pytest
import torch

from hw.config import ChipConfig
from sim.model import FastModel
from train.network import ChipMirrorNet, NetSpec


def mismatch(cfg: ChipConfig, x: np.ndarray, seed: int, scale: float) -> tuple[float, float, FastModel]:
    """(output spikes where the mirror and the touched chip differ, per chip spike; the chip's output rate; the
    chip)."""
    net = ChipMirrorNet(cfg, NetSpec(theta=1.0, qat=True), seed=seed)
    net.set_float_weights([w * scale for w in net.float_weights()])
    with torch.no_grad():
        sw = net(torch.as_tensor(x, dtype=torch.float32)).numpy().astype(bool)
    qcfg, ints = net.to_chip()
    assert qcfg.touched and qcfg.structure() == cfg.structure()          # the programme keeps the schedule
    model = FastModel(qcfg, ints)
    hw = model.run(x).output
    return float((sw != hw).sum() / max(1, hw.sum())), float(hw.mean()), model


@pytest.mark.parametrize("reset, beta", [("subtract", 0.8), ("zero", 0.8), ("subtract", 1.0)])
def test_mirror_forward_matches_the_touched_chip_fc(reset, beta):
    cfg = ChipConfig(layer_sizes=(40, 30, 10), beta=beta, beta_frac_bits=12, reset=reset, membrane_bits=24,
                     weight_bits=12, overlap=False, update="touched", max_steps=40)
    x = np.random.default_rng(0).random((64, 40, 40)) < 0.05
    differ, active, model = mismatch(cfg, x, 2, 6)
    assert active > 0.05 and differ < 0.02
    r = model.run(x)                          # the lazy schedule is really skipping words here
    assert r.counters["neuron_updates"].sum() < x.shape[0] * x.shape[1] * sum(cfg.layer_sizes[1:])


def test_mirror_forward_matches_the_touched_chip_conv():
    conv = {"kind": "conv", "channels": 6, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(2, 8, 8), layers=(conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}),
                     beta=0.85, beta_frac_bits=12, membrane_bits=24, weight_bits=12, overlap=False, update="touched",
                     max_steps=30)
    x = np.random.default_rng(1).random((32, 30, 128)) < 0.05
    differ, active, _ = mismatch(cfg, x, 3, 4)
    assert active > 0.05 and differ < 0.02
