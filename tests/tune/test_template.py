"""`spikeloop study template [--conv]`: a complete study TOML that `study run --config` accepts, with every key
the loader accepts (found by asking the loader itself, so the template and the loader cannot drift apart)."""
import dataclasses
import re
import tomllib
from pathlib import Path

import optuna
import pytest

from hw.config import ConfigError
from tests.tune.test_cli_errors import spikeloop
from tune.config import DEFAULT_TOML, StudyConfig, template
from train.trainers import TRAINERS

PROBE = "zz_not_a_key"


def _allowed(error: str) -> set[str]:
    """The key names a loader's unknown-key error lists (``allowed: [...]`` or ``with fields [...]``)."""
    m = re.search(r"(?:allowed:|with fields) \[([^\]]*)\]", error)
    assert m, error
    return set(re.findall(r"'([^']+)'", m[1]))


def accepted_keys() -> dict[str, set[str]]:
    """{section: keys} as the loader reports them when handed an unknown key in each section."""
    base = tomllib.loads(DEFAULT_TOML)
    out = {}
    for section in ("study", "data", "faults", "chip", "device", "search", "hardware"):
        d = {k: dict(v) for k, v in base.items()}
        d.setdefault(section, {})[PROBE] = 1
        with pytest.raises(ConfigError) as e:
            StudyConfig.from_dict(d)
        out[section] = _allowed(str(e.value)) - {PROBE}
    for m in TRAINERS:
        d = {k: dict(v) for k, v in base.items()}
        d["search"] = dict(d["search"], methods=[m], **{m: {PROBE: 1}})
        with pytest.raises(ConfigError) as e:
            StudyConfig.from_dict(d)
        out[f"search.{m}"] = _allowed(str(e.value)) - {PROBE}
    d = {k: dict(v) for k, v in base.items()}
    with pytest.raises(ConfigError) as e:
        StudyConfig.from_dict(d | {PROBE: {}})
    out[""] = _allowed(str(e.value)) - {PROBE}
    return out


def keys_in(text: str) -> dict[str, set[str]]:
    """{section: keys} written in a template, commented-out keys (``# key = ...``) included."""
    out, section = {"": set()}, ""
    for line in text.splitlines():
        if m := re.match(r"\[([\w.]+)\]", line):
            section = m[1]
            parent, _, child = section.rpartition(".")
            out.setdefault(parent, set()).add(child)          # [search.bptt]: key "bptt" of [search]
            out.setdefault(section, set())
        elif m := re.match(r"(?:# )?(\w+) = ", line):
            out.setdefault(section, set()).add(m[1])
    return out


@pytest.mark.parametrize("conv", [False, True], ids=["fc", "conv"])
def test_template_has_every_key_the_loader_accepts(conv):
    accepted = accepted_keys()
    assert accepted["chip"] >= {"layer_sizes", "lanes", "input_shape", "layers"}       # the probe found them
    assert "epochs" in accepted["search.bptt"] and "iters" in accepted["search.mh"]
    written = keys_in(template(conv))
    for section, keys in accepted.items():
        missing = keys - written.get(section, set())
        assert not missing, f"[{section}] keys the loader accepts but the template lacks: {sorted(missing)}"
    assert "base" in written["device"] and "synth_report" in written["device"]


@pytest.mark.parametrize("conv", [False, True], ids=["fc", "conv"])
def test_template_loads_as_it_is_and_equals_the_defaults(conv):
    text = template(conv)
    sc = StudyConfig.from_toml(text)
    if conv:
        assert sc.chip.input_shape == (1, 8, 8) and [l.kind for l in sc.chip.layers] == ["conv", "pool", "fc"]
        assert sc.dataset == "digits"
    else:
        # the template is the default study spelt out, under its own name and storage
        default = StudyConfig.from_toml(DEFAULT_TOML)
        assert (sc.name, sc.storage) == ("my_study", "sqlite:///runs/my_study.db") != (default.name, default.storage)
        assert dataclasses.replace(sc, name=default.name, storage=default.storage, out=default.out) == default


def test_cli_template_to_study_run(tmp_path, capsys):
    """template -> file -> `study run --config` (the real command line; tiny trial counts), fc and conv."""
    from tune.cli import main
    for flag, name in (([], "fc"), (["--conv"], "conv")):
        assert main(["study", "template", *flag]) == 0
        text = capsys.readouterr().out
        small = (text.replace("epochs = [5, 20]", "epochs = 1").replace("# train_size = 100", "train_size = 40")
                 .replace("steps = 16", "steps = 4"))
        assert small.count("epochs = 1") == 3 and "train_size = 40" in small and "steps = 4" in small
        f = tmp_path / f"{name}.toml"
        f.write_text(small)
        db = tmp_path / f"{name}.db"
        r = spikeloop("study", "run", "--config", f, "--n-trials", 1, "--storage", f"sqlite:///{db}",
                      "--out", tmp_path / name, cwd=tmp_path, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        (summary,) = optuna.study.get_all_study_summaries(f"sqlite:///{db}")
        assert summary.study_name == ("my_conv_study" if flag else "my_study")
        trials = optuna.load_study(study_name=summary.study_name, storage=f"sqlite:///{db}").trials
        # one tiny trial (1 epoch, 40 samples) may train a silent network: then it is pruned with the reason
        (t,) = trials
        if t.state.name == "COMPLETE":
            assert (tmp_path / name / "report" / "report.md").exists()
        else:
            assert t.state.name == "PRUNED" and "dead_network" in t.user_attrs, (t.state.name, t.user_attrs)
            assert "no complete trial, so no report (1 pruned as dead networks" in r.stderr, r.stderr[-2000:]


def _help(capsys, *cmd) -> str:
    from tune.cli import main
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_help_texts_point_to_docs_not_source_names(capsys):
    for cmd in (["train"], ["run"], ["study", "run"], ["study", "template"], ["study"]):
        assert "DEFAULT_TOML" not in _help(capsys, *cmd)
    for cmd in (["train"], ["run"]):                     # how to use a conv chip, and where to read on
        h = _help(capsys, *cmd)
        assert "input_shape" in h and 'kind = "conv"' in h and "docs/guides/training.md" in h, cmd
    # the template's notes are help text too: docs pages, not registries or modules of the source
    root = Path(__file__).resolve().parents[2]
    notes = [line.split("#", 2)[-1] for line in template().splitlines() if "#" in line and "source =" not in line]
    named = [m for n in notes for m in re.findall(r"\b(?:hw|sim|train|tune)\.[a-z_]+(?:\.[A-Za-z_]+)?", n)]
    assert not named, named
    for page in {m for n in notes for m in re.findall(r"docs/[\w./-]+?\.md", n)}:
        assert (root / page).is_file(), page


def test_template_lists_update_and_run_accepts_it_uncommented(tmp_path, capsys):
    """[chip] update / max_steps and [search] update are in the template with their allowed values (from
    hw.config, not copied); uncommented, the template is still a study `study run --config` runs."""
    from hw.config import UPDATE_MODES
    from tune.cli import main
    assert main(["study", "template"]) == 0
    text = capsys.readouterr().out
    modes = ", ".join(UPDATE_MODES)
    chip_line = next(l for l in text.splitlines() if l.startswith('# update = "all"'))
    search_line = next(l for l in text.splitlines() if l.startswith('# update = ["all", "touched"]'))
    assert f"one of {modes}" in chip_line and f"of {modes}" in search_line
    # either schedule is built with overlap (51ef58d): neither line may say a touched chip turns it off
    assert "overlap off" not in chip_line and "overlap off" not in search_line
    assert "# max_steps = 1024" in text
    small = (text.replace('# update = ["all", "touched"]', 'update = ["all", "touched"]')
             .replace("epochs = [5, 20]", "epochs = 1").replace("# train_size = 100", "train_size = 40")
             .replace("steps = 16", "steps = 4").replace('methods = ["bptt", "cilspl", "mh"]', 'methods = ["bptt"]'))
    f = tmp_path / "t.toml"
    f.write_text(small)
    sc = StudyConfig.load(f)
    assert sc.update == ("all", "touched") and sc.methods == ("bptt",)
    db = tmp_path / "t.db"
    r = spikeloop("study", "run", "--config", f, "--n-trials", 2, "--storage", f"sqlite:///{db}",
                  "--out", tmp_path / "out", cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    trials = optuna.load_study(study_name="my_study", storage=f"sqlite:///{db}").trials
    assert len(trials) == 2 and all(t.state.name in ("COMPLETE", "PRUNED") for t in trials)
    assert trials[0].params["update"] == "all"               # the baseline: [chip] update


@pytest.mark.parametrize("conv", [False, True], ids=["fc", "conv"])
def test_every_commented_chip_key_is_valid_toml_with_a_note(conv):
    """Uncommenting one optional [chip] line gives a TOML value (``# bias = None`` did not: TOML has no None)
    with a note on what it means; the bias line, uncommented, is a study the loader accepts."""
    text = template(conv)
    chip = text.split("\n[chip]")[1].split("\n[")[0]
    for line in chip.splitlines():
        if line.startswith("# ") and " = " in line:
            key = line[2:].split(" = ")[0]
            tomllib.loads(line[2:])                          # key = value   # note
            assert " # " in line[2:] and line[2:].split(" # ", 1)[1].strip(), f"[chip] {key}: no note"
    bias = next(l for l in chip.splitlines() if l.startswith("# bias = "))
    sc = StudyConfig.from_toml(text.replace(bias, bias[2:]))
    assert sc.chip.has_bias
