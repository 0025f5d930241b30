"""bench/bench_levers.py: the pooled statement of every run on record, the fresh check against it, and the
refusal of a fresh check on seeds a record used (synthetic records, no training)."""
import argparse
import json

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


def test_stated_pools_every_run_and_fresh_checks_against_it(tmp_path, monkeypatch, capsys):
    pub = tmp_path / "pub"
    monkeypatch.setattr(bench.records, "PUBLISHED", pub)
    monkeypatch.setattr(bench.records, "SCRATCH", tmp_path / "scratch")
    for tag, base in (("", 301), ("_401", 401), ("_501", 501), ("_601", 601)):
        _lever_records(pub, tag, list(range(base, base + 5)), shift=0.05 if tag == "_601" else 0.0, mh_too=False)
    for tag, base in (("_101", 101), ("", 201), ("_301", 301), ("_501", 501), ("_601", 601)):
        _lever_records(pub, tag, list(range(base, base + 5)), levers=False)
    a = argparse.Namespace(name=None, out=tmp_path / "out", publish=False, seeds=[])
    bl.stated(a)
    st = json.loads((tmp_path / "out" / "lever_stated.json").read_text())
    rows = st["summary"]["rows"]
    assert len(rows) == len(bl.LEVERS) and rows[0]["pooled"]["n"] == 15 and rows[8]["pooled"]["n"] == 20
    assert rows[2]["pooled"]["n"] == 12                     # three seeds (one per run) with a dead network left out
    assert "12 of 15 (301–305, 401–405, 501–505; 3 with a dead network left out)" in bl.VIEWS["stated"](st)
    _write(pub, "lever_stated", st["seeds"], [])
    (pub / "lever_stated.json").write_text(json.dumps(st))
    f = argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated", fresh_run="601")
    bl.fresh(f)
    rec = json.loads((tmp_path / "out" / "lever_fresh_601.json").read_text())
    assert rec["seeds"] == [601, 602, 603, 604, 605] and rec["params"]["against"] == "lever_stated"
    by = {r["label"]: r for r in rec["summary"]["rows"]}
    assert not by["async order cost, BPTT, test points"]["inside"]          # shifted by 5 points: outside
    assert by["`train --method mh --distortion 4`: MH test accuracy"]["inside"]
    assert "stated in record `lever_stated`" in bl.VIEWS["fresh"](rec)
    # a lever whose fresh run is missing is said so, not left out
    (pub / "mh_cli_default_601.json").unlink()
    bl.fresh(f)
    rec = json.loads((tmp_path / "out" / "lever_fresh_601.json").read_text())
    assert rec["summary"]["n"] == 8 and rec["summary"]["n_levers"] == 10
    assert "not run (`mh_cli_default_601`)" in bl.VIEWS["fresh"](rec) and "2 of 10 rows not run" in bl.VIEWS["fresh"](rec)
    # a fresh record whose seeds the statement pools is refused
    _lever_records(pub, "_701", [505, 701, 702, 703, 704])
    with pytest.raises(SystemExit, match="505"):
        bl.fresh(argparse.Namespace(name=None, out=tmp_path / "out", publish=False, against="lever_stated",
                                    fresh_run="701"))
