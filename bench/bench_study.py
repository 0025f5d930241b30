"""Study speed, as records: one worker vs two on the same trials, and what the re-check adds to the default study.

    python -m bench.bench_study workers [--trials N] [--repeats 2] [--publish]    # record study_workers
    python -m bench.bench_study workers --cli [--repeats 2] [--publish]    # record study_workers_cli
    python -m bench.bench_study recheck [--publish]                 # record study_recheck_cost
    python -m bench.bench_study machine [--repeats 4] [--publish]   # record machine_scaling

``workers``: the same designs — as many as the default study's trials (``n_trials`` of DEFAULT_TOML, 12; or
``--trials``), drawn once by a seeded random sampler from its search space and enqueued, so both runs train
exactly the same trials — run with ``--jobs 1`` and ``--jobs 2``; wall time, CPU time of the command (with
``--jobs 2`` it is worker 0 and trains too) and of the fork server and its forked worker, when each worker
took its first trial, the trials' own CPU time and the thread pools they ran with. The goal is >= 1.6x on an
idle 2-core machine; a loaded machine shares its cores with other work, so the record keeps the load average
before and after (``machine``) and the ratio is only comparable at similar load.

``workers --cli``: what a user sees — the wall time of ``spikeloop study run --jobs 1`` and ``--jobs 2`` as
fresh processes (``python -m tune.cli``; each pays its own imports, which the in-process runs above do not:
there the bench has imported torch & co. before timing), on the same enqueued designs in a fresh storage per
run, runs interleaved (1 2 2 1, ``--repeats`` blocks) after one throwaway run (``--jobs 2``: it warms the disk
cache for every import). The default study without its re-check (``[report] recheck_seeds = 0``: the search
only, as in-process); the command's report (plots, tables) is in both wall times. A run's wall time ends when
the command exits (its output goes to a file, not a pipe that a fork server still ending would hold open).

``machine``: what two busy processes get from this machine's two cores, with no study in it: a pure-Python busy
loop (no memory traffic, no I/O, no shared state) run for ``SECONDS`` in one process, then in two at once,
interleaved (1 2 2 1, ``--repeats`` blocks); the loop's iterations per second, the two processes' sum over the one
process's rate (2.0 would be two independent cores), and the kernel's user / system / idle / steal shares over each
run (``/proc/stat``). The ceiling any two-worker study has on this machine, whatever its code.

``recheck``: the default study (``tune/config.py`` DEFAULT_TOML) with ``spikeloop study run``'s steps —
search, then the re-check of the baseline and the best Pareto trials on fresh seeds — with the CPU time and
wall time of each part (CPU time of this process: ``--jobs 1`` runs everything here).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args, spread  # noqa: E402


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
        ordered = sorted(trials, key=lambda t: t.number)
        trial_cpu = [t.user_attrs.get("cpu_s", 0.0) for t in ordered]
        from tune.study import CLAIM_ATTR
        me = os.getpid()
        by_command = [t.system_attrs.get(CLAIM_ATTR) == me for t in ordered]
        forked = [t.datetime_start.timestamp() for t, c in zip(ordered, by_command) if not c]
        threads = sorted({json.dumps(t.user_attrs.get("threads"), sort_keys=True) for t in ordered})
        from tune.study import heartbeat_lapses
        beats = heartbeat_lapses(study)          # trials failed as stale and run again; duplicates of live ones
    # jobs 1: everything is the command's; jobs 2: the command (worker 0: set-up and trials), the fork server's
    # own (its imports) and its reaped children's (the forked worker)
    return {"jobs": jobs, "wall_s": wall, "cpu_s": cpu, "command_cpu_s": command if jobs > 1 else cpu,
            "server_cpu_s": server_own, "forked_cpu_s": cpu - command - server_own if jobs > 1 else 0.0,
            "trials": len(trials), "cpu_s_per_trial": cpu / max(1, len(trials)), "trial_seconds_sum": sum(dur),
            "trials_own_cpu_s": sum(trial_cpu), "trial_cpu_s": trial_cpu,
            "first_trial_after_s": starts[0] - t0 if starts else None,
            "forked_first_trial_after_s": min(forked) - t0 if forked else None,
            "trial_by_command": by_command, "threads": [json.loads(x) for x in threads], "load_before": list(load),
            "load_after": list(os.getloadavg()), "trial_seconds": dur,
            "heartbeat_lapsed": beats["lapsed"], "heartbeat_discarded": beats["discarded"],
            "heartbeat_max_gap_s": beats["max_gap_s"], "sched": _sched()}


def workers(a) -> None:
    from tune.config import StudyConfig
    if a.trials is None:
        a.trials = StudyConfig.load(None).n_trials          # what `spikeloop study run` runs by default
    order = [1, 2, 2, 1] * a.repeats               # interleaved (ABBA): a drifting load hits both alike
    import torch  # noqa: F401  the command's own imports, paid alike with one or two workers, are not timed
    import train.run  # noqa: F401
    import tune.objective  # noqa: F401
    design_seed, study_seed = (1, 0) if a.seed is None else (a.seed, a.seed)
    with Recorder(a.name or "study_workers_default", args=a, seeds=[design_seed], params={"trials": a.trials, "study": "DEFAULT_TOML",
                  "default_study_trials": StudyConfig.load(None).n_trials,
                  "design_sampler": f"random, seed {design_seed}", "design_seed": design_seed,
                  "study_seed": study_seed, "cores": os.cpu_count(), "order": order,
                  "start_method": "forkserver (tune.study.worker_context); the command is worker 0"}) as rec:
        runs = []
        for jobs in order:
            r = _one_run(a, jobs)
            runs.append(r)
            rec.round(**r)
            print(f"jobs={jobs}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} CPU s (fork server {r['server_cpu_s']:.1f}), "
                  f"{r['trials']} trials ({r['trials_own_cpu_s']:.1f} CPU s inside), first trial after "
                  f"{r['first_trial_after_s']:.1f} s, forked worker's after {r['forked_first_trial_after_s']}, "
                  f"load {r['load_before'][0]:.1f}", flush=True)
        rec.summary = summarise(runs)
    print(VIEWS["workers"](rec.as_dict()))


def _cli_run(a, jobs: int, tmp: Path, toml: Path, k: int, designs: list[dict]) -> dict:
    """``spikeloop study run --jobs {jobs}`` as a fresh process on ``designs`` enqueued in a fresh storage."""
    import subprocess
    from optuna.trial import TrialState
    from tune.config import StudyConfig
    from tune.study import open_study
    run = tmp / f"run{k}"
    run.mkdir()
    over = {"storage": f"sqlite:///{run}/s.db", "out": str(run / "out"), "n_trials": len(designs),
            "name": f"cli{k}"}
    study = open_study(StudyConfig.load(toml, over))
    for p in designs:
        study.enqueue_trial(p)
    del study
    argv = [sys.executable, "-m", "tune.cli", "study", "run", "--config", str(toml), "--storage", over["storage"],
            "--out", over["out"], "--n-trials", str(len(designs)), "--name", over["name"], "--jobs", str(jobs)]
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root)] + ([os.environ["PYTHONPATH"]]
                                                                      if os.environ.get("PYTHONPATH") else [])))
    load = os.getloadavg()
    with open(run / "log.txt", "w") as log:
        t0 = time.time()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=run,
                                env=env)
        rc = proc.wait()
        wall = time.time() - t0
    study = open_study(StudyConfig.load(toml, over))
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    done = len(trials)
    if rc != 0 or done != len(designs):
        raise SystemExit(f"bench_study: `{' '.join(argv)}` exited {rc} with {done} of {len(designs)} trials; "
                         f"its output:\n{(run / 'log.txt').read_text()[-3000:]}")
    return {"jobs": jobs, "wall_s": wall, "trials": done, "returncode": rc, "load_before": list(load),
            "load_after": list(os.getloadavg()), **_phases(trials, t0, wall, proc.pid), "sched": _sched()}


def _phases(trials, t0: float, wall: float, command: int) -> dict:
    """Where a run's wall time went, from its trials' start and end times (Optuna stamps them with this machine's
    clock): ``head_s`` from the command's start to its first trial (interpreter, imports, data, storage),
    ``tail_s`` from the last trial's end to the command's exit (the report, the exit), ``trials_s`` between,
    the forked workers' first trial, each worker's trial seconds, and ``end_alone_s``: how long the last trial
    ran alone at the end while the other workers had nothing left to take."""
    from tune.study import CLAIM_ATTR
    start = [t.datetime_start.timestamp() - t0 for t in trials]
    end = [t.datetime_complete.timestamp() - t0 for t in trials]
    by: dict[str, list] = {}
    for t, a, b in zip(trials, start, end):
        who = "command" if t.system_attrs.get(CLAIM_ATTR) == command else "forked"
        by.setdefault(who, []).append((a, b))
    last = {w: max(b for _, b in v) for w, v in by.items()}
    return {"head_s": min(start), "trials_s": max(end) - min(start), "tail_s": wall - max(end),
            "first_trial_after_s": {w: min(a for a, _ in v) for w, v in by.items()},
            "busy_s": {w: sum(b - a for a, b in v) for w, v in by.items()},
            "trials_by": {w: len(v) for w, v in by.items()},
            "end_alone_s": max(last.values()) - min(last.values()) if len(last) > 1 else 0.0}


def _sched() -> dict:
    """This process's CPU scheduling (inherited by the command): its nice value and, where the kernel groups
    processes by session (autogroup), its group's nice, which weighs it against other sessions' processes
    (a process's own nice value does not)."""
    out = {"nice": os.nice(0)}
    try:
        out["autogroup"] = Path("/proc/self/autogroup").read_text().strip()
        out["autogroup_enabled"] = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        pass
    return out


def workers_cli(a) -> None:
    """``workers --cli``: ``spikeloop study run`` as fresh processes, --jobs 1 against --jobs 2."""
    from tune.config import DEFAULT_TOML, StudyConfig
    if a.trials is None:
        a.trials = StudyConfig.load(None).n_trials
    order = [1, 2, 2, 1] * a.repeats
    design_seed = 1 if a.seed is None else a.seed
    text = DEFAULT_TOML + "\n[report]\nrecheck_seeds = 0\n"
    if a.seed is not None:
        text = text.replace("\nseed = 0\n", f"\nseed = {a.seed}\n", 1)
    with tempfile.TemporaryDirectory() as tmp_name, \
            Recorder(a.name or "study_workers_cli", args=a,
                     seeds=[design_seed], params={
                         "trials": a.trials, "study": "DEFAULT_TOML, [report] recheck_seeds = 0",
                         "design_sampler": f"random, seed {design_seed}", "design_seed": design_seed,
                         "study_seed": 0 if a.seed is None else a.seed, "cores": os.cpu_count(), "order": order,
                         "warm_up": "one throwaway run with --jobs 2 first",
                         "command": "python -m tune.cli study run --config T --storage S --out O --n-trials N "
                                    "--name X --jobs J (a fresh process per run)"}) as rec:
        tmp = Path(tmp_name)
        toml = tmp / "study.toml"
        toml.write_text(text)
        designs = _designs(StudyConfig.load(toml), a.trials, design_seed)
        warm = _cli_run(a, 2, tmp, toml, 0, designs)
        print(f"throwaway jobs=2: {warm['wall_s']:.1f} s", flush=True)
        runs = []
        for k, jobs in enumerate(order, start=1):
            r = _cli_run(a, jobs, tmp, toml, k, designs)
            runs.append(r)
            rec.round(**r)
            print(f"jobs={jobs}: {r['wall_s']:.1f} s wall, load {r['load_before'][0]:.1f}", flush=True)
        rec.summary = {**summarise_cli(runs), "throwaway_wall_s": warm["wall_s"]}
    print(VIEWS["workers_cli"](rec.as_dict()))


def pair_ratios(runs: list[dict]) -> dict:
    """The ratio per pair of runs next to each other in the interleaved order (1 2 | 2 1: the i-th --jobs 1 run
    over the i-th --jobs 2 run): each, mean ± std, min / median / max."""
    import statistics as st
    ones, twos = [r["wall_s"] for r in runs if r["jobs"] == 1], [r["wall_s"] for r in runs if r["jobs"] == 2]
    rs = [a / b for a, b in zip(ones, twos)]
    return {"each": rs, "mean": st.mean(rs), "std": st.stdev(rs) if len(rs) > 1 else 0.0, "min": min(rs),
            "median": st.median(rs), "max": max(rs)}


def summarise_cli(runs: list[dict]) -> dict:
    """``workers --cli``: summed wall times of the --jobs 1 runs over the --jobs 2 runs, the ratio per pair, each
    run's wall time, mean ± std; where the runs recorded them, the phases (:func:`_phases`) per --jobs, mean."""
    import statistics as st
    by = {j: [r["wall_s"] for r in runs if r["jobs"] == j] for j in (1, 2)}
    out = {"speedup": sum(by[1]) / sum(by[2]), "pairs": len(by[2]), "wall_s": {str(j): by[j] for j in (1, 2)},
           "mean_wall_s": {str(j): st.mean(by[j]) for j in (1, 2)},
           "std_wall_s": {str(j): st.stdev(by[j]) if len(by[j]) > 1 else 0.0 for j in (1, 2)},
           "load_mean": st.mean(r["load_before"][0] for r in runs),
           "load_max": max(max(r["load_before"][0], r.get("load_after", r["load_before"])[0]) for r in runs),
           "pair_ratio": pair_ratios(runs)}
    if all("head_s" in r for r in runs):
        mean = lambda j, f: st.mean(f(r) for r in runs if r["jobs"] == j)
        out["phases"] = {str(j): {"head_s": mean(j, lambda r: r["head_s"]), "trials_s": mean(j, lambda r: r["trials_s"]),
                                  "tail_s": mean(j, lambda r: r["tail_s"]),
                                  "end_alone_s": mean(j, lambda r: r["end_alone_s"])} for j in (1, 2)}
        forked = [r["first_trial_after_s"]["forked"] for r in runs if "forked" in r["first_trial_after_s"]]
        out["forked_first_trial_after_s"] = st.mean(forked) if forked else None
        out["serial_s"] = out["phases"]["1"]["head_s"] + out["phases"]["1"]["tail_s"]
        # the ratio if the one-worker run's trials split perfectly over two workers and the rest stayed serial
        out["bound_speedup"] = out["mean_wall_s"]["1"] / (out["serial_s"] + out["phases"]["1"]["trials_s"] / 2)
        out["trials_speedup"] = out["phases"]["1"]["trials_s"] / out["phases"]["2"]["trials_s"]
        # the workers' seconds inside trials (all workers summed) with two workers over one: > 0 when two workers
        # slow each other down (caches, the storage's write lock, disk flushes)
        busy = {j: st.mean(sum(r["busy_s"].values()) for r in runs if r["jobs"] == j) for j in (1, 2)}
        out["trials_busy_extra"] = busy[2] / busy[1] - 1
    return out


def view_workers_cli(rec: dict) -> str:
    s = rec["summary"]
    ph = s.get("phases")
    rows = ["| `spikeloop study run` | runs | wall s (each run, in order) | wall s, mean ± std |"
            + (" before the first trial s | trials s | after the last trial s |" if ph else ""),
            "|---|---|---|---|" + ("---|---|---|" if ph else "")]
    for j in ("1", "2"):
        rows.append(f"| `--jobs {j}` | {len(s['wall_s'][j])} | {', '.join(f'{w:.1f}' for w in s['wall_s'][j])} | "
                    f"{s['mean_wall_s'][j]:.1f} ± {s['std_wall_s'][j]:.1f} |"
                    + (f" {ph[j]['head_s']:.1f} | {ph[j]['trials_s']:.1f} | {ph[j]['tail_s']:.1f} |" if ph else ""))
    idle = max(rec["machine"]["load_before"][0], s["load_mean"]) < 0.5
    pr = s.get("pair_ratio")
    spread = (f"; per pair of runs {pr['mean']:.2f} ± {pr['std']:.2f}, min / median / max {pr['min']:.2f} / "
              f"{pr['median']:.2f} / {pr['max']:.2f} over {len(pr['each'])} pairs" if pr else "")
    text = (f"The command as a user runs it, a fresh process per run (its imports included), on the same "
            f"{rec['params']['trials']} enqueued trials, runs interleaved (order "
            f"{' '.join(map(str, rec['params']['order']))}) after a throwaway run: `--jobs 2` **{s['speedup']:.2f}x** "
            f"`--jobs 1` (summed wall times{spread}; {rec['machine']['cores']} cores, load average "
            f"{s['load_mean']:.1f} at the runs' starts"
            + (")." if idle else " — a shared machine: not the idle machine's ratio).")
            + " The search only (re-check off) plus the report both commands write.")
    if ph:
        sched = rec["rounds"][0].get("sched", {})
        text += (f" Serial in both (means): {ph['1']['head_s']:.1f} s before the first trial (interpreter, imports, "
                 f"data, storage) and {ph['1']['tail_s']:.1f} s after the last one (report, exit), "
                 f"{s['serial_s']:.1f} s of the one-worker run's {s['mean_wall_s']['1']:.1f} s, so even its trials "
                 f"split perfectly over two workers would give at most {s['bound_speedup']:.2f}x; the trials "
                 f"themselves ran {s['trials_speedup']:.2f}x faster with two workers, whose seconds inside trials "
                 f"added up to {100 * s['trials_busy_extra']:+.0f} % of one worker's. With two workers "
                 f"the forked worker took its first trial {s['forked_first_trial_after_s']:.1f} s after the start "
                 f"(the command {ph['2']['head_s']:.1f} s), and the last trial ran alone for "
                 f"{ph['2']['end_alone_s']:.1f} s at the end."
                 + (f" The runs' scheduling: nice {sched['nice']}, session group ({sched['autogroup']})."
                    if "autogroup" in sched else ""))
    return "\n".join(rows + ["", text])


def _lanes(run: dict) -> float:
    """Projected idle wall time of a two-worker run from its CPU times: lane 0 (the command) starts at once,
    lane 1 (the forked worker) after the fork server's imports and its own start-up; each lane also pays its CPU
    time outside trials; the trials (their measured CPU times, in trial order) go to whichever lane is free
    first, as workers take them."""
    own = run["trial_cpu_s"]
    mine = [c for c, b in zip(own, run["trial_by_command"]) if b]
    theirs = [c for c, b in zip(own, run["trial_by_command"]) if not b]
    lane = [max(0.0, run["command_cpu_s"] - sum(mine)),
            run["server_cpu_s"] + max(0.0, run["forked_cpu_s"] - sum(theirs))]
    for c in own:
        i = lane.index(min(lane))
        lane[i] += c
    return max(lane)


def summarise(runs: list[dict]) -> dict:
    """Same-run ratio (summed walls, ABBA order), CPU per trial, and the idle projection from CPU time (runs of
    records before the command became worker 0: :func:`_summarise_v2`)."""
    import statistics as st
    if any("trial_by_command" not in r for r in runs):
        return _summarise_v2(runs)
    by = {j: [r for r in runs if r["jobs"] == j] for j in (1, 2)}
    mean = lambda j, k: st.mean(r[k] for r in by[j])
    cpu1 = mean(1, "cpu_s")
    wall2 = st.mean(_lanes(r) for r in by[2])
    forked = [r["forked_first_trial_after_s"] for r in by[2] if r.get("forked_first_trial_after_s") is not None]
    return {"version": 3, "speedup": sum(r["wall_s"] for r in by[1]) / sum(r["wall_s"] for r in by[2]),
            "pairs": len(by[2]),
            "wall_s": {str(j): [r["wall_s"] for r in by[j]] for j in (1, 2)},
            "cpu_s": {str(j): mean(j, "cpu_s") for j in (1, 2)},
            "cpu_s_per_trial": {str(j): mean(j, "cpu_s_per_trial") for j in (1, 2)},
            "trials_own_cpu_s": {str(j): mean(j, "trials_own_cpu_s") for j in (1, 2)},
            "command_cpu_s_jobs2": mean(2, "command_cpu_s"), "server_cpu_s_jobs2": mean(2, "server_cpu_s"),
            "forked_cpu_s_jobs2": mean(2, "forked_cpu_s"),
            "trials_by_command_jobs2": st.mean(sum(r["trial_by_command"]) for r in by[2]),
            "first_trial_after_s": {str(j): mean(j, "first_trial_after_s") for j in (1, 2)},
            "forked_first_trial_after_s": st.mean(forked) if forked else None,
            "threads": sorted({json.dumps(t, sort_keys=True) for r in runs for t in r["threads"]}),
            "projected_idle_wall_s": {"1": cpu1, "2": wall2},
            "projected_idle_speedup": cpu1 / wall2,
            "load_mean": st.mean(r["load_before"][0] for r in runs), "pair_ratio": pair_ratios(runs)}


def _summarise_v2(runs: list[dict]) -> dict:
    """The summary of runs recorded before the command became worker 0 (fork server, all workers forked)."""
    import statistics as st
    by = {j: [r for r in runs if r["jobs"] == j] for j in (1, 2)}
    mean = lambda j, k: st.mean(r[k] for r in by[j])
    durations = by[1][0]["trial_seconds"]
    balance = 2 * _in_order_makespan(durations, 2) / sum(durations)      # >= 1: trials do not split evenly
    cpu1 = mean(1, "cpu_s")
    serial2, parallel2 = mean(2, "serial_cpu_s"), mean(2, "workers_cpu_s")
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
            first = len(candidates(study, sc))
            r = recheck(study, sc, jobs=1, progress=False)
            c2, t2 = _cpu(), time.time()
        n = len(r["trials"])              # with a stopped candidate, the window's next one took its place
        runs = sum(len(v) for v in r["trials"].values())
        rec.summary = {"n_trials": sc.n_trials, "recheck_seeds": sc.recheck_seeds, "rechecked_trials": n,
                       "recheck_trials": sc.recheck_trials, "first_candidates": first,
                       "recheck_runs": runs, "stopped": r.get("stopped", {}),
                       "runs_without_stopping": n * sc.recheck_seeds,
                       "search_cpu_s": c1 - c0, "recheck_cpu_s": c2 - c1, "search_wall_s": t1 - t0,
                       "recheck_wall_s": t2 - t1, "recheck_share_of_search_cpu": (c2 - c1) / (c1 - c0)}
    print(VIEWS["recheck"](rec.as_dict()))


def view_workers(rec: dict) -> str:
    s = rec["summary"]
    if "projected_idle_speedup" not in s:
        return _view_workers_v1(rec)
    if s.get("version") != 3:
        return _view_workers_v2(rec)
    rows = ["| workers | runs | wall s (each run, in order) | CPU s, all processes (mean) | CPU s per trial | "
            "of which inside the trials | first trial after s | the forked worker's first trial after s |",
            "|---|---|---|---|---|---|---|---|"]
    for j in ("1", "2"):
        runs = [r for r in rec["rounds"] if str(r["jobs"]) == j]
        forked = "—" if j == "1" or s["forked_first_trial_after_s"] is None else f"{s['forked_first_trial_after_s']:.1f}"
        rows.append(f"| {j} | {len(runs)} | {', '.join(f'{w:.0f}' for w in s['wall_s'][j])} | {s['cpu_s'][j]:.1f} | "
                    f"{s['cpu_s_per_trial'][j]:.2f} | {s['trials_own_cpu_s'][j]:.1f} | "
                    f"{s['first_trial_after_s'][j]:.1f} | {forked} |")
    n = rec["rounds"][0]["trials"]
    p = s["projected_idle_wall_s"]
    idle = max(rec["machine"]["load_before"][0], s["load_mean"]) < 0.5
    threads = "; ".join(", ".join(f"{k} {v}" for k, v in json.loads(t).items()) for t in s["threads"])
    return "\n".join(rows + ["", (
        f"Same runs interleaved (order {' '.join(map(str, rec['params']['order']))}) on the same {n} trials ("
        + ("the default study's count" if rec["params"].get("default_study_trials", n) == n else
           f"the default study runs {rec['params']['default_study_trials']}")
        + f"): two workers **{s['speedup']:.2f}x** one (summed wall times"
        + (f"; per pair of runs {s['pair_ratio']['mean']:.2f} ± {s['pair_ratio']['std']:.2f}, min / median / max "
           f"{s['pair_ratio']['min']:.2f} / {s['pair_ratio']['median']:.2f} / {s['pair_ratio']['max']:.2f}"
           if "pair_ratio" in s else "") + "; "
        f"{rec['machine']['cores']} cores, load average {s['load_mean']:.1f} at the runs' starts"
        + (")." if idle else " — a shared machine: not the idle machine's ratio).")
        + f" CPU time per trial: {s['cpu_s_per_trial']['1']:.2f} s with one worker, {s['cpu_s_per_trial']['2']:.2f} s "
        f"with two ({100 * (s['cpu_s']['2'] / s['cpu_s']['1'] - 1):+.0f} %: the fork server's imports, "
        f"{s['server_cpu_s_jobs2']:.1f} s, and the forked worker's start-up). With two workers the command is "
        f"worker 0 and took {s['trials_by_command_jobs2']:.1f} of the {n} trials; the forked worker's imports ran "
        f"beside them. The trials ran with these thread pools: {threads}. Projected for an idle machine from the "
        f"CPU times (not measured: two lanes, the command from the start and the forked worker after the fork "
        f"server's imports and its start-up, each trial to the lane free first): {p['1']:.1f} s against "
        f"{p['2']:.1f} s, **{s['projected_idle_speedup']:.2f}x**.")])


def _view_workers_v2(rec: dict) -> str:
    """Records of the fork server before the command became worker 0."""
    s = rec["summary"]
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
        at_a_time = (f", `recheck_trials` = {s['recheck_trials']}" if "recheck_trials" in s else "")
        return (f"Default study ({s['n_trials']} trials, one worker{at_a_time}): search {s['search_cpu_s']:.0f} CPU s "
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


#: how long each busy-loop run of ``machine`` lasts (s)
SECONDS = 4.0
_BUSY = ("import time\nend = time.perf_counter() + {secs}\nn = 0\nwhile time.perf_counter() < end:\n"
         "    n += 1\nprint(n)\n")


def _cpu_shares() -> list[int]:
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:9]]


def _busy(n: int) -> dict:
    """``n`` busy-loop processes at once for :data:`SECONDS`: each one's iterations per second, and the
    machine's CPU shares over the run."""
    import subprocess
    before = _cpu_shares()
    procs = [subprocess.Popen([sys.executable, "-c", _BUSY.format(secs=SECONDS)], stdout=subprocess.PIPE,
                              text=True) for _ in range(n)]
    rates = [int(p.communicate()[0]) / SECONDS for p in procs]
    d = [b - a for a, b in zip(before, _cpu_shares())]
    total = sum(d) or 1
    return {"processes": n, "rates": rates, "user": d[0] / total, "system": d[2] / total, "idle": d[3] / total,
            "steal": d[7] / total, "load_before": list(os.getloadavg())}


def machine(a) -> None:
    """``machine``: one busy process against two, interleaved (record machine_scaling)."""
    order = [1, 2, 2, 1] * a.repeats
    with Recorder(a.name or "machine_scaling", args=a, seeds=[], params={
            "loop": "pure-Python busy loop (a counter against time.perf_counter)", "seconds": SECONDS,
            "order": order, "cores": os.cpu_count()}) as rec:
        _busy(2)                                            # warm-up, not kept
        runs = [_busy(n) for n in order]
        rec.rounds = runs
        ones = [r["rates"][0] for r in runs if r["processes"] == 1]
        twos = [sum(r["rates"]) for r in runs if r["processes"] == 2]
        pairs = [b / a_ for a_, b in zip(ones, twos)]
        per = [x / o for r, o in zip([r for r in runs if r["processes"] == 2], ones) for x in r["rates"]]
        rec.summary = {"scaling": sum(twos) / sum(ones), "pair_scaling": spread(pairs),
                       "per_process_of_alone": spread(per),
                       "steal_max": max(r["steal"] for r in runs),
                       "idle_two_mean": spread([r["idle"] for r in runs if r["processes"] == 2])["mean"]}
    s = rec.summary
    print(f"two busy processes: {s['scaling']:.2f}x one (per pair {s['pair_scaling']['min']:.2f}-"
          f"{s['pair_scaling']['max']:.2f}; each at {s['per_process_of_alone']['mean']:.0%} of its speed alone; "
          f"steal at most {s['steal_max']:.1%})")


VIEWS = {"workers": view_workers, "workers_cli": view_workers_cli, "recheck": view_recheck}


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


def workers_cli_ratios(rec: dict) -> dict[str, dict]:
    """The speed ratio the ``workers --cli`` view renders, for bench/recheck.py: ``{"workers_cli/wall": {"label",
    "rounds", "value"}}``. A *round* is one pair of runs next to each other in the interleaved order (1 2 | 2 1):
    the i-th ``--jobs 1`` run's wall time over the i-th ``--jobs 2`` run's (:func:`pair_ratios`, from the record's
    runs, so records written before the summary kept them count alike); ``value`` is the record's own summary
    (summed wall times, what the docs show). ``{}`` for a record of another bench (no ``--cli`` runs)."""
    runs = [r for r in rec.get("rounds", []) if r.get("jobs") in (1, 2) and "wall_s" in r]
    if "command" not in rec.get("params", {}) or not any(r["jobs"] == 2 for r in runs) or \
            not any(r["jobs"] == 1 for r in runs):
        return {}
    return {"workers_cli/wall": {"label": "`spikeloop study run --jobs 2` ÷ `--jobs 1`, wall time of the command "
                                          "(measured, loaded machine)",
                                 "rounds": pair_ratios(runs)["each"], "value": summarise_cli(runs)["speedup"]}}


def _recheck_argv(seed: int, name: str) -> list[str]:
    """A re-run of ``workers --cli`` for bench/recheck.py: ``name`` is ``study_workers_cli_seedN``."""
    return ["-m", "bench.bench_study", "workers", "--cli", "--repeats", "2", "--seed", str(seed), "--name", name]


#: how ``python -m bench.recheck study_workers_cli`` re-runs ``workers --cli`` with unseen inputs: other designs
#: (the random sampler's seed) and another study seed (data split, training), the default study's 12 trials, two
#: ABBA blocks. The in-process 8-trial base ``study_workers`` is retired: it measured the fork server before the
#: command became worker 0, so today's ``workers --trials 8`` is not a run of the code its spread describes (its
#: three re-checks on record, ``recheck_study_workers*``, are of that older code). ``older`` names records
#: called ``BASE_seedN`` that are not runs of today's bench: ``study_workers_cli_seed29`` predates the
#: write-ahead-log storage and the command's head changes, so it stays out of the stated spread.
RECHECK = {
    "bases": ("study_workers_cli",),    # study_workers (older code), _spawn, _default, recheck_cost: not re-checked
    # ran code before the start-up cuts of session 10 (no torch._dynamo, no scikit-learn in training, the report
    # process): study_workers_cli_session9 is that code's base
    "older": {"study_workers_cli": ("study_workers_cli_seed29", "study_workers_cli_seed61", "study_workers_cli_seed62",
                                    "study_workers_cli_seed63", "study_workers_cli_seed64")},
    "seed": lambda rec: rec["params"].get("design_seed", rec["seeds"][0]),
    "argv": _recheck_argv,
    "ratios": workers_cli_ratios,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", choices=["workers", "recheck", "machine"])
    ap.add_argument("--trials", type=int, default=None,
                    help="workers: designs to run (default: the default study's n_trials)")
    ap.add_argument("--repeats", type=int, default=1, help="workers: ABBA blocks (1 2 2 1) to run")
    ap.add_argument("--cli", action="store_true",
                    help="workers: time `spikeloop study run --jobs 1/2` as fresh processes (record "
                         "study_workers_cli) instead of run_study in this process")
    ap.add_argument("--seed", type=int, default=None,
                    help="workers: seed of the drawn designs and of the study (data split, training); "
                         "default: designs of seed 1, study seed 0 (the published record)")
    ap.add_argument("--name", default=None,
                    help="workers: the record's name (default study_workers_default: the default study's trial "
                         "count, the command as worker 0; study_workers_seedN for a re-check; with --cli "
                         "study_workers_cli)")
    add_record_args(ap)
    a = ap.parse_args()
    if a.seed is not None and not 0 <= a.seed <= 2**31 - 1:
        ap.exit(2, f"bench_study: --seed {a.seed}: expected 0..2147483647\n")
    if (a.trials is not None and a.trials < 1) or a.repeats < 1:
        ap.exit(2, "bench_study: --trials and --repeats must be >= 1\n")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    if a.cli and a.which != "workers":
        ap.exit(2, "bench_study: --cli goes with workers\n")
    if a.which == "machine":
        machine(a)
    elif a.which == "recheck":
        recheck_cost(a)
    else:
        workers_cli(a) if a.cli else workers(a)


if __name__ == "__main__":
    main()
