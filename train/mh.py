"""Metropolis-Hastings chip-in-the-loop training: weights are inferred from the chip's answers alone.

Target: ``log p(W, g | D) = −‖W‖²/(2·prior_std²) − ‖g‖²/(2·gain_std²) − Σ_n,k (rate_nk − target_nk)²/(2·lik_std²)``
where ``rate`` are the chip's output firing rates (spikes per step) on the training set with the quantised
effective weights ``exp(g_l)·W_l``. The per-layer log-gains ``g`` give the chain a direct direction for
a layer's overall excitability (the quantiser normalises each layer by its largest weight, so a random
walk on ``W`` alone moves that direction only slowly) — what an unknown distortion needs compensating. Proposal: Gaussian random walk on a random block of ``block_frac`` of the weights (symmetric).
During burn-in the step size adapts (Robbins-Monro on log step) toward ``target_accept``; afterwards it
is frozen so the chain is a proper MH chain. Every ``thin``-th post-burn-in state is averaged; the
posterior mean, quantised, is deployed.

Guidance: ``lik_std`` ~ 0.3–1 (smaller = sharper, greedier; 0.5 gave the best validation accuracy on
breast cancer); ``prior_std`` a few times the typical
weight (0.5 in threshold units); ``target_accept`` 0.2–0.4; ``block_frac`` 0.05–0.2.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from hw.config import ChipConfig, ConfigError
from sim.chip import Chip
from train.common import Encoded, TrainResult, check_fit, finish, rate_targets
from train.network import ChipMirrorNet, NetSpec
from train.quant import quantise
from train.bptt import software_accuracy


def check_mh(iters, burn_in, thin, prior_std, lik_std, step, target_accept, block_frac) -> None:
    if not 1 <= iters <= 10_000_000:
        raise ConfigError(f"iters={iters}: allowed range is 1..10000000")
    if not 0 <= burn_in < iters:
        raise ConfigError(f"burn_in={burn_in}: allowed range is 0..iters-1 ({iters - 1})")
    if not 1 <= thin <= iters - burn_in:
        raise ConfigError(f"thin={thin}: allowed range is 1..iters-burn_in ({iters - burn_in})")
    for name, v in (("prior_std", prior_std), ("lik_std", lik_std), ("step", step)):
        if not (np.isfinite(v) and v > 0):
            raise ConfigError(f"{name}={v}: allowed range is > 0")
    if not 0 < target_accept < 1:
        raise ConfigError(f"target_accept={target_accept}: allowed range is (0, 1)")
    if not 0 < block_frac <= 1:
        raise ConfigError(f"block_frac={block_frac}: allowed range is (0, 1]")


def train_mh(cfg: ChipConfig, spec: NetSpec, data: Encoded, chip: Chip, iters: int = 3000,
             burn_in: int | None = None,
             thin: int = 5, prior_std: float = 0.5, lik_std: float = 0.5, step: float = 0.05,
             target_accept: float = 0.3, block_frac: float = 0.1, gain_std: float = 1.0, seed: int = 0,
             progress: bool = True, callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """``callback(iteration // 100, on-chip training accuracy)`` every 100 iterations (it may raise).
    ``burn_in`` defaults to half of ``iters``."""
    burn_in = iters // 2 if burn_in is None else burn_in
    check_fit(cfg, data)
    check_mh(iters, burn_in, thin, prior_std, lik_std, step, target_accept, block_frac)
    if not (np.isfinite(gain_std) and gain_std > 0):
        raise ConfigError(f"gain_std={gain_std}: allowed range is > 0")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    theta = spec.theta
    init = ChipMirrorNet(cfg, spec, seed).float_weights()        # same start as the gradient methods
    shapes = [w.shape for w in init]
    sizes = [w.size for w in init]
    L = len(init)
    # state: all weights, then one log-gain per layer (a layer's weights act as exp(gain)*W)
    w = np.concatenate([x.ravel() for x in init] + [np.zeros(L)])
    n_w = w.size - L
    targets = rate_targets(data.y_train, cfg.layer_sizes[-1])

    def unflat(v):
        out, k = [], 0
        for l, (shp, n) in enumerate(zip(shapes, sizes)):
            out.append(np.exp(v[n_w + l]) * v[k:k + n].reshape(shp))
            k += n
        return out

    x_train = data.x_train
    steps = x_train.shape[1]

    def log_post(v):
        qcfg, ints, _ = quantise(cfg, unflat(v), theta)
        chip.load(ints, cfg=qcfg)
        out = chip.run(x_train).output
        rates = out.sum(axis=1, dtype=np.float64) / steps        # == out.mean(axis=1), bit for bit
        log_prior = -0.5 * np.sum(v[:n_w] ** 2) / prior_std ** 2 - 0.5 * np.sum(v[n_w:] ** 2) / gain_std ** 2
        return (log_prior - 0.5 * np.sum((rates - targets) ** 2) / lik_std ** 2,
                float((rates.argmax(1) == data.y_train).mean()))

    lp, train_acc = log_post(w)
    log_step = np.log(step)
    n_block = max(1, int(round(block_frac * w.size)))
    total = np.zeros(n_w)          # running sum of effective weights exp(gain)*W
    kept, accepted, accepted_after = 0, 0, 0
    history = []
    window = []
    for it in tqdm(range(iters), desc="metropolis-hastings", disable=not progress):
        prop = w.copy()
        idx = rng.choice(w.size, n_block, replace=False)
        prop[idx] += rng.normal(0.0, np.exp(log_step), n_block)
        lp_prop, acc_prop = log_post(prop)
        ok = np.log(rng.random()) < lp_prop - lp
        if ok:
            w, lp, train_acc = prop, lp_prop, acc_prop
            accepted += 1
            accepted_after += it >= burn_in
        window.append(ok)
        if it < burn_in:
            log_step += (float(ok) - target_accept) / np.sqrt(it + 1.0)     # Robbins-Monro
        elif (it - burn_in) % thin == 0:
            total += np.concatenate([x.ravel() for x in unflat(w)])
            kept += 1
        if it % 10 == 0 or it == iters - 1:
            history.append({"iter": it, "log_posterior": float(lp), "train_chip_accuracy": train_acc,
                            "step": float(np.exp(log_step)), "accept_rate_recent": float(np.mean(window[-100:]))})
        if callback and it % 100 == 99:
            callback(it // 100, train_acc)
    mean, k = [], 0
    for shp, n in zip(shapes, sizes):
        mean.append((total[k:k + n] / kept).reshape(shp))
        k += n
    qcfg, ints, _ = quantise(cfg, mean, theta)
    net = ChipMirrorNet(cfg, spec, seed)
    net.set_float_weights(mean)
    extra = {"burn_in": burn_in, "acceptance_rate": accepted / iters,
             "acceptance_rate_after_burn_in": accepted_after / max(1, iters - burn_in),
             "final_step": float(np.exp(log_step)), "posterior_samples": kept}
    return finish("mh", chip, qcfg, ints, mean, data, software_accuracy(net, data.x_test, data.y_test),
                  history, t0, extra)
