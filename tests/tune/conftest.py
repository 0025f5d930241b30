import textwrap

import pytest

TINY = textwrap.dedent("""
    [study]
    name = "t"
    n_trials = 3
    seed = 0
    [data]
    dataset = "breast_cancer"
    steps = 6
    train_size = 60
    [chip]
    layer_sizes = [30, 8, 2]
    lanes = 4
    [search]
    methods = ["bptt", "mh"]
    surrogates = ["atan", "fast_sigmoid"]
    [search.bptt]
    epochs = [2, 3]
    [search.mh]
    iters = [40, 60]
    [report]
    recheck_seeds = 0
""")


@pytest.fixture
def tiny_toml(tmp_path):
    p = tmp_path / "study.toml"
    p.write_text(TINY)
    return p


@pytest.fixture
def study_toml(tiny_toml, tmp_path):
    """The tiny study with its storage and artefacts under tmp_path."""
    def make(extra: str = "", **study):
        text = tiny_toml.read_text()
        for k, v in study.items():
            text = text.replace("[study]\n", f"[study]\n{k} = {v!r}\n".replace("'", '"'), 1)
        p = tmp_path / f"study{len(list(tmp_path.glob('study*.toml')))}.toml"
        p.write_text(text + extra)
        return p
    return make


@pytest.fixture
def cli(capsys):
    """``spikeloop ARGS`` in this process (:func:`tune.cli.main`, what the console command runs), returned as
    :func:`subprocess.run` returns it (``returncode``, ``stdout``, ``stderr``) so the bad-input checks read the
    same. Saves the interpreter start and imports of a real command (~1-2 s each). A warning the command raises
    is written to its stderr as Python shows it by default (pytest would otherwise collect it, and a stray
    warning line would go unseen); an exception the command does not turn into its one line propagates (a
    real command would print a traceback). ``cwd``: the directory it runs in. The real console command stays
    covered by the tests that call ``spikeloop(...)`` (tests/tune/test_cli_errors.py)."""
    import os
    import signal
    import warnings
    from types import SimpleNamespace
    from tune.cli import main

    def run(*args, cwd=None):
        capsys.readouterr()
        here, sigterm = os.getcwd(), signal.getsignal(signal.SIGTERM)
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()                         # Python's default filters, not pytest's
            warnings.simplefilter("default")
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
                if cwd is not None:
                    os.chdir(cwd)
                code = main([str(a) for a in args])
            except SystemExit as e:                          # argparse's usage errors
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            finally:
                os.chdir(here)
                signal.signal(signal.SIGTERM, sigterm)      # main() makes SIGTERM raise; not in the test runner
        out, err = capsys.readouterr()
        err += "".join(warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught)
        return SimpleNamespace(returncode=0 if code is None else code, stdout=out, stderr=err)
    return run
