"""``spikeloop dse`` with synthesis replaced by a stand-in (the real toolchain: one slow test): the cache,
scoring, Pareto marking, outputs and the one-line reports for bad input."""
import json
from pathlib import Path

import pytest

import hw.synth
from hw.config import ChipConfig, ConfigError
from hw.synth import SynthError, SynthReport
from tune.cli import main
from tune.dse import Sweep, run_dse, synth_cached

SIZES = (8, 4, 2)


class FakeSynth:
    """Area grows with lanes and weight bits, Fmax falls with lanes; ``fail_lanes`` do not fit."""

    def __init__(self, fail_lanes=()):
        self.calls = []
        self.fail_lanes = fail_lanes

    def __call__(self, cfg, target, out, weights=None, baud=115200):
        self.calls.append((cfg.structure_hash, target))
        total = 5280 if target == "ice40-up5k" else 24288
        lc = 1000 * cfg.lanes + 50 * cfg.weight_bits
        if cfg.lanes in self.fail_lanes:
            d = Path(out) / target
            d.mkdir(parents=True, exist_ok=True)
            (d / "top.tim").write_text(f"Info: Device utilisation:\nInfo:    ICESTORM_LC:  {lc}/ {total}   113%\n"
                                       "ERROR: Failed to expand region\n")
            raise SynthError(f"{cfg.layer_sizes} lanes={cfg.lanes} failed to build on {target}: ERROR: ...")
        return SynthReport(target=target, device="dev", layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                           weight_bits=cfg.weight_bits, logic_cells=lc, logic_cells_total=total, luts=lc - 100,
                           ffs=lc // 2, bram=2, bram_total=30, dsp=cfg.lanes, fmax_mhz=60.0 / cfg.lanes,
                           clock_mhz=12.0, timing_met=True, bitstream="", seconds=0.0)


def test_sweep_scores_caches_and_writes(tmp_path):
    fake = FakeSynth()
    sw = Sweep(layer_sizes=SIZES, lanes=(1, 2), weight_bits=(4, 8), targets=("ice40-up5k", "ecp5-25k"),
               batch=2, steps=4, density=0.5)
    rows = run_dse(sw, tmp_path, progress=False, synth=fake)
    assert len(rows) == 8 and len(fake.calls) == 8 == len(set(fake.calls))     # each structure x part once
    assert all(r["status"] == "ok" and not r["cached"] for r in rows)
    for r in rows:
        assert r["latency_us"] == pytest.approx(r["cycles"] / r["fmax_mhz"])
        assert r["energy_nj"] == pytest.approx(r["dynamic_nj"] + r["static_mw"] * r["latency_us"])
        assert r["fps_per_watt"] == pytest.approx(1e9 / r["energy_nj"])
        assert r["dynamic_nj"] > 0
    # Pareto per part: more lanes are faster here (fewer cycles) but bigger; w4 dominates w8 (same cycles)
    for r in rows:
        if r["weight_bits"] == 8:
            assert not r["pareto"]
    assert any(r["pareto"] for r in rows if r["target"] == "ecp5-25k")
    for name in ("dse.csv", "dse.json", "pareto.png"):
        assert (tmp_path / name).stat().st_size > 100
    assert json.loads((tmp_path / "dse.json").read_text())["rows"][0]["target"] == "ice40-up5k"
    # a second run (another sweep sharing structures) builds nothing again
    again = run_dse(Sweep(layer_sizes=SIZES, lanes=(2,), weight_bits=(4, 8), targets=("ecp5-25k",), batch=2,
                          steps=4, density=0.5), tmp_path, progress=False, synth=fake)
    assert len(fake.calls) == 8 and all(r["cached"] for r in again)
    # runtime registers are not structure: same cache entry
    rec = synth_cached(ChipConfig(layer_sizes=SIZES, lanes=2, weight_bits=4, beta=0.7, threshold=9),
                       "ecp5-25k", tmp_path / "synth-cache", fake)
    assert rec["cached"] and len(fake.calls) == 8


def test_does_not_fit_says_needs_and_has(tmp_path):
    rec = synth_cached(ChipConfig(layer_sizes=SIZES, lanes=8), "ice40-up5k", tmp_path, FakeSynth(fail_lanes=(8,)))
    assert rec["status"] == "does_not_fit"
    assert "needs 8400 ICESTORM_LC (logic cells), iCE40UP5K has 5280" in rec["message"]
    assert "\n" not in rec["message"]
    # the failure is cached too
    assert synth_cached(ChipConfig(layer_sizes=SIZES, lanes=8), "ice40-up5k", tmp_path, FakeSynth())["cached"]


@pytest.fixture
def fake_toolchain(monkeypatch):
    fake = FakeSynth(fail_lanes=(8,))
    monkeypatch.setattr(hw.synth, "synthesize", fake)
    return fake


ARGS = ["dse", "--sizes", "8,4,2", "--batch", "1", "--steps", "3", "--density", "0.5", "--no-progress"]


def test_cli_table_and_one_line_reports(tmp_path, capsys, fake_toolchain):
    assert main(ARGS + ["--lanes", "1", "8", "--weight-bits", "4", "--power", "fast", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "| ice40-up5k | 1 | 4 | 16 | " in out and "estimated (counter profile" in out
    assert err.count("\n") == 1 and "lanes=8 w4 m16 overlap=" in err and " on ice40-up5k: does_not_fit: needs 8200 ICESTORM_LC (logic cells), iCE40UP5K has 5280" in err


def test_cli_clock_above_fmax(tmp_path, capsys, fake_toolchain):
    # Fmax of the stand-in is 60 MHz / lanes: 2 lanes -> 30 MHz < 40 MHz
    assert main(ARGS + ["--lanes", "2", "--weight-bits", "4", "--clock-mhz", "40", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--clock-mhz 40 is above the post-route Fmax 30.00 MHz" in err


@pytest.mark.parametrize("args, msg", [
    (["--target", "gowin-1k"], "target='gowin-1k': unknown part; allowed values are ice40-up5k, ecp5-12k, ecp5-25k"),
    (["--weight-bits", "16", "--membrane-bits", "8"], "no combination has weight_bits <= membrane_bits"),
    (["--study", ""], "--study='': expected a non-empty string"),      # it fell back to the default build study
    (["--study", "a b"], "--study='a b': allowed are 1..100 characters"),
    (["--worker", "--study", ""], "--study='': expected a non-empty string"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, fake_toolchain, args, msg):
    assert main(ARGS + args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err
    assert not fake_toolchain.calls


def test_cli_bad_number_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(ARGS + ["--lanes", "0", "--out", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "allowed range is [1, 64]" in err


def test_sweep_refuses_bad_fields():
    with pytest.raises(ConfigError, match="power='x'"):
        Sweep(layer_sizes=SIZES, power="x")


def test_membranes_under_8_bits_are_swept_at_a_threshold_they_hold(tmp_path, capsys, fake_toolchain):
    """--membrane-bits 4..32 as the help says: a membrane under 8 bits cannot hold ChipConfig's threshold 64, so the
    sample network runs at its largest (every such sweep was refused as "threshold=64", a flag dse does not have);
    8 bits and wider keep 64, as before."""
    sw = Sweep(layer_sizes=SIZES, lanes=(2,), weight_bits=(4,), membrane_bits=(4, 6, 16))
    assert [(c.membrane_bits, c.threshold) for c in sw.configs()] == [(4, (7,) * 2), (6, (31,) * 2), (16, (64,) * 2)]
    assert main(ARGS + ["--lanes", "2", "--weight-bits", "4", "--membrane-bits", "6", "--power", "fast",
                        "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    assert "| ice40-up5k | 2 | 4 | 6 | " in capsys.readouterr().out


@pytest.mark.slow
def test_real_tiny_synthesis_is_cached(tmp_path):
    """The real toolchain on a tiny net (~1-2 min on iCE40): a second run is a cache hit."""
    sw = Sweep(layer_sizes=(6, 5, 3), lanes=(2,), weight_bits=(4,), batch=1, steps=3, density=0.5)
    rows = run_dse(sw, tmp_path, progress=False)
    assert rows[0]["status"] == "ok" and rows[0]["fmax_mhz"] > 10 and not rows[0]["cached"]
    assert run_dse(sw, tmp_path, progress=False)[0]["cached"]


def test_study_fits_constraint(tmp_path, fake_toolchain, tiny_toml):
    """[hardware] fits: a structure that fits gets its resources and Fmax (latency clock); one that does not
    is pruned before training, with the constraint set and the tool's reason kept."""
    import optuna
    from tune.config import StudyConfig
    from tune.objective import synthesis_check
    text = tiny_toml.read_text() + f'\n[hardware]\nfits = "ice40-up5k"\nsynth_cache = "{tmp_path}/cache"\n'
    sc = StudyConfig.from_toml(text)
    assert sc.fits == "ice40-up5k" and sc.clock == "fmax"
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"])
    t = study.ask()
    assert synthesis_check(t, sc, sc.chip.replace(lanes=2)) == pytest.approx(30.0)       # stand-in Fmax
    assert t.user_attrs["synth_logic_cells"] == 2400
    t2 = study.ask()
    with pytest.raises(optuna.TrialPruned, match=r"needs 8400 ICESTORM_LC \(logic cells\)"):
        synthesis_check(t2, sc, sc.chip.replace(lanes=8))
    study.tell(t2, state=optuna.trial.TrialState.PRUNED)
    frozen = study.trials[1]
    assert frozen.constraints["fits_ice40_up5k"] == 1.0
    assert frozen.user_attrs["synth_status"] == "does_not_fit"
    assert len(fake_toolchain.calls) == 2


@pytest.mark.parametrize("table, msg", [
    ('fits = "gowin"', "hardware.fits='gowin': unknown part"),
    ('clock = "fmax"', 'hardware.clock="fmax" needs hardware.fits'),
    ('speed = 1', "[hardware]: unknown fields ['speed']"),
])
def test_study_hardware_section_errors(tiny_toml, table, msg):
    from tune.config import StudyConfig
    with pytest.raises(ConfigError) as e:
        StudyConfig.from_toml(tiny_toml.read_text() + f"\n[hardware]\n{table}\n")
    assert msg in str(e.value)


def test_estimator_leave_one_out():
    """A model that is exactly linear in the features is recovered with zero held-out error."""
    from tune.dse import estimate, fit_estimator
    rows = [{"target": "ecp5-25k", "lanes": l, "weight_bits": w, "membrane_bits": 16,
             "logic_cells": 500 + 300 * l + 20 * l * w, "luts": 400 + 200 * l, "ffs": 300 + 10 * l * w,
             "fmax_mhz": 120 - 2 * l} for l in (1, 2, 4, 8) for w in (4, 8)]
    m = fit_estimator(rows)
    assert m["ecp5-25k"]["n"] == 8
    for k in ("logic_cells", "luts", "ffs", "fmax_mhz"):
        assert m["ecp5-25k"][k]["loo_max_abs_rel"] < 1e-9
    assert estimate(m, "ecp5-25k", 16, 8, 16)["logic_cells"] == pytest.approx(500 + 300 * 16 + 20 * 128)


def test_parallel_workers_fill_the_cache(tmp_path, fake_toolchain):
    from tune.dse import synth_all
    cfgs = [ChipConfig(layer_sizes=SIZES, lanes=l, weight_bits=w) for l in (1, 2) for w in (4, 8)]
    recs = synth_all(cfgs, ["ecp5-25k"], tmp_path, jobs=2, progress=False)
    assert len(recs) == 4 and all(r["status"] == "ok" and not r["cached"] for r in recs.values())
    here = len(fake_toolchain.calls)                # this process built some, the worker process the rest
    again = synth_all(cfgs, ["ecp5-25k"], tmp_path, jobs=1, progress=False)
    assert all(r["cached"] for r in again.values()) and len(fake_toolchain.calls) == here
    assert sorted(p.name for p in tmp_path.glob("ecp5-25k/*.json")) == sorted(f"{c.structure_hash}.json"
                                                                             for c in cfgs)


def _fails_without_dff(seen: list, yosys_log: str, error: str):
    """A stand-in synthesis that fails (Yosys's log ``yosys_log``, no nextpnr log) unless given ``-dff``."""
    good = FakeSynth()

    def synth(cfg, target, out, weights=None, baud=115200, synth_opts=""):
        seen.append(synth_opts)
        if synth_opts != "-dff":
            d = Path(out) / target
            d.mkdir(parents=True, exist_ok=True)
            (d / "top.rpt").write_text(yosys_log)
            raise SynthError(error)
        return good(cfg, target, out)
    return synth


def test_yosys_assertion_on_ecp5_is_retried_with_dff_and_said(tmp_path):
    seen = []
    flaky = _fails_without_dff(seen, "ERROR: Assert `GetSize(conn.first) == GetSize(conn.second)' failed in "
                                     "rtlil.cc\n", "failed to build")
    rec = synth_cached(ChipConfig(layer_sizes=SIZES, lanes=2), "ecp5-25k", tmp_path, flaky)
    assert seen == ["", "-dff"] and rec["status"] == "ok" and rec["synth_opts"] == "-dff"
    assert rec["message"].startswith("built with yosys -dff (default flow: yosys: ERROR: Assert")
    # a Yosys that died without an error line (no nextpnr log) is retried the same way
    seen.clear()
    crashing = _fails_without_dff(seen, "3.48. Executing ABC9 pass.\n", "yosys stopped without an error (a crash; "
                                                                        "its log ends at: 3.48. Executing ABC9 pass.)")
    rec = synth_cached(ChipConfig(layer_sizes=SIZES, lanes=3), "ecp5-25k", tmp_path, crashing)
    assert seen == ["", "-dff"] and rec["status"] == "ok" and rec["synth_opts"] == "-dff"
    assert "yosys stopped without an error" in rec["message"]
    # not on iCE40 (no such flow there): the failure is reported as it is
    seen.clear()
    rec = synth_cached(ChipConfig(layer_sizes=SIZES, lanes=2), "ice40-up5k", tmp_path, flaky)
    assert seen == [""] and rec["status"] == "failed" and rec["message"].startswith("yosys: ERROR: Assert")


def test_overlap_is_a_swept_structure_knob():
    """Overlap on and off are distinct structures (two builds, two cache entries), in every row."""
    sw = Sweep(layer_sizes=(8, 6, 4, 2), lanes=(2,), weight_bits=(8,), overlap=(True, False))
    cfgs = sw.configs()
    assert [c.overlap for c in cfgs] == [True, False]
    assert cfgs[0].structure_hash != cfgs[1].structure_hash
    assert cfgs[0].state_banks == 2 and cfgs[1].state_banks == 1


def test_estimator_must_beat_the_mean_of_the_others():
    """Fmax that is noise around a constant (placement) loses to the mean-of-others baseline: no Fmax estimate;
    area that is linear in the features beats it and stays."""
    from tune.dse import estimate, estimator_lines, fit_estimator
    noise = [2.0, -3.0, -2.0, 3.0, -1.0, 1.0, 3.0, -2.0]        # uncorrelated with the features
    rows = [{"target": "ice40-up5k", "lanes": l, "weight_bits": w, "membrane_bits": 16,
             "logic_cells": 500 + 300 * l + 20 * l * w, "luts": 400 + 200 * l, "ffs": 300 + 10 * l * w,
             "fmax_mhz": 37 + noise[i]} for i, (l, w) in enumerate((l, w) for l in (1, 2, 4, 8) for w in (4, 8))]
    m = fit_estimator(rows)["ice40-up5k"]
    f = m["fmax_mhz"]
    assert f["loo_mean_abs_rel"] >= f["baseline_loo_mean_abs_rel"] and not f["beats_baseline"]
    assert m["logic_cells"]["beats_baseline"] and m["logic_cells"]["baseline_loo_mean_abs_rel"] > 0.3
    assert m["estimates"] == ["logic_cells", "luts", "ffs"] and list(m["no_estimate"]) == ["fmax_mhz"]
    assert set(estimate({"ice40-up5k": m}, "ice40-up5k", 2, 8, 16)) == {"logic_cells", "luts", "ffs"}
    text = "\n".join(estimator_lines({"ice40-up5k": m}))
    assert "no Fmax estimate (does not beat the mean of the other structures)" in text
    assert f"fmax_mhz {f['loo_mean_abs_rel']:.1%} (baseline {f['baseline_loo_mean_abs_rel']:.1%})" in text


def test_sweep_over_seeds_scores_at_the_minimum_fmax(tmp_path):
    """--seeds: every (structure, part, seed) is a build, and a structure is scored at its minimum Fmax."""
    calls = []

    def synth(cfg, target, out, weights=None, baud=115200, synth_opts="", router="router1", seed=None):
        calls.append((cfg.lanes, seed))
        return SynthReport(target=target, device="dev", layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                           weight_bits=cfg.weight_bits, logic_cells=1000, logic_cells_total=24288, luts=900, ffs=500,
                           bram=1, bram_total=56, dsp=1, fmax_mhz={1: 95.0, 2: 110.0, 3: 101.0}[seed], clock_mhz=25.0,
                           timing_met=True, bitstream="", seconds=0.0, seed=seed)
    sw = Sweep(layer_sizes=SIZES, lanes=(1, 2), weight_bits=(4,), targets=("ecp5-25k",), batch=1, steps=3,
               density=0.5, seeds=(1, 2, 3), power="fast")
    rows = run_dse(sw, tmp_path, progress=False, synth=synth)
    assert sorted(calls) == [(l, s) for l in (1, 2) for s in (1, 2, 3)]
    for r in rows:
        assert (r["fmax_mhz"], r["fmax_median_mhz"], r["fmax_max_mhz"], r["n_seeds"]) == (95.0, 101.0, 110.0, 3)
        assert r["latency_us"] == pytest.approx(r["cycles"] / 95.0)
    assert len(list((tmp_path / "synth-cache" / "ecp5-25k").glob("*-seed*.json"))) == 6
    with pytest.raises(ConfigError, match=r"seeds=\[0\]: allowed values are integers 1 to 2147483647"):
        Sweep(layer_sizes=SIZES, seeds=(0,))


def test_update_is_a_swept_dimension_scored_by_its_own_schedule(tmp_path):
    """--update all touched: a touched chip is its own structure, with overlap on and off as an "all" chip, and its
    latency rests on the fast model's cycles of the touched schedule."""
    from sim.chip import make_chip
    from sim.sample import random_spikes, random_weights
    sw = Sweep(layer_sizes=SIZES, lanes=(2,), weight_bits=(4,), overlap=(True, False), update=("all", "touched"),
               batch=2, steps=5, density=0.3, power="fast", max_steps=8)
    cfgs = sw.configs()
    assert [(c.update, c.overlap) for c in cfgs] == [("all", True), ("all", False), ("touched", True),
                                                     ("touched", False)]
    assert cfgs[2].max_steps == cfgs[3].max_steps == 8 and len({c.structure_hash for c in cfgs}) == 4
    rows = run_dse(sw, tmp_path, progress=False, synth=FakeSynth())
    assert [r["update"] for r in rows] == ["all", "all", "touched", "touched"] and all(r["status"] == "ok" for r in rows)
    for cfg, r in zip(cfgs, rows):
        chip = make_chip(cfg)
        chip.load(random_weights(cfg, sw.seed, sw.density))
        cycles = chip.run(random_spikes(cfg, sw.batch, sw.steps, sw.density, sw.seed + 1)).cycles
        assert r["cycles"] == pytest.approx(float(cycles.mean()))
        assert r["latency_us"] == pytest.approx(r["cycles"] / r["fmax_mhz"])
    assert rows[3]["cycles"] != rows[1]["cycles"]          # another schedule, other cycles
    assert rows[2]["cycles"] <= rows[3]["cycles"]          # the overlap hides cycles or none
    with pytest.raises(ConfigError, match=r"steps=9: a chip with update='touched' runs at most max_steps=8"):
        Sweep(layer_sizes=SIZES, update=("touched",), steps=9, max_steps=8)
    with pytest.raises(ConfigError, match=r"update='lazy': allowed values are \('all', 'touched'\)"):
        Sweep(layer_sizes=SIZES, update=("lazy",))


def test_cli_dse_update_flag(tmp_path, capsys, monkeypatch):
    """`spikeloop dse --update all touched`: both schedules in the table; a bad value is argparse's one line."""
    monkeypatch.setattr(hw.synth, "synthesize", FakeSynth())
    assert main(["dse", "--sizes", "8,4,2", "--lanes", "2", "--weight-bits", "4", "--update", "all", "touched",
                 "--steps", "4", "--batch", "1", "--power", "fast", "--out", str(tmp_path), "--no-progress"]) == 0
    table = [l for l in capsys.readouterr().out.splitlines() if l.startswith("| ice40-up5k")]
    assert [l.split(" | ")[4:6] for l in table] == [["on", "all"], ["on", "touched"]]
    with pytest.raises(SystemExit) as e:
        main(["dse", "--update", "lazy", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--update: invalid choice: 'lazy' (choose from" in capsys.readouterr().err


def test_estimator_gains_a_touched_feature_only_with_touched_chips():
    """A sweep with touched chips fits one more feature (their per-structure extra logic) and predicts it; a model
    fitted without them refuses to predict a touched structure."""
    from tune.dse import estimate, fit_estimator
    rows = [{"target": "ice40-up5k", "lanes": l, "weight_bits": w, "membrane_bits": 16, "overlap": u == "all",
             "update": u, "logic_cells": 500 + 300 * l + 20 * l * w + (200 if u == "touched" else 0),
             "luts": 400 + 200 * l, "ffs": 300 + 10 * l * w, "fmax_mhz": 40.0 - l}
            for l in (1, 2, 4) for w in (4, 8) for u in ("all", "touched")]
    m = fit_estimator(rows)
    assert m["ice40-up5k"]["features"].endswith(", touched")
    assert estimate(m, "ice40-up5k", 2, 8, 16, overlap=False, update="touched")["logic_cells"] == pytest.approx(
        500 + 600 + 320 + 200)
    plain = fit_estimator([r for r in rows if r["update"] == "all"])
    assert not plain["ice40-up5k"]["features"].endswith("touched")
    with pytest.raises(ConfigError, match="fitted without touched chips"):
        estimate(plain, "ice40-up5k", 2, 8, 16, update="touched")


def test_wavefront_is_swept_for_touched_chips_only(tmp_path):
    """--update all touched --wavefront off on: the wavefront is one more structure per touched chip (its overlap
    values are one: it has none), never an "all" chip; its latency rests on the wavefront schedule's cycles, the
    touched chip's without overlap or more; the row, table and CSV name it."""
    import csv

    from sim.chip import make_chip
    from sim.sample import random_spikes, random_weights
    from tune.dse import format_table
    sw = Sweep(layer_sizes=SIZES, lanes=(2,), weight_bits=(4,), overlap=(True, False), update=("all", "touched"),
               wavefront=(False, True), batch=2, steps=5, density=0.3, power="fast", max_steps=8)
    cfgs = sw.configs()
    assert [(c.update, c.overlap, c.wavefront) for c in cfgs] == [
        ("all", True, False), ("all", False, False), ("touched", True, False), ("touched", False, False),
        ("touched", False, True)]
    assert cfgs[4].state_banks == cfgs[4].num_layers and len({c.structure_hash for c in cfgs}) == 5
    rows = run_dse(sw, tmp_path, progress=False, synth=FakeSynth())
    assert [r["wavefront"] for r in rows] == [False] * 4 + [True] and all(r["status"] == "ok" for r in rows)
    chip = make_chip(cfgs[4])
    chip.load(random_weights(cfgs[4], sw.seed, sw.density))
    cycles = chip.run(random_spikes(cfgs[4], sw.batch, sw.steps, sw.density, sw.seed + 1)).cycles
    assert rows[4]["cycles"] == pytest.approx(float(cycles.mean()))
    assert rows[4]["cycles"] <= rows[3]["cycles"]          # the dataflow hides cycles or none
    table = [l for l in format_table(rows) if l.startswith("| ice40-up5k")]
    assert [l.split(" | ")[4:7] for l in table] == [["on", "all", "off"], ["off", "all", "off"],
                                                   ["on", "touched", "off"], ["off", "touched", "off"],
                                                   ["off", "touched", "on"]]
    with open(tmp_path / "dse.csv") as f:
        assert [r["wavefront"] for r in csv.DictReader(f)] == ["False"] * 4 + ["True"]
    assert json.loads((tmp_path / "dse.json").read_text())["sweep"]["wavefront"] == [False, True]
    with pytest.raises(ConfigError, match=r"wavefront=\['on'\]: a wavefront chip needs update='touched', which "
                                          r"update=\['all'\] does not sweep"):
        Sweep(layer_sizes=SIZES, wavefront=(True,))


def test_cli_dse_wavefront_flag(tmp_path, capsys, monkeypatch):
    """`spikeloop dse --update touched --wavefront off on`: both touched chips in the table; the wavefront without a
    touched chip, or a bad value, is one line."""
    monkeypatch.setattr(hw.synth, "synthesize", FakeSynth())
    assert main(["dse", "--sizes", "8,4,2", "--lanes", "2", "--weight-bits", "4", "--update", "touched",
                 "--wavefront", "off", "on", "--steps", "4", "--batch", "1", "--power", "fast", "--out", str(tmp_path),
                 "--no-progress"]) == 0
    table = [l for l in capsys.readouterr().out.splitlines() if l.startswith("| ice40-up5k")]
    assert [l.split(" | ")[4:7] for l in table] == [["on", "touched", "off"], ["off", "touched", "on"]]
    from tests.tune.test_cli_errors import fails_cleanly, spikeloop
    fails_cleanly(spikeloop("dse", "--wavefront", "on", "--out", tmp_path / "w", cwd=tmp_path),
                  "wavefront=['on']: a wavefront chip needs update='touched', which update=['all'] does not sweep")
    with pytest.raises(SystemExit) as e:
        main(["dse", "--wavefront", "maybe", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "--wavefront: " in capsys.readouterr().err


def test_estimator_gains_wavefront_features_only_with_wavefront_chips():
    """A sweep with wavefront chips fits two more features (per structure, and per lane: a membrane memory per
    layer) and predicts a wavefront structure; a model fitted without them refuses to."""
    from tune.dse import estimate, fit_estimator
    rows = [{"target": "ice40-up5k", "lanes": l, "weight_bits": w, "membrane_bits": 16, "overlap": o and not f,
             "update": u, "wavefront": f,
             "logic_cells": 500 + 300 * l + 20 * l * w + 50 * l * (o and not f) + (200 if u == "touched" else 0)
             + (150 + 40 * l if f else 0),
             "luts": 400 + 200 * l, "ffs": 300 + 10 * l * w, "fmax_mhz": 40.0 - l}
            for l in (1, 2, 4) for w in (4, 8) for o in (True, False) for u, f in (("all", False), ("touched", False),
                                                                                  ("touched", True))
            if not (f and o)]
    m = fit_estimator(rows)
    assert m["ice40-up5k"]["features"].endswith(", touched, wavefront, lanes*wavefront")
    assert estimate(m, "ice40-up5k", 2, 8, 16, update="touched", wavefront=True)["logic_cells"] == pytest.approx(
        500 + 600 + 320 + 200 + 150 + 80)
    assert estimate(m, "ice40-up5k", 2, 8, 16, overlap=False, update="touched")["logic_cells"] == pytest.approx(
        500 + 600 + 320 + 200)
    plain = fit_estimator([r for r in rows if not r["wavefront"]])
    assert plain["ice40-up5k"]["features"].endswith(", touched")
    with pytest.raises(ConfigError, match="fitted without wavefront chips"):
        estimate(plain, "ice40-up5k", 2, 8, 16, update="touched", wavefront=True)
    with pytest.raises(ConfigError, match="wavefront=true: built for update='touched' only"):
        estimate(m, "ice40-up5k", 2, 8, 16, wavefront=True)
