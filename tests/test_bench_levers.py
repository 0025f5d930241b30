"""bench/bench_levers.py: the pooled statement of every run on record, the fresh check against it, and the
refusal of a fresh check on seeds a record used (synthetic records, no training)."""
import argparse
import json
import sys

import pytest

import bench.records
from bench import bench_levers as bl


def test_t975_and_prediction_interval():
    assert bl.t975(4) == 2.776 and bl.t975(14) == 2.145 and bl.t975(19) == 2.093
    assert bl.t975(40) == pytest.approx(2.021, abs=1e-3)
    v = [1.0, 2.0, 3.0, 4.0, 5.0]                           # std 1.5811
    assert bl.prediction_half_width(v, 5) == pytest.approx(2.776 * 1.5811388 * (2 / 5) ** 0.5, rel=1e-6)
    assert bl.prediction_half_width([1.0], 5) == float("inf")


def test_ranges():
    assert bl._ranges([403, 301, 302, 303, 401, 402, 7]) == "7, 301–303, 401–403"


def _write(folder, name, seeds, rounds, module="bench.bench_levers"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "module": module, "seeds": seeds,
                                                     "rounds": rounds, "summary": {}}))


def test_refuse_overlap_names_the_record_in_one_line(tmp_path):
    _write(tmp_path, "lever_async_order", [301, 302], [])
    _write(tmp_path, "lever_async_order_401", [401, 402], [])
    with pytest.raises(SystemExit) as e:
        bl.refuse_overlap("bench_levers async", "lever_async_order", "lever_async_order_601", [601, 402], tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "402" in msg and "lever_async_order_401" in msg and "601" not in msg.split("--name")[0]
    bl.refuse_overlap("bench_levers async", "lever_async_order", "lever_async_order_601", [601, 602], tmp_path)
    bl.refuse_overlap("bench_levers async", "lever_async_order", None, [301], tmp_path)        # the default record
    bl.refuse_overlap("bench_levers async", "lever_async_order", "lever_async_order_401", [401], tmp_path)  # itself


def _lever_records(folder, tag, seeds, shift=0.0, levers=True, mh_too=True):
    conv = [{"trial": t, "seed": s, "val": 0.9 - 0.01 * (t == 15) * (i + 1) - shift, "latency_us": 1000 + 10 * i * t,
             "dead": t == 15 and i == 0} for i, s in enumerate(seeds) for t in (0, 15)]
    asy = [{"method": m, "seed": s, "fast_test": 0.95, "async_test": 0.94 - 0.001 * i - shift, "fast_val": 0.95,
            "async_val": 0.945} for i, s in enumerate(seeds) for m in ("bptt", "bptt_qat")]
    mh = [{"method": m, "seed": s, "test": (0.94 if m == "mh" else 0.8) + 0.002 * i} for i, s in enumerate(seeds)
          for m in ("mh", "bptt")]
    if levers:
        _write(folder, f"lever_conv_seed002{tag}", seeds, conv)
        _write(folder, f"lever_async_order{tag}", seeds, asy)
    if mh_too:
        _write(folder, f"mh_cli_default{tag}", seeds, mh, module="bench.bench_mh_setup")


def _publish_runs(tmp_path, monkeypatch, shifts=None, fresh_shift=0.05):
    """Synthetic records of every run on record (levers 301–305 … 601–605, MH 101–105 … 601–605; a lever run's
    cost shifted by ``shifts[run]``) and a fresh run 701–705 shifted by ``fresh_shift``; the statement of them."""
    shifts = shifts or {}
    pub = tmp_path / "pub"
    monkeypatch.setattr(bench.records, "PUBLISHED", pub)
    monkeypatch.setattr(bench.records, "SCRATCH", tmp_path / "scratch")
    for tag, base in (("", 301), ("_401", 401), ("_501", 501), ("_601", 601)):
        _lever_records(pub, tag, list(range(base, base + 5)), shift=shifts.get(base, 0.0), mh_too=False)
    _lever_records(pub, "_701", list(range(701, 706)), shift=fresh_shift, mh_too=False)
    for tag, base in (("_101", 101), ("", 201), ("_301", 301), ("_501", 501), ("_601", 601), ("_701", 701)):
        _lever_records(pub, tag, list(range(base, base + 5)), levers=False)
    bl.stated(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, seeds=[]))
    st = json.loads((tmp_path / "out" / "lever_stated.json").read_text())
    (pub / "lever_stated.json").write_text(json.dumps(st))
    return pub, st


def test_stated_pools_every_run_and_fresh_checks_against_it(tmp_path, monkeypatch, capsys):
    pub, st = _publish_runs(tmp_path, monkeypatch)
    rows = st["summary"]["rows"]
    assert len(rows) == len(bl.LEVERS) and rows[0]["pooled"]["n"] == 20 and rows[8]["pooled"]["n"] == 25
    assert rows[2]["pooled"]["n"] == 16                     # four seeds (one per run) with a dead network left out
    assert rows[4]["stated_records"][-1] == "lever_async_order_601"      # 601–605 pooled too
    assert "16 of 20 (301–305, 401–405, 501–505, 601–605; 4 with a dead network left out)" in bl.VIEWS["stated"](st)
    f = argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated", fresh_run="701")
    bl.fresh(f)
    rec = json.loads((tmp_path / "out" / "lever_fresh_701.json").read_text())
    assert rec["seeds"] == [701, 702, 703, 704, 705] and rec["params"]["against"] == "lever_stated"
    # a --fresh-run no lever has a record of (a typo): one line, no vacuous "0 of 0 inside" record
    with pytest.raises(SystemExit, match="--fresh-run 710: no lever has a fresh run"):
        bl.fresh(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated",
                                    fresh_run="710"))
    assert not (tmp_path / "out" / "lever_fresh_710.json").exists()
    by = {r["label"]: r for r in rec["summary"]["rows"]}
    assert not by["async order cost, BPTT, test points"]["inside"]          # shifted by 5 points: outside
    assert by["`train --method mh --distortion 4`: MH test accuracy"]["inside"]
    assert "stated in record `lever_stated`" in bl.VIEWS["fresh"](rec)
    # a lever whose fresh run is missing is said so, not left out
    (pub / "mh_cli_default_701.json").unlink()
    bl.fresh(f)
    rec = json.loads((tmp_path / "out" / "lever_fresh_701.json").read_text())
    assert rec["summary"]["n"] == 8 and rec["summary"]["n_levers"] == 10
    assert "not run (`mh_cli_default_701`)" in bl.VIEWS["fresh"](rec) and "2 of 10 rows not run" in bl.VIEWS["fresh"](rec)
    # a fresh record whose seeds the statement pools is refused
    _lever_records(pub, "_801", [505, 801, 802, 803, 804])
    with pytest.raises(SystemExit, match="505"):
        bl.fresh(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated",
                                    fresh_run="801"))


def test_between_run_spread_is_part_of_the_statement():
    # four runs whose seeds agree within a run (± 0.05) but whose means scatter by a point
    groups = [[m + d for d in (0.0, 0.1, 0.0, 0.1, 0.0)] for m in (0.0, 1.0, 2.0, -1.0)]
    h = bl.stated_half_width(groups, 5)
    br = h["between_runs"]
    assert br["k"] == 4 and br["p"] < 1e-6 and br["std_run_means"] == pytest.approx(1.2909944, rel=1e-6)
    assert h["runs"] == pytest.approx(3.182 * 1.2909944 * (1 + 1 / 4) ** 0.5, rel=1e-6)
    assert h["by"] == "runs" and h["half"] == h["runs"] > 2 * h["seeds"]
    # runs that agree: the seed-level interval stands (the larger of the two)
    same = [[d + 0.001 * i for d in (0.0, 1.0, 2.0, -1.0, 0.5)] for i in range(4)]
    h = bl.stated_half_width(same, 5)
    assert h["by"] == "seeds" and h["half"] == h["seeds"] and h["between_runs"]["p"] > 0.99
    # one run: nothing to say about runs
    assert bl.stated_half_width([[1.0, 2.0, 3.0]], 5)["by"] == "seeds"


def test_fresh_run_within_the_between_run_spread_lands_inside(tmp_path, monkeypatch):
    # runs of the async lever a point apart (costs 1.0–1.4 within a run), the fresh run 2.5 points from the pooled
    # mean: outside the seed-level interval (± ~1.2), inside the run-level one (± ~4.6)
    pub, st = _publish_runs(tmp_path, monkeypatch, shifts={301: 0.0, 401: 0.01, 501: 0.02, 601: -0.01},
                            fresh_shift=0.03)
    srow = {r["label"]: r for r in st["summary"]["rows"]}["async order cost, BPTT, test points"]
    assert srow["prediction_half_width_5_by"] == "runs" and srow["between_runs"]["p"] < 0.001
    assert "**± 4.6**" in bl.VIEWS["stated"](st)
    bl.fresh(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated",
                                fresh_run="701"))
    rec = json.loads((tmp_path / "out" / "lever_fresh_701.json").read_text())
    row = {r["label"]: r for r in rec["summary"]["rows"]}["async order cost, BPTT, test points"]
    off = abs(row["fresh"]["mean"] - row["pooled"]["mean"])
    assert row["prediction_half_width_seeds"] < off < row["prediction_half_width_runs"] and row["inside"]
    assert not row["inside_seed_level"] and rec["summary"]["inside"] > rec["summary"]["inside_seed_level"]
    assert "t(0.975, k−1) · std(run means)" in bl.VIEWS["fresh"](rec)


def test_draws_splits_the_recorded_cost_into_network_encoding_and_order(tmp_path, monkeypatch):
    pub = tmp_path / "pub"
    monkeypatch.setattr(bench.records, "PUBLISHED", pub)
    monkeypatch.setattr(bench.records, "SCRATCH", tmp_path / "scratch")
    _lever_records(pub, "", [301, 302, 303], mh_too=False)
    _lever_records(pub, "_401", [401, 402, 403], shift=0.01, mh_too=False)

    def job(j):                              # a fake re-training: the recorded accuracies back, one seed changed
        method, seed, orders, draws = j
        i = seed % 100 - 1
        return {"method": method, "seed": seed, "fast_test": 0.95,
                "async_test": 0.94 - 0.001 * i - (0.01 if seed > 400 else 0) + (0.5 if seed == 303 else 0),
                "order_costs": [1.0 + 0.1 * k for k in range(orders)], "draw_costs": [0.5] * draws}
    monkeypatch.setattr(bl, "_async_draws_job", job)
    bl.draws(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, workers=1, method="bptt_qat",
                                records=["lever_async_order", "lever_async_order_401"], orders=3, draws=2))
    rec = json.loads((tmp_path / "out" / "lever_async_draws.json").read_text())
    s = rec["summary"]
    assert s["n"] == 6 and s["same"] == 5                # seed 303 re-derived differently: said so
    assert s["run_means"]["recorded"][1] == pytest.approx(s["run_means"]["recorded"][0] + 1.0)
    assert s["anova"]["draw_mean"]["p"] is None          # no scatter at all among the networks' mean costs
    assert s["spread"]["encoding_effect"]["mean"] == pytest.approx(0.6)
    v = bl.VIEWS["draws"](rec)
    assert "| 301–303 | 401–403 |" in v and "5 of 6 programmes" in v and "+0.50 ± 0.00 points" in v


@pytest.mark.parametrize("flag", ["--orders", "--draws", "--workers"])
def test_counts_below_one_are_one_line(flag, monkeypatch, capsys):
    """--orders 0 / --draws -1 / --workers 0 started the work (minutes) instead of refusing."""
    monkeypatch.setattr(sys, "argv", ["bench_levers.py", "draws", flag, "0"])
    monkeypatch.setattr(bl, "draws", lambda a: pytest.fail("the work started"))
    with pytest.raises(SystemExit) as e:
        bl.main()
    assert e.value.code == 2 and f"{flag} 0: must be >= 1" in capsys.readouterr().err
