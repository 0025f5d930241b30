"""Studies that survive a new seed: dead networks never ranked, the bias input as a study parameter,
trials judged on several seeds and the Pareto trials re-checked on fresh ones."""
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
