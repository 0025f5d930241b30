"""Place-and-route as an Optuna study shared by workers (tune/pnr.py): two ``spikeloop dse --worker`` processes
on one queue — a PostgreSQL server on loopback, and an SQLite file — one killed with SIGKILL mid-build; in the
end every build is done exactly once. The builds are a file-synchronised stand-in (tests/tune/pnr_fake.py)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from optuna.trial import TrialState

from hw.config import ChipConfig
from tests.tune import pnr_fake
from tests.tune.test_postgres import postgres_url  # noqa: F401  (the loopback PostgreSQL fixture)
from tune.dse import rtl_hash, synth_all
from tune.pnr import build_key, enqueue, open_queue, results, work

ROOT = Path(__file__).resolve().parents[2]
SIZES = (8, 4, 2)
CFGS = [ChipConfig(layer_sizes=SIZES, lanes=l) for l in (1, 2, 4)]
SEEDS = (1, 2)
TARGET = "ecp5-25k"


def _until(cond, what: str, timeout: float = 120.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _worker(sync: Path, storage: str, out: Path) -> subprocess.Popen:
    env = dict(os.environ, SPIKELOOP_HEARTBEAT_S="1", SPIKELOOP_GRACE_S="2", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tests.tune.pnr_fake", str(sync), "dse", "--worker", "--storage",
                             storage, "--out", str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _two_workers_one_killed(storage: str, tmp_path: Path):
    sync = tmp_path / "sync"
    pnr_fake.install(sync)                  # this process too (the final synth_all must build nothing)
    builds = [(c, TARGET, s) for c in CFGS for s in SEEDS]
    q = open_queue(storage)
    assert enqueue(q, builds, rtl_hash()) == 6
    assert enqueue(q, builds, rtl_hash()) == 0                 # the grid is queued once
    # two machines: separate output folders (separate on-disk caches), one queue
    a, b = _worker(sync, storage, tmp_path / "a"), _worker(sync, storage, tmp_path / "b")
    started = lambda: sorted(p.name for p in (sync / "started").iterdir())
    _until(lambda: len(started()) == 2, "both workers to be mid-build")
    killed = next(n for n in started() if n.endswith(f".{a.pid}"))
    a.send_signal(signal.SIGKILL)
    assert a.wait(timeout=60) == -signal.SIGKILL
    (sync / "go").touch()
    out_b = b.communicate(timeout=180)[0]
    assert b.returncode == 0, out_b
    assert "no build left queued or running" in out_b

    names = {pnr_fake.build_name(c, t, s) for c, t, s in builds}
    done = sorted(p.name.rsplit(".", 1)[0] for p in (sync / "done").iterdir())
    assert sorted(done) == sorted(names)                       # every build finished exactly once
    assert all(p.name.endswith(f".{b.pid}") for p in (sync / "done").iterdir())
    restarted = [p.name for p in (sync / "started").iterdir() if p.name.startswith(killed.rsplit(".", 1)[0])]
    assert sorted(restarted) == sorted([killed, f"{killed.rsplit('.', 1)[0]}.{b.pid}"])   # retried by the survivor

    trials = open_queue(storage).get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 6 and len({t.user_attrs["build"] for t in complete}) == 6
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    dead = [t for t in trials if t.state == TrialState.FAIL]
    assert len(dead) == 1 and dead[0].user_attrs["worker"].endswith(f":{a.pid}")
    retry = [t for t in complete if t.system_attrs.get("failed_trial") == dead[0].number]
    assert len(retry) == 1 and retry[0].user_attrs["build"] == dead[0].user_attrs["build"]
    recs = results(open_queue(storage))
    assert {r["fmax_mhz"] for r in recs.values()} == {101.0, 102.0}
    assert all(r["status"] == "ok" and r["seed"] in SEEDS for r in recs.values())

    # the killed worker's cache: no entry and no torn file; the survivor's: one valid record per build
    assert not list((tmp_path / "a").rglob("*.json")) and not list((tmp_path / "a").rglob("*.tmp"))
    cached = list((tmp_path / "b" / "synth-cache" / TARGET).glob("*.json"))
    assert len(cached) == 6 and all(json.loads(p.read_text())["status"] == "ok" for p in cached)
    assert not list((tmp_path / "b").rglob("*.tmp"))

    # a sweep over the same builds on a third machine takes them from the study: nothing is built again
    recs = synth_all(CFGS, [TARGET], tmp_path / "c" / "synth-cache", progress=False, seeds=SEEDS, storage=storage)
    assert len(recs) == 6 and all(r["cached"] for r in recs.values())
    assert len(list((sync / "done").iterdir())) == 6


def test_two_workers_on_postgres_one_killed_mid_build(postgres_url, tmp_path):  # noqa: F811
    _two_workers_one_killed(postgres_url, tmp_path)


def test_two_workers_on_sqlite_one_killed_mid_build(tmp_path):
    _two_workers_one_killed(f"sqlite:///{tmp_path / 'queue.db'}", tmp_path)


def test_duplicate_claims_yield_and_lost_builds_are_requeued(tmp_path, monkeypatch):
    """Two machines enqueueing the same grid at the same moment: the later trial of a build yields to the earlier
    (FAILED, ``duplicate_of``) and builds nothing; a build whose trial failed outside the build is queued again."""
    import optuna
    sync = tmp_path / "sync"
    pnr_fake.install(sync)
    (sync / "go").touch()
    q = open_queue(f"sqlite:///{tmp_path / 'q.db'}")
    rtl = rtl_hash()
    enqueue(q, [(CFGS[0], TARGET, 1)], rtl)
    key = build_key(CFGS[0].structure_hash, TARGET, 1, rtl)
    a = q.trials[0].user_attrs
    q.enqueue_trial({}, user_attrs=a)                  # the race: the same build queued twice
    assert work(q, tmp_path / "cache", wait=False) == 1
    t = q.trials
    assert [x.state for x in t] == [TrialState.COMPLETE, TrialState.FAIL] and t[1].user_attrs["duplicate_of"] == 0
    assert len(list((sync / "done").iterdir())) == 1
    # a build whose only trial failed (e.g. Ctrl-C) is queued again by a worker waiting for it
    enqueue(q, [(CFGS[1], TARGET, 1)], rtl)
    key2 = build_key(CFGS[1].structure_hash, TARGET, 1, rtl)
    lost = q.trials[-1]
    q._storage.set_trial_state_values(lost._trial_id, TrialState.RUNNING)
    q.tell(lost.number, state=TrialState.FAIL)
    assert work(q, tmp_path / "cache", keys=[key, key2]) == 1
    assert set(results(q)) == {key, key2}
    assert q.trials[-1].user_attrs["requeued_from"] == lost.number
    assert isinstance(q, optuna.Study)


def test_worker_with_a_bad_storage_is_one_line(tmp_path, capsys):
    from tune.cli import main
    bad = tmp_path / "not.db"
    bad.write_text("not a database")
    assert main(["dse", "--worker", "--storage", f"sqlite:///{bad}", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists but is not an SQLite database" in err
    assert bad.read_text() == "not a database"


def test_worker_on_a_misspelt_storage_or_study_creates_nothing(tmp_path, cli):
    """A worker only takes builds a sweep queued: a storage file that does not exist, or a study not in it, is one
    line naming it (not a new empty database and a worker that found nothing)."""
    missing = tmp_path / "typo.db"
    r = cli("dse", "--worker", "--storage", f"sqlite:///{missing}", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "does not exist" in r.stderr, r.stderr
    assert not missing.exists() and not (tmp_path / "o").exists()
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    open_queue(queue)
    r = cli("dse", "--worker", "--storage", queue, "--study", "spikeloop-pnrr", "--out", tmp_path / "o")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "--study 'spikeloop-pnrr': no such build study" in r.stderr and "spikeloop-pnr'" in r.stderr
    r = cli("dse", "--worker", "--storage", queue, "--out", tmp_path / "o")
    assert r.returncode == 0 and "built 0 here" in r.stdout, r.stderr


def test_a_claim_without_a_heartbeat_is_requeued(tmp_path):
    """A worker killed between claiming a trial and its first heartbeat (Optuna's stale check skips such a trial):
    once it is older than the grace period it is failed and its build queued again."""
    from tune.pnr import _claim, _fail_silent_claims
    q = open_queue(f"sqlite:///{tmp_path / 'q.db'}")
    enqueue(q, [(CFGS[0], TARGET, 1)], rtl_hash())
    claimed = _claim(q)
    assert claimed is not None and _claim(q) is None                 # one claim only
    _fail_silent_claims(q, grace=3600)
    assert q.trials[0].state == TrialState.RUNNING                     # young: left alone
    _fail_silent_claims(q, grace=-1)
    t = q.trials
    assert [x.state for x in t] == [TrialState.FAIL, TrialState.WAITING]
    assert t[1].user_attrs["build"] == t[0].user_attrs["build"] and t[1].system_attrs["failed_trial"] == 0


def _claim_all(url, name, conn):
    import optuna
    from tune.pnr import _claim
    from tune.study import storage_for
    study = optuna.load_study(study_name=name, storage=storage_for(url))
    got = []
    while (t := _claim(study)) is not None:
        got.append(t.number)
    conn.send(got)


def test_two_processes_never_claim_the_same_waiting_trial(tmp_path):
    """SQLite study storages begin every transaction with the write lock: Optuna's read-then-update of a trial's
    state is atomic across processes, so two workers draining one queue claim disjoint trials (before, both could
    read WAITING and both set RUNNING: the same build twice, the second `tell` refused)."""
    import multiprocessing as mp
    import optuna
    from tune.study import storage_for
    url, name = f"sqlite:///{tmp_path / 'q.db'}", "queue"
    study = optuna.create_study(study_name=name, storage=storage_for(url))
    for i in range(60):
        study.enqueue_trial({}, user_attrs={"i": i}, skip_if_exists=False)
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe() for _ in range(2)]
    procs = [ctx.Process(target=_claim_all, args=(url, name, b)) for _, b in pipes]
    for p in procs:
        p.start()
    claims = [a.recv() for a, _ in pipes]
    for p in procs:
        p.join(60)
    numbers = claims[0] + claims[1]
    assert sorted(numbers) == list(range(60)), (claims[0], claims[1])
