import os

import pytest

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("exhaustive", deadline=None, max_examples=500,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
# Verilator models compiled without C++ optimisation: the suite's simulations are short, so its Verilator tests
# spend their time compiling (sim.cocotb_sim.verilator_opt); a run may choose another level.
os.environ.setdefault("SPIKELOOP_VERILATOR_OPT", "-O0")


@pytest.fixture
def cli(capsys, tmp_path_factory):
    """``spikeloop ARGS`` in this process (:func:`tune.cli.main`, what the console command runs), returned as
    :func:`subprocess.run` returns it (``returncode``, ``stdout``, ``stderr``) so the bad-input checks read the
    same. Saves the interpreter start and imports of a real command (~1-2 s each). A warning the command raises
    is written to its stderr as Python shows it by default (pytest would otherwise collect it, and a stray
    warning line would go unseen); an exception the command does not turn into its one line propagates (a
    real command would print a traceback). ``cwd``: the directory it runs in, by default an empty one of its
    own (not the work tree: a command without ``--out`` writes, or probes, its default ``runs/<name>`` there,
    where tests in another worker process could meet it). The real console command stays
    covered by the tests that call ``spikeloop(...)`` (tests/tune/test_cli_errors.py and others)."""
    import os
    import signal
    import warnings
    from types import SimpleNamespace
    from tune.cli import main

    default_cwd = tmp_path_factory.mktemp("cwd")

    def run(*args, cwd=None):
        cwd = default_cwd if cwd is None else cwd
        capsys.readouterr()
        here, sigterm = os.getcwd(), signal.getsignal(signal.SIGTERM)
        with warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()                         # Python's default filters, not pytest's
            warnings.simplefilter("default")
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            try:
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
