"""Create, run and resume Optuna studies on any Optuna RDB storage (SQLite file by default).

Trials send heartbeats; a trial whose process died (killed, crashed machine) is marked FAILED the next
time the study is run, and every completed trial is kept. ``n_trials`` is the study's total: every
worker (``jobs`` processes here, or the same command on other machines sharing an RDB storage) runs
trials until that many are COMPLETE or PRUNED; a trial started in a race past the count steps aside
as FAILED with a ``surplus`` user attribute.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Callable

import optuna
from optuna.trial import TrialState

from hw.config import ConfigError
from tune.config import StudyConfig

HEARTBEAT_S = int(os.environ.get("SPIKELOOP_HEARTBEAT_S", 10))   # a running trial's heartbeat period
GRACE_S = int(os.environ.get("SPIKELOOP_GRACE_S", 30))           # silence after which it counts as dead


def storage_for(url: str, heartbeat: int | None = None, grace: int | None = None,
                stale_callback: Callable | None = None) -> optuna.storages.RDBStorage:
    """An RDBStorage for ``url``; a broken database raises ConfigError naming it (the file is untouched).
    ``stale_callback`` is called with each trial failed for a lapsed heartbeat (e.g. to requeue it)."""
    heartbeat = HEARTBEAT_S if heartbeat is None else heartbeat
    grace = GRACE_S if grace is None else grace
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    raise ConfigError(f"storage {url}: {path} exists but is not an SQLite database; "
                                      "it was left untouched — move it away or choose another --storage")
    for attempt in range(6):
        try:
            engine = {"pool_pre_ping": True}
            if url.startswith("sqlite"):
                engine["connect_args"] = {"timeout": 60}     # several worker processes share one file
            return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                              engine_kwargs=engine, heartbeat_stale_trial_callback=stale_callback)
        except Exception as e:  # SQLAlchemy/driver errors: report which storage and why
            text = str(e)
            if attempt < 5 and ("UniqueViolation" in text or "already exists" in text):
                time.sleep(0.5 * (attempt + 1))   # another worker is creating the schema right now
                continue
            raise ConfigError(f"storage {url}: cannot be opened as an Optuna database ({type(e).__name__}: "
                              f"{text.splitlines()[0][:300]}); nothing was changed") from e


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
    """The study ``sc.name`` if it exists in ``sc.storage`` (reports and exports never create one)."""
    storage = storage_for(sc.storage)
    names = [s.study_name for s in optuna.study.get_all_study_summaries(storage, include_best_trial=False)]
    if sc.name not in names:
        raise ConfigError(f"--name {sc.name!r}: no such study in {sc.storage}; studies there: {names or 'none'}")
    return open_study(sc, storage)


def open_study(sc: StudyConfig, storage=None, worker: int = 0) -> optuna.Study:
    storage = storage or storage_for(sc.storage)
    directions = ["maximize"] if sc.objective == "weighted" else ["maximize", "minimize", "maximize"]
    pruner = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    try:
        study = optuna.create_study(study_name=sc.name, storage=storage, directions=directions,
                                    sampler=make_sampler(sc, worker), pruner=pruner, load_if_exists=True)
    except ValueError as e:
        raise ConfigError(f"study {sc.name!r} in {sc.storage}: {e}") from e
    if list(study.directions) != [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else
                                  optuna.study.StudyDirection.MINIMIZE for d in directions]:
        raise ConfigError(f"study {sc.name!r} exists in {sc.storage} with other objectives; "
                          f"choose another study name")
    if study.metric_names is None:          # labels for optuna-dashboard and the report
        study.set_metric_names(["weighted_score"] if sc.objective == "weighted"
                               else ["accuracy", "latency_us", "fps_per_watt"])
    return study


DONE = (TrialState.COMPLETE, TrialState.PRUNED)


class SurplusTrial(Exception):
    """Raised inside a trial that another worker's trials made unnecessary (requested count reached)."""


def missing_trials(study: optuna.Study, n_trials: int) -> int:
    return max(0, n_trials - len(study.get_trials(deepcopy=False, states=DONE)))


def _ahead_of(study: optuna.Study, number: int) -> int:
    """Trials that count before trial ``number``: done ones, and running ones with smaller numbers."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if t.state in DONE or (t.state == TrialState.RUNNING and t.number < number))


def _exit_with_parent(parent: int) -> None:
    """A worker process ends itself when the process that started it is gone (killed, even by SIGKILL)."""
    import threading

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)       # its running trial stops heartbeating and is failed as stale later
            time.sleep(1.0)
    threading.Thread(target=watch, daemon=True).start()


def _worker(sc: StudyConfig, n_total: int, worker: int, show_progress: bool, parent: int | None = None,
            data=None) -> None:
    """Run trials until ``n_total`` are done in the whole study (every worker on every machine agrees)."""
    if parent is not None:
        _exit_with_parent(parent)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import warnings
    import torch
    from tqdm import tqdm
    torch.set_num_threads(1)
    from train.run import prepare
    from tune.objective import objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    study = open_study(sc, worker=worker)
    if data is None:                        # a spawned worker encodes the data itself
        _, data = prepare(sc.train)

    def guarded(trial: optuna.Trial):
        if _ahead_of(study, trial.number) >= n_total:
            trial.set_user_attr("surplus", "requested trial count already reached by other workers")
            raise SurplusTrial(f"trial {trial.number}: requested count {n_total} reached")
        return objective(trial, sc, data)

    bar = tqdm(total=n_total, initial=n_total - missing_trials(study, n_total), desc=f"study {sc.name}",
               disable=not show_progress)
    while True:
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in DONE for t in trials)
        if done >= n_total:
            break
        if done + sum(t.state == TrialState.RUNNING for t in trials) >= n_total:
            # the rest is running elsewhere — or was, in a process that died: wait until those trials
            # finish or their heartbeats lapse (then they fail as stale and are run again here)
            time.sleep(min(HEARTBEAT_S, 5))
            optuna.storages.fail_stale_trials(study)
            continue
        try:
            study.optimize(guarded, n_trials=1, catch=(RuntimeError, FloatingPointError, SurplusTrial))
        except optuna.exceptions.UpdateFinishedTrialError as e:
            # another worker (e.g. on another machine) popped the same enqueued trial and finished it first
            print(f"worker {worker}: {e}; continuing", file=sys.stderr)
        bar.n = n_total - missing_trials(study, n_total)
        bar.refresh()
    bar.close()


def _stop_workers_on_signal(procs) -> Callable[[], None]:
    """SIGTERM/SIGINT to this process stop its workers too (then the usual exit); returns the clean-up."""
    import signal
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum, frame):
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    for sig in previous:
        signal.signal(sig, handler)

    def restore():
        for p in procs:
            if p.is_alive():
                p.terminate()
        for sig, h in previous.items():
            signal.signal(sig, h)
    return restore


def run_study(sc: StudyConfig, jobs: int = 1, baseline: bool = True) -> optuna.Study:
    """Run the missing trials of ``sc`` with ``jobs`` processes; returns the study."""
    if not 1 <= jobs <= 256:
        raise ConfigError(f"--jobs={jobs}: allowed range is 1..256")
    from hw.cli import check_writable
    from train.run import prepare
    check_writable(sc.out, "study.out")                      # all checks before the study is created
    _, data = prepare(sc.train)                              # the data loads and fits the chip
    study = open_study(sc)                                   # validates storage before any work
    optuna.storages.fail_stale_trials(study)
    if baseline and not study.trials and "bptt" in sc.methods and "atan" in sc.surrogates:
        # snnTorch tutorial defaults (beta 0.95, threshold 1, arctan) as the reference point
        params = {"method": "bptt", "surrogate": "atan", "surrogate_scale_factor": 1.0, "beta": 0.95, "theta": 1.0}
        study.enqueue_trial({k: v for k, v in params.items() if k in ("method", "surrogate") or
                             not sc.ranges[k].fixed}, user_attrs={"baseline": "snntorch defaults"},
                            skip_if_exists=True)
    if missing_trials(study, sc.n_trials) == 0:
        return study
    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    if jobs == 1:
        stop = _stop_workers_on_signal([])      # SIGTERM ends the running trial as FAILED, like Ctrl-C
        try:
            _worker(sc, sc.n_trials, 0, True, data=data)
        finally:
            stop()
    else:
        if waiting:   # enqueued trials first, here: parallel workers would race to pop the same one
            _worker(sc, min(sc.n_trials, sc.n_trials - missing_trials(study, sc.n_trials) + waiting), 0, False,
                    data=data)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(sc, sc.n_trials, i, i == 0, os.getpid())) for i in range(jobs)]
        stop = _stop_workers_on_signal(procs)
        try:
            for p in procs:
                p.start()
            for p in procs:
                p.join()
        finally:
            stop()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise RuntimeError(f"{len(bad)} study worker(s) failed (exit codes {bad}); completed trials are kept, "
                               "run the same command again to resume")
    return open_study(sc)
