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


def test_a_verilator_binary_linked_from_another_venv_is_linked_again(tmp_path):
    """The shared build cache: a binary whose cocotb library is another venv's (or unknown: built before the
    record) is removed before the build, so that make links it again against this venv's; one of ours is kept."""
    from hw.export import TOPLEVEL
    exe, stamp = tmp_path / TOPLEVEL, tmp_path / cocotb_sim.LINKED_LIBS
    exe.write_text("binary")
    assert cocotb_sim.relink_for_this_venv(tmp_path) and not exe.exists()          # unknown
    exe.write_text("binary")
    stamp.write_text("/gone/.venv/lib/python3.11/site-packages/cocotb/libs")
    assert cocotb_sim.relink_for_this_venv(tmp_path) and not exe.exists() and not stamp.exists()
    exe.write_text("binary")
    stamp.write_text(cocotb_sim._cocotb_libs())
    assert not cocotb_sim.relink_for_this_venv(tmp_path) and exe.exists()
    assert not cocotb_sim.relink_for_this_venv(tmp_path / "none")                 # nothing built yet


@pytest.mark.cocotb
def test_a_cached_verilator_build_from_another_venv_runs(monkeypatch, tmp_path):
    """End to end: a Verilator build in the cache, marked as linked from a venv that is gone, still runs (relinked
    against this venv's cocotb library) and gives the fast model's spikes."""
    import subprocess
    import numpy as np
    from hw.export import TOPLEVEL
    from sim.chip import make_chip
    from sim.sample import random_spikes, random_weights
    if cocotb_sim.simulator_available("verilator"):
        pytest.skip("verilator is not installed")
    monkeypatch.setenv("SPIKELOOP_CACHE", str(tmp_path))
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    w, x = random_weights(cfg, 0, 0.3), random_spikes(cfg, 2, 4, 0.3, 1)
    fast = make_chip(cfg, "fast")
    fast.load(w)
    first = make_chip(cfg, "verilator")
    first.load(w)
    first.run(x)
    build = first._build_dir
    linked = (build / TOPLEVEL).stat().st_mtime_ns
    (build / cocotb_sim.LINKED_LIBS).write_text("/gone/.venv/lib/python3.11/site-packages/cocotb/libs")
    again = make_chip(cfg, "verilator")
    again.load(w)
    r = again.run(x)
    assert np.array_equal(r.output, fast.run(x).output)
    assert (build / TOPLEVEL).stat().st_mtime_ns != linked                      # linked again
    assert (build / cocotb_sim.LINKED_LIBS).read_text() == cocotb_sim._cocotb_libs()
    runpath = subprocess.run(["readelf", "-d", str(build / TOPLEVEL)], capture_output=True, text=True).stdout
    assert cocotb_sim._cocotb_libs() in runpath
