"""Studies that survive a new seed: dead networks never ranked, the bias input as a study parameter,
trials judged on several seeds and the Pareto trials re-checked on fresh ones."""
import optuna
import pytest
from optuna.trial import TrialState

from hw.config import ConfigError
from tune.config import StudyConfig
from tune.report import pareto_trials
from tune.study import run_study


def cfg(toml, tmp_path, **kw):
    return StudyConfig.load(toml, {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out")} | kw)


def edit(tiny_toml, tmp_path, old, new, name="e.toml"):
    text = tiny_toml.read_text()
    assert old in text
    p = tmp_path / name
    p.write_text(text.replace(old, new))
    return p


def test_dead_trials_are_pruned_with_the_reason_and_never_ranked(tiny_toml, tmp_path):
    toml = edit(tiny_toml, tmp_path, 'methods = ["bptt", "mh"]', 'methods = ["bptt"]\ntheta = 20.0')
    study = run_study(cfg(toml, tmp_path, n_trials=2), baseline=False)
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    for t in study.trials:
        assert "dead network" in t.user_attrs["dead_network"]
    assert pareto_trials(study) == []


def test_bias_input_is_a_study_parameter(tiny_toml, tmp_path):
    toml = edit(tiny_toml, tmp_path, 'methods = ["bptt", "mh"]', 'methods = ["bptt", "mh"]\nbias_input = [true, false]')
    sc = cfg(toml, tmp_path, n_trials=3)
    assert sc.bias_input == (True, False) and sc.train.bias_input is False
    study = run_study(sc)
    assert study.trials[0].params["bias_input"] is False                 # the snnTorch baseline has none
    import json
    from pathlib import Path
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        tc = json.loads((Path(t.user_attrs["artefacts"]) / "result.json").read_text())["train_config"]
        assert tc["bias_input"] == t.params["bias_input"]
        assert tc["chip"]["layer_sizes"][0] == 30 + t.params["bias_input"]
    for bad, match in (("bias_input = 1", r"search.bias_input=1: expected true, false or a list"),
                       ("bias_input = []", r"search.bias_input=\[\]")):
        with pytest.raises(ConfigError, match=match):
            cfg(edit(tiny_toml, tmp_path, 'methods = ["bptt", "mh"]', 'methods = ["bptt", "mh"]\n' + bad, "b.toml"),
                tmp_path)


def test_seeds_per_trial_scores_the_mean_and_keeps_the_spread(tiny_toml, tmp_path):
    toml = edit(tiny_toml, tmp_path, 'seed = 0', 'seed = 0\nseeds_per_trial = 2')
    sc = cfg(toml, tmp_path, n_trials=2)
    assert sc.seeds_per_trial == 2 and sc.identity()["study.seeds_per_trial"] == 2
    study = run_study(sc)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done
    for t in done:
        a = t.user_attrs
        assert len(a["seeds"]) == 2 and a["seeds"][1] - a["seeds"][0] == 100_000
        assert t.values[0] == pytest.approx(sum(a["val_accuracy_per_seed"]) / 2)
        assert a["val_accuracy_std"] == pytest.approx(abs(a["val_accuracy_per_seed"][0]
                                                          - a["val_accuracy_per_seed"][1]) / 2 ** 0.5)
    with pytest.raises(ConfigError, match=r"study.seeds_per_trial=0: allowed range is integers 1..50"):
        cfg(edit(tiny_toml, tmp_path, 'seed = 0', 'seed = 0\nseeds_per_trial = 0', "b.toml"), tmp_path)
    with pytest.raises(ConfigError, match=r"report.recheck_seeds=-1"):
        cfg(edit(tiny_toml, tmp_path, 'recheck_seeds = 0', 'recheck_seeds = -1', "c.toml"), tmp_path)


def test_summary_pairs_by_seed():
    from tune.recheck import summary
    m = lambda acc, lat, dead=None: {"val_accuracy": acc, "latency_us": lat, "fps_per_watt": 1.0,
                                     "test_accuracy": acc, "dead": dead}
    rec = {"seeds": [1, 2, 3], "trials": {
        "0": {"1": m(0.90, 100.0), "2": m(0.80, 200.0), "3": m(0.85, 100.0)},
        "5": {"1": m(0.88, 50.0), "2": m(0.81, 100.0), "3": m(0.50, 100.0, "dead network: x")}}}
    s = summary(rec, 5, baseline=0)
    assert s["n"] == 3 and s["dead"] == 1 and s["paired_n"] == 3
    assert s["d_val_accuracy"][0] == pytest.approx((-0.02 + 0.01 - 0.35) / 3)
    assert s["d_latency_pct"][0] == pytest.approx((-50 - 50 + 0) / 3)
    assert s["val_accuracy"][1] == pytest.approx(__import__("statistics").stdev([0.88, 0.81, 0.50]))
    assert summary(rec, 7) is None and "d_val_accuracy" not in summary(rec, 0, baseline=0)


ALIVE = """
[study]
name = "r"
n_trials = 3
seed = 0
[report]
recheck_seeds = 2
recheck_trials = 2
[data]
dataset = "breast_cancer"
train_size = 120
[chip]
layer_sizes = [30, 8, 2]
lanes = 4
[search]
methods = ["bptt"]
surrogates = ["atan"]
theta = 1.0
beta = [0.9, 0.97]
[search.bptt]
epochs = [4, 5]
"""


def test_recheck_reruns_the_pareto_trials_paired_and_the_report_uses_it(tmp_path, monkeypatch):
    import tune.recheck as rc
    from tune.report import write_report
    toml = tmp_path / "alive.toml"
    toml.write_text(ALIVE)
    sc = cfg(toml, tmp_path)
    study = run_study(sc)
    base = rc.baseline_trial(study)
    assert base is not None
    text = write_report(study, tmp_path / "rep0")["markdown"].read_text()
    assert "**One draw each**" in text                                    # not re-checked yet: said so
    picked = rc.candidates(study, sc)
    assert picked[0].number == base.number and len(picked) <= 3
    rec = rc.recheck(study, sc, progress=False)
    seeds = rc.fresh_seeds(sc)
    assert len(seeds) == 2 and not set(seeds) & {t.number for t in study.trials}
    assert set(rec["trials"]) == {str(t.number) for t in picked}
    for runs in rec["trials"].values():
        assert set(runs) == {str(s) for s in seeds}
    assert study.user_attrs[rc.RECHECK_ATTR] == rec                     # kept in the study
    monkeypatch.setattr(rc, "_job", lambda job: pytest.fail("re-ran a measured pair"))
    assert rc.recheck(study, sc, progress=False) == rec                   # resumable: nothing re-run
    text = write_report(study, tmp_path / "rep")["markdown"].read_text()
    assert "Re-checked after the search on 2 fresh seeds" in text and f"| {base.number} (baseline) |" in text
    assert "**One draw each**" not in text
    import re                                                           # per-surrogate means say what backs them
    assert re.search(r"\| atan \| \d+ \| 1 \| [0-9.]+ \| [0-9.]+ \| \d+ \| .*trial %d: [0-9.]+ \(2\)" % base.number, text)
    # the trade-off rule on re-checked means: a synthetic re-check of the baseline and another trial
    from optuna.trial import TrialState as S
    from tune.report import _rows, against_baseline
    rows = _rows(study.get_trials(states=(S.COMPLETE,)), True)
    b = next(r for r in rows if r["trial"] == base.number)
    other = next(r["trial"] for r in rows if r["trial"] != base.number)
    m = lambda acc, lat: {"val_accuracy": acc, "latency_us": lat, "fps_per_watt": 1.0, "test_accuracy": acc,
                          "dead": None}
    fake = {"seeds": [1, 2], "trials": {str(base.number): {"1": m(0.90, 100.0), "2": m(0.80, 100.0)},
                                        str(other): {"1": m(0.88, 50.0), "2": m(0.80, 70.0)}}}
    study.set_user_attr(rc.RECHECK_ATTR, fake)
    text = "\n".join(against_baseline(study, b, rows))
    assert (f"Best trade-off within 3 points of the baseline's accuracy (by the re-checked means, 2 seeds paired): "
            f"trial {other}, accuracy 0.840 ± 0.057 (-1.0 ± 1.4 points), latency 60.00 ± 14.14 µs "
            f"(-40.0 ± 14.1 %)") in text
    fake["trials"][str(other)] = {"1": m(0.70, 50.0), "2": m(0.70, 70.0)}
    study.set_user_attr(rc.RECHECK_ATTR, fake)
    assert "No re-checked Pareto trial stays within 3 points" in "\n".join(against_baseline(study, b, rows))


def _front_study(tmp_path, designs):
    """A multi-objective in-memory study of complete trials: ``designs`` = [(beta, acc, latency, baseline)]."""
    import json
    from optuna.distributions import FloatDistribution
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"])
    for i, (beta, acc, lat, base) in enumerate(designs):
        art = tmp_path / f"t{i}"
        art.mkdir()
        (art / "result.json").write_text(json.dumps({"train_config": {"beta": beta}}))
        study.add_trial(optuna.trial.create_trial(
            values=[acc, lat, 1.0], params={"beta": beta}, distributions={"beta": FloatDistribution(0.5, 1.0)},
            user_attrs={"artefacts": str(art), "val_accuracy": acc, "latency_us": lat,
                        **({"baseline": "snntorch defaults"} if base else {})}))
    return study


def test_out_of_reach_only_when_a_perfect_rest_cannot_reach_the_band():
    from tune.recheck import out_of_reach
    m = lambda acc: {"val_accuracy": acc}
    seeds = [1, 2, 3, 4, 5]
    rec = {"trials": {"0": {str(s): m(0.96) for s in seeds}, "7": {"1": m(0.10)}, "8": {"1": m(0.85)}}}
    assert out_of_reach(rec, 7, 0, seeds)              # dead on its first seed: 0.1 + 4 < 5 · 0.93
    assert not out_of_reach(rec, 8, 0, seeds)          # 0.85 + 4 >= 4.65: could still make it
    rec["trials"]["8"].update({"2": m(0.85), "3": m(0.85)})
    assert out_of_reach(rec, 8, 0, seeds)              # 2.55 + 2 < 4.65
    del rec["trials"]["0"]["5"]
    assert not out_of_reach(rec, 7, 0, seeds)          # the baseline has not run every seed yet: no verdict


def test_recheck_stops_a_hopeless_candidate_and_lists_a_design_once(tmp_path, monkeypatch):
    import tune.recheck as rc
    from tune.config import StudyConfig
    from tune.report import against_baseline, _rows
    study = _front_study(tmp_path, [(0.95, 0.95, 100.0, True), (0.80, 0.94, 50.0, False),
                                    (0.80, 0.945, 55.0, False), (0.70, 0.96, 90.0, False)])
    sc = StudyConfig.load(None, {"storage": "sqlite:///:memory:", "out": str(tmp_path / "o")})
    picked = [t.number for t in rc.candidates(study, sc)]
    assert {t.number for t in pareto_trials(study)} >= {1, 2, 3}
    assert sc.recheck_trials == 1 and picked == [0, 1]  # the default: the baseline and the headline candidate
    # the window's order; trial 2 (on the front too) is trial 1's design again
    assert [t.number for t in rc.candidates(study, sc, limit=0)] == [0, 1, 3]
    runs = []

    def fake(job):
        beta, seed = job[1]["beta"], job[3]
        runs.append((beta, seed))
        acc = {0.95: 0.95, 0.80: 0.10, 0.70: 0.96}[beta]  # beta 0.8 is a dead network on every seed
        return {"val_accuracy": acc, "latency_us": 100.0 * beta, "fps_per_watt": 1.0, "test_accuracy": acc,
                "dead": "dead network: silent" if acc < 0.2 else None, "seconds": 0.0}
    monkeypatch.setattr(rc, "_job", fake)
    rec = rc.recheck(study, sc, progress=False)
    seeds = rc.fresh_seeds(sc)
    assert len(seeds) == 5 and runs[:5] == [(0.95, s) for s in seeds]       # the baseline first, every seed
    assert runs.count((0.80, seeds[0])) == 1 and sum(b == 0.80 for b, _ in runs) == 1   # stopped after one seed
    # trial 1 stopped as out of reach: trial 3, next in the window, took its place and ran every seed
    assert sum(b == 0.70 for b, _ in runs) == 5 and rec["stopped"] == {"1": 1} and set(rec["trials"]) == {"0", "1", "3"}
    monkeypatch.setattr(rc, "_job", lambda job: pytest.fail("re-ran a measured pair"))
    assert rc.recheck(study, sc, progress=False) == rec                      # resumable: nothing re-run
    rows = _rows(study.get_trials(), True)
    text = "\n".join(against_baseline(study, rows[0], rows))
    assert "| 1 | " in text and "1 (stopped: below reach)" in text and "trial 3, accuracy 0.960" in text
