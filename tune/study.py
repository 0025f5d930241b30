"""Create, run and resume Optuna studies on any Optuna RDB storage (SQLite file by default).

Trials send heartbeats; a trial whose process died (killed, crashed machine) is marked FAILED the next
time the study is run, and every completed trial is kept. ``run_study`` runs only the trials still
missing from ``n_trials`` (COMPLETE or PRUNED count as done), split over ``jobs`` worker processes.
"""
from __future__ import annotations

import multiprocessing as mp
import os
from pathlib import Path

import optuna
from optuna.trial import TrialState

from hw.config import ConfigError
from tune.config import StudyConfig

HEARTBEAT_S = int(os.environ.get("SPIKELOOP_HEARTBEAT_S", 10))   # a running trial's heartbeat period
GRACE_S = int(os.environ.get("SPIKELOOP_GRACE_S", 30))           # silence after which it counts as dead


def storage_for(url: str, heartbeat: int | None = None, grace: int | None = None) -> optuna.storages.RDBStorage:
    """An RDBStorage for ``url``; a broken database raises ConfigError naming it (the file is untouched)."""
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
    try:
        return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                          engine_kwargs={"pool_pre_ping": True})
    except Exception as e:  # SQLAlchemy/driver errors: report which storage and why
        raise ConfigError(f"storage {url}: cannot be opened as an Optuna database ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:300]}); nothing was changed") from e


def make_sampler(sc: StudyConfig, worker: int = 0):
    seed = None if sc.seed is None else sc.seed + 1000 * worker
    if sc.objective == "weighted":
        return optuna.samplers.TPESampler(seed=seed)
    if sc.sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, sc.n_trials // 2)))
    return optuna.samplers.TPESampler(seed=seed, multivariate=True)


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
    if study.user_attrs.get("objectives") is None:
        study.set_user_attr("objectives", ["accuracy"] if sc.objective == "weighted"
                            else ["accuracy", "latency_us", "fps_per_watt"])
    return study


def missing_trials(study: optuna.Study, n_trials: int) -> int:
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    return max(0, n_trials - done)


def _worker(sc: StudyConfig, n: int, worker: int, show_progress: bool) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    from train.common import Encoded
    from train.data import load_dataset
    from tune.objective import objective
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(sc, worker=worker)
    split = load_dataset(sc.dataset, seed=sc.seed, train_size=sc.train_size)
    data = Encoded.from_split(split, steps=sc.steps, encoder=sc.encoder, seed=sc.seed)
    study.optimize(lambda t: objective(t, sc, data), n_trials=n, show_progress_bar=show_progress,
                   catch=(RuntimeError, FloatingPointError))


def run_study(sc: StudyConfig, jobs: int = 1, baseline: bool = True) -> optuna.Study:
    """Run the missing trials of ``sc`` with ``jobs`` processes; returns the study."""
    if not 1 <= jobs <= 256:
        raise ConfigError(f"--jobs={jobs}: allowed range is 1..256")
    study = open_study(sc)                                   # validates storage before any work
    optuna.storages.fail_stale_trials(study)
    if baseline and not study.trials and "bptt" in sc.methods and "atan" in sc.surrogates:
        # snnTorch tutorial defaults (beta 0.95, threshold 1, arctan) as the reference point
        params = {"method": "bptt", "surrogate": "atan", "surrogate_scale_factor": 1.0, "beta": 0.95, "threshold": 1.0}
        study.enqueue_trial({k: v for k, v in params.items() if k in ("method", "surrogate") or
                             not sc.ranges[k].fixed}, user_attrs={"baseline": "snntorch defaults"},
                            skip_if_exists=True)
    n = missing_trials(study, sc.n_trials)
    sc.out.mkdir(parents=True, exist_ok=True)
    if n == 0:
        return study
    if jobs == 1:
        _worker(sc, n, 0, True)
    else:
        share = [n // jobs + (i < n % jobs) for i in range(jobs)]
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=_worker, args=(sc, k, i, i == 0)) for i, k in enumerate(share) if k > 0]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        bad = [p.exitcode for p in procs if p.exitcode]
        if bad:
            raise RuntimeError(f"{len(bad)} study worker(s) failed (exit codes {bad}); completed trials are kept, "
                               "run the same command again to resume")
    return open_study(sc)
