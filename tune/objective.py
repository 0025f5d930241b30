"""One Optuna trial: suggest a design, train it with the chip in the loop, measure it on the chip.

Objectives on the validation split, measured on the simulated chip: accuracy (max), mean latency in µs
(min), FPS/W (max), subject to beating the majority-class accuracy (so silent networks, which are
fastest, do not crowd the Pareto front; a dead network — silent output layer, :func:`train.common.dead_network`
— is pruned with the reason in its ``dead_network`` user attribute, never ranked) — or, with ``objective = "weighted"``, their weighted sum (one value, so pruning of
the long methods works through the reported intermediate values).
"""
from __future__ import annotations

import json

import numpy as np
import optuna

from sim.power import performance
from train.common import Encoded
from train.config import TrainConfig
from train.run import run_training, with_bias
from train.surrogates import SURROGATES
from tune.config import Range, StudyConfig


#: a design must beat the majority-class accuracy by this much to be feasible
MARGIN = 0.02


def feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """All of the trial's constraints <= 0 (see ``MARGIN``)."""
    return all(v <= 0 for v in trial.constraints.values())


def _suggest(trial: optuna.Trial, name: str, r: Range):
    if r.fixed:
        return int(r.low) if r.integer else r.low
    if r.integer:
        return trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
    return trial.suggest_float(name, r.low, r.high, log=r.log)


def _choose(trial: optuna.Trial, name: str, choices: tuple):
    """One of ``choices``: the only one (not a trial parameter), else drawn as the categorical ``name``."""
    return choices[0] if len(choices) == 1 else trial.suggest_categorical(name, list(choices))


def firing_rate(activity: dict, cfg, steps: int) -> float:
    """Mean spikes per neuron per time step over all layers."""
    spikes = sum(v for k, v in activity.items() if k.startswith("spikes_l"))
    return spikes / (sum(cfg.layer_sizes[1:]) * steps)


def trial_config(trial: optuna.Trial, sc: StudyConfig) -> TrainConfig:
    """The trial's training config: the study's base with what this trial searches."""
    method = trial.suggest_categorical("method", list(sc.methods))
    surrogate = trial.suggest_categorical("surrogate", list(sc.surrogates))
    factor = _suggest(trial, "surrogate_scale_factor", sc.ranges["surrogate_scale_factor"])
    beta = _suggest(trial, "beta", sc.ranges["beta"])
    theta = _suggest(trial, "theta", sc.ranges["theta"])
    cfg = sc.train.chip.replace(beta=beta)
    if sc.lanes:
        cfg = cfg.replace(lanes=trial.suggest_categorical("lanes", list(sc.lanes)))
    if sc.weight_bits:
        cfg = cfg.replace(weight_bits=trial.suggest_categorical("weight_bits", list(sc.weight_bits)))
    update = cfg.update
    if sc.update:
        update = _choose(trial, "update", sc.update)
    if update == "touched":     # only a touched chip has a wavefront, and only its trials draw one
        wave = _choose(trial, "wavefront", sc.wavefront) if sc.wavefront else cfg.wavefront
        cfg = cfg.replace(update="touched", max_steps=sc.max_steps, wavefront=wave)
    else:                       # ([chip] wavefront = true is refused with update "all" in the search: tune.config)
        cfg = cfg.replace(update="all", wavefront=False)
    if sc.overlap and not cfg.wavefront:    # either schedule overlaps (docs/chip.md, "Overlap"); a wavefront has none
        cfg = cfg.replace(overlap=trial.suggest_categorical("overlap", list(sc.overlap)))
    params = {name: _suggest(trial, f"{method}_{name}", r) for name, r in sc.method_ranges[method].items()}
    if sc.bias_input is None:
        bias = sc.train.replace(method=method, bias_input=None, chip=cfg).bias     # the method's default
    else:
        bias = _choose(trial, "bias_input", sc.bias_input)
    if bias:        # [chip] layer_sizes[0] is the dataset's features: the bias input is one more
        cfg = cfg.replace(layer_sizes=(cfg.layer_sizes[0] + 1,) + tuple(cfg.layer_sizes[1:]))
    default = SURROGATES[surrogate][2]
    return sc.train.replace(method=method, surrogate=surrogate, theta=theta, params=params, chip=cfg,
                            surrogate_scale=None if default is None else default * factor,
                            seed=sc.seed + trial.number, bias_input=bias)


def interchange_metrics(r, data: Encoded) -> dict:
    """The chip's non-zero-weight synops, activation sparsity and footprint on the validation set, and
    NeuroBench's figures for the same weights and inputs (``nb_`` prefix); see :mod:`sim.metrics`."""
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from sim.metrics import chip_metrics, neurobench_metrics
    cfg = ChipConfig.from_dict(r.chip_config)
    chip = make_chip(cfg)
    chip.load(r.chip_weights)
    m = chip_metrics(cfg, r.chip_weights, data.x_val, chip.run(data.x_val))
    nb = neurobench_metrics(cfg, r.chip_weights, data.x_val)
    return {"synops_nonzero": m["synops_nonzero"], "activation_sparsity": m["activation_sparsity"],
            "footprint_bytes": m["footprint_bytes"], "nb_synops": nb["synops"],
            "nb_activation_sparsity": nb["activation_sparsity"], "nb_footprint_bytes": nb["footprint_bytes"]}


def synthesis_check(trial: optuna.Trial, sc: StudyConfig, cfg) -> float | None:
    """With ``[hardware] fits``: the design's structure synthesised on that part (cached per structure), its
    resources as user attributes and the constraint ``fits_<part>`` (0 fits, 1 does not). A design that does
    not fit is pruned before training. Returns the clock for the latency objective (MHz) or None."""
    if not sc.fits:
        return None
    from tune.dse import synth_cached
    rec = synth_cached(cfg, sc.fits, sc.synth_cache)
    trial.set_user_attr("synth_status", rec["status"])
    key = f"fits_{sc.fits.replace('-', '_')}"
    if rec["status"] != "ok":
        trial.set_user_attr("synth_message", rec.get("message", ""))
        trial.set_constraint(key, 1.0)
        raise optuna.TrialPruned(f"lanes={cfg.lanes} w{cfg.weight_bits} m{cfg.membrane_bits} on {sc.fits}: "
                                 f"{rec['status']}: {rec.get('message', '')}")
    for k in ("logic_cells", "luts", "ffs", "bram", "dsp", "fmax_mhz"):
        trial.set_user_attr(f"synth_{k}", rec[k])
    trial.set_constraint(key, 0.0)
    return rec["fmax_mhz"] if sc.clock == "fmax" else None


#: the training seeds of a trial's extra draws are ``seed + SEED_STRIDE * i`` (``[study] seeds_per_trial``)
SEED_STRIDE = 100_000


def trial_seeds(sc: StudyConfig, tc: TrainConfig) -> list[int]:
    """The training seeds a trial is scored on: its own, then ``seeds_per_trial - 1`` more (initial weights,
    shuffling, the MH chain; the study's data split and chip instance stay the same)."""
    return [(tc.seed + SEED_STRIDE * i) % 2**32 for i in range(sc.seeds_per_trial)]


def measure(r, sc: StudyConfig, clock) -> dict:
    """The objectives of one training on the validation set (and its test accuracy)."""
    perf = performance({k: np.array([v]) for k, v in r.val_activity.items()}, sc.device, clock)
    return {"val_accuracy": r.chip_val_accuracy, "latency_us": perf.latency_us, "fps_per_watt": perf.fps_per_watt,
            "test_accuracy": r.chip_accuracy}


def objective(trial: optuna.Trial, sc: StudyConfig, data: Encoded):
    """One trial: draw a training config, (optionally) check the structure fits ``[hardware] fits``, train with
    the chip in the loop, store the artefacts under ``sc.out/trials/NNNNN/``, and return the validation
    accuracy, latency (µs) and FPS/W — or their weighted sum with ``objective = "weighted"``."""
    tc = trial_config(trial, sc)
    clock = synthesis_check(trial, sc, tc.chip)

    def report(step: int, value: float) -> None:
        if sc.objective == "weighted":
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (intermediate value {value:.3f})")

    seeds = trial_seeds(sc, tc)
    r = run_training(tc, data=data, progress=False, callback=report)
    draws = [(seeds[0], r)]
    for s in seeds[1:]:             # more draws of the same design: the value is their mean
        if r.extra.get("dead"):
            break
        draws.append((s, run_training(tc.replace(seed=s), data=data, progress=False)))
    dead = [(s, d.extra["dead"]) for s, d in draws if d.extra.get("dead")]
    if dead:     # never ranked: pruned with the reason (a silent network is fast and useless)
        s, why = dead[0]
        trial.set_user_attr("dead_network", why if len(seeds) == 1 else f"seed {s}: {why}")
        trial.set_user_attr("train_seconds", sum(d.seconds for _, d in draws))
        raise optuna.TrialPruned(why)
    cfg = tc.chip
    perf = performance({k: np.array([v]) for k, v in r.val_activity.items()}, sc.device, clock)
    test_perf = performance({k: np.array([v]) for k, v in r.activity.items()}, sc.device, clock)
    art = sc.out / "trials" / f"{trial.number:05d}"
    r.save(art / "result")
    (art / "performance.json").write_text(json.dumps({"validation": perf.to_dict(), "test": test_perf.to_dict(),
                                                      "device": sc.device.name}, indent=1))
    per = [measure(d, sc, clock) for _, d in draws]
    mean = {k: float(np.mean([m[k] for m in per])) for k in per[0]}
    attrs = {"artefacts": str(art.resolve()), "test_accuracy": mean["test_accuracy"],
             "software_test_accuracy": r.software_accuracy,
             "firing_rate": firing_rate(r.val_activity, cfg, tc.steps), "synops": r.val_activity["synops"],
             "energy_nj": perf.energy_nj, "cycles": perf.cycles, "train_seconds": sum(d.seconds for _, d in draws),
             # the three measured objectives, also in a weighted study whose value is their weighted sum
             "val_accuracy": mean["val_accuracy"], "latency_us": mean["latency_us"],
             "fps_per_watt": mean["fps_per_watt"]}
    if len(draws) > 1:      # the spread over the trial's seeds (sample std); the artefacts are the first seed's
        attrs["seeds"] = [s for s, _ in draws]
        for k in ("val_accuracy", "latency_us", "fps_per_watt", "test_accuracy"):
            attrs[f"{k}_std"] = float(np.std([m[k] for m in per], ddof=1))
            attrs[f"{k}_per_seed"] = [m[k] for m in per]
    attrs |= interchange_metrics(r, with_bias(tc, data))
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    # feasible only if better than always answering the majority class (a silent network does that)
    majority = float(np.bincount(data.y_val).max() / len(data.y_val))
    trial.set_constraint("beats_majority_class", majority + MARGIN - mean["val_accuracy"])
    values = (mean["val_accuracy"], mean["latency_us"], mean["fps_per_watt"])
    if sc.objective == "weighted":
        w = sc.weights
        return (w.get("accuracy", 0) * values[0] + w.get("latency_us", 0) * values[1]
                + w.get("fps_per_watt", 0) * values[2])
    return values
