"""Study speed, as records: one worker vs two on the same trials, and what the re-check adds to the default study.

    python -m bench.bench_study workers [--trials 8] [--publish]    # record study_workers
    python -m bench.bench_study recheck [--publish]                 # record study_recheck_cost

``workers``: the same ``--trials`` designs (drawn once by a seeded random sampler from the default study's
search space and enqueued, so both runs train exactly the same trials) run with ``--jobs 1`` and ``--jobs 2``;
wall time, each worker's start-up (spawn to its first trial) and the trials' own durations. The goal is
>= 1.6x on an idle 2-core machine; a loaded machine shares its cores with other work, so the record keeps the
load average before and after (``machine``) and the ratio is only comparable at similar load.

``recheck``: the default study (``tune/config.py`` DEFAULT_TOML) with ``spikeloop study run``'s steps —
search, then the re-check of the baseline and the best Pareto trials on fresh seeds — with the CPU time and
wall time of each part (CPU time of this process: ``--jobs 1`` runs everything here).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def _designs(sc, n: int) -> list[dict]:
    """``n`` designs of ``sc``'s search space, drawn by a seeded random sampler (no training)."""
    import optuna
    from tune.objective import trial_config
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=1))
    out = []
    for _ in range(n):
        t = study.ask()
        trial_config(t, sc)
        out.append(dict(t.params))
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
    return out


def workers(a) -> None:
    import optuna
    from optuna.trial import TrialState
    from tune.config import StudyConfig
    from tune.study import open_study, run_study
    with Recorder("study_workers", args=a, seeds=[0, 1], params={"trials": a.trials, "study": "DEFAULT_TOML",
                  "design_sampler": "random, seed 1", "cores": os.cpu_count()}) as rec:
        res = {}
        for jobs in (1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                sc = StudyConfig.load(None, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out",
                                             "n_trials": a.trials, "name": f"bench{jobs}"})
                study = open_study(sc)
                for p in _designs(sc, a.trials):
                    study.enqueue_trial(p)
                load = os.getloadavg()
                t0, c0 = time.time(), _cpu()
                study = run_study(sc, jobs=jobs, baseline=False)
                wall, cpu = time.time() - t0, _cpu() - c0
                trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
                starts = sorted(t.datetime_start.timestamp() for t in trials)
                dur = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
                res[jobs] = {"wall_s": wall, "cpu_s": cpu, "trials": len(trials), "trial_seconds_sum": sum(dur),
                             "first_trial_after_s": starts[0] - t0 if starts else None,
                             "load_before": list(load), "load_after": list(os.getloadavg())}
                rec.round(jobs=jobs, **res[jobs], trial_seconds=dur)
                print(f"jobs={jobs}: {wall:.1f} s wall, {cpu:.1f} CPU s, {len(trials)} trials, trials' own time {sum(dur):.1f} s, "
                      f"first trial after {res[jobs]['first_trial_after_s']:.1f} s, load {load[0]:.1f}", flush=True)
        rec.summary = {"speedup": res[1]["wall_s"] / res[2]["wall_s"], **{f"jobs{j}": r for j, r in res.items()}}
    print(VIEWS["workers"](rec.as_dict()))


def recheck_cost(a) -> None:
    from tune.config import StudyConfig
    from tune.recheck import candidates, recheck
    from tune.study import run_study
    with Recorder("study_recheck_cost", args=a, seeds=[0], params={"study": "DEFAULT_TOML", "jobs": 1}) as rec:
        with tempfile.TemporaryDirectory() as tmp:
            sc = StudyConfig.load(None, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out"})
            c0, t0 = _cpu(), time.time()
            study = run_study(sc, jobs=1)
            c1, t1 = _cpu(), time.time()
            n = len(candidates(study, sc))
            recheck(study, sc, jobs=1, progress=False)
            c2, t2 = _cpu(), time.time()
        rec.summary = {"n_trials": sc.n_trials, "recheck_seeds": sc.recheck_seeds, "rechecked_trials": n,
                       "search_cpu_s": c1 - c0, "recheck_cpu_s": c2 - c1, "search_wall_s": t1 - t0,
                       "recheck_wall_s": t2 - t1, "recheck_share_of_search_cpu": (c2 - c1) / (c1 - c0)}
    print(VIEWS["recheck"](rec.as_dict()))


def view_workers(rec: dict) -> str:
    s = rec["summary"]
    rows = ["| workers | trials | wall s | CPU s (all processes) | trials' own wall time s | first trial after s | "
            "load average (1 min) before |", "|---|---|---|---|---|---|---|"]
    for j in (1, 2):
        r = s[f"jobs{j}"]
        cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "—"
        rows.append(f"| {j} | {r['trials']} | {r['wall_s']:.1f} | {cpu} | {r['trial_seconds_sum']:.1f} | "
                    f"{r['first_trial_after_s']:.1f} | {r['load_before'][0]:.1f} |")
    idle = rec['machine']['load_before'][0] < 0.5
    text = (f"Two workers: {s['speedup']:.2f}x one worker on the same {s['jobs1']['trials']} trials "
            f"({rec['machine']['cores']} cores; load average {rec['machine']['load_before'][0]:.1f} at the start — "
            + ("an idle machine)." if idle else "NOT an idle machine: other work shared the cores, and two processes "
               "get twice one process's share of a busy machine, so this ratio is not the idle machine's)."))
    if "cpu_s" in s["jobs1"] and "cpu_s" in s["jobs2"]:
        text += (f" CPU time, which the load inflates far less: {s['jobs1']['cpu_s']:.1f} s with one worker, "
                 f"{s['jobs2']['cpu_s']:.1f} s with two ({100 * (s['jobs2']['cpu_s'] / s['jobs1']['cpu_s'] - 1):+.0f} %: "
                 "the spawned worker's start-up); on an idle machine with the work split evenly that bounds the "
                 f"speed-up at 2 × {s['jobs1']['cpu_s']:.1f} / {s['jobs2']['cpu_s']:.1f} = "
                 f"{2 * s['jobs1']['cpu_s'] / s['jobs2']['cpu_s']:.2f}x (a projection, not measured).")
    return "\n".join(rows + ["", text])


def view_recheck(rec: dict) -> str:
    s = rec["summary"]
    return (f"Default study ({s['n_trials']} trials, one worker): search {s['search_cpu_s']:.0f} CPU s "
            f"({s['search_wall_s']:.0f} s wall); re-check of {s['rechecked_trials']} trials on "
            f"{s['recheck_seeds']} fresh seeds {s['recheck_cpu_s']:.0f} CPU s ({s['recheck_wall_s']:.0f} s wall), "
            f"{100 * s['recheck_share_of_search_cpu']:.0f} % of the search (load average "
            f"{rec['machine']['load_before'][0]:.1f} at the start).")


VIEWS = {"workers": view_workers, "recheck": view_recheck}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["workers", "recheck"])
    ap.add_argument("--trials", type=int, default=8)
    add_record_args(ap)
    a = ap.parse_args()
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    workers(a) if a.which == "workers" else recheck_cost(a)


if __name__ == "__main__":
    main()
