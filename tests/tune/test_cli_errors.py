"""The bad-input suite: every user mistake through the command line ends in one line on stderr and
exit code 2 (usage errors) — no traceback, nothing created or lost — or in the right state.

Most mistakes go through ``cli(...)`` (tests/conftest.py: :func:`tune.cli.main` in this process, what the
console command runs, without an interpreter start per case); the real command, ``spikeloop(...)`` (a
``python -m tune.cli`` process), still runs where the process itself matters — the usage errors' program
names, a run that succeeds, a study and its export from another directory, signals — and in the other files'
checks that import it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

ROOT = Path(__file__).resolve().parents[2]


#: a cap on one command of this suite, s: only a hang reaches it (a loaded machine must not; see issue #19)
COMMAND_TIMEOUT = 1800


def spikeloop(*args, cwd=None, timeout=COMMAND_TIMEOUT, env=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "tune.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


def fails_cleanly(r, *fragments):
    """Exit 2, one line on stderr naming what was wrong, no traceback."""
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def studies_in(db: Path) -> list[str]:
    if not db.exists():
        return []
    return [s.study_name for s in optuna.study.get_all_study_summaries(f"sqlite:///{db}")]


# -- spikeloop run ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragments", [
    (["--density", "2"], ["--density", "allowed range is [0, 1]"]),
    (["--clock-mhz", "0"], ["--clock-mhz", "(0, 10000]"]),
    (["--batch", "0"], ["--batch", "allowed range"]),
    (["--sizes", "8,x"], ["--sizes", "comma-separated integers"]),
    (["--sizes", "8,70000"], ["layer_sizes[1]=70000", "1..65536"]),
    (["--lanes", "65"], ["--lanes", "[1, 64]"]),
    (["--sizes", "65536,65536", "--batch", "1000"], ["needs about", "GiB", "available"]),
    (["--backend", "board"], ["port"]),
    # issue #19: flags the run would not use are refused, not dropped
    (["--port", "/dev/ttyUSB0"], ["--port", "--backend board"]),
    (["--baud", "9600"], ["--baud", "--backend board"]),
    (["--limit", "3"], ["--limit", "random input spikes"]),
    (["--dataset", "breast_cancer", "--batch", "3"], ["--batch", "--dataset sets the samples", "--limit"]),
    (["--spikes", "s.npz", "--batch", "3"], ["--batch", "--spikes sets the samples"]),
    (["--spikes", "s.npz", "--steps", "3"], ["--steps", "--spikes file sets the time steps"]),
    (["--spikes", "s.npz", "--limit", "3"], ["--limit", "--spikes runs every sample"]),
    (["--spikes", "s.npz", "--weights", "w.npz", "--density", "0.3"], ["--density", "has its weights"]),
    (["--update", "touched", "--overlap", "off", "--max-steps", "3", "--steps", "5", "--backend", "icarus"],
     ["--steps 5", "max_steps=3", "--max-steps"]),
])
def test_run_rejects(args, fragments, cli):
    fails_cleanly(cli("run", *args), *fragments)


@pytest.mark.parametrize("args", [
    ["run", "--weights", ""], ["run", "--model", ""], ["run", "--config", ""], ["run", "--spikes", ""],
    ["run", "--raster", ""], ["run", "--dataset", ""], ["run", "--data-path", ""],
    ["run", "--backend", "board", "--port", ""], ["run", "--backend", "amaranth", "--vcd", ""],
    ["verilog", "--weights", ""], ["verilog", "--out", ""], ["synth", "--out", ""], ["export", "--out", ""],
    ["import", "m.nir", "--out", ""], ["import", "--out", "o", ""], ["train", "--out", ""],
    ["train", "--data-path", ""], ["study", "run", "--storage", ""], ["study", "run", "--out", ""],
    ["study", "run", "--config", ""], ["study", "report", "--report-dir", ""], ["study", "export", "0", "--dest", ""],
    ["dse", "--storage", ""], ["dse", "--out", ""]])
def test_an_empty_path_is_refused_not_taken_as_left_out(args, cli):
    """``--weights "$W"`` with W unset: the empty value read as the option left out — random weights, a training
    result not saved, the default storage and a full dse sweep."""
    flag = args[-2] if args[-2].startswith("--") else "model"        # import's NIR file is positional
    r = cli(*args)
    fails_cleanly(r, f"argument {flag}: '': empty; give a value or leave the option out")
    assert r.stdout == ""


def test_run_batch_with_a_spikes_file_is_refused_after_reading_a_real_one(tmp_path):
    np.savez(tmp_path / "s.npz", x=np.zeros((2, 3, 8), np.uint8))
    fails_cleanly(spikeloop("run", "--sizes", "8,4", "--spikes", tmp_path / "s.npz", "--batch", "5"), "--batch")
    r = spikeloop("run", "--sizes", "8,4", "--spikes", tmp_path / "s.npz", "--no-neurobench")
    assert r.returncode == 0 and "2 samples x 3 steps" in r.stdout, r.stderr[-2000:]


def test_synth_jobs_without_a_seed_sweep_is_refused_before_building(tmp_path, cli):
    r = cli("synth", "--sizes", "8,4", "--jobs", "2", "--out", tmp_path / "s")
    fails_cleanly(r, "--jobs", "--seeds")
    assert not (tmp_path / "s").exists()


# -- unrecognised options name the subcommand's help (issue #19) ------------------------------------------
@pytest.mark.parametrize("args, prog", [
    (["study", "report", "--out", "o"], "spikeloop study report"),
    (["study", "export", "3", "--out", "e"], "spikeloop study export"),
    (["verilog", "--bogus"], "spikeloop verilog"),
])
def test_unrecognised_option_points_to_the_subcommand_help(args, prog):
    err = fails_cleanly(spikeloop(*args), "unrecognized arguments", f"(see {prog} --help)")
    assert err.startswith(f"{prog}: error:"), err


def test_config_that_is_binary_a_directory_or_mistyped(tmp_path, cli):
    binary = tmp_path / "chip.toml"
    binary.write_bytes(bytes(range(256)))
    fails_cleanly(cli("run", "--config", binary), "--config", "not a text file")
    fails_cleanly(cli("run", "--config", tmp_path), "--config", "not a file")
    fails_cleanly(cli("run", "--config", tmp_path / "nope.json"), "no such file")
    bad = tmp_path / "bad.toml"
    for text, fragment in (('[chip]\nlanes = "x"', "lanes='x'"), ("[chip]\nlayer_sizes = 5", "layer_sizes=5"),
                           ("[chip]\nbeta = 'slow'", "beta='slow'"), ("chip = 3", "expected a table"),
                           ("[chip\n", "not valid TOML")):
        bad.write_text(text)
        fails_cleanly(cli("run", "--config", bad), fragment)


def test_config_fields_a_command_would_drop(tmp_path, cli, monkeypatch):
    """A TOML key above the first [table] lies outside [chip]; a study-style file without [chip] has no chip
    fields: both are refused by name, not dropped (run, verilog, train) — and train refuses them, and a
    misspelt [chip] or [faults] field, before it loads the data."""
    loose = tmp_path / "loose.toml"
    loose.write_text("lanes = 4\n[chip]\nlayer_sizes = [30, 16, 2]\n")
    for cmd in (["run"], ["verilog", "--out", tmp_path / "v"], ["train", "--method", "mh", "--iters", "5"]):
        fails_cleanly(cli(*cmd, "--config", loose), "--config", "lanes at the top level", "under [chip]")
    mixed = tmp_path / "mixed.toml"
    mixed.write_text("lanes = 4\n[data]\nsteps = 3\n")
    fails_cleanly(cli("run", "--config", mixed), "no [chip] table (the file has [data])")

    def no_data(*a, **k):
        raise AssertionError("the data were loaded before the config was checked")
    monkeypatch.setattr("train.run.load_split", no_data)
    fails_cleanly(cli("train", "--method", "mh", "--iters", "5", "--config", mixed), "lanes at the top level")
    bad = tmp_path / "bad.toml"
    for text, fragment in (("[chip]\nlane = 4\n", "unknown chip config fields ['lane']"),
                           ("[faults]\nstuck = 0.1\n", "[faults]: unknown fields ['stuck']"),
                           ("[faults]\nseed = -4\n", "faults seed=-4"),
                           # a table train does not read: its keys were dropped and the defaults trained
                           ("[chip]\nlanes = 4\n[train]\nepochs = 3\n", "unknown tables [train]; spikeloop train reads [chip]")):
        bad.write_text(text)
        fails_cleanly(cli("train", "--method", "mh", "--iters", "5", "--config", bad), fragment)


def test_unknown_config_tables_are_refused_by_every_command(tmp_path, cli):
    """A TOML table no command reads ([train], a misspelt [chp]) is refused by name with the allowed ones by
    run, verilog and synth as by train (it was dropped unread: the run used the file's [chip] alone); a
    study's tables beside [chip] are allowed, and a JSON bundle (RUN.json) is not checked."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[chip]\nlayer_sizes = [30, 16, 2]\n[chp]\nlanes = 4\n[train]\nepochs = 3\n")
    for cmd in (["run"], ["verilog", "--out", tmp_path / "v"], ["synth", "--out", tmp_path / "s"],
                ["train", "--method", "mh", "--iters", "5"]):
        err = fails_cleanly(cli(*cmd, "--config", bad), f"--config {bad}: unknown tables [chp], [train]; "
                            f"spikeloop {cmd[0]} reads [chip]", "[data], [faults], [study], [search]")
    assert not (tmp_path / "v").exists() and not (tmp_path / "s").exists()
    study = tmp_path / "study.toml"
    study.write_text("[chip]\nlayer_sizes = [30, 16, 2]\n[data]\nsteps = 3\n[search]\nlanes = [2.0]\n"
                     "[search.mh]\niters = 5\n[study]\nn_trials = 1\n")
    r = cli("run", "--config", study, "--batch", "1", "--steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]
    run_json = tmp_path / "RUN.json"
    run_json.write_text('{"chip_config": {"layer_sizes": [30, 16, 2]}, "train_config": {"steps": 3}}')
    r = cli("run", "--config", run_json, "--batch", "1", "--steps", "2")
    assert r.returncode == 0, r.stderr[-2000:]


# -- spikeloop verilog: weights files ---------------------------------------------------------------------
def test_corrupt_truncated_or_pickled_weights(tmp_path, cli):
    good = tmp_path / "w.npz"
    np.savez(good, w0=np.zeros((4, 3), np.int64))
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[:60])
    text = tmp_path / "text.npz"
    text.write_text("not a zip")
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, w0=np.array([{"a": 1}], dtype=object))
    for f in (trunc, text, pickled):
        err = fails_cleanly(cli("verilog", "--sizes", "4,3", "--weights", f, "--out", tmp_path / "v"),
                            "--weights", "not a readable .npz")
        assert "pickled" not in err
    fails_cleanly(cli("verilog", "--sizes", "4,3,2", "--weights", good, "--out", tmp_path / "v"),
                  "lacks arrays ['w1']")
    big = tmp_path / "big.npz"
    np.savez(big, w0=np.full((4, 3), 1e30))
    err = fails_cleanly(cli("verilog", "--sizes", "4,3", "--weights", big, "--out", tmp_path / "v"),
                        "weights[0]")
    assert "-9223372036854775808" not in err
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())


# -- spikeloop train --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, fragments", [
    (["--method", "bptt", "--epochs", "0"], ["--epochs", "[1, 100000]"]),
    (["--distortion", "99"], ["--distortion", "[0, 10]"]),
    (["--threshold-mismatch", "-1"], ["--threshold-mismatch"]),
    (["--method", "bptt", "--iters", "100"], ["--iters applies to method mh", "not to --method bptt"]),
    (["--method", "mh", "--iters", "10", "--burn-in", "20"], ["burn_in=20", "allowed range"]),
    (["--dataset", "svhn"], ["svhn", "--data-path"]),
    (["--dataset", "digits", "--data-path", "/tmp"], ["takes no path"]),
    (["--sizes", "20,8,2"], ["layer_sizes[0]=20", "31 input neurons (30 features + the bias input)"]),
    (["--method", "bptt", "--sizes", "20,8,2"], ["layer_sizes[0]=20", "30 input neurons"]),
    (["--bias-input", "yes"], ["--bias-input", "invalid choice"]),
    (["--theta", "0"], ["--theta", "(0, 100]"]),
    (["--surrogate", "relu"], ["--surrogate", "invalid choice"]),
    (["--steps", "abc"], ["--steps", "expected an integer"]),
    # issue #19: an ignored --threshold, and more outputs than the dataset has classes
    (["--threshold", "5"], ["--threshold", "--theta"]),
    (["--sizes", "31,8,3"], ["layer_sizes[-1]=3", "allowed value is 2", "classes that do not exist"]),
    (["--method", "bptt", "--sizes", "30,8,1"], ["layer_sizes[-1]=1", "allowed value is 2"]),
    # a touched chip's step stamps: refused before training (it failed when the trained chip was scored)
    (["--method", "bptt", "--update", "touched", "--overlap", "off", "--max-steps", "3", "--steps", "16"],
     ["steps=16", "update='touched'", "max_steps=3", "1..3"]),
])
def test_train_rejects(args, fragments, cli):
    fails_cleanly(cli("train", *args), *fragments)


def test_train_unwritable_out_is_found_before_training(tmp_path, cli):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli("train", "--method", "mh", "--iters", "100000", "--out", blocker / "sub" / "result")
    fails_cleanly(r, "--out", "cannot write there")
    assert r.stdout == ""                         # refused before the chip line, i.e. before any training


def test_train_chip_flags_apply_without_sizes(tmp_path, cli):
    r = cli("train", "--method", "mh", "--iters", "20", "--train-size", "40", "--lanes", "4",
                  "--weight-bits", "6", "--reset", "zero", "--beta", "0.8", "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "chip (31, 16, 2) lanes=4 w6/m16 beta=[0.8008, 0.8008] reset=zero" in r.stdout     # + the bias input
    import json
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["chip_config"]["lanes"] == 4 and saved["chip_config"]["weight_bits"] == 6
    assert saved["train_config"]["params"]["iters"] == 20 and saved["extra"]["burn_in"] == 10   # half of iters


def test_train_config_file_with_whole_floats(tmp_path, cli):
    """A --config whose counts are written as floats ([data] steps = 3.0, [faults] seed = 1.0) trains; steps was a
    numpy TypeError traceback and the seed a refusal."""
    p = tmp_path / "f.toml"
    p.write_text("[chip]\nlanes = 4.0\n[data]\nsteps = 3.0\ntrain_size = 40.0\n[faults]\nseed = 1.0\n")
    r = cli("train", "--method", "mh", "--iters", "10", "--thin", "1", "--config", p)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "lanes=4 " in r.stdout


# -- spikeloop study --------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, fragments", [
    ('\n[device]\nclock_mhz = "fast"\n', ["device.clock_mhz='fast'"]),
    ("", ["study.seed='abc'"]),
    ("", ["data.train_size"]),
    ("", ["study.weights.accuracy='1'"]),
])
def test_study_config_types(extra, fragments, study_toml, tmp_path, cli):
    if "seed" in fragments[0]:
        toml = tmp_path / "seed.toml"
        toml.write_text(study_toml().read_text().replace("seed = 0", 'seed = "abc"'))
    elif "train_size" in fragments[0]:
        toml = Path(str(study_toml())).read_text().replace("train_size = 60", 'train_size = "x"')
        p = tmp_path / "ts.toml"
        p.write_text(toml)
        toml = p
        fragments = ["train_size='x'"]
    elif "weights" in fragments[0]:
        p = tmp_path / "w.toml"
        p.write_text(study_toml().read_text().replace("[study]\n", '[study]\nweights = {accuracy = "1"}\n', 1))
        toml = p
    else:
        toml = study_toml(extra)
    db = tmp_path / "s.db"
    fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{db}"), *fragments)
    assert studies_in(db) == []


def test_study_device_synth_report_that_is_not_a_report(study_toml, tmp_path, cli):
    """[device] synth_report pointing at a file that is not a `spikeloop synth` report: one line, no study."""
    db, rep = tmp_path / "s.db", tmp_path / "ice40-up5k.json"
    rep.write_text("not json")
    fails_cleanly(cli("study", "run", "--config", study_toml(f'\n[device]\nsynth_report = "{rep}"\n'),
                      "--storage", f"sqlite:///{db}"), f"synth_report {rep}", "not a `spikeloop synth` report")
    assert studies_in(db) == []


def test_study_synth_cache_that_cannot_be_written_is_refused_before_the_study_exists(study_toml, tmp_path, cli):
    """[hardware] synth_cache under a file: refused before the first trial's build (it used to fail after it)."""
    db, blocker = tmp_path / "s.db", tmp_path / "file"
    blocker.write_text("x")
    toml = study_toml(f'\n[hardware]\nfits = "ice40-up5k"\nsynth_cache = "{blocker / "cache"}"\n')
    fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{db}"),
                  "[hardware] synth_cache", "cannot write there", f"{blocker} is a file")
    assert studies_in(db) == []


def test_study_section_that_is_not_a_table(tmp_path, cli):
    p = tmp_path / "s.toml"
    p.write_text("study = 5\n")
    fails_cleanly(cli("study", "run", "--config", p, "--storage", f"sqlite:///{tmp_path}/s.db"),
                  "study=5", "expected a table")
    p.write_bytes(b"\x00\xff\xfe")
    fails_cleanly(cli("study", "run", "--config", p), "not a text file")
    fails_cleanly(cli("study", "run", "--config", tmp_path), "not a file")


def test_study_input_size_mismatch_and_bad_out_are_refused_before_the_study_exists(study_toml, tmp_path, cli):
    db = tmp_path / "s.db"
    wrong = tmp_path / "wrong.toml"
    wrong.write_text(study_toml().read_text().replace("layer_sizes = [30, 8, 2]", "layer_sizes = [20, 8, 2]"))
    fails_cleanly(cli("study", "run", "--config", wrong, "--storage", f"sqlite:///{db}"),
                  "layer_sizes[0]=20", "30 input neurons")
    wrong.write_text(study_toml().read_text().replace("layer_sizes = [30, 8, 2]", "layer_sizes = [30, 8, 3]"))
    fails_cleanly(cli("study", "run", "--config", wrong, "--storage", f"sqlite:///{db}"),   # issue #19
                  "layer_sizes[-1]=3", "allowed value is 2")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    fails_cleanly(cli("study", "run", "--config", study_toml(), "--storage", f"sqlite:///{db}",
                            "--out", blocker / "out"), "--out", "cannot write there")
    assert studies_in(db) == []


def test_report_and_export_of_a_misspelt_study_create_nothing(study_toml, tmp_path, cli):
    db = tmp_path / "s.db"
    toml = study_toml()
    r = spikeloop("study", "run", "--config", toml, "--storage", f"sqlite:///{db}", "--out", tmp_path / "out",
                  "--n-trials", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    fails_cleanly(cli("study", "report", "--config", toml, "--storage", f"sqlite:///{db}", "--name", "tt"),
                  "--name 'tt'", "no such study", "['t']")
    fails_cleanly(cli("study", "export", "0", "--config", toml, "--storage", f"sqlite:///{db}",
                            "--name", "tt"), "no such study")
    assert studies_in(db) == ["t"]
    # export works from any directory (artefact paths are stored absolute)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = spikeloop("study", "export", "0", "--config", toml, "--storage", f"sqlite:///{db}",
                  "--dest", elsewhere / "exp", cwd=elsewhere)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "module spikeloop_core" in (elsewhere / "exp" / "spikeloop_core.v").read_text()
    fails_cleanly(cli("study", "export", "99", "--config", toml, "--storage", f"sqlite:///{db}"),
                  "trial 99")


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def study_workers(pid: int) -> list[int]:
    """The study worker processes of the command ``pid`` besides itself (with ``--jobs N`` the command is worker 0
    and starts N - 1 more): forks of its fork server (tune.study.worker_context), or spawned children where there
    is no fork server. Not the report process (tune.report.ReportProcess), which names itself."""
    out = []
    for c in _children(pid):
        if "spawn_main" in _cmdline(c):
            out.append(c)
        elif "forkserver" in _cmdline(c):
            out += [w for w in _children(c) if _comm(w) != "spikeloop-repor"]
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def report_process_named(pid: int) -> bool:
    """The command ``pid``'s report process (a fork of its fork server, started after the workers) has named
    itself, so :func:`study_workers` no longer counts it."""
    return any(_comm(w) == "spikeloop-repor" for c in _children(pid) if "forkserver" in _cmdline(c)
               for w in _children(c))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def settled_workers(pid: int, deadline: float) -> list[int]:
    """:func:`study_workers` of the running command ``pid`` once its report process has named itself (or the command
    has ended, or ``deadline`` passed): until then a fork of its fork server may be the report process, started
    after the workers and not named yet, and :func:`study_workers` would count it as a worker."""
    while time.monotonic() < deadline and _alive(pid) and not report_process_named(pid):
        time.sleep(0.2)                           # not a fixed wait: how soon it starts depends on the load
    return study_workers(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_study_stops_its_workers(sig, study_toml, tmp_path):
    toml = tmp_path / "slow.toml"
    toml.write_text(study_toml().read_text().replace("iters = [40, 60]", "iters = [100000, 100000]")
                    .replace('methods = ["bptt", "mh"]', 'methods = ["mh"]'))
    proc = subprocess.Popen([sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml),
                             "--storage", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "out"),
                             "--jobs", "2"], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900             # generous: only a hang reaches it, not a loaded machine
    workers = []
    while time.monotonic() < deadline and len(workers) < 1:
        time.sleep(0.5)
        workers = study_workers(proc.pid) if _alive(proc.pid) else []
    workers = settled_workers(proc.pid, deadline)     # again: the report process has named itself by now
    assert len(workers) == 1, proc.communicate(timeout=600)      # --jobs 2: the command and one forked worker
    from tune.study import CLAIM_ATTR
    storage = f"sqlite:///{tmp_path}/s.db"
    theirs = lambda: [t.number for t in optuna.load_study(study_name="t", storage=storage).trials
                      if t.state == optuna.trial.TrialState.RUNNING and t.system_attrs.get(CLAIM_ATTR) in workers]
    while time.monotonic() < deadline and _alive(proc.pid) and not theirs():     # the forked worker is in a trial
        time.sleep(0.5)
    (trial,) = theirs()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "interrupted" in err
    states = {t.number: t.state.name for t in optuna.load_study(study_name="t", storage=storage).trials}
    assert states[trial] == "FAIL" and "RUNNING" not in states.values(), states   # the worker's trial too: not left
    deadline = time.monotonic() + 300             # terminated workers exit; how soon depends on the load
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


@pytest.mark.parametrize("where, when", [
    ("optuna.storages.RDBStorage._create_new_trial", "[*args[1:], kw.get('template_trial')][0] is None"),  # ask
    ("optuna.storages.RDBStorage.set_trial_state_values",                                                     # tell
     "(kw['state'] if 'state' in kw else args[1]).is_finished()"),
    ("optuna.storages._heartbeat.HeartbeatThread.start", "calls == 2"),         # trial 1's heartbeat thread
])
def test_a_signal_in_optunas_bookkeeping_stops_after_it(where, when, study_toml, tmp_path):
    """SIGTERM while Optuna writes to the storage or starts a trial's heartbeat thread (here: right after the
    write of a new trial (ask) or of a finished trial's state (tell), or the thread's start, before Optuna's
    bookkeeping around it is done) ends the command promptly with the one line: not a traceback of Optuna's
    (its tell half-done: "Should not reach."), a trial left RUNNING, or a heartbeat thread that never stops (the
    command then never exits). The interrupt waits for Optuna (tune.study._interrupt). A finished trial is kept."""
    module, cls, method = where.rsplit(".", 2)
    script = ("import os, signal, sys\n"
              f"from {module} import {cls}\n"
              "from tune import cli\n"
              f"real = {cls}.{method}\n"
              "calls = 0\n"
              "def signalled(self, *args, **kw):\n"
              "    global calls\n"
              "    out = real(self, *args, **kw)\n"
              "    calls += 1\n"
              f"    if {when}:\n"
              "        os.kill(os.getpid(), signal.SIGTERM)   # its handler runs in this frame, Optuna's below\n"
              "    return out\n"
              f"{cls}.{method} = signalled\n"
              "sys.exit(cli.main(sys.argv[1:]))\n")
    db = _stopped_study_run(script, study_toml, tmp_path)
    states = [t.state for t in optuna.load_study(study_name="t", storage=f"sqlite:///{db}").trials]
    assert states[0] == optuna.trial.TrialState.COMPLETE, states        # the baseline, finished before the signal
    assert optuna.trial.TrialState.RUNNING not in states, states


def test_a_second_stop_signal_in_the_clean_up_ends_the_command_at_once(study_toml, tmp_path):
    """Ctrl-C pressed again, or a SIGTERM after a Ctrl-C, while the interrupted command cleans up (here: SIGTERM
    after the baseline's tell, then SIGINT from an exit handler): exit 130 with the one line. Its KeyboardInterrupt
    was raised in the clean-up: a traceback (SQLAlchemy's pool disposal at exit), or exit -2 out of it."""
    script = ("import atexit, os, signal, sys\n"
              "from optuna.storages import RDBStorage\n"
              "from tune import cli\n"
              "real = RDBStorage.set_trial_state_values\n"
              "sent = []\n"
              "def signalled(self, *args, **kw):\n"
              "    out = real(self, *args, **kw)\n"
              "    if not sent and (kw['state'] if 'state' in kw else args[1]).is_finished():\n"
              "        sent.append(1)\n"
              "        os.kill(os.getpid(), signal.SIGTERM)      # the stop\n"
              "    return out\n"
              "RDBStorage.set_trial_state_values = signalled\n"
              "atexit.register(os.kill, os.getpid(), signal.SIGINT)   # the second, in the exit's clean-up\n"
              "cli.entry()\n")
    _stopped_study_run(script, study_toml, tmp_path)


def test_rerun_right_after_a_kill_reaches_the_requested_count(study_toml, tmp_path, monkeypatch):
    """A trial of a killed run still looks RUNNING (its heartbeat has not lapsed yet): the rerun waits for
    it to lapse and runs the missing trial instead of exiting with the study short."""
    import tune.study
    from optuna.trial import TrialState
    from tune.config import StudyConfig
    from tune.study import open_study, run_study
    monkeypatch.setattr(tune.study, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tune.study, "GRACE_S", 3)
    sc = StudyConfig.load(study_toml(), {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out"),
                                         "n_trials": 2})
    study = open_study(sc)
    trial = study.ask()                                  # a running trial whose process is gone
    study._storage.record_heartbeat(trial._trial_id)
    t0 = time.perf_counter()
    study = run_study(sc, baseline=False)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == 2, states
    assert states[0] == TrialState.FAIL
    assert time.perf_counter() - t0 >= 2                 # it waited for the grace period



def test_sigterm_before_a_study_runs_is_the_one_line():
    """SIGTERM while the command is still setting up (here: inside `study template`) ends it as Ctrl-C does,
    exit 130 and one line; it used to kill the command silently until a study's trials ran."""
    script = ("import os, signal, sys\n"
              "import tune.config\n"
              "from tune import cli\n"
              "def terminated(conv=False):\n"
              "    os.kill(os.getpid(), signal.SIGTERM)\n"
              "    signal.pause()                    # the handler runs once the signal arrives\n"
              "    return 'not interrupted'\n"
              "tune.config.template = terminated\n"
              "sys.exit(cli.main(['study', 'template']))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    err = r.stderr.strip()
    assert r.returncode == 130, (r.returncode, err[-2000:])
    assert "not interrupted" not in r.stdout
    assert len(err.splitlines()) == 1 and "stopped by signal SIGTERM" in err, err


def test_ctrl_c_while_the_command_imports_is_the_one_line(cli, monkeypatch):
    """Ctrl-C (or SIGTERM) in the command's first moment, while it builds its parser or imports Optuna, before
    its own handling: the same one line and exit 130 (it was a KeyboardInterrupt traceback of the imports)."""
    from tune import cli as tune_cli
    real = tune_cli.build_parser

    def interrupted():
        real()
        raise KeyboardInterrupt

    monkeypatch.setattr(tune_cli, "build_parser", interrupted)
    r = cli("study", "template")
    err = r.stderr.strip()
    assert r.returncode == 130 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("spikeloop: interrupted"), err


def test_study_run_starts_the_fork_server_before_its_heavy_imports(tmp_path):
    """``study run --jobs 2`` starts the fork server right after parsing its arguments, before the command imports
    torch (tune.config) for its config, so the server's imports overlap the command's; a config refused after
    that still exits 2 with one line, and the server (maybe still importing) is ended with it. ``--jobs 1``
    starts none."""
    script = (
        "import sys\n"
        "import tune.cli, tune.workers\n"
        "from multiprocessing import forkserver\n"
        "seen = []\n"
        "real = tune.workers.start_fork_server\n"
        "def spy(jobs):\n"
        "    seen.append((jobs, 'torch' in sys.modules, 'tune.config' in sys.modules))\n"
        "    return real(jobs)\n"
        "tune.workers.start_fork_server = spy\n"
        f"rc2 = tune.cli.main(['study', 'run', '--jobs', '2', '--storage', 'sqlite:///:memory:', '--out', "
        f"{str(tmp_path / 'out')!r}])\n"
        "pid = forkserver._forkserver._forkserver_pid\n"
        f"rc1 = tune.cli.main(['study', 'run', '--jobs', '1', '--config', {str(tmp_path / 'none.toml')!r}])\n"
        "print(rc1, len(seen), rc2, seen, pid)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["2", "1", "2", "[(2,", "False,", "False)]", "None"], (r.stdout, r.stderr[-2000:])
    err = r.stderr.strip().splitlines()
    assert len(err) == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert "in-memory storage cannot be shared" in err[0] and "none.toml" in err[1], err
    assert not (tmp_path / "out").exists()


def test_resuming_a_finished_study_with_jobs_ends_its_fork_server(study_toml, tmp_path, cli, monkeypatch):
    """``study run --jobs 2`` of a study that has all its trials starts its fork server and runs no worker: the
    server, still importing torch & co. when the command ended, ran on for seconds after it (seen with ``ps``; its
    imports' CPU time spent for nothing); the command ends the server it started once its work is done."""
    import tune.study
    import tune.workers
    args = ["study", "run", "--config", study_toml(), "--storage", f"sqlite:///{tmp_path}/s.db", "--out",
            tmp_path / "out", "--n-trials", "1"]
    assert cli(*args).returncode == 0
    stopped = []
    monkeypatch.setattr(tune.workers, "start_fork_server", lambda jobs: True)     # as if started here
    monkeypatch.setattr(tune.study, "start_fork_server", lambda jobs: False)
    monkeypatch.setattr(tune.workers, "stop_fork_server", lambda: stopped.append(1))
    r = cli(*args, "--jobs", "2")
    assert r.returncode == 0 and "report:" in r.stdout, r.stderr[-2000:]
    assert stopped == [1]


def _stopped_study_run(script: str, study_toml, tmp_path) -> Path:
    """Run ``script`` (which stops itself) as ``spikeloop study run`` of the test study; it must end with 130 and
    the one line of a SIGTERM, no traceback. Returns the study's database."""
    db = tmp_path / "s.db"
    r = subprocess.run([sys.executable, "-c", script, "study", "run", "--config", str(study_toml()), "--storage",
                        f"sqlite:///{db}", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                       timeout=COMMAND_TIMEOUT, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    err = r.stderr.strip()
    assert r.returncode == 130, (r.returncode, err[-2000:])
    lines = [line for line in err.splitlines() if not line.startswith("study t:")]     # not the progress bar
    assert len(lines) == 1 and "stopped by signal SIGTERM" in lines[0] and "Traceback" not in err, err
    return db
