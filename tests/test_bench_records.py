"""The bench scripts write records and their VIEWS render them (bench/records.py, bench/render.py)."""
import json
import sys

import pytest

from bench import bench_model, bench_study, experiments, synth_seeds, synth_table
from bench.records import Recorder


def test_paired_ratios_are_per_round():
    # round 2 is slow for both (load): a paired ratio stays 2, a ratio of medians would not see it
    r = bench_model.paired([2.0, 20.0, 4.0], [1.0, 10.0, 2.0])
    assert r == {"median": 2.0, "min": 2.0, "max": 2.0, "rounds": 3}
    t = bench_model.times(32, [0.5, 0.25, 1.0])
    assert t["min_s"] == 0.25 and t["median_s"] == 0.5 and t["best_rate"] == 128 and t["median_rate"] == 64


def test_bench_model_quick_writes_a_record_its_views_render(tmp_path):
    assert bench_model.main(["--quick", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "model_speed.json").read_text())
    assert rec["module"] == "bench.bench_model" and rec["params"]["threads"] == 1
    impls = {"fast model", "snnTorch", "numpy float32"}
    peers = [r for r in rec["rounds"] if r["section"] == "peers"]
    assert len(peers) == 2 * 3 * len(impls)                 # 2 rows x 3 rounds x 3 contestants, every round kept
    assert [r["impl"] for r in peers[:6]] == ["fast model", "snnTorch", "numpy float32"] * 2     # interleaved
    table = bench_model.VIEWS["peers"](rec)
    assert table.count("\n| 256,256,128,16 |") == 2 and "x (" in table
    assert bench_model.VIEWS["speedup"](rec, "256", "32", "0.1", "numpy").endswith(")")
    with pytest.raises(KeyError):
        bench_model.VIEWS["speedup"](rec, "256", "256", "0.1", "numpy")
    assert "load average" in bench_model.VIEWS["conditions"](rec)
    assert bench_model.VIEWS["runs"](rec).count("| fast ÷ numpy |") == 2
    assert rec["date_end"] >= rec["date"] and "commit_at_end" not in rec      # provenance of the run's start
    conv = [r for r in rec["rounds"] if r["section"] == "conv"]
    assert [r["impl"] for r in conv[:4]] == ["fast model", "torch conv loop"] * 2
    assert bench_model.VIEWS["conv"](rec).count("\n| 1x28x28") == 1
    assert bench_model.VIEWS["conv_speedup"](rec, "8").endswith(")")
    state = rec["params"]["threads_state"]                  # the bench states and controls its thread pools
    assert state["torch_threads"] == 1 and all(p["num_threads"] == 1 for p in state["pools"])
    assert "VNNI" in bench_model.VIEWS["machine"](rec)
    assert [a["weights"] for a in rec["summary"]["activity"]] == ["fixed", "scaled"]


def test_plain_torch_conv_loop_computes_the_chip_network():
    """The conv peer is a real conv net on the chip's weights: with beta 1 (no leak), a threshold no membrane
    reaches never fires, and the first layer's currents equal the fast model's synaptic sums."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from bench.bench_conv import SCNN
    from hw.config import ChipConfig
    from sim.sample import random_spikes, random_weights
    cfg = ChipConfig.from_dict({**SCNN, "lanes": 8, "threshold": 64, "beta": 0.9})
    w = random_weights(cfg, seed=0)
    x = random_spikes(cfg, 2, 3, 0.3, seed=1)
    out = bench_model.plain_torch_conv(cfg, [v.astype(np.float32) for v in w], 1.0, 1e9)(x)
    assert out.shape == (2, 3, 10) and not out.any()
    from sim.model import FastModel
    m = FastModel(cfg, w)
    inp = np.ascontiguousarray(x.transpose(1, 0, 2))
    h = np.asarray(m._image_sums(0, inp), np.int64).reshape(3, 2, 28, 28, 16)          # (T, B, H, W, C)
    xt = torch.from_numpy(x.reshape(2, 3, 28, 28, 1).astype(np.float32)).permute(0, 1, 4, 2, 3)
    wt = torch.from_numpy(np.ascontiguousarray(w[0].transpose(3, 0, 1, 2)).astype(np.float32))
    ref = F.conv2d(xt[:, 1], wt, padding=1).permute(0, 2, 3, 1).numpy()                 # step 1, (B, H, W, C)
    assert (h[1] == ref).all()


def _synth_record(tmp_path, rows, name="probe_synth"):
    with Recorder(name, folder=tmp_path, seeds=[r["seed"] for r in rows], script=synth_seeds.__file__,
                  params={"target": "ecp5-25k", "network": "64-128-64-10", "lanes": 8, "weight_bits": 8}) as rec:
        for r in rows:
            rec.round(**r)
        ok = [r for r in rows if r["status"] == "ok"]
        rec.summary = {"builds": len(rows), "ok": len(ok)}
        if ok:
            from bench.records import spread
            rec.summary["fmax"] = spread(r["fmax_mhz"] for r in ok)
            for k in ("logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "dsp"):
                vals = sorted({r[k] for r in ok})
                rec.summary[k] = vals[0] if len(vals) == 1 else {"min": vals[0], "max": vals[-1]}
    return json.loads((tmp_path / f"{name}.json").read_text())


def test_synth_row_shows_fmax_over_seeds(tmp_path):
    base = {"status": "ok", "logic_cells": 7430, "logic_cells_total": 24288, "luts": 4674, "ffs": 3684, "bram": 15,
            "bram_total": 56, "dsp": 8, "seconds": 300}
    rec = _synth_record(tmp_path, [base | {"seed": s, "fmax_mhz": f} for s, f in ((1, 96.0), (2, 99.5), (3, 98.0))])
    row = synth_seeds.view_row(rec)
    assert "| 96.00 / 98.00 / 99.50 (3 seeds) |" in row and "| 7430/24288 | 4674 | 3684 | 15/56 | 8 |" in row
    assert synth_seeds.view_seeds(rec).count("\n| ") == 3
    failed = _synth_record(tmp_path, [{"seed": 1, "status": "failed", "message": "needs 60 ICESTORM_RAM"}], "f")
    assert "failed: needs 60 ICESTORM_RAM" in synth_seeds.view_row(failed)


def test_a_touched_chip_has_its_own_synth_record_and_row(tmp_path):
    """A touched chip's sweep is never filed under (or shown as) the same structure's "all" chip."""
    from hw.config import ChipConfig
    cfg = ChipConfig(layer_sizes=(64, 128, 64, 10), lanes=8)
    touched = cfg.replace(overlap=False, update="touched")
    assert synth_seeds.record_name(cfg, "ecp5-25k") == "synth_seeds_ecp5-25k_64-128-64-10_l8"
    assert synth_seeds.record_name(touched, "ecp5-25k") == "synth_seeds_ecp5-25k_64-128-64-10_l8_touched"
    base = {"seed": 1, "status": "ok", "fmax_mhz": 60.0, "logic_cells": 9000, "logic_cells_total": 24288,
            "luts": 5000, "ffs": 5000, "bram": 21, "bram_total": 56, "dsp": 24, "seconds": 300}
    rec = _synth_record(tmp_path, [base])
    assert "| 64-128-64-10 | 8 |" in synth_seeds.view_row(rec)
    rec["params"]["chip"] = touched.to_dict()
    assert "| 64-128-64-10, update touched | 8 |" in synth_seeds.view_row(rec)
    # with overlap (two membrane memories) and as a wavefront (one per layer): other designs, other rows and names
    rec["params"]["chip"] = touched.replace(overlap=True).to_dict()
    assert "| 64-128-64-10, update touched, overlap | 8 |" in synth_seeds.view_row(rec)
    wavefront = touched.replace(wavefront=True)
    rec["params"]["chip"] = wavefront.to_dict()
    assert "| 64-128-64-10, update touched, wavefront | 8 |" in synth_seeds.view_row(rec)
    assert synth_seeds.record_name(wavefront, "ecp5-25k") == "synth_seeds_ecp5-25k_64-128-64-10_l8_touched_wavefront"


def test_a_touched_chip_with_overlap_has_its_own_record_name():
    """A touched chip with overlap (two membrane memories) is filed as ``_touched_overlap``, not under the
    overlap-off touched chip's ``_touched`` records; every published seed sweep is still filed under its own
    chip's default name (none renamed), the touched overlap sweep on record among them."""
    from pathlib import Path
    from hw.config import ChipConfig
    cfg = ChipConfig(layer_sizes=(64, 128, 64, 10), lanes=8)
    assert synth_seeds.record_name(cfg.replace(update="touched"), "ecp5-25k") == \
        "synth_seeds_ecp5-25k_64-128-64-10_l8_touched_overlap"
    assert synth_seeds.record_name(cfg.replace(update="touched", overlap=False), "ecp5-25k") == \
        "synth_seeds_ecp5-25k_64-128-64-10_l8_touched"
    assert synth_seeds.record_name(cfg.replace(overlap=False), "ecp5-25k") == synth_seeds.record_name(cfg, "ecp5-25k")
    results = Path(__file__).resolve().parents[1] / "docs" / "results"
    seen = set()
    for f in sorted(results.glob("synth_seeds_*.json")):
        p = json.loads(f.read_text())["params"]
        if not p.get("chip"):
            continue
        chip = ChipConfig.from_dict(p["chip"])
        name = synth_seeds.record_name(chip, p["target"])
        rest = f.stem[len(name):]
        assert f.stem.startswith(name) and (not rest or rest.startswith("_")), (f.stem, name)
        assert not rest.startswith(("_touched", "_overlap")), (f.stem, name)
        seen.add((chip.touched, chip.overlap))
    assert (True, True) in seen and (True, False) in seen


def test_synth_table_rows_and_bad_rows(capsys):
    assert synth_table.main(["--rows", "99"]) == 2
    assert "allowed row numbers are 0 to" in capsys.readouterr().err
    conv = synth_table.row_args(len(synth_table.RUNS))
    assert conv[:2] == ["--target", "ecp5-25k"] and conv[-1].endswith("conv_digits.toml")


def test_experiment_seeds_are_a_count_with_offset_or_a_list():
    assert experiments.seed_list("3", 5) == [5, 6, 7]
    assert experiments.seed_list("31337,2718", 0) == [31337, 2718]
    for bad in ("0", "x", "3,3", "1,-2"):
        with pytest.raises(Exception, match="--seeds"):
            experiments.seed_list(bad, 0)


def test_study_workers_view():
    run = lambda wall, cpu: {"wall_s": wall, "cpu_s": cpu, "trials": 8, "trial_seconds_sum": wall - 5,
                             "first_trial_after_s": 3.0, "load_before": [4.0, 4.0, 4.0]}
    rec = {"machine": {"cores": 2, "load_before": [4.0, 4.0, 4.0]},
           "summary": {"speedup": 1.5, "jobs1": run(90.0, 20.0), "jobs2": run(60.0, 25.0)}}
    t = bench_study.view_workers(rec)
    assert "| 2 | 8 | 60.0 | 25.0 |" in t and "1.50x one worker" in t and "NOT an idle machine" in t
    assert "2 × 20.0 / 25.0 = 1.60x" in t


def test_study_workers_projection_from_cpu_time():
    """Two lanes: the command (worker 0) from the start, the forked worker after the fork server's imports and its
    own start-up; each trial's CPU time to the lane free first, in trial order."""
    def run(jobs, wall, trial_cpu, by_command, command, server=0.0, forked=0.0):
        return {"jobs": jobs, "wall_s": wall, "cpu_s": command + server + forked, "command_cpu_s": command,
                "server_cpu_s": server, "forked_cpu_s": forked, "trials": len(trial_cpu),
                "cpu_s_per_trial": (command + server + forked) / len(trial_cpu), "trials_own_cpu_s": sum(trial_cpu),
                "trial_cpu_s": trial_cpu, "trial_by_command": by_command, "first_trial_after_s": 0.5,
                "forked_first_trial_after_s": None if jobs == 1 else 3.0,
                "threads": [{"torch": 1, "blas_openmp": 2 // jobs}], "load_before": [4.0, 4.0, 4.0]}
    one = run(1, 20.0, [3.0, 3.0, 3.0, 3.0], [True] * 4, command=13.0)
    # two workers: the command ran trials 0, 1, 3 (+1 s outside them), the forked one trial 2 (+0.5 s), server 2 s
    two = run(2, 12.0, [3.0, 3.0, 3.0, 3.0], [True, True, False, True], command=10.0, server=2.0, forked=3.5)
    s = bench_study.summarise([one, two, two, one])
    assert s["speedup"] == pytest.approx(40 / 24)
    # lanes start at 1.0 (command) and 2.5 (server + forked start-up): 1+3=4, 2.5+3=5.5, 4+3=7, 5.5+3=8.5
    assert s["projected_idle_wall_s"] == {"1": 13.0, "2": pytest.approx(8.5)}
    assert s["projected_idle_speedup"] == pytest.approx(13.0 / 8.5)
    assert s["trials_by_command_jobs2"] == 3 and s["forked_first_trial_after_s"] == 3.0
    rec = {"machine": {"cores": 2, "load_before": [4.0, 4.0, 4.0]}, "params": {"order": [1, 2, 2, 1]}, "summary": s,
           "rounds": [one, two, two, one]}
    t = bench_study.view_workers(rec)
    assert "**1.53x**" in t and "two workers **1.67x** one" in t and "not the idle machine's ratio" in t
    assert "| 2 | 2 | 12, 12 | 15.5 | 3.88 | 12.0 | 0.5 | 3.0 |" in t and "torch 1" in t


def test_bench_model_conditions_run_in_child_processes(tmp_path, monkeypatch):
    """The conditions section times the batch-32 row in a fresh process per condition and keeps both clocks."""
    monkeypatch.setattr(bench_model, "CONDITIONS", {"pinned (as the bench)": bench_model.CONDITIONS["pinned (as the bench)"]})
    assert bench_model.main(["--sections", "conditions", "--rounds", "2", "--steps", "2", "--out", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "model_speed.json").read_text())
    (row,) = rec["summary"]["conditions"]
    assert row["condition"] == "pinned (as the bench)" and row["cpu"]["rounds"] == 2 and row["wall"]["rounds"] == 2
    assert {r["impl"] for r in rec["rounds"]} == {"fast model", "numpy float32"} and len(rec["rounds"]) == 4
    assert bench_model.VIEWS["conditions_table"](rec).count("\n| pinned") == 1


def test_study_workers_cli_summary_and_view():
    runs = [{"jobs": j, "wall_s": w, "load_before": [0.2, 0.2, 0.2]}
            for j, w in ((1, 20.0), (2, 12.0), (2, 13.0), (1, 22.0))]
    s = bench_study.summarise_cli(runs)
    assert s["speedup"] == pytest.approx(42 / 25) and s["wall_s"] == {"1": [20.0, 22.0], "2": [12.0, 13.0]}
    assert s["mean_wall_s"]["2"] == 12.5 and s["std_wall_s"]["1"] == pytest.approx(2 ** 0.5)
    rec = {"machine": {"cores": 2, "load_before": [0.2, 0.2, 0.2]}, "summary": s,
           "params": {"trials": 12, "order": [1, 2, 2, 1]}}
    t = bench_study.view_workers_cli(rec)
    assert "| `--jobs 2` | 2 | 12.0, 13.0 | 12.5 ± 0.7 |" in t and "**1.68x**" in t and "load average 0.2" in t
    assert "shared machine" not in t and "fresh process per run" in t
    # the ratio per pair (20/12, 22/13) with its spread
    assert s["pair_ratio"]["each"] == pytest.approx([20 / 12, 22 / 13]) and "per pair of runs 1.68 ± 0.02" in t
    assert "min / median / max 1.67 / 1.68 / 1.69 over 2 pairs" in t


def test_study_workers_cli_phases():
    """Where the wall time went: before the first trial, trials, after the last one; the last trial alone."""
    import datetime

    class T:
        def __init__(self, pid, a, b):
            self.system_attrs = {"spikeloop_worker_pid": pid}
            self.datetime_start = datetime.datetime.fromtimestamp(100 + a)
            self.datetime_complete = datetime.datetime.fromtimestamp(100 + b)
    p = bench_study._phases([T(7, 2.0, 5.0), T(8, 4.0, 6.0), T(7, 5.0, 9.0)], 100.0, 11.0, 7)
    assert p["head_s"] == pytest.approx(2.0) and p["trials_s"] == pytest.approx(7.0) and p["tail_s"] == pytest.approx(2.0)
    assert p["first_trial_after_s"] == pytest.approx({"command": 2.0, "forked": 4.0})
    assert p["end_alone_s"] == pytest.approx(3.0) and p["trials_by"] == {"command": 2, "forked": 1}
    runs = [dict(jobs=j, wall_s=w, load_before=[0.2] * 3, head_s=2.0, trials_s=w - 4, tail_s=2.0,
                 first_trial_after_s={"command": 2.0, **({"forked": 3.5} if j == 2 else {})},
                 end_alone_s=0.0 if j == 1 else 1.0, busy_s={"command": w - 5} if j == 1 else
                 {"command": 5.0, "forked": 5.0}) for j, w in ((1, 20.0), (2, 12.0), (2, 14.0), (1, 22.0))]
    s = bench_study.summarise_cli(runs)
    assert s["serial_s"] == 4.0 and s["phases"]["2"]["end_alone_s"] == 1.0 and s["forked_first_trial_after_s"] == 3.5
    rec = {"machine": {"cores": 2, "load_before": [0.2] * 3}, "summary": s, "rounds": runs,
           "params": {"trials": 12, "order": [1, 2, 2, 1]}}
    t = bench_study.view_workers_cli(rec)
    assert "| `--jobs 2` | 2 | 12.0, 14.0 | 13.0 ± 1.4 | 2.0 | 9.0 | 2.0 |" in t
    assert "4.0 s of the one-worker run's 21.0 s" in t and "ran alone for 1.0 s" in t
    assert s["bound_speedup"] == pytest.approx(21 / (4 + 17 / 2)) and "at most 1.68x" in t
    assert s["trials_speedup"] == pytest.approx(17 / 9) and "ran 1.89x faster" in t
    assert s["trials_busy_extra"] == pytest.approx(10 / 16 - 1) and "added up to -38 % of one worker's" in t


def test_study_workers_cli_run_times_the_command_on_the_enqueued_trials(tmp_path):
    """One --cli run: the designs enqueued in a fresh storage, `spikeloop study run --jobs 2` as a fresh process
    (the fork server started before its own imports) runs exactly them, and the run is recorded."""
    from tune.config import DEFAULT_TOML, StudyConfig
    toml = tmp_path / "study.toml"
    toml.write_text(DEFAULT_TOML + "\n[report]\nrecheck_seeds = 0\n")
    designs = bench_study._designs(StudyConfig.load(toml), 1, 1)
    r = bench_study._cli_run(None, 2, tmp_path, toml, 1, designs)
    assert r["jobs"] == 2 and r["returncode"] == 0 and r["trials"] == 1 and r["wall_s"] > 0
    log = (tmp_path / "run1" / "log.txt").read_text()
    assert "report:" in log and "Traceback" not in log
    import optuna
    study = optuna.load_study(study_name="cli1", storage=f"sqlite:///{tmp_path}/run1/s.db")
    assert [t.params for t in study.trials] == designs


def test_chip_schedule_hidden_rates_view():
    """The prose's hidden firing rates come from the chip_schedule record (the output layer left out)."""
    from bench.bench_chip import DENSITIES, hidden
    rows = {str(d): {"hidden": [0.2, 0.3, 0.9]} for d in DENSITIES}
    record = {"summary": rows}
    assert hidden(record, "0.1") == "20–30 %"
    assert hidden(record) == "20–30 %" and hidden({"summary": {**rows, "0.5": {"hidden": [0.36, 0.1, 0.9]}}}) == "10–36 %"
    from bench.bench_chip import seeds
    assert seeds({"seeds": [0, 1, 2, 3, 4]}) == "5 seeds (0–4)" and seeds({"seeds": [7]}) == "1 seed (7)"
    from bench.bench_event_bound import VIEWS
    assert VIEWS["seeds"]({"seeds": [0, 1]}) == "2 seeds (0–1)"


def test_machine_scaling_record(tmp_path, monkeypatch):
    """``bench_study machine``: one busy process against two, interleaved; the record keeps every run's rates
    and CPU shares and sums the two processes' rates over the one's (no wall-clock assertion on the values)."""
    import json
    from bench import bench_study
    monkeypatch.setattr(bench_study, "SECONDS", 0.2)
    monkeypatch.setattr(sys, "argv", ["bench_study.py", "machine", "--repeats", "1", "--out", str(tmp_path)])
    bench_study.main()
    rec = json.loads((tmp_path / "machine_scaling.json").read_text())
    assert [r["processes"] for r in rec["rounds"]] == [1, 2, 2, 1]
    assert all(len(r["rates"]) == r["processes"] and min(r["rates"]) > 0 for r in rec["rounds"])
    ones = [r["rates"][0] for r in rec["rounds"] if r["processes"] == 1]
    twos = [sum(r["rates"]) for r in rec["rounds"] if r["processes"] == 2]
    assert rec["summary"]["scaling"] == pytest.approx(sum(twos) / sum(ones))
    assert rec["summary"]["pair_scaling"]["n"] == 2 and 0 <= rec["summary"]["steal_max"] <= 1


def test_startup_bench_refuses_an_unknown_revision_in_one_line(capsys):
    from bench import bench_startup
    with pytest.raises(SystemExit) as e:
        bench_startup.main(["--against", "no-such-revision-xyz"])
    assert e.value.code == 2
    assert "--against='no-such-revision-xyz': not a commit of this repository" in capsys.readouterr().err


@pytest.mark.parametrize("under", ["a_file", "a_file/deeper"])
def test_an_out_folder_that_cannot_be_made_is_one_line(tmp_path, under):
    """``--out`` naming a file (or a path under one): one line before any work, not mkdir's traceback."""
    import argparse
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit, match=r"--out .*a_file.*: cannot write records there \((File exists|Not a "
                                         r"directory)") as e:
        with Recorder("x", args=argparse.Namespace(out=str(tmp_path / under)), seeds=[]):
            raise AssertionError("the work must not start")
    assert "\n" not in str(e.value.code)


def test_event_bound_nmnist_sweep_invariants(capsys):
    """What the ``event_bound_nmnist`` record's prose leans on, on a small conv chip: the touched chip never beats
    the event bound (so today's cycles / bound caps what it saves), and the bound is never below the synaptic work
    (so cycles / (synops / lanes) caps every schedule); bad arguments end in one line."""
    from bench.bench_event_bound import conv, main, measure, nmnist_table
    from hw.config import ChipConfig
    cfg = ChipConfig(input_shape=(2, 8, 8), layers=(conv(8, 5, 2), {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
                     lanes=4, overlap=False)
    g = measure(cfg, 0.02, 0.05, 3, 2, 6)
    assert 1 <= g["lazy_speedup"] <= g["ratio"] + 1e-9 <= g["synaptic_ceiling"] + 2e-9
    assert 0 < g["first_touched"] <= 1
    row = {k: [1.5, 0.01] for k in ("first_touched", "ratio", "synaptic_ceiling", "lazy_speedup", "default_speedup",
                                    "utilisation", "lazy_utilisation")}
    text = nmnist_table({"summary": {"nmnist-shaped | 0.006 | 0.002": row}})
    assert text.splitlines()[2].startswith("| 0.002 | 1.50 ± 0.01 |") and text.count("\n") == 2
    for argv in (["--nmnist-sweep", "--quick"], ["--nmnist-sweep", "--seeds", "0"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "choose one" in capsys.readouterr().err


def test_a_record_written_before_does_not_make_the_tree_dirty(tmp_path, monkeypatch):
    """A chain of benches writes a record before the next starts: docs/results/ does not count as dirty, code does."""
    import subprocess

    from bench import records

    def git(*a):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=tmp_path, check=True,
                       capture_output=True)
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "a.json").write_text("{}")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "one")
    monkeypatch.setattr(records, "ROOT", tmp_path)
    assert records.provenance()["dirty"] is False
    (tmp_path / "docs" / "results" / "a.json").write_text('{"b": 1}')
    assert records.provenance()["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert records.provenance()["dirty"] is True
