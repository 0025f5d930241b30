"""Studies under bad inputs and faults (issue 19): runaway failing trials, a study resumed with another config,
memory storage, MH ranges, no feasible trial, broken storage paths, a full disk, a read-only database, corrupt
artefacts, a killed or paused worker, unsafe names. In-process through :func:`tune.cli.main` (``cli(...)``,
tests/conftest.py, or ``refused``) for a refusal and where a fault must be injected (a trial that fails, a
study that exists already); through the real command line (``spikeloop(...)``, a subprocess) where the process
itself matters (killed or paused workers, a full disk, a read-only database) and once for corrupt artefacts."""
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from tests.tune.test_cli_errors import ROOT, fails_cleanly, settled_workers, spikeloop, studies_in
from tune import cli
from tune.config import StudyConfig
from tune.study import open_study


def _sc(toml, tmp_path, **kw):
    return StudyConfig.load(toml, {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out")} | kw)


def _add_trials(study, n, feasible=True, artefacts=None):
    """Finished trials without training (the report, export and identity code only read the storage)."""
    for k in range(n):
        acc = 0.9 - k / 20 if feasible else 0.3
        attrs = {"val_accuracy": acc, "test_accuracy": acc, "latency_us": 3.0 + k, "fps_per_watt": 1e5 / (k + 1),
                 "energy_nj": 10.0, "firing_rate": 0.1 + k / 50, "synops": 100.0 + k}
        if artefacts is not None:
            attrs["artefacts"] = str(artefacts)
        multi = len(study.directions) == 3
        study.add_trial(optuna.trial.create_trial(
            params={"method": "bptt", "surrogate": "atan", "beta": 0.5 + k / 10},
            distributions={"method": CategoricalDistribution(["bptt", "mh"]),
                           "surrogate": CategoricalDistribution(["atan", "fast_sigmoid"]),
                           "beta": FloatDistribution(0.1, 0.99)},
            values=[acc, 3.0 + k, 1e5 / (k + 1)] if multi else [acc - 0.001 * k], user_attrs=attrs,
            constraints={"beats_majority_class": -0.1 if feasible else 0.3}))


def _main(capsys, *argv):
    """The real command line in this process; returns (exit code, stdout, stderr)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *argv, fragments=(), code=2):
    """The real command line in this process (quick: no new interpreter per input) refuses ``argv`` with
    exit ``code`` and one line naming ``fragments``; an unmapped exception would propagate and fail the test."""
    got, out, err = _main(capsys, *argv)
    err = err.strip()
    assert got == code, (got, out[-1000:], err[-2000:])
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def _one_line_no_traceback(err: str, code: int, expect_code: int, *fragments):
    lines = [l.strip() for l in err.replace("\r", "\n").splitlines() if l.strip()]
    bar = [l for l in lines if l.startswith("study ")]                                # tqdm's progress line
    lines = [l for l in lines if l not in bar]
    assert all(l.startswith("spikeloop") for l in lines), lines
    assert code == expect_code, (code, err[-2000:])
    assert "Traceback" not in err, err[-3000:]
    for f in fragments:
        assert f in err, (f, err)
    return lines


# -- 1. a study whose every trial fails stops ----------------------------------------------------------------
def test_study_stops_after_consecutive_failed_trials(tiny_toml, tmp_path, monkeypatch, capsys):
    import tune.objective
    calls = []

    def out_of_memory(tc, **kw):
        calls.append(tc)
        if len(calls) > 12:                      # the runaway (before the fix): stop the test, not the machine
            raise KeyboardInterrupt("runaway")
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
    monkeypatch.setattr(tune.objective, "run_training", out_of_memory)
    code, out, err = _main(capsys, "study", "run", "--config", tiny_toml, "--storage", f"sqlite:///{tmp_path}/s.db",
                           "--out", tmp_path / "out")
    lines = _one_line_no_traceback(err, code, 1, "3 trials in a row failed", "can't allocate memory",
                                   "max_consecutive_failures = 3")
    assert len(lines) <= 4, lines                # two notes, the stop, the study's shortfall
    assert len(calls) == 3
    states = [t.state for t in optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path}/s.db").trials]
    assert states == [TrialState.FAIL] * 3
    # the command-line flag overrides the TOML; a completed trial resets the count
    calls.clear()
    code, out, err = _main(capsys, "study", "run", "--config", tiny_toml, "--storage", f"sqlite:///{tmp_path}/s.db",
                           "--out", tmp_path / "out", "--max-consecutive-failures", "1")
    _one_line_no_traceback(err, code, 1, "1 trials in a row failed")
    assert len(calls) == 1


def test_max_consecutive_failures_is_validated(study_toml, tmp_path, capsys):
    db = tmp_path / "s.db"
    refused(capsys, "study", "run", "--config", study_toml(max_consecutive_failures=0), "--storage", f"sqlite:///{db}",
            fragments=["study.max_consecutive_failures=0", "1..100000"])
    with pytest.raises(SystemExit) as e:
        cli.main(["study", "run", "--config", str(study_toml()), "--storage", f"sqlite:///{db}",
                  "--max-consecutive-failures", "0"])
    assert e.value.code == 2 and "--max-consecutive-failures" in capsys.readouterr().err
    assert studies_in(db) == []


def test_study_too_big_for_memory_is_refused_before_it_exists(study_toml, tmp_path, cli):
    toml = tmp_path / "big.toml"
    toml.write_text(study_toml().read_text().replace("layer_sizes = [30, 8, 2]", "layer_sizes = [30, 65536, 65536, 2]"))
    db = tmp_path / "s.db"
    fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{db}", "--out", tmp_path / "out"),
                  "needs about", "GiB", "available")
    assert studies_in(db) == [] and not (tmp_path / "out").exists()


# -- 2. a study remembers its config ---------------------------------------------------------------------------
def test_resuming_with_another_dataset_or_chip_is_refused(study_toml, tmp_path, cli):
    toml = study_toml()
    db = tmp_path / "s.db"
    sc = _sc(toml, tmp_path)
    _add_trials(open_study(sc), 2)
    other = tmp_path / "digits.toml"
    other.write_text(toml.read_text().replace('"breast_cancer"', '"digits"')
                     .replace("layer_sizes = [30, 8, 2]", "layer_sizes = [64, 8, 10]").replace("lanes = 4", "lanes = 2"))
    err = fails_cleanly(cli("study", "run", "--config", other, "--storage", f"sqlite:///{db}",
                                  "--out", tmp_path / "out2"),
                        "study 't'", "created with another config", "data.dataset 'breast_cancer' -> 'digits'",
                        "chip.layer_sizes [30, 8, 2] -> [64, 8, 10]", "chip.lanes 4 -> 2", "--new")
    assert "steps" not in err
    assert not (tmp_path / "out2").exists()                 # a refused run makes no folder
    assert len(optuna.load_study(study_name="t", storage=f"sqlite:///{db}").trials) == 2
    # what may change between runs: the search space, the count, the sampler, the output folder
    same = tmp_path / "same.toml"
    same.write_text(toml.read_text().replace("n_trials = 3", "n_trials = 5\nsampler = \"tpe\"")
                    .replace("epochs = [2, 3]", "epochs = [2, 4]"))
    open_study(_sc(same, tmp_path, out=str(tmp_path / "elsewhere")))
    # --new starts again under the same name (here in-process: no training needed to see the identity)
    study = open_study(StudyConfig.load(other, {"storage": f"sqlite:///{db}"}), new=True)
    assert study.trials == [] and study.user_attrs["spikeloop_config"]["data.dataset"] == "digits"


# -- 3. memory storage -----------------------------------------------------------------------------------------
def test_memory_storage_with_jobs_is_refused_and_runs_in_process(study_toml, tmp_path, capsys, cli):
    fails_cleanly(cli("study", "run", "--config", study_toml(), "--storage", "sqlite:///:memory:",
                            "--jobs", "2", "--out", tmp_path / "out"),
                  "--jobs 2", "in-memory storage cannot be shared")
    assert not (tmp_path / "out").exists()
    refused(capsys, "study", "report", "--config", study_toml(), "--storage", "sqlite:///:memory:",
            fragments=["in-memory storage"])
    code, out, err = _main(capsys, "study", "run", "--config", study_toml(), "--storage", "sqlite:///:memory:",
                           "--n-trials", "1", "--out", tmp_path / "out")
    assert code == 0 and "Traceback" not in err, err[-2000:]
    assert "1 complete" in out and (tmp_path / "out" / "report" / "report.md").exists()


# -- 4. MH ranges that conflict with iters ---------------------------------------------------------------------
@pytest.mark.parametrize("mh, fragments", [
    ("iters = [40, 60]\nburn_in = [10, 50]", ["search.mh.burn_in=[10, 50]", "search.mh.iters=[40, 60]",
                                             "allowed burn_in range is 0..39"]),
    ("iters = [40, 60]\nthin = [1, 30]", ["search.mh.thin=[1, 30]", "burn_in=iters/2", "allowed thin range is 1..20"]),
    ("iters = [40, 60]\nburn_in = [0, 35]\nthin = 10", ["search.mh.thin=10", "burn_in=[0, 35]",
                                                       "allowed thin range is 1..5"]),
    ("iters = 8", ["search.mh.thin=5 (default)", "allowed thin range is 1..4"]),
])
def test_mh_ranges_that_conflict_with_iters_are_refused_at_load(mh, fragments, study_toml, tmp_path, capsys, cli):
    toml = tmp_path / "mh.toml"
    toml.write_text(study_toml().read_text().replace("iters = [40, 60]", mh))
    db = tmp_path / "s.db"
    refused(capsys, "study", "run", "--config", toml, "--storage", f"sqlite:///{db}", "--out", tmp_path / "out",
            fragments=fragments)
    assert not db.exists() and not (tmp_path / "out").exists()
    if "burn_in = [10, 50]" in mh:               # and through a new interpreter, once
        fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{db}"), *fragments)


def test_mh_ranges_that_fit_are_accepted(tiny_toml):
    text = tiny_toml.read_text()
    for mh in ("iters = [40, 60]\nburn_in = [0, 30]\nthin = [1, 10]", "iters = [40, 60]\nburn_in = 39\nthin = 1"):
        sc = StudyConfig.from_toml(text.replace("iters = [40, 60]", mh))
        assert sc.method_ranges["mh"]["burn_in"].high <= 39


# -- 5. no feasible trial -------------------------------------------------------------------------------------
def test_weighted_study_without_a_feasible_trial_reports(tiny_toml, tmp_path, monkeypatch, capsys):
    import tune.objective
    toml = tmp_path / "w.toml"
    toml.write_text(tiny_toml.read_text().replace("[study]\n", '[study]\nobjective = "weighted"\n'))

    def infeasible(trial, sc, data):              # every design is worse than the majority class
        for k, v in {"val_accuracy": 0.3, "latency_us": 3.0, "fps_per_watt": 1e5, "firing_rate": 0.1,
                     "synops": 10.0}.items():
            trial.set_user_attr(k, v)
        trial.suggest_categorical("method", ["bptt"])
        trial.set_constraint("beats_majority_class", 0.3)
        return 0.3
    monkeypatch.setattr(tune.objective, "objective", infeasible)
    storage = f"sqlite:///{tmp_path}/s.db"
    code, out, err = _main(capsys, "study", "run", "--config", toml, "--storage", storage, "--out", tmp_path / "out")
    _one_line_no_traceback(err, code, 0, "no feasible trial yet (3 complete")
    md = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "no feasible trial yet" in md and "3 completed trials, 0 feasible" in md
    r = spikeloop("study", "report", "--config", toml, "--storage", storage, "--report-dir", tmp_path / "rep")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().count("\n") == 0 and "no feasible trial yet" in r.stderr
    assert (tmp_path / "rep" / "trials.csv").read_text().count("\n") == 4


# -- 6. storage paths ------------------------------------------------------------------------------------------
def test_storage_under_a_file_a_directory_or_mistyped(study_toml, tmp_path, capsys, cli):
    toml = study_toml()
    blocker = tmp_path / "some_file"
    blocker.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{blocker}/x.db",
                            "--out", tmp_path / "out"), f"{blocker} is a file, not a directory")
    for cmd in (["run", "--out", tmp_path / "out"], ["report"], ["export", "0"], ["dashboard"]):
        refused(capsys, "study", *cmd, "--config", toml, "--storage", f"sqlite:///{blocker}/x.db",
                fragments=[f"{blocker} is a file, not a directory"])
        refused(capsys, "study", *cmd, "--config", toml, "--storage", f"sqlite:///{folder}",
                fragments=[f"{folder} is a directory"])
        refused(capsys, "study", *cmd, "--config", toml, "--storage", "sqlit:///x.db",
                fragments=["cannot be opened as an Optuna database"])
    assert not (tmp_path / "out").exists() and list(folder.iterdir()) == []
    # a run refused for its --out makes no database (nor its folder); one refused for its storage no --out
    refused(capsys, "study", "run", "--config", toml, "--storage", f"sqlite:///{tmp_path}/new/s.db",
            "--out", blocker / "out", fragments=[f"--out {blocker / 'out'}", "cannot write there"])
    refused(capsys, "study", "run", "--config", toml, "--storage", "sqlite:////proc/new/s.db",
            "--out", tmp_path / "out" / "deeper", fragments=["sqlite:////proc/new/s.db"])
    assert not (tmp_path / "new").exists() and not (tmp_path / "out").exists()
    for cmd in (["report"], ["export", "0"], ["dashboard"]):
        refused(capsys, "study", *cmd, "--config", toml, "--storage", f"sqlite:///{tmp_path}/typo/s.db",
                fragments=["does not exist"])
    assert not (tmp_path / "typo").exists() and not (tmp_path / "runs").exists()


def test_report_export_dashboard_in_an_empty_folder_create_nothing(tiny_toml, tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_cleanly(spikeloop("study", "report", "--config", tiny_toml, cwd=empty), "sqlite:///runs/spikeloop.db",
                  "does not exist")
    monkeypatch.chdir(empty)
    for cmd in (["report"], ["export", "0"], ["dashboard"], ["report", "--name", "typo"]):
        refused(capsys, "study", *cmd, "--config", tiny_toml, fragments=["sqlite:///runs/spikeloop.db", "does not exist"])
    assert list(empty.iterdir()) == []
    # a mistyped --name in an existing storage: no report folder either
    sc = _sc(tiny_toml, tmp_path)
    _add_trials(open_study(sc), 1)
    for cmd in (["report"], ["export", "0"], ["dashboard"]):
        refused(capsys, "study", *cmd, "--config", tiny_toml, "--storage", sc.storage, "--name", "typo",
                fragments=["no such study"])
    assert list(empty.iterdir()) == []


# -- 7. a full disk, a read-only database ---------------------------------------------------------------------
def test_report_onto_a_full_disk_is_one_line(tiny_toml, tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    sc = _sc(tiny_toml, tmp_path)
    _add_trials(open_study(sc), 2)
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "pareto.csv").symlink_to("/dev/full")          # every write there: ENOSPC, as on a full disk
    r = spikeloop("study", "report", "--config", tiny_toml, "--storage", sc.storage, "--report-dir", rep)
    err = r.stderr.strip()
    assert r.returncode == 1 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "No space left on device" in err and str(rep) in err
    assert len(optuna.load_study(study_name="t", storage=sc.storage).trials) == 2


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 2 MB tmpfs (root and a kernel that lets this container mount one), unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()[:100]}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill_disk(mnt: Path, block: int = 4096) -> None:
    """Fill the file system at ``mnt`` to its last ``block`` (a file ``filler`` that grows until ENOSPC)."""
    with open(mnt / "filler", "ab", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * block)
        except OSError:
            pass


def test_sqlite_commit_onto_a_full_disk_is_one_line_and_keeps_completed_trials(tiny_toml, tmp_path, tiny_tmpfs,
                                                                                monkeypatch, capsys):
    import tune.objective
    storage = f"sqlite:///{tiny_tmpfs}/s.db"
    sc = _sc(tiny_toml, tmp_path, storage=storage)
    _add_trials(open_study(sc), 2)
    fill_disk(tiny_tmpfs, block=512)

    def chatty(trial, sc, data):                             # a trial that records a lot
        for k in range(200):
            trial.set_user_attr(f"attr{k}", "x" * 500)
        return 0.9, 3.0, 1e5
    monkeypatch.setattr(tune.objective, "objective", chatty)
    code, out, err = _main(capsys, "study", "run", "--config", tiny_toml, "--storage", storage, "--n-trials", "5",
                           "--out", tmp_path / "out")
    lines = _one_line_no_traceback(err, code, 1, f"storage {storage}", "disk is full", "completed trials are kept")
    assert len(lines) == 1, lines
    (tiny_tmpfs / "filler").unlink()
    done = optuna.load_study(study_name="t", storage=storage).get_trials(states=(TrialState.COMPLETE,))
    assert len(done) >= 2


@pytest.fixture
def immutable(tmp_path):
    """Make a file read-only for root too (``chattr +i``); undone afterwards."""
    made = []

    def make(path: Path) -> Path:
        r = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"chattr +i not available: {r.stderr.decode().strip()[:100]}")
        made.append(path)
        return path
    yield make
    for p in made:
        subprocess.run(["chattr", "-i", str(p)], capture_output=True)


def test_read_only_database_reports_exports_and_refuses_a_run(tiny_toml, tmp_path, immutable, capsys):
    sc = _sc(tiny_toml, tmp_path)
    art = tmp_path / "art"
    _save_result(art)
    _add_trials(open_study(sc), 2, artefacts=art)
    db = immutable(tmp_path / "s.db")
    if os.access(db, os.W_OK) and _writable(db):
        pytest.skip("the immutable flag does not stop writes here")
    code, out, err = _main(capsys, "study", "report", "--config", tiny_toml, "--storage", sc.storage,
                           "--report-dir", tmp_path / "rep")
    assert code == 0 and err == "" and (tmp_path / "rep" / "report.md").exists()
    code, out, err = _main(capsys, "study", "export", "0", "--config", tiny_toml, "--storage", sc.storage,
                           "--dest", tmp_path / "exp")
    assert code == 0 and err == "" and (tmp_path / "exp" / "spikeloop_core.v").exists()
    fails_cleanly(spikeloop("study", "run", "--config", tiny_toml, "--storage", sc.storage, "--n-trials", "4",
                            "--out", tmp_path / "out"), f"storage {sc.storage}", "readonly database")
    assert len(optuna.load_study(study_name="t", storage=sc.storage).trials) == 2


def _writable(path: Path) -> bool:
    try:
        with open(path, "ab"):
            return True
    except OSError:
        return False


def _save_result(art: Path):
    """A real trial's artefacts (a tiny trained-looking result) in ``art``."""
    import numpy as np
    from hw.config import ChipConfig
    from train.common import TrainResult
    cfg = ChipConfig(layer_sizes=(30, 8, 2), lanes=4)
    r = TrainResult(method="bptt", chip_config=cfg.to_dict(),
                    chip_weights=[np.zeros((30, 8), np.int64), np.zeros((8, 2), np.int64)],
                    float_weights=[np.zeros((30, 8)), np.zeros((8, 2))], software_accuracy=0.5, chip_accuracy=0.5,
                    chip_val_accuracy=0.5)
    r.save(art / "result")


# -- 8. corrupt artefacts -------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncated_json", "garbage_npz", "missing_array", "wrong_shape"])
def test_export_of_corrupt_artefacts_names_the_file(damage, tiny_toml, tmp_path, capsys):
    import numpy as np
    art = tmp_path / "art"
    _save_result(art)
    if damage == "truncated_json":
        (art / "result.json").write_text((art / "result.json").read_text()[:40])
    elif damage == "garbage_npz":
        (art / "result.npz").write_bytes(b"PK\x03\x04 not a zip")
    elif damage == "missing_array":
        np.savez(art / "result.npz", w0=np.zeros((30, 8), np.int64), f0=np.zeros((30, 8)))
    else:
        np.savez(art / "result.npz", w0=np.zeros((3, 8), np.int64), w1=np.zeros((8, 2), np.int64),
                 f0=np.zeros((3, 8)), f1=np.zeros((8, 2)))
    sc = _sc(tiny_toml, tmp_path)
    _add_trials(open_study(sc), 1, artefacts=art)
    argv = ("study", "export", "0", "--config", tiny_toml, "--storage", sc.storage, "--dest", tmp_path / "exp")
    fragments = ("trial 0", f"{art / 'result'}", "cannot be read")
    refused(capsys, *argv, fragments=fragments)
    if damage == "truncated_json":               # and through a new interpreter, once
        fails_cleanly(spikeloop(*argv), *fragments)


# -- 9. a killed or paused worker ---------------------------------------------------------------------------
def _slow_toml(study_toml, tmp_path, iters=3000):
    toml = tmp_path / "slow.toml"
    toml.write_text(study_toml().read_text().replace("iters = [40, 60]", f"iters = [{iters}, {iters}]")
                    .replace('methods = ["bptt", "mh"]', 'methods = ["mh"]'))
    return toml


def _running(storage: str, name: str = "t"):
    try:
        return [t for t in optuna.load_study(study_name=name, storage=storage).trials if t.state == TrialState.RUNNING]
    except Exception:
        return []


def _claimed(storage: str, name: str = "t"):
    """RUNNING trials a worker has taken on: each has sent a heartbeat (Optuna's stale check skips a trial
    without one), so a kill from here on is a lapse the other workers see."""
    from tune.study import CLAIM_ATTR
    return [t for t in _running(storage, name) if CLAIM_ATTR in t.system_attrs]


def test_a_killed_worker_is_named_and_the_report_still_written(study_toml, tmp_path):
    """The survivor may itself be starved past the short grace period on a loaded machine: it then drops
    that trial's result and goes on (test_heartbeat.py), so the assertions allow extra FAILED trials. With
    ``--jobs 2`` the command is worker 0 and trains at once; the forked worker joins once the fork server has
    imported (on a loaded machine, after the command's first trials), so the study has trials enough for it
    to take one, and the kill waits until it has."""
    from tune.study import CLAIM_ATTR
    toml = _slow_toml(study_toml, tmp_path, iters=1500)
    storage = f"sqlite:///{tmp_path}/s.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPIKELOOP_HEARTBEAT_S="1", SPIKELOOP_GRACE_S="3")
    proc = subprocess.Popen([sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml), "--storage",
                             storage, "--out", str(tmp_path / "out"), "--jobs", "2", "--n-trials", "8"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900             # generous: only a hang reaches it
    forked = []
    while time.monotonic() < deadline and not forked and proc.poll() is None:     # the forked worker is in a trial
        time.sleep(0.5)
        forked = [t.system_attrs[CLAIM_ATTR] for t in _claimed(storage) if t.system_attrs[CLAIM_ATTR] != proc.pid]
    workers = settled_workers(proc.pid, deadline)
    assert len(workers) == 1 and forked == workers, proc.communicate(timeout=600)   # --jobs 2: the command is worker 0
    victim = workers[0]
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=1800)
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 0, (out[-1000:], err[-2000:])
    assert f"study worker 1 (pid {victim}) was killed by SIGKILL" in err
    assert (tmp_path / "out" / "report" / "report.md").exists() and "report:" in out
    states = [t.state for t in optuna.load_study(study_name="t", storage=storage).trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 8 and TrialState.FAIL in states


def test_workers_end_when_the_command_is_killed(study_toml, tmp_path):
    """SIGKILL to `study run --jobs 2` (no clean-up runs): its workers, forks of a fork server rather than its
    children, notice and end themselves, and so does the fork server."""
    from tests.tune.test_cli_errors import _alive, _children
    toml = _slow_toml(study_toml, tmp_path, iters=100000)
    storage = f"sqlite:///{tmp_path}/s.db"
    proc = subprocess.Popen([sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml), "--storage",
                             storage, "--out", str(tmp_path / "out"), "--jobs", "2", "--n-trials", "2"],
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900             # generous: only a hang reaches it
    while time.monotonic() < deadline and len(_running(storage)) < 2:
        time.sleep(0.5)
    workers = settled_workers(proc.pid, deadline)
    helpers = _children(proc.pid)                 # the fork server (and multiprocessing's resource tracker)
    helpers += [p for h in helpers for p in _children(h) if p not in workers]     # the report process
    assert len(workers) == 1                      # --jobs 2: the command is worker 0, and one forked worker
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 300
    while any(_alive(w) for w in workers + helpers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers + helpers)


def test_a_paused_runner_whose_trial_was_failed_ends_cleanly(study_toml, tmp_path):
    toml = _slow_toml(study_toml, tmp_path, iters=1500)
    storage = f"sqlite:///{tmp_path}/s.db"
    """No wall clock: the grace period (600 s) is never reached by waiting; while the runner is stopped its
    heartbeat is set a day back in the storage, and another process fails its trial as stale."""
    from tests.tune.test_heartbeat import lapse
    from tune.study import heartbeat_lapses
    toml = _slow_toml(study_toml, tmp_path, iters=1500)
    storage = f"sqlite:///{tmp_path}/s.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT), SPIKELOOP_HEARTBEAT_S="300", SPIKELOOP_GRACE_S="600")
    proc = subprocess.Popen([sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml), "--storage",
                             storage, "--out", str(tmp_path / "out"), "--n-trials", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900             # generous: only a hang reaches it
    while time.monotonic() < deadline and not _claimed(storage):     # in its trial, with a heartbeat sent
        time.sleep(0.3)
    running = _claimed(storage)
    assert running, proc.communicate(timeout=600)
    for attempt in range(10):
        os.kill(proc.pid, signal.SIGSTOP)
        try:              # its heartbeat is set back a day; another process fails its trial as stale
            lapse(storage, tmp_path / "s.db", running[0]._trial_id, timeout=10)
            break
        except Exception:     # stopped while it held the database's write lock: let it go on and stop it again
            if attempt == 9:
                raise
        finally:
            os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=1800)
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == 0, (out[-1000:], err[-2000:])
    assert "was failed by another process while this one was still running it" in err
    study = optuna.load_study(study_name="t", storage=storage)
    states = [t.state for t in study.trials]
    assert states[0] == TrialState.FAIL and states.count(TrialState.COMPLETE) == 1
    assert heartbeat_lapses(study)["discarded"] == [0]


# -- 10. study names -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../evil", "a\nb"])
def test_unsafe_study_names_are_refused(name, study_toml, tmp_path, capsys, cli):
    db = tmp_path / "s.db"
    toml = tmp_path / "n.toml"
    toml.write_text(study_toml().read_text().replace('name = "t"', f'name = {name!r}'.replace("'", '"')))
    fails_cleanly(cli("study", "run", "--config", toml, "--storage", f"sqlite:///{db}"),
                  "study.name=", "allowed are 1..100 characters")
    for cmd in (["run"], ["report"], ["export", "0"], ["dashboard"]):
        refused(capsys, "study", *cmd, "--config", study_toml(), "--storage", f"sqlite:///{db}", "--name", name,
                fragments=["--name=", "allowed are 1..100 characters"])
    assert studies_in(db) == [] and not (tmp_path.parent / "evil").exists()


@pytest.mark.parametrize("name", ["a/b", ".hidden", "x" * 101, "tab\there", "", "spaced name", "-rf"])
def test_study_name_rule(name, tiny_toml):
    from hw.config import ConfigError
    with pytest.raises(ConfigError, match="study.name="):
        StudyConfig.from_toml(tiny_toml.read_text().replace('name = "t"', f"name = {name!r}".replace("'", '"')
                                                           .replace("\t", "\\t")))


def test_default_output_folder_follows_the_name(tiny_toml, tmp_path):
    sc = StudyConfig.load(tiny_toml, {"name": "exp-1.b"})
    assert sc.out == Path("runs/exp-1.b").resolve()
    assert StudyConfig.load(tiny_toml, {"name": "exp", "out": str(tmp_path / "o")}).out == tmp_path / "o"


@pytest.mark.parametrize("field, value", [("storage", "sqlite:///a\x01b.db"), ("storage", "sqlite:///a\nb.db"),
                                          ("out", "runs/x\ty")])
def test_control_characters_in_storage_or_out_are_refused(field, value, tiny_toml):
    from hw.config import ConfigError
    with pytest.raises(ConfigError, match=f"study.{field}=.*control characters"):
        StudyConfig.load(tiny_toml, {field: value})


def test_an_sqlite_database_of_something_else_is_left_untouched(tiny_toml, tmp_path, capsys):
    import sqlite3
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE accounts (id INTEGER)")
    con.commit()
    con.close()
    before = db.read_bytes()
    for cmd in (["run", "--out", tmp_path / "out"], ["report"], ["export", "0"], ["dashboard"]):
        refused(capsys, "study", *cmd, "--config", tiny_toml, "--storage", f"sqlite:///{db}",
                fragments=["SQLite database of something else", "['accounts']", "left untouched"])
    assert db.read_bytes() == before and not (tmp_path / "out").exists()


def test_an_output_folder_in_a_loop_of_symbolic_links_is_one_line(study_toml, tmp_path, capsys):
    """``[study] out`` (or ``hardware.synth_cache``) through a loop of symbolic links: one line naming the key,
    exit 2, no database made (pathlib's resolve raised RuntimeError, a traceback)."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    db = tmp_path / "s.db"
    for out in (tmp_path / "a", tmp_path / "a" / "sub"):
        refused(capsys, "study", "run", "--config", study_toml(out=str(out), storage=f"sqlite:///{db}"),
                fragments=[f"[study] out {out}", "loop of symbolic links"])
    toml = study_toml("\n[hardware]\nsynth_cache = \"%s\"\n" % (tmp_path / "a"), storage=f"sqlite:///{db}")
    refused(capsys, "study", "run", "--config", toml, "--out", tmp_path / "o",
            fragments=[f"hardware.synth_cache {tmp_path / 'a'}", "loop of symbolic links"])
    assert not db.exists() and not (tmp_path / "o").exists()
