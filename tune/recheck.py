"""After the search: the baseline and the best Pareto trials re-run on fresh seeds, paired by seed.

A study scores each trial on one draw (or ``[study] seeds_per_trial``): one split of the data, one set of
initial weights, one chip instance. A lever measured on one draw may not survive another (the conv_seed002
study's latency trade-off did not survive new seeds: docs/guides/studies.md, record ``lever_conv_seed002``).
So before the report, :func:`recheck` re-runs the baseline trial and up to ``[report] recheck_trials``
Pareto trials on ``[report] recheck_seeds`` fresh seeds — each seed draws a new split, encoding, initial
weights and fault instance, the **same** for every re-run design (paired) — and keeps every measurement in
the study's user attribute ``recheck``. The report ranks the trade-offs by those means and states how many
seeds back each number (:mod:`tune.report`).

Which Pareto trials: those the report's rule can pick — within :data:`WINDOW` of the baseline's search
accuracy, lowest latency first, each design once — run seed by seed after the baseline, each stopped once it is
:func:`out_of_reach`. Resumable: a (trial, seed) pair already measured is not re-run.
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


def _design(t) -> str:
    """A trial's design (its parameters): two trials with the same design are re-checked once."""
    return json.dumps(t.params, sort_keys=True, default=str)


def candidates(study: optuna.Study, sc: StudyConfig, limit: int | None = None) -> list:
    """The baseline (first, if complete) and up to ``limit`` (default ``sc.recheck_trials``) Pareto trials to
    re-run: with a baseline, only those the report's rule can pick — within :data:`WINDOW` of the baseline's
    search accuracy, lowest latency first (a trial further below cannot be a trade-off "within 3 points" unless
    its draw was that unlucky: the window is twice the rule's width); without one, the most accurate. A design
    equal to one already listed (the same parameters, another draw) is not listed again. ``limit=0``: every
    such trial (the order in which :func:`recheck` takes them on)."""
    from tune.report import pareto_trials
    limit = sc.recheck_trials if limit is None else limit
    base = baseline_trial(study)
    front = [t for t in pareto_trials(study) if base is None or t.number != base.number]
    acc = lambda t: t.user_attrs.get("val_accuracy", t.values[0])
    lat = lambda t: t.user_attrs.get("latency_us", t.values[1] if len(t.values) > 1 else 0.0)
    if base is not None:
        order = sorted((t for t in front if acc(t) >= acc(base) - WINDOW), key=lat)
    else:
        order = sorted(front, key=lambda t: -acc(t))
    seen = {_design(base)} if base is not None else set()
    picked = []
    for t in order:
        if _design(t) not in seen and (not limit or len(picked) < limit):
            seen.add(_design(t))
            picked.append(t)
    return ([base] if base is not None else []) + picked


def out_of_reach(rec: dict, number: int, baseline: int, seeds: list[int]) -> bool:
    """True once trial ``number`` cannot meet the report's rule any more — its mean validation accuracy over
    ``seeds`` within :data:`WITHIN` of the baseline's — even if it scored 1.0 on every seed not yet run
    (the baseline has run them all). Such a trial cannot change the report; its re-check stops."""
    runs, base = rec["trials"].get(str(number), {}), rec["trials"].get(str(baseline), {})
    if any(str(s) not in base for s in seeds):
        return False
    done = [str(s) for s in seeds if str(s) in runs]
    best = sum(runs[s]["val_accuracy"] for s in done) + (len(seeds) - len(done))
    need = sum(base[str(s)]["val_accuracy"] for s in seeds) - len(seeds) * WITHIN
    return best < need - 1e-12


def stored(study: optuna.Study) -> dict:
    """``{"seeds": [...], "trials": {"<number>": {"<seed>": {metric: value, "dead": reason|None}}}}``."""
    return json.loads(json.dumps(study.user_attrs.get(RECHECK_ATTR) or {"seeds": [], "trials": {}}))


_DATA: dict = {}            # per process: the encoded data of the last seeds (every design of a seed shares it)
_DATA_SEEDS = 8


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
        while len(_DATA) >= _DATA_SEEDS:
            _DATA.pop(next(iter(_DATA)))
        _DATA[seed] = prepare(sc.train.replace(seed=seed, faults=tc.faults, bias_input=False))[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeadNetworkWarning)         # kept in the record instead
        r = run_training(tc, data=_DATA[seed], progress=False)
    return {**measure(r, sc, clock), "dead": r.extra.get("dead"), "seconds": r.seconds}


def recheck(study: optuna.Study, sc: StudyConfig, jobs: int = 1, progress: bool = True) -> dict:
    """Re-run the candidates on the fresh seeds (missing pairs only); store and return the measurements.

    The baseline runs on every seed first; then the other candidates seed by seed, and a candidate stops as
    soon as it is :func:`out_of_reach` (``rec["stopped"]``: after how many seeds; e.g. a network dead on its
    first seed) and the window's next trial (:func:`candidates` with ``limit=0``) takes its place, so up to
    ``recheck_trials`` trade-offs that can be reported rest on every fresh seed. Among the trials re-run, the
    report's choice is the one re-running each on every seed would give; a stopped trial's row rests on fewer
    seeds, and says so."""
    seeds = fresh_seeds(sc)
    rec = stored(study)
    if not seeds or sc.objective != "multi":
        return rec
    jobs_of = {}

    def job_of(t):
        art = Path(t.user_attrs["artefacts"]) / "result.json"
        train_config = json.loads(art.read_text())["train_config"]
        clock = t.user_attrs.get("synth_fmax_mhz") if sc.clock == "fmax" else None
        jobs_of[t.number] = (sc, train_config, clock)

    picked = candidates(study, sc)
    for t in picked:
        job_of(t)
    # the window's further candidates, in order: one takes the place of a candidate stopped as out of reach
    reserve = [t for t in candidates(study, sc, limit=0) if t.number not in jobs_of]
    rec["seeds"] = sorted(set(rec["seeds"]) | set(seeds))
    rec.setdefault("stopped", {})
    base = baseline_trial(study)
    base = base.number if base is not None and base.number in jobs_of else None
    missing = lambda n, ss: [(n, s) for s in ss if str(s) not in rec["trials"].get(str(n), {})]
    total = sum(len(missing(n, seeds)) for n in jobs_of)
    if not total:
        return rec
    from tqdm import tqdm
    bar = tqdm(total=total, desc=f"re-check on {len(seeds)} fresh seeds", disable=not progress)

    def keep(number, seed, m):
        rec["trials"].setdefault(str(number), {})[str(seed)] = m
        study.set_user_attr(RECHECK_ATTR, rec)      # after every run: a stopped re-check resumes
        bar.update()

    pool = None
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        from tune.study import _adopt, parent_state, start_fork_server, worker_context
        start_fork_server(jobs)
        pool = ProcessPoolExecutor(jobs, mp_context=worker_context(), initializer=_adopt,
                                   initargs=(parent_state(),))

    def run(pairs):
        args = [(*jobs_of[n], s) for n, s in pairs]
        results = map(_job, args) if pool is None else pool.map(_job, args)
        for (n, s), m in zip(pairs, results):
            keep(n, s, m)

    try:
        others = [n for n in jobs_of if n != base]
        if base is None:
            run(sorted((p for n in others for p in missing(n, seeds)), key=lambda p: p[1]))
        else:
            run(missing(base, seeds))
            # the candidates in the window's order: up to len(others) at a time; a stopped one (now or in an
            # earlier, resumed re-check) gives its place to the next
            queue = iter([t for t in picked if t.number != base] + reserve)

            def take():
                for t in queue:
                    if t.number not in jobs_of:
                        job_of(t)
                    if str(t.number) not in rec["stopped"]:
                        return t.number
                return None

            alive = [n for n in (take() for _ in others) if n is not None]
            while True:
                # each alive candidate's next missing seed (together: a pool runs them in parallel)
                pairs = [p for n in alive for p in missing(n, seeds)[:1]]
                if not pairs:
                    break
                run(pairs)
                for n in [n for n in alive if out_of_reach(rec, n, base, seeds)]:
                    alive.remove(n)
                    done = sum(str(s) in rec["trials"].get(str(n), {}) for s in seeds)
                    rec["stopped"][str(n)] = done
                    study.set_user_attr(RECHECK_ATTR, rec)
                    bar.total -= len(seeds) - done
                    nxt = take()                # the next trial of the window takes its place
                    if nxt is not None:
                        alive.append(nxt)
                        bar.total += len(missing(nxt, seeds))
                    bar.refresh()
    finally:
        if pool is not None:
            pool.shutdown()
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
