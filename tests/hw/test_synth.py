"""Synthesis with the open toolchain: a real build of a small board top, and the report's parser."""
import json

import pytest

from hw.config import ChipConfig, ConfigError
from hw.synth import SynthError, fmax_from_report, synthesize


def test_ice40_build_reports_resources_and_fmax(tmp_path):
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    r = synthesize(cfg, "ice40-up5k", tmp_path)
    assert 0 < r.logic_cells <= r.logic_cells_total == 5280
    assert 0 < r.luts and 0 < r.ffs and 0 < r.bram <= r.bram_total == 30
    assert r.fmax_mhz > 1.0
    assert r.bitstream.endswith("top.bin") and (tmp_path / "ice40-up5k" / "top.bin").stat().st_size > 1000
    assert fmax_from_report(tmp_path / "ice40-up5k.json") == r.fmax_mhz


def test_unknown_target():
    with pytest.raises(ConfigError, match="target='gowin': allowed values"):
        synthesize(ChipConfig(layer_sizes=(2, 2)), "gowin", "/tmp/none")


def test_design_that_does_not_fit_fails_clearly(tmp_path):
    # the default network's weights need more block RAM than the UP5K has
    with pytest.raises(SynthError, match=r"does not fit on ice40-up5k: ERROR: Unable to place cell"):
        synthesize(ChipConfig(), "ice40-up5k", tmp_path)
