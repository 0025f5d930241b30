"""The one place that turns an exception into the one line a user sees, and its exit code.

``spikeloop`` (:func:`tune.cli.main`) and a study's worker processes (:mod:`tune.study`) both end through
:func:`explain`, in the style of Optuna's own ``cli.py``: a user's mistake (:class:`hw.config.ConfigError`)
exits 2; a problem of the machine or of the storage met during the work (a full disk, a read-only database,
an interrupted run) exits 1 (130 for an interrupt) with one line that names the file or the storage and says
that completed work is kept. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import os

from hw.config import ConfigError
from hw.files import MACHINE_ERRNOS


class StudyStopped(Exception):
    """A study stopped before its requested count for a reason the user must act on (not a bug): too many
    consecutive failed trials, or a worker process that died. Completed trials are kept. Exit code 1."""


def _root(e: BaseException) -> BaseException:
    """The innermost cause of a wrapped exception (Optuna's StorageInternalError wraps SQLAlchemy's, which
    wraps the driver's)."""
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        inner = getattr(e, "orig", None) or e.__cause__
        if inner is None:
            break
        e = inner
    return e


def first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


def storage_problem(url: str, e: BaseException) -> str:
    """One line for a storage error met while reading or writing ``url`` (full disk, read-only file, ...)."""
    root = _root(e)
    return (f"storage {url}: {first_line(root)} ({type(root).__name__}); completed trials are kept — free the "
            "disk or make the database writable, then run the same command again")


def explain(e: BaseException, storage: str | None = None) -> tuple[int, str] | None:
    """``(exit code, one line)`` for an exception a user can act on, or None for a bug (keep the traceback)."""
    if isinstance(e, KeyboardInterrupt):        # first: it may have stopped the imports below half-way
        return 130, (f"spikeloop: interrupted{': ' + str(e) if str(e) else ''}; completed work is kept "
                     "(run the same command again to resume a study)")
    from train.surrogates import TrainingDiverged
    if isinstance(e, ConfigError):
        return 2, f"spikeloop: error: {e}"
    if isinstance(e, TrainingDiverged):
        return 1, f"spikeloop: training diverged: {e}"
    from hw.files import WriteFailed
    if isinstance(e, WriteFailed):              # hw.cli.writing: a full disk while writing an output
        return 1, f"spikeloop: error: {e}"
    if isinstance(e, StudyStopped):
        return 1, f"spikeloop: study stopped: {e}"
    try:
        import optuna
        import sqlalchemy.exc
        storage_errors = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError)
    except ImportError:                         # pragma: no cover - both are dependencies
        storage_errors = ()
    if storage_errors and isinstance(e, storage_errors):
        return 1, f"spikeloop: error: {storage_problem(storage or 'the study database', e)}"
    if isinstance(e, OSError) and (e.filename is not None or e.errno in MACHINE_ERRNOS):
        where = (f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 else "")) if e.filename else "writing a file"
        reason = e.strerror or (os.strerror(e.errno) if e.errno else first_line(e))
        return 1, f"spikeloop: error: {where}: {reason}; completed work is kept"
    return None
