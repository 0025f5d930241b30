"""The worker processes' fork server and thread pools, without the heavy imports.

``spikeloop study run --jobs N`` starts the fork server (:func:`start_fork_server`) right after parsing its
arguments, before it imports torch for its own config and data (``tune.config`` imports ``train.config``,
hence torch): the server's imports, the head of a two-worker study, then overlap the command's own. So this
module imports only the standard library; ``tune.study`` re-exports its names.
"""
from __future__ import annotations

import multiprocessing as mp
import os


def thread_share(jobs: int) -> int:
    """Threads each of ``jobs`` worker processes may use: its share of the cores (at least 1)."""
    return max(1, (os.cpu_count() or 1) // jobs)


#: the environment variables that size the thread pools of OpenBLAS, OpenMP, MKL and numba at import time
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _thread_env(n: int):
    """:data:`THREAD_ENV` set to ``n`` for the block (processes started in it inherit them), then restored."""
    from hw.env import environ
    return environ({k: str(n) for k in THREAD_ENV})


#: what a worker process imports before and during its trials: torch (~2 CPU s), numba, NeuroBench, the report's
#: module (a report process is a fork too: tune.report.ReportProcess); what opening an RDB storage imports
#: (alembic, mako, pygments, SQLAlchemy's dialects, Optuna's models: ~1 s of each forked worker's start-up before
#: they were listed here) and the trainers a trial imports lazily. (Not torch._dynamo: torch.optim.Adam imported
#: it, as much again as torch per process, so the trainers use :class:`train.optim.Adam`, which does not; and not
#: scikit-learn, which training no longer imports: train.data.) Worker processes are forks of one fork server
#: that imported these once (:func:`worker_context`), not fresh interpreters that each import them again (two
#: spawned workers cost +42 % CPU time over one worker; docs/guides/studies.md, bench/bench_study.py). Of
#: spikeloop's own modules only ``tune.study`` reads the environment at import; a worker re-reads it after taking
#: on the command's environment (:func:`tune.study._adopt`).
WORKER_PRELOAD = ["torch", "snntorch", "optuna", "sqlalchemy", "tqdm", "numba", "neurobench", "sqlalchemy.orm",
                  "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "sqlalchemy.dialects.mysql",
                  "alembic.command", "alembic.config", "alembic.migration", "alembic.script",
                  "optuna.storages._rdb.models", "tune.study", "tune.objective", "tune.recheck", "tune.report",
                  "train.run", "train.trainers", "train.bptt", "train.cilspl", "train.mh", "sim.metrics",
                  "sim.kernels", "sim.lazy"]


def worker_context():
    """The multiprocessing context of study and re-check workers: ``forkserver`` (Linux, macOS) with
    :data:`WORKER_PRELOAD` imported once in the server, else ``spawn``. A worker is a fork of a process that
    never trained anything (no thread pools, no open databases), unlike a fork of the command itself."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_PRELOAD)       # used when the server starts (once per command)
    return ctx


def start_fork_server(jobs: int) -> bool:
    """Start :func:`worker_context`'s fork server now (a no-op if it runs, or without one), its thread pools sized
    for ``jobs`` workers, with Ctrl-C ignored: the server ignores SIGINT only once its imports are done, so a
    Ctrl-C in the seconds before would print its import's traceback under the command's one line. Its workers
    take Ctrl-C as the command does again (:func:`tune.study._adopt`). True if this call started it."""
    if worker_context().get_start_method() != "forkserver":
        return False
    import signal
    import threading
    from multiprocessing import forkserver
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if previous is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)        # inherited by the server's interpreter
    running = forkserver._forkserver._forkserver_pid is not None
    try:
        with _thread_env(thread_share(jobs)):
            forkserver.ensure_running()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return not running


def stop_fork_server() -> None:
    """End the fork server this process started, now, even while it still imports (SIGTERM, then reaped): a
    command refused or stopped before its workers started leaves no process behind that holds its output pipes
    for seconds. Only once no worker of it runs (a worker's exit code comes through the server). A no-op without
    a server, or where multiprocessing's fork server lacks these (private) attributes."""
    import signal
    from multiprocessing import forkserver
    fs = getattr(forkserver, "_forkserver", None)
    pid = getattr(fs, "_forkserver_pid", None)
    if pid is None or not hasattr(fs, "_stop"):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    fs._stop()                      # closes its "alive" pipe, reaps it, removes its socket
