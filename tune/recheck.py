"""After the search: the baseline and the best Pareto trials re-run on fresh seeds, paired by seed.

A study scores each trial on one draw (or ``[study] seeds_per_trial``): one split of the data, one set of
initial weights, one chip instance. A lever measured on one draw may not survive another (a trade-off that
gave −35.8 % latency on its draw gave −18.7 % and −6.4 % on two new seeds and a dead network on three of
five). So before the report, :func:`recheck` re-runs the baseline trial and up to ``[report] recheck_trials``
Pareto trials on ``[report] recheck_seeds`` fresh seeds — each seed draws a new split, encoding, initial
weights and fault instance, the **same** for every re-run design (paired) — and keeps every measurement in
the study's user attribute ``recheck``. The report ranks the trade-offs by those means and states how many
seeds back each number (:mod:`tune.report`).

Which Pareto trials: those the report's rule can pick first — within :data:`WINDOW` of the baseline's search
accuracy, lowest latency first — then the most accurate others. Resumable: a (trial, seed) pair already
measured is not re-run.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from tune.config import StudyConfig

#: the study user attribute that holds the re-run measurements
RECHECK_ATTR = "recheck"
#: the report's "best trade-off within N points" rule (N = 3 accuracy points)
WITHIN = 0.03
#: candidates for the re-run: Pareto trials within this much of the baseline's (single-draw) accuracy
WINDOW = 2 * WITHIN
METRICS = ("val_accuracy", "latency_us", "fps_per_watt", "test_accuracy")


def fresh_seeds(sc: StudyConfig) -> list[int]:
    """Seeds no trial trains with (trials use ``study.seed + number`` and ``+ 100000·i``)."""
    base = 2**31 + (sc.seed % 2**20) * 100
    return [base + i for i in range(sc.recheck_seeds)]


def baseline_trial(study: optuna.Study):
    return next((t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                 if t.user_attrs.get("baseline")), None)


def candidates(study: optuna.Study, sc: StudyConfig) -> list:
    """The baseline (first, if complete) and up to ``sc.recheck_trials`` Pareto trials to re-run."""
    from tune.report import pareto_trials
    base = baseline_trial(study)
    front = [t for t in pareto_trials(study) if base is None or t.number != base.number]
    acc = lambda t: t.user_attrs.get("val_accuracy", t.values[0])
    lat = lambda t: t.user_attrs.get("latency_us", t.values[1] if len(t.values) > 1 else 0.0)
    if base is not None:
        near = sorted((t for t in front if acc(t) >= acc(base) - WINDOW), key=lat)
        rest = sorted((t for t in front if acc(t) < acc(base) - WINDOW), key=lambda t: -acc(t))
        order = near + rest
    else:
        order = sorted(front, key=lambda t: -acc(t))
    return ([base] if base is not None else []) + order[:sc.recheck_trials]


def stored(study: optuna.Study) -> dict:
    """``{"seeds": [...], "trials": {"<number>": {"<seed>": {metric: value, "dead": reason|None}}}}``."""
    return json.loads(json.dumps(study.user_attrs.get(RECHECK_ATTR) or {"seeds": [], "trials": {}}))


_DATA: dict = {}            # per process: the encoded data of a seed (every design of that seed shares it)


def _job(job) -> dict:
    """One re-run: the trial's own TrainConfig (from its artefacts) with ``seed`` for split, encoding,
    initial weights and fault instance; its objectives on the validation set."""
    sc, train_config, clock, seed = job
    import torch
    torch.set_num_threads(1)
    from train.config import TrainConfig
    from train.run import prepare, run_training
    from tune.objective import measure
    import warnings
    from train.common import DeadNetworkWarning
    # a result saved before bias_input existed had none (to_dict now always writes it out)
    tc = TrainConfig.from_dict({"bias_input": False, **train_config})
    tc = tc.replace(seed=seed, faults=dataclasses.replace(tc.faults, seed=seed))
    if seed not in _DATA:
        _DATA.clear()
        _DATA[seed] = prepare(sc.train.replace(seed=seed, faults=tc.faults, bias_input=False))[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeadNetworkWarning)         # kept in the record instead
        r = run_training(tc, data=_DATA[seed], progress=False)
    return {**measure(r, sc, clock), "dead": r.extra.get("dead"), "seconds": r.seconds}


def recheck(study: optuna.Study, sc: StudyConfig, jobs: int = 1, progress: bool = True) -> dict:
    """Re-run the candidates on the fresh seeds (missing pairs only); store and return the measurements."""
    seeds = fresh_seeds(sc)
    rec = stored(study)
    if not seeds or sc.objective != "multi":
        return rec
    todo = []
    for t in candidates(study, sc):
        have = rec["trials"].get(str(t.number), {})
        art = Path(t.user_attrs["artefacts"]) / "result.json"
        train_config = json.loads(art.read_text())["train_config"]
        clock = t.user_attrs.get("synth_fmax_mhz") if sc.clock == "fmax" else None
        todo += [(t.number, (sc, train_config, clock, s)) for s in seeds if str(s) not in have]
    rec["seeds"] = sorted(set(rec["seeds"]) | set(seeds))
    if not todo:
        return rec
    todo.sort(key=lambda x: x[1][3])             # seed by seed: one data encoding per seed and process
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc=f"re-check on {len(seeds)} fresh seeds", disable=not progress)

    def keep(number, seed, m):
        rec["trials"].setdefault(str(number), {})[str(seed)] = m
        study.set_user_attr(RECHECK_ATTR, rec)      # after every run: a stopped re-check resumes
        bar.update()

    if jobs == 1:
        for number, job in todo:
            keep(number, job[3], _job(job))
    else:
        from concurrent.futures import ProcessPoolExecutor
        from tune.study import _adopt, parent_state, worker_context
        with ProcessPoolExecutor(jobs, mp_context=worker_context(), initializer=_adopt,
                                 initargs=(parent_state(),)) as ex:
            for (number, job), m in zip(todo, ex.map(_job, [j for _, j in todo])):
                keep(number, job[3], m)
    bar.close()
    return rec


def summary(rec: dict, number: int, baseline: int | None = None) -> dict | None:
    """Mean ± std (sample) of a re-run trial's metrics over its seeds, the seeds' count, how many were dead,
    and — with ``baseline`` — the paired differences (accuracy points, latency %) over the common seeds."""
    runs = rec.get("trials", {}).get(str(number))
    if not runs:
        return None
    out = {"n": len(runs), "dead": sum(bool(m.get("dead")) for m in runs.values())}
    for k in METRICS:
        v = np.array([m[k] for m in runs.values()], float)
        out[k] = (float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0)
    base = rec["trials"].get(str(baseline)) if baseline is not None and baseline != number else None
    if base:
        common = [s for s in runs if s in base]
        da = np.array([runs[s]["val_accuracy"] - base[s]["val_accuracy"] for s in common])
        dl = np.array([100 * (runs[s]["latency_us"] / base[s]["latency_us"] - 1) for s in common])
        sd = lambda v: float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out["paired_n"] = len(common)
        out["d_val_accuracy"] = (float(da.mean()), sd(da))
        out["d_latency_pct"] = (float(dl.mean()), sd(dl))
    return out
