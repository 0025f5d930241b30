"""Create, run and resume Optuna studies on any Optuna RDB storage (SQLite file by default).

Trials send heartbeats; a trial whose process died (killed, crashed machine) is marked FAILED the next
time the study is run, and every completed trial is kept. ``n_trials`` is the study's total: every
worker (``jobs`` processes here, or the same command on other machines sharing an RDB storage) runs
trials until that many are COMPLETE or PRUNED; a trial started in a race past the count steps aside
as FAILED with a ``surplus`` user attribute.

A worker stops after ``[study] max_consecutive_failures`` failed trials in a row; a study remembers the config it
was created with (:meth:`tune.config.StudyConfig.identity`) and refuses another; :func:`storage_for` is the one
opener of a storage (read-only for report, export and dashboard). The rules are in ``docs/guides/studies.md``.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import time
import weakref
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from hw.config import ConfigError
from tune.config import StudyConfig
from tune.errors import StudyStopped
from tune.workers import (THREAD_ENV, WORKER_PRELOAD, _thread_env, start_fork_server,  # noqa: F401 (re-exported)
                          stop_fork_server, thread_share, worker_context)

#: a running trial's heartbeat period and the silence after which it counts as dead (s). The grace period is
#: long against a starved process's scheduling delay: at 30 s, a live worker on a loaded 2-core machine (load
#: 11-20, nice 10) went silent long enough to have its trial failed and run again (docs/guides/studies.md,
#: "Heartbeats"); each trial records its longest measured heartbeat gap (``heartbeat_max_gap_s``).
DEFAULT_HEARTBEAT_S = 10
DEFAULT_GRACE_S = 120


def heartbeat_settings(environ=None) -> tuple[int, int]:
    """(heartbeat period, grace period) in s from ``SPIKELOOP_HEARTBEAT_S`` / ``SPIKELOOP_GRACE_S``; a bad value
    is a ConfigError naming the variable and its allowed range (grace >= 2 x period, Optuna's advice)."""
    environ = os.environ if environ is None else environ
    got = {}
    for name, default in (("SPIKELOOP_HEARTBEAT_S", DEFAULT_HEARTBEAT_S), ("SPIKELOOP_GRACE_S", DEFAULT_GRACE_S)):
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            got[name] = default
            continue
        try:
            got[name] = int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r}: not a whole number of seconds; allowed range is 1..86400") from None
        if not 1 <= got[name] <= 86400:
            raise ConfigError(f"{name}={raw}: allowed range is 1..86400 (seconds)")
    beat, grace = got["SPIKELOOP_HEARTBEAT_S"], got["SPIKELOOP_GRACE_S"]
    if grace < 2 * beat:
        raise ConfigError(f"SPIKELOOP_GRACE_S={grace}: must be at least twice SPIKELOOP_HEARTBEAT_S={beat} "
                          f"(allowed range {2 * beat}..86400), or a trial is failed between two heartbeats")
    return beat, grace


try:
    HEARTBEAT_S, GRACE_S = heartbeat_settings()
except ConfigError:                   # said by run_study (one line, exit 2), not as a traceback at import
    HEARTBEAT_S, GRACE_S = DEFAULT_HEARTBEAT_S, DEFAULT_GRACE_S

def parent_state() -> dict:
    """What a spawned worker would inherit from the command at this moment: environment, working directory,
    import path. A fork server's workers inherit the server's, frozen when it started; :func:`_adopt`
    applies this instead."""
    import signal
    return {"environ": dict(os.environ), "cwd": os.getcwd(), "sys_path": list(sys.path),
            "sigint_ignored": signal.getsignal(signal.SIGINT) is signal.SIG_IGN}


def _adopt(state: dict | None) -> None:
    """Take on the command's :func:`parent_state` (in a worker, before spikeloop reads any of it).

    Also keeps the worker's progress bars off multiprocessing locks: tqdm's first bar creates a
    ``multiprocessing.RLock``, a named semaphore registered with the command's resource tracker, which a worker
    ended by a signal (Ctrl-C, SIGTERM, its command killed) never unregisters, and the tracker then prints a
    "leaked semaphore objects" warning under the command's one-line message. A worker's bars need only its own
    thread lock (one worker draws the study's bar)."""
    global HEARTBEAT_S, GRACE_S
    from tqdm.std import TqdmDefaultWriteLock
    if not hasattr(TqdmDefaultWriteLock, "mp_lock"):
        TqdmDefaultWriteLock.mp_lock = None     # tqdm then never creates one (create_mp_lock checks hasattr)
    if not state:
        return
    if not state.get("sigint_ignored", True):   # the fork server started with Ctrl-C ignored (start_fork_server)
        import signal
        signal.signal(signal.SIGINT, _stop_on_signal)     # Ctrl-C's interrupt at a safe point, as in the command
    os.environ.clear()
    os.environ.update(state["environ"])
    os.chdir(state["cwd"])
    sys.path[:] = state["sys_path"]
    HEARTBEAT_S, GRACE_S = heartbeat_settings()      # checked by the command before it started this worker


MEMORY_URLS = ("sqlite:///:memory:", "sqlite://", "sqlite:///")
_in_memory: dict[str, optuna.storages.BaseStorage] = {}


def sqlite_file(url: str) -> Path | None:
    """The database file of an ``sqlite:///`` URL (query string dropped), or None (another database, memory)."""
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def missing_dirs(path: Path) -> list[Path]:
    """The folders of ``path`` (itself included) that do not exist yet, outermost first."""
    out = []
    for d in (path, *path.parents):
        try:
            if d.exists():
                break
        except (OSError, ValueError):
            break
        out.append(d)
    return out[::-1]


def remove_if_empty(dirs: list[Path]) -> None:
    """Undo :func:`missing_dirs`' folders that were made for a command that was then refused."""
    for d in reversed(dirs):
        try:
            d.rmdir()
        except OSError:
            break


#: :func:`_sqlite_tables` of a file that is not an SQLite database
NOT_SQLITE = frozenset({"<not an SQLite database>"})


def _sqlite_tables(path: Path) -> set[str] | None:
    """The table names of an SQLite file, read without writing through SQLite itself (None if it cannot be
    read: SQLAlchemy will then name the problem; :data:`NOT_SQLITE` if it is no SQLite database). Never through
    a plain ``open()``: closing any descriptor of the file drops every POSIX lock this process holds on it, also
    those of its open storages' connections, and another process that then closes its last connection takes the
    file for unused and deletes its ``-wal`` and ``-shm`` files under them (this process's later commits went to
    the deleted log, unseen by every other process: the report process wrote a report without the re-check)."""
    import sqlite3
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        if getattr(e, "sqlite_errorcode", None) == 26 or "file is not a database" in str(e):    # SQLITE_NOTADB
            return NOT_SQLITE
        return None
    except sqlite3.Error:
        return None


def _check_sqlite_file(url: str, path: Path, create: bool) -> None:
    """The file of an SQLite storage, checked before SQLAlchemy touches it: a directory, a path under a
    regular file, a missing file (for a command that only reads) or a file that is not SQLite are refused
    with one line; nothing is created unless ``create``."""
    if str(path).startswith("~"):
        raise ConfigError(f"storage {url}: SQLite does not expand ~; write the folder out, e.g. "
                          f"sqlite:///{Path(str(path)).expanduser()}")
    try:
        if path.is_dir():
            raise ConfigError(f"storage {url}: {path} is a directory; give a database file in it, e.g. "
                              f"sqlite:///{path / 'study.db'}")
        parent = path.parent
        for anc in (parent, *parent.parents):
            if anc.exists():
                if not anc.is_dir():
                    raise ConfigError(f"storage {url}: {anc} is a file, not a directory")
                break
        if not path.exists():
            if not create:
                raise ConfigError(f"storage {url}: {path} does not exist (no study was run with this --storage; "
                                  "check the path, relative paths start in the current directory)")
            parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise ConfigError(f"storage {url}: {path} is not a regular file")
        elif path.stat().st_size > 0:
            tables = _sqlite_tables(path)
            if tables is NOT_SQLITE:
                raise ConfigError(f"storage {url}: {path} exists but is not an SQLite database; "
                                  "it was left untouched — move it away or choose another --storage")
            if tables is not None and not tables and not create:
                raise ConfigError(f"storage {url}: {path} is an empty SQLite database (no study was run with this "
                                  "--storage)")
            if tables and "studies" not in tables:
                raise ConfigError(f"storage {url}: {path} is an SQLite database of something else (tables "
                                  f"{sorted(tables)[:5]}), not of Optuna studies; it was left untouched — "
                                  "choose another --storage")
        elif not create:
            raise ConfigError(f"storage {url}: {path} is empty (no study was run with this --storage)")
    except ConfigError:
        raise
    except OSError as e:
        raise ConfigError(f"storage {url}: {e.filename or path}: {e.strerror or type(e).__name__}") from e
    except ValueError as e:                       # an embedded NUL byte
        raise ConfigError(f"storage {url!r}: not a usable path ({e})") from e


import threading

_beats: dict[tuple, list[float]] = {}         # (storage URL, trial id) -> [time of its last heartbeat here, longest gap]
_beats_lock = threading.Lock()
_clock = time.monotonic                       # (a test replaces it)


class HeartbeatTimedStorage(optuna.storages.RDBStorage):
    """Optuna's RDBStorage, timing this process's heartbeats: :func:`heartbeat_gap` is the longest silence
    between two heartbeats of a trial as this process wrote them (the heartbeat thread's scheduling delay, the
    GIL, and any wait for the database's write lock all count)."""

    def record_heartbeat(self, trial_id: int) -> None:
        super().record_heartbeat(trial_id)
        now = _clock()
        with _beats_lock:
            last = _beats.get((self.url, trial_id))
            if last is None:
                _beats[self.url, trial_id] = [now, 0.0]
            else:
                last[1] = max(last[1], now - last[0])
                last[0] = now


def heartbeat_gap(storage, trial_id: int) -> float | None:
    """The longest heartbeat silence of ``trial_id`` of ``storage`` (a study's, or a :class:`HeartbeatTimedStorage`)
    in this process so far, the open one included (s), or None if this process sent it no heartbeat."""
    url = getattr(getattr(storage, "_backend", storage), "url", None)
    with _beats_lock:
        last = _beats.get((url, trial_id))
        return None if last is None else max(last[1], _clock() - last[0])


#: study user attributes: a trial failed for a lapsed heartbeat (by whichever process noticed), and one whose
#: worker was alive after all and dropped its result (the trial's work was done twice)
LAPSED_ATTR = "heartbeat_lapsed:"
DISCARDED_ATTR = "heartbeat_lapsed_discarded:"


def note_stale_trial(study: optuna.Study, trial) -> None:
    """The heartbeat-stale callback of study storages: records the lapse on the study (the failed trial itself
    cannot take attributes any more)."""
    study.set_user_attr(f"{LAPSED_ATTR}{trial.number}", {"grace_s": GRACE_S, "failed_by_pid": os.getpid()})


def heartbeat_lapses(study: optuna.Study) -> dict:
    """The study's heartbeat lapses: ``lapsed`` and ``discarded`` (sorted trial numbers, see :data:`LAPSED_ATTR`),
    and the longest heartbeat gap measured in a finished trial (``max_gap_s``, None if none was)."""
    attrs = study.user_attrs
    nums = lambda prefix: sorted(int(k[len(prefix):]) for k in attrs if k.startswith(prefix))
    gaps = [t.user_attrs["heartbeat_max_gap_s"] for t in study.get_trials(deepcopy=False)
            if t.user_attrs.get("heartbeat_max_gap_s") is not None]
    graces = [v.get("grace_s") for k, v in attrs.items() if k.startswith(LAPSED_ATTR) and isinstance(v, dict)]
    return {"lapsed": nums(LAPSED_ATTR), "discarded": nums(DISCARDED_ATTR), "max_gap_s": max(gaps, default=None),
            "grace_s": sorted({g for g in graces if g is not None})}


class _SQLiteWriter(sqlite3.Connection):
    """An SQLite connection of a storage that runs studies: the file in write-ahead-log mode (kept by the file
    once set), its commits without a flush to disk each (``synchronous = NORMAL``: still consistent after a
    crash of the process or of the machine, where the last commits may be lost). In the default rollback
    journal every commit flushed the file 2-3 times (a 12-trial study made about 1,500 flushes), and two workers
    waited for each other's flushes while holding the file's write lock (what that cost and what WAL saves: the
    records ``study_workers_cli_rollback`` and ``study_workers_cli`` of bench/bench_study.py).
    WAL needs the file on a local disk shared by processes of one machine (for several machines: PostgreSQL).
    A file that cannot change its journal (read-only, locked by another program) keeps it.

    Its transactions take the file's write lock when they begin (``BEGIN IMMEDIATE``, :func:`_begin_immediate`):
    Python's sqlite3 begins a transaction only at the first write, so Optuna's read-then-update of a trial's state
    (a worker claiming a WAITING trial) was two transactions, and two workers could both claim the same trial."""
    convert = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        try:
            mode = self.execute("PRAGMA journal_mode=WAL" if self.convert else "PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                self.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            pass                    # Optuna's first query then says what is wrong with the file, if anything
        if self.convert:
            self.isolation_level = None     # no implicit BEGIN: the engine's "begin" event says BEGIN IMMEDIATE


class _SQLiteReader(_SQLiteWriter):
    """A connection of a reading command (report, export, dashboard): the journal mode is left as it is."""
    convert = False


#: one closer per SQLite storage this process opened (``weakref.finalize``: run when the storage is collected,
#: at exit, also a quick one, or by :func:`close_storages`)
_closers: list = []


def _track(storage) -> None:
    _closers[:] = [c for c in _closers if c.alive]
    _closers.append(weakref.finalize(storage, storage.engine.dispose))


def _begin_immediate(engine) -> None:
    """Every transaction of ``engine`` (a :class:`_SQLiteWriter` storage's) begins with the file's write lock, so
    a read and the update that depends on it are one atomic step across processes (SQLAlchemy's recipe for
    pysqlite's transactions)."""
    from sqlalchemy import event

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def close_storages() -> None:
    """Close the connections of the SQLite storages this process opened (a worker process when its work ends:
    multiprocessing ends it without the ``atexit`` handlers; the command at exit): in WAL mode the last
    connection to close folds the log into the database file and removes its ``-wal`` and ``-shm`` files, so a
    study's file is whole on its own again."""
    for c in list(_closers):
        try:
            c()
        except Exception:  # noqa: BLE001 — closing is best effort; the log is recovered by the next opener
            pass


def storage_for(url: str, heartbeat: int | None = None, grace: int | None = None,
                create: bool = True, stale_callback: Callable | None = None) -> optuna.storages.BaseStorage:
    """The one opener of a study storage (an RDBStorage for ``url``): every problem with the URL or the
    database becomes one ConfigError naming it, and the file is left untouched. ``create=False`` (report,
    export, dashboard) never creates a file or a folder. ``sqlite:///:memory:`` is one in-process memory
    storage per URL (it cannot be shared with worker processes: ``run_study`` refuses ``jobs > 1``).
    ``stale_callback`` is called with each trial failed for a lapsed heartbeat (e.g. to requeue it); by default
    :func:`note_stale_trial` records the lapse on the study."""
    stale_callback = note_stale_trial if stale_callback is None else stale_callback
    if heartbeat is None or grace is None:
        heartbeat_settings()                       # a bad SPIKELOOP_HEARTBEAT_S / _GRACE_S is one line anywhere
    heartbeat = HEARTBEAT_S if heartbeat is None else heartbeat
    grace = GRACE_S if grace is None else grace
    if url in MEMORY_URLS:
        if not create and url not in _in_memory:
            raise ConfigError(f"storage {url}: an in-memory storage lives only as long as the `study run` that "
                              "made it; use an sqlite:///file.db storage to report or export later")
        return _in_memory.setdefault(url, optuna.storages.InMemoryStorage())
    path = sqlite_file(url)
    made = []
    if path is not None:
        made = missing_dirs(path.parent)
        _check_sqlite_file(url, path, create)
    for attempt in range(6):
        try:
            engine = {"pool_pre_ping": True}
            if url.startswith("sqlite"):                     # several worker processes share one file
                engine["connect_args"] = {"timeout": 60, "factory": _SQLiteWriter if create else _SQLiteReader}
            st = HeartbeatTimedStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                       engine_kwargs=engine, heartbeat_stale_trial_callback=stale_callback)
            if url.startswith("sqlite"):
                _track(st)
                if create:
                    _begin_immediate(st.engine)
            return st
        except Exception as e:  # SQLAlchemy/driver errors: report which storage and why
            text = str(e)
            if attempt < 5 and ("UniqueViolation" in text or "already exists" in text):
                time.sleep(0.5 * (attempt + 1))   # another worker is creating the schema right now
                continue
            from tune.errors import _root, first_line
            remove_if_empty(made)
            root = _root(e)
            if path is not None and path.exists() and _nearly_full(path.parent):
                # a file in WAL mode needs room for its -wal and -shm files to be opened at all: on a full disk
                # that is the disk's problem, met during the work (exit 1), not a bad storage URL
                raise optuna.exceptions.StorageInternalError(
                    f"database or disk is full: SQLite could not open the file's write-ahead log "
                    f"({first_line(root)})") from None
            raise ConfigError(f"storage {url}: cannot be opened as an Optuna database ({type(root).__name__}: "
                              f"{first_line(root)}); nothing was changed") from e


def _nearly_full(folder: Path, room: int = 1 << 20) -> bool:
    """Less than ``room`` bytes free where ``folder`` is (unknown: False)."""
    import shutil
    try:
        return shutil.disk_usage(folder).free < room
    except OSError:
        return False


def make_sampler(sc: StudyConfig, worker: int = 0):
    """The study's sampler (``[study] sampler``): ``nsga2`` (default), ``tpe`` (multivariate), ``gp``
    (Optuna's Gaussian-process sampler: expected hypervolume improvement, slower to suggest, for small
    budgets) or ``random`` (the baseline the others must beat; see ``bench/bench_samplers.py``). A
    weighted objective uses TPE unless ``random`` is asked for (TPE handles the pruned trials it reports)."""
    seed = None if sc.seed is None else sc.seed + 1000 * worker
    if sc.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sc.objective == "weighted":
        return optuna.samplers.TPESampler(seed=seed)
    if sc.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, sc.n_trials // 2)))
    if sc.sampler == "gp":
        # method-specific parameters (bptt_epochs, mh_iters, ...) form a dynamic space: GP models the common
        # ones and draws those independently at random (said once here, not in a warning per trial)
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(4, min(10, sc.n_trials // 3)),
                                         warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


def existing_study(sc: StudyConfig) -> optuna.Study:
    """The study ``sc.name`` if it exists in ``sc.storage``, opened read-only: reports, exports and the
    dashboard never create a study, a database file or a folder, and never write to the storage."""
    storage = storage_for(sc.storage, create=False)
    try:
        names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
        if sc.name not in names:
            raise ConfigError(f"--name {sc.name!r}: no such study in {sc.storage}; "
                              f"studies there: {names or 'none'}")
        return optuna.load_study(study_name=sc.name, storage=storage)
    except (optuna.exceptions.StorageInternalError, _sql_errors()) as e:
        from tune.errors import storage_problem
        raise ConfigError(storage_problem(sc.storage, e)) from e


def _sql_errors():
    import sqlalchemy.exc
    return sqlalchemy.exc.SQLAlchemyError


IDENTITY_ATTR = "spikeloop_config"            # the study's identity (StudyConfig.identity), set when created
IDENTITY_HASH_ATTR = "spikeloop_config_sha256"


def identity_hash(identity: dict) -> str:
    import hashlib
    import json
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def check_identity(study: optuna.Study, sc: StudyConfig) -> None:
    """A study is resumed only with the config it was created with (data, chip, faults, device, objective;
    :meth:`StudyConfig.identity`): another one is refused with one line naming the differing fields. A
    study made before identities were recorded gets this config's."""
    mine = sc.identity()
    attrs = study.user_attrs
    theirs = attrs.get(IDENTITY_ATTR)
    if theirs is None:
        if study.trials:
            study.set_user_attr("spikeloop_config_recorded_late", "identity recorded on a resume")
        study.set_user_attr(IDENTITY_ATTR, mine)
        study.set_user_attr(IDENTITY_HASH_ATTR, identity_hash(mine))
        return
    if attrs.get(IDENTITY_HASH_ATTR) == identity_hash(mine):
        return
    diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    if not diff:
        return
    show = lambda v: repr(v) if not isinstance(v, str) or len(v) < 60 else repr(v[:57] + "...")
    parts = [f"{k} {show(theirs.get(k))} -> {show(mine.get(k))}" for k in diff[:6]]
    more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
    raise ConfigError(f"study {sc.name!r} in {sc.storage} was created with another config ({'; '.join(parts)}{more}); "
                      "its trials would not be comparable — choose another --name, or add --new to delete "
                      "the old study and start again")


def open_study(sc: StudyConfig, storage=None, worker: int = 0, new: bool = False) -> optuna.Study:
    """Create or resume the study ``sc.name`` (checking it was made with the same config); with ``new``,
    an existing study of that name is deleted first."""
    storage = storage or storage_for(sc.storage)
    directions = ["maximize"] if sc.objective == "weighted" else ["maximize", "minimize", "maximize"]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    try:
        if new:
            try:
                optuna.delete_study(study_name=sc.name, storage=storage)
            except KeyError:
                pass                                  # nothing to delete
        study = optuna.create_study(study_name=sc.name, storage=storage, directions=directions,
                                    sampler=make_sampler(sc, worker), pruner=pruner, load_if_exists=True)
        if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else
                                      optuna.study.StudyDirection.MINIMIZE for d in directions]:
            raise ConfigError(f"study {sc.name!r} exists in {sc.storage} with other objectives; "
                              f"choose another --name, or add --new to delete the old study and start again")
        check_identity(study, sc)
        if study.metric_names is None:          # labels for optuna-dashboard and the report
            study.set_metric_names(["weighted_score"] if sc.objective == "weighted"
                                   else ["accuracy", "latency_us", "fps_per_watt"])
    except ConfigError:
        raise
    except (optuna.exceptions.StorageInternalError, _sql_errors()) as e:
        from tune.errors import storage_problem
        raise ConfigError(storage_problem(sc.storage, e)) from e
    except ValueError as e:
        raise ConfigError(f"study {sc.name!r} in {sc.storage}: {e}") from e
    return study


DONE = (TrialState.COMPLETE, TrialState.PRUNED)

#: how often a worker with no trial left to take looks whether the study is done (s): the study ends at most
#: this long after its last trial (it was 5 s, half of it lost on average at the end of every multi-worker run)
WAIT_POLL_S = 0.5


class SurplusTrial(Exception):
    """Raised inside a trial that another worker's trials made unnecessary (requested count reached)."""


def missing_trials(study: optuna.Study, n_trials: int) -> int:
    return max(0, n_trials - len(study.get_trials(deepcopy=False, states=DONE)))


def _ahead_of(study: optuna.Study, number: int) -> int:
    """Trials that count before trial ``number``: done ones, and running ones with smaller numbers."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in DONE or (t.state == TrialState.RUNNING and t.number < number))


CLAIM_ATTR = "spikeloop_worker_pid"        # trial system attribute: the worker process running it


def fail_silent_claims(study: optuna.Study, grace: float | None = None) -> None:
    """Fail RUNNING trials that never reached a worker's objective (no :data:`CLAIM_ATTR`) and started more than
    ``grace`` s ago: a worker killed between claiming a trial and its first heartbeat. Optuna's stale check
    skips a trial without a heartbeat, so the study would wait for it forever."""
    import datetime
    grace = GRACE_S if grace is None else grace
    storage = study._storage
    now = datetime.datetime.now()                  # Optuna stamps datetime_start with this clock
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if CLAIM_ATTR in t.system_attrs or t.datetime_start is None or \
                (now - t.datetime_start).total_seconds() <= grace:
            continue
        try:
            if storage.set_trial_state_values(t._trial_id, TrialState.FAIL):
                note_stale_trial(study, t)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass


def _exit_with_parent(parent: int) -> None:
    """A worker process ends itself when the command that started it is gone (killed, even by SIGKILL); its
    running trial stops heartbeating and is failed as stale later. The command is watched through a pidfd
    (Linux): a fork server's worker is not the command's child, so its parent pid says nothing."""
    import select
    import threading
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        fd = None

    def watch():
        if fd is not None:
            select.select([fd], [], [])     # readable once the command has ended
            os._exit(1)
        while True:                         # no pidfd (not Linux): poll the command's pid
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            time.sleep(1.0)
    threading.Thread(target=watch, daemon=True).start()


class TooManyFailures(StudyStopped):
    """``[study] max_consecutive_failures`` trials in a row failed in one worker (e.g. a network too big
    for memory): the study stops instead of failing trial after trial."""


#: a worker process's exit code when it stopped after too many failed trials (it printed the line itself)
EXIT_TOO_MANY_FAILURES = 3


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def limit_threads(n: int):
    """Cap this process's BLAS/OpenMP thread pools at ``n`` (threadpoolctl; returned, keep it alive). Two
    workers on two cores each running a 2-thread OpenBLAS pool oversubscribe the cores: spinning BLAS
    threads then wait for cores the other worker holds."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n)


def thread_pools() -> dict:
    """The thread pools this process runs with: torch's intra-op threads, the largest BLAS/OpenMP pool
    threadpoolctl sees, and numba's configured pool size (if imported). numba's pool is read from its config, not
    ``numba.get_num_threads()``: that call launches numba's threading layer, whose OpenMP start resets the
    process's OpenMP threads — torch's among them — to numba's count (seen: torch at 2 threads in a worker that
    had set 1). spikeloop has no parallel numba kernels, so that pool is never launched otherwise."""
    import torch
    from threadpoolctl import threadpool_info
    out = {"torch": torch.get_num_threads(), "blas_openmp": max((p["num_threads"] for p in threadpool_info()),
                                                               default=None)}
    if "numba" in sys.modules:
        out["numba"] = sys.modules["numba"].config.NUMBA_NUM_THREADS
    return out


def _worker(sc: StudyConfig, n_total: int, worker: int, show_progress: bool, parent: int | None = None,
            data=None, threads: int = 1, state: dict | None = None, on_idle: Callable[[], None] | None = None) -> None:
    """Run trials until ``n_total`` are done in the whole study (every worker on every machine agrees), or
    until ``sc.max_consecutive_failures`` of this worker's trials in a row failed (TooManyFailures).
    ``on_idle`` is called once, the first time no trial is left to take while others still run."""
    _adopt(state)
    if parent is not None:
        _exit_with_parent(parent)
    import warnings
    import torch
    from tqdm import tqdm
    _limits = limit_threads(threads)                # BLAS/OpenMP pools of this process: its share of the cores
    torch.set_num_threads(1)                        # after threadpoolctl, whose OpenMP limit also sets torch's
    from train.common import one_line_warnings
    from train.run import prepare
    from tune.errors import first_line
    one_line_warnings()
    from tune.objective import objective
    # a failed trial is one line from here, not Optuna's warning with the whole traceback
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = open_study(sc, worker=worker)
    if data is None:                        # a spawned worker encodes the data itself
        _, data = prepare(sc.train)
    current: dict = {}
    pools = thread_pools()                  # what this worker's trials run with (user attribute "threads")

    def guarded(trial: optuna.Trial):
        current.update(id=trial._trial_id, number=trial.number)
        if _ahead_of(study, trial.number) >= n_total:
            trial.set_user_attr("surplus", "requested trial count already reached by other workers")
            raise SurplusTrial(f"trial {trial.number}: requested count {n_total} reached")
        # this worker's mark, after a first heartbeat (a RUNNING trial without it is a claim by a dead process)
        if optuna.storages._heartbeat.is_heartbeat_enabled(study._storage):
            study._storage.record_heartbeat(trial._trial_id)
        study._storage.set_trial_system_attr(trial._trial_id, CLAIM_ATTR, os.getpid())
        cpu = time.process_time()
        try:
            _IN_OBJECTIVE[0] = True     # a stop (SIGTERM, Ctrl-C) is raised in the objective (_interrupt)
            _raise_if_signalled()
            return objective(trial, sc, data)
        except optuna.exceptions.UpdateFinishedTrialError:
            raise                 # another process failed this trial (heartbeat lapse): the loop below says so
        except CAUGHT as e:
            current["error"] = f"{type(e).__name__}: {first_line(e, 200)}"
            raise
        finally:                  # this process's CPU time in the trial (the rest: start-up, polling)
            _IN_OBJECTIVE[0] = False
            current["cpu_s"] = round(time.process_time() - cpu, 3)
            current["gap_s"] = heartbeat_gap(study._storage, trial._trial_id)
            if study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                trial.set_user_attr("cpu_s", current["cpu_s"])
                trial.set_user_attr("threads", pools)
                if current["gap_s"] is not None:
                    trial.set_user_attr("heartbeat_max_gap_s", round(current["gap_s"], 3))

    _GUARDED_CODE[0] = guarded.__code__
    bar = tqdm(total=n_total, initial=n_total - missing_trials(study, n_total), desc=f"study {sc.name}",
               disable=not show_progress)
    failures = 0
    try:
        while True:
            _raise_if_signalled()
            trials = study.get_trials(deepcopy=False)
            done = sum(t.state in DONE for t in trials)
            if done >= n_total:
                break
            if done + sum(t.state == TrialState.RUNNING for t in trials) >= n_total:
                # the rest is running elsewhere — or was, in a process that died: wait until those trials
                # finish or their heartbeats lapse (then they fail as stale and are run again here)
                if on_idle is not None:
                    on_idle()
                    on_idle = None
                    continue
                time.sleep(min(HEARTBEAT_S, WAIT_POLL_S))
                optuna.storages.fail_stale_trials(study)
                fail_silent_claims(study)
                continue
            current.clear()
            try:
                study.optimize(guarded, n_trials=1, catch=CAUGHT + (SurplusTrial,))
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as e:
                # Optuna cannot record this trial's result ("Cannot tell a FAIL trial", or a report/attribute
                # refused mid-trial): this worker was paused or starved (SIGSTOP, a suspended laptop, a loaded
                # machine) past the grace period and another process failed its trial as stale; the trial's work
                # is done again elsewhere, so this result is dropped (a duplicate, counted in the report)
                if "id" not in current or study._storage.get_trial(current["id"]).state == TrialState.RUNNING:
                    raise
                if isinstance(e, optuna.exceptions.UpdateFinishedTrialError) and \
                        f"{LAPSED_ATTR}{current['number']}" not in study.user_attrs:
                    # another worker (e.g. on another machine) popped the same enqueued trial and finished it first
                    tqdm.write(f"spikeloop: worker {worker}: {first_line(e)}; continuing", file=sys.stderr)
                    continue
                gap = current.get("gap_s")
                study.set_user_attr(f"{DISCARDED_ATTR}{current['number']}", {
                    "worker": worker, "pid": os.getpid(), "cpu_s": current.get("cpu_s"),
                    "max_gap_s": None if gap is None else round(gap, 3)})
                tqdm.write(f"spikeloop: worker {worker}: trial {current['number']} was failed by another process while "
                           f"this one was still running it (its heartbeat lapsed: grace {GRACE_S} s"
                           + ("" if gap is None else f", longest gap here {gap:.0f} s")
                           + "); its result is dropped and another trial takes its place, continuing", file=sys.stderr)
                continue
            if "id" in current:
                t = study._storage.get_trial(current["id"])
                if t.state == TrialState.FAIL and "surplus" not in t.user_attrs:
                    failures += 1
                    why = current.get("error", "see the study's failed trial")
                    if failures >= sc.max_consecutive_failures:
                        raise TooManyFailures(
                            f"{failures} trials in a row failed (study.max_consecutive_failures = "
                            f"{sc.max_consecutive_failures}); the last, trial {t.number}: {why} — fix the cause "
                            "(e.g. a smaller network), then run the same command again; completed trials are kept")
                    tqdm.write(f"spikeloop: trial {t.number} failed: {why} ({failures} in a row; the study stops at "
                         f"{sc.max_consecutive_failures})", file=sys.stderr)
                elif t.state in DONE:
                    failures = 0
            bar.n = n_total - missing_trials(study, n_total)
            bar.refresh()
    finally:
        bar.close()           # the progress line ends before any message


#: exceptions that fail one trial and let the study go on (anything else stops it: a bug, a full disk):
#: torch's allocation errors are RuntimeErrors, numpy's MemoryErrors; a ConfigError is a design the search
#: drew that the chip or trainer refuses
CAUGHT = (RuntimeError, FloatingPointError, MemoryError, ConfigError)


def _worker_process(*args) -> None:
    """A spawned worker: a problem the user can act on ends it with one line and its exit code (no
    traceback from the multiprocessing machinery)."""
    from tune.errors import explain
    try:
        try:
            _worker(*args)
        finally:
            close_storages()            # a process of multiprocessing ends without the atexit handlers
    except TooManyFailures as e:
        _say(f"spikeloop: study stopped: {e}")
        sys.exit(EXIT_TOO_MANY_FAILURES)
    except BaseException as e:
        known = explain(e)
        if known is None:
            raise
        _say(known[1])
        sys.exit(known[0])


#: the stop signals :func:`_stop_workers_on_signal`'s handler took in this process: its KeyboardInterrupt can be
#: lost (raised inside a weakref callback or a ``__del__``, Python prints "Exception ignored" and goes on), so the
#: study loop and :func:`run_study` check here too (:func:`_raise_if_signalled`)
_SIGNALLED: list[str] = []

#: code that a stop's KeyboardInterrupt must not land in: a KeyboardInterrupt half-way through Optuna's trial
#: bookkeeping (its ``tell``: "Should not reach." assertions) or a storage write (an SQLAlchemy session or pool lock
#: left taken: the heartbeat thread then waits on it forever, and so does the command that joins that thread) is
#: put off until the main thread is back in spikeloop's or the trainers' code (:func:`_interrupt`)
UNSAFE_MODULES = ("optuna", "sqlalchemy", "alembic", "sqlite3")

#: how soon a put-off stop retries (s); and how often, while the objective still runs, its KeyboardInterrupt is
#: raised again (one swallowed in a ``__del__`` or weakref callback would let the trial train on to its end)
INTERRUPT_RETRY_S = 0.05
INTERRUPT_REPEAT_S = 2.0

_IN_OBJECTIVE: list[bool] = [False]     # the main thread runs the objective (set by _worker's trial wrapper)
_DELIVERED: list[bool] = [False]        # the last stop's KeyboardInterrupt has been raised
_GUARDED_CODE: list = [None]            # the code object of _worker's trial wrapper (set by _worker)


def _raise_if_signalled() -> None:
    """KeyboardInterrupt if a stop signal came whose own KeyboardInterrupt was lost (or put off: then this one is
    its delivery, and a retry still pending raises nothing more, :func:`_interrupt`; it raised a second one in the
    clean-up, e.g. inside the progress bar's close, whose line then ran into the command's one line)."""
    if _SIGNALLED:
        _DELIVERED[0] = True
        raise KeyboardInterrupt(f"stopped by signal {_SIGNALLED[-1]}")


def _safe_point(frame) -> bool:
    """The main thread, interrupted at ``frame``, may take a KeyboardInterrupt here: in the objective with no
    frame of :data:`UNSAFE_MODULES` between it and the objective's wrapper (Optuna catches a KeyboardInterrupt of
    the objective and fails the trial cleanly), or outside it with none in the whole stack."""
    while frame is not None:
        if frame.f_code is _GUARDED_CODE[0] and _IN_OBJECTIVE[0]:
            return True
        name = frame.f_globals.get("__name__") or ""
        if name.split(".", 1)[0] in UNSAFE_MODULES:
            return False
        frame = frame.f_back
    return True


def _interrupt(frame) -> None:
    """Raise the stop's KeyboardInterrupt now if ``frame`` is a safe point, else retry shortly (SIGALRM timer).
    While the objective runs it is raised again every :data:`INTERRUPT_REPEAT_S` until the objective has ended;
    outside it once (the study loop checks :data:`_SIGNALLED` as well)."""
    if not _SIGNALLED:
        return
    if _safe_point(frame) and (_IN_OBJECTIVE[0] or not _DELIVERED[0]):
        _DELIVERED[0] = True
        if _IN_OBJECTIVE[0]:
            _arm_retry(INTERRUPT_REPEAT_S)
        raise KeyboardInterrupt(f"stopped by signal {_SIGNALLED[-1]}")
    if not _DELIVERED[0]:
        _arm_retry(INTERRUPT_RETRY_S)
    elif _IN_OBJECTIVE[0]:
        _arm_retry(INTERRUPT_REPEAT_S)


_ALARM_PREVIOUS: list = []              # SIGALRM's handler before the first retry was armed


def _arm_retry(seconds: float) -> None:
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        return
    if not _ALARM_PREVIOUS:
        _ALARM_PREVIOUS.append(signal.signal(signal.SIGALRM, lambda signum, frame: _interrupt(frame)))
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _disarm_retry() -> None:
    """No retry left pending (at the end of :func:`run_study`, once its stop is raised or it ended normally)."""
    import signal
    _IN_OBJECTIVE[0] = False
    _DELIVERED[0] = True                # first: a retry already under way raises nothing now
    if _ALARM_PREVIOUS:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, _ALARM_PREVIOUS.pop())


def _stop_on_signal(signum, frame) -> None:
    """A stop signal's handler: recorded, then its KeyboardInterrupt at a safe point (:func:`_interrupt`)."""
    import signal
    _SIGNALLED.append(signal.Signals(signum).name)
    _DELIVERED[0] = False               # this signal's interrupt is raised (once outside the objective) too
    _interrupt(frame)


def _stop_workers_on_signal(procs, stopping=None) -> Callable[[], None]:
    """SIGTERM/SIGINT to this process stop its workers too (then the usual exit); returns the clean-up. With
    ``stopping`` (an event a thread starting ``procs`` checks after each start): that thread ends a worker it
    started after the clean-up began. The KeyboardInterrupt that ends the command is raised at a safe point
    (:func:`_interrupt`): at once in the objective or spikeloop's own code, after the storage write or Optuna's
    bookkeeping it arrived in otherwise; the signal is recorded first, so a later check
    (:func:`_raise_if_signalled`) stops the command even if that interrupt is lost."""
    import signal
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def end_all(wait: bool):
        if stopping is not None:
            stopping.set()
        for p in procs:
            if p.pid is not None and p.is_alive():
                p.terminate()
        if wait:
            for p in procs:
                if p.pid is not None:
                    p.join(timeout=10)

    def handler(signum, frame):
        _SIGNALLED.append(signal.Signals(signum).name)
        end_all(wait=True)
        _DELIVERED[0] = False           # this signal's interrupt is raised (once outside the objective) too
        _interrupt(frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore():
        end_all(wait=False)
        for sig, h in previous.items():
            signal.signal(sig, h)
    return restore


def _structures(sc: StudyConfig, cfg):
    """Every chip structure the search can draw (lanes x weight bits), for the memory check."""
    for lanes in sc.lanes or (cfg.lanes,):
        for bits in sc.weight_bits or (cfg.weight_bits,):
            try:
                yield cfg.replace(lanes=lanes, weight_bits=bits)
            except ConfigError:
                continue                            # a combination the trial itself will refuse


def check_study_memory(sc: StudyConfig, cfg, data) -> None:
    """The memory check of ``spikeloop run`` (:func:`sim.chip.check_memory`, one source) for the largest
    network the study can draw on the largest data split it runs through the chip."""
    from train.run import check_chip_memory          # sim.chip.check_memory with a training run's batch
    samples = max(len(data.x_train), len(data.x_val), len(data.x_test))
    for c in _structures(sc, cfg):
        check_chip_memory(c, samples, data.x_train.shape[1])


def _worker_problem(i: int, p) -> str | None:
    """One line about worker ``i``'s exit, or None if it ended normally (or said why itself)."""
    import signal
    if p.exitcode in (0, EXIT_TOO_MANY_FAILURES) or p.exitcode is None:
        return None
    if p.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-p.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-p.exitcode}"
    else:
        return f"spikeloop: study worker {i} (pid {p.pid}) ended with exit code {p.exitcode} (its own line is above)"
    return f"spikeloop: study worker {i} (pid {p.pid}) {how}; its running trial is failed as stale and run again"


#: how long the thread starting the workers waits for the stop that explains a fork server gone under it
STARTER_GRACE_S = 2.0


def _fail_trials_of_stopped(sc: StudyConfig, procs) -> None:
    """After a stop signal ended the workers ``procs`` (SIGTERM, from :func:`_stop_workers_on_signal`): the trials
    they were running, still RUNNING in the storage (a worker ended so cannot mark its own), are marked FAILED now,
    as the command's own trial is. They were left RUNNING until their heartbeats lapsed: a run right after waited out
    the grace period for them. Only trials a worker has claimed (:data:`CLAIM_ATTR`) and only once it has ended."""
    _disarm_retry()                             # no put-off interrupt of this stop raises in the writes below
    ended = set()
    for p in procs:
        if p.pid is not None:
            p.join(timeout=10)                  # ended by the signal's handler; not waited for beyond that
            if p.exitcode is not None:
                ended.add(p.pid)
    if not ended:
        return
    try:
        study = open_study(sc)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.system_attrs.get(CLAIM_ATTR) in ended:
                try:
                    study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass
    except Exception:                           # the storage gone too: the stop's one line stays the command's
        pass                                    # line; the trials are failed as stale when the study next runs


def _run_parallel(sc: StudyConfig, jobs: int, data, report=None) -> None:
    """``jobs`` workers: this process is worker 0 and starts its trials at once; workers 1.. are forks of the fork
    server, started by a thread while worker 0 trains, so the server's imports overlap worker 0's first trials
    instead of standing serially at the head of the study. Enqueued (waiting) trials are popped by whichever
    worker asks first: Optuna moves a trial WAITING -> RUNNING in one storage update that only one worker wins.
    ``report`` (a :class:`tune.report.ReportProcess`) is started by the same thread after the workers."""
    import threading
    ctx = worker_context()
    share = thread_share(jobs)
    state = parent_state()
    state["environ"].update({k: str(share) for k in THREAD_ENV})     # as _thread_env gives spawned ones
    procs = [ctx.Process(target=_worker_process, args=(sc, sc.n_trials, i, False, os.getpid(), data, share, state))
             for i in range(1, jobs)]
    stopping = threading.Event()
    cancelled = set()                       # workers started after the study ended (or the command stopped)

    def start_all():
        for i, p in enumerate(procs, start=1):
            if stopping.is_set():
                return
            try:
                p.start()                   # blocks while the fork server imports
            except Exception as e:          # the server ended under it: stopped (Ctrl-C, SIGTERM), or gone
                if not stopping.wait(STARTER_GRACE_S):    # (the stop's clean-up sets it; its signal may reach
                    _say(f"spikeloop: study worker {i} could not be started ({type(e).__name__}: {e}); "
                         "the workers started go on")   # the main thread after the server's end reaches this one)
                return
            if stopping.is_set():           # set meanwhile: this worker is not needed (the clean-up may not have
                cancelled.add(i)            # seen its pid yet, so it is ended here)
                p.terminate()
                return
        if report is not None:
            try:
                report.start()
            except Exception:               # no report process: the command writes the report itself
                pass

    stop = _stop_workers_on_signal(procs, stopping)
    try:
        if ctx.get_start_method() == "forkserver":
            # Process.start blocks until the server has imported WORKER_PRELOAD: a thread waits for it
            starter = threading.Thread(target=start_all, name="spikeloop-worker-starter", daemon=True)
            starter.start()
        else:
            starter = None
            with _thread_env(share):            # spawned children size their pools when they import numpy
                start_all()
        try:
            # without a report process the command writes the report after the study: its imports while the other
            # workers end their trials
            from tune.report import preload
            _worker(sc, sc.n_trials, 0, True, data=data, threads=share, on_idle=None if report else preload)
        except TooManyFailures as e:            # this worker stops; the others go on
            _say(f"spikeloop: study stopped: {e}")
            if starter is not None:
                starter.join()
        else:
            # the study is done: a worker not started yet is not needed, and one whose start still waits for the
            # fork server is ended by the starter thread (not waited for: that would wait for the server's imports)
            stopping.set()
        for i, p in enumerate(procs, start=1):
            if p.pid is not None and i not in cancelled:
                p.join()
    except KeyboardInterrupt:                   # a stop signal: the workers are ended (the handler, or stop() here)
        stop()
        _fail_trials_of_stopped(sc, procs)
        raise
    finally:
        stop()
    for i, p in enumerate(procs, start=1):
        line = None if i in cancelled else _worker_problem(i, p)
        if line:
            _say(line)


def run_study(sc: StudyConfig, jobs: int = 1, baseline: bool = True, new: bool = False,
              report=None) -> optuna.Study:
    """Run the missing trials of ``sc`` with ``jobs`` processes; returns the study. Everything is checked
    before the study (or its output folder) is created: jobs, storage, data, memory, the study's identity.
    A worker that dies or stops is reported (one line) and the others go on; the study may then be short of
    ``n_trials`` (``missing_trials`` tells; the caller reports what is there). ``new`` deletes an existing
    study of this name first. With ``jobs`` > 1, ``report`` (a :class:`tune.report.ReportProcess`, not started)
    is started beside the workers."""
    if not 1 <= jobs <= 256:
        raise ConfigError(f"--jobs={jobs}: allowed range is 1..256")
    heartbeat_settings()                           # SPIKELOOP_HEARTBEAT_S / SPIKELOOP_GRACE_S, one line if bad
    if sc.storage in MEMORY_URLS and jobs > 1:
        raise ConfigError(f"--jobs {jobs} with storage {sc.storage}: an in-memory storage cannot be shared between "
                          "worker processes; use --jobs 1, or a file storage such as sqlite:///runs/study.db")
    _SIGNALLED.clear()
    stop = _stop_workers_on_signal([])          # SIGTERM during the set-up: the same one line as later
    hook = sys.unraisablehook                   # a stop's KeyboardInterrupt swallowed in a weakref callback: no
    sys.unraisablehook = lambda u: None if _SIGNALLED and isinstance(u.exc_value, KeyboardInterrupt) else hook(u)
    try:                                        # "Exception ignored" traceback (it is raised again, below)
        study = _run_study(sc, jobs, baseline, new, report)
        _raise_if_signalled()
    finally:
        _disarm_retry()                         # first: no retry raises in the clean-up below or after it
        try:
            stop()
        finally:
            sys.unraisablehook = hook
            _SIGNALLED.clear()
    return study


def _run_study(sc: StudyConfig, jobs: int, baseline: bool, new: bool, report=None) -> optuna.Study:
    if jobs > 1:
        start_fork_server(jobs)     # its imports overlap this set-up's (data, storage) (no-op if running)
    from hw.cli import check_writable
    from train.run import prepare
    cfg, data = prepare(sc.train)                            # the data loads and fits the chip
    check_study_memory(sc, cfg, data)
    made = missing_dirs(sc.out)
    # as written, not resolved (a symbolic link to nothing would resolve to its target); before the storage file
    given = sc.out_given if sc.out_given and Path(sc.out_given).expanduser().resolve() == sc.out else sc.out
    check_writable(given, sc.out_option)
    if sc.fits is not None and sc.synth_cache is not None:   # every trial synthesises into it: found unusable now,
        made += [d for d in missing_dirs(sc.synth_cache) if d not in made]     # not after the first trial's build
        try:
            check_writable(sc.synth_cache, "[hardware] synth_cache")
        except ConfigError:
            remove_if_empty(made)
            raise
    try:
        storage = storage_for(sc.storage)
        if not new:                                          # an existing study must match this config
            try:
                names = {s.study_name for s in
                         optuna.study.get_all_study_summaries(storage, include_best_trial=False)}
            except (optuna.exceptions.StorageInternalError, _sql_errors()) as e:
                from tune.errors import storage_problem
                raise ConfigError(storage_problem(sc.storage, e)) from e
            if sc.name in names:
                open_study(sc, storage)
        study = open_study(sc, storage, new=new)
    except BaseException:
        remove_if_empty(made)                                # a refused run leaves no empty --out folder
        raise
    optuna.storages.fail_stale_trials(study)
    fail_silent_claims(study)
    if baseline and not study.trials and "bptt" in sc.methods and "atan" in sc.surrogates:
        # snnTorch tutorial defaults (beta 0.95, threshold 1, arctan) as the reference point
        params = {"method": "bptt", "surrogate": "atan", "surrogate_scale_factor": 1.0, "beta": 0.95, "theta": 1.0}
        params = {k: v for k, v in params.items() if k in ("method", "surrogate") or not sc.ranges[k].fixed}
        if sc.bias_input and len(sc.bias_input) > 1:
            params["bias_input"] = False                     # snnTorch's network has no bias input
        if sc.update and len(sc.update) > 1 and sc.chip.update in sc.update:
            params["update"] = sc.chip.update                # the [chip] schedule (default "all": today's)
        touched = params.get("update", sc.update[0] if sc.update else sc.chip.update) == "touched"
        if touched and sc.wavefront and len(sc.wavefront) > 1:
            params["wavefront"] = sc.chip.wavefront          # the [chip] wavefront (default off: today's)
        study.enqueue_trial(params, user_attrs={"baseline": "snntorch defaults"}, skip_if_exists=True)
    if missing_trials(study, sc.n_trials) == 0:
        return study
    try:
        if jobs == 1:
            stop = _stop_workers_on_signal([])      # SIGTERM ends the running trial as FAILED, like Ctrl-C
            try:
                _worker(sc, sc.n_trials, 0, True, data=data, threads=thread_share(1))
            finally:
                stop()
        else:
            _run_parallel(sc, jobs, data, report)
    except TooManyFailures as e:
        _say(f"spikeloop: study stopped: {e}")
    return open_study(sc, storage)
