"""Heartbeat lapses of live workers, made deterministic: a lapse is a heartbeat timestamp set back in the storage
(no sleeping for a grace period), with heartbeat and grace periods far longer than the test, so no real lapse can
happen on a loaded machine."""
import sqlite3
import time

import optuna
import pytest
from optuna.trial import TrialState

import tune.study
from hw.config import ConfigError
from tune.config import StudyConfig


def _wait(cond, what: str, timeout: float = 600.0):
    """Wait until ``cond()`` (a condition, not a duration); the deadline is generous: only a hang reaches it."""
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)


def lapse(url: str, db, trial_id: int, name: str = "t", timeout: float = 60) -> None:
    """Another process finds ``trial_id``'s heartbeat a day old and fails the trial as stale. The worker beats
    twice at a trial's start, once itself (before its objective) and once from Optuna's heartbeat thread, whose
    first beat can land after the set-back on a loaded machine: then the trial is still fresh, and the set-back is
    made again (the thread's next beat is an hour away)."""
    other = optuna.load_study(study_name=name, storage=tune.study.storage_for(url))
    for _ in range(20):
        con = sqlite3.connect(db, timeout=timeout)
        try:
            has_beat = lambda: con.execute("SELECT COUNT(*) FROM trial_heartbeats WHERE trial_id = ?",
                                           (trial_id,)).fetchone()[0] > 0
            _wait(has_beat, "the trial's first heartbeat")
            with con:
                con.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 day') WHERE trial_id = ?",
                            (trial_id,))
        finally:
            con.close()
        optuna.storages.fail_stale_trials(other)
        if other._storage.get_trial(trial_id).state != TrialState.RUNNING:
            break
        time.sleep(0.2)
    assert other._storage.get_trial(trial_id).state == TrialState.FAIL


@pytest.fixture
def long_beats(monkeypatch):
    """Heartbeat and grace periods no test run reaches: only a lapse the test makes happens."""
    monkeypatch.setattr(tune.study, "HEARTBEAT_S", 3600)
    monkeypatch.setattr(tune.study, "GRACE_S", 7200)


@pytest.mark.parametrize("when", ["during", "after"])
def test_a_live_worker_whose_trial_lapsed_drops_its_result(when, study_toml, tmp_path, monkeypatch, capsys,
                                                           long_beats):
    """The worker is alive but another process failed its trial as stale: ``during`` the trial (the objective
    then meets a finished trial: Optuna refuses its writes) or ``after`` its work (Optuna refuses the result).
    The worker drops the result with one line, does not count a failure, runs the study to its count, and the
    report counts the lapse and the duplicate work."""
    import tune.objective
    from tune.report import write_report
    from tune.study import heartbeat_lapses, run_study
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    sc = StudyConfig.load(study_toml(max_consecutive_failures=1),
                          {"storage": url, "out": str(tmp_path / "out"), "n_trials": 2})
    real = tune.objective.objective
    calls = []

    def objective(trial, sc, data):
        calls.append(trial.number)
        if len(calls) > 1:
            return real(trial, sc, data)
        if when == "during":
            lapse(url, db, trial._trial_id)
            return real(trial, sc, data)
        try:
            return real(trial, sc, data)              # a result, or a pruned or failed trial
        finally:
            lapse(url, db, trial._trial_id)

    monkeypatch.setattr(tune.objective, "objective", objective)
    study = run_study(sc, baseline=False)
    err = capsys.readouterr().err
    states = [t.state for t in study.trials]
    assert states[0] == TrialState.FAIL and sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 2
    assert len(states) == 3, states
    assert "trial 0 was failed by another process while this one was still running it" in err, err
    assert "its result is dropped" in err and "Traceback" not in err
    assert "cpu_s" not in study.trials[0].user_attrs                # nothing written after the lapse
    h = heartbeat_lapses(study)
    assert h["lapsed"] == [0] and h["discarded"] == [0]
    assert study.user_attrs["heartbeat_lapsed_discarded:0"]["worker"] == 0
    done = study.trials[1:]
    assert all(t.user_attrs["heartbeat_max_gap_s"] >= 0 for t in done)
    md = write_report(study, tmp_path / "report")["markdown"].read_text()
    assert "1 trial failed for a lapsed heartbeat and run again (trials 0; grace 7200 s)" in md
    assert "1 of them were still running in a live worker, which dropped its result: duplicate work" in md


def test_a_claim_without_a_heartbeat_is_failed_after_the_grace_period(tmp_path, long_beats):
    """A worker killed between claiming a trial and its first heartbeat leaves a RUNNING trial that Optuna's
    stale check skips (no heartbeat): the study would wait for it forever. It is failed once older than the
    grace period; a trial a worker has marked as its own is left to the heartbeat check."""
    from tune.study import CLAIM_ATTR, fail_silent_claims, heartbeat_lapses, storage_for
    study = optuna.create_study(study_name="c", storage=storage_for(f"sqlite:///{tmp_path}/c.db"))
    silent, mine = study.ask(), study.ask()
    study._storage.set_trial_system_attr(mine._trial_id, CLAIM_ATTR, 1)
    fail_silent_claims(study, grace=3600)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2
    fail_silent_claims(study, grace=-1)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING]
    assert heartbeat_lapses(study)["lapsed"] == [silent.number]


def test_heartbeat_gaps_are_measured(tmp_path, monkeypatch, long_beats):
    """The longest silence between two heartbeats of a trial, as this process wrote them (a fake clock)."""
    from tune.study import heartbeat_gap, storage_for
    now = [100.0]
    monkeypatch.setattr(tune.study, "_clock", lambda: now[0])
    study = optuna.create_study(study_name="g", storage=storage_for(f"sqlite:///{tmp_path}/g.db"))
    tid = study.ask()._trial_id
    assert heartbeat_gap(study._storage, tid) is None
    for step in (0.0, 10.0, 47.5, 10.0):
        now[0] += step
        study._storage.record_heartbeat(tid)
    assert heartbeat_gap(study._storage, tid) == 47.5
    now[0] += 60.0                                   # the silence since the last heartbeat counts too
    assert heartbeat_gap(study._storage, tid) == 60.0


@pytest.mark.parametrize("env, words", [
    ({"SPIKELOOP_GRACE_S": "abc"}, "SPIKELOOP_GRACE_S='abc': not a whole number"),
    ({"SPIKELOOP_HEARTBEAT_S": "0"}, "SPIKELOOP_HEARTBEAT_S=0: allowed range is 1..86400"),
    ({"SPIKELOOP_HEARTBEAT_S": "10", "SPIKELOOP_GRACE_S": "15"}, "SPIKELOOP_GRACE_S=15: must be at least twice"),
])
def test_bad_heartbeat_settings_are_refused(env, words):
    with pytest.raises(ConfigError, match=None) as e:
        tune.study.heartbeat_settings(env)
    assert words in str(e.value)
    assert tune.study.heartbeat_settings({}) == (tune.study.DEFAULT_HEARTBEAT_S, tune.study.DEFAULT_GRACE_S)
    assert tune.study.heartbeat_settings({"SPIKELOOP_HEARTBEAT_S": "1", "SPIKELOOP_GRACE_S": "2"}) == (1, 2)


def test_bad_heartbeat_setting_is_one_line_from_the_command(study_toml, tmp_path, monkeypatch, capsys):
    from tune.cli import main
    monkeypatch.setenv("SPIKELOOP_GRACE_S", "soon")
    code = main(["study", "run", "--config", str(study_toml()), "--storage", f"sqlite:///{tmp_path}/s.db",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "SPIKELOOP_GRACE_S='soon'" in err, err
    assert not (tmp_path / "s.db").exists()


def test_a_bad_heartbeat_setting_is_refused_by_any_storage_opener(tmp_path, monkeypatch):
    """`spikeloop dse` workers and reports open storages through storage_for too."""
    monkeypatch.setenv("SPIKELOOP_HEARTBEAT_S", "-3")
    with pytest.raises(ConfigError, match="SPIKELOOP_HEARTBEAT_S=-3: allowed range is 1..86400"):
        tune.study.storage_for(f"sqlite:///{tmp_path}/x.db")
    assert not (tmp_path / "x.db").exists()
