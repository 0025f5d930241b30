"""Every `spikeloop` help text points to the docs pages that exist, not to source files."""
import argparse
import pathlib
import re

import pytest

from tune.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _parsers():
    """(prog, parser) for `spikeloop` and every subcommand, `study`'s included."""
    top = build_parser()
    out = [("spikeloop", top)]

    def walk(p):
        for act in p._actions:
            if isinstance(act, argparse._SubParsersAction):
                for name, sp in act.choices.items():
                    out.append((sp.prog, sp))
                    walk(sp)
    walk(top)
    return out


PARSERS = _parsers()


def test_every_command_is_covered():
    progs = {prog for prog, _ in PARSERS}
    for cmd in ("run", "verilog", "synth", "import", "export", "train", "study", "dse"):
        assert f"spikeloop {cmd}" in progs
    for cmd in ("template", "run", "report", "export", "dashboard"):
        assert f"spikeloop study {cmd}" in progs


@pytest.mark.parametrize("prog,parser", PARSERS, ids=[p for p, _ in PARSERS])
def test_help_points_to_existing_docs_pages(prog, parser):
    text = parser.format_help()
    pages = re.findall(r"docs/[\w./-]+?\.md", text)
    own = re.findall(r"docs/[\w./-]+?\.md", f"{parser.description or ''} {parser.epilog or ''}")
    assert own, f"{prog} --help names no docs page for the command itself (description or epilog)"
    for page in pages:
        assert (ROOT / page).is_file(), f"{prog} --help names {page}, which does not exist"


@pytest.mark.parametrize("prog,parser", PARSERS, ids=[p for p, _ in PARSERS])
def test_help_names_no_source_files(prog, parser):
    text = " ".join(parser.format_help().split())
    assert not re.search(r"\b[\w/]+\.py\b", text), f"{prog} --help names a source file"
    assert "ChipConfig." not in text, f"{prog} --help names a source attribute"


@pytest.mark.parametrize("prog,parser", PARSERS, ids=[p for p, _ in PARSERS])
def test_numeric_options_state_their_range(prog, parser):
    """`spikeloop COMMAND --help lists every option with its allowed range` (README): each option parsed by
    hw.cli.number says its range in its help."""
    for act in parser._actions:
        if getattr(act.type, "__qualname__", "").startswith("number.") and act.option_strings:
            help_ = act.help or ""
            assert re.search(r"\d\.\.|\.\.\d|[<>]=? ?\d|\d to \d|[(\[]\d, \d[)\]]", help_), \
                f"{prog} {act.option_strings[-1]}: no range in its help {help_!r}"


def test_dse_prints_no_optuna_experimental_warnings(tmp_path, capsys):
    """`spikeloop dse` drives an Optuna build queue (heartbeats, stale trials): Optuna's ExperimentalWarnings are
    noise to its user, as in `spikeloop study`."""
    import warnings

    import optuna

    from tune.cli import main
    from tune.pnr import default_storage, open_queue
    open_queue(default_storage(tmp_path / "dse" / "synth-cache"))      # a sweep's (empty) queue for the worker
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main(["dse", "--worker", "--out", str(tmp_path / "dse")]) == 0
    assert not [w for w in seen if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
    assert "built 0 here" in capsys.readouterr().out


def test_every_method_parameter_states_its_default(capsys):
    """`train --help` gives each method parameter's default, in its bracket or (when it follows from another
    setting) in its text — never a pointer back to the help itself."""
    from train.cli import _method_params
    from tune.cli import main
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "see help" not in text
    for name, (param, _) in _method_params().items():
        assert param.default is not None or "(default:" in param.help, name


def test_version_is_the_installed_distributions(capsys):
    """`spikeloop --version`: one line, the version pyproject.toml gives, exit 0 (argparse's own action)."""
    from importlib.metadata import version
    from tune.cli import main
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"spikeloop {version('spikeloop')}\n"
