"""Place-and-route as a distributed work queue: an Optuna study whose trials are builds.

Every build — one structure (``ChipConfig.structure_hash``) on one part with one nextpnr placement seed (or
nextpnr's default seed) — is one trial of the study ``spikeloop-pnr`` in an Optuna RDB storage (an SQLite file by
default; a PostgreSQL URL lets any number of machines share it). :func:`enqueue` adds a sweep's builds as WAITING
trials once (builds already waiting, running or done are not added again); :func:`work` — what each
``spikeloop dse`` process runs, on any machine — claims a waiting trial atomically (the storage's WAITING ->
RUNNING update succeeds for one process only), builds it through :func:`tune.dse.synth_cached` (its local on-disk
cache first) and stores the build's record in the trial's user attributes (``record``, plus ``status``,
``fmax_mhz`` and ``logic_cells`` for a glance in optuna-dashboard); :func:`results` reads them back.

A running trial sends a heartbeat every ``heartbeat`` seconds from a thread. A worker that dies mid-build (killed,
crashed machine) stops sending it; after ``grace`` seconds any other worker marks its trial FAILED and
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` puts a copy back in the queue (its
``failed_trial`` / ``retry_history`` system attributes name the dead one), which the next free worker builds. A
trial that finds its build already done, or claimed by an earlier trial (two machines enqueueing the same sweep at
the same moment), ends FAILED with the user attribute ``duplicate_of`` and builds nothing. So every build
completes exactly once in the study, whatever the number of workers and whichever of them die.
"""
from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import optuna
from optuna.trial import TrialState

from hw.config import ChipConfig, ConfigError

STUDY = "spikeloop-pnr"


def default_storage(out: str | Path) -> str:
    """The SQLite file a sweep's queue lives in by default: ``<out>/pnr.db``."""
    return f"sqlite:///{Path(out).resolve() / 'pnr.db'}"


def build_key(structure_hash: str, target: str, seed: int | None, rtl: str) -> str:
    """``<part>/<structure hash>/seed<k>/rtl<hash>`` (``seed-default``: nextpnr's own seed; ``rtl``:
    :func:`tune.dse.rtl_hash`, so a build of other RTL is done again) — a build's identity."""
    return f"{target}/{structure_hash}/seed{'-default' if seed is None else seed}/rtl{rtl[:16]}"


def open_queue(storage: str, name: str = STUDY, heartbeat: int | None = None, grace: int | None = None) -> optuna.Study:
    """The build study in ``storage`` (created if missing), with heartbeats and the retry of stale trials."""
    import warnings
    from tune.study import MEMORY_URLS, storage_for
    if storage in MEMORY_URLS:
        raise ConfigError(f"--storage {storage}: the build queue needs a database that worker processes share "
                          "(an sqlite:///file.db or a postgresql:// URL), not memory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback()
    st = storage_for(storage, heartbeat, grace, stale_callback=retry)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(study_name=name, storage=st, direction="minimize", load_if_exists=True)
    except ValueError as e:
        raise ConfigError(f"--study {name!r} in {storage}: {e}") from e


def _key(t) -> str | None:
    return t.user_attrs.get("build")


def enqueue(study: optuna.Study, builds: Iterable[tuple[ChipConfig, str, int | None]], rtl: str) -> int:
    """Add ``(config, part, seed)`` builds of RTL ``rtl`` not yet waiting, running or done; returns how many were
    added."""
    have = {_key(t) for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING, TrialState.RUNNING,
                                                                       TrialState.COMPLETE))}
    added = 0
    for cfg, target, seed in builds:
        key = build_key(cfg.structure_hash, target, seed, rtl)
        if key in have:
            continue
        have.add(key)
        s = cfg.structure().to_dict()
        s = {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()}
        study.enqueue_trial({}, user_attrs={"build": key, "structure": s, "target": target, "seed": seed,
                                                  "rtl": rtl})
        added += 1
    return added


def _fail_silent_claims(study: optuna.Study, grace: float) -> None:
    """Fail (and requeue) RUNNING trials that never sent a heartbeat and started more than ``grace`` s ago: a
    worker killed between claiming a trial and its first heartbeat (Optuna's stale check skips those)."""
    storage = study._storage
    now = None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if storage.get_trial_system_attrs(t._trial_id).get("pnr_heartbeat_started") == t._trial_id:
            continue
        now = now or datetime.datetime.now()          # Optuna stamps datetime_start with this clock
        if t.datetime_start is not None and (now - t.datetime_start).total_seconds() > grace:
            try:
                if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                    storage.get_heartbeat_stale_trial_callback()(study, storage.get_trial(t._trial_id))
            except optuna.exceptions.UpdateFinishedTrialError:
                pass


def _claim(study: optuna.Study):
    """Atomically move the oldest WAITING trial to RUNNING for this process; its FrozenTrial, or None."""
    storage = study._storage
    for t in sorted(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)), key=lambda t: t.number):
        try:
            if storage.set_trial_state_values(t._trial_id, TrialState.RUNNING):
                return storage.get_trial(t._trial_id)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


class _Heartbeat:
    def __init__(self, storage, trial_id: int, every: float):
        self.storage, self.trial_id, self.every = storage, trial_id, every
        self.stop = threading.Event()
        storage.record_heartbeat(trial_id)
        storage.set_trial_system_attr(trial_id, "pnr_heartbeat_started", trial_id)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(self.every):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:          # a busy or briefly unreachable database: beat again next period
                pass

    def close(self):
        self.stop.set()
        self.thread.join()


def _requeue_lost(study: optuna.Study, keys: Sequence[str]) -> None:
    """Queue again each of ``keys`` that is neither done nor waiting nor running (its last trial failed: a
    worker stopped with Ctrl-C, or an error outside the build)."""
    trials = study.get_trials(deepcopy=False)
    alive = {_key(t) for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE)}
    for key in set(keys) - alive:
        last = [t for t in trials if _key(t) == key]
        if last:
            a = last[-1].user_attrs
            study.enqueue_trial({}, user_attrs={k: a[k] for k in ("build", "structure", "target", "seed", "rtl")
                                                if k in a} | {"requeued_from": last[-1].number})


def _duplicate_of(study: optuna.Study, key: str, number: int) -> int | None:
    """An earlier claim on the same build (or a finished one), which this trial yields to."""
    for t in study.get_trials(deepcopy=False):
        if t.number != number and _key(t) == key and (
                t.state == TrialState.COMPLETE or (t.state in (TrialState.WAITING, TrialState.RUNNING)
                                                   and t.number < number)):
            return t.number
    return None


def work(study: optuna.Study, cache: Path, synth: Callable | None = None, wait: bool = True,
         keys: Sequence[str] | None = None, progress: Callable[[int], None] | None = None,
         poll: float = 1.0) -> int:
    """Build queued trials until the queue is empty; returns how many this process built.

    With ``wait``, a worker with nothing to claim stays while other trials are RUNNING (one of them may belong to a
    worker that died, and come back to the queue when its heartbeat lapses) and returns when none is left
    running; with ``keys``, it stops as soon as those builds are all done (other queued work is left to others),
    calling ``progress(how many of them are done)`` as it goes."""
    from tune.dse import synth_cached
    storage = study._storage
    every = max(1, getattr(storage, "heartbeat_interval", None) or 10)
    grace = getattr(storage, "grace_period", None) or 2 * every
    built = 0
    worker = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        optuna.storages.fail_stale_trials(study)
        _fail_silent_claims(study, grace)
        if keys is not None:
            done = {_key(t) for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))} & set(keys)
            if progress:
                progress(len(done))
            if len(done) == len(set(keys)):
                return built
        frozen = _claim(study)
        if frozen is None and keys is not None:
            _requeue_lost(study, keys)
            frozen = _claim(study)
        if frozen is None:
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if wait and (running or keys is not None):
                time.sleep(poll)
                continue
            return built
        tid, key = frozen._trial_id, _key(frozen)
        beat = _Heartbeat(storage, tid, every)
        try:
            storage.set_trial_user_attr(tid, "worker", worker)
            dup = _duplicate_of(study, key, frozen.number) if key else None
            if key is None or dup is not None:
                storage.set_trial_user_attr(tid, "duplicate_of" if key else "not_a_build",
                                            dup if key else "no build in this trial's user attributes")
                beat.close()
                study.tell(frozen.number, state=TrialState.FAIL)
                continue
            a = frozen.user_attrs
            cfg = ChipConfig.from_dict(a["structure"])
            rec = synth_cached(cfg, a["target"], Path(cache), synth, seed=a["seed"])
            for k in ("status", "fmax_mhz", "logic_cells"):
                if k in rec:
                    storage.set_trial_user_attr(tid, k, rec[k])
            storage.set_trial_user_attr(tid, "record", rec)
            beat.close()
            study.tell(frozen.number, [float(rec.get("seconds", 0.0))])
            built += not rec.get("cached")
        except BaseException:
            beat.close()
            try:
                study.tell(frozen.number, state=TrialState.FAIL)   # Ctrl-C, a bug: failed now, not stale later
            except Exception:
                pass
            raise


def results(study: optuna.Study) -> dict[str, dict]:
    """Build key -> the record of its COMPLETE trial."""
    return {_key(t): t.user_attrs["record"] for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if _key(t) and "record" in t.user_attrs}
