"""Metropolis-Hastings chip-in-the-loop training: weights are inferred from the chip's answers alone.

Target: ``log p(W, g | D) = −‖W‖²/(2·prior_std²) − ‖g‖²/(2·gain_std²) + log p(D | W, g)`` with the
quantised effective weights ``exp(g_l)·W_l`` on the chip. Two likelihoods:

* rate (default, ``class_temp=None``): ``−Σ_n,k (rate_nk − target_nk)²/(2·lik_std²)``, the chip's output
  firing rates (spikes per step) against :func:`train.common.rate_targets`;
* categorical (``class_temp=τ``): ``Σ_n log softmax(count_n/τ)[y_n]`` on the output spike counts — the
  class scores the chip's prediction uses; no firing rate is prescribed (under strong membrane
  distortion the off-target rate 0.05 may be unreachable, see ``docs/experiments/mhdiag.md``).

The per-layer log-gains ``g`` give the chain a direct direction for a layer's overall excitability. The
quantiser normalises each layer by its largest weight, so ``g`` leaves the integer weights unchanged and
acts only through the layer's integer threshold (``round(theta·s)``, ``s ∝ exp(−g)``).

Proposal: a Gaussian random walk (symmetric) on a random block of ``block_frac`` of the parameters —
of all of them (``layer_steps=0``) or of one layer's weights and gain, the layer drawn uniformly
(``layer_steps=1``: one step size per layer). During burn-in the step sizes adapt (Robbins-Monro on the
log step) toward ``target_accept`` and, with ``temper < 1``, the likelihood is tempered: its exponent
rises geometrically from ``temper`` to 1 over the first half of burn-in. After burn-in everything is
frozen, so the chain is a proper MH chain on the untempered posterior. Every ``thin``-th post-burn-in
state is averaged; the posterior mean, quantised, is deployed.

Defaults: the set-up validation picked (``bench/bench_mh_setup.py select``, docs/guides/training.md): the
bias input on (:attr:`train.config.TrainConfig.bias_input`) and, when no chip is given, a default chip that
resets to zero (``Trainer.reset``) — flat under membrane distortion, where the bias-less subtract-reset
set-up collapses from σ ≈ 4. Guidance: ``lik_std`` ~ 0.3–1 (smaller = sharper, greedier; 0.5 the default); ``prior_std`` a few times the typical weight (0.5 in threshold units);
``target_accept`` 0.2–0.4; ``block_frac`` 0.05–0.2; ``class_temp`` 1–4 spikes.

Under strong membrane distortion with the subtract reset (σ ≳ 4, ``docs/experiments/mhdiag.md``) a
spike leaves the membrane near threshold, where the distortion is strongest, so spikes come in bursts
and, from σ ≈ 4.9, a neuron that fires once fires at every remaining step. The chip's output is then a
step function of the weights, the rate likelihood a landscape of cliffs, and the adapted step
collapses. What restores the chain (measured, 5 seeds: ``bench/experiments.py distortionfix``): an
always-on bias input (:func:`train.common.with_bias_channel`, for sustained inhibition) with
``lik_std`` 1, or a chip programmed to reset to zero (which removes the bursts for every trainer).
The categorical likelihood and per-layer steps did not help there (seeds 0–1, validation accuracy).
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


def check_mh(iters, burn_in, thin, prior_std, lik_std, step, target_accept, block_frac, gain_std=1.0,
             class_temp=None, temper=1.0, layer_steps=0) -> None:
    """The chain's parameters against their ranges in the registry (:data:`train.trainers.TRAINERS`, the
    one place they are written), then the rules that relate them (burn-in and thinning fit the chain)."""
    from train.trainers import TRAINERS
    TRAINERS["mh"].complete(dict(iters=iters, burn_in=burn_in, thin=thin, prior_std=prior_std, lik_std=lik_std,
                                 step=step, target_accept=target_accept, block_frac=block_frac,
                                 gain_std=gain_std, class_temp=class_temp, temper=temper,
                                 layer_steps=layer_steps))
    if not burn_in < iters:
        raise ConfigError(f"mh.burn_in={burn_in}: allowed range is 0..iters-1 ({iters - 1})")
    if not thin <= iters - burn_in:
        raise ConfigError(f"mh.thin={thin}: allowed range is 1..iters-burn_in ({iters - burn_in})")


class ChainTarget:
    """The posterior the chain samples, evaluated on the chip: state ``v`` = all weights (flattened, layer
    by layer) then one log-gain per layer. ``evaluate(v)`` -> (log prior, log likelihood, train accuracy)."""

    def __init__(self, cfg: ChipConfig, spec: NetSpec, data: Encoded, chip: Chip, shapes, prior_std=0.5,
                 lik_std=0.5, gain_std=1.0, class_temp=None):
        self.cfg, self.theta, self.data, self.chip = cfg, spec.theta, data, chip
        self.shapes = list(shapes)
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        self.n_w = sum(self.sizes)
        self.L = len(self.shapes)
        self.prior_std, self.lik_std, self.gain_std, self.class_temp = prior_std, lik_std, gain_std, class_temp
        self.targets = rate_targets(data.y_train, cfg.layer_sizes[-1])

    def pack(self, weights, gains=None) -> np.ndarray:
        gains = np.zeros(self.L) if gains is None else np.asarray(gains, float)
        return np.concatenate([np.asarray(w, float).ravel() for w in weights] + [gains])

    def unflat(self, v) -> list[np.ndarray]:
        """Effective float weights ``exp(g_l)·W_l``."""
        out, k = [], 0
        for l, (shp, n) in enumerate(zip(self.shapes, self.sizes)):
            out.append(np.exp(v[self.n_w + l]) * v[k:k + n].reshape(shp))
            k += n
        return out

    def run(self, v, x=None, record_state=False):
        qcfg, ints, _ = quantise(self.cfg, self.unflat(v), self.theta)
        self.chip.load(ints, cfg=qcfg)
        return self.chip.run(self.data.x_train if x is None else x, record_state)

    def log_lik(self, spikes: np.ndarray) -> float:
        y = self.data.y_train
        if self.class_temp is None:
            rates = spikes.sum(axis=1, dtype=np.float64) / spikes.shape[1]     # == mean(axis=1), bit for bit
            return float(-0.5 * np.sum((rates - self.targets) ** 2) / self.lik_std ** 2)
        z = spikes.sum(axis=1) / self.class_temp
        z = z - z.max(axis=1, keepdims=True)
        return float(np.sum(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(axis=1))))

    def log_prior(self, v) -> float:
        return float(-0.5 * np.sum(v[:self.n_w] ** 2) / self.prior_std ** 2
                     - 0.5 * np.sum(v[self.n_w:] ** 2) / self.gain_std ** 2)

    def evaluate(self, v) -> tuple[float, float, float]:
        out = self.run(v).output
        return self.log_prior(v), self.log_lik(out), float((out.sum(1).argmax(1) == self.data.y_train).mean())

    def blocks(self) -> list[np.ndarray]:
        """Indices of each layer's parameters (its weights and its log-gain)."""
        out, k = [], 0
        for l, n in enumerate(self.sizes):
            out.append(np.r_[np.arange(k, k + n), self.n_w + l])
            k += n
        return out


def train_mh(cfg: ChipConfig, spec: NetSpec, data: Encoded, chip: Chip, iters: int = 3000,
             burn_in: int | None = None,
             thin: int = 5, prior_std: float = 0.5, lik_std: float = 0.5, step: float = 0.05,
             target_accept: float = 0.3, block_frac: float = 0.1, gain_std: float = 1.0,
             class_temp: float | None = None, temper: float = 1.0, layer_steps: int = 0, seed: int = 0,
             progress: bool = True, callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """``callback(iteration // 100, on-chip training accuracy)`` every 100 iterations (it may raise).
    ``burn_in`` defaults to half of ``iters``."""
    burn_in = iters // 2 if burn_in is None else burn_in
    check_fit(cfg, data)
    check_mh(iters, burn_in, thin, prior_std, lik_std, step, target_accept, block_frac, gain_std, class_temp,
             temper, layer_steps)
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    init = ChipMirrorNet(cfg, spec, seed).float_weights()        # same start as the gradient methods
    tgt = ChainTarget(cfg, spec, data, chip, [w.shape for w in init], prior_std, lik_std, gain_std, class_temp)
    w = tgt.pack(init)
    n_w = tgt.n_w
    groups = tgt.blocks() if layer_steps else [np.arange(w.size)]
    n_block = [max(1, int(round(block_frac * g.size))) for g in groups]
    log_steps = np.full(len(groups), np.log(step))
    n_prop = np.zeros(len(groups))

    def lam(it):            # likelihood exponent: tempered only in the first half of burn-in
        ramp = burn_in // 2
        return 1.0 if temper == 1.0 or it >= ramp else temper ** (1.0 - it / ramp)

    prior, lik, train_acc = tgt.evaluate(w)
    total = np.zeros(n_w)          # running sum of effective weights exp(gain)*W
    kept, accepted, accepted_after = 0, 0, 0
    history = []
    window = []
    for it in tqdm(range(iters), desc="metropolis-hastings", disable=not progress):
        b = int(rng.integers(len(groups))) if len(groups) > 1 else 0
        prop = w.copy()
        idx = rng.choice(groups[b], n_block[b], replace=False)
        prop[idx] += rng.normal(0.0, np.exp(log_steps[b]), n_block[b])
        p_prior, p_lik, acc_prop = tgt.evaluate(prop)
        lm = lam(it)
        ok = np.log(rng.random()) < (p_prior + lm * p_lik) - (prior + lm * lik)
        if ok:
            w, prior, lik, train_acc = prop, p_prior, p_lik, acc_prop
            accepted += 1
            accepted_after += it >= burn_in
        window.append(ok)
        if it < burn_in:
            n_prop[b] += 1
            log_steps[b] += (float(ok) - target_accept) / np.sqrt(n_prop[b])     # Robbins-Monro
        elif (it - burn_in) % thin == 0:
            total += np.concatenate([x.ravel() for x in tgt.unflat(w)])
            kept += 1
        if it % 10 == 0 or it == iters - 1:
            history.append({"iter": it, "log_posterior": float(prior + lik), "log_likelihood": float(lik),
                            "train_chip_accuracy": train_acc, "step": float(np.exp(log_steps.mean())),
                            "temper": lm, "accept_rate_recent": float(np.mean(window[-100:]))})
        if callback and it % 100 == 99:
            callback(it // 100, train_acc)
    mean, k = [], 0
    for shp, n in zip(tgt.shapes, tgt.sizes):
        mean.append((total[k:k + n] / kept).reshape(shp))
        k += n
    qcfg, ints, _ = quantise(cfg, mean, spec.theta)
    net = ChipMirrorNet(cfg, spec, seed)
    net.set_float_weights(mean)
    extra = {"burn_in": burn_in, "acceptance_rate": accepted / iters,
             "acceptance_rate_after_burn_in": accepted_after / max(1, iters - burn_in),
             "final_step": float(np.exp(log_steps.mean())), "final_steps": [float(s) for s in np.exp(log_steps)],
             "final_state": w.tolist(), "posterior_samples": kept}
    return finish("mh", chip, qcfg, ints, mean, data, software_accuracy(net, data.x_test, data.y_test),
                  history, t0, extra)
