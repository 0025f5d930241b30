"""The cocotb backend's build settings (no simulator run)."""
import os

import pytest

from hw.config import ChipConfig, ConfigError
from sim import cocotb_sim


class _Runner:
    """Stands in for cocotb's runner: records what a build would be given."""
    builds = []

    def build(self, build_dir, **kw):
        self.builds.append((build_dir, os.environ.get("MAKEFLAGS", "")))


def test_verilator_opt_reaches_make_and_the_cache_key(monkeypatch, tmp_path):
    monkeypatch.setenv("SPIKELOOP_CACHE", str(tmp_path))
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    monkeypatch.setattr("cocotb_tools.runner.get_runner", lambda sim: _Runner())
    if cocotb_sim.simulator_available("verilator"):
        pytest.skip("verilator is not installed")
    _Runner.builds.clear()
    cfg = ChipConfig(layer_sizes=(4, 3), lanes=2)
    for opt in ("-O0", "-Os"):
        monkeypatch.setenv("SPIKELOOP_VERILATOR_OPT", opt)
        cocotb_sim.CocotbChip(cfg, "verilator")._build()
    (dir0, flags0), (dir1, flags1) = _Runner.builds
    assert "OPT_FAST=-O0 OPT_GLOBAL=-O0" in flags0 and "OPT_FAST=-Os OPT_GLOBAL=-Os" in flags1
    assert dir0 != dir1                                   # a build of one level is never reused for another
    assert "MAKEFLAGS" not in os.environ                  # restored after the build
    monkeypatch.delenv("SPIKELOOP_VERILATOR_OPT")
    assert cocotb_sim.verilator_opt() == "-Os"            # Verilator's own default


def test_a_bad_verilator_opt_is_refused_before_any_build(monkeypatch):
    monkeypatch.setenv("SPIKELOOP_VERILATOR_OPT", "-Ofast")
    with pytest.raises(ConfigError, match=r"SPIKELOOP_VERILATOR_OPT='-Ofast': allowed values are -O0, .*-Os$"):
        cocotb_sim.CocotbChip(ChipConfig(layer_sizes=(4, 3), lanes=2), "verilator")
