"""bench/recheck.py: the stated spread of a speed ratio (pooled over the runs on record) and the inside/outside
check of a re-run, on synthetic records (no timing here: benchmarks stay out of the unit tests)."""
import json

import pytest

from bench import bench_model, bench_study, recheck


def _ratios(**keys):
    """``key=(rounds, value)`` -> the ``ratios`` form a bench's RECHECK gives."""
    return {k: {"label": k.upper(), "rounds": list(r), "value": v} for k, (r, v) in keys.items()}


def test_stated_spread_pools_every_round_of_every_run_that_measured_the_ratio():
    runs = [_ratios(a=([2.0, 3.0, 4.0], 3.0), b=([1.0, 1.2], 1.1)),
            _ratios(a=([1.5, 5.0], 3.25))]                   # b not measured in the second run
    s = recheck.stated_spread(runs)
    assert s["a"]["lo"] == 1.5 and s["a"]["hi"] == 5.0 and s["a"]["runs"] == 2 and s["a"]["rounds"] == 5
    assert s["a"]["median"] == 3.0 and s["a"]["run_values"] == [3.0, 3.25] and s["a"]["label"] == "A"
    assert (s["b"]["lo"], s["b"]["hi"], s["b"]["runs"], s["b"]["rounds"]) == (1.0, 1.2, 1, 2)


def test_inside_is_the_closed_range_and_unstated_ratios_are_not_counted():
    stated = recheck.stated_spread([_ratios(a=([2.0, 4.0], 3.0), b=([1.0, 2.0], 1.5))])
    got = recheck.compare(stated, _ratios(a=([9.0], 4.0), b=([9.0], 2.0001), c=([1.0], 1.0)))
    assert got["a"] == {"value": 4.0, "inside": True}          # the edge is inside
    assert got["b"]["inside"] is False and got["c"]["inside"] is None
    t = recheck.tally(got)
    assert (t["inside"], t["of"], t["outside"], t["unstated"]) == (1, 2, ["b"], ["c"])


def _rec(name, seed, ratios, module="probe"):
    return {"name": name, "module": module, "seed": seed, "ratios": ratios, "commit": "abcdef0123",
            "date": f"2026-12-0{seed % 9}T00:00:00", "machine": {"load_before": [3.0], "load_after": [4.0]}}


HOOKS = {"seed": lambda r: r["seed"], "ratios": lambda r: r["ratios"]}


def test_check_states_the_spread_of_the_runs_on_record_and_judges_each_rerun():
    basis = [_rec("m", 1, _ratios(a=([2.0, 3.0], 2.5), b=([1.0, 1.4], 1.2))),
             _rec("m_seed7", 7, _ratios(a=([2.5, 3.5], 3.0)))]
    checks = [_rec("m_seed29", 29, _ratios(a=([3.2, 3.4], 3.3), b=([1.5, 1.7], 1.6))),
              _rec("m_seed31", 31, _ratios(a=([1.0, 4.0], 1.9), b=([1.1, 1.3], 1.2), c=([1.0], 1.0)))]
    s = recheck.check("m", checks, basis, HOOKS)
    assert [r["name"] for r in s["basis"]] == ["m", "m_seed7"] and [r["seed"] for r in s["checks"]] == [29, 31]
    assert s["ratios"]["a"]["lo"] == 2.0 and s["ratios"]["a"]["hi"] == 3.5 and s["ratios"]["a"]["runs"] == 2
    assert s["counts"]["m_seed29"]["outside"] == ["b"] and s["counts"]["m_seed31"]["outside"] == ["a"]
    assert s["counts"]["m_seed31"]["unstated"] == ["c"] and s["ratios"]["c"]["lo"] is None
    assert s["total"] == {"inside": 2, "of": 4}
    rec = {"name": "recheck_m", "summary": s}
    count = recheck.view_count(rec)
    assert count.startswith("2 of 4 (outside: B (seed 29): 1.60x against 1.00–1.40x; A (seed 31): 1.90x against")
    assert recheck.view_count(rec, "m_seed29").startswith("1 of 2 (outside: B")
    with pytest.raises(KeyError):
        recheck.view_count(rec, "m_seed5")
    assert recheck.view_stated(rec, "a") == "2.75x (2.00–3.50; 4 rounds of 2 runs)"
    assert recheck.view_stated(rec, "b").endswith("; 2 rounds of 1 run)")
    with pytest.raises(KeyError):
        recheck.view_stated(rec, "c")                        # nothing stated for it
    table = recheck.view_table(rec)
    assert "| A | 2.00–3.50x (2.75x) | 2, 4 | 2.50, 3.00 | 3.30x inside | 1.90x **outside** |" in table
    assert "| C | none | 0, 0 | – | – | 1.00x (nothing stated) |" in table
    assert "re-run seed 29 | re-run seed 31 |" in table and recheck.view_table(rec, "b").count("\n| B") == 1
    # a value outside by less than the second decimal is shown to three
    s["ratios"]["b"]["checks"]["m_seed29"]["value"] = 1.4004
    assert "B (seed 29): 1.4004x against 1.0000–1.4000x" in recheck.view_count(rec)
    assert "| 1.4004x **outside** |" in recheck.view_table(rec, "b")
    assert "`m_seed7` (seed 7" in recheck.view_basis(rec) and "re-runs with unseen inputs: `m_seed29`" in recheck.view_basis(rec)


def _speed_record(name, seed, fast, snn, module="bench.bench_model"):
    """A model_speed-like record: one peers row, per-round CPU seconds of the fast model and snnTorch (numpy
    twice the fast model's), one activity group and one condition."""
    rounds = []
    for i, (f, s) in enumerate(zip(fast, snn)):
        for impl, c in (("fast model", f), ("snnTorch", s), ("numpy float32", 2 * f)):
            rounds.append({"section": "peers", "width": 256, "batch": 1, "density": 0.1, "round": i, "impl": impl,
                           "cpu_s": c, "wall_s": c})
        for impl, c in (("0.01", f), ("0.1", 3 * f)):
            rounds.append({"section": "activity", "width": 256, "batch": 32, "weights": "fixed", "round": i,
                           "impl": impl, "cpu_s": c, "wall_s": c})
        for impl, c, w in (("fast model", f, 1.0), ("numpy float32", 4 * f, 5.0)):
            rounds.append({"section": "conditions", "condition": "pinned (as the bench)", "round": i,
                           "impl": impl, "cpu_s": c, "wall_s": w})
    return {"name": name, "module": module, "params": {"input_seed": seed}, "seeds": [0, seed], "rounds": rounds,
            "commit": "abc", "date": f"2026-12-06T0{seed % 10}:00:00", "machine": {}, "summary": {}}


def test_model_speed_ratios_come_from_the_raw_rounds_as_the_tables_pair_them():
    rec = _speed_record("model_speed", 1, fast=[1.0, 2.0, 1.0], snn=[30.0, 40.0, 50.0])
    r = bench_model.ratio_rounds(rec)
    assert sorted(r) == ["activity/256/32/fixed/0.1", "conditions/pinned/cpu", "conditions/pinned/wall",
                         "peers/256/1/0.1/numpy", "peers/256/1/0.1/snntorch"]
    snn = r["peers/256/1/0.1/snntorch"]
    assert snn["rounds"] == [30.0, 20.0, 50.0]
    assert snn["value"] == bench_model.paired([30.0, 40.0, 50.0], [1.0, 2.0, 1.0])["median"] == 30.0
    assert r["peers/256/1/0.1/numpy"]["rounds"] == [2.0] * 3 and r["activity/256/32/fixed/0.1"]["value"] == 3.0
    assert r["conditions/pinned/cpu"]["value"] == 4.0 and r["conditions/pinned/wall"]["value"] == 5.0


def test_model_speed_ratios_match_the_published_summary():
    """The re-check's per-round ratios are the ones the published tables summarise (a record, not a timing)."""
    from bench.records import load
    rec = load("model_speed")
    r = bench_model.ratio_rounds(rec)
    for row in rec["summary"]["peers"]:
        for peer, pid in bench_model._PEER_ID.items():
            got, want = r[f"peers/{row['width']}/{row['batch']}/{row['density']}/{pid}"], row["speedup"][peer]
            assert (got["value"], min(got["rounds"]), max(got["rounds"])) == pytest.approx(
                (want["median"], want["min"], want["max"]))
    for p in rec["summary"]["paths"]:
        assert r[f"paths/{p['width']}/{p['batch']}/{p['density']}"]["value"] == pytest.approx(p["int8_over_auto"]["median"])
    for c in rec["summary"]["conv"]:
        assert r[f"conv/{c['batch']}/torch"]["value"] == pytest.approx(c["speedup"]["torch conv loop"]["median"])


def test_family_is_the_base_and_its_seed_reruns_of_the_same_module(tmp_path):
    for rec in (_speed_record("model_speed", 1, [1.0], [30.0]), _speed_record("model_speed_seed7", 7, [1.0], [35.0]),
                _speed_record("model_speed_seed29", 29, [1.0], [99.0]),
                _speed_record("model_speed_before", 3, [1.0], [9.0]),                      # older code: not a run
                _speed_record("model_speed_seed5", 5, [1.0], [9.0], module="bench.other")):  # another bench
        (tmp_path / f"{rec['name']}.json").write_text(json.dumps(rec))
    assert [r["name"] for r in recheck.family("model_speed", tmp_path)] == [
        "model_speed", "model_speed_seed7", "model_speed_seed29"]
    assert [r["name"] for r in recheck.family("model_speed", tmp_path, exclude=["model_speed_seed29"])] == [
        "model_speed", "model_speed_seed7"]


def test_recheck_command_compares_reruns_and_refuses_seen_seeds(tmp_path, monkeypatch, capsys):
    pub, out = tmp_path / "pub", tmp_path / "out"
    pub.mkdir(), out.mkdir()
    for rec in (_speed_record("model_speed", 1, [1.0, 1.0], [30.0, 40.0]),
                _speed_record("model_speed_seed7", 7, [1.0, 1.0], [20.0, 35.0])):
        (pub / f"{rec['name']}.json").write_text(json.dumps(rec))
    for rec in (_speed_record("model_speed_seed29", 29, [1.0, 1.0], [25.0, 27.0]),      # median 26: inside
                _speed_record("model_speed_seed31", 31, [1.0, 1.0], [50.0, 60.0])):     # median 55: outside
        (out / f"{rec['name']}.json").write_text(json.dumps(rec))
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    assert recheck.main(["model_speed", "--seeds", "29,31", "--no-run", "--out", str(out)]) == 0
    rec = json.loads((out / "recheck_model_speed.json").read_text())
    s = rec["summary"]
    assert [b["name"] for b in s["basis"]] == ["model_speed", "model_speed_seed7"]
    assert s["ratios"]["peers/256/1/0.1/snntorch"]["lo"] == 20.0 and s["ratios"]["peers/256/1/0.1/snntorch"]["hi"] == 40.0
    assert s["counts"]["model_speed_seed29"]["outside"] == []
    assert s["counts"]["model_speed_seed31"]["outside"] == ["peers/256/1/0.1/snntorch"]
    assert rec["module"] == "bench.recheck" and rec["seeds"] == [29, 31] and len(rec["rounds"]) == 2 * 5
    assert "9 of 10" in capsys.readouterr().out
    assert recheck.main(["model_speed", "--seeds", "29", "--no-run", "--out", str(out), "--name", "recheck_2"]) == 0
    assert json.loads((out / "recheck_2.json").read_text())["summary"]["total"] == {"inside": 5, "of": 5}
    # a seed a run on record used is not unseen; bad seeds and bases are one-line errors (exit 2)
    assert recheck.main(["model_speed", "--seeds", "7,29", "--no-run", "--out", str(out)]) == 2
    assert "7 (model_speed_seed7) already on record" in capsys.readouterr().err
    assert recheck.main(["model_speed", "--seeds", "29,29"]) == 2
    assert recheck.main(["model_speed", "--seeds", "29", "--name", "a b"]) == 2
    assert recheck.main(["nope", "--seeds", "29"]) == 2
    assert recheck.main(["model_speed", "--seeds", "30", "--no-run", "--out", str(out)]) == 2
    assert "no re-run record model_speed_seed30" in capsys.readouterr().err


def test_study_workers_ratios_pair_neighbouring_runs():
    run = lambda jobs, wall, cpu: {
        "jobs": jobs, "wall_s": wall, "cpu_s": cpu, "serial_cpu_s": cpu if jobs == 1 else 2.0,
        "workers_cpu_s": 0.0 if jobs == 1 else cpu - 2.0, "trials": 4, "cpu_s_per_trial": cpu / 4,
        "trials_own_cpu_s": cpu - 2, "trial_seconds": [2, 2, 2, 2], "load_before": [4.0, 4.0, 4.0]}
    runs = [run(1, 90.0, 20.0), run(2, 60.0, 22.0), run(2, 50.0, 24.0), run(1, 100.0, 20.0)]
    rec = {"rounds": runs, "summary": bench_study.summarise(runs), "params": {}, "seeds": [1]}
    r = bench_study.workers_ratios(rec)
    assert r["workers/wall"]["rounds"] == pytest.approx([90 / 60, 100 / 50])
    assert r["workers/wall"]["value"] == pytest.approx(190 / 110)            # the record's own summary
    assert r["workers/cpu"]["rounds"] == pytest.approx([22 / 20, 24 / 20])
    assert r["workers/projected"]["rounds"] == pytest.approx([20 / (2 + 20 / 2), 20 / (2 + 22 / 2)])
    assert bench_study.RECHECK["seed"](rec) == 1


def _cli_record(name, seed, walls):
    """A ``workers --cli`` record of ``walls`` (``[(jobs, wall_s)]`` in run order)."""
    runs = [{"jobs": j, "wall_s": w, "trials": 12, "load_before": [4.0, 4.0, 4.0]} for j, w in walls]
    return {"name": name, "module": "bench.bench_study", "seeds": [seed], "rounds": runs,
            "params": {"design_seed": seed, "command": "python -m tune.cli study run ...", "order": [1, 2, 2, 1]},
            "summary": bench_study.summarise_cli(runs), "commit": "abcdef0123", "date": f"2026-12-0{seed % 9}",
            "machine": {"load_before": [4.0], "load_after": [4.0]}}


def test_study_workers_cli_ratios_pair_neighbouring_runs_and_rerun_the_command():
    """The re-checkable study-workers base is the command's record: rounds are the per-pair ratios (1 2 | 2 1),
    the value the summed wall times' ratio the docs show; the in-process records measure no ratio of it; a
    re-run is `workers --cli --repeats 2 --seed N --name NAME`."""
    rec = _cli_record("study_workers_cli", 1, [(1, 18.0), (2, 12.0), (2, 10.0), (1, 20.0)])
    r = bench_study.RECHECK["ratios"](rec)
    assert list(r) == ["workers_cli/wall"]
    assert r["workers_cli/wall"]["rounds"] == pytest.approx([18 / 12, 20 / 10])
    assert r["workers_cli/wall"]["value"] == pytest.approx(38 / 22) == rec["summary"]["speedup"]
    assert bench_study.RECHECK["seed"](rec) == 1
    inproc = {"rounds": [{"jobs": 1, "wall_s": 9.0}, {"jobs": 2, "wall_s": 6.0}], "params": {}, "seeds": [1],
              "summary": {"speedup": 1.5}}
    assert bench_study.RECHECK["ratios"](inproc) == {}
    assert bench_study.RECHECK["argv"](61, "study_workers_cli_seed61") == [
        "-m", "bench.bench_study", "workers", "--cli", "--repeats", "2", "--seed", "61",
        "--name", "study_workers_cli_seed61"]


def test_recheck_leaves_older_code_named_like_a_rerun_out_of_the_spread(tmp_path, monkeypatch):
    """``RECHECK["older"]``: study_workers_cli_seed29 ran older code; it is not a run on record of the base (its
    pairs would widen the spread), and the check states the spread of today's runs only."""
    pub, out = tmp_path / "pub", tmp_path / "out"
    pub.mkdir(), out.mkdir()
    for rec in (_cli_record("study_workers_cli", 1, [(1, 15.0), (2, 10.0), (2, 10.0), (1, 16.0)]),
                _cli_record("study_workers_cli_seed29", 29, [(1, 13.0), (2, 10.0), (2, 10.0), (1, 13.0)])):
        (pub / f"{rec['name']}.json").write_text(json.dumps(rec))
    rerun = _cli_record("study_workers_cli_seed61", 61, [(1, 14.0), (2, 10.0), (2, 10.0), (1, 14.0)])
    (out / "study_workers_cli_seed61.json").write_text(json.dumps(rerun))
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    assert recheck.main(["study_workers_cli", "--seeds", "61", "--no-run", "--out", str(out)]) == 0
    s = json.loads((out / "recheck_study_workers_cli.json").read_text())["summary"]
    assert [b["name"] for b in s["basis"]] == ["study_workers_cli"]
    w = s["ratios"]["workers_cli/wall"]
    assert (w["lo"], w["hi"], w["runs"], w["rounds"]) == pytest.approx((1.5, 1.6, 1, 2))
    assert w["checks"]["study_workers_cli_seed61"] == {"value": pytest.approx(1.4), "inside": False}


def test_recheck_refuses_a_base_that_is_no_run_of_the_bench(tmp_path, monkeypatch, capsys):
    """A record of a RECHECK module that measured none of its ratios (another bench of the module, like
    study_recheck_cost or study_workers_spawn beside study_workers) or is itself a re-run (BASE_seedN) is no base:
    a one-line error (exit 2) before any bench runs, never a '0 of 0' check or a traceback after minutes."""
    pub, out = tmp_path / "pub", tmp_path / "out"
    pub.mkdir(), out.mkdir()
    other = {"name": "study_other", "module": "bench.bench_study", "seeds": [0], "params": {"study": "x"},
             "summary": {"wall_s": 1.0}, "rounds": [{"jobs": 1, "wall_s": 1.0}, {"jobs": 2, "wall_s": 0.6}]}
    (pub / "study_other.json").write_text(json.dumps(other))
    (out / "study_other_seed5.json").write_text(json.dumps({**other, "name": "study_other_seed5"}))
    for rec in (_speed_record("model_speed", 1, [1.0], [30.0]), _speed_record("model_speed_seed7", 7, [1.0], [20.0])):
        (pub / f"{rec['name']}.json").write_text(json.dumps(rec))
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    real = recheck.subprocess.run
    monkeypatch.setattr(recheck.subprocess, "run", lambda cmd, *a, **k: pytest.fail("no bench may run")
                        if cmd[0] == recheck.sys.executable else real(cmd, *a, **k))
    capsys.readouterr()
    for argv in (["study_other", "--seeds", "5", "--no-run", "--out", str(out)], ["study_other", "--seeds", "5"],
                 ["model_speed_seed7", "--seeds", "9"]):
        assert recheck.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("recheck: base ") and err.count("\n") == 1, err
    assert not (out / "recheck_study_other.json").exists()


def test_recheck_name_never_overwrites_a_bench_record(tmp_path, monkeypatch, capsys):
    """--name is the check's own record: naming it after the base, a run on record or a re-run being checked
    would overwrite that bench record (with --publish: in docs/results); a one-line error (exit 2), nothing
    written."""
    pub = tmp_path / "pub"
    pub.mkdir()
    for rec in (_speed_record("model_speed", 1, [1.0], [30.0]), _speed_record("model_speed_seed7", 7, [1.0], [20.0]),
                _speed_record("model_speed_seed29", 29, [1.0], [25.0])):
        (pub / f"{rec['name']}.json").write_text(json.dumps(rec))
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    before = {p.name: p.read_text() for p in pub.iterdir()}
    capsys.readouterr()
    for name in ("model_speed", "model_speed_seed7", "model_speed_seed29"):
        assert recheck.main(["model_speed", "--seeds", "29", "--no-run", "--out", str(pub), "--name", name]) == 2
        err = capsys.readouterr().err
        assert err.startswith("recheck: --name ") and err.count("\n") == 1, err
    assert {p.name: p.read_text() for p in pub.iterdir()} == before
    assert recheck.main(["model_speed", "--seeds", "29", "--no-run", "--out", str(pub), "--name", "recheck_x"]) == 0


def test_no_run_refuses_a_rerun_record_of_another_bench_or_unreadable(tmp_path, monkeypatch, capsys):
    """--no-run reads BASE_seedN from the output folder: one written by another bench (a KeyError traceback in
    the seed hook) or not JSON (a JSONDecodeError traceback) is a one-line error (exit 2)."""
    pub, out = tmp_path / "pub", tmp_path / "out"
    pub.mkdir(), out.mkdir()
    for rec in (_speed_record("model_speed", 1, [1.0], [30.0]), _speed_record("model_speed_seed7", 7, [1.0], [20.0])):
        (pub / f"{rec['name']}.json").write_text(json.dumps(rec))
    (out / "model_speed_seed5.json").write_text(json.dumps({"name": "model_speed_seed5", "module": "bench.bench_study",
                                                            "params": {}, "seeds": [5], "rounds": []}))
    (out / "model_speed_seed6.json").write_text('{"name": "model_speed_seed6", ')
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    capsys.readouterr()
    for seed in ("5", "6"):
        assert recheck.main(["model_speed", "--seeds", seed, "--no-run", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("recheck: --no-run: ") and f"model_speed_seed{seed}" in err and err.count("\n") == 1, err
    assert not (out / "recheck_model_speed.json").exists()


def test_recheck_refuses_the_records_the_docs_say_are_not_rechecked(tmp_path, monkeypatch, capsys):
    """model_speed_before (older code) and study_workers_spawn are no runs of today's bench (docs/guides/
    benchmarks.md): a bench's RECHECK names the bases it re-checks; another record of its module is refused in
    one line before anything runs (model_speed_before measured ratios, so it passed every other check)."""
    assert bench_model.RECHECK["bases"] == ("model_speed",) and bench_study.RECHECK["bases"] == ("study_workers_cli",)
    pub = tmp_path / "pub"
    pub.mkdir()
    rec = _speed_record("model_speed_before", 3, [1.0], [9.0])
    (pub / "model_speed_before.json").write_text(json.dumps(rec))
    monkeypatch.setattr(recheck, "PUBLISHED", pub)
    monkeypatch.setattr(recheck.subprocess, "run", lambda cmd, *a, **k: pytest.fail("no bench may run"))
    capsys.readouterr()
    assert recheck.main(["model_speed_before", "--seeds", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recheck: base 'model_speed_before': ") and "model_speed" in err and err.count("\n") == 1


def test_loads_view_spans_the_load_of_every_run_behind_the_spread():
    basis = [{"load_before": 17.2, "load_after": 20.4}, {"load_before": 2.8, "load_after": 3.0},
             {"load_before": None, "load_after": None}]
    assert recheck.view_loads({"name": "r", "summary": {"basis": basis}}) == "load average 3–20"
    with pytest.raises(KeyError, match="no load average"):
        recheck.view_loads({"name": "r", "summary": {"basis": basis[2:]}})
