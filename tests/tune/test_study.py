"""Studies end to end on SQLite: run, resume after a kill, parallel workers, report, export, pruning."""
import os
import signal
import subprocess
import sys
import time

import pytest
from pathlib import Path
from optuna.trial import TrialState

from tune.config import StudyConfig
from tune.report import _rows, export_trial, write_report
from tune.study import open_study, run_study


def cfg(tiny_toml, tmp_path, **kw):
    return StudyConfig.load(tiny_toml, {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out")} | kw)


def finished(study):
    """Trials that count toward n_trials: complete, or pruned — here only as dead networks (silent output)."""
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert all("dead network" in t.user_attrs["dead_network"] for t in pruned)
    return study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_run_report_export(tiny_toml, tmp_path):
    sc = cfg(tiny_toml, tmp_path)
    study = run_study(sc)
    assert len(finished(study)) == 3             # complete, or pruned as a dead network (tiny trainings)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert done[0].user_attrs.get("baseline") and done[0].params["beta"] == 0.95      # snnTorch defaults first
    for t in done:
        acc, lat, fpw = t.values
        assert 0 <= acc <= 1 and lat > 0 and fpw > 0
        assert os.path.exists(os.path.join(t.user_attrs["artefacts"], "result.npz"))
        assert t.user_attrs["synops_nonzero"] <= t.user_attrs["synops"]
        assert abs(t.user_attrs["activation_sparsity"] - t.user_attrs["nb_activation_sparsity"]) < 0.05
    paths = write_report(study, tmp_path / "rep")
    for k in ("pareto_png", "firing_png", "csv", "trials_csv", "markdown"):
        assert paths[k].stat().st_size > 0
    assert "beside NeuroBench" in paths["markdown"].read_text()
    exp = export_trial(study, done[0].number, tmp_path / "exp", nir=True)
    assert "module spikeloop_core" in exp["verilog"].read_text()
    assert exp["nir"].name == "model.nir" and exp["nir"].stat().st_size > 0
    assert len(run_study(sc).trials) == 3                                              # nothing missing: no new trials


def test_two_jobs_share_one_sqlite_study(tiny_toml, tmp_path):
    sc = cfg(tiny_toml, tmp_path, n_trials=4)
    study = run_study(sc, jobs=2)
    assert len(finished(study)) == 4 and len({t.number for t in study.trials}) == len(study.trials)


def test_with_two_jobs_the_command_is_worker_0_and_every_worker_has_its_share_of_threads(tiny_toml, tmp_path):
    """``--jobs 2``: the command trains from the start (the fork server's imports run beside its first trials,
    not before them), and every trial ran with torch at 1 thread and BLAS/OpenMP at ``cores // jobs``, also in
    a second study of the same process."""
    from tune.study import CLAIM_ATTR, thread_share
    run_study(cfg(tiny_toml, tmp_path / "first", n_trials=2), jobs=2)
    sc = cfg(tiny_toml, tmp_path, n_trials=4)
    study = run_study(sc, jobs=2)
    done = finished(study)
    assert len(done) == 4
    assert any(t.system_attrs.get(CLAIM_ATTR) == os.getpid() for t in done)      # trials the command ran itself
    share = thread_share(2)
    for t in done:
        pools = t.user_attrs["threads"]
        assert pools["torch"] == 1 and pools["blas_openmp"] in (None, share), pools


def _probe(path, state):
    """A worker's view of the command: folder, an environment variable, the heartbeat period."""
    import json
    import tune.study
    tune.study._adopt(state)
    from pathlib import Path
    Path(path).write_text(json.dumps([os.getcwd(), os.environ.get("SPIKELOOP_PROBE"), tune.study.HEARTBEAT_S]))


def test_workers_preload_what_trials_import():
    import importlib
    from tune.study import WORKER_PRELOAD
    for name in WORKER_PRELOAD:               # the fork server skips a name it cannot import, silently
        importlib.import_module(name)


def test_forked_workers_take_the_commands_folder_and_environment(tiny_toml, tmp_path, monkeypatch):
    """Workers are forks of a fork server started once per process, with the folder and environment of
    that moment; they take on the command's current ones, as spawned processes would."""
    import json
    from tune.study import parent_state, worker_context
    ctx = worker_context()
    first = ctx.Process(target=os.getpid)            # the server starts here, before the changes below
    first.start()
    first.join()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIKELOOP_PROBE", "seen")
    monkeypatch.setenv("SPIKELOOP_HEARTBEAT_S", "7")
    p = ctx.Process(target=_probe, args=(str(tmp_path / "probe.json"), parent_state()))
    p.start()
    p.join()
    assert json.loads((tmp_path / "probe.json").read_text()) == [str(tmp_path), "seen", 7]
    sc = StudyConfig.load(tiny_toml, {"storage": "sqlite:///rel.db", "out": str(tmp_path / "out"), "n_trials": 2})
    study = run_study(sc, jobs=2)                    # a relative storage: the workers open the command's file
    assert len(finished(study)) == 2 and (tmp_path / "rel.db").exists()


def test_killed_study_resumes_keeping_completed_trials(tiny_toml, tmp_path, monkeypatch):
    import tune.study
    monkeypatch.setattr(tune.study, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tune.study, "GRACE_S", 2)
    slow = tiny_toml.read_text().replace("iters = [40, 60]", "iters = [3000, 3000]").replace(
        'methods = ["bptt", "mh"]', 'methods = ["mh"]')
    toml = tmp_path / "slow.toml"
    toml.write_text(slow)
    env = dict(os.environ, SPIKELOOP_HEARTBEAT_S="1", SPIKELOOP_GRACE_S="2")
    cmd = [sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml),
           "--storage", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "out"), "--n-trials", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sc = StudyConfig.load(toml, {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out")})
    from tune.study import CLAIM_ATTR

    def claimed_running() -> bool:                    # read-only: the stopped command may hold the write lock
        import sqlite3
        try:
            con = sqlite3.connect(f"file:{tmp_path}/s.db?mode=ro", uri=True, timeout=1)
        except sqlite3.Error:
            return False                              # not created yet
        try:
            return con.execute("SELECT COUNT(*) FROM trials JOIN trial_system_attributes USING (trial_id) "
                               "WHERE state = 'RUNNING' AND key = ?", (CLAIM_ATTR,)).fetchone()[0] > 0
        except sqlite3.Error:
            return False                              # its tables not created yet
        finally:
            con.close()

    deadline = time.monotonic() + 900                 # generous: only a hang reaches it, not a loaded machine
    while time.monotonic() < deadline:                # wait until a trial is running and has sent a heartbeat
        time.sleep(0.5)
        proc.send_signal(signal.SIGSTOP)              # frozen: a trial seen running is still running at the kill,
        if claimed_running():                         # however long this process takes to send it
            break
        proc.send_signal(signal.SIGCONT)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = open_study(sc).trials
    assert any(t.state == TrialState.RUNNING for t in before)
    # no waiting here: the rerun waits until the dead trial's heartbeat lapses (grace 2 s), however long it takes
    fast = StudyConfig.load(tiny_toml, {"storage": f"sqlite:///{tmp_path}/s.db", "out": str(tmp_path / "out"),
                                        "n_trials": 2})
    fast = fast.__class__(**{**fast.__dict__, "methods": ("mh",), "name": sc.name})
    study = run_study(fast)
    states = [t.state for t in study.trials]
    assert TrialState.FAIL in states                  # the interrupted trial, marked failed
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 2     # requested count reached
    kept = [t.number for t in before if t.state == TrialState.COMPLETE]
    assert all(study.trials[n].state == TrialState.COMPLETE for n in kept)


def test_weighted_objective_reports_intermediate_values(tiny_toml, tmp_path):
    sc = cfg(tiny_toml, tmp_path, n_trials=2)
    sc = sc.__class__(**{**sc.__dict__, "objective": "weighted", "name": "w"})
    study = run_study(sc)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert all(t.intermediate_values for t in done)
    assert len(study.directions) == 1
    rows = {r["trial"]: r for r in _rows(done, multi=False)}
    for t in done:                     # the report shows the measured latency in µs, not the cycle count
        assert rows[t.number]["latency_us"] == pytest.approx(t.user_attrs["cycles"] / sc.device.clock_mhz)


@pytest.mark.parametrize("sampler", ["random", "gp"])
def test_random_and_gp_samplers_run_a_study(tiny_toml, tmp_path, sampler):
    from tune.study import make_sampler
    sc = cfg(tiny_toml, tmp_path, n_trials=5, sampler=sampler)
    assert type(make_sampler(sc)).__name__ == {"random": "RandomSampler", "gp": "GPSampler"}[sampler]
    study = run_study(sc, baseline=False)
    assert len(finished(study)) == 5
    # the random sampler draws different designs per worker seed, and the same ones for the same seed
    if sampler == "random":
        again = run_study(cfg(tiny_toml, tmp_path / "b", n_trials=5, sampler=sampler), baseline=False)
        assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_study_searching_update_runs_both_schedules(tiny_toml, tmp_path):
    """[search] update = ["all", "touched"] with overlap searched too: the baseline keeps [chip] update ("all"), an
    enqueued "touched" trial with overlap off trains and is measured on that chip — no trial fails."""
    import json

    from hw.config import ChipConfig
    tiny_toml.write_text(tiny_toml.read_text().replace('methods = ["bptt", "mh"]', 'methods = ["bptt"]')
                         .replace("[search]\n", "[search]\nupdate = ['all', 'touched']\noverlap = [true, false]\n"))
    sc = cfg(tiny_toml, tmp_path, n_trials=1)
    study = run_study(sc)
    (first,) = study.trials
    assert first.params["update"] == "all" and first.user_attrs.get("baseline")
    study.enqueue_trial({k: v for k, v in first.params.items() if k != "overlap"} | {"update": "touched",
                                                                                      "overlap": False})
    study = run_study(cfg(tiny_toml, tmp_path, n_trials=2))
    assert [t.params["update"] for t in study.trials] == ["all", "touched"]
    assert not study.get_trials(states=(TrialState.FAIL,))
    assert len(finished(study)) == 2
    touched = study.trials[1]
    assert touched.params["overlap"] is False                # drawn for either schedule
    assert touched.state == TrialState.COMPLETE, touched.user_attrs    # the baseline's design, seeded: trains
    art = json.loads((Path(touched.user_attrs["artefacts"]) / "result.json").read_text())   # measured on it
    chip = ChipConfig.from_dict(art["chip_config"])
    assert (chip.update, chip.overlap) == ("touched", False) and touched.user_attrs["cycles"] > 0


def test_study_searching_wavefront_runs_both_touched_chips(tiny_toml, tmp_path):
    """[search] update = ["touched"], wavefront = [false, true]: the baseline keeps [chip] wavefront (off), an
    enqueued wavefront trial trains and is measured on the wavefront chip (a membrane memory per layer, no
    overlap) — no trial fails."""
    import json

    from hw.config import ChipConfig
    tiny_toml.write_text(tiny_toml.read_text().replace('methods = ["bptt", "mh"]', 'methods = ["bptt"]')
                         .replace("[search]\n", "[search]\nupdate = ['touched']\nwavefront = [false, true]\n"))
    sc = cfg(tiny_toml, tmp_path, n_trials=1)
    study = run_study(sc)
    (first,) = study.trials
    assert first.params["wavefront"] is False and first.user_attrs.get("baseline")
    study.enqueue_trial(first.params | {"wavefront": True})
    study = run_study(cfg(tiny_toml, tmp_path, n_trials=2))
    assert [t.params["wavefront"] for t in study.trials] == [False, True]
    assert not study.get_trials(states=(TrialState.FAIL,)) and len(finished(study)) == 2
    wave = study.trials[1]
    assert wave.state == TrialState.COMPLETE, wave.user_attrs
    art = json.loads((Path(wave.user_attrs["artefacts"]) / "result.json").read_text())
    chip = ChipConfig.from_dict(art["chip_config"])
    assert (chip.update, chip.wavefront, chip.overlap, chip.state_banks) == ("touched", True, False, chip.num_layers)
    assert wave.user_attrs["cycles"] > 0


def _bar_then_wait(conn):
    """A worker as the study's: takes on the command's state, draws a progress bar, waits to be stopped."""
    from tqdm import tqdm
    from tune.study import _adopt
    _adopt(None)
    bar = tqdm(total=2, desc="worker")
    bar.update()
    conn.send("drawn")
    conn.recv()                              # never comes: the worker is terminated here


def test_a_stopped_worker_leaves_no_leaked_semaphore_warning():
    """A worker ended by a signal (Ctrl-C, SIGTERM, its command killed) after drawing a progress bar: the command's
    resource tracker must not print "leaked semaphore objects" under the command's one-line message (tqdm's
    first bar used to create a multiprocessing lock in every worker)."""
    script = ("import sys\nfrom tune.study import worker_context\n"
              "from tests.tune.test_study import _bar_then_wait\n"
              "if __name__ == '__main__':\n"
              "    ctx = worker_context()\n"
              "    ctx.set_forkserver_preload([])\n"
              "    a, b = ctx.Pipe()\n"
              "    p = ctx.Process(target=_bar_then_wait, args=(b,))\n"
              "    p.start()\n"
              "    assert a.recv() == 'drawn'\n"
              "    p.terminate()\n"
              "    p.join()\n"
              "    print('exit', p.exitcode, file=sys.stderr)\n")
    r = _run_script(script, timeout=300)
    assert "exit -15" in r.stderr, r.stderr
    assert "leaked" not in r.stderr, r.stderr


def _run_script(script: str, **kw) -> subprocess.CompletedProcess:
    """``script`` in a fresh interpreter from the repository root (so it imports the tests), output captured."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
                          env=os.environ | {"PYTHONPATH": root}, **kw)


def _sigint_is_the_default(conn, state):
    """A worker as the study's: after taking on the command's state, does Ctrl-C raise KeyboardInterrupt (at a
    safe point: tune.study._stop_on_signal, the command's own)?"""
    import signal
    from tune.study import _adopt, _stop_on_signal
    _adopt(state)
    conn.send(signal.getsignal(signal.SIGINT) is _stop_on_signal)


def test_ctrl_c_while_the_fork_server_imports_is_no_traceback():
    """Ctrl-C (SIGINT to the whole process group) in the seconds the fork server spends importing torch & co.:
    the server must not print its import's KeyboardInterrupt traceback under the command's one line (it ignores
    SIGINT only once its imports are done), and its workers still take Ctrl-C as the command does."""
    script = ("import os, signal, sys\n"
              "from tune.study import parent_state, start_fork_server, worker_context\n"
              "from tests.tune.test_study import _sigint_is_the_default\n"
              "if __name__ == '__main__':\n"
              "    signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal (a background\n"
              "    state = parent_state()                       # job of a script starts with Ctrl-C ignored)\n"
              "    start_fork_server(2)\n"
              "    signal.signal(signal.SIGINT, signal.SIG_IGN)     # this script outlives the Ctrl-C\n"
              "    os.killpg(0, signal.SIGINT)                      # while the server imports its preload\n"
              "    ctx = worker_context()\n"
              "    a, b = ctx.Pipe()\n"
              "    p = ctx.Process(target=_sigint_is_the_default, args=(b, state))\n"
              "    p.start()\n"
              "    print('worker default', a.recv(), file=sys.stderr)\n"
              "    p.join()\n")
    r = _run_script(script, timeout=600, start_new_session=True)
    assert "worker default True" in r.stderr, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "KeyboardInterrupt" not in r.stderr, r.stderr[-3000:]


def test_the_command_with_two_workers_leaves_a_whole_wal_file_and_one_thread_each(tiny_toml, tmp_path):
    """`spikeloop study run --jobs 2` as a user runs it (a fresh process, its quick exit): the storage is in WAL
    mode, its -wal/-shm companions are folded back when the command ends (the file is whole on its own), the
    report is written, and both workers' trials ran with one thread per pool."""
    import json
    import sqlite3
    db = tmp_path / "s.db"
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, "-m", "tune.cli", "study", "run", "--config", str(tiny_toml), "--storage",
                        f"sqlite:///{db}", "--out", str(tmp_path / "out"), "--n-trials", "3", "--jobs", "2"],
                       capture_output=True, text=True, timeout=600, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(root)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "report" / "report.md").exists() and "report:" in r.stdout
    assert sorted(p.name for p in tmp_path.glob("s.db*")) == ["s.db"]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        pools = [json.loads(v) for (v,) in con.execute(
            "SELECT value_json FROM trial_user_attributes WHERE key = 'threads'")]
    finally:
        con.close()
    assert pools and all(p["torch"] == 1 and p.get("numba", 1) == 1 and p["blas_openmp"] in (1, None) for p in pools)
    assert sorted(p.name for p in tmp_path.glob("s.db*")) == ["s.db"]


def test_report_process_writes_the_report_and_the_command_imports_none_of_it(tiny_toml, tmp_path):
    """``study run --jobs N``: the report is written by tune.report.ReportProcess, a fork of the fork server
    that imported matplotlib and Optuna's fANOVA (scikit-learn) beside the workers; the command imports neither,
    and the report is the one write_report gives. A report process that cannot write leaves it to the caller."""
    sc = cfg(tiny_toml, tmp_path, n_trials=2)
    run_study(sc)
    code = ("import sys, json\n"
            "from pathlib import Path\n"
            "from tune.config import StudyConfig\n"
            "from tune.report import ReportProcess\n"
            "from tune.workers import start_fork_server\n"
            "start_fork_server(2)\n"
            f"sc = StudyConfig.load({str(tiny_toml)!r}, {{'storage': {sc.storage!r}, 'out': {str(tmp_path / 'out')!r}}})\n"
            "r = ReportProcess(sc); r.start()\n"
            f"paths = r.write(Path({str(tmp_path / 'by_process')!r}))\n"
            "print(json.dumps({'paths': {k: str(v) for k, v in (paths or {}).items()},\n"
            "                  'imported': sorted(m for m in ('matplotlib', 'sklearn') if m in sys.modules)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert out.returncode == 0, out.stderr[-3000:]
    import json
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["imported"] == [] and set(got["paths"]) >= {"markdown", "pareto_png", "csv", "trials_csv"}
    here = write_report(open_study(sc), tmp_path / "here")
    assert Path(got["paths"]["csv"]).read_text() == here["csv"].read_text()
    assert Path(got["paths"]["trials_csv"]).read_text() == here["trials_csv"].read_text()

    from tune.report import ReportProcess
    broken = ReportProcess(cfg(tiny_toml, tmp_path / "nowhere", n_trials=2))   # no such study: it cannot write
    broken.start()
    assert broken.write(tmp_path / "none") is None and not (tmp_path / "none" / "report.md").exists()


def test_a_ctrl_c_whose_interrupt_python_swallowed_still_stops_the_study(tiny_toml, tmp_path, monkeypatch):
    """The study's SIGINT/SIGTERM handler raises KeyboardInterrupt wherever the main thread is; inside a weakref
    callback or a ``__del__`` Python prints "Exception ignored" and goes on: the study then ran to its end (its
    workers already ended) with exit code 0. The stop must still come, at the latest after the running trial."""
    import tune.objective
    real = tune.objective.objective
    calls = []

    class Dying:
        def __del__(self):                          # the handler's exception is lost here, as in a weakref callback
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)

    def objective(trial, sc, data):
        calls.append(trial.number)
        if len(calls) == 1:
            Dying()
        return real(trial, sc, data)

    monkeypatch.setattr(tune.objective, "objective", objective)
    ignored = []                                    # what Python would print as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", ignored.append)
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        run_study(cfg(tiny_toml, tmp_path))
    assert calls == [0]
    assert not ignored                              # nor its traceback under the command's line
    from tune.study import _SIGNALLED
    assert _SIGNALLED == []                         # the next study in this process starts afresh


def test_a_worker_that_cannot_be_started_is_one_line(tiny_toml, tmp_path, monkeypatch, capsys):
    """The fork server gone while the starter thread waits for it (Ctrl-C's clean-up stops it; or killed): no
    thread traceback under the command's line; the study goes on with the workers it has."""
    import tune.study

    class Unstartable:
        pid = exitcode = None

        def start(self):
            raise EOFError("unexpected EOF")

    class Context:
        Process = staticmethod(lambda *a, **k: Unstartable())

        def get_start_method(self):
            return "forkserver"

    monkeypatch.setattr(tune.study, "worker_context", lambda: Context())
    monkeypatch.setattr(tune.study, "STARTER_GRACE_S", 0.0, raising=False)     # no stop comes: say so at once
    study = run_study(cfg(tiny_toml, tmp_path, n_trials=2), jobs=2)
    assert len(finished(study)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "study worker 1 could not be started (EOFError: unexpected EOF)" in err, err


def test_closing_a_busy_report_process_does_not_wait_for_it():
    """A report process still importing (a study that ended without a report to write) or writing (Ctrl-C during
    the report) is ended at once: the command waited up to 5 s for it (measured: 1.4 s after a study whose
    trials all failed, 5 s after a Ctrl-C during the report)."""
    from tune.report import ReportProcess

    class Busy:                                     # never ends by itself
        exitcode = None

        def __init__(self):
            self.calls = []

        def join(self, timeout=None):
            self.calls.append(("join", timeout))

        def terminate(self):
            self.calls.append(("terminate",))
            self.exitcode = -15

    class Conn:
        def send(self, value):
            pass

        def close(self):
            pass

    r, busy = ReportProcess(None), Busy()
    r._proc, r._conn = busy, Conn()
    r.close()
    assert busy.calls[0][0] == "join" and busy.calls[0][1] <= 0.5 and ("terminate",) in busy.calls
    assert r._proc is None


def test_opening_the_study_again_leaves_the_commands_sqlite_locks(tiny_toml, tmp_path):
    """Every opening of an SQLite storage checks its file; a plain open() and close() of it dropped all the POSIX
    locks of this process's open connections (worker 0 opens the study the command has open): a worker that then
    closed its last connection deleted the -wal and -shm files under the command, whose later commits (the
    re-check) no other process saw (the report process wrote its report without them)."""
    import sqlite3
    sc = cfg(tiny_toml, tmp_path, n_trials=1)
    study = open_study(sc)
    study.set_user_attr("before", 1)
    open_study(sc)                                  # the file checked again while this process has it open
    other = ("import sqlite3, sys\n"
             "c = sqlite3.connect(sys.argv[1])\n"
             "print(sorted(r[0] for r in c.execute('SELECT key FROM study_user_attributes')))\n"
             "c.close()\n")
    db = str(tmp_path / "s.db")
    subprocess.run([sys.executable, "-c", other, db], check=True, capture_output=True)     # a worker ending
    study.set_user_attr("after", 2)
    seen = subprocess.run([sys.executable, "-c", other, db], check=True, capture_output=True, text=True).stdout
    assert "'after'" in seen, seen
    assert sorted(p.name for p in tmp_path.glob("s.db*")) == ["s.db", "s.db-shm", "s.db-wal"]
    with pytest.raises(Exception, match="exists but is not an SQLite database"):       # still refused, as before
        (tmp_path / "x.db").write_bytes(b"SQLite format 3\x00 but garbage after it" * 4)
        open_study(cfg(tiny_toml, tmp_path, storage=f"sqlite:///{tmp_path}/x.db"))


def test_a_stop_the_check_raised_is_not_raised_again_by_its_pending_retry(monkeypatch):
    """A stop signal in Optuna's code is put off (a SIGALRM retry, tune.study._interrupt); if the study's own check
    (_raise_if_signalled: the objective's start, the study loop) raises its KeyboardInterrupt first, that is its
    delivery: the pending retry must not raise a second one in the clean-up (it did inside the progress bar's close,
    whose line then ran into the command's one line: test_a_signal_in_optunas_bookkeeping_stops_after_it, once in a
    loaded run)."""
    import threading
    import tune.study
    from tune.study import _DELIVERED, _SIGNALLED, _arm_retry, _disarm_retry, _raise_if_signalled
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are the main thread's")
    real, fired, again = tune.study._interrupt, [], []

    def interrupt(frame):
        fired.append(True)
        real(frame)
    monkeypatch.setattr(tune.study, "_interrupt", interrupt)
    _SIGNALLED.append("SIGTERM")
    _DELIVERED[0] = False                           # as the handler leaves it when it put the stop off
    try:
        _arm_retry(0.01)
        with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
            _raise_if_signalled()
        deadline = time.monotonic() + 600           # a condition, not a duration: until the retry has run
        try:
            while not fired and time.monotonic() < deadline:
                sum(range(1000))                    # Python code, where the retry's handler runs
        except KeyboardInterrupt as e:
            again.append(e)
    finally:
        _disarm_retry()
        _SIGNALLED.clear()
    assert fired and not again
