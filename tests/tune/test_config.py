import pytest

from hw.config import ConfigError
from tune.config import StudyConfig
from tune.study import storage_for


@pytest.mark.parametrize("text, match", [
    ("[study]\nn_trials = 0", r"study.n_trials=0: allowed range is integers 1..100000"),
    ("[study]\nsampler = 'grid'", r"study.sampler='grid': allowed values are \['nsga2', 'tpe', 'gp', 'random'\]"),
    ("[study]\ncolour = 1", r"\[study\]: unknown fields \['colour'\]"),
    ("[search]\nbeta = [0.5, 1.5]", r"search.beta=\[0.5, 1.5\]: allowed range is 0.01..0.999"),
    ("[search]\nsurrogates = ['relu']", r"search.surrogates: unknown \['relu'\]"),
    ("[search]\nmethods = ['sgd']", r"search.methods=\['sgd'\]: allowed values"),
    ("[search.mh]\niters = [5.5, 10]", r"search.mh.iters=\[5.5, 10\]: must be integers"),
    ("[search.mh]\niters = [0, 10]", r"search.mh.iters=\[0, 10\]: allowed range is integers 1..10000000"),
    ("[search]\nthreshold = [0.5, 1]", r"'threshold' is now 'theta'"),
    ("[chip]\nlayer_sizes = [30, 8, 2]\nbeta = 2.0", r"beta=2.0: allowed range is \(0, 1\]"),
    ("[device]\nbase = 'ecp9'", r"device.base='ecp9'"),
    ("[study", r"not valid TOML"),
    ("[search]\noverlap = ['yes']", r"search.overlap=\['yes'\]: expected a list of true/false"),
    ("[chip]\noverlap = 1", r"overlap=1: allowed values are true and false"),
    ("[search]\nlanes = [2.5]", r"search.lanes=\[2.5\]: expected a list of integers 1..64"),
    ("[search]\nlanes = [0]", r"search.lanes=\[0\]: expected a list of integers 1..64"),
    ("[search]\nlanes = 4", r"search.lanes=4: expected a list of integers 1..64"),
    ("[search]\nlanes = [true]", r"search.lanes=\[True\]: expected a list of integers 1..64"),
    ("[search]\nweight_bits = [4.5]", r"search.weight_bits=\[4.5\]: expected a list of integers 2..16"),
    ("[search]\nupdate = ['all', 'lazy']", r"search.update=\['all', 'lazy'\]: allowed values are \['all', 'touched'\]"),
    ("[chip]\nupdate = 'lazy'", r"update='lazy': allowed values are \('all', 'touched'\)"),
    ("[search]\nupdate = ['touched']\n[chip]\nmax_steps = 8",
     r"data.steps=16: a chip with update='touched' runs at most chip.max_steps=8 steps per sample"),
    ("[search]\nupdate = ['touched']\n[chip]\nmax_steps = 0", r"max_steps=0: allowed range is integers 1..65535"),
    ("[chip]\nupdate = 'touched'\n[faults]\ndistortion = 0.1", r"faults.distortion=0.1: .* not modelled with "
                                                                   r"update='touched'"),
    ("[search]\nwavefront = ['yes']", r"search.wavefront=\['yes'\]: allowed values are true and false"),
    ("[search]\nwavefront = []", r"search.wavefront=\[\]: allowed values are true and false"),
    ("[search]\nwavefront = [false, true]", r"search.wavefront=\[False, True\]: a wavefront chip needs "
                                           r"update='touched', and no trial is touched \(chip.update='all'\)"),
    ("[search]\nwavefront = true\nupdate = ['all']\n[chip]\nupdate = 'touched'",
     r"search.wavefront=True: .* no trial is touched \(search.update=\['all'\]\)"),
    ("[chip]\nwavefront = true", r"wavefront=true: built for update='touched' only"),
    ("[chip]\nupdate = 'touched'\nwavefront = true\n[search]\nupdate = ['all', 'touched']",
     r"chip.wavefront=true: .* search.update=\['all', 'touched'\] draws update='all' too"),
    ("[chip]\nupdate = 'touched'\nwavefront = true\n[search]\nwavefront = [false, true]",
     r"search.wavefront=\[False, True\] with chip.wavefront=true: give the wavefront in one place"),
    ("[chip]\nupdate = 'touched'\nwavefront = true\n[search]\noverlap = [true, false]",
     r"search.overlap=\[True, False\]: every trial's chip is a wavefront chip, which has no overlap"),
    ("[search]\nupdate = 'touched'\nwavefront = true\noverlap = [true, false]",
     r"search.overlap=\[True, False\]: every trial's chip is a wavefront chip"),
    ("[study]\nweights = {accuracy = 1.0}", r'study.weights: only with objective = "weighted" \(.* \'multi\''),
    ("[study]\nobjective = 'multi'\nweights = {}", r'study.weights: only with objective = "weighted"'),
])
def test_bad_study_configs(text, match, tmp_path):
    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=match):
        StudyConfig.load(p)


def test_weights_with_the_weighted_objective(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text("[study]\nobjective = 'weighted'\nweights = {accuracy = 2.0}")
    assert StudyConfig.load(p).weights == {"accuracy": 2.0}


def test_whole_number_floats_in_search_lists_count_as_integers(tmp_path):
    """[search] lanes = [2.0] is lanes 2, as 2.0 is anywhere else in a config (hw.config.check_int): it was
    refused, while [chip] lanes = 2.0 and [study] n_trials = 2.0 were accepted."""
    p = tmp_path / "s.toml"
    p.write_text("[study]\nn_trials = 2.0\n[chip]\nlanes = 2.0\n[search]\nlanes = [2.0, 4]\nweight_bits = [4.0]\n")
    sc = StudyConfig.load(p)
    assert (sc.n_trials, sc.chip.lanes, sc.lanes, sc.weight_bits) == (2, 2, (2, 4), (4,))
    assert all(type(v) is int for v in sc.lanes + sc.weight_bits)


def test_a_membrane_under_8_bits_needs_no_threshold(tmp_path):
    """The quantiser sets the trial chips' thresholds from theta: [chip] membrane_bits = 6 is not refused for the
    default threshold 64 (it was, as "threshold=64: allowed range is integers 1..31"); a given one is checked."""
    p = tmp_path / "s.toml"
    p.write_text("[chip]\nlayer_sizes = [30, 8, 2]\nweight_bits = 4\nmembrane_bits = 6\n")
    assert StudyConfig.load(p).chip.membrane_bits == 6
    p.write_text("[chip]\nlayer_sizes = [30, 8, 2]\nweight_bits = 4\nmembrane_bits = 6\nthreshold = 40\n")
    with pytest.raises(ConfigError, match=r"threshold=40: allowed range is integers 1..31"):
        StudyConfig.load(p)


def test_defaults_and_override(tiny_toml):
    sc = StudyConfig.load(tiny_toml, {"n_trials": 7})
    assert sc.n_trials == 7 and sc.methods == ("bptt", "mh") and sc.chip.layer_sizes == (30, 8, 2)
    assert sc.method_ranges["mh"]["iters"].low == 40 and sc.method_ranges["mh"]["lik_std"].high == 1.0
    assert StudyConfig.load(None).chip.layer_sizes == (30, 16, 2)


def test_broken_database_is_reported_and_left_untouched(tmp_path):
    db = tmp_path / "study.db"
    db.write_bytes(b"this is not a database" * 10)
    before = db.read_bytes()
    with pytest.raises(ConfigError, match="is not an SQLite database; it was left untouched"):
        storage_for(f"sqlite:///{db}")
    assert db.read_bytes() == before
    with pytest.raises(ConfigError, match="cannot be opened as an Optuna database"):
        storage_for("postgresql://nobody@127.0.0.1:1/none")


def test_shipped_conv_study_config_builds_a_conv_chip():
    """docs/experiments/conv_digits.toml: [chip] input_shape/layers replace the default layer_sizes."""
    from pathlib import Path
    from tune.config import StudyConfig
    path = Path(__file__).resolve().parents[2] / "docs" / "experiments" / "conv_digits.toml"
    sc = StudyConfig.load(path)
    assert sc.chip.input_shape == (1, 8, 8) and sc.chip.layer_sizes == (64, 512, 10)
    assert sc.chip.layer_kind(0) == "conv" and sc.dataset == "digits"


def test_overlap_is_a_searched_hardware_knob(tiny_toml):
    """[search] overlap = [true, false]: each trial's chip takes the sampled value (a structure knob)."""
    import optuna
    from tune.objective import trial_config
    tiny_toml.write_text(tiny_toml.read_text().replace("[search]\n", "[search]\noverlap = [true, false]\n"))
    sc = StudyConfig.load(tiny_toml)
    assert sc.overlap == (True, False)
    seen = set()
    for v in (True, False):
        trial = optuna.trial.FixedTrial({"method": "bptt", "surrogate": "atan", "surrogate_scale_factor": 1.0,
                                         "beta": 0.9, "theta": 1.0, "bptt_epochs": 2, "bptt_lr": 0.01,
                                         "overlap": v})
        seen.add(trial_config(trial, sc).chip.overlap)
    assert seen == {True, False}


FIXED = {"method": "bptt", "surrogate": "atan", "surrogate_scale_factor": 1.0, "beta": 0.9, "theta": 1.0,
         "bptt_epochs": 2, "bptt_lr": 0.01}


def test_update_is_a_searched_hardware_knob_beside_overlap(tiny_toml):
    """[search] update = ["all", "touched"]: a trial drawing either schedule draws overlap too (both are built
    with and without it); [chip] max_steps goes with the touched chip."""
    import optuna
    from tune.objective import trial_config
    tiny_toml.write_text(tiny_toml.read_text().replace("[search]\n", "[search]\nupdate = ['all', 'touched']\n"
                                                       "overlap = [true, false]\n")
                         .replace("[chip]\n", "[chip]\nmax_steps = 12\n"))
    sc = StudyConfig.load(tiny_toml)
    assert sc.update == ("all", "touched") and sc.max_steps == 12 and sc.chip.update == "all"
    for o in (True, False):
        chip = trial_config(optuna.trial.FixedTrial(FIXED | {"update": "touched", "overlap": o}), sc).chip
        assert (chip.update, chip.overlap, chip.max_steps, chip.state_banks) == ("touched", o, 12, 1 + o)
        chip = trial_config(optuna.trial.FixedTrial(FIXED | {"update": "all", "overlap": o}), sc).chip
        assert (chip.update, chip.overlap) == ("all", o)


def test_fixed_touched_chip_keeps_the_overlap_setting(tiny_toml):
    """[chip] update = "touched" without an overlap key: overlap on, the chip's default, as for "all"; the
    touched chip is part of the study's identity, so a resumed study cannot switch schedules silently."""
    import optuna
    from tune.objective import trial_config
    tiny_toml.write_text(tiny_toml.read_text().replace("[chip]\n", "[chip]\nupdate = 'touched'\nmax_steps = 6\n"))
    sc = StudyConfig.load(tiny_toml)
    assert (sc.chip.update, sc.chip.overlap, sc.chip.max_steps, sc.update) == ("touched", True, 6, None)
    assert sc.identity()["chip.update"] == "touched" and sc.identity()["chip.max_steps"] == 6
    chip = trial_config(optuna.trial.FixedTrial(FIXED), sc).chip
    assert (chip.update, chip.overlap, chip.max_steps) == ("touched", True, 6)


def test_bad_update_is_one_line_from_the_command_line(tmp_path):
    """`study run --config` with a bad [search] update: exit 2, one line naming the key and the allowed values."""
    from tests.tune.test_cli_errors import fails_cleanly, spikeloop
    p = tmp_path / "bad.toml"
    p.write_text("[search]\nupdate = 'lazy'\n")
    fails_cleanly(spikeloop("study", "run", "--config", p, "--storage", f"sqlite:///{tmp_path}/s.db",
                            "--out", tmp_path / "out", cwd=tmp_path),
                  "search.update='lazy': allowed values are ['all', 'touched']")
    assert not (tmp_path / "s.db").exists()


def test_wavefront_is_drawn_only_by_touched_trials(tiny_toml):
    """[search] update = ["all", "touched"] with wavefront = [false, true] and overlap searched: a touched trial
    draws the wavefront (a membrane memory per layer, no overlap: none drawn), an "all" trial neither has nor draws
    one; [search] wavefront = true fixes it for the touched trials."""
    import optuna
    from tune.objective import trial_config
    tiny_toml.write_text(tiny_toml.read_text().replace("[search]\n", "[search]\nupdate = ['all', 'touched']\n"
                                                       "wavefront = [false, true]\noverlap = [true, false]\n")
                         .replace("[chip]\n", "[chip]\nmax_steps = 12\n"))
    sc = StudyConfig.load(tiny_toml)
    assert sc.wavefront == (False, True) and sc.chip.wavefront is False
    trial = optuna.trial.FixedTrial(FIXED | {"update": "touched", "wavefront": True, "overlap": True})
    chip = trial_config(trial, sc).chip
    assert (chip.update, chip.wavefront, chip.overlap, chip.max_steps, chip.state_banks) == ("touched", True, False,
                                                                                            12, 2)
    assert "overlap" not in trial.params and trial.params["wavefront"] is True      # recorded as update is
    trial = optuna.trial.FixedTrial(FIXED | {"update": "touched", "wavefront": False, "overlap": True})
    chip = trial_config(trial, sc).chip
    assert (chip.wavefront, chip.overlap) == (False, True) and trial.params["overlap"] is True
    trial = optuna.trial.FixedTrial(FIXED | {"update": "all", "overlap": False})
    chip = trial_config(trial, sc).chip
    assert (chip.update, chip.wavefront, chip.overlap) == ("all", False, False) and "wavefront" not in trial.params
    tiny_toml.write_text(tiny_toml.read_text().replace("wavefront = [false, true]", "wavefront = true"))
    sc = StudyConfig.load(tiny_toml)
    assert sc.wavefront == (True,)
    trial = optuna.trial.FixedTrial(FIXED | {"update": "touched"})
    assert trial_config(trial, sc).chip.wavefront is True and "wavefront" not in trial.params
    assert trial_config(optuna.trial.FixedTrial(FIXED | {"update": "all", "overlap": True}), sc).chip.wavefront is False


def test_fixed_wavefront_chip_is_the_studys_identity(tiny_toml):
    """[chip] update = "touched", wavefront = true: every trial's chip is a wavefront chip, and the study's identity
    names it (a resumed study cannot drop it silently)."""
    import optuna
    from tune.objective import trial_config
    tiny_toml.write_text(tiny_toml.read_text().replace("[chip]\n", "[chip]\nupdate = 'touched'\nwavefront = true\n"))
    sc = StudyConfig.load(tiny_toml)
    assert sc.wavefront is None and sc.identity()["chip.wavefront"] is True
    chip = trial_config(optuna.trial.FixedTrial(FIXED), sc).chip
    assert (chip.update, chip.wavefront, chip.overlap) == ("touched", True, False)
    assert "chip.wavefront" not in StudyConfig.load(None).identity()     # absent unless on: older studies resume


def test_template_lists_the_wavefront_knob():
    """`spikeloop study template` shows [search] wavefront (commented out) and the [chip] note; the template loads."""
    import tomllib
    from tune.config import template
    text = template()
    assert "# wavefront = [false, true]" in text and "docs/chip.md#wavefront" in text
    StudyConfig.from_dict(tomllib.loads(text))


def test_bad_wavefront_is_one_line_from_the_command_line(tmp_path):
    """`study run --config` with [search] wavefront but no touched trial: exit 2, one line naming it."""
    from tests.tune.test_cli_errors import fails_cleanly, spikeloop
    p = tmp_path / "bad.toml"
    p.write_text("[search]\nwavefront = [true]\n")
    fails_cleanly(spikeloop("study", "run", "--config", p, "--storage", f"sqlite:///{tmp_path}/s.db",
                            "--out", tmp_path / "out", cwd=tmp_path),
                  "search.wavefront=[True]: a wavefront chip needs update='touched'")
    assert not (tmp_path / "s.db").exists()
