"""Heartbeat gaps of study workers on this machine, as a record: how late a worker's heartbeat comes.

    python -m bench.bench_heartbeat [--trials 8] [--jobs 2] [--beat 1] [--publish]    # record study_heartbeat

A tiny study (tests/tune/conftest.py's, with slower MH trials) runs with ``--jobs`` workers and a heartbeat
every ``--beat`` s (the grace period stays the default, so nothing lapses); each trial records the longest
silence between two of its heartbeats as its worker wrote them (``heartbeat_max_gap_s``: the heartbeat
thread's scheduling delay on a loaded machine, the GIL, waits for the database's write lock). The lateness
(gap - beat) is what a grace period must cover; the record keeps the load average before and after.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args  # noqa: E402

STUDY = """
[study]
name = "hb"
n_trials = {trials}
seed = 0
[data]
dataset = "breast_cancer"
steps = 6
train_size = 60
[chip]
layer_sizes = [30, 8, 2]
lanes = 4
[search]
methods = ["mh"]
surrogates = ["atan", "fast_sigmoid"]
[search.mh]
iters = [1500, 1500]
[report]
recheck_seeds = 0
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--beat", type=int, default=1, help="heartbeat period, s")
    add_record_args(ap)
    a = ap.parse_args()
    import numpy as np
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    os.environ["SPIKELOOP_HEARTBEAT_S"] = str(a.beat)
    import tune.study
    from optuna.trial import TrialState
    from tune.config import StudyConfig
    beat, grace = tune.study.heartbeat_settings()
    tune.study.HEARTBEAT_S, tune.study.GRACE_S = beat, grace
    with Recorder("study_heartbeat", args=a, seeds=[0], params={"trials": a.trials, "jobs": a.jobs,
                                                                 "heartbeat_s": beat, "grace_s": grace}) as rec:
        with tempfile.TemporaryDirectory() as tmp:
            toml = Path(tmp) / "hb.toml"
            toml.write_text(STUDY.format(trials=a.trials))
            sc = StudyConfig.load(toml, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out"})
            load = os.getloadavg()
            study = tune.study.run_study(sc, jobs=a.jobs, baseline=False)
            h = tune.study.heartbeat_lapses(study)
            gaps = []
            for t in study.trials:
                g = t.user_attrs.get("heartbeat_max_gap_s")
                dur = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
                rec.round(trial=t.number, state=t.state.name, seconds=dur, heartbeat_max_gap_s=g)
                if g is not None and t.state in (TrialState.COMPLETE, TrialState.PRUNED):
                    gaps.append(g)
        rec.summary.update(
            trials=len(gaps), load_before=list(load), load_after=list(os.getloadavg()),
            max_gap_s=max(gaps), mean_max_gap_s=float(np.mean(gaps)), std_max_gap_s=float(np.std(gaps)),
            max_lateness_s=max(gaps) - beat, lapsed=h["lapsed"], discarded=h["discarded"])
    print(rec.summary)


if __name__ == "__main__":
    main()
