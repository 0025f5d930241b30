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


def _designs(sc, n: int, seed: int = 1) -> list[dict]:
    """``n`` designs of ``sc``'s search space, drawn by a random sampler of ``seed`` (no training)."""
    import optuna
    from tune.objective import trial_config
    study = optuna.create_study(directions=["maximize", "minimize", "maximize"],
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        t = study.ask()
        trial_config(t, sc)
        out.append(dict(t.params))
        study.tell(t, state=optuna.trial.TrialState.PRUNED)
    return out


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a running process, from /proc."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(f[11]) + int(f[12])) / tick, (int(f[13]) + int(f[14])) / tick


def _in_order_makespan(durations: list[float], workers: int) -> float:
    """Wall time of ``workers`` processes taking the trials in order, each the next one when free."""
    free = [0.0] * workers
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


def _one_run(a, jobs: int) -> dict:
    """One study of ``a.trials`` enqueued designs with ``jobs`` workers in a fresh storage; wall and CPU time
    split into the command's own (serial: data, storage, the fork server's imports) and the workers'."""
    import multiprocessing.forkserver as fs
    from optuna.trial import TrialState
    from tune.config import StudyConfig
    from tune.study import open_study, run_study
    with tempfile.TemporaryDirectory() as tmp:
        sc = StudyConfig.load(None, {"storage": f"sqlite:///{tmp}/s.db", "out": f"{tmp}/out",
                                     "n_trials": a.trials, "name": f"bench{jobs}",
                                     **({} if a.seed is None else {"seed": a.seed})})
        study = open_study(sc)
        for p in _designs(sc, a.trials, 1 if a.seed is None else a.seed):
            study.enqueue_trial(p)
        fs._forkserver._stop()                    # each run starts its own fork server, as a command does
        load = os.getloadavg()
        own0 = resource.getrusage(resource.RUSAGE_SELF)
        t0, c0 = time.time(), _cpu()
        study = run_study(sc, jobs=jobs, baseline=False)
        wall = time.time() - t0
        server = fs._forkserver._forkserver_pid
        server_own, workers_cpu = _proc_cpu(server) if server else (0.0, 0.0)
        fs._forkserver._stop()
        cpu = _cpu() - c0
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        command = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime
        trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
        starts = sorted(t.datetime_start.timestamp() for t in trials)
        dur = [(t.datetime_complete - t.datetime_start).total_seconds()
               for t in sorted(trials, key=lambda t: t.number)]
        trial_cpu = [t.user_attrs.get("cpu_s", 0.0) for t in sorted(trials, key=lambda t: t.number)]
        from tune.study import heartbeat_lapses
        beats = heartbeat_lapses(study)          # trials failed as stale and run again; duplicates of live ones
    if jobs == 1:
        serial, parallel = cpu, 0.0
    else:
        serial, parallel = command + server_own, cpu - command - server_own
    return {"jobs": jobs, "wall_s": wall, "cpu_s": cpu, "serial_cpu_s": serial, "workers_cpu_s": parallel,
            "command_cpu_s": command if jobs > 1 else cpu, "server_cpu_s": server_own,
            "trials": len(trials), "cpu_s_per_trial": cpu / max(1, len(trials)), "trial_seconds_sum": sum(dur),
            "trials_own_cpu_s": sum(trial_cpu), "trial_cpu_s": trial_cpu,
            "first_trial_after_s": starts[0] - t0 if starts else None, "load_before": list(load),
            "load_after": list(os.getloadavg()), "trial_seconds": dur,
            "heartbeat_lapsed": beats["lapsed"], "heartbeat_discarded": beats["discarded"],
            "heartbeat_max_gap_s": beats["max_gap_s"]}


def workers(a) -> None:
    order = [1, 2, 2, 1] * a.repeats               # interleaved (ABBA): a drifting load hits both alike
    import torch  # noqa: F401  the command's own imports, paid alike with one or two workers, are not timed
    import train.run  # noqa: F401
    import tune.objective  # noqa: F401
    design_seed, study_seed = (1, 0) if a.seed is None else (a.seed, a.seed)
    with Recorder(a.name, args=a, seeds=[design_seed], params={"trials": a.trials, "study": "DEFAULT_TOML",
                  "design_sampler": f"random, seed {design_seed}", "design_seed": design_seed,
                  "study_seed": study_seed, "cores": os.cpu_count(), "order": order,
                  "start_method": "forkserver (tune.study.worker_context)"}) as rec:
        runs = []
        for jobs in order:
            r = _one_run(a, jobs)
            runs.append(r)
            rec.round(**r)
            print(f"jobs={jobs}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s ({r['serial_cpu_s']:.1f} serial), "
                  f"{r['trials']} trials, first trial after {r['first_trial_after_s']:.1f} s, "
                  f"load {r['load_before'][0]:.1f}", flush=True)
        rec.summary = summarise(runs)
    print(VIEWS["workers"](rec.as_dict()))


def summarise(runs: list[dict]) -> dict:
    """Same-run ratio (summed walls, ABBA order), CPU per trial, and the idle projection from CPU time."""
    import statistics as st
    by = {j: [r for r in runs if r["jobs"] == j] for j in (1, 2)}
    mean = lambda j, k: st.mean(r[k] for r in by[j])
    durations = by[1][0]["trial_seconds"]
    balance = 2 * _in_order_makespan(durations, 2) / sum(durations)      # >= 1: trials do not split evenly
    cpu1 = mean(1, "cpu_s")
    serial2, parallel2 = mean(2, "serial_cpu_s"), mean(2, "workers_cpu_s")
    # before the workers start, the command's set-up and the fork server's imports run at the same time (the
    # server is started first thing in run_study); after it, the command only waits for the workers
    head2 = max(mean(2, "command_cpu_s"), mean(2, "server_cpu_s")) if "server_cpu_s" in by[2][0] else serial2
    projected_wall2 = head2 + balance * parallel2 / 2
    return {"speedup": sum(r["wall_s"] for r in by[1]) / sum(r["wall_s"] for r in by[2]),
            "pairs": len(by[2]),
            "wall_s": {str(j): [r["wall_s"] for r in by[j]] for j in (1, 2)},
            "cpu_s": {str(j): mean(j, "cpu_s") for j in (1, 2)},
            "cpu_s_per_trial": {str(j): mean(j, "cpu_s_per_trial") for j in (1, 2)},
            "trials_own_cpu_s": {str(j): mean(j, "trials_own_cpu_s") for j in (1, 2)},
            "serial_cpu_s_jobs2": serial2, "workers_cpu_s_jobs2": parallel2, "balance": balance, "head_cpu_s_jobs2": head2,
            **({"command_cpu_s_jobs2": mean(2, "command_cpu_s"), "server_cpu_s_jobs2": mean(2, "server_cpu_s")}
               if "server_cpu_s" in by[2][0] else {}),
            "projected_idle_wall_s": {"1": cpu1, "2": projected_wall2},
            "projected_idle_speedup": cpu1 / projected_wall2,
            "load_mean": st.mean(r["load_before"][0] for r in runs)}


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
            r = recheck(study, sc, jobs=1, progress=False)
            c2, t2 = _cpu(), time.time()
        runs = sum(len(v) for v in r["trials"].values())
        rec.summary = {"n_trials": sc.n_trials, "recheck_seeds": sc.recheck_seeds, "rechecked_trials": n,
                       "recheck_runs": runs, "stopped": r.get("stopped", {}),
                       "runs_without_stopping": n * sc.recheck_seeds,
                       "search_cpu_s": c1 - c0, "recheck_cpu_s": c2 - c1, "search_wall_s": t1 - t0,
                       "recheck_wall_s": t2 - t1, "recheck_share_of_search_cpu": (c2 - c1) / (c1 - c0)}
    print(VIEWS["recheck"](rec.as_dict()))


def view_workers(rec: dict) -> str:
    s = rec["summary"]
    if "projected_idle_speedup" not in s:
        return _view_workers_v1(rec)
    rows = ["| workers | runs | wall s (each run, in order) | CPU s, all processes (mean) | CPU s per trial | "
            "of which inside the trials | serial: command + fork server |", "|---|---|---|---|---|---|---|"]
    for j in ("1", "2"):
        runs = [r for r in rec["rounds"] if str(r["jobs"]) == j]
        serial = "all" if j == "1" else f"{s['serial_cpu_s_jobs2']:.1f}"
        rows.append(f"| {j} | {len(runs)} | {', '.join(f'{w:.0f}' for w in s['wall_s'][j])} | {s['cpu_s'][j]:.1f} | "
                    f"{s['cpu_s_per_trial'][j]:.2f} | {s['trials_own_cpu_s'][j]:.1f} | {serial} |")
    n = rec["rounds"][0]["trials"]
    p = s["projected_idle_wall_s"]
    return "\n".join(rows + ["", (
        f"Measured, same runs interleaved (order {' '.join(map(str, rec['params']['order']))}) on the same {n} "
        f"trials: two workers {s['speedup']:.2f}x one (summed wall times; {rec['machine']['cores']} cores, "
        f"load average {s['load_mean']:.1f} at the runs' starts — a shared machine, where two processes get "
        f"more than one process's share of the cores, so this is not the idle machine's ratio). "
        f"CPU time per trial: {s['cpu_s_per_trial']['1']:.2f} s with one worker, {s['cpu_s_per_trial']['2']:.2f} s "
        f"with two ({100 * (s['cpu_s']['2'] / s['cpu_s']['1'] - 1):+.0f} %). Projected for an idle machine "
        f"(not measured): one worker's wall = its CPU time, {p['1']:.1f} s; two workers' = the head "
        + (f"(the longer of the command's {s['command_cpu_s_jobs2']:.1f} s and the fork server's "
           f"{s['server_cpu_s_jobs2']:.1f} s, which run at the same time: {s['head_cpu_s_jobs2']:.1f} s)"
           if "server_cpu_s_jobs2" in s else f"({s['serial_cpu_s_jobs2']:.1f} s, command + fork server)")
        + f" + the workers' CPU time ({s['workers_cpu_s_jobs2']:.1f} s) / 2 × "
        f"{s['balance']:.2f} (how unevenly these trials split over two workers taking them in order, from the "
        f"one-worker run's trial times) = {p['2']:.1f} s: **{s['projected_idle_speedup']:.2f}x**.")])


def _view_workers_v1(rec: dict) -> str:
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
    if "recheck_runs" in s:
        stopped = (f"; {len(s['stopped'])} candidate(s) stopped as out of reach after "
                   f"{', '.join(map(str, s['stopped'].values()))} seed(s)" if s["stopped"] else "; none stopped")
        return (f"Default study ({s['n_trials']} trials, one worker): search {s['search_cpu_s']:.0f} CPU s "
                f"({s['search_wall_s']:.0f} s wall); re-check of {s['rechecked_trials']} trials (the baseline and "
                f"{s['rechecked_trials'] - 1} Pareto trial(s) in the window) on {s['recheck_seeds']} fresh seeds: "
                f"{s['recheck_runs']} trainings of at most {s['runs_without_stopping']}{stopped}; "
                f"{s['recheck_cpu_s']:.0f} CPU s ({s['recheck_wall_s']:.0f} s wall), "
                f"**{100 * s['recheck_share_of_search_cpu']:.0f} % of the search** (load average "
                f"{rec['machine']['load_before'][0]:.1f} at the start).")
    return (f"Default study ({s['n_trials']} trials, one worker): search {s['search_cpu_s']:.0f} CPU s "
            f"({s['search_wall_s']:.0f} s wall); re-check of {s['rechecked_trials']} trials on "
            f"{s['recheck_seeds']} fresh seeds {s['recheck_cpu_s']:.0f} CPU s ({s['recheck_wall_s']:.0f} s wall), "
            f"{100 * s['recheck_share_of_search_cpu']:.0f} % of the search (load average "
            f"{rec['machine']['load_before'][0]:.1f} at the start).")


VIEWS = {"workers": view_workers, "recheck": view_recheck}


def workers_ratios(rec: dict) -> dict[str, dict]:
    """The speed ratios the ``workers`` view renders, for bench/recheck.py: ``{key: {"label", "rounds",
    "value"}}``. A *round* is one pair of runs next to each other in the interleaved order (1 2 | 2 1): the
    i-th one-worker run with the i-th two-worker run, each pair summarised as the whole record is; ``value`` is
    the record's own summary (what the docs show). Keys: ``workers/wall`` (two workers' speed ÷ one's, summed
    wall times), ``workers/projected`` (the idle-machine projection from CPU time), ``workers/cpu`` (CPU time
    with two workers ÷ with one)."""
    runs = rec["rounds"]
    ones, twos = [r for r in runs if r["jobs"] == 1], [r for r in runs if r["jobs"] == 2]
    pairs = [summarise([a, b]) for a, b in zip(ones, twos)]
    s = rec["summary"]
    if not pairs or "projected_idle_speedup" not in s:
        return {}
    what = {"workers/wall": ("two workers ÷ one worker, wall time (measured, loaded machine)",
                             lambda x: x["speedup"]),
            "workers/projected": ("two workers ÷ one worker, projected for an idle machine from CPU time",
                                  lambda x: x["projected_idle_speedup"]),
            "workers/cpu": ("CPU time with two workers ÷ with one", lambda x: x["cpu_s"]["2"] / x["cpu_s"]["1"])}
    return {k: {"label": label, "rounds": [f(p) for p in pairs], "value": f(s)} for k, (label, f) in what.items()}


#: how ``python -m bench.recheck study_workers`` re-runs ``workers`` with unseen inputs: other designs (the
#: random sampler's seed) and another study seed (data split, training), the base record's 8 trials
RECHECK = {
    "seed": lambda rec: rec["params"].get("design_seed", rec["seeds"][0]),
    "argv": lambda seed, name: ["-m", "bench.bench_study", "workers", "--trials", "8", "--seed", str(seed),
                                "--name", name],
    "ratios": workers_ratios,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["workers", "recheck"])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1, help="workers: ABBA blocks (1 2 2 1) to run")
    ap.add_argument("--seed", type=int, default=None,
                    help="workers: seed of the drawn designs and of the study (data split, training); "
                         "default: designs of seed 1, study seed 0 (the published record)")
    ap.add_argument("--name", default="study_workers",
                    help="workers: the record's name (default study_workers; study_workers_seedN for a re-check)")
    add_record_args(ap)
    a = ap.parse_args()
    if a.seed is not None and not 0 <= a.seed <= 2**31 - 1:
        ap.exit(2, f"bench_study: --seed {a.seed}: expected 0..2147483647\n")
    if a.trials < 1 or a.repeats < 1:
        ap.exit(2, "bench_study: --trials and --repeats must be >= 1\n")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    workers(a) if a.which == "workers" else recheck_cost(a)


if __name__ == "__main__":
    main()
