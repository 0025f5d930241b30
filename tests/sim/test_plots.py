"""Figures are written for what a run reports (RTL backends report only the output layer)."""
import numpy as np

from hw.config import ChipConfig
from sim.chip import make_chip
from sim.plots import raster, training_curves


def test_raster_and_curves(tmp_path):
    cfg = ChipConfig(layer_sizes=(8, 6, 3), lanes=2, threshold=20)
    chip = make_chip(cfg)
    chip.load([np.full((8, 6), 9), np.full((6, 3), 9)])
    r = chip.run(np.ones((1, 5, 8), bool))
    assert raster(r, tmp_path / "r.png").stat().st_size > 5000
    r.spikes[0] = None                                   # as an RTL backend reports it
    assert raster(r, tmp_path / "r2.png").stat().st_size > 5000
    hist = [{"iter": i, "log_posterior": -100.0 + i, "step": 0.1} for i in range(10)]
    assert training_curves(hist, tmp_path / "c.png", "mh").stat().st_size > 5000
